"""The adaptive exact coder (eegcodec.format.cascade, eegcodec.format.rangecoder): exact round trips, the
near-lossless bound on every sample, a committed file of the format decoded bit for bit,
determinism across thread counts, damaged frames refused."""

from pathlib import Path

import mne
import numpy as np
import pytest
from conftest import SHARED_EEG, check_exact_fixture, exact_fixture_recording, needs_shared
from threadpoolctl import threadpool_limits

from eegcodec.errors import CorruptFileError
from eegcodec.format import cascade, rangecoder
from eegcodec.format.container import Archive
from eegcodec.format.exact import decode_block, encode_block, encode_block_values
from eegcodec.format.header_checks import BOUND_ROUNDING
from eegcodec.pipeline import compress_raw, decompress_archive

DATA = Path(__file__).parent / "data"


def _ints(seed=0, c=6, n=3000) -> np.ndarray:
    """int64 [c, n]: correlated random walks, a copy with noise, a constant row, wide noise."""
    rng = np.random.default_rng(seed)
    src = np.cumsum(rng.integers(-50, 50, (2, n)), axis=1)
    rows = [src, src[:1] * 2 + rng.integers(-3, 3, n), np.zeros((1, n), np.int64)]
    rows.append(rng.integers(-(2**20), 2**20, (1, n)))
    rows.append(np.clip(np.cumsum(rng.integers(-(2**18), 2**18, (1, n)), axis=1), -(2**23), 2**23))
    return np.vstack(rows)[:c]


@pytest.mark.parametrize("shape", [(6, 3000), (1, 1), (2, 5), (3, 40), (6, 1)])
def test_round_trip_is_exact(shape):
    k = _ints(n=max(shape[1], 1))[: shape[0], : shape[1]]
    frame, rebuilt = cascade.encode_ints(k)
    np.testing.assert_array_equal(rebuilt, k)
    np.testing.assert_array_equal(cascade.decode_ints(frame, *k.shape), k)


def test_range_coder_round_trips_extremes():
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [rng.integers(-3, 3, 500), [2**39 - 1, -(2**39) + 1, 0, 1, -1], rng.laplace(0, 1e4, 500)]
    )
    values = values.astype(np.int64)
    enc = rangecoder.Encoder(20 * values.size)
    enc.residuals(values[:300])
    enc.residuals(values[300:])
    dec = rangecoder.Decoder(enc.finish())
    np.testing.assert_array_equal(
        np.concatenate([dec.residuals(300), dec.residuals(values.size - 300)]), values
    )
    assert not dec.overrun()


def test_range_coder_grows_its_buffer_for_what_it_is_given():
    """Values the adaptive models never saw (alternating huge magnitudes) from a buffer sized for
    one byte: the encoder makes room instead of writing past its end."""
    values = np.tile(np.array([2**39 - 1, -(2**39) + 1, 3, -(2**20)], np.int64), 300)
    enc = rangecoder.Encoder(1)
    for part in np.array_split(values, 7):
        enc.residuals(part)
    data = enc.finish()
    assert len(data) > 64  # more than the buffer first held
    dec = rangecoder.Decoder(data)
    np.testing.assert_array_equal(dec.residuals(values.size), values)


def test_bound_holds_on_every_sample_and_decoder_agrees():
    k = _ints(seed=2)
    bounds = np.array([1, 3, 0, 10, 2, 7])
    frame, rebuilt = cascade.encode_ints(k, bounds)
    assert np.all(np.abs(rebuilt - k) <= bounds[:, None])
    np.testing.assert_array_equal(cascade.decode_ints(frame, *k.shape), rebuilt)
    assert np.array_equal(rebuilt[2], k[2])  # bound 0: exact
    assert len(frame) < len(cascade.encode_ints(k)[0])  # a bound costs fewer bits


def test_exact_block_bound_in_volts():
    """encode_block with max_error: each sample within the bound, whichever way the chunk took."""
    rng = np.random.default_rng(3)
    step = 0.1e-6
    k = np.cumsum(rng.integers(-40, 40, (4, 2000)), axis=1)
    block = 1e-3 + k * step
    for bound in (0.25e-6, 1e-6, 5e-6):
        back = decode_block(encode_block(block, np.full(4, bound)), 4, 2000)
        assert np.max(np.abs(back - block)) <= bound * (1 + BOUND_ROUNDING)
    np.testing.assert_allclose(decode_block(encode_block(block), 4, 2000), block, rtol=0, atol=1e-6 * step)


