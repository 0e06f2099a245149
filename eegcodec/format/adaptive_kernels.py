"""The compiled loops of :mod:`eegcodec.format.adaptive` (``RAWC`` channel mode 4): the three-stage
prediction of a segment's channels and the range coding of its residuals, integer arithmetic only.

**Prediction** (:func:`predict_segment`), channel after channel in the coding order. Each history is
kept contiguous in time (``xp[ORDER + t] = x[t]``, ``ep[TAPS + t] = e[t]``; before the segment
zeros, or for the LPC the carried-back start) and each filter's weights in reverse, so every sum
and weight update is one loop of fixed length over consecutive elements, without a branch for the
segment's first samples (a zero history adds nothing and moves no weight). The arithmetic, and so
every bit, is that of the per-sample description in :mod:`eegcodec.format.adaptive`.

**Coding** (:func:`code_residuals`, :func:`decode_residuals`): the model of
:mod:`eegcodec.format.adaptive` on the binary range coder of :mod:`eegcodec.format.rangecoder` (the
same decisions, probabilities and bytes), with the coder's state held in locals over a segment.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

from . import lossless
from .cascade import E_CLAMP, G_CLAMP, INV_BITS, P_CLAMP, SHIFT, W_CLAMP, W_SHIFT
from .rangecoder import MAX_BITS, N_CTX, PROB_BITS, TOP, _adapt

TAPS, TAPS3 = 32, 16
MU_SHIFT, MU3_SHIFT = 4, 6
#: the first WARM samples of a segment adapt at 4x the step, the next 3 WARM at 2x
WARM = 128
#: earlier channels the NLMS stage takes at most (format version 8: 8), and of them at t +- 1
N_SIDE, N_NEAR = 12, 4
#: the NLMS stage's inputs from earlier channels, zero-padded to this count (a frame of fewer
#: earlier channels, as format version 8 holds at most, gives zeros that add nothing and move no
#: weight: the same predictions as with its own count)
N_IN = N_SIDE + 2 * N_NEAR
ORDER = lossless.ORDER
#: earlier channels the LPC may take (format version 8: at most 4; 9: 12)
CROSS = 12
A_SHIFT = 4
_ROUND, _UPD, _ONE = 1 << (W_SHIFT - 1), INV_BITS - W_SHIFT, 1 << INV_BITS


@njit(cache=True, nogil=True, inline="always")
def _dot(w, h, t, k):
    """sum over i < ``k`` (a multiple of 4) of ``w[i] * h[t + i]`` (int64, wrapping)."""
    a0, a1, a2, a3 = 0, 0, 0, 0
    for i in range(0, k, 4):
        a0 += w[i] * h[t + i]
        a1 += w[i + 1] * h[t + i + 1]
        a2 += w[i + 2] * h[t + i + 2]
        a3 += w[i + 3] * h[t + i + 3]
    return (a0 + a1) + (a2 + a3)


@njit(cache=True, nogil=True, inline="always")
def _nudge(w, h, h_next, g, k):
    """``w[i] += (g h[i]) >> (INV_BITS - W_SHIFT)`` for i < ``k``, clamped to :data:`W_CLAMP`;
    returns the next sample's sum over i of ``w[i] * h_next[i]`` (int64, wrapping)."""
    a0, a1 = 0, 0
    for i in range(0, k, 2):
        u = min(max(w[i] + ((g * h[i]) >> _UPD), -W_CLAMP), W_CLAMP)
        v = min(max(w[i + 1] + ((g * h[i + 1]) >> _UPD), -W_CLAMP), W_CLAMP)
        w[i], w[i + 1] = u, v
        a0 += u * h_next[i]
        a1 += v * h_next[i + 1]
    return a0 + a1


@njit(cache=True, nogil=True)
def _history(xp, t):
    """Before sample ``t`` (1 or 2) of a segment: the ORDER samples ahead of it in ``xp`` (int64
    [ORDER + n]) as its first sample carried back along its first slope (``t`` 1: flat)."""
    x0 = xp[ORDER]
    d = xp[ORDER + 1] - x0 if t >= 2 else 0
    for j in range(1, ORDER + 1):
        xp[ORDER - j] = x0 - j * d


