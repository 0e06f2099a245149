"""The one registry: backend kind -> its files, codec and trainable; model name -> weights file.

``load_codec(name_or_path)`` accepts

* a shipped model name (``mc-small``, ``dac-small``; ``default`` names the best shipped model),
* a pretrained name a backend offers (DAC's ``dac_16khz``, ``dac_24khz``, ``dac_44khz``, loaded
  from DAC's own cache ``~/.cache/descript/dac`` and downloaded there by ``dac.utils.download``
  when missing),
* a path to a weights file of any backend (its content says which: ``sniff``),
* a name that carries a path (``wavtokenizer-75:PATH`` / ``wavtokenizer-40:PATH``: an official
  WavTokenizer checkpoint, which does not say its variant).

A backend is a package in this folder whose ``__init__`` (torch-free) gives ``sniff(blob)``,
``load(blob, path, name)``, ``describe(blob)`` and, where it has them, ``FAMILY`` and
``trainable()`` (training), ``PRETRAINED`` / ``fetch(name)`` / ``pretrained_files()`` (released
models), ``NAMED`` / ``load_named(match)`` / ``NAMED_ROWS`` (names carrying a path) and
``misnamed(blob, path)`` (a hint for a file no backend reads); one line in :data:`BACKENDS`
registers it. Naming, resolving and listing models (``eegcodec models``) import no torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import EegcodecError
from ..models import ALIASES, HERE, SHIPPED
from . import dac, dac_mc, wavtokenizer
from .weights import read_metadata, read_weights_file

if TYPE_CHECKING:
    from ..train.modules import TrainableCodec
    from .base import Codec


@dataclass(frozen=True)
class Backend:
    """A codec backend as its package declares it (see the module docstring)."""

    sniff: Callable[[dict], bool]
    load: Callable[[dict, Path, str | None], Codec]
    describe: Callable[[dict], dict]
    family: str | None = None
    trainable: Callable[[], type[TrainableCodec]] | None = None
    pretrained: Mapping[str, object] = field(default_factory=dict)
    fetch: Callable[[str], Path] | None = None
    pretrained_files: Callable[[], list[tuple[str, Path, str]]] | None = None
    named: re.Pattern | None = None
    load_named: Callable[[re.Match], Codec] | None = None
    named_rows: tuple[dict, ...] = ()
    misnamed: Callable[[dict, Path], str | None] | None = None

    @classmethod
    def of(cls, package: ModuleType) -> Backend:
        """The backend a package declares (its optional parts None where it has none)."""

        def get(attr, default=None):
            return getattr(package, attr, default)

        return cls(
            package.sniff,
            package.load,
            package.describe,
            get("FAMILY"),
            get("trainable"),
            get("PRETRAINED", {}),
            get("fetch"),
            get("pretrained_files"),
            get("NAMED"),
            get("load_named"),
            get("NAMED_ROWS", ()),
            get("misnamed"),
        )


#: kind -> backend, sniffed in this order (a DAC-MC file is also a DAC-format file). A new
#: backend is one package in this folder and one line here.
BACKENDS = {
    "dac-mc": Backend.of(dac_mc),
    "dac": Backend.of(dac),
    "wavtokenizer": Backend.of(wavtokenizer),
}
#: recipe family -> backend
FAMILIES = {b.family: b for b in BACKENDS.values() if b.family}


def _pretrained(key: str) -> Backend | None:
    return next((b for b in BACKENDS.values() if key in b.pretrained), None)


def _named(key: str) -> tuple[Backend, re.Match] | None:
    for backend in BACKENDS.values():
        match = backend.named.fullmatch(key) if backend.named else None
        if match:
            return backend, match
    return None


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
    backend = _pretrained(key)
    if backend is not None:
        return backend.fetch(key), key
    path = Path(key).expanduser()
    if path.suffix in (".pth", ".pt", ".ckpt") or path.exists():
        return path, None
    names = sorted([*SHIPPED, *ALIASES, *(n for b in BACKENDS.values() for n in b.pretrained)])
    names += [row["name"] for b in BACKENDS.values() for row in b.named_rows]
    raise EegcodecError(f"unknown model {key!r}: give a weights file path or one of {', '.join(names)}")


def backend_of(blob: dict, path: Path) -> Backend:
    """The backend whose files look like ``blob``; a one-line error naming what it is not."""
    for backend in BACKENDS.values():
        if backend.sniff(blob):
            return backend
    for backend in BACKENDS.values():
        hint = backend.misnamed(blob, path) if backend.misnamed else None
        if hint:
            raise EegcodecError(hint)
    raise EegcodecError(f"cannot load model {path}: not a file of any backend ({', '.join(BACKENDS)})")


def load_codec(name_or_path: str | Path = "default", device: str = "cpu") -> Codec:
    """Load a codec by name or path and move it to ``device`` ("cpu" or "cuda")."""
    from ..codeprior import CodePrior, older_priors, prior_path

    key = ALIASES.get(str(name_or_path), str(name_or_path))
    named = _named(key)
    if named:
        backend, match = named
        return backend.load_named(match).to(device)
    path, name = resolve_model(key)
    blob = read_weights_file(path)
    codec = backend_of(blob, path).load(blob, path, name).to(device)
    beside = prior_path(path)
    if beside.is_file():  # the model's code prior (eegcodec train-prior)
        codec.prior = CodePrior.from_bytes(beside.read_bytes())
    codec.older_priors = older_priors(path)
    return codec


def build_trainable(family: str, model_args: dict, init: str = "scratch") -> TrainableCodec:
    """The network of a recipe's ``family``, initialised from the model ``init`` (a name or path,
    as :func:`load_codec` takes) unless it is ``"scratch"``."""
    if family not in FAMILIES or FAMILIES[family].trainable is None:
        raise EegcodecError(f"recipe family must be one of {sorted(FAMILIES)}, got {family!r}")
    cls = FAMILIES[family].trainable()
    source = None if init == "scratch" else init_file(init)
    model = cls(cls.arguments(model_args, source))
    if source is not None:
        model.load_init(source, init)
    return model


def init_file(name_or_path: str) -> Path:
    """The weights file a training run starts from: a name carrying its path
    (``wavtokenizer-75:PATH``), or what :func:`resolve_model` gives."""
    named = _named(name_or_path)
    if named:
        return Path(named[1].group(2)).expanduser()
    return resolve_model(name_or_path)[0]


def list_models() -> list[dict]:
    """Shipped and cached models with their rates, depths, sizes and model cards (for ``eegcodec
    models``), read from the files' metadata and the cards without loading any weights (no torch)."""
    rows = [_describe(name, HERE / file, "shipped") for name, file in SHIPPED.items()]
    for backend in BACKENDS.values():
        files = backend.pretrained_files() if backend.pretrained_files else []
        rows += [_describe(name, path, status) for name, path, status in files]
    rows += [{"name": alias, "status": f"alias of {target}"} for alias, target in ALIASES.items()]
    rows += [dict(row) for backend in BACKENDS.values() for row in backend.named_rows]
    return rows


def _describe(name: str, path: Path, status: str) -> dict:
    row = {"name": name, "status": status, "path": str(path)}
    if path.is_file():
        try:
            blob = read_metadata(path)
            row.update(backend_of(blob, path).describe(blob), size_mb=round(path.stat().st_size / 1e6, 2))
        except (EegcodecError, KeyError, TypeError, AttributeError) as exc:
            row["status"] = f"unreadable: {exc}"
    card = path.with_suffix(".md")
    if card.is_file():
        row["card"] = str(card)
        row["summary"] = card_summary(card)
    return row


def card_summary(card: Path) -> str:
    """A model card's title without its ``Model card:`` prefix, e.g. ``mc-small (DAC-MC, multi-channel)``."""
    lines = card.read_text(encoding="utf-8").splitlines()
    title = next((line.lstrip("# ").strip() for line in lines if line.startswith("# ")), "")
    return title.removeprefix("Model card:").strip()
