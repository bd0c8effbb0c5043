"""The autograder checks: a right answer passes, each typical mistake gets its own specific message, a stub is named."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import re
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

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
    fails_with(grading.check_path_covariance, in_place, "changed its argument `cov0` in place")


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


@functools.lru_cache(maxsize=1)
def _chain_samples():
    g = np.random.default_rng(0)
    return g.multivariate_normal(np.zeros(N_SITES), info.ar1_covariance(N_SITES, RHO, t=T), size=50_000, method="cholesky")


@pytest.fixture(scope="module")
def chain_samples():
    return _chain_samples()


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
    from localdiff_lib.publish.chapters import ROOT

    def doubled_on_the_field(cov, A, B, C):   # right on the first case, forgets the 1/2 on the 7x7 field
        value = info.gaussian_cmi(cov, A, B, C)
        return 2 * value if cov.shape[0] == 49 else value
    with pytest.raises(GradingError) as exc:
        grading.check_gaussian_cmi(doubled_on_the_field)
    quoted = re.search(r"GradingError: (.*?)\n```", (ROOT / "book" / "assignments" / "about.md").read_text(), re.S).group(1)
    assert " ".join(quoted.split()) == str(exc.value)


# ---- every answer is read the same way: finite real numbers, or a GradingError that says why -------------

def test_check_value_refuses_complex_and_inf():
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), 1 + 0j, "x is complex")
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), torch.tensor(1 + 1e-3j), "x is complex")
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), float("inf"), "x is inf", "finite")
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), True, "booleans")
    fails_with(lambda v: grading.check_value("x", v, 1.0, 0.1), None, "x is None", "`return`")


def test_a_crash_keeps_the_original_exception_and_says_where_and_what_the_check_did():
    def crashes(cov, A, B, C):
        raise KeyError("boom")
    with pytest.raises(GradingError) as exc:
        grading.check_gaussian_cmi(crashes)
    assert isinstance(exc.value.__cause__, KeyError)
    msg = str(exc.value)
    assert "`gaussian_cmi` raised KeyError" in msg and "of crashes: `raise KeyError(" in msg
    assert "when the check called it on a random 6-dimensional covariance" in msg


def test_a_stub_keeps_the_original_exception():
    with pytest.raises(GradingError) as exc:
        grading.check_plugin_cmi(stub)
    assert isinstance(exc.value.__cause__, NotImplementedError)


def test_the_checks_keep_their_signatures():
    import inspect
    assert list(inspect.signature(grading.check_local_model).parameters) == ["make_model", "radii", "image_size"]
    assert list(inspect.signature(grading.check_markov_length).parameters) == [
        "fn", "samples", "regions", "radii", "n_boot", "rho", "t"]


def test_a_footprint_may_convert_the_model_it_is_given_in_place():
    """The notebook says: work in float64 (`model.double()`, on a copy if you want to keep the original)."""
    def in_place_double(model, pixel, image_size, t):
        model.double().eval()
        x = torch.randn(1, 1, image_size, image_size, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(model(x, torch.full((1,), t, dtype=torch.float64))[0, 0, pixel[0], pixel[1]], x)
        return g[0, 0] != 0
    assert "\u2713" in grading.check_footprint(in_place_double)


def test_a_footprint_of_zeros_and_ones_is_a_mask():
    assert "\u2713" in grading.check_footprint(lambda m, p, n, t: right_footprint(m, p, n, t).to(torch.int64).tolist())


def test_the_student_s_random_state_is_left_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    grading.check_local_model(lambda r: models.LocalDenoiser(radius=r, channels=8), radii=(1,))
    assert torch.equal(torch.rand(3), before)


# ---- the probe: ways an answer could fool the grader or crash it -------------------------------------------
#
# Each row: (case, check, student, expected). `expected` is "pass" for a right answer; otherwise a distinctive
# fragment of the GradingError the check must raise. `python tests/lib/test_grading.py [path/to/grading.py]` runs
# the table against another version of the grader (for example the one before a change) and counts how each
# case ends: passed wrongly, crashed with a raw exception, failed with a clear GradingError (the fragment,
# compared ignoring case and backticks, is in the message), failed with a GradingError that misses it.

def _raises(exc):
    def student(*args, **kwargs):
        raise exc
    return student


def _pc_in_place(c, t):
    c *= (1 - t) ** 2
    c += t**2 * np.eye(len(c))
    return c


def _pc_one_inf(c, t):
    out = info.path_covariance(c, t)
    out[0, 0] = np.inf
    return out


def _cmi_adds_to_cov(cov, A, B, C):
    cov += np.eye(len(cov))
    return info.gaussian_cmi(cov, A, B, C)


def _cmi_clears_b(cov, A, B, C):
    B.clear()
    return info.gaussian_cmi(cov, A, B, C)


def _cmi_moves_c_into_a(cov, A, B, C):
    A.append(C.pop())
    return info.gaussian_cmi(cov, A, B, C)


def _cmi_float_index(cov, A, B, C):
    """Right for non-empty index lists; np.array([]) is a float array, which cannot index."""
    def logdet(idx):
        idx = np.array(idx)
        return np.linalg.slogdet(cov[idx][:, idx])[1]
    return 0.5 * (logdet(A + B) + logdet(B + C) - logdet(B) - logdet(A + B + C))


def _cmi_nan_without_b(cov, A, B, C):
    return info.gaussian_cmi(cov, A, B, C) if B else float("nan")


def _cmi_zero_without_b(cov, A, B, C):
    return info.gaussian_cmi(cov, A, B, C) if B else 0.0


def _path_right(cov0, A, B, C, ts):
    return [info.gaussian_cmi(info.path_covariance(cov0, t), A, B, C) if t < 1 else 0.0 for t in ts]


def _path_overwrites_cov0(cov0, A, B, C, ts):
    cov0[:] = np.eye(len(cov0))
    return _path_right(cov0, A, B, C, ts)


def _path_clears_b(cov0, A, B, C, ts):
    B.clear()
    return _path_right(cov0, A, B, C, ts)


def _path_overwrites_ts(cov0, A, B, C, ts):
    ts[:] = 1.0
    return _path_right(cov0, A, B, C, ts)


def _path_last_nan(cov0, A, B, C, ts):
    return _path_right(cov0, A, B, C, ts)[:-1] + [float("nan")]


def _fp_zeroes_the_model(model, pixel, image_size, t):
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return right_footprint(model, pixel, image_size, t)


def _fp_gradient(model, pixel, image_size, t):
    m = copy.deepcopy(model).double()
    x = torch.randn(1, 1, image_size, image_size, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(m(x, torch.full((1,), t, dtype=torch.float64))[0, 0, pixel[0], pixel[1]], x)
    return g[0, 0]


class _Wrapped(nn.Module):
    """A right local denoiser (LocalDenoiser) with one thing done wrong in forward."""

    def __init__(self, r, how):
        super().__init__()
        self.inner, self.how = models.LocalDenoiser(radius=r, channels=4), how
        self.w = torch.ones(1, 1, 1, 1)   # a plain attribute: model.double() leaves it float32

    def forward(self, x, t):
        if self.how == "float32 only":
            return self.inner(F.conv2d(x, self.w), t)
        if self.how == "batch 2 only":
            return self.inner(x, t) * (1 + 0 * t.view(2, 1, 1, 1))
        if self.how == "batch 1 only":
            return self.inner(x, t) * (1 + 0 * t.view(1, 1, 1, 1))
        if self.how == "x in place":
            x.mul_(2.0)
            return self.inner(x, t)
        out = self.inner(x, t)
        return {"nan": out * float("nan"), "inf": out + float("inf"), "complex": out * (1 + 1j),
                "integer": (100 * out).long(), "None": None}[self.how]


def _local(how):
    return lambda r: _Wrapped(r, how)


def _rad_clears_mask(mask, pixel):
    mask.zero_()
    return -1


def _plugin_duplicates_half(samples, A, B, C, n_boot=200, seed=0):
    samples[len(samples) // 2:] = samples[: len(samples) - len(samples) // 2]
    return plugin_right(samples, A, B, C, n_boot, seed)


def _fit_scales_err(r, cmi, err):
    err *= 1.01
    return fit_right(r, cmi, err)


def _measure_duplicates_half(samples, regions, radii, n_boot):
    samples[len(samples) // 2:] = samples[: len(samples) - len(samples) // 2]
    return measure(samples, regions, radii, n_boot)


def _measure_nan_cmi(samples, regions, radii, n_boot):
    xi, xi_err, cmi, err, use = measure(samples, regions, radii, n_boot)
    cmi = cmi.copy()
    cmi[-1] = np.nan
    return xi, xi_err, cmi, err, use


PROBE = [
    # assignment 1
    ("path_covariance: right answer", "check_path_covariance", info.path_covariance, "pass"),
    ("path_covariance: computes in place in cov0", "check_path_covariance", _pc_in_place, "changed its argument `cov0` in place"),
    ("path_covariance: complex answer", "check_path_covariance", lambda c, t: info.path_covariance(c, t) + 1e-3j, "is complex"),
    ("path_covariance: complex dtype, imaginary part 0", "check_path_covariance", lambda c, t: info.path_covariance(c, t).astype(complex), "is complex"),
    ("path_covariance: NaN answer", "check_path_covariance", lambda c, t: np.full((5, 5), np.nan), "NaN"),
    ("path_covariance: inf in the answer", "check_path_covariance", _pc_one_inf, "inf"),
    ("path_covariance: returns None", "check_path_covariance", lambda c, t: None, "None"),
    ("path_covariance: returns text", "check_path_covariance", lambda c, t: "Sigma_t", "numbers"),
    ("path_covariance: raises", "check_path_covariance", _raises(ValueError("boom")), "raised ValueError"),
    ("gaussian_cmi: right answer", "check_gaussian_cmi", info.gaussian_cmi, "pass"),
    ("gaussian_cmi: right answer (log-determinants)", "check_gaussian_cmi", info.gaussian_cmi_logdet, "pass"),
    ("gaussian_cmi: adds to cov in place", "check_gaussian_cmi", _cmi_adds_to_cov, "changed its argument `cov` in place"),
    ("gaussian_cmi: clears B in place", "check_gaussian_cmi", _cmi_clears_b, "changed its argument `B` in place"),
    ("gaussian_cmi: moves an index of C into A", "check_gaussian_cmi", _cmi_moves_c_into_a, "changed its argument `A` in place"),
    ("gaussian_cmi: complex scalar, imaginary part 0", "check_gaussian_cmi", lambda *a: complex(info.gaussian_cmi(*a)), "is complex"),
    ("gaussian_cmi: complex scalar", "check_gaussian_cmi", lambda *a: info.gaussian_cmi(*a) + 1e-3j, "is complex"),
    ("gaussian_cmi: NaN", "check_gaussian_cmi", lambda *a: float("nan"), "NaN"),
    ("gaussian_cmi: inf", "check_gaussian_cmi", lambda *a: float("inf"), "inf"),
    ("gaussian_cmi: returns None", "check_gaussian_cmi", lambda *a: None, "None"),
    ("gaussian_cmi: raises", "check_gaussian_cmi", lambda *a: 1 / 0, "raised ZeroDivisionError"),
    ("gaussian_cmi: crashes when B is empty", "check_gaussian_cmi", _cmi_float_index, "with B empty"),
    ("gaussian_cmi: NaN when B is empty", "check_gaussian_cmi", _cmi_nan_without_b, "with B empty"),
    ("gaussian_cmi: 0 when B is empty", "check_gaussian_cmi", _cmi_zero_without_b, "with B empty"),
    ("cmi_along_path: right answer", "check_cmi_along_path", _path_right, "pass"),
    ("cmi_along_path: overwrites cov0", "check_cmi_along_path", _path_overwrites_cov0, "changed its argument `cov0` in place"),
    ("cmi_along_path: clears B", "check_cmi_along_path", _path_clears_b, "changed its argument `B` in place"),
    ("cmi_along_path: overwrites ts", "check_cmi_along_path", _path_overwrites_ts, "changed its argument `ts` in place"),
    ("cmi_along_path: complex answer", "check_cmi_along_path", lambda *a: [v + 1e-3j for v in _path_right(*a)], "is complex"),
    ("cmi_along_path: NaN at t = 1", "check_cmi_along_path", _path_last_nan, "NaN"),
    ("cmi_along_path: returns None", "check_cmi_along_path", lambda *a: None, "None"),
    ("cmi_along_path: raises", "check_cmi_along_path", _raises(RuntimeError("boom")), "raised RuntimeError"),
    # assignment 2
    ("footprint: right answer", "check_footprint", right_footprint, "pass"),
    ("footprint: returns None", "check_footprint", lambda m, p, n, t: None, "None"),
    ("footprint: zeroes the model's weights in place", "check_footprint", _fp_zeroes_the_model, "changed the weights"),
    ("footprint: complex mask", "check_footprint", lambda m, p, n, t: right_footprint(m, p, n, t).to(torch.complex64), "is complex"),
    ("footprint: NaN mask", "check_footprint", lambda m, p, n, t: torch.full((n, n), float("nan")), "NaN"),
    ("footprint: the gradient, not a mask", "check_footprint", _fp_gradient, "the gradient itself"),
    ("footprint: returns text", "check_footprint", lambda m, p, n, t: "mask", "boolean mask"),
    ("footprint: raises", "check_footprint", _raises(IndexError("boom")), "raised IndexError"),
    ("local_model: right answer", "check_local_model", lambda r: models.LocalDenoiser(radius=r, channels=8), "pass"),
    ("local_model: float64-only model", "check_local_model", lambda r: models.LocalDenoiser(radius=r, channels=4).double(), "float64 images but not on float32"),
    ("local_model: float32-only model", "check_local_model", _local("float32 only"), "fails on a float64 copy"),
    ("local_model: works at batch size 2 only", "check_local_model", _local("batch 2 only"), "fails on a single image (batch size 1)"),
    ("local_model: crashes at batch size 2", "check_local_model", _local("batch 1 only"), "fails on a batch of 2"),
    ("local_model: NaN output", "check_local_model", _local("nan"), "contains NaN"),
    ("local_model: inf output", "check_local_model", _local("inf"), "contains inf"),
    ("local_model: complex output", "check_local_model", _local("complex"), "is complex"),
    ("local_model: integer output", "check_local_model", _local("integer"), "must be floating point"),
    ("local_model: forward returns None", "check_local_model", _local("None"), "forget to `return`"),
    ("local_model: changes x in place", "check_local_model", _local("x in place"), "changed its argument `x` in place"),
    ("local_model: make_model returns None", "check_local_model", lambda r: None, "None"),
    ("local_model: make_model raises", "check_local_model", _raises(TypeError("boom")), "raised TypeError"),
    ("footprint_radius: right answer", "check_footprint_radius", locality.footprint_radius, "pass"),
    ("footprint_radius: clears the mask in place", "check_footprint_radius", _rad_clears_mask, "changed its argument `mask` in place"),
    ("footprint_radius: complex scalar", "check_footprint_radius", lambda m, p: complex(locality.footprint_radius(m, p)), "is complex"),
    ("footprint_radius: NaN", "check_footprint_radius", lambda m, p: float("nan"), "NaN"),
    ("footprint_radius: inf", "check_footprint_radius", lambda m, p: float("inf"), "inf"),
    ("footprint_radius: returns None", "check_footprint_radius", lambda m, p: None, "None"),
    ("footprint_radius: raises", "check_footprint_radius", _raises(ValueError("boom")), "raised ValueError"),
    # assignment 3
    ("plugin_cmi: right answer", "check_plugin_cmi", plugin_right, "pass"),
    ("plugin_cmi: overwrites half of samples", "check_plugin_cmi", _plugin_duplicates_half, "changed its argument `samples` in place"),
    ("plugin_cmi: complex estimate", "check_plugin_cmi", lambda *a: (complex(plugin_right(*a)[0]), plugin_right(*a)[1]), "is complex"),
    ("plugin_cmi: NaN error bar", "check_plugin_cmi", lambda *a: (plugin_right(*a)[0], float("nan")), "NaN"),
    ("plugin_cmi: returns None", "check_plugin_cmi", lambda *a: None, "None"),
    ("plugin_cmi: raises", "check_plugin_cmi", _raises(ValueError("boom")), "raised ValueError"),
    ("markov_fit: right answer", "check_markov_fit", fit_right, "pass"),
    ("markov_fit: scales cmi_err in place", "check_markov_fit", _fit_scales_err, "changed its argument `cmi_err` in place"),
    ("markov_fit: complex xi", "check_markov_fit", lambda *a: (complex(fit_right(*a)[0]), fit_right(*a)[1]), "is complex"),
    ("markov_fit: NaN error", "check_markov_fit", lambda *a: (fit_right(*a)[0], float("nan")), "NaN"),
    ("markov_fit: returns None", "check_markov_fit", lambda *a: None, "None"),
    ("markov_fit: raises", "check_markov_fit", _raises(np.linalg.LinAlgError("singular")), "raised LinAlgError"),
    ("markov_length: right answer", "check_markov_length", measure, "pass"),
    ("markov_length: overwrites half of samples", "check_markov_length", _measure_duplicates_half, "changed its argument `samples` in place"),
    ("markov_length: complex xi", "check_markov_length", lambda *a: (complex(measure(*a)[0]),) + measure(*a)[1:], "is complex"),
    ("markov_length: NaN estimate", "check_markov_length", _measure_nan_cmi, "NaN"),
    ("markov_length: returns None", "check_markov_length", lambda *a: None, "None"),
    ("markov_length: raises", "check_markov_length", _raises(ValueError("boom")), "raised ValueError"),
]


def _run_check(module, check, student) -> str:
    """Run one check of ``module`` (a version of localdiff_lib.grading) on ``student``; return what it printed."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        if check == "check_markov_length":
            module.check_markov_length(student, _chain_samples(), _regions, np.arange(1, 7), 20, RHO, T)
        elif check == "check_local_model":
            module.check_local_model(student, radii=(1, 2))
        else:
            getattr(module, check)(student)
    return printed.getvalue()


