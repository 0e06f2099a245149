"""The trainer: recipes, checkpoints, TensorBoard logs, exact resume, export."""

import json
from pathlib import Path

import mne
import numpy as np
import pytest
import yaml
from conftest import synthetic_raw

from eegcodec.errors import EegcodecError
from eegcodec.train.config import load_recipe
from eegcodec.train.trainer import Trainer
from tools.fuzz import TINY_DAC


@pytest.fixture
def recipe(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        mne.export.export_raw(
            data / f"sub{i}.edf", synthetic_raw(n_ch=3, seconds=12, seed=i, stim=False), verbose="error"
        )
    cfg = {
        "name": "test-model",
        "model": {**TINY_DAC, "codebook_size": 32, "quantizer_dropout": 0.5},
        "adapter": {"model_rate": 160.0, "chunk_seconds": 6.0},
        "data": {
            "root": str(data),
            "train": ["sub[0-2].edf"],
            "val": ["sub3.edf"],
            "window_seconds": 1.0,
            "cache_dir": str(tmp_path / "cache"),
        },
        "optim": {"lr": 0.003, "warmup_steps": 2, "vq_warmup_steps": 2, "code_reset_every": 2},
        "steps": 6,
        "batch_size": 4,
        "val_every": 3,
        "val_windows": 8,
        "ckpt_every": 3,
        "log_every": 1,
        "threads": 1,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_recipe_overrides_and_unknown_keys(recipe):
    cfg = load_recipe(recipe, ["optim.lr=0.01", "steps=9"])
    assert cfg.optim.lr == 0.01 and cfg.steps == 9 and cfg.adapter.chunk_seconds == 6.0
    with pytest.raises(EegcodecError, match="unknown recipe keys"):
        load_recipe(recipe, ["optim.learning_rate=1"])


def test_train_writes_checkpoints_logs_and_a_usable_model(recipe, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(load_recipe(recipe), out)
    trainer.fit()
    trainer.close()
    for name in ["state.pt", "model.pth", "best.pth", "recipe.yaml", "history.json"]:
        assert (out / name).exists(), name
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert len(trainer.history) == 2 and {"prd_k1", "prd_k3", "snr_k3", "spec_db_k1", "spec_db_k3"} <= set(
        trainer.history[-1]
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb"), size_guidance={"images": 0}).Reload()
    assert {"val/reconstruction", "val/psd"} <= set(events.Tags()["images"])
    assert {"train/l1", "train/lr", "val/prd_k1", "val/spec_db_k3", "codebook/perplexity_q0"} <= set(
        events.Tags()["scalars"]
    )

    import eegcodec

    codec = eegcodec.load_codec(out / "best.pth")
    assert codec.info.name == "test-model" and codec.info.adapter.chunk_seconds == 6.0
    raw = synthetic_raw(n_ch=2, seconds=8, stim=False)
    back = eegcodec.decompress(eegcodec.compress(raw, None, codec, n_codebooks=2), codec=codec)
    assert back.n_times == raw.n_times


def test_resume_continues_exactly(recipe, tmp_path):
    straight = Trainer(load_recipe(recipe), tmp_path / "a")
    losses_a = [straight.train_step()["total"] for _ in range(6)]
    straight.close()

    first = Trainer(load_recipe(recipe), tmp_path / "b")
    first.fit(steps=3)
    first.close()
    resumed = Trainer(load_recipe(recipe), tmp_path / "b", resume=True)
    assert resumed.step == 3
    losses_b = [resumed.train_step()["total"] for _ in range(3)]
    resumed.close()
    np.testing.assert_allclose(losses_b, losses_a[3:], rtol=1e-6)


def test_train_and_val_must_not_share_recordings(recipe):
    with pytest.raises(EegcodecError, match="both train and val"):
        Trainer(load_recipe(recipe, ["data.val=[sub0.edf]"]), recipe.parent / "run")


def test_two_process_torchrun_on_cpu(recipe, tmp_path):
    """torchrun --nproc_per_node 2 (gloo) trains codec and discriminators, checkpoints and logs."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        "-m",
        "eegcodec.cli",
        "train",
        str(recipe),
        "--out",
        str(out),
        "--steps",
        "4",
        "--set",
        "loss.adversarial=1",
        "--set",
        "loss.gan_fft_sizes=[64,32]",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "state.pt").exists() and (out / "best.pth").exists()
    assert list((out / "tb").glob("events.out.tfevents.*"))
    import torch

    state = torch.load(out / "state.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 4 and len(state["rank_rngs"]) == 2


def _wavtokenizer_recipe(recipe, tmp_path, **changes):
    cfg = yaml.safe_load(recipe.read_text())
    cfg.update(
        family="wavtokenizer",
        model=dict(
            variant="75",
            sample_rate=160,
            strides=[2, 4],
            n_filters=4,
            dimension=32,
            codebook_size=64,
            backbone_dim=32,
            intermediate_dim=48,
            num_layers=2,
            n_fft=16,
        ),
        loss={"l1": 1.0, "l2": 1.0, "stft": 0.0, "commitment": 1.0, "codebook": 0.0},
        **changes,
    )
    cfg["optim"]["code_reset_every"] = 0
    path = tmp_path / "wt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_recipe(path)


def test_wavtokenizer_recipe_trains_resumes_and_exports(recipe, tmp_path):
    import eegcodec

    cfg = _wavtokenizer_recipe(recipe, tmp_path, name="wt-test")
    straight = Trainer(cfg, tmp_path / "a")
    losses_a = [straight.train_step()["total"] for _ in range(4)]
    straight.close()
    first = Trainer(cfg, tmp_path / "b")
    first.fit(steps=3)
    first.close()
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    losses_b = [resumed.train_step()["total"]]
    resumed.close()
    np.testing.assert_allclose(losses_b, losses_a[3:], rtol=1e-6)  # EMA codebook buffers restored too

    codec = eegcodec.load_codec(tmp_path / "b" / "best.pth")
    assert (codec.info.kind, codec.info.name, codec.info.hop_length, codec.info.codebook_size) == (
        "wavtokenizer",
        "wt-test",
        8,
        64,
    )
    raw = synthetic_raw(n_ch=2, seconds=8, stim=False)
    back = eegcodec.decompress(eegcodec.compress(raw, None, codec), codec=codec)
    assert back.n_times == raw.n_times


def test_wavtokenizer_finetune_starts_from_an_official_layout_checkpoint(recipe, tmp_path):
    import torch

    from eegcodec.backends.wavtokenizer.trainable import WavTokenizerTrainable

    donor = WavTokenizerTrainable(_wavtokenizer_recipe(recipe, tmp_path).model).wt
    state = dict(donor.state_dict())
    state["feature_extractor.encodec.decoder.model.0.conv.conv.bias"] = torch.zeros(
        4
    )  # ignored, as officially
    state["dac.discriminators.0.convs.0.bias"] = torch.zeros(4)  # dropped by prefix
    ckpt = tmp_path / "official.ckpt"
    torch.save({"global_step": 10, "state_dict": state}, ckpt)
    cfg = _wavtokenizer_recipe(recipe, tmp_path, init=f"wavtokenizer-75:{ckpt}")
    trainer = Trainer(cfg, tmp_path / "ft")
    assert trainer.vq_warmup == 0  # a pretrained codebook is not re-seeded
    for k, v in donor.state_dict().items():
        assert torch.equal(trainer.model.wt.state_dict()[k], v), k
    trainer.fit(steps=2)
    trainer.close()
    assert (tmp_path / "ft" / "best.pth").exists()


def test_adversarial_losses_train_and_resume_exactly(recipe, tmp_path):
    overrides = [
        "loss.adversarial=1.0",
        "loss.feature_matching=2.0",
        "loss.gan_fft_sizes=[64,32]",
        "loss.gan_periods=[2,3]",
    ]
    straight = Trainer(load_recipe(recipe, overrides), tmp_path / "a")
    steps_a = [straight.train_step() for _ in range(5)]
    straight.close()
    assert all(s["adversarial"] > 0 and s["feature_matching"] > 0 and s["discriminator"] > 0 for s in steps_a)
    first = Trainer(load_recipe(recipe, overrides), tmp_path / "b")
    first.fit(steps=3)
    first.close()
    resumed = Trainer(load_recipe(recipe, overrides), tmp_path / "b", resume=True)
    steps_b = [resumed.train_step() for _ in range(2)]
    resumed.close()
    for key in ("total", "discriminator"):
        np.testing.assert_allclose([s[key] for s in steps_b], [s[key] for s in steps_a[3:]], rtol=1e-5)


def test_every_shipped_recipe_loads():
    from pathlib import Path

    from eegcodec.backends.registry import FAMILIES

    recipes = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
    assert len(recipes) >= 10
    from eegcodec.align.config import load_align_recipe

    for path in recipes:
        if path.name.startswith("align"):  # `eegcodec align train` recipes
            assert load_align_recipe(path).loss.align in ("mse", "cosine", "infonce"), path.name
            continue
        cfg = load_recipe(path)
        assert cfg.family in FAMILIES and cfg.data.train, path.name
    ft, vocab = (
        load_recipe(recipes[0].parent / "dac16k_finetune_rate250.yaml"),
        load_recipe(recipes[0].parent / "dac16k_scratch_vocab256.yaml"),
    )
    assert (
        ft.init == "dac_16khz" and ft.adapter.model_rate == 250.0 and ft.loss.adversarial == 1.0
    )  # base merged, section by section
    assert (
        vocab.init == "scratch" and vocab.model["codebook_size"] == 256 and vocab.model["decoder_dim"] == 1536
    )


def test_finetune_from_dacs_cache_takes_the_files_arguments(recipe, tmp_path, monkeypatch):
    """init: dac_16khz resolves through DAC's cache; the architecture comes from the file."""
    import torch

    from eegcodec.backends.dac.format import dac_cache_path
    from eegcodec.backends.dac.network import build_dac

    monkeypatch.setenv("HOME", str(tmp_path))
    kwargs = {**TINY_DAC, "codebook_size": 32, "sample_rate": 16000}
    torch.manual_seed(3)
    pretrained = build_dac(kwargs)
    path = dac_cache_path("16khz", "8kbps")
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": pretrained.state_dict(), "metadata": {"kwargs": kwargs}}, path)
    cfg = load_recipe(recipe, ["init=dac_16khz", "model={}"])
    trainer = Trainer(cfg, tmp_path / "ft")
    assert trainer.vq_warmup == 0 and trainer.model.codebook_size == 32
    for k, v in pretrained.state_dict().items():
        assert torch.equal(trainer.model.dac.state_dict()[k], v), k
    trainer.fit(steps=2)
    trainer.close()
    assert (tmp_path / "ft" / "best.pth").exists()


def test_data_from_folders_manifests_and_subject_splits(tmp_path):
    from eegcodec.train.config import DataConfig
    from eegcodec.train.data import list_recordings, split_recordings

    for sub in ("01", "02", "03"):
        d = tmp_path / f"sub-{sub}" / "eeg"
        d.mkdir(parents=True)
        for run in (1, 2):
            (d / f"sub-{sub}_run-{run}_eeg.edf").write_bytes(b"")
    (tmp_path / "sub-01" / "notes.txt").write_text("not a recording")
    assert len(list_recordings(str(tmp_path), ["."])) == 6  # a folder: recordings only, recursively
    (tmp_path / "list.txt").write_text(
        "# comment\nsub-01/eeg/sub-01_run-1_eeg.edf\n\nsub-02/eeg/sub-02_run-2_eeg.edf\n"
    )
    assert [p.name for p in list_recordings(str(tmp_path), ["list.txt"])] == [
        "sub-01_run-1_eeg.edf",
        "sub-02_run-2_eeg.edf",
    ]
    (tmp_path / "m.csv").write_text(
        "path,subject\nsub-01/eeg/sub-01_run-1_eeg.edf,alice\nsub-03/eeg/sub-03_run-1_eeg.edf,bob\n"
    )
    assert list(list_recordings(str(tmp_path), ["m.csv"]).values()) == ["alice", "bob"]
    (tmp_path / "bad.csv").write_text("path\nsub-09/missing.edf\n")
    with pytest.raises(EegcodecError, match="missing file"):
        list_recordings(str(tmp_path), ["bad.csv"])

    train, val = split_recordings(
        DataConfig(root=str(tmp_path), train=["sub-*/eeg/*.edf"], split_by="subject", val_fraction=0.34)
    )
    subjects = lambda files: {p.name.split("_")[0] for p in files}  # noqa: E731
    assert len(val) == 2 and len(subjects(val)) == 1 and not subjects(train) & subjects(val)
    train_r, val_r = split_recordings(
        DataConfig(root=str(tmp_path), train=["sub-*/eeg/*.edf"], val_fraction=0.5)
    )
    assert len(train_r) == len(val_r) == 3 and not set(train_r) & set(val_r)
    with pytest.raises(EegcodecError, match="subjects in both train and val"):
        split_recordings(
            DataConfig(
                root=str(tmp_path),
                train=["sub-01/eeg/*run-1*"],
                val=["sub-01/eeg/*run-2*"],
                split_by="subject",
            )
        )
    with pytest.raises(EegcodecError, match="recordings in both"):
        split_recordings(DataConfig(root=str(tmp_path), train=["sub-01/eeg/*"], val=["sub-01/eeg/*run-2*"]))


def test_gpu_sprint_kit_packs_and_trains_on_cpu(recipe, tmp_path):
    """The offline GPU recipe end to end on CPU: pack the recipe's windows, then the same script the GPU
    runs trains from the packed windows alone (no recording read) and stops on its time limit."""
    import os
    import subprocess
    import sys

    from eegcodec.train.data import PackedWindowBank
    from tools.sprint import pack

    sprint = tmp_path / "sprint"
    sizes = pack(str(recipe), sprint, budget_mb=0.05)  # thinned to fit
    assert set(sizes) == {"train.npz", "val.npz", "recipe.yaml"} and sizes["train.npz"] < 0.05 * 2**20
    bank = PackedWindowBank(sprint / "train.npz", hop=8, window=160)
    assert bank.chunks and bank.sample(4, np.random.default_rng(0)).shape == (4, 1, 160)
    (recipe.parent / "data").rename(tmp_path / "moved")  # the GPU machine has no recordings
    script = Path(__file__).resolve().parents[1] / "recipes" / "gpu_sprint.sh"
    env = {
        **os.environ,
        "SKIP_INSTALL": "1",
        "PYTHON": sys.executable,
        "OUT": str(tmp_path / "out"),
        "SPRINT": str(sprint),
        "MINUTES": "0.0001",  # a few milliseconds: stops after its first step
        "STEPS": "50",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "out" / "run"
    history = json.loads((run / "history.json").read_text())
    assert (run / "best.pth").exists() and 1 <= history[-1]["step"] < 50


def test_augmentation_changes_training_draws_only(recipe):
    """Each change does what it says; off by default; the trainer applies it to training draws
    and never to the fixed validation batch."""
    from eegcodec.train.augment import augment
    from eegcodec.train.config import AugmentConfig

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (4, 3, 320)).astype(np.float32)
    assert not AugmentConfig().enabled
    np.testing.assert_allclose(augment(x, AugmentConfig(), np.random.default_rng(1), 160.0), x, atol=1e-7)
    np.testing.assert_allclose(
        augment(x, AugmentConfig(sign_flip=1), np.random.default_rng(1), 160.0), -x, atol=1e-7
    )
    blinked = augment(x, AugmentConfig(blink=1), np.random.default_rng(1), 160.0)
    bump = np.abs(blinked - x).max(axis=1)  # [B, T]: one bump per window, above 5 % for < 0.8 s
    assert blinked.dtype == np.float32 and np.all(bump.max(axis=1) > 0.1)
    assert np.all((bump > 0.05 * bump.max(axis=1, keepdims=True)).sum(axis=1) < 0.8 * 160)
    busy = augment(
        x, AugmentConfig(muscle=1, drift=1, reref=1, gain_octaves=1), np.random.default_rng(2), 160.0
    )
    assert not np.allclose(busy, x)
    again = augment(
        x, AugmentConfig(muscle=1, drift=1, reref=1, gain_octaves=1), np.random.default_rng(2), 160.0
    )
    np.testing.assert_array_equal(busy, again)  # the generator decides everything

    cfg = load_recipe(recipe, ["augment.sign_flip=1.0"])
    trainer = Trainer(cfg, recipe.parent / "aug")
    try:
        plain = trainer.val_bank.sample(4, np.random.default_rng(3))
        flipped = trainer.train_bank.sample(4, np.random.default_rng(3))
        trainer.train_bank.augment = None
        as_recorded = trainer.train_bank.sample(4, np.random.default_rng(3))
        np.testing.assert_allclose(flipped, -as_recorded, atol=1e-7)
        assert trainer.val_bank.augment is None and plain.shape == flipped.shape
    finally:
        trainer.close()
