"""The checks behind :meth:`eegcodec.format.header.Header.from_json`: the bounds no real
recording reaches, the side arrays each format version holds, and one validator per header field
(each raises :class:`~eegcodec.errors.CorruptFileError` with one line naming the field).
Functions taking ``h`` check a field against the :class:`~eegcodec.format.header.Header` read so far.

This module knows JSON and numbers only: no model, no MNE object, no file.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..adapt import AdapterConfig, ChunkAdapter
from ..errors import CorruptFileError, EegcodecError
from ..mains import HARMONICS
from .streamcoders import CODERS

#: the format version that adds the decoder correction's spatial mix (optional side arrays)
MIX_VERSION = 8
#: format versions whose headers this module reads
VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
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
#: relative float64 rounding allowed on top of a max-error bound (the grid's ``origin + k * step``)
BOUND_ROUNDING = 1e-9
#: taps of the decoder correction (version 7; lags -3..3)
CORRECTION_TAPS = 7
#: components of the decoder correction's spatial mix at most (version 8)
CORRECTION_MAX_RANK = 4
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
SIDE_SHAPES[6] = {**SIDE_SHAPES[5], **MAINS_SHAPES}
#: version 7, optional (both or neither): the decoder correction (``format.side.correction_to_arrays``;
#: T: its taps, 7)
CORRECTION_SHAPES = {"correction_taps": "CT", "correction_scale_log2": "C"}
SIDE_SHAPES[7] = {**SIDE_SHAPES[6], **CORRECTION_SHAPES}
#: version 8, optional (all three or none, and only with the correction's taps): the correction's
#: spatial mix (``format.side.mix_to_arrays``; S: its components, 1..CORRECTION_MAX_RANK)
MIX_SHAPES = {"correction_mix_in": "SC", "correction_mix_out": "SC", "correction_mix_log2": "S2"}
#: (version 8 also marks the frame index and RAWC channel mode 4; 9: its frames with up to 12
#: earlier channels, and the header's ``format_version``)
SIDE_SHAPES[MIX_VERSION] = SIDE_SHAPES[9] = {**SIDE_SHAPES[7], **MIX_SHAPES}
#: side arrays of a file whose coded channels have no tokens (``prd`` mode, version 4; 6: mains)
SIDE_SHAPES_NO_TOKENS = {v: {"nan_runs": "R3"} for v in VERSIONS}
SIDE_SHAPES_NO_TOKENS.update({v: {"nan_runs": "R3", **MAINS_SHAPES} for v in VERSIONS if v >= 6})
#: what a file may promise, per version
MODES = {1: ("tokens",), 2: ("tokens",), 3: ("tokens", "lossless", "max_error")}
MODES[4] = MODES[5] = MODES[6] = MODES[7] = MODES[MIX_VERSION] = MODES[9] = (*MODES[3], "prd")
#: a target PRD (%) outside this range is refused
PRD_RANGE = (0.1, 100.0)


def where(path: str) -> str:
    return f"header field {path}"


def need(d: Any, key: str, kind, path: str, optional: bool = False):
    """``d[key]`` checked to be of ``kind`` (a type or tuple); bool is never taken for int."""
    if not isinstance(d, dict):
        raise CorruptFileError(f"{where(path.rsplit('.', 1)[0] or path)} must be an object")
    if key not in d:
        if optional:
            return None
        raise CorruptFileError(f"{where(path)} is missing")
    value = d[key]
    if optional and value is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise CorruptFileError(f"{where(path)} must be {kind_name(kinds)}, got a boolean")
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds):
        raise CorruptFileError(f"{where(path)} must be {kind_name(kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CorruptFileError(f"{where(path)} is not finite")
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


def int_field(d, key, path, lo, hi, optional=False) -> int | None:
    v = need(d, key, int, path, optional)
    if v is not None and not lo <= v <= hi:
        raise CorruptFileError(f"{where(path)} = {v} is outside {lo}..{hi}")
    return v


def num_field(d, key, path, lo, hi) -> float:
    v = need(d, key, float, path)
    if not lo <= v <= hi:
        raise CorruptFileError(f"{where(path)} = {v} is outside {lo:g}..{hi:g}")
    return v


def str_list(d, key, path, n: int | None = None, max_len: int = MAX_CHANNELS) -> list[str]:
    v = need(d, key, list, path)
    if len(v) > max_len or (n is not None and len(v) != n):
        raise CorruptFileError(
            f"{where(path)} has {len(v)} entries, expected {n if n is not None else f'at most {max_len}'}"
        )
    if not all(isinstance(s, str) and len(s) <= 4096 for s in v):
        raise CorruptFileError(f"{where(path)} must hold strings")
    return list(v)


def int_list(d, key, path, lo: int, hi: int, max_len: int) -> list[int]:
    v = need(d, key, list, path)
    if len(v) > max_len:
        raise CorruptFileError(f"{where(path)} has {len(v)} entries, at most {max_len} allowed")
    if not all(isinstance(i, int) and not isinstance(i, bool) and lo <= i <= hi for i in v):
        raise CorruptFileError(f"{where(path)} must hold integers in {lo}..{hi}")
    return list(v)


def version_fields(d: Any, version: int) -> None:
    """A readable version, and a JSON object holding no field of a later version."""
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
    if version < 8 and any(
        isinstance(d.get(s), dict) and "frame_digests" in d[s] for s in ("exact", "residual", "coders")
    ):
        raise CorruptFileError(f"header holds fields of version 8 in a version-{version} file")
    if (version >= 9 or "format_version" in d) and d.get("format_version") != version:
        raise CorruptFileError(f"header states format version {d.get('format_version')}, the file {version}")


def channels(channels: dict, n_ch: int) -> tuple[list[int], list[int], dict[int, str]]:
    """(coded, lossless, reasons): the two lists cover each of the ``n_ch`` channels once, in order."""
    coded = int_list(channels, "coded", "channels.coded", 0, n_ch - 1, n_ch)
    lossless = int_list(channels, "lossless", "channels.lossless", 0, n_ch - 1, n_ch)
    if (
        sorted(coded + lossless) != list(range(n_ch))
        or coded != sorted(coded)
        or lossless != sorted(lossless)
    ):
        raise CorruptFileError(
            f"{where('channels')}: coded and lossless do not list each of the {n_ch} channels once"
        )
    reasons = need(channels, "lossless_reasons", dict, "channels.lossless_reasons")
    exact = set(lossless)
    if not all(
        isinstance(k, str) and k.isdigit() and int(k) in exact and isinstance(v, str)
        for k, v in reasons.items()
    ):
        raise CorruptFileError(
            f"{where('channels.lossless_reasons')} must map lossless channel indices to strings"
        )
    return coded, lossless, {int(k): v for k, v in reasons.items()}


def fidelity(d: dict, coded: bool, version: int) -> tuple[str, float | None, float | None, float | None]:
    """(mode, max error in volts or None, target PRD in % or None, largest error in volts or None),
    checked against each other."""
    mode = need(d, "mode", str, "fidelity.mode")
    if mode not in MODES[version] or ((mode == "tokens") != coded and mode != "prd"):
        raise CorruptFileError(f"{where('fidelity.mode')} = {mode!r} does not fit the file's channels")
    bound = need(d, "max_error_volts", float, "fidelity.max_error_volts", optional=True)
    if (bound is None) != (mode != "max_error") or (bound is not None and not 0 < bound < MAX_VOLTS_BOUND):
        raise CorruptFileError(f"{where('fidelity.max_error_volts')} = {bound!r} does not fit mode {mode!r}")
    target = need(d, "target_prd", float, "fidelity.target_prd", optional=True) if version >= 4 else None
    if (target is None) != (mode != "prd") or (
        target is not None and not PRD_RANGE[0] <= target < PRD_RANGE[1]
    ):
        raise CorruptFileError(f"{where('fidelity.target_prd')} = {target!r} does not fit mode {mode!r}")
    field = "fidelity.largest_error_volts"  # version 8, max-error files: the largest error measured
    largest = need(d, "largest_error_volts", float, field, optional=True) if version >= 8 else None
    if (largest is None) != (version < 8 or mode != "max_error") or not 0 <= (largest or 0) <= (
        (bound or 0) * (1 + BOUND_ROUNDING)
    ):
        raise CorruptFileError(f"{where(field)} = {largest!r} does not fit the bound {bound!r}")
    return mode, bound, target, largest


def measured_prd(d: Any, ch_names: list[str]) -> dict | None:
    """``fidelity.measured_prd`` (optional): percentages that are finite numbers, channels the
    recording has."""
    if d is None:
        return None
    p = "fidelity.measured_prd"

    def percent(v, at):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < 1e9:
            raise CorruptFileError(f"{where(at)} = {v!r} is not a percentage")
        return float(v)

    if not isinstance(d, dict) or set(d) != {"median", "p90", "worst"} or not isinstance(d["worst"], list):
        raise CorruptFileError(f"{where(p)} is not {{median, p90, worst}}")
    worst = d["worst"]
    if len(worst) > 3 or not all(isinstance(w, list) and len(w) == 2 and w[0] in ch_names for w in worst):
        raise CorruptFileError(f"{where(p + '.worst')} does not name the recording's channels")
    return {
        "median": percent(d["median"], p + ".median"),
        "p90": percent(d["p90"], p + ".p90"),
        "worst": [[name, percent(v, p + ".worst")] for name, v in worst],
    }


def annotations(d: dict) -> dict:
    p = "annotations"
    onset = need(d, "onset", list, f"{p}.onset")
    n = len(onset)
    if n > MAX_ANNOTATIONS:
        raise CorruptFileError(f"{where(p)} holds {n} annotations, at most {MAX_ANNOTATIONS} allowed")
    duration = need(d, "duration", list, f"{p}.duration")
    for name, values in (("onset", onset), ("duration", duration)):
        if len(values) != n or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise CorruptFileError(f"{where(p + '.' + name)} must be {n} finite numbers")
    if any(v < 0 or v > MAX_SECONDS for v in duration) or any(abs(v) > MAX_SECONDS for v in onset):
        raise CorruptFileError(f"{where(p)} holds an onset or duration outside +-{MAX_SECONDS:g} s")
    desc = str_list(d, "description", f"{p}.description", n=n, max_len=MAX_ANNOTATIONS)
    ch_names = need(d, "ch_names", list, f"{p}.ch_names")
    if len(ch_names) != n or not all(
        isinstance(c, list) and all(isinstance(s, str) for s in c) for c in ch_names
    ):
        raise CorruptFileError(f"{where(p + '.ch_names')} must be {n} lists of channel names")
    orig = need(d, "orig_time", str, f"{p}.orig_time", optional=True)
    return {
        "orig_time": orig,
        "onset": onset,
        "duration": duration,
        "description": desc,
        "ch_names": ch_names,
    }


def montage(d: Any, n_coded: int) -> dict | None:
    if d is None:
        return None
    pos = need(d, "positions", list, "montage.positions")
    known = need(d, "known", list, "montage.known")
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
        raise CorruptFileError(f"{where('montage')} must give {n_coded} finite positions [x, y, z] and flags")
    return {"positions": pos, "known": known}


def adapter(d: dict) -> AdapterConfig:
    ranges = {
        "model_rate": (MIN_SFREQ, 1e7),
        "chunk_seconds": (1e-3, 1e6),
        "overlap_seconds": (0, 1e6),
        "baseline_seconds": (0, 1e9),
        "baseline_step": (1e-9, 1e9),
        "target_std": (1e-9, 1),
        "outlier_sigma": (1e-9, 1e9),
    }
    values = {k: num_field(d, k, f"adapter.{k}", lo, hi) for k, (lo, hi) in ranges.items() if k in d}
    if set(d) - set(ranges):
        raise CorruptFileError(f"{where('adapter')} has unknown settings {sorted(set(d) - set(ranges))}")
    try:
        return AdapterConfig(**values)
    except EegcodecError as exc:
        raise CorruptFileError(f"{where('adapter')}: {exc}") from exc


def source(d: Any, n_ch: int) -> dict | None:
    """The input file's name and size, and (EDF/BDF sources) each channel's scaling there."""
    if d is None:
        return None
    name = need(d, "name", str, "source.name", optional=True)
    out = {"name": name, "bytes": int_field(d, "bytes", "source.bytes", 0, 2**62)}
    edf = need(d, "edf", dict, "source.edf", optional=True)
    if edf is not None:
        out["edf"] = {}
        for key in ("physical_min", "physical_max", "digital_min", "digital_max", "unit_volts"):
            values = [
                need({"v": v}, "v", float, f"source.edf.{key}")
                for v in need(edf, key, list, f"source.edf.{key}")
            ]
            if len(values) != n_ch or any(abs(v) > 1e12 for v in values):
                raise CorruptFileError(f"{where('source.edf.' + key)} does not fit the {n_ch} channels")
            out["edf"][key] = values
        dims = need(edf, "dimension", list, "source.edf.dimension")
        if len(dims) != n_ch or not all(isinstance(v, str) and len(v) <= 8 and v.isascii() for v in dims):
            raise CorruptFileError(
                f"{where('source.edf.dimension')} must be {n_ch} ASCII units of 8 characters"
            )
        out["edf"]["dimension"] = dims
    return out


def code_coder(h, coders: dict) -> None:
    """``coders``: the CODE stream's coder, and the prior's SHA-256 exactly when it is ``prior``."""
    h.code_coder = need(coders, "CODE", str, "coders.CODE")
    if h.code_coder not in CODERS:
        raise CorruptFileError(f"{where('coders.CODE')} = {h.code_coder!r} is not one of {sorted(CODERS)}")
    sha = coders.get("prior_sha256")
    is_sha = isinstance(sha, str) and len(sha) == 64 and not set(sha) - set("0123456789abcdef")
    if (sha is not None and not is_sha) or (h.code_coder == "prior") != is_sha:
        raise CorruptFileError(
            f"{where('coders.prior_sha256')} must be a SHA-256 exactly when CODE is 'prior'"
        )
    h.prior_sha256 = sha


def residual_frames(h, residual: dict) -> list[int]:
    """Compressed size of each chunk's frame in ``RESD`` (one per chunk of a ``prd`` file)."""
    want = h.n_chunks if h.mode == "prd" and h.coded else 0
    frames = int_list(residual, "frame_bytes", "residual.frame_bytes", 0, 2**40, want)
    if len(frames) != want:
        raise CorruptFileError(f"{where('residual.frame_bytes')} has {len(frames)} entries, expected {want}")
    return frames


