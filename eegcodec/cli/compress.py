"""``eegcodec compress``: recordings -> ``.eegc`` files."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import (
    copy_sidecars,
    corpus_args,
    for_each_file,
    in_processes,
    measured_line,
    model_args,
    model_device,
    often_exact_lines,
    plan,
)


def _parse_ch_types(items: list[str] | None) -> dict[str, str]:
    from ..errors import EegcodecError

    out = {}
    for item in items or []:
        name, sep, kind = item.rpartition("=")
        if not sep or not name or not kind:
            raise EegcodecError(f"--ch-type expects NAME=TYPE (e.g. 'ECG ECG=ecg'), got {item!r}")
        out[name] = kind.strip()
    return out


#: a token file whose median channel PRD is at least this (%) is warned about when written
POOR_PRD = 80.0


def _poor_fit_lines(measured: dict | None) -> list[str]:
    if not measured or measured["median"] < POOR_PRD:
        return []
    return [
        f"warning: the model follows this recording poorly (median channel PRD {measured['median']:g} %); "
        f"for a set fidelity compress with --prd PERCENT, --max-error or --lossless"
    ]


def add_parser(sub) -> None:
    c = sub.add_parser(
        "compress",
        help="EEG file(s) -> .eegc",
        description="Compress recordings (any MNE-readable format; folders are searched recursively).",
    )
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="recording file(s) or folder(s)")
    c.add_argument(
        "-o", "--output", help="output .eegc file, or a folder for several inputs (default: beside the input)"
    )
    c.add_argument(
        "--codebooks",
        type=int,
        default=None,
        metavar="N",
        help="codebook depth, 1..the model's maximum (default: the model's recommended depth; see 'eegcodec "
        "models')",
    )
    from ..modes import add_cli_options

    add_cli_options(c)  # --prd, --max-error, --lossless, and any other registered mode's options
    c.add_argument(
        "--anonymize",
        action="store_true",
        help="remove subject identity and measurement date from the stored header",
    )
    c.add_argument(
        "--ch-type",
        action="append",
        metavar="NAME=TYPE",
        help="retype a channel before compressing, e.g. --ch-type 'ECG ECG=ecg' (repeatable); "
        "channels typed other than eeg/eog/seeg/ecog/dbs are stored exactly on their own sample grid",
    )
    c.add_argument(
        "-f", "--force", action="store_true", help="overwrite existing outputs (never the input itself)"
    )
    c.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    model_args(c)
    corpus_args(c)


def run(args) -> int:
    from ..api import compress, load_codec, often_exact_channels
    from ..errors import EegcodecError
    from ..format.container import Archive
    from ..modes import from_cli

    ch_types = _parse_ch_types(args.ch_type)
    mode = from_cli(args, args.codebooks)  # every option checked, before any file is touched
    split = in_processes(args)  # after the arguments are checked, before any file is touched
    if split is not None:
        return split
    jobs, sidecars = plan(args, _compress_suffixes(), lambda src, beside: ".eegc")
    if args.output and len(jobs) == 1 and not jobs[0][1].name.endswith(".eegc"):
        raise EegcodecError(f"output {jobs[0][1]} should end in .eegc")
    codec = load_codec(args.model, device=model_device(args)) if mode.needs_model() else None

    def work(src: Path, dst: Path, progress) -> None:
        data = compress(
            src,
            dst,
            codec,
            mode=mode,
            anonymize=args.anonymize,
            ch_types=ch_types,
            overwrite=args.force,
            progress=progress,
        )
        if not args.quiet:
            size = src.stat().st_size
            print(f"{src} -> {dst} ({size:,} -> {len(data):,} bytes, {size / len(data):.1f}x)")
        if mode.name == "tokens":  # token files: what the model kept, missed samples
            archive = Archive.from_bytes(data)
            measured = archive.header.measured_prd
            if measured and not args.quiet:
                print(f"{src}: {measured_line(measured)}")
            for line in _poor_fit_lines(measured) + often_exact_lines(often_exact_channels(archive)):
                print(f"{src}: {line}", file=sys.stderr)

    status = for_each_file(jobs, args, work, "compressed")
    copy_sidecars(sidecars, args)
    return status


def _compress_suffixes():
    from ..io import FOLDER_SUFFIXES

    return FOLDER_SUFFIXES
