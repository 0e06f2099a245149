"""Compress an ``mne.io.Raw`` to ``.eegc`` bytes and back: the data path end to end.

read (:mod:`eegcodec.io`) -> survey (:mod:`eegcodec.survey`) -> adapt
(:mod:`eegcodec.adapt`) -> tokenize (:mod:`eegcodec.backends`) -> pack
(:mod:`eegcodec.format.container`), and the same stages backwards. This module only
wires them together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import mne
import numpy as np
from threadpoolctl import ThreadpoolController

from . import modes
from .adapt import AdapterConfig, ChunkLayout, OverlapAdd
from .chunks import ChunkCoder, CodedStream, ExactStream, ResidualStream, exact_span
from .errors import CorruptFileError, EegcodecError, ModelMismatchError
from .format import streamcoders
from .format.container import FRAME_INDEX, VERSION, Archive, frame_digest, pack_arrays
from .format.exact import decode_block, decode_legacy
from .format.header import Header
from .format.meta import annotations_from_json, annotations_to_json, info_to_fif
from .format.side import MAX_VOLTS, nan_runs_to_arrays
from .format.transform import TransformDecoder
from .montage import Montage
from .reader import check_archive

if TYPE_CHECKING:  # torch: only files with tokens need a codec
    from .backends.base import Codec
    from .modes import Mode

Progress = Callable[[int, int], None]


def blas_pin(pin: bool, controller: ThreadpoolController | None = None) -> AbstractContextManager:
    """A context in which numpy's BLAS (every BLAS library loaded) runs on one thread where ``pin``
    (a mode's :attr:`~eegcodec.modes.base.Mode.blas_one_thread`: the model-free modes); a no-op
    otherwise (the network's threads are the codec's).

    Their BLAS calls (the lossless predictor's least squares, the transform coder's KLT) are
    small, and OpenBLAS's threads spent their time waiting for each other: beside one other
    busy core ``--lossless`` on 61 s of 64 channels took twice as long, on a loaded machine
    6 to 16 times as long, as on one thread. The files and the decoded samples are the same
    on one thread as on two. ``controller``: a ``threadpoolctl.ThreadpoolController`` to
    reuse (finding the libraries takes a millisecond or two, limiting through it microseconds).
    """
    if not pin:
        return nullcontext()
    return (controller or ThreadpoolController()).limit(limits=1, user_api="blas")


# ---------------------------------------------------------------------------
# compress
# ---------------------------------------------------------------------------


def compress_raw(
    raw: mne.io.BaseRaw,
    codec: Codec | None,
    *,
    mode: Mode | None = None,
    anonymize: bool = False,
    adapter: AdapterConfig | None = None,
    progress: Progress | None = None,
    source: dict | None = None,
    **options,
) -> bytes:
    """Compress a recording to ``.eegc`` bytes.

    Parameters
    ----------
    raw : any MNE raw (preloaded or not; samples are read chunk by chunk). Volts.
    codec : the model, from :func:`eegcodec.load_codec` (unused, may be None, where the mode
        holds no tokens).
    mode : the fidelity (:mod:`eegcodec.modes`); default: the one ``options`` choose
        (:func:`eegcodec.modes.from_options`: ``n_codebooks``, ``lossless``, ``max_error`` in
        volts, ``prd`` in percent), token files when none.
    anonymize : drop subject identity and measurement date (``mne.io.Raw.anonymize``).
    adapter : override the model's adapter settings (must match its training to be useful); files
        without tokens: the chunking (default: the mode's, :meth:`~eegcodec.modes.base.Mode.default_adapter`).
    progress : called as ``progress(samples_done, n_samples)``.
    source : optional ``{"name", "bytes"}`` of the input file, kept in the header.
    """
    if mode is None:
        mode = modes.from_options(**options)
    elif any(v is not None and v is not False for v in options.values()):
        raise EegcodecError(f"give the mode or its options ({', '.join(options)}), not both")
    k = mode.depth(codec)
    cfg = adapter or (
        codec.info.adapter if k else mode.default_adapter(float(raw.info["sfreq"]), raw.n_times)
    )
    if raw.n_times < 2:
        raise EegcodecError("recording has fewer than 2 samples; nothing to compress")
    if anonymize:
        raw = raw.copy().anonymize(verbose="error")
        source = {**source, "name": None} if source else source  # file names often carry subject identity
    fields = dict(anonymize=anonymize, source=source)
    with blas_pin(mode.blas_one_thread):
        data = _compress(raw, codec, mode, k, cfg, progress, fields)
        other = mode.alternative()  # e.g. a --prd file's layer alone: tokens must earn their place
        if other is not None:
            data = min(data, _compress(raw, None, other, 0, AdapterConfig(), None, fields), key=len)
    return data


def _compress(
    raw: mne.io.BaseRaw,
    codec: Codec | None,
    mode: Mode,
    k: int,
    cfg: AdapterConfig,
    progress: Progress | None,
    fields: dict,
) -> bytes:
    """One pass over the samples with the streams ``mode`` needs; ``fields`` go to the header."""
    survey = mode.survey(raw, cfg)
    layout = ChunkLayout.for_recording(raw.n_times, float(raw.info["sfreq"]), cfg)
    coded, residual, exact = mode.streams(raw, survey, codec, cfg, k, layout)
    streams = [s for s in (exact, residual or coded) if s is not None]  # the layer drives the tokens
    for start, stop in layout.chunks():  # the one pass over the samples
        for stream in streams:
            stream.push(start, stop)
        if progress:
            progress(stop, raw.n_times)
    if coded is not None and coded.with_correction:
        coded.finish()
    parts = (raw, survey, codec, cfg, k, layout, coded, residual, exact, mode, fields, {})
    if coded is None or not coded.options:
        return _file_bytes(*parts)
    return coded.choose_correction(lambda: _file_bytes(*parts))


def _file_bytes(raw, survey, codec, cfg, k, layout, coded, residual, exact, mode, fields, cache) -> bytes:
    """The file from the filled streams (``cache``: the ``CODE`` section, kept between calls)."""
    if coded is not None:
        side = coded.to_arrays()
    elif survey.plan.coded:  # a prd file without tokens
        side = {**nan_runs_to_arrays(survey.nan_runs), **residual.mains_arrays()}
    else:
        side = {}
    annotations = annotations_to_json(raw.annotations)
    header = Header.for_recording(
        raw, survey, codec, cfg, k, layout, coded, annotations=annotations, **fields, **mode.header_fields()
    )
    # every new file is VERSION (9): the frame index, RAWC channel mode 4, the measured largest error
    header.version = VERSION
    if exact.max_error is not None:
        header.largest_error = exact.largest_error
    if mode.name == "tokens" and coded is not None and coded.picks:
        header.measured_prd = coded.meter.summary([raw.ch_names[i] for i in coded.picks])
    return _archive(header, side, coded, residual, exact, raw.info, codec, cache).to_bytes()


def _archive(
    header: Header,
    side: dict[str, np.ndarray],
    coded: CodedStream | None,
    residual: ResidualStream | None,
    exact: ExactStream,
    info: mne.Info,
    codec: Codec | None,
    cache: dict | None = None,
) -> Archive:
    """The file's sections from the filled streams; the header learns their sizes. ``cache``: the
    ``CODE`` section and its coder, computed once for several headers of the same codes."""
    side_payload, header.side = pack_arrays(side, header.version)
    info_fif, info_bytes = info_to_fif(info)
    header.exact_frames, header.info_bytes = [len(f) for f in exact.frames], len(info_bytes)
    resd = residual.frames if residual and header.coded else []
    header.residual_frames = [len(f) for f in resd]
    code_frames = _code_section(header, coded, codec, {} if cache is None else cache)
    header.code_frames = [len(f) for f in code_frames]
    header.frame_digests = {
        tag: [frame_digest(f) for f in frames]
        for tag, frames in (("CODE", code_frames), ("RAWC", exact.frames), ("RESD", resd))
    }
    return Archive(
        header=header,
        codes=b"".join(code_frames),
        side=side_payload,
        raw_channels=exact.payload(),
        residual=residual.payload() if residual else b"",
        info_fif=info_fif,
    )


def _code_section(header: Header, coded: CodedStream | None, codec: Codec | None, cache: dict) -> list[bytes]:
    """The ``CODE`` section's frames, one per chunk (each chunk's codes coded alone: the prior looks at
    codes of the same frame only, so the bits are the same as one stream's, but for a few bytes a
    frame), under the model's prior when it has one and that is smaller than packing; the header
    learns the coder. ``cache``: the frames and coder, computed once for several headers."""
    if not header.has_tokens:
        return []
    if "codes" not in cache:
        all_codes = coded.all_codes()  # [rows, codebooks, frames]
        bounds = np.cumsum([0, *coded.frames])
        chunks = [all_codes[:, :, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        packer = streamcoders.make("packed", codec.info.bits_per_code)
        frames, coder, sha = [packer.encode(c) for c in chunks], "packed", None
        if codec.prior is not None:
            prior = streamcoders.make("prior", prior=codec.prior)
            entropy_coded = [prior.encode(c) for c in chunks]
            if sum(map(len, entropy_coded)) < sum(map(len, frames)):
                frames, coder, sha = entropy_coded, "prior", codec.prior.sha256()
        cache["codes"] = (frames, coder, sha)
    frames, header.code_coder, header.prior_sha256 = cache["codes"]
    return frames


# ---------------------------------------------------------------------------
# decompress
# ---------------------------------------------------------------------------


def check_model(header: Header, codec: Codec, source: str = "file") -> None:
    """Raise :class:`ModelMismatchError` unless ``codec`` is the model that made the file
    and can decode what the header says (depth, codebook size, hop)."""
    want = header.model
    if not header.has_tokens:
        return  # nothing for a model to decode
    if codec is None:
        raise ModelMismatchError(f"{source} holds model tokens; give the model that made it ({want.name!r})")
    if want.weights_sha256 != codec.info.weights_sha256:
        raise ModelMismatchError(
            f"{source} was compressed with model {want.name!r} (weights sha256 {want.weights_sha256[:12]}), "
            f"but model {codec.info.name!r} (sha256 {codec.info.weights_sha256[:12]}) was given; "
            f"give the original model (codec, --model)"
        )
    if header.code_coder == "prior" and codec.prior_for(header.prior_sha256) is None:
        have = codec.prior.sha256() if codec.prior is not None else None
        which = "lacks" if have is None else f"does not have (its prior: {have[:12]})"
        raise ModelMismatchError(
            f"{source}'s codes were entropy-coded with a prior (sha256 {header.prior_sha256[:12]}) that "
            f"model {codec.info.name!r} {which}; put the model's NAME.prior.npz (or the earlier "
            f"NAME.prior.{header.prior_sha256[:12]}.npz) beside its weights"
        )
    c = codec.info
    if (
        header.codebooks > c.n_codebooks
        or want.hop_length != c.hop_length
        or want.codebook_size != c.codebook_size
        or want.bits_per_code != c.bits_per_code
        or (header.coded and header.code_rows != codec.code_rows(len(header.coded)))
    ):
        raise CorruptFileError(
            f"{source}: its header does not fit model {c.name!r} (depth, hop, codebook size or code rows)"
        )


def decompress_archive(
    archive: Archive, codec: Codec | None, progress: Progress | None = None
) -> mne.io.RawArray:
    """Rebuild the recording from a parsed :class:`Archive` in memory: float64 volts, info and
    annotations restored (:class:`eegcodec.rawview.DecodedRaw` decodes as it is read instead)."""
    side = check_archive(archive)
    rec = archive.header.recording
    data = np.empty((len(rec.ch_names), rec.n_samples))
    for start, block in decoded_chunks(archive, codec, side, progress):
        data[:, start : start + block.shape[1]] = block
    return with_annotations(
        mne.io.RawArray(data, side.info, first_samp=rec.first_samp, verbose="error"), archive
    )


def with_annotations(raw: mne.io.BaseRaw, archive: Archive) -> mne.io.BaseRaw:
    try:
        raw.set_annotations(annotations_from_json(archive.header.annotations))
    except (ValueError, TypeError, OverflowError) as exc:
        raise CorruptFileError(
            f"the header's annotations cannot be restored: {str(exc).splitlines()[0][:200]}"
        ) from None
    return raw


def decoded_chunks(
    archive: Archive,
    codec: Codec | None,
    side=None,
    progress: Progress | None = None,
    first: int = 0,
    fade: bool = True,
    skip: int = 0,
    until: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields (first sample, volts float64 [channels, m]) of each chunk's own span, in order,
    from chunk ``first`` to the end of the recording: the exactly stored channels, the coded ones
    (tokens through the model and/or the transform layer), the exactly stored outliers and the
    NaN runs. A later ``first`` decodes only what its chunks need (the chunk before it for the
    token path's cross-fade, the last frame with a spatial basis for the transform layer), with
    the same values; ``fade`` False leaves out the chunk before (token files): the first chunk's
    first ``layout.overlap`` samples then lack the cross-fade (for a reader that needs none of
    them); ``skip`` samples of chunk ``first`` are left out (its frames of exactly stored channels
    decode from there: :func:`~eegcodec.format.exact.decode_block`'s window); ``until`` (samples
    into chunk ``first``): where a reader's window ends, so a file whose channels are all stored
    exactly yields that chunk in two blocks, up to ``until`` and the rest (decoded only if the
    stream is read on). A damaged file
    raises :class:`CorruptFileError` at the chunk where it shows. Each chunk is decoded under
    :func:`blas_pin` (the caller's own thread settings are back while it holds the chunk)."""
    chunks = _decoded_chunks(archive, codec, side, progress, first, fade, skip, until)
    pin = modes.get(archive.header.mode).blas_one_thread
    controller = ThreadpoolController() if pin else None
    try:
        while True:
            with blas_pin(pin, controller):
                item = next(chunks, None)
            if item is None:
                return
            yield item
    finally:
        with blas_pin(pin, controller):
            chunks.close()


def _decoded_chunks(
    archive: Archive,
    codec: Codec | None,
    side,
    progress: Progress | None,
    first: int,
    fade: bool,
    skip: int,
    until: int | None = None,
):
    """:func:`decoded_chunks` without the thread settings."""
    h = archive.header
    check_model(h, codec)
    side = side if side is not None else check_archive(archive)
    rec, coded, n = h.recording, np.asarray(h.coded, dtype=int), h.recording.n_samples
    pieces = _pieces(h, first, skip, until if not len(coded) else None)
    exact = _exact_chunks(archive, h, pieces) if h.lossless else None
    decoded = _coded_chunks(archive, side, codec, first, fade, skip) if len(coded) else None
    none = (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    rows, idx, values = (np.asarray(v) for v in (side.outliers if side.outliers is not None else none))
    by_index = np.argsort(idx, kind="stable")
    sorted_idx = idx[by_index]
    chunks = h.layout.chunks()
    for i, lo, hi in pieces:
        start, stop = chunks[i]
        a, b = exact_span(h.layout, start, stop)
        a, b, last = a + lo, a + hi, hi == b - a  # the piece, and whether it ends the chunk
        block = np.zeros((len(rec.ch_names), b - a))
        if exact is not None:
            block[h.lossless] = next(exact)
        if decoded is not None:
            block[coded] = next(decoded)
            lo, hi = np.searchsorted(sorted_idx, [a, b])  # outliers: values range-checked by the reader
            pick = by_index[lo:hi]
            block[coded[rows[pick]], idx[pick] - a] = values[pick]
            for row, first, length in side.nan_runs:
                block[coded[row], max(first, a) - a : max(min(first + length, b) - a, 0)] = np.nan
        if progress and last:
            progress(stop, n)
        yield a, block


def _pieces(h: Header, first: int, skip: int, until: int | None) -> list[tuple[int, int, int]]:
    """(chunk, first, end sample within the chunk's own span) of each block
    :func:`decoded_chunks` yields: chunk ``first`` from ``skip`` (cut at ``until`` where that falls
    inside it), then every later chunk whole."""
    pieces, chunks = [], h.layout.chunks()
    for i in range(first, len(chunks)):
        a, b = exact_span(h.layout, *chunks[i])
        lo = skip if i == first else 0
        if i == first and until is not None and lo < until < b - a:
            pieces.append((i, lo, until))
            lo = until
        pieces.append((i, lo, b - a))
    return pieces


def _coded_chunks(
    archive: Archive, side, codec: Codec | None, first: int = 0, fade: bool = True, skip: int = 0
):
    """Yields volts [coded, m] of each chunk's span from chunk ``first`` on (its first ``skip``
    samples left out: the transform layer rebuilds only the DCT blocks from there): tokens through
    the model (if the file has them), plus the transform layer (``prd`` files)."""
    h = archive.header
    tokens = _token_chunks(archive, side, codec, first, fade) if h.has_tokens else None
    layer = _transform_from(archive, first) if h.mode == "prd" else None
    for i, (start, stop) in enumerate(h.layout.chunks()[first:], start=first):
        a, b = exact_span(h.layout, start, stop)
        left_out = skip if i == first else 0
        if tokens is not None:
            emit_start, final = next(tokens)
            if emit_start != a or final.shape[1] != b - a:
                raise CorruptFileError("the file's chunks do not tile the recording")
            final = final[:, left_out:]
        else:
            final = np.zeros((len(h.coded), b - a - left_out))
        if layer is not None:
            final = final + layer.decode(archive.frame(b"RESD", i), len(h.coded), b - a, left_out)
            if tokens is None and side.mains:  # a file without tokens: the layer's mains
                final += side.mains[i].values(h.recording.sfreq, b - a)[:, left_out:]
        if not np.isfinite(final).all() or np.abs(final).max(initial=0) > MAX_VOLTS:
            raise CorruptFileError(
                f"decoded samples are not finite or exceed {MAX_VOLTS:g} V: the file is damaged"
            )
        yield final


def _transform_from(archive: Archive, first: int) -> TransformDecoder:
    """A transform-layer decoder ready for frame ``first``: holding the spatial basis of the last
    frame before it that brings one (found walking back, decoded for that alone)."""
    h, layer = archive.header, TransformDecoder()
    for i in reversed(range(first)):
        frame = archive.frame(b"RESD", i)
        if TransformDecoder.has_basis(frame):
            a, b = exact_span(h.layout, *h.layout.chunks()[i])
            layer.take_basis(frame, len(h.coded), b - a)
            break
    return layer


def archive_codes(archive: Archive, codec: Codec) -> np.ndarray:
    """int64 [code rows, codebooks, frames of all chunks]: a token file's codes, decoded by the
    ``CODE`` coder its header names (under ``codec``'s prior where that is the coder)."""
    chunk = chunk_codes(archive, codec)
    return np.concatenate([chunk(i) for i in range(archive.header.n_chunks)], axis=2)


def chunk_codes(archive: Archive, codec: Codec) -> Callable[[int], np.ndarray]:
    """A function ``i -> int64 [code rows, codebooks, frames of chunk i]``: version 8 decodes chunk
    ``i``'s frame of ``CODE`` alone; earlier files' one stream is decoded once, here."""
    h = archive.header
    prior = codec.prior_for(h.prior_sha256) if h.code_coder == "prior" else None
    coder = streamcoders.make(h.code_coder, h.model.bits_per_code, prior)
    bounds = np.cumsum([0] + h.chunk_frames)
    size = codec.info.codebook_size

    def checked(codes: np.ndarray) -> np.ndarray:
        if codes.max(initial=0) >= size:
            raise CorruptFileError("code values exceed the model's codebook size")
        return codes

    if h.version >= FRAME_INDEX:
        shape = (h.code_rows, h.codebooks)
        return lambda i: checked(coder.decode(archive.frame(b"CODE", i), (*shape, h.chunk_frames[i])))
    codes = checked(coder.decode(archive.codes, (h.code_rows, h.codebooks, int(bounds[-1]))))
    return lambda i: codes[:, :, bounds[i] : bounds[i + 1]]


def _token_chunks(archive: Archive, side, codec: Codec, first: int = 0, fade: bool = True):
    """Yields (first sample, volts [coded, n]) of each chunk's final token reconstruction, from
    chunk ``first`` on (the chunk before it is decoded too, for the cross-fade, unless not ``fade``)."""
    h, rec = archive.header, archive.header.recording
    names = [rec.ch_names[i] for i in h.coded]
    montage = Montage.from_dict(names, h.montage) if h.montage else codec.montage(names)
    codes = chunk_codes(archive, codec)
    coder = ChunkCoder(h.adapter, rec.sfreq, codec.info.hop_length, side.baseline)
    coder.correction = side.correction  # version 7: the decoder correction, or None
    coder.mix = side.mix  # version 8: its spatial mix, or None
    ola = OverlapAdd(h.layout)

    def rebuild(i: int, start: int, stop: int) -> np.ndarray:
        model_out = codec.decode_channels(codes(i), montage) if h.chunk_frames[i] else None
        mains = side.mains[i] if side.mains else None
        return coder.reconstruct(model_out, side.scales[i], start, stop, mains)

    chunks = [(i, start, stop) for i, (start, stop) in enumerate(h.layout.chunks())][max(first - fade, 0) :]
    for (i, start, stop), block in zip(chunks, codec.map_chunks(rebuild, chunks)):
        final = ola.push(start, stop, block)
        if i >= first:
            yield final


def _exact_chunks(archive: Archive, h: Header, pieces: list[tuple[int, int, int]]):
    """Yields the exactly stored channels [lossless, hi - lo] of each piece ``(chunk, lo, hi)``
    (samples ``lo`` to ``hi`` of the chunk's own span, :func:`_pieces`), from ``RAWC`` (each
    chunk's frame decodes alone, a mode-4 frame only the segments a piece needs)."""
    spans = [exact_span(h.layout, start, stop) for start, stop in h.layout.chunks()]
    if h.version < 3:
        blocks, at = decode_legacy(archive.raw_channels, len(h.lossless), spans), -1
        for i, lo, hi in pieces:
            while at < i:
                block, at = next(blocks), at + 1
            yield block[:, lo:hi]
        return
    for i, lo, hi in pieces:
        a, b = spans[i]
        yield decode_block(archive.frame(b"RAWC", i), len(h.lossless), b - a, lo, hi, version=h.version)
