"""An adaptive binary range coder and the residual model built on it (integer arithmetic only).

The coder is LZMA's (a 32-bit range, carries through a cached byte, probabilities of a 0 with
:data:`PROB_BITS` bits); each probability is the mean of two counters adapting at rates
``2**-FAST`` and ``2**-SLOW``. Everything is integer arithmetic in numba-compiled loops, so
encoder and decoder agree bit for bit on any machine.

Residual model (:meth:`Encoder.residuals` / :meth:`Decoder.residuals`): a residual ``r`` is its
magnitude's bit length ``b`` (0 for ``r == 0``) in unary, each of its binary decisions with its
own adaptive probability per context, then (``b > 0``) its sign (context: the previous residual's
sign), the bit below the leading one (context: ``b``) and the remaining ``b - 2`` bits raw. The
context is a half-octave of a running sum of recent magnitudes (``A <- A - A / 16 + |r|``), so the
model follows the residuals' level sample by sample; the state runs on across the channels of a
frame (each channel starts from the level the previous one ended at).
"""

from __future__ import annotations

import numpy as np
from numba import njit

PROB_BITS = 15
FAST, SLOW = 5, 8
TOP = 1 << 24
N_CTX = 64
MAX_BITS = 40  # unary positions: magnitudes below 2**40
A_SHIFT = 4
#: bytes one value can take at the most: its unary length, sign and mantissa are at most
#: 2 * MAX_BITS + 1 binary decisions, each under PROB_BITS + 1 bits (a probability is at least
#: 2**-PROB_BITS)
MAX_BYTES_PER_VALUE = (2 * MAX_BITS + 1) * (PROB_BITS + 1) // 8 + 1


@njit(cache=True, nogil=True)
def _shift_low(st, buf):
    low = st[0]
    if low < 0xFF000000 or low >= (1 << 32):
        carry = low >> 32
        temp = st[2]
        while True:
            buf[st[4]] = (temp + carry) & 0xFF
            st[4] += 1
            temp = 0xFF
            st[3] -= 1
            if st[3] == 0:
                break
        st[2] = (low >> 24) & 0xFF
    st[3] += 1
    st[0] = (low & 0x00FFFFFF) << 8


@njit(cache=True, nogil=True)
def _prob(probs, i):
    p = (probs[i, 0] + probs[i, 1]) >> (17 - PROB_BITS)
    return min(max(p, 1), (1 << PROB_BITS) - 1)


@njit(cache=True, nogil=True, inline="always")
def _adapt(probs, i, bit):
    """The two counters of decision ``i`` after a ``bit``."""
    if bit:
        probs[i, 0] -= probs[i, 0] >> FAST
        probs[i, 1] -= probs[i, 1] >> SLOW
    else:
        probs[i, 0] += (65536 - probs[i, 0]) >> FAST
        probs[i, 1] += (65536 - probs[i, 1]) >> SLOW


@njit(cache=True, nogil=True)
def _enc_bit(st, buf, probs, i, bit):
    bound = (st[1] >> PROB_BITS) * _prob(probs, i)
    if bit:
        st[0] += bound
        st[1] -= bound
    else:
        st[1] = bound
    _adapt(probs, i, bit)
    while st[1] < TOP:
        st[1] <<= 8
        _shift_low(st, buf)


@njit(cache=True, nogil=True)
def _enc_direct(st, buf, value, nbits):
    for k in range(nbits - 1, -1, -1):
        st[1] >>= 1
        if (value >> k) & 1:
            st[0] += st[1]
        while st[1] < TOP:
            st[1] <<= 8
            _shift_low(st, buf)


@njit(cache=True, nogil=True)
def _next_byte(st, buf):
    b = buf[st[2]] if st[2] < buf.size else 0
    st[2] += 1
    return b


@njit(cache=True, nogil=True)
def _dec_bit(st, buf, probs, i):
    bound = (st[0] >> PROB_BITS) * _prob(probs, i)
    if st[1] < bound:
        st[0] = bound
        bit = 0
    else:
        st[1] -= bound
        st[0] -= bound
        bit = 1
    _adapt(probs, i, bit)
    while st[0] < TOP:
        st[0] <<= 8
        st[1] = ((st[1] << 8) | _next_byte(st, buf)) & 0xFFFFFFFF
    return bit


@njit(cache=True, nogil=True)
def _dec_direct(st, buf, nbits):
    v = 0
    for _ in range(nbits):
        st[0] >>= 1
        bit = 0
        if st[1] >= st[0]:
            st[1] -= st[0]
            bit = 1
        v = (v << 1) | bit
        while st[0] < TOP:
            st[0] <<= 8
            st[1] = ((st[1] << 8) | _next_byte(st, buf)) & 0xFFFFFFFF
    return v


