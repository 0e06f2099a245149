"""DAC-MC weights files: DAC's format (``state_dict``, ``metadata['kwargs']``) plus
``metadata['dac_mc']`` (spatial tokens, heads, the electrode position table)."""

from __future__ import annotations

import io as _io
from pathlib import Path

import torch

from ...errors import EegcodecError
from ..dac.network import dac_arguments
from .format import MC_KEY
from .network import DACMC


def save_dacmc_file(model: DACMC, path: str | Path, eegcodec_meta: dict, position_table: dict) -> Path:
    """Write a DAC-MC model: its state dict, the DAC arguments, the MC settings and the
    position table it was trained with (atomic)."""
    from ...io import atomic_write_bytes

    mc = {"n_spatial": model.n_spatial, "heads": model.aggregate.heads, "positions": position_table}
    buf = _io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "metadata": {"kwargs": dac_arguments(model.dac), MC_KEY: mc, "eegcodec": eegcodec_meta},
        },
        buf,
    )
    return atomic_write_bytes(path, buf.getvalue())


def build_dacmc(blob: dict) -> DACMC:
    mc = blob["metadata"][MC_KEY]
    model = DACMC(dict(blob["metadata"]["kwargs"]), n_spatial=mc["n_spatial"], heads=mc["heads"])
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as exc:
        raise EegcodecError(f"DAC-MC weights do not match its arguments: {str(exc).splitlines()[0]}") from exc
    return model
