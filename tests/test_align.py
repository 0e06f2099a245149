"""Encoder B and the shared-space mapper: frames, losses, splits, the paired loader, end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import mne
import numpy as np
import pytest
import soundfile as sf
import torch

from eegcodec.adapt import AdapterConfig
from eegcodec.align.config import AlignLossConfig, PairsConfig
from eegcodec.align.dataset import AlignSet
from eegcodec.align.encoders import FrameGrid, eeg_window
from eegcodec.align.model import AlignModel, align_cosine, align_infonce, align_mse, reconstruction
from eegcodec.align.pairs import Pair, read_manifest, split_pairs, window_offsets
from eegcodec.align.scoring import block_permutation, candidate_sweep, chance, score_windows
from eegcodec.cli import main
from eegcodec.errors import EegcodecError

# ----------------------------------------------------------------------------- frames


def test_frame_grid_of_mc_small_and_dac16k():
    g = FrameGrid(3.2, 64 / 160, 320 / 16000)
    assert (g.eeg_frames, g.audio_frames, g.ratio, g.context_seconds) == (8, 160, 20, 0.4)


@pytest.mark.parametrize("window,eeg,audio", [(3.0, 0.4, 0.02), (3.2, 0.4, 0.03), (0.2, 0.4, 0.02)])
def test_frame_grid_refuses_windows_that_do_not_tile(window, eeg, audio):
    with pytest.raises(EegcodecError):
        FrameGrid(window, eeg, audio)


def test_model_shapes_follow_the_grid():
    g = FrameGrid(3.2, 0.4, 0.02)
    m = AlignModel(dim_a=12, dim_b=40, ratio=g.ratio, shared_dim=16, hidden=24)
    out = m(torch.randn(3, 12, g.audio_frames), torch.randn(3, 40, g.eeg_frames + 2))
    assert out["z_a"].shape == out["z_b"].shape == (3, 16, g.eeg_frames)
    assert out["e_a_hat"].shape == out["e_a"].shape == (3, 12, g.audio_frames)


def test_audio_frames_map_to_their_eeg_frame():
    """Z_A frame f depends only on audio frames [r*f, r*(f+1))."""
    m = AlignModel(dim_a=4, dim_b=8, ratio=5, shared_dim=6, hidden=8).eval()
    e_a = torch.randn(1, 4, 20, requires_grad=True)
    m.map_a(e_a)[0, :, 2].sum().backward()
    touched = (e_a.grad[0].abs().sum(0) > 0).nonzero().flatten().tolist()
    assert touched == list(range(10, 15))


def test_eeg_side_sees_one_context_frame_each_side():
    m = AlignModel(dim_a=4, dim_b=8, ratio=5, shared_dim=6, hidden=8, dropout=0.0).eval()
    e_b = torch.randn(1, 8, 6, requires_grad=True)  # F_B = 4 plus 2 context frames
    z = m.map_b(e_b)
    assert z.shape[-1] == 4
    z[0, :, 0].sum().backward()
    assert (e_b.grad[0].abs().sum(0) > 0).nonzero().flatten().tolist() == [0, 1, 2]


def test_eeg_window_mirrors_outside_the_recording():
    x = np.arange(10, dtype=float)[None]
    assert eeg_window(x, 1.0, -2, 5).tolist() == [[2, 1, 0, 1, 2]]
    assert eeg_window(x, 1.0, 7, 5).tolist() == [[7, 8, 9, 8, 7]]
    assert eeg_window(x, 1.0, 3, 4).tolist() == [[3, 4, 5, 6]]


# ----------------------------------------------------------------------------- losses


def test_mse_and_cosine_on_hand_cases():
    a = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])
    b = torch.tensor([[[1.0, 1.0]], [[0.0, -2.0]]])
    assert math.isclose(float(align_mse(a, b)), (0 + 1 + 0 + 16) / 4)
    # window 0: cos((1,0),(1,1)) = 1/sqrt2; window 1: cos = -1
    assert math.isclose(float(align_cosine(a, b)), ((1 - 2**-0.5) + 2) / 2, rel_tol=1e-6)
    assert float(align_cosine(a, a)) == pytest.approx(0, abs=1e-7)


def test_infonce_on_orthogonal_pairs():
    """Z_A = Z_B = orthonormal rows: logits s on the diagonal, 0 elsewhere, so both
    directions give log(1 + (B-1) e^-s)."""
    n, s = 4, 5.0
    z = torch.eye(n)[:, :, None]
    got = float(align_infonce(z, z, torch.tensor(math.log(s))))
    assert got == pytest.approx(math.log(1 + (n - 1) * math.exp(-s)), rel=1e-6)
    # swapped partners are penalised
    assert float(align_infonce(z, z.flip(0), torch.tensor(math.log(s)))) > got + 1


def test_infonce_temperature_is_capped():
    z = torch.eye(3)[:, :, None]
    assert float(align_infonce(z, z, torch.tensor(20.0))) == pytest.approx(
        float(align_infonce(z, z, torch.tensor(math.log(100))))
    )


def test_reconstruction_loss_value():
    assert float(reconstruction(torch.zeros(2, 3, 4), torch.ones(2, 3, 4) * 2)) == 4.0


def test_loss_config_checks():
    with pytest.raises(EegcodecError):
        AlignLossConfig(align="l1")
    with pytest.raises(EegcodecError):
        AlignLossConfig(lambda_align=0, lambda_rec=0)


# ----------------------------------------------------------------------------- retrieval


class _Identity(torch.nn.Module):
    """A mapper whose spaces are its inputs, to check the scoring arithmetic."""

    def map_b(self, e):
        return e

    def map_a(self, e):
        return e

    def predict(self, z):
        return z

    def standardise_a(self, e):
        return e


def test_retrieval_ranks_and_chance():
    cand = torch.eye(12)[:, :, None]  # 12 orthogonal segments
    truth = torch.arange(12)
    e_b = cand.clone()
    e_b[3] = cand[5]  # window 3 looks like segment 5: its true segment ties at 0 with 10 others, rank 2
    s = score_windows(_Identity(), e_b, cand, truth)
    assert s["top1"] == pytest.approx(11 / 12) and s["top10"] == 1.0
    assert s["cosine"] == pytest.approx(11 / 12) and s["cosine_mismatched"] < 0.2
    c = chance(12, s)
    assert c["top1"] == pytest.approx(1 / 12) and c["top10"] == pytest.approx(10 / 12)


def _clustered_set(seed: int, informative: bool) -> tuple[AlignSet, torch.Tensor]:
    """3 subjects x 8 stimuli x 5 overlapping windows: each window is a slice of one sequence per
    (subject, stimulus), as overlapping EEG windows are; the audio segments likewise per stimulus.
    ``informative``: the EEG sequence is the stimulus's audio sequence plus noise; else unrelated."""
    rng = np.random.default_rng(seed)
    n_sub, n_stim, n_off, width = 3, 8, 5, 6
    audio = rng.normal(size=(n_stim, n_off + width))
    e_a = torch.tensor(np.stack([audio[s, o : o + width] for s in range(n_stim) for o in range(n_off)]))
    e_b, segment, pair, offset = [], [], [], []
    for sj in range(n_sub):
        for s in range(n_stim):
            seq = (
                audio[s] + rng.normal(0, 1.5, n_off + width)
                if informative
                else rng.normal(size=n_off + width)
            )
            for o in range(n_off):
                e_b.append(seq[o : o + width])
                segment.append(s * n_off + o)
                pair.append(sj * n_stim + s)
                offset.append(0.4 * o)
    data = AlignSet(
        torch.tensor(np.stack(e_b))[:, :, None].float(),
        e_a[:, :, None].float(),
        torch.tensor(segment),
        torch.tensor(pair),
        np.array(offset),
        [f"sub{p // n_stim}" for p in range(n_sub * n_stim)],
        [f"stim{p % n_stim}" for p in range(n_sub * n_stim)],
        ["test"] * (n_sub * n_stim),
    )
    return data, data.rows("test")


