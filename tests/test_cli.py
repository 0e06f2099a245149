"""The eegcodec command line: exit codes, one-line errors, no partial outputs."""

import subprocess
import sys

import mne
import numpy as np
import pytest
from conftest import SHARED_EEG, needs_shared, synthetic_raw

from eegcodec.cli import main


@pytest.fixture
def edf(tmp_path):
    path = tmp_path / "rec.edf"
    mne.export.export_raw(path, synthetic_raw(n_ch=4, seconds=10, stim=False), verbose="error")
    return path


def test_compress_info_decompress(tmp_path, edf, tiny_dac_path, capsys):
    out = tmp_path / "rec.eegc"
    assert (
        main(["compress", str(edf), "-o", str(out), "--model", str(tiny_dac_path), "--codebooks", "2", "-q"])
        == 0
    )
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bits/sample" in text and "tiny" in text and "2 codebooks" in text and "rec.edf" in text
    anon = tmp_path / "anon.eegc"
    assert (
        main(["compress", str(edf), "-o", str(anon), "--model", str(tiny_dac_path), "--anonymize", "-q"]) == 0
    )
    assert b"rec.edf" not in anon.read_bytes()
    assert (
        main(["decompress", str(out), "-o", str(tmp_path / "back.edf"), "--model", str(tiny_dac_path), "-q"])
        == 0
    )
    back = mne.io.read_raw(tmp_path / "back.edf", verbose="error")
    assert back.n_times == mne.io.read_raw(edf, verbose="error").n_times


