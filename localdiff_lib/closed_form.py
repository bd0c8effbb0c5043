"""Closed-form denoisers computed from a training set, with no training: the ideal (empirical) denoiser and the
optimal strictly local denoiser of receptive-field radius ``r``.

For the empirical distribution of ``N`` training images ``x_1, ..., x_N`` (each with probability ``1/N``), the
posterior over the training index given ``X_t = x`` on the path ``X_t = (1-t) X_0 + t Z`` is a softmax,

    ``w_i(x, t) = softmax_i( -|x - (1-t) x_i|^2 / (2 t^2) )``,

and the ideal denoiser is ``E[X_0 | X_t = x] = sum_i w_i x_i`` (:class:`IdealDenoiser`). At ``t = 0`` the softmax
becomes a hard minimum: we take the posterior uniform over the training images nearest to ``x``, the limit
``t -> 0`` of the formula whenever the nearest image is unique (with exact ties the average is a convention). At ``t = 1`` the weights are uniform and the
denoiser returns the training mean.

The optimal local denoiser (:class:`LocalPosteriorDenoiser`, Kamb and Ganguli's "local score machine") answers the
same question for one pixel at a time, from the noisy ``(2r+1) x (2r+1)`` window around it only: output pixel
``p`` is ``E[X_0[p] | X_t[W_p] = x[W_p]]`` under the empirical distribution of the training patches at that same
position ``p``. Borders: the window is zero-padded, for the noisy input and the training patches alike (as the
library's ``LocalDenoiser`` pads), so a padded entry adds ``(0 - (1-t) 0)^2 = 0`` to every distance; the result is
exactly the posterior given the part of the window that lies inside the image. No translation equivariance: the
patches at ``p`` come only from position ``p``. The equivariant version (``equivariant=True``,
:func:`equivariant_local_x0`) pools the patches of every position into one bank, as a convolutional network shares
its weights across positions.

Both are ``nn.Module``s with the library's model interface: ``forward(x, t)`` returns the velocity ``Z - X_0``
(``prediction = "velocity"``, converted from the clean-image estimate by :mod:`localdiff_lib.path`) or, with
``prediction="x0"``, the clean-image estimate itself; ``radius`` is ``None`` (ideal) or ``r`` (local). The
velocity of these denoisers is infinite at ``t = 0`` away from the training set (the flow snaps to a training
image), so a velocity model refuses ``t = 0``; Euler steps never evaluate there, and the ``x0`` kind does.
The training images are stored as a frozen ``nn.Parameter`` (the data *are* the parameters of these
non-parametric models; :func:`localdiff_lib.models.count_parameters` counts none of them as trainable), so
``.to(device)``, ``.double()``, :mod:`localdiff_lib.evaluate` and :mod:`localdiff_lib.sampling` work unchanged.

:func:`interior_local_x0` is the equivariant one for single pixels away from the border, with a bank of every interior
window of every training image streamed through (all 60,000 MNIST digits fit one CPU core): the best any strictly
local network of that radius can do there on the training digits.

:func:`pixel_gaps` computes, at one pixel, the exact gap between the best local and the ideal denoiser and the
informations that bound it (Pinsker's inequality and the chain rule with the CMI of the map), image by image.

Cost: the ideal denoiser is one ``(B, HW) x (HW, N)`` matrix product; the local one a batched product over the
``HW`` positions, ``2 HW B (2r+1)^2 N`` flops, done in chunks of training images with a streaming
(log-sum-exp) softmax. Chapter "Beyond the paper".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from . import path
from .checks import InputError, images as check_images, integer
from .models import check_inputs, check_prediction

__all__ = ["ideal_log_weights", "ideal_x0", "local_x0", "equivariant_local_x0", "interior_local_x0", "IdealDenoiser",
           "LocalPosteriorDenoiser", "PixelGap", "pixel_gaps"]

#: elements per intermediate tensor (about 128 MB in float64) that sets the chunk sizes
CHUNK_ELEMENTS = 1 << 24
#: logits per block of the patch-bank loops: 2^21 stay in a CPU's cache (measured: 2-3x faster than 2^24 on MNIST,
#: 12 images, r = 1 and 3)
CACHE_BLOCK = 1 << 21


def _logits_block() -> int:
    """Logits per block of the patch-bank loops: CACHE_BLOCK, or less when CHUNK_ELEMENTS is set lower (tests)."""
    return min(CHUNK_ELEMENTS, CACHE_BLOCK)


def _check_train(images) -> torch.Tensor:
    """Training images (N, 1, H, W), floating point and finite (the formulas hold for any real pixels)."""
    return check_images(images, "training images", unit_range=False)


def _check_query(x, train: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate noisy images ``x`` (B, 1, H, W) against the training images and return ``(x, t)`` with ``t`` (B,)."""
    t = check_inputs(x, t)  # a Python number t is read in float64 (exact for float64 images)
    if tuple(x.shape[2:]) != tuple(train.shape[2:]):
        raise ValueError(f"the training images are {train.shape[2]}x{train.shape[3]}; got noisy images of "
                         f"{x.shape[2]}x{x.shape[3]}")
    return x, t


