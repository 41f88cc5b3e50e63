"""File-backed datasets (VOC, folder, CamVid layout) on tiny trees, and the validation errors."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from data_trees import folder_cfg, stripes, write_image, write_label
from PIL import Image

from rmi_cli import config
from rmi_cli.config import DataConfig
from rmi_cli.data import DATASETS, build_dataset, build_train_stream, iter_eval
from rmi_cli.data.gpu_cache import DeviceCache
from rmi_cli.data.worker_errors import worker_message
from rmi_cli.errors import DataError


def test_registry_keys_are_the_config_names() -> None:
    assert tuple(DATASETS) == typing.get_args(config.DatasetName)


# --- VOC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("root_part", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_accepts_any_of_three_roots(voc_tree: Path, root_part: str) -> None:
    cfg = DataConfig(name="voc2012", root=str(voc_tree / root_part))
    train = build_dataset(cfg, "train")
    assert [train[i].name for i in range(len(train))] == ["a", "b"]
    assert len(build_dataset(cfg, "trainval")) == 3
    assert train.info.num_classes == 21 and train.info.class_names[15] == "person"


def test_voc_reads_palette_indices_not_colours(voc_tree: Path) -> None:
    sample = build_dataset(DataConfig(name="voc2012", root=str(voc_tree)), "val")[0]
    assert sample.image.shape == (3, 12, 16) and sample.image.dtype == torch.uint8
    assert sample.label.dtype == torch.uint8
    assert torch.equal(sample.label, torch.from_numpy(stripes(classes=5)))


def test_voc_trainaug_uses_sbd_labels_and_list_in_parent(voc_tree: Path) -> None:
    sbd = voc_tree / "sbd" / "SegmentationClassAug"
    cfg = DataConfig(name="voc2012", root=str(voc_tree), sbd_root=str(sbd))
    aug = build_dataset(cfg, "trainaug")
    assert [aug[i].name for i in range(len(aug))] == ["a", "b", "d"]
    assert aug[2].label.max() == 255


def test_voc_trainaug_needs_sbd_root(voc_tree: Path) -> None:
    with pytest.raises(DataError, match=r"split 'trainaug' needs data\.sbd_root"):
        build_dataset(DataConfig(name="voc2012", root=str(voc_tree)), "trainaug")


def test_voc_missing_jpegimages(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no JPEGImages folder in"):
        build_dataset(DataConfig(name="voc2012", root=str(tmp_path)), "train")


def test_missing_list_names_it(voc_tree: Path) -> None:
    (voc_tree / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(DataError, match=r"VOC split list .*Segmentation/val\.txt not found"):
        build_dataset(DataConfig(name="voc2012", root=str(voc_tree)), "val")


# --- folder ------------------------------------------------------------------------------------


def test_folder_dataset(folder_tree: Path) -> None:
    train = build_dataset(folder_cfg(folder_tree), "train")
    assert train.info.class_names == ("ground", "tall grass", "sky")
    assert train.info.splits == ("train", "val")
    assert [train[i].name for i in range(2)] == ["x", "y"]  # x is a PNG, y a JPEG
    assert torch.equal(train[0].label, torch.from_numpy(stripes()))
    pixels = np.array(Image.open(folder_tree / "images" / "x.png"))
    assert torch.equal(train[0].image, torch.from_numpy(pixels).permute(2, 0, 1))


# --- CamVid layout (fake tree; the real copy is in test_data_camvid.py) -----------------------


def test_camvid_reads_upstream_absolute_paths(tmp_path: Path) -> None:
    write_image(tmp_path / "test" / "q.png")
    label = np.full((12, 16), 11, np.uint8)
    label[:, :4] = 10
    write_label(tmp_path / "testannot" / "q.png", label)
    (tmp_path / "test.txt").write_text("/SegNet/CamVid/test/q.png /SegNet/CamVid/testannot/q.png\n")
    sample = build_dataset(DataConfig(name="camvid", root=str(tmp_path)), "test")[0]
    assert sample.name == "q"
    assert sample.label[:, :4].eq(10).all() and sample.label[:, 4:].eq(255).all()


# --- validation errors: one line, naming the file -----------------------------------------------


def test_missing_root_names_expanded_path_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMI_TEST_DATA_HOME", "/nonexistent/place")
    cfg = DataConfig(name="camvid", root="${RMI_TEST_DATA_HOME}/camvid")
    with pytest.raises(DataError) as caught:
        build_dataset(cfg, "train")
    message = str(caught.value)
    assert "/nonexistent/place/camvid does not exist" in message
    assert "${RMI_TEST_DATA_HOME}/camvid" in message and "environment" in message
    assert "\n" not in message


def test_unknown_split_lists_known_ones(folder_tree: Path) -> None:
    with pytest.raises(DataError, match="has no split 'test'; known splits: train, val"):
        build_dataset(folder_cfg(folder_tree), "test")
    with pytest.raises(DataError, match="known splits: train, val, test, trainval"):
        build_dataset(DataConfig(name="synthetic"), "trainaug")


def test_listed_file_missing(folder_tree: Path) -> None:
    (folder_tree / "labels" / "y.png").unlink()
    with pytest.raises(DataError, match=r"labels/y\.png \(listed in .*train\.txt\) does not exist"):
        build_dataset(folder_cfg(folder_tree), "train")


def test_size_mismatch_names_both_files(folder_tree: Path) -> None:
    write_label(folder_tree / "labels" / "z.png", stripes(height=10))
    dataset = build_dataset(folder_cfg(folder_tree), "val")
    with pytest.raises(
        DataError, match=r"label .*z\.png is 16x10 \(WxH\) but image .*z\.png is 16x12"
    ):
        dataset[0]


def test_label_values_out_of_range_are_named(folder_tree: Path) -> None:
    label = stripes()
    label[3, 3], label[4, 4] = 7, 200
    write_label(folder_tree / "labels" / "z.png", label)
    with pytest.raises(DataError, match=r"z\.png holds values \[7, 200\] outside \[0, 3\)"):
        build_dataset(folder_cfg(folder_tree), "val")[0]


def test_rgb_label_is_refused(folder_tree: Path) -> None:
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(folder_tree / "labels" / "z.png")
    with pytest.raises(DataError, match=r"z\.png has image mode RGB; expected one channel"):
        build_dataset(folder_cfg(folder_tree), "val")[0]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_names_file(folder_tree: Path, damage: str) -> None:
    path = folder_tree / "images" / "y.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not an image at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataError, match=r"image .*y\.jpg cannot be decoded"):
        build_dataset(folder_cfg(folder_tree), "train")[1]


def test_missing_class_list(folder_tree: Path) -> None:
    (folder_tree / "classes.txt").unlink()
    with pytest.raises(DataError, match=r"class-name list .*classes\.txt not found: a folder"):
        build_dataset(folder_cfg(folder_tree), "train")


def test_empty_class_list(folder_tree: Path) -> None:
    (folder_tree / "classes.txt").write_text("\n")
    with pytest.raises(DataError, match=r"class-name list .*classes\.txt is empty"):
        build_dataset(folder_cfg(folder_tree), "train")


@pytest.mark.parametrize("path", ["train stream", "evaluation", "device cache"])
def test_a_worker_process_error_stays_one_line(folder_tree: Path, path: str) -> None:
    """With loader workers the error is raised in another process; PyTorch re-raises it with the
    worker's traceback as its message, and the user must still see only the line."""
    label = stripes()
    label[3, 3] = 7
    for stem in ("x", "y", "z"):
        write_label(folder_tree / "labels" / f"{stem}.png", label)
    cfg = folder_cfg(folder_tree, workers=1, crop_size=8, gpu_cache="off")
    dataset = build_dataset(cfg, "train")
    with pytest.raises(DataError) as caught:
        if path == "train stream":
            next(build_train_stream(dataset, cfg, batch_size=2, seed=0))
        elif path == "evaluation":
            next(iter_eval(dataset, cfg))
        else:
            DeviceCache.build(dataset, torch.device("cpu"), workers=1)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert re.fullmatch(r"label .*[xy]\.png holds values \[7\] outside \[0, 3\) .*", message)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_error_that_is_not_from_a_worker_is_left_alone() -> None:
    assert worker_message(DataError("label a.png holds values [7]")) is None
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
        'last):\n  File "x.py", line 1, in f\nrmi_cli.errors.DataError: label a.png: bad'
    )
    assert worker_message(wrapped) == "label a.png: bad"


