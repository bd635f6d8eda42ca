"""MLflow tracking: URIs, params / per-epoch metrics / figures / tags read back, resume, the train stage."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml
from helpers.stages import load_stage
from helpers.tiny import TINY, prepare_tiny_data
from mlflow.tracking import MlflowClient

from wsfcn.integrations.mlflow_log import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    MLflowReporter,
    log_artifact,
    resolve_uri,
    start_run,
)
from wsfcn.params_yaml import load_params
from wsfcn.precision import autocast_dtype, precision_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    """One sqlite store for the module (creating its tables takes seconds); one experiment per test."""
    value = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", value)  # also what mlflow.search_runs reads
        yield value


def test_resolve_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert resolve_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri("sqlite:///mlflow.db") == "http://127.0.0.1:5000"


def test_run_contents_read_back(uri, tmp_path):
    params = load_params(None, {"train.run_name": "r1", "train.lr": 0.002})
    run_id = start_run(params, "exp_a", "r1", root=tmp_path)
    figure = tmp_path / "epoch_001.png"
    figure.write_bytes(b"\x89PNG fake")
    reporter = MLflowReporter(uri, run_id)
    reporter({"n_params": 1234})
    reporter(
        {
            "epoch": 1,
            "loss": 0.5,
            "val_mIoU": 0.25,
            "figure": str(figure),
            "checkpoint": str(tmp_path / "l.pt"),
        }
    )
    reporter({"epoch": 2, "loss": 0.4, "val_mIoU": 0.35})
    reporter.finish()
    runs = mlflow.search_runs(experiment_names=["exp_a"])
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["params.train.lr"] == "0.002" and row["params.model.context"] == "fca"
    assert row["params.loss.pamr_dilations"] == "[1, 2, 4, 8, 12, 24]"
    assert row["metrics.loss"] == 0.4 and row["metrics.n_params"] == 1234
    assert row["tags.data.name"] == "synthetic" and row["tags.git.commit"]
    assert row["tags.checkpoint.last"].endswith("l.pt") and row["status"] == "FINISHED"
    client = MlflowClient(uri)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "val_mIoU")] == [
        (1, 25.0),  # logged in percent, the unit of the final mIoU
        (2, 35.0),
    ]
    assert [a.path for a in client.list_artifacts(run_id, "figures")] == ["figures/epoch_001.png"]
    db_dir = uri[len("sqlite:///") :].rsplit("/", 1)[0]
    assert client.get_run(run_id).info.artifact_uri.startswith(f"file://{db_dir}/mlruns/")  # beside the db


def test_experiments_are_of_the_model_training_kind(uri, tmp_path):
    """MLflow 3's UI shows an experiment tagged ``custom_model_development`` in its training view."""
    from wsfcn.integrations.mlflow_sweep import open_parent

    assert EXPERIMENT_KIND == "custom_model_development"
    client = MlflowClient(uri)
    params = load_params(None, {"train.run_name": "k"})
    start_run(params, "kind_new", "k", root=tmp_path)  # created here: tagged at creation
    assert client.get_experiment_by_name("kind_new").tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    old = client.create_experiment("kind_old")  # as an older wsfcn (or a user) made it: no kind
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    start_run(params, "kind_old", "k", root=tmp_path)
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    open_parent(uri, "kind_sweep", "embedded", resume=False)  # a sweep's parent creates it too
    assert client.get_experiment_by_name("kind_sweep").tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    genai = client.create_experiment("kind_genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    start_run(params, "kind_genai", "k", root=tmp_path)  # a kind someone chose is kept
    assert client.get_experiment(genai).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_resume_reopens_the_same_run(uri, tmp_path):
    params = load_params(None, {"train.run_name": "r2"})
    first = start_run(params, "exp_b", "r2", root=tmp_path)
    MLflowReporter(uri, first).finish("KILLED")
    longer = load_params(None, {"train.run_name": "r2", "train.epochs": 50})
    assert start_run(longer, "exp_b", "r2", resume=True, root=tmp_path) == first
    run = MlflowClient(uri).get_run(first)
    assert run.info.status == "RUNNING" and run.data.tags["resumed_with.train.epochs"] == "50"
    other = load_params(None, {"train.run_name": "r2", "train.lr": 0.5})
    assert start_run(other, "exp_b", "r2", resume=True, root=tmp_path) != first
    assert log_artifact(__file__, params, experiment="exp_b", artifact_path="extra", metrics={"mIoU": 0.5})
    assert not log_artifact(__file__, params, experiment="missing")


@pytest.mark.slow  # the train stage end to end: 24 s on 2 cores
def test_train_stage_tracks_an_experiment_run(uri, tmp_path, monkeypatch):
    data = prepare_tiny_data(tmp_path / "d")
    experiment = tmp_path / "tiny_table.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "name": "tiny_table",
                "caption": "t",
                "common": {**TINY, **data},
                "runs": {"full": {"tracking.enabled": True}},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    stage = load_stage("train")
    assert stage.main(["--experiment", str(experiment), "--run", "full", "--quiet"]) == 0
    out = tmp_path / "outputs" / "train" / "tiny_table" / "full"
    assert {"last.pt", "best.pt", "metrics.json", "history.csv"} <= {p.name for p in out.iterdir()}
    runs = mlflow.search_runs(experiment_names=["tiny_table"])
    row = runs.iloc[0]
    assert len(runs) == 1 and row["tags.mlflow.runName"] == "full" and row["status"] == "FINISHED"
    assert row["params.train.epochs"] == "2" and row["metrics.n_params"] > 0
    assert 0.0 <= row["metrics.val_mIoU"] <= 100.0 and row["tags.checkpoint.best"] == str(out / "best.pt")
    # the arithmetic the run trained in: train.amp as resolved on this machine
    amp = yaml.safe_load((out / "metrics.json").read_text())["precision"]
    expected = precision_name(autocast_dtype(TINY.get("train.amp", "none"), "cpu"))
    assert row["tags.wsfcn.precision"] == amp == expected
    client = MlflowClient(uri)
    assert [m.step for m in client.get_metric_history(row["run_id"], "loss")] == [1, 2]
    names = {a.path for a in client.list_artifacts(row["run_id"])} | {
        a.path for a in client.list_artifacts(row["run_id"], "figures")
    }
    assert {"metrics.json", "history.csv", "figures/epoch_001.png", "figures/epoch_002.png"} <= names
