"""Ablation table of ``eegcodec align eval`` outputs: ``python -m eegcodec.bench.align_table DIR...``.

Each DIR holds a ``results.json``; rows are labelled by the run's loss settings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(dirs: list[Path]) -> str:
    head = (
        "| L_align | λ1 | λ2 | test top-1 % | test top-10 % | control top-10 % | chance top-10 % | "
        "top-10 % via Ê_A | MSE(Ê_A,E_A) | chance MSE | cos(Ê_A,E_A) |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    results = [json.loads((d / "results.json").read_text()) for d in dirs]
    for r in results:
        t, c, ch, loss = r["test"], r["control"] or {}, r["chance"], r["loss"]
        name = loss["align"] if loss["lambda_align"] > 0 else "(none)"
        lines.append(
            f"| {name} | {loss['lambda_align']:g} | {loss['lambda_rec']:g} | {100 * t['top1']:.1f} | "
            f"{100 * t['top10']:.1f} | "
            f"{100 * c.get('top10', float('nan')):.1f} | {100 * ch['top10']:.1f} | "
            f"{100 * t['top10_pred']:.1f} | "
            f"{t['mse']:.3f} | {ch['mse']:.3f} | {t['cosine']:.3f} |"
        )
    first = results[0]["test"]
    lines.append("")
    lines.append(
        f"{first['n_windows']} test EEG windows (held-out subjects x held-out stimuli), "
        f"{first['n_candidates']} candidate segments; "
        f"chance top-1 {100 / first['n_candidates']:.1f} %. Control: the same windows of background EEG "
        f"without the response."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    dirs = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not dirs:
        print("usage: python -m eegcodec.bench.align_table EVAL_DIR...", file=sys.stderr)
        return 2
    sys.stdout.write(table(dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