@njit(cache=True, nogil=True)
def _inputs(x, e, ranked, n_side, n_cross, coef, base, side):
    """One channel's inputs from the rebuilt samples ``x`` and stage-1 errors ``e`` (int64 [C, n])
    of its earlier channels ``ranked`` int64 [N_SIDE] with its LPC coefficients ``coef``: ``base``
    int64 [n] the cross-channel part of its LPC sum (the first ``n_cross`` earlier channels at lags
    -1, 0, +1, zero outside the segment) and ``side`` int64 [n, N_IN] its NLMS inputs (the first
    ``n_side`` earlier channels' errors at ``t``, the first N_NEAR of them at ``t + 1`` and
    ``t - 1`` with the segment's edge sample repeated, then zeros)."""
    n = x.shape[1]
    base[:] = 0
    for k in range(n_cross):
        j, a0, a1, a2 = ranked[k], coef[ORDER + 3 * k], coef[ORDER + 3 * k + 1], coef[ORDER + 3 * k + 2]
        for t in range(n):
            base[t] += a1 * x[j, t]
        for t in range(1, n):
            base[t] += a0 * x[j, t - 1]
            base[t - 1] += a2 * x[j, t]
    side[:] = 0
    near = min(n_side, N_NEAR)
    for k in range(n_side):
        j = ranked[k]
        for t in range(n):
            side[t, k] = e[j, t]
            if k < near:
                side[t, n_side + k] = e[j, min(t + 1, n - 1)]
                side[t, n_side + near + k] = e[j, max(t - 1, 0)]


