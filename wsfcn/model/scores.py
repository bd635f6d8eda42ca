"""Masks and classification scores from decoder logits (method §5, 1-stage-wseg).

A constant background logit (1, not learned) is prepended to the foreground logits, a softmax
over all classes gives the masks, and the class score is the normalised global weighted pooling
(nGWP) plus the focal mask penalty.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def add_background(fg_logits: torch.Tensor, bg_logit: float = 1.0) -> torch.Tensor:
    """(B, C-1, H, W) foreground logits → (B, C, H, W) with a constant background channel first."""
    background = torch.full_like(fg_logits[:, :1], bg_logit)
    return torch.cat([background, fg_logits], dim=1)


def ngwp_scores(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """nGWP: ``Σ_i m_ci·x_ci / (1 + Σ_i m_ci)``; logits, masks (B, C, H, W) → (B, C)."""
    flat_logits = logits.flatten(2)
    flat_masks = masks.flatten(2)
    return (flat_logits * flat_masks).sum(-1) / (1.0 + flat_masks.sum(-1))


def focal_penalty(masks: torch.Tensor, p: float = 3.0, lam: float = 0.01) -> torch.Tensor:
    """``(1 − m̄_c)^p · log(λ + m̄_c)`` with m̄_c the mean mask value; (B, C, H, W) → (B, C)."""
    mean_mask = masks.flatten(2).mean(-1)
    return (1.0 - mean_mask).pow(p) * torch.log(lam + mean_mask)


def class_scores(
    fg_logits: torch.Tensor, *, bg_logit: float = 1.0, focal_p: float = 3.0, focal_lambda: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, C-1, h, w) foreground logits → ``(scores (B, C-1), masks (B, C, h, w), logits (B, C, h, w))``.

    ``scores`` are pre-sigmoid foreground scores (background dropped); ``masks`` the softmax.
    """
    logits = add_background(fg_logits, bg_logit)
    masks = F.softmax(logits, dim=1)
    scores = ngwp_scores(logits, masks) + focal_penalty(masks, focal_p, focal_lambda)
    return scores[:, 1:], masks, logits
