"""Stage ``prepare``: split lists, image-level labels, file index and ``summary.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsfcn.config import Params


@dataclass(frozen=True)
class PrepareResult:
    folder: Path
    summary: dict[str, Any]
    classes: list[str]  # background first (a folder dataset's: background + its sorted tags)


def prepare(params: Params, *, workers: int = 0, progress: bool = False) -> PrepareResult:
    """Split lists, image-level labels, file index and ``summary.json``, then the data check."""
    from wsfcn.data.check import prepared_classes
    from wsfcn.data.prepare import prepare_dataset

    folder = prepare_dataset(params.data, progress=progress, workers=workers)
    summary = json.loads((folder / "summary.json").read_text())
    return PrepareResult(folder, summary, prepared_classes(folder))