@njit(cache=True, nogil=True)
def _bit_length(m):
    b = 0
    while m:
        m >>= 1
        b += 1
    return b


@njit(cache=True, nogil=True)
def _context(a):
    b = _bit_length(a)
    c = 2 * b + ((a >> (b - 2)) & 1) if b >= 2 else b
    return min(c, N_CTX - 1)


def new_model() -> dict:
    """Fresh model state: probabilities of 0 at one half (16-bit counters, two rates)."""
    return {
        "unary": np.full((N_CTX * (MAX_BITS + 1), 2), 32768, np.int64),
        "sign": np.full((3, 2), 32768, np.int64),
        "mant": np.full((MAX_BITS + 1, 2), 32768, np.int64),
    }


@njit(cache=True, nogil=True)
def _encode(r, st, buf, unary, sign, mant, lv):
    a, prev = lv[0], lv[1]
    for t in range(r.size):
        v = r[t]
        m = -v if v < 0 else v
        b = _bit_length(m)
        base = _context(a) * (MAX_BITS + 1)
        for i in range(b):
            _enc_bit(st, buf, unary, base + i, 1)
        if b < MAX_BITS:
            _enc_bit(st, buf, unary, base + b, 0)
        if b:
            s = 1 if v < 0 else 0
            _enc_bit(st, buf, sign, prev, s)
            prev = 2 * s
            if b >= 2:
                _enc_bit(st, buf, mant, b, (m >> (b - 2)) & 1)
                _enc_direct(st, buf, m, b - 2)
        else:
            prev = 1
        a += m - (a >> A_SHIFT)
    lv[0], lv[1] = a, prev


@njit(cache=True, nogil=True)
def _decode(out, st, buf, unary, sign, mant, lv):
    a, prev = lv[0], lv[1]
    for t in range(out.size):
        base = _context(a) * (MAX_BITS + 1)
        b = 0
        while b < MAX_BITS and _dec_bit(st, buf, unary, base + b):
            b += 1
        m = 0
        if b:
            s = _dec_bit(st, buf, sign, prev)
            prev = 2 * s
            m = 1
            if b >= 2:
                m = (2 | _dec_bit(st, buf, mant, b)) << (b - 2)
                m |= _dec_direct(st, buf, b - 2)
            out[t] = -m if s else m
        else:
            out[t] = 0
            prev = 1
        a += m - (a >> A_SHIFT)
    lv[0], lv[1] = a, prev


@njit(cache=True, nogil=True)
def _flush(st, buf):
    for _ in range(5):
        _shift_low(st, buf)


class Encoder:
    """Codes int64 residual rows one after another into one byte string."""

    def __init__(self, capacity: int):
        self.buf = np.zeros(capacity + 64, np.uint8)
        self.st = np.array([0, 0xFFFFFFFF, 0, 1, 0], np.int64)  # low, range, cache, cache size, position
        self.model = new_model()
        self.level = np.array([16, 1], np.int64)  # running magnitude sum, previous sign context

    def residuals(self, r: np.ndarray) -> None:
        """Append int64 ``r`` [n] (|r| < 2**40); the buffer grows first where ``n`` values could
        overrun it (at most :data:`MAX_BYTES_PER_VALUE` each), so no input writes past its end."""
        need = int(self.st[4]) + MAX_BYTES_PER_VALUE * len(r) + 64
        if need > self.buf.size:
            self.buf = np.concatenate(
                [self.buf, np.zeros(max(need, 2 * self.buf.size) - self.buf.size, np.uint8)]
            )
        m = self.model
        _encode(
            np.ascontiguousarray(r, np.int64),
            self.st,
            self.buf,
            m["unary"],
            m["sign"],
            m["mant"],
            self.level,
        )

    def finish(self) -> bytes:
        _flush(self.st, self.buf)
        return self.buf[: self.st[4]].tobytes()


class Decoder:
    """Inverse of :class:`Encoder` (bytes past the end read as zeros; the caller checks what it decodes)."""

    def __init__(self, data: bytes):
        self.buf = np.frombuffer(data, np.uint8)
        self.st = np.array([0xFFFFFFFF, 0, 0], np.int64)  # range, code, position
        for _ in range(5):
            self.st[1] = ((self.st[1] << 8) | _next_byte(self.st, self.buf)) & 0xFFFFFFFF
        self.model = new_model()
        self.level = np.array([16, 1], np.int64)  # running magnitude sum, previous sign context

    def residuals(self, n: int) -> np.ndarray:
        """The next ``n`` residuals, int64 [n]."""
        out = np.zeros(n, np.int64)
        m = self.model
        _decode(out, self.st, self.buf, m["unary"], m["sign"], m["mant"], self.level)
        return out

    def overrun(self) -> bool:
        """Whether decoding read beyond the data (a damaged or truncated stream)."""
        return int(self.st[2]) > self.buf.size + 4
