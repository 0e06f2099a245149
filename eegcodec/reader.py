"""Read an ``.eegc`` file back without a model: validated sections, side data, measurement
info (stage 5 backwards, before the codec). ``info`` and ``verify`` run everything here before
they show or decode anything; nothing here imports torch, so ``eegcodec info`` starts fast."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import zstandard

from . import modes
from .adapt import LOG2_RESOLUTION, Baseline, scale_from_code
from .errors import CorruptFileError, EegcodecError
from .format.container import Archive, inflate, unpack_arrays
from .format.header import MAX_INFO_BYTES, Header
from .mains import FREQ_UNIT, MainsFit
from .mains import from_arrays as mains_from_arrays

PathLike = str | os.PathLike
#: a coded channel with more than this fraction of its samples stored exactly is reported
OFTEN_EXACT = 0.05

#: decoded coded-channel samples and side-data voltages beyond this are refused (volts)
MAX_VOLTS = 1e3
MIN_VOLTS = 1e-30
#: the largest recording a file may decode to (float64 bytes): half this machine's memory
MAX_OUTPUT_BYTES = (
    int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2) if hasattr(os, "sysconf") else 2**34
)


def output_bytes(header: Header) -> int:
    """Memory the decoded recording takes (float64 samples)."""
    return len(header.recording.ch_names) * header.recording.n_samples * 8


@dataclass
class SideData:
    """The side data of a file, unpacked and range-checked (rows follow ``header.coded``).

    baseline : the slow baseline; scales : float64 [chunks, coded] chunk scales (volts);
    outliers : (coded row, sample index, volts) of the exactly stored samples;
    nan_runs : int64 [R, 3] (coded row, start, length); info : the recording's ``mne.Info``;
    mains : each chunk's mains (version 6), or None (no chunk has any).
    """

    baseline: Baseline | None
    scales: np.ndarray | None
    outliers: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    nan_runs: np.ndarray
    info: mne.Info
    mains: list[MainsFit] | None = None


def check_archive(archive: Archive) -> SideData:
    """Every check that needs no model: output size, side data, INFO, exactly stored channels'
    frames. What ``info`` and ``verify`` run before they show or decode anything."""
    h = archive.header
    if output_bytes(h) > MAX_OUTPUT_BYTES:
        raise CorruptFileError(
            f"the recording would take {output_bytes(h) / 2**30:.1f} GiB as float64, "
            f"more than this machine's limit of {MAX_OUTPUT_BYTES / 2**30:.1f} GiB"
        )
    side = unpack_arrays(archive.side, h.side, h.version)
    baseline, scales = _read_scales(side, h) if h.has_tokens else (None, None)
    outliers = _read_outliers(side, h) if h.has_tokens else None
    if h.coded:
        _check_nan_runs(side["nan_runs"], len(h.coded), h.recording.n_samples)
    info = _info_from_fif(archive.info_fif, h.info_bytes)
    if info["ch_names"] != h.recording.ch_names:
        raise CorruptFileError("INFO section and header disagree on the channels")
    mains = None
    if h.version >= 6 and h.coded and "mains_freq" in side:  # version 7: a file may have none
        try:
            mains = mains_from_arrays(side)
        except ValueError as exc:
            raise CorruptFileError(f"side data is damaged ({exc})") from None
    return SideData(
        baseline, scales, outliers, side["nan_runs"] if h.coded else np.zeros((0, 3), np.int64), info, mains
    )


def _read_scales(side: dict[str, np.ndarray], header: Header) -> tuple[Baseline, np.ndarray]:
    """(baseline, chunk scales [chunks, coded] in volts) from the side arrays, range-checked."""
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


def _read_outliers(side: dict[str, np.ndarray], h: Header) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly stored samples (coded row, sample index, volts), range-checked."""
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
    :func:`eegcodec.chunks.outlier_arrays`) -> (rows, indices, volts)."""
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


def _check_nan_runs(runs: np.ndarray, c: int, n: int) -> None:
    """NaN runs (coded row, start, length) must lie inside the recording."""
    if runs.size and (
        runs[:, 0].min() < 0
        or runs[:, 0].max() >= c
        or runs[:, 1].min() < 0
        or runs[:, 2].min() < 1
        or (runs[:, 1] + runs[:, 2]).max() > n
    ):
        raise CorruptFileError("side data places a NaN run outside the recording")


def _info_from_fif(payload: bytes, size: int | None) -> mne.Info:
    """The INFO section back to ``mne.Info``; ``size`` is its declared inflated size
    (None in files before version 3: at most :data:`~eegcodec.format.header.MAX_INFO_BYTES`)."""
    if size is None:
        try:
            data = (
                zstandard.ZstdDecompressor()
                .stream_reader(payload, read_across_frames=True)
                .read(MAX_INFO_BYTES + 1)
            )
        except zstandard.ZstdError as exc:
            raise CorruptFileError(f"INFO section cannot be decompressed: {exc}") from exc
        if len(data) > MAX_INFO_BYTES:
            raise CorruptFileError(f"INFO section inflates to more than {MAX_INFO_BYTES:,} bytes")
    else:
        data = inflate(payload, size, "INFO")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meas-info.fif"
        path.write_bytes(data)
        try:
            return mne.io.read_info(path, verbose="error")
        except Exception as exc:
            raise CorruptFileError(f"INFO section is not readable FIF: {type(exc).__name__}") from exc


def annotations_from_json(d: dict) -> mne.Annotations:
    orig = None if d["orig_time"] is None else dt.datetime.fromisoformat(d["orig_time"])
    return mne.Annotations(
        d["onset"], d["duration"], d["description"], orig_time=orig, ch_names=d["ch_names"]
    )


def read_archive(source: bytes | PathLike) -> Archive:
    """Parse and validate ``.eegc`` bytes or a file (magic, version, CRCs, digests, header)."""
    if isinstance(source, (bytes, bytearray)):
        return Archive.from_bytes(bytes(source))
    path = Path(source)
    if not path.is_file():
        raise EegcodecError(f"input file not found: {path}")
    return Archive.from_bytes(path.read_bytes(), source=str(path))


def often_exact_channels(archive: Archive, side: SideData | None = None) -> dict[str, float]:
    """Coded channels whose samples were stored exactly more than ``OFTEN_EXACT`` of the
    time -> that fraction. The model does not follow such a channel (often a non-EEG
    signal typed EEG in the file, e.g. ECG), and each such sample costs side data.
    ``side``: the archive's :func:`check_archive` result, when already at hand."""
    h = archive.header
    if not h.has_tokens:
        return {}
    n = h.recording.n_samples
    if side is None:
        rows = _read_outliers(unpack_arrays(archive.side, h.side, h.version), h)[0]
    else:
        rows = side.outliers[0]
    counts = np.bincount(rows, minlength=len(h.coded))
    return {
        h.recording.ch_names[h.coded[i]]: round(float(c) / n, 4)
        for i, c in enumerate(counts[: len(h.coded)])
        if c > OFTEN_EXACT * n
    }


