"""Test helper: a background service (MLflow server, moto) in its own process group on 127.0.0.1.

Each service gets a free loopback port, is started with ``start_new_session`` (its own process
group) and is stopped by killing that group (SIGTERM, then SIGKILL): ``mlflow server`` leaves
children (uvicorn, huey) that outlive a SIGTERM to the parent alone (stack §3).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def live_processes(field: int, value: int) -> list[int]:
    """Live (non-zombie) pids whose /proc stat ``field`` (after the name: 0 state, 1 ppid, 2 pgrp,
    3 session) equals ``value``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[field]) == value and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    return live_processes(2, pgid)


def stop_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM the process group of ``proc``, SIGKILL what is left after ``grace_s``, reap ``proc``."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while group_members(pgid) and time.monotonic() < deadline:
        proc.poll()  # reap the direct child
        time.sleep(0.2)
    if group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=10)


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (Ray starts workers in their own groups)."""
    return live_processes(3, sid)


def stop_session(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """:func:`stop_group`, then SIGKILL every process left in ``proc``'s session (``ray start``)."""
    stop_group(proc, grace_s)
    for _ in range(50):
        pids = session_members(proc.pid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str, timeout_s: float
) -> float:
    """Poll ``ready()`` until true; fail with the log's tail if ``proc`` exits or ``timeout_s`` passes."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} was not ready within {timeout_s} s:\n{log.read_text()[-3000:]}")


def http_ok(url: str, body: str | None = None) -> bool:
    """GET ``url`` answers 200 (and, with ``body``, exactly that text)."""
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200 and (body is None or response.read().decode().strip() == body)


@contextlib.contextmanager
def service(
    command: list[str], *, log: Path, cwd: Path, env: dict[str, str], stop: Callable = stop_group
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in its own session while the block runs; ``stop`` it after (its process group;
    :func:`stop_session` for what starts processes in groups of their own)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        stop(proc)
