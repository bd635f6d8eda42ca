"""A stage script (``pipeline/<name>.py``) loaded as a module, so a test calls its ``main`` in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"


def load_stage(name: str) -> ModuleType:
    """``pipeline/<name>.py`` as a fresh module named ``pipeline_<name>``."""
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", PIPELINE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
