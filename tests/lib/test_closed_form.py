"""Closed-form denoisers: exact answers on tiny training sets, a brute-force loop, footprints, interface, errors."""

import math

import pytest
import torch

from localdiff_lib import closed_form as cf
from localdiff_lib import evaluate, locality, models, path
from localdiff_lib.checks import InputError


def _rand_images(n, size=6, seed=0, dtype=torch.float64):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _brute_local(x, t, train, r):
    """Pixel by pixel, image by image: the posterior mean of the centre given the zero-padded window."""
    B, _, H, W = x.shape
    out = torch.zeros_like(x)
    xp = torch.nn.functional.pad(x, (r, r, r, r))
    tp = torch.nn.functional.pad(train, (r, r, r, r))
    for b in range(B):
        tb = float(t[b])
        for i in range(H):
            for j in range(W):
                win = xp[b, 0, i:i + 2 * r + 1, j:j + 2 * r + 1]
                d = torch.stack([(win - (1 - tb) * tp[n, 0, i:i + 2 * r + 1, j:j + 2 * r + 1]).square().sum()
                                 for n in range(train.shape[0])])
                if tb == 0:
                    w = (d == d.min()).double()
                    w = w / w.sum()
                else:
                    w = torch.softmax(-d / (2 * tb * tb), 0)
                out[b, 0, i, j] = (w * train[:, 0, i, j]).sum()
    return out


def test_one_training_image_is_returned_for_every_x_and_t():
    img = _rand_images(1, 5)
    x = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    for t in (0.0, 0.01, 0.3, 0.9, 1.0):
        assert torch.equal(cf.ideal_x0(x, t, img), img.expand_as(x))
        for r in (0, 1, 4):
            assert torch.allclose(cf.local_x0(x, t, img, r), img.expand_as(x), atol=1e-15, rtol=0)


def test_two_images_weights_match_hand_computation():
    a = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    b = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    train = torch.cat([a, b])
    x = torch.full((1, 1, 2, 2), 0.2, dtype=torch.float64)
    t = 0.4
    d_a = 4 * 0.2**2                     # |x - 0.6 * 0|^2 over 4 pixels: 0.16
    d_b = 4 * (0.2 - 0.6) ** 2           # |x - 0.6 * 1|^2: 0.64
    w_b = 1 / (1 + math.exp((d_b - d_a) / (2 * t * t)))   # = 1 / (1 + e^1.5)
    logw = cf.ideal_log_weights(x, t, train)
    assert logw.exp()[0, 1].item() == pytest.approx(w_b, rel=1e-12)
    assert logw.exp().sum().item() == pytest.approx(1.0, rel=1e-14)
    assert torch.allclose(cf.ideal_x0(x, t, train), torch.full_like(x, w_b), rtol=1e-12, atol=0)


def test_zero_and_one_time_limits():
    train = _rand_images(5, 4)
    x = train[2:3] + 0.01 * torch.ones_like(train[2:3])
    assert torch.equal(cf.ideal_x0(x, 0.0, train), train[2:3])                    # t = 0: nearest training image
    assert torch.allclose(cf.ideal_x0(x, 1.0, train), train.mean(0, keepdim=True), atol=1e-15)  # t = 1: the mean
    assert torch.allclose(cf.ideal_x0(x, 1e-4, train), train[2:3], atol=1e-12)   # the limit t -> 0 is continuous
    # exact tie at t = 0: equal weights on the two nearest images
    tie = torch.cat([torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2), 5 * torch.ones(1, 1, 2, 2)]).double()
    w = cf.ideal_log_weights(torch.full((1, 1, 2, 2), 0.5, dtype=torch.float64), 0.0, tie).exp()
    assert torch.equal(w, torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64))


