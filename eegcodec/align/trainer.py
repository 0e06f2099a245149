"""Training M_A, M_B and P through the project's trainer (TensorBoard, checkpoints, resume,
torchrun), on windows embedded once by the frozen encoders.

Run folder: as :mod:`eegcodec.train.trainer` (``recipe.yaml``, ``tb/``, ``state.pt``,
``history.json``), with ``model.pth``/``best.pth`` holding the mapper (:func:`save_mapper`)
and ``splits.json`` saying which subjects and stimuli went where.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import EegcodecError
from ..io import atomic_write_bytes
from ..train.trainer import BaseTrainer
from .config import AlignConfig
from .dataset import embed_manifest
from .encoders import AudioEncoder, EEGEncoder, FrameGrid
from .model import AlignModel, align_loss, reconstruction
from .scoring import score_split

FORMAT = "eegcodec-align"


class AlignTrainer(BaseTrainer):
    """Train the shared-space mapper of an :class:`~eegcodec.align.config.AlignConfig`."""

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
        model = AlignModel(
            self.enc_a.dim,
            self.enc_b.dim,
            self.grid.ratio,
            m.shared_dim,
            m.hidden,
            m.dropout,
            cfg.loss.temperature,
        )
        model.set_statistics(
            self.data.e_a[self.data.segment[self.train_rows]], self.data.e_b[self.train_rows]
        )
        return model

    def _batch(self) -> torch.Tensor:
        """Up to ``batch_size`` training windows with distinct audio segments (InfoNCE's
        negatives must not be the same sound heard by another subject)."""
        order = self.train_rows[torch.from_numpy(self.rng.permutation(len(self.train_rows)))]
        _, first = np.unique(self.data.segment[order].numpy(), return_index=True)
        keep = np.sort(first)[: self.cfg.batch_size]
        return order[torch.from_numpy(self.rng.permutation(keep))]

    def train_step(self) -> dict:
        self.model.train()
        rows = self._batch()
        e_a = self.data.e_a[self.data.segment[rows]].to(self.device)
        e_b = self.data.e_b[rows].to(self.device)
        out = self.net(e_a, e_b)
        loss = self.cfg.loss
        l_align = align_loss(loss.align, out["z_a"], out["z_b"], self.model.log_scale)
        l_rec = reconstruction(out["e_a_hat"], out["e_a"])
        total = loss.lambda_align * l_align + loss.lambda_rec * l_rec
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return {
            "total": float(total),
            "align": float(l_align),
            "rec": float(l_rec),
            "grad_norm": float(gnorm),
            "temperature": float(1 / self.model.log_scale.detach().clamp(max=np.log(100)).exp()),
        }

    def validate(self) -> dict:
        if len(self.val_rows) == 0:
            return {}
        res = {"step": self.step, **score_split(self.model, self.data, self.val_rows)}
        res["score"] = res["rank_percentile"]
        return res

    def _export(self, path: Path) -> None:
        save_mapper(
            path,
            self.model,
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
) -> None:
    """Write a mapper file: weights, sizes, the recipe, and which encoders (name + SHA-256)
    it was trained on top of (checked when loaded)."""

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
        },
        "grid": asdict(grid),
        "training": training,
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_mapper(run: str | Path, device: str = "cpu"):
    """A trained mapper from a run folder (its ``best.pth``) or a mapper file:
    (AlignModel in eval mode, AlignConfig dict, AudioEncoder, EEGEncoder, FrameGrid).
    The encoders are loaded by the names stored in the file and must have the same weights."""
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
    enc_a = AudioEncoder(blob["encoder_a"]["name"], device=device)
    enc_b = EEGEncoder(blob["encoder_b"]["name"], blob["encoder_b"]["depth"], device=device)
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
