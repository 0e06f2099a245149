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


@torch.no_grad()
def _similarity(model, data, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(cosine similarity [windows, candidates] in the shared space, each window's true candidate)."""
    device = next(model.parameters(), torch.zeros(0)).device
    cand, truth = split_candidates(data, rows)
    model.eval()
    sim = unit(model.map_b(data.e_b[rows].to(device))) @ unit(model.map_a(cand.to(device))).t()
    return sim.cpu().numpy(), truth.numpy()


@torch.no_grad()
def block_permutation(
    model, data, rows: torch.Tensor, n_draws: int = 2000, seed: int = 0
) -> dict[str, float | list[float]]:
    """Chance that respects overlapping windows: the windows of one (subject, stimulus) form a
    block, and each subject's stimulus labels are permuted among the split's stimuli (every
    window keeps its offset), ``n_draws`` times. Returns the observed top-1/top-10, their
    p-values ``(1 + #{null >= observed}) / (1 + n_draws)``, the null's 95th percentiles, and
    95 % intervals of the observed scores from a bootstrap over the same blocks (blocks drawn
    with replacement, ``n_draws`` times; percentile interval)."""
    sim, truth = _similarity(model, data, rows)
    pairs = data.pair[rows].numpy()
    subj = np.array([data.subjects[p] for p in pairs])
    stim = np.array([data.stimuli[p] for p in pairs])
    offs = np.round(np.asarray(data.offset)[rows.numpy()], 6)
    where = {(s, o): int(t) for s, o, t in zip(stim, offs, truth)}  # (stimulus, offset) -> candidate
    names = sorted(set(stim))
    rng = np.random.default_rng(seed)

    def hits(t: np.ndarray) -> np.ndarray:
        """[N, 2]: window in the top 1, in the top 10."""
        rank = 1 + (sim > sim[np.arange(len(t)), t][:, None]).sum(1)
        return np.stack([rank <= 1, rank <= 10], 1)

    def scores(t: np.ndarray) -> tuple[float, float]:
        return tuple(float(v) for v in hits(t).mean(0))

    observed = scores(truth)
    _, block = np.unique(np.stack([subj, stim], 1), axis=0, return_inverse=True)
    ci = _block_bootstrap(hits(truth), block.ravel(), np.random.default_rng([seed, 1]), n_draws)
    null = []
    for _ in range(n_draws):
        relabel = {(sj, s): p for sj in sorted(set(subj)) for s, p in zip(names, rng.permutation(names))}
        t = np.array([where.get((relabel[(sj, s)], o), -1) for sj, s, o in zip(subj, stim, offs)])
        null.append(scores(np.where(t >= 0, t, truth)))
    null = np.array(null)
    p = [(1 + int((null[:, k] >= observed[k]).sum())) / (1 + n_draws) for k in range(2)]
    return {
        "top1": observed[0],
        "top10": observed[1],
        "p_top1": p[0],
        "p_top10": p[1],
        "null95_top1": float(np.percentile(null[:, 0], 95)),
        "null95_top10": float(np.percentile(null[:, 1], 95)),
        "ci95_top1": ci[0],
        "ci95_top10": ci[1],
        "n_draws": n_draws,
    }


def _block_bootstrap(hits: np.ndarray, block: np.ndarray, rng, n_draws: int) -> list[list[float]]:
    """95 % percentile intervals of the mean of each column of ``hits`` [N, k] when whole
    blocks (``block`` [N], ids 0..B-1) are drawn with replacement: [[low, high]] * k."""
    n_blocks = int(block.max()) + 1
    per_block = np.stack([np.bincount(block, hits[:, j], n_blocks) for j in range(hits.shape[1])], 1)
    size = np.bincount(block, minlength=n_blocks)
    draws = rng.integers(0, n_blocks, (n_draws, n_blocks))
    means = per_block[draws].sum(1) / size[draws].sum(1)[:, None]
    return [[float(v) for v in np.percentile(means[:, j], [2.5, 97.5])] for j in range(hits.shape[1])]


@torch.no_grad()
def candidate_sweep(model, data, rows: torch.Tensor, draws: int = 50, seed: int = 0) -> list[dict]:
    """Retrieval against the size of the candidate set: for S = 2, 4, ... stimuli, each window's
    candidates are every segment of its own stimulus and of S - 1 others drawn at random
    (``draws`` times); top-1 and top-5 with their nominal chance, averaged over draws."""
    sim, truth = _similarity(model, data, rows)
    stim_of_window = np.array([data.stimuli[p] for p in data.pair[rows].numpy()])
    names = sorted(set(stim_of_window))
    seg_stim = np.empty(sim.shape[1], dtype=object)  # the stimulus of each candidate segment
    seg_stim[truth] = stim_of_window
    rng = np.random.default_rng(seed)
    out = []
    for n_stim in sorted({s for s in (2, 4, 8, 16, 32, len(names)) if 2 <= s <= len(names)}):
        hits1, hits5, sizes = [], [], []
        for _ in range(draws if n_stim < len(names) else 1):
            for i, own in enumerate(stim_of_window):
                others = [s for s in names if s != own]
                pool = {own, *rng.choice(others, n_stim - 1, replace=False)}
                cols = np.flatnonzero([s in pool for s in seg_stim])
                rank = 1 + int((sim[i, cols] > sim[i, truth[i]]).sum())
                hits1.append(rank <= 1)
                hits5.append(rank <= 5)
                sizes.append(len(cols))
        m = float(np.mean(sizes))
        out.append(
            {
                "stimuli": n_stim,
                "candidates": m,
                "top1": float(np.mean(hits1)),
                "top5": float(np.mean(hits5)),
                "chance_top1": 1 / m,
                "chance_top5": min(5, m) / m,
            }
        )
    return out


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
