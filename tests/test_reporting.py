"""Paper tables from run frames (wsfcn.report.tables and .writers) and pipeline/tables.py on MLflow."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.stages import load_stage

from wsfcn.experiments import load_experiment
from wsfcn.report.display import MISSING, p_value_cell
from wsfcn.report.tables import build_tables, experiment_table, paper_values
from wsfcn.report.writers import format_terminal, latex_escape, markdown_table, write_table

ROOT = Path(__file__).resolve().parents[1]
TABLE1 = load_experiment(ROOT / "experiments/table1_ablation.yaml")
TABLE4 = load_experiment(ROOT / "experiments/table4_voc.yaml")
TABLE5 = load_experiment(ROOT / "experiments/table5_coco.yaml")


def run_row(
    experiment, run, seed, miou, pixacc, *, setting="paper", dataset="voc", status="FINISHED", **extra
):
    """One row as mlflow.search_runs returns it, following the logging contract."""
    return {
        "run_id": f"{run}-{setting}-{seed}-{len(extra)}",
        "status": status,
        "tags.wsfcn.experiment": experiment,
        "tags.wsfcn.run": run,
        "tags.wsfcn.setting": setting,
        "tags.wsfcn.seed": str(seed),
        "tags.wsfcn.dataset": dataset,
        "metrics.mIoU": miou,
        "metrics.PixAcc": pixacc,
        **extra,
    }


def table1_runs():
    return pd.DataFrame(
        [
            run_row("table1_ablation", "baseline", 0, 58.0, 87.0, **{"metrics.n_params": 137104500}),
            run_row("table1_ablation", "baseline", 1, 59.0, 88.0, **{"metrics.n_params": 137104500}),
            run_row("table1_ablation", "full", 0, 61.0, 89.5),
            run_row("table1_ablation", "full", 1, 99.0, 99.0, status="FAILED"),  # not counted
            run_row("table2_alternatives", "baseline", 0, 10.0, 50.0),  # another experiment
        ]
    )


def test_layout_paper_columns_mean_std_n_delta_and_missing():
    table = experiment_table(TABLE1, table1_runs())
    assert list(table.display["Run"]) == ["baseline", "mclm", "mclm_srm", "sf2", "full"]  # file order
    assert list(table.display.columns) == [
        "Run", "mIoU paper", "mIoU ours", "Δ mIoU", "PixAcc paper", "PixAcc ours", "Δ PixAcc",
        "Δ mIoU vs baseline", "p (Welch)", "detectable Δ", "Params (M) paper", "Params (M) ours",
    ]  # fmt: skip
    base = table.display.iloc[0]
    assert (base["mIoU paper"], base["PixAcc paper"], base["Params (M) paper"]) == (
        "58.38",
        "87.58",
        "137.10",
    )
    # mean 58.5, sample std sqrt(0.5) = 0.7071, two seeds
    assert base["mIoU ours"] == "58.50 ± 0.71 (n=2)"
    assert base["Δ mIoU"] == "+0.12" and base["Δ PixAcc"] == "-0.08"  # 87.5 - 87.58
    assert base["Params (M) ours"] == "137.10"  # logged n_params of the paper-setting runs
    full = table.display.iloc[4]
    assert full["mIoU ours"] == "61.00 (n=1)"  # the FAILED seed is ignored
    assert full["Δ mIoU"] == "+0.32" and full["Δ PixAcc"] == "+0.18"
    mclm = table.display.iloc[1]
    assert mclm["mIoU ours"] == MISSING and mclm["Δ mIoU"] == MISSING and mclm["PixAcc ours"] == MISSING
    numbers = table.numbers.set_index("run")
    assert numbers.loc["mclm", "mIoU_n"] == 0 and math.isnan(numbers.loc["mclm", "mIoU_mean"])
    assert numbers.loc["baseline", "mIoU_std"] == pytest.approx(math.sqrt(0.5))
    assert numbers.loc["full", "delta_mIoU"] == pytest.approx(61.0 - 60.68)
    assert "Ours: PASCAL VOC 2012 val, setting `paper`" in table.caption
    assert table.stem == "table1" and table.comparison is None


def test_rows_are_tested_against_the_reference_with_welch():
    from scipy import stats

    base, full, sf2 = [70.1, 71.3, 69.8], [73.0, 74.2, 72.9], [70.9, 69.5, 71.8]
    frame = pd.DataFrame(
        [run_row("table1_ablation", "baseline", i, v, 90.0) for i, v in enumerate(base)]
        + [run_row("table1_ablation", "full", i, v, 90.0) for i, v in enumerate(full)]
        + [run_row("table1_ablation", "sf2", i, v, 90.0) for i, v in enumerate(sf2)]
        + [run_row("table1_ablation", "mclm", 0, 75.0, 90.0)]
    )
    table = experiment_table(TABLE1, frame)
    numbers, shown = table.numbers.set_index("run"), table.display.set_index("Run")
    for run, values in (("full", full), ("sf2", sf2)):
        want = stats.ttest_ind(values, base, equal_var=False).pvalue
        assert numbers.loc[run, "p_mIoU"] == pytest.approx(want, rel=1e-9)
        assert numbers.loc[run, "vs_ref_mIoU"] == pytest.approx(sum(values) / 3 - sum(base) / 3)
    assert shown.loc["full", "p (Welch)"].endswith(" *"), "3 points apart, spread ~0.7: beyond the spread"
    assert not shown.loc["sf2", "p (Welch)"].endswith("*"), "0.3 points apart, spread ~1.1: within it"
    assert shown.loc["baseline", "Δ mIoU vs baseline"] == "reference"
    assert shown.loc["mclm", "p (Welch)"] == MISSING, "one seed has no spread to test"
    assert shown.loc["mclm", "detectable Δ"] == MISSING and shown.loc["baseline", "detectable Δ"] == MISSING
    # the full row's 3.0-point difference is beyond its detectable difference; sf2's 0.3 is below its own
    assert numbers.loc["full", "detectable_mIoU"] < numbers.loc["full", "vs_ref_mIoU"]
    assert numbers.loc["sf2", "detectable_mIoU"] > abs(numbers.loc["sf2", "vs_ref_mIoU"])
    assert shown.loc["sf2", "detectable Δ"] == f"{numbers.loc['sf2', 'detectable_mIoU']:.2f}"
    assert any("Welch" in note for note in table.notes)
    assert any(note.startswith("detectable Δ") and "power 0.8" in note for note in table.notes)


@pytest.mark.parametrize(
    ("p", "shown"), [(0.4567, "0.457"), (0.0449, "0.045 *"), (0.00054, "<0.001 *"), (math.nan, MISSING)]
)
def test_p_values_below_a_thousandth_are_not_shown_as_zero(p, shown):
    assert p_value_cell(p, 0.05) == shown


def test_detectable_difference_is_found_by_welch_with_the_stated_power():
    """Simulated seeds: a true difference equal to the detectable one is found in 80 % of the tables."""
    from scipy import stats

    from wsfcn.report.significance import detectable_difference

    assert detectable_difference(0.6, 5, 0.6, 5) == pytest.approx(1.2, abs=0.02)  # σ 0.6, n 5: 1.2 points
    assert detectable_difference(0.6, 3, 0.6, 3) > detectable_difference(0.6, 5, 0.6, 5)  # fewer seeds
    assert detectable_difference(1.2, 5, 1.2, 5) == pytest.approx(2 * detectable_difference(0.6, 5, 0.6, 5))
    assert math.isnan(detectable_difference(0.6, 1, 0.6, 5)) and detectable_difference(0.0, 3, 0.0, 3) == 0
    rng = np.random.default_rng(0)
    for std_a, n_a, std_b, n_b in ((0.6, 5, 0.6, 5), (1.5, 3, 0.5, 5)):
        d = detectable_difference(std_a, n_a, std_b, n_b)
        trials = 20_000
        a = rng.normal(d, std_a, size=(trials, n_a))
        b = rng.normal(0.0, std_b, size=(trials, n_b))
        found = stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05
        # Welch's df from the sample stds varies per draw, so the rate is near (not exactly) 0.8
        assert 0.75 < found.mean() < 0.85, (std_a, n_a, std_b, n_b, found.mean())
        smaller = stats.ttest_ind(a - d / 2, b, axis=1, equal_var=False).pvalue < 0.05
        assert smaller.mean() < 0.5, "half the detectable difference is mostly missed"


def test_a_reference_that_is_not_a_run_is_refused(tmp_path):
    from wsfcn.config import ConfigError

    path = tmp_path / "x.yaml"
    path.write_text("name: x\nreference: nope\nruns: {a: {}}\n")
    with pytest.raises(ConfigError, match="reference 'nope' is not a run"):
        load_experiment(path)


def test_embedded_runs_are_never_presented_as_voc():
    runs = pd.DataFrame(
        [
            run_row("table1_ablation", r, 0, 70.0, 90.0, setting="embedded", dataset="synthetic")
            for r in TABLE1.runs
        ]
    )
    table = experiment_table(TABLE1, runs, param_counts={"full": 147_342_886})
    assert "Ours: embedded synthetic benchmark (not VOC), val, setting `embedded`" in table.caption
    assert "Ours: PASCAL VOC" not in table.caption
    assert set(table.display["Δ mIoU"]) == {MISSING}  # no difference against VOC numbers
    assert table.display.iloc[0]["mIoU ours"] == "70.00 (n=1)"
    # Params "ours" is the paper-setting model (passed counts), not the embedded run's model
    assert list(table.display["Params (M) ours"]) == [MISSING] * 4 + ["147.34"]
    assert any("not" in note for note in table.notes)


def test_setting_choice_prefers_paper_and_notes_the_rest():
    extra = run_row("table1_ablation", "sf2", 0, 5.0, 60.0, setting="embedded", dataset="synthetic")
    runs = pd.concat([table1_runs(), pd.DataFrame([extra])])
    assert experiment_table(TABLE1, runs).display.iloc[3]["mIoU ours"] == MISSING
    embedded = experiment_table(TABLE1, runs, setting="embedded")
    assert embedded.display.iloc[3]["mIoU ours"] == "5.00 (n=1)"
    assert embedded.display.iloc[0]["mIoU ours"] == MISSING
    assert any("setting 'paper' not shown" in note for note in embedded.notes)


def test_latest_run_of_a_seed_wins():
    rows = [
        run_row("table1_ablation", "sf2", 0, 50.0, 80.0),
        run_row("table1_ablation", "sf2", 0, 52.0, 82.0),
    ]
    rows[0]["start_time"], rows[1]["start_time"] = pd.Timestamp(2), pd.Timestamp(1)
    table = experiment_table(TABLE1, pd.DataFrame(rows))
    assert table.display.iloc[3]["mIoU ours"] == "50.00 (n=1)"


def test_bad_run_frames_fail_clearly():
    with pytest.raises(ValueError, match="percent"):  # fractions instead of percentages
        experiment_table(TABLE1, pd.DataFrame([run_row("table1_ablation", "full", 0, 0.6, 0.89)]))
    mixed = pd.DataFrame(
        [
            run_row("table1_ablation", "full", 0, 60.0, 89.0),
            run_row("table1_ablation", "sf2", 0, 60.0, 89.0, dataset="coco"),
        ]
    )
    with pytest.raises(ValueError, match="several datasets"):
        experiment_table(TABLE1, mixed)
    no_seed = pd.DataFrame([run_row("table1_ablation", "full", 0, 60.0, 89.0)]).drop(
        columns="tags.wsfcn.seed"
    )
    with pytest.raises(ValueError, match="lacks column 'tags.wsfcn.seed'"):
        experiment_table(TABLE1, no_seed)
    with pytest.raises(ValueError, match="seed must be an integer"):
        experiment_table(TABLE1, pd.DataFrame([run_row("table1_ablation", "full", "s0", 60.0, 89.0)]))


def test_no_runs_gives_paper_only_table():
    (table,) = build_tables([TABLE1], pd.DataFrame())
    assert "Ours: no finished runs logged yet" in table.caption
    assert set(table.display["mIoU ours"]) == {MISSING}
    assert list(table.display["mIoU paper"]) == ["58.38", "59.71", "60.13", "59.45", "60.68"]


def test_comparison_paper_values_and_our_rows():
    assert paper_values(TABLE4) == {
        "val": {"mIoU": 61.57}, "test": {"mIoU": 62.30}, "val_crf": {"mIoU": 63.23},
        "test_crf": {"mIoU": 64.22}, "val_gt": {"mIoU": 64.02}, "val_gt_crf": {"mIoU": 65.02},
    }  # fmt: skip
    assert paper_values(TABLE5)["val_gt_crf"] == {"mIoU": 34.12}
    runs = pd.DataFrame(
        [
            run_row("table4_voc", "val", 0, 61.0, 89.0),
            run_row("table4_voc", "val", 1, 62.0, 90.0),
            run_row("table4_voc", "test", 0, 63.0, float("nan")),  # VOC test: no masks, no PixAcc
        ]
    )
    table = experiment_table(TABLE4, runs)
    assert "Ours: PASCAL VOC 2012 val/test" in table.caption
    methods = list(table.comparison["Method"])
    assert len(methods) == 32 + 1 and methods.index("WS-FCN (ours)") == methods.index("WS-FCN") + 1
    ours = table.comparison.iloc[methods.index("WS-FCN (ours)")]
    assert (ours["val"], ours["test"]) == ("61.50 ± 0.71 (n=2)", "63.00 (n=1)")
    paper_row = table.comparison.iloc[methods.index("WS-FCN§")]
    assert (paper_row["val"], paper_row["test"]) == ("64.02", "*")
    deeplab = table.comparison.iloc[methods.index("DeepLab-v2")]
    assert (deeplab["val"], deeplab["Group"]) == (MISSING, "")  # group printed once, as in the paper
    test_row = table.display.set_index("Run").loc["test"]
    assert (test_row["mIoU ours"], test_row["Δ mIoU"], test_row["PixAcc ours"]) == (
        "63.00 (n=1)",
        "+0.70",
        MISSING,
    )
    # synthetic runs stay out of the paper's VOC rows
    synthetic = experiment_table(TABLE4, runs.assign(**{"tags.wsfcn.dataset": "synthetic"}))
    assert "WS-FCN (ours)" not in list(synthetic.comparison["Method"])
    coco = experiment_table(
        TABLE5, pd.DataFrame([run_row("table5_coco", "val", 0, 27.0, 70.0, dataset="coco")])
    )
    assert "Ours: MS COCO 2014 val" in coco.caption and coco.stem == "table5"
    assert "WS-FCN (ours)" in list(coco.comparison["Method"])


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_every_experiment_file_makes_a_table(path, tmp_path):
    experiment = load_experiment(path)
    table = experiment_table(experiment, pd.DataFrame())
    assert list(table.display["Run"]) == list(experiment.runs)
    assert {p.name for p in write_table(table, tmp_path)} == {
        f"{table.stem}.{e}" for e in ("md", "tex", "csv")
    }


def test_writers(tmp_path):
    table = experiment_table(TABLE1, table1_runs())
    md, tex, csv = write_table(table, tmp_path / "tables")
    text = md.read_text()
    assert text.startswith("**Table I.") and "| baseline |" in text and "58.50 ± 0.71 (n=2)" in text
    assert "| mclm     |      59.71 |                  – |" in text  # text left, numbers right, "–"
    latex = tex.read_text()
    assert r"58.50 $\pm$ 0.71 (n=2)" in latex and r"mclm\_srm" in latex and r"\label{tab:table1}" in latex
    frame = pd.read_csv(csv)
    assert list(frame["run"]) == list(TABLE1.runs)
    assert frame.loc[0, "mIoU_mean"] == pytest.approx(58.5) and math.isnan(frame.loc[1, "mIoU_mean"])
    assert format_terminal(table).count("\n| ") == 7  # header, rule, 5 runs
    assert latex_escape(r"a_b & 50% \x") == r"a\_b \& 50\% \textbackslash{}x"
    lines = markdown_table(pd.DataFrame({"a": ["x|y"], "b": ["1.00"]})).splitlines()
    assert lines == ["| a    |    b |", "| ---- | ---: |", "| x\\|y | 1.00 |"]


def _log(client, experiment_id, run, seed, miou, pixacc, n_params=None):
    created = client.create_run(experiment_id, run_name=f"{run}-s{seed}")
    rid = created.info.run_id
    tags = {
        "experiment": "table1_ablation",
        "run": run,
        "setting": "paper",
        "seed": str(seed),
        "dataset": "voc",
    }
    for key, value in tags.items():
        client.set_tag(rid, f"wsfcn.{key}", value)
    client.log_metric(rid, "mIoU", miou)
    client.log_metric(rid, "PixAcc", pixacc)
    if n_params is not None:
        client.log_metric(rid, "n_params", n_params)
    client.set_terminated(rid, "FINISHED")


def tables_stage():
    return load_stage("tables")


def test_tables_main_with_run_frame(tmp_path, capsys, monkeypatch):
    from wsfcn.stages import tables as stages

    stage = tables_stage()
    asked = []

    def fake_read_runs(uri, names):
        asked.append((uri, names))
        return pd.DataFrame([run_row("table4_voc", "val_crf", 0, 63.0, 90.0)])

    monkeypatch.setattr(stages, "read_runs", fake_read_runs)
    files = [str(ROOT / "experiments/table4_voc.yaml"), str(ROOT / "experiments/table3_inference.yaml")]
    argv = ["--params", str(ROOT / "params.yaml"), "--set", "tracking.uri=sqlite:///x.db"]
    assert stage.main([*argv, "--set", f"tables.out_dir={tmp_path}", "--experiments", *files]) == 0
    assert asked == [("sqlite:///x.db", ["table4_voc", "table3_inference"])]
    printed = capsys.readouterr().out
    assert printed.startswith("Table IV.") and "| WS-FCN + CRF (ours) |" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"table{n}.{e}" for n in (3, 4) for e in ("csv", "md", "tex")
    ]
    assert stage.main(["--experiments", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.slow
def test_tables_main_on_a_real_mlflow_store(tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient

    from wsfcn.integrations.mlflow_query import search_runs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert search_runs(uri, ["table1_ablation"]).empty and not (tmp_path / "mlflow.db").exists()  # no DB made
    client = MlflowClient(uri)
    exp = client.create_experiment("table1_ablation")
    _log(client, exp, "baseline", 0, 58.0, 87.0, n_params=137_104_500)
    _log(client, exp, "baseline", 1, 59.0, 88.0, n_params=137_104_500)
    _log(client, exp, "full", 0, 61.0, 89.5, n_params=147_342_886)
    assert len(search_runs(uri, ["table1_ablation", "nope"])) == 3

    stage = tables_stage()
    out = tmp_path / "tables"
    files = [str(ROOT / "experiments/table3_inference.yaml"), str(ROOT / "experiments/table1_ablation.yaml")]
    argv = ["--params", str(ROOT / "params.yaml"), "--set", f"tracking.uri={uri}"]
    code = stage.main([*argv, "--set", f"tables.out_dir={out}", "--experiments", *files])
    assert code == 0
    printed = capsys.readouterr().out
    assert (
        printed.startswith("Table III.") and "Ours: no finished runs logged yet" in printed
    )  # the first file
    md = (out / "table1.md").read_text()
    assert "58.50 ± 0.71 (n=2)" in md and "61.00 (n=1)" in md and "PASCAL VOC 2012 val, setting `paper`" in md
    assert {p.name for p in out.iterdir()} == {f"table{n}.{e}" for n in (1, 3) for e in ("md", "tex", "csv")}

    # --save-runs keeps the rows the tables came from; --runs-csv rebuilds the same tables from them
    saved, again = tmp_path / "results" / "runs.csv", tmp_path / "again"
    code = stage.main(
        [*argv, "--set", f"tables.out_dir={out}", "--experiments", *files, "--save-runs", str(saved)]
    )
    assert code == 0 and len(pd.read_csv(saved)) == 3
    offline = ["--params", str(ROOT / "params.yaml"), "--set", "tracking.uri=sqlite:///nowhere/x.db"]
    code = stage.main(
        [*offline, "--set", f"tables.out_dir={again}", "--experiments", *files, "--runs-csv", str(saved)]
    )
    assert code == 0
    for name in ("table1.md", "table1.csv", "table3.md"):
        assert (again / name).read_text() == (out / name).read_text(), name

    # several files: the rows of two stores together; a seed run in both counts once, the latest
    later = tmp_path / "results" / "runs_2.csv"
    uri2 = f"sqlite:///{tmp_path / 'second.db'}"
    client2 = MlflowClient(uri2)
    exp2 = client2.create_experiment("table1_ablation")
    _log(client2, exp2, "full", 0, 63.0, 90.0, n_params=147_342_886)  # a rerun of full-s0
    _log(client2, exp2, "full", 1, 65.0, 90.5, n_params=147_342_886)
    store2 = ["--params", str(ROOT / "params.yaml"), "--set", f"tracking.uri={uri2}", "--experiments", *files]
    assert stage.main([*store2, "--set", f"tables.out_dir={again}", "--save-runs", str(later)]) == 0
    both = tmp_path / "both"
    from_files = ["--experiments", *files, "--runs-csv", str(saved), str(later)]
    code = stage.main([*offline, "--set", f"tables.out_dir={both}", *from_files])
    assert code == 0
    md = (both / "table1.md").read_text()
    assert "58.50 ± 0.71 (n=2)" in md and "64.00 ± 1.41 (n=2)" in md  # full: 63 (not 61) and 65


def test_pipeline_result_lands_on_the_rows_its_params_reproduce():
    from wsfcn.params_coerce import flatten
    from wsfcn.params_yaml import load_params
    from wsfcn.report.pipeline_rows import matching_runs, pipeline_runs

    root = Path(__file__).resolve().parents[1]
    table1 = load_experiment(root / "experiments/table1_ablation.yaml")
    full = flatten(load_params(None, {**table1.overrides("full", "embedded")}))
    assert matching_runs(table1, full) == [("full", "embedded")]
    baseline = flatten(load_params(None, {**table1.overrides("baseline", "embedded")}))
    assert matching_runs(table1, baseline) == [("baseline", "embedded")]
    # a protocol the table does not use (multi-scale inference) matches no row
    multiscale = dict(full, **{"infer.scales": [1.0, 0.5]})
    assert matching_runs(table1, multiscale) == []
    rows = pipeline_runs(table1, full, {"mIoU": 71.5, "PixAcc": 90.1}, 0.0)
    numbers = experiment_table(table1, rows).numbers.set_index("run")
    assert numbers.loc["full", "mIoU_mean"] == pytest.approx(71.5)
    assert math.isnan(numbers.loc["baseline", "mIoU_mean"])
    table = experiment_table(table1, rows)
    assert "not VOC" in table.caption


def test_released_checkpoint_rows_are_kept_apart_and_subsets_say_so():
    """Runs of a checkpoint the sweep did not train get their own rows, never averaged in."""
    given = {
        "tags.wsfcn.trained_by_sweep": "false",
        "tags.wsfcn.checkpoint": "/models/ws-fcn.pt",
        "tags.wsfcn.checkpoint.sha256": "ab" * 32,
        "tags.wsfcn.checkpoint.source": "model_enc_e018Xs0.905.pth",
        "tags.wsfcn.checkpoint.note": "converted from the authors' release",
    }
    runs = pd.DataFrame(
        [
            run_row("table4_voc", "val", 0, 55.0, 85.0, **{"tags.wsfcn.trained_by_sweep": "true"}),
            run_row("table4_voc", "val", 0, 61.5, 90.0, **given, **{"params.infer.max_images": "0"}),
            run_row("table4_voc", "val_crf", 0, 63.0, 91.0, **given, **{"params.infer.max_images": "2"}),
        ]
    )
    table = experiment_table(TABLE4, runs)
    shown = table.display.set_index("Run")
    assert shown.loc["val", "mIoU ours"] == "55.00 (n=1)"  # the trained run alone
    assert shown.loc["val (released checkpoint)", "mIoU ours"] == "61.50 (n=1)"
    assert shown.loc["val (released checkpoint)", "Δ mIoU"] == "-0.07"  # method §12: 61.57 expected
    assert shown.loc["val_crf (released checkpoint) [2 images]", "mIoU ours"] == "63.00 (n=1)"
    assert shown.loc["val_crf", "mIoU ours"] == MISSING
    methods = list(table.comparison["Method"])
    assert methods[methods.index("WS-FCN") + 1 : methods.index("WS-FCN") + 3] == [
        "WS-FCN (ours)",
        "WS-FCN (released checkpoint)",
    ]
    assert "WS-FCN + CRF (released checkpoint, 2 images)" in methods
    notes = " ".join(table.notes)
    assert "not trained by this sweep" in notes and "model_enc_e018Xs0.905.pth" in notes
    assert "[N images]" in notes
    other = runs.assign(**{"tags.wsfcn.checkpoint.note": "mine"})
    assert "val (given checkpoint)" in list(experiment_table(TABLE4, other).display["Run"])


def test_dvc_result_of_a_converted_release_is_a_released_checkpoint_row():
    """The DVC path of docs/released-model.md: params.yaml (mini backbone) + the evaluation keys of Table
    IV's val_crf run and infer.checkpoint=ws-fcn.pt; the network is the checkpoint's, so only
    data/infer/eval keys match."""
    from wsfcn.params_coerce import flatten
    from wsfcn.params_yaml import load_params
    from wsfcn.report.pipeline_rows import pipeline_runs

    root = Path(__file__).resolve().parents[1]
    sets = {"data.name": "voc", "infer.checkpoint": "models/ws-fcn.pt", "infer.scales": [1.0, 0.5, 1.5, 2.0],
            "infer.flip": True, "infer.pad_size": 1024, "infer.bg_constant": 0.25,
            "eval.crf": True}  # fmt: skip
    flat = flatten(load_params(root / "params.yaml", sets))
    assert flat["model.backbone"] == "mini"
    provenance = {"source": "model_enc_e018Xs0.905.pth", "sha256": "cd" * 32,
                  "note": "converted from the authors' release"}  # fmt: skip
    metrics = {"mIoU": 63.23, "PixAcc": 91.0, "provenance": provenance}
    rows = pipeline_runs(TABLE4, flat, metrics, 0.0)
    assert list(rows["tags.wsfcn.run"]) == ["val_crf"] and list(rows["tags.wsfcn.setting"]) == ["paper"]
    assert rows["tags.wsfcn.checkpoint.source_sha256"].iloc[0] == "cd" * 32
    table = experiment_table(TABLE4, rows)
    shown = table.display.set_index("Run")
    assert shown.loc["val_crf (released checkpoint)", "Δ mIoU"] == "+0.00"
    assert "WS-FCN + CRF (released checkpoint)" in list(table.comparison["Method"])
    trained = pipeline_runs(TABLE4, flat, {"mIoU": 63.0, "PixAcc": 91.0}, 0.0)  # trained here: all keys count
    assert list(trained["tags.wsfcn.setting"]) == ["embedded"]  # the mini backbone is not the paper's


def test_the_tags_a_run_carries_are_the_columns_the_tables_read():
    from wsfcn.report.contract import TAG_COLUMNS, run_tags

    tags = run_tags("table1_ablation", "full", "embedded", 2, "synthetic")
    assert {f"tags.{k}" for k in tags} == set(TAG_COLUMNS.values())
    assert tags["wsfcn.seed"] == "2"
