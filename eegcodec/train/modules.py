"""Trainable codec networks behind one interface, so one trainer serves every family.

A recipe's ``family`` picks the class: ``dac`` (:class:`DACTrainable`, ``model`` =
``dac.DAC`` arguments), ``dac_mc`` (:class:`DACMCTrainable`, ``model`` = ``dac.DAC``
arguments plus :class:`MCSettings`) or ``wavtokenizer`` (:class:`WavTokenizerTrainable`,
``model`` = :class:`~eegcodec.codecs.wavtokenizer.WavTokenizerConfig` fields plus
``variant``). Single-channel families take codec-domain windows ``x`` [B, 1, T], T a
multiple of hop; DAC-MC takes a dict of multi-channel windows (see its class).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import EegcodecError


class TrainableCodec(nn.Module):
    """What the trainer needs of a network. ``forward`` is what DDP synchronises."""

    hop_length: int
    n_codebooks: int
    codebook_size: int

    def make_batch(self, bank, n: int, rng, device, validation: bool = False):
        """A batch of ``n`` windows from a :class:`~eegcodec.train.data.WindowBank` (the fixed
        validation batch when ``validation``): here x [n, 1, T] (one channel per window)."""
        return torch.from_numpy(bank.sample(n, rng)).to(device)

    def target(self, batch) -> torch.Tensor:
        """The windows a batch must reconstruct, [N, 1, T] (what the losses compare ``audio`` with)."""
        return batch

    def forward(self, batch, quantize: bool = True) -> dict:
        """``audio`` [N, 1, T] (as :meth:`target`); with ``quantize`` also ``codes`` [B, K, F],
        ``latents`` (quantizer inputs, [B, K*d, F]) and the VQ loss terms ``commitment`` and
        ``codebook``; without it the quantizer is bypassed (autoencoder warm-up)."""
        raise NotImplementedError

    def reconstruct(self, batch, n_codebooks: int) -> torch.Tensor:
        """Inference at codebook depth ``n_codebooks``: batch -> [N, 1, T]."""
        raise NotImplementedError

    @classmethod
    def arguments(cls, model_args: dict, init: str) -> dict:
        """Constructor arguments: the recipe's, completed from ``init``'s file where it says them."""
        return model_args

    def load_init(self, name: str) -> None:
        """Initialise from a model name or path (e.g. a pretrained audio codec)."""
        raise NotImplementedError

    def export(self, path: Path, meta: dict) -> None:
        """Write a file ``eegcodec.load_codec(path)`` loads, carrying ``meta``."""
        raise NotImplementedError

    def seed_codebooks(self, x: torch.Tensor) -> None:
        """Set the codebooks from latents of ``x`` (after autoencoder warm-up)."""

    def reset_dead_codes(self, usage: torch.Tensor, latents: torch.Tensor) -> None:
        """Re-seed entries with zero ``usage`` [K, codebook_size] from ``latents``."""

    def codebook_tensors(self) -> list[torch.Tensor]:
        """Codebook tensors rank 0 broadcasts after seeding or resetting."""
        return []


class DACTrainable(TrainableCodec):
    """A ``dac.DAC`` with DAC's residual VQ (factorised, L2-normalised codebooks)."""

    def __init__(self, model_args: dict):
        super().__init__()
        from ..codecs.dac_codec import build_dac

        self.dac = build_dac(model_args)
        self.hop_length = int(self.dac.hop_length)
        self.n_codebooks = int(self.dac.n_codebooks)
        self.codebook_size = int(self.dac.codebook_size)

    def forward(self, x: torch.Tensor, quantize: bool = True) -> dict:
        from ..codecs.dac_codec import fit_length

        z = self.dac.encoder(x)
        if not quantize:
            zero = x.new_zeros(())
            return {
                "audio": fit_length(self.dac.decoder(z), x.shape[-1]),
                "codes": None,
                "latents": None,
                "commitment": zero,
                "codebook": zero,
            }
        z_q, codes, latents, commitment, codebook = self.dac.quantizer(z, None)
        return {
            "audio": fit_length(self.dac.decoder(z_q), x.shape[-1]),
            "codes": codes,
            "latents": latents,
            "commitment": commitment,
            "codebook": codebook,
        }

    def reconstruct(self, x: torch.Tensor, n_codebooks: int) -> torch.Tensor:
        from ..codecs.dac_codec import fit_length

        z_q, *_ = self.dac.quantizer(self.dac.encoder(x), n_quantizers=n_codebooks)
        return fit_length(self.dac.decode(z_q), x.shape[-1])

    @classmethod
    def arguments(cls, model_args: dict, init: str) -> dict:
        """A DAC file records its constructor arguments: start from those (so a recipe
        fine-tuning ``dac_16khz`` need not repeat them), then apply the recipe's."""
        if init == "scratch":
            return model_args
        from ..codecs.dac_codec import read_dac_file
        from ..models import resolve_model

        return {**read_dac_file(resolve_model(init)[0])["metadata"]["kwargs"], **model_args}

    def load_init(self, name: str) -> None:
        from ..codecs.dac_codec import read_dac_file
        from ..models import resolve_model

        path, _ = resolve_model(name)
        try:
            self.dac.load_state_dict(read_dac_file(path)["state_dict"], strict=True)
        except RuntimeError as exc:
            raise EegcodecError(
                f"init weights {name} do not fit the recipe's model arguments: {str(exc).splitlines()[0]}"
            ) from exc

    def export(self, path: Path, meta: dict) -> None:
        from ..codecs.dac_codec import save_dac_file

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


