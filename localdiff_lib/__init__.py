"""localdiff_lib: the companion library of the course "Local diffusion models and phases of data distributions".

Each module is one idea that a chapter teaches:

- :mod:`localdiff_lib.config`   run budgets (``LOCALDIFF_BUDGET``), seeds, devices (Introduction)
- :mod:`localdiff_lib.path`     the path ``X_t = (1-t) X_0 + t Z`` and prediction conversions (Diffusion and flow matching)

Submodules are imported lazily by name (``import localdiff_lib.models``); importing the package
does no I/O and touches no network.
"""

from .config import BUDGETS, budget, default_device, describe, pick, seed_everything

__version__ = "0.1.0"
__all__ = ["BUDGETS", "budget", "default_device", "describe", "pick", "seed_everything", "__version__"]
