"""Paper tables from MLflow runs (method §12): pure functions on pandas DataFrames.

Input is a DataFrame shaped like ``mlflow.search_runs`` (``wsfcn.integrations.mlflow_query``), so tests
can feed hand-made rows. Output is one :class:`Table` per ``experiments/*.yaml`` file: its runs in
file order beside the paper's numbers; Tables IV and V also get the paper's comparison rows.

Logging contract (what training / ``pipeline/ablate.py`` log, one MLflow run per run × setting × seed):

* MLflow experiment name = the experiment file's ``name`` (e.g. ``table1_ablation``).
* tags ``wsfcn.experiment`` (the file's ``name``), ``wsfcn.run`` (a key of its ``runs``),
  ``wsfcn.setting`` (``paper`` | ``embedded`` | ...), ``wsfcn.seed`` (integer ``train.seed``),
  ``wsfcn.dataset`` (``data.name``: ``voc`` | ``coco`` | ``synthetic``).
* metrics ``mIoU`` and ``PixAcc`` in **percent** (0-100, as the paper prints; mIoU over all classes
  incl. background, method §8.2) of the final evaluation on the run's ``infer.split``; ``n_params`` =
  trainable parameters (an integer count, method §11). A run without masks (VOC test) logs no mIoU.
* a run that evaluated a checkpoint the sweep did not train (``pipeline/ablate.py --checkpoint``) is
  tagged ``wsfcn.trained_by_sweep=false`` (trained runs: ``true`` or no tag) and ``wsfcn.checkpoint``
  (path), ``wsfcn.checkpoint.sha256`` (of that file) and the checkpoint's provenance as
  ``wsfcn.checkpoint.<key>`` (``source``, ``source_sha256``, ``note`` ...). Such runs get rows of
  their own ("released checkpoint" when the note says it was converted from the authors' release,
  else "given checkpoint"), never averaged with trained runs. A run whose param ``infer.max_images``
  is > 0 was evaluated on a subset of the split; its row says so.
* only runs with ``status == "FINISHED"`` count. Several runs of one (run, seed): the latest
  (``start_time``) wins. Ours = mean ± sample std (ddof 1) over seeds, with n.

Presentation rules: a missing value is "–", never 0. Runs on the embedded synthetic data are labelled
"embedded synthetic benchmark (not VOC)" and get no Δ against (nor a place among) the paper's VOC/COCO
numbers. Params (M) "ours" is the paper-setting model: logged ``n_params`` of paper-setting runs, else
the count passed in ``param_counts`` (``wsfcn.commands.count_params.count_experiment``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wsfcn.experiments import Experiment

TAGS = ("experiment", "run", "setting", "seed", "dataset")
TAG_COLUMNS = {tag: f"tags.wsfcn.{tag}" for tag in TAGS}
METRICS = ("mIoU", "PixAcc")
MISSING = "–"
DATASET_NAMES = {"voc": ("VOC", "PASCAL VOC 2012"), "coco": ("COCO", "MS COCO 2014")}
TRAINED_BY_SWEEP_TAG = "wsfcn.trained_by_sweep"
CHECKPOINT_TAG = "wsfcn.checkpoint"
RELEASE_NOTE = "converted from the authors' release"  # wsfcn convert-checkpoint --from official
MAX_IMAGES = "params.infer.max_images"


@dataclass(frozen=True)
class Table:
    """One paper table: ``numbers`` (floats, NaN if missing) and ``display`` (strings) per run."""

    name: str
    stem: str  # output file stem: "table1" for table1_ablation, else the name
    caption: str
    numbers: pd.DataFrame
    display: pd.DataFrame
    comparison: pd.DataFrame | None = None  # Tables IV/V: the paper's rows (+ ours where comparable)
    notes: list[str] = field(default_factory=list)


def empty_runs() -> pd.DataFrame:
    """A run frame with the contract's columns and no rows."""
    columns = ["run_id", "status", *TAG_COLUMNS.values(), *(f"metrics.{m}" for m in (*METRICS, "n_params"))]
    return pd.DataFrame(columns=columns)


