"""XDF recordings (Lab Streaming Layer): the EEG stream of a file as an MNE raw, its marker
streams as annotations (:func:`read_xdf`; :func:`eegcodec.io.read_raw` calls it for ``.xdf``)."""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np

from .errors import EegcodecError

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
