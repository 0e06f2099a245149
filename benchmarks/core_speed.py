"""Whole-process speed and peak memory of ``eegcodec compress`` / ``decompress``.

    python -m benchmarks.core_speed [--minutes 1 10 60] [--channels 64] [--sfreq 160] [--model default]

Builds an EDF of the requested length by tiling EEGBCI S001R01 (or synthetic
1/f noise when ../shared/eeg is absent), then times each CLI verb as a separate
process (Python start-up, imports and model loading included) and reads its
peak resident memory from the OS. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import mne
import numpy as np

R01 = Path(__file__).resolve().parents[1].parent / "shared" / "eeg" / "eegbci_S001" / "S001R01.edf"


def make_recording(path: Path, minutes: float, n_ch: int, sfreq: float) -> None:
    n = int(minutes * 60 * sfreq)
    if R01.exists() and sfreq == 160:
        base = mne.io.read_raw(R01, preload=True, verbose="error").get_data()[:n_ch]
        reps = -(-n // base.shape[1])
        data = np.tile(base, (1, reps))[:, :n]
    else:
        rng = np.random.default_rng(0)
        data = np.cumsum(rng.normal(size=(n_ch, n)), axis=1) * 1e-6
        data -= data.mean(axis=1, keepdims=True)
    info = mne.create_info([f"EEG{i:03d}" for i in range(n_ch)], sfreq, "eeg")
    mne.export.export_raw(path, mne.io.RawArray(data, info, verbose="error"), verbose="error", overwrite=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--sfreq", type=float, default=160.0)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--codebooks", type=int, help="codebook depth (default: the model's default)")
    args = ap.parse_args(argv)
    exe = [sys.executable, "-m", "eegcodec.cli"]
    print(f"model {args.model}, {args.channels} channels at {args.sfreq:g} Hz, device {args.device}, {os.cpu_count()} CPU cores\n")
    print("| minutes | codebooks | compress s | compress x realtime | compress peak MB | decompress s | decompress x realtime | decompress peak MB | bits/sample |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            src, arc, out = Path(tmp) / "rec.edf", Path(tmp) / "rec.eegc", Path(tmp) / "out.edf"
            make_recording(src, minutes, args.channels, args.sfreq)
            # each measurement in its own process so peak memory is its own
            depth = ["--codebooks", str(args.codebooks)] if args.codebooks else []
            tc, mc = _child(exe + ["compress", str(src), "-o", str(arc), "--model", args.model, "--device", args.device, "-q"] + depth)
            td, md = _child(exe + ["decompress", str(arc), "-o", str(out), "--model", args.model, "--device", args.device, "-q"])
            info = subprocess.run(exe + ["info", str(arc), "--json"], capture_output=True, text=True, check=True).stdout
            info = json.loads(info)
            bps, k = info["bits_per_sample"], info["codebooks"]
            sec = minutes * 60
            print(f"| {minutes:g} | {k} | {tc:.1f} | {sec / tc:.0f} | {mc:.0f} | {td:.1f} | {sec / td:.0f} | {md:.0f} | {bps:.3f} |", flush=True)
    return 0


def _child(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` under a fresh Python that reports its child's wall time and peak RSS."""
    probe = (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
        "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)"
    )
    out = subprocess.run([sys.executable, "-c", probe] + cmd, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


if __name__ == "__main__":
    raise SystemExit(main())
