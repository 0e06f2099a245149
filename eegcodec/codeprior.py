"""A learned prior over a residual-VQ model's codes, computed exactly alike on every machine.

p(code of codebook l in row r | the codes of codebooks < l in row r, all codes of row r - 1, same
frame): a three-layer ReLU network whose inputs, weights and activations are small integers.
Its matrix products run in float64 on integers whose sums stay far below 2**53, so they are
exact whatever the BLAS, summation order or thread count; every other step is a float64
multiply by a stored constant and a floor (IEEE, identical everywhere). The logits become
integer weights through a table of ``2 ** (-i / 64)`` built with integer arithmetic, and the
probabilities are those weights over their sum, so encoder and decoder hand constriction the
same numbers bit for bit.

Decoding goes row by row, codebook by codebook, all frames at once (``rows x depth`` steps per
file). The prior is trained by :mod:`eegcodec.train.prior` and stored beside its model as
``NAME.prior.npz``; a file records its SHA-256.

Shapes: codes int64 [rows, depth, frames]; ``vectors`` int [L, K, D] (the codebooks' l2-normalised
lookup vectors times 127).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

import constriction
import numpy as np

from .errors import CorruptFileError

#: logits are in units of 1/64 of a bit; weights below 2 ** -TABLE_BITS of the largest are floored there
TABLE_BITS = 20
_RATIO = 4248701964  # floor(2**32 * 2**(-1/64)), fixed here so no machine's pow() is involved
#: frames per batch when coding (bounds the [frames, K] probability arrays)
BATCH = 1024


def _exp2_table() -> np.ndarray:
    """int64 [64 * TABLE_BITS]: ``floor(2**30 * 2**(-i/64))`` by integer recursion."""
    out, w = [], 1 << 62
    for _ in range(64 * TABLE_BITS):
        out.append(w >> 32)
        w = (w * _RATIO) >> 32
    return np.array(out, dtype=np.int64)


EXP2 = _exp2_table()
#: float32 bit patterns of EXP2[:64]; 2 ** (-t / 64) is EXP2[t % 64] with t // 64 taken off the exponent
_BITS = EXP2[:64].astype(np.float32).view(np.int32)
_T_MAX = 64 * TABLE_BITS - 1


def _weights_numpy(q, vec_t, scale, bias) -> np.ndarray:
    """int32 [B, K] float32 bit patterns of the weights, in float32 (``vec_t`` int [D, K], ``bias``
    int [K]; see :func:`_weights_py`)."""
    u = np.floor((q.astype(np.float32) @ vec_t.astype(np.float32)) * scale) + bias.astype(np.float32)
    t = np.minimum(u.max(axis=1, keepdims=True) - u, _T_MAX).astype(np.int32)
    return _BITS[t & 63] - ((t >> 6) << 23)


def _weights_py(q, vec_t, scale, bias, bits, t_max, out):
    """The same as :func:`_weights_numpy`, one row at a time (compiled by numba) in int32, for
    ``vec_t`` int32 [D, K] (the codebook transposed) and ``bias`` int32 [K]: dot products
    ``a = q . v``, logits ``u = floor(float32(a) * scale) + bias`` and weights
    ``2 ** (-(max u - u) / 64)``. Used where every logit is an integer below 2**23 in magnitude
    (:meth:`CodePrior.__post_init__` checks the bound): then these int32 sums equal the float32
    arithmetic of :func:`_weights_numpy`, whose bits old files were written with."""
    dim, n_codes = vec_t.shape
    acc = np.empty(n_codes, np.int32)
    for b in range(q.shape[0]):
        acc[:] = 0
        for d in range(dim):
            qd = q[b, d]
            for k in range(n_codes):
                acc[k] += qd * vec_t[d, k]
        top = np.int32(-(2**31) + 1)
        for k in range(n_codes):
            acc[k] = np.int32(np.floor(np.float32(acc[k]) * scale)) + bias[k]
            top = max(top, acc[k])
        for k in range(n_codes):
            t = min(top - acc[k], t_max)
            out[b, k] = bits[t & 63] - ((t >> 6) << 23)
    return out


try:  # compiled when numba is there (it is: librosa needs it); the same bits either way
    from numba import njit

    try:  # compiled once per machine (numba's cache: beside the module, else the user's cache folder)
        _weights_loop = njit(cache=True, nogil=True)(_weights_py)
    except RuntimeError:  # pragma: no cover  (no writable cache location: compile in each process)
        _weights_loop = njit(cache=False, nogil=True)(_weights_py)
except ImportError:  # pragma: no cover
    _weights_loop = None
_FAMILY = constriction.stream.model.Categorical(perfect=False)


@dataclass
class CodePrior:
    """The integer network (see module docstring). ``w*`` int [in, out], ``b*`` int [out],
    ``m*`` float64 requantisation factors, ``logit_scale`` float64 [L], ``logit_bias`` int [L, K]."""

    vectors: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    m1: float
    w2: np.ndarray
    b2: np.ndarray
    m2: float
    w3: np.ndarray
    b3: np.ndarray
    m3: float
    logit_scale: np.ndarray
    logit_bias: np.ndarray

    def __post_init__(self):  # integers; products run in float32 where every sum stays exact (< 2**24)
        for name in ("vectors", "w1", "b1", "w2", "b2", "w3", "b3", "logit_scale", "logit_bias"):
            setattr(self, name, np.asarray(getattr(self, name)))
        self.m1, self.m2, self.m3 = float(self.m1), float(self.m2), float(self.m3)
        self._layers = []
        for w, b, m, top in (
            (self.w1, self.b1, self.m1, 127),
            (self.w2, self.b2, self.m2, 255),
            (self.w3, self.b3, self.m3, 255),
        ):
            exact32 = np.abs(w).sum(axis=0).max() * top + np.abs(b).max() < 2**24  # largest |sum|
            w, b = w.astype(np.float64), b.astype(np.float64)
            dt = np.float32 if exact32 else np.float64
            self._layers.append((w.astype(dt), b.astype(dt), dt(m)))
        if self.vectors.shape[2] * 127 * 127 >= 2**24:  # the logits' float32 products would not be exact
            raise ValueError(f"codebook dimension {self.vectors.shape[2]} is too large for an exact prior")
        largest_logit = np.abs(self.logit_scale).max(initial=0) * self.vectors.shape[2] * 127 * 127
        # the compiled int32 loop equals the float32 arithmetic while logits and their differences
        # are exact in float32 (|u| < 2**23); beyond that, the float32 path itself decides
        self._int_logits = largest_logit + np.abs(self.logit_bias).max(initial=0) < 2**23
        self._vec32 = self.vectors.astype(np.float32)
        self._vec_int_t = np.ascontiguousarray(self.vectors.astype(np.int32).transpose(0, 2, 1))  # [L, D, K]
        self._scale32 = self.logit_scale.astype(np.float32)
        self._bias_int = np.ascontiguousarray(self.logit_bias.astype(np.int32))
        self._w1_rows: dict = {}  # (level, levels of the row above in use) -> rows of w1

    @property
    def levels(self) -> int:
        return self.vectors.shape[0]

    def _context(self, own: np.ndarray, above: np.ndarray, level: int, depth: int):
        """The first layer's inputs that can be non-zero and which of its weight rows they meet:
        (float32 [B, n] integers, int [n] rows of ``w1``). The full input is [B, 2 L D + L]: own
        codes' vectors below ``level``, the row above's below ``depth`` (where not -1), the level
        one-hot (x127); the zeros left out add exact zeros to the layer's integer sums."""
        n_levels, _, dim = self.vectors.shape
        b = len(own)
        used_above = np.array([lv for lv in range(min(depth, n_levels)) if (above[:, lv] >= 0).any()], int)
        vec_own = self._vec32[np.arange(level), np.clip(own[:, :level], 0, None)]  # [B, level, D]
        vec_above = self._vec32[used_above, np.clip(above[:, used_above], 0, None)]
        vec_above = vec_above * (above[:, used_above] >= 0)[..., None]
        x = np.concatenate(
            [vec_own.reshape(b, -1), vec_above.reshape(b, -1), np.full((b, 1), 127, np.float32)], 1
        )
        key = (level, tuple(used_above.tolist()))
        if key not in self._w1_rows:
            d = np.arange(dim)
            rows = [lv * dim + d for lv in range(level)]
            rows += [(n_levels + lv) * dim + d for lv in used_above] + [[2 * n_levels * dim + level]]
            self._w1_rows[key] = self._layers[0][0][np.concatenate(rows)]
        return x, self._w1_rows[key]

    def _layer(self, x: np.ndarray, i: int, lo: float, hi: float, w: np.ndarray | None = None) -> np.ndarray:
        """Layer ``i`` on integer inputs ``x`` (``w``: the rows of its weights that ``x`` meets)."""
        w_all, b, m = self._layers[i]
        w = w_all if w is None else w
        acc = x.astype(w.dtype) @ w + b  # exact integers in either dtype
        return np.clip(np.floor(acc * m), lo, hi)

    def weights(self, own: np.ndarray, above: np.ndarray, level: int, depth: int) -> np.ndarray:
        """float32 [B, K] unnormalised probabilities of codebook ``level``'s code (constriction
        normalises them; the same bits on every machine).
        own, above: int [B, L] codes of the row and of the row above (-1: none)."""
        x, w1 = self._context(own, above, level, depth)
        h = self._layer(x, 0, 0, 255, w1)
        h = self._layer(h, 1, 0, 255)
        q = self._layer(h, 2, -127, 127).astype(np.int32)
        args = (q, self._vec_int_t[level], self._scale32[level], self._bias_int[level])
        if _weights_loop is None or not self._int_logits:
            bits = _weights_numpy(*args)
        else:
            bits = _weights_loop(*args, _BITS, _T_MAX, np.empty((len(q), self.vectors.shape[1]), np.int32))
        return bits.view(np.float32)

    def probabilities(self, own, above, level: int, depth: int) -> np.ndarray:
        """float64 [B, K]: :meth:`weights` normalised (for measuring; the coder normalises itself)."""
        w = self.weights(own, above, level, depth).astype(np.float64)
        return w / w.sum(axis=1, keepdims=True)

    # -- files ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """npz: the integer arrays as int32, the factors as float64."""
        arrays = {}
        for f in fields(self):
            v = np.asarray(getattr(self, f.name))
            arrays[f.name] = v if f.name.startswith("m") or f.name == "logit_scale" else v.astype(np.int32)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CodePrior:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls)})

    def sha256(self) -> str:
        """SHA-256 of :meth:`to_bytes` (what a file records; computed once)."""
        if not hasattr(self, "_sha256"):
            self._sha256 = hashlib.sha256(self.to_bytes()).hexdigest()
        return self._sha256


