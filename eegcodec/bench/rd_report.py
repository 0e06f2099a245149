"""The ``bench rd`` report: its Markdown tables and figures, from the results :mod:`.rd` measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import welch

from ..metrics import BANDS
from .classical import LOSSY_CODERS, interpolate_at
from .common import hardware_line, md_table, pyplot, save_figure

#: the coders every neural row is compared with at its own bits per sample
ANCHORS = (*LOSSY_CODERS, "eegc_prd")
#: PRD levels (%) at which the bits each coder needs are reported.
PRD_LEVELS = (10.0, 20.0, 30.0, 40.0, 50.0)
#: Bits/sample at which each curve's PRD is reported in the axes table.
BPS_LEVELS = (0.25, 0.5, 1.0)


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


def plot(res: dict, kept: dict, out: Path) -> list[str]:
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


def _plot_reconstructions(plt, fname: str, k, config: dict, out: Path) -> list[str]:
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
