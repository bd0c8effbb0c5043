"""Recovery experiment, image grids, Fréchet distance (known answers on Gaussians), the classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from localdiff_lib import evaluate, path
from localdiff_lib.evaluate import frechet_distance, frechet_distance_from_stats, recovery_grid, recovery_mse
from localdiff_lib.models import LocalDenoiser
from localdiff_lib.sampling import HybridSchedule


class PointMassOracle(nn.Module):
    """The exact denoiser when every image equals the constant ``c`` (a radius-0 noise predictor)."""

    def __init__(self, c=0.3, prediction="noise"):
        super().__init__()
        self.c, self.prediction, self.radius = c, prediction, 0
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        tt = path.expand_t(t, x)
        z = (x - (1 - tt) * self.c) / tt.clamp_min(1e-12)
        return path.convert(z, "noise", self.prediction, x, t) + 0 * self.dummy


def test_an_exact_model_recovers_perfectly_at_every_T():
    images = torch.full((5, 1, 6, 6), 0.3)
    mse = recovery_mse(PointMassOracle(), images, [0.0, 0.2, 0.5, 0.9, 1.0], data_mean=torch.full((1, 6, 6), 0.3))
    assert mse.shape == (5,)
    assert np.all(mse < 1e-10)
    assert mse[0] == 0.0  # T = 0: nothing to undo


def test_identity_model_recovers_nothing_and_mse_grows_with_T():
    class Identity(nn.Module):  # predicts x0_hat = x_t: integrating its flow leaves x_T unchanged
        prediction, radius = "x0", 0

        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x, t):
            return x + 0 * self.dummy

    g = torch.Generator().manual_seed(0)
    images = torch.rand(50, 1, 8, 8, generator=g)
    Ts = [0.1, 0.3, 0.6]
    mse = recovery_mse(Identity(), images, Ts, seed=4)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(4))
    expected = [float((path.interpolate(images, noise, T) - images).pow(2).mean()) for T in Ts]
    np.testing.assert_allclose(mse, expected, rtol=1e-4)
    per = recovery_mse(Identity(), images, Ts, seed=4, per_image=True)
    assert per.shape == (3, 50) and np.allclose(per.mean(1), mse)


def test_recovery_grid_rows_and_hybrid_input():
    torch.manual_seed(0)
    local = {r: LocalDenoiser(radius=r, channels=2, emb_dim=4) for r in (3, 1)}
    images = torch.rand(4, 1, 28, 28)
    oracle = PointMassOracle(prediction="velocity")
    oracle.radius = None  # exact for constant images at any radius; here it plays the global model
    grid = recovery_grid(local, oracle, images, [0.1, 0.4], steps_per_unit_time=10)
    assert grid.rows == [1, 3, "global"] and grid.shape == (3, 2) and np.asarray(grid).shape == (3, 2)
    assert grid[0, 1] == grid.mse[0, 1] and np.array_equal(grid.row("global"), grid.mse[2])
    # a schedule that is local-only gives the same numbers as the local model itself
    alone = recovery_mse(HybridSchedule.local_only(local[1]), images, [0.1, 0.4], steps_per_unit_time=10)
    np.testing.assert_array_equal(alone, grid.row(1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        recovery_mse(local[1], images, [0.5, 1.2])


def test_image_grid_layout():
    x = torch.arange(5 * 4, dtype=torch.float32).reshape(5, 1, 2, 2)
    g = evaluate.image_grid(x, nrow=3, padding=1)
    assert g.shape == (2 * 3 + 1, 3 * 3 + 1)
    assert np.array_equal(g[1:3, 1:3], x[0, 0].numpy()) and np.array_equal(g[4:6, 4:6], x[4, 0].numpy())
    assert g[0, 0] == 1.0 and g[4, 7] == 1.0  # padding, and the empty sixth cell
    with pytest.raises(ValueError, match="one-channel"):
        evaluate.image_grid(torch.zeros(2, 3, 4, 4))


def test_frechet_distance_of_gaussians_with_a_known_answer():
    # commuting covariances: d = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    exact = 1 + 0 + 4 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]  # a common rotation keeps them commuting
    d = frechet_distance_from_stats(rot @ mu1, rot @ np.diag(a) @ rot.T, rot @ mu2, rot @ np.diag(b) @ rot.T)
    assert d == pytest.approx(exact, abs=1e-9)
    # non-commuting 2x2 case against the closed form tr(C1)+tr(C2)-2 sqrt(tr(C1 C2) + 2 sqrt(det(C1 C2)))
    c1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    c2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    m = c1 @ c2
    closed = np.trace(c1) + np.trace(c2) - 2 * np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    assert frechet_distance_from_stats(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(closed, abs=1e-9)
    assert abs(frechet_distance_from_stats(np.zeros(2), c1, np.zeros(2), c1)) < 1e-9


def test_frechet_distance_of_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 3))
    y = rng.normal(size=(20000, 3)) * 2 + 1  # N(1, 4 I): distance 3 * 1 + 3 * (2 - 1)^2 = 6
    assert frechet_distance(x, y) == pytest.approx(6.0, abs=0.15)
    assert frechet_distance(torch.tensor(x), torch.tensor(x)) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(x, y[:, :2])


def test_classifier_learns_a_separable_toy_problem():
    # bright top half vs bright bottom half: any working classifier gets this right
    g = torch.Generator().manual_seed(0)
    n = 200
    labels = torch.randint(0, 2, (n,), generator=g)
    images = 0.2 * torch.rand(n, 1, 28, 28, generator=g)
    images[labels == 0, :, :14] += 0.6
    images[labels == 1, :, 14:] += 0.6
    clf = evaluate.train_classifier(images, labels, steps=30, batch_size=32, width=8, device="cpu")
    assert evaluate.accuracy(clf, images, labels) > 0.95
    assert evaluate.features(clf, images[:7]).shape == (7, 128)
    assert evaluate.predict(clf, images[:3]).sum(1).allclose(torch.ones(3))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        clf(torch.zeros(2, 1, 32, 32))


def test_precision_recall_on_a_one_dimensional_set_with_known_balls():
    # real points 0..4 with k = 1: every ball has radius 1 and the union is [-1, 5]; of the generated points 0.5
    # and 10 only the first is inside (precision 1/2); the generated balls have radius 9.5 and cover every real
    # point (recall 1)
    real = torch.arange(5.0)[:, None]
    fake = torch.tensor([[0.5], [10.0]])
    assert evaluate.precision_recall(real, fake, k=1) == (0.5, 1.0)


def test_precision_recall_identical_far_and_collapsed_sets():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 8, generator=g)
    assert evaluate.precision_recall(real, real.clone()) == (1.0, 1.0)
    assert evaluate.precision_recall(real, real + 100.0) == (0.0, 0.0)
    # mode collapse: every sample near one real point is realistic, but the samples cover almost none of the data
    collapsed = real[:1] + 0.01 * torch.randn(400, 8, generator=g)
    precision, recall = evaluate.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05, (precision, recall)
    # two samples of the same law: both close to one, neither exactly
    p2, r2 = evaluate.precision_recall(real, torch.randn(400, 8, generator=g))
    assert 0.6 < p2 < 1.0 and 0.6 < r2 < 1.0, (p2, r2)


def test_precision_recall_rejects_bad_input():
    real = torch.randn(10, 4)
    with pytest.raises(ValueError, match="same feature dimension"):
        evaluate.precision_recall(real, torch.randn(10, 3))
    with pytest.raises(ValueError, match="more than k = 3"):
        evaluate.precision_recall(real, torch.randn(3, 4))
    with pytest.raises(ValueError, match="finite"):
        evaluate.precision_recall(real, torch.full((10, 4), float("nan")))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        evaluate.precision_recall(real, torch.randn(10))


class MeanClassifier(nn.Module):
    """A stand-in classifier with known answers: class = the mean pixel times 10 (rounded down, at most 9);
    features = the pixels themselves."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def features(self, x):
        return x.flatten(1) + 0 * self.dummy

    def forward(self, x):
        cls = (x.mean(dim=(1, 2, 3)) * 10).floor().clamp(0, 9).long()
        return torch.nn.functional.one_hot(cls, 10).float() * 10 + 0 * self.dummy


