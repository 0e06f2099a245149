"""The ``bench downstream`` report: its Markdown tables and figure, from the results
:mod:`.downstream` measures."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .common import hardware_line, md_table, pyplot, save_figure


def report(res: dict) -> str:
    lines = [
        "# Downstream benchmark\n",
        f"Hardware: {hardware_line(res['hardware'])}. Run time {res['elapsed_s']} s. Classifier: log band "
        f"power per channel, "
        "centred per CV group -> standardise -> logistic regression; group k-fold (no subject/run/block in "
        "both train and test); accuracy "
        "pooled over folds with 95 % Wilson interval.\n",
    ]
    for t in res["tasks"]:
        ref = t["original"]
        lines.append(f"## {t['task']}: {t['classes'][0]} vs {t['classes'][1]}\n")
        lines.append(
            f"{t['windows']} windows ({t['class_counts'][0]} / {t['class_counts'][1]}) from "
            f"{len(t['files'])} recordings, "
            f"{len(t['groups'])} CV groups; chance {100 * t['chance']:.0f} %. Trained and tested on the "
            f"original: "
            f"**{100 * ref['accuracy']:.1f} %** [{100 * ref['ci95'][0]:.1f}, {100 * ref['ci95'][1]:.1f}].\n"
        )
        rows = []
        for c in sorted(
            t["conditions"],
            key=lambda c: (c.get("model", c["coder"]), c["codebooks"], "matched_to" in c, c["coder"]),
        ):
            rows.append(
                [c["condition"], c["bits_per_sample"], *[_acc(c[k]) for k in ("orig_recon", "recon_recon")]]
            )
        lines.append(
            md_table(
                [
                    "condition",
                    "bits/sample",
                    "train original, test reconstructed %",
                    "train and test reconstructed %",
                ],
                rows,
                {1: ".3f"},
            )
            + "\n"
        )
        for fig in res.get("figures", []):
            if fig == f"downstream_{t['task']}.png":
                lines.append(f"![{t['task']}]({fig})\n")
    return "\n".join(lines)


def _acc(a: dict) -> str:
    return f"{100 * a['accuracy']:.1f} [{100 * a['ci95'][0]:.1f}, {100 * a['ci95'][1]:.1f}]"


def plot(res: dict, out: Path) -> list[str]:
    """Accuracy (train original, test reconstructed) against bits/sample, one panel per task."""
    plt = pyplot()
    names = []
    for t in res["tasks"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        by_coder = defaultdict(list)
        for c in t["conditions"]:
            by_coder[c["coder"]].append(c)
        for coder, cs in by_coder.items():
            cs = sorted(cs, key=lambda c: c["bits_per_sample"])
            acc = np.array([c["orig_recon"]["accuracy"] for c in cs]) * 100
            ci = np.array([c["orig_recon"]["ci95"] for c in cs]).T * 100
            ax.errorbar(
                [c["bits_per_sample"] for c in cs],
                acc,
                yerr=[acc - ci[0], ci[1] - acc],
                marker="o",
                capsize=3,
                ls="-" if coder in {m["label"] for m in res["models"]} else "--",
                label=coder,
            )
        ax.axhline(100 * t["original"]["accuracy"], color="black", lw=1, label="original")
        ax.axhline(100 * t["chance"], color="gray", ls=":", lw=1, label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("bits per sample")
        ax.set_ylabel("accuracy % (train original, test reconstructed)")
        ax.set_title(f"{t['task']}: {t['classes'][0]} vs {t['classes'][1]}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        names.append(save_figure(fig, out / f"downstream_{t['task']}.png"))
    return names
