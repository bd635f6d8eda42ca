"""``train.storage`` resolution (no Ray cluster): local default, shared folder, object-store URI."""

from __future__ import annotations

import pytest

from wsfcn.errors import InputError
from wsfcn.integrations.ray_cluster import check_data_visible, remove_storage, storage_location
from wsfcn.integrations.ray_train import run_storage
from wsfcn.params_yaml import load_params


def test_default_storage_is_out_dir_ray_and_local_paths_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = load_params(None, {"train.out_dir": "outputs/train"})
    assert params.train.storage == "" and run_storage(params) == "outputs/train/ray"
    path, filesystem = storage_location(run_storage(params), "default")
    assert filesystem is None and path == str(tmp_path / "outputs" / "train" / "ray" / "default")
    shared = load_params(None, {"train.storage": "/mnt/shared/ray"})
    assert run_storage(shared) == "/mnt/shared/ray"


def test_object_store_uri_keeps_its_endpoint_and_joins_parts(monkeypatch):
    import pyarrow.fs

    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    uri = "s3://bucket/prefix?endpoint_override=http://127.0.0.1:9&region=us-east-1"
    path, filesystem = storage_location(uri, "run")
    assert path == "bucket/prefix/run" and isinstance(filesystem, pyarrow.fs.S3FileSystem)


def test_remove_storage_deletes_a_local_run_folder(tmp_path):
    (tmp_path / "ray" / "run" / "checkpoint_1").mkdir(parents=True)
    remove_storage(str(tmp_path / "ray"), "run")
    remove_storage(str(tmp_path / "ray"), "absent")
    assert (tmp_path / "ray").is_dir() and not (tmp_path / "ray" / "run").exists()


def test_a_node_without_the_prepared_data_gets_a_clear_message(tmp_path):
    with pytest.raises(InputError, match=r"cannot see the prepared data .*index\.json.*dvc pull"):
        check_data_visible(tmp_path / "data", "synthetic")
    (tmp_path / "data" / "synthetic").mkdir(parents=True)
    (tmp_path / "data" / "synthetic" / "index.json").write_text("{}")
    check_data_visible(tmp_path / "data", "synthetic")


class FakeCheckpoint:
    """A Ray checkpoint stand-in: ``to_directory`` copies one ``checkpoint.pt`` (counting calls)."""

    def __init__(self, source):
        self.source, self.calls = source, 0

    def to_directory(self, folder: str) -> str:
        import shutil
        from pathlib import Path

        self.calls += 1
        shutil.copy(self.source, Path(folder) / "checkpoint.pt")
        return folder


def test_fetch_last_brings_the_ray_checkpoint_to_a_driver_without_last_pt(tmp_path):
    from helpers.tiny import prepare_tiny_data, training_params

    from wsfcn.checkpoints import load_checkpoint
    from wsfcn.code_version import training_code_fingerprint
    from wsfcn.integrations.ray_train import fetch_last
    from wsfcn.params_io import fingerprint
    from wsfcn.train.loop import fit

    params = training_params(prepare_tiny_data(tmp_path), tmp_path / "node", train__epochs=1)
    fit(params, report=lambda metrics: None, quiet=True)  # rank 0's node: node/last.pt after 1 epoch
    ray_checkpoint = FakeCheckpoint(tmp_path / "node" / "last.pt")
    last = tmp_path / "driver" / "last.pt"
    assert fetch_last(ray_checkpoint, last, fingerprint(params), code=training_code_fingerprint())
    state = load_checkpoint(last)
    assert state["epoch"] == 1
    assert (last.parent / "best.pt").is_file() == (state["metrics"]["best_epoch"] in (None, 1))
    assert not fetch_last(
        ray_checkpoint, last, fingerprint(params), code=training_code_fingerprint()
    )  # not newer than the local one
    assert not fetch_last(
        ray_checkpoint, last, fingerprint(params), code=training_code_fingerprint(), epochs=1
    )
    assert ray_checkpoint.calls == 2  # the last call downloaded nothing
    code = training_code_fingerprint()
    assert not fetch_last(ray_checkpoint, tmp_path / "other" / "last.pt", "another-fingerprint", code=code)


def test_fetch_last_brings_rank0s_best_pt_of_an_earlier_epoch(tmp_path):
    """The Ray checkpoint carries rank 0's best.pt too: a driver on another node gets the selected epoch."""
    import shutil

    from torch import nn

    from wsfcn.checkpoints import load_checkpoint, save_checkpoint
    from wsfcn.code_version import training_code_fingerprint
    from wsfcn.integrations.ray_train import BEST_NAME, CKPT_NAME, fetch_last
    from wsfcn.params_io import fingerprint
    from wsfcn.params_yaml import load_params

    params = load_params(None)
    node, code = tmp_path / "node", training_code_fingerprint()
    save_checkpoint(node / "best.pt", model=nn.Linear(2, 2), epoch=2, params=params, num_classes=9,
                    code_fingerprint=code)  # fmt: skip
    save_checkpoint(node / "last.pt", model=nn.Linear(2, 2), epoch=4, params=params, num_classes=9,
                    metrics={"best_epoch": 2, "best_score": 0.5}, code_fingerprint=code)  # fmt: skip

    class RayCheckpoint:
        def to_directory(self, folder: str) -> str:
            shutil.copy(node / "last.pt", tmp_path / "x")
            shutil.move(tmp_path / "x", f"{folder}/{CKPT_NAME}")
            shutil.copy(node / "best.pt", f"{folder}/{BEST_NAME}")
            return folder

    last = tmp_path / "driver" / "last.pt"
    assert fetch_last(RayCheckpoint(), last, fingerprint(params), code=training_code_fingerprint())
    assert load_checkpoint(last)["epoch"] == 4
    assert load_checkpoint(last.parent / "best.pt")["epoch"] == 2  # the selected epoch, not the last