def exact_frames(h, exact: dict) -> list[int]:
    """Compressed size of each chunk's frame in ``RAWC`` (one per chunk with exact channels)."""
    want = h.n_chunks if h.lossless else 0
    frames = int_list(exact, "frame_bytes", "exact.frame_bytes", 0, 2**40, want)
    if len(frames) != want:
        raise CorruptFileError(f"{where('exact.frame_bytes')} has {len(frames)} entries, expected {want}")
    return frames


def code_frames(h, coders: dict) -> list[int]:
    """Version 8: the size of each chunk's frame in ``CODE`` (one per chunk of a token file)."""
    want = h.n_chunks if h.has_tokens else 0
    frames = int_list(coders, "frame_bytes", "coders.frame_bytes", 0, 2**40, want)
    if len(frames) != want:
        raise CorruptFileError(f"{where('coders.frame_bytes')} has {len(frames)} entries, expected {want}")
    return frames


def frame_digests(section: dict, path: str, n: int) -> list[str]:
    """Version 8: the digest of each of a per-chunk section's ``n`` frames, 16 lower-case hex digits each."""
    digests = need(section, "frame_digests", list, f"{path}.frame_digests")
    if len(digests) != n or not all(isinstance(x, str) and len(x) == 16 and _is_hex(x) for x in digests):
        raise CorruptFileError(f"{where(path + '.frame_digests')} must hold {n} digests of 16 hex digits")
    return list(digests)


