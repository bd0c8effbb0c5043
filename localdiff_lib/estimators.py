"""Neural estimators of mutual information and conditional mutual information (chapter "Estimating CMI").

Four variational bounds behind one interface, all computed from a matrix of critic scores
``scores[k, i, j] = T_k(a_i, c_j)`` (critic ``k``, ``A``-part of sample ``i``, context of sample ``j``); the
diagonal holds samples of the joint law, the off-diagonal pairs samples of the product of the marginals:

==========  ===============================================================  ==========================================
``bound``   value reported (nats)                                            how the critic is trained
==========  ===============================================================  ==========================================
``mine``    Donsker–Varadhan: ``E_p[T] - log E_q[e^T]``                       DV with MINE's bias-corrected gradient: the
                                                                             denominator ``E_q[e^T]`` is replaced by a
                                                                             moving average (``ema``) in the gradient
``dv``      Donsker–Varadhan (same value)                                    plain DV gradient (biased on minibatches)
``nwj``     ``E_p[T] - E_q[e^{T-1}]``                                         the same objective
``infonce`` ``E[T_ii - log sum_j e^{T_ij}] + log N`` (at most ``log N``)     the same objective
``smile``   clipped DV: ``E_p[T] - log E_q[clip(e^T, e^-tau, e^tau)]``        Jensen–Shannon (f-GAN) objective, whose
                                                                             optimal critic is the log density ratio
==========  ===============================================================  ==========================================

References (keys of ``references.bib``): MINE ``belghazi2018mine``, NWJ ``nguyen2010estimating``, InfoNCE
``oord2018representation``, the unified view ``poole2019variational``, SMILE ``song2020understanding``.

CMI is estimated by the chain rule, ``I(A:C|B) = I(A:BC) - I(A:B)``, with the **same critic family and budget**
for both terms. A critic is separable, ``T(a, c) = g(a) . h(c)`` (two MLPs), so one batch of ``N`` samples gives
all ``N^2`` pairs. The context ``c`` is the *masked* vector plus its mask channel, ``[x * m, m]``: pixels outside the
region are set to 0 **and** flagged by the mask, because 0 is a real MNIST pixel. Many critics (all regions, all
``t``, all seeds) are trained at once as one "bank": parameters are stacked along a leading critic axis and every
layer is one batched matrix product (the same computation as ``torch.func.vmap`` over stacked parameters, without
its overhead); Adam is elementwise, so the critics are trained exactly as if separately.

Protocol (the authors' flaws avoided): fresh data and fresh noise every batch, evaluation on held-out samples,
several seeds with a Student-t confidence interval across seeds, and negative estimates reported as they are: the
difference of two lower bounds is not a bound, it is an estimate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .checks import InputError, disjoint_regions, indices, integer, number
from .config import default_device, native_bf16
from .stats import Estimate

__all__ = [
    "BOUNDS",
    "bound_values",
    "bound_loss",
    "CriticBank",
    "BankResult",
    "train_critic_bank",
    "Estimate",
    "estimate_mi",
    "estimate_cmi",
    "vector_sampler",
    "context_mask",
    "sample_dimension",
    "check_replicates",
    "check_training",
]

BOUNDS = ("mine", "dv", "nwj", "infonce", "smile")


def _check_bound(bound: str) -> str:
    if bound not in BOUNDS:
        raise InputError(f"unknown bound {bound!r}; use one of {', '.join(BOUNDS)}")
    return bound


def check_training(steps, batch, eval_batches, num_threads=None, log_every=1) -> tuple[int, int, int]:
    """The budget of a bank's training: ``steps >= 1``, ``batch >= 2`` and ``eval_batches >= 2`` (the interval over the
    evaluation batches needs two), ``num_threads`` and ``log_every`` positive (``num_threads`` may be ``None``)."""
    if num_threads is not None:
        integer(num_threads, "num_threads")
    integer(log_every, "log_every")
    return (integer(steps, "steps"), integer(batch, "batch", minimum=2),
            integer(eval_batches, "eval_batches (the interval needs at least two batches)", minimum=2))


def check_replicates(seeds, level) -> tuple[int, float]:
    """``seeds >= 2`` (the confidence interval is across seeds) and a confidence ``level`` in ``(0, 1)``."""
    return (integer(seeds, "seeds (use at least 2: the confidence interval is across seeds)", minimum=2),
            number(level, "level", above=0.0, below=1.0))


def sample_dimension(sample) -> int:
    """``D`` of a sampler of vectors ``sample(n, rng) -> (n, D)`` (called once with ``n = 2``)."""
    x = np.asarray(sample(2, np.random.default_rng(0)))
    if x.ndim != 2 or x.shape[0] != 2:
        raise InputError(f"sample(n, rng) must return an array of shape (n, D); got shape {x.shape} for n = 2")
    return int(x.shape[1])


# ----------------------------------------------------------------------------------------------------------
# The bounds, from a score matrix
# ----------------------------------------------------------------------------------------------------------


def _offdiag_logmeanexp(scores: torch.Tensor) -> torch.Tensor:
    """``log mean_{i != j} exp(scores[k, i, j])`` per critic ``k``."""
    K, N, _ = scores.shape
    eye = torch.eye(N, dtype=torch.bool, device=scores.device)
    s = scores.masked_fill(eye, float("-inf"))
    return torch.logsumexp(s.reshape(K, -1), dim=1) - math.log(N * (N - 1))


def bound_values(scores: torch.Tensor, bound: str, clip: float = 5.0) -> torch.Tensor:
    """The value of ``bound`` (nats) for each critic, from ``scores`` of shape ``(K, N, N)`` (``(N, N)`` also works).

    ``scores[k, i, j] = T_k(a_i, c_j)``; the diagonal are joint samples, ``i != j`` product-of-marginal samples.
    ``clip`` is SMILE's ``tau``. ``mine`` and ``dv`` have the same value (they differ in training only).
    """
    _check_bound(bound)
    if not torch.is_tensor(scores):
        raise InputError(f"scores must be a tensor (K, N, N); got {type(scores).__name__}")
    clip = number(clip, "clip", above=0.0)
    squeeze = scores.ndim == 2
    if squeeze:
        scores = scores[None]
    if scores.ndim != 3 or scores.shape[1] != scores.shape[2] or scores.shape[1] < 2:
        raise ValueError(f"scores must have shape (K, N, N) with N >= 2, got {tuple(scores.shape)}")
    scores = scores.float()
    N = scores.shape[1]
    joint = scores.diagonal(dim1=1, dim2=2).mean(1)
    if bound in ("mine", "dv"):
        out = joint - _offdiag_logmeanexp(scores)
    elif bound == "nwj":
        out = joint - torch.exp(_offdiag_logmeanexp(scores) - 1.0)
    elif bound == "infonce":
        out = (scores.diagonal(dim1=1, dim2=2) - torch.logsumexp(scores, dim=2)).mean(1) + math.log(N)
    else:  # smile
        out = joint - _offdiag_logmeanexp(scores.clamp(-clip, clip))
    return out[0] if squeeze else out


def bound_loss(scores: torch.Tensor, bound: str, log_ema: torch.Tensor | None = None, ema_rate: float = 0.01,
               clip: float = 5.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The training loss (summed over critics), the per-critic values, and the updated MINE moving average.

    For ``mine``, ``log_ema`` (shape ``(K,)``, or ``None`` at the first step) is the log of the moving average of
    ``E_q[e^T]``; the gradient of the surrogate ``-(E_p[T] - E_q[e^T] / ema)`` is MINE's bias-corrected gradient
    ``grad E_p[T] - grad E_q[e^T] / ema``. For ``smile`` the gradient is that of the Jensen–Shannon objective.
    """
    _check_bound(bound)
    ema_rate = number(ema_rate, "ema_rate", above=0.0, below=1.0)
    values = bound_values(scores, bound, clip)
    scores = scores.float()
    if bound == "mine":
        lme = _offdiag_logmeanexp(scores)
        new = lme.detach()
        if log_ema is not None:
            new = torch.logaddexp(math.log(1 - ema_rate) + log_ema, math.log(ema_rate) + new)
        joint = scores.diagonal(dim1=1, dim2=2).mean(1)
        surrogate = joint - torch.exp(lme - new)
        return -surrogate.sum(), values, new
    if bound == "smile":
        K, N, _ = scores.shape
        eye = torch.eye(N, dtype=torch.bool, device=scores.device)
        diag = scores.diagonal(dim1=1, dim2=2)
        off = nn.functional.softplus(scores).masked_fill(eye, 0.0).sum((1, 2)) / (N * (N - 1))
        js = -nn.functional.softplus(-diag).mean(1) - off
        return -js.sum(), values, log_ema
    return -values.sum(), values, log_ema


