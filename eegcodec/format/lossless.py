"""Lossless coding of integer samples across channels (the exact stream's coder).

EEG electrodes see largely the same brain, so each channel is predicted from its own past
(an LPC of order :data:`ORDER`) and from channels coded before it (up to :data:`CROSS`
of them, at lags -1, 0 and +1: those channels are fully known to the decoder). The
coefficients are fitted by least squares per chunk and channel, rounded to integers
with :data:`SHIFT` fractional bits; the prediction is integer arithmetic
(``(sum(coef * sample) + 2**(SHIFT-1)) >> SHIFT``), so encoder and decoder agree bit for
bit on any machine. The residuals are entropy coded by :mod:`eegcodec.format.entropy` with one
scale class per block of :data:`BLOCK` samples (the class is sent).

Frame layout (all little-endian)::

    u32 size of the descriptors | zstd(descriptors):
        u16 channels | u32 samples | per channel: u8 order P, u8 cross count M,
        M x u16 earlier channel index, (P + 3M) x i32 coefficients | u8 class per block, channel-major
    u32 words of the ANS stream | ANS words (u32)
    the raw bits (rest of the frame)
"""

from __future__ import annotations

import struct

import numpy as np
import zstandard

from ..errors import CorruptFileError
from . import entropy

ORDER = 12
CROSS = 4
LAGS = (-1, 0, 1)
SHIFT = 14
BLOCK = 256
#: residual classes: mean |r| = 2 ** ((class - CLASS_OFFSET) / 2) (:mod:`eegcodec.format.entropy`)
CLASS_OFFSET = 4
MAX_COEF = 2**20
#: samples at or beyond this (in grid units) are not predicted (the integer sums could overflow)
MAX_SAMPLE = 2**24


# ----------------------------------------------------------------------------- prediction


def _shifted(v: np.ndarray, lag: int) -> np.ndarray:
    """v[t + lag] (zero outside)."""
    out = np.zeros_like(v)
    if lag > 0:
        out[:-lag] = v[lag:]
    elif lag < 0:
        out[-lag:] = v[:lag]
    else:
        out[:] = v
    return out


def _regressors(k: np.ndarray, c: int, cross: list[int], order: int) -> np.ndarray:
    """int64 [n, order + 3 * len(cross)]: own past samples, then the cross channels' lags."""
    cols = [_shifted(k[c], -i) for i in range(1, order + 1)]
    cols += [_shifted(k[j], lag) for j in cross for lag in LAGS]
    return np.stack(cols, axis=1) if cols else np.zeros((k.shape[1], 0), np.int64)


