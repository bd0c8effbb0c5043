"""Exact mutual information and conditional mutual information: the ground truth every estimator is checked on.

Chapters "CMI and the Markov length" and "Estimating CMI" use this module. Everything is in **nats**, on the
path ``X_t = (1 - t) X_0 + t Z``, with the regions of the notation page: ``A`` the denoised pixel(s), ``B`` the
buffer (square annulus of Chebyshev **buffer radius** ``r``), ``C`` the rest.

Exactly solvable models:

* Gaussian data (any covariance): :func:`gaussian_cmi`, :func:`path_covariance`; the nearest-neighbour Gaussian
  Markov random field :func:`gmrf_covariance` (CMI exactly 0 at ``t = 0``, positive after noise); the AR(1) chain
  seen through the path's noise, whose Markov length :func:`ar1_markov_length` is in closed form.
* The two-class Gaussian mixture :func:`mixture_cmi` (exact through sums of pixels and 1-D quadrature).
* Small Ising lattices by enumeration: :func:`ising_cmi` (discrete, ``t = 0``) and :func:`ising_noisy_cmi`
  (Monte Carlo with exact likelihoods along the path).
* The Gaussian surrogate of an image data set, :func:`surrogate_cmi_map` (the exact CMI map of a Gaussian with
  the data's covariance, on the paper's geometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .checks import InputError, disjoint_regions, indices, integer, number, real_array, unit_time, unit_times
from .path import marginal_covariance, marginal_variance

__all__ = [
    "gaussian_cmi",
    "gaussian_mi",
    "gaussian_cmi_logdet",
    "path_covariance",
    "regions",
    "PAPER_CROP",
    "paper_crop",
    "paper_a_pixel",
    "gmrf_precision",
    "gmrf_covariance",
    "ar1_covariance",
    "ar1_markov_length",
    "ar1_decay_factor",
    "mixture_snr",
    "mixture_class_entropy",
    "mixture_cmi",
    "mixture_mi",
    "mixture_critical_time",
    "mixture_sample",
    "mixture_log_density",
    "ising_states",
    "ising_distribution",
    "ising_cmi",
    "entropy",
    "table_entropy",
    "table_cmi",
    "ising_noisy_cmi",
    "gaussian_surrogate",
    "surrogate_cmi_map",
    "SurrogateMap",
]


# ----------------------------------------------------------------------------------------------------------
# Gaussian CMI
# ----------------------------------------------------------------------------------------------------------


def _as_cov(cov) -> np.ndarray:
    if torch.is_tensor(cov):
        cov = cov.detach().cpu().to(torch.float64).numpy()
    cov = real_array(cov, "a covariance matrix", "a square 2-D array of numbers")
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"a covariance matrix must be square 2-D, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("the covariance matrix contains NaN or inf")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(cov).max(initial=0.0)))):
        raise ValueError("the covariance matrix is not symmetric; pass (cov + cov.T) / 2 if it is round-off")
    return cov


def _as_index(name: str, idx, d: int) -> np.ndarray:
    if torch.is_tensor(idx):
        idx = idx.detach().cpu().numpy()
    try:
        arr = np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx).reshape(-1)
    except TypeError:
        raise InputError(f"region {name} must be a list of integer (flat) indices, got {idx!r}") from None
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"region {name} must be a list of integer (flat) indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= d:
        raise ValueError(f"region {name} has indices outside [0, {d - 1}] (min {arr.min()}, max {arr.max()})")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"region {name} lists an index twice")
    return arr


def _check_regions(d: int, A, B, C) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A, B, C = _as_index("A", A, d), _as_index("B", B, d), _as_index("C", C, d)
    if A.size == 0 or C.size == 0:
        raise ValueError("regions A and C must be non-empty (B may be empty)")
    for n1, r1, n2, r2 in (("A", A, "B", B), ("A", A, "C", C), ("B", B, "C", C)):
        common = np.intersect1d(r1, r2)
        if common.size:
            raise ValueError(f"regions {n1} and {n2} overlap at indices {common[:5].tolist()}; they must be disjoint")
    return A, B, C


def _chol(S: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        ev = np.linalg.eigvalsh(S).min() if S.size else 0.0
        raise ValueError(
            f"the covariance of {what} is not positive definite (smallest eigenvalue {ev:.3g}); "
            "a Gaussian with a singular covariance has infinite or undefined MI. Drop constant pixels, "
            "or use t > 0 (path_covariance adds t^2 I)."
        ) from None


def _tri_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``L^{-1} B`` for lower-triangular ``L`` (a true triangular solve; numpy has none without scipy)."""
    Bt = torch.from_numpy(np.ascontiguousarray(B))
    vec = Bt.ndim == 1
    out = torch.linalg.solve_triangular(torch.from_numpy(L), Bt[:, None] if vec else Bt, upper=False)
    return (out[:, 0] if vec else out).numpy()


def _logdet(S: np.ndarray, what: str) -> float:
    if S.size == 0:
        return 0.0
    return 2.0 * float(np.log(np.diag(_chol(S, what))).sum())


