"""The shared-space mapper: M_A, M_B, predictor P, and the losses.

Shapes (B windows; D_a, D_b: encoder latent sizes; F_B EEG frames per window, r audio
frames per EEG frame, F_A = r * F_B; D_z: shared size):

* M_B: E_B [B, D_b, F_B + 2] -> Z_B [B, D_z, F_B] (width-3 convolution over EEG frames, so
  each shared frame sees its EEG frame and one either side: the brain's lag, then 1x1).
* M_A: E_A [B, D_a, F_A] -> Z_A [B, D_z, F_B] (1x1, then the mean over each EEG frame's r
  audio frames: the shared space runs at the EEG frame rate, the slower of the two).
* P: Z_B [B, D_z, F_B] -> Ê_A [B, D_a, F_A] (transposed convolution by r, then width-5).

Inputs are standardised per latent dimension with training-set statistics (buffers
``mean_a/std_a``, ``mean_b/std_b``); P predicts standardised E_A, so L_rec = 1 is the
error of always predicting the mean, and :meth:`AlignModel.unstandardise_a` gives E_A
units back for the audio decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AlignModel(nn.Module):
    """M_A, M_B, P and the InfoNCE temperature.

    Parameters
    ----------
    dim_a, dim_b : D_a, D_b (E_B flattened over rows).
    ratio : audio frames per EEG frame.
    shared_dim : D_z.
    hidden : width of the hidden layers.
    dropout : dropout in M_B (the EEG side is the noisy one).
    temperature : initial InfoNCE temperature (learned as its log inverse).
    """

    def __init__(
        self,
        dim_a: int,
        dim_b: int,
        ratio: int,
        shared_dim: int = 128,
        hidden: int = 256,
        dropout: float = 0.1,
        temperature: float = 0.1,
    ):
        super().__init__()
        self.dims = {
            "dim_a": dim_a,
            "dim_b": dim_b,
            "ratio": ratio,
            "shared_dim": shared_dim,
            "hidden": hidden,
            "dropout": dropout,
            "temperature": temperature,
        }
        self.ratio = ratio
        self.m_b = nn.Sequential(
            nn.Dropout(dropout),
            nn.Conv1d(dim_b, hidden, 3),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Conv1d(hidden, shared_dim, 1),
        )
        self.m_a = nn.Sequential(
            nn.Conv1d(dim_a, hidden, 1), nn.GELU(), nn.AvgPool1d(ratio), nn.Conv1d(hidden, shared_dim, 1)
        )
        self.p = nn.Sequential(
            nn.ConvTranspose1d(shared_dim, hidden, ratio, stride=ratio),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(hidden, dim_a, 1),
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))
        for name, d in (("a", dim_a), ("b", dim_b)):
            self.register_buffer(f"mean_{name}", torch.zeros(d, 1))
            self.register_buffer(f"std_{name}", torch.ones(d, 1))

    def set_statistics(self, e_a: torch.Tensor, e_b: torch.Tensor) -> None:
        """Standardisation from training windows e_a [N, D_a, F_A], e_b [N, D_b, F]."""
        for name, e in (("a", e_a), ("b", e_b)):
            flat = e.transpose(0, 1).reshape(e.shape[1], -1)
            getattr(self, f"mean_{name}").copy_(flat.mean(1, keepdim=True))
            getattr(self, f"std_{name}").copy_(flat.std(1, keepdim=True).clamp_min(1e-6))

    def standardise_a(self, e_a: torch.Tensor) -> torch.Tensor:
        return (e_a - self.mean_a) / self.std_a

    def unstandardise_a(self, e_a_std: torch.Tensor) -> torch.Tensor:
        return e_a_std * self.std_a + self.mean_a

    def map_b(self, e_b: torch.Tensor) -> torch.Tensor:
        """E_B [B, D_b, F_B + 2] -> Z_B [B, D_z, F_B]."""
        return self.m_b((e_b - self.mean_b) / self.std_b)

    def map_a(self, e_a: torch.Tensor) -> torch.Tensor:
        """E_A [B, D_a, F_A] -> Z_A [B, D_z, F_B]."""
        return self.m_a(self.standardise_a(e_a))

    def predict(self, z_b: torch.Tensor) -> torch.Tensor:
        """Z_B [B, D_z, F_B] -> standardised Ê_A [B, D_a, F_A]."""
        return self.p(z_b)

    def forward(self, e_a: torch.Tensor, e_b: torch.Tensor) -> dict:
        z_b = self.map_b(e_b)
        return {
            "z_a": self.map_a(e_a),
            "z_b": z_b,
            "e_a_hat": self.predict(z_b),
            "e_a": self.standardise_a(e_a),
        }


# ----------------------------------------------------------------------------- losses


def _flat_unit(z: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B, n] rows of unit L2 norm."""
    return F.normalize(z.reshape(z.shape[0], -1), dim=1)


def align_mse(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """mean (Z_A - Z_B)^2 over every element."""
    return F.mse_loss(z_b, z_a)


def align_cosine(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """mean over windows of 1 - cos(Z_A, Z_B), each window's Z flattened."""
    return (1 - (_flat_unit(z_a) * _flat_unit(z_b)).sum(1)).mean()


def align_infonce(z_a: torch.Tensor, z_b: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): logits = exp(log_scale) * cos(Z_B_i, Z_A_j); cross-entropy
    toward the diagonal, EEG->audio and audio->EEG averaged. The scale is capped at 100."""
    logits = log_scale.clamp(max=math.log(100)).exp() * _flat_unit(z_b) @ _flat_unit(z_a).t()
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def reconstruction(e_a_hat: torch.Tensor, e_a: torch.Tensor) -> torch.Tensor:
    """L_rec = mean (Ê_A - E_A)^2 (standardised units)."""
    return F.mse_loss(e_a_hat, e_a)


def align_loss(kind: str, z_a: torch.Tensor, z_b: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    if kind == "mse":
        return align_mse(z_a, z_b)
    if kind == "cosine":
        return align_cosine(z_a, z_b)
    return align_infonce(z_a, z_b, log_scale)
