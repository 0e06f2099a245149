"""Recordings from devices whose exports MNE does not read: OpenBCI GUI text files and Muse CSV
files (Mind Monitor and muselsl), recognised by their first lines.

Stage 1 of the data path, beside :func:`eegcodec.io.read_raw` (which calls :func:`read_device`
for ``.txt`` and ``.csv`` inputs). Each reader returns an :class:`mne.io.RawArray` in volts:

- **OpenBCI GUI** (``OpenBCI-RAW-*.txt``; ``%``-comment header with ``Number of channels`` and
  ``Sample Rate``; GUI 5 and later add a ``Sample Index, EXG Channel 0, ...`` column row): the
  ``EXG Channel`` columns as EEG (microvolts in the file), ``Accel Channel`` columns as ``misc``
  (g); the sample index, the other columns and the timestamps are not kept, except the first
  ``Timestamp`` (Unix seconds), which becomes the measurement date.
- **Muse**: Mind Monitor exports (``TimeStamp, ..., RAW_TP9, RAW_AF7, RAW_AF8, RAW_TP10, ...``;
  rows without raw samples, such as its ``Elements`` event rows, are skipped) and muselsl
  recordings (``timestamps, TP9, AF7, AF8, TP10, Right AUX``): the four EEG channels (and the AUX
  channel where present), microvolts in the file. The rate is the nominal 256 Hz when the
  timestamps agree with it within 2 %, else the rate the timestamps give (an error where they are
  irregular).

The values keep their decimals: a text file's two-decimal microvolts lie on a grid of 0.01 uV,
which :func:`eegcodec.format.exact.find_grid` finds, so ``--lossless`` stores those integers.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from pathlib import Path

import mne
import numpy as np

from .errors import EegcodecError, UnsupportedFormatError

MUSE_RATE = 256.0
_MUSE_EEG = ("TP9", "AF7", "AF8", "TP10")
_SNIFF_BYTES = 8192


def sniff(path: Path) -> str | None:
    """``"openbci"``, ``"mind-monitor"``, ``"muselsl"`` or None, from the file's first lines."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    first = head.lstrip("\ufeff").splitlines()[:1]
    if head.lstrip("\ufeff").startswith("%OpenBCI"):
        return "openbci"
    columns = [c.strip() for c in first[0].split(",")] if first else []
    if all(f"RAW_{name}" in columns for name in _MUSE_EEG):
        return "mind-monitor"
    if columns and columns[0].lower() == "timestamps" and all(name in columns for name in _MUSE_EEG):
        return "muselsl"
    return None


def read_device(path: str | Path) -> mne.io.RawArray:
    """The recording in ``path`` (an OpenBCI GUI ``.txt`` or a Muse ``.csv``) as volts; a file
    of neither kind is an :class:`~eegcodec.errors.UnsupportedFormatError`, a damaged one an
    :class:`~eegcodec.errors.EegcodecError`, each naming it."""
    path = Path(path)
    kind = sniff(path)
    if kind is None:
        raise UnsupportedFormatError(
            f"cannot read {path}: not an EEG format eegcodec reads (a .txt or .csv must be an OpenBCI GUI "
            "recording, first line '%OpenBCI ...', or a Muse CSV: Mind Monitor's RAW_TP9 ... columns, or "
            "muselsl's timestamps,TP9,AF7,AF8,TP10)"
        )
    try:
        return _openbci(path) if kind == "openbci" else _muse(path, kind)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise EegcodecError(
            f"cannot read {path} as a {kind} file: {str(exc).splitlines()[0][:200]}"
        ) from None


