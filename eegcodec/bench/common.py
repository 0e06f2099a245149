"""What every benchmark shares: inputs, models, options, hardware, outputs, figures.

Each benchmark writes ``DIR/results.json`` (machine-readable, schema checked in the
tests), ``DIR/report.md`` (the tables) and PNG figures, all atomically.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import EegcodecError
from ..io import atomic_write_bytes, find_recordings
from ..version import __version__


def hardware() -> dict:
    """CPU model, core count, torch threads and GPU (if any) of this machine."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "eegcodec": __version__,
    }


def hardware_line(hw: dict) -> str:
    return f"{hw['cpu']}, {hw['cores']} cores ({hw['torch_threads']} torch threads)" + (
        f", GPU {hw['gpu']}" if hw["gpu"] else ", no GPU"
    )


def dataset_of(path: Path) -> str:
    """A recording's dataset: the name of its folder."""
    return path.resolve().parent.name


def recordings(inputs: list[str], kind: str, more: list[str] = ()) -> list[Path]:
    """The recordings of ``inputs`` (each checked to exist, with those of ``more``, before any model
    loads); an error when there are none."""
    find_recordings(list(inputs) + list(more))
    if not inputs:
        raise EegcodecError(f"bench {kind} needs recordings (files or folders)")
    return find_recordings(inputs)


def model_labels(entries: list[str]) -> tuple[list[str], list[str | None]]:
    """``NAME``, ``PATH`` or ``LABEL=NAME_OR_PATH`` -> (models, labels); labels name models in reports."""
    models, labels = [], []
    for e in entries:
        label, sep, model = e.partition("=")
        if sep and label and "/" not in label:
            models.append(model)
            labels.append(label)
        else:
            models.append(e)
            labels.append(None)
    return models, labels


def quick_option(parser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small settings for a smoke run (short crops, one depth, short recordings)",
    )


def codebooks_option(parser, default: str) -> None:
    parser.add_argument("--codebooks", type=int, nargs="+", metavar="N", help=f"depths (default: {default})")


def crop_option(parser) -> None:
    parser.add_argument(
        "--crop", type=float, metavar="SECONDS", help="seconds from the start of each recording (default 60)"
    )


def load_models(names: list[str], device: str = "cpu") -> list:
    from ..backends.registry import load_codec

    return [load_codec(n, device=device) for n in names]


def model_card(codec) -> dict:
    i = codec.info
    return {
        "name": i.name,
        "kind": i.kind,
        "model_rate": i.sample_rate,
        "hop": i.hop_length,
        "n_codebooks": i.n_codebooks,
        "default_codebooks": i.default_codebooks or i.n_codebooks,
        "codebook_size": i.codebook_size,
        "weights_sha256": i.weights_sha256,
    }


def write_outputs(out: Path, results: dict, report: str) -> None:
    """``results.json`` and ``report.md`` into ``out`` (atomic writes)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / "results.json", json.dumps(_jsonable(results), indent=1, allow_nan=True).encode()
    )
    atomic_write_bytes(out / "report.md", report.encode())


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_figure(fig, path: Path) -> str:
    """Save a matplotlib figure atomically as PNG; returns the file name."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path.name


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def md_table(header: list[str], rows: list[list], fmt: dict[int, str] | None = None) -> str:
    """A Markdown table; ``fmt`` maps column index -> format spec for numbers (NaN prints as -)."""
    fmt = fmt or {}

    def cell(i, v):
        if isinstance(v, float) and not np.isfinite(v):
            return "-"
        return format(v, fmt[i]) if i in fmt and isinstance(v, (int, float)) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(i, v) for i, v in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


class Clock:
    """Wall time since construction, for the report footer."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.t0, 1)