def gaussian_cmi(cov, A: Sequence[int], B: Sequence[int], C: Sequence[int]) -> float:
    """``I(A:C|B)`` in nats for a Gaussian vector with covariance ``cov`` (numpy or torch, any float dtype).

    ``A``, ``B``, ``C`` are disjoint lists of flat indices; ``B`` may be empty (then this is ``I(A:C)``).
    Mathematically ``I(A:C|B) = 1/2 [logdet S_AB + logdet S_BC - logdet S_B - logdet S_ABC]``
    (:func:`gaussian_cmi_logdet` evaluates exactly that). Here it is computed in float64 through the
    conditional covariances given ``B`` (Cholesky solves), as ``-1/2 sum log(1 - rho_k^2)`` over the
    partial canonical correlations ``rho_k`` of ``A`` and ``C`` given ``B``. This form keeps full *relative*
    precision when the CMI is tiny (a decay over many buffer radii can be fitted down to ``1e-25``), where the
    difference of four log-determinants bottoms out at round-off (``~1e-13``).
    Raises ``ValueError`` for overlapping or out-of-range indices and for a covariance that is not positive
    definite on ``A u B u C``.
    """
    S = _as_cov(cov)
    A, B, C = _check_regions(S.shape[0], A, B, C)
    AC = np.concatenate([A, C])
    S_ac = S[np.ix_(AC, AC)]
    if B.size:
        L_b = _chol(S[np.ix_(B, B)], "B")
        W = _tri_solve(L_b, S[np.ix_(B, AC)])  # L_b^{-1} S_B,AC
        S_ac = S_ac - W.T @ W  # conditional covariance of (A, C) given B
    _chol(S_ac, "A u C given B (so A u B u C)")
    na = A.size
    L_a = _chol(S_ac[:na, :na], "A given B")
    L_c = _chol(S_ac[na:, na:], "C given B")
    M = _tri_solve(L_a, S_ac[:na, na:])
    M = _tri_solve(L_c, M.T).T  # L_a^{-1} S_AC|B L_c^{-T}
    rho2 = np.linalg.svd(M, compute_uv=False) ** 2
    if np.any(rho2 >= 1.0):
        raise ValueError("A and C are perfectly correlated given B: the CMI is infinite")
    return float(-0.5 * np.log1p(-rho2).sum())


def gaussian_cmi_logdet(cov, A: Sequence[int], B: Sequence[int], C: Sequence[int]) -> float:
    """``I(A:C|B) = 1/2 [logdet S_AB + logdet S_BC - logdet S_B - logdet S_ABC]`` evaluated literally.

    Same result as :func:`gaussian_cmi` up to round-off ``~1e-13``; kept as the textbook formula to compare with.
    """
    S = _as_cov(cov)
    A, B, C = _check_regions(S.shape[0], A, B, C)

    def ld(idx, what):
        return _logdet(S[np.ix_(idx, idx)], what)

    AB, BC, ABC = np.concatenate([A, B]), np.concatenate([B, C]), np.concatenate([A, B, C])
    return 0.5 * (ld(AB, "A u B") + ld(BC, "B u C") - ld(B, "B") - ld(ABC, "A u B u C"))


def gaussian_mi(cov, A: Sequence[int], C: Sequence[int]) -> float:
    """``I(A:C)`` in nats for a Gaussian vector with covariance ``cov``: :func:`gaussian_cmi` with empty ``B``."""
    return gaussian_cmi(cov, A, [], C)


def path_covariance(cov0, t: float):
    """The covariance of ``X_t = (1-t) X_0 + t Z``: ``(1-t)^2 cov0 + t^2 I`` (same type as ``cov0``)."""
    return marginal_covariance(cov0, unit_time(t))


# ----------------------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------------------


PAPER_CROP = 27  # the paper's crop side: MNIST's 28 x 28 minus the first row and the first column


def _shape(shape, dims: tuple[int, ...] | None = (1, 2)) -> tuple[int, ...]:
    """A lattice or image shape as a tuple of positive ints: ``(n,)`` or ``(H, W)`` (any length when ``dims`` is None);
    a bare integer ``n`` means ``(n,)``."""
    what = "shape must be (n,) or (H, W) with positive sizes (integers)" if dims else \
        "shape must be a tuple of positive sizes (integers)"
    items = shape if isinstance(shape, (tuple, list)) else (shape,)
    try:
        out = tuple(integer(v, "a size") for v in items)
    except InputError:
        raise InputError(f"{what}; got {shape!r}") from None
    if not out or (dims and len(out) not in dims):
        raise InputError(f"{what}; got {shape!r}")
    return out


def paper_crop(images, crop: int = PAPER_CROP):
    """The paper's crop: drop the **first** ``H - crop`` rows and columns (``x[..., 1:, 1:]`` for 28 -> 27).

    Works on arrays or tensors whose last two axes are ``(H, H)``. With ``crop = 27`` on MNIST the centre pixel of
    the crop, ``A = (13, 13)``, is pixel ``(14, 14)`` of the original image (:func:`paper_a_pixel`). This is the one
    definition of the geometry that the CMI map, the Gaussian surrogate, the transition lab and the assignments use.
    """
    shape = getattr(images, "shape", None)
    if shape is None or len(shape) < 2:
        raise InputError(f"images must be an array or tensor of shape (..., H, H); got "
                         f"{type(images).__name__}{'' if shape is None else f' of shape {tuple(shape)}'}")
    H, W = images.shape[-2], images.shape[-1]
    if H != W:
        raise InputError(f"images must be square in their last two axes, got {H} x {W}")
    k = H - integer(crop, "crop", 3, H)
    return images[..., k:, k:]