def _openbci(path: Path) -> mne.io.RawArray:
    meta, columns, rows = {}, None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("%"):
                key, _, value = line[1:].partition("=")
                meta[key.strip().lower()] = value.strip()
            elif line.strip():
                fields = [v.strip() for v in line.split(",")]
                if columns is None and not _is_number(fields[0]):
                    columns = fields
                else:
                    rows.append(fields)
    n_exg = int(meta.get("number of channels", "0") or 0)
    rate = re.match(r"[0-9.]+", meta.get("sample rate", ""))
    if not rate or not rows:
        raise ValueError("the header gives no 'Sample Rate', or the file holds no samples")
    columns = columns or _openbci_v3_columns(n_exg, len(rows[0]))
    keep = [i for i, c in enumerate(columns) if c.startswith(("EXG Channel", "Accel Channel"))]
    if not any(columns[i].startswith("EXG Channel") for i in keep):
        raise ValueError("no 'EXG Channel' columns")
    data = np.array([[float(r[i]) for i in keep] for r in rows]).T
    eeg = np.array([columns[i].startswith("EXG") for i in keep])
    data[eeg] *= 1e-6  # microvolts in the file
    info = mne.create_info(
        [columns[i] for i in keep], float(rate.group()), ["eeg" if e else "misc" for e in eeg]
    )
    raw = mne.io.RawArray(data, info, verbose="error")
    stamp = columns.index("Timestamp") if "Timestamp" in columns else None
    if stamp is not None and _is_number(rows[0][stamp]):
        raw.set_meas_date(datetime.fromtimestamp(float(rows[0][stamp]), tz=timezone.utc))
    return raw


def _openbci_v3_columns(n_exg: int, width: int) -> list[str]:
    """Column names of a GUI 3/4 file (no column row): index, EXG channels, 3 accelerometer axes."""
    if n_exg < 1 or width < 1 + n_exg:
        raise ValueError("'Number of channels' does not fit the rows")
    names = ["Sample Index"] + [f"EXG Channel {i}" for i in range(n_exg)]
    names += [f"Accel Channel {i}" for i in range(min(3, width - len(names)))]
    return names + ["Other"] * (width - len(names))


def _muse(path: Path, kind: str) -> mne.io.RawArray:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f)
        columns = [c.strip().lstrip("\ufeff") for c in next(reader)]
        prefix = "RAW_" if kind == "mind-monitor" else ""
        picks = [columns.index(prefix + n) for n in _MUSE_EEG]
        picks += [
            i for i, c in enumerate(columns) if c.upper().startswith("AUX") or "AUX" in c.upper().split()
        ]
        names = [columns[i][len(prefix) :] if i in picks[:4] else columns[i] for i in picks]
        rows = [r for r in reader if len(r) > max(picks) and all(r[i].strip() for i in picks)]
        times = [r[0] for r in rows]
    if len(rows) < 2:
        raise ValueError("fewer than two rows with raw samples")
    data = np.array([[float(r[i]) for i in picks] for r in rows]).T * 1e-6
    sfreq, start = _muse_rate(times, kind)
    types = ["eeg"] * 4 + ["misc"] * (len(names) - 4)
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, types), verbose="error")
    raw.set_meas_date(start)
    return raw


def _muse_rate(times: list[str], kind: str) -> tuple[float, datetime]:
    """(sampling rate in Hz, first sample's time) from the rows' timestamps."""
    if kind == "muselsl":
        seconds = np.array([float(t) for t in times])
    else:  # Mind Monitor: "2021-03-04 12:34:56.789", local time without a zone: taken as UTC
        stamps = [datetime.fromisoformat(t.strip()).replace(tzinfo=timezone.utc) for t in times]
        seconds = np.array([s.timestamp() for s in stamps])
    span = seconds[-1] - seconds[0]
    rate = (len(seconds) - 1) / span if span > 0 else 0.0
    if abs(rate / MUSE_RATE - 1) <= 0.02:
        rate = MUSE_RATE
    elif rate <= 0 or np.std(np.diff(seconds)) > 0.5 / rate:
        raise ValueError(
            f"the timestamps are irregular ({rate:.1f} rows/s on average): export at a constant rate"
        )
    return rate, datetime.fromtimestamp(seconds[0], tz=timezone.utc)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
