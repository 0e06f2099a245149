"""Training windows: recordings -> exactly what the codec sees at compress time.

Each recording goes through the same survey and chunk adapter as
:func:`eegcodec.pipeline.compress_raw` (baseline removed, per-chunk scaling,
resampling to the model rate), so the model is trained on its real input. The
adapted chunks are cached as memory-mapped ``.npy`` files keyed by file, adapter
settings and hop, so only the first epoch reads EDF files and a large corpus stays on disk.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ..adapt import AdapterConfig, ChunkLayout
from ..chunks import ChunkCoder
from ..errors import EegcodecError
from ..io import FOLDER_SUFFIXES, read_raw
from ..survey import survey_recording

MANIFEST_SUFFIXES = (".txt", ".csv", ".tsv")


def _read_manifest(path: Path) -> list[tuple[Path, str | None]]:
    """(file, subject or None) rows: ``.txt`` one path per line; ``.csv``/``.tsv`` with a
    ``path`` column and optionally ``subject``. Relative paths are under the manifest's folder."""
    import csv

    rows = []
    if path.suffix == ".txt":
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        rows = [(ln, None) for ln in lines if ln and not ln.startswith("#")]
    else:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ",")
            if "path" not in (reader.fieldnames or []):
                raise EegcodecError(
                    f"manifest {path} needs a 'path' column (and optionally 'subject'), has "
                    f"{reader.fieldnames}"
                )
            rows = [(r["path"].strip(), (r.get("subject") or "").strip() or None) for r in reader]
    out = []
    for name, subject in rows:
        p = Path(os.path.expanduser(name))
        p = p if p.is_absolute() else path.parent / p
        if not p.exists():
            raise EegcodecError(f"manifest {path} lists a missing file: {p}")
        out.append((p, subject))
    return out


def list_recordings(root: str, patterns: list[str]) -> dict[Path, str | None]:
    """Recordings named by ``patterns`` -> their subject when a manifest says it.

    Each pattern is a glob, a folder (its recordings, recursively), or a manifest
    (``.txt``/``.csv``/``.tsv``); relative ones are under ``root``.
    """
    found: dict[Path, str | None] = {}
    for pat in patterns:
        full = Path(pat if os.path.isabs(pat) else os.path.join(os.path.expanduser(root), pat))
        if full.is_dir():
            rows = [(p, None) for p in sorted(full.rglob("*")) if p.name.lower().endswith(FOLDER_SUFFIXES)]
        elif full.is_file() and full.suffix in MANIFEST_SUFFIXES:
            rows = _read_manifest(full)
        else:
            rows = [(Path(m), None) for m in sorted(glob.glob(str(full)))]
        if not rows:
            raise EegcodecError(f"data pattern matched no recording: {full}")
        for p, subject in rows:
            found[p] = subject or found.get(p)
    return dict(sorted(found.items()))


def subject_of(path: Path, manifest_subject: str | None, regex: str) -> str:
    """A recording's subject: the manifest's, else the first match of ``regex`` in its path."""
    if manifest_subject:
        return manifest_subject
    m = re.search(regex, str(path))
    if not m:
        raise EegcodecError(
            f"cannot tell the subject of {path}: no manifest 'subject' and no match of data.subject_regex "
            f"{regex!r}"
        )
    return m.group(0)


def split_recordings(cfg) -> tuple[list[Path], list[Path]]:
    """(train, val) recordings of a :class:`~eegcodec.train.config.DataConfig`.

    Whole recordings go to one side. With ``split_by: subject`` no subject is on
    both sides. Without ``val`` patterns, ``val_fraction`` of the recordings (or of
    the subjects) is held out, chosen by a fixed seed.
    """
    if cfg.split_by not in ("recording", "subject"):
        raise EegcodecError(f"data.split_by must be 'recording' or 'subject', got {cfg.split_by!r}")
    train = list_recordings(cfg.root, cfg.train)
    val = list_recordings(cfg.root, cfg.val) if cfg.val else {}

    def group(p: Path, subject: str | None) -> str:
        return subject_of(p, subject, cfg.subject_regex) if cfg.split_by == "subject" else str(p)

    if not val and cfg.val_fraction > 0:
        groups = sorted({group(p, s) for p, s in train.items()})
        n_val = max(1, int(round(cfg.val_fraction * len(groups))))
        if n_val >= len(groups):
            raise EegcodecError(
                f"data.val_fraction {cfg.val_fraction} leaves no training {cfg.split_by}s (of {len(groups)})"
            )
        held = set(np.random.default_rng(0).permutation(groups)[:n_val].tolist())
        val = {p: s for p, s in train.items() if group(p, s) in held}
        train = {p: s for p, s in train.items() if group(p, s) not in held}
    both = sorted({group(p, s) for p, s in train.items()} & {group(p, s) for p, s in val.items()})
    if both:
        raise EegcodecError(
            f"{cfg.split_by}s in both train and val: {both[:5]}{' ...' if len(both) > 5 else ''}"
        )
    return list(train), list(val)


