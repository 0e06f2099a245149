"""``eegcodec bench prior``: bits per code under each prior a file could use.

A file spends ``bits_per_code`` bits per code with the ``packed`` stream coder, and
``-log2 p(code)`` with an entropy coder driven by a prior p the decoder can compute. On
held-out recordings, at each depth d (codebooks < d, with the row above known up to d):

- ``packed``: the fixed width;
- ``empirical``: the plug-in entropy of the held-out codes, per codebook (pooled over the
  files; biased low when a codebook has few codes per symbol: a bound, not a coder);
- ``marginal``: a per-codebook frequency table counted on the training recordings (add-1/2),
  the best context-free prior;
- ``network (float)``: :class:`eegcodec.train.prior.PriorNet` trained here on the training
  recordings (the lower codebooks of the same row and frame, and the row before);
- ``integer prior``: what files are coded with, :class:`eegcodec.codeprior.CodePrior`: the model's
  shipped prior when it has one, else the network above quantised.

Per depth, the mean bits per code and the change against ``packed``. Codes come from the real
pipeline (``compress_raw`` at the model's full depth, first ``crop_seconds``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EegcodecError
from ..io import find_recordings, load_crop
from .common import crop_option, hardware, load_models, model_labels, quick_option, recordings, write_outputs

if TYPE_CHECKING:  # torch loads once the inputs are checked
    from ..train.prior import PriorTrainConfig

HELP = "bits per code an entropy coder's prior over the model's codes would spend (fitted on --train)"
MODELS = True


def add_arguments(parser) -> None:
    crop_option(parser)
    parser.add_argument(
        "--train", nargs="+", metavar="INPUT", help="recordings the priors are fitted on (INPUTs: held out)"
    )
    quick_option(parser)


def main(args, say) -> None:
    recordings(args.inputs, "prior", args.train or [])
    if not args.train:
        raise EegcodecError("bench prior needs --train recordings (the prior is fitted on them)")
    cfg = config(quick=args.quick)
    cfg.crop_seconds = args.crop if args.crop is not None else cfg.crop_seconds
    models, labels = model_labels(args.models)
    run(args.inputs, args.train, models, Path(args.out), cfg, labels=labels, progress=say)


def config(quick: bool = False) -> PriorTrainConfig:
    """The prior's training settings: the defaults, or small ones for a smoke run."""
    from ..train.prior import PriorTrainConfig

    return PriorTrainConfig(crop_seconds=10.0, steps=50, hidden=32) if quick else PriorTrainConfig()


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


def net_bits(net, pairs: np.ndarray, depth: int) -> float:
    """Mean bits per code of a :class:`PriorNet` over codebooks < ``depth`` of ``pairs`` [N, 2, L]."""
    import torch

    data, n = torch.as_tensor(pairs), len(pairs)
    with torch.no_grad():
        nats = [
            net.nll(data, torch.full((n,), lv), torch.full((n,), depth)).sum().item() for lv in range(depth)
        ]
    return float(np.sum(nats) / np.log(2) / (n * depth))


def prior_bits(prior, pairs: np.ndarray, depth: int, batch: int = 4096) -> float:
    """Mean bits per code of an integer :class:`CodePrior` over codebooks < ``depth``."""
    total = 0.0
    for a in range(0, len(pairs), batch):
        part = pairs[a : a + batch]
        for lv in range(depth):
            p = prior.probabilities(part[:, 0], part[:, 1], lv, depth)
            total += -np.log2(p[np.arange(len(p)), part[:, 0, lv]]).sum()
    return float(total / (len(pairs) * depth))


def _codes(paths, codec, crop: float) -> np.ndarray:
    from ..train.prior import file_codes, tokens

    return tokens([file_codes(load_crop(p, crop), codec) for p in paths])


def measure(codec, train_paths, held_paths, cfg: PriorTrainConfig, say) -> dict:
    """One model's bits per code under each prior at each depth (1..L)."""
    from ..train.prior import fit_tokens, quantised_vectors

    y_train, y_test = (
        _codes(train_paths, codec, cfg.crop_seconds),
        _codes(held_paths, codec, cfg.crop_seconds),
    )
    levels, size = y_test.shape[2], codec.info.codebook_size
    depths = list(range(1, levels + 1))
    marginal, empirical = marginal_bits(y_train[:, 0], y_test[:, 0], size), empirical_bits(y_test[:, 0])
    rows = {
        "packed": [float(codec.info.bits_per_code)] * levels,
        "empirical": [float(empirical[:d].mean()) for d in depths],
        "marginal": [float(marginal[:d].mean()) for d in depths],
    }
    try:
        vectors_q = quantised_vectors(codec)
    except ValueError:  # no residual-VQ codebooks (WavTokenizer, test codecs)
        return {"tokens_train": len(y_train), "tokens_held_out": len(y_test), "bits_per_code": rows}
    say(f"{codec.info.name}: training the network ({cfg.steps} steps)")
    net, quantised = fit_tokens(vectors_q, y_train, cfg)
    rows["network (float)"] = [net_bits(net, y_test, d) for d in depths]
    prior = codec.prior if codec.prior is not None else quantised
    label = "integer prior (shipped)" if codec.prior is not None else "integer prior (quantised here)"
    rows[label] = [prior_bits(prior, y_test, d) for d in depths]
    return {"tokens_train": len(y_train), "tokens_held_out": len(y_test), "bits_per_code": rows}


def run(
    inputs, train_inputs, models: list[str], out: Path, cfg: PriorTrainConfig, labels=None, progress=None
):
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
        results[label] = measure(codec, train, held, cfg, say)
    write_outputs(out, results, report(results, labels))
    return results


def report(results: dict, labels: list[str]) -> str:
    """Per model: mean bits per code at depths 1, 2, 4, 6 and the full depth, and the change."""
    lines = [
        "# Bits per code under each prior (held-out recordings)",
        "",
        "Mean bits per code over the codebooks a depth uses; in brackets, the change against the",
        "fixed width (`packed`). `empirical` is the plug-in entropy of the held-out codes themselves",
        "(biased low when codes are few per symbol: not reachable by a coder). The integer prior is",
        "what `compress` uses when the model has one (`eegcodec train-prior`).",
        "",
    ]
    for label in labels:
        r = results[label]
        bits = r["bits_per_code"]
        full = len(bits["packed"])
        depths = sorted({1, 2, 4, 6, full} & set(range(1, full + 1)))
        lines += [
            f"## {label}",
            f"{r['tokens_train']} training and {r['tokens_held_out']} held-out tokens (code rows x frames).",
            "",
            "| prior | " + " | ".join(f"depth {d}" for d in depths) + " |",
            "|---|" + "---|" * len(depths),
        ]
        for name, v in bits.items():
            cells = [f"{v[d - 1]:.2f} ({100 * (v[d - 1] / bits['packed'][0] - 1):+.1f} %)" for d in depths]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
