"""dvc.yaml deps that cannot drift: each stage's script is run on the tiny params and the ``wsfcn``
modules it really loaded must all be covered by that stage's ``deps`` (a file or a folder above it),
so DVC never skips a stage whose code changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["download", "prepare", "train", "infer", "crf", "evaluate", "tables"]
TABLE1 = str(ROOT / "experiments" / "table1_ablation.yaml")
EXTRA_ARGS = {"tables": ["--pipeline-metrics", "outputs/eval/metrics.json", "--experiments", TABLE1]}


def module_file(name: str) -> str:
    parts = name.split(".")
    package = ROOT.joinpath(*parts, "__init__.py")
    path = package if package.is_file() else ROOT.joinpath(*parts[:-1], parts[-1] + ".py")
    return str(path.relative_to(ROOT))


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def missing_deps(modules: list[str], deps: list[str]) -> list[str]:
    files = {module_file(m) for m in modules}
    files.discard("wsfcn/__init__.py")  # a docstring only
    return sorted(f for f in files if not covered(f, deps))


@pytest.mark.slow
def test_each_stage_lists_every_wsfcn_module_it_loads(tmp_path, run_stage):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ORDER
    sets = {"eval.crf": True}  # so the crf stage really runs (and infer saves probabilities)
    report = {}
    for name in ORDER:
        record = tmp_path / f"{name}.modules.json"
        args = EXTRA_ARGS.get(name, ["--quiet"])  # tables has no --quiet
        done = run_stage(name, *args, sets=sets, modules=record)
        assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        deps = [d for d in stages[name]["deps"] if not d.startswith("$")]
        report[name] = missing_deps(json.loads(record.read_text()), deps)
    assert {k: v for k, v in report.items() if v} == {}, f"dvc.yaml misses deps: {report}"


def test_the_check_itself_finds_a_missing_module():
    assert missing_deps(["wsfcn.stages", "wsfcn.data.io"], ["wsfcn/data"]) == ["wsfcn/stages.py"]
    assert missing_deps(["wsfcn.model.pamr"], ["wsfcn/model"]) == []
    assert module_file("wsfcn.data") == "wsfcn/data/__init__.py"
