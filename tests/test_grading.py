"""The autograder checks: a right answer passes, each typical mistake gets its own specific message, a stub is named."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from torch import nn

from localdiff_lib import grading, info, locality, models
from localdiff_lib.grading import GradingError


def stub(*args, **kwargs):
    raise NotImplementedError("write your solution here")


def fails_with(check, fn, *fragments):
    with pytest.raises(GradingError) as exc:
        check(fn)
    for fragment in fragments:
        assert fragment in str(exc.value), f"{fragment!r} not in the message: {exc.value}"
    return str(exc.value)


# ---- shared behaviour --------------------------------------------------------------------------------

def test_grading_error_is_an_assertion_error():
    assert issubclass(GradingError, AssertionError)


@pytest.mark.parametrize("check", [grading.check_path_covariance, grading.check_gaussian_cmi,
                                   grading.check_cmi_along_path, grading.check_footprint,
                                   grading.check_footprint_radius])
def test_a_stub_is_named_and_told_what_to_do(check):
    msg = fails_with(check, stub, "is not written yet", "raise NotImplementedError")
    assert msg.startswith("`")   # the function's name comes first


def test_a_crash_is_reported_with_its_cause():
    fails_with(grading.check_gaussian_cmi, lambda cov, A, B, C: 1 / 0, "`gaussian_cmi` raised ZeroDivisionError")


def test_passing_a_value_instead_of_the_function_is_explained():
    fails_with(grading.check_gaussian_cmi, 0.5, "must be a function", "without calling it")


def test_check_value_passes_and_fails_with_numbers():
    assert "\u2713" in grading.check_value("x", 1.05, 1.0, 0.1)
    fails_with(lambda v: grading.check_value("the radius", v, 10, 0, "use Chebyshev"), 7,
                     "the radius is 7, expected 10", "use Chebyshev")
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), float("nan"), "finite")
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), [1.0, 2.0], "single number")


# ---- assignment 1: the exact CMI of a Gaussian field ------------------------------------------------

def test_path_covariance_right_answer_passes():
    assert "\u2713" in grading.check_path_covariance(info.path_covariance)


@pytest.mark.parametrize("wrong, fragment", [
    (lambda c, t: (1 - t) * c + t * np.eye(len(c)), "mixed variances linearly"),
    (lambda c, t: (1 - t) ** 2 * c + t * np.eye(len(c)), "adds t^2 I, not t I"),
    (lambda c, t: c + t**2 * np.eye(len(c)), "multiplied by (1-t)^2"),
    (lambda c, t: (1 - t) ** 2 * c, "you forgot the noise"),
    (lambda c, t: t**2 * c + (1 - t) ** 2 * np.eye(len(c)), "t = 0 is data"),
])
def test_path_covariance_mistakes_get_specific_hints(wrong, fragment):
    fails_with(grading.check_path_covariance, wrong, "path_covariance(cov0, t=", fragment)


def test_path_covariance_must_not_modify_its_argument():
    def in_place(c, t):
        c *= (1 - t) ** 2
        c += t**2 * np.eye(len(c))
        return c
    fails_with(grading.check_path_covariance, in_place, "changed its argument cov0 in place")


def test_gaussian_cmi_right_answers_pass():
    assert "5 cases" in grading.check_gaussian_cmi(info.gaussian_cmi)
    assert "\u2713" in grading.check_gaussian_cmi(info.gaussian_cmi_logdet)   # the literal formula agrees too


@pytest.mark.parametrize("wrong, fragment", [
    (lambda *a: 2 * info.gaussian_cmi(*a), "forgot the factor 1/2"),
    (lambda *a: info.gaussian_cmi(*a) / np.log(2), "in bits"),
    (lambda *a: -info.gaussian_cmi(*a), "sign is flipped"),
    (lambda cov, A, B, C: info.gaussian_mi(cov, A, C), "the buffer B was ignored"),
    (lambda cov, A, B, C: info.gaussian_mi(cov, A, list(B) + list(C)), "that is I(A:BC)"),
])
def test_gaussian_cmi_mistakes_get_specific_hints(wrong, fragment):
    msg = fails_with(grading.check_gaussian_cmi, wrong, "your I(A:C|B) for", "nats, expected", fragment)
    assert "\u00b1" in msg


def test_gaussian_cmi_message_carries_the_numbers():
    msg = fails_with(grading.check_gaussian_cmi, lambda *a: 0.13, "is 0.13 nats, expected")
    expected = info.gaussian_cmi(*grading._cmi_cases()[0][1:])
    assert f"{expected:.6g}" in msg


def test_cmi_along_path_right_answer_passes():
    def right(cov0, A, B, C, ts):
        return [info.gaussian_cmi(info.path_covariance(cov0, t), A, B, C) if t < 1 else 0.0 for t in ts]
    assert "\u2713" in grading.check_cmi_along_path(right)


def test_cmi_along_path_with_the_data_covariance_is_caught():
    msg = fails_with(grading.check_cmi_along_path, lambda cov0, A, B, C, ts: [info.gaussian_cmi(cov0, A, B, C)] * len(ts),
                     "for r=1 at t=", "did you use the covariance at time t, (1-t)^2 Sigma_0 + t^2 I")


def test_cmi_along_path_wrong_length_is_caught():
    fails_with(grading.check_cmi_along_path, lambda cov0, A, B, C, ts: [0.0], "must have shape (11,)")


# ---- assignment 2: a strictly local denoiser --------------------------------------------------------

def right_footprint(model, pixel, image_size, t):
    return locality.gradient_footprint(model, pixel, image_size, t)


def test_footprint_right_answer_passes():
    assert "6 (model, pixel) cases" in grading.check_footprint(right_footprint)


def test_footprint_of_the_sum_is_caught():
    def of_sum(model, pixel, image_size, t):
        m = copy.deepcopy(model).double()
        x = torch.randn(1, 1, image_size, image_size, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(m(x, torch.full((1,), t, dtype=torch.float64)).sum(), x)
        return g[0, 0] != 0
    fails_with(grading.check_footprint, of_sum, "has 400 pixels, the gradient footprint has 25", "out.sum()")


def test_footprint_with_batch_axes_is_caught():
    fails_with(grading.check_footprint, lambda m, p, n, t: right_footprint(m, p, n, t)[None, None],
               "must be a (20, 20) mask", "grad[0, 0]")


def test_footprint_of_the_wrong_pixel_is_caught():
    fails_with(grading.check_footprint, lambda m, p, n, t: right_footprint(m, (min(p[0] + 1, n - 1), p[1]), n, t),
               "(row, column) = pixel")


def test_local_model_right_answer_passes():
    msg = grading.check_local_model(lambda r: models.LocalDenoiser(radius=r, channels=8))
    assert "exactly 1, 2, 3" in msg


class _Convs(nn.Module):
    def __init__(self, radius, norm=False, dilation=1, extra=0, use_t=True):
        super().__init__()
        n = radius + extra
        k = [nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=dilation, dilation=dilation) for i in range(n)]
        self.convs = nn.ModuleList(k)
        self.norm = nn.GroupNorm(1, 4) if norm else nn.Identity()
        self.head = nn.Conv2d(4, 1, 1)
        self.use_t = use_t

    def forward(self, x, t):
        h = x
        for c in self.convs:
            h = torch.tanh(c(h))
        out = self.head(self.norm(h))
        return out * (1 + t.view(-1, 1, 1, 1)) if self.use_t else out


class _NoPadding(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 1, 3)

    def forward(self, x, t):
        return self.c(x)


@pytest.mark.parametrize("make, fragments", [
    (lambda r: _Convs(r, norm=True), ["depends on input pixel(s)", "normalisation over the whole image"]),
    (lambda r: _Convs(r, extra=1), ["pixels away, but the receptive-field radius must be 1", "each 3x3 convolution adds 1"]),
    (lambda r: _Convs(r, use_t=False), ["same output at t=0.5 and t=0.9"]),
    (lambda r: _Convs(max(r - 1, 0)) if r > 1 else _Convs(1), ["only sees 1 pixel(s)", "r = 2"]),
    (lambda r: _NoPadding(), ["maps images of shape (2, 1, 20, 20) to (2, 1, 18, 18)", "padding=1"]),
])
def test_local_model_mistakes_get_specific_hints(make, fragments):
    fails_with(grading.check_local_model, make, *fragments)


def test_dilated_model_is_caught():
    class Dilated(nn.Module):   # one 3x3 convolution of dilation r: reaches r pixels but skips the ones in between
        def __init__(self, r):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 3, padding=r, dilation=r)

        def forward(self, x, t):
            return self.c(x) * (1 + t.view(-1, 1, 1, 1))
    fails_with(lambda f: grading.check_local_model(f, radii=(2,)), Dilated, "ignores", "dilated or strided")


def test_footprint_radius_right_answer_passes():
    assert "\u2713" in grading.check_footprint_radius(locality.footprint_radius)


def test_footprint_radius_mistakes():
    def euclid(mask, pixel):
        rows, cols = torch.nonzero(mask, as_tuple=True)
        return float(((rows - pixel[0]) ** 2 + (cols - pixel[1]) ** 2).float().sqrt().max()) if rows.numel() else -1
    fails_with(grading.check_footprint_radius, euclid, "Euclidean distance")

    def no_empty(mask, pixel):
        rows, cols = torch.nonzero(mask, as_tuple=True)
        return int(torch.maximum((rows - pixel[0]).abs(), (cols - pixel[1]).abs()).max()) if rows.numel() else 0
    fails_with(grading.check_footprint_radius, no_empty, "an empty footprint", "radius -1")


# ---- assignment 3: a Markov length with error bars --------------------------------------------------

def plugin_right(samples, A, B, C, n_boot=200, seed=0, scale=1.0, rowvar=False):
    samples = np.asarray(samples)
    est = info.gaussian_cmi(np.cov(samples, rowvar=rowvar) if not rowvar else np.cov(samples.T, rowvar=False), A, B, C)
    g = np.random.default_rng(seed)
    n = len(samples)
    boots = [info.gaussian_cmi(np.cov(samples[g.integers(0, n, n)], rowvar=False), A, B, C) for _ in range(n_boot)]
    return est, scale * float(np.std(boots, ddof=1))


def test_plugin_cmi_right_answer_passes():
    assert "\u2713" in grading.check_plugin_cmi(plugin_right)


@pytest.mark.parametrize("scale, fragment", [(1 / 14, "too small"), (14, "too large")])
def test_plugin_cmi_error_bar_mistakes(scale, fragment):
    fails_with(grading.check_plugin_cmi, lambda *a: plugin_right(*a, scale=scale), "is not the plug-in estimator's spread",
               fragment)


def test_plugin_cmi_wrong_estimate_is_caught():
    fails_with(grading.check_plugin_cmi, lambda s, A, B, C, n, seed: (info.gaussian_cmi(np.cov(s[:1000], rowvar=False), A, B, C), 0.01),
               "your plug-in CMI for the noisy AR(1) chain", "expected")


def fit_right(r, cmi, err):
    from localdiff_lib import markov
    res = markov.fit_markov_length(r, cmi, err)
    return res.xi, res.xi_se


def test_markov_fit_right_answer_passes():
    assert "cover the truth" in grading.check_markov_fit(fit_right)


@pytest.mark.parametrize("wrong, fragment", [
    (lambda r, c, e: (-fit_right(r, c, e)[0], fit_right(r, c, e)[1]), "sign is flipped"),
    (lambda r, c, e: (fit_right(r, c, e)[0] / np.log(10), fit_right(r, c, e)[1]), "natural log"),
    (lambda r, c, e: (-1 / np.polyfit(r, np.log(c), 1)[0], 0.1), "weight each point"),
    (lambda r, c, e: (fit_right(r, c, e)[0], fit_right(r, c, e)[1] / 4), "too small"),
    (lambda r, c, e: (fit_right(r, c, e)[0], 3 * fit_right(r, c, e)[1]), "too large"),
])
def test_markov_fit_mistakes_get_specific_hints(wrong, fragment):
    fails_with(grading.check_markov_fit, wrong, fragment)


RHO, T, N_SITES, FAR = 0.9, 0.4, 31, 4


def _regions(r):
    c = N_SITES // 2
    A, B, _ = info.regions((N_SITES,), c, int(r))
    return A, B, [c - r - k for k in range(1, FAR + 1)] + [c + r + k for k in range(1, FAR + 1)]


@pytest.fixture(scope="module")
def chain_samples():
    g = np.random.default_rng(0)
    return g.multivariate_normal(np.zeros(N_SITES), info.ar1_covariance(N_SITES, RHO, t=T), size=50_000, method="cholesky")


def measure(samples, regions, radii, n_boot, rule=lambda r, c, e: (c > 4 * e) & (r >= 2), xi_shift=0.0, fit=None):
    est = np.array([plugin_right(samples, *regions(r), n_boot=n_boot, seed=int(r)) for r in radii])
    cmi, err = est[:, 0], est[:, 1]
    use = rule(np.asarray(radii), cmi, err)
    xi, xi_err = (fit or fit_right)(np.asarray(radii)[use], cmi[use], err[use])
    return xi + xi_shift, xi_err, cmi, err, use


def test_markov_length_right_measurement_passes(chain_samples):
    out = grading.check_markov_length(measure, chain_samples, _regions, np.arange(1, 7), 20, RHO, T)
    assert len(out) == 5 and abs(out[0] - info.ar1_markov_length(RHO, T)) < 0.2


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(rule=lambda r, c, e: np.ones(len(r), bool)), "within 3 error bars of zero"),
    (dict(rule=lambda r, c, e: r == 2, fit=lambda r, c, e: (1.0, 0.1)), "at least two points"),
    (dict(xi_shift=0.05), "is not the weighted fit of the radii you marked"),
])
def test_markov_length_mistakes_get_specific_hints(chain_samples, kwargs, fragment):
    fails_with(lambda f: grading.check_markov_length(f, chain_samples, _regions, np.arange(1, 7), 20, RHO, T),
               lambda *a: measure(*a, **kwargs), fragment)


def test_markov_length_stub_is_named(chain_samples):
    fails_with(lambda f: grading.check_markov_length(f, chain_samples, _regions, np.arange(1, 7), 20, RHO, T),
               stub, "`measure_markov_length` is not written yet")


def test_the_message_quoted_on_the_assignments_page_is_the_real_one():
    """book/assignments/about.md quotes a GradingError verbatim; it must be what the check really says."""
    from localdiff_lib.course import ROOT

    def doubled_on_the_field(cov, A, B, C):   # right on the first case, forgets the 1/2 on the 7x7 field
        value = info.gaussian_cmi(cov, A, B, C)
        return 2 * value if cov.shape[0] == 49 else value
    with pytest.raises(GradingError) as exc:
        grading.check_gaussian_cmi(doubled_on_the_field)
    quoted = re.search(r"GradingError: (.*?)\n```", (ROOT / "book" / "assignments" / "about.md").read_text(), re.S).group(1)
    assert " ".join(quoted.split()) == str(exc.value)