class WavTokenizerTrainable(TrainableCodec):
    """A :class:`~eegcodec.codecs.wavtokenizer.WavTokenizer`: one EMA codebook
    (updated in the forward pass, dead entries replaced there), commitment loss,
    decoder with ``bandwidth_id`` 0."""

    def __init__(self, model_args: dict):
        super().__init__()
        from ..codecs.wavtokenizer import WavTokenizer, WavTokenizerConfig

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

    def load_init(self, name: str) -> None:
        """``wavtokenizer-75:PATH`` / ``wavtokenizer-40:PATH`` (official) or an eegcodec export."""
        from ..codecs.wavtokenizer import load_wavtokenizer_state, read_wavtokenizer_state
        from ..models import WAVTOKENIZER_NAME

        m = WAVTOKENIZER_NAME.fullmatch(name)
        path = Path(m.group(2) if m else name).expanduser()
        load_wavtokenizer_state(self.wt, read_wavtokenizer_state(path), str(path))

    def export(self, path: Path, meta: dict) -> None:
        from ..codecs.wavtokenizer_codec import save_wavtokenizer_file

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
    """DAC-MC (:class:`~eegcodec.codecs.dac_mc.DACMC`). A batch is a dict: ``x`` [B, n, T]
    codec-domain windows of n channels of one recording each, ``positions`` [B, n, 3], ``known`` [B, n].

    Each step draws n (uniform in 1..max_channels; fewer when no recording has that many)
    and B = channel_windows // n windows; each window's channels are a pivot electrode and
    channels drawn with probability decreasing with their distance from it
    (:func:`~eegcodec.montage.pivot_subset`), so the model sees many local montages."""

    def __init__(self, model_args: dict):
        super().__init__()
        from ..codecs.dac_mc import DACMC
        from ..montage import standard_positions

        self.settings = MCSettings(**{k: model_args[k] for k in MCSettings.KEYS if k in model_args})
        dac_args = {k: v for k, v in model_args.items() if k not in MCSettings.KEYS}
        self.mc = DACMC(dac_args, n_spatial=self.settings.n_spatial, heads=self.settings.heads)
        self.table = standard_positions()
        self.hop_length = self.mc.hop_length
        self.n_codebooks = int(self.mc.dac.n_codebooks)
        self.codebook_size = int(self.mc.dac.codebook_size)
        self._montages: dict[tuple, object] = {}

    def _montage(self, names: list[str]):
        from ..montage import Montage

        key = tuple(names)
        if key not in self._montages:
            self._montages[key] = Montage.from_names(names, self.table)
        return self._montages[key]

    def make_batch(self, bank, n: int, rng, device, validation: bool = False) -> dict:
        """Training: ``channel_windows // c`` windows of c channels (``n``, the batch size,
        only when ``channel_windows`` is 0). Validation: ``n`` windows of the most channels
        allowed (``max_channels``, or the largest montage in the bank), the compress-time case."""
        from ..montage import pivot_subset

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
    def arguments(cls, model_args: dict, init: str) -> dict:
        """From a DAC or DAC-MC file: its DAC arguments, then the recipe's keys."""
        return DACTrainable.arguments(model_args, init)

    def load_init(self, name: str) -> None:
        """A DAC-MC file loads whole; a DAC file (audio-pretrained or EEG) fills the per-channel
        encoder, quantizer and decoder, the cross-channel blocks keep their identity start."""
        from ..codecs.dac_codec import read_dac_file
        from ..codecs.dac_mc import is_dacmc_file
        from ..models import resolve_model

        blob = read_dac_file(resolve_model(name)[0])
        target = self.mc if is_dacmc_file(blob) else self.mc.dac
        try:
            target.load_state_dict(blob["state_dict"], strict=True)
        except RuntimeError as exc:
            raise EegcodecError(
                f"init weights {name} do not fit the recipe's model arguments: {str(exc).splitlines()[0]}"
            ) from exc

    def export(self, path: Path, meta: dict) -> None:
        from ..codecs.dac_mc import save_dacmc_file

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


FAMILIES = {"dac": DACTrainable, "wavtokenizer": WavTokenizerTrainable, "dac_mc": DACMCTrainable}


def build_trainable(family: str, model_args: dict, init: str = "scratch") -> TrainableCodec:
    """The network of a recipe, initialised from ``init`` unless it is ``"scratch"``."""
    if family not in FAMILIES:
        raise EegcodecError(f"recipe family must be one of {sorted(FAMILIES)}, got {family!r}")
    cls = FAMILIES[family]
    model = cls(cls.arguments(model_args, init))
    if init != "scratch":
        model.load_init(init)
    return model
