"""Training a codec: :class:`Trainer`, the :class:`~eegcodec.train.base.BaseTrainer` of the
codec families (:data:`eegcodec.backends.registry.FAMILIES`): its network, windows, losses,
codebook seeding and resets, validation and figures. The loop, checkpoints and the output
folder: :mod:`eegcodec.train.base`."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch

from ..backends.registry import build_trainable
from ..errors import EegcodecError
from ..metrics import spectral_error_db
from .augment import augment
from .base import BaseTrainer
from .config import recipe_to_dict
from .data import PackedWindowBank, split_recordings, window_bank
from .losses import Adversary, codec_loss, gan_enabled


def _windowed_metrics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """PRD (median over windows) and pooled SNR of codec-domain windows [N, T]."""
    xc = x - x.mean(axis=1, keepdims=True)
    err = ((x - y) ** 2).sum(axis=1)
    ref = (xc**2).sum(axis=1)
    ok = ref > 0
    return {
        "prd_percent": float(np.median(100 * np.sqrt(err[ok] / ref[ok]))),
        "snr_db": float(10 * np.log10(ref.sum() / max(err.sum(), 1e-20))),
    }


class Trainer(BaseTrainer):
    """Train a codec (any family of :data:`eegcodec.backends.registry.FAMILIES`) on EEG (or audio) windows
    as a :class:`~eegcodec.train.config.TrainConfig` recipe says."""

    def build(self) -> torch.nn.Module:
        cfg = self.cfg
        model = build_trainable(cfg.family, cfg.model, cfg.init).to(self.device)
        self.hop = model.hop_length
        window = int(round(cfg.data.window_seconds * cfg.adapter.model_rate))
        if cfg.data.packed:
            train_files, val_files = [], []
            self.train_bank = PackedWindowBank(Path(cfg.data.packed) / "train.npz", self.hop, window)
            val = Path(cfg.data.packed) / "val.npz"
            self.val_bank = PackedWindowBank(val, self.hop, window) if val.exists() else None
        else:
            train_files, val_files = split_recordings(cfg.data)
            self.train_bank = window_bank(train_files, cfg.adapter, self.hop, window, cfg.data.cache_dir)
            self.val_bank = (
                window_bank(val_files, cfg.adapter, self.hop, window, cfg.data.cache_dir)
                if val_files
                else None
            )
        if cfg.augment.enabled:  # training draws only; the validation batch stays as recorded
            rate, settings = cfg.adapter.model_rate, cfg.augment
            self.train_bank.augment = lambda x, rng: augment(x, settings, rng, rate)
        # fixed validation batch; val_x [N, 1, T] are its codec-domain windows (the targets)
        self.val_batch = (
            model.make_batch(
                self.val_bank, cfg.val_windows, np.random.default_rng(12345), self.device, validation=True
            )
            if self.val_bank
            else None
        )
        self.val_x = None if self.val_batch is None else model.target(self.val_batch).cpu().numpy()
        self.train_files, self.val_files = train_files, val_files
        # autoencoder warm-up and codebook seeding only make sense from scratch:
        # they would overwrite a pretrained model's codebooks
        self.vq_warmup = cfg.optim.vq_warmup_steps if cfg.init == "scratch" else 0
        self.find_unused = self.vq_warmup > 0
        self._usage: torch.Tensor | None = None
        self.adversary = self.adv_net = None
        if gan_enabled(cfg.loss):
            self.adversary = Adversary(cfg.loss, cfg.adapter.model_rate).to(self.device)
            self.adv_net = self.adversary
            if self.world > 1:
                self.adv_net = torch.nn.parallel.DistributedDataParallel(
                    self.adversary, device_ids=[self.local_rank] if self.device.type == "cuda" else None
                )
            self.opt_d = self._adamw(self.adversary)
            self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, self._lr_factor)
        return model

    def extra_state(self) -> dict:
        return {
            "code_usage": self._usage,
            "adversary": None
            if self.adversary is None
            else {
                "model": self.adversary.state_dict(),
                "opt": self.opt_d.state_dict(),
                "sched": self.sched_d.state_dict(),
            },
        }

    def load_extra_state(self, state: dict) -> None:
        self._usage = state["code_usage"]
        if self.adversary is not None:
            if not state.get("adversary"):
                raise EegcodecError(
                    f"resume: {self.out / 'state.pt'} was saved without discriminators, but the recipe "
                    f"enables adversarial losses"
                )
            self.adversary.load_state_dict(state["adversary"]["model"])
            self.opt_d.load_state_dict(state["adversary"]["opt"])
            self.sched_d.load_state_dict(state["adversary"]["sched"])

    def _export(self, path: Path) -> None:
        meta = {
            "name": self.cfg.name,
            "adapter": self.cfg.adapter.to_dict(),
            **({"default_codebooks": self.cfg.default_codebooks} if self.cfg.default_codebooks else {}),
            "training": {
                "recipe": recipe_to_dict(self.cfg),
                "step": self.step,
                "elapsed_s": round(self.elapsed, 1),
                "world_size": self.world,
                "device": torch.cuda.get_device_name(0)
                if self.device.type == "cuda"
                else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
                "train_files": [p.name for p in self.train_files],
                "val_files": [p.name for p in self.val_files],
                "last_val": self.history[-1] if self.history else None,
            },
        }
        self.model.export(path, meta)

    # ------------------------------------------------------------------ loop
    def train_step(self) -> dict[str, float]:
        """One optimiser step on a fresh random batch; returns the loss terms."""
        self.model.train()
        batch = self.model.make_batch(self.train_bank, self.cfg.batch_size, self.rng, self.device)
        x = self.model.target(batch)
        quantize = self.step >= self.vq_warmup
        if quantize and self.step == self.vq_warmup and self.step > 0:
            self._seed_codebooks()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            out = self.net(batch, quantize=quantize)
        codes = out["codes"]
        y = out["audio"].float()
        terms = codec_loss(x, y, out["commitment"], out["codebook"], self.cfg.loss)
        if self.adversary is not None:
            terms.update(self._adversarial_terms(x, y))
            terms["total"] = (
                terms["total"]
                + self.cfg.loss.adversarial * terms["adversarial"]
                + self.cfg.loss.feature_matching * terms["feature_matching"]
            )
        self.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        reset_every = self.cfg.optim.code_reset_every
        if quantize and reset_every:  # usage counts serve only the dead-code reset
            self._count_usage(codes)
            if self.step % reset_every == 0:
                self._reset_dead_codes(out["latents"].detach())
        result = {k: float(v.detach()) for k, v in terms.items()}
        result["grad_norm"] = float(gnorm)
        result["codes"] = None if codes is None else codes.detach()
        return result

    def _adversarial_terms(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator step on (y detached, x), then the generator's adversarial and
        feature-matching terms on (y, x) (backpropagated with the other terms)."""
        d_fake, d_real = self.adv_net(y.detach(), x)
        loss_d = Adversary.discriminator_loss(d_fake, d_real)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        torch.nn.utils.clip_grad_norm_(self.adversary.parameters(), self.cfg.optim.grad_clip * 10)
        self.opt_d.step()
        self.sched_d.step()
        d_fake, d_real = self.adv_net(y, x)
        adv, fm = Adversary.generator_losses(d_fake, d_real)
        return {"adversarial": adv, "feature_matching": fm, "discriminator": loss_d.detach()}

    @torch.no_grad()
    def _seed_codebooks(self, n_windows: int = 256) -> None:
        """Seed the codebooks from latents of a large batch (rank 0, then broadcast)."""
        if self.is_main:
            self.model.eval()
            self.model.seed_codebooks(
                self.model.make_batch(self.train_bank, n_windows, self.rng, self.device)
            )
            self.model.train()
        self._broadcast_codebooks()

    def _broadcast_codebooks(self) -> None:
        if self.world > 1:
            for t in self.model.codebook_tensors():
                torch.distributed.broadcast(t, src=0)

    def _count_usage(self, codes: torch.Tensor) -> None:
        """Accumulate per-quantizer code counts [n_q, codebook_size] since the last reset."""
        k = self.model.codebook_size
        counts = torch.stack(
            [torch.bincount(codes[:, q].reshape(-1), minlength=k) for q in range(codes.shape[1])]
        )
        self._usage = counts if self._usage is None else self._usage + counts

    @torch.no_grad()
    def _reset_dead_codes(self, latents: torch.Tensor) -> None:
        """Re-seed codebook entries unused since the last reset (under DDP: usage summed
        over ranks, rank 0 decides and broadcasts)."""
        usage = self._usage
        if self.world > 1:
            torch.distributed.all_reduce(usage)
        if self.is_main:
            self.model.reset_dead_codes(usage, latents)
        self._broadcast_codebooks()
        self._usage = None

    @torch.no_grad()
    def validate(self) -> dict:
        """Codec-domain PRD, SNR and spectral error (dB, 1-45 Hz) per codebook depth on the
        fixed validation windows; keeps the reconstructions for the figures."""
        if self.val_x is None:
            return {}
        self.model.eval()
        res = {"step": self.step}
        depths = sorted(
            {
                1,
                max(1, self.model.n_codebooks // 4),
                max(1, self.model.n_codebooks // 2),
                self.model.n_codebooks,
            }
        )
        ref = self.val_x[:, 0].astype(np.float64)
        self._val_recon = {}
        for k in depths:
            y = self.model.reconstruct(self.val_batch, k)[:, 0].float().cpu().numpy().astype(np.float64)
            m = _windowed_metrics(ref, y)
            res[f"prd_k{k}"], res[f"snr_k{k}"] = m["prd_percent"], m["snr_db"]
            res[f"spec_db_k{k}"] = spectral_error_db(ref, y, self.cfg.adapter.model_rate)
            self._val_recon[k] = y
        res["score"] = float(np.mean([res[f"prd_k{k}"] for k in depths]))
        return res

    def _log(self, terms: dict) -> None:
        super()._log(terms)
        w = self.writer
        codes = terms["codes"]
        for q in range(0 if codes is None else codes.shape[1]):
            counts = torch.bincount(codes[:, q].reshape(-1), minlength=self.model.codebook_size).float()
            p = counts / counts.sum()
            ent = -(p[p > 0] * p[p > 0].log()).sum()
            w.add_scalar(f"codebook/perplexity_q{q}", float(ent.exp()), self.step)
            w.add_scalar(f"codebook/used_q{q}", float((counts > 0).sum()), self.step)

    def _log_val(self, res: dict) -> None:
        super()._log_val(res)
        self.writer.add_figure("val/reconstruction", self._overlay_figure(), self.step)
        self.writer.add_figure("val/psd", self._psd_figure(), self.step)

    def _overlay_figure(self):
        """Three validation windows, original and reconstructed at full depth."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        y = self._val_recon[max(self._val_recon)]
        fig, axes = plt.subplots(3, 1, figsize=(8, 5), sharex=True)
        t = np.arange(y.shape[-1]) / self.cfg.adapter.model_rate
        for i, ax in enumerate(axes):
            ax.plot(t, self.val_x[i, 0], lw=0.8, label="original")
            ax.plot(t, y[i], lw=0.8, label=f"reconstructed ({max(self._val_recon)} codebooks)")
        axes[0].legend(loc="upper right", fontsize=7)
        axes[-1].set_xlabel("seconds")
        fig.tight_layout()
        return fig

    def _psd_figure(self):
        """Mean Welch PSD of the validation windows: original and each evaluated depth."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from scipy.signal import welch

        fs = self.cfg.adapter.model_rate
        nper = int(min(self.val_x.shape[-1], round(2 * fs)))
        fig, ax = plt.subplots(figsize=(6, 4))
        f, p = welch(self.val_x[:, 0], fs=fs, nperseg=nper, axis=-1)
        ax.semilogy(f, p.mean(0), color="k", lw=1.5, label="original")
        for k, y in sorted(self._val_recon.items()):
            ax.semilogy(f, welch(y, fs=fs, nperseg=nper, axis=-1)[1].mean(0), lw=1, label=f"{k} codebooks")
        ax.set_xlim(0, min(fs / 2, 80))
        ax.set_xlabel("Hz (EEG frequency)")
        ax.set_ylabel("PSD (codec units²/Hz)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        return fig
