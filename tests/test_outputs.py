"""What the written file holds: each channel's own EDF/BDF scaling, a max-error bound kept in
every output format, annotations and metadata read back, broken inputs named."""

from __future__ import annotations

import edfio
import mne
import numpy as np
import pytest
from conftest import SHARED_EEG, needs_shared, synthetic_raw

from eegcodec.api import compress, decompress
from eegcodec.errors import EegcodecError
from eegcodec.format.container import VERSION
from eegcodec.format.header_checks import BOUND_ROUNDING
from eegcodec.reader import read_archive

# (label, unit, physical range, digital range): an ECG in mV among EEG in uV, an asymmetric range,
# digital ranges -32768..32767 and -32767..32767; the minima are those of EEGMAT channels that MNE
# reads a few ulps below their physical minimum
CHANNELS = [
    ("EEG Fp1", "uV", (-29.5595, 33.47668), (-32768, 32767)),
    ("EEG Fp2", "uV", (-31.9238, 30.79822), (-32768, 32767)),
    ("EEG O1", "uV", (-64.3422, 72.27818), (-32767, 32767)),
    ("EEG Cz", "uV", (-200.0, 850.5), (-32767, 32767)),
    ("ECG ECG", "mV", (-0.24088, 0.659145), (-32768, 32767)),
]


def _write_edf(path, seconds=6, sfreq=256, fmt="edf", seed=0):
    """An EDF (or BDF) whose channels reach their digital extremes; returns the path."""
    rng = np.random.default_rng(seed)
    n = seconds * sfreq
    cls = edfio.EdfSignal if fmt == "edf" else edfio.BdfSignal
    dtype = np.int16 if fmt == "edf" else np.int32
    signals = []
    for label, unit, prange, drange in CHANNELS:
        if fmt == "bdf":
            drange = (drange[0] * 256, drange[1] * 256 + 255)
        dig = np.cumsum(rng.integers(-400, 401, n)) % (drange[1] - drange[0]) + drange[0]
        dig[:2] = drange  # the extremes, where MNE's float scaling falls outside the range
        signals.append(
            cls.from_digital(
                dig.astype(dtype),
                sfreq,
                label=label,
                physical_dimension=unit,
                physical_range=prange,
                digital_range=drange,
            )
        )
    edf = (edfio.Edf if fmt == "edf" else edfio.Bdf)(signals)
    edf.write(path)
    return path


def _header(sig):
    return (sig.physical_dimension, sig.physical_min, sig.physical_max, sig.digital_min, sig.digital_max)


def _assert_same_signals(src, out, src_fmt):
    a = (edfio.read_edf if src_fmt == "edf" else edfio.read_bdf)(src)
    b = (edfio.read_edf if out.suffix == ".edf" else edfio.read_bdf)(out)
    assert [s.label for s in b.signals] == [s.label for s in a.signals]
    for sa, sb in zip(a.signals, b.signals):
        assert _header(sb) == _header(sa), sa.label
        np.testing.assert_array_equal(sb.digital, sa.digital, err_msg=sa.label)


@pytest.mark.parametrize(("src_fmt", "out_ext"), [("edf", ".edf"), ("edf", ".bdf"), ("bdf", ".bdf")])
def test_lossless_edf_output_keeps_each_channels_range(tmp_path, src_fmt, out_ext):
    src = _write_edf(tmp_path / f"rec.{src_fmt}", fmt=src_fmt)
    compress(src, tmp_path / "rec.eegc", lossless=True)
    out = tmp_path / f"out{out_ext}"
    decompress(tmp_path / "rec.eegc", out)
    _assert_same_signals(src, out, src_fmt)


@needs_shared
def test_lossless_eegmat_edf_output_gives_the_source_integers(tmp_path):
    src = SHARED_EEG / "eegmat" / "Subject12_2.edf"
    compress(src, tmp_path / "rec.eegc", lossless=True)
    decompress(tmp_path / "rec.eegc", tmp_path / "out.edf")
    _assert_same_signals(src, tmp_path / "out.edf", "edf")


BOUND = 2e-6
FORMATS = (".edf", ".bdf", ".fif", ".vhdr", ".set")


def _largest_errors(eegc, original, tmp_path, formats=FORMATS):
    """{extension: largest error (volts) over the EEG channels of the file written and read back}."""
    eeg = [original.ch_names[i] for i in mne.pick_types(original.info, eeg=True)]
    out = {}
    for ext in formats:
        dst = tmp_path / f"out{ext}"
        decompress(eegc, dst)
        back = mne.io.read_raw(dst, preload=True, verbose="error")
        assert back.n_times == original.n_times
        out[ext] = float(np.abs(back.get_data(picks=eeg) - original.get_data(picks=eeg)).max())
    return out


