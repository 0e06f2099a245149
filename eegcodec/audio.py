"""Audio files in and out (stimuli for :mod:`eegcodec.align`, training sets of audio codecs)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import EegcodecError


def read_audio(path: str | Path, rate: float) -> np.ndarray:
    """A WAV/FLAC file as mono float32 [n] in [-1, 1] at ``rate`` Hz (channels averaged,
    resampled with a polyphase filter when the file's rate differs)."""
    import soundfile as sf

    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise EegcodecError(f"cannot read audio {path}: {exc}") from exc
    mono = data.mean(axis=1)
    if file_rate != rate:
        from fractions import Fraction

        from scipy.signal import resample_poly

        fr = Fraction(rate / file_rate).limit_denominator(10000)
        mono = resample_poly(mono, fr.numerator, fr.denominator).astype(np.float32)
    return mono


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> Path:
    """Write mono float audio [n] as 16-bit PCM WAV, atomically (clipped to [-1, 1])."""
    import soundfile as sf

    from .io import atomic_write_bytes

    buf = io.BytesIO()
    sf.write(
        buf, np.clip(np.asarray(audio, dtype=np.float32), -1, 1), int(rate), format="WAV", subtype="PCM_16"
    )
    return atomic_write_bytes(path, buf.getvalue())