def test_identity_kept_by_class_and_by_instance():
    clf = MeanClassifier()
    originals = torch.stack([torch.full((1, 4, 4), v) for v in (0.05, 0.15, 0.16, 0.55)])
    labels = torch.tensor([0, 1, 1, 5])
    # a perfect recovery keeps both
    c, i = evaluate.identity_kept(clf, originals.clone(), originals, labels)
    assert c.tolist() == [True] * 4 and i.tolist() == [True] * 4
    # swapping the two 1s keeps the class but not the instance; a shift into the next class loses the class while the
    # nearest original is still its own: the two measures answer different questions
    rec = originals[[0, 2, 1, 3]].clone()
    rec[3] += 0.1
    c, i = evaluate.identity_kept(clf, rec, originals, labels)
    assert c.tolist() == [True, True, True, False] and i.tolist() == [True, False, False, True]
    # a recovery outside [0, 1] is classified as it is, not refused or clipped
    c, _ = evaluate.identity_kept(clf, originals - 0.1, originals, labels)
    assert c.tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="one label per original"):
        evaluate.identity_kept(clf, originals, originals, labels[:3])


def test_loss_times_are_the_first_time_lost():
    kept = np.array([[True, True, True], [True, False, True], [False, False, True]])
    times = evaluate.loss_times(kept, [0.1, 0.2, 0.3])
    assert times[0] == 0.3 and times[1] == 0.2 and np.isinf(times[2])
    # lost once means lost at that time, even if a later T keeps it again (the onset, per image)
    assert evaluate.loss_times(np.array([[False], [True]]), [0.1, 0.2]).tolist() == [0.1]
    with pytest.raises(ValueError, match="boolean array"):
        evaluate.loss_times(kept.astype(int), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="increase"):
        evaluate.loss_times(kept, [0.3, 0.2, 0.1])


