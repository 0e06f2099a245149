"""The segmented adaptive exact coder (``RAWC`` channel mode 4, format version 8): integer LPC
across channels, two NLMS stages, a context-modelled range coder, and segments that decode alone
(random access inside a frame); optionally near-lossless in a closed loop.

The channels are coded in an order chosen per frame (each after the channels its first differences
correlate with best, :func:`channel_order`). Each channel is predicted in three stages, integer
arithmetic only:

1. the per-frame LPC of :mod:`eegcodec.format.cascade` (own past, order
   :data:`~eegcodec.format.lossless.ORDER`, and up to :data:`CROSS` earlier channels at lags -1,
   0, +1, chosen by the encoder so that each adds what the others leave (:func:`_inputs_of`), as
   many as save more bits than their coefficients cost (:data:`CROSS_PRICE`); integer
   coefficients with :data:`~eegcodec.format.lossless.SHIFT` fractional bits);
2. a normalised LMS filter over the channel's last :data:`TAPS` stage-1 errors, the stage-1 errors
   of up to :data:`N_SIDE` earlier channels at the same sample and of the first :data:`N_NEAR` of
   them one sample before and after (weights with :data:`W_SHIFT` fractional bits, step
   ``2**-MU_SHIFT`` over the window's energy; larger for the first :data:`WARM` samples);
3. a second NLMS filter over the last :data:`TAPS3` stage-2 errors (step ``2**-MU3_SHIFT``).

The constants, and the compiled loops that run the stages and the coder over a segment, are in
:mod:`eegcodec.format.adaptive_kernels`.

The residuals are coded as in :mod:`eegcodec.format.rangecoder` (unary bit length in a context of
the running magnitude, sign, mantissa) with two changes: the unary probabilities start from a
geometric law of the context's level instead of one half (:func:`prior_unary`), and the second bit
below the leading one is modelled too.

**Segments.** The samples are cut into segments of a length the frame records (the encoder's:
:func:`segment_length`, equal segments of about :data:`SEGMENT` samples; the last may be shorter);
every adaptive state (LPC history, NLMS weights, the coder's probabilities and levels) restarts at a
segment's first sample, so a segment decodes from the frame's descriptors alone: a window of
samples costs the segments that cover it (:func:`decode_ints` ``start``/``stop``). At a segment's
start the LPC's missing history is the segment's first sample carried back along the slope of its
first two (``x[-j] = x[0] - j (x[1] - x[0])``), so the first samples are not predicted from zeros.

A channel may carry a bound ``m`` (grid units): the residual is quantised to
``q = floor((d + m) / (2m + 1))`` and the channel rebuilt as ``prediction + q (2m + 1)``, the
predictors running on the rebuilt samples (every sample within ``m`` of the original; the encoder
fits the LPC for those noisy samples, :func:`~eegcodec.format.cascade._fit`'s ``noise``); ``m = 0``
is lossless.

Frame (little-endian)::

    u16 channels C | u32 samples n | u32 segment length S | u32 size of the descriptor stream
    | descriptor stream | u32 size of each of the ceil(n / S) segments | the segments

The descriptor stream is a :mod:`eegcodec.format.rangecoder` stream of integers: the coding order
(C channel indices), then per channel in that order ``m, offset, P, M, K, K earlier positions
(in the coding order), P + 3M coefficients`` (the first M of the K side channels are the LPC's). A
segment is one range-coder stream: the residuals of its samples, channel after channel in the
coding order.
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import CorruptFileError
from ..threads import threads_for
from . import lossless
from .adaptive_kernels import CROSS, N_SIDE, ORDER, code_residuals, decode_residuals, predict_segment
from .cascade import _fit, _unit_diffs
from .rangecoder import MAX_BITS, MAX_BYTES_PER_VALUE, N_CTX, Decoder, Encoder, _flush, _next_byte

#: samples per segment about which the encoder cuts a frame (every adaptive state restarts at a
#: segment's first sample); 4096 costs 0.2-1 % against none
SEGMENT = 4096
#: reweighting passes of the per-frame LPC fit (towards least absolute error)
ROBUST = 2
#: bits an earlier channel's three LPC coefficients cost in the descriptors, about: the LPC takes
#: the channels (of at most :data:`CROSS`) whose fit saves more than that
CROSS_PRICE = 48.0
_HEAD = struct.Struct("<HIII")
#: |residual| bound a valid frame respects: |sample - prediction| < 2**24 + 2**30 + 2**35
MAX_RESIDUAL = 2**36


def prior_unary() -> np.ndarray:
    """int64 [N_CTX, MAX_BITS + 1]: the starting probability of a 0 (16 bits) of each unary
    decision, under a geometric law of ``|r|`` whose mean is the context's running level over 16
    (``P(|r| >= k) = theta**k``, ``theta = mean / (1 + mean)``); integer arithmetic only (Q30)."""
    table = np.full((N_CTX, MAX_BITS + 1), 32768, np.int64)
    for c in range(N_CTX):
        b, half = c // 2, c & 1
        level = c if b < 3 else (5 + 2 * half) << (b - 3)  # a level inside the context
        t = (level << 30) // (16 + level)  # theta in Q30
        for i in range(MAX_BITS + 1):
            if i >= 2:
                t = (t * t) >> 30  # P(b > i | b >= i) = theta ** (2 ** (i - 1))
            table[c, i] = min(max(65536 - (t >> 14), 64), 65472)
    return table


_PRIOR = np.repeat(prior_unary().reshape(-1, 1), 2, axis=1)


def _models() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A segment's fresh coder models: unary (from the prior), sign, mantissa, level."""
    return (
        _PRIOR.copy(),
        np.full((3, 2), 32768, np.int64),
        np.full((3 * (MAX_BITS + 1), 2), 32768, np.int64),
        np.array([16, 1], np.int64),
    )


