"""Read recordings with MNE and write them back, atomically.

Stage 1 and 5 of the data path (read ... write). Every format MNE reads is
accepted on input, and XDF through pyxdf; output format is chosen by the extension.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import mne
import numpy as np

from . import edf
from .devices import read_device
from .errors import EegcodecError, OutputExistsError, UnsupportedFormatError
from .xdf import read_xdf

#: Extensions read through :func:`mne.io.read_raw` (lower case, with dot).
READ_EXTENSIONS = (
    ".edf",
    ".edf+",
    ".bdf",
    ".fif",
    ".fif.gz",
    ".vhdr",
    ".set",
    ".gdf",
    ".cnt",
    ".mff",
    ".nxe",
    ".lay",
    ".eeg",
    ".data",
    ".cdt",
    ".xdf",
    ".txt",  # OpenBCI GUI recordings (eegcodec.devices)
    ".csv",  # Muse recordings: Mind Monitor, muselsl (eegcodec.devices)
)
#: Endings taken when a folder is searched: one file per recording (a BrainVision folder
#: gives its .vhdr, not its .eeg data file). Any READ_EXTENSIONS file can still be named.
FOLDER_SUFFIXES = (".edf", ".bdf", ".fif", ".fif.gz", ".vhdr", ".set", ".gdf", ".cnt", ".mff", ".nxe", ".xdf")
#: Output extension -> format name for :func:`mne.export.export_raw` ("fif" uses Raw.save).
WRITE_FORMATS = {".edf": "edf", ".bdf": "bdf", ".fif": "fif", ".vhdr": "brainvision", ".set": "eeglab"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def find_recordings(paths, suffixes: tuple[str, ...] = FOLDER_SUFFIXES) -> list[Path]:
    """Files named, plus files ending in ``suffixes`` inside named folders (recursively, sorted)."""
    return [src for src, _ in find_inputs(paths, suffixes)]


def find_inputs(paths, suffixes: tuple[str, ...] = FOLDER_SUFFIXES) -> list[tuple[Path, Path]]:
    """``(file, path relative to the folder named)`` for each file to process: a named file is
    ``(file, its name)``; a named folder gives its files ending in ``suffixes``, recursively,
    sorted, so that outputs can mirror the input tree. A missing path is an error."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.name.lower().endswith(suffixes) and not _hidden(f, p)
            )
            if not found:
                raise EegcodecError(f"no {'/'.join(suffixes)} files in folder {p}")
            out += [(f, f.relative_to(p)) for f in found]
        elif p.exists():
            out.append((p, Path(p.name)))
        else:
            raise EegcodecError(f"input not found: {p}")
    return out


#: files of a folder (BIDS sidecars and dataset files) that travel beside its recordings
SIDECAR_SUFFIXES = (".json", ".tsv", ".tsv.gz")
SIDECAR_NAMES = ("README", "README.md", "README.txt", "CHANGES", "LICENSE", ".bidsignore")


def find_sidecars(folder: Path) -> list[tuple[Path, Path]]:
    """``(file, path relative to folder)`` of the BIDS sidecars (``.json``, ``.tsv``) and dataset
    files (README, CHANGES, LICENSE) in ``folder``, recursively: what ``compress`` and
    ``decompress`` copy beside their outputs so that a BIDS dataset stays one."""
    return [
        (f, f.relative_to(folder))
        for f in sorted(folder.rglob("*"))
        if f.is_file()
        and not _hidden(f, folder)
        and (f.name.lower().endswith(SIDECAR_SUFFIXES) or f.name in SIDECAR_NAMES)
    ]


def _hidden(f: Path, root: Path) -> bool:
    """Temporary files of an interrupted write (``.NAME.*``) and hidden folders are skipped."""
    return any(part.startswith(".") and part != ".bidsignore" for part in f.relative_to(root).parts)


def check_output(path: Path, inputs: list[Path], force: bool) -> None:
    """Refuse to write ``path`` if it is one of ``inputs`` (even with ``force``), or exists
    and ``force`` is false. Called before any work, so nothing is read or decoded in vain."""
    for src in inputs:
        if path.exists() and src.exists() and os.path.samefile(path, src) or path.resolve() == src.resolve():
            raise EegcodecError(f"output {path} is the input file; choose another output name")
    if path.exists() and not force:
        raise OutputExistsError(path)
    if path.is_dir():
        raise EegcodecError(f"output {path} is a folder")


