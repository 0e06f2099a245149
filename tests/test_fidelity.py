"""Lossless and guaranteed-error files: no model, every sample checked."""

import mne
import numpy as np
import pytest
import torch
from conftest import synthetic_raw

from eegcodec.api import compress, decompress, read_archive
from eegcodec.cli import main, parse_volts
from eegcodec.errors import EegcodecError
from eegcodec.format.header_checks import BOUND_ROUNDING
from eegcodec.format.lossless import decode_ints, encode_ints


@pytest.fixture
def edf(tmp_path):
    path = tmp_path / "rec.edf"
    raw = synthetic_raw(n_ch=6, seconds=40, stim=True)
    raw._data[:6] += 0.3 * raw._data[:1]  # electrodes share a source: what the cross-channel predictor uses
    mne.export.export_raw(path, raw, verbose="error")
    return path


def _grid(x: np.ndarray) -> np.ndarray:
    """Each channel's resolution (smallest step between its distinct values)."""
    return np.array([np.diff(np.unique(row)).min() for row in x])


def test_lossless_gives_the_files_samples_back(edf, tmp_path):
    orig = mne.io.read_raw(edf, preload=True, verbose="error")
    data = compress(edf, tmp_path / "rec.eegc", lossless=True)
    arc = read_archive(data)
    assert arc.header.mode == "lossless" and arc.header.model is None and not arc.header.coded
    back = decompress(data).get_data()
    x = orig.get_data()
    assert np.all(np.abs(back - x) <= 1e-6 * _grid(x)[:, None])  # the same integers on the file's grid
    # smaller than the 16-bit samples, and than float64
    assert 8 * arc.section_sizes["RAWC"] / x.size < 16


def test_max_error_holds_on_every_sample_and_other_channels_stay_exact(edf):
    orig = mne.io.read_raw(edf, preload=True, verbose="error")
    x = orig.get_data()
    eeg = [i for i, t in enumerate(orig.get_channel_types()) if t == "eeg"]
    sizes = {}
    for bound in (0.5e-6, 2e-6, 10e-6):
        data = compress(orig, max_error=bound)
        back = decompress(data).get_data()
        assert np.abs(back[eeg] - x[eeg]).max() <= bound * (1 + BOUND_ROUNDING)
        np.testing.assert_array_equal(back[-1], x[-1])  # stim: exact
        sizes[bound] = len(data)
    assert sizes[0.5e-6] > sizes[2e-6] > sizes[10e-6]
    assert read_archive(data).header.max_error == 10e-6


def test_lossless_coder_round_trips_and_is_deterministic():
    rng = np.random.default_rng(0)
    src = np.cumsum(rng.integers(-50, 50, (2, 3000)), axis=1)
    k = np.vstack(
        [
            src,
            src[:1] * 2 + rng.integers(-3, 3, 3000),
            np.zeros((1, 3000), np.int64),
            rng.integers(-(2**20), 2**20, (1, 3000)),
        ]
    )
    frame = encode_ints(k)
    np.testing.assert_array_equal(decode_ints(frame, *k.shape), k)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = decode_ints(frame, *k.shape)
        torch.set_num_threads(1)
        b = decode_ints(frame, *k.shape)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(a, b)
    assert encode_ints(k) == frame  # the encoder too
    assert len(frame) < k.size * 2  # far below 16 bits a sample on predictable channels


def test_fidelity_options_refuse_what_cannot_be_met(edf, tmp_path, capsys):
    for text, volts in (("2uV", 2e-6), ("0.5 µV", 0.5e-6), ("1mV", 1e-3), ("3e-6V", 3e-6)):
        assert parse_volts(text) == pytest.approx(volts)
    cases = [
        (["--max-error", "2"], "with its unit"),
        (["--max-error", "0uV"], "positive voltage"),
        (["--lossless", "--codebooks", "2"], "--codebooks applies to token files"),
    ]
    for extra, msg in cases:
        rc = main(["compress", str(edf), "-o", str(tmp_path / "x.eegc"), *extra])
        err = capsys.readouterr().err
        assert rc == 1 and msg in err and err.count("\n") == 1, err
    with pytest.raises(EegcodecError, match="choose one of"):
        compress(edf, lossless=True, max_error=1e-6)
    assert main(["compress", str(edf), "-o", str(tmp_path / "m.eegc"), "--max-error", "5uV", "-q"]) == 0
    assert main(["info", str(tmp_path / "m.eegc")]) == 0
    assert "within 5 uV" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "m.eegc")]) == 0  # no model needed to decode


def test_lossless_edf_comes_back_with_the_sources_integers_and_ranges(edf, tmp_path):
    """Decompressed to EDF, a lossless file holds the source file's digital samples and its
    physical and digital ranges, channel by channel (not a rescaled copy)."""
    import edfio

    assert main(["compress", str(edf), "-o", str(tmp_path / "l.eegc"), "--lossless", "-q"]) == 0
    assert main(["decompress", str(tmp_path / "l.eegc"), "-o", str(tmp_path / "back.edf"), "-q"]) == 0
    src, back = edfio.read_edf(edf), edfio.read_edf(tmp_path / "back.edf")
    assert len(src.signals) == len(back.signals)
    for a, b in zip(src.signals, back.signals):
        assert (a.label, a.physical_range, a.digital_range) == (b.label, b.physical_range, b.digital_range)
        np.testing.assert_array_equal(a.digital, b.digital)
    # a lossy file may leave the source's range: it is written with MNE's own scaling
    assert main(["compress", str(edf), "-o", str(tmp_path / "p.eegc"), "--prd", "30", "-q"]) == 0
    assert main(["decompress", str(tmp_path / "p.eegc"), "-o", str(tmp_path / "p.edf"), "-q"]) == 0


def test_float32_sources_come_back_bit_for_bit_in_fewer_bits_than_float32():
    """Samples that are float32 values times a unit (EEGLAB files as MNE reads them) are kept as
    float32 byte planes: bit for bit, below 32 bits a sample; other floats stay float64."""
    rng = np.random.default_rng(0)
    uv = np.cumsum(rng.normal(0, 2, (4, 4000)), axis=1).astype(np.float32)  # float32 microvolts
    x = uv.astype(np.float64) * 1e-6
    x[3] = rng.normal(0, 1e-5, 4000)  # a float64 channel on no grid and not float32
    raw = mne.io.RawArray(x, mne.create_info(4, 200.0, "eeg"), verbose="error")
    from eegcodec.pipeline import compress_raw

    data = compress_raw(raw, None, lossless=True)
    back = decompress(data).get_data()
    np.testing.assert_array_equal(back.view(np.int64), x.view(np.int64))
    rawc_bits = 8 * read_archive(data).section_sizes["RAWC"]
    assert rawc_bits / (3 * 4000) < 32 + 64 / 3 * 0.9  # three float32 channels beat float64 storage
