"""eegcodec's exact and error-bounded coders as a ``numcodecs`` codec, for zarr stores, NWB files
written through hdmf-zarr and SpikeInterface-style pipelines.

Registered under the id ``"eegcodec"`` through numcodecs' entry point (``numcodecs.codecs``), so
``numcodecs.get_codec({"id": "eegcodec", "mode": "lossless"})`` and zarr find it by name once the
package is installed. Each zarr chunk is one frame of :mod:`eegcodec.format.exact` (each channel
on its own sample grid, channels predicted from each other, integer arithmetic, range-coded)::

    b"EEGZ" | u8 format (2; 1: no channel mode 4) | u8 mode (0 lossless, 1 max_error) | u8 time axis | u8 ndim
    | 8 ASCII bytes dtype (numpy's ``dtype.str``, space-padded) | ndim x u64 shape
    | f64 max_error (array units; 0 in lossless) | u32 frame size | the exact.encode_block frame
    | correction (float arrays, lossless): empty, or u8 kind and zstd of byte planes (C order):
      kind 1, float differences to add to the decoded values; kind 2, the XOR of the bit patterns

Arrays: integer (int8 ... int64, uint8 ... uint32) or float (float32, float64), any number of
dimensions; the ``time_axis`` (0 by default: ``[time, channels]`` as NWB's ElectricalSeries and
SpikeInterface keep traces) is the one predicted along; all other axes are flattened into
channels. ``max_error`` is in the array's units (counts for integers, volts for volts): every
value comes back within it (integers: rounded to the nearest integer, which stays within the
bound when it is a whole number of counts). Lossless gives back the same values bit for bit
for every dtype: float values on a grid (volts read from EDF, say) are coded as their grid's
integers, and where a value rebuilt from its grid differs from the original in its last bits the
differences of the bit patterns (a few units in the last place at most) follow the frame.
"""

from __future__ import annotations

import struct

import numpy as np
import zstandard
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray, ndarray_copy

from .errors import CorruptFileError, EegcodecError
from .format.container import inflate
from .format.exact import decode_block, encode_block_values

MAGIC = b"EEGZ"
FORMAT = 3
#: the .eegc version whose RAWC frames a numcodecs format holds (1: modes up to 3; 2: mode 4 too;
#: 3: mode 4 with up to 12 earlier channels)
RAWC_VERSION = {1: 7, 2: 8, 3: 9}
MODES = ("lossless", "max_error")
#: largest chunk a frame may declare (its float64 working copy), bytes: a damaged header is refused
#: instead of allocating
MAX_CHUNK_BYTES = 2**33
_HEAD = struct.Struct("<4sBBBB8s")
_KINDS = "iuf"


class EEGCodec(Codec):
    """Lossless or error-bounded compression of EEG/ephys arrays (``codec_id = "eegcodec"``).

    Parameters
    ----------
    mode : ``"lossless"`` (default) or ``"max_error"``.
    max_error : the bound in ``"max_error"`` mode, in the array's units (> 0).
    time_axis : the axis along which samples follow each other (0: ``[time, channels]``).
    """

    codec_id = "eegcodec"

    def __init__(self, mode: str = "lossless", max_error: float = 0.0, time_axis: int = 0):
        if mode not in MODES:
            raise EegcodecError(f"mode={mode!r}: choose one of {', '.join(MODES)}")
        if mode == "max_error" and not (np.isfinite(max_error) and max_error > 0):
            raise EegcodecError(f"max_error={max_error!r}: a positive bound is needed in max_error mode")
        self.mode, self.max_error, self.time_axis = mode, float(max_error), int(time_axis)

    def get_config(self) -> dict:
        return {
            "id": self.codec_id,
            "mode": self.mode,
            "max_error": self.max_error,
            "time_axis": self.time_axis,
        }

    def encode(self, buf) -> bytes:
        arr = ensure_ndarray(buf)
        if arr.dtype.kind not in _KINDS or arr.dtype.itemsize > 8 or arr.dtype.str in ("<u8", ">u8"):
            raise EegcodecError(f"dtype {arr.dtype}: eegcodec codes integers up to 64 bits and floats")
        shape = arr.shape if arr.ndim else (1,)
        axis = self.time_axis % len(shape)
        block = np.moveaxis(arr.reshape(shape), axis, -1).reshape(-1, shape[axis]).astype(np.float64)
        if arr.dtype.kind in "iu" and np.abs(block).max(initial=0) >= 2**53:
            raise EegcodecError("integer values beyond 2**53 cannot be coded")
        bound = self.max_error if self.mode == "max_error" else 0.0
        if bound and arr.dtype.kind in "iu":  # integers come back rounded: whole counts are the bound
            bound = np.floor(bound) + 0.5 if bound >= 1 else 0.0
        elif bound and arr.dtype.itemsize < 8:  # float32 and float16 values come back rounded too
            bound = max(bound - float(np.spacing(arr.dtype.type(np.abs(block).max(initial=0)))), 0.0)
        frame, rebuilt = encode_block_values(block, np.full(len(block), bound) if bound else None)
        head = _HEAD.pack(
            MAGIC, FORMAT, MODES.index(self.mode), axis, len(shape), arr.dtype.str.encode().ljust(8)
        )
        head += struct.pack(f"<{len(shape)}QdI", *shape, bound, len(frame))
        correction = b""
        if arr.dtype.kind == "f" and not bound:
            correction = _correction(arr.reshape(shape), _shaped(rebuilt, list(shape), axis, arr.dtype))
        return head + frame + correction

    def decode(self, buf, out=None):
        data = bytes(ensure_contiguous_ndarray(buf))
        if len(data) < _HEAD.size or data[:4] != MAGIC:
            raise CorruptFileError("not an eegcodec numcodecs frame (magic)")
        magic, fmt, mode, axis, ndim, dtype = _HEAD.unpack_from(data, 0)
        if fmt not in RAWC_VERSION or mode >= len(MODES) or not 0 < ndim <= 32 or axis >= ndim:
            raise CorruptFileError("eegcodec numcodecs frame: unknown format, mode or shape")
        dims = struct.Struct(f"<{ndim}QdI")
        try:
            *shape, _bound, size = dims.unpack_from(data, _HEAD.size)
            dtype = np.dtype(dtype.decode("ascii").strip())
        except (struct.error, TypeError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"eegcodec numcodecs frame: damaged header ({exc})") from None
        start = _HEAD.size + dims.size
        if np.prod(shape, dtype=np.float64) * max(dtype.itemsize, 8) > MAX_CHUNK_BYTES:
            raise CorruptFileError(f"eegcodec numcodecs frame: a chunk of shape {tuple(shape)} is too large")
        result = _values(data[start : start + size], shape, axis, dtype, fmt)
        rest = data[start + size :]
        if rest:
            result = _corrected(result, rest)
        return ndarray_copy(result, out)


