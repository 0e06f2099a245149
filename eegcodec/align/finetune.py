"""Encoder B, fine-tuned: a DAC-MC encoder whose last blocks train with the mapper.

Shapes (B windows, C channels, T codec samples of a window with one context frame either
side, F = T / hop frames, S = min(n_spatial, C) spatial tokens, R the mapper's rows, D the
latent size)::

    x [B, C, T] --frozen head of the per-channel encoder--> h [B*C, D_h, F]
      --trained tail (last N encoder modules) + trained channel attention--> [B, S, D, F]
      --frozen residual VQ at the recipe's depth (straight-through)--> z_q [B, S, D, F]
      --zero rows up to R, flattened--> E_B [B, R*D, F]
    z_q[:n] --frozen channel distribution + decoder--> y [n, C, T]  (the codec regulariser)

Only the encoder side moves, so what the tuned encoder writes is read by the codec's own,
unchanged decoder; :meth:`TunableEncoderB.export` writes it as a DAC-MC file that
:func:`eegcodec.backends.registry.load_codec` loads like any other model (``eegcodec compress
--model``, ``eegcodec eval --model``, and :class:`~eegcodec.align.encoders.EEGEncoder`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backends.dac.files import read_dac_file
from ..backends.dac_mc.files import build_dacmc, save_dacmc_file
from ..backends.dac_mc.format import is_dacmc_file
from ..backends.dac_mc.network import DACMC
from ..backends.registry import resolve_model
from ..backends.weights import state_dict_sha256
from ..errors import EegcodecError
from ..train.losses import multiscale_stft_loss

#: FFT sizes (codec samples) of the regulariser's multi-scale STFT term; a window is 640 at 160 Hz
STFT_WINDOWS = [32, 64, 128, 256]


class TunableEncoderB(nn.Module):
    """A DAC-MC model read from ``name_or_path`` with its last ``blocks`` encoder modules and
    its channel attention trainable, everything else frozen (``requires_grad`` False).

    The network stays in eval mode (DAC has no dropout or normalisation statistics, and the
    quantizer must not drop codebooks as in codec training); :meth:`train` is a no-op.
    """

    def __init__(self, name_or_path: str, blocks: int, depth: int, rows: int):
        super().__init__()
        path, _ = resolve_model(name_or_path)
        blob = read_dac_file(path)
        if not is_dacmc_file(blob):
            raise EegcodecError(
                f"fine-tuning encoder B needs a DAC-MC model; {name_or_path} is a per-channel model "
                "(set finetune_b.blocks=0)"
            )
        self.net: DACMC = build_dacmc(blob).eval()
        self.source_meta = copy.deepcopy(blob["metadata"])
        self.source_sha256 = state_dict_sha256(blob["state_dict"])
        layers = self.net.dac.encoder.block
        if not 1 <= blocks <= len(layers):
            raise EegcodecError(
                f"finetune_b.blocks must be in 1..{len(layers)} for this encoder, got {blocks}"
            )
        self.split = len(layers) - blocks
        self.depth, self.rows = int(depth), int(rows)
        for p in self.net.parameters():
            p.requires_grad_(False)
        for p in [*layers[self.split :].parameters(), *self.net.aggregate.parameters()]:
            p.requires_grad_(True)

    def train(self, mode: bool = True) -> TunableEncoderB:
        return self

    def channel_embedding(self, positions: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """positions [B, C, 3], known [B, C] -> [B, C, D] (frozen)."""
        return self.net.embed(positions, known)

    def quantized(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x [B, C, T] float32, emb [B, C, D] -> z_q [B, S, D, F] at ``depth`` codebooks
        (values as decoded from the tokens; gradients straight through the quantizer)."""
        b, c, t = x.shape
        layers = self.net.dac.encoder.block
        with torch.no_grad():
            h = layers[: self.split](x.reshape(b * c, 1, t))
        z = layers[self.split :](h)
        d, f = z.shape[1:]
        tokens = z.view(b, c, d, f).permute(0, 3, 1, 2).reshape(b * f, c, d)
        s = self.net.spatial_tokens(c)
        queries = self.net.slots[:s].expand(b * f, s, d)
        pooled = self.net.aggregate(queries, tokens + emb.repeat_interleave(f, dim=0), tokens)
        flat = pooled.view(b, f, s, d).permute(0, 2, 3, 1).reshape(b * s, d, f)
        z_q, *_ = self.net.quantize(flat, s, self.depth)
        return z_q.view(b, s, d, f)

    def e_b(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q [B, S, D, F] -> E_B [B, R*D, F] (rows past S are zeros, as in the frozen path)."""
        b, s, d, f = z_q.shape
        if s > self.rows:
            raise EegcodecError(f"encoder B gives {s} rows, the mapper was built for {self.rows}")
        z_q = torch.cat([z_q, z_q.new_zeros(b, self.rows - s, d, f)], 1) if s < self.rows else z_q
        return z_q.reshape(b, self.rows * d, f)

    def codec_loss(self, z_q: torch.Tensor, emb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The codec's reconstruction loss of windows x [n, C, T] from their z_q [n, S, D, F]
        through the frozen decoder: L1 + multi-scale STFT (codec-domain units)."""
        y = self.net.decode_latents(z_q, emb)[..., : x.shape[-1]]
        return F.l1_loss(y, x) + multiscale_stft_loss(x, y, STFT_WINDOWS)

    @torch.no_grad()
    def prd(self, x: torch.Tensor, emb: torch.Tensor) -> np.ndarray:
        """PRD % per window and channel [B, C] of the codec at ``depth`` (mean removed)."""
        y = self.net.decode_latents(self.quantized(x, emb), emb)[..., : x.shape[-1]]
        xc = x - x.mean(-1, keepdim=True)
        return (100 * ((y - x).pow(2).sum(-1) / xc.pow(2).sum(-1).clamp_min(1e-12)).sqrt()).cpu().numpy()

    def export(self, path: Path, note: dict) -> str:
        """Write the tuned model as a DAC-MC file (the source's metadata, ``note`` under
        ``eegcodec.finetuned``); returns its weights' SHA-256 as :func:`load_codec` reports it."""
        meta = copy.deepcopy(self.source_meta)
        eeg = meta.get("eegcodec", {})
        eeg["name"] = f"{eeg.get('name', 'encoder-b')}-finetuned"
        eeg["finetuned"] = {"from_sha256": self.source_sha256, **note}
        mc = meta["dac_mc"]
        save_dacmc_file(self.net, path, eeg, mc["positions"])
        return state_dict_sha256(self.net.state_dict())


class AlignFinetune(nn.Module):
    """What trains when encoder B is fine-tuned: the mapper and the tunable encoder."""

    def __init__(self, mapper: nn.Module, encoder_b: TunableEncoderB):
        super().__init__()
        self.mapper, self.encoder_b = mapper, encoder_b

    def forward(self, e_a: torch.Tensor, x: torch.Tensor, emb: torch.Tensor, n_codec: int) -> dict:
        """e_a [B, D_a, F_A], x [B, C, T], emb [B, C, D] -> the mapper's outputs and
        ``codec`` (the regulariser on the first ``n_codec`` windows)."""
        z_q = self.encoder_b.quantized(x, emb)
        out = self.mapper(e_a, self.encoder_b.e_b(z_q))
        out["codec"] = self.encoder_b.codec_loss(z_q[:n_codec], emb[:n_codec], x[:n_codec])
        return out
