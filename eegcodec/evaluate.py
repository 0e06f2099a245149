"""``eegcodec eval`` and ``eegcodec demo``: round-trip a recording in several modes and measure.

Modes: token files at several codebook depths, ``lossless``, ``max_error`` bounds and ``prd``
targets. Bits per sample are those of the real ``.eegc`` payload over channels x samples (token
and ``prd`` files: CODE + SIDE + RESD sections over the coded channels; lossless and max-error
files: the exact stream over all channels, as ``eegcodec info`` counts them); metrics compare the
original and the decompressed recording in volts, on the coded channels (all channels for
lossless and max-error files).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import modes
from .adapt import AdapterConfig
from .format.container import Archive
from .io import load_crop
from .metrics import bits_per_sample, prd_per_channel, reconstruction_metrics
from .modes import Mode
from .pipeline import archive_codes, compress_raw, decompress_archive

if TYPE_CHECKING:
    from .backends.base import Codec


def settings_for(
    depths: list[int] = (),
    *,
    prds: list[float] = (),
    lossless: bool = False,
    max_errors: list[float] = (),
) -> list[tuple[object, Mode]]:
    """(setting, mode) per row, in the order lossless, max-error (``max_errors`` in volts), prd,
    tokens: from the exact copy to the model's codes. ``setting`` names the row in the results
    (the depth for token rows)."""
    out = [("lossless", modes.from_options(lossless=True))] if lossless else []
    out += [(f"max-error<={v * 1e6:g} uV", modes.from_options(max_error=v)) for v in max_errors]
    out += [(f"prd<={p:g}", modes.from_options(prd=p)) for p in prds]
    return out + [(k, modes.from_options(n_codebooks=k)) for k in depths]


def evaluate_raw(
    raw,
    codec: Codec | None,
    depths: list[int],
    *,
    name: str = "recording",
    progress: bool = False,
    adapter: AdapterConfig | None = None,
    on_reconstruction=None,
    prds: list[float] = (),
    lossless: bool = False,
    max_errors: list[float] = (),
) -> list[dict]:
    """One row per mode (:func:`settings_for`: ``lossless``, each bound of ``max_errors`` in volts,
    each target of ``prds`` in percent, each depth of ``depths`` with ``codec``): bps, CR16, PRD,
    SNR, r, spectral error, band power errors, largest absolute error, speeds.

    ``adapter`` overrides the model's adapter settings (for experiments);
    ``on_reconstruction(setting, coded_names, decompressed_raw)`` sees each reconstruction
    (``setting``: the depth, or ``"prd<=P"``, ``"lossless"``, ``"max-error<=V uV"``).
    """
    from tqdm import tqdm

    settings = settings_for(depths, prds=prds, lossless=lossless, max_errors=max_errors)
    rows = []
    bar = tqdm(settings, desc=name, disable=not progress, leave=False)
    for setting, mode in bar:
        bar.set_postfix_str(mode.label)
        label = mode.label
        t0 = time.perf_counter()
        model = codec if mode.needs_model() else None
        data = compress_raw(raw, model, mode=mode, adapter=adapter if mode.needs_model() else None)
        t1 = time.perf_counter()
        arc = Archive.from_bytes(data)
        rec = decompress_archive(arc, codec)
        t2 = time.perf_counter()
        picks = arc.header.coded or list(range(len(raw.ch_names)))
        if on_reconstruction is not None:
            on_reconstruction(setting, arc.header.coded, rec)
        row = _row(raw, rec, arc, picks, codec, name, setting, label)
        dur = raw.n_times / raw.info["sfreq"]
        row.update(
            file_bytes=len(data),
            seconds=t2 - t0,
            compress_realtime=dur / (t1 - t0),
            decompress_realtime=dur / (t2 - t1),
        )
        rows.append(row)
    return rows


def _row(raw, rec, arc: Archive, picks: list[int], codec, name: str, setting, label: str) -> dict:
    """One evaluation row: sizes and fidelity of the decompressed ``rec`` against ``raw``."""
    x = raw.get_data(picks=picks)
    y = rec.get_data(picks=picks)
    sizes = arc.section_sizes
    if arc.header.coded:
        stored = sum(sizes.get(s, 0) for s in ("CODE", "SIDE", "RESD"))
    else:
        stored = sizes.get("RAWC", 0)
    bps = bits_per_sample(stored, len(picks), raw.n_times)
    tokens = arc.header.has_tokens
    return {
        "file": name,
        "model": codec.info.name if tokens else {"prd": "transform"}.get(arc.header.mode, "none"),
        "mode": arc.header.mode,
        "codebooks": setting,
        "setting": label,
        "bits_per_sample": bps,
        "cr16": 16 / bps,
        **reconstruction_metrics(x, y, raw.info["sfreq"]),
        "max_abs_error_uv": float(np.nanmax(np.abs(x - y), initial=0.0)) * 1e6,
        "worst_channels": _worst(raw, picks, x, y),
        "code_bps": bits_per_sample(sizes.get("CODE", 0), len(picks), raw.n_times),
        **(code_statistics(arc, codec) if tokens else {}),
    }


def evaluate_file(
    path: str | Path,
    codec: Codec | None,
    depths: list[int],
    *,
    crop_seconds: float | None = None,
    progress: bool = False,
    adapter: AdapterConfig | None = None,
    prds: list[float] = (),
    lossless: bool = False,
    max_errors: list[float] = (),
) -> list[dict]:
    """:func:`evaluate_raw` on the first ``crop_seconds`` of a recording file (all of it if None)."""
    raw = load_crop(path, crop_seconds)
    return evaluate_raw(
        raw,
        codec,
        depths,
        name=Path(path).name,
        progress=progress,
        adapter=adapter,
        prds=prds,
        lossless=lossless,
        max_errors=max_errors,
    )


def code_statistics(arc: Archive, codec: Codec) -> dict[str, float]:
    """A token file's bits per code as stored (``CODE`` section) and the empirical entropy of its
    codes: per codebook, the plug-in entropy of the file's own code histogram, averaged over the
    codebooks (bits). That is what an ideal coder knowing this file's code frequencies would
    spend; a prior that uses context can go below it, and on short files it is biased low (few
    codes per histogram). Empty for files without tokens."""
    if not arc.header.has_tokens:
        return {}
    codes = archive_codes(arc, codec)
    entropies = []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level].ravel())
        p = counts[counts > 0] / codes[:, level].size
        entropies.append(float(-(p * np.log2(p)).sum()))
    return {
        "bits_per_code": 8 * len(arc.codes) / codes.size,
        "code_entropy_bits": float(np.mean(entropies)),
    }


def _worst(raw, coded: list[int], x: np.ndarray, y: np.ndarray, n: int = 3) -> dict[str, float]:
    """The ``n`` coded channels with the highest PRD -> that PRD (%)."""
    per = prd_per_channel(np.nan_to_num(x), np.nan_to_num(y))
    order = [i for i in np.argsort(-np.nan_to_num(per, nan=-1.0)) if np.isfinite(per[i])][:n]
    return {raw.ch_names[coded[i]]: round(float(per[i]), 1) for i in order}


#: the columns of :func:`format_table`: (row key, heading, format)
TABLE_COLUMNS = [
    ("file", "file", "{}"),
    ("codebooks", "N / target", "{}"),
    ("bits_per_sample", "bits/sample", "{:.3f}"),
    ("cr16", "CR16", "{:.1f}"),
    ("prd_percent", "PRD %", "{:.1f}"),
    ("prd_p90_percent", "PRD p90 %", "{:.1f}"),
    ("max_abs_error_uv", "max |err| uV", "{:.2f}"),
    ("snr_db", "SNR dB", "{:.2f}"),
    ("pearson_r", "r", "{:.3f}"),
    ("spectral_error_db", "spectral err dB", "{:.2f}"),
]
#: the columns ``eegcodec demo`` shows
MODE_COLUMNS = [
    ("setting", "mode", "{}"),
    ("bits_per_sample", "bits/sample", "{:.3f}"),
    ("cr16", "vs 16-bit EDF", "{:.1f}x"),
    ("prd_percent", "PRD % (median channel)", "{:.2f}"),
    ("max_abs_error_uv", "max |error| uV", "{:.2f}"),
    ("seconds", "seconds", "{:.1f}"),
]


def format_table(rows: list[dict], columns: list[tuple[str, str, str]] | None = None) -> str:
    """Markdown table of evaluation rows; with ``columns`` (e.g. :data:`MODE_COLUMNS`) those
    columns only, as plain text aligned for a terminal. A value a row lacks shows as ``-``."""

    def cell(r: dict, key: str, fmt: str) -> str:
        v = r.get(key)
        return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)

    if columns is not None:
        table = [[h for _, h, _ in columns]] + [[cell(r, k, f) for k, _, f in columns] for r in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
        text = [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            for line in table
        ]
        return "\n".join([text[0], "-" * len(text[0]), *text[1:]])
    heads = [h for _, h, _ in TABLE_COLUMNS] + ["worst channels (PRD %)"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    for r in rows:
        worst = ", ".join(f"{name} {v:g}" for name, v in r.get("worst_channels", {}).items())
        lines.append("| " + " | ".join(cell(r, k, f) for k, _, f in TABLE_COLUMNS) + f" | {worst} |")
    return "\n".join(lines)
