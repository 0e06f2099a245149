"""Training M_A, M_B and P through the project's trainer (TensorBoard, checkpoints, resume,
torchrun), on windows embedded once by the frozen encoders.

Run folder: as :mod:`eegcodec.train.trainer` (``recipe.yaml``, ``tb/``, ``state.pt``,
``history.json``), with ``model.pth``/``best.pth`` holding the mapper (:func:`save_mapper`)
and ``splits.json`` saying which subjects and stimuli went where.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import EegcodecError
from ..io import atomic_write_bytes
from ..train.base import BaseTrainer
from .config import AlignConfig
from .dataset import AlignSet, embed_manifest, window_inputs
from .encoders import AudioEncoder, EEGEncoder, FrameGrid
from .finetune import AlignFinetune, TunableEncoderB
from .model import AlignModel, align_loss, reconstruction
from .scoring import score_split

FORMAT = "eegcodec-align"


class AlignTrainer(BaseTrainer):
    """Train the shared-space mapper of an :class:`~eegcodec.align.config.AlignConfig`; with
    ``finetune_b.blocks`` > 0 also the last blocks of encoder B (:mod:`eegcodec.align.finetune`)."""

    find_unused = True  # mse/cosine leave the temperature unused; a zero weight leaves M_A or P unused

    def build(self) -> torch.nn.Module:
        cfg = self.cfg
        if not cfg.data.root:
            raise EegcodecError("no paired data: set data.root in the recipe (--data DIR)")
        self.enc_a = AudioEncoder(cfg.encoder_a, device=str(self.device))
        self.enc_b = EEGEncoder(cfg.encoder_b, cfg.encoder_b_depth, device=str(self.device))
        self.data = embed_manifest(cfg.data.manifest, cfg, self.enc_a, self.enc_b, show_progress=self.is_main)
        self.grid = FrameGrid(cfg.data.window_seconds, self.enc_b.frame_seconds, self.enc_a.frame_seconds)
        self.train_rows, self.val_rows = self.data.rows("train"), self.data.rows("val")
        if len(self.train_rows) < 2:
            raise EegcodecError(f"only {len(self.train_rows)} training windows: more pairs, or other splits")
        if self.is_main:
            atomic_write_bytes(self.out / "splits.json", json.dumps(self.data.summary(), indent=1).encode())
        m = cfg.model
        mapper = AlignModel(
            self.enc_a.dim,
            self.enc_b.dim,
            self.grid.ratio,
            m.shared_dim,
            m.hidden,
            m.dropout,
            cfg.loss.temperature,
        )
        mapper.set_statistics(
            self.data.e_a[self.data.segment[self.train_rows]], self.data.e_b[self.train_rows]
        )
        if cfg.finetune_b.init:
            init, *_ = load_mapper(cfg.finetune_b.init)
            if init.dims != mapper.dims:
                raise EegcodecError(f"finetune_b.init {cfg.finetune_b.init} has other sizes: {init.dims}")
            mapper.load_state_dict(init.state_dict())
        self.mapper = mapper
        if not cfg.finetune_b.blocks:
            return mapper
        self.inputs = window_inputs(
            cfg.data.manifest, cfg, self.enc_a, self.enc_b, show_progress=self.is_main
        )
        if len(self.inputs.x) != len(self.data.pair):
            raise EegcodecError(
                "encoder B's inputs and the embedded windows differ in number; clear the cache"
            )
        self.montages = [self._montage(names) for names in self.inputs.names]
        tuned = TunableEncoderB(cfg.encoder_b, cfg.finetune_b.blocks, self.enc_b.depth, self.enc_b.rows)
        tuned.to(self.device)
        self.codec_prd_before = self._tuned_val(tuned)[1] if len(self.val_rows) else None
        return AlignFinetune(mapper, tuned)

    def _montage(self, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Electrode positions [1, C, 3] and known flags [1, C] of a channel list."""
        mont = self.enc_b.codec.montage(list(names))
        return torch.from_numpy(mont.positions)[None], torch.from_numpy(mont.known)[None]

    def _adamw(self, module: torch.nn.Module) -> torch.optim.AdamW:
        if not self.cfg.finetune_b.blocks:
            return super()._adamw(module)
        o = self.cfg.optim
        tuned = [p for p in module.encoder_b.parameters() if p.requires_grad]
        groups = [
            {"params": list(module.mapper.parameters()), "lr": o.lr},
            {"params": tuned, "lr": o.lr * self.cfg.finetune_b.lr_scale},
        ]
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

    def _batch(self) -> torch.Tensor:
        """Up to ``batch_size`` training windows with distinct audio segments (InfoNCE's
        negatives must not be the same sound heard by another subject); when encoder B is
        tuned, all of one channel list (drawn in proportion to its windows)."""
        rows = self.train_rows
        if self.cfg.finetune_b.blocks:
            groups = self.inputs.group[rows]
            rows = rows[groups == groups[int(self.rng.integers(len(rows)))]]
        order = rows[torch.from_numpy(self.rng.permutation(len(rows)))]
        _, first = np.unique(self.data.segment[order].numpy(), return_index=True)
        keep = np.sort(first)[: self.cfg.batch_size]
        return order[torch.from_numpy(self.rng.permutation(keep))]

    def _inputs(self, rows: torch.Tensor, encoder: TunableEncoderB) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder B's inputs x [B, C, T] and channel embeddings [B, C, D] of windows of one group."""
        group = int(self.inputs.group[rows[0]])
        x = torch.stack([self.inputs.x[int(i)] for i in rows]).float().to(self.device)
        pos, known = self.montages[group]
        emb = encoder.channel_embedding(pos.to(self.device), known.to(self.device))
        return x, emb.expand(len(rows), -1, -1)

    def train_step(self) -> dict:
        self.model.train()
        rows = self._batch()
        e_a = self.data.e_a[self.data.segment[rows]].to(self.device)
        tune = self.cfg.finetune_b
        if tune.blocks:
            out = self.net(e_a, *self._inputs(rows, self.model.encoder_b), tune.codec_windows)
        else:
            out = self.net(e_a, self.data.e_b[rows].to(self.device))
        loss = self.cfg.loss
        l_align = align_loss(loss.align, out["z_a"], out["z_b"], self.mapper.log_scale)
        l_rec = reconstruction(out["e_a_hat"], out["e_a"])
        total = loss.lambda_align * l_align + loss.lambda_rec * l_rec
        terms = {"align": float(l_align), "rec": float(l_rec)}
        if tune.blocks:
            total = total + tune.lambda_codec * out["codec"]
            terms["codec"] = float(out["codec"])
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return {
            "total": float(total),
            **terms,
            "grad_norm": float(gnorm),
            "temperature": float(1 / self.mapper.log_scale.detach().clamp(max=np.log(100)).exp()),
        }

    def validate(self) -> dict:
        if len(self.val_rows) == 0:
            return {}
        data, extra = self.data, {}
        if self.cfg.finetune_b.blocks:  # E_B of the validation windows by the encoder as it is now
            data, prd = self._tuned_val(self.model.encoder_b)
            extra = {"codec_prd": prd, "codec_prd_before": self.codec_prd_before}
        res = {"step": self.step, **score_split(self.mapper, data, self.val_rows), **extra}
        res["score"] = res["rank_percentile"]
        return res

    @torch.no_grad()
    def _tuned_val(self, encoder: TunableEncoderB) -> tuple[AlignSet, float]:
        """The data with the validation windows' E_B from ``encoder``, and the codec's median
        PRD % over those windows' channels."""
        e_b, prd = self.data.e_b.clone(), []
        for g in self.inputs.group[self.val_rows].unique():
            rows = self.val_rows[self.inputs.group[self.val_rows] == g]
            x, emb = self._inputs(rows, encoder)
            e_b[rows] = encoder.e_b(encoder.quantized(x, emb)).cpu()
            prd.append(encoder.prd(x, emb).ravel())
        return replace(self.data, e_b=e_b), float(np.median(np.concatenate(prd)))

    def _export(self, path: Path) -> None:
        tuned = None
        if self.cfg.finetune_b.blocks:  # the tuned encoder beside the mapper, which names it
            file = path.with_name(f"{path.stem}_encoder_b.pth")
            sha = self.model.encoder_b.export(file, {"step": self.step, "blocks": self.cfg.finetune_b.blocks})
            tuned = {"name": str(file.resolve()), "sha256": sha}
        save_mapper(
            path,
            self.mapper,
            self.cfg,
            self.enc_a,
            self.enc_b,
            self.grid,
            {
                "step": self.step,
                "elapsed_s": round(self.elapsed, 1),
                "last_val": self.history[-1] if self.history else None,
                "data": dataset_kind(Path(self.cfg.data.root)),
                "splits": self.data.summary(),
            },
            tuned,
        )


