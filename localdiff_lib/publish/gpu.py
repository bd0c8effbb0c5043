"""The one prepared GPU run: benchmarks, every chapter at the ``standard`` budget, the GPU recipes, into one folder.

Two steps, because the GPU machine has torch, numpy, scipy, matplotlib and PyYAML but no Jupyter, no data and
no network:

1. here, in the checkout: ``python -m localdiff_lib.publish.gpu pack`` writes ``.gpu_carry/`` (ignored by git):
   the verified MNIST / Fashion-MNIST arrays (compressed, about 40 MB) and the git commit;
2. there: ``python3 -m localdiff_lib.publish.gpu run $OUT`` (carrying ``.gpu_carry``), at most ``--minutes``
   (default 9) of wall time. In order, each within what is left of the time:

   * ``environment``: the device, versions, the commit;
   * ``bench``: ``python -m localdiff_lib.bench`` and ``python -m localdiff_lib.bench_cmi`` (their tables);
   * ``chapters``: every notebook page of ``_toc.yml`` at the budget, in order, run as a plain Python script made
     of its code cells (IPython magics become ``pass``; ``MPLBACKEND=Agg``), each in its own process with a timeout
     of 240 s; chapters that no longer fit before the recipes' reserve (150 s) are skipped and listed;
     the run times go to ``status_gpu.json``, the file the status page's GPU column reads (copy it to
     ``book/status_gpu.json`` and commit it, naming the machine);
   * ``recipes``: the shipped-result recipes meant for a GPU (``localdiff_lib.cmi_map`` recipes named ``*-gpu``),
     then the converged checkpoints (``localdiff_lib.checkpoints`` recipes trained by doubling, into
     ``OUT/checkpoints``), each resumable and stopped at the deadline; what finished is a result or a checkpoint
     with its record, like every shipped one.

   Everything lands in ``OUT``: ``summary.json`` (what ran, how long, what failed and why), ``status_gpu.json``,
   ``run.log`` (all output) and one folder per recipe. A step that does not fit in the time left is recorded as
   skipped, never silently dropped.

``run --dry-run`` is the CPU rehearsal that CI runs: the quick budget, two chapters, a one-step benchmark and no
recipe, so that the command itself cannot rot while no GPU is at hand.

``work`` needs no GPU: it runs every chapter at ``standard`` on this machine's CPU, one core, under
:mod:`localdiff_lib.publish.meter` (torch operations and FLOPs counted), and writes ``book/status_t4_estimate.json``:
the measured CPU times and an estimate of each chapter's time on Colab's T4, which the status page shows, labelled
as an estimate, until a T4 run measures it. Resumable: a chapter whose script is unchanged (:func:`script_digest`)
keeps its measurement.

This module imports nothing beyond the standard library, PyYAML and (in subprocesses) the library itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARRY = ROOT / ".gpu_carry"
DATA_FILE = "data.npz"
PER_CHAPTER_S = 240  # a chapter that needs longer at `standard` on a GPU misses the 5-minute T4 target by far anyway

_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_MAGIC = re.compile(r"^(\s*)[%!].*$", re.M)


def notebook_pages(root: Path = ROOT) -> list[Path]:
    """The executable pages of ``_toc.yml`` in order (``chapters.chapters`` and ``chapters.is_notebook``, which need
    no Jupyter)."""
    from .chapters import chapters, is_notebook

    return [md for md in chapters(root) if is_notebook(md)]


def script_of(md: Path) -> str:
    """A MyST notebook's code cells as one Python script (cell options dropped, IPython magics become ``pass``)."""
    cells = []
    for m in _CELL.finditer(md.read_text()):
        lines = m.group(1).split("\n")
        while lines and re.match(r"^:[\w-]+:", lines[0]):  # cell options (:tags: [...])
            lines.pop(0)
        cells.append(_MAGIC.sub(lambda g: f"{g.group(1)}pass", "\n".join(lines)))
    return "\n\n".join(f"# --- cell {i}\n{c}" for i, c in enumerate(cells))


def script_digest(md: Path) -> str:
    """The SHA-256 of a chapter's script (:func:`script_of`): a measurement belongs to the script it measured."""
    import hashlib

    return hashlib.sha256(script_of(md).encode()).hexdigest()


def pack(dest: Path = CARRY) -> Path:
    """Write the carry folder: the verified data sets (those this machine has) and the git commit."""
    import numpy as np

    from .. import data

    dest.mkdir(parents=True, exist_ok=True)
    arrays, notes = {}, []
    for name in data.NAMES:
        for split in data.SPLITS:
            try:
                images, labels = data.load_uint8(name, split, download=False)
            except data.DataUnavailableError as e:
                notes.append(f"{name} {split}: not packed. {e.note()}")
                continue
            arrays[f"{name}__{split}__images"], arrays[f"{name}__{split}__labels"] = images, labels
    np.savez_compressed(dest / DATA_FILE, **arrays)
    commit = _git_commit(ROOT)
    (dest / "commit").write_text(commit + "\n")
    for n in notes:
        print(n)
    print(f"packed {len(arrays) // 2} data splits and commit {commit[:12]} into {dest}")
    return dest


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        f = CARRY / "commit"
        return f.read_text().strip() if f.exists() else "unknown"


