"""Exact Gaussian mixtures on the path (``localdiff_lib.mixture``): closed forms, identities, marginals, errors."""

from __future__ import annotations

import math

import pytest
import torch

from localdiff_lib import path
from localdiff_lib.mixture import GaussianMixture

D = torch.float64


def mixture_2d() -> GaussianMixture:
    covs = torch.tensor([[[0.010, 0.006], [0.006, 0.010]], [[0.004, -0.001], [-0.001, 0.002]], [[0.02, 0.0], [0.0, 0.005]]])
    return GaussianMixture([0.5, 0.3, 0.2], [[0.2, 0.3], [0.8, 0.7], [0.5, 0.9]], covs)


def test_single_gaussian_matches_closed_forms():
    """K = 1, d = 1: X_t ~ N((1-t) m, (1-t)^2 s^2 + t^2); every posterior mean is linear regression."""
    m, s = 0.4, 0.3
    g = GaussianMixture.isotropic([1.0], [m], [s])
    x = torch.tensor([[-1.0], [0.2], [0.7], [2.5]], dtype=D)
    for t in [0.0, 0.2, 0.5, 0.9, 1.0]:
        var = (1 - t) ** 2 * s**2 + t**2
        xf = x[:, 0]
        logp = -0.5 * math.log(2 * math.pi * var) - (xf - (1 - t) * m) ** 2 / (2 * var)
        assert torch.allclose(g.log_prob(x, t), logp, atol=1e-12)
        assert torch.allclose(g.score(x, t)[:, 0], -(xf - (1 - t) * m) / var, atol=1e-12)
        assert torch.allclose(g.posterior_mean(x, t)[:, 0], m + (1 - t) * s**2 / var * (xf - (1 - t) * m), atol=1e-12)
        assert torch.allclose(g.noise_mean(x, t)[:, 0], t / var * (xf - (1 - t) * m), atol=1e-12)
        assert torch.allclose(g.cdf(x, t), 0.5 * (1 + torch.erf((xf - (1 - t) * m) / math.sqrt(2 * var))), atol=1e-12)


def test_score_is_gradient_of_log_prob():
    g = mixture_2d()
    x = torch.randn(50, 2, dtype=D, generator=torch.Generator().manual_seed(0)).mul(0.5).add(0.5).requires_grad_()
    t = torch.linspace(0.0, 1.0, 50, dtype=D)  # per-sample times, t = 0 and t = 1 included
    (grad,) = torch.autograd.grad(g.log_prob(x, t).sum(), x)
    assert torch.allclose(grad, g.score(x.detach(), t), atol=1e-9)


def test_tweedie_and_the_four_predictions_agree():
    """The score, E[X_0|x] and E[Z|x] are computed independently; path.convert must map each onto the others."""
    g = mixture_2d()
    gen = torch.Generator().manual_seed(1)
    x0, _ = g.sample(200, gen)
    t = torch.rand(200, dtype=D, generator=gen) * 0.98 + 0.01
    x, _ = path.add_noise(x0, t, gen)
    x0_hat, z_hat, score = g.posterior_mean(x, t), g.noise_mean(x, t), g.score(x, t)
    tt = t[:, None]
    assert torch.allclose((1 - tt) * x0_hat + tt * z_hat, x, atol=1e-12)          # x = (1-t) x0_hat + t z_hat
    assert torch.allclose(path.convert(score, "score", "x0", x, t), x0_hat, atol=1e-10)  # Tweedie
    for kind in path.KINDS:
        pred = g.predict(kind, x, t)
        for other in path.KINDS:
            assert torch.allclose(path.convert(pred, kind, other, x, t), g.predict(other, x, t), atol=1e-9), (kind, other)


