"""DAC as a trainable codec (the recipe family ``dac``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import EegcodecError
from ...train.modules import TrainableCodec
from .files import read_dac_file, save_dac_file
from .network import build_dac, fit_length


class DACTrainable(TrainableCodec):
    """A ``dac.DAC`` with DAC's residual VQ (factorised, L2-normalised codebooks)."""

    def __init__(self, model_args: dict):
        super().__init__()
        self.dac = build_dac(model_args)
        self.hop_length = int(self.dac.hop_length)
        self.n_codebooks = int(self.dac.n_codebooks)
        self.codebook_size = int(self.dac.codebook_size)

    def forward(self, x: torch.Tensor, quantize: bool = True) -> dict:
        z = self.dac.encoder(x)
        if quantize:
            z_q, codes, latents, commitment, codebook = self.dac.quantizer(z, None)
        else:  # the autoencoder alone (warm-up): no codes, no quantizer losses
            zero = x.new_zeros(())
            z_q, codes, latents, commitment, codebook = z, None, None, zero, zero
        return {
            "audio": fit_length(self.dac.decoder(z_q), x.shape[-1]),
            "codes": codes,
            "latents": latents,
            "commitment": commitment,
            "codebook": codebook,
        }

    def reconstruct(self, x: torch.Tensor, n_codebooks: int) -> torch.Tensor:
        z_q, *_ = self.dac.quantizer(self.dac.encoder(x), n_quantizers=n_codebooks)
        return fit_length(self.dac.decode(z_q), x.shape[-1])

    @classmethod
    def arguments(cls, model_args: dict, init: Path | None) -> dict:
        """A DAC file records its constructor arguments: start from those (so a recipe
        fine-tuning ``dac_16khz`` need not repeat them), then apply the recipe's."""
        if init is None:
            return model_args
        return {**read_dac_file(init)["metadata"]["kwargs"], **model_args}

    def load_init(self, path: Path, name: str) -> None:
        try:
            self.dac.load_state_dict(read_dac_file(path)["state_dict"], strict=True)
        except RuntimeError as exc:
            raise EegcodecError(
                f"init weights {name} do not fit the recipe's model arguments: {str(exc).splitlines()[0]}"
            ) from exc

    def export(self, path: Path, meta: dict) -> None:
        save_dac_file(self.dac, path, meta)

    @torch.no_grad()
    def seed_codebooks(self, x: torch.Tensor) -> None:
        """Each codebook gets latents of ``x``, stage by stage down the residual."""
        self._seed(self.dac, self.dac.encoder(x))

    @staticmethod
    def _seed(dac, residual: torch.Tensor) -> None:
        """Codebooks from encoder latents ``residual`` [N, D, F], stage by stage."""
        for vq in dac.quantizer.quantizers:
            z_e = vq.in_proj(residual)
            flat = z_e.transpose(1, 2).reshape(-1, z_e.shape[1])
            pick = torch.randint(len(flat), (vq.codebook.weight.shape[0],), device=flat.device)
            vq.codebook.weight.data[:] = flat[pick] + 1e-3 * torch.randn_like(flat[pick])
            z_q, *_ = vq(residual)
            residual = residual - z_q

    @torch.no_grad()
    def reset_dead_codes(self, usage: torch.Tensor, latents: torch.Tensor) -> None:
        """``latents`` [B, n_q * d, F] are DAC's per-quantizer projected inputs.

        Without this, DAC's factorised codebooks collapse to a handful of entries
        when trained briefly from scratch."""
        self._reset(self.dac, usage, latents)

    @staticmethod
    def _reset(dac, usage: torch.Tensor, latents: torch.Tensor) -> None:
        offset = 0
        for q, vq in enumerate(dac.quantizer.quantizers):
            d = vq.codebook.weight.shape[1]
            dead = torch.nonzero(usage[q] == 0).flatten()
            if len(dead):
                cand = latents[:, offset : offset + d].transpose(1, 2).reshape(-1, d)
                pick = torch.randint(len(cand), (len(dead),), device=cand.device)
                vq.codebook.weight.data[dead] = cand[pick].float() + 1e-3 * torch.randn(
                    len(dead), d, device=cand.device
                )
            offset += d

    def codebook_tensors(self) -> list[torch.Tensor]:
        return [vq.codebook.weight.data for vq in self.dac.quantizer.quantizers]