@pytest.mark.parametrize(
    "text",
    [
        "[ground, tall grass, sky]\n",
        "- ground\n- tall grass\n- sky\n",
        "names: [ground, tall grass, sky]\n",
        "{2: sky, 0: ground, 1: tall grass}\n",
    ],
)
def test_class_names_from_yaml(folder_tree: Path, text: str) -> None:
    (folder_tree / "classes.txt").unlink()
    (folder_tree / "classes.yaml").write_text(text)
    dataset = build_dataset(folder_cfg(folder_tree), "train")
    assert dataset.info.class_names == ("ground", "tall grass", "sky")
    assert dataset.info.splits == ("train", "val")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[ground, [x]]\n", r"expected a list of class names .*; found list"),
        ("{names: [a], other: 1}\n", r"expected a list of class names .*; found dict"),
        ("{0: a, 2: b}\n", r"the labels \[0, 2\] are not 0\.\.1; number the classes from 0"),
        ("[a, b, a]\n", r"names a class twice \('a' is labels 0, 2\)"),
        ("[a, '', b]\n", r"class 1 has an empty name"),
        ("&x [*x]\n", r"has the alias \*x inside the node &x"),
        ("[" * 100 + "]" * 100 + "\n", r"nests more than 64 levels"),
        ("[a, b\n", r"cannot be read \(.*\); expected a list of class names"),
        ("", r"is empty"),
    ],
)
def test_bad_yaml_class_names(folder_tree: Path, text: str, error: str) -> None:
    (folder_tree / "classes.txt").unlink()
    (folder_tree / "classes.yaml").write_text(text)
    with pytest.raises(DataError, match=rf"classes\.yaml.*{error}"):
        build_dataset(folder_cfg(folder_tree), "train")


