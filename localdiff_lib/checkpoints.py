"""Shipped checkpoints: small denoisers trained by this module's own command, with their records.

A checkpoint is a directory ``localdiff_lib/pretrained/NAME/`` with

- ``model.pt``: the weights, written by :func:`localdiff_lib.train.save_checkpoint` (no optimizer state) and read
  with ``torch.load(weights_only=True)``;
- ``record.json``: the recipe (config), the command that trained it, the machine, torch version, git commit,
  wall time, the held-out metric of every model and the SHA-256 of ``model.pt``;
- ``train.log``: the training loss every 100 steps.

Most recipes are denoisers; a recipe with ``kind="classifier"`` is an :class:`localdiff_lib.evaluate.Classifier`
(trained by :func:`localdiff_lib.evaluate.train_classifier`), whose metric is its accuracy on the whole test split.

Every name is a recipe in :data:`RECIPES`; ``python -m localdiff_lib.checkpoints train NAME`` produces the
directory, ``python -m localdiff_lib.checkpoints check`` reloads every shipped one and recomputes its held-out
metric. :func:`load` refuses a file whose hash differs from its record. :func:`pretrained` loads a shipped
checkpoint, or trains the recipe into the cache (``LOCALDIFF_DATA``/checkpoints) when none is shipped.

The held-out metric is :func:`localdiff_lib.train.held_out_loss` (the velocity loss with a fixed draw of ``t``
and noise) on the first :data:`HELD_OUT` images of the data set's test split, never seen in training.
Chapters "Transition lab" and "Beyond the paper" use the denoisers, "Local versus global denoisers" and "Hybrid
sampling" the classifier.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from .config import default_device, seed_everything
from .data import cache_dir, load_dataset
from .models import build_model
from .train import fit, held_out_loss, load_checkpoint, save_checkpoint

__all__ = ["RECIPES", "HELD_OUT", "shipped_dir", "available", "record", "summary", "load", "pretrained", "train",
           "check", "local_denoisers", "global_unet", "classifier", "sha256", "provenance"]

HELD_OUT = 2000
_METRIC_NAME = {"denoiser": "train.held_out_loss on the first {n} {dataset} test images (seed 1234)",
                "classifier": "evaluate.accuracy on every {dataset} test image"}

#: the resumable training state in a checkpoint's directory (git-ignored; see :func:`train`)
WORK_FILE = "train-state.pt"

_LOCAL_RADII = (1, 2, 3, 4, 5, 6)
_FAMILY_RADII = (1, 2, 3, 4, 6, 8)
#: training until convergence: 1000, 2000, 4000, ... steps, stopped when a doubling improves every model's
#: held-out loss by less than 1 % (chapter "Local versus global denoisers")
_DOUBLING = dict(first=1000, max=32000, tol=0.01)


def _local_set(dataset: str) -> dict:
    return dict(
        dataset=dataset,
        models={f"r={r}": ["LocalDenoiser", dict(radius=r, channels=16)] for r in _LOCAL_RADII},
        fit=dict(steps=3000, batch_size=64, lr=2e-3, warmup=100, ema=0.999, seed=0),
        note="strictly local velocity models, receptive-field radius r = 1..6, trained together on the same batches",
    )


def _global(dataset: str) -> dict:
    return dict(
        dataset=dataset,
        models={"global": ["GlobalUNet", dict(channels=[16, 32, 64])]},
        fit=dict(steps=4000, batch_size=64, lr=2e-3, warmup=100, ema=0.999, seed=0),
        note="the library's small U-Net (receptive field: the whole image)",
    )


def _family(dataset: str, depth: int | None) -> dict:
    what = ("strictly local velocity models, radius r = 1, 2, 3, 4, 6, 8 (r - 1 residual blocks)" if depth is None else
            f"strictly local velocity models, radius r = 1, 2, 3, 4, 6, 8, all with {depth} residual blocks (3x3 "
            "convolutions for the window, 1x1 for the rest): only the window changes with r")
    extra = {} if depth is None else dict(depth=depth)
    return dict(
        dataset=dataset,
        models={f"r={r}": ["LocalDenoiser", dict(radius=r, channels=16, **extra)] for r in _FAMILY_RADII},
        fit=dict(batch_size=64, lr=2e-3, warmup=100, ema=0.999, seed=0),
        doubling=_DOUBLING,
        note=what + ", trained together until the held-out loss converges",
    )


def _authors_local(dataset: str) -> dict:
    return dict(
        dataset=dataset,
        models={f"r={r}": ["AuthorsLocalCNN", dict(nominal_radius=r, channels=16)] for r in (1, 3, 6)},
        fit=dict(batch_size=64, lr=2e-3, warmup=100, ema=0.999, seed=0),
        doubling=_DOUBLING,
        note="the authors' 'local' design rebuilt (models.AuthorsLocalCNN: convolutions reaching 2r - (r mod 2), "
             "GroupNorm, noise prediction), nominal radius r = 1, 3, 6, trained until the held-out loss converges, to "
             "measure what the design does to the identity-loss time (chapter 'Local versus global denoisers')",
    )


def _global_converged(dataset: str) -> dict:
    return dict(_global(dataset), fit=dict(batch_size=64, lr=2e-3, warmup=100, ema=0.999, seed=0), doubling=_DOUBLING,
                note="the library's small U-Net (receptive field: the whole image), trained until the held-out loss "
                     "converges")


def _classifier(dataset: str) -> dict:
    return dict(
        dataset=dataset,
        kind="classifier",
        models={"classifier": ["Classifier", dict(num_classes=10, width=32, feature_dim=128)]},
        fit=dict(steps=6000, batch_size=128, lr=2e-3, seed=0),
        note="the digit classifier of the identity-loss and sample-quality measurements (test accuracy at least 99 %)",
    )


#: name -> recipe: the data set (all of its training split), the models (class, constructor config) and the
#: arguments of :func:`localdiff_lib.train.fit`. Sized for two CPU cores (minutes, not hours).
RECIPES: dict[str, dict] = {
    "mnist-local-c16": _local_set("mnist"),
    "mnist-global-small": _global("mnist"),
    "fashion-mnist-local-c16": _local_set("fashion-mnist"),
    "fashion-mnist-global-small": _global("fashion-mnist"),
    # converged models (issue "local versus global, settled"): doubling steps until the held-out loss stops moving
    "mnist-local-family": _family("mnist", None),
    "mnist-local-fixed-depth": _family("mnist", 7),
    "mnist-global-unet": _global_converged("mnist"),
    "mnist-authors-local": _authors_local("mnist"),
    "fashion-mnist-local-family": _family("fashion-mnist", None),
    "fashion-mnist-local-fixed-depth": _family("fashion-mnist", 7),
    "fashion-mnist-global-unet": _global_converged("fashion-mnist"),
    "mnist-classifier": _classifier("mnist"),
}


def shipped_dir() -> Path:
    """Where the shipped checkpoints live (inside the installed package)."""
    return Path(__file__).resolve().parent / "pretrained"


def _cache_dir() -> Path:
    return cache_dir() / "checkpoints"


def _check_name(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"unknown checkpoint {name!r}; the recipes are: {', '.join(RECIPES)}")
    return RECIPES[name]


def sha256(file: str | Path) -> str:
    """The SHA-256 of a file, as hex."""
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def available(directory: str | Path | None = None) -> list[str]:
    """Names of the checkpoints present in ``directory`` (default: the shipped ones)."""
    d = Path(directory) if directory is not None else shipped_dir()
    return sorted(p.parent.name for p in d.glob("*/record.json"))


def _find(name: str, directory: str | Path | None) -> Path:
    _check_name(name)
    if directory is not None:
        return Path(directory) / name
    for d in (shipped_dir(), _cache_dir()):
        if (d / name / "record.json").exists():
            return d / name
    return shipped_dir() / name


def record(name: str, directory: str | Path | None = None) -> dict:
    """The record of checkpoint ``name``: recipe, command, machine, metrics, SHA-256 (see the module docstring)."""
    where = _find(name, directory)
    f = where / "record.json"
    if not f.exists():
        raise FileNotFoundError(
            f"no checkpoint {name!r} in {where.parent}; train it with `python -m localdiff_lib.checkpoints train {name}` "
            f"or use checkpoints.pretrained({name!r}), which trains it when it is missing")
    try:
        rec = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{f} is not valid JSON ({e}); restore it (git checkout) or train the checkpoint again") from e
    missing = [k for k in ("recipe", "sha256") if not isinstance(rec, dict) or k not in rec]
    if missing or not isinstance(rec.get("recipe"), dict) or "models" not in rec["recipe"]:
        raise ValueError(f"{f} is not a checkpoint record (it lacks {missing or ['recipe.models']}); restore it "
                         "(git checkout) or train the checkpoint again")
    return rec


def summary(name: str, directory: str | Path | None = None) -> str:
    """Checkpoint ``name``'s record in a few printed lines: steps, batch, time, machine and command; for a recipe
    trained by doublings, each model's held-out loss over the last doubling and whether it converged by the recipe's
    rule; the record's note on its time, if any. Chapters print it beside the shipped models they load."""
    rec = record(name, directory)
    threads = rec.get("threads")
    lines = [f"{rec['name']}: {rec['steps']} steps at batch {rec['recipe']['fit']['batch_size']}, "
             f"{rec['seconds']:.0f} s on {rec['machine']} ({rec['device']}"
             + ("" if threads is None else f", {threads} thread{'s' if threads != 1 else ''}")
             + f"), `{rec['command']}`"]
    curve = rec.get("held_out_curve")
    if curve is not None:
        def last(k, v):
            verdict = "converged" if curve["converged"][k] else "not converged"
            if len(v) < 2:  # one measurement says nothing about convergence
                return f"{k} {v[-1]:.4f} (one measurement, {verdict})"
            return f"{k} {v[-2]:.4f} -> {v[-1]:.4f} ({v[-1] / v[-2] - 1:+.1%}, {verdict})"
        lines.append(f"   held-out loss over the last doubling (converged: less than {curve['tol']:.0%} lower): "
                     + ", ".join(last(k, v) for k, v in curve["values"].items()))
    if "seconds_note" in rec:
        lines.append(f"   time: {rec['seconds_note']}")
    return "\n".join(lines)


