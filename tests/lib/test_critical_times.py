"""Critical times from data statistics: exact values on constructed data sets, limits of the posterior curves."""

import math

import numpy as np
import pytest
import torch

from localdiff_lib import critical_times as ct


def test_speciation_time_exact_values():
    assert ct.speciation_time(1.0) == pytest.approx(0.5, abs=1e-15)
    assert ct.speciation_time(4.0) == pytest.approx(2 / 3, abs=1e-15)
    lam = np.array([0.01, 0.5, 3.0, 100.0])
    t = ct.speciation_time(lam)
    assert np.allclose((1 - t) ** 2 * lam, t**2, rtol=1e-12)          # signal variance = noise variance
    assert np.all(np.diff(t) > 0)                                       # more spread, later speciation
    for bad in (0.0, -1.0, float("nan"), []):
        with pytest.raises(ValueError, match="positive"):
            ct.speciation_time(bad)


def test_covariance_and_class_mean_spectra_of_a_constructed_data_set():
    # two classes with means +-m e (e a unit vector in 4x4 pixel space), plus +-s noise along an orthogonal f
    e = torch.zeros(16, dtype=torch.float64); e[0] = 1.0
    f = torch.zeros(16, dtype=torch.float64); f[5] = 1.0
    m, s = 0.3, 0.1
    imgs, labels = [], []
    for c, sign in ((0, -1.0), (1, 1.0)):
        for u in (-1.0, 1.0):
            imgs.append(0.5 + sign * m * e + u * s * f)
            labels.append(c)
    x = torch.stack(imgs).reshape(4, 1, 4, 4)
    y = torch.tensor(labels)
    between = ct.class_mean_spectrum(x, y)
    assert between[0] == pytest.approx(m**2, rel=1e-12)                  # sum_c pi_c (mu_c - mu)^2 along e
    assert np.allclose(between[1:], 0.0, atol=1e-15)
    total = ct.covariance_spectrum(x)                                    # unbiased: factor N / (N - 1) = 4 / 3
    assert total[0] == pytest.approx(m**2 * 4 / 3, rel=1e-12)
    assert total[1] == pytest.approx(s**2 * 4 / 3, rel=1e-12)
    assert np.allclose(total[2:], 0.0, atol=1e-14)
    with pytest.raises(ValueError, match="at least two classes"):
        ct.class_mean_spectrum(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        ct.class_mean_spectrum(x, y[:3])


def test_posterior_curves_limits():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    c = ct.posterior_curves(x, [0.0, 0.05, 1.0], labels=y, n_probe=20, seed=1)
    assert c.entropy[0] == 0.0 and c.true_weight[0] == 1.0              # t = 0: the source is known exactly
    assert c.entropy[1] < 1e-6 and c.true_weight[1] > 1 - 1e-6          # distinct images, tiny noise
    assert c.entropy[2] == pytest.approx(math.log(6), abs=1e-12)        # t = 1: uniform over the 6 images
    assert c.true_weight[2] == pytest.approx(1 / 6, abs=1e-12)
    pc = np.array([3, 2, 1]) / 6
    assert c.class_entropy[2] == pytest.approx(-(pc * np.log(pc)).sum(), abs=1e-12)
    assert c.mutual_information[2] == pytest.approx(0.0, abs=1e-12)
    assert c.mutual_information[0] == pytest.approx(math.log(6), abs=1e-12)
    one = ct.posterior_curves(x[:1], [0.3, 0.9], n_probe=3)
    assert np.all(one.entropy == 0.0) and np.all(one.true_weight == 1.0) and one.class_entropy is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ct.posterior_curves(x, [0.5, 1.5])
    with pytest.raises(ValueError, match="6 images but 2 labels"):
        ct.posterior_curves(x, [0.5], labels=y[:2])


def test_crossing_time():
    t = [0.1, 0.2, 0.3, 0.4]
    assert ct.crossing_time(t, [0.0, 0.2, 0.6, 1.0], 0.4) == pytest.approx(0.25, abs=1e-15)
    assert ct.crossing_time(t, [1.0, 0.8, 0.2, 0.0], 0.5) == pytest.approx(0.25, abs=1e-15)   # downward too
    assert ct.crossing_time(t, [0.5, 0.8, 0.2, 0.0], 0.5) == 0.1
    assert math.isnan(ct.crossing_time(t, [0.0, 0.1, 0.2, 0.3], 0.5))
    with pytest.raises(ValueError, match="increasing"):
        ct.crossing_time([0.2, 0.1], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="same length"):
        ct.crossing_time([0.1, 0.2], [0.0], 0.5)
