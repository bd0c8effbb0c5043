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

import torch

KINDS = ("velocity", "noise", "x0", "score")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown prediction kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind


def check_t(t: torch.Tensor | float, n: int | None = None) -> torch.Tensor:
    """Return ``t`` as a float tensor (float64 for Python numbers, a float tensor keeps its dtype), raising a clear error if it is outside ``[0, 1]`` or mis-shaped.

    This reads the values (a host sync on a GPU): call it at the boundary of the library, not in
    the inner loop of training or sampling.
    """
    if not torch.is_tensor(t):
        t = torch.as_tensor(t, dtype=torch.float64)  # a Python number stays exact (no float32 round trip)
    elif not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    if n is not None and t.ndim == 0:
        t = t.expand(n)
    if n is not None and t.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape ({n},) to match the batch, got shape {tuple(t.shape)}")
    if t.numel() and (bool(torch.isnan(t).any()) or float(t.min()) < 0.0 or float(t.max()) > 1.0):
        raise ValueError(
            f"t must lie in [0, 1] (0 = data, 1 = noise); got values in [{float(t.min()):.4g}, {float(t.max()):.4g}]"
        )
    return t


def expand_t(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample times ``(N,)`` (or a scalar) so that they broadcast against ``x`` of shape ``(N, ...)``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t
    return t.reshape(t.shape[0], *([1] * (x.ndim - 1)))


def interpolate(x0: torch.Tensor, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``x_t = (1 - t) x0 + t z``."""
    tt = expand_t(t, x0)
    return (1 - tt) * x0 + tt * z


def add_noise(
    x0: torch.Tensor, t: torch.Tensor | float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``x_t`` given clean images: returns ``(x_t, z)`` with fresh ``z ~ N(0, I)``."""
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return interpolate(x0, z, t), z


def target(kind: str, x0: torch.Tensor, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """The regression target whose conditional mean is the prediction of ``kind`` (score: ``-z / t``)."""
    return _from_pair(check_kind(kind), x0, z, expand_t(t, x0))


def to_pair(pred: torch.Tensor, kind: str, x_t: torch.Tensor, t: torch.Tensor | float):
    """Convert a prediction of ``kind`` into the pair ``(x0_hat, z_hat)`` using ``x_t = (1-t) x0 + t z``."""
    tt = expand_t(t, x_t)
    kind = check_kind(kind)
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
    """Convert a prediction from kind ``src`` to kind ``dst`` at ``(x_t, t)``."""
    check_kind(dst)
    if src == dst:
        return pred
    x0, z = to_pair(pred, src, x_t, t)
    return _from_pair(dst, x0, z, expand_t(t, x_t))


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
    diffusion coefficient per pixel is ``g^2/2 = t/(1-t)`` (chapter "Fokker–Planck")."""
    if not 0.0 <= t < 1.0:
        raise ValueError(f"the forward SDE is defined for t in [0, 1); got {t}")
    return -1.0 / (1.0 - t), 2.0 * t / (1.0 - t)
