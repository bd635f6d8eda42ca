"""Ray Train launcher (stack §1: Ray 2.60, Train V2): one ``TorchTrainer`` for training and sweeps.

:func:`launch_torch_trainer` runs a training callable (``fit(params, *, report, resume,
resume_from, quiet)``, :func:`wsfcn.train.loop.fit`) on ``train.num_workers`` workers: DDP over
gloo on CPUs or NCCL on GPUs (used when the cluster has them and ``train.device`` is not ``cpu``).
Each worker sets its torch threads from the CPUs Ray granted it on its own node. Kill safety: rank
0 writes ``<out_dir>/last.pt`` and hands a copy to Ray every epoch; ``FailureConfig`` restarts a
dead worker group from the newest of the two, and re-running the same ``train.run_name`` resumes
(Train V2 keys the run by ``RunConfig(name, storage_path)``). Ray's checkpoints live on
``train.storage`` (default ``<out_dir>/ray``; a shared folder or ``s3://…`` on a cluster), so a
worker group restarted on another node resumes from there, and the driver fetches the newest one
when rank 0's ``last.pt`` was written on another node (:func:`fetch_last`). The MLflow and Ray
reporting happen inside the workers; only rank 0 logs to MLflow. Inside a Ray Tune trial
(``inside_tune``) the epoch reports also reach Tune and the workers get explicit ``resources``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wsfcn.checkpoints import link_or_copy
from wsfcn.config import Params
from wsfcn.integrations.ray_cluster import (
    check_data_visible,
    granted_cpus,
    machine_cores,
    remove_storage,
    start_ray,
    storage_location,
)
from wsfcn.params_io import params_from_dict, params_to_dict
from wsfcn.train.loop import NonFiniteLossError, repair_best
from wsfcn.units import Report

Fit = Callable[..., Any]
CKPT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


def chain(*reports: Report | None) -> Report:
    """One report callable that calls each of ``reports`` in turn (None entries skipped)."""
    active = [r for r in reports if r is not None]

    def report(metrics: dict) -> None:
        for r in active:
            r(dict(metrics))

    return report


class RayReporter:
    """Per-epoch ``ray.train.report`` on every rank; rank 0 attaches ``last.pt`` as the Ray checkpoint."""

    def __call__(self, metrics: dict[str, Any]) -> None:
        import ray.train

        if "epoch" not in metrics:  # the one-off n_params report: MLflow only
            return
        path = metrics.pop("checkpoint", None)
        metrics.pop("figure", None)
        if not path:
            ray.train.report(metrics)
            return
        folder = tempfile.mkdtemp(prefix="wsfcn-ckpt-")
        try:
            link_or_copy(path, Path(folder) / CKPT_NAME)
            best = Path(path).parent / BEST_NAME
            if best.is_file():  # the selected epoch travels too, for a driver on another node
                link_or_copy(best, Path(folder) / BEST_NAME)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def restore_best(folder: Path, out_dir: Path) -> bool:
    """Before resuming from the Ray checkpoint in ``folder``: put the ``best.pt`` rank 0 attached to it
    into ``out_dir`` unless ``out_dir`` holds the run's own ``last.pt`` and ``best.pt`` (a worker group
    restarted on another node finds neither there). The selected epoch (method §6.1) then survives the
    move, and the next checkpoint carries it on. True if it was put in place."""
    best, target = folder / BEST_NAME, out_dir / BEST_NAME
    if not best.is_file() or (target.is_file() and (out_dir / "last.pt").is_file()):
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, target.with_suffix(".restored"))
    os.replace(target.with_suffix(".restored"), target)
    return True


@contextlib.contextmanager
def private_directory(checkpoint: Any) -> Iterator[Path]:
    """A Ray checkpoint as a folder only this process reads: the checkpoint's own folder on a local
    filesystem, else a fresh download removed on exit.

    Not ``Checkpoint.as_directory()``: on shared storage (``s3://…``) it hands every process of the
    machine one temporary folder and downloads into it again when a process arrives after the first
    download ended, rewriting the files in place while another process reads them (a resume maps
    them, so the reader dies of SIGBUS).
    """
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        yield Path(checkpoint.path)
        return
    folder = tempfile.mkdtemp(prefix="wsfcn-resume-")
    try:
        checkpoint.to_directory(folder)
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker body: threads, device, reporters, resume point, then ``config["fit"]``."""
    import ray.train
    import torch

    ctx = ray.train.get_context()
    torch.set_num_threads(granted_cpus(default=max(1, machine_cores() // max(1, ctx.get_local_world_size()))))
    if torch.cuda.is_available():  # Ray assigned this worker a GPU
        import ray.train.torch

        os.environ["LOCAL_RANK"] = str(ray.train.torch.get_device().index)
    params = params_from_dict(config["params"], source="train_loop_config")
    check_data_visible(params.data.root, params.data.name)  # before DDP: a clear error, not a hang
    reporters: list[Report] = []
    if ctx.get_world_rank() == 0 and config.get("mlflow_run"):
        from wsfcn.integrations.mlflow_log import MLflowReporter

        reporters.append(MLflowReporter(*config["mlflow_run"]))
    reporters.append(RayReporter())
    quiet = config["quiet"] or ctx.get_world_rank() != 0
    fit: Fit = config["fit"]
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint is None:
            fit(params, report=chain(*reporters), resume=config["resume"], quiet=quiet)
            return
        with private_directory(checkpoint) as folder:
            if ctx.get_world_rank() == 0:
                restore_best(folder, Path(params.train.out_dir))
            fit(
                params,
                report=chain(*reporters),
                resume=True,
                resume_from=[folder / CKPT_NAME],
                quiet=quiet,
            )
    except NonFiniteLossError as err:  # every rank sees the same all-reduced loss: stop, do not retry
        ray.train.report({"error": str(err)})


def scaling(params: Params, cluster: dict[str, float], resources: dict[str, float] | None = None):
    """Ray's ``ScalingConfig``: ``resources`` per worker if given, else the cluster's CPUs shared out."""
    from ray.train import ScalingConfig

    tp = params.train
    workers = tp.num_workers
    if resources is not None:
        return ScalingConfig(num_workers=workers, use_gpu="GPU" in resources, resources_per_worker=resources)
    device = "cpu" if tp.device == "cpu" else ("cuda" if tp.use_gpu else tp.device)
    cpus, gpus = cluster["CPU"], cluster["GPU"]
    use_gpu = device != "cpu" and gpus >= workers
    if device == "cuda" and not use_gpu:
        raise RuntimeError(f"train.device=cuda but the Ray cluster has {gpus:g} GPUs for {workers} workers")
    per_worker = max(1.0, cpus // workers) if cpus >= workers else cpus / workers
    return ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": per_worker})


def launch_torch_trainer(
    params: Params,
    *,
    fit: Fit,
    fresh: bool,
    mlflow_run: tuple[str, str] | None = None,
    resume: bool = True,
    quiet: bool = False,
    resources: dict[str, float] | None = None,
    inside_tune: bool = False,
    loop: Callable[[dict], None] = train_loop_per_worker,
) -> Any:
    """Run ``fit`` on ``train.num_workers`` Ray Train workers; paths in ``params`` must be absolute.

    ``fresh``: no resumable ``last.pt`` exists, so a stale Ray snapshot of the same run name is
    removed first. ``loop`` is the worker body (tests wrap :func:`train_loop_per_worker`). Returns
    the run's latest Ray checkpoint (on ``train.storage``, see :func:`fetch_last`); raises the
    workers' error, or :class:`NonFiniteLossError` when the loss stopped being finite.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    tp = params.train
    storage = run_storage(params)
    if fresh:
        remove_storage(storage, tp.run_name)
    storage_path, filesystem = storage_location(storage)
    cluster = start_ray(tp.ray_address, quiet=quiet)
    callbacks = []
    if inside_tune:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    config = {"params": params_to_dict(params), "mlflow_run": mlflow_run, "resume": resume, "quiet": quiet}
    trainer = TorchTrainer(
        loop,
        train_loop_config={**config, "fit": fit},
        scaling_config=scaling(params, cluster, resources),
        run_config=RunConfig(
            name=tp.run_name,
            storage_path=storage_path,
            storage_filesystem=filesystem,
            failure_config=FailureConfig(max_failures=tp.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    if (result.metrics or {}).get("error"):
        raise NonFiniteLossError(result.metrics["error"])
    return result.checkpoint


def run_storage(params: Params) -> str:
    """Where Ray Train keeps the run ``train.run_name``: ``train.storage``, else ``<out_dir>/ray``."""
    return params.train.storage or str(Path(params.train.out_dir) / "ray")


def fetch_last(checkpoint: Any, last: str | Path, fingerprint: str, *, code: str, epochs: int = 0) -> bool:
    """Make ``last`` (the driver's ``last.pt``) the newest state of the run; True if it was fetched.
    Only a state of params ``fingerprint`` and training code ``code`` counts.

    Rank 0 wrote ``last.pt`` on its own node; when the driver runs elsewhere that file is missing
    here or older than the run's latest Ray ``checkpoint`` (on ``train.storage``), which is then
    downloaded (``Checkpoint.to_directory``) and put in its place, with the ``best.pt`` rank 0 attached
    to the same Ray checkpoint (method §6.1 selection, possibly an earlier epoch). A local ``last.pt`` that
    already holds ``epochs`` epochs (the one-machine case) is kept without downloading anything.
    """
    from wsfcn.checkpoints import newest_resumable

    if checkpoint is None:
        return False
    last = Path(last)
    here = newest_resumable([last], fingerprint, code=code)
    if here is not None and epochs and here[1]["epoch"] >= epochs:
        return False
    folder = Path(tempfile.mkdtemp(prefix="wsfcn-fetch-"))
    try:
        checkpoint.to_directory(str(folder))
        fetched = newest_resumable([folder / CKPT_NAME], fingerprint, code=code)
        if fetched is None or (here is not None and here[1]["epoch"] >= fetched[1]["epoch"]):
            return False
        last.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder / CKPT_NAME), str(last.with_suffix(".fetched")))
        os.replace(last.with_suffix(".fetched"), last)
        if (folder / BEST_NAME).is_file():  # rank 0's best.pt of that epoch
            shutil.move(str(folder / BEST_NAME), str(last.parent / "best.pt.fetched"))
            os.replace(last.parent / "best.pt.fetched", last.parent / BEST_NAME)
        else:  # an older checkpoint without it: best.pt = last.pt when the last epoch won
            repair_best(last.parent / BEST_NAME, last, fetched[1])
        return True
    finally:
        shutil.rmtree(folder, ignore_errors=True)
