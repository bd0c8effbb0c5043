"""The CMI map (localdiff_lib.cmi_map): structure, errors, and a validation on a model with a known map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from localdiff_lib import cmi_map, info


pytestmark = pytest.mark.usefixtures("one_thread")


MU, SIGMA0, SIDE = 0.2, 0.05, 7


def _mixture_images(n, seed):
    # the two-class mixture of localdiff_lib.info in [0, 1]: pixels 0.5 + s mu + sigma0 eps (|s mu + sigma0 eps| < 0.5
    # except with probability ~1e-9: 6 sd), i.i.d. given the class s, so its exact map is info.mixture_cmi
    rng = np.random.default_rng(seed)
    s = rng.choice([-1.0, 1.0], size=(n, 1, 1, 1))
    x = 0.5 + s * MU + SIGMA0 * rng.standard_normal((n, 1, SIDE, SIDE))
    assert x.min() >= 0 and x.max() <= 1
    return torch.tensor(x, dtype=torch.float32)


@pytest.mark.slow
def test_map_of_the_mixture_matches_its_exact_map():
    # A the centre of a 7x7 image, B radius 1 (8 pixels), C the other 40; the class is the only dependence.
    # Tolerance: CI across 3 seeds + 0.05 nats for the critics' training gap at this budget (lower bounds sit below
    # the truth). At t = 0 one pixel reveals the class and I(A:BC) = log 2 exactly; a separable critic reaches it only
    # as its scores diverge (DV = k - log cosh k for scores +-k), so there we ask only for > 0.5 nats.
    t = [0.0, 0.3, 0.6, 1.0]
    m = cmi_map.neural_cmi_map(_mixture_images(20000, 0), _mixture_images(5000, 1), t, [1], crop=SIDE, seeds=3,
                               steps=500, batch=128, hidden=32, features=16, lr=3e-3, eval_batches=10)
    n = SIDE * SIDE
    for i, tt in enumerate(t):
        exact_bc = info.mixture_mi(n, tt, mu=MU, sigma0=SIGMA0)
        exact_cmi = info.mixture_cmi(n, tt, n_b=8, mu=MU, sigma0=SIGMA0)
        if tt > 0:
            assert abs(m.mi_a_bc[i] - exact_bc) < m.mi_a_bc_hw[i] + 0.05, (tt, m.mi_a_bc[i], exact_bc)
        assert abs(m.cmi[i, 0] - exact_cmi) < m.cmi_hw[i, 0] + 0.05, (tt, m.cmi[i, 0], exact_cmi)
    assert m.mi_a_bc[0] > 0.5


def test_map_structure():
    t = [0.0, 0.5]
    m = cmi_map.neural_cmi_map(_mixture_images(500, 0), _mixture_images(200, 1), t, [1, 2], crop=SIDE, seeds=2,
                               steps=5, batch=32, hidden=8, features=4, eval_batches=2)
    assert m.per_seed_cmi.shape == (2, 2, 2) and m.cmi_hw.shape == (2, 2) and m.mi_a_b.shape == (2, 2)
    assert m.settings["n_critics"] == 2 * 2 * 3
    assert np.allclose(m.cmi, m.mi_a_bc[:, None] - m.mi_a_b)  # chain rule, seed by seed then averaged
    assert np.allclose(m.per_seed_cmi.mean(0), m.cmi)
    t_peak, r_peak, value, hw = m.peak
    assert value == m.cmi.max()
    assert "I(A:BC)" in m.table()


def test_map_errors():
    x = _mixture_images(50, 0)
    with pytest.raises(ValueError, match="does not fit"):
        cmi_map.neural_cmi_map(x, x, [0.5], [4], crop=SIDE, steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cmi_map.neural_cmi_map(x * 3, x, [0.5], [1], crop=SIDE, steps=1)
    with pytest.raises(ValueError, match="seeds"):
        cmi_map.neural_cmi_map(x, x, [0.5], [1], crop=SIDE, seeds=1, steps=1)
    with pytest.raises(ValueError, match="t_values"):
        cmi_map.neural_cmi_map(x, x, [1.5], [1], crop=SIDE, steps=1)


def test_default_grid_and_settings():
    g = cmi_map.default_t_grid()
    assert set(cmi_map.PAPER_T) <= set(np.round(g, 2)) and len(g) > 11
    s = cmi_map.map_settings()
    assert {"t_values", "radii", "seeds", "steps", "batch", "hidden"} <= set(s)
    assert 0.3 in s["t_values"] and s["seeds"] >= 2


def test_density_map_of_the_mixture_matches_its_exact_map():
    # the same model with the mixture-density estimator (continuous pixels: pixel_levels=None). Given the class the
    # pixel is Gaussian, so q(a | context) = a two-component mixture is in the model family. At t > 0 the measured
    # errors were below 0.01 nats (half-widths 0.01-0.03): the truth must lie within the CI + 0.02 nats. At t = 0 the
    # class is a step function of the context that a briefly trained MLP still treats almost linearly; the best
    # linear predictor of A from the mean of k context pixels leaves a residual variance sigma0^2 + mu^2 v / (mu^2 + v),
    # v = sigma0^2 / k, instead of sigma0^2: an excess entropy of 0.058 nats from k = 8 pixels (B) and 0.010 from k = 48 (BC), a bias of +0.048 on the CMI (measured +0.043 to
    # +0.048): there the tolerance is the CI + 0.06 nats (the InfoNCE test above allows 0.05).
    t = [0.0, 0.3, 0.6]
    m = cmi_map.neural_cmi_map(_mixture_images(20000, 0), _mixture_images(5000, 1), t, [1], crop=SIDE, seeds=3,
                               steps=400, batch=128, hidden=32, lr=3e-3, eval_batches=20, bound="density",
                               components=2, pixel_levels=None)
    assert m.settings["n_critics"] == 3 * 3 * 3  # q(a), q(a | BC), q(a | B) per (seed, t)
    n = SIDE * SIDE
    for i, tt in enumerate(t):
        exact_bc = info.mixture_mi(n, tt, mu=MU, sigma0=SIGMA0)
        exact_cmi = info.mixture_cmi(n, tt, n_b=8, mu=MU, sigma0=SIGMA0)
        assert abs(m.mi_a_bc[i] - exact_bc) < m.mi_a_bc_hw[i] + 0.02, (tt, m.mi_a_bc[i], exact_bc)
        assert abs(m.cmi[i, 0] - exact_cmi) < m.cmi_hw[i, 0] + (0.06 if tt == 0 else 0.02), (tt, m.cmi[i, 0], exact_cmi)


def test_density_map_on_quantised_pixels_uses_bins_at_t0():
    x = (_mixture_images(600, 0) * 255).round() / 255  # 8-bit pixels, like MNIST
    m = cmi_map.neural_cmi_map(x, x, [0.0, 0.5], [1], crop=SIDE, seeds=2, steps=3, batch=32, hidden=8,
                               eval_batches=2, bound="density")
    assert m.settings["pixel_levels"] == 255 and np.isfinite(m.cmi).all()
    with pytest.raises(ValueError, match="not on the grid"):  # continuous pixels at t = 0 need pixel_levels=None
        cmi_map.neural_cmi_map(_mixture_images(600, 0), x, [0.0], [1], crop=SIDE, seeds=2, steps=3, batch=32,
                               hidden=8, eval_batches=2, bound="density")
    with pytest.raises(ValueError, match="unknown bound"):
        cmi_map.neural_cmi_map(x, x, [0.5], [1], crop=SIDE, seeds=2, steps=1, bound="densty")
