"""Typed run configuration: everything that defines one training + evaluation run.

The manifest (`rmi_cli.manifest`) resolves YAML into these models; the engine consumes them; the
database stores their JSON dump beside the run, with a canonical hash that makes queueing
idempotent. Choices are spelled as users write them in YAML (`pool: avg`), never as integer codes.
This module imports pydantic only (no torch), so the CLI can validate manifests quickly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rmi_cli.constants import MIN_WARMUP_IMAGES

ModelName = Literal["deeplabv3", "deeplabv3plus"]
BackboneName = Literal["resnet18", "resnet50", "resnet101"]
DatasetName = Literal["camvid", "voc2012", "synthetic", "folder"]
LossName = Literal["ce", "bce", "rmi", "aaf"]
PoolName = Literal["avg", "max", "nearest"]
Precision = Literal["auto", "fp32", "bf16"]
# "dilated": torchvision's DeepLab backbone (the last stage, or two at output stride 8, trade
# their stride for atrous convolution). "released": the authors' code (recipe section 3): stage
# strides [1, 2, 2, 1] at output stride 16 ([1, 2, 1, 1] at 8), dilation 1 everywhere, the last
# BN of every residual block initialised to zero.
BackboneLayout = Literal["dilated", "released"]
# What a dataset's void label becomes: "ignore" (mapped to 255: neither trained on nor scored,
# the common convention) or "class" (a class of its own, trained on by every loss and scored:
# the released CamVid code's label 11 "unlabelled"; recipe section 4).
VoidMode = Literal["ignore", "class"]
# Datasets whose void label is a real label value that can be scored as a class. VOC's 255 marks
# object boundaries and "difficult" pixels: nothing to score, so it is always ignored.
VOID_CLASS_DATASETS = ("camvid",)

# `model.pretrained` value that means torchvision's published ImageNet weights.
PRETRAINED_IMAGENET = "imagenet"

# The head's learning-rate multiplier when `train.head_lr_mult` is None: the released code's
# values for ResNet-101 on VOC (parser_params.py). Its CamVid branch overrides both with x10,
# which experiments.yaml writes out explicitly.
DEFAULT_HEAD_LR_MULT: dict[str, float] = {"deeplabv3": 10.0, "deeplabv3plus": 5.0}

# Fields that change how a run executes but not what it computes; they are left out of the
# canonical hash so that re-queueing the same experiment with more loader workers (say) is a no-op.
OPERATIONAL_FIELDS = frozenset(
    {
        "data.workers",
        "data.gpu_cache",
        "train.device",
        "train.log_every",
        "train.checkpoint_every",
        "eval.save_probs",
    }
)
# Fields added after results were stored, left out of the canonical hash while they hold the
# value that reproduces the earlier behaviour exactly: runs stored before the field existed keep
# their hashes (their stored configurations read back with this value), and any other value
# changes the hash as it should.
HASH_NEUTRAL_DEFAULTS: dict[str, Any] = {
    "model.layout": "dilated",
    "model.bn_momentum": 0.1,
    "data.void": "ignore",
}


class Strict(BaseModel):
    """Base of every configuration block: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- losses ----------------------------------------------------------------------------------


class CELossConfig(Strict):
    """Softmax cross-entropy, mean over valid pixels (recipe section 2)."""

    name: Literal["ce"] = "ce"


class BCELossConfig(Strict):
    """The sigmoid BCE pixel term of the RMI objective alone (recipe sections 1.2 and 2)."""

    name: Literal["bce"] = "bce"


class RMILossConfig(Strict):
    """BCE + RMI, Eq. 16 with the released code's conventions (recipe section 1)."""

    name: Literal["rmi"] = "rmi"
    radius: int = Field(3, ge=1, le=10, description="side R of the R x R region")
    pool: PoolName = "avg"
    pool_size: int = Field(4, ge=1, le=10, description="downsampling factor (kernel = stride)")
    stride: int | None = Field(None, description="must equal pool_size when given")
    weight_lambda: float = Field(
        0.5, ge=0.0, allow_inf_nan=False, description="in [0, 1] with lambda_way 1"
    )
    lambda_way: Literal[0, 1] = 1

    @model_validator(mode="after")
    def _convex_weight(self) -> RMILossConfig:
        if self.lambda_way == 1 and self.weight_lambda > 1.0:
            raise ValueError(
                f"loss.weight_lambda must be in [0, 1] with lambda_way 1 (lambda * bce + "
                f"(1 - lambda) * rmi); found {self.weight_lambda}: lower it, or set "
                f"loss.lambda_way: 0 for bce + lambda * rmi"
            )
        return self

    @model_validator(mode="after")
    def _stride_is_pool_size(self) -> RMILossConfig:
        if self.stride is not None and self.stride != self.pool_size:
            raise ValueError(
                f"loss.stride must equal loss.pool_size (the released code asserts it); "
                f"found stride {self.stride} and pool_size {self.pool_size}: drop stride or "
                f"set both to the same value"
            )
        return self

    def options(self) -> dict[str, Any]:
        """Keyword arguments for the loss registry's builder."""
        return self.model_dump(exclude={"name", "stride"})


