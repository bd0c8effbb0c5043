"""The chapters of the book: their list (``_toc.yml``), the Colab install cell, the jupytext pairs.

Used by the tests and by chapter authors (``python -m localdiff_lib.publish sync`` rewrites every chapter's first
code cell from ``_config.yml`` and refreshes its paired ``.ipynb``). Reads ``_config.yml``, ``_toc.yml`` and
``pyproject.toml`` of the checkout (:data:`ROOT`).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import yaml  # PyYAML comes with jupyter-book

# jupytext and MyST-NB are imported where they are used: the chapter list alone (chapters, is_notebook) must work on
# a machine without Jupyter (the prepared GPU run, localdiff_lib.publish.gpu).

ROOT = Path(__file__).resolve().parents[2]  # the checkout: localdiff_lib/publish/ -> the repository root
INSTALL_MARK = "# Colab only:"
CHECK_TAG = "nbval-check-output"  # nbval's cell tag: this cell's output is compared with the stored one


def read_yaml(path: Path):
    """A YAML file of the checkout (``_config.yml``, ``_toc.yml``)."""
    return yaml.safe_load(path.read_text())


def repository_url(root: Path = ROOT) -> str:
    """The repository URL, set once in ``_config.yml`` (``repository.url``)."""
    return read_yaml(root / "_config.yml")["repository"]["url"].rstrip("/")


def pinned_ref(root: Path = ROOT) -> str:
    """The git ref that Colab installs: the tag ``v<version>`` of ``pyproject.toml``."""
    m = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    if not m:
        raise RuntimeError("pyproject.toml has no version line")
    return "v" + m.group(1)


def install_cell_source(root: Path = ROOT) -> str:
    """The first code cell of every chapter: installs the library in Colab only, keeping Colab's torch."""
    return (
        f"{INSTALL_MARK} install the course's companion library at its pinned release.\n"
        "# Colab's preinstalled torch already satisfies the library's ranges and is not reinstalled.\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    %pip install -q \"localdiff-lib @ git+{repository_url(root)}@{pinned_ref(root)}\""
    )


def chapters(root: Path = ROOT) -> list[Path]:
    """Every page of ``_toc.yml``, in order, as paths of their ``.md`` sources."""
    toc = read_yaml(root / "_toc.yml")
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [root / f"{f}.md" for f in files]


def is_notebook(md: Path) -> bool:
    """A page is an executable notebook when its front matter names a kernel (a missing page is not)."""
    return md.exists() and "kernelspec:" in md.read_text().split("\n---", 1)[0]


def read_chapter(md: Path):
    """Read a MyST chapter exactly as the book build (MyST-NB) does, so that execution-cache hashes agree."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    return read_myst_markdown_notebook(md.read_text(), MdParserConfig(), add_source_map=True, path=md)


def colab_url(md: Path, root: Path = ROOT) -> str:
    """The Colab address of a chapter's paired notebook (what the page's launch button opens)."""
    owner_repo = repository_url(root).split("github.com/", 1)[1]
    rel = md.with_suffix(".ipynb").relative_to(root).as_posix()
    branch = read_yaml(root / "_config.yml")["repository"].get("branch", "main")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{rel}"


def is_checked(cell) -> bool:
    """A code cell whose stored output nbval compares (tagged :data:`CHECK_TAG`)."""
    return cell.get("cell_type") == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def execute(md: Path, timeout: int = 900):
    """Execute a chapter in the current environment (the quick budget unless ``LOCALDIFF_BUDGET`` says otherwise),
    with its folder as working directory, and return the executed notebook."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(md)
    budget_set = "LOCALDIFF_BUDGET" in os.environ
    os.environ.setdefault("LOCALDIFF_BUDGET", "quick")  # the kernel inherits it: stored outputs are the quick ones
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(md.parent)}}).execute()
    finally:
        if not budget_set:
            del os.environ["LOCALDIFF_BUDGET"]
    return nb


def sync(root: Path = ROOT, only: list[str | Path] | None = None, outputs: bool = False) -> list[Path]:
    """Rewrite each notebook chapter's install cell and regenerate its paired ``.ipynb``.

    Outputs are stripped, except in the cells tagged ``nbval-check-output`` (:func:`is_checked`): their stored
    output is what ``python -m pytest`` (nbval, ``--nbval-lax``) compares a fresh run against, so that silent numeric
    drift fails. A marked cell keeps the output stored for the same source; ``outputs=True`` executes the chapter
    (:func:`execute`) and stores the marked cells' outputs anew (after a deliberate change of what they print).
    ``only``: the chapters to sync (paths of ``.md`` files, or their stems), instead of every chapter.
    """
    import jupytext

    cell = install_cell_source(root)
    pages = list(filter(is_notebook, chapters(root)))
    if only is not None:
        def named(md: Path, p) -> bool:
            return md.stem == str(p) or md.resolve() == Path(p).resolve()

        unknown = [str(p) for p in only if not any(named(md, p) for md in pages)]
        if unknown:
            raise ValueError(f"not notebook chapters of _toc.yml: {unknown}")
        pages = [md for md in pages if any(named(md, p) for p in only)]
    changed = []
    for md in pages:
        text = md.read_text()
        m = re.search(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S)
        if m is None or INSTALL_MARK not in m.group(1):
            raise RuntimeError(f"{md}: the first code cell must be the Colab install cell starting with {INSTALL_MARK!r}")
        new = text[: m.start(1)] + cell + "\n" + text[m.end(1):]
        if new != text:
            md.write_text(new)
            changed.append(md)
        ipynb = md.with_suffix(".ipynb")
        nb = jupytext.read(md)
        stored = {}  # source -> (outputs, execution count) of the checked cells (nbval wants the count of a run cell)
        if outputs and any(is_checked(c) for c in nb.cells):
            stored = {_source(c): (c.outputs, c.execution_count) for c in execute(md).cells if is_checked(c)}
        elif ipynb.exists():
            stored = {_source(c): (c.get("outputs", []), c.get("execution_count"))
                      for c in jupytext.read(ipynb).cells if is_checked(c)}
        for i, c in enumerate(nb.cells):
            # stable cell ids (by position) so that regenerating a pair does not churn the .ipynb
            c["id"] = hashlib.sha1(f"{md.stem}:{i}".encode()).hexdigest()[:8]
            if c.cell_type == "code":
                c.outputs, c.execution_count = stored.get(_source(c), ([], None)) if is_checked(c) else ([], None)
        jupytext.write(nb, ipynb)
    return changed