def adapted_chunks(source, cfg: AdapterConfig, hop: int) -> tuple[list[np.ndarray], list[str]]:
    """Codec-domain chunks of one recording (a path or an ``mne.io.Raw``), exactly what
    compression feeds the codec (:meth:`eegcodec.chunks.ChunkCoder.prepare`):
    (list of float32 [C, T], the C coded channel names)."""
    raw = read_raw(source) if isinstance(source, (str, Path)) else source
    survey = survey_recording(raw, cfg)
    if not survey.plan.coded:
        return [], []
    sfreq = raw.info["sfreq"]
    coder = ChunkCoder(cfg, sfreq, hop, survey.baseline, survey.noise)
    out = []
    for start, stop in ChunkLayout.for_recording(raw.n_times, sfreq, cfg).chunks():
        x = raw.get_data(picks=survey.plan.coded, start=start, stop=stop)
        out.append(coder.prepare(x, start)[0])
    return out, [raw.ch_names[i] for i in survey.plan.coded]


def _cache_key(path: Path, cfg: AdapterConfig, hop: int) -> str:
    st = path.stat()
    ident = json.dumps(
        [str(path.resolve()), st.st_size, st.st_mtime_ns, cfg.to_dict(), hop, "names", "scale-rounded"],
        sort_keys=True,
    )
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


