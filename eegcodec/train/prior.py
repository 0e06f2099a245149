"""Train a model's code prior (:class:`eegcodec.codeprior.CodePrior`) on recordings' codes.

``eegcodec train-prior MODEL --train FILES... -o MODEL.prior.npz``: the codes of the recordings
through the real pipeline (full depth, first ``crop_seconds``), a float network of the prior's
shape trained by cross-entropy on random (depth, codebook) pairs (so it serves every depth),
then quantised to the integer :class:`CodePrior` with power-of-two scales calibrated on the
training codes. With ``split_groups`` the prior is *split* (:mod:`eegcodec.codeprior`): each
codebook's codes are ordered by balanced bisection along their vectors' principal axis
(:func:`split_order`), so that a group holds similar codes, and a group head is learnt beside the
codes' logits (cross-entropy of the group plus of the place within it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..codeprior import CodePrior
from ..errors import EegcodecError
from ..format.container import Archive
from ..pipeline import archive_codes, compress_raw


@dataclass
class PriorTrainConfig:
    crop_seconds: float = 60.0
    steps: int = 4000
    batch: int = 512
    hidden: int = 256
    lr: float = 1e-3
    seed: int = 0
    #: 0: one 1,024-way distribution per code; G: a group of G, then a place in it (split prior)
    split_groups: int = 0

    def __post_init__(self):
        g = self.split_groups
        if g and (g < 2 or g & (g - 1)):
            raise EegcodecError(f"split_groups must be 0 or a power of two (e.g. 32), got {g}")


def file_codes(raw, codec) -> np.ndarray:
    """int64 [rows, codebooks, frames]: a recording's codes at the model's full depth."""
    return archive_codes(
        Archive.from_bytes(compress_raw(raw, codec, n_codebooks=codec.info.n_codebooks)), codec
    )


def tokens(codes: list[np.ndarray]) -> np.ndarray:
    """int64 [tokens, 2, codebooks]: for every (row, frame) of every file its codes and those of
    the code row before it in the same frame (-1 for the first row: nothing above it)."""
    out = []
    for c in codes:  # [rows, codebooks, frames]
        above = np.concatenate([np.full_like(c[:1], -1), c[:-1]])
        pair = np.stack([c, above], axis=1)  # [rows, 2, codebooks, frames]
        out.append(pair.transpose(0, 3, 1, 2).reshape(-1, 2, c.shape[1]))
    return np.concatenate(out)


def quantised_vectors(codec) -> np.ndarray:
    """int64 [L, K, D]: a DAC or DAC-MC model's l2-normalised codebook vectors x 127, rounded."""
    model = getattr(codec, "model", None)
    rvq = getattr(getattr(model, "dac", model), "quantizer", None)
    if rvq is None or not hasattr(rvq, "quantizers"):
        raise ValueError(f"model {codec.info.name!r} has no residual VQ codebooks to build a prior on")
    vec = torch.stack([F.normalize(q.codebook.weight.detach().float(), dim=1) for q in rvq.quantizers])
    return np.rint(vec.numpy().astype(np.float64) * 127).astype(np.int64)


