"""Run :func:`wsfcn.training.fit` in-process or on Ray Train workers (STACK §1: Ray 2.60, Train V2).

``train.num_workers == 0`` calls ``fit`` directly and never imports Ray (tests, CI, the embedded
default). ``>= 1`` starts (or, with ``train.ray_address`` / ``RAY_ADDRESS``, joins) a Ray cluster
and runs a ``TorchTrainer``: DDP over gloo on CPUs or NCCL on GPUs (used when the cluster has
them and ``train.device`` is not ``cpu``), each worker with ``cores // local workers`` torch
threads. Kill safety: rank 0 writes ``<out_dir>/last.pt`` and hands a copy to Ray every epoch;
``FailureConfig`` restarts a dead worker group from the newest of the two, and re-running the
same ``train.run_name`` resumes (Train V2 keys the run by ``RunConfig(name, storage_path)``).
The Ray and MLflow reporting happen inside the workers; only rank 0 logs to MLflow.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsfcn.checkpoints import fingerprint, link_or_copy, newest_resumable, params_from_dict, params_to_dict
from wsfcn.config import Params
from wsfcn.training import FitResult, NonFiniteLossError, fit

Report = Callable[[dict], None]
CKPT_NAME = "checkpoint.pt"


def absolute_paths(params: Params, root: str | Path | None = None) -> Params:
    """``params`` with every relative path made absolute (Ray workers run in another folder)."""
    root = Path(root or Path.cwd())

    def fix(value: str) -> str:
        return str((root / value).resolve()) if value and not os.path.isabs(value) else value

    data = dataclasses.replace(params.data, root=fix(params.data.root), downloads=fix(params.data.downloads))
    model = dataclasses.replace(params.model, pretrained=fix(params.model.pretrained))
    train = dataclasses.replace(params.train, out_dir=fix(params.train.out_dir))
    return dataclasses.replace(params, data=data, model=model, train=train)


def chain(*reports: Report | None) -> Report:
    """One report callable that calls each of ``reports`` in turn (None entries skipped)."""
    active = [r for r in reports if r is not None]

    def report(metrics: dict) -> None:
        for r in active:
            r(dict(metrics))

    return report


def run_training(
    params: Params,
    *,
    report: Report | None = None,
    mlflow_run: tuple[str, str] | None = None,
    resume: bool = True,
    quiet: bool = False,
) -> FitResult:
    """Train in-process (``train.num_workers == 0``) or on Ray Train workers.

    ``report`` receives the epoch reports in-process; on Ray use ``mlflow_run = (uri, run_id)``
    instead, so that rank 0 logs to that MLflow run from inside the worker.
    """
    if params.train.num_workers < 0:
        raise ValueError(f"train.num_workers must be >= 0, got {params.train.num_workers}")
    if params.train.num_workers == 0:
        reporter = None
        if mlflow_run is not None:
            from wsfcn.integrations.mlflow_log import MLflowReporter

            reporter = MLflowReporter(*mlflow_run)
        return fit(params, report=chain(report, reporter), resume=resume, quiet=quiet)
    return run_ray(absolute_paths(params), mlflow_run=mlflow_run, resume=resume, quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Ray
def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker body: threads, device, reporters, resume point, then :func:`fit`."""
    import ray.train
    import torch

    ctx = ray.train.get_context()
    torch.set_num_threads(max(1, _cores() // max(1, ctx.get_local_world_size())))
    if torch.cuda.is_available():  # Ray assigned this worker a GPU
        import ray.train.torch

        os.environ["LOCAL_RANK"] = str(ray.train.torch.get_device().index)
    params = params_from_dict(config["params"], source="train_loop_config")
    reporters: list[Report] = []
    if ctx.get_world_rank() == 0 and config.get("mlflow_run"):
        from wsfcn.integrations.mlflow_log import MLflowReporter

        reporters.append(MLflowReporter(*config["mlflow_run"]))
    reporters.append(RayReporter())
    quiet = config["quiet"] or ctx.get_world_rank() != 0
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint is None:
            fit(params, report=chain(*reporters), resume=config["resume"], quiet=quiet)
            return
        with checkpoint.as_directory() as folder:
            fit(
                params,
                report=chain(*reporters),
                resume=True,
                resume_from=[Path(folder) / CKPT_NAME],
                quiet=quiet,
            )
    except NonFiniteLossError as err:  # every rank sees the same all-reduced loss: stop, do not retry
        ray.train.report({"error": str(err)})


def _init_ray(address: str, quiet: bool) -> None:
    import logging

    import ray

    if ray.is_initialized():
        return
    level = logging.WARNING if quiet else logging.INFO
    if address:
        ray.init(address=address, logging_level=level)
    else:
        ray.init(
            num_cpus=_cores(),
            include_dashboard=False,
            logging_level=level,
            _temp_dir=f"/tmp/ray-{os.getuid()}",
        )  # short: unix-socket path limit


def _scaling(train_workers: int, device: str):
    import ray
    from ray.train import ScalingConfig

    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
    use_gpu = device != "cpu" and gpus >= train_workers
    if device == "cuda" and not use_gpu:
        raise RuntimeError(
            f"train.device=cuda but the Ray cluster has {gpus:g} GPUs for {train_workers} workers"
        )
    per_worker = max(1.0, cpus // train_workers) if cpus >= train_workers else cpus / train_workers
    return ScalingConfig(num_workers=train_workers, use_gpu=use_gpu, resources_per_worker={"CPU": per_worker})


def run_ray(
    params: Params,
    *,
    mlflow_run: tuple[str, str] | None = None,
    resume: bool = True,
    quiet: bool = False,
    loop: Callable[[dict], None] = train_loop_per_worker,
) -> FitResult:
    """Fit on ``train.num_workers`` Ray Train workers; paths in ``params`` must be absolute.

    ``loop`` is the worker body (tests wrap :func:`train_loop_per_worker` to inject a failure).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    tp = params.train
    out_dir = Path(tp.out_dir)
    storage = out_dir / "ray"
    if not resume or newest_resumable([out_dir / "last.pt"], fingerprint(params)) is None:
        shutil.rmtree(storage / tp.run_name, ignore_errors=True)  # a fresh run: no stale Ray snapshot
    _init_ray(tp.ray_address or os.environ.get("RAY_ADDRESS", ""), quiet)
    trainer = TorchTrainer(
        loop,
        train_loop_config={
            "params": params_to_dict(params),
            "mlflow_run": mlflow_run,
            "resume": resume,
            "quiet": quiet,
        },
        scaling_config=_scaling(
            tp.num_workers, "cpu" if tp.device == "cpu" else ("cuda" if tp.use_gpu else tp.device)
        ),
        run_config=RunConfig(
            name=tp.run_name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=tp.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    if (result.metrics or {}).get("error"):
        raise NonFiniteLossError(result.metrics["error"])
    return FitResult.from_checkpoint(out_dir / "last.pt")
