"""What a DAC-format file looks like and says, and where DAC's released models live: no torch.

A DAC-format file is ``{"state_dict": ..., "metadata": {"kwargs": <dac.DAC arguments>, ...}}``
(what ``dac.DAC.save(path, package=False)`` writes); eegcodec's files add
``metadata["eegcodec"]``. The blobs here may come from
:func:`~eegcodec.backends.weights.read_metadata` (tensors as None).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import EegcodecError

#: DAC's released audio models: name -> (model_type, model_bitrate) for dac.utils.download.
PRETRAINED = {
    "dac_16khz": ("16khz", "8kbps"),
    "dac_24khz": ("24khz", "8kbps"),
    "dac_44khz": ("44khz", "8kbps"),
}
#: Where dac.utils.download keeps the released models.
CACHE = Path("~") / ".cache" / "descript" / "dac"


def is_dac_file(blob: dict) -> bool:
    return "state_dict" in blob and isinstance(blob.get("metadata"), dict) and "kwargs" in blob["metadata"]


def describe(blob: dict) -> dict:
    """The ``eegcodec models`` row of a DAC-format file: rates, depths, codebook size."""
    meta, kw = blob["metadata"], blob["metadata"]["kwargs"]
    adapter = meta.get("eegcodec", {}).get("adapter") or {}
    return dict(  # the rate EEG is fed at (the adapter's), which may differ from the network's nominal one
        sample_rate=adapter.get("model_rate", kw.get("sample_rate")),
        hop_length=int(np.prod(kw.get("encoder_rates", [1]))),
        n_codebooks=kw.get("n_codebooks"),
        default_codebooks=meta.get("eegcodec", {}).get("default_codebooks", kw.get("n_codebooks")),
        codebook_size=kw.get("codebook_size"),
    )


def dac_cache_path(model_type: str, model_bitrate: str) -> Path:
    """Where ``dac.utils.download`` keeps (and looks for) a released DAC model."""
    import dac.utils

    tag = dac.utils.__MODEL_LATEST_TAGS__[(model_type, model_bitrate)]
    return CACHE.expanduser() / f"weights_{model_type}_{model_bitrate}_{tag}.pth"


def fetch(name: str) -> Path:
    """The weights file of the released model ``name``: from DAC's cache, else downloaded there
    by ``dac.utils.download``; a one-line error when that fails (no network)."""
    model_type, bitrate = PRETRAINED[name]
    path = dac_cache_path(model_type, bitrate)
    if path.exists():
        return path
    import dac.utils

    try:
        return Path(dac.utils.download(model_type=model_type, model_bitrate=bitrate))
    except Exception as exc:
        raise EegcodecError(
            f"cannot download DAC weights for {name} ({type(exc).__name__}); "
            f"with no network, copy the released file to {path} or give the file's path as the model name"
        ) from exc


def pretrained_files() -> list[tuple[str, Path, str]]:
    """(name, file, status) of each released model, as found in DAC's cache (without importing dac)."""
    rows = []
    for name, (mt, br) in PRETRAINED.items():
        cached = sorted(CACHE.expanduser().glob(f"weights_{mt}_{br}_*.pth"))
        path = cached[-1] if cached else CACHE.expanduser() / f"weights_{mt}_{br}_*.pth"
        rows.append((name, path, "cached" if cached else "not downloaded"))
    return rows
