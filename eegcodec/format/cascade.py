"""The adaptive exact coder (``RAWC`` channel mode 3): integer LPC across channels, an NLMS stage
that adapts inside the chunk, and an adaptive binary range coder; optionally near-lossless in a
closed loop.

Each channel (in order) is predicted in two stages, integer arithmetic only:

1. the per-chunk LPC of :mod:`eegcodec.format.lossless` (own past, order
   :data:`~eegcodec.format.lossless.ORDER`, and up to :data:`~eegcodec.format.lossless.CROSS`
   earlier channels at lags -1, 0, +1; coefficients fitted by least squares, sent as integers
   with :data:`~eegcodec.format.lossless.SHIFT` fractional bits);
2. a normalised LMS filter over the channel's last :data:`TAPS` stage-1 errors and the stage-1
   errors of its cross channels at the same sample, starting from zero
   weights in every chunk and channel and updated after every sample (weights with
   :data:`W_SHIFT` fractional bits; the step is ``2**-MU_SHIFT`` over the window's energy, from
   one integer reciprocal per sample).

The residual (sample minus the sum of both predictions) goes to :mod:`eegcodec.format.rangecoder`. A
channel may carry a bound ``m`` (grid units): then the residual is quantised to
``q = floor((d + m) / (2m + 1))`` and the channel rebuilt as ``prediction + q (2m + 1)``, the
predictors running on the rebuilt samples (a closed loop: every sample within ``m`` of the
original, by construction); ``m = 0`` is lossless.

Frame (little-endian)::

    u16 channels | u32 samples | u32 size of the descriptor stream | descriptor stream | residual stream

Both streams are :mod:`eegcodec.format.rangecoder` streams of integers: the descriptors, per channel,
``m, P, M, M earlier channel indices, P + 3M coefficients``; the residuals, channel after channel.
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

from ..errors import CorruptFileError
from . import lossless
from .rangecoder import Decoder, Encoder

TAPS = 32
W_SHIFT = 16
MU_SHIFT = 5
INV_BITS = 40
#: bounds that keep every product inside int64 (also on damaged input)
E_CLAMP = 1 << 20
G_CLAMP = 1 << 30
W_CLAMP = 1 << 24
P_CLAMP = 1 << 30
_HEAD = struct.Struct("<HII")
SHIFT = lossless.SHIFT
#: earlier channels whose stage-1 errors feed the NLMS stage (the first CROSS of them also the LPC)
N_SIDE = 8


@njit(cache=True, nogil=True)
def _predict_run(x, r, e, base, side, own, step, decode):
    """One channel through both stages. ``decode`` False: ``x`` int64 [n] holds the samples; fills
    ``r`` with the (quantised) residuals and overwrites ``x`` with the rebuilt samples. ``decode``
    True: rebuilds ``x`` from ``r``. Either way fills ``e`` int64 [n] with the stage-1 errors
    (clamped to :data:`E_CLAMP`). ``base`` int64 [n]: the cross-channel part of the LPC sum;
    ``side`` int64 [S, n]: the stage-1 errors of the cross channels (NLMS inputs at the same
    sample); ``own`` int64 [P]: own-past coefficients; ``step`` = 2m + 1."""
    n, p, n_side = x.size, own.size, side.shape[0]
    half, m = 1 << (SHIFT - 1), (step - 1) // 2
    w = np.zeros(TAPS + n_side, np.int64)
    energy = 0
    for t in range(n):
        acc = base[t] + half
        for i in range(min(p, t)):
            acc += own[i] * x[t - 1 - i]
        p1 = min(max(acc >> SHIFT, -P_CLAMP), P_CLAMP)
        acc2, norm = 0, energy + TAPS * 16
        for j in range(min(TAPS, t)):
            acc2 += w[j] * e[t - 1 - j]
        for s in range(n_side):
            acc2 += w[TAPS + s] * side[s, t]
            norm += side[s, t] * side[s, t]
        pred = p1 + ((acc2 + (1 << (W_SHIFT - 1))) >> W_SHIFT)
        if decode:
            x[t] = pred + r[t] * step
        else:
            q = (x[t] - pred + m) // step
            r[t] = q
            x[t] = pred + q * step
        e[t] = min(max(x[t] - p1, -E_CLAMP), E_CLAMP)
        g = min(max(((x[t] - pred) * ((1 << INV_BITS) // norm)) >> MU_SHIFT, -G_CLAMP), G_CLAMP)
        for j in range(min(TAPS, t)):
            w[j] = min(max(w[j] + ((g * e[t - 1 - j]) >> (INV_BITS - W_SHIFT)), -W_CLAMP), W_CLAMP)
        for s in range(n_side):
            w[TAPS + s] = min(
                max(w[TAPS + s] + ((g * side[s, t]) >> (INV_BITS - W_SHIFT)), -W_CLAMP), W_CLAMP
            )
        energy += e[t] * e[t]
        if t >= TAPS:
            energy -= e[t - TAPS] * e[t - TAPS]


def _unit_diffs(k: np.ndarray) -> np.ndarray:
    """float64 [C, n - 1]: each channel's first differences, centred and scaled to unit norm (0 if flat)."""
    d = np.diff(k, axis=1).astype(np.float64)
    if not d.shape[1]:
        return d
    d -= d.mean(axis=1, keepdims=True)
    norm = np.sqrt((d**2).sum(axis=1, keepdims=True))
    return np.divide(d, norm, out=np.zeros_like(d), where=norm > 0)


