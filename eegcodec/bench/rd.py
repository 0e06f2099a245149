"""``eegcodec bench rd``: rate-distortion of neural models against classical coders.

For every recording (its first ``crop_seconds``), every model runs at every codebook
depth through the real pipeline (bits per sample from the ``.eegc`` payload: codes +
side data over coded channels x samples), and on the same coded channels the classical
coders run: FLAC, zstd and eegcodec's ``--lossless`` losslessly; the DCT, wavelet and
multichannel PCA + DCT coders over a sweep of quantiser steps; eegcodec's ``--prd`` (the
transform layer, :mod:`eegcodec.transform`) over :data:`PRD_TARGETS`; ``--max-error`` at
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
from scipy.signal import welch

from ..adapt import AdapterConfig, ChunkLayout
from ..chunks import ExactStream, exact_span
from ..container import Archive
from ..errors import EegcodecError
from ..evaluate import evaluate_raw
from ..exact import decode_block
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
    hardware_line,
    load_models,
    md_table,
    model_card,
    model_labels,
    pyplot,
    quick_option,
    recordings,
    save_figure,
    write_outputs,
)

#: target PRDs (%) of the ``compress --prd`` curve (eegcodec's transform layer, no model)
PRD_TARGETS = (2, 5, 10, 15, 20, 30, 45, 60)
#: the coders every neural row is compared with at its own bits per sample
ANCHORS = (*LOSSY_CODERS, "eegc_prd")

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
#: PRD levels (%) at which the bits each coder needs are reported.
PRD_LEVELS = (10.0, 20.0, 30.0, 40.0, 50.0)
#: Bits/sample at which each curve's PRD is reported in the axes table.
BPS_LEVELS = (0.25, 0.5, 1.0)


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


def report(res: dict) -> str:
    """The Markdown report: per dataset, model depths beside the classical coders at the same bits."""
    lines = [
        "# Rate-distortion benchmark\n",
        f"Hardware: {hardware_line(res['hardware'])}. Crops: first {res['config']['crop_seconds']} s of "
        f"each recording. "
        f"Bits/sample: real payload over coded channels x samples; PRD and r are medians over channels; "
        f"classical PRD 'at same bps' is interpolated along that coder's step sweep on the same file. Run "
        f"time {res['elapsed_s']} s.\n",
    ]
    models = {m["label"]: m for m in res["models"]}
    for ds, entry in res["summary"].items():
        n_files = len({f["file"] for f in res["files"] if f["dataset"] == ds})
        lines.append(f"## {ds} ({n_files} recording{'s' if n_files > 1 else ''})\n")
        lines += _depth_table(res, ds, entry, models)
        lines += _code_table(entry, models)
        lines += _lossless_line(entry["lossless"])
        lines += _near_lossless_table(
            [r for r in res.get("near_lossless", []) if r["dataset"] == ds], entry["lossless"]
        )
        rows = [[who, *[v[f"{lv:g}"] for lv in PRD_LEVELS]] for who, v in entry["bps_for_prd"].items()]
        lines.append(
            "Bits/sample needed for a PRD (interpolated along each curve; - where the curve does not reach "
            "it):\n"
        )
        fmt = {i + 1: ".3f" for i in range(len(PRD_LEVELS))}
        lines.append(md_table(["coder"] + [f"PRD {lv:g} %" for lv in PRD_LEVELS], rows, fmt) + "\n")
        lines.append(same_prd_table(entry, list(models)))
        lines += _band_table(entry, models)
        lines += [
            f"![rate-distortion {ds}]({fig})\n"
            for fig in res.get("figures", [])
            if fig.startswith(f"rd_{ds}")
        ]
    if len({(m["codebook_size"], m["model_rate"]) for m in models.values()}) > 1:
        lines += _axes_table(res, models)
    other = [f for f in res.get("figures", []) if not f.startswith("rd_")]
    if other:
        lines.append("## Reconstructions\n")
        lines += [f"![{f}]({f})\n" for f in other]
    return "\n".join(lines)


def _depth_table(res: dict, ds: str, entry: dict, models: dict) -> list[str]:
    """Every model depth's mean metrics, with each classical lossy coder's PRD at the same bits."""
    rows = []
    for label in models:
        for p in entry["curves"].get(label, []):
            same = [
                r
                for r in res["neural"]
                if r["dataset"] == ds and r["model"] == label and r["codebooks"] == p["level"]
            ]
            rivals = [
                float(np.nanmean([r.get(f"{c}_prd_percent_at_same_bps", np.nan) for r in same]))
                for c in ANCHORS
            ]
            rows.append(
                [
                    label,
                    p["level"],
                    p["bits_per_sample"],
                    p["cr16"],
                    p["prd_percent"],
                    p.get("prd_p90_percent", np.nan),
                    p["snr_db"],
                    p["pearson_r"],
                    p["spectral_error_db"],
                    *rivals,
                ]
            )
    if not rows:
        return []
    head = [
        "model",
        "codebooks",
        "bits/sample",
        "CR16",
        "PRD %",
        "PRD p90 %",
        "SNR dB",
        "r",
        "spectral err dB",
        *[f"{c} PRD % at same bps" for c in ANCHORS],
    ]
    fmt = {
        2: ".3f",
        3: ".1f",
        4: ".1f",
        5: ".1f",
        6: ".2f",
        7: ".3f",
        8: ".2f",
        **{9 + i: ".1f" for i in range(len(ANCHORS))},
    }
    return [md_table(head, rows, fmt) + "\n"]


def _code_table(entry: dict, models: dict) -> list[str]:
    """Each model depth's bits per code as stored beside the empirical entropy of its codes."""
    rows = [
        [label, p["level"], p["bits_per_code"], p["code_entropy_bits"]]
        for label in models
        for p in entry["curves"].get(label, [])
        if "bits_per_code" in p
    ]
    if not rows:
        return []
    return [
        "Bits per code: as the file stores them (under the model's prior where it has one, else "
        "fixed width), and the empirical entropy of the file's own codes (plug-in, per codebook, "
        "mean over codebooks and files: what a coder knowing each file's code frequencies would "
        "spend; a prior using context can go below it; biased low on short files):\n",
        md_table(
            ["model", "codebooks", "bits/code stored", "empirical entropy bits/code"],
            rows,
            {2: ".2f", 3: ".2f"},
        )
        + "\n",
    ]


