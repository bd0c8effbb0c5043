"""Sampling: Euler and Heun solvers of the probability-flow ODE, with hybrid local/global schedules.

The probability-flow ODE of the path ``X_t = (1 - t) X_0 + t Z`` is ``dx/dt = v(x, t) = E[Z - X_0 | X_t = x]``.
Whatever a model predicts, its velocity comes from :func:`localdiff_lib.path.to_velocity`: for a noise
predictor ``v = z_hat - (x - t z_hat) / (1 - t)``. The authors' local sampler steps ``x <- x - dt * z_hat``
instead, dropping the clean-image term; even a perfect model then shrinks the image towards
``(1 - T) x0`` (chapter "Local versus global denoisers").

Integration runs from ``t_start`` down to ``t_end`` on a uniform grid of ``steps`` steps. A
:class:`HybridSchedule` says which model integrates which part of ``[0, 1]``: the step from ``t_k`` to
``t_{k+1}`` uses the model whose window contains the step's midpoint (both Heun evaluations of a step use
the same model). Global-only, local-only and the paper's local/global/local split are special cases.

``t = 1`` and noise predictors: at ``t = 1`` the input is pure noise, so ``E[Z | X_1 = x] = x`` and
``E[X_0 | X_1 = x] = E[X_0]``: a noise predictor carries no information about the clean image there, and
its velocity ``(z_hat - x) / (1 - t)`` is ``0 / 0``. We use the exact identity instead: an evaluation of a
noise predictor at ``t = 1`` returns ``v = x - E[X_0]``, with ``E[X_0]`` the data mean passed as
``data_mean`` (no model call, no multiply-adds). Without ``data_mean`` it is an error that says so.
Velocity and clean-image predictors are evaluated at ``t = 1`` directly. Symmetrically, a clean-image
(or score) predictor has no velocity at ``t = 0``; Heun's last step into ``t = 0`` is then an Euler step.

Every solve reports the number of function evaluations (NFE, model calls per image) and the multiply-adds
spent (:func:`localdiff_lib.models.count_macs` per image times images times calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from . import path
from .checks import InputError, integer, number, time_window, unit_time
from .config import autocast
from .models import check_output, count_macs, label, skip_value_checks

#: ``"authors"`` is not a solver of the ODE: it is the authors' local sampler, ``x <- x - dt * z_hat`` (one evaluation per
#: step), kept to measure what it does (chapter "Local versus global denoisers", ``../shared/paper-notes.md`` §4)
SOLVERS = ("euler", "heun", "authors")


def _check_model(model, what: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module) or not hasattr(model, "prediction"):
        raise ValueError(f"{what} must be a denoiser module with a `prediction` attribute; got {type(model).__name__}")
    path.check_kind(model.prediction)
    return model


class HybridSchedule:
    """Which model integrates which part of ``[0, 1]``.

    ``HybridSchedule(default, windows=[(lo, hi, model), ...])``: a step whose midpoint lies in ``[lo, hi)``
    (``[lo, 1]`` when ``hi = 1``) uses that window's model (the first window that matches), any other step
    uses ``default``. An empty window (``lo == hi``) is never used, so it equals ``default`` everywhere;
    a window ``(0, 1, m)`` equals ``m`` everywhere.
    """

    def __init__(self, default: nn.Module, windows=()):
        self.default = _check_model(default, "default")
        self.windows = []
        try:
            windows = list(windows)
        except TypeError:
            raise InputError(f"windows must be a list of triples (t_lo, t_hi, model); got {windows!r}") from None
        for w in windows:
            try:
                lo, hi, model = w
            except (TypeError, ValueError):
                raise ValueError(f"a window is a triple (t_lo, t_hi, model); got {w!r}") from None
            lo, hi = time_window((lo, hi), "a window")
            self.windows.append((lo, hi, _check_model(model, "window model")))

    @classmethod
    def global_only(cls, global_model: nn.Module) -> "HybridSchedule":
        return cls(global_model)

    @classmethod
    def local_only(cls, local_model: nn.Module) -> "HybridSchedule":
        return cls(local_model)

    @classmethod
    def paper_split(cls, local_model: nn.Module, global_model: nn.Module, window=(0.2, 0.5)) -> "HybridSchedule":
        """The paper's hybrid: the global model on ``window`` (default ``[0.2, 0.5]``), the local model elsewhere."""
        lo, hi = time_window(window, "window")
        return cls(local_model, [(lo, hi, global_model)])

    @property
    def models(self) -> list[nn.Module]:
        """The distinct models of the schedule, default first."""
        out = [self.default]
        for _, _, m in self.windows:
            if all(m is not o for o in out):
                out.append(m)
        return out

    def model_at(self, t: float) -> nn.Module:
        """The model used for a step whose midpoint is ``t``."""
        t = unit_time(t)
        for lo, hi, m in self.windows:
            if lo <= t < hi or (hi == 1.0 and lo <= t <= 1.0 and lo < hi):
                return m
        return self.default

    def __repr__(self) -> str:
        parts = [f"[{lo:g}, {hi:g}): {label(m)}" for lo, hi, m in self.windows]
        return f"HybridSchedule(default={label(self.default)}{', ' if parts else ''}{', '.join(parts)})"


