"""Classroom tooling: student notebooks generated from instructor notebooks, the student edition without
solutions, the status page's run times, offline MathJax.

Tests marked ``slow`` execute notebooks or build a small book (tens of seconds each). The two tests that read
the real builds (``_build/html`` and ``_build/student/html``) skip when those are absent, unless
``LOCALDIFF_REQUIRE_BUILD=1`` (CI sets it after building both), which turns the skip into a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import jupytext
import pytest

from localdiff_lib.publish import chapters as course, mathjax, sphinx_ext
from localdiff_lib.publish import status as status_page, student as edition
from localdiff_lib.publish.student import BEGIN, END

ROOT = course.ROOT
INSTRUCTOR = edition.instructor_assignments()
IDS = [md.stem for md in INSTRUCTOR]
REQUIRE_BUILD = os.environ.get("LOCALDIFF_REQUIRE_BUILD") == "1"


def _need(path: Path, what: str):
    """Skip (or, with LOCALDIFF_REQUIRE_BUILD=1, fail) unless ``path`` holds a build newer than every page source."""
    msg = None
    if not path.is_dir():
        msg = f"{path.relative_to(ROOT)} is absent: {what}"
    else:
        sources = [md for md in course.chapters() if md.exists()] + INSTRUCTOR
        newest = max(md.stat().st_mtime for md in sources)
        stamp = path / "searchindex.js"     # Sphinx rewrites it at the end of every build
        if not stamp.exists() or stamp.stat().st_mtime < newest:
            msg = f"{path.relative_to(ROOT)} is older than the sources: {what}"
    if msg:
        if REQUIRE_BUILD:
            pytest.fail(msg + " (LOCALDIFF_REQUIRE_BUILD=1 requires it)")
        pytest.skip(msg)


def _solution_regions(md: Path) -> list[str]:
    """The code lines inside BEGIN/END SOLUTION regions of an instructor notebook."""
    regions = []
    for cell in jupytext.read(md).cells:
        if cell.cell_type == "code":
            regions += re.findall(rf"{re.escape(BEGIN)}\n(.*?)\n\s*{re.escape(END)}", cell.source, re.S)
    return regions


# ---- generating student notebooks --------------------------------------------------------------------

def test_strip_solutions_keeps_signature_and_indentation():
    src = textwrap.dedent('''\
        def f(x):
            """Doc."""
            ### BEGIN SOLUTION
            y = x + 1
            return y
            ### END SOLUTION

        ### BEGIN SOLUTION
        z = f(2)
        ### END SOLUTION
        print("kept")''')
    out = edition.strip_solutions(src)
    assert out == textwrap.dedent('''\
        def f(x):
            """Doc."""
            raise NotImplementedError("write your solution here")

        raise NotImplementedError("write your solution here")
        print("kept")''')


@pytest.mark.parametrize("src, fragment", [
    (f"{BEGIN}\nx = 1\n", "is never closed"),
    (f"x = 1\n{END}", "without a"),
    (f"{BEGIN}\n{BEGIN}\n{END}\n{END}", "nested"),
])
def test_strip_solutions_rejects_broken_markers(src, fragment):
    with pytest.raises(ValueError, match=fragment):
        edition.strip_solutions(src, where="cell 3")


def test_there_are_at_least_three_assignments():
    assert len(INSTRUCTOR) >= 3, f"expected at least three instructor notebooks in book/assignments/, found {IDS}"


def test_student_notebooks_are_up_to_date():
    stale = edition.generate_assignments(check=True)
    assert not stale, (f"student notebooks differ from their instructor notebooks: "
                       f"{[str(p.relative_to(ROOT)) for p in stale]}; run `python -m localdiff_lib.publish assignments`")


@pytest.mark.parametrize("md", INSTRUCTOR, ids=IDS)
def test_student_notebook_contains_no_solution_code(md):
    regions = _solution_regions(md)
    assert regions, f"{md.name} has no {BEGIN} region"
    outside = edition.strip_solutions("\n".join(c.source for c in jupytext.read(md).cells if c.cell_type == "code"))
    student = [(md.parent / "student" / (md.stem + ext)).read_text() for ext in (".md", ".ipynb")]
    for region in regions:
        for line in region.split("\n"):
            code = line.strip()
            if len(code) < 8 or code in outside:   # too short to be specific, or also outside a solution
                continue
            for text in student:
                assert code not in text and json.dumps(code)[1:-1] not in text, \
                    f"solution line {code!r} of {md.name} leaked into its student version"
    assert all("raise NotImplementedError" in text for text in student)


@pytest.mark.parametrize("md", INSTRUCTOR, ids=IDS)
def test_every_assignment_is_graded_and_listed(md):
    nb = jupytext.read(md)
    checks = [c for c in nb.cells if c.cell_type == "code" and "grading.check_" in c.source]
    solutions = [c for c in nb.cells if c.cell_type == "code" and BEGIN in c.source]
    assert len(checks) >= len(solutions) >= 1, f"{md.name}: every solution cell needs a grading check after it"
    assert f"book/assignments/{md.stem}" in (ROOT / "_toc.yml").read_text(), \
        f"{md.name} is not in _toc.yml: add `- file: book/assignments/{md.stem}` under the Assignments part"


def test_student_toc_swaps_only_instructor_assignments(tmp_path):
    (tmp_path / "book" / "assignments").mkdir(parents=True)
    (tmp_path / "book" / "assignments" / "hw1.md").write_text("---\nkernelspec:\n  name: python3\n---\n# HW 1\n")
    (tmp_path / "book" / "assignments" / "about.md").write_text("# About the assignments\n")   # a plain page
    (tmp_path / "_toc.yml").write_text(
        "root: book/intro\nparts:\n  - chapters:\n      - file: book/assignments/about\n"
        "      - file: book/assignments/hw1\n      - file: book/hw1\n")
    out = edition.student_toc(tmp_path, tmp_path / "toc.yml").read_text()
    assert "file: book/assignments/student/hw1\n" in out
    assert "file: book/assignments/about\n" in out and "file: book/hw1\n" in out


def test_solution_blocks_finds_plain_and_gated_solutions():
    text = textwrap.dedent('''\
        ```{exercise}
        :label: e1
        Question one.
        ```

        ```{solution} e1
        :class: dropdown

        Answer one.
        ```

        ````{solution-start} e2
        :class: dropdown
        ````

        Answer two.

        ```{code-cell} ipython3
        x = 2
        ```

        ````{solution-end}
        ````
        After.''')
    blocks = edition.solution_blocks(text)
    assert [b[0] for b in blocks] == ["e1", "e2"]
    assert blocks[0][1] == "Answer one."
    assert "Answer two." in blocks[1][1] and "x = 2" in blocks[1][1] and "After" not in blocks[1][1]
    with pytest.raises(ValueError, match="no solution-end"):
        edition.solution_blocks("```{solution-start} e3\n```\nbody\n")


# ---- status page --------------------------------------------------------------------------------------

def test_status_page_is_never_served_from_the_cache():
    nb = jupytext.read(status_page.STATUS_PAGE)
    assert nb.metadata["mystnb"]["execution_mode"] == "force"


def test_status_table_says_not_measured_and_never_invents_numbers():
    rows = [{"chapter": "a", "title": "A", "seconds": 12.34, "budget": "quick"},
            {"chapter": "b", "title": "B", "seconds": None, "budget": None}]
    table = status_page.status_table(rows, None)
    assert "| A (`a`) | 12.3 | quick | not measured |" in table
    assert "| B (`b`) | not run | ? | not measured |" in table
    table = status_page.status_table(rows, {"chapters": {"a": 300.0, "b": None}})
    assert "| 300.0 |" in table and "| failed |" in table
    assert "| not measured | not measured |" in table  # no T4 estimate: said so
    t4 = {"budget": "standard", "chapters": {"a": {"rc": 0, "wall_s": 61.2, "t4_estimate": {"total": 7.6}},
                                             "b": {"rc": "timeout", "wall_s": 3600.0}}}
    table = status_page.status_table(rows, None, t4)
    assert "standard, T4 (s), estimate |" in table and "| 61 | 8 |" in table and "| timed out | - |" in table


@pytest.mark.slow
def test_run_times_come_from_the_current_sources_record(tmp_path):
    """Execute a tiny chapter into a fresh cache: its row shows the run; after an edit it shows 'not run'."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/ch\n")
    md = tmp_path / "book" / "ch.md"
    md.write_text((ROOT / "book" / "status.md").read_text().split("```{code-cell}")[0].replace("mystnb:\n  execution_mode: force\n", "")
                  + "```{code-cell} ipython3\nimport localdiff_lib as ld\nprint(ld.describe())\n```\n")
    nb = course.read_chapter(md)
    res = single_nb_execution(nb, cwd=str(tmp_path), allow_errors=False, timeout=120, meta_override=True)
    assert res.err is None
    cache = get_cache(str(tmp_path / "cache"))
    rec = cache.add_nb_to_project(str(md), read_data={"type": "plugin", "name": "myst_nb_md"})
    cache.cache_notebook_bundle(CacheBundleIn(nb, rec.uri, data={"execution_seconds": res.time}),
                                check_validity=False, overwrite=True)
    (row,) = status_page.chapter_run_times(tmp_path, tmp_path / "cache")
    assert row["seconds"] == pytest.approx(res.time) and row["seconds"] > 0
    assert row["budget"] in ("quick", "standard", "full") and row["torch"] and row["python"]
    before = os.environ.get("LOCALDIFF_BUDGET")
    measured = status_page.measure(tmp_path / "gpu.json", budget="quick", root=tmp_path)
    assert json.loads((tmp_path / "gpu.json").read_text()) == measured
    assert measured["budget"] == "quick" and measured["chapters"]["ch"] > 0 and measured["torch"]
    assert os.environ.get("LOCALDIFF_BUDGET") == before, "measure() must leave the environment as it found it"
    md.write_text(md.read_text().replace("print(ld.describe())", "print(ld.describe(), 1)"))
    (row,) = status_page.chapter_run_times(tmp_path, tmp_path / "cache")
    assert row["seconds"] is None, "a changed chapter must not show the time of its previous version"


