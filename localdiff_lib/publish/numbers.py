"""The book's rule for numbers in prose: computed and glued, or a constant on the explained list below.

A number in a page's Markdown (text, math, exercise and solution boxes) passes when it is

* glued: written as ``{glue:text}`name:fmt``` and computed by the page (:func:`localdiff_lib.prose.glue`);
* a small integer (0 to 10): counts, exponents, the constants of formulas, unless it is an approximate quantity
  ("about 6 px", "xi ~ 6"); ratios in words ("a factor of two", "ten times larger", "an order of
  magnitude") are typed numbers too;
* a parameter the page sets in its own code: a numeric literal of a code cell outside asserts and comparisons
  (the reader sees it set; a threshold is not a parameter), unless the prose calls it approximate;
* on :data:`CONSTANTS` (the data's sizes, dates, identifiers), or a value the paper reports (:data:`PAPER`) in a
  paragraph that names the paper; each entry says why it is not computed.

Everything else is a typed number. ``python -m localdiff_lib.publish numbers [PAGE ...]`` lists them;
``tests/book/test_prose_numbers.py`` fails on any, and checks that every glued name is glued by its page.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext

from . import chapters

# value -> why the prose may type it anywhere. Keep it short: a run-dependent number never belongs here.
CONSTANTS = {
    "27": "the paper's crop, 27x27 pixels",
    "28": "the MNIST image side, 28x28 pixels",
    "728": "the context of one pixel in the 27x27 crop",
    "729": "pixels of the 27x27 crop",
    "784": "pixels of a 28x28 image",
    "10000": "images in the MNIST / Fashion-MNIST test split",
    "60000": "images in the MNIST / Fashion-MNIST training split",
    "70000": "images in MNIST, both splits",
    "255": "the levels of an 8-bit pixel (a bin of width 1/255)",
    "2508.06614": "the paper's arXiv identifier",
    "2024": "a year of publication",
    "2025": "a year of publication",
    "2026": "a year of publication",
    "90": "the quick budget's target: at most 90 s per chapter on 2 CPU cores",
}

# value -> where the paper reports it (../shared/paper-notes.md). Typed only near a mention of the paper or its
# authors (the same paragraph or the one before it, e.g. "The paper reports:" above a list), so that a result of
# ours with the same digits is not let through.
PAPER = {
    "0.056": "CMI of MNIST at r = 12 (its figure of the CMI against r)",
    "0.17": "peak CMI of MNIST, nats",
    "0.20": "peak CMI of Fashion-MNIST, nats",
    "1.05": "I(A:BC) of MNIST at t = 0, nats",
    "0.3": "the CMI peak / transition time of MNIST, and the start of the identity-loss window",
    "0.35": "the end of the identity-keeping window",
    "0.4": "the identity-loss time of the local denoisers",
    "0.7": "I(A:BC) and the CMI vanish by t = 0.7",
    "0.2": "the hybrid schedule's global window starts at t = 0.2",
    "0.5": "the hybrid schedule's global window ends at t = 0.5",
    "12": "the paper's largest buffer radius, r = 12",
    "15": "the paper's training epochs",
    "32": "GPU-hours of the paper's CMI grid",
    "300000": "training steps of each of the authors' MINE estimates",
    "10": "the paper's fitted Markov length near the CMI peak, pixels",
    "5": "the paper's fitted Markov length at t = 0.1-0.2, pixels",
    "100": "the authors' MINE batch size",
}
_PAPER_MARK = re.compile(r"paper|hu2025local|author", re.I)
# an approximate quantity is a measurement even when it is a small integer ("xi ~ 6 px")
_APPROX = re.compile(r"(≈|\\approx|\\sim|\\simeq|\babout|\broughly|\bnearly|\baround|\balmost)\s*\$?\s*$", re.I)
_FORMULA = re.compile(r"\s*[/\\^_({\[]|[A-Za-z]")  # what follows a number inside a formula (2\xi, 2r, 1/k)
# a ratio written in words is a measurement too ("a factor of about two", "twenty times better")
_WORDS = r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundred|thousand"
_COMPARE = r"(?:larger|smaller|higher|lower|better|worse|more|less|faster|slower|below|above|as|bigger|wider|narrower)"
_RATIO_WORDS = re.compile(rf"factor of (?:about |roughly |nearly |almost )?(?:{_WORDS})\b"
                          rf"|\b(?:{_WORDS}) times {_COMPARE}\b|orders? of magnitude", re.I)

# a number: digits with optional thousands separators and decimals ("60,000", "0.25"; "(1,2)" is two numbers)
_NUMBER = re.compile(r"(?<![\w.\\])(\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w])")
_SCRIPT = re.compile(r"[\^_]\{?-?$")      # an exponent or index in math: 2^{16}, 10^{-12}, x_{12}
_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
_STRIP = [
    re.compile(r"^(```|~~~)(?!\s*\{)[^\n]*\n.*?^\1\s*$", re.S | re.M),  # fenced code (a directive's body is prose)
    re.compile(r"^(```|~~~|:::)\s*\{[\w:-]+\}", re.M),           # a directive's name (its title and body stay)
    re.compile(r"\{glue(?::\w+)?\}`[^`]*`"),                     # glued numbers
    re.compile(r"\{[\w:-]+\}`[^`]*`"),                            # other roles: cite, ref, doc, prf:ref, eq, numref
    re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+"),    # link targets and URLs
    re.compile(r"`[^`]*`"),                                       # inline code
    re.compile(r"SHA-256"),                                       # a name, not a quantity
    re.compile(r"^\s*:[\w-]+:.*$", re.M),                         # directive options (:label:, :class:, ...)
    re.compile(r"^\([\w-]+\)=\s*$", re.M),                        # MyST targets
]


@dataclass(frozen=True)
class TypedNumber:
    page: str
    line: int          # line of the Markdown cell in the .md source (1-based; approximate within math)
    number: str
    context: str

    def __str__(self):
        return f"{self.page}:{self.line}: {self.number!r} in '{self.context}'"


def _canonical(token: str) -> str:
    """The token without thousands separators ("60,000" -> "60000"), as CONSTANTS and PAPER spell values."""
    return token.replace(",", "")


def _value(token: str) -> float | None:
    try:
        return float(_canonical(token))
    except ValueError:
        return None


def _paragraph(original: str, stripped: str, pos: int) -> str:
    """The paragraph (text between blank lines) of ``stripped`` around ``pos``, read from the unstripped cell so that
    a citation role still counts; for a list item, with the paragraph that introduces the list."""
    line = stripped.count("\n", 0, pos)
    lines = original.split("\n")
    lo = hi = min(line, len(lines) - 1)
    while lo > 0 and lines[lo - 1].strip():
        lo -= 1
    if re.match(r"\s*([-*+]|\d+\.)\s", lines[lo]):
        while lo > 0 and not lines[lo - 1].strip():
            lo -= 1
        while lo > 0 and lines[lo - 1].strip():
            lo -= 1
    while hi + 1 < len(lines) and lines[hi + 1].strip():
        hi += 1
    return "\n".join(lines[lo:hi + 1])


def _code_literals(nb) -> set[float]:
    """Numeric literals that the page's code sets (outside asserts and comparisons): parameters the reader sees."""
    out: set[float] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        # thresholds are not parameters: literals inside an assert or a comparison do not count
        checks = {id(n) for a in ast.walk(tree) if isinstance(a, (ast.Assert, ast.Compare)) for n in ast.walk(a)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float) and id(node) not in checks:
                out.add(float(node.value))
    return out


