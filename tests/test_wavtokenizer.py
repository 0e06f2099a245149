"""WavTokenizer: official checkpoint layout, check vectors, framing, ISTFT, EEG use.

The layout JSONs in ``../shared/wavtokenizer`` define deterministic weights by a
formula and record what the official code computes from them; the tests that
need them skip when that folder is absent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from eegcodec.backends.wavtokenizer.network import WavTokenizer, WavTokenizerConfig
from eegcodec.errors import EegcodecError

SHARED_WT = Path(__file__).resolve().parents[1].parent / "shared" / "wavtokenizer"
LAYOUTS = {
    "40": "layout_wavtokenizer_smalldata_frame40_3s_nq1_code4096_dim512_kmeans200_attn.json",
    "75": "layout_wavtokenizer_smalldata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.json",
}
needs_layout = pytest.mark.skipif(
    not SHARED_WT.is_dir(), reason=f"WavTokenizer layout folder {SHARED_WT} is absent"
)


def _layout(variant: str) -> dict:
    return json.loads((SHARED_WT / LAYOUTS[variant]).read_text())


def _hash_uniform(i: int, n: int) -> np.ndarray:
    """The layout's murmur3-finaliser values s in [-1, 1) for tensor i, elements 0..n-1 (float64)."""
    h = (np.arange(n, dtype=np.uint64) + np.uint64(((i + 1) * 0x9E3779B9) % 2**32)) % np.uint64(2**32)
    h = h.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h = (h.astype(np.uint64) * np.uint64(0x85EBCA6B) % np.uint64(2**32)).astype(np.uint32)
    h ^= h >> np.uint32(13)
    h = (h.astype(np.uint64) * np.uint64(0xC2B2AE35) % np.uint64(2**32)).astype(np.uint32)
    h ^= h >> np.uint32(16)
    return 2.0 * (h.astype(np.float64) / 2**32) - 1.0


def deterministic_state(layout: dict) -> dict[str, torch.Tensor]:
    """Every kept tensor of the layout, in its order, from the layout's weight formula."""
    n_fft = layout["hyperparameters"]["head"]["init_args"]["n_fft"]
    state = {}
    for i, entry in enumerate(layout["state_dict"]):
        key, shape = entry["key"], entry["shape"]
        n = int(np.prod(shape))
        if key.endswith(("_codebook.inited", "_codebook.cluster_size")):
            v = np.ones(n)
        elif key == "head.istft.window":
            v = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        else:
            s = _hash_uniform(i, n)
            if key.endswith(("_codebook.embed", "_codebook.embed_avg")):
                v = 0.5 * s
            elif key.endswith((".weight_g", "norm.scale.weight")):
                v = 1 + 0.1 * s
            elif key.endswith("norm.shift.weight"):
                v = 0.02 * s
            elif key.endswith(".gamma"):
                v = 0.1 + 0.01 * s
            elif len(shape) >= 2:
                v = s * math.sqrt(3 / (n / shape[0]))
            elif key.endswith(".weight"):
                v = 1 + 0.1 * s
            else:
                v = 0.02 * s
        state[key] = torch.from_numpy(v.reshape(shape).astype(np.float32))
    return state


def save_lightning_ckpt(layout: dict, path: Path) -> None:
    """A Lightning-style checkpoint: kept keys, then a few of the filtered training keys."""
    state = deterministic_state(layout)
    for entry in layout["filtered_out_keys"]["keys"][:3]:
        state[entry["key"]] = torch.zeros(entry["shape"])
    torch.save({"epoch": 3, "global_step": 1000, "state_dict": state}, path)


def _sine(sr: int, n: int) -> torch.Tensor:
    return (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)[None]


@pytest.fixture(scope="module", params=["40", "75"])
def official(request, tmp_path_factory):
    """(variant, layout, model loaded through from_checkpoint from deterministic weights)."""
    if not SHARED_WT.is_dir():
        pytest.skip(f"WavTokenizer layout folder {SHARED_WT} is absent")
    layout = _layout(request.param)
    path = tmp_path_factory.mktemp("wt") / f"wavtokenizer_{request.param}.ckpt"
    save_lightning_ckpt(layout, path)
    model = WavTokenizer.from_checkpoint(path, request.param)
    path.unlink()
    return request.param, layout, model


