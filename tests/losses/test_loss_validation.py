"""Bad options raise `LossOptionError` (the user's), tensors that do not fit raise
`LossInputError` (a bug), each with one clear message."""

from __future__ import annotations

import re

import pytest
import torch

from rmi_cli.errors import LossOptionError, RmiError, UserError
from rmi_cli.losses import LossInputError, affinity_field_loss, build_loss, ce_loss, rmi_loss


def logits_labels(
    shape: tuple[int, int, int, int] = (2, 3, 16, 16),
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, classes, height, width = shape
    return torch.randn(shape), torch.randint(0, classes, (batch, height, width))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"radius": 0},
            "RMI radius must be an integer in 1..10 (the side R of the R x R region); found 0",
        ),
        ({"radius": 11}, "RMI radius must be an integer in 1..10"),
        ({"pool": "mean"}, "RMI pool must be one of avg, max, nearest; found 'mean'"),
        (
            {"pool_size": 0},
            "RMI pool_size must be an integer in 1..10 (1: no downsampling); found 0",
        ),
        ({"pool_size": 11}, "found 11"),
        (
            {"weight_lambda": 1.5},
            "RMI weight_lambda must be in [0, 1] with lambda_way 1; found 1.5",
        ),
        (
            {"weight_lambda": -0.1, "lambda_way": 0},
            "RMI weight_lambda must be a finite number >= 0",
        ),
        ({"lambda_way": 2}, "RMI lambda_way must be 0"),
    ],
)
def test_rmi_option_messages(options: dict, message: str) -> None:
    logits, labels = logits_labels()
    with pytest.raises(LossOptionError, match=re.escape(message)):
        rmi_loss(logits, labels, num_classes=3, **options)
    with pytest.raises(LossOptionError, match=re.escape(message)):
        build_loss("rmi", num_classes=3, **options)


def test_pooled_map_smaller_than_region_names_the_sizes() -> None:
    logits, labels = logits_labels((1, 2, 9, 7))
    message = (
        "RMI needs a pooled map of at least R x R: input 9x7 pooled by avg/4 gives 3x2, "
        "smaller than the region R=3; use a smaller pool_size or radius, or larger images"
    )
    with pytest.raises(LossOptionError, match=re.escape(message)):
        rmi_loss(logits, labels, num_classes=2)
    with pytest.raises(LossOptionError, match=re.escape("pooled by nearest/4 gives 2x1")):
        rmi_loss(logits, labels, num_classes=2, pool="nearest")


def test_shape_mismatch_names_both_shapes() -> None:
    logits, _ = logits_labels()
    labels = torch.zeros(2, 16, 15, dtype=torch.long)
    message = (
        "labels must have shape (B, H, W) = (2, 16, 16) to match logits (B, C, H, W) = "
        "(2, 3, 16, 16); found labels (2, 16, 15)"
    )
    for loss_fn in (rmi_loss, ce_loss, affinity_field_loss):
        with pytest.raises(LossInputError, match=re.escape(message)):
            loss_fn(logits, labels, num_classes=3)


def test_num_classes_mismatch() -> None:
    logits, labels = logits_labels()
    message = "num_classes is 21 but the logits have 3 channels (shape (2, 3, 16, 16))"
    with pytest.raises(LossInputError, match=re.escape(message)):
        build_loss("bce", num_classes=21)(logits, labels)


def test_bad_dtypes() -> None:
    logits, labels = logits_labels()
    with pytest.raises(LossInputError, match="labels must be an integer tensor; found"):
        ce_loss(logits, labels.float())
    with pytest.raises(LossInputError, match="logits must be a floating-point"):
        ce_loss(labels.unsqueeze(1), labels)


def test_affinity_options_and_sizes() -> None:
    logits, labels = logits_labels((1, 2, 7, 9))
    with pytest.raises(LossOptionError, match=re.escape("input 7x9 gives 0x1")):
        affinity_field_loss(logits, labels)
    with pytest.raises(LossOptionError, match="kld_margin must be > 0; found -1"):
        build_loss("aaf", num_classes=2, kld_margin=-1)


def test_loss_option_error_is_a_user_error_and_a_value_error() -> None:
    with pytest.raises(UserError):
        build_loss("rmi", num_classes=3, radius=0)
    with pytest.raises(ValueError, match="RMI radius"):
        build_loss("rmi", num_classes=3, radius=0)


def test_input_errors_are_bugs_not_user_errors() -> None:
    """A queued job that hits one is retried with its traceback, not blamed on the user."""
    assert issubclass(LossInputError, ValueError)
    assert not issubclass(LossInputError, RmiError)
    assert issubclass(LossOptionError, UserError) and issubclass(LossOptionError, ValueError)
