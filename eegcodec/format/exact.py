"""Channels stored exactly (``RAWC``, format version 3): each on its own sample grid,
coded together by :mod:`eegcodec.format.adaptive` (files written by eegcodec 0.7:
:mod:`eegcodec.format.cascade`; before: :mod:`eegcodec.format.lossless`).

EDF, BDF and most amplifiers store integers times a per-channel resolution; MNE hands
us those as float64 volts. Storing float64 costs about 30 bits per sample after zstd;
finding the grid (an origin and a step such that every sample is ``origin + k * step``
for an integer ``k``) and coding the integers ``k`` of all channels together (each
predicted from its past and from the channels before it) costs well under FLAC on raw
EEG. ``encode_block(block, max_error)`` also serves the near-lossless mode: per chunk the
smaller of two ways, every sample within the bound either way: a coarser grid (``(2m + 1)``
of a channel's steps, or ``2 * bound`` for data on no grid) coded losslessly, or the closed
loop of :mod:`eegcodec.format.adaptive` on the channel's own grid (residuals quantised to
``2m + 1`` steps).

A chunk's block ``[L, n]`` becomes one frame::

    u32 size | zstd(per channel: u8 mode; mode 0: n float64 samples; modes 1, 3 and 4: origin f64,
                    step f64; mode 2: scale f64, then the n float32 samples as 4 byte planes)
    the rest: a :func:`eegcodec.format.adaptive.encode_ints` frame of the mode-4 channels' integers
    (format version 8; files of version 7: a :func:`eegcodec.format.cascade.encode_ints` frame of
    the mode-3 channels'; before eegcodec 0.7: a :func:`eegcodec.format.lossless.encode_ints` frame
    of the mode-1 channels'; a frame holds one of the three modes)

Modes 1, 3 and 4 are used when ``origin + k * step`` is within ``GRID_TOLERANCE`` steps of every sample
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
from . import adaptive, cascade
from .container import inflate
from .lossless import MAX_SAMPLE, decode_ints

GRID_TOLERANCE = 1e-6
#: samples (at least; or an eighth of the chunk) on which max-error picks the grid or the closed loop
PROBE = 1024
_GRID = struct.Struct("<dd")
_SCALE = struct.Struct("<d")
#: share of a max-error bound the coder leaves unused where the bound spans many grid steps, so that an
#: output format's rounding (EDF's 16 bits over a channel's range, float32 in BrainVision and EEGLAB)
#: fits within the bound; where the bound is only a few steps the whole bound is used (the reserve
#: would cost a whole step) and the file records the largest error it reached instead
RESERVE = 2**-8
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


def _canonical(x: np.ndarray, grid: tuple[float, float, np.ndarray] | None):
    """``grid`` (:func:`find_grid`'s of ``x``) with its origin moved by whole steps to within half
    a step of zero, where every sample stays within :data:`GRID_TOLERANCE` of it and the integers
    within half of :data:`~eegcodec.format.lossless.MAX_SAMPLE`: the same origin then serves every
    chunk and most channels of a file (an EDF's integers times its resolution), which its frames'
    metadata store in a few bytes instead of a number per channel."""
    if grid is None:
        return None
    origin, step, k = grid
    shift = int(np.rint(origin / step))
    if shift == 0 or abs(shift) >= MAX_SAMPLE:
        return grid
    moved = origin - shift * step, step, k + shift
    if (
        np.abs(moved[2]).max() >= MAX_SAMPLE // 2
        or np.max(np.abs(moved[0] + moved[2] * step - x)) > GRID_TOLERANCE * step
    ):
        return grid
    return moved


def whole_steps(bound: float, step: float) -> int:
    """Grid steps a bound allows (``m``: every rebuilt sample within ``m`` steps): the whole bound
    where it spans fewer than ``1 / RESERVE`` steps (a 1-uV bound on a 1-uV grid: one step, to
    float64 rounding of their ratio), else the bound less its :data:`RESERVE`."""
    full = int(np.floor(bound / step * (1 + 1e-9)))
    return full if full * RESERVE < 1 else int(np.floor(bound * (1 - RESERVE) / step))


def _quantised(x: np.ndarray, bound: float, grid) -> tuple[float, float, np.ndarray] | None:
    """``(origin, step, k)`` of ``x`` on a grid that keeps every sample within ``bound``, or
    None (NaN, or more than :data:`~eegcodec.format.lossless.MAX_SAMPLE` levels); ``grid``:
    :func:`find_grid` of ``x``."""
    if grid is not None:
        origin, step, k = grid
        m = whole_steps(bound, step)
        if m >= 1:
            k = np.floor((k + m) / (2 * m + 1)).astype(
                np.int64
            )  # nearest multiple of 2m+1: |error| <= m steps
            origin, step = origin, step * (2 * m + 1)
            grid = (origin, step, k)
    elif bound > 0 and np.isfinite(x).all():
        step = 2 * bound * (1 - RESERVE)
        grid = (0.0, step, np.rint(x / step).astype(np.int64))
    if grid is None or np.abs(grid[2]).max(initial=0) >= MAX_SAMPLE:
        return None
    return grid


def _meta(block: np.ndarray, grids: list) -> list[bytes]:
    """The per-channel metadata of a frame; a channel with a grid is mode 4 (segmented adaptive coder)."""
    meta = []
    for x, grid in zip(block, grids):
        scaled = float32_scaled(x) if grid is None else None
        if scaled is not None:
            meta += [b"\x02", _SCALE.pack(scaled[0]), _planes(scaled[1])]
        elif grid is None:
            meta += [b"\x00", np.ascontiguousarray(x, dtype="<f8").tobytes()]
        else:
            meta += [b"\x04", _GRID.pack(grid[0], grid[1])]
    return meta


def _frame(block: np.ndarray, grids: list, bounds: list[int]) -> tuple[bytes, np.ndarray]:
    """The frame of ``block`` float64 [L, n] with the channels' ``grids`` (None: off any grid) and
    ``bounds`` (grid steps), and the values float64 [L, n] it decodes to (:func:`decode_block`'s
    arithmetic on the integers the coder rebuilds, as its decoder does; off-grid channels come back
    as they are)."""
    zmeta = zstandard.ZstdCompressor(level=10).compress(b"".join(_meta(block, grids)))
    rows = [i for i, g in enumerate(grids) if g is not None]
    values, body = np.array(block, dtype=np.float64), b""
    if rows:
        body, ints = adaptive.encode_ints(
            np.stack([grids[i][2] for i in rows]), np.array([bounds[i] for i in rows])
        )
        for i, k in zip(rows, ints):
            values[i] = grids[i][0] + k * grids[i][1]
    return struct.pack("<I", len(zmeta)) + zmeta + body, values


def _closed_loop(bounds: np.ndarray, fine: list, coarse: list) -> tuple[list, list[int]] | None:
    """(grids, bounds in steps) for the closed loop: each bounded channel on its own fine grid
    (``fine``, :func:`find_grid`'s) with the whole steps its bound allows, a channel without one on
    its coarse grid (``coarse``, :func:`_quantised`'s); None when no channel gains from it."""
    grids, steps = [], []
    for bound, grid, fallback in zip(bounds, fine, coarse):
        m = whole_steps(bound, grid[1]) if grid is not None and bound > 0 else 0
        if grid is None or np.abs(grid[2]).max(initial=0) >= MAX_SAMPLE:
            grid, m = fallback, 0
        grids.append(grid)
        steps.append(m)
    return (grids, steps) if any(steps) else None


def encode_block(block: np.ndarray, max_error: np.ndarray | None = None) -> bytes:
    """:func:`encode_block_values`'s frame alone."""
    return encode_block_values(block, max_error)[0]


def encode_block_values(block: np.ndarray, max_error: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """Exactly stored channels of one chunk, float64 [L, n] -> (one frame, the values float64 [L, n]
    it decodes to: what :func:`decode_block` gives back, rebuilt as it does). ``max_error`` [L]
    (volts, 0: exact) lets a channel come back within that bound instead: a coarser grid coded
    losslessly or the closed loop on the channel's own grid (:mod:`eegcodec.format.adaptive`), whichever
    codes the chunk's first eighth (at least :data:`PROBE` samples) smaller."""
    block = np.asarray(block, dtype=np.float64)
    bounds = np.zeros(len(block)) if max_error is None else np.asarray(max_error, dtype=np.float64)
    fine = [_canonical(x, find_grid(x)) for x in block]
    grids = [_quantised(x, float(bound), grid) for x, bound, grid in zip(block, bounds, fine)]
    loop = _closed_loop(bounds, fine, grids) if np.any(bounds > 0) else None
    if loop is None:
        return _frame(block, grids, [0] * len(grids))
    probe = min(block.shape[1], max(PROBE, block.shape[1] // 8))  # the chunk's start decides the way
    if len(_frame(block[:, :probe], *_head(loop[0], probe), loop[1])[0]) < len(
        _frame(block[:, :probe], *_head(grids, probe), [0] * len(grids))[0]
    ):
        return _frame(block, *loop)
    return _frame(block, grids, [0] * len(grids))


def _head(grids: list, n: int) -> tuple[list]:
    """The grids with their integers cut to the first ``n`` samples."""
    return ([None if g is None else (g[0], g[1], g[2][:n]) for g in grids],)


def decode_block(
    frame: bytes, n_channels: int, n: int, start: int = 0, stop: int | None = None, version: int = 8
) -> np.ndarray:
    """Inverse of :func:`encode_block`: float64 [n_channels, stop - start], the block's samples
    ``start`` to ``stop`` (default: all ``n``); a mode-4 frame decodes only the segments that cover
    them, older modes decode all and slice. ``version``: the file's format version (mode 4 needs 8
    or later). The metadata may inflate to at most what ``n_channels`` float64 rows need; anything
    else is a :class:`CorruptFileError`."""
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ValueError(f"sample window [{start}, {stop}) is outside the block's {n} samples")
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
    out = np.empty((n_channels, stop - start))
    grids, pos = [], 0
    known = (0, 1, 2, 3, 4) if version >= 8 else (0, 1, 2, 3)
    for row in range(n_channels):
        mode = raw[pos] if pos < len(raw) else -1
        size_row = {0: 8 * n, 1: _GRID.size, 2: _SCALE.size + 4 * n, 3: _GRID.size, 4: _GRID.size}.get(
            mode, 0
        )
        if mode not in known or pos + 1 + size_row > len(raw):
            raise CorruptFileError(f"RAWC frame is damaged (channel mode {mode})")
        if mode == 0:
            out[row] = np.frombuffer(raw, dtype="<f8", count=n, offset=pos + 1)[start:stop]
        elif mode == 2:
            (scale,) = _SCALE.unpack_from(raw, pos + 1)
            first = pos + 1 + _SCALE.size
            out[row] = _from_planes(raw[first : first + 4 * n], n)[start:stop].astype(np.float64) * scale
        else:
            grids.append((row, mode, *_GRID.unpack_from(raw, pos + 1)))
        pos += 1 + size_row
    if pos != len(raw):
        raise CorruptFileError("RAWC frame holds bytes beyond its channels")
    if grids:
        modes = {g[1] for g in grids}
        if len(modes) > 1:
            raise CorruptFileError(f"RAWC frame is damaged (channel modes {sorted(modes)} together)")
        body = frame[4 + size :]
        if modes == {4}:
            k = adaptive.decode_ints(body, len(grids), n, start, stop)
        else:
            k = (cascade.decode_ints if modes == {3} else decode_ints)(body, len(grids), n)[:, start:stop]
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
