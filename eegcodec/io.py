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

import edfio
import mne
import numpy as np

from .devices import read_device
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
        (:func:`read_xdf`, loaded whole), OpenBCI GUI ``.txt`` or Muse ``.csv``
        (:func:`eegcodec.devices.read_device`, loaded whole) or other MNE-readable file. An
        EDF/BDF header is checked first (:func:`edf_problem`); BrainVision ``Comment`` markers
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
        problem = edf_problem(path)
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


#: XDF channel units (lower case) -> volts per unit; a channel without a unit is taken as microvolts
#: where it is EEG-like (LSL's convention), else as unitless
_XDF_UNITS = {
    "microvolts": 1e-6, "microvolt": 1e-6, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6,
    "millivolts": 1e-3, "millivolt": 1e-3, "mv": 1e-3,
    "volts": 1.0, "volt": 1.0, "v": 1.0,
    "nanovolts": 1e-9, "nanovolt": 1e-9, "nv": 1e-9,
}  # fmt: skip
_XDF_TYPES = {"eeg": "eeg", "eog": "eog", "ecg": "ecg", "emg": "emg", "stim": "stim", "trigger": "stim"}


def read_xdf(path: str | os.PathLike, stream: str | None = None) -> mne.io.RawArray:
    """The EEG stream of an XDF file (:func:`pyxdf.load_xdf`) as an MNE raw, in volts.

    The stream named ``stream``, else the one of type ``EEG``, else the numeric stream with the
    most channels; channel labels, types and units from its ``desc/channels`` (microvolts,
    millivolts, nanovolts become volts; an EEG-like channel without a unit is taken as
    microvolts), ``sfreq`` its ``nominal_srate`` (an irregular-rate stream, 0, is an error), the
    first sample at its first time stamp; samples ``[channels, n]``. String streams of irregular
    rate (markers) become annotations (onset from the EEG stream's first time stamp, duration 0).
    """
    import pyxdf  # only XDF files need it

    path = Path(path)
    try:
        streams, _ = pyxdf.load_xdf(str(path), verbose=False)
    except Exception as exc:  # pyxdf raises many types on damaged files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EegcodecError(f"cannot read {path}: not a readable XDF file ({msg})") from exc
    eeg = _xdf_eeg_stream(path, streams, stream)
    info = eeg["info"]
    name = _xdf_text(info, "name") or "stream"
    sfreq = float(_xdf_text(info, "nominal_srate") or 0)
    if not sfreq > 0:
        raise EegcodecError(
            f"cannot read {path}: XDF stream {name!r} has an irregular rate (nominal_srate {sfreq:g}); "
            "eegcodec needs regularly sampled EEG"
        )
    data = np.asarray(eeg["time_series"], dtype=np.float64).T
    labels, types, scales = _xdf_channels(info, data.shape[0], name)
    raw = mne.io.RawArray(
        data * np.array(scales)[:, None], mne.create_info(labels, sfreq, types), verbose="error"
    )
    stamps = np.asarray(eeg["time_stamps"], dtype=np.float64)
    start = float(stamps[0]) if stamps.size else 0.0
    onsets, texts = [], []
    for other in streams:
        if other is not eeg and _xdf_text(other["info"], "channel_format") == "string":
            for t, value in zip(other["time_stamps"], other["time_series"]):
                if 0 <= t - start < raw.times[-1] + 1 / sfreq and len(value) and str(value[0]):
                    onsets.append(float(t - start))
                    texts.append(str(value[0]))
    if onsets:
        raw.set_annotations(mne.Annotations(onsets, np.zeros(len(onsets)), texts))
    return raw


def _xdf_text(node: dict, key: str) -> str | None:
    """The text of XDF XML element ``key`` under ``node`` (pyxdf: a dict of one-element lists)."""
    value = (node or {}).get(key)
    while isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value).strip()


