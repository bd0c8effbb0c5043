"""The path ``X_t = (1 - t) X_0 + t Z`` and the one place where predictions are converted.

``t = 0`` is data, ``t = 1`` is pure noise ``Z ~ N(0, I)``; pixels of ``X_0`` lie in ``[0, 1]``.
A denoiser may predict one of four equivalent quantities at ``(x_t, t)`` (chapter "Diffusion and flow
matching" derives them; "Notation" lists them):

============  =====================================  ===========================================
kind          what it estimates                      from the pair ``(x0_hat, z_hat)``
============  =====================================  ===========================================
``x0``        ``E[X_0 | X_t = x]``                   ``x0_hat``
``noise``     ``E[Z | X_t = x]``                     ``z_hat``
``velocity``  ``E[Z - X_0 | X_t = x] = dx/dt``        ``z_hat - x0_hat``
``score``     ``grad log p_t(x) = -E[Z | x] / t``     ``-z_hat / t``
============  =====================================  ===========================================

Because ``x = (1 - t) x0_hat + t z_hat`` holds for the posterior means, any one of them fixes the
others. The conversions divide by ``t`` or ``1 - t``; they are exact inside ``(0, 1)`` and undefined
where the divisor vanishes (``x0 -> noise`` and ``score`` at ``t = 0``, ``noise -> x0`` at ``t = 1``).
The velocity is finite everywhere, which is why the library's models predict it.

Note the sign: our velocity is ``dX_t/dt = Z - X_0``; the authors' code predicts ``X_0 - Z``.
"""

from __future__ import annotations

import numpy as np
import torch

from .checks import TIME_CONVENTION, InputError, checking_values, generator as check_generator, number, real_array

KINDS = ("velocity", "noise", "x0", "score")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown prediction kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind


def _time_tensor(t) -> torch.Tensor:
    """``t`` as a real tensor: a tensor keeps its dtype (an integer one becomes the default float dtype), numbers and
    arrays become float64 (a Python number stays exact). Booleans, strings, ``None`` and complex numbers are refused."""
    what = f"a number in [0, 1] ({TIME_CONVENTION}) or a tensor or array of them"
    if torch.is_tensor(t):
        if t.dtype == torch.bool or t.dtype.is_complex:
            raise InputError(f"t must be {what}; got a tensor of dtype {t.dtype}")
        return t if torch.is_floating_point(t) else t.to(torch.get_default_dtype())
    return torch.tensor(real_array(t, "t", what), dtype=torch.float64)  # a copy: numbers, lists, read-only arrays


def _check_t_values(t: torch.Tensor) -> None:
    """``t`` (a real tensor) lies in ``[0, 1]``; skipped inside :func:`localdiff_lib.checks.skip_value_checks`."""
    if checking_values() and t.numel() and not bool(((t >= 0.0) & (t <= 1.0)).all()):  # NaN fails both
        raise InputError(
            f"t must lie in [0, 1] ({TIME_CONVENTION}); got values in [{float(t.min()):.4g}, {float(t.max()):.4g}]"
        )


def check_t(t: torch.Tensor | float, n: int | None = None) -> torch.Tensor:
    """Return ``t`` as a float tensor (float64 for Python numbers, a float tensor keeps its dtype), raising a clear
    error if it is not made of real numbers, is outside ``[0, 1]`` or is mis-shaped (``n``: a scalar or ``(n,)``).

    Reading the values is a host sync on a GPU: inside :func:`localdiff_lib.checks.skip_value_checks` (the inner loops
    of training and sampling) only the dtype and shape are checked.
    """
    t = _time_tensor(t)
    if n is not None and t.ndim == 0:
        t = t.expand(n)
    if n is not None and t.shape != (n,):
        raise InputError(f"t must be a scalar or have shape ({n},) to match the batch, got shape {tuple(t.shape)}")
    _check_t_values(t)
    return t


def _check_tensors(**tensors) -> None:
    """The named arguments are tensors of one shape (the first named is the reference)."""
    for name, v in tensors.items():
        if not torch.is_tensor(v):
            raise InputError(f"{name} must be a tensor; got {type(v).__name__}")
    (n1, a), *rest = tensors.items()
    for n2, b in rest:
        if a.shape != b.shape:
            raise InputError(f"{n1} and {n2} must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")


