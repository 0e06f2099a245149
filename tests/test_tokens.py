"""Tokens as arrays (tokenize / detokenize / latents / save), the token store and its Dataset,
and thread sizing to the free cores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import synthetic_raw

import eegcodec
from eegcodec.adapt import AdapterConfig
from eegcodec.cli import main
from eegcodec.errors import EegcodecError
from eegcodec.format.container import Archive
from eegcodec.pipeline import archive_codes

#: decoded volts of detokenize and decompress agree to this (both decode the same codes with the
#: same side data; only float summation order could differ)
VOLTS_ATOL = 1e-9


def _file_tokens(raw, codec, depth):
    data = eegcodec.compress(raw, None, codec, n_codebooks=depth)
    return data, archive_codes(Archive.from_bytes(data), codec)


def test_tokens_are_the_files_codes_and_decode_as_the_file(pcm_codec):
    raw = synthetic_raw(n_ch=5, seconds=70)  # three 30-s chunks, 1-s overlaps
    tokens = eegcodec.tokenize(raw, pcm_codec, depth=3)
    data, file_codes = _file_tokens(raw, pcm_codec, 3)
    assert tokens.codes.dtype == np.int64 and np.array_equal(tokens.codes, file_codes)
    back, want = eegcodec.detokenize(tokens), eegcodec.decompress(data, codec=pcm_codec)
    assert back.ch_names == want.ch_names == raw.ch_names
    np.testing.assert_allclose(back.get_data(), want.get_data(), rtol=0, atol=VOLTS_ATOL)
    # shapes, times, mapping
    h = Archive.from_bytes(data).header
    assert tokens.codes.shape == (5, 3, sum(h.chunk_frames)) == (tokens.rows, tokens.depth, tokens.frames)
    assert tokens.times.shape == tokens.chunks.shape == (tokens.frames,)
    assert tokens.frame_seconds == pytest.approx(4 / 160)
    for i, (start, stop) in enumerate(h.layout.chunks()):
        t = tokens.times[tokens.chunks == i]
        assert t[0] == pytest.approx(start / 160) and np.allclose(np.diff(t), tokens.frame_seconds)
        assert t[-1] < stop / 160 <= t[-1] + tokens.frame_seconds + 1e-9
    np.testing.assert_allclose(tokens.centres - tokens.times, tokens.frame_seconds / 2)
    assert tokens.channels == raw.ch_names[:5] and tokens.row_channels == [[n] for n in raw.ch_names[:5]]
    assert not tokens.spatial and tokens.model == "pcm-test" and tokens.weights_sha256 == "0" * 64
    z = tokens.latents()
    assert z.dtype == np.float32 and z.shape == (5, 3, tokens.frames)
    np.testing.assert_array_equal(z, pcm_codec.codes_to_latents(tokens.codes).numpy())


def test_changed_codes_decode_to_a_changed_recording(pcm_codec):
    raw = synthetic_raw(n_ch=3, seconds=10, stim=False)
    tokens = eegcodec.tokenize(raw, pcm_codec, depth=4)
    plain = eegcodec.detokenize(tokens).get_data()
    tokens.codes[1] = 2048  # row 1 -> the codec's zero: the channel keeps baseline and mains alone
    changed = eegcodec.detokenize(tokens).get_data()
    assert np.array_equal(changed[[0, 2]], plain[[0, 2]]) and not np.allclose(changed[1], plain[1])
    tokens.codes = tokens.codes[:, :, :-1]
    with pytest.raises(EegcodecError, match="shape"):
        eegcodec.detokenize(tokens)


def test_dac_file_tokens_latents_and_save_load(tmp_path, tiny_dac_path):
    src = tmp_path / "rec_raw.fif"
    synthetic_raw(n_ch=4, seconds=12).save(src, verbose="error")
    tokens = eegcodec.tokenize(src, str(tiny_dac_path), depth=2)
    codec = eegcodec.load_codec(tiny_dac_path)
    data, file_codes = _file_tokens(src, codec, 2)
    assert np.array_equal(tokens.codes, file_codes)
    np.testing.assert_allclose(
        eegcodec.detokenize(tokens).get_data(),
        eegcodec.decompress(data, codec=codec).get_data(),
        rtol=0,
        atol=VOLTS_ATOL,
    )
    z = tokens.latents()
    assert z.shape == (4, codec.codes_to_latents(tokens.codes[:1]).shape[1], tokens.frames)
    path = tokens.save(tmp_path / "rec.tokens.npz")
    with pytest.raises(EegcodecError, match="exists"):
        tokens.save(path)
    back = eegcodec.Tokens.load(path)
    assert np.array_equal(back.codes, tokens.codes) and np.array_equal(back.times, tokens.times)
    assert (back.channels, back.row_channels, back.model, back.depth) == (
        tokens.channels,
        tokens.row_channels,
        tokens.model,
        2,
    )
    np.testing.assert_array_equal(back.latents(str(tiny_dac_path)), z)
    bad = tmp_path / "bad.npz"
    np.savez(bad, codes=np.zeros(3))
    with pytest.raises(EegcodecError, match="bad.npz is not a tokens file"):
        eegcodec.Tokens.load(bad)


def test_dac_mc_rows_are_spatial_tokens_over_all_channels(tmp_path):
    from test_mc import NAMES_10_20, TINY, _named_raw

    from eegcodec.backends.dac_mc.files import save_dacmc_file
    from eegcodec.backends.dac_mc.network import DACMC
    from eegcodec.backends.registry import load_codec
    from eegcodec.montage import standard_positions

    torch.manual_seed(0)
    path = tmp_path / "mc.pth"
    adapter = AdapterConfig(model_rate=160.0, chunk_seconds=8.0).to_dict()
    save_dacmc_file(
        DACMC(TINY, n_spatial=4, heads=2), path, {"name": "mc-t", "adapter": adapter}, standard_positions()
    )
    codec = load_codec(path)
    raw = _named_raw(NAMES_10_20[:6])
    tokens = eegcodec.tokenize(raw, codec, depth=2)
    assert tokens.rows == 4 and tokens.spatial
    assert tokens.row_channels == [NAMES_10_20[:6]] * 4
    assert np.array_equal(tokens.codes, _file_tokens(raw, codec, 2)[1])
    assert tokens.latents().shape == (4, codec.model.dac.latent_dim, tokens.frames)


# ---------------------------------------------------------------------------
# the token store
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """30 small recordings in three folders (6 to 9 s, 3 EEG channels and a stim channel)."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(30):
        path = root / f"sub{i % 3}" / f"rec{i:02d}_raw.fif"
        path.parent.mkdir(exist_ok=True)
        synthetic_raw(n_ch=3, seconds=6 + i % 4, seed=i).save(path, verbose="error")
    return root


