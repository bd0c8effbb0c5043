"""The rendered book in a real browser: headless Chromium (Debian's ``chromium``) loads built pages from a local
HTTP server and we read the DOM after its scripts ran.

Checked on several pages: math is typeset by MathJax served from the build itself (no CDN; every request the
browser makes goes to the local server and succeeds), figures are present and load, theorem and exercise boxes
render (solutions too, in the instructor edition only), and the Colab button points at an ``.ipynb`` that exists
in the repository. Screenshots go to ``_build/screenshots/`` (CI keeps them as artifacts).

These tests skip when ``_build/html`` or Chromium is absent (the README's ``python -m pytest`` runs before the
build). CI calls them again after building with ``LOCALDIFF_REQUIRE_BUILD=1``, which turns every skip into a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from localdiff_lib import classroom, course

ROOT = course.ROOT
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
REQUIRE = os.environ.get("LOCALDIFF_REQUIRE_BUILD") == "1"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=20000"]   # small /dev/shm in containers
COLAB = "https://colab.research.google.com/github/"


def _skip_or_fail(msg: str):
    if REQUIRE:
        pytest.fail(msg + " (LOCALDIFF_REQUIRE_BUILD=1 requires it)")
    pytest.skip(msg)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    _skip_or_fail("Chromium is not installed (Debian: apt-get install chromium)")


class _Server:
    """A static HTTP server on 127.0.0.1 for one folder that records every request (path, status)."""

    def __init__(self, folder: Path):
        self.requests: list[tuple[str, int]] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                log.append((self.path.split("?")[0], int(code) if str(code).isdigit() else 0))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Browser:
    def __init__(self, folder: Path):
        self.exe = _chromium()
        self.folder = folder
        self.server = _Server(folder)

    def _run(self, extra: list[str], page: str) -> str:
        with tempfile.TemporaryDirectory() as profile:
            res = subprocess.run([self.exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, self.server.url + page],
                                 capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            raise RuntimeError(f"chromium failed on {page} ({res.returncode}): {res.stderr[-2000:]}")
        return res.stdout

    def dom(self, page: str) -> tuple[str, list[tuple[str, int]]]:
        """The page's DOM after its scripts ran, and the requests the browser made for it."""
        start = len(self.server.requests)
        dom = self._run(["--dump-dom"], page)
        return dom, self.server.requests[start:]

    def screenshot(self, page: str, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        out = SHOTS / f"{name}.png"
        self._run([f"--screenshot={out}", "--window-size=1280,1600"], page)
        return out


def stale_pages(html: Path, toc_pages) -> list[str]:
    """The toc pages whose built HTML in ``html`` is missing or older than their source."""
    stale = []
    for md in toc_pages:
        built = html / md.relative_to(ROOT).with_suffix(".html")
        if md.exists() and (not built.exists() or built.stat().st_mtime < md.stat().st_mtime):
            stale.append(md.relative_to(ROOT).as_posix())
    return stale


@pytest.fixture(scope="module")
def browser():
    if not (HTML / "index.html").exists():
        _skip_or_fail(f"{HTML.relative_to(ROOT)} is absent: build the book first (jupyter-book build . --builder html)")
    stale = stale_pages(HTML, course.chapters())
    if stale:
        _skip_or_fail(f"{HTML.relative_to(ROOT)} is older than {stale[:3]}{' ...' if len(stale) > 3 else ''}: rebuild the book")
    b = Browser(HTML)
    yield b
    b.server.close()


def _soup(text: str):
    from bs4 import BeautifulSoup

    return BeautifulSoup(text, "html.parser")


def _pages_with(pattern: str) -> list[str]:
    return sorted(p.relative_to(HTML).as_posix() for p in (HTML / "book").rglob("*.html")
                  if re.search(pattern, p.read_text(errors="ignore")))


def _requested_ok(requests, path: str) -> bool:
    return any(p.endswith(path) and code == 200 for p, code in requests)


def _check_page(browser: Browser, page: str) -> dict:
    """Render ``page`` and check what every page must satisfy; return counts for the caller's own checks."""
    raw = _soup((browser.folder / page).read_text())
    dom_text, requests = browser.dom(page)
    dom = _soup(dom_text)
    failed = [(p, c) for p, c in requests if c != 200 and p != "/favicon.ico"]   # browsers always ask for one
    assert not failed, f"{page}: the browser's requests failed: {failed[:5]}"
    n_math = len(raw.select(".math"))
    if n_math:
        script = [s["src"] for s in raw.find_all("script", src=True) if "mathjax" in s["src"].lower()]
        assert script, f"{page} has math but loads no MathJax"
        assert not script[0].startswith(("http:", "https:", "//")), (
            f"{page} loads MathJax from {script[0]}: run `python -m localdiff_lib.classroom mathjax` before the build")
        assert _requested_ok(requests, "/mathjax/es5/tex-mml-chtml.js"), f"{page}: MathJax was not served by the build"
        rendered = dom.find_all("mjx-container")
        assert len(rendered) >= n_math, f"{page}: {len(rendered)} formulas typeset out of {n_math}"
        assert not dom.select("mjx-merror, [data-mjx-error]"), f"{page}: MathJax reported a TeX error"
        assert any(p.endswith(".woff") for p, c in requests), f"{page}: no MathJax font was loaded from the build"
    images = [img["src"] for img in dom.select(".cell_output img, .output img")]
    for src in images:
        assert _requested_ok(requests, src.split("/")[-1]), f"{page}: figure {src} was not loaded"
        assert (browser.folder / page).parent.joinpath(src).resolve().stat().st_size > 1000, f"{page}: {src} is empty"
    colab = [a["href"] for a in raw.find_all("a", href=True) if a["href"].startswith(COLAB)]
    for href in colab:
        assert href.endswith(".ipynb"), f"{page}: the Colab button points at {href}, not a notebook"
        rel = href.split("/blob/", 1)[1].split("/", 1)[1]
        assert (ROOT / rel).is_file(), f"{page}: the Colab button opens {rel}, which is not in the repository"
    return {"math": n_math, "images": len(images), "colab": colab, "dom": dom, "requests": requests}


def test_built_intro_and_notation_pages(browser):
    for page, name in [("book/intro.html", "intro"), ("book/notation.html", "notation")]:
        info = _check_page(browser, page)
        assert info["math"] >= (1 if name == "intro" else 10), f"{page}: expected typeset math"
        assert info["colab"], f"{page}: no Colab launch button"
        browser.screenshot(page, name)
    assert _soup((HTML / "index.html").read_text()).find("meta", attrs={"http-equiv": "Refresh"}) is not None


def test_built_theorem_exercise_and_figure_boxes(browser):
    pages = [p for p in _pages_with(r'class="proof (theorem|proposition|lemma)') if p in _pages_with(r'class="exercise')]
    assert pages, "no built page has both a theorem box and an exercise"
    with_figures = [p for p in pages if p in _pages_with(r'<img[^>]+src="[^"]*_images/')]
    page = (with_figures or pages)[0]
    info = _check_page(browser, page)
    dom = info["dom"]
    theorems = dom.select("div.proof.theorem, div.proof.proposition, div.proof.lemma")
    assert theorems and theorems[0].select_one(".admonition-title"), f"{page}: theorem box without its title"
    exercises = dom.select("div.exercise")
    assert exercises and "Exercise" in exercises[0].select_one(".admonition-title").get_text(), f"{page}: no exercise box"
    assert dom.select("div.solution"), f"{page}: the instructor edition shows no solution"
    if with_figures:
        assert info["images"] >= 1
    browser.screenshot(page, Path(page).stem)


def test_built_assignment_and_status_pages(browser):
    assignments = [f"book/assignments/{md.stem}.html" for md in classroom.instructor_assignments()
                   if (HTML / "book" / "assignments" / f"{md.stem}.html").exists()]
    assert assignments, "no assignment page was built"
    for page in assignments[:1] + ["book/status.html"]:
        info = _check_page(browser, page)
        assert info["images"] >= 1, f"{page}: expected a figure"
        browser.screenshot(page, Path(page).stem)
    status = _soup((HTML / "book" / "status.html").read_text())
    rows = status.select("table tbody tr")
    chapters = [md for md in course.chapters() if md.exists() and course.is_notebook(md) and md.stem != "status"]
    assert len(rows) == len(chapters), f"the status table has {len(rows)} rows for {len(chapters)} chapters"
    for row in rows:
        cells = [td.get_text(strip=True) for td in row.find_all("td")]
        assert re.fullmatch(r"\d+\.\d", cells[1]), f"the status page shows no run time for {cells[0]}: {cells}"


def test_built_student_edition_hides_solutions(browser):
    if not (classroom.STUDENT_HTML / "index.html").exists():
        _skip_or_fail("_build/student/html is absent: run `python -m localdiff_lib.classroom student-build`")
    if stale_pages(classroom.STUDENT_HTML, [md for md in course.chapters() if md.parent.name != "assignments"]):
        _skip_or_fail("_build/student/html is older than the sources: run `python -m localdiff_lib.classroom student-build`")
    student = Browser(classroom.STUDENT_HTML)
    try:
        pages = [p for p in _pages_with(r'class="exercise') if (classroom.STUDENT_HTML / p).exists()]
        assert pages, "no page with exercises in the student edition"
        info = _check_page(student, pages[0])
        assert info["dom"].select("div.exercise") and not info["dom"].select("div.solution")
        student.screenshot(pages[0], "student-" + Path(pages[0]).stem)
    finally:
        student.server.close()
