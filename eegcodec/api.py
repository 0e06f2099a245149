"""The public API: load a codec, compress, decompress, describe (files or objects)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import mne

from . import io, modes
from .edf import edf_ranges
from .errors import EegcodecError, OutputExistsError
from .format.container import Archive
from .format.exact import RESERVE
from .format.header_checks import BOUND_ROUNDING
from .io import atomic_write_bytes, output_format, write_raw
from .pipeline import Progress, compress_raw, decoded_chunks, decompress_archive
from .rawview import DecodedRaw
from .reader import describe, often_exact_channels, read_archive
from .survey import CODED_TYPES
from .tokens import Tokens, detokenize, tokenize

if TYPE_CHECKING:
    from .backends.base import Codec


def load_codec(name_or_path: str | os.PathLike = "default", device: str = "cpu") -> Codec:
    """Load a codec by name or path (:func:`eegcodec.backends.registry.load_codec`; imports torch)."""
    from .backends.registry import load_codec as load

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
    mode: modes.Mode | None = None,
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
    ``mode`` (:mod:`eegcodec.modes`) may be given instead of those options.
    """
    options = dict(n_codebooks=n_codebooks, lossless=lossless, max_error=max_error, prd=prd)
    if mode is not None and any(v is not None and v is not False for v in options.values()):
        raise EegcodecError("give the mode or its options (n_codebooks, lossless, max_error, prd), not both")
    mode = mode or modes.from_options(**options)  # checked before anything is read
    if output is not None and Path(output).exists() and not overwrite:
        raise OutputExistsError(output)
    source = None
    if not isinstance(raw, mne.io.BaseRaw):
        path = Path(raw)
        raw = io.read_raw(path)
        # lossless and max-error decodes lie on the source's digital grid: EDF/BDF outputs get them back
        ranges = edf_ranges(path, raw) if mode.source_grid else None
        source = {"name": path.name, "bytes": path.stat().st_size, **({"edf": ranges} if ranges else {})}
    elif ch_types:
        raw = raw.copy()
    raw = set_types(raw, ch_types)
    if not mode.needs_model():
        codec = None
    elif isinstance(codec, (str, os.PathLike)):
        codec = load_codec(codec)
    data = compress_raw(raw, codec, mode=mode, anonymize=anonymize, progress=progress, source=source)
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
            raise OutputExistsError(output)
    archive = read_archive(source)
    codec = codec_for(archive, codec)
    if output is None:
        return decompress_archive(archive, codec, progress=progress)
    return write_decoded(archive, codec, output, overwrite, progress)


def output_slack(archive: Archive, raw: mne.io.BaseRaw) -> dict[str, float]:
    """``{channel: volts}``: how far a max-error file's bounded (EEG-type) channels may move in an
    output format's rounding and stay within ``fidelity.max_error_volts`` of the original: what the
    largest error measured while compressing leaves of the bound (version 8), the share the coder
    kept in reserve (version 7, :data:`~eegcodec.format.exact.RESERVE`), none before (files coded
    to the whole bound: their outputs must hold their samples exactly); plus float64 rounding of
    the bound (:data:`~eegcodec.format.header_checks.BOUND_ROUNDING`)."""
    h = archive.header
    if h.largest_error is not None:
        reserve = max(h.max_error - h.largest_error, 0.0)
    else:
        reserve = h.max_error * RESERVE if h.version >= 7 else 0.0
    reserve += h.max_error * BOUND_ROUNDING
    types = raw.get_channel_types()
    return {n: reserve for n, t in zip(raw.ch_names, types) if t in CODED_TYPES}


def verify(
    source: bytes | PathLike, codec: Codec | str | None = None, progress: Progress | None = None
) -> int:
    """Decode an ``.eegc`` file completely and check it, keeping nothing (``eegcodec verify``, like
    ``flac -t``): one chunk in memory at a time. Returns the samples decoded per channel; a damaged
    file raises :class:`~eegcodec.errors.CorruptFileError`."""
    archive = read_archive(source)
    done = 0
    for _, block in decoded_chunks(archive, codec_for(archive, codec), progress=progress):
        done += block.shape[1]
    return done