def output_format(path: Path) -> str:
    """The writer for ``path``'s extension; an unsupported extension is an error (before any work)."""
    ext = _suffix(path)
    if ext not in WRITE_FORMATS:
        raise UnsupportedFormatError(
            f"cannot write {path.name!r}: choose an output extension among {', '.join(WRITE_FORMATS)}"
        )
    return WRITE_FORMATS[ext]


def read_raw(path: str | os.PathLike, preload: bool = False) -> mne.io.BaseRaw:
    """Open any recording MNE can read, without loading its samples by default.

    Parameters
    ----------
    path : path to an EDF/EDF+, BDF, FIF, BrainVision (.vhdr), EEGLAB (.set), XDF
        (:func:`eegcodec.xdf.read_xdf`, loaded whole), OpenBCI GUI ``.txt`` or Muse ``.csv``
        (:func:`eegcodec.devices.read_device`, loaded whole) or other MNE-readable file. An
        EDF/BDF header is checked first (:func:`eegcodec.edf.edf_problem`); BrainVision ``Comment`` markers
        keep their own text (not ``Comment/TEXT``); an EEGLAB file's ``etc.T0`` gives its
        measurement date.
    preload : load all samples now (``False`` keeps memory flat: samples are read
        chunk by chunk with ``raw.get_data(start=..., stop=...)``).

    Raises
    ------
    EegcodecError : the file does not exist, has an unsupported extension, or cannot be
        parsed (the message names the file and what is wrong: the header field, or MNE's reason).
    """
    path = Path(path)
    if not path.exists():
        raise EegcodecError(f"input file not found: {path}")
    if path.is_dir():
        raise EegcodecError(f"expected a recording file, got a folder: {path}")
    if _suffix(path) == ".eegc":
        raise UnsupportedFormatError(f"{path} is already an .eegc archive; use 'eegcodec decompress'")
    if _suffix(path) not in READ_EXTENSIONS:
        raise UnsupportedFormatError(
            f"cannot read {path.name!r}: extension {path.suffix or '(none)'!r} is not an EEG format MNE "
            f"reads "
            f"(supported: {', '.join(READ_EXTENSIONS)})"
        )
    if _suffix(path) in (".edf", ".edf+", ".bdf"):
        problem = edf.edf_problem(path)
        if problem:
            raise EegcodecError(f"cannot read {path}: {problem}")
    if _suffix(path) == ".xdf":
        return read_xdf(path)
    if _suffix(path) in (".txt", ".csv"):
        return read_device(path)
    try:
        raw = mne.io.read_raw(path, preload=preload, verbose="error")
    except Exception as exc:  # MNE raises many types; users need one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EegcodecError(f"cannot read {path}: {msg}") from exc
    if _suffix(path) == ".vhdr":
        _comments_as_written(raw)
    if _suffix(path) == ".set" and raw.info["meas_date"] is None:
        _eeglab_date(path, raw)
    return raw


def _eeglab_date(path: Path, raw: mne.io.BaseRaw) -> None:
    """Set ``raw``'s measurement date from the EEGLAB file's ``etc.T0`` (``[year month day hour
    minute seconds]``, UTC; where EEGLAB's BIOSIG import keeps it and :func:`write_raw` writes
    it), which MNE's reader leaves unread. Files without it (or MATLAB 7.3 files) keep none."""
    import scipy.io  # only EEGLAB files need it

    try:
        etc = scipy.io.loadmat(path, variable_names=["etc"], squeeze_me=True, struct_as_record=False)
        y, mo, d, h, mi, sec = (float(v) for v in np.ravel(etc["etc"].T0))
        date = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), tzinfo=dt.timezone.utc)
        raw.set_meas_date(date + dt.timedelta(seconds=round(sec, 6)))
    except Exception:  # no etc.T0, or not a readable date: the file simply has none
        return


