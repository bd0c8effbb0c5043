"""Every number in the book's prose is computed (glued) or an explained constant (localdiff_lib.publish.numbers)."""

import pytest

from localdiff_lib.publish import chapters, numbers

PAGES = numbers.pages()
# Pages whose prose has not been swept yet (issue 13, section 6). This list only shrinks; empty means done.
PENDING = {
    "book/locality.md", "book/transition_lab.md",
    "book/fokker_planck.md",
}


def _id(md):
    return md.relative_to(chapters.ROOT).as_posix()


@pytest.mark.parametrize("md", PAGES, ids=_id)
def test_no_typed_numbers(md):
    if _id(md) in PENDING:
        pytest.skip("prose not swept yet (issue 13 §6)")
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
                     "assign it or move the call up")


def test_pending_pages_still_have_typed_numbers():
    """A swept page leaves PENDING, so that the list cannot hide a page that already passes."""
    clean = [p for p in sorted(PENDING) if not numbers.typed_numbers(chapters.ROOT / p)]
    assert not clean, f"{clean} have no typed numbers left: remove them from PENDING"


def test_the_rule_catches_what_it_should(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "# Page\n\nThe peak is $0.37$ nats, $\\xi \\approx 6$ px, a factor of about two, "
        "{glue:text}`peak:.2f` glued, 27x27 pixels, 3 seeds, step 0.125.\n\n"
        "The paper reports 0.17 nats.\n\nOur value is 0.17 too.\n\nThe paper reports:\n\n- a peak of 0.17 nats.\n\n"
        "```{code-cell} ipython3\nstep = 0.125\nassert peak < 0.37\n```\n")
    found = [(t.number) for t in numbers.typed_numbers(page)]
    assert found == ["0.37", "6", "0.17", "factor of about two"], found
