"""``eegcodec info``: what an ``.eegc`` file holds (no model, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

from .common import measured_line, often_exact_lines


def add_parser(sub) -> None:
    i = sub.add_parser(
        "info",
        help="what an .eegc file holds",
        description="Show an .eegc file's recording, model, sizes and bits per sample.",
    )
    i.add_argument("input", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from ..reader import describe

    d = describe(Path(args.input))
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    r = d["recording"]
    print(f"file            {d['file']} ({d['file_bytes']:,} bytes, .eegc version {d['format_version']})")
    print(
        f"recording       {r['channels']} channels ({r['coded_channels']} coded), {r['sfreq']:g} Hz, "
        f"{r['duration_s']:g} s, {r['annotations']} annotations"
    )
    print(f"measured        {r['meas_date']}{'  (anonymized)' if r['anonymized'] else ''}")
    exact = r["lossless_channels"]
    if d["mode"] in ("tokens", "prd"):
        for name, why in exact.items():
            print(f"exact           {name}: {why}")
    if d["model"]:
        sha = d["weights_sha256"][:16]
        print(f"model           {d['model']} (weights sha256 {sha}...), {d['codebooks']} codebooks")
        if d["code_coder"] == "prior":
            print(
                f"codes           entropy-coded under the model's prior (sha256 {d['prior_sha256'][:16]}...)"
            )
    print(f"mode            {d['mode']}: {d['guarantee']}")
    if d["measured_prd"]:
        print(f"fidelity        {measured_line(d['measured_prd'])}")
    if d["mains"]:
        m = d["mains"]
        print(
            f"mains           {m['min_hz']:g}-{m['max_hz']:g} Hz removed before coding and stored apart "
            f"in {m['chunks']} of {m['of_chunks']} chunks"
        )
    print("sections        " + ", ".join(f"{k} {v:,} B" for k, v in d["sections"].items()))
    over = (
        "codes, layer + side data over coded channels" if d["mode"] in ("tokens", "prd") else "all channels"
    )
    print(f"bits/sample     {d['bits_per_sample']} ({over} x samples); CR16 {d['cr16']}")
    print(f"whole file      {d['file_bits_per_sample']} bits/sample over all channels")
    if d["compression_ratio_vs_source"]:
        print(
            f"vs source       {d['source']['name'] or '(name removed)'} {d['source']['bytes']:,} bytes -> "
            f"{d['compression_ratio_vs_source']}x smaller"
        )
    for line in often_exact_lines(d["often_exact_channels"]):
        print(line)
    return 0
