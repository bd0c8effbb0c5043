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

from localdiff_lib.publish import chapters as course, student as edition

ROOT = course.ROOT
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
REQUIRE = os.environ.get("LOCALDIFF_REQUIRE_BUILD") == "1"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]   # small /dev/shm in containers
VIRTUAL_TIME_MS = 20000   # how long (virtual time) a page's scripts may run before the DOM is dumped
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
    """A static HTTP server on 127.0.0.1 for one folder that records every request (path, status).

    ``inject``: ``{name: script}``; a request for ``PAGE.html?drive=name`` gets the page with ``<script>script</script>``
    added before ``</body>`` (a test drives the page's controls this way: headless Chromium runs no script of ours).
    """

    def __init__(self, folder: Path, inject: dict[str, str] | None = None):
        self.requests: list[tuple[str, int]] = []
        log = self.requests
        scripts = inject if inject is not None else {}
        self.inject = scripts

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                page, _, query = self.path.partition("?")
                name = query[len("drive="):] if query.startswith("drive=") else None
                if name not in scripts or not page.endswith(".html"):
                    return super().do_GET()
                body = (folder / page.lstrip("/")).read_text().replace(
                    "</body>", f"<script>{scripts[name]}</script></body>", 1).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
    def __init__(self, folder: Path, inject: dict[str, str] | None = None):
        self.exe = _chromium()
        self.folder = folder
        self.server = _Server(folder, inject)

    def _run(self, extra: list[str], page: str, virtual_ms: int = VIRTUAL_TIME_MS) -> str:
        with tempfile.TemporaryDirectory() as profile:
            res = subprocess.run([self.exe, *CHROMIUM_FLAGS, f"--virtual-time-budget={virtual_ms}",
                                  f"--user-data-dir={profile}", *extra, self.server.url + page],
                                 capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            raise RuntimeError(f"chromium failed on {page} ({res.returncode}): {res.stderr[-2000:]}")
        return res.stdout

    def dom(self, page: str, virtual_ms: int = VIRTUAL_TIME_MS) -> tuple[str, list[tuple[str, int]]]:
        """The page's DOM after its scripts ran (for at most ``virtual_ms`` of virtual time), and the requests the
        browser made for it."""
        start = len(self.server.requests)
        dom = self._run(["--dump-dom"], page, virtual_ms)
        return dom, self.server.requests[start:]

    def screenshot(self, page: str, name: str, size: str = "1280,1600", flags: tuple[str, ...] = ()) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        out = SHOTS / f"{name}.png"
        self._run([f"--screenshot={out}", f"--window-size={size}", *flags], page)
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
            f"{page} loads MathJax from {script[0]}: run `python -m localdiff_lib.publish mathjax` before the build")
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
    assignments = [f"book/assignments/{md.stem}.html" for md in edition.instructor_assignments()
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
    if not (edition.STUDENT_HTML / "index.html").exists():
        _skip_or_fail("_build/student/html is absent: run `python -m localdiff_lib.publish student-build`")
    if stale_pages(edition.STUDENT_HTML, [md for md in course.chapters() if md.parent.name != "assignments"]):
        _skip_or_fail("_build/student/html is older than the sources: run `python -m localdiff_lib.publish student-build`")
    student = Browser(edition.STUDENT_HTML)
    try:
        pages = [p for p in _pages_with(r'class="exercise') if (edition.STUDENT_HTML / p).exists()]
        assert pages, "no page with exercises in the student edition"
        info = _check_page(student, pages[0])
        assert info["dom"].select("div.exercise") and not info["dom"].select("div.solution")
        student.screenshot(pages[0], "student-" + Path(pages[0]).stem)
    finally:
        student.server.close()


# --------------------------------------------------------------------------------------------------
# The precomputed transition lab: its sliders work without a kernel
# --------------------------------------------------------------------------------------------------

LAB_PAGE = "book/transition_lab.html"
LAB_SOURCES = [ROOT / "book" / "transition_lab.md", ROOT / "book" / "transition_lab_static.html"]
# the moves: (slider, position); then every t in turn. Positions are indices into the manifest's grid.
LAB_MOVES = [("t", 9), ("r", 5), ("window", 3), ("index", 2), ("t", 0), ("r", 0), ("window", 0), ("index", 3)]

_LAB_DRIVER = """
(async function () {
  var root = document.getElementById("tl-static"), log = [];
  var wait = function (ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); };
  for (var k = 0; k < 400 && root.dataset.ready === "0"; k++) await wait(50);
  async function snap(label) {
    var imgs = Array.from(root.querySelectorAll("img[data-part]"));
    var ok = await Promise.all(imgs.map(function (im) { return im.decode().then(function () { return im.naturalWidth > 0; },
                                                                                 function () { return false; }); }));
    var rec = {label: label, state: root.dataset.state, imgs: {}, loaded: {}, nums: {}, shows: {}, markers: {}};
    imgs.forEach(function (im, k) { rec.imgs[im.dataset.part] = im.getAttribute("src"); rec.loaded[im.dataset.part] = ok[k]; });
    root.querySelectorAll("[data-field]").forEach(function (e) { rec.nums[e.dataset.field] = [e.textContent, e.dataset.value]; });
    root.querySelectorAll("output[data-show]").forEach(function (e) { rec.shows[e.dataset.show] = e.textContent; });
    root.querySelectorAll("svg [data-value]").forEach(function (e) { rec.markers[e.getAttribute("class")] = [e.dataset.t, e.dataset.value]; });
    log.push(rec);
  }
  async function move(name, value) {
    var s = root.querySelector('input[data-control="' + name + '"]');
    s.value = String(value);
    s.dispatchEvent(new Event("input", {bubbles: true}));
    await snap(name + "=" + value);
  }
  if (root.dataset.ready === "1") {
    await snap("initial");
    for (var m of MOVES) await move(m[0], m[1]);
    if (SWEEP) { var n = parseInt(root.querySelector('input[data-control="t"]').max, 10); for (var i = 0; i <= n; i++) await move("t", i); }
  }
  var top = document.querySelector("article") || document.body;   // for the screenshots (scrolling gives a blank one)
  top.insertBefore(root, top.firstChild);
  var pre = document.createElement("pre");
  pre.id = "tl-test-log";
  pre.dataset.ready = root.dataset.ready;
  pre.textContent = JSON.stringify(log);
  document.body.appendChild(pre);
})();
"""


def _lab_driver(moves, sweep: bool) -> str:
    import json

    return _LAB_DRIVER.replace("MOVES", json.dumps(moves)).replace("SWEEP", "true" if sweep else "false")


@pytest.fixture(scope="module")
def lab_html() -> Path:
    """The built HTML with the transition lab: ``_build/html``, or ``LOCALDIFF_LAB_HTML`` (e.g. a throwaway build of
    just this chapter)."""
    html = Path(os.environ.get("LOCALDIFF_LAB_HTML", HTML))
    page = html / LAB_PAGE
    if not page.exists():
        _skip_or_fail(f"{page} is absent: build the book first (jupyter-book build . --builder html)")
    if any(src.stat().st_mtime > page.stat().st_mtime for src in LAB_SOURCES):
        _skip_or_fail(f"{page} is older than its sources: rebuild the book")
    if not (html / "_static" / "lab" / "manifest.json").is_file():
        _skip_or_fail(f"{html}/_static/lab/manifest.json is absent: the build did not export the lab "
                      "(LOCALDIFF_LAB_EXPORT=0?)")
    return html


def test_built_transition_lab_sliders(lab_html):
    import json

    from localdiff_lib.publish import lab_export

    manifest = json.loads((lab_html / "_static" / "lab" / "manifest.json").read_text())
    g = manifest["grid"]
    raw = _soup((lab_html / LAB_PAGE).read_text()).find(id="tl-static")
    assert raw is not None, f"{LAB_PAGE} has no static lab"
    # nothing is fetched from outside the built book: no absolute URL in the block but the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'<>]+", str(raw)))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    browser = Browser(lab_html, inject={"moves": _lab_driver(LAB_MOVES, sweep=True),
                                        "shot": _lab_driver(LAB_MOVES[:4], sweep=False),
                                        "shot0": _lab_driver([], sweep=False)})
    try:
        # on a loaded or slow machine the virtual-time budget can end before the script does (seen once in a CI run
        # of 32 minutes; the same build then passed 5 times in 5): try again with a budget twice as long each time
        for attempt in range(4):
            dom_text, requests = browser.dom(LAB_PAGE + "?drive=moves", VIRTUAL_TIME_MS * 2 ** attempt)
            failed = [(p, c) for p, c in requests if c != 200 and p != "/favicon.ico"]
            assert not failed, f"the browser's requests failed: {failed[:5]}"
            pre = _soup(dom_text).find(id="tl-test-log")
            if pre is not None:
                break
        assert pre is not None and pre["data-ready"] == "1", "the lab did not load its manifest"
        log = json.loads(pre.get_text())
        assert len(log) == 1 + len(LAB_MOVES) + len(g["t"])
        served = {p for p, c in requests if c == 200}
        position = {"t": g["t"].index(0.3), "r": g["r"].index(2), "window": 1, "index": 0}   # the page's initial state
        previous, moved = None, 0
        for rec, step in zip(log, [None, *LAB_MOVES, *[("t", k) for k in range(len(g["t"]))]]):
            same = step is None or position[step[0]] == step[1]
            if step is not None:
                position[step[0]] = step[1]
            assert json.loads(rec["state"]) == position, rec["label"]
            want = lab_export.state(manifest, g["t"][position["t"]], g["r"][position["r"]], g["window"][position["window"]],
                                    g["index"][position["index"]])
            for part, src in rec["imgs"].items():
                assert src.endswith("_static/lab/" + want[part]), (rec["label"], part, src)
                assert rec["loaded"][part], f"{rec['label']}: the {part} image {src} did not load"
                assert any(p.endswith("/_static/lab/" + want[part]) for p in served), (rec["label"], part)
            for field, (text, value) in rec["nums"].items():
                if field == "nfe_by_model":
                    assert json.loads(value) == want[field], rec["label"]
                    continue
                assert float(value) == want[field], (rec["label"], field, value, want[field])   # the manifest's number
                scale, digits = (1e6, 1) if field.endswith("macs") or field == "macs_per_image" else (1, 4)
                assert text == f"{want[field] / scale:.{digits}f}", (rec["label"], field, text)
            assert rec["shows"]["t"] == f"{want['t']:.2f}" and rec["shows"]["r"] == str(want["r"])
            assert rec["shows"]["window"] == manifest["window_names"][position["window"]]
            assert float(rec["markers"]["tl-marker"][0]) == want["t"]
            assert float(rec["markers"]["tl-marker"][1]) == want["cmi_at_t"]
            assert float(rec["markers"]["tl-cross-local"][1]) == want["mse_local"]
            if not same:   # the moved slider changed what it controls
                moved += 1
                changed = {"t": ["x_t", "local", "global"], "r": ["local", "samples"], "window": ["samples"],
                           "index": ["x0", "x_t", "local", "global"]}[step[0]]
                for part in changed:
                    assert rec["imgs"][part] != previous["imgs"][part], (rec["label"], part)
                numbers = {"t": "mse_local", "r": "mse_local", "window": "sample_gap", "index": "mse_global"}[step[0]]
                assert rec["nums"][numbers] != previous["nums"][numbers], (rec["label"], numbers)
            previous = rec
        assert moved == len(log) - 2   # every step moved a slider, except t = 0 at the start of the sweep

        # one state against the library itself: the lab rebuilt from the shipped checkpoints
        settings = manifest["settings_export"]
        lab, _ = lab_export.build_lab(settings["n_images"], settings["times"], n_cmi=settings["n_cmi"],
                                      steps_per_unit_time=settings["steps_per_unit_time"],
                                      n_samples=settings["n_samples"], sample_steps=settings["sample_steps"],
                                      seed=settings["seed"])
        rec = log[len(LAB_MOVES) // 2]   # after moving t, r, window and image once
        s = json.loads(rec["state"])
        v = lab.update(t=g["t"][s["t"]], r=g["r"][s["r"]], window=tuple(g["window"][s["window"]]), index=g["index"][s["index"]])
        for field in ("mse_local", "mse_global", "cmi_at_t", "curve_local_at_t", "curve_global_at_t", "sample_gap"):
            assert float(rec["nums"][field][1]) == pytest.approx(getattr(v, field), rel=1e-4, abs=1e-7), field
        assert float(rec["nums"]["macs_per_image"][1]) == v.record.macs_per_image

        # (the scripts move the lab to the top; without this flag the page is captured before it is painted)
        for drive, name in (("shot0", "initial"), ("shot", "moved")):
            shot = browser.screenshot(f"{LAB_PAGE}?drive={drive}", f"transition_lab_static_{name}", size="1280,1100",
                                      flags=("--run-all-compositor-stages-before-draw",))
            assert shot.stat().st_size > 20_000, f"{shot} looks blank"
    finally:
        browser.server.close()