def test_folder_compression(tmp_path, edf, tiny_dac_path):
    mne.export.export_raw(
        tmp_path / "second.bdf", synthetic_raw(n_ch=2, seconds=5, stim=False), verbose="error"
    )
    outdir = tmp_path / "out"
    assert main(["compress", str(tmp_path), "-o", str(outdir), "--model", str(tiny_dac_path), "-q"]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["rec.eegc", "second.eegc"]


def _run(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err
    return rc, err


def test_errors_are_one_line_with_nonzero_exit(tmp_path, edf, tiny_dac_path, capsys):
    arc = tmp_path / "rec.eegc"
    main(["compress", str(edf), "-o", str(arc), "--model", str(tiny_dac_path), "-q"])
    data = arc.read_bytes()

    cases = {}
    (tmp_path / "trunc.eegc").write_bytes(data[: len(data) // 2])
    cases["truncated"] = [
        "decompress",
        str(tmp_path / "trunc.eegc"),
        "-o",
        str(tmp_path / "o1.edf"),
        "--model",
        str(tiny_dac_path),
    ]
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x10
    (tmp_path / "flip.eegc").write_bytes(bytes(flipped))
    cases["CRC mismatch"] = [
        "decompress",
        str(tmp_path / "flip.eegc"),
        "-o",
        str(tmp_path / "o2.edf"),
        "--model",
        str(tiny_dac_path),
    ]
    (tmp_path / "junk.eegc").write_bytes(b"hello world")
    cases["not an .eegc"] = [
        "decompress",
        str(tmp_path / "junk.eegc"),
        "-o",
        str(tmp_path / "o3.edf"),
        "--model",
        str(tiny_dac_path),
    ]

    import torch

    from eegcodec.backends.dac.files import read_dac_file

    blob = read_dac_file(tiny_dac_path)
    blob["state_dict"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    other = tmp_path / "other.pth"
    torch.save(blob, other)
    cases["was compressed with model"] = [
        "decompress",
        str(arc),
        "-o",
        str(tmp_path / "o4.edf"),
        "--model",
        str(other),
    ]
    cases["already an .eegc archive"] = [
        "compress",
        str(tmp_path / "trunc.eegc"),
        "-o",
        str(tmp_path / "x.eegc"),
        "--model",
        str(tiny_dac_path),
    ]
    (tmp_path / "notes.txt").write_text("x")
    cases["not an EEG format"] = ["compress", str(tmp_path / "notes.txt"), "--model", str(tiny_dac_path)]
    cases["codebooks must be in 1..3"] = [
        "compress",
        str(edf),
        "-o",
        str(tmp_path / "y.eegc"),
        "--model",
        str(tiny_dac_path),
        "--codebooks",
        "9",
    ]
    cases["unknown model"] = [
        "compress",
        str(edf),
        "-o",
        str(tmp_path / "u.eegc"),
        "--model",
        "no-such-model",
    ]
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    cases["cannot load model"] = [
        "compress",
        str(edf),
        "-o",
        str(tmp_path / "z.eegc"),
        "--model",
        str(tmp_path / "bad.pth"),
    ]
    cases["choose an output extension"] = [
        "decompress",
        str(arc),
        "-o",
        str(tmp_path / "o5.wav"),
        "--model",
        str(tiny_dac_path),
    ]

    for expected, args in cases.items():
        rc, err = _run(args, capsys)
        assert rc == 1, (expected, rc, err)
        assert expected in err, (expected, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("o", "x.", "y.", "z.")))
    assert leftovers == ["other.pth"]


def test_help_on_every_verb():
    for verb in ["compress", "decompress", "info", "eval", "models", "train"]:
        r = subprocess.run(
            [sys.executable, "-m", "eegcodec.cli", verb, "--help"], capture_output=True, text=True
        )
        assert r.returncode == 0 and "usage: eegcodec" in r.stdout
    r = subprocess.run([sys.executable, "-m", "eegcodec.cli"], capture_output=True, text=True)
    assert r.returncode == 2


def test_eval_json(tmp_path, edf, tiny_dac_path, capsys):
    import json

    assert (
        main(
            [
                "eval",
                str(edf),
                "--model",
                str(tiny_dac_path),
                "--codebooks",
                "1",
                "3",
                "--json",
                str(tmp_path / "r.json"),
                "-q",
            ]
        )
        == 0
    )
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["codebooks"] for r in rows] == [1, 3]
    assert rows[0]["bits_per_sample"] < rows[1]["bits_per_sample"]
    for r in rows:  # the worst channels, not only the median
        assert r["prd_p90_percent"] >= r["prd_percent"]
        worst = list(r["worst_channels"].values())
        assert (
            len(worst) == 3
            and worst == sorted(worst, reverse=True)
            and worst[0] >= r["prd_p90_percent"] - 1e-6
        )
    assert "| rec.edf | 1 |" in capsys.readouterr().out


@needs_shared
def test_default_model_on_eegbci_r01(tmp_path):
    """The default model round-trips EEGBCI R01 to EDF with names, rate, length and annotations intact."""
    src = SHARED_EEG / "eegbci_S001" / "S001R01.edf"
    assert main(["compress", str(src), "-o", str(tmp_path / "r01.eegc"), "-q"]) == 0
    assert main(["decompress", str(tmp_path / "r01.eegc"), "-o", str(tmp_path / "r01.edf"), "-q"]) == 0
    a = mne.io.read_raw(src, preload=True, verbose="error")
    b = mne.io.read_raw(tmp_path / "r01.edf", preload=True, verbose="error")
    assert a.ch_names == b.ch_names and a.info["sfreq"] == b.info["sfreq"] and a.n_times == b.n_times
    assert list(a.annotations.description) == list(b.annotations.description)
    np.testing.assert_allclose(a.annotations.onset, b.annotations.onset)
    from eegcodec.metrics import prd

    assert prd(a.get_data(), b.get_data()) < 50


def test_channels_the_model_cannot_follow_are_reported(tmp_path, pcm_codec, capsys):
    """A channel whose samples often miss (spikes beyond the codec's range on 10 % of them)
    is named by `info` and by the API helper; ordinary channels are not."""
    from eegcodec.api import often_exact_channels
    from eegcodec.format.container import Archive
    from eegcodec.pipeline import compress_raw

    raw = synthetic_raw(n_ch=3, seconds=20, stim=False)
    raw._data[2, ::10] += 5e-3  # 5 mV spikes on every 10th sample of EEG02
    data = compress_raw(raw, pcm_codec)
    flagged = often_exact_channels(Archive.from_bytes(data))
    assert list(flagged) == ["EEG02"] and 0.09 < flagged["EEG02"] < 0.11
    path = tmp_path / "spiky.eegc"
    path.write_bytes(data)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "EEG02: 10.0 % of its samples stored exactly" in out and "EEG01:" not in out


def test_demo_shows_every_mode_on_the_shipped_recording(tmp_path, capsys, monkeypatch):
    """``eegcodec demo`` (10 s, one depth): lossless exact, max-error within its bound, prd at or
    under its target (one 30-s chunk: the target holds for the file), token rows; writes only --json."""
    import json

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "rows.json"
    assert main(["demo", "--codebooks", "2", "--crop", "10", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bits/sample" in text and "Which to pick" in text and "tokens, 2 codebooks" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.json"]
    rows = {r["setting"]: r for r in json.loads(out.read_text())}
    assert list(rows) == [
        "lossless",
        "max-error 2 uV",
        "max-error 5 uV",
        "prd 5 %",
        "prd 10 %",
        "prd 20 %",
        "tokens, 2 codebooks",
    ]
    # lossless: the file's integers back; in volts, float rounding only (far below the 16-bit step)
    assert rows["lossless"]["prd_percent"] < 1e-9 and rows["lossless"]["max_abs_error_uv"] < 1e-6
    for bound in (2, 5):
        assert rows[f"max-error {bound} uV"]["max_abs_error_uv"] <= bound * (1 + 1e-9)
    for target in (5, 10, 20):
        assert rows[f"prd {target} %"]["prd_percent"] <= target * (1 + 1e-6)
    assert (
        rows["tokens, 2 codebooks"]["mode"] == "tokens" and rows["tokens, 2 codebooks"]["bits_per_sample"] > 0
    )
    assert all(r["bits_per_sample"] > 0 and r["cr16"] > 1 for r in rows.values())
    assert main(["demo", "--codebooks", "--crop", "2", "--json", str(out)]) == 1  # --json exists: --force
    assert "use --force" in capsys.readouterr().err


def test_eval_takes_lossless_and_max_error_rows(edf, capsys):
    assert main(["eval", str(edf), "--lossless", "--max-error", "3uV", "-q"]) == 0
    table = capsys.readouterr().out
    assert "| lossless |" in table and "| max-error<=3 uV |" in table and "max |err| uV" in table
    assert "| 1 |" not in table  # no model rows unless --codebooks
