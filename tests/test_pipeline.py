"""Round trips through the whole data path with a near-lossless test codec."""

import hashlib
import json
from pathlib import Path

import mne
import numpy as np
import pytest
from conftest import PCMCodec, synthetic_raw

from eegcodec.adapt import AdapterConfig
from eegcodec.errors import InvalidSignalError
from eegcodec.format.container import Archive, unpack_arrays
from eegcodec.metrics import prd
from eegcodec.pipeline import archive_codes, compress_raw, decompress_archive
from eegcodec.reader import check_archive

DATA = Path(__file__).parent / "data"


def roundtrip(raw, codec, **kw):
    data = compress_raw(raw, codec, **kw)
    return decompress_archive(Archive.from_bytes(data), codec), data


def test_roundtrip_preserves_info_annotations_and_samples(raw, pcm_codec):
    out, _ = roundtrip(raw, pcm_codec)
    assert out.ch_names == raw.ch_names
    assert out.get_channel_types() == raw.get_channel_types()
    assert out.info["sfreq"] == raw.info["sfreq"]
    assert out.n_times == raw.n_times
    assert out.info["meas_date"] == raw.info["meas_date"]
    np.testing.assert_array_equal(out.annotations.onset, raw.annotations.onset)
    np.testing.assert_array_equal(out.annotations.duration, raw.annotations.duration)
    assert list(out.annotations.description) == list(raw.annotations.description)
    eeg = mne.pick_types(raw.info, eeg=True)
    assert prd(raw.get_data(picks=eeg), out.get_data(picks=eeg)) < 1.0  # percent
    stim = mne.pick_types(raw.info, stim=True, eeg=False)
    np.testing.assert_array_equal(out.get_data(picks=stim), raw.get_data(picks=stim))


def test_resampling_and_codebook_depth(pcm_codec):
    raw = synthetic_raw(n_ch=4, sfreq=250.0, seconds=12, stim=False)
    full, data_full = roundtrip(raw, pcm_codec)
    coarse, data_coarse = roundtrip(raw, pcm_codec, n_codebooks=2)
    x = raw.get_data()
    # the codec sees 160 Hz: content up to ~80 Hz survives, so the error stays small
    assert prd(x, full.get_data()) < 25
    assert len(data_coarse) < len(data_full)
    assert prd(x, coarse.get_data()) > prd(x, full.get_data())


def test_chunk_seams_no_worse_than_elsewhere():
    cfg = AdapterConfig(model_rate=160.0, chunk_seconds=4.0, overlap_seconds=0.5)
    codec = PCMCodec(adapter=cfg)
    # band-limited below the codec's Nyquist, so resampling itself is near-exact and any
    # chunk-edge error shows (without the cross-fade the border error is ~5x the rest)
    raw = synthetic_raw(n_ch=6, sfreq=250.0, seconds=40, stim=False).filter(None, 50, verbose="error")
    out, data = roundtrip(raw, codec)
    arc = Archive.from_bytes(data)
    assert len(arc.header.chunk_frames) > 5
    err = (raw.get_data() - out.get_data()) ** 2
    sf = raw.info["sfreq"]
    stride = int(4.0 * sf) - int(0.5 * sf)
    borders = np.arange(stride, raw.n_times - stride, stride)
    near = np.zeros(raw.n_times, bool)
    for b in borders:
        near[max(0, b - int(0.25 * sf)) : b + int(0.75 * sf)] = True
    near_rms = np.sqrt(err[:, near].mean())
    far_rms = np.sqrt(err[:, ~near].mean())
    assert near_rms < 1.5 * far_rms, (near_rms, far_rms)


