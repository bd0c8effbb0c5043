"""Autograder checks for the course's assignments (``book/assignments/``): plain Python, no services.

Each ``check_*`` function calls a student's function on cases whose answers the library computes
(:mod:`localdiff_lib.info`, :mod:`localdiff_lib.locality`, :mod:`localdiff_lib.markov`), prints one line
when everything agrees, and otherwise raises :class:`GradingError` (an ``AssertionError``) whose message
names the case, gives the student's number and the expected one with its tolerance, and says the most
likely cause (``"did you use the covariance at time t, (1-t)^2 Sigma_0 + t^2 I?"``). A function that is
still the generated stub (it raises ``NotImplementedError``) gets its own message. It runs wherever the
library imports (Colab included): nothing is sent anywhere.

Assignments: "The exact CMI of a Gaussian field" (``check_path_covariance``, ``check_gaussian_cmi``,
``check_cmi_along_path``), "A strictly local denoiser and its receptive field" (``check_footprint``,
``check_local_model``, ``check_footprint_radius``), "Estimating a Markov length with error bars"
(``check_plugin_cmi``, ``check_markov_fit``, ``check_markov_length``).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = [
    "GradingError",
    "check_value",
    "check_path_covariance",
    "check_gaussian_cmi",
    "check_cmi_along_path",
    "check_footprint",
    "check_local_model",
    "check_footprint_radius",
    "check_plugin_cmi",
    "check_markov_fit",
    "check_markov_length",
]

PASS = "\u2713"


class GradingError(AssertionError):
    """A check failed. The message says which case, what was expected, and what to look at."""


def _fail(msg: str):
    raise GradingError(msg)


def _call(fn: Callable, name: str, *args, **kwargs):
    """Call the student's ``fn``; a stub or a crash becomes a :class:`GradingError` that says so."""
    if not callable(fn):
        _fail(f"`{name}` must be a function (or class); got {type(fn).__name__}. Pass the function itself, "
              f"without calling it: check(`{name}`), not check(`{name}(...)`).")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        _fail(f"`{name}` is not written yet: it still raises NotImplementedError. Replace the line "
              f"`raise NotImplementedError(...)` in it by your code, run that cell, then run this check again.")
    except GradingError:
        raise
    except Exception as exc:  # the student's code crashed: show where and why
        _fail(f"`{name}` raised {type(exc).__name__}: {exc}")


