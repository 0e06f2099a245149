"""Descript Audio Codec (DAC) as an eegcodec backend.

Weights files use DAC's own format (what ``dac.DAC.save(path, package=False)``
writes): ``{"state_dict": ..., "metadata": {"kwargs": <DAC constructor
arguments>, ...}}``. eegcodec adds ``metadata["eegcodec"]`` (name, adapter
settings, training record); plain DAC files without it load with default
adapter settings at the model's own sampling rate.
"""

from __future__ import annotations

import inspect
import types
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..adapt import AdapterConfig
from ..errors import EegcodecError
from .base import CodecInfo, PerChannelCodec, state_dict_sha256


def _import_dac():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dac  # noqa: WPS433 (heavy import: audiotools, torchaudio)
    return dac


def read_weights_file(path: str | Path) -> dict:
    """Load a model file without executing pickled code (``torch.load(weights_only=True)``).

    Raises :class:`EegcodecError` with one line if it is missing or not such a file.
    """
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


def is_dac_file(blob: dict) -> bool:
    return "state_dict" in blob and isinstance(blob.get("metadata"), dict) and "kwargs" in blob["metadata"]


def read_dac_file(path: str | Path) -> dict:
    """A DAC-format weights file (``state_dict`` and ``metadata['kwargs']``), read weights-only."""
    blob = read_weights_file(path)
    if not is_dac_file(blob):
        raise EegcodecError(
            f"cannot load model {path}: expected DAC's format {{'state_dict', 'metadata': {{'kwargs'}}}}"
        )
    return blob


def build_dac(kwargs: dict):
    """A ``dac.DAC`` from constructor arguments (unknown keys are an error)."""
    dac = _import_dac()
    allowed = set(inspect.signature(dac.DAC).parameters)
    unknown = set(kwargs) - allowed
    if unknown:
        raise EegcodecError(f"unknown DAC arguments {sorted(unknown)}; allowed: {sorted(allowed)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dac.DAC(**kwargs)


def dac_arguments(model) -> dict:
    """The ``dac.DAC`` constructor arguments that rebuild ``model`` (DAC files' ``kwargs``)."""
    kwargs = {
        name: getattr(model, name)
        for name in inspect.signature(type(model)).parameters
        if hasattr(model, name)
    }
    kwargs.update(
        quantizer_dropout=float(model.quantizer.quantizer_dropout),
        latent_dim=int(model.latent_dim),
        encoder_rates=list(model.encoder_rates),
        decoder_rates=list(model.decoder_rates),
    )
    return kwargs


def fold_weight_norm(module: torch.nn.Module) -> None:
    """Prepare a network for inference, for speed: remove weight normalisation (a training-time
    reparametrisation) from every submodule, and give DAC's Snake activations
    :func:`_snake_in_place`."""
    for m in module.modules():
        if hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
        if type(m).__name__ == "Snake1d" and hasattr(m, "alpha"):
            m.forward = types.MethodType(_snake_in_place, m)


def _snake_in_place(self, x: torch.Tensor) -> torch.Tensor:
    """DAC's Snake, x + sin(alpha x)^2 / alpha with alpha [1, C, 1], computed in one new buffer
    instead of five (the same float32 operations in the same order, so bit-identical; less
    memory traffic: ``eegcodec bench runtimes [--dac-snake]`` compares the two).
    Where gradients are needed, DAC's own."""
    if torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad):
        from dac.nn.layers import snake

        return snake(x, self.alpha)
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    y = torch.mul(x, self.alpha)
    y.sin_().pow_(2).mul_((self.alpha + 1e-9).reciprocal()).add_(x)
    return y.reshape(shape)


def save_dac_file(model, path: str | Path, eegcodec_meta: dict) -> Path:
    """Save ``model`` (a ``dac.DAC``) in DAC's own format plus ``metadata['eegcodec']``.

    The file loads with ``dac.DAC.load(path)`` as well as with :func:`load_dac_codec`.
    Written atomically.
    """
    import io as _io

    from ..io import atomic_write_bytes

    buf = _io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "metadata": {"kwargs": dac_arguments(model), "eegcodec": eegcodec_meta},
        },
        buf,
    )
    return atomic_write_bytes(path, buf.getvalue())


