"""The decoder correction of token files, measured: per recording and depth, the token file
compression chose and the same file without the correction (both built from the same codes),
decoded, and the coded channels' error energy (outliers restored, NaN samples left out) and file
bytes of each.

    python tools/correction_bench.py --model mc-small --depths 2,6 [--json OUT] FILE.edf ...

Prints one JSON line per file and depth (``kept``: whether compression chose the correction;
``mix_rank``: its spatial mix's components; ``error_change_pct`` and ``bytes_change_pct``: the
chosen file against the plain one, 0 where no correction paid; ``seconds``: the compression,
both files built), then the medians and the worst file per dataset prefix; ``--json`` also
writes the rows and that summary. A developer tool, not in the wheel.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
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
    """(the file compression chose, {"plain": bytes, "corrected": the file chosen, bytes})."""
    built: dict[str, bytes] = {}
    choose = CodedStream.choose_correction

    def spy(coded, build):
        coded.use_correction(False)
        built["plain"] = build()
        built["corrected"] = choose(coded, build)  # the file compression chose
        return built["corrected"]

    CodedStream.choose_correction = spy
    try:
        began = time.perf_counter()
        chosen = compress_raw(raw, codec, mode=Tokens(depth))
        built["seconds"] = round(time.perf_counter() - began, 2)
    finally:
        CodedStream.choose_correction = choose
    return chosen, built


def measure(raw, codec, depth: int) -> dict:
    chosen, built = both_files(raw, codec, depth)
    out = {"depth": depth, "seconds": built.pop("seconds")}
    if not built:  # no coded channels
        return out
    side = {a.name: a for a in Archive.from_bytes(chosen).header.side}
    out["kept"] = "correction_taps" in side
    out["mix_rank"] = side["correction_mix_in"].shape[0] if "correction_mix_in" in side else 0
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
    parser.add_argument("--json", type=Path, help="also write the rows and the summary here")
    args = parser.parse_args(argv)
    codec = load_codec(args.model)
    rows = []
    for path in args.files:
        raw = read_raw(path, preload=True)
        for depth in map(int, args.depths.split(",")):
            row = {"file": path.name, **measure(raw, codec, depth)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = []
    for depth in map(int, args.depths.split(",")):
        for prefix in sorted({r["file"][:3] for r in rows}):
            group = [r for r in rows if r["depth"] == depth and r["file"][:3] == prefix and "kept" in r]
            if group:
                err = [r["error_change_pct"] for r in group]
                size = [r["bytes_change_pct"] for r in group]
                kept = sum(r["kept"] for r in group)
                summary.append(
                    {
                        "depth": depth,
                        "files": f"{prefix}*",
                        "n": len(group),
                        "error_change_pct_median": round(statistics.median(err), 2),
                        "error_change_pct_worst": max(err),
                        "bytes_change_pct_median": round(statistics.median(size), 2),
                        "bytes_change_pct_worst": max(size),
                        "kept": kept,
                    }
                )
                print(
                    f"depth {depth} {prefix}*: n={len(group)} error energy median "
                    f"{statistics.median(err):+.2f} % (worst file {max(err):+.2f} %), bytes median "
                    f"{statistics.median(size):+.2f} % (worst {max(size):+.2f} %), kept {kept}/{len(group)}"
                )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")
    print(markdown(summary))
    return 0


def markdown(summary: list[dict]) -> str:
    """The summary as a Markdown table (error energy and bytes of the chosen file against the
    plain one, median and worst file)."""
    lines = [
        "| files | depth | n | error energy, median | error energy, worst file | bytes, median "
        "| bytes, worst file | correction kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in summary:
        lines.append(
            f"| {g['files']} | {g['depth']} | {g['n']} | {g['error_change_pct_median']:+.1f} % "
            f"| {g['error_change_pct_worst']:+.1f} % | {g['bytes_change_pct_median']:+.1f} % "
            f"| {g['bytes_change_pct_worst']:+.1f} % | {g['kept']}/{g['n']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
