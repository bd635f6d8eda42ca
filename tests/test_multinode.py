"""A real two-node Ray cluster (docs/cluster.md), with shared storage on an object store.

One module-wide set of services, each a separate process tree started here and stopped by process
id: a Ray head and a Ray worker node (``ray start --block``, 1 CPU each, their own temp dirs), a moto
S3 server (``train.storage: s3://…``) and an ``mlflow server`` (``tracking.uri: http://…``), all on
free 127.0.0.1 ports. Ray 2.60 itself replaces 127.0.0.1 by the machine's address as the node IP
and its gRPC servers listen on every interface; nothing else is reachable from outside.

* a two-trial sweep (``pipeline/ablate.py --quiet``) whose trials run on different nodes, with Tune's
  results on S3 and the child runs on the tracking server;
* a 2-worker Ray Train run, one worker per node, whose rank-1 worker process dies in epoch 3: the
  group restarts and resumes from the checkpoint on S3 (each node has its own ``out_dir``, and the
  restarted rank 0 finds no ``last.pt`` on its disk), and the driver fetches the final state.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.services import free_port, http_ok, port_open, service, stop_session, wait_until
from helpers.tiny import SWEEP, as_sets, prepare_tiny_data, training_params
from test_mlflow_server import server_command

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "wsfcn-cluster"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
RAY_LINE = ("(RayTrainWorker", "(TrainController", "(_trainable", "(_post_task")

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def ray_commands(port: int, temp: Path) -> tuple[list[str], list[str]]:
    """The ``ray start`` lines of docs/cluster.md: a head and a worker node of 1 CPU each, in the
    foreground."""
    ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1",
           "--node-ip-address", "127.0.0.1", "--object-store-memory", str(128 * 2**20),
           "--disable-usage-stats"]  # fmt: skip
    head = [*ray, "--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", f"{temp}-h"]
    worker = [*ray, "--address", f"127.0.0.1:{port}", "--temp-dir", f"{temp}-w"]
    return head, worker


def environment(s3_url: str) -> dict[str, str]:
    """This tree's wsfcn on every node, the S3 endpoint and test credentials, no outside settings."""
    drop = ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AWS_")}
    return env | AWS | {"AWS_ENDPOINT_URL": s3_url, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT),
                        "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip


def alive_nodes(address: str) -> list[str]:
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        return [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dict(address, nodes, s3_url, s3, mlflow_url, env)`` of the running two-node cluster."""
    import boto3

    folder = tmp_path_factory.mktemp("cluster")
    s3_port, ray_port, ml_port = free_port(), free_port(), free_port()
    s3_url, ml_url, address = (
        f"http://127.0.0.1:{s3_port}",
        f"http://127.0.0.1:{ml_port}",
        f"127.0.0.1:{ray_port}",
    )
    env = environment(s3_url)
    temp = Path(f"/tmp/wsfcn-mn-{ray_port}")  # short: Ray's unix-socket paths are limited
    head, worker = ray_commands(ray_port, temp)
    stop_ray = functools.partial(stop_session, grace_s=10)
    moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)]
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, f"{temp}-h", True)
        stack.callback(shutil.rmtree, f"{temp}-w", True)
        s3_log, ml_log, head_log, worker_log = (
            folder / f"{n}.log" for n in ("moto", "mlflow", "head", "worker")
        )
        s3_proc = stack.enter_context(service(moto, log=s3_log, cwd=folder, env=env))
        ml_env = env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        ml_proc = stack.enter_context(
            service(server_command(ml_port, folder), log=ml_log, cwd=folder, env=ml_env)
        )
        head_proc = stack.enter_context(service(head, log=head_log, cwd=folder, env=env, stop=stop_ray))
        wait_until(lambda: port_open(ray_port), head_proc, head_log, "ray head", 120)
        worker_proc = stack.enter_context(service(worker, log=worker_log, cwd=folder, env=env, stop=stop_ray))
        wait_until(lambda: http_ok(s3_url + "/moto-api/"), s3_proc, s3_log, "moto server", 60)
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        wait_until(lambda: http_ok(ml_url + "/health", "OK"), ml_proc, ml_log, "mlflow server", 150)
        nodes: list[str] = []

        def two_nodes() -> bool:
            try:
                nodes[:] = alive_nodes(address)
            except Exception:  # the worker node is still starting
                return False
            return len(nodes) == 2

        wait_until(two_nodes, worker_proc, worker_log, "ray worker node", 120)
        yield {
            "address": address,
            "nodes": nodes,
            "s3_url": s3_url,
            "s3": s3,
            "mlflow_url": ml_url,
            "env": env,
        }


def s3_keys(s3, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_two_trial_sweep_runs_one_trial_per_node_with_storage_on_s3(cluster, tmp_path):
    from mlflow.tracking import MlflowClient

    sets = {**SWEEP, "train.ray_address": cluster["address"], "train.storage": f"s3://{BUCKET}/sweeps",
            "tracking.uri": cluster["mlflow_url"], "tracking.enabled": "true"}  # fmt: skip
    command = [sys.executable, str(ROOT / "pipeline" / "ablate.py"), "--experiment",
               str(ROOT / "experiments" / "smoke.yaml"), "--params", str(ROOT / "params.yaml"), "--quiet",
               *as_sets(sets)]  # fmt: skip
    start = time.monotonic()
    out = subprocess.run(
        command, cwd=tmp_path, env=cluster["env"], capture_output=True, text=True, timeout=300
    )
    seconds = time.monotonic() - start
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    print(f"two-node sweep: {seconds:.1f} s")
    assert "2/2 trials finished" in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith(RAY_LINE)], text[-3000:]

    client = MlflowClient(cluster["mlflow_url"])
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2
    node_ids = {r.data.tags["wsfcn.node_id"] for r in children}
    assert node_ids == set(cluster["nodes"])  # one trial on each node
    assert {r.data.tags["wsfcn.torch_threads"] for r in children} == {"1"}  # the 1 CPU Ray granted
    assert all("mIoU" in r.data.metrics for r in children)
    keys = s3_keys(cluster["s3"], "sweeps/sweep-smoke-embedded/")
    assert any(k.endswith("experiment_state.json") or "experiment_state" in k for k in keys), keys[:20]


def node_local_loop(config: dict) -> None:
    """train_loop_per_worker with a per-node ``out_dir`` (a node's local disk); rank 1 exits hard at the
    start of epoch 3 the first time (Ray registers a checkpoint up to one report late: epoch 1's is
    surely on S3 by then), and a restarted worker finds its node's ``last.pt`` and ``best.pt`` gone.
    The selection keeps epoch 2, so ``best.pt`` is not ``last.pt`` and must travel on its own."""
    import ray
    import ray.train

    import wsfcn.train.loop
    from wsfcn.integrations.ray_train import train_loop_per_worker

    marks = Path(config["marks"])
    node = ray.get_runtime_context().get_node_id()
    rank = ray.train.get_context().get_world_rank()
    attempt = len(list(marks.glob(f"start-{rank}-*")))
    (marks / f"start-{rank}-{attempt}-{node}").touch()
    params = copy.deepcopy(config["params"])
    out_dir = marks.parent / f"node-{node[:12]}"
    params["train"]["out_dir"] = str(out_dir)
    if attempt > 0:  # as on a fresh node: only the checkpoint on shared storage is left
        (out_dir / "last.pt").unlink(missing_ok=True)
        (out_dir / "best.pt").unlink(missing_ok=True)
    real = wsfcn.train.loop.train_one_epoch

    def keep_epoch_2(state, entry, tp):
        if entry["epoch"] != 2:
            return False
        state.update(best_epoch=2, best_score=1.0)
        return True

    def maybe_crash(*args, **kwargs):
        import torch

        (marks / f"threads-{rank}").write_text(str(torch.get_num_threads()))
        if kwargs["epoch"] == 3 and rank == 1 and not (marks / "crashed").exists():
            (marks / "crashed").touch()
            os._exit(1)
        return real(*args, **kwargs)

    wsfcn.train.loop.train_one_epoch = maybe_crash
    wsfcn.train.loop.select_best = keep_epoch_2
    train_loop_per_worker({**config, "params": params})


def test_two_workers_on_two_nodes_survive_a_dead_worker_and_resume_from_s3(
    cluster, tmp_path, monkeypatch, capfd
):
    import ray
    import ray.cloudpickle
    from mlflow.tracking import MlflowClient

    from wsfcn.checkpoints import load_checkpoint
    from wsfcn.code_version import training_code_fingerprint
    from wsfcn.integrations import ray_train
    from wsfcn.integrations.mlflow_log import start_run
    from wsfcn.params_io import absolute_paths, fingerprint
    from wsfcn.train.loop import FitResult, fit

    for key, value in cluster["env"].items():
        if key.startswith("AWS_") or key == "RAY_AUTH_MODE":
            monkeypatch.setenv(key, value)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the nodes cannot import tests/
    data = prepare_tiny_data(tmp_path)
    url = cluster["mlflow_url"]
    params = absolute_paths(training_params(
        data, tmp_path / "out", train__num_workers=2, train__epochs=3, train__max_failures=1,
        train__run_name="ray2", train__storage=f"s3://{BUCKET}/train", train__ray_address=cluster["address"],
        tracking__uri=url, tracking__enabled=True,
    ))  # fmt: skip
    run_id = start_run(params, "multinode", "ray2")
    marks = tmp_path / "marks"
    marks.mkdir()

    def loop(config):
        node_local_loop({**config, "marks": str(marks)})

    start = time.monotonic()
    try:
        checkpoint = ray_train.launch_torch_trainer(
            params, fit=fit, fresh=True, mlflow_run=(url, run_id), quiet=True, loop=loop
        )
    finally:
        ray.shutdown()
    print(f"two-node Ray Train run with a restart: {time.monotonic() - start:.1f} s")
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert not [line for line in text.splitlines() if line.lstrip().startswith(RAY_LINE)], text[-3000:]

    assert (marks / "crashed").exists()  # the worker did die
    first = {p.name.split("-")[1]: p.name.split("-", 3)[3] for p in marks.glob("start-*-0-*")}
    assert set(first) == {"0", "1"} and set(first.values()) == set(cluster["nodes"])  # one per node
    assert list(marks.glob("start-0-1-*")), "the worker group was not restarted"
    # 1 thread each: the CPU Ray granted (alone on its node, the machine's 2 cores would give 2)
    assert [(marks / f"threads-{rank}").read_text() for rank in (0, 1)] == ["1", "1"]

    last = tmp_path / "out" / "last.pt"
    assert not last.exists()  # rank 0 wrote last.pt on its node's disk only
    assert ray_train.fetch_last(
        checkpoint, last, fingerprint(params), code=training_code_fingerprint()
    )  # the driver gets it from S3
    result = FitResult.from_checkpoint(last)
    assert result.epochs == 3 and [e["epoch"] for e in result.history] == [1, 2, 3]
    state = load_checkpoint(last)
    assert state["metrics"]["resumed_from"] >= 1  # from the checkpoint on S3
    # best.pt travels with the Ray checkpoint: the driver holds the epoch the run selected, not the last
    assert state["metrics"]["best_epoch"] == 2
    assert load_checkpoint(tmp_path / "out" / "best.pt")["epoch"] == 2
    assert any("/checkpoint_" in k for k in s3_keys(cluster["s3"], "train/ray2/"))
    history = MlflowClient(url).get_metric_history(run_id, "loss")
    assert sorted({m.step for m in history}) == [1, 2, 3]