def test_sample_quality_tells_real_digits_from_collapsed_ones(one_thread):
    # with the shipped classifier: a third real set sits at the floor and covers the data; copies of one digit are
    # realistic (precision) but cover nothing else (recall), have one class (TV 0.9) and sit on a training image
    from localdiff_lib import checkpoints, data

    clf = checkpoints.classifier("mnist")
    test_images, _ = data.load_dataset("mnist", "test")
    train_images, _ = data.load_dataset("mnist", "train")
    real, floor, other = test_images[:300], test_images[300:600], test_images[600:900]
    good = evaluate.sample_quality(clf, other, real, floor, train_images[:5000], n_boot=50)
    bad = evaluate.sample_quality(clf, train_images[:1].repeat(300, 1, 1, 1), real, floor, train_images[:5000], n_boot=50)
    assert good.n == 300 and good.fd < 2 * good.fd_floor and bad.fd > 10 * good.fd, (good, bad)
    assert good.recall > 0.6 and bad.recall < 0.05 and bad.precision == 1.0, (good, bad)
    for q in (good, bad):   # intervals of means contain their mean
        for v, (lo, hi) in ((q.precision, q.precision_ci), (q.recall, q.recall_ci), (q.nn_distance, q.nn_distance_ci)):
            assert lo <= v <= hi, (v, lo, hi)
    assert good.class_tv < 0.15 and good.class_tv_floor < 0.15 and abs(bad.class_tv - 0.9) < 1e-12
    assert sum(bad.class_hist) == 300 and max(bad.class_hist) == 300
    assert bad.nn_distance < 1e-3 < 0.02 < good.nn_distance, (good.nn_distance, bad.nn_distance)  # float32: ~1e-3
    assert "Fréchet" in str(good)
    with pytest.raises(ValueError, match="as many images as samples"):
        evaluate.sample_quality(clf, other[:100], real, floor, train_images[:100])


