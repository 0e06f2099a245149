"""A SEMI-SYNTHETIC paired EEG + audio set, made on this machine.

No openly licensed paired EEG + audio data is reachable here, so this module makes
its own: real background EEG (any MNE-readable recordings, one session per subject)
plus a simulated stimulus-locked response to locally synthesised audio. Everything it
writes says ``semi-synthetic`` (file names, the manifest, ``dataset.json``).

Per stimulus (a short "melody": notes with random pitch, length, timbre and loudness,
rests and noise bursts, 16 kHz mono) the response is::

    features f_b(t)  = (band-b spectral envelope of the audio)^0.3, b = 1..n_bands
                       (log-spaced bands 100 Hz - 6 kHz), at the EEG rate
    response r_c(t)  = g_s * sum_b p_{s,b}[c] * (h_b * f_b)(t)

with ``h_b`` a temporal response function (P1 +50 ms, N1 -100 ms, P2 +180 ms Gaussians,
latencies shifted a little per band), ``p_{s,b}`` a smooth scalp pattern per band
(fronto-central auditory topography plus a band-specific gradient, jittered per
subject) and ``g_s`` one gain per subject giving the requested SNR: response power /
background power, both over all EEG channels after a 1 Hz high-pass (drift excluded).
Single-trial envelope tracking in real EEG is weaker (prediction r of 0.05-0.2, i.e.
about -14 to -26 dB); the default -10 dB is easier than real data, and ``snr_db``
lets a benchmark sweep it.

Layout written under ``out``::

    stimuli/stim-NNN.wav        the stimuli (PCM 16 bit)
    codec_audio/clip-NNNN.wav   other clips of the same kind, to train audio encoder A
    eeg/<subject>_semisynthetic.fif          background + response, stimulus annotations
    eeg_control/<subject>_background.fif     the same background, no response (control)
    manifest.csv                eeg,audio,onset,duration,subject,stimulus rows
    manifest_control.csv        the same rows pointing at eeg_control/
    dataset.json                how it was made (every setting, seeds, sources)
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EegcodecError

AUDIO_RATE = 16000
LABEL = "semi-synthetic"


@dataclass
class SyntheticConfig:
    """Settings of :func:`make_synthetic` (all stored in ``dataset.json``)."""

    background: list[str] = field(default_factory=lambda: ["../shared/eeg"])
    #: finds the subject in a background file's path
    subject_regex: str = r"sub-[A-Za-z0-9]+|S\d{3}(?=R\d)|Subject\d+|eeglab"
    n_stimuli: int = 48
    stimulus_seconds: float = 4.8
    gap_seconds: float = 0.2
    n_codec_clips: int = 300
    codec_clip_seconds: float = 4.0
    snr_db: float = -10.0
    n_bands: int = 8
    max_subjects: int = 0  #: 0: every subject found
    seed: int = 0


# ----------------------------------------------------------------------------- audio


def synth_melody(seconds: float, rng: np.random.Generator, rate: int = AUDIO_RATE) -> np.ndarray:
    """A random "melody" float32 [rate*seconds] at RMS 0.1: harmonic notes on a pentatonic
    scale (110-880 Hz) with ADSR envelopes, rests, and filtered noise bursts."""
    n = int(round(seconds * rate))
    out = np.zeros(n)
    scale = 110.0 * 2 ** (np.array([0, 2, 4, 7, 9]) / 12)
    pitches = np.concatenate([scale * 2**o for o in range(3)])
    tilt = rng.uniform(0.6, 2.0)  # timbre: harmonic amplitudes 1/k^tilt
    n_harm = int(rng.integers(3, 9))
    tempo = rng.uniform(0.7, 1.4)
    t = 0.0
    while t < seconds:
        dur = float(rng.choice([0.12, 0.2, 0.3, 0.45, 0.6])) * tempo
        i0, i1 = int(t * rate), min(n, int((t + dur) * rate))
        t += dur
        if i1 <= i0 or rng.random() < 0.15:  # rest
            continue
        tt = np.arange(i1 - i0) / rate
        if rng.random() < 0.12:  # percussive noise burst
            note = rng.standard_normal(tt.size) * np.exp(-tt / 0.04)
            note = np.convolve(note, np.ones(int(rng.integers(1, 8))) / 4, mode="same")
        else:
            f0 = rng.choice(pitches)
            note = sum(
                np.sin(2 * np.pi * f0 * k * tt + rng.uniform(0, 6.3)) / k**tilt
                for k in range(1, n_harm + 1)
                if f0 * k < rate / 2.2
            )
            attack, release = 0.01, min(0.08, tt[-1] / 2 if tt.size > 1 else 0.01)
            env = (
                np.minimum(1, tt / attack)
                * np.exp(-tt * rng.uniform(0.5, 4))
                * np.clip((tt[-1] - tt) / max(release, 1e-3), 0, 1)
            )
            note = note * env
        out[i0:i1] += rng.uniform(0.3, 1.0) * note
    rms = np.sqrt(np.mean(out**2))
    out = out * (0.1 / rms) if rms > 0 else out
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def band_envelopes(audio: np.ndarray, n_bands: int, out_rate: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """Compressed spectral envelopes float64 [n_bands, round(len/rate*out_rate)]: STFT power
    summed in log-spaced bands (100 Hz - 6 kHz), ^0.3, resampled to ``out_rate``."""
    from scipy.signal import resample_poly, stft

    hop = rate // 100
    f, _, z = stft(audio, fs=rate, nperseg=4 * hop, noverlap=3 * hop, boundary=None, padded=True)
    power = np.abs(z) ** 2
    edges = np.geomspace(100, 6000, n_bands + 1)
    bands = np.stack([power[(f >= lo) & (f < hi)].sum(0) for lo, hi in zip(edges[:-1], edges[1:])])
    env = bands**0.3  # [n_bands, frames at 100 Hz]
    n_out = int(round(audio.size / rate * out_rate))
    from fractions import Fraction

    fr = Fraction(out_rate / 100).limit_denominator(1000)
    env = resample_poly(env, fr.numerator, fr.denominator, axis=1)
    if env.shape[1] < n_out:
        env = np.pad(env, ((0, 0), (0, n_out - env.shape[1])), mode="edge")
    return np.maximum(env[:, :n_out], 0)


# ----------------------------------------------------------------------------- response


def response_kernel(rate: float, shift_s: float = 0.0) -> np.ndarray:
    """Temporal response function float64 [round(0.4*rate)] (0-400 ms): P1 (+50 ms),
    N1 (-100 ms), P2 (+180 ms) Gaussians, all delayed by ``shift_s``, peak |h| = 1."""
    t = np.arange(int(round(0.4 * rate))) / rate - shift_s
    h = (
        0.6 * np.exp(-(((t - 0.05) / 0.015) ** 2))
        - 1.0 * np.exp(-(((t - 0.10) / 0.025) ** 2))
        + 0.7 * np.exp(-(((t - 0.18) / 0.04) ** 2))
    )
    return h / np.abs(h).max()


def scalp_patterns(positions: np.ndarray, n_bands: int, rng: np.random.Generator) -> np.ndarray:
    """float64 [n_bands, C]: a fronto-central topography (around FCz) times a band-specific
    gradient, mean-removed over channels and scaled to unit RMS."""
    fcz = np.array([0.0, 0.3, 0.95])
    base = np.exp(-np.sum((positions - fcz) ** 2, axis=1) / (2 * 0.6**2))
    pats = []
    for _ in range(n_bands):
        grad = positions @ rng.normal(0, 0.6, 3)
        p = base * (1 + grad) + 0.3 * np.tanh(positions @ rng.normal(0, 1, 3))
        p = p - p.mean()
        pats.append(p / max(np.sqrt(np.mean(p**2)), 1e-12))
    return np.array(pats)


# ----------------------------------------------------------------------------- background


def _background_sessions(cfg: SyntheticConfig) -> dict[str, list[Path]]:
    """subject -> background recordings (sorted), from folders/globs in ``cfg.background``."""
    from ..io import find_recordings

    files = find_recordings([Path(p).expanduser() for p in cfg.background])
    by_subject: dict[str, list[Path]] = {}
    for f in files:
        m = re.search(cfg.subject_regex, str(f))
        if m:
            by_subject.setdefault(m.group(0), []).append(f)
    if not by_subject:
        raise EegcodecError(
            f"no background EEG with a subject matching {cfg.subject_regex!r} under {cfg.background}"
        )
    subjects = sorted(by_subject)
    if cfg.max_subjects:
        subjects = subjects[: cfg.max_subjects]
    return {s: sorted(by_subject[s]) for s in subjects}


def _read_background(files: list[Path], seconds: float):
    """One subject's background: (EEG data float64 [C, n] volts, sfreq, channel names).
    Recordings are concatenated (same channels and rate as the first); when shorter than
    ``seconds`` the background is repeated (``dataset.json`` records that)."""
    import mne

    from ..io import read_raw

    first = read_raw(files[0])
    picks = mne.pick_types(first.info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise EegcodecError(f"{files[0]} has no EEG channels to use as background")
    names = [first.ch_names[i] for i in picks]
    sfreq = first.info["sfreq"]
    need = int(np.ceil(seconds * sfreq))
    parts, have = [], 0
    for f in files:
        raw = read_raw(f)
        if raw.info["sfreq"] != sfreq or not set(names) <= set(raw.ch_names):
            continue
        x = raw.get_data(picks=names, stop=min(raw.n_times, need - have))
        parts.append(x - x.mean(axis=1, keepdims=True))  # no step where files meet
        have += x.shape[1]
        if have >= need:
            break
    x = np.concatenate(parts, axis=1)
    repeats = int(np.ceil(need / x.shape[1]))
    return np.tile(x, (1, repeats))[:, :need], sfreq, names, repeats


def _highpass_power(x: np.ndarray, sfreq: float) -> float:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, 1.0, btype="highpass", fs=sfreq, output="sos")
    return float(np.mean(sosfiltfilt(sos, x, axis=1) ** 2))


def _write_fif(
    x: np.ndarray,
    sfreq: float,
    names: list[str],
    onsets,
    labels,
    duration: float,
    path: Path,
    description: str,
) -> None:
    import mne

    from ..io import write_raw

    info = mne.create_info(names, sfreq, "eeg")
    info["description"] = description
    raw = mne.io.RawArray(x, info, verbose="error")
    raw.set_annotations(mne.Annotations(onsets, [duration] * len(onsets), labels))
    write_raw(raw, path)


# ----------------------------------------------------------------------------- the set


def make_synthetic(out: str | Path, cfg: SyntheticConfig, progress=None) -> dict:
    """Write the semi-synthetic set described in the module docstring; returns ``dataset.json``'s content.

    Every subject hears every stimulus once, in its own random order; the pairs loader
    (:mod:`eegcodec.align.pairs`) decides which (subject, stimulus) pairs train and test.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise EegcodecError(f"output folder {out} is not empty; choose a new one")
    for sub in ("stimuli", "codec_audio", "eeg", "eeg_control"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)
    stimuli = _write_audio(out, cfg)
    say(f"wrote {cfg.n_stimuli} stimuli and {cfg.n_codec_clips} codec-training clips")
    band_shift = np.random.default_rng([cfg.seed, 4]).uniform(-0.015, 0.015, cfg.n_bands)
    rows, subjects_meta = [], {}
    for subject, files in _background_sessions(cfg).items():
        subject_rows, subjects_meta[subject] = _simulate_subject(
            out, cfg, subject, files, stimuli, band_shift
        )
        rows += subject_rows
        meta = subjects_meta[subject]
        say(f"{subject}: {meta['channels']} channels at {meta['sfreq']:g} Hz, {len(subject_rows)} trials")
    _write_manifests(out, rows)
    meta = {
        "kind": LABEL,
        "config": asdict(cfg),
        "audio_rate": AUDIO_RATE,
        "subjects": subjects_meta,
        "response": "band envelopes^0.3 * TRF (P1/N1/P2) through scalp patterns; see "
        "eegcodec/align/synthetic.py",
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=1))
    return meta


