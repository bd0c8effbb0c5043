"""Conditional densities of one pixel given a masked **image**: the estimator of the CMI map (chapter "The CMI barrier").

``I(A:C|B) = H(A|B) - H(A|BC)`` with each conditional entropy estimated by a held-out cross-entropy
``-E log q(x_A | context)`` (the idea of :mod:`localdiff_lib.density`). What this module adds is a model ``q`` that
can fit images. A model ``k`` sees its context as two channels on the square crop, the masked image ``x * m_k`` and
the mask ``m_k`` (0 is a real pixel value, so a hidden pixel is flagged, not zeroed), through two paths:

* a **convolutional path**: three stride-2 convolutions (27 -> 14 -> 7 -> 4 pixels) and a linear map, which sees
  the whole context (the shape of the digit, its class, strokes far from ``A``);
* a **local path**: the raw masked pixels of the ``(2p + 1)^2`` patch around ``A`` (``patch`` ``= p``, ``A`` itself
  always hidden), one linear map, so that the nearest neighbours, which carry most of the information, reach the
  head exactly and need not be found among 728 inputs.

The two are added, passed through a hidden layer, and give the weights, means and widths of a mixture of Gaussians
on ``x_A`` (the head of :class:`localdiff_lib.density.DensityBank`, with bins at ``t = 0``). Every model of a
map, whatever its context, has this architecture and this budget; only the mask differs.

Many models train at once: the convolutions are grouped (``groups = K``), the linear layers batched matrix
products, Adam elementwise, so each model trains exactly as if alone. Training keeps an exponential moving average
of the weights, scores it on a validation split every ``val_every`` steps and keeps, **per model**, the best
average seen so far (early stopping); the learning rate is constant after a warm-up, so the state at step ``n`` is
what a run of ``n`` steps would give, and :func:`train_image_density_bank` can report the held-out values at
several budgets of one run (``report_at``), which is how the convergence of a map is shown. The held-out scores
are returned **per sample**, so that differences of two models on the same samples get paired standard errors.

:class:`ImageCriticBank` puts a MINE critic (the authors' estimator) on the same trunk, trained by the same loop
(``objective="mine"``): the ablation of chapter "The CMI barrier" that swaps the objective and keeps the rest.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .config import default_device
from .density import mixture_log_prob
from .estimators import bound_loss, bound_values

__all__ = ["ImageDensityBank", "ImageCriticBank", "ImageBankResult", "OBJECTIVES", "train_image_density_bank"]

#: how a bank is trained: ``"likelihood"`` (the course's density models) or ``"mine"`` (the authors' critics)
OBJECTIVES = ("likelihood", "mine")


class ImageDensityBank(nn.Module):
    """``K = G * c`` mixture-density models ``q_k(a | [x * m_k, m_k])`` of the pixel ``a_idx`` of a ``side x side`` image.

    ``masks`` ``(G, c, side * side)``: group ``g``'s ``c`` models read the same batch ``x[g]``; model ``(g, j)`` sees
    the pixels where ``masks[g, j] = 1`` (never ``A``). ``bin_width`` ``(G,)`` as in
    :class:`~localdiff_lib.density.DensityBank` (``> 0``: the pixel is discrete at that step, e.g. at ``t = 0``).
    ``width`` is the channel count of the first convolution (the others use twice that), ``hidden`` the width of the
    head, ``patch`` the radius ``p`` of the local path.
    """

    def __init__(self, masks: torch.Tensor, side: int, a_idx: int, *, width: int = 8, hidden: int = 64,
                 patch: int = 4, components: int = 8, bin_width=None, generator: torch.Generator | None = None):
        super().__init__()
        masks = torch.as_tensor(masks, dtype=torch.float32)
        if masks.ndim != 3 or masks.shape[2] != side * side:
            raise ValueError(f"masks must have shape (G, c, {side * side}) for side {side}, got {tuple(masks.shape)}")
        G, c, _ = masks.shape
        K = G * c
        ai, aj = divmod(int(a_idx), side)
        if not (patch <= ai < side - patch and patch <= aj < side - patch):
            raise ValueError(f"the local patch of radius {patch} around A = ({ai}, {aj}) does not fit in {side}x{side}")
        if bool((masks[..., a_idx] != 0).any()):
            raise ValueError("a context mask includes A: the context must exclude the pixel being modelled")
        if components < 1 or width < 1 or hidden < 1:
            raise ValueError(f"components, width and hidden must be >= 1, got {components}, {width}, {hidden}")
        self.shape, self.side, self.a_idx, self.components = (G, c, side * side), side, int(a_idx), components
        m = masks.reshape(K, side, side)
        self.register_buffer("masks", m)
        rows = torch.arange(ai - patch, ai + patch + 1)
        cols = torch.arange(aj - patch, aj + patch + 1)
        self.register_buffer("patch_idx", (rows[:, None] * side + cols[None, :]).reshape(-1))
        patch_mask = masks.reshape(K, -1)[:, self.patch_idx]  # (K, P) A's own entry is 0
        self.register_buffer("patch_mask", patch_mask[:, :, None])
        w = torch.zeros(G) if bin_width is None else torch.as_tensor(bin_width, dtype=torch.float32).reshape(-1)
        if w.numel() != G or bool((w < 0).any()):
            raise ValueError(f"bin_width must hold {G} non-negative numbers (one per group), got {tuple(w.shape)}")
        self.register_buffer("bin_width", w.repeat_interleave(c)[:, None, None])  # (K, 1, 1)
        self.register_buffer("centres", torch.linspace(0.0, 1.0, components))
        # the convolutional path only for models that see pixels outside the local patch ("small contexts need
        # small models": q(a) and q(a | B_r) with r <= patch are exactly the local path's job)
        outside = masks.reshape(K, -1).clone()
        outside[:, self.patch_idx] = 0.0
        self.register_buffer("conv_models", torch.nonzero(outside.sum(1) > 0).reshape(-1))
        Kc = self.conv_models.numel()
        g = generator
        c1, c2 = width, 2 * width
        self.conv = nn.ModuleList([
            nn.Conv2d(2 * Kc, c1 * Kc, 3, stride=2, padding=1, groups=Kc),
            nn.Conv2d(c1 * Kc, c2 * Kc, 3, stride=2, padding=1, groups=Kc),
            nn.Conv2d(c2 * Kc, c2 * Kc, 3, stride=2, padding=1, groups=Kc),
        ] if Kc else [])
        with torch.no_grad():
            for conv in self.conv:
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / math.sqrt(fan_in))
                conv.bias.zero_()
        s3 = self._out_side(side)
        n_conv = c2 * s3 * s3
        P = self.patch_idx.numel()

        def param(shape, fan_in, scale=1.0):
            return nn.Parameter(scale * torch.randn(*shape, generator=g) / math.sqrt(fan_in))

        self.Wc = param((Kc, n_conv, hidden), n_conv)
        self.Wp = param((K, P, hidden), patch_mask.sum(1).clamp(min=1.0).max().item())
        self.b1 = nn.Parameter(torch.zeros(K, 1, hidden))
        self.W2 = param((K, hidden, hidden), hidden)
        self.b2 = nn.Parameter(torch.zeros(K, 1, hidden))
        self.W3 = param((K, hidden, 3 * components), hidden, 0.1)
        self.b3 = nn.Parameter(torch.zeros(K, 1, 3 * components))

    @staticmethod
    def _out_side(side: int) -> int:
        for _ in range(3):
            side = (side - 1) // 2 + 1
        return side

    @property
    def n_models(self) -> int:
        return self.shape[0] * self.shape[1]

    def model_views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every parameter viewed with its model axis first, with the models its rows belong to: ``(view, models)``
        (the convolutional path's rows are the models in ``conv_models``), for per-model copies."""
        out = []
        for name, p in self.named_parameters():
            conv = name.startswith("conv") or name == "Wc"
            models = self.conv_models if conv else torch.arange(self.n_models, device=p.device)
            out.append((p.view(models.numel(), -1), models))
        return out

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(G, N, side * side)`` -> ``log q_k(a_i | context_i)`` ``(G * c, N)``."""
        h, xk = self.context_features(x)
        out = torch.baddbmm(self.b3, h, self.W3)
        a = xk[:, :, self.a_idx, None]  # (K, N, 1)
        return mixture_log_prob(out, a, self.centres, self.bin_width)

    def context_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two paths and the hidden layers: ``x`` ``(G, N, side * side)`` -> features ``(K, N, hidden)`` of each
        model's context, and ``x`` repeated per model ``(K, N, side * side)``."""
        G, c, D = self.shape
        if x.ndim != 3 or x.shape[0] != G or x.shape[2] != D:
            raise ValueError(f"expected a batch of shape ({G}, N, {D}), got {tuple(x.shape)}")
        N, K, S = x.shape[1], G * c, self.side
        act = nn.functional.silu
        xk = x.float().repeat_interleave(c, dim=0)  # (K, N, D): model k reads its group's batch
        local = xk[:, :, self.patch_idx]  # (K, N, P)
        h = torch.bmm(local, self.patch_mask * self.Wp) + self.b1
        kc = self.conv_models
        if kc.numel():
            Kc, m = kc.numel(), self.masks[kc][:, None]  # (Kc, 1, S, S)
            img = xk[kc].reshape(Kc, N, S, S) * m
            f = torch.stack([img, m.expand(Kc, N, S, S)], dim=2)  # (Kc, N, 2, S, S)
            f = f.permute(1, 0, 2, 3, 4).reshape(N, 2 * Kc, S, S)
            for conv in self.conv:
                f = act(conv(f))
            f = f.reshape(N, Kc, -1).transpose(0, 1)  # (Kc, N, n_conv): the channels of model k are contiguous
            h = h.index_add(0, kc, torch.bmm(f, self.Wc))
        h = act(h)
        return act(torch.baddbmm(self.b2, h, self.W2)), xk


