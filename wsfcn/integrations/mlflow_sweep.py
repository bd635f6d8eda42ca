"""MLflow bookkeeping of a sweep (``pipeline/ablate.py``): one parent run, one child run per trial.

The parent lives in the experiment file's MLflow experiment, is tagged ``wsfcn.sweep=<experiment>/
<setting>`` and ``wsfcn.sweep_role=parent``, and carries none of the contract's ``wsfcn.experiment``
/ ``wsfcn.run`` tags, so the tables never read it as a result. Children point at it with
``mlflow.parentRunId`` (set by :func:`wsfcn.sweep.run_trial`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from wsfcn.integrations.mlflow_log import _experiment_id

SWEEP_TAG = "wsfcn.sweep"
PARENT_TAG = "mlflow.parentRunId"
ROLE_TAG = "wsfcn.sweep_role"


@dataclass(frozen=True)
class ChildRun:
    """What resume needs from an MLflow child run."""

    run_id: str
    status: str
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)


def children(client: MlflowClient, experiment_id: str, parent_id: str) -> list[ChildRun]:
    """Every child run of ``parent_id`` (all statuses), oldest first."""
    found, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.`{PARENT_TAG}` = '{parent_id}'",
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        found += [
            ChildRun(r.info.run_id, r.info.status, dict(r.data.tags), dict(r.data.metrics)) for r in page
        ]
        token = page.token
        if not token:
            return found


def open_parent(
    uri: str, experiment: str, setting: str, *, resume: bool, info: dict[str, str] | None = None
) -> tuple[str, list[ChildRun], bool]:
    """The sweep's parent run id, its children and whether it was reopened.

    With ``resume`` the newest parent of ``experiment``/``setting`` is reopened (status RUNNING);
    otherwise, or when there is none, a new parent is created with ``info`` as params.
    """
    client = MlflowClient(uri)
    exp_id = _experiment_id(client, experiment, uri)
    sweep = f"{experiment}/{setting}"
    if resume:
        query = f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'parent'"
        found = client.search_runs([exp_id], query, max_results=1, order_by=["attributes.start_time DESC"])
        if found:
            parent = found[0].info.run_id
            client.update_run(parent, status="RUNNING")
            return parent, children(client, exp_id, parent), True
    tags = {SWEEP_TAG: sweep, ROLE_TAG: "parent", "wsfcn.sweep_setting": setting}
    parent = client.create_run(exp_id, run_name=f"sweep-{setting}", tags=tags).info.run_id
    if info:
        client.log_batch(parent, params=[Param(k, str(v)) for k, v in info.items()])
    return parent, [], False


def mark_killed(uri: str, run_ids: list[str]) -> None:
    """Close runs a killed driver left RUNNING."""
    client = MlflowClient(uri)
    for run_id in run_ids:
        client.set_terminated(run_id, status="KILLED")


def close_parent(
    uri: str, parent_id: str, counts: dict[str, int], *, artifacts: list[str | Path] = (), status: str
) -> None:
    """Log the trial counts (``trials_finished`` ...), attach ``artifacts`` and end the parent run."""
    client = MlflowClient(uri)
    now = int(time.time() * 1000)
    client.log_batch(parent_id, metrics=[Metric(f"trials_{k}", float(v), now, 0) for k, v in counts.items()])
    for path in artifacts:
        client.log_artifact(parent_id, str(path))
    client.set_terminated(parent_id, status=status)
