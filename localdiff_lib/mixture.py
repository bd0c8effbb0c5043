"""Exact Gaussian-mixture data on the path ``X_t = (1 - t) X_0 + t Z``: a model with known answers.

If ``X_0 ~ sum_k w_k N(mu_k, Sigma_k)`` in ``R^d`` (``d`` pixels), then ``X_t`` is again a mixture,
``sum_k w_k N((1 - t) mu_k, S_k(t))`` with ``S_k(t) = (1 - t)^2 Sigma_k + t^2 I``, and every posterior
mean a denoiser could learn is available in closed form. :class:`GaussianMixture` computes them
*independently* of each other (the score from the density, ``E[X_0 | x]`` and ``E[Z | x]`` by Gaussian
regression), so that the identities between them (Tweedie's formula, chapter "Diffusion and flow
matching") can be checked rather than assumed. The marginal of a subset of pixels is again a mixture
(:meth:`GaussianMixture.marginal`), which gives the exact *marginal* score that the best local reverse
drift uses (chapter "Fokker–Planck").

Everything is computed in the dtype of the parameters (float64 by default).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from . import path
from .checks import InputError, generator as check_generator, indices, integer


def _tensor(value, name: str, dtype: torch.dtype) -> torch.Tensor:
    """``value`` (numbers, nested lists, an array or a tensor) as a tensor of the floating-point ``dtype``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InputError(f"dtype must be a floating-point dtype (torch.float64 by default); got {dtype}")
    try:
        return torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"{name} must be numbers (an array or a tensor); got {value!r}") from None


