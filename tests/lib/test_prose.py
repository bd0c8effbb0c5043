"""localdiff_lib.prose.glue: computed numbers for the prose (chapter pages quote them with {glue:text})."""

import builtins
import sys

import numpy as np
import pytest

from localdiff_lib.checks import InputError
from localdiff_lib.prose import glue


def test_glue_returns_python_numbers():
    assert type(glue("x", np.float32(0.5))) is float and glue("x", np.float32(0.5)) == 0.5
    assert type(glue("n", np.int64(2000))) is int and glue("n", np.int64(2000)) == 2000
    assert glue("s", "MNIST") == "MNIST"


@pytest.mark.parametrize("name, value, says", [
    ("1x", 1.0, "identifier"), ("peak value", 1.0, "identifier"), ("x", np.zeros(3), "ndarray"),
    ("x", None, "NoneType"), ("x", True, "bool"), (3, 1.0, "identifier"),
])
def test_glue_refuses_what_the_text_role_cannot_format(name, value, says):
    with pytest.raises(InputError, match=says):
        glue(name, value)


def test_without_myst_nb_the_number_is_printed(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_myst(name, *args, **kwargs):
        if name == "myst_nb":
            raise ImportError("no myst_nb (Colab)")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "myst_nb", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_myst)
    assert glue("t_c", np.float64(0.25)) == 0.25
    assert capsys.readouterr().out == "t_c = 0.25\n"
