"""The contract of a fidelity mode: what a file promises about its samples, and how it is made.

A :class:`Mode` is built once from the user's options (:meth:`Mode.from_options`, the one place
they are checked), then drives compression: which channels a model or a coder takes
(:meth:`survey`), the streams that code them (:meth:`streams`), the header's fidelity fields
(:meth:`header_fields`). A file's header stores the mode's name (``fidelity.mode``); reading a
file, :meth:`guarantee` says in words what it promises. Modules here import the stream modules
inside their methods, so building the command line imports neither MNE nor numpy's helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..errors import EegcodecError

if TYPE_CHECKING:
    import argparse

    import mne

    from ..adapt import AdapterConfig, ChunkLayout
    from ..backends.base import Codec
    from ..format.header import Header
    from ..survey import Survey


@dataclass(frozen=True)
class Mode:
    """One fidelity. Subclasses set the class attributes and implement the methods below."""

    #: the name the header stores (``fidelity.mode``) and the API and registry use
    name: ClassVar[str] = ""
    #: the header's ``fidelity.mode`` of its files, where the mode writes files of another mode's
    #: kind (empty: ``name``); a reader dispatches on it
    stored_as: ClassVar[str] = ""
    #: the keyword options (API) this mode owns; giving one of them chooses the mode
    options: ClassVar[tuple[str, ...]] = ()
    #: numpy's BLAS on one thread while compressing and decoding (its products are small; the
    #: network's threads, where there is one, are the codec's)
    blas_one_thread: ClassVar[bool] = True
    #: every sample comes back exactly (decoded whole in memory for outputs, not chunk by chunk)
    exact: ClassVar[bool] = False
    #: decoded samples lie on the source's sample grid: EDF/BDF outputs get the source's channel
    #: ranges back, FIF outputs float64 samples
    source_grid: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: dict) -> Mode:
        """The mode from the API's keywords (``options``: this mode's and ``n_codebooks``), checked."""
        if options.get("n_codebooks") is not None:
            raise EegcodecError(f"n_codebooks applies to token files; {cls.name} files hold no tokens")
        return cls()

    @classmethod
    def add_cli_options(cls, parser: argparse.ArgumentParser) -> None:
        """This mode's options on ``eegcodec compress``."""

    @classmethod
    def cli_options(cls, args: argparse.Namespace) -> dict:
        """This mode's API keywords from parsed command-line ``args`` (empty: not chosen)."""
        return {}

    @property
    def label(self) -> str:
        """A short name for tables (``eegcodec eval``, ``demo``)."""
        return self.name

    def needs_model(self) -> bool:
        """Whether compressing needs the model (its tokens go into the file)."""
        return self.depth(None) > 0

    def depth(self, codec: Codec | None) -> int:
        """Codebooks of model tokens the file holds (0: none), checked against ``codec``."""
        return 0

    def survey(self, raw: mne.io.BaseRaw, cfg: AdapterConfig) -> Survey:
        """First pass over the recording: which channels are coded how (default: all exactly)."""
        from ..survey import exact_survey

        return exact_survey(raw, f"{self.name.replace('_', '-')} mode")

    def streams(
        self, raw, survey: Survey, codec: Codec | None, cfg: AdapterConfig, k: int, layout: ChunkLayout
    ):
        """``(coded, residual, exact)`` streams (None where the mode has none), each filled by
        ``push(start, stop)`` in compression's one pass over the samples."""
        from ..chunks import ExactStream

        return None, None, ExactStream(raw, survey.plan.lossless, layout, self.exact_bound())

    def exact_bound(self) -> float | None:
        """Volts the exact stream may move an EEG-type sample by (None: every sample exact)."""
        return None

    def default_adapter(self, sfreq: float, n_samples: int) -> AdapterConfig:
        """The chunking of a file without tokens where the caller gives none (``sfreq``: the
        recording's rate, Hz; ``n_samples`` its length): for the exact stream alone (these default
        streams), equal chunks of at least 30 s and :data:`~eegcodec.chunks.EXACT_SEGMENTS`
        segments of the exact coder (:func:`~eegcodec.chunks.exact_adapter`)."""
        from ..chunks import exact_adapter

        return exact_adapter(sfreq, n_samples)

    def header_fields(self) -> dict:
        """The header's fidelity fields: ``mode`` and, where the mode has them, ``max_error``
        (volts) and ``target_prd`` (percent)."""
        return {"mode": self.stored_as or self.name, "max_error": None, "target_prd": None}

    def alternative(self) -> Mode | None:
        """A mode whose file is kept instead when it is smaller (None: none)."""
        return None

    @staticmethod
    def guarantee(header: Header) -> str:
        """What a file of this mode promises about its samples, in words."""
        raise NotImplementedError