# ---- offline MathJax ----------------------------------------------------------------------------------

def _fake_config(student=False):
    return SimpleNamespace(html_static_path=["_static"], mathjax_path="https://cdn/mathjax.js", html_theme_options={},
                           localdiff_student=student, html_copy_source=True, html_show_sourcelink=True)


def test_local_mathjax_is_served_from_the_build(tmp_path, monkeypatch):
    monkeypatch.setattr(mathjax, "OFFLINE_STATIC", tmp_path)
    script = tmp_path / mathjax.MATHJAX_PATH
    script.parent.mkdir(parents=True)
    script.write_text("// mathjax")
    config = _fake_config()
    sphinx_ext._configure(None, config)
    assert config.mathjax_path == "mathjax/es5/tex-mml-chtml.js"
    assert config.html_static_path == ["_static", str(tmp_path)]


def test_without_local_mathjax_the_cdn_stays_unless_required(tmp_path, monkeypatch):
    from sphinx.errors import ConfigError

    monkeypatch.setattr(mathjax, "OFFLINE_STATIC", tmp_path)
    monkeypatch.delenv(mathjax.REQUIRE_MATHJAX_ENV, raising=False)
    config = _fake_config(student=True)
    sphinx_ext._configure(None, config)
    assert config.mathjax_path == "https://cdn/mathjax.js"
    assert config.html_copy_source is False          # the student edition never ships page sources
    assert config.html_theme_options["use_download_button"] is False
    monkeypatch.setenv(mathjax.REQUIRE_MATHJAX_ENV, "1")
    with pytest.raises(ConfigError, match="python -m localdiff_lib.publish mathjax"):
        sphinx_ext._configure(None, _fake_config())


