"""Stage ``crf``: the dense CRF on infer's saved probabilities."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.config import Params


@dataclass(frozen=True)
class CRFResult:
    out_dir: Path
    ran: bool
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> list[dict[str, str]]:
        return self.summary.get("skipped", [])


def crf(
    params: Params, *, out: str | Path | None = None, processes: int | None = None, quiet: bool = False
) -> CRFResult:
    """Dense CRF (method §7.7) on infer's saved probabilities into ``out`` (``<eval.out_dir>/crf_masks``).

    With ``eval.crf`` false only the (empty) folder is made. ``processes`` None:
    ``eval.crf_params.processes``.
    """
    from wsfcn.data.datasets import build_dataset
    from wsfcn.infer.crf import refine_folder
    from wsfcn.infer.manifest import clear_predictions, read_manifest
    from wsfcn.infer.options import CRFOptions

    src, out = Path(params.infer.out_dir), Path(out or Path(params.eval.out_dir) / "crf_masks")
    clear_predictions(out)  # no CRF mask of an earlier run survives to be scored
    (out / "masks").mkdir(parents=True, exist_ok=True)
    if not params.eval.crf:
        return CRFResult(out, ran=False)
    summary = read_manifest(src)
    if not (src / "probs").is_dir():
        raise FileNotFoundError(f"{src}/probs missing: run infer with eval.crf=true or infer.save_probs=true")
    dataset = build_dataset(params.data, summary["split"], train=False)
    skipped = list(summary["skipped"])
    names = [i for i in summary["ids"] if i not in {s["id"] for s in skipped}]
    options = CRFOptions.from_params(params.eval.crf_params)
    pool = params.eval.crf_params.processes if processes is None else processes
    start = time.perf_counter()
    skipped += refine_folder(
        names, dataset.image_path, src / "probs", out / "masks", options, pool, progress=not quiet, warn=True
    )
    seconds = time.perf_counter() - start
    summary.update(
        crf=True, crf_settings=dataclasses.asdict(options), skipped=skipped, num_skipped=len(skipped)
    )
    summary.update(crf_seconds=round(seconds, 3), crf_images_per_s=round(len(names) / max(seconds, 1e-9), 4))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return CRFResult(out, ran=True, summary=summary)