def paper_a_pixel(side: int = 28, crop: int = PAPER_CROP) -> tuple[int, int]:
    """``A``'s (row, column) in the **original** ``side x side`` image: the centre of :func:`paper_crop`."""
    side = integer(side, "side", minimum=3)
    crop = integer(crop, "crop", 3, side)
    k = side - crop
    return (k + crop // 2, k + crop // 2)


def regions(shape, center, r: int) -> tuple[list[int], list[int], list[int]]:
    """The paper's regions as flat index lists ``(A, B, C)`` on an image of ``shape`` ``(H, W)`` (or a chain ``(n,)``).

    ``A = [center]``; ``B`` the square annulus of Chebyshev **buffer radius** ``r`` around it (``(2r+1)^2 - 1``
    pixels in 2-D, ``2r`` on a chain; empty for ``r = 0``); ``C`` every other pixel (may be empty when the square
    fills the image). ``center`` is ``(i, j)`` (row, column) or an int on a chain; ``None`` means the central
    pixel ``(H // 2, W // 2)``. Flat index of ``(i, j)`` is ``i * W + j`` (row-major, as ``x.reshape(-1)``).
    Raises ``ValueError`` if the ``(2r+1)``-square does not fit inside the image.
    """
    shape = _shape(shape)
    r = integer(r, "the buffer radius r", minimum=0)
    if center is None:
        center = tuple(s // 2 for s in shape)
    if isinstance(center, np.ndarray):
        center = center.tolist()
    center = tuple(integer(c, "center (a pixel index)", minimum=None)
                   for c in (center if isinstance(center, (tuple, list)) else (center,)))
    if len(center) != len(shape):
        raise ValueError(f"center {center} does not match the shape {shape}")
    for c, s in zip(center, shape):
        if not 0 <= c < s:
            raise ValueError(f"center {center} lies outside the image of shape {shape}")
        if c - r < 0 or c + r >= s:
            raise ValueError(
                f"the square of buffer radius r={r} around {center} does not fit in shape {shape}; "
                f"use r <= {min(min(c, s - 1 - c) for c, s in zip(center, shape))}"
            )
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    dist = np.max(np.stack([np.abs(g - c) for g, c in zip(grids, center)]), axis=0).reshape(-1)
    flat = np.arange(dist.size)
    a = int(np.ravel_multi_index(center, shape))
    B = [int(i) for i in flat[(dist <= r) & (dist > 0)]]
    C = [int(i) for i in flat[dist > r]]
    return [a], B, C


# ----------------------------------------------------------------------------------------------------------
# Gaussian Markov random field and the AR(1) chain
# ----------------------------------------------------------------------------------------------------------


def gmrf_precision(shape, kappa: float, periodic: bool = False) -> np.ndarray:
    """Precision of the nearest-neighbour Gaussian Markov random field on a lattice of ``shape`` (``(n,)`` or ``(H, W)``).

    ``Q = (2 d + kappa^2) I - Adj``, with ``d`` the lattice dimension and ``Adj`` the 0/1 adjacency of
    nearest neighbours (2 per site on a chain, 4 in 2-D; open boundary unless ``periodic``). It is strictly
    diagonally dominant, hence positive definite, for ``kappa > 0``; the correlation length is about ``1/kappa``.
    Because ``Q_ij = 0`` unless ``i, j`` are neighbours, ``I(A:C|B) = 0`` whenever ``B`` separates ``A`` from ``C``
    in the lattice graph (any buffer radius ``r >= 1``) at ``t = 0``.
    """
    shape = _shape(shape)
    kappa = number(kappa, "kappa (kappa = 0 gives a singular precision)", above=0.0)
    n = int(np.prod(shape))
    Q = (2 * len(shape) + kappa**2) * np.eye(n)
    idx = np.arange(n).reshape(shape)
    for axis, size in enumerate(shape):
        if size < 2:
            continue
        nxt = np.roll(idx, -1, axis=axis)
        src, dst = idx, nxt
        if not periodic:
            sl = [slice(None)] * len(shape)
            sl[axis] = slice(0, size - 1)
            src, dst = idx[tuple(sl)], nxt[tuple(sl)]
        elif size == 2:  # a periodic ring of 2 would double-count the same edge
            sl = [slice(None)] * len(shape)
            sl[axis] = slice(0, 1)
            src, dst = idx[tuple(sl)], nxt[tuple(sl)]
        Q[src.reshape(-1), dst.reshape(-1)] -= 1.0
        Q[dst.reshape(-1), src.reshape(-1)] -= 1.0
    return Q


def gmrf_covariance(shape, kappa: float, periodic: bool = False) -> np.ndarray:
    """The covariance ``Q^{-1}`` of :func:`gmrf_precision` (symmetrised against round-off)."""
    Q = gmrf_precision(shape, kappa, periodic)
    L = np.linalg.cholesky(Q)
    Linv = np.linalg.solve(L, np.eye(Q.shape[0]))
    return Linv.T @ Linv


def ar1_covariance(n: int, rho: float, sigma: float = 1.0, t: float = 0.0) -> np.ndarray:
    """Covariance of a stationary AR(1) chain of ``n`` sites, ``Cov(X_i, X_j) = sigma^2 rho^|i-j|``, seen at path time ``t``.

    ``X_{i+1} = rho X_i + sigma sqrt(1 - rho^2) eps_i``; at ``t > 0`` this returns
    :func:`path_covariance` of it, the covariance of the noisy chain ``(1-t) X + t Z`` (a hidden Markov chain).
    """
    n = integer(n, "n")
    rho, sigma = _ar1_params(rho, sigma)
    k = np.arange(n)
    cov0 = sigma**2 * float(rho) ** np.abs(k[:, None] - k[None, :])
    return path_covariance(cov0, t)


def _ar1_params(rho, sigma) -> tuple[float, float]:
    return (number(rho, "rho (the correlation of neighbours; a stationary chain has |rho| < 1)", above=-1.0, below=1.0),
            number(sigma, "sigma", above=0.0))


def ar1_decay_factor(rho: float, t: float, sigma: float = 1.0) -> float:
    """The factor ``lambda = rho (1 - G)`` by which the noisy chain's dependence shrinks per site of buffer.

    ``Y = (1-t) X + t Z`` is the chain ``X`` observed with noise of variance ``s^2 = t^2 / (1-t)^2`` (in units of
    ``X``). Conditioning on the buffer runs a Kalman filter through it; its steady-state predicted variance ``P``
    solves the Riccati fixed point ``P = rho^2 P s^2 / (P + s^2) + q`` with ``q = sigma^2 (1 - rho^2)``, the
    gain is ``G = P / (P + s^2)``, and each buffer site multiplies the conditional covariance between the two
    sides by ``rho (1 - G) = rho s^2 / (P + s^2)`` (this is also the MA root of the ARMA(1,1) form of ``Y``).
    ``lambda = 0`` at ``t = 0`` (no noise: the chain is Markov) and ``lambda -> rho`` as ``t -> 1``.
    """
    t = unit_time(t)
    rho, sigma = _ar1_params(rho, sigma)
    if t == 0.0:
        return 0.0
    if t == 1.0:
        return float(rho)
    s2 = (t / (1.0 - t)) ** 2
    q = sigma**2 * (1.0 - rho**2)
    b = s2 * (1.0 - rho**2) - q
    P = 0.5 * (-b + math.sqrt(b * b + 4.0 * q * s2))
    return float(rho * s2 / (P + s2))


def ar1_markov_length(rho: float, t: float, sigma: float = 1.0) -> float:
    """Closed-form Markov length ``xi`` of the noisy AR(1) chain at path time ``t``: ``I(A:C|B) ~ gamma e^{-r/xi}``.

    The partial correlation of ``A`` and ``C`` given a buffer of ``r`` sites on each side decays as
    ``lambda^r`` (:func:`ar1_decay_factor`) and the CMI as its square, so ``xi = -1 / (2 log |lambda|)``.
    ``xi = 0`` at ``t = 0`` (CMI exactly 0 for ``r >= 1``) and ``xi -> -1/(2 log |rho|)`` as ``t -> 1`` (where the
    prefactor ``gamma`` vanishes: at ``t = 1`` the CMI is 0; the value returned there is this limit).
    """
    lam = abs(ar1_decay_factor(rho, t, sigma))
    if lam == 0.0:
        return 0.0
    return -1.0 / (2.0 * math.log(lam))


# ----------------------------------------------------------------------------------------------------------
# Two-class Gaussian mixture
# ----------------------------------------------------------------------------------------------------------

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(160)
_GH_W = _GH_W / _GH_W.sum()  # E[f(G)] for G ~ N(0, 1)


def _mixture_params(mu, sigma0) -> tuple[float, float]:
    return number(mu, "mu"), number(sigma0, "sigma0", at_least=0.0)


def mixture_snr(t: float, mu: float = 0.5, sigma0: float = 0.15) -> float:
    """Per-pixel signal-to-noise ratio ``g(t) = m^2 / tau^2`` of the mixture on the path.

    ``X_0 = s mu 1 + sigma0 eps`` with ``s = +-1``; then ``X_t = s m 1 + tau eta`` with ``m = (1-t) mu`` and
    ``tau^2 = (1-t)^2 sigma0^2 + t^2``, pixels independent given ``s``.
    """
    t = unit_time(t)
    mu, sigma0 = _mixture_params(mu, sigma0)
    tau2 = marginal_variance(sigma0**2, t)
    if tau2 == 0.0:
        raise ValueError("sigma0 = 0 at t = 0 makes the mixture singular; use sigma0 > 0 or t > 0")
    return (1 - t) ** 2 * mu**2 / tau2


def mixture_class_entropy(k, t: float, mu: float = 0.5, sigma0: float = 0.15):
    """``H(s | X_S)`` in nats for a set ``S`` of ``k`` pixels (``k`` may be an array), exactly by quadrature.

    The posterior log-odds of ``s`` given ``X_S`` is ``L = 2 m S_S / tau^2`` with ``S_S`` the sum of the pixels, and
    given ``s = +1``, ``L ~ N(2 k g, 4 k g)`` (``g`` = :func:`mixture_snr`). By symmetry
    ``H(s | X_S) = E[log(1 + e^{-L})]``, a one-dimensional Gaussian expectation (160-point Gauss–Hermite).
    ``k = 0`` gives ``log 2``.
    """
    raw = None if isinstance(k, (str, bytes, bool, np.bool_)) or k is None else np.asarray(k)
    if raw is None or raw.dtype.kind not in "iu" or np.any(raw < 0):
        raise InputError(f"k must be a non-negative integer (a number of pixels) or an array of them; got {k!r}")
    g = mixture_snr(t, mu, sigma0)
    k = raw.astype(np.float64)
    mean = 2.0 * k * g
    sd = np.sqrt(4.0 * k * g)
    L = mean[..., None] + sd[..., None] * _GH_X
    return (np.logaddexp(0.0, -L) * _GH_W).sum(-1)


def _mixture_sizes(n, n_a, n_b):
    n, n_a, n_b = (integer(v, name, minimum=0) for name, v in (("n", n), ("n_a", n_a), ("n_b", n_b)))
    n_c = n - n_a - n_b
    if n_a < 1 or n_c < 1:
        raise ValueError(f"need n_a >= 1 and n_c = n - n_a - n_b >= 1; got n={n}, n_a={n_a}, n_b={n_b}")
    return n_c


def mixture_cmi(n: int, t: float, n_a: int = 1, n_b: int = 2, mu: float = 0.5, sigma0: float = 0.15) -> float:
    """Exact ``I(A:C|B)`` in nats for the two-class Gaussian mixture of ``n`` pixels on the path.

    Model: ``X_0 = s mu 1 + sigma0 eps``, ``s = +-1`` with probability 1/2 each, ``eps ~ N(0, I_n)``. Given ``s``
    the pixels are i.i.d., so the law is exchangeable and only the **sizes** of the regions matter: ``A`` has
    ``n_a`` pixels, ``B`` ``n_b``, ``C`` the other ``n - n_a - n_b``. (On a ring of ``n`` pixels with ``A`` one pixel
    and ``B`` the ``r`` pixels on each side, ``n_b = 2 r``; on an image, ``n_b = (2r+1)^2 - 1``.) Since ``A`` and
    ``C`` are independent given ``(s, B)``, the chain rule gives
    ``I(A:C|B) = H(s|B) - H(s|AB) - H(s|BC) + H(s|ABC)``, each term from :func:`mixture_class_entropy`.

    The transition: the class is a global variable. ``H(s | X_t)`` (:func:`mixture_class_entropy` with ``k = n``)
    switches from 0 to ``log 2`` around ``t_c(n)`` where ``n g(t_c) = 1`` (:func:`mixture_critical_time`); the
    window in ``t`` narrows like ``n^{-1/2}`` as ``n`` grows (while ``t_c(n) -> 1``). At a fixed buffer the CMI is a
    hump: about 0 while ``B`` alone fixes the class (``n_b g >> 1``, small ``t``), about ``I(A:s|B)`` between
    ``n_b g ~ 1`` and ``n g ~ 1``, and cut off at ``t_c(n)``, where the whole image stops fixing the class. The CMI
    decays with the buffer only once ``n_b g >~ 1``, so the Markov length grows like ``1 / g(t)`` (in pixels of
    buffer) and exceeds the image where ``n g ~ 1``. Defaults ``mu = 0.5, sigma0 = 0.15`` (``g(0) ~ 11``).
    """
    n_c = _mixture_sizes(n, n_a, n_b)
    H = mixture_class_entropy(np.array([n_b, n_a + n_b, n_b + n_c, n]), t, mu, sigma0)
    return float(H[0] - H[1] - H[2] + H[3])


def mixture_mi(n: int, t: float, n_a: int = 1, mu: float = 0.5, sigma0: float = 0.15) -> float:
    """Exact ``I(A:C)`` for the mixture, ``A`` of ``n_a`` pixels and ``C`` the other ``n - n_a`` (no buffer)."""
    return mixture_cmi(n, t, n_a=n_a, n_b=0, mu=mu, sigma0=sigma0)


def mixture_critical_time(n: int, mu: float = 0.5, sigma0: float = 0.15) -> float:
    """The time ``t_c(n)`` where the whole image's class information crosses over: ``n g(t_c) = 1``.

    Solved in closed form from ``n (1-t)^2 mu^2 = (1-t)^2 sigma0^2 + t^2``; returns 0 if ``n g(0) <= 1``.
    """
    n = integer(n, "n")
    mu, sigma0 = _mixture_params(mu, sigma0)
    if n * mu**2 <= sigma0**2:
        return 0.0
    a = math.sqrt(n * mu**2 - sigma0**2)  # (1-t) a = t  =>  t = a / (1 + a)
    return a / (1.0 + a)


def mixture_sample(n: int, t: float, n_samples: int, mu: float = 0.5, sigma0: float = 0.15, seed: int = 0):
    """Draw ``(x_t, s)``: ``n_samples`` images of ``n`` pixels at path time ``t`` and their classes (for Monte Carlo checks)."""
    n, n_samples = integer(n, "n"), integer(n_samples, "n_samples")
    t = unit_time(t)
    mu, sigma0 = _mixture_params(mu, sigma0)
    rng = np.random.default_rng(integer(seed, "seed", minimum=0))
    s = rng.choice([-1.0, 1.0], size=n_samples)
    x0 = s[:, None] * mu + sigma0 * rng.standard_normal((n_samples, n))
    return (1 - t) * x0 + t * rng.standard_normal((n_samples, n)), s


def mixture_log_density(x, t: float, mu: float = 0.5, sigma0: float = 0.15) -> np.ndarray:
    """Exact ``log p_t(x)`` of the mixture marginal on the pixels given (any subset: marginals are the same model).

    ``x`` has shape ``(N, k)``; evaluated pixel by pixel as ``log sum_s 1/2 prod_i N(x_i; s m, tau^2)``.
    """
    t = unit_time(t)
    mu, sigma0 = _mixture_params(mu, sigma0)
    x = real_array(x, "x")
    if x.ndim != 2:
        raise InputError(f"x must have shape (N, k) (N points of k pixels); got {x.shape}")
    m, tau2 = (1 - t) * mu, marginal_variance(sigma0**2, t)
    k = x.shape[1]
    if k == 0:
        return np.zeros(x.shape[0])
    lp = [(-0.5 * ((x - s * m) ** 2).sum(1) / tau2) for s in (-1.0, 1.0)]
    return np.logaddexp(lp[0], lp[1]) - math.log(2.0) - 0.5 * k * math.log(2 * math.pi * tau2)


# ----------------------------------------------------------------------------------------------------------
# Ising lattices by exact enumeration
# ----------------------------------------------------------------------------------------------------------

MAX_ISING_SPINS = 16


def ising_states(shape) -> np.ndarray:
    """All ``2^N`` spin configurations of a lattice of ``shape`` as an ``(2^N, N)`` int8 array of ``+-1`` (row-major)."""
    shape = _shape(shape, dims=None)
    N = int(np.prod(shape))
    if N > MAX_ISING_SPINS:
        raise ValueError(f"exact enumeration is limited to {MAX_ISING_SPINS} spins; shape {shape} has {N}")
    codes = np.arange(2**N)[:, None]
    bits = (codes >> np.arange(N - 1, -1, -1)[None, :]) & 1
    return (2 * bits - 1).astype(np.int8)


def ising_distribution(shape, beta: float, h: float = 0.0, periodic: bool = False) -> np.ndarray:
    """Exact Boltzmann probabilities ``p(s) ∝ exp(beta sum_<ij> s_i s_j + beta h sum_i s_i)`` over :func:`ising_states`.

    Nearest-neighbour ferromagnet (the edges of :func:`gmrf_precision`'s lattice), open boundary unless
    ``periodic``. Returns a float64 vector of length ``2^N`` summing to 1.
    """
    beta, h = _ising_params(beta, h)
    S = ising_states(shape).astype(np.float64)
    adj = -gmrf_precision(shape, 1.0, periodic)
    np.fill_diagonal(adj, 0.0)
    energy = 0.5 * np.einsum("ki,ij,kj->k", S, adj, S) + h * S.sum(1)
    logw = beta * energy
    logw -= logw.max()
    p = np.exp(logw)
    return p / p.sum()


def _ising_params(beta, h) -> tuple[float, float]:
    return number(beta, "beta"), number(h, "h")


def _ising_check(shape, A, B, C):
    return _check_regions(int(np.prod(_shape(shape))), A, B, C)


def _marginal(S: np.ndarray, p: np.ndarray, idx: np.ndarray):
    """Marginal law of the spins ``idx``: (unique configurations (m, |idx|), probabilities (m,))."""
    if idx.size == 0:
        return np.zeros((1, 0), dtype=S.dtype), np.ones(1)
    sub = S[:, idx]
    uniq, inv = np.unique(sub, axis=0, return_inverse=True)
    return uniq, np.bincount(inv.reshape(-1), weights=p, minlength=len(uniq))


def entropy(p) -> float:
    """The Shannon entropy in nats of the probabilities ``p`` (any shape; zeros contribute nothing). ``p`` must be a
    probability table: entries ``>= 0`` that sum to 1 (to ``1e-6``)."""
    what = "p must be probabilities (numbers >= 0 that sum to 1)"
    p = real_array(p, "p", "probabilities (numbers >= 0 that sum to 1)").ravel()
    total = float(p.sum())
    bad = p[~(p >= 0)]  # negative or NaN
    if bad.size:
        raise InputError(f"{what}; got entries {bad[:5].tolist()} (sum {total:.6g})")
    if not abs(total - 1.0) <= 1e-6:
        raise InputError(f"{what}; got {p.size} entries with sum {total:.6g}")
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def table_entropy(p, keep) -> float:
    """The entropy in nats of the marginal of the joint table ``p`` on the axes ``keep`` (chapter "CMI and the
    Markov length": a marginal is a sum over the other axes)."""
    p = real_array(p, "p", "a joint probability table (an array of numbers)")
    keep = indices(keep, "keep (axes of p)", p.ndim)
    return entropy(p.sum(axis=tuple(ax for ax in range(p.ndim) if ax not in keep)))


def table_cmi(p, A=(0,), B=(1,), C=(2,)) -> float:
    """``I(A:C|B) = H(AB) + H(BC) - H(B) - H(ABC)`` in nats of a joint table ``p``; ``A``, ``B``, ``C`` are disjoint
    tuples of its axes (default: a table ``p[a, b, c]``)."""
    disjoint_regions(np.ndim(p), A=A, B=B, C=C)
    A, B, C = tuple(A), tuple(B), tuple(C)
    return (table_entropy(p, A + B) + table_entropy(p, B + C) - table_entropy(p, B)
            - table_entropy(p, A + B + C))


def ising_cmi(shape, beta: float, A, B, C, h: float = 0.0, periodic: bool = False) -> float:
    """Exact discrete ``I(A:C|B) = H(AB) + H(BC) - H(B) - H(ABC)`` in nats for the Ising lattice (``t = 0``)."""
    A, B, C = _ising_check(shape, A, B, C)
    S, p = ising_states(shape), ising_distribution(shape, beta, h, periodic)

    def H(idx):
        return entropy(_marginal(S, p, idx)[1])

    return H(np.concatenate([A, B])) + H(np.concatenate([B, C])) - H(B) - H(np.concatenate([A, B, C]))


def _noisy_log_marginal(x, states01, logp, t, chunk=256):
    """``log p_t(x_S)`` for pixels ``x`` (N, k) given the exact law (states01 (m, k) in {0,1}, logp (m,))."""
    if states01.shape[1] == 0:
        return np.zeros(x.shape[0])
    mu = (1 - t) * states01  # (m, k)
    k = x.shape[1]
    const = -0.5 * k * math.log(2 * math.pi * t**2)
    out = np.empty(x.shape[0])
    mu2 = (mu**2).sum(1)
    for i in range(0, x.shape[0], chunk):
        xc = x[i : i + chunk]
        d2 = (xc**2).sum(1)[:, None] - 2.0 * xc @ mu.T + mu2[None, :]
        a = logp[None, :] - 0.5 * d2 / t**2
        amax = a.max(1, keepdims=True)
        out[i : i + chunk] = (amax[:, 0] + np.log(np.exp(a - amax).sum(1))) + const
    return out


def ising_noisy_cmi(
    shape, beta: float, t: float, A, B, C, n_samples: int = 4000, seed: int = 0, h: float = 0.0, periodic: bool = False
) -> tuple[float, float]:
    """``I(A:C|B)`` of the noised Ising lattice at path time ``t``: Monte Carlo with exact likelihoods.

    Spins become pixels ``x_0 = (s + 1) / 2`` in ``{0, 1}`` (the course's ``[0, 1]`` pixel range), then
    ``x_t = (1-t) x_0 + t Z``. Each marginal density ``p_t(x_S)`` is an exact finite sum over the spin
    configurations of ``S``; the CMI is the mean over ``n_samples`` draws of
    ``log p(x_ABC) + log p(x_B) - log p(x_AB) - log p(x_BC)``. Returns ``(estimate, standard error)``; the
    estimate is unbiased and is **not** clipped (it can be slightly negative when the CMI is ~0).
    At ``t = 0`` it returns the exact discrete :func:`ising_cmi` with error 0; at ``t = 1``, exactly ``(0, 0)``.
    """
    t = unit_time(t)
    A, B, C = _ising_check(shape, A, B, C)
    _ising_params(beta, h)
    n_samples = integer(n_samples, "n_samples", minimum=2)
    seed = integer(seed, "seed", minimum=0)
    if t == 0.0:
        return ising_cmi(shape, beta, A, B, C, h, periodic), 0.0
    if t == 1.0:
        return 0.0, 0.0
    S, p = ising_states(shape), ising_distribution(shape, beta, h, periodic)
    rng = np.random.default_rng(seed)
    draw = rng.choice(len(p), size=n_samples, p=p)
    x = (1 - t) * (S[draw].astype(np.float64) + 1) / 2 + t * rng.standard_normal((n_samples, S.shape[1]))

    def logp(idx):
        states, q = _marginal(S, p, idx)
        with np.errstate(divide="ignore"):
            return _noisy_log_marginal(x[:, idx], (states.astype(np.float64) + 1) / 2, np.log(q), t)

    AB, BC, ABC = np.concatenate([A, B]), np.concatenate([B, C]), np.concatenate([A, B, C])
    terms = logp(ABC) + logp(B) - logp(AB) - logp(BC)
    return float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(n_samples))


# ----------------------------------------------------------------------------------------------------------
# The Gaussian surrogate of an image data set
# ----------------------------------------------------------------------------------------------------------


def _flat_images(images) -> np.ndarray:
    if torch.is_tensor(images):
        images = images.detach().cpu().to(torch.float64).numpy()
    x = real_array(images, "images", "an array or tensor (N, ...) of numbers")
    if x.ndim < 2:
        raise ValueError(f"images must have shape (N, ...) with N >= 2 samples, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError("need at least 2 images to estimate a covariance")
    if not np.all(np.isfinite(x)):
        raise InputError("images contain NaN or inf values")
    return x.reshape(x.shape[0], -1)


def gaussian_surrogate(images) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, over flattened pixels, unbiased ``1/(N-1)``) of an image data set.

    ``images`` is ``(N, 1, H, W)``, ``(N, H, W)`` or ``(N, D)``, numpy or torch. The Gaussian with these moments
    is the data set's *Gaussian surrogate*: it keeps every pairwise correlation and nothing else.
    """
    x = _flat_images(images)
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / (x.shape[0] - 1)
    return mean, 0.5 * (cov + cov.T)


def _conditional_variance(cov: np.ndarray, a: int, cond: np.ndarray) -> float:
    """``Var(X_a | X_cond)`` for a Gaussian (Cholesky solve)."""
    L = _chol(cov[np.ix_(cond, cond)], "the conditioning pixels")
    w = _tri_solve(L, cov[cond, a])
    v = float(cov[a, a] - w @ w)
    if not v > 0:
        raise ValueError("the covariance is not positive definite on A and the conditioning pixels")
    return v


@dataclass
class SurrogateMap:
    """The exact CMI map of a Gaussian surrogate: arrays indexed ``[i_t, i_r]`` (nats)."""

    t: np.ndarray  # (T,) path times
    r: np.ndarray  # (R,) buffer radii
    cmi: np.ndarray  # (T, R) I(A:C|B)
    mi_a_bc: np.ndarray  # (T,) I(A:BC), A against the whole rest of the crop
    mi_a_b: np.ndarray  # (T, R) I(A:B)

    @property
    def peak(self) -> tuple[float, int, float]:
        """``(t, r, value)`` of the largest CMI on the map."""
        i, j = np.unravel_index(int(np.argmax(self.cmi)), self.cmi.shape)
        return float(self.t[i]), int(self.r[j]), float(self.cmi[i, j])


def surrogate_cmi_map(images, t_values, radii, crop: int = PAPER_CROP, center=None,
                      dequantize: float = 1 / 255) -> SurrogateMap:
    """The exact CMI map ``I(A:C|B)(t, r)`` of the Gaussian surrogate of ``images`` on the paper's geometry.

    Images are cut by :func:`paper_crop` (the first row and column dropped: MNIST's 28 becomes 27 so that there is a
    centre pixel, pixel ``(14, 14)`` of the image); ``A`` is the centre pixel of the crop (or ``center``, in crop
    coordinates), ``B`` the square annulus of buffer
    radius ``r``, ``C`` the rest of the crop. For each ``t`` the covariance is :func:`path_covariance` of the
    data covariance, and :func:`gaussian_cmi` gives the exact CMI of that Gaussian.

    At ``t = 0`` the empirical covariance of MNIST is singular (always-black border pixels, pixels lit in only one
    image), so the Gaussian's MI would be infinite. The default treats pixels as *dequantized* 8-bit values: a
    uniform ``U(0, dequantize)`` jitter, independent per pixel, adds ``dequantize^2 / 12`` to the diagonal of the
    data covariance (``1.3e-6`` for ``1/255``; its effect is visible only at ``t`` below ~0.01). Pass
    ``dequantize=0`` for the raw covariance (then ``t = 0`` raises an error when it is singular).
    """
    t_values = unit_times(t_values, "t_values")
    radii = np.asarray([integer(r, "a buffer radius in radii", minimum=0)
                        for r in np.asarray(radii).reshape(-1).tolist()], dtype=np.int64)
    x = _flat_images(images)
    side = int(round(math.sqrt(x.shape[1])))
    if side * side != x.shape[1]:
        raise ValueError(f"images must be square, got {x.shape[1]} pixels")
    dequantize = number(dequantize, "dequantize", at_least=0.0)
    x = paper_crop(x.reshape(-1, side, side), crop).reshape(x.shape[0], -1)
    _, cov0 = gaussian_surrogate(x)
    cov0 = cov0 + dequantize**2 / 12.0 * np.eye(cov0.shape[0])
    regs = [regions((crop, crop), center, int(r)) for r in radii]
    a = regions((crop, crop), center, 0)[0][0]
    rest = np.array([j for j in range(crop * crop) if j != a])
    cmi = np.zeros((len(t_values), len(radii)))
    mi_ab = np.zeros_like(cmi)
    mi_abc = np.zeros(len(t_values))
    # A is one pixel, so every term is a ratio of conditional variances of A:
    # I(A:C|B) = 1/2 log Var(A|B) / Var(A|BC), I(A:B) = 1/2 log Var(A) / Var(A|B); B u C is the whole rest of the crop.
    for i, t in enumerate(t_values):
        cov = path_covariance(cov0, float(t))
        var_a = cov[a, a]
        var_a_rest = _conditional_variance(cov, a, rest)
        mi_abc[i] = 0.5 * math.log(var_a / var_a_rest)
        for j, (_, B, C) in enumerate(regs):
            var_a_b = _conditional_variance(cov, a, np.array(B)) if B else var_a
            cmi[i, j] = 0.5 * math.log(var_a_b / var_a_rest) if C else 0.0
            mi_ab[i, j] = 0.5 * math.log(var_a / var_a_b)
    return SurrogateMap(t_values, radii, cmi, mi_abc, mi_ab)
