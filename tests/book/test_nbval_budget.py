"""nbval's run of the notebooks uses the smoke form of the standard budget (localdiff_lib.publish.nbval_budget):
checked end to end on a one-cell notebook that prints the budget its kernel sees, with the project's pytest options."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from localdiff_lib.publish.chapters import ROOT
from localdiff_lib.publish.nbval_budget import nbval_form


def _notebook(path, expected: str,
              source: str = 'import os; print(*(os.environ.get(f"LOCALDIFF_{k}") for k in ("BUDGET", "SMOKE", "HIDE_DATASETS")))'):
    """A one-cell notebook whose checked output is ``expected`` (what the kernel should print)."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["nbval-check-output"]
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected + "\n")]
    nb.cells.append(cell)
    nbformat.write(nb, str(path))


@pytest.mark.parametrize("form, expected", [(None, "standard 1 fashion-mnist"), ("quick", "quick 0 fashion-mnist"),
                                            ("full-smoke", "full 1 fashion-mnist")])
def test_nbval_kernels_see_the_chosen_form_without_the_optional_data(tmp_path, form, expected):
    """The budget's form, and the optional data sets hidden (the chapters' runs without Fashion-MNIST)."""
    _notebook(tmp_path / "budget.ipynb", expected)
    env = {k: v for k, v in os.environ.items() if k not in ("LOCALDIFF_NBVAL_BUDGET", "LOCALDIFF_HIDE_DATASETS")}
    env["LOCALDIFF_BUDGET"] = "quick"  # what .ci/run exports for the other tests: nbval's kernels do not see it
    if form is not None:
        env["LOCALDIFF_NBVAL_BUDGET"] = form
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
                          "--rootdir", str(tmp_path), str(tmp_path / "budget.ipynb")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)  # the options name files of ROOT
    assert out.returncode == 0, out.stdout[-2000:]


def test_nbval_hides_the_optional_data_sets_besides_the_users():
    from localdiff_lib.data import OPTIONAL
    from localdiff_lib.publish.nbval_budget import nbval_hidden

    assert OPTIONAL == ("fashion-mnist",)
    assert nbval_hidden(None) == nbval_hidden("") == "fashion-mnist"
    assert nbval_hidden("mnist") == "mnist,fashion-mnist" and nbval_hidden(" fashion-mnist ,mnist") == "fashion-mnist,mnist"


def test_forms_are_checked():
    assert nbval_form("standard-smoke") == ("standard", True) and nbval_form("full") == ("full", False)
    for bad in ("quick-smoke", "fast", "standard-fast"):
        with pytest.raises(pytest.UsageError, match="LOCALDIFF_NBVAL_BUDGET"):
            nbval_form(bad)


def test_cell_timeout_follows_the_form_and_an_explicit_option_wins(tmp_path):
    from localdiff_lib.publish.nbval_budget import cell_timeout

    assert cell_timeout("quick", False) == cell_timeout("standard", True) == 600 and cell_timeout("full", False) == 7200
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import time; time.sleep(4)"))
    nbformat.write(nb, str(tmp_path / "sleep.ipynb"))
    env = {k: v for k, v in os.environ.items() if k != "LOCALDIFF_NBVAL_BUDGET"}

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
                               "--rootdir", str(tmp_path), *extra, str(tmp_path / "sleep.ipynb")],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)

    default = run()
    assert default.returncode == 0 and "smoke form of the standard budget" in default.stdout, default.stdout[-2000:]
    assert "at most 600 s per cell" in default.stdout, default.stdout[-2000:]
    explicit = run("--nbval-cell-timeout=1")
    assert explicit.returncode != 0 and "at most 1 s per cell" in explicit.stdout, explicit.stdout[-2000:]


def test_kernels_wait_passively_unless_the_user_says_otherwise(tmp_path):
    # a kernel's OpenMP threads must not spin at barriers on a shared 2-core machine (publish.nbval_budget)
    def run(env_value, expected):
        _notebook(tmp_path / "omp.ipynb", expected, 'import os; print(os.environ.get("OMP_WAIT_POLICY"))')
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if env_value is not None:
            env["OMP_WAIT_POLICY"] = env_value
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
                               "--rootdir", str(tmp_path), str(tmp_path / "omp.ipynb")],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)

    assert run(None, "PASSIVE").returncode == 0
    kept = run("ACTIVE", "ACTIVE")
    assert kept.returncode == 0, kept.stdout[-2000:]
