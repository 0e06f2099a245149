"""DAC-MC: a multi-channel DAC. Shared per-channel DAC encoder and decoder, attention across
channels, a code stream that does not grow with the channel count, channel-conditioned decoding.

Shapes (B recordings, C channels, T codec samples, F = T / hop frames, D = DAC latent dim,
S = min(n_spatial, C) spatial tokens, K codebooks)::

    x [B, C, T] --DAC encoder per channel--> z [B, C, D, F]
      --aggregate: S learned queries attend over the C channel tokens (+ channel embedding),
        per frame--> s [B, S, D, F]
      --DAC residual VQ per spatial token--> codes [B, S, K, F]
        (the stream: S*K codes per frame, whatever C is)
      --distribute: each channel's embedding attends over the S quantized tokens, per frame--> [B, C, D, F]
      --DAC decoder per channel--> y [B, C, T]

Both attention blocks are attention pooling with identity-initialised value and output
maps and a zero-initialised feed-forward refinement, so with one channel (C = S = 1) the
untrained blocks pass latents through unchanged: a pretrained DAC's encoder, quantizer and
decoder (audio or EEG) start out working as they did. The channel embedding comes from the
electrode position (Fourier features, :mod:`eegcodec.montage`) plus a learned vector for
channels whose position is unknown.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import EegcodecError
from ..dac.network import build_dac, fit_length


class ChannelEmbedding(nn.Module):
    """positions [..., 3] (position units) and known [...] -> embeddings [..., dim]."""

    def __init__(self, dim: int, n_freqs: int = 6):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs)) * math.pi / 2, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(6 * n_freqs + 3, dim), nn.GELU(), nn.Linear(dim, dim))
        self.unknown = nn.Parameter(torch.zeros(dim))

    def forward(self, positions: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        a = positions[..., None] * self.freqs  # [..., 3, n_freqs]
        feats = torch.cat([positions, a.sin().flatten(-2), a.cos().flatten(-2)], dim=-1)
        return self.mlp(feats) + (~known)[..., None].float() * self.unknown


class AttentionPool(nn.Module):
    """out_i = W_o sum_j softmax_j(q_i . k_j / sqrt(d)) W_v m_j per head, then out += FFN(LN(out)).

    ``queries`` [N, Q, D] (used for the attention weights only), ``keys`` [N, M, D] (what
    the weights are computed from), ``values`` [N, M, D]. W_v and W_o start as identities
    and the FFN's last layer at zero, so with M = 1 the block starts as the identity."""

    def __init__(self, dim: int, heads: int = 4, key_dim: int = 32):
        super().__init__()
        if dim % heads:
            raise EegcodecError(f"latent dim {dim} is not divisible by {heads} heads")
        self.heads, self.key_dim = heads, key_dim
        self.q = nn.Linear(dim, heads * key_dim)
        self.k = nn.Linear(dim, heads * key_dim)
        self.norm_q, self.norm_k = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.v, self.o = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )
        with torch.no_grad():
            for lin in (self.v, self.o):
                lin.weight.copy_(torch.eye(dim))
                lin.bias.zero_()
            self.ffn[-1].weight.zero_()
            self.ffn[-1].bias.zero_()

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        n, nq, d = queries.shape
        m = keys.shape[1]
        q = self.q(self.norm_q(queries)).view(n, nq, self.heads, self.key_dim).transpose(1, 2)
        k = self.k(self.norm_k(keys)).view(n, m, self.heads, self.key_dim).transpose(1, 2)
        v = self.v(values).view(n, m, self.heads, d // self.heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, nq, d)
        out = self.o(out)
        return out + self.ffn(out)


class DACMC(nn.Module):
    """The DAC-MC network (see the module docstring).

    Parameters
    ----------
    dac_args : ``dac.DAC`` constructor arguments (the per-channel codec).
    n_spatial : most spatial tokens per frame (S = min(n_spatial, C)).
    heads : attention heads.
    """

    def __init__(self, dac_args: dict, n_spatial: int = 8, heads: int = 4):
        super().__init__()
        self.dac = build_dac(dac_args)
        self.n_spatial = int(n_spatial)
        d = int(self.dac.latent_dim)
        self.embed = ChannelEmbedding(d)
        self.slots = nn.Parameter(torch.randn(self.n_spatial, d) * 0.02)
        self.aggregate = AttentionPool(d, heads)
        self.distribute = AttentionPool(d, heads)
        self.hop_length = int(self.dac.hop_length)

    def spatial_tokens(self, n_channels: int) -> int:
        return min(self.n_spatial, n_channels)

    def encode_latents(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x [B, C, T], emb [B, C, D] -> spatial latents [B, S, D, F]."""
        b, c, t = x.shape
        z = self.dac.encoder(x.reshape(b * c, 1, t))  # [B*C, D, F]
        d, f = z.shape[1:]
        tokens = z.view(b, c, d, f).permute(0, 3, 1, 2).reshape(b * f, c, d)  # per frame: C tokens
        keys = tokens + emb.repeat_interleave(f, dim=0)
        s = self.spatial_tokens(c)
        queries = self.slots[:s].expand(b * f, s, d)
        pooled = self.aggregate(queries, keys, tokens)  # [B*F, S, D]
        return pooled.view(b, f, s, d).permute(0, 2, 3, 1)

    def decode_latents(self, zq: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """zq [B, S, D, F], emb [B, C, D] -> y [B, C, T]."""
        b, s, d, f = zq.shape
        c = emb.shape[1]
        mem = zq.permute(0, 3, 1, 2).reshape(b * f, s, d)
        keys = mem + self.slots[:s]
        queries = emb.repeat_interleave(f, dim=0)  # [B*F, C, D]
        per_channel = self.distribute(queries, keys, mem)  # [B*F, C, D]
        z = per_channel.view(b, f, c, d).permute(0, 2, 3, 1).reshape(b * c, d, f)
        y = self.dac.decoder(z)
        return fit_length(y, f * self.hop_length).view(b, c, -1)

    def quantize(self, flat: torch.Tensor, s: int, n_quantizers: int | None = None):
        """DAC's residual VQ over spatial latents flat [B*S, D, F] (rows grouped by recording),
        with quantizer dropout drawn per recording (all S tokens of a recording share a
        depth, as at compress time). Returns (z_q, codes [B*S, K', F], latents, commitment, codebook)."""
        rvq = self.dac.quantizer
        k = rvq.n_codebooks
        b = flat.shape[0] // s
        if self.training:
            depth = torch.full((b,), k, device=flat.device)
            n_drop = int(b * rvq.quantizer_dropout)
            depth[:n_drop] = torch.randint(1, k + 1, (n_drop,), device=flat.device)
            depth = depth[torch.randperm(b, device=flat.device)].repeat_interleave(s)
        else:
            depth = torch.full((flat.shape[0],), n_quantizers or k, device=flat.device)
        z_q, residual = 0, flat
        commitment = codebook = 0
        codes, latents = [], []
        for i, q in enumerate(rvq.quantizers):
            if not self.training and i >= int(depth[0]):
                break
            z_q_i, commit_i, book_i, idx, z_e = q(residual)
            mask = (i < depth).float()
            z_q = z_q + z_q_i * mask[:, None, None]
            residual = residual - z_q_i
            commitment = commitment + (commit_i * mask).mean()
            codebook = codebook + (book_i * mask).mean()
            codes.append(idx)
            latents.append(z_e)
        return z_q, torch.stack(codes, 1), torch.cat(latents, 1), commitment, codebook

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        known: torch.Tensor,
        n_quantizers: int | None = None,
        quantize: bool = True,
    ) -> dict:
        """Training pass. x [B, C, T]; positions [B, C, 3]; known [B, C].

        Returns ``audio`` [B, C, T]; with ``quantize`` also ``codes`` [B*S, K, F],
        ``latents`` [B*S, K*d, F] and the VQ terms (see :meth:`quantize`)."""
        b, c, t = x.shape
        emb = self.embed(positions, known)
        s_lat = self.encode_latents(x, emb)
        s = s_lat.shape[1]
        flat = s_lat.reshape(b * s, *s_lat.shape[2:])
        if not quantize:
            zero = x.new_zeros(())
            return {
                "audio": self.decode_latents(s_lat, emb)[..., :t],
                "codes": None,
                "latents": None,
                "commitment": zero,
                "codebook": zero,
            }
        zq, codes, latents, commitment, codebook = self.quantize(flat, s, n_quantizers)
        y = self.decode_latents(zq.view(b, s, *zq.shape[1:]), emb)[..., :t]
        return {
            "audio": y,
            "codes": codes,
            "latents": latents,
            "commitment": commitment,
            "codebook": codebook,
        }
