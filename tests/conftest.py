"""Shared fixtures: synthetic recordings, a tiny DAC checkpoint, a near-lossless test codec."""

from __future__ import annotations

import warnings
from pathlib import Path

import mne
import numpy as np
import pytest
import torch

from eegcodec.adapt import AdapterConfig
from eegcodec.backends.base import CodecInfo, PerChannelCodec

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(1)

SHARED_EEG = Path(__file__).resolve().parents[1].parent / "shared" / "eeg"
needs_shared = pytest.mark.skipif(
    not SHARED_EEG.is_dir(), reason=f"real EEG folder {SHARED_EEG} is absent (synthetic tests still run)"
)


def synthetic_raw(
    n_ch: int = 8, sfreq: float = 160.0, seconds: float = 20.0, seed: int = 0, stim: bool = True
) -> mne.io.RawArray:
    """EEG-like volts: 1/f background (~20 uV), 10 Hz alpha, slow drift; a stim channel; annotations."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    f = np.fft.rfftfreq(n, 1 / sfreq)
    spec = rng.normal(size=(n_ch, f.size)) + 1j * rng.normal(size=(n_ch, f.size))
    spec /= np.maximum(f, 0.5)
    x = np.fft.irfft(spec, n=n)
    x = x / x.std(axis=1, keepdims=True) * 20e-6
    t = np.arange(n) / sfreq
    x += 10e-6 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (n_ch, 1)))
    x += 50e-6 * np.sin(2 * np.pi * 0.05 * t + rng.uniform(0, 6, (n_ch, 1))) + rng.normal(
        0, 100e-6, (n_ch, 1)
    )
    names = [f"EEG{i:02d}" for i in range(n_ch)]
    types = ["eeg"] * n_ch
    data = x
    if stim:
        s = np.zeros((1, n))
        s[0, :: int(sfreq * 2)] = 3
        data = np.vstack([x, s])
        names.append("STI 014")
        types.append("stim")
    info = mne.create_info(names, sfreq, types)
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_meas_date(1_600_000_000.25)
    onsets = [0.1 * seconds, 0.45 * seconds, 0.7 * seconds]
    raw.set_annotations(
        mne.Annotations(
            onsets, [0.5, 0.0, 0.1 * seconds], ["T1", "T2", "BAD_x"], orig_time=raw.info["meas_date"]
        )
    )
    return raw


class PCMCodec(PerChannelCodec):
    """A near-lossless stand-in for a neural codec: uniform 12-bit quantisation of [-1, 1].

    hop 4: codes [B, 4, F] hold the 4 samples of each frame, so the adapter, chunking,
    container and pipeline can be checked to high precision without a trained model.
    """

    def __init__(self, model_rate: float = 160.0, adapter: AdapterConfig | None = None):
        self.device = torch.device("cpu")
        self.info = CodecInfo(
            "pcm-test",
            "test",
            model_rate,
            4,
            4,
            4096,
            "0" * 64,
            adapter or AdapterConfig(model_rate=model_rate),
        )

    def encode(self, x, n_codebooks):
        q = torch.clamp(torch.round((x[:, 0] + 1) / 2 * 4095), 0, 4095).long()
        b, t = q.shape
        return q.view(b, t // 4, 4).transpose(1, 2)[:, :n_codebooks]

    def decode(self, codes):
        b, k, f = codes.shape
        full = torch.full((b, 4, f), 2047.5)
        full[:, :k] = codes.float()
        return (full.transpose(1, 2).reshape(b, 1, f * 4) / 4095 * 2 - 1).float()

    def codes_to_latents(self, codes):
        return torch.as_tensor(codes).float() / 4095

    def to(self, device):
        return self


class LeakyPCMCodec(PCMCodec):
    """The PCM codec whose decoder leaks a third of the channels' mean into every channel (what
    a multichannel model's shared latents can do): a spatial mix of rank 1 undoes it."""

    def decode_channels(self, codes, montage=None):
        out = super().decode_channels(codes, montage)
        return out + np.float32(1 / 3) * out.mean(axis=0, keepdims=True)


def exact_fixture_recording(tmp: Path, seconds: float, n_ch: int = 6) -> mne.io.BaseRaw:
    """The recording committed lossless and max-error fixtures were written from: ``n_ch``
    correlated synthetic EEG channels and a stim channel at 160 Hz, through EDF (integer samples).
    Six: each channel plus 0.3 of the first; more: mixtures of six of them plus a little of its own,
    so that each channel is predicted from many others."""
    raw = synthetic_raw(n_ch=n_ch, seconds=seconds, stim=True, seed=7)
    if n_ch == 6:
        raw._data[:6] += 0.3 * raw._data[:1]
    else:
        mix = np.random.default_rng(7).normal(size=(n_ch, 6)) / 2
        raw._data[:n_ch] = mix @ raw._data[:6] + 0.05 * raw._data[:n_ch]
    path = tmp / "fixture.edf"
    mne.export.export_raw(path, raw, verbose="error")
    return mne.io.read_raw(path, preload=True, verbose="error")


def check_exact_fixture(path: Path, decoded: np.ndarray, raw: mne.io.BaseRaw) -> int:
    """Decodes the committed lossless or max-error file ``path`` and checks it against what it
    decoded to when written (``decoded`` [channels, n], bit for bit) and against the recording
    ``raw`` it was written from (its EEG channels within 2 uV for a max-error file, exact
    otherwise); returns the file's format version."""
    from eegcodec.format.container import Archive
    from eegcodec.pipeline import decompress_archive

    arc = Archive.from_bytes(path.read_bytes())
    got = decompress_archive(arc, None).get_data()
    np.testing.assert_array_equal(got, decoded)
    bound = 0.0 if path.stem.endswith("lossless") else 2e-6
    eeg = mne.pick_types(raw.info, eeg=True)
    assert np.max(np.abs(got[eeg] - raw.get_data()[eeg])) <= max(bound, 1e-12)
    return arc.header.version


@pytest.fixture
def pcm_codec():
    return PCMCodec()


@pytest.fixture(scope="session")
def tiny_dac_path(tmp_path_factory) -> Path:
    """A small random DAC saved in DAC's own format with eegcodec metadata."""
    from tools.fuzz import save_tiny_dac

    adapter = AdapterConfig(model_rate=160.0, chunk_seconds=8.0)
    return save_tiny_dac(tmp_path_factory.mktemp("models") / "tiny.pth", "tiny", adapter)


@pytest.fixture
def raw():
    return synthetic_raw()
