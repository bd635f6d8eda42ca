"""Reading and converting weight files (method §2.1-2.2 ImageNet inits, §6.1 the released checkpoint).

Every file is read with ``torch.load(..., weights_only=True)``. Nothing is ignored silently:
each key of a file ends up loaded, dropped (with a stated reason) or reported as unexpected, and
every parameter/buffer of the target is loaded or reported as missing (``num_batches_tracked``
counters absent from old files are listed as "defaulted" and keep their initial value).
Missing or unexpected keys raise :class:`WeightsError` unless explicitly allowed; a shape
mismatch always raises.

Sources:

* ``imagenet_r38``: ``ilsvrc-cls_rna-a1_cls1000_ep-0001.pth``; keys are already the backbone
  names. The usual mxnet converter drops the ImageNet classifier (mxnet name ``linear1000``);
  if a file still holds one (``linear1000.*``, ``fc8.*``, ``fc1000.*``, ``fc.*``), it is dropped.
* ``torchvision``: ``resnet{50,101}-*.pth``; ``fc.*`` (the ImageNet classifier) is dropped.
* ``vgg16``: ``vgg16_20M.pth`` (DeepLab caffe init). See :data:`VGG16_TORCHVISION_NAMES`.
* ``native``: a state dict already in our naming (e.g. written by ``wsfcn convert-checkpoint``).
* ``official`` (whole network, not a backbone source): a checkpoint in the authors' layout, the
  released ``model_enc_e018Xs0.905.pth`` (ResNet-38) or a ResNet-50/101/VGG16 model of their code;
  :func:`official_backbone` tells which from the keys.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from wsfcn.errors import InputError
from wsfcn.model.backbones.base import Backbone

__all__ = [
    "LoadReport",
    "WeightsError",
    "check_against",
    "convert_backbone_state_dict",
    "convert_official_checkpoint",
    "load_backbone_weights",
    "load_checked",
    "load_official_checkpoint",
    "official_backbone",
    "read_state_dict",
]

BACKBONE_SOURCES = ("imagenet_r38", "torchvision", "vgg16", "native")

# ImageNet classifier keys that a backbone file may carry; dropped with this reason.
_CLASSIFIER_PREFIXES = {
    "imagenet_r38": ("linear1000.", "fc8.", "fc1000.", "fc."),
    "torchvision": ("fc.",),
    "vgg16": ("fc8.", "fc8_", "classifier."),
    "native": (),
}

# The caffe-converted DeepLab file is assumed to use the caffe layer names plus ``.weight`` /
# ``.bias`` (``conv1_1.weight`` ... ``conv5_3.bias``, ``fc6.*``, ``fc7.*``, possibly ``fc8.*``),
# i.e. our names, as written by the psa/1-stage-wseg caffe converter. A torchvision-style VGG16
# file (``features.N.*``) is renamed with this table; its ``classifier.*`` (fc6 as a
# 25088→4096 Linear) does not fit the DeepLab fc6/fc7 and is dropped, so fc6/fc7 then come out
# as missing.
VGG16_TORCHVISION_NAMES = {
    "features.0.": "conv1_1.",
    "features.2.": "conv1_2.",
    "features.5.": "conv2_1.",
    "features.7.": "conv2_2.",
    "features.10.": "conv3_1.",
    "features.12.": "conv3_2.",
    "features.14.": "conv3_3.",
    "features.17.": "conv4_1.",
    "features.19.": "conv4_2.",
    "features.21.": "conv4_3.",
    "features.24.": "conv5_1.",
    "features.26.": "conv5_2.",
    "features.28.": "conv5_3.",
}

# Official WS-FCN checkpoint (official_state_dict_keys.txt) -> our module names.
OFFICIAL_BACKBONE_MODULES = frozenset(
    ["conv1a", "b2", "b2_1", "b2_2", "b3", "b3_1", "b3_2", "b4", "b4_1", "b4_2", "b4_3", "b4_4", "b4_5"]
    + ["b5", "b5_1", "b5_2", "b6", "b7", "bn7"]
)
# The authors' network classes inherit from their backbone, so its modules are top-level keys of a
# checkpoint in their layout (ResNet-38: b7.*, ResNet-50/101: torchvision's layer4.*, VGG16: caffe's
# fc7.*; the head keys are the same for all). A key prefix only one backbone has names it (in order).
OFFICIAL_BACKBONE_MARKERS = (
    ("b7.", "resnet38"),
    ("layer3.6.", "resnet101"),
    ("layer4.", "resnet50"),
    ("fc7.", "vgg16"),
)
OFFICIAL_PREFIX_MAP = (
    ("fca.", "context."),
    ("align1.", "fusion.align."),
    ("sf2.", "fusion.sf2."),
    ("last_conv.", "decoder."),
)
OFFICIAL_DROPPED = (
    (re.compile(r"^fca\.fca\d+\.bn\."), "FCA branch BN that the official forward never uses (method §3.1)"),
    (re.compile(r"^_aff\."), "PAMR's fixed kernels, recomputed in code"),
)


class WeightsError(InputError, ValueError):
    """A weight file that cannot be used as asked: unreadable, unsafe, or keys/shapes that do not fit."""


@dataclass
class LoadReport:
    """What happened to every key: loaded, missing (in the target, not the file), unexpected (in the
    file, not the target), dropped (key -> reason), defaulted (absent BN counters), mismatched shapes."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    defaulted: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or of the wrong shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        counts = (
            f"{len(self.loaded)} loaded, {len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.dropped)} dropped, {len(self.defaulted)} defaulted, "
            f"{len(self.mismatched)} wrong shape"
        )
        lines = [f"weights [{self.source or '?'}]: {counts}"]
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.dropped.items():
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            lines.append(f"  dropped ({reason}): {_listing(keys)}")
        for name in ("missing", "unexpected"):
            if getattr(self, name):
                lines.append(f"  {name}: {_listing(getattr(self, name))}")
        if self.defaulted:
            lines.append(f"  defaulted (not in file, initial value kept): {_listing(self.defaulted)}")
        for key, (got, want) in list(self.mismatched.items())[:_SHOWN]:
            lines.append(f"  wrong shape: {key}: file {got}, model {want}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def raise_if_bad(self, *, allow_missing: bool = False, allow_unexpected: bool = False) -> None:
        """Raise :class:`WeightsError` on wrong shapes, and on missing/unexpected keys unless allowed."""
        bad = bool(self.mismatched)
        bad |= bool(self.missing) and not allow_missing
        bad |= bool(self.unexpected) and not allow_unexpected
        if bad:
            raise WeightsError(f"weights do not fit the model\n{self}")


_SHOWN = 20


def _listing(keys: list[str]) -> str:
    more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def unsafe_reason(path: str | Path, err: BaseException, what: str = "checkpoint") -> str:
    """Why a checkpoint was refused by the safe (``weights_only``) loader, without torch's advice to
    load it unsafely."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    what = f" (it references {found.group(1)})" if found else ""
    return (
        f"{what} {path} is refused: it holds pickled objects other than tensors and plain values{what}, "
        "and loading those could run code. Only load files you trust; wsfcn never loads them unsafely"
    )


def unreadable_reason(err: BaseException) -> str:
    """A short reason for a checkpoint that torch cannot read (truncated or not a torch file)."""
    text = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
    if "zip archive" in text or "central directory" in text or isinstance(err, EOFError):
        return "truncated or corrupt (incomplete zip archive)"
    return f"not a torch checkpoint file ({type(err).__name__}: {text[:120]})"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (weights_only); unwrap a ``state_dict``/``model`` entry and a
    uniform DataParallel ``module.`` prefix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: empty weight file (0 bytes)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text advises weights_only=False: never pass it on
        raise WeightsError(unsafe_reason(path, err, "weight file")) from None
    except Exception as err:  # zip/pickle corruption surfaces as various exception types
        raise WeightsError(f"{path}: cannot read weight file: {unreadable_reason(err)}") from None
    if isinstance(obj, Mapping):
        for entry in ("state_dict", "model"):
            if entry in obj and isinstance(obj[entry], Mapping):
                obj = obj[entry]
                break
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state dict, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: not a state dict, non-tensor entries: {bad[:10]}")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def convert_backbone_state_dict(
    state_dict: Mapping[str, torch.Tensor], source: str
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Rename ``source`` keys to backbone names and drop classifier keys (listed in ``report.dropped``).

    A full-model state dict in our naming (keys ``backbone.*``) is reduced to its backbone part.
    """
    if source not in BACKBONE_SOURCES:
        raise ValueError(f"unknown weight source {source!r}; choose from {list(BACKBONE_SOURCES)}")
    report = LoadReport(source=source)
    state = dict(state_dict)
    if any(k.startswith("backbone.") for k in state):
        for k in [k for k in state if not k.startswith("backbone.")]:
            report.dropped[k] = "not a backbone key (full-model checkpoint)"
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(_CLASSIFIER_PREFIXES[source]):
            report.dropped[key] = "ImageNet classifier"
            continue
        if source == "vgg16":
            key = _rename_prefix(key, VGG16_TORCHVISION_NAMES)
        out[key] = value
    return out, report


def load_backbone_weights(
    backbone: Backbone,
    path: str | Path,
    *,
    source: str = "auto",
    allow_missing: bool = False,
    allow_unexpected: bool = False,
) -> LoadReport:
    """Load ImageNet (or converted) weights from ``path`` into ``backbone``; see the module docstring.

    ``source="auto"`` picks the source from the backbone's class. Raises :class:`WeightsError`
    (naming the file and the keys) on missing/unexpected keys unless allowed, and on shape mismatches.
    """
    source = _source_for(backbone) if source == "auto" else source
    expected = _source_for(backbone)
    if source != "native" and source != expected:
        raise WeightsError(f"{path}: source {source!r} does not fit a {type(backbone).__name__} backbone")
    state, report = convert_backbone_state_dict(read_state_dict(path), source)
    try:
        return load_checked(
            backbone, state, report, allow_missing=allow_missing, allow_unexpected=allow_unexpected
        )
    except WeightsError as err:
        raise WeightsError(f"{path}: {err}") from None


def official_backbone(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The backbone of a checkpoint in the authors' layout: ``resnet38``, ``resnet101``, ``resnet50``
    or ``vgg16`` (:data:`OFFICIAL_BACKBONE_MARKERS`); :class:`WeightsError` if none fits."""
    for prefix, name in OFFICIAL_BACKBONE_MARKERS:
        if any(key.startswith(prefix) for key in state_dict):
            return name
    raise WeightsError(
        "no backbone keys of ResNet-38 (b7.*), ResNet-50/101 (layer4.*) or VGG16 (fc7.*): "
        "not a WS-FCN checkpoint in the authors' layout"
    )


def official_backbone_modules(backbone: str) -> frozenset[str]:
    """Top-level module names of ``backbone`` (our names = the authors' ones, method §2)."""
    if backbone == "resnet38":
        return OFFICIAL_BACKBONE_MODULES
    from wsfcn.model.backbones import BACKBONES

    with torch.device("meta"):
        keys = BACKBONES[backbone]().state_dict()
    return frozenset(key.split(".", 1)[0] for key in keys)


def convert_official_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    *,
    allow_unexpected: bool = False,
    allow_missing: bool = False,
    reference: Mapping[str, torch.Tensor] | None = None,
    backbone: str | None = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Map the released WS-FCN checkpoint's keys to ours (a prefix map, method §6.1).

    Backbone ``X`` -> ``backbone.X``; ``fca.*`` -> ``context.*``; ``align1.*`` -> ``fusion.align.*``;
    ``sf2.*`` -> ``fusion.sf2.*``; ``last_conv.N.*`` -> ``decoder.N.*``. ``fca.fcaN.bn.*`` and
    ``_aff.*`` are dropped (listed with reasons); any other key is unexpected and left out.
    ``backbone`` (None: :func:`official_backbone` of the keys) says which keys are backbone keys.
    The result is checked against ``reference`` (e.g. ``model.state_dict()``, meta tensors are fine)
    when given, else its backbone part against that backbone. Raises :class:`WeightsError` on missing
    or unexpected keys unless allowed, and on wrong shapes.
    """
    backbone = backbone or official_backbone(state_dict)
    backbone_modules = official_backbone_modules(backbone)
    report = LoadReport(source="official")
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        reason = next((why for pattern, why in OFFICIAL_DROPPED if pattern.match(key)), None)
        if reason is not None:
            report.dropped[key] = reason
        elif key.split(".", 1)[0] in backbone_modules:
            out["backbone." + key] = value
        elif key.startswith(tuple(old for old, _ in OFFICIAL_PREFIX_MAP)):
            out[_rename_prefix(key, dict(OFFICIAL_PREFIX_MAP))] = value
        else:
            report.unexpected.append(key)
    if reference is None:
        from wsfcn.model.backbones import BACKBONES

        with torch.device("meta"):
            reference = {"backbone." + k: v for k, v in BACKBONES[backbone]().state_dict().items()}
        heads = [k for k in out if not k.startswith("backbone.")]
        check_against(reference, {k: v for k, v in out.items() if k.startswith("backbone.")}, report)
        report.loaded += heads
        report.notes.append(f"{len(heads)} head keys renamed but not checked against a model")
    else:
        check_against(reference, out, report)
        for key in report.unexpected:
            out.pop(key, None)
    report.raise_if_bad(allow_missing=allow_missing, allow_unexpected=allow_unexpected)
    return out, report


def load_official_checkpoint(
    model: nn.Module, path: str | Path, *, allow_missing: bool = False, allow_unexpected: bool = False
) -> LoadReport:
    """Load the released checkpoint (official naming) or a converted one (``backbone.*`` keys)."""
    state = read_state_dict(path)
    try:
        if any(k.startswith("backbone.") for k in state):
            return load_checked(model, state, allow_missing=allow_missing, allow_unexpected=allow_unexpected)
        state, report = convert_official_checkpoint(
            state,
            allow_unexpected=allow_unexpected,
            allow_missing=allow_missing,
            reference=model.state_dict(),
        )
    except WeightsError as err:
        raise WeightsError(f"{path}: {err}") from None
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    return report


def check_against(
    reference: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], report: LoadReport
) -> None:
    """Sort every key of ``state`` and ``reference`` into the fields of ``report``."""
    for key, value in state.items():
        if key not in reference:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(reference[key].shape):
            report.mismatched[key] = (tuple(value.shape), tuple(reference[key].shape))
        else:
            report.loaded.append(key)
    for key in reference:
        if key not in state:
            (report.defaulted if key.endswith("num_batches_tracked") else report.missing).append(key)


def load_checked(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    report: LoadReport | None = None,
    *,
    allow_missing: bool = False,
    allow_unexpected: bool = False,
) -> LoadReport:
    """Load ``state`` into ``module`` after checking every key and shape; returns the filled report."""
    report = report if report is not None else LoadReport(source="native")
    check_against(module.state_dict(), state, report)
    report.raise_if_bad(allow_missing=allow_missing, allow_unexpected=allow_unexpected)
    module.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    return report


def _source_for(backbone: Backbone) -> str:
    from wsfcn.model.backbones import VGG16, ResNet38, ResNetBackbone

    for cls, source in ((ResNet38, "imagenet_r38"), (ResNetBackbone, "torchvision"), (VGG16, "vgg16")):
        if isinstance(backbone, cls):
            return source
    return "native"


def _rename_prefix(key: str, table: Mapping[str, str]) -> str:
    for old, new in table.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key
