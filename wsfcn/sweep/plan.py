"""Ablation sweeps (Tables I-V, method §12): an experiments file's runs × seeds as trials.

A sweep is one ``experiments/*.yaml`` at one setting (``embedded`` by default, ``paper`` on real
data). Each (run, seed) is a trial: train, predict ``infer.split`` from the best checkpoint
(``infer.*``), dense CRF when ``eval.crf``, evaluate (method §8.2), and log one MLflow child run
following the contract of :mod:`wsfcn.report.tables` under the sweep's parent run (tag
``wsfcn.sweep=<experiment>/<setting>``). A trial's files live in
``outputs/sweeps/<experiment>/<setting>/<run>-s<seed>/{train,infer,eval}``; runs whose training
params are equal (Tables III-V differ only in ``infer.*`` / ``eval.*``) train once, in the first
such run's ``train`` folder, guarded by a file lock. Across experiments too: a training another
experiment's sweep finished at the same setting with the same params and epochs (Table III's
trainings are Table I's ``full`` ones) is used where it lies, unless this experiment's own folder
already holds a run.

With a given checkpoint (``--checkpoint FILE``) nothing trains: every trial predicts from FILE (its
``infer.checkpoint``), its trial hash includes FILE's sha256, and its child is tagged as such
(:mod:`wsfcn.sweep.given`).

Resume: the newest parent of the experiment/setting is reopened; a (run, seed) whose child FINISHED
with the same trial hash is not redone, children left RUNNING by a killed driver become KILLED,
and an unfinished training continues from its ``last.pt``.

This module is the plan (trial specs, resume selection, tags, the outcome table). The trial body
is :mod:`wsfcn.sweep.trial` (the stages of :mod:`wsfcn.stages` in a row), the driver
:mod:`wsfcn.sweep.driver`, the resources :mod:`wsfcn.sweep.resources`; Ray Tune and the MLflow
parent run are reached through :mod:`wsfcn.integrations`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.code_version import training_code_fingerprint
from wsfcn.config import ConfigError, DataParams, Params
from wsfcn.experiments import Experiment
from wsfcn.integrations.mlflow_log import resolve_uri
from wsfcn.integrations.mlflow_sweep import PARENT_TAG, SWEEP_TAG, ChildRun
from wsfcn.params_coerce import flatten, to_dict
from wsfcn.params_io import digest, fingerprint, inactive_keys, params_from_dict, without_keys
from wsfcn.report.contract import TRAINED_BY_SWEEP_TAG, run_tags

HASH_TAG = "wsfcn.trial_hash"
# How a trial runs, not what it computes: left out of the trial hash.
NEUTRAL = ("train.out_dir", "train.run_name", "train.ray_address", "train.max_failures", "train.figure_every",
           "train.storage", "train.num_workers", "data.root", "data.downloads", "data.loader_workers",
           "infer.out_dir", "infer.checkpoint", "eval.out_dir", "eval.crf_params.processes", "tracking.",
           "tables.", "pseudo_masks.")  # fmt: skip


@dataclass(frozen=True)
class TrialSpec:
    """One (run, seed) of a sweep; ``params`` is the full plain params dict with absolute paths."""

    experiment: str
    setting: str
    run: str
    seed: int
    params: dict[str, Any]
    folder: str
    trial_hash: str
    root: str
    parent_run_id: str = ""
    checkpoint: str = ""  # a given checkpoint (absolute): no training, infer.checkpoint is this file
    checkpoint_sha256: str = ""

    @property
    def trial_id(self) -> str:
        return f"{self.run}-s{self.seed}"

    def to_params(self) -> Params:
        return params_from_dict(self.params, source=f"trial {self.trial_id}")


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended: FINISHED, FAILED, or SKIPPED (finished by an earlier run of the sweep)."""

    trial_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    run_id: str = ""


def trial_hash(params: Params, checkpoint_sha256: str = "") -> str:
    """sha256 (16 hex) of every param that changes a trial's numbers (paths and tracking left out),
    and of the given checkpoint's contents, if any."""
    flat = flatten(params)
    values = without_keys(flat, NEUTRAL + inactive_keys(flat))
    return digest(values | {"checkpoint.sha256": checkpoint_sha256} if checkpoint_sha256 else values)


def _training_key(params: Params) -> str:
    return f"{fingerprint(params)}-{training_code_fingerprint()}-{params.train.epochs}"