def test_max_error_bound_holds_in_every_written_format(tmp_path):
    raw = synthetic_raw(n_ch=6, seconds=12, stim=True)
    compress(raw, tmp_path / "rec.eegc", max_error=BOUND)
    errors = _largest_errors(tmp_path / "rec.eegc", raw, tmp_path)
    assert max(errors.values()) <= BOUND * (1 + BOUND_ROUNDING), errors


def test_max_error_format_that_cannot_hold_the_bound_is_refused(tmp_path):
    raw = synthetic_raw(n_ch=3, seconds=4, stim=False)
    raw._data[1, 100:] += 1.0  # a 1-V step: more levels of the coder's grid than EDF's 16 bits hold
    compress(raw, tmp_path / "rec.eegc", max_error=BOUND)
    with pytest.raises(EegcodecError, match=r"EEG01 .*\.fif"):
        decompress(tmp_path / "rec.eegc", tmp_path / "out.edf")
    assert not (tmp_path / "out.edf").exists()
    errors = _largest_errors(tmp_path / "rec.eegc", raw, tmp_path, (".bdf", ".fif"))
    assert max(errors.values()) <= BOUND * (1 + BOUND_ROUNDING), errors


@pytest.mark.parametrize("resolution", [1e-6, 0.1e-6])
def test_max_error_uses_the_whole_bound_on_a_coarse_grid_and_every_format_keeps_it(tmp_path, resolution):
    """A 1-uV bound on a 1-uV grid (or 10 steps of a 0.1-uV grid) keeps one step (ten) either side
    instead of none (nine); the header records the largest error, and each output format holds the
    bound or is refused."""
    raw = synthetic_raw(n_ch=4, seconds=12, stim=False)
    raw._data[:] = np.round(raw._data / resolution) * resolution
    bound = 1e-6
    lossless = compress(raw, tmp_path / "ll.eegc", lossless=True)
    bounded = compress(raw, tmp_path / "rec.eegc", max_error=bound)
    assert len(bounded) < 0.8 * len(lossless)  # one step either side saves log2(3) bits a sample
    header = read_archive(tmp_path / "rec.eegc").header
    errors = np.abs(decompress(tmp_path / "rec.eegc").get_data() - raw.get_data())
    assert header.version == VERSION and header.largest_error == pytest.approx(errors.max(), rel=1e-9)
    assert bound * (1 - 1e-6) < header.largest_error <= bound * (1 + BOUND_ROUNDING)
    for ext in FORMATS:
        try:
            worst = _largest_errors(tmp_path / "rec.eegc", raw, tmp_path, (ext,))[ext]
        except EegcodecError as exc:  # a grid the format cannot state: refused, never written over the bound
            assert resolution < 1e-6 and "max-error bound" in str(exc) and ".fif" in str(exc), exc
            continue
        assert worst <= bound * (1 + BOUND_ROUNDING), (ext, worst)


def _cropped_edf(src, dst, seconds):
    edf = edfio.read_edf(src)
    edf.slice_between_seconds(0, seconds)
    edf.write(dst)
    return dst


@needs_shared
@pytest.mark.parametrize("name", ["eegbci_more/S002R01.edf", "eegmat/Subject12_2.edf"])
def test_max_error_bound_holds_in_every_written_format_on_real_eeg(tmp_path, name):
    src = _cropped_edf(SHARED_EEG / name, tmp_path / "src.edf", 20)
    compress(src, tmp_path / "rec.eegc", max_error=BOUND)
    errors = _largest_errors(
        tmp_path / "rec.eegc", mne.io.read_raw(src, preload=True, verbose="error"), tmp_path
    )
    assert max(errors.values()) <= BOUND * (1 + BOUND_ROUNDING), errors


def _broken_edfs(folder):
    """A good EDF, one cut inside its data records, one cut inside its header, one whose
    'number of data records' field is blank; returns {name: the phrase its error must hold}."""
    folder.mkdir()
    raw = synthetic_raw(n_ch=3, seconds=4, stim=False)
    good = folder / "good.edf"
    mne.export.export_raw(good, raw, verbose="error")
    data = good.read_bytes()
    (folder / "cut_data.edf").write_bytes(data[: len(data) - 500])
    (folder / "cut_header.edf").write_bytes(data[:600])
    garbled = bytearray(data)
    garbled[236:244] = b" " * 8
    (folder / "garbled.edf").write_bytes(bytes(garbled))
    return {
        "cut_data.edf": "truncated EDF file: its header declares 4 data records",
        "cut_header.edf": "truncated EDF file",
        "garbled.edf": "not a valid EDF header (field 'number of data records' is empty)",
    }


