"""A remote MLflow tracking server (docs/cluster.md), and its UI in a real browser.

One ``mlflow server`` per module (sqlite backend, artifacts proxied to ``--artifacts-destination``,
one worker, job execution off), on a free 127.0.0.1 port, stopped as a process group. The train
stage logs a run to it over HTTP; a sweep-shaped parent with child runs is then rendered by
headless Chromium (Debian's ``chromium``, which ``.ci/run`` installs).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from helpers.services import free_port, http_ok, service, wait_until
from helpers.stages import load_stage
from helpers.tiny import TINY, prepare_tiny_data

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 150
SCREENSHOT = ROOT / "docs" / "mlflow_compare.png"  # refreshed with WSFCN_UPDATE_SCREENSHOT=1

pytestmark = pytest.mark.slow


def server_command(port: int, folder: Path) -> list[str]:
    """The ``mlflow server`` line of docs/cluster.md, on a test port and folder."""
    return [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``(url, folder)`` of a running tracking server; ``folder/artifacts`` is its artifact store."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # 3 processes instead of 16 (stack §3)
    log = folder / "server.log"
    with service(server_command(port, folder), log=log, cwd=folder, env=env) as proc:
        wait_until(lambda: http_ok(url + "/health", "OK"), proc, log, "mlflow server", READY_TIMEOUT_S)
        yield url, folder


def rest(url: str, endpoint: str, body: dict | None = None) -> dict:
    """GET (``body`` None) or POST JSON to ``/api/2.0/mlflow/<endpoint>``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{endpoint}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def experiment_id(url: str, name: str) -> str:
    quoted = urllib.parse.quote(name)
    return rest(url, f"experiments/get-by-name?experiment_name={quoted}")["experiment"]["experiment_id"]


def test_train_stage_logs_params_metrics_and_artifacts_through_the_server(server, tmp_path, monkeypatch):
    url, folder = server
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = prepare_tiny_data(tmp_path / "d")
    out = tmp_path / "out"
    sets = {**TINY, **data, "train.epochs": 1, "train.pretrain_epochs": 1, "train.out_dir": str(out),
            "train.run_name": "remote", "tracking.enabled": True, "tracking.uri": url,
            "tracking.experiment": "remote_server"}  # fmt: skip
    argv = ["--params", str(ROOT / "params.yaml"), "--quiet", "--fresh"]
    argv += [f"--set={key}={json.dumps(value)}" for key, value in sets.items()]
    monkeypatch.chdir(tmp_path)
    stage = load_stage("train")
    assert stage.main(argv) == 0

    exp_id = experiment_id(url, "remote_server")
    experiment = rest(url, f"experiments/get?experiment_id={exp_id}")["experiment"]
    tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment["artifact_location"].startswith("mlflow-artifacts:")  # proxied by the server
    runs = rest(url, "runs/search", {"experiment_ids": [exp_id], "max_results": 10})["runs"]
    assert len(runs) == 1
    run = runs[0]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert run["info"]["run_name"] == "remote" and run["info"]["status"] == "FINISHED"
    assert (
        params["train.epochs"] == "1" and params["tracking.uri"] == url and params["model.context"] == "fca"
    )
    assert metrics["n_params"] > 0 and "loss" in metrics and 0.0 <= metrics["val_mIoU"] <= 100.0  # percent

    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    run_id = run["info"]["run_id"]
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1]
    assert {"metrics.json", "history.csv"} <= {a.path for a in client.list_artifacts(run_id)}
    local = (out / "metrics.json").read_bytes()
    downloaded = Path(client.download_artifacts(run_id, "metrics.json", str(tmp_path / "dl")))
    assert downloaded.read_bytes() == local
    stored = list((folder / "artifacts").rglob(f"{run_id}/artifacts/metrics.json"))
    assert len(stored) == 1 and stored[0].read_bytes() == local  # landed in --artifacts-destination
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()  # nothing local


# ---------------------------------------------------------------------------------------------
# the UI in headless Chromium