class AffinityLossConfig(Strict):
    """Softmax CE + the adaptive affinity field loss of Ke et al. (recipe section 2)."""

    name: Literal["aaf"] = "aaf"
    kld_margin: float = Field(3.0, gt=0.0)
    lambda_edge: float = Field(1.0, ge=0.0)
    lambda_non_edge: float = Field(1.0, ge=0.0)
    decay_base: float = Field(20.0, ge=1.0, description="decay = base^(-step / max_iter)")
    downsample: int = Field(8, ge=1, le=32)


LossConfig = Annotated[
    CELossConfig | BCELossConfig | RMILossConfig | AffinityLossConfig,
    Field(discriminator="name"),
]


def loss_options(loss: LossConfig) -> dict[str, Any]:
    """The keyword options of any loss configuration (empty for CE and BCE)."""
    if isinstance(loss, RMILossConfig):
        return loss.options()
    return loss.model_dump(exclude={"name"})


# --- model and data --------------------------------------------------------------------------


class ModelConfig(Strict):
    """A DeepLab model (recipe section 3)."""

    name: ModelName = "deeplabv3"
    backbone: BackboneName = "resnet101"
    deep_stem: bool = False
    output_stride: Literal[8, 16] = 16
    pretrained: str | None = Field(
        None,
        description='None (from scratch), "imagenet" (torchvision weights) or a local path; '
        "${VAR} expands on the machine that runs the job",
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    layout: BackboneLayout = Field(
        "dilated",
        description="dilated: torchvision-style atrous backbone; released: the authors' "
        "(no atrous convolution, strides [1, 2, 2, 1] at OS 16, zero-initialised last BN of "
        "each residual block)",
    )
    bn_momentum: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="momentum of every BatchNorm's running statistics (PyTorch convention: "
        "the weight of the new batch); the released ResNet-101 recipe uses 0.05",
    )


class SyntheticConfig(Strict):
    """Procedurally generated scenes (no files); deterministic by seed."""

    height: int = Field(96, ge=16, le=2048)
    width: int = Field(128, ge=16, le=2048)
    train_images: int = Field(64, ge=1)
    val_images: int = Field(16, ge=1)
    test_images: int = Field(16, ge=1)
    seed: int = 0


