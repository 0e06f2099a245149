"""``eegcodec bench prior``: how many bits a prior over a model's codes could save.

A file stores each code in ``bits_per_code`` bits (the ``packed`` stream coder). An entropy
coder driven by a prior p(code | what the decoder already has) spends ``-log2 p`` bits per
code instead; this benchmark measures that cross-entropy on held-out recordings for:

- ``packed``: the fixed width the file spends today;
- ``empirical``: the plug-in entropy of the held-out codes, per codebook (pooled over the
  files; biased low when a codebook has few codes per symbol: a bound, not a coder);
- ``marginal``: a per-codebook frequency table counted on the training recordings
  (add-1/2), i.e. the best context-free prior;
- ``residual``: a small network over what the decoder knows first in a residual VQ, the
  codebook vectors (l2-normalised, as DAC looks them up) of the lower codebooks of the same
  frame, trained on the training recordings by cross-entropy (logits: a learned query
  against the codebook's vectors, plus a per-code bias);
- ``residual + row above``: the same, also given all codes of the code row before in the
  same frame (the previous channel of a per-channel model, the previous spatial token of
  DAC-MC), which a decoder has when it decodes rows in order.

Per depth, the mean over the codebooks used, and the saving against ``packed``. Codes come
from the real pipeline (``compress_raw`` at the model's full depth, first ``crop_seconds``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..container import Archive
from ..io import find_recordings
from ..pipeline import compress_raw
from ..streamcoders import make
from .common import hardware, load_crop, load_models, write_outputs


@dataclass
class PriorConfig:
    crop_seconds: float = 60.0
    steps: int = 4000
    batch: int = 512
    hidden: int = 256
    lr: float = 1e-3
    seed: int = 0

    @classmethod
    def quick(cls) -> PriorConfig:
        return cls(crop_seconds=10.0, steps=50, hidden=32)


def file_codes(path: Path, codec, crop_seconds: float) -> np.ndarray:
    """int64 [rows, codebooks, frames]: the model's codes of a recording's first seconds, at full depth."""
    raw = load_crop(path, crop_seconds)
    arc = Archive.from_bytes(compress_raw(raw, codec, n_codebooks=codec.info.n_codebooks))
    h = arc.header
    rows = (h.code_rows, h.code_count // max(h.code_rows, 1))
    return (
        make(h.code_coder, h.model.bits_per_code)
        .decode(arc.codes, rows)
        .reshape(h.code_rows, h.codebooks, -1)
    )


def _tokens(codes: list[np.ndarray]) -> np.ndarray:
    """int64 [tokens, 2, codebooks]: for every (row, frame) of every file its codes and those of
    the code row before it in the same frame (-1 for the first row: nothing above it)."""
    out = []
    for c in codes:  # [rows, codebooks, frames]
        above = np.concatenate([np.full_like(c[:1], -1), c[:-1]])
        pair = np.stack([c, above], axis=1)  # [rows, 2, codebooks, frames]
        out.append(pair.transpose(0, 3, 1, 2).reshape(-1, 2, c.shape[1]))
    return np.concatenate(out)


def empirical_bits(y: np.ndarray) -> np.ndarray:
    """Plug-in entropy (bits) of each column of int [tokens, codebooks]."""
    out = []
    for col in y.T:
        p = np.bincount(col) / col.size
        p = p[p > 0]
        out.append(float(-(p * np.log2(p)).sum()))
    return np.array(out)


def marginal_bits(train: np.ndarray, test: np.ndarray, size: int) -> np.ndarray:
    """Cross-entropy (bits) per codebook of add-1/2 frequency tables counted on ``train``."""
    out = []
    for level in range(train.shape[1]):
        p = np.bincount(train[:, level], minlength=size) + 0.5
        out.append(float(-np.log2(p[test[:, level]] / p.sum()).mean()))
    return np.array(out)


def codebook_vectors(codec) -> torch.Tensor | None:
    """float32 [codebooks, codebook_size, dim]: the l2-normalised lookup vectors of a DAC or
    DAC-MC model's residual VQ, or None for other models."""
    model = getattr(codec, "model", None)
    rvq = getattr(getattr(model, "dac", model), "quantizer", None)
    if rvq is None or not hasattr(rvq, "quantizers"):
        return None
    return torch.stack([F.normalize(q.codebook.weight.detach().float(), dim=1) for q in rvq.quantizers])


