"""run_crf: the CRF over a split's saved probabilities, pooled, resumable, with one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rmi_cli.config import CRFConfig, DataConfig, SyntheticConfig
from rmi_cli.crf import CRFCache, probabilities_from_labels, run_crf
from rmi_cli.crf.per_image import CRFWorker, confusion_matrix
from rmi_cli.errors import DataError, DependencyMissing, Interrupted
from rmi_cli.iou import confusion_counts, mean_iou

pytest.importorskip("pydensecrf.densecrf")

PARAMS = CRFConfig()  # iterations 1, 5, 10

SYNTHETIC = DataConfig(
    name="synthetic", synthetic=SyntheticConfig(height=48, width=64, val_images=4, seed=7)
)


def write_probs(folder: Path, data_cfg: DataConfig, split: str) -> Path:
    """Noisy fp16 probabilities for every image of a split, laid out as `rmi eval` saves them."""
    from rmi_cli.data import build_dataset

    dataset = build_dataset(data_cfg, split)
    folder.mkdir(parents=True)
    names = []
    for index in range(len(dataset)):
        sample = dataset[index]
        label = np.asarray(sample.label)
        probs = probabilities_from_labels(
            label, dataset.info.num_classes, margin=1.0, noise=1.5, seed=index
        )
        np.save(folder / f"{sample.name}.npy", probs.astype(np.float16))
        names.append(sample.name)
    index_file = {
        "names": names,
        "class_names": list(dataset.info.class_names),
        "dataset": dataset.info.name,
        "split": split,
    }
    (folder / "index.json").write_text(json.dumps(index_file))
    return folder


@pytest.fixture(scope="module")
def saved_probs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine probabilities folder; tests copy it before writing into it."""
    return write_probs(tmp_path_factory.mktemp("pristine") / "probs", SYNTHETIC, "val")


@pytest.fixture
def probs_dir(saved_probs: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_probs, tmp_path / "probs"))


def crf(probs_dir: Path, **options: object) -> list:
    options = {"workers": 1, "progress": False, **options}
    return run_crf(data_cfg=SYNTHETIC, split="val", probs_dir=probs_dir, params=PARAMS, **options)


def cached_labels(probs_dir: Path) -> dict[str, dict[int, np.ndarray]]:
    cache = CRFCache.for_run(probs_dir, data_cfg=SYNTHETIC, split="val", params=PARAMS)
    names = json.loads((probs_dir / "index.json").read_text())["names"]
    return {name: cache.labels(name) for name in names}


def network_miou(probs_dir: Path) -> float:
    """mIoU of the probabilities' own argmax (what the CRF should improve on)."""
    from rmi_cli.data import build_dataset
    from rmi_cli.metrics import scores_from_confusion

    dataset = build_dataset(SYNTHETIC, "val")
    total = 0
    for sample in dataset:
        prediction = np.load(probs_dir / f"{sample.name}.npy").argmax(axis=0)
        total = total + confusion_matrix(np.asarray(sample.label), prediction, 10)
    return scores_from_confusion(total, dataset.info.class_names).miou


def test_one_result_per_count_with_scores_and_times(probs_dir: Path) -> None:
    results = crf(probs_dir)
    assert [r.iterations for r in results] == [1, 5, 10]
    assert network_miou(probs_dir) < results[1].scores.miou
    for result in results:
        assert result.split == "val" and result.num_images == 4 and result.workers == 1
        assert 0 < result.crf_median_ms <= result.crf_p90_ms
        assert result.params == PARAMS.model_dump(exclude={"iters"})
        assert result.fingerprint.device == "cpu"
        evidence = result.image_counts
        assert evidence is not None and evidence.counts.shape == (4, 4, 10)
        summed = evidence.counts.sum(axis=0)
        np.testing.assert_array_equal(
            summed[:2], confusion_counts(np.array(result.scores.confusion))
        )
        assert result.scores.boundary_miou == pytest.approx(float(mean_iou(*summed[2:])))
    assert results[0].crf_median_ms < results[2].crf_median_ms


def test_a_pool_gives_the_same_labels_as_one_process(probs_dir: Path, tmp_path: Path) -> None:
    pooled_dir = Path(shutil.copytree(probs_dir, tmp_path / "pooled"))
    single, pooled = crf(probs_dir), crf(pooled_dir, workers=2)
    assert [r.scores for r in single] == [r.scores for r in pooled]
    assert pooled[0].workers == 2 and all(r.crf_median_ms > 0 for r in pooled)
    ours, theirs = cached_labels(probs_dir), cached_labels(pooled_dir)
    for name, labels in ours.items():
        for count in (1, 5, 10):
            np.testing.assert_array_equal(labels[count], theirs[name][count])


