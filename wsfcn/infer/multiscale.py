"""Multi-scale + flip inference for one image (method §7), done right.

For every scale ``s`` the uint8 image is resized to ``(round(W·s), round(H·s))`` (bicubic),
ImageNet-normalised, optionally mirrored, and (``pad_size > 0``) padded **centred** with zeros
after normalisation, i.e. with the mean colour. The model returns fg scores and softmax masks at
the input size; each mask is cropped back, resized to the original size (bilinear,
``align_corners=False``) and un-flipped **only if it was flipped**: the authors un-flip every odd
index even without flip, so their "multi-scale without flip" is wrong; this one is not.

The class filter keeps class c if ``max_inputs sigmoid(score_c) > fp_cut``, or keeps the ground
truth image tags (the paper's "§" setting, which uses annotation at test time). Kept fg channels
are averaged over all inputs; the background is the authors' constant (``bg_mode="constant"``,
0.25) or the baseline's ``mean_bg ** bg_pow`` (``bg_mode="power"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from wsfcn.infer.options import DEFAULT_INFER, InferOptions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class View:
    """One model input: the image at ``scale``, maybe mirrored, placed at (top, left) in the canvas."""

    scale: float
    flipped: bool
    height: int
    width: int
    top: int = 0
    left: int = 0


def normalise(image_rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32, ImageNet mean/std."""
    if not (image_rgb.flags.writeable and image_rgb.flags.c_contiguous):
        image_rgb = np.array(image_rgb)  # torch.from_numpy wants a writable, contiguous buffer
    x = torch.from_numpy(image_rgb).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def make_views(
    image_rgb: np.ndarray, scales: Sequence[float], flip: bool, pad_size: int
) -> list[tuple[torch.Tensor, View]]:
    """All inputs for one image, in the authors' order (each scale plain, then mirrored).

    Returns:
        list of ((3, h, w) normalised tensors, View). With ``pad_size > 0`` every tensor is a
        square canvas of side ``max(pad_size, largest scaled side)``, zero outside the image.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image_rgb.shape} {image_rgb.dtype}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {list(scales)}")
    height, width = image_rgb.shape[:2]
    sizes = [(round(height * s), round(width * s)) for s in scales]
    if any(h < 1 or w < 1 for h, w in sizes):
        raise ValueError(f"image of {width}x{height} is too small for scales {list(scales)}")
    side = max([pad_size] + [max(hw) for hw in sizes]) if pad_size > 0 else 0
    pil = Image.fromarray(image_rgb)
    views = []
    for s, (h, w) in zip(scales, sizes, strict=True):
        resized = image_rgb if (h, w) == (height, width) else np.array(pil.resize((w, h), Image.BICUBIC))
        x = normalise(resized)
        for flipped in (False, True) if flip else (False,):
            xi = x.flip(-1) if flipped else x
            top, left = ((side - h) // 2, (side - w) // 2) if side else (0, 0)
            if side:
                xi = F.pad(xi, (left, side - w - left, top, side - h - top), value=0.0)
            views.append((xi, View(float(s), flipped, h, w, top, left)))
    return views


def restore(masks: torch.Tensor, views: Sequence[View], size: tuple[int, int]) -> torch.Tensor:
    """Crop, resize to ``size`` and un-flip model outputs.

    Args:
        masks: (B, C, h', w') masks of the B inputs described by ``views``.
        size: original (H, W).

    Returns:
        (B, C, H, W) float32 in the original image frame.
    """
    out = []
    for mask, v in zip(masks, views, strict=True):
        m = mask[:, v.top : v.top + v.height, v.left : v.left + v.width].float().unsqueeze(0)
        if (v.height, v.width) != tuple(size):
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        out.append(m.flip(-1) if v.flipped else m)
    return torch.cat(out)


def _batches(
    views: list[tuple[torch.Tensor, View]], batch_size: int
) -> list[list[tuple[torch.Tensor, View]]]:
    """Group inputs of equal shape, at most ``batch_size`` each (0: no limit)."""
    groups: dict[tuple[int, ...], list] = {}
    for item in views:
        groups.setdefault(tuple(item[0].shape), []).append(item)
    step = batch_size if batch_size > 0 else len(views)
    return [g[i : i + step] for g in groups.values() for i in range(0, len(g), step)]


def _model_device(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.inference_mode()
def predict_image(
    model: nn.Module,
    image_rgb: np.ndarray,
    options: InferOptions = DEFAULT_INFER,
    *,
    gt_labels: Sequence[int] | None = None,
    return_scores: bool = False,
) -> tuple[np.ndarray, list[int]] | tuple[np.ndarray, list[int], np.ndarray]:
    """Class probabilities of one image from all scales x flips (method §7).

    Args:
        model: eval-mode model, ``model(images) -> (scores (B, C-1), masks (B, C, h, w))``.
        image_rgb: (H, W, 3) uint8, the original image.
        options: scales, flip, padding, ``fp_cut``, background mode (``"constant"``: background =
            ``bg_constant``; ``"power"``: ``mean_bg ** bg_pow``), device (None: the model's) and the
            most inputs per forward pass (``batch_size``, 0: all inputs of one shape together).
        gt_labels: fg class ids (1..C-1) of the image: if given, they replace the ``fp_cut`` filter
            (the paper's "§" setting).

    Returns:
        probs: (C, H, W) float32; channel 0 background, fg channels zero for dropped classes.
        kept: the kept fg class ids (1..C-1), ascending.
        scores (only with ``return_scores``): (C-1,) float32, the image-level score of each fg class
            (max over inputs of sigmoid(score)), the numbers ``fp_cut`` is compared with.
    """
    if model.training:
        raise ValueError("predict_image needs the model in eval mode (call model.eval())")
    if options.bg_mode not in ("constant", "power"):
        raise ValueError(f"options.bg_mode must be 'constant' or 'power', got {options.bg_mode!r}")
    device = torch.device(options.device) if options.device is not None else _model_device(model)
    size = tuple(image_rgb.shape[:2])
    views = make_views(image_rgb, options.scales, options.flip, options.pad_size)
    total, best = None, None
    for group in _batches(views, options.batch_size):
        images = torch.stack([x for x, _ in group]).to(device)
        scores, masks = model(images)
        if masks.shape[0] != len(group) or tuple(masks.shape[2:]) != tuple(images.shape[2:]):
            raise ValueError(f"model returned masks {tuple(masks.shape)} for inputs {tuple(images.shape)}")
        if scores.shape != (len(group), masks.shape[1] - 1):
            raise ValueError(f"model returned scores {tuple(scores.shape)} for masks {tuple(masks.shape)}")
        merged = restore(masks, [v for _, v in group], size).sum(0)
        total = merged if total is None else total + merged
        top = torch.sigmoid(scores.float()).amax(0)
        best = top if best is None else torch.maximum(best, top)
    probs = total / len(views)
    num_classes = probs.shape[0]
    if gt_labels is not None:
        kept = sorted({int(c) for c in gt_labels})
        if any(c < 1 or c >= num_classes for c in kept):
            raise ValueError(f"gt_labels {kept} must be fg class ids in [1, {num_classes})")
    else:
        kept = [int(i) + 1 for i in torch.nonzero(best > options.fp_cut).flatten().tolist()]
    keep = torch.zeros(num_classes, device=probs.device)
    keep[kept] = 1.0
    probs[1:] *= keep[1:, None, None]
    probs[0] = options.bg_constant if options.bg_mode == "constant" else probs[0].pow(options.bg_pow)
    probs_np = probs.cpu().numpy().astype(np.float32, copy=False)
    if return_scores:
        return probs_np, kept, best.float().cpu().numpy()
    return probs_np, kept


def probs_to_mask(probs: np.ndarray) -> np.ndarray:
    """(C, H, W) scores -> (H, W) uint8 class ids (argmax; ties go to the lower id)."""
    if probs.shape[0] > 256:
        raise ValueError(f"{probs.shape[0]} classes do not fit a uint8 mask")
    return probs.argmax(0).astype(np.uint8)
