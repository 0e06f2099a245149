"""Model registry: shipped EEG models, DAC's pretrained audio models, local files.

``load_codec(name_or_path)`` accepts

* a shipped model name (``mc-small``, ``dac-small``; ``default`` names the best shipped model),
* a pretrained DAC name (``dac_16khz``, ``dac_24khz``, ``dac_44khz``), loaded from
  DAC's own cache (``~/.cache/descript/dac``) and downloaded there by
  ``dac.utils.download`` when missing,
* a path to a weights file in DAC's format (an audio DAC or an eegcodec checkpoint),
  a DAC-MC (multi-channel) file, or an eegcodec WavTokenizer export,
* ``wavtokenizer-75:PATH`` / ``wavtokenizer-40:PATH``: an official WavTokenizer
  checkpoint (75 or 40 tokens/s; the file does not say which).
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EegcodecError

if TYPE_CHECKING:
    from ..codecs.base import Codec

# The codec modules import torch: they are imported where a model is read or loaded, so that
# naming, resolving and listing models (``eegcodec models``) start without torch.

HERE = Path(__file__).parent
#: Shipped models: name -> file in this folder.
SHIPPED = {
    "dac-small": "dac-small.pth",
    "mc-small": "mc-small.pth",
    "mc-320": "mc-320.pth",
    "audio-dac-small": "audio-dac-small.pth",
}
#: The metadata key of a DAC-MC file (``codecs.dac_mc.MC_KEY``, here so that describing needs no torch).
MC_KEY = "dac_mc"
#: Names that stand for another name.
ALIASES = {"default": "mc-small"}
#: DAC's released audio models: name -> (model_type, model_bitrate) for dac.utils.download.
PRETRAINED_DAC = {
    "dac_16khz": ("16khz", "8kbps"),
    "dac_24khz": ("24khz", "8kbps"),
    "dac_44khz": ("44khz", "8kbps"),
}
#: An official WavTokenizer checkpoint: ``wavtokenizer-<variant>:<path>``.
WAVTOKENIZER_NAME = re.compile(r"wavtokenizer-(40|75):(.+)")


def dac_cache_path(model_type: str, model_bitrate: str) -> Path:
    """Where ``dac.utils.download`` keeps (and looks for) a released DAC model."""
    import dac.utils

    tag = dac.utils.__MODEL_LATEST_TAGS__[(model_type, model_bitrate)]
    return Path.home() / ".cache" / "descript" / "dac" / f"weights_{model_type}_{model_bitrate}_{tag}.pth"


def _pretrained_path(name: str) -> Path:
    model_type, bitrate = PRETRAINED_DAC[name]
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


def resolve_model(name_or_path: str | Path) -> tuple[Path, str | None]:
    """(weights file, registered name) for a model name or path (name None for a path:
    the file's own ``metadata['eegcodec']['name']`` or its stem is used)."""
    key = str(name_or_path)
    key = ALIASES.get(key, key)
    if key in SHIPPED:
        path = HERE / SHIPPED[key]
        if not path.exists():
            raise EegcodecError(
                f"shipped model {key!r} is missing from the installation ({path}); reinstall eegcodec"
            )
        return path, key
    if key in PRETRAINED_DAC:
        return _pretrained_path(key), key
    path = Path(key).expanduser()
    if path.suffix in (".pth", ".pt", ".ckpt") or path.exists():
        return path, None
    names = sorted(list(SHIPPED) + list(ALIASES) + list(PRETRAINED_DAC)) + [
        "wavtokenizer-75:PATH",
        "wavtokenizer-40:PATH",
    ]
    raise EegcodecError(f"unknown model {key!r}: give a weights file path or one of {', '.join(names)}")


def _dac_describe(blob: dict) -> dict:
    meta, kw = blob["metadata"], blob["metadata"]["kwargs"]
    adapter = meta.get("eegcodec", {}).get("adapter") or {}
    row = dict(  # the rate EEG is fed at (the adapter's), which may differ from the network's nominal one
        sample_rate=adapter.get("model_rate", kw.get("sample_rate")),
        hop_length=int(np.prod(kw.get("encoder_rates", [1]))),
        n_codebooks=kw.get("n_codebooks"),
        default_codebooks=meta.get("eegcodec", {}).get("default_codebooks", kw.get("n_codebooks")),
        codebook_size=kw.get("codebook_size"),
    )
    if MC_KEY in meta:
        row["multichannel_tokens"] = meta[MC_KEY]["n_spatial"]
    return row


def _wavtokenizer_describe(blob: dict) -> dict:
    cfg = blob["eegcodec"].get("config", {})
    return dict(
        sample_rate=cfg.get("sample_rate"),
        n_codebooks=1,
        default_codebooks=1,
        codebook_size=cfg.get("codebook_size"),
    )


@dataclass(frozen=True)
class Backend:
    """A codec family's weights files: ``sniff(blob)`` says whether a file's content is one,
    ``load(blob, path, name)`` makes the :class:`Codec`, ``describe(blob)`` the ``models`` row."""

    sniff: Callable[[dict], bool]
    load: Callable[[dict, Path, str | None], Codec]
    describe: Callable[[dict], dict]


#: kind -> backend, tried in this order (a DAC-MC file is also a DAC-format file). A new
#: backend is one module and one line here.
BACKENDS = {
    "dac-mc": Backend(
        lambda blob: _dac_mc().is_dacmc_file(blob),
        lambda blob, path, name: _dac_mc().dacmc_codec_from_file(path, name=name, blob=blob),
        _dac_describe,
    ),
    "dac": Backend(
        lambda blob: _dac().is_dac_file(blob),
        lambda blob, path, name: _dac().dac_codec_from_file(path, name=name, blob=blob),
        _dac_describe,
    ),
    "wavtokenizer": Backend(
        lambda blob: _wavtokenizer().is_wavtokenizer_export(blob),
        lambda blob, path, name: _wavtokenizer().wavtokenizer_codec_from_export(blob, path, name),
        _wavtokenizer_describe,
    ),
}


def _dac():
    from ..codecs import dac_codec

    return dac_codec


def _dac_mc():
    from ..codecs import dac_mc

    return dac_mc


def _wavtokenizer():
    from ..codecs import wavtokenizer_codec

    return wavtokenizer_codec


def backend_of(blob: dict, path: Path) -> Backend:
    """The backend whose files look like ``blob``; a one-line error naming what it is not."""
    for backend in BACKENDS.values():
        if backend.sniff(blob):
            return backend
    if isinstance(blob.get("state_dict"), dict) and any(
        k.startswith("backbone.") for k in blob["state_dict"]
    ):
        raise EegcodecError(
            f"{path} looks like an official WavTokenizer checkpoint: name it wavtokenizer-75:{path} "
            f"(or wavtokenizer-40:...)"
        )
    raise EegcodecError(f"cannot load model {path}: not a file of any backend ({', '.join(BACKENDS)})")


def load_codec(name_or_path: str | Path = "default", device: str = "cpu") -> Codec:
    """Load a codec by name or path and move it to ``device`` ("cpu" or "cuda")."""
    from ..codecs.dac_codec import read_weights_file
    from ..codeprior import CodePrior, older_priors, prior_path

    key = ALIASES.get(str(name_or_path), str(name_or_path))
    official = WAVTOKENIZER_NAME.fullmatch(key)
    if official:
        checkpoint = Path(official.group(2)).expanduser()
        return _wavtokenizer().wavtokenizer_codec_from_checkpoint(checkpoint, official.group(1)).to(device)
    path, name = resolve_model(key)
    blob = read_weights_file(path)
    codec = backend_of(blob, path).load(blob, path, name).to(device)
    beside = prior_path(path)
    if beside.is_file():  # the model's code prior (eegcodec train-prior)
        codec.prior = CodePrior.from_bytes(beside.read_bytes())
    codec.older_priors = older_priors(path)
    return codec


def list_models() -> list[dict]:
    """Shipped and cached models with their rates, depths, sizes and model cards (for ``eegcodec
    models``), read from the files' metadata and the cards without loading any weights (no torch)."""
    rows = []
    for name, file in SHIPPED.items():
        rows.append(_describe(name, HERE / file, "shipped"))
    for name, (mt, br) in PRETRAINED_DAC.items():
        cached = sorted((Path.home() / ".cache" / "descript" / "dac").glob(f"weights_{mt}_{br}_*.pth"))
        path = (
            cached[-1] if cached else Path.home() / ".cache" / "descript" / "dac" / f"weights_{mt}_{br}_*.pth"
        )
        rows.append(_describe(name, path, "cached" if cached else "not downloaded"))
    for alias, target in ALIASES.items():
        rows.append({"name": alias, "status": f"alias of {target}"})
    for variant, hop in (("75", 320), ("40", 600)):
        rows.append(
            {
                "name": f"wavtokenizer-{variant}:PATH",
                "status": "official checkpoint, by path",
                "sample_rate": 24000,
                "hop_length": hop,
                "n_codebooks": 1,
                "default_codebooks": 1,
                "codebook_size": 4096,
            }
        )
    return rows


def _describe(name: str, path: Path, status: str) -> dict:
    row = {"name": name, "status": status, "path": str(path)}
    if path.is_file():
        try:
            blob = read_metadata(path)
            describe = _dac_describe if _is_dac_format(blob) else _wavtokenizer_describe
            row.update(describe(blob), size_mb=round(path.stat().st_size / 1e6, 2))
        except (EegcodecError, KeyError, TypeError, AttributeError) as exc:
            row["status"] = f"unreadable: {exc}"
    card = path.with_suffix(".md")
    if card.is_file():
        row["card"] = str(card)
        row["summary"] = card_summary(card)
    return row


def _is_dac_format(blob: dict) -> bool:
    return isinstance(blob.get("metadata"), dict) and "kwargs" in blob["metadata"]


def card_summary(card: Path) -> str:
    """A model card's title without its ``Model card:`` prefix, e.g. ``mc-small (DAC-MC, multi-channel)``."""
    lines = card.read_text(encoding="utf-8").splitlines()
    title = next((line.lstrip("# ").strip() for line in lines if line.startswith("# ")), "")
    return title.removeprefix("Model card:").strip()


class _MetadataUnpickler(pickle.Unpickler):
    """Reads a ``torch.save`` file's object tree with every tensor left out (None): only plain
    Python values (dicts, lists, numbers, strings) are built, nothing else is imported or run."""

    SAFE = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        return _nothing  # torch's tensor rebuilders and anything else: no value

    def persistent_load(self, pid):
        return None  # tensor storages are never read


def _nothing(*args, **kwargs) -> None:
    return None


def read_metadata(path: Path) -> dict:
    """A weights file's dict (``metadata``, ``eegcodec``...) with its tensors as None, read from
    the ``data.pkl`` of torch's zip format without torch. Raises :class:`EegcodecError` (one line)
    for a file that is not such a zip."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                raise EegcodecError(f"{path}: no data.pkl inside (not a torch.save file)")
            blob = _MetadataUnpickler(io.BytesIO(z.read(pkl))).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, OSError) as exc:
        raise EegcodecError(f"cannot read model {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(blob, dict):
        raise EegcodecError(f"cannot read model {path}: expected a dict")
    return blob
