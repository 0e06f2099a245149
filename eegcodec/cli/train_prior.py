"""``eegcodec train-prior``: fit a model's prior over its codes."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    t = sub.add_parser(
        "train-prior",
        help="train a model's prior over its codes (entropy-coded tokens)",
        description="Fit the learned prior that entropy-codes a DAC or DAC-MC model's tokens, on "
        "recordings' codes; written beside the model's weights as NAME.prior.npz (or -o), where "
        "compress and decompress find it. Files record its SHA-256.",
    )
    t.add_argument("--model", default="default", help="model name or weights file (default: %(default)s)")
    t.add_argument("--train", nargs="+", required=True, metavar="INPUT", help="recordings (files or folders)")
    t.add_argument("-o", "--output", metavar="PATH", help="where to write it (default: beside the weights)")
    t.add_argument("--steps", type=int, default=4000, help="optimiser steps (default: %(default)s)")
    t.add_argument(
        "--crop", type=float, default=60.0, help="seconds of each recording (default: %(default)s)"
    )
    t.add_argument(
        "--hidden", type=int, default=256, help="width of its two hidden layers (default: %(default)s)"
    )
    t.add_argument(
        "--split-groups",
        type=int,
        default=0,
        metavar="G",
        help="code each code as one of G groups, then its place in the group (a power of two, e.g. 32: "
        "2 x 32 weights per code instead of 1,024, faster; default 0: not split)",
    )
    t.add_argument("--force", action="store_true", help="replace an existing prior")
    t.add_argument("-q", "--quiet", action="store_true")


def run(args) -> int:
    from ..backends.registry import resolve_model
    from ..codeprior import CodePrior, kept_prior_path, prior_path
    from ..io import atomic_write_bytes, check_output, find_recordings, load_crop

    # the model's file, the recordings and the output are checked before torch loads
    out = Path(args.output) if args.output else prior_path(resolve_model(args.model)[0])
    files = find_recordings(args.train)
    check_output(out, files, args.force)
    from ..backends.registry import load_codec
    from ..train.prior import PriorTrainConfig, fit

    cfg = PriorTrainConfig(
        steps=args.steps, crop_seconds=args.crop, hidden=args.hidden, split_groups=args.split_groups
    )
    codec = load_codec(args.model)

    def say(step, total, bits):
        if not args.quiet:
            print(f"prior: step {step}/{total}, {bits:.3f} bits per code", file=sys.stderr, flush=True)

    prior = fit(codec, [load_crop(f, cfg.crop_seconds) for f in files], cfg, progress=say)
    if out.is_file():  # files written under the prior it replaces must still decode: keep it by its SHA
        replaced = out.read_bytes()
        kept = kept_prior_path(out, CodePrior.from_bytes(replaced).sha256())
        if not kept.exists():
            atomic_write_bytes(kept, replaced)
        if not args.quiet:
            print(f"kept the prior it replaces as {kept} (files written under it decode from it)")
    atomic_write_bytes(out, prior.to_bytes())
    if not args.quiet:
        print(f"wrote {out} (sha256 {prior.sha256()[:16]}); files compressed with this model now use it")
    return 0
