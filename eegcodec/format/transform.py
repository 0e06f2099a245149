"""Multichannel transform coder: the lossy layer of ``--prd`` files, alone or under neural tokens.

The electrodes of a cap see largely the same brain, so a chunk of the coded channels
``x`` [C, n] (volts) is coded in four steps:

1. **Means**: each channel's mean, quantised to :data:`MEAN_FRACTION` of the step.
2. **Spatial KLT**: the eigenvectors of the chunk's channel covariance, strongest first,
   quantised to integers over ``2 ** BASIS_SHIFT`` (the decoder's basis ``B``); the
   encoder codes the components ``solve(B, x)``. Only the first ``k`` columns (the
   components with any non-zero coefficient) are sent, and a chunk may keep the previous
   chunk's basis when that makes its frame smaller.
3. **DCT-II** (orthonormal) of each component over blocks of ``round(sfreq *
   BLOCK_SECONDS)`` samples (the last block zero-padded), and a deadzone quantiser
   ``q = sign(c) floor(|c| / step)`` rebuilt at ``sign(q) (|q| + RECON) step``.
4. **Entropy coding** (:mod:`eegcodec.format.entropy`): one class per component and frequency
   band (:data:`N_BANDS` log-spaced bands), for the means and for each basis column.

The step is one number per chunk: :func:`encode_for_prd` bisects it so the chunk's median
channel PRD stays at or below a target. The rate-distortion curve this gives on 60-s crops
of EEGBCI and EEGMAT is in the README (``eegcodec bench rd``).

Frame layout (little-endian)::

    u32 size | zstd(u8 flags (1: new basis) | f64 step | u16 C | u32 n | u32 block |
                    u16 k | u16 basis columns sent | u8 classes [1 + columns + k * N_BANDS])
    u32 ANS words | words (u32) | raw bits (rest of the frame)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import zstandard

from ..errors import CorruptFileError
from . import entropy

BLOCK_SECONDS = 1.0
BASIS_SHIFT = 6  # basis entries are integers / 64 (the decorrelation, not the accuracy, depends on it)
MEAN_FRACTION = 1 / 16
RECON = 0.375
N_BANDS = 16
CLASS_OFFSET = 16  # mean |q| down to 2**-7.5 per class (:mod:`eegcodec.format.entropy`)
_DESC = struct.Struct("<BdHIIHH")


@dataclass
class Quantised:
    """One chunk quantised at one step: what the frame holds, and what the decoder rebuilds."""

    step: float
    means: np.ndarray  # int64 [C]
    basis: np.ndarray  # int64 [C, C] (columns beyond k unused by the decoder)
    coef: np.ndarray  # int64 [k, blocks, block]
    recon: np.ndarray  # float64 [C, n]


def block_length(sfreq: float) -> int:
    return max(1, int(round(sfreq * BLOCK_SECONDS)))


def klt_basis(x: np.ndarray) -> np.ndarray:
    """Quantised eigenvectors (int64 [C, C], strongest first) of ``x`` [C, n]'s covariance."""
    xc = x - x.mean(axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(xc @ xc.T)
    vecs = vecs[:, ::-1] * np.where(vecs[:, ::-1].sum(axis=0) < 0, -1, 1)  # a sign per column, fixed
    basis = np.round(vecs * 2**BASIS_SHIFT).astype(np.int64)
    if np.linalg.matrix_rank(basis) < len(basis):  # rounding made it singular: fall back to identity
        basis = np.eye(len(basis), dtype=np.int64) << BASIS_SHIFT
    return basis


def _bands(block: int) -> np.ndarray:
    """Band edges over the ``block`` DCT frequencies: [0, ..., block], log-spaced, distinct."""
    edges = np.unique(np.round(np.geomspace(1, block, N_BANDS)).astype(np.int64))
    return np.unique(np.concatenate([[0], edges[:-1], [block]]))


def _rebuild(means_q, basis_q, coef, step: float, n: int, start: int = 0) -> np.ndarray:
    """Decoder side: float64 [C, n - start] (samples ``start`` to ``n`` of the chunk) from quantised
    means, basis and coefficients; only the DCT blocks from the one holding ``start`` are inverted."""
    from scipy.fft import idct  # 0.2 s to import: token and lossless files never need it

    k, nb, block = coef.shape
    first = start // block  # the DCT blocks before it are not needed
    coef = coef[:, first:]
    comps = idct(np.sign(coef) * (np.abs(coef) + RECON) * step, type=2, norm="ortho", axis=-1)
    comps = comps.reshape(k, (nb - first) * block)[:, start - first * block : n - first * block]
    basis = basis_q[:, :k].astype(np.float64) / 2**BASIS_SHIFT
    return np.einsum("ck,kn->cn", basis, comps) + means_q[:, None] * (step * MEAN_FRACTION)


def quantise(
    x: np.ndarray,
    basis_q: np.ndarray,
    step: float,
    block: int,
    inverse: tuple[np.ndarray, np.ndarray],
    k_max: int | None = None,
) -> Quantised:
    """Quantise ``x`` [C, n] (volts) in the basis ``basis_q`` with ``step`` (volts); components
    beyond ``k_max`` (the columns a kept basis has) are dropped. ``inverse``: the basis's inverse
    and its product with ``x`` (:func:`_projection`, computed once for all the steps tried)."""
    from scipy.fft import dct  # 0.2 s to import: token and lossless files never need it

    c, n = x.shape
    means = np.round(x.mean(axis=1) / (step * MEAN_FRACTION)).astype(np.int64)
    inv, projected = inverse
    comps = projected - (inv @ (means * (step * MEAN_FRACTION)))[:, None]  # the basis's inverse of x - means
    nb = -(-n // block)
    padded = np.zeros((c, nb * block))
    padded[:, :n] = comps
    coef = dct(padded.reshape(c, nb, block), type=2, norm="ortho", axis=-1)
    q = (np.sign(coef) * np.floor(np.abs(coef) / step)).astype(np.int64)
    live = np.flatnonzero(np.abs(q).reshape(c, -1).max(axis=1) > 0)
    k = int(live[-1]) + 1 if live.size else 0
    q = q[: k if k_max is None else min(k, k_max)]
    return Quantised(step, means, basis_q, q, _rebuild(means, basis_q, q, step, n))


def _projection(x: np.ndarray, basis_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inverse of the quantised basis, that inverse times ``x``)."""
    inv = np.linalg.inv(basis_q.astype(np.float64) / 2**BASIS_SHIFT)
    return inv, inv @ x


def median_prd(err: np.ndarray, ref_norm: np.ndarray) -> float:
    """Median over channels of ``100 ||err|| / ref_norm`` (channels with ``ref_norm`` 0 left out)."""
    ok = ref_norm > 0
    if not ok.any():
        return 0.0
    return float(np.median(100 * np.linalg.norm(err[ok], axis=1) / ref_norm[ok]))


def search_step(
    x: np.ndarray, target_prd: float, ref_norm: np.ndarray, basis_q: np.ndarray, block: int, k_max=None
) -> Quantised | None:
    """The coarsest step (within 0.1 %) whose median PRD against ``ref_norm`` is at most
    ``target_prd``; None if even a very fine step does not reach it in this basis."""
    rms = float(np.sqrt(np.mean(x**2))) or float(np.max(ref_norm)) / np.sqrt(x.shape[1]) or 1e-6
    lo, hi = np.log(rms * 1e-5), np.log(rms * 10)
    best, inverse = None, _projection(x, basis_q)
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        trial = quantise(x, basis_q, float(np.exp(mid)), block, inverse, k_max)
        if median_prd(x - trial.recon, ref_norm) <= target_prd:
            best, lo = trial, mid
        else:
            hi = mid
    return best


def pack(qz: Quantised, new_basis: bool) -> bytes:
    """The frame of a quantised chunk (``new_basis``: send the first k basis columns)."""
    c = len(qz.means)
    k, _, block = qz.coef.shape
    edges = _bands(block)
    groups = [qz.means] + ([qz.basis[:, j] for j in range(k)] if new_basis else [])
    groups += [qz.coef[j, :, a:b].ravel() for j in range(k) for a, b in zip(edges[:-1], edges[1:])]
    sizes = np.array([g.size for g in groups])
    means_abs = np.array([np.abs(g).mean() if g.size else 0.0 for g in groups])
    classes = entropy.classes_for(means_abs, CLASS_OFFSET, zero_class=True)
    words, raw_bits = entropy.encode(np.concatenate(groups), classes, sizes, CLASS_OFFSET, zero_class=True)
    n = qz.recon.shape[1]
    desc = _DESC.pack(int(new_basis), qz.step, c, n, block, k, k if new_basis else 0) + classes.tobytes()
    return entropy.pack_frame(desc, words, raw_bits)


class TransformEncoder:
    """Codes the chunks of one recording in order; remembers the basis the decoder holds."""

    def __init__(self, sfreq: float):
        self.block = block_length(sfreq)
        self.basis: np.ndarray | None = None  # int64 [C, C]: the decoder holds its first `columns`
        self.columns = 0

    def encode(self, x: np.ndarray, target_prd: float, ref_norm: np.ndarray) -> tuple[bytes, np.ndarray]:
        """Code ``x`` [C, n] (volts) so that the median over channels of ``100 ||x - x'|| /
        ref_norm`` is at most ``target_prd``. Returns (frame, the decoder's x' float64 [C, n])."""
        fresh = search_step(x, target_prd, ref_norm, klt_basis(x), self.block)
        if fresh is None:
            raise ValueError(f"PRD {target_prd} % is out of the transform coder's reach")
        options = [(pack(fresh, True), fresh)]
        if self.basis is not None and self.columns:
            kept = search_step(x, target_prd, ref_norm, self.basis, self.block, self.columns)
            if kept is not None:
                options.append((pack(kept, False), kept))
        frame, qz = min(options, key=lambda o: len(o[0]))
        if qz is fresh:
            self.basis, self.columns = fresh.basis, fresh.coef.shape[0]
        return frame, qz.recon


class TransformDecoder:
    """Decodes the frames of one recording in order (a frame may keep the previous basis)."""

    def __init__(self):
        self.basis: np.ndarray | None = None  # int64 [C, columns]

    @staticmethod
    def has_basis(frame: bytes) -> bool:
        """Whether ``frame`` brings a new spatial basis (a reader that starts at a later frame
        decodes from the last frame that does)."""
        try:
            desc, _, _ = entropy.unpack_frame(memoryview(frame), _DESC.size + 2**16, "transform")
            return bool(_DESC.unpack_from(desc, 0)[0])
        except (struct.error, ValueError, zstandard.ZstdError):
            raise CorruptFileError("transform frame is damaged") from None

    def take_basis(self, frame: bytes, c: int, n: int) -> None:
        """Keep the spatial basis ``frame`` brings (a frame with one, :meth:`has_basis`), decoding
        only its means and basis (they lead the stream), not its coefficients."""
        try:
            self._decode(memoryview(frame), c, n, basis_only=True)
        except (struct.error, ValueError, IndexError, zstandard.ZstdError) as exc:
            raise CorruptFileError(f"transform frame is damaged ({type(exc).__name__})") from None

    def decode(self, frame: bytes, c: int, n: int, start: int = 0) -> np.ndarray:
        """One frame of ``n`` samples -> float64 [c, n - start] volts, its samples from ``start`` on
        (the frame's coefficients are all decoded, its DCT blocks from there on inverted); anything
        inconsistent is a :class:`CorruptFileError`."""
        try:
            return self._decode(memoryview(frame), c, n, start=start)
        except (struct.error, ValueError, IndexError, zstandard.ZstdError) as exc:
            raise CorruptFileError(f"transform frame is damaged ({type(exc).__name__})") from None

    def _decode(
        self, frame: memoryview, c: int, n: int, basis_only: bool = False, start: int = 0
    ) -> np.ndarray | None:
        most = _DESC.size + 1 + c + c * (N_BANDS + 1)
        desc, words, raw_bits = entropy.unpack_frame(frame, most, "transform")
        flags, step, c_got, n_got, block, k, columns = _DESC.unpack_from(desc, 0)
        have = 0 if self.basis is None else self.basis.shape[1]
        if (
            (c_got, n_got) != (c, n)
            or flags > 1
            or not (0 < step < 1e3)
            or not 1 <= block <= max(n, 1)
            or k > c
            or columns != (k if flags else 0)
            or (not flags and k > have)
        ):
            raise CorruptFileError("transform frame does not fit its chunk (size, step, basis)")
        edges = _bands(block)
        nb = -(-n // block)
        sizes = np.array(
            [c] + [c] * columns + [nb * (b - a) for _ in range(k) for a, b in zip(edges[:-1], edges[1:])]
        )
        classes = np.frombuffer(desc, np.uint8, offset=_DESC.size)
        if classes.size != sizes.size:
            raise CorruptFileError("transform frame is damaged (classes)")
        head = 1 + columns if basis_only else None  # the means and the basis columns lead
        values = entropy.decode(words, raw_bits, classes, sizes, CLASS_OFFSET, True, groups=head)
        means, rest = values[:c], values[c:]
        if flags:
            basis = rest[: c * columns].reshape(columns, c).T
            if np.abs(basis).max(initial=0) > 2**BASIS_SHIFT:
                raise CorruptFileError("transform frame is damaged (basis)")
            self.basis, rest = basis, rest[c * columns :]
        if basis_only:
            return None
        coef = np.zeros((k, nb, block), np.int64)
        bands = [(a, b) for a, b in zip(edges[:-1], edges[1:])]
        pos = 0
        for j in range(k):
            for a, b in bands:
                coef[j, :, a:b] = rest[pos : pos + nb * (b - a)].reshape(nb, b - a)
                pos += nb * (b - a)
        return _rebuild(means, self.basis if k else np.zeros((c, 0), np.int64), coef, step, n, start)
