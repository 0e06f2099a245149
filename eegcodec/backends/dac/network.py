"""The Descript Audio Codec network (``dac.DAC``): building it from constructor arguments, the
arguments that rebuild it, and its inference-time preparation. No files are read here."""

from __future__ import annotations

import inspect
import types
import warnings

import torch
import torch.nn.functional as F

from ...errors import EegcodecError


def _import_dac():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dac  # noqa: WPS433 (heavy import: audiotools, torchaudio)
    return dac


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
    memory traffic: ``python -m eegcodec.bench.runtimes [--dac-snake]`` compares the two).
    Where gradients are needed, DAC's own."""
    if torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad):
        from dac.nn.layers import snake

        return snake(x, self.alpha)
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    y = torch.mul(x, self.alpha)
    y.sin_().pow_(2).mul_((self.alpha + 1e-9).reciprocal()).add_(x)
    return y.reshape(shape)


def fit_length(y: torch.Tensor, n: int) -> torch.Tensor:
    """``y`` [..., T'] cropped or zero-padded on the right to [..., n]. DAC's decoder
    returns fewer samples than frames x hop when a stride is odd (dac_16khz's 5 loses 8
    of every window), more when the encoder padded."""
    return y[..., :n] if y.shape[-1] >= n else F.pad(y, (0, n - y.shape[-1]))
