"""Embedded windows: every (pair, window) of a manifest through the frozen encoders, once.

Encoders A and B are frozen, so E_A and E_B are computed once per manifest and cached
(``ROOT/.eegcodec_cache/align-<key>.pt``, the key covering the manifest, its EEG files,
both encoders' weights, the depth and the windowing); every training run and ablation
then trains the mappers on tensors.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio import read_audio
from ..errors import EegcodecError
from .config import AlignConfig
from .encoders import AudioEncoder, EEGEncoder, FrameGrid, eeg_window
from .pairs import read_manifest, split_pairs, window_offsets


@dataclass
class AlignSet:
    """Windows of one manifest.

    Attributes
    ----------
    e_b : float32 [N, R*D_b, F_B + 2]: EEG windows with one context frame either side.
    e_a : float32 [M, D_a, F_A]: the distinct audio segments.
    segment : int64 [N]: each window's audio segment (row of ``e_a``).
    pair : int64 [N]: each window's manifest row.
    offset : float64 [N]: seconds into the stimulus.
    subjects, stimuli : per manifest row.
    splits : per manifest row (``train``/``val``/``test`` or None), from the recipe.
    """

    e_b: torch.Tensor
    e_a: torch.Tensor
    segment: torch.Tensor
    pair: torch.Tensor
    offset: np.ndarray
    subjects: list[str]
    stimuli: list[str]
    splits: list[str | None]

    def rows(self, split: str) -> torch.Tensor:
        """Window indices of one split."""
        keep = torch.tensor([self.splits[int(p)] == split for p in self.pair], dtype=torch.bool)
        return torch.nonzero(keep).flatten()

    def summary(self) -> dict:
        out = {}
        for s in ("train", "val", "test"):
            rows = self.rows(s)
            pairs = sorted({int(self.pair[i]) for i in rows})
            out[s] = {
                "windows": len(rows),
                "segments": len({int(self.segment[i]) for i in rows}),
                "subjects": sorted({self.subjects[p] for p in pairs}),
                "stimuli": len({self.stimuli[p] for p in pairs}),
            }
        return out


def _cache_key(manifest: Path, pairs, cfg: AlignConfig, enc_a: AudioEncoder, enc_b: EEGEncoder) -> str:
    files = sorted({str(p.eeg) for p in pairs} | {str(p.audio) for p in pairs})
    stats = [(f, Path(f).stat().st_size, Path(f).stat().st_mtime_ns) for f in files]
    ident = json.dumps(
        [
            manifest.read_text(),
            stats,
            enc_a.sha256,
            enc_b.sha256,
            enc_b.depth,
            cfg.data.window_seconds,
            cfg.data.step_seconds,
            "v1",
        ],
        sort_keys=True,
    )
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


def _read_eeg(path: Path):
    """(EEG-type data float64 [C, n] volts, sfreq, names) of a whole recording."""
    import mne

    from ..io import read_raw

    raw = read_raw(path, preload=True)
    picks = mne.pick_types(raw.info, eeg=True, exclude="bads")
    if len(picks) == 0:
        raise EegcodecError(f"{path} has no EEG channels")
    return raw.get_data(picks=picks), raw.info["sfreq"], [raw.ch_names[i] for i in picks]


def _cached(prefix: str, manifest_name: str, cfg: AlignConfig, enc_a: AudioEncoder, enc_b: EEGEncoder, build):
    """(``build(pairs, grid)``'s dict, pairs) of ``cfg.data.root/manifest_name``, cached as
    ``ROOT/.eegcodec_cache/<prefix>-<key>.pt`` (written atomically)."""
    root = Path(cfg.data.root).expanduser()
    manifest = root / manifest_name
    pairs = read_manifest(manifest)
    cache = root / ".eegcodec_cache" / f"{prefix}-{_cache_key(manifest, pairs, cfg, enc_a, enc_b)}.pt"
    if cache.exists():
        return torch.load(cache, map_location="cpu", weights_only=False), pairs
    blob = build(pairs, FrameGrid(cfg.data.window_seconds, enc_b.frame_seconds, enc_a.frame_seconds))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".partial")
    torch.save(blob, tmp)
    tmp.replace(cache)
    return blob, pairs


def embed_manifest(
    manifest_name: str, cfg: AlignConfig, enc_a: AudioEncoder, enc_b: EEGEncoder, show_progress: bool = True
) -> AlignSet:
    """Embed every window of ``cfg.data.root/manifest_name`` (cached); splits from ``cfg.data``."""
    blob, pairs = _cached(
        "align",
        manifest_name,
        cfg,
        enc_a,
        enc_b,
        lambda pairs, grid: _embed(pairs, cfg, grid, enc_a, enc_b, show_progress),
    )
    enc_b.rows = blob["rows"]
    return AlignSet(
        blob["e_b"],
        blob["e_a"],
        blob["segment"],
        blob["pair"],
        blob["offset"],
        [p.subject for p in pairs],
        [p.stimulus for p in pairs],
        split_pairs(pairs, cfg.data),
    )


def _windows(
    pairs, cfg: AlignConfig, grid: FrameGrid, enc_a: AudioEncoder, enc_b: EEGEncoder, show_progress: bool
):
    """Every window of ``pairs`` in a fixed order: yields (pair row, offset s, segment key,
    E_A segment float32 [D_a, F_A], codec-domain EEG float32 [C, T] with one context frame
    either side, channel names)."""
    from tqdm import tqdm

    w, ctx = cfg.data.window_seconds, grid.context_seconds
    audio_cache: dict[Path, torch.Tensor] = {}
    by_file: dict[Path, list[int]] = {}
    for i, p in enumerate(pairs):
        by_file.setdefault(p.eeg, []).append(i)
    # a log file (not a terminal) gets one line a minute
    with tqdm(
        total=len(pairs),
        desc="embedding pairs",
        unit="pair",
        disable=not show_progress,
        mininterval=0.1 if sys.stderr.isatty() else 60.0,
    ) as progress:
        for eeg_path, rows in by_file.items():
            data, sfreq, names = _read_eeg(eeg_path)
            for i in rows:
                p = pairs[i]
                if p.audio not in audio_cache:
                    audio_cache[p.audio] = enc_a.embed(read_audio(p.audio, enc_a.rate))
                full_a = audio_cache[p.audio]
                duration = p.duration if p.duration is not None else full_a.shape[-1] * enc_a.frame_seconds
                for off in window_offsets(duration, w, cfg.data.step_seconds):
                    f0 = int(round(off / grid.audio_frame_seconds))
                    if f0 + grid.audio_frames > full_a.shape[-1]:
                        break
                    x = enc_b.codec_input(
                        eeg_window(data, sfreq, p.onset + off - ctx, w + 2 * ctx), sfreq, names
                    )
                    yield i, off, (p.stimulus, float(off)), full_a[:, f0 : f0 + grid.audio_frames], x, names
                progress.update(1)


def _embed_b(enc_b: EEGEncoder, grid: FrameGrid, x, names) -> torch.Tensor:
    """E_B of one EEG window (its frame count checked against the grid)."""
    e = enc_b.embed(x, names)
    if e.shape[-1] != grid.eeg_frames + 2:
        raise EegcodecError(f"EEG window gave {e.shape[-1]} frames, expected {grid.eeg_frames + 2}")
    return e


def _embed(
    pairs, cfg: AlignConfig, grid: FrameGrid, enc_a: AudioEncoder, enc_b: EEGEncoder, show_progress: bool
) -> dict:
    from ..threads import CoreThreads

    segments: dict[tuple[str, float], int] = {}
    e_a, e_b, seg, pair_idx, offsets = [], [], [], [], []

    def embed(i, off, key, seg_a, x, names):
        return i, off, key, seg_a, _embed_b(enc_b, grid, x, names)

    # the windows are independent: embedded a few at once by the codec's chunk workers, each on
    # one torch thread (Codec.map_chunks), one per usable core, so that a busy core costs CPU
    # time and no worker waits for another (one window on two OpenMP threads stalled beside a
    # busy core); the audio is embedded in this thread meanwhile
    with CoreThreads(load=False):
        windows = _windows(pairs, cfg, grid, enc_a, enc_b, show_progress)
        for i, off, key, seg_a, e in enc_b.codec.map_chunks(embed, windows):
            if key not in segments:
                segments[key] = len(e_a)
                e_a.append(seg_a)
            e_b.append(e)
            seg.append(segments[key])
            pair_idx.append(i)
            offsets.append(off)
    if not e_b:
        raise EegcodecError(f"no window of {cfg.data.window_seconds} s fits in any pair (stimuli too short?)")
    return {
        "e_b": torch.stack(e_b),
        "e_a": torch.stack(e_a),
        "segment": torch.tensor(seg),
        "pair": torch.tensor(pair_idx),
        "offset": np.array(offsets),
        "rows": enc_b.rows,
    }


@dataclass
class WindowInputs:
    """Encoder B's inputs of the windows of an :class:`AlignSet` (same order), for fine-tuning.

    Attributes
    ----------
    x : per window float16 [C, T]: codec-domain EEG with one context frame either side.
    group : int64 [N]: windows with equal channel lists share a group (one batch holds one group).
    names : per group, its channel names.
    """

    x: list[torch.Tensor]
    group: torch.Tensor
    names: list[tuple[str, ...]]


def window_inputs(
    manifest_name: str, cfg: AlignConfig, enc_a: AudioEncoder, enc_b: EEGEncoder, show_progress: bool = True
) -> WindowInputs:
    """Encoder B's inputs of every window of ``cfg.data.root/manifest_name`` (cached beside
    the embeddings), in :func:`embed_manifest`'s order."""

    def build(pairs, grid) -> dict:
        xs, group, names = [], [], {}
        for *_, x, ch in _windows(pairs, cfg, grid, enc_a, enc_b, show_progress):
            xs.append(torch.from_numpy(x).half())
            group.append(names.setdefault(tuple(ch), len(names)))
        return {"x": xs, "group": torch.tensor(group), "names": list(names)}

    return WindowInputs(**_cached("inputs", manifest_name, cfg, enc_a, enc_b, build)[0])
