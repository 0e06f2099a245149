"""Mains interference (50 or 60 Hz and its harmonics) as a few integers per chunk and channel.

Line noise is what a model trained on clean EEG cannot follow: on EEGBCI S005 (an unseen
subject) 60 Hz holds about three quarters of the power and ``mc-small`` alone reconstructs it at
a median PRD above 100 %. Per chunk, :func:`fit` looks for the mains frequency within
:data:`SEARCH_HZ` of 50 and 60 Hz (the peak of the channels' summed power, a coarse then a fine
grid), fits each channel's cosine and sine at that frequency and its harmonics below
:data:`MAX_RELATIVE` x the sampling rate (least squares), and keeps the fit when it holds at
least :data:`MIN_SHARE` of the chunk's power. :class:`~eegcodec.chunks.ChunkCoder` removes it
before the codec and adds it back after; what the fit misses goes to the codec with the rest.

Stored (``docs/FORMAT.md``, version 6): per coded channel an amplitude step
(:data:`STEP_RATIO` x its noise scale, as a 1/64-octave code); per chunk the frequency in units of
:data:`FREQ_UNIT` Hz (0: none) and per coded channel the integer amplitudes of the cosine and sine
of each of :data:`HARMONICS` harmonics in those steps. Token files and ``prd`` files both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .adapt import LOG2_RESOLUTION, round_scale, scale_from_code, scale_to_code

NOMINAL_HZ = (50.0, 60.0)
#: harmonics fitted (those at or above MAX_RELATIVE x the sampling rate are left at zero)
HARMONICS = 3
MAX_RELATIVE = 0.45
#: the search range around each nominal frequency, and the stored frequency's unit (Hz)
SEARCH_HZ = 0.15
FREQ_UNIT = 1e-4
#: the frequency is searched on this many channels, those of most power
SEARCH_CHANNELS = 8
#: a fit holding less than this share of the chunk's power (all channels pooled) is not kept
MIN_SHARE = 0.05
#: amplitude step, in units of the channel's noise scale
STEP_RATIO = 0.05
#: stored amplitudes beyond this many steps are refused by the reader
MAX_LEVEL = 2**30


def steps_for(noise: np.ndarray) -> np.ndarray:
    """float64 [C] amplitude steps (volts, on the stored 1/64-octave grid) for noise scales [C]."""
    return round_scale(np.where(noise > 0, noise * STEP_RATIO, 1e-6))


@dataclass
class MainsFit:
    """One chunk's mains: ``freq_code`` (frequency / :data:`FREQ_UNIT`; 0: none), ``levels``
    int64 [C, 2 x HARMONICS] (cosine, sine of harmonic 1, then 2, ...) in amplitude steps, and
    those steps ``step`` float64 [C] (volts)."""

    freq_code: int
    levels: np.ndarray
    step: np.ndarray

    @classmethod
    def none(cls, step: np.ndarray) -> MainsFit:
        return cls(0, np.zeros((len(step), 2 * HARMONICS), np.int64), step)

    def values(self, sfreq: float, n: int) -> np.ndarray:
        """float64 [C, n] volts over the chunk's ``n`` samples (recorded at ``sfreq`` Hz)."""
        if not self.freq_code:
            return np.zeros((self.levels.shape[0], n))
        return (self.levels * self.step[:, None]) @ _basis(self.freq_code * FREQ_UNIT, sfreq, n).T


def usable_harmonics(freq: float, sfreq: float) -> int:
    """How many harmonics of ``freq`` lie below MAX_RELATIVE x ``sfreq`` (at most HARMONICS)."""
    return int(min(HARMONICS, np.ceil(MAX_RELATIVE * sfreq / freq) - 1))


def _basis(freq: float, sfreq: float, n: int) -> np.ndarray:
    """float64 [n, 2 x HARMONICS]: cos and sin of each usable harmonic over samples 0..n-1 of
    the chunk (zero columns for the others)."""
    out = np.zeros((n, 2 * HARMONICS))
    phase = 2 * np.pi * freq / sfreq * np.arange(n)
    for h in range(usable_harmonics(freq, sfreq)):
        out[:, 2 * h] = np.cos((h + 1) * phase)
        out[:, 2 * h + 1] = np.sin((h + 1) * phase)
    return out


def _peak(z: np.ndarray, times: np.ndarray, lo: float, hi: float, step: float) -> tuple[float, float]:
    """(offset, summed power) of the largest of the channels' summed DFT powers of the
    demodulated series ``z`` complex [C, m] at ``times`` [m] (s), over offsets ``lo..hi`` Hz."""
    offsets = np.arange(lo, hi + step / 2, step)
    power = (np.abs(z @ np.exp(-2j * np.pi * times[:, None] * offsets[None])) ** 2).sum(axis=0)
    best = int(np.argmax(power))
    return float(offsets[best]), float(power[best])