def _is_hex(x: str) -> bool:
    return all(c in "0123456789abcdef" for c in x)


def chunk_frames(h, chunks: dict) -> list[int]:
    """Code frames per chunk, checked against what the layout and the adapter imply."""
    frames = int_list(chunks, "frames", "chunks.frames", 0, 2**31, h.n_chunks if h.coded else 0)
    if not h.has_tokens:
        if frames:
            raise CorruptFileError(f"{where('chunks.frames')} lists frames but the file holds no tokens")
        return frames
    if len(frames) != h.n_chunks:
        raise CorruptFileError(
            f"{where('chunks.frames')} has {len(frames)} chunks, the layout has {h.n_chunks}"
        )
    try:
        adapter = ChunkAdapter(h.adapter, h.recording.sfreq, h.model.hop_length)
    except EegcodecError as exc:
        raise CorruptFileError(f"{where('adapter')}: {exc}") from exc
    n, length, stride = (
        h.recording.n_samples,
        h.chunk_length,
        h.chunk_length - h.chunk_overlap,
    )
    for i, got in enumerate(frames):
        start = i * stride
        want = adapter.n_frames(min(start + length, n) - start)
        if got != want and not (got == 0 and h.mode == "prd"):  # prd: a chunk may go without
            raise CorruptFileError(
                f"{where('chunks.frames')}[{i}] = {got}, the chunk's length implies {want}"
            )
    return frames


