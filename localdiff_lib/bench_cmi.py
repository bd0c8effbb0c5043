"""Benchmark: ``python -m localdiff_lib.bench_cmi`` times the CMI map (:mod:`localdiff_lib.cmi_map`) on the device present.

For each configuration it trains the whole bank of critics of the map (all ``t``, all ``r``, the ``I(A:BC)``
critics, all seeds) for a few steps exactly as :func:`localdiff_lib.cmi_map.neural_cmi_map` does, and prints the
measured time per step, the multiply-adds per step, and the time the configured number of steps takes. The
configurations: the ``quick`` budget (2 CPU cores), and the ``standard`` map (16 times x 12 radii x 3 seeds). It
also times the exact Gaussian-surrogate map (:func:`localdiff_lib.info.surrogate_cmi_map`). The images are uniform
random pixels by default (speed does not depend on content, no data set needed); ``--mnist`` uses MNIST.

The reference is the authors' protocol: one MINE critic per estimate, 300k steps at batch 100, 2.5 ms per step on
an H200, about 13 minutes per estimate and about 35 GPU-hours for the grid. A row whose time is not measured on
the device that ran it (a GPU figure printed on a CPU) is labelled a projection, with the assumed throughput.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from . import cmi_map
from .config import default_device
from .data import load_dataset
from .density import train_density_bank
from .estimators import train_critic_bank
from .info import regions, surrogate_cmi_map

AUTHORS_GRID_HOURS = 35.0
AUTHORS_MS_PER_STEP = 2.5
ASSUMED_GPU_TFLOPS = 100.0  # effective bf16 throughput assumed for projections (an H100 peaks near 990 dense)
ASSUMED_STEP_OVERHEAD_MS = 1.0  # kernel launches and memory-bound elementwise work per step, assumed


def configs():
    """The benchmarked configurations (the ``quick`` and ``standard`` budgets of :func:`cmi_map.map_settings`)."""
    import os

    out = {}
    old = os.environ.get("LOCALDIFF_BUDGET")
    try:
        for b in ("quick", "standard"):
            os.environ["LOCALDIFF_BUDGET"] = b
            out[b] = cmi_map.map_settings()
    finally:
        if old is None:
            os.environ.pop("LOCALDIFF_BUDGET", None)
        else:
            os.environ["LOCALDIFF_BUDGET"] = old
    return out


def n_models(cfg) -> int:
    """Critics (or density models) in the map's bank: per (seed, t) one per radius, one for ``BC`` (and ``q(a)``)."""
    extra = 2 if cfg.get("bound") == "density" else 1
    return cfg["seeds"] * len(cfg["t_values"]) * (extra + len(cfg["radii"]))


def macs_per_step(cfg, crop=27, features=32, hidden_a=32, components=8) -> float:
    """Multiply-adds of one training step (forward; backward is about twice that) of the whole bank."""
    N, H = cfg["batch"], cfg["hidden"]
    K, D = n_models(cfg), crop * crop
    if cfg.get("bound") == "density":
        return K * N * (D * H + H * H + H * 3 * components)
    per_sample = D * H + H * H + H * features + hidden_a * (1 + features)
    return K * N * (per_sample + N * features)


