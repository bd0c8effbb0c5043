"""Receptive fields measured, not assumed: the gradient footprint of one output pixel.

Output pixel ``(i, j)`` of a denoiser ``f(x, t)`` depends on input pixel ``(k, l)`` when
``d f(x, t)[i, j] / d x[k, l]`` is non-zero. :func:`gradient_footprint` computes that gradient in float64
at a random input (so that no derivative vanishes by accident) and returns the set of inputs that matter;
:func:`footprint_radius` is its Chebyshev radius around ``(i, j)``. A model is local with radius ``r`` when
every footprint lies inside the ``(2r+1)^2`` window; the footprint of an interior pixel of a
``LocalDenoiser(radius=r)`` is exactly that window. Works for any module with ``forward(x, t)``, so the
chapter "Locality and receptive fields" can also show a network with GroupNorm failing the test.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def _chebyshev(mask_shape, pixel) -> torch.Tensor:
    h, w = mask_shape
    i, j = pixel
    ii = torch.arange(h).view(h, 1)
    jj = torch.arange(w).view(1, w)
    return torch.maximum((ii - i).abs(), (jj - j).abs())


def _check_pixel(pixel, h: int, w: int) -> tuple[int, int]:
    try:
        i, j = (int(p) for p in pixel)
    except (TypeError, ValueError):
        raise ValueError(f"pixel must be a pair (row, column); got {pixel!r}") from None
    if not (0 <= i < h and 0 <= j < w):
        raise ValueError(f"pixel {pixel!r} lies outside a {h}x{w} image")
    return i, j


def gradient_footprint(
    model: nn.Module,
    pixel: tuple[int, int] = (14, 14),
    image_size: int | tuple[int, int] = 28,
    t: float = 0.5,
    seed: int = 0,
    x: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean ``(H, W)`` mask of the input pixels on which output pixel ``pixel`` depends.

    The gradient of ``model(x, t)[0, 0, i, j]`` with respect to ``x`` is computed on a float64 copy of the
    model (the model itself is not changed) at a random input ``x`` (standard normal, seeded), or at the
    ``(H, W)`` / ``(1, 1, H, W)`` input you pass. An entry is ``True`` when the gradient is non-zero.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if x is not None:
        x = torch.as_tensor(x).reshape(1, 1, *x.shape[-2:]).to(torch.float64)
        h, w = x.shape[-2:]
    i, j = _check_pixel(pixel, h, w)
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must lie in [0, 1]; got {t}")
    m = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    if x is None:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(1, 1, h, w, generator=gen, dtype=torch.float64)
    x = x.clone().requires_grad_(True)
    out = m(x, torch.full((1,), float(t), dtype=torch.float64))
    if out.shape != x.shape:
        raise ValueError(f"the model must return a tensor shaped like its input {tuple(x.shape)}; got {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(out[0, 0, i, j], x)
    return grad[0, 0] != 0


def footprint_radius(mask: torch.Tensor, pixel: tuple[int, int]) -> int:
    """The Chebyshev radius of a footprint: the largest ``max(|k - i|, |l - j|)`` over its ``True`` entries
    (``-1`` for an empty footprint: the output does not depend on the input at all)."""
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) boolean tensor; got shape {tuple(mask.shape)}")
    i, j = _check_pixel(pixel, *mask.shape)
    if not mask.any():
        return -1
    return int(_chebyshev(mask.shape, (i, j))[mask].max())


def window(image_size: int | tuple[int, int], pixel: tuple[int, int], radius: int) -> torch.Tensor:
    """The boolean ``(H, W)`` mask of the square of Chebyshev radius ``radius`` around ``pixel`` (clipped to the image)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    i, j = _check_pixel(pixel, h, w)
    return _chebyshev((h, w), (i, j)) <= radius


def is_local(
    model: nn.Module,
    radius: int,
    pixels: Iterable[tuple[int, int]] = ((0, 0), (5, 20), (14, 14), (27, 27)),
    image_size: int = 28,
    t: float = 0.5,
    seed: int = 0,
) -> bool:
    """``True`` when, at every pixel given, the footprint lies inside the radius-``radius`` window."""
    return all(
        footprint_radius(gradient_footprint(model, p, image_size, t, seed), p) <= radius for p in pixels
    )
