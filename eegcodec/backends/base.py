"""The codec interface every backend implements (stage 3: tokenize).

A codec turns codec-domain signals into integer codes and back. It knows
nothing of volts, channels or files: the adapter (:mod:`eegcodec.adapt`) feeds
it, the container (:mod:`eegcodec.format.container`) stores what it returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..adapt import AdapterConfig
from ..errors import EegcodecError


@dataclass
class CodecInfo:
    """What a file needs to know about the codec that made it.

    Attributes
    ----------
    name : registered name or file name of the model.
    kind : backend, e.g. ``"dac"``.
    sample_rate : Hz of the codec's input.
    hop_length : codec samples per code frame.
    n_codebooks : maximum codebook depth.
    codebook_size : entries per codebook (codes are ``ceil(log2(codebook_size))`` bits).
    weights_sha256 : :func:`~eegcodec.backends.weights.state_dict_sha256` of the weights.
    adapter : the adapter settings the model was trained with.
    default_codebooks : depth used when none is asked for (a model's metadata may
        recommend one below the maximum, where more codebooks stop paying off).
    """

    name: str
    kind: str
    sample_rate: float
    hop_length: int
    n_codebooks: int
    codebook_size: int
    weights_sha256: str
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    default_codebooks: int | None = None

    def __post_init__(self) -> None:
        if self.default_codebooks is None:
            self.default_codebooks = self.n_codebooks

    @property
    def bits_per_code(self) -> int:
        return int(np.ceil(np.log2(self.codebook_size)))


class Codec(ABC):
    """What callers need from a codec: all coded channels of one chunk at once.

    The pipeline, training and encoder B call :meth:`encode_channels`,
    :meth:`decode_channels` and :meth:`codes_to_latents` (AudioCraft's
    ``CompressionModel.decode_latent`` is the pattern); a multi-channel codec implements
    them directly (DAC-MC), a per-channel network through :class:`PerChannelCodec`.
    Implementations hold a ``torch.nn.Module`` (``model``) and run it in inference mode.
    """

    info: CodecInfo
    device: torch.device
    model: torch.nn.Module
    #: code rows per chunk whatever the channel count (multi-channel codecs), or None
    #: (one row per channel)
    max_code_rows: int | None = None
    #: the learned prior over the codes (:class:`eegcodec.codeprior.CodePrior`), when the model
    #: has one beside its weights; files are then entropy-coded under it
    prior = None
    #: earlier priors of the same weights, for the files written under them: SHA-256 prefix
    #: (12 hex digits) -> file (``NAME.prior.<prefix>.npz`` beside the weights)
    older_priors: dict = {}
    _older_loaded = None  # the last earlier prior a file asked for (a folder's files share it)

    def prior_for(self, sha256: str):
        """The prior whose SHA-256 a file records: the current one or an earlier one kept beside
        the weights (checked against the whole SHA-256), else None."""
        for prior in (self.prior, self._older_loaded):
            if prior is not None and prior.sha256() == sha256:
                return prior
        path = self.older_priors.get(sha256[:12])
        if path is None:
            return None
        from ..codeprior import CodePrior

        prior = CodePrior.from_bytes(path.read_bytes())
        if prior.sha256() != sha256:
            return None
        self._older_loaded = prior
        return prior

    def montage(self, names: list[str]):
        """The :class:`~eegcodec.montage.Montage` of these channels, which the pipeline stores
        in the file and hands back to the decoder (None: the codec codes channels alone)."""
        return None

    def code_rows(self, n_channels: int) -> int:
        """Rows of codes per chunk for ``n_channels`` coded channels."""
        return n_channels if self.max_code_rows is None else min(self.max_code_rows, n_channels)

    @abstractmethod
    def encode_channels(self, x: np.ndarray, n_codebooks: int, montage=None) -> np.ndarray:
        """x float32 [C, T] (T a multiple of hop) -> codes int64 [code_rows(C), n_codebooks, T // hop]."""

    @abstractmethod
    def decode_channels(self, codes: np.ndarray, montage=None) -> np.ndarray:
        """codes int64 [code_rows(C), K, F] (K <= n_codebooks) -> float32 [C, F * hop]."""

    @abstractmethod
    def codes_to_latents(self, codes: np.ndarray) -> torch.Tensor:
        """codes int64 [R, K, F] -> the quantized latents the decoder consumes, float32 [R, D, F]."""

    def check_depth(self, n_codebooks: int) -> None:
        """Raise :class:`EegcodecError` unless ``n_codebooks`` is a depth this model has."""
        if not 1 <= n_codebooks <= self.info.n_codebooks:
            raise EegcodecError(
                f"n_codebooks must be in 1..{self.info.n_codebooks} for model {self.info.name}, got "
                f"{n_codebooks}"
            )

    #: most chunks coded at once on CPU (each holds its chunk's activations)
    max_chunk_workers = 4

    def map_chunks(self, fn: Callable, items: Iterable[tuple]) -> Iterator:
        """``fn(*item)`` for each of ``items``, yielded in order. On CPU with n torch threads
        (n > 1), n items are worked on at once, each in its own thread running torch on one
        thread: the convolutions of one chunk do not keep two cores busy (an hour of 64 channels
        with mc-small on a 2-core Xeon: 49 s to compress against 60 s with one chunk at a time
        on two threads). ``items`` is consumed in the
        caller's thread, so it may read files; on a GPU (or one thread), one item after the other.
        numpy's BLAS runs on one thread meanwhile (the workers already keep the cores busy)."""
        workers = min(torch.get_num_threads(), self.max_chunk_workers) if self.device.type == "cpu" else 1
        if workers < 2:
            yield from (fn(*item) for item in items)
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool, threadpool_limits(1, user_api="blas"):
                pending: deque = deque()
                for item in items:
                    pending.append(pool.submit(fn, *item))
                    if len(pending) == workers:
                        yield pending.popleft().result()
                last = [f.result() for f in pending]
        finally:  # restored before the last results: a caller taking exactly len(items) sees it
            torch.set_num_threads(threads)
        yield from last

    def to(self, device: str | torch.device) -> Codec:
        """Move ``self.model`` to ``device``; returns self."""
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise EegcodecError("device 'cuda' requested but no CUDA GPU is available")
        self.model.to(device)
        self.device = device
        return self


class PerChannelCodec(Codec):
    """Adapts a per-channel network (one channel per batch row) to the :class:`Codec`
    contract: each channel is coded alone, in batches of at most ``max_batch_samples``
    codec-domain samples (bounds memory)."""

    max_batch_samples: int = 1 << 21

    @abstractmethod
    def encode(self, x: torch.Tensor, n_codebooks: int) -> torch.Tensor:
        """x float32 [B, 1, T] (T a multiple of hop) -> codes int64 [B, n_codebooks, T // hop]."""

    @abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes int64 [B, K, F] (K <= n_codebooks) -> float32 [B, 1, F * hop]."""

    def encode_channels(self, x: np.ndarray, n_codebooks: int, montage=None) -> np.ndarray:
        return self._batched(x[:, None, :], lambda b: self.encode(b, n_codebooks))

    def decode_channels(self, codes: np.ndarray, montage=None) -> np.ndarray:
        return self._batched(codes, self.decode)[:, 0, :]

    def _batched(self, x: np.ndarray, fn) -> np.ndarray:
        per = max(1, self.max_batch_samples // max(1, x.shape[-1]))
        outs = [fn(torch.from_numpy(x[i : i + per])) for i in range(0, x.shape[0], per)]
        return torch.cat(outs).cpu().numpy()
