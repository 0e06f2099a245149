"""Default model vs the classical DCT coder at equal bits per sample.

    python -m benchmarks.core_rd [--model default] [--files ...] [--crop 60] [--json out.json]

For each recording (default: 60-s crops of EEGBCI S001R01-R04 from ../shared/eeg),
the model runs at every codebook depth (real .eegc payload) and the DCT coder
over a sweep of step sizes; the table gives PRD at each model operating point
next to the DCT's PRD at the same bits per sample, plus the DCT's bits per
sample for PRD 10 % and its PRD at 0.5 bits/sample.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eegcodec.evaluate import evaluate_raw
from eegcodec.io import read_raw
from eegcodec.metrics import prd, spectral_error_db
from eegcodec.models import load_codec

from .classical import dct_code, interpolate_at

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "eeg"
DEFAULT_FILES = [ROOT / "eegbci_S001" / f"S001R0{i}.edf" for i in (1, 2, 3, 4)]


def dct_curve(x: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bits per sample, PRD %, spectral error dB) of the DCT coder over a sweep of step sizes."""
    scale = np.median(np.std(x, axis=1))
    bps, prds, spec = [], [], []
    for step in scale * np.geomspace(0.02, 20, 40):
        rec, nbytes = dct_code(x, sfreq, step)
        bps.append(8 * nbytes / x.size)
        prds.append(prd(x, rec))
        spec.append(spectral_error_db(x, rec, sfreq))
    return np.array(bps), np.array(prds), np.array(spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--files", nargs="+", type=Path, default=DEFAULT_FILES)
    ap.add_argument("--crop", type=float, default=60.0)
    ap.add_argument("--codebooks", type=int, nargs="+")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    codec = load_codec(args.model)
    depths = args.codebooks or list(range(1, codec.info.n_codebooks + 1))
    model_rows, dct_rows = [], []
    for path in args.files:
        raw = read_raw(path, preload=True)
        raw.crop(0, min(args.crop, raw.times[-1]), include_tmax=False)
        rows = evaluate_raw(raw, codec, depths, name=path.name)
        x = raw.get_data(picks="eeg")
        bps, prds, spec = dct_curve(x, raw.info["sfreq"])
        for r in rows:
            r["dct_prd_at_same_bps"] = interpolate_at(bps, prds, r["bits_per_sample"])
            r["dct_spectral_error_at_same_bps"] = interpolate_at(bps, spec, r["bits_per_sample"])
        model_rows += rows
        dct_rows.append({"file": path.name, "bps": bps.tolist(), "prd": prds.tolist(), "spectral_error_db": spec.tolist(),
                         "bps_at_prd10": interpolate_at(prds, bps, 10.0), "prd_at_bps0.5": interpolate_at(bps, prds, 0.5)})
    print(f"model {codec.info.name}; {args.crop:g}-s crops; PRD median over channels (%)\n")
    print("| codebooks | bits/sample (mean) | model PRD % | DCT PRD % at same bps | model SNR dB | model spectral err dB | DCT spectral err dB at same bps |")
    print("|---|---|---|---|---|---|---|")
    for k in depths:
        rs = [r for r in model_rows if r["codebooks"] == k]
        print(f"| {k} | {np.mean([r['bits_per_sample'] for r in rs]):.3f} | {np.mean([r['prd_percent'] for r in rs]):.1f} | "
              f"{np.nanmean([r['dct_prd_at_same_bps'] for r in rs]):.1f} | {np.mean([r['snr_db'] for r in rs]):.2f} | {np.mean([r['spectral_error_db'] for r in rs]):.2f} | "
              f"{np.nanmean([r['dct_spectral_error_at_same_bps'] for r in rs]):.2f} |")
    print(f"\nDCT: bits/sample for PRD 10 %: {np.nanmean([d['bps_at_prd10'] for d in dct_rows]):.2f}; "
          f"PRD at 0.5 bits/sample: {np.nanmean([d['prd_at_bps0.5'] for d in dct_rows]):.1f} %")
    if args.json:
        args.json.write_text(json.dumps({"model": model_rows, "dct": dct_rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