def _xdf_eeg_stream(path: Path, streams: list[dict], name: str | None) -> dict:
    numeric = [s for s in streams if _xdf_text(s["info"], "channel_format") != "string"]
    if name is not None:
        named = [s for s in streams if _xdf_text(s["info"], "name") == name]
        if not named:
            found = [_xdf_text(s["info"], "name") for s in streams]
            raise EegcodecError(f"cannot read {path}: no XDF stream named {name!r} (it has {found})")
        return named[0]
    eeg = [s for s in numeric if (_xdf_text(s["info"], "type") or "").lower() == "eeg"]
    if not (eeg or numeric):
        raise EegcodecError(f"cannot read {path}: the XDF file holds no numeric stream")
    return max(eeg or numeric, key=lambda s: int(_xdf_text(s["info"], "channel_count") or 0))


def _xdf_channels(info: dict, n: int, name: str) -> tuple[list[str], list[str], list[float]]:
    """Labels, MNE types and volts per unit of an XDF stream's ``n`` channels."""
    try:
        chans = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        chans = []
    stream_type = _XDF_TYPES.get((_xdf_text(info, "type") or "").lower(), "misc")
    labels, types, scales = [], [], []
    for i in range(n):
        ch = chans[i] if i < len(chans) else {}
        given = (_xdf_text(ch, "type") or "").lower()
        kind = _XDF_TYPES.get(given, "misc") if given else stream_type
        unit = (_xdf_text(ch, "unit") or "").lower()
        voltage = kind in ("eeg", "eog", "ecg", "emg")
        labels.append(_xdf_text(ch, "label") or f"{name} {i + 1}")
        types.append(kind)
        scales.append(_XDF_UNITS.get(unit, 1e-6 if voltage and not unit else 1.0))
    return labels, types, scales


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


#: the EDF/BDF header: (field, offset, width) of the fixed part, and of each signal's fields
#: (all signals' labels first, then all their transducer types, ...)
_EDF_FIXED = (("header bytes", 184, 8), ("number of data records", 236, 8), ("data record duration", 244, 8))
_EDF_SIGNAL = (
    ("label", 16),
    ("transducer type", 80),
    ("physical dimension", 8),
    ("physical minimum", 8),
    ("physical maximum", 8),
    ("digital minimum", 8),
    ("digital maximum", 8),
    ("prefiltering", 80),
    ("samples per data record", 8),
    ("reserved", 32),
)
_EDF_NUMBERS = {"physical minimum", "physical maximum", "digital minimum", "digital maximum"}


def edf_problem(path: Path) -> str | None:
    """What is wrong with the EDF/BDF header at ``path`` (one phrase), or None: a numeric field
    that is empty or no number, a header shorter than it declares, or data records missing."""
    kind = "BDF" if Path(path).suffix.lower() == ".bdf" else "EDF"
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256:
            return f"not a valid {kind} file ({len(head)} bytes, shorter than the 256-byte header)"
        fixed = {name: head[at : at + width].decode("latin-1").strip() for name, at, width in _EDF_FIXED}
        fixed["number of signals"] = head[252:256].decode("latin-1").strip()
        for name, text in fixed.items():
            if _number(text, float if name == "data record duration" else int) is None:
                return _bad_field(kind, name, text)
        n_sig, n_rec = int(fixed["number of signals"]), int(fixed["number of data records"])
        if n_sig < 1 or int(fixed["header bytes"]) != 256 * (n_sig + 1):
            return f"not a valid {kind} header ({n_sig} signals in {fixed['header bytes']} header bytes)"
        signals = f.read(256 * n_sig)
    if len(signals) < 256 * n_sig:
        return f"truncated {kind} file: its header declares {n_sig} signals, the file ends inside the header"
    pos, samples = 0, []
    for name, width in _EDF_SIGNAL:
        values = [
            signals[pos + i * width : pos + (i + 1) * width].decode("latin-1").strip() for i in range(n_sig)
        ]
        pos += width * n_sig
        kind_of = int if name in ("samples per data record", "digital minimum", "digital maximum") else float
        for i, text in enumerate(values):
            if (name in _EDF_NUMBERS or name.startswith("samples")) and _number(text, kind_of) is None:
                return _bad_field(kind, f"{name} of signal {i + 1}", text)
        if name.startswith("samples"):
            samples = [int(v) for v in values]
    record = sum(samples) * (3 if kind == "BDF" else 2)
    held = (size - 256 * (n_sig + 1)) / record if record else 0
    if n_rec > 0 and held < n_rec:
        return (
            f"truncated {kind} file: its header declares {n_rec} data records of {record:,} bytes, "
            f"the file holds {held:.3g}"
        )
    return None


