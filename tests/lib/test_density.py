"""The mixture-density CMI estimator (localdiff_lib.density) against exact answers."""

import math

import numpy as np
import pytest
import torch

from localdiff_lib import density, info
from localdiff_lib.estimators import CriticBank


def _gaussian_sampler(cov):
    L = np.linalg.cholesky(cov)

    def sample(n, rng):
        return rng.standard_normal((n, cov.shape[0])) @ L.T

    return sample


def test_density_cmi_recovers_exact_gaussian_cmi(one_thread):
    # the noisy AR(1) chain of chapter "CMI and the Markov length" (11 sites, rho = 0.95, t = 0.4, A the centre,
    # B its two neighbours): I(A:C|B) = 0.0758 exactly, the size of what the MNIST map measures
    cov = info.ar1_covariance(11, 0.95, t=0.4)
    A, B, C = info.regions((11,), None, 1)
    exact = info.gaussian_cmi(cov, A, B, C)
    exact_bc = info.gaussian_mi(cov, A, B + C)
    est = density.estimate_cmi(_gaussian_sampler(cov), A, B, C, seeds=3, steps=800, batch=256,
                               hidden=32, components=2, seed=0)
    # A Gaussian conditional is one mixture component with a linear mean: the model family contains the truth.
    # Measured on this problem (seeds 0 and 1): errors -0.008 and -0.003 nats, half-widths 0.017 and 0.006; so the
    # truth must lie within the CI plus 0.01 nats, and the CI must be narrow enough to exclude 0.
    assert abs(est.value - exact) < est.half_width + 0.01, (est, exact)
    assert est.ci[0] > 0, est
    assert abs(est.parts["I(A:BC)"].value - exact_bc) < est.parts["I(A:BC)"].half_width + 0.02, (est.parts["I(A:BC)"], exact_bc)


def test_density_cmi_of_independent_context_is_zero(one_thread):
    cov = np.eye(4)
    cov[0, 1] = cov[1, 0] = 0.6  # A depends on B only; C independent of everything
    est = density.estimate_cmi(_gaussian_sampler(cov), [0], [1], [2, 3], seeds=3, steps=600, batch=256, hidden=32,
                               components=2, seed=1)
    assert abs(est.value) < 0.01, est
    assert abs(est.parts["I(A:B)"].value - info.gaussian_mi(cov, [0], [1])) < 0.02


def test_discrete_a_gives_the_discrete_mutual_information(one_thread):
    # A uniform on {0, 1}; C = A flipped with probability 0.1, plus a little Gaussian noise.
    # I(A:C) = log 2 - H_b(0.1) in nats (the noise on C is tiny and does not change it to 4 digits).
    exact = math.log(2) + 0.1 * math.log(0.1) + 0.9 * math.log(0.9)

    def sample(n, rng):
        a = rng.integers(0, 2, n).astype(float)
        c = np.where(rng.random(n) < 0.1, 1 - a, a) + 0.01 * rng.standard_normal(n)
        return np.stack([a, c], 1)

    est = density.estimate_mi(sample, [0], [1], seeds=3, steps=600, batch=256, hidden=32, components=2,
                              bin_width=1.0, seed=2)
    assert abs(est.value - exact) < 0.02, (est, exact)


def test_discrete_bins_are_probabilities():
    # with bin_width w the model's probabilities of the grid points {0, w, ..., 1} sum to 1 for any context
    D, w = 3, 0.25
    masks = torch.tensor([[[0.0, 1.0, 1.0]]])
    bank = density.DensityBank(masks, [0], hidden=8, components=3, bin_width=[w], generator=torch.Generator().manual_seed(0))
    ctx = torch.randn(1, 1, D)
    grid = torch.arange(0, 1 + 1e-9, w)
    x = ctx.repeat(1, len(grid), 1)
    x[0, :, 0] = grid
    with torch.no_grad():
        p = bank.log_prob(x).exp().sum()
    assert abs(float(p) - 1.0) < 1e-5


def test_density_bank_reuses_the_critic_context_network():
    masks = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]]])
    gen = torch.Generator().manual_seed(0)
    bank = density.DensityBank(masks, [0], hidden=8, components=2, generator=gen)
    assert isinstance(bank, CriticBank)
    assert not hasattr(bank, "Ua")  # no A-network: A is modelled, not embedded
    x = torch.randn(1, 5, 3)
    x2 = x.clone()
    x2[0, :, 2] += 1.0  # a coordinate outside the first model's context
    with torch.no_grad():
        lp, lp2 = bank.log_prob(x), bank.log_prob(x2)
    assert torch.equal(lp[0], lp2[0]) and not torch.equal(lp[1], lp2[1])


def test_errors_are_clear():
    masks = torch.zeros(1, 1, 3)
    with pytest.raises(ValueError, match="scalar A"):
        density.DensityBank(masks, [0, 1])
    with pytest.raises(ValueError, match="bin_width"):
        density.DensityBank(masks, [0], bin_width=[0.1, 0.2])

    def noisy(n, rng):
        return rng.standard_normal((n, 2))

    with pytest.raises(ValueError, match="not on the grid"):
        density.estimate_mi(noisy, [0], [1], seeds=2, steps=2, batch=8, eval_batches=2, bin_width=1 / 255)
    with pytest.raises(ValueError, match="overlap"):
        density.estimate_cmi(noisy, [0], [1], [1], seeds=2, steps=2)