def time_bank(cfg, device, steps=3, crop=27, images=None):
    """Seconds per training step of the map's bank (after one warm-up step)."""
    T, R, S = len(cfg["t_values"]), len(cfg["radii"]), cfg["seeds"]
    G, D = S * T, crop * crop
    if images is None:
        images = torch.rand(4096, D, device=device)
    A, _, _ = regions((crop, crop), None, 0)
    density = cfg.get("bound") == "density"
    masks = torch.ones(G, 1 + R, D)
    masks[:, :, A[0]] = 0
    for j, r in enumerate(cfg["radii"]):
        _, B, _ = regions((crop, crop), None, int(r))
        masks[:, 1 + j] = 0
        masks[:, 1 + j, B] = 1
    tg = torch.tensor(np.tile(cfg["t_values"], S), dtype=torch.float32, device=device)[:, None, None]

    def sampler(split, n, gen):
        x0 = images[torch.randint(0, images.shape[0], (G, n), generator=gen, device=device)]
        return (1 - tg) * x0 + tg * torch.randn(x0.shape, generator=gen, device=device)

    kw = dict(batch=cfg["batch"], hidden=cfg["hidden"], eval_batches=2, device=device, num_threads=cfg.get("num_threads"))
    if density:  # the unconditional model q(a) joins each group; continuous pixels (t = 0 costs the same)
        masks = torch.cat([torch.zeros(G, 1, D), masks], dim=1)
        train = lambda n_steps: train_density_bank(sampler, masks, A, steps=n_steps, **kw)  # noqa: E731
    else:
        train = lambda n_steps: train_critic_bank(sampler, masks, A, bound=cfg.get("bound", "infonce"), steps=n_steps, **kw)  # noqa: E731
    train(1)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    train(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, masks.shape[0] * masks.shape[1]


def run(device=None, steps=3, mnist=False, print_fn=print):
    """Measure and print the table; returns its rows as dicts."""
    device = torch.device(device) if device is not None else default_device()
    gpu = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    images = None
    if mnist:
        images = load_dataset("mnist", "train", device=device)[0][:, 0, :27, :27].reshape(-1, 729)
    print_fn(f"localdiff_lib.bench_cmi on {name}, torch {torch.__version__}; {steps} timed steps per row"
             f"{', bf16 autocast' if gpu else ''}; images: {'MNIST' if mnist else 'uniform random'}")
    header = (f"{'map':9s} {'estimator':>9s} {'t x r x seeds':>14s} {'critics':>8s} {'batch':>6s} {'GMAC/step':>10s} {'ms/step':>9s} "
              f"{'steps':>6s} {'whole map':>12s} {'vs authors':>11s}")
    print_fn(header)
    print_fn("-" * len(header))
    rows = []
    for b, cfg in configs().items():
        T, R, S = len(cfg["t_values"]), len(cfg["radii"]), cfg["seeds"]
        sec, K = time_bank(cfg, device, steps, images=images)
        total = sec * cfg["steps"]
        gmac = macs_per_step(cfg) / 1e9
        row = dict(budget=b, T=T, R=R, seeds=S, critics=K, batch=cfg["batch"], gmac_per_step=gmac,
                   ms_per_step=1e3 * sec, steps=cfg["steps"], seconds=total, measured=True, device=name)
        rows.append(row)
        full_grid = T >= 11 and R == 12
        speedup = f"{AUTHORS_GRID_HOURS * 3600 / total:10.0f}x" if full_grid else f"{'-':>11s}"
        print_fn(f"{b:9s} {cfg.get('bound', 'infonce'):>9s} {f'{T} x {R} x {S}':>14s} {K:8d} {cfg['batch']:6d} {gmac:10.2f} {1e3 * sec:9.1f} "
                 f"{cfg['steps']:6d} {total:10.0f} s {speedup}")
        if not gpu and full_grid:
            # 3x the forward multiply-adds for forward + backward, 2 flops per multiply-add, plus a fixed overhead
            proj_ms = 3 * gmac * 2 / ASSUMED_GPU_TFLOPS + ASSUMED_STEP_OVERHEAD_MS
            proj = proj_ms * cfg["steps"] / 1e3
            rows.append(dict(budget=b + " (GPU projection)", T=T, R=R, seeds=S, critics=K, batch=cfg["batch"],
                             gmac_per_step=gmac, ms_per_step=proj_ms, steps=cfg["steps"],
                             seconds=proj, measured=False, device=f"assumed {ASSUMED_GPU_TFLOPS:.0f} TFLOP/s"))
            print_fn(f"  PROJECTION, not a measurement: one GPU at an assumed {ASSUMED_GPU_TFLOPS:.0f} TFLOP/s effective bf16 "
                     f"+ {ASSUMED_STEP_OVERHEAD_MS:.0f} ms/step overhead -> {proj_ms:.2f} ms/step, {proj:.0f} s for the "
                     f"map ({AUTHORS_GRID_HOURS * 3600 / proj:.0f}x less than the authors' {AUTHORS_GRID_HOURS:.0f} GPU-hours)")
    x = images if images is not None else torch.rand(6000, 729, device=device)
    t0 = time.perf_counter()
    surrogate_cmi_map(x.cpu().double(), cmi_map.default_t_grid(), range(1, 13), crop=27)
    sec = time.perf_counter() - t0
    rows.append(dict(budget="surrogate", T=len(cmi_map.default_t_grid()), R=12, seconds=sec, measured=True, device="CPU"))
    print_fn(f"{'surrogate':9s} {'exact':>9s} {f'{len(cmi_map.default_t_grid())} x 12 x 1':>14s} {'exact':>8s} {'-':>6s} {'-':>10s} "
             f"{'-':>9s} {'-':>6s} {sec:10.1f} s {'-':>11s}  (exact Gaussian surrogate, float64, CPU)")
    print_fn(f"authors: {AUTHORS_MS_PER_STEP} ms/step x 300k steps per estimate, about {AUTHORS_GRID_HOURS:.0f} "
             "GPU-hours for the grid (H200).")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m localdiff_lib.bench_cmi", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per row")
    p.add_argument("--mnist", action="store_true", help="use MNIST instead of random pixels")
    a = p.parse_args(argv)
    run(a.device, a.steps, a.mnist)


if __name__ == "__main__":
    main()
