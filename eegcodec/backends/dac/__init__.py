"""Descript Audio Codec (DAC) as an eegcodec backend: one channel at a time.

``network`` builds ``dac.DAC`` and prepares it for inference, ``files`` reads and writes DAC's
own format, ``codec`` is :class:`~eegcodec.backends.dac.codec.DACCodec`, ``trainable`` the
training wrapper, ``format`` what a file looks like (no torch). This module is what the registry
(:mod:`eegcodec.backends.registry`) names; it imports torch only when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from .format import PRETRAINED, describe, fetch, pretrained_files
from .format import is_dac_file as sniff

#: the recipe ``family`` that trains this backend
FAMILY = "dac"
__all__ = ["FAMILY", "PRETRAINED", "describe", "fetch", "load", "pretrained_files", "sniff", "trainable"]


def load(blob: dict, path: Path, name: str | None):
    """A :class:`~eegcodec.backends.dac.codec.DACCodec` from a DAC-format file's content."""
    from .codec import dac_codec_from_file

    return dac_codec_from_file(path, name=name, blob=blob)


def trainable():
    """The :class:`~eegcodec.train.modules.TrainableCodec` of this family."""
    from .trainable import DACTrainable

    return DACTrainable
