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
    se, df = _welch_se_df(std_a, n_a, std_b, n_b)
    if se == 0:
        return 0.0 if mean_a != mean_b else 1.0
    return float(2 * stats.t.sf(abs(mean_a - mean_b) / se, df))


def _welch_se_df(std_a: float, n_a: int, std_b: float, n_b: int) -> tuple[float, float]:
    """The standard error of the difference of two means and Welch's degrees of freedom (df is NaN
    when both rows have no spread)."""
    var_a, var_b = std_a**2 / n_a, std_b**2 / n_b
    if var_a + var_b == 0:
        return 0.0, math.nan
    return math.sqrt(var_a + var_b), (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))


POWER = 0.8  # the chance of finding a true difference that a detectable difference is sized for


def detectable_difference(
    std_a: float, n_a: int, std_b: float, n_b: int, *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The smallest difference of means that Welch's test finds with probability ``power`` at level
    ``alpha`` (two-sided), for rows with these seed spreads and counts (NaN when either n < 2).

    Solved on the noncentral t distribution with Welch's degrees of freedom: the difference ``d`` for
    which ``P(|T| > t_crit)`` is ``power`` when ``T`` has noncentrality ``d / SE``. With std 0.6 and
    n = 5 in both rows it is 1.2 mIoU. Both rows without spread give 0.
    """
    from scipy import optimize, stats

    if min(n_a, n_b) < 2 or any(math.isnan(v) for v in (std_a, std_b)):
        return math.nan
    se, df = _welch_se_df(std_a, n_a, std_b, n_b)
    if se == 0:
        return 0.0
    t_crit = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(noncentrality: float) -> float:
        dist = stats.nct(df, noncentrality)
        wrong_side = dist.cdf(-t_crit)  # a vanishing tail, which scipy gives as NaN far out
        return dist.sf(t_crit) + (0.0 if math.isnan(wrong_side) else wrong_side) - power

    upper = t_crit + 1.0
    while shortfall(upper) < 0:  # widen the bracket until the power is reached
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper) * se)
