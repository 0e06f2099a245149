"""Adapt EEG to what an audio codec takes, and undo it (stage 2 of the data path).

The codec sees, per channel, a unit-less signal at its own sampling rate whose
length is a multiple of its hop. Going there from volts at the recording's rate
takes four reversible steps, each stored in the ``.eegc`` file so that
:meth:`ChunkAdapter.restore` undoes it:

1. **Slow baseline** (:class:`Baseline`): one knot per ``baseline_seconds``
   (block mean, NaN-aware), quantised with a step of ``baseline_step`` times the
   channel's noise scale, linearly interpolated. Raw EEG carries much of its
   variance below 1 Hz (drift, DC offsets); coding it as a handful of integers
   per second leaves the codec the part it is good at. ``baseline_seconds=0``
   keeps only one knot (the channel's offset).
2. **Scale**: the residual of each chunk and channel is divided by its robust
   standard deviation (1.4826 x MAD, in volts) and multiplied by ``target_std``;
   the scale is rounded to 1/64 octave and stored as that integer
   (:func:`scale_to_code`) per chunk and channel.
3. **Resample** from the recording's rate to the codec's ``model_rate`` with a
   polyphase filter (:func:`scipy.signal.resample_poly`), and back.
4. **Stride framing**: zero-pad to a multiple of the codec's hop; crop back.

Recordings of any length are cut into overlapping chunks (:class:`ChunkLayout`),
coded independently and cross-faded linearly over the overlap
(:class:`OverlapAdd`), so memory stays bounded and chunk borders leave no seam.

Artefact policy: after decoding, any sample whose error exceeds
``outlier_sigma`` x the chunk's scale is stored exactly (on its channel's integer grid)
in a side list and put back on decompression, so a 5 mV step in 50 uV EEG survives
intact instead of being clipped by the codec's bounded (tanh) output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from fractions import Fraction

import numpy as np

from .errors import EegcodecError

#: 1.4826 x MAD estimates the standard deviation of Gaussian data.
MAD_TO_STD = 1.4826

#: Scales and baseline steps are stored as ``round(log2(volts) * LOG2_RESOLUTION)``:
#: 1/64 octave (1.1 %). The encoder works with the rounded value, so nothing is lost.
LOG2_RESOLUTION = 64


def scale_to_code(scale: np.ndarray) -> np.ndarray:
    """Positive scales (volts) [...] -> int64 codes [...] (1/64-octave steps)."""
    return np.round(np.log2(scale) * LOG2_RESOLUTION).astype(np.int64)


def scale_from_code(code: np.ndarray) -> np.ndarray:
    """Integer codes [...] -> scales in volts, float64 [...]."""
    return np.exp2(np.asarray(code, dtype=np.float64) / LOG2_RESOLUTION)


def round_scale(scale: np.ndarray) -> np.ndarray:
    """The storable scale nearest to ``scale`` (what the encoder must use)."""
    return scale_from_code(scale_to_code(scale))


@dataclass
class AdapterConfig:
    """How EEG is turned into codec input. Stored with every model and every file.

    Attributes
    ----------
    model_rate : Hz at which the codec reads its input (EEG is resampled to it).
    chunk_seconds : length of one independently coded chunk, in recording seconds.
    overlap_seconds : cross-faded overlap between consecutive chunks, in seconds.
    baseline_seconds : spacing of the slow-baseline knots in seconds (0: a single
        knot, i.e. only the channel offset is removed).
    baseline_step : quantisation step of the baseline knots, in units of the
        channel's noise scale (within-block standard deviation).
    target_std : standard deviation the scaled residual is given (codec units;
        the DAC decoder ends in tanh, so values stay well inside [-1, 1]).
    outlier_sigma : samples whose reconstruction error exceeds this many chunk
        scales are stored exactly in the side list.
    """

    model_rate: float = 160.0
    chunk_seconds: float = 30.0
    overlap_seconds: float = 1.0
    baseline_seconds: float = 1.0
    baseline_step: float = 0.2
    target_std: float = 0.1
    outlier_sigma: float = 6.0

    def __post_init__(self) -> None:
        checks = {
            "model_rate": self.model_rate > 0,
            "chunk_seconds": self.chunk_seconds > 0,
            "overlap_seconds": 0 <= self.overlap_seconds < self.chunk_seconds / 2,
            "baseline_seconds": self.baseline_seconds >= 0,
            "baseline_step": self.baseline_step > 0,
            "target_std": 0 < self.target_std < 1,
            "outlier_sigma": self.outlier_sigma > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise EegcodecError(f"invalid adapter setting {name}={getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AdapterConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise EegcodecError(f"unknown adapter settings {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**d)


# ---------------------------------------------------------------------------
# chunk layout and cross-fade
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkLayout:
    """Overlapping chunks covering ``[0, n_samples)``.

    Chunk ``i`` spans ``[i*stride, min(i*stride + length, n_samples))`` with
    ``stride = length - overlap``; the last chunk ends at ``n_samples``.
    All quantities are in recording samples.
    """

    n_samples: int
    length: int
    overlap: int

    @classmethod
    def for_recording(cls, n_samples: int, sfreq: float, cfg: AdapterConfig) -> ChunkLayout:
        length = max(1, int(round(cfg.chunk_seconds * sfreq)))
        overlap = int(round(cfg.overlap_seconds * sfreq))
        return cls(n_samples=n_samples, length=length, overlap=min(overlap, length // 2))

    @property
    def stride(self) -> int:
        return self.length - self.overlap

    def chunks(self) -> list[tuple[int, int]]:
        out, start = [], 0
        while True:
            stop = min(start + self.length, self.n_samples)
            out.append((start, stop))
            if stop >= self.n_samples:
                return out
            start += self.stride


class OverlapAdd:
    """Streams chunk reconstructions into final samples with a linear cross-fade.

    Call :meth:`push` with each chunk in order; it returns the span of samples
    that are final (``start``, ``block [C, n]``). Used identically by the
    compressor (to find outliers against the final reconstruction) and the
    decompressor, so both see the same samples.
    """

    def __init__(self, layout: ChunkLayout):
        self.layout = layout
        self._pending: np.ndarray | None = None  # [C, overlap] tail of the previous chunk
        ov = layout.overlap
        self._fade_in = ((np.arange(ov) + 0.5) / ov) if ov else np.zeros(0)

    def push(self, start: int, stop: int, block: np.ndarray) -> tuple[int, np.ndarray]:
        block = np.array(block, dtype=np.float64, copy=True)
        ov = self.layout.overlap
        if self._pending is not None and ov:
            n = min(ov, block.shape[1])
            w = self._fade_in[:n]
            block[:, :n] = w * block[:, :n] + (1 - w) * self._pending[:, :n]
        last = stop >= self.layout.n_samples
        if last or not ov:
            self._pending = None
            return start, block
        self._pending = block[:, -ov:]
        return start, block[:, :-ov]


# ---------------------------------------------------------------------------
# slow baseline
# ---------------------------------------------------------------------------


class Baseline:
    """Slow drift of each channel as quantised knots, linearly interpolated.

    Knot ``k`` sits at the centre of block ``[k*spacing, (k+1)*spacing)`` and holds
    ``knots_q[c, k] * step[c]`` volts; values are held flat before the first and
    after the last knot.

    Parameters
    ----------
    knots_q : int64 [C, K] quantised knot values.
    step : float64 [C] quantisation step in volts.
    spacing : knot spacing in recording samples.
    """

    #: names of the side arrays :meth:`to_arrays` writes
    ARRAYS = ("baseline_step_log2", "baseline_common_delta", "baseline_knot_deltas")

    def __init__(self, knots_q: np.ndarray, step: np.ndarray, spacing: int):
        self.knots_q = np.asarray(knots_q, dtype=np.int64)
        self.step = np.asarray(step, dtype=np.float64)
        self.spacing = int(spacing)
        self._knots = self.knots_q * self.step[:, None]

    @classmethod
    def fit(cls, block_means: np.ndarray, noise: np.ndarray, spacing: int, step_ratio: float) -> Baseline:
        """Quantise block means [C, K] (volts; NaN for empty blocks) with step ``step_ratio*noise``."""
        step = round_scale(np.where(noise > 0, noise * step_ratio, 1.0))  # what the file stores
        means = np.array(block_means, dtype=np.float64)
        for c in range(means.shape[0]):  # empty (all-NaN) blocks take their neighbours' value
            row = means[c]
            bad = np.isnan(row)
            if bad.all():
                row[:] = 0.0
            elif bad.any():
                idx = np.arange(row.size)
                row[bad] = np.interp(idx[bad], idx[~bad], row[~bad])
        return cls(np.round(means / step[:, None]).astype(np.int64), step, spacing)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Side arrays: the steps' log2 codes [C]; the knots as differences along time
        [C, K] minus their median across channels [K] (drift shared by all electrodes is
        coded once, which saves about a bit per knot on raw EEG)."""
        deltas = np.diff(self.knots_q, axis=1, prepend=0)
        common = (
            np.round(np.median(deltas, axis=0)).astype(np.int64)
            if deltas.shape[0]
            else np.zeros(deltas.shape[1], np.int64)
        )
        return dict(zip(self.ARRAYS, (scale_to_code(self.step), common, deltas - common)))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], spacing: int) -> Baseline:
        """Inverse of :meth:`to_arrays`."""
        steps, common, deltas = (np.asarray(arrays[name], dtype=np.int64) for name in cls.ARRAYS)
        return cls(np.cumsum(deltas + common, axis=1), scale_from_code(steps), spacing)

    def values(self, start: int, stop: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Baseline in volts for samples ``[start, stop)``: float64 [C, stop-start]."""
        knots = self._knots if rows is None else self._knots[rows]
        n_knots = knots.shape[1]
        t = np.arange(start, stop, dtype=np.float64)
        u = np.clip((t - (self.spacing - 1) / 2) / self.spacing, 0, n_knots - 1)
        k0 = np.minimum(np.floor(u).astype(np.int64), max(n_knots - 2, 0))
        k1 = np.minimum(k0 + 1, n_knots - 1)
        frac = u - k0
        return knots[:, k0] * (1 - frac) + knots[:, k1] * frac


# ---------------------------------------------------------------------------
# per-chunk scaling, resampling and framing
# ---------------------------------------------------------------------------


def robust_scale(x: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Robust standard deviation per row of ``x`` [C, n] (1.4826 x MAD), in x's units.

    Rows whose MAD is zero use the plain standard deviation, then ``fallback`` [C].
    """
    med = np.median(x, axis=1, keepdims=True)
    scale = MAD_TO_STD * np.median(np.abs(x - med), axis=1)
    scale = np.where(scale > 0, scale, x.std(axis=1))
    scale = np.where(scale > 0, scale, fallback)
    return np.where(scale > 0, scale, 1.0)


def resample_ratio(src_rate: float, dst_rate: float) -> tuple[int, int]:
    """(up, down) integers with ``src_rate * up / down == dst_rate`` (to 1e-3)."""
    frac = Fraction(dst_rate / src_rate).limit_denominator(1000)
    if abs(float(frac) * src_rate - dst_rate) > 1e-3 * dst_rate:
        raise EegcodecError(f"cannot resample {src_rate} Hz to {dst_rate} Hz with a rational ratio")
    return frac.numerator, frac.denominator


def resample(x: np.ndarray, up: int, down: int, n_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis, cropped or zero-padded to ``n_out``."""
    if up == down:
        y = x
    else:
        from scipy.signal import resample_poly  # 0.6 s to import: only where a rate changes

        y = resample_poly(x, up, down, axis=-1)
    if y.shape[-1] >= n_out:
        return y[..., :n_out]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n_out - y.shape[-1])])


@dataclass
class ChunkAdapter:
    """Per-chunk forward (volts -> codec input) and inverse transforms.

    Parameters
    ----------
    cfg : adapter settings.
    sfreq : the recording's sampling rate (Hz).
    hop : the codec's hop length (codec samples per code frame).
    """

    cfg: AdapterConfig
    sfreq: float
    hop: int

    def __post_init__(self) -> None:
        self.up, self.down = resample_ratio(self.sfreq, self.cfg.model_rate)

    def model_length(self, n: int) -> int:
        """Codec samples for ``n`` recording samples, before framing."""
        return int(np.ceil(n * self.up / self.down))

    def n_frames(self, n: int) -> int:
        """Code frames for a chunk of ``n`` recording samples."""
        return int(np.ceil(self.model_length(n) / self.hop))

    def forward(self, residual: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Residual [C, n] in volts -> codec input float32 [C, n_frames*hop]."""
        z = residual / scale[:, None] * self.cfg.target_std
        return resample(z, self.up, self.down, self.n_frames(residual.shape[1]) * self.hop).astype(np.float32)

    def inverse(self, model_out: np.ndarray, scale: np.ndarray, n: int) -> np.ndarray:
        """Codec output [C, n_frames*hop] -> residual [C, n] in volts."""
        m = self.model_length(n)
        z = resample(np.asarray(model_out[:, :m], dtype=np.float64), self.down, self.up, n)
        return z * (scale[:, None] / self.cfg.target_std)
