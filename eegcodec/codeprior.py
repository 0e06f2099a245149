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

A *split* prior (``order`` given) codes each code as two symbols of ``sqrt(K)`` values: its group
(the codes at positions ``g*S .. g*S+S-1`` of ``order[level]``, S = K / G; the group's weights from
``group_vectors`` as the codes' from ``vectors``), then its place in the group (the codes' own
weights, within the group): 2 x 32 weights per code instead of 1,024, for the same network.

Shapes: codes int64 [rows, depth, frames]; ``vectors`` int [L, K, D] (the codebooks' l2-normalised
lookup vectors times 127); ``order`` int [L, K]; ``group_vectors`` int [L, G, D].
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

import constriction
import numpy as np
from threadpoolctl import threadpool_limits

from .errors import CorruptFileError

#: logits are in units of 1/64 of a bit; weights below 2 ** -TABLE_BITS of the largest are floored there
TABLE_BITS = 20
_RATIO = 4248701964  # floor(2**32 * 2**(-1/64)), fixed here so no machine's pow() is involved
#: frames per batch when coding (bounds the [frames, K] probability arrays)
BATCH = 1024
#: fewer frames than twice this per step: the network runs in one thread
MIN_THREAD_FRAMES = 64


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


def _weights_numpy(q, groups, vec_t, scale, bias) -> np.ndarray:
    """int32 [B, K] float32 bit patterns of the weights, in float32 (row ``b`` against
    ``vec_t[groups[b]]`` int [D, K] and ``bias[groups[b]]`` int [K]; see :func:`_weights_py`)."""
    q32 = q.astype(np.float32)
    if len(vec_t) == 1:  # one codebook for every row: a matrix product
        dots = q32 @ vec_t[0].astype(np.float32)
    else:  # integer sums below 2**24: exact in float32 in any order
        dots = np.einsum("bd,bdk->bk", q32, vec_t[groups].astype(np.float32))
    u = np.floor(dots * scale) + bias[groups].astype(np.float32)
    t = np.minimum(u.max(axis=1, keepdims=True) - u, _T_MAX).astype(np.int32)
    return _BITS[t & 63] - ((t >> 6) << 23)


def _weights_py(q, groups, vec_t, scale, bias, bits, t_max, out):
    """The same as :func:`_weights_numpy`, one row at a time (compiled by numba) in int32, for
    ``vec_t`` int32 [G, D, K] (codebooks transposed) and ``bias`` int32 [G, K]: dot products
    ``a = q . v``, logits ``u = floor(float32(a) * scale) + bias`` and weights
    ``2 ** (-(max u - u) / 64)``. Used where every logit is an integer below 2**23 in magnitude
    (:meth:`CodePrior.__post_init__` checks the bound): then these int32 sums equal the float32
    arithmetic of :func:`_weights_numpy`, whose bits old files were written with."""
    dim, n_codes = vec_t.shape[1:]
    acc = np.empty(n_codes, np.int32)
    for b in range(q.shape[0]):
        g = groups[b]
        acc[:] = 0
        for d in range(dim):
            qd = q[b, d]
            for k in range(n_codes):
                acc[k] += qd * vec_t[g, d, k]
        top = np.int32(-(2**31) + 1)
        for k in range(n_codes):
            acc[k] = np.int32(np.floor(np.float32(acc[k]) * scale)) + bias[g, k]
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
#: the fields only a split prior has
SPLIT_FIELDS = ("order", "group_vectors", "group_scale", "group_bias")


