"""The public API: load a codec, compress, decompress, describe (files or objects)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import mne

from .container import Archive
from .errors import EegcodecError
from .io import atomic_write_bytes, edf_ranges, output_format, read_raw, write_raw
from .pipeline import DecodedRaw, Progress, compress_raw, decompress_archive
from .reader import describe, often_exact_channels, read_archive
from .tokens import Tokens, detokenize, tokenize

if TYPE_CHECKING:
    from .codecs.base import Codec


def load_codec(name_or_path: str | os.PathLike = "default", device: str = "cpu") -> Codec:
    """Load a codec by name or path (:func:`eegcodec.models.load_codec`; imports torch)."""
    from .models import load_codec as load

    return load(name_or_path, device=device)


PathLike = str | os.PathLike


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
    prd: float | None = None,
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
    the EEG-type channels within that bound; neither needs a model. ``prd`` (percent) codes the
    EEG-type channels with the multichannel transform coder so that each chunk's median channel
    PRD is at most ``prd``; it needs a model only with ``n_codebooks`` (tokens under the layer).
    """
    if output is not None and Path(output).exists() and not overwrite:
        raise EegcodecError(f"output exists: {output} (overwrite=True; --force on the command line)")
    source = None
    if not isinstance(raw, mne.io.BaseRaw):
        path = Path(raw)
        raw = read_raw(path)
        ranges = edf_ranges(path, raw) if lossless else None  # only a lossless decode writes them back
        source = {"name": path.name, "bytes": path.stat().st_size, **({"edf": ranges} if ranges else {})}
    elif ch_types:
        raw = raw.copy()
    raw = set_types(raw, ch_types)
    if lossless or max_error is not None or (prd is not None and n_codebooks is None):
        codec = None
    elif isinstance(codec, (str, os.PathLike)):
        codec = load_codec(codec)
    data = compress_raw(
        raw,
        codec,
        n_codebooks=n_codebooks,
        lossless=lossless,
        max_error=max_error,
        prd=prd,
        anonymize=anonymize,
        progress=progress,
        source=source,
    )
    if output is not None:
        atomic_write_bytes(output, data)
    return data


def codec_for(archive: Archive, codec: Codec | str | None = None) -> Codec | None:
    """The codec that decodes ``archive``: ``codec`` if given, else the model its header names
    (None for a file that holds no model tokens: lossless, max-error and most PRD files)."""
    if not archive.header.has_tokens:
        return None
    if codec is not None and not isinstance(codec, (str, os.PathLike)):
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
    codec = codec_for(archive, codec)
    if output is None:
        return decompress_archive(archive, codec, progress=progress)
    return write_decoded(archive, codec, output, overwrite, progress)


def write_decoded(
    archive: Archive,
    codec: Codec | None,
    output: str | Path,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> mne.io.BaseRaw:
    """Decode ``archive`` into ``output`` (atomically) and return the recording. FIF outputs of
    lossy files are decoded chunk by chunk as MNE writes them (:class:`DecodedRaw`: memory flat
    in length); the other writers take the whole array, and lossless files keep the in-memory
    path that is checked bit for bit (EDF/BDF outputs get the source's channel ranges back, FIF
    outputs float64 samples)."""
    lossless = archive.header.mode == "lossless"
    if output_format(Path(output)) == "fif" and not lossless:
        raw = DecodedRaw(archive, codec, progress)
    else:
        raw = decompress_archive(archive, codec, progress=progress)
    ranges = (archive.header.source or {}).get("edf") if lossless else None
    write_raw(raw, output, overwrite=overwrite, edf_ranges=ranges, exact=lossless)
    return raw


__all__ = [
    "Tokens",
    "compress",
    "decompress",
    "describe",
    "detokenize",
    "load_codec",
    "often_exact_channels",
    "read_archive",
    "tokenize",
]
