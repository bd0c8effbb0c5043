"""Models and locality: exact receptive fields, input validation, exact multiply-add counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from localdiff_lib import models
from localdiff_lib.locality import footprint_radius, gradient_footprint, is_local, window
from localdiff_lib.models import GlobalUNet, LocalDenoiser, count_macs, count_parameters


@pytest.mark.parametrize("r", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("pixel", [(14, 14), (3, 20), (0, 0), (27, 13)])
def test_local_denoiser_footprint_is_exactly_the_window(r, pixel):
    torch.manual_seed(r)
    model = LocalDenoiser(radius=r, channels=4, emb_dim=8)
    mask = gradient_footprint(model, pixel, image_size=28, t=0.3)
    # zero outside the (2r+1)^2 window, non-zero everywhere inside it (including its border), clipped at the image edge
    assert torch.equal(mask, window(28, pixel, r))
    assert footprint_radius(mask, pixel) == min(r, max(pixel[0], 27 - pixel[0], pixel[1], 27 - pixel[1]))


def test_largest_radius_sees_the_whole_image_from_a_corner():
    model = LocalDenoiser(radius=27, channels=2, emb_dim=4)
    mask = gradient_footprint(model, (0, 0))
    assert bool(mask.all())
    assert is_local(model, 27) and not is_local(model, 26)


def test_local_denoiser_is_local_on_other_image_sizes_and_times():
    model = LocalDenoiser(radius=4, channels=3, emb_dim=8)
    for t in (0.0, 1.0):
        mask = gradient_footprint(model, (10, 7), image_size=(20, 16), t=t)
        assert torch.equal(mask, window((20, 16), (10, 7), 4))


def test_a_groupnorm_network_is_not_local():
    class Leaky(nn.Module):  # one 3x3 conv then GroupNorm over the whole map: leaks global statistics
        prediction = "velocity"

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.norm = nn.GroupNorm(1, 4)
            self.out = nn.Conv2d(4, 1, 1)

        def forward(self, x, t):
            return self.out(self.norm(self.conv(x)))

    torch.manual_seed(0)
    mask = gradient_footprint(Leaky(), (14, 14))
    assert bool(mask.all())
    assert footprint_radius(mask, (14, 14)) == 14
    assert not is_local(Leaky(), 1)


def test_global_unet_footprint_covers_the_image():
    torch.manual_seed(0)
    model = GlobalUNet(channels=(8, 8, 8), emb_dim=16)
    mask = gradient_footprint(model, (0, 0))
    assert bool(mask.all())
    assert model.radius is None


def test_footprint_does_not_change_the_model():
    model = LocalDenoiser(radius=2, channels=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradient_footprint(model, (5, 5))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32


def test_footprint_radius_of_hand_made_masks():
    m = torch.zeros(9, 9, dtype=torch.bool)
    assert footprint_radius(m, (4, 4)) == -1
    m[4, 4] = True
    assert footprint_radius(m, (4, 4)) == 0
    m[1, 6] = True
    assert footprint_radius(m, (4, 4)) == 3
    with pytest.raises(ValueError, match="outside"):
        footprint_radius(m, (9, 0))


@pytest.mark.parametrize("cls", [LocalDenoiser, GlobalUNet])
def test_forward_shapes_and_prediction_attribute(cls):
    model = cls(radius=3) if cls is LocalDenoiser else cls(channels=(8, 16, 16))
    x = torch.rand(5, 1, 28, 28)
    out = model(x, torch.rand(5))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(model(x, 0.25), model(x, torch.full((5,), 0.25)))
    assert model.prediction == "velocity"
    assert cls(**{**model.config, "prediction": "noise"}).prediction == "noise"


def test_time_conditioning_changes_the_output():
    model = LocalDenoiser(radius=2, channels=4)
    x = torch.rand(2, 1, 10, 10)
    assert not torch.allclose(model(x, 0.1), model(x, 0.9))


@pytest.mark.parametrize("radius", [0, -1, 2.0, True, 28, 100])
def test_bad_radius_is_a_clear_error(radius):
    with pytest.raises(ValueError, match="radius"):
        LocalDenoiser(radius=radius)


def test_radius_limit_follows_image_size():
    LocalDenoiser(radius=9, image_size=10)
    with pytest.raises(ValueError, match="larger than a 10x10 image"):
        LocalDenoiser(radius=10, image_size=10)


@pytest.mark.parametrize("cls", [LocalDenoiser, GlobalUNet])
def test_bad_inputs_are_clear_errors(cls):
    model = cls(radius=2, channels=4) if cls is LocalDenoiser else cls(channels=(8, 8, 8))
    x = torch.rand(3, 1, 28, 28)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.rand(3, 28, 28), torch.rand(3))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.rand(3, 3, 28, 28), torch.rand(3))
    with pytest.raises(ValueError, match="floating point"):
        model((x * 255).to(torch.uint8), torch.rand(3))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        model(x, torch.rand(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(x, torch.tensor([0.5, 1.2, 0.1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(x, -0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(x, torch.tensor([0.5, float("nan"), 0.1]))
    with models.skip_value_checks():  # the inner loops of fit/samplers validate once up front
        model(x, torch.tensor([0.5, 1.2, 0.1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # and the check is back afterwards
        model(x, torch.tensor([0.5, 1.2, 0.1]))


def test_global_unet_rejects_other_image_sizes():
    with pytest.raises(ValueError, match="28x28"):
        GlobalUNet(channels=(8, 8, 8))(torch.rand(2, 1, 32, 32), 0.5)
    with pytest.raises(ValueError, match="divisible by 4"):
        GlobalUNet(image_size=30)


def test_bad_prediction_kind():
    with pytest.raises(ValueError, match="prediction"):
        LocalDenoiser(radius=2, prediction="score")


def test_count_macs_matches_a_hand_count():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 6)  # time: 6 MACs
            self.c1 = nn.Conv2d(1, 4, 3, padding=1)  # 4 * 10*10 outputs * 1*9 = 3600
            self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)  # 6 * 5*5 * 2*9 = 2700
            self.c3 = nn.Conv2d(6, 1, 1)  # 1 * 5*5 * 6 = 150

        def forward(self, x, t):
            s = self.lin(t[:, None])
            h = self.c3(self.c2(self.c1(x)) * s[:, :, None, None])
            return nn.functional.interpolate(h, size=x.shape[-2:])

    assert count_macs(Tiny(), image_size=10) == 6 + 3600 + 2700 + 150


def test_count_macs_of_local_denoiser_formula():
    r, c, e, hw = 4, 8, 16, 28 * 28
    model = LocalDenoiser(radius=r, channels=c, emb_dim=e)
    time_mlp = 2 * e * e
    films = (r - 1 + 1) * e * 2 * c
    convs = hw * (9 * c + (r - 1) * 9 * c * c + c * c + c)
    assert count_macs(model) == time_mlp + films + convs
    # cost grows linearly in r: the increment per radius is one 3x3 conv plus one FiLM
    step = count_macs(LocalDenoiser(radius=r + 1, channels=c, emb_dim=e)) - count_macs(model)
    assert step == hw * 9 * c * c + e * 2 * c


def test_count_parameters():
    model = LocalDenoiser(radius=1, channels=2, emb_dim=4)
    # time MLP 2*(4*4+4), conv_in 2*9+2, film_out 4*4+4, head 2*2+2 + 2+1
    assert count_parameters(model) == 40 + 20 + 20 + 6 + 3
    assert count_parameters(GlobalUNet()) > count_parameters(LocalDenoiser(radius=3))


def test_build_model_round_trip():
    for m in (LocalDenoiser(radius=3, channels=8, prediction="noise"), GlobalUNet(channels=(8, 16, 16))):
        m2 = models.build_model(type(m).__name__, m.config)
        assert type(m2) is type(m) and m2.config == m.config
        assert {k: v.shape for k, v in m2.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match="unknown model class"):
        models.build_model("Transformer", {})


@pytest.mark.parametrize("r", [1, 3, 5])
def test_fixed_depth_local_denoiser_keeps_its_window(r):
    # depth 5 whatever r: 3x3 blocks make the window, 1x1 blocks add depth and nothing to the footprint
    model = LocalDenoiser(radius=r, channels=4, depth=5)
    assert len(model.blocks) == 5
    mask = gradient_footprint(model, (14, 14), image_size=28, t=0.3)
    assert torch.equal(mask, window(28, (14, 14), r)) and footprint_radius(mask, (14, 14)) == r
    with pytest.raises(ValueError, match="depth >= 4"):
        LocalDenoiser(radius=5, channels=4, depth=2)


@pytest.mark.parametrize("r", [1, 2, 3, 4, 8])
def test_authors_local_cnn_reaches_about_twice_its_nominal_radius_and_groupnorm_makes_it_global(r):
    """The authors' design (chapter "Locality and receptive fields"): without GroupNorm its convolutions reach exactly
    2r - (r mod 2) pixels; with GroupNorm the centre output depends on every input pixel."""
    torch.manual_seed(r)
    plain = models.AuthorsLocalCNN(r, channels=8, norm=False).double()
    reach = 2 * r - r % 2
    assert plain.radius == reach and plain.nominal_radius == r
    size = 2 * reach + 5                                  # the whole footprint inside the image
    c = (size // 2, size // 2)
    assert footprint_radius(gradient_footprint(plain, pixel=c, image_size=size), c) == reach
    normed = models.AuthorsLocalCNN(r, channels=8).double()
    assert normed.radius is None and normed.prediction == "noise"
    assert bool(gradient_footprint(normed, pixel=(14, 14), image_size=29).all())
    m2 = models.build_model("AuthorsLocalCNN", normed.config)
    assert m2.config == normed.config
    with pytest.raises(ValueError, match="nominal radii 1..12; got 13"):
        models.AuthorsLocalCNN(13)
    with pytest.raises(TypeError, match="norm must be True or False"):
        models.AuthorsLocalCNN(1, norm=0)
