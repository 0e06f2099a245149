"""The ``eegcodec`` command line: compress, decompress, info, eval, models, train, bench, align.

Errors print one line (``eegcodec: error: ...``) and exit with status 1 (2 for
usage errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

EXIT_ERROR = 1

#: a coded channel with more than this fraction of its samples stored exactly is reported
OFTEN_EXACT = 0.05


def _show_progress(args) -> bool:
    """Progress bars go to an interactive terminal only (not to logs or pipes)."""
    return not args.quiet and sys.stderr.isatty()


def _for_each_file(files: list[Path], args, work) -> None:
    """Call ``work(src, progress)`` per file, with a files bar and a per-file samples bar."""
    from tqdm import tqdm

    show = _show_progress(args)
    for src in tqdm(files, desc="files", disable=len(files) < 2 or not show):
        bar = tqdm(total=1, desc=src.name, unit="sample", unit_scale=True, disable=not show, leave=False, dynamic_ncols=True)

        def update(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            work(src, update)
        finally:
            bar.close()


def _out_path(src: Path, output: str | None, n_inputs: int, suffix: str) -> Path:
    stem = src.name[: -len(".fif.gz")] if src.name.lower().endswith(".fif.gz") else src.stem
    if output is None:
        return src.with_name(stem + suffix)
    out = Path(output)
    if n_inputs > 1 or out.is_dir() or output.endswith(("/", "\\")):
        return out / (stem + suffix)
    return out


def often_exact_channels(arc) -> dict[str, float]:
    """Coded channels whose samples were stored exactly more than ``OFTEN_EXACT`` of the
    time -> that fraction. The model does not follow such a channel (often a non-EEG
    signal typed EEG in the file, e.g. ECG), and each such sample costs 32 bits."""
    import numpy as np

    from .container import unpack_arrays

    h = arc.header
    coded, n, names = h["channels"]["coded"], h["recording"]["n_samples"], h["recording"]["ch_names"]
    if not coded:
        return {}
    counts = np.bincount(unpack_arrays(arc.side, h["side"])["outlier_channel"], minlength=len(coded))
    return {names[coded[i]]: round(float(c) / n, 4) for i, c in enumerate(counts) if c > OFTEN_EXACT * n}


def _often_exact_lines(channels: dict[str, float]) -> list[str]:
    return [f"warning: {name}: {100 * f:.1f} % of its samples stored exactly (32 bits each), the model does not follow it; "
            "if it is not EEG, type it misc to store it losslessly" for name, f in channels.items()]


def cmd_compress(args) -> int:
    from .api import compress
    from .container import Archive
    from .io import find_recordings
    from .models import load_codec

    codec = load_codec(args.model, device=args.device)
    files = find_recordings(args.inputs)

    def work(src: Path, progress) -> None:
        dst = _out_path(src, args.output, len(files), ".eegc")
        data = compress(src, dst, codec, n_codebooks=args.codebooks, anonymize=args.anonymize, progress=progress)
        if not args.quiet:
            print(f"{src} -> {dst} ({src.stat().st_size:,} -> {len(data):,} bytes, {src.stat().st_size / len(data):.1f}x)")
        for line in _often_exact_lines(often_exact_channels(Archive.from_bytes(data))):
            print(f"{src}: {line}", file=sys.stderr)

    _for_each_file(files, args, work)
    return 0


def cmd_decompress(args) -> int:
    from .api import decompress
    from .io import find_recordings
    from .models import load_codec

    files = find_recordings(args.inputs, (".eegc",))
    codec = load_codec(args.model, device=args.device) if args.model else None

    def work(src: Path, progress) -> None:
        dst = _out_path(src, args.output, len(files), "." + args.format)
        decompress(src, dst, codec=codec, progress=progress)
        if not args.quiet:
            print(f"{src} -> {dst}")

    _for_each_file(files, args, work)
    return 0


def describe_archive(path: Path) -> dict:
    """Summary of an ``.eegc`` file: recording, model, sizes, bits per sample."""
    from .api import read_archive

    arc = read_archive(path)
    h = arc.header
    rec = h["recording"]
    n_coded = len(h["channels"]["coded"])
    n = rec["n_samples"]
    payload = arc.section_sizes["CODE"] + arc.section_sizes["SIDE"]
    total = path.stat().st_size
    bps = 8 * payload / max(1, n_coded * n)
    return {
        "file": str(path),
        "file_bytes": total,
        "sections": arc.section_sizes,
        "recording": {
            "channels": len(rec["ch_names"]),
            "coded_channels": n_coded,
            "lossless_channels": {rec["ch_names"][int(i)]: r for i, r in h["channels"]["lossless_reasons"].items()},
            "sfreq": rec["sfreq"],
            "n_samples": n,
            "duration_s": round(n / rec["sfreq"], 3),
            "meas_date": rec["meas_date"],
            "anonymized": rec["anonymized"],
            "annotations": len(h["annotations"]["onset"]),
        },
        "model": h["model"]["name"],
        "weights_sha256": h["model"]["weights_sha256"],
        "codebooks": h["codebooks"],
        "bits_per_sample": round(bps, 4),
        "cr16": round(16 / bps, 2) if bps else None,
        "file_bits_per_sample": round(8 * total / max(1, len(rec["ch_names"]) * n), 4),
        "source": h.get("source"),
        "compression_ratio_vs_source": round(h["source"]["bytes"] / total, 2) if h.get("source") else None,
        "often_exact_channels": often_exact_channels(arc),
    }


def cmd_info(args) -> int:
    d = describe_archive(Path(args.input))
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    r = d["recording"]
    print(f"file            {d['file']} ({d['file_bytes']:,} bytes)")
    print(f"recording       {r['channels']} channels ({r['coded_channels']} coded), {r['sfreq']:g} Hz, {r['duration_s']:g} s, {r['annotations']} annotations")
    print(f"measured        {r['meas_date']}{'  (anonymized)' if r['anonymized'] else ''}")
    for name, why in r["lossless_channels"].items():
        print(f"lossless        {name}: {why}")
    print(f"model           {d['model']} (weights sha256 {d['weights_sha256'][:16]}...), {d['codebooks']} codebooks")
    print("sections        " + ", ".join(f"{k} {v:,} B" for k, v in d["sections"].items()))
    print(f"bits/sample     {d['bits_per_sample']} (codes + side data over coded channels x samples); CR16 {d['cr16']}")
    print(f"whole file      {d['file_bits_per_sample']} bits/sample over all channels")
    if d["compression_ratio_vs_source"]:
        print(f"vs source       {d['source']['name'] or '(name removed)'} {d['source']['bytes']:,} bytes -> {d['compression_ratio_vs_source']}x smaller")
    for line in _often_exact_lines(d["often_exact_channels"]):
        print(line)
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_file, format_table
    from .models import load_codec

    from .adapt import AdapterConfig
    from .io import find_recordings
    from .train.config import parse_override

    codec = load_codec(args.model, device=args.device)
    depths = args.codebooks or list(range(1, codec.info.n_codebooks + 1))
    adapter = None
    if args.set:
        changes = dict(parse_override(item) for item in args.set)
        adapter = AdapterConfig.from_dict({**codec.info.adapter.to_dict(), **changes})
    rows = []
    for src in find_recordings(args.inputs):
        rows += evaluate_file(src, codec, depths, crop_seconds=args.crop, progress=_show_progress(args), adapter=adapter)
    print(format_table(rows))
    if args.json:
        from .io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(rows, indent=1).encode())
    return 0


def cmd_models(args) -> int:
    from .models import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        extra = ""
        if "sample_rate" in r:
            extra = (f"{r['sample_rate']} Hz, hop {r['hop_length']}, up to {r['n_codebooks']} codebooks of {r['codebook_size']} "
                     f"(default {r['default_codebooks']})") + (f", {r['size_mb']} MB" if "size_mb" in r else "")
            if "multichannel_tokens" in r:
                extra += f"; multi-channel: {r['multichannel_tokens']} spatial tokens per frame"
        print(f"{r['name']:<22} {r['status']:<30} {extra}")
    return 0


def cmd_train(args) -> int:
    from .train.config import load_recipe
    from .train.trainer import Trainer

    cfg = load_recipe(args.recipe, args.set or [])
    if args.steps:
        cfg.steps = args.steps
    trainer = Trainer(cfg, args.out, resume=args.resume)
    try:
        last = trainer.fit()
    finally:
        trainer.close()
    if trainer.is_main:
        print(json.dumps({"step": trainer.step, "last_losses": last, "best_val_score": trainer.best}, indent=1))
    return 0


def _model_labels(entries: list[str]) -> tuple[list[str], list[str | None]]:
    """``NAME``, ``PATH`` or ``LABEL=NAME_OR_PATH`` -> (models, labels); the label names the model in reports."""
    models, labels = [], []
    for e in entries:
        label, sep, model = e.partition("=")
        if sep and label and "/" not in label:
            models.append(model)
            labels.append(label)
        else:
            models.append(e)
            labels.append(None)
    return models, labels


def cmd_bench(args) -> int:
    from .errors import EegcodecError

    try:
        from benchmarks import downstream, rd, speed
    except ImportError as exc:  # a wheel built without the benchmarks package
        raise EegcodecError(f"the benchmarks package is not installed ({exc}); install eegcodec from its repository") from exc
    out = Path(args.out)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    models, labels = _model_labels(args.models)
    if args.kind == "speed":
        cfg = speed.SpeedConfig.quick() if args.quick else speed.SpeedConfig()
        cfg.minutes = args.minutes or cfg.minutes
        cfg.channels = args.channels or cfg.channels
        cfg.device = args.device
        cfg.repeats = args.repeats or cfg.repeats
        speed.run(args.inputs, models, out, cfg, progress=say)
    else:
        if not args.inputs:
            raise EegcodecError(f"bench {args.kind} needs recordings (files or folders)")
        if args.kind == "rd":
            cfg = rd.RDConfig.quick() if args.quick else rd.RDConfig()
            cfg.crop_seconds = args.crop if args.crop is not None else cfg.crop_seconds
            cfg.codebooks = args.codebooks or cfg.codebooks
            rd.run(args.inputs, models, out, cfg, labels=labels, progress=say)
        else:
            cfg = downstream.DownstreamConfig.quick() if args.quick else downstream.DownstreamConfig()
            cfg.codebooks = args.codebooks or cfg.codebooks
            downstream.run(args.inputs, models, out, cfg, labels=labels, progress=say)
    if not args.quiet:
        print((out / "report.md").read_text())
        print(f"wrote {out / 'results.json'}, {out / 'report.md'} and figures")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eegcodec", description="Compress EEG recordings with neural audio codecs.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def model_args(sp, default="default"):
        sp.add_argument("--model", default=default, help="model name (see 'eegcodec models') or weights file (default: %(default)s)")
        sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default: cpu)")

    c = sub.add_parser("compress", help="EEG file(s) -> .eegc", description="Compress recordings (any MNE-readable format; folders are searched recursively).")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="recording file(s) or folder(s)")
    c.add_argument("-o", "--output", help="output .eegc file, or a folder for several inputs (default: beside the input)")
    c.add_argument("--codebooks", type=int, default=None, metavar="N", help="codebook depth, 1..the model's maximum (default: the model's recommended depth; see 'eegcodec models')")
    c.add_argument("--anonymize", action="store_true", help="remove subject identity and measurement date from the stored header")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    model_args(c)
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help=".eegc -> EDF/BDF/FIF/BrainVision/EEGLAB", description="Rebuild recordings from .eegc files.")
    d.add_argument("inputs", nargs="+", metavar="INPUT", help=".eegc file(s) or folder(s)")
    d.add_argument("-o", "--output", help="output file (extension picks the format: .edf .bdf .fif .vhdr .set) or folder")
    d.add_argument("--format", default="edf", choices=["edf", "bdf", "fif", "vhdr", "set"], help="format when -o is a folder or absent (default: edf)")
    d.add_argument("-q", "--quiet", action="store_true")
    model_args(d, default=None)
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("info", help="what an .eegc file holds", description="Show an .eegc file's recording, model, sizes and bits per sample.")
    i.add_argument("input", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)

    e = sub.add_parser("eval", help="compress + decompress + metrics table", description="Round-trip recordings at several codebook depths and report bits/sample, CR16, PRD, SNR, Pearson r, spectral error.")
    e.add_argument("inputs", nargs="+", metavar="INPUT")
    e.add_argument("--codebooks", type=int, nargs="+", metavar="N", help="depths to evaluate (default: all)")
    e.add_argument("--crop", type=float, default=None, metavar="SECONDS", help="use only the first SECONDS of each recording")
    e.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    e.add_argument("--set", action="append", metavar="KEY=VALUE", help="override an adapter setting for this evaluation, e.g. --set baseline_seconds=0")
    e.add_argument("-q", "--quiet", action="store_true")
    model_args(e)
    e.set_defaults(func=cmd_eval)

    m = sub.add_parser("models", help="list shipped and cached models", description="List shipped and cached models with their rates and depths.")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    t = sub.add_parser("train", help="train a codec from a YAML recipe", description="Train or fine-tune a codec (works under torchrun --no-python).")
    t.add_argument("recipe", metavar="RECIPE.yaml")
    t.add_argument("--out", required=True, metavar="DIR", help="run folder (checkpoints, TensorBoard logs)")
    t.add_argument("--steps", type=int, help="override the recipe's step count")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. --set optim.lr=3e-4")
    t.add_argument("--resume", action="store_true", help="continue from DIR/state.pt")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="benchmarks: rate-distortion, downstream tasks, speed",
                       description="Run a benchmark on recordings; writes DIR/results.json, DIR/report.md and PNG figures.")
    b.add_argument("kind", choices=["rd", "downstream", "speed"], help="rd: bits vs fidelity with classical coders; downstream: "
                   "classifiers on reconstructed EEG; speed: real-time factor and peak memory")
    b.add_argument("inputs", nargs="*", metavar="INPUT", help="recording files or folders (speed: the first is tiled to each length)")
    b.add_argument("--out", required=True, metavar="DIR")
    b.add_argument("--models", nargs="+", default=["default"], metavar="MODEL",
                   help="model names or files, optionally LABEL=MODEL (speed also takes dac16k-sized); default: default")
    b.add_argument("--quick", action="store_true", help="small settings for a smoke run (short crops, one depth, short recordings)")
    b.add_argument("--codebooks", type=int, nargs="+", metavar="N", help="depths (rd default: all; downstream: 1, 3, 6, max)")
    b.add_argument("--crop", type=float, metavar="SECONDS", help="rd: seconds from the start of each recording (default 60)")
    b.add_argument("--minutes", type=float, nargs="+", help="speed: recording lengths (default 1 10 60)")
    b.add_argument("--channels", type=int, help="speed: channel count of the built recordings (default: the input's, or 64)")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="speed: where the model runs")
    b.add_argument("--repeats", type=int, metavar="N", help="speed: runs of each verb, median reported (default 3; --quick 1)")
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(func=cmd_bench)

    from .align.cli import add_align_parser

    add_align_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        warnings.filterwarnings("ignore")
    from .errors import EegcodecError

    try:
        return args.func(args)
    except EegcodecError as exc:
        if args.debug:
            raise
        print(f"eegcodec: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("eegcodec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, or an unexpected library failure: still one line
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"eegcodec: error: {type(exc).__name__}: {msg} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
