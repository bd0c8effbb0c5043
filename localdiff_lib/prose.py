"""Numbers the prose quotes: every run-dependent number on a page is computed and *glued* into its text.

A chapter computes a value and calls ``glue("t_c", t_c)``; its Markdown quotes it as ``{glue:text}`t_c:.3f```
(MyST-NB's text role, with a format spec). In the book build MyST-NB stores the value in the cell's outputs and
pastes it into the sentence; a name that no cell glued fails the strict build. Where MyST-NB is not installed
(Colab), ``glue`` prints ``name = value`` instead, so a reader of the notebook still sees the number.
The rule that the prose types no other number is checked by ``tests/book/test_prose_numbers.py``
(``python -m localdiff_lib.publish numbers`` lists the offenders).
"""

from __future__ import annotations

import numbers
import re

from .checks import InputError

__all__ = ["glue"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def glue(name: str, value):
    """Store ``value`` (a number or a short string) under ``name`` for the page's prose; returns the value.

    NumPy scalars become Python numbers, so that format specs such as ``:.3f`` apply in the text role. A cell that
    ends with a glue call ends it with ``;``, as Jupyter would otherwise print the returned value
    (``tests/book/test_prose_numbers.py`` checks it).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"glue: name {name!r} must be an identifier (letters, digits, underscores), e.g. 't_c'")
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise InputError(f"glue: {name!r} got {type(value).__name__}; glue one number (or a short string), "
                        "not an array, a bool or None: index or reduce it first")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:  # no book tooling (Colab): show the number where it is computed
        print(f"{name} = {value}")
        return value
    _myst_glue(name, value, display=False)
    return value
