"""Losses for codec training (codec-domain tensors [B, 1, T]): waveform, multi-scale
STFT, VQ terms, and the adversarial + feature-matching terms with DAC's discriminators."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossConfig


def multiscale_stft_loss(
    x: torch.Tensor, y: torch.Tensor, windows: list[int], eps: float = 1e-5
) -> torch.Tensor:
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


def codec_loss(
    x: torch.Tensor, y: torch.Tensor, commitment: torch.Tensor, codebook: torch.Tensor, cfg: LossConfig
) -> dict[str, torch.Tensor]:
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


def gan_enabled(cfg: LossConfig) -> bool:
    return cfg.adversarial > 0 or cfg.feature_matching > 0


class Adversary(torch.nn.Module):
    """DAC's discriminator set (multi-period + multi-band multi-resolution STFT) with
    DAC's least-squares GAN losses.

    ``periods`` and ``fft_sizes`` are in codec samples (choose FFT sizes no longer than
    the training window). Real and fake go through the discriminator as one batch, so
    each forward is matched by one backward (what DDP requires).
    """

    def __init__(self, cfg: LossConfig, sample_rate: float):
        super().__init__()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from dac.model.discriminator import Discriminator

            self.disc = Discriminator(
                rates=[],
                periods=list(cfg.gan_periods),
                fft_sizes=list(cfg.gan_fft_sizes),
                sample_rate=int(sample_rate),
            )

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[list, list]:
        """Feature maps of each sub-discriminator for fake and real [B, 1, T]."""
        maps = self.disc(torch.cat([fake, real]))
        n = fake.shape[0]
        return [[f[:n] for f in m] for m in maps], [[f[n:] for f in m] for m in maps]

    @staticmethod
    def discriminator_loss(d_fake: list, d_real: list) -> torch.Tensor:
        return sum(torch.mean(f[-1] ** 2) + torch.mean((1 - r[-1]) ** 2) for f, r in zip(d_fake, d_real))

    @staticmethod
    def generator_losses(d_fake: list, d_real: list) -> tuple[torch.Tensor, torch.Tensor]:
        """(adversarial, feature matching): LSGAN term and L1 between fake and real feature maps."""
        adv = sum(torch.mean((1 - f[-1]) ** 2) for f in d_fake)
        fm = sum(F.l1_loss(f[j], r[j].detach()) for f, r in zip(d_fake, d_real) for j in range(len(f) - 1))
        return adv, fm
