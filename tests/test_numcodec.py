"""The numcodecs codec: eegcodec's exact and error-bounded coders inside zarr stores."""

from __future__ import annotations

import numpy as np
import pytest

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")

from eegcodec.errors import CorruptFileError, EegcodecError  # noqa: E402
from eegcodec.format.header_checks import BOUND_ROUNDING  # noqa: E402
from eegcodec.numcodec import EEGCodec, register  # noqa: E402


def _ephys(n: int = 6000, c: int = 12, seed: int = 0) -> np.ndarray:
    """int16 [time, channels]: correlated random walks, as raw amplifier counts."""
    rng = np.random.default_rng(seed)
    common = np.cumsum(rng.normal(0, 20, (n, 1)), axis=0)
    return (common + np.cumsum(rng.normal(0, 8, (n, c)), axis=0)).astype(np.int16)


@pytest.mark.parametrize("time_axis", [0, 1])
def test_lossless_round_trip_of_integers_and_floats(time_axis):
    x = _ephys()
    x = x if time_axis == 0 else x.T.copy()
    codec = EEGCodec(time_axis=time_axis)
    back = codec.decode(codec.encode(x))
    assert back.dtype == x.dtype and back.shape == x.shape and np.array_equal(back, x)
    volts = x.astype(np.float64) * 0.1953125e-6  # on a grid of 0.195 uV
    assert np.array_equal(
        EEGCodec(time_axis=time_axis).decode(EEGCodec(time_axis=time_axis).encode(volts)), volts
    )
    derived = (x + 32768.0) * (1e-3 / 65535) - 5e-4  # volts as an EDF reader computes them
    assert np.array_equal(codec.decode(codec.encode(derived)).view(np.int64), derived.view(np.int64))
    f32 = (x * 1e-7).astype(np.float32)
    assert np.array_equal(codec.decode(codec.encode(f32)).view(np.int32), f32.view(np.int32))


def test_max_error_bound_holds_and_saves_bits():
    x = _ephys()
    lossless = EEGCodec().encode(x)
    for bound in (1, 2, 5):
        codec = EEGCodec("max_error", bound)
        frame = codec.encode(x)
        back = codec.decode(frame)
        assert np.abs(back.astype(int) - x).max() <= bound
        assert len(frame) < len(lossless)
    volts = x * 1e-7
    codec = EEGCodec("max_error", 2e-7)
    assert np.abs(codec.decode(codec.encode(volts)) - volts).max() <= 2e-7 * (1 + BOUND_ROUNDING)


def test_found_by_id_and_zarr_round_trip():
    register()
    codec = numcodecs.get_codec({"id": "eegcodec", "mode": "lossless"})
    x = _ephys(20000, 16)
    z = zarr.create_array(
        store={}, shape=x.shape, chunks=(5000, 16), dtype=x.dtype, compressors=codec, zarr_format=2
    )
    z[:] = x
    assert np.array_equal(z[:], x) and np.array_equal(z[7000:12000, 3:9], x[7000:12000, 3:9])
    assert numcodecs.get_codec(codec.get_config()).get_config() == codec.get_config()


def test_smaller_than_zstd_on_eeg_like_integers():
    x = _ephys(20000, 16)
    ours = len(EEGCodec().encode(x))
    assert ours < len(numcodecs.Zstd(level=19).encode(x))
    assert ours < len(numcodecs.Blosc("zstd", 9, numcodecs.Blosc.SHUFFLE).encode(x))


def test_bad_arguments_and_frames_are_refused():
    with pytest.raises(EegcodecError, match="mode='lossy'"):
        EEGCodec("lossy")
    with pytest.raises(EegcodecError, match="positive bound"):
        EEGCodec("max_error", 0)
    with pytest.raises(EegcodecError, match="dtype"):
        EEGCodec().encode(np.array(["a", "b"]))
    frame = bytearray(EEGCodec().encode(_ephys(500, 2)))
    with pytest.raises(CorruptFileError):
        EEGCodec().decode(b"nope" + bytes(frame[4:]))
    with pytest.raises(CorruptFileError):
        EEGCodec().decode(bytes(frame[:40]))
    frame[4] = 1  # format 1 holds no channel mode 4 (what format 2 writes)
    with pytest.raises(CorruptFileError, match="channel mode 4"):
        EEGCodec().decode(bytes(frame))


def test_float32_bound_holds_after_rounding_back_to_float32():
    rng = np.random.default_rng(3)
    x = (100 + 100 * rng.random((4000, 4))).astype(np.float32)
    for bound in (1e-5, 2.3e-5, 1e-4):
        codec = EEGCodec("max_error", bound)
        back = codec.decode(codec.encode(x))
        assert back.dtype == np.float32 and np.abs(back.astype(np.float64) - x).max() <= bound


def test_a_frame_declaring_a_huge_chunk_is_refused_without_allocating():
    import struct

    frame = bytearray(EEGCodec().encode(_ephys(500, 2)))
    struct.pack_into("<Q", frame, 16, 2**40)  # the time dimension
    with pytest.raises(CorruptFileError, match="too large"):
        EEGCodec().decode(bytes(frame))
