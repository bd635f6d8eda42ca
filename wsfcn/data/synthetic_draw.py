"""Vectorised drawing for the embedded synthetic benchmark (see ``wsfcn.data.synthetic``).

Shapes are implicit functions on object coordinates (unit radius), textures are value
modulations in rotated pixel coordinates, and the background is a smooth multi-colour field
with grain or stripes and small saturated clutter. Everything draws from one
``numpy.random.Generator``, so an image is a pure function of its seed.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassStyle:
    """How one foreground class is drawn: outline, hue (degrees), texture and surround."""

    shape: str
    hue: float
    texture: str
    mat: str = ""  # "" | one of MAT_KINDS: a background patch always drawn under the object


# Design 1: three pairs share a hue and differ in shape and texture; 7 and 8 have hues of their own.
# Design 2 (docs/embedded-benchmark.md): hexagon and diamond share hue, texture and a convex outline
# and differ by their surround (sand or pond, background pixels); the cross has thin arms; object
# radii spread down to 0.14 of the side. Design 3: disc and triangle share hue and a smooth surface
# (an interior pixel's class is in the outline, far away); hexagon and diamond have hues of their own;
# mats stand under any class or alone, never tied to one.
CLASS_STYLES: dict[int, tuple[ClassStyle, ...]] = {
    1: (
        ClassStyle("disc", 0.0, "smooth"),
        ClassStyle("triangle", 0.0, "stripes"),
        ClassStyle("square", 125.0, "checker"),
        ClassStyle("cross", 125.0, "speckle"),
        ClassStyle("hexagon", 220.0, "dots"),
        ClassStyle("diamond", 220.0, "stripes"),
        ClassStyle("semicircle", 50.0, "speckle"),
        ClassStyle("capsule", 290.0, "smooth"),
    ),
    2: (
        ClassStyle("disc", 0.0, "smooth"),
        ClassStyle("triangle", 0.0, "stripes"),
        ClassStyle("square", 125.0, "checker"),
        ClassStyle("thin_cross", 125.0, "speckle"),
        ClassStyle("hexagon", 220.0, "dots", mat="sand"),
        ClassStyle("diamond", 220.0, "dots", mat="pond"),
        ClassStyle("semicircle", 50.0, "speckle"),
        ClassStyle("capsule", 290.0, "smooth"),
    ),
    3: (  # a candidate measured on the development benchmark only (docs/embedded-benchmark.md)
        ClassStyle("disc", 0.0, "smooth"),
        ClassStyle("triangle", 0.0, "smooth"),
        ClassStyle("square", 125.0, "checker"),
        ClassStyle("thin_cross", 125.0, "speckle"),
        ClassStyle("hexagon", 220.0, "dots"),
        ClassStyle("diamond", 170.0, "stripes"),
        ClassStyle("semicircle", 50.0, "speckle"),
        ClassStyle("capsule", 290.0, "smooth"),
    ),
    4: (  # every class told apart by hue and texture inside; thin parts, small objects, free mats
        ClassStyle("disc", 0.0, "smooth"),
        ClassStyle("triangle", 0.0, "stripes"),
        ClassStyle("square", 125.0, "checker"),
        ClassStyle("thin_cross", 125.0, "speckle"),
        ClassStyle("hexagon", 220.0, "dots"),
        ClassStyle("diamond", 170.0, "stripes"),
        ClassStyle("semicircle", 50.0, "speckle"),
        ClassStyle("capsule", 290.0, "smooth"),
    ),
}
# Design 5: a candidate measured on the development benchmark only (docs/embedded-benchmark.md):
# design 4's looks, thin cross and mats, with objects no smaller than design 1's.
CLASS_STYLES[5] = CLASS_STYLES[4]
DESIGNS = tuple(CLASS_STYLES)
# object radius, share of the short side
RADIUS_RANGE = {1: (0.18, 0.38), 2: (0.14, 0.38), 3: (0.14, 0.38), 4: (0.14, 0.38), 5: (0.18, 0.38)}
MAT_KINDS = ("sand", "pond")
MAT_SCALE = (1.3, 1.6)  # a mat's radius, in object radii
LONE_MAT_RATE = 0.3  # designs 2-5: share of images with a mat on its own
OTHER_MAT_RATE = 0.35  # designs 2-5: share of objects without a mat of their class that stand on one
SHAPE_EXTENT = 1.4  # every shape lies inside |u|, |v| <= SHAPE_EXTENT


def _polygon(u: np.ndarray, v: np.ndarray, sides: int, radius: float) -> np.ndarray:
    apothem = radius * np.cos(np.pi / sides)
    inside = np.ones(u.shape, dtype=bool)
    for k in range(sides):
        angle = np.pi / 2 + np.pi / sides + 2 * np.pi * k / sides
        inside &= u * np.cos(angle) + v * np.sin(angle) <= apothem
    return inside


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean inside-test of ``shape`` at object coordinates ``u, v`` (areas about 2.4-3.1)."""
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "triangle":
        return _polygon(u, v + 0.1, 3, 1.35)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape in ("cross", "thin_cross"):
        half = 0.4 if shape == "cross" else 0.26
        au, av = np.abs(u), np.abs(v)
        return ((au <= half) & (av <= 1.0)) | ((av <= half) & (au <= 1.0))
    if shape == "hexagon":
        return _polygon(u, v, 6, 1.0)
    if shape == "diamond":
        return np.abs(u) / 0.95 + np.abs(v) / 1.35 <= 1.0
    if shape == "semicircle":
        return (u * u + (v + 0.42) ** 2 <= 1.25**2) & (v >= -0.42)
    if shape == "capsule":
        du = np.maximum(np.abs(u) - 0.65, 0.0)
        return du * du + v * v <= 0.6**2
    raise KeyError(f"unknown shape {shape!r}")