# ---- executing the assignments ------------------------------------------------------------------------

def _execute(path: Path, allow_errors: bool):
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _executed(md: Path):
    """The instructor notebook executed: from the book's cache if tests/book/test_chapters.py already ran this version
    of it (it executes every page of the toc), else executed here."""
    from jupyter_cache import get_cache

    try:
        record = get_cache(str(status_page.CACHE)).match_cache_notebook(course.read_chapter(md))
        return get_cache(str(status_page.CACHE)).get_cache_bundle(record.pk).nb
    except KeyError:
        return _execute(md, allow_errors=False)


@pytest.mark.slow
@pytest.mark.parametrize("md", INSTRUCTOR, ids=IDS)
def test_instructor_solution_passes_every_check(md):
    nb = _executed(md)
    checks = [c for c in nb.cells if c.cell_type == "code" and "grading.check_" in c.source]
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "\u2713" in text, f"{md.name}: the check {cell.source!r} printed no \u2713: {text!r}"


@pytest.mark.slow
@pytest.mark.parametrize("md", INSTRUCTOR, ids=IDS)
def test_student_stub_fails_every_check_with_the_stub_message(md):
    student = md.parent / "student" / md.name
    nb = _execute(student, allow_errors=True)
    stubbed = set(re.findall(r"(?:def|class) (\w+)\(", "\n".join(
        c.source for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source)))
    checks = [c for c in nb.cells if c.cell_type == "code" and "grading.check_" in c.source]
    assert checks
    for cell in checks:
        errs = _errors(cell)
        assert errs, f"{student.name}: the check {cell.source!r} passed on the stub"
        assert errs[0]["ename"] == "GradingError", f"{cell.source!r} failed with {errs[0]['ename']}: {errs[0]['evalue']}"
        assert "is not written yet" in errs[0]["evalue"], errs[0]["evalue"]
        named = re.match(r"`(\w+)", errs[0]["evalue"]).group(1)
        assert named in stubbed or named == "make_model", f"the message names {named!r}, not a stubbed function"
    unset: set[str] = set()   # names that a failed cell would have assigned
    for cell in nb.cells:   # whatever else fails on the stub fails because of the stub, nothing else
        for err in _errors(cell):
            if err["ename"] == "NameError":
                name = re.search(r"name '(\w+)' is not defined", err["evalue"]).group(1)
                assert name in unset, f"{cell.source!r} needs {name!r}, which no failed cell was meant to define"
            else:
                assert err["ename"] in ("GradingError", "NotImplementedError"), (cell.source, err["ename"], err["evalue"])
            for m in re.finditer(r"^([\w ,]+?)\s*=[^=]", cell.source, re.M):
                unset.update(n.strip() for n in m.group(1).split(","))