@needs_layout
def test_check_vectors_deterministic_weights(official):
    variant, layout, model = official
    ref = layout["deterministic_weights_check"]
    x = torch.from_numpy(_sine(24000, 24000))
    with torch.no_grad():
        features = model.encode_features(x)
        codes = model.encode(x)
        hidden = model.backbone(model.codes_to_features(codes))
        audio = model.decode(codes)
    assert codes.dtype == torch.int64
    assert codes[0, 0].tolist() == ref["codes"]
    np.testing.assert_allclose(
        features[0, :8, 0].numpy(), ref["encoder_output_frame0_first8"], rtol=1e-4, atol=1e-5
    )
    assert float(features.mean()) == pytest.approx(ref["encoder_output_mean"], rel=1e-4, abs=1e-6)
    assert float(features.std()) == pytest.approx(ref["encoder_output_std"], rel=1e-4)
    np.testing.assert_allclose(
        hidden[0, 0, :8].numpy(), ref["backbone_output_frame0_first8"], rtol=1e-4, atol=1e-5
    )
    assert float(hidden.std()) == pytest.approx(ref["backbone_output_std"], rel=1e-4)
    a = audio[0].numpy()
    assert a.shape == tuple(ref["audio_shape"][1:])
    np.testing.assert_allclose(a[:8], ref["audio_first8"], rtol=1e-4, atol=1e-6)
    for pos, val in ref["audio_samples_at"].items():
        assert a[int(pos)] == pytest.approx(val, rel=1e-4, abs=1e-6)
    assert float(a.mean()) == pytest.approx(ref["audio_mean"], rel=1e-3, abs=1e-6)
    assert float(np.sqrt((a.astype(np.float64) ** 2).mean())) == pytest.approx(ref["audio_rms"], rel=1e-4)
    assert float(np.abs(a).max()) == pytest.approx(ref["audio_max_abs"], rel=1e-4)