def probe_outcome(module, check, student, expected) -> str:
    """How one probe case ends with ``module``: right, refused a right answer, passed wrongly, raw exception,
    clear GradingError (the expected fragment is in it, ignoring case and backticks) or unclear GradingError."""
    try:
        _run_check(module, check, student)
    except module.GradingError as exc:
        if expected == "pass":
            return "refused a right answer"
        plain = str.maketrans("", "", "`")
        clear = expected.translate(plain).lower() in str(exc).translate(plain).lower()
        return "clear GradingError" if clear else "unclear GradingError"
    except Exception:
        return "raw exception"
    return "right answer passed" if expected == "pass" else "passed wrongly"


@pytest.mark.parametrize("case, check, student, expected", PROBE, ids=[row[0] for row in PROBE])
def test_probe(case, check, student, expected):
    if expected == "pass":
        assert _run_check(grading, check, student).startswith("\u2713")
    else:
        fails_with(lambda f: _run_check(grading, check, f), student, expected)


def test_every_check_is_probed():
    assert {row[1] for row in PROBE} == {name for name in grading.__all__ if name.startswith("check_")} - {"check_value"}


if __name__ == "__main__":   # python tests/lib/test_grading.py [path/to/grading.py]: the probe's counts
    import collections
    import importlib.util
    import warnings

    module = grading
    if len(sys.argv) > 1:
        spec = importlib.util.spec_from_file_location("localdiff_lib._probed_grading", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    warnings.simplefilter("ignore")
    counts = collections.Counter()
    for case, check, student, expected in PROBE:
        outcome = probe_outcome(module, check, student, expected)
        counts[outcome] += 1
        print(f"{outcome:24s} {case}")
    print(f"\n{len(PROBE)} cases, grader {sys.argv[1] if len(sys.argv) > 1 else module.__file__}:")
    for outcome, n in counts.most_common():
        print(f"  {n:3d} {outcome}")
