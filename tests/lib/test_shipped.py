"""Shipped results: a tiny recipe computed, resumed, refused when changed, reloaded with its hash, summarised."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from localdiff_lib import evaluate, shipped


def _tiny_identity():
    recipe = json.loads(json.dumps(shipped.RECIPES["identity-mnist"]))
    recipe.update(n_images=10, T_values=[0.1, 0.6], models={"local r=1 (c16)": ["mnist-local-c16", "r=1"]})
    return recipe


def test_pack_bits_round_trip():
    kept = np.random.default_rng(0).random((3, 13)) < 0.5
    assert np.array_equal(shipped.unpack_bits(shipped.pack_bits(kept)), kept)


def test_identity_run_resume_refuse_load_and_summary(tmp_path, one_thread):
    recipe = _tiny_identity()
    rec = shipped.run("identity-mnist", tmp_path, recipe=recipe, max_units=1)
    assert rec["finished_units"] == ["local r=1 (c16) | euler"] and not rec["complete"]
    rec = shipped.run("identity-mnist", tmp_path, recipe=recipe)                    # resumes with the other unit
    assert rec["complete"] and rec["finished_units"] == shipped.units(recipe)
    assert "resuming with 1 finished units" in (tmp_path / "identity-mnist" / "run.log").read_text()
    for key in ("command", "git_commit", "machine", "torch", "seconds", "cpu_seconds", "sha256"):
        assert key in rec
    res = shipped.load("identity-mnist", tmp_path)
    # the stored verdicts are those of evaluate.identity_curves with the recipe's images, noise and sampler
    from localdiff_lib import checkpoints
    images, labels, noise = shipped.identity_data(recipe)
    cls, inst = evaluate.identity_curves(checkpoints.load("mnist-local-c16")["r=1"], images, labels,
                                         checkpoints.classifier("mnist"), recipe["T_values"], solver="authors",
                                         noise=noise)
    unit = res["units"]["local r=1 (c16) | authors"]
    assert np.array_equal(shipped.unpack_bits(unit["class_kept"]), cls)
    assert np.array_equal(shipped.unpack_bits(unit["instance_kept"]), inst)
    summary = shipped.identity_summary(res, thresholds=(0.5,), n_boot=50)
    s = summary["local r=1 (c16) | authors"]["class"]
    assert np.allclose(s["fraction"], cls.mean(axis=1))
    assert s["t_lost"][0.5][0] == evaluate.crossing_time(recipe["T_values"], cls.mean(axis=1), 0.5)
    # a changed recipe is refused (a changed model too); an added model is new units, the finished ones kept
    with pytest.raises(ValueError, match="another recipe.*n_images"):
        shipped.run("identity-mnist", tmp_path, recipe=dict(recipe, n_images=12))
    with pytest.raises(ValueError, match="another recipe.*models"):
        shipped.run("identity-mnist", tmp_path, recipe=dict(recipe, models={"local r=1 (c16)": ["mnist-local-c16", "r=2"]}))
    more = dict(recipe, models={**recipe["models"], "global (small U-Net)": ["mnist-global-small", "global"]})
    rec = shipped.run("identity-mnist", tmp_path, recipe=more, max_units=0)
    assert rec["finished_units"] == [u for u in shipped.units(more) if "c16" in u] and not rec["complete"]
    assert shipped.load("identity-mnist", tmp_path)["units"]["local r=1 (c16) | authors"] == unit
    # the record names the checkpoints the units used; another version of one is refused, by a run and by load
    assert rec["checkpoints"] == {n: checkpoints.record(n)["sha256"]
                                  for n in ("mnist-classifier", "mnist-global-small", "mnist-local-c16")}
    rec_file = tmp_path / "identity-mnist" / "record.json"
    good = rec_file.read_text()
    rec_file.write_text(json.dumps(dict(rec, checkpoints=dict(rec["checkpoints"], **{"mnist-local-c16": "0" * 64}))))
    with pytest.raises(ValueError, match=r"other versions of the checkpoints \['mnist-local-c16'\].*--refresh"):
        shipped.load("identity-mnist", tmp_path)
    with pytest.raises(ValueError,
                       match=r"other versions of the checkpoints \['mnist-local-c16'\].*--refresh.*--restart"):
        shipped.run("identity-mnist", tmp_path, recipe=more, max_units=0)
    rec_file.write_text(good)
    # refresh: an identity unit uses its own model's checkpoint and the classifier; only the units of a changed
    # checkpoint are discarded and computed again, the others are kept as they were
    assert shipped.checkpoints_of(more, "global (small U-Net) | euler") == ["mnist-classifier", "mnist-global-small"]
    assert shipped.checkpoints_of(more, "local r=1 (c16) | ode") == ["mnist-classifier", "mnist-local-c16"]
    rec = shipped.run("identity-mnist", tmp_path, recipe=more)
    assert rec["complete"]
    before = shipped.load("identity-mnist", tmp_path)["units"]
    rec_file.write_text(json.dumps(dict(rec, checkpoints=dict(rec["checkpoints"], **{"mnist-global-small": "0" * 64}))))
    rec = shipped.run("identity-mnist", tmp_path, recipe=more, refresh=True, max_units=0)
    assert rec["finished_units"] == [u for u in shipped.units(more) if "c16" in u]
    assert rec["checkpoints"]["mnist-global-small"] == checkpoints.record("mnist-global-small")["sha256"]
    assert "2 units that used them are discarded" in (tmp_path / "identity-mnist" / "run.log").read_text()
    rec = shipped.run("identity-mnist", tmp_path, recipe=more)       # the discarded units, computed again
    after = shipped.load("identity-mnist", tmp_path)["units"]
    assert rec["complete"] and all(after[u] == before[u] for u in before if "c16" in u)
    for u in (u for u in before if "U-Net" in u):      # the same checkpoint: the same verdicts (not the same seconds)
        assert {k: v for k, v in after[u].items() if k != "seconds"} == {k: v for k, v in before[u].items()
                                                                         if k != "seconds"}
    # a changed file fails its hash
    (tmp_path / "identity-mnist" / "results.json").write_text(json.dumps(dict(recipe=recipe, units={})))
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        shipped.load("identity-mnist", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m localdiff_lib.shipped run nothing"):
        shipped.load("nothing", tmp_path)


def test_hybrid_units_store_quality_cost_and_images(tmp_path, one_thread):
    recipe = json.loads(json.dumps(shipped.RECIPES["hybrid-mnist"]))
    keep = ["paper: local / global on [0.2, 0.5) / local", "all local", "all global, Heun, the paper split's compute"]
    recipe.update(n_samples=24, seeds=[0], steps=8, n_keep=3,
                  schedules={k: v for k, v in recipe["schedules"].items() if k in keep})
    rec = shipped.run("hybrid-mnist", tmp_path, recipe=recipe)
    assert rec["complete"] and len(rec["finished_units"]) == 3
    res = shipped.load("hybrid-mnist", tmp_path)
    paper, local, heun = (res["units"][f"{k} | seed 0"] for k in keep)
    # cost: the paper split calls each model at the steps whose midpoint its window holds; the equal-compute Heun
    # sampler spends no more multiply-adds per image than the paper split, and one step more would spend more
    assert paper["nfe_by_model"] and sum(paper["nfe_by_model"].values()) == 8
    assert heun["solver"] == "heun" and heun["macs_per_image"] <= paper["macs_per_image"]
    assert local["macs_per_image"] < paper["macs_per_image"]
    # the stored quality is evaluate.sample_quality of the recipe's samples and real sets
    from localdiff_lib import checkpoints
    from localdiff_lib.sampling import HybridSchedule, sample
    models = {"local": checkpoints.load("mnist-local-c16")["r=3"], "global": checkpoints.load("mnist-global-small")["global"]}
    x, _ = sample(HybridSchedule(models["local"]), n=24, steps=8, seed=0)
    real, real_floor, train = shipped.hybrid_data(recipe)
    q = evaluate.sample_quality(checkpoints.classifier("mnist"), x, real, real_floor, train)
    assert local["quality"]["fd"] == pytest.approx(q.fd, rel=1e-6)
    assert local["quality"]["precision"] == pytest.approx(q.precision) and local["quality"]["n"] == 24
    images = shipped.kept_images(local)
    assert images.shape == (3, 1, 28, 28) and torch.allclose(images, x[:3].clamp(0, 1), atol=1 / 255)


def test_gap_units_store_the_closed_form_and_network_values(tmp_path, one_thread):
    recipe = json.loads(json.dumps(shipped.RECIPES["gap-mnist"]))
    recipe.update(n_images=10, n_head=4, t_values=[0.4], radii=[1, 3])
    rec = shipped.run("gap-mnist", tmp_path, recipe=recipe)
    assert rec["complete"] and rec["finished_units"] == ["training | t = 0.4", "held-out | t = 0.4"]
    res = shipped.load("gap-mnist", tmp_path)
    from localdiff_lib import checkpoints
    models = {"r=1": checkpoints.load("mnist-local-c16")["r=1"], "r=3": checkpoints.load("mnist-local-c16")["r=3"],
              "global": checkpoints.load("mnist-global-small")["global"]}
    for split in shipped.GAP_SPLITS:
        x0, noise, train = shipped.gap_data(recipe, split)
        assert x0.shape == (10, 1, 28, 28)
        v = shipped.gap_values(x0, noise, 0.4, train, [1, 3], models)
        unit = res["units"][f"{split} | t = 0.4"]
        assert unit["n"] == 10 and unit["pinsker_violations"] == 0
        for key in ("excess r=1", "kl r=3", "log_ratio r=1", "kl_b r=3", "error global", "error r=3"):
            assert unit[key]["mean"] == pytest.approx(v[key].mean(), rel=1e-9, abs=1e-12), key
        assert unit["net gap r=1"]["mean"] == pytest.approx(((v["x0 r=1"] - v["x0 global"]) ** 2).mean(), rel=1e-9)
        np.testing.assert_allclose(unit["head"]["kl r=1"], v["kl r=1"][:4], rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError, match="split must be one of"):
        shipped.gap_data(recipe, "test")


def test_ceiling_units_store_the_ceiling_and_network_errors(tmp_path, one_thread):
    recipe = json.loads(json.dumps(shipped.RECIPES["ceiling-mnist"]))
    recipe.update(n_queries=6, n_head=3, t_values=[0.3], radii=[1],
                  models={"c16 r=1": ["mnist-local-c16", "r=1"], "c16 r=3": ["mnist-local-c16", "r=3"],
                          "global (small U-Net)": ["mnist-global-small", "global"]})
    rec = shipped.run("ceiling-mnist", tmp_path, recipe=recipe)
    assert rec["complete"] and rec["finished_units"] == ["training | t = 0.3", "held-out | t = 0.3"]
    res = shipped.load("ceiling-mnist", tmp_path)
    from localdiff_lib import checkpoints
    models = {label: checkpoints.load(name)[key] for label, (name, key) in recipe["models"].items()}
    for split in shipped.GAP_SPLITS:
        x0, pixels, noise, train = shipped.ceiling_data(recipe, split)
        assert x0.shape == (6, 1, 28, 28) and bool(((pixels >= 6) & (pixels < 22)).all())
        v = shipped.ceiling_values(x0, pixels, noise, 0.3, train, [1], 6, models)
        unit = res["units"][f"{split} | t = 0.3"]
        assert unit["n"] == 6
        for key in ("error ceiling r=1", "error c16 r=1", "error c16 r=3", "error global (small U-Net)"):
            assert unit[key]["mean"] == pytest.approx(v[key].mean(), rel=1e-9, abs=1e-12), key
        # the excess pairs a network with the ceiling of its own radius; r = 3 has no ceiling in this recipe
        assert unit["excess c16 r=1"]["mean"] == pytest.approx((v["error c16 r=1"] - v["error ceiling r=1"]).mean(),
                                                               rel=1e-9, abs=1e-12)
        assert "excess c16 r=3" not in unit and "excess global (small U-Net)" not in unit
        # r^2 of the ceiling's estimates against the network's, over the queries, with its bootstrap interval
        net, ceil = v["x0 c16 r=1"], v["x0 ceiling r=1"]
        want = 1 - ((net - ceil) ** 2).sum() / ((net - net.mean()) ** 2).sum()
        r2 = unit["r2 c16 r=1"]
        assert r2["value"] == pytest.approx(want, rel=1e-9) and r2["lo"] <= r2["hi"] and "r2 c16 r=3" not in unit
        np.testing.assert_allclose(unit["head"]["x0 ceiling r=1"], v["x0 ceiling r=1"][:3], rtol=1e-9, atol=1e-12)
    for split, want in (("training", True), ("held-out", False)):      # training queries are training digits
        first = shipped.ceiling_data(recipe, split)[0][0]
        assert bool((train == first).flatten(1).all(1).any()) == want, split
    with pytest.raises(ValueError, match="split must be one of"):
        shipped.ceiling_data(recipe, "test")


@pytest.mark.parametrize("name", ["identity-mnist", "hybrid-mnist", "hybrid-mnist-long", "gap-mnist",
                                  "ceiling-mnist"])
def test_shipped_results_reload_complete_with_their_recipe(name):
    res = shipped.load(name)                                        # checks the SHA-256
    rec = res["record"]
    assert rec["complete"] and rec["finished_units"] == shipped.units(res["recipe"])
    assert set(res["units"]) == set(rec["finished_units"])  # units added later (new models) are stored after the others
    assert res["recipe"] == json.loads(json.dumps(shipped.RECIPES[name]))
    assert rec["command"].startswith(f"python -m localdiff_lib.shipped run {name}") and rec["git_commit"]
    recipe = res["recipe"]
    # computed with the checkpoints shipped now (load checks the hashes of those the record names: all of them)
    assert sorted(rec["checkpoints"]) == shipped.checkpoints_of(recipe)
    for unit in res["units"].values():
        if recipe["kind"] == "identity":
            for verdict in ("class_kept", "instance_kept"):
                assert unit[verdict]["shape"] == [len(recipe["T_values"]), recipe["n_images"]]
        elif recipe["kind"] == "gap":
            balanced = recipe["n_images"] // 10 * 10          # the held-out digits are class-balanced
            assert unit["n"] in (recipe["n_images"], balanced) and unit["pinsker_violations"] == 0
            for r in recipe["radii"]:
                assert len(unit["head"][f"excess r={r}"]) == recipe["n_head"] and f"net gap r={r}" in unit
        elif recipe["kind"] == "ceiling":
            assert unit["n"] == recipe["n_queries"]
            for label, (_, key) in recipe["models"].items():
                assert len(unit["head"][f"x0 {label}"]) == recipe["n_head"]
                assert (f"excess {label}" in unit) == (key.startswith("r=") and int(key[2:]) in recipe["radii"])
            for r in recipe["radii"]:
                assert len(unit["head"][f"x0 ceiling r={r}"]) == recipe["n_head"]
        else:
            assert unit["quality"]["n"] == recipe["n_samples"] and unit["images"]["shape"] == [recipe["n_keep"], 1, 28, 28]


def test_ceiling_r2_is_one_for_a_perfect_prediction_and_zero_for_the_mean():
    rng = np.random.default_rng(0)
    net = rng.random(64)
    assert shipped.ceiling_r2(net, net) == dict(value=1.0, lo=1.0, hi=1.0)
    flat = shipped.ceiling_r2(np.full(64, net.mean()), net, n_boot=200)
    # a constant prediction explains nothing: r^2 = 0 at the mean, and below 0 in every resample (whose mean differs)
    assert flat["value"] == pytest.approx(0.0, abs=1e-12) and flat["lo"] <= flat["hi"] <= 1e-12
    noisy = shipped.ceiling_r2(net + 0.1 * rng.standard_normal(64), net, n_boot=200)
    assert noisy["lo"] < noisy["value"] < noisy["hi"] < 1.0
