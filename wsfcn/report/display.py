"""How numbers are shown in a table: a missing value is "–", never 0; ours is mean ± std (n)."""

from __future__ import annotations

import math

MISSING = "–"


def ours_cell(mean: float, std: float, n: int) -> str:
    if not n:
        return MISSING
    return f"{mean:.2f} (n=1)" if n == 1 else f"{mean:.2f} ± {std:.2f} (n={n})"


def number_cell(value: float, fmt: str = "{:.2f}") -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def p_value_cell(p: float, alpha: float) -> str:
    """A p-value to three decimals, "<0.001" below that, starred when below ``alpha``."""
    if math.isnan(p):
        return MISSING
    shown = "<0.001" if p < 0.001 else f"{p:.3f}"
    return shown + (" *" if p < alpha else "")


def paper_cell(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_cell(float(value))
    return MISSING if value is None else str(value)


def subset_label(run: str, size: int | None) -> str:
    return f"{run} [{image_count(size)}]" if size else run


def image_count(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"
