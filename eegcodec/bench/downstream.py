"""``eegcodec bench downstream``: does a classifier still find what it found in the original EEG?

Tasks are recognised from the file names given (files that match none are ignored):

* ``eyes`` — eyes open vs closed: EEGBCI-named runs ``S###R01`` (open) and ``S###R02``
  (closed), 4-s windows.
* ``fists`` — imagined left vs right fist: EEGBCI imagery runs R04, R08, R12, annotations
  T1 (left) / T2 (right), 0.5-4.0 s after each cue.
* ``arithmetic`` — rest vs mental arithmetic: EEGMAT-named ``Subject##_1`` (rest) and
  ``Subject##_2`` (task), 4-s windows.

Within each group the classes are balanced by keeping evenly spaced windows of the
larger class. Groups are subjects when there are several, else 15-s blocks (windowed
tasks) or runs (fists). The classifier is log band power (delta..gamma, Welch) per channel,
centred per group (the group's mean feature vector, no labels, is subtracted) -> standardise
-> logistic regression, cross-validated over groups (no group is in both train and test).
For every coder condition three accuracies are pooled over folds, each
with a 95 % Wilson interval:

* ``orig_orig`` — trained and tested on the original (the reference);
* ``orig_recon`` — trained on the original, tested on the reconstruction;
* ``recon_recon`` — trained and tested on reconstructions.

Conditions: each model at each chosen codebook depth, and the DCT and wavelet coders at
about the bits/sample that depth reached: per file the step that spends those bits is found
by bisection on its first 20 s, and every file is then coded with one step for the task,
the geometric mean of those (a per-file step would let the classifier recognise files,
hence classes); the bits reached are what is reported.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import EegcodecError
from ..evaluate import evaluate_raw
from ..io import find_recordings, read_raw
from ..metrics import band_powers, bits_per_sample
from .classical import LOSSY_CODERS, step_for_bps
from .common import (
    Clock,
    codebooks_option,
    hardware,
    load_models,
    model_card,
    model_labels,
    quick_option,
    recordings,
    write_outputs,
)
from .downstream_report import plot, report

EEGBCI = re.compile(r"S(\d{3})R(\d{2})\.edf$", re.I)
EEGMAT = re.compile(r"Subject(\d+)_([12])\.edf$", re.I)
IMAGERY_RUNS = (4, 8, 12)


@dataclass
class DownstreamConfig:
    codebooks: list[int] | None = None  #: model depths (None: 1, 3, 6 and the maximum, as the model allows)
    window_seconds: float = 4.0  #: window length for the windowed tasks
    block_seconds: float = 15.0  #: time block = CV group when a task has one subject
    max_folds: int = 5
    classical: bool = True  #: also run DCT and wavelet at matched bits/sample
    search_seconds: float = 20.0  #: data used to find the classical step for a target bits/sample

    @classmethod
    def quick(cls) -> DownstreamConfig:
        return cls(codebooks=[1], window_seconds=2.0, block_seconds=6.0, max_folds=3)


HELP = "classifiers on reconstructed EEG"
MODELS = True


def add_arguments(parser) -> None:
    codebooks_option(parser, "1, 3, 6, max")
    quick_option(parser)


def main(args, say) -> None:
    recordings(args.inputs, "downstream")
    cfg = DownstreamConfig.quick() if args.quick else DownstreamConfig()
    cfg.codebooks = args.codebooks or cfg.codebooks
    models, labels = model_labels(args.models)
    run(args.inputs, models, Path(args.out), cfg, labels=labels, progress=say)


@dataclass
class Window:
    """One labelled window: ``file`` samples [start, start + length) of the recording."""

    file: Path
    start: int
    length: int
    label: int
    group: str


@dataclass
class Task:
    name: str
    classes: tuple[str, str]
    windows: list[Window]
    #: "bandpower" (log band power -> logistic regression) or "csp" (8-30 Hz epochs -> MNE's CSP -> LDA)
    features: str = "bandpower"

    @property
    def files(self) -> list[Path]:
        return sorted({w.file for w in self.windows})


# ---------------------------------------------------------------------------
# tasks from file names
# ---------------------------------------------------------------------------


def _sliding(
    path: Path, label: int, subject: str, cfg: DownstreamConfig, single_subject: bool
) -> list[Window]:
    raw = read_raw(path)
    sf = raw.info["sfreq"]
    n = int(round(cfg.window_seconds * sf))
    block = max(1, int(round(cfg.block_seconds * sf)))
    return [
        Window(path, s, n, label, f"block{s // block}" if single_subject else subject)
        for s in range(0, raw.n_times - n + 1, n)
    ]


def _fists(path: Path, subject: str, run: int, single_subject: bool) -> list[Window]:
    import mne

    raw = read_raw(path)
    sf = raw.info["sfreq"]
    events, ids = mne.events_from_annotations(raw, event_id={"T1": 0, "T2": 1}, verbose="error")
    start, length = int(round(0.5 * sf)), int(round(3.5 * sf))
    group = f"run{run:02d}" if single_subject else subject
    return [
        Window(path, s, length, int(lab), group)
        for s, _, lab in events
        for s in [s - raw.first_samp + start]
        if 0 <= s and s + length <= raw.n_times
    ]


def find_tasks(files: list[Path], cfg: DownstreamConfig) -> list[Task]:
    """The tasks the files support (see the module docstring), classes balanced per group."""
    eegbci = {f: EEGBCI.search(f.name) for f in files}
    eegbci = {f: (m.group(1), int(m.group(2))) for f, m in eegbci.items() if m}
    eegmat = {f: EEGMAT.search(f.name) for f in files}
    eegmat = {f: (m.group(1), int(m.group(2))) for f, m in eegmat.items() if m}
    tasks = []
    eyes = {f: v for f, v in eegbci.items() if v[1] in (1, 2)}
    if len({v[1] for v in eyes.values()}) == 2:
        one = len({v[0] for v in eyes.values()}) == 1
        ws = [w for f, (s, r) in eyes.items() for w in _sliding(f, r - 1, s, cfg, one)]
        tasks.append(Task("eyes", ("eyes open", "eyes closed"), ws))
    fists = {f: v for f, v in eegbci.items() if v[1] in IMAGERY_RUNS}
    if fists:
        one = len({v[0] for v in fists.values()}) == 1
        ws = [w for f, (s, r) in fists.items() for w in _fists(f, s, r, one)]
        tasks.append(Task("fists", ("left fist (imagined)", "right fist (imagined)"), ws))
        tasks.append(Task("fists_csp", ("left fist (imagined)", "right fist (imagined)"), ws, "csp"))
    if len({v[1] for v in eegmat.values()}) == 2:
        one = len({v[0] for v in eegmat.values()}) == 1
        ws = [w for f, (s, r) in eegmat.items() for w in _sliding(f, r - 1, s, cfg, one)]
        tasks.append(Task("arithmetic", ("rest", "mental arithmetic"), ws))
    tasks = [Task(t.name, t.classes, balance(t.windows), t.features) for t in tasks]
    return [
        t for t in tasks if len({w.group for w in t.windows}) >= 2 and len({w.label for w in t.windows}) == 2
    ]


def balance(windows: list[Window]) -> list[Window]:
    """Equal class counts within each group: evenly spaced windows of the larger class are kept."""
    out = []
    by_group = defaultdict(lambda: defaultdict(list))
    for w in windows:
        by_group[w.group][w.label].append(w)
    for group in sorted(by_group):
        classes = by_group[group]
        if len(classes) < 2:
            continue
        n = min(len(v) for v in classes.values())
        for label in sorted(classes):
            v = classes[label]
            out += [v[i] for i in np.linspace(0, len(v) - 1, n).round().astype(int)]
    return out


# ---------------------------------------------------------------------------
# features, classifier, statistics
# ---------------------------------------------------------------------------


def window_features(
    x: np.ndarray, sfreq: float, windows: list[Window], kind: str = "bandpower"
) -> np.ndarray:
    """Log band power per channel for each window: x [C, N] (V) -> [W, C * 5]; with ``kind``
    "csp" the 8-30 Hz band-passed window itself, flattened: [W, C * length]."""
    if kind == "csp":
        from scipy.signal import butter, sosfiltfilt

        band = sosfiltfilt(butter(4, [8.0, min(30.0, 0.45 * sfreq)], "bandpass", fs=sfreq, output="sos"), x)
        return np.array([band[:, w.start : w.start + w.length].ravel() for w in windows])
    feats = [
        np.log(band_powers(x[:, w.start : w.start + w.length], sfreq, window_seconds=1.0) + 1e-30).ravel()
        for w in windows
    ]
    return np.array(feats)


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``correct / n``."""
    if n == 0:
        return float("nan"), float("nan")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, min(p, centre - half))), float(
        min(1.0, max(p, centre + half))
    )  # p inside despite rounding