def test_block_permutation_null_is_calibrated_and_detects_a_real_signal():
    """Under no relation (overlapping, clustered windows) the p-values are not small more often
    than they should be; a real relation gives a tiny p."""
    nulls = [block_permutation(_Identity(), *_clustered_set(seed, False), n_draws=200) for seed in range(60)]
    for key in ("p_top1", "p_top10"):
        p = np.array([r[key] for r in nulls])
        assert np.mean(p < 0.05) <= 0.15 and 0.3 < np.median(p) < 0.7, (key, np.sort(p)[:8])
    real = block_permutation(_Identity(), *_clustered_set(0, True), n_draws=200)
    assert real["p_top1"] < 0.01 and real["top1"] > real["null95_top1"]
    sweep = candidate_sweep(_Identity(), *_clustered_set(0, True), draws=5)
    assert [r["candidates"] for r in sweep] == [10, 20, 40]  # 2, 4, 8 stimuli of 5 segments
    assert all(r["top1"] > 3 * r["chance_top1"] for r in sweep)
    assert sweep[0]["top1"] > sweep[-1]["top1"]  # more candidates, harder


def test_block_bootstrap_interval():
    """All hits in one block of four: the interval spans what drawing that block 0..4 times gives;
    equal blocks give a zero-width interval; the observed score lies inside."""
    from eegcodec.align.scoring import _block_bootstrap

    rng = np.random.default_rng(0)
    block = np.repeat(np.arange(4), 5)
    hits = np.zeros((20, 2))
    hits[:5] = 1
    (lo1, hi1), _ = _block_bootstrap(hits, block, rng, 4000)
    assert lo1 == 0.0 and 0.5 <= hi1 <= 0.75 and lo1 <= 0.25 <= hi1
    (lo, hi), _ = _block_bootstrap(np.tile([[1.0, 0.0]], (20, 1)), block, rng, 100)
    assert lo == hi == 1.0
    real = block_permutation(_Identity(), *_clustered_set(0, True), n_draws=200)
    assert real["ci95_top1"][0] <= real["top1"] <= real["ci95_top1"][1]
    assert real["ci95_top10"][0] <= real["top10"] <= real["ci95_top10"][1]


