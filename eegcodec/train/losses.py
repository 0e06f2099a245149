"""Reconstruction losses for codec training (codec-domain tensors [B, 1, T])."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossConfig


def multiscale_stft_loss(x: torch.Tensor, y: torch.Tensor, windows: list[int], eps: float = 1e-5) -> torch.Tensor:
    """Mean over window sizes of L1 on STFT magnitudes plus L1 on log magnitudes.

    ``windows`` are FFT sizes in codec samples (hop = window / 4, Hann window);
    sizes longer than the signal are skipped.
    """
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    total, used = x.new_zeros(()), 0
    for w in windows:
        if w > x.shape[-1]:
            continue
        win = torch.hann_window(w, device=x.device, dtype=x.dtype)
        sx = torch.stft(x, n_fft=w, hop_length=w // 4, window=win, return_complex=True).abs()
        sy = torch.stft(y, n_fft=w, hop_length=w // 4, window=win, return_complex=True).abs()
        total = total + (sx - sy).abs().mean() + (torch.log(sx + eps) - torch.log(sy + eps)).abs().mean()
        used += 1
    return total / max(used, 1)


def codec_loss(x: torch.Tensor, y: torch.Tensor, commitment: torch.Tensor, codebook: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """All enabled terms and their weighted sum under ``"total"``."""
    terms = {
        "l1": F.l1_loss(y, x),
        "l2": F.mse_loss(y, x),
        "stft": multiscale_stft_loss(x, y, cfg.stft_windows) if cfg.stft else x.new_zeros(()),
        "commitment": commitment,
        "codebook": codebook,
    }
    terms["total"] = sum(getattr(cfg, k) * v for k, v in terms.items())
    return terms
