"""Shipped checkpoints (localdiff_lib.checkpoints): every one loads with weights_only, matches its SHA-256 and
reproduces its recorded held-out metric; the training command writes what the records promise."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from localdiff_lib import checkpoints, data, models

SHIPPED = checkpoints.available()


#: the checkpoints the chapters load (the others are shipped when their training run is done)
USED = ({f"{d}-{k}" for d in ("mnist", "fashion-mnist") for k in ("local-c16", "global-small")}
        | {"mnist-classifier", "mnist-local-family", "mnist-local-fixed-depth", "mnist-authors-local",
           "mnist-global-unet"})


def test_the_shipped_set_is_complete_and_small():
    # what the chapters use is shipped, everything shipped is a recipe, all together at most 25 MB
    assert USED <= set(SHIPPED) <= set(checkpoints.RECIPES), SHIPPED
    total = sum((checkpoints.shipped_dir() / n / "model.pt").stat().st_size for n in SHIPPED)
    assert total < 25e6, total


def test_every_checkpoint_a_chapter_names_is_shipped():
    # a recipe named in a chapter's source (checkpoints.record("..."), load("...")) must be shipped, and USED lists it
    book = Path(__file__).resolve().parents[2] / "book"
    text = "\n".join(md.read_text() for md in book.rglob("*.md"))
    named = set(re.findall(r'"((?:fashion-)?mnist-[a-z0-9-]+)"', text)) & set(checkpoints.RECIPES)
    assert named and named <= USED <= set(SHIPPED), (named, USED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_reproduces_its_record(name):
    rec = checkpoints.record(name)
    d = checkpoints.shipped_dir() / name
    # the record says how it was made and is consistent with the files beside it
    assert rec["name"] == name and rec["recipe"] == json.loads(json.dumps(checkpoints.RECIPES[name]))
    assert rec["command"].startswith(f"python -m localdiff_lib.checkpoints train {name}")
    assert rec["sha256"] == checkpoints.sha256(d / "model.pt") and rec["size_bytes"] == (d / "model.pt").stat().st_size
    log = (d / "train.log").read_text().splitlines()
    assert log[1].split()[1:] == list(rec["recipe"]["models"])
    assert len(log) - 2 == rec["steps"] // 100 and rec["steps"] in checkpoints.schedule(rec["recipe"])
    if "doubling" in rec["recipe"]:  # the held-out curve ends at the shipped weights; `complete` follows the rule
        c = rec["held_out_curve"]
        assert c["steps"] == checkpoints.schedule(rec["recipe"])[:len(c["steps"])] and c["steps"][-1] == rec["steps"]
        assert {k: v[-1] for k, v in c["values"].items()} == rec["held_out"]["values"]
        assert c["converged"] == {k: checkpoints.converged(v, c["tol"]) for k, v in c["values"].items()}
        assert rec["complete"] == (all(c["converged"].values()) or rec["steps"] == checkpoints.schedule(rec["recipe"])[-1])
    # the weights load with weights_only=True (inside train.load_checkpoint), and the held-out metric is reproduced
    blob = torch.load(d / "model.pt", weights_only=True)
    assert blob["optimizer"] is None  # weights only: no optimizer state shipped
    loaded = checkpoints.load(name)
    assert list(loaded) == list(rec["recipe"]["models"])
    for key, m in loaded.items():
        assert not m.training
        if isinstance(m, models.LocalDenoiser):
            assert m.radius == int(key.split("=")[1])
    kind = rec["recipe"].get("kind", "denoiser")
    assert rec["held_out"]["metric"] == checkpoints._METRIC_NAME[kind].format(n=checkpoints.HELD_OUT, dataset=rec["recipe"]["dataset"])
    dataset = rec["recipe"]["dataset"]
    if dataset != "mnist" and data.load_optional(dataset, "test") is None:  # Fashion-MNIST is optional (note printed)
        pytest.skip(f"{dataset} is not available: the held-out metric of {name} is not recomputed")
    result = checkpoints.check(name)  # raises if a metric moved by more than 0.1 %
    for key, (want, got) in result.items():
        assert want == rec["held_out"]["values"][key] and abs(got - want) <= 1e-3 * want


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_a_wider_window_does_not_hurt(dataset):
    # A radius-(r+1) model can represent any radius-r model, so the best held-out loss is non-increasing in r; trained
    # models may fall short of it by training noise, which we allow up to 2 % per step of r. From r = 1 to r = 6 the
    # loss must drop by more than 10 %, and the U-Net (which sees the whole image) must beat every local model.
    if f"{dataset}-local-c16" not in SHIPPED or f"{dataset}-global-small" not in SHIPPED:
        pytest.skip(f"{dataset} checkpoints are not shipped")
    rec_l = checkpoints.record(f"{dataset}-local-c16")["held_out"]["values"]
    rec_g = checkpoints.record(f"{dataset}-global-small")["held_out"]["values"]["global"]
    losses = [rec_l[f"r={r}"] for r in range(1, 7)]
    assert all(b <= 1.02 * a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.9 * losses[0], losses
    assert rec_g < min(losses), (rec_g, losses)
    assert set(checkpoints.local_denoisers(dataset)) == set(range(1, 7))
    assert isinstance(checkpoints.global_unet(dataset), models.GlobalUNet)


def test_the_loaders_pick_a_recipe_by_kind():
    # local_denoisers / global_unet name a recipe by its kind; the family's radii are those of its recipe, and an
    # unknown kind names the recipes there are
    fam = checkpoints.local_denoisers("mnist", kind="family")
    assert sorted(fam) == [1, 2, 3, 4, 6, 8]
    assert all(isinstance(m, models.LocalDenoiser) and m.radius == r for r, m in fam.items())
    with pytest.raises(ValueError, match="unknown checkpoint 'mnist-local-wide'.*mnist-local-family"):
        checkpoints.local_denoisers("mnist", kind="wide")


def test_a_changed_file_is_refused(tmp_path):
    name = "mnist-local-c16"
    shutil.copytree(checkpoints.shipped_dir() / name, tmp_path / name)
    checkpoints.load(name, tmp_path)  # an intact copy loads
    f = tmp_path / name / "model.pt"
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        checkpoints.load(name, tmp_path)


def test_training_command_writes_model_record_and_log(tmp_path, monkeypatch, one_thread):
    recipe = dict(dataset="mnist", note="test",
                  models={"r=1": ["LocalDenoiser", dict(radius=1, channels=4)], "r=2": ["LocalDenoiser", dict(radius=2, channels=4)]},
                  fit=dict(steps=200, batch_size=16, lr=2e-3, warmup=10, seed=0))
    monkeypatch.setitem(checkpoints.RECIPES, "tiny", recipe)
    monkeypatch.setattr(checkpoints, "HELD_OUT", 64)
    rec = checkpoints.main(["train", "tiny", "--dir", str(tmp_path)]) == 0 and checkpoints.record("tiny", tmp_path)
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["model.pt", "record.json", "train.log"]
    assert rec["steps"] == 200 and set(rec["held_out"]["values"]) == {"r=1", "r=2"}
    # wall time and the process's CPU time (which a paused process does not count): on one thread, close
    assert 0 < rec["cpu_seconds"] <= 1.5 * rec["seconds"] + 0.5, rec
    assert checkpoints.available(tmp_path) == ["tiny"]
    checkpoints.check("tiny", tmp_path)
    # the same recipe trained again gives the same weights (seeded): the checkpoint is reproducible on one machine
    rec2 = checkpoints.train("tiny", tmp_path / "again")
    assert rec2["held_out"]["values"] == rec["held_out"]["values"]


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown checkpoint"):
        checkpoints.load("mnist-local-c99")
    with pytest.raises(FileNotFoundError, match="python -m localdiff_lib.checkpoints train"):
        checkpoints.record("mnist-local-c16", tmp_path)


def test_doubling_recipe_stops_when_converged_and_resumes(tmp_path, monkeypatch, one_thread):
    # a recipe with `doubling` measures the held-out loss at 40, 80, 160 steps; `until` stops between doublings and
    # the same command goes on from the saved state, giving the weights of an uninterrupted run
    recipe = dict(dataset="mnist", note="test", models={"r=1": ["LocalDenoiser", dict(radius=1, channels=4, depth=2)]},
                  fit=dict(batch_size=16, lr=2e-3, warmup=10, seed=0), doubling=dict(first=40, max=160, tol=0.0))
    monkeypatch.setitem(checkpoints.RECIPES, "tiny", recipe)
    monkeypatch.setattr(checkpoints, "HELD_OUT", 64)
    assert checkpoints.schedule(recipe) == [40, 80, 160]
    part = checkpoints.train("tiny", tmp_path / "a", until=80)
    assert part["steps"] == 80 and not part["complete"] and part["held_out_curve"]["steps"] == [40, 80]
    assert (tmp_path / "a" / "tiny" / checkpoints.WORK_FILE).exists()
    # the printed summary of a record with one measurement says so (no doubling to compare)
    checkpoints.train("tiny", tmp_path / "e", until=40)
    one = checkpoints.summary("tiny", tmp_path / "e")
    assert "r=1 " in one and "(one measurement, not converged)" in one
    done = checkpoints.train("tiny", tmp_path / "a")
    whole = checkpoints.train("tiny", tmp_path / "b")
    assert done["complete"] and done["steps"] == 160 and done["held_out_curve"]["steps"] == [40, 80, 160]
    assert done["cpu_seconds"] > part["cpu_seconds"] > 0   # CPU time adds up over the calls, like the wall time
    assert done["held_out_curve"]["values"] == whole["held_out_curve"]["values"]
    assert done["sha256"] == whole["sha256"]
    c = done["held_out_curve"]
    assert c["converged"]["r=1"] == checkpoints.converged(c["values"]["r=1"], 0.0)
    # the training state goes when every model converged; a run that stopped at `max` unconverged keeps it, and a
    # recipe with a larger `max` goes on from it to the weights of an uninterrupted run
    assert (tmp_path / "a" / "tiny" / checkpoints.WORK_FILE).exists() == (not c["converged"]["r=1"])
    if not c["converged"]["r=1"]:
        longer = dict(recipe, doubling=dict(first=40, max=320, tol=0.0))
        monkeypatch.setitem(checkpoints.RECIPES, "tiny", longer)
        more = checkpoints.train("tiny", tmp_path / "a")
        assert more["steps"] == 320 and more["held_out_curve"]["steps"] == [40, 80, 160, 320]
        assert more["sha256"] == checkpoints.train("tiny", tmp_path / "d")["sha256"]
        monkeypatch.setitem(checkpoints.RECIPES, "tiny", recipe)
    # a tolerance that any doubling meets stops after the second measurement
    monkeypatch.setitem(checkpoints.RECIPES, "tiny", dict(recipe, doubling=dict(first=40, max=160, tol=10.0)))
    early = checkpoints.train("tiny", tmp_path / "c")
    assert early["complete"] and early["steps"] == 80 and early["held_out_curve"]["converged"] == {"r=1": True}


def test_converged_is_the_last_doubling_rule():
    assert checkpoints.converged([1.0, 0.995], 0.01) and not checkpoints.converged([1.0, 0.98], 0.01)
    assert not checkpoints.converged([1.0], 0.01)  # one measurement says nothing about convergence



@pytest.mark.parametrize("name", ["mnist-global-unet", "mnist-local-family", "mnist-classifier"])
def test_the_summary_states_each_models_last_doubling_and_verdict(name):
    rec, text = checkpoints.record(name), checkpoints.summary(name)
    assert text.startswith(f"{name}: {rec['steps']} steps at batch {rec['recipe']['fit']['batch_size']}, ")
    assert f"`{rec['command']}`" in text and ("time: " in text) == ("seconds_note" in rec)
    assert "time: " + rec.get("seconds_note", "") in text or "seconds_note" not in rec
    curve = rec.get("held_out_curve")
    assert ("held-out loss" in text) == (curve is not None)
    for key, values in (curve or {"values": {}})["values"].items():
        verdict = "converged" if curve["converged"][key] else "not converged"
        assert f"{key} {values[-2]:.4f} -> {values[-1]:.4f} ({values[-1] / values[-2] - 1:+.1%}, {verdict})" in text


def test_the_shipped_classifier_reaches_99_percent_on_the_whole_test_split():
    # the identity-loss and sample-quality measurements need a classifier of at least 99 % test accuracy
    # (recomputed here on all 10,000 MNIST test digits, never seen in training)
    from localdiff_lib import evaluate

    clf = checkpoints.classifier("mnist")
    assert isinstance(clf, evaluate.Classifier) and not clf.training
    test_images, test_labels = data.load_dataset("mnist", "test")
    acc = evaluate.accuracy(clf, test_images, test_labels)
    recorded = checkpoints.record("mnist-classifier")["held_out"]["values"]["classifier"]
    assert acc >= 0.99 and abs(acc - recorded) <= 2e-4, (acc, recorded)   # another CPU may flip a digit or two
