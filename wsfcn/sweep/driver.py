"""The sweep driver behind ``pipeline/ablate.py``: plan → prepare data → Ray Tune trials → close.

Plans the trials of :mod:`wsfcn.sweep.plan`, opens (or, with resume, reopens) the MLflow parent run,
leaves out the trials it already finished, starts (or joins) Ray, checks every trial fits the
cluster (:mod:`wsfcn.sweep.resources`), prepares each distinct data setting once, runs the rest as a
Ray Tune grid whose trials run :func:`wsfcn.sweep.trial.run_trial`, and ends the parent FINISHED,
FAILED (some trial failed) or KILLED (interrupted), with the trial counts as metrics and the
experiments file attached.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsfcn.config import ConfigError
from wsfcn.experiments import load_experiment
from wsfcn.params_io import params_from_dict
from wsfcn.params_yaml import parse_overrides
from wsfcn.sweep.idle_cores import CoreLedger
from wsfcn.sweep.plan import (
    TrialOutcome,
    TrialSpec,
    count_outcomes,
    expand_trials,
    select_pending,
    with_parent,
)
from wsfcn.sweep.resources import check_fits, trial_resources, worker_resources
from wsfcn.sweep.trial import infer_and_evaluate, prepare_data, run_trial


def _post_task(params: dict[str, Any], quiet: bool, threads: int) -> dict[str, Any]:
    """infer → crf → evaluate as a Ray task (after Ray Train training), ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    return infer_and_evaluate(params_from_dict(params), quiet=quiet, processes=threads)


def trial_body(
    trial_id: str,
    report: Callable[[dict], None],
    *,
    specs: dict[str, TrialSpec],
    cluster: dict,
    concurrent: int,
    quiet: bool,
    ledger: CoreLedger | None = None,
) -> dict[str, Any]:
    """What one Tune trial runs: :func:`run_trial` with threads and workers sized to its resources.

    An in-process trial marks its start and end in ``ledger`` and, between epochs, takes the cores
    no other trial will use (:mod:`wsfcn.sweep.idle_cores`).
    """
    import torch

    from wsfcn.integrations.ray_cluster import check_data_visible, granted_cpus, node_cpus
    from wsfcn.integrations.ray_tune import remote_call
    from wsfcn.stages.train import run_fit

    spec = specs[trial_id]
    params = spec.to_params()
    check_data_visible(params.data.root, params.data.name)  # this trial's node sees the prepared data
    if params.train.num_workers == 0:
        threads = granted_cpus(default=int(trial_resources(params, cluster, concurrent)["cpu"]))
        torch.set_num_threads(threads)
        post = functools.partial(infer_and_evaluate, processes=threads)
        if ledger is None:
            summary = run_trial(spec, post=post, report=report, quiet=quiet)
        else:
            cores = node_cpus(default=threads)

            def report_and_grow(entry: dict) -> None:
                report(entry)
                want = ledger.threads(threads, cores)
                if want != torch.get_num_threads():
                    torch.set_num_threads(want)
                    if not quiet:
                        print(f"{trial_id}: {want} torch threads (idle cores joined)", flush=True)

            ledger.mark(trial_id, "started")
            try:
                summary = run_trial(spec, post=post, report=report_and_grow, quiet=quiet)
            finally:
                ledger.mark(trial_id, "finished")
    else:
        resources = worker_resources(params, cluster, concurrent)
        train = functools.partial(run_fit, worker_resources=resources, inside_tune=True)
        task = remote_call(_post_task, resources)
        threads = max(1, round(resources["CPU"]))

        def post(params, *, quiet: bool) -> dict[str, Any]:
            from wsfcn.params_coerce import to_dict

            return task(to_dict(params), quiet, threads)

        summary = run_trial(spec, train=train, post=post, quiet=quiet)
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return numbers | {"run_id": summary["run_id"]}


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
    name: str = "tune",
) -> list[TrialOutcome]:
    """Run ``specs`` as a Tune grid (results under ``storage``/``name``); one outcome per spec, in order.

    ``before`` (the data preparation) runs once Ray is up and every trial is known to fit.
    """
    from wsfcn.integrations.ray_cluster import start_ray, stop_ray
    from wsfcn.integrations.ray_tune import run_grid

    cluster = start_ray(address, quiet=quiet)
    by_id = {s.trial_id: s for s in specs}
    ledger = CoreLedger(tempfile.mkdtemp(prefix="wsfcn-cores-"), total=len(specs))
    concurrent = max_concurrent or (1 if any(s.to_params().train.num_workers for s in specs) else 0)
    try:
        for spec in specs:
            check_fits(spec, cluster, concurrent)
        if before is not None:
            before()
        body = functools.partial(
            trial_body, specs=by_id, cluster=cluster, concurrent=concurrent, quiet=quiet, ledger=ledger
        )
        resources = lambda trial: trial_resources(by_id[trial].to_params(), cluster, concurrent)  # noqa: E731
        results = run_grid(
            list(by_id), body, resources, storage, max_concurrent=concurrent, quiet=quiet, name=name
        )
    finally:
        stop_ray()
        shutil.rmtree(ledger.folder, ignore_errors=True)
    outcomes = []
    for spec in specs:
        result = results.get(spec.trial_id)
        if result is not None and result.finished:
            keep = ("mIoU", "PixAcc", "n_params")
            metrics = {k: float(v) for k, v in result.metrics.items() if k in keep}
            outcomes.append(
                TrialOutcome(spec.trial_id, "FINISHED", metrics, run_id=str(result.metrics["run_id"]))
            )
        elif result is not None:
            outcomes.append(
                TrialOutcome(spec.trial_id, "FAILED", error=_error_line(result.error, Path(spec.folder)))
            )
        else:
            outcomes.append(
                TrialOutcome(spec.trial_id, "FAILED", error="the trial ended without a result (interrupted?)")
            )
    return outcomes


