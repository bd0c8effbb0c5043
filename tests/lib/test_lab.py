"""The transition lab without a front end: its views against the path and the library's recovery, exact answers
on denoisers with known flows, caching of the hybrid samples, cost accounting, errors, and the widget's wiring."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from localdiff_lib import evaluate, path
from localdiff_lib.info import SurrogateMap
from localdiff_lib.lab import LabView, TransitionLab
from localdiff_lib.models import GlobalUNet, LocalDenoiser, count_macs
from localdiff_lib.sampling import HybridSchedule, sample, steps_for

SIZE = 8  # 8x8 images keep every model call tiny
RADII = (1, 2, 3)
CURVE_T = (0.2, 0.5, 0.8)
S = 8  # Euler steps per unit time


def linear_map(radii=RADII, hw=False):
    """A CMI map with known values: I(A:C|B)(t, r) = r * t / 10 on t = 0, 0.25, ..., 1."""
    t = np.linspace(0.0, 1.0, 5)
    r = np.array(radii)
    cmi = np.outer(t, r) / 10
    m = SurrogateMap(t=t, r=r, cmi=cmi, mi_a_bc=np.zeros(len(t)), mi_a_b=np.zeros_like(cmi))
    if hw:
        m.cmi_hw = np.full_like(cmi, 0.01)
    return m


def images(n=3, seed=0):
    return torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def tiny(one_thread):
    torch.manual_seed(0)
    local = {r: LocalDenoiser(radius=r, channels=4, emb_dim=8, image_size=SIZE).eval() for r in RADII}
    glob = GlobalUNet(channels=(8, 8, 8), emb_dim=8, image_size=SIZE).eval()
    return local, glob


def make_lab(tiny, **kw):
    local, glob = tiny
    args = dict(curve_T=CURVE_T, steps_per_unit_time=S, n_samples=4, sample_steps=6, seed=3)
    args.update(kw)
    return TransitionLab(local, glob, images(), linear_map(), **args)


class PointMass(nn.Module):
    """The exact velocity when every image equals the constant ``c``: ``v = (x - c) / t`` (a per-pixel model, so
    local with any radius; ``radius`` is set to the radius it stands in for)."""

    prediction = "velocity"

    def __init__(self, c: float, radius: int):
        super().__init__()
        self.c, self.radius = c, radius
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return (x - self.c) / path.expand_t(t, x) + 0 * self.dummy


class StayPut(nn.Module):
    """Predicts ``x0_hat = x``: its velocity is 0, so the ODE leaves ``x_T`` where it is."""

    prediction, radius = "x0", None

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return x + 0 * self.dummy


# ---------------------------------------------------------------- views


def test_view_is_the_path_formula_and_the_library_recovery(tiny):
    lab = make_lab(tiny)
    v = lab.update(t=0.37, r=2, index=1)
    assert isinstance(v, LabView) and (v.t, v.r, v.index) == (0.37, 2, 1)
    z = torch.randn(3, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(3))  # the lab's noise: seeded, on the CPU
    x0 = lab.x0[1]
    torch.testing.assert_close(v.x0, x0)
    torch.testing.assert_close(v.x_t, 0.63 * x0 + 0.37 * z[1], rtol=0, atol=1e-6)
    local, glob = tiny
    for model, got, mse in ((local[2], v.recovered_local, v.mse_local), (glob, v.recovered_global, v.mse_global)):
        want, noised = evaluate.recover(model, lab.x0[1:2], 0.37, noise=z[1:2], steps_per_unit_time=S)
        torch.testing.assert_close(got, want[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(noised[0], v.x_t, rtol=0, atol=1e-6)
        assert mse == pytest.approx(float((want[0] - x0).pow(2).mean()), rel=1e-5)
    assert lab.recovery_steps() == steps_for(0.37, S) == 3


def test_exact_flows_give_known_errors_and_curves(one_thread):
    """Data all equal to c: the point-mass velocity recovers c exactly from every t (Euler is exact on its straight
    flow); a model with zero velocity returns x_T, whose error is exactly T^2 mean((z - x0)^2)."""
    c = 0.3
    x0 = torch.full((2, 1, SIZE, SIZE), c)
    lab = TransitionLab({r: PointMass(c, r) for r in RADII}, StayPut(), x0, linear_map(), curve_T=(0.0, 0.3, 0.6, 1.0),
                        steps_per_unit_time=S, n_samples=2, sample_steps=4, seed=1)
    z = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    for t in (0.15, 0.55, 0.9):
        v = lab.update(t=t, r=3, index=1)
        torch.testing.assert_close(v.recovered_local, x0[1], rtol=0, atol=1e-5)
        torch.testing.assert_close(v.recovered_global, v.x_t, rtol=0, atol=1e-6)
        assert v.mse_global == pytest.approx(t**2 * float((z[1] - x0[1]).pow(2).mean()), rel=1e-5)
    want = np.array([[T**2 * float((z[n] - x0[n]).pow(2).mean()) for n in range(2)] for T in lab.curve_T])
    np.testing.assert_allclose(lab.curves["global"], want, rtol=1e-5)
    assert np.abs(lab.curves[1]).max() < 1e-10
    assert lab.curves["global"][0].tolist() == [0.0, 0.0]  # T = 0: nothing to undo
    # the all-local sampler of a point mass lands on c exactly; the zero-velocity "global" one keeps the noise
    v = lab.update(window=(0.0, 0.0))
    torch.testing.assert_close(v.samples, torch.full_like(v.samples, c), rtol=0, atol=1e-5)
    noise = torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(v.global_samples, noise, rtol=0, atol=1e-6)


def test_curves_and_marked_points(tiny):
    lab = make_lab(tiny)
    v = lab.update(t=0.5, r=3, index=2)
    np.testing.assert_array_equal(v.curve_T, CURVE_T)
    np.testing.assert_allclose(v.curve_local, lab.curves[3].mean(axis=1))
    assert v.curve_local_at_t == pytest.approx(v.curve_local[1])
    assert v.curve_global_at_t == pytest.approx(v.curve_global[1])
    # on a grid time, this image's recovery is the curve's entry for this image (the same noise and steps)
    assert v.mse_local == pytest.approx(lab.curves[3][1, 2], rel=1e-4)
    assert v.mse_global == pytest.approx(lab.curves["global"][1, 2], rel=1e-4)
    # between grid times the marked point is the linear interpolation; outside the grid it is NaN, not an end value
    v = lab.update(t=0.35)
    assert v.curve_local_at_t == pytest.approx(0.5 * (v.curve_local[0] + v.curve_local[1]))
    v = lab.update(t=0.1)
    assert math.isnan(v.curve_local_at_t) and math.isnan(v.curve_global_at_t)
    # the CMI curve is the map's column of buffer radius r
    for r in RADII:
        v = lab.update(t=0.35, r=r)
        np.testing.assert_allclose(v.cmi, r * np.linspace(0, 1, 5) / 10)
        assert v.cmi_at_t == pytest.approx(r * 0.035)
        assert v.cmi_hw is None and v.cmi_source == "exact Gaussian surrogate"


def test_a_neural_map_brings_its_error_band(tiny):
    local, glob = tiny
    lab = TransitionLab(local, glob, images(), linear_map(hw=True), curve_T=CURVE_T, steps_per_unit_time=S,
                        n_samples=2, sample_steps=2)
    v = lab.view()
    assert v.cmi_source == "neural estimate" and np.allclose(v.cmi_hw, 0.01)


def test_default_state_and_repr(tiny):
    lab = make_lab(tiny)
    assert lab.state == dict(t=0.3, r=1, window=(0.2, 0.5), index=0)
    assert "r in [1, 2, 3]" in repr(lab)


# ---------------------------------------------------------------- hybrid samples: cache and cost


def test_samples_are_cached_by_window_and_radius(tiny):
    lab = make_lab(tiny)
    v0 = lab.view()
    assert lab.computed["sample"] == 2  # the hybrid and the all-global samples
    for change in (dict(t=0.7), dict(index=2), dict(t=0.05, index=1)):
        v = lab.update(**change)
        assert v.samples is v0.samples and v.global_samples is v0.global_samples
    assert lab.computed["sample"] == 2
    v1 = lab.update(window=(0.1, 0.6))
    assert lab.computed["sample"] == 3 and v1.samples is not v0.samples and v1.global_samples is v0.global_samples
    v2 = lab.update(r=3)
    assert lab.computed["sample"] == 4 and v2.samples is not v1.samples
    v3 = lab.update(r=1, window=(0.2, 0.5))  # back to the first state: from the cache
    assert lab.computed["sample"] == 4 and v3.samples is v0.samples
    # the cached samples are the library's sampler with the lab's schedule and seed
    local, glob = tiny
    want, rec = sample(HybridSchedule(local[3], [(0.1, 0.6, glob)]), n=4, steps=6, seed=3, image_size=SIZE)
    v = lab.update(r=3, window=(0.1, 0.6))
    torch.testing.assert_close(v.samples, want, rtol=0, atol=0)
    assert v.record.macs == rec.macs


def test_recoveries_are_cached_but_follow_every_change(tiny):
    lab = make_lab(tiny)
    lab.view()
    n = lab.computed["recover"]
    lab.update(window=(0.0, 1.0))  # the window does not touch the recovery
    assert lab.computed["recover"] == n
    lab.update(t=0.6)
    assert lab.computed["recover"] == n + 2  # the local and the global recovery of the new t
    lab.update(r=2)
    assert lab.computed["recover"] == n + 3  # only the local one
    lab.update(t=0.3, r=1)
    assert lab.computed["recover"] == n + 3


def test_multiply_adds_follow_the_window(tiny):
    local, glob = tiny
    lab = make_lab(tiny, sample_steps=10)
    G, L = count_macs(glob, image_size=SIZE), count_macs(local[2], image_size=SIZE)
    assert G > 0 and L > 0 and G != L
    mids = [1 - (k + 0.5) / 10 for k in range(10)]
    for window in [(0.2, 0.5), (0.0, 0.0), (0.0, 1.0), (0.5, 0.9)]:
        v = lab.update(r=2, window=window)
        k_w = sum(window[0] <= m < window[1] for m in mids)
        assert v.record.macs_per_image == k_w * G + (10 - k_w) * L, window
        assert v.global_only_macs == 10 * G
    v = lab.update(window=(0.0, 1.0))  # all global: the same samples as the all-global reference
    assert v.sample_gap == 0.0
    assert lab.update(window=(0.0, 0.0)).sample_gap > 0.0


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("change, message", [
    (dict(t=1.5), r"t must lie in \[0, 1\]"),
    (dict(t=-0.1), r"t must lie in \[0, 1\]"),
    (dict(t="0.3"), r"t must be a number"),
    (dict(r=7), r"no local model of receptive-field radius r = 7; the lab has r in \[1, 2, 3\]"),
    (dict(r=2.0), r"the lab has r in \[1, 2, 3\]"),
    (dict(window=(0.6, 0.2)), r"0 <= t_lo <= t_hi <= 1; got \(0.6, 0.2\)"),
    (dict(window=(0.2, 1.2)), r"0 <= t_lo <= t_hi <= 1"),
    (dict(window=0.3), r"window must be a pair"),
    (dict(window=(0.1, 0.2, 0.3)), r"window must be a pair"),
    (dict(index=3), r"index \(the lab has 3 images\) must be an integer in \[0, 2\]"),
    (dict(T=0.3), r"unknown lab setting\(s\) \['T'\]; the settings are t, r, window, index"),
])
def test_bad_settings_are_refused_and_change_nothing(tiny, change, message):
    lab = make_lab(tiny)
    before = lab.state
    with pytest.raises(ValueError, match=message):
        lab.update(t=0.45, **change) if "t" not in change else lab.update(r=2, **change)
    assert lab.state == before  # nothing applied, not even the valid part of the update


def test_bad_construction_is_explained(tiny):
    local, glob = tiny
    x = images()
    with pytest.raises(ValueError, match=r"local_models\[2\] has radius 3"):
        TransitionLab({2: local[3]}, glob, x, linear_map())
    with pytest.raises(ValueError, match=r"no buffer radius \[3\] \(it has r = \[1, 2\]\)"):
        TransitionLab(local, glob, x, linear_map(radii=(1, 2)))
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        TransitionLab(local, glob, 2 * x - 1, linear_map())
    with pytest.raises(ValueError, match=r"shape \(N, 1, H, H\)"):
        TransitionLab(local, glob, x[:, 0], linear_map())
    with pytest.raises(ValueError, match="cmi_map must have arrays t, r and cmi"):
        TransitionLab(local, glob, x, {"t": [0, 1]})
    with pytest.raises(ValueError, match="curve_T must hold at least 2 strictly increasing times"):
        TransitionLab(local, glob, x, linear_map(), curve_T=(0.5, 0.2))
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        TransitionLab(local, glob, x, linear_map(), n_samples=0)
    with pytest.raises(ValueError, match=r"no local model of receptive-field radius r = 4"):
        TransitionLab(local, glob, x, linear_map(), r=4, curve_T=CURVE_T, steps_per_unit_time=2)


# ---------------------------------------------------------------- widget wiring (no front end)


def test_sliders_drive_the_lab(tiny):
    import ipywidgets as widgets

    lab = make_lab(tiny)
    ui = lab.widget(draw=False)
    assert isinstance(ui.box, widgets.VBox) and ui.output in ui.box.children
    assert (ui.t.value, ui.r.value, tuple(ui.window.value), ui.index.value) == (0.3, 1, (0.2, 0.5), 0)
    assert list(ui.r.options) == [1, 2, 3] and ui.index.max == 2
    assert not any(s.continuous_update for s in (ui.t, ui.r, ui.window, ui.index))

    ui.t.value = 0.6
    assert lab.t == 0.6 and ui.view.t == 0.6
    z = lab.noise[0]
    torch.testing.assert_close(ui.view.x_t, 0.4 * lab.x0[0] + 0.6 * z, rtol=0, atol=1e-6)
    assert ui.view.curve_local_at_t == pytest.approx(np.interp(0.6, CURVE_T, lab.curves[1].mean(1)))
    n_samples = lab.computed["sample"]

    ui.r.value = 2
    assert lab.r == 2 and ui.view.r == 2 and lab.computed["sample"] == n_samples + 1
    want, _ = evaluate.recover(tiny[0][2], lab.x0[:1], 0.6, noise=lab.noise[:1], steps_per_unit_time=S)
    torch.testing.assert_close(ui.view.recovered_local, want[0], rtol=0, atol=1e-6)

    ui.window.value = (0.1, 0.4)
    assert lab.window == (0.1, 0.4) and ui.view.window == (0.1, 0.4) and lab.computed["sample"] == n_samples + 2

    ui.index.value = 2
    assert lab.index == 2 and ui.view.index == 2 and lab.computed["sample"] == n_samples + 2
    torch.testing.assert_close(ui.view.x0, lab.x0[2])
    assert ui.error == ""


def test_widget_draws_a_figure_per_change(tiny):
    import matplotlib.pyplot as plt

    lab = make_lab(tiny)
    ui = lab.widget(draw=True)
    assert ui.draws == 1
    ui.t.value = 0.8
    ui.r.value = 3
    assert ui.draws == 3
    fig = lab.figure()
    assert len(fig.axes) == 7
    plt.close(fig)
