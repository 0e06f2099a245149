"""Encoder A (audio codec) and encoder B (EEG codec), frozen, and how their frames line up.

E_A: the audio codec's quantized latents z_q [D_a, F_A] at full depth: what its decoder
consumes, so a predicted Ê_A decodes to a waveform with no further step.

E_B: the EEG codec's quantized latents at ``depth`` codebooks, rebuilt from its tokens:
[R, D_b, F_B] (R = spatial tokens of DAC-MC, or channels of a per-channel DAC), flattened
to [R*D_b, F_B]. They are a function of the EEG tokens alone, so what a ``.eegc`` file
stores is exactly what encoder B hands on; DAC-MC's R = min(n_spatial, channels) is the
same for every montage of n_spatial channels or more, so one mapper serves many devices.

Frames: an EEG frame lasts hop_b / model_rate_b seconds (mc-small: 64 / 160 Hz = 0.4 s),
an audio frame hop_a / rate_a (DAC 16 kHz: 320 / 16000 = 0.02 s). A window of W seconds,
a multiple of both, holds F_B = W / eeg_frame and F_A = W / audio_frame frames, and
ratio = F_A / F_B must be an integer (checked): audio frames ``[r*f, r*(f+1))`` lie in
EEG frame f. Brain responses lag the sound (50-250 ms), so E_B is taken from EEG
``[t - eeg_frame, t + W + eeg_frame)``: F_B + 2 frames, one of context either side, which
M_B's width-3 convolution consumes (:mod:`eegcodec.align.model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EegcodecError


@dataclass(frozen=True)
class FrameGrid:
    """Frame bookkeeping of one (encoder A, encoder B, window) combination."""

    window_seconds: float
    eeg_frame_seconds: float
    audio_frame_seconds: float

    def __post_init__(self) -> None:
        for name, frame in (("EEG", self.eeg_frame_seconds), ("audio", self.audio_frame_seconds)):
            n = self.window_seconds / frame
            if abs(n - round(n)) > 1e-6 or round(n) < 1:
                raise EegcodecError(
                    f"window {self.window_seconds} s is not a whole number of {name} frames ({frame:g} s "
                    f"each)"
                )
        r = self.eeg_frame_seconds / self.audio_frame_seconds
        if abs(r - round(r)) > 1e-6:
            raise EegcodecError(
                f"an EEG frame ({self.eeg_frame_seconds:g} s) is not a whole number of audio frames "
                f"({self.audio_frame_seconds:g} s)"
            )

    @property
    def eeg_frames(self) -> int:
        """F_B: EEG frames in a window (without the context frames)."""
        return int(round(self.window_seconds / self.eeg_frame_seconds))

    @property
    def audio_frames(self) -> int:
        """F_A: audio frames in a window."""
        return int(round(self.window_seconds / self.audio_frame_seconds))

    @property
    def ratio(self) -> int:
        """Audio frames per EEG frame."""
        return self.audio_frames // self.eeg_frames

    @property
    def context_seconds(self) -> float:
        """EEG read before and after the window: one EEG frame."""
        return self.eeg_frame_seconds


class AudioEncoder:
    """Encoder A: a DAC audio codec. ``name_or_path``: ``dac_16khz``/``dac_24khz``/``dac_44khz``
    (DAC's cache, downloaded with ``dac.utils.download`` when absent) or a DAC-format file."""

    def __init__(self, name_or_path: str, device: str = "cpu"):
        from ..backends.dac.codec import DACCodec
        from ..backends.registry import load_codec

        codec = load_codec(name_or_path, device=device)
        if not isinstance(codec, DACCodec):
            raise EegcodecError(
                f"encoder A must be a DAC audio codec, {name_or_path} is a {codec.info.kind} model"
            )
        self.codec, self.model, self.device = codec, codec.model, codec.device
        self.rate = int(codec.info.sample_rate)
        self.hop = int(codec.info.hop_length)
        self.dim = int(self.model.latent_dim)
        self.sha256 = codec.info.weights_sha256

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.rate

    @torch.inference_mode()
    def embed(self, audio: np.ndarray) -> torch.Tensor:
        """audio float32 [n] at ``rate`` -> E_A float32 [D_a, ceil(n / hop)] (z_q, full depth)."""
        n = int(np.ceil(audio.size / self.hop)) * self.hop
        x = torch.zeros(1, 1, n, device=self.device)
        x[0, 0, : audio.size] = torch.from_numpy(np.asarray(audio, dtype=np.float32))
        z_q, *_ = self.model.quantizer(self.model.encoder(x), n_quantizers=None)
        return z_q[0].float().cpu()

    @torch.inference_mode()
    def decode(self, e_a: torch.Tensor) -> np.ndarray:
        """E_A [D_a, F] -> audio float32 [F * hop] through the codec's own decoder."""
        from ..backends.dac.network import fit_length

        y = self.model.decode(e_a[None].to(self.device).float())
        return fit_length(y, e_a.shape[-1] * self.hop)[0, 0].cpu().numpy()


class EEGEncoder:
    """Encoder B: an eegcodec EEG model (any :class:`~eegcodec.backends.base.Codec`) read at
    ``depth`` codebooks; E_B is what its decoder consumes (:meth:`Codec.codes_to_latents`)."""

    def __init__(self, name_or_path: str, depth: int | None = None, device: str = "cpu"):
        from ..backends.registry import load_codec

        codec = load_codec(name_or_path, device=device)
        self.rows = codec.max_code_rows  # None: one row per channel, fixed at first use
        self.latent_dim = int(codec.codes_to_latents(np.zeros((1, 1, 1), np.int64)).shape[1])
        self.codec = codec
        self.depth = int(depth or codec.info.default_codebooks)
        if not 1 <= self.depth <= codec.info.n_codebooks:
            raise EegcodecError(f"encoder_b_depth must be in 1..{codec.info.n_codebooks}, got {self.depth}")
        self.model_rate = float(codec.info.adapter.model_rate)
        self.hop = int(codec.info.hop_length)
        self.sha256 = codec.info.weights_sha256

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.model_rate

    @property
    def dim(self) -> int:
        """Flattened E_B size per frame (R * D_b); needs ``rows`` known."""
        if self.rows is None:
            raise EegcodecError("encoder B's row count is not known before the first window")
        return self.rows * self.latent_dim

    def codec_input(self, data: np.ndarray, sfreq: float, names: list[str]) -> np.ndarray:
        """EEG [C, n] volts -> codec-domain float32 [C, T] by the model's own adapter (baseline,
        scale, resampling), as at compress time; the window is one chunk."""
        import mne

        from ..train.data import adapted_chunks

        raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
        chunks, _ = adapted_chunks(raw, self.codec.info.adapter, self.hop)
        if len(chunks) != 1:
            raise EegcodecError(
                f"an EEG window of {data.shape[1] / sfreq:.1f} s spans {len(chunks)} adapter chunks; use "
                f"windows shorter than chunk_seconds"
            )
        return chunks[0]

    @torch.inference_mode()
    def embed(self, x: np.ndarray, names: list[str]) -> torch.Tensor:
        """Codec-domain EEG float32 [C, T] -> E_B float32 [R * D_b, T // hop]."""
        montage = self.codec.montage(names)
        codes = self.codec.encode_channels(x, self.depth, montage)  # [R', K, F]
        z_q = self.codec.codes_to_latents(codes).cpu()
        if self.rows is None:
            self.rows = z_q.shape[0]
        if z_q.shape[0] > self.rows:
            raise EegcodecError(
                f"encoder B gives {z_q.shape[0]} rows for {len(names)} channels; the mapper was built for "
                f"{self.rows} "
                "(a per-channel EEG model needs the same channel count everywhere; DAC-MC does not)"
            )
        if z_q.shape[0] < self.rows:  # DAC-MC with fewer channels than spatial tokens
            z_q = torch.cat([z_q, z_q.new_zeros(self.rows - z_q.shape[0], *z_q.shape[1:])])
        return z_q.reshape(-1, z_q.shape[-1])


def eeg_window(data: np.ndarray, sfreq: float, start_s: float, seconds: float) -> np.ndarray:
    """Samples ``[start_s, start_s + seconds)`` of EEG [C, n]; parts outside the recording are
    mirrored from inside it (a window at the very start or end still gets its context)."""
    i0 = int(round(start_s * sfreq))
    n = int(round(seconds * sfreq))
    idx = np.arange(i0, i0 + n)
    last = data.shape[1] - 1
    idx = np.abs(idx)  # reflect at 0
    idx = np.where(idx > last, 2 * last - idx, idx)
    return data[:, np.clip(idx, 0, last)]