# ----------------------------------------------------------------------------- pairs


def _pairs(n_sub=8, n_stim=16):
    return [
        Pair(Path(f"s{s}.fif"), Path(f"a{t}.wav"), 0.0, None, f"sub{s}", f"stim{t}")
        for s in range(n_sub)
        for t in range(n_stim)
    ]


@pytest.mark.parametrize("by", ["subject", "stimulus", "both"])
def test_splits_keep_subjects_and_stimuli_apart(by):
    pairs = _pairs()
    splits = split_pairs(pairs, PairsConfig(split_by=by, test_fraction=0.25, val_fraction=0.125))
    side = {}
    for p, s in zip(pairs, splits):
        if s is None:
            continue
        for key in ([p.subject] if by != "stimulus" else []) + ([p.stimulus] if by != "subject" else []):
            side.setdefault(key, set()).add(s)
    assert all(len(v) == 1 for v in side.values())
    assert {"train", "val", "test"} <= set(splits)
    if by == "both":
        assert None in splits  # cross pairs (train subject x test stimulus) are left out


def test_named_test_subjects_and_unknown_names():
    pairs = _pairs()
    splits = split_pairs(
        pairs, PairsConfig(split_by="subject", test_subjects=["sub3"], val_subjects=["sub0"])
    )
    assert {p.subject for p, s in zip(pairs, splits) if s == "test"} == {"sub3"}
    assert {p.subject for p, s in zip(pairs, splits) if s == "val"} == {"sub0"}
    with pytest.raises(EegcodecError, match="not in the manifest"):
        split_pairs(pairs, PairsConfig(test_subjects=["nobody"]))


def test_window_offsets():
    assert window_offsets(4.8, 3.2, 0.4).tolist() == [0.0, 0.4, 0.8, 1.2, 1.6]
    assert window_offsets(3.0, 3.2, 0.4).size == 0