@njit(cache=True, nogil=True)
def _predict_run(x, r, e, base, side, own, step, decode):
    """One channel's segment through the three stages. ``decode`` False: ``x`` int64 [n] holds the
    samples; fills ``r`` with the (quantised) residuals and overwrites ``x`` with the rebuilt
    samples. ``decode`` True: rebuilds ``x`` from ``r``. Either way fills ``e`` int64 [n] with the
    stage-1 errors (clamped to :data:`E_CLAMP`). ``base``, ``side``: from :func:`_inputs`;
    ``own`` int64 [ORDER]: own-past coefficients; ``step`` = 2m + 1."""
    n, m = x.size, (step - 1) // 2
    own_r, wr, ws, w3r = (
        own[::-1].copy(),
        np.zeros(TAPS, np.int64),
        np.zeros(N_IN, np.int64),
        np.zeros(TAPS3, np.int64),
    )
    xp, ep, e2p = np.zeros(ORDER + n, np.int64), np.zeros(TAPS + n, np.int64), np.zeros(TAPS3 + n, np.int64)
    energy, energy3, acc2, acc3 = 0, 0, 0, 0  # the weights start at zero: so do the sums
    for t in range(n):
        if 1 <= t <= 2:
            _history(xp, t)
        p1 = min(max((base[t] + (1 << (SHIFT - 1)) + _dot(own_r, xp, t, ORDER)) >> SHIFT, -P_CLAMP), P_CLAMP)
        st = side[t]
        norm, norm3 = energy + TAPS * 16 + _dot(st, st, 0, N_IN), energy3 + TAPS3 * 16
        p2 = p1 + ((acc2 + _ROUND) >> W_SHIFT)
        pred = p2 + ((acc3 + _ROUND) >> W_SHIFT)
        if decode:
            xt = pred + r[t] * step
        else:
            q = (x[t] - pred + m) // step
            r[t] = q
            xt = pred + q * step
        x[t] = xp[ORDER + t] = xt
        et = min(max(xt - p1, -E_CLAMP), E_CLAMP)
        e2t = min(max(xt - p2, -E_CLAMP), E_CLAMP)
        ep[TAPS + t], e2p[TAPS3 + t] = et, e2t
        mu = MU_SHIFT - 2 if t < WARM else MU_SHIFT - 1 if t < 4 * WARM else MU_SHIFT
        g = min(max(((xt - p2) * (_ONE // norm)) >> mu, -G_CLAMP), G_CLAMP)
        acc2 = _nudge(wr, ep[t:], ep[t + 1 :], g, TAPS) + _nudge(ws, st, side[t + 1], g, N_IN)
        g3 = min(max(((xt - pred) * (_ONE // norm3)) >> MU3_SHIFT, -G_CLAMP), G_CLAMP)
        acc3 = _nudge(w3r, e2p[t:], e2p[t + 1 :], g3, TAPS3)
        energy += et * et - ep[t] * ep[t]
        energy3 += e2t * e2t - e2p[t] * e2p[t]
    e[:] = ep[TAPS:]


@njit(cache=True, nogil=True)
def predict_segment(x, r, e, ranked, n_side, n_cross, coef, steps, decode):
    """A segment's channels (in the coding order) through the three stages. ``decode`` False:
    ``x`` int64 [C, n] holds the centred samples; fills ``r`` int64 [C, n] with the (quantised)
    residuals and overwrites ``x`` with the rebuilt samples. ``decode`` True: rebuilds ``x`` from
    ``r``. Either way fills ``e`` int64 [C, n] with the stage-1 errors (clamped to
    :data:`E_CLAMP`). Per channel: ``ranked`` int64 [C, N_SIDE] its earlier channels (the first
    ``n_side`` feed the NLMS stage, the first ``n_cross`` the LPC), ``coef`` int64
    [C, ORDER + 3 CROSS] the LPC's coefficients (own past, then the cross channels' lags -1, 0, +1),
    ``steps`` int64 [C] 2m + 1."""
    c_all, n = x.shape
    base, side = np.zeros(n, np.int64), np.zeros((n + 1, N_IN), np.int64)
    for c in range(c_all):
        _inputs(x, e, ranked[c], n_side[c], n_cross[c], coef[c], base, side)
        _predict_run(x[c], r[c], e[c], base, side, coef[c, :ORDER], steps[c], decode)


@njit(cache=True, nogil=True, inline="always")
def _bit_length(m):
    """Bits of ``m`` >= 0 (0 for 0)."""
    return 64 - leading_zeros(m)


@njit(cache=True, nogil=True, inline="always")
def _context(a):
    """The unary model's context of the running level ``a`` (its half-octave, at most N_CTX - 1)."""
    b = _bit_length(a)
    c = 2 * b + ((a >> (b - 2)) & 1) if b >= 2 else b
    return min(c, N_CTX - 1)


@njit(cache=True, nogil=True, inline="always")
def _bound(rng, probs, i):
    """Where the coder's range splits for decision ``i`` (the part of a 0)."""
    p = min(max((probs[i, 0] + probs[i, 1]) >> (17 - PROB_BITS), 1), (1 << PROB_BITS) - 1)
    return (rng >> PROB_BITS) * p


@njit(cache=True, nogil=True, inline="always")
def _dec_bit(rng, code, pos, buf, probs, i):
    """(range, code, position, bit) after decoding decision ``i``."""
    bound = _bound(rng, probs, i)
    if code < bound:
        rng, bit = bound, 0
    else:
        code, rng, bit = code - bound, rng - bound, 1
    _adapt(probs, i, bit)
    while rng < TOP:
        rng <<= 8
        code = ((code << 8) | (buf[pos] if pos < buf.size else 0)) & 0xFFFFFFFF
        pos += 1
    return rng, code, pos, bit


@njit(cache=True, nogil=True, inline="always")
def _dec_direct(rng, code, pos, buf, nbits):
    """(range, code, position, value) after decoding ``nbits`` equiprobable bits."""
    v = 0
    for _ in range(nbits):
        rng >>= 1
        bit = 0
        if code >= rng:
            code -= rng
            bit = 1
        v = (v << 1) | bit
        while rng < TOP:
            rng <<= 8
            code = ((code << 8) | (buf[pos] if pos < buf.size else 0)) & 0xFFFFFFFF
            pos += 1
    return rng, code, pos, v


@njit(cache=True, nogil=True)
def decode_residuals(r, st, buf, unary, sign, mant, lv):
    """Decodes into the int64 residuals ``r`` [n] with the decoder state ``st`` int64 [3] (range,
    code, position) over ``buf``, the models ``unary``/``sign``/``mant`` and the running level and
    sign context ``lv`` int64 [2] (all carried on)."""
    rng, code, pos = st[0], st[1], st[2]
    a, prev = lv[0], lv[1]
    mant2 = MAX_BITS + 1
    for t in range(r.size):
        base = _context(a) * (MAX_BITS + 1)
        b, bit = 0, 1
        while b < MAX_BITS:
            rng, code, pos, bit = _dec_bit(rng, code, pos, buf, unary, base + b)
            if not bit:
                break
            b += 1
        mm = 0
        if b:
            rng, code, pos, s = _dec_bit(rng, code, pos, buf, sign, prev)
            prev = 2 * s
            mm = 1
            if b >= 2:
                rng, code, pos, b1 = _dec_bit(rng, code, pos, buf, mant, b)
                mm = (2 | b1) << (b - 2)
                if b >= 3:
                    rng, code, pos, b2 = _dec_bit(rng, code, pos, buf, mant, mant2 + 2 * b + b1)
                    rng, code, pos, low = _dec_direct(rng, code, pos, buf, b - 3)
                    mm |= (b2 << (b - 3)) | low
            r[t] = -mm if s else mm
        else:
            r[t] = 0
            prev = 1
        a += mm - (a >> A_SHIFT)
    st[0], st[1], st[2] = rng, code, pos
    lv[0], lv[1] = a, prev


@njit(cache=True, nogil=True, inline="always")
def _shift_low(low, cache, size, pos, buf):
    """(low, cache, cache size, position) after moving the top byte of ``low`` out (carries
    through the cached byte and any 0xFF after it)."""
    if low < 0xFF000000 or low >= (1 << 32):
        carry, temp = low >> 32, cache
        while True:
            buf[pos] = (temp + carry) & 0xFF
            pos += 1
            temp = 0xFF
            size -= 1
            if size == 0:
                break
        cache = (low >> 24) & 0xFF
    return (low & 0x00FFFFFF) << 8, cache, size + 1, pos


@njit(cache=True, nogil=True, inline="always")
def _enc_bit(cs, buf, probs, i, bit):
    """The coder state ``cs`` (low, range, cache, cache size, position) after decision ``i``."""
    low, rng, cache, size, pos = cs
    bound = _bound(rng, probs, i)
    if bit:
        low, rng = low + bound, rng - bound
    else:
        rng = bound
    _adapt(probs, i, bit)
    while rng < TOP:
        rng <<= 8
        low, cache, size, pos = _shift_low(low, cache, size, pos, buf)
    return low, rng, cache, size, pos


@njit(cache=True, nogil=True, inline="always")
def _enc_direct(cs, buf, value, nbits):
    """The coder state ``cs`` after the low ``nbits`` bits of ``value`` (equiprobable)."""
    low, rng, cache, size, pos = cs
    for k in range(nbits - 1, -1, -1):
        rng >>= 1
        if (value >> k) & 1:
            low += rng
        while rng < TOP:
            rng <<= 8
            low, cache, size, pos = _shift_low(low, cache, size, pos, buf)
    return low, rng, cache, size, pos


@njit(cache=True, nogil=True)
def code_residuals(r, st, buf, unary, sign, mant, lv):
    """Codes the int64 residuals ``r`` [n] into ``buf`` (room for MAX_BYTES_PER_VALUE a value) with
    the encoder state ``st`` int64 [5] (low, range, cache, cache size, position), the models and
    the running level and sign context ``lv`` int64 [2] (all carried on)."""
    cs = (st[0], st[1], st[2], st[3], st[4])
    a, prev = lv[0], lv[1]
    mant2 = MAX_BITS + 1
    for t in range(r.size):
        base = _context(a) * (MAX_BITS + 1)
        v = r[t]
        mm = -v if v < 0 else v
        b = _bit_length(mm)
        for i in range(b):
            cs = _enc_bit(cs, buf, unary, base + i, 1)
        if b < MAX_BITS:
            cs = _enc_bit(cs, buf, unary, base + b, 0)
        if b:
            s = 1 if v < 0 else 0
            cs = _enc_bit(cs, buf, sign, prev, s)
            prev = 2 * s
            if b >= 2:
                b1 = (mm >> (b - 2)) & 1
                cs = _enc_bit(cs, buf, mant, b, b1)
                if b >= 3:
                    cs = _enc_bit(cs, buf, mant, mant2 + 2 * b + b1, (mm >> (b - 3)) & 1)
                    cs = _enc_direct(cs, buf, mm, b - 3)
        else:
            prev = 1
        a += mm - (a >> A_SHIFT)
    st[0], st[1], st[2], st[3], st[4] = cs
    lv[0], lv[1] = a, prev
