"""The paper's CMI map ``I(A:C|B)(t, r)`` on MNIST, estimated by a bank of neural critics, and its Gaussian surrogate.

Geometry (the paper's): images cropped to their top-left ``27 x 27`` pixels so that there is a centre pixel ``A``;
``B`` the square annulus of **buffer radius** ``r`` around it (``r = 1..12``); ``C`` the rest of the crop.
``I(A:C|B) = I(A:BC) - I(A:B)`` at each path time ``t``, the two terms estimated by critics of one family and one
budget (:mod:`localdiff_lib.estimators`), or ``I(A:C|B) = H(A|B) - H(A|BC)`` with mixture-density models of the
pixel (:mod:`localdiff_lib.density`, ``bound="density"``, what the budgets use). All critics of the map (every ``t``, every ``r``, the ``I(A:BC)`` critic
of each ``t``, every seed) are trained at once as one bank; the data set sits on the device, every batch draws
fresh images and fresh noise, and the values are measured on the held-out test split. One group of critics per
(seed, ``t``) shares its batches, so ``I(A:BC)`` and ``I(A:B)`` of that group are estimated on the same samples.

:func:`neural_cmi_map` computes it; :func:`mnist_cmi_map` loads MNIST and picks the budget
(:func:`localdiff_lib.config.pick`); the exact Gaussian-surrogate map is :func:`localdiff_lib.info.surrogate_cmi_map`
(re-exported here). Chapter "The CMI barrier" uses this module; ``python -m localdiff_lib.bench_cmi`` times it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .config import pick
from .density import train_density_bank
from .estimators import BOUNDS, confidence_interval, train_critic_bank
from .info import SurrogateMap, gaussian_surrogate, regions, surrogate_cmi_map

__all__ = [
    "PAPER_T",
    "default_t_grid",
    "CMIMap",
    "neural_cmi_map",
    "mnist_cmi_map",
    "map_settings",
    "surrogate_cmi_map",
    "gaussian_surrogate",
    "SurrogateMap",
]

PAPER_T = tuple(round(0.1 * i, 1) for i in range(11))


def default_t_grid() -> np.ndarray:
    """The paper's ``t = 0, 0.1, ..., 1`` plus ``0.05, 0.15, 0.25, 0.35, 0.45``, finer around the peak near 0.3."""
    return np.array(sorted(set(PAPER_T) | {0.05, 0.15, 0.25, 0.35, 0.45}))


@dataclass
class CMIMap:
    """A neural CMI map: means and confidence half-widths across seeds, in nats; arrays indexed ``[i_t, i_r]``."""

    t: np.ndarray  # (T,)
    r: np.ndarray  # (R,) buffer radii
    cmi: np.ndarray  # (T, R) I(A:C|B), mean over seeds (never clipped)
    cmi_hw: np.ndarray  # (T, R) half-width of the confidence interval
    mi_a_bc: np.ndarray  # (T,) I(A:BC)
    mi_a_bc_hw: np.ndarray  # (T,)
    mi_a_b: np.ndarray  # (T, R) I(A:B)
    per_seed_cmi: np.ndarray  # (S, T, R)
    per_seed_mi_a_bc: np.ndarray  # (S, T)
    bound: str
    level: float
    seconds: float
    settings: dict

    @property
    def peak(self) -> tuple[float, int, float, float]:
        """``(t, r, value, half_width)`` at the largest mean CMI of the map."""
        i, j = np.unravel_index(int(np.argmax(self.cmi)), self.cmi.shape)
        return float(self.t[i]), int(self.r[j]), float(self.cmi[i, j]), float(self.cmi_hw[i, j])

    def table(self, digits: int = 3) -> str:
        """The map as text: one row per ``t``, ``I(A:BC)`` then the CMI for each ``r`` (mean +- half-width)."""
        head = f"{'t':>5} {'I(A:BC)':>14} " + " ".join(f"{'r=' + str(r):>14}" for r in self.r)
        rows = [head]
        for i, t in enumerate(self.t):
            cells = [f"{self.mi_a_bc[i]:.{digits}f}+-{self.mi_a_bc_hw[i]:.{digits}f}".rjust(14)]
            cells += [f"{self.cmi[i, j]:.{digits}f}+-{self.cmi_hw[i, j]:.{digits}f}".rjust(14) for j in range(len(self.r))]
            rows.append(f"{t:5.2f} " + " ".join(cells))
        return "\n".join(rows)


