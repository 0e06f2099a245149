"""What the trainer needs of a codec network, so one trainer serves every backend.

Each backend's trainable (``eegcodec/backends/<kind>/trainable.py``) subclasses
:class:`TrainableCodec`; a recipe's ``family`` picks it through the registry
(:func:`eegcodec.backends.registry.build_trainable`; families: ``dac``, ``dac_mc``,
``wavtokenizer``). Single-channel families take codec-domain windows ``x`` [B, 1, T], T a
multiple of hop; DAC-MC takes a dict of multi-channel windows (see its class).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class TrainableCodec(nn.Module):
    """What the trainer needs of a network. ``forward`` is what DDP synchronises."""

    hop_length: int
    n_codebooks: int
    codebook_size: int

    def make_batch(self, bank, n: int, rng, device, validation: bool = False):
        """A batch of ``n`` windows from a :class:`~eegcodec.train.data.WindowBank` (the fixed
        validation batch when ``validation``): here x [n, 1, T] (one channel per window)."""
        return torch.from_numpy(bank.sample(n, rng)).to(device)

    def target(self, batch) -> torch.Tensor:
        """The windows a batch must reconstruct, [N, 1, T] (what the losses compare ``audio`` with)."""
        return batch

    def forward(self, batch, quantize: bool = True) -> dict:
        """``audio`` [N, 1, T] (as :meth:`target`); with ``quantize`` also ``codes`` [B, K, F],
        ``latents`` (quantizer inputs, [B, K*d, F]) and the VQ loss terms ``commitment`` and
        ``codebook``; without it the quantizer is bypassed (autoencoder warm-up)."""
        raise NotImplementedError

    def reconstruct(self, batch, n_codebooks: int) -> torch.Tensor:
        """Inference at codebook depth ``n_codebooks``: batch -> [N, 1, T]."""
        raise NotImplementedError

    @classmethod
    def arguments(cls, model_args: dict, init: Path | None) -> dict:
        """Constructor arguments: the recipe's, completed from the ``init`` file (None: from
        scratch) where it says them."""
        return model_args

    def load_init(self, path: Path, name: str) -> None:
        """Initialise from the weights file ``path`` of the model ``name`` (e.g. a pretrained
        audio codec; :func:`eegcodec.backends.registry.build_trainable` resolves the name)."""
        raise NotImplementedError

    def export(self, path: Path, meta: dict) -> None:
        """Write a file ``eegcodec.load_codec(path)`` loads, carrying ``meta``."""
        raise NotImplementedError

    def seed_codebooks(self, x: torch.Tensor) -> None:
        """Set the codebooks from latents of ``x`` (after autoencoder warm-up)."""

    def reset_dead_codes(self, usage: torch.Tensor, latents: torch.Tensor) -> None:
        """Re-seed entries with zero ``usage`` [K, codebook_size] from ``latents``."""

    def codebook_tensors(self) -> list[torch.Tensor]:
        """Codebook tensors rank 0 broadcasts after seeding or resetting."""
        return []
