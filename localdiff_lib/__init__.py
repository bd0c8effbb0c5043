"""localdiff_lib: the companion library of the course "Local diffusion models and phases of data distributions".

Each module is one idea that a chapter teaches; the list runs from the foundations to the experiments.

Foundations
- :mod:`localdiff_lib.config`      run budgets (``LOCALDIFF_BUDGET``), seeds, devices, the bf16 rule (Introduction)
- :mod:`localdiff_lib.checks`      the boundary checks every public function uses (integers, times, windows, regions)
- :mod:`localdiff_lib.stats`       Student-t quantiles, intervals across seeds, the ``Estimate`` they make
- :mod:`localdiff_lib.prose`       ``glue``: the numbers a page's prose quotes, computed by the page (every chapter)
- :mod:`localdiff_lib.path`        the path ``X_t = (1-t) X_0 + t Z``, its variance, and the one place where velocity,
                                   noise, clean-image and score predictions are converted (Notation; Diffusion and flow
                                   matching)
- :mod:`localdiff_lib.data`        MNIST and Fashion-MNIST from a verified local source (Local versus global denoisers)

Exact models and information theory
- :mod:`localdiff_lib.mixture`     exact Gaussian mixtures on the path: density, score, posterior means (Diffusion and
                                   flow matching; Fokker–Planck)
- :mod:`localdiff_lib.info`        exact (conditional) mutual information: tables, Gaussians, GMRF, noisy AR(1), the
                                   two-class mixture, Ising, the Gaussian surrogate of a data set (CMI and the Markov
                                   length; Phases)
- :mod:`localdiff_lib.markov`      fitting the Markov length ``xi`` with an uncertainty (CMI and the Markov length)

Denoisers
- :mod:`localdiff_lib.models`      the global U-Net, the strictly local ``LocalDenoiser(radius=r)`` and the authors'
                                   non-local design rebuilt; parameter and multiply-add counts (Locality and receptive
                                   fields)
- :mod:`localdiff_lib.locality`    gradient footprints: measuring what an output pixel depends on (Locality and receptive fields)
- :mod:`localdiff_lib.closed_form` the ideal (empirical) denoiser and the optimal strictly local denoiser
                                   (position-dependent and equivariant), no training (Beyond the paper)
- :mod:`localdiff_lib.train`       one ``fit`` for every denoiser, checkpoints (Local versus global denoisers)
- :mod:`localdiff_lib.sampling`    Euler/Heun probability-flow ODE solvers and hybrid local/global schedules
- :mod:`localdiff_lib.evaluate`    the recovery experiment, image grids, a small classifier, Fréchet and nearest-image
                                   distances (Local versus global; Hybrid sampling)
- :mod:`localdiff_lib.checkpoints` shipped small denoisers with their training command, record, log and SHA-256
- :mod:`localdiff_lib.shipped`     results too slow for quick mode (identity loss, hybrid sampling at scale) with their
                                   command, record, log and SHA-256 (Local versus global; Hybrid sampling)

Estimating CMI from samples
- :mod:`localdiff_lib.estimators`  MINE, NWJ, InfoNCE, SMILE behind one interface; CMI by the chain rule (Estimating CMI)
- :mod:`localdiff_lib.density`     CMI of one pixel as ``H(A|B) - H(A|BC)`` with mixture-density models (Estimating CMI)
- :mod:`localdiff_lib.image_density` conditional densities of one pixel given a masked image (The CMI barrier)
- :mod:`localdiff_lib.cmi_map`     the paper's CMI map, its Gaussian surrogate, and the shipped maps with their command
                                   and records (The CMI barrier; Estimating CMI)

Experiments and classroom
- :mod:`localdiff_lib.lab`         the transition lab: one state (t, r, window) of the experiments, and its widget
- :mod:`localdiff_lib.critical_times` speciation and collapse times from data statistics (Beyond the paper)
- :mod:`localdiff_lib.grading`     autograder checks of the assignments
- ``python -m localdiff_lib.bench`` and ``python -m localdiff_lib.bench_cmi`` print benchmark tables

The book's own tooling (chapter sync, student edition, status page, offline MathJax, the static lab, the Sphinx
extension) lives apart in :mod:`localdiff_lib.publish`, which needs a checkout of the course and is not installed in
Colab. Submodules are imported by name (``from localdiff_lib import models``); importing the package does no I/O and
touches no network.
"""

from .config import BUDGETS, budget, default_device, describe, pick, seed_everything, smoke, trained
from .prose import glue

__version__ = "0.1.0"
__all__ = ["BUDGETS", "budget", "default_device", "describe", "glue", "pick", "seed_everything", "smoke", "trained",
           "__version__"]
