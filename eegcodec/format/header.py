"""The typed ``.eegc`` header: every value type- and range-checked before anything is allocated.

:class:`Header` is what the ``HEAD`` section's JSON means. :meth:`Header.from_json` takes
the parsed JSON of any readable format version (1-4), checks each value against its type,
its range and the other values (channel lists cover the channels once, the chunk layout
implies the frame counts, the side arrays' shapes follow the channel and chunk counts), and
raises :class:`~eegcodec.errors.CorruptFileError` with one line naming the field otherwise.
Section sizes are checked by :func:`Header.check_sections`, so a decoder that trusts a
validated header never loops forever, never indexes out of range and never allocates more
than the recording it describes.

:meth:`Header.for_recording` builds the header of a file being written (it reads the recording's
attributes, importing no MNE); the checks behind :meth:`Header.from_json` are in
:mod:`eegcodec.format.header_checks`. This module knows JSON and numbers only: no model, no file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..adapt import AdapterConfig, ChunkLayout
from ..errors import CorruptFileError
from ..version import __version__
from . import header_checks as check
from .header_checks import MAX_INFO_BYTES, MAX_SAMPLES, MAX_SFREQ, MIN_SFREQ


@dataclass(frozen=True)
class Recording:
    """What the recording was: rate (Hz), length (samples), channels, date."""

    sfreq: float
    n_samples: int
    first_samp: int
    ch_names: list[str]
    ch_types: list[str]
    meas_date: str | None
    anonymized: bool

    @classmethod
    def of(cls, raw, anonymized: bool) -> Recording:
        """What ``raw`` (an MNE raw, already anonymised where ``anonymized``) records."""
        date = raw.info["meas_date"]
        return cls(
            sfreq=float(raw.info["sfreq"]),
            n_samples=int(raw.n_times),
            first_samp=int(raw.first_samp),
            ch_names=list(raw.ch_names),
            ch_types=raw.get_channel_types(),
            meas_date=None if date is None else date.isoformat(),
            anonymized=bool(anonymized),
        )

    @classmethod
    def from_json(cls, d: dict) -> Recording:
        p = "recording"
        names = check.str_list(d, "ch_names", f"{p}.ch_names")
        if not names:
            raise CorruptFileError(f"{check.where(p + '.ch_names')} is empty")
        if len(set(names)) != len(names):
            raise CorruptFileError(f"{check.where(p + '.ch_names')} repeats a channel name")
        return cls(
            sfreq=check.num_field(d, "sfreq", f"{p}.sfreq", MIN_SFREQ, MAX_SFREQ),
            n_samples=check.int_field(d, "n_samples", f"{p}.n_samples", 2, MAX_SAMPLES),
            first_samp=check.int_field(d, "first_samp", f"{p}.first_samp", 0, 2**53),
            ch_names=names,
            ch_types=check.str_list(d, "ch_types", f"{p}.ch_types", n=len(names)),
            meas_date=check.need(d, "meas_date", str, f"{p}.meas_date", optional=True),
            anonymized=check.need(d, "anonymized", bool, f"{p}.anonymized"),
        )


@dataclass(frozen=True)
class ModelRef:
    """The model that made the file; ``weights_sha256`` identifies its weights."""

    name: str
    kind: str
    weights_sha256: str
    sample_rate: float
    hop_length: int
    codebook_size: int
    bits_per_code: int

    @classmethod
    def of(cls, c) -> ModelRef:
        """The reference to the model described by ``c`` (a :class:`~eegcodec.backends.base.CodecInfo`)."""
        return cls(
            c.name,
            c.kind,
            c.weights_sha256,
            float(c.sample_rate),
            int(c.hop_length),
            int(c.codebook_size),
            int(c.bits_per_code),
        )

    @classmethod
    def from_json(cls, d: dict) -> ModelRef:
        p = "model"
        sha = check.need(d, "weights_sha256", str, f"{p}.weights_sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise CorruptFileError(f"{check.where(p + '.weights_sha256')} is not a SHA-256 hex digest")
        ref = cls(
            name=check.need(d, "name", str, f"{p}.name"),
            kind=check.need(d, "kind", str, f"{p}.kind"),
            weights_sha256=sha,
            sample_rate=check.num_field(d, "sample_rate", f"{p}.sample_rate", MIN_SFREQ, 1e7),
            hop_length=check.int_field(d, "hop_length", f"{p}.hop_length", 1, 2**20),
            codebook_size=check.int_field(d, "codebook_size", f"{p}.codebook_size", 1, 2**24),
            bits_per_code=check.int_field(d, "bits_per_code", f"{p}.bits_per_code", 1, 32),
        )
        if ref.codebook_size > 2**ref.bits_per_code:
            raise CorruptFileError(
                f"{check.where(p)}: codebook_size {ref.codebook_size} does not fit in "
                f"{ref.bits_per_code} bits"
            )
        return ref


@dataclass(frozen=True)
class ArraySpec:
    """One array of the ``SIDE`` section: where it lies in the inflated payload."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "offset": self.offset,
            "nbytes": self.nbytes,
        }


