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
import torch.nn.functional as F

from ..errors import EegcodecError
from ..io import atomic_write_bytes


def _unit(z: torch.Tensor) -> torch.Tensor:
    return F.normalize(z.reshape(z.shape[0], -1), dim=1)


@torch.no_grad()
def score_windows(model, e_b: torch.Tensor, candidates: torch.Tensor, truth: torch.Tensor, seed: int = 0) -> dict:
    """Retrieval and prediction scores.

    Parameters
    ----------
    model : :class:`~eegcodec.align.model.AlignModel` (put in eval mode here).
    e_b : [N, D_b, F_B + 2] EEG windows.
    candidates : [M, D_a, F_A] distinct audio segments.
    truth : int64 [N] the row of ``candidates`` each window heard.
    """
    model.eval()
    n, m = len(truth), len(candidates)
    z_b = model.map_b(e_b)
    sim = _unit(z_b) @ _unit(model.map_a(candidates)).t()  # [N, M]
    true_sim = sim[torch.arange(n), truth]
    rank = 1 + (sim > true_sim[:, None]).sum(1)
    e_hat = model.predict(z_b)
    cand_std = model.standardise_a(candidates)
    e_true = cand_std[truth]
    # the same identification in audio-embedding space: Ê_A against every candidate's E_A
    sim_pred = _unit(e_hat) @ _unit(cand_std).t()
    rank_pred = 1 + (sim_pred > sim_pred[torch.arange(n), truth][:, None]).sum(1)
    # a mismatched segment for every window: chance level of the prediction scores
    shift = torch.from_numpy(np.random.default_rng(seed).integers(1, max(m, 2), n)) if m > 1 else torch.zeros(n, dtype=torch.long)
    e_other = cand_std[(truth + shift) % m]
    return {
        "top1": float((rank <= 1).float().mean()), "top10": float((rank <= 10).float().mean()),
        "top1_pred": float((rank_pred <= 1).float().mean()), "top10_pred": float((rank_pred <= 10).float().mean()),
        "median_rank": float(rank.float().median()), "rank_percentile": float(((rank - 1).float() / max(m - 1, 1)).mean()),
        "mse": float(((e_hat - e_true) ** 2).mean()), "cosine": float((_unit(e_hat) * _unit(e_true)).sum(1).mean()),
        "mse_mismatched": float(((e_hat - e_other) ** 2).mean()), "cosine_mismatched": float((_unit(e_hat) * _unit(e_other)).sum(1).mean()),
        "n_windows": n, "n_candidates": m,
    }


