"""Results too slow for a chapter's quick run, computed by the library's own command and shipped with provenance.

A recipe (:data:`RECIPES`) says what to compute, as a list of independent **units** (one model with one sampler,
...). ``python -m localdiff_lib.shipped run NAME`` computes them one at a time into ``localdiff_lib/results/NAME/``:
``results.json`` (the recipe and one entry per finished unit), ``record.json`` (command, recipe, finished units,
machine, torch, git commit, wall time and CPU time, SHA-256 of ``results.json`` and of every checkpoint the units
use) and ``run.log``. Both JSON files are rewritten atomically after every unit, so an interrupted run keeps what it
finished and the same command resumes it; a recipe that differs from the one on disk is refused (``--restart``
discards it), except that a recipe may add models: their units are computed, the finished ones kept. A run refuses
to add to a result computed with another version of a checkpoint (``--refresh`` recomputes the units that used it,
``--restart`` all), and :func:`load`, which reads a result back and checks its hash, refuses to read it;
``python -m localdiff_lib.shipped list`` loads every shipped result. (The CMI
maps have the same layout, written by :mod:`localdiff_lib.cmi_map`, whose units are times.)

Recipes:

* ``identity-*`` (chapter "Local versus global denoisers"): for each shipped model and each sampler (the ODE with
  Euler steps, or the authors' ``x <- x - dt z_hat``), the class and instance verdicts of
  :func:`localdiff_lib.evaluate.identity_curves` for every image and noise time ``T``, stored as packed bits.
  :func:`identity_summary` turns them into identity-loss times at several thresholds, per-image onsets and medians.
* ``gap-*`` (chapter "Beyond the paper", the theorem tested on the denoisers): for each set of clean images (training
  or held-out digits) and each time ``t``, at the paper's pixel ``A``: the exact local-versus-global gap of the
  closed-form denoisers of all training images and the informations that bound it
  (:func:`localdiff_lib.closed_form.pixel_gaps`), and the one-step errors of the trained networks at ``A``, as means
  with standard errors over the images (:func:`gap_values` computes them per image; a chapter recomputes a slice).
* ``hybrid-*`` (chapter "Hybrid sampling"): for each schedule (the paper's four, the all-global sampler with Euler
  and with Heun steps at the paper split's multiply-adds per image, a sweep of the global window's position and
  width) and each sampler seed, :func:`localdiff_lib.evaluate.sample_quality` of ``n_samples`` generated images, the
  cost record and a few images (:func:`kept_images`).
* ``ceiling-*`` (chapter "Beyond the paper", the ceiling): for each set of clean images and each time ``t``, at one
  interior pixel per image, the one-step squared error of the best translation-equivariant local denoiser of all
  training images (:func:`localdiff_lib.closed_form.interior_local_x0`) for each radius, and of the trained networks,
  as means with standard errors, and each local network's paired excess over the ceiling of its radius
  (:func:`ceiling_values` computes them per query; a chapter recomputes the first queries), and how well the ceiling
  predicts each local network's estimates (:func:`ceiling_r2`).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import checkpoints, closed_form, evaluate, path, stats
from .checkpoints import provenance, sha256
from .config import default_device
from .data import load_dataset, subset
from .info import PAPER_CROP, paper_a_pixel, paper_crop
from .sampling import HybridSchedule, equal_compute_steps, sample

__all__ = ["RECIPES", "run", "load", "units", "checkpoints_of", "checkpoint_hashes",
           "identity_data", "identity_summary", "hybrid_data", "kept_images", "gap_data", "gap_values", "ceiling_data",
           "ceiling_values", "ceiling_r2", "pack_bits", "unpack_bits", "main"]

_T_FINE = [round(0.05 * k, 2) for k in range(1, 19)]          # 0.05, 0.10, ..., 0.90


def _identity_recipe(dataset: str, models: dict) -> dict:
    return dict(kind="identity", dataset=dataset, n_images=1000, image_seed=3, noise_seed=0, T_values=_T_FINE,
                steps_per_unit_time=32, classifier=f"{dataset}-classifier", models=models,
                solvers=["euler", "authors"])


def _hybrid_recipe(dataset: str, local: list, global_: list) -> dict:
    paper = (0.2, 0.5)
    schedules = {
        "all global": dict(default="global"),
        "paper: local / global on [0.2, 0.5) / local": dict(default="local", windows=[[*paper, "global"]]),
        "reverse: global / local on [0.2, 0.5) / global": dict(default="global", windows=[[*paper, "local"]]),
        "all local": dict(default="local"),
        "all global, Euler, the paper split's compute": dict(default="global", equal_compute="euler"),
        "all global, Heun, the paper split's compute": dict(default="global", equal_compute="heun"),
    }
    for lo in (0.0, 0.125, 0.25, 0.375, 0.5, 0.625):                 # the window's position (width 0.25) ...
        schedules[f"global on [{lo:g}, {lo + 0.25:g})"] = dict(default="local", windows=[[lo, lo + 0.25, "global"]])
    for width in (0.125, 0.375):                                         # ... and its width (from 0.25)
        schedules[f"global on [0.25, {0.25 + width:g})"] = dict(default="local", windows=[[0.25, 0.25 + width, "global"]])
    return dict(kind="hybrid", dataset=dataset, local=local, global_=global_, classifier=f"{dataset}-classifier",
                n_samples=2000, seeds=[0, 1, 2], steps=32, real_seed=5, n_keep=8, schedules=schedules)


def _gap_recipe(dataset: str, local: str, global_: list) -> dict:
    return dict(kind="gap", dataset=dataset, n_images=512, n_head=32, image_seed=4, noise_seed=1, t_values=_T_FINE,
                radii=[1, 2, 3, 4, 6], crop=PAPER_CROP, local=local, global_=global_)


def _ceiling_recipe(dataset: str, models: dict) -> dict:
    return dict(kind="ceiling", dataset=dataset, n_queries=256, n_head=8, query_seed=6, noise_seed=2,
                t_values=_T_FINE[1::2], radii=[1, 2, 3, 4, 6], margin=6, models=models)


#: name -> recipe; ``models`` maps a row label to ``[checkpoint name, model key in that checkpoint]``
RECIPES = {
    "identity-mnist": _identity_recipe("mnist", {
        **{f"local r={r} (c16)": ["mnist-local-c16", f"r={r}"] for r in (1, 2, 3, 4, 6)},
        "global (small U-Net)": ["mnist-global-small", "global"],
        "local r=3 (family)": ["mnist-local-family", "r=3"],       # the same network trained 32,000 steps
        "global (U-Net, long run)": ["mnist-global-unet", "global"],   # the same U-Net trained by doublings
        **{f"authors r={r}": ["mnist-authors-local", f"r={r}"] for r in (1, 3, 6)},   # the authors' architecture
    }),
    "hybrid-mnist": _hybrid_recipe("mnist", ["mnist-local-c16", "r=3"], ["mnist-global-small", "global"]),
    # the same two networks trained longer, by doublings (32,000 steps each: r = 3 converged by the 1 % rule, the
    # U-Net still improving by 1.3 % per doubling)
    "hybrid-mnist-long": _hybrid_recipe("mnist", ["mnist-local-family", "r=3"], ["mnist-global-unet", "global"]),
    "gap-mnist": _gap_recipe("mnist", "mnist-local-c16", ["mnist-global-small", "global"]),
    "ceiling-mnist": _ceiling_recipe("mnist", {
        **{f"c16 r={r}": ["mnist-local-c16", f"r={r}"] for r in (1, 2, 3, 4, 6)},
        **{f"family r={r}": ["mnist-local-family", f"r={r}"] for r in (1, 2, 3, 4, 6)},
        "global (small U-Net)": ["mnist-global-small", "global"],
    }),
}


def units(recipe: dict) -> list[str]:
    """The units of a recipe, in the order a run computes them."""
    if recipe["kind"] == "identity":
        return [f"{model} | {solver}" for solver in recipe["solvers"] for model in recipe["models"]]
    if recipe["kind"] == "hybrid":
        return [f"{schedule} | seed {seed}" for seed in recipe["seeds"] for schedule in recipe["schedules"]]
    if recipe["kind"] in ("gap", "ceiling"):
        return [f"{split} | t = {t:g}" for split in GAP_SPLITS for t in recipe["t_values"]]
    raise ValueError(f"unknown recipe kind {recipe['kind']!r}")


# ---------------------------------------------------------------------------------------------- packed bits


def pack_bits(kept: np.ndarray) -> dict:
    """A boolean array as ``{"shape": [...], "bits": base64}`` (eight verdicts per byte)."""
    kept = np.asarray(kept, dtype=bool)
    return dict(shape=list(kept.shape), bits=base64.b64encode(np.packbits(kept.ravel())).decode("ascii"))


def unpack_bits(packed: dict) -> np.ndarray:
    """The boolean array of :func:`pack_bits`."""
    n = int(np.prod(packed["shape"]))
    flat = np.unpackbits(np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8))[:n]
    return flat.astype(bool).reshape(packed["shape"])


# ---------------------------------------------------------------------------------------------- identity


def identity_data(recipe: dict):
    """The images, labels and noise of an ``identity-*`` recipe: its class-balanced test digits and one noise draw."""
    x_te, y_te = load_dataset(recipe["dataset"], "test")
    images, labels = subset(x_te, y_te, n=recipe["n_images"], seed=recipe["image_seed"], balanced=True)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(recipe["noise_seed"]))
    return images, labels, noise


def _identity_unit(unit: str, recipe: dict, device, cache: dict) -> dict:
    model_label, solver = unit.split(" | ")
    if "data" not in cache:
        cache["data"] = identity_data(recipe)
        cache["classifier"] = checkpoints.pretrained(recipe["classifier"], device=device)["classifier"]
    images, labels, noise = cache["data"]
    name, key = recipe["models"][model_label]
    model = checkpoints.load(name, device=device)[key]
    cls, inst = evaluate.identity_curves(model, images, labels, cache["classifier"], recipe["T_values"], solver=solver,
                                         steps_per_unit_time=recipe["steps_per_unit_time"], noise=noise)
    return dict(class_kept=pack_bits(cls), instance_kept=pack_bits(inst))


def identity_summary(result: dict, thresholds=(0.9, 0.7, 0.5), n_boot: int = 1000, seed: int = 0) -> dict:
    """Per unit of an ``identity-*`` result (:func:`load`): the fraction kept at each ``T`` (class, instance), the
    identity-loss time of the population curve at each threshold with a 90 % bootstrap interval over the images
    (as in the chapter), and the per-image onset (10 % quantile of the loss times) and median, for both verdicts.
    Returns ``{unit: {"class": {...}, "instance": {...}}}``."""
    Ts = np.asarray(result["recipe"]["T_values"])
    rng = np.random.default_rng(seed)
    out = {}
    boot = None
    for unit, entry in result["units"].items():
        out[unit] = {}
        for verdict in ("class", "instance"):
            kept = unpack_bits(entry[f"{verdict}_kept"])
            if boot is None:
                boot = rng.integers(0, kept.shape[1], size=(n_boot, kept.shape[1]))
            frac = kept.mean(axis=1)
            times = evaluate.loss_times(kept, Ts)
            q = lambda v, p: float(np.quantile(v, p, method="inverted_cdf"))   # never interpolates into inf
            lost = {}
            for a in thresholds:
                samples = np.array([evaluate.crossing_time(Ts, kept[:, b].mean(axis=1), a) for b in boot])
                ci = np.quantile(samples, [0.05, 0.95], method="inverted_cdf")       # inf stays inf
                lost[a] = (evaluate.crossing_time(Ts, frac, a), (float(ci[0]), float(ci[1])))
            out[unit][verdict] = dict(fraction=frac, t_lost=lost, onset=q(times, 0.1), median=q(times, 0.5))
    return out


# ---------------------------------------------------------------------------------------------- hybrid


def hybrid_data(recipe: dict):
    """The real images of a ``hybrid-*`` recipe: two disjoint sets of test digits of the sample size (the reference
    and the floor's second set) and the whole training split (nearest-neighbour distances)."""
    x_te, y_te = load_dataset(recipe["dataset"], "test")
    n = recipe["n_samples"]
    perm = torch.randperm(len(x_te), generator=torch.Generator().manual_seed(recipe["real_seed"]))
    train, _ = load_dataset(recipe["dataset"], "train")
    return x_te[perm[:n]], x_te[perm[n:2 * n]], train


def _schedule(spec: dict, models: dict) -> HybridSchedule:
    return HybridSchedule(models[spec["default"]], [(lo, hi, models[m]) for lo, hi, m in spec.get("windows", [])])


def _hybrid_unit(unit: str, recipe: dict, device, cache: dict) -> dict:
    name, seed = unit.rsplit(" | seed ", 1)
    if "models" not in cache:
        cache["models"] = {"local": checkpoints.load(recipe["local"][0], device=device)[recipe["local"][1]],
                           "global": checkpoints.load(recipe["global_"][0], device=device)[recipe["global_"][1]]}
        cache["classifier"] = checkpoints.pretrained(recipe["classifier"], device=device)["classifier"]
        cache["real"] = hybrid_data(recipe)
        paper = _schedule(recipe["schedules"]["paper: local / global on [0.2, 0.5) / local"], cache["models"])
        cache["paper_macs"] = sample(paper, n=1, steps=recipe["steps"], device=device)[1].macs_per_image
    spec = recipe["schedules"][name]
    schedule, steps, solver = _schedule(spec, cache["models"]), recipe["steps"], "euler"
    if "equal_compute" in spec:   # the global model alone, as many steps as the paper split's multiply-adds pay for
        solver = spec["equal_compute"]
        steps = equal_compute_steps(cache["paper_macs"], cache["models"]["global"], solver)
    x, rec = sample(schedule, n=recipe["n_samples"], steps=steps, solver=solver, seed=int(seed), device=device)
    x = x.cpu()
    real, real_floor, train = cache["real"]
    q = evaluate.sample_quality(cache["classifier"], x, real, real_floor, train.to(device))
    keep = (x[:recipe["n_keep"]].clamp(0, 1) * 255).round().to(torch.uint8).numpy()    # a few, for the figure
    return dict(quality=dataclasses.asdict(q), steps=steps, solver=solver, macs_per_image=rec.macs_per_image,
                nfe_by_model=rec.nfe_by_model,
                images=dict(shape=list(keep.shape), uint8=base64.b64encode(keep.tobytes()).decode("ascii")))


def kept_images(entry: dict) -> torch.Tensor:
    """The few generated images a ``hybrid-*`` unit keeps for its figure, as floats in [0, 1] (clipped and
    quantised to 8 bits for storage)."""
    a = np.frombuffer(base64.b64decode(entry["images"]["uint8"]), dtype=np.uint8).reshape(entry["images"]["shape"])
    return torch.from_numpy(a.astype(np.float32) / 255)


# ---------------------------------------------------------------------------------------------- gap

#: the clean images of a ``gap-*`` unit: training digits (where the closed forms are the Bayes optima) or held-out ones
GAP_SPLITS = ("training", "held-out")


def gap_data(recipe: dict, split: str):
    """The clean images and the noise of a ``gap-*`` recipe for ``split`` (``"training"``: a random subset of the
    training digits; ``"held-out"``: class-balanced test digits), and all training images (the closed forms' data)."""
    if split not in GAP_SPLITS:
        raise ValueError(f"split must be one of {GAP_SPLITS}, got {split!r}")
    train, _ = load_dataset(recipe["dataset"], "train")
    if split == "training":
        images = subset(train, n=recipe["n_images"], seed=recipe["image_seed"])
    else:
        x_te, y_te = load_dataset(recipe["dataset"], "test")
        images, _ = subset(x_te, y_te, n=recipe["n_images"], seed=recipe["image_seed"], balanced=True)
    seed = recipe["noise_seed"] + GAP_SPLITS.index(split)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return images, noise, train


def gap_values(x0: torch.Tensor, noise: torch.Tensor, t: float, train: torch.Tensor, radii, models: dict | None = None,
               crop: int = PAPER_CROP, chunk: int = 128) -> dict[str, np.ndarray]:
    """Per image, at the paper's pixel ``A``: the closed-form quantities of
    :func:`localdiff_lib.closed_form.pixel_gaps` on the paper's crop (``"excess r=R"``, ``"kl r=R"``, ``"kl_b r=R"``,
    ``"log_ratio r=R"``) and, for each of ``models`` (label -> model), the one-step squared error of its clean-image
    estimate at ``A`` (``"error LABEL"``) and the estimate itself (``"x0 LABEL"``)."""
    x = (1 - t) * x0 + t * noise
    a_crop, a_full = (crop // 2, crop // 2), paper_a_pixel(x0.shape[-1], crop)
    train_c = paper_crop(train, crop)
    out: dict[str, list] = {}
    for s in range(0, x.shape[0], chunk):
        gaps = closed_form.pixel_gaps(paper_crop(x[s:s + chunk], crop), t, train_c, radii, a_crop)
        for r, g in gaps.items():
            for q in ("excess", "kl", "kl_b", "log_ratio"):
                out.setdefault(f"{q} r={r}", []).append(getattr(g, q).numpy())
    for label, model in (models or {}).items():
        dev = next(model.parameters()).device
        with torch.no_grad():
            xd = x.to(dev)
            x0_hat = path.to_x0(model(xd, t), model.prediction, xd, t)[:, 0, a_full[0], a_full[1]].cpu()
        out[f"x0 {label}"] = [x0_hat.double().numpy()]
        out[f"error {label}"] = [((x0_hat - x0[:, 0, a_full[0], a_full[1]]) ** 2).double().numpy()]
    return {k: np.concatenate(v) for k, v in out.items()}


def _gap_unit(unit: str, recipe: dict, device, cache: dict) -> dict:
    split, t = unit.split(" | t = ")
    if split not in cache:
        cache[split] = gap_data(recipe, split)
    if "models" not in cache:
        local = checkpoints.load(recipe["local"], device=device)
        cache["models"] = {**{k: m for k, m in local.items() if int(k.split("=")[1]) in recipe["radii"]},
                           "global": checkpoints.load(recipe["global_"][0], device=device)[recipe["global_"][1]]}
    x0, noise, train = cache[split]
    v = gap_values(x0, noise, float(t), train, recipe["radii"], cache["models"], crop=recipe["crop"])
    for k in [k for k in v if k.startswith("x0 ") and k != "x0 global"]:  # the trained local-versus-global gap
        v["net gap " + k[3:]] = (v[k] - v["x0 global"]) ** 2
    n = len(x0)
    return {k: dict(mean=float(a.mean()), se=float(a.std(ddof=1) / np.sqrt(n))) for k, a in v.items()} | dict(
        n=n, pinsker_violations=int(sum((v[f"excess r={r}"] > v[f"kl r={r}"] / 2 + 1e-12).sum()
                                        for r in recipe["radii"])),
        # the closed-form values of the first images, per image: a chapter recomputes them live and compares exactly
        head={k: a[:recipe["n_head"]].tolist() for k, a in v.items() if k.startswith(("excess ", "kl "))})


# ---------------------------------------------------------------------------------------------- ceiling


def ceiling_data(recipe: dict, split: str):
    """The queries of a ``ceiling-*`` recipe for ``split``: clean images (``"training"``: drawn from the training
    digits, the distribution the ceiling is optimal for; ``"held-out"``: test digits), one interior pixel per image
    (uniform over the positions at least ``margin`` from the border), one noise draw, and all training images."""
    if split not in GAP_SPLITS:
        raise ValueError(f"split must be one of {GAP_SPLITS}, got {split!r}")
    train, _ = load_dataset(recipe["dataset"], "train")
    source = train if split == "training" else load_dataset(recipe["dataset"], "test")[0]
    gen = torch.Generator().manual_seed(recipe["query_seed"] + GAP_SPLITS.index(split))
    n, m, (H, W) = recipe["n_queries"], recipe["margin"], train.shape[2:]
    images = source[torch.randperm(len(source), generator=gen)[:n]]
    pixels = torch.stack([torch.randint(m, H - m, (n,), generator=gen),
                          torch.randint(m, W - m, (n,), generator=gen)], 1)
    noise_gen = torch.Generator().manual_seed(recipe["noise_seed"] + GAP_SPLITS.index(split))
    noise = torch.randn(images.shape, generator=noise_gen)
    return images, pixels, noise, train


def ceiling_values(x0: torch.Tensor, pixels: torch.Tensor, noise: torch.Tensor, t: float, train: torch.Tensor, radii,
                   margin: int, models: dict | None = None) -> dict[str, np.ndarray]:
    """Per query (image, interior pixel): the best equivariant local estimate of radius ``r`` from all of ``train``
    (:func:`localdiff_lib.closed_form.interior_local_x0`, ``"x0 ceiling r=R"``) and each model's clean-image estimate
    (``"x0 LABEL"``), with their squared errors (``"error ..."``)."""
    x = (1 - t) * x0 + t * noise
    truth = x0[torch.arange(len(x0)), 0, pixels[:, 0], pixels[:, 1]].double()
    est = {f"ceiling r={r}": closed_form.interior_local_x0(x, t, train, r, margin, pixels) for r in radii}
    for label, model in (models or {}).items():
        dev = next(model.parameters()).device
        with torch.no_grad():
            xd = x.to(dev)
            x0_hat = path.to_x0(model(xd, t), model.prediction, xd, t).cpu()
        est[label] = x0_hat[torch.arange(len(x0)), 0, pixels[:, 0], pixels[:, 1]]
    out = {}
    for label, e in est.items():
        out[f"x0 {label}"] = e.double().numpy()
        out[f"error {label}"] = ((e.double() - truth) ** 2).numpy()
    return out


def ceiling_r2(ceiling: np.ndarray, net: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """How well the ceiling's estimates predict a network's, pooled over the queries (one pixel each):
    ``r^2 = 1 - sum (net - ceiling)^2 / sum (net - mean net)^2`` (:func:`localdiff_lib.evaluate.r_squared` with the
    queries as the pixels of one image), with a 95 % percentile bootstrap interval over the queries
    (``value``, ``lo``, ``hi``). Kamb and Ganguli's r^2 of the analytic local machine against trained networks."""
    c, y = torch.as_tensor(np.asarray(ceiling, dtype=np.float64)), torch.as_tensor(np.asarray(net, dtype=np.float64))
    r2 = lambda idx: float(evaluate.r_squared(c[None, idx], y[None, idx])[0])
    lo, hi = stats.bootstrap_interval(r2, len(c), n_boot=n_boot, seed=seed)
    return dict(value=r2(np.arange(len(c))), lo=lo, hi=hi)


def _ceiling_unit(unit: str, recipe: dict, device, cache: dict) -> dict:
    split, t = unit.split(" | t = ")
    if split not in cache:
        cache[split] = ceiling_data(recipe, split)
    if "models" not in cache:
        cache["models"] = {label: checkpoints.load(name, device=device)[key]
                           for label, (name, key) in recipe["models"].items()}
    x0, pixels, noise, train = cache[split]
    v = ceiling_values(x0, pixels, noise, float(t), train, recipe["radii"], recipe["margin"], cache["models"])
    r2 = {}
    for label, (_, key) in recipe["models"].items():   # a local network against the ceiling of its radius, paired
        if key.startswith("r=") and int(key[2:]) in recipe["radii"]:
            v[f"excess {label}"] = v[f"error {label}"] - v[f"error ceiling {key}"]
            r2[f"r2 {label}"] = ceiling_r2(v[f"x0 ceiling {key}"], v[f"x0 {label}"])
    n = len(x0)
    return {k: dict(mean=float(a.mean()), se=float(a.std(ddof=1) / np.sqrt(n)))
            for k, a in v.items() if not k.startswith("x0 ")} | r2 | dict(
        n=n, head={k: a[:recipe["n_head"]].tolist() for k, a in v.items() if k.startswith("x0 ")})


_COMPUTE = {"identity": _identity_unit, "hybrid": _hybrid_unit, "gap": _gap_unit, "ceiling": _ceiling_unit}


# ---------------------------------------------------------------------------------------------- run and load


def results_dir() -> Path:
    """Where shipped results live (inside the installed package): ``localdiff_lib/results/``."""
    return Path(__file__).resolve().parent / "results"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_checked(out: Path, command: str) -> tuple[dict, dict]:
    """``(record, results)`` of the result directory ``out``, after checking the SHA-256 of ``results.json`` against
    its record; ``command`` is what produces it (said when the directory is missing)."""
    rec_file, res_file = out / "record.json", out / "results.json"
    if not rec_file.exists():
        raise FileNotFoundError(f"no shipped result {out.name!r} in {out.parent}; produce it with `{command}`")
    rec = json.loads(rec_file.read_text())
    if sha256(res_file) != rec["sha256"]:
        raise ValueError(f"{res_file} does not match the SHA-256 of its record: it was changed after the run; "
                         "recompute it with the command in record.json")
    return rec, json.loads(res_file.read_text())


def checkpoints_of(recipe: dict, unit: str | None = None) -> list[str]:
    """The names of the shipped checkpoints whose networks the units of ``recipe`` use, or one ``unit`` uses: an
    ``identity`` unit (``"MODEL | SOLVER"``) its own model's and the classifier, a unit of the other kinds all of them."""
    kind = recipe["kind"]
    if kind == "identity" and unit is not None:
        names = [recipe["models"][unit.split(" | ")[0]][0]]
    elif kind in ("identity", "ceiling"):
        names = [name for name, _ in recipe["models"].values()]
    elif kind == "hybrid":
        names = [recipe["local"][0], recipe["global_"][0]]
    else:  # gap
        names = [recipe["local"], recipe["global_"][0]]
    return sorted(set(names) | ({recipe["classifier"]} if "classifier" in recipe else set()))


def checkpoint_hashes(recipe: dict) -> dict[str, str]:
    """``{name: SHA-256 of model.pt}`` of the checkpoints of ``recipe`` that exist now (shipped or cached)."""
    out = {}
    for name in checkpoints_of(recipe):
        try:
            out[name] = checkpoints.record(name)["sha256"]
        except FileNotFoundError:
            pass  # not trained yet: the run trains it (checkpoints.pretrained) and records it then
    return out


def _stale_checkpoints(rec: dict, now: dict[str, str]) -> dict:
    """The checkpoints whose SHA-256 differs between a result's record and ``now``: ``{name: (recorded, now)}``."""
    return {n: (h, now[n]) for n, h in rec.get("checkpoints", {}).items() if n in now and now[n] != h}


def _recipe_diff(old: dict, new: dict) -> dict:
    """What differs between two recipes, except that ``new`` may add models (new units; the finished ones stay)."""
    diff = {k: (old.get(k), new.get(k)) for k in set(old) | set(new) if k != "models" and old.get(k) != new.get(k)}
    changed = {m: (spec, new.get("models", {}).get(m)) for m, spec in old.get("models", {}).items()
               if new.get("models", {}).get(m) != spec}
    return {**diff, **({"models": changed} if changed else {})}


def run(name: str, directory: str | Path | None = None, device: str | None = None, threads: int | None = None,
        restart: bool = False, recipe: dict | None = None, max_units: int | None = None,
        refresh: bool = False) -> dict:
    """Compute recipe ``name`` into ``directory/NAME/`` (default: the shipped results) and return its record.

    Resumes an interrupted run; refuses a recipe that differs from the one on disk unless ``restart`` (added models
    are new units). A result computed with another version of a checkpoint is refused too, unless ``restart`` or
    ``refresh``: ``refresh`` discards only the units that used a changed checkpoint (:func:`checkpoints_of` a unit) and
    computes them again. ``recipe`` replaces the named one (tests); ``max_units`` stops after that many more units.
    The record's ``seconds`` add every call, discarded units included.
    """
    if recipe is None and name not in RECIPES:
        raise ValueError(f"unknown result recipe {name!r}; the recipes are: {', '.join(RECIPES)}")
    recipe = json.loads(json.dumps(RECIPES[name] if recipe is None else recipe))
    todo_all = units(recipe)
    out = (Path(directory) if directory is not None else results_dir()) / name
    out.mkdir(parents=True, exist_ok=True)
    res_file, rec_file, log_file = out / "results.json", out / "record.json", out / "run.log"
    done, seconds_before, cpu_before, stale, dropped = {}, 0.0, 0.0, {}, []
    if res_file.exists() and not restart:
        old = json.loads(res_file.read_text())
        diff = _recipe_diff(old["recipe"], recipe)
        if diff:
            raise ValueError(f"{res_file} was computed with another recipe (on disk, now): {diff}; "
                             "pass restart=True (--restart) to discard it")
        done = {u: v for u, v in old["units"].items() if u in todo_all}
        old_rec = json.loads(rec_file.read_text()) if rec_file.exists() else {}
        stale = _stale_checkpoints(old_rec, checkpoint_hashes(recipe))
        if stale and not refresh:
            raise ValueError(f"{res_file} was computed with other versions of the checkpoints {sorted(stale)} "
                             f"(SHA-256 recorded, now: {stale}); pass refresh=True (--refresh) to recompute the units "
                             "that used them, or restart=True (--restart) to recompute it all")
        dropped = sorted(u for u in done if set(checkpoints_of(recipe, u)) & set(stale))
        done = {u: v for u, v in done.items() if u not in dropped}
        seconds_before = float(old_rec.get("seconds", 0.0))
        cpu_before = old_rec.get("cpu_seconds") if old_rec else 0.0   # None: not measured from the start
    if threads is not None:
        torch.set_num_threads(int(threads))
    dev = torch.device(device) if device is not None else default_device()
    command = f"python -m localdiff_lib.shipped run {name}" + (f" --threads {threads}" if threads else "") + (
        f" --device {device}" if device else "")
    started, t_run, c_run = provenance(dev), time.perf_counter(), time.process_time()
    used = checkpoint_hashes(recipe)  # as the run starts; a checkpoint trained by the run is added when it exists

    def save() -> dict:
        atomic_write(res_file, json.dumps(dict(recipe=recipe, units=done)) + "\n")
        finished = [u for u in todo_all if u in done]
        record = dict(name=name, command=command, recipe=recipe, finished_units=finished,
                      complete=len(finished) == len(todo_all),
                      seconds=round(seconds_before + time.perf_counter() - t_run, 1),
                      **({} if cpu_before is None else
                         {"cpu_seconds": round(cpu_before + time.process_time() - c_run, 1)}), **started,
                      checkpoints={**checkpoint_hashes(recipe), **used}, sha256=sha256(res_file),
                      size_bytes=res_file.stat().st_size)
        atomic_write(rec_file, json.dumps(record, indent=2) + "\n")
        return record

    with open(log_file, "a") as logf:
        def log(msg):
            logf.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
            logf.flush()

        todo = [u for u in todo_all if u not in done][:max_units]
        log(f"# {command}" + (f" (resuming with {len(done)} finished units)" if done else ""))
        if stale:
            log(f"# refresh: checkpoints {sorted(stale)} changed (SHA-256 recorded, now: {stale}); "
                f"{len(dropped)} units that used them are discarded: {dropped}")
        record = save()
        cache: dict = {}
        for unit in todo:
            t0 = time.perf_counter()
            done[unit] = dict(_COMPUTE[recipe["kind"]](unit, recipe, dev, cache), seconds=0.0)
            done[unit]["seconds"] = round(time.perf_counter() - t0, 1)
            record = save()
            log(f"{unit}: {done[unit]['seconds']:.0f} s")
        log(f"# complete in {record['seconds']:.0f} s" if record["complete"] else "# stopped")
    return record


def load(name: str, directory: str | Path | None = None) -> dict:
    """The shipped result ``name`` (``{"recipe", "units", "record"}``) after checking its SHA-256."""
    out = (Path(directory) if directory is not None else results_dir()) / name
    rec, res = read_checked(out, f"python -m localdiff_lib.shipped run {name}")
    stale = _stale_checkpoints(rec, checkpoint_hashes(res["recipe"]))
    if stale:
        raise ValueError(f"the result {name!r} was computed with other versions of the checkpoints {sorted(stale)} "
                         f"than those shipped now (SHA-256 recorded, now: {stale}); recompute the units that used "
                         f"them with `python -m localdiff_lib.shipped run {name} --refresh`")
    res["record"] = rec
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdiff_lib.shipped", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="compute recipes into their results directories (resumes an interrupted run)")
    p.add_argument("names", nargs="+", choices=sorted(RECIPES))
    p.add_argument("--directory", default=None, help="where to write (default: the package's shipped results)")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--restart", action="store_true", help="discard a result computed with another recipe")
    p.add_argument("--refresh", action="store_true",
                   help="recompute only the units that used a checkpoint changed since the result was computed")
    sub.add_parser("list", help="list the recipes and what is shipped (each shipped result reloaded, hash checked)")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        for name in args.names:
            rec = run(name, args.directory, args.device, args.threads, args.restart, refresh=args.refresh)
            print(f"{name}: {len(rec['finished_units'])}/{len(units(rec['recipe']))} units, {rec['seconds']:.0f} s, "
                  f"sha256 {rec['sha256'][:16]}...")
        return 0
    for name, recipe in RECIPES.items():
        try:
            res = load(name)
        except FileNotFoundError:
            print(f"{name:24s} not shipped ({len(units(recipe))} units)")
            continue
        rec = res["record"]
        state = "complete" if rec["complete"] else f"{len(rec['finished_units'])}/{len(units(recipe))} units"
        print(f"{name:24s} shipped, {state}, {rec['seconds']:.0f} s on {rec['machine']}, hash ok")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