@dataclass
class Header:
    """The ``HEAD`` section, typed. Field meanings: ``docs/FORMAT.md``.

    ``coded`` / ``lossless`` are channel indices (into ``recording.ch_names``);
    ``chunk_frames`` the code frames of each chunk (``prd`` files: 0 for a chunk without
    tokens; no entry when ``codebooks`` is 0); ``exact_frames`` (version 3) the compressed size
    in bytes of each chunk's frame in ``RAWC``; ``residual_frames`` (version 4, ``prd`` files)
    the same for ``RESD``; ``info_bytes`` (version 3) the inflated size of ``INFO``.
    """

    recording: Recording
    annotations: dict
    coded: list[int]
    lossless: list[int]
    lossless_reasons: dict[int, str]
    model: ModelRef | None  #: None when the file holds no tokens
    codebooks: int
    code_rows: int
    montage: dict | None
    adapter: AdapterConfig
    baseline_spacing: int
    chunk_length: int
    chunk_overlap: int
    chunk_frames: list[int]
    side: list[ArraySpec]
    source: dict | None = None
    exact_frames: list[int] = field(default_factory=list)
    info_bytes: int | None = None
    eegcodec_version: str = ""
    created: str = ""
    version: int = 5
    #: what the file guarantees: "tokens" (the model's codes), "lossless", "max_error"
    #: (every sample of the EEG-type channels within ``max_error`` volts) or "prd" (each
    #: chunk's median channel PRD at most ``target_prd`` percent)
    mode: str = "tokens"
    max_error: float | None = None
    #: version 8, max-error files: the largest error (volts) over the bounded samples, measured on
    #: the decoded frames while compressing; what the bound leaves for an output format's rounding
    largest_error: float | None = None
    target_prd: float | None = None
    residual_frames: list[int] = field(default_factory=list)
    #: version 5: the stream coder of ``CODE`` (:data:`eegcodec.format.streamcoders.CODERS`), and with
    #: ``prior`` the SHA-256 of the model's prior file
    code_coder: str = "packed"
    prior_sha256: str | None = None
    #: token files from eegcodec 0.6: the coded channels' PRD (%) as measured when compressing,
    #: ``{"median", "p90", "worst": [[channel, PRD], ...]}`` (:class:`eegcodec.chunks.PrdMeter`)
    measured_prd: dict | None = None
    #: version 8: the digest of each chunk's frame (``format.container.frame_digest``) in the per-chunk
    #: sections, ``{"RAWC": [...], "RESD": [...]}`` (their sizes: ``exact_frames``, ``residual_frames``)
    frame_digests: dict[str, list[str]] = field(default_factory=dict)
    #: version 8, token files: the size in bytes of each chunk's frame of codes in ``CODE`` (each
    #: chunk's codes coded alone by ``code_coder``)
    code_frames: list[int] = field(default_factory=list)

    # -- derived ------------------------------------------------------------------

    @property
    def layout(self) -> ChunkLayout:
        return ChunkLayout(self.recording.n_samples, self.chunk_length, self.chunk_overlap)

    @property
    def n_chunks(self) -> int:
        n, length, stride = (
            self.recording.n_samples,
            self.chunk_length,
            self.chunk_length - self.chunk_overlap,
        )
        return 1 if n <= length else 1 + -(-(n - length) // stride)

    @property
    def n_knots(self) -> int:
        return -(-self.recording.n_samples // self.baseline_spacing)

    @property
    def has_tokens(self) -> bool:
        """Whether the coded channels carry model tokens (a model is needed to decode them)."""
        return bool(self.coded) and self.codebooks > 0

    @property
    def code_count(self) -> int:
        """Codes in ``CODE``: rows x codebooks x frames."""
        return self.code_rows * self.codebooks * sum(self.chunk_frames) if self.has_tokens else 0

    @property
    def side_nbytes(self) -> int:
        return sum(a.nbytes for a in self.side)

    # -- JSON ---------------------------------------------------------------------

    def to_json(self) -> dict:
        out = {
            "eegcodec_version": self.eegcodec_version,
            "created": self.created,
            "recording": asdict(self.recording),
            "annotations": self.annotations,
            "channels": {
                "coded": self.coded,
                "lossless": self.lossless,
                "lossless_reasons": {str(i): r for i, r in self.lossless_reasons.items()},
            },
            "model": None if self.model is None else asdict(self.model),
            "codebooks": self.codebooks,
            "code_rows": self.code_rows,
            "montage": self.montage,
            "adapter": self.adapter.to_dict(),
            "baseline_spacing": self.baseline_spacing,
            "chunks": {
                "length": self.chunk_length,
                "overlap": self.chunk_overlap,
                "frames": self.chunk_frames,
            },
            "side": [a.to_json() for a in self.side],
            "source": self.source,
        }
        if self.version >= 3:
            out["exact"] = {"frame_bytes": self.exact_frames}
            if self.version >= 8:
                out["exact"]["frame_digests"] = self.frame_digests.get("RAWC", [])
            out["info_bytes"] = self.info_bytes
            out["fidelity"] = {"mode": self.mode, "max_error_volts": self.max_error}
            if self.version >= 8 and self.mode == "max_error":
                out["fidelity"]["largest_error_volts"] = self.largest_error
        if self.version >= 4:
            out["fidelity"]["target_prd"] = self.target_prd
            out["residual"] = {"frame_bytes": self.residual_frames}
            if self.version >= 8:
                out["residual"]["frame_digests"] = self.frame_digests.get("RESD", [])
        if self.measured_prd is not None:
            out["fidelity"]["measured_prd"] = self.measured_prd
        if self.version >= 5:
            out["coders"] = {"CODE": self.code_coder, "prior_sha256": self.prior_sha256}
            if self.version >= 8:
                out["coders"]["frame_bytes"] = self.code_frames
                out["coders"]["frame_digests"] = self.frame_digests.get("CODE", [])
        if self.version >= 9:
            out["format_version"] = self.version  # the file's version, stated again under its digest
        return out

    @classmethod
    def for_recording(
        cls,
        raw,
        survey,
        codec,
        cfg: AdapterConfig,
        k: int,
        layout: ChunkLayout,
        coded,
        *,
        annotations: dict,
        anonymize: bool,
        source: dict | None,
        mode: str,
        max_error: float | None,
        target_prd: float | None,
    ) -> Header:
        """The header of a file being written (the side index and the section sizes are filled in
        when the sections are). ``raw``: the MNE raw; ``survey``: its
        :class:`~eegcodec.survey.Survey`; ``codec``: the model (used only where ``k`` codebooks of
        tokens are kept); ``coded``: the filled :class:`~eegcodec.chunks.CodedStream`, or None;
        ``annotations``: :func:`eegcodec.format.meta.annotations_to_json` of the raw's."""
        c = codec.info if k and survey.plan.coded else None
        return cls(
            recording=Recording.of(raw, anonymize),
            annotations=annotations,
            coded=survey.plan.coded,
            lossless=survey.plan.lossless,
            lossless_reasons=dict(survey.plan.reasons),
            model=None if c is None else ModelRef.of(c),
            codebooks=k if survey.plan.coded or mode == "tokens" else 0,
            code_rows=codec.code_rows(len(survey.plan.coded)) if c else 0,
            montage=None if coded is None or coded.montage is None else coded.montage.to_dict(),
            adapter=cfg,
            baseline_spacing=survey.baseline.spacing,
            chunk_length=layout.length,
            chunk_overlap=layout.overlap,
            chunk_frames=coded.frames if c else [],
            side=[],
            source=source,
            eegcodec_version=__version__,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            mode=mode,
            max_error=max_error,
            target_prd=target_prd,
        )

    @classmethod
    def from_json(cls, d: Any, version: int) -> Header:
        """Validate the parsed JSON of a version-``version`` header (else a :class:`CorruptFileError`)."""
        check.version_fields(d, version)
        rec = Recording.from_json(check.need(d, "recording", dict, "recording"))
        coded, lossless, reasons = check.channels(
            check.need(d, "channels", dict, "channels"), len(rec.ch_names)
        )
        mode, bound, target, largest = "tokens", None, None, None
        measured = None
        if version >= 3:
            fidelity = check.need(d, "fidelity", dict, "fidelity")
            mode, bound, target, largest = check.fidelity(fidelity, bool(coded), version)
            measured = check.measured_prd(fidelity.get("measured_prd"), rec.ch_names)
        codebooks, model, code_rows = _tokens(d, len(coded), mode, version)
        chunks = check.need(d, "chunks", dict, "chunks")
        length = check.int_field(chunks, "length", "chunks.length", 2, 2**31)
        overlap = check.int_field(chunks, "overlap", "chunks.overlap", 0, length // 2)
        header = cls(
            recording=rec,
            annotations=check.annotations(check.need(d, "annotations", dict, "annotations")),
            coded=coded,
            lossless=lossless,
            lossless_reasons=reasons,
            model=model,
            codebooks=codebooks,
            code_rows=code_rows,
            montage=check.montage(d.get("montage"), len(coded)),
            adapter=check.adapter(check.need(d, "adapter", dict, "adapter")),
            baseline_spacing=check.int_field(d, "baseline_spacing", "baseline_spacing", 1, rec.n_samples),
            chunk_length=length,
            chunk_overlap=overlap,
            chunk_frames=[],
            side=[],
            source=check.source(d.get("source"), len(rec.ch_names)),
            eegcodec_version=str(d.get("eegcodec_version", "")),
            created=str(d.get("created", "")),
            version=version,
            mode=mode,
            max_error=bound,
            largest_error=largest,
            target_prd=target,
            measured_prd=measured,
        )
        header.chunk_frames = check.chunk_frames(header, chunks)
        index = check.side_index(header, check.need(d, "side", list, "side"))
        header.side = [ArraySpec(*a) for a in index]
        _frames(header, d, version)
        return header

    def check_sections(self, sizes: dict[str, int]) -> None:
        """Section sizes (bytes) agree with what the header declares."""
        want_code = -(-self.code_count * self.model.bits_per_code // 8) if self.model else 0
        got = sizes.get("CODE", 0)
        if self.version >= 8 and self.has_tokens:  # each chunk's codes coded alone
            self._check_code_frames(got)
            return self._check_frames(sizes)
        if self.code_coder == "prior" and self.has_tokens:  # entropy-coded: kept only when smaller
            if not 4 <= got < want_code:
                raise CorruptFileError(
                    f"CODE section holds {got} bytes, not fewer than {want_code} as it must"
                )
        elif got != want_code:
            raise CorruptFileError(f"CODE section holds {got} bytes, the header implies {want_code}")
        self._check_frames(sizes)

    def _check_code_frames(self, got: int) -> None:
        """Version 8: ``CODE`` holds the chunks' frames; packed ones have the size their codes imply."""
        if got != sum(self.code_frames):
            raise CorruptFileError(
                f"CODE section holds {got} bytes, the header lists {sum(self.code_frames)}"
            )
        packed = [
            -(-self.code_rows * self.codebooks * f * self.model.bits_per_code // 8) for f in self.chunk_frames
        ]
        if self.code_coder == "packed" and self.code_frames != packed:
            raise CorruptFileError("CODE frames' sizes do not fit their chunks' codes")

    def _check_frames(self, sizes: dict[str, int]) -> None:
        """``RAWC`` and ``RESD`` hold what the header lists."""
        if self.version >= 3 and sizes.get("RAWC", 0) != sum(self.exact_frames):
            raise CorruptFileError(
                f"RAWC section holds {sizes.get('RAWC', 0)} bytes, the header lists {sum(self.exact_frames)}"
            )
        if self.version >= 4 and sizes.get("RESD", 0) != sum(self.residual_frames):
            raise CorruptFileError(
                f"RESD section holds {sizes.get('RESD', 0)} bytes, "
                f"the header lists {sum(self.residual_frames)}"
            )
        if not self.lossless and sizes.get("RAWC", 0) > 64:
            raise CorruptFileError("RAWC section holds data but no channel is stored exactly")


def _tokens(d: dict, n_coded: int, mode: str, version: int) -> tuple[int, ModelRef | None, int]:
    """(codebooks, model, code rows): a model exactly when the coded channels carry tokens."""
    codebooks = check.int_field(d, "codebooks", "codebooks", 1 if n_coded and mode != "prd" else 0, 256)
    tokens = n_coded > 0 and codebooks > 0
    model = check.need(d, "model", dict, "model", optional=version >= 3 and not tokens)
    if model is not None and not tokens:
        raise CorruptFileError(f"{check.where('model')} names a model but the file holds no tokens")
    model = None if model is None else ModelRef.from_json(model)
    code_rows = check.int_field(d, "code_rows", "code_rows", 0, n_coded, optional=True)
    code_rows = n_coded if code_rows is None else code_rows  # files before 0.2
    if (code_rows == 0) != (not tokens):
        raise CorruptFileError(
            f"{check.where('code_rows')} = {code_rows} does not fit {n_coded} coded channels"
        )
    return codebooks, model, code_rows


def _frames(header: Header, d: dict, version: int) -> None:
    """The per-chunk sections' frame sizes (version 3 ``exact``, 4 ``residual``), the ``CODE``
    coder (5) and the frame index (8: ``CODE`` frames, every frame's digest), into ``header``."""
    if version >= 3:
        exact = check.need(d, "exact", dict, "exact")
        header.exact_frames = check.exact_frames(header, exact)
        header.info_bytes = check.int_field(d, "info_bytes", "info_bytes", 0, MAX_INFO_BYTES)
    if version >= 4:
        residual = check.need(d, "residual", dict, "residual")
        header.residual_frames = check.residual_frames(header, residual)
    if version >= 8:
        header.frame_digests = {
            "RAWC": check.frame_digests(exact, "exact", len(header.exact_frames)),
            "RESD": check.frame_digests(residual, "residual", len(header.residual_frames)),
        }
    if version >= 5:
        coders = check.need(d, "coders", dict, "coders")
        check.code_coder(header, coders)
    if version >= 8:
        header.code_frames = check.code_frames(header, coders)
        header.frame_digests["CODE"] = check.frame_digests(coders, "coders", len(header.code_frames))