def _ranking(unit: np.ndarray, c: int) -> list[int]:
    """Channels before ``c`` by decreasing |correlation| of first differences with it (at most
    :data:`N_SIDE`); ``unit`` from :func:`_unit_diffs`."""
    corr = np.abs(unit[:c] @ unit[c])
    return [int(j) for j in np.argsort(-corr, kind="stable")[:N_SIDE]]


def _fit(
    k: np.ndarray,
    c: int,
    cross: list[int],
    noise: np.ndarray | None = None,
    robust: int = 0,
    price: float | None = None,
) -> np.ndarray:
    """Integer LPC coefficients int64 [ORDER + 3 M] of channel ``c`` of ``k`` [C, n] (integers, or
    the same as float64) (least squares) over its past and the first M of the earlier channels
    ``cross`` (``M = len(cross)``, or with ``price`` fewer).
    ``noise`` float64 [C] (grid units squared): the variance of the error each row of ``k`` will
    carry when the predictor runs on rebuilt samples; the fit then predicts the clean sample from
    the noisy regressors (ridge loading of the normal equations by each column's noise energy).
    ``robust``: iterations of reweighted least squares towards the least absolute error (the
    residual coder's cost grows with the log of the error's magnitude, not its square), so a stretch
    of flat or wild samples does not set the whole frame's predictor. ``price``: bits a cross
    channel's coefficients cost; M is then the count whose least-squares error saves the most bits
    net of that (:func:`_cross_count`)."""
    order = lossless.ORDER
    cols = [(c, -i) for i in range(1, order + 1)] + [(j, lag) for j in cross for lag in lossless.LAGS]
    n = k.shape[1]
    if n <= order + 1:
        return np.zeros(order if price is not None else len(cols), np.int64)
    # the regressors of samples order .. n - 2 (all inside the chunk), one column each, float64
    x = np.empty((n - order - 1, len(cols)), order="F")
    for col, (row, lag) in enumerate(cols):
        x[:, col] = k[row, order + lag : n - 1 + lag]
    y = k[c, order:-1].astype(np.float64)
    rows = np.array([row for row, _ in cols])
    root = np.ones(len(x))  # square roots of the rows' weights
    for i in range(robust + 1):
        # the rows of this pass (an intermediate reweighting pass, which only sets the next pass's
        # weights: every other row), weighted
        part = slice(None, None, 2) if 0 < i < robust else slice(None)
        weighted = x[part] if i == 0 else x[part] * root[part, None]
        gram = weighted.T @ weighted  # one symmetric product (BLAS syrk)
        if noise is not None:
            gram[np.diag_indices_from(gram)] += (root[part] @ root[part]) * noise[rows]
        if i == 0 and price is not None:
            keep = order + 3 * _cross_count(gram, x.T @ y, float(y @ y), len(y), price)
            x, rows, gram, weighted = x[:, :keep], rows[:keep], gram[:keep, :keep], x[:, :keep]
        # normal equations (SVD-based lstsq is 5x slower); lstsq where they are singular
        try:
            coef = np.nan_to_num(np.linalg.solve(gram, weighted.T @ (root * y)[part]))
        except np.linalg.LinAlgError:
            coef = np.nan_to_num(np.linalg.lstsq(x, y, rcond=None)[0]) if i == 0 else coef
            break
        if i < robust:
            error = np.abs(y - x @ coef)
            floor = max(0.1 * float(np.median(error[::8])), 0.5)  # a tenth of the typical error
            root = 1 / np.sqrt(np.maximum(error, floor))
    return np.clip(np.round(coef * 2**SHIFT), -lossless.MAX_COEF, lossless.MAX_COEF).astype(np.int64)


def _cross_count(gram: np.ndarray, xy: np.ndarray, yy: float, n: int, price: float) -> int:
    """The number M of cross channels (3 columns each, after ORDER own-past columns) whose least
    squares fit minimises ``n / 2 log2(error energy) + price M`` bits, from the normal equations
    ``gram`` float64 [P, P], ``xy`` [P] and ``yy``: the error energy of the first p columns is
    ``yy`` less the squares of the first p entries of the last row of the augmented matrix's
    Cholesky factor. All of them where that factor does not exist (a flat or degenerate channel)."""
    order, total = lossless.ORDER, (len(xy) - lossless.ORDER) // 3
    augmented = np.block([[gram, xy[:, None]], [xy[None, :], np.array([[yy]])]])
    try:
        last = np.linalg.cholesky(
            augmented + 1e-9 * np.trace(augmented) / len(augmented) * np.eye(len(augmented))
        )[-1]
    except np.linalg.LinAlgError:
        return total
    left = yy - np.cumsum(last[:-1] ** 2)  # error energy after each column
    energy = np.maximum(left[order - 1 :: 3], 1e-9 * yy + 1e-12)  # after the own past, then each channel
    bits = n / 2 * np.log2(energy) + price * np.arange(total + 1)
    return int(np.argmin(bits))