def test_per_sample_times_in_one_batch():
    train = _rand_images(7, 5, seed=3)
    x = torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    both = cf.ideal_x0(x, t, train)
    for k in range(3):
        assert torch.allclose(both[k:k + 1], cf.ideal_x0(x[k:k + 1], float(t[k]), train), atol=1e-14)
    loc = cf.local_x0(x, t, train, 1)
    for k in range(3):
        assert torch.allclose(loc[k:k + 1], cf.local_x0(x[k:k + 1], float(t[k]), train, 1), atol=1e-14)


@pytest.mark.parametrize("r", [0, 1, 2])
def test_local_matches_brute_force_loop(r, monkeypatch):
    train = _rand_images(6, 5, seed=5)
    train[3] = train[1]                                         # a duplicate: exact ties at t = 0
    x = torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x[0] = train[4]                                             # a training image queried at t = 0
    t = torch.tensor([0.0, 0.3, 0.8], dtype=torch.float64)
    want = _brute_local(x, t, train, r)
    assert torch.allclose(cf.local_x0(x, t, train, r), want, atol=1e-12, rtol=0)
    monkeypatch.setattr(cf, "CHUNK_ELEMENTS", 1)               # one training image per chunk: the streaming softmax
    assert torch.allclose(cf.local_x0(x, t, train, r), want, atol=1e-12, rtol=0)


def test_ideal_chunks_agree(monkeypatch):
    train = _rand_images(9, 4, seed=7)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    want = cf.ideal_x0(x, 0.35, train)
    monkeypatch.setattr(cf, "CHUNK_ELEMENTS", 16)
    assert torch.allclose(cf.ideal_x0(x, 0.35, train), want, atol=1e-14)


def test_local_with_whole_image_window_equals_ideal_at_centre():
    train = _rand_images(8, 7, seed=9)
    x = torch.randn(4, 1, 7, 7, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    for t in (0.0, 0.2, 0.6, 1.0):
        loc = cf.local_x0(x, t, train, 3)[:, 0, 3, 3]          # r = 3 covers the whole 7x7 image from (3, 3)
        glob = cf.ideal_x0(x, t, train)[:, 0, 3, 3]
        assert torch.allclose(loc, glob, atol=1e-12, rtol=0), (t, loc, glob)
    # away from the centre the same window misses part of the image, and the two differ
    assert not torch.allclose(cf.local_x0(x, 0.3, train, 3)[:, 0, 0, 0], cf.ideal_x0(x, 0.3, train)[:, 0, 0, 0])


@pytest.mark.parametrize("r", [1, 2])
def test_local_footprint_is_exactly_the_window(r):
    train = _rand_images(12, 9, seed=11, dtype=torch.float32)
    model = cf.LocalPosteriorDenoiser(train, r)
    for pixel in [(4, 4), (0, 0), (8, 3)]:
        mask = locality.gradient_footprint(model, pixel=pixel, image_size=9, t=0.5)
        i, j = pixel
        want = torch.zeros(9, 9, dtype=torch.bool)
        want[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1] = True
        assert torch.equal(mask, want), (pixel, mask.int())
    # the ideal denoiser is global: its centre pixel depends on every input pixel
    assert bool(locality.gradient_footprint(cf.IdealDenoiser(train), pixel=(4, 4), image_size=9).all())


def test_module_interface_and_velocity_conversion():
    train = _rand_images(10, 6, seed=12, dtype=torch.float32)
    x = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(13))
    t = torch.tensor([0.2, 0.5, 1.0])
    for cls, args in [(cf.IdealDenoiser, ()), (cf.LocalPosteriorDenoiser, (2,))]:
        vel = cls(train, *args)
        x0m = cls(train, *args, prediction="x0")
        assert vel.prediction == "velocity" and x0m.prediction == "x0"
        assert vel.radius == (args[0] if args else None)
        assert models.count_parameters(vel) == 0 and vel.config["n_train"] == 10
        x0_hat = x0m(x, t)
        assert torch.allclose(vel(x, t), path.to_velocity(x0_hat, "x0", x, t), atol=1e-6)
        assert torch.allclose(path.to_x0(vel(x, t), "velocity", x, t), x0_hat, atol=1e-5)
        assert torch.isfinite(x0m(x, 0.0)).all()
        with pytest.raises(ValueError, match="infinite at t = 0"):
            vel(x, 0.0)
        assert vel.double()(x.double(), t.double()).dtype == torch.float64


