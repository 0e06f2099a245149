"""Descript Audio Codec (DAC) as an eegcodec backend.

Weights files use DAC's own format (what ``dac.DAC.save(path, package=False)``
writes): ``{"state_dict": ..., "metadata": {"kwargs": <DAC constructor
arguments>, ...}}``. eegcodec adds ``metadata["eegcodec"]`` (name, adapter
settings, training record); plain DAC files without it load with default
adapter settings at the model's own sampling rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...adapt import AdapterConfig
from ...errors import EegcodecError
from ..base import CodecInfo, PerChannelCodec
from ..weights import state_dict_sha256
from .files import read_dac_file
from .network import build_dac, fit_length, fold_weight_norm


class DACCodec(PerChannelCodec):
    """A ``dac.DAC`` model behind the :class:`Codec` interface.

    Parameters
    ----------
    model : a ``dac.DAC`` with loaded weights.
    info : :class:`CodecInfo` (its ``weights_sha256`` must describe ``model``'s weights).
    """

    def __init__(self, model, info: CodecInfo):
        self.model = model.eval()
        self.info = info
        self.device = torch.device("cpu")
        fold_weight_norm(self.model)
        self._codebooks: list[torch.Tensor] | None = None

    def to(self, device: str | torch.device) -> DACCodec:
        super().to(device)
        self._codebooks = None
        return self

    def _normalised_codebooks(self) -> list[torch.Tensor]:
        if self._codebooks is None:
            self._codebooks = [F.normalize(q.codebook.weight, dim=1) for q in self.model.quantizer.quantizers]
        return self._codebooks

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, n_codebooks: int) -> torch.Tensor:
        """x float32 [B, 1, T] -> codes int64 [B, n_codebooks, T // hop].

        Same codes as ``dac.DAC.encode`` (nearest L2-normalised codebook entry per
        residual stage), computed as an argmax of dot products, which is faster.
        """
        self.check_depth(n_codebooks)
        residual = self.model.encoder(x.to(self.device))
        codebooks = self._normalised_codebooks()
        codes = []
        for q, cb in zip(self.model.quantizer.quantizers[:n_codebooks], codebooks):
            z_e = q.in_proj(residual)  # [B, d, F]
            b, d, f = z_e.shape
            enc = F.normalize(z_e.transpose(1, 2).reshape(-1, d), dim=1)
            idx = (enc @ cb.t()).argmax(dim=1).view(b, f)
            residual = residual - q.out_proj(q.codebook(idx).transpose(1, 2))
            codes.append(idx)
        return torch.stack(codes, dim=1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes int64 [B, K, F] -> float32 [B, 1, F * hop]."""
        z_q, _, _ = self.model.quantizer.from_codes(codes.to(self.device))
        return fit_length(self.model.decode(z_q).float(), codes.shape[-1] * self.info.hop_length)

    @torch.inference_mode()
    def codes_to_latents(self, codes: np.ndarray) -> torch.Tensor:
        """codes int64 [B, K, F] -> z_q float32 [B, latent_dim, F] (what DAC's decoder consumes)."""
        z_q, _, _ = self.model.quantizer.from_codes(torch.as_tensor(codes).to(self.device))
        return z_q.float()


def dac_codec_info(model, blob: dict, path: str | Path, name: str | None, kind: str) -> CodecInfo:
    """The :class:`CodecInfo` of a ``dac.DAC`` ``model`` loaded from a DAC-format file's ``blob``
    (name, adapter and recommended depth from ``metadata['eegcodec']`` when present)."""
    meta = blob["metadata"].get("eegcodec", {})
    adapter = (
        AdapterConfig.from_dict(meta["adapter"])
        if "adapter" in meta
        else AdapterConfig(model_rate=float(model.sample_rate))
    )
    return CodecInfo(
        name=name or meta.get("name") or Path(path).stem,
        kind=kind,
        sample_rate=float(model.sample_rate),
        hop_length=int(model.hop_length),
        n_codebooks=int(model.n_codebooks),
        codebook_size=int(model.codebook_size),
        weights_sha256=state_dict_sha256(blob["state_dict"]),
        adapter=adapter,
        default_codebooks=min(int(meta.get("default_codebooks", model.n_codebooks)), int(model.n_codebooks)),
    )


def dac_codec_from_file(path: str | Path, name: str | None = None, blob: dict | None = None) -> DACCodec:
    """Load a DAC-format file (pretrained audio DAC or an eegcodec EEG checkpoint);
    ``blob`` is the file's content when already read."""
    blob = blob if blob is not None else read_dac_file(path)
    model = build_dac(dict(blob["metadata"]["kwargs"]))
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as exc:
        raise EegcodecError(f"cannot load model {path}: weights do not match its DAC arguments") from exc
    info = dac_codec_info(model, blob, path, name, "dac")
    return DACCodec(model, info)
