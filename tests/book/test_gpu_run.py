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


def test_a_real_run_produces_the_gpu_recipes_and_the_converged_checkpoints(tmp_path, monkeypatch):
    # every command the run would start, without running them: the benchmarks, then (no chapters here) each map
    # recipe named *-gpu and each checkpoint recipe trained by doubling, into the output folder
    from localdiff_lib import checkpoints, cmi_map

    calls = []
    monkeypatch.setattr(gpu, "_run", lambda cmd, log, timeout, **kw: calls.append(cmd) or {"rc": 0, "seconds": 0.0, "tail": ""})
    monkeypatch.setattr(gpu, "_unpack_data", lambda cache, log: [])
    monkeypatch.setattr(gpu, "notebook_pages", lambda: [])
    monkeypatch.setattr(sys, "argv", ["gpu", "run", str(tmp_path / "out")])
    summary = gpu.run(tmp_path / "out", minutes=10)
    maps = [n for n in cmi_map.MAP_RECIPES if n.endswith("-gpu")]
    trained = [n for n, r in checkpoints.RECIPES.items() if "doubling" in r]
    assert maps and trained and list(summary["steps"]["recipes"]) == maps + trained
    recipe_calls = calls[2:]
    assert [c[2:5] for c in recipe_calls] == [["localdiff_lib.cmi_map", "run", n] for n in maps] + \
        [["localdiff_lib.checkpoints", "train", n] for n in trained]
    assert all(c[-1] == str(tmp_path / "out" / "checkpoints") for c in recipe_calls[len(maps):])


def test_the_meter_counts_flops_and_operations(tmp_path):
    # one linear layer, forward and weight gradient, 10 times: torch's formulas give 2 * 64 * 100 * 100 FLOPs each
    from localdiff_lib.publish import meter

    script = tmp_path / "s.py"
    script.write_text("import torch\nm = torch.nn.Linear(100, 100)\nx = torch.randn(64, 100)\n"
                      "for _ in range(10):\n    m(x).sum().backward()\n")
    rec = meter.measure(script)
    assert rec["flops"] == 10 * 2 * (2 * 64 * 100 * 100) and rec["ops"] >= 10 * 5
    est = meter.t4_estimate(rec)
    assert est["compute"] == rec["flops"] / (meter.T4_FP32_FLOPS * meter.T4_EFFICIENCY)
    assert est["launch"] == rec["ops"] * meter.LAUNCH_S and est["total"] >= est["host"] >= 0


def test_work_command_records_each_chapter(tmp_path):
    from localdiff_lib.publish import gpu

    res = gpu.work(tmp_path / "work.json", budget="quick", pages=["notation"], timeout=600)
    entry = res["chapters"]["notation"]
    assert entry["rc"] == 0 and entry["t4_estimate"]["total"] >= 0 and res["assumptions"]["t4_efficiency"] > 0
    assert json.loads((tmp_path / "work.json").read_text())["git_commit"] == res["git_commit"] == entry["git_commit"]
    again = gpu.work(tmp_path / "work.json", budget="quick", pages=["notation"], timeout=600)  # unchanged: kept
    assert again["chapters"]["notation"] == entry
