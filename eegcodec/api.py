"""The public API: load a codec, compress, decompress, describe (files or objects)."""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np

from .codecs.base import Codec
from .container import Archive, unpack_arrays
from .errors import EegcodecError
from .io import atomic_write_bytes, output_format, read_raw, write_raw
from .models import load_codec
from .pipeline import Progress, check_archive, compress_raw, decompress_archive

PathLike = str | os.PathLike

#: a coded channel with more than this fraction of its samples stored exactly is reported
OFTEN_EXACT = 0.05


def set_types(raw: mne.io.BaseRaw, ch_types: dict[str, str] | None) -> mne.io.BaseRaw:
    """``raw`` with the channel types ``{name: type}`` changed (e.g. ``{"ECG ECG": "ecg"}``);
    an unknown channel or type is an :class:`EegcodecError` naming what exists."""
    if not ch_types:
        return raw
    missing = [name for name in ch_types if name not in raw.ch_names]
    if missing:
        raise EegcodecError(
            f"ch_types names channels the recording does not have: {missing}; it has {raw.ch_names[:8]}..."
        )
    try:
        raw.set_channel_types(dict(ch_types), on_unit_change="ignore", verbose="error")
    except (ValueError, KeyError) as exc:
        raise EegcodecError(f"cannot set channel types {ch_types}: {str(exc).splitlines()[0]}") from exc
    return raw


def compress(
    raw: mne.io.BaseRaw | PathLike,
    output: PathLike | None = None,
    codec: Codec | str = "default",
    *,
    n_codebooks: int | None = None,
    lossless: bool = False,
    max_error: float | None = None,
    anonymize: bool = False,
    ch_types: dict[str, str] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> bytes:
    """Compress a recording (an MNE raw or a file path) with ``codec``.

    Returns the ``.eegc`` bytes; also writes them atomically to ``output`` if given (an
    existing ``output`` is an error unless ``overwrite``). ``ch_types`` retypes channels
    first: a channel typed ``ecg``, ``emg``, ``misc`` (anything but EEG-like) is stored exactly.
    ``lossless`` stores every channel exactly and ``max_error`` (volts) keeps every sample of
    the EEG-type channels within that bound; neither needs a model.
    """
    if output is not None and Path(output).exists() and not overwrite:
        raise EegcodecError(f"output exists: {output} (overwrite=True; --force on the command line)")
    source = None
    if not isinstance(raw, mne.io.BaseRaw):
        path = Path(raw)
        raw = read_raw(path)
        source = {"name": path.name, "bytes": path.stat().st_size}
    elif ch_types:
        raw = raw.copy()
    raw = set_types(raw, ch_types)
    if lossless or max_error is not None:
        codec = None
    elif not isinstance(codec, Codec):
        codec = load_codec(codec)
    data = compress_raw(
        raw,
        codec,
        n_codebooks=n_codebooks,
        lossless=lossless,
        max_error=max_error,
        anonymize=anonymize,
        progress=progress,
        source=source,
    )
    if output is not None:
        atomic_write_bytes(output, data)
    return data


def read_archive(source: bytes | PathLike) -> Archive:
    """Parse and validate ``.eegc`` bytes or a file (magic, version, CRCs, digests, header)."""
    if isinstance(source, (bytes, bytearray)):
        return Archive.from_bytes(bytes(source))
    path = Path(source)
    if not path.is_file():
        raise EegcodecError(f"input file not found: {path}")
    return Archive.from_bytes(path.read_bytes(), source=str(path))


def codec_for(archive: Archive, codec: Codec | str | None = None) -> Codec | None:
    """The codec that decodes ``archive``: ``codec`` if given, else the model its header names
    (None for a file that holds no model tokens: lossless and max-error files)."""
    if not archive.header.coded:
        return None
    if isinstance(codec, Codec):
        return codec
    if codec is not None:
        return load_codec(codec)
    name = archive.header.model.name
    try:
        return load_codec(name)
    except EegcodecError as exc:
        raise EegcodecError(
            f"the file was made with model {name!r}, which cannot be loaded by name ({exc}); "
            "give its weights file as codec (--model PATH)"
        ) from exc


def decompress(
    source: bytes | PathLike,
    output: PathLike | None = None,
    codec: Codec | str | None = None,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> mne.io.RawArray:
    """Rebuild a recording from ``.eegc`` bytes or a file.

    ``codec`` defaults to the model named in the file; a different model is
    refused (:class:`~eegcodec.errors.ModelMismatchError`). If ``output`` is given
    (``.edf``, ``.bdf``, ``.fif``, ``.vhdr``, ``.set``) the recording is also written there;
    its extension is checked, and an existing ``output`` refused unless ``overwrite``,
    before anything is decoded.
    """
    if output is not None:
        output_format(Path(output))
        if Path(output).exists() and not overwrite:
            raise EegcodecError(f"output exists: {output} (overwrite=True; --force on the command line)")
    archive = read_archive(source)
    raw = decompress_archive(archive, codec_for(archive, codec), progress=progress)
    if output is not None:
        write_raw(raw, output, overwrite=overwrite)
    return raw


def often_exact_channels(archive: Archive) -> dict[str, float]:
    """Coded channels whose samples were stored exactly more than ``OFTEN_EXACT`` of the
    time -> that fraction. The model does not follow such a channel (often a non-EEG
    signal typed EEG in the file, e.g. ECG), and each such sample costs 32 bits."""
    h = archive.header
    if not h.coded:
        return {}
    n = h.recording.n_samples
    counts = np.bincount(unpack_arrays(archive.side, h.side)["outlier_channel"], minlength=len(h.coded))
    return {
        h.recording.ch_names[h.coded[i]]: round(float(c) / n, 4)
        for i, c in enumerate(counts[: len(h.coded)])
        if c > OFTEN_EXACT * n
    }


def describe(path: PathLike) -> dict:
    """Summary of a validated ``.eegc`` file: recording, model, sizes, bits per sample.
    Everything that needs no model is checked first (:func:`~eegcodec.pipeline.check_archive`)."""
    path = Path(path)
    arc = read_archive(path)
    check_archive(arc)
    h = arc.header
    rec = h.recording
    n = rec.n_samples
    if h.coded:  # tokens: codes and side data over the coded channels
        bps = 8 * (arc.section_sizes["CODE"] + arc.section_sizes["SIDE"]) / (len(h.coded) * n)
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
        "guarantee": _guarantee(h),
        "model": h.model.name if h.model else None,
        "weights_sha256": h.model.weights_sha256 if h.model else None,
        "codebooks": h.codebooks,
        "bits_per_sample": round(bps, 4),
        "cr16": round(16 / bps, 2) if bps else None,
        "file_bits_per_sample": round(8 * total / max(1, len(rec.ch_names) * n), 4),
        "source": h.source,
        "compression_ratio_vs_source": round(h.source["bytes"] / total, 2) if h.source else None,
        "often_exact_channels": often_exact_channels(arc),
    }


def _guarantee(h) -> str:
    """What a file promises about its samples, in words."""
    if h.mode == "lossless":
        return "every sample exact (on the file's own integer grid; float data bit for bit)"
    if h.mode == "max_error":
        return (
            f"every sample of the EEG-type channels within {h.max_error * 1e6:g} uV; the other channels exact"
        )
    sigma = h.adapter.outlier_sigma
    return f"{h.codebooks} of the model's codebooks; samples it misses by more than {sigma:g} scales exact"


__all__ = ["compress", "decompress", "describe", "load_codec", "read_archive"]