def _unpack_data(cache: Path, log) -> list[str]:
    """Verify the carried arrays and install them as the data module's cache: sets ``LOCALDIFF_DATA`` in this process,
    so that every chapter run after it inherits it. Without a carry folder the machine's own data are used."""
    import numpy as np

    from .. import data

    f = CARRY / DATA_FILE
    if not f.exists():
        log(f"no {f}: chapters use whatever data the machine has")
        return []
    os.environ[data.ENV_VAR] = str(cache)
    installed = []
    with np.load(f) as z:
        for key in z.files:
            name, split, kind = key.split("__")
            if kind != "images":
                continue
            data.import_arrays(name, split, z[key], z[f"{name}__{split}__labels"])
            installed.append(f"{name}-{split}")
    log(f"data installed into {cache}: {', '.join(installed)}")
    return installed


def _run(cmd, log, timeout, cwd=ROOT, env=None) -> dict:
    """Run a command with a timeout, its output appended to the log; returns rc, seconds and the output's tail."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=max(1.0, timeout))
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))
    seconds = round(time.perf_counter() - t0, 1)
    log(f"$ {' '.join(map(str, cmd))}  ->  rc {rc} in {seconds} s\n{out.rstrip()}")
    return {"rc": rc, "seconds": seconds, "tail": out[-1500:]}


def run(out: Path, minutes: float = 9.0, budget: str = "standard", dry_run: bool = False) -> dict:
    """The prepared run (module docstring). Returns the summary that it also writes to ``out/summary.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60 * minutes
    left = lambda: deadline - time.monotonic()
    logf = open(out / "run.log", "a")

    def log(msg):
        logf.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
        logf.flush()
        print(msg.splitlines()[0] if msg else msg, flush=True)

    import torch

    from ..config import describe

    if dry_run:
        budget = "quick"
    summary = {"command": " ".join([sys.executable, "-m", "localdiff_lib.publish.gpu", *sys.argv[1:]]),
               "dry_run": dry_run, "budget": budget, "minutes": minutes, "commit": _git_commit(ROOT),
               "describe": describe(), "python": platform.python_version(), "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": {}}
    try:
        summary["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
    except OSError:
        summary["nvidia_smi"] = None
    log(f"environment: {summary['describe']}; commit {summary['commit']}")
    summary["data"] = _unpack_data(out.parent / f".{out.name}-data-cache", log)  # sets LOCALDIFF_DATA first
    env = dict(os.environ, LOCALDIFF_BUDGET=budget, MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))

    def save():
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    # --- benchmarks
    bench = [[sys.executable, "-m", "localdiff_lib.bench"], [sys.executable, "-m", "localdiff_lib.bench_cmi"]]
    if dry_run:
        bench = [[sys.executable, "-m", "localdiff_lib.bench", "--device", "cpu", "--steps", "1", "--radii", "1"]]
    summary["steps"]["bench"] = [_run(cmd, log, 240 if dry_run else min(180, left() * 0.12), env=env) for cmd in bench]
    save()

    # --- chapters, each as a script in its own process
    pages = notebook_pages()
    pages = [p for p in pages if p.stem != "status"]
    if dry_run:
        pages = pages[:2]
    times = {}
    scripts = out.parent / f".{out.name}-scripts"
    scripts.mkdir(exist_ok=True)
    reserve = 0 if dry_run else 150          # seconds kept for the recipes after the chapters
    for md in pages:
        share = min(PER_CHAPTER_S, left() - reserve)  # up to 240 s; skipped below 30 s
        if share < 30:
            times[md.stem] = None
            summary["steps"].setdefault("skipped", []).append(md.stem)
            log(f"{md.stem}: skipped (no time left)")
            continue
        script = scripts / f"{md.stem}.py"
        script.write_text(script_of(md))
        r = _run([sys.executable, str(script)], log, share, cwd=md.parent, env=env)
        times[md.stem] = r["seconds"] if r["rc"] == 0 else None
        summary["steps"].setdefault("chapters", {})[md.stem] = r
        save()
    gpu_times = {k: summary[k] for k in ("budget", "describe", "python", "torch", "date", "commit")}
    gpu_times["chapters"] = times
    (out / "status_gpu.json").write_text(json.dumps(gpu_times, indent=2) + "\n")

    # --- the GPU recipes of the shipped results, then the converged checkpoints
    from .. import checkpoints, cmi_map

    recipes = [] if dry_run else (
        [(n, "cmi_map", "run", out) for n in cmi_map.MAP_RECIPES if n.endswith("-gpu")]
        + [(n, "checkpoints", "train", out / "checkpoints") for n, r in checkpoints.RECIPES.items() if "doubling" in r])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name, module, verb, where in recipes:
        if left() < 60:
            summary["steps"].setdefault("skipped", []).append(name)
            log(f"{name}: skipped (no time left)")
            continue
        summary["steps"].setdefault("recipes", {})[name] = _run(
            [sys.executable, "-m", f"localdiff_lib.{module}", verb, name, "--device", device, "--dir", str(where)],
            log, left() - 30, env=env)
        save()
    summary["seconds"] = round(60 * minutes - left(), 1)
    save()
    log(f"done in {summary['seconds']} s; summary in {out / 'summary.json'}")
    logf.close()
    return summary