def _lossless_line(ll: dict) -> list[str]:
    if not ll:
        return []
    coders = "; ".join(
        f"{c.upper()} {v['bits_per_sample']:.2f} bits/sample (CR16 {16 / v['bits_per_sample']:.2f})"
        for c, v in ll.items()
    )
    exact = (
        ""
        if all(v["exact"] for v in ll.values())
        else " (float data: integers at 24-bit resolution, not the file's)"
    )
    return [
        f"Lossless, same channels: {coders}; samples use {max(v['sample_bits'] for v in ll.values())} bits"
        f"{exact}.\n"
    ]


def _near_lossless_table(rows: list[dict], lossless: dict) -> list[str]:
    """``--max-error`` bits per sample at each bound (mean over files), beside FLAC's lossless bits."""
    if not rows:
        return []
    flac = lossless.get("flac", {}).get("bits_per_sample", float("nan"))
    table = []
    for uv in sorted({r["max_error_uv"] for r in rows}):
        rs = [r for r in rows if r["max_error_uv"] == uv]
        bps = float(np.mean([r["bits_per_sample"] for r in rs]))
        table.append([uv, bps, bps / flac, max(r["measured_max_uv"] for r in rs)])
    head = ["max error uV", "bits/sample", "x FLAC (lossless)", "largest error measured uV"]
    return [
        "eegcodec --max-error (every sample of every channel within the bound):\n",
        md_table(head, table, {1: ".3f", 2: ".2f", 3: ".3f"}) + "\n",
    ]


def _band_table(entry: dict, models: dict) -> list[str]:
    """Band power errors of every model depth, and of the classical coders at each model's default depth."""
    rows = [
        [who, p["level"], p["bits_per_sample"], *[p[f"band_error_db_{b}"] for b in BANDS]]
        for who in models
        for p in entry["curves"].get(who, [])
    ]
    for m in models.values():
        ref = [p for p in entry["curves"].get(m["label"], []) if p["level"] == m["default_codebooks"]]
        for who, pts in entry["curves"].items() if ref else ():
            if who not in models:
                bps, x = ref[0]["bits_per_sample"], [p["bits_per_sample"] for p in pts]
                errs = [interpolate_at(x, [p[f"band_error_db_{b}"] for p in pts], bps) for b in BANDS]
                rows.append([who, f"at {m['label']} N={m['default_codebooks']}", bps, *errs])
    fmt = {2: ".3f", **{i: ".2f" for i in range(3, 3 + len(BANDS))}}
    return [
        "Band power error, dB (|10 log10 P_rec/P_orig| per band, mean over channels; the classical coders "
        "at the bits/sample of each model's default depth):\n",
        md_table(["coder", "codebooks", "bits/sample", *BANDS], rows, fmt) + "\n",
    ]


def _axes_table(res: dict, models: dict) -> list[str]:
    """PRD at fixed bits per model when the models differ in vocabulary size or input rate."""
    rows = []
    for ds, entry in res["summary"].items():
        for label, m in models.items():
            v = entry["prd_at_bps"].get(label, {})
            best = min((p["prd_percent"] for p in entry["curves"].get(label, [])), default=float("nan"))
            rows.append(
                [
                    ds,
                    label,
                    m["codebook_size"],
                    m["model_rate"],
                    m["hop"],
                    *[v.get(f"{lv:g}", float("nan")) for lv in BPS_LEVELS],
                    best,
                ]
            )
    head = [
        "dataset",
        "model",
        "codebook size",
        "input rate Hz",
        "hop",
        *[f"PRD % at {lv:g} bps" for lv in BPS_LEVELS],
        "best PRD %",
    ]
    return [
        "## Axes: vocabulary size and input rate\n",
        md_table(head, rows, {5: ".1f", 6: ".1f", 7: ".1f", 8: ".1f"}) + "\n",
    ]


