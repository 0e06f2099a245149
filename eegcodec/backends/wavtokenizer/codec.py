"""WavTokenizer as an eegcodec backend (the :class:`Codec` interface) and its files.

Two kinds of file load here:

* an **official** Lightning checkpoint (``WavTokenizer_small_320_24k_4096.ckpt``),
  named on the command line as ``wavtokenizer-75:PATH`` or ``wavtokenizer-40:PATH``
  (the file does not say which variant it is). Its adapter feeds EEG at the
  model's own 24 kHz unless ``eval --set model_rate=...`` says otherwise;
* an **eegcodec export** (a model trained or fine-tuned by ``eegcodec train``):
  ``{"state_dict": <kept keys>, "eegcodec": {"kind": "wavtokenizer", "config",
  "name", "adapter", ...}}``, which says everything itself and loads by path.
"""

from __future__ import annotations

import io as _io
from pathlib import Path

import torch

from ...adapt import AdapterConfig
from ...errors import EegcodecError
from ..base import CodecInfo, PerChannelCodec
from ..weights import state_dict_sha256
from .network import WavTokenizer, WavTokenizerConfig, load_wavtokenizer_state


class WavTokenizerCodec(PerChannelCodec):
    """A :class:`WavTokenizer` behind the :class:`Codec` interface (one codebook, depth 1)."""

    def __init__(self, model: WavTokenizer, info: CodecInfo):
        self.model = model.eval()
        self.info = info
        self.device = torch.device("cpu")

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, n_codebooks: int) -> torch.Tensor:
        """x float32 [B, 1, T] -> codes int64 [B, 1, T // hop]."""
        if n_codebooks != 1:
            raise EegcodecError(f"WavTokenizer has a single codebook; codebooks must be 1, got {n_codebooks}")
        return self.model.encode(x[:, 0].to(self.device))

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes int64 [B, 1, F] -> float32 [B, 1, F * hop]."""
        return self.model.decode(codes.to(self.device))[:, None].float()

    @torch.inference_mode()
    def codes_to_latents(self, codes) -> torch.Tensor:
        """codes int64 [B, 1, F] -> codebook vectors float32 [B, D, F] (what the backbone consumes)."""
        return self.model.codes_to_features(torch.as_tensor(codes).to(self.device)).float()


def _info(model: WavTokenizer, name: str, adapter: AdapterConfig) -> CodecInfo:
    return CodecInfo(
        name=name,
        kind="wavtokenizer",
        sample_rate=float(model.cfg.sample_rate),
        hop_length=model.hop_length,
        n_codebooks=1,
        codebook_size=model.cfg.codebook_size,
        weights_sha256=state_dict_sha256(model.state_dict()),
        adapter=adapter,
    )


def wavtokenizer_codec_from_checkpoint(path: str | Path, variant: str) -> WavTokenizerCodec:
    """An official checkpoint of ``variant`` ("40" or "75"), named ``wavtokenizer-<variant>:<path>``."""
    model = WavTokenizer.from_checkpoint(path, variant)
    adapter = AdapterConfig(model_rate=float(model.cfg.sample_rate))
    return WavTokenizerCodec(model, _info(model, f"wavtokenizer-{variant}:{path}", adapter))


def wavtokenizer_codec_from_export(
    blob: dict, path: str | Path, name: str | None = None
) -> WavTokenizerCodec:
    """An eegcodec export already read from ``path`` (see :func:`save_wavtokenizer_file`)."""
    meta = blob["eegcodec"]
    try:
        model = WavTokenizer(WavTokenizerConfig.from_dict(meta["config"]))
        adapter = AdapterConfig.from_dict(meta["adapter"])
    except (KeyError, TypeError) as exc:
        raise EegcodecError(f"{path}: eegcodec WavTokenizer metadata is incomplete ({exc})") from exc
    load_wavtokenizer_state(model, blob["state_dict"], str(path))
    return WavTokenizerCodec(model.eval(), _info(model, name or meta.get("name") or Path(path).stem, adapter))


def save_wavtokenizer_file(model: WavTokenizer, path: str | Path, eegcodec_meta: dict) -> Path:
    """Save an eegcodec WavTokenizer export atomically. The ``state_dict`` entry uses
    the official key names, so the official loader reads the weights (it also needs the
    unused SEANet decoder keys, which this file does not carry)."""
    from ...io import atomic_write_bytes

    meta = {**eegcodec_meta, "kind": "wavtokenizer", "config": model.cfg.to_dict()}
    buf = _io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "eegcodec": meta}, buf)
    return atomic_write_bytes(path, buf.getvalue())