def test_ideal_recovery_returns_a_training_image():
    """The ideal denoiser's flow memorises: a noised training image comes back (almost) exactly."""
    train = _rand_images(20, 6, seed=14, dtype=torch.float32)
    model = cf.IdealDenoiser(train)
    rec, _ = evaluate.recover(model, train[:4], 0.3, steps_per_unit_time=32, seed=0)
    nearest = torch.cdist(rec.reshape(4, -1), train.reshape(20, -1)).min(1)
    assert torch.equal(nearest.indices, torch.arange(4))
    assert float(nearest.values.max()) < 1e-3
    # the local closed-form model runs through the same sampler; with one training image it returns that image
    one = cf.LocalPosteriorDenoiser(train[:1], 1)
    rec, _ = evaluate.recover(one, torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(15)), 0.6,
                              steps_per_unit_time=5, seed=0)
    assert torch.allclose(rec, train[:1].expand(2, -1, -1, -1), atol=1e-5)


def test_errors_are_clear():
    train = _rand_images(3, 5)
    x = torch.zeros(2, 1, 5, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"shape \(N, 1, H, W\)"):
        cf.IdealDenoiser(train[:, 0])
    with pytest.raises(ValueError, match="floating point"):
        cf.IdealDenoiser((train * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        cf.IdealDenoiser(train * float("nan"))
    with pytest.raises(ValueError, match="at least one"):
        cf.IdealDenoiser(train[:0])
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="radius"):
            cf.LocalPosteriorDenoiser(train, bad)
    with pytest.raises(ValueError, match="'velocity' or 'x0'"):
        cf.IdealDenoiser(train, prediction="noise")
    with pytest.raises(ValueError, match="5x5; got noisy images of 4x4"):
        cf.ideal_x0(torch.zeros(2, 1, 4, 4, dtype=torch.float64), 0.5, train)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cf.local_x0(x, 1.5, train, 1)
    with pytest.raises(ValueError, match="shape"):
        cf.ideal_x0(x, torch.tensor([0.1, 0.2, 0.3]), train)


# ---------------------------------------------------------------------------------------------- equivariant


def _brute_equivariant(x, t, train, r):
    """Window by window: the posterior mean of a bank patch's centre, the bank being every zero-padded window of
    every training image at every position."""
    k = 2 * r + 1
    tp = torch.nn.functional.pad(train[:, 0], (r, r, r, r))
    bank = tp.unfold(1, k, 1).unfold(2, k, 1).reshape(-1, k, k)        # (N H W, k, k)
    centres = bank[:, r, r]
    B, _, H, W = x.shape
    xp = torch.nn.functional.pad(x, (r, r, r, r))
    out = torch.zeros_like(x)
    for b in range(B):
        tb = float(t[b])
        for i in range(H):
            for j in range(W):
                d = (xp[b, 0, i:i + k, j:j + k] - (1 - tb) * bank).square().sum((1, 2))
                w = (d == d.min()).double() / (d == d.min()).sum() if tb == 0 else torch.softmax(-d / (2 * tb * tb), 0)
                out[b, 0, i, j] = (w * centres).sum()
    return out


@pytest.mark.parametrize("r", [0, 1, 2])
def test_equivariant_matches_brute_force_loop(r, monkeypatch):
    train = _rand_images(4, 5, seed=12)
    train[3] = train[0]                                         # duplicate patches: merged with a count of 2
    train[2, :, :, :2] = 0                                      # zero columns: duplicate windows within one image
    x = torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    x[0] = train[1]                                             # a training image queried at t = 0
    x[0, :, 0, 0] = 0                                           # ... and a corner tied with the zero columns
    t = torch.tensor([0.0, 0.3, 0.8], dtype=torch.float64)
    want = _brute_equivariant(x, t, train, r)
    assert torch.allclose(cf.equivariant_local_x0(x, t, train, r), want, atol=1e-12, rtol=0)
    monkeypatch.setattr(cf, "CHUNK_ELEMENTS", 1)               # one query image and one training image per block
    assert torch.allclose(cf.equivariant_local_x0(x, t, train, r), want, atol=1e-12, rtol=0)


def test_equivariant_is_the_ideal_denoiser_of_the_patch_bank():
    """An independent route (the chapter's exercise): windows as tiny images, the bank as the training set."""
    r, k = 1, 3
    train = _rand_images(4, 6, seed=14)
    x = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(15), dtype=torch.float64)

    def windows(img):
        return torch.nn.functional.pad(img[:, 0], (r, r, r, r)).unfold(1, k, 1).unfold(2, k, 1).reshape(-1, 1, k, k)

    for t in (0.1, 0.5):
        via_ideal = cf.ideal_x0(windows(x), t, windows(train))[:, 0, r, r].reshape(x.shape)
        assert torch.allclose(cf.equivariant_local_x0(x, t, train, r), via_ideal, atol=1e-12, rtol=0)


