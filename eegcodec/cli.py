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


def _show_progress(args) -> bool:
    """Progress bars go to an interactive terminal only (not to logs or pipes)."""
    return not args.quiet and sys.stderr.isatty()


def _for_each_file(jobs: list[tuple[Path, Path]], args, work, verb: str) -> int:
    """Call ``work(src, dst, progress)`` per (input, output) pair with a files bar and a
    per-file samples bar. A failing file is reported on one line and the run goes on;
    returns the exit status (1 if any file failed) after a summary line."""
    from tqdm import tqdm

    from .errors import EegcodecError

    show = _show_progress(args)
    failed = []
    for src, dst in tqdm(jobs, desc="files", disable=len(jobs) < 2 or not show):
        bar = tqdm(
            total=1,
            desc=src.name,
            unit="sample",
            unit_scale=True,
            disable=not show,
            leave=False,
            dynamic_ncols=True,
        )

        def update(done: int, total: int, bar=bar) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            work(src, dst, update)
        except Exception as exc:  # one bad file never stops a folder run
            if args.debug:
                raise
            failed.append(src)
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            kind = "" if isinstance(exc, (EegcodecError, OSError)) else f"{type(exc).__name__}: "
            where = "" if str(src) in msg else f"{src}: "
            print(f"eegcodec: error: {where}{kind}{msg}", file=sys.stderr)
        finally:
            bar.close()
    if len(jobs) > 1:
        print(
            f"{verb} {len(jobs) - len(failed)} of {len(jobs)} files"
            + (f"; {len(failed)} failed" if failed else ""),
            file=sys.stderr,
        )
    return EXIT_ERROR if failed else 0


