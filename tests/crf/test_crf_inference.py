"""dense_crf / crf_steps: the paper's CRF on one image, checked against pydensecrf itself."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rmi_cli.config import CRFConfig
from rmi_cli.crf import INSTALL_HINT, crf_steps, dense_crf, probabilities_from_labels
from rmi_cli.errors import DependencyMissing

dcrf = pytest.importorskip("pydensecrf.densecrf")
utils = pytest.importorskip("pydensecrf.utils")


def direct_crf(probs: np.ndarray, image: np.ndarray) -> dcrf.DenseCRF2D:
    """The recipe's section 2 written out by hand, with literal numbers, as a user would."""
    num_classes, height, width = probs.shape
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    crf.setUnaryEnergy(np.ascontiguousarray(utils.unary_from_softmax(probs, clip=1e-5)))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=30, srgb=13, rgbim=np.ascontiguousarray(image), compat=10)
    return crf


Scene = tuple[np.ndarray, np.ndarray, np.ndarray]


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    valid = truth < 11
    return float((labels == truth)[valid].mean())


def test_crf_improves_accuracy_on_a_noisy_synthetic_scene(noisy_scene: Scene) -> None:
    probs, image, label = noisy_scene
    before = accuracy(probs.argmax(axis=0), label)
    outputs = dense_crf(probs, image, iterations=[1, 5])
    after = {count: accuracy(labels, label) for count, labels in outputs.items()}
    assert before < 0.7, before
    assert after[1] > before + 0.1, (before, after)
    assert after[5] > 0.95, (before, after)


@pytest.mark.camvid
def test_labels_equal_a_direct_pydensecrf_call_on_camvid(camvid_image: tuple) -> None:
    image, label = camvid_image
    probs = probabilities_from_labels(label, 11, margin=1.0, noise=1.5, seed=3)
    ours = dense_crf(probs, image, iterations=[1, 5])
    for count in (1, 5):
        theirs = np.asarray(direct_crf(probs, image).inference(count)).argmax(axis=0)
        np.testing.assert_array_equal(ours[count], theirs.reshape(label.shape))
    assert accuracy(ours[5], label) > accuracy(probs.argmax(axis=0), label) + 0.1


def test_stepped_readout_equals_separate_inference_calls(noisy_scene: Scene) -> None:
    probs, image, _ = noisy_scene
    crf = direct_crf(probs, image)
    q, scratch1, scratch2 = crf.startInference()
    stepped = {}
    for step in range(1, 11):
        crf.stepInference(q, scratch1, scratch2)
        stepped[step] = np.array(q)
    for count in (1, 5, 10):
        separate = np.array(direct_crf(probs, image).inference(count))
        np.testing.assert_array_equal(stepped[count], separate)  # bit for bit
    together = dense_crf(probs, image, iterations=[10, 1, 5])
    assert list(together) == [1, 5, 10]
    for count in (1, 5, 10):
        np.testing.assert_array_equal(together[count], dense_crf(probs, image, iterations=count))


def test_timings_are_filled_and_cumulative(noisy_scene: Scene) -> None:
    probs, image, _ = noisy_scene
    steps = crf_steps(probs, image, iterations=(1, 5, 10))
    assert [step.iterations for step in steps] == [1, 5, 10]
    seconds = [step.seconds for step in steps]
    assert 0 < seconds[0] < seconds[1] < seconds[2], seconds
    assert all(step.labels.dtype == np.uint8 and step.labels.shape == (48, 64) for step in steps)


def test_fp16_probabilities_are_widened_before_the_log(noisy_scene: Scene) -> None:
    probs, image, _ = noisy_scene
    half = probs.astype(np.float16)
    np.testing.assert_array_equal(
        dense_crf(half, image, iterations=5),
        dense_crf(half.astype(np.float32), image, iterations=5),
    )


def test_parameters_are_used(noisy_scene: Scene) -> None:
    probs, image, _ = noisy_scene
    no_pairwise = CRFConfig(gaussian_compat=0.0, bilateral_compat=0.0)
    # Without pairwise terms mean field keeps the unary's argmax.
    np.testing.assert_array_equal(
        dense_crf(probs, image, iterations=5, params=no_pairwise), probs.argmax(axis=0)
    )


def test_mismatched_sizes_are_one_line_errors(noisy_scene: Scene) -> None:
    probs, image, _ = noisy_scene
    with pytest.raises(ValueError, match=r"probabilities are 48x64 \(HxW\) but the image is 48x60"):
        dense_crf(probs, image[:, :60], iterations=1)
    with pytest.raises(ValueError, match="positive integers"):
        dense_crf(probs, image, iterations=[0, 5])


def test_missing_pydensecrf_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, noisy_scene: Scene
) -> None:
    # A None entry in sys.modules makes `import` raise ImportError, as if it were not installed.
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    probs, image, _ = noisy_scene
    with pytest.raises(DependencyMissing) as raised:
        dense_crf(probs, image, iterations=1)
    assert str(raised.value) == INSTALL_HINT
    assert "\n" not in INSTALL_HINT and "pip install pydensecrf2" in INSTALL_HINT


def test_importing_the_crf_loads_neither_torch_nor_pydensecrf() -> None:
    code = "import json, sys, rmi_cli.crf; print(json.dumps(list(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert not loaded & {"torch", "pydensecrf", "sqlalchemy", "typer", "yaml", "pandas"}
