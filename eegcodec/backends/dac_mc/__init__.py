"""DAC-MC, a multi-channel DAC, as an eegcodec backend: a code stream that does not grow with
the channel count (:mod:`~eegcodec.backends.dac_mc.network` explains the network).

``network`` is :class:`~eegcodec.backends.dac_mc.network.DACMC`, ``files`` its weights files,
``codec`` :class:`~eegcodec.backends.dac_mc.codec.DACMCCodec`, ``trainable`` the training
wrapper, ``format`` what a file looks like (no torch). This module is what the registry names.
"""

from __future__ import annotations

from pathlib import Path

from .format import describe
from .format import is_dacmc_file as sniff

#: the recipe ``family`` that trains this backend
FAMILY = "dac_mc"
__all__ = ["FAMILY", "describe", "load", "sniff", "trainable"]


def load(blob: dict, path: Path, name: str | None):
    """A :class:`~eegcodec.backends.dac_mc.codec.DACMCCodec` from a DAC-MC file's content."""
    from .codec import dacmc_codec_from_file

    return dacmc_codec_from_file(path, name=name, blob=blob)


def trainable():
    """The :class:`~eegcodec.train.modules.TrainableCodec` of this family."""
    from .trainable import DACMCTrainable

    return DACMCTrainable
