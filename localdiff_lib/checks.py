"""The library's boundary checks, written once: what a public function accepts and the error it raises otherwise.

Every check either returns the value in its canonical type or raises :class:`InputError` (a ``ValueError`` and a
``TypeError``, so either ``except`` catches it) with a message that names the argument, says what was expected and
shows what came. Nothing is
clipped, rounded or coerced silently: ``2.0`` is not an integer, ``True`` is not a count, ``NaN`` is not a time,
``"0.5"`` is not a number.
Times follow the course's convention (``t = 0`` data, ``t = 1`` noise; chapter "Notation"); the tensor form of the
time check, with its batch shape, is :func:`localdiff_lib.path.check_t`.

Checks that read the values of a tensor (a host sync on a GPU) are switched off inside :func:`skip_value_checks`:
training and sampling validate their inputs once up front and run their inner loops inside that block, where only
shapes and dtypes are checked.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterable

import numpy as np
import torch

__all__ = ["InputError", "integer", "number", "unit_time", "unit_times", "real_array", "finite_numbers", "time_window",
           "indices", "disjoint_regions", "images", "cmi_map_arrays", "generator", "skip_value_checks", "checking_values",
           "TIME_CONVENTION"]

TIME_CONVENTION = "0 = data, 1 = noise"


class InputError(ValueError, TypeError):
    """A bad argument: of the wrong kind (a ``TypeError``) or out of range (a ``ValueError``)."""


def integer(value, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as a Python ``int`` in ``[minimum, maximum]`` (``None``: unbounded). Python and NumPy integers
    are accepted; booleans, floats (even ``2.0``) and strings are not."""
    if maximum is None and minimum in (0, 1):
        what = "a positive integer" if minimum == 1 else "a non-negative integer"
    elif maximum is None and minimum is None:
        what = "an integer"
    else:
        what = f"an integer in [{'-inf' if minimum is None else minimum}, {'inf' if maximum is None else maximum}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be {what}; got {value!r} ({type(value).__name__})")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise InputError(f"{name} must be {what}; got {v}")
    return v


def _interval(above, at_least, below, at_most) -> str:
    lo = f"({above:g}" if above is not None else (f"[{at_least:g}" if at_least is not None else None)
    hi = f"{below:g})" if below is not None else (f"{at_most:g}]" if at_most is not None else None)
    if lo and hi:
        return f" in {lo}, {hi}"
    if lo:
        return f" {'>' if above is not None else '>='} {lo[1:]}"
    if hi:
        return f" {'<' if below is not None else '<='} {hi[:-1]}"
    return ""


