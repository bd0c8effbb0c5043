"""CMI of a scalar ``A`` as a difference of conditional entropies, with mixture-density models (chapter "Estimating CMI").

For a single pixel ``A`` the chain rule can be written with entropies instead of mutual informations:

    ``I(A:C|B) = H(A|B) - H(A|BC)``,   ``I(A:BC) = H(A) - H(A|BC)``.

Each conditional entropy is estimated by the held-out cross-entropy ``-E log q(A | context)`` of a model ``q`` trained
by maximum likelihood; ``q`` is a mixture of ``components`` Gaussians on the scalar ``A`` whose weights, means and
widths are computed by an MLP of the masked context ``[x * m, m]`` (the context network of
:class:`localdiff_lib.estimators.CriticBank`, with the same mask channel). A cross-entropy is an upper bound on the
entropy, so neither term is a bound on the CMI; what makes this estimator useful is its variance: both terms are
averages over **the same** held-out samples of one log-likelihood each, so their difference is a paired average,
not the difference of two noisy contrastive bounds. It needs no negative samples and is not capped at ``log N``.

Pixels at ``t = 0`` are discrete (multiples of ``1/255`` for MNIST): their differential entropy is ``-inf``. A group
given ``bin_width > 0`` is scored by the probability of its bin ``[a - w/2, a + w/2]`` under the mixture (open edge
bins at 0 and 1, as in PixelCNN++), which estimates the discrete entropy; at ``t > 0`` (``bin_width = 0``) the
density is used. Differences of entropies of the same kind are mutual informations in nats either way.

:func:`train_density_bank` trains many models at once (the bank layout of :mod:`localdiff_lib.estimators`);
:func:`estimate_cmi` and :func:`estimate_mi` take a sampler of vectors like their namesakes there;
``cmi_map.neural_cmi_map(..., bound="density")`` computes the paper's map with it.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .checks import InputError, disjoint_regions, integer
from .config import default_device
from .estimators import (BankResult, check_replicates, check_training, context_mask, CriticBank, sample_dimension,
                         vector_sampler)
from .stats import Estimate

__all__ = ["DensityBank", "mixture_log_prob", "train_density_bank", "estimate_cmi", "estimate_mi"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class DensityBank(CriticBank):
    """Mixture-density models ``q_k(a | [x * m_k, m_k])`` of a scalar ``A``, stacked along the model axis.

    ``masks`` ``(G, c, D)`` and ``a_idx`` (one index) as in :class:`~localdiff_lib.estimators.CriticBank`; an
    all-zero mask gives the unconditional ``q(a)``. ``bin_width`` ``(G,)``: 0 for a group whose ``A`` is continuous,
    the grid step for a group whose ``A`` lies on the grid ``{0, w, 2w, ..., 1}`` (e.g. ``1/255`` at ``t = 0``).
    """

    def __init__(self, masks: torch.Tensor, a_idx: Sequence[int], hidden: int = 64, components: int = 8,
                 bin_width=None, generator: torch.Generator | None = None):
        if len(list(a_idx)) != 1:
            raise ValueError(f"the density estimator models a scalar A; got |A| = {len(list(a_idx))} (use the critic "
                             "bounds of localdiff_lib.estimators for a vector A)")
        components = integer(components, "components")
        super().__init__(masks, a_idx, hidden=hidden, features=3 * components, generator=generator, a_network=False)
        G = self.shape[0]
        what = f"bin_width must hold {G} non-negative finite numbers (one per group)"
        try:
            w = torch.zeros(G) if bin_width is None else torch.as_tensor(bin_width, dtype=torch.float32).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"{what}, got {bin_width!r}") from None
        if w.numel() != G or not bool(((w >= 0) & torch.isfinite(w)).all()):
            raise InputError(f"{what}, got {w.tolist()[:8]} (shape {tuple(w.shape)})")
        self.components = components
        self.register_buffer("bin_width", w.repeat_interleave(self.shape[1])[:, None, None])  # (K, 1, 1)
        self.register_buffer("centres", torch.linspace(0.0, 1.0, components))  # initial means spread over [0, 1]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(G, N, D)`` -> ``log q_k(a_i | context_i)`` ``(G * c, N)``: a log density, or a log bin probability
        for the groups with ``bin_width > 0``."""
        a = x[:, :, self.a_idx[0]].float().repeat_interleave(self.shape[1], dim=0)[..., None]  # (K', N, 1)
        return mixture_log_prob(self.context(x).float(), a, self.centres, self.bin_width)


