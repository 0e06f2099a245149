"""WavTokenizer as a trainable codec (the recipe family ``wavtokenizer``; ``model`` =
:class:`~eegcodec.backends.wavtokenizer.network.WavTokenizerConfig` fields plus ``variant``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...train.modules import TrainableCodec
from .codec import save_wavtokenizer_file
from .network import WavTokenizer, WavTokenizerConfig, load_wavtokenizer_state, read_wavtokenizer_state


class WavTokenizerTrainable(TrainableCodec):
    """A :class:`~eegcodec.backends.wavtokenizer.network.WavTokenizer`: one EMA codebook
    (updated in the forward pass, dead entries replaced there), commitment loss,
    decoder with ``bandwidth_id`` 0."""

    def __init__(self, model_args: dict):
        super().__init__()
        self.wt = WavTokenizer(WavTokenizerConfig.from_dict(model_args))
        self.hop_length = self.wt.hop_length
        self.n_codebooks = 1
        self.codebook_size = self.wt.cfg.codebook_size

    def forward(self, x: torch.Tensor, quantize: bool = True) -> dict:
        z = self.wt.encoder(x)
        zero = x.new_zeros(())
        if not quantize:
            return {
                "audio": self.wt.decode_features(z)[:, None],
                "codes": None,
                "latents": None,
                "commitment": zero,
                "codebook": zero,
            }
        z_q, codes, commitment = self.wt.quantizer(z)
        return {
            "audio": self.wt.decode_features(z_q)[:, None],
            "codes": codes[:, None],
            "latents": z,
            "commitment": commitment,
            "codebook": zero,
        }

    def reconstruct(self, x: torch.Tensor, n_codebooks: int = 1) -> torch.Tensor:
        return self.wt.decode(self.wt.encode(x[:, 0]))[:, None]

    def load_init(self, path: Path, name: str) -> None:
        """An official checkpoint (named ``wavtokenizer-75:PATH`` / ``wavtokenizer-40:PATH``) or an
        eegcodec export."""
        load_wavtokenizer_state(self.wt, read_wavtokenizer_state(path), str(path))

    def export(self, path: Path, meta: dict) -> None:
        save_wavtokenizer_file(self.wt, path, meta)

    @torch.no_grad()
    def seed_codebooks(self, x: torch.Tensor) -> None:
        """Codebook rows drawn from encoder frames of ``x`` (the official code runs k-means
        on its first batch; random frames are its first step)."""
        z = self.wt.encoder(x)
        flat = z.transpose(1, 2).reshape(-1, z.shape[1]).float()
        cb = self.wt.quantizer.codebook
        pick = torch.randint(len(flat), (cb.embed.shape[0],), device=flat.device)
        cb.embed.copy_(flat[pick])
        cb.embed_avg.copy_(flat[pick])
        cb.cluster_size.fill_(cb.dead_threshold)

    def codebook_tensors(self) -> list[torch.Tensor]:
        cb = self.wt.quantizer.codebook
        return [cb.embed, cb.embed_avg, cb.cluster_size]
