"""Pretrained backbones: local files in several layouts, torchvision's ImageNet weights through
the hub cache, and one clear error line for everything that goes wrong. Nothing is downloaded
(see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torchvision.models import resnet

from rmi_cli.config import ModelConfig
from rmi_cli.errors import CheckpointError, ConfigError
from rmi_cli.models import SegmentationModel, build_model

State = dict[str, Tensor]


def build(pretrained: str | None, **fields: object) -> SegmentationModel:
    cfg = ModelConfig(**({"backbone": "resnet18", "pretrained": pretrained} | fields))
    return build_model(cfg, num_classes=3)


def assert_same_tensors(actual: State, expected: State) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def save(obj: object, path: Path) -> str:
    torch.save(obj, path)
    return str(path)


def single_line_error(error: pytest.ExceptionInfo[CheckpointError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_torchvision_resnet_file_loads_into_the_backbone(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = resnet.resnet18(weights=None)  # with fc.*, as torchvision publishes it
    with torch.no_grad():
        for bn in (m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_()  # not the fresh-model defaults, so a skipped load shows
    model = build(save(reference.state_dict(), tmp_path / "resnet18.pth"), output_stride=8)
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert_same_tensors(model.backbone.state_dict(), expected)


WRAPPINGS: dict[str, Callable[[State, State], object]] = {
    "plain": lambda backbone, head: backbone,
    "state_dict": lambda backbone, head: {"state_dict": backbone, "epoch": 3},
    "model+module": lambda backbone, head: {
        "model": {f"module.{k}": v for k, v in backbone.items()}
    },
    "whole segmentation model": lambda backbone, head: (
        {f"backbone.{k}": v for k, v in backbone.items()}
        | {f"head.{k}": v for k, v in head.items()}
    ),
    "module.backbone": lambda backbone, head: {
        "state_dict": {f"module.backbone.{k}": v for k, v in backbone.items()}
    },
}


@pytest.mark.parametrize("wrapping", list(WRAPPINGS))
def test_backbone_weights_round_trip_through_a_file(tmp_path: Path, wrapping: str) -> None:
    torch.manual_seed(2)
    source = build(None, name="deeplabv3plus")
    backbone, head = source.backbone.state_dict(), source.head.state_dict()
    path = save(WRAPPINGS[wrapping](backbone, head), tmp_path / "weights.pth")
    torch.manual_seed(3)
    loaded = build(path, name="deeplabv3plus")
    assert_same_tensors(loaded.backbone.state_dict(), backbone)
    # Only the backbone is loaded: the head keeps its own random start.
    assert not torch.equal(loaded.head.classifier.weight, source.head.classifier.weight)


# The deep-stem ResNet layouts of other projects, as renames from this backbone's own layout
# (which is PyTorch-Encoding's and the RMI authors'): CSAIL's semantic-segmentation-pytorch
# (`conv1, bn1, conv2, bn2, conv3, bn3` at the top level) and mmsegmentation's ResNetV1c.
STEM_LAYOUTS: dict[str, dict[str, str]] = {
    "encoding": {},
    "csail": {
        "conv1.0.": "conv1.", "conv1.1.": "bn1.", "conv1.3.": "conv2.",
        "conv1.4.": "bn2.", "conv1.6.": "conv3.", "bn1.": "bn3.",
    },
    "mmseg": {
        "conv1.0.": "stem.0.", "conv1.1.": "stem.1.", "conv1.3.": "stem.3.",
        "conv1.4.": "stem.4.", "conv1.6.": "stem.6.", "bn1.": "stem.7.",
    },
}  # fmt: skip


def to_layout(state: State, layout: str) -> State:
    renames = STEM_LAYOUTS[layout]
    out = {}
    for key, value in state.items():
        prefix = next((p for p in renames if key.startswith(p)), None)
        out[renames[prefix] + key[len(prefix) :] if prefix else key] = value
    return out


@pytest.mark.parametrize("layout", list(STEM_LAYOUTS))
def test_deep_stem_checkpoints_load_from_each_layout(tmp_path: Path, layout: str) -> None:
    torch.manual_seed(4)
    source = build(None, deep_stem=True).backbone.state_dict()
    converted = to_layout(source, layout) | {"fc.weight": torch.zeros(1000, 512)}
    if layout == "csail":
        assert converted["conv2.weight"].shape == (64, 64, 3, 3)
        assert converted["bn3.running_mean"].shape == (128,)
        assert converted["conv1.weight"].shape == (64, 3, 3, 3)
    model = build(save(converted, tmp_path / f"resnet18-deep-{layout}.pth"), deep_stem=True)
    assert_same_tensors(model.backbone.state_dict(), source)


def test_checkpoints_without_batchnorm_counters_load(tmp_path: Path) -> None:
    state = build(None).backbone.state_dict()
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    model = build(save(old, tmp_path / "old.pth"))
    assert_same_tensors({k: model.backbone.state_dict()[k] for k in old}, old)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "resnet101.pth"
    with pytest.raises(CheckpointError) as error:
        build(str(path))
    message = single_line_error(error)
    assert str(path) in message and "does not exist" in message


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, world\n", bytes(range(256)) * 8],
    ids=["empty", "text", "binary"],
)
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        build(str(path))
    message = single_line_error(error)
    assert f"cannot read {path} as a PyTorch state dict" in message


class Arbitrary:
    """A pickled object that weights_only loading must refuse."""


def test_pickled_objects_are_refused_by_weights_only_loading(tmp_path: Path) -> None:
    path = save({"conv1.weight": Arbitrary()}, tmp_path / "unsafe.pth")
    with pytest.raises(CheckpointError) as error:
        build(path)
    message = single_line_error(error)
    assert "cannot read" in message and "Unsupported global" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (torch.zeros(3), "holds a Tensor, not a state dict"),
        ({"epoch": 3, "note": "no weights"}, "holds no named tensors"),
    ],
)
def test_files_without_a_state_dict_are_named(
    tmp_path: Path, content: object, expected: str
) -> None:
    path = save(content, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError) as error:
        build(path)
    message = single_line_error(error)
    assert path in message and expected in message


def test_a_file_for_another_depth_lists_keys_and_names_the_architecture(tmp_path: Path) -> None:
    path = save(resnet.resnet50(weights=None).state_dict(), tmp_path / "resnet50.pth")
    with pytest.raises(CheckpointError) as error:
        build(path)
    message = single_line_error(error)
    assert f"{path} does not fit a resnet18 (7x7 stem) backbone" in message
    assert "unexpected keys (layer1.0.conv3.weight" in message
    assert (
        "shape mismatches (file vs model) (layer1.0.conv1.weight 64x64x1x1 vs 64x64x3x3" in message
    )
    assert "set model.backbone: resnet50" in message


@pytest.mark.parametrize(("file_deep", "model_deep"), [(False, True), (True, False)])
def test_a_stem_mismatch_says_which_setting_to_change(
    tmp_path: Path, file_deep: bool, model_deep: bool
) -> None:
    path = save(build(None, deep_stem=file_deep).backbone.state_dict(), tmp_path / "stem.pth")
    with pytest.raises(CheckpointError) as error:
        build(path, deep_stem=model_deep)
    message = single_line_error(error)
    assert "missing key" in message and "unexpected key" in message
    assert f"set model.deep_stem: {'true' if file_deep else 'false'}" in message


def test_a_file_of_another_network_says_so(tmp_path: Path) -> None:
    path = save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError) as error:
        build(path)
    message = single_line_error(error)
    assert "1 unexpected key (encoder.weight)" in message
    assert "no ResNet weights" in message


def test_imagenet_without_network_asks_for_a_local_file(no_network: list[str]) -> None:
    with pytest.raises(CheckpointError) as error:
        build("imagenet", backbone="resnet101")
    message = single_line_error(error)
    assert no_network == ["https://download.pytorch.org/models/resnet101-63fe2227.pth"]
    assert "Temporary failure in name resolution" in message
    assert message.endswith("model.pretrained: /path/to/resnet101.pth")


def test_imagenet_weights_come_from_the_torch_cache(_offline: Path) -> None:
    torch.manual_seed(5)
    reference = resnet.resnet18(weights=None).state_dict()
    cache = _offline / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference, cache / "resnet18-f37072fd.pth")
    model = build("imagenet")
    expected = {k: v for k, v in reference.items() if not k.startswith("fc.")}
    assert_same_tensors(model.backbone.state_dict(), expected)


def test_imagenet_has_no_deep_stem_weights() -> None:
    with pytest.raises(ConfigError, match="torchvision publishes no deep-stem ResNet weights"):
        build("imagenet", deep_stem=True)