def test_a_stopped_run_keeps_finished_images_and_resumes(
    probs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = iter(range(100))
    with pytest.raises(Interrupted) as stopped:
        crf(probs_dir, should_stop=lambda: next(polls) >= 2)
    message = str(stopped.value)
    assert "stopped after 2 of 4 images" in message and "run the same command again" in message
    assert "\n" not in message
    computed: list[int] = []
    original = CRFWorker.__call__

    def counting(self: CRFWorker, index: int) -> object:
        computed.append(index)
        return original(self, index)

    monkeypatch.setattr(CRFWorker, "__call__", counting)
    resumed = crf(probs_dir)
    assert computed == [2, 3]
    fresh = crf(Path(shutil.copytree(probs_dir, tmp_path / "fresh", ignore=_no_cache)))
    assert [r.scores for r in resumed] == [r.scores for r in fresh]
    assert crf(probs_dir) == resumed and computed == [2, 3, 0, 1, 2, 3]


def _no_cache(folder: str, names: list[str]) -> list[str]:
    return ["crf-cache"] if "crf-cache" in names else []


def test_images_named_with_a_subfolder_are_cached_flat(
    tmp_path: Path, noisy_scene: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """A split list may name `city/a`: the CRF cache wrote `.city/a.*.tmp` into a folder that
    did not exist, and every attempt of the job failed with FileNotFoundError."""
    from PIL import Image

    from rmi_cli.run_folder import probs_file

    root = tmp_path / "mine"
    probs, image, label = noisy_scene
    for stem in ("city/a", "city/b"):
        for folder, pixels in (("images", image), ("labels", label)):
            (root / folder / stem).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / folder / f"{stem}.png")
    (root / "classes.txt").write_text("a\nb\nc\nd\n")
    (root / "val.txt").write_text("city/a\ncity/b\n")
    data_cfg = DataConfig(name="folder", root=str(root))
    probs_dir = tmp_path / "probs"
    probs_dir.mkdir()
    for stem in ("city/a", "city/b"):
        np.save(probs_file(probs_dir, stem), probs.astype(np.float16))
    index = {"names": ["city/a", "city/b"], "class_names": list("abcd"), "dataset": "folder"}
    (probs_dir / "index.json").write_text(json.dumps(index | {"split": "val"}))

    results = run_crf(data_cfg=data_cfg, split="val", probs_dir=probs_dir, params=PARAMS,
                      workers=1, progress=False)  # fmt: skip
    assert [r.num_images for r in results] == [2, 2, 2]
    cache = CRFCache.for_run(probs_dir, data_cfg=data_cfg, split="val", params=PARAMS)
    assert sorted(p.name for p in cache.folder.iterdir()) == ["city%2Fa.npz", "city%2Fb.npz"]
    assert set(cache.labels("city/a")) == {1, 5, 10}


def test_missing_index_says_how_to_get_probabilities(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        crf(tmp_path)
    message = str(raised.value)
    assert f"{tmp_path / 'index.json'} not found" in message and "rmi eval" in message
    assert "\n" not in message


def test_probabilities_of_another_size_name_the_image_and_sizes(probs_dir: Path) -> None:
    name = json.loads((probs_dir / "index.json").read_text())["names"][1]
    np.save(probs_dir / f"{name}.npy", np.full((10, 40, 64), 0.1, dtype=np.float16))
    with pytest.raises(DataError) as raised:
        crf(probs_dir, workers=2)  # raised in a pool process, reported as itself
    message = str(raised.value)
    assert f"{name}.npy are 40x64 (HxW) but image {name} is 48x64" in message
    assert "\n" not in message


def test_class_counts_that_differ_are_one_line_errors(probs_dir: Path) -> None:
    index = json.loads((probs_dir / "index.json").read_text())
    (probs_dir / "index.json").write_text(json.dumps({**index, "class_names": ["a", "b"]}))
    with pytest.raises(DataError, match=r"have 2 classes but split 'val' of dataset 'synthetic'"):
        crf(probs_dir)
    (probs_dir / "index.json").write_text(json.dumps(index))
    np.save(probs_dir / f"{index['names'][0]}.npy", np.full((11, 48, 64), 0.1, dtype=np.float16))
    with pytest.raises(DataError, match=r"have 11 classes but the dataset has 10"):
        crf(probs_dir)


def test_missing_pydensecrf_stops_before_any_work(
    probs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(DependencyMissing, match=r"pip install pydensecrf2"):
        crf(probs_dir)
    assert not (probs_dir / "crf-cache").exists()