def prior_path(weights: str | Path) -> Path:
    """Where a model's prior lies: ``model.pth`` -> ``model.prior.npz``."""
    weights = Path(weights)
    return weights.with_name(weights.stem + ".prior.npz")


def _batches(padded: np.ndarray, depth: int):
    """The decoding order over ``padded`` [rows, frames, levels]: row by row, codebook by codebook,
    :data:`BATCH` frames at a time; yields (row, codebook, frame slice, the row's codes, the codes
    of the row above; views, so a decoder's writes show in later steps)."""
    rows, frames, _ = padded.shape
    nothing_above = np.full_like(padded[0], -1)
    for r in range(rows):
        above = padded[r - 1] if r else nothing_above
        for level in range(depth):
            for a in range(0, frames, BATCH):
                span = slice(a, min(a + BATCH, frames))
                yield r, level, span, padded[r, span], above[span]


def _padded(codes: np.ndarray, levels: int) -> np.ndarray:
    """int64 [rows, frames, levels]: codes [rows, depth, frames], missing codebooks -1."""
    rows, depth, frames = codes.shape
    out = np.full((rows, frames, levels), -1, np.int64)
    out[:, :, :depth] = codes.transpose(0, 2, 1)
    return out


def encode(prior: CodePrior, codes: np.ndarray) -> bytes:
    """codes int [rows, depth, frames] -> ``u32 crc32 of the codes | ANS words``."""
    codes = np.asarray(codes, dtype=np.int64)
    padded, depth = _padded(codes, prior.levels), codes.shape[1]
    coder = constriction.stream.stack.AnsCoder()
    for r, level, span, own, above in reversed(list(_batches(padded, depth))):
        p = prior.weights(own, above, level, depth)
        coder.encode_reverse(codes[r, level, span].astype(np.int32), _FAMILY, p)
    crc = zlib.crc32(codes.astype("<i8").tobytes())
    return struct.pack("<I", crc) + coder.get_compressed().astype("<u4").tobytes()


def decode(prior: CodePrior, frame: bytes, rows: int, depth: int, frames: int) -> np.ndarray:
    """Inverse of :func:`encode`: int64 [rows, depth, frames]; a damaged stream or another prior
    than the encoder's is a :class:`CorruptFileError` (the codes' CRC32 does not match)."""
    if len(frame) < 4 or (len(frame) - 4) % 4:
        raise CorruptFileError("the entropy-coded codes are truncated")
    (crc,) = struct.unpack_from("<I", frame, 0)
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(frame[4:], "<u4").astype(np.uint32))
    padded = np.full((rows, frames, prior.levels), -1, np.int64)
    try:
        for r, level, span, own, above in _batches(padded, depth):
            padded[r, span, level] = coder.decode(_FAMILY, prior.weights(own, above, level, depth))
    except (ValueError, AssertionError) as exc:
        raise CorruptFileError(f"the entropy-coded codes are damaged ({exc})") from None
    codes = padded[:, :, :depth].transpose(0, 2, 1).copy()
    if zlib.crc32(codes.astype("<i8").tobytes()) != crc:
        raise CorruptFileError(
            "the decoded codes fail their checksum: the file is damaged, or the model's prior is not "
            "the one that wrote it"
        )
    return codes
