"""pytest plugin (``-p localdiff_lib.publish.nbval_budget`` in pyproject's ``addopts``): the budget of nbval's run.

``python -m pytest`` executes every chapter twice: ``tests/book/test_chapters.py`` runs it in the quick budget into
the book's execution cache, then nbval validates each notebook cell by cell. That second run uses the **smoke form
of the standard budget** (``LOCALDIFF_BUDGET=standard``, ``LOCALDIFF_SMOKE=1``: the standard grids, radii and
figure layouts with quick's amounts of work; see :mod:`localdiff_lib.config`), so that one ``pytest`` checks both
the page a CPU reader sees and the structure a Colab student gets, without a third run. The cells tagged
``nbval-check-output`` hold budget-independent values, so they compare equal in either.

``LOCALDIFF_NBVAL_BUDGET`` chooses another form: a budget (``quick``, ``standard``, ``full``), optionally with
``-smoke`` (``full-smoke``). Only nbval's kernels see it: the variables are set before each notebook's kernel
starts and restored for every other test.
"""

from __future__ import annotations

import os

import pytest

from ..config import BUDGETS, ENV_VAR, SMOKE_VAR

NBVAL_VAR = "LOCALDIFF_NBVAL_BUDGET"
DEFAULT = "standard-smoke"

_saved: dict[str, str | None] | None = None


def nbval_form(value: str | None = None) -> tuple[str, bool]:
    """``(budget, smoke)`` for nbval's run from ``LOCALDIFF_NBVAL_BUDGET`` (default ``standard-smoke``)."""
    raw = (os.environ.get(NBVAL_VAR) if value is None else value) or DEFAULT
    name, _, suffix = raw.strip().lower().partition("-")
    if name not in BUDGETS or suffix not in ("", "smoke") or (suffix and name == "quick"):
        raise pytest.UsageError(
            f"{NBVAL_VAR}={raw!r} is not a form of a budget; use one of "
            f"{', '.join(BUDGETS)}, standard-smoke or full-smoke (unset: {DEFAULT})")
    return name, suffix == "smoke"


def _is_nbval(item) -> bool:
    return type(item).__module__.startswith("nbval")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # before the runner's setup, which starts a notebook's kernel (inheriting os.environ) at its first cell
    global _saved
    if _is_nbval(item):
        if _saved is None:
            _saved = {k: os.environ.get(k) for k in (ENV_VAR, SMOKE_VAR)}
        name, smoke = nbval_form()
        os.environ[ENV_VAR] = name
        os.environ[SMOKE_VAR] = "1" if smoke else "0"
    elif _saved is not None:
        for k, v in _saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _saved = None


def pytest_report_header(config):
    name, smoke = nbval_form()
    return f"nbval runs the notebooks in the {'smoke form of the ' if smoke else ''}{name} budget ({NBVAL_VAR})"