def find_frequency(x: np.ndarray, sfreq: float) -> float | None:
    """The mains frequency of ``x`` float64 [C, n] (volts, mean removed), or None where neither
    nominal frequency lies below MAX_RELATIVE x ``sfreq``. Each nominal frequency is shifted to
    0 Hz and the result averaged over blocks of 0.1 s (what lies within SEARCH_HZ of it passes
    almost unchanged: gain above 0.9996), so the search costs little at any sampling rate."""
    block = max(1, int(round(0.1 * sfreq)))
    n_blocks = x.shape[1] // block
    t = np.arange(n_blocks * block) / sfreq
    times = (np.arange(n_blocks) * block + (block - 1) / 2) / sfreq
    found = []
    for nominal in NOMINAL_HZ:
        if nominal + SEARCH_HZ >= MAX_RELATIVE * sfreq:
            continue
        shifted = x[:, : t.size] * np.exp(-2j * np.pi * nominal * t)
        z = shifted.reshape(len(x), n_blocks, block).mean(axis=2)
        coarse, _ = _peak(z, times, -SEARCH_HZ, SEARCH_HZ, 0.005)
        offset, power = _peak(z, times, coarse - 0.005, coarse + 0.005, 2 * FREQ_UNIT)
        found.append((nominal + offset, power))
    return max(found, key=lambda f: f[1])[0] if found else None


def fit(x: np.ndarray, step: np.ndarray, sfreq: float) -> MainsFit:
    """The mains of one chunk. x : float64 [C, n] volts (no NaN); step : float64 [C] the
    channels' amplitude steps (:func:`steps_for`, volts). Two passes over ``x`` besides the
    search, which looks at the SEARCH_CHANNELS channels of most power."""
    none = MainsFit.none(step)
    n = x.shape[1]
    if n < sfreq or not x.size:  # under a second: too short to tell the frequency
        return none
    mean = x.mean(axis=1)
    power = np.einsum("ij,ij->i", x, x) - n * mean**2  # [C] about the mean
    strongest = np.sort(np.argsort(power)[::-1][:SEARCH_CHANNELS])
    freq = find_frequency(x[strongest] - mean[strongest, None], sfreq)
    if freq is None or power.sum() <= 0:
        return none
    freq_code = int(round(freq / FREQ_UNIT))
    basis = _basis(freq_code * FREQ_UNIT, sfreq, n)
    used = np.flatnonzero(basis.any(axis=0))
    b = basis[:, used]  # near-orthogonal columns over a second or more: the normal equations suffice
    gram = b.T @ b
    projection = (x @ b - np.outer(mean, b.sum(axis=0))).T  # [k, C]: b' (x - mean)
    levels = np.zeros((len(x), basis.shape[1]), np.int64)
    levels[:, used] = np.rint(np.linalg.solve(gram, projection).T / step[:, None])
    line = levels[:, used] * step[:, None]  # the stored amplitudes [C, k]
    removed = 2 * np.sum(line * projection.T) - np.sum((line @ gram) * line)  # |x|^2 - |x - fit|^2
    return MainsFit(freq_code, levels, step) if removed >= MIN_SHARE * power.sum() else none


def to_arrays(fits: list[MainsFit], step: np.ndarray) -> dict[str, np.ndarray]:
    """Side arrays (version 6): ``mains_step_log2`` int64 [C], ``mains_freq`` int64 [N] and
    ``mains_levels`` int64 [N, C, 2 x HARMONICS]; none where no chunk has mains."""
    if not any(f.freq_code for f in fits):
        return {}
    return {
        "mains_step_log2": scale_to_code(step),
        "mains_freq": np.array([f.freq_code for f in fits], np.int64),
        "mains_levels": np.stack([f.levels for f in fits]),
    }


def from_arrays(arrays: dict[str, np.ndarray]) -> list[MainsFit]:
    """Inverse of :func:`to_arrays`, range-checked: a step code, frequency or level out of range
    is a ValueError."""
    codes, freq, levels = arrays["mains_step_log2"], arrays["mains_freq"], arrays["mains_levels"]
    if codes.size and np.abs(codes).max() > LOG2_RESOLUTION * 64:
        raise ValueError("a mains amplitude step is out of range")
    margin = SEARCH_HZ + 0.01
    bounds = [(round((f - margin) / FREQ_UNIT), round((f + margin) / FREQ_UNIT)) for f in NOMINAL_HZ]
    ok = (freq == 0) | np.any([(freq >= lo) & (freq <= hi) for lo, hi in bounds], axis=0)
    if not ok.all():
        raise ValueError("a mains frequency is outside the ranges searched")
    if levels.size and np.abs(levels).max() > MAX_LEVEL:
        raise ValueError("a mains amplitude is out of range")
    step = scale_from_code(codes)
    return [MainsFit(int(f), lv, step) for f, lv in zip(freq, levels)]
