"""``eegcodec verify``: decode ``.eegc`` files and check them, writing nothing."""

from __future__ import annotations

from pathlib import Path

from .common import for_each_file, model_args


def add_parser(sub) -> None:
    v = sub.add_parser(
        "verify",
        help="decode .eegc files and check them, writing nothing",
        description="Decode each .eegc file completely and check it (like flac -t); exit 1 if any fails.",
    )
    v.add_argument("inputs", nargs="+", metavar="INPUT", help=".eegc file(s) or folder(s)")
    v.add_argument("-q", "--quiet", action="store_true")
    model_args(v, default=None)


def run(args) -> int:
    from ..api import load_codec, verify
    from ..io import find_inputs

    jobs = [(src, src) for src, _ in find_inputs(args.inputs, (".eegc",))]
    codec = load_codec(args.model, device=args.device) if args.model else None

    def work(src: Path, _dst: Path, progress) -> None:
        verify(src, codec, progress=progress)
        if not args.quiet:
            print(f"{src}: ok")

    return for_each_file(jobs, args, work, "verified")
