"""Training denoisers: one :func:`fit` for the global U-Net, any local model, or several models at once.

Each step draws a batch of clean images ``x0``, times ``t`` (logit-normal, ``t = sigmoid(N(0, 1))`` as in
the paper, or uniform) and noise ``z``, forms ``x_t = (1 - t) x0 + t z`` and regresses the model's output
on :func:`localdiff_lib.path.target` of the model's ``prediction`` kind (velocity ``z - x0`` or noise
``z``) with the mean squared error. AdamW, optional EMA of the weights, gradient clipping per model.

Speed (measured by ``python -m localdiff_lib.bench``): the images live on the training device and batches are drawn
by indexing on it (no DataLoader, no worker processes); per-step losses stay on the device and are copied
to the host once at the end; on a GPU the forward pass runs under bf16 autocast, AdamW is the fused
kernel, and ``compile=True`` wraps the models in ``torch.compile``. Passing a list of models trains them
on the same batches with one optimizer, which is how all twelve radii of the paper's local denoisers are
trained together. Checkpoints use ``torch.load(weights_only=True)`` and refuse a mismatched model; ``fit``
writes its checkpoint atomically during training (every ``checkpoint_every`` steps or ``checkpoint_seconds``
seconds, and on Ctrl-C), never replaces one unless asked, and resumes one only with the same training config.
"""

from __future__ import annotations

import copy
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import path
from .checks import InputError, images as check_images, integer, number
from .config import autocast
from .models import check_output, check_prediction, skip_value_checks

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
    n = integer(n, "n", minimum=0)
    if sampler == "logit-normal":
        return torch.sigmoid(torch.randn(n, generator=generator, device=device))
    if sampler == "uniform":
        return torch.rand(n, generator=generator, device=device)
    raise ValueError(f"t_sampler must be one of {', '.join(T_SAMPLERS)}; got {sampler!r}")


def _as_list(model_or_models, what: str = "fit") -> tuple[list[nn.Module], bool]:
    if isinstance(model_or_models, nn.Module):
        return [model_or_models], False
    try:
        models = [] if isinstance(model_or_models, (str, bytes)) else list(model_or_models)
    except TypeError:
        models = []
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise InputError(f"{what} needs a model or a non-empty list of models (torch.nn.Module); got "
                         f"{type(model_or_models).__name__}")
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
    check_images(images, "held-out images")
    batch_size = integer(batch_size, "batch_size")
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
                x_t = path.interpolate(x0, z, t)
                with _amp(device, amp):
                    pred = check_output(model(x_t, t), x_t, model)
                err = (pred.float() - path.target(kind, x0, z, t)).pow(2).mean(dim=(1, 2, 3)).sum()
                total += float(err)
                count += n
    finally:
        model.train(was_training)
    return total / count