def test_large_step_artefact_is_not_flattened(pcm_codec):
    raw = synthetic_raw(n_ch=3, seconds=20, stim=False)
    x = raw.get_data()
    x[1, 1600:] += 5e-3  # a 5 mV step in ~50 uV EEG
    raw._data[:] = x
    out, data = roundtrip(raw, pcm_codec)
    y = out.get_data()
    step = y[1, 1610:1700].mean() - y[1, 1500:1590].mean()
    assert abs(step - 5e-3) < 0.02 * 5e-3
    arc = Archive.from_bytes(data)
    assert unpack_arrays(arc.side, arc.header.side, arc.header.version)["outlier_count"].sum() > 0
    assert np.abs(x - y).max() < 6 * 60e-6  # within outlier_sigma x a generous chunk scale


def test_step_artefact_with_real_codec_is_bounded(tiny_dac_path):
    """With a (random, untrained) DAC the side list still restores the artefact."""
    from eegcodec.backends.registry import load_codec

    codec = load_codec(tiny_dac_path)
    raw = synthetic_raw(n_ch=2, seconds=20, stim=False)
    raw._data[0, 1000:] += 5e-3
    out, _ = roundtrip(raw, codec)
    y = out.get_data()
    assert abs((y[0, 1010:1100].mean() - y[0, 900:990].mean()) - 5e-3) < 0.05 * 5e-3


def test_nan_flat_and_stim_channels_are_kept(pcm_codec):
    raw = synthetic_raw(n_ch=4, seconds=10)
    raw._data[0, 100:180] = np.nan
    raw._data[1, :] = 7e-6  # flat
    raw._data[2, :] = np.nan  # empty
    out, data = roundtrip(raw, pcm_codec)
    y = out.get_data()
    assert np.isnan(y[0, 100:180]).all() and not np.isnan(y[0, :100]).any() and not np.isnan(y[0, 180:]).any()
    np.testing.assert_array_equal(y[1], raw._data[1])
    assert np.isnan(y[2]).all()
    reasons = Archive.from_bytes(data).header.lossless_reasons
    assert reasons == {1: "flat (constant) channel", 2: "all samples NaN", 4: "stim channel"}


OLD_FILES = [
    ("v1_pcm", 1),
    ("v2_pcm", 2),
    ("v3_tokens", 3),
    ("v3_lossless", 3),
    ("v4_tokens", 4),
    ("v4_prd", 4),
]

#: decoded float samples may differ from a reference by this fraction of the largest magnitude
#: among the coded channels (float64 rounding of resampling, scaling, baseline, mains,
#: cross-fades and the transform layer on other machines and library versions):
#: docs/FORMAT.md, "Reproducibility"
FLOAT_TOLERANCE = 1e-9


def integer_parts(arc: Archive, codec) -> dict[str, np.ndarray]:
    """What a file holds as numbers, read from its bytes with no arithmetic: its codes (token
    files) and its side arrays (integers, and the float32 values of versions 1-4)."""
    h = arc.header
    out = {"codes": archive_codes(arc, codec)} if h.has_tokens else {}
    return {**out, **(unpack_arrays(arc.side, h.side, h.version) if h.side else {})}


