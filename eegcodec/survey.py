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
#: its own sample grid (:mod:`eegcodec.exact`).
CODED_TYPES = ("eeg", "eog", "seeg", "ecog", "dbs")


@dataclass
class ChannelPlan:
    """Which channels of a recording go to the codec and which are stored exactly.

    Attributes
    ----------
    coded : indices (into ``raw.ch_names``) coded by the codec.
    lossless : indices stored exactly (:mod:`eegcodec.exact`).
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


def survey_recording(raw: mne.io.BaseRaw, cfg: AdapterConfig, read_seconds: float = 60.0) -> Survey:
    """Stream ``raw`` once and return the :class:`Survey` the compressor needs.

    Raises :class:`InvalidSignalError` if a channel holds infinite values.
    """
    n = raw.n_times
    sfreq = raw.info["sfreq"]
    types = raw.get_channel_types()
    candidates = [i for i, t in enumerate(types) if t in CODED_TYPES]
    reasons = {i: f"{t} channel" for i, t in enumerate(types) if t not in CODED_TYPES}

    spacing = int(round(cfg.baseline_seconds * sfreq)) if cfg.baseline_seconds > 0 else n
    spacing = max(1, min(spacing, n))
    n_blocks = -(-n // spacing)
    c = len(candidates)
    sums = np.zeros((c, n_blocks))
    sumsq = np.zeros((c, n_blocks))
    counts = np.zeros((c, n_blocks))
    vmin = np.full(c, np.inf)
    vmax = np.full(c, -np.inf)
    runs: list[tuple[int, int, int]] = []

    step = max(1, int(read_seconds * sfreq))
    for start in range(0, n, step):
        stop = min(start + step, n)
        if not candidates:
            break
        x = raw.get_data(picks=candidates, start=start, stop=stop)
        inf = np.isinf(x)
        if inf.any():
            row, col = np.argwhere(inf)[0]
            raise InvalidSignalError(
                f"channel {raw.ch_names[candidates[row]]!r} holds an infinite value at sample {start + col}; "
                "replace it (e.g. with NaN, which eegcodec stores exactly) before compressing"
            )
        nan = np.isnan(x)
        runs += _nan_runs(nan, start)
        xz = np.where(nan, 0.0, x)
        blocks = np.arange(start // spacing, (stop - 1) // spacing + 1)
        idx = np.maximum(blocks * spacing - start, 0)
        sums[:, blocks] += np.add.reduceat(xz, idx, axis=1)
        sumsq[:, blocks] += np.add.reduceat(xz * xz, idx, axis=1)
        counts[:, blocks] += np.add.reduceat((~nan).astype(np.float64), idx, axis=1)
        vmin = np.minimum(vmin, np.where(nan, np.inf, x).min(axis=1))
        vmax = np.maximum(vmax, np.where(nan, -np.inf, x).max(axis=1))

    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
        var = np.maximum(sumsq / counts - means**2, 0.0)
    full = counts >= max(1, spacing // 2)
    noise = np.array([np.median(np.sqrt(var[r, full[r]])) if full[r].any() else 0.0 for r in range(c)])

    keep = []
    for r, ch in enumerate(candidates):
        if not np.isfinite(vmin[r]):
            reasons[ch] = "all samples NaN"
        elif vmax[r] == vmin[r]:
            reasons[ch] = "flat (constant) channel"
        else:
            keep.append(r)
    if c:
        # Noise floor for channels whose blocks are locally flat but vary overall (steps only).
        noise = np.where(noise > 0, noise, np.maximum(vmax - vmin, 1e-12) * 1e-3)
    keep_arr = np.array(keep, dtype=np.int64)
    plan = ChannelPlan(
        coded=[candidates[r] for r in keep],
        lossless=sorted(reasons),
        reasons=reasons,
    )
    baseline = Baseline.fit(means[keep_arr] if c else np.zeros((0, n_blocks)), noise[keep_arr] if c else np.zeros(0), spacing, cfg.baseline_step)
    remap = {r: i for i, r in enumerate(keep)}
    nan_runs = _merge_runs([(remap[r], s, l) for r, s, l in runs if r in remap])
    return Survey(plan=plan, baseline=baseline, noise=noise[keep_arr] if c else np.zeros(0), nan_runs=nan_runs)