def _store(path):
    """(manifest lines, {codes path: codes}) of a store."""
    lines = (path / "manifest.jsonl").read_text().splitlines()
    codes = {p.relative_to(path).as_posix(): np.load(p) for p in sorted(path.rglob("codes.npy"))}
    return lines, codes


def _tokenize(corpus, store, model, *extra):
    argv = ["tokenize", str(corpus), "-o", str(store), "--model", str(model), "--window-frames", "8", "-q"]
    return main([*argv, *extra])


def test_interrupted_and_resumed_store_equals_one_run(tmp_path, corpus, tiny_dac_path, monkeypatch):
    from eegcodec import tokenstore

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert _tokenize(corpus, whole, tiny_dac_path) == 0
    # interrupted: a third of the corpus done, one record killed while being written
    assert _tokenize(corpus, resumed, tiny_dac_path, "--shard", "1/3") == 0
    rel = "sub0/rec00_raw.fif"
    killed, tokens = tokenstore.record_dir(resumed, rel), eegcodec.tokenize(corpus / rel, str(tiny_dac_path))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenstore.os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokenstore.write_record(resumed, rel, tokens, np.int16)
    monkeypatch.undo()
    assert not killed.exists() and not list(killed.parent.glob(".*partial"))  # no half-written entry
    (killed.parent / f".{killed.name}.x1.partial").mkdir()  # what a kill -9 would leave
    assert len(_store(resumed)[1]) == 10
    assert _tokenize(corpus, resumed, tiny_dac_path) == 1  # existing records need --skip-existing
    assert _tokenize(corpus, resumed, tiny_dac_path, "--skip-existing", "--jobs", "2") == 0
    assert _store(resumed)[0] == _store(whole)[0]
    got, want = _store(resumed)[1], _store(whole)[1]
    assert got.keys() == want.keys() and len(got) == 30
    assert all(np.array_equal(got[k], want[k]) for k in want)
    assert not list(resumed.rglob("*.partial"))


