"""ImageNet-pretrained backbone weights: torchvision's, or a local state dict (recipe section 3).

`model.pretrained: imagenet` takes torchvision's published weights through the torch hub cache
(`$TORCH_HOME/hub/checkpoints`), downloading them where a network exists. `model.pretrained: PATH`
reads a local file with `torch.load(..., weights_only=True)` in any of these layouts:

- torchvision's ResNet (`conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`);
- the deep-stem ResNet of PyTorch-Encoding and of the paper's code (`conv1.0`, `conv1.1`,
  `conv1.3`, `conv1.4`, `conv1.6`, `bn1`): the backbone's own layout;
- the deep-stem ResNet of the CSAIL semantic-segmentation project (`conv1`, `bn1`, `conv2`,
  `bn2`, `conv3`, `bn3`) and mmsegmentation's ResNetV1c (`stem.0` ... `stem.7`), renamed here;

wrapped or not in `{"state_dict": ...}` / `{"model": ...}`, with or without `module.` prefixes;
a whole segmentation checkpoint contributes its `backbone.` keys. `fc.*` is ignored. Only the
backbone is loaded; anything that does not fit raises a `CheckpointError` naming the file.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import sys
import urllib.error
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor
from torchvision.models import get_model_weights

from rmi_cli.config import PRETRAINED_IMAGENET, expand_path
from rmi_cli.errors import CheckpointError, ConfigError
from rmi_cli.models.backbones import ResNetBackbone

IMAGENET = PRETRAINED_IMAGENET

# Other projects' deep-stem module names -> this backbone's (first key component only).
_STEM_RENAMES: dict[str, dict[str, str]] = {
    "csail": {
        "conv1": "conv1.0", "bn1": "conv1.1", "conv2": "conv1.3",
        "bn2": "conv1.4", "conv3": "conv1.6", "bn3": "bn1",
    },
    "mmseg": {
        "stem.0": "conv1.0", "stem.1": "conv1.1", "stem.3": "conv1.3",
        "stem.4": "conv1.4", "stem.6": "conv1.6", "stem.7": "bn1",
    },
}  # fmt: skip
_STEM_MARKERS = {"csail": "conv3.weight", "mmseg": "stem.0.weight"}

# (bottleneck blocks?, number of layer3 blocks) -> architecture, to say what a file holds.
_ARCHITECTURES = {
    (False, 2): "resnet18",
    (False, 6): "resnet34",
    (True, 6): "resnet50",
    (True, 23): "resnet101",
    (True, 36): "resnet152",
}
# What fetching or reading torchvision's cached weights raises: network and file errors
# (URLError is an OSError), a hash mismatch (RuntimeError), a truncated or corrupt file.
_READ_ERRORS = (OSError, RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError)
_SHOWN = 3


def load_pretrained(backbone: ResNetBackbone, source: str) -> None:
    """Load `source` ("imagenet" or a file path) into `backbone`, in place."""
    if source == IMAGENET:
        state, origin = imagenet_state_dict(backbone), f"torchvision's {backbone.name} weights"
    else:
        path = Path(expand_path(source))
        state, origin = backbone_state_dict(_read(path), str(path)), str(path)
    _check_fit(backbone, state, origin)
    backbone.load_state_dict(state, strict=False)


def imagenet_state_dict(backbone: ResNetBackbone) -> dict[str, Tensor]:
    """torchvision's ImageNet weights (IMAGENET1K_V1, the classic ones) from the hub cache."""
    if backbone.deep_stem:
        raise ConfigError(
            "model.pretrained: imagenet: torchvision publishes no deep-stem ResNet weights; pass "
            "a deep-stem checkpoint (model.pretrained: /path/to/resnet101-deep.pth) or set "
            "model.deep_stem: false"
        )
    weights = get_model_weights(backbone.name).IMAGENET1K_V1
    try:
        # torch hub announces downloads on stdout, which belongs to the tool's data output.
        with contextlib.redirect_stdout(sys.stderr):
            state = weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except _READ_ERRORS as error:
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise CheckpointError(
            f"model.pretrained: imagenet: cannot get {weights.url} into {cache} "
            f"({_reason(error)}); without network, pass a local file instead: "
            f"model.pretrained: /path/to/{backbone.name}.pth"
        ) from error
    return backbone_state_dict(state, weights.url)


def backbone_state_dict(checkpoint: object, origin: str) -> dict[str, Tensor]:
    """The backbone's tensors of a loaded checkpoint, renamed to the backbone's layout."""
    state = _unwrap(checkpoint, origin)
    state = {_strip(key, "module."): value for key, value in state.items()}
    if any(key.startswith("backbone.") for key in state):
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    for layout, marker in _STEM_MARKERS.items():
        if marker in state:
            state = _rename_stem(state, _STEM_RENAMES[layout])
    return state