def _plan(
    args, suffixes: tuple[str, ...], out_suffix, check_jobs: bool = True
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(input, output) pairs, and (sidecar, copy) pairs, checked before any model is loaded.

    Outputs mirror each named folder's tree under ``-o`` (a folder when several inputs or a
    folder are given); without ``-o`` they go beside their inputs. ``out_suffix(src, beside)``
    gives an output's name ending. An output that exists (without ``--force``) or is its own
    input is an error here, before any work."""
    from .errors import EegcodecError
    from .io import check_output, find_inputs, find_sidecars

    inputs = find_inputs(args.inputs, suffixes)
    out = Path(args.output) if args.output else None
    to_folder = out is not None and (
        len(inputs) > 1
        or out.is_dir()
        or args.output.endswith(("/", "\\"))
        or any(Path(p).is_dir() for p in args.inputs)
    )
    jobs = []
    for src, rel in inputs:
        stem = src.name[: -len(".fif.gz")] if src.name.lower().endswith(".fif.gz") else src.stem
        if out is None:
            dst = src.with_name(stem + out_suffix(src, True))
        elif to_folder:
            dst = out / rel.parent / (stem + out_suffix(src, False))
        else:
            dst = out
        jobs.append((src, dst))
    dsts = [d.resolve() for _, d in jobs]
    if len(set(dsts)) != len(dsts):
        dup = next(d for d in dsts if dsts.count(d) > 1)
        raise EegcodecError(f"two inputs would be written to {dup}; give them separate output folders")
    rank, world = _shard(args)
    jobs = jobs[rank::world]
    if getattr(args, "skip_existing", False) and check_jobs:
        jobs = _without_finished(jobs, args)
    sidecars = []
    if to_folder and rank == 0:
        for folder in (Path(p) for p in args.inputs if Path(p).is_dir()):
            sidecars += [(f, out / rel) for f, rel in find_sidecars(folder)]
    sources = [src for src, _ in inputs]
    for _, dst in (jobs if check_jobs else []) + sidecars:
        check_output(dst, sources, args.force)
    return jobs, sidecars


def _shard(args) -> tuple[int, int]:
    """(this process's shard, number of shards) from ``--shard I/N`` or, with ``--shard auto``,
    from the ``RANK`` and ``WORLD_SIZE`` that torchrun (or a cluster launcher) sets; (0, 1) without."""
    import os

    from .errors import EegcodecError

    text = getattr(args, "shard", None)
    if not text:
        return 0, 1
    if text == "auto":
        text = f"{os.environ.get('RANK', '0')}/{os.environ.get('WORLD_SIZE', '1')}"
    try:
        rank, world = (int(v) for v in text.split("/"))
    except ValueError:
        rank, world = -1, 0
    if not 0 <= rank < world:
        raise EegcodecError(f"--shard expects I/N with 0 <= I < N, or auto, got {text!r}")
    return rank, world


def _without_finished(jobs: list[tuple[Path, Path]], args) -> list[tuple[Path, Path]]:
    """The jobs whose output does not exist yet (outputs are written atomically: one that exists
    is complete), with a line saying how many were skipped."""
    left = [(src, dst) for src, dst in jobs if not dst.exists()]
    if len(left) < len(jobs) and not args.quiet:
        print(
            f"skipping {len(jobs) - len(left)} files whose output exists (--skip-existing)", file=sys.stderr
        )
    return left


def _in_processes(args) -> int | None:
    """With ``--jobs N`` (N > 1): run this command as N child processes, child i with
    ``--shard i/N``, and return the worst exit status; None when there is nothing to split."""
    import os
    import subprocess

    from .errors import EegcodecError

    if args.jobs <= 1:
        return None
    if args.shard:
        raise EegcodecError("--jobs splits the inputs itself; use --shard or --jobs, not both")
    argv, i = [], 0
    while i < len(args.argv):  # the command as given, without --jobs
        a = args.argv[i]
        i += 2 if a == "--jobs" else 1
        if not (a == "--jobs" or a.startswith("--jobs=")):
            argv.append(a)
    threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "eegcodec.cli", *argv, "--shard", f"{i}/{args.jobs}"], env=env
        )
        for i in range(args.jobs)
    ]
    return max(child.wait() for child in children)


def _device(args) -> str:
    """``--device``; with cuda under torchrun, the process's own card (``LOCAL_RANK``)."""
    import os

    if args.device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return args.device


def _copy_sidecars(sidecars: list[tuple[Path, Path]], args) -> None:
    import shutil

    from .io import atomic_write_bytes

    for src, dst in sidecars:
        atomic_write_bytes(dst, src.read_bytes())
        shutil.copystat(src, dst)
    if sidecars and not args.quiet:
        print(
            f"copied {len(sidecars)} sidecar files (.json, .tsv, README ...) beside the outputs",
            file=sys.stderr,
        )


def _parse_ch_types(items: list[str] | None) -> dict[str, str]:
    from .errors import EegcodecError

    out = {}
    for item in items or []:
        name, sep, kind = item.rpartition("=")
        if not sep or not name or not kind:
            raise EegcodecError(f"--ch-type expects NAME=TYPE (e.g. 'ECG ECG=ecg'), got {item!r}")
        out[name] = kind.strip()
    return out


def _often_exact_lines(channels: dict[str, float]) -> list[str]:
    return [
        f"warning: {name}: {100 * f:.1f} % of its samples stored exactly (32 bits each), the model does not "
        f"follow it; "
        f"if it is not EEG, compress with --ch-type '{name}=ecg' (or emg, misc) to store it exactly on its "
        f"own grid"
        for name, f in channels.items()
    ]


#: a token file whose median channel PRD is at least this (%) is warned about when written
POOR_PRD = 80.0


def _measured_line(measured: dict) -> str:
    worst = ", ".join(f"{name} {prd:g} %" for name, prd in measured["worst"])
    median, p90 = measured["median"], measured["p90"]
    return f"PRD {median:g} % median, {p90:g} % p90 (worst: {worst}), measured when compressed"


def _poor_fit_lines(measured: dict | None) -> list[str]:
    if not measured or measured["median"] < POOR_PRD:
        return []
    return [
        f"warning: the model follows this recording poorly (median channel PRD {measured['median']:g} %); "
        f"for a set fidelity compress with --prd PERCENT, --max-error or --lossless"
    ]


def cmd_compress(args) -> int:
    from .api import compress, load_codec, often_exact_channels
    from .container import Archive
    from .errors import EegcodecError
    from .header import PRD_RANGE

    ch_types = _parse_ch_types(args.ch_type)
    max_error = parse_volts(args.max_error) if args.max_error else None
    if (args.lossless or max_error) and args.codebooks:
        raise EegcodecError("--codebooks applies to token files; --lossless and --max-error hold no tokens")
    if args.lossless + (max_error is not None) + (args.prd is not None) > 1:
        raise EegcodecError("choose one of --lossless, --max-error and --prd")
    if args.prd is not None and not PRD_RANGE[0] <= args.prd < PRD_RANGE[1]:
        raise EegcodecError(
            f"--prd must be at least {PRD_RANGE[0]:g} and below {PRD_RANGE[1]:g} (percent), "
            f"got {args.prd:g}; for an exact copy use --lossless, for a bound on every sample --max-error"
        )
    split = _in_processes(args)  # after the arguments are checked, before any file is touched
    if split is not None:
        return split
    jobs, sidecars = _plan(args, _compress_suffixes(), lambda src, beside: ".eegc")
    if args.output and len(jobs) == 1 and not jobs[0][1].name.endswith(".eegc"):
        raise EegcodecError(f"output {jobs[0][1]} should end in .eegc")
    no_model = args.lossless or max_error or (args.prd is not None and not args.codebooks)
    codec = None if no_model else load_codec(args.model, device=_device(args))

    def work(src: Path, dst: Path, progress) -> None:
        data = compress(
            src,
            dst,
            codec,
            lossless=args.lossless,
            max_error=max_error,
            prd=args.prd,
            n_codebooks=args.codebooks,
            anonymize=args.anonymize,
            ch_types=ch_types,
            overwrite=args.force,
            progress=progress,
        )
        if not args.quiet:
            size = src.stat().st_size
            print(f"{src} -> {dst} ({size:,} -> {len(data):,} bytes, {size / len(data):.1f}x)")
        if codec is not None and args.prd is None:  # token files: what the model kept, missed samples
            archive = Archive.from_bytes(data)
            measured = archive.header.measured_prd
            if measured and not args.quiet:
                print(f"{src}: {_measured_line(measured)}")
            for line in _poor_fit_lines(measured) + _often_exact_lines(often_exact_channels(archive)):
                print(f"{src}: {line}", file=sys.stderr)

    status = _for_each_file(jobs, args, work, "compressed")
    _copy_sidecars(sidecars, args)
    return status


def parse_volts(text: str) -> float:
    """``"2uV"``, ``"2 µV"``, ``"0.5mV"``, ``"1e-6V"`` -> volts; a number without a unit is an error."""
    import re

    from .errors import EegcodecError

    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(nV|uV|µV|mV|V)\s*", text)
    scale = {"nV": 1e-9, "uV": 1e-6, "µV": 1e-6, "mV": 1e-3, "V": 1.0}
    try:
        value = float(m.group(1)) * scale[m.group(2)] if m else None
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise EegcodecError(
            f"--max-error expects a positive voltage with its unit (e.g. 2uV, 0.5uV, 1mV), got {text!r}"
        )
    return value


def _compress_suffixes():
    from .io import FOLDER_SUFFIXES

    return FOLDER_SUFFIXES


def cmd_decompress(args) -> int:
    from .api import codec_for, load_codec, read_archive, write_decoded
    from .io import check_output, output_format

    def suffix(src: Path, beside: bool) -> str:
        return (".decoded" if beside else "") + "." + (args.format or "edf")

    split = _in_processes(args)
    if split is not None:
        return split
    # without --format each output takes its original's format, known once its header is read:
    # those outputs are checked per file, after reading and before decoding
    deferred = args.format is None
    jobs, sidecars = _plan(args, (".eegc",), suffix, check_jobs=not deferred)
    for _, dst in jobs:
        output_format(dst)
    codec = load_codec(args.model, device=_device(args)) if args.model else None

    def work(src: Path, dst: Path, progress) -> None:
        archive = read_archive(src)
        if deferred:
            dst = _as_source(archive, dst, args)
            output_format(dst)
            if args.skip_existing and dst.exists():
                return
            check_output(dst, [src], args.force)
        write_decoded(archive, codec_for(archive, codec), dst, args.force, progress)
        if not args.quiet:
            print(f"{src} -> {dst}")

    status = _for_each_file(jobs, args, work, "decompressed")
    _copy_sidecars(sidecars, args)
    return status


def _as_source(archive, dst: Path, args) -> Path:
    """``dst`` with the original recording's extension (from the archive's header) when -o did
    not name the output file itself and that format is writable."""
    from .io import WRITE_FORMATS

    if args.output and dst == Path(args.output):
        return dst
    name = ((archive.header.source or {}).get("name") or "").lower()
    ext = next((e for e in WRITE_FORMATS if name.endswith(e)), None)
    return dst if ext is None else dst.with_name(dst.name[: -len(dst.suffix)] + ext)


def cmd_verify(args) -> int:
    from .api import codec_for, load_codec, read_archive
    from .io import find_inputs
    from .pipeline import decoded_chunks

    jobs = [(src, src) for src, _ in find_inputs(args.inputs, (".eegc",))]
    codec = load_codec(args.model, device=args.device) if args.model else None

    def work(src: Path, _dst: Path, progress) -> None:
        archive = read_archive(src)
        for _ in decoded_chunks(archive, codec_for(archive, codec), progress=progress):
            pass  # every chunk decoded and checked, one at a time (memory: a chunk, not the recording)
        if not args.quiet:
            print(f"{src}: ok")

    return _for_each_file(jobs, args, work, "verified")


def cmd_info(args) -> int:
    from .reader import describe

    d = describe(Path(args.input))
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    r = d["recording"]
    print(f"file            {d['file']} ({d['file_bytes']:,} bytes, .eegc version {d['format_version']})")
    print(
        f"recording       {r['channels']} channels ({r['coded_channels']} coded), {r['sfreq']:g} Hz, "
        f"{r['duration_s']:g} s, {r['annotations']} annotations"
    )
    print(f"measured        {r['meas_date']}{'  (anonymized)' if r['anonymized'] else ''}")
    exact = r["lossless_channels"]
    if d["mode"] in ("tokens", "prd"):
        for name, why in exact.items():
            print(f"exact           {name}: {why}")
    if d["model"]:
        sha = d["weights_sha256"][:16]
        print(f"model           {d['model']} (weights sha256 {sha}...), {d['codebooks']} codebooks")
        if d["code_coder"] == "prior":
            print(
                f"codes           entropy-coded under the model's prior (sha256 {d['prior_sha256'][:16]}...)"
            )
    print(f"mode            {d['mode']}: {d['guarantee']}")
    if d["measured_prd"]:
        print(f"fidelity        {_measured_line(d['measured_prd'])}")
    if d["mains"]:
        m = d["mains"]
        print(
            f"mains           {m['min_hz']:g}-{m['max_hz']:g} Hz removed before coding and stored apart "
            f"in {m['chunks']} of {m['of_chunks']} chunks"
        )
    print("sections        " + ", ".join(f"{k} {v:,} B" for k, v in d["sections"].items()))
    over = (
        "codes, layer + side data over coded channels" if d["mode"] in ("tokens", "prd") else "all channels"
    )
    print(f"bits/sample     {d['bits_per_sample']} ({over} x samples); CR16 {d['cr16']}")
    print(f"whole file      {d['file_bits_per_sample']} bits/sample over all channels")
    if d["compression_ratio_vs_source"]:
        print(
            f"vs source       {d['source']['name'] or '(name removed)'} {d['source']['bytes']:,} bytes -> "
            f"{d['compression_ratio_vs_source']}x smaller"
        )
    for line in _often_exact_lines(d["often_exact_channels"]):
        print(line)
    return 0


def cmd_eval(args) -> int:
    from .adapt import AdapterConfig
    from .evaluate import evaluate_file, format_table
    from .io import check_output, find_recordings
    from .models import load_codec
    from .train.config import parse_override

    inputs = find_recordings(args.inputs)
    if args.json:
        check_output(Path(args.json), inputs, args.force)
    prds = args.prd or []
    codec = load_codec(args.model, device=args.device) if args.codebooks or not prds else None
    depths = args.codebooks or ([] if prds else list(range(1, codec.info.n_codebooks + 1)))
    adapter = None
    if args.set:
        changes = dict(parse_override(item) for item in args.set)
        adapter = AdapterConfig.from_dict({**(codec.info.adapter.to_dict() if codec else {}), **changes})
    rows = []
    for src in inputs:
        rows += evaluate_file(
            src,
            codec,
            depths,
            crop_seconds=args.crop,
            progress=_show_progress(args),
            adapter=adapter,
            prds=prds,
        )
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
        if r.get("sample_rate") is not None:
            extra = (
                f"{r['sample_rate']:g} Hz, hop {r['hop_length']}, up to {r['n_codebooks']} codebooks of "
                f"{r['codebook_size']} "
                f"(default {r['default_codebooks']})"
            ) + (f", {r['size_mb']} MB" if "size_mb" in r else "")
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
        print(
            json.dumps({"step": trainer.step, "last_losses": last, "best_val_score": trainer.best}, indent=1)
        )
    return 0


def cmd_train_prior(args) -> int:
    from .codeprior import CodePrior, kept_prior_path, prior_path
    from .io import atomic_write_bytes, check_output, find_recordings, load_crop
    from .models import load_codec, resolve_model
    from .train.prior import PriorTrainConfig, fit

    cfg = PriorTrainConfig(
        steps=args.steps, crop_seconds=args.crop, hidden=args.hidden, split_groups=args.split_groups
    )
    out = Path(args.output) if args.output else prior_path(resolve_model(args.model)[0])
    files = find_recordings(args.train)
    check_output(out, files, args.force)
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


def _model_labels(entries: list[str]) -> tuple[list[str], list[str | None]]:
    """``NAME``, ``PATH`` or ``LABEL=NAME_OR_PATH`` -> (models, labels); labels name models in reports."""
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
        from .bench import downstream, lossless, prior, rd, speed
    except ImportError as exc:  # scikit-learn, PyWavelets, matplotlib: the [bench] extra
        raise EegcodecError(
            f"benchmarks need the [bench] extra ({exc}): pip install 'eegcodec[bench]'"
        ) from exc
    out = Path(args.out)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    models, labels = _model_labels(args.models)
    if args.kind == "speed":
        cfg = speed.SpeedConfig.quick() if args.quick else speed.SpeedConfig()
        cfg.minutes = args.minutes or cfg.minutes
        cfg.channels = args.channels or cfg.channels
        cfg.device = args.device
        cfg.repeats = args.repeats or cfg.repeats
        speed.run(args.inputs, args.models, out, cfg, progress=say)  # modes: prd=10, not labels
    else:
        if not args.inputs:
            raise EegcodecError(f"bench {args.kind} needs recordings (files or folders)")
        if args.kind == "lossless":
            lossless.run(args.inputs, out, progress=say)
        elif args.kind == "prior":
            cfg = prior.PriorConfig.quick() if args.quick else prior.PriorConfig()
            cfg.crop_seconds = args.crop if args.crop is not None else cfg.crop_seconds
            if not args.train:
                raise EegcodecError("bench prior needs --train recordings (the prior is fitted on them)")
            prior.run(args.inputs, args.train, models, out, cfg, labels=labels, progress=say)
        elif args.kind == "rd":
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


def _model_args(sp, default="default"):
    sp.add_argument(
        "--model",
        default=default,
        help="model name (see 'eegcodec models') or weights file (default: %(default)s)",
    )
    sp.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default: cpu)"
    )