def test_endpoints():
    g = mixture_2d()
    x = torch.randn(10, 2, dtype=D, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(g.score(x, 1.0), -x, atol=1e-12)                      # p_1 = N(0, I)
    assert torch.allclose(g.posterior_mean(x, 1.0), g.mean().expand(10, 2), atol=1e-12)  # X_1 is independent of X_0
    assert torch.allclose(g.posterior_mean(x, 0.0), x, atol=1e-12)              # nothing to denoise at t = 0
    assert torch.allclose(g.predict("velocity", x, 0.0), -x, atol=1e-12)        # E[Z - X_0 | X_0 = x] = -x


def test_at_t_is_the_law_of_x_t():
    g = mixture_2d()
    x = torch.randn(20, 2, dtype=D, generator=torch.Generator().manual_seed(3))
    for t in [0.1, 0.45, 0.8]:
        gt = g.at(t)
        assert torch.allclose(gt.log_prob(x), g.log_prob(x, t), atol=1e-12)
        assert torch.allclose(gt.score(x), g.score(x, t), atol=1e-12)
        assert torch.allclose(gt.mean(), g.mean(t)) and torch.allclose(gt.cov(), g.cov(t), atol=1e-14)


def test_moments_of_samples():
    g = mixture_2d()
    x0, labels = g.sample(200_000, torch.Generator().manual_seed(4))
    freq = torch.bincount(labels, minlength=3).to(D) / 200_000
    assert torch.allclose(freq, g.weights, atol=5e-3)
    assert torch.allclose(x0.mean(0), g.mean(), atol=3e-3)
    assert torch.allclose(torch.cov(x0.T), g.cov(), atol=1e-3)
    xt, _ = path.add_noise(x0, 0.6, torch.Generator().manual_seed(5))
    assert torch.allclose(torch.cov(xt.T), g.cov(0.6), atol=5e-3)
    assert torch.allclose(torch.cov(xt.T), (0.4) ** 2 * g.cov() + 0.36 * torch.eye(2, dtype=D), atol=5e-3)


def test_marginal_is_the_integral_over_the_other_pixel():
    """p_t(x_1) = integral of p_t(x_1, x_2) dx_2, by quadrature, and the marginal commutes with noising."""
    g = mixture_2d()
    grid = torch.linspace(-4.0, 5.0, 9001, dtype=D)
    for t in [0.0, 0.3, 0.7]:
        for x1 in [0.25, 0.6]:
            pts = torch.stack([torch.full_like(grid, x1), grid], 1)
            integral = torch.trapezoid(g.log_prob(pts, t).exp(), grid)
            assert math.isclose(float(g.marginal([0]).log_prob(torch.tensor([[x1]], dtype=D), t).exp()), float(integral), rel_tol=1e-6)
    m = g.marginal([1])
    assert torch.allclose(m.at(0.4).covs, g.at(0.4).marginal([1]).covs) and torch.allclose(m.at(0.4).means, g.at(0.4).marginal([1]).means)


def test_density_and_cdf_in_one_dimension():
    g = GaussianMixture.isotropic([0.3, 0.7], [0.2, 0.75], [0.05, 0.08])
    grid = torch.linspace(-8, 9, 34001, dtype=D)
    for t in [0.0, 0.3, 0.9]:
        p = g.log_prob(grid[:, None], t).exp()
        assert math.isclose(float(torch.trapezoid(p, grid)), 1.0, abs_tol=1e-9)
        cum = torch.cat([torch.zeros(1, dtype=D), torch.cumulative_trapezoid(p, grid)])
        assert torch.allclose(cum, g.cdf(grid, t), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture.isotropic([0.5, 0.4], [0.0, 1.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 1.0], [1.0, 1.0]]])  # singular
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"shape \(K, d, d\)"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 0.0]])
    g = mixture_2d()
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        g.score(torch.zeros(5, 3, dtype=D), 0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        g.score(torch.zeros(5, 2, dtype=D), 1.5)
    with pytest.raises(ValueError, match="one-pixel"):
        g.cdf(torch.zeros(5), 0.5)
    with pytest.raises(ValueError, match="distinct pixel indices"):
        g.marginal([0, 0])
    with pytest.raises(ValueError, match="unknown prediction kind"):
        g.predict("epsilon", torch.zeros(5, 2, dtype=D), 0.5)
