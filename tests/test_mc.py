"""DAC-MC: montage handling, the pivot channel sampler, shape contracts, identity start,
training through a recipe, and the CLI round trip."""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest
import torch
import yaml
from conftest import SHARED_EEG, needs_shared, synthetic_raw

from eegcodec.adapt import AdapterConfig
from eegcodec.backends.dac_mc.files import save_dacmc_file
from eegcodec.backends.dac_mc.network import DACMC
from eegcodec.cli import main
from eegcodec.montage import Montage, normalise_name, pivot_subset, standard_positions
from tools.fuzz import TINY_DAC

TINY = {**TINY_DAC, "codebook_size": 32}
NAMES_10_20 = [
    "Fp1",
    "Fp2",
    "F3",
    "F4",
    "F7",
    "F8",
    "T3",
    "T4",
    "C3",
    "C4",
    "T5",
    "T6",
    "P3",
    "P4",
    "O1",
    "O2",
    "Fz",
    "Cz",
    "Pz",
]


@pytest.fixture(scope="module")
def table():
    return standard_positions()


@pytest.fixture(scope="module")
def mc_path(tmp_path_factory, table):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mc") / "mc.pth"
    save_dacmc_file(
        DACMC(TINY, n_spatial=4, heads=2),
        path,
        {"name": "mc-tiny", "adapter": AdapterConfig(model_rate=160.0, chunk_seconds=8.0).to_dict()},
        table,
    )
    return path


def _named_raw(names, seconds=12.0, seed=0):
    raw = synthetic_raw(n_ch=len(names), seconds=seconds, seed=seed, stim=False)
    return raw.rename_channels(dict(zip(raw.ch_names, names)))


# ---------------------------------------------------------------------------
# montage
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_name, norm",
    [
        ("Fc5.", "FC5"),
        ("Cz..", "CZ"),
        ("EEG Fp1-REF", "FP1"),
        ("EEG T3", "T7"),
        (" t6 ", "P8"),
        ("ECG ECG", "ECG ECG"),
    ],
)
def test_normalise_name(raw_name, norm):
    assert normalise_name(raw_name) == norm


def test_montage_known_unknown_duplicates_single(table):
    m = Montage.from_names(["Fc5.", "EEG Cz", "X17", "Cz", "Y"], table)
    assert m.known.tolist() == [True, True, False, False, False]  # the second Cz is a duplicate
    assert np.allclose(
        m.positions[1], table["CZ"], rtol=0, atol=5.1e-5
    )  # rounded to 10 um (POSITION_DECIMALS)
    assert 0.7 < np.linalg.norm(m.positions[0]) < 1.3  # scalp electrodes near the unit sphere
    fallback = m.positions[~m.known]
    assert len({tuple(p) for p in fallback.round(4)}) == 3 and np.all(np.linalg.norm(fallback, axis=1) > 1.5)
    one = Montage.from_names(["Oz"], table)
    assert one.known.tolist() == [True] and one.positions.shape == (1, 3)
    back = Montage.from_dict(m.names, json.loads(json.dumps(m.to_dict())))
    assert np.allclose(back.positions, m.positions, atol=1e-5) and (back.known == m.known).all()
    with pytest.raises(ValueError):
        Montage.from_dict(["a"], m.to_dict())


