"""Token files: the EEG-type channels as a model's codes (the neural codec's discrete tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import EegcodecError
from .base import Mode


def model_depth(codec, n_codebooks: int | None) -> int:
    """``n_codebooks`` (default: the model's recommended depth), checked against ``codec``."""
    if codec is None:
        raise EegcodecError(
            "a model is needed unless lossless, max_error or prd (without n_codebooks) is asked for"
        )
    k = codec.info.default_codebooks if n_codebooks is None else int(n_codebooks)
    if not 1 <= k <= codec.info.n_codebooks:
        raise EegcodecError(
            f"n_codebooks must be in 1..{codec.info.n_codebooks} for {codec.info.name}, got {n_codebooks}"
        )
    return k


@dataclass(frozen=True)
class Tokens(Mode):
    """The model's codes at ``n_codebooks`` (None: the model's recommended depth); samples the
    model misses by more than the adapter's outlier threshold are stored exactly."""

    n_codebooks: int | None = None
    name: ClassVar[str] = "tokens"
    blas_one_thread: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: dict) -> Mode:
        return cls(options.get("n_codebooks"))

    @property
    def label(self) -> str:
        return f"tokens, {self.n_codebooks} codebooks" if self.n_codebooks else "tokens"

    def needs_model(self) -> bool:
        return True

    def depth(self, codec) -> int:
        return model_depth(codec, self.n_codebooks)

    def survey(self, raw, cfg):
        from ..survey import survey_recording

        return survey_recording(raw, cfg)

    def streams(self, raw, survey, codec, cfg, k, layout):
        from ..chunks import CodedStream, ExactStream

        coded = CodedStream(raw, survey, codec, cfg, k, layout, outliers=True, correction=True) if k else None
        return coded, None, ExactStream(raw, survey.plan.lossless, layout, None)

    @staticmethod
    def guarantee(header) -> str:
        sigma = header.adapter.outlier_sigma
        k = header.codebooks
        return f"{k} of the model's codebooks; samples it misses by more than {sigma:g} scales exact"
