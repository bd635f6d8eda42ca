"""The MLflow UI (stack §3) serves a run store on 127.0.0.1 and lists its runs over the REST API.

``mlflow ui --workers 1`` with job execution off (3 processes, not 16), in its own process group,
which is killed as a whole at the end (its children outlive a SIGTERM to the parent alone).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers.services import free_port, group_members, stop_group

HEALTH_TIMEOUT_S = 60


def make_store(path: Path) -> tuple[str, str, set[str]]:
    """A sqlite store with two finished runs tagged as the logging contract says
    (wsfcn/report/contract.py)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("smoke", artifact_location=(path / "mlruns").as_uri())
    run_ids = set()
    for run, miou in (("baseline", 40.0), ("full", 45.0)):
        rid = client.create_run(experiment_id, run_name=run).info.run_id
        tags = {"experiment": "smoke", "run": run, "setting": "embedded", "seed": "0", "dataset": "synthetic"}
        for key, value in tags.items():
            client.set_tag(rid, f"wsfcn.{key}", value)
        client.log_metric(rid, "mIoU", miou)
        client.log_metric(rid, "PixAcc", 80.0)
        client.set_terminated(rid, "FINISHED")
        run_ids.add(rid)
    return uri, experiment_id, run_ids


def wait_health(url: str, proc: subprocess.Popen, log: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < HEALTH_TIMEOUT_S:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.read().decode().strip() == "OK":
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"mlflow ui gave no /health within {HEALTH_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to check the process group")
def test_mlflow_ui_lists_the_runs_and_stops_as_a_group(tmp_path):
    uri, experiment_id, run_ids = make_store(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "ui.log"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    pgid = os.getpgid(proc.pid)
    assert pgid == proc.pid  # its own group, not ours
    try:
        wait_health(url, proc, log)
        assert proc.pid in group_members(pgid)
        body = json.dumps({"experiment_ids": [experiment_id], "max_results": 10}).encode()
        request = urllib.request.Request(
            url + "/api/2.0/mlflow/runs/search", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            runs = json.loads(response.read())["runs"]
        assert {r["info"]["run_id"] for r in runs} == run_ids
        for r in runs:
            tags = {t["key"]: t["value"] for t in r["data"]["tags"]}
            metrics = {m["key"]: m["value"] for m in r["data"]["metrics"]}
            assert tags["wsfcn.experiment"] == "smoke" and tags["wsfcn.run"] in {"baseline", "full"}
            assert metrics["mIoU"] == {"baseline": 40.0, "full": 45.0}[tags["wsfcn.run"]]
            assert r["info"]["status"] == "FINISHED"
    finally:
        stop_group(proc)
    assert group_members(pgid) == []