def contract_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """The columns of a run frame that the tables read (run id, status, start time, ``tags.wsfcn*``,
    the metrics, ``infer.max_images``, the run name), rows sorted by experiment, run and seed."""
    keep = ["run_id", "status", "start_time", "tags.mlflow.runName", MAX_IMAGES]
    keep += [c for c in runs.columns if c.startswith("tags.wsfcn")]
    keep += [f"metrics.{m}" for m in (*METRICS, "n_params")]
    frame = runs[[c for c in dict.fromkeys(keep) if c in runs.columns]]
    order = [c for c in (*TAG_COLUMNS.values(), "start_time") if c in frame.columns]
    return frame.sort_values(order, kind="stable") if order else frame


def read_runs_csv(path: str | Path) -> pd.DataFrame:
    """A run frame written by :func:`contract_columns` (``pipeline/tables.py --save-runs``); tags as text."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (write it with pipeline/tables.py --save-runs)")
    frame = pd.read_csv(path, dtype=str)
    for column in [c for c in frame.columns if c.startswith("metrics.")]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def paper_values(experiment: Experiment) -> dict[str, dict[str, float]]:
    """``{run: {"mIoU": .., "PixAcc": .., "params_m": ..}}`` from the file's ``paper`` block.

    Tables I-III: ``paper: {run: {mIoU, PixAcc, params_m}}``. Tables IV/V: ``paper: {columns: [..],
    comparison: [{group, method, backbone, sup, <column>: value, runs: {<column>: run}}, ..]}``; a run's
    paper mIoU is the cell its comparison row maps it to.
    """
    paper = experiment.paper or {}
    if "comparison" not in paper:
        unknown = sorted(set(paper) - set(experiment.runs))
        if unknown:
            raise ValueError(f"{experiment.path}: paper values for {unknown[0]!r}, which is not a run")
        return {run: dict(values or {}) for run, values in paper.items()}
    values: dict[str, dict[str, float]] = {}
    for row in paper["comparison"]:
        for column, run in (row.get("runs") or {}).items():
            if run not in experiment.runs:
                raise ValueError(
                    f"{experiment.path}: comparison row {row.get('method')!r} maps to unknown run {run!r}"
                )
            cell = row.get(column)
            values[run] = {"mIoU": float(cell) if isinstance(cell, (int, float)) else math.nan}
    return values


def _select(
    runs: pd.DataFrame, experiment: Experiment, setting: str | None
) -> tuple[pd.DataFrame, str | None, list[str]]:
    """Finished runs of ``experiment`` at one setting (None: paper if any, else embedded, else the first)."""
    if runs.empty:
        return empty_runs(), setting, []
    missing = [c for c in (*TAG_COLUMNS.values(), "status") if c not in runs.columns]
    if missing:
        raise ValueError(
            f"run frame lacks column {missing[0]!r} (see the logging contract in wsfcn/report/tables.py)"
        )
    mine = runs[(runs[TAG_COLUMNS["experiment"]] == experiment.name) & (runs["status"] == "FINISHED")]
    present = sorted(set(mine[TAG_COLUMNS["setting"]].dropna()))
    if setting is None and present:
        setting = next((s for s in ("paper", "embedded") if s in present), present[0])
    chosen = mine[mine[TAG_COLUMNS["setting"]] == setting]
    notes = [
        f"{(mine[TAG_COLUMNS['setting']] == s).sum()} finished run(s) at setting {s!r} not shown"
        for s in present
        if s != setting
    ]
    unknown = sorted(set(chosen[TAG_COLUMNS["run"]]) - set(experiment.runs))
    if unknown:
        notes.append(
            f"ignored runs not in {experiment.path or experiment.name}: {', '.join(map(str, unknown))}"
        )
    return chosen[chosen[TAG_COLUMNS["run"]].isin(list(experiment.runs))], setting, notes


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: ``<metric>_mean/_std/_n`` over seeds and ``n_params`` (mean); indexed by run name."""
    frame = runs.copy()
    try:
        frame["seed"] = frame[TAG_COLUMNS["seed"]].astype(int)
    except (TypeError, ValueError) as err:
        raise ValueError(f"tag wsfcn.seed must be an integer in every run: {err}") from err
    if "start_time" in frame.columns:
        frame = frame.sort_values("start_time", kind="stable")
    frame = frame.drop_duplicates([TAG_COLUMNS["run"], "seed"], keep="last")
    for metric in (*METRICS, "n_params"):
        column = f"metrics.{metric}"
        frame[metric] = pd.to_numeric(frame[column], errors="coerce") if column in frame else math.nan
    _check_percent(frame)
    grouped = frame.groupby(TAG_COLUMNS["run"])
    out = pd.DataFrame(index=pd.Index(sorted(grouped.groups), name="run"))
    for metric in METRICS:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1)
        out[f"{metric}_n"] = grouped[metric].count()
    out["n_params"] = grouped["n_params"].mean()
    return out


