"""Autograder checks for the course's assignments (``book/assignments/``): plain Python, no services.

Each ``check_*`` function calls a student's function on cases whose answers the library computes
(:mod:`localdiff_lib.info`, :mod:`localdiff_lib.locality`, :mod:`localdiff_lib.markov`), prints one line
when everything agrees, and otherwise raises :class:`GradingError` (an ``AssertionError``) whose message
names the case, gives the student's number and the expected one with its tolerance, and says the most
likely cause (``"did you use the covariance at time t, (1-t)^2 Sigma_0 + t^2 I?"``). A function that is
still the generated stub (it raises ``NotImplementedError``) gets its own message. It runs wherever the
library imports (Colab included): nothing is sent anywhere.

Rules every check follows, so that an answer cannot pass by accident:

- the expected values are computed first, from the check's own objects; the student's function is called on
  deep copies of them (arrays, tensors, lists, models), and an argument it changed in place is reported;
- an answer must be finite real numbers (:func:`_real`, the one rule): ``None``, text, booleans, complex
  values (even with a zero imaginary part), NaN and inf are refused, each with its own message;
- every failure is a :class:`GradingError`: an exception raised by the student's code becomes one that names
  the exception, where it was raised and what the check was doing (the original is its ``__cause__``).

Assignments: "The exact CMI of a Gaussian field" (``check_path_covariance``, ``check_gaussian_cmi``,
``check_cmi_along_path``), "A strictly local denoiser and its receptive field" (``check_footprint``,
``check_local_model``, ``check_footprint_radius``), "Estimating a Markov length with error bars"
(``check_plugin_cmi``, ``check_markov_fit``, ``check_markov_length``).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import sysconfig
import traceback
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import info, locality, markov, models

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


# --------------------------------------------------------------------------------------------------
# Calling the student's code, and reading what it returned
# --------------------------------------------------------------------------------------------------

_LIBRARY_DIRS = tuple(os.path.normcase(os.path.abspath(p)) + os.sep for p in {
    os.path.dirname(np.__file__), os.path.dirname(torch.__file__), os.path.dirname(__file__),
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
})


def _is_library(filename: str) -> bool:
    path = os.path.normcase(os.path.abspath(filename))
    return path.startswith(_LIBRARY_DIRS) or "site-packages" in path or "dist-packages" in path


def _user_frame(exc: BaseException):
    """The innermost frame of ``exc``'s traceback that is the student's code (not numpy, torch, this library)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_library(f.filename)]
    return frames[-1] if frames else None


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where_raised(exc: BaseException) -> str:
    frame = _user_frame(exc)
    if frame is None:
        return ""
    line = (frame.line or "").strip()
    return f" (at line {frame.lineno} of {frame.name}" + (f": `{line}`)" if line else ")")


def _describe(value) -> str:
    """A short description of what a function returned, for messages."""
    if value is None:
        return "None"
    if torch.is_tensor(value):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    text = repr(value)
    return f"{type(value).__name__} " + (text if len(text) <= 40 else text[:37] + "...")


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.shape != b.shape:
        return False
    if a.dtype == torch.bool or b.dtype == torch.bool:
        return a.dtype == b.dtype and torch.equal(a, b)
    return bool(torch.allclose(a.to(torch.float64), b.to(torch.float64), rtol=0.0, atol=0.0, equal_nan=True))


