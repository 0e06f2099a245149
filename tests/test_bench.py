"""Benchmarks: classical coders, metrics on hand-computed cases, and the quick mode of each
``eegcodec bench`` verb on synthetic recordings (JSON schema and recomputed values, no timings)."""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pytest
from conftest import synthetic_raw

from eegcodec.bench import classical, downstream
from eegcodec.bench.classical import (
    dct_code,
    deadzone_quantise,
    deadzone_rebuild,
    flac_bytes,
    integer_samples,
    interpolate_at,
    wavelet_code,
    zstd_bytes,
)
from eegcodec.cli import main
from eegcodec.io import write_raw
from eegcodec.metrics import BANDS, band_power_error_db, prd, reconstruction_metrics
from tools.fuzz import TINY_DAC

# ---------------------------------------------------------------------------
# classical coders
# ---------------------------------------------------------------------------


def test_deadzone_quantiser_hand_case():
    q = deadzone_quantise(np.array([-2.5, -0.4, 0.4, 1.0, 2.9]), 1.0)
    assert q.tolist() == [-2, 0, 0, 1, 2]
    assert deadzone_rebuild(q, 1.0).tolist() == [-2.5, 0.0, 0.0, 1.5, 2.5]


def test_integer_samples_recovers_the_file_grid_and_flac_is_lossless():
    rng = np.random.default_rng(0)
    ints = rng.integers(-3000, 3000, size=(10, 4000))
    ints[:, ::2] += 1  # not every level is present on every channel
    lsb = np.linspace(0.5e-6, 2e-6, 10)[:, None]
    x = 1e-4 + ints * lsb
    back, est_lsb, offset, exact = integer_samples(x)
    assert exact
    np.testing.assert_allclose(est_lsb, lsb[:, 0], rtol=1e-9)
    np.testing.assert_allclose(
        offset[:, None] + (back - back.min(axis=1, keepdims=True)) * lsb, x, atol=1e-12
    )
    n = flac_bytes(back, 160.0)  # asserts its own round trip is exact
    assert 0 < n < back.size * 2  # 16-bit samples: under the raw size
    assert zstd_bytes(back) > 0
    wide = back * 2000  # beyond 16 bits: the 24-bit path, still exact
    assert flac_bytes(wide, 160.0) > n
    _, _, _, exact = integer_samples(rng.normal(size=(2, 500)))
    assert not exact  # float data is flagged


def test_transform_coders_trade_bits_for_error():
    raw = synthetic_raw(n_ch=4, seconds=16, stim=False)
    x, sf = raw.get_data(), raw.info["sfreq"]
    for coder in (dct_code, wavelet_code, classical.pca_dct_code):
        results = [coder(x, sf, step) for step in classical.step_sweep(x, 6)]
        bps = [8 * n / x.size for _, n in results]
        prds = [prd(x, rec) for rec, _ in results]
        assert all(np.diff(bps) < 0) and all(np.diff(prds) > 0)
        assert prds[0] < 3 and prds[-1] > 60
        step, rec, reached = classical.step_for_bps(coder, x, sf, 1.0)
        assert abs(reached - 1.0) < 0.1
        assert reached == pytest.approx(8 * coder(x, sf, step)[1] / x.size)


def test_multichannel_anchor_uses_what_electrodes_share():
    """Channels mixing a few sources: the spatial PCA + DCT coder reaches the per-channel DCT's
    PRD with far fewer bits (the anchor every claim is measured against)."""
    rng = np.random.default_rng(0)
    sources = synthetic_raw(n_ch=3, seconds=30, stim=False).get_data()
    x = rng.normal(size=(32, 3)) @ sources + rng.normal(0, 0.2e-6, (32, sources.shape[1]))
    sf = 160.0
    step, rec, bps = classical.step_for_bps(dct_code, x, sf, 1.0)
    target = prd(x, rec)
    lo, hi = np.log(step) - 4, np.log(step) + 4  # the anchor's step for the same PRD
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (
            (mid, hi) if prd(x, classical.pca_dct_code(x, sf, float(np.exp(mid)))[0]) < target else (lo, mid)
        )
    rec2, nbytes = classical.pca_dct_code(x, sf, float(np.exp(lo)))
    assert prd(x, rec2) == pytest.approx(target, rel=0.05)
    assert 8 * nbytes / x.size < 0.5 * bps