def _fit(k: np.ndarray, c: int) -> tuple[list[int], np.ndarray]:
    """(cross channels, integer coefficients) for channel ``c`` of int64 ``k`` [C, n]."""
    d = np.diff(k[: c + 1], axis=1).astype(np.float64)
    cross = []
    if c:
        sd = d.std(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs((d[:c] - d[:c].mean(1, keepdims=True)) @ (d[c] - d[c].mean())) / (
                sd[:c] * sd[c] * d.shape[1]
            )
        cross = [int(j) for j in np.argsort(-np.nan_to_num(corr))[:CROSS]]
    x = _regressors(k, c, cross, ORDER).astype(np.float64)[ORDER:-1]  # rows whose regressors are all inside
    coef, *_ = np.linalg.lstsq(x, k[c, ORDER:-1].astype(np.float64), rcond=None)
    return cross, np.clip(np.round(coef * 2**SHIFT), -MAX_COEF, MAX_COEF).astype(np.int64)


def _predict_encoder(k: np.ndarray, c: int, cross: list[int], coef: np.ndarray) -> np.ndarray:
    acc = _regressors(k, c, cross, ORDER) @ coef
    return (acc + (1 << (SHIFT - 1))) >> SHIFT


def _reconstruct(resid: np.ndarray, base: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Invert the own-past recursion: k[t] = resid[t] + ((base[t] + sum own[i] k[t-1-i] + half) >> SHIFT)."""
    return _reconstruct_loop(resid, base, own, SHIFT)


def _reconstruct_py(resid, base, own, shift):
    n, p = resid.size, own.size
    k = np.zeros(n, np.int64)
    half = 1 << (shift - 1)
    for t in range(n):
        acc = base[t] + half
        for i in range(min(p, t)):
            acc += own[i] * k[t - 1 - i]
        k[t] = resid[t] + (acc >> shift)
    return k


try:  # a compiled loop when numba is there (it is: librosa needs it); the same integers either way
    from numba import njit

    _reconstruct_loop = njit(cache=False, nogil=True)(_reconstruct_py)
except ImportError:  # pragma: no cover
    _reconstruct_loop = _reconstruct_py


# ----------------------------------------------------------------------------- frames


def encode_ints(k: np.ndarray) -> bytes:
    """Integer samples int64 [C, n] (|k| < 2**31) -> a lossless frame."""
    k = np.asarray(k, dtype=np.int64)
    c_all, n = k.shape
    head = [struct.pack("<HI", c_all, n)]
    residuals = []
    for c in range(c_all):
        cross, coef = _fit(k, c)
        head.append(struct.pack(f"<BB{len(cross)}H{coef.size}i", ORDER, len(cross), *cross, *coef.tolist()))
        residuals.append(k[c] - _predict_encoder(k, c, cross, coef))
    r = np.stack(residuals) if residuals else np.zeros((0, n), np.int64)
    n_blocks = -(-n // BLOCK)
    sizes = np.diff(np.minimum(np.arange(n_blocks + 1) * BLOCK, n))
    means = np.add.reduceat(np.abs(r), np.arange(n_blocks) * BLOCK, axis=1) / sizes if n else r[:, :0]
    classes = entropy.classes_for(means, CLASS_OFFSET)
    words, raw_bits = entropy.encode(r.ravel(), classes.ravel(), np.tile(sizes, c_all), CLASS_OFFSET)
    return entropy.pack_frame(b"".join(head) + classes.tobytes(), words, raw_bits)


def decode_ints(frame: bytes, c_all: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_ints`: int64 [c_all, n]; anything inconsistent is a CorruptFileError."""
    try:
        return _decode(memoryview(frame), c_all, n)
    except (struct.error, ValueError, IndexError, zstandard.ZstdError) as exc:
        raise CorruptFileError(f"lossless frame is damaged ({type(exc).__name__})") from None


def _decode(frame: memoryview, c_all: int, n: int) -> np.ndarray:
    n_blocks = -(-n // BLOCK)
    most = 6 + c_all * (2 + 2 * CROSS + 4 * (64 + 3 * CROSS)) + c_all * n_blocks  # the largest descriptors
    head, words, raw_bits = entropy.unpack_frame(frame, most, "lossless")
    fits, classes = _descriptors(memoryview(head), c_all, n, n_blocks)
    resid = _residuals(words, classes, c_all, n, raw_bits)
    k = np.zeros((c_all, n), np.int64)
    for c, (order, cross, coef) in enumerate(fits):
        cross_part = _regressors(k, c, cross, 0) @ coef[order:] if cross else np.zeros(n, np.int64)
        k[c] = _reconstruct(resid[c], cross_part, coef[:order].copy())
    return k


def _descriptors(head: memoryview, c_all: int, n: int, n_blocks: int):
    """(per channel (order, cross channels, coefficients), block classes uint8 [C, blocks])."""
    if struct.unpack_from("<HI", head, 0) != (c_all, n):
        raise CorruptFileError("lossless frame does not hold the channels and samples its header says")
    pos, fits = 6, []
    for _ in range(c_all):
        order, m = struct.unpack_from("<BB", head, pos)
        if order > 64 or m > CROSS:
            raise CorruptFileError("lossless frame is damaged (predictor size)")
        vals = struct.unpack_from(f"<{m}H{order + 3 * m}i", head, pos + 2)
        pos += 2 + 2 * m + 4 * (order + 3 * m)
        cross, coef = list(vals[:m]), np.array(vals[m:], np.int64)
        if any(j >= len(fits) for j in cross):
            raise CorruptFileError("lossless frame is damaged (cross channel)")
        fits.append((order, cross, coef))
    if len(head) != pos + c_all * n_blocks:
        raise CorruptFileError("lossless frame is damaged (block classes)")
    classes = np.frombuffer(head[pos:], np.uint8).reshape(c_all, n_blocks)
    if classes.size and classes.max() >= entropy.N_CLASSES:
        raise CorruptFileError("lossless frame is damaged (class)")
    return fits, classes


def _residuals(words: np.ndarray, classes: np.ndarray, c_all: int, n: int, raw_bits: bytes) -> np.ndarray:
    """The residuals int64 [C, n] from the ANS words and the raw bits."""
    n_blocks = classes.shape[1]
    sizes = np.diff(np.minimum(np.arange(n_blocks + 1) * BLOCK, n))
    values = entropy.decode(words, raw_bits, classes.ravel(), np.tile(sizes, c_all), CLASS_OFFSET)
    return values.reshape(c_all, n)
