"""Exact information-theoretic ground truth (localdiff_lib.info): closed forms, invariants and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from localdiff_lib import info


def _random_cov(d, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((d, d))
    return M @ M.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------- Gaussian CMI


def test_gaussian_mi_bivariate_closed_form():
    # I = -1/2 log(1 - rho^2) for a standard bivariate Gaussian with correlation rho
    for rho in (0.0, 0.3, -0.9, 0.999):
        cov = np.array([[1.0, rho], [rho, 1.0]])
        assert info.gaussian_mi(cov, [0], [1]) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-14)


def test_gaussian_cmi_matches_logdet_formula_and_chain_rule():
    S = _random_cov(9, seed=1)
    A, B, C = [0, 4], [1, 2, 7], [3, 5, 6, 8]
    cmi = info.gaussian_cmi(S, A, B, C)
    assert cmi > 0
    assert cmi == pytest.approx(info.gaussian_cmi_logdet(S, A, B, C), rel=1e-10)
    # chain rule I(A:C|B) = I(A:BC) - I(A:B)
    assert cmi == pytest.approx(info.gaussian_mi(S, A, B + C) - info.gaussian_mi(S, A, B), rel=1e-10)
    # symmetric in A and C, invariant to the order of indices and to torch input
    assert info.gaussian_cmi(S, C, B, A) == pytest.approx(cmi, rel=1e-12)
    assert info.gaussian_cmi(torch.tensor(S, dtype=torch.float32), A[::-1], B, C[::-1]) == pytest.approx(cmi, rel=1e-5)


def test_gaussian_cmi_invariant_to_rescaling_pixels():
    S = _random_cov(6, seed=2)
    D = np.diag([0.1, 3.0, 1.0, 7.0, 0.5, 2.0])
    A, B, C = [0], [1, 2], [3, 4, 5]
    assert info.gaussian_cmi(D @ S @ D, A, B, C) == pytest.approx(info.gaussian_cmi(S, A, B, C), rel=1e-10)


def test_gaussian_cmi_errors():
    S = _random_cov(5)
    with pytest.raises(ValueError, match="overlap"):
        info.gaussian_cmi(S, [0], [0, 1], [2])
    with pytest.raises(ValueError, match="outside"):
        info.gaussian_cmi(S, [0], [1], [5])
    with pytest.raises(ValueError, match="non-empty"):
        info.gaussian_cmi(S, [0], [1], [])
    with pytest.raises(ValueError, match="positive definite"):
        info.gaussian_cmi(np.ones((3, 3)), [0], [1], [2])
    with pytest.raises(ValueError, match="symmetric"):
        info.gaussian_cmi(S + np.triu(np.ones((5, 5)), 1), [0], [1], [2])
    with pytest.raises(ValueError, match="square"):
        info.gaussian_cmi(np.ones((3, 2)), [0], [1], [2])
    with pytest.raises(TypeError, match="integer"):
        info.gaussian_cmi(S, [0.5], [1], [2])


def test_path_covariance():
    S = _random_cov(4)
    assert np.allclose(info.path_covariance(S, 0.0), S)
    assert np.allclose(info.path_covariance(S, 1.0), np.eye(4))
    St = info.path_covariance(torch.tensor(S), 0.3)
    assert torch.is_tensor(St) and np.allclose(St.numpy(), 0.49 * S + 0.09 * np.eye(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        info.path_covariance(S, 1.5)


# ---------------------------------------------------------------- geometry


def test_regions_square_annulus():
    A, B, C = info.regions((27, 27), None, 1)
    assert A == [13 * 27 + 13]
    assert len(B) == 8 and len(C) == 27 * 27 - 9
    assert sorted(A + B + C) == list(range(27 * 27))
    for r in (0, 3, 12):
        A, B, C = info.regions((27, 27), (13, 13), r)
        assert len(B) == (2 * r + 1) ** 2 - 1
        rows, cols = np.divmod(np.array(B, dtype=int), 27)
        if r:
            assert max(np.abs(rows - 13).max(), np.abs(cols - 13).max()) == r
    A, B, C = info.regions((9,), 4, 2)
    assert (A, B, C) == ([4], [2, 3, 5, 6], [0, 1, 7, 8])


def test_regions_errors():
    with pytest.raises(ValueError, match="does not fit"):
        info.regions((27, 27), (2, 13), 3)
    with pytest.raises(ValueError, match="non-negative integer"):
        info.regions((27, 27), None, -1)
    with pytest.raises(ValueError, match="outside"):
        info.regions((5, 5), (7, 1), 0)


# ---------------------------------------------------------------- GMRF


@pytest.mark.parametrize("shape", [(15,), (7, 7)])
def test_gmrf_cmi_zero_at_t0_positive_after_noise(shape):
    Q = info.gmrf_precision(shape, 0.7)
    deg = 2 * len(shape)
    assert np.allclose(np.diag(Q), deg + 0.49)
    assert np.all(np.linalg.eigvalsh(Q) > 0)
    cov = info.gmrf_covariance(shape, 0.7)
    assert np.allclose(cov @ Q, np.eye(Q.shape[0]), atol=1e-10)
    A, B, C = info.regions(shape, None, 1)
    assert info.gaussian_cmi(cov, A, B, C) < 1e-25  # exactly 0 up to round-off: B separates A from C
    assert info.gaussian_mi(cov, A, C) > 1e-3  # but A and C are dependent
    vals = [info.gaussian_cmi(info.path_covariance(cov, t), A, B, C) for t in (0.2, 0.5, 0.8)]
    assert min(vals) > 1e-5
    # and vanishes again at t = 1 (pure noise)
    assert info.gaussian_cmi(info.path_covariance(cov, 1.0), A, B, C) == pytest.approx(0.0, abs=1e-15)


def test_gmrf_periodic_and_errors():
    Q = info.gmrf_precision((6,), 1.0, periodic=True)
    assert Q[0, 5] == -1.0 and np.allclose(Q.sum(1), 1.0)
    with pytest.raises(ValueError, match="kappa"):
        info.gmrf_precision((5,), 0.0)


# ---------------------------------------------------------------- AR(1)


def test_ar1_noiseless_is_markov():
    cov = info.ar1_covariance(41, 0.9)
    assert cov[0, 3] == pytest.approx(0.9**3)
    for r in (1, 2, 5):
        assert info.gaussian_cmi(cov, *info.regions((41,), None, r)) < 1e-25
    assert info.ar1_markov_length(0.9, 0.0) == 0.0


@pytest.mark.parametrize("rho,t", [(0.8, 0.3), (0.8, 0.5), (0.95, 0.7), (-0.6, 0.4)])
def test_ar1_exact_cmi_decays_at_the_closed_form_rate(rho, t):
    # fit well past the transient (r >= 4 xi) on a chain long enough that C's far ends do not matter
    xi = info.ar1_markov_length(rho, t)
    r = np.arange(int(4 * xi) + 2, int(4 * xi) + 14)
    n = 2 * int(r[-1]) + 201
    cov = info.ar1_covariance(n, rho, t=t)
    cmi = np.array([info.gaussian_cmi(cov, *info.regions((n,), None, int(k))) for k in r])
    assert np.all(cmi > 0)
    slope = np.polyfit(r, np.log(cmi), 1)[0]
    assert -1.0 / slope == pytest.approx(xi, rel=2e-3)
    # the successive ratio converges to lambda^2 exactly
    assert cmi[-1] / cmi[-2] == pytest.approx(info.ar1_decay_factor(rho, t) ** 2, rel=1e-4)


def test_ar1_markov_length_monotone_in_noise():
    xs = [info.ar1_markov_length(0.9, t) for t in (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)]
    assert all(a < b for a, b in zip(xs, xs[1:]))
    assert xs[-1] == pytest.approx(-1 / (2 * math.log(0.9)))
    with pytest.raises(ValueError, match="rho"):
        info.ar1_covariance(5, 1.0)


# ---------------------------------------------------------------- mixture


def test_mixture_entropy_limits_and_cmi_identity():
    assert info.mixture_class_entropy(0, 0.3) == pytest.approx(math.log(2))
    assert info.mixture_class_entropy(50, 1.0) == pytest.approx(math.log(2))
    assert info.mixture_class_entropy(50, 0.0) < 1e-10
    # I(A:C) with B empty equals I(A:s) - I(A:s|C) from the entropies
    H = lambda k: float(info.mixture_class_entropy(k, 0.6))  # noqa: E731
    assert info.mixture_mi(20, 0.6) == pytest.approx(math.log(2) - H(1) - H(19) + H(20), abs=1e-14)
    assert info.mixture_cmi(20, 1.0) == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(ValueError, match="n_c"):
        info.mixture_cmi(3, 0.5, n_a=1, n_b=2)


def test_mixture_cmi_matches_monte_carlo_with_exact_likelihoods():
    # Independent check of the sufficient-statistic reduction and the quadrature: average the exact pointwise
    # log-density ratio over samples. 3 standard errors + 1e-3 quadrature slack.
    n, n_a, n_b = 12, 1, 2
    for t in (0.3, 0.55):
        x, _ = info.mixture_sample(n, t, 40000, seed=3)
        A, B, C = x[:, :n_a], x[:, n_a : n_a + n_b], x[:, n_a + n_b :]
        lp = lambda z: info.mixture_log_density(z, t)  # noqa: E731
        terms = lp(x) + lp(B) - lp(np.hstack([A, B])) - lp(np.hstack([B, C]))
        est, se = terms.mean(), terms.std() / math.sqrt(len(terms))
        exact = info.mixture_cmi(n, t, n_a=n_a, n_b=n_b)
        assert exact > 0.01
        assert abs(est - exact) < 3 * se + 1e-3, (t, est, se, exact)


def test_mixture_transition_sharpens_with_n():
    ts = np.linspace(0.0, 1.0, 4001)

    def width(n):
        H = np.array([float(info.mixture_class_entropy(n, t)) for t in ts]) / math.log(2)
        return ts[np.argmax(H > 0.9)] - ts[np.argmax(H > 0.1)]

    w = [width(n) for n in (16, 64, 256, 1024)]
    # narrows monotonically, tending to a factor 2 per factor 4 in n (the n^{-1/2} law); measured 0.33, 0.24, 0.15, 0.085
    assert all(a > 1.3 * b for a, b in zip(w, w[1:])) and w[0] > 3.5 * w[-1], w
    tc = info.mixture_critical_time(256)
    assert 256 * info.mixture_snr(tc) == pytest.approx(1.0)
    # the fixed-buffer CMI is a hump: ~0 at t = 0, positive in the middle, 0 at t = 1
    c = [info.mixture_cmi(256, t) for t in (0.0, 0.4, 1.0)]
    assert c[0] < 1e-4 and c[1] > 0.05 and c[2] == pytest.approx(0.0, abs=1e-14)


# ---------------------------------------------------------------- Ising


def test_ising_enumeration():
    S = info.ising_states((2, 2))
    assert S.shape == (16, 4) and set(np.unique(S)) == {-1, 1}
    assert len({tuple(s) for s in S}) == 16
    p = info.ising_distribution((2, 2), 0.5)
    assert p.sum() == pytest.approx(1.0)
    # aligned states have energy -4 bonds on the open 2x2 square: p(all up) / p(checkerboard) = exp(8 beta)
    i_up = int(np.where((S == 1).all(1))[0][0])
    i_cb = int(np.where((S == np.array([1, -1, -1, 1])).all(1))[0][0])
    assert p[i_up] / p[i_cb] == pytest.approx(math.exp(8 * 0.5))
    with pytest.raises(ValueError, match="16 spins"):
        info.ising_states((5, 5))


def test_ising_chain_mi_closed_form():
    # open chain of 2 spins: I(s1:s2) = log 2 - h_b((1 + tanh beta)/2)
    beta = 0.7
    q = (1 + math.tanh(beta)) / 2
    hb = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    assert info.ising_cmi((2,), beta, [0], [], [1]) == pytest.approx(math.log(2) - hb, abs=1e-12)


def test_ising_cmi_zero_for_separating_buffer_and_noisy_positive():
    shape = (3, 5)  # 2-D lattice, A the centre pixel, B its 3x3 square annulus: exactly 0 at t = 0
    A, B, C = info.regions(shape, (1, 2), 1)
    assert abs(info.ising_cmi(shape, 0.6, A, B, C)) < 1e-12
    assert info.ising_cmi(shape, 0.6, A, [], C) > 0.01
    chain = (7,)  # a chain keeps the Monte Carlo cheap (2^7 states)
    A, B, C = info.regions(chain, None, 1)
    assert info.ising_noisy_cmi(chain, 1.2, 0.0, A, B, C)[0] == pytest.approx(0.0, abs=1e-12)
    est, se = info.ising_noisy_cmi(chain, 1.2, 0.3, A, B, C, n_samples=4000, seed=0)
    assert est > 5 * se > 0  # noising the buffer creates CMI (measured 0.037 +- 0.004)
    assert info.ising_noisy_cmi(chain, 1.2, 1.0, A, B, C) == (0.0, 0.0)


def test_ising_noisy_mi_at_small_t_matches_discrete():
    # at small t the pixels reveal the spins almost surely, so I_t(A:C) -> the discrete I(A:C) (t = 0.05: the
    # Gaussian overlap of the two pixel values 0 and 0.95 is ~erfc(9.5/sqrt 2) ~ 1e-21).
    shape = (2, 3)
    A, C = [0], [1, 2, 3, 4, 5]
    exact = info.ising_cmi(shape, 0.5, A, [], C)
    est, se = info.ising_noisy_cmi(shape, 0.5, 0.05, A, [], C, n_samples=2000, seed=1)
    assert abs(est - exact) < 4 * se + 1e-9


# ---------------------------------------------------------------- Gaussian surrogate


def test_gaussian_surrogate_and_map_on_a_gmrf_sample():
    # Images drawn from a GMRF: the surrogate map must be ~0 at t = 0 (B separates), positive after noise, and agree
    # with the exact CMI of the true covariance up to sampling error of the covariance.
    rng = np.random.default_rng(0)
    side = 9
    cov = info.gmrf_covariance((side, side), 0.8)
    L = np.linalg.cholesky(cov)
    x = (rng.standard_normal((20000, side * side)) @ L.T).reshape(-1, 1, side, side)
    mean, S = info.gaussian_surrogate(torch.tensor(x))
    assert mean.shape == (81,) and S.shape == (81, 81)
    assert np.abs(S - cov).max() < 0.03
    m = info.surrogate_cmi_map(x, [0.0, 0.5], [1, 2], crop=9, dequantize=0.0)
    assert m.cmi.shape == (2, 2)
    A, B, C = info.regions((9, 9), None, 1)
    # plug-in bias of a Gaussian CMI from N samples is about |A| |C| / (2N) = 72 / 40000 = 0.0018 nats
    assert m.cmi[0, 0] < 4 * 72 / (2 * 20000)
    exact = info.gaussian_cmi(info.path_covariance(cov, 0.5), A, B, C)
    assert m.cmi[1, 0] == pytest.approx(exact, rel=0.2)
    assert np.allclose(m.mi_a_bc, m.mi_a_b[:, 0] + m.cmi[:, 0])  # chain rule


def test_surrogate_map_constant_border_pixels():
    rng = np.random.default_rng(1)
    x = np.zeros((500, 1, 10, 10))
    x[:, :, 2:8, 2:8] = rng.random((500, 1, 6, 6))
    m = info.surrogate_cmi_map(x, [0.0, 0.3], [1, 2], crop=9)  # dequantization jitter keeps t = 0 finite
    assert np.all(np.isfinite(m.cmi)) and np.all(m.cmi > -1e-12)
    assert m.peak[2] == m.cmi.max()
    with pytest.raises(ValueError, match="positive definite"):
        info.surrogate_cmi_map(x, [0.0], [1], crop=9, dequantize=0.0)
    assert np.isfinite(info.surrogate_cmi_map(x, [0.3], [1], crop=9, dequantize=0.0).cmi).all()
    with pytest.raises(ValueError, match="crop"):
        info.surrogate_cmi_map(x, [0.0], [1], crop=11)


def test_surrogate_map_agrees_with_gaussian_cmi():
    rng = np.random.default_rng(2)
    x = rng.random((300, 7, 7)) + rng.random((300, 1, 1))  # correlated pixels
    m = info.surrogate_cmi_map(x, [0.0, 0.4], [1, 2], crop=7)
    _, S = info.gaussian_surrogate(x)
    S = S + np.eye(49) / (12 * 255**2)
    for i, t in enumerate([0.0, 0.4]):
        St = info.path_covariance(S, t)
        for j, r in enumerate([1, 2]):
            A, B, C = info.regions((7, 7), None, r)
            assert m.cmi[i, j] == pytest.approx(info.gaussian_cmi(St, A, B, C), rel=1e-8)
            assert m.mi_a_b[i, j] == pytest.approx(info.gaussian_mi(St, A, B), rel=1e-8)
        assert m.mi_a_bc[i] == pytest.approx(info.gaussian_mi(St, A, B + C), rel=1e-8)