def test_broken_edf_names_the_file_and_the_problem(tmp_path):
    from eegcodec.io import read_raw

    for name, problem in _broken_edfs(tmp_path / "in").items():
        path = tmp_path / "in" / name
        with pytest.raises(EegcodecError) as info:
            compress(path, tmp_path / "x.eegc", lossless=True)
        assert str(info.value).startswith(f"cannot read {path}: {problem}"), str(info.value)
        with pytest.raises(EegcodecError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            read_raw(path)


def test_folder_run_reports_broken_files_and_goes_on(tmp_path, capsys):
    from eegcodec.cli import main

    problems = _broken_edfs(tmp_path / "in")
    rc = main(["compress", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--lossless", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert (tmp_path / "out" / "good.eegc").exists()
    for name, problem in problems.items():
        line = next(ln for ln in err.splitlines() if name in ln)
        assert problem in line, line
        assert not (tmp_path / "out" / name.replace(".edf", ".eegc")).exists()


DESCRIPTIONS = [
    "T0",
    "Stimulus/S  1",
    "Response/R 12",
    "Comment/foo",
    "Stimulus/S1",
    "Stimulus/bar",
    "New Segment/",
    "a,b",
    "Comment/Comment/x",
]


@pytest.mark.parametrize("dated", [True, False])
def test_brainvision_output_keeps_annotation_descriptions(tmp_path, dated):
    from eegcodec.io import read_raw

    raw = synthetic_raw(n_ch=3, seconds=12, stim=False)
    if not dated:
        raw.set_meas_date(None)
    onsets = np.arange(len(DESCRIPTIONS)) + 0.5
    raw.set_annotations(mne.Annotations(onsets, 0.25, DESCRIPTIONS, orig_time=raw.info["meas_date"]))
    compress(raw, tmp_path / "rec.eegc", lossless=True)
    decompress(tmp_path / "rec.eegc", tmp_path / "out.vhdr")
    back = read_raw(tmp_path / "out.vhdr")
    assert list(back.annotations.description) == DESCRIPTIONS
    np.testing.assert_allclose(back.annotations.onset - back.first_time, onsets, atol=1 / raw.info["sfreq"])
    np.testing.assert_allclose(back.annotations.duration, 0.25, atol=1 / raw.info["sfreq"])
    # what any BrainVision reader sees: the typed markers as written, the rest as comments
    plain = mne.io.read_raw(tmp_path / "out.vhdr", verbose="error").annotations.description
    assert list(plain[:3]) == ["Comment/T0", "Stimulus/S  1", "Response/R 12"]


def test_eeglab_output_keeps_the_measurement_date(tmp_path):
    from eegcodec.io import read_raw

    raw = synthetic_raw(n_ch=3, seconds=6, stim=False)
    date = raw.info["meas_date"]
    raw.set_annotations(mne.Annotations([1.5], [0.5], ["T0"], orig_time=date))
    compress(raw, tmp_path / "rec.eegc", lossless=True)
    with pytest.warns(UserWarning, match="MNE's EEGLAB reader ignores the measurement date"):
        decompress(tmp_path / "rec.eegc", tmp_path / "out.set")
    back = read_raw(tmp_path / "out.set")
    assert back.info["meas_date"] == date
    assert list(back.annotations.description) == ["T0"]
    np.testing.assert_allclose(back.annotations.onset - back.first_time, [1.5], atol=1 / raw.info["sfreq"])
    # and through a second compression, as eegcodec reads it
    again = decompress(compress(tmp_path / "out.set", None, lossless=True))
    assert again.info["meas_date"] == date


def _xdf_chunk(tag: int, content: bytes) -> bytes:
    """One XDF chunk: 8-byte length (of tag and content), u16 tag, content."""
    import struct

    return struct.pack("<BQH", 8, len(content) + 2, tag) + content


def _xdf_file(path, streams):
    """A minimal XDF file (magic, FileHeader, per stream StreamHeader, Samples, StreamFooter), as
    the XDF specification lays it out. ``streams``: (id, info XML, time stamps, samples, format)."""
    import struct

    out = [b"XDF:", _xdf_chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    for sid, xml, stamps, samples, fmt in streams:
        out.append(_xdf_chunk(2, struct.pack("<I", sid) + xml.encode()))
        body = [struct.pack("<IBQ", sid, 8, len(stamps))]  # stream id, 8-byte sample count
        for t, row in zip(stamps, samples):
            body.append(struct.pack("<Bd", 8, t))
            if fmt == "string":
                body += [struct.pack("<BQ", 8, len(v.encode())) + v.encode() for v in row]
            else:
                body.append(np.asarray(row, dtype="<f4").tobytes())
        out.append(_xdf_chunk(3, b"".join(body)))
        footer = (
            f"<info><first_timestamp>{stamps[0]}</first_timestamp><last_timestamp>{stamps[-1]}"
            f"</last_timestamp><sample_count>{len(stamps)}</sample_count></info>"
        )
        out.append(_xdf_chunk(6, struct.pack("<I", sid) + footer.encode()))
    path.write_bytes(b"".join(out))
    return path


def _xdf_info(name, kind, channels, srate, fmt):
    chans = "".join(
        f"<channel><label>{label}</label><unit>{unit}</unit><type>{t}</type></channel>"
        for label, unit, t in channels
    )
    return (
        f'<?xml version="1.0"?><info><name>{name}</name><type>{kind}</type>'
        f"<channel_count>{max(len(channels), 1)}</channel_count><nominal_srate>{srate}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><created_at>0</created_at>"
        f"<desc><channels>{chans}</channels></desc></info>"
    )


def test_xdf_eeg_stream_is_read_and_compressed_losslessly(tmp_path):
    from eegcodec.io import read_raw
    from eegcodec.xdf import read_xdf

    rng = np.random.default_rng(3)
    sfreq, n = 100.0, 700
    samples = rng.normal(0, 20, (n, 3)).astype(np.float32)  # microvolts, float32 as LSL sends them
    samples[:, 2] = rng.normal(0, 0.5, n).astype(np.float32)  # the ECG in millivolts
    stamps = 1000.0 + np.arange(n) / sfreq
    eeg_xml = _xdf_info(
        "amp",
        "EEG",
        [("Fz", "microvolts", "EEG"), ("Cz", "uV", "EEG"), ("ECG", "mV", "ECG")],
        sfreq,
        "float32",
    )
    aux_xml = _xdf_info("aux", "Misc", [(f"a{i}", "", "AUX") for i in range(5)], sfreq, "float32")
    marker_xml = _xdf_info("cues", "Markers", [], 0, "string")
    path = _xdf_file(
        tmp_path / "rec.xdf",
        [
            (1, aux_xml, stamps, np.zeros((n, 5)), "float32"),
            (2, eeg_xml, stamps, samples, "float32"),
            (3, marker_xml, [1001.5, 1004.0], [["T0"], ["T1"]], "string"),
        ],
    )
    raw = read_raw(path)
    assert raw.ch_names == ["Fz", "Cz", "ECG"] and raw.get_channel_types() == ["eeg", "eeg", "ecg"]
    assert raw.info["sfreq"] == sfreq and raw.n_times == n
    np.testing.assert_allclose(raw.get_data()[:2], samples[:, :2].T.astype(float) * 1e-6, rtol=1e-12)
    np.testing.assert_allclose(raw.get_data()[2], samples[:, 2].astype(float) * 1e-3, rtol=1e-12)
    assert list(raw.annotations.description) == ["T0", "T1"]
    np.testing.assert_allclose(raw.annotations.onset, [1.5, 4.0], atol=1 / sfreq)
    assert read_xdf(path, stream="aux").ch_names == [f"a{i}" for i in range(5)]

    compress(path, tmp_path / "rec.eegc", lossless=True)
    back = decompress(tmp_path / "rec.eegc", tmp_path / "out.fif")
    # lossless: the float32 values the amplifier sent, exactly
    np.testing.assert_array_equal((back.get_data()[:2] / 1e-6).astype(np.float32), samples[:, :2].T)
    np.testing.assert_array_equal((back.get_data()[2] / 1e-3).astype(np.float32), samples[:, 2])
    assert list(back.annotations.description) == ["T0", "T1"]


def test_xdf_irregular_stream_is_a_clear_error(tmp_path):
    from eegcodec.io import read_raw

    xml = _xdf_info("amp", "EEG", [("Fz", "microvolts", "EEG")], 0, "float32")
    path = _xdf_file(tmp_path / "rec.xdf", [(1, xml, [1.0, 1.3, 2.0], [[1.0], [2.0], [3.0]], "float32")])
    with pytest.raises(EegcodecError, match=r"rec\.xdf: XDF stream 'amp' has an irregular rate"):
        read_raw(path)
