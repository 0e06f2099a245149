"""The segmented adaptive exact coder (eegcodec.format.adaptive, RAWC channel mode 4): exact round
trips, sample windows decoded from the segments that cover them equal to the full decode bit for
bit, the near-lossless bound, mode 4 refused before version 8, damaged frames refused, and a
committed version-8 and version-9 files decoded bit for bit."""

import hashlib
import struct
from pathlib import Path

import mne
import numpy as np
import pytest
from conftest import check_exact_fixture, exact_fixture_recording
from test_lossless_adaptive import _ints

from eegcodec.adapt import AdapterConfig
from eegcodec.errors import CorruptFileError
from eegcodec.format import adaptive
from eegcodec.format.container import Archive
from eegcodec.format.exact import decode_block, encode_block
from eegcodec.pipeline import compress_raw, decompress_archive

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("shape", [(6, 3000), (1, 1), (2, 5), (3, 40), (6, 1), (5, 256)])
@pytest.mark.parametrize("segment", [64, 4096])
def test_round_trip_is_exact(shape, segment):
    k = _ints(n=max(shape[1], 1))[: shape[0], : shape[1]]
    frame, rebuilt = adaptive.encode_ints(k, segment=segment)
    np.testing.assert_array_equal(rebuilt, k)
    np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape), k)


def test_random_windows_equal_the_full_decode():
    """Windows of every kind (inside one segment, across several, touching the ends, empty) decode
    to the full decode's columns bit for bit, lossless and with bounds."""
    k = _ints(seed=8, n=1000)
    rng = np.random.default_rng(9)
    for bounds in (None, np.array([0, 2, 0, 1, 5, 0])):
        frame, rebuilt = adaptive.encode_ints(k, bounds, segment=128)
        full = adaptive.decode_ints(frame, *k.shape)
        np.testing.assert_array_equal(full, rebuilt)
        windows = [(0, 1000), (0, 1), (999, 1000), (127, 129), (128, 256), (500, 500), (0, 0)]
        windows += [tuple(sorted(rng.integers(0, 1001, 2))) for _ in range(20)]
        for a, b in windows:
            np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape, a, b), full[:, a:b])
    with pytest.raises(ValueError):
        adaptive.decode_ints(frame, *k.shape, 10, 1001)


@pytest.mark.parametrize("workers", [1, 3])
def test_segments_on_threads_give_the_same_frame(monkeypatch, workers):
    """Segments coded and decoded on several threads give the frame and samples of one thread."""
    k = _ints(seed=11, n=1500)
    bounds = np.array([0, 1, 0, 2, 0, 0])
    monkeypatch.setattr(adaptive, "threads_for", lambda busy: 1)
    frame, rebuilt = adaptive.encode_ints(k, bounds, segment=200)
    monkeypatch.setattr(adaptive, "threads_for", lambda busy: workers)
    assert adaptive.encode_ints(k, bounds, segment=200)[0] == frame
    np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape), rebuilt)
    np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape, 150, 1100), rebuilt[:, 150:1100])


def test_a_window_decodes_only_its_segments(monkeypatch):
    k = _ints(seed=10, n=2000)
    frame = adaptive.encode_ints(k, segment=256)[0]
    calls = []
    real = adaptive._segment
    monkeypatch.setattr(adaptive, "_segment", lambda x, *a: calls.append(x.shape[1]) or real(x, *a))
    adaptive.decode_ints(frame, *k.shape, 300, 700)  # segments 1 and 2 of 8
    assert calls == [256, 256]


def test_block_windows_equal_the_full_block():
    """exact.decode_block's window: mode 4 (grid channels) beside float64 and float32 channels."""
    rng = np.random.default_rng(11)
    step = 0.1e-6
    grid = 1e-3 + np.cumsum(rng.integers(-40, 40, (3, 5000)), axis=1) * step
    f32 = rng.standard_normal((1, 5000)).astype(np.float32).astype(np.float64) * 1e-6
    f64 = rng.standard_normal((1, 5000)) * 1e-5
    block = np.vstack([grid, f32, f64])
    frame = encode_block(block)
    full = decode_block(frame, 5, 5000)
    np.testing.assert_allclose(full, block, rtol=0, atol=1e-6 * step)
    for a, b in ((0, 5000), (4000, 4200), (4095, 4097), (17, 18)):
        np.testing.assert_array_equal(decode_block(frame, 5, 5000, a, b), full[:, a:b])