def side_index(h, index: list) -> list[tuple]:
    """The side arrays, in order, contiguous, with the shapes the header's counts imply:
    (name, dtype, shape, offset, nbytes) each."""
    allowed = (SIDE_SHAPES if h.has_tokens or not h.coded else SIDE_SHAPES_NO_TOKENS)[h.version]
    sizes = {
        "C": len(h.coded),
        "K": h.n_knots,
        "N": h.n_chunks if h.has_tokens or h.version >= 6 else 0,  # 6: prd files' mains
        "3": 3,
        "2": 2,
        "H": 2 * HARMONICS,
        "T": CORRECTION_TAPS,
    }
    free: dict[str, int] = {}
    bound = max(1, len(h.coded)) * h.recording.n_samples
    specs, offset = [], 0
    if len(index) > len(allowed):
        raise CorruptFileError(f"{where('side')} lists {len(index)} arrays, at most {len(allowed)} exist")
    for i, item in enumerate(index):
        p = f"side[{i}]"
        name = need(item, "name", str, f"{p}.name")
        if name not in allowed or any(s[0] == name for s in specs):
            raise CorruptFileError(
                f"{where(p + '.name')} = {name!r} is not a side array of version {h.version} (or repeats)"
            )
        dtype = need(item, "dtype", str, f"{p}.dtype")
        if dtype not in SIDE_DTYPES:
            raise CorruptFileError(f"{where(p + '.dtype')} = {dtype!r} is not one of {SIDE_DTYPES}")
        shape = tuple(int_list(item, "shape", f"{p}.shape", 0, 2**40, 4))
        symbols = allowed[name]
        if len(shape) != len(symbols) and not (symbols == "NC" and shape == (0, 0)):
            raise CorruptFileError(f"{where(p + '.shape')} {list(shape)} should have {len(symbols)} axes")
        for size, sym in zip(shape, symbols):
            want = sizes.get(sym, free.setdefault(sym, size))
            if size != want or size > bound:
                raise CorruptFileError(
                    f"{where(p + '.shape')} {list(shape)} does not fit the recording ({sym} = {want})"
                )
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if (
            int_field(item, "offset", f"{p}.offset", 0, 2**42) != offset
            or int_field(item, "nbytes", f"{p}.nbytes", 0, 2**42) != nbytes
        ):
            raise CorruptFileError(
                f"{where(p)}: offset or nbytes disagree with the arrays before it and its shape"
            )
        specs.append((name, dtype, shape, offset, nbytes))
        offset += nbytes
    names, wanted = {s[0] for s in specs}, set(allowed)
    if h.version >= 7 and not names & set(MAINS_SHAPES):  # version 7: the mains arrays or none
        wanted -= set(MAINS_SHAPES)
    if h.version >= 7 and not names & set(CORRECTION_SHAPES):  # the decoder correction or none
        wanted -= set(CORRECTION_SHAPES)
    if h.version >= MIX_VERSION and not names & set(MIX_SHAPES):  # the correction's mix or none
        wanted -= set(MIX_SHAPES)
    if names & set(MIX_SHAPES) and not names & set(CORRECTION_SHAPES):
        raise CorruptFileError(f"{where('side')} holds a correction mix without the correction's taps")
    if h.coded and names != wanted:
        raise CorruptFileError(f"{where('side')} lacks arrays: {sorted(wanted - names)}")
    return specs