class DataConfig(Strict):
    """A dataset, its splits and the training augmentation (recipe section 4)."""

    name: DatasetName = "synthetic"
    root: str | None = Field(None, description="dataset folder; ${VAR} and ~ expand at run time")
    train_split: str = "train"
    eval_split: str = "val"
    sbd_root: str | None = Field(None, description="VOC trainaug: SBD labels converted to PNG")
    synthetic: SyntheticConfig = SyntheticConfig()
    crop_size: int = Field(513, ge=8)
    scales: tuple[float, ...] | None = Field(
        None, description="discrete random scales, e.g. [0.5, 0.75, ..., 2.0]"
    )
    scale_range: tuple[float, float] | None = Field(None, description="uniform [low, high]")
    flip: bool = True
    mean: tuple[float, float, float] | None = Field(None, description="0-255; None: dataset's")
    std: tuple[float, float, float] | None = Field(None, description="0-255; None: dataset's")
    workers: int = Field(4, ge=0)
    gpu_cache: Literal["auto", "on", "off"] = "auto"
    void: VoidMode = Field(
        "ignore",
        description="the dataset's void label: ignore (255, not trained on, not scored) or "
        "class (trained on and scored as a class of its own: CamVid's label 11 'unlabelled', "
        "as the released code and the paper's CamVid mIoU do)",
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.scales is not None and self.scale_range is not None:
            raise ValueError("give data.scales or data.scale_range, not both")
        if self.scales is not None and (not self.scales or min(self.scales) <= 0):
            raise ValueError(f"data.scales must be positive numbers; found {list(self.scales)}")
        if self.scale_range is not None:
            low, high = self.scale_range
            if not 0 < low <= high:
                raise ValueError(
                    f"data.scale_range must be [low, high] with 0 < low <= high; "
                    f"found [{low}, {high}]"
                )
        if self.name in ("camvid", "voc2012", "folder") and not self.root:
            raise ValueError(f"data.root is required for dataset {self.name!r}")
        if self.void == "class" and self.name not in VOID_CLASS_DATASETS:
            raise ValueError(
                f"data.void: class needs a dataset whose void is a label value that can be "
                f"scored ({', '.join(VOID_CLASS_DATASETS)}); {self.name!r} keeps its void at "
                f"255 only: use data.void: ignore"
            )
        return self

    def resolved_root(self) -> str | None:
        """`root` with ${VAR}, ${VAR:-default} and ~ expanded in this process's environment."""
        return expand_path(self.root) if self.root else None


# --- training and evaluation -----------------------------------------------------------------


class TrainConfig(Strict):
    """SGD with linear warm-up then poly decay (recipe section 4)."""

    iterations: int = Field(ge=1, description="max_iter")
    batch_size: int = Field(16, ge=2, description="BatchNorm needs 2 or more")
    lr: float = Field(0.007, gt=0.0)
    warmup_iters: int = Field(0, ge=0, description="slow_iters: linear ramp from warmup_lr to lr")
    warmup_lr: float = Field(1e-4, ge=0.0)
    poly_power: float = Field(0.9, ge=0.0)
    min_lr: float = Field(1e-6, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, description="conv weights only")
    head_lr_mult: float | None = Field(
        None, gt=0.0, description="None: DEFAULT_HEAD_LR_MULT (x10 v3, x5 v3+)"
    )
    precision: Precision = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU")
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    checkpoint_every: int = Field(500, ge=1)
    log_every: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.warmup_iters >= self.iterations:
            raise ValueError(
                f"train.warmup_iters ({self.warmup_iters}) must be smaller than "
                f"train.iterations ({self.iterations})"
            )
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(
                f"train.device must be auto, cpu, cuda or cuda:N; found {self.device!r}"
            )
        return self


class EvalConfig(Strict):
    """Whole-image, single-scale evaluation and the inference-time protocol."""

    warmup_images: int = Field(
        MIN_WARMUP_IMAGES,
        ge=0,
        description="untimed forward passes before timing (tables flag fewer than 10)",
    )
    max_images: int | None = Field(None, ge=1, description="evaluate the first N images only")
    save_probs: bool = Field(False, description="keep float32 softmax probabilities (for the CRF)")


class CRFConfig(Strict):
    """Dense CRF post-processing with the paper's settings (recipe section 2)."""

    iters: tuple[int, ...] = (1, 5, 10)
    gaussian_sxy: float = Field(3.0, gt=0.0)
    gaussian_compat: float = Field(3.0, ge=0.0)
    bilateral_sxy: float = Field(30.0, gt=0.0)
    bilateral_srgb: float = Field(13.0, gt=0.0)
    bilateral_compat: float = Field(10.0, ge=0.0)
    prob_clip: float = Field(1e-5, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> CRFConfig:
        if not self.iters or min(self.iters) < 1:
            raise ValueError(f"crf.iters must be positive integers; found {list(self.iters)}")
        return self


class RunConfig(Strict):
    """One run: train a model with a loss on a dataset, then evaluate it."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    loss: LossConfig = CELossConfig()
    train: TrainConfig
    eval: EvalConfig = EvalConfig()
    seed: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        """The full resolved configuration as plain JSON types."""
        return self.model_dump(mode="json")

    def canonical_hash(self) -> str:
        """A stable hash of what this run computes (operational fields excluded)."""
        return canonical_hash(self.to_json_dict())

    def head_lr_mult(self) -> float:
        """The head's learning-rate multiplier this run trains with."""
        if self.train.head_lr_mult is not None:
            return self.train.head_lr_mult
        return DEFAULT_HEAD_LR_MULT[self.model.name]


def canonical_hash(config: dict[str, Any], *, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of `config` (sorted keys, no operational fields, no
    `HASH_NEUTRAL_DEFAULTS` field at its neutral value)."""
    payload = _drop_paths(config, OPERATIONAL_FIELDS)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _drop_paths(config: dict[str, Any], paths: frozenset[str], prefix: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if dotted in paths:
            continue
        if dotted in HASH_NEUTRAL_DEFAULTS and value == HASH_NEUTRAL_DEFAULTS[dotted]:
            continue
        result[key] = _drop_paths(value, paths, f"{dotted}.") if isinstance(value, dict) else value
    return result


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def unset_variables(text: str) -> list[str]:
    """The `${VAR}` references of `text` (without a `:-default`) that are unset or empty here."""
    return [
        match["name"]
        for match in _VAR.finditer(text)
        if match["default"] is None and not os.environ.get(match["name"])
    ]


def expand_path(text: str) -> str:
    """Expand `${VAR}`, `${VAR:-default}` and a leading `~`; unset variables without a default
    are left as written so that the resulting "missing root" error shows them."""

    def substitute(match: re.Match[str]) -> str:
        value = os.environ.get(match["name"])
        if value:
            return value
        return match["default"] if match["default"] is not None else match[0]

    return str(Path(_VAR.sub(substitute, text)).expanduser())
