"""The Colab path, tested here: a chapter's install cell, run as Colab runs it, on a clone of the committed repository.

Every chapter's first code cell installs the library with ``%pip install -q "localdiff-lib @ git+<repository>@<tag>"``
when ``google.colab`` is imported, and relies on Colab's preinstalled torch. This test plays that without Colab and
without the network:

- a clone of the repository at HEAD (what is committed, not the working tree) stands in for GitHub, and its HEAD
  commit for the release tag;
- a new virtual environment with ``--system-site-packages`` stands in for Colab's Python: it already has torch and
  the other dependencies (as Colab does), and nothing of its own;
- the chapter's own cells run in IPython (``InteractiveShell``) in that environment with a ``google.colab`` module in
  ``sys.modules``, so that ``%pip`` is turned into ``<venv python> -m pip install -q ...`` by IPython itself.

Checked: pip exits with 0 and installs exactly ``localdiff-lib`` at that commit (torch is neither reinstalled nor
upgraded: same version, same file, no new distribution in the environment, pip says nothing about torch); the
library then imports from the environment's site-packages (not from this checkout, which the system Python may
have installed in editable mode), with every committed file of the package, the shipped checkpoints and results
included, byte for byte; and the chapter's first cells print the ``ld.describe()`` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localdiff_lib.publish import chapters as course

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "book/flow_matching.md"  # the first chapter after the introduction; its first cells import the library

pytestmark = pytest.mark.slow

# Run in the new environment before and after the install: what torch and localdiff_lib it imports.
PROBE = """
import json, sys, sysconfig
import torch
try:
    import localdiff_lib
    lib = localdiff_lib.__file__
except ImportError:
    lib = None
print(json.dumps({"torch": [torch.__version__, torch.__file__], "localdiff_lib": lib,
                  "purelib": sysconfig.get_paths()["purelib"]}))
"""

# Runs a chapter's code cells in IPython, as a Colab kernel would: ``google.colab`` is imported, magics are IPython's.
RUNNER = """
import json, sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for i, source in enumerate(json.loads(open(sys.argv[1]).read())):
    print(f"<<<cell {i}>>>", flush=True)
    result = shell.run_cell(source, store_history=True)
    sys.stdout.flush()
    if not result.success:
        sys.exit(f"cell {i} raised (traceback above)")
    if i == 0:
        print(f"<<<exit code {shell.user_ns.get('_exit_code')}>>>", flush=True)
