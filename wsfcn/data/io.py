"""Robust image and mask reading (method §8.1): the one place that decodes data files.

VOC, SBD and COCO hold JPEGs in every colour mode (grayscale, CMYK, the odd palette or RGBA file) and
masks as palette PNGs whose palette *indices* are class ids (255 = void). ``read_rgb`` converts every
mode to 8-bit RGB instead of rejecting it; ``read_mask`` returns class indices and refuses anything
that could silently turn into a wrong label (lossy JPEG masks, values that do not fit 8 bits, colours
outside the VOC palette). Every failure is a :class:`DataFileError` naming the file and the reason.

EXIF orientation is deliberately *not* applied: the masks are aligned with the stored pixel grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from wsfcn.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


class DataFileError(InputError, ValueError):
    """A data file that cannot be used; ``path`` and ``reason`` are kept for reports."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode ``path`` (so truncation is detected here, not later)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    if path.stat().st_size == 0:
        raise DataFileError(path, "empty file (0 bytes)")
    try:
        image = Image.open(path)
    except UnidentifiedImageError as err:
        raise DataFileError(path, f"unreadable, not a known image format ({err})") from None
    except OSError as err:  # the header itself is cut off
        raise DataFileError(path, f"truncated or corrupt image ({err})") from None
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise DataFileError(path, f"truncated or corrupt image ({image.format}: {err})") from None
    return image


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file header only (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    if path.stat().st_size == 0:
        raise DataFileError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError as err:
        raise DataFileError(path, f"unreadable, not a known image format ({err})") from None
    except OSError as err:
        raise DataFileError(path, f"truncated or corrupt image ({err})") from None
    return height, width


def _to_8bit(values: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    """Integer samples → uint8: 16-bit ones (or any set exceeding 255) as ``round(v * 255 / 65535)``."""
    values = values.astype(np.int64)
    if sixteen_bit or values.max(initial=0) > 255:
        values = (np.clip(values, 0, 65535) * 255 + 32767) // 65535
    return np.clip(values, 0, 255).astype(np.uint8)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read any image as RGB.

    Grayscale (1/L/LA/16-bit), palette (P/PA), RGBA/RGBX (alpha dropped), CMYK (Adobe-inverted
    handled by Pillow), YCbCr, LAB and HSV are converted; 16-bit samples are scaled to 8 bits.

    Returns:
        (H, W, 3) uint8 array.
    """
    image = open_image(path)
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        gray = np.asarray(image)
        if mode == "F":
            if not np.isfinite(gray).all():
                raise DataFileError(path, "float image with NaN or infinite values")
            scale = 255.0 if gray.max(initial=0) <= 1.0 else 1.0  # [0, 1] floats or 8-bit range
            gray = np.rint(np.clip(gray * scale, 0, 255))
        gray = _to_8bit(gray, sixteen_bit=mode.startswith("I;16"))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode not in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"):
        raise DataFileError(path, f"unsupported image mode {mode!r}")
    if mode == "RGBa":
        image = image.convert("RGBA")
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a class-index mask.

    Palette (P/PA) PNGs give their indices, grayscale (L/LA/1, 16-bit with values ≤ 255) their
    values, and RGB masks are mapped back through the VOC palette. Lossy (JPEG) masks, values above
    255 and colours outside the palette raise :class:`DataFileError`.

    Returns:
        (H, W) uint8 array of class ids, 255 = void.
    """
    image = open_image(path)
    if image.format in ("JPEG", "MPO"):
        raise DataFileError(path, "mask stored as lossy JPEG; masks must be lossless (PNG)")
    mode = image.mode
    if mode in ("P", "L"):
        return np.array(image, dtype=np.uint8)
    if mode in ("PA", "LA"):
        return np.array(image.getchannel(0), dtype=np.uint8)
    if mode == "1":
        return np.array(image, dtype=np.uint8)
    if mode.startswith("I"):
        values = np.asarray(image).astype(np.int64)
        bad = values[(values < 0) | (values > 255)]
        if bad.size:
            raise DataFileError(
                path, f"mask value {int(bad.flat[0])} does not fit 8 bits (class ids 0..254, 255)"
            )
        return values.astype(np.uint8)
    if mode in ("RGB", "RGBA", "RGBX"):
        return _rgb_to_index(np.asarray(image.convert("RGB")), path)
    raise DataFileError(path, f"unsupported mask mode {mode!r}")


def _rgb_to_index(rgb: np.ndarray, path: str | Path) -> np.ndarray:
    """Colour-coded (VOC palette) mask → class indices; an unknown colour raises."""
    from wsfcn.data.classes import voc_palette

    palette = np.asarray(voc_palette(), dtype=np.int64).reshape(256, 3)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {}
    for index in range(255, -1, -1):  # the lowest index wins for duplicated colours
        lookup[int(codes[index])] = index
    flat = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    colours, inverse = np.unique(flat, return_inverse=True)
    mapped = np.empty(len(colours), dtype=np.uint8)
    for i, code in enumerate(colours):
        if int(code) not in lookup:
            colour = ((int(code) >> 16) & 255, (int(code) >> 8) & 255, int(code) & 255)
            raise DataFileError(path, f"RGB mask colour {colour} is not in the VOC palette")
        mapped[i] = lookup[int(code)]
    return mapped[inverse.reshape(flat.shape)]


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Save a (H, W) uint8 class-index mask as a VOC-palette PNG (writes via a temporary file)."""
    from wsfcn.data.classes import voc_palette

    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"{path}: a mask must be a 2-D uint8 array, got {mask.dtype} {mask.shape}")
    image = Image.fromarray(mask)  # mode L; putpalette turns it into P with the same indices
    image.putpalette(voc_palette())
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)


def labels_from_mask(mask: np.ndarray) -> list[int]:
    """Image-level labels: the class ids present other than 0 (background) and 255 (void), sorted."""
    present = np.unique(mask)
    return [int(v) for v in present if v not in (0, 255)]


def map_files(
    fn: Callable[[T], R], items: Sequence[T], *, workers: int = 1, desc: str = "", progress: bool = False
) -> list[R]:
    """``[fn(x) for x in items]`` in order, over ``workers`` processes (≤ 1: in this process)."""
    bar = tqdm(total=len(items), desc=desc, disable=not progress, unit="file")
    if workers <= 1 or len(items) < 64:
        results = []
        for item in items:
            results.append(fn(item))
            bar.update()
    else:
        with get_context("fork").Pool(workers) as pool:
            results = []
            for result in pool.imap(fn, items, chunksize=32):
                results.append(result)
                bar.update()
    bar.close()
    return results


def default_workers() -> int:
    """Processes for file decoding: the cores this process may use, at most 8."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))