def as_schedule(model_or_schedule) -> HybridSchedule:
    if isinstance(model_or_schedule, HybridSchedule):
        return model_or_schedule
    return HybridSchedule(_check_model(model_or_schedule))


@dataclass
class SolveRecord:
    """What a solve cost: ``nfe`` model calls per image, ``macs`` multiply-adds in total, per model name."""

    nfe: int = 0
    macs: int = 0
    images: int = 0
    steps: int = 0
    solver: str = "euler"
    nfe_by_model: dict = field(default_factory=dict)

    @property
    def macs_per_image(self) -> float:
        return self.macs / max(self.images, 1)

    def __repr__(self) -> str:
        return (f"SolveRecord({self.solver}, {self.steps} steps, NFE={self.nfe} per image {self.nfe_by_model}, "
                f"{self.macs_per_image / 1e6:.1f} M multiply-adds per image)")


def _macs_of(model: nn.Module, h: int, w: int) -> int:
    cache = model.__dict__.setdefault("_localdiff_macs", {})
    if (h, w) not in cache:
        if h != w:
            raise ValueError("multiply-add counting assumes square images")
        cache[(h, w)] = count_macs(model, image_size=h)
    return cache[(h, w)]


def velocity(model: nn.Module, x: torch.Tensor, t: float, data_mean: torch.Tensor | None = None, amp: bool | None = None):
    """The probability-flow velocity of ``model`` at ``(x, t)`` (a Python float ``t``), through the path module.

    Returns ``(v, called)``; ``called`` is ``False`` when no model call was needed (a noise or score
    predictor at ``t = 1``, where ``v = x - E[X_0]`` exactly; ``data_mean`` gives ``E[X_0]``).
    """
    kind = model.prediction
    if t >= 1.0 and kind in ("noise", "score"):
        if data_mean is None:
            raise ValueError(
                f"a {kind} predictor cannot give the velocity at t = 1 (it is 0/0 there); pass data_mean=E[X_0] "
                "(e.g. training_images.mean(0)) to use the exact identity E[X_0 | X_1] = E[X_0], or start at t < 1"
            )
        x0 = data_mean.to(x.device, x.dtype).expand_as(x)
        return path.to_velocity(x0, "x0", x, t), False
    tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
    with autocast(x.device, amp):
        pred = check_output(model(x, tt), x, model)
    return path.to_velocity(pred.to(x.dtype), kind, x, tt), True