# ---- the student build ----------------------------------------------------------------------------------

MINI_PAGE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# A page

Visible text before the exercises.

```{exercise}
:label: ex-one

Compute the thing.
```

```{solution} ex-one
:class: dropdown

The hidden answer is seventeen quokkas jumping over lazy wombats.
```

````{solution-start} ex-one
:class: dropdown
````

Gated explanation mentions purple elephants dancing a slow tango.

```{code-cell} ipython3
secret_solution_value = 41 + 1
```

````{solution-end}
````

Visible closing paragraph.
"""

SECRETS = ["seventeen quokkas", "purple elephants", "secret_solution_value"]


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="ignore") for p in folder.rglob("*")
                     if p.is_file() and p.suffix in {".html", ".js", ".txt", ".json", ".ipynb", ".md"})


@pytest.mark.slow
def test_student_build_removes_plain_and_gated_solutions(tmp_path):
    """A one-page book built twice: the instructor edition shows both solutions, the student edition neither."""
    from jupyter_book.sphinx import build_sphinx

    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "page.md").write_text(MINI_PAGE)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (tmp_path / "_config.yml").write_text(
        'title: mini\nonly_build_toc_files: true\nexclude_patterns: ["_build"]\n'
        'execute:\n  execute_notebooks: "force"\n'
        "repository:\n  url: https://github.com/example/mini\n  branch: main\n"
        "launch_buttons:\n  colab_url: https://colab.research.google.com\n"
        "sphinx:\n  extra_extensions: [sphinx_proof, sphinx_exercise, localdiff_lib.publish.sphinx_ext]\n")
    status = build_sphinx(str(tmp_path), str(tmp_path / "_build" / "html"), noconfig=True,
                          path_config=str(tmp_path / "_config.yml"), warningiserror=True, quiet=True,
                          confoverrides={"external_toc_path": str(tmp_path / "_toc.yml"), "latex_individualpages": False})
    assert status == 0
    instructor = _all_text(tmp_path / "_build" / "html")
    assert all(s in instructor for s in SECRETS), "the instructor edition must show the solutions"
    assert (tmp_path / "_build" / "html" / "_sources" / "book" / "page.ipynb").exists()   # the download copy
    student_html = edition.student_build(tmp_path)
    student = _all_text(student_html)
    for secret in SECRETS:
        assert secret not in student, f"{secret!r} reached the student HTML"
    page = (student_html / "book" / "page.html").read_text()
    assert "Visible text before" in page and "Visible closing paragraph" in page and 'class="exercise' in page
    assert not (student_html / "_sources").exists()


def _html_text(path: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(errors="ignore"), "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    return re.sub(r"\s+", " ", soup.get_text(""))


def _probes(body: str) -> list[str]:
    """Specific strings of a solution body that its HTML rendering contains verbatim."""
    code, prose, inside = [], [], False
    for line in body.split("\n"):
        if re.match(r"^\s*(`{3,}|~{3,})", line):
            inside = not inside
            continue
        (code if inside else prose).append(line)
    probes = [c.strip() for c in code if len(c.strip()) >= 16 and re.search(r"[A-Za-z]", c)]
    text = " ".join(prose)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|\{[\w:-]+\}`[^`]*`|`[^`]*`", " | ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    probes += [m.group(0) for m in re.finditer(r"(?:[A-Za-z]+ ){5,}[A-Za-z]+", text)]
    return [re.sub(r"\s+", " ", p) for p in probes]


def test_built_student_html_contains_no_solution_text():
    """Every solution of every page (and every assignment's solution code) is absent from the student HTML."""
    _need(ROOT / "_build" / "html", "build the book first (jupyter-book build . --builder html)")
    _need(edition.STUDENT_HTML, "build the student edition first (python -m localdiff_lib.publish student-build)")
    pages = [md for md in course.chapters() if md.exists()]
    solutions = [(md, label, body) for md in pages for label, body in edition.solution_blocks(md.read_text())]
    solutions += [(md, "assignment solution", f"```\n{region}\n```") for md in INSTRUCTOR for region in _solution_regions(md)]
    outside = re.sub(r"\s+", " ", "\n".join(
        edition.strip_solutions(md.read_text()) if md in INSTRUCTOR else
        _strip_blocks(md.read_text()) for md in pages + [m.parent / "student" / m.name for m in INSTRUCTOR]))
    instructor = " ".join(_html_text(p) for p in (ROOT / "_build" / "html").rglob("*.html"))
    student = re.sub(r"\s+", " ", " ".join(
        _html_text(p) if p.suffix == ".html" else p.read_text(errors="ignore")
        for p in edition.STUDENT_HTML.rglob("*") if p.is_file() and p.suffix in {".html", ".js", ".txt", ".ipynb", ".json", ".md"}))
    checked, unseen = 0, []
    for md, label, body in solutions:
        probes = [p for p in _probes(body) if p in instructor and p not in outside]
        if not probes:
            unseen.append(f"{md.stem}:{label}")
            continue
        for probe in probes:
            assert probe not in student, f"solution text of {md.stem} ({label}) reached the student HTML: {probe!r}"
        checked += 1
    assert checked >= 1, "no solution text was found in the instructor HTML: this test would prove nothing"
    assert len(unseen) <= max(1, len(solutions) // 10), f"solutions with no text to look for: {unseen}"


def _strip_blocks(text: str) -> str:
    # solution_blocks drops option lines (":class:", a code cell's ":tags:") from a body: drop them here too, so that
    # a solution holding a hidden code cell is still found in, and removed from, the page's text
    text = "\n".join(line for line in text.split("\n") if not re.match(r"^:\w[\w-]*:", line))
    for _, body in edition.solution_blocks(text):
        text = text.replace(body, " ")
    return text


def test_built_student_edition_shows_the_student_assignments():
    _need(edition.STUDENT_HTML, "build the student edition first (python -m localdiff_lib.publish student-build)")
    for md in INSTRUCTOR:
        page = edition.STUDENT_HTML / "book" / "assignments" / "student" / f"{md.stem}.html"
        assert page.exists(), f"{page.relative_to(ROOT)} is missing from the student edition"
        assert "raise NotImplementedError" in html.unescape(_html_text(page))
        assert not (edition.STUDENT_HTML / "book" / "assignments" / f"{md.stem}.html").exists()


def test_lab_export_hook_copies_the_states_into_static(tmp_path, monkeypatch):
    """After an HTML build with the transition lab, the precomputed states land in _static/lab (and only then)."""
    from localdiff_lib.publish import lab_export

    cache = tmp_path / "cache"
    calls = []

    def fake_export(out):
        calls.append(Path(out))
        (Path(out) / "x0").mkdir(parents=True, exist_ok=True)
        (Path(out) / "x0" / "i0.png").write_bytes(b"png")
        (Path(out) / "manifest.json").write_text("{}")
        return {"states": 1, "files": {"count": 1, "bytes": 3}}

    monkeypatch.setattr(sphinx_ext, "LAB_EXPORT", cache)
    monkeypatch.setattr(lab_export, "export", fake_export)
    monkeypatch.delenv(sphinx_ext.LAB_ENV, raising=False)

    def app(docs, fmt="html"):
        out = tmp_path / "html"
        return SimpleNamespace(builder=SimpleNamespace(format=fmt), env=SimpleNamespace(found_docs=set(docs)),
                               outdir=str(out))

    sphinx_ext._export_lab(app({"book/intro"}), None)                       # no lab page: nothing
    sphinx_ext._export_lab(app({"book/transition_lab"}, fmt="latex"), None)  # not HTML: nothing
    sphinx_ext._export_lab(app({"book/transition_lab"}), RuntimeError())   # a failed build: nothing
    monkeypatch.setenv(sphinx_ext.LAB_ENV, "0")
    sphinx_ext._export_lab(app({"book/transition_lab"}), None)              # switched off
    assert calls == [] and not (tmp_path / "html").exists()
    monkeypatch.delenv(sphinx_ext.LAB_ENV)
    stale = tmp_path / "html" / "_static" / "lab" / "old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    sphinx_ext._export_lab(app({"book/intro", "book/transition_lab"}), None)
    assert calls == [cache]
    assert (tmp_path / "html" / "_static" / "lab" / "x0" / "i0.png").read_bytes() == b"png"
    assert (tmp_path / "html" / "_static" / "lab" / "manifest.json").exists() and not stale.exists()


def test_t4_estimates_leave_out_chapters_whose_code_changed(tmp_path):
    # a measurement belongs to the script it measured: after an edit the chapter shows "not measured" again
    import hashlib

    from localdiff_lib.publish.gpu import script_of

    md = ROOT / "book" / "notation.md"
    now = hashlib.sha256(script_of(md).encode()).hexdigest()
    entry = {"rc": 0, "wall_s": 3.0, "t4_estimate": {"total": 1.0}}
    f = tmp_path / "t4.json"
    f.write_text(json.dumps({"budget": "standard", "chapters": {"notation": dict(entry, script_sha256=now),
                                                                 "intro": dict(entry, script_sha256="0" * 64),
                                                                 "locality": entry}}))
    assert list(status_page.t4_estimates(f)["chapters"]) == ["notation"]
    assert status_page.t4_estimates(tmp_path / "missing.json") is None
