"""DAC-MC as a trainable codec (the recipe family ``dac_mc``; ``model`` = ``dac.DAC`` arguments
plus :class:`MCSettings`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import EegcodecError
from ...montage import Montage, pivot_subset, standard_positions
from ...train.modules import TrainableCodec
from ..dac.files import read_dac_file
from ..dac.trainable import DACTrainable
from .files import save_dacmc_file
from .format import is_dacmc_file
from .network import DACMC


@dataclass
class MCSettings:
    """DAC-MC settings of a recipe's ``model`` section (the other keys are ``dac.DAC`` arguments)."""

    n_spatial: int = 8  #: most spatial tokens per frame (codes per frame per codebook)
    heads: int = 4
    max_channels: int = 32  #: most channels per training window
    channel_windows: int = 64  #: channel-windows per batch: windows = max(1, channel_windows // n)
    pivot_scale: float = 0.3  #: distance scale of the pivot subset sampler (position units of 10 cm: 3 cm)
    fixed_channels: int | None = None  #: draw this many channels every step (None: 1..max_channels)

    KEYS = ("n_spatial", "heads", "max_channels", "channel_windows", "pivot_scale", "fixed_channels")


class DACMCTrainable(TrainableCodec):
    """DAC-MC (:class:`~eegcodec.backends.dac_mc.network.DACMC`). A batch is a dict: ``x`` [B, n, T]
    codec-domain windows of n channels of one recording each, ``positions`` [B, n, 3], ``known`` [B, n].

    Each step draws n (uniform in 1..max_channels; fewer when no recording has that many)
    and B = channel_windows // n windows; each window's channels are a pivot electrode and
    channels drawn with probability decreasing with their distance from it
    (:func:`~eegcodec.montage.pivot_subset`), so the model sees many local montages."""

    def __init__(self, model_args: dict):
        super().__init__()
        self.settings = MCSettings(**{k: model_args[k] for k in MCSettings.KEYS if k in model_args})
        dac_args = {k: v for k, v in model_args.items() if k not in MCSettings.KEYS}
        self.mc = DACMC(dac_args, n_spatial=self.settings.n_spatial, heads=self.settings.heads)
        self.table = standard_positions()
        self.hop_length = self.mc.hop_length
        self.n_codebooks = int(self.mc.dac.n_codebooks)
        self.codebook_size = int(self.mc.dac.codebook_size)
        self._montages: dict[tuple, object] = {}

    def _montage(self, names: list[str]):
        key = tuple(names)
        if key not in self._montages:
            self._montages[key] = Montage.from_names(names, self.table)
        return self._montages[key]

    def make_batch(self, bank, n: int, rng, device, validation: bool = False) -> dict:
        """Training: ``channel_windows // c`` windows of c channels (``n``, the batch size,
        only when ``channel_windows`` is 0). Validation: ``n`` windows of the most channels
        allowed (``max_channels``, or the largest montage in the bank), the compress-time case."""
        st = self.settings
        most = min(st.max_channels, max(len(names) for names in bank.names))
        c = most if validation else min(st.fixed_channels or int(rng.integers(1, most + 1)), most)
        windows = n if validation or not st.channel_windows else max(1, st.channel_windows // c)

        def pick(chunk: int, k: int, rng) -> np.ndarray:
            return pivot_subset(self._montage(bank.names[chunk]).positions, k, rng, st.pivot_scale)

        x, chosen = bank.sample_channels(windows, c, pick, rng)
        pos = np.stack([self._montage(bank.names[w]).positions[rows] for w, rows in chosen])
        known = np.stack([self._montage(bank.names[w]).known[rows] for w, rows in chosen])
        return {
            "x": torch.from_numpy(x).to(device),
            "positions": torch.from_numpy(pos).to(device),
            "known": torch.from_numpy(known).to(device),
        }

    def target(self, batch) -> torch.Tensor:
        x = batch["x"]
        return x.reshape(-1, 1, x.shape[-1])

    def forward(self, batch, quantize: bool = True) -> dict:
        out = self.mc(batch["x"], batch["positions"], batch["known"], quantize=quantize)
        out["audio"] = out["audio"].reshape(-1, 1, out["audio"].shape[-1])
        return out

    def reconstruct(self, batch, n_codebooks: int) -> torch.Tensor:
        y = self.mc(batch["x"], batch["positions"], batch["known"], n_quantizers=n_codebooks)["audio"]
        return y.reshape(-1, 1, y.shape[-1])

    @classmethod
    def arguments(cls, model_args: dict, init: Path | None) -> dict:
        """From a DAC or DAC-MC file: its DAC arguments, then the recipe's keys."""
        return DACTrainable.arguments(model_args, init)

    def load_init(self, path: Path, name: str) -> None:
        """A DAC-MC file loads whole; a DAC file (audio-pretrained or EEG) fills the per-channel
        encoder, quantizer and decoder, the cross-channel blocks keep their identity start."""
        blob = read_dac_file(path)
        target = self.mc if is_dacmc_file(blob) else self.mc.dac
        try:
            target.load_state_dict(blob["state_dict"], strict=True)
        except RuntimeError as exc:
            raise EegcodecError(
                f"init weights {name} do not fit the recipe's model arguments: {str(exc).splitlines()[0]}"
            ) from exc

    def export(self, path: Path, meta: dict) -> None:
        save_dacmc_file(self.mc, path, meta, self.table)

    @torch.no_grad()
    def seed_codebooks(self, batch) -> None:
        """Codebooks from the spatial latents of ``batch``."""
        s_lat = self.mc.encode_latents(batch["x"], self.mc.embed(batch["positions"], batch["known"]))
        DACTrainable._seed(self.mc.dac, s_lat.reshape(-1, *s_lat.shape[2:]))

    @torch.no_grad()
    def reset_dead_codes(self, usage: torch.Tensor, latents: torch.Tensor) -> None:
        DACTrainable._reset(self.mc.dac, usage, latents)

    def codebook_tensors(self) -> list[torch.Tensor]:
        return [vq.codebook.weight.data for vq in self.mc.dac.quantizer.quantizers]