def mixture_log_prob(out: torch.Tensor, a: torch.Tensor, centres: torch.Tensor, bin_width: torch.Tensor) -> torch.Tensor:
    """The mixture head shared by the density models: ``out`` ``(K, N, 3M)`` (logits, mean offsets from ``centres``,
    raw widths of ``M`` Gaussians), ``a`` ``(K, N, 1)`` -> ``log q(a)`` ``(K, N)``. A model whose ``bin_width`` ``(K, 1, 1)``
    is positive scores the probability of the bin ``[a - w/2, a + w/2]`` (open edge bins at 0 and 1)."""
    M = centres.numel()
    if out.shape[-1] != 3 * M:
        raise InputError(f"out must have 3 * {M} = {3 * M} features in its last axis; got {out.shape[-1]}")
    logit, mu, raw = out[..., :M], out[..., M:2 * M] + centres, out[..., 2 * M:]
    sigma = 0.3 * nn.functional.softplus(raw + 0.5) + 1e-4
    log_pi = torch.log_softmax(logit, dim=-1)
    log_density = -torch.log(sigma) - 0.5 * ((a - mu) / sigma) ** 2 - _LOG_SQRT_2PI
    w = bin_width
    if bool((w > 0).any()):
        half = 0.5 * w
        up, lo = (a + half - mu) / sigma, (a - half - mu) / sigma
        p_mid = torch.special.ndtr(up) - torch.special.ndtr(lo)
        # a tiny bin probability loses its digits in the subtraction: use density x width there
        log_mid = torch.where(p_mid > 1e-6, torch.log(p_mid.clamp_min(1e-30)), log_density + torch.log(w.clamp_min(1e-30)))
        log_bin = torch.where(a >= 1 - half, torch.special.log_ndtr(-lo),
                              torch.where(a <= half, torch.special.log_ndtr(up), log_mid))
        log_density = torch.where(w > 0, log_bin, log_density)
    return torch.logsumexp(log_pi + log_density, dim=-1)


def _check_on_grid(x: torch.Tensor, a: int, bin_width: torch.Tensor) -> None:
    for g, w in enumerate(bin_width.tolist()):
        if w > 0:
            v = x[g, :, a].double()
            off = (v / w - torch.round(v / w)).abs().max()
            if float(off) > 1e-3 or float(v.min()) < -1e-6 or float(v.max()) > 1 + 1e-6:
                raise ValueError(f"group {g} has bin_width {w} but its A values are not on the grid {{0, {w:.4g}, ..., 1}} "
                                 "(they are noisy or not in [0, 1]); give bin_width 0 for continuous groups")


