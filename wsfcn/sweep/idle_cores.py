"""Cores that no trial will take again go to the trials still running.

Tune gives each in-process trial a fixed share of a node (one core of two, say). Once every trial
of the sweep has started, a core freed by a finished trial stays idle to the end; a trial that
still runs then takes it. The trials of one sweep mark ``started/<id>`` and ``finished/<id>`` in a
ledger folder (the host's name inside), and between epochs a trial asks :meth:`CoreLedger.threads`.
A trial that cannot see every start (another node, where the driver's folder does not exist) keeps
what Ray granted, so no core is ever counted twice.
"""

from __future__ import annotations

import socket
from pathlib import Path


class CoreLedger:
    """Start/finish marks of the ``total`` trials of one sweep, in ``folder``."""

    def __init__(self, folder: str | Path, total: int, host: str | None = None) -> None:
        self.folder, self.total = Path(folder), total
        self.host = host or socket.gethostname()

    def mark(self, trial_id: str, event: str) -> None:
        """Record ``event`` (``started`` | ``finished``) of ``trial_id`` on this host."""
        folder = self.folder / event
        folder.mkdir(parents=True, exist_ok=True)
        (folder / trial_id).write_text(self.host)

    def _marked(self, event: str) -> dict[str, str]:
        folder = self.folder / event
        if not folder.is_dir():
            return {}
        return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}

    def threads(self, granted: int, node_cpus: int) -> int:
        """Threads for a running trial of this host: ``granted`` until every trial has started, then
        this host's ``node_cpus`` shared evenly by its trials still running (never below ``granted``)."""
        started = self._marked("started")
        if len(started) < self.total:
            return granted
        finished = self._marked("finished")
        running = [t for t, host in started.items() if host == self.host and t not in finished]
        return max(granted, node_cpus // max(len(running), 1))
