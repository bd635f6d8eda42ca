"""``experiments/*.yaml``: one file per paper table, each a set of named runs over ``params.yaml``.

A file has a ``caption``, ``common`` overrides, ``settings`` (``paper``: the paper's data, backbone and
schedule; ``embedded``: the synthetic benchmark on a CPU), ``runs`` (run name -> dotted overrides),
``setting_runs`` and the paper's numbers (``paper``). A setting may start from a shared base file,
``base: settings/paper.yaml`` (relative to the experiments file), so the paper setting is written once
and every table refers to it; the setting's own keys win over its base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.config import ConfigError, Params
from wsfcn.params_yaml import load_params, read_yaml


@dataclass(frozen=True)
class Experiment:
    """One paper table: a caption, named runs, and the settings they run at.

    ``settings`` maps a setting name to overrides: ``paper`` (the paper's data, backbone and schedule)
    and ``embedded`` (the synthetic benchmark on a CPU). The overrides of a run are
    ``common`` + ``settings[setting]`` + ``runs[run]`` + ``setting_runs[setting][run]`` (later wins);
    ``setting_runs`` holds what one run needs only at one setting (the baseline's head learning rate,
    which method §6.1 sets to half WS-FCN's and so depends on the setting's own multiplier).
    """

    name: str
    caption: str
    common: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = ""
    setting_runs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    reference: str = ""  # a run the others are tested against (Welch's t-test over seeds), "" = none

    def overrides(self, run: str, setting: str | None = None) -> dict[str, Any]:
        """Dotted overrides of ``run`` at ``setting`` (None: no setting block)."""
        if run not in self.runs:
            raise ConfigError(f"{self.path}: no run {run!r}; runs are {list(self.runs)}")
        if setting is not None and setting not in self.settings:
            raise ConfigError(f"{self.path}: no setting {setting!r}; settings are {list(self.settings)}")
        merged = dict(self.common)
        merged.update(self.settings.get(setting, {}) if setting else {})
        merged.update(self.runs[run] or {})
        if setting:
            merged.update(self.setting_runs.get(setting, {}).get(run) or {})
        return merged

    def params(
        self,
        run: str,
        setting: str | None = None,
        base: str | Path | None = "params.yaml",
        extra: dict[str, Any] | None = None,
    ) -> Params:
        """The run's full ``Params``: ``base`` + the run's overrides at ``setting`` + ``extra``."""
        merged = self.overrides(run, setting)
        merged.update(extra or {})
        try:
            return load_params(base, merged)
        except ConfigError as err:
            raise ConfigError(
                f"{self.path}: run {run!r}{f' at setting {setting!r}' if setting else ''}: {err}"
            ) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read an ``experiments/*.yaml`` file.

    Keys: name, caption, common, settings, runs, setting_runs, paper, reference.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file {path} does not exist")
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (name, caption, common, settings, runs)")
    allowed = {"name", "caption", "common", "settings", "runs", "setting_runs", "paper", "reference"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    runs = raw.get("runs") or {}
    if not isinstance(runs, dict) or not runs:
        raise ConfigError(f"{path}: 'runs' must be a non-empty mapping of run name -> overrides")
    reference = str(raw.get("reference") or "")
    if reference and reference not in runs:
        raise ConfigError(f"{path}: reference {reference!r} is not a run; runs are {list(runs)}")
    settings = {k: resolve_setting(path, k, v) for k, v in (raw.get("settings") or {}).items()}
    setting_runs = {k: (v or {}) for k, v in (raw.get("setting_runs") or {}).items()}
    for setting, per_run in setting_runs.items():
        if setting not in settings:
            known = list(settings)
            raise ConfigError(f"{path}: setting_runs names setting {setting!r}; settings are {known}")
        unknown_runs = [r for r in per_run if r not in runs]
        if unknown_runs:
            raise ConfigError(
                f"{path}: setting_runs.{setting} names run {unknown_runs[0]!r}; runs are {list(runs)}"
            )
    return Experiment(
        name=raw.get("name", path.stem),
        caption=raw.get("caption", ""),
        common=raw.get("common") or {},
        settings=settings,
        runs={k: (v or {}) for k, v in runs.items()},
        paper=raw.get("paper") or {},
        path=str(path),
        setting_runs=setting_runs,
        reference=reference,
    )


def resolve_setting(path: Path, name: str, block: dict[str, Any] | None) -> dict[str, Any]:
    """A setting's overrides: its ``base`` file's (if any), then its own keys."""
    block = dict(block or {})
    base = block.pop("base", None)
    if base is None:
        return block
    base_path = path.parent / str(base)
    if not base_path.is_file():
        raise ConfigError(f"{path}: settings.{name}.base {base!r} does not exist ({base_path})")
    shared = read_yaml(base_path) or {}
    if not isinstance(shared, dict) or "base" in shared:
        raise ConfigError(f"{base_path}: a setting base is a flat mapping of dotted keys (no nested base)")
    return {**shared, **block}


def experiment_run_params(
    path: str | Path, run: str, setting: str | None, base: str | Path | None, overrides: dict[str, Any]
) -> tuple[Params, str]:
    """One run of an experiments file as a stand-alone training: its params and MLflow experiment name.

    ``train.run_name`` defaults to the run's name and ``train.out_dir`` to ``<out_dir>/<experiment>/<run>``
    (so the runs of a table do not collide); ``overrides`` (``--set``) win over the file.
    """
    experiment = load_experiment(path)
    explicit = {**experiment.overrides(run, setting), **overrides}
    extra = dict(overrides)
    extra.setdefault("train.run_name", run)
    if "train.out_dir" not in explicit:
        extra["train.out_dir"] = str(Path(load_params(base).train.out_dir) / experiment.name / run)
    return experiment.params(run, setting, base=base, extra=extra), experiment.name
