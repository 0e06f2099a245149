"""What a file keeps about the recording besides its samples, both ways: the measurement info
(the ``INFO`` section: zstd of MNE's FIF bytes) and the annotations (the header's
``annotations`` JSON). The one module of the format that imports MNE: the info is MNE's own FIF."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import mne
import zstandard

from ..errors import CorruptFileError
from .container import inflate
from .header_checks import MAX_INFO_BYTES


def info_to_fif(info: mne.Info) -> tuple[bytes, bytes]:
    """(zstd of the FIF bytes, the FIF bytes) of ``info``: the ``INFO`` section and what it
    inflates to (its size goes into ``header.info_bytes``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meas-info.fif"
        mne.io.write_info(path, info)
        fif = path.read_bytes()
    return zstandard.ZstdCompressor(level=19).compress(fif), fif


def info_from_fif(payload: bytes, size: int | None) -> mne.Info:
    """The ``INFO`` section back to ``mne.Info``; ``size`` is its declared inflated size
    (None in files before version 3: at most :data:`~eegcodec.format.header_checks.MAX_INFO_BYTES`)."""
    if size is None:
        try:
            data = (
                zstandard.ZstdDecompressor()
                .stream_reader(payload, read_across_frames=True)
                .read(MAX_INFO_BYTES + 1)
            )
        except zstandard.ZstdError as exc:
            raise CorruptFileError(f"INFO section cannot be decompressed: {exc}") from exc
        if len(data) > MAX_INFO_BYTES:
            raise CorruptFileError(f"INFO section inflates to more than {MAX_INFO_BYTES:,} bytes")
    else:
        data = inflate(payload, size, "INFO")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meas-info.fif"
        path.write_bytes(data)
        try:
            return mne.io.read_info(path, verbose="error")
        except Exception as exc:
            raise CorruptFileError(f"INFO section is not readable FIF: {type(exc).__name__}") from exc


def annotations_to_json(ann: mne.Annotations) -> dict:
    """The header's ``annotations``: onsets and durations (s), descriptions, channel names per
    annotation, and the origin time (ISO 8601, or None)."""
    return {
        "orig_time": None if ann.orig_time is None else ann.orig_time.isoformat(),
        "onset": [float(v) for v in ann.onset],
        "duration": [float(v) for v in ann.duration],
        "description": [str(v) for v in ann.description],
        "ch_names": [list(v) for v in ann.ch_names],
    }


def annotations_from_json(d: dict) -> mne.Annotations:
    """Inverse of :func:`annotations_to_json` (``d`` validated by :meth:`Header.from_json
    <eegcodec.format.header.Header.from_json>`)."""
    orig = None if d["orig_time"] is None else dt.datetime.fromisoformat(d["orig_time"])
    return mne.Annotations(
        d["onset"], d["duration"], d["description"], orig_time=orig, ch_names=d["ch_names"]
    )
