"""Markov length: fit ``I(A:C|B) ~ gamma exp(-r / xi)`` against the buffer radius ``r`` (chapter "CMI and the Markov length").

Two fits, both weighted by the uncertainty of each CMI value when it is given:

* ``method="log"``: straight line through ``(r, log CMI)``; exact values (e.g. :func:`localdiff_lib.info.gaussian_cmi`
  on the AR(1) chain) give the exact ``xi`` once ``r`` is past the transient. Needs every CMI in the window > 0.
* ``method="linear"``: nonlinear least squares of ``gamma e^{-r/xi}`` to the values themselves (Gauss–Newton from
  the log fit), for noisy neural estimates that may be ~0 or slightly negative: nothing is dropped or clipped.

``xi_se`` is the standard error from the fit's curvature (the inverse of ``J^T W J``); with no per-point errors it is
scaled by the residual variance. ``r`` is the **buffer radius** throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import InputError, cmi_map_arrays, finite_numbers, number, real_array
from .stats import student_t_quantile

__all__ = ["MarkovFit", "fit_markov_length", "markov_lengths_of_map"]


@dataclass
class MarkovFit:
    """``I(A:C|B) ~ gamma exp(-r / xi)`` fitted on the radii ``r``."""

    xi: float
    xi_se: float
    gamma: float
    r: np.ndarray  # radii used
    method: str

    def predict(self, r) -> np.ndarray:
        return self.gamma * np.exp(-np.asarray(r, dtype=np.float64) / self.xi)

    def __str__(self) -> str:
        return f"xi = {self.xi:.3g} +- {self.xi_se:.2g} px (gamma = {self.gamma:.3g}, r = {self.r.min()}..{self.r.max()}, {self.method})"


def _window(r, cmi, se, r_min, r_max):
    r = finite_numbers(r, "r").reshape(-1)
    cmi = finite_numbers(cmi, "cmi").reshape(-1)
    if r.shape != cmi.shape:
        raise InputError(f"r and cmi must have the same length, got {r.size} and {cmi.size}")
    if se is not None:
        se = real_array(se, "cmi_se").reshape(-1)
        if se.shape != r.shape or np.any(~((se > 0) & np.isfinite(se))):
            raise InputError("cmi_se must have the same length as r and be > 0 (and finite) everywhere")
    keep = np.ones(r.size, dtype=bool)
    if r_min is not None:
        keep &= r >= number(r_min, "r_min")
    if r_max is not None:
        keep &= r <= number(r_max, "r_max")
    if keep.sum() < 2:
        raise InputError(f"need at least 2 radii in the fit window, got {int(keep.sum())}")
    if np.unique(r[keep]).size < 2:
        raise InputError(f"need at least 2 distinct radii in the fit window, got r = {r[keep].tolist()}")
    return r[keep], cmi[keep], (se[keep] if se is not None else None)


def fit_markov_length(r, cmi, cmi_se=None, *, r_min: float | None = None, r_max: float | None = None,
                      method: str = "log") -> MarkovFit:
    """Fit the Markov length ``xi`` (in pixels of buffer radius) and ``gamma`` to CMI values at radii ``r``.

    ``cmi_se``: standard errors of the values (e.g. a CI half-width divided by its t-quantile), used as weights.
    ``r_min``/``r_max`` restrict the window (the law is asymptotic: start past the transient). Returns
    :class:`MarkovFit`; ``xi = inf`` when the values do not decay.
    """
    if method not in ("log", "linear"):
        raise InputError(f"method must be 'log' or 'linear', got {method!r}")
    r, y, se = _window(r, cmi, cmi_se, r_min, r_max)
    if method == "log":
        if np.any(y <= 0):
            raise ValueError(
                f"method='log' needs CMI > 0 at every radius; r = {r[y <= 0].tolist()} have values <= 0. "
                "Use method='linear' (fits the values themselves) or narrow the window with r_max."
            )
        return _log_fit(r, y, se)
    return _linear_fit(r, y, se)


def _log_fit(r, y, se):
    ly = np.log(y)
    w = np.ones_like(r) if se is None else (y / se) ** 2  # Var(log y) ~ (se / y)^2
    X = np.stack([np.ones_like(r), r], 1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ X.T @ (w * ly)
    if se is None:
        dof = max(r.size - 2, 1)
        res = ly - X @ beta
        cov = cov * float(res @ res) / dof
    slope, slope_se = beta[1], math.sqrt(max(cov[1, 1], 0.0))
    if slope >= 0:
        return MarkovFit(math.inf, math.inf, float(math.exp(beta[0])), r, "log")
    xi = -1.0 / slope
    return MarkovFit(float(xi), float(slope_se * xi**2), float(math.exp(beta[0])), r, "log")


def _linear_fit(r, y, se, iters: int = 200):
    w = np.ones_like(r) if se is None else 1.0 / se**2
    pos = y > 0
    if pos.sum() >= 2:
        start = _log_fit(r[pos], y[pos], None if se is None else se[pos])
        lg, k = math.log(max(start.gamma, 1e-300)), (1.0 / start.xi if math.isfinite(start.xi) else 1e-3)
    else:
        lg, k = math.log(max(float(np.abs(y).max()), 1e-12)), 0.5
    lam = 1e-3
    sse = None
    for _ in range(iters):  # Levenberg–Marquardt on (log gamma, k = 1/xi)
        f = np.exp(lg - k * r)
        J = np.stack([f, -r * f], 1)
        res = y - f
        cur = float((w * res**2).sum())
        sse = cur if sse is None else sse
        JTJ = J.T @ (w[:, None] * J)
        g = J.T @ (w * res)
        step = np.linalg.solve(JTJ + lam * np.diag(np.diag(JTJ) + 1e-300), g)
        lg2, k2 = lg + step[0], k + step[1]
        new = float((w * (y - np.exp(lg2 - k2 * r)) ** 2).sum())
        if new <= cur:
            lg, k, lam = lg2, k2, lam / 3
            if abs(cur - new) <= 1e-14 * max(cur, 1e-300):
                break
        else:
            lam *= 5
            if lam > 1e12:
                break
    f = np.exp(lg - k * r)
    J = np.stack([f, -r * f], 1)
    cov = np.linalg.pinv(J.T @ (w[:, None] * J))
    if se is None:
        res = y - f
        cov = cov * float(res @ res) / max(r.size - 2, 1)
    if k <= 0:
        return MarkovFit(math.inf, math.inf, float(math.exp(lg)), r, "linear")
    xi = 1.0 / k
    return MarkovFit(float(xi), float(math.sqrt(max(cov[1, 1], 0.0)) * xi**2), float(math.exp(lg)), r, "linear")


def markov_lengths_of_map(cmi_map, r_min: float | None = None, r_max: float | None = None,
                          method: str = "linear") -> list[MarkovFit]:
    """One :class:`MarkovFit` per ``t`` row of a CMI map.

    Works with :class:`localdiff_lib.cmi_map.CMIMap` (weights from its confidence half-widths, converted to standard
    errors with the Student-t quantile) and :class:`localdiff_lib.info.SurrogateMap` (exact values, unweighted).
    """
    t, r, cmi = cmi_map_arrays(cmi_map)
    se = None
    if hasattr(cmi_map, "cmi_hw"):
        q = student_t_quantile(0.5 + cmi_map.level / 2, cmi_map.per_seed_cmi.shape[0] - 1)
        se = np.maximum(cmi_map.cmi_hw / q, 1e-12)
    fits = []
    for i in range(len(t)):
        fits.append(fit_markov_length(r, cmi[i], None if se is None else se[i], r_min=r_min,
                                      r_max=r_max, method=method))
    return fits
