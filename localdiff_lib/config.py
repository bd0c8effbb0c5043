"""Run budgets, seeds and devices: the one switch every chapter reads.

The budget is chosen by the environment variable ``LOCALDIFF_BUDGET`` (``quick``, ``standard`` or
``full``). Without it the default is ``quick`` on a machine with no GPU and ``standard`` with one.
Chapters never hard-code sizes: they ask :func:`pick` for the value that belongs to the current
budget. See the introduction of the book ("Run budgets") for what each budget costs.

``LOCALDIFF_SMOKE=1`` runs the *smoke form* of a budget (nbval's run of every notebook in ``python -m pytest`` uses
it for ``standard``, :mod:`localdiff_lib.publish.nbval_budget`): the budget's structure
(grids, radii, figure layouts, code paths) with the quick budget's amounts of work. A chapter says once, where it
asks for a size, whether the size only sets how much work is done (``pick(..., work=True)``: training or sampling
steps, samples, Monte Carlo draws, widths of trained networks: quick's value), or is the number of steps of a model
the page trains (``pick(..., steps=True)``: a quarter of quick's, :data:`SMOKE_STEPS_DIVISOR`); checks that need
trained or converged models ask :func:`trained` first and are skipped, with a printed line, in smoke mode.
"""

from __future__ import annotations

import os
import random
import re
from typing import TypeVar

import numpy as np
import torch

from .checks import integer

BUDGETS = ("quick", "standard", "full")
ENV_VAR = "LOCALDIFF_BUDGET"
SMOKE_VAR = "LOCALDIFF_SMOKE"

T = TypeVar("T")


def budget() -> str:
    """The current run budget: ``LOCALDIFF_BUDGET`` if set, else ``quick`` without a GPU, ``standard`` with one."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return "standard" if torch.cuda.is_available() else "quick"
    if value not in BUDGETS:
        raise ValueError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a run budget; "
            f"set it to one of {', '.join(BUDGETS)} (or unset it for the automatic default)."
        )
    return value


def smoke() -> bool:
    """Whether ``LOCALDIFF_SMOKE=1`` asks for the smoke form of the budget (module docstring)."""
    value = os.environ.get(SMOKE_VAR, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{SMOKE_VAR}={value!r}: set it to 1 for the smoke form of the budget, 0 or unset otherwise")
    return value == "1"


SMOKE_STEPS_DIVISOR = 4   # smoke mode trains for this fraction of quick's steps (pick(..., steps=True))


def pick(*, quick: T, standard: T, full: T, work: bool = False, steps: bool = False) -> T:
    """Return the value for the current budget, e.g. ``pick(quick=300, standard=3000, full=20000)``.

    ``work=True`` says that the value only sets how much work is done (training or sampling steps, samples, Monte
    Carlo draws, widths of trained networks), not what the page shows: in smoke mode such a value is the quick one.
    ``steps=True`` says that it is a number of optimiser steps of a model the page trains: in smoke mode (of a larger
    budget) a :data:`SMOKE_STEPS_DIVISOR`-th of the quick one (at least 1), since the smoke form checks that the code
    runs, not what the model learns; the checks that need what it learns ask :func:`trained`."""
    if work and steps:
        raise ValueError("pick: give work=True or steps=True, not both (steps=True is the training-steps kind of work)")
    if steps and smoke() and budget() != "quick":
        quick = integer(quick, "pick(steps=True) quick", minimum=1)
        return max(1, quick // SMOKE_STEPS_DIVISOR)
    if (work or steps) and smoke():
        return quick
    return {"quick": quick, "standard": standard, "full": full}[budget()]


def trained(check: str) -> bool:
    """Whether a check that needs the budget's amounts of work runs (trained or converged models, the sample sizes
    that make a difference significant): ``False`` in smoke mode (amounts of work are quick's, so the models and
    estimates are not what the budget's prose describes), after printing which check is skipped.
    Use as ``if ld.trained("the local model beats the global one at t = 0.1"): assert ...``."""
    if smoke() and budget() != "quick":
        print(f"smoke mode: check skipped (needs the budget's amounts of work): {check}")
        return False
    return True


def default_device() -> torch.device:
    """``cuda`` when a GPU is present, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def seed_everything(seed: int = 0) -> torch.Generator:
    """Fix every random source (Python, NumPy, torch on CPU and GPU) and return a seeded CPU generator.

    Two runs of a chapter in the quick budget on the same machine then print the same numbers.
    cuDNN autotuning is switched off so that GPU convolutions pick the same algorithms each run.
    """
    seed = integer(seed, "seed", minimum=-(2**63), maximum=2**64 - 1)  # what torch.manual_seed accepts
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(int(seed))
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(int(seed))


_DESCRIBE = re.compile(r"budget=(?P<budget>\w+)(?: \(smoke\))? device=(?P<device>.+?) torch=(?P<torch>\S+)")


def describe() -> str:
    """One line naming the budget, device, and versions; chapters print it in their first cell."""
    dev = default_device()
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    return f"budget={budget()}{' (smoke)' if smoke() else ''} device={name} torch={torch.__version__}"


def parse_describe(text: str) -> dict | None:
    """The fields of the first :func:`describe` line in ``text`` (``budget``, ``device``, ``torch``), else ``None``
    (the status page reads them back from each chapter's printed output)."""
    m = _DESCRIBE.search(text)
    return m.groupdict() if m else None


def native_bf16(device: torch.device | str) -> bool:
    """The course's one bf16 rule: bf16 autocast by default only on GPUs with native bf16 (compute capability 8.0 or
    newer: A100, H100, ...); older GPUs such as Colab's T4, and CPUs, run in fp32."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def autocast(device: torch.device | str, enabled: bool | None = None):
    """bf16 autocast for training and sampling; ``enabled=None`` follows :func:`native_bf16`."""
    device = torch.device(device)
    enabled = native_bf16(device) if enabled is None else enabled
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bool(enabled))