def _corpus_args(sp) -> None:
    sp.add_argument(
        "--shard",
        metavar="I/N",
        help="process every N-th file from the I-th (0-based) of the sorted inputs; 'auto' takes I and N "
        "from RANK and WORLD_SIZE (torchrun --no-python eegcodec ... --shard auto)",
    )
    sp.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="N processes, each on every N-th file (a folder run keeps N cores busy; torch threads "
        "are divided among them)",
    )
    sp.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose output exists (resume an interrupted corpus run; outputs are atomic)",
    )


def _add_compress(sub) -> None:
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
    c.add_argument(
        "--lossless",
        action="store_true",
        help="store every channel exactly (the file's own integer samples), coded across channels; no model",
    )
    c.add_argument(
        "--max-error",
        metavar="VOLTS",
        help="every sample of the EEG channels within this bound, guaranteed, e.g. 2uV; no model",
    )
    c.add_argument(
        "--prd",
        type=float,
        metavar="PERCENT",
        help="code the EEG channels with the multichannel transform coder so that each chunk's median "
        "channel PRD is at most this (e.g. 10); no model, unless --codebooks puts model tokens under it "
        "(kept only where they save bits)",
    )
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
    _model_args(c)
    _corpus_args(c)
    c.set_defaults(func=cmd_compress)