def test_bound_holds_on_every_sample_and_decoder_agrees():
    k = _ints(seed=2)
    bounds = np.array([1, 3, 0, 10, 2, 7])
    frame, rebuilt = adaptive.encode_ints(k, bounds, segment=512)
    assert np.all(np.abs(rebuilt - k) <= bounds[:, None])
    np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape), rebuilt)
    assert np.array_equal(rebuilt[2], k[2])  # bound 0: exact
    assert len(frame) < len(adaptive.encode_ints(k, segment=512)[0])  # a bound costs fewer bits


def test_near_lossless_predictor_is_fitted_for_rebuilt_samples(monkeypatch):
    """With a bound of many grid steps the LPC is fitted for the noisy rebuilt samples it will run
    on: an oversampled signal's frame is smaller than with the clean-signal fit, within the bound."""
    rng = np.random.default_rng(3)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(3, 6000)), axis=1), axis=1)
    smooth = np.array([np.convolve(row, np.ones(24) / 24, mode="same") for row in smooth])
    k = np.round(smooth / np.abs(smooth).max() * 2**20).astype(np.int64)
    k[1] += k[0] // 2
    bounds = np.full(3, 3000)
    frame, rebuilt = adaptive.encode_ints(k, bounds)
    assert np.abs(rebuilt - k).max() <= 3000
    np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape), rebuilt)
    fit = adaptive._fit
    monkeypatch.setattr(adaptive, "_fit", lambda k, c, cross, noise, *rest: fit(k, c, cross, None, *rest))
    assert len(frame) < 0.95 * len(adaptive.encode_ints(k, bounds)[0])


def test_a_flat_stretch_does_not_set_the_frames_predictor(monkeypatch):
    """A frame whose last fifth is padding (a few constant levels) keeps the predictor of the
    smooth signal before it: smaller than with a plain least-squares fit, and exact."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 10000))
    for _ in range(2):
        x = np.array([np.convolve(row, np.ones(8) / 8, mode="same") for row in x])
    x = np.cumsum(x, axis=1)
    x -= np.array([np.convolve(row, np.ones(400) / 400, mode="same") for row in x])
    k = np.round(x * 300 + rng.normal(size=x.shape) * 3).astype(np.int64)
    k[:, 8000:] = np.repeat(rng.integers(-(2**15), 2**15, (2, 4)), 500, axis=1)
    frame, rebuilt = adaptive.encode_ints(k)
    np.testing.assert_array_equal(rebuilt, k)
    np.testing.assert_array_equal(adaptive.decode_ints(frame, *k.shape), k)
    monkeypatch.setattr(adaptive, "ROBUST", 0)
    assert len(frame) < 0.985 * len(adaptive.encode_ints(k)[0])


def test_the_lpc_takes_channels_that_add_something():
    """Of four near copies of one channel and another that explains the rest, the LPC's first two
    cross channels are one copy and the other (not two copies, which the plain correlation ranks
    first)."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 4000))
    rows = [a + 0.01 * rng.normal(size=4000) for _ in range(4)] + [b, 0.8 * a + 0.6 * b]
    k = np.round(np.cumsum(np.array(rows), axis=1) * 100).astype(np.int64)
    unit = adaptive._unit_diffs(k)
    inputs = adaptive._inputs_of(unit @ unit.T, 5)
    assert 4 in inputs[:2] and sorted(inputs) == [0, 1, 2, 3, 4]


def test_the_lpc_keeps_the_cross_channels_that_pay():
    """Offered a channel it copies and then unrelated ones, the LPC keeps the first only: the others
    save fewer bits than their coefficients cost; without a price it takes them all."""
    rng = np.random.default_rng(6)
    a = np.cumsum(rng.normal(size=4000))
    rows = [a, *np.cumsum(rng.normal(size=(3, 4000)), axis=1), a + 0.1 * rng.normal(size=4000)]
    k = np.round(np.array(rows) * 100).astype(np.int64)
    assert len(adaptive._fit(k, 4, [0, 1, 2, 3], price=adaptive.CROSS_PRICE)) == adaptive.ORDER + 3
    assert len(adaptive._fit(k, 4, [1, 2, 3, 0], price=adaptive.CROSS_PRICE)) == adaptive.ORDER + 3 * 4
    assert len(adaptive._fit(k, 4, [0, 1, 2, 3])) == adaptive.ORDER + 3 * 4