def _append_eeglab_date(path: Path, meas_date: dt.datetime) -> None:
    """Add ``etc.T0`` (the measurement date, UTC, as EEGLAB's BIOSIG import stores it) to the
    MATLAB 5 file eeglabio wrote at ``path``: one more top-level variable at its end."""
    import scipy.io  # only EEGLAB files need it

    d = meas_date.astimezone(dt.timezone.utc)
    t0 = np.array([[d.year, d.month, d.day, d.hour, d.minute, d.second + d.microsecond / 1e6]])
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"etc": {"T0": t0}})
    with open(path, "ab") as f:
        f.write(buf.getvalue()[128:])  # its data element, without the 128-byte file header


_MARKER = re.compile(r"(Stimulus/S|Response/R) *(\d+)")


def _comments_as_written(raw: mne.io.BaseRaw) -> None:
    """BrainVision markers of type ``Comment`` come back as their own description: MNE reads a
    marker as ``TYPE/DESCRIPTION``, and a comment's type is no part of what was annotated
    (:func:`_write_markers` writes every annotation but pybv-style stimuli and responses as one)."""
    names = {d: d[len("Comment/") :] for d in set(raw.annotations.description) if d.startswith("Comment/")}
    if any(names.values()):
        raw.annotations.rename({k: v for k, v in names.items() if v}, verbose="error")


def _write_markers(vmrk: Path, raw: mne.io.BaseRaw, ann: mne.Annotations) -> None:
    """Append ``ann`` to the BrainVision marker file ``vmrk`` (written by pybv without them) so that
    :func:`read_raw` gives the same descriptions back: ``Stimulus/S  1``-style descriptions (numbers
    as pybv pads them) become stimulus and response markers, any other description the text of a
    ``Comment`` marker, whole (``T0`` -> ``Comment,T0``; ``Comment/x`` -> ``Comment,Comment/x``),
    commas coded as ``\\1``. Positions as :func:`mne.export.export_raw` writes them."""
    found = [_MARKER.fullmatch(d) for d in ann.description]
    numbers = [int(m.group(2)) for m in found if m]
    width = max(3, int(np.ceil(np.log10(max([1, *numbers])))))  # pybv's width for all markers
    text = vmrk.read_text(encoding="utf-8").rstrip("\n").split("\n")
    number = sum(line.startswith("Mk") for line in text)
    sfreq = raw.info["sfreq"]
    for m, a in zip(found, ann):
        desc = a["description"]
        if m is not None and desc == f"{m.group(1)}{int(m.group(2)):>{width}}":
            kind, desc = desc.split("/", 1)
        else:
            kind, desc = "Comment", desc.replace(",", r"\1")
        onset = int(raw.time_as_index(a["onset"] - raw.first_time)[0]) + 1  # 1-based
        channels = [raw.ch_names.index(c) + 1 for c in a.get("ch_names", ()) if c in raw.ch_names] or [0]
        for ch in channels:
            number += 1
            text.append(f"Mk{number}={kind},{desc},{onset},{int(a['duration'] * sfreq)},{ch}")
    vmrk.write_text("\n".join(text) + "\n", encoding="utf-8")


def load_crop(path: str | os.PathLike, crop_seconds: float | None) -> mne.io.BaseRaw:
    """The recording, preloaded, cropped to its first ``crop_seconds`` (all of it if None)."""
    raw = read_raw(path, preload=True)
    if crop_seconds and crop_seconds < raw.times[-1]:
        raw.crop(0, crop_seconds, include_tmax=False)
    return raw


