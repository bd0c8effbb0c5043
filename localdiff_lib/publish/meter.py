"""The work of a chapter, measured on a CPU, and what it would take on Colab's T4 (an estimate, never a measurement).

``python -m localdiff_lib.publish.meter SCRIPT OUT.json`` runs a Python script (a chapter's code cells, as
:func:`localdiff_lib.publish.gpu.script_of` writes them) under :class:`WorkMeter`, a torch dispatch mode that sees
every tensor operation, and writes what it measured: the wall time, the number of torch operator calls, the time
spent inside them, and their floating-point operations (torch's own FLOP formulas,
``torch.utils.flop_counter.flop_registry``: two per multiply-add of convolutions and matrix products).
``python -m localdiff_lib.publish.gpu work`` runs it for every chapter; the status page shows the result.

:func:`t4_estimate` turns one measurement into seconds on a T4, from three parts:

* the host's work (NumPy, Python, plotting): the script's wall time outside torch operators (torch is already
  imported when the clock starts), which a Colab machine's CPU does as this one does;
* the launch of every torch operator on the GPU: :data:`LAUNCH_S` each;
* the arithmetic: the FLOPs at :data:`T4_EFFICIENCY` of the T4's fp32 peak :data:`T4_FP32_FLOPS` (no bf16 on a T4,
  so fp32: :func:`localdiff_lib.config.autocast`).

The two constants are assumptions, stated where the estimate is shown; the estimate is replaced by a measurement
as soon as a T4 run exists.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

#: the T4's fp32 peak (NVIDIA's data sheet: 8.1 TFLOP/s)
T4_FP32_FLOPS = 8.1e12
#: the share of that peak small convolutions and matrix products reach (assumed)
T4_EFFICIENCY = 0.3
#: the cost of one torch operator on a GPU: dispatch and kernel launch (assumed)
LAUNCH_S = 20e-6


class WorkMeter(TorchDispatchMode):
    """Counts torch operator calls, the time inside them and their FLOPs (CPU tensors: the time is synchronous)."""

    def __init__(self):
        super().__init__()
        self.flops, self.ops, self.op_seconds = 0, 0, 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        self.op_seconds += time.perf_counter() - t0
        self.ops += 1
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.flops += int(count(*args, **kwargs, out_val=out))
        return out


def dispatch_overhead(n: int = 20_000) -> float:
    """Seconds the meter adds to one operator call outside the operator (measured on tiny tensors)."""
    x = torch.zeros(4)

    def loop():
        t0 = time.perf_counter()
        for _ in range(n):
            torch.add(x, 1.0)
        return time.perf_counter() - t0

    loop()
    bare = loop()
    with WorkMeter():
        metered = loop()
    return max(0.0, (metered - bare) / n)


def t4_estimate(rec: dict) -> dict:
    """Seconds on a T4 for one measurement (module docstring): ``host``, ``launch``, ``compute`` and ``total``."""
    host = max(0.0, rec["seconds"] - rec["op_seconds"] - rec["ops"] * rec["overhead_per_op"])
    launch = rec["ops"] * LAUNCH_S
    compute = rec["flops"] / (T4_FP32_FLOPS * T4_EFFICIENCY)
    return dict(host=host, launch=launch, compute=compute, total=host + launch + compute)


def measure(script: str | Path) -> dict:
    """Run ``script`` (as ``__main__``, in the current directory) under the meter; return the measurement."""
    overhead = dispatch_overhead()
    t0 = time.perf_counter()
    with WorkMeter() as m:
        runpy.run_path(str(script), run_name="__main__")
    seconds = time.perf_counter() - t0
    return dict(seconds=round(seconds, 2), ops=m.ops, op_seconds=round(m.op_seconds, 2), flops=m.flops,
                overhead_per_op=overhead, threads=torch.get_num_threads())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m localdiff_lib.publish.meter SCRIPT OUT.json", file=sys.stderr)
        return 2
    rec = measure(argv[0])
    rec["t4_estimate"] = t4_estimate(rec)
    Path(argv[1]).write_text(json.dumps(rec, indent=2) + "\n")
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
