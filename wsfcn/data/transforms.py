"""Joint image/mask transforms: the training augmentation of method §6.2 and the eval transform.

Training: RandomResizedCrop(crop, scale=(scale_min, scale_max), ratio=(3/4, 4/3)) squashed to
``crop x crop`` (bicubic image, nearest mask), horizontal flip p=0.5, ColorJitter(0.3, 0.3, 0.3,
0.1) on every image (random order of the four), then ImageNet normalisation. ``image_raw`` is the
augmented image in [0, 1] before normalisation (the input of PAMR). The semantics follow
torchvision's PIL path; torchvision itself is not a dependency. All randomness comes from the
passed ``numpy.random.Generator`` (or ``torch.Generator``), so a seeded loop is reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageEnhance

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Rng = np.random.Generator | torch.Generator


def as_numpy_rng(rng: Rng) -> np.random.Generator:
    """A numpy Generator; a torch Generator seeds a new one from its next draw."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=rng)))
    raise TypeError(f"rng must be a numpy or torch Generator, got {type(rng).__name__}")


def random_resized_crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.9, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a crop with area share in ``scale`` and aspect w/h in ``ratio``.

    Ten tries as torchvision's ``RandomResizedCrop.get_params``, then a centre crop clamped to ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    if width / height < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif width / height > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def color_jitter(
    image: Image.Image,
    rng: np.random.Generator,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
    hue: float = 0.1,
) -> Image.Image:
    """torchvision ColorJitter on an RGB PIL image: factors in [1-x, 1+x], hue shift in [-hue, hue].

    The four steps run in random order; a step with magnitude 0 is skipped, as in torchvision.
    """
    order = rng.permutation(4)
    b = rng.uniform(max(0.0, 1 - brightness), 1 + brightness)
    c = rng.uniform(max(0.0, 1 - contrast), 1 + contrast)
    s = rng.uniform(max(0.0, 1 - saturation), 1 + saturation)
    h = rng.uniform(-hue, hue)
    for step in order:
        if step == 0 and brightness > 0:
            image = ImageEnhance.Brightness(image).enhance(b)
        elif step == 1 and contrast > 0:
            image = ImageEnhance.Contrast(image).enhance(c)
        elif step == 2 and saturation > 0:
            image = ImageEnhance.Color(image).enhance(s)
        elif step == 3 and hue > 0:
            image = shift_hue(image, h)
    return image


def shift_hue(image: Image.Image, factor: float) -> Image.Image:
    """Rotate the hue by ``factor`` turns (in [-0.5, 0.5]) in PIL's 8-bit HSV space."""
    h, s, v = image.convert("HSV").split()
    shifted = ((np.asarray(h, dtype=np.int64) + int(factor * 255)) % 256).astype(np.uint8)
    return Image.merge("HSV", (Image.fromarray(shifted), s, v)).convert("RGB")


def to_unit_tensor(image: np.ndarray | Image.Image) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, H, W) float32 in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255.0)


def normalize(image_raw: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of (..., 3, H, W) values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image_raw.dtype, device=image_raw.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image_raw.dtype, device=image_raw.device).view(3, 1, 1)
    return (image_raw - mean) / std


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`: (..., 3, H, W) normalised → values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return image * std + mean


def _finish(image: np.ndarray | Image.Image, mask: np.ndarray | Image.Image):
    raw = to_unit_tensor(image)
    return normalize(raw), raw, torch.from_numpy(np.asarray(mask, dtype=np.int64).copy())


class TrainTransform:
    """method §6.2 augmentation; each step switchable.

    Call with ``image`` (H, W, 3) uint8, ``mask`` (H, W) uint8 and a Generator; returns
    ``(image (3, S, S) normalised, image_raw (3, S, S) in [0, 1], mask (S, S) int64)``.
    """

    def __init__(
        self,
        crop_size: int,
        *,
        scale_min: float = 0.9,
        scale_max: float = 1.0,
        flip: bool = True,
        color_jitter: bool = True,
    ) -> None:
        if crop_size < 1 or not 0 < scale_min <= scale_max <= 1:
            raise ValueError(f"need crop_size >= 1 and 0 < scale_min <= scale_max <= 1; got {crop_size}, "
                             f"{scale_min}, {scale_max}")  # fmt: skip
        self.crop_size, self.scale = crop_size, (scale_min, scale_max)
        self.flip, self.color_jitter = flip, color_jitter

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: Rng):
        rng = as_numpy_rng(rng)
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
        top, left, h, w = random_resized_crop_box(rng, *mask.shape, scale=self.scale)
        size = (self.crop_size, self.crop_size)
        box = (left, top, left + w, top + h)
        pil_image = Image.fromarray(image).crop(box).resize(size, Image.Resampling.BICUBIC)
        pil_mask = Image.fromarray(mask).crop(box).resize(size, Image.Resampling.NEAREST)
        if self.flip and rng.random() < 0.5:
            pil_image = pil_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            pil_mask = pil_mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.color_jitter:
            pil_image = color_jitter(pil_image, rng)
        return _finish(pil_image, pil_mask)


class EvalTransform:
    """No geometry or colour change: ``(image normalised, image_raw in [0, 1], mask int64)`` at full size."""

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: Rng | None = None):
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
        return _finish(image, mask)