def _check_data_mean(data_mean, x: torch.Tensor) -> None:
    """``data_mean`` (``E[X_0]``) is ``None`` or a tensor that broadcasts to one image of ``x`` (``(1, H, W)``)."""
    if data_mean is None:
        return
    ok = torch.is_tensor(data_mean)
    if ok:
        try:
            ok = torch.broadcast_shapes(data_mean.shape, x.shape[1:]) == x.shape[1:]
        except RuntimeError:
            ok = False
    if not ok:
        got = tuple(data_mean.shape) if torch.is_tensor(data_mean) else type(data_mean).__name__
        raise InputError(f"data_mean must be a tensor of the shape of one image {tuple(x.shape[1:])} (E[X_0], e.g. "
                         f"training_images.mean(0)); got {got}")


@torch.no_grad()
def ode_solve(
    model_or_schedule,
    x_start: torch.Tensor,
    t_start: float,
    t_end: float = 0.0,
    steps: int = 32,
    solver: str = "euler",
    *,
    data_mean: torch.Tensor | None = None,
    amp: bool | None = None,
    return_trajectory: bool = False,
):
    """Integrate ``dx/dt = v(x, t)`` from ``t_start`` down to ``t_end`` in ``steps`` uniform steps.

    ``model_or_schedule``: a denoiser (any ``prediction`` kind) or a :class:`HybridSchedule`. ``x_start``:
    ``(N, 1, H, W)`` images at time ``t_start`` (on the models' device). ``solver``: ``"euler"`` (one
    evaluation per step), ``"heun"`` (two), or ``"authors"``: the authors' local sampler, which steps
    ``x <- x - |dt| z_hat`` with the model's noise estimate ``z_hat`` and so drops the clean-image term of the
    velocity ``v = z_hat - x0_hat``, which biases even a perfect model (exact noise predictions of Gaussian pixels come
    back with a shrunk mean and spread: ``tests/lib/test_sampling.py``). Returns ``(x, record)``, or
    ``(x, record, trajectory)`` with
    the list of states at every grid time when ``return_trajectory``. ``amp``: bf16 autocast (default: on GPUs with native bf16 only, see :func:`localdiff_lib.config.autocast`).
    """
    schedule = as_schedule(model_or_schedule)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}")
    if not torch.is_tensor(x_start) or x_start.ndim != 4 or x_start.shape[1] != 1 or not torch.is_floating_point(x_start):
        what = tuple(x_start.shape) if torch.is_tensor(x_start) else type(x_start).__name__
        raise ValueError(f"x_start must be a float tensor of shape (N, 1, H, W); got {what}")
    t_start, t_end = number(t_start, "t_start"), number(t_end, "t_end")
    if not (0.0 <= t_end <= t_start <= 1.0):
        raise InputError(f"need 0 <= t_end <= t_start <= 1 (integration runs from noise towards data); got t_start={t_start}, t_end={t_end}")
    steps = integer(steps, "steps", minimum=0)
    if steps == 0 and t_start > t_end:
        raise InputError(f"steps must be a positive integer; got {steps!r}")
    _check_data_mean(data_mean, x_start)
    n, _, h, w = x_start.shape
    record = SolveRecord(images=n, steps=steps, solver=solver)
    grid = [t_start + (t_end - t_start) * k / steps for k in range(steps + 1)] if steps else [t_start]
    x = x_start.clone()
    traj = [x.clone()] if return_trajectory else None
    calls: dict[int, int] = {}
    by_id: dict[int, nn.Module] = {}

    def f(model, xx, tt):
        v, called = velocity(model, xx, tt, data_mean, amp)
        if called:
            calls[id(model)] = calls.get(id(model), 0) + 1
            by_id[id(model)] = model
        return v

    with skip_value_checks():
        for k in range(steps):
            t0, t1 = grid[k], grid[k + 1]
            model = schedule.model_at(0.5 * (t0 + t1))
            dt = t1 - t0  # negative
            v0 = f(model, x, t0)
            if solver == "authors":  # x <- x - |dt| z_hat, z_hat = x + (1 - t) v on this path
                x = x + dt * path.convert(v0, "velocity", "noise", x, t0)
            elif solver == "euler" or (t1 == 0.0 and model.prediction in ("x0", "score")):
                # Euler; also Heun's last step into t = 0 for x0/score predictors, whose velocity is 0/0 there
                x = x + dt * v0
            else:
                x_pred = x + dt * v0
                v1 = f(model, x_pred, t1)
                x = x + 0.5 * dt * (v0 + v1)
            if traj is not None:
                traj.append(x.clone())
    if not bool(torch.isfinite(x).all()):
        names = ", ".join(label(m) for m in schedule.models)
        raise InputError(f"integrating from t = {t_start:g} to {t_end:g} with {names} gave NaN or inf values: a model "
                         "returned non-finite predictions, or its velocity is undefined on this interval")
    for key, count in calls.items():
        model = by_id[key]
        name = label(model)
        record.nfe_by_model[name] = record.nfe_by_model.get(name, 0) + count
        record.nfe += count
        record.macs += count * n * _macs_of(model, h, w)
    return (x, record, traj) if return_trajectory else (x, record)


