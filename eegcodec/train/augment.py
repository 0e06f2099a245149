"""Training-time augmentation: make a few subjects look like many (issue 18).

Applied to the training windows as they are drawn (:class:`~eegcodec.train.data.WindowBank`),
never to validation. Every change is one the codec meets in other people's recordings: the
polarity and gain of an amplifier, another reference, slow drift, eye blinks and muscle bursts.
Amplitudes are relative to each channel's own standard deviation in the window, so the same
settings suit any device. Windows are float32 [B, C, T] in the codec's input units at
``rate`` Hz.
"""

from __future__ import annotations

import numpy as np

from .config import AugmentConfig


def augment(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, rate: float) -> np.ndarray:
    """A copy of windows ``x`` float32 [B, C, T] with each change applied to each window with its
    probability in ``cfg`` (``rate``: samples per second)."""
    x = np.array(x, dtype=np.float64, copy=True)
    n, c, t = x.shape
    std = x.std(axis=2, keepdims=True) + 1e-6  # [B, C, 1]
    times = np.arange(t) / rate
    for b in range(n):
        if c > 1 and rng.random() < cfg.reref:  # common average, or one of the channels as reference
            ref = x[b].mean(axis=0) if rng.random() < 0.5 else x[b, rng.integers(c)].copy()
            x[b] -= ref
        if rng.random() < cfg.drift:
            freq, phase = rng.uniform(0.05, 0.5, (c, 1)), rng.uniform(0, 2 * np.pi, (c, 1))
            x[b] += rng.uniform(0.5, 2.0, (c, 1)) * std[b] * np.sin(2 * np.pi * freq * times + phase)
        if rng.random() < cfg.blink:
            x[b] += _blink(times, c, std[b], rng)
        if rng.random() < cfg.muscle:
            x[b] += _muscle(t, c, std[b], rate, rng)
        if rng.random() < cfg.sign_flip:
            x[b] = -x[b]
        if cfg.gain_octaves:
            x[b] *= 2.0 ** rng.uniform(-cfg.gain_octaves, cfg.gain_octaves)
    return x.astype(np.float32)


def _blink(times: np.ndarray, c: int, std: np.ndarray, rng) -> np.ndarray:
    """[C, T]: a 0.1-0.3-s bump (Gaussian), 3-10 channel deviations high on the channel it
    reaches most, falling off at random across the others (as with distance from the eyes)."""
    centre, width = rng.uniform(times[0], times[-1]), rng.uniform(0.05, 0.15)
    reach = rng.uniform(0, 1, (c, 1)) ** 3
    reach /= reach.max()  # full height on the channel nearest the eyes
    height = rng.uniform(3, 10) * std * reach
    return height * np.exp(-0.5 * ((times - centre) / width) ** 2)


def _muscle(t: int, c: int, std: np.ndarray, rate: float, rng) -> np.ndarray:
    """[C, T]: a 0.2-1-s burst of high-frequency noise (differenced white noise under a Hann
    window), 0.5-2 channel deviations, on about a third of the channels."""
    length = min(t, max(2, int(rng.uniform(0.2, 1.0) * rate)))
    start = int(rng.integers(t - length + 1))
    noise = np.diff(rng.normal(size=(c, length + 1)), axis=1) / np.sqrt(2)
    on = rng.random((c, 1)) < 1 / 3
    out = np.zeros((c, t))
    out[:, start : start + length] = noise * np.hanning(length) * rng.uniform(0.5, 2.0) * std * on
    return out
