"""``eegcodec eval``: compress + decompress + metrics table."""

from __future__ import annotations

from pathlib import Path

from ..modes.max_error import parse_volts
from .common import eval_codec, model_args, show_progress, write_json


def add_parser(sub) -> None:
    e = sub.add_parser(
        "eval",
        help="compress + decompress + metrics table",
        description="Round-trip recordings at several codebook depths (and, with --lossless, --max-error "
        "and --prd, in the modes that need no model) and report bits/sample, CR16, PRD, largest error, "
        "SNR, Pearson r, spectral error.",
    )
    e.add_argument("inputs", nargs="+", metavar="INPUT")
    e.add_argument(
        "--codebooks",
        type=int,
        nargs="+",
        metavar="N",
        help="depths to evaluate (default: all, unless --prd, --lossless or --max-error)",
    )
    e.add_argument(
        "--prd",
        type=float,
        nargs="+",
        metavar="PERCENT",
        help="also evaluate compress --prd files at these targets (transform layer, no model)",
    )
    e.add_argument(
        "--lossless", action="store_true", help="also evaluate a compress --lossless file (no model)"
    )
    e.add_argument(
        "--max-error",
        nargs="+",
        metavar="VOLTS",
        help="also evaluate compress --max-error files at these bounds, e.g. 1uV 5uV (no model)",
    )
    e.add_argument(
        "--crop",
        type=float,
        default=None,
        metavar="SECONDS",
        help="use only the first SECONDS of each recording",
    )
    e.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    e.add_argument("-f", "--force", action="store_true", help="overwrite an existing --json file")
    e.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override an adapter setting for this evaluation, e.g. --set baseline_seconds=0",
    )
    e.add_argument("-q", "--quiet", action="store_true")
    model_args(e)


def run(args) -> int:
    from ..io import check_output, find_recordings

    inputs = find_recordings(args.inputs)  # inputs and the --json output checked before torch loads
    if args.json:
        check_output(Path(args.json), inputs, args.force)
    max_errors = [parse_volts(v) for v in args.max_error or []]
    modelless = bool(args.prd or args.lossless or max_errors)
    codec = eval_codec(args, needed=bool(args.codebooks) or not modelless)
    depths = args.codebooks or ([] if modelless else list(range(1, codec.info.n_codebooks + 1)))
    adapter = _eval_adapter(args, codec)
    from ..evaluate import evaluate_file, format_table

    rows = []
    for src in inputs:
        rows += evaluate_file(
            src,
            codec,
            depths,
            crop_seconds=args.crop,
            progress=show_progress(args),
            adapter=adapter,
            prds=args.prd or [],
            lossless=args.lossless,
            max_errors=max_errors,
        )
    print(format_table(rows))
    write_json(args, rows)
    return 0


def _eval_adapter(args, codec):
    """The model's adapter settings with ``--set KEY=VALUE`` applied; None without ``--set``."""
    if not args.set:
        return None
    from ..adapt import AdapterConfig
    from ..train.config import parse_override

    changes = dict(parse_override(item) for item in args.set)
    return AdapterConfig.from_dict({**(codec.info.adapter.to_dict() if codec else {}), **changes})
