"""Device exports MNE does not read: OpenBCI GUI text files and Muse CSV files (synthetic files
laid out as the devices' software writes them)."""

from __future__ import annotations

import lzma

import numpy as np
import pytest

import eegcodec
import eegcodec.io
from eegcodec.devices import read_device, sniff
from eegcodec.errors import EegcodecError
from eegcodec.format.exact import find_grid

OPENBCI_HEAD = (
    "%OpenBCI Raw EXG Data\n%Number of channels = 8\n%Sample Rate = 250 Hz\n"
    "%Board = OpenBCI_GUI$BoardCytonSerial\n"
)


def _eeg_uv(n_ch: int, n: int, seed: int = 0) -> np.ndarray:
    """Two-decimal microvolts: a large DC offset per channel (as an unfiltered Cyton gives), a
    10-Hz rhythm and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 250
    offset = rng.uniform(-30000, 30000, (n_ch, 1))
    x = offset + 20 * np.sin(2 * np.pi * 10 * t) + np.cumsum(rng.normal(0, 2, (n_ch, n)), axis=1)
    return np.round(x, 2)


def write_openbci(path, uv: np.ndarray, start: float = 1617221234.125) -> str:
    n_ch, n = uv.shape
    cols = ["Sample Index"] + [f"EXG Channel {i}" for i in range(n_ch)]
    cols += (
        [f"Accel Channel {i}" for i in range(3)] + ["Other"] * 7 + [f"Analog Channel {i}" for i in range(3)]
    )
    cols += ["Timestamp", "Other", "Timestamp (Formatted)"]
    lines = [OPENBCI_HEAD + ", ".join(cols)]
    for j in range(n):
        exg = ", ".join(f"{v:.2f}" for v in uv[:, j])
        stamp = start + j / 250
        lines.append(
            f"{j % 256}, {exg}, 0.000, 0.000, 0.000, 192, 0, 0, 0, 0, 0, 0, 0, 0, 0, {stamp:.3f}, 0, "
            "2021-03-31 20:07:14.125"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def test_openbci_text_is_read_in_volts_with_its_rate_and_date(tmp_path):
    uv = _eeg_uv(8, 500)
    write_openbci(tmp_path / "OpenBCI-RAW-1.txt", uv)
    assert sniff(tmp_path / "OpenBCI-RAW-1.txt") == "openbci"
    raw = read_device(tmp_path / "OpenBCI-RAW-1.txt")
    assert raw.info["sfreq"] == 250 and raw.ch_names[:8] == [f"EXG Channel {i}" for i in range(8)]
    assert raw.get_channel_types()[:8] == ["eeg"] * 8 and raw.get_channel_types()[8:] == ["misc"] * 3
    np.testing.assert_allclose(raw.get_data()[:8] * 1e6, uv, rtol=0, atol=1e-9)
    assert raw.info["meas_date"].timestamp() == pytest.approx(1617221234.125)


def test_decimal_values_lie_on_a_grid():
    """Two-decimal microvolts far from zero: the smallest level difference is blurred by rounding,
    the grid is still found (0.01 uV)."""
    x = _eeg_uv(1, 5000)[0] * 1e-6
    origin, step, k = find_grid(x)
    assert step == pytest.approx(1e-8, rel=1e-9)
    assert np.abs(origin + k * step - x).max() < 1e-6 * step


def test_openbci_lossless_is_exact_and_smaller_than_xz_of_the_text(tmp_path):
    uv = _eeg_uv(8, 250 * 30, seed=1)
    text = write_openbci(tmp_path / "rec.txt", uv)
    raw = read_device(tmp_path / "rec.txt")
    data = eegcodec.compress(raw, None, lossless=True)
    back = eegcodec.decompress(data)
    got = back.get_data()[:8] * 1e6
    assert np.array_equal(np.round(got, 2), uv)  # the file's decimals, every sample
    assert len(data) < len(lzma.compress(text.encode(), preset=9))


def test_muse_exports_are_read(tmp_path):
    rng = np.random.default_rng(2)
    uv = np.round(800 + rng.normal(0, 20, (4, 512)), 3)
    lines = ["timestamps,TP9,AF7,AF8,TP10,Right AUX"]
    lines += [
        f"{1600000000 + j / 256:.6f}," + ",".join(f"{v:.3f}" for v in uv[:, j]) + ",0.0" for j in range(512)
    ]
    (tmp_path / "muselsl.csv").write_text("\n".join(lines) + "\n")
    raw = read_device(tmp_path / "muselsl.csv")
    assert raw.info["sfreq"] == 256 and raw.ch_names == ["TP9", "AF7", "AF8", "TP10", "Right AUX"]
    np.testing.assert_allclose(raw.get_data()[:4] * 1e6, uv, atol=1e-9)

    head = "TimeStamp,Delta_TP9,RAW_TP9,RAW_AF7,RAW_AF8,RAW_TP10,AUX_RIGHT,Elements"
    rows = [
        f"2021-03-04 12:00:{j / 256:09.6f},0.5," + ",".join(f"{v:.3f}" for v in uv[:, j]) + ",0.0,"
        for j in range(400)
    ]
    rows.insert(10, "2021-03-04 12:00:00.040000,,,,,,,/muse/elements/blink")  # an event row: no samples
    (tmp_path / "mind.csv").write_text("\n".join([head] + rows) + "\n")
    raw = read_device(tmp_path / "mind.csv")
    assert raw.info["sfreq"] == 256 and raw.ch_names == ["TP9", "AF7", "AF8", "TP10", "AUX_RIGHT"]
    assert raw.n_times == 400
    np.testing.assert_allclose(raw.get_data()[:4] * 1e6, uv[:, :400], atol=1e-9)


def test_other_text_files_are_refused_naming_the_file(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(EegcodecError, match="notes.csv.*OpenBCI"):
        read_device(tmp_path / "notes.csv")
    (tmp_path / "bad.txt").write_text(OPENBCI_HEAD + "0, 1.0, x\n")
    with pytest.raises(EegcodecError, match="bad.txt"):
        read_device(tmp_path / "bad.txt")


def test_cli_compresses_and_restores_an_openbci_file(tmp_path):
    from eegcodec.cli import main

    uv = _eeg_uv(8, 250 * 10, seed=3)
    write_openbci(tmp_path / "OpenBCI-RAW-2.txt", uv)
    assert (
        main(["compress", str(tmp_path / "OpenBCI-RAW-2.txt"), "-o", str(tmp_path / "a.eegc"), "--lossless"])
        == 0
    )
    assert main(["decompress", str(tmp_path / "a.eegc"), "-o", str(tmp_path / "back.fif")]) == 0
    back = eegcodec.io.read_raw(tmp_path / "back.fif").get_data()[:8] * 1e6
    assert np.array_equal(np.round(back, 2), uv)
