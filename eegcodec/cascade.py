"""The adaptive exact coder (``RAWC`` channel mode 3): integer LPC across channels, an NLMS stage
that adapts inside the chunk, and an adaptive binary range coder; optionally near-lossless in a
closed loop.

Each channel (in order) is predicted in two stages, integer arithmetic only:

1. the per-chunk LPC of :mod:`eegcodec.lossless` (own past, order :data:`~eegcodec.lossless.ORDER`,
   and up to :data:`~eegcodec.lossless.CROSS` earlier channels at lags -1, 0, +1; coefficients
   fitted by least squares, sent as integers with :data:`~eegcodec.lossless.SHIFT` fractional bits);
2. a normalised LMS filter of :data:`TAPS` taps over the stage-1 errors, starting from zero
   weights in every chunk and channel and updated after every sample (weights with
   :data:`W_SHIFT` fractional bits; the step is ``2**-MU_SHIFT`` over the window's energy, from
   one integer reciprocal per sample).

The residual (sample minus the sum of both predictions) goes to :mod:`eegcodec.rangecoder`. A
channel may carry a bound ``m`` (grid units): then the residual is quantised to
``q = floor((d + m) / (2m + 1))`` and the channel rebuilt as ``prediction + q (2m + 1)``, the
predictors running on the rebuilt samples (a closed loop: every sample within ``m`` of the
original, by construction); ``m = 0`` is lossless.

Frame (little-endian)::

    u16 channels | u32 samples | u32 size of the descriptor stream | descriptor stream | residual stream

Both streams are :mod:`eegcodec.rangecoder` streams of integers: the descriptors, per channel,
``m, P, M, M earlier channel indices, P + 3M coefficients``; the residuals, channel after channel.
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

from . import lossless
from .errors import CorruptFileError
from .rangecoder import Decoder, Encoder

TAPS = 32
W_SHIFT = 16
MU_SHIFT = 6
INV_BITS = 40
#: bounds that keep every product inside int64 (also on damaged input)
E_CLAMP = 1 << 20
G_CLAMP = 1 << 30
W_CLAMP = 1 << 24
P_CLAMP = 1 << 30
_HEAD = struct.Struct("<HII")
SHIFT = lossless.SHIFT


@njit(cache=True, nogil=True)
def _predict_run(x, r, base, own, step, decode):
    """One channel through both stages. ``decode`` False: ``x`` int64 [n] holds the samples; fills
    ``r`` with the (quantised) residuals and overwrites ``x`` with the rebuilt samples. ``decode``
    True: rebuilds ``x`` from ``r``. ``base`` int64 [n]: the cross-channel part of the LPC sum;
    ``own`` int64 [P]: own-past coefficients; ``step`` = 2m + 1."""
    n, p = x.size, own.size
    half, m = 1 << (SHIFT - 1), (step - 1) // 2
    w = np.zeros(TAPS, np.int64)
    e = np.zeros(n, np.int64)
    energy = 0
    for t in range(n):
        acc = base[t] + half
        for i in range(min(p, t)):
            acc += own[i] * x[t - 1 - i]
        p1 = min(max(acc >> SHIFT, -P_CLAMP), P_CLAMP)
        acc2 = 0
        for j in range(min(TAPS, t)):
            acc2 += w[j] * e[t - 1 - j]
        pred = p1 + ((acc2 + (1 << (W_SHIFT - 1))) >> W_SHIFT)
        if decode:
            x[t] = pred + r[t] * step
        else:
            q = (x[t] - pred + m) // step
            r[t] = q
            x[t] = pred + q * step
        err = x[t] - pred
        e[t] = min(max(x[t] - p1, -E_CLAMP), E_CLAMP)
        g = min(max((err * ((1 << INV_BITS) // (energy + TAPS * 16))) >> MU_SHIFT, -G_CLAMP), G_CLAMP)
        for j in range(min(TAPS, t)):
            w[j] = min(max(w[j] + ((g * e[t - 1 - j]) >> (INV_BITS - W_SHIFT)), -W_CLAMP), W_CLAMP)
        energy += e[t] * e[t]
        if t >= TAPS:
            energy -= e[t - TAPS] * e[t - TAPS]


def _base(k: np.ndarray, c: int, cross: list[int], coef: np.ndarray, order: int) -> np.ndarray:
    """int64 [n]: the cross-channel part of channel ``c``'s LPC sum over the (rebuilt) rows of ``k``."""
    if not cross:
        return np.zeros(k.shape[1], np.int64)
    return lossless._regressors(k, c, cross, 0) @ coef[order:]


def encode_ints(k: np.ndarray, bounds: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """Integer samples int64 [C, n] (|k| < 2**24) -> (frame, rebuilt samples int64 [C, n]).

    ``bounds`` int64 [C] (grid units, default 0): each rebuilt sample within its channel's bound."""
    k = np.asarray(k, dtype=np.int64)
    c_all, n = k.shape
    bounds = np.zeros(c_all, np.int64) if bounds is None else np.asarray(bounds, np.int64)
    rebuilt = k.copy()
    desc, res = Encoder(64 * c_all + 64), Encoder(10 * k.size + 64)
    for c in range(c_all):
        cross, coef = lossless._fit(k, c)
        order = lossless.ORDER
        desc.residuals(np.array([bounds[c], order, len(cross), *cross, *coef.tolist()], np.int64))
        r = np.zeros(n, np.int64)
        base = _base(rebuilt, c, cross, coef, order)
        _predict_run(rebuilt[c], r, base, coef[:order].copy(), 2 * int(bounds[c]) + 1, False)
        res.residuals(r)
    d = desc.finish()
    return _HEAD.pack(c_all, n, len(d)) + d + res.finish(), rebuilt


def decode_ints(frame: bytes, c_all: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_ints`: int64 [c_all, n]; anything inconsistent is a CorruptFileError."""
    if len(frame) < _HEAD.size or _HEAD.unpack_from(frame, 0)[:2] != (c_all, n):
        raise CorruptFileError("adaptive exact frame does not hold the channels and samples its header says")
    size = _HEAD.unpack_from(frame, 0)[2]
    if _HEAD.size + size > len(frame):
        raise CorruptFileError("adaptive exact frame is truncated")
    desc = Decoder(frame[_HEAD.size : _HEAD.size + size])
    res = Decoder(frame[_HEAD.size + size :])
    k = np.zeros((c_all, n), np.int64)
    for c in range(c_all):
        m, order, n_cross = desc.residuals(3).tolist()
        if not (0 <= m < 2**24 and 0 <= order <= 64 and 0 <= n_cross <= lossless.CROSS):
            raise CorruptFileError("adaptive exact frame is damaged (predictor size)")
        cross = desc.residuals(n_cross).tolist()
        coef = desc.residuals(order + 3 * n_cross)
        if any(not 0 <= j < c for j in cross) or np.abs(coef).max(initial=0) > lossless.MAX_COEF:
            raise CorruptFileError("adaptive exact frame is damaged (predictor)")
        r = res.residuals(n)
        if np.abs(r).max(initial=0) >= 2**26:
            raise CorruptFileError("adaptive exact frame is damaged (residual)")
        _predict_run(k[c], r, _base(k, c, cross, coef, order), coef[:order].copy(), 2 * m + 1, True)
    if desc.overrun() or res.overrun():
        raise CorruptFileError("adaptive exact frame is truncated")
    return k