def _check_radius(radius) -> int:
    return integer(radius, "radius (the receptive-field radius in pixels)", minimum=0)


def _check_local(x, t, train_images, radius) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
    """``(train, r, x, t)`` of a local denoiser's call, checked (:func:`local_x0`, :func:`equivariant_local_x0`)."""
    train = _check_train(train_images)
    r = _check_radius(radius)
    x, t = _check_query(x, train, t)
    return train, r, x, t


def _temperature(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(denominator, zero)``: ``2 t^2`` (1 where ``t = 0``) and the mask of zero-temperature rows ``t = 0``."""
    zero = t == 0
    return torch.where(zero, torch.ones_like(t), 2 * t * t), zero


def _zero_temperature_log_weights(neg_dist: torch.Tensor) -> torch.Tensor:
    """``t = 0``: log of the uniform distribution over the maximisers of ``neg_dist`` (last dim), ``-inf`` elsewhere."""
    best = neg_dist == neg_dist.amax(-1, keepdim=True)
    count = best.sum(-1, keepdim=True).to(neg_dist.dtype)
    return torch.where(best, -torch.log(count), torch.full_like(neg_dist, -math.inf))


# ---------------------------------------------------------------------------------------------- ideal denoiser


def _ideal_neg_dist(x: torch.Tensor, train: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``-|x_b - a_b x_i|^2`` in float64, shape (B, N), from one matrix product (clamped at 0 against round-off)."""
    xf = x.reshape(x.shape[0], -1).to(torch.float64)
    out = []
    step = max(1, CHUNK_ELEMENTS // max(1, xf.shape[1]))
    x2 = xf.square().sum(1, keepdim=True)
    a = a.to(torch.float64)[:, None]
    for s in range(0, train.shape[0], step):
        tr = train[s:s + step].reshape(-1, xf.shape[1]).to(torch.float64)
        d = x2 - 2 * a * (xf @ tr.T) + a * a * tr.square().sum(1)[None, :]
        out.append(-d.clamp_min(0.0))
    return torch.cat(out, dim=1)


def ideal_log_weights(x: torch.Tensor, t, train_images: torch.Tensor) -> torch.Tensor:
    """The log posterior over training indices, ``log w_i(x, t)``, float64 of shape (B, N).

    ``w_i = softmax_i(-|x - (1-t) x_i|^2 / (2 t^2))``; at ``t = 0`` the uniform distribution over the nearest
    training images (``-inf`` elsewhere). ``x`` is (B, 1, H, W), ``t`` a scalar or (B,) in ``[0, 1]``.
    """
    train = _check_train(train_images)
    x, t = _check_query(x, train, t)
    t = t.to(torch.float64)
    neg = _ideal_neg_dist(x, train, 1 - t)
    denom, zero = _temperature(t)
    logw = torch.log_softmax(neg / denom[:, None], dim=1)
    if bool(zero.any()):
        logw = torch.where(zero[:, None], _zero_temperature_log_weights(neg), logw)
    return logw


def ideal_x0(x: torch.Tensor, t, train_images: torch.Tensor) -> torch.Tensor:
    """The ideal denoiser ``E[X_0 | X_t = x] = sum_i w_i(x, t) x_i`` for the empirical distribution, shaped like ``x``."""
    train = _check_train(train_images)
    w = ideal_log_weights(x, t, train).exp()
    out = torch.zeros(x.shape[0], train[0].numel(), dtype=torch.float64, device=x.device)
    step = max(1, CHUNK_ELEMENTS // max(1, train[0].numel()))
    for s in range(0, train.shape[0], step):
        out = out + w[:, s:s + step] @ train[s:s + step].reshape(-1, train[0].numel()).to(torch.float64)
    return out.reshape(x.shape).to(x.dtype)


# ---------------------------------------------------------------------------------------------- local denoiser


def _patches(images: torch.Tensor, r: int) -> torch.Tensor:
    """The zero-padded ``(2r+1)^2`` windows of (n, 1, H, W) images as a contiguous (H W, (2r+1)^2, n) tensor
    (position, offset in the window row-major, image). A strided view of the padded images, copied once."""
    n, _, H, W = images.shape
    k = 2 * r + 1
    padded = F.pad(images[:, 0], (r, r, r, r))
    windows = padded.unfold(1, k, 1).unfold(2, k, 1)                     # (n, H, W, k, k), a view
    return windows.permute(1, 2, 3, 4, 0).reshape(H * W, k * k, n).contiguous()


def _streaming_posterior_mean(y: torch.Tensor, t: torch.Tensor, bank) -> torch.Tensor:
    """The patch posterior mean of the centre pixel, ``(L, Q)``, for noisy windows ``y`` (L, Q, K) at times ``t`` (Q,).

    ``bank`` yields chunks ``(P, centre, count)`` of clean training patches, ``P`` (L, K, n), their centre pixels
    ``centre`` (L, n, 1) and their multiplicities ``count`` (n,) (``None``: each patch once): query ``q`` of group
    ``l`` is scored against the patches of group ``l`` only. The weights are ``count * exp(-|y - (1-t) P|^2 /
    (2 t^2))``, normalised over all chunks with a streaming (log-sum-exp) softmax; at ``t = 0`` the posterior is
    uniform over the nearest patches (counted with their multiplicities).
    """
    L, Q, _ = y.shape
    dtype = y.dtype
    a = 1 - t
    denom, zero = _temperature(t)
    # logits up to a per-(l, q) constant: -(|y|^2 - 2 a y.P + a^2 |P|^2) / (2 t^2); |y|^2 does not depend on the patch
    scale_cross = (2 * a / denom).view(1, Q, 1)
    scale_norm = (a * a / denom).view(1, Q, 1)
    zero3 = zero.view(1, Q, 1)
    y_scaled = (y * scale_cross).contiguous()
    any_zero = bool(zero.any())
    m = torch.full((L, Q), -math.inf, dtype=dtype, device=y.device)      # running max of the logits
    s = torch.zeros((L, Q), dtype=dtype, device=y.device)                # running normaliser
    acc = torch.zeros((L, Q), dtype=dtype, device=y.device)              # running weighted sum of centre pixels
    for P, centre, count in bank:
        norm = P.square().sum(1).unsqueeze(1)                            # (L, 1, n)
        # (L, Q, n); at t = 0 (a = 1, denominator 1) this is -distance + |y|^2, whose maximisers are kept below
        logits = torch.bmm(y_scaled, P) - scale_norm * norm
        if count is not None:  # log multiplicities, left out at t = 0 where only the nearest patches count
            logits = logits + torch.where(zero3, 0.0, count.to(dtype).log().view(1, 1, -1))
        m_new = torch.maximum(m, logits.amax(2))
        # exp clamped at -80: weights below e^-80 of the largest (together under n e^-80, 3e-28 for n = 15 million
        # patches) would otherwise underflow to subnormal numbers, which a CPU computes 10-15x slower (16 ns vs 1.1)
        e = torch.exp((logits - m_new.unsqueeze(2)).clamp_min_(-80.0))
        rescale = torch.exp(m - m_new)
        if any_zero:  # zero temperature: keep only the maximisers (the nearest patches), each with its multiplicity
            nearest = (logits == m_new.unsqueeze(2)).to(dtype)
            e = torch.where(zero3, nearest if count is None else nearest * count.to(dtype).view(1, 1, -1), e)
            rescale = torch.where(zero.view(1, Q), (m == m_new).to(dtype), rescale)
        s = s * rescale + e.sum(2)
        acc = acc * rescale + torch.bmm(e, centre).squeeze(2)
        m = m_new
    return acc / s


def local_x0(x: torch.Tensor, t, train_images: torch.Tensor, radius: int) -> torch.Tensor:
    """The optimal strictly local denoiser of receptive-field radius ``radius``, shaped like ``x``.

    Output pixel ``p`` is ``sum_i w_{i,p} x_i[p]`` with ``w_{i,p} = softmax_i(-|x[W_p] - (1-t) x_i[W_p]|^2 / (2 t^2))``,
    ``W_p`` the zero-padded ``(2r+1)^2`` window around ``p``. Computed in the dtype of ``train_images`` (``x`` is cast
    to it), as ``(HW)`` batched matrix products over chunks of training images with a streaming softmax; at
    ``t = 0`` the posterior is uniform over the training patches nearest to the window. In float32 the result agrees
    with float64 to about ``1e-4`` on MNIST down to ``t = 0.003``; use ``.double()`` images for exact comparisons.
    """
    train, r, x, t = _check_local(x, t, train_images, radius)
    dtype = train.dtype
    B, _, H, W = x.shape
    L, k = H * W, 2 * r + 1
    y = _patches(x.to(dtype), r).transpose(1, 2)                          # (L, B, K): noisy windows
    step = max(1, CHUNK_ELEMENTS // max(1, L * max(B, k * k)))

    def bank():
        for start in range(0, train.shape[0], step):
            tr = train[start:start + step].to(device=x.device)
            yield _patches(tr, r), tr.reshape(tr.shape[0], L).T.unsqueeze(2), None   # (L, K, n), (L, n, 1)

    out = _streaming_posterior_mean(y, t.to(dtype), bank())
    return out.T.reshape(B, 1, H, W).to(x.dtype)


def equivariant_local_x0(x: torch.Tensor, t, train_images: torch.Tensor, radius: int) -> torch.Tensor:
    """The translation-equivariant optimal local denoiser (Kamb and Ganguli's "equivariant local score machine").

    Like :func:`local_x0`, but the patch distribution at every position is the *pooled* one: the zero-padded
    ``(2r+1)^2`` windows of all ``N`` training images at all ``HW`` positions (a bank of ``N HW`` patches, border
    windows included with their zeros). Output pixel ``p`` is the posterior mean of a bank patch's centre given the
    noisy window ``x[W_p]``, so the map commutes with translations away from the border. Cost: ``2 (B HW) (N HW)
    (2r+1)^2`` flops, ``HW`` times the position-dependent one; use a few hundred training images.
    """
    train, r, x, t = _check_local(x, t, train_images, radius)
    dtype = train.dtype
    B, _, H, W = x.shape
    L, k = H * W, 2 * r + 1
    # the bank once: every window of every training image, identical ones merged with their counts (MNIST: 2-4x
    # fewer at r = 1-3, all-zero windows above all), deduplicated per chunk of images and then across chunks
    parts, step = [], max(1, CHUNK_ELEMENTS // (L * k * k))
    for start in range(0, train.shape[0], step):
        windows = _patches(train[start:start + step].to(device=x.device), r).permute(1, 0, 2).reshape(k * k, -1).T
        parts.append(torch.unique(windows, dim=0, return_counts=True))
    P, inverse = torch.unique(torch.cat([u for u, _ in parts]), dim=0, return_inverse=True)   # (m, K)
    count = torch.zeros(len(P), dtype=torch.long, device=x.device).index_add_(0, inverse, torch.cat([c for _, c in parts]))
    centre = P[:, (k * k) // 2]
    # query images in groups of bq and the bank in slices of n patches, so that one logits block (bq L) x n holds
    # about `block` entries (at least 8 L patches per slice where possible)
    block = _logits_block()
    bq = min(B, max(1, block // (L * L * 8)))
    n = max(1, block // max(1, L * bq, k * k))

    def bank():
        for s0 in range(0, len(P), n):
            yield P[s0:s0 + n].T.unsqueeze(0), centre[s0:s0 + n].reshape(1, -1, 1), count[s0:s0 + n]

    out = []
    for b0 in range(0, B, bq):
        y = _patches(x[b0:b0 + bq].to(dtype), r).permute(2, 0, 1).reshape(1, -1, k * k)   # (1, bq L, K), image-major
        tb = t[b0:b0 + bq].to(dtype).repeat_interleave(L)
        out.append(_streaming_posterior_mean(y, tb, bank()).reshape(-1, 1, H, W))
    return torch.cat(out).to(x.dtype)


def interior_local_x0(x: torch.Tensor, t, train_images: torch.Tensor, radius: int, margin: int,
                      pixels: torch.Tensor) -> torch.Tensor:
    """The best translation-equivariant local estimate of one pixel per image, from a bank of every training image.

    For noisy image ``x[b]`` (B, 1, H, W) at time ``t``, the posterior mean of the clean pixel at ``pixels[b] = (i, j)``
    given the noisy ``(2r+1)^2`` window around it only, when the clean image is one of the ``N`` training images and
    the position is uniform over the *interior*, the positions at least ``margin`` (``>= radius``) pixels from the
    border: the bank is the windows of all ``N`` images at all ``(H - 2 margin)(W - 2 margin)`` interior positions
    (no padding inside it), streamed in slices and never held whole. For that distribution it is the Bayes-optimal
    function of the window, so no strictly local network of receptive-field radius at most ``radius`` has a smaller
    mean squared error there (chapter "Beyond the paper", the ceiling). Returns (B,) in the dtype of ``train_images``;
    cost ``2 B N (H - 2 margin)(W - 2 margin)(2r+1)^2`` flops (all 60,000 MNIST images are fine on one CPU core).
    """
    train, r, x, t = _check_local(x, t, train_images, radius)
    B, _, H, W = x.shape
    m = integer(margin, "margin (pixels from the border; at least the radius)", minimum=r)
    if 2 * m >= min(H, W):
        raise InputError(f"margin {m} leaves no interior in {H}x{W} images; use a margin below {min(H, W) // 2}")
    pixels = torch.as_tensor(pixels)
    if pixels.shape != (B, 2) or pixels.dtype not in (torch.int32, torch.int64):
        raise InputError(f"pixels must be an integer tensor of shape ({B}, 2), one (row, column) per image; got "
                         f"{tuple(pixels.shape)} of dtype {pixels.dtype}")
    inside = (pixels >= m) & (pixels < torch.tensor([H - m, W - m]))
    if not bool(inside.all()):
        raise InputError(f"pixels must lie in the interior rows and columns {m}..{H - m - 1} (margin {m}); got "
                         f"{pixels[~inside.all(1)][0].tolist()}")
    dtype, k = train.dtype, 2 * r + 1
    offsets = torch.arange(-r, r + 1)
    rows = (pixels[:, 0, None] + offsets)[:, :, None].expand(B, k, k)
    cols = (pixels[:, 1, None] + offsets)[:, None, :].expand(B, k, k)
    y = x[torch.arange(B)[:, None, None], 0, rows, cols].reshape(1, B, k * k).to(dtype)   # noisy windows, row-major
    # the bank in slices of about CACHE_BLOCK logits, its images in chunks of about CHUNK_ELEMENTS window entries
    n = max(1, _logits_block() // B)
    step = max(1, CHUNK_ELEMENTS // ((H - 2 * m) * (W - 2 * m) * k * k))

    def bank():
        for start in range(0, train.shape[0], step):
            sub = train[start:start + step, 0, m - r:H - m + r, m - r:W - m + r].to(device=x.device)
            P = sub.unfold(1, k, 1).unfold(2, k, 1).reshape(-1, k * k)                    # (windows, K), a copy
            for s0 in range(0, P.shape[0], n):
                yield P[s0:s0 + n].T[None], P[s0:s0 + n, k * k // 2].reshape(1, -1, 1), None

    return _streaming_posterior_mean(y, t.to(dtype), bank())[0]


# ---------------------------------------------------------------------------------------------- one pixel: gap and bound


@dataclass
class PixelGap:
    """Per noisy image ``x``, for one pixel ``A`` and its window ``W = A u B`` (receptive-field radius ``r``), under the
    empirical distribution (:func:`pixel_gaps`; chapter "Beyond the paper", the theorem tested on the denoisers).
    Means over ``x ~ p_t`` of the training images give the informations named; ``C`` is the rest of the image."""

    excess: torch.Tensor  # (B,) (E[X0_A | x] - E[X0_A | x_W])^2: its mean is the best local model's excess error
    kl: torch.Tensor  # (B,) KL(p(x0_A | x) || p(x0_A | x_W)); mean: I(X0_A : X_C | X_W), the bound's information
    kl_b: torch.Tensor  # (B,) KL(p(x0_A | x without A) || p(x0_A | x_B)); mean: I(X0_A : X_C | X_B)
    log_ratio: torch.Tensor  # (B,) log p(x_A | rest) - log p(x_A | x_B); mean: I(A : C | B) of X_t, the map's CMI


def _group_log_probs(logw: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """``log sum_{i in g} exp(logw[:, i])`` for each group ``g`` (B, n_groups), in log space (no underflow)."""
    idx = group[None].expand_as(logw)
    top = torch.full((logw.shape[0], n_groups), -math.inf, dtype=logw.dtype, device=logw.device)
    top = top.scatter_reduce(1, idx, logw, reduce="amax", include_self=True)
    shifted = torch.exp(logw - top.gather(1, idx))
    total = torch.zeros_like(top).scatter_add_(1, idx, shifted)
    return torch.log(total) + top


def _kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` per row of two log-probability tables (terms with ``p = 0`` are 0)."""
    p = logp.exp()
    return torch.where(p > 0, p * (logp - logq), torch.zeros_like(p)).sum(1)


def pixel_gaps(x: torch.Tensor, t, train_images: torch.Tensor, radii, pixel: tuple[int, int]) -> dict[int, PixelGap]:
    """The local-versus-global gap at one pixel and the information that bounds it, exactly, for each radius.

    For the empirical distribution of ``train_images`` (N, 1, H, W) on the path ``X_t = (1-t) X_0 + t Z``, noisy
    images ``x`` (B, 1, H, W) at ``0 < t <= 1``, pixel ``A = pixel`` and each receptive-field radius ``r`` in
    ``radii`` (the window ``W`` of side ``2r + 1`` around ``A``, inside the image; ``B = W`` minus ``A``): the
    posteriors of ``X0_A`` given the whole noisy image and given its window are discrete (the training images' values
    at ``A``), so the best local denoiser's squared gap to the ideal one and ``KL`` between the two posteriors are
    exact per image. Pinsker's inequality bounds the first by half the second, image by image, because pixels lie in
    ``[0, 1]``: ``(E_p - E_q)^2 <= TV(p, q)^2 <= KL(p || q) / 2``. Averaged over ``x ~ p_t``: the excess error of the
    best radius-``r`` denoiser is at most ``I(X0_A : X_C | X_W) / 2``, and by the chain rule (``X_A`` is ``X0_A`` plus
    independent noise) ``I(X0_A : X_C | X_W) = I(X0_A : X_C | X_B) - I(X_A : X_C | X_B)``: the map's CMI is the part of
    the clean pixel's conditional information that its own noisy value carries. Cost: one (B, HW) x (HW, N) product.
    """
    train = _check_train(train_images)
    x, t = _check_query(x, train, t)
    if bool((t <= 0).any()):
        raise InputError("pixel_gaps needs 0 < t <= 1 (at t = 0 the posteriors are point masses on the nearest images)")
    H, W = train.shape[2:]
    i, j = (integer(v, "pixel coordinate", minimum=0) for v in pixel)
    rs = [_check_radius(r) for r in radii]
    if not rs or i >= H or j >= W or any(not (r <= i < H - r and r <= j < W - r) for r in rs):
        raise InputError(f"pixel {pixel} with radii {list(radii)}: every window must lie inside the {H}x{W} image "
                         "(crop the images or use smaller radii)")
    t = t.to(torch.float64)
    a, denom = 1 - t, (2 * t * t)[:, None]
    values, group = torch.unique(train[:, 0, i, j].to(torch.float64), return_inverse=True)
    V = values.numel()
    xa = x[:, 0, i, j].to(torch.float64)
    neg_a = -(xa[:, None] - a[:, None] * values[group][None]) ** 2 / denom  # (B, N) A's own term
    neg_all = _ideal_neg_dist(x, train, a) / denom
    neg_rest = neg_all - neg_a  # every pixel but A
    lse = torch.logsumexp
    log_p = _group_log_probs(torch.log_softmax(neg_all, 1), group, V)  # p(x0_A | x)
    log_p_rest = _group_log_probs(torch.log_softmax(neg_rest, 1), group, V)  # p(x0_A | x without A)
    mean_p = (log_p.exp() * values).sum(1)
    out = {}
    for r in rs:
        win = (..., slice(i - r, i + r + 1), slice(j - r, j + r + 1))
        neg_w = _ideal_neg_dist(x[win], train[win], a) / denom
        neg_b = neg_w - neg_a
        log_q = _group_log_probs(torch.log_softmax(neg_w, 1), group, V)  # p(x0_A | x_W)
        log_q_b = _group_log_probs(torch.log_softmax(neg_b, 1), group, V)  # p(x0_A | x_B)
        out[r] = PixelGap(excess=(mean_p - (log_q.exp() * values).sum(1)) ** 2, kl=_kl(log_p, log_q),
                          kl_b=_kl(log_p_rest, log_q_b),
                          log_ratio=(lse(neg_all, 1) - lse(neg_rest, 1)) - (lse(neg_w, 1) - lse(neg_b, 1)))
    return out


# ---------------------------------------------------------------------------------------------- modules


class _ClosedForm(nn.Module):
    """Shared interface: frozen training images, ``prediction``, ``radius``, ``config`` and ``forward``."""

    radius: int | None = None

    def __init__(self, train_images: torch.Tensor, prediction: str):
        super().__init__()
        train = _check_train(train_images).detach().clone()
        if prediction not in ("velocity", "x0"):
            raise InputError(f"a closed-form denoiser predicts 'velocity' or 'x0'; got {prediction!r}")
        self.prediction = check_prediction(prediction)
        self.train_images = nn.Parameter(train, requires_grad=False)

    @property
    def config(self) -> dict:
        return dict(self._config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config.items())

    def x0(self, x: torch.Tensor, t) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = check_inputs(x, t)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x0_hat = self.x0(x, t)
        if self.prediction == "x0":
            return x0_hat
        if bool((t == 0).any()):
            raise ValueError(
                "the velocity of a closed-form (empirical) denoiser is infinite at t = 0 away from the training "
                "images; evaluate it at t > 0 (Euler steps never call the model at t = 0) or build the model with "
                "prediction='x0', whose value at t = 0 is the nearest training image (patch)")
        return path.to_velocity(x0_hat, "x0", x, t)


class IdealDenoiser(_ClosedForm):
    """The ideal (empirical) denoiser ``E[X_0 | X_t = x]`` of a training set: a softmax over the training images.

    ``IdealDenoiser(train_images)`` with ``train_images`` (N, 1, H, W) in ``[0, 1]``. Its flow carries any noise to a
    training image: it memorises. ``log_weights(x, t)`` gives the posterior over training indices. Chapter
    "Beyond the paper".
    """

    def __init__(self, train_images: torch.Tensor, prediction: str = "velocity"):
        super().__init__(train_images, prediction)
        self.radius = None
        self._config = dict(n_train=int(self.train_images.shape[0]), prediction=prediction,
                            image_size=int(self.train_images.shape[-1]))

    def log_weights(self, x: torch.Tensor, t) -> torch.Tensor:
        """The log posterior over training indices, (B, N) float64 (:func:`ideal_log_weights`)."""
        return ideal_log_weights(x, t, self.train_images)

    def x0(self, x: torch.Tensor, t) -> torch.Tensor:
        """The clean-image estimate ``E[X_0 | X_t = x]`` (:func:`ideal_x0`), defined on all of ``[0, 1]``."""
        return ideal_x0(x, t, self.train_images)


class LocalPosteriorDenoiser(_ClosedForm):
    """The optimal strictly local denoiser of receptive-field radius ``r`` for a training set (no training).

    Output pixel ``p`` is the posterior mean of ``X_0[p]`` given the noisy ``(2r+1)^2`` window around ``p`` under the
    empirical distribution of the training patches at ``p`` (:func:`local_x0`; borders zero-padded). Every output pixel
    depends exactly on the inputs within Chebyshev distance ``r``. ``radius = 0`` is the pixel-wise posterior mean.
    ``equivariant=True`` pools the patches of all positions instead (:func:`equivariant_local_x0`, Kamb and Ganguli's
    equivariant machine). Chapter "Beyond the paper".
    """

    def __init__(self, train_images: torch.Tensor, radius: int, prediction: str = "velocity",
                 equivariant: bool = False):
        super().__init__(train_images, prediction)
        self.radius = _check_radius(radius)
        if not isinstance(equivariant, bool):
            raise TypeError(f"equivariant must be True or False; got {equivariant!r}")
        self.equivariant = equivariant
        self._config = dict(radius=self.radius, n_train=int(self.train_images.shape[0]), prediction=prediction,
                            image_size=int(self.train_images.shape[-1]), equivariant=equivariant)

    def x0(self, x: torch.Tensor, t) -> torch.Tensor:
        """The clean-image estimate pixel by pixel from the windows (:func:`local_x0` or
        :func:`equivariant_local_x0`), defined on all of ``[0, 1]``."""
        fn = equivariant_local_x0 if self.equivariant else local_x0
        return fn(x, t, self.train_images, self.radius)