def test_store_matches_tokenize_and_dataset_windows(tmp_path, corpus, tiny_dac_path):
    from eegcodec.tokenstore import TokenDataset

    store = tmp_path / "store"
    assert _tokenize(corpus, store, tiny_dac_path, "--codebooks", "2") == 0
    meta = json.loads((store / "store.json").read_text())
    assert meta["depth"] == 2 and meta["window_frames"] == 8 and meta["dtype"] == "int16"
    tokens = eegcodec.tokenize(corpus / "sub1" / "rec04_raw.fif", str(tiny_dac_path), depth=2)
    stored = np.load(store / "records/sub1/rec04_raw.fif/codes.npy", mmap_mode="r")
    assert np.array_equal(stored, tokens.codes)
    data = TokenDataset(store)
    lines = [json.loads(x) for x in (store / "manifest.jsonl").read_text().splitlines()]
    assert len(data) == len(lines) == sum(m["recording_frames"] // 8 for m in lines if m["window"] == 0)
    for i in (0, 7, len(data) - 1):
        codes, info = data[i]
        line = lines[i]
        assert codes.dtype == torch.int64 and codes.shape == (line["rows"], 2, 8)
        full = np.load(store / line["codes"])
        a = line["frame_offset"]
        assert np.array_equal(codes.numpy(), full[:, :, a : a + 8]) and info["source"] == line["source"]
    rec = [x for x in lines if x["source"] == "sub1/rec04_raw.fif"]
    assert [x["start_s"] for x in rec] == pytest.approx([tokens.times[x["frame_offset"]] for x in rec])
    assert rec[0]["channels"] == tokens.channels and rec[0]["row_mapping"] == "per_channel"
    whole = TokenDataset(store, window_frames=0)
    assert len(whole) == 30 and whole[3][0].shape[-1] == whole.lines[3]["recording_frames"]
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch[0].shape == (4, 3, 2, 8)
    # a store made with other settings is not mixed into
    assert _tokenize(corpus, store, tiny_dac_path, "--codebooks", "3", "--force") == 1


# ---------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------


def test_threads_follow_the_free_cores(tmp_path, monkeypatch):
    from eegcodec import threads
    from eegcodec.threads import CoreThreads, busy_elsewhere, threads_for

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_for(busy=0.0, cores=2) == 2
    assert threads_for(busy=1.0, cores=2) == 1  # another process on one of two cores
    assert threads_for(busy=5.0, cores=2) == 1
    assert threads_for(jobs=2, busy=0.0, cores=2) == 1
    assert threads_for(jobs=2, busy=2.0, cores=8) == 3
    assert threads_for(busy=0.0, cores=8, ceiling=3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what --jobs sets for its processes is a ceiling
    assert threads_for(busy=0.0, cores=2) == 1
    fake = tmp_path / "loadavg"
    fake.write_text("1.90 1.20 0.80 4/412 12345\n")  # this reader, one of its threads + 2 others
    tasks = tmp_path / "task"
    for tid, state in ((10, "R"), (11, "R"), (12, "S")):
        (tasks / str(tid)).mkdir(parents=True)
        (tasks / str(tid) / "stat").write_text(f"{tid} (py thon) {state} 1 2 3\n")
    assert threads.own_running(str(tasks)) == 2 and threads.own_running(str(tmp_path / "none")) == 1
    assert busy_elsewhere(str(fake), str(tasks)) == 2.0  # its own spinning thread is not another's
    assert busy_elsewhere(str(fake), str(tmp_path / "none")) == 3.0
    before = torch.get_num_threads()
    with CoreThreads(threads=1) as t:
        assert torch.get_num_threads() == 1 == t.threads
    assert torch.get_num_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 7.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    with CoreThreads() as t:
        assert t.threads == 1 == torch.get_num_threads()  # embedding: the busy cores are left alone
    with CoreThreads(load=False) as t:
        assert t.threads == 2 == torch.get_num_threads()  # chunk workers: every usable core
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------
# the linear probe benchmark
# ---------------------------------------------------------------------------


def test_probe_keeps_every_training_subject_of_the_models_apart():
    from eegcodec.bench.probe import SEEN

    assert {"S001", "Subject00", "Subject09"} <= SEEN and not {"S002", "Subject10", "Subject12"} & SEEN


def _probe_files(tmp_path, subjects, seconds=12):
    """Synthetic (path, subject, label) pairs: label 1 ("eyes closed") adds strong 10-Hz alpha; the
    subjects in SEEN get it the other way round, so that a classifier trained on it would suffer."""
    from eegcodec.bench.probe import SEEN

    files = []
    for s, subject in enumerate(subjects):
        for label in (0, 1):
            raw = synthetic_raw(n_ch=4, seconds=seconds, seed=10 * s + label, stim=False)
            alpha = (1 - label) if subject in SEEN else label
            raw._data += alpha * 40e-6 * np.sin(2 * np.pi * 10 * raw.times)
            path = tmp_path / f"{subject}R{label}_raw.fif"
            raw.save(path, verbose="error")
            files.append((path, subject, label))
    return files


def test_probe_separates_alpha_on_unseen_subjects_and_scores_the_seen_one_apart(tmp_path, pcm_codec):
    pytest.importorskip("sklearn")
    from eegcodec.bench.probe import FEATURES, report, run

    files = _probe_files(tmp_path, ["S001", "S002", "S003", "S004"])
    results = run({"syn": files}, pcm_codec, depth=4, window_frames=40, crop=10.0, draws=300)  # 1-s windows
    t = results["tasks"]["syn"]
    assert t["windows"] == [30, 30]  # 3 unseen subjects x 10 windows per class; S001 kept out
    assert t["subjects"] == ["S002", "S003", "S004"] and t["apart"] == ["S001"]
    assert set(t["accuracy"]) == set(FEATURES)
    assert all(r["seconds"] == pytest.approx(10.0) for r in t["recordings"])
    for r in t["recordings"]:  # the --prd file is never larger than the token file
        assert r["prd_bits_per_sample"] <= r["token_bits_per_sample"]
    for scores in t["accuracy"].values():
        assert set(scores["per_subject"]) == {"S002", "S003", "S004"}
        assert scores["ci95"][0] <= scores["mean"] <= scores["ci95"][1]
        assert scores["wilson95"][0] <= scores["pooled"] <= scores["wilson95"][1]
    for k in ("band_power", "prd_band_power"):
        assert t["accuracy"][k]["mean"] >= 0.9
        # the training subject's alpha runs the other way: scored apart, never trained on
        assert t["accuracy"][k]["apart"]["S001"] <= 0.1
    assert t["accuracy"]["band_power"]["minus_band_power"] == {"mean": 0.0, "ci95": [0.0, 0.0]}
    text = report(results)
    assert "| prd_band_power |" in text and "S001 0.00" in text


def test_probe_intervals_and_prd_matching():
    pytest.importorskip("sklearn")
    from eegcodec.bench.probe import difference, intervals, prd_at_bytes

    scores = {"per_subject": {"a": 1.0, "b": 0.5}, "correct": {"a": [10, 10], "b": [5, 10]}, "apart": {}}
    out = intervals(scores, 2000, 0)
    assert out["mean"] == 0.75 and out["pooled"] == 0.75
    assert out["ci95"] == [0.5, 1.0]  # resampling two subjects: means 0.5, 0.75 or 1.0
    assert out["wilson95"] == pytest.approx([0.5313, 0.8881], abs=1e-3)  # 15 of 20
    d = difference({"a": 1.0, "b": 0.5}, {"b": 0.5, "a": 0.5}, 2000, 0)  # paired by subject, not by order
    assert d["mean"] == 0.25 and d["ci95"] == [0.0, 0.5]
    raw = synthetic_raw(n_ch=4, seconds=10, stim=False)
    target = len(eegcodec.compress(raw, None, prd=10.0))
    prd, data = prd_at_bytes(raw, target)
    assert len(data) <= target and 5.0 <= prd <= 12.0


def test_probe_finds_each_tasks_subjects_with_both_recordings(tmp_path):
    from eegcodec.bench.probe import task_files

    for name in (
        "S001R01",
        "S001R02",
        "S002R01",
        "S002R02",
        "S003R01",
        "S003R02",
        "S004R01",
        "S004R02",
        "S005R02",
    ):
        (tmp_path / "eegbci" / f"{name}.edf").parent.mkdir(exist_ok=True)
        (tmp_path / "eegbci" / f"{name}.edf").touch()
    files = task_files(tmp_path, "eegbci")
    assert [(p.name, s, y) for p, s, y in files] == [
        ("S001R01.edf", "S001", 0), ("S001R02.edf", "S001", 1), ("S002R01.edf", "S002", 0),
        ("S002R02.edf", "S002", 1), ("S003R01.edf", "S003", 0), ("S003R02.edf", "S003", 1),
        ("S004R01.edf", "S004", 0), ("S004R02.edf", "S004", 1),
    ]  # fmt: skip
    (tmp_path / "eegbci" / "S004R02.edf").unlink()  # S005 has R02 only: two unseen subjects left
    with pytest.raises(EegcodecError, match="fewer than three subjects"):
        task_files(tmp_path, "eegbci")
