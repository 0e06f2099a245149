"""What the verbs share: planning outputs (mirrored folders, sidecars, ``--force``), ``--shard`` and
``--jobs``, the per-file loop with progress bars and one-line errors, the model and corpus options."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_ERROR = 1


def message(exc: BaseException) -> str:
    """An error's first line, in the command line's words (``--force``, not ``overwrite=True``)."""
    from ..errors import OutputExistsError

    text = exc.cli_message() if isinstance(exc, OutputExistsError) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else ""


def show_progress(args) -> bool:
    """Progress bars go to an interactive terminal only (not to logs or pipes)."""
    return not args.quiet and sys.stderr.isatty()


def for_each_file(jobs: list[tuple[Path, Path]], args, work, verb: str) -> int:
    """Call ``work(src, dst, progress)`` per (input, output) pair with a files bar and a
    per-file samples bar. A failing file is reported on one line and the run goes on;
    returns the exit status (1 if any file failed) after a summary line."""
    from tqdm import tqdm

    from ..errors import EegcodecError

    show = show_progress(args)
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
            msg = message(exc)
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


def plan(
    args, suffixes: tuple[str, ...], out_suffix, check_jobs: bool = True
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(input, output) pairs, and (sidecar, copy) pairs, checked before any model is loaded.

    Outputs mirror each named folder's tree under ``-o`` (a folder when several inputs or a
    folder are given); without ``-o`` they go beside their inputs. ``out_suffix(src, beside)``
    gives an output's name ending. An output that exists (without ``--force``) or is its own
    input is an error here, before any work."""
    from ..errors import EegcodecError
    from ..io import check_output, find_inputs, find_sidecars

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
    rank, world = shard(args)
    jobs = jobs[rank::world]
    sidecars = []
    if to_folder and rank == 0:
        for folder in (Path(p) for p in args.inputs if Path(p).is_dir()):
            sidecars += [(f, out / rel) for f, rel in find_sidecars(folder)]
    if getattr(args, "skip_existing", False):
        jobs, sidecars = without_finished(jobs, sidecars, args, check_jobs)
    sources = [src for src, _ in inputs]
    for _, dst in (jobs if check_jobs else []) + sidecars:
        check_output(dst, sources, args.force)
    return jobs, sidecars


def shard(args) -> tuple[int, int]:
    """(this process's shard, number of shards) from ``--shard I/N`` or, with ``--shard auto``,
    from the ``RANK`` and ``WORLD_SIZE`` that torchrun (or a cluster launcher) sets; (0, 1) without."""
    import os

    from ..errors import EegcodecError

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


def without_finished(jobs: list, sidecars: list, args, check_jobs: bool = True) -> tuple[list, list]:
    """The (input, output) ``jobs`` and (sidecar, copy) pairs whose output does not exist yet
    (outputs are written atomically: one that exists is complete), with a line saying how many
    were skipped. Without ``check_jobs`` the jobs' outputs are known only once each input is read
    (decompress without --format) and are skipped then."""
    skip = {dst for _, dst in (jobs if check_jobs else []) + sidecars if dst.exists()}
    if skip and not args.quiet:
        print(f"skipping {len(skip)} files whose output exists (--skip-existing)", file=sys.stderr)
    return [j for j in jobs if j[1] not in skip], [c for c in sidecars if c[1] not in skip]


def in_processes(args) -> int | None:
    """With ``--jobs N`` (N > 1): run this command as N child processes, child i with
    ``--shard i/N``, and return the worst exit status; None when there is nothing to split."""
    import os
    import subprocess

    from ..errors import EegcodecError

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


def model_device(args) -> str:
    """``--device``; with cuda under torchrun, the process's own card (``LOCAL_RANK``)."""
    import os

    if args.device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return args.device


def copy_sidecars(sidecars: list[tuple[Path, Path]], args) -> None:
    import shutil

    from ..io import atomic_write_bytes

    for src, dst in sidecars:
        atomic_write_bytes(dst, src.read_bytes())
        shutil.copystat(src, dst)
    if sidecars and not args.quiet:
        print(
            f"copied {len(sidecars)} sidecar files (.json, .tsv, README ...) beside the outputs",
            file=sys.stderr,
        )


def often_exact_lines(channels: dict[str, float]) -> list[str]:
    return [
        f"warning: {name}: {100 * f:.1f} % of its samples stored exactly (32 bits each), the model does not "
        f"follow it; "
        f"if it is not EEG, compress with --ch-type '{name}=ecg' (or emg, misc) to store it exactly on its "
        f"own grid"
        for name, f in channels.items()
    ]


def measured_line(measured: dict) -> str:
    worst = ", ".join(f"{name} {prd:g} %" for name, prd in measured["worst"])
    median, p90 = measured["median"], measured["p90"]
    return f"PRD {median:g} % median, {p90:g} % p90 (worst: {worst}), measured when compressed"


def eval_codec(args, needed: bool):
    """The model of ``--model`` (imports torch), or None when no row needs one."""
    if not needed:
        return None
    from ..backends.registry import load_codec

    return load_codec(args.model, device=args.device)


def write_json(args, rows: list[dict]) -> None:
    if args.json:
        from ..io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(rows, indent=1).encode())


def model_args(sp, default="default"):
    sp.add_argument(
        "--model",
        default=default,
        help="model name (see 'eegcodec models') or weights file (default: %(default)s)",
    )
    sp.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default: cpu)"
    )


def corpus_args(sp) -> None:
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


class LazyParser(argparse.ArgumentParser):
    """A parser whose arguments are added on first use (parsing or help) by ``fill(parser)``: a verb
    whose options come from modules with heavy imports (``bench``) adds them only when it runs."""

    fill = None

    def _filled(self) -> None:
        if self.fill is not None:
            fill, self.fill = self.fill, None
            fill(self)

    def parse_known_args(self, args=None, namespace=None):
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._filled()
        return super().format_help()
