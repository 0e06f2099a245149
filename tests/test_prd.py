"""Target-PRD files: the multichannel transform layer alone and under model tokens."""

import numpy as np
import pytest
from conftest import synthetic_raw
from threadpoolctl import threadpool_limits

from eegcodec import chunks
from eegcodec.api import compress, decompress, read_archive
from eegcodec.cli import main
from eegcodec.errors import CorruptFileError, EegcodecError
from eegcodec.format.transform import TransformDecoder, TransformEncoder
from eegcodec.metrics import prd_per_channel
from eegcodec.pipeline import compress_raw


def _shared_sources(seconds=75.0, n_ch=8, seed=1):
    """EEG whose electrodes mix three sources (what the spatial KLT exploits), plus a stim channel."""
    raw = synthetic_raw(n_ch=n_ch, seconds=seconds, seed=seed)
    rng = np.random.default_rng(seed)
    raw._data[:n_ch] = rng.normal(size=(n_ch, 3)) @ raw._data[:3] + 0.1 * raw._data[:n_ch]
    return raw


def _chunk_prds(h, x, y):
    """Median channel PRD of each chunk's own samples."""
    spans = [chunks.exact_span(h.layout, a, b) for a, b in h.layout.chunks()]
    return [np.nanmedian(prd_per_channel(x[:, a:b], y[:, a:b])) for a, b in spans]


@pytest.mark.parametrize("target", [5.0, 20.0])
def test_prd_file_meets_its_target_per_chunk_with_no_model(target):
    raw = _shared_sources()
    data = compress_raw(raw, None, prd=target)
    arc = read_archive(data)
    h = arc.header
    assert h.mode == "prd" and h.target_prd == target and h.model is None and h.codebooks == 0
    assert h.n_chunks >= 2 and len(h.residual_frames) == h.n_chunks
    back = decompress(data).get_data()
    x = raw.get_data()
    eeg, stim = h.coded, h.lossless
    per_chunk = _chunk_prds(h, x[eeg], back[eeg])
    assert max(per_chunk) <= target + 1e-9 and min(per_chunk) > 0.8 * target  # met, and not wasted
    np.testing.assert_array_equal(back[stim], x[stim])  # the stim channel exact
    # the spatial transform pays: fewer bits than coding each channel's DCT alone at the same PRD
    from eegcodec.bench.classical import dct_code, step_for_bps

    bps = 8 * arc.section_sizes["RESD"] / (len(eeg) * raw.n_times)
    _, rec, _ = step_for_bps(dct_code, x[eeg], raw.info["sfreq"], bps)
    assert np.median(prd_per_channel(x[eeg], rec)) > 1.2 * target


def test_transform_layer_is_deterministic_across_threads_and_runs():
    x = _shared_sources(seconds=20).get_data()[:8]
    ref = np.linalg.norm(x - x.mean(1, keepdims=True), axis=1)
    frame, recon = TransformEncoder(160.0).encode(x, 10.0, ref)
    assert TransformEncoder(160.0).encode(x, 10.0, ref)[0] == frame
    outs = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            outs.append(TransformDecoder().decode(frame, *x.shape))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], recon)  # the encoder's reconstruction is the decoder's


def test_damaged_transform_frames_are_refused_in_one_line():
    x = _shared_sources(seconds=10).get_data()[:8]
    frame, _ = TransformEncoder(160.0).encode(x, 10.0, np.linalg.norm(x, axis=1))
    rng = np.random.default_rng(0)
    for i in range(200):
        bad = bytearray(frame)
        if i % 2:
            bad = bad[: rng.integers(len(bad))]
        else:
            bad[rng.integers(len(bad))] ^= 1 << int(rng.integers(8))
        try:
            out = TransformDecoder().decode(bytes(bad), *x.shape)
        except CorruptFileError as exc:
            assert "\n" not in str(exc)
        else:
            assert out.shape == x.shape  # damage the coder cannot see decodes to a bounded array


def test_layered_file_decodes_tokens_plus_layer(pcm_codec, monkeypatch):
    raw = _shared_sources(seconds=30)
    plain = read_archive(compress_raw(raw, None, prd=10.0))
    auto = read_archive(compress_raw(raw, pcm_codec, prd=10.0, n_codebooks=2))
    assert not auto.header.has_tokens and auto.residual == plain.residual  # tokens that do not pay: dropped
    # force the tokens in every chunk, as a model that earns its bits would have them
    monkeypatch.setattr(chunks.ResidualStream, "pick", staticmethod(lambda options: options[0]))
    monkeypatch.setattr("eegcodec.modes.Prd.alternative", lambda self: None)  # keep the layered file
    data = compress_raw(raw, pcm_codec, prd=10.0, n_codebooks=2)
    h = read_archive(data).header
    assert h.has_tokens and all(f > 0 for f in h.chunk_frames) and h.model.name == "pcm-test"
    x = raw.get_data(picks=h.coded)
    y = decompress(data, codec=pcm_codec).get_data(picks=h.coded)
    assert max(_chunk_prds(h, x, y)) <= 10.0 + 1e-9
    # a decoder whose network output differs in its last bits (another machine) still meets the target
    decode = pcm_codec.decode_channels
    monkeypatch.setattr(pcm_codec, "decode_channels", lambda codes, m: decode(codes, m) * (1 + 1e-6))
    y2 = decompress(data, codec=pcm_codec).get_data(picks=h.coded)
    assert np.abs(y2 - y).max() < 1e-9 and max(_chunk_prds(h, x, y2)) <= 10.0 + 0.01


def test_prd_options_refuse_what_cannot_be_met(tmp_path, capsys):
    raw = synthetic_raw(n_ch=4, seconds=8)
    path = tmp_path / "rec.fif"
    raw.save(path, verbose="error")
    cases = [
        (["--prd", "0"], "--prd must be at least"),
        (["--prd", "100"], "--prd must be at least"),
        (["--prd", "10", "--lossless"], "choose one of"),
        (["--prd", "10", "--max-error", "2uV"], "choose one of"),
    ]
    for extra, msg in cases:
        rc = main(["compress", str(path), "-o", str(tmp_path / "x.eegc"), *extra])
        err = capsys.readouterr().err
        assert rc == 1 and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.eegc").exists()
    with pytest.raises(EegcodecError, match="choose one of"):
        compress(path, prd=10, lossless=True)
    assert main(["compress", str(path), "-o", str(tmp_path / "p.eegc"), "--prd", "10", "-q"]) == 0
    assert main(["info", str(tmp_path / "p.eegc")]) == 0
    assert "median channel PRD at most 10 %" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "p.eegc")]) == 0  # no model needed
