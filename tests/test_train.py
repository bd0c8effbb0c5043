"""fit, held-out loss and checkpoints: determinism, resume == never stopping, mismatch errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

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
    # after 3 steps with decay 0.5 the EMA is 1/8 w0 + 1/8 w1 + 1/4 w2 + 1/2 w3: between w0 and the raw w3
    d_ema, d_raw = (model.conv_in.weight - w0).norm(), (raw.conv_in.weight - w0).norm()
    assert 0 < d_ema < d_raw


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