def test_interpolate_at():
    assert interpolate_at([0, 1, 2], [10, 20, 40], 1.5) == 30
    assert np.isnan(interpolate_at([0, 1], [0, 1], 2))
    assert interpolate_at([2, 0, 1], [40, 10, 20], 0.5) == 15  # unsorted input


# ---------------------------------------------------------------------------
# metrics and statistics
# ---------------------------------------------------------------------------


def test_band_power_error_hand_case():
    raw = synthetic_raw(n_ch=3, seconds=20, stim=False)
    x, sf = raw.get_data(), raw.info["sfreq"]
    err = band_power_error_db(x, 2 * x, sf)  # power x4 = 6.02 dB in every band
    assert set(err) == set(BANDS)
    for v in err.values():
        assert v == pytest.approx(10 * np.log10(4), abs=1e-9)
    m = reconstruction_metrics(x, x, sf)
    assert all(m[f"band_error_db_{b}"] == pytest.approx(0, abs=1e-12) for b in BANDS)


def test_wilson_interval_and_accuracy():
    lo, hi = downstream.wilson_interval(8, 10)  # the textbook case
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    a = downstream.accuracy(np.array([True, True, False, True]))
    assert a["accuracy"] == 0.75 and a["n"] == 4 and a["ci95"][0] < 0.75 < a["ci95"][1]
    centred = downstream.centre_by_group(
        np.array([[1.0], [3.0], [10.0], [20.0]]), np.array(["a", "a", "b", "b"])
    )
    assert centred[:, 0].tolist() == [-1.0, 1.0, -5.0, 5.0]


# ---------------------------------------------------------------------------
# quick modes on synthetic recordings
# ---------------------------------------------------------------------------


def _eyes_recordings(folder, seconds=30.0):
    """EEGBCI-named runs: R01 (eyes open) and R02 (eyes closed: +40 uV alpha)."""
    folder.mkdir(parents=True, exist_ok=True)
    for run, alpha in ((1, 0.0), (2, 40e-6)):
        raw = synthetic_raw(n_ch=6, seconds=seconds, seed=run, stim=False)
        t = raw.times
        raw._data += alpha * np.sin(2 * np.pi * 10 * t)[None]
        write_raw(raw, folder / f"S001R{run:02d}.edf")
    return folder


