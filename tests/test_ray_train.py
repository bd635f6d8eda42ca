"""One 2-worker Ray Train run on CPU (gloo DDP): a worker dies in epoch 2 and the group restarts
from the epoch-1 checkpoint (FailureConfig); rank 0 logs to MLflow from inside the worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers.tiny import prepare_tiny_data, training_params

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def crash_once_loop(config: dict) -> None:
    """train_loop_per_worker, except that rank 1 exits hard at the start of epoch 2 the first time."""
    import ray.train

    import wsfcn.train.loop
    from wsfcn.integrations.ray_train import train_loop_per_worker

    marker = Path(config["crash_marker"])
    real = wsfcn.train.loop.train_one_epoch

    def maybe_crash(*args, **kwargs):
        if kwargs["epoch"] == 2 and ray.train.get_context().get_world_rank() == 1 and not marker.exists():
            marker.touch()
            os._exit(1)
        return real(*args, **kwargs)

    wsfcn.train.loop.train_one_epoch = maybe_crash
    train_loop_per_worker(config)


def test_two_workers_survive_a_dead_worker_and_log_to_mlflow(tmp_path):
    import ray
    import ray.cloudpickle
    from mlflow.tracking import MlflowClient

    from wsfcn.checkpoints import load_checkpoint
    from wsfcn.integrations import ray_train
    from wsfcn.integrations.mlflow_log import start_run
    from wsfcn.params_io import absolute_paths
    from wsfcn.train.loop import FitResult, fit

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    data = prepare_tiny_data(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    params = training_params(
        data,
        tmp_path / "out",
        train__num_workers=2,
        train__epochs=3,
        train__max_failures=1,
        tracking__uri=uri,
        tracking__enabled=True,
        train__run_name="ray2",
    )
    run_id = start_run(params, "ray_test", "ray2")
    marker = tmp_path / "crashed"

    def loop(config):
        crash_once_loop({**config, "crash_marker": str(marker)})

    try:
        ray_train.launch_torch_trainer(
            absolute_paths(params), fit=fit, fresh=True, mlflow_run=(uri, run_id), quiet=True, loop=loop
        )
        result = FitResult.from_checkpoint(tmp_path / "out" / "last.pt")
    finally:
        ray.shutdown()
    assert marker.exists()  # the worker did die
    assert result.epochs == 3 and [e["epoch"] for e in result.history] == [1, 2, 3]
    state = load_checkpoint(tmp_path / "out" / "last.pt")
    assert state["metrics"]["resumed_from"] == 1  # restarted from the epoch-1 checkpoint
    assert list((tmp_path / "out" / "ray" / "ray2").glob("checkpoint_*"))
    history = MlflowClient(uri).get_metric_history(run_id, "loss")
    assert sorted({m.step for m in history}) == [1, 2, 3]  # logged by rank 0 inside the workers


def test_a_restarted_worker_restores_the_best_pt_of_its_ray_checkpoint(tmp_path):
    from wsfcn.integrations.ray_train import restore_best

    folder, out = tmp_path / "ray_checkpoint", tmp_path / "node" / "out"
    folder.mkdir()
    (folder / "best.pt").write_bytes(b"epoch 2")
    assert restore_best(folder, out)  # a fresh node: nothing of the run on its disk
    assert (out / "best.pt").read_bytes() == b"epoch 2"
    (out / "best.pt").write_bytes(b"epoch 3")
    (out / "last.pt").write_bytes(b"epoch 3")
    assert not restore_best(folder, out)  # the node holds the run's own newer state: kept
    assert (out / "best.pt").read_bytes() == b"epoch 3"
    (out / "last.pt").unlink()
    assert restore_best(folder, out)  # best.pt without its last.pt: the checkpoint's is taken
    assert (out / "best.pt").read_bytes() == b"epoch 2"
    assert not restore_best(tmp_path / "empty", out)  # a checkpoint without best.pt (PRETRAIN epochs)


def test_each_worker_resumes_from_its_own_download_of_a_checkpoint_on_shared_storage(tmp_path):
    """Two workers of one machine resuming from ``s3://…``: the later one must not download again into
    the folder the first one is reading (Ray's ``as_directory`` does, in place: a mapped reader dies)."""
    import pyarrow.fs
    import torch
    from ray.train import Checkpoint

    from wsfcn.integrations.ray_train import CKPT_NAME, private_directory

    store = tmp_path / "bucket" / "checkpoint_000001"
    store.mkdir(parents=True)
    torch.save({"w": torch.arange(1000.0)}, store / CKPT_NAME)
    remote = pyarrow.fs.SubTreeFileSystem(str(tmp_path / "bucket"), pyarrow.fs.LocalFileSystem())
    checkpoint = Checkpoint("checkpoint_000001", filesystem=remote)  # not a LocalFileSystem: downloaded
    with private_directory(checkpoint) as first:
        state = torch.load(first / CKPT_NAME, mmap=True, weights_only=True)
        before = os.stat(first / CKPT_NAME)
        with private_directory(checkpoint) as second:  # the machine's other worker, arriving later
            assert second != first
            assert (second / CKPT_NAME).read_bytes() == (store / CKPT_NAME).read_bytes()
        after = os.stat(first / CKPT_NAME)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # untouched
        assert torch.equal(state["w"], torch.arange(1000.0))
        assert not second.exists()  # each download is removed when its reader is done
    assert not first.exists()
    with private_directory(Checkpoint.from_directory(str(store))) as folder:
        assert folder == store  # a checkpoint on a local filesystem is read where it lies
    assert (store / CKPT_NAME).is_file()