def _number(text: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        return None


def _bad_field(kind: str, name: str, text: str) -> str:
    what = "is empty" if not text else f"is {text!r}, not a number"
    return f"not a valid {kind} header (field '{name}' {what})"


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
    slack: dict[str, float] | None = None,
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
            _exact_records(tmp, raw.n_times, raw.info["sfreq"], fmt)
            if edf_ranges or slack:
                _rescale_edf(tmp, raw, edf_ranges, fmt, bounded=slack is not None)
        if slack and fmt != "fif":  # FIF holds float64 (exact): nothing moved
            _check_moved(tmp, raw, slack, path, _source_limits(raw, edf_ranges))
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


#: how far (in digital steps) a sample may lie from the source's grid and still take its integer
GRID_SLACK = 1e-3


def _rescale_edf(path: Path, raw: mne.io.BaseRaw, ranges: dict | None, fmt: str, bounded: bool) -> None:
    """Rewrite the EDF/BDF at ``path`` with each channel's own scaling: the source's ranges
    (:func:`edf_ranges`, channel order) where the samples lie on that channel's digital grid (they
    give the source's integers back); else, when ``bounded`` (a max-error file), a range just
    around the channel's samples at the format's full depth (its finest steps); else MNE's."""
    edf = (edfio.read_edf if fmt == "edf" else edfio.read_bdf)(path)
    signals = list(edf.signals)
    if len(signals) != len(raw.ch_names):
        return  # not one signal per channel: keep MNE's own scaling
    if ranges and any(len(v) != len(signals) for v in ranges.values()):
        ranges = None
    for i, sig in enumerate(signals):
        x = raw.get_data(picks=[i])[0]
        new = _on_source_grid(sig, x, ranges, i, bounded) if ranges else None
        if new is None and bounded:
            new = _tight(sig, x)
        signals[i] = sig if new is None else new
    out = type(edf)(
        signals,
        patient=edf.patient,
        recording=edf.recording,
        starttime=edf.starttime,
        data_record_duration=edf.data_record_duration,
        annotations=edf.annotations,
    )
    out.write(path)


def _signal(sig, digital: np.ndarray, dimension: str, physical: tuple[float, float], digital_range):
    """``sig`` (an edfio signal) holding the integers ``digital`` under a new scaling. edfio rounds
    the physical minimum down and the maximum up to 8 characters; given one ulp inside a header's
    own values, that gives those values back."""
    lo, hi = physical
    return type(sig).from_digital(
        np.asarray(digital).astype(type(sig)._digital_dtype),
        sig.sampling_frequency,
        label=sig.label,
        transducer_type=sig.transducer_type,
        physical_dimension=dimension,
        physical_range=(float(np.nextafter(lo, hi)), float(np.nextafter(hi, lo))),
        digital_range=tuple(int(v) for v in digital_range),
        prefiltering=sig.prefiltering,
    )


def _on_source_grid(sig, x: np.ndarray, ranges: dict, i: int, clip: bool):
    """``sig`` with source channel ``i``'s scaling and ``x`` (volts) as its integers, or None where
    ``x`` is not on that channel's digital grid. With ``clip`` (a max-error file) samples beyond
    the source's range are clipped to it: the source held nothing beyond, so a sample coded
    within a bound only moves closer to its original."""
    unit, lo, hi = ranges["unit_volts"][i], ranges["physical_min"][i], ranges["physical_max"][i]
    dlo, dhi = int(ranges["digital_min"][i]), int(ranges["digital_max"][i])
    if not (unit > 0 and lo < hi and dlo < dhi) or not np.all(np.isfinite(x)):
        return None
    level = (x / unit - lo) / (hi - lo) * (dhi - dlo) + dlo  # the source's integers, as floats
    inside = np.clip(level, dlo, dhi)
    digital = np.rint(inside)
    off = np.abs(inside - digital).max(initial=0)
    if off > GRID_SLACK or (not clip and np.abs(level - inside).max(initial=0) > GRID_SLACK):
        return None
    return _signal(sig, digital, ranges["dimension"][i], (lo, hi), (dlo, dhi))


def _tight(sig, x: np.ndarray):
    """``sig`` rescaled to a physical range just around ``x`` (volts; in the signal's unit) at the
    format's full digital depth: quantisation steps of (max - min) / 65535 (EDF) or / 16777215 (BDF)."""
    scale = _UNIT_VOLTS.get(sig.physical_dimension.strip().lower(), 1.0)
    phys = x / scale
    lo, hi = float(phys.min()), float(phys.max())
    if hi - lo < 1e-6 * max(abs(lo), abs(hi), 1.0):
        lo, hi = lo - 1.0, hi + 1.0
    dlo, dhi = type(sig)._default_digital_range
    probe = type(sig).from_digital(  # the 8-character range edfio writes around [lo, hi]
        np.array([dlo, dhi], dtype=type(sig)._digital_dtype),
        sig.sampling_frequency,
        physical_range=(lo, hi),
        digital_range=(dlo, dhi),
    )
    plo, phi = probe.physical_min, probe.physical_max
    digital = np.clip(np.rint((phys - plo) / (phi - plo) * (dhi - dlo) + dlo), dlo, dhi)
    return _signal(sig, digital, sig.physical_dimension, (plo, phi), (dlo, dhi))


def _source_limits(raw: mne.io.BaseRaw, ranges: dict | None) -> dict[str, tuple[float, float]]:
    """``{channel: (min, max)}`` in volts: the physical range an EDF/BDF source held (empty without)."""
    if not ranges or any(len(v) != len(raw.ch_names) for v in ranges.values()):
        return {}
    return {
        name: (lo * unit, hi * unit)
        for name, lo, hi, unit in zip(
            raw.ch_names, ranges["physical_min"], ranges["physical_max"], ranges["unit_volts"]
        )
        if unit > 0 and lo < hi
    }


def _check_moved(written: Path, raw: mne.io.BaseRaw, slack: dict[str, float], path: Path, limits) -> None:
    """Read ``written`` back and refuse it (naming ``path``) where a channel of ``slack`` moved
    further than its allowance (volts) from ``raw``'s samples. Where the source's range is known
    (``limits``, volts), a sample clipped to it counts as unmoved: the original lay within it, so
    clipping only brings a sample closer to it."""
    back = mne.io.read_raw(written, preload=False, verbose="error")
    for name, allowed in slack.items():
        if name not in back.ch_names:
            continue
        got = back.get_data(picks=[name], stop=min(raw.n_times, back.n_times))[0]
        want = raw.get_data(picks=[name], stop=got.size)[0]
        moved = np.abs(got - want)
        if name in limits:
            moved = np.minimum(moved, np.abs(got - np.clip(want, *limits[name])))
        moved = np.where(np.isnan(got) & np.isnan(want), 0.0, moved)
        worst = float(np.nan_to_num(moved, nan=np.inf).max(initial=0))
        if worst > allowed:
            raise EegcodecError(
                f"cannot write {path.name} within the file's max-error bound: {path.suffix[1:].upper()} "
                f"moves channel {name} by up to {worst * 1e9:.3g} nV, more than the {allowed * 1e9:.3g} nV "
                "the bound leaves for the format's rounding; write .fif instead, which keeps the samples"
            )


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
