"""The book's structure: jupytext pairs in sync, Colab install cells and launch links agree with ``_config.yml``."""

from __future__ import annotations

import json
import re

import jupytext
import pytest

from localdiff_lib.publish import chapters as course

NOTEBOOKS = [md for md in course.chapters() if course.is_notebook(md)]
IDS = [md.stem for md in NOTEBOOKS]


def _cells(nb):
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in nb["cells"]]


def test_every_toc_page_exists():
    missing = [str(p) for p in course.chapters() if not p.exists()]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


@pytest.mark.parametrize("md", NOTEBOOKS, ids=IDS)
def test_pair_has_not_drifted(md):
    """The committed .ipynb has exactly the cells of its .md (compared by content, never by file times)."""
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{md.name} has no paired {ipynb.name}; run `python -m localdiff_lib.publish sync`"
    committed = json.loads(ipynb.read_text())
    fresh = json.loads(jupytext.writes(jupytext.read(md), fmt="ipynb"))
    assert _cells(committed) == _cells(fresh), (
        f"{ipynb.name} has drifted from {md.name}; run `python -m localdiff_lib.publish sync`"
    )
    outputs = [c for c in committed["cells"] if c["cell_type"] == "code" and c.get("outputs") and not course.is_checked(c)]
    assert not outputs, f"{ipynb.name} is committed with outputs; strip them (`python -m localdiff_lib.publish sync`)"
    # a cell tagged nbval-check-output carries the output that nbval compares a fresh run against
    # (and an execution count: nbval refuses a reference cell with outputs but no count as "unrun")
    unchecked = [i for i, c in enumerate(committed["cells"])
                 if course.is_checked(c) and not (c.get("outputs") and c.get("execution_count"))]
    assert not unchecked, (f"{ipynb.name}: cells {unchecked} are tagged {course.CHECK_TAG} but have no stored output; "
                           f"run `python -m localdiff_lib.publish sync --outputs {md.stem}`")


@pytest.mark.parametrize("md", NOTEBOOKS, ids=IDS)
def test_first_code_cell_installs_in_colab_only(md):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source == course.install_cell_source(), (
        f"{md.name}: the first code cell is not the Colab install cell; run `python -m localdiff_lib.publish sync`"
    )
    assert 'if "google.colab" in sys.modules:' in first.source
    m = re.search(r"git\+(\S+)@(\S+?)\"", first.source)
    assert m and m.group(1) == course.repository_url() and m.group(2) == course.pinned_ref()


def test_repository_url_is_set_in_one_place():
    url = course.repository_url()
    assert url == "https://github.com/local-diffusion/local-diffusion-course"
    hits = []
    skip = {"_build", "tests", ".git", ".venv", "venv", "env", ".tox", ".nox", "node_modules"}  # not the course's files
    for p in course.ROOT.rglob("*"):
        if p.is_file() and p.suffix in {".py", ".yml", ".yaml", ".toml", ".txt", ".cfg"} and not skip & set(p.relative_to(course.ROOT).parts):
            if "local-diffusion/local-diffusion-course" in p.read_text(errors="ignore"):
                hits.append(p.relative_to(course.ROOT).as_posix())
    assert hits == ["_config.yml"], f"the repository URL must be set only in _config.yml, also found in {hits}"


def test_citations_name_the_same_repository():
    """CITATION.cff and the course's bib entry must agree with the one URL in _config.yml."""
    url = course.repository_url()
    cff = (course.ROOT / "CITATION.cff").read_text()
    assert f'repository-code: "{url}"' in cff
    bib = (course.ROOT / "references.bib").read_text()
    entry = bib[bib.index("@misc{localdiffcourse2026"):]
    assert f"url          = {{{url}}}" in entry.split("\n}", 1)[0]


def test_install_does_not_pin_torch():
    """A Colab install must keep Colab's torch: the library asks for ranges only."""
    text = (course.ROOT / "pyproject.toml").read_text()
    deps = re.search(r"dependencies = \[(.*?)\]", text, re.S).group(1)
    for line in re.findall(r'"(torch[^"]*)"', deps):
        assert "==" not in line and "<" not in line, f"pyproject pins {line!r}: Colab would reinstall torch"


@pytest.mark.parametrize("md", NOTEBOOKS, ids=IDS)
def test_launch_link_points_at_committed_notebook(md):
    url = course.colab_url(md)
    assert url.startswith("https://colab.research.google.com/github/local-diffusion/local-diffusion-course/blob/main/book/")
    assert md.with_suffix(".ipynb").exists()


@pytest.mark.slow
def test_nbval_compares_the_tagged_cells_and_only_those(tmp_path):
    """What `python -m pytest` does to a chapter: a tagged cell whose output drifted fails, an untagged one does not,
    and a negative zero is not a drift (tests/book/nbval_sanitize.cfg)."""
    import subprocess
    import sys

    import nbformat

    def notebook(stored_tagged: str, stored_plain: str):
        nb = nbformat.v4.new_notebook()
        cells = [("print(1 + 1)", stored_tagged, [course.CHECK_TAG]), ("print(2 + 2)", stored_plain, []),
                 ("print(f'{-1e-17:.3f}')", "0.000\n", [course.CHECK_TAG])]
        for k, (src, out, tags) in enumerate(cells, start=1):
            c = nbformat.v4.new_code_cell(src, metadata={"tags": tags}, execution_count=k)
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=out)]
            nb.cells.append(c)
        path = tmp_path / "chapter.ipynb"
        nbformat.write(nb, path)
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                               "--nbval-current-env", "--nbval-sanitize-with",
                               str(course.ROOT / "tests" / "book" / "nbval_sanitize.cfg"), str(path)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    ok = notebook("2\n", "5\n")  # the untagged cell's stale output is not compared
    assert ok.returncode == 0, ok.stdout + ok.stderr
    drift = notebook("3\n", "4\n")
    assert drift.returncode == 1 and "1 failed" in drift.stdout, drift.stdout + drift.stderr