def _check_percent(frame: pd.DataFrame) -> None:
    for metric in METRICS:
        bad = frame[(frame[metric] < 0) | (frame[metric] > 100)]
        if metric == "PixAcc":  # PixAcc <= 1 % cannot happen with a background class: a fraction
            bad = pd.concat([bad, frame[frame[metric] <= 1.0]])
        if not bad.empty:
            row = bad.iloc[0]
            raise ValueError(
                f"run {row.get('run_id', '?')} ({row[TAG_COLUMNS['run']]}): {metric}={row[metric]} is not a "
                "percentage in (1, 100]; the logging contract wants percent (wsfcn/report/tables.py)"
            )


def _ours(mean: float, std: float, n: int) -> str:
    if not n:
        return MISSING
    return f"{mean:.2f} (n=1)" if n == 1 else f"{mean:.2f} ± {std:.2f} (n={n})"


def _num(value: float, fmt: str = "{:.2f}") -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _labels(experiment: Experiment, runs: pd.DataFrame) -> tuple[str, str, str | None]:
    """(paper dataset name, paper label, our label or None if there are no runs)."""
    paper_data = experiment.settings.get("paper", {}).get("data.name", "voc")
    short, long = DATASET_NAMES.get(paper_data, (paper_data, paper_data))
    columns = (experiment.paper or {}).get("columns", ["val"])
    paper_label = (
        f"{long} {' and '.join(columns)}, WideResNet-38" if experiment.paper else "none (not a paper table)"
    )
    datasets = sorted(set(runs[TAG_COLUMNS["dataset"]].dropna())) if not runs.empty else []
    if len(datasets) > 1:
        raise ValueError(
            f"{experiment.name}: runs of one setting on several datasets {datasets}; not mixing them"
        )
    if not datasets:
        return paper_data, paper_label, None
    splits = []
    for run in dict.fromkeys(runs[TAG_COLUMNS["run"]]):
        split = str(experiment.runs[run].get("infer.split", experiment.common.get("infer.split", "val")))
        splits += [split] if split not in splits else []
    if datasets[0] == "synthetic":
        return paper_data, paper_label, f"embedded synthetic benchmark (not {short}), {'/'.join(splits)}"
    return (
        paper_data,
        paper_label,
        f"{DATASET_NAMES.get(datasets[0], (None, datasets[0]))[1]} {'/'.join(splits)}",
    )


