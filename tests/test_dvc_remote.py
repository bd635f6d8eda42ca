"""DVC remotes (docs/cluster.md): push prepared data and a model, lose them, pull them back.

In a temporary git + DVC repo, a prepared synthetic-data folder and a model file are tracked with
``dvc add``, pushed to (a) a local folder remote and (b) an S3-compatible remote (``moto`` in
server mode on a free 127.0.0.1 port, stopped by its process group), then the cache and the
workspace copies are deleted and ``dvc pull`` must bring back byte-identical files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.services import free_port, http_ok, service, wait_until
from helpers.synthetic import make_prepared_synthetic

pytestmark = pytest.mark.slow
BUCKET = "wsfcn-dvc"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}  # moto accepts any


def environment() -> dict[str, str]:
    """No real AWS settings leak in; DVC quiet; the venv's dvc on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env | {"DVC_NO_ANALYTICS": "1", "PATH": path, "AWS_EC2_METADATA_DISABLED": "true"}


def run(*args: str, cwd: Path, timeout: int = 300) -> str:
    out = subprocess.run(
        list(args), cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def dvc(*args: str, cwd: Path) -> str:
    return run(shutil.which("dvc", path=environment()["PATH"]) or "dvc", *args, cwd=cwd)


def digests(repo: Path, tracked: list[str]) -> dict[str, str]:
    """sha256 of every file under the tracked paths, by path relative to the repo."""
    files = [
        p for t in tracked for p in sorted([repo / t] if (repo / t).is_file() else (repo / t).rglob("*"))
    ]
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()
    }


@pytest.fixture
def repo(tmp_path) -> tuple[Path, list[str]]:
    """A committed git + DVC repo tracking ``data/synthetic`` (prepared) and ``models/model.pt``."""
    import torch

    repo = tmp_path / "repo"
    repo.mkdir()
    run("git", "init", "-q", cwd=repo)
    run("git", "config", "user.email", "ci@example.invalid", cwd=repo)
    run("git", "config", "user.name", "ci", cwd=repo)
    dvc("init", "-q", cwd=repo)
    make_prepared_synthetic(repo / "data", num_train=4, num_val=2, size=32)
    (repo / "models").mkdir()
    torch.manual_seed(0)
    torch.save({"conv.weight": torch.randn(8, 3, 3, 3)}, repo / "models" / "model.pt")
    tracked = ["data/synthetic", "models/model.pt"]
    dvc("add", "-q", *tracked, cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "data and model", cwd=repo)
    return repo, tracked


def round_trip(repo: Path, tracked: list[str], remote: str) -> None:
    """``dvc push``, delete the cache and the workspace copies, ``dvc pull``: the same bytes come back."""
    before = digests(repo, tracked)
    assert len(before) > 10 and "models/model.pt" in before
    dvc("push", "-r", remote, cwd=repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    for path in tracked:
        target = repo / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert digests(repo, tracked) == {}
    dvc("pull", "-r", remote, cwd=repo)
    assert digests(repo, tracked) == before
    assert "up to date" in dvc("status", cwd=repo).lower()  # no stage or data change left


def test_local_folder_remote_round_trip(repo, tmp_path):
    repo, tracked = repo
    store = tmp_path / "remote"
    dvc("remote", "add", "-d", "store", str(store), cwd=repo)
    round_trip(repo, tracked, "store")
    assert any(p.is_file() for p in (store / "files" / "md5").rglob("*"))


@pytest.fixture
def s3_server(tmp_path):
    """``http://127.0.0.1:<port>`` of a moto S3 server holding an empty bucket ``BUCKET``."""
    import boto3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "moto.log"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with service(command, log=log, cwd=tmp_path, env=environment()) as proc:
        wait_until(lambda: http_ok(url + "/moto-api/"), proc, log, "moto server", 60)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        yield url, s3


def test_s3_compatible_remote_round_trip(repo, s3_server):
    repo, tracked = repo
    url, s3 = s3_server
    dvc("remote", "add", "s3store", f"s3://{BUCKET}/wsfcn", cwd=repo)
    dvc("remote", "modify", "s3store", "endpointurl", url, cwd=repo)
    for key, value in CREDENTIALS.items():  # --local: .dvc/config.local, never committed
        dvc("remote", "modify", "--local", "s3store", key, value, cwd=repo)
    assert "testing" not in (repo / ".dvc" / "config").read_text()
    round_trip(repo, tracked, "s3store")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="wsfcn/")["Contents"]]
    assert keys and all(k.startswith("wsfcn/files/md5/") for k in keys)