def write_raw(
    raw: mne.io.BaseRaw,
    path: str | os.PathLike,
    overwrite: bool = True,
    edf_ranges: dict | None = None,
    exact: bool = False,
    slack: dict[str, float] | None = None,
) -> Path:
    """Write ``raw`` to ``path`` in the format its extension names, atomically.

    ``.edf``/``.bdf``/``.vhdr``/``.set`` go through :func:`mne.export.export_raw`,
    ``.fif`` through :meth:`mne.io.Raw.save`. The file (for BrainVision: the
    ``.vhdr``, ``.vmrk`` and ``.eeg`` trio) is first written in a temporary folder
    beside the target and moved into place only when complete, so a failure never
    leaves a partial output. EDF/BDF keep the exact sample count (:func:`eegcodec.edf.exact_records`);
    NaN samples cannot be written to EDF/BDF and are an error that names FIF instead.
    ``edf_ranges`` (:func:`eegcodec.edf.edf_ranges` of the source, for a lossless file): EDF/BDF channels get
    the source's physical and digital ranges back, so they hold the source's integers.
    ``exact`` (lossless and max-error files): FIF samples as float64 rather than MNE's default float32.
    ``slack`` (a max-error file): ``{channel name: volts}``, how far the written samples of those
    channels may move from ``raw``'s (what the file's bound leaves for the format's rounding).
    EDF/BDF channels then get a range of their own (the source's where the samples lie on its
    grid, else one just around the samples at full depth), and the written file is read back
    and refused, with a one-line reason naming ``.fif``, where a channel moved further.
    """
    path = Path(path)
    fmt = output_format(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    if fmt in ("edf", "bdf"):
        _refuse_nan(raw, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tmp = tmpdir / path.name
        _write_as(tmp, raw, fmt, exact)
        if fmt in ("edf", "bdf"):
            edf.exact_records(tmp, raw.n_times, raw.info["sfreq"], fmt)
            if edf_ranges or slack:
                edf.rescale_edf(tmp, raw, edf_ranges, fmt, bounded=slack is not None)
        if slack and fmt != "fif":  # FIF holds float64 (exact): nothing moved
            edf.check_moved(tmp, raw, slack, path, edf.source_limits(raw, edf_ranges))
        # Move companions first (BrainVision .vmrk/.eeg; EEGLAB .fdt) and the named file last.
        for produced in sorted(tmpdir.iterdir(), key=lambda p: p.name == path.name):
            os.replace(produced, path.parent / produced.name)
    except EegcodecError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EegcodecError(f"cannot write {path}: {msg}") from exc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def _write_as(tmp: Path, raw: mne.io.BaseRaw, fmt: str, exact: bool) -> None:
    """``raw`` written to ``tmp`` by MNE (FIF: float64 samples if ``exact``); BrainVision markers
    by :func:`_write_markers`."""
    if fmt == "fif":
        raw.save(tmp, overwrite=True, fmt="double" if exact else "single", verbose="error")
    elif fmt == "brainvision" and len(raw.annotations):
        kept = raw.annotations
        raw.set_annotations(None)
        try:
            mne.export.export_raw(tmp, raw, fmt=fmt, overwrite=True, verbose="error")
        finally:
            raw.set_annotations(kept, emit_warning=False)
        _write_markers(tmp.with_suffix(".vmrk"), raw, kept)
    else:
        mne.export.export_raw(tmp, raw, fmt=fmt, overwrite=True, verbose="error")
        if fmt == "eeglab" and raw.info["meas_date"] is not None:
            _append_eeglab_date(tmp, raw.info["meas_date"])
            warnings.warn(
                f"{tmp.name}: MNE's EEGLAB reader ignores the measurement date; it is kept in "
                "EEG.etc.T0 (as EEGLAB's BIOSIG import keeps it), which eegcodec reads back",
                stacklevel=4,
            )


def _refuse_nan(raw: mne.io.BaseRaw, path: Path) -> None:
    rows = []
    for first in range(0, len(raw.ch_names), 8):  # 8 channels at a time: no copy of the whole recording
        block = raw.get_data(picks=range(first, min(first + 8, len(raw.ch_names))))
        rows += [first + i for i in np.flatnonzero(np.isnan(block).any(axis=1))]
    rows = np.array(rows, dtype=int)
    if rows.size:
        names = ", ".join(raw.ch_names[i] for i in rows[:3]) + (" ..." if rows.size > 3 else "")
        raise EegcodecError(
            f"cannot write {path.name}: the recording holds NaN samples (channels {names}), which "
            f"{path.suffix[1:].upper()} cannot store; write .fif instead, which keeps them"
        )


#: the process's file-creation mask, read once (reading it means setting it, which another thread
#: creating a file at that moment would see)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
