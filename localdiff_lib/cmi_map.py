"""The paper's CMI map ``I(A:C|B)(t, r)`` of MNIST and Fashion-MNIST, its Gaussian surrogate, and the shipped maps.

Geometry (the paper's, :func:`localdiff_lib.info.paper_crop`): the first row and column of each image dropped, so
the ``27 x 27`` crop has a centre pixel ``A``, pixel ``(14, 14)`` of the 28 x 28 image; ``B`` the square annulus of
**buffer radius** ``r`` around it (``r = 1..12``); ``C`` the rest of the crop.

Two estimators, both trained on the training split with fresh images and fresh noise every batch and scored on the
held-out test split, nothing clipped:

* :func:`image_cmi_map` (what chapter "The CMI barrier" reports): ``I(A:C|B) = H(A|B) - H(A|BC)`` with the image
  models of :mod:`localdiff_lib.image_density`, one bank per time, early stopping, intervals that add the seed spread,
  the paired per-sample error and, where the last doubling of the budget still moved a value, a bias term;
* :func:`neural_cmi_map`: the earlier bank of MLP critics (:mod:`localdiff_lib.estimators`) or MLP mixture-density
  models (:mod:`localdiff_lib.density`) over all times at once; ``python -m localdiff_lib.bench_cmi`` times it.

The maps too costly for a chapter are computed by this module's command (``python -m localdiff_lib.cmi_map run NAME``,
recipes in :data:`MAP_RECIPES`), resumably, into ``localdiff_lib/results/cmi-map-NAME/`` with their record and log
(:func:`run_map`), and read back, hash-checked, by :func:`load_map`. The exact Gaussian-surrogate map is
:func:`localdiff_lib.info.surrogate_cmi_map` (re-exported here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoints import provenance, sha256
from .shipped import atomic_write, read_checked, results_dir
from .checks import integer
from .config import cpu_cores, default_device, native_bf16, pick
from .data import load_dataset
from .density import train_density_bank
from .estimators import BOUNDS, train_critic_bank
from .stats import confidence_interval, student_t_quantile
from .image_density import train_image_density_bank
from .info import (
    gaussian_surrogate,
    mixture_cmi,
    mixture_mi,
    PAPER_CROP,
    paper_crop,
    regions,
    surrogate_cmi_map,
    SurrogateMap,
)

__all__ = [
    "PAPER_T",
    "default_t_grid",
    "CMIMap",
    "UNSTABLE",
    "image_cmi_map",
    "map_from_progress",
    "MAP_RECIPES",
    "run_map",
    "load_map",
    "results_dir",
    "slice_settings",
    "surrogate_samples",
    "neural_cmi_map",
    "mnist_cmi_map",
    "map_settings",
    "surrogate_cmi_map",
    "gaussian_surrogate",
    "SurrogateMap",
]

PAPER_T = tuple(round(0.1 * i, 1) for i in range(11))

#: nats: a model whose validation cross-entropy (mean over seeds) ends more than this above its best got worse while
#: training; the cells that use it are flagged ``unstable`` (on the two-class mixture, exactly the cells whose
#: interval missed the exact value)
UNSTABLE = 0.01

#: the estimator's name in a map's settings, per training objective of :func:`image_cmi_map`
ESTIMATOR = {"likelihood": "image-density", "mine": "image-critic-mine"}


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
    budgets: dict | None = None  # steps -> the map's arrays at that training budget (image_cmi_map)
    bias: np.ndarray | None = None  # (T, R) explicit bias term already included in cmi_hw (0 where converged);
    # settings["bias_mi_a_bc"] (T,) the same for I(A:BC), included in mi_a_bc_hw
    unstable: np.ndarray | None = None  # (T, R) True where a model of the cell got worse while training (see UNSTABLE)

    @property
    def peak(self) -> tuple[float, int, float, float]:
        """``(t, r, value, half_width)`` at the largest mean CMI of the map."""
        i, j = np.unravel_index(int(np.argmax(self.cmi)), self.cmi.shape)
        return float(self.t[i]), int(self.r[j]), float(self.cmi[i, j]), float(self.cmi_hw[i, j])

    def table(self, digits: int = 3) -> str:
        """The map as text: one row per ``t``, ``I(A:BC)`` then the CMI for each ``r`` (mean +- half-width); a cell
        marked ``*`` is unstable (:data:`UNSTABLE`)."""
        head = f"{'t':>5} {'I(A:BC)':>15} " + " ".join(f"{'r=' + str(r):>15}" for r in self.r)
        rows = [head]
        flag = (lambda i, j: "*" if self.unstable is not None and self.unstable[i, j] else " ")
        for i, t in enumerate(self.t):
            cells = [f"{self.mi_a_bc[i]:.{digits}f}+-{self.mi_a_bc_hw[i]:.{digits}f} ".rjust(15)]
            cells += [f"{self.cmi[i, j]:.{digits}f}+-{self.cmi_hw[i, j]:.{digits}f}{flag(i, j)}".rjust(15)
                      for j in range(len(self.r))]
            rows.append(f"{t:5.2f} " + " ".join(cells))
        if self.unstable is not None and self.unstable.any():
            rows.append("* a model of this cell got worse while training (its validation loss rose by more than "
                        f"{UNSTABLE} nats after its best state): unreliable")
        return "\n".join(rows)


def _flat_crop(images: torch.Tensor, crop: int, unit_range: bool = True) -> torch.Tensor:
    """The paper's crop (:func:`localdiff_lib.info.paper_crop`) of ``(N, 1, H, H)`` or ``(N, H, H)`` images, flattened.
    ``unit_range``: pixels must lie in ``[0, 1]`` (``False`` for samples of a Gaussian surrogate)."""
    images = torch.as_tensor(images)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"expected one channel, got images of shape {tuple(images.shape)}")
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (N, 1, H, H) or (N, H, H), got {tuple(images.shape)}")
    if unit_range and images.is_floating_point() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ValueError("pixels must lie in [0, 1] (the course's convention); rescale the images first")
    return paper_crop(images, crop).reshape(images.shape[0], -1).float()


def neural_cmi_map(
    train_images: torch.Tensor,
    eval_images: torch.Tensor,
    t_values=PAPER_T,
    radii=range(1, 13),
    *,
    crop: int = PAPER_CROP,
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
    dev = torch.device(device) if device is not None else default_device()
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
                    bf16=bool(bf16 if bf16 is not None else native_bf16(dev)), n_train=int(xtr.shape[0]),
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
        seeds=pick(quick=4, standard=3, full=5, work=True),
        steps=pick(quick=1500, standard=5000, full=20000, work=True),
        batch=pick(quick=128, standard=256, full=256),
        hidden=pick(quick=48, standard=128, full=256),
        lr=pick(quick=2e-3, standard=1e-3, full=5e-4),
        eval_batches=pick(quick=80, standard=80, full=160, work=True),
        # on 2 CPU cores the bank's small matrix products ran faster on one thread (31 vs 68 ms/step measured)
        num_threads=1 if default_device().type == "cpu" else None,
    )


def mnist_cmi_map(name: str = "mnist", seed: int = 0, device=None, **overrides) -> CMIMap:
    """The paper's map on MNIST (or ``"fashion-mnist"``): train split for the critics, test split for the values.

    Sizes come from :func:`map_settings` (the run budget); any of them can be overridden by keyword.
    """
    kw = map_settings()
    kw.update(overrides)
    train, _ = load_dataset(name, "train")
    test, _ = load_dataset(name, "test")
    return neural_cmi_map(train, test, seed=seed, device=device, **kw)


# ----------------------------------------------------------------------------------------------------------
# The map with image models: converged, with intervals that include the training bias, shipped with provenance
# ----------------------------------------------------------------------------------------------------------


def budgets_of(steps: int) -> list[int]:
    """The budgets at which a map's run is read by default: a quarter, half and all of its ``steps``."""
    return sorted({max(1, steps // 4), max(1, steps // 2), int(steps)})


def image_cmi_map(
    train_images: torch.Tensor,
    eval_images: torch.Tensor,
    t_values,
    radii,
    *,
    crop: int = PAPER_CROP,
    seeds: int = 3,
    steps: int = 2000,
    report_at=None,
    batch: int = 128,
    width: int = 8,
    hidden: int = 64,
    patch: int = 4,
    components: int = 8,
    lr: float = 2e-3,
    val_images: int = 5000,
    val_samples: int = 2048,
    eval_samples: int = 4096,
    pixel_levels: int | None = 255,
    unit_range: bool = True,
    fixed_noise: bool = False,
    eval_on_train: bool = False,
    early_stopping: bool = True,
    objective: str = "likelihood",
    level: float = 0.95,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: dict | None = None,
    on_time: Callable[[dict], None] | None = None,
    log: Callable[[str], None] | None = None,
    num_threads: int | None = None,
    workers: int = 1,
) -> "CMIMap":
    """The CMI map ``I(A:C|B)(t, r)`` with the image models of :mod:`localdiff_lib.image_density` (chapter "The CMI barrier").

    Per time ``t`` one bank of ``seeds * (2 + R)`` models is trained: per seed ``q(a)``, ``q(a | B u C)`` (shared by
    all radii) and ``q(a | B_r)`` for each ``r``, on the same batches (fresh images and noise every batch; each
    ``(seed, t)`` group draws its own), with early stopping on ``val_images`` training images held back, and scored on
    the same ``eval_samples`` held-out samples (test images, fresh noise). The CMI of a seed is the mean of the
    per-sample log-likelihood ratio ``log q(a | BC) - log q(a | B_r)``; the interval adds the seed-to-seed spread
    and the paired per-sample standard error, in quadrature. ``report_at`` (default :func:`budgets_of`) are
    budgets of the same run at which the map is also reported; where the last doubling moves
    a value by more than its half-width, that change is added to the half-width as an explicit bias term
    (``CMIMap.bias``). ``progress`` (a dict of finished times, from an earlier interrupted run) skips those times;
    ``on_time(progress)`` is called after each time, to save it. ``unit_range=False`` accepts pixels outside
    ``[0, 1]`` (samples of a Gaussian surrogate, whose exact map is known: the coverage check).
    ``num_threads`` sets torch's CPU threads for this call only (the small grouped convolutions run best on one
    thread per process; two threads on a loaded 2-core machine ran eight times slower). ``workers > 1`` computes
    that many times at once, in threads (each time has its own seeded generators, so the map is the same; with
    ``num_threads=1`` on 2 CPU cores, two workers took the slice of chapter "The CMI barrier" from 70 s to 37 s);
    ``on_time`` and ``log``'s summary line are then called as each time finishes, in the calling thread.
    ``fixed_noise``, ``eval_on_train`` and ``early_stopping=False`` reproduce three choices of the authors' protocol
    (one noise draw per training image reused at every step; scores on training images, with their fixed noise; the
    last state of a fixed number of steps, not the best validated one): the ablation of chapter "The CMI barrier".
    ``objective="mine"`` swaps the density models for MINE critics on the same trunk (the authors' estimator; the
    scores are then Donsker–Varadhan values per evaluation batch, paired across models in the same way).
    None of them is used in a map the course reports as its own.
    """
    args = {k: v for k, v in locals().items() if k != "num_threads"}
    args["workers"] = integer(workers, "workers (times computed at once)", minimum=1)
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        return _image_cmi_map(**args)
    finally:
        torch.set_num_threads(old_threads)


def _image_cmi_map(*, train_images, eval_images, t_values, radii, crop, seeds, steps, report_at, batch, width, hidden,
                   patch, components, lr, val_images, val_samples, eval_samples, pixel_levels, unit_range,
                   fixed_noise, eval_on_train, early_stopping, objective, level, seed, device, progress, on_time,
                   log, workers) -> "CMIMap":
    if seeds < 2:
        raise ValueError("use at least 2 seeds: the confidence intervals are across seeds")
    dev = torch.device(device) if device is not None else default_device()
    t_values = np.asarray(t_values, dtype=np.float64).reshape(-1)
    if t_values.size == 0 or t_values.min() < 0 or t_values.max() >= 1:
        raise ValueError(f"t_values must be non-empty and lie in [0, 1) (at t = 1 every CMI is 0), got {t_values}")
    radii = np.asarray(list(radii), dtype=np.int64).reshape(-1)
    report_at = sorted({int(s) for s in (report_at or budgets_of(steps))})
    x_all = _flat_crop(train_images, crop, unit_range)
    if not 0 < val_images < x_all.shape[0]:
        raise ValueError(f"val_images must lie in (0, {x_all.shape[0]}), got {val_images}")
    xtr, xval = x_all[:-val_images].to(dev), x_all[-val_images:].to(dev)
    xev = _flat_crop(eval_images, crop, unit_range).to(dev)
    D = crop * crop
    A = regions((crop, crop), None, 0)[0][0]
    masks = torch.zeros(2 + len(radii), D)  # q(a), q(a | BC), q(a | B_r)
    masks[1] = 1.0
    masks[1, A] = 0.0
    for j, r in enumerate(radii):
        masks[2 + j, regions((crop, crop), None, int(r))[1]] = 1.0
    progress = dict(progress or {})
    t_start = time.perf_counter()

    def one_time(tt: float) -> dict:
        """Train the bank of time ``tt`` and return its record (``progress[f"{tt:.4f}"]``)."""

        z_fixed = None
        if fixed_noise:  # the authors' protocol: one noise draw per training image, reused at every epoch
            z_fixed = torch.randn(xtr.shape, generator=torch.Generator(device=dev).manual_seed(seed + 7), device=dev)

        def sampler(split, n, gen, tt=tt, z_fixed=z_fixed):
            # training: every (seed, t) group draws its own images and noise; validation and evaluation: one draw
            # shared by all seeds, so that the seeds differ only by their training
            data = {"train": xtr, "val": xval, "eval": xtr if eval_on_train else xev}[split]
            g = seeds if split == "train" else 1
            idx = torch.randint(0, data.shape[0], (g, n), generator=gen, device=dev)
            z = torch.randn((g, n, data.shape[1]), generator=gen, device=dev)
            if z_fixed is not None and (split == "train" or (split == "eval" and eval_on_train)):
                z = z_fixed[idx]
            x = (1 - tt) * data[idx] + tt * z
            return x.expand(seeds, n, x.shape[2])

        w0 = 1.0 / pixel_levels if (tt == 0 and pixel_levels) else 0.0
        res = train_image_density_bank(
            sampler, masks[None].repeat(seeds, 1, 1), crop, A, bin_width=[w0] * seeds, steps=steps, batch=batch,
            lr=lr, width=width, hidden=hidden, patch=patch, components=components, val_samples=val_samples,
            eval_samples=eval_samples, report_at=report_at, early_stopping=early_stopping, objective=objective,
            seed=seed + int(round(1e4 * tt)), device=dev,
            log=None if log is None else (lambda msg, tt=tt: log(f"t = {tt:.3f}, {msg}")))
        entry = {"seconds": res.seconds, "budgets": {}}
        for s in res.steps:
            lq = res.log_q[s].reshape(seeds, 2 + len(radii), -1)  # (S, models, n)
            d_bc = lq[:, 1] - lq[:, 0]  # I(A:BC) per sample
            d_cmi = lq[:, 1:2] - lq[:, 2:]  # (S, R, n) I(A:C|B_r) per sample
            entry["budgets"][str(s)] = dict(
                h=(-lq.mean(2)).tolist(),  # (S, 2 + R) held-out cross-entropies
                cmi_seed=d_cmi.mean(2).tolist(), mi_bc_seed=d_bc.mean(1).tolist(),
                cmi_se_img=(d_cmi.mean(0).std(1, ddof=1) / np.sqrt(d_cmi.shape[2])).tolist(),
                mi_bc_se_img=float(d_bc.mean(0).std(ddof=1) / np.sqrt(d_bc.shape[1])), n_paired=int(d_bc.shape[1]),
                best_step=res.best_step[s].reshape(seeds, -1).tolist())
        entry["val_curve"] = res.val_curve[:, :1].tolist()  # the steps of the validation points
        entry["val_mean"] = res.val_curve[:, 1:].reshape(len(res.val_curve), seeds, -1).mean(1).tolist()
        return entry

    def finished(tt: float, entry: dict) -> None:
        progress[f"{tt:.4f}"] = entry
        if on_time is not None:
            on_time(progress)
        if log is not None:
            b = entry["budgets"][str(report_at[-1])]
            log(f"t = {tt:.3f} done in {entry['seconds']:.0f} s: CMI per r (mean of seeds) "
                + ", ".join(f"r={r}: {v:.4f}" for r, v in zip(radii, np.mean(b['cmi_seed'], 0))))

    todo = [float(t) for t in t_values if f"{t:.4f}" not in progress]
    if workers > 1 and len(todo) > 1:
        with ThreadPoolExecutor(min(workers, len(todo))) as pool:
            running = {pool.submit(one_time, tt): tt for tt in todo}
            try:
                for done in as_completed(running):
                    finished(running[done], done.result())
            except BaseException:  # a time that failed (or an interrupt) stops the times not yet started
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        for tt in todo:
            finished(tt, one_time(tt))
    settings = dict(estimator=ESTIMATOR[objective], fixed_noise=fixed_noise, eval_on_train=eval_on_train,
                    early_stopping=early_stopping, crop=crop,
                    seeds=seeds, steps=steps, report_at=report_at, batch=batch,
                    width=width, hidden=hidden, patch=patch, components=components, lr=lr, val_images=val_images,
                    val_samples=val_samples, eval_samples=eval_samples, pixel_levels=pixel_levels, seed=seed,
                    device=str(dev), n_train=int(xtr.shape[0]), n_eval=int(xev.shape[0]))
    return map_from_progress(t_values, radii, progress, settings, level, time.perf_counter() - t_start)


def map_from_progress(t_values, radii, progress: dict, settings: dict, level: float = 0.95,
                      seconds: float | None = None) -> "CMIMap":
    """Assemble a :class:`CMIMap` from the per-time records of :func:`image_cmi_map` (or of a shipped result)."""
    t_values = np.asarray(t_values, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.int64)
    entries = [progress[f"{t:.4f}"] for t in t_values]
    budgets = [int(s) for s in settings["report_at"]]
    per_budget = {}
    for s in budgets:
        bs = [e["budgets"][str(s)] for e in entries]
        cmi_seed = np.stack([np.asarray(b["cmi_seed"]) for b in bs], axis=1)  # (S, T, R)
        bc_seed = np.stack([np.asarray(b["mi_bc_seed"]) for b in bs], axis=1)  # (S, T)
        S = cmi_seed.shape[0]
        q = student_t_quantile(0.5 + level / 2, S - 1)
        n_paired = min(b.get("n_paired", 10_001) for b in bs)  # samples (likelihood) or batches (MINE) paired
        z = student_t_quantile(0.5 + level / 2, n_paired - 1)
        se_img = np.stack([np.asarray(b["cmi_se_img"]) for b in bs])  # (T, R)
        bc_se = np.array([b["mi_bc_se_img"] for b in bs])
        hw = np.sqrt((q * cmi_seed.std(0, ddof=1) / np.sqrt(S)) ** 2 + (z * se_img) ** 2)
        bc_hw = np.sqrt((q * bc_seed.std(0, ddof=1) / np.sqrt(S)) ** 2 + (z * bc_se) ** 2)
        h = np.stack([np.asarray(b["h"]) for b in bs], axis=1)  # (S, T, 2 + R)
        per_budget[s] = dict(cmi=cmi_seed.mean(0), cmi_hw=hw, mi_a_bc=bc_seed.mean(0), mi_a_bc_hw=bc_hw,
                             per_seed_cmi=cmi_seed, per_seed_mi_a_bc=bc_seed, mi_a_b=(h[:, :, :1] - h[:, :, 2:]).mean(0))
    last = per_budget[budgets[-1]]
    bias, bias_bc = np.zeros_like(last["cmi"]), np.zeros_like(last["mi_a_bc"])
    if len(budgets) >= 2:  # the last doubling still moved a value by more than its half-width: add that change
        prev = per_budget[budgets[-2]]
        change, change_bc = np.abs(last["cmi"] - prev["cmi"]), np.abs(last["mi_a_bc"] - prev["mi_a_bc"])
        bias = np.where(change > last["cmi_hw"], change, 0.0)
        bias_bc = np.where(change_bc > last["mi_a_bc_hw"], change_bc, 0.0)
    secs = float(sum(e["seconds"] for e in entries)) if seconds is None else seconds
    # a model whose validation cross-entropy (mean over seeds) ended more than UNSTABLE nats above its best got worse
    # while training: early stopping then keeps an under-trained early state, and a value that uses it is unreliable
    rise = np.stack([np.asarray(e["val_mean"])[-1] - np.asarray(e["val_mean"]).min(0) for e in entries])  # (T, 2+R)
    unstable = (rise[:, 2:] > UNSTABLE) | (rise[:, 1:2] > UNSTABLE)
    settings = dict(settings, bias_mi_a_bc=bias_bc, validation_rise=rise,
                    unstable_mi_a_bc=(rise[:, 0] > UNSTABLE) | (rise[:, 1] > UNSTABLE))
    return CMIMap(t_values, radii, last["cmi"], last["cmi_hw"] + bias, last["mi_a_bc"], last["mi_a_bc_hw"] + bias_bc,
                  last["mi_a_b"], last["per_seed_cmi"], last["per_seed_mi_a_bc"],
                  settings.get("estimator", ESTIMATOR["likelihood"]), level, secs,
                  settings, budgets=per_budget, bias=bias, unstable=unstable)


# ----------------------------------------------------------------------------------------------------------
# Shipped maps: the library's own command, with provenance (like localdiff_lib.checkpoints)
# ----------------------------------------------------------------------------------------------------------

#: times in the order a run computes them: the middle of the path first (what a CPU run must reach), then the rest
_T_FIRST = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
_T_REST = (0.0, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.7)


def _map_recipe(dataset: str, **kw) -> dict:
    base = dict(dataset=dataset, t_values=_T_FIRST + _T_REST, radii=(1, 2, 3, 4, 6, 12), seeds=3, steps=6000,
                batch=128, width=8, hidden=64, patch=4, components=8, lr=2e-3, val_images=5000, val_samples=2048,
                eval_samples=16384, seed=0)
    base.update(kw)
    return base


#: name -> the arguments of :func:`image_cmi_map` and the data set. ``*-cpu``: sized for one CPU core (a background
#: run of hours); ``*-gpu``: the whole grid of the paper's radii, for one GPU (``--device cuda``).
MAP_RECIPES: dict[str, dict] = {
    "mnist-cpu": _map_recipe("mnist"),
    "fashion-mnist-cpu": _map_recipe("fashion-mnist"),
    "mnist-gpu": _map_recipe("mnist", radii=(1, 2, 3, 4, 5, 6, 8, 10, 12), seeds=5, steps=16000, batch=256,
                             t_values=tuple(np.round(np.arange(0, 0.701, 0.025), 3))),
    # coverage: the same estimator and budget on samples of MNIST's Gaussian surrogate, whose map is exact
    "mnist-surrogate-cpu": _map_recipe("mnist-surrogate", t_values=(0.1, 0.3, 0.6)),
    "mixture-cpu": _map_recipe("mixture", t_values=(0.3, 0.5)),
    # the authors' protocol choices, one at a time, on top of the course's estimator (chapter "The CMI barrier")
    "mnist-fixed-noise-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), fixed_noise=True),
    "mnist-train-eval-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), eval_on_train=True),
    "mnist-authors-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), fixed_noise=True, eval_on_train=True),
    "mnist-no-early-stop-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), early_stopping=False),
    "mnist-authors-no-early-stop-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), fixed_noise=True,
                                                   eval_on_train=True, early_stopping=False),
    # the authors' estimator: MINE critics on the same trunk, with the course's protocol and then with the authors'
    "mnist-mine-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), objective="mine"),
    "mnist-authors-mine-cpu": _map_recipe("mnist", t_values=(0.3,), radii=(1, 12), fixed_noise=True,
                                          eval_on_train=True, early_stopping=False, objective="mine"),
    "fashion-mnist-gpu": _map_recipe("fashion-mnist", radii=(1, 2, 3, 4, 5, 6, 8, 10, 12), seeds=5, steps=16000,
                                     batch=256, t_values=tuple(np.round(np.arange(0, 0.701, 0.025), 3))),
}


SURROGATE = "-surrogate"  # a data set name ending so ("mnist-surrogate"): samples of its Gaussian surrogate


def surrogate_samples(dataset: str, t_values, radii, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0,
                      crop: int = PAPER_CROP):
    """Samples of the Gaussian surrogate of ``dataset`` on the paper's crop, and its exact map: a problem with a
    known answer in the map's own geometry, on which the map's intervals are checked (their coverage).

    Returns ``(train, test, exact)``: ``(n, crop, crop)`` float32 tensors and ``exact = {"t", "r", "cmi" (T, R),
    "mi_a_bc" (T,)}`` from :func:`localdiff_lib.info.surrogate_cmi_map` (the same covariance, dequantized)."""
    images, _ = load_dataset(dataset, "train")
    x = paper_crop(images[:, 0], crop).reshape(images.shape[0], -1).double().numpy()
    mean, cov = gaussian_surrogate(x)
    cov = cov + (1 / 255) ** 2 / 12.0 * np.eye(cov.shape[0])  # the dequantization of surrogate_cmi_map
    L = np.linalg.cholesky(cov)
    rng = np.random.default_rng(seed)
    draw = [(mean + rng.standard_normal((n, cov.shape[0])) @ L.T).astype(np.float32).reshape(n, crop, crop)
            for n in (n_train, n_test)]
    sur = surrogate_cmi_map(images, [t for t in t_values if t > 0] or [0.5], radii, crop=crop)
    exact = dict(t=sur.t.tolist(), r=sur.r.tolist(), cmi=sur.cmi.tolist(), mi_a_bc=sur.mi_a_bc.tolist())
    return torch.from_numpy(draw[0]), torch.from_numpy(draw[1]), exact


def mixture_samples(t_values, radii, mu: float = 0.2, sigma0: float = 0.05, n_train: int = 60_000,
                    n_test: int = 10_000, seed: int = 0, crop: int = PAPER_CROP):
    """Images of the two-class mixture of :func:`localdiff_lib.info.mixture_cmi` on the paper's crop (pixels
    ``0.5 + s mu + sigma0 eps``, i.i.d. given the class ``s = +-1``), and its exact map: a second problem with a
    known answer in the map's geometry, whose only dependence is global (the class). Returns ``(train, test, exact)``
    as :func:`surrogate_samples`."""
    rng = np.random.default_rng(seed)
    n = crop * crop
    draw = []
    for m in (n_train, n_test):
        s = rng.choice([-1.0, 1.0], size=(m, 1, 1))
        x = 0.5 + s * mu + sigma0 * rng.standard_normal((m, crop, crop))
        if x.min() < 0 or x.max() > 1:
            raise ValueError("mixture pixels left [0, 1]; use a smaller mu or sigma0")
        draw.append(torch.tensor(x, dtype=torch.float32))
    nb = [(2 * int(r) + 1) ** 2 - 1 for r in radii]
    exact = dict(t=[float(t) for t in t_values], r=[int(r) for r in radii],
                 cmi=[[mixture_cmi(n, float(t), n_b=b, mu=mu, sigma0=sigma0) for b in nb] for t in t_values],
                 mi_a_bc=[mixture_mi(n, float(t), mu=mu, sigma0=sigma0) for t in t_values])
    return draw[0], draw[1], exact


def run_map(name: str, directory: str | Path | None = None, device: str | None = None, threads: int | None = None,
            restart: bool = False, recipe: dict | None = None, max_times: int | None = None) -> dict:
    """Compute recipe ``name`` of :data:`MAP_RECIPES` into ``directory/cmi-map-NAME/`` and return its record.

    The directory holds ``results.json`` (the recipe and one entry per finished time), ``record.json`` (command,
    recipe, finished times, machine, torch, git commit, wall time, SHA-256 of ``results.json``) and ``run.log``.
    Both JSON files are rewritten atomically after every time, so an interrupted run keeps every finished time and
    the same command resumes it; a run whose recipe differs from the one on disk is refused (``restart=True``
    starts again). ``recipe`` replaces the named recipe (tests and experiments; the record keeps it).
    ``max_times`` stops after that many more times (so that one data set's first times can come before another's).
    """
    if recipe is None and name not in MAP_RECIPES:
        raise ValueError(f"unknown map recipe {name!r}; the recipes are: {', '.join(MAP_RECIPES)}")
    recipe = json.loads(json.dumps(MAP_RECIPES[name] if recipe is None else recipe))
    out = (Path(directory) if directory is not None else results_dir()) / f"cmi-map-{name}"
    out.mkdir(parents=True, exist_ok=True)
    res_file, rec_file, log_file = out / "results.json", out / "record.json", out / "run.log"
    times, seconds_before = {}, 0.0
    if res_file.exists() and not restart:
        old = json.loads(res_file.read_text())
        if old["recipe"] != recipe:
            diff = {k: (old["recipe"].get(k), recipe.get(k)) for k in set(old["recipe"]) | set(recipe)
                    if old["recipe"].get(k) != recipe.get(k)}
            raise ValueError(f"{res_file} was computed with another recipe (on disk, now): {diff}; "
                             "pass restart=True (--restart) to discard it")
        times = old["times"]
        seconds_before = float(json.loads(rec_file.read_text()).get("seconds", 0.0)) if rec_file.exists() else 0.0
    if threads is not None:
        torch.set_num_threads(int(threads))
    dev = torch.device(device) if device is not None else default_device()
    command = f"python -m localdiff_lib.cmi_map run {name}" + (f" --threads {threads}" if threads else "") + (
        f" --device {device}" if device else "")
    logf = open(log_file, "a")

    def log(msg):
        logf.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        logf.flush()

    log(f"# {command} (resuming with {len(times)} finished times)" if times else f"# {command}")
    t_run = time.perf_counter()
    record, started = {}, provenance(dev)  # the commit and machine of the code that is running, read once
    extra = {}  # what results.json holds besides the recipe and the times (the exact map of a surrogate)

    def save(progress):
        nonlocal record
        atomic_write(res_file, json.dumps(dict(recipe=recipe, times=progress, **extra)) + "\n")
        done = [t for t in recipe["t_values"] if f"{t:.4f}" in progress]
        record = dict(name=name, command=command, recipe=recipe, finished_t=done,
                      complete=len(done) == len(recipe["t_values"]),
                      seconds=round(seconds_before + time.perf_counter() - t_run, 1), **started,
                      sha256=sha256(res_file), size_bytes=res_file.stat().st_size)
        atomic_write(rec_file, json.dumps(record, indent=2) + "\n")

    if times and rec_file.exists() and all(f"{t:.4f}" in times for t in recipe["t_values"]):
        log("# nothing to do: every time is finished")
        logf.close()
        return json.loads(rec_file.read_text())
    kw = {k: v for k, v in recipe.items() if k not in ("dataset", "t_values", "radii")}
    if recipe["dataset"].endswith(SURROGATE):
        train, test, exact = surrogate_samples(recipe["dataset"][:-len(SURROGATE)], recipe["t_values"],
                                               recipe["radii"], seed=recipe["seed"])
        extra["exact"] = exact
        kw.update(unit_range=False, pixel_levels=None)
    elif recipe["dataset"] == "mixture":
        train, test, exact = mixture_samples(recipe["t_values"], recipe["radii"], seed=recipe["seed"])
        extra["exact"] = exact
        kw.update(pixel_levels=None)
    else:
        train, _ = load_dataset(recipe["dataset"], "train")
        test, _ = load_dataset(recipe["dataset"], "test")
    try:
        todo = [t for t in recipe["t_values"] if f"{t:.4f}" not in times][:max_times]
        if todo:
            image_cmi_map(train, test, todo, recipe["radii"], device=dev, progress=times, on_time=save, log=log,
                          **kw)
    finally:
        log("# stopped" if not record.get("complete") else f"# complete in {record['seconds']:.0f} s")
        logf.close()
    return record


def load_map(name: str, directory: str | Path | None = None, level: float = 0.95) -> CMIMap:
    """The shipped map ``name`` as a :class:`CMIMap` over its finished times (sorted), after checking its SHA-256."""
    out = (Path(directory) if directory is not None else results_dir()) / f"cmi-map-{name}"
    rec, res = read_checked(out, f"python -m localdiff_lib.cmi_map run {name}")
    recipe = res["recipe"]
    t_done = sorted(rec["finished_t"])
    settings = {k: v for k, v in recipe.items() if k not in ("t_values", "radii")}
    settings["report_at"] = budgets_of(recipe["steps"])
    settings["estimator"] = ESTIMATOR[recipe.get("objective", "likelihood")]
    m = map_from_progress(t_done, recipe["radii"], res["times"], settings, level)
    m.settings["record"] = rec
    if "exact" in res:  # a surrogate's exact map, on the finished times
        ex = res["exact"]
        rows = [ex["t"].index(t) for t in t_done]
        m.settings["exact"] = dict(cmi=np.asarray(ex["cmi"])[rows], mi_a_bc=np.asarray(ex["mi_a_bc"])[rows])
    return m


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdiff_lib.cmi_map",
                                     description="Shipped CMI maps: compute (resumable), list, check.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="compute a map recipe into its results directory (resumes an interrupted run)")
    p.add_argument("names", nargs="+", choices=list(MAP_RECIPES))
    p.add_argument("--dir", default=None, help="output directory (default: the shipped location)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--restart", action="store_true", help="discard a finished part computed with another recipe")
    p.add_argument("--max-times", type=int, default=None, help="stop after this many more times")
    sub.add_parser("list", help="list the recipes and what is shipped")
    c = sub.add_parser("check", help="reload each shipped map (hash and shape) and print it")
    c.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        for n in args.names:
            rec = run_map(n, args.dir, args.device, args.threads, args.restart, max_times=args.max_times)
            print(f"{n}: {len(rec['finished_t'])} times in {rec['seconds']:.0f} s, sha256 {rec['sha256'][:16]}...")
    elif args.cmd == "list":
        for n, r in MAP_RECIPES.items():
            f = results_dir() / f"cmi-map-{n}" / "record.json"
            state = "not shipped"
            if f.exists():
                rec = json.loads(f.read_text())
                state = f"shipped, {len(rec['finished_t'])}/{len(r['t_values'])} times"
            print(f"{n:22s} {state:26s} {len(r['t_values'])} times x radii {r['radii']}, {r['seeds']} seeds, "
                  f"{r['steps']} steps")
    else:
        shipped = results_dir().glob("cmi-map-*/record.json")
        names = args.names or sorted(p.parent.name[len("cmi-map-"):] for p in shipped)
        for n in names:
            m = load_map(n)
            print(f"{n}: {len(m.t)} times, radii {[int(r) for r in m.r]}\n{m.table(4)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def slice_settings() -> dict:
    """The live slice of the shipped map that chapter "The CMI barrier" recomputes, for the current budget.

    The same estimator and recipe as ``MAP_RECIPES["mnist-cpu"]`` on fewer cells; ``steps`` is one of the budgets
    that the shipped map reports (``steps / 4``, ``steps / 2``, ``steps``), so that the slice is compared with the
    shipped value **at the same training budget** (quick: 37 s on 2 CPU cores, one time per core).
    """
    base = MAP_RECIPES["mnist-cpu"]
    out = dict(
        t_values=pick(quick=(0.1, 0.3), standard=(0.1, 0.3, 0.6), full=(0.1, 0.3, 0.6)),  # the cells re-checked
        radii=(1, 3),
        seeds=pick(quick=2, standard=3, full=3, work=True),  # replicates
        steps=pick(quick=base["steps"] // 4, standard=base["steps"], full=base["steps"], work=True),
        eval_samples=pick(quick=base["eval_samples"] // 2, standard=base["eval_samples"], full=base["eval_samples"],
                          work=True),
        num_threads=1 if default_device().type == "cpu" else None,  # one thread is faster on a CPU (map_settings)
        workers=cpu_cores() if default_device().type == "cpu" else 1,  # ... and one time per core at once
        **{k: base[k] for k in ("batch", "width", "hidden", "patch", "components", "lr", "val_images",
                                "val_samples")},
    )
    out["report_at"] = [out["steps"]]
    return out
