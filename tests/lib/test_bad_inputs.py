"""Bad inputs and faults against the library's public API: each is refused with an error that says what was wrong.

A table of cases ``(id, call, expected exception type(s), regex)``: the call must raise one of the types with a
message that matches the regex (it names the offending argument or shows the value, and says what is expected).
Nothing may be accepted silently, clipped, coerced, or fail with a raw error from torch or numpy (a shape mismatch
deep inside, an ``IndexError``, a ``LinAlgError`` without context). The faults are a model that returns the wrong
shape or NaN, a sampler of the wrong kind, and checkpoint files that are truncated, corrupt or of another model.

Everything is tiny (8x8 images, ``LocalDenoiser(radius=1, channels=4)``) and every call fails at its boundary,
before any real work; nothing is downloaded. Modules owned elsewhere (``cmi_map``, ``image_density``, ``grading``,
``checkpoints``, ``publish``) are not probed here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import types
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from localdiff_lib import (
    checks,
    closed_form,
    config,
    critical_times,
    data,
    density,
    estimators,
    evaluate,
    info,
    lab,
    locality,
    markov,
    mixture,
    models,
    path,
    sampling,
    stats,
    train,
)

NAN, INF = float("nan"), float("inf")
V, T = ValueError, TypeError
VT = (ValueError, TypeError)


class Case(NamedTuple):
    id: str
    call: object
    exc: type | tuple
    pattern: str


CASES: list[Case] = []


def case(id_: str, call, exc, pattern: str) -> None:
    CASES.append(Case(id_, call, exc, pattern))


# ---------------------------------------------------------------------------------------------- tiny inputs


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


X8 = torch.rand(2, 1, 8, 8, generator=_gen(0))                          # clean images in [0, 1]
Z8 = torch.randn(2, 1, 8, 8, generator=_gen(1))
X28 = torch.rand(4, 1, 28, 28, generator=_gen(2))
Y4 = torch.tensor([0, 1, 2, 3])
TR6 = torch.rand(3, 1, 6, 6, generator=_gen(3), dtype=torch.float64)    # closed-form training images
Q6 = torch.rand(2, 1, 6, 6, generator=_gen(4), dtype=torch.float64)     # closed-form queries
P2 = torch.randn(2, 3, dtype=torch.float64)                             # predictions / points, (N, d)
COV5 = info.ar1_covariance(5, 0.5)
P3 = np.full((2, 2, 2), 1 / 8)                                          # a joint table p[a, b, c]
S244 = torch.randn(2, 4, 4)                                             # critic scores (K, N, N)
ASYMMETRIC = np.array([[1.0, 0.5], [0.0, 1.0]])                         # not a covariance: not symmetric
NOT_PSD = np.array([[1.0, 2.0], [2.0, 1.0]])                            # not a covariance: an eigenvalue -1


def _nan_at(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y.view(-1)[0] = NAN
    return y


@functools.lru_cache(None)
def local(r: int = 1, prediction: str = "velocity") -> nn.Module:
    return models.LocalDenoiser(radius=r, channels=4, emb_dim=8, prediction=prediction, image_size=8).eval()


@functools.lru_cache(None)
def unet() -> nn.Module:
    return models.GlobalUNet(channels=(4, 4, 4), emb_dim=8, image_size=8).eval()


class _Fault(nn.Module):
    """A denoiser-shaped module with a fault: ``kind = "shape"`` returns a crop, ``"nan"`` returns NaN."""

    radius = None

    def __init__(self, kind: str, prediction: str = "velocity"):
        super().__init__()
        self.kind, self.prediction = kind, prediction
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        if self.kind == "shape":
            return x[..., :4, :4] + self.w
        return x * NAN + self.w


class _NoPrediction(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return x + self.w


def _gm1():
    return mixture.GaussianMixture.isotropic([0.5, 0.5], [-1.0, 1.0], [0.5, 0.5])


def _gm2():
    return mixture.GaussianMixture([0.3, 0.7], [[0.0, 0.0], [1.0, 1.0]], np.stack([np.eye(2) * 0.5, np.eye(2) * 0.2]))


def _gm_args(**kw):
    args = dict(weights=[0.5, 0.5], means=[[0.0], [1.0]], covs=[[[1.0]], [[0.5]]])
    args.update(kw)
    return mixture.GaussianMixture(**args)


def _vec_sample(n, rng):
    return rng.standard_normal((n, 4))


FAST = dict(steps=1, batch=2, eval_batches=2, hidden=4, features=4, device="cpu")
FAST_DENSITY = dict(steps=1, batch=2, eval_batches=2, hidden=4, components=2, device="cpu")
FAST_FIT = dict(steps=1, batch_size=2, progress=False)


def _bank_sampler(shape=(1, 2, 4), numpy: bool = False):
    def sampler(split, n, gen):
        x = torch.rand(shape[0], n if shape[1] is None else shape[1], shape[2])
        return x.numpy() if numpy else x
    return sampler


def _masks(G: int = 1, c: int = 1, D: int = 4, on=(1, 2, 3)):
    m = torch.zeros(G, c, D)
    m[..., list(on)] = 1.0
    return m


@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _with_env(env: dict, fn, *args, **kw):
    with _env(**env):
        return fn(*args, **kw)


@functools.lru_cache(None)
def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="localdiff-bad-inputs-"))


@pytest.fixture(scope="module", autouse=True)
def _cleanup_tmp():
    yield
    if _tmp.cache_info().currsize:
        shutil.rmtree(_tmp(), ignore_errors=True)
        _tmp.cache_clear()


def _ckpt(name: str, model=None, **kw) -> Path:
    p = _tmp() / name
    train.save_checkpoint(p, local() if model is None else model, **kw)
    return p


def _file(name: str, content: bytes) -> Path:
    p = _tmp() / name
    p.write_bytes(content)
    return p


def _truncated() -> Path:
    raw = _ckpt("whole.pt").read_bytes()
    return _file("truncated.pt", raw[: len(raw) // 2])


def _saved(name: str, obj) -> Path:
    p = _tmp() / name
    torch.save(obj, p)
    return p


def _fitted_checkpoint() -> Path:
    p = _tmp() / "fitted.pt"
    if not p.exists():
        train.fit(models.LocalDenoiser(radius=1, channels=4, emb_dim=8, image_size=8), X8, checkpoint=p,
                  channels_last=False, **FAST_FIT)
    return p


def _fresh_local():
    return models.LocalDenoiser(radius=1, channels=4, emb_dim=8, image_size=8)


def _cmi_map(t=(0.0, 0.5, 1.0), r=(1,), cmi=None):
    t, r = np.asarray(t, dtype=float), np.asarray(r)
    return types.SimpleNamespace(t=t, r=r, cmi=np.zeros((len(t), len(r))) if cmi is None else np.asarray(cmi))


def _lab(local_models=None, global_model=None, x0=None, cmi_map=None, **kw):
    args = dict(curve_T=(0.5, 1.0), steps_per_unit_time=2, n_samples=2, sample_steps=2)
    args.update(kw)
    return lab.TransitionLab({1: local()} if local_models is None else local_models,
                             unet() if global_model is None else global_model,
                             X8 if x0 is None else x0, _cmi_map() if cmi_map is None else cmi_map, **args)


@functools.lru_cache(None)
def the_lab():
    return _lab()


# ---------------------------------------------------------------------------------------------- config, checks

case("config.seed_everything-bool", lambda: config.seed_everything(True),
     T, r"seed must be an integer.*got True \(bool\)")
case("config.seed_everything-float", lambda: config.seed_everything(1.5), T, r"seed must be an integer.*got 1\.5")
case("config.seed_everything-str", lambda: config.seed_everything("3"), T, r"seed must be an integer.*got '3'")
case("config.seed_everything-None", lambda: config.seed_everything(None), T, r"seed must be an integer.*got None")
case("config.seed_everything-list", lambda: config.seed_everything([1]), T, r"seed must be an integer.*got \[1\]")
case("config.seed_everything-too-large", lambda: config.seed_everything(2**70), V,
     r"seed must be an integer in \[-9223372036854775808, 18446744073709551615\]; got 1180591620717411303424")
case("config.budget-unknown", lambda: _with_env({"LOCALDIFF_BUDGET": "fast"}, config.budget), V,
     r"LOCALDIFF_BUDGET='fast' is not a run budget; set it to one of quick, standard, full")
case("config.pick-unknown-budget", lambda: _with_env({"LOCALDIFF_BUDGET": "huge"}, config.pick, quick=1, standard=2,
                                                      full=3), V, r"LOCALDIFF_BUDGET='huge' is not a run budget")
case("config.pick-missing-full", lambda: config.pick(quick=1, standard=2), T, r"missing .*'full'")
case("config.pick-positional", lambda: config.pick(1, 2, 3), T, r"positional")

case("checks.integer-nan", lambda: checks.integer(NAN, "n"), T, r"n must be a positive integer; got nan")
case("checks.unit_time-inf", lambda: checks.unit_time(INF, "t"), V, r"t must lie in \[0, 1\] .*got inf")
case("checks.unit_times-str", lambda: checks.unit_times(["0.1", "0.2"], "T"), T,
     r"T must be numbers in \[0, 1\].*got \['0\.1', '0\.2'\]")
case("checks.unit_times-bool", lambda: checks.unit_times([True, 0.5], "T"), T, r"T must be numbers in \[0, 1\].*True")
case("checks.unit_times-None", lambda: checks.unit_times(None, "T"), T, r"T must be numbers in \[0, 1\].*got None")
case("checks.unit_times-ragged", lambda: checks.unit_times([[0.1], [0.2, 0.3]], "T"),
     T, r"T must be numbers in \[0, 1\]")
case("checks.unit_times-inf", lambda: checks.unit_times([0.1, INF], "T"), V, r"T must lie in \[0, 1\].*got \[inf\]")
case("checks.time_window-str", lambda: checks.time_window(("0.2", "0.5")), T, r"window must be a pair of numbers")
case("checks.time_window-bool", lambda: checks.time_window((False, True)), T, r"window must be a pair of numbers")
case("checks.time_window-None", lambda: checks.time_window(None), T, r"window must be a pair")
case("checks.time_window-nan", lambda: checks.time_window((NAN, 0.5)), V,
     r"window \(t_lo, t_hi\) needs 0 <= t_lo <= t_hi <= 1; got \(nan, 0\.5\)")
case("checks.disjoint_regions-float-index", lambda: checks.disjoint_regions(4, A=[0.5], C=[1]), T,
     r"region A must .*integer.*got 0\.5")
case("checks.disjoint_regions-bool-index", lambda: checks.disjoint_regions(4, A=[True], C=[1]), T,
     r"region A must .*integer.*got True")
case("checks.disjoint_regions-str-index", lambda: checks.disjoint_regions(4, A=["1"], C=[2]), T,
     r"region A must .*integer.*got '1'")
case("checks.disjoint_regions-int-not-list", lambda: checks.disjoint_regions(4, A=1, C=[2]), T,
     r"region A must be a list of integer indices.*got 1")
case("checks.disjoint_regions-negative", lambda: checks.disjoint_regions(4, A=[-1], C=[2]), V,
     r"region A has index -1 outside \[0, 3\]")

# ---------------------------------------------------------------------------------------------- path

case("path.check_t-negative", lambda: path.check_t(-0.1), V, r"t must lie in \[0, 1\].*-0\.1")
case("path.check_t-above-one", lambda: path.check_t(1.5), V, r"t must lie in \[0, 1\].*1\.5")
case("path.check_t-nan", lambda: path.check_t(NAN), V, r"t must lie in \[0, 1\].*nan")
case("path.check_t-inf", lambda: path.check_t(INF), V, r"t must lie in \[0, 1\].*inf")
case("path.check_t-minus-inf", lambda: path.check_t(-INF), V, r"t must lie in \[0, 1\].*-inf")
case("path.check_t-bool", lambda: path.check_t(True), T, r"t must be a number.*in \[0, 1\].*got True")
case("path.check_t-str", lambda: path.check_t("0.3"), T, r"t must be a number.*got '0\.3'")
case("path.check_t-None", lambda: path.check_t(None), T, r"t must be a number.*got None")
case("path.check_t-list-out-of-range", lambda: path.check_t([0.1, 2.0]), V, r"t must lie in \[0, 1\].*2")
case("path.check_t-ragged-list", lambda: path.check_t([[0.1], [0.2, 0.3]]), T, r"t must be a number")
case("path.check_t-bool-tensor", lambda: path.check_t(torch.tensor([True, False])), T, r"t must be .*number.*bool")
case("path.check_t-complex-tensor", lambda: path.check_t(torch.tensor([0.5 + 1j])), T, r"t must be .*number.*complex")
case("path.check_t-int-tensor-out-of-range", lambda: path.check_t(torch.tensor([2])), V, r"t must lie in \[0, 1\].*2")
case("path.check_t-wrong-batch", lambda: path.check_t(torch.tensor([0.1, 0.2]), 3), V,
     r"t must be a scalar or have shape \(3,\).*got shape \(2,\)")
case("path.check_t-2d", lambda: path.check_t(torch.full((2, 1), 0.5), 2), V, r"shape \(2,\).*got shape \(2, 1\)")

case("path.interpolate-t-above-one", lambda: path.interpolate(X8, Z8, 1.5), V, r"t must lie in \[0, 1\].*1\.5")
case("path.interpolate-t-negative", lambda: path.interpolate(X8, Z8, -0.2), V, r"t must lie in \[0, 1\].*-0\.2")
case("path.interpolate-t-nan", lambda: path.interpolate(X8, Z8, NAN), V, r"t must lie in \[0, 1\].*nan")
case("path.interpolate-t-bool", lambda: path.interpolate(X8, Z8, True), T, r"t must be a number.*True")
case("path.interpolate-t-str", lambda: path.interpolate(X8, Z8, "0.5"), T, r"t must be a number.*'0\.5'")
case("path.interpolate-t-tensor-out-of-range", lambda: path.interpolate(X8, Z8, torch.tensor([0.2, 1.2])), V,
     r"t must lie in \[0, 1\].*1\.2")
case("path.interpolate-t-wrong-batch", lambda: path.interpolate(X8, Z8, torch.rand(3)), V,
     r"t must be a scalar or have shape \(2,\)")
case("path.interpolate-shape-mismatch", lambda: path.interpolate(X8, Z8[..., :4, :4], 0.5), V,
     r"x0 and z must have the same shape; got \(2, 1, 8, 8\) and \(2, 1, 4, 4\)")
case("path.interpolate-batch-mismatch", lambda: path.interpolate(X8, torch.randn(3, 1, 8, 8), 0.5), V,
     r"x0 and z must have the same shape")
case("path.interpolate-numpy", lambda: path.interpolate(X8.numpy(), Z8.numpy(), 0.5),
     T, r"x0 must be a tensor; got ndarray")
case("path.interpolate-z-None", lambda: path.interpolate(X8, None, 0.5), T, r"z must be a tensor; got NoneType")
case("path.add_noise-t-above-one", lambda: path.add_noise(X8, 2.0), V, r"t must lie in \[0, 1\].*2")
case("path.add_noise-t-nan", lambda: path.add_noise(X8, NAN), V, r"t must lie in \[0, 1\].*nan")
case("path.add_noise-t-wrong-batch", lambda: path.add_noise(X8, torch.rand(5)),
     V, r"t must be a scalar or have shape \(2,\)")
case("path.add_noise-list", lambda: path.add_noise([[0.1, 0.2]], 0.5), T, r"x0 must be a tensor; got list")
case("path.add_noise-int-tensor", lambda: path.add_noise(torch.zeros(2, 3, dtype=torch.long), 0.5), T,
     r"x0 must be a floating-point tensor; got dtype torch\.int64")
case("path.add_noise-bad-generator", lambda: path.add_noise(X8, 0.5, generator="seed"), T,
     r"generator must be a torch\.Generator or None; got str")
case("path.target-kind-typo", lambda: path.target("velocty", X8, Z8, 0.5), V,
     r"unknown prediction kind 'velocty'; use one of velocity, noise, x0, score")
case("path.target-kind-None", lambda: path.target(None, X8, Z8, 0.5), V, r"unknown prediction kind None")
case("path.target-t-above-one", lambda: path.target("velocity", X8, Z8, 1.5), V, r"t must lie in \[0, 1\].*1\.5")
case("path.target-shape-mismatch", lambda: path.target("velocity", X8, Z8[:1], 0.5), V,
     r"x0 and z must have the same shape")
case("path.target-score-at-t0", lambda: path.target("score", X8, Z8, 0.0), V, r"score.*undefined at t = 0")
case("path.to_pair-unknown-kind", lambda: path.to_pair(P2, "foo", P2, 0.5), V, r"unknown prediction kind 'foo'")
case("path.to_pair-t-negative", lambda: path.to_pair(P2, "velocity", P2, -1.0), V, r"t must lie in \[0, 1\]")
case("path.to_pair-shape-mismatch", lambda: path.to_pair(P2, "velocity", P2[:, :2], 0.5), V,
     r"pred and x_t must have the same shape; got \(2, 3\) and \(2, 2\)")
case("path.to_pair-noise-at-t1", lambda: path.to_pair(P2, "noise", P2, 1.0), V, r"noise.*undefined at t = 1")
case("path.to_pair-x0-at-t0", lambda: path.to_pair(P2, "x0", P2, torch.tensor([0.0, 0.5], dtype=torch.float64)), V,
     r"x0.*undefined at t = 0")
case("path.convert-unknown-dst", lambda: path.convert(P2, "velocity", "bogus", P2, 0.5),
     V, r"unknown prediction kind 'bogus'")
case("path.convert-unknown-src", lambda: path.convert(P2, "bogus", "x0", P2, 0.5),
     V, r"unknown prediction kind 'bogus'")
case("path.convert-unknown-both", lambda: path.convert(P2, "foo", "foo", P2, 0.5), V, r"unknown prediction kind 'foo'")
case("path.convert-same-kind-t-out-of-range", lambda: path.convert(P2, "x0", "x0", P2, 5.0),
     V, r"t must lie in \[0, 1\].*5")
case("path.convert-x0-to-noise-at-t0", lambda: path.convert(P2, "x0", "noise", P2, 0.0), V, r"x0.*undefined at t = 0")
case("path.convert-velocity-to-score-at-t0", lambda: path.convert(P2, "velocity", "score", P2, 0.0), V,
     r"score.*undefined at t = 0")
case("path.convert-noise-to-x0-at-t1", lambda: path.convert(P2, "noise", "x0", P2, 1.0),
     V, r"noise.*undefined at t = 1")
case("path.convert-score-to-velocity-at-t1", lambda: path.convert(P2, "score", "velocity", P2, 1.0), V,
     r"score.*undefined at t = 1")
case("path.convert-shape-mismatch", lambda: path.convert(P2, "velocity", "x0", P2[:1], 0.5), V,
     r"pred and x_t must have the same shape")
case("path.convert-t-wrong-batch", lambda: path.convert(P2, "velocity", "x0", P2, torch.rand(3, dtype=torch.float64)),
     V, r"t must be a scalar or have shape \(2,\)")
case("path.to_velocity-t-above-one", lambda: path.to_velocity(P2, "noise", P2, 1.2), V, r"t must lie in \[0, 1\].*1\.2")
case("path.to_x0-unknown-kind", lambda: path.to_x0(P2, "eps", P2, 0.5), V, r"unknown prediction kind 'eps'")
case("path.to_noise-t-nan", lambda: path.to_noise(P2, "velocity", P2, NAN), V, r"t must lie in \[0, 1\].*nan")
case("path.to_score-at-t0", lambda: path.to_score(P2, "noise", P2, 0.0), V, r"score.*undefined at t = 0")
case("path.sde_coefficients-t1", lambda: path.sde_coefficients(1.0), V, r"defined for t in \[0, 1\)\)?.*got 1\.0")
case("path.sde_coefficients-negative", lambda: path.sde_coefficients(-0.1), V, r"\[0, 1\).*-0\.1")
case("path.sde_coefficients-nan", lambda: path.sde_coefficients(NAN), V, r"\[0, 1\).*nan")
case("path.sde_coefficients-str", lambda: path.sde_coefficients("0.5"),
     T, r"t \(the forward SDE.*must be a finite number.*'0\.5'")
case("path.sde_coefficients-None", lambda: path.sde_coefficients(None),
     T, r"t \(the forward SDE.*must be a finite number.*None")
case("path.sde_coefficients-tensor", lambda: path.sde_coefficients(torch.tensor([0.2, 0.3])),
     T, r"t \(the forward SDE.*must be a finite number")
case("path.marginal_variance-t-above-one", lambda: path.marginal_variance(1.0, 1.5), V, r"t must lie in \[0, 1\].*1\.5")
case("path.marginal_variance-t-array", lambda: path.marginal_variance(1.0, np.array([0.5, -0.5])), V,
     r"t must lie in \[0, 1\].*-0\.5")
case("path.marginal_variance-t-str", lambda: path.marginal_variance(1.0, "0.5"), T, r"t must be a number")
case("path.marginal_variance-negative-var0", lambda: path.marginal_variance(-1.0, 0.5), V, r"var0 must be .*>= 0.*-1")
case("path.marginal_variance-nan-var0", lambda: path.marginal_variance(torch.tensor([1.0, NAN]), 0.5), V,
     r"var0 must be .*>= 0.*nan")
case("path.marginal_covariance-1d", lambda: path.marginal_covariance(np.ones(3), 0.5), V,
     r"cov0 must have shape \(\.\.\., d, d\); got \(3,\)")
case("path.marginal_covariance-not-square", lambda: path.marginal_covariance(np.ones((2, 3)), 0.5), V,
     r"cov0 must have shape \(\.\.\., d, d\); got \(2, 3\)")
case("path.marginal_covariance-None", lambda: path.marginal_covariance(None, 0.5), VT, r"cov0 must")
case("path.marginal_covariance-t-above-one", lambda: path.marginal_covariance(np.eye(2), 1.5),
     V, r"t must lie in \[0, 1\]")
case("path.marginal_covariance-t-nan", lambda: path.marginal_covariance(torch.eye(2), NAN),
     V, r"t must lie in \[0, 1\].*nan")

# ---------------------------------------------------------------------------------------------- mixture

case("mixture.init-weights-sum", lambda: _gm_args(weights=[0.5, 0.4]), V, r"weights must be positive and sum to 1")
case("mixture.init-weights-negative", lambda: _gm_args(weights=[1.5, -0.5]),
     V, r"weights must be positive and sum to 1")
case("mixture.init-weights-nan", lambda: _gm_args(weights=[NAN, 1.0]), V, r"weights must be .*nan")
case("mixture.init-weights-2d", lambda: _gm_args(weights=[[0.5, 0.5]]), V, r"weights must be a non-empty vector \(K,\)")
case("mixture.init-weights-empty", lambda: _gm_args(weights=[]), V, r"weights must be a non-empty vector")
case("mixture.init-weights-str", lambda: _gm_args(weights="ab"), VT, r"weights must be numbers.*'ab'")
case("mixture.init-means-1d", lambda: _gm_args(means=[0.0, 1.0]), V, r"means must have shape \(K, d\) = \(2, d\)")
case("mixture.init-means-nan", lambda: _gm_args(means=[[NAN], [1.0]]), V, r"means must be finite")
case("mixture.init-covs-shape", lambda: _gm_args(covs=[[1.0], [0.5]]),
     V, r"covs must have shape \(K, d, d\) = \(2, 1, 1\)")
case("mixture.init-covs-nan", lambda: _gm_args(covs=[[[NAN]], [[0.5]]]), V, r"covs must be finite")
case("mixture.init-covs-not-symmetric",
     lambda: mixture.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]]),
     V, r"covs must be symmetric")
case("mixture.init-covs-not-pd", lambda: _gm_args(covs=[[[-1.0]], [[0.5]]]),
     V, r"covs must be positive definite; components \[0\]")
case("mixture.init-int-dtype", lambda: _gm_args(dtype=torch.int64),
     VT, r"dtype must be a floating-point dtype.*got torch\.int64")
case("mixture.isotropic-negative-std", lambda: mixture.GaussianMixture.isotropic([0.5, 0.5], [0.0, 1.0], [0.1, -0.1]),
     V, r"stds must be 2 positive numbers")
case("mixture.isotropic-nan-std", lambda: mixture.GaussianMixture.isotropic([0.5, 0.5], [0.0, 1.0], [0.1, NAN]), V,
     r"stds must be 2 positive .*numbers.*nan")
case("mixture.isotropic-wrong-length", lambda: mixture.GaussianMixture.isotropic([0.5, 0.5], [0.0, 1.0], [0.1]), V,
     r"stds must be 2 positive numbers, one per component")
case("mixture.at-t-above-one", lambda: _gm1().at(1.5), V, r"t must lie in \[0, 1\]")
case("mixture.at-t-str", lambda: _gm1().at("0.5"), T, r"t must be a number.*'0\.5'")
case("mixture.at-t-nan", lambda: _gm1().at(NAN), V, r"t must lie in \[0, 1\].*nan")
case("mixture.marginal-empty", lambda: _gm2().marginal([]), V, r"dims must be distinct pixel indices in \[0, 2\)")
case("mixture.marginal-out-of-range", lambda: _gm2().marginal([2]),
     V, r"dims .*index 2 outside \[0, 1\]|dims must be distinct")
case("mixture.marginal-duplicate", lambda: _gm2().marginal([0, 0]), V, r"dims must be distinct pixel indices")
case("mixture.marginal-float", lambda: _gm2().marginal([0.5]), T, r"dims must .*integer.*got 0\.5")
case("mixture.marginal-bool", lambda: _gm2().marginal([True]), T, r"dims must .*integer.*got True")
case("mixture.marginal-int-not-list", lambda: _gm2().marginal(1), T, r"dims must be a list of integer indices.*got 1")
case("mixture.mean-t-above-one", lambda: _gm1().mean(2.0), V, r"t must lie in \[0, 1\]")
case("mixture.cov-t-negative", lambda: _gm1().cov(-1.0), V, r"t must lie in \[0, 1\]")
case("mixture.sample-zero", lambda: _gm1().sample(0), V, r"n must be a positive integer; got 0")
case("mixture.sample-float", lambda: _gm1().sample(2.5), T, r"n must be a positive integer; got 2\.5")
case("mixture.sample-bool", lambda: _gm1().sample(True), T, r"n must be a positive integer; got True")
case("mixture.sample-bad-generator", lambda: _gm1().sample(3, generator="g"),
     T, r"generator must be a torch\.Generator")
case("mixture.log_prob-wrong-dim", lambda: _gm2().log_prob(torch.zeros(3, 3)), V, r"x must have shape \(N, 2\)")
case("mixture.log_prob-1d", lambda: _gm2().log_prob(torch.zeros(3)), V, r"x must have shape \(N, 2\).*got \(3,\)")
case("mixture.log_prob-nan", lambda: _gm2().log_prob(torch.tensor([[NAN, 0.0]])), V, r"x must be finite")
case("mixture.log_prob-t-above-one", lambda: _gm2().log_prob(torch.zeros(3, 2), 1.5), V, r"t must lie in \[0, 1\]")
case("mixture.score-t-wrong-batch", lambda: _gm2().score(torch.zeros(3, 2), torch.rand(2)), V,
     r"t must be a scalar or have shape \(3,\)")
case("mixture.predict-unknown-kind", lambda: _gm2().predict("bogus", torch.zeros(3, 2), 0.5),
     V, r"unknown prediction kind 'bogus'")
case("mixture.predict-t-str", lambda: _gm2().predict("velocity", torch.zeros(3, 2), "a"), T, r"t must be a number")
case("mixture.posterior_mean-str", lambda: _gm2().posterior_mean("abc", 0.5), VT, r"x must be .*\(N, 2\).*'abc'")
case("mixture.cdf-two-pixels", lambda: _gm2().cdf(torch.zeros(3)), V, r"cdf is defined for one-pixel mixtures only")
case("mixture.cdf-t-above-one", lambda: _gm1().cdf(torch.zeros(3), 2.0), V, r"t must lie in \[0, 1\]")

# ---------------------------------------------------------------------------------------------- info

case("info.gaussian_cmi-overlap", lambda: info.gaussian_cmi(COV5, [0], [0, 1], [3]), V,
     r"regions A and B overlap at indices \[0\]; they must be disjoint")
case("info.gaussian_cmi-out-of-range", lambda: info.gaussian_cmi(COV5, [0], [1], [7]),
     V, r"region C has indices outside \[0, 4\]")
case("info.gaussian_cmi-negative-index", lambda: info.gaussian_cmi(COV5, [-1], [1], [3]),
     V, r"region A has indices outside \[0, 4\]")
case("info.gaussian_cmi-empty-A", lambda: info.gaussian_cmi(COV5, [], [1], [3]),
     V, r"regions A and C must be non-empty")
case("info.gaussian_cmi-float-index", lambda: info.gaussian_cmi(COV5, [0.5], [1], [3]), T,
     r"region A must be a list of integer \(flat\) indices")
case("info.gaussian_cmi-bool-index", lambda: info.gaussian_cmi(COV5, [True], [1], [3]), T,
     r"region A must be a list of integer \(flat\) indices")
case("info.gaussian_cmi-int-region", lambda: info.gaussian_cmi(COV5, 0, [1], [3]), T,
     r"region A must be a list of integer \(flat\) indices.*got 0")
case("info.gaussian_cmi-duplicate", lambda: info.gaussian_cmi(COV5, [0, 0], [1], [3]),
     V, r"region A lists an index twice")
case("info.gaussian_cmi-not-square", lambda: info.gaussian_cmi(np.ones((2, 3)), [0], [], [1]), V,
     r"covariance matrix must be square 2-D, got shape \(2, 3\)")
case("info.gaussian_cmi-3d", lambda: info.gaussian_cmi(np.ones((2, 2, 2)), [0], [], [1]),
     V, r"covariance matrix must be square 2-D")
case("info.gaussian_cmi-nan", lambda: info.gaussian_cmi(np.array([[1.0, NAN], [NAN, 1.0]]), [0], [], [1]), V,
     r"covariance matrix contains NaN or inf")
case("info.gaussian_cmi-torch-inf", lambda: info.gaussian_cmi(torch.tensor([[1.0, INF], [INF, 1.0]]), [0], [], [1]), V,
     r"covariance matrix contains NaN or inf")
case("info.gaussian_cmi-not-symmetric", lambda: info.gaussian_cmi(np.array([[1.0, 0.5], [0.0, 1.0]]), [0], [], [1]), V,
     r"covariance matrix is not symmetric")
case("info.gaussian_cmi-not-pd", lambda: info.gaussian_cmi(np.array([[1.0, 2.0], [2.0, 1.0]]), [0], [], [1]), V,
     r"not positive definite")
case("info.gaussian_cmi-str-cov", lambda: info.gaussian_cmi("abc", [0], [], [1]), VT,
     r"covariance matrix must be a square 2-D array of numbers.*'abc'")
case("info.gaussian_cmi-None-cov", lambda: info.gaussian_cmi(None, [0], [], [1]), VT, r"covariance matrix must be")
case("info.gaussian_mi-overlap", lambda: info.gaussian_mi(COV5, [0], [0]), V, r"regions A and C overlap")
case("info.gaussian_mi-empty-C", lambda: info.gaussian_mi(COV5, [0], []), V, r"regions A and C must be non-empty")
case("info.gaussian_mi-not-pd", lambda: info.gaussian_mi(np.zeros((2, 2)), [0], [1]), V, r"not positive definite")
case("info.gaussian_cmi_logdet-overlap", lambda: info.gaussian_cmi_logdet(COV5, [0], [1], [1]),
     V, r"regions B and C overlap")
case("info.gaussian_cmi_logdet-not-pd", lambda: info.gaussian_cmi_logdet(np.zeros((3, 3)), [0], [1], [2]), V,
     r"not positive definite")
case("info.path_covariance-t-above-one", lambda: info.path_covariance(COV5, 1.5), V, r"t must lie in \[0, 1\].*1\.5")
case("info.path_covariance-t-nan", lambda: info.path_covariance(COV5, NAN), V, r"t must lie in \[0, 1\].*nan")
case("info.path_covariance-t-str", lambda: info.path_covariance(COV5, "0.5"), T, r"t must be a number")
case("info.path_covariance-t-None", lambda: info.path_covariance(COV5, None), T, r"t must be a number.*None")
case("info.path_covariance-1d", lambda: info.path_covariance(np.ones(3), 0.5),
     V, r"cov0 must have shape \(\.\.\., d, d\)")
case("info.regions-zero-size", lambda: info.regions((0, 5), None, 1),
     V, r"shape must be \(n,\) or \(H, W\) with positive sizes")
case("info.regions-3d", lambda: info.regions((3, 3, 3), None, 1), V, r"shape must be \(n,\) or \(H, W\)")
case("info.regions-r-negative", lambda: info.regions((5, 5), None, -1),
     V, r"the buffer radius r must be a non-negative integer; got -1")
case("info.regions-r-float", lambda: info.regions((5, 5), None, 1.5),
     T, r"the buffer radius r must be a non-negative integer; got 1\.5")
case("info.regions-r-bool", lambda: info.regions((5, 5), None, True), T, r"the buffer radius r must be .*got True")
case("info.regions-center-outside", lambda: info.regions((5, 5), (9, 9), 0),
     V, r"center \(9, 9\) lies outside the image")
case("info.regions-center-length", lambda: info.regions((5, 5), (1,), 0),
     V, r"center \(1,\) does not match the shape \(5, 5\)")
case("info.regions-r-too-large", lambda: info.regions((5, 5), None, 3),
     V, r"does not fit in shape \(5, 5\); use r <= 2")
case("info.regions-center-float", lambda: info.regions((5, 5), (1.5, 2), 0), T, r"center .*integer.*1\.5")
case("info.regions-center-bool", lambda: info.regions((5,), True, 0), T, r"center .*integer.*True")
case("info.regions-shape-float", lambda: info.regions((5.5, 5), None, 1), T, r"shape .*integer.*5\.5")
case("info.regions-shape-str", lambda: info.regions("ab", None, 1), T, r"shape must be \(n,\) or \(H, W\).*'ab'")
case("info.regions-shape-None", lambda: info.regions(None, None, 1), T, r"shape must be \(n,\) or \(H, W\).*None")
case("info.paper_crop-too-small", lambda: info.paper_crop(X8, 2), V, r"crop must be an integer in \[3, 8\]")
case("info.paper_crop-too-large", lambda: info.paper_crop(X8, 9), V, r"crop must be an integer in \[3, 8\]")
case("info.paper_crop-bool", lambda: info.paper_crop(X8, True), V, r"crop must be an integer in \[3, 8\].*True")
case("info.paper_crop-float", lambda: info.paper_crop(X8, 7.0), V, r"crop must be an integer in \[3, 8\].*7\.0")
case("info.paper_crop-not-square", lambda: info.paper_crop(X8[..., :6], 5),
     V, r"images must be square in their last two axes, got 8 x 6")
case("info.paper_crop-1d", lambda: info.paper_crop(np.zeros(5), 3),
     VT, r"images must be an array or tensor of shape \(\.\.\., H, H\)")
case("info.paper_crop-list", lambda: info.paper_crop([[0.0] * 4] * 4, 3),
     VT, r"images must be an array or tensor of shape \(\.\.\., H, H\)")
case("info.paper_a_pixel-crop-larger-than-side", lambda: info.paper_a_pixel(10, 27),
     V, r"crop must be an integer in \[3, 10\]")
case("info.paper_a_pixel-side-float", lambda: info.paper_a_pixel(2.5, 3), T, r"side must be .*integer.*2\.5")
case("info.paper_a_pixel-crop-bool", lambda: info.paper_a_pixel(28, True), T, r"crop must be an integer.*True")
case("info.gmrf_precision-kappa-zero", lambda: info.gmrf_precision((3, 3), 0.0), V, r"kappa.*must be .*> 0.*got 0")
case("info.gmrf_precision-kappa-negative", lambda: info.gmrf_precision((3, 3), -1.0), V, r"kappa.*> 0.*got -1")
case("info.gmrf_precision-kappa-nan", lambda: info.gmrf_precision((3, 3), NAN), V, r"kappa.*> 0.*got nan")
case("info.gmrf_precision-kappa-inf", lambda: info.gmrf_precision((3, 3), INF), V, r"kappa.*finite number > 0.*got inf")
case("info.gmrf_precision-kappa-str", lambda: info.gmrf_precision((3, 3), "1"),
     T, r"kappa.*must be a finite number.*got '1'")
case("info.gmrf_precision-zero-size", lambda: info.gmrf_precision((0,), 1.0), V, r"shape must be \(n,\) or \(H, W\)")
case("info.gmrf_precision-3d", lambda: info.gmrf_precision((2, 2, 2), 1.0), V, r"shape must be \(n,\) or \(H, W\)")
case("info.gmrf_precision-shape-float", lambda: info.gmrf_precision(2.5, 1.0), T, r"shape .*integer.*2\.5")
case("info.gmrf_covariance-kappa-inf", lambda: info.gmrf_covariance(4, INF), V, r"kappa.*finite number > 0.*got inf")
case("info.ar1_covariance-n-zero", lambda: info.ar1_covariance(0, 0.5), V, r"n must be a positive integer; got 0")
case("info.ar1_covariance-n-float", lambda: info.ar1_covariance(2.5, 0.5), T, r"n must be a positive integer; got 2\.5")
case("info.ar1_covariance-rho-one", lambda: info.ar1_covariance(4, 1.0), V, r"rho.*\(-1, 1\).*got 1")
case("info.ar1_covariance-rho-nan", lambda: info.ar1_covariance(4, NAN), V, r"rho.*\(-1, 1\).*got nan")
case("info.ar1_covariance-rho-str", lambda: info.ar1_covariance(4, "0.5"), T, r"rho.*must be a finite number.*'0\.5'")
case("info.ar1_covariance-sigma-zero", lambda: info.ar1_covariance(4, 0.5, sigma=0.0), V, r"sigma must be .*> 0.*got 0")
case("info.ar1_covariance-sigma-inf", lambda: info.ar1_covariance(4, 0.5, sigma=INF),
     V, r"sigma must be a finite number > 0; got inf")
case("info.ar1_covariance-t-above-one", lambda: info.ar1_covariance(4, 0.5, t=1.5), V, r"t must lie in \[0, 1\]")
case("info.ar1_decay_factor-rho-one", lambda: info.ar1_decay_factor(1.0, 0.5), V, r"rho.*\(-1, 1\)")
case("info.ar1_decay_factor-t-above-one", lambda: info.ar1_decay_factor(0.5, 2.0), V, r"t must lie in \[0, 1\]")
case("info.ar1_decay_factor-sigma-negative", lambda: info.ar1_decay_factor(0.5, 0.5, sigma=-1.0), V,
     r"sigma must be a finite number > 0; got -1")
case("info.ar1_decay_factor-sigma-zero", lambda: info.ar1_decay_factor(0.5, 0.5, sigma=0.0),
     V, r"sigma must be .*> 0; got 0")
case("info.ar1_decay_factor-rho-str", lambda: info.ar1_decay_factor("0.5", 0.5), T, r"rho.*must be a finite number")
case("info.ar1_markov_length-rho-above-one", lambda: info.ar1_markov_length(1.5, 0.5), V, r"rho.*\(-1, 1\)")
case("info.ar1_markov_length-t-negative", lambda: info.ar1_markov_length(0.5, -1.0), V, r"t must lie in \[0, 1\]")
case("info.ar1_markov_length-sigma-nan", lambda: info.ar1_markov_length(0.5, 0.5, sigma=NAN),
     V, r"sigma must be .*> 0; got nan")
case("info.mixture_snr-t-above-one", lambda: info.mixture_snr(2.0), V, r"t must lie in \[0, 1\]")
case("info.mixture_snr-singular", lambda: info.mixture_snr(0.0, sigma0=0.0),
     V, r"sigma0 = 0 at t = 0 makes the mixture singular")
case("info.mixture_snr-mu-nan", lambda: info.mixture_snr(0.5, mu=NAN), V, r"mu must be a finite number; got nan")
case("info.mixture_snr-mu-str", lambda: info.mixture_snr(0.5, mu="0.5"), T, r"mu must be a finite number; got '0\.5'")
case("info.mixture_snr-sigma0-negative", lambda: info.mixture_snr(0.5, sigma0=-0.1),
     V, r"sigma0 must be a finite number >= 0; got -0\.1")
case("info.mixture_class_entropy-k-negative", lambda: info.mixture_class_entropy(-1, 0.5),
     V, r"k must be .*non-negative integer.*-1")
case("info.mixture_class_entropy-k-float", lambda: info.mixture_class_entropy(2.5, 0.5),
     T, r"k must be .*non-negative integer.*2\.5")
case("info.mixture_class_entropy-k-array", lambda: info.mixture_class_entropy(np.array([1, -2]), 0.5), V,
     r"k must be .*non-negative integer")
case("info.mixture_class_entropy-k-str", lambda: info.mixture_class_entropy("a", 0.5),
     T, r"k must be .*non-negative integer")
case("info.mixture_cmi-n_a-zero", lambda: info.mixture_cmi(10, 0.5, n_a=0),
     V, r"need n_a >= 1 and n_c = n - n_a - n_b >= 1")
case("info.mixture_cmi-n_b-too-large", lambda: info.mixture_cmi(10, 0.5, n_b=9),
     V, r"n_c = n - n_a - n_b >= 1; got n=10, n_a=1, n_b=9")
case("info.mixture_cmi-n-float", lambda: info.mixture_cmi(2.5, 0.5), T, r"n must be a non-negative integer; got 2\.5")
case("info.mixture_cmi-n-bool", lambda: info.mixture_cmi(True, 0.5), T, r"n must be a non-negative integer; got True")
case("info.mixture_cmi-n_b-negative", lambda: info.mixture_cmi(10, 0.5, n_b=-1),
     V, r"n_b must be a non-negative integer; got -1")
case("info.mixture_cmi-t-above-one", lambda: info.mixture_cmi(10, 1.5), V, r"t must lie in \[0, 1\]")
case("info.mixture_mi-n_a-zero", lambda: info.mixture_mi(10, 0.5, n_a=0), V, r"need n_a >= 1")
case("info.mixture_critical_time-n-zero", lambda: info.mixture_critical_time(0),
     V, r"n must be a positive integer; got 0")
case("info.mixture_critical_time-n-negative", lambda: info.mixture_critical_time(-5),
     V, r"n must be a positive integer; got -5")
case("info.mixture_critical_time-n-float", lambda: info.mixture_critical_time(2.5),
     T, r"n must be a positive integer; got 2\.5")
case("info.mixture_critical_time-mu-nan", lambda: info.mixture_critical_time(10, mu=NAN),
     V, r"mu must be a finite number; got nan")
case("info.mixture_sample-n-zero", lambda: info.mixture_sample(0, 0.5, 4), V, r"n must be a positive integer; got 0")
case("info.mixture_sample-n-float", lambda: info.mixture_sample(2.5, 0.5, 4),
     T, r"n must be a positive integer; got 2\.5")
case("info.mixture_sample-t-above-one", lambda: info.mixture_sample(4, 1.5, 4), V, r"t must lie in \[0, 1\]")
case("info.mixture_sample-n_samples-zero", lambda: info.mixture_sample(4, 0.5, 0),
     V, r"n_samples must be a positive integer; got 0")
case("info.mixture_sample-seed-float", lambda: info.mixture_sample(4, 0.5, 4, seed=1.5),
     T, r"seed must be a non-negative integer; got 1\.5")
case("info.mixture_log_density-1d", lambda: info.mixture_log_density(np.zeros(3), 0.5),
     V, r"x must have shape \(N, k\).*got \(3,\)")
case("info.mixture_log_density-t-above-one", lambda: info.mixture_log_density(np.zeros((3, 2)), 2.0),
     V, r"t must lie in \[0, 1\]")
case("info.ising_states-too-many", lambda: info.ising_states((5, 5)),
     V, r"exact enumeration is limited to 16 spins; shape \(5, 5\) has 25")
case("info.ising_states-negative", lambda: info.ising_states((-2,)), V, r"shape .*positive.*-2")
case("info.ising_states-float", lambda: info.ising_states(2.5), T, r"shape .*integer.*2\.5")
case("info.ising_distribution-beta-nan", lambda: info.ising_distribution((2, 2), NAN),
     V, r"beta must be a finite number; got nan")
case("info.ising_distribution-h-inf", lambda: info.ising_distribution((2, 2), 0.5, h=INF),
     V, r"h must be a finite number; got inf")
case("info.ising_distribution-beta-str", lambda: info.ising_distribution((2, 2), "1"),
     T, r"beta must be a finite number; got '1'")
case("info.ising_cmi-overlap", lambda: info.ising_cmi((2, 2), 0.5, [0], [0], [3]), V, r"regions A and B overlap")
case("info.ising_cmi-out-of-range", lambda: info.ising_cmi((2, 2), 0.5, [0], [1], [4]),
     V, r"region C has indices outside \[0, 3\]")
case("info.ising_cmi-beta-nan", lambda: info.ising_cmi((2, 2), NAN, [0], [1], [3]),
     V, r"beta must be a finite number; got nan")
case("info.ising_noisy_cmi-t-above-one", lambda: info.ising_noisy_cmi((2, 2), 0.5, 2.0, [0], [1], [3]),
     V, r"t must lie in \[0, 1\]")
case("info.ising_noisy_cmi-n_samples-one", lambda: info.ising_noisy_cmi((2, 2), 0.5, 0.5, [0], [1], [3], n_samples=1),
     V, r"n_samples must be an integer .*2.*got 1")
case("info.ising_noisy_cmi-n_samples-float",
     lambda: info.ising_noisy_cmi((2, 2), 0.5, 0.5, [0], [1], [3], n_samples=2.5),
     VT, r"n_samples must be an integer .*2.*got 2\.5")
case("info.ising_noisy_cmi-seed-negative",
     lambda: info.ising_noisy_cmi((2, 2), 0.5, 0.5, [0], [1], [3], n_samples=4, seed=-1),
     V, r"seed must be a non-negative integer; got -1")
case("info.entropy-negative", lambda: info.entropy([0.5, -0.5, 1.0]), V, r"p must be probabilities.*-0\.5")
case("info.entropy-nan", lambda: info.entropy([NAN, 1.0]), V, r"p must be probabilities.*nan")
case("info.entropy-not-normalised", lambda: info.entropy([1.0, 1.0]), V, r"p must be probabilities .*sum.*2")
case("info.entropy-empty", lambda: info.entropy([]), V, r"p must be probabilities")
case("info.table_entropy-axis-out-of-range", lambda: info.table_entropy(P3, (5,)),
     V, r"keep .*index 5 outside \[0, 2\]")
case("info.table_entropy-axis-not-list", lambda: info.table_entropy(P3, 0),
     T, r"keep .*must be a list of integer indices.*got 0")
case("info.table_entropy-not-normalised", lambda: info.table_entropy(np.ones((2, 2)), (0,)),
     V, r"p must be probabilities .*sum")
case("info.table_cmi-overlap", lambda: info.table_cmi(P3, A=(0,), B=(0,), C=(2,)),
     V, r"regions A and B overlap at index 0")
case("info.table_cmi-axis-out-of-range", lambda: info.table_cmi(P3, C=(3,)),
     V, r"region C has index 3 outside \[0, 2\]")
case("info.table_cmi-negative", lambda: info.table_cmi(P3 * np.array([1, -1]).reshape(2, 1, 1)),
     V, r"p must be probabilities")
case("info.gaussian_surrogate-one-image", lambda: info.gaussian_surrogate(X8[:1]), V, r"need at least 2 images")
case("info.gaussian_surrogate-1d", lambda: info.gaussian_surrogate(np.zeros(5)),
     V, r"images must have shape \(N, \.\.\.\)")
case("info.gaussian_surrogate-nan", lambda: info.gaussian_surrogate(_nan_at(X8)), V, r"images contain NaN or inf")
case("info.surrogate_cmi_map-dequantize-negative",
     lambda: info.surrogate_cmi_map(X8, [0.5], [1], crop=7, dequantize=-1.0),
     V, r"dequantize must be .*>= 0.*-1")
case("info.surrogate_cmi_map-dequantize-nan", lambda: info.surrogate_cmi_map(X8, [0.5], [1], crop=7, dequantize=NAN),
     V, r"dequantize must be a finite number >= 0; got nan")
case("info.surrogate_cmi_map-not-square", lambda: info.surrogate_cmi_map(torch.rand(3, 10), [0.5], [1], crop=3), V,
     r"images must be square, got 10 pixels")
case("info.surrogate_cmi_map-t-above-one", lambda: info.surrogate_cmi_map(X8, [1.5], [1], crop=7), V,
     r"t_values must lie in \[0, 1\]")
case("info.surrogate_cmi_map-t-empty", lambda: info.surrogate_cmi_map(X8, [], [1], crop=7),
     V, r"t_values must hold at least 1 time")
case("info.surrogate_cmi_map-radius-float", lambda: info.surrogate_cmi_map(X8, [0.5], [1.5], crop=7),
     T, r"radii .*integer.*1\.5")
case("info.surrogate_cmi_map-radius-negative", lambda: info.surrogate_cmi_map(X8, [0.5], [-1], crop=7), V,
     r"(radii|buffer radius).*non-negative integer.*-1")
case("info.surrogate_cmi_map-crop-too-large", lambda: info.surrogate_cmi_map(X8, [0.5], [1], crop=9), V,
     r"crop must be an integer in \[3, 8\]")

# ---------------------------------------------------------------------------------------------- markov, stats

case("markov.fit-length-mismatch", lambda: markov.fit_markov_length([1, 2, 3], [0.1, 0.2]), V,
     r"r and cmi must have the same length, got 3 and 2")
case("markov.fit-unknown-method", lambda: markov.fit_markov_length([1, 2], [0.2, 0.1], method="bogus"), V,
     r"method must be 'log' or 'linear', got 'bogus'")
case("markov.fit-one-point", lambda: markov.fit_markov_length([1], [0.1]),
     V, r"need at least 2 radii in the fit window, got 1")
case("markov.fit-empty-window", lambda: markov.fit_markov_length([1, 2, 3], [0.3, 0.2, 0.1], r_min=3, r_max=1), V,
     r"need at least 2 radii in the fit window, got 0")
case("markov.fit-se-negative", lambda: markov.fit_markov_length([1, 2], [0.2, 0.1], [0.1, -0.1]), V,
     r"cmi_se must have the same length as r and be > 0")
case("markov.fit-se-length", lambda: markov.fit_markov_length([1, 2], [0.2, 0.1], [0.1]),
     V, r"cmi_se must have the same length as r")
case("markov.fit-log-nonpositive", lambda: markov.fit_markov_length([1, 2, 3], [0.2, 0.0, 0.1]), V,
     r"method='log' needs CMI > 0 at every radius")
case("markov.fit-r-nan", lambda: markov.fit_markov_length([1, NAN, 3], [0.3, 0.2, 0.1]),
     V, r"r must be finite numbers.*nan")
case("markov.fit-cmi-nan", lambda: markov.fit_markov_length([1, 2, 3], [0.3, NAN, 0.1], method="linear"), V,
     r"cmi must be finite numbers.*nan")
case("markov.fit-cmi-inf", lambda: markov.fit_markov_length([1, 2, 3], [INF, 0.2, 0.1]),
     V, r"cmi must be finite numbers.*inf")
case("markov.fit-repeated-radius", lambda: markov.fit_markov_length([1, 1, 1], [0.3, 0.2, 0.1]), V,
     r"need at least 2 distinct radii")
case("markov.fit-r_min-str", lambda: markov.fit_markov_length([1, 2], [0.2, 0.1], r_min="a"),
     T, r"r_min must be a finite number")
case("markov.fit-r-str", lambda: markov.fit_markov_length(["a", "b"], [0.2, 0.1]), T, r"r must be finite numbers.*'a'")
case("markov.lengths_of_map-no-arrays", lambda: markov.markov_lengths_of_map(object()), V,
     r"cmi_map must have arrays t, r and cmi")
case("markov.lengths_of_map-wrong-shape", lambda: markov.markov_lengths_of_map(_cmi_map(t=(0.1, 0.5), r=(1, 2, 3),
                                                                                       cmi=np.ones((2, 2)))),
     V, r"cmi_map\.cmi must have shape \(len\(t\), len\(r\)\) = \(2, 3\)")

case("stats.t_quantile-p-low", lambda: stats.student_t_quantile(0.3, 5), V, r"p must .*\[0\.5, 1\).*0\.3")
case("stats.t_quantile-p-one", lambda: stats.student_t_quantile(1.0, 5), V, r"p must .*\[0\.5, 1\).*1")
case("stats.t_quantile-p-nan", lambda: stats.student_t_quantile(NAN, 5), V, r"p must .*\[0\.5, 1\).*nan")
case("stats.t_quantile-p-str", lambda: stats.student_t_quantile("0.9", 5), T, r"p must be a finite number.*'0\.9'")
case("stats.t_quantile-df-zero", lambda: stats.student_t_quantile(0.9, 0), V, r"df must be .*got 0")
case("stats.t_quantile-df-float", lambda: stats.student_t_quantile(0.9, 2.5),
     T, r"df must be a positive integer; got 2\.5")
case("stats.t_quantile-df-bool", lambda: stats.student_t_quantile(0.9, True),
     T, r"df must be a positive integer; got True")
case("stats.t_quantile-df-nan", lambda: stats.student_t_quantile(0.9, NAN),
     T, r"df must be a positive integer; got nan")
case("stats.ci-one-sample", lambda: stats.confidence_interval([1.0]), V, r"at least 2 replicates")
case("stats.ci-level-above-one", lambda: stats.confidence_interval([1.0, 2.0], 1.5),
     V, r"level must be a finite number in \(0, 1\); got 1\.5")
case("stats.ci-level-zero", lambda: stats.confidence_interval([1.0, 2.0], 0.0),
     V, r"level must be a finite number in \(0, 1\); got 0")
case("stats.ci-level-nan", lambda: stats.confidence_interval([1.0, 2.0], NAN),
     V, r"level must be a finite number in \(0, 1\); got nan")
case("stats.ci-axis-out-of-range", lambda: stats.confidence_interval(np.ones((2, 3)), axis=3),
     V, r"axis must be an integer in \[-2, 1\]; got 3")
case("stats.ci-str", lambda: stats.confidence_interval(["a", "b"]), T, r"samples must be (finite )?numbers.*'a'")
case("stats.from_seeds-one-seed", lambda: stats.Estimate.from_seeds([1.0], "smile"), V, r"at least 2 replicates")
case("stats.from_seeds-level", lambda: stats.Estimate.from_seeds([1.0, 2.0], "smile", level=2.0), V,
     r"level must be a finite number in \(0, 1\); got 2")

# ---------------------------------------------------------------------------------------------- models, locality

LD = functools.partial(models.LocalDenoiser, channels=4, emb_dim=8, image_size=8)
GU = functools.partial(models.GlobalUNet, channels=(4, 4, 4), emb_dim=8, image_size=8)

case("models.local-radius-zero", lambda: LD(radius=0),
     V, r"radius \(the receptive-field radius in pixels\) must be a positive integer; got 0")
case("models.local-radius-float", lambda: LD(radius=1.5), T, r"radius .*must be a positive integer; got 1\.5")
case("models.local-radius-bool", lambda: LD(radius=True), T, r"radius .*must be a positive integer; got True")
case("models.local-radius-too-large", lambda: LD(radius=30), V, r"radius 30 is larger than a 8x8 image allows")
case("models.local-channels-zero", lambda: LD(radius=1, channels=0), V, r"channels must be a positive integer; got 0")
case("models.local-channels-float", lambda: LD(radius=1, channels=2.5),
     T, r"channels must be a positive integer; got 2\.5")
case("models.local-emb-odd", lambda: LD(radius=1, emb_dim=7), VT, r"(emb_dim|time embedding dimension).*even.*7")
case("models.local-emb-zero", lambda: LD(radius=1, emb_dim=0), V, r"emb_dim.*even positive integer.*got 0")
case("models.local-emb-negative", lambda: LD(radius=1, emb_dim=-2), V, r"emb_dim.*even positive integer.*got -2")
case("models.local-emb-float", lambda: LD(radius=1, emb_dim=2.5), VT, r"(emb_dim|time embedding dimension).*even.*2\.5")
case("models.local-prediction-score", lambda: LD(radius=1, prediction="score"), V,
     r"prediction must be one of velocity, noise, x0; got 'score'")
case("models.local-prediction-None", lambda: LD(radius=1, prediction=None), V, r"prediction must be one of .*got None")
case("models.local-image-size-zero", lambda: LD(radius=1, image_size=0), V, r"image_size must be an integer .*got 0")
case("models.local-image-size-float", lambda: LD(radius=1, image_size=8.5),
     T, r"image_size must be an integer.*got 8\.5")
case("models.forward-3d", lambda: local()(X8[:, 0], 0.5),
     V, r"images must be a tensor of shape \(N, 1, H, W\).*\(2, 8, 8\)")
case("models.forward-int", lambda: local()(X8.long(), 0.5), V, r"images must be floating point.*torch\.int64")
case("models.forward-numpy", lambda: local()(X8.numpy(), 0.5), V, r"\(N, 1, H, W\).*got ndarray")
case("models.forward-two-channels", lambda: local()(X8.expand(2, 2, 8, 8), 0.5), V, r"\(N, 1, H, W\) \(one channel\)")
case("models.forward-t-wrong-batch", lambda: local()(X8, torch.rand(3)), V, r"t must be a scalar or have shape \(2,\)")
case("models.forward-t-above-one", lambda: local()(X8, 1.5), V, r"t must lie in \[0, 1\]")
case("models.forward-t-nan", lambda: local()(X8, NAN), V, r"t must lie in \[0, 1\].*nan")
case("models.forward-t-str", lambda: local()(X8, "0.5"), T, r"t must be a number.*'0\.5'")
case("models.forward-t-bool", lambda: local()(X8, True), T, r"t must be a number.*True")
case("models.forward-t-None", lambda: local()(X8, None), T, r"t must be a number.*None")
case("models.forward-t-bool-tensor", lambda: local()(X8, torch.tensor([True, False])), T, r"t must be .*bool")
case("models.forward-nan-images", lambda: local()(_nan_at(X8), 0.5), V, r"images .*NaN or inf")
case("models.unet-two-widths", lambda: GU(channels=(4, 4)), V, r"channels must be three positive widths.*\(4, 4\)")
case("models.unet-zero-width", lambda: GU(channels=(0, 4, 4)), V, r"channels must be three positive widths")
case("models.unet-float-width", lambda: GU(channels=(4.5, 4, 4)), T, r"channels .*integer.*4\.5")
case("models.unet-int-channels", lambda: GU(channels=4), T, r"channels must be three positive widths.*got 4")
case("models.unet-str-width", lambda: GU(channels=("a", 4, 4)), T, r"channels .*integer.*'a'")
case("models.unet-image-size-30", lambda: GU(image_size=30), V, r"image_size must be divisible by 4, got 30")
case("models.unet-image-size-zero", lambda: GU(image_size=0), V, r"image_size must be .*got 0")
case("models.unet-prediction", lambda: GU(prediction="foo"),
     V, r"prediction must be one of velocity, noise, x0; got 'foo'")
case("models.unet-emb-odd", lambda: GU(emb_dim=7), VT, r"(emb_dim|time embedding dimension).*even.*7")
case("models.unet-wrong-size-input", lambda: unet()(X28, 0.5), V, r"this model was built for 8x8 images; got 28x28")
case("models.build_model-unknown", lambda: models.build_model("Foo", {}),
     V, r"unknown model class 'Foo'; known: LocalDenoiser, GlobalUNet")
case("models.build_model-bad-key", lambda: models.build_model("LocalDenoiser", {"radius": 1, "bogus": 2}), T, r"bogus")
case("models.build_model-None-config", lambda: models.build_model("LocalDenoiser", None),
     T, r"config must be a dict.*got NoneType")
case("models.build_model-missing-radius", lambda: models.build_model("LocalDenoiser", {}), T, r"radius")
case("models.build_model-class-object", lambda: models.build_model(models.LocalDenoiser, {"radius": 1}),
     V, r"unknown model class")
case("models.count_macs-not-module", lambda: models.count_macs("model"),
     T, r"model must be a torch\.nn\.Module; got str")
case("models.count_macs-image-size-float", lambda: models.count_macs(local(), image_size=2.5),
     T, r"image_size must be a positive integer; got 2\.5")
case("models.count_macs-image-size-zero", lambda: models.count_macs(local(), image_size=0),
     V, r"image_size must be a positive integer; got 0")
case("models.count_macs-t-above-one", lambda: models.count_macs(local(), image_size=8, t=1.5),
     V, r"t must lie in \[0, 1\]")
case("models.count_macs-wrong-size", lambda: models.count_macs(unet(), image_size=28),
     V, r"built for 8x8 images; got 28x28")
case("models.count_parameters-not-module", lambda: models.count_parameters([1, 2]),
     T, r"model must be a torch\.nn\.Module; got list")
case("models.label-not-module", lambda: models.label("x"), T, r"model must be a torch\.nn\.Module; got str")
case("models.describe_model-not-module", lambda: models.describe_model(None),
     T, r"model must be a torch\.nn\.Module; got NoneType")

case("locality.footprint-pixel-outside", lambda: locality.gradient_footprint(local(), (30, 30), 8),
     V, r"pixel \(30, 30\) lies outside a 8x8 image")
case("locality.footprint-pixel-one-coordinate", lambda: locality.gradient_footprint(local(), (1,), 8),
     V, r"pixel must be a pair \(row, column\)")
case("locality.footprint-pixel-float", lambda: locality.gradient_footprint(local(), (1.5, 2), 8),
     T, r"pixel .*integer.*1\.5")
case("locality.footprint-pixel-bool", lambda: locality.gradient_footprint(local(), (True, 2), 8),
     T, r"pixel .*integer.*True")
case("locality.footprint-pixel-None", lambda: locality.gradient_footprint(local(), None, 8),
     VT, r"pixel must be a pair")
case("locality.footprint-t-above-one", lambda: locality.gradient_footprint(local(), (1, 1), 8, t=1.5),
     V, r"t must lie in \[0, 1\]")
case("locality.footprint-t-str", lambda: locality.gradient_footprint(local(), (1, 1), 8, t="0.5"),
     T, r"t must be a number")
case("locality.footprint-image-size-float", lambda: locality.gradient_footprint(local(), (1, 1), 2.5), T,
     r"image_size must be .*integer.*2\.5")
case("locality.footprint-image-size-zero", lambda: locality.gradient_footprint(local(), (1, 1), 0), V,
     r"image_size must be .*positive integer.*got 0")
case("locality.footprint-x-batch", lambda: locality.gradient_footprint(local(), (1, 1), x=X8), V,
     r"x must be one image \(H, W\) or \(1, 1, H, W\); got \(2, 1, 8, 8\)")
case("locality.footprint-not-module", lambda: locality.gradient_footprint("model", (1, 1), 8),
     T, r"model must be a torch\.nn\.Module")
case("locality.footprint-wrong-output-shape", lambda: locality.gradient_footprint(_Fault("shape"), (1, 1), 8), V,
     r"(_Fault returned a tensor of shape \(1, 1, 4, 4\); a denoiser must return the shape of its input"
     r"|the model must return a tensor shaped like its input)")
case("locality.footprint_radius-3d", lambda: locality.footprint_radius(torch.zeros(2, 4, 4, dtype=torch.bool), (1, 1)),
     V, r"mask must be a 2-D \(H, W\) boolean tensor; got shape \(2, 4, 4\)")
case("locality.footprint_radius-pixel-outside",
     lambda: locality.footprint_radius(torch.zeros(4, 4, dtype=torch.bool), (4, 0)),
     V, r"pixel \(4, 0\) lies outside a 4x4 image")
case("locality.window-radius-negative", lambda: locality.window(8, (1, 1), -1),
     V, r"radius must be a non-negative integer; got -1")
case("locality.window-radius-float", lambda: locality.window(8, (1, 1), 1.5),
     T, r"radius must be a non-negative integer; got 1\.5")
case("locality.window-pixel-outside", lambda: locality.window(8, (8, 0), 1),
     V, r"pixel \(8, 0\) lies outside a 8x8 image")
case("locality.is_local-radius-negative", lambda: locality.is_local(local(), -1, [(1, 1)], image_size=8), V,
     r"radius must be a non-negative integer; got -1")
case("locality.is_local-default-pixels-outside", lambda: locality.is_local(local(), 1, image_size=8), V,
     r"pixel \(5, 20\) lies outside a 8x8 image")

# ---------------------------------------------------------------------------------------------- closed_form

case("closed_form.ideal-3d", lambda: closed_form.IdealDenoiser(TR6[:, 0]), V, r"shape \(N, 1, H, W\).*\(3, 6, 6\)")
case("closed_form.ideal-uint8", lambda: closed_form.IdealDenoiser((TR6 * 255).to(torch.uint8)),
     V, r"floating point.*torch\.uint8")
case("closed_form.ideal-nan", lambda: closed_form.IdealDenoiser(_nan_at(TR6)), V, r"NaN")
case("closed_form.ideal-empty", lambda: closed_form.IdealDenoiser(TR6[:0]), V, r"at least one")
case("closed_form.ideal-prediction-noise", lambda: closed_form.IdealDenoiser(TR6, prediction="noise"), V,
     r"a closed-form denoiser predicts 'velocity' or 'x0'; got 'noise'")
case("closed_form.ideal-list", lambda: closed_form.IdealDenoiser(TR6.tolist()), V, r"shape \(N, 1, H, W\).*list")
case("closed_form.local-radius-negative", lambda: closed_form.LocalPosteriorDenoiser(TR6, -1), V,
     r"radius .*must be a non-negative integer; got -1")
case("closed_form.local-radius-float", lambda: closed_form.LocalPosteriorDenoiser(TR6, 1.5), T, r"radius .*got 1\.5")
case("closed_form.local-radius-bool", lambda: closed_form.LocalPosteriorDenoiser(TR6, True), T, r"radius .*got True")
case("closed_form.forward-wrong-size", lambda: closed_form.IdealDenoiser(TR6)(Q6[..., :4, :4], 0.5), V,
     r"the training images are 6x6; got noisy images of 4x4")
case("closed_form.forward-t-above-one", lambda: closed_form.IdealDenoiser(TR6)(Q6, 1.5), V, r"t must lie in \[0, 1\]")
case("closed_form.forward-velocity-at-t0", lambda: closed_form.IdealDenoiser(TR6)(Q6, 0.0), V, r"infinite at t = 0")
case("closed_form.forward-t-wrong-batch", lambda: closed_form.LocalPosteriorDenoiser(TR6, 1)(Q6, torch.rand(3)), V,
     r"t must be a scalar or have shape \(2,\)")
case("closed_form.forward-int-images", lambda: closed_form.IdealDenoiser(TR6)(Q6.long(), 0.5), V, r"floating point")
case("closed_form.forward-nan-images", lambda: closed_form.IdealDenoiser(TR6)(_nan_at(Q6), 0.5),
     V, r"images .*NaN or inf")
case("closed_form.ideal_x0-t-nan", lambda: closed_form.ideal_x0(Q6, NAN, TR6), V, r"t must lie in \[0, 1\].*nan")
case("closed_form.local_x0-radius-float", lambda: closed_form.local_x0(Q6, 0.5, TR6, 2.5), T, r"radius .*got 2\.5")
case("closed_form.ideal_log_weights-3d-query", lambda: closed_form.ideal_log_weights(Q6[:, 0], 0.5, TR6),
     V, r"\(N, 1, H, W\)")

# ---------------------------------------------------------------------------------------------- sampling

case("sampling.schedule-default-not-model", lambda: sampling.HybridSchedule("x"),
     V, r"default must be a denoiser module .*got str")
case("sampling.schedule-window-pair", lambda: sampling.HybridSchedule(local(), [(0.2, 0.5)]),
     V, r"a window is a triple \(t_lo, t_hi, model\)")
case("sampling.schedule-window-reversed", lambda: sampling.HybridSchedule(local(), [(0.5, 0.2, unet())]), V,
     r"0 <= t_lo <= t_hi <= 1; got \(0\.5, 0\.2\)")
case("sampling.schedule-window-above-one", lambda: sampling.HybridSchedule(local(), [(0.2, 1.5, unet())]),
     V, r"t_lo <= t_hi <= 1")
case("sampling.schedule-window-nan", lambda: sampling.HybridSchedule(local(), [(NAN, 0.5, unet())]),
     V, r"t_lo <= t_hi <= 1; got \(nan")
case("sampling.schedule-window-str", lambda: sampling.HybridSchedule(local(), [("0.2", "0.5", unet())]), T,
     r"a window must be a pair of numbers")
case("sampling.schedule-window-model", lambda: sampling.HybridSchedule(local(), [(0.2, 0.5, "x")]), V,
     r"window model must be a denoiser module")
case("sampling.schedule-windows-not-list", lambda: sampling.HybridSchedule(local(), 5),
     T, r"windows must be a list of triples.*got 5")
case("sampling.schedule-no-prediction", lambda: sampling.HybridSchedule(_NoPrediction()), V, r"`prediction` attribute")
case("sampling.paper_split-short-window", lambda: sampling.HybridSchedule.paper_split(local(), unet(), window=(0.5,)),
     T, r"window must be a pair")
case("sampling.paper_split-reversed", lambda: sampling.HybridSchedule.paper_split(local(), unet(), window=(0.6, 0.3)),
     V, r"t_lo <= t_hi")
case("sampling.model_at-above-one", lambda: sampling.HybridSchedule(local()).model_at(1.5),
     V, r"t must lie in \[0, 1\]")
case("sampling.model_at-str", lambda: sampling.HybridSchedule(local()).model_at("a"), T, r"t must be a number")
case("sampling.as_schedule-str", lambda: sampling.as_schedule("x"), V, r"model must be a denoiser module")
case("sampling.ode_solve-solver", lambda: sampling.ode_solve(local(), Z8, 1.0, solver="rk4"),
     V, r"solver must be one of euler, heun, authors; got 'rk4'")
case("sampling.ode_solve-3d", lambda: sampling.ode_solve(local(), Z8[:, 0], 1.0),
     V, r"x_start must be a float tensor of shape \(N, 1, H, W\)")
case("sampling.ode_solve-int", lambda: sampling.ode_solve(local(), Z8.long(), 1.0),
     V, r"x_start must be a float tensor")
case("sampling.ode_solve-numpy", lambda: sampling.ode_solve(local(), Z8.numpy(), 1.0),
     V, r"x_start must be a float tensor.*ndarray")
case("sampling.ode_solve-t-start-above-one", lambda: sampling.ode_solve(local(), Z8, 1.5),
     V, r"need 0 <= t_end <= t_start <= 1")
case("sampling.ode_solve-t-end-after-start", lambda: sampling.ode_solve(local(), Z8, 0.3, 0.5), V, r"t_end <= t_start")
case("sampling.ode_solve-t-start-nan", lambda: sampling.ode_solve(local(), Z8, NAN), V, r"t_start.*nan")
case("sampling.ode_solve-t-start-str", lambda: sampling.ode_solve(local(), Z8, "0.5"),
     T, r"t_start must be a (finite )?number.*'0\.5'")
case("sampling.ode_solve-t-start-None", lambda: sampling.ode_solve(local(), Z8, None),
     T, r"t_start must be a (finite )?number.*None")
case("sampling.ode_solve-steps-zero", lambda: sampling.ode_solve(local(), Z8, 1.0, steps=0),
     V, r"steps must be a positive integer")
case("sampling.ode_solve-steps-float", lambda: sampling.ode_solve(local(), Z8, 1.0, steps=2.5),
     VT, r"steps must be .*integer.*2\.5")
case("sampling.ode_solve-steps-bool", lambda: sampling.ode_solve(local(), Z8, 1.0, steps=True),
     VT, r"steps must be .*integer.*True")
case("sampling.ode_solve-steps-negative", lambda: sampling.ode_solve(local(), Z8, 1.0, steps=-1),
     V, r"steps must be .*integer.*-1")
case("sampling.ode_solve-fault-wrong-shape", lambda: sampling.ode_solve(_Fault("shape"), Z8, 1.0, steps=1), V,
     r"_Fault returned a tensor of shape \(2, 1, 4, 4\); a denoiser must return the shape of its input \(2, 1, 8, 8\)")
case("sampling.ode_solve-fault-nan", lambda: sampling.ode_solve(_Fault("nan"), Z8, 1.0, steps=1), V, r"NaN or inf")
case("sampling.ode_solve-x0-model-at-t0", lambda: sampling.ode_solve(local(prediction="x0"), Z8, 0.0, 0.0, steps=1), V,
     r"NaN or inf|undefined at t = 0")
case("sampling.ode_solve-noise-at-t1", lambda: sampling.ode_solve(local(prediction="noise"), Z8, 1.0, steps=1),
     V, r"data_mean")
case("sampling.ode_solve-data-mean-shape", lambda: sampling.ode_solve(local(prediction="noise"), Z8, 1.0, steps=1,
                                                                      data_mean=torch.zeros(3, 3)), V,
     r"data_mean must .*shape.*\(3, 3\)")
case("sampling.sample-n-zero", lambda: sampling.sample(local(), n=0, image_size=8),
     V, r"n must be a positive integer; got 0")
case("sampling.sample-n-float", lambda: sampling.sample(local(), n=2.5, image_size=8),
     T, r"n must be a positive integer; got 2\.5")
case("sampling.sample-steps-zero", lambda: sampling.sample(local(), n=2, steps=0, image_size=8),
     V, r"steps must be a positive integer")
case("sampling.sample-seed-float", lambda: sampling.sample(local(), n=2, seed=1.5, image_size=8),
     T, r"seed must be an integer.*1\.5")
case("sampling.sample-image-size-zero", lambda: sampling.sample(local(), n=2, image_size=0),
     V, r"image_size must be a positive integer; got 0")
case("sampling.sample-image-size-float", lambda: sampling.sample(local(), n=2, image_size=2.5), T,
     r"image_size must be a positive integer; got 2\.5")
case("sampling.sample-batch-size-zero", lambda: sampling.sample(local(), n=2, image_size=8, batch_size=0), V,
     r"batch_size must be a positive integer; got 0")
case("sampling.sample-batch-size-negative", lambda: sampling.sample(local(), n=2, image_size=8, batch_size=-1), V,
     r"batch_size must be a positive integer; got -1")
case("sampling.sample-solver", lambda: sampling.sample(local(), n=2, image_size=8, solver="rk4"),
     V, r"solver must be one of")
case("sampling.sample-wrong-image-size", lambda: sampling.sample(unet(), n=2, steps=1),
     V, r"built for 8x8 images; got 28x28")
case("sampling.sample-not-model", lambda: sampling.sample("x", n=2), V, r"model must be a denoiser module")
case("sampling.steps_for-t-above-one", lambda: sampling.steps_for(1.5, 32), V, r"t_start must lie in \[0, 1\]")
case("sampling.steps_for-t-nan", lambda: sampling.steps_for(NAN, 32), V, r"t_start must lie in \[0, 1\].*nan")
case("sampling.steps_for-spu-zero", lambda: sampling.steps_for(0.5, 0),
     V, r"steps_per_unit_time must be a positive integer; got 0")
case("sampling.steps_for-spu-negative", lambda: sampling.steps_for(0.5, -5),
     V, r"steps_per_unit_time must be a positive integer; got -5")
case("sampling.steps_for-spu-float", lambda: sampling.steps_for(0.5, 2.5),
     T, r"steps_per_unit_time must be a positive integer; got 2\.5")
case("sampling.steps_for-end-after-start", lambda: sampling.steps_for(0.2, 32, t_end=0.5), V, r"t_end <= t_start")

# ---------------------------------------------------------------------------------------------- evaluate

case("evaluate.recover-3d", lambda: evaluate.recover(local(), X8[:, 0], 0.5), V, r"images must be a .*\(N, 1, H, W\)")
case("evaluate.recover-T-above-one", lambda: evaluate.recover(local(), X8, 1.5),
     V, r"the noise times T must lie in \[0, 1\]")
case("evaluate.recover-T-nan", lambda: evaluate.recover(local(), X8, NAN),
     V, r"the noise times T must lie in \[0, 1\].*nan")
case("evaluate.recover-T-str", lambda: evaluate.recover(local(), X8, "0.5"),
     T, r"the noise times T must be numbers in \[0, 1\]")
case("evaluate.recover-T-bool", lambda: evaluate.recover(local(), X8, True),
     T, r"the noise times T must be numbers in \[0, 1\]")
case("evaluate.recover-pixels-above-one", lambda: evaluate.recover(local(), X8 * 3, 0.5),
     V, r"images must have pixels in \[0, 1\]")
case("evaluate.recover-nan-images", lambda: evaluate.recover(local(), _nan_at(X8), 0.5),
     V, r"images must have pixels in \[0, 1\].*NaN")
case("evaluate.recover-uint8-images", lambda: evaluate.recover(local(), (X8 * 255).to(torch.uint8), 0.5), V,
     r"images must be .*float.*torch\.uint8")
case("evaluate.recover-spu-zero", lambda: evaluate.recover(local(), X8, 0.5, steps_per_unit_time=0), V,
     r"steps_per_unit_time must be a positive integer; got 0")
case("evaluate.recover-batch-size-zero", lambda: evaluate.recover(local(), X8, 0.5, batch_size=0), V,
     r"batch_size must be a positive integer; got 0")
case("evaluate.recover-noise-shape", lambda: evaluate.recover(local(), X8, 0.5, noise=torch.randn(3, 1, 8, 8)), V,
     r"noise must have the shape of images \(2, 1, 8, 8\); got \(3, 1, 8, 8\)")
case("evaluate.recover-seed-float", lambda: evaluate.recover(local(), X8, 0.5, seed=1.5),
     T, r"seed must be an integer.*1\.5")
case("evaluate.recover-solver", lambda: evaluate.recover(local(), X8, 0.5, solver="rk4"), V, r"solver must be one of")
case("evaluate.recover-not-model", lambda: evaluate.recover("x", X8, 0.5), V, r"model must be a denoiser module")
case("evaluate.recovery_mse-empty-T", lambda: evaluate.recovery_mse(local(), X8, []),
     V, r"the noise times T must hold at least 1 time")
case("evaluate.recovery_mse-T-above-one", lambda: evaluate.recovery_mse(local(), X8, [0.5, 2.0]),
     V, r"the noise times T must lie in \[0, 1\]")
case("evaluate.recovery_mse-3d", lambda: evaluate.recovery_mse(local(), X8[:, 0], [0.5]),
     V, r"images must be .*\(N, 1, H, W\)")
case("evaluate.recovery_mse-numpy", lambda: evaluate.recovery_mse(local(), X8.numpy(), [0.5]),
     V, r"images must be .*\(N, 1, H, W\)")
case("evaluate.recovery_grid-not-dict", lambda: evaluate.recovery_grid("x", None, X8, [0.5]), T,
     r"models_by_radius must be a dict \{r: model\}; got str")
case("evaluate.recovery_grid-no-models", lambda: evaluate.recovery_grid({}, None, X8, [0.5]), V,
     r"recovery_grid needs at least one model")
case("evaluate.recovery_grid-T", lambda: evaluate.recovery_grid({1: local()}, None, X8, [-0.5]),
     V, r"the noise times T must lie in \[0, 1\]")
case("evaluate.image_grid-channels", lambda: evaluate.image_grid(torch.zeros(2, 3, 4, 4)),
     V, r"one-channel images \(N, 1, H, W\)")
case("evaluate.image_grid-2d", lambda: evaluate.image_grid(torch.zeros(4, 4)),
     V, r"\(N, 1, H, W\) or \(N, H, W\); got \(4, 4\)")
case("evaluate.image_grid-nrow-zero", lambda: evaluate.image_grid(X8, nrow=0),
     V, r"nrow must be a positive integer; got 0")
case("evaluate.image_grid-nrow-float", lambda: evaluate.image_grid(X8, nrow=2.5),
     T, r"nrow must be a positive integer; got 2\.5")
case("evaluate.image_grid-padding-negative", lambda: evaluate.image_grid(X8, padding=-1),
     V, r"padding must be a non-negative integer; got -1")
case("evaluate.image_grid-empty", lambda: evaluate.image_grid(X8[:0]), V, r"image_grid needs at least one image")
case("evaluate.image_grid-str", lambda: evaluate.image_grid("abc"), VT, r"images must be .*\(N, 1, H, W\).*'abc'")
case("evaluate.frechet-1d", lambda: evaluate.frechet_distance(np.ones(4), np.ones((4, 2))),
     V, r"features must be \(N, d\) with the same d")
case("evaluate.frechet-d-mismatch", lambda: evaluate.frechet_distance(np.ones((4, 3)), np.ones((4, 2))), V,
     r"features must be \(N, d\) with the same d; got \(4, 3\) and \(4, 2\)")
case("evaluate.frechet-one-row", lambda: evaluate.frechet_distance(np.ones((1, 2)), np.ones((4, 2))), V,
     r"need at least two feature vectors per set")
case("evaluate.frechet-nan",
     lambda: evaluate.frechet_distance(np.array([[NAN, 0.0], [1.0, 2.0], [0.5, 0.1]]), np.ones((3, 2))),
     V, r"features must be finite")
case("evaluate.frechet-inf",
     lambda: evaluate.frechet_distance(np.ones((3, 2)), np.array([[INF, 0.0], [1.0, 2.0], [0.5, 0.1]])),
     V, r"features must be finite")
case("evaluate.frechet_stats-shapes",
     lambda: evaluate.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)),
     V, r"shapes do not match")
case("evaluate.frechet_stats-nan",
     lambda: evaluate.frechet_distance_from_stats(np.zeros(2), np.eye(2) * NAN, np.zeros(2), np.eye(2)),
     V, r"cov1 must be finite")
case("evaluate.frechet_stats-not-symmetric",
     lambda: evaluate.frechet_distance_from_stats(np.zeros(2), ASYMMETRIC, np.zeros(2), np.eye(2)),
     V, r"cov1 must be a symmetric")
case("evaluate.frechet_stats-not-psd",
     lambda: evaluate.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(2), NOT_PSD),
     V, r"cov2 must be .*positive semi-definite.*-1")
case("evaluate.nearest-size-mismatch", lambda: evaluate.nearest_train_distance(X8, X28),
     V, r"images and train must hold images of one size")
case("evaluate.nearest-numpy", lambda: evaluate.nearest_train_distance(X8.numpy(), X8),
     T, r"images must be a tensor; got ndarray")
case("evaluate.nearest-batch-size-zero", lambda: evaluate.nearest_train_distance(X8, X8, batch_size=0), V,
     r"batch_size must be a positive integer; got 0")
case("evaluate.nearest-empty-train", lambda: evaluate.nearest_train_distance(X8, X8[:0]),
     V, r"train must hold at least one image")
case("evaluate.train_classifier-label-count",
     lambda: evaluate.train_classifier(X28, Y4[:3], steps=1, batch_size=2, width=2, device="cpu"),
     V, r"4 images but 3 labels")
case("evaluate.train_classifier-steps-zero",
     lambda: evaluate.train_classifier(X28, Y4, steps=0, batch_size=2, width=2, device="cpu"),
     V, r"steps must be a positive integer; got 0")
case("evaluate.train_classifier-steps-float",
     lambda: evaluate.train_classifier(X28, Y4, steps=1.5, batch_size=2, width=2, device="cpu"),
     T, r"steps must be a positive integer; got 1\.5")
case("evaluate.train_classifier-batch-zero",
     lambda: evaluate.train_classifier(X28, Y4, steps=1, batch_size=0, width=2, device="cpu"),
     V, r"batch_size must be a positive integer; got 0")
case("evaluate.train_classifier-width-zero",
     lambda: evaluate.train_classifier(X28, Y4, steps=1, batch_size=2, width=0, device="cpu"),
     V, r"width must be a positive integer; got 0")
case("evaluate.train_classifier-small-images",
     lambda: evaluate.train_classifier(X8, Y4[:2], steps=1, batch_size=2, width=2, device="cpu"),
     V, r"\(N, 1, 28, 28\)")
case("evaluate.train_classifier-pixels",
     lambda: evaluate.train_classifier(X28 * 255, Y4, steps=1, batch_size=2, width=2, device="cpu"),
     V, r"images must have pixels in \[0, 1\]")
case("evaluate.train_classifier-float-labels",
     lambda: evaluate.train_classifier(X28, Y4.float(), steps=1, batch_size=2, width=2, device="cpu"),
     T, r"labels must be integer class indices")
case("evaluate.train_classifier-label-out-of-range",
     lambda: evaluate.train_classifier(X28, Y4 + 8, steps=1, batch_size=2, width=2, device="cpu"),
     V, r"labels must be .*in \[0, 9\].*11")
case("evaluate.train_classifier-lr-negative",
     lambda: evaluate.train_classifier(X28, Y4, steps=1, batch_size=2, width=2, lr=-1.0, device="cpu"),
     V, r"(lr|learning rate).*-1")
case("evaluate.train_classifier-numpy",
     lambda: evaluate.train_classifier(X28.numpy(), Y4, steps=1, batch_size=2, width=2, device="cpu"),
     V, r"images must be a float tensor")

# ---------------------------------------------------------------------------------------------- train

case("train.fit-no-budget", lambda: train.fit(_fresh_local(), X8, progress=False),
     V, r"give a budget: steps=\.\.\. and/or seconds=\.\.\.")
case("train.fit-steps-negative", lambda: train.fit(_fresh_local(), X8, steps=-1, progress=False),
     V, r"steps must be a non-negative integer; got -1")
case("train.fit-steps-float", lambda: train.fit(_fresh_local(), X8, steps=1.5, progress=False),
     T, r"steps must be a non-negative integer; got 1\.5")
case("train.fit-steps-bool", lambda: train.fit(_fresh_local(), X8, steps=True, progress=False),
     T, r"steps must be a non-negative integer; got True")
case("train.fit-seconds-zero", lambda: train.fit(_fresh_local(), X8, seconds=0, progress=False),
     V, r"seconds must be .*(positive|> 0).*got 0")
case("train.fit-seconds-nan", lambda: train.fit(_fresh_local(), X8, seconds=NAN, progress=False),
     V, r"seconds must be .*got nan")
case("train.fit-seconds-str", lambda: train.fit(_fresh_local(), X8, seconds="5", progress=False),
     T, r"seconds must be a finite number > 0; got '5'")
case("train.fit-batch-size-zero", lambda: train.fit(_fresh_local(), X8, steps=1, batch_size=0, progress=False), V,
     r"batch_size must be a positive integer; got 0")
case("train.fit-t-sampler", lambda: train.fit(_fresh_local(), X8, steps=1, t_sampler="normal", progress=False), V,
     r"t_sampler must be one of logit-normal, uniform; got 'normal'")
case("train.fit-ema-one", lambda: train.fit(_fresh_local(), X8, steps=1, ema=1.0, progress=False),
     V, r"ema .*\(0, 1\).*got 1\.0")
case("train.fit-ema-nan", lambda: train.fit(_fresh_local(), X8, steps=1, ema=NAN, progress=False),
     V, r"ema .*\(0, 1\).*got nan")
case("train.fit-ema-str", lambda: train.fit(_fresh_local(), X8, steps=1, ema="0.9", progress=False),
     T, r"ema .*\(0, 1\).*got '0\.9'")
case("train.fit-3d-images", lambda: train.fit(_fresh_local(), X8[:, 0], steps=1, progress=False),
     V, r"images must be a float tensor (of shape )?\(N, 1, H, W\)")
case("train.fit-pixels-above-one", lambda: train.fit(_fresh_local(), X8 * 2, steps=1, progress=False),
     V, r"images must have pixels in \[0, 1\]")
case("train.fit-nan-images", lambda: train.fit(_fresh_local(), _nan_at(X8), steps=1, progress=False),
     V, r"images must have pixels in \[0, 1\].*nan|NaN")
case("train.fit-empty-images", lambda: train.fit(_fresh_local(), X8[:0], steps=1, progress=False),
     V, r"images is empty")
case("train.fit-held-out-pixels", lambda: train.fit(_fresh_local(), X8, steps=1, held_out=X8 - 1, progress=False), V,
     r"held_out must have pixels in \[0, 1\]")
case("train.fit-resume-and-overwrite",
     lambda: train.fit(_fresh_local(), X8, steps=1, resume=True, overwrite=True, progress=False),
     V, r"pass one of them")
case("train.fit-empty-model-list", lambda: train.fit([], X8, steps=1, progress=False),
     V, r"fit needs a model or a non-empty list of models")
case("train.fit-str-model", lambda: train.fit("x", X8, steps=1, progress=False), V, r"fit needs a model .*got str")
case("train.fit-no-prediction", lambda: train.fit(_NoPrediction(), X8, steps=1, progress=False), V,
     r"_NoPrediction has no `prediction` attribute")
case("train.fit-score-prediction", lambda: train.fit(_Fault("shape", prediction="score"), X8, steps=1, progress=False),
     V, r"prediction must be one of velocity, noise, x0; got 'score'")
case("train.fit-lr-negative", lambda: train.fit(_fresh_local(), X8, lr=-1.0, **FAST_FIT),
     V, r"lr must be a finite number > 0; got -1")
case("train.fit-lr-str", lambda: train.fit(_fresh_local(), X8, lr="0.1", **FAST_FIT),
     T, r"lr must be a finite number > 0; got '0\.1'")
case("train.fit-weight-decay-negative", lambda: train.fit(_fresh_local(), X8, weight_decay=-1.0, **FAST_FIT), V,
     r"weight_decay must be a finite number >= 0; got -1")
case("train.fit-warmup-negative", lambda: train.fit(_fresh_local(), X8, warmup=-5, **FAST_FIT),
     V, r"warmup must be a non-negative integer; got -5")
case("train.fit-warmup-float", lambda: train.fit(_fresh_local(), X8, warmup=2.5, **FAST_FIT),
     T, r"warmup must be a non-negative integer; got 2\.5")
case("train.fit-grad-clip-negative", lambda: train.fit(_fresh_local(), X8, grad_clip=-1.0, **FAST_FIT), V,
     r"grad_clip.*must be a finite number > 0.*got -1")
case("train.fit-grad-clip-zero", lambda: train.fit(_fresh_local(), X8, grad_clip=0.0, **FAST_FIT),
     V, r"grad_clip.*must be .*> 0.*got 0")
case("train.fit-checkpoint-every-zero", lambda: train.fit(_fresh_local(), X8, checkpoint_every=0, **FAST_FIT), V,
     r"checkpoint_every \(steps between saves, or None\) must be a positive integer; got 0")
case("train.fit-checkpoint-seconds-negative", lambda: train.fit(_fresh_local(), X8, checkpoint_seconds=-1, **FAST_FIT),
     V, r"checkpoint_seconds.*must be .*got -1")
case("train.fit-seed-float", lambda: train.fit(_fresh_local(), X8, seed=1.5, **FAST_FIT),
     T, r"seed must be an integer.*1\.5")
case("train.fit-existing-checkpoint",
     lambda: train.fit(_fresh_local(), X8, checkpoint=_ckpt("existing.pt"), **FAST_FIT),
     FileExistsError, r"already exists .*pass resume=True to continue that run, or overwrite=True")
case("train.fit-resume-other-settings",
     lambda: train.fit(_fresh_local(), X8, checkpoint=_fitted_checkpoint(), resume=True, lr=0.5, channels_last=False,
                       **FAST_FIT),
     V, r"cannot resume .*trained with other settings.*lr: \(0\.001, 0\.5\)")
case("train.fit-wrong-image-size",
     lambda: train.fit(models.GlobalUNet(channels=(4, 4, 4), emb_dim=8, image_size=8), X28, channels_last=False,
                       **FAST_FIT),
     V, r"built for 8x8 images; got 28x28")
case("train.fit-fault-wrong-shape", lambda: train.fit(_Fault("shape"), X8, channels_last=False, **FAST_FIT), V,
     r"_Fault returned a tensor of shape \(2, 1, 4, 4\); a denoiser must return the shape of its input \(2, 1, 8, 8\)")
case("train.held_out_loss-pixels", lambda: train.held_out_loss(local(), X8 + 1),
     V, r"held-out images must have pixels in \[0, 1\]")
case("train.held_out_loss-batch-zero", lambda: train.held_out_loss(local(), X8, batch_size=0),
     V, r"batch_size must be a positive integer; got 0")
case("train.held_out_loss-t-sampler", lambda: train.held_out_loss(local(), X8, t_sampler="beta"),
     V, r"t_sampler must be one of")
case("train.held_out_loss-no-prediction", lambda: train.held_out_loss(_NoPrediction(), X8),
     V, r"has no `prediction` attribute")
case("train.held_out_loss-fault-wrong-shape", lambda: train.held_out_loss(_Fault("shape"), X8), V,
     r"_Fault returned a tensor of shape")
case("train.sample_t-negative", lambda: train.sample_t(-1, "uniform"), V, r"n must be a non-negative integer; got -1")
case("train.sample_t-float", lambda: train.sample_t(2.5, "uniform"), T, r"n must be a non-negative integer; got 2\.5")
case("train.sample_t-unknown", lambda: train.sample_t(4, "normal"),
     V, r"t_sampler must be one of logit-normal, uniform; got 'normal'")
case("train.save-step-negative", lambda: train.save_checkpoint(_tmp() / "s1.pt", local(), step=-1),
     V, r"step must be a non-negative integer; got -1")
case("train.save-step-float", lambda: train.save_checkpoint(_tmp() / "s2.pt", local(), step=1.5),
     T, r"step must be a non-negative integer; got 1\.5")
case("train.save-config-str", lambda: train.save_checkpoint(_tmp() / "s3.pt", local(), config="abc"),
     T, r"config must be a dict.*got str")
case("train.save-not-model", lambda: train.save_checkpoint(_tmp() / "s4.pt", "x"), V,
     r"save_checkpoint needs a model or a non-empty list of models.*got str")
case("train.load-missing", lambda: train.load_checkpoint(_tmp() / "missing.pt", local()),
     FileNotFoundError, r"no checkpoint at .*missing\.pt")
case("train.load-truncated", lambda: train.load_checkpoint(_truncated(), local()),
     V, r"truncated\.pt is not a readable checkpoint")
case("train.load-garbage", lambda: train.load_checkpoint(_file("garbage.pt", b"not a checkpoint at all"), local()), V,
     r"garbage\.pt is not a readable checkpoint")
case("train.load-empty-file", lambda: train.load_checkpoint(_file("empty.pt", b""), local()),
     V, r"empty\.pt is not a readable checkpoint")
case("train.load-directory", lambda: train.load_checkpoint(_tmp(), local()), V, r"is not a readable checkpoint")
case("train.load-other-class", lambda: train.load_checkpoint(_ckpt("unet.pt", unet()), local()), V,
     r"holds a GlobalUNet \(model 0\), not a LocalDenoiser")
case("train.load-other-config", lambda: train.load_checkpoint(_ckpt("r2.pt", local(2)), local()),
     V, r"model 0 was saved with another config")
case("train.load-model-count", lambda: train.load_checkpoint(_ckpt("one.pt"), [local(), local(2)]),
     V, r"holds 1 model\(s\), but 2 were given")
case("train.load-no-optimizer",
     lambda: train.load_checkpoint(_ckpt("noopt.pt"), local(), optimizer=torch.optim.SGD(local().parameters(), 0.1)),
     V, r"has no optimizer state to resume from")
case("train.load-no-ema", lambda: train.load_checkpoint(_ckpt("noema.pt"), local(), ema=local()),
     V, r"has no EMA weights")
case("train.load-plain-dict", lambda: train.load_checkpoint(_saved("plain.pt", {"a": torch.zeros(2)}), local()), V,
     r"plain\.pt was not written by localdiff_lib\.train\.save_checkpoint")
case("train.load-missing-fields",
     lambda: train.load_checkpoint(_saved("partial.pt", {"format": train.CHECKPOINT_FORMAT}), local()),
     V, r"partial\.pt .*(incomplete|missing).*models")
case("train.load-pickled-module", lambda: train.load_checkpoint(_saved("module.pt", nn.Linear(2, 2)), local()), V,
     r"module\.pt is not a readable checkpoint")
case("train.load-not-model", lambda: train.load_checkpoint(_ckpt("for-str.pt"), "x"),
     V, r"load_checkpoint needs a model .*got str")

# ---------------------------------------------------------------------------------------------- estimators, density

case("estimators.bound_values-unknown", lambda: estimators.bound_values(S244, "bogus"), V,
     r"unknown bound 'bogus'; use one of mine, dv, nwj, infonce, smile")
case("estimators.bound_values-1d", lambda: estimators.bound_values(torch.zeros(3), "smile"),
     V, r"scores must have shape \(K, N, N\) with N >= 2")
case("estimators.bound_values-not-square", lambda: estimators.bound_values(torch.zeros(1, 3, 4), "smile"), V,
     r"scores must have shape \(K, N, N\).*\(1, 3, 4\)")
case("estimators.bound_values-one-sample", lambda: estimators.bound_values(torch.zeros(1, 1, 1), "smile"),
     V, r"with N >= 2")
case("estimators.bound_values-numpy", lambda: estimators.bound_values(S244.numpy(), "smile"),
     T, r"scores must be a tensor.*got ndarray")
case("estimators.bound_values-clip-negative", lambda: estimators.bound_values(S244, "smile", clip=-1.0), V,
     r"clip must be a finite number > 0; got -1")
case("estimators.bound_values-clip-nan", lambda: estimators.bound_values(S244, "smile", clip=NAN),
     V, r"clip must be a finite number > 0; got nan")
case("estimators.bound_loss-unknown", lambda: estimators.bound_loss(S244, "bogus"), V, r"unknown bound 'bogus'")
case("estimators.bound_loss-ema-rate-zero", lambda: estimators.bound_loss(S244, "mine", torch.zeros(2), ema_rate=0.0),
     V, r"ema_rate must be a finite number in \(0, 1\); got 0")
case("estimators.bound_loss-ema-rate-above-one",
     lambda: estimators.bound_loss(S244, "mine", torch.zeros(2), ema_rate=1.5),
     V, r"ema_rate must be a finite number in \(0, 1\); got 1\.5")
case("estimators.bank-masks-2d", lambda: estimators.CriticBank(torch.zeros(1, 4), [0]),
     V, r"masks must have shape \(G, c, D\)")
case("estimators.bank-a-empty", lambda: estimators.CriticBank(_masks(), []),
     V, r"a_idx must be non-empty indices into the D=4 coordinates")
case("estimators.bank-a-out-of-range", lambda: estimators.CriticBank(_masks(), [9]),
     V, r"a_idx .*(index 9 outside \[0, 3\]|D=4)")
case("estimators.bank-a-float", lambda: estimators.CriticBank(_masks(), [0.5]), T, r"a_idx .*integer.*0\.5")
case("estimators.bank-mask-includes-A", lambda: estimators.CriticBank(_masks(on=(0, 1)), [0]),
     V, r"the context must exclude A")
case("estimators.bank-hidden-zero", lambda: estimators.CriticBank(_masks(), [0], hidden=0),
     V, r"hidden must be a positive integer; got 0")
case("estimators.bank-hidden-float", lambda: estimators.CriticBank(_masks(), [0], hidden=2.5),
     T, r"hidden must be a positive integer; got 2\.5")
case("estimators.bank-features-zero", lambda: estimators.CriticBank(_masks(), [0], features=0),
     V, r"features must be a positive integer; got 0")
case("estimators.bank-context-shape",
     lambda: estimators.CriticBank(_masks(), [0], hidden=4, features=4).context(torch.zeros(1, 3, 5)),
     V, r"expected a batch of shape \(1, N, 4\), got \(1, 3, 5\)")
case("estimators.bank-context-numpy",
     lambda: estimators.CriticBank(_masks(), [0], hidden=4, features=4).context(np.zeros((1, 3, 4))),
     T, r"x must be a tensor .*got ndarray")
case("estimators.train-steps-zero",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], **{**FAST, "steps": 0}),
     V, r"steps must be a positive integer; got 0|need steps >= 1")
case("estimators.train-steps-float",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], **{**FAST, "steps": 1.5}),
     T, r"steps must be a positive integer; got 1\.5")
case("estimators.train-steps-bool",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], **{**FAST, "steps": True}),
     T, r"steps must be a positive integer; got True")
case("estimators.train-batch-one",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], **{**FAST, "batch": 1}),
     V, r"batch .*(2|>= 2).*got 1|batch >= 2")
case("estimators.train-eval-batches-one",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], **{**FAST, "eval_batches": 1}),
     V, r"eval_batches .*got 1|eval_batches >= 2")
case("estimators.train-unknown-bound",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], bound="x", **FAST),
     V, r"unknown bound 'x'")
case("estimators.train-num-threads-zero",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], num_threads=0, **FAST),
     V, r"num_threads must be a positive integer; got 0")
case("estimators.train-lr-negative",
     lambda: estimators.train_critic_bank(_bank_sampler(), _masks(), [0], lr=-1.0, **FAST),
     V, r"(lr|learning rate).*-1")
case("estimators.train-fault-sampler-numpy",
     lambda: estimators.train_critic_bank(_bank_sampler(numpy=True), _masks(), [0], **FAST),
     T, r"x must be a tensor .*got ndarray")
case("estimators.train-fault-sampler-shape",
     lambda: estimators.train_critic_bank(_bank_sampler((2, None, 4)), _masks(), [0], **FAST),
     V, r"expected a batch of shape \(1, N, 4\), got \(2, 2, 4\)")
case("estimators.estimate_mi-overlap", lambda: estimators.estimate_mi(_vec_sample, [0], [0, 1], **FAST),
     V, r"regions A and C overlap at index 0")
case("estimators.estimate_mi-one-seed", lambda: estimators.estimate_mi(_vec_sample, [0], [1], seeds=1, **FAST),
     V, r"seeds")
case("estimators.estimate_mi-seeds-float", lambda: estimators.estimate_mi(_vec_sample, [0], [1], seeds=2.5, **FAST),
     T, r"seeds.*integer.*2\.5")
case("estimators.estimate_mi-A-out-of-range", lambda: estimators.estimate_mi(_vec_sample, [9], [1], **FAST),
     V, r"region A has index 9 outside \[0, 3\]")
case("estimators.estimate_mi-A-float", lambda: estimators.estimate_mi(_vec_sample, [0.5], [1], **FAST),
     T, r"region A must .*integer.*0\.5")
case("estimators.estimate_mi-level", lambda: estimators.estimate_mi(_vec_sample, [0], [1], level=1.5, **FAST), V,
     r"level must be a finite number in \(0, 1\); got 1\.5")
case("estimators.estimate_mi-fault-sample-1d",
     lambda: estimators.estimate_mi(lambda n, rng: rng.standard_normal(n), [0], [1], **FAST),
     V, r"sample\(n, rng\) must return an array of shape \(n, D\)")
case("estimators.estimate_mi-unknown-bound", lambda: estimators.estimate_mi(_vec_sample, [0], [1], bound="x", **FAST),
     V, r"unknown bound 'x'")
case("estimators.estimate_cmi-overlap", lambda: estimators.estimate_cmi(_vec_sample, [0], [1, 2], [2, 3], **FAST),
     V, r"regions B and C overlap at index 2")
case("estimators.estimate_cmi-zero-seeds", lambda: estimators.estimate_cmi(_vec_sample, [0], [1], [2], seeds=0, **FAST),
     V, r"seeds")
case("estimators.estimate_cmi-level-zero",
     lambda: estimators.estimate_cmi(_vec_sample, [0], [1], [2], level=0.0, **FAST),
     V, r"level must be a finite number in \(0, 1\); got 0")
case("estimators.vector_sampler-zero-groups", lambda: estimators.vector_sampler(_vec_sample, 0),
     V, r"n_groups must be a positive integer; got 0")
case("estimators.context_mask-out-of-range", lambda: estimators.context_mask(4, [5]),
     V, r"idx has index 5 outside \[0, 3\]")
case("estimators.context_mask-float", lambda: estimators.context_mask(4, [0.5]), T, r"idx must .*integer.*0\.5")
case("estimators.context_mask-D-negative", lambda: estimators.context_mask(-1, []),
     V, r"D must be a positive integer; got -1")
case("estimators.context_mask-int-idx", lambda: estimators.context_mask(4, 2),
     T, r"idx must be a list of integer indices.*got 2")

case("density.bank-vector-A", lambda: density.DensityBank(_masks(), [0, 1]),
     V, r"the density estimator models a scalar A; got \|A\| = 2")
case("density.bank-components-zero", lambda: density.DensityBank(_masks(), [0], components=0),
     V, r"components must be .*got 0")
case("density.bank-components-float", lambda: density.DensityBank(_masks(), [0], components=2.5), T,
     r"components must be a positive integer; got 2\.5")
case("density.bank-bin-width-length", lambda: density.DensityBank(_masks(), [0], bin_width=[0.1, 0.1]), V,
     r"bin_width must hold 1 non-negative .*numbers")
case("density.bank-bin-width-negative", lambda: density.DensityBank(_masks(), [0], bin_width=[-0.1]),
     V, r"bin_width must hold 1 non-negative")
case("density.bank-bin-width-nan", lambda: density.DensityBank(_masks(), [0], bin_width=[NAN]),
     V, r"bin_width must hold 1 non-negative.*nan")
case("density.bank-bin-width-str", lambda: density.DensityBank(_masks(), [0], bin_width="a"),
     VT, r"bin_width must hold 1 non-negative")
case("density.bank-hidden-zero", lambda: density.DensityBank(_masks(), [0], hidden=0),
     V, r"hidden must be a positive integer; got 0")
case("density.mixture_log_prob-features",
     lambda: density.mixture_log_prob(torch.zeros(1, 2, 11), torch.zeros(1, 2, 1), torch.zeros(4),
                                      torch.zeros(1, 1, 1)),
     V, r"out must have 3 \* 4 = 12 features in its last axis; got 11")
case("density.train-steps-zero",
     lambda: density.train_density_bank(_bank_sampler(), _masks(), [0], **{**FAST_DENSITY, "steps": 0}),
     V, r"steps must be a positive integer; got 0|need steps >= 1")
case("density.train-batch-one",
     lambda: density.train_density_bank(_bank_sampler(), _masks(), [0], **{**FAST_DENSITY, "batch": 1}),
     V, r"batch .*got 1|batch >= 2")
case("density.train-steps-float",
     lambda: density.train_density_bank(_bank_sampler(), _masks(), [0], **{**FAST_DENSITY, "steps": 2.5}),
     T, r"steps must be a positive integer; got 2\.5")
case("density.train-num-threads-zero",
     lambda: density.train_density_bank(_bank_sampler(), _masks(), [0], num_threads=0, **FAST_DENSITY),
     V, r"num_threads must be a positive integer; got 0")
case("density.train-off-grid",
     lambda: density.train_density_bank(_bank_sampler(), _masks(), [0], bin_width=[1 / 255], **FAST_DENSITY),
     V, r"not on the grid")
case("density.estimate_cmi-overlap", lambda: density.estimate_cmi(_vec_sample, [0], [1], [1], **FAST_DENSITY),
     V, r"regions B and C overlap")
case("density.estimate_cmi-one-seed", lambda: density.estimate_cmi(_vec_sample, [0], [1], [2], seeds=1, **FAST_DENSITY),
     V, r"seeds")
case("density.estimate_cmi-level", lambda: density.estimate_cmi(_vec_sample, [0], [1], [2], level=2.0, **FAST_DENSITY),
     V, r"level must be a finite number in \(0, 1\); got 2")
case("density.estimate_cmi-vector-A", lambda: density.estimate_cmi(_vec_sample, [0, 1], [2], [3], **FAST_DENSITY),
     V, r"scalar A")
case("density.estimate_mi-overlap", lambda: density.estimate_mi(_vec_sample, [0], [0], **FAST_DENSITY),
     V, r"regions A and C overlap")

# ---------------------------------------------------------------------------------------------- lab

case("lab.init-empty-models", lambda: _lab(local_models={}), V, r"local_models must be a non-empty dict")
case("lab.init-models-list", lambda: _lab(local_models=[local()]), V, r"local_models must be a non-empty dict")
case("lab.init-key-float", lambda: _lab(local_models={1.5: local()}), T,
     r"a key of local_models \(a receptive-field radius\) must be a positive integer; got 1\.5")
case("lab.init-key-mismatch", lambda: _lab(local_models={2: local()}), V, r"local_models\[2\] has radius 1")
case("lab.init-model-str", lambda: _lab(local_models={1: "x"}), V, r"local_models\[1\] must be a denoiser module")
case("lab.init-global-str", lambda: _lab(global_model="x"), V, r"global_model must be a denoiser module")
case("lab.init-x0-3d", lambda: _lab(x0=X8[:, 0]),
     V, r"x0 must be (float images|a float tensor) of shape \(N, 1, H, H\)")
case("lab.init-x0-not-square", lambda: _lab(x0=X8[..., :6]), V, r"shape \(N, 1, H, H\)")
case("lab.init-x0-pixels", lambda: _lab(x0=2 * X8 - 1), V, r"x0 must have pixels in \[0, 1\]")
case("lab.init-x0-nan", lambda: _lab(x0=_nan_at(X8)), V, r"x0 must have pixels in \[0, 1\].*NaN")
case("lab.init-cmi-map-dict", lambda: _lab(cmi_map={"t": [0, 1]}), V, r"cmi_map must have arrays t, r and cmi")
case("lab.init-cmi-map-shape", lambda: _lab(cmi_map=_cmi_map(cmi=np.zeros((2, 1)))), V,
     r"cmi_map\.cmi must have shape \(len\(t\), len\(r\)\) = \(3, 1\)")
case("lab.init-cmi-map-radius", lambda: _lab(cmi_map=_cmi_map(r=(2,))), V, r"the CMI map has no buffer radius \[1\]")
case("lab.init-cmi-map-times", lambda: _lab(cmi_map=_cmi_map(t=(0.5, 0.2, 1.0))), V,
     r"the CMI map's times must hold at least 2 strictly increasing times")
case("lab.init-cmi-map-nan-time", lambda: _lab(cmi_map=_cmi_map(t=(0.0, NAN, 1.0))),
     V, r"the CMI map's times must lie in \[0, 1\]")
case("lab.init-curve-T-one", lambda: _lab(curve_T=(0.5,)), V, r"curve_T must hold at least 2 strictly increasing times")
case("lab.init-curve-T-range", lambda: _lab(curve_T=(0.2, 1.5)), V, r"curve_T must lie in \[0, 1\]")
case("lab.init-spu-zero", lambda: _lab(steps_per_unit_time=0),
     V, r"steps_per_unit_time must be a positive integer; got 0")
case("lab.init-n-samples-float", lambda: _lab(n_samples=2.5), T, r"n_samples must be a positive integer; got 2\.5")
case("lab.init-sample-steps-bool", lambda: _lab(sample_steps=True),
     T, r"sample_steps must be a positive integer; got True")
case("lab.init-seed-float", lambda: _lab(seed=1.5), T, r"seed must be an integer.*1\.5")
case("lab.init-t", lambda: _lab(t=1.5), V, r"t must lie in \[0, 1\]")
case("lab.init-r", lambda: _lab(r=4), V, r"no local model of receptive-field radius r = 4; the lab has r in \[1\]")
case("lab.init-window", lambda: _lab(window=(0.5, 0.2)), V, r"0 <= t_lo <= t_hi <= 1; got \(0\.5, 0\.2\)")
case("lab.init-index", lambda: _lab(index=5),
     V, r"index \(the lab has 2 images\) must be an integer in \[0, 1\]; got 5")
case("lab.set-t-bool", lambda: the_lab().set(t=True), T, r"t must be a number in \[0, 1\].*True")
case("lab.set-t-nan", lambda: the_lab().set(t=NAN), V, r"t must lie in \[0, 1\].*nan")
case("lab.set-r-bool", lambda: the_lab().set(r=True), V, r"no local model of receptive-field radius r = True")
case("lab.set-window-str", lambda: the_lab().set(window="ab"), T, r"window must be a pair")
case("lab.set-window-str-numbers", lambda: the_lab().set(window=("0.1", "0.2")), T, r"window must be a pair of numbers")
case("lab.set-index-negative", lambda: the_lab().set(index=-1),
     V, r"index \(the lab has 2 images\) must be an integer in \[0, 1\]; got -1")
case("lab.set-index-float", lambda: the_lab().set(index=1.0), T, r"index .*got 1\.0")
case("lab.set-unknown", lambda: the_lab().set(foo=1), V, r"unknown lab setting\(s\) \['foo'\]")
case("lab.update-t-above-one", lambda: the_lab().update(t=1.5), V, r"t must lie in \[0, 1\]")
case("lab.recovery_steps-t", lambda: the_lab().recovery_steps(2.0), V, r"t must lie in \[0, 1\]")
case("lab.schedule-r", lambda: the_lab().schedule(r=9), V, r"no local model of receptive-field radius r = 9")

# ---------------------------------------------------------------------------------------------- data (no I/O)

case("data.load-unknown-name", lambda: data.load_dataset("cifar"),
     V, r"unknown data set 'cifar'; use one of mnist, fashion-mnist")
case("data.load-unknown-split", lambda: data.load_dataset("mnist", "val"),
     V, r"unknown split 'val'; use 'train' or 'test'")
case("data.load-name-None", lambda: data.load_dataset(None), V, r"unknown data set None")
case("data.load-name-int", lambda: data.load_dataset(5), V, r"unknown data set 5")
case("data.load-split-None", lambda: data.load_dataset("mnist", None), V, r"unknown split None")
case("data.load-split-case", lambda: data.load_dataset("mnist", "Train"), V, r"unknown split 'Train'")
case("data.load_uint8-unknown", lambda: data.load_uint8("x"), V, r"unknown data set 'x'")
case("data.load_optional-unknown", lambda: data.load_optional("cifar"), V, r"unknown data set 'cifar'")
case("data.load-hidden", lambda: _with_env({"LOCALDIFF_HIDE_DATASETS": "mnist"}, data.load_dataset, "mnist"),
     data.DataUnavailableError, r"hidden by LOCALDIFF_HIDE_DATASETS")
case("data.load-hide-unknown", lambda: _with_env({"LOCALDIFF_HIDE_DATASETS": "cifar"}, data.load_dataset, "mnist"), V,
     r"LOCALDIFF_HIDE_DATASETS names unknown data sets \['cifar'\]")
case("data.subset-zero", lambda: data.subset(X28, Y4, n=0), V, r"n must be an integer between 1 and 4")
case("data.subset-bool", lambda: data.subset(X28, Y4, n=True), T, r"n must be an integer.*True")
case("data.subset-float", lambda: data.subset(X28, Y4, n=2.5), VT, r"n must be an integer.*2\.5")
case("data.subset-too-many", lambda: data.subset(X28, Y4, n=5),
     V, r"n must be an integer between 1 and 4 \(the data set size\); got 5")
case("data.subset-balanced-no-labels", lambda: data.subset(X28, None, n=2, balanced=True),
     V, r"balanced=True needs the labels")
case("data.subset-seed-float", lambda: data.subset(X28, Y4, n=2, seed=0.5), T, r"seed must be an integer.*0\.5")
case("data.verify-wrong-shape",
     lambda: data.verify("mnist", "test", np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8)),
     V, r"expected uint8 images of shape \(10000, 28, 28\), found uint8 \(3, 28, 28\)")

# ---------------------------------------------------------------------------------------------- critical_times

case("critical_times.speciation-zero", lambda: critical_times.speciation_time(0.0),
     V, r"eigenvalue must be positive and finite; got 0")
case("critical_times.speciation-negative", lambda: critical_times.speciation_time(-1.0),
     V, r"eigenvalue must be positive and finite")
case("critical_times.speciation-nan", lambda: critical_times.speciation_time(NAN),
     V, r"eigenvalue must be positive and finite; got nan")
case("critical_times.speciation-inf", lambda: critical_times.speciation_time(INF),
     V, r"eigenvalue must be positive and finite; got inf")
case("critical_times.speciation-empty", lambda: critical_times.speciation_time([]),
     V, r"eigenvalue must be positive and finite; got \[\]")
case("critical_times.speciation-str", lambda: critical_times.speciation_time("a"), VT, r"eigenvalue must be .*got 'a'")
case("critical_times.covariance_spectrum-one-image", lambda: critical_times.covariance_spectrum(X8[:1]),
     V, r"need at least 2 images")
case("critical_times.covariance_spectrum-nan", lambda: critical_times.covariance_spectrum(_nan_at(X8)),
     V, r"images contain NaN or inf")
case("critical_times.class_mean_spectrum-count", lambda: critical_times.class_mean_spectrum(X28, Y4[:3]),
     V, r"4 images but 3 labels")
case("critical_times.class_mean_spectrum-one-class", lambda: critical_times.class_mean_spectrum(X28, torch.zeros(4)), V,
     r"the between-class covariance needs at least two classes")
case("critical_times.posterior-3d", lambda: critical_times.posterior_curves(X8[:, 0], [0.5]),
     V, r"images must be \(N, 1, H, W\)")
case("critical_times.posterior-t-above-one", lambda: critical_times.posterior_curves(X8, [1.5]),
     V, r"t_values .*\[0, 1\]")
case("critical_times.posterior-t-empty", lambda: critical_times.posterior_curves(X8, []),
     V, r"t_values .*(non-empty|at least 1 time)")
case("critical_times.posterior-t-str", lambda: critical_times.posterior_curves(X8, ["a"]),
     VT, r"t_values must be .*numbers.*'a'")
case("critical_times.posterior-n-probe-zero", lambda: critical_times.posterior_curves(X8, [0.5], n_probe=0), V,
     r"n_probe must be a positive integer; got 0")
case("critical_times.posterior-batch-zero", lambda: critical_times.posterior_curves(X8, [0.5], batch_size=0), V,
     r"batch_size must be a positive integer; got 0")
case("critical_times.posterior-labels", lambda: critical_times.posterior_curves(X8, [0.5], labels=[0, 1, 2]),
     V, r"2 images but 3 labels")
case("critical_times.posterior-seed-float", lambda: critical_times.posterior_curves(X8, [0.5], seed=0.5),
     T, r"seed must be an integer.*0\.5")
case("critical_times.crossing-length", lambda: critical_times.crossing_time([0.1, 0.2], [1.0], 0.5), V,
     r"t_values and values must be 1-D of the same length; got \(2,\) and \(1,\)")
case("critical_times.crossing-not-increasing", lambda: critical_times.crossing_time([0.2, 0.1], [1.0, 0.0], 0.5), V,
     r"t_values must be strictly increasing")
case("critical_times.crossing-empty", lambda: critical_times.crossing_time([], [], 0.5),
     V, r"t_values and values must be 1-D of the same length")
case("critical_times.crossing-level-nan", lambda: critical_times.crossing_time([0.1, 0.2], [1.0, 0.0], NAN), V,
     r"level must be a finite number; got nan")
case("critical_times.crossing-values-nan", lambda: critical_times.crossing_time([0.1, 0.2, 0.3], [1.0, NAN, 0.0], 0.5),
     V, r"values must be finite numbers.*nan")
case("critical_times.crossing-t-nan", lambda: critical_times.crossing_time([0.1, NAN], [1.0, 0.0], 0.5), V,
     r"t_values must be finite numbers.*nan")


# ---------------------------------------------------------------------------------------------- the tests


def test_the_table_is_large_and_its_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) >= 300
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_clear_error(c, one_thread):
    with pytest.raises(c.exc, match=c.pattern):
        c.call()