def test_equivariant_commutes_with_translation_and_the_position_dependent_one_does_not():
    r = 1
    train = _rand_images(5, 8, seed=16)
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    x[..., :, :6] = torch.randn(1, 1, 8, 6, generator=torch.Generator().manual_seed(17), dtype=torch.float64)
    shifted = torch.roll(x, 1, dims=-1)                         # the last r + 1 columns of x are zero: nothing wraps
    for fn in (cf.equivariant_local_x0, cf.local_x0):
        out, out_s = fn(x, 0.4, train, r), fn(shifted, 0.4, train, r)
        same = torch.allclose(out_s[..., 1:], out[..., :-1], atol=1e-12, rtol=0)
        assert same == (fn is cf.equivariant_local_x0), fn.__name__


def test_equivariant_module_footprint_and_config():
    train = _rand_images(6, 9, seed=18, dtype=torch.float32)
    model = cf.LocalPosteriorDenoiser(train, 1, equivariant=True)
    assert model.config["equivariant"] is True and cf.LocalPosteriorDenoiser(train, 1).config["equivariant"] is False
    mask = locality.gradient_footprint(model, pixel=(4, 4), image_size=9, t=0.5)
    want = torch.zeros(9, 9, dtype=torch.bool)
    want[3:6, 3:6] = True
    assert torch.equal(mask, want)
    x = torch.rand(2, 1, 9, 9)
    assert torch.allclose(model.x0(x, 0.5), cf.equivariant_local_x0(x, 0.5, train, 1))
    with pytest.raises(TypeError, match="equivariant must be True or False; got 1"):
        cf.LocalPosteriorDenoiser(train, 1, equivariant=1)


def test_equivariant_ties_at_t0_count_repeated_patches():
    """Bank of pixel values {0, 1, 1} (r = 0): a query of 0.5 at t = 0 is as near to 0 as to 1, and 1 occurs twice."""
    train = torch.tensor([[[[0.0, 1.0, 1.0]]]], dtype=torch.float64)
    out = cf.equivariant_local_x0(torch.full((1, 1, 1, 3), 0.5, dtype=torch.float64), 0.0, train, 0)
    assert torch.allclose(out, torch.full_like(out, 2 / 3), atol=1e-15, rtol=0)


# ---------------------------------------------------------------------------------------------- interior ceiling


def _brute_interior(x, t, train, r, m, pixels):
    """Query by query: the posterior mean of a bank window's centre, the bank being every training image's window at
    every position at least m from the border."""
    H, W = train.shape[2:]
    out = []
    for b, (i, j) in enumerate(pixels.tolist()):
        y, tb = x[b, 0, i - r:i + r + 1, j - r:j + r + 1], float(t[b])
        d, c = [], []
        for n in range(train.shape[0]):
            for a in range(m, H - m):
                for e in range(m, W - m):
                    d.append((y - (1 - tb) * train[n, 0, a - r:a + r + 1, e - r:e + r + 1]).square().sum())
                    c.append(train[n, 0, a, e])
        d, c = torch.stack(d), torch.stack(c)
        w = (d == d.min()).double() / (d == d.min()).sum() if tb == 0 else torch.softmax(-d / (2 * tb * tb), 0)
        out.append((w * c).sum())
    return torch.stack(out)


