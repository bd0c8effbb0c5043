"""Benchmark: ``python -m localdiff_lib.bench`` prints training and sampling speed on the device present.

For the global U-Net and local denoisers it measures training throughput (images/s, ms per step) with
:func:`localdiff_lib.train.fit` exactly as the chapters use it (data resident on the device, bf16 autocast
and fused AdamW on a GPU, no per-step host syncs), and the time to sample 256 images with 32 Euler steps of
the probability-flow ODE. On a GPU it also trains all twelve radii ``r = 1..12`` together on the same
batches, the paper's local-denoiser experiment (their code: 90-160 s per radius on an H200).

The training images are uniform random pixels: speed does not depend on the content, and the benchmark
then needs no data set. On a CPU the sampling time is measured over ``--cpu-sample-steps`` steps and scaled
to 32 (every step costs the same), which the table says. The README's "Benchmarks" section lists the commands; the
measured tables belong in the closing notes and on the status page, never in a timed test.
"""

from __future__ import annotations

import argparse
import time

import torch

from .config import default_device
from .models import count_macs, count_parameters, GlobalUNet, LocalDenoiser
from .sampling import sample
from .train import fit


def _train_speed(models, device, batch_size, steps, warmup, compile_):
    images = torch.rand(4096, 1, 28, 28, device=device)
    fit(models, images, steps=warmup, batch_size=batch_size, device=device, progress=False, compile=compile_)
    h = fit(models, images, steps=steps, batch_size=batch_size, device=device, progress=False, compile=compile_)
    return h.ms_per_step, h.images_per_second


def _sample_speed(model, device, n, steps, measured_steps):
    sample(model, n=min(n, 8), steps=1, device=device)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    sample(model, n=n, steps=measured_steps, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * steps / measured_steps


def run(device=None, batch_size=None, steps=None, radii=(1, 3, 12), all_radii=None, compile_=False,
        cpu_sample_steps=4, local_channels=32, print_fn=print):
    """Measure and print the table; returns its rows as dicts."""
    device = torch.device(device) if device is not None else default_device()
    gpu = device.type == "cuda"
    batch_size = batch_size or (512 if gpu else 64)
    steps = steps or (100 if gpu else 5)
    warmup = 20 if gpu else 2
    all_radii = gpu if all_radii is None else all_radii
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print_fn(f"localdiff_lib.bench on {name}, torch {torch.__version__}; batch {batch_size}, {steps} timed steps"
             f"{', bf16 autocast + fused AdamW' if gpu else ''}{', torch.compile' if compile_ else ''}")
    torch.manual_seed(0)
    entries = [("GlobalUNet (32,64,128)", GlobalUNet().to(device)),
               ("GlobalUNet (16,32,64)", GlobalUNet(channels=(16, 32, 64)).to(device))]
    entries += [(f"LocalDenoiser r={r}, C={local_channels}", LocalDenoiser(radius=r, channels=local_channels).to(device))
                for r in radii]
    measured = 32 if gpu else cpu_sample_steps
    rows = []
    header = f"{'model':30s} {'params':>9s} {'MMAC/img':>9s} {'ms/step':>9s} {'images/s':>10s} {'sample 256 (32 steps)':>22s}"
    print_fn(header)
    print_fn("-" * len(header))
    for label, model in entries:
        ms, ips = _train_speed(model, device, batch_size, steps, warmup, compile_)
        secs = _sample_speed(model, device, 256, 32, measured)
        row = dict(model=label, params=count_parameters(model), macs=count_macs(model), ms_per_step=ms,
                   images_per_s=ips, sample_s=secs)
        rows.append(row)
        note = "" if measured == 32 else f" (x{32 // measured} of {measured})"
        print_fn(f"{label:30s} {row['params'] / 1e3:8.0f}k {row['macs'] / 1e6:9.1f} {ms:9.1f} {ips:10.0f} "
                 f"{secs:18.2f} s{note}")
    if all_radii:
        bank = [LocalDenoiser(radius=r, channels=local_channels).to(device) for r in range(1, 13)]
        ms, ips = _train_speed(bank, device, batch_size, steps, warmup, compile_)
        macs = sum(count_macs(m) for m in bank)
        label = f"12 radii r=1..12 together"
        rows.append(dict(model=label, params=sum(count_parameters(m) for m in bank), macs=macs, ms_per_step=ms,
                         images_per_s=ips, sample_s=float("nan")))
        print_fn(f"{label:30s} {rows[-1]['params'] / 1e3:8.0f}k {macs / 1e6:9.1f} {ms:9.1f} {ips:10.0f} {'-':>20s}")
        epoch_steps = 60000 / batch_size
        print_fn(f"  -> 15 epochs of MNIST for all twelve radii: {15 * epoch_steps * ms / 1000:.0f} s "
                 f"(the paper's code: 90-160 s per radius on an H200)")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m localdiff_lib.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--batch-size", type=int, default=None, help="default 512 on a GPU, 64 on a CPU")
    p.add_argument("--steps", type=int, default=None, help="timed training steps (default 100 on a GPU, 5 on a CPU)")
    p.add_argument("--radii", default="1,3,12", help="comma-separated radii of the local denoisers to time")
    p.add_argument("--all-radii", action="store_true", default=None, help="also train r=1..12 together (default on GPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the models")
    p.add_argument("--local-channels", type=int, default=32)
    a = p.parse_args(argv)
    run(a.device, a.batch_size, a.steps, tuple(int(r) for r in a.radii.split(",") if r), a.all_radii, a.compile,
        local_channels=a.local_channels)


if __name__ == "__main__":
    main()
