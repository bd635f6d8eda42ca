"""Runs of a checkpoint the sweep did not train (``wsfcn.trained_by_sweep=false``): told apart from the
trained runs, named by kind, and never averaged with them."""

from __future__ import annotations

import pandas as pd

from wsfcn.report.contract import CHECKPOINT_TAG, MAX_IMAGES, RELEASE_NOTE, TAG_COLUMNS, TRAINED_BY_SWEEP_TAG

GIVEN_KINDS = ("released checkpoint", "given checkpoint")


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


def renamed_given(given: pd.DataFrame) -> pd.DataFrame:
    """The given-checkpoint runs with ``wsfcn.run`` = ``<run> (<kind>)``."""
    kinds = given.apply(given_kind, axis=1)
    return given.assign(**{TAG_COLUMNS["run"]: given[TAG_COLUMNS["run"]] + " (" + kinds + ")"})