def glued_names(md: Path) -> tuple[set[str], set[str]]:
    """(names the prose quotes, names the code glues with ``glue("name", ...)``) of one page."""
    nb = jupytext.read(md)
    quoted = {m.group(1) for c in nb.cells if c.cell_type == "markdown" for m in _GLUE_ROLE.finditer(c.source)}
    made = {m.group(1) for c in nb.cells if c.cell_type == "code"
            for m in re.finditer(r"\bglue\(\s*[\"']([\w]+)[\"']", c.source)}
    return quoted, made


def displayed_glues(md: Path) -> list[int]:
    """Code cells (indices) whose last statement is a bare ``glue(...)`` call: Jupyter would display its return
    value as the cell's output (glue returns the value so that ``x = ld.glue("x", ...)`` reads naturally)."""
    nb = jupytext.read(md)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            body = ast.parse(src).body
        except SyntaxError:
            continue
        last = body[-1] if body else None
        if (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and getattr(last.value.func, "attr", getattr(last.value.func, "id", None)) == "glue"
                and not cell.source.rstrip().endswith(";")):
            bad.append(i)
    return bad


def typed_numbers(md: Path) -> list[TypedNumber]:
    """The numbers of a page's prose that break the rule (module docstring)."""
    md = Path(md)
    text = md.read_text()
    nb = jupytext.read(md)
    params = _code_literals(nb)
    found = []
    offset = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        start = text.find(cell.source[:80], offset) if cell.source else -1
        base = text.count("\n", 0, start) + 1 if start >= 0 else 0
        offset = max(offset, start)
        src = cell.source
        for pat in _STRIP:
            src = pat.sub(lambda m: "\n" * m.group(0).count("\n"), src)
        for m in _NUMBER.finditer(src):
            token = m.group(1).rstrip(",")
            value = _value(token)
            if _SCRIPT.search(src[max(0, m.start() - 3):m.start()]):
                continue
            # approximate, and not a constant of a formula (r ~ 2 xi log ..., g(t) ~ 1) or a plain 0 / 1
            approx = (bool(_APPROX.search(src[max(0, m.start() - 12):m.start()]))
                      and not _FORMULA.match(src[m.end():m.end() + 4]) and token not in ("0", "1"))
            if value is None or (value.is_integer() and 0 <= value <= 10 and "." not in token and not approx):
                continue
            if _canonical(token) in CONSTANTS or (value in params and not approx):   # "about 6" is a measurement
                continue
            if _canonical(token) in PAPER and _PAPER_MARK.search(_paragraph(cell.source, src, m.start())):
                continue
            line = base + src.count("\n", 0, m.start())
            ctx = src[max(0, m.start() - 40): m.end() + 30].replace("\n", " ")
            found.append(TypedNumber(_name(md), line, token, ctx.strip()))
        for m in _RATIO_WORDS.finditer(src):
            line = base + src.count("\n", 0, m.start())
            ctx = src[max(0, m.start() - 40): m.end() + 30].replace("\n", " ")
            found.append(TypedNumber(_name(md), line, m.group(0), ctx.strip()))
    return found


def _name(md: Path) -> str:
    try:
        return md.resolve().relative_to(chapters.ROOT).as_posix()
    except ValueError:  # a page outside the checkout (the tests' own examples)
        return str(md)


def pages(root: Path = chapters.ROOT) -> list[Path]:
    """Every page of the book whose prose the rule covers (the table of contents, notebooks or not)."""
    return [md for md in chapters.chapters(root) if md.exists()]
