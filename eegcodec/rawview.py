"""An archive's recording as an MNE raw that decodes only what is read (``eegcodec.read_raw``).

:class:`DecodedRaw` hands MNE the samples of :func:`~eegcodec.pipeline.decoded_chunks`, started
at the chunk a read needs (:class:`_ChunkReader`), so a window decodes only the chunks it spans
and a forward read (``Raw.save``, scrolling) decodes each chunk once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mne
import numpy as np

from .chunks import exact_span
from .format.container import Archive
from .pipeline import Progress, decoded_chunks, with_annotations
from .reader import check_archive

if TYPE_CHECKING:
    from .backends.base import Codec


class DecodedRaw(mne.io.BaseRaw):
    """An archive's recording as an MNE raw that decodes chunk by chunk as it is read, so writing
    it (``Raw.save`` reads in order) holds a chunk at a time instead of the whole recording.
    Values are those of :func:`decompress_archive` (the decoded volts are handed to MNE unscaled)."""

    def __init__(self, archive: Archive, codec: Codec | None, progress: Progress | None = None):
        side = check_archive(archive)
        h, rec = archive.header, archive.header.recording
        extras = {  # MNE hands _read_segment_file only _raw_extras (and _filenames)
            "reader": _ChunkReader(
                lambda first, fade=True, skip=0, until=None: decoded_chunks(
                    archive, codec, side, progress, first, fade, skip, until
                ),
                len(rec.ch_names),
                [exact_span(h.layout, *c)[0] for c in h.layout.chunks()],
                h.layout.overlap if h.has_tokens else 0,
            ),
            "first_samp": rec.first_samp,
            "cals": np.array([ch["cal"] * ch["range"] for ch in side.info["chs"]]),  # as MNE's _cals
        }
        super().__init__(
            side.info,
            preload=False,
            first_samps=[rec.first_samp],
            last_samps=[rec.first_samp + rec.n_samples - 1],
            filenames=[None],
            raw_extras=[extras],
            orig_format="double",
            verbose="error",
        )
        with_annotations(self, archive)

    def _read_segment_file(self, data, idx, fi, start, stop, cals, mult):
        extras = self._raw_extras[fi]
        block = extras["reader"].span(start - extras["first_samp"], stop - extras["first_samp"])[idx]
        if mult is None:  # MNE would multiply raw units by cals: the block is volts already
            data[:] = block
        else:  # mult holds the cals: hand it raw units
            data[:] = mult @ (block / extras["cals"][idx][:, None])


class _ChunkReader:
    """Sample ranges of :func:`decoded_chunks`' stream, read in any order: a read starts the
    stream at the chunk that holds its first sample unless the stream is there already, so
    forward reads decode each chunk once and a read elsewhere decodes only the chunks it spans.
    ``decode(first, fade, skip, until)`` starts the stream ``skip`` samples into chunk ``first``
    (``fade`` False: without the chunk before it, whose tail only the first ``overlap`` samples of
    chunk ``first`` need: token files' cross-fade; ``until``: where the read ends in that chunk,
    :func:`decoded_chunks`); ``starts`` [chunks] holds each chunk's first own sample."""

    def __init__(self, decode, n_channels: int, starts: np.ndarray, overlap: int = 0):
        self.decode, self.n_channels, self.starts = decode, n_channels, np.asarray(starts)
        self.overlap = overlap
        self._chunks, self._at, self._block = None, 0, np.zeros((n_channels, 0))
        self._valid = 0  # the first sample of the chunk in hand that is final

    def __deepcopy__(self, memo) -> _ChunkReader:  # a copied raw reads on its own
        return _ChunkReader(self.decode, self.n_channels, self.starts, self.overlap)

    def _seek(self, sample: int, stop: int) -> None:
        first = max(int(np.searchsorted(self.starts, sample, side="right")) - 1, 0)
        fade = first == 0 or sample < self.starts[first] + self.overlap  # the cross-fade is read
        at = int(self.starts[first])
        self._chunks = self.decode(first, fade, sample - at, stop - at)
        self._at, self._block = next(self._chunks)
        self._valid = self._at  # the read's first sample: nothing before it was decoded

    def span(self, start: int, stop: int) -> np.ndarray:
        """Volts [channels, stop - start] of samples ``[start, stop)`` (0 = the first)."""
        out, filled = np.empty((self.n_channels, max(stop - start, 0))), start
        if self._chunks is None or start < self._valid or start >= self._next_start():
            if stop > start:
                self._seek(start, stop)
        while filled < stop:
            end = self._at + self._block.shape[1]
            if filled >= end:
                self._at, self._block = next(self._chunks)
                self._valid = self._at
                continue
            take = min(stop, end) - filled
            out[:, filled - start : filled - start + take] = self._block[
                :, filled - self._at : filled - self._at + take
            ]
            filled += take
        return out

    def _next_start(self) -> int:
        """First sample of the chunk after the one in hand (reading on from there costs nothing extra)."""
        later = self.starts[self.starts > self._at]
        return int(later[1]) if later.size > 1 else np.iinfo(np.int64).max
