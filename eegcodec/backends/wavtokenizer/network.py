"""WavTokenizer (Ji et al., 2024) written from the checkpoint layout, loading the official files unchanged.

The network only; no files are read here except in :meth:`WavTokenizer.from_checkpoint`.
Signal flow (``../shared/wavtokenizer/README.md`` describes it key by key):

* encoder: EnCodec's non-causal SEANet encoder (32 filters, strides applied in the
  reverse of the configured ``dowmsamples``, 2-layer LSTM with a residual, 512-dim
  output), every conv weight-normed and reflect-padded;
* quantizer: one 4096 x 512 codebook, nearest entry by squared Euclidean distance,
  kept as EMA buffers (``embed``, ``embed_avg``, ``cluster_size``, ``inited``);
* backbone: Vocos ConvNeXt (768 wide, 12 layers, adaptive LayerNorm chosen by
  ``bandwidth_id``) after a "pos_net" of residual blocks and one global attention block;
* head: a linear layer to log-magnitude and phase, then a "same"-padded inverse STFT
  whose output is exactly ``frames * hop`` samples.

Shapes: waveforms float32 ``[B, L]`` at the model rate (24 kHz for the official
models), continuous features ``[B, 512, T]`` with ``T = ceil(L / hop)``, codes
int64 ``[B, 1, T]`` (batch first; the official code returns ``[1, B, T]``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import EegcodecError
from .encoder import SEANetEncoder, VectorQuantizer

#: Prefixes of the state-dict keys the official loader keeps from a Lightning checkpoint.
KEPT_PREFIXES = ("feature_extractor.", "backbone.", "head.")
#: Keys in official checkpoints that inference never uses (EnCodec's SEANet decoder).
UNUSED_PREFIX = "feature_extractor.encodec.decoder."


@dataclass
class WavTokenizerConfig:
    """Architecture of one WavTokenizer.

    ``strides`` are in the order the encoder applies them (the reverse of the
    official config's ``dowmsamples``). The two official variants are in
    :data:`VARIANTS`; smaller ones (for EEG on a CPU) change the widths.
    """

    sample_rate: int = 24000
    strides: list[int] = field(default_factory=lambda: [2, 4, 5, 8])
    n_filters: int = 32
    dimension: int = 512
    lstm_layers: int = 2
    codebook_size: int = 4096
    backbone_dim: int = 768
    intermediate_dim: int = 2304
    num_layers: int = 12
    adanorm_num_embeddings: int = 4
    n_fft: int = 1280

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.strides))

    @classmethod
    def from_dict(cls, d: dict) -> WavTokenizerConfig:
        """A variant (``d["variant"]``: "40" or "75", default "75") with any field replaced."""
        d = dict(d)
        variant = str(d.pop("variant", "75"))
        if variant not in VARIANTS:
            raise EegcodecError(f"WavTokenizer variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        allowed = {f.name for f in fields(cls)}
        unknown = set(d) - allowed
        if unknown:
            raise EegcodecError(
                f"unknown WavTokenizer arguments {sorted(unknown)}; allowed: variant, "
                f"{', '.join(sorted(allowed))}"
            )
        cfg = replace(VARIANTS[variant], **d)
        if cfg.n_fft % cfg.hop_length or (cfg.n_fft - cfg.hop_length) % 2:
            raise EegcodecError(
                f"n_fft {cfg.n_fft} must be a multiple of hop {cfg.hop_length} with an even difference"
            )
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


#: The official releases: "40" = WavTokenizer-small-600-24k-4096, "75" = -320-24k-4096.
VARIANTS = {
    "40": WavTokenizerConfig(strides=[4, 5, 5, 6], n_fft=2400),
    "75": WavTokenizerConfig(strides=[2, 4, 5, 8], n_fft=1280),
}


# ---------------------------------------------------------------------------
# backbone: Vocos ConvNeXt with pos_net
# ---------------------------------------------------------------------------


class AdaLayerNorm(nn.Module):
    """LayerNorm over channels (channels-last) with scale/shift rows picked by ``bandwidth_id``."""

    def __init__(self, n_rows: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Embedding(n_rows, dim)
        self.shift = nn.Embedding(n_rows, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, bandwidth_id: int) -> torch.Tensor:
        x = F.layer_norm(x, (x.shape[-1],), eps=self.eps)
        return x * self.scale.weight[bandwidth_id] + self.shift.weight[bandwidth_id]


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    """GroupNorm -> swish -> conv k3 -> GroupNorm -> swish -> dropout -> conv k3, plus identity."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, dim, eps=1e-6)
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.norm2 = nn.GroupNorm(32, dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(self.dropout(_swish(self.norm2(h))))
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all frames, 1x1-conv projections, plus identity."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.q = nn.Conv1d(dim, dim, 1)
        self.k = nn.Conv1d(dim, dim, 1)
        self.v = nn.Conv1d(dim, dim, 1)
        self.proj_out = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)  # [B, C, T]
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * q.shape[1] ** -0.5, dim=2)  # [B, Tq, Tk]
        return x + self.proj_out(torch.bmm(v, w.transpose(1, 2)))


