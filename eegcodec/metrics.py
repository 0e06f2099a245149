"""Reconstruction metrics shared by ``eegcodec eval``, training and the benchmarks.

All functions take ``original`` and ``reconstructed`` as float arrays
[channels, samples] in the same units (volts for recordings).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch
from threadpoolctl import threadpool_limits


def prd_per_channel(original: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Percent root-mean-square difference per channel, mean removed:
    ``100 * ||x - y|| / ||x - mean(x)||``. Channels with zero variance give NaN."""
    x = np.asarray(original, dtype=np.float64)
    err = np.linalg.norm(x - recon, axis=-1)
    ref = np.linalg.norm(x - x.mean(axis=-1, keepdims=True), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref > 0, 100.0 * err / ref, np.nan)


def prd(original: np.ndarray, recon: np.ndarray) -> float:
    """Median over channels of :func:`prd_per_channel` (%)."""
    return float(np.nanmedian(prd_per_channel(original, recon)))


def snr_db(original: np.ndarray, recon: np.ndarray) -> float:
    """Pooled SNR: ``10 log10(sum (x - mean_c x)^2 / sum (x - y)^2)`` over all channels (dB)."""
    x = np.asarray(original, dtype=np.float64)
    sig = ((x - x.mean(axis=-1, keepdims=True)) ** 2).sum()
    noise = ((x - recon) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10(sig / noise))


def pearson_r(original: np.ndarray, recon: np.ndarray) -> float:
    """Median over channels of the Pearson correlation."""
    x = original - original.mean(axis=-1, keepdims=True)
    y = recon - recon.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    return float(np.nanmedian(r))


def spectral_error_db(
    original: np.ndarray, recon: np.ndarray, sfreq: float, fmin: float = 1.0, fmax: float = 45.0
) -> float:
    """Mean |10 log10(PSD_y / PSD_x)| over ``fmin``..``fmax`` Hz (Welch, 2-s Hann windows),
    averaged over channels (dB)."""
    nper = int(min(original.shape[-1], round(2 * sfreq)))
    f, px = welch(original, fs=sfreq, nperseg=nper, axis=-1)
    _, py = welch(recon, fs=sfreq, nperseg=nper, axis=-1)
    band = (f >= fmin) & (f <= min(fmax, sfreq / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(10 * np.log10(py[..., band] / px[..., band]))
    return float(np.nanmean(ratio))


#: Classical EEG bands (Hz), lower edge inclusive, upper exclusive.
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}


def band_powers(x: np.ndarray, sfreq: float, window_seconds: float = 2.0) -> np.ndarray:
    """Mean Welch PSD (Hann windows of ``window_seconds``) in each of :data:`BANDS`:
    x [..., samples] (V) -> [..., 5] (V^2/Hz). Bands above Nyquist give NaN."""
    nper = int(min(x.shape[-1], round(window_seconds * sfreq)))
    f, p = welch(x, fs=sfreq, nperseg=nper, axis=-1)
    out = []
    for lo, hi in BANDS.values():
        sel = (f >= lo) & (f < hi)
        out.append(p[..., sel].mean(axis=-1) if sel.any() else np.full(p.shape[:-1], np.nan))
    return np.stack(out, axis=-1)


def band_power_error_db(original: np.ndarray, recon: np.ndarray, sfreq: float) -> dict[str, float]:
    """Per band, mean over channels of ``|10 log10(P_recon / P_original)|`` (dB); see :func:`band_powers`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(10 * np.log10(band_powers(recon, sfreq) / band_powers(original, sfreq)))
    return {
        name: float(np.nanmean(err[..., i])) if np.isfinite(err[..., i]).any() else float("nan")
        for i, name in enumerate(BANDS)
    }


def bits_per_sample(payload_bytes: int, n_channels: int, n_samples: int) -> float:
    """Payload bits over coded channels x samples."""
    return 8.0 * payload_bytes / max(1, n_channels * n_samples)


@threadpool_limits.wrap(limits=1, user_api="blas")
def reconstruction_metrics(original: np.ndarray, recon: np.ndarray, sfreq: float) -> dict[str, float]:
    """PRD % (median over channels, and the 90th percentile: the worst decile's edge), SNR dB,
    Pearson r, spectral error dB and per-band power error dB (``band_error_db_<band>``) in one
    dict (NaN samples ignored: filled with 0 in both). numpy's BLAS runs on one thread meanwhile,
    as in the model-free modes (:func:`eegcodec.pipeline.blas_pin`; the same values)."""
    mask = np.isnan(original) | np.isnan(recon)
    x = np.where(mask, 0.0, original)
    y = np.where(mask, 0.0, recon)
    per_channel = prd_per_channel(x, y)
    return {
        "prd_percent": prd(x, y),
        "prd_p90_percent": float(np.nanpercentile(per_channel, 90))
        if np.isfinite(per_channel).any()
        else float("nan"),
        "snr_db": snr_db(x, y),
        "pearson_r": pearson_r(x, y),
        "spectral_error_db": spectral_error_db(x, y, sfreq),
        **{f"band_error_db_{k}": v for k, v in band_power_error_db(x, y, sfreq).items()},
    }
