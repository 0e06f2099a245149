"""``eegcodec demo``: every mode on the recording shipped with eegcodec, side by side."""

from __future__ import annotations

from pathlib import Path

from .common import eval_codec, model_args, show_progress, write_json

#: what ``eegcodec demo`` runs: max-error bounds (volts), PRD targets (%), token depths
DEMO_MAX_ERRORS = (2e-6, 5e-6)


DEMO_PRDS = (5.0, 10.0, 20.0)


DEMO_DEPTHS = (2, 6, 12)


def add_parser(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="every mode on the recording shipped with eegcodec, side by side",
        description="Compress and decompress the 40-s EEG recording shipped with eegcodec "
        "(eegcodec.datasets.sample_path()) losslessly, within 2 and 5 uV, at PRD 5, 10 and 20 % and as "
        "the model's tokens at 2, 6 and 12 codebooks, in memory (nothing is written), and print bits per "
        "sample, ratio, PRD, largest error and time per mode.",
    )
    d.add_argument(
        "--codebooks",
        type=int,
        nargs="*",
        metavar="N",
        help="token depths (default: 2 6 12; none: no model, no torch)",
    )
    d.add_argument(
        "--crop",
        type=float,
        metavar="SECONDS",
        help="only the first SECONDS of the recording (default: all 40)",
    )
    d.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    d.add_argument("-f", "--force", action="store_true", help="overwrite an existing --json file")
    d.add_argument("-q", "--quiet", action="store_true", help="no introduction or progress")
    model_args(d)


def run(args) -> int:
    from ..datasets import sample_path
    from ..io import check_output

    src = sample_path()
    if args.json:
        check_output(Path(args.json), [src], args.force)
    depths = DEMO_DEPTHS if args.codebooks is None else args.codebooks
    if not args.quiet:
        print(_demo_intro(src, args, depths), flush=True)
    codec = eval_codec(args, needed=bool(depths))
    if codec is not None:
        depths = [k for k in depths if k <= codec.info.n_codebooks]
    from ..evaluate import MODE_COLUMNS, evaluate_file, format_table

    rows = evaluate_file(
        src,
        codec,
        list(depths),
        crop_seconds=args.crop,
        progress=show_progress(args),
        prds=list(DEMO_PRDS),
        lossless=True,
        max_errors=list(DEMO_MAX_ERRORS),
    )
    print(format_table(rows, MODE_COLUMNS))
    print()
    print("\n".join(_demo_advice(rows, codec)))
    write_json(args, rows)
    return 0


def _demo_intro(src: Path, args, depths) -> str:
    seconds = f"the first {args.crop:g} s of " if args.crop else ""
    model = f", and as tokens of the model {args.model!r}" if depths else ""
    return (
        f"{seconds}{src.name}, shipped with eegcodec (EEGBCI subject S001, run R01: 64 EEG channels at\n"
        f"160 Hz, 16-bit EDF), compressed and decompressed in memory in each mode{model};\n"
        "nothing is written. Ratios are against the EDF's 16 bits per sample.\n"
    )


def _demo_advice(rows: list[dict], codec) -> list[str]:
    """Which mode to pick for what, with this recording's ratios."""
    by = {r["setting"]: r for r in rows}

    def ratio(label: str) -> str:
        return f" ({by[label]['cr16']:.1f}x here)" if label in by else ""

    lines = [
        "Which to pick (eegcodec compress FILE ...):",
        f"  --lossless        to archive the original, bit for bit{ratio('lossless')}",
        f"  --max-error 5uV   when every sample must stay within a bound you choose{ratio('max-error 5 uV')}",
        f"  --prd 10          for the fewest bits at a set overall fidelity{ratio('prd 10 %')}: each 30-s",
        "                    chunk's median channel PRD at most 10 % (the whole file's may differ a little)",
    ]
    if codec is not None:
        lines += [
            "  --codebooks N     for the model's discrete tokens (machine learning), not for archiving;",
            "                    this recording's subject was in the model's training data (other runs),",
            "                    so expect a higher PRD on new people",
        ]
    return lines + ["The first three need no model and run without torch."]
