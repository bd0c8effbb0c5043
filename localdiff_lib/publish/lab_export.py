"""The transition lab, precomputed: every state of a grid as small PNG tiles and one JSON manifest.

The rendered book has no kernel, so the ipywidgets sliders of :class:`localdiff_lib.lab.TransitionLab` cannot move
there. :func:`export_lab` walks a grid of states ``(t, r, window, image)`` of a lab and writes what
:meth:`TransitionLab.view` returns for each, factorised by what each part depends on (so nothing is stored twice):

- ``x0/i{i}.png`` the clean digit (image), ``xt/t{k}_i{i}.png`` the noisy ``x_t`` (t, image);
- ``local/t{k}_r{r}_i{i}.png`` and ``global/t{k}_i{i}.png`` the recoveries, with their MSE in the manifest;
- ``samples/w{w}_r{r}.png`` the hybrid samples of a window and radius, with their cost and distance to the
  all-global samples;
- in ``manifest.json`` the numbers: the CMI curve ``I(A:C|B)`` of every radius on its own time grid, the mean
  recovery-error curves, their values at every ``t`` of the grid, and the file names above.

:func:`state` assembles the flat record of one state from a manifest (what the page's JavaScript does); the tests
compare it with :meth:`TransitionLab.update`. :func:`export` builds the lab from the shipped checkpoints and the
Gaussian-surrogate CMI map (as the chapter does) and exports it, reusing an earlier export with the same
fingerprint. The book's Sphinx extension (:mod:`localdiff_lib.publish.sphinx_ext`) calls it after an HTML build and copies
the result to ``_static/lab/``; the files are build outputs, never committed.

Command line::

    python -m localdiff_lib.publish lab DIR [--images 4] [--force]
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .. import checkpoints, data, info
from ..lab import TransitionLab

__all__ = ["DEFAULT_TIMES", "DEFAULT_WINDOWS", "FORMAT", "build_lab", "export", "export_lab", "state", "tile_png"]

FORMAT = "localdiff-transition-lab/1"
DEFAULT_TIMES = tuple(round(0.05 * k, 2) for k in range(1, 20))           # 0.05, 0.10, ..., 0.95
DEFAULT_WINDOWS = ((0.0, 0.0), (0.2, 0.5), (0.5, 1.0), (0.0, 1.0))      # all local, the paper's, late half, all global
WINDOW_NAMES = {(0.0, 0.0): "all local", (0.0, 1.0): "all global"}


def _num(x) -> float | None:
    """A JSON number (NaN and infinities become ``null``)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _as_uint8(img: torch.Tensor) -> np.ndarray:
    return (img.detach().float().cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()


def tile_png(images: torch.Tensor, path: Path, nrow: int | None = None, pad: int = 1) -> None:
    """Write ``(H, W)``, ``(1, H, W)`` or a batch ``(N, 1, H, W)`` (a grid of ``nrow`` per row) as a grayscale PNG."""
    from PIL import Image

    x = images.detach().float().cpu()
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        arr = _as_uint8(x[0])
    else:
        n, _, h, w = x.shape
        nrow = nrow or n
        rows = math.ceil(n / nrow)
        arr = np.full((rows * (h + pad) - pad, nrow * (w + pad) - pad), 128, dtype=np.uint8)
        for k in range(n):
            i, j = divmod(k, nrow)
            arr[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = _as_uint8(x[k, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode="L").save(path, optimize=True)


def _grid_index(values, x, name: str) -> int:
    for k, v in enumerate(values):
        if (isinstance(v, (list, tuple)) and all(abs(a - b) < 1e-9 for a, b in zip(v, x))) or v == x \
                or (isinstance(v, float) and abs(v - x) < 1e-9):
            return k
    raise ValueError(f"{name} = {x!r} is not on the exported grid {values}")


def export_lab(lab: TransitionLab, out: str | Path, *, times=DEFAULT_TIMES, windows=DEFAULT_WINDOWS,
               radii=None, indices=None, labels=None, extra: dict | None = None) -> dict:
    """Write every state of the grid ``times x radii x windows x indices`` of ``lab`` into ``out``; return the manifest.

    ``radii`` defaults to all of the lab's radii, ``indices`` to all of its images. The lab's state is restored
    afterwards. ``extra`` is merged into the manifest (provenance).
    """
    out = Path(out)
    started = time.perf_counter()
    times = [float(t) for t in times]
    radii = list(lab.radii if radii is None else radii)
    windows = [(float(lo), float(hi)) for lo, hi in windows]
    indices = list(range(lab.n_images) if indices is None else indices)
    if len(set(times)) != len(times) or not times:
        raise ValueError(f"times must be distinct; got {times}")
    saved = lab.state
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    def png(img, rel: str, **kw) -> str:
        tile_png(img, out / rel, **kw)
        return rel

    m: dict = {
        "format": FORMAT,
        "grid": {"t": times, "r": radii, "window": [list(w) for w in windows], "index": indices},
        "window_names": [WINDOW_NAMES.get(w, f"global on [{w[0]:g}, {w[1]:g})") for w in windows],
        "labels": None if labels is None else [int(labels[i]) for i in indices],
        "image_size": int(lab.x0.shape[-1]),
        "settings": {"steps_per_unit_time": lab.steps_per_unit_time, "n_samples": lab.n_samples,
                     "sample_steps": lab.sample_steps, "seed": lab.seed, "n_images": lab.n_images},
        "cmi_source": lab.cmi_source,
        "cmi_t": [float(v) for v in lab.cmi_t],
        "cmi": [[_num(v) for v in lab.cmi[r]] for r in radii],
        "curve_T": [float(v) for v in lab.curve_T],
        "curve_local": [[_num(v) for v in lab.curves[r].mean(axis=1)] for r in radii],
        "curve_global": [_num(v) for v in lab.curves["global"].mean(axis=1)],
        "global_only_macs": float(lab.global_only_macs),
        "x0": [png(lab.x0[i], f"x0/i{i}.png") for i in indices],
    }
    x_t, local, glob, at_t = [], [], [], []
    for k, t in enumerate(times):
        row_xt, row_local, row_glob = [], [[] for _ in radii], []
        cmi_at, curve_at = [], []
        for j, r in enumerate(radii):
            for i in indices:
                v = lab.update(t=t, r=r, index=i)
                row_local[j].append({"src": png(v.recovered_local, f"local/t{k}_r{r}_i{i}.png"), "mse": _num(v.mse_local)})
                if j == 0:
                    row_xt.append(png(v.x_t, f"xt/t{k}_i{i}.png"))
                    row_glob.append({"src": png(v.recovered_global, f"global/t{k}_i{i}.png"), "mse": _num(v.mse_global)})
            cmi_at.append(_num(v.cmi_at_t))
            curve_at.append(_num(v.curve_local_at_t))
        x_t.append(row_xt)
        local.append(row_local)
        glob.append(row_glob)
        at_t.append({"cmi": cmi_at, "curve_local": curve_at, "curve_global": _num(v.curve_global_at_t)})
    m.update(x_t=x_t, local=local, glob=glob, at_t=at_t)

    samples = []
    for w, win in enumerate(windows):
        row = []
        for r in radii:
            v = lab.update(r=r, window=win)
            n = len(v.samples)
            row.append({"src": png(v.samples, f"samples/w{w}_r{r}.png", nrow=math.ceil(n / 2) if n > 4 else n),
                        "macs_per_image": float(v.record.macs_per_image),
                        "nfe_by_model": {str(k): int(c) for k, c in v.record.nfe_by_model.items()},
                        "sample_gap": _num(v.sample_gap)})
        samples.append(row)
    m["samples"] = samples
    lab.set(**saved)

    files = [p for p in out.rglob("*.png")]
    m["files"] = {"count": len(files), "bytes": sum(p.stat().st_size for p in files)}
    m["seconds"] = round(time.perf_counter() - started, 2)
    m["states"] = len(times) * len(radii) * len(windows) * len(indices)
    if extra:
        m.update(extra)
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(m, separators=(",", ":")))
    tmp.replace(out / "manifest.json")   # written last: its presence marks a complete export
    return m


def state(manifest: dict, t: float, r: int, window, index: int) -> dict:
    """The flat record of one state of an exported lab (what the page shows for it): file names and numbers.

    Raises ``ValueError`` when the state is not on the manifest's grid.
    """
    g = manifest["grid"]
    k = _grid_index(g["t"], float(t), "t")
    j = _grid_index(g["r"], int(r), "r")
    w = _grid_index(g["window"], [float(v) for v in window], "window")
    i = _grid_index(g["index"], int(index), "index")
    s = manifest["samples"][w][j]
    return {
        "t": g["t"][k], "r": g["r"][j], "window": tuple(g["window"][w]), "index": g["index"][i],
        "x0": manifest["x0"][i], "x_t": manifest["x_t"][k][i],
        "local": manifest["local"][k][j][i]["src"], "mse_local": manifest["local"][k][j][i]["mse"],
        "global": manifest["glob"][k][i]["src"], "mse_global": manifest["glob"][k][i]["mse"],
        "cmi_at_t": manifest["at_t"][k]["cmi"][j],
        "curve_local_at_t": manifest["at_t"][k]["curve_local"][j],
        "curve_global_at_t": manifest["at_t"][k]["curve_global"],
        "samples": s["src"], "macs_per_image": s["macs_per_image"], "nfe_by_model": s["nfe_by_model"],
        "sample_gap": s["sample_gap"], "global_only_macs": manifest["global_only_macs"],
    }


# ------------------------------------------------------------------ the book's lab, from the shipped checkpoints

def _settings(n_images, times, windows, n_cmi, steps_per_unit_time, n_samples, sample_steps, seed) -> dict:
    return dict(n_images=n_images, times=[float(t) for t in times], windows=[list(map(float, w)) for w in windows],
                n_cmi=n_cmi, steps_per_unit_time=steps_per_unit_time, n_samples=n_samples,
                sample_steps=sample_steps, seed=seed, dataset="mnist")


def fingerprint(settings: dict) -> str:
    """A hash of the export's settings, the shipped checkpoints' SHA-256 and the code that computes the views."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name in ("mnist-local-c16", "mnist-global-small"):
        h.update(checkpoints.record(name)["sha256"].encode())
    lib = Path(__file__).resolve().parents[1]
    for mod in ("lab.py", "publish/lab_export.py", "evaluate.py", "sampling.py", "info.py", "path.py", "models.py"):
        h.update((lib / mod).read_bytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


def build_lab(n_images: int = 4, times=DEFAULT_TIMES, *, n_cmi: int = 10_000, steps_per_unit_time: int = 16,
              n_samples: int = 8, sample_steps: int = 16, seed: int = 0, device="cpu"):
    """The book's lab from the shipped checkpoints: ``(lab, labels)``.

    The digits are the first ``n_images`` of the chapter's class-balanced test subset (``data.subset(..., n=10,
    seed=1, balanced=True)``, never seen in training); the CMI curve is the exact Gaussian surrogate of ``n_cmi``
    training digits on ``t = 0, 0.05, ..., 1``; the recovery-error curves are computed on ``times`` (so the grid's
    every ``t`` is a point of the curves).
    """
    local_models = checkpoints.local_denoisers("mnist", device=device)
    global_model = checkpoints.global_unet("mnist", device=device)
    test_images, test_labels = data.load_dataset("mnist", "test")
    x, y = data.subset(test_images, test_labels, n=10 * math.ceil(n_images / 10), seed=1, balanced=True)
    x, y = x[:n_images], y[:n_images]
    train_images, _ = data.load_dataset("mnist", "train")
    surrogate = info.surrogate_cmi_map(data.subset(train_images, n=n_cmi, seed=0), np.linspace(0, 1, 21),
                                       sorted(local_models))
    lab = TransitionLab(local_models, global_model, x, surrogate, curve_T=times,
                        steps_per_unit_time=steps_per_unit_time, n_samples=n_samples, sample_steps=sample_steps,
                        seed=seed, t=float(times[0]), r=min(local_models), window=(0.2, 0.5))
    return lab, y


def export(out: str | Path, *, n_images: int = 4, times=DEFAULT_TIMES, windows=DEFAULT_WINDOWS, n_cmi: int = 10_000,
           steps_per_unit_time: int = 16, n_samples: int = 8, sample_steps: int = 16, seed: int = 0,
           reuse: bool = True, verbose: bool = False) -> dict:
    """Build the book's lab (:func:`build_lab`) and export its grid into ``out``; return the manifest.

    With ``reuse`` an existing export in ``out`` with the same :func:`fingerprint` (settings, checkpoints, code) is
    returned as it is, after checking that every file it names exists.
    """
    out = Path(out)
    settings = _settings(n_images, times, windows, n_cmi, steps_per_unit_time, n_samples, sample_steps, seed)
    fp = fingerprint(settings)
    if reuse and (out / "manifest.json").is_file():
        old = json.loads((out / "manifest.json").read_text())
        if old.get("fingerprint") == fp and old.get("format") == FORMAT and \
                sum(1 for _ in out.rglob("*.png")) == old.get("files", {}).get("count"):
            if verbose:
                print(f"transition lab: reusing the export in {out} (fingerprint {fp})")
            return old
    t0 = time.perf_counter()
    lab, labels = build_lab(n_images, times, n_cmi=n_cmi, steps_per_unit_time=steps_per_unit_time,
                            n_samples=n_samples, sample_steps=sample_steps, seed=seed)
    build_s = time.perf_counter() - t0
    m = export_lab(lab, out, times=times, windows=windows, labels=labels,
                   extra={"fingerprint": fp, "settings_export": settings, "build_seconds": round(build_s, 2)})
    if verbose:
        print(f"transition lab: {m['states']} states, {m['files']['count']} PNG files, {m['files']['bytes'] / 1e6:.2f} MB "
              f"in {out}; lab built in {build_s:.1f} s, exported in {m['seconds']:.1f} s")
    return m
