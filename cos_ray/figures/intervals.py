"""95% intervals that stay inside the range of what they estimate, from the moments DuckDB aggregates.

A Student-t interval on the mean of a bounded score leaves the range near its ends (a baseline of mostly-solved
runs read 0.8764-1.0036). So, as docs/results.md says:
- a proportion (solved, locked in: k of n) gets the Wilson score interval - inside [0, 1], and not empty at 0/n
  or n/n;
- the mean of a score in [0, 1] (or of a paired difference in [-1, 1], rescaled onto [0, 1]) gets a logit
  interval: the t interval of the mean on the logit scale, by the delta method (se / (m (1 - m))), mapped back -
  inside the range, asymmetric near its ends, close to the plain t interval in the middle. When every value sits
  at one end (a score of 1.0 on every run), there is no spread to measure: the Wilson interval of n of n is used,
  the widest a [0, 1] variable with that mean can need (its variance is at most m (1 - m));
- a metric with no bounds (x̂0's change or spread) keeps the plain t interval.
Each takes counts and moments only (no per-run values), so the intervals need one row per group from DuckDB and
do not change between page loads.
"""

from __future__ import annotations

import math

LEVEL = 0.95


def _t(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 2, n - 1))


def _z() -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + LEVEL / 2))


def t_interval(mean: float | None, sd: float | None, n: int) -> tuple[float | None, float | None]:
    """The 95% Student-t interval of a mean from n values with sample standard deviation sd (None below 2 values)."""
    if mean is None or n is None or n < 2 or sd is None or math.isnan(sd):
        return None, None
    if sd == 0:
        return mean, mean
    half = _t(n) * sd / math.sqrt(n)
    return mean - half, mean + half


def wilson(successes: int | None, n: int | None) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of a proportion `successes` / `n` (None for n = 0): always inside [0, 1]."""
    if successes is None or not n:
        return None, None
    z, p = _z(), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends (not 2e-17 from rounding)
    return low, 1.0 if successes == n else min(1.0, centre + half)


def bounded_interval(mean: float | None, sd: float | None, n: int, low: float = 0.0,
                     high: float = 1.0) -> tuple[float | None, float | None]:
    """The 95% interval of the mean of n values in [low, high] with sample standard deviation sd: the logit
    interval, inside [low, high] (see the module's docstring); the plain t interval if the mean is out of range."""
    if mean is None or n is None or n < 2 or sd is None or math.isnan(sd):
        return None, None
    width = high - low
    m, s = (mean - low) / width, sd / width
    if -1e-9 < m < 0 or 1 < m < 1 + 1e-9:
        m = min(max(m, 0.0), 1.0)  # a sum's rounding, not a value out of range
    if not 0 <= m <= 1:
        return t_interval(mean, sd, n)  # values outside the stated range: no bounded interval applies
    if m in (0.0, 1.0):  # every value at one end
        lo, hi = wilson(round(m * n), n)
    elif s == 0:
        return mean, mean
    else:
        centre, half = math.log(m / (1 - m)), _t(n) * s / math.sqrt(n) / (m * (1 - m))
        lo, hi = _expit(centre - half), _expit(centre + half)
    return low + lo * width, low + hi * width


def difference_interval(mean: float | None, sd: float | None, n: int) -> tuple[float | None, float | None]:
    """The 95% interval of a mean paired difference of two [0, 1] scores: `bounded_interval` on [-1, 1]."""
    return bounded_interval(mean, sd, n, -1.0, 1.0)


def paired_p(diff: float | None, sd: float | None, n: int) -> float | None:
    """Two-sided p-value of the paired t-test that the mean difference is 0."""
    if diff is None or n < 2 or sd is None or math.isnan(sd):
        return None
    if sd == 0:
        return 1.0 if diff == 0 else 0.0
    from scipy.stats import t

    return float(2 * t.sf(abs(diff) / (sd / math.sqrt(n)), n - 1))


def paired_difference(differences) -> dict:
    """Paired differences summarised: their mean `diff`, its 95% t interval (`ci_low`, `ci_high`) and the paired
    t-test's two-sided `p`."""
    import numpy as np

    values = np.asarray(differences, dtype=float)
    n = len(values)
    sd = float(values.std(ddof=1)) if n > 1 else None
    mean = float(values.mean()) if n else None
    low, high = t_interval(mean, sd, n)
    return {"diff": mean, "ci_low": low, "ci_high": high, "p": paired_p(mean, sd, n)}


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
