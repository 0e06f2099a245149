"""A short real recording shipped with the package, so that every command can be tried offline.

``sample_eegbci_S001R01_40s.edf``: the first 40 s of subject S001, run R01 (eyes open, resting
baseline) of the PhysioNet EEG Motor Movement/Imagery Dataset (Schalk et al. 2004, IEEE TBME
51:1034; Goldberger et al. 2000, Circulation 101:e215), licensed ODC-By 1.0: 64 EEG channels at
160 Hz, the file's own 16-bit samples and header, cut at a data-record boundary. See
``README.md`` beside this file.

More recordings of the same dataset download through MNE where there is internet:
``mne.datasets.eegbci.load_data(subjects=[1], runs=[1, 2])`` returns EDF paths.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: the shipped recordings by name
SAMPLES = {"eegbci": _HERE / "sample_eegbci_S001R01_40s.edf"}


def sample_path(name: str = "eegbci") -> Path:
    """Path to a recording shipped inside the package (``"eegbci"``: 40 s, 64 EEG channels,
    160 Hz, EDF+). Read it with :func:`mne.io.read_raw` or pass it to any ``eegcodec`` verb."""
    if name not in SAMPLES:
        raise ValueError(f"name={name!r}: shipped samples are {', '.join(SAMPLES)}")
    return SAMPLES[name]
