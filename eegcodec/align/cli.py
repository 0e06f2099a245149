"""``eegcodec align``: make-synthetic, train, eval, decode (registered by :mod:`eegcodec.cli`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _say(args):
    return (
        (lambda msg: None)
        if getattr(args, "quiet", False)
        else (lambda msg: print(msg, file=sys.stderr, flush=True))
    )


def cmd_make_synthetic(args) -> int:
    from .synthetic import SyntheticConfig, make_synthetic

    cfg = SyntheticConfig(
        background=args.background or SyntheticConfig().background, snr_db=args.snr_db, seed=args.seed
    )
    if args.quick:
        cfg.n_stimuli, cfg.n_codec_clips, cfg.max_subjects = 12, 40, 4
    cfg.max_subjects = args.max_subjects or cfg.max_subjects
    meta = make_synthetic(args.out, cfg, progress=_say(args))
    print(
        json.dumps(
            {
                "out": args.out,
                "kind": meta["kind"],
                "subjects": len(meta["subjects"]),
                "stimuli": cfg.n_stimuli,
            },
            indent=1,
        )
    )
    return 0


def cmd_train(args) -> int:
    from .config import load_align_recipe

    _must_exist(args.recipe, args.data, *([Path(args.out) / "state.pt"] if args.resume else []))
    cfg = load_align_recipe(args.recipe, args.set or [])
    from .trainer import AlignTrainer

    cfg.data.root = args.data
    if args.quick:
        cfg.steps, cfg.val_every, cfg.ckpt_every = 60, 30, 60
    trainer = AlignTrainer(cfg, args.out, resume=args.resume)
    try:
        last = trainer.fit()
    finally:
        trainer.close()
    if trainer.is_main:
        print(
            json.dumps(
                {
                    "step": trainer.step,
                    "last_losses": last,
                    "best_val_rank_percentile": trainer.best,
                    "splits": trainer.data.summary(),
                },
                indent=1,
            )
        )
    return 0


def cmd_eval(args) -> int:
    _must_exist(args.run, args.data)
    from .evaluate import evaluate_run

    res = evaluate_run(
        args.run, args.data, args.out, split=args.split, show_progress=not args.quiet and sys.stderr.isatty()
    )
    keys = ("top1", "top10", "mse", "cosine")
    print(
        json.dumps(
            {
                k: ({m: round(res[k][m], 4) for m in keys} if res.get(k) else None)
                for k in ("test", "control", "chance")
            },
            indent=1,
        )
    )
    return 0


def _must_exist(*paths) -> None:
    """A one-line error for the first path that does not exist (checked before torch loads)."""
    from ..errors import EegcodecError

    for p in paths:
        if not Path(p).exists():
            raise EegcodecError(f"input not found: {p}")


def cmd_decode(args) -> int:
    from ..io import check_output

    _must_exist(args.run, args.eeg_file)
    check_output(Path(args.output), [Path(args.eeg_file)], args.force)
    from .evaluate import decode_eeg_file

    print(
        json.dumps(decode_eeg_file(args.run, args.eeg_file, args.output, args.start, args.seconds), indent=1)
    )
    return 0


def _add_make_synthetic(verbs) -> None:
    s = verbs.add_parser(
        "make-synthetic",
        help="write a SEMI-SYNTHETIC paired EEG+audio set",
        description="Real background EEG + a simulated response to synthesised melodies (see "
        "eegcodec/align/synthetic.py).",
    )
    s.add_argument("--out", required=True, metavar="DIR", help="new folder to write")
    s.add_argument(
        "--background",
        nargs="+",
        metavar="PATH",
        help="folders/files of background EEG (default: ../shared/eeg)",
    )
    s.add_argument(
        "--snr-db",
        type=float,
        default=-10.0,
        help="response/background power above 1 Hz, dB (default: %(default)s)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="4 subjects, 12 stimuli, 40 codec clips")
    s.add_argument(
        "--max-subjects", type=int, default=0, metavar="N", help="the first N background subjects only"
    )
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_make_synthetic)


def _add_train(verbs) -> None:
    t = verbs.add_parser(
        "train",
        help="train M_A, M_B and P from a recipe",
        description="Train the mapper (works under torchrun --no-python).",
    )
    t.add_argument("recipe", metavar="RECIPE.yaml")
    t.add_argument("--data", required=True, metavar="DIR", help="paired data folder (manifest.csv inside)")
    t.add_argument("--out", required=True, metavar="RUN", help="run folder")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set loss.align=cosine",
    )
    t.add_argument("--resume", action="store_true", help="continue from RUN/state.pt")
    t.add_argument("--quick", action="store_true", help="60 steps")
    t.set_defaults(func=cmd_train)


def _add_eval(verbs) -> None:
    e = verbs.add_parser(
        "eval",
        help="segment identification: test, control, chance -> results.json",
        description="Score a trained mapper on the test split and on the control (background EEG without "
        "response).",
    )
    e.add_argument("run", metavar="RUN", help="run folder (its best.pth) or a mapper file")
    e.add_argument("--data", required=True, metavar="DIR")
    e.add_argument("--out", required=True, metavar="DIR")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_eval)


def _add_decode(verbs) -> None:
    d = verbs.add_parser(
        "decode",
        help="EEG recording -> predicted audio WAV",
        description="Predict audio-codec latents from EEG and decode them to a WAV file.",
    )
    d.add_argument("run", metavar="RUN")
    d.add_argument("eeg_file", metavar="EEG_FILE", help="any MNE-readable recording")
    d.add_argument("-o", "--output", required=True, metavar="OUT.wav")
    d.add_argument("--start", type=float, default=0.0, metavar="SECONDS")
    d.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how much to decode (default: to the end)",
    )
    d.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    d.set_defaults(func=cmd_decode)


def add_align_parser(sub) -> None:
    a = sub.add_parser(
        "align",
        help="encoder B: map EEG into an audio codec's embedding space",
        description="Train and use the shared-space mapper (M_A, M_B, predictor P) from EEG-codec latents to "
        "audio-codec latents, and decode EEG to audio.",
    )
    verbs = a.add_subparsers(dest="align_verb", required=True, metavar="VERB")
    for add in (_add_make_synthetic, _add_train, _add_eval, _add_decode):
        add(verbs)
