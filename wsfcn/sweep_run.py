"""The sweep driver behind ``pipeline/ablate.py``: plan → prepare data → Ray Tune trials → close.

Plans the trials of :mod:`wsfcn.sweep`, opens (or, with resume, reopens) the MLflow parent run,
leaves out the trials it already finished, prepares each distinct data setting once, runs the rest
with :func:`wsfcn.integrations.ray_tune.run_trials` and ends the parent FINISHED, FAILED (some trial
failed) or KILLED (interrupted), with the trial counts as metrics and the experiments file attached.
"""

from __future__ import annotations

import os
from pathlib import Path

from wsfcn.config import ConfigError, load_experiment, parse_overrides
from wsfcn.sweep import TrialOutcome, count_outcomes, expand_trials, select_pending, with_parent
from wsfcn.sweep_trial import prepare_data


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
) -> tuple[list[TrialOutcome], str]:
    """Plan, prepare and run one sweep; return the outcomes (in trial order) and the parent run id.

    With ``resume`` the trials the newest parent already FINISHED come back as SKIPPED.
    """
    from wsfcn.integrations.mlflow_sweep import close_parent, mark_killed, open_parent
    from wsfcn.integrations.ray_tune import run_trials

    experiment = load_experiment(experiment_path)
    specs = expand_trials(
        experiment, setting, seeds, runs=runs, base=params_path, extra=parse_overrides(overrides), root=root
    )
    trackings = {(p.tracking.uri, p.tracking.enabled) for p in (s.to_params() for s in specs)}
    if len(trackings) != 1 or not next(iter(trackings))[1]:
        raise ConfigError(f"a sweep logs to one MLflow store with tracking.enabled=true, got {trackings}")
    uri = next(iter(trackings))[0]
    info = {"experiment_file": str(experiment_path), "setting": setting, "seeds": seeds,
            "runs": ",".join(runs or experiment.runs), "overrides": " ".join(overrides)}  # fmt: skip
    parent, children, reopened = open_parent(uri, experiment.name, setting, resume=resume, info=info)
    todo, skipped, stale = select_pending(specs, children)
    mark_killed(uri, stale)
    outcomes = {o.trial_id: o for o in skipped}
    if not quiet:
        state = f"resuming parent run {parent}" if reopened else f"parent run {parent}"
        print(f"ablate: {experiment.name}/{setting}: {len(specs)} trials, {len(skipped)} finished; {state}")
    status = "FAILED"
    try:
        if todo:
            datas = [s.to_params().data for s in todo]
            storage = Path(todo[0].folder).parent / "ray"
            address = todo[0].to_params().train.ray_address or os.environ.get("RAY_ADDRESS", "")
            ran = run_trials(
                with_parent(todo, parent),
                storage,
                max_concurrent=max_concurrent,
                quiet=quiet,
                address=address,
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
