"""Maintainer tools for the book itself: the chapter list, the Colab install cell, the jupytext pairs.

Used by the tests and by chapter authors (``python -m localdiff_lib.course sync`` rewrites every
chapter's first code cell from ``_config.yml`` and refreshes its paired ``.ipynb``). Needs a checkout
of the course repository (it reads ``_config.yml``, ``_toc.yml`` and ``pyproject.toml``); nothing here
is used by the chapters at run time.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_MARK = "# Colab only:"


def _yaml(path: Path):
    import yaml  # PyYAML comes with jupyter-book; only maintainers need it

    return yaml.safe_load(path.read_text())


def repository_url(root: Path = ROOT) -> str:
    """The repository URL, set once in ``_config.yml`` (``repository.url``)."""
    return _yaml(root / "_config.yml")["repository"]["url"].rstrip("/")


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
    toc = _yaml(root / "_toc.yml")
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
    branch = _yaml(root / "_config.yml")["repository"].get("branch", "main")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{rel}"


def sync(root: Path = ROOT, only: list[str | Path] | None = None) -> list[Path]:
    """Rewrite each notebook chapter's install cell and regenerate its paired ``.ipynb`` (outputs stripped).

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
        nb = jupytext.read(md)
        for i, c in enumerate(nb.cells):
            # stable cell ids (by position) so that regenerating a pair does not churn the .ipynb
            c["id"] = hashlib.sha1(f"{md.stem}:{i}".encode()).hexdigest()[:8]
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        jupytext.write(nb, md.with_suffix(".ipynb"))
    return changed


if __name__ == "__main__":
    if sys.argv[1:2] != ["sync"]:
        sys.exit("usage: python -m localdiff_lib.course sync [CHAPTER.md ...]   (default: every chapter)")
    for p in sync(only=sys.argv[2:] or None):
        print("updated", p.relative_to(ROOT))
