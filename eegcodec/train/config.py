"""Training configuration: plain dataclasses, filled from a YAML recipe.

A recipe is a YAML mapping with the sections below; ``--set a.b=value`` on the
command line overrides one key (the value is parsed as YAML). This is the one
place that turns recipes into objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from ..adapt import AdapterConfig
from ..errors import EegcodecError


@dataclass
class DataConfig:
    """Where training and validation recordings come from.

    ``root`` is prefixed to relative patterns; ``train``/``val`` entries are globs,
    folders (their recordings, recursively) or manifests (``.txt`` one path per line;
    ``.csv``/``.tsv`` with ``path`` and optional ``subject`` columns). Whole recordings
    go to one side only; see :func:`eegcodec.train.data.split_recordings`.
    """

    root: str = "../shared/eeg"
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    #: "recording" or "subject": what may not appear on both sides
    split_by: str = "recording"
    #: without ``val`` patterns, hold out this fraction of recordings (or subjects)
    val_fraction: float = 0.0
    #: finds the subject in a path when no manifest gives it (BIDS sub-XX, EEGBCI S001, EEGMAT SubjectNN)
    subject_regex: str = r"sub-[A-Za-z0-9]+|S\d{3}(?=R\d)|Subject\d+"
    window_seconds: float = 4.0
    cache_dir: str = "~/.cache/eegcodec/windows"
    #: a folder written by ``python tools/sprint.py pack`` (train.npz, val.npz): train on
    #: those adapted windows instead of reading recordings (a bare GPU machine has no EEG files)
    packed: str = ""


@dataclass
class AugmentConfig:
    """Per-window probabilities of the training-time changes (:mod:`eegcodec.train.augment`);
    all 0 (the default): windows as recorded."""

    sign_flip: float = 0.0
    #: gain drawn from 2 ** U(-gain_octaves, gain_octaves) (0: none)
    gain_octaves: float = 0.0
    #: common-average or single-channel re-reference (multi-channel windows)
    reref: float = 0.0
    drift: float = 0.0
    blink: float = 0.0
    muscle: float = 0.0

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


@dataclass
class LossConfig:
    """Loss weights (0 disables a term); STFT windows and discriminator settings in codec samples.

    ``adversarial``/``feature_matching`` > 0 switch on DAC's discriminators
    (multi-period with ``gan_periods``, multi-band STFT with ``gan_fft_sizes``),
    trained alongside with their own AdamW.
    """

    l1: float = 1.0
    l2: float = 0.0
    stft: float = 1.0
    stft_windows: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    commitment: float = 0.25
    codebook: float = 1.0
    adversarial: float = 0.0
    feature_matching: float = 0.0
    gan_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    gan_fft_sizes: list[int] = field(default_factory=lambda: [256, 128, 64])


@dataclass
class OptimConfig:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    #: every this many steps, codebook entries unused since the last reset are
    #: re-seeded with latents drawn from the current batch (0: never)
    code_reset_every: int = 25
    #: train as a plain autoencoder (no quantizer) for this many steps, then seed
    #: every codebook with latents of a large batch before quantised training
    vq_warmup_steps: int = 150


@dataclass
class TrainConfig:
    """A whole recipe.

    ``family`` is the network (``dac``, ``dac_mc`` or ``wavtokenizer``, see
    :data:`eegcodec.backends.registry.FAMILIES`); ``model`` holds its constructor arguments
    (``dac.DAC`` arguments, or WavTokenizer ``variant`` and fields); ``init`` is
    ``"scratch"`` or a model name/path whose weights initialise the network
    (e.g. ``dac_16khz``, ``wavtokenizer-75:PATH``).
    """

    name: str = "dac-small"
    family: str = "dac"
    model: dict[str, Any] = field(default_factory=dict)
    init: str = "scratch"
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps: int = 1000
    batch_size: int = 32
    seed: int = 0
    threads: int = 0
    log_every: int = 25
    val_every: int = 250
    val_windows: int = 256
    ckpt_every: int = 250
    default_codebooks: int | None = None  #: depth the exported model recommends (None: its maximum)
    max_minutes: float = 0.0  #: stop (validate, export) after this much training time; 0: run all steps


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise EegcodecError(f"recipe section {where or 'top level'} must be a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise EegcodecError(
            f"unknown recipe keys {sorted(unknown)} in {where or 'top level'}; allowed: {sorted(known)}"
        )
    kwargs = {}
    defaults = cls()
    for name, value in values.items():
        default = getattr(defaults, name)
        kwargs[name] = (
            _build(type(default), value, f"{where}.{name}".strip(".")) if is_dataclass(default) else value
        )
    return cls(**kwargs)


def _set(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=value"`` -> ``("a.b", value)`` with the value parsed as YAML (``--set``)."""
    if "=" not in item:
        raise EegcodecError(f"a recipe override must be key=value, got {item!r}")
    key, raw = item.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    """A recipe's values; ``base: OTHER.yaml`` (relative to the recipe) is read first and
    this recipe's keys are merged over it, section by section."""
    if not path.is_file():
        raise EegcodecError(f"recipe not found: {path}")
    if path.resolve() in seen:
        raise EegcodecError(f"recipe {path} includes itself through 'base'")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise EegcodecError(f"recipe {path} must be a YAML mapping")
    base = values.pop("base", None)
    if base:
        values = _merge(_read_yaml(path.parent / base, seen + (path.resolve(),)), values)
    return values


def load_recipe(path: str | Path, overrides: list[str] = (), cls=TrainConfig):
    """Read a YAML recipe (and its ``base``), apply ``key=value`` overrides, return a ``cls``
    (:class:`TrainConfig`, or another recipe dataclass such as ``AlignConfig``)."""
    values = _read_yaml(Path(path))
    for item in overrides:
        _set(values, *parse_override(item))
    return _build(cls, values, "")


def recipe_to_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
