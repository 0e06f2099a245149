"""eegcodec: compress EEG with neural audio codecs.

The public API::

    import eegcodec
    codec = eegcodec.load_codec("default")          # or a path, or "dac_16khz"
    eegcodec.compress("rec.edf", "rec.eegc", codec, n_codebooks=4)
    raw = eegcodec.decompress("rec.eegc")            # -> mne.io.RawArray (volts)

``compress``/``decompress`` also take and return in-memory objects: an
``mne.io.Raw`` in, ``.eegc`` bytes out, and back.
"""

from .api import compress, decompress, load_codec  # noqa: E402
from .errors import EegcodecError  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ["compress", "decompress", "load_codec", "EegcodecError", "__version__"]
