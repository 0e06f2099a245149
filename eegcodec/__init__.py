"""eegcodec: compress EEG with neural audio codecs.

The public API::

    import eegcodec
    codec = eegcodec.load_codec("default")          # or a path, or "dac_16khz"
    eegcodec.compress("rec.edf", "rec.eegc", codec, n_codebooks=4)
    raw = eegcodec.decompress("rec.eegc")            # -> mne.io.RawArray (volts)
    raw = eegcodec.read_raw("rec.eegc")              # decodes only the samples read
    tokens = eegcodec.tokenize("rec.edf", codec)     # codes int64 [rows, depth, frames], times ...
    raw = eegcodec.detokenize(tokens)

``compress``/``decompress`` also take and return in-memory objects: an
``mne.io.Raw`` in, ``.eegc`` bytes out, and back.
"""

from .errors import EegcodecError
from .version import __version__

_API = (
    "compress",
    "decompress",
    "describe",
    "load_codec",
    "read_archive",
    "read_raw",
    "tokenize",
    "detokenize",
    "Tokens",
)


def __getattr__(name: str):
    """The API loads on first use (torch takes seconds to import; ``eegcodec --help`` and
    ``eegcodec info`` do without it)."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'eegcodec' has no attribute {name!r}")


__all__ = [*_API, "EegcodecError", "__version__"]
