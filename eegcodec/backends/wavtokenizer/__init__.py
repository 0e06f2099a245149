"""WavTokenizer as an eegcodec backend: one codebook, one channel at a time.

``network`` is our implementation under the official state-dict names (and reads official
checkpoints), ``codec`` is :class:`~eegcodec.backends.wavtokenizer.codec.WavTokenizerCodec` and
its eegcodec export files, ``trainable`` the training wrapper, ``format`` what a file looks like
and the ``wavtokenizer-75:PATH`` names (no torch). This module is what the registry names.
"""

from __future__ import annotations

import re
from pathlib import Path

from .format import NAMED, NAMED_ROWS, describe, misnamed
from .format import is_wavtokenizer_export as sniff

#: the recipe ``family`` that trains this backend
FAMILY = "wavtokenizer"
__all__ = [
    "FAMILY",
    "NAMED",
    "NAMED_ROWS",
    "describe",
    "load",
    "load_named",
    "misnamed",
    "sniff",
    "trainable",
]


def load(blob: dict, path: Path, name: str | None):
    """A :class:`~eegcodec.backends.wavtokenizer.codec.WavTokenizerCodec` from an eegcodec export."""
    from .codec import wavtokenizer_codec_from_export

    return wavtokenizer_codec_from_export(blob, path, name)


def load_named(match: re.Match):
    """The codec of an official checkpoint named ``wavtokenizer-<variant>:<path>`` (``NAMED``)."""
    from .codec import wavtokenizer_codec_from_checkpoint

    return wavtokenizer_codec_from_checkpoint(Path(match.group(2)).expanduser(), match.group(1))


def trainable():
    """The :class:`~eegcodec.train.modules.TrainableCodec` of this family."""
    from .trainable import WavTokenizerTrainable

    return WavTokenizerTrainable
