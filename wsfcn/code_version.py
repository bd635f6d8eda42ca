"""Which source a stage runs, and the training-code fingerprint stored beside every training.

The import graph of ``wsfcn`` is read from the source with ``ast``: ``import``/``from … import`` at
any depth (a function-level, lazy import counts), and a string constant that names a ``wsfcn``
module (``importlib.import_module`` tables such as ``wsfcn/data/__init__.py``'s). Importing a module
also runs its parent packages' ``__init__.py``, so those are part of what it imports.

* :func:`stage_sources` is the closure of a stage module: the files ``dvc.yaml`` lists as that
  stage's code dependencies (``tests/test_dvc_deps.py`` checks both directions).
* :func:`training_code_fingerprint` hashes the train stage's closure (:data:`TRAINING_ENTRY`) and the
  torch version. A checkpoint stores it beside the params fingerprint; a run resumes from, and a
  sweep reuses, only a training whose two fingerprints both equal its own.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TRAINING_ENTRY = "wsfcn.stages.train"
# The package's own __init__.py holds only the floor plan (a docstring, tests/test_layout.py): left out.
DOCSTRING_ONLY = ("wsfcn",)


def module_path(name: str, package: Path = PACKAGE) -> Path | None:
    """The file of module ``name`` (``wsfcn.a.b``), or None when it is no module of ``package``."""
    parts = name.split(".")
    if parts[0] != package.name:
        return None
    base = package.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``wsfcn/a/b.py`` → ``wsfcn.a.b``; ``wsfcn/a/__init__.py`` → ``wsfcn.a``."""
    parts = (package.name, *path.resolve().relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def direct_imports(path: Path, package: Path = PACKAGE, *, named_in_strings: bool = True) -> set[str]:
    """The ``package`` modules that ``path`` (inside ``package`` or a script outside it) imports, at any
    depth, or, with ``named_in_strings``, names in a string constant."""
    root = package.name
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == root}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == root:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_path(sub, package) else node.module)
        elif named_in_strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = node.value.startswith(root + ".") and module_path(node.value, package)
            found |= {node.value} if named else set()
    found = {name for name in found if module_path(name, package)}
    inside = path.resolve().is_relative_to(package)
    return found - {module_name(path, package)} if inside else found


def with_parents(name: str) -> list[str]:
    """``a.b.c`` → ``[a, a.b, a.b.c]``: what importing ``name`` runs."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_closure(entries: Iterable[str], package: Path = PACKAGE) -> set[str]:
    """Every ``package`` module that importing ``entries`` may run (parents' ``__init__`` included)."""
    seen: set[str] = set()
    todo = [p for e in entries for p in with_parents(e)]
    while todo:
        name = todo.pop()
        if name in seen or module_path(name, package) is None:
            continue
        seen.add(name)
        todo += [p for m in direct_imports(module_path(name, package), package) for p in with_parents(m)]
    return seen


def stage_sources(entries: Iterable[str], package: Path = PACKAGE) -> list[Path]:
    """The source files of :func:`import_closure` (``wsfcn/__init__.py`` left out), sorted."""
    names = import_closure(entries, package) - set(DOCSTRING_ONLY)
    return sorted(module_path(n, package) for n in names)


def source_digest(files: Iterable[Path], root: Path, extra: dict[str, str] | None = None) -> str:
    """sha256 (16 hex) of each file's path below ``root`` and bytes, plus ``extra`` (name → value)."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(str(path.resolve().relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for key, value in sorted((extra or {}).items()):
        h.update(f"{key}={value}\0".encode())
    return h.hexdigest()[:16]


@functools.cache
def training_code_fingerprint() -> str:
    """sha256 (16 hex) of the train stage's source files and the torch version (once per process)."""
    import torch

    files = stage_sources([TRAINING_ENTRY])
    return source_digest(files, PACKAGE.parent, {"torch": torch.__version__})