CHILDREN = {  # run -> (model.context, model.fusion, mIoU, PixAcc), a Table-I-like sweep
    "baseline-s0": ("aspp", "baseline", 41.25, 81.5),
    "fca-s0": ("fca", "baseline", 44.5, 82.75),
    "full-s0": ("fca", "sf2", 47.75, 84.0),
}


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def log_sweep(url: str, experiment: str) -> tuple[str, dict[str, str]]:
    """A sweep's MLflow runs as ``pipeline/ablate.py`` writes them: a parent and one child per trial."""
    from wsfcn.integrations.mlflow_log import MLflowReporter, start_run
    from wsfcn.integrations.mlflow_sweep import close_parent, open_parent
    from wsfcn.params_yaml import load_params

    parent, _, _ = open_parent(url, experiment, "embedded", resume=False, info={"setting": "embedded"})
    children = {}
    for run, (context, fusion, miou, pixacc) in CHILDREN.items():
        overrides = {
            "train.run_name": run,
            "tracking.uri": url,
            "model.context": context,
            "model.fusion": fusion,
        }
        run_id = start_run(load_params(None, overrides), experiment, run, root=ROOT)
        reporter = MLflowReporter(url, run_id)
        reporter.set_tags({"mlflow.parentRunId": parent, "wsfcn.sweep": f"{experiment}/embedded"})
        reporter({"mIoU": miou, "PixAcc": pixacc})
        reporter.finish()
        children[run] = run_id
    close_parent(url, parent, {"finished": len(children)}, status="FINISHED")
    return parent, children


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM (scripts and styles dropped, whitespace collapsed)."""
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def render(
    browser: str, url: str, profile: Path, expected: list[str], *, screenshot: Path | None = None
) -> str:
    """Load ``url`` in headless Chromium until every ``expected`` text is in its DOM; return the text.

    The UI is a React SPA that fetches after load: the virtual-time budget lets it settle, and a
    slower machine gets up to three tries with a growing budget.
    """
    text = ""
    for budget_ms in (20_000, 40_000, 80_000):
        shutil.rmtree(profile, ignore_errors=True)
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--window-size=1280,860", f"--user-data-dir={profile}",
                 f"--virtual-time-budget={budget_ms}"]  # fmt: skip
        result = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
        text = page_text(result.stdout)
        if all(e in text for e in expected):
            if screenshot is not None:
                subprocess.run([*flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
            return text
    pytest.fail(
        f"{[e for e in expected if e not in text]} not in the page {url}:\n{text[:1500]}\n...{text[-1500:]}"
    )


@pytest.mark.skipif(chromium() is None, reason="no chromium binary (.ci/run installs Debian's chromium)")
def test_the_ui_shows_a_sweeps_child_runs_and_their_miou_in_chromium(server, tmp_path, monkeypatch):
    url, _ = server
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _, children = log_sweep(url, "browser_sweep")
    exp_id = experiment_id(url, "browser_sweep")
    browser = chromium()

    # The runs page, sorted by mIoU: a sort lists the child runs flat instead of folded under the parent.
    # (workflowType: the UI's GenAI / Model-training switch; MLflow 3.17 defaults it to GenAI)
    runs_url = f"{url}/#/experiments/{exp_id}/runs?orderByKey=metrics.%60mIoU%60&orderByAsc=false"
    runs_url += "&workflowType=machine_learning"
    text = render(browser, runs_url, tmp_path / "profile", [*CHILDREN, "Sort: mIoU"])
    assert "sweep-embedded" in text  # the parent
    names = re.findall("|".join(CHILDREN), text)
    assert names[:3] == ["full-s0", "fca-s0", "baseline-s0"], names  # best mIoU first

    # The comparison view of the children: mIoU and PixAcc with their values, per run.
    ids = urllib.parse.quote(json.dumps(list(children.values())))
    experiments = urllib.parse.quote(json.dumps([exp_id]))
    compare_url = f"{url}/#/compare-runs?runs={ids}&experiments={experiments}&workflowType=machine_learning"
    png = tmp_path / "compare.png"
    text = render(browser, compare_url, tmp_path / "profile", ["mIoU", "PixAcc", *CHILDREN], screenshot=png)
    assert "Comparing 3 Runs" in text and "model.context" in text
    # its metrics table: the metric names, then each metric's values in run order
    values = " ".join(f"{v[k]:g}" for k in (3, 2) for v in CHILDREN.values())
    assert f"Metrics Show diff only PixAcc mIoU {values}" in text, text[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    if os.environ.get("WSFCN_UPDATE_SCREENSHOT") == "1":
        from PIL import Image

        SCREENSHOT.parent.mkdir(exist_ok=True)
        Image.open(png).convert("RGB").quantize(colors=64).save(SCREENSHOT, optimize=True)  # README-sized