def test_manifest_errors_name_the_row(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    m = tmp_path / "m.csv"
    m.write_text("eeg,audio,onset\nmissing.fif,a.wav,1.0\n")
    with pytest.raises(EegcodecError, match="row 2: file not found"):
        read_manifest(m)
    m.write_text("eeg,audio\nx,y\n")
    with pytest.raises(EegcodecError, match="missing onset"):
        read_manifest(m)
    with pytest.raises(EegcodecError, match="must be .csv"):
        read_manifest(tmp_path / "a.wav")


def test_manifest_defaults_subject_and_stimulus(tmp_path):
    (tmp_path / "rec.fif").write_bytes(b"")
    (tmp_path / "song.wav").write_bytes(b"")
    m = tmp_path / "m.json"
    m.write_text(json.dumps([{"eeg": "rec.fif", "audio": "song.wav", "onset": 2.5}]))
    (p,) = read_manifest(m)
    assert (p.subject, p.stimulus, p.onset, p.duration) == ("rec", "song", 2.5, None)


# ----------------------------------------------------------------------------- end to end


NAMES = ["Fz", "FCz", "Cz", "CPz", "Pz", "C3", "C4", "Oz"]


@pytest.fixture(scope="module")
def paired_set(tmp_path_factory):
    """A tiny semi-synthetic set on synthetic background EEG (4 subjects, 12 stimuli)."""
    from eegcodec.align.synthetic import SyntheticConfig, make_synthetic

    root = tmp_path_factory.mktemp("align")
    bg = root / "background"
    bg.mkdir()
    rng = np.random.default_rng(0)
    for s in range(4):
        x = rng.normal(0, 20e-6, (len(NAMES), int(70 * 128)))
        mne.io.RawArray(x, mne.create_info(NAMES, 128.0, "eeg"), verbose="error").save(
            bg / f"sub-{s:02d}_raw.fif", verbose="error"
        )
    cfg = SyntheticConfig(background=[str(bg)], n_stimuli=12, n_codec_clips=2, snr_db=0.0)
    make_synthetic(root / "data", cfg)
    return root / "data"


@pytest.fixture(scope="module")
def audio_codec(tmp_path_factory):
    """A small random 16 kHz DAC (hop 320, as dac_16khz) in DAC's format: encoder A."""
    from eegcodec.backends.dac.files import save_dac_file
    from eegcodec.backends.dac.network import build_dac

    torch.manual_seed(0)
    model = build_dac(
        dict(
            encoder_dim=4,
            encoder_rates=[2, 4, 5, 8],
            decoder_dim=16,
            decoder_rates=[8, 5, 4, 2],
            n_codebooks=2,
            codebook_size=16,
            codebook_dim=4,
            sample_rate=16000,
        )
    )
    path = tmp_path_factory.mktemp("audio") / "audio.pth"
    save_dac_file(model, path, {"name": "audio-tiny", "adapter": AdapterConfig(model_rate=16000.0).to_dict()})
    return path


def test_synthetic_set_is_labelled_and_consistent(paired_set):
    meta = json.loads((paired_set / "dataset.json").read_text())
    assert meta["kind"] == "semi-synthetic" and len(meta["subjects"]) == 4
    with (paired_set / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (paired_set / "manifest_control.csv").open() as fh:
        ctl = list(csv.DictReader(fh))
    assert len(rows) == len(ctl) == 4 * 12
    assert all(r["kind"] == "semi-synthetic" for r in rows) and all("control" in r["kind"] for r in ctl)
    # the response is really there: EEG minus its control is non-zero, and only during stimuli
    a = mne.io.read_raw_fif(paired_set / rows[0]["eeg"], verbose="error").get_data()
    b = mne.io.read_raw_fif(paired_set / ctl[0]["eeg"], verbose="error").get_data()
    diff = np.abs(a - b).max(0)
    assert diff.max() > 1e-7
    assert diff[: int(0.15 * 128)].max() < 1e-12  # before the first onset (gap 0.2 s)
    audio, rate = sf.read(paired_set / rows[0]["audio"])
    assert rate == 16000 and audio.size == int(4.8 * 16000)


def test_bench_speed_times_encoder_b_embedding(paired_set, audio_codec, tmp_path):
    """bench speed --embed: encoder B's embedding of a set in its own process, with an empty
    cache (the set's own cache untouched); the report gives the rate and the full set's minutes
    (with --busy, a second row beside the busy loop: ``_embed_beside``)."""
    from eegcodec.bench.speed_tokens import FULL_SET_PAIRS

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "align_dac.yaml"
    out = tmp_path / "speed"
    args = [
        "bench",
        "speed",
        "--out",
        str(out),
        "--models",
        "lossless",
        "--minutes",
        "0.05",
        "--channels",
        "2",
    ]
    args += ["--repeats", "1", "--embed", str(paired_set), "--embed-recipe", str(recipe)]
    sets = [f"encoder_a={audio_codec}", "data.test_subjects=[]", "data.val_subjects=[]"]
    sets.append("data.step_seconds=1.6")  # fewer windows: a shorter test
    cached = sorted((paired_set / ".eegcodec_cache").glob("*"))
    assert main(args + ["--embed-set", *sets, "-q"]) == 0
    assert sorted((paired_set / ".eegcodec_cache").glob("*")) == cached  # the set's own cache untouched
    res = json.loads((out / "results.json").read_text())
    (quiet,) = res["embed_rows"]
    assert quiet["busy"] is False and quiet["pairs"] == 4 * 12 and quiet["windows"] > 0
    assert quiet["pairs_per_s"] == pytest.approx(48 / quiet["embed_s"])
    assert f"minutes for {FULL_SET_PAIRS} pairs" in (out / "report.md").read_text()


def test_align_train_eval_decode(paired_set, audio_codec, tmp_path):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "align_dac.yaml"
    run = tmp_path / "run"
    common = [
        "--set",
        f"encoder_a={audio_codec}",
        "--set",
        "data.test_subjects=[]",
        "--set",
        "data.val_subjects=[]",
        "--set",
        "batch_size=16",
        "--set",
        "model.hidden=32",
        "--set",
        "model.shared_dim=16",
        "--set",
        "threads=1",
    ]
    assert (
        main(
            [
                "align",
                "train",
                str(recipe),
                "--data",
                str(paired_set),
                "--out",
                str(run),
                "--set",
                "steps=6",
                "--set",
                "val_every=3",
                *common,
            ]
        )
        == 0
    )
    for f in ("best.pth", "model.pth", "state.pt", "history.json", "splits.json", "recipe.yaml"):
        assert (run / f).exists(), f
    splits = json.loads((run / "splits.json").read_text())
    assert not set(splits["train"]["subjects"]) & set(splits["test"]["subjects"])
    # resume continues from the checkpoint
    assert (
        main(
            [
                "align",
                "train",
                str(recipe),
                "--data",
                str(paired_set),
                "--out",
                str(run),
                "--resume",
                "--set",
                "steps=8",
                "--set",
                "val_every=4",
                *common,
            ]
        )
        == 0
    )
    assert json.loads((run / "history.json").read_text())[-1]["step"] == 8

    out = tmp_path / "eval"
    assert main(["align", "eval", str(run), "--data", str(paired_set), "--out", str(out), "-q"]) == 0
    res = json.loads((out / "results.json").read_text())
    for k in ("test", "control", "chance"):
        assert 0 <= res[k]["top1"] <= res[k]["top10"] <= 1
    # the control EEG holds no response: at chance under the block-permutation null (windows of
    # one subject and stimulus overlap, so they move together)
    null = res["control"]["block_null"]
    assert null["p_top1"] > 0.05 and null["p_top10"] > 0.05, null
    assert 0 < res["test"]["block_null"]["null95_top10"] <= 1
    assert res["chance"]["top1"] == pytest.approx(1 / res["test"]["n_candidates"])
    assert res["label"] == "semi-synthetic"
    assert (out / "similarity.png").exists() and (out / "example0_from_eeg.wav").exists()

    wav = tmp_path / "pred.wav"
    eeg = next((paired_set / "eeg").glob("*.fif"))
    assert (
        main(["align", "decode", str(run), str(eeg), "-o", str(wav), "--start", "1.0", "--seconds", "7"]) == 0
    )
    audio, rate = sf.read(wav)
    assert rate == 16000 and audio.size == 2 * 3.2 * 16000  # two whole 3.2-s windows


def test_mapper_refuses_other_encoder_weights(paired_set, audio_codec, tmp_path):
    from eegcodec.align.trainer import load_mapper

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "align_dac.yaml"
    run = tmp_path / "run"
    assert (
        main(
            [
                "align",
                "train",
                str(recipe),
                "--data",
                str(paired_set),
                "--out",
                str(run),
                "--set",
                f"encoder_a={audio_codec}",
                "--set",
                "data.test_subjects=[]",
                "--set",
                "data.val_subjects=[]",
                "--set",
                "steps=1",
                "--set",
                "model.hidden=16",
            ]
        )
        == 0
    )
    blob = torch.load(run / "best.pth", weights_only=False)
    blob["encoder_a"]["sha256"] = "0" * 64
    torch.save(blob, tmp_path / "other.pth")
    with pytest.raises(EegcodecError, match="other weights"):
        load_mapper(tmp_path / "other.pth")
    (tmp_path / "cut.pth").write_bytes((run / "best.pth").read_bytes()[:1000])
    assert (
        main(
            [
                "align",
                "eval",
                str(tmp_path / "cut.pth"),
                "--data",
                str(paired_set),
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 1
    )


def test_finetuned_encoder_b_trains_only_its_tail_and_writes_a_codec(paired_set, audio_codec, tmp_path):
    """finetune_b: the straight-through E_B equals what the tokens give; only the encoder's
    tail and channel attention move; the tuned encoder is a model file that eval, compress
    and the mapper load, and align eval runs on it."""
    from eegcodec.align.encoders import EEGEncoder
    from eegcodec.align.finetune import TunableEncoderB
    from eegcodec.backends.registry import load_codec, resolve_model

    enc = EEGEncoder("default")
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 0.1, (len(NAMES), 640))).astype(np.float32)
    frozen = enc.embed(x, NAMES)
    tune = TunableEncoderB("default", 2, enc.depth, enc.rows)
    mont = enc.codec.montage(NAMES)
    emb = tune.channel_embedding(torch.from_numpy(mont.positions)[None], torch.from_numpy(mont.known)[None])
    live = tune.e_b(tune.quantized(torch.from_numpy(x)[None], emb))[0]
    assert live.shape == frozen.shape and torch.allclose(live, frozen, atol=1e-4), (live - frozen).abs().max()

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "align_dac.yaml"
    run = tmp_path / "tuned"
    args = ["align", "train", str(recipe), "--data", str(paired_set), "--out", str(run)]
    sets = [f"encoder_a={audio_codec}", "data.test_subjects=[]", "data.val_subjects=[]", "batch_size=8"]
    sets += ["model.hidden=16", "steps=3", "val_every=3", "threads=1", "finetune_b.blocks=2"]
    sets += ["finetune_b.codec_windows=2", "finetune_b.lr_scale=10"]
    assert main(args + [a for kv in sets for a in ("--set", kv)]) == 0
    tuned_file = run / "best_encoder_b.pth"
    blob = torch.load(run / "best.pth", weights_only=False)
    assert Path(blob["encoder_b"]["name"]) == tuned_file.resolve()
    assert "codec_prd" in json.loads((run / "history.json").read_text())[-1]

    before = torch.load(resolve_model("default")[0], weights_only=False)["state_dict"]
    after = torch.load(tuned_file, weights_only=False)["state_dict"]
    assert before.keys() == after.keys()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(
        k.startswith(("dac.encoder.block.4", "dac.encoder.block.5", "aggregate.")) for k in moved
    )
    codec = load_codec(tuned_file)
    assert codec.info.name.endswith("-finetuned") and codec.info.weights_sha256 == blob["encoder_b"]["sha256"]
    codes = codec.encode_channels(x, enc.depth, codec.montage(NAMES))
    assert codec.decode_channels(codes, codec.montage(NAMES)).shape == x.shape

    moved = run.rename(tmp_path / "moved")  # a run folder moved whole still finds its encoder B
    out = tmp_path / "eval"
    assert main(["align", "eval", str(moved), "--data", str(paired_set), "--out", str(out), "-q"]) == 0
    assert json.loads((out / "results.json").read_text())["test"]["n_candidates"] > 0


def test_finetune_refuses_a_per_channel_encoder(tmp_path):
    from eegcodec.align.finetune import TunableEncoderB

    with pytest.raises(EegcodecError, match="DAC-MC"):
        TunableEncoderB("dac-small", 2, 4, 1)
    with pytest.raises(EegcodecError, match="blocks must be in"):
        TunableEncoderB("default", 99, 6, 8)


def test_odd_stride_dac_decodes_whole_frames():
    """dac_16khz's stride 5 makes DAC's decoder return 8 samples fewer than frames x hop."""
    from eegcodec.backends.dac.network import build_dac, fit_length

    m = build_dac(
        dict(
            encoder_dim=4,
            encoder_rates=[2, 4, 5, 8],
            decoder_dim=16,
            decoder_rates=[8, 5, 4, 2],
            n_codebooks=1,
            codebook_size=8,
            codebook_dim=2,
            sample_rate=16000,
        )
    ).eval()
    with torch.no_grad():
        y = m.decode(m.encode(torch.zeros(1, 1, 3200))[0])
    assert y.shape[-1] < 3200
    assert fit_length(y, 3200).shape[-1] == 3200


def test_shipped_encoder_a_is_what_the_recipe_names():
    """A fresh install runs encoder B's recipe: its encoder A ships with the package."""
    from eegcodec.align.config import AlignConfig
    from eegcodec.align.encoders import AudioEncoder
    from eegcodec.train.config import load_recipe

    cfg = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "align_dac.yaml", cls=AlignConfig)
    enc = AudioEncoder(cfg.encoder_a)
    assert cfg.encoder_a == "audio-dac-small" and enc.rate == 16000 and enc.hop == 320
    e = enc.embed(np.zeros(16000, np.float32))
    assert tuple(e.shape) == (enc.dim, 50)
