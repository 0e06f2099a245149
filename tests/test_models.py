"""Model loading: DAC's own format and cache location, shipped model, errors."""

import numpy as np
import pytest
import torch

from eegcodec.backends.dac.files import read_dac_file, save_dac_file
from eegcodec.backends.dac.format import dac_cache_path
from eegcodec.backends.dac.network import build_dac
from eegcodec.backends.registry import list_models, load_codec
from eegcodec.errors import EegcodecError
from eegcodec.models import SHIPPED
from tools.fuzz import TINY_DAC


def test_saved_checkpoint_loads_with_dac_itself(tiny_dac_path):
    import dac

    model = dac.DAC.load(str(tiny_dac_path))
    ours = load_codec(tiny_dac_path)
    x = torch.randn(2, 1, 64) * 0.1
    with torch.no_grad():
        z, codes, *_ = model.eval().encode(x, n_quantizers=3)
    np.testing.assert_array_equal(ours.encode(x, 3).numpy(), codes.numpy())
    np.testing.assert_allclose(
        ours.decode(codes).numpy(),
        model.decode(model.quantizer.from_codes(codes)[0]).detach().numpy(),
        atol=1e-5,
    )


def test_pretrained_name_loads_from_dacs_cache(tmp_path, monkeypatch):
    """A checkpoint in DAC's format placed where dac.utils.download caches it is used without network."""
    monkeypatch.setenv("HOME", str(tmp_path))
    path = dac_cache_path("16khz", "8kbps")
    assert str(path).startswith(str(tmp_path)) and path.name.startswith("weights_16khz_8kbps")
    torch.manual_seed(1)
    m = build_dac(
        {**TINY_DAC, "n_codebooks": 4, "codebook_size": 32, "codebook_dim": 8, "sample_rate": 16000}
    )
    path.parent.mkdir(parents=True)
    torch.save(
        {
            "state_dict": m.state_dict(),
            "metadata": {
                "kwargs": {
                    "encoder_dim": 4,
                    "encoder_rates": [2, 4],
                    "decoder_dim": 16,
                    "decoder_rates": [4, 2],
                    "n_codebooks": 4,
                    "codebook_size": 32,
                    "sample_rate": 16000,
                }
            },
        },
        path,
    )
    codec = load_codec("dac_16khz")
    assert (
        codec.info.name == "dac_16khz"
        and codec.info.hop_length == 8
        and codec.info.adapter.model_rate == 16000
    )
    rows = {r["name"]: r for r in list_models()}
    assert rows["dac_16khz"]["status"] == "cached"
    # the rate EEG is fed at (the adapter's), not the network's nominal one
    assert rows["mc-320"]["sample_rate"] == 320 and rows["mc-small"]["sample_rate"] == 160


def test_missing_pretrained_without_network_names_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    import dac.utils

    def offline(**kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(dac.utils, "download", offline)
    with pytest.raises(EegcodecError, match="weights_24khz_8kbps"):
        load_codec("dac_24khz")


def test_weights_that_do_not_fit_are_refused(tmp_path, tiny_dac_path):
    blob = read_dac_file(tiny_dac_path)
    blob["metadata"]["kwargs"]["n_codebooks"] = 5
    torch.save(blob, tmp_path / "bad.pth")
    with pytest.raises(EegcodecError, match="do not match"):
        load_codec(tmp_path / "bad.pth")


def test_sha_identifies_weights_not_file_bytes(tmp_path, tiny_dac_path):
    a = load_codec(tiny_dac_path)
    m = build_dac(read_dac_file(tiny_dac_path)["metadata"]["kwargs"])
    m.load_state_dict(read_dac_file(tiny_dac_path)["state_dict"])
    save_dac_file(m, tmp_path / "copy.pth", {"name": "copy"})
    assert load_codec(tmp_path / "copy.pth").info.weights_sha256 == a.info.weights_sha256


def test_shipped_default_model_loads():
    codec = load_codec("default")
    assert codec.info.name == "mc-small" and codec.info.kind == "dac-mc"
    assert codec.info.adapter.model_rate > 0 and codec.info.n_codebooks >= 1


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_codes_eeg(name):
    """Each shipped model loads by name, uses its recommended depth and reconstructs EEG-like data."""
    from conftest import synthetic_raw

    from eegcodec import compress, decompress
    from eegcodec.metrics import prd

    codec = load_codec(name)
    assert codec.info.name == name and 1 <= codec.info.default_codebooks <= codec.info.n_codebooks
    raw = synthetic_raw(n_ch=8, seconds=20, stim=False)
    raw.rename_channels(dict(zip(raw.ch_names, ["Fz", "Cz", "Pz", "C3", "C4", "P3", "P4", "Oz"])))
    back = decompress(compress(raw, None, codec), codec=codec)
    assert prd(raw.get_data(), back.get_data()) < 50  # an untrained model of this size gives ~60


def test_in_place_snake_is_bit_identical_and_keeps_gradients():
    """Inference codecs run DAC's Snake in one buffer: same codes and samples bit for bit as DAC's
    own Snake; with gradients on, DAC's own (in-place ops would break autograd)."""
    codec = load_codec("default")
    snakes = [m for m in codec.model.modules() if type(m).__name__ == "Snake1d"]
    assert snakes and all("forward" in vars(m) for m in snakes)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (5, 640)).astype(np.float32)
    montage = codec.montage(["Fz", "Cz", "Pz", "C3", "C4"])
    fast_codes = codec.encode_channels(x, 6, montage)
    fast_out = codec.decode_channels(fast_codes, montage)
    for m in snakes:
        del m.forward  # back to dac.nn.layers.Snake1d.forward
    codes = codec.encode_channels(x, 6, montage)
    assert np.array_equal(codes, fast_codes)
    assert np.array_equal(codec.decode_channels(codes, montage), fast_out)
    from eegcodec.backends.dac.network import _snake_in_place

    alpha_module = snakes[0]
    h = torch.randn(2, alpha_module.alpha.shape[1], 16, requires_grad=True)
    _snake_in_place(alpha_module, h).sum().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all()


