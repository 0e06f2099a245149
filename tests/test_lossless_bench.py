"""eegcodec bench lossless: the EDF's digital samples, the anchors, the report."""

import json

import mne
import numpy as np
from conftest import synthetic_raw

from eegcodec.bench import lossless


def _edf(tmp_path):
    path = tmp_path / "S009R01.edf"
    raw = synthetic_raw(n_ch=10, seconds=8, stim=False)
    mne.export.export_raw(path, raw, verbose="error")
    return path


def test_edf_digital_samples_are_the_files_integers(tmp_path):
    path = _edf(tmp_path)
    ints = lossless.edf_digital(path)
    x = mne.io.read_raw(path, preload=True, verbose="error").get_data()
    assert ints.shape == x.shape and ints.dtype == np.int64
    assert ints.min() >= -(2**15) and ints.max() < 2**15
    # the volts are an affine map of the digital samples, channel by channel
    for row_i, row_x in zip(ints, x):
        a, b = np.polyfit(row_i, row_x, 1)
        np.testing.assert_allclose(a * row_i + b, row_x, rtol=0, atol=1e-3 * abs(a))
    (tmp_path / "other.edf").write_bytes(b"\xffBIOSEMI" + bytes(300))  # BDF bytes under an .edf name
    assert lossless.edf_digital(tmp_path / "other.edf") is None
    assert lossless.edf_digital(tmp_path / "rec.fif") is None  # not EDF: not even read


def test_bench_writes_per_file_and_per_group_figures(tmp_path):
    path = _edf(tmp_path)
    res = lossless.run(
        [str(path)], tmp_path / "out", lossless.LosslessConfig(max_errors_uv=[2.0]), progress=lambda m: None
    )
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    f = saved["files"][0]
    assert set(f["eegcodec"]) == {"lossless", "max-error=2"}
    assert f["eegcodec"]["max-error=2"]["max_abs_error_uv"] <= 2.0
    for name, value in f["anchors"].items():
        assert isinstance(value, float) or value in ("not installed", "samples not 16-bit integers"), name
    numeric = [v for v in f["anchors"].values() if isinstance(v, float)]
    assert f["best_anchor_bits_per_sample"] == min(numeric)
    group = saved["groups"][f["group"]]
    assert group["files"] == 1 and abs(group["ratio_to_best"] - f["ratio_to_best"]) < 1e-12
    assert "lossless / best" in (tmp_path / "out" / "report.md").read_text()
    assert res["files"][0]["file"] == "S009R01.edf"
