"""The decoder correction of token files, measured: per recording and depth, a token file with
and without it (both built from the same codes), decoded, and the coded channels' error energy
(outliers restored, NaN samples left out) and file bytes of each.

    python tools/correction_bench.py --model mc-small --depths 2,6 FILE.edf ...

Prints one JSON line per file and depth (``kept``: whether compression chose the correction;
``error_change_pct`` and ``bytes_change_pct``: the corrected file against the plain one), then
the medians and the worst file per dataset prefix. A developer tool, not in the wheel.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python tools/correction_bench.py``: this checkout's eegcodec first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from eegcodec.api import load_codec  # noqa: E402
from eegcodec.chunks import CodedStream  # noqa: E402
from eegcodec.format.container import Archive  # noqa: E402
from eegcodec.io import read_raw  # noqa: E402
from eegcodec.modes.tokens import Tokens  # noqa: E402
from eegcodec.pipeline import compress_raw, decompress_archive  # noqa: E402


def both_files(raw, codec, depth: int) -> tuple[bytes, dict[str, bytes]]:
    """(the file compression chose, {"plain": bytes, "corrected": bytes})."""
    built: dict[str, bytes] = {}
    choose = CodedStream.choose_correction

    def spy(coded, build):
        coded.use_correction(False)
        built["plain"] = build()
        if coded.prepare_correction(len(built["plain"])):  # the candidate compression weighs
            coded.use_correction(True)
            built["corrected"] = build()
            coded.use_correction(False)
        return choose(coded, build)

    CodedStream.choose_correction = spy
    try:
        chosen = compress_raw(raw, codec, mode=Tokens(depth))
    finally:
        CodedStream.choose_correction = choose
    return chosen, built


def measure(raw, codec, depth: int) -> dict:
    chosen, built = both_files(raw, codec, depth)
    out = {"depth": depth}
    if not built:  # no coded channels
        return out
    side = {a.name: a for a in Archive.from_bytes(chosen).header.side}
    out["kept"] = "correction_taps" in side
    out["mix_rank"] = side["correction_mix_in"].shape[0] if "correction_mix_in" in side else 0
    built.setdefault("corrected", built["plain"])  # no candidate pays: the plain file
    x = raw.get_data()
    for name, data in built.items():
        archive = Archive.from_bytes(data)
        coded = archive.header.coded
        decoded = decompress_archive(archive, codec).get_data()[coded]
        out[name] = {"bytes": len(data), "error_v2": float(np.nansum((x[coded] - decoded) ** 2))}
    out["error_change_pct"] = round(100 * (out["corrected"]["error_v2"] / out["plain"]["error_v2"] - 1), 2)
    out["bytes_change_pct"] = round(100 * (out["corrected"]["bytes"] / out["plain"]["bytes"] - 1), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--model", default="mc-small")
    parser.add_argument("--depths", default="2,6", help="comma-separated codebook depths")
    args = parser.parse_args(argv)
    codec = load_codec(args.model)
    rows = []
    for path in args.files:
        raw = read_raw(path, preload=True)
        for depth in map(int, args.depths.split(",")):
            row = {"file": path.name, **measure(raw, codec, depth)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    for depth in map(int, args.depths.split(",")):
        for prefix in sorted({r["file"][:3] for r in rows}):
            group = [r for r in rows if r["depth"] == depth and r["file"][:3] == prefix and "kept" in r]
            if group:
                err = [r["error_change_pct"] for r in group]
                size = [r["bytes_change_pct"] for r in group]
                kept = sum(r["kept"] for r in group)
                print(
                    f"depth {depth} {prefix}*: n={len(group)} error energy median "
                    f"{statistics.median(err):+.2f} % (worst file {max(err):+.2f} %), bytes median "
                    f"{statistics.median(size):+.2f} % (worst {max(size):+.2f} %), kept {kept}/{len(group)}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
