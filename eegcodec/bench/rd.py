"""``eegcodec bench rd``: rate-distortion of neural models against classical coders.

For every recording (its first ``crop_seconds``), every model runs at every codebook
depth through the real pipeline (bits per sample from the ``.eegc`` payload: codes +
side data over coded channels x samples), and on the same coded channels the classical
coders run: FLAC, zstd and eegcodec's ``--lossless`` losslessly; the DCT, wavelet and
multichannel PCA + DCT coders over a sweep of quantiser steps; eegcodec's ``--prd`` (the
transform layer, :mod:`eegcodec.format.transform`) over :data:`PRD_TARGETS`; ``--max-error`` at
:data:`MAX_ERROR_UV`. Metrics: bits/sample, CR16 (16 / bits per sample), PRD, SNR,
Pearson r, spectral error and per-band power error (:mod:`eegcodec.metrics`).

Curves are averaged per dataset (a recording's folder). Models that differ in
vocabulary size or input rate give the paper's other two axes (table "Axes").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..adapt import AdapterConfig, ChunkLayout
from ..chunks import ExactStream, exact_span
from ..errors import EegcodecError
from ..evaluate import evaluate_raw
from ..format.container import Archive
from ..format.exact import decode_block
from ..io import find_recordings, load_crop
from ..metrics import BANDS, bits_per_sample, reconstruction_metrics
from ..pipeline import compress_raw, decompress_archive
from .classical import (
    LOSSY_CODERS,
    flac_bytes,
    integer_samples,
    interpolate_at,
    step_for_bps,
    step_sweep,
    zstd_bytes,
)
from .common import (
    Clock,
    codebooks_option,
    crop_option,
    dataset_of,
    hardware,
    load_models,
    model_card,
    model_labels,
    quick_option,
    recordings,
    write_outputs,
)
from .rd_report import ANCHORS, BPS_LEVELS, PRD_LEVELS, plot, report

#: target PRDs (%) of the ``compress --prd`` curve (eegcodec's transform layer, no model)
PRD_TARGETS = (2, 5, 10, 15, 20, 30, 45, 60)

#: bounds of the near-lossless table (microvolts)
MAX_ERROR_UV = (0.5, 1.0, 2.0, 5.0)
METRICS = [
    "bits_per_sample",
    "cr16",
    "prd_percent",
    "prd_p90_percent",
    "snr_db",
    "pearson_r",
    "spectral_error_db",
    "bits_per_code",
    "code_entropy_bits",
] + [f"band_error_db_{b}" for b in BANDS]


@dataclass
class RDConfig:
    crop_seconds: float | None = 60.0  #: seconds from the start of each recording (None: all)
    codebooks: list[int] | None = None  #: depths to run (None: 1..max of each model)
    n_steps: int = 24  #: quantiser steps in the classical sweep
    plot_seconds: float = 4.0  #: length of the overlay figure
    plot_channels: int = 3  #: channels in the overlay figure
    figures: bool = True

    @classmethod
    def quick(cls) -> RDConfig:
        return cls(crop_seconds=10.0, n_steps=6, figures=True)


HELP = "bits vs fidelity, beside classical coders"
MODELS = True


def add_arguments(parser) -> None:
    codebooks_option(parser, "all")
    crop_option(parser)
    quick_option(parser)


def main(args, say) -> None:
    recordings(args.inputs, "rd")
    cfg = RDConfig.quick() if args.quick else RDConfig()
    cfg.crop_seconds = args.crop if args.crop is not None else cfg.crop_seconds
    cfg.codebooks = args.codebooks or cfg.codebooks
    models, labels = model_labels(args.models)
    run(args.inputs, models, Path(args.out), cfg, labels=labels, progress=say)


@dataclass
class _Kept:
    """The reconstructions one recording's figures show (model default depth, DCT at its bps)."""

    x: np.ndarray
    sfreq: float
    names: list[str]
    recon: dict[str, np.ndarray] = field(default_factory=dict)
    target_bps: float | None = None  #: the first model's bits/sample at the depth shown


def run(
    inputs: list[str],
    model_names: list[str],
    out: Path,
    cfg: RDConfig,
    labels: list[str] | None = None,
    progress=print,
) -> dict:
    """Run the benchmark; write results.json, report.md and figures into ``out``; return the results."""
    clock = Clock()
    files = find_recordings(inputs)
    if not model_names:
        raise EegcodecError("bench rd needs at least one model (model_names)")
    codecs = load_models(model_names)
    labels = [lab or c.info.name for c, lab in zip(codecs, labels or [None] * len(codecs))]
    neural, classical, lossless, near, file_rows = [], [], [], [], []
    kept: dict[str, _Kept] = {}
    datasets_plotted: set[str] = set()
    for path in files:
        progress(f"rd: {path}")
        raw = load_crop(path, cfg.crop_seconds)
        ds, sfreq = dataset_of(path), raw.info["sfreq"]
        plot_this = cfg.figures and ds not in datasets_plotted
        rows, coded = _neural_rows(path, raw, codecs, labels, cfg, kept if plot_this else None)
        neural += [{**r, "dataset": ds} for r in rows]
        file_rows.append(_reference_rows(path, raw, coded, ds, cfg, classical, lossless, near))
        if path.name in kept:
            datasets_plotted.add(ds)
            k = kept[path.name]
            _, rec, reached = step_for_bps(LOSSY_CODERS["dct"], k.x, sfreq, k.target_bps)
            k.recon[f"DCT ({reached:.2f} bits/sample)"] = rec
    _add_same_bps_columns(neural, classical)
    results = {
        "benchmark": "rd",
        "config": asdict(cfg),
        "hardware": hardware(),
        "models": [{**model_card(c), "label": lab} for c, lab in zip(codecs, labels)],
        "files": file_rows,
        "neural": neural,
        "classical": classical,
        "lossless": lossless,
        "near_lossless": near,
        "summary": summarise(neural, classical, lossless),
        "elapsed_s": clock.seconds(),
    }
    results["figures"] = plot(results, kept, out) if cfg.figures else []
    write_outputs(out, results, report(results))
    return results


