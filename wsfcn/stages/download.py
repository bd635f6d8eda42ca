"""Stage ``download``: fetch, verify and extract a dataset's sources (or generate the synthetic benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsfcn.config import Params


@dataclass(frozen=True)
class DownloadResult:
    folders: dict[str, Path]


def download(params: Params, *, quiet: bool = False) -> DownloadResult:
    """Fetch, verify and safely extract ``data.name``'s sources (or generate the synthetic benchmark)."""
    from wsfcn.data.prepare import download_dataset

    return DownloadResult(download_dataset(params.data, progress=False if quiet else None))