def _number_row(
    run: str,
    setting: str | None,
    dataset: str | None,
    comparable: bool,
    paper: dict[str, float],
    summary: pd.DataFrame,
    param_counts: dict[str, int] | None,
) -> dict[str, object]:
    """One row of :attr:`Table.numbers` (NaN where missing, n = 0 without runs)."""
    s = summary.loc[run] if run in summary.index else None
    row: dict[str, object] = {"run": run, "setting": setting, "dataset": dataset}
    for metric in METRICS:
        row[f"paper_{metric}"] = float(paper.get(metric, math.nan))
        row[f"{metric}_mean"] = float(s[f"{metric}_mean"]) if s is not None else math.nan
        row[f"{metric}_std"] = float(s[f"{metric}_std"]) if s is not None else math.nan
        row[f"{metric}_n"] = int(s[f"{metric}_n"]) if s is not None else 0
        row[f"delta_{metric}"] = row[f"{metric}_mean"] - row[f"paper_{metric}"] if comparable else math.nan
    logged = float(s["n_params"]) / 1e6 if s is not None else math.nan
    row["paper_params_m"] = float(paper.get("params_m", math.nan))
    row["params_m_runs"] = logged
    counted = (param_counts or {}).get(run)
    row["params_m"] = (
        logged
        if setting == "paper" and not math.isnan(logged)
        else (counted / 1e6 if counted is not None else math.nan)
    )
    return row


def experiment_table(
    experiment: Experiment,
    runs: pd.DataFrame,
    setting: str | None = None,
    param_counts: dict[str, int] | None = None,
) -> Table:
    """The table of one experiment file from a run frame (any experiments; filtered here).

    Args:
        experiment: the loaded ``experiments/*.yaml``.
        runs: MLflow run frame following the logging contract (may hold other experiments' runs).
        setting: the setting to show (None: ``paper`` if it has runs, else ``embedded``, else the first).
        param_counts: ``{run: trainable parameters}`` of the paper-setting model, if counted.
    """
    chosen, setting, notes = _select(runs, experiment, setting)
    paper_data, paper_label, ours_label = _labels(experiment, chosen)
    comparable = ours_label is not None and chosen[TAG_COLUMNS["dataset"]].iloc[0] == paper_data
    dataset = chosen[TAG_COLUMNS["dataset"]].iloc[0] if ours_label else None
    chosen, given = split_given(chosen)
    summary = summarise(chosen) if not chosen.empty else summarise(empty_runs())
    paper = paper_values(experiment)
    with_params = any("params_m" in v for v in paper.values())
    numbers = pd.DataFrame(
        [
            _number_row(run, setting, dataset, comparable, paper.get(run, {}), summary, param_counts)
            for run in experiment.runs
        ]
    )
    subsets = subset_sizes(chosen)
    labels = [_subset_label(run, subsets.get(run)) for run in numbers["run"]]
    if not given.empty:
        extra, extra_labels, given_notes = _given_rows(experiment, given, setting, dataset, comparable, paper)
        numbers = pd.concat([numbers, extra], ignore_index=True)
        subsets |= subset_sizes(_renamed(given))
        labels += extra_labels
        notes += given_notes
    if any(subsets.values()):
        notes.append(
            "a row marked [N images] was evaluated on the first N images of its split only "
            "(infer.max_images), not the whole split: not comparable with the paper's value"
        )
    display = pd.DataFrame({"Run": labels})
    for metric in METRICS:
        display[f"{metric} paper"] = numbers[f"paper_{metric}"].map(_num)
        display[f"{metric} ours"] = [
            _ours(r[f"{metric}_mean"], r[f"{metric}_std"], int(r[f"{metric}_n"]))
            for _, r in numbers.iterrows()
        ]
        display[f"Δ {metric}"] = numbers[f"delta_{metric}"].map(lambda d: _num(d, "{:+.2f}"))
    if experiment.reference and experiment.reference in set(numbers["run"]):
        _versus_reference(experiment.reference, numbers, display, notes)
    if with_params:
        display["Params (M) paper"] = numbers["paper_params_m"].map(_num)
        display["Params (M) ours"] = numbers["params_m"].map(_num)
    if ours_label is None:
        ours_text = "no finished runs logged yet"
    else:
        ours_text = f"{ours_label}, setting `{setting}`, mean ± std over seeds (n)"
        if not comparable and experiment.paper:
            notes.append(
                f"Δ and the comparison rows need runs on {paper_label.split(',')[0]}; these runs are not"
            )
    caption = f"{experiment.caption.strip()} Paper: {paper_label}. Ours: {ours_text}."
    match = re.match(r"table(\d+)", experiment.name)
    return Table(
        name=experiment.name,
        stem=f"table{match.group(1)}" if match else experiment.name,
        caption=caption,
        numbers=numbers,
        display=display,
        comparison=comparison_table(experiment, numbers if comparable else None, subsets),
        notes=notes,
    )


