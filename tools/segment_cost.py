"""What random access costs the exact coder: bits per sample of each recording's integers coded by
mode 3 (:mod:`eegcodec.format.cascade`, one adaptive run per chunk) and by mode 4
(:mod:`eegcodec.format.adaptive`) at several segment lengths, chunk by chunk as a file cuts them.

    python tools/segment_cost.py FILE.edf ... [--segments 1024 2048 4096 8192 0] [--chunk-seconds 30]

The integers are each channel's samples on its own grid (:func:`eegcodec.format.exact.find_grid`,
as ``--lossless`` stores them); channels on no grid are left out. Segment length 0: one segment per
chunk. Prints one line per file, then the mean over the files of each segment length's change
against mode 3. A developer tool, not in the wheel; one thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python tools/segment_cost.py``: this checkout's eegcodec first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from eegcodec.format import adaptive, cascade  # noqa: E402
from eegcodec.format.exact import find_grid  # noqa: E402
from eegcodec.io import read_raw  # noqa: E402


def grid_integers(path: str) -> tuple[np.ndarray, float]:
    """(int64 [C, n] the grid channels' integers, sampling rate in Hz) of a recording."""
    raw = read_raw(path)
    rows = [g[2] for g in (find_grid(x) for x in raw.get_data()) if g is not None]
    return np.stack(rows), float(raw.info["sfreq"])


def costs(k: np.ndarray, chunk: int, segments: list[int]) -> dict[str, float]:
    """Bits per sample of ``k`` [C, n] cut into chunks of ``chunk`` samples: ``mode 3`` and one entry
    per segment length."""
    total = dict.fromkeys(["mode 3", *map(str, segments)], 0)
    for a in range(0, k.shape[1], chunk):
        block = k[:, a : a + chunk]
        total["mode 3"] += len(cascade.encode_ints(block)[0])
        for s in segments:
            total[str(s)] += len(adaptive.encode_ints(block, segment=s or block.shape[1] or 1)[0])
    return {name: 8 * size / k.size for name, size in total.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", help="recordings (EDF, BDF, ...)")
    parser.add_argument("--segments", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 0])
    parser.add_argument("--chunk-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    changes: dict[str, list[float]] = {str(s): [] for s in args.segments}
    for path in args.files:
        k, sfreq = grid_integers(path)
        row = costs(k, max(1, int(round(args.chunk_seconds * sfreq))), args.segments)
        print(Path(path).name, "  ".join(f"{name}: {v:.4f}" for name, v in row.items()), flush=True)
        for s in changes:
            changes[s].append(row[s] / row["mode 3"] - 1)
    print(
        "mean change against mode 3:",
        "  ".join(f"{s}: {100 * np.mean(v):+.2f} %" for s, v in changes.items()),
    )


if __name__ == "__main__":
    main()
