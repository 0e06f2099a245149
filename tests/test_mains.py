"""Mains interference is found, removed before the codec, stored in a few integers and added back."""

import numpy as np
import pytest
from conftest import synthetic_raw

from eegcodec import mains
from eegcodec.api import decompress
from eegcodec.errors import CorruptFileError
from eegcodec.format.container import VERSION, Archive, pack_arrays, unpack_arrays
from eegcodec.pipeline import compress_raw
from eegcodec.reader import check_archive


def _with_mains(raw, freq: float, amplitude: float, harmonic2: float = 0.0, seed: int = 0):
    """``raw`` with a sinusoid of ``freq`` Hz (random phase per channel) on its EEG channels."""
    raw = raw.copy()
    rng = np.random.default_rng(seed)
    picks = [i for i, t in enumerate(raw.get_channel_types()) if t == "eeg"]
    t = raw.times
    phase = rng.uniform(0, 2 * np.pi, (len(picks), 1))
    line = amplitude * np.sin(2 * np.pi * freq * t + phase) + harmonic2 * np.cos(4 * np.pi * freq * t + phase)
    raw._data[picks] += line
    return raw, line


def _prd(x, y):
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    return float(np.median(100 * np.linalg.norm(x - y, axis=1) / np.linalg.norm(x, axis=1)))


def test_fit_finds_the_frequency_and_amplitude():
    raw = synthetic_raw(n_ch=6, seconds=20, stim=False)
    noisy, line = _with_mains(raw, 59.9637, 60e-6)
    x = noisy.get_data()
    x = x - x.mean(axis=1, keepdims=True)
    step = np.full(6, 1e-6)
    found = mains.fit(x, step, 160.0)
    assert abs(found.freq_code * mains.FREQ_UNIT - 59.9637) < 2e-3
    rest = x - found.values(160.0, x.shape[1])
    assert np.sum((rest - (x - line)) ** 2) < 0.01 * np.sum(line**2)  # the line is gone, the EEG kept


def test_fit_keeps_nothing_without_mains_or_below_its_rate():
    x = synthetic_raw(n_ch=6, seconds=20, stim=False).get_data()
    assert mains.fit(x, np.full(6, 1e-6), 160.0).freq_code == 0
    slow = synthetic_raw(n_ch=3, sfreq=100.0, seconds=20, stim=False).get_data()  # 50 Hz is its Nyquist
    assert mains.fit(slow, np.full(3, 1e-6), 100.0).freq_code == 0


def test_harmonics_below_the_rate_are_fitted():
    assert mains.usable_harmonics(50.0, 250.0) == 2 and mains.usable_harmonics(60.0, 160.0) == 1
    raw = synthetic_raw(n_ch=4, sfreq=250.0, seconds=20, stim=False)
    noisy, line = _with_mains(raw, 50.02, 40e-6, harmonic2=20e-6)
    x = noisy.get_data()
    found = mains.fit(x, np.full(4, 1e-6), 250.0)
    assert found.levels[:, 2:4].any() and not found.levels[:, 4:].any()
    rest = x - x.mean(axis=1, keepdims=True) - found.values(250.0, x.shape[1])
    assert np.sum((rest - (x - line - (x - line).mean(axis=1, keepdims=True))) ** 2) < 0.01 * np.sum(line**2)


def test_file_with_mains_round_trips(pcm_codec):
    raw = synthetic_raw(n_ch=4, seconds=20, stim=False)  # no channel stored exactly
    noisy, _ = _with_mains(raw, 60.03, 80e-6)
    data = compress_raw(noisy, pcm_codec, n_codebooks=4)
    arc = Archive.from_bytes(data)
    assert arc.header.version == VERSION  # every new file: the frame index
    side = check_archive(arc)
    assert side.mains is not None and all(m.freq_code for m in side.mains)
    out = decompress(data, codec=pcm_codec).get_data(picks="eeg")
    assert _prd(noisy.get_data(picks="eeg"), out) < 1.0  # the near-lossless test codec stays so
    clean = Archive.from_bytes(compress_raw(raw, pcm_codec, n_codebooks=4))
    assert clean.header.version == VERSION and check_archive(clean).mains is None
    # with a channel stored exactly (the stim channel): the newest version, with or without mains
    with_stim = synthetic_raw(n_ch=4, seconds=20)
    for rec, has_mains in ((_with_mains(with_stim, 60.03, 80e-6)[0], True), (with_stim, False)):
        arc = Archive.from_bytes(compress_raw(rec, pcm_codec, n_codebooks=4))
        assert arc.header.version == VERSION and (check_archive(arc).mains is not None) == has_mains


def test_prd_files_store_the_mains_apart_for_fewer_bits(monkeypatch):
    """A ``--prd`` file (no model) meets its target on the original with the mains stored apart,
    in fewer bytes than coding the mains in its layer."""
    noisy, _ = _with_mains(synthetic_raw(n_ch=6, seconds=40, stim=False), 59.97, 60e-6)
    x = noisy.get_data(picks="eeg")
    data = compress_raw(noisy, None, prd=10.0)
    arc = Archive.from_bytes(data)
    assert arc.header.version == VERSION and arc.header.codebooks == 0  # the transform layer's frame index
    assert "mains_freq" in {a.name for a in arc.header.side}
    assert _prd(x, decompress(data).get_data(picks="eeg")) <= 10.0
    monkeypatch.setattr(mains, "MIN_SHARE", 2.0)  # never kept
    plain = compress_raw(noisy, None, prd=10.0)
    assert "mains_freq" not in {a.name for a in Archive.from_bytes(plain).header.side}
    assert len(data) < 0.9 * len(plain)


