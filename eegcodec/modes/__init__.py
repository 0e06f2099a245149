"""Fidelity modes, one module each: what a file promises about its samples and how it is made.

:data:`MODES` is the registry: adding a mode is a module with a :class:`~eegcodec.modes.base.Mode`
subclass and one line in it. The API (:func:`eegcodec.compress`), the command line
(``eegcodec compress``), the pipeline, ``eegcodec info`` and ``eval`` all go through it; the
options are checked once, in :func:`from_options`.
"""

from __future__ import annotations

import re

from ..errors import CorruptFileError, EegcodecError
from .base import Mode
from .lossless import Lossless
from .max_error import MaxError
from .prd import Prd
from .tokens import Tokens

#: name -> mode; the first is the default (no option chosen)
MODES: dict[str, type[Mode]] = {m.name: m for m in (Tokens, Prd, MaxError, Lossless)}


def get(name: str) -> type[Mode]:
    """The mode a header names; an unknown name is a :class:`CorruptFileError`."""
    if name not in MODES:
        raise CorruptFileError(f"fidelity mode {name!r} is not one this eegcodec knows ({', '.join(MODES)})")
    return MODES[name]


def from_options(**options) -> Mode:
    """The one mode the keyword ``options`` choose (``lossless=True``, ``max_error=V``, ``prd=P``,
    ``n_codebooks=N``, or another registered mode's), checked; none chosen: token files."""
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    known = {o for m in MODES.values() for o in m.options} | {"n_codebooks"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise EegcodecError(f"unknown option {', '.join(unknown)} (modes: {', '.join(MODES)})")
    chosen = [m for m in MODES.values() if any(o in given for o in m.options)]
    if len(chosen) > 1:
        raise EegcodecError(f"choose one of {', '.join(o for m in chosen for o in m.options)}")
    mode = chosen[0] if chosen else next(iter(MODES.values()))
    return mode.from_options(given)


def add_cli_options(parser) -> None:
    """Every mode's options on ``eegcodec compress``."""
    for mode in MODES.values():
        mode.add_cli_options(parser)


def from_cli(args, n_codebooks: int | None = None) -> Mode:
    """The mode parsed command-line ``args`` choose (errors speak of the flags)."""
    options = {k: v for m in MODES.values() for k, v in m.cli_options(args).items()}
    try:
        return from_options(**options, n_codebooks=n_codebooks)
    except EegcodecError as exc:
        raise EegcodecError(_as_flags(str(exc))) from None


def _as_flags(message: str) -> str:
    """An API message about keywords, in command-line words (``max_error`` -> ``--max-error``)."""
    flags = {
        "n_codebooks": "--codebooks",
        **{o: "--" + o.replace("_", "-") for m in MODES.values() for o in m.options},
    }
    return re.sub(r"(?<![-\w])(" + "|".join(flags) + r")(?![-\w])", lambda m: flags[m.group(1)], message)


__all__ = ["MODES", "Mode", "add_cli_options", "from_cli", "from_options", "get"]
