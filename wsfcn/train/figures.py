"""Training-time panel in the style of the paper's Figure 6: image | CAM | PAMR-refined | pseudo-GT | GT.

One row per image of a fixed validation batch, written as a PNG every ``train.figure_every``
epochs. The CAM column overlays the strongest foreground mask (max over the present classes of
the softmax masks, method §5) on the image; the other columns use the PASCAL VOC palette, with
void / ignored pixels (255) in its cream colour.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np

from wsfcn.data.classes import voc_palette

COLUMNS = ("image", "CAM", "PAMR-refined", "pseudo-GT", "GT")


class PanelRow(TypedDict):
    """One image. image: (H, W, 3) float in [0, 1]; cam: (H, W) float in [0, 1]; refined, pseudo_gt,
    gt: (H, W) integer class maps (255 = void / ignored)."""

    image: np.ndarray
    cam: np.ndarray
    refined: np.ndarray
    pseudo_gt: np.ndarray
    gt: np.ndarray


def colorize(labels: np.ndarray) -> np.ndarray:
    """(H, W) integer class ids in [0, 255] → (H, W, 3) uint8 VOC colours."""
    palette = np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3)
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"class ids must lie in [0, 255], got range [{labels.min()}, {labels.max()}]")
    return palette[labels.astype(np.int64)]


def overlay_cam(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat map (jet colours) over an (H, W, 3) [0, 1] image."""
    from matplotlib import colormaps

    heat = colormaps["jet"](np.clip(cam, 0.0, 1.0))[..., :3]
    return np.clip((1 - alpha) * image + alpha * heat, 0.0, 1.0)


def save_training_figure(path: str | Path, rows: list[PanelRow], *, title: str = "") -> Path:
    """Render ``rows`` as a len(rows) × 5 grid and save it as a PNG (Agg canvas); return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("save_training_figure needs at least one row")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(2.0 * len(COLUMNS), 2.0 * len(rows)))
    FigureCanvasAgg(fig)  # no pyplot: no global backend state
    axes = fig.subplots(len(rows), len(COLUMNS), squeeze=False)
    for r, row in enumerate(rows):
        panels = (
            row["image"],
            overlay_cam(row["image"], row["cam"]),
            colorize(row["refined"]),
            colorize(row["pseudo_gt"]),
            colorize(row["gt"]),
        )
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(COLUMNS[c], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path