@pytest.mark.parametrize("r,m", [(0, 1), (1, 1), (1, 2), (2, 3)])
def test_interior_matches_brute_force_loop(r, m, monkeypatch):
    train = _rand_images(5, 8, seed=21)
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(22), dtype=torch.float64)
    x[0] = train[2]                                             # a training image at t = 0: its own window wins
    t = torch.tensor([0.0, 0.02, 0.3, 0.7, 1.0], dtype=torch.float64)  # 0.02: logits far below e^-80 are clamped
    pixels = torch.tensor([[m, m], [m, 7 - m], [4, 4], [7 - m, m], [3, 4]])
    want = _brute_interior(x, t, train, r, m, pixels)
    assert torch.allclose(cf.interior_local_x0(x, t, train, r, m, pixels), want, atol=1e-12, rtol=0)
    assert float(cf.interior_local_x0(x[:1], 0.0, train, r, m, pixels[:1])) == float(train[2, 0, m, m])
    monkeypatch.setattr(cf, "CHUNK_ELEMENTS", 1)               # one training image per chunk of the bank
    assert torch.allclose(cf.interior_local_x0(x, t, train, r, m, pixels), want, atol=1e-12, rtol=0)


def test_interior_is_the_ideal_denoiser_of_the_interior_windows():
    """An independent route: the interior windows as tiny images, the ideal denoiser of that training set."""
    r, m, k = 1, 2, 3
    train = _rand_images(6, 9, seed=23)
    x = torch.randn(4, 1, 9, 9, generator=torch.Generator().manual_seed(24), dtype=torch.float64)
    pixels = torch.tensor([[2, 2], [6, 6], [4, 3], [5, 2]])
    bank = train[:, 0, m - r:9 - m + r, m - r:9 - m + r].unfold(1, k, 1).unfold(2, k, 1).reshape(-1, 1, k, k)
    queries = torch.stack([x[b, :, i - r:i + r + 1, j - r:j + r + 1] for b, (i, j) in enumerate(pixels.tolist())])
    for t in (0.1, 0.5):
        via_ideal = cf.ideal_x0(queries, t, bank)[:, 0, r, r]
        assert torch.allclose(cf.interior_local_x0(x, t, train, r, m, pixels), via_ideal, atol=1e-12, rtol=0)


def test_interior_errors_are_clear():
    train, x = _rand_images(3, 8), _rand_images(2, 8, seed=1)
    ok = torch.tensor([[3, 3], [4, 4]])
    with pytest.raises(InputError, match=r"margin .*at least the radius\) must be an integer in \[2, inf\]; got 1"):
        cf.interior_local_x0(x, 0.5, train, 2, 1, ok)
    with pytest.raises(InputError, match="margin 4 leaves no interior in 8x8 images"):
        cf.interior_local_x0(x, 0.5, train, 1, 4, ok)
    with pytest.raises(InputError, match=r"pixels must lie in the interior rows and columns 2..5 \(margin 2\); got \[1, 4\]"):
        cf.interior_local_x0(x, 0.5, train, 1, 2, torch.tensor([[3, 3], [1, 4]]))
    with pytest.raises(InputError, match=r"pixels must be an integer tensor of shape \(2, 2\)"):
        cf.interior_local_x0(x, 0.5, train, 1, 2, ok.double())
    with pytest.raises(InputError, match=r"shape \(2, 2\), one \(row, column\) per image; got \(1, 2\)"):
        cf.interior_local_x0(x, 0.5, train, 1, 2, ok[:1])


# ---------------------------------------------------------------------------------------------- pixel_gaps