def load(name: str, directory: str | Path | None = None, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """Load checkpoint ``name``: a dict key -> model in eval mode (keys as in the recipe, e.g. ``"r=3"``, ``"global"``).

    Raises ``ValueError`` when ``model.pt`` does not have the SHA-256 of its record (a corrupted or replaced file).
    """
    rec = record(name, directory)
    where = _find(name, directory)
    digest = sha256(where / "model.pt")
    if digest != rec["sha256"]:
        raise ValueError(f"{where / 'model.pt'} has SHA-256 {digest}, but its record says {rec['sha256']}: the file "
                         f"was changed or corrupted; restore it (git checkout) or train it again")
    keys = list(rec["recipe"]["models"])
    models = [_build(cls, cfg) for cls, cfg in rec["recipe"]["models"].values()]
    load_checkpoint(where / "model.pt", models)
    out = {}
    for k, m in zip(keys, models):
        out[k] = m.to(device).eval()
    return out


def local_denoisers(dataset: str = "mnist", device: str | torch.device = "cpu", kind: str = "c16"
                   ) -> dict[int, nn.Module]:
    """The shipped strictly local models of ``dataset`` as ``{r: model}``: :func:`pretrained` of
    ``DATASET-local-KIND``, where ``kind`` is ``"c16"`` (r = 1..6, 3000 steps) or ``"family"`` (r = 1, 2, 3, 4, 6, 8,
    trained until the held-out loss converges; chapter "Local versus global denoisers")."""
    return {int(k.split("=")[1]): m for k, m in pretrained(f"{dataset}-local-{kind}", device=device).items()}


def global_unet(dataset: str = "mnist", device: str | torch.device = "cpu", kind: str = "small") -> nn.Module:
    """The shipped U-Net of ``dataset``: :func:`pretrained` of ``DATASET-global-KIND``, where ``kind`` is ``"small"``
    (4000 steps) or ``"unet"`` (trained until the held-out loss converges)."""
    return pretrained(f"{dataset}-global-{kind}", device=device)["global"]


def classifier(dataset: str = "mnist", device: str | torch.device = "cpu") -> nn.Module:
    """The shipped digit classifier (:func:`pretrained` of ``DATASET-classifier``; MNIST only)."""
    return pretrained(f"{dataset}-classifier", device=device)["classifier"]


def _build(class_name: str, config: dict) -> nn.Module:
    if class_name == "Classifier":
        from .evaluate import Classifier

        return Classifier(**config)
    return build_model(class_name, config)


def _metric(recipe: dict, model: nn.Module) -> float:
    """The held-out metric of one model of a recipe: test accuracy (classifier) or held-out velocity loss."""
    if recipe.get("kind") == "classifier":
        from .evaluate import accuracy

        return accuracy(model, *load_dataset(recipe["dataset"], "test"))
    return held_out_loss(model, _held_out_images(recipe["dataset"]))


def pretrained(name: str, device: str | torch.device = "cpu", *, train_if_missing: bool = True) -> dict[str, nn.Module]:
    """Load a shipped checkpoint; when none is shipped, train its recipe into the cache first (and say so)."""
    _check_name(name)
    where = _find(name, None)
    if not (where / "record.json").exists():
        if not train_if_missing:
            record(name)  # raises with the instructions
        print(f"checkpoint {name!r} is not shipped; training its recipe into {_cache_dir()} (minutes on a CPU)")
        train(name, _cache_dir())
    return load(name, None, device)


def _held_out_images(dataset: str) -> torch.Tensor:
    test, _ = load_dataset(dataset, "test")
    return test[:HELD_OUT]


def provenance(device: torch.device | str = "cpu") -> dict:
    """Where and with what a result was produced: device, threads, machine, torch, Python, git commit, date (UTC).
    The records of shipped checkpoints and shipped results (:mod:`localdiff_lib.cmi_map`) carry these fields."""
    dev = torch.device(device)
    return dict(
        device=str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        threads=torch.get_num_threads(),
        machine=f"{platform.machine()}, {_cpu_name()}, {os.cpu_count()} logical CPUs",
        torch=torch.__version__,
        python=platform.python_version(),
        git_commit=_git_commit(),
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def schedule(recipe: dict) -> list[int]:
    """The step counts at which a recipe's held-out loss is measured: ``fit.steps`` alone, or, for a recipe with
    ``doubling=dict(first=N0, max=N1, tol=...)``, ``N0, 2 N0, 4 N0, ...`` up to ``N1``."""
    d = recipe.get("doubling")
    if d is None:
        return [recipe["fit"]["steps"]]
    out = [d["first"]]
    while out[-1] * 2 <= d["max"]:
        out.append(out[-1] * 2)
    return out


def converged(curve: list[float], tol: float) -> bool:
    """Whether the last doubling of training steps improved a held-out loss by less than ``tol`` (relative)."""
    return len(curve) >= 2 and curve[-2] - curve[-1] < tol * curve[-2]


def train(name: str, directory: str | Path | None = None, device: str | torch.device | None = None,
          threads: int | None = None, until: int | None = None) -> dict:
    """Train recipe ``name`` and write ``model.pt``, ``record.json`` and ``train.log`` to ``directory/NAME``.

    ``directory`` defaults to the shipped location (what the maintainers run before committing a checkpoint).
    A recipe with ``doubling`` trains ``N0, 2 N0, ...`` steps (:func:`schedule`) and stops at the first doubling
    that improves every model's held-out loss by less than ``doubling.tol``, or at ``doubling.max``; the
    directory is rewritten after every doubling (the record says which models converged and whether the run is
    ``complete``). The training state (weights, optimizer, EMA, losses, random state) is saved beside them as
    :data:`WORK_FILE` (git-ignored, never shipped) as it goes: the same command continues an interrupted run
    (delete the file to start again), and ``until=N`` stops after the doubling that reaches ``N`` steps (to share a
    machine between recipes; run again to go on). The record's ``seconds`` (wall time) add the calls that finished a
    doubling; the time an interrupted call spent before its last save is not counted, and a paused process counts
    its pause. ``cpu_seconds`` (the process's CPU time, all threads) does not count a pause; it is recorded when
    every call of the run measured it. Returns the record.
    """
    recipe = _check_name(name)
    out = (Path(directory) if directory is not None else shipped_dir()) / name
    out.mkdir(parents=True, exist_ok=True)
    if threads is not None:
        torch.set_num_threads(threads)
    dev = torch.device(device) if device is not None else default_device()
    if recipe.get("kind") == "classifier":
        return _train_classifier(name, recipe, out, dev, threads)
    images, _ = load_dataset(recipe["dataset"], "train")
    held = _held_out_images(recipe["dataset"])
    keys = list(recipe["models"])
    fit_args = {k: v for k, v in recipe["fit"].items() if k != "steps"}
    work = out / WORK_FILE
    side = work.with_suffix(".json")  # held-out curve and seconds so far, beside the training state
    state = (json.loads(side.read_text()) if work.exists() and side.exists()
             else dict(steps=[], curve={}, seconds=0.0, cpu_seconds=0.0))
    if not work.exists() and side.exists():
        side.unlink()
    rec = None
    for n_steps in schedule(recipe):
        if until is not None and n_steps > until:
            break
        if n_steps in state["steps"]:
            continue
        # --- train to n_steps (resuming the saved state) and measure every model's held-out loss
        seed_everything(recipe["fit"].get("seed", 0))  # the initial weights too: the same command gives the same file
        models = [build_model(cls, cfg).to(dev) for cls, cfg in recipe["models"].values()]
        t0, c0 = time.perf_counter(), time.process_time()
        hist = fit(models, images, steps=n_steps, device=dev, held_out=held, progress=False, checkpoint=work,
                   resume=True, **fit_args)
        state["seconds"] += time.perf_counter() - t0
        if "cpu_seconds" in state:  # absent in a state begun before it was measured: not known for the whole run
            state["cpu_seconds"] += time.process_time() - c0
        state["steps"].append(n_steps)
        for k, v in zip(keys, hist.held_out):
            state["curve"].setdefault(k, []).append(float(v))
        side.write_text(json.dumps(state))
        # --- write the directory: EMA weights, training log, record
        rec = _write(name, recipe, out, models, hist, state, dev, threads)
        if rec["complete"]:
            verdicts = (rec.get("held_out_curve") or {}).get("converged")
            if not verdicts or all(verdicts.values()):  # stopped at the largest budget unconverged: keep the state,
                work.unlink()                             # so that a recipe with a larger `max` goes on from it
                side.unlink()
            break
    if rec is None:
        rec = record(name, directory)
    return rec


def _train_classifier(name, recipe, out, dev, threads) -> dict:
    """A classifier recipe: minutes of training, so no doublings and no resumable state; metric: test accuracy."""
    from .evaluate import train_classifier

    (cls, cfg), = recipe["models"].values()
    if cls != "Classifier" or cfg != dict(num_classes=10, width=cfg["width"], feature_dim=128):
        raise ValueError(f"a classifier recipe trains evaluate.Classifier(width=...) with 10 classes and 128 features; "
                         f"got {cls}({cfg})")
    images, labels = load_dataset(recipe["dataset"], "train")
    losses: list[float] = []
    t0 = time.perf_counter()
    c0 = time.process_time()
    model = train_classifier(images, labels, width=cfg["width"], device=dev, losses=losses, **recipe["fit"])
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    hist = SimpleNamespace(steps=len(losses), losses=torch.tensor(losses)[:, None])
    state = dict(seconds=seconds, cpu_seconds=cpu_seconds, curve={"classifier": [_metric(recipe, model)]})
    return _write(name, recipe, out, [model], hist, state, dev, threads)


def _write(name, recipe, out, models, hist, state, dev, threads) -> dict:
    keys = list(recipe["models"])
    for m in models:
        m.to("cpu").to(memory_format=torch.contiguous_format)
    save_checkpoint(out / "model.pt", [m.cpu() for m in models], config=dict(name=name, recipe=recipe))
    losses = hist.losses.reshape(hist.losses.shape[0], -1)
    loss_name = "cross-entropy" if recipe.get("kind") == "classifier" else "velocity MSE"
    lines = [f"# {name}: training loss ({loss_name}) of each model, mean over the last 100 steps",
             "step " + " ".join(keys)]
    for s in range(100, losses.shape[0] + 1, 100):
        lines.append(f"{s} " + " ".join(f"{v:.5f}" for v in losses[s - 100:s].mean(0)))
    (out / "train.log").write_text("\n".join(lines) + "\n")
    plan = schedule(recipe)
    tol = (recipe.get("doubling") or {}).get("tol")
    done = {k: converged(c, tol) for k, c in state["curve"].items()} if tol is not None else None
    rec = dict(
        name=name,
        recipe=recipe,
        command=f"python -m localdiff_lib.checkpoints train {name}" + (f" --threads {threads}" if threads else ""),
        held_out=dict(metric=_METRIC_NAME[recipe.get("kind", "denoiser")].format(n=HELD_OUT, dataset=recipe["dataset"]),
                      values={k: c[-1] for k, c in state["curve"].items()}),
        steps=int(hist.steps),
        complete=int(hist.steps) == plan[-1] or (done is not None and all(done.values())),
        seconds=round(state["seconds"], 1),
        **({"cpu_seconds": round(state["cpu_seconds"], 1)} if "cpu_seconds" in state else {}),
        **provenance(dev),
        sha256=sha256(out / "model.pt"),
        size_bytes=(out / "model.pt").stat().st_size,
    )
    if tol is not None:
        rec["held_out_curve"] = dict(steps=state["steps"], values=state["curve"], tol=tol, converged=done)
    (out / "record.json").write_text(json.dumps(rec, indent=2) + "\n")
    return rec


def check(name: str, directory: str | Path | None = None, rtol: float = 1e-3) -> dict[str, tuple[float, float]]:
    """Reload checkpoint ``name``, recompute its held-out metric; raise ``AssertionError`` if it moved by more than ``rtol``.

    Returns ``{key: (recorded, recomputed)}``.
    """
    rec = record(name, directory)
    models = load(name, directory)
    out = {}
    for k, m in models.items():
        want = rec["held_out"]["values"][k]
        got = _metric(rec["recipe"], m)
        if abs(got - want) > rtol * abs(want):
            raise AssertionError(f"checkpoint {name}, model {k}: held-out loss {got:.6f}, recorded {want:.6f}")
        out[k] = (want, got)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdiff_lib.checkpoints", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train", help="train recipes and write their directories")
    p.add_argument("names", nargs="+", choices=list(RECIPES))
    p.add_argument("--dir", default=None, help="output directory (default: the shipped location)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--until", type=int, default=None,
                   help="stop after the doubling that reaches this many steps (run the command again to go on)")
    sub.add_parser("list", help="list recipes and whether each is shipped")
    c = sub.add_parser("check", help="reload each shipped checkpoint and recompute its held-out metric")
    c.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if args.cmd == "train":
        for n in args.names:
            rec = train(n, args.dir, args.device, args.threads, args.until)
            print(f"{n}: {rec['steps']} steps, {rec['seconds']:.0f} s, {'complete' if rec['complete'] else 'to be continued'}, "
                  f"held-out {rec['held_out']['values']}, sha256 {rec['sha256'][:16]}...", flush=True)
    elif args.cmd == "list":
        have = set(available())
        for n, r in RECIPES.items():
            print(f"{n:32s} {'shipped' if n in have else 'not shipped':12s} {r['note']}")
    else:
        for n in args.names or available():
            for k, (want, got) in check(n).items():
                print(f"{n} {k}: recorded {want:.5f}, recomputed {got:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
