"""``--lossless``: every channel stored exactly, on its own sample grid, coded across channels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Mode


@dataclass(frozen=True)
class Lossless(Mode):
    """Every sample exact: the file's own integers (float data bit for bit); no model."""

    name: ClassVar[str] = "lossless"
    options: ClassVar[tuple[str, ...]] = ("lossless",)
    source_grid: ClassVar[bool] = True
    exact: ClassVar[bool] = True

    @classmethod
    def add_cli_options(cls, parser) -> None:
        parser.add_argument(
            "--lossless",
            action="store_true",
            help="store every channel exactly (the file's own integer samples), coded across channels; "
            "no model",
        )

    @classmethod
    def cli_options(cls, args) -> dict:
        return {"lossless": True} if getattr(args, "lossless", False) else {}

    @staticmethod
    def guarantee(header) -> str:
        return "every sample exact (on the file's own integer grid; float data bit for bit)"