def _brute_pixel_gap(x, t, train, r, pix):
    # every quantity from its definition, by loops over the training images, in float64
    i, j = pix
    a = 1 - t
    vals = sorted({float(v) for v in train[:, 0, i, j]})
    out = []
    for y in x.double():
        def post(mask):  # posterior over training images given the pixels where mask is True
            d = torch.stack([((y[0] - a * tr[0].double()) ** 2)[mask].sum() for tr in train])
            return torch.softmax(-d / (2 * t * t), 0)
        full = torch.ones(y.shape[1:], dtype=torch.bool)
        win = torch.zeros_like(full)
        win[i - r:i + r + 1, j - r:j + r + 1] = True
        not_a = full.clone(); not_a[i, j] = False
        b = win.clone(); b[i, j] = False

        def dist_a(w):  # the distribution of X0_A
            return torch.tensor([sum(float(w[n]) for n in range(len(train)) if float(train[n, 0, i, j]) == v)
                                 for v in vals], dtype=torch.float64)

        def kl(p, q):
            return float(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0))

        def log_p_a(w):  # log p(y_A | context) with posterior w over images given the context
            dens = sum(float(w[n]) * math.exp(-(float(y[0, i, j]) - a * float(train[n, 0, i, j])) ** 2 / (2 * t * t))
                       / math.sqrt(2 * math.pi * t * t) for n in range(len(train)))
            return math.log(dens)

        p, q = dist_a(post(full)), dist_a(post(win))
        v = torch.tensor(vals, dtype=torch.float64)
        out.append(((float(p @ v) - float(q @ v)) ** 2, kl(p, q), kl(dist_a(post(not_a)), dist_a(post(b))),
                    log_p_a(post(not_a)) - log_p_a(post(b))))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("t", [0.3, 0.7])
def test_pixel_gaps_match_their_definitions_and_obey_pinsker(t):
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 4, (9, 1, 5, 5), generator=g).double() / 3  # repeated pixel values: grouped posteriors
    x = (1 - t) * train[torch.randint(0, 9, (6,), generator=g)] + t * torch.randn(6, 1, 5, 5, generator=g).double()
    gaps = cf.pixel_gaps(x, t, train, [0, 1, 2], (2, 2))
    for r, gap in gaps.items():
        want = _brute_pixel_gap(x, t, train, r, (2, 2))
        got = torch.stack([gap.excess, gap.kl, gap.kl_b, gap.log_ratio], 1)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        assert bool((gap.excess <= gap.kl / 2 + 1e-15).all())  # Pinsker, image by image
    # the whole image as the window: no gap, no information left
    torch.testing.assert_close(gaps[2].excess, torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(gaps[2].kl, torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-12)


def test_pixel_gaps_chain_rule_holds_on_average_over_the_path():
    # I(X0_A : X_C | X_W) = I(X0_A : X_C | X_B) - I(X_A : X_C | X_B): an identity of expectations over x ~ p_t
    g = torch.Generator().manual_seed(1)
    train = torch.randint(0, 3, (5, 1, 5, 5), generator=g).float() / 2
    t, n = 0.4, 40_000
    x = (1 - t) * train[torch.randint(0, 5, (n,), generator=g)] + t * torch.randn(n, 1, 5, 5, generator=g)
    gap = cf.pixel_gaps(x, t, train, [1], (2, 2))[1]
    diff = gap.kl - (gap.kl_b - gap.log_ratio)
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(n) + 1e-3, (diff.mean(), diff.std())
    assert gap.kl.mean().item() > 0.05  # the test is not trivial: the far pixels do carry information


def test_pixel_gaps_errors_are_clear():
    train = torch.rand(4, 1, 5, 5)
    with pytest.raises(InputError, match="0 < t"):
        cf.pixel_gaps(torch.rand(2, 1, 5, 5), 0.0, train, [1], (2, 2))
    with pytest.raises(InputError, match="inside the 5x5 image"):
        cf.pixel_gaps(torch.rand(2, 1, 5, 5), 0.5, train, [3], (2, 2))