def _float(value, what: str) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            _fail(f"{what} must be a single number; got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        _fail(f"{what} must be a single number; got {type(value).__name__} {np.shape(value)}")
    x = float(arr.reshape(()))
    if not math.isfinite(x):
        _fail(f"{what} is {x}: it must be a finite number")
    return x


def _array(value, what: str, shape: tuple | None = None) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(f"{what} must be an array of numbers; got {type(value).__name__}")
    if shape is not None and arr.shape != tuple(shape):
        _fail(f"{what} must have shape {tuple(shape)}; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        _fail(f"{what} contains NaN or inf")
    return arr


def _close(got: float, expected: float, tol: float) -> bool:
    return abs(got - expected) <= tol


def check_value(name: str, got, expected: float, tol: float, hint: str = "") -> str:
    """Compare one number with the expected one: ``|got - expected| <= tol``, else a :class:`GradingError`."""
    g = _float(got, name)
    if not _close(g, expected, tol):
        _fail(f"{name} is {g:.6g}, expected {expected:.6g} \u00b1 {tol:.1g}" + (f": {hint}" if hint else ""))
    msg = f"{PASS} {name} = {g:.6g} (expected {expected:.6g} \u00b1 {tol:.1g})"
    print(msg)
    return msg


# --------------------------------------------------------------------------------------------------
# Assignment: the exact CMI of a Gaussian field
# --------------------------------------------------------------------------------------------------

def _random_cov(d: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    M = g.normal(size=(d, d))
    return M @ M.T / d + 0.3 * np.eye(d)


def check_path_covariance(fn: Callable) -> str:
    """``fn(cov0, t)`` must return ``(1 - t)^2 cov0 + t^2 I`` (reference: ``info.path_covariance``)."""
    from . import info

    cov0 = _random_cov(5, seed=1)
    for t in (0.0, 0.3, 0.8, 1.0):
        before = cov0.copy()
        got = _array(_call(fn, "path_covariance", cov0, t), f"path_covariance(cov0, t={t})", cov0.shape)
        if not np.array_equal(cov0, before):
            _fail("path_covariance changed its argument cov0 in place; return a new matrix instead")
        expected = info.path_covariance(cov0, t)
        err = float(np.abs(got - expected).max())
        if err > 1e-12:
            eye = np.eye(5)
            guesses = {
                "you mixed variances linearly, (1-t) Sigma_0 + t I; X_t = (1-t) X_0 + t Z scales the "
                "covariance of X_0 by (1-t)^2 and adds t^2 I": (1 - t) * cov0 + t * eye,
                "the noise term is t Z, so it adds t^2 I, not t I": (1 - t) ** 2 * cov0 + t * eye,
                "the data term is (1-t) X_0, so Sigma_0 is multiplied by (1-t)^2": cov0 + t**2 * eye,
                "you forgot the noise: X_t = (1-t) X_0 + t Z adds t^2 I": (1 - t) ** 2 * cov0,
                "t = 0 is data and t = 1 is noise on this path, not the other way round": t**2 * cov0 + (1 - t) ** 2 * eye,
            }
            hint = next((h for h, m in guesses.items() if np.abs(got - m).max() < 1e-9),
                        "expected (1-t)^2 Sigma_0 + t^2 I")
            _fail(f"path_covariance(cov0, t={t}) is off by up to {err:.3g} from (1-t)^2 Sigma_0 + t^2 I: {hint}.")
    msg = f"{PASS} path_covariance agrees with (1-t)^2 Sigma_0 + t^2 I at t = 0, 0.3, 0.8, 1"
    print(msg)
    return msg


def _cmi_cases():
    """(description, cov, A, B, C) cases with exact answers from ``info.gaussian_cmi``."""
    from . import info

    cases = []
    cov = _random_cov(6, seed=2)
    cases.append(("a random 6-dimensional covariance with A=[0], B=[1,2], C=[3,4,5]", cov, [0], [1, 2], [3, 4, 5]))
    field = info.gmrf_covariance((7, 7), kappa=0.5)
    for t, r in ((0.3, 1), (0.3, 2), (0.6, 1)):
        A, B, C = info.regions((7, 7), None, r)
        cases.append((f"the 7x7 Markov field (kappa=0.5) at t={t}, buffer radius r={r}",
                      info.path_covariance(field, t), A, B, C))
    A, _, C = info.regions((7, 7), None, 1)
    cases.append(("the 7x7 Markov field at t=0.3 with an empty buffer B=[] (then it is I(A:C))",
                  info.path_covariance(field, 0.3), A, [], C))
    return cases


def _diagnose_cmi(got: float, cov, A, B, C, expected: float) -> str:
    from . import info

    ab = list(A) + list(B)
    candidates = [
        (2 * expected, "you forgot the factor 1/2 in front of the log-determinants"),
        (expected / math.log(2), "that is the answer in bits (log base 2); the course uses nats (natural log)"),
        (-expected, "the sign is flipped: I(A:C|B) = 1/2 [logdet S_AB + logdet S_BC - logdet S_B - logdet S_ABC]"),
        (info.gaussian_mi(cov, A, C) if B else None, "that is I(A:C): the buffer B was ignored"),
        (info.gaussian_mi(cov, A, list(B) + list(C)) if B else None, "that is I(A:BC), not I(A:C|B)"),
        (info.gaussian_mi(cov, ab, C) if B else None, "that is I(AB:C), not I(A:C|B)"),
    ]
    for value, hint in candidates:
        if value is not None and abs(got - value) <= 1e-6 * max(1.0, abs(value)) and abs(value - expected) > 1e-9:
            return hint
    return ("check the four index sets (S_AB = cov[AB][:, AB] with AB = A + B, ...) and use "
            "np.linalg.slogdet rather than log(det) (det under- or overflows for large matrices)")


def check_gaussian_cmi(fn: Callable) -> str:
    """``fn(cov, A, B, C)`` must return ``I(A:C|B)`` in nats (reference: ``info.gaussian_cmi``)."""
    from . import info

    cases = _cmi_cases()
    for what, cov, A, B, C in cases:
        got = _float(_call(fn, "gaussian_cmi", cov, A, B, C), f"gaussian_cmi for {what}")
        expected = info.gaussian_cmi(cov, A, B, C)
        tol = 1e-8 + 1e-8 * abs(expected)
        if not _close(got, expected, tol):
            hint = _diagnose_cmi(got, cov, A, B, C, expected)
            if not B and not math.isfinite(got):
                hint = "with B empty, logdet S_B is the log-determinant of a 0x0 matrix, which is 0"
            _fail(f"your I(A:C|B) for {what} is {got:.6g} nats, expected {expected:.6g} \u00b1 {tol:.1g}: {hint}.")
    msg = f"{PASS} gaussian_cmi agrees with the exact CMI on {len(cases)} cases (to 1e-8 nats)"
    print(msg)
    return msg


def check_cmi_along_path(fn: Callable) -> str:
    """``fn(cov0, A, B, C, ts)`` must return ``[I(A:C|B) at time t for t in ts]`` for data covariance ``cov0``."""
    from . import info

    field = info.gmrf_covariance((9, 9), kappa=0.5)
    ts = np.linspace(0.0, 1.0, 11)
    for r in (1, 2):
        A, B, C = info.regions((9, 9), None, r)
        got = _array(_call(fn, "cmi_along_path", field, A, B, C, ts), f"cmi_along_path(..., r={r})", ts.shape)
        expected = np.array([info.gaussian_cmi(info.path_covariance(field, t), A, B, C) if t < 1 else 0.0 for t in ts])
        err = np.abs(got - expected)
        k = int(err.argmax())
        if err[k] > 1e-8:
            t = ts[k]
            wrong = {
                "did you use the covariance at time t, (1-t)^2 Sigma_0 + t^2 I, rather than Sigma_0?":
                    [info.gaussian_cmi(field, A, B, C)] * len(ts),
                "the covariance at time t is (1-t)^2 Sigma_0 + t^2 I, not (1-t) Sigma_0 + t I":
                    [info.gaussian_cmi((1 - s) * field + s * np.eye(81), A, B, C) if s < 1 else 0.0 for s in ts],
            }
            hint = next((h for h, w in wrong.items() if np.abs(got - np.array(w)).max() < 1e-6), None)
            if hint is None and t == 1.0:
                hint = "at t = 1 the image is pure noise, independent across pixels: the CMI is exactly 0"
            if hint is None and t == 0.0:
                hint = "at t = 0 the field is Markov and B separates A from C, so the CMI is exactly 0"
            _fail(f"your I(A:C|B) for r={r} at t={t:.1f} is {got[k]:.4g} nats, expected {expected[k]:.4g} "
                  f"\u00b1 1e-8: {hint or 'compare with your gaussian_cmi at path_covariance(cov0, t)'}")
    msg = f"{PASS} cmi_along_path agrees with the exact CMI at t = 0, 0.1, ..., 1 for r = 1, 2"
    print(msg)
    return msg


# --------------------------------------------------------------------------------------------------
# Assignment: a strictly local denoiser and its receptive field
# --------------------------------------------------------------------------------------------------

def _where(mask: torch.Tensor, limit: int = 4) -> str:
    idx = [tuple(int(v) for v in p) for p in torch.nonzero(mask)[:limit]]
    return ", ".join(map(str, idx)) + (" ..." if int(mask.sum()) > limit else "")


def _reference_models():
    from . import models
    from torch import nn

    class _GroupNormNet(nn.Module):
        """Two 3x3 convolutions with a GroupNorm between them (the paper's kind of 'local' block)."""

        def __init__(self):
            super().__init__()
            self.c1, self.n1 = nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(2, 8)
            self.c2 = nn.Conv2d(8, 1, 3, padding=1)

        def forward(self, x, t):
            return self.c2(torch.relu(self.n1(self.c1(x))))

    with torch.random.fork_rng():     # fixed weights, and the student's random state is left alone
        torch.manual_seed(0)
        return [("LocalDenoiser(radius=2)", models.LocalDenoiser(radius=2, channels=8)),
                ("LocalDenoiser(radius=4)", models.LocalDenoiser(radius=4, channels=8)),
                ("a two-convolution network with GroupNorm", _GroupNormNet())]


def check_footprint(fn: Callable) -> str:
    """``fn(model, pixel, image_size, t)`` must return the boolean gradient footprint of one output pixel.

    Reference: ``locality.gradient_footprint`` on a local and a GroupNorm network, at an interior and a corner pixel.
    """
    from . import locality

    n = 0
    for what, model in _reference_models():
        for pixel in ((10, 10), (0, 0)):
            got = _call(fn, "footprint", model, pixel, 20, 0.5)
            if not torch.is_tensor(got):
                got = torch.as_tensor(np.asarray(got))
            if tuple(got.shape) != (20, 20):
                _fail(f"footprint(model, {pixel}, 20, 0.5) must be a (20, 20) mask, one entry per input pixel; got shape "
                      f"{tuple(got.shape)}" + (" (drop the batch and channel axes: grad[0, 0])" if got.ndim == 4 else ""))
            got = got.to(torch.bool) if got.dtype == torch.bool else got != 0
            expected = locality.gradient_footprint(model, pixel, 20, 0.5)
            if not torch.equal(got, expected):
                missing, extra = expected & ~got, got & ~expected
                hint = ("you marked every pixel: did you differentiate out.sum() instead of the single output "
                        "out[0, 0, i, j]?" if bool(got.all()) and not bool(expected.all()) else
                        "did you test `grad != 0`? A threshold such as `abs(grad) > 1e-3` drops small but real "
                        "dependences; use float64 and a random input" if int(missing.sum()) and not int(extra.sum()) else
                        "did you take the gradient at (row, column) = pixel, i.e. out[0, 0, pixel[0], pixel[1]]?")
                _fail(f"your footprint of output pixel {pixel} of {what} has {int(got.sum())} pixels, the gradient "
                      f"footprint has {int(expected.sum())} (missing: {_where(missing) or 'none'}; extra: "
                      f"{_where(extra) or 'none'}): {hint}")
            n += 1
    msg = f"{PASS} footprint agrees with the gradient footprint on {n} (model, pixel) cases"
    print(msg)
    return msg


def check_local_model(make_model: Callable, radii=(1, 2, 3), image_size: int = 20) -> str:
    """``make_model(radius)`` must build a strictly local denoiser of receptive-field radius exactly ``radius``.

    For each radius: the output has the input's shape; the footprint of an interior pixel is exactly the full
    ``(2r+1)^2`` square; every footprint at the corners and edges stays within Chebyshev distance ``r``; and the
    output depends on ``t``. Reference: ``locality.gradient_footprint`` and ``locality.window``.
    """
    from . import locality

    with torch.random.fork_rng():     # the student's random state is left alone
        torch.manual_seed(0)
        return _check_local_model(make_model, radii, image_size, locality)


def _check_local_model(make_model, radii, image_size, locality) -> str:
    for r in radii:
        model = _call(make_model, "make_model", r)
        if not isinstance(model, torch.nn.Module):
            _fail(f"make_model({r}) must return a torch.nn.Module; got {type(model).__name__}")
        x = torch.rand(2, 1, image_size, image_size)
        out = _call(model, f"make_model({r})(x, t)", x, torch.full((2,), 0.5))
        if not torch.is_tensor(out) or out.shape != x.shape:
            _fail(f"make_model({r}) maps images of shape {tuple(x.shape)} to "
                  f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__}; it must keep the shape "
                  "(use padding=1 on every 3x3 convolution)")
        for pixel in ((image_size // 2, image_size // 2), (0, 0), (image_size - 1, 3)):
            fp = locality.gradient_footprint(model, pixel, image_size, 0.5)
            radius = locality.footprint_radius(fp, pixel)
            if radius > r:
                far = fp & ~locality.window(image_size, pixel, r)
                hint = ("every input pixel matters: a normalisation over the whole image (GroupNorm, LayerNorm, "
                        "InstanceNorm), a pooling or a linear layer mixes all pixels" if bool(fp.all()) else
                        "each 3x3 convolution adds 1 to the radius: use r of them and make every other layer 1x1")
                _fail(f"your model for radius={r}: output pixel {pixel} depends on input pixel(s) {_where(far)}, "
                      f"{radius} pixels away, but the receptive-field radius must be {r}: {hint}.")
            if pixel == (image_size // 2, image_size // 2):
                full = locality.window(image_size, pixel, r)
                if radius < r:
                    _fail(f"your model for radius={r} only sees {radius} pixel(s) around {pixel}: it needs r = {r} "
                          "3x3 convolutions in sequence (each adds exactly 1)")
                if not torch.equal(fp, full):
                    _fail(f"your model for radius={r} ignores {_where(full & ~fp)} inside its (2r+1)^2 window at "
                          f"{pixel}: a dilated or strided convolution skips pixels; use stride 1 and dilation 1")
        out2 = _call(model, f"make_model({r})(x, t)", x, torch.full((2,), 0.9))
        if torch.allclose(out, out2):
            _fail(f"your model for radius={r} gives the same output at t=0.5 and t=0.9: a denoiser must use t "
                  "(e.g. add a per-channel scale and shift computed from t, as FiLM does)")
    msg = f"{PASS} make_model builds strictly local denoisers of receptive-field radius exactly {', '.join(map(str, radii))}"
    print(msg)
    return msg


def check_footprint_radius(fn: Callable) -> str:
    """``fn(mask, pixel)`` must return the Chebyshev radius of a footprint (reference: ``locality.footprint_radius``)."""
    from . import locality

    cases = []
    for what, model in _reference_models():
        for pixel in ((10, 10), (0, 0), (19, 4)):
            cases.append((f"the footprint of {what} at pixel {pixel}", locality.gradient_footprint(model, pixel, 20, 0.5), pixel))
    lopsided = torch.zeros(20, 20, dtype=torch.bool)
    lopsided[10, 10] = lopsided[12, 4] = True
    cases.append(("a footprint with pixels (10, 10) and (12, 4)", lopsided, (10, 10)))
    cases.append(("an empty footprint", torch.zeros(20, 20, dtype=torch.bool), (10, 10)))
    for what, mask, pixel in cases:
        got = _float(_call(fn, "chebyshev_radius", mask.clone(), pixel), f"chebyshev_radius for {what}")
        expected = locality.footprint_radius(mask, pixel)
        if got != expected:
            rows, cols = torch.nonzero(mask, as_tuple=True)
            euclid = float(((rows - pixel[0]) ** 2 + (cols - pixel[1]) ** 2).float().sqrt().max()) if rows.numel() else None
            hint = ("an empty footprint has radius -1 by convention (the output depends on no input)" if expected == -1 else
                    "that is a Euclidean distance; the Chebyshev radius is max(|k - i|, |l - j|)"
                    if euclid is not None and abs(got - euclid) < 1e-6 else
                    "measure distances from `pixel`, not from the image centre or the corner, and take the largest "
                    "max(|k - i|, |l - j|) over all True entries")
            _fail(f"your radius of {what} is {got:g}, expected {expected}: {hint}")
    msg = f"{PASS} chebyshev_radius agrees with the library on {len(cases)} footprints"
    print(msg)
    return msg


# --------------------------------------------------------------------------------------------------
# Assignment: estimating a Markov length with error bars
# --------------------------------------------------------------------------------------------------

def _ar1_samples(n_sites: int, rho: float, t: float, n: int, seed: int) -> np.ndarray:
    from . import info

    cov = info.ar1_covariance(n_sites, rho, t=t)
    g = np.random.default_rng(seed)
    return g.multivariate_normal(np.zeros(n_sites), cov, size=n, method="cholesky")


def check_plugin_cmi(fn: Callable) -> str:
    """``fn(samples, A, B, C, n_boot, seed)`` must return ``(cmi, err)``: the Gaussian plug-in CMI and its bootstrap error.

    The estimate must equal ``info.gaussian_cmi`` of the sample covariance (to 1e-9); the error bar must be within
    a factor 2 of the estimator's real spread, measured here over fresh data sets.
    """
    from . import info

    n_sites, rho, t, n = 15, 0.8, 0.5, 2000
    A, B, C = info.regions((n_sites,), None, 2)
    x = _ar1_samples(n_sites, rho, t, n, seed=11)
    res = _call(fn, "plugin_cmi", x, A, B, C, 200, 0)
    if not (isinstance(res, (tuple, list)) and len(res) == 2):
        _fail(f"plugin_cmi must return a pair (cmi, err); got {type(res).__name__}")
    got, err = _float(res[0], "the plug-in CMI"), _float(res[1], "its error bar")
    expected = info.gaussian_cmi(np.cov(x, rowvar=False), A, B, C)
    if not _close(got, expected, 1e-9):
        hint = ("np.cov(samples) treats rows as variables: use np.cov(samples, rowvar=False) (samples are rows)"
                if x.shape[1] != x.shape[0] else "compute the sample covariance, then call your gaussian_cmi on it")
        _fail(f"your plug-in CMI for the noisy AR(1) chain (rho={rho}, t={t}, r=2, {n} samples) is {got:.6g} nats, "
              f"expected {expected:.6g} \u00b1 1e-9 (the exact CMI of the sample covariance): {hint}")
    spread = np.std([info.gaussian_cmi(np.cov(_ar1_samples(n_sites, rho, t, n, seed=100 + k), rowvar=False), A, B, C)
                     for k in range(100)])
    if not 0.5 * spread <= err <= 2.0 * spread:
        hint = ("too small: resample whole rows (samples) with replacement, recompute the CMI on each resample, "
                "and take the standard deviation of those values" if err < 0.5 * spread else
                "too large: the standard deviation of the bootstrap values is the error; do not multiply it by "
                "sqrt(n_boot) or add the values")
        _fail(f"your error bar {err:.3g} nats is not the plug-in estimator's spread over fresh data sets, "
              f"{spread:.3g} nats (accepted: {0.5 * spread:.3g} to {2 * spread:.3g}); it is {hint}")
    msg = f"{PASS} plugin_cmi = {got:.4g} \u00b1 {err:.2g} nats (spread over fresh data sets {spread:.2g})"
    print(msg)
    return msg


def check_markov_fit(fn: Callable) -> str:
    """``fn(r, cmi, cmi_err)`` must fit ``cmi ~ gamma exp(-r / xi)`` and return ``(xi, xi_err)``.

    Checked on synthetic decays with known ``xi`` (relative errors from 6% to 41%): the estimate agrees with
    ``markov.fit_markov_length`` (the course's reference fit), and over 300 noisy replicas the interval ``xi +- xi_err`` contains the truth
    between 55% and 80% of the time (a one-sigma interval should: 68%).
    """
    r = np.arange(1, 8, dtype=float)
    xi_true, gamma = 2.0, 0.5
    rel = 0.04 * np.exp(r / 3)          # relative errors grow as the CMI falls, as they do for real estimates
    g = np.random.default_rng(3)
    hits, n_rep = 0, 300
    for k in range(n_rep):
        cmi = gamma * np.exp(-r / xi_true) * np.exp(rel * g.normal(size=r.size))
        err = rel * cmi
        res = _call(fn, "fit_markov_length", r, cmi, err)
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            _fail(f"fit_markov_length must return a pair (xi, xi_err); got {type(res).__name__}")
        xi, xi_err = _float(res[0], "xi"), _float(res[1], "xi_err")
        if k == 0:
            from . import markov

            ref = markov.fit_markov_length(r, cmi, err)
            tol = 1e-6 * max(1.0, abs(ref.xi))
            if not _close(xi, ref.xi, tol):
                ratio = xi / ref.xi
                hint = ("xi = -1 / slope of log(CMI) against r; your sign is flipped" if _close(ratio, -1, 1e-3) else
                        "use the natural log: xi is in pixels for exp(-r/xi), not 10^(-r/xi)" if _close(ratio, math.log(10), 1e-3) or _close(ratio, 1 / math.log(10), 1e-3) else
                        "weight each point by 1/var of log(CMI), where the error of log(CMI) is err/CMI "
                        "(a weighted least-squares line through (r, log CMI))")
                _fail(f"your xi for a synthetic decay with xi=2 is {xi:.6g} px, the reference weighted fit gives "
                      f"{ref.xi:.6g} \u00b1 {tol:.1g}: {hint}")
            if not xi_err > 0:
                _fail(f"xi_err must be a positive error bar; got {xi_err}")
        hits += abs(xi - xi_true) <= xi_err
    coverage = hits / n_rep
    if not 0.55 <= coverage <= 0.80:
        hint = ("your error bars are too small: the error of the slope s is sqrt of the [1,1] entry of the inverse "
                "weighted normal matrix, and xi = -1/s has error err_s / s^2" if coverage < 0.55 else
                "your error bars are too large: a one-sigma error, not two or three")
        _fail(f"xi \u00b1 xi_err contains the true xi=2 in {coverage:.0%} of {n_rep} noisy replicas, expected about "
              f"68% (accepted 55% to 80%): {hint}")
    msg = f"{PASS} fit_markov_length matches the reference fit; its error bars cover the truth {coverage:.0%} of the time"
    print(msg)
    return msg


def check_markov_length(fn: Callable, samples, regions: Callable, radii, n_boot: int, rho: float, t: float):
    """Run the student's ``fn(samples, regions, radii, n_boot) -> (xi, xi_err, cmi, err, use)`` on the noisy AR(1)
    chain's samples and check it; return what ``fn`` returned.

    The estimates must be the plug-in CMI of the samples (``info.gaussian_cmi`` of the sample covariance), ``xi``
    the weighted fit of the radii marked in ``use`` (``markov.fit_markov_length``), and the result must agree with
    the exact ``info.ar1_markov_length(rho, t)``: ``|xi - xi_exact| <= 3 xi_err + 0.02 xi_exact``, with an
    informative error bar (``xi_err < 0.5 xi_exact``).
    """
    res = _call(fn, "measure_markov_length", samples, regions, radii, n_boot)
    from . import info, markov

    if not (isinstance(res, (tuple, list)) and len(res) == 5):
        _fail("measure_markov_length must return five things: (xi, xi_err, cmi, err, use)")
    x, e = _float(res[0], "xi"), _float(res[1], "xi_err")
    radii = np.asarray(radii)
    cmi, err = _array(res[2], "cmi", radii.shape), _array(res[3], "err", radii.shape)
    use = np.asarray(res[4])
    if use.shape != radii.shape or use.dtype != bool:
        _fail(f"use must be a boolean mask with one entry per radius, shape {radii.shape}; got {use.dtype} {use.shape}")
    cov = np.cov(np.asarray(samples), rowvar=False)
    for k, r in enumerate(radii):
        expected = info.gaussian_cmi(cov, *regions(int(r)))
        if not _close(cmi[k], expected, 1e-9):
            _fail(f"your CMI estimate at r={r} is {cmi[k]:.6g} nats, but the plug-in estimate of these samples is "
                  f"{expected:.6g}: compute it with plugin_cmi(samples, *regions(r), ...)")
    if use.sum() < 2:
        _fail(f"you fitted {int(use.sum())} radius/radii: a line needs at least two points (three to have a residual)")
    floor = [int(r) for r, c, s in zip(radii[use], cmi[use], err[use]) if c < 3 * s]
    if floor:
        _fail(f"the fit uses r = {floor}, whose estimates are within 3 error bars of zero: they measure the "
              "estimator's noise floor, not the decay; leave them out")
    ref = markov.fit_markov_length(radii[use], cmi[use], err[use])
    if not _close(x, ref.xi, 1e-6 * max(1.0, abs(ref.xi))):
        _fail(f"your xi {x:.6g} is not the weighted fit of the radii you marked in `use` ({ref.xi:.6g}): "
              "return the xi of fit_markov_length on exactly those points")
    exact = info.ar1_markov_length(rho, t)
    if not e > 0:
        _fail(f"xi_err must be a positive error bar; got {e}")
    if e >= 0.5 * exact:
        _fail(f"your error bar {e:.3g} sites is more than half the Markov length {exact:.3g}: use more samples, or "
              "fit only the radii where the CMI is well above its error bar")
    if abs(x - exact) > 3 * e + 0.02 * exact:
        hint = ("too long: radii whose estimates sit on the bias floor (about |A||C|/(2n) nats) flatten the decay; "
                "start the fit where the decay is exponential and stop before the floor" if x > exact else
                "too short: at r = 1 the decay is faster than exponential; start the fit at r >= 2")
        _fail(f"your Markov length of the noisy AR(1) chain (rho={rho}, t={t}) is {x:.4g} \u00b1 {e:.2g} sites, the "
              f"exact value is {exact:.4g}: {(x - exact) / e:+.1f} error bars away ({hint})")
    print(f"{PASS} xi = {x:.3g} \u00b1 {e:.2g} sites agrees with the exact Markov length {exact:.3g} "
          f"(fitted on r = {radii[use].tolist()})")
    return tuple(res)
