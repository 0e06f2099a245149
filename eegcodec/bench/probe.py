"""A linear probe on the tokens: eyes open vs eyes closed (EEGBCI R01 vs R02), leave-subjects-out.

``eegcodec bench probe --out DIR [--eeg ../shared/eeg] [--model default] [--codebooks N]
[--window-frames 10]``

Each recording is tokenized (:func:`eegcodec.tokenize`) and cut into windows of
``--window-frames`` consecutive frames (mc-small: 0.4 s a frame, so 10 frames are 4 s). Per
window, three feature sets go to the same classifier (standardised features, L2 logistic
regression, scikit-learn), trained on all subjects but one and tested on that one, for each
subject in turn:

- ``latents``: the quantized embeddings (:meth:`Tokens.latents`, [rows, dim, frames]) pooled over
  the window's frames: mean and standard deviation per row and dimension;
- ``code_histogram``: the frequency of each first-codebook code in the window, over all rows;
- ``band_power`` (reference, from the EEG itself, not the tokens): log power per EEG channel
  in 1-4, 4-8, 8-13, 13-30 Hz (Welch) over the same span.

Writes ``results.json`` and ``report.md`` into ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Clock, hardware, hardware_line, md_table, model_card, write_outputs

HELP = "linear probe on the tokens: eyes open vs closed, EEGBCI S001-S005, leave one subject out"
INPUTS = None

#: (subject, run) -> label: R01 eyes open (0), R02 eyes closed (1)
RUNS = {"R01": 0, "R02": 1}
SUBJECTS = ("S001", "S002", "S003", "S004", "S005")
BANDS = ((1, 4), (4, 8), (8, 13), (13, 30))
FEATURES = ("latents", "code_histogram", "band_power")


def eegbci_files(root: Path) -> list[tuple[Path, str, int]]:
    """(file, subject, label) of R01/R02 of :data:`SUBJECTS` under ``root`` (searched recursively)."""
    out = []
    for subject in SUBJECTS:
        for run, label in RUNS.items():
            found = sorted(Path(root).rglob(f"{subject}{run}.edf"))
            if not found:
                raise FileNotFoundError(f"{subject}{run}.edf is not under {root}")
            out.append((found[0], subject, label))
    return out


def window_features(tokens, raw, window_frames: int, codebook_size: int) -> dict[str, np.ndarray]:
    """Per window of ``window_frames`` frames: each feature set float64 [windows, features]."""
    import mne
    from scipy.signal import welch

    z = tokens.latents()  # [rows, dim, frames]
    picks = mne.pick_types(raw.info, eeg=True)
    x, sfreq = raw.get_data(picks=picks), raw.info["sfreq"]
    size = tokens.codes.shape[-1] // window_frames * window_frames
    out = {name: [] for name in FEATURES}
    for a in range(0, size, window_frames):
        w = z[:, :, a : a + window_frames]
        out["latents"].append(np.concatenate([w.mean(-1).ravel(), w.std(-1).ravel()]))
        codes = tokens.codes[:, 0, a : a + window_frames].ravel()
        out["code_histogram"].append(np.bincount(codes, minlength=codebook_size) / codes.size)
        t0 = tokens.times[a]
        i0, i1 = int(round(t0 * sfreq)), int(round((t0 + window_frames * tokens.frame_seconds) * sfreq))
        f, p = welch(x[:, i0 : min(i1, x.shape[1])], sfreq, nperseg=min(int(sfreq), i1 - i0), axis=-1)
        out["band_power"].append(
            np.concatenate([np.log(p[:, (f >= lo) & (f < hi)].mean(-1) + 1e-30) for lo, hi in BANDS])
        )
    return {k: np.array(v) for k, v in out.items()}


def leave_subjects_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict:
    """Accuracy of standardised L2 logistic regression per left-out subject, and their mean."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    per = {}
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        clf.fit(x[train], y[train])
        per[str(groups[test][0])] = float((clf.predict(x[test]) == y[test]).mean())
    return {"per_subject": per, "mean": float(np.mean(list(per.values())))}


def run(files: list[tuple[Path, str, int]], model="default", depth=None, window_frames: int = 10) -> dict:
    """Features of every window of ``files`` ((path, subject, label)) and the probe's accuracies."""
    from ..backends.registry import load_codec
    from ..io import read_raw
    from ..tokens import tokenize

    clock = Clock()
    codec = load_codec(model) if isinstance(model, str) else model
    feats, labels, groups = {k: [] for k in FEATURES}, [], []
    for path, subject, label in files:
        tokens = tokenize(path, codec, depth)
        f = window_features(tokens, read_raw(path, preload=True), window_frames, codec.info.codebook_size)
        for k in FEATURES:
            feats[k].append(f[k])
        labels += [label] * len(f["latents"])
        groups += [subject] * len(f["latents"])
    y, g = np.array(labels), np.array(groups)
    scores = {k: leave_subjects_out(np.concatenate(v), y, g) for k, v in feats.items()}
    return {
        "model": model_card(codec),
        "depth": tokens.depth,
        "window_frames": window_frames,
        "window_seconds": window_frames * tokens.frame_seconds,
        "windows": {"eyes_open": int((y == 0).sum()), "eyes_closed": int((y == 1).sum())},
        "files": [str(p) for p, _, _ in files],
        "accuracy": scores,
        "hardware": hardware(),
        "seconds": clock.seconds(),
    }


def report(results: dict) -> str:
    subjects = list(results["accuracy"]["latents"]["per_subject"])
    rows = [[k, *[v["per_subject"][s] for s in subjects], v["mean"]] for k, v in results["accuracy"].items()]
    m = results["model"]
    return (
        f"# Linear probe: eyes open vs closed (EEGBCI R01 vs R02), leave one subject out\n\n"
        f"Model {m['name']} (sha256 {m['weights_sha256'][:12]}), {results['depth']} codebooks; windows of "
        f"{results['window_frames']} frames ({results['window_seconds']:g} s): {results['windows']}. "
        f"Chance: 0.5.\n\n"
        + md_table(["features", *subjects, "mean"], rows, {i: ".2f" for i in range(1, len(subjects) + 2)})
        + f"\n\n{hardware_line(results['hardware'])}; {results['seconds']} s.\n"
    )


def add_arguments(parser) -> None:
    parser.add_argument("--eeg", default="../shared/eeg", help="folder holding EEGBCI S001-S005 R01/R02")
    parser.add_argument(
        "--model", default="default", help="model name or weights file (default: %(default)s)"
    )
    parser.add_argument("--codebooks", type=int, default=None, help="depth (default: the model's)")
    parser.add_argument(
        "--window-frames", type=int, default=10, help="frames per window (default: %(default)s)"
    )


def main(args, say) -> None:
    results = run(eegbci_files(Path(args.eeg)), args.model, args.codebooks, args.window_frames)
    write_outputs(Path(args.out), results, report(results))