def _flat_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    images = torch.as_tensor(images)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"expected one channel, got images of shape {tuple(images.shape)}")
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (N, 1, H, H) or (N, H, H), got {tuple(images.shape)}")
    if not 3 <= crop <= images.shape[1]:
        raise ValueError(f"crop must lie in [3, {images.shape[1]}], got {crop}")
    if images.is_floating_point() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ValueError("pixels must lie in [0, 1] (the course's convention); rescale the images first")
    return images[:, :crop, :crop].reshape(images.shape[0], -1).float()


def neural_cmi_map(
    train_images: torch.Tensor,
    eval_images: torch.Tensor,
    t_values=PAPER_T,
    radii=range(1, 13),
    *,
    crop: int = 27,
    bound: str = "infonce",
    seeds: int = 3,
    steps: int = 2000,
    batch: int = 256,
    hidden: int = 64,
    features: int = 32,
    components: int = 8,
    pixel_levels: int | None = 255,
    lr: float = 2e-3,
    eval_batches: int = 20,
    level: float = 0.95,
    seed: int = 0,
    device: str | torch.device | None = None,
    bf16: bool | None = None,
    num_threads: int | None = None,
) -> CMIMap:
    """Estimate the CMI map ``I(A:C|B)(t, r)`` of an image data set with one bank of ``seeds * T * (1 + R)`` critics.

    ``train_images`` train the critics; ``eval_images`` (held out, e.g. the test split) give the reported values.
    Pixels must lie in ``[0, 1]``. Returns :class:`CMIMap` with Student-t intervals across ``seeds``; the CMI of a
    seed is ``I(A:BC) - I(A:B)`` of critics that saw the same batches. Nothing is clipped. The default bound is
    InfoNCE: on MNIST it had the smallest seed-to-seed spread of the four at equal budget, and its cap ``log batch``
    (4.9 nats at batch 128) is far above the ~1 nat being measured. ``bound="density"`` uses the mixture-density
    estimator of :mod:`localdiff_lib.density` instead (``CMI = H(A|B) - H(A|BC)``, ``components`` Gaussians; at
    ``t = 0`` the pixel's discrete entropy, in bins of ``1 / pixel_levels``; ``pixel_levels=None`` for continuous
    pixels): on MNIST its intervals are several times narrower at equal cost (chapter "The CMI barrier").
    """
    if seeds < 2:
        raise ValueError("use at least 2 seeds: the confidence intervals are across seeds")
    if bound not in (*BOUNDS, "density"):
        raise ValueError(f"unknown bound {bound!r}; use one of {', '.join(BOUNDS)} or 'density'")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t_values = np.asarray(t_values, dtype=np.float64).reshape(-1)
    if t_values.size == 0 or t_values.min() < 0 or t_values.max() > 1:
        raise ValueError(f"t_values must be non-empty and lie in [0, 1], got {t_values}")
    radii = np.asarray(list(radii), dtype=np.int64).reshape(-1)
    xtr, xev = _flat_crop(train_images, crop).to(dev), _flat_crop(eval_images, crop).to(dev)
    D = crop * crop
    A, _, _ = regions((crop, crop), None, 0)
    regs = [regions((crop, crop), None, int(r)) for r in radii]  # raises if a radius does not fit
    T, R, S = len(t_values), len(radii), seeds
    G = S * T
    m_bc = torch.ones(D)
    m_bc[A[0]] = 0.0
    masks_b = torch.zeros(R, D)
    for j, (_, B, _) in enumerate(regs):
        masks_b[j, B] = 1.0
    per_group = torch.cat([m_bc[None], masks_b])  # (1 + R, D)
    masks = per_group[None].repeat(G, 1, 1)  # (G, 1 + R, D): critic k = g * (1 + R) + j
    t_group = torch.tensor(np.tile(t_values, S), dtype=torch.float32, device=dev)[:, None, None]  # g = s * T + i

    def sampler(split, n, gen):
        data = xtr if split == "train" else xev
        idx = torch.randint(0, data.shape[0], (G, n), generator=gen, device=dev)
        x0 = data[idx]
        z = torch.randn(x0.shape, generator=gen, device=dev)
        return (1 - t_group) * x0 + t_group * z

    t0 = time.perf_counter()
    if bound == "density":
        # models per group: q(a), q(a | BC), q(a | B_r) for each r; at t = 0 the pixel is discrete (bin 1/255)
        masks = torch.cat([torch.zeros(G, 1, D), masks], dim=1)
        w0 = 0.0 if pixel_levels is None else 1.0 / pixel_levels
        bin_width = torch.tensor(np.tile(np.where(t_values == 0, w0, 0.0), S), dtype=torch.float32)
        res = train_density_bank(sampler, masks, A, bin_width=bin_width, steps=steps, batch=batch, lr=lr,
                                 hidden=hidden, components=components, eval_batches=eval_batches, seed=seed,
                                 device=dev, num_threads=num_threads)
        h = res.values.reshape(S, T, 2 + R)  # held-out cross-entropies H(A), H(A|BC), H(A|B_r)
        mi_bc, mi_b = h[:, :, 0] - h[:, :, 1], h[:, :, :1] - h[:, :, 2:]
    else:
        res = train_critic_bank(sampler, masks, A, bound=bound, steps=steps, batch=batch, lr=lr, hidden=hidden,
                                features=features, eval_batches=eval_batches, seed=seed, device=dev, bf16=bf16,
                                num_threads=num_threads)
        v = res.values.reshape(S, T, 1 + R)
        mi_bc, mi_b = v[:, :, 0], v[:, :, 1:]
    seconds = time.perf_counter() - t0
    per_cmi = mi_bc[:, :, None] - mi_b
    cmi, cmi_hw = confidence_interval(per_cmi, level)
    mbc, mbc_hw = confidence_interval(mi_bc, level)
    settings = dict(crop=crop, seeds=S, steps=steps, batch=batch, hidden=hidden, lr=lr,
                    eval_batches=eval_batches, n_critics=int(res.values.size),
                    **(dict(components=components, pixel_levels=pixel_levels) if bound == "density" else dict(features=features)), device=str(dev),
                    bf16=bool(bf16 if bf16 is not None else dev.type == "cuda"), n_train=int(xtr.shape[0]),
                    n_eval=int(xev.shape[0]), seconds_per_step=seconds / steps)
    return CMIMap(t_values, radii, cmi, cmi_hw, mbc, mbc_hw, mi_b.mean(0), per_cmi, mi_bc, bound, level, seconds,
                  settings)


