"""Markov-length fits (localdiff_lib.markov): exact on the AR(1) chain, calibrated on noisy synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from localdiff_lib import info, markov


@pytest.mark.parametrize("method", ["log", "linear"])
def test_fit_is_exact_on_the_noisy_ar1_chain(method):
    rho, t = 0.9, 0.6
    xi = info.ar1_markov_length(rho, t)
    r = np.arange(int(4 * xi) + 2, int(4 * xi) + 12)
    n = 2 * int(r[-1]) + 301
    cov = info.ar1_covariance(n, rho, t=t)
    cmi = [info.gaussian_cmi(cov, *info.regions((n,), None, int(k))) for k in r]
    fit = markov.fit_markov_length(r, cmi, method=method)
    assert fit.xi == pytest.approx(xi, rel=2e-3)
    assert fit.predict(r) == pytest.approx(np.array(cmi), rel=2e-2)


def test_fit_recovers_xi_from_noisy_values_within_its_error():
    # gamma e^{-r/xi} + Gaussian noise of known sd: the linear fit's xi must fall within 3 of its standard errors
    # of the truth in (nearly) every replicate, and its error bar must be honest on average (z-scores ~ N(0, 1)).
    rng = np.random.default_rng(0)
    r = np.arange(1, 13)
    gamma, xi = 0.2, 3.0
    sd = 0.004 * np.ones_like(r, dtype=float)
    z = []
    for _ in range(40):
        y = gamma * np.exp(-r / xi) + sd * rng.standard_normal(r.size)  # some values go negative: kept
        fit = markov.fit_markov_length(r, y, sd, method="linear")
        z.append((fit.xi - xi) / fit.xi_se)
    z = np.array(z)
    assert np.mean(np.abs(z) < 3) >= 0.95
    assert 0.6 < z.std() < 1.5


def test_fit_errors_and_no_decay():
    with pytest.raises(ValueError, match="method='linear'"):
        markov.fit_markov_length([1, 2, 3], [0.1, -0.01, 0.02])
    with pytest.raises(ValueError, match="at least 2"):
        markov.fit_markov_length([1, 2, 3], [0.1, 0.05, 0.02], r_min=3)
    with pytest.raises(ValueError, match="same length"):
        markov.fit_markov_length([1, 2], [0.1, 0.05, 0.02])
    fit = markov.fit_markov_length([1, 2, 3], [0.1, 0.2, 0.4])
    assert math.isinf(fit.xi)


def test_markov_lengths_of_surrogate_map():
    rng = np.random.default_rng(1)
    side = 11
    cov = info.gmrf_covariance((side, side), 0.6)
    x = rng.standard_normal((4000, side * side)) @ np.linalg.cholesky(cov).T
    m = info.surrogate_cmi_map(x, [0.3, 0.6], [1, 2, 3, 4], crop=side)
    fits = markov.markov_lengths_of_map(m, method="log")
    assert len(fits) == 2 and all(0 < f.xi < 5 for f in fits)
