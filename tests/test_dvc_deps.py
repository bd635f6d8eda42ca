"""dvc.yaml deps that cannot drift, in both directions: each stage lists exactly the ``wsfcn`` modules
its script may import (read from the source, lazy imports included), so DVC re-runs a stage whose code
changed and no stage whose code did not. Running each stage on the tiny params checks that the static
reading misses no module that is really loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wsfcn.code_version import direct_imports, import_closure, stage_sources

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["download", "prepare", "train", "infer", "crf", "evaluate", "tables", "pseudo_masks"]
TABLE1 = str(ROOT / "experiments" / "table1_ablation.yaml")
EXTRA_ARGS = {"tables": ["--pipeline-metrics", "outputs/eval/metrics.json", "--experiments", TABLE1]}
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> str:
    parts = name.split(".")
    package = ROOT.joinpath(*parts, "__init__.py")
    path = package if package.is_file() else ROOT.joinpath(*parts[:-1], parts[-1] + ".py")
    return str(path.relative_to(ROOT))


def listed_files(deps: list[str]) -> set[str]:
    """The ``wsfcn/*.py`` files that ``deps`` cover (a folder: every module below it)."""
    files = set()
    for dep in deps:
        path = ROOT / dep
        if not dep.startswith("wsfcn/"):
            continue
        if path.is_dir():
            files |= {str(p.relative_to(ROOT)) for p in path.rglob("*.py")}
        else:
            files.add(dep)
    return files


def expected_files(stage: str) -> set[str]:
    script = ROOT / "pipeline" / f"{stage}.py"
    return {str(p.relative_to(ROOT)) for p in stage_sources(direct_imports(script))}


def code_deps(stage: str) -> list[str]:
    return [d for d in STAGES[stage]["deps"] if not d.startswith("$")]


@pytest.mark.parametrize("stage", ORDER)
def test_each_stage_lists_exactly_the_code_its_script_imports(stage):
    deps = code_deps(stage)
    assert f"pipeline/{stage}.py" in deps
    missing = sorted(expected_files(stage) - listed_files(deps))
    extra = sorted(listed_files(deps) - expected_files(stage))
    assert not missing, f"dvc.yaml {stage} misses deps: {missing}"
    assert not extra, f"dvc.yaml {stage} lists code it does not import: {extra}"
    for dep in deps:  # every listed path exists (a renamed module cannot linger)
        assert (ROOT / dep).exists(), f"dvc.yaml {stage}: {dep} does not exist"


def test_a_code_change_reaches_exactly_the_stages_that_run_it():
    def stages_running(path: str) -> set[str]:
        return {s for s in ORDER if path in listed_files(code_deps(s))}

    assert stages_running("wsfcn/stages/tables.py") == {"tables"}
    assert stages_running("wsfcn/report/tables.py") == {"tables"}
    # tables: param counts; pseudo_masks: inference on the training split
    assert stages_running("wsfcn/model/losses.py") == {"train", "infer", "tables", "pseudo_masks"}
    assert stages_running("wsfcn/infer/multiscale.py") == {"infer", "pseudo_masks"}  # never retrains
    assert stages_running("wsfcn/train/loop.py") == {"train"}
    assert stages_running("wsfcn/infer/crf.py") == {"infer", "crf", "pseudo_masks"}
    assert stages_running("wsfcn/data/tags.py") == {"download", "prepare"}


def test_the_static_reading_follows_lazy_and_parent_imports(tmp_path):
    package = tmp_path / "wsfcn"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""doc"""\n')
    (package / "sub" / "__init__.py").write_text("from wsfcn import base\n")
    (package / "base.py").write_text("X = 1\n")
    (package / "lazy.py").write_text("def f():\n    from wsfcn.sub.leaf import g\n    return g\n")
    (package / "sub" / "leaf.py").write_text("import importlib\nM = importlib.import_module('wsfcn.named')\n")
    (package / "named.py").write_text("")
    (package / "unused.py").write_text("")
    found = import_closure(["wsfcn.lazy"], package)
    assert found == {"wsfcn", "wsfcn.lazy", "wsfcn.sub", "wsfcn.sub.leaf", "wsfcn.base", "wsfcn.named"}


@pytest.mark.slow
def test_each_stage_really_loads_only_modules_its_deps_list(tmp_path, run_stage):
    assert list(STAGES) == ORDER
    sets = {"eval.crf": True}  # so the crf stage really runs (and infer saves probabilities)
    report = {}
    for name in ORDER:
        record = tmp_path / f"{name}.modules.json"
        args = EXTRA_ARGS.get(name, ["--quiet"])  # tables has no --quiet
        done = run_stage(name, *args, sets=sets, modules=record)
        assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        loaded = {module_file(m) for m in json.loads(record.read_text())} - {"wsfcn/__init__.py"}
        report[name] = sorted(loaded - listed_files(code_deps(name)))
    assert {k: v for k, v in report.items() if v} == {}, f"dvc.yaml misses deps: {report}"
