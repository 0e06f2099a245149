"""Stream coders: how one integer stream of a file becomes bytes and back (stage 4: pack).

A coder has a ``name`` (what the header records for the stream) and two functions::

    encode(values: int64 array) -> bytes
    decode(frame: bytes, shape) -> int64 array of that shape    # damage: CorruptFileError

(side arrays: [rows, n]; model codes: [rows, depth, frames]).

The ``CODE`` coders (:data:`CODERS`; a new one is a class here plus a registry line):

- ``packed``: every code in a fixed number of bits (always, up to version 4);
- ``prior``: model codes under the model's learned prior (:mod:`eegcodec.codeprior`), when
  the model has one (``NAME.prior.npz`` beside its weights) and that is smaller.

And the side arrays' coder, :class:`ANSCoder`: :mod:`eegcodec.format.entropy`'s coder, values in groups
of similar magnitude (a row, or :data:`GROUP` values of it) sharing a two-sided geometric class,
zero groups free (version 5: baseline knots, chunk scales, outlier positions and levels).
"""

from __future__ import annotations

import struct

import numpy as np
import zstandard

from ..errors import CorruptFileError
from . import entropy

#: values per group of the ``ans`` coder (rows longer than this are split)
GROUP = 32
#: class offset of the ``ans`` coder: mean |value| from 2 ** -1 to 2 ** 30.5
CLASS_OFFSET = 2
#: values the ``ans`` coder takes (the entropy coder's bucket range)
ANS_LIMIT = 2**31


def _groups(shape: tuple[int, int]) -> np.ndarray:
    """Group sizes over a C-order [rows, n] array: each row split into pieces of at most GROUP."""
    rows, n = shape
    per_row = [GROUP] * (n // GROUP) + ([n % GROUP] if n % GROUP else [])
    return np.tile(np.array(per_row, dtype=np.int64), rows)


class ANSCoder:
    """Grouped two-sided geometric classes, ANS-coded (:mod:`eegcodec.format.entropy`)."""

    name = "ans"

    @staticmethod
    def fits(values: np.ndarray) -> bool:
        return not values.size or int(np.abs(values).max()) < ANS_LIMIT

    @staticmethod
    def encode(values: np.ndarray) -> bytes:
        values = np.asarray(values, dtype=np.int64)
        sizes = _groups(values.shape)
        flat = values.ravel()
        ends = np.cumsum(sizes)
        mean_abs = np.add.reduceat(np.abs(flat), ends - sizes) / sizes if flat.size else np.zeros(0)
        classes = entropy.classes_for(mean_abs, CLASS_OFFSET, zero_class=True)
        words, raw_bits = entropy.encode(flat, classes, sizes, CLASS_OFFSET, zero_class=True)
        return entropy.pack_frame(classes.tobytes(), words, raw_bits)

    @staticmethod
    def decode(frame: bytes, shape: tuple[int, int]) -> np.ndarray:
        sizes = _groups(shape)
        try:
            desc, words, raw_bits = entropy.unpack_frame(memoryview(frame), sizes.size, "side array")
        except (struct.error, zstandard.ZstdError) as exc:
            raise CorruptFileError(f"an entropy-coded side array is damaged ({exc})") from None
        if len(desc) != sizes.size:
            raise CorruptFileError("an entropy-coded side array is damaged (group count)")
        classes = np.frombuffer(desc, np.uint8)
        values = entropy.decode(words, raw_bits, classes, sizes, CLASS_OFFSET, zero_class=True)
        return values.reshape(shape)


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Bit-pack non-negative integer codes (any shape, C order), ``bits`` bits each, MSB first."""
    flat = np.asarray(codes, dtype=np.uint64).ravel()
    if flat.size and int(flat.max()) >= (1 << bits):
        raise ValueError(f"code {int(flat.max())} does not fit in {bits} bits")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bitmat = ((flat[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bitmat.ravel()).tobytes()


def unpack_codes(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: int64 [count]."""
    need = -(-count * bits // 8)
    if len(data) != need:
        raise CorruptFileError(f"code section holds {len(data)} bytes, header implies {need}")
    bitmat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.int64)
    return bitmat.astype(np.int64) @ weights


class PackedCoder:
    """Fixed width: ``bits`` bits per non-negative value, MSB first."""

    name = "packed"

    def __init__(self, bits: int = 10):
        self.bits = bits

    @classmethod
    def for_model(cls, bits: int, prior) -> PackedCoder:
        return cls(bits)

    def encode(self, values: np.ndarray) -> bytes:
        return pack_codes(values, self.bits)

    def decode(self, frame: bytes, shape: tuple[int, ...]) -> np.ndarray:
        return unpack_codes(frame, self.bits, int(np.prod(shape))).reshape(shape)


class PriorCoder:
    """Model codes [rows, depth, frames] entropy-coded under the model's learned prior
    (:mod:`eegcodec.codeprior`)."""

    name = "prior"

    def __init__(self, prior):
        self.prior = prior

    @classmethod
    def for_model(cls, bits: int, prior) -> PriorCoder:
        return cls(prior)

    def encode(self, values: np.ndarray) -> bytes:
        from .. import codeprior

        return codeprior.encode(self.prior, values)

    def decode(self, frame: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        from .. import codeprior

        return codeprior.decode(self.prior, frame, *shape)


#: the coders of the ``CODE`` section, by the name ``header.coders.CODE`` records; each builds
#: itself for a model with ``for_model(bits per code, prior)`` (:class:`ANSCoder` codes the side
#: arrays, chosen per array by :mod:`eegcodec.format.container`)
CODERS = {c.name: c for c in (PackedCoder, PriorCoder)}


def make(name: str, bits: int = 10, prior=None):
    """The ``CODE`` coder the header names (``bits``: the packed coder's width; ``prior``: the
    model's :class:`~eegcodec.codeprior.CodePrior`)."""
    if name not in CODERS:
        raise CorruptFileError(f"unknown stream coder {name!r}; this eegcodec knows {sorted(CODERS)}")
    return CODERS[name].for_model(bits, prior)
