"""Read recordings with MNE and write them back, atomically.

Stage 1 and 5 of the data path (read ... write). Every format MNE reads is
accepted on input; output format is chosen by the extension.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mne

from .errors import EegcodecError, UnsupportedFormatError

#: Extensions read through :func:`mne.io.read_raw` (lower case, with dot).
READ_EXTENSIONS = (".edf", ".edf+", ".bdf", ".fif", ".fif.gz", ".vhdr", ".set", ".gdf", ".cnt", ".mff", ".nxe", ".lay", ".eeg", ".data", ".cdt", ".xdf")
#: Endings taken when a folder is searched: one file per recording (a BrainVision folder
#: gives its .vhdr, not its .eeg data file). Any READ_EXTENSIONS file can still be named.
FOLDER_SUFFIXES = (".edf", ".bdf", ".fif", ".fif.gz", ".vhdr", ".set", ".gdf", ".cnt", ".mff", ".nxe")
#: Output extension -> format name for :func:`mne.export.export_raw` ("fif" uses Raw.save).
WRITE_FORMATS = {".edf": "edf", ".bdf": "bdf", ".fif": "fif", ".vhdr": "brainvision", ".set": "eeglab"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def find_recordings(paths, suffixes: tuple[str, ...] = FOLDER_SUFFIXES) -> list[Path]:
    """Files named, plus files ending in ``suffixes`` inside named folders (recursively, sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(suffixes))
            if not found:
                raise EegcodecError(f"no {'/'.join(suffixes)} files in folder {p}")
            out += found
        else:
            out.append(p)
    return out


def read_raw(path: str | os.PathLike, preload: bool = False) -> mne.io.BaseRaw:
    """Open any recording MNE can read, without loading its samples by default.

    Parameters
    ----------
    path : path to an EDF/EDF+, BDF, FIF, BrainVision (.vhdr), EEGLAB (.set) or
        other MNE-readable file.
    preload : load all samples now (``False`` keeps memory flat: samples are read
        chunk by chunk with ``raw.get_data(start=..., stop=...)``).

    Raises
    ------
    EegcodecError : the file does not exist, has an unsupported extension, or MNE
        cannot parse it (the message names the file and MNE's reason).
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
            f"cannot read {path.name!r}: extension {path.suffix or '(none)'!r} is not an EEG format MNE reads "
            f"(supported: {', '.join(READ_EXTENSIONS)})"
        )
    try:
        return mne.io.read_raw(path, preload=preload, verbose="error")
    except Exception as exc:  # MNE raises many types; users need one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EegcodecError(f"cannot read {path}: {msg}") from exc


def write_raw(raw: mne.io.BaseRaw, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Write ``raw`` to ``path`` in the format its extension names, atomically.

    ``.edf``/``.bdf``/``.vhdr``/``.set`` go through :func:`mne.export.export_raw`,
    ``.fif`` through :meth:`mne.io.Raw.save`. The file (for BrainVision: the
    ``.vhdr``, ``.vmrk`` and ``.eeg`` trio) is first written in a temporary folder
    beside the target and moved into place only when complete, so a failure never
    leaves a partial output.
    """
    path = Path(path)
    ext = _suffix(path)
    if ext not in WRITE_FORMATS:
        raise UnsupportedFormatError(
            f"cannot write {path.name!r}: choose an output extension among {', '.join(WRITE_FORMATS)}"
        )
    if path.exists() and not overwrite:
        raise EegcodecError(f"output exists: {path} (pass overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tmp = tmpdir / path.name
        if ext == ".fif":
            raw.save(tmp, overwrite=True, verbose="error")
        else:
            mne.export.export_raw(tmp, raw, fmt=WRITE_FORMATS[ext], overwrite=True, verbose="error")
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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
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
