"""Paper tables from MLflow runs (method §12): pure functions on pandas DataFrames.

Input is a run frame (:mod:`wsfcn.report.runs`) following the logging contract
(:mod:`wsfcn.report.contract`). Output is one :class:`Table` per ``experiments/*.yaml`` file: its runs
in file order beside the paper's numbers, ours as mean ± sample std (ddof 1) over seeds with n
(:mod:`wsfcn.report.summary`); Tables IV and V also get the paper's comparison rows.

Presentation rules (:mod:`wsfcn.report.display`): a missing value is "–", never 0. Runs on the embedded
synthetic data are labelled "embedded synthetic benchmark (not VOC)" and get no Δ against (nor a place
among) the paper's VOC/COCO numbers. Params (M) "ours" is the paper-setting model: logged ``n_params``
of paper-setting runs, else the count passed in ``param_counts``
(``wsfcn.commands.count_params.count_experiment``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from wsfcn.experiments import Experiment
from wsfcn.report.checkpoint_rows import GIVEN_KINDS, given_kind, renamed_given, split_given, subset_sizes
from wsfcn.report.contract import CHECKPOINT_TAG, METRICS, TAG_COLUMNS
from wsfcn.report.display import (
    MISSING,
    image_count,
    number_cell,
    ours_cell,
    p_value_cell,
    paper_cell,
    subset_label,
)
from wsfcn.report.pipeline_rows import pipeline_runs
from wsfcn.report.runs import contract_columns, empty_runs, read_runs_csv
from wsfcn.report.summary import summarise

# wsfcn/stages/tables.py imports these three from here.
__all__ = ["Table", "build_tables", "contract_columns", "experiment_table", "paper_values", "pipeline_runs",
           "read_runs_csv"]  # fmt: skip

DATASET_NAMES = {"voc": ("VOC", "PASCAL VOC 2012"), "coco": ("COCO", "MS COCO 2014")}


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
            f"run frame lacks column {missing[0]!r} (see the logging contract in wsfcn/report/contract.py)"
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
    labels = [subset_label(run, subsets.get(run)) for run in numbers["run"]]
    if not given.empty:
        extra, extra_labels, given_notes = _given_rows(experiment, given, setting, dataset, comparable, paper)
        numbers = pd.concat([numbers, extra], ignore_index=True)
        subsets |= subset_sizes(renamed_given(given))
        labels += extra_labels
        notes += given_notes
    if any(subsets.values()):
        notes.append(
            "a row marked [N images] was evaluated on the first N images of its split only "
            "(infer.max_images), not the whole split: not comparable with the paper's value"
        )
    display = pd.DataFrame({"Run": labels})
    for metric in METRICS:
        display[f"{metric} paper"] = numbers[f"paper_{metric}"].map(number_cell)
        display[f"{metric} ours"] = [
            ours_cell(r[f"{metric}_mean"], r[f"{metric}_std"], int(r[f"{metric}_n"]))
            for _, r in numbers.iterrows()
        ]
        display[f"Δ {metric}"] = numbers[f"delta_{metric}"].map(lambda d: number_cell(d, "{:+.2f}"))
    if experiment.reference and experiment.reference in set(numbers["run"]):
        _versus_reference(experiment.reference, numbers, display, notes)
    if with_params:
        display["Params (M) paper"] = numbers["paper_params_m"].map(number_cell)
        display["Params (M) ours"] = numbers["params_m"].map(number_cell)
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
    """Columns ``Δ mIoU vs <reference>``, Welch's p-value over seeds and the smallest difference that
    test detects at the rows' n and std (numbers: ``vs_ref_mIoU``, ``p_mIoU``, ``detectable_mIoU``); a
    row with p < ALPHA differs from the reference by more than the seed spread."""
    from wsfcn.report.significance import ALPHA, POWER, detectable_difference, welch_p

    ref = numbers[numbers["run"] == reference].iloc[0]
    deltas, ps, detectable = [], [], []
    for _, row in numbers.iterrows():
        same = row["run"] == reference
        deltas.append(math.nan if same else row["mIoU_mean"] - ref["mIoU_mean"])
        args = (row["mIoU_mean"], row["mIoU_std"], int(row["mIoU_n"]))
        ps.append(math.nan if same else welch_p(*args, ref["mIoU_mean"], ref["mIoU_std"], int(ref["mIoU_n"])))
        detectable.append(
            math.nan if same else detectable_difference(args[1], args[2], ref["mIoU_std"], int(ref["mIoU_n"]))
        )
    numbers["vs_ref_mIoU"], numbers["p_mIoU"], numbers["detectable_mIoU"] = deltas, ps, detectable
    display[f"Δ mIoU vs {reference}"] = [
        "reference" if r == reference else number_cell(d, "{:+.2f}")
        for r, d in zip(numbers["run"], deltas, strict=True)
    ]
    display["p (Welch)"] = [p_value_cell(p, ALPHA) for p in ps]
    display["detectable Δ"] = [number_cell(d, "{:.2f}") for d in detectable]
    notes.append(
        f"Δ mIoU vs {reference}: difference of the seed means; p: two-sided Welch's t-test over seeds "
        f"(unpaired, unequal variances); * marks p < {ALPHA}, a difference larger than the seed spread"
    )
    notes.append(
        f"detectable Δ: the smallest mIoU difference from {reference} that this test finds with power "
        f"{POWER} at α = {ALPHA}, given both rows' n and std; a true effect smaller than it is likely "
        "to be missed"
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
        rows.append({**base, **{c: paper_cell(entry.get(c)) for c in columns}})
        runs = entry.get("runs") or {}
        for kind in ("", *GIVEN_KINDS):
            names = {c: f"{r} ({kind})" if kind else r for c, r in runs.items()}
            mapped = {c: by_run.loc[r] for c, r in names.items() if by_run is not None and r in by_run.index}
            if not any(r["mIoU_n"] for r in mapped.values()):
                continue
            ours = {c: ours_cell(r["mIoU_mean"], r["mIoU_std"], int(r["mIoU_n"])) for c, r in mapped.items()}
            sizes = sorted(
                {n for r in runs.values() if (n := (subsets or {}).get(f"{r} ({kind})" if kind else r))}
            )
            what = ", ".join([kind or "ours", *(image_count(n) for n in sizes)])
            rows.append(
                {
                    **base,
                    "Group": "",
                    "Method": f"{base['Method']} ({what})",
                    **{c: ours.get(c, MISSING) for c in columns},
                }
            )
    return pd.DataFrame(rows)


def _given_rows(
    experiment: Experiment,
    given: pd.DataFrame,
    setting: str | None,
    dataset: str | None,
    comparable: bool,
    paper: dict[str, dict[str, float]],
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Number rows (``run`` = ``<run> (<kind>)``), display labels and notes of the given-checkpoint runs."""
    renamed = renamed_given(given)
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
                labels.append(subset_label(name, subsets.get(name)))
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


def build_tables(
    experiments: list[Experiment],
    runs: pd.DataFrame,
    setting: str | None = None,
    param_counts: dict[str, dict[str, int]] | None = None,
) -> list[Table]:
    """:func:`experiment_table` for each file; ``param_counts`` maps experiment name → run counts."""
    return [experiment_table(e, runs, setting, (param_counts or {}).get(e.name)) for e in experiments]
