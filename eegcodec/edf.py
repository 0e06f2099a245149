"""EDF and BDF specifics of reading and writing (:mod:`eegcodec.io` calls them): the header
checked before MNE reads it (:func:`edf_problem`), each channel's scaling in the source
(:func:`edf_ranges`), and, when writing, data records that keep the exact sample count
(:func:`exact_records`), the source's or a tight scaling per channel (:func:`rescale_edf`) and the
read-back check of a max-error file's bound (:func:`check_moved`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import edfio
import mne
import numpy as np

from .errors import EegcodecError
from .format.exact import find_grid

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


def exact_records(path: Path, n_samples: int, sfreq: float, fmt: str) -> None:
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


def rescale_edf(path: Path, raw: mne.io.BaseRaw, ranges: dict | None, fmt: str, bounded: bool) -> None:
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
            new = _on_own_grid(sig, x)
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


def _on_own_grid(sig, x: np.ndarray):
    """``sig`` holding ``x`` (volts) exactly, as the integers of the grid its samples lie on (a
    max-error file's samples of a source that was not EDF/BDF: a BrainVision or FIF recording's
    resolution), or None where they lie on none, it spans more levels than the format's digits, or
    the 8-character physical range cannot state its step."""
    scale = _UNIT_VOLTS.get(sig.physical_dimension.strip().lower(), 1.0)
    grid = find_grid(x / scale)
    dlo, dhi = type(sig)._default_digital_range
    if grid is None or np.ptp(grid[2]) > dhi - dlo:
        return None
    origin, step, k = grid
    lo = origin + int(k.min()) * step
    for span in (dhi - dlo, max(int(np.ptp(k)), 1)):  # the format's digits, or just the levels used
        physical, digital = (lo, lo + span * step), (dlo, dlo + span)
        new = _signal(sig, k - k.min() + dlo, sig.physical_dimension, physical, digital)
        if np.abs(new.data - x / scale).max(initial=0) <= GRID_SLACK * 1e-6 * step:
            return new
    return None


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


def source_limits(raw: mne.io.BaseRaw, ranges: dict | None) -> dict[str, tuple[float, float]]:
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


def check_moved(written: Path, raw: mne.io.BaseRaw, slack: dict[str, float], path: Path, limits) -> None:
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
