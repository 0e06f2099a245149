"""``eegcodec bench KIND``: the benchmarks of :mod:`eegcodec.bench`, one module each.

A benchmark module declares, as literals (read here from its source without importing it, so
that the command line starts without the benchmarks' dependencies):

- ``HELP``: one line;
- optionally ``NAME`` (the KIND; default: the module's name, ``_`` as ``-``), ``INPUTS`` (help of
  the positional inputs; ``None``: it takes none), ``MODELS`` (``True``: it takes ``--models``;
  a string: that option's help) and ``OUT`` (``False``: it prints its results instead of writing
  ``--out DIR``).

It defines ``add_arguments(parser)`` for its own options and ``main(args, say)``, which checks its
inputs, builds its configuration and runs (``say(message)`` reports progress). The options
every benchmark takes are added here; the module is imported only when its KIND runs. A new
benchmark is its module plus one line in :data:`BENCHMARKS`.
"""

from __future__ import annotations

import ast
import sys
from functools import partial
from importlib import import_module
from pathlib import Path

from .common import LazyParser

#: the benchmarks, one module of eegcodec.bench each, in the order ``eegcodec bench --help`` lists them
BENCHMARKS = (
    "rd",
    "downstream",
    "speed",
    "prior",
    "lossless",
    "probe",
    "zarr_codecs",
    "notch",
    "runtimes",
    "align_table",
)

#: the literals a benchmark module may declare, with their defaults
DECLARED = {"NAME": None, "HELP": None, "INPUTS": "recording files or folders", "MODELS": False, "OUT": True}
MODELS_HELP = "model names or files, optionally LABEL=MODEL; default: default"


def declared(module: str) -> dict:
    """What the benchmark module ``module`` declares (:data:`DECLARED`), read from its source."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{module}.py"
    found = {**DECLARED, "NAME": module.replace("_", "-")}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", None)
            if name in DECLARED:
                found[name] = ast.literal_eval(node.value)
    if not found["HELP"]:
        raise ValueError(f"{path}: a benchmark declares HELP (one line)")
    return found


def add_parser(sub) -> None:
    b = sub.add_parser(
        "bench",
        help="benchmarks: rate-distortion, downstream tasks, speed, prior, probe, zarr, ...",
        description="Run a benchmark on recordings; writes DIR/results.json, DIR/report.md and PNG figures. "
        "'eegcodec bench KIND --help' lists each benchmark's options.",
    )
    b.fill = _add_kinds


def _add_kinds(b) -> None:
    kinds = b.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=LazyParser)
    for module in BENCHMARKS:
        d = declared(module)
        k = kinds.add_parser(d["NAME"], help=d["HELP"], description=f"bench {d['NAME']}: {d['HELP']}.")
        k.fill = partial(_add_options, module=module, d=d)
        k.set_defaults(bench_module=module, bench_out=d["OUT"])


def _add_options(k, module: str, d: dict) -> None:
    """The options every benchmark takes, then the module's own."""
    if d["INPUTS"] is not None:
        k.add_argument("inputs", nargs="*", metavar="INPUT", help=d["INPUTS"])
    if d["OUT"]:
        k.add_argument(
            "--out", required=True, metavar="DIR", help="where results.json, report.md and figures go"
        )
        k.add_argument("-f", "--force", action="store_true", help="replace the results already in DIR")
    if d["MODELS"]:
        models_help = d["MODELS"] if isinstance(d["MODELS"], str) else MODELS_HELP
        k.add_argument("--models", nargs="+", default=["default"], metavar="MODEL", help=models_help)
    k.add_argument("-q", "--quiet", action="store_true")
    _module(module, k).add_arguments(k)


def _module(module: str, parser):
    try:
        return import_module(f"eegcodec.bench.{module}")
    except ImportError as exc:  # scikit-learn, PyWavelets: the [bench] extra
        parser.exit(
            1, f"eegcodec: error: benchmarks need the [bench] extra ({exc}): pip install 'eegcodec[bench]'\n"
        )


def run(args) -> int:
    if args.bench_out and (Path(args.out) / "results.json").exists() and not args.force:
        from ..errors import OutputExistsError

        raise OutputExistsError(Path(args.out) / "results.json")  # before any work
    module = import_module(f"eegcodec.bench.{args.bench_module}")  # imported when its options were added
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    module.main(args, say)
    if args.bench_out and not args.quiet:
        out = Path(args.out)
        print((out / "report.md").read_text())
        print(f"wrote {out / 'results.json'}, {out / 'report.md'} and figures")
    return 0