def channel_order(gram: np.ndarray) -> np.ndarray:
    """int64 [C]: the coding order of channels whose unit first differences
    (:func:`~eegcodec.format.cascade._unit_diffs`) have the products ``gram`` float64 [C, C]:
    first the channel whose four best |correlations| sum highest, then repeatedly the channel with
    the highest such sum against the channels already placed."""
    corr = np.abs(gram)
    np.fill_diagonal(corr, 0)
    c_all = len(corr)
    if c_all <= 2:
        return np.arange(c_all)
    first = int(np.argmax(np.sort(corr, axis=1)[:, -4:].sum(1)))
    order, left = [first], [c for c in range(c_all) if c != first]
    while left:
        sub = np.sort(corr[np.ix_(left, order)], axis=1)[:, -4:]
        order.append(left.pop(int(np.argmax(sub.sum(1)))))
    return np.array(order, np.int64)


def _inputs_of(gram: np.ndarray, c: int) -> list[int]:
    """The earlier channels (at most :data:`N_SIDE`) that predict channel ``c``, from ``gram``
    float64 [C, C], the products of the channels' unit first differences
    (:func:`~eegcodec.format.cascade._unit_diffs`): first the LPC's :data:`CROSS`, each the channel
    that best matches what the ones already chosen leave of ``c``'s differences (greedy orthogonal
    selection: neighbours that repeat each other are not all taken), then the NLMS stage's others
    by |correlation|."""
    chosen: list[int] = []
    # the products of what the chosen leave of each channel: g_ij - g_iS (G_SS)^-1 g_Sj, updated by
    # one Schur complement per choice
    left = gram[: c + 1, : c + 1].copy()
    for _ in range(min(CROSS, c)):
        score = np.abs(left[:c, c])
        score[chosen] = -1.0
        chosen.append(j := int(np.argmax(score)))
        if left[j, j] > 1e-9:  # a flat channel, or one the chosen explain already, explains nothing more
            left -= np.outer(left[:, j], left[j] / left[j, j])
    by_correlation = np.argsort(-np.abs(gram[:c, c]), kind="stable")
    return (chosen + [int(j) for j in by_correlation if j not in chosen])[:N_SIDE]