def _correction(original: np.ndarray, decoded: np.ndarray) -> bytes:
    """What turns ``decoded`` into ``original`` bit for bit (both float, same shape): empty when
    they are equal; else kind 1, the float differences (``decoded + diff`` gives the original, as it
    does where the two are a few units in the last place apart), or kind 2, the XOR of their bit
    patterns; byte planes, then zstd."""
    original = original.astype(decoded.dtype)
    ints = f"i{decoded.dtype.itemsize}"
    if np.array_equal(original.view(ints), decoded.view(ints)):
        return b""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = original - decoded
        exact = np.array_equal((decoded + diff).view(ints), original.view(ints))
    body = diff if exact else original.view(ints) ^ decoded.view(ints)
    planes = np.ascontiguousarray(body.astype(body.dtype.newbyteorder("<"))).view(np.uint8)
    planes = planes.reshape(-1, decoded.dtype.itemsize).T.tobytes()
    return bytes([1 if exact else 2]) + zstandard.ZstdCompressor(level=19).compress(planes)


def _corrected(decoded: np.ndarray, correction: bytes) -> np.ndarray:
    """Inverse of :func:`_correction`: the original values."""
    width, ints = decoded.dtype.itemsize, f"<i{decoded.dtype.itemsize}"
    if correction[0] not in (1, 2) or decoded.dtype.kind != "f":
        raise CorruptFileError("eegcodec numcodecs frame: damaged correction")
    planes = np.frombuffer(inflate(correction[1:], decoded.size * width, "correction"), np.uint8)
    body = np.ascontiguousarray(planes.reshape(width, -1).T).view(
        ints if correction[0] == 2 else f"<f{width}"
    )
    body = body.reshape(decoded.shape)
    if correction[0] == 1:
        with np.errstate(invalid="ignore", over="ignore"):
            return (decoded + body).astype(decoded.dtype)
    return (
        (decoded.astype(decoded.dtype.newbyteorder("<")).view(ints) ^ body)
        .view(f"<f{width}")
        .astype(decoded.dtype)
    )


def _values(frame: bytes, shape: list[int], axis: int, dtype: np.dtype, fmt: int) -> np.ndarray:
    """The array an exact.encode_block ``frame`` of numcodecs format ``fmt`` holds: ``dtype``
    values of ``shape``, C order."""
    n_rows = int(np.prod(shape[:axis] + shape[axis + 1 :], dtype=np.int64))
    return _shaped(decode_block(frame, n_rows, shape[axis], version=RAWC_VERSION[fmt]), shape, axis, dtype)


def _shaped(block: np.ndarray, shape: list[int], axis: int, dtype: np.dtype) -> np.ndarray:
    """The rows ``block`` float64 [rows, shape[axis]] of an array back as ``dtype`` values of
    ``shape``, C order (integers rounded)."""
    moved = shape[:axis] + shape[axis + 1 :] + [shape[axis]]
    values = np.rint(block) if dtype.kind in "iu" else block
    return np.ascontiguousarray(np.moveaxis(values.reshape(moved), -1, axis), dtype=dtype)


def register() -> None:
    """Register the codec with numcodecs in this process (the entry point does it when installed)."""
    from numcodecs.registry import register_codec

    register_codec(EEGCodec)