def test_pivot_subset_statistics(table):
    names = [n for n in table if n[-1].isdigit() or n.endswith("Z")][:64]
    pos = Montage.from_names(names, table).positions
    rng = np.random.default_rng(0)

    def distance_ratio(scale):
        """Mean distance of the drawn channels to the pivot over the mean distance of all channels to it."""
        ratios = []
        for _ in range(600):
            idx = pivot_subset(pos, 8, rng, scale=scale)
            assert len(set(idx.tolist())) == 8  # no channel twice
            d = np.linalg.norm(pos - pos[idx[0]], axis=1)
            ratios.append(d[idx[1:]].mean() / np.delete(d, idx[0]).mean())
        return np.mean(ratios)

    assert distance_ratio(0.3) < 0.65  # neighbours of the pivot are favoured
    assert distance_ratio(100.0) > 0.95  # a huge scale is a uniform draw
    # inclusion probability falls with distance: nearest quartile far more often than farthest
    near = far = 0
    for _ in range(1500):
        idx = pivot_subset(pos, 8, rng, scale=0.3)
        d = np.linalg.norm(pos - pos[idx[0]], axis=1)
        order = np.argsort(d)[1:]
        q = len(order) // 4
        near += np.isin(order[:q], idx).sum()
        far += np.isin(order[-q:], idx).sum()
    assert near > 5 * far
    assert pivot_subset(pos, 1, rng).shape == (1,)
    with pytest.raises(ValueError):
        pivot_subset(pos[:3], 4, rng)


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def test_shapes_and_identity_start():
    torch.manual_seed(0)
    m = DACMC(TINY, n_spatial=4, heads=2).eval()
    for c, s in ((1, 1), (3, 3), (9, 4)):
        x = torch.randn(2, c, 64)
        out = m(x, torch.randn(2, c, 3), torch.ones(2, c, dtype=torch.bool), n_quantizers=2)
        assert out["audio"].shape == (2, c, 64)
        assert out["codes"].shape == (2 * s, 2, 8)  # S = min(n_spatial, C) tokens per frame, hop 8
    # one channel: the untrained cross-channel blocks pass the DAC's latents through
    x = torch.randn(1, 1, 64)
    with torch.no_grad():
        emb = m.embed(torch.zeros(1, 1, 3), torch.zeros(1, 1, dtype=torch.bool))
        z = m.dac.encoder(x)
        assert torch.allclose(m.encode_latents(x, emb)[:, 0], z, atol=1e-6)
        assert torch.allclose(m.decode_latents(z[:, None], emb)[:, 0], m.dac.decoder(z)[:, 0], atol=1e-6)


def test_code_stream_does_not_grow_with_channels(mc_path):
    from eegcodec.backends.registry import load_codec
    from eegcodec.format.container import Archive
    from eegcodec.pipeline import compress_raw

    codec = load_codec(mc_path)
    sizes = {}
    for c in (4, 16):
        arc = Archive.from_bytes(compress_raw(_named_raw(NAMES_10_20[:c]), codec, n_codebooks=2))
        assert arc.header.code_rows == 4
        sizes[c] = arc.section_sizes["CODE"]
    assert sizes[4] == sizes[16]
    # codes -> latents: one quantized spatial token per code row
    codes = codec.encode_channels(np.zeros((6, 64), np.float32), 2, codec.montage(NAMES_10_20[:6]))
    assert codes.shape == (4, 2, 8) and tuple(codec.codes_to_latents(codes).shape) == (
        4,
        codec.model.dac.latent_dim,
        8,
    )


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names", [NAMES_10_20, ["Cz"], ["A", "B", "A.", "Fz"]], ids=["10-20", "single", "unknown+duplicate"]
)
def test_cli_round_trip(tmp_path, mc_path, names):
    src = tmp_path / "rec.edf"
    mne.export.export_raw(src, _named_raw(names), verbose="error")
    arc, back = tmp_path / "rec.eegc", tmp_path / "back.edf"
    assert (
        main(["compress", str(src), "-o", str(arc), "--model", str(mc_path), "--codebooks", "2", "-q"]) == 0
    )
    assert main(["decompress", str(arc), "-o", str(back), "--model", str(mc_path), "-q"]) == 0
    from eegcodec.api import read_archive

    h = read_archive(arc).header
    assert h.model.kind == "dac-mc" and h.code_rows == min(4, len(names))
    assert len(h.montage["known"]) == len(names)
    from eegcodec.backends.registry import load_codec

    used = load_codec(mc_path).montage(mne.io.read_raw(src, verbose="error").ch_names)
    stored = Montage.from_dict(used.names, h.montage)  # the decoder's positions are the encoder's, exactly
    assert np.array_equal(stored.positions, used.positions) and np.array_equal(stored.known, used.known)
    rec = mne.io.read_raw(back, verbose="error")
    assert rec.ch_names == mne.io.read_raw(src, verbose="error").ch_names and rec.n_times == 12 * 160


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------


