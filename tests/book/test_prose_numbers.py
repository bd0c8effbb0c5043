"""Every number in the book's prose is computed (glued) or an explained constant (localdiff_lib.publish.numbers)."""

import pytest

from localdiff_lib.publish import chapters, numbers

PAGES = numbers.pages()


def _id(md):
    return md.relative_to(chapters.ROOT).as_posix()


@pytest.mark.parametrize("md", PAGES, ids=_id)
def test_no_typed_numbers(md):
    typed = numbers.typed_numbers(md)
    assert not typed, ("numbers typed in prose; glue them (localdiff_lib.prose.glue) or, for a constant, add it with "
                       "its reason to localdiff_lib.publish.numbers:\n" + "\n".join(map(str, typed)))


@pytest.mark.parametrize("md", PAGES, ids=_id)
def test_every_glued_name_is_computed(md):
    quoted, made = numbers.glued_names(md)
    assert quoted <= made, f"{_id(md)} quotes {sorted(quoted - made)} but no code cell glues them"


@pytest.mark.parametrize("md", PAGES, ids=_id)
def test_no_cell_displays_a_glued_value(md):
    bad = numbers.displayed_glues(md)
    assert not bad, (f"{_id(md)}: code cells {bad} end with a bare glue(...) call, whose value Jupyter would print; "
                     "end the call with ';' or move it up")


def test_the_rule_catches_what_it_should(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "# Page\n\nThe peak is $0.37$ nats, $\\xi \\approx 6$ px, a factor of about two, "
        "{glue:text}`peak:.2f` glued, 27x27 pixels, 3 seeds, step 0.125.\n\n"
        "The paper reports 0.17 nats.\n\nOur value is 0.17 too.\n\nThe paper reports:\n\n- a peak of 0.17 nats.\n\n"
        "A buffer $r \\approx 2\\xi\\log n$ where $n g \\approx 1$, about 0.125 px, two times, ten times larger.\n\n"
        "```{exercise}\n:label: ex-x\n\nShow that it is 0.83.\n```\n\n"
        "```{code-cell} ipython3\nstep = 0.125\nassert peak < 0.37\n```\n")
    found = [(t.number) for t in numbers.typed_numbers(page)]
    assert found == ["0.37", "6", "0.17", "0.125", "0.83", "factor of about two", "ten times larger"], found