def same_prd_table(entry: dict, models: list[str]) -> str:
    """Per model, one table: at each depth, the bits/sample every other curve needs for the
    same PRD (interpolated along it) and how many times the model's bits that is."""
    tables = []
    for label in models:
        rivals = [w for w in entry["curves"] if w != label]
        rows = []
        for p in entry["curves"].get(label, []):
            row = [label, p["level"], p["bits_per_sample"], p["prd_percent"]]
            for who in rivals:
                pts = entry["curves"][who]
                need = interpolate_at(
                    [q["prd_percent"] for q in pts], [q["bits_per_sample"] for q in pts], p["prd_percent"]
                )
                row += [need, need / p["bits_per_sample"]]
            rows.append(row)
        header = ["model", "codebooks", "bits/sample", "PRD %"] + [
            c for w in rivals for c in (f"{w}: bits for same PRD", "x")
        ]
        fmt = {
            2: ".3f",
            3: ".1f",
            **{4 + 2 * i: ".3f" for i in range(len(rivals))},
            **{5 + 2 * i: ".2f" for i in range(len(rivals))},
        }
        tables.append(md_table(header, rows, fmt))
    return (
        "Bits/sample the other coders need for the PRD each model depth reaches (x: times the model's bits; "
        "- outside a curve's range):\n\n" + "\n\n".join(tables) + "\n"
    )


def plot(res: dict, kept: dict[str, _Kept], out: Path) -> list[str]:
    """RD curves per dataset; overlay and PSD figures for the first recording of each dataset."""
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for ds, entry in res["summary"].items():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for who, pts in entry["curves"].items():
            pts = sorted(pts, key=lambda p: p["bits_per_sample"])
            neural = who in {m["label"] for m in res["models"]}
            style = dict(marker="o", lw=2) if neural else dict(ls="--", lw=1.2)
            for ax, m in zip(axes, ("prd_percent", "spectral_error_db")):
                ax.plot([p["bits_per_sample"] for p in pts], [p[m] for p in pts], label=who, **style)
        for coder, v in entry["lossless"].items():
            axes[0].axvline(v["bits_per_sample"], color="gray", ls=":", lw=1)
            axes[0].text(
                v["bits_per_sample"], 1, f" {coder}", rotation=90, va="bottom", fontsize=8, color="gray"
            )
        for ax, title in zip(axes, ("PRD % (median over channels)", "spectral error dB (1-45 Hz)")):
            ax.set_xscale("log")
            ax.set_xlabel("bits per sample")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[0].set_ylim(0, 110)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{ds}: rate-distortion")
        names.append(save_figure(fig, out / f"rd_{ds}.png"))
    for fname, k in kept.items():
        names += _plot_reconstructions(plt, fname, k, res["config"], out)
    return names


def _plot_reconstructions(plt, fname: str, k: _Kept, config: dict, out: Path) -> list[str]:
    """Overlay of original and reconstructions, and their mean power spectra, for one recording."""
    names = []
    stem = Path(fname).stem
    n = min(k.x.shape[1], int(config["plot_seconds"] * k.sfreq))
    start = max(0, k.x.shape[1] // 2 - n // 2)
    chans = list(range(min(config["plot_channels"], k.x.shape[0])))
    fig, axes = plt.subplots(len(chans), 1, figsize=(11, 2.2 * len(chans)), sharex=True, squeeze=False)
    t = np.arange(start, start + n) / k.sfreq
    for ax, c in zip(axes[:, 0], chans):
        ax.plot(t, k.x[c, start : start + n] * 1e6, color="black", lw=1.2, label="original")
        for who, y in k.recon.items():
            ax.plot(t, y[c, start : start + n] * 1e6, lw=0.9, label=who)
        ax.set_ylabel(f"{k.names[c]} µV")
    axes[0, 0].legend(fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(f"{fname}: original vs reconstructed")
    names.append(save_figure(fig, out / f"overlay_{stem}.png"))
    fig, ax = plt.subplots(figsize=(7, 4))
    nper = int(min(k.x.shape[1], 2 * k.sfreq))
    for who, y in [("original", k.x), *k.recon.items()]:
        f, p = welch(y, fs=k.sfreq, nperseg=nper, axis=-1)
        ax.semilogy(
            f,
            p.mean(axis=0),
            lw=1.5 if who == "original" else 1,
            color="black" if who == "original" else None,
            label=who,
        )
    ax.set_xlabel("Hz")
    ax.set_ylabel("PSD V²/Hz (mean over channels)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{fname}: power spectrum")
    names.append(save_figure(fig, out / f"psd_{stem}.png"))
    return names
