"""Classroom and publishing tools: the student edition, graded assignments, the status page, offline MathJax.

Maintainer tooling like :mod:`localdiff_lib.course` (it needs a checkout of the course repository);
chapters never import it, except the status page (``book/status.md``), which reads the run times from here.

Command line (run from the repository root)::

    python -m localdiff_lib.classroom mathjax        # MathJax 3 from the npm registry into _build/ (offline math)
    python -m localdiff_lib.classroom assignments    # regenerate the student notebooks of book/assignments/
    python -m localdiff_lib.classroom student-build  # _build/student/html: the book with every solution removed
    python -m localdiff_lib.classroom status         # print the chapter run times the status page shows
    python -m localdiff_lib.classroom measure --out book/status_gpu.json   # time every chapter (e.g. full, on a GPU)

It is also a Sphinx extension (``_config.yml`` lists it): it serves MathJax from the build itself when
``python -m localdiff_lib.classroom mathjax`` has put a copy in ``_build/``, in the student build it
removes every solution, and after an HTML build it writes the transition lab's precomputed states
(:mod:`localdiff_lib.lab_export`) into ``_static/lab/`` (``LOCALDIFF_LAB_EXPORT=0`` skips that). (sphinx-exercise 1.2.1's own ``hide_solutions``
cannot be used: it drops the ``solution-start`` marker of a gated solution but keeps its ``solution-end`` node
and the gated content between them, and the HTML writer then stops with "unknown node type: solution_end_node". So we let
sphinx-exercise merge the gated blocks as usual and remove the solution nodes afterwards.)
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .course import ROOT, _yaml, chapters, is_notebook, read_chapter

BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
STUDENT_HTML = BUILD / "student" / "html"
GPU_TIMES = ROOT / "book" / "status_gpu.json"
STATUS_PAGE = ROOT / "book" / "status.md"

MATHJAX_VERSION = "3.2.2"
OFFLINE_STATIC = BUILD / "offline_static"            # added to html_static_path when present
MATHJAX_PATH = "mathjax/es5/tex-mml-chtml.js"        # relative to the build's _static/
REQUIRE_MATHJAX_ENV = "LOCALDIFF_REQUIRE_LOCAL_MATHJAX"
LAB_EXPORT = BUILD / "lab"                          # the precomputed transition lab (cache), copied into _static/lab
LAB_STATIC = "lab"                                   # relative to the build's _static/
LAB_PAGE = "transition_lab"                          # the chapter (docname's last part) that shows the static lab
LAB_ENV = "LOCALDIFF_LAB_EXPORT"                     # "0": skip the export (the page then says the states are absent)

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
GENERATED_NOTE = (
    "<!-- Generated from ../{name}.md by `python -m localdiff_lib.classroom assignments`. "
    "Do not edit: edit the instructor notebook and regenerate. -->"
)


# --------------------------------------------------------------------------------------------------
# Offline MathJax
# --------------------------------------------------------------------------------------------------

def local_mathjax() -> Path | None:
    """The MathJax entry script inside ``_build/offline_static`` if it has been fetched, else ``None``."""
    script = OFFLINE_STATIC / MATHJAX_PATH
    return script if script.is_file() else None


def _keep_mathjax_file(name: str) -> bool:
    """The es5 build for TeX input and CHTML output (with its fonts, extensions, menu and accessibility parts);
    the other all-in-one bundles, the SVG output and the Node entry point are left out (24 MB -> 8.5 MB)."""
    if name == "package/LICENSE":
        return True
    if not name.startswith("package/es5/"):
        return False
    rest = name[len("package/es5/"):]
    if "/" not in rest and re.fullmatch(r"(tex|mml)-.*\.js|node-main\.js", rest):
        return rest == "tex-mml-chtml.js"
    return not rest.startswith("output/svg")


def fetch_mathjax(version: str = MATHJAX_VERSION) -> Path:
    """Fetch MathJax ``version`` with ``npm pack`` (integrity-checked by npm) and unpack its ``es5/`` build.

    The copy lives in ``_build/offline_static/mathjax`` (never committed); the Sphinx extension of this
    module then serves it from the built book, so math renders without any network.
    """
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed: install Node.js (Debian: apt-get install npm) to fetch MathJax")
    dest = OFFLINE_STATIC / "mathjax"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"mathjax@{version}", "--pack-destination", tmp, "--silent"],
                       check=True, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("mathjax-*.tgz")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as tf:
            members = [m for m in tf.getmembers() if _keep_mathjax_file(m.name)]
            tf.extractall(unpacked, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked / "package"), dest)
    script = local_mathjax()
    if script is None:
        raise RuntimeError(f"mathjax@{version} has no es5/tex-mml-chtml.js; use a MathJax 3 release")
    return script


# --------------------------------------------------------------------------------------------------
# Sphinx extension: offline MathJax, student edition
# --------------------------------------------------------------------------------------------------

def _configure(app, config) -> None:
    script = local_mathjax()
    if script is not None:
        config.html_static_path = [*config.html_static_path, str(OFFLINE_STATIC)]
        config.mathjax_path = MATHJAX_PATH
    elif os.environ.get(REQUIRE_MATHJAX_ENV):
        from sphinx.errors import ConfigError

        raise ConfigError(
            f"{REQUIRE_MATHJAX_ENV} is set but there is no local MathJax in {OFFLINE_STATIC}: "
            "run `python -m localdiff_lib.classroom mathjax` first (without the variable the book falls back to the CDN)."
        )
    if config.localdiff_student:
        # The page sources (_sources/*.md) hold the solutions. Without them sphinx-book-theme also stops copying
        # each executed notebook (solution cells included) into _sources/ for its download button, which goes.
        config.html_copy_source = False
        config.html_show_sourcelink = False
        config.html_theme_options = {**getattr(config, "html_theme_options", {}), "use_download_button": False}


def _remove_solutions(app, doctree) -> None:
    """In the student build, drop every solution node (after sphinx-exercise merged the gated blocks)."""
    if not app.config.localdiff_student:
        return
    from sphinx_exercise.nodes import solution_end_node, solution_node, solution_start_node

    for cls in (solution_node, solution_start_node, solution_end_node):
        for node in list(doctree.findall(cls)):
            node.parent.remove(node)


def _export_lab(app, exception) -> None:
    """After an HTML build that contains the transition lab, put its precomputed states into ``_static/lab/``.

    :func:`localdiff_lib.lab_export.export` computes them into ``_build/lab`` (reused while its fingerprint, i.e.
    settings, shipped checkpoints and code, is unchanged), then they are copied into the HTML output. An error
    fails the build: a page whose sliders load nothing must not be published.
    """
    if exception is not None or getattr(app.builder, "format", "") != "html" or os.environ.get(LAB_ENV) == "0":
        return
    if not any(doc.rsplit("/", 1)[-1] == LAB_PAGE for doc in app.env.found_docs):
        return
    import time

    from sphinx.util import logging

    from .lab_export import export

    t0 = time.perf_counter()
    manifest = export(LAB_EXPORT)
    dest = Path(app.outdir) / "_static" / LAB_STATIC
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(LAB_EXPORT, dest)
    logging.getLogger(__name__).info(
        f"transition lab: {manifest['states']} precomputed states, {manifest['files']['count']} PNG files "
        f"({manifest['files']['bytes'] / 1e6:.2f} MB) in {dest} ({time.perf_counter() - t0:.1f} s)")


def setup(app):
    """Sphinx entry point (``sphinx.extra_extensions`` in ``_config.yml``)."""
    app.add_config_value("localdiff_student", False, "env")
    app.connect("config-inited", _configure)
    app.connect("doctree-read", _remove_solutions)
    app.connect("build-finished", _export_lab)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --------------------------------------------------------------------------------------------------
# Student build
# --------------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>solution|solution-start|solution-end)\}\s*(?P<label>\S*)\s*$")


def solution_blocks(text: str) -> list[tuple[str, str]]:
    """The solutions of a MyST page as ``(label, body)`` pairs: ``{solution}`` directives and gated
    ``{solution-start}`` ... ``{solution-end}`` regions (whose body may hold code cells). Options lines
    (``:class: dropdown``) are dropped. The student-build test looks for these bodies in the student HTML."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or m["kind"] == "solution-end":
            i += 1
            continue
        fence, label = m["fence"], m["label"]
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != fence:   # the directive's own block
            j += 1
        body = lines[i + 1: j]
        if m["kind"] == "solution-start":
            k = j + 1
            while k < len(lines) and not (_FENCE.match(lines[k]) and _FENCE.match(lines[k])["kind"] == "solution-end"):
                k += 1
            if k == len(lines):
                raise ValueError(f"solution-start {label!r} at line {i + 1} has no solution-end")
            body += lines[j + 1: k]
            j = k
        out.append((label, "\n".join(line for line in body if not re.match(r"^:\w[\w-]*:", line)).strip()))
        i = j + 1
    return out