class DACCodec(PerChannelCodec):
    """A ``dac.DAC`` model behind the :class:`Codec` interface.

    Parameters
    ----------
    model : a ``dac.DAC`` with loaded weights.
    info : :class:`CodecInfo` (its ``weights_sha256`` must describe ``model``'s weights).
    """

    def __init__(self, model, info: CodecInfo):
        self.model = model.eval()
        self.info = info
        self.device = torch.device("cpu")
        fold_weight_norm(self.model)
        self._codebooks: list[torch.Tensor] | None = None

    def to(self, device: str | torch.device) -> DACCodec:
        super().to(device)
        self._codebooks = None
        return self

    def _normalised_codebooks(self) -> list[torch.Tensor]:
        if self._codebooks is None:
            self._codebooks = [F.normalize(q.codebook.weight, dim=1) for q in self.model.quantizer.quantizers]
        return self._codebooks

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, n_codebooks: int) -> torch.Tensor:
        """x float32 [B, 1, T] -> codes int64 [B, n_codebooks, T // hop].

        Same codes as ``dac.DAC.encode`` (nearest L2-normalised codebook entry per
        residual stage), computed as an argmax of dot products, which is faster.
        """
        self.check_depth(n_codebooks)
        residual = self.model.encoder(x.to(self.device))
        codebooks = self._normalised_codebooks()
        codes = []
        for q, cb in zip(self.model.quantizer.quantizers[:n_codebooks], codebooks):
            z_e = q.in_proj(residual)  # [B, d, F]
            b, d, f = z_e.shape
            enc = F.normalize(z_e.transpose(1, 2).reshape(-1, d), dim=1)
            idx = (enc @ cb.t()).argmax(dim=1).view(b, f)
            residual = residual - q.out_proj(q.codebook(idx).transpose(1, 2))
            codes.append(idx)
        return torch.stack(codes, dim=1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes int64 [B, K, F] -> float32 [B, 1, F * hop]."""
        z_q, _, _ = self.model.quantizer.from_codes(codes.to(self.device))
        return fit_length(self.model.decode(z_q).float(), codes.shape[-1] * self.info.hop_length)

    @torch.inference_mode()
    def codes_to_latents(self, codes: np.ndarray) -> torch.Tensor:
        """codes int64 [B, K, F] -> z_q float32 [B, latent_dim, F] (what DAC's decoder consumes)."""
        z_q, _, _ = self.model.quantizer.from_codes(torch.as_tensor(codes).to(self.device))
        return z_q.float()


def fit_length(y: torch.Tensor, n: int) -> torch.Tensor:
    """``y`` [..., T'] cropped or zero-padded on the right to [..., n]. DAC's decoder
    returns fewer samples than frames x hop when a stride is odd (dac_16khz's 5 loses 8
    of every window), more when the encoder padded."""
    return y[..., :n] if y.shape[-1] >= n else F.pad(y, (0, n - y.shape[-1]))


def dac_codec_info(model, blob: dict, path: str | Path, name: str | None, kind: str) -> CodecInfo:
    """The :class:`CodecInfo` of a ``dac.DAC`` ``model`` loaded from a DAC-format file's ``blob``
    (name, adapter and recommended depth from ``metadata['eegcodec']`` when present)."""
    meta = blob["metadata"].get("eegcodec", {})
    adapter = (
        AdapterConfig.from_dict(meta["adapter"])
        if "adapter" in meta
        else AdapterConfig(model_rate=float(model.sample_rate))
    )
    return CodecInfo(
        name=name or meta.get("name") or Path(path).stem,
        kind=kind,
        sample_rate=float(model.sample_rate),
        hop_length=int(model.hop_length),
        n_codebooks=int(model.n_codebooks),
        codebook_size=int(model.codebook_size),
        weights_sha256=state_dict_sha256(blob["state_dict"]),
        adapter=adapter,
        default_codebooks=min(int(meta.get("default_codebooks", model.n_codebooks)), int(model.n_codebooks)),
    )


def dac_codec_from_file(path: str | Path, name: str | None = None, blob: dict | None = None) -> DACCodec:
    """Load a DAC-format file (pretrained audio DAC or an eegcodec EEG checkpoint);
    ``blob`` is the file's content when already read."""
    blob = blob if blob is not None else read_dac_file(path)
    model = build_dac(dict(blob["metadata"]["kwargs"]))
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as exc:
        raise EegcodecError(f"cannot load model {path}: weights do not match its DAC arguments") from exc
    info = dac_codec_info(model, blob, path, name, "dac")
    return DACCodec(model, info)
