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


def prepare(params: Params, *, workers: int = 0, progress: bool = False) -> PrepareResult:
    """Split lists, image-level labels, file index and ``summary.json``, then the data check."""
    from wsfcn.data.prepare import prepare_dataset

    folder = prepare_dataset(params.data, progress=progress, workers=workers)
    return PrepareResult(folder, json.loads((folder / "summary.json").read_text()))
