"""Loss functions (method §5): multi-label classification loss and the class-balanced mask CE."""

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
    # class counts and per-pixel weights by index (no (B, C, H, W) one-hot); ignored pixels go to bin C
    bins = torch.where(valid, pseudo_gt, num_classes).flatten(1)
    counts = torch.zeros(batch, num_classes + 1, dtype=torch.long, device=logits.device)
    counts.scatter_add_(1, bins, torch.ones(1, 1, dtype=torch.long, device=logits.device).expand_as(bins))
    per_class = counts[:, :num_classes].to(logits.dtype)  # (B, C)
    total = per_class.sum(-1, keepdim=True)
    class_weight = (total - per_class) / (1.0 + total)
    pixel_weight = F.pad(class_weight, (0, 1)).gather(1, bins).view_as(pseudo_gt)  # (B, H, W), 0 if ignored
    ce = F.cross_entropy(logits, pseudo_gt, ignore_index=IGNORE_INDEX, reduction="none")
    per_image = (pixel_weight * ce).flatten(1).mean(-1)
    present = (per_class > 0).sum(-1)
    expected = labels.sum(-1).round().long() + 1
    return per_image * (present == expected).to(logits.dtype)
