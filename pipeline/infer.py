"""Stage ``infer``: checkpoint + split -> palette masks (METHOD §7: multi-scale + flip, class filter).

Writes ``<infer.out_dir>/masks/<id>.png``, ``probs/<id>.npz`` (``infer.save_probs`` or ``eval.crf``,
for the CRF stage), the VOC server layout for the ``test`` split, and ``summary.json``. Exits 1 if
any image was skipped (each is reported by name). ``infer.use_gt_labels`` is the paper's "§" setting.
The network is built from the checkpoint's own params (a converted release is the paper's ResNet-38
WS-FCN whatever params.yaml says); the data and ``infer.*`` settings come from params.yaml, whose
dataset must have the checkpoint's classes. A converted checkpoint's provenance goes into summary.json.

    python pipeline/infer.py [--params params.yaml] [--set infer.scales=[1]] [--device cuda] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsfcn.cli import add_params_arguments, params_from_args
from wsfcn.config import ConfigError

OPTIONS = ("scales", "flip", "pad_size", "fp_cut", "bg_mode", "bg_constant", "bg_pow")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--batch-size", type=int, default=0, help="most inputs per forward pass (0: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    import torch

    from wsfcn.checkpoints import CheckpointError, load_model
    from wsfcn.data import build_dataset
    from wsfcn.predict import predict_split, read_split_ids

    try:
        params = params_from_args(args)
        cfg = params.infer
        if cfg.use_gt_labels and cfg.split == "test":
            raise ConfigError(
                "infer.use_gt_labels (§) needs image labels, which the test split does not have"
            )
        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        model, model_params, provenance = load_model(cfg.checkpoint, device=device, with_provenance=True)
        check_classes(cfg.checkpoint, model_params.data.name, params.data.name)
        dataset = build_dataset(params.data, cfg.split, train=False)
        ids = read_split_ids(Path(params.data.root) / params.data.name / "lists" / f"{cfg.split}.txt")
    except (ConfigError, CheckpointError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"infer: {err}", file=sys.stderr)
        return 1
    ids = ids[: cfg.max_images] if cfg.max_images > 0 else ids
    options = {k: getattr(cfg, k) for k in OPTIONS} | {"device": device, "batch_size": args.batch_size}
    info = {"split": cfg.split, "dataset": params.data.name, "checkpoint": str(cfg.checkpoint)}
    info |= {"provenance": provenance} if provenance else {}
    summary = predict_split(
        model, dataset, ids, cfg.out_dir, options=options, use_gt_labels=cfg.use_gt_labels,
        save_probabilities=cfg.save_probs or params.eval.crf, test_layout=cfg.split == "test", info=info,
        progress=not args.quiet,
    )  # fmt: skip
    done, tag = (
        summary["num_images"] - summary["num_skipped"],
        " [§ GT image labels]" if cfg.use_gt_labels else "",
    )
    print(f"infer{tag}: {done}/{summary['num_images']} images ({summary['images_per_s']} img/s)")
    if summary["num_skipped"]:
        print(
            f"infer: {summary['num_skipped']} skipped, listed in {cfg.out_dir}/summary.json", file=sys.stderr
        )
        return 1
    return 0


def check_classes(checkpoint: str, trained_on: str, data_name: str) -> None:
    """ConfigError unless dataset ``data_name`` has the classes of a checkpoint for ``trained_on``."""
    from wsfcn.data.classes import num_classes

    have, want = num_classes(trained_on), num_classes(data_name)
    if have != want:
        raise ConfigError(
            f"{checkpoint} segments the {have} classes of {trained_on}, but data.name={data_name} has "
            f"{want}: run with --set data.name={trained_on}"
        )


if __name__ == "__main__":
    sys.exit(main())
