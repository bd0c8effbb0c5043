"""Execute every notebook chapter of ``_toc.yml`` once, in the quick budget, one test per chapter.

A chapter passes when every cell runs without raising; the hidden ``remove-cell`` assert cells of each
chapter turn its numerical claims into failures. Executed notebooks go into the Jupyter Book's execution
cache (``_build/.jupyter_cache``, the same store and the same notebook hashing that MyST-NB uses with
``execute_notebooks: cache``), so the book build that follows in CI reuses them instead of running every
chapter a second time. The per-chapter run times are kept in the cache record (``execution_seconds``).

A chapter that loads an optional data set (Fashion-MNIST, with ``data.load_optional``) carries the marker
``optional_data``. With ``LOCALDIFF_HIDE_DATASETS`` set, chapters run as on a machine without those data sets
(nbval's run in ``python -m pytest`` always does, see ``localdiff_lib.publish.nbval_budget``; by hand)::

    LOCALDIFF_HIDE_DATASETS=fashion-mnist python -m pytest tests/book/test_chapters.py -m optional_data

Then every selected chapter is executed (never skipped as cached) and its result is not stored: the book's cache
keeps the full quick chapters for the build. The same holds for the smoke form of a larger budget
(``LOCALDIFF_BUDGET=standard LOCALDIFF_SMOKE=1 python -m pytest tests/book/test_chapters.py``; nbval's run of
``python -m pytest`` uses that form, see ``localdiff_lib.publish.nbval_budget``), or any budget other than quick. Such a chapter must print the note of ``data.load_optional``; the test
shows the notes in its output.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import localdiff_lib as ld
from localdiff_lib import data
from localdiff_lib.publish.chapters import ROOT, chapters, is_notebook, read_chapter
from localdiff_lib.publish.nbval_budget import cell_timeout

CACHE = ROOT / "_build" / ".jupyter_cache"
NOTEBOOKS = [md for md in chapters() if is_notebook(md)]


def uses_optional_data(md: Path) -> bool:
    """The chapter loads a data set it can do without (``data.load_optional``)."""
    return "data.load_optional(" in md.read_text()


def data_notes(nb) -> list[str]:
    """The first line of every note that ``data.load_optional`` printed in an executed notebook."""
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream")
    return [line for line in text.splitlines() if line.startswith("Note: ") and "is not available" in line]


PARAMS = [pytest.param(md, id=md.stem, marks=[pytest.mark.optional_data] if uses_optional_data(md) else [])
          for md in NOTEBOOKS]


@pytest.mark.chapter
@pytest.mark.parametrize("md", PARAMS)
def test_chapter_executes(md: Path, monkeypatch):
    from jupyter_cache.executors.utils import single_nb_execution

    monkeypatch.setenv("LOCALDIFF_BUDGET", os.environ.get("LOCALDIFF_BUDGET", "quick"))
    hidden = data.hidden()  # LOCALDIFF_HIDE_DATASETS: run uncached, store nothing (the kernel inherits the setting)
    other_budget = ld.budget() != "quick" or ld.smoke()   # likewise: the book's cache holds the quick runs only
    nb = read_chapter(md)
    if not (hidden or other_budget):
        from jupyter_cache import get_cache

        cache = get_cache(str(CACHE))
        try:
            cache.match_cache_notebook(nb)
            pytest.skip("unchanged since its last successful run (cached); delete _build/.jupyter_cache to rerun")
        except KeyError:
            pass
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    timeout = cell_timeout(ld.budget(), ld.smoke())
    result = single_nb_execution(nb, cwd=str(md.parent), allow_errors=False, timeout=timeout, meta_override=True)
    if isinstance(result.err, (CellTimeoutError, DeadKernelError)):
        # A cell that ran past the timeout (transition_lab in CI on 2026-11-27; several chapters on a machine shared
        # with a background job): on 2026-12-05 a kernel's two OpenMP threads sharing 2 cores with other work ran
        # 17 times slower while spinning at barriers (see publish.nbval_budget, which now makes them wait passively).
        # A timed-out or dead kernel is retried once in a new one, and says so.
        print(f"{md.stem}: {type(result.err).__name__} after {result.time:.0f} s; retrying once in a new kernel")
        nb = read_chapter(md)  # the notebook of the retry is the one whose outputs are kept
        result = single_nb_execution(nb, cwd=str(md.parent), allow_errors=False, timeout=timeout, meta_override=True)
    if result.err is not None:
        pytest.fail(f"{md.relative_to(ROOT)} failed after {result.time:.1f} s:\n{result.exc_string}", pytrace=False)
    notes = data_notes(nb)
    for line in notes:
        print(f"{md.stem}: {line}")
    if other_budget:
        print(f"{md.stem}: executed in {result.time:.1f} s, {ld.describe()} (not stored in the book's execution cache)")
        return
    if hidden:
        if uses_optional_data(md):
            assert notes, f"{md.stem} ran with {data.HIDE_ENV_VAR}={os.environ[data.HIDE_ENV_VAR]} and printed no note"
        print(f"{md.stem}: executed in {result.time:.1f} s with {data.HIDE_ENV_VAR}={os.environ[data.HIDE_ENV_VAR]} "
              "(not stored in the book's execution cache)")
        return
    from jupyter_cache.base import CacheBundleIn

    record = cache.add_nb_to_project(str(md), read_data={"type": "plugin", "name": "myst_nb_md"})
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, record.uri, data={"execution_seconds": result.time}), check_validity=False, overwrite=True
    )
    print(f"{md.stem}: executed in {result.time:.1f} s")
