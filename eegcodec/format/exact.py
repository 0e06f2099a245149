"""Channels stored exactly (``RAWC``, format version 3): each on its own sample grid,
coded together by :mod:`eegcodec.format.cascade` (files written before eegcodec 0.7:
:mod:`eegcodec.format.lossless`).

EDF, BDF and most amplifiers store integers times a per-channel resolution; MNE hands
us those as float64 volts. Storing float64 costs about 30 bits per sample after zstd;
finding the grid (an origin and a step such that every sample is ``origin + k * step``
for an integer ``k``) and coding the integers ``k`` of all channels together (each
predicted from its past and from the channels before it) costs well under FLAC on raw
EEG. ``encode_block(block, max_error)`` also serves the near-lossless mode: per chunk the
smaller of two ways, every sample within the bound either way: a coarser grid (``(2m + 1)``
of a channel's steps, or ``2 * bound`` for data on no grid) coded losslessly, or the closed
loop of :mod:`eegcodec.format.cascade` on the channel's own grid (residuals quantised to
``2m + 1`` steps).

A chunk's block ``[L, n]`` becomes one frame::

    u32 size | zstd(per channel: u8 mode; mode 0: n float64 samples; modes 1 and 3: origin f64,
                    step f64; mode 2: scale f64, then the n float32 samples as 4 byte planes)
    the rest: a :func:`eegcodec.format.cascade.encode_ints` frame of the mode-3 channels' integers
    (frames written before eegcodec 0.7: a :func:`eegcodec.format.lossless.encode_ints` frame of the
    mode-1 channels'; a frame holds one of the two modes)

Modes 1 and 3 are used when ``origin + k * step`` is within ``GRID_TOLERANCE`` steps of every sample
(a millionth of the file's resolution: written back to EDF/BDF they give the same
integers). Values off any grid keep their bits: mode 2 when they are float32 samples times a
unit (``float64(float32) * scale``, as MNE reads EEGLAB and other float32 files; byte planes
let zstd find the shared exponents), mode 0 (float64) otherwise.
"""

from __future__ import annotations

import struct

import numpy as np
import zstandard

from ..errors import CorruptFileError
from . import cascade
from .container import inflate
from .lossless import MAX_SAMPLE, decode_ints

GRID_TOLERANCE = 1e-6
#: samples (at least; or an eighth of the chunk) on which max-error picks the grid or the closed loop
PROBE = 1024
_GRID = struct.Struct("<dd")
_SCALE = struct.Struct("<d")
#: units a float32 source may have been scaled by when read (volts per unit)
FLOAT32_SCALES = (1e-6, 1e-3, 1.0, 1e-9)


def float32_scaled(x: np.ndarray) -> tuple[float, np.ndarray] | None:
    """``(scale, float32 samples)`` with ``float64(samples) * scale`` equal to ``x`` bit for bit, or None."""
    for scale in FLOAT32_SCALES:
        with np.errstate(over="ignore", invalid="ignore"):
            f32 = (x / scale).astype(np.float32)
            back = f32.astype(np.float64) * scale
        if np.array_equal(back.view(np.int64), x.view(np.int64)):
            return scale, f32
    return None


def _planes(f32: np.ndarray) -> bytes:
    return np.ascontiguousarray(f32.astype("<f4").view(np.uint8).reshape(-1, 4).T).tobytes()


def _from_planes(data: bytes, n: int) -> np.ndarray:
    return np.frombuffer(data, np.uint8).reshape(4, n).T.copy().view("<f4").ravel()


