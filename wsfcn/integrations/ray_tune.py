"""Ray Tune sweep driver (STACK §2: Ray 2.60, Train V2): the trials of :mod:`wsfcn.sweep` as a grid.

Every trial is a function trainable running :func:`wsfcn.sweep_trial.run_trial`.

* ``train.num_workers == 0``: the trial trains in its own process with ``cpu`` = 1 (or
  cores / ``--max-concurrent``) and a GPU when it trains on CUDA; torch uses that many threads.
* ``>= 1``: ``Tuner(TorchTrainer)`` does not work under Train V2, so the trial (``{"cpu": 0.01}``)
  runs a ``TorchTrainer`` itself, with ``TuneReportCallback`` and workers of
  ``(cores / concurrent - 0.01) / workers`` CPUs (0.99 each for 2 workers on 2 cores) plus one GPU
  each on CUDA. After training, inference runs as a Ray task with one worker's resources.

A trial that raises is FAILED; the others go on (Tune's ``max_failures=0``: a failing trial is not
retried). Ray starts cheaply: no dashboard, 256 MiB object store in /tmp, a short temp dir,
``RAY_AUTH_MODE=disabled``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsfcn.config import ConfigError, Params, to_dict
from wsfcn.sweep import TrialOutcome, TrialSpec
from wsfcn.sweep_trial import infer_and_evaluate, run_trial

TRIAL_CPU = 0.01  # the trial driver of a Train-inside-Tune trial (STACK §2)


def start_ray(address: str = "", *, quiet: bool = True) -> dict[str, float]:
    """Join ``address`` or start a local cluster over all cores; return its CPU / GPU counts."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if not ray.is_initialized():
        level = logging.WARNING if quiet else logging.INFO
        if address:
            ray.init(address=address, logging_level=level, log_to_driver=not quiet)
        else:
            ray.init(
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                object_store_memory=256 * 2**20,
                _plasma_directory="/tmp",
                _temp_dir=f"/tmp/wsfcn-ray-{os.getuid()}",  # short: unix-socket paths are limited
                logging_level=level,
                log_to_driver=not quiet,
            )
    resources = ray.cluster_resources()
    return {"CPU": float(resources.get("CPU", 1)), "GPU": float(resources.get("GPU", 0))}


def _wants_gpu(params: Params, gpus: float) -> bool:
    tp = params.train
    return tp.device != "cpu" and (tp.use_gpu or tp.device == "cuda" or gpus > 0)