def test_train_dac_mc_recipe_and_init_from_dac(tmp_path, tiny_dac_path):
    from eegcodec.backends.dac.files import read_dac_file
    from eegcodec.backends.registry import load_codec
    from eegcodec.train.config import load_recipe
    from eegcodec.train.trainer import Trainer

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        mne.export.export_raw(
            data / f"sub{i}.edf", _named_raw(NAMES_10_20[:6], seconds=12, seed=i), verbose="error"
        )
    cfg = {
        "name": "mc-test",
        "family": "dac_mc",
        "init": str(tiny_dac_path),
        "model": {"n_spatial": 2, "heads": 2, "max_channels": 5, "channel_windows": 8},
        "adapter": {"model_rate": 160.0, "chunk_seconds": 6.0},
        "data": {
            "root": str(data),
            "train": ["sub[01].edf"],
            "val": ["sub2.edf"],
            "window_seconds": 1.0,
            "cache_dir": str(tmp_path / "cache"),
        },
        "optim": {"lr": 0.003, "warmup_steps": 2, "vq_warmup_steps": 0, "code_reset_every": 2},
        "steps": 4,
        "batch_size": 4,
        "val_every": 2,
        "val_windows": 4,
        "ckpt_every": 2,
        "log_every": 1,
        "threads": 1,
    }
    recipe = tmp_path / "mc.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    trainer = Trainer(load_recipe(recipe), tmp_path / "run")
    # the per-channel DAC starts from the DAC file (the tiny DAC has 3 codebooks of 64)
    dac_state = read_dac_file(tiny_dac_path)["state_dict"]
    assert all(torch.equal(trainer.model.mc.dac.state_dict()[k], v) for k, v in dac_state.items())
    batch = trainer.model.make_batch(trainer.train_bank, 4, np.random.default_rng(0), "cpu")
    n = batch["x"].shape[1]
    assert (
        1 <= n <= 5
        and batch["x"].shape[0] == max(1, 8 // n)
        and batch["positions"].shape == (batch["x"].shape[0], n, 3)
    )
    assert batch["known"].all()  # 10-20 names have positions
    assert tuple(trainer.val_batch["x"].shape[:2]) == (
        4,
        5,
    )  # validation: val_windows windows of max_channels
    trainer.fit()
    trainer.close()
    codec = load_codec(tmp_path / "run" / "best.pth")
    assert codec.info.kind == "dac-mc" and codec.info.name == "mc-test"
    assert len(trainer.history) == 2 and "prd_k1" in trainer.history[-1]


@needs_shared
def test_real_montages_map_to_positions(mc_path):
    """64-ch EEGBCI (trailing dots), 19+2-ch EEGMAT ('EEG Fp1', old T3..T6), 32-ch EEGLAB (EOG channels)."""
    from eegcodec.backends.registry import load_codec
    from eegcodec.format.container import Archive
    from eegcodec.io import read_raw
    from eegcodec.pipeline import compress_raw, decompress_archive

    codec = load_codec(mc_path)
    cases = {
        "eegbci_S001/S001R01.edf": (64, 64),
        "eegmat/Subject10_1.edf": (21, 20),
        "eeglab_sample/eeglab_data.set": (32, 30),
    }
    for rel, (n, n_known) in cases.items():
        raw = read_raw(SHARED_EEG / rel, preload=True).crop(0, 8, include_tmax=False)
        arc = Archive.from_bytes(compress_raw(raw, codec, n_codebooks=1))
        known = arc.header.montage["known"]
        assert len(known) == n and sum(known) == n_known, (
            rel
        )  # EEGMAT: 'ECG ECG'; EEGLAB: EOG1, EOG2 fall back
        assert decompress_archive(arc, codec).n_times == raw.n_times