def digest(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and little-endian bytes."""
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def assert_decoded_matches(arc: Archive, got: np.ndarray, want: np.ndarray) -> None:
    """``got`` decodes ``arc`` as ``want`` does: the exactly stored channels, outliers and NaN
    runs bit for bit, the coded channels within :data:`FLOAT_TOLERANCE`."""
    h = arc.header
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[h.lossless], want[h.lossless])  # exactly stored: the same bits
    if not h.coded:
        return
    coded = np.asarray(h.coded)
    outliers = check_archive(arc).outliers
    if outliers is not None:
        at = coded[outliers[0]], outliers[1]
        np.testing.assert_array_equal(got[at], want[at])
    peak = np.nanmax(np.abs(want[coded]))
    np.testing.assert_allclose(got[coded], want[coded], rtol=0, atol=FLOAT_TOLERANCE * peak)


@pytest.mark.parametrize("name,version", OLD_FILES)
def test_old_versions_decode_to_the_same_samples(pcm_codec, name, version):
    """Files written by eegcodec 0.2.0 (format versions 1 and 2), 0.3.0 (version 3) and 0.4.0
    (version 4), in tests/data/, hold the same codes and side arrays as when they were written
    (old_versions_integers.json) and decode to the samples that version decoded them to: the
    exactly stored parts bit for bit, the coded channels within the rounding of the float
    operations (:data:`FLOAT_TOLERANCE`; test codec: the network adds no rounding of its own)."""
    data = (DATA / f"{name}.eegc").read_bytes()
    want = np.load(DATA / "old_versions_decoded.npz")[name.replace("_pcm", "")]
    arc = Archive.from_bytes(data)
    assert arc.header.version == version
    stored = json.loads((DATA / "old_versions_integers.json").read_text())[name]
    assert {k: digest(v) for k, v in integer_parts(arc, pcm_codec).items()} == stored
    assert_decoded_matches(arc, decompress_archive(arc, pcm_codec).get_data(), want)


def test_decoded_comparison_allows_rounding_and_nothing_else(pcm_codec):
    """:func:`assert_decoded_matches` takes the last bits of the coded channels as rounding, and
    refuses one bit off in an exactly stored channel or an outlier, or more than rounding."""
    arc = Archive.from_bytes((DATA / "v4_tokens.eegc").read_bytes())
    want = np.load(DATA / "old_versions_decoded.npz")["v4_tokens"]
    coded, exact = np.asarray(arc.header.coded), arc.header.lossless[0]
    rows, idx, _ = check_archive(arc).outliers
    rounded = want.copy()
    rounded[coded] = np.nextafter(want[coded], np.inf)  # coded samples one unit in the last place off
    rounded[coded[rows], idx] = want[coded[rows], idx]  # but the outliers, stored exactly
    assert_decoded_matches(arc, rounded, want)
    with pytest.raises(AssertionError):  # what the test of old files asked before
        np.testing.assert_array_equal(rounded, want)
    peak = np.nanmax(np.abs(want[coded]))
    for row, i, change in (
        (exact, 100, lambda v: np.nextafter(v, np.inf)),
        (coded[rows[0]], idx[0], lambda v: np.nextafter(v, np.inf)),
        (coded[0], 50, lambda v: v + 10 * FLOAT_TOLERANCE * peak),
    ):
        bad = want.copy()
        bad[row, i] = change(bad[row, i])
        with pytest.raises(AssertionError):
            assert_decoded_matches(arc, bad, want)


def test_infinite_values_are_refused(pcm_codec):
    raw = synthetic_raw(n_ch=2, seconds=5, stim=False)
    raw._data[1, 50] = np.inf
    with pytest.raises(InvalidSignalError, match="EEG01.*sample 50"):
        compress_raw(raw, pcm_codec)


def test_drift_is_carried_by_the_baseline(pcm_codec):
    raw = synthetic_raw(n_ch=2, seconds=30, stim=False)
    t = raw.times
    raw._data[:] += 2e-3 * np.sin(2 * np.pi * 0.02 * t)  # 2 mV drift
    out, _ = roundtrip(raw, pcm_codec)
    assert prd(raw.get_data(), out.get_data()) < 1.0


def test_anonymize_drops_identity(pcm_codec):
    raw = synthetic_raw(n_ch=2, seconds=5)
    raw.info["subject_info"] = {"his_id": "patient-123", "first_name": "Ada"}
    out, data = roundtrip(raw, pcm_codec, anonymize=True)
    assert b"patient-123" not in data and b"Ada" not in data
    assert out.info["meas_date"] != raw.info["meas_date"]
    assert len(out.annotations) == len(raw.annotations)


def test_fif_first_samp_and_channel_annotations(pcm_codec, tmp_path):
    raw = synthetic_raw(n_ch=3, seconds=10)
    raw.annotations.ch_names[0] = ("EEG01",) if False else raw.annotations.ch_names[0]
    raw.set_annotations(
        mne.Annotations([2.0], [1.0], ["BAD_ch"], orig_time=raw.info["meas_date"], ch_names=[["EEG01"]])
    )
    raw.save(tmp_path / "r_raw.fif", verbose="error")
    raw2 = mne.io.read_raw_fif(tmp_path / "r_raw.fif", verbose="error").crop(1.0, None)
    out, _ = roundtrip(raw2, pcm_codec)
    assert out.first_samp == raw2.first_samp
    assert out.annotations.ch_names[0] == ("EEG01",)
    np.testing.assert_allclose(out.annotations.onset, raw2.annotations.onset)


def test_training_windows_are_exactly_what_compression_codes():
    """Training (train.data.adapted_chunks) and compression feed the codec the same arrays,
    bit for bit: both go through chunks.ChunkCoder.prepare (scales rounded as stored)."""
    from eegcodec.train.data import adapted_chunks

    seen = []

    class Spy(PCMCodec):
        def encode_channels(self, x, n_codebooks, montage=None):
            seen.append(x.copy())
            return super().encode_channels(x, n_codebooks, montage)

    raw = synthetic_raw(n_ch=3, seconds=70)
    raw._data[0, 100:200] = np.nan
    codec = Spy()
    compress_raw(raw, codec, n_codebooks=2)
    chunks, names = adapted_chunks(raw, codec.info.adapter, codec.info.hop_length)
    assert names == ["EEG00", "EEG01", "EEG02"] and len(chunks) == len(seen) == 3
    for a, b in zip(chunks, seen):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["tokens", "prd"])
def test_decoded_raw_writes_the_same_fif_as_decoding_in_memory(pcm_codec, tmp_path, kind):
    """DecodedRaw (FIF output of lossy files) decodes chunk by chunk as MNE writes: the FIF holds
    the in-memory decode's samples (NaN runs, exact channels and outliers included), and reads
    going backwards start over and agree."""
    from eegcodec.io import write_raw
    from eegcodec.rawview import DecodedRaw

    raw = synthetic_raw(n_ch=4, seconds=75)  # three 30-s chunks
    raw._data[0, 5000:5100] = np.nan
    raw._data[1, 3000] = 4e-3  # a spike the codec misses: stored exactly
    raw._data[2, :] = 7e-6  # flat: an exact channel
    data = compress_raw(raw, pcm_codec, **({"prd": 10.0} if kind == "prd" else {"n_codebooks": 2}))
    arc = Archive.from_bytes(data)
    want = decompress_archive(arc, pcm_codec)
    lazy = DecodedRaw(arc, pcm_codec)
    n = want.n_times
    np.testing.assert_array_equal(lazy.get_data(start=n - 500, stop=n), want.get_data(start=n - 500, stop=n))
    np.testing.assert_array_equal(lazy.get_data(start=10, stop=4000), want.get_data(start=10, stop=4000))
    write_raw(lazy, tmp_path / "lazy.fif")
    write_raw(want, tmp_path / "mem.fif")
    a = mne.io.read_raw_fif(tmp_path / "lazy.fif", verbose="error")
    b = mne.io.read_raw_fif(tmp_path / "mem.fif", verbose="error")
    np.testing.assert_array_equal(a.get_data(), b.get_data())
    assert a.annotations.description.tolist() == b.annotations.description.tolist()
    assert np.isnan(a.get_data()[0, 5000:5100]).all()
    if kind == "tokens":
        assert abs(a.get_data()[1, 3000] - 4e-3) < 1e-9


def _clipped(grid_step: float | None) -> mne.io.RawArray:
    """Three channels; channel 1 clipped over a run and spiking (the samples the PCM codec at
    depth 1 misses by far, stored exactly); on an EDF-like grid of ``grid_step`` volts (None:
    off any grid)."""
    raw = synthetic_raw(n_ch=3, seconds=12, stim=False, seed=5)
    x = raw.get_data()
    x[1, 400:460] = 3e-3
    x[1, 900:1300:7] = -2e-3
    if grid_step is not None:
        x = np.round(x / grid_step) * grid_step - 0.25 * grid_step  # EDF: digital * gain + offset
    raw._data[:] = x
    return raw


@pytest.mark.parametrize("grid_step", [0.03125e-6, None])
def test_outliers_come_back_on_their_grid(pcm_codec, grid_step):
    """Version 5 stores the exactly stored samples as integer levels on their channel's grid: they
    decode to the original within a millionth of a step (data off any grid: float32, as before)."""
    raw = _clipped(grid_step)
    out, data = roundtrip(raw, pcm_codec, n_codebooks=1)
    arc = Archive.from_bytes(data)
    side = unpack_arrays(arc.side, arc.header.side, arc.header.version)
    assert (side["outlier_grid"][1, 1] > 0) == (grid_step is not None)
    rows, idx, _ = check_archive(arc).outliers
    at = idx[rows == 1]
    assert {*range(400, 460), *range(900, 1300, 7)} <= set(at)
    x, y = raw.get_data()[1], out.get_data()[1]
    want = x[at] if grid_step else x[at].astype(np.float32).astype(np.float64)
    tol = 1e-6 * grid_step if grid_step else 0.0
    np.testing.assert_allclose(y[at], want, rtol=0, atol=tol)


def test_side_frames_pick_the_smallest_coding():
    """Version 5 side frames: zstd, grouped ANS, or ANS of first differences, whichever is smaller,
    each decoding to the array; a frame with bytes after its arrays, or cut short, is refused."""
    from eegcodec.errors import CorruptFileError
    from eegcodec.format.container import pack_arrays

    rng = np.random.default_rng(0)
    arrays = {
        "ramp": np.arange(-1000, 1000, 3),  # differences: constant
        "laplace": rng.laplace(0, 20, (8, 50)).round().astype(np.int64),
        "runs": np.tile([0, 0, 0, 7], 64),  # repeats: zstd
        "empty": np.zeros((0, 3), np.int64),
    }
    payload, index = pack_arrays(arrays, 5)
    kinds, pos = [], 0
    for _ in index:
        size = int.from_bytes(payload[pos : pos + 4], "little")
        kinds.append(payload[pos + 4])
        pos += 4 + size
    assert kinds[:3] == [2, 1, 0]
    out = unpack_arrays(payload, index, 5)
    for k, v in arrays.items():
        np.testing.assert_array_equal(out[k], v)
    for bad in (payload + b"\0", payload[:-3]):
        with pytest.raises(CorruptFileError, match="SIDE"):
            unpack_arrays(bad, index, 5)


def test_chunks_coded_in_threads_equal_one_by_one(tiny_dac_path):
    """Two torch threads code two chunks at once (Codec.map_chunks): same codes, same samples
    as one chunk after the other, results in the layout's order."""
    import time

    import torch

    from eegcodec.backends.registry import load_codec

    codec = load_codec(tiny_dac_path)
    raw = synthetic_raw(n_ch=3, seconds=40, stim=False)  # 8-s chunks: several in flight
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        order = list(codec.map_chunks(lambda i: (time.sleep(0.02 * (i % 2)), i)[1], ((i,) for i in range(7))))
        threaded = compress_raw(raw, codec)
        back_threaded = decompress_archive(Archive.from_bytes(threaded), codec).get_data()
        assert torch.get_num_threads() == 2  # restored after the chunks
        torch.set_num_threads(1)
        single = compress_raw(raw, codec)
        back_single = decompress_archive(Archive.from_bytes(single), codec).get_data()
    finally:
        torch.set_num_threads(threads)
    assert order == list(range(7))
    a, b = Archive.from_bytes(threaded), Archive.from_bytes(single)
    assert a.codes == b.codes and len(a.header.chunk_frames) > 2
    np.testing.assert_allclose(back_threaded, back_single, rtol=0, atol=1e-9)
