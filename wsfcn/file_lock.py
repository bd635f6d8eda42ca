"""An exclusive lock on a file, held for a ``with`` block: processes sharing a folder take turns."""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its folder, when missing).

    Two processes (or threads) that lock the same path run their blocks one after the other, e.g. two
    trials sharing one training folder, or two runs preparing the same dataset folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def folder_lock(folder: Path) -> AbstractContextManager[None]:
    """:func:`file_lock` on a lock file kept for ``folder`` under the system's temporary folder, so that
    locking writes nothing beside the user's data (processes on one machine take turns)."""
    key = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return file_lock(Path(tempfile.gettempdir()) / "wsfcn-locks" / f"{key}.lock")