def _same(a, b) -> bool:
    """Whether the copy ``b`` that the student's function received still equals the check's own ``a``.

    A model counts as unchanged when its parameters and buffers keep their values (``model.double()`` in
    place is allowed: it keeps them).
    """
    try:
        if isinstance(a, nn.Module):
            if not isinstance(b, nn.Module):
                return False
            sa, sb = a.state_dict(), b.state_dict()
            return sa.keys() == sb.keys() and all(_same_values(sa[k], sb[k]) for k in sa)
        if torch.is_tensor(a):
            return torch.is_tensor(b) and a.dtype == b.dtype and _same_values(a, b)
        if isinstance(a, np.ndarray):
            return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                    and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return type(a) is type(b) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        if callable(a):               # a function passed along (the notebook's `regions`): not data
            return True
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _changed_message(name: str, argname: str, value, doing: str) -> str:
    if isinstance(value, nn.Module):
        what = f"the weights of the model it was given (`{argname}`)"
        advice = ("change a copy, m = copy.deepcopy(model), never the model itself (converting it in place "
                  "with .double() is fine: that keeps its values)")
    elif torch.is_tensor(value):
        what = f"its argument `{argname}`"
        advice = "use operations that make a new tensor (x = x * 2, not x *= 2 or x.mul_(2))"
    else:
        what = f"its argument `{argname}`"
        advice = ("work on a copy (x = x.copy(), A = list(A)) or build new objects (A + B, not A += B or "
                  "A.extend(B))")
    return (f"`{name}` changed {what} in place" + (f" when the check called it {doing}" if doing else "")
            + ": a function must leave its inputs as it got them, because the caller may use them again "
            f"(the check gave it a copy, so the expected answer was not affected); {advice}")


