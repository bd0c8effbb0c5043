"""The book's own tooling, apart from the teaching library: nothing here is used by a chapter at run time.

It needs a checkout of the course repository (it reads ``_config.yml``, ``_toc.yml``, the chapters) and the book's
requirements (Jupyter Book, jupytext), so it is not part of the package that Colab installs (``pyproject.toml``
lists ``localdiff_lib`` alone). One module per job:

- :mod:`~localdiff_lib.publish.chapters`    the chapter list, the Colab install cell, the jupytext pairs (``sync``)
- :mod:`~localdiff_lib.publish.student`     the student notebooks of the assignments and the student edition
- :mod:`~localdiff_lib.publish.status`      the status page's run times (execution cache, GPU measurements)
- :mod:`~localdiff_lib.publish.mathjax`     a local MathJax 3, so the built book renders math offline
- :mod:`~localdiff_lib.publish.lab_export`  the transition lab's precomputed states for the static book
- :mod:`~localdiff_lib.publish.sphinx_ext`  the Sphinx extension that ties the last three into the build

Command line, from the repository root: ``python -m localdiff_lib.publish --help``.
"""
