"""Classical reference coders, run on the same crops and channels as the neural codecs.

Lossless (payload over the recording's own integer samples):

* :func:`flac_bytes` — FLAC via soundfile (libsndfile), up to 8 channels per stream,
  16- or 24-bit as the samples need.
* :func:`zstd_bytes` — zstd level 19 over the channel-major integer samples.

Lossy transform coders, one quantiser step for the whole recording, uniform deadzone
quantisation (``q = sign(c) floor(|c| / step)``, rebuilt at ``(|q| + 1/2) step``) and a
real entropy coder (zstd level 19 over the zigzagged integers, coefficient-major, split
into byte planes); the payload counted is the zstd output plus the channel means:

* :func:`dct_code` — orthonormal DCT-II (scipy.fft) over 1-s blocks per channel;
* :func:`wavelet_code` — PyWavelets ``wavedec`` (db4, up to 6 levels, periodization) per channel;
* :func:`pca_dct_code` — the multichannel anchor: a spatial PCA per recording (64 electrodes
  see largely the same brain), then the DCT coder over the components.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pywt
import soundfile
import zstandard
from scipy.fft import dct, idct

#: A lossy coder: (x [C, N] volts, sfreq Hz, step volts) -> (reconstruction [C, N], payload bytes).
LossyCoder = Callable[[np.ndarray, float, float], tuple[np.ndarray, int]]


# ---------------------------------------------------------------------------
# lossless
# ---------------------------------------------------------------------------


def integer_samples(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Recover the file's integer samples from x [C, N] (volts).

    Per channel the resolution (LSB) is the smallest step between distinct values,
    refined to a common divisor of all steps; samples are ``offset + lsb * ints``.
    Returns (ints [C, N] int64, lsb [C], offset [C], exact). ``exact`` is False when some
    channel is not on such a grid (float data): it is then quantised to 24 bits over its
    range, so the "lossless" coders are lossless only to that precision.
    """
    ints = np.zeros(x.shape, dtype=np.int64)
    lsb = np.ones(x.shape[0])
    offset = x.min(axis=1) if x.size else np.zeros(x.shape[0])
    exact = True
    for c, row in enumerate(x):
        steps = np.diff(np.unique(row))
        if steps.size == 0:
            continue
        found = None
        for k in range(1, 17):
            step = steps.min() / k
            ratio = steps / step
            if np.abs(ratio - np.round(ratio)).max() < 1e-3:
                found = step
                break
        if found is None or (row.max() - row.min()) / found >= 2**24:
            exact = False
            found = (row.max() - row.min()) / (2**24 - 1)
        lsb[c] = found
        ints[c] = np.round((row - offset[c]) / found).astype(np.int64)
    ints -= (
        ints.max(axis=1, keepdims=True) + ints.min(axis=1, keepdims=True)
    ) // 2  # centre in the signed range
    return ints, lsb, offset, exact


def flac_bytes(ints: np.ndarray, sfreq: float) -> int:
    """FLAC size of ints [C, N] at ``sfreq`` (rounded to an integer Hz), 8 channels per stream.
    Round trip checked: raises AssertionError if FLAC does not give the samples back."""
    span = int(np.abs(ints).max()) if ints.size else 0
    bits, subtype, dtype = (16, "PCM_16", "int16") if span < 2**15 else (24, "PCM_24", "int32")
    if span >= 2**23:
        raise ValueError(f"samples need more than 24 bits (|max| {span}); FLAC cannot hold them")
    total = 0
    for start in range(0, ints.shape[0], 8):
        block = ints[start : start + 8].T.astype(dtype)
        scaled = (
            block << 8 if bits == 24 else block
        )  # libsndfile takes 24-bit samples left-justified in int32
        buf = io.BytesIO()
        soundfile.write(buf, scaled, max(1, int(round(sfreq))), format="FLAC", subtype=subtype)
        total += len(buf.getvalue())
        buf.seek(0)
        back, _ = soundfile.read(buf, dtype=dtype, always_2d=True)
        assert np.array_equal(back >> 8 if bits == 24 else back, block), "FLAC round trip is not exact"
    return total


def zstd_bytes(ints: np.ndarray) -> int:
    """zstd (level 19) size of ints [C, N] stored channel-major as int16 (or int32 when needed)."""
    dtype = np.int16 if ints.size == 0 or np.abs(ints).max() < 2**15 else np.int32
    return len(zstandard.ZstdCompressor(level=19).compress(np.ascontiguousarray(ints, dtype=dtype).tobytes()))


# ---------------------------------------------------------------------------
# lossy transform coders
# ---------------------------------------------------------------------------


def deadzone_quantise(coef: np.ndarray, step: float) -> np.ndarray:
    """Uniform deadzone quantiser: ``sign(c) floor(|c| / step)`` as int64."""
    return (np.sign(coef) * np.floor(np.abs(coef) / step)).astype(np.int64)


def deadzone_rebuild(q: np.ndarray, step: float) -> np.ndarray:
    """Midpoint reconstruction ``sign(q) (|q| + 1/2) step`` (0 stays 0)."""
    return np.sign(q) * (np.abs(q) + 0.5) * step


def entropy_code(q: np.ndarray) -> bytes:
    """zstd (level 19) over integers q [C, ..., M] ordered coefficient-major (last axis
    first), zigzagged to unsigned and split into byte planes, so similar magnitudes sit together."""
    zz = np.ascontiguousarray(np.moveaxis(q, -1, 0)).astype(np.int64)
    zz = (zz << 1) ^ (zz >> 63)
    n_planes = max(1, int(np.ceil(np.log2(int(zz.max(initial=0)) + 2) / 8)))
    planes = b"".join(((zz >> (8 * i)) & 0xFF).astype(np.uint8).tobytes() for i in range(n_planes))
    return zstandard.ZstdCompressor(level=19).compress(planes)


