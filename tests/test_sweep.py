"""Sweep planning without Ray: runs × seeds expansion, shared training, resume selection, trial body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from wsfcn.code_version import training_code_fingerprint
from wsfcn.config import ConfigError
from wsfcn.experiments import load_experiment
from wsfcn.params_yaml import load_params
from wsfcn.sweep.plan import (
    ChildRun,
    TrialOutcome,
    child_tags,
    count_outcomes,
    distinct_data,
    expand_trials,
    format_outcomes,
    select_pending,
    trial_hash,
    with_parent,
)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"


def write_experiment(path: Path, runs: dict, common: dict | None = None) -> Path:
    doc = {"name": "mini_table", "caption": "c", "common": common or {}, "settings": {"embedded": {}}}
    path.write_text(yaml.safe_dump({**doc, "runs": runs}, sort_keys=False))
    return path


def test_expand_runs_by_seeds_with_per_trial_folders(tmp_path):
    exp = load_experiment(SMOKE)
    specs = expand_trials(exp, "embedded", 2, base=None, extra={"train.seed": 5}, root=tmp_path)
    assert [s.trial_id for s in specs] == ["baseline-s5", "full-s5", "baseline-s6", "full-s6"]  # seed-major
    s = specs[2]
    folder = tmp_path / "outputs" / "sweeps" / "smoke" / "embedded" / "baseline-s6"
    p = s.to_params()
    assert Path(s.folder) == folder and (s.experiment, s.setting, s.run, s.seed) == (
        "smoke",
        "embedded",
        "baseline",
        6,
    )
    assert p.train.seed == 6 and p.train.run_name == "baseline-s6"
    assert Path(p.train.out_dir) == folder / "train"
    assert Path(p.infer.checkpoint) == folder / "train" / "best.pt"
    assert Path(p.infer.out_dir) == folder / "infer" and Path(p.eval.out_dir) == folder / "eval"
    assert Path(p.data.root) == tmp_path / "outputs" / "smoke" / "data"  # the file's data.root, made absolute
    assert p.tracking.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert (p.model.context, p.model.fusion) == ("aspp", "baseline")  # the run's overrides
    assert p.data.synthetic.num_train == 64  # the file's common block
    assert specs[1].to_params().model.context == "fca"


def test_set_wins_over_the_file_and_runs_filter(tmp_path):
    exp = load_experiment(SMOKE)
    specs = expand_trials(exp, "embedded", [3], runs=["full"], base=None,
                          extra={"model.context": "ppm", "train.epochs": 1}, root=tmp_path)  # fmt: skip
    assert [s.trial_id for s in specs] == ["full-s3"]
    assert specs[0].to_params().model.context == "ppm" and specs[0].to_params().train.epochs == 1


def test_trials_filter_keeps_the_named_trials_and_their_folders(tmp_path):
    exp = load_experiment(SMOKE)
    every = {s.trial_id: s for s in expand_trials(exp, "embedded", 2, base=None, root=tmp_path)}
    some = expand_trials(exp, "embedded", 2, base=None, root=tmp_path, trials=["full-s1", "baseline-s0"])
    assert [s.trial_id for s in some] == ["baseline-s0", "full-s1"]  # seed-major order kept
    assert all(s == every[s.trial_id] for s in some)  # same params, folders and hashes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"setting": "paper"}, "no setting 'paper'"),
        ({"runs": ["nope"]}, "no run 'nope'"),
        ({"seeds": 0}, "--seeds must be >= 1"),
        ({"trials": ["full-s1"]}, "--trials full-s1: not a trial"),
        ({"runs": ["baseline"], "trials": ["full-s0"]}, "--trials full-s0: not a trial"),
    ],
)
def test_bad_sweep_arguments_name_the_problem(tmp_path, kwargs, match):
    exp = load_experiment(SMOKE)
    args = {"setting": "embedded", "seeds": 1, **kwargs}
    with pytest.raises(ConfigError, match=match):
        expand_trials(exp, args.pop("setting"), args.pop("seeds"), base=None, root=tmp_path, **args)


def test_runs_differing_only_in_inference_share_one_training(tmp_path):
    runs = {"single": {"infer.flip": False}, "flip": {"infer.flip": True}, "ppm": {"model.context": "ppm"}}
    exp = load_experiment(write_experiment(tmp_path / "e.yaml", runs))
    specs = {s.trial_id: s.to_params() for s in expand_trials(exp, "embedded", 2, base=None, root=tmp_path)}
    base = tmp_path / "outputs" / "sweeps" / "mini_table" / "embedded"
    assert Path(specs["flip-s1"].train.out_dir) == base / "single-s1" / "train"
    assert Path(specs["flip-s1"].infer.checkpoint) == base / "single-s1" / "train" / "best.pt"
    assert Path(specs["flip-s1"].infer.out_dir) == base / "flip-s1" / "infer"  # own predictions
    assert Path(specs["single-s0"].train.out_dir) == base / "single-s0" / "train"  # seeds never share
    assert Path(specs["ppm-s0"].train.out_dir) == base / "ppm-s0" / "train"  # other training params
    # --runs does not move the shared folder: it belongs to the first run of the file
    only = expand_trials(exp, "embedded", 1, runs=["flip"], base=None, root=tmp_path)[0].to_params()
    assert Path(only.train.out_dir) == base / "single-s0" / "train"


def test_a_training_another_experiment_finished_is_used_where_it_lies(tmp_path):
    from wsfcn.checkpoints import save_checkpoint

    table1 = {"baseline": {"model.context": "aspp"}, "full": {"infer.flip": True}}
    exp1 = load_experiment(write_experiment(tmp_path / "t1.yaml", table1))
    done = {s.trial_id: s.to_params() for s in expand_trials(exp1, "embedded", 2, base=None, root=tmp_path)}
    for trial, epochs in (("full-s0", done["full-s0"].train.epochs), ("full-s1", 1)):  # s1: unfinished
        params = done[trial]
        save_checkpoint(Path(params.train.out_dir) / "last.pt", model=torch.nn.Linear(1, 1), epoch=epochs,
                        params=params, num_classes=2,
                        code_fingerprint=training_code_fingerprint())  # fmt: skip
    doc = yaml.safe_load((tmp_path / "t1.yaml").read_text()) | {"name": "table3"}
    doc["runs"] = {"single": {"infer.flip": False}, "flip": {"infer.flip": True}}
    (tmp_path / "t3.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    exp3 = load_experiment(tmp_path / "t3.yaml")
    specs = {s.trial_id: s.to_params() for s in expand_trials(exp3, "embedded", 2, base=None, root=tmp_path)}
    assert specs["single-s0"].train.out_dir == specs["flip-s0"].train.out_dir == done["full-s0"].train.out_dir
    assert specs["flip-s0"].infer.checkpoint == str(Path(done["full-s0"].train.out_dir) / "best.pt")
    base = tmp_path / "outputs" / "sweeps" / "table3" / "embedded"
    assert Path(specs["flip-s1"].train.out_dir) == base / "single-s1" / "train"  # the other one is unfinished
    assert Path(specs["flip-s0"].infer.out_dir) == base / "flip-s0" / "infer"  # predictions stay its own
    # a run of its own (even unfinished) is kept rather than another experiment's
    own = Path(specs["flip-s1"].train.out_dir) / "last.pt"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"")
    (base.parent.parent / "t1_ablation").mkdir()  # an experiment folder without this setting is fine
    again = expand_trials(exp3, "embedded", 2, base=None, root=tmp_path)
    assert Path(again[2].to_params().train.out_dir) == base / "single-s1" / "train"


@pytest.mark.parametrize("setting", ["embedded", "paper"])
def test_table2_rows_that_are_table1_rows_reuse_table1s_trainings(tmp_path, setting):
    """baseline, fca and sf2 of Table II train what Table I's baseline, mclm_srm and sf2 train: once
    Table I's sweep finished them, Table II's sweep infers from them; its other six rows train anew."""
    from wsfcn.checkpoints import save_checkpoint

    table1 = load_experiment(ROOT / "experiments" / "table1_ablation.yaml")
    table2 = load_experiment(ROOT / "experiments" / "table2_alternatives.yaml")
    base = ROOT / "params.yaml"
    done = {s.trial_id: s.to_params() for s in expand_trials(table1, setting, 1, base=base, root=tmp_path)}
    for params in done.values():
        save_checkpoint(Path(params.train.out_dir) / "last.pt", model=torch.nn.Linear(1, 1),
                        epoch=params.train.epochs, params=params, num_classes=2,
                        code_fingerprint=training_code_fingerprint())  # fmt: skip
    specs = {s.trial_id: s.to_params() for s in expand_trials(table2, setting, 1, base=base, root=tmp_path)}
    shared = {"baseline-s0": "baseline-s0", "fca-s0": "mclm_srm-s0", "sf2-s0": "sf2-s0"}
    for trial, table1_trial in shared.items():
        assert specs[trial].train.out_dir == done[table1_trial].train.out_dir, trial
    table1_dirs = {p.train.out_dir for p in done.values()}
    own = {t: p.train.out_dir for t, p in specs.items() if t not in shared}
    assert len(own) == 6 and not table1_dirs & set(own.values()), own


def test_trial_hash_ignores_paths_but_not_settings():
    p = load_params(None)
    same = load_params(None, {"train.out_dir": "/x", "data.root": "/y", "tracking.uri": "sqlite:////z.db"})
    assert trial_hash(p) == trial_hash(same)
    for key, value in [
        ("model.context", "ppm"),
        ("infer.flip", False),
        ("train.seed", 1),
        ("eval.crf", True),
    ]:
        assert trial_hash(load_params(None, {key: value})) != trial_hash(p), key


def spec_pair(tmp_path):
    specs = expand_trials(load_experiment(SMOKE), "embedded", 1, base=None, root=tmp_path)
    return with_parent(specs, "P1")


def child(run, seed, status, hash_, run_id, **metrics):
    tags = {"wsfcn.run": run, "wsfcn.seed": str(seed), "wsfcn.trial_hash": hash_}
    return ChildRun(run_id, status, tags, metrics)


def test_select_pending_skips_only_finished_trials_with_the_same_params(tmp_path):
    base, full = spec_pair(tmp_path)
    children = [
        child("baseline", 0, "FINISHED", base.trial_hash, "old", mIoU=1.0),
        child("baseline", 0, "FINISHED", base.trial_hash, "new", mIoU=2.0, PixAcc=3.0, loss=9.0),
        child("full", 0, "FINISHED", "another-hash", "edited"),
        child("full", 0, "FAILED", full.trial_hash, "failed"),
        child("full", 0, "RUNNING", full.trial_hash, "stale"),
        child("baseline", 1, "FINISHED", base.trial_hash, "other-seed"),
    ]
    todo, skipped, stale = select_pending([base, full], children)
    assert [s.trial_id for s in todo] == ["full-s0"]
    assert skipped == [TrialOutcome("baseline-s0", "SKIPPED", {"mIoU": 2.0, "PixAcc": 3.0}, run_id="new")]
    assert stale == ["stale"]
    assert select_pending([base, full], []) == ([base, full], [], [])


def test_child_tags_follow_the_logging_contract(tmp_path):
    base, _ = spec_pair(tmp_path)
    tags = child_tags(base, base.to_params())
    contract = {
        "experiment": "smoke",
        "run": "baseline",
        "setting": "embedded",
        "seed": "0",
        "dataset": "synthetic",
    }
    assert {k: tags[f"wsfcn.{k}"] for k in contract} == contract
    assert tags["mlflow.parentRunId"] == "P1" and tags["wsfcn.sweep"] == "smoke/embedded"


def test_distinct_data_and_folder_collisions():
    a = load_params(None).data
    b = load_params(None, {"data.root": "/elsewhere", "data.synthetic.num_train": 8}).data
    assert distinct_data([a, a, b]) == [a, b]
    clash = load_params(None, {"data.synthetic.num_train": 8}).data
    with pytest.raises(ConfigError, match="would both prepare"):
        distinct_data([a, clash])


def test_outcome_table_and_counts():
    outcomes = [
        TrialOutcome("a-s0", "FINISHED", {"mIoU": 61.234, "PixAcc": 88.0}, run_id="r1"),
        TrialOutcome("b-s0", "FAILED", error="ValueError: boom"),
        TrialOutcome("c-s0", "SKIPPED", {"mIoU": 1.0}),
    ]
    text = format_outcomes(outcomes)
    assert "61.23" in text and "88.00" in text and "FAILED b-s0: ValueError: boom" in text
    assert text.splitlines()[3].split()[2:4] == ["1.00", "–"]
    assert count_outcomes(outcomes) == {"finished": 1, "failed": 1, "skipped": 1}


# ---------------------------------------------------------------------------------------------
# run_trial with fake training / inference and a fake MLflow
class FakeTracker:
    runs: dict = {}

    def __init__(self, uri, run_id):
        self.uri, self.run_id = uri, run_id
        self.record = FakeTracker.runs.setdefault(run_id, {"tags": {}, "metrics": {}, "status": None})
        self.client = self

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        self.record["metrics"].update({m.key: m.value for m in metrics})

    def set_tags(self, tags):
        self.record["tags"].update(tags)

    def log_metrics(self, values, step=0):
        self.record["metrics"].update(values)

    def log_artifact(self, path, artifact_path=None):
        self.record.setdefault("artifacts", []).append(path)

    def finish(self, status="FINISHED"):
        self.record["status"] = status


@pytest.fixture
def fake_mlflow(monkeypatch):
    import wsfcn.integrations.mlflow_log as mlflow_log

    FakeTracker.runs = {}

    def start_run(params, exp, name, *, tags=None, **kw):
        FakeTracker.runs.setdefault(f"{exp}/{name}", {"tags": {}, "metrics": {}, "status": None})
        FakeTracker.runs[f"{exp}/{name}"]["tags"].update(tags or {})
        return f"{exp}/{name}"

    monkeypatch.setattr(mlflow_log, "start_run", start_run)
    monkeypatch.setattr(mlflow_log, "MLflowReporter", FakeTracker)
    return FakeTracker.runs


def fake_fit(calls):
    from wsfcn.checkpoints import save_checkpoint
    from wsfcn.train.loop import FitResult

    def train(params, *, mlflow_run, report, quiet):
        calls.append(mlflow_run)
        out = Path(params.train.out_dir)
        state = {"n_params": 42, "best_epoch": 2, "best_score": 0.5, "history": []}
        epochs = params.train.epochs
        model = torch.nn.Linear(2, 2)
        save_checkpoint(
            out / "last.pt", model=model, epoch=epochs, params=params, metrics=state, num_classes=9,
            code_fingerprint=training_code_fingerprint(),
        )  # fmt: skip
        return FitResult(out, out / "last.pt", out / "best.pt", params.train.epochs, 2, 0.5, 42,
                         code_fingerprint=training_code_fingerprint())  # fmt: skip

    return train


def test_run_trial_logs_metrics_and_reuses_a_finished_training(tmp_path, fake_mlflow):
    from wsfcn.sweep.trial import run_trial

    base, _ = spec_pair(tmp_path)
    calls = []
    post = lambda params, quiet: {"mIoU": 61.5, "PixAcc": 88.25, "files": []}  # noqa: E731
    summary = run_trial(base, train=fake_fit(calls), post=post)
    record = fake_mlflow["smoke/baseline-s0"]
    assert record["status"] == "FINISHED" and [run for _, run in calls] == ["smoke/baseline-s0"]
    assert record["metrics"] == {"n_params": 42.0, "mIoU": 61.5, "PixAcc": 88.25}
    assert record["tags"]["mlflow.parentRunId"] == "P1" and record["tags"]["wsfcn.run"] == "baseline"
    assert summary["mIoU"] == 61.5 and not summary["train_reused"]
    assert json.loads((Path(base.folder) / "result.json").read_text())["run_id"] == "smoke/baseline-s0"
    again = run_trial(base, train=fake_fit(calls), post=post)  # last.pt holds train.epochs epochs
    assert len(calls) == 1 and again["train_reused"] and again["n_params"] == 42


def test_a_training_made_by_other_code_is_neither_planned_in_nor_reused(tmp_path, fake_mlflow):
    """The planner maps a trial onto another experiment's training, and a trial reuses a finished
    last.pt, only when that training's code fingerprint equals this process's."""
    from wsfcn.checkpoints import save_checkpoint
    from wsfcn.sweep.trial import run_trial

    table1 = {"baseline": {"model.context": "aspp"}, "full": {"infer.flip": True}}
    exp1 = load_experiment(write_experiment(tmp_path / "t1.yaml", table1))
    done = {s.trial_id: s.to_params() for s in expand_trials(exp1, "embedded", 2, base=None, root=tmp_path)}
    for trial, code in (("full-s0", training_code_fingerprint()), ("full-s1", "0ther0c0de0000000")):
        params = done[trial]
        save_checkpoint(Path(params.train.out_dir) / "last.pt", model=torch.nn.Linear(1, 1),
                        epoch=params.train.epochs, params=params, num_classes=2,
                        code_fingerprint=code)  # fmt: skip
    doc = yaml.safe_load((tmp_path / "t1.yaml").read_text()) | {"name": "table3"}
    doc["runs"] = {"flip": {"infer.flip": True}}
    (tmp_path / "t3.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    specs = {s.trial_id: s for s in expand_trials(load_experiment(tmp_path / "t3.yaml"), "embedded", 2,
                                                  base=None, root=tmp_path)}  # fmt: skip
    assert specs["flip-s0"].to_params().train.out_dir == done["full-s0"].train.out_dir  # same code: reused
    base = tmp_path / "outputs" / "sweeps" / "table3" / "embedded"
    assert Path(specs["flip-s1"].to_params().train.out_dir) == base / "flip-s1" / "train"  # other code

    # at the trial: a finished last.pt of other code in the trial's own folder trains again
    own, _ = spec_pair(tmp_path / "trial")
    params = own.to_params()
    save_checkpoint(Path(params.train.out_dir) / "last.pt", model=torch.nn.Linear(2, 2),
                    epoch=params.train.epochs, params=params, num_classes=9,
                    metrics={"n_params": 42, "best_epoch": 2, "best_score": 0.5, "history": []},
                    code_fingerprint="0ther0c0de0000000")  # fmt: skip
    calls = []
    post = lambda params, quiet: {"mIoU": 61.5, "PixAcc": 88.25, "files": []}  # noqa: E731
    first = run_trial(own, train=fake_fit(calls), post=post)
    assert len(calls) == 1 and not first["train_reused"]
    record = fake_mlflow["smoke/baseline-s0"]
    assert record["tags"]["wsfcn.code_fingerprint"] == training_code_fingerprint()
    again = run_trial(own, train=fake_fit(calls), post=post)  # now made by this code: reused
    assert len(calls) == 1 and again["train_reused"]


def test_run_trial_failure_marks_the_child_failed_and_reraises(tmp_path, fake_mlflow):
    from wsfcn.sweep.trial import run_trial

    _, full = spec_pair(tmp_path)

    def post(params, quiet):
        raise ValueError("no masks for split 'nosuch'")

    with pytest.raises(ValueError, match="nosuch"):
        run_trial(full, train=fake_fit([]), post=post)
    record = fake_mlflow["smoke/full-s0"]
    assert record["status"] == "FAILED"
    assert record["tags"]["wsfcn.error"] == "ValueError: no masks for split 'nosuch'"
    assert "ValueError" in (Path(full.folder) / "error.txt").read_text()
    assert "mIoU" not in record["metrics"]


def test_trial_and_worker_resources():
    from wsfcn.sweep.resources import trial_resources, worker_resources

    cpu2 = {"CPU": 2.0, "GPU": 0.0}
    local = load_params(None, {"train.num_workers": 0})
    assert trial_resources(local, cpu2, 0) == {"cpu": 1.0, "gpu": 0.0}
    assert trial_resources(local, cpu2, 1) == {"cpu": 2.0, "gpu": 0.0}
    assert trial_resources(load_params(None, {"train.use_gpu": True}), {"CPU": 16, "GPU": 2}, 2)["gpu"] == 1.0
    ddp = load_params(None, {"train.num_workers": 2})
    assert trial_resources(ddp, cpu2, 1) == {"cpu": 0.01}
    assert worker_resources(ddp, cpu2, 1) == {"CPU": 0.99}  # 0.01 + 2 x 0.99 <= 2 (stack §2)
    assert worker_resources(ddp, {"CPU": 16.0, "GPU": 4.0}, 2) == {"CPU": 3.99, "GPU": 1.0}


def test_a_trial_larger_than_the_cluster_is_a_config_error(tmp_path):
    from wsfcn.sweep.resources import check_fits

    cpu2 = {"CPU": 2.0, "GPU": 0.0}
    specs = expand_trials(load_experiment(SMOKE), "embedded", 1, base=None, root=tmp_path)
    check_fits(specs[0], cpu2, 0)  # in-process, 1 CPU: fits
    gpu = expand_trials(load_experiment(SMOKE), "embedded", 1, base=None, root=tmp_path,
                        extra={"train.use_gpu": True})[0]  # fmt: skip
    with pytest.raises(ConfigError, match="needs 1 GPUs .* has 0"):
        check_fits(gpu, cpu2, 0)
    ddp = expand_trials(load_experiment(SMOKE), "embedded", 1, base=None, root=tmp_path,
                        extra={"train.num_workers": 3})[0]  # fmt: skip
    check_fits(ddp, {"CPU": 2.0, "GPU": 0.0}, 1)  # 0.01 + 3 x 0.66
    with pytest.raises(ConfigError, match="cannot host train.num_workers=3"):
        check_fits(ddp, {"CPU": 0.02, "GPU": 0.0}, 1)


def test_a_given_checkpoint_is_evaluated_not_trained(tmp_path, fake_mlflow):
    """``ablate.py --checkpoint FILE``: every trial predicts from FILE, trains nothing, and its
    child carries FILE's provenance; the trial hash tells it apart from a trained trial."""
    import hashlib

    from wsfcn.checkpoints import save_converted_checkpoint
    from wsfcn.model import build_model, count_parameters
    from wsfcn.sweep.trial import run_trial

    params = load_params(None, {"model.backbone": "mini", "model.head_channels": 16})
    model = build_model(params.model, 9)
    path = tmp_path / "given.pt"
    record = {"source": "model.pth", "sha256": "ab" * 32, "note": "converted from the authors' release"}
    save_converted_checkpoint(path, state_dict=model.state_dict(), params=params, num_classes=9,
                              provenance=record)  # fmt: skip
    experiment = load_experiment(SMOKE)
    trained = expand_trials(experiment, "embedded", 1, base=None, root=tmp_path)
    given = expand_trials(experiment, "embedded", 1, base=None, root=tmp_path, checkpoint="given.pt")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for spec, other in zip(given, trained, strict=True):
        p = spec.to_params()
        assert spec.checkpoint == str(path) == p.infer.checkpoint and spec.checkpoint_sha256 == sha
        assert p.train.num_workers == 0 and spec.trial_hash != other.trial_hash
        assert child_tags(spec, p)["wsfcn.trained_by_sweep"] == "false"
        assert child_tags(other, other.to_params())["wsfcn.trained_by_sweep"] == "true"
    with pytest.raises(ConfigError, match="--checkpoint nope.pt: no such file"):
        expand_trials(experiment, "embedded", 1, base=None, root=tmp_path, checkpoint="nope.pt")

    def train(*args, **kwargs):
        raise AssertionError("a given checkpoint must not train")

    seen = []
    post = lambda params, quiet: seen.append(params.infer.checkpoint) or {"mIoU": 50.0, "PixAcc": 80.0}  # noqa: E731
    summary = run_trial(with_parent(given, "P1")[0], train=train, post=post)
    tags = fake_mlflow[f"smoke/{given[0].trial_id}"]["tags"]
    assert seen == [str(path)] and summary["checkpoint"] == str(path) and summary["best_epoch"] is None
    assert summary["n_params"] == count_parameters(model)
    assert tags["wsfcn.trained_by_sweep"] == "false" and tags["wsfcn.checkpoint"] == str(path)
    assert tags["wsfcn.checkpoint.sha256"] == sha and tags["wsfcn.checkpoint.source_sha256"] == "ab" * 32
    assert tags["wsfcn.checkpoint.source"] == "model.pth" and tags["wsfcn.checkpoint.note"] == record["note"]
    assert not (Path(given[0].folder) / "train").exists()
