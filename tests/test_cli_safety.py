"""Safe by default: following the README never destroys a recording; folders keep going."""

import os

import mne
import numpy as np
import pytest
from conftest import synthetic_raw

from eegcodec.cli import main


def _edf(path, n_ch=3, seconds=10, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(
        path, synthetic_raw(n_ch=n_ch, seconds=seconds, stim=False, seed=seed), verbose="error"
    )
    return path


def _run(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr()


def test_quick_start_never_overwrites_the_original(tmp_path, tiny_dac_path, capsys):
    rec = _edf(tmp_path / "rec.edf")
    original = rec.read_bytes()
    model = ["--model", str(tiny_dac_path), "-q"]
    assert main(["compress", str(rec), "-o", str(tmp_path / "rec.eegc"), *model]) == 0
    capsys.readouterr()  # the random test model draws a poor-fit warning
    # the old Quick start's decompress line: now an error naming the file and --force
    rc, out = _run(["decompress", str(tmp_path / "rec.eegc"), "-o", str(rec), *model], capsys)
    assert rc == 1 and "output exists" in out.err and "--force" in out.err and out.err.count("\n") == 1
    assert rec.read_bytes() == original
    # no -o: a new name beside the archive, never the original's
    assert main(["decompress", str(tmp_path / "rec.eegc"), *model]) == 0
    assert (tmp_path / "rec.decoded.edf").is_file() and rec.read_bytes() == original
    # again: that name now exists too
    rc, out = _run(["decompress", str(tmp_path / "rec.eegc"), *model], capsys)
    assert rc == 1 and "rec.decoded.edf" in out.err
    # compress onto an existing archive, even a read-only one: refused; --force replaces it
    arc = tmp_path / "rec.eegc"
    before = arc.read_bytes()
    os.chmod(arc, 0o444)
    rc, out = _run(["compress", str(rec), "-o", str(arc), *model, "--codebooks", "1"], capsys)
    assert rc == 1 and "output exists" in out.err and arc.read_bytes() == before
    assert main(["compress", str(rec), "-o", str(arc), *model, "--codebooks", "1", "--force"]) == 0
    assert arc.read_bytes() != before
    # the input itself is never an output, with or without --force
    rc, out = _run(["decompress", str(arc), "-o", str(arc), *model, "--force"], capsys)
    assert rc == 1 and arc.is_file()
    fif = tmp_path / "r.fif"
    synthetic_raw(n_ch=2, seconds=5).save(fif, verbose="error")
    rc, out = _run(["compress", str(fif), "-o", str(fif), *model, "--force"], capsys)
    assert rc == 1 and "is the input" in out.err


def test_bad_output_suffix_is_refused_before_decoding(tmp_path, tiny_dac_path, capsys, monkeypatch):
    rec = _edf(tmp_path / "rec.edf")
    assert (
        main(["compress", str(rec), "-o", str(tmp_path / "rec.eegc"), "--model", str(tiny_dac_path), "-q"])
        == 0
    )
    import eegcodec.pipeline

    def boom(*a, **k):
        raise AssertionError("decoded before the output was checked")

    monkeypatch.setattr(eegcodec.pipeline, "decompress_archive", boom)
    rc, out = _run(
        [
            "decompress",
            str(tmp_path / "rec.eegc"),
            "-o",
            str(tmp_path / "out.csv"),
            "--model",
            str(tiny_dac_path),
        ],
        capsys,
    )
    assert rc == 1 and "choose an output extension" in out.err


def test_folders_mirror_the_tree_keep_going_and_carry_bids_sidecars(tmp_path, tiny_dac_path, capsys):
    src = tmp_path / "bids"
    _edf(src / "sub-01" / "eeg" / "sub-01_task-rest_eeg.edf", seed=1)
    _edf(src / "sub-02" / "eeg" / "sub-01_task-rest_eeg.edf", seed=2)  # same file name, other folder
    (src / "sub-01" / "eeg" / "sub-01_task-rest_eeg.json").write_text('{"SamplingFrequency": 160}')
    (src / "sub-01" / "eeg" / "sub-01_task-rest_channels.tsv").write_text("name\ttype\nEEG00\tEEG\n")
    (src / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    (src / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\n")
    (src / "sub-01" / "eeg" / "broken.edf").write_bytes(b"0       not an edf at all")
    out = tmp_path / "out"
    rc, res = _run(["compress", str(src), "-o", str(out), "--model", str(tiny_dac_path), "-q"], capsys)
    assert rc == 1  # one file failed ...
    assert "broken.edf" in res.err and "compressed 2 of 3 files; 1 failed" in res.err
    assert (out / "sub-01" / "eeg" / "sub-01_task-rest_eeg.eegc").is_file()  # ... the others were done
    assert (out / "sub-02" / "eeg" / "sub-01_task-rest_eeg.eegc").is_file()
    for side in (
        "dataset_description.json",
        "participants.tsv",
        "sub-01/eeg/sub-01_task-rest_eeg.json",
        "sub-01/eeg/sub-01_task-rest_channels.tsv",
    ):
        assert (out / side).read_bytes() == (src / side).read_bytes()
    back = tmp_path / "back"
    assert main(["decompress", str(out), "-o", str(back), "--model", str(tiny_dac_path), "-q"]) == 0
    assert (back / "sub-02" / "eeg" / "sub-01_task-rest_eeg.edf").is_file()  # the original's format and name
    assert (back / "sub-01" / "eeg" / "sub-01_task-rest_channels.tsv").is_file()
    # a second run over the same output refuses (nothing overwritten) without --force
    rc, res = _run(["compress", str(src), "-o", str(out), "--model", str(tiny_dac_path), "-q"], capsys)
    assert rc == 1 and "output exists" in res.err


def test_edf_output_keeps_the_exact_sample_count(tmp_path):
    """MNE pads EDF to whole seconds (adding BAD_ACQ_SKIP); eegcodec's writer does not."""
    from eegcodec.io import write_raw

    raw = synthetic_raw(n_ch=2, sfreq=128.0, seconds=30504 / 128, stim=False)
    assert raw.n_times == 30504
    for ext in (".edf", ".bdf"):
        write_raw(raw, tmp_path / f"x{ext}")
        back = mne.io.read_raw(tmp_path / f"x{ext}", preload=True, verbose="error")
        assert back.n_times == 30504 and "BAD_ACQ_SKIP" not in back.annotations.description
        assert list(back.annotations.description) == list(raw.annotations.description)
        np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=1e-8)


def test_nan_to_edf_is_a_clear_error_naming_fif(tmp_path, pcm_codec):
    from eegcodec.errors import EegcodecError
    from eegcodec.io import write_raw

    raw = synthetic_raw(n_ch=2, seconds=5, stim=False)
    raw._data[1, 10:20] = np.nan
    with pytest.raises(EegcodecError, match="NaN.*EEG01.*fif"):
        write_raw(raw, tmp_path / "x.edf")
    assert not (tmp_path / "x.edf").exists()
    write_raw(raw, tmp_path / "x.fif")
    assert np.isnan(mne.io.read_raw(tmp_path / "x.fif", verbose="error").get_data()[1, 10:20]).all()


def test_ch_type_stores_a_channel_exactly_on_its_grid(tmp_path, tiny_dac_path, capsys):
    """--ch-type 'EEG02=ecg' stores that channel on the EDF's own integer grid: the same digital
    values come back, at far fewer bits than float64."""
    rec = _edf(tmp_path / "rec.edf", n_ch=3, seconds=30)
    arc = tmp_path / "rec.eegc"
    rc, out = _run(
        ["compress", str(rec), "-o", str(arc), "--model", str(tiny_dac_path), "-q", "--ch-type", "EEG02=ecg"],
        capsys,
    )
    assert rc == 0, out.err
    from eegcodec.api import decompress, read_archive

    h = read_archive(arc).header
    assert h.lossless == [2] and h.lossless_reasons == {2: "ecg channel"}
    bits = 8 * read_archive(arc).section_sizes["RAWC"] / h.recording.n_samples
    assert bits < 16, bits  # float64 + zstd: about 30 bits/sample
    orig = mne.io.read_raw(rec, preload=True, verbose="error").get_data()[2]
    back = decompress(arc, codec=str(tiny_dac_path)).get_data()[2]
    step = np.min(np.diff(np.unique(orig)))
    assert np.abs(back - orig).max() <= 1e-6 * step
    rc, out = _run(
        [
            "compress",
            str(rec),
            "-o",
            str(tmp_path / "b.eegc"),
            "--model",
            str(tiny_dac_path),
            "--ch-type",
            "NOPE=ecg",
        ],
        capsys,
    )
    assert rc == 1 and "NOPE" in out.err


def test_exact_grid_coder_round_trips():
    from eegcodec.format.exact import decode_block, encode_block, find_grid

    rng = np.random.default_rng(0)
    step = 0.0305e-6
    grid = -3.2e-3 + rng.integers(-2000, 2000, 1000) * step
    wide = rng.integers(-(2**23), 2**23, 1000) * 1e-9  # 24-bit BDF-like: int32 deltas
    block = np.stack([grid, wide, rng.normal(size=1000), np.full(1000, 5.0), np.r_[np.nan, np.ones(999)]])
    back = decode_block(encode_block(block), 5, 1000)
    np.testing.assert_allclose(back[:2], block[:2], rtol=0, atol=1e-6 * step)
    np.testing.assert_array_equal(back[2:], block[2:])  # off-grid, constant and NaN channels: bit for bit
    assert find_grid(block[2]) is None and find_grid(block[0])[1] == pytest.approx(step, rel=1e-9)


def test_verify_decodes_and_writes_nothing(tmp_path, tiny_dac_path, capsys):
    rec = _edf(tmp_path / "rec.edf")
    arc = tmp_path / "rec.eegc"
    assert main(["compress", str(rec), "-o", str(arc), "--model", str(tiny_dac_path), "-q"]) == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, out = _run(["verify", str(arc), "--model", str(tiny_dac_path)], capsys)
    assert rc == 0 and f"{arc}: ok" in out.out and sorted(p.name for p in tmp_path.iterdir()) == before
    data = bytearray(arc.read_bytes())
    data[len(data) // 2] ^= 4
    (tmp_path / "bad.eegc").write_bytes(bytes(data))
    rc, out = _run(["verify", str(arc), str(tmp_path / "bad.eegc"), "--model", str(tiny_dac_path)], capsys)
    assert rc == 1 and "bad.eegc" in out.err and "verified 1 of 2 files; 1 failed" in out.err


def test_corpus_run_shards_across_torchrun_processes_and_resumes(tmp_path, capsys):
    """Two processes under torchrun split a folder (``--shard auto``); a rerun with
    ``--skip-existing`` finishes only what is missing and rewrites nothing."""
    import subprocess
    import sys

    for i in range(5):
        _edf(tmp_path / "corpus" / f"sub-{i}" / f"rec{i}.edf", n_ch=3, seconds=4, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--no-python"]
    cmd += [sys.executable, "-m", "eegcodec.cli", "compress", str(tmp_path / "corpus"), "-o", str(out)]
    cmd += ["--prd", "10", "--shard", "auto", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = sorted(out.rglob("*.eegc"))
    assert [p.name for p in outputs] == [f"rec{i}.eegc" for i in range(5)]
    # an interrupted run: one output lost; the rerun redoes that one and leaves the others alone
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    outputs[2].unlink()
    args = ["compress", str(tmp_path / "corpus"), "-o", str(out), "--prd", "10"]
    rc, cap = _run([*args, "--skip-existing"], capsys)
    assert rc == 0 and "skipping 4 files" in cap.err
    assert outputs[2].exists() and all(
        p.stat().st_mtime_ns == t for p, t in stamps.items() if p != outputs[2]
    )
    rc, cap = _run(args, capsys)  # without it, existing outputs are still an error
    assert rc == 1 and "exists" in cap.err
    for bad in ("2/2", "x", "1/0"):
        rc, cap = _run([*args, "--shard", bad], capsys)
        assert rc == 1 and "--shard expects" in cap.err


def test_jobs_split_a_folder_over_processes(tmp_path, capsys):
    """``--jobs 2`` runs two processes on alternate files: every output once, the same samples."""
    for i in range(3):
        _edf(tmp_path / "in" / f"rec{i}.edf", n_ch=3, seconds=4, seed=i)
    args = ["compress", str(tmp_path / "in"), "--prd", "10", "-q"]
    env = os.environ.get("OMP_NUM_THREADS")
    assert main([*args, "-o", str(tmp_path / "one")]) == 0
    assert main([*args, "-o", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert os.environ.get("OMP_NUM_THREADS") == env  # the children's settings stay theirs
    from eegcodec.api import decompress

    for i in range(3):
        a = decompress(tmp_path / "one" / f"rec{i}.eegc").get_data()
        b = decompress(tmp_path / "two" / f"rec{i}.eegc").get_data()
        np.testing.assert_array_equal(a, b)
    rc, cap = _run([*args, "-o", str(tmp_path / "x"), "--jobs", "2", "--shard", "0/2"], capsys)
    assert rc == 1 and "not both" in cap.err


def _bids(root):
    """A BIDS-like folder: two recordings, sidecars and a README."""
    _edf(root / "sub-01" / "eeg" / "sub-01_eeg.edf", n_ch=3, seconds=4, seed=1)
    _edf(root / "sub-02" / "eeg" / "sub-02_eeg.edf", n_ch=3, seconds=4, seed=2)
    (root / "sub-01" / "eeg" / "sub-01_eeg.json").write_text('{"SamplingFrequency": 160}')
    (root / "README").write_text("a dataset\n")
    return root


def test_skip_existing_resumes_a_folder_with_sidecars(tmp_path, capsys):
    """--skip-existing on a BIDS-like folder: recordings and sidecars whose output exists are
    skipped (not an error), what is missing is written; the same for decompress."""
    src = _bids(tmp_path / "bids")
    out, back = tmp_path / "out", tmp_path / "back"
    assert main(["compress", str(src), "-o", str(out), "--prd", "10", "-q"]) == 0
    lost = out / "sub-02" / "eeg" / "sub-02_eeg.eegc"
    kept = out / "sub-01" / "eeg" / "sub-01_eeg.eegc"
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    (out / "README").unlink()
    rc, res = _run(["compress", str(src), "-o", str(out), "--prd", "10", "--skip-existing"], capsys)
    assert rc == 0, res.err
    assert "skipping 2 files whose output exists" in res.err  # one recording, one sidecar
    assert lost.is_file() and (out / "README").read_text() == "a dataset\n"
    assert kept.stat().st_mtime_ns == stamp
    assert main(["decompress", str(out), "-o", str(back), "-q"]) == 0
    decoded = back / "sub-02" / "eeg" / "sub-02_eeg.edf"
    decoded.unlink()
    (back / "sub-01" / "eeg" / "sub-01_eeg.json").unlink()
    rc, res = _run(["decompress", str(out), "-o", str(back), "--skip-existing"], capsys)
    assert rc == 0, res.err
    assert "skipping" in res.err and decoded.is_file()
    assert (back / "sub-01" / "eeg" / "sub-01_eeg.json").is_file()


def test_output_exists_speaks_cli_on_the_command_line_and_api_in_the_api(tmp_path, capsys):
    """The CLI says --force; the API says overwrite=True (compress, decompress, write_raw)."""
    from eegcodec.api import compress, decompress
    from eegcodec.errors import OutputExistsError
    from eegcodec.io import write_raw

    rec = _edf(tmp_path / "rec.edf", seconds=4)
    arc = tmp_path / "rec.eegc"
    assert main(["compress", str(rec), "-o", str(arc), "--prd", "10", "-q"]) == 0
    rc, res = _run(["compress", str(rec), "-o", str(arc), "--prd", "10", "-q"], capsys)
    assert rc == 1 and f"output exists: {arc} (use --force to replace it)" in res.err
    assert "overwrite=True" not in res.err
    (tmp_path / "a.edf").write_bytes(b"")
    rc, res = _run(["decompress", str(arc), "-o", str(tmp_path / "a.edf"), "-q"], capsys)
    assert rc == 1 and "(use --force to replace it)" in res.err and "overwrite=True" not in res.err
    raw = mne.io.read_raw(rec, verbose="error")
    calls = [
        lambda: compress(rec, arc, lossless=True),
        lambda: decompress(arc, rec),
        lambda: write_raw(raw, rec, overwrite=False),
    ]
    for call in calls:
        with pytest.raises(OutputExistsError) as info:
            call()
        assert "(pass overwrite=True to replace it)" in str(info.value) and "--force" not in str(info.value)


def test_debug_is_accepted_before_or_after_the_verb(tmp_path):
    """--debug shows the traceback (the error is raised, not printed) wherever it stands."""
    from eegcodec.errors import EegcodecError

    missing = str(tmp_path / "missing.edf")
    for argv in (
        ["--debug", "compress", missing],
        ["compress", "--debug", missing],
        ["compress", missing, "--debug"],
    ):
        with pytest.raises(EegcodecError, match="input not found"):
            main([*argv, "--prd", "10"])
    assert main(["compress", missing, "--prd", "10"]) == 1


@pytest.mark.parametrize("kind", ["rd", "downstream", "speed", "prior"])
def test_each_benchmark_has_its_own_help(kind, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", kind, "--help"])
    text = capsys.readouterr().out
    assert info.value.code == 0 and f"eegcodec bench {kind}" in text and "--out" in text
    assert ("--minutes" in text) == (kind == "speed") and ("--train" in text) == (kind == "prior")
    assert ("--codebooks" in text) == (kind in ("rd", "downstream"))


_BENCH_HELP_SCRIPT = """
import contextlib, io, json, sys
from eegcodec.cli import main
from eegcodec.cli.bench import BENCHMARKS, declared
out = {}
for module in BENCHMARKS:
    kind, text = declared(module)["NAME"], io.StringIO()
    with contextlib.redirect_stdout(text):
        try:
            main(["bench", kind, "--help"])
        except SystemExit as exc:
            out[kind] = [exc.code, text.getvalue()]
print(json.dumps({"help": out, "torch": "torch" in sys.modules}))
"""


def test_every_registered_benchmark_has_help_and_parses_without_torch():
    """Each module in ``BENCHMARKS`` is a KIND with its own help; parsing any of them imports no
    torch (its module is imported to add its options, and the inputs are checked before torch)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", _BENCH_HELP_SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    res = json.loads(done.stdout.strip().splitlines()[-1])
    kinds = {
        "rd",
        "downstream",
        "speed",
        "prior",
        "lossless",
        "probe",
        "zarr",
        "notch",
        "runtimes",
        "align-table",
    }
    assert set(res["help"]) == kinds, done.stderr
    for kind, (code, text) in res["help"].items():
        assert code == 0 and f"eegcodec bench {kind}" in text, (kind, text)
        assert ("--out" in text) == (kind not in ("notch", "runtimes", "align-table")), kind
        assert ("--models" in text) == (kind in ("rd", "downstream", "speed", "prior")), kind
    assert not res["torch"]


def test_bench_zarr_runs_from_the_command_line(tmp_path, capsys):
    """``eegcodec bench zarr``: every codec on every chunk, results.json and report.md written."""
    import json

    pytest.importorskip("numcodecs")
    rec = _edf(tmp_path / "rec.edf", n_ch=4, seconds=6)
    out = tmp_path / "zarr"
    assert main(["bench", "zarr", str(rec), "--out", str(out), "--chunk-seconds", "2"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert (
        res["chunk_seconds"] == 2 and res["rows"] and "eegcodec" in " ".join(res["summary"][rec.parent.name])
    )
    assert "wrote" in capsys.readouterr().out
    assert main(["bench", "zarr", "--out", str(tmp_path / "x"), "-q"]) == 1  # no recordings
    again = ["bench", "zarr", str(rec), "--out", str(out), "--chunk-seconds", "2", "-q"]
    assert main(again) == 1 and "use --force" in capsys.readouterr().err  # results kept
    assert main([*again, "--force"]) == 0


_NO_TORCH_SCRIPT = """
import json, sys
from eegcodec.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    rc = main(argv)
    out.append([argv[0], rc, "torch" in sys.modules])
print(json.dumps(out))
"""


def test_every_verb_checks_inputs_and_outputs_before_importing_torch(tmp_path):
    """A missing input, or an output that exists without --force, is reported before torch is
    imported (torch and a model take seconds and hundreds of MB); ``models`` lists without torch."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    rec = _edf(tmp_path / "rec.edf", seconds=4)
    arc = tmp_path / "rec.eegc"
    assert main(["compress", str(rec), "-o", str(arc), "--prd", "10", "-q"]) == 0
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "cpu_small.yaml")
    gone, t = str(tmp_path / "missing.edf"), str(tmp_path)
    model = ["--model", "mc-small"]
    cases = [
        ["models"],
        ["demo", "--json", str(taken)],
        ["compress", gone, *model],
        ["compress", str(rec), "-o", str(arc), *model],
        ["decompress", str(tmp_path / "missing.eegc"), *model],
        ["decompress", str(arc), "-o", str(rec), *model],
        ["verify", str(tmp_path / "missing.eegc"), *model],
        ["info", str(tmp_path / "missing.eegc")],
        ["eval", gone],
        ["eval", str(rec), "--json", str(taken)],
        ["train", str(tmp_path / "missing.yaml"), "--out", t],
        ["train", recipe, "--out", str(tmp_path / "run"), "--resume"],
        ["train-prior", "--train", gone],
        ["train-prior", "--train", str(rec), "-o", str(taken)],
        ["bench", "rd", gone, "--out", t],
        ["bench", "prior", str(rec), "--train", gone, "--out", t],
        ["align", "decode", t, gone, "-o", str(tmp_path / "o.wav")],
        ["align", "decode", t, str(rec), "-o", str(taken)],
        ["align", "eval", str(tmp_path / "run"), "--data", t, "--out", t],
        ["align", "train", str(tmp_path / "missing.yaml"), "--data", t, "--out", t],
        ["align", "make-synthetic", "--out", str(tmp_path / "full")],
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_SCRIPT, json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    results = json.loads(done.stdout.strip().splitlines()[-1])
    errors = done.stderr.strip().splitlines()
    assert [rc for _, rc, _ in results] == [0] + [1] * (len(cases) - 1), done.stderr
    assert len(errors) == len(cases) - 1 and all(e.startswith("eegcodec: error:") for e in errors), errors
    assert all("not found" in e or "exists" in e or "no checkpoint" in e or "not empty" in e for e in errors)
    imported = [(case, rc) for case, (_, rc, torch) in zip(cases, results) if torch]
    assert not imported, f"torch imported by the first of: {imported}"
