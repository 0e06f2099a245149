"""The side streams of a file (the ``SIDE`` section's arrays, ``docs/FORMAT.md``), each writer
beside its reader: chunk scales and the baseline's knots, the exactly stored samples (outliers),
the NaN runs. The chunks' mains pair in :mod:`eegcodec.mains` (``to_arrays`` / ``from_arrays``).

Writers take what the streams collected and return ``{name: int64 or float64 array}`` for
:func:`~eegcodec.format.container.pack_arrays`; readers take the unpacked arrays and the header,
range-check everything and raise :class:`~eegcodec.errors.CorruptFileError` with one line.
Rows follow ``header.coded`` (the coded channels, in order)."""

from __future__ import annotations

import numpy as np

from ..adapt import LOG2_RESOLUTION, Baseline, scale_from_code
from ..errors import CorruptFileError
from .exact import find_grid
from .header import Header
from .header_checks import CORRECTION_MAX_RANK, CORRECTION_TAPS

#: decoded coded-channel samples and side-data voltages beyond this are refused (volts)
MAX_VOLTS = 1e3
MIN_VOLTS = 1e-30


# -- chunk scales and the baseline ---------------------------------------------------------


def scales_to_arrays(baseline: Baseline, scale_codes: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The baseline (:meth:`~eegcodec.adapt.Baseline.to_arrays`: step codes [C], common knot
    deltas [K], knot deltas [C, K]) and ``chunk_scale_log2`` int64 [chunks, C]: the chunks' scale
    codes (each int64 [C], ``LOG2_RESOLUTION`` steps per octave), first differences along chunks."""
    scales = np.stack(scale_codes) if scale_codes else np.zeros((0, 0), np.int64)
    return {**baseline.to_arrays(), "chunk_scale_log2": np.diff(scales, axis=0, prepend=0)}


def scales_from_arrays(side: dict[str, np.ndarray], header: Header) -> tuple[Baseline, np.ndarray]:
    """(baseline, chunk scales float64 [chunks, coded] in volts) from the side arrays, range-checked."""
    spacing = header.baseline_spacing
    if header.version == 1:  # float32 steps and scales, plain knot deltas
        steps, scales = side["baseline_step"].astype(np.float64), side["chunk_scales"].astype(np.float64)
        knots = _checked_cumsum(side["baseline_knot_deltas"], "baseline knots")
    else:
        steps = _checked_code(side["baseline_step_log2"], "baseline step")
        scales = scale_from_code(
            _checked_cumsum(side["chunk_scale_log2"], "chunk scales", axis=0, limit=LOG2_RESOLUTION * 64)
        )
        knots = _checked_cumsum(
            side["baseline_knot_deltas"] + side["baseline_common_delta"][None, :], "baseline knots"
        )
        steps = scale_from_code(steps)
    for what, v in (("baseline steps", steps), ("chunk scales", scales)):
        if v.size and not (np.isfinite(v).all() and (v > MIN_VOLTS).all() and (v < MAX_VOLTS).all()):
            raise CorruptFileError(f"side data holds {what} outside {MIN_VOLTS:g}..{MAX_VOLTS:g} V")
    baseline = Baseline(knots, steps, spacing)
    if knots.size and not (np.abs(baseline._knots) < MAX_VOLTS).all():
        raise CorruptFileError(f"side data holds a baseline beyond {MAX_VOLTS:g} V")
    return baseline, scales


def _checked_code(codes: np.ndarray, what: str) -> np.ndarray:
    if codes.size and np.abs(codes).max() > LOG2_RESOLUTION * 64:
        raise CorruptFileError(f"side data holds a {what} code out of range")
    return codes


def _checked_cumsum(deltas: np.ndarray, what: str, axis: int = 1, limit: int = 2**40) -> np.ndarray:
    """Cumulative sum of int64 deltas that cannot overflow (each |delta| <= 2**40, result <= limit)."""
    if deltas.size and np.abs(deltas).max() > 2**40:
        raise CorruptFileError(f"side data holds {what} out of range")
    out = np.cumsum(deltas, axis=axis)
    if out.size and np.abs(out).max() > limit:
        raise CorruptFileError(f"side data holds {what} out of range")
    return out


# -- exactly stored samples ------------------------------------------------------------------


def outliers_to_arrays(
    rows: np.ndarray, idx: np.ndarray, values: np.ndarray, n_rows: int
) -> dict[str, np.ndarray]:
    """The exactly stored samples (coded row, sample index, volts float64) as side arrays
    (version 5), sorted by (row, index): per row their count, the gaps between their indices
    (runs of consecutive samples cost nearly nothing), and their values as integer levels on the
    row's grid (``origin + level * step``, :func:`~eegcodec.format.exact.find_grid`; step 0: no
    grid, the level holds the float32 value's bits), first differences along each row."""
    order = np.lexsort((idx, rows))
    rows, idx, values = rows[order], idx[order], values[order]
    grid = np.zeros((n_rows, 2))
    levels = np.zeros(rows.size, np.int64)
    for r in np.unique(rows):
        at = rows == r
        found = find_grid(values[at])
        if found is None:
            levels[at] = values[at].astype(np.float32).view(np.int32)
        else:
            grid[r], levels[at] = found[:2], found[2]
    first = np.r_[True, rows[1:] != rows[:-1]] if rows.size else np.zeros(0, bool)
    return {
        "outlier_count": np.bincount(rows, minlength=n_rows).astype(np.int64),
        "outlier_index_gap": np.where(first, idx, np.diff(idx, prepend=0) - 1),
        "outlier_level_delta": np.where(first, levels, np.diff(levels, prepend=0)),
        "outlier_grid": grid,
    }


def outliers_from_arrays(side: dict[str, np.ndarray], h: Header) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly stored samples (coded row, sample index, volts), range-checked: version 5 on as
    :func:`outliers_to_arrays` writes them; versions 2-4 as channel, index deltas and float32 values."""
    n, c = h.recording.n_samples, len(h.coded)
    if h.version >= 5:
        rows, idx, values = _outliers_v5(side, c)
    else:
        rows = side["outlier_channel"]
        idx = _checked_cumsum(
            side["outlier_index_delta"], "exactly stored sample indices", axis=0, limit=2**62
        )
        values = side["outlier_value"].astype(np.float64)
    if rows.size and (rows.min() < 0 or rows.max() >= c or idx.min() < 0 or idx.max() >= n):
        raise CorruptFileError("side data places an exactly stored sample outside the recording")
    if not (np.isfinite(values).all() and (np.abs(values) <= MAX_VOLTS).all()):
        raise CorruptFileError("side data holds an exactly stored sample that is not a finite voltage")
    return rows, idx, values


def _outliers_v5(side: dict[str, np.ndarray], c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Version 5: per-row counts, index gaps and level deltas, and each row's grid (see
    :func:`outliers_to_arrays`) -> (rows, indices, volts)."""
    counts, gaps, deltas = side["outlier_count"], side["outlier_index_gap"], side["outlier_level_delta"]
    grid = side["outlier_grid"]
    if counts.min(initial=0) < 0 or counts.sum() != gaps.size or gaps.min(initial=0) < 0:
        raise CorruptFileError("side data holds exactly stored samples that do not add up")
    if not np.isfinite(grid).all() or grid[:, 1].min(initial=0) < 0:
        raise CorruptFileError("side data holds an exactly stored samples' grid that is not finite")
    rows = np.repeat(np.arange(c), counts)
    starts = np.cumsum(counts) - counts  # each row's first entry holds its absolute index and level
    first = np.zeros(rows.size, bool)
    first[starts[counts > 0]] = True
    idx = _row_cumsum(np.where(first, gaps, gaps + 1), first, "exactly stored sample indices")
    levels = _row_cumsum(deltas, first, "exactly stored sample levels")
    origin, step = grid[rows, 0], grid[rows, 1]
    no_grid = step == 0
    if np.abs(levels[no_grid]).max(initial=0) >= 2**31:
        raise CorruptFileError("side data holds an exactly stored sample level out of range")
    as_float = levels.astype(np.int32).view(np.float32).astype(np.float64)  # rows without a grid
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.where(no_grid, as_float, origin + levels * step)
    return rows, idx, values


def _row_cumsum(deltas: np.ndarray, first: np.ndarray, what: str) -> np.ndarray:
    """Cumulative sums of int64 ``deltas`` restarting where ``first`` is set, checked against overflow."""
    if deltas.size and np.abs(deltas).max() > 2**40:
        raise CorruptFileError(f"side data holds {what} out of range")
    total = np.cumsum(deltas)
    restart = np.maximum.accumulate(np.where(first, np.arange(deltas.size), 0)) if deltas.size else deltas
    return total - (total[restart] - deltas[restart])


# -- NaN runs --------------------------------------------------------------------------------


def nan_runs_to_arrays(runs: np.ndarray) -> dict[str, np.ndarray]:
    """``nan_runs`` int64 [R, 3]: (coded row, first sample, length) of each run of NaN samples."""
    return {"nan_runs": np.asarray(runs).astype(np.int64)}


def nan_runs_from_arrays(side: dict[str, np.ndarray], h: Header) -> np.ndarray:
    """The NaN runs int64 [R, 3] (coded row, start, length), each inside the recording; none
    (shape [0, 3]) in a file without coded channels."""
    if not h.coded:
        return np.zeros((0, 3), np.int64)
    runs, c, n = side["nan_runs"], len(h.coded), h.recording.n_samples
    if runs.size and (
        runs[:, 0].min() < 0
        or runs[:, 0].max() >= c
        or runs[:, 1].min() < 0
        or runs[:, 2].min() < 1
        or (runs[:, 1] + runs[:, 2]).max() > n
    ):
        raise CorruptFileError("side data places a NaN run outside the recording")
    return runs


# -- decoder correction (version 7) ----------------------------------------------------------

#: taps of the decoder correction: lags -CORRECTION_RADIUS..CORRECTION_RADIUS
CORRECTION_RADIUS = CORRECTION_TAPS // 2
#: its per-row scale exponents (power of two) lie in this range; its codes within +-127 (int8)
CORRECTION_LOG2_RANGE = (-30, 0)
#: the writer's codes lie within +-CORRECTION_WRITTEN_CODE: 6 bits a tap. On EEGBCI S002R03 with
#: ``mc-small`` at depth 2, +-127 removed 7.8 % of the error energy for 494 bytes of side data,
#: +-31 7.6 % for 370 bytes, +-15 7.3 % for 308 bytes
CORRECTION_WRITTEN_CODE = 31
#: the spatial mix's power-of-two steps lie in this range (version 8)
CORRECTION_MIX_LOG2_RANGE = (-40, 10)


def correction_to_arrays(deviation: np.ndarray) -> dict[str, np.ndarray]:
    """The decoder correction (version 7, optional): float64 [C, 2 * CORRECTION_RADIUS + 1], each
    row's taps minus the unit impulse, as ``correction_taps`` int64 [C, taps] (codes in
    -CORRECTION_WRITTEN_CODE..CORRECTION_WRITTEN_CODE; a reader takes -127..127) and
    ``correction_scale_log2`` int64 [C] (each row's power-of-two step, the smallest that holds
    its largest deviation); :func:`correction_from_arrays` rebuilds the taps."""
    top, most = np.abs(deviation).max(axis=1), CORRECTION_WRITTEN_CODE
    lo, hi = CORRECTION_LOG2_RANGE
    exps = np.clip(np.ceil(np.log2(np.where(top > 0, top, 1.0) / most)), lo, hi).astype(np.int64)
    exps = np.where(top > 0, exps, lo)
    codes = np.clip(np.rint(np.ldexp(deviation, -exps[:, None])), -most, most).astype(np.int64)
    return {"correction_taps": codes, "correction_scale_log2": exps}


def correction_from_arrays(side: dict[str, np.ndarray]) -> np.ndarray | None:
    """The decoder correction's taps float64 [C, taps], range-checked: the unit impulse plus
    ``correction_taps * 2 ** correction_scale_log2`` (per row; exact in float64); None when the
    file has none."""
    if "correction_taps" not in side:
        return None
    codes, exps = side["correction_taps"], side["correction_scale_log2"]
    lo, hi = CORRECTION_LOG2_RANGE
    if codes.size and np.abs(codes).max() > 127 or exps.size and (exps.min() < lo or exps.max() > hi):
        raise CorruptFileError("side data holds a decoder correction out of range")
    return _correction_taps(codes, exps)


def _correction_taps(codes: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """float64 [C, taps]: the unit impulse plus ``codes [C, taps] * 2 ** exps[C]`` (exact in float64)."""
    taps = np.ldexp(codes.astype(np.float64), exps.astype(np.int64)[:, None])
    taps[:, CORRECTION_RADIUS] += 1.0
    return taps


# -- the decoder correction's spatial mix (version 8) ----------------------------------------


def mix_to_arrays(into: np.ndarray, out: np.ndarray) -> dict[str, np.ndarray]:
    """The correction's spatial mix (version 8, optional): float64 ``into`` [S, C] and ``out``
    [S, C] (component ``s`` adds ``out[s, c] * sum_j into[s, j] * y_j`` to row ``c``; S at most
    :data:`CORRECTION_MAX_RANK`) as ``correction_mix_in`` and ``correction_mix_out`` int64 [S, C]
    (codes in -CORRECTION_WRITTEN_CODE..CORRECTION_WRITTEN_CODE; a reader takes -127..127) and
    ``correction_mix_log2`` int64 [S, 2] (each component's power-of-two steps, in then out, the
    smallest that hold its largest value); :func:`mix_from_arrays` rebuilds them."""
    codes, exps = [], []
    for part in (into, out):
        top, most = np.abs(part).max(axis=1), CORRECTION_WRITTEN_CODE
        lo, hi = CORRECTION_MIX_LOG2_RANGE
        e = np.clip(np.ceil(np.log2(np.where(top > 0, top, 1.0) / most)), lo, hi).astype(np.int64)
        e = np.where(top > 0, e, lo)
        codes.append(np.clip(np.rint(np.ldexp(part, -e[:, None])), -most, most).astype(np.int64))
        exps.append(e)
    return {
        "correction_mix_in": codes[0],
        "correction_mix_out": codes[1],
        "correction_mix_log2": np.stack(exps, axis=1),
    }


def mix_from_arrays(side: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The correction's spatial mix (``into``, ``out``) float64 [S, C] each, range-checked:
    ``codes * 2 ** exponent`` per component (exact in float64); None when the file has none."""
    if "correction_mix_in" not in side:
        return None
    into, out, exps = side["correction_mix_in"], side["correction_mix_out"], side["correction_mix_log2"]
    lo, hi = CORRECTION_MIX_LOG2_RANGE
    if (
        into.shape[0] > CORRECTION_MAX_RANK
        or into.size
        and max(np.abs(into).max(), np.abs(out).max()) > 127
        or exps.size
        and (exps.min() < lo or exps.max() > hi)
    ):
        raise CorruptFileError("side data holds a decoder correction mix out of range")
    return (
        np.ldexp(into.astype(np.float64), exps[:, :1].astype(np.int64)),
        np.ldexp(out.astype(np.float64), exps[:, 1:].astype(np.int64)),
    )