def sample(
    model_or_schedule,
    n: int = 16,
    steps: int = 32,
    solver: str = "euler",
    *,
    seed: int = 0,
    image_size: int = 28,
    device: str | torch.device | None = None,
    data_mean: torch.Tensor | None = None,
    batch_size: int | None = None,
    amp: bool | None = None,
):
    """Generate ``n`` images from pure noise at ``t = 1`` (seeded, drawn on the CPU so every device starts from
    the same noise) by integrating to ``t = 0``. Returns ``(images, record)``; ``batch_size`` bounds memory."""
    schedule = as_schedule(model_or_schedule)
    if device is None:
        device = next(schedule.default.parameters()).device
    n = integer(n, "n")
    image_size = integer(image_size, "image_size")
    batch_size = n if batch_size is None else integer(batch_size, "batch_size")
    gen = torch.Generator().manual_seed(integer(seed, "seed", minimum=None))
    z = torch.randn(n, 1, image_size, image_size, generator=gen).to(device)
    outs, total = [], SolveRecord(steps=steps, solver=solver)
    for start in range(0, n, batch_size):
        x, rec = ode_solve(schedule, z[start:start + batch_size], 1.0, 0.0, steps, solver, data_mean=data_mean, amp=amp)
        outs.append(x)
        total.images += rec.images
        total.macs += rec.macs
        total.nfe = rec.nfe
        total.nfe_by_model = rec.nfe_by_model
    return torch.cat(outs), total


def equal_compute_steps(macs_per_image: float, model: nn.Module, solver: str = "euler", image_size: int = 28) -> int:
    """The most steps of ``model`` alone with ``solver`` (Heun: two evaluations per step) whose multiply-adds per
    image do not exceed ``macs_per_image``, e.g. the :attr:`SolveRecord.macs_per_image` of a hybrid schedule: the
    single-model baseline at equal compute (chapter "Hybrid sampling")."""
    model = _check_model(model)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}")
    budget = number(macs_per_image, "macs_per_image", above=0.0)
    image_size = integer(image_size, "image_size")
    per_step = (2 if solver == "heun" else 1) * _macs_of(model, image_size, image_size)
    steps = int(budget // per_step)
    if steps < 1:
        raise InputError(f"{macs_per_image:.4g} multiply-adds per image do not pay for one {solver} step of "
                         f"{label(model)} ({per_step:.4g}); compare at a larger budget")
    return steps


def steps_for(t_start: float, steps_per_unit_time: int, t_end: float = 0.0) -> int:
    """The number of steps that keeps the step size at most ``1 / steps_per_unit_time`` over ``[t_end, t_start]``."""
    t_start, t_end = unit_time(t_start, "t_start"), unit_time(t_end, "t_end")
    steps_per_unit_time = integer(steps_per_unit_time, "steps_per_unit_time")
    if t_end > t_start:
        raise InputError(f"need t_end <= t_start (integration runs from noise towards data); got t_start={t_start}, "
                         f"t_end={t_end}")
    return max(1, math.ceil(round((t_start - t_end) * steps_per_unit_time, 9))) if t_start > t_end else 0