def train_density_bank(
    sampler: Callable[[str, int, torch.Generator], torch.Tensor],
    masks: torch.Tensor,
    a_idx: Sequence[int],
    *,
    bin_width=None,
    steps: int = 1500,
    batch: int = 128,
    lr: float = 2e-3,
    hidden: int = 48,
    components: int = 8,
    eval_batches: int = 20,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_threads: int | None = None,
    log_every: int = 50,
) -> BankResult:
    """Train a :class:`DensityBank` by maximum likelihood; return held-out cross-entropies (nats) per model.

    ``sampler`` and ``masks`` as in :func:`localdiff_lib.estimators.train_critic_bank` (fresh samples every batch,
    ``"eval"`` samples from held-out data). Adam with 100 warm-up steps and the learning rate divided by 10 for the
    last fifth of the steps. ``BankResult.values[k]`` is ``-mean log q_k`` on ``eval_batches * batch`` held-out
    samples (an estimate of the conditional entropy, from above), ``se`` its standard error over the batches,
    ``train_curve`` the training cross-entropies.
    """
    steps, batch, eval_batches = check_training(steps, batch, eval_batches, num_threads, log_every)
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        dev = torch.device(device) if device is not None else default_device()
        bank = DensityBank(masks, a_idx, hidden=hidden, components=components, bin_width=bin_width,
                           generator=torch.Generator().manual_seed(seed)).to(dev)
        opt = torch.optim.Adam(bank.parameters(), lr=lr)
        gen = torch.Generator(device=dev).manual_seed(seed + 1)
        curve = []
        t0 = time.perf_counter()
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, (step + 1) / 100) * (0.1 if step >= 0.8 * steps else 1.0)
            x = sampler("train", batch, gen)
            if step == 0:
                _check_on_grid(x, int(bank.a_idx[0]), bank.bin_width[::bank.shape[1], 0, 0].cpu())
            nll = -bank.log_prob(x).mean(1)
            opt.zero_grad(set_to_none=True)
            nll.sum().backward()
            opt.step()
            if step % log_every == 0 or step == steps - 1:
                curve.append(nll.detach())
        with torch.no_grad():
            ev = torch.stack([-bank.log_prob(sampler("eval", batch, gen)).mean(1) for _ in range(eval_batches)])
        ev = ev.double().cpu().numpy()
        return BankResult(values=ev.mean(0), se=ev.std(0, ddof=1) / math.sqrt(eval_batches),
                          train_curve=torch.stack(curve).cpu().numpy(), seconds=time.perf_counter() - t0, steps=steps)
    finally:
        torch.set_num_threads(old_threads)


def estimate_cmi(sample: Callable[[int, np.random.Generator], np.ndarray], A: Sequence[int], B: Sequence[int],
                 C: Sequence[int], *, seeds: int = 3, level: float = 0.95, bin_width: float = 0.0, **train_kw) -> Estimate:
    """``I(A:C|B) = H(A|B) - H(A|BC)`` of a scalar ``A`` from samples (``sample(n, rng)`` -> ``(n, D)``).

    Per seed, three models share one data stream: ``q(a)``, ``q(a | b, c)`` and ``q(a | b)``; ``parts`` holds
    ``I(A:BC) = H(A) - H(A|BC)`` and ``I(A:B) = H(A) - H(A|B)``. ``bin_width > 0``: ``A`` is discrete on that grid
    in ``[0, 1]``. ``train_kw`` go to :func:`train_density_bank`.
    """
    seeds, level = check_replicates(seeds, level)
    D = sample_dimension(sample)
    disjoint_regions(D, A=A, B=B, C=C)
    masks = torch.stack([torch.zeros(D), context_mask(D, list(B) + list(C)), context_mask(D, B)])[None].repeat(seeds, 1, 1)
    res = train_density_bank(vector_sampler(sample, seeds), masks, A, bin_width=[bin_width] * seeds, **train_kw)
    h = res.values.reshape(seeds, 3)
    i_bc, i_b = h[:, 0] - h[:, 1], h[:, 0] - h[:, 2]
    parts = {"I(A:BC)": Estimate.from_seeds(i_bc, "density", level), "I(A:B)": Estimate.from_seeds(i_b, "density", level)}
    return Estimate.from_seeds(h[:, 2] - h[:, 1], "density", level, parts)


def estimate_mi(sample: Callable[[int, np.random.Generator], np.ndarray], A: Sequence[int], C: Sequence[int], *,
                seeds: int = 3, level: float = 0.95, bin_width: float = 0.0, **train_kw) -> Estimate:
    """``I(A:C) = H(A) - H(A|C)`` of a scalar ``A`` from samples (see :func:`estimate_cmi`)."""
    est = estimate_cmi(sample, A, [], C, seeds=seeds, level=level, bin_width=bin_width, **train_kw)
    return est.parts["I(A:BC)"]