def test_duplicate_class_names_in_classes_txt_are_refused(folder_tree: Path) -> None:
    """classes.txt went unchecked while classes.yaml refused duplicates; the per-class table
    then merged the two classes' columns (a real IoU of 30.7 showed as 0.0)."""
    (folder_tree / "classes.txt").write_text("ground\nsky\nsky\n")
    with pytest.raises(
        DataError, match=r"classes\.txt names a class twice \('sky' is labels 1, 2\)"
    ):
        build_dataset(folder_cfg(folder_tree), "train")


def test_an_empty_split_list_is_refused_when_the_dataset_opens(folder_tree: Path) -> None:
    (folder_tree / "val.txt").write_text("# nothing yet\n")
    with pytest.raises(DataError, match=r"split list .*val\.txt lists no images"):
        build_dataset(folder_cfg(folder_tree), "val")


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_stems_in_subfolders_find_their_images(folder_tree: Path, suffix: str) -> None:
    write_image(folder_tree / "images" / "city" / f"w.{suffix}", seed=7)
    write_label(folder_tree / "labels" / "city" / "w.png", stripes())
    (folder_tree / "val.txt").write_text("city/w\n")
    (sample,) = build_dataset(folder_cfg(folder_tree), "val")
    assert sample.name == "city/w" and tuple(sample.image.shape) == (3, 12, 16)


def test_16_bit_grey_images_are_scaled_to_8_bits(folder_tree: Path) -> None:
    """Pillow's convert("RGB") clips 16-bit grey to 255: the image trained as plain white."""
    wide = (np.arange(12 * 16, dtype=np.uint64).reshape(12, 16) * 343).astype(np.uint16)
    wide[0, 0], wide[0, 1] = 0, 65535
    Image.fromarray(wide).save(folder_tree / "images" / "x.png")
    assert Image.open(folder_tree / "images" / "x.png").mode == "I;16"
    image = build_dataset(folder_cfg(folder_tree), "train")[0].image  # (3, H, W) uint8
    expected = np.floor(wide.astype(np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    for channel in image:
        assert np.array_equal(channel.numpy(), expected)
    assert image.min() == 0 and image.max() == 255


def test_float_images_are_refused(folder_tree: Path) -> None:
    Image.fromarray(np.ones((12, 16), np.float32)).save(folder_tree / "images" / "w.tif")
    write_label(folder_tree / "labels" / "w.png", stripes())
    (folder_tree / "val.txt").write_text("w\n")
    with pytest.raises(DataError, match=r"w\.tif holds floating-point pixels \(mode F\)"):
        build_dataset(folder_cfg(folder_tree), "val")[0]


def test_two_class_name_lists_are_refused(folder_tree: Path) -> None:
    (folder_tree / "classes.yaml").write_text("[a, b, c]\n")
    with pytest.raises(DataError, match=r"has both classes\.yaml and classes\.txt: keep one"):
        build_dataset(folder_cfg(folder_tree), "train")
