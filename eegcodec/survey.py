"""First pass over a recording: which channels the codec codes, and their slow baseline.

Streams the recording once, chunk by chunk (memory flat in its length), and
returns per-channel statistics the adapter needs before coding: block means
for the :class:`~eegcodec.adapt.Baseline`, a noise scale per channel, runs of
NaN samples, and which channels are flat or empty (stored losslessly instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mne
import numpy as np

from .adapt import AdapterConfig, Baseline
from .errors import InvalidSignalError

#: Channel types whose samples the codec codes (brain and eye signals, what the models
#: learn); all others (ecg, emg, bio, stim, misc, resp, ...) are stored exactly, each on
#: its own sample grid (:mod:`eegcodec.format.exact`).
CODED_TYPES = ("eeg", "eog", "seeg", "ecog", "dbs")


@dataclass
class ChannelPlan:
    """Which channels of a recording go to the codec and which are stored exactly.

    Attributes
    ----------
    coded : indices (into ``raw.ch_names``) coded by the codec.
    lossless : indices stored exactly (:mod:`eegcodec.format.exact`).
    reasons : index -> why a channel is lossless ("stim channel", "flat", ...).
    """

    coded: list[int]
    lossless: list[int]
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass
class Survey:
    """Result of the first pass, for the coded channels (rows follow ``plan.coded``).

    Attributes
    ----------
    plan : the channel plan.
    baseline : quantised slow baseline of the coded channels.
    noise : float64 [C] noise scale per coded channel in volts (median within-block std).
    nan_runs : int64 [R, 3] rows of (row in coded, start sample, length).
    """

    plan: ChannelPlan
    baseline: Baseline
    noise: np.ndarray
    nan_runs: np.ndarray


def _nan_runs(mask: np.ndarray, offset: int) -> list[tuple[int, int, int]]:
    """Runs of True in a boolean [C, n] array as (row, start + offset, length)."""
    runs = []
    for row in np.flatnonzero(mask.any(axis=1)):
        m = np.concatenate([[False], mask[row], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(m))
        for s, e in zip(edges[::2], edges[1::2]):
            runs.append((int(row), int(s + offset), int(e - s)))
    return runs


def _merge_runs(runs: list[tuple[int, int, int]]) -> np.ndarray:
    """Join runs that continue across chunk borders."""
    runs = sorted(runs)
    merged: list[list[int]] = []
    for row, start, length in runs:
        if merged and merged[-1][0] == row and merged[-1][1] + merged[-1][2] == start:
            merged[-1][2] += length
        else:
            merged.append([row, start, length])
    return np.array(merged, dtype=np.int64).reshape(-1, 3)


class _BlockStats:
    """Running NaN-aware sums per baseline block of the candidate channels [C, K], their
    range and their NaN runs, fed chunk by chunk."""

    def __init__(self, c: int, n_blocks: int, spacing: int):
        self.spacing = spacing
        self.sums, self.sumsq, self.counts = (np.zeros((c, n_blocks)) for _ in range(3))
        self.vmin, self.vmax = np.full(c, np.inf), np.full(c, -np.inf)
        self.runs: list[tuple[int, int, int]] = []

    def add(self, x: np.ndarray, start: int) -> None:
        """Samples [C, n] (volts) starting at sample ``start``."""
        nan = np.isnan(x)
        self.runs += _nan_runs(nan, start)
        xz = np.where(nan, 0.0, x)
        blocks = np.arange(start // self.spacing, (start + x.shape[1] - 1) // self.spacing + 1)
        idx = np.maximum(blocks * self.spacing - start, 0)
        self.sums[:, blocks] += np.add.reduceat(xz, idx, axis=1)
        self.sumsq[:, blocks] += np.add.reduceat(xz * xz, idx, axis=1)
        self.counts[:, blocks] += np.add.reduceat((~nan).astype(np.float64), idx, axis=1)
        self.vmin = np.minimum(self.vmin, np.where(nan, np.inf, x).min(axis=1))
        self.vmax = np.maximum(self.vmax, np.where(nan, -np.inf, x).max(axis=1))

    def means_and_noise(self) -> tuple[np.ndarray, np.ndarray]:
        """(block means [C, K] with NaN for empty blocks, noise scale [C]: the median
        within-block standard deviation, or a thousandth of the range for step-only channels)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums / self.counts
            var = np.maximum(self.sumsq / self.counts - means**2, 0.0)
        full = self.counts >= max(1, self.spacing // 2)
        noise = np.array(
            [np.median(np.sqrt(var[r, full[r]])) if full[r].any() else 0.0 for r in range(len(var))]
        )
        return means, np.where(noise > 0, noise, np.maximum(self.vmax - self.vmin, 1e-12) * 1e-3)


def _check_finite(x: np.ndarray, raw: mne.io.BaseRaw, picks: list[int], start: int) -> None:
    inf = np.isinf(x)
    if inf.any():
        row, col = np.argwhere(inf)[0]
        raise InvalidSignalError(
            f"channel {raw.ch_names[picks[row]]!r} holds an infinite value at sample {start + col}; "
            "replace it (e.g. with NaN, which eegcodec stores exactly) before compressing"
        )


def survey_recording(raw: mne.io.BaseRaw, cfg: AdapterConfig, read_seconds: float = 60.0) -> Survey:
    """Stream ``raw`` once and return the :class:`Survey` the compressor needs.

    Raises :class:`InvalidSignalError` if a channel holds infinite values.
    """
    n, sfreq = raw.n_times, raw.info["sfreq"]
    types = raw.get_channel_types()
    candidates = [i for i, t in enumerate(types) if t in CODED_TYPES]
    reasons = {i: f"{t} channel" for i, t in enumerate(types) if t not in CODED_TYPES}
    spacing = int(round(cfg.baseline_seconds * sfreq)) if cfg.baseline_seconds > 0 else n
    spacing = max(1, min(spacing, n))
    n_blocks = -(-n // spacing)
    stats = _BlockStats(len(candidates), n_blocks, spacing)
    step = max(1, int(read_seconds * sfreq))
    for start in range(0, n, step) if candidates else ():
        x = raw.get_data(picks=candidates, start=start, stop=min(start + step, n))
        _check_finite(x, raw, candidates, start)
        stats.add(x, start)
    means, noise = stats.means_and_noise()
    keep = []
    for r, ch in enumerate(candidates):
        if not np.isfinite(stats.vmin[r]):
            reasons[ch] = "all samples NaN"
        elif stats.vmax[r] == stats.vmin[r]:
            reasons[ch] = "flat (constant) channel"
        else:
            keep.append(r)
    plan = ChannelPlan(coded=[candidates[r] for r in keep], lossless=sorted(reasons), reasons=reasons)
    baseline = Baseline.fit(means[keep], noise[keep], spacing, cfg.baseline_step)
    remap = {r: i for i, r in enumerate(keep)}
    nan_runs = _merge_runs([(remap[r], s, n_run) for r, s, n_run in stats.runs if r in remap])
    return Survey(plan=plan, baseline=baseline, noise=noise[keep], nan_runs=nan_runs)


def exact_survey(raw: mne.io.BaseRaw, why: str) -> Survey:
    """The plan of a file that codes no channel with a model (lossless and max-error modes):
    every channel is stored by the exact stream, ``why`` says so in the header."""
    n = raw.n_times
    plan = ChannelPlan(
        coded=[],
        lossless=list(range(len(raw.ch_names))),
        reasons=dict.fromkeys(range(len(raw.ch_names)), why),
    )
    baseline = Baseline(np.zeros((0, 1), np.int64), np.zeros(0), n)
    return Survey(plan=plan, baseline=baseline, noise=np.zeros(0), nan_runs=np.zeros((0, 3), np.int64))