def split_candidates(data, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(candidate audio segments [M, D_a, F_A], truth [N]) of the windows ``rows``."""
    segs = data.segment[rows]
    uniq, truth = torch.unique(segs, return_inverse=True)
    return data.e_a[uniq], truth


def score_split(model, data, rows: torch.Tensor) -> dict:
    """:func:`score_windows` over the windows ``rows`` of an :class:`~eegcodec.align.dataset.AlignSet`."""
    device = next(model.parameters()).device
    cand, truth = split_candidates(data, rows)
    return score_windows(model, data.e_b[rows].to(device), cand.to(device), truth.to(device))


def chance(n_candidates: int, scores: dict) -> dict:
    return {"top1": 1 / n_candidates, "top10": min(10, n_candidates) / n_candidates,
            "mse": scores["mse_mismatched"], "cosine": scores["cosine_mismatched"], "n_candidates": n_candidates}


def evaluate_run(run: str | Path, data_dir: str | Path, out: str | Path, split: str = "test", examples: int = 3, show_progress: bool = True) -> dict:
    """``eegcodec align eval``: test, control and chance scores -> ``out/results.json``,
    ``out/report.md``, figures and example WAVs (true segment through the audio codec,
    and the audio predicted from EEG)."""
    from .audio import write_wav
    from .config import align_config_from_dict
    from .dataset import embed_manifest
    from .trainer import dataset_kind, load_mapper

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
    res = {"split": split, "test": test, "chance": chance(test["n_candidates"], test), "splits": data.summary(),
           "data": str(data_dir), "run": str(run), "encoder_a": blob["encoder_a"], "encoder_b": blob["encoder_b"],
           "loss": blob["recipe"]["loss"], "label": dataset_kind(Path(data_dir))}
    control_path = Path(data_dir) / cfg.data.control_manifest
    if control_path.exists():
        ctl = embed_manifest(cfg.data.control_manifest, cfg, enc_a, enc_b, show_progress)
        res["control"] = score_split(model, ctl, ctl.rows(split))
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


def report(res: dict) -> str:
    """Markdown summary of :func:`evaluate_run`'s results."""
    t, c, ch = res["test"], res["control"], res["chance"]
    lines = [f"# align eval: {res['run']}", "",
             f"Data: `{res['data']}`" + (f" (**{res['label']}**)" if res["label"] else ""),
             f"Split `{res['split']}`: {t['n_windows']} EEG windows, {t['n_candidates']} candidate audio segments; "
             f"loss {res['loss']['align']} (lambda_align {res['loss']['lambda_align']}, lambda_rec {res['loss']['lambda_rec']}).", "",
             "| | top-1 % | top-10 % | median rank | MSE(Ê_A, E_A) | cos(Ê_A, E_A) |", "|---|---|---|---|---|---|"]
    lines.append(f"| test | {100 * t['top1']:.1f} | {100 * t['top10']:.1f} | {t['median_rank']:.0f} | {t['mse']:.3f} | {t['cosine']:.3f} |")
    if c:
        lines.append(f"| control (background only) | {100 * c['top1']:.1f} | {100 * c['top10']:.1f} | {c['median_rank']:.0f} | {c['mse']:.3f} | {c['cosine']:.3f} |")
    lines.append(f"| chance | {100 * ch['top1']:.1f} | {100 * ch['top10']:.1f} | {(ch['n_candidates'] + 1) / 2:.0f} | {ch['mse']:.3f} | {ch['cosine']:.3f} |")
    lines += ["", "MSE in standardised E_A units (1 = predicting the training mean); chance pairs each prediction with another segment.",
              "`similarity.png`: cosine similarity of every test EEG window (rows) to every candidate segment (columns), true segment marked.",
              "`example*_codec.wav`: the true segment through the audio codec; `example*_from_eeg.wav`: decoded from the EEG's prediction."]
    return "\n".join(lines) + "\n"


def _figures(model, data, rows: torch.Tensor, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cand, truth = split_candidates(data, rows)
    with torch.no_grad():
        model.eval()
        sim = (_unit(model.map_b(data.e_b[rows])) @ _unit(model.map_a(cand)).t()).numpy()
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


def decode_eeg_file(run: str | Path, eeg_file: str | Path, out_wav: str | Path, start: float = 0.0, seconds: float | None = None) -> dict:
    """``eegcodec align decode``: EEG recording -> predicted audio WAV.

    Consecutive windows of the mapper's length from ``start`` (seconds) over ``seconds``
    (default: to the end) go through encoder B, M_B and P; the Ê_A are joined frame by
    frame and decoded by encoder A's decoder. Returns what was done."""
    from .audio import write_wav
    from .dataset import _read_eeg
    from .encoders import eeg_window
    from .trainer import load_mapper

    model, blob, enc_a, enc_b, grid = load_mapper(run)
    data, sfreq, names = _read_eeg(Path(eeg_file))
    total = data.shape[1] / sfreq
    span = (total - start) if seconds is None else seconds
    w, ctx = grid.window_seconds, grid.context_seconds
    n = int(np.floor(span / w + 1e-9))
    if start < 0 or start + w > total or n < 1:
        raise EegcodecError(f"{eeg_file} has {total:.1f} s; need at least one {w:g}-s window from {start:g} s")
    parts = []
    for i in range(n):
        x = enc_b.codec_input(eeg_window(data, sfreq, start + i * w - ctx, w + 2 * ctx), sfreq, names)
        with torch.no_grad():
            parts.append(model.unstandardise_a(model.predict(model.map_b(enc_b.embed(x, names)[None])))[0])
    audio = enc_a.decode(torch.cat(parts, dim=-1))
    write_wav(out_wav, audio, enc_a.rate)
    return {"windows": n, "seconds": n * w, "start": start, "rate": enc_a.rate, "out": str(out_wav)}
