"""The two-trial smoke sweep on a two-node Ray cluster (1 + 1 CPU) against one node of 2 CPUs.

Both runs use what ``tests/test_multinode.py`` starts (``ray start`` nodes, a moto S3 server for
``train.storage``, an ``mlflow server`` for ``tracking.uri``) and the same ``pipeline/ablate.py``
command; only the Ray nodes differ. Prints the sweep's wall time for each (cluster start-up excluded).

    python benchmarks/bench_cluster.py [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.services import free_port, http_ok, port_open, service, stop_session, wait_until  # noqa: E402
from test_mlflow_server import server_command  # noqa: E402
from test_multinode import BUCKET, TINY_SWEEP, alive_nodes, environment, ray_commands  # noqa: E402


def sweep(folder: Path, env: dict, address: str, ml_url: str, name: str) -> float:
    sets = {**TINY_SWEEP, "train.ray_address": address, "train.storage": f"s3://{BUCKET}/{name}",
            "tracking.uri": ml_url, "tracking.enabled": "true"}  # fmt: skip
    command = [sys.executable, str(ROOT / "pipeline" / "ablate.py"), "--experiment",
               str(ROOT / "experiments" / "smoke.yaml"), "--params", str(ROOT / "params.yaml"), "--quiet",
               *(f"--set={k}={v}" for k, v in sets.items())]  # fmt: skip
    work = folder / name
    work.mkdir()
    start = time.monotonic()
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True, text=True, timeout=600)
    return time.monotonic() - start


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    s3_port, ml_port = free_port(), free_port()
    s3_url, ml_url = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{ml_port}"
    env = environment(s3_url)
    stop_ray = functools.partial(stop_session, grace_s=10)
    times: dict[str, list[float]] = {"two nodes (1 + 1 CPU)": [], "one node (2 CPUs)": []}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)]
        s3_proc = stack.enter_context(service(moto, log=folder / "moto.log", cwd=folder, env=env))
        ml_env = env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        ml_proc = stack.enter_context(
            service(server_command(ml_port, folder), log=folder / "mlflow.log", cwd=folder, env=ml_env)
        )
        wait_until(lambda: http_ok(s3_url + "/moto-api/"), s3_proc, folder / "moto.log", "moto", 60)
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)  # fmt: skip
        wait_until(lambda: http_ok(ml_url + "/health", "OK"), ml_proc, folder / "mlflow.log", "mlflow", 150)
        for repeat in range(args.repeat):
            for layout in times:
                port = free_port()
                temp = Path(f"/tmp/wsfcn-bc-{port}")
                head, worker = ray_commands(port, temp)
                nodes = [head, worker]
                if layout.startswith("one"):
                    nodes = [
                        [*head[: head.index("--num-cpus") + 1], "2", *head[head.index("--num-cpus") + 2 :]]
                    ]
                with contextlib.ExitStack() as ray_stack:
                    for i, command in enumerate(nodes):
                        ray_stack.callback(shutil.rmtree, f"{temp}-{'hw'[i]}", True)
                        log = folder / f"ray-{port}-{i}.log"
                        proc = ray_stack.enter_context(
                            service(command, log=log, cwd=folder, env=env, stop=stop_ray)
                        )
                        if i == 0:
                            wait_until(lambda port=port: port_open(port), proc, log, "ray head", 120)
                    address = f"127.0.0.1:{port}"
                    want = len(nodes)
                    wait_until(
                        lambda a=address, n=want: len(alive_nodes(a)) == n, proc, log, "ray nodes", 120
                    )
                    seconds = sweep(folder, env, address, ml_url, f"{layout[:3]}-{repeat}")
                times[layout].append(seconds)
                print(f"{layout}: {seconds:.1f} s", flush=True)
    for layout, values in times.items():
        print(f"{layout}: " + ", ".join(f"{v:.1f}" for v in values) + " s")


if __name__ == "__main__":
    main()