def describe(path: PathLike) -> dict:
    """Summary of a validated ``.eegc`` file: recording, model, sizes, bits per sample.
    Everything that needs no model is checked first (:func:`check_archive`)."""
    path = Path(path)
    arc = read_archive(path)
    side = check_archive(arc)
    h = arc.header
    rec = h.recording
    n = rec.n_samples
    if h.coded:  # tokens and/or the transform layer, with side data, over the coded channels
        coded_bytes = sum(arc.section_sizes.get(t, 0) for t in ("CODE", "SIDE", "RESD"))
        bps = 8 * coded_bytes / (len(h.coded) * n)
    else:  # lossless, max-error: the exact stream over all channels
        bps = 8 * arc.section_sizes["RAWC"] / (len(rec.ch_names) * n)
    total = path.stat().st_size
    return {
        "file": str(path),
        "format_version": h.version,
        "file_bytes": total,
        "sections": arc.section_sizes,
        "recording": {
            "channels": len(rec.ch_names),
            "coded_channels": len(h.coded),
            "lossless_channels": {rec.ch_names[i]: r for i, r in h.lossless_reasons.items()},
            "sfreq": rec.sfreq,
            "n_samples": n,
            "duration_s": round(n / rec.sfreq, 3),
            "meas_date": rec.meas_date,
            "anonymized": rec.anonymized,
            "annotations": len(h.annotations["onset"]),
        },
        "mode": h.mode,
        "target_prd": h.target_prd,
        "guarantee": _guarantee(h),
        "model": h.model.name if h.model else None,
        "weights_sha256": h.model.weights_sha256 if h.model else None,
        "codebooks": h.codebooks,
        "code_coder": h.code_coder,
        "prior_sha256": h.prior_sha256,
        "bits_per_sample": round(bps, 4),
        "cr16": round(16 / bps, 2) if bps else None,
        "file_bits_per_sample": round(8 * total / max(1, len(rec.ch_names) * n), 4),
        "source": h.source,
        "compression_ratio_vs_source": round(h.source["bytes"] / total, 2) if h.source else None,
        "often_exact_channels": often_exact_channels(arc, side),
        "mains": _mains_summary(side.mains),
        "measured_prd": h.measured_prd,
    }


def _mains_summary(fits: list[MainsFit] | None) -> dict | None:
    """The chunks whose mains was removed and stored apart, and the frequencies found (Hz)."""
    hz = [f.freq_code * FREQ_UNIT for f in fits or () if f.freq_code]
    if not hz:  # none, or a version-6 file whose chunks all say none
        return None
    return {
        "chunks": len(hz),
        "of_chunks": len(fits),
        "min_hz": round(min(hz), 4),
        "max_hz": round(max(hz), 4),
    }


def _guarantee(h) -> str:
    """What a file promises about its samples, in words (its mode's own)."""
    return modes.get(h.mode).guarantee(h)
