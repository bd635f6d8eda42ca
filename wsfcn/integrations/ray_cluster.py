"""Joining or starting a Ray cluster (stack §1-2: Ray 2.60), and the CPUs Ray granted this process.

``start_ray`` is the one place Ray is initialised, for Ray Train runs and Ray Tune sweeps alike: it
joins ``address`` (or ``RAY_ADDRESS``) or starts a local cluster over this machine's cores, cheaply
(no dashboard, a 256 MiB object store in /tmp, a short temp dir for the unix sockets,
``RAY_AUTH_MODE=disabled``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

from wsfcn.errors import InputError


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_ray(address: str = "", *, quiet: bool = True) -> dict[str, float]:
    """Join ``address`` (else ``RAY_ADDRESS``) or start a local cluster; return its CPU / GPU counts."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    address = address or os.environ.get("RAY_ADDRESS", "")
    if not ray.is_initialized():
        level = logging.WARNING if quiet else logging.INFO
        if address:
            ray.init(address=address, logging_level=level, log_to_driver=not quiet)
        else:
            ray.init(
                num_cpus=machine_cores(),
                include_dashboard=False,
                object_store_memory=256 * 2**20,
                _plasma_directory="/tmp",
                _temp_dir=f"/tmp/wsfcn-ray-{os.getuid()}",  # short: unix-socket paths are limited
                logging_level=level,
                log_to_driver=not quiet,
            )
    resources = ray.cluster_resources()
    return {"CPU": float(resources.get("CPU", 1)), "GPU": float(resources.get("GPU", 0))}


def stop_ray() -> None:
    """Shut down this process's Ray connection (a no-op when none)."""
    import ray

    ray.shutdown()


def granted_cpus(default: int | None = None) -> int:
    """Whole CPUs Ray granted the calling task, actor or Train worker (at least 1).

    Outside Ray (or when Ray granted none) ``default``, else this machine's cores: threads follow
    what the scheduler gave this process on its own node, never the driver's core count.
    """
    try:
        import ray

        if ray.is_initialized():
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
            if cpus > 0:
                return max(1, round(cpus))
    except Exception:  # not inside Ray
        pass
    return max(1, default if default is not None else machine_cores())


def node_cpus(default: int | None = None) -> int:
    """The CPUs Ray counts on the calling process's node (``default`` or this machine's cores outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            here = ray.get_runtime_context().get_node_id()
            for node in ray.nodes():
                if node.get("NodeID") == here and node.get("Alive"):
                    return max(1, int(node.get("Resources", {}).get("CPU", 1)))
    except Exception:  # not inside Ray
        pass
    return max(1, default if default is not None else machine_cores())


def storage_location(storage: str, *parts: str) -> tuple[str, object | None]:
    """``(storage_path, storage_filesystem)`` for Ray's ``RunConfig``, with ``parts`` joined on.

    A URI (``s3://bucket/prefix``, ``gs://…``) is resolved once here through pyarrow, as Ray
    itself would: query options such as ``?endpoint_override=http://host:9000`` and the
    ``AWS_ENDPOINT_URL`` / ``AWS_*`` environment reach the filesystem, which Ray pickles to every
    node. A local path (a shared folder on every node) is made absolute; its filesystem is None.
    """
    if "://" in storage:
        import posixpath

        import pyarrow.fs

        filesystem, path = pyarrow.fs.FileSystem.from_uri(storage)
        return posixpath.join(path, *parts), filesystem
    return str(Path(storage, *parts).resolve()), None


def remove_storage(storage: str, *parts: str) -> None:
    """Delete the folder ``parts`` under ``storage`` (a local path or URI), if it exists."""
    path, filesystem = storage_location(storage, *parts)
    if filesystem is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    import pyarrow.fs

    if filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        filesystem.delete_dir(path)


def node_id() -> str:
    """The Ray node this process runs on ("" outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # not inside Ray
        return ""


def check_data_visible(root: str | Path, name: str) -> None:
    """Raise ``InputError`` naming this host when the prepared ``root/name`` is not on this node."""
    folder = Path(root) / name
    if not (folder / "index.json").is_file():
        raise InputError(
            f"node {socket.gethostname()} ({node_id() or 'no Ray'}) cannot see the prepared data "
            f"{folder}/index.json: put data.root on storage every node mounts, or run `dvc pull` "
            "(then the prepare stage) on each node"
        )
