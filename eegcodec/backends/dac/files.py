"""DAC's weights files: DAC's own format (what ``dac.DAC.save(path, package=False)`` writes),
``{"state_dict": ..., "metadata": {"kwargs": <DAC constructor arguments>, ...}}``, plus
``metadata["eegcodec"]`` (name, adapter settings, training record) in eegcodec's files."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import EegcodecError
from ..weights import read_weights_file
from .format import is_dac_file
from .network import dac_arguments


def read_dac_file(path: str | Path) -> dict:
    """A DAC-format weights file (``state_dict`` and ``metadata['kwargs']``), read weights-only."""
    blob = read_weights_file(path)
    if not is_dac_file(blob):
        raise EegcodecError(
            f"cannot load model {path}: expected DAC's format {{'state_dict', 'metadata': {{'kwargs'}}}}"
        )
    return blob


def save_dac_file(model, path: str | Path, eegcodec_meta: dict) -> Path:
    """Save ``model`` (a ``dac.DAC``) in DAC's own format plus ``metadata['eegcodec']``.

    The file loads with ``dac.DAC.load(path)`` as well as with :func:`~eegcodec.backends.registry.load_codec`.
    Written atomically.
    """
    import io as _io

    from ...io import atomic_write_bytes

    buf = _io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "metadata": {"kwargs": dac_arguments(model), "eegcodec": eegcodec_meta},
        },
        buf,
    )
    return atomic_write_bytes(path, buf.getvalue())