def dct_code(x: np.ndarray, sfreq: float, step: float) -> tuple[np.ndarray, int]:
    """DCT coder: x [C, N] (volts) -> (reconstruction [C, N], payload bytes)."""
    c, n = x.shape
    block = max(1, int(round(sfreq)))
    nb = -(-n // block)
    mean = x.mean(axis=1, keepdims=True)
    padded = np.zeros((c, nb * block))
    padded[:, :n] = x - mean
    q = deadzone_quantise(dct(padded.reshape(c, nb, block), type=2, norm="ortho", axis=-1), step)
    rec = idct(deadzone_rebuild(q, step), type=2, norm="ortho", axis=-1).reshape(c, nb * block)[:, :n] + mean
    return rec, len(entropy_code(q)) + 8 * c  # + the channel means as float64


def wavelet_code(
    x: np.ndarray, sfreq: float, step: float, wavelet: str = "db4", max_level: int = 6
) -> tuple[np.ndarray, int]:
    """Wavelet coder: x [C, N] (volts) -> (reconstruction [C, N], payload bytes)."""
    c, n = x.shape
    mean = x.mean(axis=1, keepdims=True)
    level = max(1, min(max_level, pywt.dwt_max_level(n, pywt.Wavelet(wavelet).dec_len)))
    coeffs = pywt.wavedec(x - mean, wavelet, mode="periodization", level=level, axis=-1)
    bounds = np.cumsum([a.shape[-1] for a in coeffs])[:-1]
    q = deadzone_quantise(
        np.concatenate(coeffs, axis=-1), step
    )  # [C, M]: approximation, then details coarse to fine
    rebuilt = np.split(deadzone_rebuild(q, step), bounds, axis=-1)
    rec = pywt.waverec(rebuilt, wavelet, mode="periodization", axis=-1)[:, :n] + mean
    return rec, len(entropy_code(q)) + 8 * c


def pca_dct_code(x: np.ndarray, sfreq: float, step: float) -> tuple[np.ndarray, int]:
    """Multichannel coder: a spatial PCA of the recording (eigenvectors sent as float16), then
    :func:`dct_code` over the components with the same step. Only the leading components
    with a non-zero coefficient are sent (their count, their eigenvectors, their coefficients).
    x [C, N] (volts) -> (reconstruction [C, N], payload bytes)."""
    c, n = x.shape
    mean = x.mean(axis=1, keepdims=True)
    xc = x - mean
    _, vecs = np.linalg.eigh(xc @ xc.T / n)
    basis = vecs[:, ::-1].astype(np.float16).astype(np.float64)  # what the decoder gets, strongest first
    comps = np.linalg.solve(basis, xc)
    block = max(1, int(round(sfreq)))
    nb = -(-n // block)
    padded = np.zeros((c, nb * block))
    padded[:, :n] = comps
    q = deadzone_quantise(dct(padded.reshape(c, nb, block), type=2, norm="ortho", axis=-1), step)
    nonzero = np.flatnonzero(np.abs(q).reshape(c, -1).max(axis=1) > 0)
    k = int(nonzero[-1]) + 1 if nonzero.size else 0
    rec_comps = idct(deadzone_rebuild(q[:k], step), type=2, norm="ortho", axis=-1).reshape(k, nb * block)[
        :, :n
    ]
    rec = basis[:, :k] @ rec_comps + mean
    payload = (
        (len(entropy_code(q[:k])) if k else 0) + 2 * c * k + 8 * c + 2
    )  # coefficients, eigenvectors, means, k
    return rec, payload


LOSSY_CODERS: dict[str, LossyCoder] = {"dct": dct_code, "wavelet": wavelet_code, "pca_dct": pca_dct_code}


def step_sweep(x: np.ndarray, n_steps: int = 24) -> np.ndarray:
    """Quantiser steps (volts) from 1/50 to 20 times the median channel std: PRD from ~1 % to ~100 %."""
    scale = float(np.median(np.std(x, axis=1))) or 1e-6
    return scale * np.geomspace(0.02, 20, n_steps)


def step_for_bps(
    coder: LossyCoder, x: np.ndarray, sfreq: float, target_bps: float, iters: int = 18
) -> tuple[float, np.ndarray, float]:
    """Bisect the step (log scale) so ``coder`` spends ``target_bps`` bits per sample on x.

    Returns (step, reconstruction, bits per sample reached)."""
    lo, hi = np.log(step_sweep(x)[[0, -1]]) + np.array([-3.0, 3.0])
    best = None
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        rec, nbytes = coder(x, sfreq, float(np.exp(mid)))
        bps = 8 * nbytes / x.size
        if best is None or abs(bps - target_bps) < abs(best[2] - target_bps):
            best = (float(np.exp(mid)), rec, bps)
        if bps > target_bps:
            lo = mid  # too many bits: coarser step
        else:
            hi = mid
    return best


def interpolate_at(xs, ys, x0: float) -> float:
    """Linear interpolation of y at x0 along a curve sorted by x (NaN if outside or x0 is NaN)."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if xs.size == 0 or not np.isfinite(x0):
        return float("nan")
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if x0 < xs[0] or x0 > xs[-1]:
        return float("nan")
    return float(np.interp(x0, xs, ys))
