"""``eegcodec bench speed``: real-time factors and peak memory of ``compress`` / ``decompress``.

For each model and each length, an EDF of that length is built by tiling the first input
recording (its channels and rate; 64-channel synthetic 1/f noise at 160 Hz when no input
is given), then each CLI verb runs as its own process (Python start-up, imports and model
loading included, as a user sees it) and its wall time and peak resident memory (from the
OS, ``ru_maxrss`` of the child) are recorded. Real-time factor = recording seconds per
wall second. Memory that stays flat as the length grows shows the chunked streaming.

The model name ``dac16k-sized`` builds a DAC with the 16-kHz DAC architecture (74 M
parameters, hop 320) and random weights, with the adapter of ``recipes/dac16k_finetune.yaml``
(EEG at 1000 Hz): a speed stand-in for a fine-tuned DAC-16k, not a codec to judge quality by.
The names ``lossless``, ``prd=P`` and ``max-error=V`` time those modes (no model).

With ``busy`` each (model, length) is timed twice: with the machine as it is, then beside a
process spinning on another core (:func:`busy_core`), as a laptop or a shared server often
is. The rows say which, and the load average before each row (``/proc/loadavg``, where the
system has one) and the thread variables the children inherited are kept with the results.

With ``tokenize`` each model's row also times ``eegcodec tokenize`` of the recording into a
fresh token store (its own process, as the other verbs). With ``embed`` (a semi-synthetic set's
folder, ``eegcodec align make-synthetic``), encoder B's embedding of its manifest
(:func:`eegcodec.align.dataset.embed_manifest`, the first step of ``eegcodec align train``, with
an empty cache) is timed in its own process, quiet and (``busy``) beside the busy loop: pairs
per second, and the minutes the whole set takes at that rate.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..io import find_recordings
from .children import beside, busy_core, child, load_average, median_time
from .common import Clock, hardware, hardware_line, md_table, pyplot, quick_option, save_figure, write_outputs
from .speed_tokens import embed_beside, embed_table, time_tokenize, tokenize_table

DAC16K_ARCH = dict(
    encoder_dim=64,
    encoder_rates=[2, 4, 5, 8],
    decoder_dim=1536,
    decoder_rates=[8, 5, 4, 2],
    n_codebooks=12,
    codebook_size=1024,
    codebook_dim=8,
    sample_rate=16000,
)
DAC16K_ADAPTER = dict(model_rate=1000.0, chunk_seconds=30.0, overlap_seconds=1.0)
#: the window ``read_raw(...).get_data`` reads from the middle of each file (seconds, all channels)
WINDOW_SECONDS = 10.0
#: the compress flags of the modes that need no model (:func:`verb_flags`)
MODE_FLAGS = ("--lossless", "--prd", "--max-error")


@dataclass
class SpeedConfig:
    minutes: list[float] = field(default_factory=lambda: [1.0, 10.0, 60.0])
    channels: int | None = None  #: channels of the built recordings (None: the input's, or 64)
    device: str = "cpu"
    repeats: int = 3  #: runs of each verb; the median time and the highest peak are reported
    busy: bool = False  #: also time each (model, length) beside a process spinning on another core
    window_repeats: int = 3  #: fresh processes timing the 10-s window read; the median is reported
    tokenize: bool = False  #: also time ``eegcodec tokenize`` of each recording (models only)
    embed: str | None = None  #: a semi-synthetic set's folder: also time encoder B's embedding of it
    embed_recipe: str | None = None  #: the alignment recipe (None: AlignConfig's, encoder A audio-dac-small)
    embed_set: list[str] = field(default_factory=list)  #: the recipe's ``key=value`` overrides

    @classmethod
    def quick(cls) -> SpeedConfig:
        return cls(minutes=[0.1, 0.2], channels=4, repeats=1, window_repeats=1)


HELP = "real-time factor and peak memory of compress and decompress"
INPUTS = "recording files or folders (the first is tiled to each length)"
MODELS = (
    "model names or files, optionally LABEL=MODEL (also dac16k-sized and the modes that need no model: "
    "lossless, prd=P, max-error=V); default: default"
)


def add_arguments(parser) -> None:
    quick_option(parser)
    parser.add_argument("--minutes", type=float, nargs="+", help="recording lengths (default 1 10 60)")
    parser.add_argument(
        "--channels", type=int, help="channel count of the built recordings (default: the input's, or 64)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    parser.add_argument(
        "--repeats", type=int, metavar="N", help="runs of each verb, median reported (default 3; --quick 1)"
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="also time each model and length beside a process spinning on another core",
    )
    parser.add_argument(
        "--tokenize", action="store_true", help="also time `eegcodec tokenize` of each recording (models)"
    )
    parser.add_argument(
        "--embed",
        metavar="DIR",
        help="also time encoder B's embedding of this semi-synthetic set (eegcodec align make-synthetic)",
    )
    parser.add_argument("--embed-recipe", metavar="YAML", help="the alignment recipe for --embed")
    parser.add_argument(
        "--embed-set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides of --embed-recipe"
    )


def main(args, say) -> None:
    find_recordings(args.inputs)  # none: a synthetic recording
    cfg = SpeedConfig.quick() if args.quick else SpeedConfig()
    cfg.minutes = args.minutes or cfg.minutes
    cfg.channels = args.channels or cfg.channels
    cfg.device = args.device
    cfg.repeats = args.repeats or cfg.repeats
    cfg.busy = args.busy
    cfg.tokenize, cfg.embed, cfg.embed_recipe = args.tokenize, args.embed, args.embed_recipe
    cfg.embed_set = args.embed_set
    run(args.inputs, args.models, Path(args.out), cfg, progress=say)  # modes: prd=10, not labels


def make_recording(
    path: Path, source: Path | None, minutes: float, channels: int | None
) -> tuple[int, float]:
    """Write an EDF of ``minutes`` tiled from ``source`` (or synthetic noise; an EDF/BDF source's
    digital samples, on its scaling, unless ``channels`` changes them); returns (channels, sfreq)."""
    import mne

    from ..edf import edf_ranges
    from ..io import read_raw, write_raw

    ranges = None
    if source is not None:
        full = read_raw(source, preload=True)
        raw = full.copy().pick("eeg")
        base, sfreq = raw.get_data(), raw.info["sfreq"]
        names = raw.ch_names
        # an EDF/BDF source's scaling: the tiled file holds the source's digital samples
        ranges = edf_ranges(Path(source), full) if raw.ch_names == full.ch_names else None
    else:
        sfreq, n0 = 160.0, 160 * 60
        rng = np.random.default_rng(0)
        base = np.cumsum(rng.normal(size=(channels or 64, n0)), axis=1) * 1e-6
        base -= base.mean(axis=1, keepdims=True)
        names = [f"EEG{i:03d}" for i in range(base.shape[0])]
    if channels:
        ranges = None
        reps = -(-channels // base.shape[0])
        base = np.tile(base, (reps, 1))[:channels]
        names = [f"EEG{i:03d}" for i in range(channels)]
    n = int(minutes * 60 * sfreq)
    data = np.tile(base, (1, -(-n // base.shape[1])))[:, :n]
    write_raw(
        mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error"), path, edf_ranges=ranges
    )
    return data.shape[0], sfreq


def dac16k_sized(path: Path) -> Path:
    """Save a random-weight DAC of the 16-kHz architecture (eegcodec metadata) to ``path``."""
    import torch

    from ..adapt import AdapterConfig
    from ..backends.dac.files import save_dac_file
    from ..backends.dac.network import build_dac

    torch.manual_seed(0)
    save_dac_file(
        build_dac(DAC16K_ARCH),
        path,
        {"name": "dac16k-sized", "adapter": AdapterConfig(**DAC16K_ADAPTER).to_dict()},
    )
    return path


#: the environment variables that set native thread pools, kept with the results
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run(inputs: list[str], model_names: list[str], out: Path, cfg: SpeedConfig, progress=print) -> dict:
    """Time every (model, length); write results.json, report.md and speed.png into ``out``."""
    clock = Clock()
    source = find_recordings(inputs)[0] if inputs else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in model_names:
            model = str(dac16k_sized(tmp / "dac16k-sized.pth")) if name == "dac16k-sized" else name
            for minutes in cfg.minutes:
                for busy in (False, True) if cfg.busy else (False,):
                    progress(f"speed: {name}, {minutes:g} min" + (", another core busy" if busy else ""))
                    rows.append({"model": name, **_time_beside(tmp, source, model, minutes, cfg, busy)})
        embed_rows = []
        for busy in (False, True) if cfg.embed and cfg.busy else (False,) if cfg.embed else ():
            progress("speed: encoder B's embedding" + (", another core busy" if busy else ""))
            embed_rows.append(embed_beside(tmp, cfg.embed, cfg.embed_recipe, cfg.embed_set, busy))
    results = {
        "benchmark": "speed",
        "config": asdict(cfg),
        "hardware": hardware(),
        "thread_variables": {v: os.environ.get(v) for v in THREAD_VARIABLES},
        "source": str(source) if source else "synthetic",
        "rows": rows,
        **({"embed_rows": embed_rows} if embed_rows else {}),
        "elapsed_s": clock.seconds(),
    }
    results["figures"] = plot(results, out)
    write_outputs(out, results, report(results))
    return results


def verb_flags(model: str, device: str) -> tuple[list[str], list[str]]:
    """(compress flags, decompress flags) for a model name, or for a mode that needs no model:
    ``lossless``, ``prd=P`` (percent) or ``max-error=V`` (e.g. ``max-error=2uV``)."""
    common = ["--device", device, "-q", "--force"]  # repeats replace their own outputs
    kind, _, value = model.partition("=")
    if kind == "lossless":
        return ["--lossless", *common], common
    if kind in ("prd", "max-error") and value:
        return [f"--{kind}", value, *common], common
    return ["--model", model, *common], ["--model", model, *common]


def _time_beside(tmp: Path, source, model: str, minutes: float, cfg: SpeedConfig, busy: bool) -> dict:
    """:func:`_time_one`, beside :func:`busy_core` if ``busy``; the row says which and the load
    average before it."""
    load = load_average()
    with busy_core() if busy else contextlib.nullcontext((None, None)) as (_, cpu):
        return {"busy": busy, "busy_cpu": cpu, "loadavg": load, **_time_one(tmp, source, model, minutes, cfg)}


def _time_one(tmp: Path, source, model: str, minutes: float, cfg: SpeedConfig) -> dict:
    """Compress and decompress a recording of ``minutes`` ``cfg.repeats`` times each, in child processes."""
    exe = [sys.executable, "-m", "eegcodec.cli"]
    src, arc = tmp / "rec.edf", tmp / "rec.eegc"
    # max-error files go to FIF: an EDF output may round a sample past the bound's reserve (refused)
    back = tmp / ("back.fif" if model.startswith("max-error") else "back.edf")
    n_ch, sfreq = make_recording(src, source, minutes, cfg.channels)
    flags_c, flags_d = verb_flags(model, cfg.device)
    runs_c = [child(exe + ["compress", str(src), "-o", str(arc)] + flags_c) for _ in range(cfg.repeats)]
    runs_d = [child(exe + ["decompress", str(arc), "-o", str(back)] + flags_d) for _ in range(cfg.repeats)]
    tokenize = (
        time_tokenize(tmp, src, model, minutes, cfg.repeats, cfg.device)
        if cfg.tokenize and "=" not in model
        else {}
    )
    (tc, mc), (td, md) = median_time(runs_c), median_time(runs_d)
    window = _window_times(arc, cfg.window_repeats, None if flags_c[0] in MODE_FLAGS else model)
    info = json.loads(
        subprocess.run(exe + ["info", str(arc), "--json"], capture_output=True, text=True, check=True).stdout
    )
    sec = minutes * 60
    return {
        "minutes": minutes,
        "channels": n_ch,
        "sfreq": sfreq,
        "device": cfg.device,
        "codebooks": info["codebooks"],
        "bits_per_sample": info["bits_per_sample"],
        "compress_s": tc,
        "compress_realtime": sec / tc,
        "compress_peak_mb": mc,
        "decompress_s": td,
        "decompress_realtime": sec / td,
        "decompress_peak_mb": md,
        "compress_runs_s": [t for t, _, _ in runs_c],
        "decompress_runs_s": [t for t, _, _ in runs_d],
        "compress_cpu_s": float(np.median([c for _, _, c in runs_c])),
        "decompress_cpu_s": float(np.median([c for _, _, c in runs_d])),
        **window,
        **tokenize,
    }


def _window_times(arc: Path, repeats: int, model: str | None) -> dict:
    """``read_raw(arc).get_data`` of 10 s from the middle, each run in a fresh process
    (:mod:`eegcodec.bench.window`; ``model``: a token file's): the median run's figures, the
    highest peak (MB)."""
    cmd = [
        sys.executable,
        "-m",
        "eegcodec.bench.window",
        str(arc),
        str(WINDOW_SECONDS),
        *([model] if model else []),
    ]
    runs = []
    for _ in range(repeats):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            lines = done.stderr.strip().splitlines()
            raise RuntimeError(
                f"timing a window of {arc.name} failed: {lines[-1] if lines else done.returncode}"
            )
        runs.append(json.loads(done.stdout))
    mid = sorted(runs, key=lambda r: r["call_s"])[len(runs) // 2]
    return {f"window_{k}": mid[k] for k in ("call_s", "open_s", "read_s", "again_s", "model_s")} | {
        "window_peak_mb": max(r["peak_mb"] for r in runs),
        "window_runs_s": [r["call_s"] for r in runs],
    }


def report(res: dict) -> str:
    src = res["source"]
    lines = [
        "# Speed and memory benchmark\n",
        f"Hardware: {hardware_line(res['hardware'])}; device {res['config']['device']}. Recordings tiled "
        f"from {src}. "
        "Each verb timed as its own process (start-up and model loading included); real-time factor = "
        "recording "
        f"seconds per wall second; peak = the process's maximum resident memory. Each verb run "
        f"{res['config']['repeats']} "
        f"time(s): median seconds (range in brackets), highest peak. Run time {res['elapsed_s']} s.\n",
    ]
    lines += _conditions(res)

    def secs(r: dict, verb: str) -> str:
        runs, cpu = r[f"{verb}_runs_s"], r.get(f"{verb}_cpu_s")
        spread = f" [{min(runs):.1f}-{max(runs):.1f}]" if len(runs) > 1 else ""
        return f"{r[verb + '_s']:.1f}{spread}" + (f", CPU {cpu:.1f}" if cpu is not None else "")

    rows = [
        [
            r["model"],
            beside(r),
            r["minutes"],
            f"{r['channels']} x {r['sfreq']:g} Hz",
            r["codebooks"],
            r["bits_per_sample"],
            secs(r, "compress"),
            r["compress_realtime"],
            r["compress_peak_mb"],
            secs(r, "decompress"),
            r["decompress_realtime"],
            r["decompress_peak_mb"],
        ]
        for r in res["rows"]
    ]
    lines.append(
        md_table(
            [
                "model",
                "beside it",
                "minutes",
                "recording",
                "codebooks",
                "bits/sample",
                "compress s",
                "compress x realtime",
                "compress peak MB",
                "decompress s",
                "decompress x realtime",
                "decompress peak MB",
            ],
            rows,
            {2: "g", 5: ".3f", 7: ".3g", 8: ".0f", 10: ".3g", 11: ".0f"},
        )
        + "\n"
    )
    lines += _window_table(res) + tokenize_table(res) + embed_table(res)
    lines += [f"![{f}]({f})\n" for f in res.get("figures", [])]
    return "\n".join(lines)


def _window_table(res: dict) -> list[str]:
    """The random-access table: ``read_raw(path).get_data`` of 10 s of all channels from the middle of
    each file, in a fresh process (results written before it: none)."""
    rows = [r for r in res["rows"] if "window_call_s" in r]
    if not rows:
        return []
    head = [
        "## Random access: 10 s of all channels from the middle\n",
        "`eegcodec.read_raw(path, codec=...).get_data(start, stop)` in a fresh process "
        "(`python -m eegcodec.bench.window`): *whole call* = open (header, side data, measurement info) + "
        "the read, the first in the process (compiled loops loaded from numba's cache and scipy's FFT "
        "imported on the way); *again* = the same call on another window right after; *model* = "
        "loading the model a token file names, before the call (a viewer holding it pays it once). "
        "The file was just written, so it is in the page cache. Peak = the process's maximum resident "
        "memory.\n",
    ]
    table = [
        [
            r["model"],
            r["minutes"],
            f"{r['channels']} x {r['sfreq']:g} Hz",
            1000 * r["window_call_s"],
            1000 * r["window_open_s"],
            1000 * r["window_read_s"],
            1000 * r["window_again_s"],
            r["window_model_s"],
            r["window_peak_mb"],
        ]
        for r in rows
    ]
    cols = ["model", "minutes", "recording", "whole call ms", "open ms", "read ms", "again ms", "model s"]
    return head + [
        md_table(
            [*cols, "peak MB"], table, {1: "g", 3: ".0f", 4: ".0f", 5: ".0f", 6: ".0f", 7: ".1f", 8: ".0f"}
        )
        + "\n"
    ]


def _conditions(res: dict) -> list[str]:
    """The report's line on the thread variables and the *beside it* and *CPU* columns (results
    written before them: none)."""
    if "thread_variables" not in res:
        return []
    env = ", ".join(f"{k}={v if v is not None else 'unset'}" for k, v in res["thread_variables"].items())
    return [
        f"Thread variables: {env}. *Beside it*: a process spinning on another core during the row's "
        "runs (busy loop) or nothing added by the benchmark, and the 1-minute load average before "
        "the row (other work on the machine shows there). *CPU*: the median run's CPU seconds (user "
        "and system, all threads): the work and any spinning, not the time spent waiting for a core.\n"
    ]


def plot(res: dict, out: Path) -> list[str]:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for model, busy in dict.fromkeys((r["model"], r.get("busy", False)) for r in res["rows"]):
        rs = [r for r in res["rows"] if r["model"] == model and r.get("busy", False) == busy]
        m = [r["minutes"] for r in rs]
        name = f"{model}, core busy" if busy else model
        for verb, ls in (("compress", "-"), ("decompress", "--")):
            axes[0].plot(m, [r[f"{verb}_realtime"] for r in rs], ls=ls, marker="o", label=f"{name} {verb}")
            axes[1].plot(m, [r[f"{verb}_peak_mb"] for r in rs], ls=ls, marker="o", label=f"{name} {verb}")
    for ax, title in zip(axes, ("x real time (higher is faster)", "peak memory MB")):
        ax.set_xscale("log")
        ax.set_xlabel("recording minutes")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    return [save_figure(fig, out / "speed.png")]