def run_sweep(
    experiment_path: str | Path,
    *,
    setting: str = "embedded",
    seeds: int = 1,
    runs: list[str] | None = None,
    params_path: str | Path | None = "params.yaml",
    overrides: list[str] | tuple[str, ...] = (),
    max_concurrent: int = 0,
    resume: bool = False,
    quiet: bool = False,
    root: str | Path | None = None,
    checkpoint: str | Path | None = None,
    trials: list[str] | None = None,
) -> tuple[list[TrialOutcome], str]:
    """Plan, prepare and run one sweep; return the outcomes (in trial order) and the parent run id.

    With ``resume`` the trials the newest parent already FINISHED come back as SKIPPED. With
    ``checkpoint`` no trial trains: each evaluates that file (:mod:`wsfcn.sweep.given`).
    """
    from wsfcn.integrations.mlflow_sweep import close_parent, mark_killed, open_parent

    experiment = load_experiment(experiment_path)
    specs = expand_trials(
        experiment, setting, seeds, runs=runs, base=params_path, extra=parse_overrides(overrides), root=root,
        checkpoint=checkpoint, trials=trials,
    )  # fmt: skip
    trackings = {(p.tracking.uri, p.tracking.enabled) for p in (s.to_params() for s in specs)}
    if len(trackings) != 1 or not next(iter(trackings))[1]:
        raise ConfigError(f"a sweep logs to one MLflow store with tracking.enabled=true, got {trackings}")
    uri = next(iter(trackings))[0]
    info = {"experiment_file": str(experiment_path), "setting": setting, "seeds": seeds,
            "runs": ",".join(runs or experiment.runs), "overrides": " ".join(overrides),
            "trials": ",".join(trials or [])}  # fmt: skip
    info |= {"checkpoint": specs[0].checkpoint} if checkpoint and specs else {}
    parent, children, reopened = open_parent(uri, experiment.name, setting, resume=resume, info=info)
    todo, skipped, stale = select_pending(specs, children)
    mark_killed(uri, stale)
    outcomes = {o.trial_id: o for o in skipped}
    if not quiet:
        state = f"resuming parent run {parent}" if reopened else f"parent run {parent}"
        print(f"ablate: {experiment.name}/{setting}: {len(specs)} trials, {len(skipped)} finished; {state}")
        if checkpoint:
            print(f"ablate: no training; every trial evaluates {specs[0].checkpoint}")
    status = "FAILED"
    try:
        if todo:
            datas = [s.to_params().data for s in todo]
            first = todo[0].to_params()
            shared = first.train.storage  # train.storage: Tune's results next to Ray Train's
            ran = run_trials(
                with_parent(todo, parent),
                shared or Path(todo[0].folder).parent / "ray",
                name=f"sweep-{experiment.name}-{setting}" if shared else "tune",
                max_concurrent=max_concurrent,
                quiet=quiet,
                address=first.train.ray_address,
                before=lambda: prepare_data(datas, quiet=quiet),
            )
            outcomes.update({o.trial_id: o for o in ran})
        ordered = [outcomes[s.trial_id] for s in specs]
        status = "FAILED" if any(o.status == "FAILED" for o in ordered) else "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        close_parent(
            uri, parent, count_outcomes(outcomes.values()), artifacts=[experiment_path], status=status
        )
    return ordered, parent
