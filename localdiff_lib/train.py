"""Training denoisers: one :func:`fit` for the global U-Net, any local model, or several models at once.

Each step draws a batch of clean images ``x0``, times ``t`` (logit-normal, ``t = sigmoid(N(0, 1))`` as in
the paper, or uniform) and noise ``z``, forms ``x_t = (1 - t) x0 + t z`` and regresses the model's output
on :func:`localdiff_lib.path.target` of the model's ``prediction`` kind (velocity ``z - x0`` or noise
``z``) with the mean squared error. AdamW, optional EMA of the weights, gradient clipping per model.

Speed (chapter "Training denoisers fast"): the images live on the training device and batches are drawn
by indexing on it (no DataLoader, no worker processes); per-step losses stay on the device and are copied
to the host once at the end; on a GPU the forward pass runs under bf16 autocast, AdamW is the fused
kernel, and ``compile=True`` wraps the models in ``torch.compile``. Passing a list of models trains them
on the same batches with one optimizer, which is how all twelve radii of the paper's local denoisers are
trained together. Checkpoints use ``torch.load(weights_only=True)`` and refuse a mismatched model.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import path
from .config import autocast
from .models import check_prediction, skip_value_checks

T_SAMPLERS = ("logit-normal", "uniform")
CHECKPOINT_FORMAT = "localdiff-checkpoint-1"


@dataclass
class History:
    """What :func:`fit` did. ``losses`` has one row per step (one column per model when several were trained)."""

    losses: np.ndarray
    steps: int
    seconds: float
    batch_size: int
    device: str
    held_out: list = field(default_factory=list)  # held-out loss per model (None without held-out images)
    start_step: int = 0

    @property
    def images_per_second(self) -> float:
        return (self.steps - self.start_step) * self.batch_size / max(self.seconds, 1e-9)

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.seconds / max(self.steps - self.start_step, 1)

    def smoothed(self, window: int = 50) -> np.ndarray:
        """Running mean of the per-step losses over ``window`` steps (for plots)."""
        losses = self.losses if self.losses.ndim == 2 else self.losses[:, None]
        window = max(1, min(window, len(losses)))
        kernel = np.ones(window) / window
        out = np.stack([np.convolve(col, kernel, mode="valid") for col in losses.T], axis=1)
        return out if self.losses.ndim == 2 else out[:, 0]

    def __repr__(self) -> str:
        held = ", ".join("-" if h is None else f"{h:.4f}" for h in self.held_out)
        final = self.smoothed(min(100, max(1, len(self.losses)))) if len(self.losses) else np.array([np.nan])
        return (
            f"History(steps={self.steps}, {self.seconds:.1f} s on {self.device}, {self.images_per_second:.0f} images/s, "
            f"final train loss {np.array2string(np.atleast_1d(final[-1]), precision=4)}, held-out loss [{held}])"
        )


def sample_t(n: int, sampler: str, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Times for a batch: ``"logit-normal"`` (``sigmoid(N(0, 1))``, the paper's choice) or ``"uniform"`` on ``[0, 1]``."""
    if sampler == "logit-normal":
        return torch.sigmoid(torch.randn(n, generator=generator, device=device))
    if sampler == "uniform":
        return torch.rand(n, generator=generator, device=device)
    raise ValueError(f"t_sampler must be one of {', '.join(T_SAMPLERS)}; got {sampler!r}")


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 1 or not torch.is_floating_point(images):
        what = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{name} must be a float tensor (N, 1, H, W) with pixels in [0, 1]; got {what}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1 or math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{name} must have pixels in [0, 1] (clean data, not noised); got values in [{lo:.3g}, {hi:.3g}]")


def _as_list(model_or_models) -> tuple[list[nn.Module], bool]:
    if isinstance(model_or_models, nn.Module):
        return [model_or_models], False
    models = list(model_or_models)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise ValueError("fit needs a model or a non-empty list of models")
    return models, True