def map_settings() -> dict:
    """The run of :func:`mnist_cmi_map` for the current budget (``quick``: 2 CPU cores in about 2 minutes).

    Every budget uses the mixture-density estimator (``bound="density"``): on MNIST it gave intervals several
    times narrower than InfoNCE at equal cost (chapter "Estimating CMI" compares them). ``quick`` runs six times,
    ``r = 1, 2`` and four seeds (about two minutes on 2 CPU cores); ``standard`` and ``full`` the whole grid.
    """
    return dict(
        bound="density",
        t_values=pick(quick=(0.0, 0.1, 0.2, 0.3, 0.4, 0.6), standard=tuple(default_t_grid()),
                      full=tuple(default_t_grid())),
        radii=pick(quick=(1, 2), standard=tuple(range(1, 13)), full=tuple(range(1, 13))),
        seeds=pick(quick=4, standard=3, full=5),
        steps=pick(quick=1500, standard=5000, full=20000),
        batch=pick(quick=128, standard=256, full=256),
        hidden=pick(quick=48, standard=128, full=256),
        lr=pick(quick=2e-3, standard=1e-3, full=5e-4),
        eval_batches=pick(quick=80, standard=80, full=160),
        # on 2 CPU cores the bank's small matrix products ran faster on one thread (31 vs 68 ms/step measured)
        num_threads=pick(quick=1, standard=None, full=None),
    )


def mnist_cmi_map(name: str = "mnist", seed: int = 0, device=None, **overrides) -> CMIMap:
    """The paper's map on MNIST (or ``"fashion-mnist"``): train split for the critics, test split for the values.

    Sizes come from :func:`map_settings` (the run budget); any of them can be overridden by keyword.
    """
    from .data import load_dataset

    kw = map_settings()
    kw.update(overrides)
    train, _ = load_dataset(name, "train")
    test, _ = load_dataset(name, "test")
    return neural_cmi_map(train, test, seed=seed, device=device, **kw)