def _write_audio(out: Path, cfg: SyntheticConfig) -> list[np.ndarray]:
    """The stimuli (returned, and written to ``stimuli/``) and the codec-training clips."""
    import soundfile as sf

    rng = np.random.default_rng(cfg.seed)
    stimuli = [synth_melody(cfg.stimulus_seconds, rng) for _ in range(cfg.n_stimuli)]
    for i, a in enumerate(stimuli):
        sf.write(out / "stimuli" / f"stim-{i:03d}.wav", a, AUDIO_RATE, subtype="PCM_16")
    clip_rng = np.random.default_rng([cfg.seed, 1])
    for i in range(cfg.n_codec_clips):
        clip = synth_melody(cfg.codec_clip_seconds, clip_rng)
        sf.write(out / "codec_audio" / f"clip-{i:04d}.wav", clip, AUDIO_RATE, subtype="PCM_16")
    return stimuli


def _simulated_response(bg, sfreq, names, stimuli, cfg: SyntheticConfig, srng, band_shift):
    """(response [C, n] in the background's units, stimulus order, onsets in s) of one subject."""
    from ..montage import Montage

    positions = Montage.from_names(names, {}).positions
    # the same population gradients for everyone (same seed), evaluated at each montage
    patterns = scalp_patterns(positions, cfg.n_bands, np.random.default_rng([cfg.seed, 2]))
    patterns = patterns * (1 + 0.2 * srng.standard_normal(patterns.shape))  # subject jitter
    kernels = [response_kernel(sfreq, band_shift[b] + srng.uniform(-0.01, 0.01)) for b in range(cfg.n_bands)]
    order = srng.permutation(cfg.n_stimuli)
    period = cfg.stimulus_seconds + cfg.gap_seconds
    response, onsets = np.zeros_like(bg), []
    for j, s in enumerate(order):
        onset = cfg.gap_seconds + j * period
        feats = band_envelopes(stimuli[s], cfg.n_bands, sfreq)
        drive = np.stack([np.convolve(feats[b], kernels[b]) for b in range(cfg.n_bands)])
        i0 = int(round(onset * sfreq))
        seg = patterns.T @ drive  # [C, n]
        i1 = min(response.shape[1], i0 + seg.shape[1])
        response[:, i0:i1] += seg[:, : i1 - i0]
        onsets.append(onset)
    return response, order, onsets


