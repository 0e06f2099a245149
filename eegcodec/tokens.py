"""A recording as arrays of model tokens, and back.

:func:`tokenize` runs the same path as :func:`eegcodec.compress` (survey, adapter, model, one
pass over the chunks) and hands the codes back as an integer array with their frame times and
channel mapping; the ``.eegc`` bytes it made are kept inside the :class:`Tokens` (the side data
a decoder needs: baseline, chunk scales, mains, exactly stored samples and channels, info).
:func:`detokenize` decodes ``Tokens.codes`` (changed or not) with that side data, as
:func:`eegcodec.decompress` decodes the file. ``Tokens.latents()`` gives the quantized
embeddings the model's decoder consumes (what encoder B hands on, :mod:`eegcodec.align`).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import mne
import numpy as np

from .errors import EegcodecError, ModelMismatchError, OutputExistsError
from .format import streamcoders
from .format.container import FRAME_INDEX, Archive
from .io import atomic_write_bytes, read_raw
from .pipeline import Progress, archive_codes, compress_raw, decompress_archive

if TYPE_CHECKING:
    from .backends.base import Codec

PathLike = str | os.PathLike
#: what :meth:`Tokens.save` writes into its ``.npz``
SAVED = ("codes", "times", "chunks", "archive", "meta")
SAVE_FORMAT = "eegcodec-tokens"


@dataclass(eq=False)
class Tokens:
    """A recording's model tokens.

    Attributes
    ----------
    codes : int64 [rows, depth, frames]: the codes of every chunk, chunk after chunk (as the
        ``.eegc`` file's ``CODE`` section holds them). Consecutive chunks overlap by the
        model's ``overlap_seconds``, so a few frames at each chunk border cover the same time.
    times : float64 [frames]: the START of each frame, in seconds from the recording's first
        sample (a frame covers ``[times[f], times[f] + frame_seconds)``; :attr:`centres`).
    chunks : int64 [frames]: the chunk each frame belongs to.
    channels : the coded channels (EEG-type; the others are stored exactly in the side data).
    row_channels : per code row, the channels it stands for: one channel per row for a
        per-channel model (DAC, WavTokenizer); every coded channel for each spatial token of
        DAC-MC.
    model, weights_sha256 : the model's name and its weights' SHA-256.
    depth : codebooks per frame.
    sfreq : the recording's sampling rate (Hz).
    frame_seconds : seconds per frame (the model's hop over its input rate).
    """

    codes: np.ndarray
    times: np.ndarray
    chunks: np.ndarray
    channels: list[str]
    row_channels: list[list[str]]
    model: str
    weights_sha256: str
    depth: int
    sfreq: float
    frame_seconds: float
    _archive: bytes = field(repr=False, compare=False, default=b"")
    _codec: Codec | None = field(repr=False, compare=False, default=None)

    @property
    def rows(self) -> int:
        return int(self.codes.shape[0])

    @property
    def frames(self) -> int:
        return int(self.codes.shape[2])

    @property
    def centres(self) -> np.ndarray:
        """float64 [frames]: the centre of each frame, seconds from the first sample."""
        return self.times + self.frame_seconds / 2

    @property
    def spatial(self) -> bool:
        """True when rows are spatial tokens over all coded channels (DAC-MC)."""
        return any(len(r) != 1 for r in self.row_channels)

    def archive(self) -> Archive:
        """The ``.eegc`` file the tokens were cut from (its codes are those of the tokenization)."""
        return Archive.from_bytes(self._archive, "the tokens' archive")

    def eegc_bytes(self) -> bytes:
        """That file's bytes (what :func:`eegcodec.compress` writes for the same recording and model)."""
        return self._archive

    def codec(self, codec: Codec | str | None = None) -> Codec:
        """The model of these tokens: ``codec`` (checked), the one that made them, or the one
        loaded by their model name; a model with other weights is refused."""
        if codec is None:
            codec = self._codec if self._codec is not None else self.model
        if isinstance(codec, (str, os.PathLike)):
            from .backends.registry import load_codec

            codec = load_codec(codec)
        if codec.info.weights_sha256 != self.weights_sha256:
            raise ModelMismatchError(
                f"the tokens were made by model {self.model!r} (weights sha256 {self.weights_sha256[:12]}); "
                f"model {codec.info.name!r} has sha256 {codec.info.weights_sha256[:12]}"
            )
        self._codec = codec
        return codec

    def latents(self, codec: Codec | str | None = None) -> np.ndarray:
        """float32 [rows, dim, frames]: the quantized embeddings of the codes (what the model's
        decoder consumes; :meth:`Codec.codes_to_latents`)."""
        z = self.codec(codec).codes_to_latents(np.ascontiguousarray(self.codes, dtype=np.int64))
        return z.detach().cpu().numpy().astype(np.float32, copy=False)

    def save(self, path: PathLike, overwrite: bool = False) -> Path:
        """Write the tokens as ``.npz`` (atomically): codes (uint16/uint32), times, chunks, the
        ``.eegc`` bytes and the metadata as JSON. An existing file needs ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
        meta = {k: getattr(self, k) for k in ("channels", "row_channels", "model", "weights_sha256")}
        meta.update(depth=self.depth, sfreq=self.sfreq, frame_seconds=self.frame_seconds, format=SAVE_FORMAT)
        buf = io.BytesIO()
        np.savez(
            buf,
            codes=self.codes.astype(np.uint16 if self.codes.max(initial=0) < 2**16 else np.uint32),
            times=self.times,
            chunks=self.chunks,
            archive=np.frombuffer(self._archive, np.uint8),
            meta=np.array(json.dumps(meta)),
        )
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: PathLike) -> Tokens:
        """Tokens saved by :meth:`save`; a file that is not one is a one-line error naming it."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if set(z.files) != set(SAVED):
                    raise ValueError(f"it holds {sorted(z.files)}, not {sorted(SAVED)}")
                arrays = {k: z[k] for k in SAVED}
            meta = json.loads(str(arrays["meta"]))
            if meta.pop("format", None) != SAVE_FORMAT:
                raise ValueError("its metadata is not that of eegcodec tokens")
            tokens = cls(
                codes=arrays["codes"].astype(np.int64),
                times=arrays["times"].astype(np.float64),
                chunks=arrays["chunks"].astype(np.int64),
                _archive=arrays["archive"].tobytes(),
                **meta,
            )
        except (OSError, ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            raise EegcodecError(f"{path} is not a tokens file: {str(exc).splitlines()[0][:200]}") from None
        tokens.archive()  # the side data must be intact
        return tokens

    @classmethod
    def from_archive(cls, archive: Archive | bytes, codec: Codec) -> Tokens:
        """The tokens of a token ``.eegc`` file (bytes or parsed), read with its model ``codec``."""
        data = archive if isinstance(archive, bytes) else archive.to_bytes()
        archive = Archive.from_bytes(data) if isinstance(archive, bytes) else archive
        h = archive.header
        if not h.has_tokens:
            raise EegcodecError("the recording has no model tokens (no EEG-type channel was coded)")
        from .pipeline import check_model

        check_model(h, codec)
        names = [h.recording.ch_names[i] for i in h.coded]
        times, chunks = frame_times(archive)
        per_row = codec.max_code_rows is None
        return cls(
            codes=archive_codes(archive, codec),
            times=times,
            chunks=chunks,
            channels=names,
            row_channels=[[n] for n in names] if per_row else [list(names) for _ in range(h.code_rows)],
            model=h.model.name,
            weights_sha256=h.model.weights_sha256,
            depth=int(h.codebooks),
            sfreq=float(h.recording.sfreq),
            frame_seconds=h.model.hop_length / h.adapter.model_rate,
            _archive=data,
            _codec=codec,
        )


def frame_times(archive: Archive) -> tuple[np.ndarray, np.ndarray]:
    """(float64 [frames] start of each frame in seconds from the first sample, int64 [frames]
    its chunk) of a token file: chunk i's frame j starts at the chunk's first sample plus
    j hops at the model's input rate."""
    h = archive.header
    step = h.model.hop_length / h.adapter.model_rate
    times, chunks = [], []
    for i, ((start, _), n) in enumerate(zip(h.layout.chunks(), h.chunk_frames)):
        times.append(start / h.recording.sfreq + np.arange(n) * step)
        chunks.append(np.full(n, i, dtype=np.int64))
    return np.concatenate(times), np.concatenate(chunks)


def tokenize(
    raw_or_path: mne.io.BaseRaw | PathLike,
    model: Codec | str = "default",
    depth: int | None = None,
    *,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Tokens:
    """The model tokens of a recording (an MNE raw, volts, or a file path).

    ``model``: a :class:`Codec` or a model name / weights path; ``depth``: codebooks (default:
    the model's recommended depth). The codes are those :func:`eegcodec.compress` stores for
    the same recording, model and depth. ``threads``: torch / BLAS threads, and so chunks coded
    at once (default: the cores this process may use, at most ``OMP_NUM_THREADS``;
    :class:`eegcodec.threads.CoreThreads`)."""
    from .threads import CoreThreads

    source = None
    if not isinstance(raw_or_path, mne.io.BaseRaw):
        path = Path(raw_or_path)
        raw_or_path = read_raw(path)
        source = {"name": path.name, "bytes": path.stat().st_size}
    if isinstance(model, (str, os.PathLike)):
        from .backends.registry import load_codec

        model = load_codec(model)
    with CoreThreads(threads=threads, load=False):  # chunk workers: one torch thread each
        data = compress_raw(raw_or_path, model, n_codebooks=depth, progress=progress, source=source)
    return Tokens.from_archive(data, model)


def detokenize(tokens: Tokens, codec: Codec | str | None = None) -> mne.io.RawArray:
    """The recording rebuilt from ``tokens.codes`` and the side data the tokens keep: float64
    volts, every channel, info and annotations (as :func:`eegcodec.decompress`). ``codec``
    defaults to the model that made the tokens (or the one loaded by its name)."""
    codec = tokens.codec(codec)
    archive = tokens.archive()
    h = copy.deepcopy(archive.header)
    want = (h.code_rows, h.codebooks, sum(h.chunk_frames))
    codes = np.asarray(tokens.codes)
    if codes.shape != want:
        raise EegcodecError(f"tokens.codes has shape {codes.shape}; the recording's side data needs {want}")
    if codes.size and (codes.min() < 0 or codes.max() >= codec.info.codebook_size):
        raise EegcodecError(f"tokens.codes holds values outside 0..{codec.info.codebook_size - 1}")
    h.code_coder, h.prior_sha256 = "packed", None  # the codes as given, whatever coded the file's
    packer, codes = streamcoders.make("packed", codec.info.bits_per_code), codes.astype(np.int64)
    if h.version >= FRAME_INDEX:  # one frame per chunk
        bounds = np.cumsum([0, *h.chunk_frames])
        frames = [packer.encode(codes[:, :, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        h.code_frames, packed = [len(f) for f in frames], b"".join(frames)
    else:
        packed = packer.encode(codes)
    return decompress_archive(dataclasses.replace(archive, header=h, codes=packed), codec)
