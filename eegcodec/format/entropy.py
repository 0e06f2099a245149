"""Entropy coding of integers in groups of similar magnitude (the stream coder of the exact and
transform layers).

Each integer becomes a bucket symbol (0; or sign and ``1 + floor(log2 |v|)``) coded with
``constriction``'s ANS coder, plus the bits below its leading one, sent raw. A group of
values (a block of prediction residuals, a frequency band of transform coefficients) shares
one *class*: a two-sided geometric distribution of mean ``|v| = 2 ** ((class - offset) / 2)``.
The caller picks the classes (:func:`classes_for`) and stores them; the tables are computed
with IEEE-exact operations (+, -, *, /, sqrt) and integer fixed-point powers, so encoder and
decoder get identical probabilities on any machine.

With ``zero_class=True`` class 0 means "every value of the group is 0" and costs nothing.
"""

from __future__ import annotations

import math
import struct
from functools import cache

import constriction
import numpy as np
import zstandard

from ..errors import CorruptFileError

N_CLASSES = 64
N_BUCKETS = 33  # |v| < 2**32
N_SYMBOLS = 2 * N_BUCKETS - 1


def _theta_fixed(mean_halves: int) -> int:
    """The geometric ratio theta (an integer over 2**32) of mean ``|v| = 2 ** (mean_halves / 2)``."""
    m = (2.0 ** (mean_halves // 2)) * (math.sqrt(2.0) if mean_halves % 2 else 1.0)  # exact ops only
    theta = (math.sqrt(1.0 + m * m) - 1.0) / m  # two-sided geometric with mean |v| = m
    return int(theta * 2**32)


def _pow_fixed(t: int, e: int) -> int:
    """(t / 2**32) ** e as an integer over 2**32 (square and multiply, truncating)."""
    out, base = 1 << 32, t
    while e:
        if e & 1:
            out = (out * base) >> 32
        base = (base * base) >> 32
        e >>= 1
    return out


@cache
def model(cls: int, offset: int):
    """The categorical model of class ``cls`` over the :data:`N_SYMBOLS` bucket symbols."""
    t = _theta_fixed(cls - offset)
    weights = [1 << 32]  # symbol 0: v == 0 (relative weight theta**0)
    for b in range(1, N_BUCKETS):  # |v| in [2**(b-1), 2**b): sum of theta**k
        lo, hi = 1 << (b - 1), 1 << b
        mass = ((_pow_fixed(t, lo) - _pow_fixed(t, hi)) << 32) // max((1 << 32) - t, 1)
        weights += [mass, mass]  # positive, negative
    probs = np.array([max(w, 1) for w in weights], dtype=np.float64)  # integers: exact in float64
    return constriction.stream.model.Categorical(probs / probs.sum(), perfect=False)


def classes_for(mean_abs: np.ndarray, offset: int, zero_class: bool = False) -> np.ndarray:
    """uint8 classes for groups whose mean ``|v|`` is ``mean_abs`` (0 -> class 0 if ``zero_class``)."""
    with np.errstate(divide="ignore"):
        cls = np.round(2 * np.log2(np.maximum(mean_abs, 1e-12)) + offset)
    cls = np.clip(cls, 1 if zero_class else 0, N_CLASSES - 1)
    if zero_class:
        cls = np.where(mean_abs > 0, cls, 0)
    return cls.astype(np.uint8)


def _symbols(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integers int64 [n] -> (bucket symbols int32, extra bit counts, extra bit values)."""
    mag = np.abs(v)
    nz = mag > 0
    bucket = np.frexp(mag.astype(np.float64))[1].astype(np.int64)  # bit length: exact below 2**53
    sym = np.where(nz, 2 * bucket - (v > 0), 0).astype(np.int32)
    nbits = np.maximum(bucket - 1, 0)
    extra = np.where(nz, mag - (1 << (bucket - 1).clip(0)), 0)
    return sym, nbits, extra


def _pack_bits(values: np.ndarray, nbits: np.ndarray) -> bytes:
    """Concatenate ``nbits[i]`` low bits of each value, most significant first."""
    if not nbits.sum():
        return b""
    width = int(nbits.max())
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    bits = (values[:, None] >> shifts) & 1
    keep = shifts[None, :] < nbits[:, None]
    return np.packbits(bits[keep].astype(np.uint8)).tobytes()


def _unpack_bits(data: bytes, nbits: np.ndarray) -> np.ndarray:
    total = int(nbits.sum())
    if total == 0:
        return np.zeros(nbits.shape, np.int64)
    if total > 8 * len(data):
        raise CorruptFileError("entropy-coded stream is truncated (raw bits)")
    bits = np.unpackbits(np.frombuffer(data, np.uint8))[:total].astype(np.int64)
    ends = np.cumsum(nbits)
    pos = np.arange(total) - np.repeat(ends - nbits, nbits)  # position within its value
    weights = np.left_shift(1, np.repeat(nbits, nbits) - 1 - pos)
    out = np.zeros(nbits.shape, np.int64)
    np.add.at(out, np.repeat(np.arange(nbits.size), nbits), bits * weights)
    return out


def pack_frame(descriptors: bytes, words: np.ndarray, raw_bits: bytes) -> bytes:
    """A coder's frame: ``u32 size | zstd(descriptors) | u32 word count | ANS words (u32) | raw bits``."""
    z = zstandard.ZstdCompressor(level=10).compress(descriptors)
    return b"".join(
        [struct.pack("<I", len(z)), z, struct.pack("<I", words.size), words.astype("<u4").tobytes(), raw_bits]
    )


def unpack_frame(frame: memoryview, most: int, what: str) -> tuple[bytes, np.ndarray, bytes]:
    """Inverse of :func:`pack_frame`: (descriptors, inflated to at most ``most`` bytes, ANS
    words, raw bits); a frame that claims more is a :class:`CorruptFileError`. May raise
    ``struct.error`` or ``zstandard.ZstdError`` on damage (callers turn those into one line)."""
    (size,) = struct.unpack_from("<I", frame, 0)
    desc = zstandard.ZstdDecompressor().stream_reader(bytes(frame[4 : 4 + size])).read(most + 1)
    if len(desc) > most:
        raise CorruptFileError(f"{what} frame is damaged (descriptors)")
    (n_words,) = struct.unpack_from("<I", frame, 4 + size)
    pos = 8 + size
    if pos + 4 * n_words > len(frame):
        raise CorruptFileError(f"{what} frame is truncated")
    words = np.frombuffer(frame[pos : pos + 4 * n_words], "<u4").astype(np.uint32)
    return desc, words, bytes(frame[pos + 4 * n_words :])


def encode(
    values: np.ndarray, classes: np.ndarray, sizes: np.ndarray, offset: int, zero_class: bool = False
) -> tuple[np.ndarray, bytes]:
    """Code int64 ``values`` [sum(sizes)] in consecutive groups of ``sizes`` values, group ``g``
    with class ``classes[g]``. Returns (ANS words uint32, raw bits)."""
    sym, nbits, extra = _symbols(np.asarray(values, dtype=np.int64))
    ends = np.cumsum(sizes)
    coder = constriction.stream.stack.AnsCoder()
    for g in reversed(range(len(sizes))):
        if zero_class and classes[g] == 0:
            if np.any(sym[ends[g] - sizes[g] : ends[g]]):
                raise ValueError(f"group {g} has class 0 but holds non-zero values")
            continue
        coder.encode_reverse(sym[ends[g] - sizes[g] : ends[g]], model(int(classes[g]), offset))
    return coder.get_compressed(), _pack_bits(extra, nbits)


def decode(
    words: np.ndarray,
    raw_bits: bytes,
    classes: np.ndarray,
    sizes: np.ndarray,
    offset: int,
    zero_class: bool = False,
    groups: int | None = None,
) -> np.ndarray:
    """Inverse of :func:`encode`: int64 [sum(sizes)]; damage is a :class:`CorruptFileError`.
    ``groups``: decode only the first that many groups (int64 [sum(sizes[:groups])]: the stream
    is read in order, so a prefix costs only its own symbols)."""
    if groups is not None:
        classes, sizes = classes[:groups], np.asarray(sizes)[:groups]
    if classes.size and int(classes.max()) >= N_CLASSES:
        raise CorruptFileError("entropy-coded stream is damaged (class)")
    decoder = constriction.stream.stack.AnsCoder(np.asarray(words, dtype=np.uint32))
    sym = np.zeros(int(np.sum(sizes)), np.int32)
    pos = 0
    try:
        for cls, size in zip(classes.tolist(), np.asarray(sizes).tolist()):
            if not (zero_class and cls == 0):
                sym[pos : pos + size] = decoder.decode(model(cls, offset), size)
            pos += size
    except (ValueError, AssertionError) as exc:
        raise CorruptFileError(f"entropy-coded stream is damaged ({exc})") from None
    if sym.size and sym.max() >= N_SYMBOLS:
        raise CorruptFileError("entropy-coded stream is damaged (symbol)")
    bucket = (sym.astype(np.int64) + 1) // 2
    nbits = np.maximum(bucket - 1, 0)
    extra = _unpack_bits(raw_bits, nbits)
    mag = np.where(bucket > 0, (1 << (bucket - 1).clip(0)) + extra, 0)
    return np.where(sym % 2 == 1, mag, -mag)
