"""The published embedded Table I (results/embedded/) is what pipeline/tables.py builds from the MLflow
runs it came from (kept beside it as runs.csv by ``pipeline/tables.py --save-runs``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "embedded"


def test_committed_table_is_rebuilt_from_its_runs(tmp_path):
    from wsfcn import stages
    from wsfcn.config import load_params

    params = load_params(ROOT / "params.yaml", {"tables.out_dir": str(tmp_path)})
    result = stages.tables(
        params,
        experiments=[str(ROOT / "experiments" / "table1_ablation.yaml")],
        runs_csv=RESULTS / "runs.csv",
        params_path=ROOT / "params.yaml",
    )
    assert result.tables[0].name == "table1_ablation"
    for name in ("table1.md", "table1.csv", "table1.tex"):
        assert (tmp_path / name).read_text() == (RESULTS / name).read_text(), name


def test_each_row_counts_exactly_its_finished_embedded_seeds():
    runs = pd.read_csv(RESULTS / "runs.csv", dtype=str)
    done = runs[(runs["tags.wsfcn.experiment"] == "table1_ablation") & (runs["status"] == "FINISHED")]
    assert set(done["tags.wsfcn.dataset"]) == {"synthetic"}
    seeds = done.groupby("tags.wsfcn.run")["tags.wsfcn.seed"].nunique()
    numbers = pd.read_csv(RESULTS / "table1.csv").set_index("run")
    for run, n in numbers["mIoU_n"].items():
        assert n == seeds.get(run, 0), run
    assert numbers.loc["baseline", "mIoU_n"] == 3, "the reference row over three seeds"
