"""ODE solvers and hybrid schedules, checked on denoisers whose posterior means are exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from localdiff_lib import path
from localdiff_lib.models import GlobalUNet, LocalDenoiser, count_macs
from localdiff_lib.sampling import HybridSchedule, ode_solve, sample, steps_for, velocity


class GaussianOracle(nn.Module):
    """The exact posterior mean for pixels i.i.d. ``N(m, s^2)`` (``s = 0``: every image equals ``m``),
    reported as the ``prediction`` kind asked for. It is a radius-0 (per-pixel) denoiser."""

    def __init__(self, m=0.3, s=0.0, prediction="velocity"):
        super().__init__()
        self.m, self.s, self.prediction, self.radius = m, s, prediction, 0
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, x, t):
        tt = path.expand_t(t, x)
        var = (1 - tt) ** 2 * self.s**2 + tt**2
        resid = x - (1 - tt) * self.m
        x0 = self.m + (1 - tt) * self.s**2 / var * resid
        z = tt / var * resid
        return {"x0": x0, "noise": z, "velocity": z - x0}[self.prediction] + 0 * self.dummy


@pytest.mark.parametrize("kind", ["velocity", "noise", "x0"])
@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_exact_model_recovers_a_point_mass_exactly(kind, solver):
    """For data equal to one image c, the flow is x(t) = c + (x_T - c) t / T: Euler is exact on it."""
    oracle = GaussianOracle(m=0.3, prediction=kind)
    c = torch.full((6, 1, 5, 5), 0.3, dtype=torch.float64)
    x_T, _ = path.add_noise(c, 0.7, generator=torch.Generator().manual_seed(0))
    # (Heun's last evaluation would be at t = 0, where a point mass has no velocity: stop it at t = 0.1)
    t_end = 0.0 if solver == "euler" else 0.1
    x, rec = ode_solve(oracle, x_T, 0.7, t_end, steps=7, solver=solver)
    assert torch.allclose(x, c + (x_T - c) * t_end / 0.7, atol=1e-10)
    assert rec.nfe == (7 if solver == "euler" else 14)


def test_the_authors_noise_step_biases_even_a_perfect_model():
    """x <- x - dt * z_hat (the authors' local sampler) drops the clean-image term of the flow ODE. With the
    exact noise predictor of pixels i.i.d. N(0.3, 0.25^2), noised to T = 0.5, it returns pixels whose mean
    and spread are shrunk (about 0.20 and 0.19), while our ODE returns N(0.3, 0.25^2) again."""
    m, s, T, steps, n = 0.3, 0.25, 0.5, 100, 4000
    oracle = GaussianOracle(m=m, s=s, prediction="noise")
    g = torch.Generator().manual_seed(1)
    clean = m + s * torch.randn(n, 1, 2, 2, generator=g, dtype=torch.float64)
    x_T, _ = path.add_noise(clean, T, generator=g)
    x = x_T.clone()
    with torch.no_grad():
        for k in range(steps):
            x = x - (T / steps) * oracle(x, torch.full((n,), T * (1 - k / steps), dtype=torch.float64))
    assert float(x.mean()) < m - 0.08 and float(x.std()) < s - 0.04
    # the library's solver="authors" is this loop
    authors, rec = ode_solve(oracle, x_T, T, 0.0, steps=steps, solver="authors")
    assert torch.allclose(authors, x, atol=1e-12, rtol=0) and rec.nfe == steps
    ours, _ = ode_solve(oracle, x_T, T, 0.0, steps=steps)
    assert abs(float(ours.mean()) - m) < 0.01 and abs(float(ours.std()) - s) < 0.01


@pytest.mark.parametrize("kind", ["velocity", "noise"])
def test_sampling_a_gaussian_reproduces_its_moments(kind):
    m, s = 0.4, 0.25
    oracle = GaussianOracle(m=m, s=s, prediction=kind).double()
    data_mean = torch.full((1, 6, 6), m, dtype=torch.float64) if kind == "noise" else None
    x, rec = sample(oracle, n=3000, steps=40, solver="heun", image_size=6, data_mean=data_mean, seed=3)
    # Heun is second order; the Gaussian flow is smooth, so 40 steps leave only Monte Carlo error
    assert abs(float(x.mean()) - m) < 0.005
    assert abs(float(x.std()) - s) < 0.005
    # a noise predictor is not called at t = 1 (the exact identity v = x - E[X_0] is used there)
    assert rec.nfe == (80 if kind == "velocity" else 79)


def test_heun_into_t0_with_a_clean_image_predictor_ends_with_euler():
    oracle = GaussianOracle(m=0.3, s=0.2, prediction="x0")
    x, rec = ode_solve(oracle, torch.randn(5, 1, 3, 3, dtype=torch.float64), 0.5, 0.0, steps=4, solver="heun")
    assert torch.isfinite(x).all() and rec.nfe == 7


def test_noise_model_at_t1_needs_the_data_mean():
    oracle = GaussianOracle(prediction="noise")
    with pytest.raises(ValueError, match="data_mean"):
        sample(oracle, n=2, steps=4, image_size=4)
    x = torch.randn(3, 1, 4, 4)
    v, called = velocity(oracle, x, 1.0, data_mean=torch.full((1, 4, 4), 0.3))
    assert not called and torch.allclose(v, x - 0.3)


def _pair():
    torch.manual_seed(0)
    return LocalDenoiser(radius=2, channels=4), GlobalUNet(channels=(4, 8, 8), emb_dim=8)


def test_hybrid_limiting_cases_are_bit_for_bit():
    local, glob = _pair()
    only_local, _ = sample(HybridSchedule.local_only(local), n=4, steps=6, seed=1)
    only_global, _ = sample(HybridSchedule.global_only(glob), n=4, steps=6, seed=1)
    empty, rec_e = sample(HybridSchedule(local, [(0.3, 0.3, glob)]), n=4, steps=6, seed=1)
    full, rec_f = sample(HybridSchedule(local, [(0.0, 1.0, glob)]), n=4, steps=6, seed=1)
    assert torch.equal(empty, only_local) and torch.equal(full, only_global)
    assert not torch.equal(only_local, only_global)
    assert rec_e.nfe_by_model == {"LocalDenoiser(r=2)": 6} and rec_f.nfe_by_model == {"GlobalUNet": 6}
    # a plain model is the same as its one-model schedule, and the same seed gives the same samples
    assert torch.equal(sample(local, n=4, steps=6, seed=1)[0], only_local)


def test_paper_split_assigns_steps_by_midpoint_and_counts_cost():
    local, glob = _pair()
    sched = HybridSchedule.paper_split(local, glob)  # global on [0.2, 0.5)
    assert sched.model_at(0.1) is local and sched.model_at(0.2) is glob and sched.model_at(0.45) is glob
    assert sched.model_at(0.5) is local and sched.model_at(0.99) is local
    x, rec = sample(sched, n=3, steps=10, solver="heun")
    # midpoints 0.95, ..., 0.05: those at 0.25, 0.35, 0.45 are global
    assert rec.nfe_by_model == {"LocalDenoiser(r=2)": 14, "GlobalUNet": 6} and rec.nfe == 20
    assert rec.macs == 3 * (14 * count_macs(local) + 6 * count_macs(glob))
    assert rec.macs_per_image == rec.macs / 3
    assert x.shape == (3, 1, 28, 28)


def test_trajectory_and_zero_length_solve():
    local, _ = _pair()
    x0 = torch.randn(2, 1, 28, 28)
    x, rec, traj = ode_solve(local, x0, 0.5, 0.0, steps=3, return_trajectory=True)
    assert len(traj) == 4 and torch.equal(traj[0], x0) and torch.equal(traj[-1], x)
    same, rec0 = ode_solve(local, x0, 0.0, 0.0, steps=0)
    assert torch.equal(same, x0) and rec0.nfe == 0


def test_steps_for():
    assert steps_for(1.0, 32) == 32 and steps_for(0.3, 10) == 3 and steps_for(0.31, 10) == 4 and steps_for(0.0, 10) == 0


def test_bad_inputs_are_clear_errors():
    local, glob = _pair()
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match="solver"):
        ode_solve(local, x, 1.0, steps=2, solver="rk4")
    with pytest.raises(ValueError, match="t_end <= t_start"):
        ode_solve(local, x, 0.3, 0.5, steps=2)
    with pytest.raises(ValueError, match="t_end <= t_start"):
        ode_solve(local, x, 1.5, steps=2)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        ode_solve(local, torch.randn(2, 28, 28), 1.0, steps=2)
    with pytest.raises(ValueError, match="steps"):
        ode_solve(local, x, 1.0, steps=0)
    with pytest.raises(ValueError, match="t_lo <= t_hi"):
        HybridSchedule(local, [(0.5, 0.2, glob)])
    with pytest.raises(ValueError, match="triple"):
        HybridSchedule(local, [(0.5, glob)])
    with pytest.raises(ValueError, match="prediction"):
        HybridSchedule(nn.Linear(2, 2))


@pytest.mark.parametrize("solver", ["euler", "heun", "authors"])
def test_equal_compute_steps_spends_at_most_the_hybrid_budget(solver):
    # the paper's split costs what its record says; the global model alone at the returned number of steps costs no
    # more, and one step more would cost more
    from localdiff_lib.sampling import equal_compute_steps

    torch.manual_seed(0)
    local, glob = LocalDenoiser(radius=2, channels=8), GlobalUNet(channels=(8, 16, 32))
    _, rec = sample(HybridSchedule.paper_split(local, glob), n=2, steps=32, seed=0)
    k = equal_compute_steps(rec.macs_per_image, glob, solver)
    _, base = sample(glob, n=2, steps=k, solver=solver, seed=0)
    _, more = sample(glob, n=2, steps=k + 1, solver=solver, seed=0)
    assert base.macs_per_image <= rec.macs_per_image < more.macs_per_image, (k, base, rec, more)
    assert base.nfe == k * (2 if solver == "heun" else 1)


def test_equal_compute_steps_refuses_a_budget_below_one_step():
    from localdiff_lib.sampling import equal_compute_steps

    glob = GlobalUNet(channels=(8, 16, 32))
    with pytest.raises(ValueError, match="do not pay for one heun step"):
        equal_compute_steps(count_macs(glob) * 1.5, glob, "heun")
    with pytest.raises(ValueError, match="solver must be one of"):
        equal_compute_steps(1e9, glob, "rk4")
