"""WavTokenizer's encoder side (:mod:`eegcodec.backends.wavtokenizer.network` builds the model):
EnCodec's non-causal SEANet encoder, weight-normed and reflect-padded, and the single-codebook
vector quantizer kept as EMA buffers. ``cfg`` arguments are
:class:`~eegcodec.backends.wavtokenizer.network.WavTokenizerConfig`. Shapes: waveforms float32
``[B, 1, L]``, features ``[B, dimension, T]``, codes int64 ``[B, T]`` (the quantizer's own shape)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------
# encoder: EnCodec SEANet, non-causal, weight-normed, reflect-padded
# ---------------------------------------------------------------------------


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the input is not longer than the pad
    (zero-extend on the right first, drop those zeros afterwards), as EnCodec does."""
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    x = F.pad(x, (left, right), mode="reflect")
    return x[..., : x.shape[-1] - extra]


class _WNConv(nn.Module):
    """Conv1d with old-style weight norm: weight = g * v / ||v|| (norm over all axes but 0).

    Parameters keep the official names (``bias``, ``weight_g``, ``weight_v``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        conv = nn.Conv1d(c_in, c_out, kernel, stride)
        self.bias = conv.bias
        self.weight_g = nn.Parameter(conv.weight.detach().norm(dim=(1, 2), keepdim=True))
        self.weight_v = nn.Parameter(conv.weight.detach().clone())

    def weight(self) -> torch.Tensor:
        return self.weight_g * self.weight_v / self.weight_v.norm(dim=(1, 2), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, self.stride)


class _NormConv(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.conv = _WNConv(*args, **kwargs)


class SConv1d(nn.Module):
    """Non-causal conv with EnCodec's padding: total K - s split right-floor / left-ceil,
    plus a right pad to a whole number of strides, all reflected. [B, C, L] -> [B, C', ceil(L/s)]."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = _NormConv(c_in, c_out, kernel, stride)
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel, self.stride
        total = k - s
        length = x.shape[-1]
        n_frames = (length - k + total) / s + 1
        extra = (math.ceil(n_frames) - 1) * s + (k - total) - length
        right = total // 2
        return self.conv.conv(_reflect_pad(x, total - right, right + extra))


class SEANetResBlock(nn.Module):
    """ELU -> conv C->C/2 (k3) -> ELU -> conv C/2->C (k1), plus a k1 conv shortcut."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(nn.ELU(), SConv1d(dim, dim // 2, 3), nn.ELU(), SConv1d(dim // 2, dim, 1))
        self.shortcut = SConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """Unidirectional LSTM over time with its input added back. [B, C, T] -> [B, C, T]."""

    def __init__(self, dim: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        return (y + x).permute(1, 2, 0)


class SEANetEncoder(nn.Module):
    """Waveform [B, 1, L] -> features [B, dimension, ceil(L / hop)]."""

    def __init__(self, cfg):
        super().__init__()
        ch = cfg.n_filters
        layers: list[nn.Module] = [SConv1d(1, ch, 7)]
        for s in cfg.strides:
            layers += [SEANetResBlock(ch), nn.ELU(), SConv1d(ch, 2 * ch, 2 * s, s)]
            ch *= 2
        layers += [SLSTM(ch, cfg.lstm_layers), nn.ELU(), SConv1d(ch, cfg.dimension, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---------------------------------------------------------------------------
# quantizer: one EMA codebook
# ---------------------------------------------------------------------------


class EMACodebook(nn.Module):
    """One codebook kept as buffers, updated by EMA in training (decay 0.99, Laplace
    smoothing 1e-5, entries with EMA count below 2 replaced by batch vectors)."""

    def __init__(
        self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5, dead_threshold: float = 2.0
    ):
        super().__init__()
        self.decay, self.eps, self.dead_threshold = decay, eps, dead_threshold
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed", torch.randn(size, dim) * 0.5)
        self.register_buffer("embed_avg", self.embed.clone())

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, D] -> index [N] of the nearest entry (squared Euclidean)."""
        embed = self.embed
        dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ embed.t() + embed.pow(2).sum(1)[None]
        return dist.argmin(dim=1)

    @torch.no_grad()
    def ema_update(self, x: torch.Tensor, idx: torch.Tensor) -> None:
        """Move entries toward the mean of the vectors x [N, D] assigned to them (idx [N])."""
        onehot = F.one_hot(idx, self.embed.shape[0]).type(x.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(onehot.t() @ x, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + len(self.cluster_size) * self.eps) * n
        self.embed.copy_(self.embed_avg / smoothed[:, None])
        dead = self.cluster_size < self.dead_threshold
        if dead.any():
            pick = torch.randint(len(x), (int(dead.sum()),), device=x.device)
            self.embed[dead] = x[pick]
            self.embed_avg[dead] = x[pick]
            self.cluster_size[dead] = self.dead_threshold


class _VQLayer(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self._codebook = EMACodebook(size, dim)


class _VQStack(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self.layers = nn.ModuleList([_VQLayer(size, dim)])


class VectorQuantizer(nn.Module):
    """The single-codebook quantizer under the official key names
    (``quantizer.vq.layers.0._codebook.*``)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.vq = _VQStack(size, dim)

    @property
    def codebook(self) -> EMACodebook:
        return self.vq.layers[0]._codebook

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """features [B, D, T] -> codes [B, T]."""
        b, d, t = z.shape
        return self.codebook.nearest(z.transpose(1, 2).reshape(-1, d).float()).view(b, t)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> codebook rows [B, D, T]."""
        return F.embedding(codes, self.codebook.embed).transpose(1, 2)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training path: (straight-through z_q [B, D, T], codes [B, T], commitment MSE).
        In training mode the codebook follows the batch by EMA."""
        codes = self.encode(z)
        z_q = self.decode(codes)
        if self.training:
            d = z.shape[1]
            self.codebook.ema_update(z.detach().transpose(1, 2).reshape(-1, d).float(), codes.reshape(-1))
        commitment = F.mse_loss(z, z_q.detach())
        return z + (z_q - z).detach(), codes, commitment