def _copy(value):
    """A deep copy of an argument for the student's function (the object itself if it cannot be copied)."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _call(fn: Callable, name: str, *args, argnames: tuple = (), doing: str = "",
          on_error: Callable | None = None):
    """Call the student's ``fn`` on deep copies of ``args`` and return what it returned.

    A stub (``NotImplementedError`` raised by the student's own code) or any other exception becomes a
    :class:`GradingError` naming it, where it was raised and what the check was ``doing`` (``on_error(exc)``
    may add a specific hint); the original exception is its ``__cause__``. An argument (named in ``argnames``)
    that ``fn`` changed in place is reported.
    """
    if not callable(fn):
        _fail(f"`{name}` must be a function (or class); got {type(fn).__name__}. Pass the function itself, "
              f"without calling it: check(`{name}`), not check(`{name}(...)`).")
    passed = tuple(_copy(a) for a in args)
    try:
        result = fn(*passed)
    except GradingError:
        raise
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        if isinstance(exc, NotImplementedError) and not _is_library(frames[-1].filename):   # raised by their stub
            raise GradingError(
                f"`{name}` is not written yet: it still raises NotImplementedError. Replace the line "
                f"`raise NotImplementedError(...)` in it by your code, run that cell, then run this check "
                f"again.") from exc
        hint = None
        if on_error is not None:
            try:
                hint = on_error(exc)
            except Exception:
                hint = None
        raise GradingError(
            f"`{name}` raised {type(exc).__name__}: {_short(exc)}{_where_raised(exc)}"
            + (f" when the check called it {doing}" if doing else "") + (f": {hint}" if hint else "")) from exc
    for argname, before, after in zip(argnames, args, passed):
        if not _same(before, after):
            _fail(_changed_message(name, argname, before, doing))
    return result


def _graded(check: Callable) -> Callable:
    """Make sure a check fails only with a :class:`GradingError` (a last resort: each check validates first)."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except GradingError:
            raise
        except Exception as exc:
            raise GradingError(
                f"{check.__name__} could not finish checking this answer: {type(exc).__name__}: {_short(exc)}. "
                "Your function returned something of a kind the check did not expect; compare it with what "
                "the assignment asks for (if it looks right, report this message to the course)") from exc

    return wrapper


_COMPLEX_HINT = ("a complex number usually comes from the log or square root of a negative number, or from "
                 "np.linalg.eig/eigvals (use eigvalsh for a symmetric matrix); compute in real arithmetic")


def _numpy(value):
    """A tensor as a NumPy array (detached, on the CPU; float16/bfloat16 widened), anything else as it is."""
    if not torch.is_tensor(value):
        return value
    value = value.detach().cpu()
    return (value.to(torch.float64) if value.is_floating_point() else value).numpy()


def _real(value, what: str, *, shape: tuple | None = None, scalar: bool = False, hint: str = "") -> np.ndarray:
    """The one rule for a numeric answer: finite real numbers, returned as a float64 array.

    Refuses, each with a :class:`GradingError` that says which: ``None`` (a forgotten ``return``), anything
    that is not numbers (text, booleans, objects), complex values (even with a zero imaginary part), more
    than one number where ``scalar``, a shape other than ``shape``, and NaN or inf. ``hint`` is added to
    the messages about complex and non-finite values.
    """
    more = f"; {hint}" if hint else ""
    kind = "a single number" if scalar else "numbers"
    if value is None:
        _fail(f"{what} is None: did your function forget to `return` its result?")
    value = _numpy(value)
    if isinstance(value, (list, tuple)):        # e.g. a list of 0-d tensors
        value = [_numpy(v) for v in value]
    try:
        arr = np.asarray(value)
    except Exception:
        _fail(f"{what} must be {kind}; got {_describe(value)}")
    if arr.dtype == object:                     # e.g. a list mixing tensors and floats: check each entry
        entries = [_real(v, f"an entry of {what}", scalar=True, hint=hint).item() for v in arr.ravel()]
        arr = np.array(entries, dtype=np.float64).reshape(arr.shape)
    if np.iscomplexobj(arr):
        imag = np.abs(np.imag(arr))
        _fail(f"{what} is complex, not real (" + (f"an imaginary part of {imag.max():.3g}" if imag.max() > 0 else
              "a complex dtype, all imaginary parts 0") + f"): {_COMPLEX_HINT}{more}")
    if arr.dtype.kind not in "iuf":
        names = {"b": "booleans (True/False)", "U": "text", "S": "bytes", "O": "objects"}
        _fail(f"{what} must be {kind}; got {names.get(arr.dtype.kind, str(arr.dtype))}: {_describe(value)}")
    if scalar and arr.size != 1:
        _fail(f"{what} must be a single number; got {_describe(value)}")
    if shape is not None and arr.shape != tuple(shape):
        _fail(f"{what} must have shape {tuple(shape)}; got {arr.shape}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        if arr.size == 1:
            x = float(arr.reshape(-1)[0])
            _fail(f"{what} is {'NaN' if math.isnan(x) else x}: it must be a finite real number{more}")
        kinds = " and ".join(k for k, n in (("NaN", np.isnan(arr).sum()), ("inf", np.isinf(arr).sum())) if n)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(f"{what} contains {kinds} ({int(bad.sum())} of {arr.size} entries, the first at index "
              f"{first[0] if len(first) == 1 else first}): every entry must be a finite real number{more}")
    return arr


def _float(value, what: str, hint: str = "") -> float:
    return float(_real(value, what, scalar=True, hint=hint).reshape(-1)[0])


def _array(value, what: str, shape: tuple | None = None, hint: str = "") -> np.ndarray:
    return _real(value, what, shape=shape, hint=hint)


def _tuple(value, name: str, parts: str, n: int):
    """The student's result as a tuple of ``n`` things (named ``parts``, e.g. ``"(cmi, err)"``)."""
    if isinstance(value, (tuple, list)) and len(value) == n:
        return tuple(value)
    count = {2: "a pair", 5: "five things"}.get(n, f"{n} things")
    _fail(f"{name} must return {count} {parts}; got {_describe(value)}"
          + (": did it forget to `return` them?" if value is None else ""))


def _mask(value, what: str, shape: tuple) -> torch.Tensor:
    """A boolean mask of ``shape``: a bool tensor/array, or numbers that are all 0 or 1."""
    if value is None:
        _fail(f"{what} is None: did your function forget to `return` the mask?")
    value = _numpy(value)
    try:
        arr = np.asarray(value)
    except Exception:
        arr = np.asarray(None)
    if arr.dtype.kind == "c":
        _fail(f"{what} is complex: a footprint is a boolean mask, True where the gradient is non-zero "
              "(grad[0, 0] != 0)")
    if arr.dtype.kind not in "biuf":
        _fail(f"{what} must be a boolean mask of shape {shape} (a tensor such as grad[0, 0] != 0); got "
              f"{_describe(value)}")
    if arr.shape != tuple(shape):
        _fail(f"{what} must be a {tuple(shape)} mask, one entry per input pixel; got shape {arr.shape}"
              + (" (drop the batch and channel axes: grad[0, 0])" if arr.ndim == 4 else ""))
    if arr.dtype.kind != "b":
        if not np.isfinite(arr).all():
            _fail(f"{what} contains NaN or inf: a footprint is True/False per input pixel; a NaN gradient means "
                  "the model's output was not finite at your input")
        odd = arr[(arr != 0) & (arr != 1)]
        if odd.size:
            _fail(f"{what} must be a boolean mask (True where the gradient is non-zero); got {arr.dtype} values "
                  f"such as {float(odd.flat[0]):.3g}: did you return the gradient itself? Return grad[0, 0] != 0")
    return torch.from_numpy(np.array(arr != 0))


def _close(got: float, expected: float, tol: float) -> bool:
    return abs(got - expected) <= tol


@_graded
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


@_graded
def check_path_covariance(fn: Callable) -> str:
    """``fn(cov0, t)`` must return ``(1 - t)^2 cov0 + t^2 I`` (reference: ``info.path_covariance``)."""
    cov0 = _random_cov(5, seed=1)
    ts = (0.0, 0.3, 0.8, 1.0)
    expected_at = {t: info.path_covariance(cov0.copy(), t) for t in ts}
    for t in ts:
        got = _array(_call(fn, "path_covariance", cov0, t, argnames=("cov0", "t"),
                           doing=f"on a random 5x5 covariance at t={t}"),
                     f"path_covariance(cov0, t={t})", cov0.shape)
        expected = expected_at[t]
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


_EMPTY_B_HINT = ("with B empty, S_B is a 0x0 matrix whose log-determinant is 0 (np.linalg.slogdet gives sign 1, "
                 "logdet 0) and I(A:C|B) is I(A:C); note that np.array([]) is a float array, which cannot index: "
                 "use cov[np.ix_(idx, idx)] with idx a list, or treat an empty index list separately")
_SLOGDET_HINT = ("use np.linalg.slogdet rather than np.log(np.linalg.det(...)): the determinant under- or "
                 "overflows for large matrices")


def _diagnose_cmi(got: float, cov, A, B, C, expected: float) -> str | None:
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
    return None


@_graded
def check_gaussian_cmi(fn: Callable) -> str:
    """``fn(cov, A, B, C)`` must return ``I(A:C|B)`` in nats (reference: ``info.gaussian_cmi``)."""
    cases = _cmi_cases()
    expected_all = [info.gaussian_cmi(cov.copy(), list(A), list(B), list(C)) for _, cov, A, B, C in cases]
    for (what, cov, A, B, C), expected in zip(cases, expected_all):
        empty = not B
        got = _float(_call(fn, "gaussian_cmi", cov, A, B, C, argnames=("cov", "A", "B", "C"), doing=f"on {what}",
                           on_error=(lambda exc: _EMPTY_B_HINT) if empty else None),
                     f"your I(A:C|B) for {what}", hint=_EMPTY_B_HINT if empty else _SLOGDET_HINT)
        tol = 1e-8 + 1e-8 * abs(expected)
        if not _close(got, expected, tol):
            hint = _diagnose_cmi(got, cov, A, B, C, expected) or (
                _EMPTY_B_HINT if empty else
                "check the four index sets (S_AB = cov[AB][:, AB] with AB = A + B, ...) and use "
                "np.linalg.slogdet rather than log(det) (det under- or overflows for large matrices)")
            _fail(f"your I(A:C|B) for {what} is {got:.6g} nats, expected {expected:.6g} \u00b1 {tol:.1g}: {hint}.")
    msg = f"{PASS} gaussian_cmi agrees with the exact CMI on {len(cases)} cases (to 1e-8 nats)"
    print(msg)
    return msg


@_graded
def check_cmi_along_path(fn: Callable) -> str:
    """``fn(cov0, A, B, C, ts)`` must return ``[I(A:C|B) at time t for t in ts]`` for data covariance ``cov0``."""
    field = info.gmrf_covariance((9, 9), kappa=0.5)
    ts = np.linspace(0.0, 1.0, 11)
    cases = []
    for r in (1, 2):
        A, B, C = info.regions((9, 9), None, r)
        expected = np.array([info.gaussian_cmi(info.path_covariance(field.copy(), t), A, B, C) if t < 1 else 0.0
                             for t in ts])
        cases.append((r, A, B, C, expected))
    for r, A, B, C, expected in cases:
        got = _array(_call(fn, "cmi_along_path", field, A, B, C, ts, argnames=("cov0", "A", "B", "C", "ts"),
                           doing=f"on the 9x9 Markov field with buffer radius r={r} and ts = 0, 0.1, ..., 1"),
                     f"cmi_along_path(..., r={r})", ts.shape,
                     hint="compare with your gaussian_cmi at path_covariance(cov0, t); at t = 1 return 0")
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


@_graded
def check_footprint(fn: Callable) -> str:
    """``fn(model, pixel, image_size, t)`` must return the boolean gradient footprint of one output pixel.

    Reference: ``locality.gradient_footprint`` on a local and a GroupNorm network, at an interior and a corner pixel.
    """
    cases = [(what, model, pixel, locality.gradient_footprint(model, pixel, 20, 0.5))
             for what, model in _reference_models() for pixel in ((10, 10), (0, 0))]
    for what, model, pixel, expected in cases:
        got = _mask(_call(fn, "footprint", model, pixel, 20, 0.5, argnames=("model", "pixel", "image_size", "t"),
                          doing=f"on {what} at pixel {pixel}"),
                    f"footprint(model, {pixel}, 20, 0.5)", (20, 20))
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
    msg = f"{PASS} footprint agrees with the gradient footprint on {len(cases)} (model, pixel) cases"
    print(msg)
    return msg


_FLOAT64_ONLY = ("your model works on float64 images but not on float32 ones, torch's default (torch.rand, "
                 "torch.randn, the data sets and a training loop all give float32): do not call .double() or pass "
                 "dtype=torch.float64 in make_model; the check measures footprints on a float64 copy by itself")
_FLOAT32_ONLY = ("your model works in float32 but fails on a float64 copy of it (copy.deepcopy(model).double()), "
                 "which is how a footprint is measured: .double() converts only parameters and registered buffers, "
                 "so keep fixed tensors in nn.Parameter or self.register_buffer(...), and make new tensors with "
                 "x's dtype (torch.zeros_like(x), x.new_ones(...))")
_BATCH_TWO_ONLY = ("your model works on a batch of 2 images but fails on a single image (batch size 1), which is "
                   "how a footprint is measured: do not hard-code the batch size; reshape t with t.view(-1, 1, 1, 1) "
                   "and take sizes from x.shape")
_BATCH_ONE_ONLY = ("your model works on a single image but fails on a batch of 2 (batch size 2): do not hard-code "
                   "the batch size; reshape t with t.view(-1, 1, 1, 1) (one time per image) and take sizes from "
                   "x.shape")
_NAN_MODEL_HINT = ("a footprint (a gradient) of an output that is not finite real numbers means nothing; look for "
                   "a division by zero (or by a standard deviation that can vanish), the log or square root of a "
                   "negative number, or weights left uninitialised (torch.empty)")


def _model_works(model, x, t, double: bool = False) -> bool:
    """Whether a copy of ``model`` (in float64 if ``double``) maps ``x`` to a tensor of its shape: for diagnoses."""
    try:
        m = copy.deepcopy(model)
        if double:
            m = m.double()
        with torch.no_grad():
            out = m(x.clone(), t.clone())
        return torch.is_tensor(out) and tuple(out.shape) == tuple(x.shape)
    except Exception:
        return False


def _diagnose_batch_call(model, x, t) -> str | None:
    """The float32 batch call failed: is it float32, or the batch size?"""
    x64, t64 = x.double(), t.double()
    in64 = _model_works(model, x64, t64) or _model_works(model, x64, t64, double=True)
    single = _model_works(model, x[:1], t[:1])
    if in64:
        return _FLOAT64_ONLY
    if single:
        return _BATCH_ONE_ONLY
    if _model_works(model, x64[:1], t64[:1]) or _model_works(model, x64[:1], t64[:1], double=True):
        return _FLOAT64_ONLY + "; it also fails on a batch of 2: " + _BATCH_ONE_ONLY.split(": ", 1)[1]
    return None


def _diagnose_single_call(model, size: int) -> str | None:
    """A float32 batch of 2 works, a float64 copy on one image failed: is it float64, or the batch size?"""
    x, t = torch.rand(2, 1, size, size), torch.full((2,), 0.5)
    single32 = _model_works(model, x[:1], t[:1])
    batch64 = _model_works(model, x.double(), t.double(), double=True)
    if single32 and not batch64:
        return _FLOAT32_ONLY
    if batch64 and not single32:
        return _BATCH_TWO_ONLY
    if not single32 and not batch64:
        return _BATCH_TWO_ONLY + "; " + _FLOAT32_ONLY.replace("your model works in float32 but", "it also")
    return None


def _check_output(out, r: int, x: torch.Tensor, when: str) -> torch.Tensor:
    if not torch.is_tensor(out) or tuple(out.shape) != tuple(x.shape):
        got = tuple(out.shape) if torch.is_tensor(out) else _describe(out)
        _fail(f"make_model({r}) maps images of shape {tuple(x.shape)} to {got}; " + (
            "did its forward forget to `return` the output?" if out is None else
            "it must return a torch tensor" if not torch.is_tensor(out) else
            "it must keep the shape (use padding=1 on every 3x3 convolution)"))
    _real(out, f"the output of your model for radius={r} {when}", hint=_NAN_MODEL_HINT)
    if not out.is_floating_point():
        _fail(f"your model for radius={r} returns a {out.dtype} tensor {when}; a denoiser's output must be "
              "floating point, of the dtype of its input")
    return out


def _run_model(model, r: int, x: torch.Tensor, t: float) -> torch.Tensor:
    """``model(x, t)`` on a float32 batch, with a specific hint when it fails."""
    tt = torch.full((x.shape[0],), float(t), dtype=x.dtype)
    when = f"on a batch of {x.shape[0]} float32 images at t={t}"
    out = _call(model, f"make_model({r})(x, t)", x, tt, argnames=("x", "t"),
                doing=f"{when} (x of shape {tuple(x.shape)}, t of shape {tuple(tt.shape)})",
                on_error=lambda exc: _diagnose_batch_call(model, x, tt))
    return _check_output(out, r, x, when)


def _model_footprint(model, r: int, pixel, size: int, locality) -> torch.Tensor:
    """``locality.gradient_footprint`` of the student's model, with specific hints when it cannot be measured."""
    try:
        return locality.gradient_footprint(model, pixel, size, 0.5)
    except GradingError:
        raise
    except Exception as exc:
        raise GradingError(
            f"measuring the gradient footprint of your model for radius={r} at output pixel {pixel} (on a float64 "
            f"copy, one image) failed with {type(exc).__name__}: {_short(exc)}{_where_raised(exc)}") from exc


def _check_single_image(model, r: int, size: int) -> None:
    """Run a float64 copy of the model on one image, as a footprint does: it must work and be finite."""
    try:
        m = copy.deepcopy(model).to(dtype=torch.float64).eval()
    except Exception as exc:
        raise GradingError(
            f"the check could not make a float64 copy of your model for radius={r} (copy.deepcopy(model).double()), "
            f"which measuring a footprint needs: {type(exc).__name__}: {_short(exc)}") from exc
    x1 = torch.randn(1, 1, size, size, dtype=torch.float64)
    t1 = torch.full((1,), 0.5, dtype=torch.float64)
    when = "on one float64 image"
    out = _call(m, f"make_model({r})(x, t)", x1, t1, argnames=("x", "t"),
                doing=f"{when} (a float64 copy of the model, x of shape {tuple(x1.shape)}, batch size 1), as "
                      "measuring a footprint does",
                on_error=lambda exc: _diagnose_single_call(model, size))
    _check_output(out, r, x1, when)


@_graded
def check_local_model(make_model: Callable, radii=(1, 2, 3), image_size: int = 20) -> str:
    """``make_model(radius)`` must build a strictly local denoiser of receptive-field radius exactly ``radius``.

    For each radius: the output has the input's shape and is finite, for a float32 batch of 2 and for a
    float64 copy on one image; the footprint of an interior pixel is exactly the full ``(2r+1)^2`` square;
    every footprint at the corners and edges stays within Chebyshev distance ``r``; and the output depends
    on ``t``. Reference: ``locality.gradient_footprint`` and ``locality.window``.
    """
    with torch.random.fork_rng():     # the student's random state is left alone
        torch.manual_seed(0)
        return _check_local_model(make_model, radii, image_size, locality)


def _check_local_model(make_model, radii, image_size, locality) -> str:
    for r in radii:
        model = _call(make_model, "make_model", r, argnames=("radius",), doing=f"with radius={r}")
        if not isinstance(model, nn.Module):
            _fail(f"make_model({r}) must return a torch.nn.Module; got {_describe(model)}"
                  + (": did it forget to `return` the model?" if model is None else ""))
        x = torch.rand(2, 1, image_size, image_size)
        out = _run_model(model, r, x, 0.5)
        _check_single_image(model, r, image_size)
        for pixel in ((image_size // 2, image_size // 2), (0, 0), (image_size - 1, 3)):
            fp = _model_footprint(model, r, pixel, image_size, locality)
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
        out2 = _run_model(model, r, x, 0.9)
        if torch.allclose(out.detach(), out2.detach()):
            _fail(f"your model for radius={r} gives the same output at t=0.5 and t=0.9: a denoiser must use t "
                  "(e.g. add a per-channel scale and shift computed from t, as FiLM does)")
    msg = f"{PASS} make_model builds strictly local denoisers of receptive-field radius exactly {', '.join(map(str, radii))}"
    print(msg)
    return msg


@_graded
def check_footprint_radius(fn: Callable) -> str:
    """``fn(mask, pixel)`` must return the Chebyshev radius of a footprint (reference: ``locality.footprint_radius``)."""
    masks = []
    for what, model in _reference_models():
        for pixel in ((10, 10), (0, 0), (19, 4)):
            masks.append((f"the footprint of {what} at pixel {pixel}", locality.gradient_footprint(model, pixel, 20, 0.5), pixel))
    lopsided = torch.zeros(20, 20, dtype=torch.bool)
    lopsided[10, 10] = lopsided[12, 4] = True
    masks.append(("a footprint with pixels (10, 10) and (12, 4)", lopsided, (10, 10)))
    masks.append(("an empty footprint", torch.zeros(20, 20, dtype=torch.bool), (10, 10)))
    cases = [(what, mask, pixel, locality.footprint_radius(mask.clone(), pixel)) for what, mask, pixel in masks]
    for what, mask, pixel, expected in cases:
        got = _float(_call(fn, "chebyshev_radius", mask, pixel, argnames=("mask", "pixel"), doing=f"on {what}"),
                     f"chebyshev_radius for {what}")
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
    cov = info.ar1_covariance(n_sites, rho, t=t)
    g = np.random.default_rng(seed)
    return g.multivariate_normal(np.zeros(n_sites), cov, size=n, method="cholesky")


@_graded
def check_plugin_cmi(fn: Callable) -> str:
    """``fn(samples, A, B, C, n_boot, seed)`` must return ``(cmi, err)``: the Gaussian plug-in CMI and its bootstrap error.

    The estimate must equal ``info.gaussian_cmi`` of the sample covariance (to 1e-9); the error bar must be within
    a factor 2 of the estimator's real spread, measured here over fresh data sets.
    """
    n_sites, rho, t, n = 15, 0.8, 0.5, 2000
    A, B, C = info.regions((n_sites,), None, 2)
    x = _ar1_samples(n_sites, rho, t, n, seed=11)
    expected = info.gaussian_cmi(np.cov(x, rowvar=False), A, B, C)
    spread = np.std([info.gaussian_cmi(np.cov(_ar1_samples(n_sites, rho, t, n, seed=100 + k), rowvar=False), A, B, C)
                     for k in range(100)])
    res = _call(fn, "plugin_cmi", x, A, B, C, 200, 0, argnames=("samples", "A", "B", "C", "n_boot", "seed"),
                doing=f"on {n} samples of a noisy AR(1) chain of {n_sites} sites, with n_boot=200 and seed=0")
    res = _tuple(res, "plugin_cmi", "(cmi, err)", 2)
    got, err = _float(res[0], "the plug-in CMI"), _float(res[1], "its error bar")
    if not _close(got, expected, 1e-9):
        hint = ("np.cov(samples) treats rows as variables: use np.cov(samples, rowvar=False) (samples are rows)"
                if x.shape[1] != x.shape[0] else "compute the sample covariance, then call your gaussian_cmi on it")
        _fail(f"your plug-in CMI for the noisy AR(1) chain (rho={rho}, t={t}, r=2, {n} samples) is {got:.6g} nats, "
              f"expected {expected:.6g} \u00b1 1e-9 (the exact CMI of the sample covariance): {hint}")
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


@_graded
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
        ref = markov.fit_markov_length(r.copy(), cmi.copy(), err.copy()) if k == 0 else None
        res = _call(fn, "fit_markov_length", r, cmi, err, argnames=("r", "cmi", "cmi_err"),
                    doing=f"on synthetic decay {k + 1} of {n_rep} (7 radii, true xi=2)")
        res = _tuple(res, "fit_markov_length", "(xi, xi_err)", 2)
        xi, xi_err = _float(res[0], "xi"), _float(res[1], "xi_err")
        if ref is not None:
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


@_graded
def check_markov_length(fn: Callable, samples, regions: Callable, radii, n_boot: int, rho: float, t: float):
    """Run the student's ``fn(samples, regions, radii, n_boot) -> (xi, xi_err, cmi, err, use)`` on the noisy AR(1)
    chain's samples and check it; return what ``fn`` returned.

    The estimates must be the plug-in CMI of the samples (``info.gaussian_cmi`` of the sample covariance), ``xi``
    the weighted fit of the radii marked in ``use`` (``markov.fit_markov_length``), and the result must agree with
    the exact ``info.ar1_markov_length(rho, t)``: ``|xi - xi_exact| <= 3 xi_err + 0.02 xi_exact``, with an
    informative error bar (``xi_err < 0.5 xi_exact``).
    """
    # the expected values first, from the caller's objects; fn gets copies of them
    data = np.asarray(_numpy(samples), dtype=np.float64)
    cov = np.cov(data, rowvar=False)
    radii_own = np.array(radii)
    expected_cmi = [info.gaussian_cmi(cov, *regions(int(r))) for r in radii_own]
    exact = info.ar1_markov_length(rho, t)
    res = _call(fn, "measure_markov_length", samples, regions, radii, n_boot,
                argnames=("samples", "regions", "radii", "n_boot"),
                doing=f"on {len(data)} samples of the noisy AR(1) chain, radii {radii_own.tolist()}, n_boot={n_boot}")
    res = _tuple(res, "measure_markov_length", "(xi, xi_err, cmi, err, use)", 5)
    x, e = _float(res[0], "xi"), _float(res[1], "xi_err")
    radii = radii_own
    cmi, err = _array(res[2], "cmi", radii.shape), _array(res[3], "err", radii.shape)
    try:
        use = np.asarray(_numpy(res[4]))
    except Exception:
        use = np.asarray(None)
    if use.shape != radii.shape or use.dtype != bool:
        _fail(f"use must be a boolean mask with one entry per radius, shape {radii.shape}; got {use.dtype} {use.shape}")
    for k, r in enumerate(radii):
        if not _close(cmi[k], expected_cmi[k], 1e-9):
            _fail(f"your CMI estimate at r={r} is {cmi[k]:.6g} nats, but the plug-in estimate of these samples is "
                  f"{expected_cmi[k]:.6g}: compute it with plugin_cmi(samples, *regions(r), ...)")
    if np.any(err <= 0):
        k = int(np.argmax(err <= 0))
        _fail(f"your error bar at r={radii[k]} is {err[k]:.3g}: a bootstrap error bar must be positive")
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
