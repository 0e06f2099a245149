"""``eegcodec align``: make-synthetic, train, eval, decode (the verbs live in :mod:`eegcodec.align.cli`)."""

from __future__ import annotations


def add_parser(sub) -> None:
    from ..align.cli import add_align_parser  # standard library only at its module level

    add_align_parser(sub)


def run(args) -> int:
    return args.func(args)