def test_r_squared_known_values_and_errors():
    y = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [1.0, 1.0]]])        # 2 images, variances 5 and 1
    assert np.allclose(evaluate.r_squared(y.clone(), y), [1.0, 1.0])
    mean = y.mean((1, 2), keepdim=True).expand_as(y)
    assert np.allclose(evaluate.r_squared(mean, y), [0.0, 0.0])                       # the target's own mean
    shifted = y + 1.0                                                                # residual 4 (image 0), 4 (image 1)
    assert np.allclose(evaluate.r_squared(shifted, y), [1 - 4 / 5, 1 - 4 / 1])         # and it can be negative
    assert evaluate.r_squared(y, y).dtype == np.float64
    with pytest.raises(ValueError, match="same shape"):
        evaluate.r_squared(y[:1], y)
    with pytest.raises(ValueError, match=r"constant target image \(images \[1\]\)"):
        evaluate.r_squared(y, torch.stack([y[0], torch.ones(2, 2)]))
    with pytest.raises(ValueError, match="finite"):
        evaluate.r_squared(torch.full_like(y, float("nan")), y)
    with pytest.raises(ValueError, match="two tensors; got ndarray"):
        evaluate.r_squared(y.numpy(), y)


def test_crossing_time_interpolates_and_has_clear_ends():
    T = [0.1, 0.2, 0.3, 0.4]
    assert evaluate.crossing_time(T, [1.0, 0.8, 0.4, 0.2], 0.5) == pytest.approx(0.2 + 0.3 / 0.4 * 0.1)
    assert evaluate.crossing_time(T, [0.4, 0.3, 0.2, 0.1], 0.5) == 0.1             # already below at the first T
    assert evaluate.crossing_time(T, [1.0, 0.9, 0.8, 0.7], 0.5) == math.inf        # never below on the grid
    assert evaluate.crossing_time(T, [1.0, 0.4, 0.9, 0.2], 0.5) == pytest.approx(0.1 + 0.5 / 0.6 * 0.1)  # the first
    with pytest.raises(ValueError, match="one value per T"):
        evaluate.crossing_time(T, [1.0, 0.5], 0.5)
    with pytest.raises(ValueError, match="increase"):
        evaluate.crossing_time([0.2, 0.1], [1.0, 0.5], 0.5)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        evaluate.crossing_time(T, [1.0, 0.8, 0.4, 0.2], 1.5)


def test_identity_curves_of_an_exact_point_mass_model():
    """The exact denoiser of the constant image 0.32 returns it from every T > 0 (and the image itself from T = 0):
    only the original of class 3 (mean 0.35) keeps its class, and only it is nearest to 0.32."""
    originals = torch.stack([torch.full((1, 4, 4), v) for v in (0.05, 0.35, 0.55)])
    labels = torch.tensor([0, 3, 5])
    cls, inst = evaluate.identity_curves(PointMassOracle(0.32), originals, labels, MeanClassifier(), [0.0, 0.5, 0.9])
    assert cls.shape == inst.shape == (3, 3) and cls.dtype == bool
    assert cls.tolist() == [[True] * 3, [False, True, False], [False, True, False]]
    assert inst.tolist() == cls.tolist()
    # the solver is passed through: the authors' sampler (its own recovery, judged the same way)
    noise = torch.randn(originals.shape, generator=torch.Generator().manual_seed(5))
    cls_a, inst_a = evaluate.identity_curves(PointMassOracle(0.32), originals, labels, MeanClassifier(), [0.9],
                                             solver="authors", noise=noise)
    rec, _ = evaluate.recover(PointMassOracle(0.32), originals, 0.9, solver="authors", noise=noise)
    euler, _ = evaluate.recover(PointMassOracle(0.32), originals, 0.9, noise=noise)
    assert not torch.allclose(rec, euler)
    want = evaluate.identity_kept(MeanClassifier(), rec, originals, labels)
    assert cls_a[0].tolist() == want[0].tolist() and inst_a[0].tolist() == want[1].tolist()
