"""Qualitative figures (not a ``dvc.yaml`` stage: run by hand on two or more infer/crf folders)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsfcn.config import Params


@dataclass(frozen=True)
class FiguresResult:
    path: Path
    ids: list[str]
    columns: list[str]
    logged: bool


def figures(
    params: Params, runs: dict[str, str | Path], *, ids: list[str] | None = None, num: int = 6, seed: int = 0,
    out: str | Path = "outputs/figures/qualitative.png",
) -> FiguresResult:  # fmt: skip
    """A Figure-7-style grid (image | run 1 | run 2 | ... | GT) of chosen or random images predicted by
    every run; attached to the MLflow training run of ``params`` when tracking is on and that run exists."""
    import random

    from wsfcn.data.datasets import build_dataset
    from wsfcn.data.io import read_mask, read_rgb
    from wsfcn.evaluate.figures import qualitative_grid
    from wsfcn.infer.manifest import read_manifest

    summaries = {name: read_manifest(d) for name, d in runs.items()}
    split = next(iter(summaries.values()))["split"]
    common = set.intersection(*(set(s["ids"]) - {k["id"] for k in s["skipped"]} for s in summaries.values()))
    ids = ids or sorted(random.Random(seed).sample(sorted(common), min(num, len(common))))
    missing = [i for i in ids if i not in common]
    if missing or not ids:
        raise FileNotFoundError(f"no prediction in every run for: {missing or 'any image'}")
    dataset = build_dataset(params.data, split, train=False)
    with_gt = all(dataset.mask_path(i) for i in ids)
    rows = [
        [read_rgb(dataset.image_path(i))]
        + [read_mask(Path(d) / "masks" / f"{i}.png") for d in runs.values()]
        + ([read_mask(dataset.mask_path(i))] if with_gt else [])
        for i in ids
    ]
    titles = ["image", *runs] + (["ground truth"] if with_gt else [])
    path = qualitative_grid(rows, titles, out, row_labels=ids)
    logged = False
    if params.tracking.enabled:
        from wsfcn.integrations.mlflow_log import log_artifact

        logged = log_artifact(path, params, artifact_path="figures")
    return FiguresResult(Path(path), ids, titles, logged)
