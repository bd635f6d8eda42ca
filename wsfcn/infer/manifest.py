"""The manifest of a prediction folder (``summary.json``): what was predicted, from what, and what not.

The infer stage clears the files an earlier run left (:func:`clear_predictions`) before writing, and
records in ``summary.json`` the checkpoint's fingerprint (sha256, size), its dataset and MLflow run, the
split, the split's size, the ids predicted and those skipped with the reason. The evaluate stage scores
exactly those ids and refuses (:func:`check_manifest`) a folder with skipped images, of another split, or
predicted from another checkpoint than the params name, so a stale or foreign mask is never scored.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from wsfcn.data.ids import check_id, read_json
from wsfcn.errors import InputError

# what an infer/crf run writes into its folder (anything else there is left alone)
PREDICTION_ENTRIES = ("masks", "probs", "results", "summary.json")
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


class ManifestError(InputError, ValueError):
    """A prediction folder that cannot be scored as asked; the message names folder and reason."""


def file_sha256(path: str | Path) -> str:
    """sha256 of a file (cached per process by path, size and mtime)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def checkpoint_record(path: str | Path) -> dict[str, Any]:
    """``{"checkpoint": path, "checkpoint_sha256": …, "checkpoint_bytes": …}`` for a manifest."""
    path = Path(path)
    return {
        "checkpoint": str(path),
        "checkpoint_sha256": file_sha256(path),
        "checkpoint_bytes": path.stat().st_size,
    }


def clear_predictions(out_dir: str | Path) -> None:
    """Remove what an earlier infer/crf run wrote to ``out_dir`` (masks, probs, server layout, manifest)."""
    out = Path(out_dir)
    for name in PREDICTION_ENTRIES:
        entry = out / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """``<folder>/summary.json``, checked to be a manifest (split, ids as plain names, skipped)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise ManifestError(f"{path} does not exist: {folder} is not an infer/crf output (run infer first)")
    summary = read_json(path, "prediction manifest")
    if not isinstance(summary, dict) or not isinstance(summary.get("ids"), list) or "split" not in summary:
        raise ManifestError(f"{path}: not a prediction manifest (no 'split' and 'ids')")
    for image_id in summary["ids"]:
        check_id(image_id, path)
    if not isinstance(summary.get("skipped", []), list):
        raise ManifestError(f"{path}: 'skipped' must be a list")
    return summary


def check_manifest(
    summary: dict[str, Any], folder: str | Path, *, split: str, checkpoint: str | Path, dataset: str
) -> None:
    """Refuse (naming both sides) predictions that are not those of ``checkpoint`` on ``split`` of
    ``dataset`` in full: skipped images, another split, dataset or checkpoint, no fingerprint."""
    where = Path(folder) / "summary.json"
    skipped = summary.get("skipped") or []
    if skipped:
        first = skipped[0]
        raise ManifestError(
            f"{where}: {len(skipped)} image(s) were skipped (first {first.get('id')}: {first.get('error')}); "
            "fix them and re-run infer: a partial prediction is not scored"
        )
    if summary["split"] != split:
        raise ManifestError(
            f"{where}: predictions of split {summary['split']!r}, but infer.split={split!r} "
            f"(run with --set infer.split={summary['split']} or re-run infer)"
        )
    if summary.get("dataset", dataset) != dataset:
        raise ManifestError(
            f"{where}: predictions on dataset {summary.get('dataset')!r}, but data.name={dataset!r}"
        )
    recorded = summary.get("checkpoint_sha256")
    if not recorded:
        raise ManifestError(f"{where}: no checkpoint fingerprint (written by an older wsfcn): re-run infer")
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise ManifestError(
            f"{where}: predicted from {summary.get('checkpoint')}, but infer.checkpoint={ckpt} does not exist"
        )
    if file_sha256(ckpt) != recorded:
        raise ManifestError(
            f"{where}: predicted from checkpoint {summary.get('checkpoint')} (sha256 {recorded[:12]}), "
            f"not infer.checkpoint={ckpt} (sha256 {file_sha256(ckpt)[:12]}): re-run infer"
        )