def _versus_reference(reference: str, numbers: pd.DataFrame, display: pd.DataFrame, notes: list[str]) -> None:
    """Columns ``Δ mIoU vs <reference>`` and Welch's p-value over seeds (numbers: ``vs_ref_mIoU``,
    ``p_mIoU``); a row with p < ALPHA differs from the reference by more than the seed spread."""
    from wsfcn.report.significance import ALPHA, welch_p

    ref = numbers[numbers["run"] == reference].iloc[0]
    deltas, ps = [], []
    for _, row in numbers.iterrows():
        same = row["run"] == reference
        deltas.append(math.nan if same else row["mIoU_mean"] - ref["mIoU_mean"])
        args = (row["mIoU_mean"], row["mIoU_std"], int(row["mIoU_n"]))
        ps.append(math.nan if same else welch_p(*args, ref["mIoU_mean"], ref["mIoU_std"], int(ref["mIoU_n"])))
    numbers["vs_ref_mIoU"], numbers["p_mIoU"] = deltas, ps
    display[f"Δ mIoU vs {reference}"] = [
        "reference" if r == reference else _num(d, "{:+.2f}")
        for r, d in zip(numbers["run"], deltas, strict=True)
    ]
    display["p (Welch)"] = [
        MISSING if math.isnan(p) else f"{p:.3f}" + (" *" if p < ALPHA else "") for p in ps
    ]
    notes.append(
        f"Δ mIoU vs {reference}: difference of the seed means; p: two-sided Welch's t-test over seeds "
        f"(unpaired, unequal variances); * marks p < {ALPHA}, a difference larger than the seed spread"
    )


def comparison_table(
    experiment: Experiment, numbers: pd.DataFrame | None, subsets: dict[str, int] | None = None
) -> pd.DataFrame | None:
    """The paper's comparison rows (Tables IV/V), each WS-FCN row followed by ours where run, then the
    rows of a checkpoint the sweep did not train (``<run> (released checkpoint)``), where evaluated."""
    paper = experiment.paper or {}
    if "comparison" not in paper:
        return None
    columns = list(paper.get("columns", ["val"]))
    by_run = numbers.set_index("run") if numbers is not None else None
    rows, last_group = [], None
    for entry in paper["comparison"]:
        group = entry.get("group", "")
        base = {
            "Group": group if group != last_group else "",
            "Method": entry.get("method", ""),
            "Backbone": entry.get("backbone", ""),
            "Sup.": entry.get("sup", ""),
        }
        last_group = group
        rows.append({**base, **{c: _cell(entry.get(c)) for c in columns}})
        runs = entry.get("runs") or {}
        for kind in ("", *GIVEN_KINDS):
            names = {c: f"{r} ({kind})" if kind else r for c, r in runs.items()}
            mapped = {c: by_run.loc[r] for c, r in names.items() if by_run is not None and r in by_run.index}
            if not any(r["mIoU_n"] for r in mapped.values()):
                continue
            ours = {c: _ours(r["mIoU_mean"], r["mIoU_std"], int(r["mIoU_n"])) for c, r in mapped.items()}
            sizes = sorted(
                {n for r in runs.values() if (n := (subsets or {}).get(f"{r} ({kind})" if kind else r))}
            )
            what = ", ".join([kind or "ours", *(_images(n) for n in sizes)])
            rows.append(
                {
                    **base,
                    "Group": "",
                    "Method": f"{base['Method']} ({what})",
                    **{c: ours.get(c, MISSING) for c in columns},
                }
            )
    return pd.DataFrame(rows)


