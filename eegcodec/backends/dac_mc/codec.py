"""DAC-MC behind the :class:`~eegcodec.backends.base.Codec` contract: code rows are spatial
tokens, and the channels' montage goes into the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...montage import Montage
from ..base import Codec, CodecInfo
from ..dac.codec import dac_codec_info
from ..dac.files import read_dac_file
from ..dac.network import fold_weight_norm
from .files import build_dacmc
from .format import MC_KEY
from .network import DACMC


class DACMCCodec(Codec):
    """A :class:`DACMC` behind the :class:`Codec` interface: code rows are spatial tokens
    (``min(n_spatial, channels)`` per chunk), and the channels' montage goes into the file."""

    def __init__(self, model: DACMC, info: CodecInfo, position_table: dict):
        self.model = model.eval()
        fold_weight_norm(self.model)
        self.info = info
        self.position_table = position_table
        self.device = torch.device("cpu")
        self.max_code_rows = int(model.n_spatial)

    def montage(self, names: list[str]) -> Montage:
        return Montage.from_names(names, self.position_table)

    def code_rows(self, n_channels: int) -> int:
        return self.model.spatial_tokens(n_channels) if n_channels else 0

    def _emb(self, montage: Montage) -> torch.Tensor:
        pos = torch.from_numpy(montage.positions).to(self.device)[None]
        known = torch.from_numpy(montage.known).to(self.device)[None]
        return self.model.embed(pos, known)

    @torch.inference_mode()
    def encode_channels(self, x: np.ndarray, n_codebooks: int, montage: Montage) -> np.ndarray:
        """x float32 [C, T] -> codes int64 [S, n_codebooks, T // hop]."""
        self.check_depth(n_codebooks)
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(self.device)
        s_lat = self.model.encode_latents(x, self._emb(montage))
        _, codes, *_ = self.model.quantize(s_lat[0], s_lat.shape[1], n_codebooks)
        return codes.cpu().numpy()

    @torch.inference_mode()
    def decode_channels(self, codes: np.ndarray, montage: Montage) -> np.ndarray:
        """codes int64 [S, K, F] -> float32 [C, F * hop]."""
        zq = self.codes_to_latents(codes)
        return self.model.decode_latents(zq[None], self._emb(montage))[0].float().cpu().numpy()

    @torch.inference_mode()
    def codes_to_latents(self, codes: np.ndarray) -> torch.Tensor:
        """codes int64 [S, K, F] -> quantized spatial tokens float32 [S, latent_dim, F]."""
        zq, _, _ = self.model.dac.quantizer.from_codes(torch.as_tensor(codes).to(self.device))
        return zq.float()


def dacmc_codec_from_file(path: str | Path, name: str | None = None, blob: dict | None = None) -> DACMCCodec:
    """Load a DAC-MC file; ``blob`` is its content when already read."""
    blob = blob if blob is not None else read_dac_file(path)
    model = build_dacmc(blob)
    info = dac_codec_info(model.dac, blob, path, name, "dac-mc")
    return DACMCCodec(model, info, blob["metadata"][MC_KEY]["positions"])