def _reference_rows(
    path: Path, raw, coded: list[str], ds: str, cfg: RDConfig, classical, lossless, near
) -> dict:
    """The classical coders (lossy sweeps, lossless) and eegcodec's near-lossless modes on the
    coded channels of one recording, appended to the lists; returns the file's row."""
    x, sfreq = raw.get_data(picks=coded), raw.info["sfreq"]
    rows, exact = classical_rows(x, sfreq, cfg.n_steps)
    tag = {"file": path.name, "dataset": ds}
    lossless += [{**r, **tag} for r in rows if "step_index" not in r]
    classical += [{**r, **tag} for r in rows if "step_index" in r]
    near += [{**r, **tag} for r in near_lossless_rows(x, sfreq)]
    return {
        **tag,
        "path": str(path),
        "coded_channels": len(coded),
        "sfreq": sfreq,
        "seconds": raw.n_times / sfreq,
        "lossless_exact": exact,
    }


def _neural_rows(
    path: Path, raw, codecs, labels, cfg: RDConfig, kept: dict | None
) -> tuple[list[dict], list[str]]:
    """Every model at every depth on one recording: (rows, coded channel names). With ``kept``
    (figures for this file's dataset), each model's reconstruction at its default depth is kept."""
    out, coded = [], None
    for codec, label in zip(codecs, labels):
        depths = [
            k
            for k in (cfg.codebooks or range(1, codec.info.n_codebooks + 1))
            if 1 <= k <= codec.info.n_codebooks
        ]
        default = codec.info.default_codebooks or codec.info.n_codebooks
        shown = min(depths, key=lambda d: abs(d - default))  # the depth the figures show
        keep = {}

        def on_rec(k, picks, rec, keep=keep, shown=shown):
            keep["names"] = [raw.ch_names[c] if isinstance(c, int) else c for c in picks]
            if kept is not None and k == shown:
                keep["y"] = rec.get_data(picks=keep["names"])

        rows = evaluate_raw(raw, codec, depths, name=path.name, on_reconstruction=on_rec)
        for r in rows:
            r["model"] = label
            for key in ("compress_realtime", "decompress_realtime", "file_bytes"):
                r.pop(key, None)
        out += rows
        coded = coded or keep.get("names")
        if "y" in keep:
            if path.name not in kept:
                kept[path.name] = _Kept(raw.get_data(picks=keep["names"]), raw.info["sfreq"], keep["names"])
            k = kept[path.name]
            k.recon[f"{label} (N={shown})"] = keep["y"]
            k.target_bps = k.target_bps or next(r["bits_per_sample"] for r in rows if r["codebooks"] == shown)
    return out, coded


def _add_same_bps_columns(neural: list[dict], classical: list[dict]) -> None:
    """Each neural row gets every classical coder's PRD and spectral error at its bits per sample."""
    for r in neural:
        for name in ANCHORS:
            curve = [c for c in classical if c["file"] == r["file"] and c["coder"] == name]
            bps = [c["bits_per_sample"] for c in curve]
            for m in ("prd_percent", "spectral_error_db"):
                r[f"{name}_{m}_at_same_bps"] = interpolate_at(
                    bps, [c[m] for c in curve], r["bits_per_sample"]
                )


def classical_rows(x: np.ndarray, sfreq: float, n_steps: int) -> tuple[list[dict], bool]:
    """Lossless rows (FLAC, zstd) and lossy rows (DCT, wavelet over ``n_steps`` steps) for
    x [C, N] volts; also whether the file's integer samples were recovered exactly."""
    ints, _, _, exact = integer_samples(x)
    rows = []
    lossless = (
        ("flac", flac_bytes(ints, sfreq)),
        ("zstd", zstd_bytes(ints)),
        ("eegc", eegc_exact_bytes(x, sfreq)[0]),
    )
    for name, nbytes in lossless:
        bps = bits_per_sample(nbytes, *x.shape)
        rows.append(
            {
                "coder": name,
                "bits_per_sample": bps,
                "cr16": 16 / bps,
                "exact": exact,
                "sample_bits": int(np.ceil(np.log2(np.ptp(ints, axis=1).max() + 1))),
            }
        )
    for name, coder in LOSSY_CODERS.items():
        for i, step in enumerate(step_sweep(x, n_steps)):
            rec, nbytes = coder(x, sfreq, float(step))
            bps = bits_per_sample(nbytes, *x.shape)
            rows.append(
                {
                    "coder": name,
                    "step_index": i,
                    "step_volts": float(step),
                    "bits_per_sample": bps,
                    "cr16": 16 / bps,
                    **reconstruction_metrics(x, rec, sfreq),
                }
            )
    return rows + eegc_prd_rows(x, sfreq), exact