def accuracy(correct: np.ndarray) -> dict:
    """{accuracy, ci95 [lo, hi], n} of a boolean array."""
    n, k = int(correct.size), int(np.sum(correct))
    return {"accuracy": k / n if n else float("nan"), "ci95": list(wilson_interval(k, n)), "n": n}


def centre_by_group(feats: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Subtract each group's mean feature vector (no labels used): removes what differs
    between subjects (or runs) as a whole, the usual first step of cross-subject EEG decoding."""
    out = feats.copy()
    for g in np.unique(groups):
        out[groups == g] -= feats[groups == g].mean(axis=0)
    return out


def _classifier(n_channels: int | None):
    """Band power: standardise -> logistic regression. CSP (``n_channels`` given): the flattened
    epochs back to [W, C, T] -> MNE's CSP (6 log-variance components) -> LDA."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if n_channels is None:
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.preprocessing import FunctionTransformer

    def epochs(f):
        return f.reshape(len(f), n_channels, -1)

    return make_pipeline(
        FunctionTransformer(epochs),
        CSP(n_components=6, log=True, reg="ledoit_wolf"),
        LinearDiscriminantAnalysis(),
    )


def cross_validate(
    feat_orig: np.ndarray,
    feat_rec: np.ndarray | None,
    y: np.ndarray,
    groups: np.ndarray,
    max_folds: int,
    csp_channels: int | None = None,
) -> dict:
    """Group k-fold: orig->orig, orig->recon and recon->recon correctness pooled over folds
    (``csp_channels``: the features are epochs of that many channels, classified with CSP)."""
    from sklearn.model_selection import GroupKFold

    def model():
        return _classifier(csp_channels)

    if csp_channels is None:  # band power: each group's mean feature vector removed
        feat_orig = centre_by_group(feat_orig, groups)
        feat_rec = None if feat_rec is None else centre_by_group(feat_rec, groups)
    import mne

    hits = defaultdict(list)
    folds = GroupKFold(n_splits=min(max_folds, len(np.unique(groups))))
    with mne.utils.use_log_level("error"):  # CSP logs each covariance it estimates
        for train, test in folds.split(feat_orig, y, groups):
            if len(np.unique(y[train])) < 2:
                continue
            clf = model().fit(feat_orig[train], y[train])
            hits["orig_orig"].append(clf.predict(feat_orig[test]) == y[test])
            if feat_rec is not None:
                hits["orig_recon"].append(clf.predict(feat_rec[test]) == y[test])
                hits["recon_recon"].append(
                    model().fit(feat_rec[train], y[train]).predict(feat_rec[test]) == y[test]
                )
    return {k: accuracy(np.concatenate(v)) for k, v in hits.items()}


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------


def _default_depths(n_max: int) -> list[int]:
    return sorted({k for k in (1, 3, 6, n_max) if k <= n_max})


def run(
    inputs: list[str],
    model_names: list[str],
    out: Path,
    cfg: DownstreamConfig,
    labels: list[str] | None = None,
    progress=print,
) -> dict:
    """Run every task the inputs support; write results.json, report.md and figures into ``out``."""
    clock = Clock()
    files = find_recordings(inputs)
    tasks = find_tasks(files, cfg)
    if not tasks:
        raise EegcodecError(
            "no downstream task found in the inputs: need EEGBCI runs S###R01+R02 (eyes) or R04/R08/R12 "
            "(fists), or EEGMAT Subject##_1 + _2 recordings (arithmetic)"
        )
    codecs = load_models(model_names)
    labels = [lab or c.info.name for c, lab in zip(codecs, labels or [None] * len(codecs))]
    results = {
        "benchmark": "downstream",
        "config": asdict(cfg),
        "hardware": hardware(),
        "models": [{**model_card(c), "label": lab} for c, lab in zip(codecs, labels)],
        "tasks": [],
    }
    for task in tasks:
        progress(
            f"downstream: task {task.name}: {len(task.windows)} windows from {len(task.files)} recordings"
        )
        results["tasks"].append(run_task(task, codecs, labels, cfg, progress))
    results["elapsed_s"] = clock.seconds()
    results["figures"] = plot(results, out)
    write_outputs(out, results, report(results))
    return results


class _Conditions:
    """Window features [windows, features] per condition, with its bits per sample and description."""

    def __init__(self, n_windows: int):
        self.n = n_windows
        self.feats: dict[str, np.ndarray] = {}
        self.bps: dict[str, list[float]] = defaultdict(list)
        self.meta: dict[str, dict] = {}

    def put(self, cond: str, idx: list[int], f: np.ndarray) -> None:
        self.feats.setdefault(cond, np.zeros((self.n, f.shape[1])))[idx] = f


def run_task(task: Task, codecs, labels: list[str], cfg: DownstreamConfig, progress) -> dict:
    """Features of every window under every condition, then the three cross-validated accuracies.

    Two passes: the models code every file (and, per file, the classical step that would
    spend the same bits is found); then each classical coder codes every file with one step,
    the geometric mean of those per-file steps, so that a per-file coder setting cannot
    tell the classifier which file (and so which class) a window came from."""
    order = {f: [i for i, w in enumerate(task.windows) if w.file == f] for f in task.files}
    conds = _Conditions(len(task.windows))
    steps: dict[tuple[str, str], list[float]] = defaultdict(
        list
    )  # (coder, model condition) -> per-file steps
    coded_names: dict[Path, list[str]] = {}
    for path, idx in order.items():
        progress(f"  {path.name}")
        wins = [task.windows[i] for i in idx]
        _model_pass(path, wins, idx, codecs, labels, cfg, conds, steps, coded_names, task.features)
    for path, idx in order.items() if steps else ():
        raw = read_raw(path, preload=True)
        x, sf = raw.get_data(picks=coded_names[path]), raw.info["sfreq"]
        wins = [task.windows[i] for i in idx]
        for (name, cond), per_file in steps.items():
            rec, nbytes = LOSSY_CODERS[name](x, sf, float(np.exp(np.mean(np.log(per_file)))))
            matched = f"{name} @ {cond}"
            conds.put(matched, idx, window_features(rec, sf, wins, task.features))
            conds.bps[matched].append(bits_per_sample(nbytes, *x.shape))
            meta = conds.meta[cond]
            conds.meta[matched] = {
                "coder": name,
                "matched_to": cond,
                "codebooks": meta["codebooks"],
                "model": meta["coder"],
            }
    y = np.array([w.label for w in task.windows])
    groups = np.array([w.group for w in task.windows])
    csp = len(next(iter(coded_names.values()))) if task.features == "csp" and coded_names else None
    reference = cross_validate(conds.feats["original"], None, y, groups, cfg.max_folds, csp)["orig_orig"]
    conditions = []
    for cond in (c for c in conds.feats if c != "original"):
        scores = cross_validate(conds.feats["original"], conds.feats[cond], y, groups, cfg.max_folds, csp)
        conditions.append(
            {
                "condition": cond,
                **conds.meta[cond],
                "bits_per_sample": float(np.mean(conds.bps[cond])),
                **scores,
            }
        )
    counts = np.bincount(y, minlength=2)
    return {
        "task": task.name,
        "classes": list(task.classes),
        "windows": len(task.windows),
        "class_counts": counts.tolist(),
        "groups": sorted(set(groups.tolist())),
        "files": [str(f) for f in task.files],
        "chance": float(counts.max() / counts.sum()),
        "original": reference,
        "conditions": conditions,
    }


def _model_pass(
    path: Path, wins, idx, codecs, labels, cfg: DownstreamConfig, conds: _Conditions, steps, coded_names, kind
) -> None:
    """One file through every model at every depth: window features of the original and of each
    reconstruction; per classical coder, the step that spends the same bits on this file."""
    raw = read_raw(path, preload=True)
    sf = raw.info["sfreq"]
    x = None
    for codec, label in zip(codecs, labels):
        depths = [
            k
            for k in (cfg.codebooks or _default_depths(codec.info.n_codebooks))
            if 1 <= k <= codec.info.n_codebooks
        ]
        recs = {}

        def on_rec(k, coded, rec, recs=recs):
            coded_names[path] = [raw.ch_names[c] if isinstance(c, int) else c for c in coded]
            recs[k] = rec.get_data(picks=coded_names[path])

        rows = evaluate_raw(raw, codec, depths, name=path.name, on_reconstruction=on_rec)
        if x is None:  # the coded channels are the same for every model
            x = raw.get_data(picks=coded_names[path])
            conds.put("original", idx, window_features(x, sf, wins, kind))
        for row in rows:
            cond = f"{label} N={row['codebooks']}"
            conds.put(cond, idx, window_features(recs[row["codebooks"]], sf, wins, kind))
            conds.bps[cond].append(row["bits_per_sample"])
            conds.meta[cond] = {"coder": label, "codebooks": row["codebooks"]}
            for name, coder in LOSSY_CODERS.items() if cfg.classical else ():
                search = x[:, : int(cfg.search_seconds * sf)]
                steps[(name, cond)].append(
                    step_for_bps(coder, search, sf, row["bits_per_sample"], iters=14)[0]
                )
