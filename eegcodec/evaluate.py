"""``eegcodec eval``: round-trip a recording at several codebook depths and measure.

Bits per sample are those of the real ``.eegc`` payload (CODE + SIDE sections)
over coded channels x samples; metrics compare the coded channels of the
original and the decompressed recording in volts.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .adapt import AdapterConfig
from .codecs.base import Codec
from .container import Archive
from .io import load_crop
from .metrics import bits_per_sample, prd_per_channel, reconstruction_metrics
from .pipeline import archive_codes, compress_raw, decompress_archive


def evaluate_raw(
    raw,
    codec: Codec,
    depths: list[int],
    *,
    name: str = "recording",
    progress: bool = False,
    adapter: AdapterConfig | None = None,
    on_reconstruction=None,
    prds: list[float] = (),
) -> list[dict]:
    """One row per depth (token files of ``codec``), then one per target PRD (``prd`` files,
    transform layer only): bps, CR16, PRD, SNR, r, spectral error, band power errors, speeds.

    ``adapter`` overrides the model's adapter settings (for experiments);
    ``on_reconstruction(setting, coded_names, decompressed_raw)`` sees each reconstruction
    (``setting``: the depth, or ``"prd<=P"``).
    """
    from tqdm import tqdm

    settings = [(k, dict(n_codebooks=k, adapter=adapter)) for k in depths]
    settings += [(f"prd<={p:g}", dict(prd=p)) for p in prds]
    rows = []
    for k, kwargs in tqdm(settings, desc=name, disable=not progress, leave=False):
        t0 = time.perf_counter()
        data = compress_raw(raw, None if "prd" in kwargs else codec, **kwargs)
        t1 = time.perf_counter()
        arc = Archive.from_bytes(data)
        rec = decompress_archive(arc, codec)
        t2 = time.perf_counter()
        coded = arc.header.coded
        x = raw.get_data(picks=coded)
        y = rec.get_data(picks=coded)
        if on_reconstruction is not None:
            on_reconstruction(k, coded, rec)
        sizes = arc.section_sizes
        bps = bits_per_sample(sizes["CODE"] + sizes["SIDE"] + sizes.get("RESD", 0), len(coded), raw.n_times)
        dur = raw.n_times / raw.info["sfreq"]
        rows.append(
            {
                "file": name,
                "model": codec.info.name if "prd" not in kwargs else "transform",
                "mode": arc.header.mode,
                "codebooks": k,
                "bits_per_sample": bps,
                "cr16": 16 / bps,
                **reconstruction_metrics(x, y, raw.info["sfreq"]),
                "worst_channels": _worst(raw, coded, x, y),
                "code_bps": bits_per_sample(arc.section_sizes["CODE"], len(coded), raw.n_times),
                **code_statistics(arc, codec),
                "file_bytes": len(data),
                "compress_realtime": dur / (t1 - t0),
                "decompress_realtime": dur / (t2 - t1),
            }
        )
    return rows


def evaluate_file(
    path: str | Path,
    codec: Codec,
    depths: list[int],
    *,
    crop_seconds: float | None = None,
    progress: bool = False,
    adapter: AdapterConfig | None = None,
    prds: list[float] = (),
) -> list[dict]:
    raw = load_crop(path, crop_seconds)
    return evaluate_raw(
        raw, codec, depths, name=Path(path).name, progress=progress, adapter=adapter, prds=prds
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


def format_table(rows: list[dict]) -> str:
    """Markdown table of evaluation rows."""
    cols = [
        ("file", "file", "{}"),
        ("codebooks", "N / target", "{}"),
        ("bits_per_sample", "bits/sample", "{:.3f}"),
        ("cr16", "CR16", "{:.1f}"),
        ("prd_percent", "PRD %", "{:.1f}"),
        ("prd_p90_percent", "PRD p90 %", "{:.1f}"),
        ("snr_db", "SNR dB", "{:.2f}"),
        ("pearson_r", "r", "{:.3f}"),
        ("spectral_error_db", "spectral err dB", "{:.2f}"),
    ]
    heads = [h for _, h, _ in cols] + ["worst channels (PRD %)"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    for r in rows:
        worst = ", ".join(f"{name} {v:g}" for name, v in r.get("worst_channels", {}).items())
        lines.append("| " + " | ".join(f.format(r[k]) for k, _, f in cols) + f" | {worst} |")
    return "\n".join(lines)
