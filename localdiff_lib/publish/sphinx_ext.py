"""The book's Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

* serves MathJax from the build itself when ``python -m localdiff_lib.publish mathjax`` has put a copy in ``_build/``
  (:mod:`localdiff_lib.publish.mathjax`);
* in the student build (``localdiff_student = True``, :func:`localdiff_lib.publish.student.student_build`) removes
  every solution. sphinx-exercise 1.2.1's own ``hide_solutions`` cannot be used: it drops the ``solution-start``
  marker of a gated solution but keeps its ``solution-end`` node and the gated content between them, and the HTML
  writer then stops with "unknown node type: solution_end_node". So sphinx-exercise merges the gated blocks as usual
  and the solution nodes are removed afterwards;
* after an HTML build, writes the transition lab's precomputed states (:mod:`localdiff_lib.publish.lab_export`) into
  ``_static/lab/`` (``LOCALDIFF_LAB_EXPORT=0`` skips that).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .chapters import ROOT
from . import mathjax

LAB_EXPORT = ROOT / "_build" / "lab"  # the precomputed transition lab (cache), copied into _static/lab
LAB_STATIC = "lab"                    # relative to the build's _static/
LAB_PAGE = "transition_lab"           # the chapter (docname's last part) that shows the static lab
LAB_ENV = "LOCALDIFF_LAB_EXPORT"      # "0": skip the export (the page then says the states are absent)


def _configure(app, config) -> None:
    script = mathjax.local_mathjax()
    if script is not None:
        config.html_static_path = [*config.html_static_path, str(mathjax.OFFLINE_STATIC)]
        config.mathjax_path = mathjax.MATHJAX_PATH
    elif os.environ.get(mathjax.REQUIRE_MATHJAX_ENV):
        from sphinx.errors import ConfigError

        raise ConfigError(
            f"{mathjax.REQUIRE_MATHJAX_ENV} is set but there is no local MathJax in {mathjax.OFFLINE_STATIC}: "
            "run `python -m localdiff_lib.publish mathjax` first (without the variable the book falls back to the CDN)."
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

    :func:`localdiff_lib.publish.lab_export.export` computes them into ``_build/lab`` (reused while its fingerprint, i.e.
    settings, shipped checkpoints and code, is unchanged), then they are copied into the HTML output. An error
    fails the build: a page whose sliders load nothing must not be published.
    """
    if exception is not None or getattr(app.builder, "format", "") != "html" or os.environ.get(LAB_ENV) == "0":
        return
    if not any(doc.rsplit("/", 1)[-1] == LAB_PAGE for doc in app.env.found_docs):
        return
    from sphinx.util import logging

    from .lab_export import export  # torch and the library: only when the book has the lab

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
