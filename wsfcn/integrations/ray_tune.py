"""Ray Tune grid runner (stack §2: Ray 2.60, Train V2): named trials, each a call of one body.

The sweep (:mod:`wsfcn.sweep.driver`) decides what a trial does and what it needs; this module only
runs it under Tune: ``body(trial_id, report)`` inside a function trainable with
``resources(trial_id)``, at most ``max_concurrent`` at once, results under ``storage``/``name``
(a local path or an object-store URI, as ``train.storage``). A
trial that raises is FAILED and is not retried (``max_failures=0``); the others go on. Ray must be
started first (:func:`wsfcn.integrations.ray_cluster.start_ray`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.units import Report

Body = Callable[[str, Report], dict]


@dataclass(frozen=True)
class GridResult:
    """How one trial ended: ``finished`` with its final numbers, or not, with Tune's error."""

    trial_id: str
    finished: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


def tune_report(metrics: dict[str, Any]) -> None:
    """Send a trial's intermediate numbers (ints and floats of an epoch report) to Tune."""
    from ray import tune

    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and "epoch" in metrics}
    if numbers:
        tune.report(numbers)


def _trainable(config: dict, *, body: Body) -> None:
    from ray import tune

    summary = body(config["trial"], tune_report)
    tune.report({**summary, "done": 1})


def run_grid(
    trial_ids: list[str],
    body: Body,
    resources: Callable[[str], dict[str, float]],
    storage: str | Path,
    *,
    max_concurrent: int = 0,
    quiet: bool = True,
    name: str = "tune",
) -> dict[str, GridResult]:
    """Run every trial id as one grid point; return a result per id that ran (a lost one is absent).

    ``storage`` is a local path, a folder every node mounts, or a URI (``s3://bucket/prefix``);
    Tune keeps the trials' results under ``storage/name``.
    """
    from ray import tune

    from wsfcn.integrations.ray_cluster import storage_location

    storage_path, filesystem = storage_location(str(storage))
    trainable = tune.with_parameters(_trainable, body=body)
    trainable = tune.with_resources(trainable, lambda config: resources(config["trial"]))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(list(trial_ids))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent or None,
            trial_name_creator=lambda trial: trial.config["trial"],
            trial_dirname_creator=lambda trial: trial.config["trial"],
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=filesystem,
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=0 if quiet else 1,
        ),
    )
    results = {}
    for result in tuner.fit():
        trial = (result.config or {}).get("trial")
        if trial in trial_ids:
            metrics = dict(result.metrics or {})
            finished = result.error is None and bool(metrics.get("done"))
            results[trial] = GridResult(trial, finished, metrics, result.error)
    return results


def remote_call(fn: Callable[..., Any], resources: dict[str, float]) -> Callable[..., Any]:
    """``fn`` run as a Ray task with ``resources`` (CPU, GPU), outside the calling trial's placement
    group ("DEFAULT" scheduling: on the resources its Ray Train workers gave back)."""
    import ray

    task = ray.remote(
        num_cpus=resources["CPU"], num_gpus=resources.get("GPU", 0), scheduling_strategy="DEFAULT"
    )(fn)

    def call(*args: Any, **kwargs: Any) -> Any:
        return ray.get(task.remote(*args, **kwargs))

    return call
