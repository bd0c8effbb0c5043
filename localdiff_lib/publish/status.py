"""The status page (``book/status.md``): each chapter's last run time from the execution cache, and the GPU times.

``python -m localdiff_lib.publish status`` prints the table; ``python -m localdiff_lib.publish measure --budget full
--out book/status_gpu.json`` executes every chapter (on a GPU) and writes the times the page's GPU column shows.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
from pathlib import Path

import torch
from jupyter_cache import get_cache

from ..config import ENV_VAR, budget as current_budget, describe, parse_describe
from .chapters import ROOT, chapters, is_notebook, read_chapter

CACHE = ROOT / "_build" / ".jupyter_cache"
GPU_TIMES = ROOT / "book" / "status_gpu.json"
T4_ESTIMATE = ROOT / "book" / "status_t4_estimate.json"  # written by python -m localdiff_lib.publish.gpu work
STATUS_PAGE = ROOT / "book" / "status.md"


def _title(md: Path) -> str:
    """The page's first level-1 heading (outside code blocks), else its file stem."""
    text = re.sub(r"^(`{3,}).*?^\1", "", md.read_text(), flags=re.M | re.S)
    m = re.search(r"^# (.+)$", text, re.M)
    return m.group(1).strip() if m else md.stem


def chapter_run_times(root: Path = ROOT, cache_path: Path | None = None) -> list[dict]:
    """For every notebook page of ``_toc.yml`` except the status page: its last successful run, from the cache.

    Each row: ``chapter`` (file stem), ``title``, ``seconds`` (``None`` if the current version of the
    chapter has not run yet), ``budget``, ``device`` and ``torch`` (parsed from the ``describe()`` line the
    chapter printed), ``python`` (the kernel's version) and ``when`` (UTC time of the run). Only the run of
    the chapter's *current* source counts: an older version's record does not match.
    """
    cache = get_cache(str(cache_path or root / "_build" / ".jupyter_cache"))
    rows = []
    for md in chapters(root):
        if not (md.exists() and is_notebook(md)) or md.stem == STATUS_PAGE.stem:
            continue
        row = {"chapter": md.stem, "title": _title(md), "seconds": None, "budget": None, "device": None,
               "torch": None, "python": None, "when": None}
        try:
            record = cache.match_cache_notebook(read_chapter(md))
        except KeyError:
            rows.append(row)
            continue
        row["seconds"] = record.data.get("execution_seconds")
        row["when"] = record.created.strftime("%Y-%m-%d %H:%M UTC")
        nb = cache.get_cache_bundle(record.pk).nb
        row["python"] = nb.metadata.get("language_info", {}).get("version")
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                seen = parse_describe(out.get("text", "") or "")
                if seen and row["budget"] is None:
                    row.update(seen)
        rows.append(row)
    return rows


def gpu_run_times(path: Path = GPU_TIMES) -> dict | None:
    """The committed GPU measurements (``book/status_gpu.json``, written by ``measure``), or ``None``."""
    return json.loads(path.read_text()) if path.exists() else None


def t4_estimates(path: Path = T4_ESTIMATE, root: Path = ROOT) -> dict | None:
    """The committed CPU measurements of the ``standard`` budget with their T4 estimates
    (``python -m localdiff_lib.publish.gpu work``, :mod:`localdiff_lib.publish.meter`), or ``None``. A chapter
    whose code changed since it was measured (the SHA-256 of its script differs) is left out: it shows as not
    measured."""
    from .gpu import script_digest

    if not path.exists():
        return None
    result = json.loads(path.read_text())
    current = {md.stem: script_digest(md) for md in chapters(root) if md.exists() and is_notebook(md)}
    result["chapters"] = {k: v for k, v in result.get("chapters", {}).items()
                          if v.get("script_sha256") is not None and v.get("script_sha256") == current.get(k)}
    return result


def measure(out: Path, budget: str | None = None, root: Path = ROOT, only: list[str] | None = None) -> dict:
    """Execute every notebook chapter once (in ``budget``) and write their run times to ``out`` as JSON.

    Meant for the GPU measurements the status page shows (``--budget full`` on one GPU); the file records the
    device, the versions and the date, so the numbers never travel without where they came from. A chapter
    that fails is recorded as ``null``.
    """
    from jupyter_cache.executors.utils import single_nb_execution

    old = os.environ.get(ENV_VAR)
    if budget is not None:
        os.environ[ENV_VAR] = budget          # the kernels inherit it
    try:
        result = {"budget": current_budget(), "describe": describe(), "python": platform.python_version(),
                  "torch": torch.__version__,
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "chapters": {}}
        for md in chapters(root):
            if not (md.exists() and is_notebook(md)) or md.stem == STATUS_PAGE.stem or (only and md.stem not in only):
                continue
            run = single_nb_execution(read_chapter(md), cwd=str(md.parent), allow_errors=False, timeout=3600,
                                      meta_override=True)
            result["chapters"][md.stem] = None if run.err is not None else round(run.time, 1)
            print(f"{md.stem}: {'failed' if run.err is not None else f'{run.time:.1f} s'}", flush=True)
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def status_table(rows: list[dict], gpu: dict | None, t4: dict | None = None) -> str:
    """The status table as Markdown (the status page displays it). ``t4``: :func:`t4_estimates`, shown as two
    columns, the measured CPU time of that budget and the T4 estimate made from it (labelled an estimate)."""
    gpu_chapters = (gpu or {}).get("chapters", {})
    gpu_budget = (gpu or {}).get("budget") or "full"
    t4_chapters, t4_budget = (t4 or {}).get("chapters", {}), (t4 or {}).get("budget") or "standard"
    lines = [f"| chapter | quick, CI (s) | budget seen | {gpu_budget}, GPU (s) | {t4_budget}, 1 CPU core (s) "
             f"| {t4_budget}, T4 (s), estimate |", "| --- | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        quick = f"{r['seconds']:.1f}" if r["seconds"] is not None else "not run"
        g = gpu_chapters.get(r["chapter"])
        full = f"{g:.1f}" if isinstance(g, (int, float)) else ("failed" if r["chapter"] in gpu_chapters else "not measured")
        w = t4_chapters.get(r["chapter"])
        if w is None:
            cpu = est = "not measured"
        elif w.get("rc") != 0:
            cpu, est = ("timed out" if w.get("rc") == "timeout" else "failed"), "-"
        else:
            cpu, est = f"{w['wall_s']:.0f}", f"{w['t4_estimate']['total']:.0f}"
        lines.append(f"| {r['title']} (`{r['chapter']}`) | {quick} | {r['budget'] or '?'} | {full} | {cpu} | {est} |")
    return "\n".join(lines)