def find_grid(x: np.ndarray) -> tuple[float, float, np.ndarray] | None:
    """``(origin, step, k)`` with ``x ~= origin + k * step`` (int64 ``k``), or None.

    The step is the whole range over its number of steps (the smallest difference between two
    levels, blurred by rounding, only counts them), else that smallest difference itself.

    x : float64 [n] samples (any unit)."""
    if not np.isfinite(x).all():
        return None
    levels = np.unique(x)
    origin = float(levels[0])
    if levels.size == 1:
        return origin, 1.0, np.zeros(x.size, np.int64)
    step = float(np.min(np.diff(levels)))
    span = float(levels[-1]) - origin
    if step <= 0 or not np.isfinite(step) or span / step >= 2**31:
        return None
    # the span over its whole number of steps: the smallest gap alone is off by its rounding, which
    # adds up over tens of thousands of levels (a 16-bit channel's full range, decimal text exports)
    for s in (span / round(span / step), step):
        k = np.rint((x - origin) / s)
        if np.max(np.abs(origin + k * s - x)) <= GRID_TOLERANCE * s:
            return origin, float(s), k.astype(np.int64)
    return None


def _quantised(x: np.ndarray, bound: float) -> tuple[float, float, np.ndarray] | None:
    """``(origin, step, k)`` of ``x`` on a grid that keeps every sample within ``bound``, or
    None (NaN, or more than :data:`~eegcodec.format.lossless.MAX_SAMPLE` levels)."""
    grid = find_grid(x)
    if grid is not None:
        origin, step, k = grid
        m = int(np.floor(bound / step * (1 - 1e-5)))  # whole steps the bound allows
        if m >= 1:
            k = np.floor((k + m) / (2 * m + 1)).astype(
                np.int64
            )  # nearest multiple of 2m+1: |error| <= m steps
            origin, step = origin, step * (2 * m + 1)
            grid = (origin, step, k)
    elif bound > 0 and np.isfinite(x).all():
        step = 2 * bound * (1 - 1e-6)
        grid = (0.0, step, np.rint(x / step).astype(np.int64))
    if grid is None or np.abs(grid[2]).max(initial=0) >= MAX_SAMPLE:
        return None
    return grid


def _meta(block: np.ndarray, grids: list) -> list[bytes]:
    """The per-channel metadata of a frame; a channel with a grid is mode 3 (adaptive coder)."""
    meta = []
    for x, grid in zip(block, grids):
        scaled = float32_scaled(x) if grid is None else None
        if scaled is not None:
            meta += [b"\x02", _SCALE.pack(scaled[0]), _planes(scaled[1])]
        elif grid is None:
            meta += [b"\x00", np.ascontiguousarray(x, dtype="<f8").tobytes()]
        else:
            meta += [b"\x03", _GRID.pack(grid[0], grid[1])]
    return meta


def _frame(block: np.ndarray, grids: list, bounds: list[int]) -> bytes:
    zmeta = zstandard.ZstdCompressor(level=10).compress(b"".join(_meta(block, grids)))
    rows = [(g[2], m) for g, m in zip(grids, bounds) if g is not None]
    body = (
        cascade.encode_ints(np.stack([k for k, _ in rows]), np.array([m for _, m in rows]))[0]
        if rows
        else b""
    )
    return struct.pack("<I", len(zmeta)) + zmeta + body


def _closed_loop(block: np.ndarray, bounds: np.ndarray) -> tuple[list, list[int]] | None:
    """(grids, bounds in steps) for the closed loop: each bounded channel on its own fine grid with
    the whole steps its bound allows; None when no channel gains from it."""
    grids, steps = [], []
    for x, bound in zip(block, bounds):
        grid = find_grid(x)
        m = int(np.floor(bound / grid[1] * (1 - 1e-5))) if grid is not None and bound > 0 else 0
        if grid is None or np.abs(grid[2]).max(initial=0) >= MAX_SAMPLE:
            grid, m = _quantised(x, float(bound)), 0
        grids.append(grid)
        steps.append(m)
    return (grids, steps) if any(steps) else None


