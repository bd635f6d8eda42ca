"""The DVC pipeline: stage order, and a smoke ``dvc repro`` in a temporary git clone."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.tiny import TINY

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["download", "prepare", "train", "infer", "crf", "evaluate", "tables"]
ON_DEMAND = ["pseudo_masks"]  # run by name (dvc repro pseudo_masks); nothing depends on them
# TINY at 48 px with more images, so the stages (and the quick val subset) have something to cover
SMOKE = {
    **TINY,
    "data.root": "data",
    "data.downloads": "data/downloads",
    "data.synthetic.num_train": 32,
    "data.synthetic.num_val": 8,
    "data.synthetic.image_size": 48,
    "data.crop_size": 48,
    "train.val_subset": 8,
}


def dvc(*args, cwd, env=None, timeout=600):
    dvc_bin = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    return subprocess.run([dvc_bin, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def stage_order(cwd) -> list[str]:
    """Stages in the order ``dvc dag --dot`` edges imply (a topological order)."""
    with open(Path(cwd) / "dvc.yaml") as f:
        return list(yaml.safe_load(f)["stages"])


def test_dag_has_the_stages_in_order():
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = dvc("dag", "--dot", cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    edges = {
        tuple(part.strip().strip('"') for part in line.strip().rstrip(";").split("->"))
        for line in result.stdout.splitlines()
        if "->" in line
    }
    for upstream, downstream in zip(STAGES, STAGES[1:], strict=False):
        assert (upstream, downstream) in edges or upstream == "crf" or downstream == "crf", (
            upstream,
            downstream,
        )
    assert ("download", "prepare") in edges and ("prepare", "train") in edges and ("train", "infer") in edges
    assert ("infer", "crf") in edges and ("crf", "evaluate") in edges and ("evaluate", "tables") in edges
    assert stage_order(ROOT) == STAGES + ON_DEMAND
    assert not {edge for edge in edges if edge[0] in ON_DEMAND}  # the default chain never waits for them
    assert ("train", "pseudo_masks") in edges


def set_dotted(tree, key, value):
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


@pytest.mark.slow
def test_smoke_dvc_repro_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    for key, value in SMOKE.items():
        set_dotted(params, key, value)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    first = dvc("repro", cwd=clone, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    metrics = json.loads((clone / "outputs/eval/metrics.json").read_text())
    assert 0.0 <= metrics["mIoU"] <= 100.0 and 0.0 <= metrics["PixAcc"] <= 100.0
    assert (clone / "tables/table1.md").is_file()
    assert "Table I" in first.stdout  # the tables stage prints Table I at the end
    second = dvc("repro", cwd=clone, env=env)
    assert second.returncode == 0, second.stderr
    assert "Data and pipelines are up to date" in second.stdout, second.stdout
    shown = dvc("metrics", "show", "--json", cwd=clone, env=env, timeout=120)
    assert shown.returncode == 0 and "mIoU" in shown.stdout and "PixAcc" in shown.stdout


def test_a_given_checkpoint_takes_train_out_of_the_dag(tmp_path):
    """docs/released-model.md, "From the released model with DVC": ``dvc exp run -S
    infer.checkpoint=FILE tables`` (or ``dvc repro tables`` with that param) runs infer → crf →
    evaluate → tables, never train."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    shutil.copy(ROOT / "dvc.yaml", clone / "dvc.yaml")  # the working tree's, committed or not
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def upstream_of_tables() -> set[str]:
        result = dvc("dag", "--dot", "tables", cwd=clone, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return {part.strip().strip('"') for line in result.stdout.splitlines() if "->" in line
                for part in line.strip().rstrip(";").split("->")}  # fmt: skip

    assert {"train", "infer", "crf", "evaluate", "tables"} <= upstream_of_tables()
    params = yaml.safe_load((clone / "params.yaml").read_text())
    set_dotted(params, "infer.checkpoint", "models/ws-fcn.pt")
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert upstream_of_tables() == {"infer", "crf", "evaluate", "tables"}