@needs_layout
def test_framing_table_and_batch(official):
    variant, layout, model = official
    hop = layout["hop_length"]
    table = layout["check_vector"]["closed_form"]["verified_on_lengths"]
    table.update(
        {
            k: [v["code_frames"], v["audio_out_shape"][1]]
            for k, v in layout["check_vector"]["code_frames_vs_input_length"].items()
        }
    )
    with torch.no_grad():
        for length, (frames, out_len) in table.items():
            codes = model.encode(torch.from_numpy(_sine(24000, int(length))))
            assert codes.shape == (1, 1, frames), length
            assert model.decode(codes).shape == (1, out_len), length
            assert frames == math.ceil(int(length) / hop)
        batch = torch.from_numpy(np.concatenate([_sine(24000, 24000), 0.5 * _sine(24000, 24000)]))
        codes = model.encode(batch)
        assert codes.shape == (2, 1, 24000 // hop)
        assert model.codes_to_features(codes).shape == (2, 512, 24000 // hop)
        assert model.decode(codes).shape == (2, 24000)
        assert torch.equal(codes[:1], model.encode(batch[:1]))  # batch items are independent
        with pytest.raises(EegcodecError, match="bandwidth_id"):
            model.decode_features(model.codes_to_features(codes), bandwidth_id=4)


@needs_layout
@pytest.mark.parametrize("variant", ["40", "75"])
def test_istft_head_weight_independent(variant):
    layout = _layout(variant)
    ref = layout["check_vector"]["istft_head_check"]
    cfg = WavTokenizerConfig.from_dict({"variant": variant})
    head = WavTokenizer(cfg).head.istft
    k = torch.arange(cfg.n_fft // 2 + 1, dtype=torch.float64)[:, None]
    t = torch.arange(ref["n_frames"], dtype=torch.float64)[None]
    spec = (torch.exp(1j * (0.3 * k + 0.7 * t)) / (1 + k)).to(torch.complex64)[None]
    y = head(spec)[0].numpy()
    assert y.shape == (ref["output_length"],)
    np.testing.assert_allclose(y[:8], ref["first_8"], rtol=1e-4)
    for pos, val in ref["samples_at"].items():
        assert y[int(pos)] == pytest.approx(val, rel=1e-4)
    assert float(y.sum()) == pytest.approx(ref["sum"], rel=1e-4)
    assert float((y.astype(np.float64) ** 2).sum()) == pytest.approx(ref["sum_of_squares"], rel=1e-4)


def test_state_dict_names_and_shapes_match_the_layout():
    """Our module's keys are the official kept keys minus the unused SEANet decoder."""
    if not SHARED_WT.is_dir():
        pytest.skip(f"WavTokenizer layout folder {SHARED_WT} is absent")
    for variant in LAYOUTS:
        layout = _layout(variant)
        want = {
            e["key"]: tuple(e["shape"]) for e in layout["state_dict"] if ".encodec.decoder." not in e["key"]
        }
        got = {
            k: tuple(v.shape)
            for k, v in WavTokenizer(WavTokenizerConfig.from_dict({"variant": variant})).state_dict().items()
        }
        assert got == want


def test_closed_form_framing_without_layout():
    """frames = ceil(L / hop) and output = frames * hop for a small random model."""
    cfg = WavTokenizerConfig.from_dict(
        {
            "strides": [2, 2],
            "n_filters": 8,
            "dimension": 32,
            "codebook_size": 16,
            "backbone_dim": 32,
            "intermediate_dim": 48,
            "num_layers": 2,
            "n_fft": 16,
        }
    )
    model = WavTokenizer(cfg).eval()
    with torch.no_grad():
        for length in (1, 3, 4, 5, 17, 64, 101):
            codes = model.encode(torch.randn(2, length))
            assert codes.shape == (2, 1, math.ceil(length / 4))
            assert model.decode(codes).shape == (2, codes.shape[-1] * 4)


def test_checkpoint_errors(tmp_path):
    cfg_small = {"variant": "75"}
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EegcodecError, match="cannot load WavTokenizer checkpoint"):
        WavTokenizer.from_checkpoint(bad, "75")
    torch.save({"weights": {}}, bad)
    with pytest.raises(EegcodecError, match="no 'state_dict'"):
        WavTokenizer.from_checkpoint(bad, "75")
    torch.save({"state_dict": {"backbone.embed.weight": torch.zeros(3)}}, bad)
    with pytest.raises(EegcodecError, match="does not fit"):
        WavTokenizer.from_checkpoint(bad, "75")
    with pytest.raises(EegcodecError, match="variant"):
        WavTokenizerConfig.from_dict({"variant": "50"})
    with pytest.raises(EegcodecError, match="unknown WavTokenizer"):
        WavTokenizerConfig.from_dict({**cfg_small, "heads": 2})
    with pytest.raises(EegcodecError, match="not found"):
        WavTokenizer.from_checkpoint(tmp_path / "missing.ckpt", "75")


# ---------------------------------------------------------------------------
# as an eegcodec backend: registry, CLI, pipeline
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_random_ckpt(tmp_path_factory) -> Path:
    """An official-layout 75 tokens/s checkpoint with random weights (inited = 1), plus one
    unused-decoder key and one discriminator key, as a Lightning file holds them."""
    torch.manual_seed(0)
    state = WavTokenizer(WavTokenizerConfig.from_dict({"variant": "75"})).state_dict()
    state["feature_extractor.encodec.decoder.model.0.conv.conv.bias"] = torch.zeros(512)
    state["multiperioddisc.discriminators.0.convs.0.bias"] = torch.zeros(32)
    path = tmp_path_factory.mktemp("wt") / "WavTokenizer_small_320_24k_4096.ckpt"
    torch.save({"epoch": 1, "state_dict": state}, path)
    return path


def test_official_checkpoint_through_cli(tmp_path, official_random_ckpt, capsys):
    import mne
    from conftest import synthetic_raw

    from eegcodec.backends.registry import load_codec
    from eegcodec.cli import main

    name = f"wavtokenizer-75:{official_random_ckpt}"
    codec = load_codec(name)
    assert (codec.info.kind, codec.info.hop_length, codec.info.n_codebooks, codec.info.bits_per_code) == (
        "wavtokenizer",
        320,
        1,
        12,
    )
    assert codec.info.adapter.model_rate == 24000.0
    with pytest.raises(EegcodecError, match="wavtokenizer-75:"):
        load_codec(official_random_ckpt)  # a bare path does not say the variant
    with pytest.raises(EegcodecError, match="single codebook"):
        codec.encode(torch.zeros(1, 1, 320), 2)

    edf = tmp_path / "rec.edf"
    raw = synthetic_raw(n_ch=2, seconds=3, stim=False)
    mne.export.export_raw(edf, raw, verbose="error")
    arc = tmp_path / "rec.eegc"
    assert main(["compress", str(edf), "-o", str(arc), "--model", name, "-q"]) == 0
    assert main(["info", str(arc)]) == 0
    assert "wavtokenizer-75" in capsys.readouterr().out
    assert (
        main(["decompress", str(arc), "-o", str(tmp_path / "back.fif"), "-q"]) == 0
    )  # model found by its stored name
    back = mne.io.read_raw(tmp_path / "back.fif", verbose="error")
    assert back.n_times == raw.n_times and back.ch_names == raw.ch_names
    from eegcodec.api import read_archive

    archive = read_archive(arc)
    assert archive.header.model.name == name and archive.header.codebooks == 1
    # 3 s at 24 kHz in one chunk: ceil(72000 / 320) = 225 frames of one 12-bit code per channel
    assert archive.header.chunk_frames == [225]
    assert len(archive.codes) == math.ceil(2 * 225 * 12 / 8)
