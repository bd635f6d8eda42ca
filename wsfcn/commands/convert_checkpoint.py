"""Convert a weight file to this package's parameter names (released WS-FCN checkpoint or ImageNet init).

``wsfcn convert-checkpoint --from official|imagenet_r38|torchvision|vgg16 SRC DST`` reads SRC with
``weights_only=True`` (a raw state dict, or a dict with a ``state_dict``/``model`` entry), renames
and drops keys as :mod:`wsfcn.model.weights` documents, checks keys and shapes against the target
network (built on the meta device), prints the report and writes DST atomically. ``official``
gives a full-model state dict (``backbone.*``, ``context.*``, ``fusion.*``, ``decoder.*``) for
``model.load_state_dict(strict=True)``; the ImageNet sources give a backbone state dict for
``model.pretrained``. Exit status 1 on missing or unexpected keys unless ``--allow-missing`` /
``--allow-unexpected``, and on wrong shapes or an unreadable SRC.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from wsfcn.model.weights import (
    LoadReport,
    WeightsError,
    check_against,
    convert_backbone_state_dict,
    convert_official_checkpoint,
    read_state_dict,
)

SOURCES = ("official", "imagenet_r38", "torchvision", "vgg16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES, help="kind of SRC file")
    parser.add_argument("src", metavar="SRC", help="weight file to convert (.pth)")
    parser.add_argument("dst", metavar="DST", help="converted state dict to write (.pth)")
    parser.add_argument("--allow-missing", action="store_true", help="write even if keys are missing")
    parser.add_argument("--allow-unexpected", action="store_true", help="write even with unknown keys")


def run(args: argparse.Namespace) -> int:
    try:
        state = read_state_dict(args.src)
        if args.source == "official":
            converted, report = convert_official_checkpoint(
                state,
                allow_missing=args.allow_missing,
                allow_unexpected=args.allow_unexpected,
                reference=official_reference(state),
            )
        else:
            converted, report = convert_backbone(
                state, args.source, allow_missing=args.allow_missing, allow_unexpected=args.allow_unexpected
            )
    except (WeightsError, FileNotFoundError) as err:
        print(f"wsfcn convert-checkpoint: {err}", file=sys.stderr)
        return 1
    print(report)
    save_atomic(converted, Path(args.dst))
    print(f"wrote {len(converted)} tensors to {args.dst}")
    return 0


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


def official_reference(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """State dict (meta tensors) of our ResNet-38 + FCA + SF2 model, or None if it cannot be built.

    The class count is read from the checkpoint's last decoder conv (20 fg: VOC; 80 fg: COCO).
    """
    classifier = state.get("last_conv.8.weight")
    num_classes = classifier.shape[0] + 1 if classifier is not None else 21
    try:
        from wsfcn.config import ModelParams
        from wsfcn.model import build_model

        with torch.device("meta"):
            model = build_model(ModelParams(backbone="resnet38", context="fca", fusion="sf2"), num_classes)
    except Exception as err:  # the report then says the head keys were not checked
        print(f"note: cannot build the WS-FCN model ({err!r})", file=sys.stderr)
        return None
    return model.state_dict()


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