def dataset_kind(root: Path) -> str:
    """``dataset.json``'s ``kind`` (e.g. ``semi-synthetic``) of a data folder, else ``unknown``."""
    meta = root.expanduser() / "dataset.json"
    if meta.exists():
        return json.loads(meta.read_text()).get("kind", "unknown")
    return "unknown"


def save_mapper(
    path: Path,
    model: AlignModel,
    cfg: AlignConfig,
    enc_a: AudioEncoder,
    enc_b: EEGEncoder,
    grid: FrameGrid,
    training: dict,
    tuned_b: dict | None = None,
) -> None:
    """Write a mapper file: weights, sizes, the recipe, and which encoders (name + SHA-256)
    it was trained on top of (checked when loaded); ``tuned_b`` (``name``, ``sha256``): the
    fine-tuned encoder B file that replaces ``enc_b``."""

    def where(name: str) -> str:  # a file is stored by its absolute path, so eval/decode work from any folder
        p = Path(name).expanduser()
        return str(p.resolve()) if p.is_file() else name

    blob = {
        "format": FORMAT,
        "version": 1,
        "dims": model.dims,
        "state_dict": model.state_dict(),
        "recipe": asdict(cfg),
        "encoder_a": {
            "name": where(cfg.encoder_a),
            "sha256": enc_a.sha256,
            "rate": enc_a.rate,
            "hop": enc_a.hop,
        },
        "encoder_b": {
            "name": where(cfg.encoder_b),
            "sha256": enc_b.sha256,
            "depth": enc_b.depth,
            "rows": enc_b.rows,
            **(tuned_b or {}),
        },
        "grid": asdict(grid),
        "training": training,
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def _beside(name: str, mapper: Path) -> str:
    """An encoder file stored by a path that no longer exists but lies beside the mapper (a run
    folder moved as a whole; a fine-tuned encoder B is written there): that file. The SHA-256
    check that follows still decides whether it is the right one."""
    here = mapper.parent / Path(name).name
    return str(here) if Path(name).suffix and not Path(name).exists() and here.is_file() else name


def load_mapper(run: str | Path, device: str = "cpu"):
    """A trained mapper from a run folder (its ``best.pth``) or a mapper file:
    (AlignModel in eval mode, AlignConfig dict, AudioEncoder, EEGEncoder, FrameGrid).
    The encoders are loaded by the names stored in the file (a moved file: beside the mapper)
    and must have the same weights."""
    run = Path(run)
    path = run / "best.pth" if run.is_dir() else run
    if not path.exists():
        raise EegcodecError(f"no trained mapper at {path} (run 'eegcodec align train' first)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or not a torch file
        raise EegcodecError(
            f"cannot read mapper {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise EegcodecError(f"{path} is not an eegcodec align mapper")
    enc_a = AudioEncoder(_beside(blob["encoder_a"]["name"], path), device=device)
    enc_b = EEGEncoder(_beside(blob["encoder_b"]["name"], path), blob["encoder_b"]["depth"], device=device)
    for side, enc in (("encoder_a", enc_a), ("encoder_b", enc_b)):
        if enc.sha256 != blob[side]["sha256"]:
            raise EegcodecError(
                f"{side} {blob[side]['name']} has other weights than the mapper was trained on (SHA-256 "
                f"differs)"
            )
    enc_b.rows = blob["encoder_b"]["rows"]
    model = AlignModel(**blob["dims"])
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), blob, enc_a, enc_b, FrameGrid(**blob["grid"])