def test_models_are_listed_from_metadata_and_cards_without_torch():
    """``list_models`` (``eegcodec models``) reads the files' metadata and the model cards, not the
    weights: torch is never imported, and the rows match what loading the model says."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import json, sys; from eegcodec.backends.registry import list_models; rows = list_models(); "
        "print(json.dumps({'rows': rows, 'torch': 'torch' in sys.modules}))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["torch"] is False
    rows = {r["name"]: r for r in got["rows"]}
    assert set(SHIPPED) <= set(rows) and rows["default"]["status"] == "alias of mc-small"
    mc = rows["mc-small"]
    assert mc["summary"].startswith("mc-small") and mc["card"].endswith("mc-small.md")
    assert mc["size_mb"] > 1 and mc["multichannel_tokens"] == 8
    info = load_codec("mc-small").info
    assert (mc["n_codebooks"], mc["default_codebooks"], mc["hop_length"]) == (
        info.n_codebooks,
        info.default_codebooks,
        info.hop_length,
    )


def test_metadata_reader_builds_no_objects(tmp_path):
    """The torch-free reader builds plain values only: a pickled object of any other class is None."""
    import collections

    from eegcodec.backends.weights import read_metadata

    torch.save(
        {"metadata": {"a": [1, 2.5, "x"]}, "w": torch.ones(3), "o": collections.Counter("ab")},
        tmp_path / "m.pth",
    )
    blob = read_metadata(tmp_path / "m.pth")
    assert blob["metadata"] == {"a": [1, 2.5, "x"]} and blob["w"] is None and blob["o"] is None
    (tmp_path / "bad.pth").write_bytes(b"not a zip")
    with pytest.raises(EegcodecError, match="bad.pth"):
        read_metadata(tmp_path / "bad.pth")


def test_a_backend_is_one_package_and_one_registry_line(tmp_path, monkeypatch):
    """A package giving sniff/load/describe, registered with Backend.of, is what load_codec, the
    weights sniffing and the recipe families use (the shipped backends are registered the same way)."""
    import types

    from conftest import PCMCodec

    from eegcodec.backends import registry

    pkg = types.ModuleType("toy")
    pkg.sniff = lambda blob: blob.get("toy") is True
    pkg.load = lambda blob, path, name: PCMCodec()
    pkg.describe = lambda blob: {"n_codebooks": 1}
    monkeypatch.setitem(registry.BACKENDS, "toy", registry.Backend.of(pkg))
    torch.save({"toy": True, "state_dict": {}}, tmp_path / "toy.pth")
    assert isinstance(load_codec(tmp_path / "toy.pth"), PCMCodec)
    assert registry.Backend.of(pkg).family is None and "toy" not in registry.FAMILIES
    assert set(registry.FAMILIES) == {"dac", "dac_mc", "wavtokenizer"}
    torch.save({"other": True}, tmp_path / "other.pth")
    with pytest.raises(EegcodecError, match="not a file of any backend .*toy"):
        load_codec(tmp_path / "other.pth")
    with pytest.raises(EegcodecError, match="recipe family must be one of"):
        registry.build_trainable("toy", {})
