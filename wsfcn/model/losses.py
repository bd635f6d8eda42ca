"""Loss functions (METHOD §5): multi-label classification loss and the class-balanced mask CE."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsfcn.data.classes import IGNORE_INDEX


def classification_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label soft margin (sigmoid BCE averaged over classes and batch); (B, C-1) each → scalar."""
    return F.multilabel_soft_margin_loss(scores, labels.to(scores.dtype))


def balanced_mask_ce(logits: torch.Tensor, pseudo_gt: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Class-balanced CE of ``logits`` (B, C, H, W) against ``pseudo_gt`` (B, H, W); returns (B,).

    Each pixel's CE is weighted by ``(N − N_c)/(1 + N)`` (N labelled pixels of the image, N_c those of
    its class) and averaged over all H·W pixels (ignored ones count 0). An image contributes only
    when its pseudo-GT holds exactly its labelled classes plus background: #classes present ==
    #GT foreground labels (B, C-1) + 1.
    """
    batch, num_classes = logits.shape[:2]
    valid = pseudo_gt != IGNORE_INDEX
    one_hot = F.one_hot(torch.where(valid, pseudo_gt, 0), num_classes).permute(0, 3, 1, 2)
    one_hot = one_hot * valid.unsqueeze(1)
    per_class = one_hot.flatten(2).sum(-1).to(logits.dtype)  # (B, C)
    total = per_class.sum(-1, keepdim=True)
    class_weight = (total - per_class) / (1.0 + total)
    pixel_weight = (one_hot.to(logits.dtype) * class_weight[:, :, None, None]).sum(1)  # (B, H, W)
    ce = F.cross_entropy(logits, pseudo_gt, ignore_index=IGNORE_INDEX, reduction="none")
    per_image = (pixel_weight * ce).flatten(1).mean(-1)
    present = (per_class > 0).sum(-1)
    expected = labels.sum(-1).round().long() + 1
    return per_image * (present == expected).to(logits.dtype)