@dataclass
class CodePrior:
    """The integer network (see module docstring). ``w*`` int [in, out], ``b*`` int [out],
    ``m*`` float64 requantisation factors, ``logit_scale`` float64 [L], ``logit_bias`` int [L, K];
    a split prior adds ``order`` int [L, K], ``group_vectors`` int [L, G, D], ``group_scale``
    float64 [L] and ``group_bias`` int [L, G] (empty otherwise)."""

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
    order: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    group_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.int64))
    group_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group_bias: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    def __post_init__(self):  # integers; products run in float32 where every sum stays exact (< 2**24)
        for f in fields(self):
            if not f.name.startswith("m"):
                setattr(self, f.name, np.asarray(getattr(self, f.name)))
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
        n_levels, size, dim = self.vectors.shape
        if dim * 127 * 127 >= 2**24:  # the logits' float32 products would not be exact
            raise ValueError(f"codebook dimension {dim} is too large for an exact prior")
        self._vec32 = self.vectors.astype(np.float32)
        # the logits' tables, per level: (vec_t int32 [G, D, K'], scale float32, bias int32 [G, K'])
        self.split = self.order.size > 0
        if self.split:
            self._pos = self._check_order()
            n_groups = self.group_vectors.shape[1]
            self._group_size = size // n_groups
            members = self.order.reshape(n_levels, n_groups, self._group_size)  # [L, G, S]
            codes_t = self.vectors[np.arange(n_levels)[:, None, None], members].transpose(0, 1, 3, 2)
            self._codes = self._tables(
                codes_t,
                self.logit_scale,
                np.take_along_axis(
                    self.logit_bias[:, None, :], members.reshape(n_levels, 1, -1), axis=2
                ).reshape(members.shape),
            )
            self._groups = self._tables(
                self.group_vectors.transpose(0, 2, 1)[:, None], self.group_scale, self.group_bias[:, None]
            )
            logit_parts = ((self.logit_scale, self.logit_bias), (self.group_scale, self.group_bias))
        else:
            self._codes = self._tables(
                self.vectors.transpose(0, 2, 1)[:, None], self.logit_scale, self.logit_bias[:, None]
            )
            logit_parts = ((self.logit_scale, self.logit_bias),)
        # the compiled int32 loop equals the float32 arithmetic while logits and their differences
        # are exact in float32 (|u| < 2**23); beyond that, the float32 path itself decides
        self._int_logits = all(
            np.abs(scale).max(initial=0) * dim * 127 * 127 + np.abs(bias).max(initial=0) < 2**23
            for scale, bias in logit_parts
        )
        self._w1_rows: dict = {}  # (level, levels of the row above in use) -> rows of w1

    @staticmethod
    def _tables(vec_t, scale, bias) -> list[tuple]:
        """Per level: (vec_t int32 [G, D, K'], scale float32, bias int32 [G, K']), contiguous."""
        return [
            (np.ascontiguousarray(v, np.int32), np.float32(c), np.ascontiguousarray(b, np.int32))
            for v, c, b in zip(vec_t, scale, bias)
        ]

    def _check_order(self) -> np.ndarray:
        """int64 [L, K] each code's position in ``order`` (which must permute every level's codes
        into groups of equal size); else a ValueError."""
        n_levels, size, dim = self.vectors.shape
        groups = self.group_vectors.shape[1] if self.group_vectors.ndim == 3 else 0
        if (
            self.order.shape != (n_levels, size)
            or self.group_vectors.shape != (n_levels, groups, dim)
            or not groups
            or size % groups
            or self.group_scale.shape != (n_levels,)
            or self.group_bias.shape != (n_levels, groups)
            or not (np.sort(self.order, axis=1) == np.arange(size)).all()
        ):
            raise ValueError("a split prior's order and group tables do not fit its codebooks")
        return np.argsort(self.order, axis=1)

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

    def query(self, own: np.ndarray, above: np.ndarray, level: int, depth: int) -> np.ndarray:
        """int32 [B, D]: the network's output for codebook ``level``'s code.
        own, above: int [B, L] codes of the row and of the row above (-1: none)."""
        x, w1 = self._context(own, above, level, depth)
        h = self._layer(x, 0, 0, 255, w1)
        h = self._layer(h, 1, 0, 255)
        return self._layer(h, 2, -127, 127).astype(np.int32)

    def _weights(self, q: np.ndarray, table: tuple, groups: np.ndarray | None = None) -> np.ndarray:
        """float32 [B, K'] unnormalised probabilities (constriction normalises them; the same bits
        on every machine): row ``b`` against group ``groups[b]`` of ``table`` (None: group 0)."""
        vec_t, scale, bias = table
        groups = np.zeros(len(q), np.int64) if groups is None else groups
        if _weights_loop is None or not self._int_logits:
            bits = _weights_numpy(q, groups, vec_t, scale, bias)
        else:
            out = np.empty((len(q), vec_t.shape[2]), np.int32)
            bits = _weights_loop(q, groups, vec_t, scale, bias, _BITS, _T_MAX, out)
        return bits.view(np.float32)

    def encode_step(self, coder, q: np.ndarray, level: int, codes: np.ndarray) -> None:
        """Push ``codes`` int [B] of ``level`` (network outputs ``q``) onto the ANS stack ``coder``:
        split priors push the place in the group, then the group (decoded in the other order)."""
        if not self.split:
            coder.encode_reverse(codes.astype(np.int32), _FAMILY, self._weights(q, self._codes[level]))
            return
        group, place = np.divmod(self._pos[level, codes], self._group_size)
        coder.encode_reverse(place.astype(np.int32), _FAMILY, self._weights(q, self._codes[level], group))
        coder.encode_reverse(group.astype(np.int32), _FAMILY, self._weights(q, self._groups[level]))

    def decode_step(self, coder, q: np.ndarray, level: int) -> np.ndarray:
        """Inverse of :meth:`encode_step`: int [B] codes of ``level``."""
        if not self.split:
            return coder.decode(_FAMILY, self._weights(q, self._codes[level]))
        group = coder.decode(_FAMILY, self._weights(q, self._groups[level])).astype(np.int64)
        place = coder.decode(_FAMILY, self._weights(q, self._codes[level], group))
        return self.order[level, group * self._group_size + place]

    def probabilities(self, own, above, level: int, depth: int) -> np.ndarray:
        """float64 [B, K]: each code's probability (for measuring; the coder normalises itself)."""
        q = self.query(own, above, level, depth)

        def normalised(w):
            w = w.astype(np.float64)
            return w / w.sum(axis=1, keepdims=True)

        if not self.split:
            return normalised(self._weights(q, self._codes[level]))
        group = normalised(self._weights(q, self._groups[level]))  # [B, G]
        places = [
            group[:, k : k + 1] * normalised(self._weights(q, self._codes[level], np.full(len(q), k)))
            for k in range(group.shape[1])
        ]
        return np.concatenate(places, axis=1)[:, self._pos[level]]  # positions -> codes

    # -- files ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """npz: the integer arrays as int32, the factors as float64; the split tables only in a
        split prior (so a prior that is not split keeps the bytes, and SHA-256, it always had)."""
        arrays = {}
        for f in fields(self):
            if f.name in SPLIT_FIELDS and not self.split:
                continue
            v = np.asarray(getattr(self, f.name))
            floats = f.name.startswith("m") or f.name.endswith("_scale")
            arrays[f.name] = v if floats else v.astype(np.int32)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CodePrior:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls) if f.name in z.files})

    def sha256(self) -> str:
        """SHA-256 of :meth:`to_bytes` (what a file records; computed once)."""
        if not hasattr(self, "_sha256"):
            self._sha256 = hashlib.sha256(self.to_bytes()).hexdigest()
        return self._sha256


def prior_path(weights: str | Path) -> Path:
    """Where a model's prior lies: ``model.pth`` -> ``model.prior.npz``."""
    weights = Path(weights)
    return weights.with_name(weights.stem + ".prior.npz")


