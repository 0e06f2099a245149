"""Token throughput rows of ``eegcodec bench speed`` (:mod:`eegcodec.bench.speed`):
``eegcodec tokenize`` of each recording (``--tokenize``) and encoder B's embedding of a
semi-synthetic set (``--embed DIR``), each in its own process, quiet and (``--busy``) beside a
process spinning on another core; the report's tables give each busy rate as a share of the
quiet one."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .children import beside, busy_core, child, load_average, median_time
from .common import md_table

#: pairs of the full semi-synthetic set (``eegcodec align make-synthetic`` without ``--quick``)
FULL_SET_PAIRS = 1536


def time_tokenize(tmp: Path, src: Path, model: str, minutes: float, repeats: int, device: str) -> dict:
    """``eegcodec tokenize`` of ``src`` into a fresh store, ``repeats`` times in child
    processes: the ``tokenize_*`` fields of a row (model names only; the modes have no tokens)."""
    if model in ("lossless",):
        return {}
    exe = [
        sys.executable,
        "-m",
        "eegcodec.cli",
        "tokenize",
        str(src),
        "--model",
        model,
        "--device",
        device,
    ]
    runs = []
    for i in range(repeats):
        runs.append(child(exe + ["-o", str(tmp / f"store{i}"), "-q"]))
        shutil.rmtree(tmp / f"store{i}", ignore_errors=True)
    t, peak = median_time(runs)
    return {
        "tokenize_s": t,
        "tokenize_realtime": minutes * 60 / t,
        "tokenize_peak_mb": peak,
        "tokenize_runs_s": [r for r, _, _ in runs],
        "tokenize_cpu_s": float(np.median([c for _, _, c in runs])),
    }


#: the child that times encoder B's embedding: argv DATA RECIPE(or "") KEY=VALUE... -> "seconds
#: pairs windows"
EMBED_CHILD = """
import sys, time
from eegcodec.align.config import AlignConfig, load_align_recipe
from eegcodec.align.dataset import embed_manifest
from eegcodec.align.encoders import AudioEncoder, EEGEncoder
from eegcodec.align.pairs import read_manifest
data, recipe = sys.argv[1], sys.argv[2]
cfg = load_align_recipe(recipe, sys.argv[3:]) if recipe else AlignConfig(encoder_a="audio-dac-small")
cfg.data.root = data
enc_a = AudioEncoder(cfg.encoder_a)
enc_b = EEGEncoder(cfg.encoder_b, cfg.encoder_b_depth)
t = time.perf_counter()
s = embed_manifest(cfg.data.manifest, cfg, enc_a, enc_b, show_progress=False)
print(time.perf_counter() - t, len(read_manifest(f"{data}/{cfg.data.manifest}")), len(s.e_b))
"""


def embed_beside(tmp: Path, data: str, recipe: str | None, overrides: list[str], busy: bool) -> dict:
    """Encoder B's embedding of the set in ``data`` (an empty cache: the set's files linked into a
    fresh folder) under the alignment ``recipe`` (None: :class:`AlignConfig`'s, encoder A
    audio-dac-small) with ``overrides`` (``key=value``), in a child process, beside
    :func:`busy_core` if ``busy``: a row (pairs, windows, seconds, pairs per second)."""
    root = tmp / f"embed_{int(busy)}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for entry in Path(data).expanduser().iterdir():
        if entry.name != ".eegcodec_cache":
            (root / entry.name).symlink_to(entry.resolve())
    load = load_average()
    cmd = [sys.executable, "-c", EMBED_CHILD, str(root), recipe or "", *overrides]
    with busy_core() if busy else contextlib.nullcontext((None, None)) as (_, cpu):
        done = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree(root, ignore_errors=True)
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
        raise RuntimeError(f"encoder B's embedding failed: {tail}")
    seconds, pairs, windows = done.stdout.split()[-3:]
    seconds, pairs = float(seconds), int(pairs)
    return {
        "busy": busy,
        "busy_cpu": cpu,
        "loadavg": load,
        "pairs": pairs,
        "windows": int(windows),
        "embed_s": seconds,
        "pairs_per_s": pairs / seconds,
    }


def tokenize_table(res: dict) -> list[str]:
    """``eegcodec tokenize`` per row (where timed), and the busy rows' rate against the quiet one's."""
    rows = [r for r in res["rows"] if "tokenize_s" in r]
    if not rows:
        return []
    quiet = {(r["model"], r["minutes"]): r["tokenize_realtime"] for r in rows if not r.get("busy")}
    table = [
        [
            r["model"],
            beside(r),
            r["minutes"],
            f"{r['tokenize_s']:.1f}, CPU {r['tokenize_cpu_s']:.1f}",
            r["tokenize_realtime"],
            r["tokenize_realtime"] / quiet[(r["model"], r["minutes"])]
            if (r["model"], r["minutes"]) in quiet
            else None,
            r["tokenize_peak_mb"],
        ]
        for r in rows
    ]
    head = [
        "model",
        "beside it",
        "minutes",
        "tokenize s",
        "tokenize x realtime",
        "of the quiet rate",
        "peak MB",
    ]
    return [
        "`eegcodec tokenize` of the same recording into a fresh token store (its own process):\n",
        md_table(head, table, {2: "g", 4: ".3g", 5: ".2f", 6: ".0f"}) + "\n",
    ]


def embed_table(res: dict) -> list[str]:
    """Encoder B's embedding of a semi-synthetic set, quiet and beside the busy loop."""
    rows = res.get("embed_rows") or []
    if not rows:
        return []
    quiet = next((r["pairs_per_s"] for r in rows if not r["busy"]), None)
    table = [
        [
            beside(r),
            r["pairs"],
            r["windows"],
            r["embed_s"],
            r["pairs_per_s"],
            r["pairs_per_s"] / quiet if quiet else None,
            FULL_SET_PAIRS / r["pairs_per_s"] / 60,
        ]
        for r in rows
    ]
    head = [
        "beside it",
        "pairs",
        "windows",
        "seconds",
        "pairs/s",
        "of the quiet rate",
        f"minutes for {FULL_SET_PAIRS} pairs",
    ]
    return [
        f"Encoder B's embedding (`embed_manifest`, empty cache) of {res['config'].get('embed')}:\n",
        md_table(head, table, {3: ".1f", 4: ".3g", 5: ".2f", 6: ".1f"}) + "\n",
    ]