def _batch_t(t, x: torch.Tensor) -> torch.Tensor:
    """``t`` checked against the batch of ``x`` (a scalar, or one time per row of ``x``), as a tensor."""
    return check_t(t, x.shape[0] if x.ndim else None)


def _refuse_endpoint(t: torch.Tensor, at: float, what: str) -> None:
    """Raise if a conversion that divides by ``t`` (``at = 0``) or ``1 - t`` (``at = 1``) meets that endpoint."""
    if checking_values() and t.numel() and bool((t == at).any()):
        div = "t" if at == 0.0 else "1 - t"
        use = "t > 0" if at == 0.0 else "t < 1"
        raise InputError(f"{what} divides by {div}: it is undefined at t = {at:g}; use {use}")


def _check_var0(var0) -> None:
    v = var0 if torch.is_tensor(var0) else real_array(var0, "var0")
    empty = v.numel() == 0 if torch.is_tensor(v) else v.size == 0
    if checking_values() and not empty and not bool((v >= 0).all()):  # NaN fails too
        raise InputError(f"var0 must be a variance (numbers >= 0); got values down to {float(v.min()):g}")


def marginal_variance(var0, t):
    """The variance of a coordinate of ``X_t = (1-t) X_0 + t Z`` whose variance at ``t = 0`` is ``var0``:
    ``(1-t)^2 var0 + t^2``, elementwise (numbers, arrays or tensors). The one place the path's variance is written;
    a covariance matrix gets ``t^2`` on its diagonal only (:func:`marginal_covariance`)."""
    _check_t_values(_time_tensor(t))
    _check_var0(var0)
    return (1 - t) ** 2 * var0 + t**2


def marginal_covariance(cov0, t):
    """The covariance of ``X_t``: ``(1-t)^2 cov0 + t^2 I`` for ``cov0`` of shape ``(..., d, d)`` (array or tensor)."""
    _check_t_values(_time_tensor(t))
    if not torch.is_tensor(cov0):
        cov0 = real_array(cov0, "cov0", "a matrix (..., d, d) of numbers")
    if cov0.ndim < 2 or cov0.shape[-1] != cov0.shape[-2]:
        raise InputError(f"cov0 must have shape (..., d, d); got {tuple(cov0.shape)}")
    if torch.is_tensor(cov0):
        eye = torch.eye(cov0.shape[-1], dtype=cov0.dtype, device=cov0.device)
    else:
        eye = np.eye(cov0.shape[-1])
    return (1 - t) ** 2 * cov0 + t**2 * eye


