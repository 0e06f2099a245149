"""Recipes of ``eegcodec align train``: plain dataclasses filled from YAML (same rules as
:mod:`eegcodec.train.config`: ``base:`` includes, ``--set key=value`` overrides, unknown
keys refused)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EegcodecError
from ..train.config import OptimConfig, _build, load_recipe


@dataclass
class PairsConfig:
    """Paired data: which manifest, how windows are cut, how pairs are split.

    ``split_by``: ``subject`` (no subject on two sides), ``stimulus`` (no stimulus on two
    sides) or ``both`` (a pair is used only when its subject and its stimulus fall on the
    same side; the other pairs are left out). Subjects/stimuli named in ``test_*``/``val_*``
    go there; otherwise ``test_fraction``/``val_fraction`` of them are drawn with ``seed``.
    """

    root: str = ""  #: the data folder (``--data``); the manifests are relative to it
    manifest: str = "manifest.csv"
    control_manifest: str = "manifest_control.csv"
    window_seconds: float = 3.2
    step_seconds: float = 0.4
    split_by: str = "both"
    test_subjects: list[str] = field(default_factory=list)
    val_subjects: list[str] = field(default_factory=list)
    test_fraction: float = 0.25
    val_fraction: float = 0.125
    seed: int = 0


@dataclass
class MapperConfig:
    """M_A, M_B and P sizes (see :class:`eegcodec.align.model.AlignModel`)."""

    shared_dim: int = 128
    hidden: int = 128
    dropout: float = 0.1


@dataclass
class AlignLossConfig:
    """total = lambda_align * L_align + lambda_rec * L_rec; ``align`` is ``mse``, ``cosine``
    or ``infonce`` (CLIP-style, learned temperature starting at ``temperature``)."""

    align: str = "infonce"
    lambda_align: float = 1.0
    lambda_rec: float = 1.0
    temperature: float = 0.1

    def __post_init__(self) -> None:
        if self.align not in ("mse", "cosine", "infonce"):
            raise EegcodecError(f"loss.align must be mse, cosine or infonce, got {self.align!r}")
        if self.lambda_align < 0 or self.lambda_rec < 0 or self.lambda_align + self.lambda_rec == 0:
            raise EegcodecError(
                f"loss weights must be >= 0 and not both 0, got lambda_align={self.lambda_align}, "
                f"lambda_rec={self.lambda_rec}"
            )


@dataclass
class FinetuneBConfig:
    """Fine-tuning encoder B during alignment (DAC-MC encoders).

    ``blocks`` 0 keeps encoder B frozen (its embeddings computed once and cached). N > 0
    trains the last N modules of its per-channel encoder (mc-small: 2 = Snake + the last
    convolution, 3 adds the last strided block) and its channel attention (``aggregate``);
    the channel embedding, quantizer codebooks and decoder stay frozen, so the tuned
    encoder's tokens decode with the original decoder. E_B passes the quantizer by DAC's
    straight-through estimator. ``lambda_codec`` weights the codec's own reconstruction loss
    (L1 + multi-scale STFT on codec-domain EEG, through the frozen decoder) on the first
    ``codec_windows`` windows of each batch: the regulariser that keeps the tokens decoding.
    ``lr_scale``: encoder B's learning rate relative to ``optim.lr``. ``init``: a frozen
    run (folder or mapper file) whose mapper to start from (same recipe sizes).
    """

    blocks: int = 0
    lambda_codec: float = 1.0
    codec_windows: int = 8
    lr_scale: float = 0.1
    init: str = ""

    def __post_init__(self) -> None:
        if self.blocks < 0 or self.lambda_codec < 0 or self.codec_windows < 1 or self.lr_scale <= 0:
            raise EegcodecError(
                "finetune_b needs blocks >= 0, lambda_codec >= 0, codec_windows >= 1 and lr_scale > 0, got "
                f"{self.blocks}, {self.lambda_codec}, {self.codec_windows}, {self.lr_scale}"
            )


@dataclass
class AlignConfig:
    """A whole ``align`` recipe.

    ``encoder_a``: the audio codec (``dac_16khz``/``dac_24khz``/``dac_44khz`` through DAC's
    download path, or a DAC-format file such as the one ``recipes/audio_dac_small.yaml``
    trains). ``encoder_b``: the EEG codec (an eegcodec model name or file), read at
    ``encoder_b_depth`` codebooks (None: the model's default). Encoder A is frozen; encoder B
    too unless ``finetune_b.blocks`` > 0 (:class:`FinetuneBConfig`).
    """

    name: str = "align"
    encoder_a: str = "runs/audio_dac_small/best.pth"
    encoder_b: str = "default"
    encoder_b_depth: int | None = None
    data: PairsConfig = field(default_factory=PairsConfig)
    model: MapperConfig = field(default_factory=MapperConfig)
    loss: AlignLossConfig = field(default_factory=AlignLossConfig)
    finetune_b: FinetuneBConfig = field(default_factory=FinetuneBConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-3, warmup_steps=50, weight_decay=0.01, code_reset_every=0, vq_warmup_steps=0
        )
    )
    steps: int = 1500
    batch_size: int = 64
    seed: int = 0
    threads: int = 0
    log_every: int = 25
    val_every: int = 100
    ckpt_every: int = 250


def load_align_recipe(path, overrides: list[str] = ()) -> AlignConfig:
    """Read an align recipe (and its ``base``), apply ``key=value`` overrides."""
    return load_recipe(path, overrides, AlignConfig)


def align_config_from_dict(values: dict) -> AlignConfig:
    """An :class:`AlignConfig` from its ``asdict`` form (as stored in a mapper file)."""
    return _build(AlignConfig, values, "")