def hsv_rgb(hue_deg: float, sat: float, val: float) -> np.ndarray:
    """One colour: hue in degrees, saturation and value in [0, 1] → RGB float32 (3,)."""
    return np.array(colorsys.hsv_to_rgb((hue_deg / 360.0) % 1.0, sat, val), dtype=np.float32)


def smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Random ``cells x cells`` grid in [0, 1), bilinearly upsampled to (height, width) float32."""

    def weights(n: int) -> np.ndarray:
        pos = (np.arange(n) + 0.5) / n * (cells - 1)
        low = np.clip(np.floor(pos).astype(int), 0, cells - 2)
        frac = (pos - low).astype(np.float32)
        out = np.zeros((n, cells), dtype=np.float32)
        out[np.arange(n), low] = 1 - frac
        out[np.arange(n), low + 1] = frac
        return out

    grid = rng.random((cells, cells)).astype(np.float32)
    return weights(height) @ grid @ weights(width).T


def texture(rng: np.random.Generator, kind: str, tu: np.ndarray, tv: np.ndarray, unit: float) -> np.ndarray:
    """Multiplicative value modulation (about mean 1) at rotated pixel coordinates ``tu, tv``.

    ``unit`` is pixels per 1/96 of the image side, so periods scale with the image.
    """
    if kind == "smooth":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (tu * np.cos(angle) + tv * np.sin(angle)) / (30.0 * unit)
        return 1.0 + 0.15 * np.clip(ramp, -1, 1)
    if kind == "stripes":
        period = rng.uniform(5.0, 9.0) * unit
        wave = np.sin(2 * np.pi * tu / period + rng.uniform(0, 2 * np.pi))
        return 1.0 + rng.uniform(0.25, 0.4) * np.tanh(3 * wave)
    if kind == "checker":
        period = rng.uniform(7.0, 11.0) * unit
        cells = np.floor(tu / period + rng.random()) + np.floor(tv / period + rng.random())
        return 1.0 + rng.uniform(0.25, 0.4) * (2 * (cells % 2) - 1)
    if kind == "dots":
        spacing = rng.uniform(6.0, 9.0) * unit
        fu = (tu / spacing + rng.random()) % 1.0 - 0.5
        fv = (tv / spacing + rng.random()) % 1.0 - 0.5
        dots = fu * fu + fv * fv <= 0.3**2
        cover, depth = np.pi * 0.09, rng.uniform(0.35, 0.5)
        return np.where(dots, 1.0 - depth, 1.0 + depth * cover / (1 - cover))
    if kind == "speckle":
        return 1.0 + rng.uniform(0.12, 0.2) * rng.standard_normal(tu.shape).astype(np.float32)
    raise KeyError(f"unknown texture {kind!r}")


def background(rng: np.random.Generator, height: int, width: int, unit: float) -> np.ndarray:
    """(H, W, 3) float32 in about [0, 1]: 2-3 blended colours, grain or stripes, clutter."""
    count = int(rng.integers(2, 4))
    colours = [
        hsv_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.55), rng.uniform(0.3, 0.9)) for _ in range(count)
    ]
    logits = np.stack([smooth_field(rng, height, width, int(rng.integers(2, 5))) for _ in range(count)])
    weights = np.exp(6.0 * (logits - logits.max(axis=0)))
    weights /= weights.sum(axis=0)
    image = np.einsum("khw,kc->hwc", weights, np.stack(colours))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    kind = rng.choice(["grain", "stripes", "plain"], p=[0.45, 0.35, 0.2])
    if kind == "grain":
        image *= 1.0 + rng.uniform(0.03, 0.08) * rng.standard_normal((height, width, 1)).astype(np.float32)
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4.0, 14.0) * unit
        wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        image *= (1.0 + rng.uniform(0.05, 0.12) * wave)[..., None]
    class_hues = sorted({style.hue for style in CLASS_STYLES[1]})  # every design: design 1's clutter
    for _ in range(int(rng.integers(3, 10))):
        hue = rng.choice(class_hues) + rng.uniform(-10, 10) if rng.random() < 0.6 else rng.uniform(0, 360)
        colour = hsv_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.5, 1.0))
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.5:  # a short line segment
            angle, length = rng.uniform(0, np.pi), rng.uniform(0.08, 0.3) * min(height, width)
            dx, dy = np.cos(angle) * length, np.sin(angle) * length
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (length * length), 0, 1)
            dist2 = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2
            hit = dist2 <= (rng.uniform(0.5, 1.1) * unit) ** 2
        else:  # a dot
            hit = (xx - x0) ** 2 + (yy - y0) ** 2 <= (rng.uniform(1.0, 3.0) * unit) ** 2
        image[hit] = colour
    return image


@dataclass
class Placement:
    """One object: its class, in-frame box, mask and rotated pixel coordinates inside the box."""

    cls: int
    box: tuple[slice, slice]
    mask: np.ndarray  # (h, w) bool, in-frame part of the object
    tu: np.ndarray  # (h, w) rotated pixel coordinates, for textures
    tv: np.ndarray
    total: int  # object pixels including the part outside the frame
    centre: tuple[float, float]  # (x, y) in pixels
    radius: float  # the larger of the two semi-axes, in pixels


def place_object(rng: np.random.Generator, cls: int, height: int, width: int, design: int = 4) -> Placement:
    """Sample size (``RADIUS_RANGE`` of the short side), aspect, rotation and centre of class ``cls``."""
    shape = CLASS_STYLES[design][cls - 1].shape
    radius = rng.uniform(*RADIUS_RANGE[design]) * min(height, width)
    aspect = np.exp(rng.uniform(-0.25, 0.25))
    sx, sy = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    theta = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(0.12, 0.88) * width, rng.uniform(0.12, 0.88) * height
    reach = SHAPE_EXTENT * max(sx, sy)
    x0, x1 = int(np.floor(cx - reach)), int(np.ceil(cx + reach)) + 1
    y0, y1 = int(np.floor(cy - reach)), int(np.ceil(cy + reach)) + 1
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    tu = np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)
    tv = -np.sin(theta) * (xx - cx) + np.cos(theta) * (yy - cy)
    inside = shape_mask(shape, tu / sx, tv / sy)
    cy0, cx0 = max(y0, 0) - y0, max(x0, 0) - x0
    cy1, cx1 = min(y1, height) - y0, min(x1, width) - x0
    crop = (slice(cy0, cy1), slice(cx0, cx1))
    return Placement(
        cls=cls,
        box=(slice(y0 + cy0, y0 + cy1), slice(x0 + cx0, x0 + cx1)),
        mask=inside[crop],
        tu=tu[crop],
        tv=tv[crop],
        total=int(inside.sum()),
        centre=(float(cx), float(cy)),
        radius=float(max(sx, sy)),
    )


def paint_mat(
    rng: np.random.Generator,
    image: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    kind: str,
    unit: float,
) -> None:
    """Paint a mat in place: a disc of ``MAT_SCALE`` times ``radius`` (pixels) at ``centre`` (x, y).

    sand: pale, warm, grainy; pond: dark teal with ripples. Neither hue nor value is an object's.
    A mat is background: under every object of its context class, under some objects of other
    classes (``OTHER_MAT_RATE``) or alone (``LONE_MAT_RATE``).
    """
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    cx, cy = centre
    reach = rng.uniform(*MAT_SCALE) * radius
    wobble = 1.0 + 0.08 * np.sin(3 * np.arctan2(yy - cy, xx - cx) + rng.uniform(0, 2 * np.pi))
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= (reach * wobble) ** 2
    if kind == "sand":
        base = hsv_rgb(30.0 + rng.uniform(-8, 8), rng.uniform(0.15, 0.3), rng.uniform(0.82, 0.95))
        shade = 1.0 + 0.06 * rng.standard_normal((height, width)).astype(np.float32)
    elif kind == "pond":
        base = hsv_rgb(185.0 + rng.uniform(-8, 8), rng.uniform(0.45, 0.65), rng.uniform(0.25, 0.4))
        angle, period = rng.uniform(0, np.pi), rng.uniform(4.0, 7.0) * unit
        shade = 1.0 + 0.12 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    else:
        raise KeyError(f"unknown mat {kind!r}")
    image[inside] = np.clip(base[None, :] * shade[inside][:, None], 0, 1)


def paint_object(
    rng: np.random.Generator, image: np.ndarray, obj: Placement, unit: float, design: int = 4
) -> None:
    """Paint ``obj`` in place: class hue +-10 deg, saturation 0.5-0.95, value 0.45-0.95, texture."""
    style = CLASS_STYLES[design][obj.cls - 1]
    hue, kind = style.hue, style.texture
    base = hsv_rgb(hue + rng.uniform(-10, 10), rng.uniform(0.5, 0.95), rng.uniform(0.45, 0.95))
    shade = texture(rng, kind, obj.tu, obj.tv, unit).astype(np.float32)
    region = image[obj.box]
    region[obj.mask] = np.clip(base[None, :] * shade[obj.mask][:, None], 0, 1)
