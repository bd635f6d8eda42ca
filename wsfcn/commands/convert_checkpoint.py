"""Convert a weight file to this package's parameter names (released WS-FCN checkpoint or ImageNet init).

``wsfcn convert-checkpoint --from official|imagenet_r38|torchvision|vgg16 SRC DST`` reads SRC with
``weights_only=True`` (a raw state dict, or a dict with a ``state_dict``/``model`` entry), renames
and drops keys as :mod:`wsfcn.model.weights` documents, checks keys and shapes against the target
network (built on the meta device), prints the report and writes DST atomically.

``official`` (the authors' layout: the released ResNet-38 ``model_enc_e018Xs0.905.pth``, or a
ResNet-50/101/VGG16 model of their code) writes a complete wsfcn checkpoint, which ``wsfcn segment
--checkpoint DST`` and ``pipeline/infer.py --set infer.checkpoint=DST`` use as they are: the full-model
state dict, the params that build that network and a provenance record (SRC's name and sha256), no
optimiser state. The params are the paper's WS-FCN head (code forms, FCA + SF2) on the backbone the
keys show, with the head width and class count read from SRC's classifier (21: ``data.name=voc``,
81: ``coco``), on the dataclass defaults plus ``--set``; or, with ``--experiment FILE [--setting S]
[--run R]``, that run's params (on ``--params``), which must build exactly SRC's network.
The ImageNet sources give a backbone state dict for ``model.pretrained``.

Exit status 1 on missing or unexpected keys unless ``--allow-missing`` / ``--allow-unexpected``
(``official`` takes only the latter: a checkpoint must be complete), and on wrong shapes or an
unreadable SRC; 2 on a parameter error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from wsfcn.config import ConfigError, Params
from wsfcn.experiments import load_experiment
from wsfcn.model.weights import (
    LoadReport,
    WeightsError,
    check_against,
    convert_backbone_state_dict,
    convert_official_checkpoint,
    official_backbone,
    read_state_dict,
)
from wsfcn.params_yaml import load_params, parse_overrides

SOURCES = ("official", "imagenet_r38", "torchvision", "vgg16")
PROVENANCE_NOTE = "converted from the authors' release"
# The authors' WS-FCN network (method §3): FCA + SF2 in the code's forms, the paper's dilations.
OFFICIAL_NETWORK = {
    "model.context": "fca",
    "model.fusion": "sf2",
    "model.fca.mclm": True,
    "model.fca.srm": True,
    "model.fca.form": "code",
    "model.sf2.form": "code",
    "model.context_dilations": [],
}
CLASSIFIER = "last_conv.8.weight"  # the decoder's last 1x1 conv: (classes - 1, width, 1, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES, help="kind of SRC file")
    parser.add_argument("src", metavar="SRC", help="weight file to convert (.pth)")
    parser.add_argument(
        "dst", metavar="DST", help="file to write: a wsfcn checkpoint (official) or a backbone state dict"
    )
    parser.add_argument(
        "--allow-missing", action="store_true", help="write even if keys are missing (not with official)"
    )
    parser.add_argument("--allow-unexpected", action="store_true", help="write even with unknown keys")
    parser.add_argument(
        "--experiment",
        help="official: the network's params from this experiments/*.yaml file (default: the paper's "
        "WS-FCN on the backbone SRC's keys show; --set applies either way)",
    )
    parser.add_argument("--setting", default="paper", help="with --experiment: its setting (default: paper)")
    parser.add_argument("--run", dest="run_name", help="with --experiment: its run (default: the first)")


def run(args: argparse.Namespace) -> int:
    official = args.source == "official"
    if not official and args.experiment:
        return _fail("--experiment applies to --from official only", 2)
    if official and args.allow_missing:
        return _fail("--allow-missing: a converted official checkpoint must hold every weight", 2)
    try:
        state = read_state_dict(args.src)
        if official:
            params, num_classes = official_params(state, args)
            converted, report = convert_official(state, params, num_classes, args)
        else:
            converted, report = convert_backbone(
                state, args.source, allow_missing=args.allow_missing, allow_unexpected=args.allow_unexpected
            )
    except (WeightsError, FileNotFoundError) as err:
        return _fail(str(err), 1)
    except ConfigError as err:
        return _fail(f"parameter error: {err}", 2)
    print(report)
    if official:
        from wsfcn.checkpoints import save_converted_checkpoint

        record = provenance(Path(args.src), params.model.backbone)
        save_converted_checkpoint(
            args.dst, state_dict=converted, params=params, num_classes=num_classes, provenance=record
        )
        model = params.model
        print(
            f"wrote a wsfcn checkpoint to {args.dst}: {model.backbone} + {model.context}/{model.fusion} "
            f"head ({model.head_channels} ch), {num_classes} classes ({params.data.name}), "
            f"{len(converted)} tensors; source {record['source']} sha256 {record['sha256'][:12]}..."
        )
    else:
        save_atomic(converted, Path(args.dst))
        print(f"wrote {len(converted)} tensors to {args.dst}")
    return 0


def _fail(message: str, status: int) -> int:
    print(f"wsfcn convert-checkpoint: {message}", file=sys.stderr)
    return status


def official_params(state: dict[str, torch.Tensor], args: argparse.Namespace) -> tuple[Params, int]:
    """The params of the network SRC holds, and its class count (background included).

    Backbone from the keys, head width and classes from the classifier; the rest is the authors'
    WS-FCN (:data:`OFFICIAL_NETWORK`) on the dataclass defaults, then ``--set``. With ``--experiment``
    the run's params instead, checked against SRC's backbone and class count.
    """
    from wsfcn.data.classes import num_classes as dataset_classes

    classifier = state.get(CLASSIFIER)
    if classifier is None or classifier.ndim != 4:
        raise WeightsError(f"{args.src}: no {CLASSIFIER}: not a WS-FCN checkpoint in the authors' layout")
    num_classes, width = int(classifier.shape[0]) + 1, int(classifier.shape[1])
    try:
        backbone = official_backbone(state)
    except WeightsError as err:
        raise WeightsError(f"{args.src}: {err}") from None
    overrides = parse_overrides(getattr(args, "overrides", None) or [])
    if args.experiment:
        params = experiment_params(args, overrides)
        where = f"{args.experiment} (setting {args.setting})"
        if params.model.backbone != backbone:
            raise WeightsError(
                f"{args.src} holds a {backbone} network; {where} has model.backbone={params.model.backbone}"
            )
        if dataset_classes(params.data.name) != num_classes:
            raise WeightsError(
                f"{args.src} has {num_classes} classes; {where} has data.name={params.data.name} "
                f"({dataset_classes(params.data.name)} classes)"
            )
    else:
        names = [n for n in ("voc", "coco", "synthetic") if dataset_classes(n) == num_classes]
        if not names:
            raise WeightsError(
                f"{args.src}: its classifier has {num_classes} classes (background included), which fits "
                "no dataset (voc 21, coco 81, synthetic 9)"
            )
        network = OFFICIAL_NETWORK | {"model.backbone": backbone, "model.head_channels": width}
        params = load_params(None, network | {"data.name": names[0]} | overrides)
    model = dataclasses.replace(params.model, pretrained="")  # the checkpoint holds every weight
    return dataclasses.replace(params, model=model), num_classes


def experiment_params(args: argparse.Namespace, overrides: dict[str, Any]) -> Params:
    """``--experiment``'s params at ``--setting`` for ``--run`` (default: its first), on ``--params``."""
    experiment = load_experiment(args.experiment)
    run_name = args.run_name or next(iter(experiment.runs))
    params_file = getattr(args, "params", "params.yaml")
    base = params_file if Path(params_file).is_file() else None
    return experiment.params(run_name, args.setting, base=base, extra=overrides)