def read_raw(source: bytes | PathLike, codec: Codec | str | None = None) -> mne.io.BaseRaw:
    """An ``.eegc`` recording as an :class:`mne.io.BaseRaw` that decodes only what is read.

    ``raw.get_data(start=..., stop=..., picks=...)``, ``raw.crop(...).load_data()``, ``raw.plot()``
    and ``mne.Epochs`` decode the chunks (30 s by default) that the samples asked for lie in, with
    the values :func:`decompress` gives. All channels of a chunk are decoded together (the
    exact coder predicts channels from each other; DAC-MC's tokens stand for all channels).
    ``codec`` defaults to the model named in the file (token files; none is loaded otherwise).
    A file of format version 8 on is opened in place: its header, side data and measurement info
    are read at once, each chunk's frames when its samples are (seeking by the header's frame
    index, each checked against its digest: a damaged frame raises
    :class:`~eegcodec.errors.CorruptFileError` when read). Older files are read into memory whole.
    The decoded recording is never held whole."""
    archive = read_archive(source, lazy=True)
    return DecodedRaw(archive, codec_for(archive, codec))


def write_decoded(
    archive: Archive,
    codec: Codec | None,
    output: str | Path,
    overwrite: bool = False,
    progress: Progress | None = None,
    tmin: float | None = None,
    tmax: float | None = None,
    picks: list[str] | None = None,
) -> mne.io.BaseRaw:
    """Decode ``archive`` into ``output`` (atomically) and return the recording; ``tmin``/``tmax``
    (seconds from the start, ``tmax`` excluded) and ``picks`` (channel names) write only that
    window, decoding only the chunks it spans (:class:`DecodedRaw`). FIF outputs of
    lossy files are decoded chunk by chunk as MNE writes them (:class:`DecodedRaw`: memory flat
    in length); the other writers take the whole array, and lossless files keep the in-memory
    path (EDF/BDF outputs get the source's channel ranges back, FIF
    outputs float64 samples). Max-error files keep their bound in the written file: FIF holds
    float64, and the other formats may move a bounded channel by no more than the reserve the
    coder kept (:func:`output_slack`), checked on the written file."""
    mode = modes.get(archive.header.mode)
    ranges = (archive.header.source or {}).get("edf") if mode.source_grid else None
    if tmin is not None or tmax is not None or picks:
        raw, ranges = _window(DecodedRaw(archive, codec), tmin, tmax, picks, ranges)
    elif output_format(Path(output)) == "fif" and not mode.exact:
        raw = DecodedRaw(archive, codec, progress)
    else:
        raw = decompress_archive(archive, codec, progress=progress)
    slack = output_slack(archive, raw) if archive.header.max_error is not None else None
    write_raw(raw, output, overwrite=overwrite, edf_ranges=ranges, exact=mode.source_grid, slack=slack)
    return raw


def _window(raw: DecodedRaw, tmin, tmax, picks, ranges: dict | None) -> tuple[mne.io.BaseRaw, dict | None]:
    """``raw`` cropped to ``[tmin, tmax)`` seconds and ``picks``, loaded (only those chunks are
    decoded), with the EDF ranges of the channels kept; a window or channel the recording does not
    have is an :class:`EegcodecError`."""
    missing = [name for name in picks or [] if name not in raw.ch_names]
    if missing:
        raise EegcodecError(
            f"no channel named {', '.join(map(repr, missing))} (channels: {', '.join(raw.ch_names)})"
        )
    end = raw.times[-1] + 1 / raw.info["sfreq"]
    start, stop = tmin or 0.0, end if tmax is None else tmax
    if not 0 <= start < stop <= end + 1e-9:
        raise EegcodecError(f"tmin={tmin}, tmax={tmax}: the window must lie within 0-{end:g} s, tmin < tmax")
    raw.crop(start, None if stop >= end else stop, include_tmax=False)
    keep = [raw.ch_names.index(n) for n in picks] if picks else list(range(len(raw.ch_names)))
    raw.pick(keep).load_data()
    return raw, {k: [v[i] for i in keep] for k, v in ranges.items()} if ranges else None


__all__ = [
    "Tokens",
    "compress",
    "decompress",
    "describe",
    "detokenize",
    "load_codec",
    "often_exact_channels",
    "read_archive",
    "read_raw",
    "tokenize",
]