def _base(k: np.ndarray, c: int, cross: list[int], coef: np.ndarray, order: int) -> np.ndarray:
    """int64 [n]: the cross-channel part of channel ``c``'s LPC sum over the (rebuilt) rows of ``k``."""
    if not cross:
        return np.zeros(k.shape[1], np.int64)
    return lossless._regressors(k, c, cross, 0) @ coef[order:]


def encode_ints(k: np.ndarray, bounds: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """Integer samples int64 [C, n] (|k| < 2**24) -> (frame, rebuilt samples int64 [C, n]).

    ``bounds`` int64 [C] (grid units, default 0): each rebuilt sample within its channel's bound."""
    offsets = np.median(k, axis=1).astype(np.int64) if k.size else np.zeros(len(k), np.int64)
    k = np.asarray(k, dtype=np.int64) - offsets[:, None]  # centred: the LPC has no constant term
    c_all, n = k.shape
    bounds = np.zeros(c_all, np.int64) if bounds is None else np.asarray(bounds, np.int64)
    rebuilt, errors = k.copy(), np.zeros_like(k)
    desc, res = Encoder(64 * c_all + 64), Encoder(10 * k.size + 64)
    order, unit = lossless.ORDER, _unit_diffs(k)
    for c in range(c_all):
        ranked = _ranking(unit, c)
        cross = ranked[: lossless.CROSS]
        coef = _fit(k, c, cross)
        desc.residuals(
            np.array(
                [bounds[c], offsets[c], order, len(cross), len(ranked), *ranked, *coef.tolist()], np.int64
            )
        )
        r = np.zeros(n, np.int64)
        base = _base(rebuilt, c, cross, coef, order)
        side = errors[ranked] if ranked else np.zeros((0, n), np.int64)
        _predict_run(rebuilt[c], r, errors[c], base, side, coef[:order].copy(), 2 * int(bounds[c]) + 1, False)
        res.residuals(r)
    d = desc.finish()
    return _HEAD.pack(c_all, n, len(d)) + d + res.finish(), rebuilt + offsets[:, None]


def decode_ints(frame: bytes, c_all: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_ints`: int64 [c_all, n]; anything inconsistent is a CorruptFileError."""
    if len(frame) < _HEAD.size or _HEAD.unpack_from(frame, 0)[:2] != (c_all, n):
        raise CorruptFileError("adaptive exact frame does not hold the channels and samples its header says")
    size = _HEAD.unpack_from(frame, 0)[2]
    if _HEAD.size + size > len(frame):
        raise CorruptFileError("adaptive exact frame is truncated")
    desc = Decoder(frame[_HEAD.size : _HEAD.size + size])
    res = Decoder(frame[_HEAD.size + size :])
    k, errors = np.zeros((c_all, n), np.int64), np.zeros((c_all, n), np.int64)
    offsets = np.zeros(c_all, np.int64)
    for c in range(c_all):
        m, offsets[c], order, n_cross, n_side = desc.residuals(5).tolist()
        if not (
            0 <= m < 2**24 and 0 <= order <= 64 and 0 <= n_cross <= min(lossless.CROSS, n_side) <= N_SIDE
        ):
            raise CorruptFileError("adaptive exact frame is damaged (predictor size)")
        ranked = desc.residuals(n_side).tolist()
        cross = ranked[:n_cross]
        coef = desc.residuals(order + 3 * n_cross)
        if any(not 0 <= j < c for j in ranked) or np.abs(coef).max(initial=0) > lossless.MAX_COEF:
            raise CorruptFileError("adaptive exact frame is damaged (predictor)")
        r = res.residuals(n)
        if np.abs(r).max(initial=0) >= 2**36:  # |sample - prediction| < 2**24 + 2**30 + 2**34
            raise CorruptFileError("adaptive exact frame is damaged (residual)")
        side = errors[ranked] if ranked else np.zeros((0, n), np.int64)
        base = _base(k, c, cross, coef, order)
        _predict_run(k[c], r, errors[c], base, side, coef[:order].copy(), 2 * m + 1, True)
    if desc.overrun() or res.overrun():
        raise CorruptFileError("adaptive exact frame is truncated")
    if np.abs(offsets).max(initial=0) >= 2**40:
        raise CorruptFileError("adaptive exact frame is damaged (offset)")
    return k + offsets[:, None]
