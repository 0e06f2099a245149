"""A linear probe on the tokens, on subjects it never trained on: do the discrete tokens carry what
a classifier needs, against band powers of the original and of a ``--prd`` file of the same size?

``eegcodec bench probe --out DIR [--eeg ../shared/eeg] [--tasks eegmat eegbci] [--model default]
[--codebooks N] [--window-frames 10] [--crop 60] [--bootstrap 2000]``

Tasks (recordings found under ``--eeg``, searched recursively):

- ``eegmat``: rest (``SubjectNN_1``) vs mental arithmetic (``SubjectNN_2``), EEGMAT;
- ``eegbci``: eyes open (``SxxxR01``) vs eyes closed (``SxxxR02``), EEGBCI;

every subject with both recordings but those of :data:`SEEN` (the shipped models' training
subjects), which are scored apart: by the classifiers trained on all the other subjects, outside
the task's figures.

Each recording is cropped to its first ``--crop`` seconds, tokenized (:func:`eegcodec.tokenize`) and
cut into windows of ``--window-frames`` consecutive frames (mc-small: 0.4 s a frame, so 10 frames
are 4 s). Per window, five feature sets go to the same classifier (standardised features, L2
logistic regression, scikit-learn), trained on all subjects but one and tested on that one, for
each subject in turn (leave one subject out):

- ``latents``: the quantized embeddings (:meth:`Tokens.latents`, [rows, dim, frames]) pooled over
  the window's frames: mean and standard deviation per row and dimension;
- ``code_histogram``: the frequency of each first-codebook code in the window, over all rows;
- ``tokens``: both of the above side by side;
- ``band_power`` (reference, the EEG itself): log power per EEG channel in 1-4, 4-8, 8-13,
  13-30 Hz (Welch) over the window's span;
- ``prd_band_power``: the same band powers of the recording rebuilt from a ``--prd`` file whose
  size matches the token file's (:func:`prd_at_bytes`: the largest PRD target, found by bisection
  on a log scale per recording, whose file is not larger than the token file), so at equal (or
  fewer) bits per sample.

Intervals: 95 % percentile bootstrap over subjects (subjects drawn with replacement, the mean of
their accuracies recomputed, ``--bootstrap`` draws), and the Wilson interval over all test windows
pooled (windows of one subject are not independent: that one is too narrow). Chance: 0.5 (both
classes have the same number of windows per subject after cropping).

Writes ``results.json`` and ``report.md`` into ``--out``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import EegcodecError
from .common import Clock, hardware, hardware_line, md_table, model_card, write_outputs

HELP = (
    "linear probe on the tokens against band powers and --prd at equal bits (EEGMAT, EEGBCI; unseen subjects)"
)
INPUTS = None

#: the shipped models' training subjects (EEGBCI S001, EEGMAT 00-09; the models' cards): scored apart
SEEN = frozenset({"S001", *(f"Subject{i:02d}" for i in range(10))})
BANDS = ((1, 4), (4, 8), (8, 13), (13, 30))
FEATURES = ("latents", "code_histogram", "tokens", "band_power", "prd_band_power")
#: task -> (file name pattern with groups (subject, run), {run: label}, class names)
TASKS = {
    "eegmat": (r"(Subject\d\d)_([12])\.edf", {"1": 0, "2": 1}, ("rest", "arithmetic")),
    "eegbci": (r"(S\d\d\d)(R0[12])\.edf", {"R01": 0, "R02": 1}, ("eyes open", "eyes closed")),
}


def task_files(root: Path, task: str) -> list[tuple[Path, str, int]]:
    """(file, subject, label) of ``task`` (:data:`TASKS`) under ``root``: subjects with both classes only,
    sorted; an error when fewer than three subjects have both."""
    pattern, runs, _ = TASKS[task]
    found: dict[str, dict[int, Path]] = {}
    for path in sorted(Path(root).rglob("*.edf")):
        m = re.fullmatch(pattern, path.name)
        if m:
            found.setdefault(m.group(1), {}).setdefault(runs[m.group(2)], path)
    out = [
        (p, s, label) for s, byl in sorted(found.items()) if len(byl) == 2 for label, p in sorted(byl.items())
    ]
    if len({s for _, s, _ in out if s not in SEEN}) < 3:
        raise EegcodecError(f"{root}: fewer than three subjects with both recordings of task {task}")
    return out


def band_powers(raw, starts: np.ndarray, seconds: float) -> np.ndarray:
    """float64 [windows, EEG channels * 4]: log band power (V^2/Hz, Welch, 1-s segments) per EEG
    channel and band of :data:`BANDS`, per window of ``seconds`` starting at ``starts`` (s)."""
    import mne
    from scipy.signal import welch

    x, sfreq = raw.get_data(picks=mne.pick_types(raw.info, eeg=True)), raw.info["sfreq"]
    out = []
    for t0 in starts:
        i0, i1 = int(round(t0 * sfreq)), min(int(round((t0 + seconds) * sfreq)), x.shape[1])
        f, p = welch(x[:, i0:i1], sfreq, nperseg=min(int(sfreq), i1 - i0), axis=-1)
        out.append(np.concatenate([np.log(p[:, (f >= lo) & (f < hi)].mean(-1) + 1e-30) for lo, hi in BANDS]))
    return np.array(out)


def token_features(
    tokens, window_frames: int, codebook_size: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per window of ``window_frames`` frames: ``latents``, ``code_histogram`` and ``tokens`` (float64
    [windows, features]), and the windows' start times (s, [windows])."""
    z = tokens.latents()  # [rows, dim, frames]
    starts = np.arange(0, tokens.frames // window_frames * window_frames, window_frames)
    lat, hist = [], []
    for a in starts:
        w = z[:, :, a : a + window_frames]
        lat.append(np.concatenate([w.mean(-1).ravel(), w.std(-1).ravel()]))
        codes = tokens.codes[:, 0, a : a + window_frames].ravel()
        hist.append(np.bincount(codes, minlength=codebook_size) / codes.size)
    lat, hist = np.array(lat, dtype=np.float64), np.array(hist)
    return {"latents": lat, "code_histogram": hist, "tokens": np.hstack([lat, hist])}, tokens.times[starts]


def prd_at_bytes(
    raw, target_bytes: int, steps: int = 8, lo: float = 0.5, hi: float = 99.0
) -> tuple[float, bytes]:
    """The largest ``--prd`` target (percent, bisection on log PRD over [lo, hi], ``steps`` halvings)
    whose file is at most ``target_bytes`` long, and that file; ``hi``'s file if none is that small."""
    from ..api import compress

    best = (hi, compress(raw, None, prd=hi))
    if len(best[1]) > target_bytes:
        return best
    a, b = math.log(lo), math.log(hi)
    for _ in range(steps):
        p = math.exp((a + b) / 2)
        data = compress(raw, None, prd=p)
        if len(data) <= target_bytes:
            best, b = (p, data), math.log(p)
        else:
            a = math.log(p)
    return best


def recording_features(path: Path, codec, depth, window_frames: int, crop: float | None) -> dict:
    """Every feature set of one recording's windows ([windows, features] each), and its bits."""
    import mne

    from ..api import decompress
    from ..io import read_raw
    from ..tokens import tokenize

    raw = read_raw(path, preload=True)
    ecg = {n: "ecg" for n in raw.ch_names if n.upper().startswith("ECG")}
    raw.set_channel_types(ecg, on_unit_change="ignore", verbose="error")
    if crop is not None and raw.times[-1] > crop:
        raw.crop(0, crop, include_tmax=False)
    tokens = tokenize(raw, codec, depth)
    feats, starts = token_features(tokens, window_frames, codec.info.codebook_size)
    seconds = window_frames * tokens.frame_seconds
    feats["band_power"] = band_powers(raw, starts, seconds)
    prd, data = prd_at_bytes(raw, len(tokens.eegc_bytes()))
    feats["prd_band_power"] = band_powers(decompress(data), starts, seconds)
    values = len(mne.pick_types(raw.info, eeg=True)) * raw.n_times
    return {
        "features": feats,
        "depth": tokens.depth,
        "window_seconds": seconds,
        "record": {
            "file": str(path),
            "seconds": raw.n_times / raw.info["sfreq"],
            "windows": len(starts),
            "token_bits_per_sample": 8 * len(tokens.eegc_bytes()) / values,
            "prd": prd,
            "prd_bits_per_sample": 8 * len(data) / values,
        },
    }


def leave_subjects_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray, apart: np.ndarray) -> dict:
    """Per left-out subject: accuracy and correct windows of standardised L2 logistic regression
    trained on the other subjects (never on those where ``apart``, which are scored by the model
    trained on all the others); x [windows, features], y, groups, apart [windows]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    per, correct = {}, {}
    for subject in dict.fromkeys(groups[~apart]):
        train, test = ~apart & (groups != subject), groups == subject
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        hit = clf.fit(x[train], y[train]).predict(x[test]) == y[test]
        per[str(subject)], correct[str(subject)] = float(hit.mean()), [int(hit.sum()), int(hit.size)]
    apart_scores = {}
    if apart.any():
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(
            x[~apart], y[~apart]
        )
        for subject in dict.fromkeys(groups[apart]):
            test = groups == subject
            apart_scores[str(subject)] = float((clf.predict(x[test]) == y[test]).mean())
    return {"per_subject": per, "correct": correct, "apart": apart_scores}


def intervals(scores: dict, draws: int, seed: int) -> dict:
    """``scores`` (:func:`leave_subjects_out`) with ``mean`` (of the subjects' accuracies), ``ci95``
    (percentile bootstrap over subjects, ``draws`` resamples) and ``wilson95`` (over pooled windows)."""
    from scipy.stats import binomtest

    acc = np.array(list(scores["per_subject"].values()))
    boot = np.random.default_rng(seed).choice(acc, size=(draws, acc.size), replace=True).mean(1)
    k, n = np.sum(list(scores["correct"].values()), axis=0)
    w = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return {
        **scores,
        "mean": float(acc.mean()),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "pooled": float(k / n),
        "wilson95": [float(w.low), float(w.high)],
    }


def difference(a: dict, b: dict, draws: int, seed: int) -> dict:
    """Mean over subjects of accuracy ``a`` minus ``b`` (per-subject scores of the same subjects) and its
    95 % percentile bootstrap interval over subjects (paired: each draw resamples subjects once)."""
    d = np.array([a[s] - b[s] for s in a])
    boot = d[np.random.default_rng(seed).integers(0, d.size, size=(draws, d.size))].mean(1)
    return {
        "mean": float(d.mean()),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
    }


def run_task(files, codec, depth, window_frames: int, crop, draws: int, seed: int) -> dict:
    """One task: its recordings' features and every feature set's scores."""
    feats, labels, groups, records = {k: [] for k in FEATURES}, [], [], []
    for path, subject, label in files:
        r = recording_features(path, codec, depth, window_frames, crop)
        for k in FEATURES:
            feats[k].append(r["features"][k])
        n = r["record"]["windows"]
        labels += [label] * n
        groups += [subject] * n
        records.append({**r["record"], "subject": subject, "label": label})
    y, g = np.array(labels), np.array(groups)
    apart = np.isin(g, sorted(SEEN))
    scores = {
        k: intervals(leave_subjects_out(np.concatenate(v), y, g, apart), draws, seed)
        for k, v in feats.items()
    }
    ref = scores["band_power"]["per_subject"]
    for v in scores.values():
        v["minus_band_power"] = difference(v["per_subject"], ref, draws, seed)
    return {
        "depth": r["depth"],
        "window_seconds": r["window_seconds"],
        "subjects": sorted(set(g[~apart].tolist())),
        "apart": sorted(set(g[apart].tolist())),
        "windows": [int((y[~apart] == 0).sum()), int((y[~apart] == 1).sum())],  # apart: not counted
        "token_bits_per_sample": float(np.mean([x["token_bits_per_sample"] for x in records])),
        "prd_bits_per_sample": float(np.mean([x["prd_bits_per_sample"] for x in records])),
        "recordings": records,
        "accuracy": scores,
    }


def run(
    tasks: dict, model="default", depth=None, window_frames: int = 10, crop=60.0, draws=2000, seed=0
) -> dict:
    """``tasks``: {name: [(path, subject, label)]} (labels 0/1) -> the probe's results."""
    from ..backends.registry import load_codec

    clock = Clock()
    codec = load_codec(model) if isinstance(model, str) else model
    out = {
        name: run_task(files, codec, depth, window_frames, crop, draws, seed) for name, files in tasks.items()
    }
    return {
        "model": model_card(codec),
        "window_frames": window_frames,
        "crop_seconds": crop,
        "bootstrap_draws": draws,
        "chance": 0.5,
        "tasks": out,
        "hardware": hardware(),
        "seconds": clock.seconds(),
    }


def task_table(name: str, t: dict) -> str:
    """One task's section of the report."""
    classes = TASKS[name][2] if name in TASKS else ("class 0", "class 1")
    rows = []
    for k, v in t["accuracy"].items():
        apart = ", ".join(f"{s} {a:.2f}" for s, a in v["apart"].items()) or "-"
        rows.append(
            [
                k,
                v["mean"],
                "{:.2f}-{:.2f}".format(*v["ci95"]),
                "{:.2f}-{:.2f}".format(*v["wilson95"]),
                "{:+.3f} ({:+.2f} to {:+.2f})".format(
                    v["minus_band_power"]["mean"], *v["minus_band_power"]["ci95"]
                ),
                min(v["per_subject"].values()),
                max(v["per_subject"].values()),
                apart,
            ]
        )
    return (
        f"## {name}: {classes[0]} vs {classes[1]}\n\n"
        f"{len(t['subjects'])} subjects ({t['subjects'][0]}-{t['subjects'][-1]}), leave one subject out; "
        f"{t['windows'][0]} + {t['windows'][1]} windows of {t['window_seconds']:g} s; depth {t['depth']}. "
        f"Bits per EEG sample (mean over recordings): tokens {t['token_bits_per_sample']:.3f}, "
        f"--prd at matched size {t['prd_bits_per_sample']:.3f} (PRD targets "
        f"{min(r['prd'] for r in t['recordings']):.1f}-{max(r['prd'] for r in t['recordings']):.1f} %).\n\n"
        + md_table(
            [
                "features",
                "mean accuracy",
                "95 % CI (bootstrap over subjects)",
                "95 % Wilson (pooled windows)",
                "minus band_power (paired bootstrap 95 %)",
                "worst subject",
                "best subject",
                "apart (training subject of the model)",
            ],
            rows,
            {1: ".3f", 5: ".2f", 6: ".2f"},
        )
        + "\n"
    )


def report(results: dict) -> str:
    m = results["model"]
    return (
        "# Linear probe on the tokens: unseen subjects, tokens vs band powers vs --prd at equal bits\n\n"
        f"Model {m['name']} (sha256 {m['weights_sha256'][:12]}); recordings cropped to their first "
        f"{results['crop_seconds']:g} s. Classifier: standardised features, L2 logistic regression (C=0.1), "
        "trained on all subjects but one, tested on that one. Mean accuracy is the mean over left-out "
        f"subjects; its 95 % interval is a percentile bootstrap over subjects ({results['bootstrap_draws']} "
        "draws); the Wilson interval pools all test windows, which are not independent within a subject, "
        f"so it is too narrow. Chance: {results['chance']:g} (balanced classes). Features per window: "
        "`latents` (mean and standard deviation of the quantized embeddings over the window's frames), "
        "`code_histogram` (first-codebook code frequencies), `tokens` (both), `band_power` (log 1-4, 4-8, "
        "8-13, 13-30 Hz power per EEG channel of the original: the reference), `prd_band_power` (the same "
        "of the recording rebuilt from a `--prd` file: per recording, the largest PRD target, by bisection "
        "on log PRD, whose file is no larger than the token file). Bits per EEG sample: the whole file "
        "(side data included) over the EEG channels' samples. The `apart` column scores the model's "
        "training subjects (EEGBCI S001, EEGMAT 00-09) with the classifier trained on all the task's other "
        "subjects; they are in none of the other figures.\n\n"
        + "\n".join(task_table(name, t) for name, t in results["tasks"].items())
        + f"\n{hardware_line(results['hardware'])}; {results['seconds']} s.\n"
    )


def add_arguments(parser) -> None:
    parser.add_argument(
        "--eeg", default="../shared/eeg", help="folder holding EEGMAT and EEGBCI (searched recursively)"
    )
    parser.add_argument(
        "--tasks", nargs="+", choices=sorted(TASKS), default=["eegmat", "eegbci"], help="tasks"
    )
    parser.add_argument(
        "--model", default="default", help="model name or weights file (default: %(default)s)"
    )
    parser.add_argument("--codebooks", type=int, default=None, help="depth (default: the model's)")
    parser.add_argument(
        "--window-frames", type=int, default=10, help="frames per window (default: %(default)s)"
    )
    parser.add_argument("--crop", type=float, default=60.0, help="seconds kept from each recording's start")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws (default: %(default)s)")


def main(args, say) -> None:
    tasks = {t: task_files(Path(args.eeg), t) for t in args.tasks}
    results = run(tasks, args.model, args.codebooks, args.window_frames, args.crop, args.bootstrap)
    write_outputs(Path(args.out), results, report(results))
