"""The ``.eegc`` file format: sections, bit-packed codes, CRCs (stage 4: pack).

Layout (all integers little-endian; see ``docs/FORMAT.md``)::

    magic  b"EEGC" | version u16 | reserved u16
    section*       : tag (4 ASCII bytes) | length u64 | payload | crc32 u32 (of tag + payload)
      HEAD  JSON header (UTF-8; version 4: zstd of it)
      CODE  codes [code row, codebook, frame]: ceil(log2(codebook_size)) bits each, MSB first
            (``packed``), or entropy-coded under the model's prior (version 5, ``prior``)
      SIDE  the side arrays listed in header["side"]: version 5, one frame per array (entropy-coded
            integers, zstd floats); before, zstd of their bytes
      RAWC  the channels stored exactly or within a bound: one frame per chunk (:mod:`eegcodec.format.exact`)
      RESD  version 4: the transform layer of ``prd`` files, one frame per chunk
            (:mod:`eegcodec.format.transform`)
      INFO  zstd of the recording's measurement info as FIF bytes (mne.io.write_info)
      END.  empty: marks a complete file

This module knows bytes and arrays only; no model, no MNE object.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import zstandard

from ..errors import CorruptFileError
from .header import ArraySpec, Header
from .streamcoders import ANSCoder

MAGIC = b"EEGC"
VERSION = 9
#: versions this reader takes (1: float32 scales and steps; 2: float64 exact channels, no
#: section digests; 3: no RESD section; 4: SIDE as one zstd stream; 5: no mains arrays; 6: no
#: RAWC channel mode 3; 7: no frame digests, no RAWC channel mode 4, no measured largest error
#: in max-error files, no spatial mix in the decoder correction; 8: RAWC channel mode 4 with at
#: most 4 LPC and 8 NLMS channels; see docs/FORMAT.md)
READABLE = (1, 2, 3, 4, 5, 6, 7, 8, 9)
#: versions this writer can write: new files are VERSION (``pipeline.compress_raw``);
#: eegcodec 0.5-0.7 wrote 5, 6 or 7 by what a file held (the tests still write them)
WRITTEN = (5, 6, 7, 8, 9)
#: the first version whose header carries each per-chunk frame's digest (:func:`frame_digest`)
FRAME_INDEX = 8
#: the sections made of one frame per chunk, and the header fields listing their frames
FRAMED = {b"CODE": "code_frames", b"RAWC": "exact_frames", b"RESD": "residual_frames"}
MAX_HEAD_BYTES = 64 * 2**20
SECTION_ORDER = (b"HEAD", b"CODE", b"SIDE", b"RAWC", b"RESD", b"INFO", b"END.")


def sections(version: int) -> tuple[bytes, ...]:
    """The section tags of a version-``version`` file, in order."""
    return SECTION_ORDER if version >= 4 else tuple(t for t in SECTION_ORDER if t != b"RESD")


_SECTION_HEAD = struct.Struct("<4sQ")


def smallest_int(arr: np.ndarray) -> np.ndarray:
    """Integer ``arr`` in the narrowest of int8/16/32/64 that holds it (others unchanged)."""
    if arr.dtype.kind not in "iu":
        return arr
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return arr.astype(dtype)
    return arr.astype(np.int64)


def pack_arrays(arrays: dict[str, np.ndarray], version: int) -> tuple[bytes, list[ArraySpec]]:
    """The SIDE payload of named arrays, and its index for the header (integer arrays in the
    narrowest dtype that holds them). Version 5: one frame per array (:func:`_side_frame`);
    before: zstd of the arrays' bytes, concatenated."""
    index, chunks, offset = [], [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(smallest_int(np.asarray(arr)))
        raw = arr.tobytes()
        index.append(ArraySpec(name, arr.dtype.str, tuple(arr.shape), offset, len(raw)))
        chunks.append(_side_frame(arr) if version >= 5 else raw)
        offset += len(raw)
    if version >= 5:
        return b"".join(chunks), index
    return zstandard.ZstdCompressor(level=19).compress(b"".join(chunks)), index


def _rows(shape: tuple[int, ...]) -> tuple[int, int]:
    """A side array's shape as [rows, n]: 1-D arrays one row, 2-D as they are."""
    return (1, int(shape[0])) if len(shape) == 1 else (int(shape[0]), int(np.prod(shape[1:], dtype=np.int64)))


def _side_frame(arr: np.ndarray) -> bytes:
    """``u32 size | u8 kind | body``, the smallest of: kind 0, the array's bytes zstd-compressed;
    for an integer array, kind 1, entropy-coded (:class:`ANSCoder`) over ``[rows, n]``, or kind 2,
    its first differences along each row entropy-coded (slowly varying rows)."""
    bodies = [b"\x00" + zstandard.ZstdCompressor(level=19).compress(arr.tobytes())]
    if arr.dtype.kind in "iu":
        rows = arr.astype(np.int64).reshape(_rows(arr.shape))
        diffs = np.diff(rows, axis=1, prepend=0)
        bodies += [b"\x01" + ANSCoder.encode(rows)] if ANSCoder.fits(rows) else []
        bodies += [b"\x02" + ANSCoder.encode(diffs)] if ANSCoder.fits(diffs) else []
    body = min(bodies, key=len)
    return struct.pack("<I", len(body)) + body


def unpack_arrays(payload: bytes, index: list[ArraySpec], version: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`; integer arrays come back as int64."""
    if version < 5:
        raw = inflate(payload, sum(a.nbytes for a in index), "SIDE")
        frames = [raw[item.offset : item.offset + item.nbytes] for item in index]
        return {item.name: _typed(buf, item) for item, buf in zip(index, frames)}
    out, pos, view = {}, 0, memoryview(payload)
    for item in index:
        if pos + 5 > len(payload):
            raise CorruptFileError(f"SIDE section is truncated (array {item.name})")
        (size,) = struct.unpack_from("<I", payload, pos)
        kind, body, pos = payload[pos + 4], view[pos + 5 : pos + 4 + size], pos + 4 + size
        if size < 1 or pos > len(payload) or kind > 2:
            raise CorruptFileError(f"SIDE section is damaged (array {item.name})")
        if kind and np.dtype(item.dtype).kind in "iu":
            rows = ANSCoder.decode(bytes(body), _rows(item.shape))
            if kind == 2:
                if np.abs(rows).max(initial=0) > 2**31:
                    raise CorruptFileError(f"SIDE section is damaged (array {item.name})")
                rows = np.cumsum(rows, axis=1)
            out[item.name] = rows.reshape(item.shape)
        elif kind == 0:
            out[item.name] = _typed(inflate(bytes(body), item.nbytes, "SIDE"), item)
        else:
            raise CorruptFileError(f"SIDE section is damaged (array {item.name} is not integer)")
    if pos != len(payload):
        raise CorruptFileError(f"SIDE section has {len(payload) - pos} bytes after its arrays")
    return out


def _typed(buf: bytes, item: ArraySpec) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=np.dtype(item.dtype)).reshape(item.shape)
    return arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.copy()


def inflate(payload: bytes, expected: int, what: str) -> bytes:
    """zstd-decompress ``payload``, which must inflate to exactly ``expected`` bytes.

    Never inflates more than ``expected + 1`` bytes, so a compression bomb costs nothing."""
    if not payload and expected == 0:
        return b""
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True)
        raw = reader.read(expected + 1)
        while len(raw) <= expected:
            more = reader.read(expected + 1 - len(raw))
            if not more:
                break
            raw += more
    except zstandard.ZstdError as exc:
        raise CorruptFileError(f"{what} section cannot be decompressed: {exc}") from exc
    if len(raw) != expected:
        raise CorruptFileError(
            f"{what} section inflates to {'more than ' if len(raw) > expected else ''}{len(raw)} bytes, "
            f"expected {expected}"
        )
    return raw


def frame_digest(frame: bytes) -> str:
    """A per-chunk frame's digest (version 8): BLAKE2b, 8 bytes, as 16 hex digits."""
    return hashlib.blake2b(frame, digest_size=8).hexdigest()


def frame_offsets(sizes: list[int]) -> np.ndarray:
    """int64 [frames + 1]: where each frame of a section starts (and the section's end), from their sizes."""
    return np.cumsum([0, *sizes], dtype=np.int64)


def head_payload(json_bytes: bytes, version: int) -> bytes:
    """The HEAD section's payload for the header's JSON bytes (zstd from version 4)."""
    return zstandard.ZstdCompressor(level=19).compress(json_bytes) if version >= 4 else json_bytes


def head_json(payload: bytes, version: int, source: str = "input") -> bytes:
    """Inverse of :func:`head_payload`; never inflates past :data:`MAX_HEAD_BYTES` + 1."""
    if version < 4:
        return payload
    out = bytearray()
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(payload)
        while len(out) <= MAX_HEAD_BYTES:  # in pieces: a forged header never allocates the limit at once
            piece = reader.read(2**16)
            if not piece:
                break
            out += piece
    except zstandard.ZstdError as exc:
        raise CorruptFileError(f"{source} has an unreadable header: {exc}") from None
    return bytes(out)


def _parse_json(payload: bytes, source: str):
    if len(payload) > MAX_HEAD_BYTES:
        raise CorruptFileError(
            f"{source} has a {len(payload):,}-byte header, more than {MAX_HEAD_BYTES:,} allowed"
        )

    def refuse(name):
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(payload.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]
        raise CorruptFileError(f"{source} has an unreadable header: {msg}") from None


@dataclass
class Archive:
    """Everything an ``.eegc`` file holds, unpacked.

    Attributes
    ----------
    header : the typed, validated header (:class:`~eegcodec.format.header.Header`).
    codes : bytes of the CODE section (its coder: ``header.code_coder``, :mod:`eegcodec.format.streamcoders`).
    side : payload of the SIDE section (zstd; index in ``header.side``).
    raw_channels : payload of the RAWC section (version 3: one zstd frame per chunk,
        :mod:`eegcodec.format.exact`; versions 1-2: one zstd stream of float64 samples).
    info_fif : payload of the INFO section (zstd of FIF bytes).
    residual : payload of the RESD section (version 4; :mod:`eegcodec.format.transform` frames).
    """

    header: Header
    codes: bytes = b""
    side: bytes = b""
    raw_channels: bytes = b""
    info_fif: bytes = b""
    residual: bytes = b""
    section_sizes: dict[str, int] = field(default_factory=dict)
    _offsets: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def offsets(self, tag: bytes) -> np.ndarray:
        """int64 [chunks + 1]: where each chunk's frame starts in the per-chunk section ``tag``."""
        if tag not in self._offsets:
            self._offsets[tag] = frame_offsets(getattr(self.header, FRAMED[tag]))
        return self._offsets[tag]

    def frame(self, tag: bytes, i: int) -> bytes:
        """Chunk ``i``'s frame in the per-chunk section ``tag`` (``b"RAWC"``, ``b"RESD"``: version 3 on;
        ``b"CODE"``: version 8 on)."""
        a, b = self.offsets(tag)[i : i + 2]
        return {b"CODE": self.codes, b"RAWC": self.raw_channels, b"RESD": self.residual}[tag][a:b]

    def payloads(self) -> dict[bytes, bytes]:
        """Section payloads; HEAD binds the others by their SHA-256 (a spliced file is refused)."""
        body = {
            b"CODE": self.codes,
            b"SIDE": self.side,
            b"RAWC": self.raw_channels,
            b"RESD": self.residual,
            b"INFO": self.info_fif,
        }
        head = self.header.to_json()
        head["sections"] = {
            tag.decode(): hashlib.sha256(payload).hexdigest() for tag, payload in body.items()
        }
        head_bytes = json.dumps(head, separators=(",", ":"), allow_nan=False).encode()
        return {b"HEAD": head_payload(head_bytes, self.header.version), **body, b"END.": b""}

    def to_bytes(self) -> bytes:
        if self.header.version not in WRITTEN:
            raise ValueError(f"this eegcodec writes .eegc versions {WRITTEN} only")
        out = [MAGIC, struct.pack("<HH", self.header.version, 0)]
        for tag, payload in self.payloads().items():
            out += [
                _SECTION_HEAD.pack(tag, len(payload)),
                payload,
                struct.pack("<I", zlib.crc32(tag + payload)),
            ]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "input") -> Archive:
        """Parse and verify an ``.eegc`` file (magic, version, CRCs, digests, header);
        raises :class:`CorruptFileError` with one line."""
        version, found = _read_sections(data, source)
        sizes = {t.decode(): len(p) for t, p in found.items()}
        header = read_header(version, found, sizes, source)
        if version >= FRAME_INDEX:  # whole-file readers check every frame's digest too
            for tag, name in FRAMED.items():
                offsets = frame_offsets(getattr(header, name))
                for i, want in enumerate(header.frame_digests.get(tag.decode(), [])):
                    check_frame(found[tag][offsets[i] : offsets[i + 1]], want, tag, i, source)
        return cls(
            header=header,
            codes=found[b"CODE"],
            side=found[b"SIDE"],
            raw_channels=found[b"RAWC"],
            residual=found.get(b"RESD", b""),
            info_fif=found[b"INFO"],
            section_sizes=sizes,
        )


def read_header(version: int, found: dict[bytes, bytes], sizes: dict[str, int], source: str) -> Header:
    """The validated header of a file whose sections ``found`` holds (tag -> payload; a tag missing
    from it, a per-chunk section left in the file, is checked frame by frame instead of whole);
    ``sizes``: every section's length in bytes."""
    head = _parse_json(head_json(found[b"HEAD"], version, source), source)
    if version >= 3:
        digests = head.pop("sections", None) if isinstance(head, dict) else None
        if not isinstance(digests, dict):
            raise CorruptFileError(f"{source} has no section digests in its header")
        for tag in sections(version)[1:-1]:
            if tag in found and digests.get(tag.decode()) != hashlib.sha256(found[tag]).hexdigest():
                raise CorruptFileError(
                    f"{source} is damaged or spliced: section {tag.decode()} does not belong to this header"
                )
    try:
        header = Header.from_json(head, version)
        header.check_sections(sizes)
    except CorruptFileError as exc:
        raise CorruptFileError(f"{source}: {exc}") from None
    return header


def check_frame(frame: bytes, want: str, tag: bytes, i: int, source: str) -> None:
    """A :class:`CorruptFileError` unless chunk ``i``'s ``frame`` in section ``tag`` has digest ``want``."""
    if frame_digest(frame) != want:
        raise CorruptFileError(
            f"{source} is damaged: chunk {i}'s frame in section {tag.decode()} fails its digest"
        )


def _read_sections(data: bytes, source: str) -> tuple[int, dict[bytes, bytes]]:
    """(version, tag -> payload) with magic, version, order, lengths and CRCs checked."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise CorruptFileError(f"{source} is not an .eegc file (bad magic word)")
    (version, flags) = struct.unpack_from("<HH", data, 4)
    if version not in READABLE:
        raise CorruptFileError(
            f"{source} uses .eegc version {version}; this eegcodec reads versions "
            f"{', '.join(map(str, READABLE))}"
        )
    if flags != 0:
        raise CorruptFileError(f"{source} is damaged: reserved header bits are set ({flags:#06x})")
    pos, found = 8, {}
    for expected in sections(version):
        if pos + _SECTION_HEAD.size > len(data):
            raise CorruptFileError(f"{source} is truncated (section {expected.decode()} missing)")
        tag, length = _SECTION_HEAD.unpack_from(data, pos)
        if tag != expected:
            raise CorruptFileError(
                f"{source} is damaged: expected section {expected!r} at byte {pos}, found {tag!r}"
            )
        start = pos + _SECTION_HEAD.size
        end = start + length
        if end + 4 > len(data):
            raise CorruptFileError(f"{source} is truncated inside section {tag.decode()}")
        payload = data[start:end]
        (crc,) = struct.unpack_from("<I", data, end)
        if zlib.crc32(tag + payload) != crc:
            raise CorruptFileError(f"{source} is damaged: CRC mismatch in section {tag.decode()}")
        found[tag] = payload
        pos = end + 4
    if pos != len(data):
        raise CorruptFileError(f"{source} has {len(data) - pos} unexpected bytes after its end")
    return version, found
