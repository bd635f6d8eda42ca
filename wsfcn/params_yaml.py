"""Reading parameters: ``params.yaml`` and ``--set key=value`` overrides → a validated ``Params``.

:func:`load_params` is the one function that reads configuration; the schema is :mod:`wsfcn.config`,
the type checks :mod:`wsfcn.params_coerce`. A bad file, override or value raises
:class:`~wsfcn.config.ConfigError` naming the file (and line) or the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wsfcn.config import ConfigError, Params
from wsfcn.params_coerce import build_dataclass


def load_params(
    path: str | Path | None = "params.yaml", overrides: dict[str, Any] | list[str] = ()
) -> Params:
    """Read ``path`` (None: defaults only) and apply dotted overrides; return a validated ``Params``.

    ``overrides`` is a mapping ``{"model.context": "ppm"}`` or a list of ``"key=value"`` strings
    whose values are parsed as YAML (``--set train.epochs=3``).
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"parameter file {path} does not exist")
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for key, value in parse_overrides(overrides).items():
        set_dotted(raw, key, value)
    return build_dataclass(Params, raw, "")


def parse_overrides(overrides: dict[str, Any] | list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` → ``{"a.b": 1, "c": "x"}``; a mapping is returned as is."""
    if isinstance(overrides, dict):
        return dict(overrides)
    parsed = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        parsed[key.strip()] = _parse_value(key.strip(), value) if value.strip() else ""
    return parsed


def _parse_value(key: str, value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--set {key}={value}: not a YAML value ({problem})") from None


def read_yaml(path: str | Path) -> Any:
    """Parse a UTF-8 YAML file; bad encoding or syntax raises :class:`ConfigError` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for ``key="a.b"``, creating sections as needed."""
    parts = key.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value
