"""SGD with the four parameter groups of the official code (method §6.1).

* backbone weights: ``lr``, with weight decay;
* backbone biases: ``2·lr``, no weight decay (empty for ResNet-38);
* new-layer (head) weights, BN γ included: ``head_lr_mult·lr`` (×20 WS-FCN, ×10 baseline), with decay;
* new-layer biases, BN β included: ``head_bias_lr_mult·lr`` (×40 WS-FCN, ×20 baseline), no decay.

"New" layers are ``model.new_layers()``; every other trainable parameter must belong to
``model.backbone``. The learning rate is constant (the code's ``PolyOptimizer`` is commented out);
``train.lr_schedule: poly`` (embedded only) decays it over the self-training steps, see :func:`lr_factor`.
"""

from __future__ import annotations

import torch
from torch import nn

GROUP_NAMES = ("backbone_weight", "backbone_bias", "head_weight", "head_bias")


def parameter_groups(
    model: nn.Module, *, lr: float, weight_decay: float, head_lr_mult: float, head_bias_lr_mult: float
) -> list[dict]:
    """The non-empty groups, in the fixed order of ``GROUP_NAMES``; each has ``name`` and ``lr_mult``.

    Frozen parameters (``requires_grad=False``) are left out. A trainable parameter that is
    neither in ``model.backbone`` nor in ``model.new_layers()`` raises ``ValueError``.
    """
    new_ids = {id(p) for layer in model.new_layers() for p in layer.parameters()}
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    buckets: dict[str, list[nn.Parameter]] = {name: [] for name in GROUP_NAMES}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = "bias" if name.endswith("bias") else "weight"
        if id(p) in new_ids:
            buckets[f"head_{kind}"].append(p)
        elif id(p) in backbone_ids:
            buckets[f"backbone_{kind}"].append(p)
        else:
            raise ValueError(
                f"trainable parameter {name!r} is neither in model.backbone nor in model.new_layers()"
            )
    settings = {
        "backbone_weight": (1.0, weight_decay),
        "backbone_bias": (2.0, 0.0),
        "head_weight": (head_lr_mult, weight_decay),
        "head_bias": (head_bias_lr_mult, 0.0),
    }
    groups = []
    for name in GROUP_NAMES:
        mult, decay = settings[name]
        if buckets[name]:
            groups.append(
                {
                    "params": buckets[name],
                    "name": name,
                    "lr_mult": mult,
                    "lr": lr * mult,
                    "weight_decay": decay,
                }
            )
    return groups


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    head_lr_mult: float,
    head_bias_lr_mult: float,
) -> torch.optim.SGD:
    """``torch.optim.SGD`` over :func:`parameter_groups` (momentum passed by keyword, unlike the code)."""
    groups = parameter_groups(
        model,
        lr=lr,
        weight_decay=weight_decay,
        head_lr_mult=head_lr_mult,
        head_bias_lr_mult=head_bias_lr_mult,
    )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_factor(
    schedule: str,
    *,
    power: float,
    epoch: int,
    step: int,
    steps_per_epoch: int,
    pretrain_epochs: int,
    epochs: int,
    decay_epochs: int = 0,
) -> float:
    """The multiplier of every group's base rate at ``step`` (from 0) of ``epoch`` (from 1).

    ``constant``: 1. ``poly``: 1 through the PRETRAIN epochs, then ``(1 - t / T) ** power`` with
    ``t`` the self-training steps done and ``T`` all of them, so the last step runs at a small rate.
    ``decay_epochs > 0`` holds the rate at 1 until the last ``decay_epochs`` epochs and decays over
    those alone (never before PRETRAIN ends).
    """
    if schedule not in ("constant", "poly"):
        raise ValueError(f"unknown train.lr_schedule {schedule!r} (constant | poly)")
    start = pretrain_epochs if decay_epochs <= 0 else max(pretrain_epochs, epochs - decay_epochs)
    if schedule == "constant" or epoch <= start:
        return 1.0
    total = (epochs - start) * steps_per_epoch
    done = (epoch - start - 1) * steps_per_epoch + step
    return max(0.0, 1.0 - done / max(total, 1)) ** power


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group at ``lr * group['lr_mult']`` (``lr``: the backbone weights' rate)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