def _read(path: Path) -> object:
    if not path.is_file():
        raise CheckpointError(
            f"model.pretrained: {path} does not exist; give an existing state-dict file, "
            f'"imagenet", or nothing to train from scratch'
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    # torch.load reports a file that is not a checkpoint with whatever its unpickler tripped on
    # (UnpicklingError, EOFError, KeyError, RuntimeError, ...): all of them mean "not readable".
    except Exception as error:
        raise CheckpointError(
            f"model.pretrained: cannot read {path} as a PyTorch state dict ({_reason(error)}); "
            f"save one with torch.save(model.state_dict(), path)"
        ) from error


def _unwrap(checkpoint: object, origin: str) -> dict[str, Tensor]:
    while isinstance(checkpoint, Mapping):
        inner = next((checkpoint[k] for k in ("state_dict", "model") if k in checkpoint), None)
        if not isinstance(inner, Mapping):
            break
        checkpoint = inner
    if not isinstance(checkpoint, Mapping):
        found = type(checkpoint).__name__
        raise CheckpointError(f"model.pretrained: {origin} holds a {found}, not a state dict")
    state = {k: v for k, v in checkpoint.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if not state:
        raise CheckpointError(f"model.pretrained: {origin} holds no named tensors (no state dict)")
    return state


def _strip(key: str, prefix: str) -> str:
    while key.startswith(prefix):
        key = key[len(prefix) :]
    return key


def _rename_stem(state: dict[str, Tensor], renames: dict[str, str]) -> dict[str, Tensor]:
    pattern = re.compile(rf"^({'|'.join(re.escape(name) for name in renames)})\.")
    return {pattern.sub(lambda m: renames[m[1]] + ".", key): v for key, v in state.items()}


def _check_fit(backbone: ResNetBackbone, state: dict[str, Tensor], origin: str) -> None:
    problems = _mismatches(backbone, state)
    if problems:
        raise CheckpointError(
            f"model.pretrained: {origin} does not fit a {backbone.describe()} backbone: "
            f"{'; '.join(problems)}; {_advice(backbone, state)}"
        )


def _mismatches(backbone: ResNetBackbone, state: dict[str, Tensor]) -> list[str]:
    expected = {k: v.shape for k, v in backbone.state_dict().items()}
    # Checkpoints from before PyTorch 0.4 have no BN batch counters; BN fills them in.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {_shape(v.shape)} vs {_shape(expected[k])}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k]
    ]
    found = (
        ("missing key", "missing keys", missing),
        ("unexpected key", "unexpected keys", unexpected),
        ("shape mismatch (file vs model)", "shape mismatches (file vs model)", mismatched),
    )
    return [
        f"{_count(len(items), one, many)} ({_few(items)})" for one, many, items in found if items
    ]


def _shape(shape: torch.Size) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _few(items: list[str]) -> str:
    more = f", ... {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _advice(backbone: ResNetBackbone, state: dict[str, Tensor]) -> str:
    """What the file seems to hold, so that the user knows which setting to change."""
    if not any(k.startswith("layer1.0.") for k in state):
        return f"the file holds no ResNet weights (no layer1.0.* keys): pass a {backbone.name}"
    file_deep = "conv1.0.weight" in state
    if file_deep and not backbone.deep_stem:
        return "the file has a deep stem: set model.deep_stem: true"
    if backbone.deep_stem and not file_deep:
        return "the file has a 7x7 stem: set model.deep_stem: false or pass a deep-stem checkpoint"
    arch = _architecture(state)
    if arch and arch != backbone.name:
        return f"the file holds a {arch}: set model.backbone: {arch} or pass a {backbone.name}"
    return (
        f"expected a {backbone.name} state dict in torchvision's layout or a deep-stem layout "
        f"(PyTorch-Encoding, CSAIL or mmsegmentation)"
    )


def _architecture(state: dict[str, Tensor]) -> str | None:
    layer3_blocks = {int(m[1]) for k in state if (m := re.match(r"layer3\.(\d+)\.", k))}
    return _ARCHITECTURES.get(("layer1.0.conv3.weight" in state, len(layer3_blocks)))


def _reason(error: BaseException) -> str:
    """One line on why loading failed (torch's weights-only refusal buries it mid-message)."""
    text = str(error.reason if isinstance(error, urllib.error.URLError) else error)
    if found := re.search(r"WeightsUnpickler error:\s*(.+)", text):
        text = found[1]
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
