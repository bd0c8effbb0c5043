"""fit, held-out loss and checkpoints: determinism, resume == never stopping, mismatch errors, and the checkpoint
safety of fit: periodic atomic saves, a save on Ctrl-C, no silent overwrite, no resume with another config."""

from __future__ import annotations

import shutil
import signal

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from localdiff_lib import train
from localdiff_lib.models import GlobalUNet, LocalDenoiser
from localdiff_lib.train import fit, held_out_loss, load_checkpoint, save_checkpoint


def _images(n=64, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth blobs in [0, 1]: a random low-resolution pattern upsampled
    low = torch.rand(n, 1, size // 2, size // 2, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def _local(seed=0, **kw):
    torch.manual_seed(seed)
    return LocalDenoiser(radius=kw.pop("radius", 2), channels=kw.pop("channels", 4), emb_dim=8, image_size=8, **kw)


def test_fit_is_deterministic_under_a_fixed_seed():
    x = _images()
    h1 = fit(_local(), x, steps=6, batch_size=16, seed=3, progress=False)
    h2 = fit(_local(), x, steps=6, batch_size=16, seed=3, progress=False)
    h3 = fit(_local(), x, steps=6, batch_size=16, seed=4, progress=False)
    assert h1.losses.shape == (6,) and np.array_equal(h1.losses, h2.losses)
    assert not np.array_equal(h1.losses, h3.losses)
    assert h1.steps == 6 and h1.images_per_second > 0 and h1.ms_per_step > 0


def test_training_lowers_the_held_out_loss():
    x, held = _images(256), _images(128, seed=1)
    model = _local(radius=1, channels=8)
    before = held_out_loss(model, held)
    h = fit(model, x, steps=60, batch_size=32, lr=5e-3, held_out=held, progress=False, t_sampler="uniform")
    assert h.held_out[0] < 0.8 * before
    assert h.held_out[0] == pytest.approx(held_out_loss(model, held, t_sampler="uniform"), rel=1e-6)


def test_held_out_loss_is_fixed_and_independent_of_batch_size():
    model, held = _local(), _images(50, seed=2)
    a = held_out_loss(model, held, batch_size=7)
    assert a == pytest.approx(held_out_loss(model, held, batch_size=50), rel=1e-6)
    assert a == held_out_loss(model, held, batch_size=7)
    assert a != held_out_loss(model, held, seed=99)


@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_equals_never_stopping(tmp_path, ema):
    x = _images()
    straight = _local()
    h = fit(straight, x, steps=8, batch_size=16, ema=ema, progress=False)
    ck = tmp_path / "ck.pt"
    part = _local()
    fit(part, x, steps=5, batch_size=16, ema=ema, checkpoint=ck, progress=False)
    resumed = _local(seed=7)  # different initial weights: everything must come from the checkpoint
    h2 = fit(resumed, x, steps=8, batch_size=16, ema=ema, checkpoint=ck, resume=True, progress=False)
    assert h2.start_step == 5 and h2.steps == 8 and len(h2.losses) == 8
    assert np.array_equal(h2.losses, h.losses)
    for k, v in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    blob = load_checkpoint(ck, _local())
    assert blob["step"] == 8 and blob["config"]["fit"]["batch_size"] == 16


def test_ema_weights_are_an_average():
    x = _images()
    model = _local()
    w0 = model.conv_in.weight.detach().clone()
    raw = _local()
    fit(raw, x, steps=3, batch_size=16, progress=False)
    fit(model, x, steps=3, batch_size=16, ema=0.5, progress=False)
    # after 3 steps the EMA (decays 0.1, 2/11, 0.25: the warm-up) averages w0..w3: between w0 and the raw w3
    d_ema, d_raw = (model.conv_in.weight - w0).norm(), (raw.conv_in.weight - w0).norm()
    assert 0 < d_ema < d_raw
    # exactly: after one update the decay is min(ema, 1/10), so the EMA is 0.1 w0 + 0.9 w1 (not 0.999 w0)
    one_raw, one_ema = _local(), _local()
    fit(one_raw, x, steps=1, batch_size=16, progress=False)
    fit(one_ema, x, steps=1, batch_size=16, ema=0.999, progress=False)
    for p0, p1, pe in zip(_local().parameters(), one_raw.parameters(), one_ema.parameters()):
        torch.testing.assert_close(pe, 0.1 * p0 + 0.9 * p1)


def test_several_models_train_as_if_alone():
    x = _images()
    a, b = _local(radius=1), _local(radius=3, seed=1)
    h = fit([a, b], x, steps=5, batch_size=16, progress=False)
    alone = _local(radius=3, seed=1)
    h_b = fit(alone, x, steps=5, batch_size=16, progress=False)
    assert h.losses.shape == (5, 2) and len(h.held_out) == 2
    np.testing.assert_allclose(h.losses[:, 1], h_b.losses, rtol=1e-5)
    for k, v in alone.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_seconds_budget_stops(tmp_path):
    h = fit(_local(), _images(), seconds=0.5, batch_size=8, progress=False)
    assert h.steps >= 1 and h.seconds < 30


def test_checkpoint_round_trip_and_mismatch_errors(tmp_path):
    model = _local(radius=2)
    ck = tmp_path / "m.pt"
    save_checkpoint(ck, model, step=3, config={"note": "x"})
    other = _local(radius=2, seed=5)
    blob = load_checkpoint(ck, other)
    assert blob["step"] == 3 and blob["config"] == {"note": "x"}
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="another config"):
        load_checkpoint(ck, _local(radius=3))
    with pytest.raises(ValueError, match="holds a LocalDenoiser"):
        load_checkpoint(ck, GlobalUNet(channels=(4, 4, 4)))
    with pytest.raises(ValueError, match="2 were given"):
        load_checkpoint(ck, [_local(), _local()])
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(ck, _local(), torch.optim.AdamW(_local().parameters()))

    class Plain(nn.Module):  # no config: the shapes are compared
        prediction = "velocity"

        def __init__(self, n):
            super().__init__()
            self.lin = nn.Linear(n, 1)

    save_checkpoint(ck, Plain(3))
    with pytest.raises(ValueError, match="shapes differ"):
        load_checkpoint(ck, Plain(4))
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(ck, _local())
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", _local())


def test_bad_inputs_are_clear_errors():
    x = _images()
    m = _local()
    with pytest.raises(ValueError, match="budget"):
        fit(m, x, progress=False)
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        fit(m, x * 2 - 0.5, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        fit(m, x[:, 0], steps=1, progress=False)
    with pytest.raises(ValueError, match="t_sampler"):
        fit(m, x, steps=1, t_sampler="beta", progress=False)
    with pytest.raises(ValueError, match="ema"):
        fit(m, x, steps=1, ema=1.5, progress=False)
    with pytest.raises(ValueError, match="prediction"):
        fit(nn.Conv2d(1, 1, 3), x, steps=1, progress=False)
    with pytest.raises(ValueError, match="t_sampler"):
        train.sample_t(3, "normal")


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(b.state_dict()[k], v) for k, v in a.state_dict().items())


def _on_update(fn):
    """Run ``fn(k)`` inside the k-th optimizer step (k = 1, 2, ...) of any optimizer: a callback from inside the
    update part of a training step. Returns the hook's handle (``.remove()`` it)."""
    calls = []

    def hook(optimizer, args, kwargs):
        calls.append(1)
        fn(len(calls))

    return register_optimizer_step_post_hook(hook)


NO_PERIODIC = dict(checkpoint_every=None, checkpoint_seconds=None)


@pytest.mark.parametrize("ema", [None, 0.9])
def test_keyboard_interrupt_saves_the_last_step_and_resumes_exactly(tmp_path, monkeypatch, ema):
    x = _images()
    straight = _local()
    h = fit(straight, x, steps=8, batch_size=16, ema=ema, progress=False)
    ck = tmp_path / "ck.pt"
    target, calls = train.path.target, []

    def interrupt_in_step_6(*args, **kw):  # the loss of step 6, after 5 complete steps (one model: one call a step)
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return target(*args, **kw)

    monkeypatch.setattr(train.path, "target", interrupt_in_step_6)
    with pytest.raises(KeyboardInterrupt):
        fit(_local(), x, steps=8, batch_size=16, ema=ema, checkpoint=ck, progress=False, **NO_PERIODIC)
    monkeypatch.undo()
    assert len(calls) == 6
    assert load_checkpoint(ck, _local())["step"] == 5  # written by the interrupt alone (no periodic saves)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    resumed = _local(seed=7)
    h2 = fit(resumed, x, steps=8, batch_size=16, ema=ema, checkpoint=ck, resume=True, progress=False)
    # the random state of step 6 was restored before saving: the resumed run draws the same batches
    assert h2.start_step == 5 and np.array_equal(h2.losses, h.losses)
    assert _same_weights(straight, resumed)


def test_ctrl_c_during_an_update_waits_for_the_end_of_the_step(tmp_path):
    x = _images()
    straight = _local()
    fit(straight, x, steps=8, batch_size=16, ema=0.9, progress=False)
    ck = tmp_path / "ck.pt"
    before = signal.getsignal(signal.SIGINT)
    # a real SIGINT right after the weights of step 4 changed, before its EMA update and step count
    handle = _on_update(lambda k: signal.raise_signal(signal.SIGINT) if k == 4 else None)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(_local(), x, steps=8, batch_size=16, ema=0.9, checkpoint=ck, progress=False, **NO_PERIODIC)
    finally:
        handle.remove()
    assert signal.getsignal(signal.SIGINT) is before  # fit's handler is gone
    assert load_checkpoint(ck, _local())["step"] == 4  # step 4 was completed, then the interrupt delivered
    resumed = _local(seed=7)
    fit(resumed, x, steps=8, batch_size=16, ema=0.9, checkpoint=ck, resume=True, progress=False)
    assert _same_weights(straight, resumed)


def test_periodic_checkpoints_are_written_atomically_during_training(tmp_path):
    x = _images()
    straight = _local()
    h = fit(straight, x, steps=10, batch_size=16, ema=0.9, progress=False)
    run = tmp_path / "run"
    ck = run / "ck.pt"
    seen = []

    def look(k):  # inside step k's update: what is on disk now?
        seen.append((torch.load(ck, weights_only=True)["step"] if ck.exists() else None,
                     sorted(p.name for p in run.iterdir()) if run.exists() else []))
        if k == 8:  # as if the process were killed now: keep what is on disk
            shutil.copy(ck, tmp_path / "killed.pt")

    handle = _on_update(look)
    try:
        fit(_local(), x, steps=10, batch_size=16, ema=0.9, checkpoint=ck, checkpoint_every=3, checkpoint_seconds=None,
            progress=False)
    finally:
        handle.remove()
    assert [s for s, _ in seen] == [None] * 3 + [3] * 3 + [6] * 3 + [9]
    assert all(names in ([], ["ck.pt"]) for _, names in seen)  # never a .tmp file
    assert sorted(p.name for p in run.iterdir()) == ["ck.pt"]
    assert load_checkpoint(ck, _local())["step"] == 10
    # the periodic checkpoint is complete: resuming it (step 6) gives the run that never stopped
    resumed = _local(seed=7)
    h2 = fit(resumed, x, steps=10, batch_size=16, ema=0.9, checkpoint=tmp_path / "killed.pt", resume=True,
             progress=False)
    assert h2.start_step == 6 and np.array_equal(h2.losses, h.losses)
    assert _same_weights(straight, resumed)


@pytest.mark.parametrize("every, seconds, saved",
                         [(None, 1e-9, [1, 2, 3, 4, 5]), (None, None, [5]), (2, None, [2, 4, 5])])
def test_checkpoint_every_steps_and_seconds(tmp_path, monkeypatch, every, seconds, saved):
    steps, save = [], train.save_checkpoint
    monkeypatch.setattr(train, "save_checkpoint", lambda *a, **kw: (steps.append(a[3]), save(*a, **kw)))
    fit(_local(), _images(), steps=5, batch_size=8, checkpoint=tmp_path / "ck.pt", checkpoint_every=every,
        checkpoint_seconds=seconds, progress=False)
    assert steps == saved
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit(_local(), _images(), steps=1, checkpoint_every=0, progress=False)
    with pytest.raises(ValueError, match="checkpoint_seconds"):
        fit(_local(), _images(), steps=1, checkpoint_seconds=-1, progress=False)


def test_an_existing_checkpoint_is_replaced_only_when_asked(tmp_path):
    x, ck = _images(), tmp_path / "ck.pt"
    fit(_local(), x, steps=3, batch_size=8, checkpoint=ck, progress=False)
    before = ck.read_bytes()
    with pytest.raises(FileExistsError) as err:
        fit(_local(), x, steps=2, batch_size=8, checkpoint=ck, progress=False)
    msg = str(err.value)
    assert str(ck) in msg and "step 3" in msg and "resume=True" in msg and "overwrite=True" in msg
    assert ck.read_bytes() == before
    with pytest.raises(ValueError, match="one of them"):
        fit(_local(), x, steps=4, batch_size=8, checkpoint=ck, resume=True, overwrite=True, progress=False)
    h = fit(_local(), x, steps=2, batch_size=8, checkpoint=ck, overwrite=True, progress=False)
    assert h.start_step == 0 and load_checkpoint(ck, _local())["step"] == 2
    h = fit(_local(), x, steps=2, batch_size=8, checkpoint=tmp_path / "new.pt", resume=True, progress=False)
    assert h.start_step == 0 and (tmp_path / "new.pt").exists()  # resume=True without a file starts a run


BASE = dict(batch_size=16, lr=1e-3, weight_decay=1e-3, warmup=2, ema=0.9, grad_clip=1.0, t_sampler="logit-normal",
            seed=0)


@pytest.mark.parametrize("key, value", [("batch_size", 8), ("lr", 2e-3), ("weight_decay", 0.0), ("warmup", 0),
                                        ("ema", 0.5), ("grad_clip", None), ("t_sampler", "uniform"), ("seed", 1)])
def test_resume_refuses_another_training_config(tmp_path, key, value):
    x, ck = _images(), tmp_path / "ck.pt"
    fit(_local(), x, steps=3, checkpoint=ck, progress=False, **BASE)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match="cannot resume") as err:
        fit(_local(), x, steps=5, checkpoint=ck, resume=True, progress=False, **{**BASE, key: value})
    assert f"{key}: ({BASE[key]!r}, {value!r})" in str(err.value)  # the key with (saved, given)
    assert ck.read_bytes() == before