def test_bench_rd_quick_schema_and_values(tmp_path, tiny_dac_path):
    data = _eyes_recordings(tmp_path / "data")
    out = tmp_path / "rd"
    assert (
        main(
            [
                "bench",
                "rd",
                str(data),
                "--out",
                str(out),
                "--models",
                f"tiny={tiny_dac_path}",
                "--quick",
                "-q",
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["benchmark"] == "rd" and res["models"][0]["label"] == "tiny"
    assert {f["file"] for f in res["files"]} == {"S001R01.edf", "S001R02.edf"}
    assert [r["codebooks"] for r in res["neural"] if r["file"] == "S001R01.edf"] == [1, 2, 3]
    for r in res["neural"]:
        for key in (
            "bits_per_sample",
            "cr16",
            "prd_percent",
            "snr_db",
            "pearson_r",
            "spectral_error_db",
            "dct_prd_percent_at_same_bps",
            *[f"band_error_db_{b}" for b in BANDS],
        ):
            assert key in r
        assert r["cr16"] == pytest.approx(16 / r["bits_per_sample"])
    # the bits are those of the real .eegc payload
    from eegcodec.backends.registry import load_codec
    from eegcodec.format.container import Archive
    from eegcodec.io import read_raw
    from eegcodec.pipeline import compress_raw

    raw = read_raw(data / "S001R01.edf", preload=True).crop(0, 10, include_tmax=False)
    arc = Archive.from_bytes(compress_raw(raw, load_codec(str(tiny_dac_path)), n_codebooks=2))
    payload = arc.section_sizes["CODE"] + arc.section_sizes["SIDE"]
    row = next(r for r in res["neural"] if r["file"] == "S001R01.edf" and r["codebooks"] == 2)
    assert row["bits_per_sample"] == pytest.approx(8 * payload / (6 * raw.n_times))
    # bits per code as stored (the tiny model has no prior: fixed width) and the codes' entropy
    n_codes = arc.header.code_rows * 2 * sum(arc.header.chunk_frames)
    assert row["bits_per_code"] == pytest.approx(8 * arc.section_sizes["CODE"] / n_codes)
    assert 0 < row["code_entropy_bits"] <= np.log2(min(n_codes / 2, arc.header.model.codebook_size)) + 1e-9
    # a classical row recomputed by hand
    c = next(
        r
        for r in res["classical"]
        if r["file"] == "S001R01.edf" and r["coder"] == "dct" and r["step_index"] == 2
    )
    rec, nbytes = dct_code(raw.get_data(), raw.info["sfreq"], c["step_volts"])
    assert c["bits_per_sample"] == pytest.approx(8 * nbytes / raw.get_data().size)
    assert c["prd_percent"] == pytest.approx(prd(raw.get_data(), rec))
    assert {r["coder"] for r in res["lossless"]} == {"flac", "zstd", "eegc"} and all(
        r["exact"] for r in res["lossless"]
    )
    near = res["near_lossless"]
    assert sorted({r["max_error_uv"] for r in near}) == [0.5, 1.0, 2.0, 5.0]
    assert all(r["measured_max_uv"] <= r["max_error_uv"] for r in near)  # the bound, measured
    assert "eegcodec --max-error" in (out / "report.md").read_text()
    summary = res["summary"]["data"]
    assert set(summary["curves"]) == {"tiny", "dct", "wavelet", "pca_dct", "eegc_prd"}
    assert "flac" in summary["lossless"]
    prd_rows = [r for r in res["classical"] if r["coder"] == "eegc_prd"]  # one 30-s chunk: its target holds
    assert prd_rows and all(r["prd_percent"] <= r["target_prd"] + 1e-9 for r in prd_rows)
    for fig in ("rd_data.png", "overlay_S001R01.png", "psd_S001R01.png"):
        assert fig in res["figures"] and (out / fig).stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "| tiny | 2 |" in report and "rd_data.png" in report and "dct: bits for same PRD" in report
    assert "empirical entropy bits/code" in report


def test_bench_rd_axes_table_when_models_differ(tmp_path, tiny_dac_path):
    import torch

    from eegcodec.adapt import AdapterConfig
    from eegcodec.backends.dac.files import save_dac_file
    from eegcodec.backends.dac.network import build_dac

    torch.manual_seed(1)
    other = tmp_path / "v16.pth"
    save_dac_file(
        build_dac({**TINY_DAC, "n_codebooks": 2, "codebook_size": 16}),
        other,
        {"name": "v16", "adapter": AdapterConfig(model_rate=160.0, chunk_seconds=8.0).to_dict()},
    )
    data = _eyes_recordings(tmp_path / "data", seconds=12)
    out = tmp_path / "rd"
    main(
        [
            "bench",
            "rd",
            str(data / "S001R01.edf"),
            "--out",
            str(out),
            "--models",
            f"v64={tiny_dac_path}",
            f"v16={other}",
            "--quick",
            "-q",
        ]
    )
    report = (out / "report.md").read_text()
    assert "## Axes: vocabulary size and input rate" in report
    assert "| data | v16 | 16 |" in report and "| data | v64 | 64 |" in report


def test_find_tasks_groups_and_balance(tmp_path):
    data = _eyes_recordings(tmp_path / "eegbci", seconds=30)
    cfg = downstream.DownstreamConfig(window_seconds=2.0, block_seconds=10.0)
    tasks = downstream.find_tasks(sorted(data.iterdir()), cfg)
    assert [t.name for t in tasks] == ["eyes"]
    w = tasks[0].windows
    assert len(w) == 30 and sum(x.label for x in w) == 15  # 15 windows of each class, 3 time blocks
    assert {x.group for x in w} == {"block0", "block1", "block2"}
    # fists: T1/T2 annotations of an imagery run, one run = one group
    raw = synthetic_raw(n_ch=4, seconds=40, stim=False)
    raw.set_annotations(
        mne.Annotations(
            [2, 8, 14, 20, 26, 32],
            [4] * 6,
            ["T1", "T2", "T0", "T1", "T2", "T1"],
            orig_time=raw.info["meas_date"],
        )
    )
    for run in (4, 8):
        write_raw(raw, tmp_path / "eegbci" / f"S001R{run:02d}.edf")
    fists = [
        t for t in downstream.find_tasks(sorted((tmp_path / "eegbci").iterdir()), cfg) if t.name == "fists"
    ][0]
    starts = sorted({x.start for x in fists.windows})
    assert starts == [
        int((t + 0.5) * 160) for t in (2, 8, 26, 32)
    ]  # 2 T2; T1 at 2, 32 (evenly spaced of 3); T0 ignored
    assert {x.group for x in fists.windows} == {"run04", "run08"}
    (csp,) = [
        t for t in downstream.find_tasks(sorted((tmp_path / "eegbci").iterdir()), cfg) if t.features == "csp"
    ]
    assert csp.name == "fists_csp" and csp.windows == fists.windows
    # arithmetic: several subjects -> groups are subjects, rest windows balanced to the task's count
    for subj in ("00", "01"):
        write_raw(synthetic_raw(n_ch=3, seconds=30, stim=False), tmp_path / "eegmat" / f"Subject{subj}_1.edf")
        write_raw(synthetic_raw(n_ch=3, seconds=10, stim=False), tmp_path / "eegmat" / f"Subject{subj}_2.edf")
    arith = downstream.find_tasks(sorted((tmp_path / "eegmat").iterdir()), cfg)[0]
    assert arith.name == "arithmetic" and {x.group for x in arith.windows} == {"00", "01"}
    assert sum(x.label == 0 for x in arith.windows) == sum(x.label == 1 for x in arith.windows) == 10


def test_bench_downstream_quick(tmp_path, tiny_dac_path):
    data = _eyes_recordings(tmp_path / "data", seconds=24)
    out = tmp_path / "ds"
    assert (
        main(
            [
                "bench",
                "downstream",
                str(data),
                "--out",
                str(out),
                "--models",
                str(tiny_dac_path),
                "--quick",
                "-q",
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["benchmark"] == "downstream"
    (task,) = res["tasks"]
    assert task["task"] == "eyes" and task["chance"] == 0.5 and task["windows"] == 24
    assert task["original"]["accuracy"] >= 0.9  # strong alpha: the classifier works on the original
    assert {c["condition"] for c in task["conditions"]} == {
        "tiny N=1",
        "dct @ tiny N=1",
        "wavelet @ tiny N=1",
        "pca_dct @ tiny N=1",
    }
    for c in task["conditions"]:
        for k in ("orig_recon", "recon_recon"):
            a = c[k]
            assert a["n"] == 24 and 0 <= a["accuracy"] <= 1 and a["ci95"][0] <= a["accuracy"] <= a["ci95"][1]
        assert c["bits_per_sample"] > 0
    assert "downstream_eyes.png" in res["figures"] and (out / "downstream_eyes.png").exists()
    plain = tmp_path / "plain"  # a recording that supports no task: a one-line error
    write_raw(synthetic_raw(n_ch=2, seconds=5, stim=False), plain / "rec.edf")
    assert main(["bench", "downstream", str(plain), "--out", str(tmp_path / "x"), "-q"]) == 1


def test_bench_speed_quick(tmp_path, tiny_dac_path):
    out = tmp_path / "speed"
    assert (
        main(
            [
                "bench",
                "speed",
                "--out",
                str(out),
                "--models",
                str(tiny_dac_path),
                "--minutes",
                "0.05",
                "--channels",
                "3",
                "--repeats",
                "3",
                "--tokenize",
                "-q",
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    (row,) = res["rows"]
    assert len(row["tokenize_runs_s"]) == 3 and row["tokenize_realtime"] == pytest.approx(
        3.0 / row["tokenize_s"]
    )
    assert "`eegcodec tokenize`" in (out / "report.md").read_text()
    assert row["channels"] == 3 and row["minutes"] == 0.05 and row["codebooks"] == 3
    assert (
        len(row["compress_runs_s"]) == 3 and row["compress_s"] == sorted(row["compress_runs_s"])[1]
    )  # the median
    assert row["compress_realtime"] == pytest.approx(3.0 / row["compress_s"])
    assert row["decompress_peak_mb"] > 0 and row["bits_per_sample"] > 0
    assert (out / "speed.png").exists() and "| " in (out / "report.md").read_text()
    # the random-access columns: read_raw(...).get_data of a window, in a fresh process, the model given
    assert row["window_call_s"] >= row["window_read_s"] > 0 and row["window_model_s"] > 0
    assert row["window_peak_mb"] > 0 and "Random access" in (out / "report.md").read_text()


def test_bench_speed_busy_rows(tmp_path):
    """--busy: each length timed as it is, then beside a spinning process; the rows say which."""
    out = tmp_path / "speed"
    args = ["bench", "speed", "--out", str(out), "--models", "lossless", "--minutes", "0.05"]
    assert main(args + ["--channels", "2", "--repeats", "1", "--busy", "-q"]) == 0
    res = json.loads((out / "results.json").read_text())
    idle, busy = res["rows"]
    assert (idle["busy"], busy["busy"]) == (False, True) and idle["minutes"] == busy["minutes"] == 0.05
    assert "OPENBLAS_NUM_THREADS" in res["thread_variables"]
    assert busy["compress_cpu_s"] > 0 and "| lossless | busy loop" in (out / "report.md").read_text()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_busy_core_spins_meanwhile_and_is_gone_after():
    import os
    import time

    from eegcodec.bench.speed import busy_core

    def cpu_ticks(pid: int) -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    with busy_core() as (pid, cpu):
        before = cpu_ticks(pid)
        time.sleep(0.5)
        assert cpu_ticks(pid) > before
        assert cpu is None or os.sched_getaffinity(pid) == {cpu}
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


def test_csp_classifier_separates_lateralised_rhythms():
    """The imagery task's CSP pipeline (8-30 Hz epochs -> MNE's CSP -> LDA) finds a class that
    differs only in which channel carries a 12 Hz rhythm; band power of the same windows too."""
    rng = np.random.default_rng(0)
    sf, length, n_win = 160.0, 320, 40
    x = rng.normal(0, 1e-6, (4, n_win * length))
    t = np.arange(length) / sf
    windows = []
    for i in range(n_win):
        label = i % 2
        x[label, i * length : (i + 1) * length] += 3e-6 * np.sin(2 * np.pi * 12 * t + rng.uniform(0, 6))
        windows.append(downstream.Window(Path("x"), i * length, length, label, f"g{i // 10}"))
    y, groups = np.array([w.label for w in windows]), np.array([w.group for w in windows])
    epochs = downstream.window_features(x, sf, windows, "csp")
    assert epochs.shape == (n_win, 4 * length)
    res = downstream.cross_validate(epochs, epochs, y, groups, 4, csp_channels=4)
    assert res["orig_orig"]["accuracy"] >= 0.9 and res["recon_recon"]["accuracy"] >= 0.9
    shuffled = downstream.cross_validate(epochs, None, rng.permutation(y), groups, 4, csp_channels=4)
    assert shuffled["orig_orig"]["accuracy"] < 0.8  # labels that carry nothing are not learnt


def test_runtimes_bench_times_the_model_both_ways():
    """bench.runtimes runs the encoder and decoder (one-buffer and DAC's own Snake); figures only."""
    from eegcodec.bench.runtimes import run

    for dac_snake in (False, True):
        res = run("default", channels=4, repeats=1, onnx=False, compile_=False, dac_snake=dac_snake)
        assert res["snake"] == ("dac" if dac_snake else "one buffer") and res["channels"] == 4
        assert res["torch_encoder_s"] > 0 and res["torch_decoder_s"] > 0


def test_prior_measures_hand_cases():
    """Plug-in entropy and counted tables on known distributions; the prior network learns codes
    that repeat the row above and a codebook that is a function of the one below, and its
    integer (shipped) form costs about what the float network does."""
    from eegcodec.bench.prior import empirical_bits, marginal_bits, net_bits, prior_bits
    from eegcodec.train.prior import PriorTrainConfig, fit_tokens, tokens

    uniform = np.tile(np.arange(4), 100)[:, None]
    assert empirical_bits(uniform)[0] == pytest.approx(2.0)
    skewed = np.array([0] * 300 + [1] * 100)[:, None]
    want = -(0.75 * np.log2(300.5 / 401) + 0.25 * np.log2(100.5 / 401))
    assert marginal_bits(skewed, skewed, 2)[0] == pytest.approx(want)
    rng = np.random.default_rng(0)
    first = rng.integers(0, 16, (1, 1, 900))
    codes = np.repeat(np.concatenate([first, (first * 5 + 3) % 16], axis=1), 3, axis=0)  # 3 equal rows
    train, test = tokens([codes[..., :700]]), tokens([codes[..., 700:]])
    vectors = rng.integers(-127, 128, (2, 16, 4))
    net, prior = fit_tokens(vectors, train, PriorTrainConfig(steps=500, hidden=64, batch=256))
    depth1, depth2 = net_bits(net, test, 1), net_bits(net, test, 2)
    assert depth1 < 2.0 and depth2 < 1.2, (
        depth1,
        depth2,
    )  # 4 bits packed; a third of the rows has no row above
    assert abs(prior_bits(prior, test, 2) - depth2) < 0.3


def test_bench_prior_quick(tmp_path, tiny_dac_path):
    data = _eyes_recordings(tmp_path / "data", seconds=12)
    out = tmp_path / "prior"
    args = ["bench", "prior", str(data / "S001R01.edf"), "--train", str(data / "S001R02.edf")]
    assert main([*args, "--out", str(out), "--models", f"tiny={tiny_dac_path}", "--quick", "-q"]) == 0
    res = json.loads((out / "results.json").read_text())
    bits = res["tiny"]["bits_per_code"]
    assert set(bits) == {
        "packed",
        "empirical",
        "marginal",
        "network (float)",
        "integer prior (quantised here)",
    }
    assert bits["packed"] == [6.0] * 3
    assert all(0 < b <= 6 for b in bits["empirical"])  # a plug-in entropy never exceeds log2(64)
    assert all(0 < b < 31 for v in bits.values() for b in v)
    assert "| integer prior (quantised here) |" in (out / "report.md").read_text()
    assert main(["bench", "prior", str(data), "--out", str(tmp_path / "x"), "-q"]) == 1  # no --train


def test_notch_check_compares_at_equal_bits(tmp_path, tiny_dac_path, capsys):
    """``eegcodec bench notch``: per depth, the model's and pca_dct's PRD (at the model's
    bits) with and without a notch at the mains; a 60-Hz line the notch removes changes both."""
    raw = synthetic_raw(n_ch=6, seconds=20, stim=False)
    raw._data += 80e-6 * np.sin(2 * np.pi * 59.97 * raw.times)[None]
    path = tmp_path / "S001R01.edf"
    write_raw(raw, path)
    assert (
        main(["bench", "notch", str(path), "--model", str(tiny_dac_path), "--codebooks", "2", "--crop", "15"])
        == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["codebooks"] == 2 and abs(row["pca_dct_bits_per_sample"] / row["bits_per_sample"] - 1) < 0.25
    assert row["pca_dct_prd_notched"] != row["pca_dct_prd"]
    assert all(np.isfinite(v) for k, v in row.items() if k.endswith("prd") or k.endswith("notched"))