def eegc_prd_rows(x: np.ndarray, sfreq: float) -> list[dict]:
    """``compress --prd`` at each of :data:`PRD_TARGETS` on x [C, N] volts: the transform layer
    and side data (header and INFO aside, as for the other coders)."""
    import mne

    raw = mne.io.RawArray(x, mne.create_info(len(x), sfreq, "eeg"), verbose="error")
    rows = []
    for i, target in enumerate(PRD_TARGETS):
        arc = Archive.from_bytes(compress_raw(raw, None, prd=float(target)))
        rec = decompress_archive(arc, None).get_data()
        bps = bits_per_sample(arc.section_sizes["RESD"] + arc.section_sizes["SIDE"], *x.shape)
        row = {"coder": "eegc_prd", "step_index": i, "target_prd": target, "bits_per_sample": bps}
        rows.append({**row, "cr16": 16 / bps, **reconstruction_metrics(x, rec, sfreq)})
    return rows


def eegc_exact_bytes(x: np.ndarray, sfreq: float, bound: float = 0.0) -> tuple[int, float]:
    """(bytes, largest error in volts) of eegcodec's exact stream on x [C, N] volts, chunked as
    ``compress --lossless`` (``bound`` 0) or ``--max-error bound`` chunks it (header and INFO aside)."""
    import mne

    raw = mne.io.RawArray(x, mne.create_info(len(x), sfreq, "eeg"), verbose="error")
    layout = ChunkLayout.for_recording(x.shape[1], sfreq, AdapterConfig())
    stream = ExactStream(raw, list(range(len(x))), layout, bound or None)
    worst = 0.0
    for start, stop in layout.chunks():
        stream.push(start, stop)
        a, b = exact_span(layout, start, stop)
        worst = max(worst, float(np.abs(decode_block(stream.frames[-1], len(x), b - a) - x[:, a:b]).max()))
    return len(stream.payload()), worst


def near_lossless_rows(x: np.ndarray, sfreq: float) -> list[dict]:
    """Bits per sample of ``--max-error`` at each of :data:`MAX_ERROR_UV`, with the error measured."""
    rows = []
    for uv in MAX_ERROR_UV:
        nbytes, worst = eegc_exact_bytes(x, sfreq, uv * 1e-6)
        rows.append(
            {
                "max_error_uv": uv,
                "bits_per_sample": bits_per_sample(nbytes, *x.shape),
                "measured_max_uv": worst * 1e6,
            }
        )
    return rows


def _mean_curves(rows: list[dict], key: str) -> dict[tuple, dict[str, float]]:
    """Average rows over files: (dataset, coder/model, level) -> mean of every metric."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r[key], r.get("codebooks", r.get("step_index")))].append(r)
    return {
        g: {m: float(np.nanmean([r[m] for r in rs])) for m in METRICS if m in rs[0]} | {"files": len(rs)}
        for g, rs in sorted(groups.items())
    }


def summarise(neural: list[dict], classical: list[dict], lossless: list[dict]) -> dict:
    """Per dataset: mean curves of every model and coder; bits for PRD 10/20/30 %; PRD at fixed bits."""
    out = {}
    curves_n, curves_c = _mean_curves(neural, "model"), _mean_curves(classical, "coder")
    for ds in sorted({k[0] for k in list(curves_n) + list(curves_c)}):
        curves = {}
        for source in (curves_n, curves_c):
            for (d, who, level), m in source.items():
                if d == ds:
                    curves.setdefault(who, []).append({"level": level, **m})
        entry = {"curves": curves, "bps_for_prd": {}, "prd_at_bps": {}, "lossless": {}}
        for who, pts in curves.items():
            bps, prd = [p["bits_per_sample"] for p in pts], [p["prd_percent"] for p in pts]
            entry["bps_for_prd"][who] = {f"{lv:g}": interpolate_at(prd, bps, lv) for lv in PRD_LEVELS}
            entry["prd_at_bps"][who] = {f"{lv:g}": interpolate_at(bps, prd, lv) for lv in BPS_LEVELS}
        for coder in sorted({r["coder"] for r in lossless}):
            rs = [r for r in lossless if r["dataset"] == ds and r["coder"] == coder]
            if rs:
                entry["lossless"][coder] = {
                    "bits_per_sample": float(np.mean([r["bits_per_sample"] for r in rs])),
                    "exact": all(r["exact"] for r in rs),
                    "sample_bits": max(r["sample_bits"] for r in rs),
                }
        out[ds] = entry
    return out