class ConvNeXtBlock(nn.Module):
    """Depthwise conv k7 -> AdaLayerNorm -> Linear -> GELU -> Linear -> layer scale, plus identity."""

    def __init__(self, dim: int, intermediate: int, n_rows: int, layer_scale: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = AdaLayerNorm(n_rows, dim)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.pwconv2 = nn.Linear(intermediate, dim)

    def forward(self, x: torch.Tensor, bandwidth_id: int) -> torch.Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2), bandwidth_id)
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(h)))
        return x + h.transpose(1, 2)


class VocosBackbone(nn.Module):
    """features [B, D, T] -> hidden [B, T, dim] (channels-last)."""

    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        dim = cfg.backbone_dim
        self.embed = nn.Conv1d(cfg.dimension, dim, 7, padding=3)
        self.norm = AdaLayerNorm(cfg.adanorm_num_embeddings, dim)
        scale = 1.0 / cfg.num_layers
        self.convnext = nn.ModuleList(
            [
                ConvNeXtBlock(dim, cfg.intermediate_dim, cfg.adanorm_num_embeddings, scale)
                for _ in range(cfg.num_layers)
            ]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.pos_net = nn.Sequential(
            ResnetBlock(dim),
            ResnetBlock(dim),
            AttnBlock(dim),
            ResnetBlock(dim),
            ResnetBlock(dim),
            nn.GroupNorm(32, dim, eps=1e-6),
        )

    def forward(self, x: torch.Tensor, bandwidth_id: int = 0) -> torch.Tensor:
        x = self.pos_net(self.embed(x))
        x = self.norm(x.transpose(1, 2), bandwidth_id).transpose(1, 2)
        for block in self.convnext:
            x = block(x, bandwidth_id)
        return self.final_layer_norm(x.transpose(1, 2))


# ---------------------------------------------------------------------------
# head: magnitude/phase -> "same"-padded inverse STFT
# ---------------------------------------------------------------------------


class ISTFT(nn.Module):
    """Complex spectrum [B, n_fft/2+1, T] -> waveform [B, T * hop] ("same" padding:
    (n_fft - hop) / 2 samples dropped at each end of the overlap-add)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        n_fft, hop = self.n_fft, self.hop
        t = spec.shape[-1]
        pad = (n_fft - hop) // 2
        frames = torch.fft.irfft(spec, n_fft, dim=1) * self.window[None, :, None]  # [B, n_fft, T]
        size = (t - 1) * hop + n_fft
        y = F.fold(frames, (1, size), kernel_size=(1, n_fft), stride=(1, hop))[:, 0, 0, pad : size - pad]
        env = self.window.square()[None, :, None].expand(1, n_fft, t)
        env = F.fold(env, (1, size), kernel_size=(1, n_fft), stride=(1, hop))[0, 0, 0, pad : size - pad]
        return y / env


class ISTFTHead(nn.Module):
    """hidden [B, T, dim] -> waveform [B, T * hop]. Magnitude = exp(.) clipped at 100."""

    def __init__(self, dim: int, n_fft: int, hop: int):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_mag, phase = self.out(x).transpose(1, 2).float().chunk(2, dim=1)
        mag = torch.exp(log_mag).clip(max=100.0)
        return self.istft(torch.polar(mag, phase))


# ---------------------------------------------------------------------------
# the whole model
# ---------------------------------------------------------------------------


class _Encodec(nn.Module):
    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.encoder = SEANetEncoder(cfg)
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.dimension)


class _FeatureExtractor(nn.Module):
    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.encodec = _Encodec(cfg)


class WavTokenizer(nn.Module):
    """WavTokenizer under the official state-dict names (without the unused SEANet decoder).

    Parameters
    ----------
    cfg : :class:`WavTokenizerConfig` (``WavTokenizerConfig.from_dict({"variant": "75"})``
        for the official 75 tokens/s model).
    """

    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = _FeatureExtractor(cfg)
        self.backbone = VocosBackbone(cfg)
        self.head = ISTFTHead(cfg.backbone_dim, cfg.n_fft, cfg.hop_length)

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    @property
    def encoder(self) -> SEANetEncoder:
        return self.feature_extractor.encodec.encoder

    @property
    def quantizer(self) -> VectorQuantizer:
        return self.feature_extractor.encodec.quantizer

    def encode_features(self, wave: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output before quantization: wave [B, L] -> [B, D, ceil(L/hop)]."""
        return self.encoder(wave[:, None, :])

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """wave float32 [B, L] -> codes int64 [B, 1, ceil(L / hop)]."""
        return self.quantizer.encode(self.encode_features(wave))[:, None, :]

    def codes_to_features(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, 1, T] -> looked-up codebook vectors [B, D, T]."""
        return self.quantizer.decode(codes[:, 0])

    def decode_features(self, features: torch.Tensor, bandwidth_id: int = 0) -> torch.Tensor:
        """features [B, D, T] -> wave [B, T * hop]. ``bandwidth_id`` picks the
        adaptive-LayerNorm row (0..adanorm_num_embeddings-1; the official examples use 0)."""
        if not 0 <= bandwidth_id < self.cfg.adanorm_num_embeddings:
            raise EegcodecError(
                f"bandwidth_id must be in 0..{self.cfg.adanorm_num_embeddings - 1}, got {bandwidth_id}"
            )
        return self.head(self.backbone(features, bandwidth_id))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes int64 [B, 1, T] -> wave float32 [B, T * hop]."""
        return self.decode_features(self.codes_to_features(codes))

    @classmethod
    def from_checkpoint(cls, path: str | Path, variant: str = "75", trusted: bool = False) -> WavTokenizer:
        """Load an official Lightning ``.ckpt`` (or an eegcodec export) of ``variant`` ("40" or "75").

        Only ``state_dict`` is read, keeping keys under ``feature_extractor.``, ``backbone.``
        and ``head.``; every key the model needs must be there with its shape (strict), and
        the only extra keys allowed are the official unused SEANet decoder's. Loading is
        weights-only; ``trusted=True`` allows full unpickling for a file you trust whose
        extra Lightning entries are not plain data.
        """
        state = read_wavtokenizer_state(path, trusted)
        model = cls(WavTokenizerConfig.from_dict({"variant": variant}))
        load_wavtokenizer_state(model, state, str(path))
        return model.eval()


def read_wavtokenizer_state(path: str | Path, trusted: bool = False) -> dict[str, torch.Tensor]:
    """The kept-prefix tensors of a Lightning-style checkpoint ``{"state_dict": ...}``."""
    path = Path(path)
    if not path.is_file():
        raise EegcodecError(f"WavTokenizer checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        hint = (
            ""
            if trusted
            else "; if you trust the file, load it with WavTokenizer.from_checkpoint(..., trusted=True)"
        )
        raise EegcodecError(
            f"cannot load WavTokenizer checkpoint {path} weights-only ({first}){hint}"
        ) from exc
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise EegcodecError(f"{path} is not a WavTokenizer checkpoint: no 'state_dict' entry")
    return {k: v for k, v in blob["state_dict"].items() if k.startswith(KEPT_PREFIXES)}


def load_wavtokenizer_state(model: WavTokenizer, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load of ``state`` into ``model``, allowing only the unused decoder's keys on top."""
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREFIX)}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [
            f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        ]
        raise EegcodecError(
            f"{source} does not fit WavTokenizer {model.cfg.hop_length}-hop: " + "; ".join(parts)
        )
    inited = state["feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited"]
    if float(inited.reshape(-1)[0]) != 1.0:
        raise EegcodecError(
            f"{source}: codebook was never initialised (inited = {float(inited.reshape(-1)[0])}); not a "
            f"trained checkpoint"
        )
    model.load_state_dict(state, strict=True)
