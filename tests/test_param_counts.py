"""The paper's Params (M) for Tables I and II, counted on WideResNet-38 without running it (method §11)."""

import json
from pathlib import Path

import pytest

from wsfcn.cli import main
from wsfcn.report.param_counts import count_experiment

ROOT = Path(__file__).resolve().parents[1]

PAPER = {
    "table1_ablation.yaml": {
        "baseline": 137.10,
        "mclm": 143.52,
        "mclm_srm": 143.52,
        "sf2": 140.92,
        "full": 147.34,
    },
    "table2_alternatives.yaml": {
        "baseline": 137.10,
        "nonlocal": 140.97,
        "largeconv": 157.75,
        "ppm": 142.03,
        "fca": 143.52,
        "sum": 140.85,
        "concat": 142.03,
        "mul": 140.85,
        "sf2": 140.92,
    },
}
EXACT = {
    "baseline": 137_104_500,
    "sf2": 140_922_388,
    "full": 147_342_886,
    "mclm_srm": 143_524_998,
    "mclm": 143_524_980,
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_counts_match_paper(name):
    counts = count_experiment(str(ROOT / "experiments" / name), "paper", str(ROOT / "params.yaml"))
    assert set(counts) == set(PAPER[name])
    for run, paper_m in PAPER[name].items():
        assert round(counts[run] / 1e6, 2) == pytest.approx(paper_m, abs=1e-9), (run, counts[run])


def test_exact_trainable_counts_table1():
    counts = count_experiment(
        str(ROOT / "experiments/table1_ablation.yaml"), "paper", str(ROOT / "params.yaml")
    )
    for run, value in EXACT.items():
        assert counts[run] == value, run


def test_cli_json(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["count-params", "--experiment", "experiments/table1_ablation.yaml", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert {k: round(v / 1e6, 2) for k, v in counts.items()} == PAPER["table1_ablation.yaml"]