def _is_real_scalar(value) -> bool:
    """A Python or NumPy real number, or a 0-d array or tensor of one (never a bool or a string)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if torch.is_tensor(value):
        return value.ndim == 0 and not value.dtype.is_complex and value.dtype != torch.bool
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


def number(value, name: str, *, above: float | None = None, at_least: float | None = None,
           below: float | None = None, at_most: float | None = None) -> float:
    """``value`` as a finite Python ``float``, optionally bounded: ``above``/``below`` strictly,
    ``at_least``/``at_most`` inclusively. Booleans, strings, ``None``, ``NaN`` and infinities are refused."""
    what = f"a finite number{_interval(above, at_least, below, at_most)}"
    if not _is_real_scalar(value):
        raise InputError(f"{name} must be {what}; got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (above is not None and not v > above) or (at_least is not None and not v >= at_least) \
            or (below is not None and not v < below) or (at_most is not None and not v <= at_most):
        raise InputError(f"{name} must be {what}; got {v!r}")
    return v


def unit_time(t, name: str = "t") -> float:
    """One time on the path as a ``float`` in ``[0, 1]``."""
    if not _is_real_scalar(t):
        raise InputError(f"{name} must be a number in [0, 1] ({TIME_CONVENTION}); got {t!r}")
    v = float(t)
    if math.isnan(v) or not 0.0 <= v <= 1.0:
        raise InputError(f"{name} must lie in [0, 1] ({TIME_CONVENTION}); got {v}")
    return v


def real_array(values, name: str, what: str = "numbers") -> np.ndarray:
    """``values`` (numbers, lists, arrays or CPU tensors of real numbers) as a float64 array of their shape, without
    converting strings, booleans or ``None``."""
    err = InputError(f"{name} must be {what}; got {values!r}")
    if values is None or isinstance(values, (str, bytes, bool, np.bool_)):
        raise err
    if isinstance(values, (list, tuple)):  # numpy would turn True into 1.0 and a ragged list into objects
        try:
            items = np.asarray(values, dtype=object).reshape(-1)
        except ValueError:
            raise err from None
        if not all(_is_real_scalar(v) for v in items):
            raise err
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError, RuntimeError):
        raise err from None
    if raw.dtype.kind == "O":  # a list of mixed objects: every element must be a real number
        if not all(_is_real_scalar(v) for v in raw.reshape(-1)):
            raise err
    elif raw.dtype.kind not in "iuf":
        raise err
    return raw.astype(np.float64, copy=False)


def finite_numbers(values, name: str) -> np.ndarray:
    """``values`` as a float64 array (of their shape) of finite real numbers."""
    arr = real_array(values, name, "finite numbers")
    bad = arr[~np.isfinite(arr)]
    if bad.size:
        raise InputError(f"{name} must be finite numbers; got {bad.tolist()[:5]} among {arr.reshape(-1).tolist()[:10]}")
    return arr


def unit_times(values, name: str = "t", *, increasing: bool = False, at_least: int = 1) -> np.ndarray:
    """Times on the path as a 1-D float64 array in ``[0, 1]`` (a scalar is one time); ``increasing``: strictly."""
    arr = real_array(values, name, f"numbers in [0, 1] ({TIME_CONVENTION})").reshape(-1)
    what = f"at least {at_least} {'strictly increasing ' if increasing else ''}time{'s' if at_least > 1 else ''}"
    if arr.size < at_least:
        raise InputError(f"{name} must hold {what} in [0, 1]; got {arr.tolist()}")
    bad = arr[~((arr >= 0.0) & (arr <= 1.0))]  # NaN fails both comparisons
    if bad.size:
        raise InputError(f"{name} must lie in [0, 1] ({TIME_CONVENTION}); got {bad.tolist()} among {arr.tolist()}")
    if increasing and np.any(np.diff(arr) <= 0):
        raise InputError(f"{name} must hold {what} in [0, 1]; got {arr.tolist()}")
    return arr


def time_window(window, name: str = "window") -> tuple[float, float]:
    """A window of times ``(t_lo, t_hi)`` with ``0 <= t_lo <= t_hi <= 1``."""
    try:
        lo, hi = window
    except (TypeError, ValueError):
        lo = hi = None
    if not (_is_real_scalar(lo) and _is_real_scalar(hi)):
        raise InputError(f"{name} must be a pair of numbers (t_lo, t_hi); got {window!r}")
    lo, hi = float(lo), float(hi)
    if not 0.0 <= lo <= hi <= 1.0:
        raise InputError(f"{name} (t_lo, t_hi) needs 0 <= t_lo <= t_hi <= 1; got ({lo:g}, {hi:g})")
    return lo, hi


def indices(idx, name: str, size: int) -> list[int]:
    """``idx`` (a list, tuple, array or tensor of integers) as a list of Python ints in ``[0, size)``."""
    what = f"a list of integer indices in [0, {size - 1}]"
    if torch.is_tensor(idx) or isinstance(idx, np.ndarray):
        idx = idx.tolist()
    if isinstance(idx, (str, bytes)) or not isinstance(idx, Iterable):
        raise InputError(f"{name} must be {what}; got {idx!r}")
    items = list(idx)
    out = []
    for i in items:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise InputError(f"{name} must be {what}; got {i!r} ({type(i).__name__}) in {items!r}")
        if not 0 <= i < size:
            raise InputError(f"{name} has index {i} outside [0, {size - 1}]")
        out.append(int(i))
    return out


def disjoint_regions(D: int, **regions: Iterable[int]) -> None:
    """The named index sets (``A=..., B=..., C=...``) lie in ``[0, D)`` and do not overlap."""
    seen = {}
    for name, idx in regions.items():
        for i in indices(idx, f"region {name}", D):
            if i in seen:
                raise InputError(f"regions {seen[i]} and {name} overlap at index {i}; they must be disjoint")
            seen[i] = name


def images(x, name: str = "images", *, square: bool = False, unit_range: bool = True) -> torch.Tensor:
    """Clean images: a floating-point tensor ``(N, 1, H, W)`` (``(N, 1, H, H)`` if ``square``), ``N >= 1``, with every
    pixel in ``[0, 1]`` (the course's convention; NaN and infinities are refused). Returned unchanged.
    ``unit_range=False`` asks only for finite pixels (for formulas that hold for any real data).

    The pixels are read (one pass over the images); call it at the boundary of a function, not in an inner loop.
    """
    shape = "(N, 1, H, H)" if square else "(N, 1, H, W)"
    expected = f"a float tensor of shape {shape}{' with pixels in [0, 1]' if unit_range else ''}"
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != 1 or (square and x.shape[2] != x.shape[3]):
        got = f"shape {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise InputError(f"{name} must be {expected}; got {got}")
    if not torch.is_floating_point(x):
        raise InputError(f"{name} must be floating point: {expected}; got dtype {x.dtype} (divide uint8 images by 255)")
    if x.shape[0] == 0:
        raise InputError(f"{name} is empty; need at least one image")
    if not unit_range:
        if not bool(torch.isfinite(x).all()):
            raise InputError(f"{name} contain NaN or infinite values; pixels must be finite")
        return x
    if not bool(((x >= 0) & (x <= 1)).all()):  # NaN fails both comparisons
        got = ("NaN or infinite values" if not bool(torch.isfinite(x).all())
               else f"values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")
        raise InputError(f"{name} must have pixels in [0, 1] (clean data, not noised); got {got}")
    return x


def cmi_map_arrays(cmi_map, name: str = "cmi_map") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays ``(t, r, cmi)`` of a CMI map (:class:`localdiff_lib.info.SurrogateMap`,
    :class:`localdiff_lib.cmi_map.CMIMap` or anything with those attributes), ``cmi`` of shape ``(len(t), len(r))``."""
    try:
        t, r, cmi = (np.asarray(getattr(cmi_map, k)) for k in ("t", "r", "cmi"))
    except AttributeError:
        raise InputError(f"{name} must have arrays t, r and cmi[i_t, i_r] (e.g. info.surrogate_cmi_map(...))") from None
    t, r = t.reshape(-1), r.reshape(-1)
    if cmi.shape != (t.size, r.size):
        raise InputError(f"{name}.cmi must have shape (len(t), len(r)) = ({t.size}, {r.size}); got {cmi.shape}")
    return t, r, cmi


def generator(value, name: str = "generator"):
    """A ``torch.Generator`` or ``None``."""
    if value is not None and not isinstance(value, torch.Generator):
        raise InputError(f"{name} must be a torch.Generator or None; got {type(value).__name__}")
    return value


_state = threading.local()


@contextlib.contextmanager
def skip_value_checks():
    """Inside this block, the checks check only shapes and dtypes, not the values of tensors (e.g. that ``t`` lies
    in ``[0, 1]``), which would read them (a host sync on a GPU).

    :func:`~localdiff_lib.train.fit` and the samplers validate their inputs once up front and run their inner loops
    inside this block.
    """
    old = getattr(_state, "skip", False)
    _state.skip = True
    try:
        yield
    finally:
        _state.skip = old


def checking_values() -> bool:
    """``False`` inside :func:`skip_value_checks`, else ``True``."""
    return not getattr(_state, "skip", False)
