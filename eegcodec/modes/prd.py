"""``--prd P``: the EEG-type channels through the multichannel transform coder, each chunk's median
channel PRD at most P %, optionally over a model's tokens where they save bits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import EegcodecError
from .base import Mode
from .tokens import model_depth


@dataclass(frozen=True)
class Prd(Mode):
    """Each chunk's median channel PRD at most ``target`` percent, in the fewest bits; tokens of
    ``n_codebooks`` codebooks under the layer when given (kept only where they save bits)."""

    target: float = 10.0
    n_codebooks: int | None = None
    name: ClassVar[str] = "prd"
    options: ClassVar[tuple[str, ...]] = ("prd",)

    @classmethod
    def from_options(cls, options: dict) -> Mode:
        from ..format.header_checks import PRD_RANGE  # the format's range (imported here: start-up)

        target = options["prd"]
        if not isinstance(target, (int, float)) or not PRD_RANGE[0] <= target < PRD_RANGE[1]:
            raise EegcodecError(
                f"prd must be at least {PRD_RANGE[0]:g} % and below {PRD_RANGE[1]:g} %, got {target!r} "
                f"(for an exact copy use lossless, for a bound per sample max_error)"
            )
        return cls(float(target), options.get("n_codebooks"))

    @classmethod
    def add_cli_options(cls, parser) -> None:
        parser.add_argument(
            "--prd",
            type=float,
            metavar="PERCENT",
            help="code the EEG channels with the multichannel transform coder so that each chunk's median "
            "channel PRD is at most this (e.g. 10); no model, unless --codebooks puts model tokens under it "
            "(kept only where they save bits)",
        )

    @classmethod
    def cli_options(cls, args) -> dict:
        target = getattr(args, "prd", None)
        return {} if target is None else {"prd": target}

    @property
    def label(self) -> str:
        return f"prd {self.target:g} %"

    def needs_model(self) -> bool:
        return self.n_codebooks is not None

    def depth(self, codec) -> int:
        return 0 if self.n_codebooks is None else model_depth(codec, self.n_codebooks)

    def default_adapter(self, sfreq: float, n_samples: int):
        from ..adapt import AdapterConfig

        return AdapterConfig()  # 30-s chunks: the transform layer's frames

    def survey(self, raw, cfg):
        from ..survey import survey_recording

        return survey_recording(raw, cfg)

    def streams(self, raw, survey, codec, cfg, k, layout):
        from ..chunks import CodedStream, ExactStream, ResidualStream
        from ..mains import steps_for

        coded = CodedStream(raw, survey, codec, cfg, k, layout, outliers=False) if k else None
        residual = ResidualStream(raw, survey.plan.coded, layout, self.target, coded, steps_for(survey.noise))
        return coded, residual, ExactStream(raw, survey.plan.lossless, layout, None)

    def header_fields(self) -> dict:
        return {**super().header_fields(), "target_prd": self.target}

    def alternative(self) -> Mode | None:
        return Prd(self.target) if self.n_codebooks is not None else None  # the layer alone

    @staticmethod
    def guarantee(header) -> str:
        layer = (
            f"{header.codebooks} codebooks of model tokens (where they save bits) and "
            if header.codebooks
            else ""
        )
        return f"{layer}a transform layer: each chunk's median channel PRD at most {header.target_prd:g} %"
