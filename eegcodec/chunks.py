"""One chunk of a recording through the codec and back, written once (stages 2-3).

:class:`ChunkCoder` owns the per-chunk transforms of the data path: ``prepare`` (volts ->
codec input: baseline removed, scaled by the storable chunk scale, resampled, framed) and
``reconstruct`` (codec output -> volts). Compression, decompression, training windows and
encoder B all call it, so the model is trained on exactly what it codes.

The streams a file holds are small objects fed chunk by chunk, each with
``to_arrays``/``payload`` for the container (as :class:`~eegcodec.adapt.Baseline` has):
:class:`CodedStream` (the model's codes, chunk scales and exactly stored outliers of the
coded channels), :class:`ResidualStream` (the transform layer of ``prd`` files, over what the
tokens left) and :class:`ExactStream` (the channels stored exactly).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import mne
import numpy as np

from .adapt import (
    AdapterConfig,
    Baseline,
    ChunkAdapter,
    ChunkLayout,
    OverlapAdd,
    robust_scale,
    round_scale,
    scale_to_code,
)
from .correction import (
    CORRECTION_PRICE,
    CORRECTION_TRIES,
    correct,
    correction_candidates,
    correction_spacing,
    rank_candidates,
)
from .format.adaptive import SEGMENT
from .format.exact import encode_block_values
from .format.header_checks import BOUND_ROUNDING
from .format.side import (
    correction_from_arrays,
    mix_from_arrays,
    nan_runs_to_arrays,
    outliers_to_arrays,
    scales_to_arrays,
)
from .format.transform import TransformEncoder
from .mains import MainsFit, steps_for
from .mains import fit as mains_fit
from .mains import to_arrays as mains_to_arrays
from .survey import CODED_TYPES, Survey

if TYPE_CHECKING:  # the codec's module imports torch; files without tokens never need it
    from .backends.base import Codec


class ChunkCoder:
    """Per-chunk forward and inverse transforms of the coded channels (baseline, mains, scale,
    resampling, framing).

    Parameters
    ----------
    cfg : adapter settings; sfreq : the recording's rate (Hz); hop : the codec's hop.
    baseline : the slow baseline of the coded channels (volts).
    noise : float64 [C] noise scale per coded channel (volts), the fallback scale of a
        chunk whose robust scale is zero (needed by :meth:`prepare` only).
    correction : float64 [C, taps] the file's decoder correction (:func:`correct`), applied by
        :meth:`reconstruct`, or None; mix : its spatial mix (into [S, C], out [S, C]), or None.
    """

    def __init__(
        self, cfg: AdapterConfig, sfreq: float, hop: int, baseline: Baseline, noise: np.ndarray | None = None
    ):
        self.adapter = ChunkAdapter(cfg, sfreq, hop)
        self.baseline = baseline
        self.noise = noise
        self.mains_step = steps_for(noise) if noise is not None else None
        self.correction: np.ndarray | None = None
        self.mix: tuple[np.ndarray, np.ndarray] | None = None
        self.spacing = correction_spacing(sfreq, cfg.model_rate)

    def prepare(self, x: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray, MainsFit]:
        """Volts [C, n] of samples ``[start, start + n)`` (NaN allowed) -> (codec input float32
        [C, frames * hop], chunk scale float64 [C] in volts, already rounded to what the file
        stores, the chunk's mains (:mod:`eegcodec.mains`), already removed from the input)."""
        resid = np.where(np.isnan(x), 0.0, x - self.baseline.values(start, start + x.shape[1]))
        sfreq = self.adapter.sfreq
        mains = mains_fit(resid, self.mains_step, sfreq)
        resid = resid - mains.values(sfreq, resid.shape[1])
        scale = round_scale(robust_scale(resid, self.noise))
        return self.adapter.forward(resid, scale), scale, mains

    def reconstruct(
        self,
        model_out: np.ndarray | None,
        scale: np.ndarray,
        start: int,
        stop: int,
        mains: MainsFit | None = None,
    ) -> np.ndarray:
        """Codec output [C, frames * hop] -> volts float64 [C, stop - start], plus the baseline and
        the chunk's ``mains``; None (a ``prd`` chunk without tokens) -> baseline and mains alone.
        With a :attr:`correction`, that filters the result (:func:`correct`)."""
        base = self.baseline.values(start, stop)
        out = base.copy()
        if model_out is not None:
            out += self.adapter.inverse(model_out, scale, stop - start)
        if mains is not None and mains.freq_code:
            out += mains.values(self.adapter.sfreq, stop - start)
        if self.correction is None:
            return out
        return correct(out, base, self.correction, self.spacing, self.mix)


def exact_span(layout: ChunkLayout, start: int, stop: int) -> tuple[int, int]:
    """Samples of a chunk that belong to it alone (overlaps go to the earlier chunk)."""
    return start, (stop if stop >= layout.n_samples else start + layout.stride)


#: segments of the exact coder (:data:`~eegcodec.format.adaptive.SEGMENT` samples) a chunk's own samples
#: span at least in lossless and max-error files by default: a frame's descriptors and predictor fit
#: then come once per 16384 samples or more (102.4 s at 160 Hz; at 160 Hz and 500 Hz fewer bits than
#: 30-s chunks, and the longer the chunk the fewer)
EXACT_SEGMENTS = 4


def exact_adapter(sfreq: float, n_samples: int) -> AdapterConfig:
    """The chunking of lossless and max-error files where the caller gives none: the recording of
    ``n_samples`` at ``sfreq`` (Hz) cut into equal chunks overlapping 1 s, as many as fit whose own
    samples (their stride) are at least 30 s less the overlap and at least :data:`EXACT_SEGMENTS`
    segments (16384 samples, 102.4 s at 160 Hz), so that no short last chunk pays a frame's
    descriptors for a few seconds."""
    cfg = AdapterConfig()
    overlap = int(round(cfg.overlap_seconds * sfreq))
    least = max(EXACT_SEGMENTS * SEGMENT, ChunkLayout.for_recording(n_samples, sfreq, cfg).stride)
    stride = -(-n_samples // max(1, n_samples // least))
    return AdapterConfig(chunk_seconds=(stride + overlap) / sfreq, overlap_seconds=overlap / sfreq)


class ExactStream:
    """The channels stored exactly (or within a bound): one :func:`~eegcodec.format.exact.encode_block`
    frame per chunk. With ``max_error`` (volts) the EEG-type channels (:data:`CODED_TYPES`)
    come back within that bound, the others exactly."""

    def __init__(
        self, raw: mne.io.BaseRaw, picks: list[int], layout: ChunkLayout, max_error: float | None = None
    ):
        self.raw, self.picks, self.layout = raw, picks, layout
        types = raw.get_channel_types()
        bounds = (
            [max_error if types[i] in CODED_TYPES else 0.0 for i in picks] if max_error is not None else None
        )
        self.max_error = None if bounds is None else np.array(bounds)
        self.frames: list[bytes] = []
        #: volts: the largest error of a bounded sample so far, measured on the decoded frames
        self.largest_error = 0.0

    def push(self, start: int, stop: int) -> None:
        if self.picks:
            a, b = exact_span(self.layout, start, stop)
            block = self.raw.get_data(picks=self.picks, start=a, stop=b)
            frame, values = encode_block_values(block, self.max_error)
            self.frames.append(frame)
            if self.max_error is not None and np.any(self.max_error > 0):
                self._measure(block, values)

    def _measure(self, block: np.ndarray, decoded: np.ndarray) -> None:
        """Track the largest error of the bounded rows (``decoded``: what the reader will decode,
        rebuilt by the encoder as the decoder does); a bound broken is a bug, raised here rather
        than written."""
        bounded = self.max_error > 0
        error = np.abs(decoded[bounded] - block[bounded])
        error = np.where(np.isnan(block[bounded]) & np.isnan(decoded[bounded]), 0.0, error)
        worst = float(np.nan_to_num(error, nan=np.inf).max(initial=0.0))
        if worst > float(self.max_error[bounded].max()) * (1 + BOUND_ROUNDING):
            raise RuntimeError(f"max-error coder broke its bound ({worst:.3g} V); please report this")
        self.largest_error = max(self.largest_error, worst)

    def payload(self) -> bytes:
        return b"".join(self.frames)


class PrdMeter:
    """Per-channel PRD (%, mean removed, as :func:`eegcodec.metrics.prd_per_channel`) of a
    reconstruction, from running sums fed chunk by chunk; NaN samples are left out (they come
    back as NaN)."""

    def __init__(self, n_channels: int):
        self.shift = None  # the first chunk's means: sums of squares about them lose no precision
        self.count, self.total, self.squares, self.errors = (np.zeros(n_channels) for _ in range(4))

    def add(self, x: np.ndarray, error: np.ndarray) -> None:
        """x : volts [C, n] (NaN allowed); error : the reconstruction's error there [C, n]."""
        ok = ~np.isnan(x)
        if self.shift is None:
            self.shift = np.where(ok.any(axis=1), np.nanmean(np.where(ok, x, 0.0), axis=1), 0.0)
        centred = np.where(ok, x - self.shift[:, None], 0.0)
        self.count += ok.sum(axis=1)
        self.total += centred.sum(axis=1)
        self.squares += (centred * centred).sum(axis=1)
        self.errors += (np.where(ok, error, 0.0) ** 2).sum(axis=1)

    def per_channel(self) -> np.ndarray:
        """float64 [C] PRD %; NaN for channels without variance."""
        n = np.maximum(self.count, 1)
        ref = np.maximum(self.squares - self.total**2 / n, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ref > 0, 100.0 * np.sqrt(self.errors / ref), np.nan)

    def summary(self, names: list[str]) -> dict | None:
        """``{"median", "p90", "worst": [[name, PRD], ...]}`` (three worst), rounded to 0.1 %;
        None when no channel has variance."""
        prd = self.per_channel()
        ok = np.flatnonzero(np.isfinite(prd))
        if not ok.size:
            return None
        worst = ok[np.argsort(prd[ok])[::-1][:3]]
        return {
            "median": round(float(np.median(prd[ok])), 1),
            "p90": round(float(np.percentile(prd[ok], 90)), 1),
            "worst": [[names[i], round(float(prd[i]), 1)] for i in worst],
        }


class CodedStream:
    """The coded channels: codes per chunk, chunk scales, and (``outliers``) the samples the
    model missed by more than ``outlier_sigma`` chunk scales (stored exactly, so artefacts are
    never flattened). With ``correction``, the chunks' reconstructions are held until
    :meth:`finish` fits the decoder correction's candidates on the whole recording
    (:func:`correction_candidates`) and :meth:`choose_correction` settles the plain way and the
    best candidate (each with its own outliers and PRD) and keeps the one that pays;
    :meth:`use_correction` switches between them."""

    def __init__(
        self,
        raw: mne.io.BaseRaw,
        survey: Survey,
        codec: Codec,
        cfg: AdapterConfig,
        n_codebooks: int,
        layout: ChunkLayout,
        outliers: bool = True,
        correction: bool = False,
    ):
        self.raw, self.survey, self.codec, self.cfg, self.k = raw, survey, codec, cfg, n_codebooks
        self.picks, self.keep_outliers = survey.plan.coded, outliers
        self.montage = codec.montage([raw.ch_names[i] for i in self.picks]) if self.picks else None
        if self.picks:
            self.coder = ChunkCoder(
                cfg, raw.info["sfreq"], codec.info.hop_length, survey.baseline, survey.noise
            )
        self.layout, self.ola = layout, OverlapAdd(layout)
        self._coded_ahead = None  # the chunks' coding, started by the first encode()
        self.codes: list[np.ndarray] = []
        self.frames: list[int] = []
        self.scale_codes: list[np.ndarray] = []
        self.mains: list[MainsFit] = []
        self.meter = PrdMeter(len(self.picks))
        self._outliers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.with_correction = correction and bool(self.picks)
        self._held: list[tuple] = []  # (start, stop, volts, reconstruction, scale) until chosen
        #: after finish(): {False: plain} -> (PrdMeter, outliers, side arrays); after
        #: :meth:`choose_correction`, also True: the best correction tried
        self.options: dict[bool, tuple] | None = None
        #: after finish(): the correction's candidates (:func:`correction_candidates`)
        self.candidates: list[tuple] = []
        self.correction_arrays: dict[str, np.ndarray] = {}

    def encode(self, start: int, stop: int) -> tuple:
        """Samples ``[start, stop)``, the next chunk of the layout: (volts [C, n], codes, chunk
        scale [C], the chunk's mains, the model's chunk reconstruction [C, n] before the
        cross-fade). The chunks are coded ahead through :meth:`Codec.map_chunks`, read in order here."""
        if self._coded_ahead is None:
            self._coded_ahead = self.codec.map_chunks(self._code_chunk, self._chunk_samples())
        coded_start, coded_stop, result = next(self._coded_ahead)
        if (coded_start, coded_stop) != (start, stop):
            raise RuntimeError("CodedStream.encode must be called once per chunk, in the layout's order")
        return result

    def _chunk_samples(self):
        """(volts [C, n], start, stop) of each chunk, read as the coding threads ask for them."""
        for start, stop in self.layout.chunks():
            yield self.raw.get_data(picks=self.picks, start=start, stop=stop), start, stop

    def _code_chunk(self, x: np.ndarray, start: int, stop: int) -> tuple[int, int, tuple]:
        codec_input, scale, mains = self.coder.prepare(x, start)
        codes = self.codec.encode_channels(codec_input, self.k, self.montage)
        model_out = self.codec.decode_channels(codes, self.montage)
        recon = self.coder.reconstruct(model_out, scale, start, stop, mains)
        return start, stop, (x, codes, scale, mains, recon)

    def record(self, codes: np.ndarray | None, scale: np.ndarray, mains: MainsFit) -> None:
        """Keep a chunk's codes (None: the chunk goes without tokens), its scale and its mains."""
        if codes is not None:
            self.codes.append(codes)
        self.frames.append(0 if codes is None else int(codes.shape[-1]))
        self.scale_codes.append(scale_to_code(scale))
        self.mains.append(mains)

    def push(self, start: int, stop: int) -> None:
        if not self.picks:
            return
        x, codes, scale, mains, recon = self.encode(start, stop)
        self.record(codes, scale, mains)
        if self.with_correction:
            self._held.append((start, stop, x, recon, scale))
        else:
            self._settle(self.ola, (start, stop, x, recon, scale), self.meter, self._outliers)

    def _settle(self, ola: OverlapAdd, chunk: tuple, meter: PrdMeter, outliers: list) -> tuple:
        """Cross-fade a chunk's reconstruction (``chunk``: start, stop, volts, reconstruction,
        scale), find its outliers (appended to ``outliers``) and feed ``meter``: (first sample,
        volts [C, m] of its span, final reconstruction [C, m], outlier positions [k, 2])."""
        start, stop, x, recon, scale = chunk
        emit_start, final = ola.push(start, stop, recon)
        off = emit_start - start
        span = x[:, off : off + final.shape[1]]
        err = np.abs(span - final)
        bad = np.argwhere(np.nan_to_num(err, nan=0.0) > self.cfg.outlier_sigma * scale[:, None])
        if bad.size and self.keep_outliers:
            outliers.append((bad[:, 0], bad[:, 1] + emit_start, x[bad[:, 0], bad[:, 1] + off]))
            err[bad[:, 0], bad[:, 1]] = 0.0  # stored exactly
        meter.add(span, err)
        return emit_start, span, final, bad

    def _settle_all(self, taps: np.ndarray | None, mix: tuple | None = None) -> tuple[PrdMeter, list, list]:
        """All held chunks through a fresh cross-fade, corrected with ``taps`` and ``mix`` (None:
        plain): (meter, outliers, each chunk's :meth:`_settle` result)."""
        ola, meter, outliers, settled = OverlapAdd(self.layout), PrdMeter(len(self.picks)), [], []
        for start, stop, x, recon, scale in self._held:
            if taps is not None:
                base = self.coder.baseline.values(start, stop)
                recon = correct(recon, base, taps, self.coder.spacing, mix)
            settled.append(self._settle(ola, (start, stop, x, recon, scale), meter, outliers))
        return meter, outliers, settled

    def finish(self) -> None:
        """After the last chunk: settle the plain reconstruction (:attr:`options`, in use) and fit
        the decoder correction's candidates on it (samples neither NaN nor stored exactly),
        quantised as the file stores them (:attr:`candidates`)."""
        if not self._held:
            return
        meter, outliers, settled = self._settle_all(None)
        error, y, weight = [], [], []
        for emit_start, span, final, bad in settled:
            ok = ~np.isnan(span)
            ok[bad[:, 0], bad[:, 1]] = False
            error.append(np.where(ok, span - final, 0.0))
            y.append(final - self.coder.baseline.values(emit_start, emit_start + final.shape[1]))
            weight.append(ok.astype(np.float64))
        parts = [np.concatenate(part, axis=1) for part in (error, y, weight)]
        self.candidates = correction_candidates(*parts, self.coder.spacing)
        self.options = {False: (meter, outliers, {})}
        self.use_correction(False)

    def choose_correction(self, build: Callable[[], bytes]) -> bytes:
        """After :meth:`finish`: the file (``build()``, from the way in use) with the decoder
        correction where it lowers the coded channels' error energy by a larger fraction than it
        adds to the file's bytes, else the file without it (that way left in use). The correction
        is the best of the CORRECTION_TRIES candidates :func:`rank_candidates` puts first, each
        settled and built (its outliers change the bytes too): the one whose error-energy drop
        most exceeds CORRECTION_PRICE times its byte rise (:attr:`options` ``[True]``)."""
        self.use_correction(False)
        plain, plain_error = build(), self.error_energy()
        best, best_score = None, -math.inf
        for arrays in rank_candidates(self.candidates, len(plain))[:CORRECTION_TRIES]:
            taps, mix = correction_from_arrays(arrays), mix_from_arrays(arrays)  # as the decoder has them
            self.options[True] = (*self._settle_all(taps, mix)[:2], arrays)
            self.use_correction(True)
            data, error = build(), self.error_energy()
            drop, rise = 1.0 - error / max(plain_error, 1e-300), len(data) / len(plain) - 1.0
            if drop - CORRECTION_PRICE * rise > best_score:
                best, best_score = (data, drop > rise, self.options[True]), drop - CORRECTION_PRICE * rise
        self._held = []
        if best is not None and plain_error > 0 and best[1]:
            self.options[True] = best[2]
            self.use_correction(True)
            return best[0]
        self.use_correction(False)
        return plain

    def use_correction(self, use: bool) -> None:
        """Take the plain or the corrected way's outliers, PRD and side arrays (after :meth:`finish`)."""
        self.meter, self._outliers, self.correction_arrays = self.options[use]

    def error_energy(self) -> float:
        """Squared error summed over the coded channels' samples (volts**2), outliers exact."""
        return float(self.meter.errors.sum())

    def all_codes(self) -> np.ndarray:
        """int64 [code rows, codebooks, frames of all chunks]."""
        return np.concatenate(self.codes, axis=-1) if self.codes else np.zeros((0, self.k, 0), np.int64)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The side arrays (``docs/FORMAT.md``): baseline, chunk scales, outliers, NaN runs,
        (version 6, where a chunk has them) the chunks' mains and (version 7, where chosen) the
        decoder correction."""
        if self._outliers:
            ch, idx, val = (np.concatenate(part) for part in zip(*self._outliers))
        else:
            ch, idx, val = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return {
            **scales_to_arrays(self.survey.baseline, self.scale_codes),
            **outliers_to_arrays(ch, idx, val, len(self.picks)),
            **nan_runs_to_arrays(self.survey.nan_runs),
            **mains_to_arrays(self.mains, self.coder.mains_step),
            **self.correction_arrays,
        }


def reference_norm(x: np.ndarray) -> np.ndarray:
    """Per channel ``||x - mean(x)||`` over the samples that are not NaN (the PRD's denominator)."""
    ok = ~np.isnan(x)
    mean = np.nanmean(np.where(ok.any(axis=1, keepdims=True), x, 0.0), axis=1, keepdims=True)
    return np.sqrt(np.sum(np.where(ok, x - mean, 0.0) ** 2, axis=1))


class ResidualStream:
    """The transform layer of ``prd`` files (:mod:`eegcodec.format.transform`): per chunk, the coded
    channels minus what the tokens rebuild, coded so that the chunk's median channel PRD is at
    most ``target_prd``. With a :class:`CodedStream`, each chunk keeps its tokens only where
    tokens plus layer take fewer bytes than the layer alone. Without tokens, each chunk's mains
    (:mod:`eegcodec.mains`, amplitude steps ``mains_step`` [C] volts) is stored apart and the
    layer codes the rest; with them, the tokens' chunks carry it."""

    def __init__(
        self,
        raw: mne.io.BaseRaw,
        picks: list[int],
        layout: ChunkLayout,
        target_prd: float,
        coded=None,
        mains_step: np.ndarray | None = None,
    ):
        self.raw, self.picks, self.layout, self.target, self.coded = raw, picks, layout, target_prd, coded
        self.encoder = TransformEncoder(raw.info["sfreq"])
        self.frames: list[bytes] = []
        self.mains_step, self.mains = mains_step, []

    def push(self, start: int, stop: int) -> None:
        if not self.picks:
            return
        if self.coded is None:
            a, b = exact_span(self.layout, start, stop)
            x = self.raw.get_data(picks=self.picks, start=a, stop=b)
            sfreq = self.raw.info["sfreq"]
            mains = mains_fit(np.nan_to_num(x, nan=0.0), self.mains_step, sfreq)
            resid = np.where(np.isnan(x), 0.0, x - mains.values(sfreq, b - a))
            frame, _ = self.encoder.encode(resid, self.target, reference_norm(x))
            self.frames.append(frame)
            self.mains.append(mains)
            return
        x, codes, scale, mains, recon = self.coded.encode(start, stop)
        token_bytes = codes.size * self.coded.codec.info.bits_per_code / 8
        options = []
        for use, chunk_recon in (
            (True, recon),
            (False, self.coded.coder.reconstruct(None, scale, start, stop, mains)),
        ):
            ola, encoder = copy.copy(self.coded.ola), copy.copy(self.encoder)
            emit_start, final = ola.push(start, stop, chunk_recon)
            span = x[:, emit_start - start : emit_start - start + final.shape[1]]
            resid = np.where(np.isnan(span), 0.0, span - final)
            frame, _ = encoder.encode(resid, self.target, reference_norm(span))
            options.append((len(frame) + token_bytes * use, use, frame, ola, encoder))
        _, use, frame, self.coded.ola, self.encoder = self.pick(options)
        self.coded.record(codes if use else None, scale, mains)
        self.frames.append(frame)

    def mains_arrays(self) -> dict[str, np.ndarray]:
        """The chunks' mains of a file without tokens as side arrays (version 6), or none."""
        return mains_to_arrays(self.mains, self.mains_step)

    @staticmethod
    def pick(options: list[tuple]) -> tuple:
        """The option (bytes, tokens used, frame, cross-fade, encoder) with the fewest bytes."""
        return min(options, key=lambda o: o[0])

    def payload(self) -> bytes:
        return b"".join(self.frames)
