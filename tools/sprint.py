"""Pack a training recipe for a bare GPU machine: ``python tools/sprint.py pack RECIPE``.

A GPU machine without internet may have torch but neither the EEG files nor most of the
package's dependencies, and a copy of the repository should stay small (tens of MiB). ``pack``
writes, under ``--out`` (default ``sprint/``, git-ignored):

* ``train.npz`` / ``val.npz``: the recipe's adapted training and validation windows (the same
  ones the trainer would cut from the recordings), int8 (:data:`~eegcodec.train.data.PACK_STEP`),
  thinned evenly to fit ``--budget-mb``;
* ``recipe.yaml``: the recipe with ``data.packed`` pointing there, ready for ``eegcodec train``.

``recipes/gpu_sprint_prepare.sh`` runs this and fetches the wheels of the packages the GPU
image lacks into ``.whl/``; ``recipes/gpu_sprint.sh`` is the one command to run there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python tools/sprint.py``: this checkout's eegcodec first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from eegcodec.backends.registry import build_trainable  # noqa: E402
from eegcodec.train.config import load_recipe, recipe_to_dict  # noqa: E402
from eegcodec.train.data import pack_bank, split_recordings, window_bank  # noqa: E402


def pack(recipe: str, out: Path, budget_mb: float = 30.0, overrides: list[str] = ()) -> dict:
    """Write ``out/train.npz``, ``out/val.npz`` and ``out/recipe.yaml``; returns their sizes (bytes)."""
    cfg = load_recipe(recipe, list(overrides))
    hop = build_trainable(cfg.family, cfg.model, "scratch").hop_length
    window = int(round(cfg.data.window_seconds * cfg.adapter.model_rate))
    train_files, val_files = split_recordings(cfg.data)
    budget = int(budget_mb * 2**20)
    sizes = {}
    for name, files, share in (("train", train_files, 0.85), ("val", val_files, 0.15)):
        if files:
            bank = window_bank(files, cfg.adapter, hop, window, cfg.data.cache_dir)
            sizes[f"{name}.npz"] = pack_bank(bank, out / f"{name}.npz", int(budget * share))
    cfg.data.packed = str(out)
    text = yaml.safe_dump(recipe_to_dict(cfg), sort_keys=False)
    (out / "recipe.yaml").write_text(text)
    sizes["recipe.yaml"] = len(text)
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/sprint.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)
    k = sub.add_parser("pack", help="adapted windows + recipe for a bare GPU machine")
    k.add_argument("recipe")
    k.add_argument("--out", default="sprint", type=Path)
    k.add_argument("--budget-mb", type=float, default=30.0, help="size of the packed windows (default 30)")
    k.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    args = p.parse_args(argv)
    sizes = pack(args.recipe, args.out, args.budget_mb, args.set)
    print(json.dumps({"out": str(args.out), "bytes": sizes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