def split_order(vectors_q: np.ndarray, groups: int) -> np.ndarray:
    """int64 [L, K]: each level's codes ordered so that consecutive runs of K / ``groups`` codes are
    similar: recursive halving along the principal axis of each part's vectors (``groups`` a power
    of two dividing K)."""
    n_levels, size, _ = vectors_q.shape
    if size % groups:
        raise EegcodecError(f"split_groups must divide the codebook size {size}, got {groups}")
    out = []
    for vec in vectors_q.astype(np.float64):
        parts = [np.arange(size)]
        while len(parts) < groups:
            halves = []
            for ids in parts:
                centred = vec[ids] - vec[ids].mean(axis=0)
                axis = np.linalg.svd(centred, full_matrices=False)[2][0]
                ranked = ids[np.argsort(centred @ axis, kind="stable")]
                halves += [ranked[: len(ids) // 2], ranked[len(ids) // 2 :]]
            parts = halves
        out.append(np.concatenate(parts))
    return np.stack(out)


class PriorNet(nn.Module):
    """The float network :func:`quantise` turns into a :class:`CodePrior` (same inputs, ReLU);
    with ``order`` [L, K] (:func:`split_order`) also the group head of a split prior."""

    def __init__(self, vectors_q: np.ndarray, hidden: int, order: np.ndarray | None = None, groups: int = 0):
        super().__init__()
        n_levels, size, dim = vectors_q.shape
        self.register_buffer("vectors", torch.as_tensor(vectors_q, dtype=torch.float32) / 127)
        self.layers = nn.ModuleList(
            [
                nn.Linear(2 * n_levels * dim + n_levels, hidden),
                nn.Linear(hidden, hidden),
                nn.Linear(hidden, dim),
            ]
        )
        self.scale = nn.Parameter(torch.full((n_levels,), 5.0))
        self.bias = nn.Parameter(torch.zeros(n_levels, size))
        self.split = order is not None
        if self.split:
            self.register_buffer("order", torch.as_tensor(order))
            self.register_buffer("pos", torch.as_tensor(np.argsort(order, axis=1)))
            ordered = self.vectors[torch.arange(n_levels)[:, None], self.order]  # [L, K, D]
            self.group_vectors = nn.Parameter(ordered.view(n_levels, groups, -1, dim).mean(2).clone())
            self.group_scale = nn.Parameter(torch.full((n_levels,), 5.0))
            self.group_bias = nn.Parameter(torch.zeros(n_levels, groups))

    def inputs(self, pairs: torch.Tensor, level: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """pairs int64 [B, 2, L] (own, row above), level, depth int64 [B] -> inputs [B, 2 L D + L] / 127."""
        n_levels = self.vectors.shape[0]
        lv = torch.arange(n_levels)
        vec = self.vectors[lv, pairs.clamp(min=0)]  # [B, 2, L, D]
        own = (lv[None] < level[:, None]).float()
        above = ((pairs[:, 1] >= 0) & (lv[None] < depth[:, None])).float()
        parts = [(vec[:, 0] * own[..., None]).flatten(1), (vec[:, 1] * above[..., None]).flatten(1)]
        return torch.cat([*parts, F.one_hot(level, n_levels).float()], 1)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each layer (ReLU after the first two)."""
        h1 = F.relu(self.layers[0](x))
        h2 = F.relu(self.layers[1](h1))
        return [h1, h2, self.layers[2](h2)]

    def forward(self, pairs, level, depth):
        """(query [B, D], the codes' logits [B, K])."""
        query = self.hidden(self.inputs(pairs, level, depth))[-1]
        logits = torch.einsum("bd,bkd->bk", query, self.vectors[level])
        return query, logits * self.scale[level, None] + self.bias[level]

    def nll(self, pairs, level, depth) -> torch.Tensor:
        """[B] nats of each token's code of codebook ``level`` (split: of its group, then of its
        place among the group's codes)."""
        query, logits = self(pairs, level, depth)
        code = pairs[:, 0].gather(1, level[:, None])[:, 0]
        if not self.split:
            return F.cross_entropy(logits, code, reduction="none")
        groups = self.group_vectors.shape[1]
        size = logits.shape[1] // groups
        group, place = self.pos[level, code] // size, self.pos[level, code] % size
        group_logits = torch.einsum("bd,bgd->bg", query, self.group_vectors[level])
        group_logits = group_logits * self.group_scale[level, None] + self.group_bias[level]
        members = logits.gather(1, self.order[level]).view(len(code), groups, -1)[
            torch.arange(len(code)), group
        ]
        return F.cross_entropy(group_logits, group, reduction="none") + F.cross_entropy(
            members, place, reduction="none"
        )


def _draw(pairs: torch.Tensor, n: int, n_levels: int, gen: torch.Generator):
    """A batch: tokens, a depth per token (1..L) and a codebook below it."""
    pick = torch.randint(0, len(pairs), (n,), generator=gen)
    depth = torch.randint(1, n_levels + 1, (n,), generator=gen)
    level = (torch.rand(n, generator=gen) * depth).long()
    return pairs[pick], level, depth


def train_net(vectors_q: np.ndarray, pairs: np.ndarray, cfg: PriorTrainConfig, progress=None) -> PriorNet:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    order = split_order(vectors_q, cfg.split_groups) if cfg.split_groups else None
    net = PriorNet(vectors_q, cfg.hidden, order, cfg.split_groups)
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    data = torch.as_tensor(pairs)
    for step in range(cfg.steps):
        batch, level, depth = _draw(data, cfg.batch, vectors_q.shape[0], gen)
        loss = net.nll(batch, level, depth).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress and (step + 1) % 500 == 0:
            progress(step + 1, cfg.steps, loss.item() / np.log(2))
    return net


def _pow2_below(x: float) -> float:
    """The largest power of two <= x (x > 0)."""
    return float(2.0 ** np.floor(np.log2(x)))


def quantise(net: PriorNet, vectors_q: np.ndarray, calib: tuple) -> CodePrior:
    """The integer :class:`CodePrior` of a trained :class:`PriorNet`; ``calib`` is a batch of
    (pairs, level, depth) whose activations set the requantisation scales."""
    with torch.no_grad():
        acts = net.hidden(net.inputs(*calib))
    qs, scale_in = [], 1.0 / 127  # float value of one input unit
    tops = (255.0, 255.0, 127.0)
    for layer, act, top in zip(net.layers, acts, tops):
        w = layer.weight.detach().double().numpy().T * scale_in  # per integer input unit
        g = _pow2_below(127 / max(np.abs(w).max(), 1e-12))
        w_q = np.rint(w * g).astype(np.int64)
        b_q = np.rint(layer.bias.detach().double().numpy() * g).astype(np.int64)
        peak = float(np.quantile(act.abs().numpy(), 0.999)) or 1.0
        m = _pow2_below(top / (peak * g))  # integer accumulator -> next integer activation
        qs.append((w_q, b_q, m))
        scale_in = 1.0 / (g * m)  # float value of one unit of the requantised activation
    # logits: scale_l * (q . v) with q = q_int * scale_in and v = v_int / 127, in 1/64-bit units
    to_units = 64 / np.log(2)
    logit_scale = net.scale.detach().double().numpy() * scale_in / 127 * to_units
    logit_bias = np.rint(net.bias.detach().double().numpy() * to_units).astype(np.int64)
    (w1, b1, m1), (w2, b2, m2), (w3, b3, m3) = qs
    split = {}
    if net.split:  # group vectors as integers up to 127 per level, their scale folded into group_scale
        vec = net.group_vectors.detach().double().numpy()
        top = np.maximum(np.abs(vec).max(axis=(1, 2)), 1e-12)  # [L]
        split = dict(
            order=net.order.numpy(),
            group_vectors=np.rint(vec / top[:, None, None] * 127).astype(np.int64),
            group_scale=net.group_scale.detach().double().numpy() * scale_in * top / 127 * to_units,
            group_bias=np.rint(net.group_bias.detach().double().numpy() * to_units).astype(np.int64),
        )
    return CodePrior(vectors_q, w1, b1, m1, w2, b2, m2, w3, b3, m3, logit_scale, logit_bias, **split)


def fit_tokens(vectors_q: np.ndarray, pairs: np.ndarray, cfg: PriorTrainConfig, progress=None):
    """(trained :class:`PriorNet`, its quantised :class:`CodePrior`) on tokens [N, 2, L]."""
    net = train_net(vectors_q, pairs, cfg, progress)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    return net, quantise(net, vectors_q, _draw(torch.as_tensor(pairs), 8192, vectors_q.shape[0], gen))


def fit(codec, recordings: list, cfg: PriorTrainConfig, progress=None) -> CodePrior:
    """Train and quantise ``codec``'s prior on ``recordings`` (MNE raws)."""
    vectors_q = quantised_vectors(codec)
    return fit_tokens(vectors_q, tokens([file_codes(raw, codec) for raw in recordings]), cfg, progress)[1]
