"""PRD with the mains notched out: how well a token model and ``pca_dct`` keep the EEG itself.

``eegcodec bench notch FILE... [--model mc-small] [--codebooks 1 6] [--crop 60] [--hz 60]``

PRD counts mains interference as signal, and a file that stores the mains apart
(:mod:`eegcodec.mains`) gets it back almost exactly. Here each recording (first ``--crop``
seconds) is compressed with the model at each depth, ``pca_dct`` is bisected to the same bits per
sample, and the median channel PRD is given both plain and with a notch at ``--hz`` (MNE's
``notch_filter``, 2-Hz width) applied to the original and to each reconstruction alike. Prints JSON.
"""

from __future__ import annotations

import json
import sys

import mne

from ..format.container import Archive
from ..io import load_crop
from ..metrics import prd
from ..pipeline import compress_raw, decompress_archive
from .classical import pca_dct_code, step_for_bps
from .common import recordings

HELP = "PRD with the mains notched out: a token model beside pca_dct at equal bits (prints JSON)"
OUT = False


def add_arguments(parser) -> None:
    parser.add_argument(
        "--model", default="default", help="model name or weights file (default: %(default)s)"
    )
    parser.add_argument("--codebooks", type=int, nargs="+", default=[1, 6], help="depths (default: 1 6)")
    parser.add_argument("--crop", type=float, default=60.0, help="seconds of each recording (default: 60)")
    parser.add_argument("--hz", type=float, default=60.0, help="mains frequency to notch (default: 60)")


def main(args, say) -> None:
    files = [str(f) for f in recordings(args.inputs, "notch")]
    json.dump(run(files, args.model, args.codebooks, args.crop, args.hz), sys.stdout, indent=1)
    print()


def run(paths: list[str], model: str, depths: list[int], crop: float, hz: float) -> list[dict]:
    from ..backends.registry import load_codec

    codec = load_codec(model)
    rows = []
    for path in paths:
        raw = load_crop(path, crop)
        picks = mne.pick_types(raw.info, eeg=True)
        x, sfreq = raw.get_data(picks=picks), raw.info["sfreq"]

        def notch(a, sfreq=sfreq):
            return mne.filter.notch_filter(a, sfreq, [hz], notch_widths=2.0, verbose="error")

        for depth in depths:
            arc = Archive.from_bytes(compress_raw(raw, codec, n_codebooks=depth))
            bps = 8 * (len(arc.codes) + len(arc.side)) / x.size
            y = decompress_archive(arc, codec).get_data(picks=picks)
            _, y_pca, bps_pca = step_for_bps(pca_dct_code, x, sfreq, bps)
            rows.append(
                {
                    "file": str(path),
                    "codebooks": depth,
                    "bits_per_sample": round(bps, 4),
                    "pca_dct_bits_per_sample": round(bps_pca, 4),
                    "model_prd": round(prd(x, y), 1),
                    "pca_dct_prd": round(prd(x, y_pca), 1),
                    "model_prd_notched": round(prd(notch(x), notch(y)), 1),
                    "pca_dct_prd_notched": round(prd(notch(x), notch(y_pca)), 1),
                }
            )
    return rows
