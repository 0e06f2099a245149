"""What a WavTokenizer file looks like and says, and the names that carry a checkpoint's path:
no torch.

An eegcodec export is ``{"state_dict", "eegcodec": {"kind": "wavtokenizer", "config", ...}}``;
an official Lightning checkpoint says nothing of its variant, so it is named
``wavtokenizer-75:PATH`` or ``wavtokenizer-40:PATH``.
"""

from __future__ import annotations

import re
from pathlib import Path

#: An official WavTokenizer checkpoint: ``wavtokenizer-<variant>:<path>``.
NAMED = re.compile(r"wavtokenizer-(40|75):(.+)")
#: ``eegcodec models`` rows of the official checkpoints (named by path).
NAMED_ROWS = tuple(
    {
        "name": f"wavtokenizer-{variant}:PATH",
        "status": "official checkpoint, by path",
        "sample_rate": 24000,
        "hop_length": hop,
        "n_codebooks": 1,
        "default_codebooks": 1,
        "codebook_size": 4096,
    }
    for variant, hop in (("75", 320), ("40", 600))
)


def is_wavtokenizer_export(blob: dict) -> bool:
    return isinstance(blob.get("eegcodec"), dict) and blob["eegcodec"].get("kind") == "wavtokenizer"


def describe(blob: dict) -> dict:
    """The ``eegcodec models`` row of an eegcodec export."""
    cfg = blob["eegcodec"].get("config", {})
    return dict(
        sample_rate=cfg.get("sample_rate"),
        n_codebooks=1,
        default_codebooks=1,
        codebook_size=cfg.get("codebook_size"),
    )


def misnamed(blob: dict, path: Path) -> str | None:
    """What to say of a file that is an official checkpoint given by its bare path, else None."""
    state = blob.get("state_dict")
    if isinstance(state, dict) and any(k.startswith("backbone.") for k in state):
        return (
            f"{path} looks like an official WavTokenizer checkpoint: name it wavtokenizer-75:{path} "
            f"(or wavtokenizer-40:...)"
        )
    return None
