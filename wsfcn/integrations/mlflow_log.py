"""MLflow tracking of training runs (stack §3: MLflow 3.17 with a sqlite store).

One MLflow experiment per ``experiments/*.yaml`` file (or ``tracking.experiment``), one MLflow
run per training run: every parameter under its dotted name, per-epoch metrics at
``step=epoch``, tags (git commit, ``dvc.lock`` hash, data name, run name, params fingerprint),
the Figure-6 panels and the checkpoint paths. Everything goes through an explicit
``MlflowClient(uri)`` and ``run_id``, never the global active run, so the same reporter works in
the driver and inside a Ray Train worker. ``MLFLOW_TRACKING_URI`` overrides ``tracking.uri``.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from wsfcn.config import Params
from wsfcn.params_coerce import flatten
from wsfcn.params_io import fingerprint
from wsfcn.units import in_percent

RUN_NAME_TAG = "mlflow.runName"
BATCH = 100  # MLflow's limit of params per log_batch call
# MLflow 3 records an experiment's kind in this tag: model training, not a GenAI app. (The 3.17 UI
# still opens the view of its GenAI / Model-training switch; ?workflowType=machine_learning flips it.)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def resolve_uri(uri: str, root: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``uri``; a relative sqlite path is made absolute from ``root``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        uri = prefix + str((Path(root or Path.cwd()) / uri[len(prefix) :]).resolve())
    return uri


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a sqlite store go to ``mlruns/`` beside the database (MLflow's default at the root)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlruns").resolve().as_uri()
    return None


def _experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created if missing; tagged ``mlflow.experimentKind`` either way.

    An existing experiment without the kind tag (made by an older version, or by hand) gets it; one
    tagged with another kind keeps it.
    """
    exp = client.get_experiment_by_name(name)
    if exp is None:
        root = _artifact_root(uri)
        try:
            return client.create_experiment(
                name,
                artifact_location=f"{root}/{name}" if root else None,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except Exception:  # created meanwhile by a concurrent process
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if EXPERIMENT_KIND_TAG not in exp.tags:
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def run_tags(params: Params, root: str | Path | None = None) -> dict[str, str]:
    """Provenance tags: git commit (+ dirty flag), ``dvc.lock`` md5, data name, run name, fingerprint."""
    root = Path(root or Path.cwd())
    tags = {
        "git.commit": _git(root, "rev-parse", "HEAD") or "unknown",
        "git.dirty": str(bool(_git(root, "status", "--porcelain", "--untracked-files=no"))).lower(),
        "data.name": params.data.name,
        "wsfcn.run_name": params.train.run_name,
        "wsfcn.fingerprint": fingerprint(params),
    }
    lock = root / "dvc.lock"
    if lock.is_file():
        tags["dvc.lock.md5"] = hashlib.md5(lock.read_bytes()).hexdigest()
    return tags


def _log_params(client: MlflowClient, run_id: str, params: Params) -> None:
    """Log every dotted param; on a resumed run, values changed since (e.g. train.epochs) become tags."""
    logged = client.get_run(run_id).data.params
    new, changed = [], []
    for key, value in flatten(params).items():
        text = str(value)
        if key not in logged:
            new.append(Param(key, text))
        elif logged[key] != text:
            changed.append(RunTag(f"resumed_with.{key}", text))
    for i in range(0, len(new), BATCH):
        client.log_batch(run_id, params=new[i : i + BATCH])
    if changed:
        client.log_batch(run_id, tags=changed)


# tags a resumed run must share with the run it reopens (params and training-code fingerprints)
RESUME_TAGS = ("wsfcn.fingerprint", "wsfcn.code_fingerprint")


def start_run(
    params: Params,
    experiment: str,
    run_name: str,
    *,
    resume: bool = False,
    root: str | Path | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Create (or, with ``resume``, reopen the newest run of the same name and :data:`RESUME_TAGS`) run;
    return its id.

    The run gets the params, :func:`run_tags` and ``tags`` (e.g. ``wsfcn.code_fingerprint``); its
    status is RUNNING until :meth:`MLflowReporter.finish`.
    """
    uri = resolve_uri(params.tracking.uri, root)
    client = MlflowClient(uri)
    exp_id = _experiment_id(client, experiment, uri)
    tags = run_tags(params, root) | {k: str(v) for k, v in (tags or {}).items()}
    run_id = None
    if resume:
        query = f"tags.`{RUN_NAME_TAG}` = '{run_name}'"
        query += "".join(f" and tags.`{k}` = '{tags[k]}'" for k in RESUME_TAGS if k in tags)
        found = client.search_runs([exp_id], query, max_results=1, order_by=["attributes.start_time DESC"])
        if found:
            run_id = found[0].info.run_id
            client.update_run(run_id, status="RUNNING")
    if run_id is None:
        run_id = client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
    else:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    _log_params(client, run_id, params)
    return run_id


class MLflowReporter:
    """``report`` callable for :func:`wsfcn.train.loop.fit`: numbers → metrics at ``step=epoch``,
    ``figure`` → an artifact under ``figures/``, ``checkpoint`` → the ``checkpoint.last`` tag."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.run_id = uri, run_id
        self.client = MlflowClient(uri)

    def __call__(self, report: dict[str, Any]) -> None:
        step = int(report.get("epoch", 0))
        now = int(time.time() * 1000)
        numbers = {
            k: float(v)
            for k, v in report.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None
        }
        numbers = in_percent(numbers)  # quick val mIoU / PixAcc / mAP in percent, as the final numbers
        metrics = [Metric(k, v, now, step) for k, v in numbers.items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)
        if report.get("figure"):
            self.log_figure(report["figure"])
        if report.get("checkpoint"):
            self.client.set_tag(self.run_id, "checkpoint.last", str(Path(report["checkpoint"]).resolve()))

    def log_metrics(self, values: dict[str, float], step: int = 0) -> None:
        """Log finite numbers as metrics at ``step`` (a final result: step 0)."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(float(v))]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_figure(self, path: str | Path) -> None:
        """Upload a PNG under ``figures/``."""
        self.log_artifact(path, "figures")

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file (or folder) to this run."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def finish(self, status: str = "FINISHED") -> None:
        """Mark the run FINISHED / FAILED / KILLED."""
        self.client.set_terminated(self.run_id, status=status)


@contextmanager
def tracked_run(
    params: Params,
    experiment: str,
    run_name: str,
    *,
    resume: bool = False,
    root: str | Path | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[MLflowReporter]:
    """One MLflow run around a block: RUNNING inside, then FINISHED, FAILED or KILLED (Ctrl-C).

    Opens the run with :func:`start_run` and ``tags`` (``resume``: reopen the newest run of the same
    name and fingerprints), and yields its :class:`MLflowReporter`. An exception leaves its one-line
    message as the ``wsfcn.error`` tag and is re-raised.
    """
    run_id = start_run(params, experiment, run_name, resume=resume, root=root, tags=tags)
    reporter = MLflowReporter(resolve_uri(params.tracking.uri, root), run_id)
    try:
        yield reporter
    except BaseException as err:
        reporter.set_tags({"wsfcn.error": f"{type(err).__name__}: {err}"[:4000]})
        reporter.finish("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    reporter.finish("FINISHED")


def find_run_id(params: Params, experiment: str | None = None, run_name: str | None = None) -> str | None:
    """The newest run named ``run_name`` (default ``train.run_name``) in ``experiment``, or None."""
    uri = resolve_uri(params.tracking.uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment or params.tracking.experiment)
    if exp is None:
        return None
    name = run_name or params.train.run_name
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.`{RUN_NAME_TAG}` = '{name}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def log_artifact(
    path: str | Path,
    params: Params,
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    artifact_path: str | None = None,
    metrics: dict[str, float] | None = None,
) -> bool:
    """For later stages: attach a file (and optional final metrics) to the training run of ``params``.

    Returns False (and logs nothing) when tracking is disabled or no such run exists.
    """
    if not params.tracking.enabled:
        return False
    run_id = find_run_id(params, experiment, run_name)
    if run_id is None:
        return False
    reporter = MLflowReporter(resolve_uri(params.tracking.uri), run_id)
    reporter.log_artifact(path, artifact_path)
    if metrics:
        reporter({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)})
    return True


def log_evaluation(
    uri: str, run_id: str, metrics: dict[str, float], tags: dict[str, str], files: list[str | Path] = ()
) -> None:
    """The evaluate stage's final numbers (percent) and settings on the training's run ``run_id``.

    Metrics at step 0; the settings that produced them as ``eval.*`` tags (a run's params are fixed once
    logged, and one checkpoint may be evaluated with CRF, §, other scales ...); ``files`` under ``eval/``.
    """
    reporter = MLflowReporter(uri, run_id)
    reporter.client.get_run(run_id)  # raises when the run is gone
    reporter.log_metrics(metrics)
    reporter.set_tags(tags)
    for path in files:
        reporter.log_artifact(path, "eval")