def student_toc(root: Path = ROOT, out: Path | None = None, toc: Path | None = None) -> Path:
    """Write the student edition's table of contents (from ``toc``, default ``_toc.yml``): every assignment
    replaced by its student notebook."""
    text = (toc or root / "_toc.yml").read_text()
    names = "|".join(re.escape(md.stem) for md in instructor_assignments(root)) or "(?!)"
    new = re.sub(rf"(file:\s*book/assignments/)({names})\s*$", r"\1student/\2", text, flags=re.M)
    out = out or root / "_build" / "student" / "_toc.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Generated by localdiff_lib.classroom.student_toc from _toc.yml; do not edit.\n" + new)
    return out


def student_build(root: Path = ROOT, out: Path | None = None, strict: bool = True, toc: Path | None = None) -> Path:
    """Build the student edition of the book into ``_build/student/html`` and return that folder.

    Same sources, configuration and execution cache as the instructor build (unchanged chapters are not
    executed again); solutions removed, assignments replaced by their generated student notebooks (shown
    unexecuted), page sources not copied. Raises ``RuntimeError`` if Sphinx reports a warning or an error.
    """
    from jupyter_book.sphinx import build_sphinx

    out = out or root / "_build" / "student"
    toc = student_toc(root, out / "_toc.yml", toc)
    config = _yaml(root / "_config.yml")
    cache = Path(config.get("execute", {}).get("cache", "_build/.jupyter_cache"))
    excluded = list(config.get("execute", {}).get("exclude_patterns", [])) + ["*/assignments/student/*"]
    result = build_sphinx(
        str(root), str(out / "html"), noconfig=True, path_config=str(root / "_config.yml"),
        confoverrides={
            "external_toc_path": toc.as_posix(),
            "latex_individualpages": False,
            "nitpicky": strict,
            "localdiff_student": True,
            "nb_execution_cache_path": str(cache if cache.is_absolute() else root / cache),
            "nb_execution_excludepatterns": excluded,
        },
        warningiserror=strict, keep_going=True,
    )
    if result != 0:
        raise RuntimeError(f"the student build failed (status {result!r}); see the Sphinx messages above")
    return out / "html"


