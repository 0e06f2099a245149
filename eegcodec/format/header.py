"""The typed ``.eegc`` header: every value type- and range-checked before anything is allocated.

:class:`Header` is what the ``HEAD`` section's JSON means. :meth:`Header.from_json` takes
the parsed JSON of any readable format version (1-4), checks each value against its type,
its range and the other values (channel lists cover the channels once, the chunk layout
implies the frame counts, the side arrays' shapes follow the channel and chunk counts), and
raises :class:`~eegcodec.errors.CorruptFileError` with one line naming the field otherwise.
Section sizes are checked by :func:`Header.check_sections`, so a decoder that trusts a
validated header never loops forever, never indexes out of range and never allocates more
than the recording it describes.

This module knows JSON and numbers only: no model, no MNE object, no file.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..adapt import AdapterConfig, ChunkAdapter, ChunkLayout
from ..errors import CorruptFileError, EegcodecError
from ..mains import HARMONICS
from .streamcoders import CODERS

#: format versions whose headers this module reads
VERSIONS = (1, 2, 3, 4, 5, 6, 7)
#: bounds that no real recording reaches; a header past them is damaged or forged
MAX_CHANNELS = 65536
MAX_SAMPLES = 2**40
MAX_SFREQ = 1e6
MIN_SFREQ = 1e-3
MAX_ANNOTATIONS = 10**7
MAX_INFO_BYTES = 64 * 2**20
#: a max-error bound beyond this (volts) is refused
MAX_VOLTS_BOUND = 1e3
#: annotation onsets and durations beyond this (s, about 30 years) are refused
MAX_SECONDS = 1e9
#: dtypes a side array may have
SIDE_DTYPES = ("|i1", "<i2", "<i4", "<i8", "<f4", "<f8")
#: side arrays per format version: name -> shape in symbols (C coded channels,
#: K baseline knots, N chunks, O outliers, R NaN runs)
SIDE_SHAPES = {
    1: {
        "baseline_knot_deltas": "CK",
        "baseline_step": "C",
        "chunk_scales": "NC",
        "outlier_channel": "O",
        "outlier_index_delta": "O",
        "outlier_value": "O",
        "nan_runs": "R3",
    },
    2: {
        "baseline_step_log2": "C",
        "baseline_common_delta": "K",
        "baseline_knot_deltas": "CK",
        "chunk_scale_log2": "NC",
        "outlier_channel": "O",
        "outlier_index_delta": "O",
        "outlier_value": "O",
        "nan_runs": "R3",
    },
}
SIDE_SHAPES[3] = SIDE_SHAPES[4] = SIDE_SHAPES[2]
SIDE_SHAPES[5] = {
    **{k: v for k, v in SIDE_SHAPES[2].items() if not k.startswith("outlier_") and k != "nan_runs"},
    "outlier_count": "C",
    "outlier_index_gap": "O",
    "outlier_level_delta": "O",
    "outlier_grid": "C2",
    "nan_runs": "R3",
}
#: version 6: the chunks' mains (:mod:`eegcodec.mains`; H: cosine and sine of each harmonic); in
#: version 7 all three or none (version 7 marks the adaptive exact coder, not the mains)
MAINS_SHAPES = {"mains_step_log2": "C", "mains_freq": "N", "mains_levels": "NCH"}
SIDE_SHAPES[6] = SIDE_SHAPES[7] = {**SIDE_SHAPES[5], **MAINS_SHAPES}
#: side arrays of a file whose coded channels have no tokens (``prd`` mode, version 4; 6: mains)
SIDE_SHAPES_NO_TOKENS = {v: {"nan_runs": "R3"} for v in VERSIONS}
SIDE_SHAPES_NO_TOKENS[6] = SIDE_SHAPES_NO_TOKENS[7] = {"nan_runs": "R3", **MAINS_SHAPES}
#: what a file may promise, per version
MODES = {1: ("tokens",), 2: ("tokens",), 3: ("tokens", "lossless", "max_error")}
MODES[4] = MODES[5] = MODES[6] = MODES[7] = (*MODES[3], "prd")
#: a target PRD (%) outside this range is refused
PRD_RANGE = (0.1, 100.0)


def _where(path: str) -> str:
    return f"header field {path}"


def _need(d: Any, key: str, kind, path: str, optional: bool = False):
    """``d[key]`` checked to be of ``kind`` (a type or tuple); bool is never taken for int."""
    if not isinstance(d, dict):
        raise CorruptFileError(f"{_where(path.rsplit('.', 1)[0] or path)} must be an object")
    if key not in d:
        if optional:
            return None
        raise CorruptFileError(f"{_where(path)} is missing")
    value = d[key]
    if optional and value is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise CorruptFileError(f"{_where(path)} must be {kind_name(kinds)}, got a boolean")
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds):
        raise CorruptFileError(f"{_where(path)} must be {kind_name(kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CorruptFileError(f"{_where(path)} is not finite")
    return value


def kind_name(kinds: tuple) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "true or false",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _int(d, key, path, lo, hi, optional=False) -> int | None:
    v = _need(d, key, int, path, optional)
    if v is not None and not lo <= v <= hi:
        raise CorruptFileError(f"{_where(path)} = {v} is outside {lo}..{hi}")
    return v


def _num(d, key, path, lo, hi) -> float:
    v = _need(d, key, float, path)
    if not lo <= v <= hi:
        raise CorruptFileError(f"{_where(path)} = {v} is outside {lo:g}..{hi:g}")
    return v


def _str_list(d, key, path, n: int | None = None, max_len: int = MAX_CHANNELS) -> list[str]:
    v = _need(d, key, list, path)
    if len(v) > max_len or (n is not None and len(v) != n):
        raise CorruptFileError(
            f"{_where(path)} has {len(v)} entries, expected {n if n is not None else f'at most {max_len}'}"
        )
    if not all(isinstance(s, str) and len(s) <= 4096 for s in v):
        raise CorruptFileError(f"{_where(path)} must hold strings")
    return list(v)


def _int_list(d, key, path, lo: int, hi: int, max_len: int) -> list[int]:
    v = _need(d, key, list, path)
    if len(v) > max_len:
        raise CorruptFileError(f"{_where(path)} has {len(v)} entries, at most {max_len} allowed")
    if not all(isinstance(i, int) and not isinstance(i, bool) and lo <= i <= hi for i in v):
        raise CorruptFileError(f"{_where(path)} must hold integers in {lo}..{hi}")
    return list(v)


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
    def from_json(cls, d: dict) -> Recording:
        p = "recording"
        names = _str_list(d, "ch_names", f"{p}.ch_names")
        if not names:
            raise CorruptFileError(f"{_where(p + '.ch_names')} is empty")
        if len(set(names)) != len(names):
            raise CorruptFileError(f"{_where(p + '.ch_names')} repeats a channel name")
        return cls(
            sfreq=_num(d, "sfreq", f"{p}.sfreq", MIN_SFREQ, MAX_SFREQ),
            n_samples=_int(d, "n_samples", f"{p}.n_samples", 2, MAX_SAMPLES),
            first_samp=_int(d, "first_samp", f"{p}.first_samp", 0, 2**53),
            ch_names=names,
            ch_types=_str_list(d, "ch_types", f"{p}.ch_types", n=len(names)),
            meas_date=_need(d, "meas_date", str, f"{p}.meas_date", optional=True),
            anonymized=_need(d, "anonymized", bool, f"{p}.anonymized"),
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
    def from_json(cls, d: dict) -> ModelRef:
        p = "model"
        sha = _need(d, "weights_sha256", str, f"{p}.weights_sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise CorruptFileError(f"{_where(p + '.weights_sha256')} is not a SHA-256 hex digest")
        ref = cls(
            name=_need(d, "name", str, f"{p}.name"),
            kind=_need(d, "kind", str, f"{p}.kind"),
            weights_sha256=sha,
            sample_rate=_num(d, "sample_rate", f"{p}.sample_rate", MIN_SFREQ, 1e7),
            hop_length=_int(d, "hop_length", f"{p}.hop_length", 1, 2**20),
            codebook_size=_int(d, "codebook_size", f"{p}.codebook_size", 1, 2**24),
            bits_per_code=_int(d, "bits_per_code", f"{p}.bits_per_code", 1, 32),
        )
        if ref.codebook_size > 2**ref.bits_per_code:
            raise CorruptFileError(
                f"{_where(p)}: codebook_size {ref.codebook_size} does not fit in {ref.bits_per_code} bits"
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
    target_prd: float | None = None
    residual_frames: list[int] = field(default_factory=list)
    #: version 5: the stream coder of ``CODE`` (:data:`eegcodec.format.streamcoders.CODERS`), and with
    #: ``prior`` the SHA-256 of the model's prior file
    code_coder: str = "packed"
    prior_sha256: str | None = None
    #: token files from eegcodec 0.6: the coded channels' PRD (%) as measured when compressing,
    #: ``{"median", "p90", "worst": [[channel, PRD], ...]}`` (:class:`eegcodec.chunks.PrdMeter`)
    measured_prd: dict | None = None

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
            out["info_bytes"] = self.info_bytes
            out["fidelity"] = {"mode": self.mode, "max_error_volts": self.max_error}
        if self.version >= 4:
            out["fidelity"]["target_prd"] = self.target_prd
            out["residual"] = {"frame_bytes": self.residual_frames}
        if self.measured_prd is not None:
            out["fidelity"]["measured_prd"] = self.measured_prd
        if self.version >= 5:
            out["coders"] = {"CODE": self.code_coder, "prior_sha256": self.prior_sha256}
        return out

    @classmethod
    def from_json(cls, d: Any, version: int) -> Header:
        """Validate the parsed JSON of a version-``version`` header (else a :class:`CorruptFileError`)."""
        if version not in VERSIONS:
            raise CorruptFileError(f"header version {version} is not one of {VERSIONS}")
        if not isinstance(d, dict):
            raise CorruptFileError("header is not a JSON object")
        if version < 3 and {"sections", "exact", "info_bytes", "fidelity"} & set(d):
            raise CorruptFileError(f"header holds fields of version 3 in a version-{version} file")
        if version < 4 and "residual" in d:
            raise CorruptFileError(f"header holds fields of version 4 in a version-{version} file")
        if version < 5 and "coders" in d:
            raise CorruptFileError(f"header holds fields of version 5 in a version-{version} file")
        rec = Recording.from_json(_need(d, "recording", dict, "recording"))
        coded, lossless, reasons = _channels(_need(d, "channels", dict, "channels"), len(rec.ch_names))
        mode, bound, target = "tokens", None, None
        measured = None
        if version >= 3:
            fidelity = _need(d, "fidelity", dict, "fidelity")
            mode, bound, target = _fidelity(fidelity, bool(coded), version)
            measured = _measured_prd(fidelity.get("measured_prd"), rec.ch_names)
        codebooks, model, code_rows = _tokens(d, len(coded), mode, version)
        chunks = _need(d, "chunks", dict, "chunks")
        length = _int(chunks, "length", "chunks.length", 2, 2**31)
        overlap = _int(chunks, "overlap", "chunks.overlap", 0, length // 2)
        header = cls(
            recording=rec,
            annotations=_annotations(_need(d, "annotations", dict, "annotations")),
            coded=coded,
            lossless=lossless,
            lossless_reasons=reasons,
            model=model,
            codebooks=codebooks,
            code_rows=code_rows,
            montage=_montage(d.get("montage"), len(coded)),
            adapter=_adapter(_need(d, "adapter", dict, "adapter")),
            baseline_spacing=_int(d, "baseline_spacing", "baseline_spacing", 1, rec.n_samples),
            chunk_length=length,
            chunk_overlap=overlap,
            chunk_frames=[],
            side=[],
            source=_source(d.get("source"), len(rec.ch_names)),
            eegcodec_version=str(d.get("eegcodec_version", "")),
            created=str(d.get("created", "")),
            version=version,
            mode=mode,
            max_error=bound,
            target_prd=target,
            measured_prd=measured,
        )
        header.chunk_frames = header._frames(chunks)
        header.side = header._side_index(_need(d, "side", list, "side"))
        if version >= 3:
            header.exact_frames = header._exact_frames(_need(d, "exact", dict, "exact"))
            header.info_bytes = _int(d, "info_bytes", "info_bytes", 0, MAX_INFO_BYTES)
        if version >= 4:
            header.residual_frames = header._residual_frames(_need(d, "residual", dict, "residual"))
        if version >= 5:
            header._coders(_need(d, "coders", dict, "coders"))
        return header

    def _coders(self, coders: dict) -> None:
        """``coders``: the CODE stream's coder, and the prior's SHA-256 exactly when it is ``prior``."""
        self.code_coder = _need(coders, "CODE", str, "coders.CODE")
        if self.code_coder not in CODERS:
            raise CorruptFileError(
                f"{_where('coders.CODE')} = {self.code_coder!r} is not one of {sorted(CODERS)}"
            )
        sha = coders.get("prior_sha256")
        is_sha = isinstance(sha, str) and len(sha) == 64 and not set(sha) - set("0123456789abcdef")
        if (sha is not None and not is_sha) or (self.code_coder == "prior") != is_sha:
            raise CorruptFileError(
                f"{_where('coders.prior_sha256')} must be a SHA-256 exactly when CODE is 'prior'"
            )
        self.prior_sha256 = sha

    def _residual_frames(self, residual: dict) -> list[int]:
        """Compressed size of each chunk's frame in ``RESD`` (one per chunk of a ``prd`` file)."""
        want = self.n_chunks if self.mode == "prd" and self.coded else 0
        frames = _int_list(residual, "frame_bytes", "residual.frame_bytes", 0, 2**40, want)
        if len(frames) != want:
            raise CorruptFileError(
                f"{_where('residual.frame_bytes')} has {len(frames)} entries, expected {want}"
            )
        return frames

    def _exact_frames(self, exact: dict) -> list[int]:
        """Compressed size of each chunk's frame in ``RAWC`` (one per chunk with exact channels)."""
        want = self.n_chunks if self.lossless else 0
        frames = _int_list(exact, "frame_bytes", "exact.frame_bytes", 0, 2**40, want)
        if len(frames) != want:
            raise CorruptFileError(
                f"{_where('exact.frame_bytes')} has {len(frames)} entries, expected {want}"
            )
        return frames

    def _frames(self, chunks: dict) -> list[int]:
        """Code frames per chunk, checked against what the layout and the adapter imply."""
        frames = _int_list(chunks, "frames", "chunks.frames", 0, 2**31, self.n_chunks if self.coded else 0)
        if not self.has_tokens:
            if frames:
                raise CorruptFileError(f"{_where('chunks.frames')} lists frames but the file holds no tokens")
            return frames
        if len(frames) != self.n_chunks:
            raise CorruptFileError(
                f"{_where('chunks.frames')} has {len(frames)} chunks, the layout has {self.n_chunks}"
            )
        try:
            adapter = ChunkAdapter(self.adapter, self.recording.sfreq, self.model.hop_length)
        except EegcodecError as exc:
            raise CorruptFileError(f"{_where('adapter')}: {exc}") from exc
        n, length, stride = (
            self.recording.n_samples,
            self.chunk_length,
            self.chunk_length - self.chunk_overlap,
        )
        for i, got in enumerate(frames):
            start = i * stride
            want = adapter.n_frames(min(start + length, n) - start)
            if got != want and not (got == 0 and self.mode == "prd"):  # prd: a chunk may go without
                raise CorruptFileError(
                    f"{_where('chunks.frames')}[{i}] = {got}, the chunk's length implies {want}"
                )
        return frames

    def _side_index(self, index: list) -> list[ArraySpec]:
        """The side arrays, in order, contiguous, with the shapes the header's counts imply."""
        allowed = (SIDE_SHAPES if self.has_tokens or not self.coded else SIDE_SHAPES_NO_TOKENS)[self.version]
        sizes = {
            "C": len(self.coded),
            "K": self.n_knots,
            "N": self.n_chunks if self.has_tokens or self.version >= 6 else 0,  # 6: prd files' mains
            "3": 3,
            "2": 2,
            "H": 2 * HARMONICS,
        }
        free: dict[str, int] = {}
        bound = max(1, len(self.coded)) * self.recording.n_samples
        specs, offset = [], 0
        if len(index) > len(allowed):
            raise CorruptFileError(
                f"{_where('side')} lists {len(index)} arrays, at most {len(allowed)} exist"
            )
        for i, item in enumerate(index):
            p = f"side[{i}]"
            name = _need(item, "name", str, f"{p}.name")
            if name not in allowed or any(s.name == name for s in specs):
                raise CorruptFileError(
                    f"{_where(p + '.name')} = {name!r} is not a side array of version {self.version} (or "
                    f"repeats)"
                )
            dtype = _need(item, "dtype", str, f"{p}.dtype")
            if dtype not in SIDE_DTYPES:
                raise CorruptFileError(f"{_where(p + '.dtype')} = {dtype!r} is not one of {SIDE_DTYPES}")
            shape = tuple(_int_list(item, "shape", f"{p}.shape", 0, 2**40, 4))
            symbols = allowed[name]
            if len(shape) != len(symbols) and not (symbols == "NC" and shape == (0, 0)):
                raise CorruptFileError(
                    f"{_where(p + '.shape')} {list(shape)} should have {len(symbols)} axes"
                )
            for size, sym in zip(shape, symbols):
                want = sizes.get(sym, free.setdefault(sym, size))
                if size != want or size > bound:
                    raise CorruptFileError(
                        f"{_where(p + '.shape')} {list(shape)} does not fit the recording ({sym} = {want})"
                    )
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if (
                _int(item, "offset", f"{p}.offset", 0, 2**42) != offset
                or _int(item, "nbytes", f"{p}.nbytes", 0, 2**42) != nbytes
            ):
                raise CorruptFileError(
                    f"{_where(p)}: offset or nbytes disagree with the arrays before it and its shape"
                )
            specs.append(ArraySpec(name, dtype, shape, offset, nbytes))
            offset += nbytes
        names, need = {s.name for s in specs}, set(allowed)
        if self.version >= 7 and not names & set(MAINS_SHAPES):  # version 7: the mains arrays or none
            need -= set(MAINS_SHAPES)
        if self.coded and names != need:
            raise CorruptFileError(f"{_where('side')} lacks arrays: {sorted(need - names)}")
        return specs

    def check_sections(self, sizes: dict[str, int]) -> None:
        """Section sizes (bytes) agree with what the header declares."""
        want_code = -(-self.code_count * self.model.bits_per_code // 8) if self.model else 0
        got = sizes.get("CODE", 0)
        if self.code_coder == "prior" and self.has_tokens:  # entropy-coded: kept only when smaller
            if not 4 <= got < want_code:
                raise CorruptFileError(
                    f"CODE section holds {got} bytes, not fewer than {want_code} as it must"
                )
        elif got != want_code:
            raise CorruptFileError(f"CODE section holds {got} bytes, the header implies {want_code}")
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
    codebooks = _int(d, "codebooks", "codebooks", 1 if n_coded and mode != "prd" else 0, 256)
    tokens = n_coded > 0 and codebooks > 0
    model = _need(d, "model", dict, "model", optional=version >= 3 and not tokens)
    if model is not None and not tokens:
        raise CorruptFileError(f"{_where('model')} names a model but the file holds no tokens")
    model = None if model is None else ModelRef.from_json(model)
    code_rows = _int(d, "code_rows", "code_rows", 0, n_coded, optional=True)
    code_rows = n_coded if code_rows is None else code_rows  # files before 0.2
    if (code_rows == 0) != (not tokens):
        raise CorruptFileError(f"{_where('code_rows')} = {code_rows} does not fit {n_coded} coded channels")
    return codebooks, model, code_rows


def _channels(channels: dict, n_ch: int) -> tuple[list[int], list[int], dict[int, str]]:
    """(coded, lossless, reasons): the two lists cover each of the ``n_ch`` channels once, in order."""
    coded = _int_list(channels, "coded", "channels.coded", 0, n_ch - 1, n_ch)
    lossless = _int_list(channels, "lossless", "channels.lossless", 0, n_ch - 1, n_ch)
    if (
        sorted(coded + lossless) != list(range(n_ch))
        or coded != sorted(coded)
        or lossless != sorted(lossless)
    ):
        raise CorruptFileError(
            f"{_where('channels')}: coded and lossless do not list each of the {n_ch} channels once"
        )
    reasons = _need(channels, "lossless_reasons", dict, "channels.lossless_reasons")
    exact = set(lossless)
    if not all(
        isinstance(k, str) and k.isdigit() and int(k) in exact and isinstance(v, str)
        for k, v in reasons.items()
    ):
        raise CorruptFileError(
            f"{_where('channels.lossless_reasons')} must map lossless channel indices to strings"
        )
    return coded, lossless, {int(k): v for k, v in reasons.items()}


def _fidelity(d: dict, coded: bool, version: int) -> tuple[str, float | None, float | None]:
    """(mode, max error in volts or None, target PRD in % or None), checked against each other."""
    mode = _need(d, "mode", str, "fidelity.mode")
    if mode not in MODES[version] or ((mode == "tokens") != coded and mode != "prd"):
        raise CorruptFileError(f"{_where('fidelity.mode')} = {mode!r} does not fit the file's channels")
    bound = _need(d, "max_error_volts", float, "fidelity.max_error_volts", optional=True)
    if (bound is None) != (mode != "max_error") or (bound is not None and not 0 < bound < MAX_VOLTS_BOUND):
        raise CorruptFileError(f"{_where('fidelity.max_error_volts')} = {bound!r} does not fit mode {mode!r}")
    target = _need(d, "target_prd", float, "fidelity.target_prd", optional=True) if version >= 4 else None
    if (target is None) != (mode != "prd") or (
        target is not None and not PRD_RANGE[0] <= target < PRD_RANGE[1]
    ):
        raise CorruptFileError(f"{_where('fidelity.target_prd')} = {target!r} does not fit mode {mode!r}")
    return mode, bound, target


def _measured_prd(d: Any, ch_names: list[str]) -> dict | None:
    """``fidelity.measured_prd`` (optional): percentages that are finite numbers, channels the
    recording has."""
    if d is None:
        return None
    p = "fidelity.measured_prd"

    def percent(v, where):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < 1e9:
            raise CorruptFileError(f"{_where(where)} = {v!r} is not a percentage")
        return float(v)

    if not isinstance(d, dict) or set(d) != {"median", "p90", "worst"} or not isinstance(d["worst"], list):
        raise CorruptFileError(f"{_where(p)} is not {{median, p90, worst}}")
    worst = d["worst"]
    if len(worst) > 3 or not all(isinstance(w, list) and len(w) == 2 and w[0] in ch_names for w in worst):
        raise CorruptFileError(f"{_where(p + '.worst')} does not name the recording's channels")
    return {
        "median": percent(d["median"], p + ".median"),
        "p90": percent(d["p90"], p + ".p90"),
        "worst": [[name, percent(v, p + ".worst")] for name, v in worst],
    }


def _annotations(d: dict) -> dict:
    p = "annotations"
    onset = _need(d, "onset", list, f"{p}.onset")
    n = len(onset)
    if n > MAX_ANNOTATIONS:
        raise CorruptFileError(f"{_where(p)} holds {n} annotations, at most {MAX_ANNOTATIONS} allowed")
    duration = _need(d, "duration", list, f"{p}.duration")
    for name, values in (("onset", onset), ("duration", duration)):
        if len(values) != n or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise CorruptFileError(f"{_where(p + '.' + name)} must be {n} finite numbers")
    if any(v < 0 or v > MAX_SECONDS for v in duration) or any(abs(v) > MAX_SECONDS for v in onset):
        raise CorruptFileError(f"{_where(p)} holds an onset or duration outside +-{MAX_SECONDS:g} s")
    desc = _str_list(d, "description", f"{p}.description", n=n, max_len=MAX_ANNOTATIONS)
    ch_names = _need(d, "ch_names", list, f"{p}.ch_names")
    if len(ch_names) != n or not all(
        isinstance(c, list) and all(isinstance(s, str) for s in c) for c in ch_names
    ):
        raise CorruptFileError(f"{_where(p + '.ch_names')} must be {n} lists of channel names")
    orig = _need(d, "orig_time", str, f"{p}.orig_time", optional=True)
    return {
        "orig_time": orig,
        "onset": onset,
        "duration": duration,
        "description": desc,
        "ch_names": ch_names,
    }


def _montage(d: Any, n_coded: int) -> dict | None:
    if d is None:
        return None
    pos = _need(d, "positions", list, "montage.positions")
    known = _need(d, "known", list, "montage.known")
    ok_pos = len(pos) == n_coded and all(
        isinstance(r, list)
        and len(r) == 3
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 1e3
            for v in r
        )
        for r in pos
    )
    if not ok_pos or len(known) != n_coded or not all(isinstance(k, (bool, int)) for k in known):
        raise CorruptFileError(
            f"{_where('montage')} must give {n_coded} finite positions [x, y, z] and flags"
        )
    return {"positions": pos, "known": known}


