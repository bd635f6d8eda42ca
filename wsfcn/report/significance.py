"""Is a row's difference to the reference row larger than the seed spread? Welch's t-test.

Each table row is a mean over seeds with its sample standard deviation; two rows are compared with
Welch's unequal-variance t-test (two-sided), computed from those summaries. Seeds are not paired
across rows: a different head starts from different random weights even at the same seed.
"""

from __future__ import annotations

import math

ALPHA = 0.05  # a difference with p < ALPHA is called larger than the seed spread


def welch_p(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> float:
    """Two-sided p-value of Welch's t-test for means ``a`` and ``b`` (NaN when either has n < 2).

    Two rows without spread (both std 0) give p = 0 for different means and 1 for equal ones.
    """
    from scipy import stats

    if min(n_a, n_b) < 2 or any(math.isnan(v) for v in (mean_a, std_a, mean_b, std_b)):
        return math.nan
    var_a, var_b = std_a**2 / n_a, std_b**2 / n_b
    if var_a + var_b == 0:
        return 0.0 if mean_a != mean_b else 1.0
    t = (mean_a - mean_b) / math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    return float(2 * stats.t.sf(abs(t), df))