def _time(t, n: int | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``t`` as a tensor of ``dtype``, checked by :func:`localdiff_lib.path.check_t`."""
    return path.check_t(t, n).to(dtype)


class GaussianMixture:
    """The distribution of ``X_0 = sum_k w_k N(mu_k, Sigma_k)`` in ``R^d`` and of ``X_t`` on the path.

    ``weights``: ``(K,)``, positive, summing to 1. ``means``: ``(K, d)``. ``covs``: ``(K, d, d)``,
    symmetric positive definite. Points ``x`` are ``(N, d)``; times ``t`` are a scalar or ``(N,)`` in ``[0, 1]``.
    Use :meth:`isotropic` for components ``N(mu_k, s_k^2 I)``.
    """

    def __init__(self, weights, means, covs, dtype: torch.dtype = torch.float64):
        w, mu, cov = _tensor(weights, "weights", dtype), _tensor(means, "means", dtype), _tensor(covs, "covs", dtype)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weights must be a non-empty vector (K,), got shape {tuple(w.shape)}")
        k = w.shape[0]
        if mu.ndim != 2 or mu.shape[0] != k:
            raise ValueError(f"means must have shape (K, d) = ({k}, d), got {tuple(mu.shape)}")
        d = mu.shape[1]
        if cov.shape != (k, d, d):
            raise ValueError(f"covs must have shape (K, d, d) = ({k}, {d}, {d}), got {tuple(cov.shape)}")
        if not bool((w > 0).all()) or not abs(float(w.sum()) - 1.0) <= 1e-9:  # NaN fails both
            raise InputError(f"weights must be positive and sum to 1, got {w.tolist()} (sum {float(w.sum()):.6g})")
        for name, v in (("means", mu), ("covs", cov)):
            if not bool(torch.isfinite(v).all()):
                raise InputError(f"{name} must be finite; got NaN or inf values")
        if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-12):
            raise ValueError("covs must be symmetric")
        _, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            bad = torch.nonzero(info).flatten().tolist()
            raise ValueError(f"covs must be positive definite; components {bad} are not")
        self.weights, self.means, self.covs = w, mu, cov
        self._evals, self._evecs = torch.linalg.eigh(cov)

    @classmethod
    def isotropic(cls, weights, means, stds, dtype: torch.dtype = torch.float64) -> "GaussianMixture":
        """Components ``N(mu_k, s_k^2 I)``; ``means`` of shape ``(K,)`` mean one pixel (``d = 1``)."""
        mu = _tensor(means, "means", dtype)
        if mu.ndim == 1:
            mu = mu[:, None]
        s = _tensor(stds, "stds", dtype)
        if s.shape != (mu.shape[0],) or not bool(((s > 0) & torch.isfinite(s)).all()):
            raise InputError(f"stds must be {mu.shape[0]} positive numbers, one per component, got {s.tolist()}")
        eye = torch.eye(mu.shape[1], dtype=dtype)
        return cls(weights, mu, s[:, None, None] ** 2 * eye, dtype=dtype)

    # ------------------------------------------------------------------ basic facts
    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, d={self.dim})"

    def at(self, t: float) -> "GaussianMixture":
        """The law of ``X_t`` as a mixture: means ``(1 - t) mu_k``, covariances ``(1 - t)^2 Sigma_k + t^2 I``."""
        t = float(_time(t))
        return GaussianMixture(self.weights, (1 - t) * self.means, path.marginal_covariance(self.covs, t),
                               dtype=self.means.dtype)

    def marginal(self, dims: Sequence[int]) -> "GaussianMixture":
        """The law of the pixels ``dims`` of ``X_0`` (a mixture with the same weights).

        Because the noise is independent pixel by pixel, ``marginal(dims).at(t)`` is also the law of
        those pixels of ``X_t``: marginalising and noising commute.
        """
        dims = indices(dims, "dims", self.dim)
        if not dims or len(set(dims)) != len(dims):
            raise InputError(f"dims must be distinct pixel indices in [0, {self.dim}), got {dims}")
        idx = torch.as_tensor(dims, dtype=torch.long)
        return GaussianMixture(self.weights, self.means[:, idx], self.covs[:, idx][:, :, idx], dtype=self.means.dtype)

    def mean(self, t: float = 0.0) -> torch.Tensor:
        """``E[X_t]``, shape ``(d,)``."""
        t = float(_time(t))
        return (1 - t) * (self.weights[:, None] * self.means).sum(0)

    def cov(self, t: float = 0.0) -> torch.Tensor:
        """``Cov[X_t]``, shape ``(d, d)`` (within-component plus between-component covariance)."""
        g = self.at(t)
        m = g.mean()
        second = (g.weights[:, None, None] * (g.covs + g.means[:, :, None] * g.means[:, None, :])).sum(0)
        return second - m[:, None] * m[None, :]

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` clean points: returns ``(x0, labels)`` of shapes ``(n, d)`` and ``(n,)``.

        Noise them with :func:`localdiff_lib.path.add_noise` (or sample ``self.at(t)`` directly).
        """
        n = integer(n, "n")
        labels = torch.multinomial(self.weights, n, replacement=True, generator=check_generator(generator))
        chol = torch.linalg.cholesky(self.covs)
        eps = torch.randn(n, self.dim, 1, generator=generator, dtype=self.means.dtype)
        return self.means[labels] + (chol[labels] @ eps)[..., 0], labels

    # ------------------------------------------------------------------ exact posterior quantities
    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        try:
            x = torch.as_tensor(x, dtype=self.means.dtype)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"x must be points of shape (N, {self.dim}) (numbers); got {x!r}") from None
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"x must have shape (N, {self.dim}) for this {self.dim}-pixel mixture, got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise InputError("x must be finite; got NaN or inf values")
        return x

    def _terms(self, x: torch.Tensor, t):
        """The pieces every exact quantity needs, in each component's eigenbasis ``Sigma_k = U_k diag(lam_k) U_k^T``
        (then ``S_k(t) = U_k diag((1 - t)^2 lam_k + t^2) U_k^T``, so a per-sample ``t`` costs no matrix solves).

        Returns ``log w_k N(x; m_k, S_k)`` (N, K), ``S_k^{-1}(x - m_k)`` (N, K, d) and
        ``Sigma_k S_k^{-1}(x - m_k)`` (N, K, d), with ``m_k = (1 - t) mu_k``, and ``t`` as (N, 1, 1).
        """
        x = self._check_x(x)
        n, d = x.shape
        tt = _time(t, n, x.dtype)[:, None, None]                               # (N, 1, 1)
        diff = x[:, None, :] - (1 - tt) * self.means[None]                     # (N, K, d)
        y = torch.einsum("kji,nkj->nki", self._evecs, diff)                    # U_k^T (x - m_k)
        lam_t = path.marginal_variance(self._evals[None], tt)                  # eigenvalues of S_k(t)
        if bool((lam_t <= 0).any()):
            raise ValueError("the covariance of X_t is singular at this t; use t > 0")
        w = y / lam_t
        prec_diff = torch.einsum("kij,nkj->nki", self._evecs, w)
        cov_prec_diff = torch.einsum("kij,nkj->nki", self._evecs, self._evals[None] * w)
        logn = -0.5 * (d * math.log(2 * math.pi) + torch.log(lam_t).sum(-1) + (y * w).sum(-1))
        return torch.log(self.weights)[None] + logn, prec_diff, cov_prec_diff, tt

    def log_prob(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """``log p_t(x)``, shape ``(N,)``."""
        return torch.logsumexp(self._terms(x, t)[0], dim=1)

    def responsibilities(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """``P(component k | X_t = x)``, shape ``(N, K)``."""
        return torch.softmax(self._terms(x, t)[0], dim=1)

    def score(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """The exact score ``grad_x log p_t(x) = -sum_k P(k | x) S_k^{-1} (x - (1 - t) mu_k)``, shape ``(N, d)``."""
        lw, prec_diff, _, _ = self._terms(x, t)
        return -(torch.softmax(lw, 1)[..., None] * prec_diff).sum(1)

    def posterior_mean(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """``E[X_0 | X_t = x]`` by Gaussian regression in each component:
        ``sum_k P(k | x) [mu_k + (1 - t) Sigma_k S_k^{-1} (x - (1 - t) mu_k)]``, shape ``(N, d)``."""
        lw, _, cov_prec_diff, tt = self._terms(x, t)
        return (torch.softmax(lw, 1)[..., None] * (self.means[None] + (1 - tt) * cov_prec_diff)).sum(1)

    def noise_mean(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """``E[Z | X_t = x] = sum_k P(k | x) t S_k^{-1} (x - (1 - t) mu_k)`` (``Cov(Z, X_t) = t I``), shape ``(N, d)``."""
        lw, prec_diff, _, tt = self._terms(x, t)
        return (torch.softmax(lw, 1)[..., None] * tt * prec_diff).sum(1)

    def predict(self, kind: str, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """The exact prediction of ``kind`` (``velocity``, ``noise``, ``x0`` or ``score``; see
        :mod:`localdiff_lib.path`) at ``(x, t)``: what a perfectly trained denoiser of that kind outputs."""
        path.check_kind(kind)
        if kind == "score":
            return self.score(x, t)
        lw, prec_diff, cov_prec_diff, tt = self._terms(x, t)
        r = torch.softmax(lw, 1)[..., None]
        x0_hat = (r * (self.means[None] + (1 - tt) * cov_prec_diff)).sum(1)
        z_hat = (r * tt * prec_diff).sum(1)
        return path.target(kind, x0_hat, z_hat, tt[:, 0, 0])

    def cdf(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """``P(X_t <= x)`` for a one-pixel mixture; ``x`` of shape ``(N,)`` or ``(N, 1)``, returns ``(N,)``."""
        if self.dim != 1:
            raise ValueError(f"cdf is defined for one-pixel mixtures only; this one has d = {self.dim} (use marginal([i]))")
        x = torch.as_tensor(x, dtype=self.means.dtype).reshape(-1)
        tt = _time(t, x.shape[0], x.dtype)[:, None]
        m = (1 - tt) * self.means[:, 0][None]
        sd = torch.sqrt(path.marginal_variance(self.covs[:, 0, 0][None], tt))
        return (self.weights[None] * 0.5 * (1 + torch.erf((x[:, None] - m) / (sd * math.sqrt(2))))).sum(1)
