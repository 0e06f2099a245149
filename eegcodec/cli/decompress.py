"""``eegcodec decompress``: ``.eegc`` files -> EDF/BDF/FIF/BrainVision/EEGLAB."""

from __future__ import annotations

from pathlib import Path

from .common import copy_sidecars, corpus_args, for_each_file, in_processes, model_args, model_device, plan


def add_parser(sub) -> None:
    d = sub.add_parser(
        "decompress",
        help=".eegc -> EDF/BDF/FIF/BrainVision/EEGLAB",
        description="Rebuild recordings from ..eegc files.",
    )
    d.add_argument("inputs", nargs="+", metavar="INPUT", help=".eegc file(s) or folder(s)")
    d.add_argument(
        "-o",
        "--output",
        help="output file (extension picks the format: .edf .bdf .fif .vhdr .set) or folder "
        "(default: NAME.decoded.EXT beside the input; never an existing file without --force)",
    )
    d.add_argument(
        "--format",
        default=None,
        choices=["edf", "bdf", "fif", "vhdr", "set"],
        help="format when -o is a folder or absent (default: the original recording's, else edf)",
    )
    d.add_argument(
        "-f", "--force", action="store_true", help="overwrite existing outputs (never the input itself)"
    )
    d.add_argument("--tmin", type=float, metavar="SECONDS", help="write only from this time on")
    d.add_argument("--tmax", type=float, metavar="SECONDS", help="write only up to this time (excluded)")
    d.add_argument(
        "--picks", nargs="+", metavar="CHANNEL", help="write only these channels (names; default: all)"
    )
    d.add_argument("-q", "--quiet", action="store_true")
    model_args(d, default=None)
    corpus_args(d)


def run(args) -> int:
    from ..api import codec_for, load_codec, read_archive, write_decoded
    from ..io import check_output, output_format

    def suffix(src: Path, beside: bool) -> str:
        return (".decoded" if beside else "") + "." + (args.format or "edf")

    split = in_processes(args)
    if split is not None:
        return split
    # without --format each output takes its original's format, known once its header is read:
    # those outputs are checked per file, after reading and before decoding
    deferred = args.format is None
    jobs, sidecars = plan(args, (".eegc",), suffix, check_jobs=not deferred)
    for src, dst in jobs:
        output_format(dst)
        if deferred and args.output and dst == Path(args.output) and not args.skip_existing:
            check_output(dst, [src], args.force)  # -o named the file: checked before a model loads
    codec = load_codec(args.model, device=model_device(args)) if args.model else None

    def work(src: Path, dst: Path, progress) -> None:
        window = {"tmin": args.tmin, "tmax": args.tmax, "picks": args.picks}
        # a window opens the file in place (version 8: only its chunks' frames are read and checked)
        archive = read_archive(src, lazy=any(v is not None for v in window.values()))
        if deferred:
            dst = _as_source(archive, dst, args)
            output_format(dst)
            if args.skip_existing and dst.exists():
                return
            check_output(dst, [src], args.force)
        write_decoded(archive, codec_for(archive, codec), dst, args.force, progress, **window)
        if not args.quiet:
            print(f"{src} -> {dst}")

    status = for_each_file(jobs, args, work, "decompressed")
    copy_sidecars(sidecars, args)
    return status


def _as_source(archive, dst: Path, args) -> Path:
    """``dst`` with the original recording's extension (from the archive's header) when -o did
    not name the output file itself and that format is writable."""
    from ..io import WRITE_FORMATS

    if args.output and dst == Path(args.output):
        return dst
    name = ((archive.header.source or {}).get("name") or "").lower()
    ext = next((e for e in WRITE_FORMATS if name.endswith(e)), None)
    return dst if ext is None else dst.with_name(dst.name[: -len(dst.suffix)] + ext)
