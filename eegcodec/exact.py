"""Channels stored exactly (``RAWC``, format version 3): each on its own sample grid.

EDF, BDF and most amplifiers store integers times a per-channel resolution; MNE hands
us those as float64 volts. Storing float64 costs about 30 bits per sample after zstd;
finding the grid (an origin and a step such that every sample is ``origin + k * step``
for an integer ``k``) and storing the first differences of ``k`` costs what the signal's
own entropy does (a stim channel: almost nothing; an ECG at 16 bits: a few bits).

A chunk's block of exactly stored channels ``[L, n]`` becomes one zstd frame holding,
per channel::

    mode   u8       0: float64 samples; 1: int16 residuals; 2: int32 residuals
    order  u8       (modes 1, 2) prediction order p, 0..3
    origin f64      (modes 1, 2)
    step   f64      (modes 1, 2)
    data   n x 8 bytes (mode 0), or n x 2 / n x 4 bytes of the residuals: ``k`` differenced
           ``p`` times, each time with a leading 0 (FLAC's fixed polynomial predictors;
           ``p`` cumulative sums restore ``k``). The encoder takes the ``p`` with the
           smallest sum of absolute residuals.

Modes 1 and 2 are used only when ``origin + k * step`` is within ``GRID_TOLERANCE`` steps
of every sample (a millionth of the file's resolution: written back to EDF/BDF they give
the same integers); NaN or other values off any grid keep float64, bit for bit.
"""

from __future__ import annotations

import struct

import numpy as np
import zstandard

from .container import inflate
from .errors import CorruptFileError

GRID_TOLERANCE = 1e-6
_GRID = struct.Struct("<Bdd")
MAX_ORDER = 3
_WIDTH = {0: 8, 1: 2, 2: 4}
_DTYPE = {0: "<f8", 1: "<i2", 2: "<i4"}


def find_grid(x: np.ndarray) -> tuple[float, float, np.ndarray] | None:
    """``(origin, step, k)`` with ``x ~= origin + k * step`` (int64 ``k``), or None.

    x : float64 [n] samples (any unit)."""
    if not np.isfinite(x).all():
        return None
    levels = np.unique(x)
    origin = float(levels[0])
    if levels.size == 1:
        return origin, 1.0, np.zeros(x.size, np.int64)
    step = float(np.min(np.diff(levels)))
    if step <= 0 or not np.isfinite(step) or (levels[-1] - origin) / step >= 2**31:
        return None
    k = np.rint((x - origin) / step)
    if np.max(np.abs(origin + k * step - x)) > GRID_TOLERANCE * step:
        return None
    return origin, step, k.astype(np.int64)


def predict(k: np.ndarray) -> tuple[int, np.ndarray]:
    """(order, residuals) of int64 ``k`` [n]: the fixed polynomial predictor of order 0..3 whose
    residuals (``k`` differenced ``order`` times with a leading 0) have the smallest L1 norm and fit int32."""
    best, r = (0, k), k
    for order in range(1, MAX_ORDER + 1):
        r = np.diff(r, prepend=0)
        if np.abs(r).sum() < np.abs(best[1]).sum() and np.abs(r).max(initial=0) < 2**31:
            best = (order, r)
    return best


def encode_block(block: np.ndarray) -> bytes:
    """Exactly stored channels of one chunk, float64 [L, n] -> one zstd frame."""
    parts = []
    for x in np.asarray(block, dtype=np.float64):
        grid = find_grid(x)
        if grid is None:
            parts += [b"\x00", np.ascontiguousarray(x, dtype="<f8").tobytes()]
            continue
        origin, step, k = grid
        order, resid = predict(k)
        mode = 1 if np.abs(resid).max(initial=0) < 2**15 else 2
        parts += [bytes([mode]), _GRID.pack(order, origin, step), resid.astype(_DTYPE[mode]).tobytes()]
    return zstandard.ZstdCompressor(level=10).compress(b"".join(parts))


def decode_block(frame: bytes, n_channels: int, n: int) -> np.ndarray:
    """Inverse of :func:`encode_block`: float64 [n_channels, n]. The frame may inflate to
    at most what ``n_channels`` float64 rows need; anything else is a :class:`CorruptFileError`."""
    most = n_channels * (1 + 8 * n)
    try:
        raw = zstandard.ZstdDecompressor().stream_reader(frame).read(most + 1)
    except zstandard.ZstdError as exc:
        raise CorruptFileError(f"RAWC section cannot be decompressed: {exc}") from exc
    if len(raw) > most:
        raise CorruptFileError("RAWC frame inflates to more than its channels need")
    out = np.empty((n_channels, n))
    pos = 0
    for row in range(n_channels):
        mode = raw[pos] if pos < len(raw) else -1
        if mode not in _WIDTH:
            raise CorruptFileError(f"RAWC frame is damaged (channel mode {mode})")
        pos += 1
        if mode:
            if pos + _GRID.size > len(raw):
                raise CorruptFileError("RAWC frame is truncated")
            order, origin, step = _GRID.unpack_from(raw, pos)
            pos += _GRID.size
            if order > MAX_ORDER:
                raise CorruptFileError(f"RAWC frame is damaged (prediction order {order})")
        size = n * _WIDTH[mode]
        if pos + size > len(raw):
            raise CorruptFileError("RAWC frame is truncated")
        values = np.frombuffer(raw, dtype=_DTYPE[mode], count=n, offset=pos)
        pos += size
        if mode == 0:
            out[row] = values
        else:
            k = values.astype(np.int64)
            for _ in range(order):
                k = np.cumsum(k)
            out[row] = origin + k * step
    if pos != len(raw):
        raise CorruptFileError("RAWC frame holds bytes beyond its channels")
    return out


def decode_legacy(payload: bytes, n_channels: int, spans: list[tuple[int, int]]):
    """Versions 1-2: one zstd stream of float64 blocks [n_channels, b - a] per span; yields blocks."""
    raw = inflate(payload, n_channels * sum(b - a for a, b in spans) * 8, "RAWC")
    pos = 0
    for a, b in spans:
        size = n_channels * (b - a) * 8
        yield np.frombuffer(raw, dtype="<f8", count=n_channels * (b - a), offset=pos).reshape(
            n_channels, b - a
        )
        pos += size
