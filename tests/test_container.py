"""The .eegc container: bit packing, sections, damage detection."""

import numpy as np
import pytest

from eegcodec.errors import CorruptFileError
from eegcodec.format.container import VERSION, Archive, pack_arrays, unpack_arrays
from eegcodec.format.streamcoders import pack_codes, unpack_codes


@pytest.mark.parametrize("bits", [1, 4, 10, 12, 13])
def test_bitpacking_roundtrip(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2**bits, size=(5, 3, 7))
    data = pack_codes(codes, bits)
    assert len(data) == -(-codes.size * bits // 8)
    np.testing.assert_array_equal(unpack_codes(data, bits, codes.size).reshape(codes.shape), codes)


def test_bitpacking_rejects_codes_too_large():
    with pytest.raises(ValueError):
        pack_codes(np.array([16]), 4)


@pytest.mark.parametrize("version", [4, 5])
def test_arrays_roundtrip(version):
    arrays = {
        "a": np.arange(6, dtype=np.int16).reshape(2, 3),
        "b": np.array([1.5, -2.0], np.float32),
        "c": np.zeros((0, 3)),
        "wide": np.array([-(2**40), 5]),
        "u": np.array([0, 200], np.uint16),
    }
    payload, index = pack_arrays(arrays, version)
    out = unpack_arrays(payload, index, version)
    for k, v in arrays.items():
        np.testing.assert_array_equal(out[k], v)
        assert out[k].dtype == (np.int64 if v.dtype.kind in "iu" else v.dtype)  # integers come back wide
    stored = {item.name: np.dtype(item.dtype) for item in index}
    assert (
        stored["a"] == np.int8 and stored["u"] == np.int16 and stored["wide"] == np.int64
    )  # ... and are stored narrow


def _archive():
    from conftest import PCMCodec, synthetic_raw

    from eegcodec.pipeline import compress_raw

    return compress_raw(synthetic_raw(n_ch=2, seconds=3), PCMCodec(), n_codebooks=1)


def test_archive_roundtrip():
    data = _archive()
    arc = Archive.from_bytes(data)
    assert arc.header.recording.ch_names == ["EEG00", "EEG01", "STI 014"]
    assert (
        arc.header.version == VERSION
    )  # a stim channel stored exactly: the segmented adaptive coder's version
    assert Archive(arc.header, arc.codes, arc.side, arc.raw_channels, arc.info_fif).to_bytes() == data


def test_every_bit_flip_and_truncation_is_detected():
    data = _archive()
    for i in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(CorruptFileError):
                Archive.from_bytes(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(CorruptFileError):
            Archive.from_bytes(data[:n])
    with pytest.raises(CorruptFileError, match="unexpected bytes"):
        Archive.from_bytes(data + b"\0")
    with pytest.raises(CorruptFileError, match="not an .eegc"):
        Archive.from_bytes(b"PK\x03\x04" + data[4:])
