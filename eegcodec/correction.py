"""The decoder correction of token files (format versions 7 and 8): what the decoder applies to
each chunk's reconstruction before the cross-fade (:func:`correct`: 7-tap filters per coded row,
then :func:`apply_mix`, a spatial mix over all coded rows), and what the encoder fits on the
whole recording (:func:`fit_correction`, :func:`fit_mix`) and weighs
(:func:`correction_candidates`, :func:`rank_candidates`; :class:`eegcodec.chunks.CodedStream`
settles, builds and keeps one). Side arrays: :mod:`eegcodec.format.side`."""

from __future__ import annotations

import math

import numpy as np

from .format.container import pack_arrays
from .format.header_checks import CORRECTION_MAX_RANK, MIX_VERSION
from .format.side import (
    CORRECTION_RADIUS,
    correction_from_arrays,
    correction_to_arrays,
    mix_from_arrays,
    mix_to_arrays,
)


def correct(
    recon: np.ndarray,
    base: np.ndarray,
    taps: np.ndarray,
    spacing: int = 1,
    mix: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The decoder correction of one chunk's reconstruction (before the cross-fade): volts
    ``recon`` [C, n] minus the baseline ``base`` [C, n], filtered row by row with ``taps``
    [C, 2r + 1] (tap ``k`` weighs the sample at lag ``(k - r) * spacing``; the chunk's first and
    last samples repeated beyond its ends), plus the spatial ``mix`` (:func:`apply_mix`) of the
    same difference, plus the baseline. Float64, the same elementwise operations in the same
    order in encoder and decoder (no BLAS reduction)."""
    y = recon - base
    n, r = y.shape[1], taps.shape[1] // 2
    padded = np.pad(y, ((0, 0), (r * spacing, r * spacing)), mode="edge")
    z = taps[:, :1] * padded[:, :n]
    for k in range(1, taps.shape[1]):
        z = z + taps[:, k : k + 1] * padded[:, k * spacing : k * spacing + n]
    if mix is not None:
        z = z + apply_mix(y, *mix)
    return base + z


def apply_mix(y: np.ndarray, into: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The correction's spatial mix of ``y`` [C, n]: float64 [C, n], the sum over components
    ``s`` of ``out[s, c] * sum_j into[s, j] * y[j]`` (``into``, ``out``: [S, C]), summed row by
    row in index order."""
    z = np.zeros_like(y)
    for s in range(into.shape[0]):
        m = into[s, 0] * y[0]
        for j in range(1, y.shape[0]):
            m = m + into[s, j] * y[j]
        z = z + out[s][:, None] * m
    return z


def correction_spacing(sfreq: float, model_rate: float) -> int:
    """Samples between the correction's taps: the recording's samples per model sample, rounded
    half up (at least 1), so that the taps span the same time at any recording rate (the model's
    output holds nothing above its Nyquist frequency; at 500 Hz over a 160-Hz model, spacing 3
    instead of 1 raised the error energy removed on EEGMAT Subject12 at depth 2 from 2.7 to 5.6 %)."""
    return max(1, math.floor(sfreq / model_rate + 0.5))


#: ridge of the correction's least squares, relative to the mean power of the reconstruction
CORRECTION_RIDGE = 1e-3


def fit_correction(
    error: np.ndarray, y: np.ndarray, weight: np.ndarray, spacing: int = 1, common: bool = False
) -> np.ndarray:
    """Least-squares taps minus the unit impulse, float64 [C, 2 * CORRECTION_RADIUS + 1], per row
    minimising ``sum(weight * (error - d * y) ** 2)`` plus a small ridge over the samples
    (``d * y``: ``y`` filtered as :func:`correct` does, the recording's ends repeated); with
    ``common``, one filter for all rows (their sums pooled), repeated on each row.
    ``error`` [C, n]: the recording minus its reconstruction (volts); ``y`` [C, n]: the
    reconstruction minus the baseline; ``weight`` [C, n]: 1 where a sample counts (not NaN, not
    stored exactly), else 0."""
    n, taps, reach = y.shape[1], 2 * CORRECTION_RADIUS + 1, CORRECTION_RADIUS * spacing
    padded = np.pad(y, ((0, 0), (reach, reach)), mode="edge")
    gram, rhs = np.zeros((y.shape[0], taps, taps)), np.zeros((y.shape[0], taps))
    error = np.where(weight > 0, error, 0.0)
    for j in range(taps):
        yj = padded[:, j * spacing : j * spacing + n] * weight
        rhs[:, j] = (yj * error).sum(axis=1)
        for k in range(j, taps):
            gram[:, j, k] = gram[:, k, j] = (yj * padded[:, k * spacing : k * spacing + n]).sum(axis=1)
    if common:
        gram, rhs = gram.sum(axis=0, keepdims=True), rhs.sum(axis=0, keepdims=True)
    ridge = CORRECTION_RIDGE * np.trace(gram, axis1=1, axis2=2) / taps + 1e-300
    gram += ridge[:, None, None] * np.eye(taps)
    deviation = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return np.repeat(deviation, y.shape[0], axis=0) if common else deviation


def fit_mix(error: np.ndarray, y: np.ndarray, weight: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The spatial mix (:func:`apply_mix`) of rank ``rank`` that best predicts ``error`` [C, n]
    from ``y`` [C, n] at lag 0 (reduced-rank least squares, a ridge of CORRECTION_RIDGE of the
    mean power, over the samples where every row with any ``weight`` counts): (into [S, C],
    out [S, C]), S = min(rank, C); out's rows are orthonormal."""
    rows = weight.any(axis=1)
    w = np.where(rows[:, None], weight, 1.0).min(axis=0)
    yw = y * w
    gram = yw @ y.T
    gram += (CORRECTION_RIDGE * np.trace(gram) / len(gram) + 1e-300) * np.eye(len(gram))
    mix = np.linalg.solve(gram, yw @ np.where(weight > 0, error, 0.0).T).T  # [C, C]: error ~ mix @ y
    fitted = mix @ gram @ mix.T  # the predicted error's power between rows
    _, vectors = np.linalg.eigh(fitted)
    out = vectors[:, ::-1][:, : min(rank, len(gram))].T
    return out @ mix, out


#: a candidate correction must remove this many times the fraction of the error energy that its
#: side arrays add to the file's bytes (:func:`rank_candidates`; ``CodedStream.choose_correction``)
CORRECTION_PRICE = 2.0
#: bytes a side array adds to a file beyond its frame (its entry in the compressed header)
SIDE_ENTRY_BYTES = 16
#: candidates settled and built per file (the best of them by their real bytes is weighed)
CORRECTION_TRIES = 3


def correction_candidates(
    error: np.ndarray, y: np.ndarray, weight: np.ndarray, spacing: int = 1
) -> list[tuple[dict[str, np.ndarray], float]]:
    """The decoder correction's candidates for a recording (``error``, ``y``, ``weight`` [C, n]
    as :func:`fit_correction` takes them): taps per row or one filter for all rows, each alone
    or followed by a spatial mix of rank 1..CORRECTION_MAX_RANK fitted on what the quantised
    taps leave: ``(side arrays, fraction of the weighted error energy left)`` each, from the
    quantised values, and ``({}, 1.0)`` (no correction) first."""
    error = np.where(weight > 0, error, 0.0)
    total = float(np.sum(error**2))
    out: list[tuple[dict[str, np.ndarray], float]] = [({}, 1.0)]
    if total <= 0:
        return out
    zero = np.zeros_like(y)

    def left(change: np.ndarray) -> float:
        return float(np.sum(weight * (error - change) ** 2)) / total

    for common in (False, True):
        taps = correction_to_arrays(fit_correction(error, y, weight, spacing, common))
        change = correct(y, zero, correction_from_arrays(taps), spacing) - y  # what the taps add
        out.append((taps, left(change)))
        into, mix_out = fit_mix(error - change * weight, y, weight, CORRECTION_MAX_RANK)
        mix = mix_to_arrays(into, mix_out)  # each component quantised on its own
        into, mix_out = mix_from_arrays(mix)
        for rank in range(1, len(into) + 1):  # the components added one by one
            change = change + apply_mix(y, into[rank - 1 : rank], mix_out[rank - 1 : rank])
            out.append(({**taps, **{name: arr[:rank] for name, arr in mix.items()}}, left(change)))
    return out


def rank_candidates(candidates: list[tuple], plain_bytes: int) -> list[dict[str, np.ndarray]]:
    """The side arrays of the candidates (:func:`correction_candidates`) expected to pay, best
    first: by how much their error-energy drop exceeds CORRECTION_PRICE times the fraction of
    ``plain_bytes`` their side arrays add (their frames as a version-MIX_VERSION file packs
    them, plus SIDE_ENTRY_BYTES each); only those where that is positive."""
    scored = []
    for i, (arrays, left) in enumerate(candidates):
        if arrays:
            size = len(pack_arrays(arrays, MIX_VERSION)[0]) + SIDE_ENTRY_BYTES * len(arrays)
            score = (1.0 - left) - CORRECTION_PRICE * size / max(plain_bytes, 1)
            if score > 0:
                scored.append((-score, i, arrays))
    return [arrays for _, _, arrays in sorted(scored, key=lambda t: t[:2])]
