"""The prepared GPU run (localdiff_lib.publish.gpu): its chapter scripts, its page list and its CPU rehearsal."""

import json
import sys

import pytest

from localdiff_lib.publish import chapters, gpu


def test_pages_are_the_notebook_chapters():
    assert gpu.notebook_pages() == [md for md in chapters.chapters() if chapters.is_notebook(md)]


def test_script_of_a_chapter_is_python_without_magics(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("---\nkernelspec:\n  name: python3\n---\n\n# P\n\n"
                    "```{code-cell} ipython3\nimport sys\nif 'google.colab' in sys.modules:\n    %pip install x\n```\n\n"
                    "Text.\n\n```{code-cell} ipython3\n:tags: [remove-cell]\n%matplotlib inline\nx = 1\n```\n")
    script = gpu.script_of(page)
    compile(script, "p.py", "exec")
    assert "%" not in script and ":tags:" not in script and "    pass" in script and "x = 1" in script


@pytest.mark.parametrize("md", gpu.notebook_pages(), ids=lambda p: p.stem)
def test_every_chapter_converts_to_a_script(md):
    compile(gpu.script_of(md), md.name, "exec")


@pytest.mark.slow
def test_dry_run_writes_the_folder_a_gpu_run_would(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gpu", "run", str(tmp_path / "out"), "--dry-run"])
    summary = gpu.run(tmp_path / "out", minutes=10, dry_run=True)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["run.log", "status_gpu.json", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert all(b["rc"] == 0 for b in summary["steps"]["bench"]), summary["steps"]["bench"]
    ran = summary["steps"]["chapters"]
    assert list(ran) == [md.stem for md in gpu.notebook_pages()[:2]]
    assert all(r["rc"] == 0 for r in ran.values()), {k: r["tail"] for k, r in ran.items()}
    status = json.loads((out / "status_gpu.json").read_text())
    assert status["budget"] == "quick" and set(status["chapters"]) == set(ran)
    assert all(isinstance(v, float) for v in status["chapters"].values())
