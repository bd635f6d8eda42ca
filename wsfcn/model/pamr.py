"""PAMR: pixel-adaptive mask refinement (method §5; Araslanov & Roth, CVPR 2020).

Parameter-free. Affinities come from local colour differences at several dilations, normalised
by the local colour standard deviation; the mask is then repeatedly replaced by the
affinity-weighted average of its neighbours.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def neighbour_offsets(dilations: tuple[int, ...]) -> list[tuple[int, int]]:
    """The 8 neighbours at every dilation (centre excluded): 8·len(dilations) (dy, dx) offsets."""
    return [(dy * d, dx * d) for d in dilations for dy, dx in NEIGHBOURS]


def _shift(padded: torch.Tensor, pad: int, dy: int, dx: int, height: int, width: int) -> torch.Tensor:
    return padded[..., pad + dy : pad + dy + height, pad + dx : pad + dx + width]


def pamr_affinity(image: torch.Tensor, dilations: tuple[int, ...]) -> torch.Tensor:
    """Affinity weights α: image (B, 3, H, W) in [0, 1] → (B, P, H, W), softmax over P neighbours.

    ``a_ijk = −|I_ik − I_jk| / (1e-8 + 0.1·σ_ik)`` averaged over colour channels k, where σ is the
    unbiased std of the 3×3 windows (centre included) at all dilations (9·len(dilations) values).
    """
    channels, height, width = image.shape[1:]
    pad = max(dilations)
    padded = F.pad(image, (pad, pad, pad, pad), mode="replicate")
    offsets = neighbour_offsets(dilations)
    # Accumulated per neighbour rather than stacked: the (B, 3, 9·|D|, H, W) window never exists.
    repeats, count = len(dilations), len(offsets) + len(dilations)
    total = image * repeats
    for dy, dx in offsets:
        total.add_(_shift(padded, pad, dy, dx, height, width))
    mean = total / count
    squares = (image - mean).square_().mul_(repeats)
    for dy, dx in offsets:
        squares.add_((_shift(padded, pad, dy, dx, height, width) - mean).square_())
    # 1 / (channels · (1e-8 + 0.1·σ)): the channel mean folded into the scale
    inverse = (squares / (count - 1)).sqrt_().mul_(0.1).add_(1e-8).mul_(channels).reciprocal_()
    # stacked rather than summed into out= views: the same values, and torch.compile traces it whole
    affinity = torch.stack(
        [
            (image - _shift(padded, pad, dy, dx, height, width)).abs_().mul_(inverse).sum(dim=1)
            for dy, dx in offsets
        ],
        dim=1,
    )
    return F.softmax(affinity.neg_(), dim=1)


# Mask values propagated per pass on a CPU: the iterations run over chunks of the batch of about
# this many values (C·h'·w' per image), so that each iteration's neighbour sums stay in cache. The
# propagation is elementwise, so the chunks give the very values of one pass. 800 KiB of fp32 (8
# images of the embedded batch, 32 × 11 × 48²) was the fastest on a 2-core Xeon with 2 MiB of L2
# per core (BENCHMARKS.md).
CPU_CHUNK_VALUES = 200 * 1024


def pamr(
    image: torch.Tensor,
    masks: torch.Tensor,
    *,
    iterations: int = 10,
    dilations: tuple[int, ...] = (1, 2, 4, 8, 12, 24),
    size: int = 0,
    chunk_values: int | None = None,
) -> torch.Tensor:
    """Refine ``masks`` (B, C, h, w) with the colours of ``image`` (B, 3, H, W) in [0, 1].

    The image is resized to the mask size (bilinear, align_corners=True), or both to ``size``×``size``
    when ``size`` > 0 (a cheaper or finer PAMR than the stride-4 mask). Returns (B, C, h', w');
    every pixel stays a convex combination of its neighbours, so normalised masks stay normalised.
    ``chunk_values``: propagate about this many mask values at a time (default: ``CPU_CHUNK_VALUES``
    on a CPU, the whole batch on a GPU; 0: the whole batch); the result does not depend on it.
    """
    if size > 0:
        masks = F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=True)
    height, width = masks.shape[-2:]
    image = F.interpolate(image, size=(height, width), mode="bilinear", align_corners=True)
    alpha = pamr_affinity(image.to(masks.dtype), dilations)
    if chunk_values is None:
        chunk_values = CPU_CHUNK_VALUES if masks.device.type == "cpu" else 0
    per_image = math.prod(masks.shape[1:])
    per_chunk = max(1, chunk_values // per_image if chunk_values > 0 else len(masks))
    refined = [
        propagate(part, weights, iterations=iterations, dilations=dilations)
        for part, weights in zip(masks.split(per_chunk), alpha.split(per_chunk), strict=True)
    ]
    return refined[0] if len(refined) == 1 else torch.cat(refined)


def propagate(
    masks: torch.Tensor, alpha: torch.Tensor, *, iterations: int, dilations: tuple[int, ...]
) -> torch.Tensor:
    """``iterations`` rounds of masks (B, C, h, w) ← Σ_p alpha (B, P, h, w) · neighbour p of masks."""
    height, width = masks.shape[-2:]
    offsets = neighbour_offsets(dilations)
    pad = max(dilations)
    for _ in range(iterations):
        padded = F.pad(masks, (pad, pad, pad, pad), mode="replicate")
        # the first product starts the sum (0 + x = x): no zero-filled buffer and one pass less
        (dy, dx), rest = offsets[0], enumerate(offsets[1:], start=1)
        refined = alpha[:, :1] * _shift(padded, pad, dy, dx, height, width)
        for p, (dy, dx) in rest:
            refined.addcmul_(alpha[:, p : p + 1], _shift(padded, pad, dy, dx, height, width))
        masks = refined
    return masks