# --------------------------------------------------------------------------------------------------
# Assignments: student notebooks generated from instructor notebooks
# --------------------------------------------------------------------------------------------------

def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a code cell by a stub.

    The stub is ``raise NotImplementedError(...)`` at the indentation of the ``BEGIN`` line, so a
    function body keeps its signature and docstring and fails loudly until the student fills it in.
    """
    lines, out, inside = source.split("\n"), [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside is not None:
                raise ValueError(f"{where}: nested {BEGIN!r} at line {i + 1}; close the first region with {END!r}")
            inside = line[: len(line) - len(line.lstrip())]
            out.append(f'{inside}raise NotImplementedError("write your solution here")')
        elif stripped == END:
            if inside is None:
                raise ValueError(f"{where}: {END!r} at line {i + 1} without a {BEGIN!r} before it")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"{where}: {BEGIN!r} is never closed with {END!r}")
    return "\n".join(out)


def instructor_assignments(root: Path = ROOT) -> list[Path]:
    """The instructor notebooks: every notebook page ``book/assignments/*.md`` (not the plain pages), sorted."""
    return sorted(md for md in (root / "book" / "assignments").glob("*.md") if is_notebook(md))


def student_notebook(md: Path):
    """The student version of an instructor notebook, as a jupytext notebook (solutions replaced by stubs)."""
    import jupytext

    nb = jupytext.read(md)
    # the instructor's hidden assert cells check claims about the solutions: they have no place in the stub
    nb.cells = [c for c in nb.cells if "remove-cell" not in c.metadata.get("tags", [])]
    n_regions = 0
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and BEGIN in cell.source:
            n_regions += cell.source.count(BEGIN)
            cell.source = strip_solutions(cell.source, where=f"{md.name}, code cell {k}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if n_regions == 0:
        raise ValueError(f"{md.name} has no {BEGIN!r} region: an assignment needs at least one solution to remove")
    first_md = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    note = GENERATED_NOTE.format(name=md.stem)
    nb.cells[first_md].source = note + "\n\n" + nb.cells[first_md].source
    return nb


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", []))) for c in nb.cells]


def generate_assignments(root: Path = ROOT, check: bool = False) -> list[Path]:
    """Write ``book/assignments/student/NAME.md`` and ``.ipynb`` for every instructor notebook.

    With ``check=True`` nothing is written; the paths whose committed student version differs from a
    fresh generation (compared cell by cell, so a jupytext upgrade alone changes nothing) are returned.
    """
    import jupytext

    stale = []
    for md in instructor_assignments(root):
        nb = student_notebook(md)
        student_dir = root / "book" / "assignments" / "student"
        for path, fmt in ((student_dir / f"{md.stem}.md", "md:myst"), (student_dir / f"{md.stem}.ipynb", "ipynb")):
            if path.exists() and _cells(jupytext.read(path)) == _cells(nb):
                continue
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                jupytext.write(nb, path, fmt=fmt)
    return stale


# --------------------------------------------------------------------------------------------------
# Status page: chapter run times from the execution cache
# --------------------------------------------------------------------------------------------------

DESCRIBE = re.compile(r"budget=(\w+) device=(.+?) torch=(\S+)")




def _title(md: Path) -> str:
    """The page's first level-1 heading (outside code blocks), else its file stem."""
    text = re.sub(r"^(`{3,}).*?^\1", "", md.read_text(), flags=re.M | re.S)
    m = re.search(r"^# (.+)$", text, re.M)
    return m.group(1).strip() if m else md.stem


def chapter_run_times(root: Path = ROOT, cache_path: Path | None = None) -> list[dict]:
    """For every notebook page of ``_toc.yml`` except the status page: its last successful run, from the cache.

    Each row: ``chapter`` (file stem), ``title``, ``seconds`` (``None`` if the current version of the
    chapter has not run yet), ``budget``, ``device`` and ``torch`` (parsed from the ``describe()`` line the
    chapter printed), ``python`` (the kernel's version) and ``when`` (UTC time of the run). Only the run of
    the chapter's *current* source counts: an older version's record does not match.
    """
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_path or root / "_build" / ".jupyter_cache"))
    rows = []
    for md in chapters(root):
        if not (md.exists() and is_notebook(md)) or md.stem == STATUS_PAGE.stem:
            continue
        row = {"chapter": md.stem, "title": _title(md), "seconds": None, "budget": None, "device": None,
               "torch": None, "python": None, "when": None}
        try:
            record = cache.match_cache_notebook(read_chapter(md))
        except KeyError:
            rows.append(row)
            continue
        row["seconds"] = record.data.get("execution_seconds")
        row["when"] = record.created.strftime("%Y-%m-%d %H:%M UTC")
        nb = cache.get_cache_bundle(record.pk).nb
        row["python"] = nb.metadata.get("language_info", {}).get("version")
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                m = DESCRIBE.search(out.get("text", "") or "")
                if m and row["budget"] is None:
                    row["budget"], row["device"], row["torch"] = m.groups()
        rows.append(row)
    return rows


def gpu_run_times(path: Path = GPU_TIMES) -> dict | None:
    """The committed GPU measurements (``book/status_gpu.json``, written by ``measure``), or ``None``."""
    return json.loads(path.read_text()) if path.exists() else None


def measure(out: Path, budget: str | None = None, root: Path = ROOT, only: list[str] | None = None) -> dict:
    """Execute every notebook chapter once (in ``budget``) and write their run times to ``out`` as JSON.

    Meant for the GPU measurements the status page shows (``--budget full`` on one GPU); the file records the
    device, the versions and the date, so the numbers never travel without where they came from. A chapter
    that fails is recorded as ``null``.
    """
    import datetime

    import torch
    from jupyter_cache.executors.utils import single_nb_execution

    from .config import ENV_VAR, budget as current_budget, describe

    old = os.environ.get(ENV_VAR)
    if budget is not None:
        os.environ[ENV_VAR] = budget          # the kernels inherit it
    try:
        result = {"budget": current_budget(), "describe": describe(), "python": platform.python_version(),
                  "torch": torch.__version__,
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "chapters": {}}
        for md in chapters(root):
            if not (md.exists() and is_notebook(md)) or md.stem == STATUS_PAGE.stem or (only and md.stem not in only):
                continue
            run = single_nb_execution(read_chapter(md), cwd=str(md.parent), allow_errors=False, timeout=3600,
                                      meta_override=True)
            result["chapters"][md.stem] = None if run.err is not None else round(run.time, 1)
            print(f"{md.stem}: {'failed' if run.err is not None else f'{run.time:.1f} s'}", flush=True)
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def status_table(rows: list[dict], gpu: dict | None) -> str:
    """The status table as Markdown (the status page displays it)."""
    gpu_chapters = (gpu or {}).get("chapters", {})
    lines = ["| chapter | quick, CI (s) | budget seen | full, GPU (s) |", "| --- | ---: | --- | ---: |"]
    for r in rows:
        quick = f"{r['seconds']:.1f}" if r["seconds"] is not None else "not run"
        g = gpu_chapters.get(r["chapter"])
        full = f"{g:.1f}" if isinstance(g, (int, float)) else ("failed" if r["chapter"] in gpu_chapters else "not measured")
        lines.append(f"| {r['title']} (`{r['chapter']}`) | {quick} | {r['budget'] or '?'} | {full} |")
    return "\n".join(lines)


def _main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m localdiff_lib.classroom", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("mathjax", help="fetch MathJax 3 into _build/offline_static (needs npm)")
    a = sub.add_parser("assignments", help="regenerate the student notebooks of book/assignments/")
    a.add_argument("--check", action="store_true", help="only report stale student notebooks (exit 1 if any)")
    sub.add_parser("student-build", help="build _build/student/html, the book without solutions")
    sub.add_parser("status", help="print the chapter run times from the execution cache")
    m = sub.add_parser("measure", help="execute every chapter and write the run times as JSON")
    m.add_argument("--out", type=Path, default=GPU_TIMES)
    m.add_argument("--budget", choices=["quick", "standard", "full"])
    m.add_argument("--only", nargs="*")
    args = p.parse_args(argv)
    if args.cmd == "mathjax":
        print("MathJax at", fetch_mathjax().relative_to(ROOT))
    elif args.cmd == "assignments":
        stale = generate_assignments(check=args.check)
        for path in stale:
            print(("stale: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
        return 1 if (args.check and stale) else 0
    elif args.cmd == "student-build":
        print("student edition at", student_build().relative_to(ROOT))
    elif args.cmd == "status":
        print(status_table(chapter_run_times(), gpu_run_times()))
    elif args.cmd == "measure":
        measure(args.out, args.budget, only=args.only)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
