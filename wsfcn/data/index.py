"""What a dataset preparer (VOC + SBD, COCO, synthetic, your own folder) hands to ``write_prepared``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.data.check import Problem


@dataclass
class DatasetIndex:
    """What a dataset preparer found: files per id, split lists, and (optionally) labels."""

    name: str
    images: dict[str, Path]
    masks: dict[str, Path | None]
    splits: dict[str, list[str]]
    labels: dict[str, list[int]] | None = None  # None: derived from the masks by write_prepared
    classes: list[str] | None = None  # None: the catalogue's (wsfcn.data.classes.CLASS_NAMES[name])
    labels_from: str = "masks"  # "tags": the labels are the images' own tags, masks are optional
    notes: dict[str, Any] = field(default_factory=dict)  # extra summary.json entries
    problems: list[Problem] = field(default_factory=list)  # found while converting sources
