"""An ``.eegc`` file opened in place: its per-chunk frames are read when decoded, not at open.

:func:`open_archive` reads the header, the side arrays, the codes and the measurement info
(checked as :meth:`~eegcodec.format.container.Archive.from_bytes` checks them) and walks past
the per-chunk sections (``RAWC``, ``RESD``) by their lengths; version 8 headers list each of
their frames' size and digest (the frame index), so :meth:`FileArchive.frame` seeks straight to
chunk ``i``'s frame, reads it and checks its digest (a damaged frame is a
:class:`~eegcodec.errors.CorruptFileError` when it is read). Files before version 8 have no
frame index: they are read whole (:meth:`Archive.from_bytes`), as before. Whole-file readers
(``info``, ``verify``) keep :meth:`Archive.from_bytes`, which checks every section and frame.

Memory and time at open do not grow with the recording's length beyond the header's index and
the side arrays. This module knows bytes only: no model, no MNE object.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from ..errors import CorruptFileError
from .container import (
    _SECTION_HEAD,
    FRAME_INDEX,
    FRAMED,
    MAGIC,
    READABLE,
    Archive,
    check_frame,
    read_header,
    sections,
)


@dataclass
class FileArchive(Archive):
    """An :class:`Archive` whose per-chunk sections stay in the file at ``path``;
    ``starts``: tag -> the byte where that section's payload begins in the file."""

    path: str = ""
    starts: dict | None = None

    def frame(self, tag: bytes, i: int) -> bytes:
        """Chunk ``i``'s frame in section ``tag``, read from the file and checked against its digest."""
        a, b = (int(x) for x in self.offsets(tag)[i : i + 2])
        with open(self.path, "rb") as f:
            f.seek(self.starts[tag] + a)
            data = f.read(b - a)
        if len(data) != b - a:
            raise CorruptFileError(f"{self.path} is truncated inside section {tag.decode()}")
        check_frame(data, self.header.frame_digests[tag.decode()][i], tag, i, self.path)
        return data


def open_archive(path: str | os.PathLike) -> Archive:
    """The archive at ``path``: a :class:`FileArchive` for a file of version 8 or later (its per-chunk frames
    read when asked for), else the whole file parsed and checked (:meth:`Archive.from_bytes`)."""
    path = str(path)
    with open(path, "rb") as f:
        start = f.read(8)
        if len(start) < 8 or start[:4] != MAGIC:
            raise CorruptFileError(f"{path} is not an .eegc file (bad magic word)")
        version, flags = struct.unpack_from("<HH", start, 4)
        if (
            version < FRAME_INDEX or version not in READABLE or flags
        ):  # no frame index: the whole file, as before
            f.seek(0)
            return Archive.from_bytes(f.read(), source=path)
        found, starts, sizes = _walk(f, version, os.fstat(f.fileno()).st_size, path)
    header = read_header(version, found, sizes, path)
    return FileArchive(
        header=header,
        codes=b"",  # version 8: CODE is one frame per chunk, read as decoded
        side=found[b"SIDE"],
        info_fif=found[b"INFO"],
        section_sizes=sizes,
        path=path,
        starts=starts,
    )


def _walk(f, version: int, total: int, path: str) -> tuple[dict[bytes, bytes], dict[bytes, int], dict]:
    """(tag -> payload of the sections read whole, CRC checked; tag -> where each per-chunk
    section's payload starts; tag name -> every section's length): the file's sections in order,
    the per-chunk ones skipped by their lengths."""
    pos, found, starts, sizes = 8, {}, {}, {}
    for expected in sections(version):
        f.seek(pos)
        head = f.read(_SECTION_HEAD.size)
        if len(head) < _SECTION_HEAD.size:
            raise CorruptFileError(f"{path} is truncated (section {expected.decode()} missing)")
        tag, length = _SECTION_HEAD.unpack(head)
        if tag != expected:
            raise CorruptFileError(
                f"{path} is damaged: expected section {expected!r} at byte {pos}, found {tag!r}"
            )
        begin = pos + _SECTION_HEAD.size
        if begin + length + 4 > total:
            raise CorruptFileError(f"{path} is truncated inside section {tag.decode()}")
        sizes[tag.decode()] = length
        if tag in FRAMED:
            starts[tag] = begin
        else:
            payload, (crc,) = f.read(length), struct.unpack("<I", f.read(4))
            if zlib.crc32(tag + payload) != crc:
                raise CorruptFileError(f"{path} is damaged: CRC mismatch in section {tag.decode()}")
            found[tag] = payload
        pos = begin + length + 4
    if pos != total:
        raise CorruptFileError(f"{path} has {total - pos} unexpected bytes after its end")
    return found, starts, sizes