def expand_t(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample times ``(N,)`` (or a scalar) so that they broadcast against ``x`` of shape ``(N, ...)``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t
    return t.reshape(t.shape[0], *([1] * (x.ndim - 1)))


def interpolate(x0: torch.Tensor, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``x_t = (1 - t) x0 + t z``."""
    _check_tensors(x0=x0, z=z)
    _batch_t(t, x0)
    tt = expand_t(t, x0)
    return (1 - tt) * x0 + tt * z


def add_noise(
    x0: torch.Tensor, t: torch.Tensor | float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``x_t`` given clean images: returns ``(x_t, z)`` with fresh ``z ~ N(0, I)``."""
    _check_tensors(x0=x0)
    if not torch.is_floating_point(x0):
        raise InputError(f"x0 must be a floating-point tensor; got dtype {x0.dtype}")
    _batch_t(t, x0)
    z = torch.randn(x0.shape, generator=check_generator(generator), device=x0.device, dtype=x0.dtype)
    return interpolate(x0, z, t), z


def target(kind: str, x0: torch.Tensor, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """The regression target whose conditional mean is the prediction of ``kind`` (score: ``-z / t``)."""
    check_kind(kind)
    _check_tensors(x0=x0, z=z)
    tt = _batch_t(t, x0)
    if kind == "score":
        _refuse_endpoint(tt, 0.0, "the score target -z / t")
    return _from_pair(kind, x0, z, expand_t(t, x0))


def to_pair(pred: torch.Tensor, kind: str, x_t: torch.Tensor, t: torch.Tensor | float):
    """Convert a prediction of ``kind`` into the pair ``(x0_hat, z_hat)`` using ``x_t = (1-t) x0 + t z``.

    Undefined (an error) where it divides by zero: ``z_hat`` from an ``x0`` prediction at ``t = 0``, ``x0_hat`` from a
    ``noise`` or ``score`` prediction at ``t = 1``."""
    kind = check_kind(kind)
    _check_tensors(pred=pred, x_t=x_t)
    t_checked = _batch_t(t, x_t)
    if kind == "x0":
        _refuse_endpoint(t_checked, 0.0, "the pair (x0, z) of an x0 prediction")
    elif kind in ("noise", "score"):
        _refuse_endpoint(t_checked, 1.0, f"the pair (x0, z) of a {kind} prediction")
    return _pair(pred, kind, x_t, expand_t(t, x_t))


def _pair(pred: torch.Tensor, kind: str, x_t: torch.Tensor, tt: torch.Tensor):
    if kind == "x0":
        x0 = pred
        z = (x_t - (1 - tt) * x0) / tt
    elif kind == "noise":
        z = pred
        x0 = (x_t - tt * z) / (1 - tt)
    elif kind == "velocity":  # v = z - x0, x = (1-t) x0 + t z  =>  x0 = x - t v, z = x + (1-t) v
        x0 = x_t - tt * pred
        z = x_t + (1 - tt) * pred
    else:  # score = -z / t
        z = -tt * pred
        x0 = (x_t - tt * z) / (1 - tt)
    return x0, z


def _from_pair(kind: str, x0: torch.Tensor, z: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
    if kind == "x0":
        return x0
    if kind == "noise":
        return z
    if kind == "velocity":
        return z - x0
    return -z / tt


def convert(pred: torch.Tensor, src: str, dst: str, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Convert a prediction from kind ``src`` to kind ``dst`` at ``(x_t, t)``.

    Undefined (an error) where the conversion divides by zero: from ``x0`` and to ``score`` at ``t = 0``, from
    ``noise`` or ``score`` to ``x0`` or ``velocity`` at ``t = 1``."""
    check_kind(dst)
    check_kind(src)
    _check_tensors(pred=pred, x_t=x_t)
    t_checked = _batch_t(t, x_t)
    if src == dst:
        return pred
    what = f"converting a {src} prediction to {dst}"
    if src == "x0" or dst == "score":
        _refuse_endpoint(t_checked, 0.0, what)
    if src in ("noise", "score") and dst in ("x0", "velocity"):
        _refuse_endpoint(t_checked, 1.0, what)
    tt = expand_t(t, x_t)
    x0, z = _pair(pred, src, x_t, tt)
    return _from_pair(dst, x0, z, tt)


def to_velocity(pred, kind, x_t, t):
    """The probability-flow velocity ``dx/dt = E[Z - X_0 | x]`` from any prediction."""
    return convert(pred, kind, "velocity", x_t, t)


def to_x0(pred, kind, x_t, t):
    """The clean-image estimate ``E[X_0 | x]`` (Tweedie) from any prediction."""
    return convert(pred, kind, "x0", x_t, t)


def to_noise(pred, kind, x_t, t):
    """The noise estimate ``E[Z | x]`` from any prediction."""
    return convert(pred, kind, "noise", x_t, t)


def to_score(pred, kind, x_t, t):
    """The score ``grad log p_t(x) = -E[Z | x] / t`` from any prediction."""
    return convert(pred, kind, "score", x_t, t)


def sde_coefficients(t: float) -> tuple[float, float]:
    """Drift factor ``f(t)`` and squared diffusion ``g(t)^2`` of the forward SDE ``dX = f X dt + g dW``
    whose marginals are those of the path: ``f = -1/(1-t)``, ``g^2 = 2t/(1-t)``, so the Fokker–Planck
    diffusion coefficient per pixel is ``g^2/2 = t/(1-t)`` (chapter "Fokker–Planck"). Defined for ``t`` in
    ``[0, 1)``."""
    t = number(t, "t (the forward SDE is defined for t in [0, 1))", at_least=0.0, below=1.0)
    return -1.0 / (1.0 - t), 2.0 * t / (1.0 - t)