GIVEN_KINDS = ("released checkpoint", "given checkpoint")


def provenance_key(key: str) -> str:
    """The tag suffix of a provenance key: its ``sha256`` (of the source file) is ``source_sha256``."""
    return "source_sha256" if key == "sha256" else key


def split_given(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs the sweep trained, runs that evaluated a given checkpoint: ``wsfcn.trained_by_sweep=false``)."""
    column = f"tags.{TRAINED_BY_SWEEP_TAG}"
    if runs.empty or column not in runs.columns:
        return runs, runs.iloc[0:0]
    given = runs[column].astype(str).str.lower() == "false"
    return runs[~given], runs[given]


def given_kind(run: pd.Series) -> str:
    """ "released checkpoint" for a file converted from the authors' release, else "given checkpoint"."""
    return GIVEN_KINDS[0] if run.get(f"tags.{CHECKPOINT_TAG}.note") == RELEASE_NOTE else GIVEN_KINDS[1]


def subset_sizes(runs: pd.DataFrame) -> dict[str, int]:
    """``{run: infer.max_images}`` of the runs evaluated on a subset (param ``infer.max_images`` > 0)."""
    if runs.empty or MAX_IMAGES not in runs.columns:
        return {}
    sizes = pd.to_numeric(runs[MAX_IMAGES], errors="coerce").fillna(0)
    found = runs.assign(_n=sizes)[sizes > 0].groupby(TAG_COLUMNS["run"])["_n"].max()
    return {str(run): int(n) for run, n in found.items()}


def _subset_label(run: str, size: int | None) -> str:
    return f"{run} [{_images(size)}]" if size else run


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _renamed(given: pd.DataFrame) -> pd.DataFrame:
    """The given-checkpoint runs with ``wsfcn.run`` = ``<run> (<kind>)``."""
    kinds = given.apply(given_kind, axis=1)
    return given.assign(**{TAG_COLUMNS["run"]: given[TAG_COLUMNS["run"]] + " (" + kinds + ")"})