def test_resume_lists_every_difference_models_included(tmp_path):
    x, ck = _images(), tmp_path / "ck.pt"
    fit(_local(), x, steps=3, checkpoint=ck, progress=False, **{**BASE, "ema": None})
    with pytest.raises(ValueError) as err:
        fit(_local(radius=3), x, steps=5, checkpoint=ck, resume=True, progress=False,
            **{**BASE, "seed": 2, "ema": 0.9})
    msg = str(err.value)
    assert "seed: (0, 2)" in msg and "ema: (None, 0.9)" in msg and "model 0 radius: (2, 3)" in msg
    with pytest.raises(ValueError, match=r"number of models: \(1, 2\)"):
        fit([_local(), _local()], x, steps=5, checkpoint=ck, resume=True, progress=False, **{**BASE, "ema": None})


def test_resume_without_ema_keeps_the_saved_ema(tmp_path):
    x, ck = _images(), tmp_path / "ck.pt"
    straight = _local()
    fit(straight, x, steps=8, batch_size=16, ema=0.9, progress=False)
    fit(_local(), x, steps=5, batch_size=16, ema=0.9, checkpoint=ck, progress=False)
    resumed = _local(seed=7)
    fit(resumed, x, steps=8, batch_size=16, checkpoint=ck, resume=True, progress=False)  # no ema=
    assert _same_weights(straight, resumed)  # the models hold the EMA weights, as with ema=0.9
    blob = load_checkpoint(ck, _local())
    assert blob["ema"] is not None and blob["config"]["fit"]["ema"] == 0.9 and blob["step"] == 8


def test_resume_of_a_checkpoint_that_records_fewer_settings(tmp_path):
    x, ck = _images(), tmp_path / "ck.pt"
    fit(_local(), x, steps=3, batch_size=8, checkpoint=ck, progress=False)
    blob = torch.load(ck, weights_only=True)
    for key in ("warmup", "grad_clip"):  # not recorded by earlier versions of fit: not compared
        del blob["config"]["fit"][key]
    torch.save(blob, ck)
    h = fit(_local(), x, steps=5, batch_size=8, checkpoint=ck, resume=True, warmup=4, progress=False)
    assert h.start_step == 3 and h.steps == 5