def encode_block(block: np.ndarray, max_error: np.ndarray | None = None) -> bytes:
    """Exactly stored channels of one chunk, float64 [L, n] -> one frame. ``max_error`` [L]
    (volts, 0: exact) lets a channel come back within that bound instead: a coarser grid coded
    losslessly or the closed loop on the channel's own grid (:mod:`eegcodec.format.cascade`), whichever
    codes the chunk's first eighth (at least :data:`PROBE` samples) smaller."""
    block = np.asarray(block, dtype=np.float64)
    bounds = np.zeros(len(block)) if max_error is None else np.asarray(max_error, dtype=np.float64)
    grids = [_quantised(x, float(bound)) for x, bound in zip(block, bounds)]
    loop = _closed_loop(block, bounds) if np.any(bounds > 0) else None
    if loop is None:
        return _frame(block, grids, [0] * len(grids))
    probe = min(block.shape[1], max(PROBE, block.shape[1] // 8))  # the chunk's start decides the way
    if len(_frame(block[:, :probe], *_head(loop[0], probe), loop[1])) < len(
        _frame(block[:, :probe], *_head(grids, probe), [0] * len(grids))
    ):
        return _frame(block, *loop)
    return _frame(block, grids, [0] * len(grids))


def _head(grids: list, n: int) -> tuple[list]:
    """The grids with their integers cut to the first ``n`` samples."""
    return ([None if g is None else (g[0], g[1], g[2][:n]) for g in grids],)


def decode_block(
    frame: bytes, n_channels: int, n: int, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Inverse of :func:`encode_block`: float64 [n_channels, stop - start], samples ``start`` to
    ``stop`` (default ``n``) of the chunk's ``n``. The channel modes here decode the whole chunk
    and return the window (a mode whose frames decode a window alone decodes only that). The
    metadata may inflate to at most what ``n_channels`` float64 rows need; anything else is a
    :class:`CorruptFileError`."""
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ValueError(f"window {start}:{stop} is not within the chunk's {n} samples")
    out = _decode_all(frame, n_channels, n)
    return out if (start, stop) == (0, n) else out[:, start:stop].copy()


def _decode_all(frame: bytes, n_channels: int, n: int) -> np.ndarray:
    """:func:`decode_block` of the whole chunk: float64 [n_channels, n]."""
    if len(frame) < 4:
        raise CorruptFileError("RAWC frame is truncated")
    (size,) = struct.unpack_from("<I", frame, 0)
    most = n_channels * (1 + 8 * n + _GRID.size)
    try:
        raw = zstandard.ZstdDecompressor().stream_reader(frame[4 : 4 + size]).read(most + 1)
    except zstandard.ZstdError as exc:
        raise CorruptFileError(f"RAWC section cannot be decompressed: {exc}") from exc
    if len(raw) > most:
        raise CorruptFileError("RAWC frame inflates to more than its channels need")
    out = np.empty((n_channels, n))
    grids, pos = [], 0
    for row in range(n_channels):
        mode = raw[pos] if pos < len(raw) else -1
        size_row = {0: 8 * n, 1: _GRID.size, 2: _SCALE.size + 4 * n, 3: _GRID.size}.get(mode, 0)
        if mode not in (0, 1, 2, 3) or pos + 1 + size_row > len(raw):
            raise CorruptFileError(f"RAWC frame is damaged (channel mode {mode})")
        if mode == 0:
            out[row] = np.frombuffer(raw, dtype="<f8", count=n, offset=pos + 1)
        elif mode == 2:
            (scale,) = _SCALE.unpack_from(raw, pos + 1)
            start = pos + 1 + _SCALE.size
            out[row] = _from_planes(raw[start : start + 4 * n], n).astype(np.float64) * scale
        else:
            grids.append((row, mode, *_GRID.unpack_from(raw, pos + 1)))
        pos += 1 + size_row
    if pos != len(raw):
        raise CorruptFileError("RAWC frame holds bytes beyond its channels")
    if grids:
        modes = {g[1] for g in grids}
        if len(modes) > 1:
            raise CorruptFileError("RAWC frame is damaged (channel modes 1 and 3 together)")
        decode = cascade.decode_ints if modes == {3} else decode_ints
        k = decode(frame[4 + size :], len(grids), n)
        for (row, _, origin, step), ints in zip(grids, k):
            out[row] = origin + ints * step
    elif len(frame) != 4 + size:
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
