"""Training windows: recordings -> exactly what the codec sees at compress time.

Each recording goes through the same survey and chunk adapter as
:func:`eegcodec.pipeline.compress_raw` (baseline removed, per-chunk scaling,
resampling to the model rate), so the model is trained on its real input. The
adapted chunks are cached as ``.npy`` files keyed by file, adapter settings and
hop, so only the first epoch reads EDF files.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..adapt import AdapterConfig, ChunkAdapter, ChunkLayout, robust_scale
from ..errors import EegcodecError
from ..io import read_raw
from ..survey import survey_recording


def expand_files(root: str, patterns: list[str]) -> list[Path]:
    """Sorted unique files matching ``patterns`` (relative ones under ``root``)."""
    files = []
    for pat in patterns:
        full = pat if os.path.isabs(pat) else os.path.join(os.path.expanduser(root), pat)
        matches = sorted(glob.glob(full))
        if not matches:
            raise EegcodecError(f"data pattern matched no file: {full}")
        files += [Path(m) for m in matches]
    return sorted(set(files))


def adapted_chunks(path: Path, cfg: AdapterConfig, hop: int) -> list[np.ndarray]:
    """Codec-domain chunks of one recording: list of float32 [C, T] (coded channels)."""
    raw = read_raw(path)
    survey = survey_recording(raw, cfg)
    if not survey.plan.coded:
        return []
    sfreq = raw.info["sfreq"]
    adapter = ChunkAdapter(cfg, sfreq, hop)
    out = []
    for start, stop in ChunkLayout.for_recording(raw.n_times, sfreq, cfg).chunks():
        x = raw.get_data(picks=survey.plan.coded, start=start, stop=stop)
        resid = np.nan_to_num(x - survey.baseline.values(start, stop))
        scale = robust_scale(resid, survey.noise).astype(np.float32).astype(np.float64)
        out.append(adapter.forward(resid, scale))
    return out


def _cache_key(path: Path, cfg: AdapterConfig, hop: int) -> str:
    st = path.stat()
    ident = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, cfg.to_dict(), hop], sort_keys=True)
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
    """

    def __init__(self, files: list[Path], cfg: AdapterConfig, hop: int, window: int, cache_dir: str = ""):
        self.window = int(window) // hop * hop
        if self.window <= 0:
            raise EegcodecError(f"window ({window} samples) is shorter than the hop ({hop})")
        self.chunks: list[np.ndarray] = []
        self.sources: list[str] = []
        cache = Path(os.path.expanduser(cache_dir)) if cache_dir else None
        for path in files:
            arrays = None
            if cache:
                cpath = cache / f"{path.stem}-{_cache_key(path, cfg, hop)}.npz"
                if cpath.exists():
                    with np.load(cpath) as z:
                        arrays = [z[k] for k in sorted(z.files, key=lambda s: int(s[1:]))]
            if arrays is None:
                arrays = adapted_chunks(path, cfg, hop)
                if cache:
                    cache.mkdir(parents=True, exist_ok=True)
                    tmp = cpath.with_suffix(f".{os.getpid()}.partial.npz")  # ranks may write at once
                    np.savez(tmp, **{f"c{i}": a for i, a in enumerate(arrays)})
                    os.replace(tmp, cpath)
            for a in arrays:
                if a.shape[1] >= self.window:
                    self.chunks.append(a)
                    self.sources.append(path.name)
        if not self.chunks:
            raise EegcodecError("no training windows: files too short for the window length, or no EEG channels")
        weights = np.array([a.shape[0] * (a.shape[1] - self.window + 1) for a in self.chunks], dtype=np.float64)
        self._p = weights / weights.sum()

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
        return out