# ----------------------------------------------------------------------------------------------------------
# A bank of separable critics, trained together
# ----------------------------------------------------------------------------------------------------------


class CriticBank(nn.Module):
    """Separable critics ``T_k(a, c) = g_k(a) . h_k([x * m_k, m_k])`` with parameters stacked along the critic axis.

    ``masks`` has shape ``(G, c, D)``: ``G`` groups of ``c`` critics; the critics of group ``g`` all read the same
    batch ``x[g]`` of ``D``-vectors, critic ``(g, j)`` sees the coordinates where ``masks[g, j] = 1``. ``a_idx`` are
    the coordinates of ``A`` (shared, and excluded from every context). ``h`` is an MLP
    ``2D -> hidden -> hidden -> features`` on the masked vector concatenated with its mask channel; ``g`` an MLP
    ``|A| -> hidden_a -> features``. The first layer ``[x * m, m] @ [W_x; W_m] + b`` is computed as
    ``x @ (m * W_x) + b'``: a critic's mask is fixed, so its mask channel is a constant input whose weights add up
    to a constant vector, exactly a bias, which ``b' = m @ W_m + b`` is (one parameter instead of ``D x hidden``);
    and the masked coordinates are removed from the weights rather than fed as zeros, so a masked pixel is never
    confused with a black one. The ``c`` critics of a group become one matrix product ``x @ [m_1 W_1, ..., m_c W_c]``
    without a masked copy of the batch per critic; all other layers are batched matrix products over the critics.
    """

    def __init__(self, masks: torch.Tensor, a_idx: Sequence[int], hidden: int = 64, features: int = 32,
                 hidden_a: int = 32, generator: torch.Generator | None = None, a_network: bool = True):
        super().__init__()
        masks = torch.as_tensor(masks, dtype=torch.float32)
        if masks.ndim != 3:
            raise ValueError(f"masks must have shape (G, c, D) (groups, critics per group, coordinates), got {tuple(masks.shape)}")
        G, c, D = masks.shape
        a_idx = indices(a_idx, "a_idx", D)
        if not a_idx:
            raise InputError(f"a_idx must be non-empty indices into the D={D} coordinates")
        a_idx = torch.as_tensor(a_idx, dtype=torch.long)
        hidden, features = integer(hidden, "hidden"), integer(features, "features")
        hidden_a = integer(hidden_a, "hidden_a")
        if bool((masks[..., a_idx] != 0).any()):
            raise ValueError("a context mask includes a coordinate of A: the context must exclude A")
        self.register_buffer("masks", masks)
        self.register_buffer("masks_t", masks.permute(0, 2, 1)[..., None].contiguous())  # (G, D, c, 1)
        self.register_buffer("a_idx", a_idx)
        self.shape = (G, c, D)
        K, na = G * c, a_idx.numel()

        def w(shape, fan_in):
            return nn.Parameter(torch.randn(*shape, generator=generator) / math.sqrt(fan_in))

        visible = masks.sum(2).clamp(min=1.0)  # fan-in counts the visible coordinates
        # first-layer weights stored as (G, D, c, H): the c critics of a group side by side, no copy per step
        self.Wx = nn.Parameter(torch.randn(G, D, c, hidden, generator=generator) / visible.sqrt()[:, None, :, None])
        self.b1 = nn.Parameter(torch.zeros(G, c, hidden))  # bias, including the mask channel's constant input
        self.W2 = w((K, hidden, hidden), hidden)
        self.b2 = nn.Parameter(torch.zeros(K, 1, hidden))
        self.W3 = nn.Parameter(0.1 * w((K, hidden, features), hidden))  # small: scores start near 0
        self.b3 = nn.Parameter(torch.zeros(K, 1, features))
        if not a_network:  # a subclass that only needs the context network (localdiff_lib.density)
            return
        self.Ua = w((K, na, hidden_a), na)
        self.ba = nn.Parameter(torch.zeros(K, 1, hidden_a))
        self.Va = w((K, hidden_a, features), hidden_a)
        self.bv = nn.Parameter(torch.zeros(K, 1, features))

    @property
    def n_critics(self) -> int:
        return self.shape[0] * self.shape[1]

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(G, N, D)`` (one batch per group) -> the context network's output ``h`` ``(G * c, N, features)``."""
        G, c, D = self.shape
        if not torch.is_tensor(x):
            raise InputError(f"x must be a tensor (G, N, D), one batch per group (what a bank's sampler returns); got "
                             f"{type(x).__name__}")
        if x.ndim != 3 or x.shape[0] != G or x.shape[2] != D:
            raise ValueError(f"expected a batch of shape ({G}, N, {D}), got {tuple(x.shape)}")
        N, H = x.shape[1], self.Wx.shape[-1]
        act = nn.functional.silu
        W1 = (self.masks_t * self.Wx).reshape(G, D, c * H)  # the group's c critics side by side
        h = torch.bmm(x, W1.to(x.dtype)).reshape(G, N, c, H) + self.b1[:, None].to(x.dtype)
        h = act(h).permute(0, 2, 1, 3).reshape(G * c, N, H)
        h = act(torch.baddbmm(self.b2, h, self.W2))
        return torch.baddbmm(self.b3, h, self.W3)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(G, N, D)`` (one batch per group) -> scores ``(G * c, N, N)``, ``[k, i, j] = T_k(a_i, c_j)``."""
        h = self.context(x)
        act = nn.functional.silu
        a = x[:, :, self.a_idx].repeat_interleave(self.shape[1], dim=0)  # (G*c, N, |A|)
        g = act(torch.baddbmm(self.ba, a, self.Ua))
        g = torch.baddbmm(self.bv, g, self.Va)
        return torch.bmm(g, h.transpose(1, 2))


@dataclass
class BankResult:
    """Held-out values of a trained :class:`CriticBank`."""

    values: np.ndarray  # (K,) mean of the bound over the evaluation batches (nats)
    se: np.ndarray  # (K,) standard error of that mean over the evaluation batches
    train_curve: np.ndarray  # (n_logged, K) training-batch values, for diagnostics only
    seconds: float  # training + evaluation wall time
    steps: int


def train_critic_bank(
    sampler: Callable[[str, int, torch.Generator], torch.Tensor],
    masks: torch.Tensor,
    a_idx: Sequence[int],
    *,
    bound: str = "smile",
    steps: int = 1000,
    batch: int = 128,
    lr: float = 2e-3,
    hidden: int = 64,
    features: int = 32,
    eval_batches: int = 20,
    clip: float = 5.0,
    ema_rate: float = 0.01,
    seed: int = 0,
    device: str | torch.device | None = None,
    bf16: bool | None = None,
    log_every: int = 50,
    num_threads: int | None = None,
) -> BankResult:
    """Train ``K`` critics together and evaluate them on held-out data with fresh noise.

    ``sampler(split, n, generator)`` returns a tensor ``(G, n, D)``: ``n`` fresh samples for each of ``G`` groups
    (``split`` is ``"train"`` or ``"eval"``: the evaluation samples must come from data not used in training).
    ``masks`` ``(G, c, D)`` gives the context of the ``c`` critics of each group (see :class:`CriticBank`); e.g. a
    group per (seed, t), whose critics share their batches, which makes differences such as ``I(A:BC) - I(A:B)``
    less noisy. ``bf16`` (default: :func:`localdiff_lib.config.native_bf16`, not on a T4) runs the critics under bfloat16 autocast. ``num_threads`` sets torch's
    CPU threads for this call only (restored afterwards). Returns :class:`BankResult` with the held-out values,
    flattened in the order ``k = g * c + j``.
    """
    _check_bound(bound)
    steps, batch, eval_batches = check_training(steps, batch, eval_batches, num_threads, log_every)
    lr = number(lr, "lr", above=0.0)
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        return _train_critic_bank(sampler, masks, a_idx, bound, steps, batch, lr, hidden, features, eval_batches, clip,
                                  ema_rate, seed, device, bf16, log_every)
    finally:
        torch.set_num_threads(old_threads)


def _train_critic_bank(sampler, masks, a_idx, bound, steps, batch, lr, hidden, features, eval_batches, clip, ema_rate,
                       seed, device, bf16, log_every) -> BankResult:
    dev = torch.device(device) if device is not None else default_device()
    bf16 = native_bf16(dev) if bf16 is None else bf16
    gen_init = torch.Generator().manual_seed(seed)
    bank = CriticBank(masks, a_idx, hidden=hidden, features=features, generator=gen_init).to(dev)
    try:
        opt = torch.optim.Adam(bank.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device or torch version without the fused kernel
        opt = torch.optim.Adam(bank.parameters(), lr=lr, foreach=True)
    gen = torch.Generator(device=dev).manual_seed(seed + 1)
    log_ema = None
    curve = []
    t0 = time.perf_counter()

    def run(x):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            return bank.scores(x)

    for step in range(steps):
        x = sampler("train", batch, gen)
        scores = run(x)
        loss, values, log_ema = bound_loss(scores, bound, log_ema, ema_rate, clip)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            curve.append(values.detach())
    evals = []
    with torch.no_grad():
        for _ in range(eval_batches):
            evals.append(bound_values(run(sampler("eval", batch, gen)), bound, clip))
    ev = torch.stack(evals).double().cpu().numpy()
    return BankResult(
        values=ev.mean(0),
        se=ev.std(0, ddof=1) / math.sqrt(eval_batches),
        train_curve=torch.stack(curve).cpu().numpy(),
        seconds=time.perf_counter() - t0,
        steps=steps,
    )


# ----------------------------------------------------------------------------------------------------------
# Confidence intervals
# ----------------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------------
# MI and CMI of vectors drawn from a sampler
# ----------------------------------------------------------------------------------------------------------


def vector_sampler(sample, n_groups: int):
    """A bank sampler (``sampler(split, n, generator)`` -> ``(n_groups, n, D)``) from a sampler of vectors
    ``sample(n, numpy_generator)`` -> ``(n, D)``: one independent stream per group."""
    n_groups = integer(n_groups, "n_groups")

    def sampler(split, n, gen):
        # one independent stream per group (seed); torch generator -> integer seed for user samplers
        seeds = torch.randint(0, 2**62, (n_groups,), generator=gen, device=gen.device).tolist()
        xs = [torch.as_tensor(sample(n, np.random.default_rng(s)), dtype=torch.float32) for s in seeds]
        return torch.stack(xs).to(gen.device)

    return sampler


def context_mask(D: int, idx) -> torch.Tensor:
    """The 0/1 mask of length ``D`` that is 1 on the coordinates ``idx``."""
    D = integer(D, "D")
    m = torch.zeros(D)
    m[indices(idx, "idx", D)] = 1.0
    return m


def estimate_mi(sample: Callable[[int, np.random.Generator], np.ndarray], A: Sequence[int], C: Sequence[int], *,
                bound: str = "smile", seeds: int = 3, level: float = 0.95, **train_kw) -> Estimate:
    """``I(A:C)`` from samples: ``sample(n, rng)`` returns ``(n, D)`` fresh i.i.d. vectors (numpy or torch).

    One critic per seed, each on its own data stream; evaluation on fresh samples. ``train_kw`` go to
    :func:`train_critic_bank` (``steps``, ``batch``, ``lr``, ``hidden``, ...).
    """
    seeds, level = check_replicates(seeds, level)
    D = sample_dimension(sample)
    disjoint_regions(D, A=A, C=C)
    masks = context_mask(D, C)[None, None].repeat(seeds, 1, 1)
    res = train_critic_bank(vector_sampler(sample, seeds), masks, A, bound=bound, **train_kw)
    return Estimate.from_seeds(res.values, bound, level)


def estimate_cmi(sample: Callable[[int, np.random.Generator], np.ndarray], A: Sequence[int], B: Sequence[int],
                 C: Sequence[int], *, bound: str = "smile", seeds: int = 3, level: float = 0.95, **train_kw) -> Estimate:
    """``I(A:C|B) = I(A:BC) - I(A:B)`` from samples, both terms with the same critic family and budget.

    Per seed, two critics share one data stream: context mask ``B u C`` and context mask ``B``; the CMI of that seed
    is the difference of their held-out values, and the interval is across seeds. ``B`` may be empty (then
    ``I(A:B) = 0`` exactly and only one critic per seed is trained). ``parts`` holds the two terms.
    """
    seeds, level = check_replicates(seeds, level)
    D = sample_dimension(sample)
    disjoint_regions(D, A=A, B=B, C=C)
    m_bc, m_b = context_mask(D, list(B) + list(C)), context_mask(D, B)
    masks = torch.stack([m_bc, m_b] if len(B) else [m_bc])[None].repeat(seeds, 1, 1)
    res = train_critic_bank(vector_sampler(sample, seeds), masks, A, bound=bound, **train_kw)
    v = res.values.reshape(seeds, -1)
    i_bc = v[:, 0]
    i_b = v[:, 1] if len(B) else np.zeros(seeds)
    parts = {"I(A:BC)": Estimate.from_seeds(i_bc, bound, level), "I(A:B)": Estimate.from_seeds(i_b, bound, level) if len(B) else None}
    return Estimate.from_seeds(i_bc - i_b, bound, level, parts)