class WindowBank:
    """Random fixed-length windows drawn from adapted recordings.

    Parameters
    ----------
    files : recordings (any MNE format).
    cfg : adapter settings (those stored with the trained model).
    hop : codec hop; windows are multiples of it.
    window : window length in codec samples.
    cache_dir : where adapted chunks are cached ('' disables the cache).

    ``augment``, when set, is ``augment(windows [B, C, T], rng) -> windows``, applied to every
    draw (the trainer sets it on the training bank: :mod:`eegcodec.train.augment`).
    """

    augment = None

    def __init__(self, files: list[Path], cfg: AdapterConfig, hop: int, window: int, cache_dir: str = ""):
        self.window = int(window) // hop * hop
        if self.window <= 0:
            raise EegcodecError(f"window ({window} samples) is shorter than the hop ({hop})")
        self.chunks: list[np.ndarray] = []
        self.sources: list[str] = []
        self.names: list[list[str]] = []  #: coded channel names of each chunk's rows
        cache = Path(os.path.expanduser(cache_dir)) if cache_dir else None
        for path in files:
            arrays, names = (
                self._cached(cache / f"{path.stem}-{_cache_key(path, cfg, hop)}", path, cfg, hop)
                if cache
                else adapted_chunks(path, cfg, hop)
            )
            for a in arrays:
                if a.shape[1] >= self.window:
                    self.chunks.append(a)
                    self.sources.append(path.name)
                    self.names.append(names)
        if not self.chunks:
            raise EegcodecError(
                "no training windows: files too short for the window length, or no EEG channels"
            )
        self._weigh()

    def _weigh(self) -> None:
        """Chunks drawn in proportion to their channel-samples that can start a window."""
        weights = np.array(
            [a.shape[0] * (a.shape[1] - self.window + 1) for a in self.chunks], dtype=np.float64
        )
        self._p = weights / weights.sum()

    @staticmethod
    def _cached(folder: Path, path: Path, cfg: AdapterConfig, hop: int) -> tuple[list[np.ndarray], list[str]]:
        """Adapted chunks of ``path``, memory-mapped from ``folder`` (one ``.npy`` per chunk),
        written there first if absent. Memory-mapping keeps a corpus of hundreds of hours
        on disk; the OS page cache holds what is used."""
        if not (folder / "done").exists():
            arrays, names = adapted_chunks(path, cfg, hop)
            tmp = folder.with_name(f"{folder.name}.{os.getpid()}.partial")  # ranks may write at once
            tmp.mkdir(parents=True, exist_ok=True)
            for i, a in enumerate(arrays):
                np.save(tmp / f"c{i}.npy", a)
            (tmp / "names.json").write_text(json.dumps(names))
            (tmp / "done").write_text(str(len(arrays)))
            try:
                os.replace(tmp, folder)
            except OSError:  # another rank finished first
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        n = int((folder / "done").read_text())
        return [np.load(folder / f"c{i}.npy", mmap_mode="r") for i in range(n)], json.loads(
            (folder / "names.json").read_text()
        )

    @property
    def n_samples(self) -> int:
        return int(sum(a.size for a in self.chunks))

    def sample(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """float32 [batch, 1, window] windows, uniformly over all channel-samples."""
        out = np.empty((batch, 1, self.window), dtype=np.float32)
        which = rng.choice(len(self.chunks), size=batch, p=self._p)
        for i, w in enumerate(which):
            a = self.chunks[w]
            ch = rng.integers(a.shape[0])
            off = rng.integers(a.shape[1] - self.window + 1)
            out[i, 0] = a[ch, off : off + self.window]
        return out if self.augment is None else self.augment(out, rng)

    def sample_channels(
        self, batch: int, n_channels: int, pick, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """Multi-channel windows: float32 [batch, n_channels, window] from chunks with at least
        ``n_channels`` rows (chosen in proportion to their length), rows chosen by
        ``pick(chunk_index, n_channels, rng) -> int64 [n_channels]``. Also returns
        (chunk index, rows) per window."""
        length = np.array(
            [a.shape[1] - self.window + 1 if a.shape[0] >= n_channels else 0 for a in self.chunks],
            dtype=np.float64,
        )
        if length.sum() == 0:
            raise EegcodecError(f"no training recording has {n_channels} coded channels")
        which = rng.choice(len(self.chunks), size=batch, p=length / length.sum())
        out = np.empty((batch, n_channels, self.window), dtype=np.float32)
        chosen = []
        for i, w in enumerate(which):
            rows = pick(int(w), n_channels, rng)
            off = rng.integers(self.chunks[w].shape[1] - self.window + 1)
            out[i] = self.chunks[w][rows, off : off + self.window]
            chosen.append((int(w), rows))
        return (out if self.augment is None else self.augment(out, rng)), chosen


#: packed windows are int8 in steps of this (codec input has a standard deviation of
#: ``target_std`` = 0.1, so the rounding error, 0.0023 rms, is 2.3 % of it)
PACK_STEP = 1 / 128


def pack_bank(bank: WindowBank, path: Path, budget_bytes: int) -> int:
    """Write ``bank``'s adapted chunks to ``path`` (.npz: int8 chunks in :data:`PACK_STEP`, channel
    names, sources), evenly thinned to fit ``budget_bytes``; returns the bytes written."""
    total = sum(a.size for a in bank.chunks)
    keep = np.arange(len(bank.chunks))
    if total > budget_bytes:  # every k-th chunk, so each recording stays represented where it can
        keep = keep[:: int(np.ceil(total / budget_bytes))]
    arrays = {
        f"c{j}": np.clip(np.round(np.asarray(bank.chunks[i]) / PACK_STEP), -127, 127).astype(np.int8)
        for j, i in enumerate(keep)
    }
    meta = {"names": [bank.names[i] for i in keep], "sources": [bank.sources[i] for i in keep]}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return path.stat().st_size


class PackedWindowBank(WindowBank):
    """A :class:`WindowBank` from a file of :func:`pack_bank` (no recording, no MNE read needed)."""

    def __init__(self, path: Path, hop: int, window: int):
        self.window = int(window) // hop * hop
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes())
            self.chunks = [z[f"c{i}"].astype(np.float32) * PACK_STEP for i in range(len(meta["names"]))]
        self.names, self.sources = meta["names"], meta["sources"]
        keep = [i for i, a in enumerate(self.chunks) if a.shape[1] >= self.window]
        if not keep:
            raise EegcodecError(f"{path}: no packed chunk is as long as the window ({self.window} samples)")
        self.chunks, self.names = [self.chunks[i] for i in keep], [self.names[i] for i in keep]
        self.sources = [self.sources[i] for i in keep]
        self._weigh()


AUDIO_SUFFIXES = (".wav", ".flac")


class AudioWindowBank(WindowBank):
    """Random windows of audio files (WAV/FLAC), for training an audio codec such as
    encoder A of :mod:`eegcodec.align`. Audio is already codec input: mono (channels
    averaged), resampled to ``cfg.model_rate``, no scaling (amplitudes in [-1, 1])."""

    def __init__(self, files: list[Path], cfg: AdapterConfig, hop: int, window: int, cache_dir: str = ""):
        from ..audio import read_audio

        self.window = int(window) // hop * hop
        if self.window <= 0:
            raise EegcodecError(f"window ({window} samples) is shorter than the hop ({hop})")
        self.chunks, self.sources, self.names = [], [], []
        for path in files:
            a = read_audio(path, cfg.model_rate)
            if a.size >= self.window:
                self.chunks.append(a[None])
                self.sources.append(path.name)
                self.names.append(["audio"])
        if not self.chunks:
            raise EegcodecError("no training windows: audio files shorter than the window")
        weights = np.array([a.shape[1] - self.window + 1 for a in self.chunks], dtype=np.float64)
        self._p = weights / weights.sum()


def window_bank(
    files: list[Path], cfg: AdapterConfig, hop: int, window: int, cache_dir: str = ""
) -> WindowBank:
    """An :class:`AudioWindowBank` when every file is audio, else a :class:`WindowBank` (EEG)."""
    if files and all(p.suffix.lower() in AUDIO_SUFFIXES for p in files):
        return AudioWindowBank(files, cfg, hop, window, cache_dir)
    return WindowBank(files, cfg, hop, window, cache_dir)
