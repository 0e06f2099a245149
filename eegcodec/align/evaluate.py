"""Evaluation of a trained mapper, and EEG -> audio decoding.

Segment identification (as brainmagick reports it): for each EEG window of a split, rank
all distinct audio segments of that split by cosine similarity between its Z_B and their
Z_A (each flattened over dimensions and frames); top-k accuracy is the fraction of
windows whose true segment ranks within k. Chance: k / M for M candidates. The same
ranking in audio-embedding space (Ê_A against each candidate's E_A: ``top1_pred``,
``top10_pred``) needs no M_A, so it also scores mappers trained without L_align. Ê_A is scored
against its E_A by MSE (standardised units; 1 = predicting the mean) and cosine; their
chance values pair each Ê_A with another segment's E_A.

The control replaces the EEG by the same background recordings without the simulated
response (``manifest_control.csv``), run through the same trained mapper: accuracy must
fall to chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..audio import write_wav
from ..errors import EegcodecError
from ..io import atomic_write_bytes
from .config import align_config_from_dict
from .dataset import _read_eeg, embed_manifest
from .encoders import eeg_window
from .scoring import block_permutation, candidate_sweep, chance, score_split, split_candidates, unit
from .trainer import dataset_kind, load_mapper


def evaluate_run(
    run: str | Path,
    data_dir: str | Path,
    out: str | Path,
    split: str = "test",
    examples: int = 3,
    show_progress: bool = True,
) -> dict:
    """``eegcodec align eval``: test, control and chance scores -> ``out/results.json``,
    ``out/report.md``, figures and example WAVs (true segment through the audio codec,
    and the audio predicted from EEG)."""

    model, blob, enc_a, enc_b, grid = load_mapper(run)
    cfg = align_config_from_dict(blob["recipe"])
    cfg.data.root = str(data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = embed_manifest(cfg.data.manifest, cfg, enc_a, enc_b, show_progress)
    rows = data.rows(split)
    if len(rows) == 0:
        raise EegcodecError(f"no {split} windows in {data_dir} under the recipe's splits")
    test = score_split(model, data, rows)
    test["block_null"] = block_permutation(model, data, rows)
    test["by_candidates"] = candidate_sweep(model, data, rows)
    res = {
        "split": split,
        "test": test,
        "chance": chance(test["n_candidates"], test),
        "splits": data.summary(),
        "data": str(data_dir),
        "run": str(run),
        "encoder_a": blob["encoder_a"],
        "encoder_b": blob["encoder_b"],
        "loss": blob["recipe"]["loss"],
        "finetune_b_blocks": cfg.finetune_b.blocks,
        "steps": blob["training"]["step"],
        "label": dataset_kind(Path(data_dir)),
    }
    control_path = Path(data_dir) / cfg.data.control_manifest
    if control_path.exists():
        ctl = embed_manifest(cfg.data.control_manifest, cfg, enc_a, enc_b, show_progress)
        res["control"] = score_split(model, ctl, ctl.rows(split))
        res["control"]["block_null"] = block_permutation(model, ctl, ctl.rows(split))
    else:
        res["control"] = None
    atomic_write_bytes(out / "results.json", json.dumps(res, indent=1).encode())
    _figures(model, data, rows, out)
    for i, r in enumerate(rows[torch.linspace(0, len(rows) - 1, examples).long()] if examples else []):
        seg = data.e_a[data.segment[r]]
        with torch.no_grad():
            e_hat = model.unstandardise_a(model.predict(model.map_b(data.e_b[r : r + 1])))[0]
        write_wav(out / f"example{i}_codec.wav", enc_a.decode(seg), enc_a.rate)
        write_wav(out / f"example{i}_from_eeg.wav", enc_a.decode(e_hat), enc_a.rate)
    (out / "report.md").write_text(report(res))
    return res


def percent_with_ci(score: dict, key: str) -> str:
    """``score[key]`` as "33.3 [25.0-41.7]" (%, with the block bootstrap's 95 % interval when stored)."""
    ci = (score.get("block_null") or {}).get(f"ci95_{key}")
    value = f"{100 * score[key]:.1f}"
    return f"{value} [{100 * ci[0]:.1f}-{100 * ci[1]:.1f}]" if ci else value


def report(res: dict) -> str:
    """Markdown summary of :func:`evaluate_run`'s results."""
    t, c, ch = res["test"], res["control"], res["chance"]
    lines = [
        f"# align eval: {res['run']}",
        "",
        f"Data: `{res['data']}`" + (f" (**{res['label']}**)" if res["label"] else ""),
        f"Split `{res['split']}`: {t['n_windows']} EEG windows, {t['n_candidates']} candidate audio "
        f"segments; "
        f"loss {res['loss']['align']} (lambda_align {res['loss']['lambda_align']}, lambda_rec "
        f"{res['loss']['lambda_rec']}).",
        "",
        "| | top-1 % [95 % CI] | top-10 % [95 % CI] | block-permutation p (top-1, top-10) | median rank | "
        "MSE(Ê_A, E_A) | cos(Ê_A, E_A) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("test", t), ("control (background only)", c)):
        if r:
            nb = r.get("block_null") or {}
            p = f"{nb['p_top1']:.3f}, {nb['p_top10']:.3f}" if nb else "-"
            lines.append(
                f"| {name} | {percent_with_ci(r, 'top1')} | {percent_with_ci(r, 'top10')} | {p} | "
                f"{r['median_rank']:.0f} | "
                f"{r['mse']:.3f} | {r['cosine']:.3f} |"
            )
    nb = t.get("block_null") or {}
    q = f"95 % of the null below {100 * nb['null95_top1']:.1f}, {100 * nb['null95_top10']:.1f}" if nb else "-"
    lines.append(
        f"| chance | {100 * ch['top1']:.1f} | {100 * ch['top10']:.1f} | {q} | "
        f"{(ch['n_candidates'] + 1) / 2:.0f} | {ch['mse']:.3f} | {ch['cosine']:.3f} |"
    )
    sweep = t.get("by_candidates") or []
    if sweep:
        lines += [
            "",
            "| stimuli in the candidate set | candidates | top-1 % | chance % | top-5 % | chance % |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['stimuli']} | {r['candidates']:.0f} | {100 * r['top1']:.1f} | "
            f"{100 * r['chance_top1']:.1f} | {100 * r['top5']:.1f} | {100 * r['chance_top5']:.1f} |"
            for r in sweep
        ]
    lines += [
        "",
        "MSE in standardised E_A units (1 = predicting the training mean); chance pairs each prediction "
        "with another segment. Block permutation: each subject's stimulus labels permuted among the split's "
        "stimuli (all windows of a subject and stimulus move together, keeping their offsets), 2,000 draws; "
        "p = share of draws scoring at least as high (overlapping windows make nominal chance too narrow).",
        "`similarity.png`: cosine similarity of every test EEG window (rows) to every candidate segment "
        "(columns), true segment marked.",
        "`example*_codec.wav`: the true segment through the audio codec; `example*_from_eeg.wav`: decoded "
        "from the EEG's prediction.",
    ]
    return "\n".join(lines) + "\n"


def _figures(model, data, rows: torch.Tensor, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cand, truth = split_candidates(data, rows)
    with torch.no_grad():
        model.eval()
        sim = (unit(model.map_b(data.e_b[rows])) @ unit(model.map_a(cand)).t()).numpy()
    order = np.argsort(truth.numpy(), kind="stable")
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(sim[order], aspect="auto", interpolation="nearest", cmap="viridis")
    ax.plot(truth.numpy()[order], np.arange(len(order)), "r.", ms=2, label="true segment")
    ax.set_xlabel("candidate audio segment")
    ax.set_ylabel("EEG window (sorted by true segment)")
    ax.legend(loc="upper right", fontsize=7)
    fig.colorbar(im, ax=ax, label="cosine(Z_B, Z_A)")
    fig.tight_layout()
    fig.savefig(out / "similarity.png", dpi=110)
    plt.close(fig)


def decode_eeg_file(
    run: str | Path,
    eeg_file: str | Path,
    out_wav: str | Path,
    start: float = 0.0,
    seconds: float | None = None,
) -> dict:
    """``eegcodec align decode``: EEG recording -> predicted audio WAV.

    Consecutive windows of the mapper's length from ``start`` (seconds) over ``seconds``
    (default: to the end) go through encoder B, M_B and P; the Ê_A are joined frame by
    frame and decoded by encoder A's decoder. Returns what was done."""

    model, blob, enc_a, enc_b, grid = load_mapper(run)
    data, sfreq, names = _read_eeg(Path(eeg_file))
    total = data.shape[1] / sfreq
    span = (total - start) if seconds is None else seconds
    w, ctx = grid.window_seconds, grid.context_seconds
    n = int(np.floor(span / w + 1e-9))
    if start < 0 or start + w > total or n < 1:
        raise EegcodecError(
            f"{eeg_file} has {total:.1f} s; need at least one {w:g}-s window from {start:g} s"
        )
    parts = []
    for i in range(n):
        x = enc_b.codec_input(eeg_window(data, sfreq, start + i * w - ctx, w + 2 * ctx), sfreq, names)
        with torch.no_grad():
            parts.append(model.unstandardise_a(model.predict(model.map_b(enc_b.embed(x, names)[None])))[0])
    audio = enc_a.decode(torch.cat(parts, dim=-1))
    write_wav(out_wav, audio, enc_a.rate)
    return {"windows": n, "seconds": n * w, "start": start, "rate": enc_a.rate, "out": str(out_wav)}
