"""``eegcodec train``: train a codec from a YAML recipe."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train a codec from a YAML recipe",
        description="Train or fine-tune a codec (works under torchrun --no-python).",
    )
    t.add_argument("recipe", metavar="RECIPE.yaml")
    t.add_argument("--out", required=True, metavar="DIR", help="run folder (checkpoints, TensorBoard logs)")
    t.add_argument("--steps", type=int, help="override the recipe's step count")
    t.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. --set optim.lr=3e-4"
    )
    t.add_argument("--resume", action="store_true", help="continue from DIR/state.pt")


def run(args) -> int:
    from ..errors import EegcodecError
    from ..train.config import load_recipe

    cfg = load_recipe(args.recipe, args.set or [])  # the recipe and --resume checked before torch loads
    if args.steps:
        cfg.steps = args.steps
    if args.resume and not (Path(args.out) / "state.pt").is_file():
        raise EegcodecError(f"resume: no checkpoint at {Path(args.out) / 'state.pt'}")
    from ..train.trainer import Trainer

    trainer = Trainer(cfg, args.out, resume=args.resume)
    try:
        last = trainer.fit()
    finally:
        trainer.close()
    if trainer.is_main:
        print(
            json.dumps({"step": trainer.step, "last_losses": last, "best_val_score": trainer.best}, indent=1)
        )
    return 0