class ImageCriticBank(ImageDensityBank):
    """``K`` MINE critics ``T_k(a, context)`` on the trunk of :class:`ImageDensityBank`: the authors' estimator (a
    Donsker–Varadhan bound, :mod:`localdiff_lib.estimators`) with the course's context model, for the ablation of
    chapter "The CMI barrier". Separable, ``T_k(a_i, c_j) = g_k(a_i) . f_k(c_j)``, like the course's vector critics:
    ``f_k`` is the density model's two paths and hidden layers, ``g_k`` a one-hidden-layer MLP of the pixel value.
    A model with an empty context has ``I = 0`` by definition: its scores are 0 (its bound is exactly 0).
    """

    def __init__(self, masks: torch.Tensor, side: int, a_idx: int, *, width: int = 8, hidden: int = 64,
                 patch: int = 4, generator: torch.Generator | None = None):
        super().__init__(masks, side, a_idx, width=width, hidden=hidden, patch=patch, components=1,
                         generator=generator)
        del self.W3, self.b3  # the mixture head: replaced by the critic's g
        K, g = self.n_models, generator
        self.register_buffer("has_context", (self.masks.reshape(K, -1).sum(1) > 0).float()[:, None, None])
        self.wa = nn.Parameter(torch.randn(K, 1, hidden, generator=g))
        self.ba = nn.Parameter(torch.randn(K, 1, hidden, generator=g))
        self.Wa = nn.Parameter(0.1 * torch.randn(K, hidden, hidden, generator=g) / math.sqrt(hidden))

    def log_prob(self, x):
        raise TypeError("an ImageCriticBank gives critic scores (scores), not log-densities")

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(G, N, side * side)`` -> ``scores[k, i, j] = T_k(a_i, c_j)``, ``(K, N, N)``; the diagonal holds the
        joint pairs."""
        f, xk = self.context_features(x)  # (K, N, H)
        a = xk[:, :, self.a_idx, None]  # (K, N, 1)
        g = torch.bmm(nn.functional.silu(a * self.wa + self.ba), self.Wa)  # (K, N, H)
        return torch.bmm(g, f.transpose(1, 2)) * self.has_context


@dataclass
class ImageBankResult:
    """Held-out scores of a trained bank (log-likelihoods per sample, or MINE bounds per batch) at each budget."""

    steps: list[int]  # the budgets reported (training steps)
    # steps -> (K, n) held-out scores: log q_k of each evaluation sample ("likelihood"), or the bound value of each
    # evaluation batch ("mine", with 0 for an empty context); either way I(A:c_k) - I(A:c_l) = mean(row k - row l)
    log_q: dict[int, np.ndarray]
    val_curve: np.ndarray  # (n_val, 1 + K): step, then each model's validation loss (cross-entropy, or -bound)
    best_step: dict[int, np.ndarray]  # steps -> (K,) the step of the state kept by early stopping
    seconds: float


def train_image_density_bank(
    sampler: Callable[[str, int, torch.Generator], torch.Tensor],
    masks: torch.Tensor,
    side: int,
    a_idx: int,
    *,
    bin_width=None,
    steps: int = 2000,
    batch: int = 128,
    lr: float = 2e-3,
    width: int = 8,
    hidden: int = 64,
    patch: int = 4,
    components: int = 8,
    ema: float = 0.99,
    val_every: int = 100,
    val_samples: int = 1024,
    eval_samples: int = 4096,
    report_at: Sequence[int] | None = None,
    early_stopping: bool = True,
    objective: str = "likelihood",
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = None,
) -> ImageBankResult:
    """Train an :class:`ImageDensityBank` by maximum likelihood with per-model early stopping; score held-out samples.

    ``sampler(split, n, generator)`` -> ``(G, n, side * side)`` for ``split`` in ``"train"`` (fresh images and noise
    every call), ``"val"`` (a validation split of the training images) and ``"eval"`` (held-out images). The
    validation and evaluation samples are drawn once, from generators seeded by ``seed``, so every model of a group
    is scored on the same samples. ``report_at`` (default ``[steps]``) are the budgets at which the kept states are
    scored on the evaluation samples. Adam, learning rate ``lr`` after a 100-step linear warm-up, no decay.
    ``early_stopping=False`` scores the weight average at each reported budget instead of the best validated state
    (the authors train for a fixed number of steps: an ablation of chapter "The CMI barrier").
    ``objective="mine"`` trains :class:`ImageCriticBank` critics instead, with MINE's bias-corrected gradient of the
    Donsker–Varadhan bound (the authors' estimator; ``components`` and ``bin_width`` are then unused): the validation
    loss is minus the bound, and the held-out scores are the bound's value per evaluation batch.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if steps < 1 or batch < 2 or val_every < 1:
        raise ValueError(f"need steps >= 1, batch >= 2 and val_every >= 1, got {steps}, {batch}, {val_every}")
    report_at = sorted({int(s) for s in (report_at or [steps])})
    if report_at[0] < 1 or report_at[-1] != steps:
        raise ValueError(f"report_at must lie in [1, steps] and include steps={steps}, got {report_at}")
    dev = torch.device(device) if device is not None else default_device()
    init = torch.Generator().manual_seed(seed)
    if objective == "mine":
        bank = ImageCriticBank(masks, side, a_idx, width=width, hidden=hidden, patch=patch, generator=init).to(dev)
    else:
        bank = ImageDensityBank(masks, side, a_idx, width=width, hidden=hidden, patch=patch, components=components,
                                bin_width=bin_width, generator=init).to(dev)
    K = bank.n_models
    opt = torch.optim.Adam(bank.parameters(), lr=lr)
    avg = copy.deepcopy(bank).requires_grad_(False)  # the exponential moving average of the weights
    best = [v.detach().clone() for v, _ in avg.model_views()]
    best_val = torch.full((K,), float("inf"), device=dev)
    best_at = np.zeros(K, dtype=np.int64)
    gen = torch.Generator(device=dev).manual_seed(seed + 1)
    g_val = torch.Generator(device=dev).manual_seed(seed + 2)
    x_val = [sampler("val", batch, g_val) for _ in range(max(1, val_samples // batch))]
    g_eval = torch.Generator(device=dev).manual_seed(10_000 + seed)
    x_eval = [sampler("eval", batch, g_eval) for _ in range(max(1, eval_samples // batch))]
    curve, log_q, kept = [], {}, {}
    t0 = time.perf_counter()

    log_ema = None  # MINE's moving average of E_q[e^T], per critic

    def score(model, xs):
        with torch.no_grad():
            if objective == "mine":
                return torch.stack([bound_values(model.scores(x), "mine") for x in xs], dim=1)  # (K, batches)
            return torch.cat([model.log_prob(x) for x in xs], dim=1)  # (K, n)

    for step in range(1, steps + 1):
        # --- one step on fresh images and noise: maximum likelihood, or MINE's ascent of the DV bound
        for grp in opt.param_groups:
            grp["lr"] = lr * min(1.0, step / 100)
        x = sampler("train", batch, gen)
        if objective == "mine":
            loss, _, log_ema = bound_loss(bank.scores(x), "mine", log_ema)
        else:
            loss = -bank.log_prob(x).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # --- the weight average
        with torch.no_grad():
            decay = min(ema, (1 + step) / (10 + step))
            for pa, pb in zip(avg.parameters(), bank.parameters()):
                pa.lerp_(pb, 1 - decay)
        # --- early stopping, per model, on the validation split
        if step % val_every == 0 or step in report_at:
            val = -score(avg, x_val).mean(1)
            better = val < best_val
            best_val = torch.where(better, val, best_val)
            best_at[better.cpu().numpy()] = step
            for b, (v, models) in zip(best, avg.model_views()):
                rows = better[models]
                b[rows] = v[rows]
            curve.append([step, *val.cpu().tolist()])
            if log is not None:
                log(f"step {step}: validation loss {val.mean().item():.4f} (mean of {K} models), "
                    f"{time.perf_counter() - t0:.0f} s")
        # --- held-out scores of the kept states at the reported budgets
        if step in report_at:
            probe = copy.deepcopy(avg)
            if early_stopping:
                for (v, _), b in zip(probe.model_views(), best):
                    v.copy_(b)
            log_q[step] = score(probe, x_eval).double().cpu().numpy()
            kept[step] = best_at.copy() if early_stopping else np.full(K, step, dtype=np.int64)
    return ImageBankResult(report_at, log_q, np.array(curve), kept, time.perf_counter() - t0)
