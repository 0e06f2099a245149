"""Compress an ``mne.io.Raw`` to ``.eegc`` bytes and back: the data path end to end.

read (:mod:`eegcodec.io`) -> survey (:mod:`eegcodec.survey`) -> adapt
(:mod:`eegcodec.adapt`) -> tokenize (:mod:`eegcodec.codecs`) -> pack
(:mod:`eegcodec.container`), and the same stages backwards. This module only
wires them together.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Callable

import mne
import numpy as np
import zstandard

from . import __version__
from .adapt import AdapterConfig, Baseline, ChunkAdapter, ChunkLayout, OverlapAdd, robust_scale, round_scale, scale_from_code, scale_to_code
from .codecs.base import Codec
from .container import Archive, pack_arrays, pack_codes, unpack_arrays, unpack_codes
from .errors import CorruptFileError, EegcodecError, ModelMismatchError
from .montage import Montage
from .survey import Survey, survey_recording

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# recording metadata <-> JSON / FIF bytes
# ---------------------------------------------------------------------------


def _info_to_fif(info: mne.Info) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meas-info.fif"
        mne.io.write_info(path, info)
        return zstandard.ZstdCompressor(level=19).compress(path.read_bytes())


def _info_from_fif(payload: bytes) -> mne.Info:
    try:
        data = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
    except zstandard.ZstdError as exc:
        raise CorruptFileError(f"INFO section cannot be decompressed: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meas-info.fif"
        path.write_bytes(data)
        try:
            return mne.io.read_info(path, verbose="error")
        except Exception as exc:
            raise CorruptFileError(f"INFO section is not readable FIF: {exc}") from exc


def _annotations_to_json(ann: mne.Annotations) -> dict:
    return {
        "orig_time": None if ann.orig_time is None else ann.orig_time.isoformat(),
        "onset": [float(v) for v in ann.onset],
        "duration": [float(v) for v in ann.duration],
        "description": [str(v) for v in ann.description],
        "ch_names": [list(v) for v in ann.ch_names],
    }


def _annotations_from_json(d: dict) -> mne.Annotations:
    orig = None if d["orig_time"] is None else dt.datetime.fromisoformat(d["orig_time"])
    return mne.Annotations(d["onset"], d["duration"], d["description"], orig_time=orig, ch_names=d["ch_names"])


# ---------------------------------------------------------------------------
# compress
# ---------------------------------------------------------------------------


def compress_raw(
    raw: mne.io.BaseRaw,
    codec: Codec,
    n_codebooks: int | None = None,
    anonymize: bool = False,
    adapter: AdapterConfig | None = None,
    progress: Progress | None = None,
    source: dict | None = None,
) -> bytes:
    """Compress a recording to ``.eegc`` bytes.

    Parameters
    ----------
    raw : any MNE raw (preloaded or not; samples are read chunk by chunk). Volts.
    codec : the model, from :func:`eegcodec.load_codec`.
    n_codebooks : codebook depth, 1..``codec.info.n_codebooks`` (default: the model's
        ``default_codebooks``).
    anonymize : drop subject identity and measurement date (``mne.io.Raw.anonymize``).
    adapter : override the model's adapter settings (must match its training to be useful).
    progress : called as ``progress(samples_done, n_samples)``.
    source : optional ``{"name", "bytes"}`` of the input file, kept in the header.
    """
    info_c = codec.info
    k = info_c.default_codebooks if n_codebooks is None else int(n_codebooks)
    if not 1 <= k <= info_c.n_codebooks:
        raise EegcodecError(f"--codebooks must be in 1..{info_c.n_codebooks} for model {info_c.name}, got {n_codebooks}")
    cfg = adapter or info_c.adapter
    if raw.n_times < 2:
        raise EegcodecError("recording has fewer than 2 samples; nothing to compress")
    if anonymize:
        raw = raw.copy().anonymize(verbose="error")
        if source:  # file names often carry subject identity
            source = {**source, "name": None}
    sfreq = float(raw.info["sfreq"])
    n = raw.n_times

    survey = survey_recording(raw, cfg)
    coded, lossless = survey.plan.coded, survey.plan.lossless
    layout = ChunkLayout.for_recording(n, sfreq, cfg)
    chunk_adapter = ChunkAdapter(cfg, sfreq, info_c.hop_length)
    ola = OverlapAdd(layout)

    montage = codec.montage([raw.ch_names[i] for i in coded]) if coded else None
    codes_per_chunk, frames, scales = [], [], []
    out_ch, out_idx, out_val = [], [], []
    raw_zstd = zstandard.ZstdCompressor(level=10).compressobj()
    raw_parts = []
    for start, stop in layout.chunks():
        if lossless:
            a, b = _lossless_span(layout, start, stop)
            raw_parts.append(raw_zstd.compress(np.ascontiguousarray(raw.get_data(picks=lossless, start=a, stop=b)).tobytes()))
        if coded:
            x = raw.get_data(picks=coded, start=start, stop=stop)
            nan = np.isnan(x)
            base = survey.baseline.values(start, stop)
            resid = np.where(nan, 0.0, x - base)
            scale = round_scale(robust_scale(resid, survey.noise))
            codes = codec.encode_channels(chunk_adapter.forward(resid, scale), k, montage)
            recon = chunk_adapter.inverse(codec.decode_channels(codes, montage), scale, stop - start) + base
            emit_start, final = ola.push(start, stop, recon)
            off = emit_start - start
            err = np.abs(x[:, off : off + final.shape[1]] - final)
            bad = np.argwhere(np.nan_to_num(err, nan=0.0) > cfg.outlier_sigma * scale[:, None])
            if bad.size:
                out_ch.append(bad[:, 0])
                out_idx.append(bad[:, 1] + emit_start)
                out_val.append(x[bad[:, 0], bad[:, 1] + off])
            codes_per_chunk.append(codes)
            frames.append(int(codes.shape[-1]))
            scales.append(scale_to_code(scale))
        if progress:
            progress(stop, n)
    raw_parts.append(raw_zstd.flush())

    all_codes = np.concatenate(codes_per_chunk, axis=-1) if coded else np.zeros((0, k, 0), np.int64)
    side_arrays = _side_arrays(survey, scales, out_ch, out_idx, out_val)
    side_payload, side_index = pack_arrays(side_arrays)
    header = {
        "eegcodec_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "recording": {
            "sfreq": sfreq,
            "n_samples": int(n),
            "first_samp": int(raw.first_samp),
            "ch_names": list(raw.ch_names),
            "ch_types": raw.get_channel_types(),
            "meas_date": None if raw.info["meas_date"] is None else raw.info["meas_date"].isoformat(),
            "anonymized": bool(anonymize),
        },
        "annotations": _annotations_to_json(raw.annotations),
        "channels": {
            "coded": coded,
            "lossless": lossless,
            "lossless_reasons": {str(i): r for i, r in survey.plan.reasons.items()},
        },
        "model": {
            "name": info_c.name,
            "kind": info_c.kind,
            "weights_sha256": info_c.weights_sha256,
            "sample_rate": info_c.sample_rate,
            "hop_length": info_c.hop_length,
            "codebook_size": info_c.codebook_size,
            "bits_per_code": info_c.bits_per_code,
        },
        "codebooks": k,
        "code_rows": codec.code_rows(len(coded)),
        "montage": None if montage is None else montage.to_dict(),
        "adapter": cfg.to_dict(),
        "baseline_spacing": survey.baseline.spacing,
        "chunks": {"length": layout.length, "overlap": layout.overlap, "frames": frames},
        "side": side_index,
        "source": source,
    }
    archive = Archive(
        header=header,
        codes=pack_codes(all_codes, info_c.bits_per_code),
        side=side_payload,
        raw_channels=b"".join(raw_parts),
        info_fif=_info_to_fif(raw.info),
    )
    return archive.to_bytes()


def _side_arrays(survey: Survey, scale_codes, out_ch, out_idx, out_val) -> dict[str, np.ndarray]:
    ch = np.concatenate(out_ch) if out_ch else np.zeros(0, np.int64)
    idx = np.concatenate(out_idx) if out_idx else np.zeros(0, np.int64)
    val = np.concatenate(out_val) if out_val else np.zeros(0)
    order = np.lexsort((idx, ch))
    ch, idx, val = ch[order], idx[order], val[order]
    scale_codes = np.stack(scale_codes) if scale_codes else np.zeros((0, 0), np.int64)
    return {
        **survey.baseline.to_arrays(),
        "chunk_scale_log2": np.diff(scale_codes, axis=0, prepend=0),
        "outlier_channel": ch,
        "outlier_index_delta": np.diff(idx, prepend=0),
        "outlier_value": val.astype(np.float32),
        "nan_runs": survey.nan_runs.astype(np.int64),
    }


def _read_scales(side: dict[str, np.ndarray], spacing: int) -> tuple[Baseline, np.ndarray]:
    """(baseline, chunk scales [chunks, coded] in volts) from the side arrays."""
    if "chunk_scales" in side:  # .eegc version 1: float32 steps and scales, plain knot deltas
        knots = np.cumsum(side["baseline_knot_deltas"], axis=1)
        return Baseline(knots, side["baseline_step"].astype(np.float64), spacing), side["chunk_scales"].astype(np.float64)
    return Baseline.from_arrays(side, spacing), scale_from_code(np.cumsum(side["chunk_scale_log2"], axis=0))


# ---------------------------------------------------------------------------
# decompress
# ---------------------------------------------------------------------------


def check_model(header: dict, codec: Codec, source: str = "file") -> None:
    """Raise :class:`ModelMismatchError` unless ``codec`` is the model that made the file."""
    want = header["model"]
    if want["weights_sha256"] != codec.info.weights_sha256:
        raise ModelMismatchError(
            f"{source} was compressed with model {want['name']!r} (weights sha256 {want['weights_sha256'][:12]}), "
            f"but model {codec.info.name!r} (sha256 {codec.info.weights_sha256[:12]}) was given; "
            f"pass --model with the original model"
        )


def decompress_archive(archive: Archive, codec: Codec, progress: Progress | None = None) -> mne.io.RawArray:
    """Rebuild the recording from a parsed :class:`Archive`: float64 volts, info and annotations restored."""
    h = archive.header
    check_model(h, codec)
    try:
        rec, ch, ck = h["recording"], h["channels"], h["chunks"]
        cfg = AdapterConfig.from_dict(h["adapter"])
        n, sfreq, k = rec["n_samples"], rec["sfreq"], h["codebooks"]
        coded, lossless = ch["coded"], ch["lossless"]
        side = unpack_arrays(archive.side, h["side"])
        baseline, scales = _read_scales(side, h["baseline_spacing"])
        frames = ck["frames"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"header is incomplete or malformed ({exc})") from exc
    info = _info_from_fif(archive.info_fif)
    n_ch = len(rec["ch_names"])
    if info["nchan"] != n_ch:
        raise CorruptFileError("INFO section and header disagree on the channel count")
    data = np.zeros((n_ch, n))
    layout = ChunkLayout(n, ck["length"], ck["overlap"])

    if lossless:
        try:
            raw_bytes = zstandard.ZstdDecompressor().decompressobj().decompress(archive.raw_channels)
        except zstandard.ZstdError as exc:
            raise CorruptFileError(f"RAWC section cannot be decompressed: {exc}") from exc
        if len(raw_bytes) != len(lossless) * n * 8:
            raise CorruptFileError(f"lossless channel section holds {len(raw_bytes)} bytes, expected {len(lossless) * n * 8}")
        pos = 0
        for start, stop in layout.chunks():
            a, b = _lossless_span(layout, start, stop)
            size = len(lossless) * (b - a) * 8
            data[lossless, a:b] = np.frombuffer(raw_bytes[pos : pos + size]).reshape(len(lossless), b - a)
            pos += size

    if coded:
        total_frames = sum(frames)
        rows = int(h.get("code_rows", len(coded)))  # files before 0.2: one row per coded channel
        names = [rec["ch_names"][i] for i in coded]
        try:
            montage = Montage.from_dict(names, h["montage"]) if h.get("montage") else codec.montage(names)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"montage in the header is malformed ({exc})") from exc
        codes = unpack_codes(archive.codes, h["model"]["bits_per_code"], rows * k * total_frames)
        codes = codes.reshape(rows, k, total_frames)
        if codes.max(initial=0) >= codec.info.codebook_size:
            raise CorruptFileError("code values exceed the model's codebook size")
        chunk_adapter = ChunkAdapter(cfg, sfreq, codec.info.hop_length)
        ola = OverlapAdd(layout)
        pos = 0
        for i, (start, stop) in enumerate(layout.chunks()):
            chunk_codes = codes[:, :, pos : pos + frames[i]]
            pos += frames[i]
            base = baseline.values(start, stop)
            recon = chunk_adapter.inverse(codec.decode_channels(chunk_codes, montage), scales[i], stop - start) + base
            emit_start, final = ola.push(start, stop, recon)
            data[np.ix_(coded, np.arange(emit_start, emit_start + final.shape[1]))] = final
            if progress:
                progress(stop, n)
        out_rows = np.asarray(coded)[side["outlier_channel"].astype(np.int64)]
        out_idx = np.cumsum(side["outlier_index_delta"].astype(np.int64))  # deltas over (channel, index) order
        data[out_rows, out_idx] = side["outlier_value"].astype(np.float64)
        for row, start, length in side["nan_runs"]:
            data[coded[row], start : start + length] = np.nan

    raw = mne.io.RawArray(data, info, first_samp=rec["first_samp"], verbose="error")
    raw.set_annotations(_annotations_from_json(h["annotations"]))
    return raw


def _lossless_span(layout: ChunkLayout, start: int, stop: int) -> tuple[int, int]:
    """Samples of a chunk that belong to it alone (overlaps go to the earlier chunk)."""
    return start, (stop if stop >= layout.n_samples else start + layout.stride)
