"""Read an ``.eegc`` file back without a model: validated sections, side data, measurement
info (stage 5 backwards, before the codec). ``info`` and ``verify`` run everything here before
they show or decode anything; nothing here imports torch, so ``eegcodec info`` starts fast."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np

from . import modes
from .adapt import Baseline
from .errors import CorruptFileError, EegcodecError
from .format.container import Archive, unpack_arrays
from .format.filearchive import open_archive
from .format.header import Header
from .format.meta import info_from_fif
from .format.side import (
    correction_from_arrays,
    mix_from_arrays,
    nan_runs_from_arrays,
    outliers_from_arrays,
    scales_from_arrays,
)
from .mains import FREQ_UNIT, MainsFit
from .mains import from_arrays as mains_from_arrays

PathLike = str | os.PathLike
#: a coded channel with more than this fraction of its samples stored exactly is reported
OFTEN_EXACT = 0.05

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
    mains : each chunk's mains (version 6), or None (no chunk has any);
    correction : float64 [coded, 7] taps of the decoder correction (version 7), or None;
    mix : its spatial mix (version 8, :func:`~eegcodec.format.side.mix_from_arrays`): float64
    (into [S, coded], out [S, coded]), or None.
    """

    baseline: Baseline | None
    scales: np.ndarray | None
    outliers: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    nan_runs: np.ndarray
    info: mne.Info
    mains: list[MainsFit] | None = None
    correction: np.ndarray | None = None
    mix: tuple[np.ndarray, np.ndarray] | None = None


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
    baseline, scales = scales_from_arrays(side, h) if h.has_tokens else (None, None)
    outliers = outliers_from_arrays(side, h) if h.has_tokens else None
    nan_runs = nan_runs_from_arrays(side, h)
    info = info_from_fif(archive.info_fif, h.info_bytes)
    if info["ch_names"] != h.recording.ch_names:
        raise CorruptFileError("INFO section and header disagree on the channels")
    mains = None
    if h.version >= 6 and h.coded and "mains_freq" in side:  # version 7: a file may have none
        try:
            mains = mains_from_arrays(side)
        except ValueError as exc:
            raise CorruptFileError(f"side data is damaged ({exc})") from None
    correction = correction_from_arrays(side) if h.has_tokens else None
    mix = mix_from_arrays(side) if h.has_tokens else None
    return SideData(baseline, scales, outliers, nan_runs, info, mains, correction, mix)


def read_archive(source: bytes | PathLike, lazy: bool = False) -> Archive:
    """Parse and validate ``.eegc`` bytes or a file (magic, version, CRCs, digests, header).
    ``lazy``: a version-8 file's per-chunk frames stay in the file, each read and checked against
    its digest when decoded (:func:`~eegcodec.format.filearchive.open_archive`); else everything
    is read and checked now."""
    if isinstance(source, (bytes, bytearray)):
        return Archive.from_bytes(bytes(source))
    path = Path(source)
    if not path.is_file():
        raise EegcodecError(f"input file not found: {path}")
    if lazy:
        return open_archive(path)
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
        rows = outliers_from_arrays(unpack_arrays(archive.side, h.side, h.version), h)[0]
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
        "decoder_correction": side.correction is not None,
        "decoder_correction_mix": 0 if side.mix is None else len(side.mix[0]),
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
