"""What a DAC-MC file looks like and says: no torch (the blob may come from
:func:`~eegcodec.backends.weights.read_metadata`, tensors as None)."""

from __future__ import annotations

from ..dac.format import describe as describe_dac

#: ``metadata`` key that marks a DAC-MC file (a DAC-format file with it).
MC_KEY = "dac_mc"


def is_dacmc_file(blob: dict) -> bool:
    return isinstance(blob, dict) and MC_KEY in blob.get("metadata", {})


def describe(blob: dict) -> dict:
    """The ``eegcodec models`` row: DAC's, plus the spatial tokens per frame."""
    return {**describe_dac(blob), "multichannel_tokens": blob["metadata"][MC_KEY]["n_spatial"]}
