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

from .checks import InputError, integer, unit_time
from .models import check_module, check_output


def _chebyshev(mask_shape, pixel) -> torch.Tensor:
    h, w = mask_shape
    i, j = pixel
    ii = torch.arange(h).view(h, 1)
    jj = torch.arange(w).view(1, w)
    return torch.maximum((ii - i).abs(), (jj - j).abs())


def _check_pixel(pixel, h: int, w: int) -> tuple[int, int]:
    if torch.is_tensor(pixel):
        pixel = tuple(pixel.tolist())
    try:
        i, j = pixel
    except (TypeError, ValueError):
        raise InputError(f"pixel must be a pair (row, column); got {pixel!r}") from None
    i, j = integer(i, "pixel row", minimum=None), integer(j, "pixel column", minimum=None)
    if not (0 <= i < h and 0 <= j < w):
        raise InputError(f"pixel {pixel!r} lies outside a {h}x{w} image")
    return i, j


def _image_size(image_size) -> tuple[int, int]:
    """``image_size`` (a side, or ``(H, W)``) as a pair of positive ints."""
    items = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if len(items) != 2:
        raise InputError(f"image_size must be a side or a pair (H, W); got {image_size!r}")
    return integer(items[0], "image_size"), integer(items[1], "image_size")


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
    check_module(model)
    if x is not None:
        x = torch.as_tensor(x)
        if not (x.ndim == 2 or (x.ndim == 4 and x.shape[:2] == (1, 1))):
            raise InputError(f"x must be one image (H, W) or (1, 1, H, W); got {tuple(x.shape)}")
        x = x.reshape(1, 1, *x.shape[-2:]).to(torch.float64)
        h, w = x.shape[-2:]
    else:
        h, w = _image_size(image_size)
    i, j = _check_pixel(pixel, h, w)
    t = unit_time(t)
    seed = integer(seed, "seed", minimum=None)
    m = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    if x is None:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(1, 1, h, w, generator=gen, dtype=torch.float64)
    x = x.clone().requires_grad_(True)
    out = check_output(m(x, torch.full((1,), float(t), dtype=torch.float64)), x, model)
    (grad,) = torch.autograd.grad(out[0, 0, i, j], x)
    return grad[0, 0] != 0


def footprint_radius(mask: torch.Tensor, pixel: tuple[int, int]) -> int:
    """The Chebyshev radius of a footprint: the largest ``max(|k - i|, |l - j|)`` over its ``True`` entries
    (``-1`` for an empty footprint: the output does not depend on the input at all)."""
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if mask.ndim != 2:
        raise InputError(f"mask must be a 2-D (H, W) boolean tensor; got shape {tuple(mask.shape)}")
    i, j = _check_pixel(pixel, *mask.shape)
    if not mask.any():
        return -1
    return int(_chebyshev(mask.shape, (i, j))[mask].max())


def window(image_size: int | tuple[int, int], pixel: tuple[int, int], radius: int) -> torch.Tensor:
    """The boolean ``(H, W)`` mask of the square of Chebyshev radius ``radius`` around ``pixel`` (clipped to the image)."""
    h, w = _image_size(image_size)
    i, j = _check_pixel(pixel, h, w)
    return _chebyshev((h, w), (i, j)) <= integer(radius, "radius", minimum=0)


def is_local(
    model: nn.Module,
    radius: int,
    pixels: Iterable[tuple[int, int]] = ((0, 0), (5, 20), (14, 14), (27, 27)),
    image_size: int = 28,
    t: float = 0.5,
    seed: int = 0,
) -> bool:
    """``True`` when, at every pixel given, the footprint lies inside the radius-``radius`` window."""
    radius = integer(radius, "radius", minimum=0)
    return all(
        footprint_radius(gradient_footprint(model, p, image_size, t, seed), p) <= radius for p in pixels
    )
