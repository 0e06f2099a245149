"""Tables (and the SNR figure) of ``eegcodec align eval`` outputs:
``eegcodec bench align-table [--plot FIG.png] DIR... [--codec EVAL.json...]``.

Each DIR holds a ``results.json``; rows are labelled by the run's loss settings and the
simulated response's SNR (from the data folder's ``dataset.json``). p-values are the
block-permutation ones of :func:`eegcodec.align.scoring.block_permutation`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import EegcodecError

HELP = "tables (and the SNR figure) of eegcodec align eval outputs (prints Markdown)"
INPUTS = "folders written by eegcodec align eval (each holds results.json)"
OUT = False


def add_arguments(parser) -> None:
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw retrieval against SNR")
    parser.add_argument(
        "--codec", nargs="+", type=Path, default=[], metavar="EVAL_JSON", help="eegcodec eval --json outputs"
    )


def main(args, say) -> None:
    if not args.inputs:
        raise EegcodecError("bench align-table needs eegcodec align eval folders")
    dirs = [Path(d) for d in args.inputs]
    sys.stdout.write(table(dirs))
    if args.codec:
        sys.stdout.write("\n" + codec_table(args.codec))
    if args.plot:
        plot_snr(dirs, args.plot)


def _snr(result: dict) -> float | None:
    meta = Path(result.get("data", "")) / "dataset.json"
    try:
        return float(json.loads(meta.read_text())["config"]["snr_db"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _p(score: dict, key: str) -> str:
    nb = (score or {}).get("block_null")
    return f"{nb[key]:.3f}" if nb else "-"


def _encoder_b(result: dict) -> str:
    blocks = result.get("finetune_b_blocks", 0)
    return f"tuned (last {blocks} blocks)" if blocks else "frozen"


def table(dirs: list[Path]) -> str:
    head = (
        "| run | L_align | λ1 | λ2 | encoder B | best step | SNR dB | test top-1 % [95 % CI] | "
        "test top-10 % [95 % CI] | test p | "
        "control top-1 % | "
        "control top-10 % | control p (top-1, top-10) | chance top-1 / top-10 % | top-10 % via Ê_A | "
        "MSE(Ê_A,E_A) | chance MSE | cos(Ê_A,E_A) |"
    )
    from ..align.evaluate import percent_with_ci  # torch: loaded when a table is made

    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    results = [json.loads((d / "results.json").read_text()) for d in dirs]
    for r in results:
        t, c, ch, loss = r["test"], r["control"] or {}, r["chance"], r["loss"]
        name = loss["align"] if loss["lambda_align"] > 0 else "(none)"
        snr = _snr(r)
        lines.append(
            f"| {Path(r['run']).name} | {name} | {loss['lambda_align']:g} | {loss['lambda_rec']:g} | "
            f"{_encoder_b(r)} | "
            f"{r.get('steps', '-')} | "
            f"{'-' if snr is None else f'{snr:g}'} | {percent_with_ci(t, 'top1')} | "
            f"{percent_with_ci(t, 'top10')} | "
            f"{_p(t, 'p_top1')} | {100 * c.get('top1', float('nan')):.1f} | "
            f"{100 * c.get('top10', float('nan')):.1f} | {_p(c, 'p_top1')}, {_p(c, 'p_top10')} | "
            f"{100 * ch['top1']:.1f} / {100 * ch['top10']:.1f} | {100 * t['top10_pred']:.1f} | "
            f"{t['mse']:.3f} | {ch['mse']:.3f} | {t['cosine']:.3f} |"
        )
    first = results[0]["test"]
    lines.append("")
    lines.append(
        f"{first['n_windows']} test EEG windows (held-out subjects x held-out stimuli), "
        f"{first['n_candidates']} candidate segments. Control: the same windows of background EEG "
        f"without the response. p: block permutation (each subject's stimulus labels permuted, "
        f"windows of one subject and stimulus together), 2,000 draws; chance needs p > 0.05. "
        f"CI: bootstrap over the same blocks (subject x stimulus), 2,000 draws."
    )
    return "\n".join(lines) + "\n"


def codec_table(paths: list[Path]) -> str:
    """``eegcodec eval --json`` outputs, one table each, headed by the model that made them."""
    from ..evaluate import format_table

    parts = []
    for path in paths:
        rows = json.loads(path.read_text())
        parts.append(f"Codec `{rows[0]['model']}` (`{path.name}`):\n\n{format_table(rows)}\n")
    return "\n".join(parts)


def plot_snr(dirs: list[Path], path: Path) -> None:
    """Test and control top-1/top-10 against the simulated response's SNR."""
    from .common import pyplot

    results = sorted(
        (r for r in (json.loads((d / "results.json").read_text()) for d in dirs) if _snr(r) is not None),
        key=_snr,
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    snr = [_snr(r) for r in results]
    for key, style in (("top1", "o-"), ("top10", "s-")):
        ax.plot(snr, [100 * r["test"][key] for r in results], style, label=f"test {key}")
        ax.plot(
            snr,
            [100 * (r["control"] or {}).get(key, float("nan")) for r in results],
            style,
            alpha=0.4,
            label=f"control {key}",
        )
        ax.plot(snr, [100 * r["chance"][key] for r in results], "k:", lw=1)
    ax.set_xlabel("simulated response SNR, dB (power above 1 Hz)")
    ax.set_ylabel("retrieval accuracy %")
    ax.set_title("retrieval vs SNR (dotted: chance)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
