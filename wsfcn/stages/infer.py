"""Stage ``infer``: predict a split with a checkpoint (multi-scale, flip) into ``infer.out_dir``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsfcn.config import ConfigError, Params
from wsfcn.data.classes import check_classes, class_names


@dataclass(frozen=True)
class InferResult:
    out_dir: Path
    summary: dict[str, Any]

    @property
    def skipped(self) -> list[dict[str, str]]:
        return self.summary["skipped"]


def infer(
    params: Params, *, device: str | None = None, batch_size: int = 0, quiet: bool = False
) -> InferResult:
    """Predict ``infer.split`` with ``infer.*`` from ``infer.checkpoint`` (method §7) into ``infer.out_dir``.

    ``device`` None: ``train.device`` (auto: CUDA when present). A skipped image is listed in the
    result (and ``summary.json``), never silently dropped.
    """
    from wsfcn.checkpoints import load_model, stored_class_names, stored_mlflow_run
    from wsfcn.data.datasets import build_dataset
    from wsfcn.device import resolve_device
    from wsfcn.infer.manifest import checkpoint_record, clear_predictions
    from wsfcn.infer.options import InferOptions
    from wsfcn.infer.split import predict_split, read_split_ids

    cfg = params.infer
    if cfg.use_gt_labels and cfg.split == "test":
        raise ConfigError("infer.use_gt_labels (§) needs image labels, which the test split does not have")
    device = resolve_device(device or params.train.device)
    model, model_params, provenance = load_model(cfg.checkpoint, device=device, with_provenance=True)
    have = class_names(model_params.data.name, stored_class_names(cfg.checkpoint))
    if params.data.name != "folder":  # the catalogue's classes: refused before any data file is read
        want = class_names(params.data.name)
        check_classes(cfg.checkpoint, model_params.data.name, params.data.name, have=have, want=want)
    dataset = build_dataset(params.data, cfg.split, train=False)
    want = dataset.class_names  # a folder dataset's own, compared name by name
    check_classes(cfg.checkpoint, model_params.data.name, params.data.name, have=have, want=want)
    every = read_split_ids(Path(params.data.root) / params.data.name / "lists" / f"{cfg.split}.txt")
    ids = every[: cfg.max_images] if cfg.max_images > 0 else every
    options = InferOptions.from_params(cfg, device=device, batch_size=batch_size)
    info = {"split": cfg.split, "dataset": params.data.name, **checkpoint_record(cfg.checkpoint)}
    info |= {"checkpoint_dataset": model_params.data.name, "checkpoint_classes": have}
    info |= {"mlflow_run": stored_mlflow_run(cfg.checkpoint)}
    info |= {"split_size": len(every), "subset": len(ids) < len(every)}
    info |= {"provenance": provenance} if provenance else {}
    clear_predictions(cfg.out_dir)  # no mask of an earlier run survives to be scored
    summary = predict_split(
        model, dataset, ids, cfg.out_dir, options=options, use_gt_labels=cfg.use_gt_labels,
        save_probabilities=cfg.save_probs or params.eval.crf, test_layout=cfg.split == "test",
        save_scores=not any(dataset.mask_path(i) for i in ids), progress=not quiet, info=info,
    )  # fmt: skip
    return InferResult(Path(cfg.out_dir), summary)
