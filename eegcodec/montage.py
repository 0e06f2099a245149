"""Channel identity for multi-channel codecs: names -> scalp positions, and channel subsets.

A multi-channel model is told where each channel sits. Names are normalised
(:func:`normalise_name`: EEGBCI's trailing dots, ``EEG `` prefixes, ``-REF`` style
suffixes, old 10-20 names T3/T4/T5/T6) and looked up in a table of standard 10-05
positions (MNE's, stored inside each trained model so a model always sees the positions it
was trained with). A name that is not in the table, or that repeats an earlier channel's
position, gets a fallback: a distinct pseudo-position on a sphere outside the scalp,
chosen by the channel's index, and ``known = False`` (the model has a learned embedding
for that case).

Positions are in units of 10 cm (head frame), so scalp electrodes lie near the unit sphere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: Old 10-20 names -> their 10-10 equivalents.
ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
#: Metres per position unit.
POSITION_UNIT_M = 0.1


def normalise_name(name: str) -> str:
    """``'Fc5.'`` -> ``'FC5'``, ``'EEG Fp1-REF'`` -> ``'FP1'``, ``'T3'`` -> ``'T7'`` (upper case)."""
    n = name.strip().rstrip(".").strip()
    n = re.sub(r"^(EEG|eeg)[\s_:-]+", "", n)
    n = re.sub(r"[-_ ](REF|Ref|ref|LE|RE|AVG|Avg|avg|A1|A2|M1|M2)$", "", n)
    n = n.upper()
    return ALIASES.get(n, n)


def standard_positions() -> dict[str, list[float]]:
    """Normalised name -> [x, y, z] (position units) for MNE's standard 10-05 montage."""
    import warnings

    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            montage = mne.channels.make_standard_montage("standard_1005")
        except ValueError:
            montage = mne.channels.make_standard_montage("colin27_1005")
    pos = montage.get_positions()["ch_pos"]
    return {normalise_name(k): [round(float(v) / POSITION_UNIT_M, 5) for v in xyz] for k, xyz in pos.items()}


def _fallback(index: int) -> np.ndarray:
    """A distinct point on a sphere of radius 2 (off the scalp) for channel ``index`` (golden-angle)."""
    i = index % 64 + 0.5
    z = 1 - 2 * i / 64
    r = np.sqrt(1 - z * z)
    phi = index * np.pi * (3 - np.sqrt(5))
    return 2.0 * np.array([r * np.cos(phi), r * np.sin(phi), z]) * (1 + 0.1 * (index // 64))


#: positions are rounded to this many decimals (of 10 cm: 10 um) wherever they are made, so the
#: header stores them in few characters and the decoder uses exactly what the encoder used
POSITION_DECIMALS = 4


def stored_positions(pos: np.ndarray) -> np.ndarray:
    """float32 [C, 3] positions rounded to :data:`POSITION_DECIMALS` (what a header can hold exactly)."""
    return np.round(np.asarray(pos, dtype=np.float64), POSITION_DECIMALS).astype(np.float32)


@dataclass
class Montage:
    """What a multi-channel model knows of a recording's coded channels.

    Attributes
    ----------
    names : channel names as in the recording.
    positions : float32 [C, 3], position units (see module docstring).
    known : bool [C], False where the position is a fallback.
    """

    names: list[str]
    positions: np.ndarray
    known: np.ndarray

    @classmethod
    def from_names(cls, names: list[str], table: dict[str, list[float]]) -> Montage:
        pos = np.zeros((len(names), 3), dtype=np.float32)
        known = np.zeros(len(names), dtype=bool)
        seen: set[str] = set()
        for i, name in enumerate(names):
            key = normalise_name(name)
            if key in table and key not in seen:
                pos[i], known[i] = table[key], True
                seen.add(key)
            else:
                pos[i] = _fallback(i)
        return cls(list(names), stored_positions(pos), known)

    def to_dict(self) -> dict:
        """What the header stores; :meth:`from_dict` gives back the same float32 positions."""
        rounded = np.round(self.positions.astype(np.float64), POSITION_DECIMALS)
        return {"positions": rounded.tolist(), "known": self.known.astype(int).tolist()}

    @classmethod
    def from_dict(cls, names: list[str], d: dict) -> Montage:
        pos = np.asarray(d["positions"], dtype=np.float32).reshape(-1, 3)
        known = np.asarray(d["known"], dtype=bool)
        if len(pos) != len(names) or len(known) != len(names):
            raise ValueError(f"montage holds {len(pos)} positions for {len(names)} channels")
        return cls(list(names), pos, known)


def pivot_subset(positions: np.ndarray, n: int, rng: np.random.Generator, scale: float = 0.3) -> np.ndarray:
    """Indices of ``n`` channels around a random pivot: the pivot first, then channels drawn
    without replacement with probability proportional to ``exp(-distance / scale)``.

    positions [C, 3] (position units); returns int64 [n] (n <= C)."""
    c = len(positions)
    if not 1 <= n <= c:
        raise ValueError(f"cannot draw {n} of {c} channels")
    pivot = int(rng.integers(c))
    others = np.delete(np.arange(c), pivot)
    if n == 1:
        return np.array([pivot])
    d = np.linalg.norm(positions[others] - positions[pivot], axis=1)
    w = np.exp(-d / scale)
    w = np.maximum(w, 1e-12)
    picked = rng.choice(others, size=n - 1, replace=False, p=w / w.sum())
    return np.concatenate([[pivot], picked]).astype(np.int64)
