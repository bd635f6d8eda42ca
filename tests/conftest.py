"""Shared fixtures: the real ``params.yaml`` forced tiny, and a stage run by name.

As lightning-hydra-template's conftest does, tests start from the configuration users run and force
it small with the one tiny configuration (``helpers.tiny.TINY``: a 16+6 image synthetic set of 32 px,
2 epochs of 2 steps, in-process loading), outputs and the MLflow store under the test's tmp_path,
instead of writing their own params.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.tiny import TINY, tiny_paths

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


@pytest.fixture
def tiny_overrides(tmp_path: Path) -> dict[str, Any]:
    """The dotted overrides that make the real params.yaml tiny and keep every output in tmp_path."""
    return {**TINY, **tiny_paths(tmp_path)}


@pytest.fixture
def tiny_params(tiny_overrides: dict[str, Any]):
    """The real params.yaml, forced tiny (``helpers.tiny.TINY``), outputs under tmp_path."""
    from wsfcn.params_yaml import load_params

    return load_params(PARAMS, tiny_overrides)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


StageRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_stage(tmp_path: Path, tiny_overrides: dict[str, Any]) -> StageRunner:
    """``run_stage(name, *args, sets={...}, modules=None)``: ``python pipeline/<name>.py`` on the tiny
    params in a subprocess (cwd tmp_path). ``modules``: a file that receives the sorted list of the
    ``wsfcn`` modules the stage loaded, as JSON."""

    def run(name: str, *args: str, sets: dict[str, Any] | None = None, modules: Path | None = None):
        argv = [str(ROOT / "pipeline" / f"{name}.py"), "--params", str(PARAMS)]
        for key, value in {**tiny_overrides, **(sets or {})}.items():
            argv += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
        argv += list(args)
        if modules is None:
            command = [sys.executable, *argv]
        else:
            record = (
                "import atexit, json, runpy, sys\n"
                "loaded = lambda: sorted(m for m in sys.modules if m.split('.')[0] == 'wsfcn')\n"
                f"atexit.register(lambda: json.dump(loaded(), open({str(modules)!r}, 'w')))\n"
                f"sys.argv = {argv!r}\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n"
            )
            command = [sys.executable, "-c", record]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        env.pop("MLFLOW_TRACKING_URI", None)
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    return run
