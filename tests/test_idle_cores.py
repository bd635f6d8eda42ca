"""A trial takes the cores that no other trial of its sweep will use (wsfcn.sweep.idle_cores)."""

from __future__ import annotations

from wsfcn.sweep.idle_cores import CoreLedger


def test_granted_share_until_every_trial_has_started(tmp_path):
    ledger = CoreLedger(tmp_path, total=3, host="a")
    ledger.mark("t1", "started")
    ledger.mark("t2", "started")
    ledger.mark("t1", "finished")
    assert ledger.threads(1, 2) == 1, "t3 still waits for the freed core"
    ledger.mark("t3", "started")
    assert ledger.threads(1, 2) == 1, "t2 and t3 run: one core each"
    ledger.mark("t2", "finished")
    assert ledger.threads(1, 2) == 2, "t3 alone: both cores"
    assert ledger.threads(4, 2) == 4, "never fewer than granted"


def test_trials_of_other_hosts_do_not_count_as_running_here(tmp_path):
    here, there = CoreLedger(tmp_path, total=3, host="a"), CoreLedger(tmp_path, total=3, host="b")
    for ledger, trial in ((here, "t1"), (there, "t2"), (there, "t3")):
        ledger.mark(trial, "started")
    assert here.threads(1, 4) == 4, "t1 is the only trial running on host a"
    assert there.threads(1, 4) == 2, "t2 and t3 share host b"


def test_a_node_that_cannot_see_every_start_keeps_its_grant(tmp_path):
    ledger = CoreLedger(tmp_path / "absent", total=2, host="a")
    assert ledger.threads(1, 8) == 1
