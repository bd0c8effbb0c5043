"""The path module on Gaussian data, where every posterior mean is known in closed form."""

from __future__ import annotations

import pytest
import torch

from localdiff_lib import path

D = 5


def _gaussian(seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(D, D, generator=g, dtype=torch.float64)
    sigma0 = 0.05 * a @ a.T + 0.01 * torch.eye(D, dtype=torch.float64)
    m = torch.rand(D, generator=g, dtype=torch.float64)
    return m, sigma0


def _exact(m, sigma0, x, t):
    """Exact posterior means for X_0 ~ N(m, Sigma0): returns (x0_hat, z_hat, score), batched over rows of x."""
    out = []
    for xi, ti in zip(x, t):
        sig_t = (1 - ti) ** 2 * sigma0 + ti**2 * torch.eye(D, dtype=torch.float64)
        r = torch.linalg.solve(sig_t, xi - (1 - ti) * m)
        out.append((m + (1 - ti) * sigma0 @ r, ti * r, -r))
    return [torch.stack(v) for v in zip(*out)]


def _batch(seed=1, n=7):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.96 + 0.02
    x = torch.randn(n, D, generator=g, dtype=torch.float64)
    return x, t


def test_conversions_between_exact_posterior_means():
    m, s0 = _gaussian()
    x, t = _batch()
    x0, z, score = _exact(m, s0, x, t)
    exact = {"x0": x0, "noise": z, "velocity": z - x0, "score": score}
    for src in path.KINDS:
        for dst in path.KINDS:
            got = path.convert(exact[src], src, dst, x, t)
            assert torch.allclose(got, exact[dst], atol=1e-10), (src, dst)
    assert torch.allclose(path.to_velocity(z, "noise", x, t), z - x0, atol=1e-12)
    assert torch.allclose(path.to_x0(score, "score", x, t), x0, atol=1e-12)
    assert torch.allclose(path.to_noise(x0, "x0", x, t), z, atol=1e-12)
    assert torch.allclose(path.to_score(z - x0, "velocity", x, t), score, atol=1e-10)


def test_posterior_means_reassemble_x():
    m, s0 = _gaussian()
    x, t = _batch()
    x0, z, _ = _exact(m, s0, x, t)
    assert torch.allclose(path.interpolate(x0, z, t), x, atol=1e-12)
    x0b, zb = path.to_pair(z - x0, "velocity", x, t)
    assert torch.allclose(x0b, x0, atol=1e-12) and torch.allclose(zb, z, atol=1e-12)


@pytest.mark.parametrize("kind", ["velocity", "noise", "x0"])
def test_regression_on_targets_recovers_the_posterior_mean(kind):
    """Least squares of path.target on (x_t, 1) estimates E[target | x_t], linear for Gaussian data."""
    m, s0 = _gaussian()
    t = 0.4
    g = torch.Generator().manual_seed(3)
    n = 200_000
    x0 = m + torch.randn(n, D, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s0).T
    x_t, z = path.add_noise(x0, t, generator=g)
    y = path.target(kind, x0, z, t)
    design = torch.cat([x_t, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    coef = torch.linalg.lstsq(design, y).solution
    probe = x_t[:20]  # typical points of p_t (far outside the cloud the fit extrapolates)
    fitted = torch.cat([probe, torch.ones(len(probe), 1, dtype=torch.float64)], 1) @ coef
    x0e, ze, _ = _exact(m, s0, probe, torch.full((len(probe),), t, dtype=torch.float64))
    ref = {"velocity": ze - x0e, "noise": ze, "x0": x0e}[kind]
    assert torch.allclose(fitted, ref, atol=0.03), (fitted - ref).abs().max()  # Monte Carlo error about 0.005 per coefficient


def test_add_noise_is_seeded_and_interpolates():
    x0 = torch.rand(4, 1, 3, 3)
    a, za = path.add_noise(x0, 0.3, generator=torch.Generator().manual_seed(0))
    b, zb = path.add_noise(x0, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and torch.equal(za, zb)
    assert torch.allclose(a, 0.7 * x0 + 0.3 * za)
    assert torch.equal(path.interpolate(x0, za, 0.0), x0) and torch.equal(path.interpolate(x0, za, 1.0), za)


def test_velocity_is_finite_at_both_ends():
    x0, z = torch.rand(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    for t in (0.0, 1.0):
        x = path.interpolate(x0, z, t)
        v = path.target("velocity", x0, z, t)
        x0b, zb = path.to_pair(v, "velocity", x, t)
        assert torch.allclose(x0b, x0, atol=1e-6) and torch.allclose(zb, z, atol=1e-6)


def test_sde_coefficients_reproduce_the_path_marginals():
    """d/dt of the mean (1-t) m and the variance (1-t)^2 s^2 + t^2 match f and g^2 of the forward SDE."""
    m, s2 = 0.3, 0.2
    for t in (0.0, 0.2, 0.5, 0.9):
        f, g2 = path.sde_coefficients(t)
        mean, var = (1 - t) * m, (1 - t) ** 2 * s2 + t**2
        assert f * mean == pytest.approx(-m)
        assert 2 * f * var + g2 == pytest.approx(-2 * (1 - t) * s2 + 2 * t)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        path.sde_coefficients(1.0)


def test_check_t_errors():
    assert path.check_t(0.5, 3).shape == (3,)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        path.check_t(torch.tensor([0.2, 1.5]), 2)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        path.check_t(torch.tensor([0.2, 0.5]), 3)
    with pytest.raises(ValueError, match="unknown prediction kind"):
        path.convert(torch.zeros(1), "eps", "x0", torch.zeros(1), 0.5)


def test_check_t_keeps_python_numbers_exact():
    """A Python float must not pass through float32 (0.3 would become 0.30000001)."""
    t = path.check_t(0.3)
    assert t.dtype == torch.float64 and float(t) == 0.3
    assert path.check_t(torch.tensor([0.25], dtype=torch.float32)).dtype == torch.float32