def test_mains_removal_lowers_the_error_of_a_model(tiny_dac_path, monkeypatch):
    """A model that cannot follow the line (random weights): with the mains stored apart, the
    reconstruction's error is far lower than without."""
    from eegcodec.backends.registry import load_codec

    codec = load_codec(tiny_dac_path)
    noisy, _ = _with_mains(synthetic_raw(n_ch=4, seconds=20, stim=False), 59.98, 100e-6)
    ref = noisy.get_data(picks="eeg")
    with_mains = decompress(compress_raw(noisy, codec, n_codebooks=2), codec=codec).get_data(picks="eeg")
    monkeypatch.setattr(mains, "MIN_SHARE", 2.0)  # never kept
    data = compress_raw(noisy, codec, n_codebooks=2)
    assert "mains_freq" not in [a.name for a in Archive.from_bytes(data).header.side]
    without = decompress(data, codec=codec).get_data(picks="eeg")
    assert _prd(ref, with_mains) < 0.6 * _prd(ref, without)


@pytest.mark.parametrize(("name", "value"), [("mains_freq", 555_000), ("mains_levels", 2**40)])
def test_forged_mains_are_refused(pcm_codec, name, value):
    noisy, _ = _with_mains(synthetic_raw(n_ch=4, seconds=12), 50.01, 80e-6)
    arc = Archive.from_bytes(compress_raw(noisy, pcm_codec, n_codebooks=2))
    side = unpack_arrays(arc.side, arc.header.side, arc.header.version)
    side[name].flat[0] = value
    arc.side, arc.header.side = pack_arrays(side, arc.header.version)
    with pytest.raises(CorruptFileError, match="mains"):
        decompress(arc.to_bytes(), codec=pcm_codec)


def test_info_names_the_mains(pcm_codec, tmp_path, capsys):
    from eegcodec.cli import main

    noisy, _ = _with_mains(synthetic_raw(n_ch=4, seconds=20), 59.95, 80e-6)
    path = tmp_path / "m.eegc"
    path.write_bytes(compress_raw(noisy, pcm_codec, n_codebooks=2))
    assert main(["info", str(path)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("mains")]
    assert line and "59.95" in line[0] and "of 1 chunks" in line[0]


def test_measured_prd_is_the_decoded_files_prd(tiny_dac_path, tmp_path, capsys):
    """The PRD a token file records when compressed is that of what it decodes to (NaN runs,
    exactly stored outliers and chunk cross-fades included); compress warns where it is poor."""
    from eegcodec.backends.registry import load_codec
    from eegcodec.cli import main
    from eegcodec.metrics import prd_per_channel

    codec = load_codec(tiny_dac_path)
    raw = synthetic_raw(n_ch=4, seconds=30, seed=3)
    raw._data[1, 300:340] = np.nan
    raw._data[2, 900] += 2e-3  # a spike the model misses: stored exactly
    data = compress_raw(raw, codec, n_codebooks=2)
    measured = Archive.from_bytes(data).header.measured_prd
    x, y = raw.get_data(picks="eeg"), decompress(data, codec=codec).get_data(picks="eeg")
    want = np.array([prd_per_channel(a[~np.isnan(a)], b[~np.isnan(a)]) for a, b in zip(x, y)])
    assert measured["median"] == pytest.approx(np.median(want), abs=0.1)
    assert [w[0] for w in measured["worst"]] == [f"EEG{i:02d}" for i in np.argsort(want)[::-1][:3]]
    path = tmp_path / "rec.fif"
    raw.save(path, verbose="error")
    assert main(["compress", str(path), "-o", str(tmp_path / "r.eegc"), "--model", str(tiny_dac_path)]) == 0
    out = capsys.readouterr()
    assert "measured when compressed" in out.out
    assert ("follows this recording poorly" in out.err) == (measured["median"] >= 80)


def test_info_of_a_file_whose_mains_are_all_zero(pcm_codec, tmp_path, capsys):
    """A version-6 file whose chunks all hold no mains (crafted) is described, not a crash."""
    from eegcodec.cli import main

    noisy, _ = _with_mains(synthetic_raw(n_ch=4, seconds=12), 50.01, 80e-6)
    arc = Archive.from_bytes(compress_raw(noisy, pcm_codec, n_codebooks=2))
    side = unpack_arrays(arc.side, arc.header.side, arc.header.version)
    side["mains_freq"][:] = 0
    arc.side, arc.header.side = pack_arrays(side, arc.header.version)
    path = tmp_path / "zero.eegc"
    path.write_bytes(arc.to_bytes())
    assert main(["info", str(path)]) == 0
    assert "mains" not in capsys.readouterr().out
