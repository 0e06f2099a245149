"""A corpus of model tokens on disk, readable with numpy alone, and a torch ``Dataset`` over it.

Layout of a store (``eegcodec tokenize DIR -o STORE``)::

    STORE/store.json                  model name and SHA-256, depth, window frames, code dtype
    STORE/manifest.jsonl              one JSON line per (recording, window), see below
    STORE/records/<source path>/      one folder per recording, renamed into place whole
        codes.npy                     int16 (int32 for codebooks over 2**15) [rows, depth, frames]
        meta.json                     the recording's metadata (the manifest's fields)
        recording.eegc                the .eegc file: what eegcodec.detokenize needs to decode

``codes.npy`` opens as a memory map (``np.load(path, mmap_mode="r")``). A manifest line:
``source`` (path relative to DIR), ``codes`` (path relative to STORE), ``window``,
``frame_offset`` and ``frames`` (the window is ``codes[:, :, frame_offset:frame_offset +
frames]``), ``start_s`` (the start of its first frame, seconds from the recording's first
sample), ``recording_frames``, ``rows``, ``depth``, ``dtype``, ``sfreq``, ``frame_seconds``,
``channels`` (the coded channels), ``row_mapping`` (``per_channel``: row r is ``channels[r]``;
``spatial``: every row stands for all of them, DAC-MC), ``model``, ``model_sha256``.

Codes are the ``.eegc`` file's: chunk after chunk, and consecutive chunks overlap by the
model's ``overlap_seconds`` (mc-small: 1 s, between 30-s chunks), so a window that crosses a
chunk border repeats a few frames' worth of time; ``meta.json`` holds each chunk's start
(``chunk_start_s``) and frame count (``chunk_frames``), from which every frame's time follows
(:func:`frame_starts`).

A record folder is written under a temporary name and renamed into place, so an
interrupted run leaves no half-written record; the manifest is rewritten (atomically) from
the records present at the end of every run.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import EegcodecError
from .io import atomic_write_bytes

STORE_FILE, MANIFEST, RECORDS = "store.json", "manifest.jsonl", "records"
META, CODES, EEGC = "meta.json", "codes.npy", "recording.eegc"
STORE_FORMAT = {"format": "eegcodec-token-store", "version": 1}


def record_dir(store: Path, rel: Path) -> Path:
    """The folder of the recording at ``rel`` (its path relative to the corpus folder)."""
    return Path(store) / RECORDS / rel


def is_complete(store: Path, rel: Path) -> bool:
    """A record is complete once its folder is in place (it is renamed there whole)."""
    return (record_dir(store, rel) / META).is_file()


def code_dtype(codebook_size: int) -> np.dtype:
    return np.dtype(np.int16 if codebook_size <= 2**15 else np.int32)


def open_store(store: Path, settings: dict) -> dict:
    """Create ``store/store.json`` from ``settings`` (model, model_sha256, depth, window_frames,
    dtype), or check that an existing store was made with the same; returns them."""
    path = Path(store) / STORE_FILE
    want = {**STORE_FORMAT, **settings}
    if path.exists():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise EegcodecError(f"{path} is not a token store's description ({exc})") from None
        diff = sorted(k for k in want if have.get(k) != want[k])
        if diff:
            shown = ", ".join(f"{k}: {have.get(k)!r} there, {want[k]!r} now" for k in diff)
            raise EegcodecError(f"{path.parent} is a token store made otherwise ({shown}); choose another -o")
        return have
    atomic_write_bytes(path, (json.dumps(want, indent=1) + "\n").encode())
    return want


def write_record(store: Path, rel: Path, tokens, dtype: np.dtype, overwrite: bool = False) -> Path:
    """Write one recording's tokens (:class:`eegcodec.tokens.Tokens`) as a record folder:
    filled under a hidden temporary name, then renamed into place (an existing record is
    replaced only with ``overwrite``)."""
    final = record_dir(store, rel)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        np.save(tmp / CODES, tokens.codes.astype(dtype))
        (tmp / EEGC).write_bytes(tokens.eegc_bytes())
        (tmp / META).write_text(json.dumps(record_meta(rel, tokens, dtype), indent=1) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            if not overwrite:
                raise EegcodecError(
                    f"output exists: {final} (--force to redo it, --skip-existing to keep it)"
                )
            old = final.with_name(f".{final.name}.replaced")  # whole until the new record is in
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def remove_partials(store: Path, rel: Path) -> None:
    """Remove what an interrupted write of this record left (its hidden temporary folders)."""
    final = record_dir(store, rel)
    if final.parent.is_dir():
        for left in [
            *final.parent.glob(f".{final.name}.*.partial"),
            final.with_name(f".{final.name}.replaced"),
        ]:
            shutil.rmtree(left, ignore_errors=True)


def record_meta(rel: Path, tokens, dtype: np.dtype) -> dict:
    """The metadata of one record (``meta.json``): what the manifest's lines repeat."""
    starts = [float(tokens.times[tokens.chunks == i][0]) for i in np.unique(tokens.chunks)]
    return {
        "source": Path(rel).as_posix(),
        "codes": (Path(RECORDS) / rel / CODES).as_posix(),
        "eegc": (Path(RECORDS) / rel / EEGC).as_posix(),
        "recording_frames": tokens.frames,
        "rows": tokens.rows,
        "depth": tokens.depth,
        "dtype": np.dtype(dtype).name,
        "sfreq": tokens.sfreq,
        "frame_seconds": tokens.frame_seconds,
        "chunk_start_s": starts,
        "chunk_frames": np.bincount(tokens.chunks).tolist(),
        "channels": tokens.channels,
        "row_mapping": "spatial" if tokens.spatial else "per_channel",
        "model": tokens.model,
        "model_sha256": tokens.weights_sha256,
    }