def _prediction(model: nn.Module) -> str:
    kind = getattr(model, "prediction", None)
    if kind is None:
        raise ValueError(f"{type(model).__name__} has no `prediction` attribute; set it to 'velocity', 'noise' or 'x0'")
    return check_prediction(kind)


def _amp(device: torch.device, amp: bool | None):
    return autocast(device, amp)


@torch.no_grad()
def held_out_loss(
    model: nn.Module,
    images: torch.Tensor,
    *,
    seed: int = 1234,
    t_sampler: str = "logit-normal",
    batch_size: int = 1024,
    amp: bool | None = None,
) -> float:
    """The training loss on held-out ``images`` with a fixed, seeded draw of ``t`` and noise (CPU generator),
    so that the number is comparable across runs, models and devices."""
    kind = _prediction(model)
    _check_images(images, "held-out images")
    p = next(model.parameters())
    device = p.device
    gen = torch.Generator().manual_seed(seed)
    t_all = sample_t(images.shape[0], t_sampler, gen)  # drawn once, on the CPU: independent of batch_size and device
    z_all = torch.randn(images.shape, generator=gen)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with skip_value_checks():
            for start in range(0, images.shape[0], batch_size):
                x0 = images[start:start + batch_size].to(device, torch.float32)
                n = x0.shape[0]
                t = t_all[start:start + n].to(device)
                z = z_all[start:start + n].to(device)
                with _amp(device, amp):
                    pred = model(path.interpolate(x0, z, t), t)
                err = (pred.float() - path.target(kind, x0, z, t)).pow(2).mean(dim=(1, 2, 3)).sum()
                total += float(err)
                count += n
    finally:
        model.train(was_training)
    return total / count


def save_checkpoint(
    path_, model, optimizer=None, step: int = 0, config: dict | None = None, *, ema=None, losses=None, rng=None
) -> None:
    """Save a model (or a list of models), its optimizer, the step, a ``config`` dict and optional EMA weights.

    Everything is stored as tensors, numbers, strings, lists and dicts, so :func:`load_checkpoint` can use
    ``torch.load(weights_only=True)``. The file is written atomically.
    """
    models, _ = _as_list(model)
    emas = None if ema is None else _as_list(ema)[0]
    blob = {
        "format": CHECKPOINT_FORMAT,
        "classes": [type(m).__name__ for m in models],
        "model_configs": [getattr(m, "config", None) for m in models],
        "models": [m.state_dict() for m in models],
        "ema": None if emas is None else [e.state_dict() for e in emas],
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "step": int(step),
        "config": dict(config or {}),
        "losses": None if losses is None else torch.as_tensor(losses).cpu(),
        "rng": None if rng is None else rng.get_state().cpu(),
    }
    path_ = Path(path_)
    path_.parent.mkdir(parents=True, exist_ok=True)
    tmp = path_.with_name(path_.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path_)


