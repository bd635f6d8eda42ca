"""A checkpoint the sweep evaluates without training it (``pipeline/ablate.py --checkpoint FILE``).

Every trial predicts from FILE (its ``infer.checkpoint``), and its MLflow child is tagged so the tables
keep it apart from trained runs (the logging contract of :mod:`wsfcn.report.contract`):
``wsfcn.trained_by_sweep=false``, ``wsfcn.checkpoint`` (FILE, absolute), ``wsfcn.checkpoint.sha256``
(of FILE) and the checkpoint's provenance record as ``wsfcn.checkpoint.<key>`` (a converted release:
``source``, ``source_sha256``, ``note`` ...). ``n_params`` is counted on the loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.infer.manifest import file_sha256
from wsfcn.report.contract import CHECKPOINT_TAG, TRAINED_BY_SWEEP_TAG, provenance_key

NOT_CONVERTED = "a wsfcn checkpoint given to the sweep (trained elsewhere)"


@dataclass(frozen=True)
class GivenCheckpoint:
    path: str
    sha256: str
    n_params: int
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        record = self.provenance or {"note": NOT_CONVERTED}
        return {
            TRAINED_BY_SWEEP_TAG: "false",
            CHECKPOINT_TAG: self.path,
            f"{CHECKPOINT_TAG}.sha256": self.sha256,
            **{f"{CHECKPOINT_TAG}.{provenance_key(k)}": str(v) for k, v in record.items()},
        }


def describe_checkpoint(path: str | Path, sha256: str = "") -> GivenCheckpoint:
    """Load ``path`` (on the CPU) for its provenance and trainable-parameter count."""
    from wsfcn.checkpoints import load_model
    from wsfcn.model import count_parameters

    model, _, provenance = load_model(path, with_provenance=True)
    n_params = count_parameters(model)
    del model
    return GivenCheckpoint(str(path), sha256 or file_sha256(path), n_params, provenance)
