"""The image density models of the CMI map (localdiff_lib.image_density) and the shipped maps (localdiff_lib.cmi_map)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from localdiff_lib import cmi_map, info
from localdiff_lib.estimators import bound_values
from localdiff_lib.image_density import ImageCriticBank, ImageDensityBank, train_image_density_bank

pytestmark = pytest.mark.usefixtures("one_thread")

S = 11
A = info.regions((S, S), None, 0)[0][0]


def _masks(radii=(1, 3)):
    ms = [torch.zeros(S * S)]
    bc = torch.ones(S * S)
    bc[A] = 0
    ms.append(bc)
    for r in radii:
        m = torch.zeros(S * S)
        m[info.regions((S, S), None, r)[1]] = 1
        ms.append(m)
    return torch.stack(ms)


def test_each_model_reads_only_its_context():
    # the gradient footprint of log q_k in the input is the model's mask plus A itself (the modelled value)
    masks = _masks()[None].repeat(2, 1, 1)
    bank = ImageDensityBank(masks, S, A, width=2, hidden=8, patch=2, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 3, S * S, requires_grad=True)
    lq = bank.log_prob(x)  # (K, 3)
    for k in range(bank.n_models):
        (g,) = torch.autograd.grad(lq[k].sum(), x, retain_graph=True)
        touched = g[k // masks.shape[1]].abs().sum(0) > 0
        allowed = masks.reshape(-1, S * S)[k].bool().clone()
        allowed[A] = True
        assert not bool((touched & ~allowed).any()), f"model {k} reads pixels outside its context"
        assert bool(touched[A])
        assert g[1 - k // masks.shape[1]].abs().sum() == 0, "a model reads another group's batch"
    # q(a) and the small radii have no convolutional path; B u C and r = 3 (outside the patch of radius 2) have one
    assert bank.conv_models.tolist() == [1, 3, 5, 7]


def test_a_critic_reads_its_context_and_a_only_and_an_empty_context_carries_no_information():
    # scores[k, i, j] = T_k(a_i, c_j): the gradient of column j reaches only model k's context pixels of sample j
    # (and A of the samples in other columns' rows); q(a)'s critic has no context: its scores and bound are exactly 0
    masks = _masks()[None]
    bank = ImageCriticBank(masks, S, A, width=2, hidden=8, patch=2, generator=torch.Generator().manual_seed(0))
    x = torch.rand(1, 4, S * S, requires_grad=True)
    sc = bank.scores(x)  # (K, 4, 4)
    assert sc.shape == (bank.n_models, 4, 4)
    assert torch.equal(sc[0], torch.zeros(4, 4)) and bound_values(sc[:1], "mine").item() == 0.0
    for k in range(1, bank.n_models):
        (g,) = torch.autograd.grad(sc[k, 0, 1], x, retain_graph=True)  # T_k(a_0, c_1)
        allowed = masks[0, k].bool().clone()
        assert not bool((g[0, 1].abs() > 0)[~allowed].any()), f"critic {k} reads pixels outside its context"
        assert bool(g[0, 0, A] != 0) and bool((g[0, 0].abs() > 0).sum() == 1), "sample 0 enters through A only"
        assert g[0, 2:].abs().sum() == 0
    with pytest.raises(TypeError, match="critic scores"):
        bank.log_prob(x)
    with pytest.raises(ValueError, match="unknown objective"):
        train_image_density_bank(lambda s, n, g: torch.rand(1, n, S * S), masks, S, A, steps=2, objective="nce")


def test_errors_are_clear():
    with pytest.raises(ValueError, match="context must exclude"):
        m = _masks()
        m[1, A] = 1
        ImageDensityBank(m[None], S, A)
    with pytest.raises(ValueError, match="does not fit"):
        ImageDensityBank(_masks()[None], S, A, patch=6)
    with pytest.raises(ValueError, match="report_at"):
        train_image_density_bank(lambda s, n, g: torch.rand(1, n, S * S), _masks()[None], S, A, steps=10,
                                 report_at=[5])


def _smooth_field(ell=5.0, nugget=0.05):
    # a squared-exponential field plus a nugget: not Markov, so the CMI at buffer radius 1 is far from 0
    # (0.037 nats at t = 0.5, against 0.004 for a nearest-neighbour field, which a model outputting 0 would pass)
    ij = np.stack(np.meshgrid(np.arange(S), np.arange(S), indexing="ij"), -1).reshape(-1, 2)
    d2 = ((ij[:, None] - ij[None]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * ell**2)) + nugget * np.eye(S * S)


def _gaussian_sampler(cov, t, G):
    L = torch.linalg.cholesky(torch.as_tensor(info.path_covariance(cov, t), dtype=torch.float32))

    def sampler(split, n, gen):
        g = G if split == "train" else 1
        x = torch.randn(g, n, L.shape[0], generator=gen) @ L.T
        return x.expand(G, n, L.shape[0])

    return sampler


@pytest.mark.slow
def test_cmi_of_a_gaussian_field_is_recovered():
    # a smooth Gaussian field: at t = 0.5 the CMI of the centre pixel with buffer radius 1 is exact
    # (info.gaussian_cmi); the image models recover it and I(A:BC) on the same samples
    cov = _smooth_field()
    t, G = 0.5, 2
    masks = _masks((1,))[None].repeat(G, 1, 1)
    res = train_image_density_bank(_gaussian_sampler(cov, t, G), masks, S, A, steps=1500, lr=3e-3, width=4, hidden=32,
                                   patch=2, val_every=100, val_samples=512, eval_samples=4096, seed=0)
    lq = res.log_q[1500].reshape(G, 3, -1)
    cov_t = info.path_covariance(cov, t)
    Ar, B, C = info.regions((S, S), None, 1)
    exact_cmi = info.gaussian_cmi(cov_t, Ar, B, C)
    exact_bc = info.gaussian_mi(cov_t, Ar, B + C)
    cmi = (lq[:, 1] - lq[:, 2]).mean()
    bc = (lq[:, 1] - lq[:, 0]).mean()
    assert abs(bc - exact_bc) < 0.03, (bc, exact_bc)
    assert abs(cmi - exact_cmi) < 0.01 and exact_cmi > 0.03, (cmi, exact_cmi)


@pytest.mark.slow
def test_mine_critics_recover_the_cmi_of_a_gaussian_field():
    # the same exact problem with the authors' estimator (the ablation of chapter "The CMI barrier"): the per-batch
    # Donsker-Varadhan values of I(A:BC) and of the CMI at r = 1, paired across models, near the exact values
    cov = _smooth_field()
    t, G = 0.5, 2
    masks = _masks((1,))[None].repeat(G, 1, 1)
    res = train_image_density_bank(_gaussian_sampler(cov, t, G), masks, S, A, steps=1500, lr=3e-3, width=4,
                                   hidden=32, patch=2, val_every=100, val_samples=512, eval_samples=4096, seed=0,
                                   objective="mine")
    v = res.log_q[1500].reshape(G, 3, -1)  # (seeds, models, evaluation batches)
    assert v.shape[2] == 4096 // 128 and np.all(v[:, 0] == 0)
    cov_t = info.path_covariance(cov, t)
    Ar, B, C = info.regions((S, S), None, 1)
    exact_cmi = info.gaussian_cmi(cov_t, Ar, B, C)
    exact_bc = info.gaussian_mi(cov_t, Ar, B + C)
    assert abs(v[:, 1].mean() - exact_bc) < 0.05, (v[:, 1].mean(), exact_bc)
    # measured: I(A:BC) 0.324 (exact 0.316), CMI 0.0286 (exact 0.0367); the likelihood models: 0.328 and 0.0288
    assert abs((v[:, 1] - v[:, 2]).mean() - exact_cmi) < 0.01, ((v[:, 1] - v[:, 2]).mean(), exact_cmi)


def test_validation_and_evaluation_samples_are_distinct_draws():
    # early stopping on 128 samples repeated 16 times picks states that fit those samples' noise (the shipped maps
    # before this test: validation cross-entropies that "rose" while training, over-estimated CMIs): every batch
    # of the validation and evaluation sets must be a fresh draw, and the draws must be the same for every call
    seen = {"val": [], "eval": []}

    def sampler(split, n, gen):
        x = torch.rand((1, n, S * S), generator=gen)
        if split in seen:
            seen[split].append(x)
        return x

    for _ in range(2):
        train_image_density_bank(sampler, _masks((1,))[None], S, A, steps=2, batch=8, width=1, hidden=4, patch=2,
                                 val_every=1, val_samples=32, eval_samples=32, seed=0)
    for split, xs in seen.items():
        first, second = torch.cat(xs[:4], 1), torch.cat(xs[4:], 1)
        assert len(xs) == 8 and torch.equal(first, second), split  # the same samples in every run of a seed
        assert torch.unique(first[0], dim=0).shape[0] == 32, f"{split} batches repeat"


def test_without_early_stopping_the_last_average_is_scored():
    # the authors' protocol trains for a fixed number of steps: early_stopping=False scores the weight average of
    # each reported budget, whatever the validation said; with early stopping the best validated state is scored
    def sampler(split, n, gen):  # validation on other data than training: the best validated state is an early one
        return torch.rand((1, n, S * S), generator=gen) + (3.0 if split == "val" else 0.0)

    kw = dict(steps=6, batch=8, width=1, hidden=4, patch=2, val_every=1, val_samples=16, eval_samples=16, seed=0,
              report_at=[3, 6])
    last = train_image_density_bank(sampler, _masks((1,))[None], S, A, early_stopping=False, **kw)
    best = train_image_density_bank(sampler, _masks((1,))[None], S, A, **kw)
    assert all((last.best_step[s] == s).all() for s in (3, 6))
    assert all((best.best_step[s] <= s).all() for s in (3, 6))
    for s in (3, 6):  # identical training: the two differ exactly where early stopping kept an earlier state
        same = best.best_step[s] == s
        np.testing.assert_array_equal(last.log_q[s][same], best.log_q[s][same])
    earlier = best.best_step[6] < 6
    assert earlier.any(), "the toy run never kept an earlier state"
    assert not np.allclose(last.log_q[6][earlier], best.log_q[6][earlier])


def _tiny_recipe(**kw):
    return cmi_map._map_recipe("mnist", **{**dict(t_values=(0.3, 0.0), radii=(1,), seeds=2, steps=8, batch=16,
                                                  val_samples=32, eval_samples=32, val_images=500), **kw})


def test_run_map_keeps_progress_refuses_another_recipe_and_detects_tampering(tmp_path):
    pytest.importorskip("zarr")
    rec = cmi_map.run_map("tiny", tmp_path, threads=1, recipe=_tiny_recipe(), max_times=1)
    assert rec["finished_t"] == [0.3] and not rec["complete"]
    out = tmp_path / "cmi-map-tiny"
    assert {p.name for p in out.iterdir()} == {"results.json", "record.json", "run.log"}
    for key in ("command", "recipe", "git_commit", "machine", "seconds", "sha256", "torch", "date"):
        assert key in rec
    rec = cmi_map.run_map("tiny", tmp_path, threads=1, recipe=_tiny_recipe())  # resumes: only t = 0 is computed
    assert rec["finished_t"] == [0.3, 0.0] and rec["complete"]
    assert "resuming with 1 finished times" in (out / "run.log").read_text()
    m = cmi_map.load_map("tiny", tmp_path)
    assert list(m.t) == [0.0, 0.3] and m.cmi.shape == (2, 1) and m.per_seed_cmi.shape == (2, 2, 1)
    assert sorted(m.budgets) == [2, 4, 8] and m.bias.shape == (2, 1) and np.all(m.cmi_hw >= m.bias)
    with pytest.raises(ValueError, match="another recipe.*steps"):
        cmi_map.run_map("tiny", tmp_path, threads=1, recipe=_tiny_recipe(steps=9))
    res = json.loads((out / "results.json").read_text())
    res["times"]["0.3000"]["budgets"]["8"]["cmi_seed"][0][0] += 0.1
    (out / "results.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="SHA-256"):
        cmi_map.load_map("tiny", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m localdiff_lib.cmi_map run"):
        cmi_map.load_map("absent", tmp_path)


def test_the_interval_adds_the_image_error_and_the_training_bias():
    # two seeds that agree exactly: the half-width is the per-sample error alone; a budget whose last doubling
    # moved the value by more than the half-width gets that change added as a bias term
    entry = lambda v: dict(h=[[1.0, 0.5, 0.6]] * 2, cmi_seed=[[v], [v]], mi_bc_seed=[0.5, 0.5], cmi_se_img=[0.01],
                           mi_bc_se_img=0.01, best_step=[[1, 1, 1]] * 2)
    progress = {"0.3000": dict(seconds=1.0, budgets={"1": entry(0.05), "2": entry(0.10)}, val_curve=[[1], [2]],
                               val_mean=[[0.6, 0.5, 0.55], [0.6, 0.5, 0.55]])}
    m = cmi_map.map_from_progress([0.3], [1], progress, dict(report_at=[1, 2]))
    assert not m.unstable.any()
    z = 1.959964
    assert m.cmi[0, 0] == pytest.approx(0.10)
    assert m.bias[0, 0] == pytest.approx(0.05)
    assert m.cmi_hw[0, 0] == pytest.approx(z * 0.01 + 0.05, rel=1e-3)
    assert m.budgets[1]["cmi_hw"][0, 0] == pytest.approx(z * 0.01, rel=1e-3)


def test_shipped_maps_reload_with_their_hash_and_shape():
    names = sorted(p.parent.name[len("cmi-map-"):] for p in cmi_map.results_dir().glob("cmi-map-*/record.json"))
    if not names:
        pytest.skip("no shipped map in this checkout")
    for name in names:
        m = cmi_map.load_map(name)
        rec = m.settings["record"]
        assert m.cmi.shape == (len(rec["finished_t"]), len(rec["recipe"]["radii"]))
        assert np.all(np.isfinite(m.cmi)) and np.all(m.cmi_hw > 0)
        assert rec["command"].startswith(f"python -m localdiff_lib.cmi_map run {name}")
        assert set(rec["finished_t"]) <= set(rec["recipe"]["t_values"])
        assert m.bound == cmi_map.ESTIMATOR[rec["recipe"].get("objective", "likelihood")]


def test_a_model_that_got_worse_while_training_flags_its_cells():
    # q(a | B_1) ends 0.02 nats above its best validation loss: the r = 1 cell is flagged, r = 2 is not; a rise of
    # q(a | B u C) flags every radius of that time
    entry = dict(h=[[1.0, 0.5, 0.6, 0.55]] * 2, cmi_seed=[[0.1, 0.05]] * 2, mi_bc_seed=[0.5, 0.5],
                 cmi_se_img=[0.01, 0.01], mi_bc_se_img=0.01, best_step=[[1, 1, 1, 1]] * 2)
    ok = dict(seconds=1.0, budgets={"2": entry}, val_curve=[[1], [2]],
              val_mean=[[0.6, 0.5, 0.55, 0.52], [0.6, 0.5, 0.57, 0.52]])
    bad_bc = dict(ok, val_mean=[[0.6, 0.5, 0.55, 0.52], [0.6, 0.52, 0.55, 0.52]])
    m = cmi_map.map_from_progress([0.3, 0.5], [1, 2], {"0.3000": ok, "0.5000": bad_bc}, dict(report_at=[2]))
    assert m.unstable.tolist() == [[True, False], [True, True]]
    assert "*" in m.table()


def test_times_computed_at_once_give_the_same_map_and_report_each_time():
    # each time has its own seeded generators: computing them in worker threads changes neither a value nor an
    # interval, and on_time sees every time once, in the calling thread; a bad worker count is refused
    g = torch.Generator().manual_seed(0)
    train, test = torch.rand(600, 28, 28, generator=g), torch.rand(64, 28, 28, generator=g)
    kw = dict(t_values=(0.3, 0.0, 0.6), radii=(1,), seeds=2, steps=6, batch=16, val_samples=32, eval_samples=32,
              val_images=500, num_threads=1)
    one = cmi_map.image_cmi_map(train, test, **kw)
    seen = []
    two = cmi_map.image_cmi_map(train, test, **kw, workers=2, on_time=lambda p: seen.append(sorted(p)))
    np.testing.assert_array_equal(one.cmi, two.cmi)
    np.testing.assert_array_equal(one.cmi_hw, two.cmi_hw)
    np.testing.assert_array_equal(one.mi_a_bc, two.mi_a_bc)
    assert [len(s) for s in seen] == [1, 2, 3] and seen[-1] == ["0.0000", "0.3000", "0.6000"]
    with pytest.raises(ValueError, match="workers"):
        cmi_map.image_cmi_map(train, test, **kw, workers=0)


def test_a_time_that_fails_in_a_worker_raises_and_cancels_the_times_not_started(monkeypatch):
    g = torch.Generator().manual_seed(0)
    train, test = torch.rand(600, 28, 28, generator=g), torch.rand(64, 28, 28, generator=g)
    started = []
    real = cmi_map.train_image_density_bank

    def bank(*args, seed, **kw):
        started.append(seed)
        if seed == 3000:  # t = 0.3 (seed 0 + 10^4 t)
            raise RuntimeError("boom at t = 0.3")
        time.sleep(0.5)  # the other times take a while, as real ones do
        return real(*args, seed=seed, **kw)

    monkeypatch.setattr(cmi_map, "train_image_density_bank", bank)
    with pytest.raises(RuntimeError, match="boom at t = 0.3"):
        cmi_map.image_cmi_map(train, test, t_values=(0.3, 0.1, 0.5, 0.6, 0.7, 0.8), radii=(1,), seeds=2, steps=4,
                              batch=16, val_samples=32, eval_samples=32, val_images=500, num_threads=1, workers=2)
    assert 3000 in started and len(started) <= 3, started  # the times queued behind the failure never started
