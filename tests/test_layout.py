"""The house rules of ``wsfcn/``: floors without upward imports, no import circle, Ray and MLflow only
in ``wsfcn/integrations/``, thin stage scripts, and tests that import no private name.

The import graph is read from the source (``wsfcn.code_version.direct_imports``: function-level imports
included), so a lazy import counts as much as a top-level one.
"""

from __future__ import annotations

import re
from pathlib import Path

from wsfcn.code_version import direct_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wsfcn"

# Lower floors never import higher ones (peers on a floor may import each other, without a circle).
FLOORS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("wsfcn", "wsfcn.errors", "wsfcn.config", "wsfcn.splits", "wsfcn.params_yaml", "wsfcn.params_coerce",
         "wsfcn.params_io", "wsfcn.experiments", "wsfcn.device", "wsfcn.arguments", "wsfcn.units")),
    (1, ("wsfcn.data",)),
    (2, ("wsfcn.model",)),
    (3, ("wsfcn.checkpoints", "wsfcn.train", "wsfcn.infer", "wsfcn.evaluate", "wsfcn.report")),
    (4, ("wsfcn.integrations",)),
    (5, ("wsfcn.stages",)),
    (6, ("wsfcn.sweep",)),
    (7, ("wsfcn.entry", "wsfcn.commands", "wsfcn.cli")),
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def floor_of(module: str) -> int:
    best = max(
        ((len(prefix), floor) for floor, prefixes in FLOORS for prefix in prefixes
         if module == prefix or module.startswith(prefix + ".")),
        default=None,
    )  # fmt: skip
    assert best is not None, f"{module} is on no floor of tests/test_layout.py"
    return best[1]


GRAPH = {name: direct_imports(path, PACKAGE, named_in_strings=False) for name, path in MODULES.items()}


def test_every_module_is_on_a_floor_and_imports_no_higher_floor():
    upward = [
        f"{a} (floor {floor_of(a)}) imports {b} (floor {floor_of(b)})"
        for a, targets in GRAPH.items()
        for b in targets
        if floor_of(b) > floor_of(a)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(circles)


def test_ray_and_mlflow_are_imported_only_in_integrations():
    pattern = re.compile(r"^\s*(import (ray|mlflow)\b|from (ray|mlflow)\b)", re.M)
    outside = [str(p.relative_to(ROOT)) for p in MODULES.values()
               if "integrations" not in p.parts and pattern.search(p.read_text())]  # fmt: skip
    assert outside == []


def test_stage_scripts_are_thin():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "pipeline").glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 60} == {}


def test_no_test_imports_a_private_name():
    private = re.compile(r"^\s*from wsfcn[\w.]* import [^\n]*\b_[a-z]\w*", re.M)
    offenders = [p.name for p in (ROOT / "tests").glob("*.py") if private.search(p.read_text())]
    assert offenders == []
