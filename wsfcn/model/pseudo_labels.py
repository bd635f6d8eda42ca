"""Pseudo ground truth from refined masks (method §5, ``pseudo_gtmask`` of 1-stage-wseg)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsfcn.data.classes import IGNORE_INDEX


def clean_masks(masks: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample (B, C, h, w) masks to ``size`` (bilinear, align_corners=True) and zero the foreground
    channels of classes absent from the image-level ``labels`` (B, C-1)."""
    keep = torch.cat([torch.ones_like(labels[:, :1]), labels], dim=1).to(masks.dtype)
    # zeroing before the (linear, per-channel) upsampling gives the same values on a 4-16× smaller map
    return F.interpolate(masks * keep[:, :, None, None], size=size, mode="bilinear", align_corners=True)


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
    count = claimed.sum(dim=1, dtype=torch.uint8)
    # where exactly one class claims a pixel, the index-weighted sum is that class (10× argmax's speed);
    # int16 sums (at most 0 + 1 + ... + 254 < 2^15 for up to 255 classes), a quarter of int64's traffic
    index = torch.arange(masks.shape[1], device=masks.device, dtype=torch.int16).view(1, -1, 1, 1)
    labels = (claimed * index).sum(dim=1, dtype=torch.int16)
    return torch.where(count == 1, labels, IGNORE_INDEX).long()