"""


def _run(args, cwd, env, timeout=300):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _probe(python: Path, cwd: Path, env: dict) -> dict:
    p = _run([str(python), "-c", PROBE], cwd, env)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_colab_install_cell_installs_committed_library_and_keeps_torch(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the course")

    # 1. The committed repository, as GitHub would serve it.
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    sha = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()

    # 2. Colab's Python: torch and the other dependencies preinstalled, nothing of its own. Without its own pip
    # (the system's pip, visible through the system site-packages, installs into the environment, as
    # `python -m pip` always does); this also saves the seconds of ensurepip.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_USER", "VIRTUAL_ENV")}
    env.update({
        # No network: whatever the install needs must already be there (as torch is in Colab).
        "PIP_NO_INDEX": "1",
        # = --no-build-isolation (pip's environment spelling of a --no-* flag: "0" turns build isolation off).
        # A build-isolated install fetches setuptools (pyproject's build requirement) from the package index: the
        # one download of this install (876 kB, 4 s more when measured). Without isolation the setuptools already
        # installed builds the wheel; it is there wherever torch is (torch 2.14 requires setuptools >= 77), Colab too.
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # = --report: pip writes what it installed (the cell's -q keeps its output silent about that).
        "PIP_REPORT": str(tmp_path / "pip-report.json"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "MPLBACKEND": "Agg",
    })
    env.setdefault("OMP_NUM_THREADS", "1")
    before = _probe(python, tmp_path, env)
    purelib = Path(before["purelib"])
    assert purelib.is_relative_to(venv), before
    dists_before = {p.name for p in purelib.glob("*.dist-info")}

    # 3. The chapter's install cell with the repository and tag replaced by the clone and its HEAD commit.
    # `file://localhost/...`, not `file:///...`: pip 23 rejects `name @ git+file:///path` (its PEP 508 parser wants a
    # host in a VCS URL); git reads `file://localhost/path` as the local path.
    nb = course.read_chapter(clone / CHAPTER)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    assert cells and cells[0].startswith(course.INSTALL_MARK), f"{CHAPTER}: the first code cell is not the install cell"
    published = f"git+{course.repository_url(clone)}@{course.pinned_ref(clone)}"
    assert re.search(r'^\s+%pip install -q "localdiff-lib @ ' + re.escape(published) + '"$', cells[0], re.M), cells[0]
    install = cells[0].replace(published, f"git+file://localhost{clone.as_posix()}@{sha}")
    first_import = next(i for i, s in enumerate(cells) if re.search(r"^(import|from) localdiff_lib\b", s, re.M))
    assert "print(ld.describe())" in cells[first_import], (
        f"{CHAPTER}: the cell that imports the library must print ld.describe()")

    # 4. Run the chapter's cells up to that one, with google.colab present: IPython runs the %pip line.
    cells_json = tmp_path / "cells.json"
    cells_json.write_text(json.dumps([install] + cells[1:first_import + 1]))
    runner = tmp_path / "run_cells.py"
    runner.write_text(RUNNER)
    run = _run([str(python), str(runner), str(cells_json)], tmp_path, env)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    pip_out = out.split("<<<cell 0>>>", 1)[1].split("<<<exit code", 1)[0]
    assert "<<<exit code 0>>>" in out, f"pip failed in the install cell:\n{out}"
    assert not re.search(r"torch", pip_out, re.I), f"pip's output mentions torch:\n{pip_out}"
    report = json.loads((tmp_path / "pip-report.json").read_text())
    installed = [(d["metadata"]["name"], d["download_info"].get("vcs_info", {}).get("commit_id"))
                 for d in report["install"]]
    assert installed == [("localdiff-lib", sha)], f"pip installed {installed}"
    describe = re.search(r"^budget=\w+ device=.+ torch=(\S+)$", out.split("<<<cell 1>>>", 1)[1], re.M)
    assert describe, f"no ld.describe() line in the chapter's output:\n{out}"

    # torch is Colab's torch still: same version and file; pip installed localdiff-lib and nothing else.
    after = _probe(python, tmp_path, env)
    assert after["torch"] == before["torch"], (before, after)
    assert describe.group(1) == before["torch"][0]
    new = {p.name for p in purelib.glob("*.dist-info")} - dists_before
    version = re.search(r'^version\s*=\s*"([^"]+)"', (clone / "pyproject.toml").read_text(), re.M).group(1)
    assert new == {f"localdiff_lib-{version}.dist-info"}, f"pip installed {sorted(new)}"
    direct_url = json.loads((purelib / f"localdiff_lib-{version}.dist-info" / "direct_url.json").read_text())
    assert direct_url["vcs_info"]["commit_id"] == sha, direct_url

    # The library imports from the environment (not from this checkout) ...
    pkg = purelib / "localdiff_lib"
    assert after["localdiff_lib"] == str(pkg / "__init__.py"), after

    # ... and holds every committed file of the package, byte for byte: modules, shipped checkpoints and results
    # (a data file that pyproject's package-data misses would be absent here), but not the book's own tooling
    # (localdiff_lib/publish/, which needs a checkout and Jupyter Book)
    tracked = subprocess.run(["git", "-C", str(clone), "ls-files", "localdiff_lib"], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    tooling = [f for f in tracked if f.startswith("localdiff_lib/publish/")]
    assert tooling and not (pkg / "publish").exists(), "the book's tooling must stay out of the Colab install"
    tracked = [f for f in tracked if f not in tooling]
    assert any(f.startswith("localdiff_lib/pretrained/") for f in tracked), "no shipped checkpoint is committed"
    missing = [f for f in tracked if not (pkg.parent / f).is_file()]
    assert not missing, f"committed but not installed (see [tool.setuptools.package-data] in pyproject.toml): {missing}"
    differ = [f for f in tracked if _sha256(pkg.parent / f) != _sha256(clone / f)]
    assert not differ, f"installed files differ from the committed ones: {differ}"