def records(store: Path) -> list[dict]:
    """The metadata of every complete record, sorted by source path."""
    root = Path(store) / RECORDS
    metas = (
        [json.loads(p.read_text()) for p in root.rglob(META) if not _hidden(p, root)] if root.is_dir() else []
    )
    return sorted(metas, key=lambda m: m["source"])


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def frame_starts(meta: dict) -> np.ndarray:
    """float64 [recording_frames]: each frame's start (s from the first sample) of a record."""
    parts = [
        s + np.arange(n) * meta["frame_seconds"] for s, n in zip(meta["chunk_start_s"], meta["chunk_frames"])
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def windows(meta: dict, window_frames: int) -> list[dict]:
    """Manifest lines of one record: consecutive windows of ``window_frames`` frames (a last
    partial window is left out); ``window_frames`` 0: the whole recording as one window."""
    n = meta["recording_frames"]
    size = window_frames or n
    starts = frame_starts(meta)
    keep = {k: v for k, v in meta.items() if k not in ("eegc", "chunk_start_s", "chunk_frames")}
    return [
        {**keep, "window": w, "frame_offset": off, "frames": size, "start_s": float(starts[off])}
        for w, off in enumerate(range(0, n - size + 1, size) if size else [])
    ]


def write_manifest(store: Path, window_frames: int) -> int:
    """Rewrite ``store/manifest.jsonl`` (atomically) from the complete records; returns its lines.
    Processes that write it at once (``--shard`` ranks finishing together) take turns under a
    lock on ``store/.manifest.lock``, each listing the records after the one before has written:
    the last one to write lists every record finished by then."""
    with open(Path(store) / ".manifest.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        lines = [json.dumps(w) for meta in records(store) for w in windows(meta, window_frames)]
        atomic_write_bytes(Path(store) / MANIFEST, "".join(line + "\n" for line in lines).encode())
    return len(lines)


def read_manifest(store: Path) -> list[dict]:
    path = Path(store) / MANIFEST
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise EegcodecError(f"{path} cannot be read as a token store manifest ({exc})") from None


class TokenDataset(Dataset):
    """The windows of a token store: item i is (codes LongTensor [rows, depth, frames],
    metadata ``{"source", "window", "frame_offset", "start_s", "frames"}``) of manifest line i.

    ``window_frames`` re-cuts the recordings into windows of that many frames instead of the
    manifest's. Codes are read through memory maps, opened lazily (each DataLoader worker
    opens its own)."""

    def __init__(self, store: str | os.PathLike, window_frames: int | None = None):
        self.store = Path(store)
        lines = read_manifest(self.store)
        if window_frames is not None:
            metas = {m["codes"]: m for m in records(self.store)}
            lines = [w for m in metas.values() for w in windows(m, window_frames)]
        self.lines = lines
        self._maps: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def codes_of(self, line: dict) -> np.ndarray:
        """The memory-mapped codes [rows, depth, recording_frames] of a manifest line's record."""
        if line["codes"] not in self._maps:
            self._maps[line["codes"]] = np.load(self.store / line["codes"], mmap_mode="r")
        return self._maps[line["codes"]]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict]:
        line = self.lines[i]
        a = line["frame_offset"]
        codes = np.asarray(self.codes_of(line)[:, :, a : a + line["frames"]], dtype=np.int64)
        meta = {k: line[k] for k in ("source", "window", "frame_offset", "start_s", "frames")}
        return torch.from_numpy(codes), meta