def test_mode_4_needs_version_8():
    block = 1e-6 * np.cumsum(np.random.default_rng(12).integers(-9, 9, (2, 300)), axis=1)
    frame = encode_block(block)
    decode_block(frame, 2, 300, version=8)
    with pytest.raises(CorruptFileError, match="channel mode 4"):
        decode_block(frame, 2, 300, version=7)


def test_prior_table_is_the_integer_one():
    """The coder's starting probabilities are integer-derived: the same table on every machine."""
    table = adaptive.prior_unary()
    assert table.shape == (64, 41) and table.min() >= 64 and table.max() <= 65472
    assert np.all(np.diff(table, axis=0) <= 0)  # higher level, more likely to go on
    digest = hashlib.sha256(table.astype("<i8").tobytes()).hexdigest()[:16]
    assert digest == PRIOR_SHA256_16


def test_damaged_frames_are_refused():
    k = _ints(seed=5)
    frame = adaptive.encode_ints(k, segment=512)[0]
    with pytest.raises(CorruptFileError):
        adaptive.decode_ints(frame, k.shape[0] + 1, k.shape[1])
    with pytest.raises(CorruptFileError):
        adaptive.decode_ints(frame[:8], *k.shape)
    with pytest.raises(CorruptFileError):
        adaptive.decode_ints(frame[:-3], *k.shape)
    with pytest.raises(CorruptFileError):
        adaptive.decode_ints(frame + b"\0", *k.shape)
    rng = np.random.default_rng(6)
    for _ in range(20):  # garbled bytes: refused or decoded to something, never a crash
        bad = bytearray(frame)
        bad[rng.integers(14, len(bad))] ^= 1 << int(rng.integers(8))
        try:
            adaptive.decode_ints(bytes(bad), *k.shape)
        except CorruptFileError:
            pass


#: committed files: version 8 (eegcodec 0.8; at most 4 LPC and 8 NLMS channels) of 6 channels,
#: version 9 of 16 channels (channels that take more)
FIXTURES = {
    "v8_segmented_lossless": 8,
    "v8_segmented_max_error": 8,
    "v9_segmented_lossless": 9,
    "v9_segmented_max_error": 9,
}


def fixture_recording(tmp: Path, version: int) -> mne.io.BaseRaw:
    """The recording this module's committed files of ``version`` were written from (40 s of 6
    channels for version 8, 10 s of 16 for 9; chunks of 4800 samples)."""
    return exact_fixture_recording(tmp, 40, 6) if version == 8 else exact_fixture_recording(tmp, 10, 16)


@pytest.mark.parametrize("name", FIXTURES)
def test_committed_files_decode_bit_for_bit(name, tmp_path):
    decoded = np.load(DATA / "segmented_decoded.npz")[name]
    version = FIXTURES[name]
    assert (
        check_exact_fixture(DATA / f"{name}.eegc", decoded, fixture_recording(tmp_path, version)) == version
    )


def test_version_9_fixture_takes_more_channels():
    """The committed version-9 file's frame uses what version 8 could not hold (more than 4 LPC
    and more than 8 NLMS channels), so its decode checks those paths."""
    frame = Archive.from_bytes((DATA / "v9_segmented_lossless.eegc").read_bytes()).frame(b"RAWC", 0)
    body = frame[4 + struct.unpack_from("<I", frame)[0] :]  # past the channels' zstd metadata
    plan = adaptive._read_plan(body, *struct.unpack_from("<HI", body))[1]
    assert max(len(cross) for _, cross, _ in plan) > 4 and max(len(ranked) for ranked, _, _ in plan) > 8


def write_fixtures(tmp: Path) -> None:
    """Writes the committed files of the version this eegcodec writes and what they decode to (run
    once, by hand; the version-8 files were written by eegcodec 0.8)."""
    from eegcodec.format.container import VERSION

    raw = fixture_recording(tmp, VERSION)
    decoded = dict(np.load(DATA / "segmented_decoded.npz"))
    for name in (n for n, v in FIXTURES.items() if v == VERSION):
        kw = {"lossless": True} if name.endswith("lossless") else {"max_error": 2e-6}
        data = compress_raw(raw, None, adapter=AdapterConfig(), **kw)  # 30-s chunks, as committed
        (DATA / f"{name}.eegc").write_bytes(data)
        decoded[name] = decompress_archive(Archive.from_bytes(data), None).get_data()
    np.savez_compressed(DATA / "segmented_decoded.npz", **decoded)


PRIOR_SHA256_16 = "cdc9d8b1f27748ef"
