"""Pseudo ground truth from refined masks (METHOD §5, ``pseudo_gtmask`` of 1-stage-wseg)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsfcn.data.classes import IGNORE_INDEX


def clean_masks(masks: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample (B, C, h, w) masks to ``size`` (bilinear, align_corners=True) and zero the foreground
    channels of classes absent from the image-level ``labels`` (B, C-1)."""
    masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=True)
    keep = torch.cat([torch.ones_like(labels[:, :1]), labels], dim=1).to(masks.dtype)
    return masks * keep[:, :, None, None]


def pseudo_gt(
    masks: torch.Tensor, *, bg_cutoff: float = 0.7, fg_cutoff: float = 0.6, floor: float = 0.2
) -> torch.Tensor:
    """(B, C, H, W) cleaned refined masks → (B, H, W) int64 pseudo labels, 255 = ignored.

    Per image and class, τ_c = max(floor, κ_c·max_i m_ci) with κ = bg_cutoff for the background
    and fg_cutoff otherwise; pixel i is claimed by c if m_ci > τ_c. Pixels claimed by no class or by
    several are ignored.
    """
    peak = masks.flatten(2).max(dim=-1).values  # (B, C)
    cutoff = torch.full_like(peak, fg_cutoff)
    cutoff[:, 0] = bg_cutoff
    threshold = torch.clamp(peak * cutoff, min=floor)
    claimed = masks > threshold[:, :, None, None]
    unique = claimed.sum(dim=1) == 1
    # where exactly one class claims a pixel, the index-weighted sum is that class (10× argmax's speed)
    index = torch.arange(masks.shape[1], device=masks.device).view(1, -1, 1, 1)
    labels = (claimed * index).sum(dim=1)
    return torch.where(unique, labels, torch.full_like(labels, IGNORE_INDEX))
