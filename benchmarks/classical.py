"""Classical reference coders, measured on the same crops as the neural codec.

``dct_code``: per channel, 1-s blocks, orthonormal DCT-II (scipy.fft), uniform
deadzone quantisation with one step size for the whole recording, and zstd
(level 19) over the zigzagged integer coefficients split into byte planes. The payload counted is the zstd
output alone (the step size and shape are a few bytes of header).
"""

from __future__ import annotations

import numpy as np
import zstandard
from scipy.fft import dct, idct


def dct_code(x: np.ndarray, sfreq: float, step: float) -> tuple[np.ndarray, int]:
    """Code x [C, N] (volts) -> (reconstruction [C, N], payload bytes)."""
    c, n = x.shape
    block = int(round(sfreq))
    nb = -(-n // block)
    mean = x.mean(axis=1, keepdims=True)
    padded = np.zeros((c, nb * block))
    padded[:, :n] = x - mean
    coef = dct(padded.reshape(c, nb, block), type=2, norm="ortho", axis=-1)
    q = (np.sign(coef) * np.floor(np.abs(coef) / step)).astype(np.int32)
    # coefficient-major order groups similar magnitudes; zigzag to unsigned, then one
    # byte plane per significance level, so zstd sees mostly small bytes
    zz = np.ascontiguousarray(q.transpose(2, 0, 1)).astype(np.int64)
    zz = (zz << 1) ^ (zz >> 63)
    n_planes = max(1, int(np.ceil(np.log2(int(zz.max()) + 2) / 8)))
    planes = b"".join(((zz >> (8 * i)) & 0xFF).astype(np.uint8).tobytes() for i in range(n_planes))
    payload = zstandard.ZstdCompressor(level=19).compress(planes)
    rec_coef = np.sign(q) * (np.abs(q) + 0.5) * step * (q != 0)
    rec = idct(rec_coef, type=2, norm="ortho", axis=-1).reshape(c, nb * block)[:, :n] + mean
    return rec, len(payload) + 8 * c  # + the channel means as float64


def interpolate_at(xs: np.ndarray, ys: np.ndarray, x0: float) -> float:
    """Linear interpolation of y at x0 along a curve sorted by x (NaN if outside)."""
    order = np.argsort(xs)
    xs, ys = np.asarray(xs)[order], np.asarray(ys)[order]
    if x0 < xs[0] or x0 > xs[-1]:
        return float("nan")
    return float(np.interp(x0, xs, ys))
