"""eegcodec.read_raw: an archive read like a recording, decoding only the chunks asked for."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LeakyPCMCodec, PCMCodec, synthetic_raw

import eegcodec
import eegcodec.io
from eegcodec.adapt import AdapterConfig
from eegcodec.pipeline import decoded_chunks
from eegcodec.reader import read_archive

#: float paths (token reconstruction, transform layer): the same arithmetic either way, kept to
#: within rounding of the samples' magnitude
TOLERANCE = 1e-9


def _raw(seconds=95, n_ch=6):
    raw = synthetic_raw(n_ch=n_ch, seconds=seconds)
    raw._data[1, 3000:3100] = np.nan  # a NaN run inside a coded channel (160 Hz)
    return raw


@pytest.mark.parametrize("mode", [{"lossless": True}, {"max_error": 2e-6}, {"prd": 10}])
def test_windows_and_picks_equal_the_full_decode(tmp_path, mode):
    raw = _raw()
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, **mode)
    full = eegcodec.decompress(path).get_data()
    lazy = eegcodec.read_raw(path)
    n = full.shape[1]
    rng = np.random.default_rng(0)
    windows = [(0, 10), (n - 700, n), (int(29.5 * 160), int(31 * 160)), (2990, 3200)]  # end, chunk edge, NaN
    windows += [tuple(sorted(rng.integers(0, n, 2))) for _ in range(6)]
    for start, stop in windows:
        picks = sorted(rng.choice(len(raw.ch_names), 3, replace=False))
        got = lazy.get_data(picks=picks, start=start, stop=stop)
        want = full[picks, start:stop]
        if "prd" in mode:
            np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * np.nanmax(np.abs(full)))
        else:
            np.testing.assert_array_equal(got, want)


def test_token_file_window_equals_full_decode(tmp_path):
    codec = PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))
    raw = synthetic_raw(n_ch=3, seconds=40, stim=False)
    path = tmp_path / "tok.eegc"
    eegcodec.compress(raw, path, codec)
    full = eegcodec.decompress(path, codec=codec).get_data()
    lazy = eegcodec.read_raw(path, codec=codec)
    for start, stop in [(5000, 6000), (1100, 1300), (0, 50), (6000, 6400), (2400, 2300 + 1200)]:
        np.testing.assert_allclose(
            lazy.get_data(start=start, stop=stop), full[:, start:stop], rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("mix", [False, True])
def test_corrected_token_file_window_equals_full_decode(tmp_path, mix):
    # two of the PCM codec's four codebooks: lossy enough for the decoder correction to pay;
    # mix: all four through a decoder that leaks the channels' mean (a spatial mix undoes it)
    adapter = AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1)
    codec = LeakyPCMCodec(adapter=adapter) if mix else PCMCodec(adapter=adapter)
    raw = synthetic_raw(n_ch=4 if mix else 3, seconds=40, stim=False)
    path = tmp_path / "tok.eegc"
    eegcodec.compress(raw, path, codec, n_codebooks=4 if mix else 2)
    assert eegcodec.describe(path)["decoder_correction"]
    assert (eegcodec.describe(path)["decoder_correction_mix"] > 0) == mix
    full = eegcodec.decompress(path, codec=codec).get_data()
    lazy = eegcodec.read_raw(path, codec=codec)
    for start, stop in [(5000, 6000), (1100, 1300), (0, 50), (6000, 6400), (1115, 1125), (6300, 6400)]:
        np.testing.assert_allclose(
            lazy.get_data(start=start, stop=stop), full[:, start:stop], rtol=0, atol=1e-12
        )
    archive = read_archive(path)
    for first in (1, 3):
        a, block = next(decoded_chunks(archive, codec, first=first))
        np.testing.assert_allclose(block, full[:, a : a + block.shape[1]], rtol=0, atol=1e-12)


def test_a_later_chunk_decodes_without_the_ones_before(tmp_path, monkeypatch):
    raw = _raw(seconds=125)
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, lossless=True)
    archive = read_archive(path)
    seen = []
    import eegcodec.pipeline as pipeline

    real = pipeline.decode_block
    monkeypatch.setattr(pipeline, "decode_block", lambda frame, *a: seen.append(frame) or real(frame, *a))
    starts = [a for a, _ in decoded_chunks(archive, None, first=3)]
    assert starts[0] == archive.header.layout.chunks()[3][0] and len(seen) == len(starts)
    seen.clear()
    eegcodec.read_raw(path).get_data(start=100 * 160, stop=101 * 160)
    assert len(seen) == 1  # only the chunk holding second 100


def test_decompress_writes_only_a_window(tmp_path):
    from eegcodec.cli import main

    raw = _raw(seconds=70)
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, lossless=True)
    full = eegcodec.decompress(path)
    names = [raw.ch_names[2], raw.ch_names[0]]
    out = tmp_path / "win.fif"
    args = ["decompress", str(path), "-o", str(out), "--tmin", "31.5", "--tmax", "40", "--picks", *names]
    assert main(args) == 0
    got = eegcodec.io.read_raw(out, preload=True)
    assert got.ch_names == names and got.n_times == int(8.5 * 160)
    want = full.copy().pick(names).crop(31.5, 40, include_tmax=False).get_data()
    np.testing.assert_array_equal(got.get_data(), want)
    assert main(["decompress", str(path), "-o", str(tmp_path / "b.fif"), "--picks", "nope"]) == 1
    assert main(["decompress", str(path), "-o", str(tmp_path / "c.fif"), "--tmin", "80"]) == 1
