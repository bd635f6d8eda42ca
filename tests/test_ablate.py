"""pipeline/ablate.py end to end: Ray Tune trials, MLflow parent/child runs, failures, kill + --resume.

Each test runs the real driver in a subprocess inside a tmp folder with its own sqlite MLflow store
and a tiny slice of the synthetic benchmark (16 train / 6 val images of 32×32).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers.services import session_members
from helpers.tiny import SWEEP, as_sets

ROOT = Path(__file__).resolve().parents[1]
ABLATE = ROOT / "pipeline" / "ablate.py"
SMOKE = ROOT / "experiments" / "smoke.yaml"
CONTRACT = ("experiment", "run", "setting", "seed", "dataset")

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def command(experiment: Path, *extra: str) -> list[str]:
    sets = as_sets(SWEEP)
    params = ["--params", str(ROOT / "params.yaml")]
    return [sys.executable, str(ABLATE), "--experiment", str(experiment), *params, "--quiet", *sets, *extra]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    return env | {"OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def runs_of(folder: Path, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def split_parent(runs: list):
    parents = [r for r in runs if r.data.tags.get("wsfcn.sweep_role") == "parent"]
    assert len(parents) == 1, [r.data.tags for r in parents]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1  # every other run hangs under the one parent
    return parents[0], children


def check_contract(run, experiment: str, name: str) -> None:
    tags, metrics = run.data.tags, run.data.metrics
    assert [tags[f"wsfcn.{k}"] for k in CONTRACT] == [experiment, name, "embedded", "0", "synthetic"]
    assert 0 <= metrics["mIoU"] <= 100 and 0 < metrics["PixAcc"] <= 100  # percent, not fractions
    assert metrics["PixAcc"] > 1  # a fraction would be <= 1 here (most pixels are background)
    assert metrics["n_params"] > 1e5 and metrics["n_params"] == int(metrics["n_params"])


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the driver's whole session (Ray's workers live in their own process groups)."""
    for _ in range(60):
        pids = session_members(proc.pid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    proc.wait(timeout=30)


def test_smoke_sweep_killed_after_one_trial_resumes_without_redoing_it(tmp_path):
    sweep = tmp_path / "outputs" / "sweeps" / "smoke" / "embedded"
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(command(SMOKE, "--max-concurrent", "1"), cwd=tmp_path, env=environment(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline, first, second = time.time() + 150, None, None
    try:
        while time.time() < deadline and second is None:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            done = sorted(sweep.glob("*/result.json"))
            first = done[0].parent if done else None
            started = [p.parent.parent for p in sweep.glob("*/train/.lock") if p.parent.parent != first]
            second = started[0] if first and started else None
            time.sleep(0.3)
    finally:
        kill_session(proc)  # the second trial's child run is RUNNING now
    assert second is not None, (tmp_path / "first.log").read_text()[-3000:]
    assert not (second / "result.json").exists()
    first_result = yaml.safe_load((first / "result.json").read_text())
    weights = (first / "train" / "last.pt").stat().st_mtime_ns

    start = time.time()
    out = subprocess.run(command(SMOKE, "--resume", "--max-concurrent", "1"), cwd=tmp_path, env=environment(),
                         capture_output=True, text=True, timeout=240)  # fmt: skip
    resume_s = time.time() - start
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"{first.name:<24} SKIPPED" in out.stdout and f"{second.name:<24} FINISHED" in out.stdout
    assert (first / "train" / "last.pt").stat().st_mtime_ns == weights  # not trained again
    assert (second / "result.json").is_file()

    parent, children = split_parent(runs_of(tmp_path, "smoke"))
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_skipped"] == 1 and parent.data.metrics["trials_finished"] == 1
    finished = {r.data.tags["wsfcn.run"]: r for r in children if r.info.status == "FINISHED"}
    assert sorted(finished) == ["baseline", "full"]
    assert len([r for r in children if r.info.status == "FINISHED"]) == 2  # nothing redone
    assert finished[first.name[:-3]].info.run_id == first_result["run_id"]
    killed = [r for r in children if r.info.status != "FINISHED"]
    assert [(r.info.status, r.data.tags["wsfcn.trial"]) for r in killed] == [("KILLED", second.name)]
    for name, run in finished.items():
        check_contract(run, "smoke", name)
    print(f"resume run: {resume_s:.1f} s")


def test_train_workers_inside_trials_and_a_failing_trial_is_reported(tmp_path):
    """baseline trains on 2 Ray Train workers (0.99 CPU each, stack §2); broken shares that training
    (it differs only in infer.split) and fails at inference, which runs as a Ray task."""
    doc = yaml.safe_load(SMOKE.read_text())
    doc["name"] = "smoke_fail"
    doc["runs"]["broken"] = {**doc["runs"]["baseline"], "infer.split": "nosuch"}
    del doc["runs"]["full"]
    experiment = tmp_path / "smoke_fail.yaml"
    experiment.write_text(yaml.safe_dump(doc, sort_keys=False))
    cmd = command(experiment, "--set=train.num_workers=2")
    out = subprocess.run(cmd, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=240)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "FAILED broken-s0: FileNotFoundError: " in out.stdout and "error.txt" in out.stdout
    assert "nosuch.txt is missing" in out.stdout and "ablate: 1/2 trials finished" in out.stdout
    parent, children = split_parent(runs_of(tmp_path, "smoke_fail"))
    assert parent.info.status == "FAILED" and parent.data.metrics["trials_failed"] == 1
    status = {r.data.tags["wsfcn.run"]: r for r in children}
    assert status["baseline"].info.status == "FINISHED" and status["broken"].info.status == "FAILED"
    check_contract(status["baseline"], "smoke_fail", "baseline")
    assert status["baseline"].data.params["train.num_workers"] == "2"
    assert status["baseline"].data.metrics["world_size"] == 2  # torch.distributed's, read inside the workers
    assert "val_mIoU" in status["baseline"].data.metrics  # logged by rank 0 inside a Ray Train worker
    assert "nosuch.txt is missing" in status["broken"].data.tags["wsfcn.error"]
    assert status["broken"].data.tags["wsfcn.train_reused"].endswith("baseline-s0/train")  # shared training
    assert "mIoU" not in status["broken"].data.metrics
