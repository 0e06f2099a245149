"""Retrieval and prediction scores of a mapper on a set of EEG windows (used by the trainer
for validation and by :mod:`eegcodec.align.evaluate`).

Segment identification (as brainmagick reports it): for each EEG window, rank all distinct
audio segments of the split by cosine similarity between its Z_B and their Z_A (each
flattened over dimensions and frames); top-k accuracy is the fraction of windows whose true
segment ranks within k. Chance: k / M for M candidates.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def unit(z: torch.Tensor) -> torch.Tensor:
    return F.normalize(z.reshape(z.shape[0], -1), dim=1)


@torch.no_grad()
def score_windows(
    model, e_b: torch.Tensor, candidates: torch.Tensor, truth: torch.Tensor, seed: int = 0
) -> dict:
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
    sim = unit(z_b) @ unit(model.map_a(candidates)).t()  # [N, M]
    true_sim = sim[torch.arange(n), truth]
    rank = 1 + (sim > true_sim[:, None]).sum(1)
    e_hat = model.predict(z_b)
    cand_std = model.standardise_a(candidates)
    e_true = cand_std[truth]
    # the same identification in audio-embedding space: Ê_A against every candidate's E_A
    sim_pred = unit(e_hat) @ unit(cand_std).t()
    rank_pred = 1 + (sim_pred > sim_pred[torch.arange(n), truth][:, None]).sum(1)
    # a mismatched segment for every window: chance level of the prediction scores
    shift = (
        torch.from_numpy(np.random.default_rng(seed).integers(1, max(m, 2), n))
        if m > 1
        else torch.zeros(n, dtype=torch.long)
    )
    e_other = cand_std[(truth + shift) % m]
    return {
        "top1": float((rank <= 1).float().mean()),
        "top10": float((rank <= 10).float().mean()),
        "top1_pred": float((rank_pred <= 1).float().mean()),
        "top10_pred": float((rank_pred <= 10).float().mean()),
        "median_rank": float(rank.float().median()),
        "rank_percentile": float(((rank - 1).float() / max(m - 1, 1)).mean()),
        "mse": float(((e_hat - e_true) ** 2).mean()),
        "cosine": float((unit(e_hat) * unit(e_true)).sum(1).mean()),
        "mse_mismatched": float(((e_hat - e_other) ** 2).mean()),
        "cosine_mismatched": float((unit(e_hat) * unit(e_other)).sum(1).mean()),
        "n_windows": n,
        "n_candidates": m,
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
    return {
        "top1": 1 / n_candidates,
        "top10": min(10, n_candidates) / n_candidates,
        "mse": scores["mse_mismatched"],
        "cosine": scores["cosine_mismatched"],
        "n_candidates": n_candidates,
    }