def trial_resources(params: Params, cluster: dict[str, float], concurrent: int) -> dict[str, float]:
    """Tune resources of one trial (``concurrent`` 0: as many trials as fit)."""
    if params.train.num_workers >= 1:
        return {"cpu": TRIAL_CPU}
    cpu = max(1.0, float(cluster["CPU"] // concurrent)) if concurrent else 1.0
    return {"cpu": cpu, "gpu": 1.0 if _wants_gpu(params, cluster["GPU"]) else 0.0}


def worker_resources(params: Params, cluster: dict[str, float], concurrent: int) -> dict[str, float]:
    """``resources_per_worker`` of the Ray Train workers inside one trial (num_workers >= 1)."""
    share = cluster["CPU"] / max(concurrent, 1) - TRIAL_CPU
    cpu = math.floor(100 * share / params.train.num_workers) / 100
    if cpu <= 0:
        raise ConfigError(f"{cluster['CPU']:g} CPUs cannot host train.num_workers={params.train.num_workers}")
    return {"CPU": cpu, "GPU": 1.0} if _wants_gpu(params, cluster["GPU"]) else {"CPU": cpu}


def check_fits(spec: TrialSpec, cluster: dict[str, float], concurrent: int) -> None:
    """Raise :class:`ConfigError` when one trial needs more than the cluster has (Tune would wait forever)."""
    params = spec.to_params()
    trial = trial_resources(params, cluster, concurrent)
    cpu, gpu = trial["cpu"], trial.get("gpu", 0.0)
    if params.train.num_workers >= 1:
        workers = worker_resources(params, cluster, concurrent)
        cpu += params.train.num_workers * workers["CPU"]
        gpu += params.train.num_workers * workers.get("GPU", 0.0)
    if gpu > cluster["GPU"]:
        raise ConfigError(
            f"trial {spec.trial_id} needs {gpu:g} GPUs (train.use_gpu / train.device, train.num_workers) "
            f"but the Ray cluster has {cluster['GPU']:g}; set train.use_gpu=false or use a GPU machine"
        )
    if cpu > cluster["CPU"] + 1e-9:
        raise ConfigError(
            f"trial {spec.trial_id} needs {cpu:g} CPUs but the Ray cluster has {cluster['CPU']:g}"
        )


def fit_on_train_workers(params: Params, *, mlflow_run=None, report=None, quiet=True, resources: dict):
    """``ray_train.run_ray`` for inside a Tune trial: explicit worker resources and TuneReportCallback."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from wsfcn.checkpoints import fingerprint, newest_resumable, params_to_dict
    from wsfcn.integrations.ray_train import train_loop_per_worker
    from wsfcn.training import FitResult, NonFiniteLossError

    tp = params.train
    out = Path(tp.out_dir)
    storage = out / "ray"
    if newest_resumable([out / "last.pt"], fingerprint(params)) is None:
        shutil.rmtree(storage / tp.run_name, ignore_errors=True)  # a fresh run: no stale Ray snapshot
    config = {"params": params_to_dict(params), "mlflow_run": mlflow_run, "resume": True, "quiet": quiet}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=tp.num_workers, use_gpu="GPU" in resources, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=tp.run_name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=tp.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=[TuneReportCallback()],
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    if (result.metrics or {}).get("error"):
        raise NonFiniteLossError(result.metrics["error"])
    return FitResult.from_checkpoint(out / "last.pt")


def _post_task(params: dict[str, Any], quiet: bool, threads: int) -> dict[str, Any]:
    import torch

    from wsfcn.checkpoints import params_from_dict

    torch.set_num_threads(threads)
    return infer_and_evaluate(params_from_dict(params), quiet=quiet, processes=threads)


def _remote_post(resources: dict[str, float]):
    import ray

    threads = max(1, round(resources["CPU"]))
    # "DEFAULT": outside the trial's placement group, on the resources the Train workers gave back
    task = ray.remote(
        num_cpus=resources["CPU"], num_gpus=resources.get("GPU", 0), scheduling_strategy="DEFAULT"
    )(_post_task)

    def post(params: Params, *, quiet: bool) -> dict[str, Any]:
        return ray.get(task.remote(to_dict(params), quiet, threads))

    return post


def _trainable(config: dict, *, specs: dict, cluster: dict, concurrent: int, quiet: bool) -> None:
    import torch
    from ray import tune

    spec: TrialSpec = specs[config["trial"]]
    params = spec.to_params()
    if params.train.num_workers == 0:
        threads = max(1, int(trial_resources(params, cluster, concurrent)["cpu"]))
        torch.set_num_threads(threads)

        def to_tune(metrics: dict) -> None:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and "epoch" in metrics}
            if numbers:
                tune.report(numbers)

        post = functools.partial(infer_and_evaluate, processes=threads)
        summary = run_trial(spec, post=post, report=to_tune, quiet=quiet)
    else:
        resources = worker_resources(params, cluster, concurrent)
        train = functools.partial(fit_on_train_workers, resources=resources)
        summary = run_trial(spec, train=train, post=_remote_post(resources), quiet=quiet)
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tune.report(numbers | {"run_id": summary["run_id"], "done": 1})


def _error_line(error: BaseException | None, folder: Path) -> str:
    text = (folder / "error.txt").read_text() if (folder / "error.txt").is_file() else str(error or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else repr(error)) + f"  (traceback: {folder / 'error.txt'})"


def run_trials(
    specs: list[TrialSpec],
    storage: str | Path,
    *,
    max_concurrent: int = 0,
    quiet: bool = True,
    address: str = "",
    before: Callable[[], Any] | None = None,
) -> list[TrialOutcome]:
    """Run ``specs`` as a Tune grid (results under ``storage``/tune); one outcome per spec, in order.

    ``before`` (the data preparation) runs once Ray is up and every trial is known to fit.
    """
    import ray
    from ray import tune

    cluster = start_ray(address, quiet=quiet)
    by_id = {s.trial_id: s for s in specs}
    concurrent = max_concurrent or (1 if any(s.to_params().train.num_workers for s in specs) else 0)
    try:
        for spec in specs:
            check_fits(spec, cluster, concurrent)
        if before is not None:
            before()
    except BaseException:
        ray.shutdown()
        raise
    trainable = tune.with_parameters(
        _trainable, specs=by_id, cluster=cluster, concurrent=concurrent, quiet=quiet
    )
    trainable = tune.with_resources(
        trainable, lambda config: trial_resources(by_id[config["trial"]].to_params(), cluster, concurrent)
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(list(by_id))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=concurrent or None,
            trial_name_creator=lambda trial: trial.config["trial"],
            trial_dirname_creator=lambda trial: trial.config["trial"],
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(Path(storage).resolve()),
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=0 if quiet else 1,
        ),
    )
    try:
        grid = tuner.fit()
    finally:
        ray.shutdown()
    outcomes = {}
    for result in grid:
        trial = (result.config or {}).get("trial")
        if trial not in by_id:
            continue
        metrics = {
            k: float(v) for k, v in (result.metrics or {}).items() if k in ("mIoU", "PixAcc", "n_params")
        }
        run_id = str((result.metrics or {}).get("run_id", ""))
        if result.error is None and (result.metrics or {}).get("done"):
            outcomes[trial] = TrialOutcome(trial, "FINISHED", metrics, run_id=run_id)
        else:
            outcomes[trial] = TrialOutcome(
                trial, "FAILED", error=_error_line(result.error, Path(by_id[trial].folder))
            )
    lost = "the trial ended without a result (interrupted?)"
    return [outcomes.get(s.trial_id, TrialOutcome(s.trial_id, "FAILED", error=lost)) for s in specs]