def _adapter(d: dict) -> AdapterConfig:
    ranges = {
        "model_rate": (MIN_SFREQ, 1e7),
        "chunk_seconds": (1e-3, 1e6),
        "overlap_seconds": (0, 1e6),
        "baseline_seconds": (0, 1e9),
        "baseline_step": (1e-9, 1e9),
        "target_std": (1e-9, 1),
        "outlier_sigma": (1e-9, 1e9),
    }
    values = {k: _num(d, k, f"adapter.{k}", lo, hi) for k, (lo, hi) in ranges.items() if k in d}
    if set(d) - set(ranges):
        raise CorruptFileError(f"{_where('adapter')} has unknown settings {sorted(set(d) - set(ranges))}")
    try:
        return AdapterConfig(**values)
    except EegcodecError as exc:
        raise CorruptFileError(f"{_where('adapter')}: {exc}") from exc


def _source(d: Any, n_ch: int) -> dict | None:
    """The input file's name and size, and (EDF/BDF sources) each channel's scaling there."""
    if d is None:
        return None
    name = _need(d, "name", str, "source.name", optional=True)
    out = {"name": name, "bytes": _int(d, "bytes", "source.bytes", 0, 2**62)}
    edf = _need(d, "edf", dict, "source.edf", optional=True)
    if edf is not None:
        out["edf"] = {}
        for key in ("physical_min", "physical_max", "digital_min", "digital_max", "unit_volts"):
            values = [
                _need({"v": v}, "v", float, f"source.edf.{key}")
                for v in _need(edf, key, list, f"source.edf.{key}")
            ]
            if len(values) != n_ch or any(abs(v) > 1e12 for v in values):
                raise CorruptFileError(f"{_where('source.edf.' + key)} does not fit the {n_ch} channels")
            out["edf"][key] = values
        dims = _need(edf, "dimension", list, "source.edf.dimension")
        if len(dims) != n_ch or not all(isinstance(v, str) and len(v) <= 8 and v.isascii() for v in dims):
            raise CorruptFileError(
                f"{_where('source.edf.dimension')} must be {n_ch} ASCII units of 8 characters"
            )
        out["edf"]["dimension"] = dims
    return out
