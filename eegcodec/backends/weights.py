"""Weights files of every backend: reading them weights-only, the identity of their weights, and
their metadata without torch (what ``eegcodec models`` lists).

torch is imported inside the functions that need it, so reading metadata starts without it.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

from ..errors import EegcodecError


def read_weights_file(path: str | Path) -> dict:
    """Load a model file without executing pickled code (``torch.load(weights_only=True)``).

    Raises :class:`EegcodecError` with one line if it is missing or not such a file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise EegcodecError(f"model file not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EegcodecError(
            f"cannot load model {path}: not a weights-only checkpoint ({first[:200]})"
        ) from exc
    if not isinstance(blob, dict):
        raise EegcodecError(f"cannot load model {path}: expected a dict with a 'state_dict'")
    return blob


def state_dict_sha256(state_dict: dict) -> str:
    """SHA-256 over a state dict's names, dtypes, shapes and values (sorted by name).

    Independent of how the weights were serialised, so a model saved twice, or
    moved between devices, keeps its identity.
    """
    import torch

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


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
