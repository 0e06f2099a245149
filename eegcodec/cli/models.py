"""``eegcodec models``: shipped and cached models."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    m = sub.add_parser(
        "models",
        help="list shipped and cached models",
        description="List shipped and cached models with their rates and depths.",
    )
    m.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..backends.registry import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        extra = ""
        if r.get("sample_rate") is not None:
            extra = (
                f"{r['sample_rate']:g} Hz, hop {r['hop_length']}, up to {r['n_codebooks']} codebooks of "
                f"{r['codebook_size']} "
                f"(default {r['default_codebooks']})"
            ) + (f", {r['size_mb']} MB" if "size_mb" in r else "")
            if "multichannel_tokens" in r:
                extra += f"; multi-channel: {r['multichannel_tokens']} spatial tokens per frame"
        print(f"{r['name']:<22} {r['status']:<30} {extra}")
        if r.get("summary"):
            print(f"{'':<22} card: {r['summary']} ({r['card']})")
    return 0
