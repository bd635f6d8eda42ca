"""Figures: palette colouring, overlays, the Figure-7-style qualitative grid, the confusion matrix
and the per-class IoU bars (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wsfcn.data.classes import voc_palette  # noqa: E402

VOID_COLOUR = (224, 224, 192)  # VOC palette entry 255


def colorize(mask: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class ids -> (H, W, 3) uint8 VOC-palette colours (255 -> void colour)."""
    palette = np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3)
    return palette[np.asarray(mask, dtype=np.uint8)]


def overlay(image_rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the palette colours of non-background pixels over the image.

    Args:
        image_rgb: (H, W, 3) uint8; mask: (H, W) class ids of the same size.
        alpha: weight of the class colour (background pixels keep the image).

    Returns:
        (H, W, 3) uint8.
    """
    if image_rgb.shape[:2] != mask.shape:
        raise ValueError(f"image {image_rgb.shape[:2]} and mask {mask.shape} differ in size")
    colour = colorize(mask).astype(np.float32)
    out = image_rgb.astype(np.float32)
    fg = (mask > 0)[..., None]
    out = np.where(fg, (1.0 - alpha) * out + alpha * colour, out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def qualitative_grid(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str],
    path: str | Path,
    *,
    row_labels: Sequence[str] = (),
    cell_inches: float = 2.4,
) -> Path:
    """Save an image grid (Figure 7: image | baseline | WS-FCN | GT).

    Args:
        rows: per row, the cells: (H, W, 3) uint8 images or (H, W) class-id masks (coloured here).
        titles: column titles, one per cell of a row.
        row_labels: optional label per row (e.g. the image id), written left of the row.
    """
    if not rows:
        raise ValueError("qualitative_grid needs at least one row")
    ncols = len(titles)
    if any(len(r) != ncols for r in rows):
        raise ValueError(f"every row needs {ncols} cells (one per title)")
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(cell_inches * ncols, cell_inches * 0.8 * len(rows)), squeeze=False
    )
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            ax = axes[i][j]
            ax.imshow(cell if cell.ndim == 3 else colorize(cell), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=10)
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def confusion_png(matrix: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix (rows: ground truth, columns: prediction) as a heat map."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n = len(class_names)
    size = max(5.0, 0.32 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(n)
    ax.set_xticks(ticks, class_names, rotation=90, fontsize=max(4, 9 - n // 20))
    ax.set_yticks(ticks, class_names, fontsize=max(4, 9 - n // 20))
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the GT row")
    fig.tight_layout()
    return _save(fig, path)


def iou_bars_png(
    iou: Sequence[float], class_names: Sequence[str], path: str | Path, *, title: str = ""
) -> Path:
    """Per-class IoU bars in percent; NaN (class absent from GT and prediction) drawn as 'n/a'."""
    values = np.asarray(iou, dtype=np.float64) * 100
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * n + 2), 4))
    x = np.arange(n)
    ax.bar(x, np.nan_to_num(values), color=colorize(np.arange(n) % 256) / 255.0, edgecolor="black")
    for xi, v in zip(x, values, strict=True):
        ax.text(
            xi,
            (0 if np.isnan(v) else v) + 1,
            "n/a" if np.isnan(v) else f"{v:.1f}",
            ha="center",
            fontsize=6,
            rotation=90,
        )
    ax.set_xticks(x, class_names, rotation=90, fontsize=max(4, 9 - n // 20))
    ax.set_ylim(0, 110)
    ax.set_ylabel("IoU (%)")
    ax.set_title(title or f"mIoU {np.nanmean(values):.1f}%")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
