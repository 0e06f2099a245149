"""Every supported format: read, compress, decompress, write, read back."""

import mne
import numpy as np
import pytest
from conftest import SHARED_EEG, needs_shared, synthetic_raw

from eegcodec.api import compress, decompress
from eegcodec.errors import EegcodecError, UnsupportedFormatError
from eegcodec.io import read_raw, write_raw


def _export(raw, path):
    if path.suffix == ".fif":
        raw.save(path, verbose="error")
    else:
        mne.export.export_raw(path, raw, verbose="error")


@pytest.mark.parametrize("ext", [".edf", ".bdf", ".fif", ".vhdr", ".set"])
def test_format_roundtrip_synthetic(tmp_path, pcm_codec, ext):
    raw = synthetic_raw(n_ch=4, seconds=8, stim=ext in (".fif",))
    src = tmp_path / f"rec{ext}"
    _export(raw, src)
    orig = read_raw(src, preload=True)
    out_path = tmp_path / f"out{ext}"
    compress(src, tmp_path / "rec.eegc", pcm_codec)
    decompress(tmp_path / "rec.eegc", out_path, codec=pcm_codec)
    back = read_raw(out_path, preload=True)
    assert back.ch_names == orig.ch_names
    assert back.info["sfreq"] == orig.info["sfreq"]
    assert back.n_times == orig.n_times
    assert list(back.annotations.description) == list(orig.annotations.description)
    np.testing.assert_allclose(back.annotations.onset, orig.annotations.onset, atol=1 / orig.info["sfreq"])
    eeg = mne.pick_types(orig.info, eeg=True)
    err = np.abs(back.get_data(picks=eeg) - orig.get_data(picks=eeg)).max()
    assert err < 5e-6  # volts; the test codec is near-lossless, the format's resolution dominates


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    raw = synthetic_raw(n_ch=2, seconds=2, stim=False)
    target = tmp_path / "out.edf"

    def boom(*a, **k):
        (tmp_path / "half-written").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(mne.export, "export_raw", boom)
    with pytest.raises(EegcodecError, match="disk full"):
        write_raw(raw, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half-written"]


def test_unsupported_and_missing_inputs(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="not an EEG format"):
        read_raw(tmp_path / "notes.txt")
    with pytest.raises(EegcodecError, match="not found"):
        read_raw(tmp_path / "missing.edf")
    (tmp_path / "broken.edf").write_bytes(b"0       garbage" * 10)
    with pytest.raises(EegcodecError, match="cannot read"):
        read_raw(tmp_path / "broken.edf")
    raw = synthetic_raw(n_ch=2, seconds=2, stim=False)
    with pytest.raises(UnsupportedFormatError, match="choose an output extension"):
        write_raw(raw, tmp_path / "out.wav")


REAL_FILES = [
    "eegbci_S001/S001R01.edf",
    "eegmat/Subject00_2.edf",
    "eeglab_sample/eeglab_data.set",
    "yasa_samples/data_resting_EO_200Hz_raw.fif",
]


@needs_shared
@pytest.mark.parametrize("rel", REAL_FILES)
def test_real_files_roundtrip(tmp_path, pcm_codec, rel):
    src = SHARED_EEG / rel
    orig = read_raw(src, preload=True)
    out = decompress(compress(orig, None, pcm_codec), tmp_path / "out.fif", codec=pcm_codec)
    assert (
        out.ch_names == orig.ch_names
        and out.n_times == orig.n_times
        and out.info["sfreq"] == orig.info["sfreq"]
    )
    assert len(out.annotations) == len(orig.annotations)
    np.testing.assert_allclose(out.annotations.onset, orig.annotations.onset)
    back = read_raw(tmp_path / "out.fif", preload=True)
    assert back.ch_names == orig.ch_names


@needs_shared
@pytest.mark.parametrize("ext", [".edf", ".bdf", ".fif", ".vhdr", ".set"])
def test_real_recording_through_every_format(tmp_path, pcm_codec, ext):
    """EEGBCI R03 (with its motor-task annotations) written in each format, compressed and restored."""
    orig = read_raw(SHARED_EEG / "eegbci_S001" / "S001R03.edf", preload=True).crop(0, 30)
    src = tmp_path / f"real{ext}"
    _export(orig, src)
    reread = read_raw(src, preload=True)
    out = decompress(compress(src, None, pcm_codec), tmp_path / f"back{ext}", codec=pcm_codec)
    back = read_raw(tmp_path / f"back{ext}", preload=True)
    for r in (out, back):
        assert (
            r.ch_names == reread.ch_names
            and r.n_times == reread.n_times
            and r.info["sfreq"] == reread.info["sfreq"]
        )
        assert list(r.annotations.description) == list(reread.annotations.description)
        np.testing.assert_allclose(
            r.annotations.onset, reread.annotations.onset, atol=1 / reread.info["sfreq"]
        )
