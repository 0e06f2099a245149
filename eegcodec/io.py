"""Read recordings with MNE and write them back, atomically.

Stage 1 and 5 of the data path (read ... write). Every format MNE reads is
accepted on input; output format is chosen by the extension.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import edfio
import mne
import numpy as np

from .errors import EegcodecError, OutputExistsError, UnsupportedFormatError

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
)
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
            f"cannot read {path.name!r}: extension {path.suffix or '(none)'!r} is not an EEG format MNE "
            f"reads "
            f"(supported: {', '.join(READ_EXTENSIONS)})"
        )
    try:
        return mne.io.read_raw(path, preload=preload, verbose="error")
    except Exception as exc:  # MNE raises many types; users need one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EegcodecError(f"cannot read {path}: {msg}") from exc


def load_crop(path: str | os.PathLike, crop_seconds: float | None) -> mne.io.BaseRaw:
    """The recording, preloaded, cropped to its first ``crop_seconds`` (all of it if None)."""
    raw = read_raw(path, preload=True)
    if crop_seconds and crop_seconds < raw.times[-1]:
        raw.crop(0, crop_seconds, include_tmax=False)
    return raw


_UNIT_VOLTS = {"uv": 1e-6, "µv": 1e-6, "mv": 1e-3, "v": 1.0, "nv": 1e-9}


def edf_ranges(path: Path, raw: mne.io.BaseRaw) -> dict | None:
    """The per-channel scaling of an EDF/BDF file as its header writes it: lists (channel order)
    ``physical_min``, ``physical_max`` (in the channel's unit), ``digital_min``, ``digital_max``
    ``unit_volts`` (what MNE multiplied the file's values by: volts per unit, 1 for unitless
    channels) and ``dimension`` (the unit's name there); None for other formats, or when the
    file's signals are not ``raw``'s channels one to one."""
    fmt = Path(path).suffix.lower()[1:]
    if fmt not in ("edf", "bdf"):
        return None
    try:
        header = edfio.read_edf(path, lazy_load_data=True) if fmt == "edf" else edfio.read_bdf(path)
    except Exception:  # MNE read it; edfio need not (EDF+D, odd headers): keep MNE's scaling later
        return None
    signals = list(header.signals)
    if [s.label.strip() for s in signals] != [n.strip() for n in raw.ch_names]:
        return None
    mne_units = np.ravel((getattr(raw, "_raw_extras", None) or [{}])[0].get("units", []))
    units = [  # what MNE multiplied the file's physical values by (1 for stim and unitless channels)
        float(mne_units[i]) if mne_units.size == len(signals) else _UNIT_VOLTS.get(sg.physical_dimension, 0.0)
        for i, sg in enumerate(signals)
    ]
    return {
        "physical_min": [float(s.physical_min) for s in signals],
        "physical_max": [float(s.physical_max) for s in signals],
        "digital_min": [float(s.digital_min) for s in signals],
        "digital_max": [float(s.digital_max) for s in signals],
        "unit_volts": units,
        "dimension": [s.physical_dimension for s in signals],
    }


def write_raw(
    raw: mne.io.BaseRaw,
    path: str | os.PathLike,
    overwrite: bool = True,
    edf_ranges: dict | None = None,
    exact: bool = False,
) -> Path:
    """Write ``raw`` to ``path`` in the format its extension names, atomically.

    ``.edf``/``.bdf``/``.vhdr``/``.set`` go through :func:`mne.export.export_raw`,
    ``.fif`` through :meth:`mne.io.Raw.save`. The file (for BrainVision: the
    ``.vhdr``, ``.vmrk`` and ``.eeg`` trio) is first written in a temporary folder
    beside the target and moved into place only when complete, so a failure never
    leaves a partial output. EDF/BDF keep the exact sample count (:func:`_exact_records`);
    NaN samples cannot be written to EDF/BDF and are an error that names FIF instead.
    ``edf_ranges`` (:func:`edf_ranges` of the source, for a lossless file): EDF/BDF channels get
    the source's physical and digital ranges back, so they hold the source's integers.
    ``exact`` (a lossless file): FIF samples as float64 rather than MNE's default float32.
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
        if fmt == "fif":
            raw.save(tmp, overwrite=True, fmt="double" if exact else "single", verbose="error")
        else:
            mne.export.export_raw(tmp, raw, fmt=fmt, overwrite=True, verbose="error")
            if fmt in ("edf", "bdf"):
                _exact_records(tmp, raw.n_times, raw.info["sfreq"], fmt)
                if edf_ranges:
                    _restore_ranges(tmp, raw, edf_ranges, fmt)
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


def record_samples(n_samples: int, sfreq: float) -> int | None:
    """Samples per EDF/BDF data record that divide ``n_samples`` exactly and whose duration
    EDF's 8-character field holds exactly: the largest such up to one second, else None."""
    if not float(sfreq).is_integer():
        return None
    fs = int(sfreq)
    for r in range(fs, 0, -1):
        if n_samples % r == 0 and len(repr(r / fs)) <= 8 and n_samples // r <= 99_999_999:
            return r
    return None


def _exact_records(path: Path, n_samples: int, sfreq: float, fmt: str) -> None:
    """MNE pads EDF/BDF to whole 1-s data records (and marks the pad ``BAD_ACQ_SKIP``); rewrite
    the file with data records that divide the recording, so it keeps its exact sample count."""
    if not float(sfreq).is_integer() or n_samples % int(sfreq) == 0:
        return
    r = record_samples(n_samples, sfreq)
    if r is None:
        warnings.warn(
            f"{path.name}: no EDF data record length divides {n_samples} samples at {sfreq:g} Hz; "
            "the last record is padded (marked BAD_ACQ_SKIP)",
            stacklevel=3,
        )
        return
    edf = (edfio.read_edf if fmt == "edf" else edfio.read_bdf)(path)
    end = n_samples / sfreq
    edf.set_annotations(
        [a for a in edf.annotations if not (a.text == "BAD_ACQ_SKIP" and abs(a.onset - end) < 0.5 / sfreq)]
    )
    edf.update_data_record_duration(r / int(sfreq), method="truncate")
    edf.write(path)


def _restore_ranges(path: Path, raw: mne.io.BaseRaw, ranges: dict, fmt: str) -> None:
    """Rewrite the EDF/BDF at ``path`` with each channel's source ranges (:func:`edf_ranges`)."""
    edf = (edfio.read_edf if fmt == "edf" else edfio.read_bdf)(path)
    signals = list(edf.signals)
    if len(signals) != len(raw.ch_names) or any(len(v) != len(signals) for v in ranges.values()):
        return  # not the channels the ranges describe: keep MNE's own scaling
    data = raw.get_data()
    for i, sig in enumerate(signals):
        unit = ranges["unit_volts"][i]
        lo, hi = ranges["physical_min"][i], ranges["physical_max"][i]
        phys = data[i] / unit
        if not (unit > 0 and lo < hi and lo <= phys.min() and phys.max() <= hi):
            continue  # samples outside the source's range (not a lossless decode): MNE's scaling
        inner = float(np.nextafter(lo, hi)), float(np.nextafter(hi, lo))
        signals[i] = type(sig)(
            np.clip(phys, *inner),  # moves the extremes by one ulp: the same integers
            sig.sampling_frequency,
            label=sig.label,
            transducer_type=sig.transducer_type,
            physical_dimension=ranges["dimension"][i],
            # edfio rounds the minimum down and the maximum up to 8 characters; from one ulp inside,
            # that gives back the source header's own strings
            physical_range=inner,
            digital_range=(int(ranges["digital_min"][i]), int(ranges["digital_max"][i])),
            prefiltering=sig.prefiltering,
        )
    out = type(edf)(
        signals,
        patient=edf.patient,
        recording=edf.recording,
        starttime=edf.starttime,
        data_record_duration=edf.data_record_duration,
        annotations=edf.annotations,
    )
    out.write(path)


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
