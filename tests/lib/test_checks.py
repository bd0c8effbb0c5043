"""The contracts written once: boundary checks (localdiff_lib.checks), intervals (localdiff_lib.stats), budgets and the
describe line (localdiff_lib.config), and the helpers that replaced copies (path variance, model label, table entropy,
nearest training image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from localdiff_lib import checks, config, evaluate, info, models, path, stats
from localdiff_lib.checks import InputError


@pytest.mark.parametrize("value, kw, ok", [
    (3, {}, 3), (np.int64(3), {}, 3), (0, {"minimum": 0}, 0), (-5, {"minimum": None}, -5), (7, {"maximum": 7}, 7),
])
def test_integer_accepts_integers_of_both_kinds(value, kw, ok):
    out = checks.integer(value, "n", **kw)
    assert out == ok and type(out) is int


@pytest.mark.parametrize("value, kw, message", [
    (0, {}, "n must be a positive integer; got 0"),
    (-1, {"minimum": 0}, "n must be a non-negative integer; got -1"),
    (8, {"minimum": 0, "maximum": 7}, r"n must be an integer in \[0, 7\]; got 8"),
    (2.0, {}, r"n must be a positive integer; got 2.0 \(float\)"),
    (True, {}, r"got True \(bool\)"),
    ("3", {}, r"got '3' \(str\)"),
    (None, {}, r"got None"),
])
def test_integer_refuses_what_is_not_an_integer_in_range(value, kw, message):
    with pytest.raises(InputError, match=message):
        checks.integer(value, "n", **kw)


def test_input_error_is_caught_as_value_and_type_error():
    for exc in (ValueError, TypeError):
        with pytest.raises(exc):
            checks.integer(1.5, "n")


@pytest.mark.parametrize("t", [0, 1, 0.3, np.float32(0.5), np.int64(1), torch.tensor(0.25)])
def test_unit_time_accepts_numbers_in_the_unit_interval(t):
    assert checks.unit_time(t) == pytest.approx(float(t)) and type(checks.unit_time(t)) is float


@pytest.mark.parametrize("t, message", [
    (-0.1, r"t must lie in \[0, 1\] \(0 = data, 1 = noise\); got -0.1"), (1.5, "got 1.5"), (float("nan"), "got nan"),
    (True, "t must be a number"), ("0.3", "t must be a number"), ([0.3], "t must be a number"),
    (torch.tensor([0.1, 0.2]), "t must be a number"),
])
def test_unit_time_refuses_the_rest(t, message):
    with pytest.raises(InputError, match=message):
        checks.unit_time(t)


def test_unit_times_and_windows():
    assert checks.unit_times(0.5).tolist() == [0.5]
    assert checks.unit_times([0.1, 0.2], increasing=True, at_least=2).tolist() == [0.1, 0.2]
    with pytest.raises(InputError, match=r"T must lie in \[0, 1\] .*got \[1.2\] among \[0.1, 1.2\]"):
        checks.unit_times([0.1, 1.2], "T")
    with pytest.raises(InputError, match="got \\[nan\\]"):
        checks.unit_times([float("nan")], "T")
    with pytest.raises(InputError, match="at least 2 strictly increasing times"):
        checks.unit_times([0.2, 0.2], "grid", increasing=True, at_least=2)
    with pytest.raises(InputError, match="at least 1 time"):
        checks.unit_times([], "T")
    assert checks.time_window((0.2, 0.5)) == (0.2, 0.5)
    with pytest.raises(InputError, match="must be a pair"):
        checks.time_window(0.3)
    with pytest.raises(InputError, match="needs 0 <= t_lo <= t_hi <= 1; got \\(0.5, 0.2\\)"):
        checks.time_window((0.5, 0.2))


def test_disjoint_regions():
    checks.disjoint_regions(5, A=[0], B=[1, 2], C=[3, 4])
    with pytest.raises(InputError, match="regions A and C overlap at index 0"):
        checks.disjoint_regions(5, A=[0], C=[0, 1])
    with pytest.raises(InputError, match=r"region B has index 5 outside \[0, 4\]"):
        checks.disjoint_regions(5, A=[0], B=[5])


def test_student_t_quantiles_and_intervals_have_their_known_values():
    # tabulated: t_{0.975}(1) = 12.706, t_{0.975}(2) = 4.303, t_{0.975}(10) = 2.228, the normal 1.960
    for df, q in [(1, 12.7062), (2, 4.3027), (10, 2.2281), (100_000, 1.9600)]:
        assert stats.student_t_quantile(0.975, df) == pytest.approx(q, abs=2e-4)
    mean, hw = stats.confidence_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hw == pytest.approx(4.3027 * 1.0 / math.sqrt(3), abs=1e-3)
    est = stats.Estimate.from_seeds([1.0, 2.0, 3.0], "density")
    assert est.ci == pytest.approx((mean - hw, mean + hw)) and "3 seeds" in str(est)
    with pytest.raises(ValueError, match="at least 2 replicates"):
        stats.confidence_interval([1.0])


def test_intervals_cover_the_mean_at_their_level():
    # 2,000 intervals from 3 normal replicates each: about 95 % contain the true mean
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(3, 2000))
    mean, hw = stats.confidence_interval(x, 0.95, axis=0)
    coverage = float(np.mean(np.abs(mean - 1.0) <= hw))
    assert 0.935 <= coverage <= 0.965, coverage


def test_budget_and_pick_follow_the_environment(monkeypatch):
    for b in config.BUDGETS:
        monkeypatch.setenv(config.ENV_VAR, f"  {b.upper()} ")
        assert config.budget() == b
        assert config.pick(quick=1, standard=2, full=3) == {"quick": 1, "standard": 2, "full": 3}[b]
    monkeypatch.delenv(config.ENV_VAR)
    assert config.budget() == ("standard" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv(config.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="LOCALDIFF_BUDGET='fast' is not a run budget; set it to one of quick, "
                                         "standard, full"):
        config.budget()


def test_smoke_mode_caps_iteration_counts_only(monkeypatch, capsys):
    monkeypatch.setenv(config.ENV_VAR, "standard")
    monkeypatch.delenv(config.SMOKE_VAR, raising=False)
    assert config.pick(quick=1, standard=2, full=3, work=True) == 2 and config.trained("x")
    monkeypatch.setenv(config.SMOKE_VAR, "1")
    assert config.pick(quick=[1], standard=[1, 2], full=[1, 2, 3]) == [1, 2]      # structure: the budget's
    assert config.pick(quick=300, standard=3000, full=20000, work=True) == 300   # work: quick's
    assert config.pick(quick=300, standard=3000, full=20000, steps=True) == 300 // config.SMOKE_STEPS_DIVISOR == 75
    assert config.pick(quick=2, standard=3000, full=20000, steps=True) == 1       # training steps: a quarter, >= 1
    with pytest.raises(ValueError, match="not both"):
        config.pick(quick=1, standard=2, full=3, work=True, steps=True)
    assert not config.trained("the local model beats the global one")
    assert capsys.readouterr().out == ("smoke mode: check skipped (needs the budget's amounts of work): "
                                       "the local model beats the global one\n")
    assert "(smoke)" in config.describe() and config.parse_describe(config.describe())["budget"] == "standard"
    monkeypatch.setenv(config.ENV_VAR, "quick")
    assert config.trained("x")                      # the quick budget has nothing to cap
    assert config.pick(quick=300, standard=3000, full=20000, steps=True) == 300
    monkeypatch.setenv(config.SMOKE_VAR, "0")
    monkeypatch.setenv(config.ENV_VAR, "full")
    assert config.pick(quick=300, standard=3000, full=20000, steps=True) == 20000
    monkeypatch.setenv(config.SMOKE_VAR, "yes")
    with pytest.raises(ValueError, match="LOCALDIFF_SMOKE='yes': set it to 1"):
        config.smoke()


def test_describe_line_is_read_back_by_its_own_parser(monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, "standard")
    line = config.describe()
    seen = config.parse_describe(f"some output\n{line}\nmore")
    assert seen == {"budget": "standard", "device": seen["device"], "torch": torch.__version__}
    assert line == f"budget={seen['budget']} device={seen['device']} torch={seen['torch']}"
    assert config.parse_describe("no such line") is None


def test_path_variance_is_the_marginal_of_the_interpolation():
    cov0 = np.array([[2.0, 0.5], [0.5, 1.0]])
    for t in (0.0, 0.3, 1.0):
        assert np.allclose(path.marginal_covariance(cov0, t), (1 - t) ** 2 * cov0 + t**2 * np.eye(2))
        assert np.allclose(info.path_covariance(cov0, t), path.marginal_covariance(cov0, t))
        assert np.allclose(np.diag(path.marginal_covariance(cov0, t)), path.marginal_variance(np.diag(cov0), t))
    # and it is what sampling the path gives
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(200_000, 1, generator=gen) * math.sqrt(2.0)
    xt = path.interpolate(x0, torch.randn(x0.shape, generator=gen), 0.4)
    assert float(xt.var()) == pytest.approx(path.marginal_variance(2.0, 0.4), rel=0.01)
    batched = torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
    assert torch.allclose(path.marginal_covariance(batched, 0.5), 0.5 * torch.eye(3, dtype=torch.float64))


def test_model_label():
    assert models.label(models.LocalDenoiser(radius=3, channels=4)) == "LocalDenoiser(r=3)"
    assert models.label(torch.nn.Linear(2, 2)) == "Linear"


def test_table_entropy_and_cmi():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(24)).reshape(2, 3, 4)
    assert info.entropy(np.full(8, 1 / 8)) == pytest.approx(math.log(8))
    assert info.table_entropy(p, (0, 1, 2)) == pytest.approx(info.entropy(p))
    # the average-KL form of I(A:C|B)
    kl = 0.0
    for b in range(3):
        pac = p[:, b, :] / p[:, b, :].sum()
        kl += p[:, b, :].sum() * float((pac * np.log(pac / np.outer(pac.sum(1), pac.sum(0)))).sum())
    assert info.table_cmi(p) == pytest.approx(kl, abs=1e-12)
    indep = np.einsum("ab,bc->abc", rng.dirichlet(np.ones(6)).reshape(2, 3), np.full((3, 4), 1 / 4))
    assert abs(info.table_cmi(indep)) < 1e-12  # A - B - C Markov: no CMI


def test_nearest_train_distance_finds_copies_and_distances():
    gen = torch.Generator().manual_seed(0)
    train = torch.rand(50, 1, 4, 4, generator=gen)
    images = torch.stack([train[7], train[3] + 0.1])
    dist, idx = evaluate.nearest_train_distance(images, train, batch_size=1)
    assert idx.tolist() == [7, 3]
    assert float(dist[0]) < 1e-7 and float(dist[1]) == pytest.approx(0.1, abs=1e-7)
    d32, i32 = evaluate.nearest_train_distance(images, train, dtype=torch.float32)
    assert i32.tolist() == [7, 3] and abs(float(d32[1]) - 0.1) < 1e-3
    with pytest.raises(ValueError, match="images of one size"):
        evaluate.nearest_train_distance(torch.rand(2, 1, 3, 3), train)


def test_mislabelled_models_and_dtype_mismatches_are_refused(tmp_path):
    from localdiff_lib import checkpoints, lab

    x = torch.rand(2, 1, 8, 8)
    local2 = models.LocalDenoiser(radius=2, channels=4, image_size=8)
    with pytest.raises(InputError, match=r"models_by_radius\[5\] is a model of radius 2"):
        evaluate.recovery_grid({5: local2}, None, x, [0.3])
    with pytest.raises(InputError, match="global_model is a local model \\(radius 2\\)"):
        evaluate.recovery_grid({2: local2}, local2, x, [0.3])
    sur = info.surrogate_cmi_map(torch.rand(50, 1, 8, 8), [0.0, 0.5, 1.0], [1, 2], crop=7)
    with pytest.raises(ValueError, match="global_model is a local model \\(radius 2\\)"):
        lab.TransitionLab({2: local2}, local2, x, sur)
    with pytest.raises(InputError, match="images of dtype torch.float64 given to a LocalDenoiser whose weights are "
                                         "torch.float32; convert one of them"):
        local2(x.double(), 0.5)
    assert local2.double()(x.double(), 0.5).dtype == torch.float64
    where = tmp_path / "mnist-local-c16"
    where.mkdir()
    (where / "record.json").write_text("{broken")
    with pytest.raises(ValueError, match="is not valid JSON"):
        checkpoints.record("mnist-local-c16", tmp_path)
    (where / "record.json").write_text('{"sha256": "00"}')
    with pytest.raises(ValueError, match="is not a checkpoint record"):
        checkpoints.record("mnist-local-c16", tmp_path)


def test_bootstrap_interval_of_a_mean_covers_the_true_mean_about_95_percent_of_the_time():
    from localdiff_lib.stats import bootstrap_interval

    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(200):
        x = rng.normal(1.0, 2.0, size=100)
        lo, hi = bootstrap_interval(lambda idx: x[idx].mean(), len(x), n_boot=400, seed=rep)
        hits += lo <= 1.0 <= hi
    assert 0.88 <= hits / 200 <= 0.99, hits


def test_bootstrap_interval_exact_cases_and_errors():
    from localdiff_lib.stats import bootstrap_interval

    assert bootstrap_interval(lambda idx: 3.0, 10) == (3.0, 3.0)         # a constant statistic has no spread
    x = np.arange(10.0)
    lo, hi = bootstrap_interval(lambda idx: x[idx].mean(), 10, n_boot=2000)
    assert 2.0 < lo < 4.5 < hi < 7.0, (lo, hi)                           # around the mean 4.5, within the data range
    with pytest.raises(ValueError, match="n must be an integer"):
        bootstrap_interval(lambda idx: 0.0, 1)
    with pytest.raises(ValueError, match="NaN or inf"):
        bootstrap_interval(lambda idx: float("nan"), 10)


def test_cpu_cores_counts_the_cores_this_process_may_use():
    import os

    n = config.cpu_cores()
    assert isinstance(n, int) and 1 <= n <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert n == len(os.sched_getaffinity(0))