def _simulate_subject(out: Path, cfg: SyntheticConfig, subject: str, files, stimuli, band_shift):
    """Write one subject's response and control recordings; (manifest rows, subject metadata)."""
    period = cfg.stimulus_seconds + cfg.gap_seconds
    bg, sfreq, names, repeats = _read_background(files, cfg.gap_seconds + cfg.n_stimuli * period + 1.0)
    srng = np.random.default_rng([cfg.seed, 3, zlib.crc32(subject.encode())])
    response, order, onsets = _simulated_response(bg, sfreq, names, stimuli, cfg, srng, band_shift)
    gain = np.sqrt(
        _highpass_power(bg, sfreq) * 10 ** (cfg.snr_db / 10) / max(_highpass_power(response, sfreq), 1e-30)
    )
    labels = [f"stim-{s:03d}" for s in order]
    eeg_path = out / "eeg" / f"{subject}_semisynthetic.fif"
    ctl_path = out / "eeg_control" / f"{subject}_background.fif"
    what = f"eegcodec {LABEL}: real background EEG + simulated response, SNR {cfg.snr_db} dB"
    _write_fif(bg + gain * response, sfreq, names, onsets, labels, cfg.stimulus_seconds, eeg_path, what)
    what = f"eegcodec {LABEL} control: the same background EEG, no response"
    _write_fif(bg, sfreq, names, onsets, labels, cfg.stimulus_seconds, ctl_path, what)
    rows = [
        {
            "eeg": f"eeg/{eeg_path.name}",
            "control": f"eeg_control/{ctl_path.name}",
            "audio": f"stimuli/stim-{s:03d}.wav",
            "onset": round(onset, 6),
            "duration": cfg.stimulus_seconds,
            "subject": subject,
            "stimulus": f"stim-{s:03d}",
        }
        for onset, s in zip(onsets, order)
    ]
    meta = {
        "files": [str(f) for f in files],
        "channels": len(names),
        "sfreq": sfreq,
        "background_repeats": repeats,
        "response_gain": float(gain),
    }
    return rows, meta


def _write_manifests(out: Path, rows: list[dict]) -> None:
    """``manifest.csv`` (response EEG) and ``manifest_control.csv`` (the same trials, background only)."""
    fields = ["eeg", "audio", "onset", "duration", "subject", "stimulus", "kind"]
    for name, col in (("manifest.csv", "eeg"), ("manifest_control.csv", "control")):
        with (out / name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in rows:
                kind = LABEL if col == "eeg" else f"{LABEL} control"
                w.writerow({**{k: r[k] for k in fields[1:6]}, "eeg": r[col], "kind": kind})