def test_encoder_values_are_the_decode_bit_for_bit():
    """encode_block_values gives the values the frame decodes to, bit for bit (what max-error
    compression measures its largest error on): grid channels, closed loop or coarser grid, a
    channel off any grid, float32 samples and a NaN, lossless and bounded."""
    rng = np.random.default_rng(8)
    k = np.cumsum(rng.integers(-40, 40, (5, 3000)), axis=1)
    block = 1e-3 + k * 0.1e-6
    block[2] = rng.normal(size=3000) * 1e-5  # on no grid: float64 kept
    block[3] = rng.normal(size=3000).astype(np.float32) * 1e-6  # float32 samples in volts
    block[4, 100] = np.nan
    for bounds in (None, np.full(5, 1e-6), np.array([0.3e-6, 5e-6, 1e-6, 0.0, 2e-6])):
        frame, values = encode_block_values(block, bounds)
        np.testing.assert_array_equal(values, decode_block(frame, 5, 3000))


def test_threads_do_not_change_the_integers():
    """The decoder's integers are the same with 1 and 2 BLAS threads (it uses none: integer loops);
    the encoder's float fit may round differently, but either frame keeps the bound."""
    k = _ints(seed=4)
    bounds = np.array([0, 2, 0, 1, 0, 3])
    with threadpool_limits(1):
        f1, rebuilt = cascade.encode_ints(k, bounds)
        d1 = cascade.decode_ints(f1, *k.shape)
    with threadpool_limits(2):
        f2 = cascade.encode_ints(k, bounds)[0]
        d2 = cascade.decode_ints(f1, *k.shape)
        assert np.all(np.abs(cascade.decode_ints(f2, *k.shape) - k) <= bounds[:, None])
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(d1, rebuilt)


def test_damaged_frames_are_refused():
    k = _ints(seed=5)
    frame = cascade.encode_ints(k)[0]
    with pytest.raises(CorruptFileError):
        cascade.decode_ints(frame, k.shape[0] + 1, k.shape[1])
    with pytest.raises(CorruptFileError):
        cascade.decode_ints(frame[:8], *k.shape)
    rng = np.random.default_rng(6)
    for _ in range(20):  # garbled bytes: refused or decoded to something, never a crash
        bad = bytearray(frame)
        bad[rng.integers(10, len(bad))] ^= 1 << int(rng.integers(8))
        try:
            cascade.decode_ints(bytes(bad), *k.shape)
        except CorruptFileError:
            pass
    with pytest.raises(CorruptFileError):
        cascade.decode_ints(frame[: len(frame) // 2], *k.shape)


FIXTURES = ("v7_adaptive_lossless", "v7_adaptive_max_error")


def fixture_recording(tmp: Path) -> mne.io.BaseRaw:
    """The recording this module's committed files were written from (12 s; chunks of 4800 samples)."""
    return exact_fixture_recording(tmp, 12)


@pytest.mark.parametrize("name", FIXTURES)
def test_committed_files_decode_bit_for_bit(name, tmp_path):
    decoded = np.load(DATA / "adaptive_decoded.npz")[name]
    check_exact_fixture(DATA / f"{name}.eegc", decoded, fixture_recording(tmp_path))


@needs_shared
@pytest.mark.parametrize("rel", ["eegbci_more/S002R01.edf", "eegmat/Subject12_2.edf"])
def test_real_recordings_round_trip(rel):
    raw = mne.io.read_raw(SHARED_EEG / rel, preload=True, verbose="error").crop(0, 40)
    x = raw.get_data()
    for kw, bound in (({"lossless": True}, 0.0), ({"max_error": 2e-6}, 2e-6), ({"max_error": 5e-6}, 5e-6)):
        y = decompress_archive(Archive.from_bytes(compress_raw(raw, None, **kw)), None).get_data()
        err = np.abs(y - x).max(axis=1)
        grid = np.array([np.diff(np.unique(r)).min() for r in x])
        assert np.all(err <= np.maximum(bound * (1 + BOUND_ROUNDING), 1e-6 * grid)), (rel, kw)


def test_grid_of_a_full_16_bit_range_is_found():
    """A channel over the whole 16-bit range with an awkward gain: the smallest gap between levels
    is off by its rounding, which adds up over 65,535 steps (such chunks fell back to float32)."""
    from eegcodec.format.exact import find_grid

    rng = np.random.default_rng(10)
    d = np.concatenate([[-32768, 32767], rng.integers(-32768, 32768, 14000)])
    gain = rng.uniform(0.5e-9, 2e-8)
    x = (d.astype(np.float64) + 0.5) * gain + rng.uniform(-1e-4, 1e-4)
    origin, step, k = find_grid(x)
    np.testing.assert_array_equal(k, d + 32768)
    assert np.max(np.abs(origin + k * step - x)) <= 1e-6 * step
