"""The ``eegcodec`` command line: one module per verb, each with ``add_parser(subparsers)`` and
``run(args) -> int``; :data:`VERBS` lists them.

Errors print one line (``eegcodec: error: ...``) and exit with status 1 (2 for
usage errors); ``--debug`` shows the traceback instead. A verb module imports only the standard
library at module level: it checks its inputs and outputs before it imports torch or loads a model.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from importlib import import_module

from ..modes.max_error import parse_volts
from .common import EXIT_ERROR, LazyParser, message

__all__ = ["VERBS", "build_parser", "main", "parse_volts"]

#: verb -> its module in this package, in the order ``eegcodec --help`` lists them
VERBS = {
    "demo": "demo",
    "compress": "compress",
    "decompress": "decompress",
    "verify": "verify",
    "info": "info",
    "eval": "eval",
    "models": "models",
    "train": "train",
    "train-prior": "train_prior",
    "bench": "bench",
    "align": "align",
    "tokenize": "tokenize",
}


def _verb(name: str):
    return import_module(f"{__name__}.{VERBS[name]}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eegcodec", description="Compress EEG recordings with neural audio codecs."
    )
    p.add_argument(
        "--debug", action="store_true", help="show full tracebacks on errors (before or after the verb)"
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=LazyParser)
    for name in VERBS:
        _verb(name).add_parser(sub)
    return p


def _without_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without its ``--debug`` flags (before a ``--``), and whether there was one: the
    flag is accepted before or after the verb."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return kept, len(kept) < len(argv)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    rest, debug = _without_debug(given)
    args = parser.parse_args(rest)
    args.debug = debug
    args.argv = given
    if not args.debug:
        warnings.filterwarnings("ignore")
    from ..errors import EegcodecError

    try:
        return _verb(args.verb).run(args)
    except EegcodecError as exc:
        if args.debug:
            raise
        print(f"eegcodec: error: {message(exc)}", file=sys.stderr)
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