class ResidualPrior(nn.Module):
    """p(code of codebook l | codes of codebooks < l, same row and frame; with ``above``, also
    all codes of the code row before, same frame): an MLP over those codes' vectors and a
    one-hot of l gives a query [dim], scored against codebook l's vectors (times a learned
    scale) plus a per-code bias.

    vectors : float32 [L, codebook_size, dim] (:func:`codebook_vectors`); hidden : MLP width.
    """

    def __init__(self, vectors: torch.Tensor, hidden: int, above: bool = False):
        super().__init__()
        n_levels, size, dim = vectors.shape
        self.above = above
        self.register_buffer("vectors", vectors)
        self.net = nn.Sequential(
            nn.Linear((1 + above) * n_levels * dim + n_levels, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim),
        )
        self.bias = nn.Parameter(torch.zeros(n_levels, size))
        self.scale = nn.Parameter(torch.full((n_levels,), 5.0))

    def forward(self, tokens: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """tokens int64 [B, 2, L] (:func:`_tokens`), level int64 [B] -> logits [B, codebook_size]
        of ``tokens[:, 0, level]``."""
        n_levels = self.vectors.shape[0]
        vec = (
            self.vectors[torch.arange(n_levels), tokens.clamp(min=0)] * (tokens >= 0)[..., None]
        )  # [B, 2, L, dim]
        lower = (torch.arange(n_levels)[None, :] < level[:, None]).float()[..., None]
        parts = [(vec[:, 0] * lower).flatten(1), *([vec[:, 1].flatten(1)] if self.above else [])]
        x = torch.cat([*parts, F.one_hot(level, n_levels).float()], 1)
        logits = torch.einsum("bd,bkd->bk", self.net(x), self.vectors[level])
        return logits * self.scale[level, None] + self.bias[level]


def residual_bits(
    vectors: torch.Tensor, train: np.ndarray, test: np.ndarray, cfg: PriorConfig, above: bool = False
) -> np.ndarray:
    """Cross-entropy (bits) per codebook on ``test`` of a :class:`ResidualPrior` trained on
    ``train`` (int64 [tokens, 2, L], :func:`_tokens`)."""
    torch.manual_seed(cfg.seed)
    prior = ResidualPrior(vectors, cfg.hidden, above)
    opt = torch.optim.AdamW(prior.parameters(), cfg.lr, weight_decay=1e-2)
    y_train, y_test = torch.as_tensor(train), torch.as_tensor(test)
    levels = vectors.shape[0]
    for _ in range(cfg.steps):
        pick = torch.randint(0, len(y_train), (cfg.batch,))
        level = torch.randint(0, levels, (cfg.batch,))
        loss = F.cross_entropy(prior(y_train[pick], level), y_train[pick, 0, level])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nats = [
            F.cross_entropy(prior(y_test, torch.full((len(y_test),), lv)), y_test[:, 0, lv]).item()
            for lv in range(levels)
        ]
    return np.array(nats) / np.log(2)


def run(inputs, train_inputs, models: list[str], out: Path, cfg: PriorConfig, labels=None, progress=None):
    """Measure each model; writes ``out/results.json`` and ``out/report.md``."""
    say = progress or (lambda msg: None)
    held, train = find_recordings(inputs), find_recordings(train_inputs)
    results = {
        "config": asdict(cfg),
        "hardware": hardware(),
        "held_out": [str(p) for p in held],
        "train": [str(p) for p in train],
    }
    labels = [label or model for model, label in zip(models, labels or models)]
    for codec, label in zip(load_models(models), labels):
        say(f"{label}: codes of {len(train)} training and {len(held)} held-out recordings")
        y_train = _tokens([file_codes(p, codec, cfg.crop_seconds) for p in train])
        y_test = _tokens([file_codes(p, codec, cfg.crop_seconds) for p in held])
        size = codec.info.codebook_size
        rows = {
            "packed": np.full(y_test.shape[2], float(codec.info.bits_per_code)),
            "empirical": empirical_bits(y_test[:, 0]),
            "marginal": marginal_bits(y_train[:, 0], y_test[:, 0], size),
        }
        vectors = codebook_vectors(codec)
        if vectors is not None:
            say(f"{label}: training the residual priors ({cfg.steps} steps each)")
            rows["residual"] = residual_bits(vectors, y_train, y_test, cfg)
            rows["residual + row above"] = residual_bits(vectors, y_train, y_test, cfg, above=True)
        results[label] = {
            "tokens_train": int(len(y_train)),
            "tokens_held_out": int(len(y_test)),
            "bits_per_code": {k: v.round(4).tolist() for k, v in rows.items()},
        }
    write_outputs(out, results, report(results, labels))
    return results


def report(results: dict, labels: list[str]) -> str:
    """Per model: bits per code by depth (mean over the codebooks used) and the saving."""
    lines = [
        "# Bits per code under each prior (held-out recordings)",
        "",
        "Mean bits per code over the codebooks a depth uses; in brackets, the change against the",
        "fixed width the file spends today (`packed`). `empirical` is the plug-in entropy of the",
        "held-out codes themselves (biased low when codes are few per symbol: not reachable by a coder).",
        "",
    ]
    for label in labels:
        r = results[label]
        bits = {k: np.array(v) for k, v in r["bits_per_code"].items()}
        depths = sorted({1, 2, 4, 6, len(bits["packed"])} & set(range(1, len(bits["packed"]) + 1)))
        lines += [
            f"## {label}",
            f"{r['tokens_train']} training and {r['tokens_held_out']} held-out tokens (code rows x frames).",
            "",
            "| prior | " + " | ".join(f"depth {d}" for d in depths) + " |",
            "|---|" + "---|" * len(depths),
        ]
        for name, v in bits.items():
            change = [100 * (v[:d].mean() / bits["packed"][0] - 1) for d in depths]  # vs the fixed width
            cells = [f"{v[:d].mean():.2f} ({pct:+.1f} %)" for d, pct in zip(depths, change)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        best = min(bits, key=lambda k: bits[k].mean() if k != "empirical" else np.inf)
        lines += [f"Per codebook ({best}): " + " | ".join(f"{x:.2f}" for x in bits[best]), ""]
    return "\n".join(lines)