def finished_trainings(sweeps: Path, setting: str, exclude: Path) -> dict[str, Path]:
    """Training key (``fingerprint-code_fingerprint-epochs``, as :func:`_training_key`) → ``train``
    folder, for every readable ``last.pt`` of the sweeps under ``sweeps`` at ``setting`` outside
    ``exclude`` (read once, memory-mapped). A key that matches a trial's names a training of the same
    params, made by the same training code, that finished its ``train.epochs``.
    """
    from wsfcn.checkpoints import CheckpointError, load_checkpoint

    found: dict[str, Path] = {}
    for path in sorted(sweeps.glob(f"*/{setting}/*/train/last.pt")):
        if path.is_relative_to(exclude):
            continue
        try:
            state = load_checkpoint(path, mmap=True)
        except CheckpointError:  # a run killed during its first save
            continue
        key = f"{state.get('fingerprint')}-{state.get('code_fingerprint') or 'none'}-{state['epoch']}"
        found.setdefault(key, path.parent)
    return found


def _absolute(value: str, root: Path) -> str:
    return str((root / value).resolve()) if value and not Path(value).is_absolute() else value


def expand_trials(
    experiment: Experiment,
    setting: str,
    seeds: int | Sequence[int] = 1,
    *,
    runs: Sequence[str] | None = None,
    base: str | Path | None = "params.yaml",
    extra: dict[str, Any] | None = None,
    root: str | Path | None = None,
    out_root: str = "outputs/sweeps",
    checkpoint: str | Path | None = None,
    trials: Sequence[str] | None = None,
) -> list[TrialSpec]:
    """The trials of ``experiment`` at ``setting``: selected ``runs`` (file order) × seeds.

    ``seeds`` is a count N (seeds ``train.seed`` .. ``train.seed + N - 1``) or explicit seeds.
    ``extra`` (``--set``) wins over the file. Paths are made absolute from ``root`` (default cwd).
    ``checkpoint``: evaluate this file in every trial instead of training (``train.num_workers`` 0:
    the trial predicts in its own process). ``trials`` (``--trials``): only these ``<run>-s<seed>``
    ids among the selected ones (e.g. the seeds a cut sweep left, in a new MLflow store).
    """
    if setting not in experiment.settings:
        allowed = list(experiment.settings)
        raise ConfigError(f"{experiment.path}: no setting {setting!r}; settings are {allowed}")
    chosen = list(runs or experiment.runs)
    unknown = [r for r in chosen if r not in experiment.runs]
    if unknown:
        raise ConfigError(f"{experiment.path}: no run {unknown[0]!r}; runs are {list(experiment.runs)}")
    if isinstance(seeds, int) and seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    root = Path(root or Path.cwd()).resolve()
    given, given_sha = "", ""
    if checkpoint:
        from wsfcn.infer.manifest import file_sha256

        given = _absolute(str(checkpoint), root)
        if not Path(given).is_file():
            raise ConfigError(f"--checkpoint {checkpoint}: no such file")
        given_sha = file_sha256(given)
    base_dir = root / out_root / experiment.name / setting
    owner: dict[str, Path] = {}  # training key -> train folder (over ALL runs, so --runs does not move it)
    elsewhere = {} if given else finished_trainings(root / out_root, setting, exclude=base_dir)
    specs = []
    pairs = []  # seed-major: each run's first seed, then each second ... (a cut sweep keeps whole seeds)
    for order, run in enumerate(experiment.runs):
        first = experiment.params(run, setting, base=base, extra=extra)
        run_seeds = range(first.train.seed, first.train.seed + seeds) if isinstance(seeds, int) else seeds
        pairs += [(index, order, run, seed) for index, seed in enumerate(run_seeds)]
    for _, _, run, seed in sorted(pairs):
        folder = base_dir / f"{run}-s{seed}"
        params = experiment.params(run, setting, base=base, extra={**(extra or {}), "train.seed": seed})
        key = _training_key(params)
        if key not in owner:  # a run of its own (even unfinished) is kept rather than another's
            own = (folder / "train" / "last.pt").exists()
            owner[key] = (None if own else elsewhere.get(key)) or folder / "train"
        train_dir = owner[key]
        paths = {
            "train.seed": seed,
            "train.run_name": f"{run}-s{seed}",
            "train.out_dir": str(train_dir),
            "infer.checkpoint": str(train_dir / "best.pt"),
            "infer.out_dir": str(folder / "infer"),
            "eval.out_dir": str(folder / "eval"),
            "data.root": _absolute(params.data.root, root),
            "data.downloads": _absolute(params.data.downloads, root),
            "model.pretrained": _absolute(params.model.pretrained, root),
            "tracking.uri": resolve_uri(params.tracking.uri, root),
        }
        paths |= {"infer.checkpoint": given, "train.num_workers": 0} if given else {}
        params = experiment.params(run, setting, base=base, extra={**(extra or {}), **paths})
        if run in chosen and (not trials or f"{run}-s{seed}" in trials):
            specs.append(
                TrialSpec(
                    experiment.name,
                    setting,
                    run,
                    seed,
                    to_dict(params),
                    str(folder),
                    trial_hash(params, given_sha),
                    str(root),
                    checkpoint=given,
                    checkpoint_sha256=given_sha,
                )  # fmt: skip
            )
    missing = sorted(set(trials or ()) - {s.trial_id for s in specs})
    if missing:
        raise ConfigError(f"--trials {missing[0]}: not a trial of the selected runs and seeds")
    return specs


