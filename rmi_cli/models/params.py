"""Parameter groups for the recipe's optimiser (section 4).

Weight decay applies to convolution and linear weights only, not to BatchNorm parameters nor to
biases; the head (everything that is not the backbone) gets its own learning-rate multiplier.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from rmi_cli.models.deeplab import SegmentationModel

GroupName = Literal["backbone/decay", "backbone/no_decay", "head/decay", "head/no_decay"]
GROUP_NAMES: tuple[GroupName, ...] = (
    "backbone/decay",
    "backbone/no_decay",
    "head/decay",
    "head/no_decay",
)
_DECAYED_MODULES = (nn.modules.conv._ConvNd, nn.Linear)


def split_parameters(model: SegmentationModel) -> dict[GroupName, list[nn.Parameter]]:
    """Every parameter of `model` in exactly one of the four groups, in module order."""
    groups: dict[GroupName, list[nn.Parameter]] = {name: [] for name in GROUP_NAMES}
    parts: tuple[tuple[Literal["backbone", "head"], nn.Module], ...] = (
        ("backbone", model.backbone),
        ("head", model.head),
    )
    for part, module_tree in parts:
        for module in module_tree.modules():
            decays = isinstance(module, _DECAYED_MODULES)
            for name, parameter in module.named_parameters(recurse=False):
                kind = "decay" if decays and name == "weight" else "no_decay"
                groups[f"{part}/{kind}"].append(parameter)  # type: ignore[index]
    return groups