def _add_decompress(sub) -> None:
    d = sub.add_parser(
        "decompress",
        help=".eegc -> EDF/BDF/FIF/BrainVision/EEGLAB",
        description="Rebuild recordings from .eegc files.",
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
    d.add_argument("-q", "--quiet", action="store_true")
    _model_args(d, default=None)
    _corpus_args(d)
    d.set_defaults(func=cmd_decompress)


def _add_verify(sub) -> None:
    v = sub.add_parser(
        "verify",
        help="decode .eegc files and check them, writing nothing",
        description="Decode each .eegc file completely and check it (like flac -t); exit 1 if any fails.",
    )
    v.add_argument("inputs", nargs="+", metavar="INPUT", help=".eegc file(s) or folder(s)")
    v.add_argument("-q", "--quiet", action="store_true")
    _model_args(v, default=None)
    v.set_defaults(func=cmd_verify)


def _add_info(sub) -> None:
    i = sub.add_parser(
        "info",
        help="what an .eegc file holds",
        description="Show an .eegc file's recording, model, sizes and bits per sample.",
    )
    i.add_argument("input", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)


def _add_eval(sub) -> None:
    e = sub.add_parser(
        "eval",
        help="compress + decompress + metrics table",
        description="Round-trip recordings at several codebook depths and report bits/sample, CR16, PRD, "
        "SNR, Pearson r, spectral error.",
    )
    e.add_argument("inputs", nargs="+", metavar="INPUT")
    e.add_argument(
        "--codebooks",
        type=int,
        nargs="+",
        metavar="N",
        help="depths to evaluate (default: all, unless --prd)",
    )
    e.add_argument(
        "--prd",
        type=float,
        nargs="+",
        metavar="PERCENT",
        help="also evaluate compress --prd files at these targets (transform layer, no model)",
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
    _model_args(e)
    e.set_defaults(func=cmd_eval)


def _add_models(sub) -> None:
    m = sub.add_parser(
        "models",
        help="list shipped and cached models",
        description="List shipped and cached models with their rates and depths.",
    )
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)


def _add_train(sub) -> None:
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
    t.set_defaults(func=cmd_train)


def _add_train_prior(sub) -> None:
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
    t.set_defaults(func=cmd_train_prior)


def _add_bench(sub) -> None:
    b = sub.add_parser(
        "bench",
        help="benchmarks: rate-distortion, downstream tasks, speed",
        description="Run a benchmark on recordings; writes DIR/results.json, DIR/report.md and PNG figures.",
    )
    b.add_argument(
        "kind",
        choices=["rd", "downstream", "speed", "prior", "lossless"],
        help="rd: bits vs fidelity with classical coders; downstream: "
        "classifiers on reconstructed EEG; speed: real-time factor and peak memory; prior: bits per code "
        "an entropy coder's prior over the model's codes would spend (fitted on --train); lossless: bits per "
        "sample of --lossless and --max-error against flac, wavpack, xz, zstd",
    )
    b.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="recording files or folders (speed: the first is tiled to each length)",
    )
    b.add_argument("--out", required=True, metavar="DIR")
    b.add_argument(
        "--models",
        nargs="+",
        default=["default"],
        metavar="MODEL",
        help="model names or files, optionally LABEL=MODEL (speed also takes dac16k-sized and the modes that "
        "need no model: lossless, prd=P, max-error=V); default: default",
    )
    b.add_argument(
        "--quick",
        action="store_true",
        help="small settings for a smoke run (short crops, one depth, short recordings)",
    )
    b.add_argument(
        "--codebooks",
        type=int,
        nargs="+",
        metavar="N",
        help="depths (rd default: all; downstream: 1, 3, 6, max)",
    )
    b.add_argument(
        "--crop",
        type=float,
        metavar="SECONDS",
        help="rd, prior: seconds from the start of each recording (default 60)",
    )
    b.add_argument(
        "--train",
        nargs="+",
        metavar="INPUT",
        help="prior: recordings the priors are fitted on (INPUTs: held out)",
    )
    _add_speed_args(b)
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(func=cmd_bench)


def _add_speed_args(b) -> None:
    """The options of ``bench speed``."""
    b.add_argument("--minutes", type=float, nargs="+", help="speed: recording lengths (default 1 10 60)")
    b.add_argument(
        "--channels",
        type=int,
        help="speed: channel count of the built recordings (default: the input's, or 64)",
    )
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="speed: where the model runs")
    b.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="speed: runs of each verb, median reported (default 3; --quick 1)",
    )


#: the verbs, each one function adding its subparser (align adds its own group)
VERBS = (
    _add_compress,
    _add_decompress,
    _add_verify,
    _add_info,
    _add_eval,
    _add_models,
    _add_train,
    _add_train_prior,
    _add_bench,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eegcodec", description="Compress EEG recordings with neural audio codecs."
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in VERBS:
        add(sub)
    from .align.cli import add_align_parser

    add_align_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
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
        print(
            f"eegcodec: error: {type(exc).__name__}: {msg} (rerun with --debug for details)", file=sys.stderr
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
