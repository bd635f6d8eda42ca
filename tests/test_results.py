"""The published embedded tables (results/embedded/) are what pipeline/tables.py builds from the MLflow
runs they came from, kept beside them as ``runs.csv`` (``pipeline/tables.py --save-runs``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "embedded"
RUNS = RESULTS / "runs.csv"
TABLES = {"table1": "table1_ablation", "table2": "table2_alternatives", "table3": "table3_inference"}
SEEDS = {"table1_ablation": 5, "table2_alternatives": 3, "table3_inference": 5}  # the README's --seeds


def finished_runs() -> pd.DataFrame:
    """The finished runs of ``runs.csv``, every column as text."""
    runs = pd.read_csv(RUNS, dtype=str)
    return runs[runs["status"] == "FINISHED"]


def by_seed(frame: pd.DataFrame, column: str, seeds: set[str] | None = None) -> dict[str, str]:
    """``{seed: frame[column]}`` over one row's runs, restricted to ``seeds`` when given."""
    pairs = zip(frame["tags.wsfcn.seed"], frame[column], strict=True)
    return {seed: value for seed, value in pairs if seeds is None or seed in seeds}


def test_committed_tables_are_rebuilt_from_their_runs(tmp_path):
    from wsfcn.params_yaml import load_params
    from wsfcn.stages import tables as stages

    params = load_params(ROOT / "params.yaml", {"tables.out_dir": str(tmp_path)})
    result = stages.tables(
        params,
        experiments=[str(ROOT / "experiments" / f"{name}.yaml") for name in TABLES.values()],
        runs_csv=RUNS,
        params_path=ROOT / "params.yaml",
    )
    assert [t.name for t in result.tables] == list(TABLES.values())
    for table in TABLES:
        for ext in ("md", "csv", "tex"):
            name = f"{table}.{ext}"
            assert (tmp_path / name).read_text() == (RESULTS / name).read_text(), name


@pytest.mark.parametrize("table, experiment", TABLES.items())
def test_each_row_counts_exactly_its_finished_embedded_seeds(table, experiment):
    done = finished_runs()
    done = done[done["tags.wsfcn.experiment"] == experiment]
    assert set(done["tags.wsfcn.dataset"]) == {"synthetic"}
    seeds = done.groupby("tags.wsfcn.run")["tags.wsfcn.seed"].nunique()
    numbers = pd.read_csv(RESULTS / f"{table}.csv").set_index("run")
    n_seeds = SEEDS[experiment]
    for run, n in numbers["mIoU_n"].items():
        assert n == seeds.get(run, 0) == n_seeds, run  # every row over seeds 0 .. n_seeds - 1
    assert set(done["tags.wsfcn.seed"]) == {str(seed) for seed in range(n_seeds)}


def test_table3_infers_from_table1s_full_trainings():
    done = finished_runs()
    table3 = done[done["tags.wsfcn.experiment"] == "table3_inference"]
    assert (
        len(table3) == 4 * SEEDS["table3_inference"]
        and table3["tags.wsfcn.train_reused"].str.contains("/table1_ablation/embedded/full-s").all()
    )
    full = done[(done["tags.wsfcn.experiment"] == "table1_ablation") & (done["tags.wsfcn.run"] == "full")]
    flip = table3[table3["tags.wsfcn.run"] == "flip"]
    # the same trial (hash) on the same trained weights: the same numbers, to the last digit logged
    assert by_seed(flip, "tags.wsfcn.trial_hash") == by_seed(full, "tags.wsfcn.trial_hash")
    assert by_seed(flip, "metrics.mIoU") == by_seed(full, "metrics.mIoU")
    assert by_seed(flip, "metrics.PixAcc") == by_seed(full, "metrics.PixAcc")