#: where ``work`` writes by default: the status page's T4 column reads it
WORK_FILE = ROOT / "book" / "status_t4_estimate.json"


def work(out: Path = WORK_FILE, budget: str = "standard", pages: list[str] | None = None, timeout: float = 3600,
         threads: int = 1) -> dict:
    """Every chapter at ``budget`` on this machine's CPU under :mod:`localdiff_lib.publish.meter`: its wall time,
    torch operator calls and FLOPs, and the T4 estimate made from them, into ``out`` (JSON, with the commit, machine
    and date; each chapter also with the commit it ran at and the SHA-256 of its script). Resumable: a chapter already
    in ``out`` at the same budget whose script is unchanged is not run again. A chapter that fails or times out is
    recorded with its error's last lines (a claim that does not hold at the budget)."""
    from ..checkpoints import provenance  # commit, machine, torch, date

    out = Path(out)
    old = json.loads(out.read_text()) if out.exists() else {}
    head = dict(provenance("cpu"), budget=budget, threads=threads,
                command=" ".join(["python -m localdiff_lib.publish.gpu work", *sys.argv[2:]]))
    from .meter import LAUNCH_S, T4_EFFICIENCY, T4_FP32_FLOPS

    head["assumptions"] = dict(t4_fp32_flops=T4_FP32_FLOPS, t4_efficiency=T4_EFFICIENCY, launch_s=LAUNCH_S)
    result = dict(head, chapters=old.get("chapters", {}) if old.get("budget") == budget else {})
    env = dict(os.environ, LOCALDIFF_BUDGET=budget, MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=str(threads), LOCALDIFF_SMOKE="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    scripts = out.parent / f".{out.stem}-scripts"
    scripts.mkdir(exist_ok=True)
    for md in notebook_pages():
        if md.stem == "status" or (pages and md.stem not in pages):
            continue
        text, digest = script_of(md), script_digest(md)
        done = result["chapters"].get(md.stem) or {}
        if done.get("rc") == 0 and done.get("script_sha256") == digest:
            continue
        script, part = scripts / f"{md.stem}.py", scripts / f"{md.stem}.json"
        script.write_text(text)
        part.unlink(missing_ok=True)
        r = _run([sys.executable, "-m", "localdiff_lib.publish.meter", str(script), str(part)], lambda m: None,
                 timeout, cwd=md.parent, env=env)
        entry = json.loads(part.read_text()) if r["rc"] == 0 and part.exists() else {}
        entry.update(rc=r["rc"], wall_s=r["seconds"], git_commit=head["git_commit"], script_sha256=digest,
                     **({} if r["rc"] == 0 else {"tail": r["tail"][-600:]}))
        result["chapters"][md.stem] = entry
        out.write_text(json.dumps(result, indent=2) + "\n")
        est = entry.get("t4_estimate", {}).get("total")
        print(f"{md.stem}: rc {r['rc']}, {r['seconds']} s here" + (f", T4 estimate {est:.0f} s" if est else ""), flush=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m localdiff_lib.publish.gpu", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("pack", help="write .gpu_carry/ here (data and commit) for the GPU machine")
    r = sub.add_parser("run", help="the prepared run, on the GPU machine")
    r.add_argument("out", type=Path)
    r.add_argument("--minutes", type=float, default=9.0)
    r.add_argument("--budget", default="standard", choices=("quick", "standard", "full"))
    r.add_argument("--dry-run", action="store_true", help="the CPU rehearsal: quick, two chapters, no recipe")
    w = sub.add_parser("work", help="every chapter at a budget on this CPU, measured, and the T4 estimate")
    w.add_argument("--out", type=Path, default=WORK_FILE)
    w.add_argument("--budget", default="standard", choices=("quick", "standard", "full"))
    w.add_argument("--pages", nargs="*", default=None)
    w.add_argument("--timeout", type=float, default=3600)
    w.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    if a.cmd == "pack":
        pack()
        return 0
    if a.cmd == "work":
        res = work(a.out, a.budget, a.pages, a.timeout, a.threads)
        return 1 if any(c.get("rc") != 0 for c in res["chapters"].values()) else 0
    s = run(a.out, minutes=a.minutes, budget=a.budget, dry_run=a.dry_run)
    failed = [k for k, v in s["steps"].get("chapters", {}).items() if v["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