def load_checkpoint(path_, model, optimizer=None, *, ema=None, map_location="cpu") -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model`` (or a list of models) and return the checkpoint.

    Raises ``ValueError`` naming the difference when the checkpoint does not match the model: another class,
    another constructor config, other parameter names or shapes, or another number of models.
    """
    path_ = Path(path_)
    if not path_.exists():
        raise FileNotFoundError(f"no checkpoint at {path_}")
    try:
        blob = torch.load(path_, weights_only=True, map_location=map_location)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{path_} is not a readable checkpoint ({type(e).__name__}: {e}); delete it and train again") from e
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path_} was not written by localdiff_lib.train.save_checkpoint")
    models, _ = _as_list(model)
    where = f"checkpoint {path_}"
    if len(blob["models"]) != len(models):
        raise ValueError(f"{where} holds {len(blob['models'])} model(s), but {len(models)} were given")
    for k, (m, cls, cfg, state) in enumerate(zip(models, blob["classes"], blob["model_configs"], blob["models"])):
        if type(m).__name__ != cls:
            raise ValueError(f"{where} holds a {cls} (model {k}), not a {type(m).__name__}")
        mine = getattr(m, "config", None)
        if cfg is not None and mine is not None and cfg != mine:
            diff = {key: (cfg.get(key), mine.get(key)) for key in set(cfg) | set(mine) if cfg.get(key) != mine.get(key)}
            raise ValueError(f"{where}: model {k} was saved with another config; (saved, given) = {diff}")
        own = m.state_dict()
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(f"{where}: parameter names differ for model {k}: missing {missing[:5]}, unexpected {extra[:5]}")
        bad = [(n, tuple(state[n].shape), tuple(own[n].shape)) for n in own if state[n].shape != own[n].shape]
        if bad:
            raise ValueError(f"{where}: shapes differ for model {k} (name, saved, given): {bad[:5]}")
    for m, state in zip(models, blob["models"]):
        m.load_state_dict(state)
    if optimizer is not None:
        if blob["optimizer"] is None:
            raise ValueError(f"{where} has no optimizer state to resume from")
        optimizer.load_state_dict(blob["optimizer"])
    if ema is not None:
        emas, _ = _as_list(ema)
        if blob["ema"] is None:
            raise ValueError(f"{where} has no EMA weights, but an EMA model was given")
        for e, state in zip(emas, blob["ema"]):
            e.load_state_dict(state)
    return blob


def fit(
    model,
    images: torch.Tensor,
    *,
    steps: int | None = None,
    seconds: float | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    warmup: int = 0,
    ema: float | None = None,
    grad_clip: float | None = 1.0,
    t_sampler: str = "logit-normal",
    held_out: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    compile: bool = False,
    channels_last: bool = True,
    progress: bool = True,
) -> History:
    """Train ``model`` (or a list of models, on the same batches) to denoise ``images``; return a :class:`History`.

    ``images``: clean float ``(N, 1, H, W)`` in ``[0, 1]`` (moved to ``device`` once). The budget is ``steps``
    (the total step count, counting the steps of a resumed checkpoint) and/or ``seconds`` (of this call);
    training stops at whichever comes first. ``warmup``: linear learning-rate warm-up steps. ``ema``: the
    decay of an exponential moving average of the weights (e.g. ``0.999``); when given, the models hold the
    EMA weights when ``fit`` returns (the raw weights stay in the checkpoint). ``checkpoint``: a file written
    at the end; with ``resume=True`` an existing file is loaded first (weights, optimizer, EMA, step, losses)
    and training continues. ``held_out``: images whose loss is evaluated at the end with a fixed noise draw.
    ``seed`` fixes batches, times and noise: the same call twice gives the same losses. ``device``: default
    the models' device. ``amp``: bf16 autocast (default: on GPUs with native bf16 only, see :func:`localdiff_lib.config.autocast`).
    """
    models, many = _as_list(model)
    kinds = [_prediction(m) for m in models]
    if steps is None and seconds is None:
        raise ValueError("give a budget: steps=... and/or seconds=...")
    if steps is not None and (not isinstance(steps, int) or steps < 0):
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}")
    if seconds is not None and not seconds > 0:
        raise ValueError(f"seconds must be positive; got {seconds!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if t_sampler not in T_SAMPLERS:
        raise ValueError(f"t_sampler must be one of {', '.join(T_SAMPLERS)}; got {t_sampler!r}")
    if ema is not None and not 0.0 < ema < 1.0:
        raise ValueError(f"ema is a decay in (0, 1), e.g. 0.999; got {ema!r}")
    _check_images(images)
    if held_out is not None:
        _check_images(held_out, "held_out")
    device = torch.device(device) if device is not None else next(models[0].parameters()).device
    for m in models:
        m.to(device).train()
        if channels_last:  # faster convolutions on CPUs (oneDNN) and GPUs (tensor cores); same state dict
            m.to(memory_format=torch.channels_last)
    images = images.to(device, torch.float32)
    n = images.shape[0]

    params = [p for m in models for p in m.parameters() if p.requires_grad]
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
    emas = [copy.deepcopy(m).requires_grad_(False) for m in models] if ema is not None else None
    start, old_losses = 0, None
    if resume and checkpoint is not None and Path(checkpoint).exists():
        blob = load_checkpoint(checkpoint, models, optimizer, ema=emas, map_location=device)
        start = blob["step"]
        old_losses = blob["losses"]
    if steps is not None and steps < start:
        raise ValueError(f"the checkpoint is already at step {start}, beyond steps={steps}")

    gen = torch.Generator(device=device).manual_seed(seed)
    if start and blob.get("rng") is not None:  # continue the same random stream: resuming == never stopping
        gen.set_state(blob["rng"].cpu())
    forward = [torch.compile(m) for m in models] if compile else models
    chunk = 1024 if steps is None else max(1, steps - start)
    buffers, buf = [], torch.zeros(chunk, len(models), device=device)
    pos = 0
    total = None if steps is None else steps - start
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"fit {', '.join(type(m).__name__ for m in models[:2])}{'...' if len(models) > 2 else ''}",
                   leave=False)
    log_every = 50
    step = start
    t_begin = time.perf_counter()
    with skip_value_checks():
        while True:
            if steps is not None and step >= steps:
                break
            if seconds is not None and time.perf_counter() - t_begin >= seconds:
                break
            if warmup:
                for g in optimizer.param_groups:
                    g["lr"] = lr * min(1.0, (step + 1) / warmup)
            idx = torch.randint(n, (batch_size,), device=device, generator=gen)
            x0 = images[idx]
            t = sample_t(batch_size, t_sampler, gen, device)
            z = torch.randn(x0.shape, device=device, generator=gen)
            x_t = path.interpolate(x0, z, t)
            with _amp(device, amp):
                preds = [f(x_t, t) for f in forward]
            losses = torch.stack([
                (p.float() - path.target(k, x0, z, t)).pow(2).mean() for p, k in zip(preds, kinds)
            ])
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # parameters are disjoint: each model gets its own gradient
            if grad_clip is not None:
                for m in models:
                    torch.nn.utils.clip_grad_norm_(m.parameters(), grad_clip, foreach=True)
            optimizer.step()
            if emas is not None:
                with torch.no_grad():
                    for m, e in zip(models, emas):
                        ep = [q for q in e.parameters()]
                        torch._foreach_lerp_(ep, [q.detach() for q in m.parameters()], 1.0 - ema)
                        for eb, mb in zip(e.buffers(), m.buffers()):
                            eb.copy_(mb)
            buf[pos] = losses.detach()
            pos += 1
            step += 1
            if pos == buf.shape[0]:
                buffers.append(buf)
                buf, pos = torch.zeros(1024, len(models), device=device), 0
            if bar is not None:
                bar.update(1)
                if step % log_every == 0:  # one host sync every log_every steps, for the progress bar only
                    bar.set_postfix(loss=f"{float(losses.detach().mean()):.4f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t_begin
    if bar is not None:
        bar.close()
    buffers.append(buf[:pos])
    new = torch.cat(buffers).float().cpu()
    all_losses = new if old_losses is None else torch.cat([old_losses.float().reshape(-1, len(models)), new])

    if checkpoint is not None:
        save_checkpoint(checkpoint, models, optimizer, step, {"fit": dict(batch_size=batch_size, lr=lr,
                        weight_decay=weight_decay, ema=ema, t_sampler=t_sampler, seed=seed)}, ema=emas, losses=all_losses,
                        rng=gen)
    if emas is not None:
        for m, e in zip(models, emas):
            m.load_state_dict(e.state_dict())
    for m in models:
        m.eval()
    held = [held_out_loss(m, held_out, t_sampler=t_sampler, amp=amp) if held_out is not None else None for m in models]
    arr = all_losses.numpy()
    return History(
        losses=arr if many else arr[:, 0], steps=step, seconds=elapsed, batch_size=batch_size,
        device=str(device), held_out=held, start_step=start,
    )