def select_pending(
    specs: Sequence[TrialSpec], children: Sequence[ChildRun]
) -> tuple[list[TrialSpec], list[TrialOutcome], list[str]]:
    """Split ``specs`` into those to run and those already finished; list stale RUNNING children.

    A trial is finished when a FINISHED child (``children`` oldest first; the latest wins) has its
    ``wsfcn.run``, ``wsfcn.seed`` and trial hash; one finished with other params (an edited
    experiments file or ``--set``) is redone. Finished trials come back as SKIPPED outcomes.
    """
    done = {
        (c.tags.get("wsfcn.run"), c.tags.get("wsfcn.seed"), c.tags.get(HASH_TAG)): c
        for c in children
        if c.status == "FINISHED"
    }
    todo, skipped = [], []
    for spec in specs:
        child = done.get((spec.run, str(spec.seed), spec.trial_hash))
        if child is None:
            todo.append(spec)
        else:
            metrics = {k: v for k, v in child.metrics.items() if k in ("mIoU", "PixAcc", "n_params")}
            skipped.append(TrialOutcome(spec.trial_id, "SKIPPED", metrics, run_id=child.run_id))
    stale = [c.run_id for c in children if c.status == "RUNNING"]
    return todo, skipped, stale


def count_outcomes(outcomes: Iterable[TrialOutcome]) -> dict[str, int]:
    """``{"finished": n, "failed": n, "skipped": n}``."""
    statuses = [o.status for o in outcomes]
    return {k.lower(): statuses.count(k) for k in ("FINISHED", "FAILED", "SKIPPED")}


def child_tags(spec: TrialSpec, params: Params) -> dict[str, str]:
    """The logging contract's tags (:mod:`wsfcn.report.contract`) plus the sweep's parent / trial
    bookkeeping."""
    return {
        **run_tags(spec.experiment, spec.run, spec.setting, spec.seed, params.data.name),
        "wsfcn.trial": spec.trial_id,
        HASH_TAG: spec.trial_hash,
        SWEEP_TAG: f"{spec.experiment}/{spec.setting}",
        PARENT_TAG: spec.parent_run_id,
        TRAINED_BY_SWEEP_TAG: "false" if spec.checkpoint else "true",
    }


def distinct_data(datas: Iterable[DataParams]) -> list[DataParams]:
    """The distinct ``data`` sections; two that differ but write the same prepared folder raise."""
    seen: dict[str, DataParams] = {}
    folders: dict[Path, str] = {}
    for data in datas:
        key = json.dumps(to_dict(data), sort_keys=True)
        if key in seen:
            continue
        folder = Path(data.root) / data.name
        if folder in folders:
            raise ConfigError(
                f"two data settings of this sweep would both prepare {folder}: give them different "
                f"data.root values (first: {folders[folder]}, second: {key})"
            )
        seen[key], folders[folder] = data, key
    return list(seen.values())


def with_parent(specs: Sequence[TrialSpec], parent_run_id: str) -> list[TrialSpec]:
    return [dataclasses.replace(s, parent_run_id=parent_run_id) for s in specs]


def format_outcomes(outcomes: Sequence[TrialOutcome]) -> str:
    """A plain-text table of the trials, then every error in full."""
    lines = [f"{'trial':<24} {'status':<9} {'mIoU':>7} {'PixAcc':>7}  run"]
    for o in outcomes:
        miou, acc = (f"{o.metrics[k]:.2f}" if k in o.metrics else "–" for k in ("mIoU", "PixAcc"))
        lines.append(f"{o.trial_id:<24} {o.status:<9} {miou:>7} {acc:>7}  {o.run_id}")
    lines += [f"FAILED {o.trial_id}: {o.error}" for o in outcomes if o.status == "FAILED"]
    return "\n".join(lines)
