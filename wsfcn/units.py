"""One unit for people: scores in percent, as the paper prints them.

Inside the training loop the quick validation numbers are fractions (the selection rule, checkpoint
history); wherever a person or another tool reads them (MLflow, the train stage's ``metrics.json`` and
``history.csv``) they are percent, the unit of the evaluate stage's mIoU / PixAcc and of the tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# What takes each epoch's report (MLflow's logger, Ray's ``train.report``, a test's ``list.append``).
Report = Callable[[dict], None]

# the fractions of an epoch report that are shown in percent
PERCENT_KEYS = ("mAP", "val_mIoU", "val_pixacc", "val_mAP")


def in_percent(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with the :data:`PERCENT_KEYS` numbers ×100 (other keys untouched)."""
    return {
        k: 100.0 * v if k in PERCENT_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool) else v
        for k, v in report.items()
    }
