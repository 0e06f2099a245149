"""The public API: load a codec, compress, decompress (files or objects)."""

from __future__ import annotations

import os
from pathlib import Path

import mne

from .codecs.base import Codec
from .container import Archive
from .errors import EegcodecError
from .io import atomic_write_bytes, read_raw, write_raw
from .models import load_codec
from .pipeline import Progress, compress_raw, decompress_archive

PathLike = str | os.PathLike


def compress(
    raw: mne.io.BaseRaw | PathLike,
    output: PathLike | None = None,
    codec: Codec | str = "default",
    n_codebooks: int | None = None,
    anonymize: bool = False,
    progress: Progress | None = None,
) -> bytes:
    """Compress a recording (an MNE raw or a file path) with ``codec``.

    Returns the ``.eegc`` bytes; also writes them atomically to ``output`` if given.
    """
    source = None
    if not isinstance(raw, mne.io.BaseRaw):
        path = Path(raw)
        raw = read_raw(path)
        source = {"name": path.name, "bytes": path.stat().st_size}
    if not isinstance(codec, Codec):
        codec = load_codec(codec)
    data = compress_raw(raw, codec, n_codebooks=n_codebooks, anonymize=anonymize, progress=progress, source=source)
    if output is not None:
        atomic_write_bytes(output, data)
    return data


def read_archive(source: bytes | PathLike) -> Archive:
    """Parse ``.eegc`` bytes or a file (verifying magic, version and CRCs)."""
    if isinstance(source, (bytes, bytearray)):
        return Archive.from_bytes(bytes(source))
    path = Path(source)
    if not path.is_file():
        raise EegcodecError(f"input file not found: {path}")
    return Archive.from_bytes(path.read_bytes(), source=str(path))


def decompress(
    source: bytes | PathLike,
    output: PathLike | None = None,
    codec: Codec | str | None = None,
    progress: Progress | None = None,
) -> mne.io.RawArray:
    """Rebuild a recording from ``.eegc`` bytes or a file.

    ``codec`` defaults to the model named in the file; a different model is
    refused (:class:`~eegcodec.errors.ModelMismatchError`). If ``output`` is given
    (``.edf``, ``.bdf``, ``.fif``, ``.vhdr``, ``.set``) the recording is also written there.
    """
    archive = read_archive(source)
    if codec is None:
        name = archive.header.get("model", {}).get("name", "default")
        try:
            codec = load_codec(name)
        except EegcodecError as exc:
            raise EegcodecError(f"the file was made with model {name!r}, which cannot be loaded by name ({exc}); pass --model PATH") from exc
    elif not isinstance(codec, Codec):
        codec = load_codec(codec)
    raw = decompress_archive(archive, codec, progress=progress)
    if output is not None:
        write_raw(raw, output)
    return raw


__all__ = ["compress", "decompress", "load_codec", "read_archive"]
