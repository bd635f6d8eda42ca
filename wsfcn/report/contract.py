"""The logging contract: what an MLflow run must carry for the paper tables to find and read it.

One MLflow run per run × setting × seed, logged by training and ``pipeline/ablate.py``
(``wsfcn.sweep.plan.child_tags``), read back by ``wsfcn.integrations.mlflow_query`` and the tables:

* MLflow experiment name = the experiment file's ``name`` (e.g. ``table1_ablation``).
* tags ``wsfcn.experiment`` (the file's ``name``), ``wsfcn.run`` (a key of its ``runs``),
  ``wsfcn.setting`` (``paper`` | ``embedded`` | ...), ``wsfcn.seed`` (integer ``train.seed``),
  ``wsfcn.dataset`` (``data.name``: ``voc`` | ``coco`` | ``synthetic``): :func:`run_tags`.
* metrics ``mIoU`` and ``PixAcc`` in **percent** (0-100, as the paper prints; mIoU over all classes
  incl. background, method §8.2) of the final evaluation on the run's ``infer.split``; ``n_params`` =
  trainable parameters (an integer count, method §11). A run without masks (VOC test) logs no mIoU.
* a run that evaluated a checkpoint the sweep did not train (``pipeline/ablate.py --checkpoint``) is
  tagged ``wsfcn.trained_by_sweep=false`` (trained runs: ``true`` or no tag) and ``wsfcn.checkpoint``
  (path), ``wsfcn.checkpoint.sha256`` (of that file) and the checkpoint's provenance as
  ``wsfcn.checkpoint.<key>`` (``source``, ``source_sha256``, ``note`` ...). Such runs get rows of
  their own ("released checkpoint" when the note is :data:`RELEASE_NOTE`, else "given checkpoint"),
  never averaged with trained runs. A run whose param ``infer.max_images`` is > 0 was evaluated on a
  subset of the split; its row says so.
* only runs with ``status == "FINISHED"`` count. Several runs of one (run, seed): the latest
  (``start_time``) wins.
"""

from __future__ import annotations

TAGS = ("experiment", "run", "setting", "seed", "dataset")
TAG_COLUMNS = {tag: f"tags.wsfcn.{tag}" for tag in TAGS}  # as columns of a run frame
METRICS = ("mIoU", "PixAcc")
TRAINED_BY_SWEEP_TAG = "wsfcn.trained_by_sweep"
CHECKPOINT_TAG = "wsfcn.checkpoint"
RELEASE_NOTE = "converted from the authors' release"  # wsfcn convert-checkpoint --from official
MAX_IMAGES = "params.infer.max_images"


def run_tags(experiment: str, run: str, setting: str, seed: int, dataset: str) -> dict[str, str]:
    """The tags that place one MLflow run in a table: ``wsfcn.<tag>`` for each of :data:`TAGS`."""
    values = {"experiment": experiment, "run": run, "setting": setting, "seed": str(seed), "dataset": dataset}
    return {column.removeprefix("tags."): values[tag] for tag, column in TAG_COLUMNS.items()}


def provenance_key(key: str) -> str:
    """The tag suffix of a provenance key: its ``sha256`` (of the source file) is ``source_sha256``."""
    return "source_sha256" if key == "sha256" else key
