"""Paired EEG + audio: a manifest of (EEG recording, audio stimulus, onset) rows, their
train/val/test splits, and time-locked windows.

Manifest (CSV, TSV or JSON list of objects); paths relative to the manifest's folder:

=========  ========  ==========================================================
column     needed    meaning
=========  ========  ==========================================================
eeg        yes       EEG recording, any MNE-readable format
audio      yes       the stimulus, WAV or FLAC
onset      yes       seconds from the recording's first sample to the stimulus start
duration   no        seconds of the stimulus used (default: the audio's length)
subject    no        default: the EEG file's stem
stimulus   no        default: the audio file's stem
=========  ========  ==========================================================

Datasets such as NMED-T (music, 20 subjects x 10 songs of ~4.5 min, EEG at 125 Hz with
trigger-aligned epochs) or NMED-H (Hindi pop songs, intact/shuffled) map onto one row per
(subject, song) with the song's onset in the continuous recording; when a dataset ships
epoched arrays (e.g. ``.mat``), write each epoch as FIF with ``mne.io.RawArray`` and give
onset 0. A window at ``offset`` pairs EEG ``[onset+offset, onset+offset+W)`` with audio
``[offset, offset+W)`` (plus one EEG frame of context either side, see
:mod:`eegcodec.align.encoders`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EegcodecError
from .config import PairsConfig

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Pair:
    eeg: Path
    audio: Path
    onset: float
    duration: float | None
    subject: str
    stimulus: str


def read_manifest(path: str | Path) -> list[Pair]:
    """The rows of a pairs manifest (see the module docstring); missing files are an error."""
    path = Path(path)
    if not path.is_file():
        raise EegcodecError(f"pairs manifest not found: {path}")
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            raise EegcodecError(f"{path}: a JSON manifest is a list of objects")
    elif path.suffix in (".csv", ".tsv"):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ","))
    else:
        raise EegcodecError(f"pairs manifest must be .csv, .tsv or .json, got {path.name}")
    pairs = []
    for i, r in enumerate(rows, start=2):
        missing = [k for k in ("eeg", "audio", "onset") if not str(r.get(k, "")).strip()]
        if missing:
            raise EegcodecError(f"{path} row {i}: missing {', '.join(missing)} (needs eeg, audio, onset)")
        eeg, audio = (path.parent / str(r["eeg"]).strip(), path.parent / str(r["audio"]).strip())
        for p in (eeg, audio):
            if not p.exists():
                raise EegcodecError(f"{path} row {i}: file not found: {p}")
        try:
            onset = float(r["onset"])
            duration = float(r["duration"]) if str(r.get("duration") or "").strip() else None
        except ValueError as exc:
            raise EegcodecError(f"{path} row {i}: onset/duration must be numbers ({exc})") from exc
        pairs.append(
            Pair(
                eeg,
                audio,
                onset,
                duration,
                str(r.get("subject") or "").strip() or eeg.stem,
                str(r.get("stimulus") or "").strip() or audio.stem,
            )
        )
    if not pairs:
        raise EegcodecError(f"pairs manifest {path} has no rows")
    return pairs


def _assign(names: list[str], test: list[str], val: list[str], cfg: PairsConfig, salt: int) -> dict[str, str]:
    """name -> split: named ones first, then fractions of the rest drawn with the seed."""
    names = sorted(set(names))
    unknown = sorted(set(test + val) - set(names))
    if unknown:
        raise EegcodecError(f"split names not in the manifest: {unknown}")
    out = {n: "test" for n in test} | {n: "val" for n in val}
    rest = [n for n in names if n not in out]
    rest = list(np.random.default_rng([cfg.seed, salt]).permutation(rest))
    n_test = 0 if test else max(1, int(round(cfg.test_fraction * len(names))))
    n_val = 0 if val else max(1, int(round(cfg.val_fraction * len(names))))
    if n_test + n_val >= len(rest):
        raise EegcodecError(f"too few ({len(names)}) to split into train/val/test: {names}")
    for i, n in enumerate(rest):
        out[n] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def split_pairs(pairs: list[Pair], cfg: PairsConfig) -> list[str | None]:
    """Each pair's split (``train``/``val``/``test``, or None: left out). See :class:`PairsConfig`."""
    if cfg.split_by not in ("subject", "stimulus", "both"):
        raise EegcodecError(f"data.split_by must be subject, stimulus or both, got {cfg.split_by!r}")
    by_subject = (
        _assign([p.subject for p in pairs], cfg.test_subjects, cfg.val_subjects, cfg, 1)
        if cfg.split_by != "stimulus"
        else None
    )
    by_stimulus = _assign([p.stimulus for p in pairs], [], [], cfg, 2) if cfg.split_by != "subject" else None
    out = []
    for p in pairs:
        a = by_subject[p.subject] if by_subject else None
        b = by_stimulus[p.stimulus] if by_stimulus else None
        out.append(a if b is None else b if a is None else a if a == b else None)
    return out


def window_offsets(duration: float, window: float, step: float) -> np.ndarray:
    """Window starts (seconds into the stimulus) of length ``window`` every ``step`` seconds."""
    if duration < window:
        return np.zeros(0)
    n = int(np.floor((duration - window) / step + 1e-9)) + 1
    return np.round(np.arange(n) * step, 6)
