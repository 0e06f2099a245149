"""The training loop: one process or many under ``torchrun`` (DDP), resumable.

Output folder layout::

    OUT/recipe.yaml        the resolved recipe
    OUT/tb/                TensorBoard event files
    OUT/state.pt           full state (model, optimiser, schedule, step, RNGs) for --resume
    OUT/model.pth          latest weights + eegcodec metadata (DAC's format for DAC models)
    OUT/best.pth           weights with the best validation PRD (the model to ship)
    OUT/history.json       validation metrics per evaluation
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ..errors import EegcodecError
from ..io import atomic_write_bytes
from .config import recipe_to_dict


def _dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (1 process: 0, 0, 1)."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


class BaseTrainer:
    """What every training job shares: devices and torchrun (DDP), AdamW with warm-up and
    cosine decay, TensorBoard, checkpoints, exact resume, validation history, the loop.

    A subclass builds its network and data (:meth:`build`) and says what a step, a
    validation and an export are (:meth:`train_step`, :meth:`validate`, :meth:`_export`).
    ``cfg`` needs ``name``, ``steps``, ``seed``, ``threads``, ``optim``
    (:class:`~eegcodec.train.config.OptimConfig`), ``log_every``, ``val_every`` and
    ``ckpt_every``; it is saved as ``OUT/recipe.yaml``.

    Parameters
    ----------
    cfg : the recipe (a dataclass).
    out_dir : output folder (created).
    resume : continue from ``out_dir/state.pt`` exactly where it stopped.
    """

    #: DDP must tolerate parameters without gradients in some steps
    find_unused = False

    def __init__(self, cfg, out_dir: str | Path, resume: bool = False):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.rank, self.local_rank, self.world = _dist_info()
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend=backend)
        self.device = torch.device(f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "recipe.yaml").write_text(yaml.safe_dump(recipe_to_dict(cfg), sort_keys=False))
        self.model = self.build().to(self.device)
        self.net = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=self.find_unused,
            )
        self.opt = self._adamw(self.model)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.rng = np.random.default_rng([cfg.seed, self.rank])
        self.step = 0
        self.best = math.inf
        self.history: list[dict] = []
        self.elapsed = 0.0
        if resume:
            self._load_state()
        self.writer = None
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step if resume else None)

    def _adamw(self, module: torch.nn.Module) -> torch.optim.AdamW:
        o = self.cfg.optim
        params = [p for p in module.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

    # ------------------------------------------------------------------ what a subclass says
    def build(self) -> torch.nn.Module:
        """Build the network (returned) and the data (kept on ``self``)."""
        raise NotImplementedError

    def train_step(self) -> dict:
        """One optimiser step; returns loss terms (floats; ``total`` among them)."""
        raise NotImplementedError

    def validate(self) -> dict:
        """Validation metrics with a ``score`` (lower is better); ``{}`` without validation data."""
        return {}

    def _export(self, path: Path) -> None:
        """Write the trained model to ``path`` (``model.pth``, ``best.pth``)."""
        raise NotImplementedError

    def _log(self, terms: dict) -> None:
        for k, v in terms.items():
            if isinstance(v, float):
                self.writer.add_scalar(f"train/{k}", v, self.step)
        self.writer.add_scalar("train/lr", self.sched.get_last_lr()[0], self.step)

    def _log_val(self, res: dict) -> None:
        for k, v in res.items():
            if k != "step":
                self.writer.add_scalar(f"val/{k}", v, self.step)

    def extra_state(self) -> dict:
        """More state to checkpoint (resumed by :meth:`load_extra_state`)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ------------------------------------------------------------------ setup
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def time_limit_s(self) -> float:
        """Seconds of training after which the run stops (``max_minutes``; 0: none)."""
        return 60 * getattr(self.cfg, "max_minutes", 0.0)

    def _lr_factor(self, step: int) -> float:
        o = self.cfg.optim
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        t = min(1.0, (step - o.warmup_steps) / max(1, self.cfg.steps - o.warmup_steps))
        if self.time_limit_s:  # a timed run (offline GPU recipe) decays over its time, whichever ends first
            t = max(t, min(1.0, self.elapsed / self.time_limit_s))
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "elapsed": self.elapsed,
            **self.extra_state(),
            "np_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _save_state(self) -> None:
        if self.world > 1:  # each rank's RNG state is its own: gather them on rank 0
            states = [None] * self.world
            torch.distributed.all_gather_object(states, (self.rng.bit_generator.state, torch.get_rng_state()))
        if not self.is_main:
            return
        state = self._state()
        if self.world > 1:
            state["rank_rngs"] = states
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.out / "state.pt", buf.getvalue())
        self._export(self.out / "model.pth")

    def _load_state(self) -> None:
        path = self.out / "state.pt"
        if not path.exists():
            raise EegcodecError(f"resume: no checkpoint at {path}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step, self.best, self.history, self.elapsed = (
            state["step"],
            state["best"],
            state["history"],
            state["elapsed"],
        )
        self.load_extra_state(state)
        if "rank_rngs" in state:
            np_state, torch_state = state["rank_rngs"][self.rank]
        else:
            np_state, torch_state = state["np_rng"], state["torch_rng"]
        self.rng.bit_generator.state = np_state
        torch.set_rng_state(torch_state)
        if torch.cuda.is_available() and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def fit(self, steps: int | None = None) -> dict:
        """Train until ``steps`` (default: the recipe's), validating and checkpointing on the way."""
        from tqdm import tqdm

        total = steps or self.cfg.steps
        # a log file (not a terminal) gets one progress line a minute, not one per step
        bar = tqdm(
            total=total,
            initial=self.step,
            disable=not self.is_main,
            desc=self.cfg.name,
            dynamic_ncols=True,
            mininterval=0.1 if sys.stderr.isatty() else 60.0,
        )
        last = {}
        t0 = time.time()
        limit = self.time_limit_s
        while self.step < total:
            last = self.train_step()
            self.elapsed += time.time() - t0
            t0 = time.time()
            bar.update(1)
            final = self.step == total or bool(limit and self.elapsed >= limit)  # time's up: finish here
            if self.is_main and (self.step % self.cfg.log_every == 0 or final):
                self._log(last)
                bar.set_postfix(loss=f"{last['total']:.4f}", refresh=False)  # shown at the next refresh
            if self.step % self.cfg.val_every == 0 or final:
                if self.is_main:
                    res = self.validate()
                    if res:
                        res["elapsed_s"] = round(self.elapsed, 1)
                        self.history.append(res)
                        self._log_val(res)
                        atomic_write_bytes(
                            self.out / "history.json", json.dumps(self.history, indent=1).encode()
                        )
                        if res["score"] < self.best:
                            self.best = res["score"]
                            self._export(self.out / "best.pth")
            if self.step % self.cfg.ckpt_every == 0 or final:
                self._save_state()
            t0 = time.time()
            if final:
                break
        bar.close()
        if self.is_main:
            if not (self.out / "best.pth").exists():
                self._export(self.out / "best.pth")
            self.writer.flush()
        return {k: v for k, v in last.items() if isinstance(v, float)}

    def close(self) -> None:
        if self.writer:
            self.writer.close()
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
