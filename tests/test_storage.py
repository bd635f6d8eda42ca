"""``train.storage`` resolution (no Ray cluster): local default, shared folder, object-store URI."""

from __future__ import annotations

import pytest

from wsfcn.config import load_params
from wsfcn.errors import InputError
from wsfcn.integrations.ray_cluster import check_data_visible, remove_storage, storage_location
from wsfcn.integrations.ray_train import run_storage


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
