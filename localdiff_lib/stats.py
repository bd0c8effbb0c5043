"""Intervals: Student-t quantiles and confidence intervals across replicates, the estimate type that carries them, and
a percentile bootstrap over the items of one sample.

Used by every estimator that reports a value with an interval across seeds (chapters "Estimating CMI", "CMI and the
Markov length", "The CMI barrier") and by the sample-quality measures ("Hybrid sampling"). No scipy: the t quantile is
a numerical inversion of its CDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .checks import integer, number, real_array

__all__ = ["student_t_quantile", "confidence_interval", "bootstrap_interval", "Estimate"]


def student_t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile of Student's t with ``df`` degrees of freedom (numerical inversion of the CDF; no scipy)."""
    p = number(p, "p", at_least=0.5, below=1.0)
    df = integer(df, "df")
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x):  # P(T <= x) for x >= 0 by Simpson's rule on [0, x]
        u = np.linspace(0.0, x, 4001)
        f = np.exp(logc - (df + 1) / 2 * np.log1p(u * u / df))
        h = x / 4000
        return 0.5 + h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def confidence_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0):
    """``(mean, half_width)`` of a Student-t interval from independent replicates (e.g. seeds) along ``axis``."""
    x = real_array(samples, "samples")
    level = number(level, "level", above=0.0, below=1.0)
    n = x.shape[integer(axis, "axis", -x.ndim, x.ndim - 1)]
    if n < 2:
        raise ValueError("a confidence interval needs at least 2 replicates (seeds)")
    q = student_t_quantile(0.5 + level / 2, n - 1)
    return x.mean(axis), q * x.std(axis, ddof=1) / math.sqrt(n)


def bootstrap_interval(statistic, n: int, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(idx)`` over ``n`` items: ``statistic`` receives an index array of
    ``n`` draws with replacement from ``range(n)`` and returns a number; the interval holds the central ``level`` of
    ``n_boot`` resamples. It measures the sampling variability of the items (images, samples), not the bias of the
    statistic (a Fréchet distance is biased upwards at finite ``n``: compare with its real-versus-real floor)."""
    n, n_boot = integer(n, "n", minimum=2), integer(n_boot, "n_boot", minimum=2)
    level = number(level, "level", above=0.0, below=1.0)
    rng = np.random.default_rng(integer(seed, "seed", minimum=None))
    values = np.array([float(statistic(rng.integers(0, n, size=n))) for _ in range(n_boot)])
    if not np.all(np.isfinite(values)):
        raise ValueError("the statistic returned NaN or inf on a bootstrap resample")
    lo, hi = np.quantile(values, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


@dataclass
class Estimate:
    """An estimate (nats) with a confidence interval across seeds; never clipped (it may be negative)."""

    value: float
    half_width: float
    per_seed: np.ndarray
    bound: str
    level: float = 0.95
    parts: dict = field(default_factory=dict)  # e.g. {"I(A:BC)": Estimate, "I(A:B)": Estimate} for a CMI

    @property
    def ci(self) -> tuple[float, float]:
        return self.value - self.half_width, self.value + self.half_width

    def __str__(self) -> str:
        lo, hi = self.ci
        return f"{self.value:.4f} nats [{lo:.4f}, {hi:.4f}] ({int(100 * self.level)}% CI, {len(self.per_seed)} seeds, {self.bound})"

    @classmethod
    def from_seeds(cls, per_seed, bound: str, level: float = 0.95, parts: dict | None = None) -> "Estimate":
        """The mean of ``per_seed`` with its Student-t interval (:func:`confidence_interval`)."""
        m, h = confidence_interval(per_seed, level)
        return cls(float(m), float(h), np.asarray(per_seed, dtype=np.float64), bound, level, parts or {})
