"""Foreground commands name one run: they act on it whatever state it is in, or say why not.

`rmi train` on a run that failed printed nothing and exited 0 (the run stayed failed), even
with the cause fixed by a setting outside the configuration hash (train.device); `rmi crf`
after its cause was fixed did the same. Naming the run is asking for it: it runs again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from reliability_kit import manifest, remove_run_folders, rmi, runs_table, write_folder_dataset

pytestmark = pytest.mark.slow

RUN = "{loss: {name: ce}, data: {name: folder, root: data, crop_size: 16}}"


def test_train_and_crf_run_again_what_failed_once_the_cause_is_fixed(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (train.device=cuda must fail)")
    write_folder_dataset(tmp_path / "data")
    (tmp_path / "m.yaml").write_text(manifest({"ce": RUN}))
    train = ("train", "m.yaml", "-e", "tiny", "--db", "rmi.db")
    crf = ("crf", "--run", "tiny/ce", "--iters", "1", "--workers", "1", "--db", "rmi.db")
    image = tmp_path / "data" / "images" / "c.png"  # the only image of the val split
    try:
        failed = rmi(*train, "--set", "train.device=cuda", cwd=tmp_path)
        assert failed.code == 1, failed
        fixed = rmi(*train, "--set", "train.device=cpu", cwd=tmp_path)
        assert fixed.code == 0, fixed
        assert (
            "tiny/ce failed before (train.device is 'cuda' but CUDA is not available" in fixed.err
        )
        assert "; training it again" in fixed.err
        assert runs_table(tmp_path / "rmi.db")["tiny/ce"]["status"] == "done"

        shutil.move(image, tmp_path / "c.png")
        image.write_bytes(b"\x89PNG\r\n\x1a\n damaged")
        broken = rmi(*crf, cwd=tmp_path)
        assert broken.code == 1, broken
        shutil.move(tmp_path / "c.png", image)
        again = rmi(*crf, cwd=tmp_path)
    finally:
        remove_run_folders(tmp_path)
    assert again.code == 0, again
    assert "tiny/ce+crf failed before; running it again" in again.err
    assert "Traceback" not in again.err + broken.err + fixed.err + failed.err
    step = runs_table(tmp_path / "rmi.db")["tiny/ce+crf"]
    assert (step["status"], step["attempts"], step["error"]) == ("done", 1, None)
