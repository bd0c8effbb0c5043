"""Critical times from data statistics: speciation from the covariance spectrum, collapse from the empirical posterior.

Two transitions of diffusion models are predicted from the training data alone (Biroli, Bonnaire, de Bortoli and
Mézard, "Dynamical regimes of diffusion models"), translated here to the path ``X_t = (1-t) X_0 + t Z``:

- **speciation** (the time below which ``X_t`` starts to know which class it belongs to): along the top principal
  direction of the data, with covariance eigenvalue ``L``, the signal variance ``(1-t)^2 L`` equals the noise
  variance ``t^2`` at ``t_S = sqrt(L) / (1 + sqrt(L))`` (:func:`speciation_time`). With ``L`` the top eigenvalue of
  the data covariance (:func:`covariance_spectrum`) or of the between-class covariance of the class means
  (:func:`class_mean_spectrum`, what speciation is about).
- **collapse** (the time below which ``X_t`` knows *which training image* it came from): the posterior over the
  ``N`` training indices, the softmax weights of the ideal denoiser (:mod:`localdiff_lib.closed_form`), concentrates.
  :func:`posterior_curves` measures, for ``x_t`` drawn from the training set itself, the mean posterior entropy over
  indices (``log N - I(X_0; X_t)`` for the empirical distribution), the mean weight on the true source and the
  mean entropy of the class posterior; :func:`crossing_time` reads off where a curve crosses a level.

Chapter "Beyond the paper" compares these times with the peak of the CMI and the identity-loss time of local
denoisers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .checks import finite_numbers, integer, number, real_array, unit_times
from .closed_form import ideal_log_weights
from .info import gaussian_surrogate

__all__ = ["speciation_time", "covariance_spectrum", "class_mean_spectrum", "PosteriorCurves", "posterior_curves",
           "crossing_time"]


def speciation_time(eigenvalue) -> float | np.ndarray:
    """``t_S = sqrt(L) / (1 + sqrt(L))``: where ``(1-t)^2 L = t^2`` on the path (signal variance along the direction
    of covariance eigenvalue ``L`` equals the noise variance). Vectorised over ``L``; ``L`` must be positive."""
    lam = real_array(eigenvalue, "eigenvalue", "positive and finite (a covariance eigenvalue)")
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"the covariance eigenvalue must be positive and finite; got {eigenvalue!r}")
    s = np.sqrt(lam)
    out = s / (1 + s)
    return float(out) if out.ndim == 0 else out


def covariance_spectrum(images) -> np.ndarray:
    """The eigenvalues of the data covariance (float64, over flattened pixels, unbiased), largest first."""
    _, cov = gaussian_surrogate(images)
    return np.linalg.eigvalsh(cov)[::-1].copy()


def class_mean_spectrum(images, labels) -> np.ndarray:
    """The eigenvalues of the between-class covariance ``sum_c pi_c (mu_c - mu)(mu_c - mu)^T`` (``pi_c`` the class
    frequencies, ``mu_c`` the class means), largest first. At most ``classes - 1`` are non-zero."""
    x = torch.as_tensor(images).detach().reshape(len(images), -1).to(torch.float64).cpu()
    y = torch.as_tensor(labels).detach().reshape(-1).cpu()
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels")
    classes = torch.unique(y)
    if len(classes) < 2:
        raise ValueError("the between-class covariance needs at least two classes")
    mu = x.mean(0)
    cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for c in classes:
        sel = x[y == c]
        d = sel.mean(0) - mu
        cov += (sel.shape[0] / x.shape[0]) * torch.outer(d, d)
    return np.linalg.eigvalsh(cov.numpy())[::-1].copy()


@dataclass
class PosteriorCurves:
    """The empirical posterior along the path, averaged over ``x_t`` drawn from the training set.

    ``t`` (T,); ``entropy`` (T,): mean entropy (nats) of the posterior over the ``n_train`` training indices;
    ``true_weight`` (T,): mean posterior weight on the image ``x_t`` was made from; ``class_entropy`` (T,): mean
    entropy of the class posterior (``None`` without labels); ``*_se``: standard errors over the probes."""

    t: np.ndarray
    entropy: np.ndarray
    entropy_se: np.ndarray
    true_weight: np.ndarray
    true_weight_se: np.ndarray
    class_entropy: np.ndarray | None
    class_entropy_se: np.ndarray | None
    n_train: int
    n_probe: int

    @property
    def mutual_information(self) -> np.ndarray:
        """``I(X_0; X_t) = log N - E[H(index | X_t)]`` for the empirical distribution (nats)."""
        return math.log(self.n_train) - self.entropy


def posterior_curves(images, t_values, *, labels=None, n_probe: int = 64, seed: int = 0,
                     batch_size: int = 256) -> PosteriorCurves:
    """Posterior entropy over training indices, weight on the true source and class-posterior entropy, versus ``t``.

    For each ``t``: ``n_probe`` training images ``x_j`` (drawn uniformly with a seeded generator, the same for
    every ``t``) are noised with fresh seeded noise, ``x_t = (1-t) x_j + t z``, and the ideal denoiser's posterior
    ``w_i(x_t, t)`` over all ``N`` images is computed (:func:`localdiff_lib.closed_form.ideal_log_weights`, float64)
    on the device of ``images`` (the noise is drawn on the CPU, so every device sees the same draw).
    """
    x = torch.as_tensor(images).detach()
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W); got {tuple(x.shape)}")
    n = x.shape[0]
    n_probe = integer(n_probe, "n_probe")
    batch_size = integer(batch_size, "batch_size")
    seed = integer(seed, "seed", minimum=None)
    t_arr = unit_times(t_values, "t_values")
    onehot = None
    if labels is not None:
        y = torch.as_tensor(labels).detach().cpu().reshape(-1)
        if y.shape[0] != n:
            raise ValueError(f"{n} images but {y.shape[0]} labels")
        _, inv = torch.unique(y, return_inverse=True)
        onehot = torch.nn.functional.one_hot(inv).to(device=x.device, dtype=torch.float64)   # (N, classes)
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(n, (n_probe,), generator=gen)
    rows = {k: [] for k in ("H", "Hse", "w", "wse", "C", "Cse")}
    for t in t_arr:
        z = torch.randn((n_probe, *x.shape[1:]), generator=gen, dtype=torch.float64).to(x.device)
        H, w, C = [], [], []
        for s in range(0, n_probe, batch_size):
            idx = src[s:s + batch_size].to(x.device)
            xt = (1 - t) * x[idx].to(torch.float64) + t * z[s:s + batch_size]
            logw = ideal_log_weights(xt, float(t), x)
            p = logw.exp()
            H.append(-(p * torch.where(p > 0, logw, torch.zeros_like(logw))).sum(1))
            w.append(p[torch.arange(len(idx), device=p.device), idx])
            if onehot is not None:
                pc = p @ onehot
                C.append(-(pc * torch.log(pc.clamp_min(1e-300))).sum(1))
        for key, vals in (("H", H), ("w", w), ("C", C)):
            if vals:
                v = torch.cat(vals).cpu().numpy()
                rows[key].append(v.mean())
                rows[key + "se"].append(v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0)
    arr = {k: np.array(v) for k, v in rows.items()}
    return PosteriorCurves(t_arr, arr["H"], arr["Hse"], arr["w"], arr["wse"],
                           arr["C"] if onehot is not None else None, arr["Cse"] if onehot is not None else None,
                           n, n_probe)


def crossing_time(t_values, values, level: float) -> float:
    """The first ``t`` where the piecewise-linear curve ``values(t)`` crosses ``level`` (in either direction).

    Returns ``nan`` when the curve stays on one side over the whole grid (say so rather than guess), and the first
    grid time when the curve starts exactly on the level."""
    t = finite_numbers(t_values, "t_values").reshape(-1)
    v = finite_numbers(values, "values").reshape(-1)
    level = number(level, "level")
    if t.shape != v.shape or t.size < 1:
        raise ValueError(f"t_values and values must be 1-D of the same length; got {t.shape} and {v.shape}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t_values must be strictly increasing")
    d = v - float(level)
    if d[0] == 0:
        return float(t[0])
    for k in range(1, t.size):
        if d[k] == 0 or np.sign(d[k]) != np.sign(d[k - 1]):
            return float(t[k - 1] + (t[k] - t[k - 1]) * d[k - 1] / (d[k - 1] - d[k]))
    return float("nan")