def kept_prior_path(prior_file: str | Path, sha256: str) -> Path:
    """Where a replaced prior is kept for the files written under it: ``model.prior.npz`` ->
    ``model.prior.<first 12 hex digits of its SHA-256>.npz``."""
    prior_file = Path(prior_file)
    return prior_file.with_name(f"{prior_file.stem}.{sha256[:12]}.npz")


def older_priors(weights: str | Path) -> dict[str, Path]:
    """The priors kept beside ``model.pth`` (:func:`kept_prior_path`), by their SHA-256 prefix."""
    current = prior_path(weights)
    found = current.parent.glob(kept_prior_path(current, "?" * 12).name)
    return {p.name[len(current.stem) + 1 : -4]: p for p in sorted(found)}


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


@contextmanager
def _query_pool(prior: CodePrior):
    """``prior.query`` with the frames split over two threads where there are two cores and
    enough frames, numpy's BLAS on one thread each (in this process OpenBLAS's own threads made
    the network 3x slower, not faster; the rows' integer sums are the same either way)."""
    workers = 2 if (os.cpu_count() or 1) > 1 else 1
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:

        def query(own, above, level, depth):
            if workers < 2 or len(own) < 2 * MIN_THREAD_FRAMES:
                return prior.query(own, above, level, depth)
            half = len(own) // 2
            parts = pool.map(
                lambda s: prior.query(own[s], above[s], level, depth), (slice(0, half), slice(half, None))
            )
            return np.concatenate(list(parts))

        yield query


def encode(prior: CodePrior, codes: np.ndarray) -> bytes:
    """codes int [rows, depth, frames] -> ``u32 crc32 of the codes | ANS words``."""
    codes = np.asarray(codes, dtype=np.int64)
    padded, depth = _padded(codes, prior.levels), codes.shape[1]
    coder = constriction.stream.stack.AnsCoder()
    with _query_pool(prior) as query:
        for r, level, span, own, above in reversed(list(_batches(padded, depth))):
            prior.encode_step(coder, query(own, above, level, depth), level, codes[r, level, span])
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
        with _query_pool(prior) as query:
            for r, level, span, own, above in _batches(padded, depth):
                q = query(own, above, level, depth)
                padded[r, span, level] = prior.decode_step(coder, q, level)
    except (ValueError, AssertionError) as exc:
        raise CorruptFileError(f"the entropy-coded codes are damaged ({exc})") from None
    codes = padded[:, :, :depth].transpose(0, 2, 1).copy()
    if zlib.crc32(codes.astype("<i8").tobytes()) != crc:
        raise CorruptFileError(
            "the decoded codes fail their checksum: the file is damaged, or the model's prior is not "
            "the one that wrote it"
        )
    return codes