def save_checkpoint(
    file, model, optimizer=None, step: int = 0, config: dict | None = None, *, ema=None, losses=None, rng=None
) -> None:
    """Save a model (or a list of models), its optimizer, the step, a ``config`` dict and optional EMA weights.

    Everything is stored as tensors, numbers, strings, lists and dicts, so :func:`load_checkpoint` can use
    ``torch.load(weights_only=True)``. The file is written atomically: to ``NAME.tmp`` in the same directory,
    flushed to disk, then renamed over ``NAME`` (``os.replace``), so a crash or a kill leaves either the old file
    or the new one, never half of one.
    """
    models, _ = _as_list(model, "save_checkpoint")
    emas = None if ema is None else _as_list(ema, "save_checkpoint (ema)")[0]
    step = integer(step, "step", minimum=0)
    if config is not None and not isinstance(config, Mapping):
        raise InputError(f"config must be a dict (of training settings); got {type(config).__name__}")
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
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(blob, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:  # a failed or interrupted write leaves no .tmp behind (and the old file untouched)
        tmp.unlink(missing_ok=True)
        raise


def _read_checkpoint(file, map_location="cpu") -> dict:
    """The contents of a file written by :func:`save_checkpoint` (``torch.load(weights_only=True)``), checked."""
    file = Path(file)
    if not file.exists():
        raise FileNotFoundError(f"no checkpoint at {file}")
    try:
        blob = torch.load(file, weights_only=True, map_location=map_location)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{file} is not a readable checkpoint ({type(e).__name__}: {e}); delete it and train again") from e
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{file} was not written by localdiff_lib.train.save_checkpoint")
    missing = [k for k in ("classes", "model_configs", "models") if not isinstance(blob.get(k), list)]
    if missing:
        raise ValueError(f"{file} is incomplete: it lacks {missing}; it was not written whole by save_checkpoint "
                         "(delete it and train again)")
    return blob


def _load_into(blob: dict, where: str, models: list[nn.Module], optimizer=None, emas=None) -> None:
    """Check that ``blob`` holds ``models`` (class, config, names, shapes), then load weights, optimizer and EMA."""
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
    if emas is not None:
        if blob["ema"] is None:
            raise ValueError(f"{where} has no EMA weights, but an EMA model was given")
        for e, state in zip(emas, blob["ema"]):
            e.load_state_dict(state)


def load_checkpoint(file, model, optimizer=None, *, ema=None, map_location="cpu") -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model`` (or a list of models) and return the checkpoint.

    Raises ``ValueError`` naming the difference when the checkpoint does not match the model: another class,
    another constructor config, other parameter names or shapes, or another number of models.
    """
    models = _as_list(model, "load_checkpoint")[0]
    emas = None if ema is None else _as_list(ema, "load_checkpoint (ema)")[0]
    blob = _read_checkpoint(file, map_location)
    _load_into(blob, f"checkpoint {Path(file)}", models, optimizer, emas)
    return blob


def _config_differences(blob: dict, config: dict, models: list[nn.Module]) -> dict[str, tuple]:
    """Every training setting in which a checkpoint differs from a :func:`fit` call: ``{key: (saved, given)}``.

    ``config`` is the call's ``fit`` config; the models are compared by number, class and constructor config
    (``"model K KEY"``). A key the checkpoint does not record (files written before it was recorded) is not compared.
    """
    diff = {}
    saved = (blob.get("config") or {}).get("fit") or {}
    for key, given in config.items():
        if key in saved and saved[key] != given:
            diff[key] = (saved[key], given)
    classes, configs = blob.get("classes") or [], blob.get("model_configs") or []
    if len(classes) != len(models):
        diff["number of models"] = (len(classes), len(models))
        return diff
    for k, (m, cls, cfg) in enumerate(zip(models, classes, configs)):
        mine = getattr(m, "config", None)
        if type(m).__name__ != cls:
            diff[f"model {k} class"] = (cls, type(m).__name__)
        elif cfg is not None and mine is not None:
            for key in sorted(set(cfg) | set(mine), key=str):
                if cfg.get(key) != mine.get(key):
                    diff[f"model {k} {key}"] = (cfg.get(key), mine.get(key))
    return diff


def _exists_error(file: Path) -> FileExistsError:
    try:
        blob = _read_checkpoint(file)
        what = f"a checkpoint of {len(blob['models'])} model(s) at step {blob['step']}"
    except Exception:  # noqa: BLE001 - only for the message
        what = f"a file of {file.stat().st_size} bytes"
    return FileExistsError(
        f"{file} already exists ({what}) and fit does not overwrite a checkpoint unless asked: pass resume=True to "
        f"continue that run, or overwrite=True to start a new run in this file (or choose another checkpoint path)")


class _HoldInterrupt:
    """While ``busy`` (the update part of a step), a Ctrl-C (SIGINT) is held and delivered when :meth:`done` is
    called, so an interrupted :func:`fit` always stops between two steps and saves a consistent state.

    Installed only in the main thread and only over a Python-level handler (the default one raises
    ``KeyboardInterrupt``; Jupyter kernels use it too); elsewhere it does nothing.
    """

    def __init__(self):
        self.busy = False
        self._pending = None
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

    def _handle(self, signum, frame):
        if self.busy:
            self._pending = (signum, frame)
        else:
            self._previous(signum, frame)

    def done(self):
        self.busy = False
        if self._pending is not None:
            (signum, frame), self._pending = self._pending, None
            self._previous(signum, frame)


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
    overwrite: bool = False,
    checkpoint_every: int | None = 1000,
    checkpoint_seconds: float | None = 300.0,
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
    decay of an exponential moving average of the weights (e.g. ``0.999``), warmed up as ``min(ema, (1 + k) / (10 + k))``
    at update ``k`` so that the average forgets the initial weights (without it, 0.999 keeps 37 % of them after
    1,000 steps); when given, the models hold the EMA weights when ``fit`` returns (the raw weights stay in the
    checkpoint). ``held_out``: images whose loss
    is evaluated at the end with a fixed noise draw. ``seed`` fixes batches, times and noise: the same call twice
    gives the same losses. ``device``: default the models' device. ``amp``: bf16 autocast (default: on GPUs with
    native bf16 only, see :func:`localdiff_lib.config.autocast`).

    ``checkpoint``: a file holding the weights, optimizer state, EMA weights, step, losses, random-number state
    and training config (batch size, learning rate, weight decay, warm-up, EMA decay, gradient clip, ``t``
    sampler, seed). It is written atomically (a ``.tmp`` file renamed over it) at the end, every
    ``checkpoint_every`` steps (default 1000; at multiples of it) and every ``checkpoint_seconds`` seconds
    (default 300), whichever comes first (``None`` turns either off), so a killed run loses at most that much;
    on Ctrl-C (``KeyboardInterrupt``) the last complete step is saved, then the interrupt is re-raised.
    An existing file is never replaced silently: ``resume=True`` loads it (weights, optimizer, EMA, step, losses,
    random-number state) and continues the run, so an interrupted or resumed run gives the same weights as one
    that never stopped; ``overwrite=True`` starts a new run in it; with neither, ``fit`` raises
    ``FileExistsError``. On resume, the call's training config and models (class, constructor config) must be
    the saved ones, or ``fit`` raises ``ValueError`` listing each differing key with its (saved, given) values.
    Resuming without ``ema=`` a checkpoint trained with EMA keeps its EMA (the saved decay is used).
    """
    # --- check the arguments
    models, many = _as_list(model)
    kinds = [_prediction(m) for m in models]
    if steps is None and seconds is None:
        raise ValueError("give a budget: steps=... and/or seconds=...")
    if steps is not None:
        steps = integer(steps, "steps", minimum=0)
    if seconds is not None:
        seconds = number(seconds, "seconds", above=0.0)
    batch_size = integer(batch_size, "batch_size")
    lr, weight_decay = number(lr, "lr", above=0.0), number(weight_decay, "weight_decay", at_least=0.0)
    warmup = integer(warmup, "warmup", minimum=0)
    if t_sampler not in T_SAMPLERS:
        raise ValueError(f"t_sampler must be one of {', '.join(T_SAMPLERS)}; got {t_sampler!r}")
    if ema is not None:
        ema = number(ema, "ema (a decay, e.g. 0.999)", above=0.0, below=1.0)
    if grad_clip is not None:
        grad_clip = number(grad_clip, "grad_clip (a gradient norm, or None)", above=0.0)
    if checkpoint_every is not None:
        checkpoint_every = integer(checkpoint_every, "checkpoint_every (steps between saves, or None)")
    if checkpoint_seconds is not None:
        checkpoint_seconds = number(checkpoint_seconds, "checkpoint_seconds (or None)", above=0.0)
    if resume and overwrite:
        raise ValueError("resume=True continues the checkpoint and overwrite=True replaces it; pass one of them")
    seed = integer(seed, "seed", minimum=None)
    check_images(images)
    if held_out is not None:
        check_images(held_out, "held_out")
    device = torch.device(device) if device is not None else next(models[0].parameters()).device

    # --- an existing checkpoint: resume it (same config; EMA kept), replace it (overwrite=True), or refuse
    checkpoint = None if checkpoint is None else Path(checkpoint)
    blob = None
    if checkpoint is not None and checkpoint.exists():
        if not (resume or overwrite):
            raise _exists_error(checkpoint)
        if resume:
            blob = _read_checkpoint(checkpoint, map_location=device)
            saved_ema = ((blob.get("config") or {}).get("fit") or {}).get("ema")
            if ema is None and saved_ema is not None:
                ema = saved_ema
    config = dict(batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup=warmup, ema=ema,
                  grad_clip=grad_clip, t_sampler=t_sampler, seed=seed)
    if blob is not None:
        diff = _config_differences(blob, config, models)
        if diff:
            listed = "; ".join(f"{k}: ({saved!r}, {given!r})" for k, (saved, given) in diff.items())
            raise ValueError(
                f"cannot resume {checkpoint}: it was trained with other settings; (saved, given) per key: {listed}. "
                f"Pass the saved values to continue it, or overwrite=True to start a new run in this file")

    # --- set up: models and images on the device, optimizer, EMA copies, random stream, loss buffers
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
    gen = torch.Generator(device=device).manual_seed(seed)
    start, old_losses = 0, None
    if blob is not None:
        _load_into(blob, f"checkpoint {checkpoint}", models, optimizer, emas)
        start, old_losses = blob["step"], blob["losses"]
        if start and blob.get("rng") is not None:  # continue the same random stream: resuming == never stopping
            gen.set_state(blob["rng"].cpu())
    if steps is not None and steps < start:
        raise ValueError(f"the checkpoint is already at step {start}, beyond steps={steps}")
    forward = [torch.compile(m) for m in models] if compile else models
    chunk = 1024 if steps is None else max(1, steps - start)
    buffers, buf, pos = [], torch.zeros(chunk, len(models), device=device), 0

    def losses_so_far() -> torch.Tensor:  # every step's losses, those of the resumed checkpoint first (host copy)
        new = torch.cat(buffers + [buf[:pos]]).float().cpu()
        return new if old_losses is None else torch.cat([old_losses.float().reshape(-1, len(models)), new])

    def save(at_step: int, losses: torch.Tensor | None = None) -> None:
        save_checkpoint(checkpoint, models, optimizer, at_step, {"fit": config}, ema=emas,
                        losses=losses_so_far() if losses is None else losses, rng=gen)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None if steps is None else steps - start,
                   desc=f"fit {', '.join(type(m).__name__ for m in models[:2])}{'...' if len(models) > 2 else ''}",
                   leave=False)
    log_every = 50
    step, saved_step = start, start
    rng_before = None  # the random state at the start of an unfinished step (None between steps)
    hold = _HoldInterrupt()
    t_begin = time.perf_counter()
    t_saved = t_begin
    try:
        with hold, skip_value_checks():
            while True:
                if steps is not None and step >= steps:
                    break
                if seconds is not None and time.perf_counter() - t_begin >= seconds:
                    break

                # --- periodic checkpoint, between two steps
                if checkpoint is not None and step > saved_step and (
                    (checkpoint_every is not None and step % checkpoint_every == 0)
                    or (checkpoint_seconds is not None and time.perf_counter() - t_saved >= checkpoint_seconds)
                ):
                    save(step)
                    saved_step, t_saved = step, time.perf_counter()

                # --- one training step: batch, times and noise; each model's loss; gradients
                if checkpoint is not None:
                    rng_before = gen.get_state()
                if warmup:
                    for g in optimizer.param_groups:
                        g["lr"] = lr * min(1.0, (step + 1) / warmup)
                idx = torch.randint(n, (batch_size,), device=device, generator=gen)
                x0 = images[idx]
                t = sample_t(batch_size, t_sampler, gen, device)
                z = torch.randn(x0.shape, device=device, generator=gen)
                x_t = path.interpolate(x0, z, t)
                with _amp(device, amp):
                    preds = [check_output(f(x_t, t), x_t, m) for f, m in zip(forward, models)]
                losses = torch.stack([
                    (p.float() - path.target(k, x0, z, t)).pow(2).mean() for p, k in zip(preds, kinds)
                ])
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()  # parameters are disjoint: each model gets its own gradient
                if grad_clip is not None:
                    for m in models:
                        torch.nn.utils.clip_grad_norm_(m.parameters(), grad_clip, foreach=True)

                # --- update: weights, EMA, loss record, step counter (a Ctrl-C here waits for the step's end)
                hold.busy = True
                optimizer.step()
                if emas is not None:
                    decay = min(ema, (1 + step) / (10 + step))  # warm-up: the first updates do not keep the initial weights
                    with torch.no_grad():
                        for m, e in zip(models, emas):
                            ep = [q for q in e.parameters()]
                            torch._foreach_lerp_(ep, [q.detach() for q in m.parameters()], 1.0 - decay)
                            for eb, mb in zip(e.buffers(), m.buffers()):
                                eb.copy_(mb)
                buf[pos] = losses.detach()
                pos += 1
                if pos == buf.shape[0]:
                    buffers.append(buf)
                    buf, pos = torch.zeros(1024, len(models), device=device), 0
                step += 1
                rng_before = None
                hold.done()

                # --- progress
                if bar is not None:
                    bar.update(1)
                    if step % log_every == 0:  # one host sync every log_every steps, for the progress bar only
                        bar.set_postfix(loss=f"{float(losses.detach().mean()):.4f}")
    except KeyboardInterrupt:
        # --- interrupted: save the last complete step, then re-raise
        if bar is not None:
            bar.close()
            bar = None
        if checkpoint is not None:
            if hold.busy:  # raised by code inside the update (a Ctrl-C there is held): the state is half-updated
                print(f"fit interrupted during the update of step {step + 1}; {checkpoint} keeps its last save "
                      f"(step {saved_step})", file=sys.stderr)
            else:
                if rng_before is not None:  # the unfinished step draws its batch again on resume
                    gen.set_state(rng_before)
                save(step)
                print(f"fit interrupted: saved step {step} to {checkpoint}; fit(..., checkpoint=..., resume=True) "
                      f"continues it", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()

    # --- finish: final checkpoint, EMA weights into the models, held-out loss, history
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t_begin
    all_losses = losses_so_far()
    if checkpoint is not None:
        save(step, all_losses)
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
