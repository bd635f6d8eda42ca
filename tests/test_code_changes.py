"""A result always comes from the code recorded beside it, shown with a real ``dvc repro`` in a clone.

One clone (tiny params, its own ``wsfcn`` first on ``PYTHONPATH`` so that edits there are the code
that runs) goes through, in order: a first ``dvc repro``; a change to the tables code only, which
``dvc status`` reports for the tables stage alone; a training killed with SIGKILL after a params change,
which the next ``dvc repro`` resumes (same params, same code); and a change to the loss code, after
which ``dvc repro`` trains again from epoch 1 and ``last.pt`` and ``dvc.lock`` change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers.tiny import TINY

from wsfcn.checkpoints import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# TINY with more images and steps, so a resumed or retrained run has epochs to tell apart
CHANGES = {
    **TINY,
    "data.root": "data",
    "data.downloads": "data/downloads",
    "data.synthetic.num_train": 48,
    "data.synthetic.num_val": 8,
    "data.synthetic.image_size": 48,
    "data.crop_size": 48,
    "train.epochs": 3,
    "train.max_steps_per_epoch": 6,
    "train.val_subset": 8,
    "train.figure_every": 0,
}

pytestmark = pytest.mark.slow


def set_params(clone: Path, values: dict) -> None:
    params = yaml.safe_load((clone / "params.yaml").read_text())
    for key, value in values.items():
        tree = params
        *parents, last = key.split(".")
        for part in parents:
            tree = tree.setdefault(part, {})
        tree[last] = value
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dvc_command() -> list[str]:
    return [str(Path(sys.executable).with_name("dvc"))]


def locked_md5(clone: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"][stage]
    return next(o["md5"] for o in lock["outs"] if o["path"] == path)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A clone of the committed tree with tiny params, after its first ``dvc repro``."""
    tmp = tmp_path_factory.mktemp("code_changes")
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    set_params(clone, CHANGES)
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(clone),  # the clone's wsfcn, edited below, is the code that runs
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def dvc(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*dvc_command(), *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
        )

    first = dvc("repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return clone, env, dvc


def changed_stages(dvc) -> set[str]:
    status = dvc("status", "--json", timeout=300)
    assert status.returncode == 0, status.stderr
    return set(json.loads(status.stdout or "{}"))


def test_1_a_tables_code_change_marks_only_the_tables_stage(pipeline):
    clone, _, dvc = pipeline
    assert changed_stages(dvc) == set()
    tables = clone / "wsfcn" / "stages" / "tables.py"
    original = tables.read_text()
    tables.write_text(original + "\n# a one-line change to the tables code\n")
    try:
        assert changed_stages(dvc) == {"tables"}
    finally:
        tables.write_text(original)
    assert changed_stages(dvc) == set()


def test_2_a_training_killed_mid_run_resumes_when_params_and_code_are_unchanged(pipeline):
    clone, env, dvc = pipeline
    set_params(clone, {"train.seed": 7})  # other params: the next training starts from scratch
    last = clone / "outputs" / "train" / "last.pt"
    proc = subprocess.Popen(
        [*dvc_command(), "repro"], cwd=clone, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline, killed_at = time.time() + 600, None
    while time.time() < deadline and proc.poll() is None:
        try:
            state = load_checkpoint(last, mmap=True)
        except CheckpointError:
            state = None
        if state is not None and state["params"]["train"]["seed"] == 7 and state["epoch"] >= 1:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = state["epoch"]
            break
        time.sleep(0.05)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == -signal.SIGKILL and killed_at is not None, output[-3000:]
    assert "training from scratch" in output and "params changed since" in output, output[-3000:]
    assert killed_at < CHANGES["train.epochs"]

    again = dvc("repro")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    said = again.stdout + again.stderr
    assert "resuming" in said and "training from scratch" not in said, said[-3000:]
    state = load_checkpoint(last)
    assert state["epoch"] == CHANGES["train.epochs"] and state["metrics"]["resumed_from"] >= killed_at
    assert changed_stages(dvc) == set()


def test_3_a_loss_code_change_trains_again_from_epoch_1(pipeline):
    clone, env, dvc = pipeline
    last_md5 = locked_md5(clone, "train", "outputs/train/last.pt")
    before = load_checkpoint(clone / "outputs" / "train" / "last.pt")
    losses = clone / "wsfcn" / "model" / "losses.py"
    losses.write_text(losses.read_text() + "\n# a change to the loss code\n")
    assert {"train", "infer", "tables"} <= changed_stages(dvc)

    again = dvc("repro")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    said = again.stdout + again.stderr
    assert "training code changed since" in said and "training from scratch" in said, said[-3000:]
    assert f"epoch 1/{CHANGES['train.epochs']}" in said and "resuming" not in said
    after = load_checkpoint(clone / "outputs" / "train" / "last.pt")
    assert after["code_fingerprint"] != before["code_fingerprint"]
    assert after["metrics"]["resumed_from"] == 0 and after["epoch"] == CHANGES["train.epochs"]
    assert locked_md5(clone, "train", "outputs/train/last.pt") != last_md5
    metrics = json.loads((clone / "outputs" / "train" / "metrics.json").read_text())
    assert metrics["code_fingerprint"] == after["code_fingerprint"]
    assert changed_stages(dvc) == set()
