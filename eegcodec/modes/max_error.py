"""``--max-error V``: every sample of the EEG-type channels within V volts; the others exact."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..errors import EegcodecError
from .base import Mode


@dataclass(frozen=True)
class MaxError(Mode):
    """Every EEG-type sample within ``bound`` volts of the original, guaranteed; no model."""

    bound: float = 0.0
    name: ClassVar[str] = "max_error"
    options: ClassVar[tuple[str, ...]] = ("max_error",)
    source_grid: ClassVar[bool] = True

    @classmethod
    def from_options(cls, options: dict) -> Mode:
        super().from_options(options)
        bound = options["max_error"]
        if not isinstance(bound, (int, float)) or not 0 < bound < 1e3:
            raise EegcodecError(f"max_error must be a positive voltage below 1 kV, got {bound!r} V")
        return cls(float(bound))

    @classmethod
    def add_cli_options(cls, parser) -> None:
        parser.add_argument(
            "--max-error",
            metavar="VOLTS",
            help="every sample of the EEG channels within this bound, guaranteed, e.g. 2uV; no model",
        )

    @classmethod
    def cli_options(cls, args) -> dict:
        text = getattr(args, "max_error", None)
        return {"max_error": parse_volts(text)} if text else {}

    @property
    def label(self) -> str:
        return f"max-error {self.bound * 1e6:g} uV"

    def exact_bound(self) -> float:
        return self.bound  # the coder keeps its reserve where it can (format.exact.whole_steps)

    def header_fields(self) -> dict:
        return {**super().header_fields(), "max_error": self.bound}

    @staticmethod
    def guarantee(header) -> str:
        bound = header.max_error * 1e6
        return f"every sample of the EEG-type channels within {bound:g} uV; the other channels exact"


def parse_volts(text: str) -> float:
    """``"2uV"``, ``"2 µV"``, ``"0.5mV"``, ``"1e-6V"`` -> volts; a number without a unit is an error."""
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