def convert_official(
    state: dict[str, torch.Tensor], params: Params, num_classes: int, args: argparse.Namespace
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Rename SRC's keys and check them against the network ``params`` build (on the meta device)."""
    from wsfcn.model import build_model

    with torch.device("meta"):
        reference = build_model(params.model, num_classes, params.loss).state_dict()
    try:
        return convert_official_checkpoint(
            state, allow_unexpected=args.allow_unexpected, reference=reference, backbone=params.model.backbone
        )
    except WeightsError as err:
        raise WeightsError(f"{args.src}: {err}") from None


def provenance(src: Path, backbone: str) -> dict[str, Any]:
    """Where the weights of a converted checkpoint came from (stored in it; runs are tagged with it)."""
    from wsfcn.infer.manifest import file_sha256

    return {
        "source": src.name,
        "sha256": file_sha256(src),
        "note": PROVENANCE_NOTE,
        "layout": "official",
        "backbone": backbone,
        "converter": "wsfcn convert-checkpoint --from official",
    }


def convert_backbone(
    state: dict[str, torch.Tensor], source: str, *, allow_missing: bool, allow_unexpected: bool
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Rename/drop keys of an ImageNet file and check them against the matching backbone."""
    from wsfcn.model.backbones import VGG16, ResNet38, ResNet50, ResNet101

    converted, report = convert_backbone_state_dict(state, source)
    if source == "torchvision":
        cls = ResNet101 if any(k.startswith("layer3.6.") for k in converted) else ResNet50
        report.notes.append(f"checked against {cls.__name__}")
    else:
        cls = {"imagenet_r38": ResNet38, "vgg16": VGG16}[source]
    with torch.device("meta"):
        reference = cls().state_dict()
    check_against(reference, converted, report)
    report.raise_if_bad(allow_missing=allow_missing, allow_unexpected=allow_unexpected)
    return {k: converted[k] for k in report.loaded}, report


def save_atomic(state: dict[str, torch.Tensor], dst: Path) -> None:
    """``torch.save`` to a temporary file in DST's folder, then rename it over DST."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