def segment_length(n: int) -> int:
    """Samples per segment of a frame of ``n`` samples: the frame cut into equal segments, as many
    as :data:`SEGMENT` goes into ``n`` to the nearest whole (at least one), so that no segment
    restarts the adaptive states for a short tail."""
    return max(1, -(-n // max(1, (n + SEGMENT // 2) // SEGMENT)))


def encode_ints(
    k: np.ndarray, bounds: np.ndarray | None = None, segment: int | None = None
) -> tuple[bytes, np.ndarray]:
    """Integer samples int64 [C, n] (|k| < 2**24) -> (frame, rebuilt samples int64 [C, n]).

    ``bounds`` int64 [C] (grid units, default 0): each rebuilt sample within its channel's bound;
    ``segment``: samples per independently decodable segment (default :func:`segment_length`)."""
    k = np.asarray(k, dtype=np.int64)
    c_all, n = k.shape
    segment = segment_length(n) if segment is None else segment
    bounds = np.zeros(c_all, np.int64) if bounds is None else np.asarray(bounds, np.int64)
    offsets = np.median(k, axis=1).astype(np.int64) if k.size else np.zeros(c_all, np.int64)
    unit = _unit_diffs(k)
    gram = unit @ unit.T  # [C, C]: what the coding order and each channel's inputs are chosen by
    perm = channel_order(gram)
    k = k[perm] - offsets[perm, None]  # centred: the LPC has no constant term
    gram, order = gram[np.ix_(perm, perm)], lossless.ORDER
    step = 2 * bounds[perm].astype(np.float64) + 1
    noise = (step**2 - 1) / 12  # a rebuilt sample's error: uniform over the step's 2m + 1 values
    desc = Encoder(64 * c_all + 64)
    desc.residuals(perm)
    plan, as_float = [], k.astype(np.float64)  # the fits' regressors, converted once
    for c in range(c_all):
        ranked = _inputs_of(gram, c)
        coef = _fit(as_float, c, ranked[:CROSS], noise, ROBUST, CROSS_PRICE)
        cross = ranked[: (len(coef) - order) // 3]
        head = [bounds[perm[c]], offsets[perm[c]], order, len(cross), len(ranked), *ranked]
        desc.residuals(np.array([*head, *coef.tolist()], np.int64))
        plan.append((ranked, cross, coef))
    rebuilt, errors = k.copy(), np.zeros_like(k)
    segments = _each_segment(
        lambda a: _segment(rebuilt[:, a : a + segment], errors[:, a : a + segment], None, plan, bounds[perm]),
        range(0, n, segment),
    )
    d = desc.finish()
    sizes = np.array([len(s) for s in segments], "<u4").tobytes()
    out = np.empty_like(rebuilt)
    out[perm] = rebuilt + offsets[perm, None]
    return _HEAD.pack(c_all, n, segment, len(d)) + d + sizes + b"".join(segments), out


def _pack(plan: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A plan's predictors as arrays: earlier channels int64 [C, N_SIDE], how many feed the NLMS
    stage int64 [C] and the LPC int64 [C], the LPC's coefficients int64 [C, ORDER + 3 CROSS]."""
    c_all = len(plan)
    ranked, n_side = np.zeros((c_all, N_SIDE), np.int64), np.zeros(c_all, np.int64)
    n_cross, coef = np.zeros(c_all, np.int64), np.zeros((c_all, ORDER + 3 * CROSS), np.int64)
    for c, (rk, cross, cf) in enumerate(plan):
        ranked[c, : len(rk)], n_side[c], n_cross[c] = rk, len(rk), len(cross)
        coef[c, : len(cf)] = cf
    return ranked, n_side, n_cross, coef


def _segment(x: np.ndarray, errors: np.ndarray, data, plan: list, bounds: np.ndarray):
    """Codes (``data`` None; returns the segment's bytes) or decodes (``data``: the segment's
    bytes) one segment of all channels in place: ``x`` int64 [C, m] the centred samples in coding
    order (rebuilt on return), ``errors`` int64 [C, m] their stage-1 errors (filled)."""
    predictors = (*_pack(plan), 2 * np.asarray(bounds, np.int64) + 1)
    rows, r, e = np.array(x, np.int64), np.zeros(x.shape, np.int64), np.zeros(x.shape, np.int64)
    models = (*_models(),)
    if data is None:
        predict_segment(rows, r, e, *predictors, False)
        buf = np.zeros(MAX_BYTES_PER_VALUE * r.size + 64, np.uint8)
        st = np.array([0, 0xFFFFFFFF, 0, 1, 0], np.int64)
        code_residuals(r.reshape(-1), st, buf, *models)
        _flush(st, buf)
        x[:], errors[:] = rows, e
        return buf[: st[4]].tobytes()
    buf = np.frombuffer(data, np.uint8).copy()  # writable: one compiled coder for both ways
    st = np.array([0xFFFFFFFF, 0, 0], np.int64)
    for _ in range(5):
        st[1] = ((st[1] << 8) | _next_byte(st, buf)) & 0xFFFFFFFF
    decode_residuals(r.reshape(-1), st, buf, *models)
    if np.abs(r).max(initial=0) >= MAX_RESIDUAL:
        raise CorruptFileError("adaptive exact frame is damaged (residual)")
    predict_segment(rows, r, e, *predictors, True)
    x[:], errors[:] = rows, e
    if int(st[2]) > buf.size + 4:
        raise CorruptFileError("adaptive exact frame is truncated (segment)")
    return None


def _each_segment(code, items: range) -> list:
    """``[code(i) for i in items]``, the segments (which share no state) on as many threads as
    there are usable cores (at most ``OMP_NUM_THREADS`` where set): the kernels release the GIL."""
    workers = min(len(items), threads_for(busy=0.0))
    if workers <= 1:
        return [code(i) for i in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(code, items))


def _read_plan(frame: bytes, c_all: int, n: int):
    """(coding order, plan, bounds, offsets, segment length, segment byte offsets) of a frame."""
    if len(frame) < _HEAD.size or _HEAD.unpack_from(frame, 0)[:2] != (c_all, n):
        raise CorruptFileError("adaptive exact frame does not hold the channels and samples its header says")
    segment, size = _HEAD.unpack_from(frame, 0)[2:]
    n_seg = -(-n // segment) if segment else -1
    table = _HEAD.size + size
    if segment < 1 or n_seg < 0 or table + 4 * n_seg > len(frame):
        raise CorruptFileError("adaptive exact frame is truncated")
    desc = Decoder(frame[_HEAD.size : table])
    perm = desc.residuals(c_all)
    if not np.array_equal(np.sort(perm), np.arange(c_all)):
        raise CorruptFileError("adaptive exact frame is damaged (channel order)")
    plan, bounds, offsets = [], np.zeros(c_all, np.int64), np.zeros(c_all, np.int64)
    for c in range(c_all):
        bounds[c], offsets[c], order, n_cross, n_side = desc.residuals(5).tolist()
        if not (
            0 <= bounds[c] < 2**24
            and order == lossless.ORDER
            and 0 <= n_cross <= min(CROSS, n_side)
            and n_side <= N_SIDE
        ):
            raise CorruptFileError("adaptive exact frame is damaged (predictor size)")
        ranked = desc.residuals(n_side).tolist()
        coef = desc.residuals(order + 3 * n_cross)
        if any(not 0 <= j < c for j in ranked) or np.abs(coef).max(initial=0) > lossless.MAX_COEF:
            raise CorruptFileError("adaptive exact frame is damaged (predictor)")
        plan.append((ranked, ranked[:n_cross], coef))
    if desc.overrun() or np.abs(offsets).max(initial=0) >= 2**40:
        raise CorruptFileError("adaptive exact frame is damaged (descriptors)")
    sizes = np.frombuffer(frame, "<u4", n_seg, table).astype(np.int64)
    starts = table + 4 * n_seg + np.concatenate([[0], np.cumsum(sizes)])
    if starts[-1] != len(frame):
        raise CorruptFileError("adaptive exact frame's segments do not fill it")
    return perm, plan, bounds, offsets, segment, starts


def decode_ints(frame: bytes, c_all: int, n: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_ints`: int64 [c_all, stop - start], the samples ``start`` to
    ``stop`` (default: all ``n``), decoding only the segments that cover them; anything
    inconsistent is a CorruptFileError."""
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ValueError(f"sample window [{start}, {stop}) is outside the frame's {n} samples")
    perm, plan, bounds, offsets, segment, starts = _read_plan(frame, c_all, n)
    first, last = start // segment, -(-stop // segment)
    lo = first * segment
    x = np.zeros((c_all, min(n, last * segment) - lo), np.int64)
    errors = np.zeros_like(x)
    _each_segment(
        lambda s: _segment(
            x[:, s * segment - lo : (s + 1) * segment - lo],
            errors[:, s * segment - lo : (s + 1) * segment - lo],
            frame[starts[s] : starts[s + 1]],
            plan,
            bounds,
        ),
        range(first, last),
    )
    out = np.empty((c_all, stop - start), np.int64)
    out[perm] = x[:, start - lo : stop - lo] + offsets[:, None]
    return out