def test_table2_reuses_table1s_equal_trainings():
    """Table II's baseline, fca and sf2 rows are Table I's baseline, mclm_srm and sf2 trainings (seeds
    0-2): the same trial hash and the same numbers; its six other rows trained their own."""
    done = finished_runs()
    table1 = done[done["tags.wsfcn.experiment"] == "table1_ablation"]
    table2 = done[done["tags.wsfcn.experiment"] == "table2_alternatives"]
    seeds = {str(seed) for seed in range(SEEDS["table2_alternatives"])}
    equal_rows = {"baseline": "baseline", "fca": "mclm_srm", "sf2": "sf2"}
    for row, source in equal_rows.items():
        mine = table2[table2["tags.wsfcn.run"] == row]
        theirs = table1[table1["tags.wsfcn.run"] == source]
        assert set(mine["tags.wsfcn.seed"]) == seeds, row
        reused_from = f"/table1_ablation/embedded/{source}-s"
        assert mine["tags.wsfcn.train_reused"].str.contains(reused_from).all(), row
        for column in ("tags.wsfcn.trial_hash", "metrics.mIoU", "metrics.PixAcc"):
            assert by_seed(mine, column, seeds) == by_seed(theirs, column, seeds), (row, column)
    trained = table2[~table2["tags.wsfcn.run"].isin(list(equal_rows))]
    assert len(trained) == 6 * len(seeds) and trained["tags.wsfcn.train_reused"].isna().all()


def test_every_trial_of_the_three_tables_ran_the_same_code():
    """One commit for all three tables: every finished trial logs the same code fingerprint."""
    done = finished_runs()
    trials = done[done["tags.wsfcn.experiment"].isin(list(TABLES.values()))]
    assert set(trials["tags.wsfcn.experiment"]) == set(TABLES.values())
    assert trials["tags.wsfcn.code_fingerprint"].nunique(dropna=False) == 1


@pytest.mark.parametrize("table", ["table1", "table2"])
def test_readme_quotes_the_committed_tables(table):
    """Each row of the README's Tables I and II gives the committed csv's paper mIoU, mean ± std, Δ vs
    baseline, Welch p and detectable Δ, rounded as the tables round them."""
    from wsfcn.report.display import p_value_cell

    lines = (ROOT / "README.md").read_text().splitlines()
    for row in pd.read_csv(RESULTS / f"{table}.csv").itertuples():
        cells = [f"{row.paper_mIoU:.2f}", f"{row.mIoU_mean:.2f} ± {row.mIoU_std:.2f}"]
        if not pd.isna(row.vs_ref_mIoU):
            p_value = p_value_cell(row.p_mIoU, alpha=0.0)  # the tables' own text, without the star
            cells += [f"{row.vs_ref_mIoU:+.2f}".replace("-", "−"), p_value, f"{row.detectable_mIoU:.2f}"]
        rows = [line for line in lines if line.startswith(f"| {row.run} ")]
        assert sum(all(cell in line for cell in cells) for line in rows) == 1, (table, row.run, cells)


@pytest.mark.parametrize(
    ("name", "in_readme"),
    [
        ("default_runs.csv", True),
        ("default_runs_xeon_amx.csv", True),
        ("design4_cf395d3_default_runs.csv", False),
        ("design2_default_runs.csv", False),
    ],
)
def test_default_runs_are_consistent_and_quoted_as_measured(name, in_readme):
    """The shipped default over seeds (``default_runs.csv``: fp32 on a CPU without bf16;
    ``default_runs_xeon_amx.csv``: bf16 and fp32 on one with AMX; earlier designs in
    ``design*_default_runs.csv``): each row's mIoU is the mean of its class IoUs and its lowest class
    is the smallest of them; the docs (and, for today's default, the README) quote each precision's
    mean ± std as the rows give it."""
    runs = pd.read_csv(RESULTS / name)
    iou = runs[[c for c in runs.columns if c.startswith("IoU_")]]
    assert len(iou.columns) == 9
    assert ((iou.mean(axis=1) - runs["mIoU"]).abs() <= 0.01).all()
    assert (iou.min(axis=1) == runs["lowest_IoU"]).all()
    assert (iou.idxmin(axis=1).str.removeprefix("IoU_") == runs["lowest_class"]).all()
    docs = (ROOT / "docs" / "embedded-benchmark.md").read_text()
    readme = (ROOT / "README.md").read_text()

    def mean_std(values: pd.Series) -> str:
        return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"

    for amp, group in runs.groupby("train_amp"):
        assert group["seed"].is_unique, amp
        if len(group) > 1:
            quoted = mean_std(group["mIoU"])
            assert quoted in docs, (name, amp, quoted)
            assert quoted in readme or not in_readme, (name, amp, quoted)
        for other in ("mIoU_bg025", "mIoU_crf"):  # the same trainings at the authors' constant, after the CRF
            if other in group and len(group) > 1:
                assert mean_std(group[other]) in docs, (name, amp, other)