def _given_rows(
    experiment: Experiment,
    given: pd.DataFrame,
    setting: str | None,
    dataset: str | None,
    comparable: bool,
    paper: dict[str, dict[str, float]],
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Number rows (``run`` = ``<run> (<kind>)``), display labels and notes of the given-checkpoint runs."""
    renamed = _renamed(given)
    summary = summarise(renamed)
    subsets = subset_sizes(renamed)
    rows, labels = [], []
    for run in experiment.runs:
        for kind in GIVEN_KINDS:
            name = f"{run} ({kind})"
            if name in summary.index:
                rows.append(
                    _number_row(name, setting, dataset, comparable, paper.get(run, {}), summary, None)
                )
                labels.append(_subset_label(name, subsets.get(name)))
    notes = []
    for path, group in given.groupby(f"tags.{CHECKPOINT_TAG}", dropna=False):
        first = group.iloc[0]
        source = first.get(f"tags.{CHECKPOINT_TAG}.source")
        sha = str(first.get(f"tags.{CHECKPOINT_TAG}.sha256", ""))[:12]
        origin = f" ({first.get(f'tags.{CHECKPOINT_TAG}.note')}: {source})" if isinstance(source, str) else ""
        notes.append(
            f"rows marked ({given_kind(first)}) evaluate {path} (sha256 {sha}...){origin}, not trained by "
            "this sweep; kept apart from the trained runs"
        )
    return pd.DataFrame(rows), labels, notes


def _cell(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _num(float(value))
    return MISSING if value is None else str(value)


def build_tables(
    experiments: list[Experiment],
    runs: pd.DataFrame,
    setting: str | None = None,
    param_counts: dict[str, dict[str, int]] | None = None,
) -> list[Table]:
    """:func:`experiment_table` for each file; ``param_counts`` maps experiment name → run counts."""
    return [experiment_table(e, runs, setting, (param_counts or {}).get(e.name)) for e in experiments]


# What decides the numbers of a checkpoint that was not trained here: the data it is scored on and how.
EVALUATION_KEYS = ("data.name", "infer.", "eval.")


def matching_runs(
    experiment: Experiment, flat_params: dict[str, object], only: tuple[str, ...] | None = None
) -> list[tuple[str, str]]:
    """``[(run, setting)]`` of ``experiment`` whose every override (common + setting + run) holds in
    ``flat_params`` (``wsfcn.config.flatten`` of the pipeline's params); the paper setting is tried first.
    ``only``: compare just the keys that start with these prefixes (:data:`EVALUATION_KEYS` for a
    given checkpoint, whose network and training are its own, not the params')."""
    from wsfcn.config import flatten, load_params

    found = []
    for run in experiment.runs:
        for setting in sorted(experiment.settings, key=lambda s: s != "paper") or [None]:
            overrides = experiment.overrides(run, setting)
            wanted = flatten(load_params(None, overrides)) if overrides else {}
            keys = [k for k in _override_keys(overrides, wanted) if only is None or k.startswith(only)]
            if all(flat_params.get(key) == wanted[key] for key in keys):
                found.append((run, setting or "embedded"))
                break
    return found


def _override_keys(overrides: dict[str, object], wanted: dict[str, object]) -> list[str]:
    """The flattened keys an override mapping sets (a section override sets all its keys)."""
    return [k for k in wanted if any(k == o or k.startswith(o + ".") for o in overrides)]


def pipeline_runs(
    experiment: Experiment, flat_params: dict[str, object], metrics: dict, start_time: float
) -> pd.DataFrame:
    """The ``dvc repro`` result (``metrics.json`` of the evaluate stage, mIoU/PixAcc in percent) as run
    rows of ``experiment`` for each run it reproduces, shaped like the logged runs (logging contract).

    A result from a converted checkpoint (``provenance`` in metrics.json) is a given-checkpoint row, on
    the runs whose evaluation keys (:data:`EVALUATION_KEYS`) it matches."""
    provenance = metrics.get("provenance") or {}
    given = {
        f"tags.{TRAINED_BY_SWEEP_TAG}": "false",
        f"tags.{CHECKPOINT_TAG}": str(flat_params.get("infer.checkpoint", "")),
        **{f"tags.{CHECKPOINT_TAG}.{provenance_key(k)}": str(v) for k, v in provenance.items()},
    }
    rows = [
        {
            "run_id": "dvc-pipeline",
            "status": "FINISHED",
            "start_time": pd.Timestamp(start_time, unit="s", tz="UTC"),
            TAG_COLUMNS["experiment"]: experiment.name,
            TAG_COLUMNS["run"]: run,
            TAG_COLUMNS["setting"]: setting,
            TAG_COLUMNS["seed"]: str(flat_params["train.seed"]),
            TAG_COLUMNS["dataset"]: flat_params["data.name"],
            "metrics.mIoU": metrics.get("mIoU"),
            "metrics.PixAcc": metrics.get("PixAcc"),
            MAX_IMAGES: str(flat_params.get("infer.max_images", 0)),
            **(given if provenance else {}),
        }
        for run, setting in matching_runs(experiment, flat_params, EVALUATION_KEYS if provenance else None)
    ]
    return pd.DataFrame(rows) if rows else empty_runs()
