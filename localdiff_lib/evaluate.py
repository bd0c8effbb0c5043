"""Evaluating denoisers: the paper's recovery experiment, image grids, a small classifier and a Fréchet distance.

Recovery (chapter "Local versus global denoisers"): noise held-out images to time ``T`` with seeded noise, integrate the
probability-flow ODE back to ``t = 0`` with a model (or a hybrid schedule), and report the mean squared
error against the clean images, for a grid of ``T`` and of radii ``r`` (receptive-field radius) plus the
global model. The same noise draw is used for every ``T`` and every model, so rows and columns differ only
by the model and the time.

Sample quality: :class:`Classifier` is a small MNIST/Fashion-MNIST CNN trained in-house (no downloads); its
penultimate features give a Fréchet distance (:func:`frechet_distance`, a matrix square root by
eigendecomposition, no scipy) and precision and recall on the feature manifold (:func:`precision_recall`), gathered
with the class balance and the nearest-training distance by :func:`sample_quality`; its predictions and features tell
when a recovered digit has lost its class or its instance (:func:`identity_kept`, :func:`loss_times`). The course
ships a 99 % MNIST classifier (:func:`localdiff_lib.checkpoints.classifier`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import path
from .checks import InputError, finite_numbers, images as check_images, integer, number, unit_times
from .config import default_device
from .models import check_global
from .sampling import as_schedule, ode_solve, steps_for


def _check_T(T_values) -> list[float]:
    return unit_times(T_values, "the noise times T").tolist()


@torch.no_grad()
def recover(
    model_or_schedule,
    images: torch.Tensor,
    T: float,
    *,
    steps_per_unit_time: int = 32,
    solver: str = "euler",
    seed: int = 0,
    data_mean: torch.Tensor | None = None,
    batch_size: int = 1000,
    noise: torch.Tensor | None = None,
):
    """Noise ``images`` to time ``T`` (seeded noise, or the ``noise`` given) and integrate back to ``t = 0``.

    Returns ``(recovered, noised)``. The step size is at most ``1 / steps_per_unit_time``. ``data_mean``
    (``E[X_0]`` of the training data) is needed only for a noise predictor at ``T = 1``.
    """
    (T,) = _check_T([T])
    check_images(images)
    batch_size = integer(batch_size, "batch_size")
    device = next(as_schedule(model_or_schedule).default.parameters()).device
    if noise is None:
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(integer(seed, "seed", minimum=None)))
    elif not torch.is_tensor(noise) or noise.shape != images.shape:
        got = tuple(noise.shape) if torch.is_tensor(noise) else type(noise).__name__
        raise InputError(f"noise must have the shape of images {tuple(images.shape)}; got {got}")
    steps = steps_for(T, steps_per_unit_time)
    outs, noised = [], []
    for start in range(0, images.shape[0], batch_size):
        x0 = images[start:start + batch_size].to(device, torch.float32)
        x_T = path.interpolate(x0, noise[start:start + batch_size].to(device, torch.float32), T)
        x, _ = ode_solve(model_or_schedule, x_T, T, 0.0, steps=steps, solver=solver, data_mean=data_mean)
        outs.append(x)
        noised.append(x_T)
    return torch.cat(outs), torch.cat(noised)


@torch.no_grad()
def recovery_mse(
    model_or_schedule,
    images: torch.Tensor,
    T_values,
    *,
    steps_per_unit_time: int = 32,
    solver: str = "euler",
    seed: int = 0,
    data_mean: torch.Tensor | None = None,
    per_image: bool = False,
    batch_size: int = 1000,
) -> np.ndarray:
    """Mean squared error (per pixel) between ``images`` and their recovery from time ``T``, for each ``T``.

    Returns an array of shape ``(len(T_values),)`` (or ``(len(T_values), N)`` with ``per_image=True``).
    The noise is the same draw for every ``T`` (seeded by ``seed``); ``T = 0`` gives exactly 0.
    """
    Ts = _check_T(T_values)
    check_images(images)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(integer(seed, "seed", minimum=None)))
    rows = []
    for T in Ts:
        rec, _ = recover(model_or_schedule, images, T, steps_per_unit_time=steps_per_unit_time, solver=solver,
                         data_mean=data_mean, batch_size=batch_size, noise=noise)
        err = (rec.float().cpu() - images.float().cpu()).pow(2).mean(dim=(1, 2, 3))
        rows.append(err.numpy() if per_image else float(err.mean()))
    return np.array(rows)


@dataclass
class RecoveryGrid:
    """Recovery MSE, ``mse[i, j]`` for model ``rows[i]`` (a radius ``r`` or ``"global"``) and time ``T[j]``.

    Behaves like the 2-D array ``mse`` (indexing, ``np.asarray``, ``.shape``)."""

    mse: np.ndarray
    rows: list
    T: np.ndarray

    def __getitem__(self, item):
        return self.mse[item]

    def __array__(self, dtype=None, copy=None):
        return self.mse if dtype is None else self.mse.astype(dtype)

    @property
    def shape(self):
        return self.mse.shape

    def row(self, label) -> np.ndarray:
        return self.mse[self.rows.index(label)]

    def plot(self, ax=None, log: bool = True):
        """MSE against ``T``, one line per radius (colour by ``r``) and the global model in black."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        radii = [r for r in self.rows if r != "global"]
        cmap = plt.get_cmap("viridis")
        for i, r in enumerate(self.rows):
            if r == "global":
                ax.plot(self.T, self.mse[i], "k--", lw=2, label="global")
            else:
                ax.plot(self.T, self.mse[i], color=cmap(radii.index(r) / max(len(radii) - 1, 1)), label=f"r = {r}")
        ax.set_xlabel("noise time $T$")
        ax.set_ylabel("recovery MSE")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize="small", ncol=2)
        return ax


def recovery_grid(models_by_radius: dict, global_model, images: torch.Tensor, T_values, **kwargs) -> RecoveryGrid:
    """:func:`recovery_mse` for every local model (``{r: model}``, rows sorted by ``r``) and the global model
    (last row, ``"global"``; pass ``None`` to leave it out). Keyword arguments go to :func:`recovery_mse`."""
    Ts = _check_T(T_values)
    if not isinstance(models_by_radius, dict):
        raise InputError(f"models_by_radius must be a dict {{r: model}}; got {type(models_by_radius).__name__}")
    if not models_by_radius and global_model is None:
        raise InputError("recovery_grid needs at least one model: local models in models_by_radius or a global_model")
    rows, values = [], []
    for r in sorted(models_by_radius):
        radius = getattr(models_by_radius[r], "radius", None)
        if radius is not None and radius != r:
            raise InputError(f"models_by_radius[{r}] is a model of radius {radius}: the key must be its "
                             f"receptive-field radius (the row is labelled by the key)")
        rows.append(r)
        values.append(recovery_mse(models_by_radius[r], images, Ts, **kwargs))
    if global_model is not None:
        check_global(global_model)
        rows.append("global")
        values.append(recovery_mse(global_model, images, Ts, **kwargs))
    return RecoveryGrid(np.stack(values), rows, np.array(Ts))


# ---------------------------------------------------------------- figures


def image_grid(images, nrow: int = 8, padding: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``(N, 1, H, W)`` (or ``(N, H, W)``) images into one 2-D array, ``nrow`` images per row, values as given."""
    nrow, padding = integer(nrow, "nrow"), integer(padding, "padding", minimum=0)
    pad_value = number(pad_value, "pad_value")
    try:
        x = torch.as_tensor(images).detach().float().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"images must be a tensor or array of shape (N, 1, H, W) or (N, H, W); got "
                         f"{images!r}") from None
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"image_grid takes one-channel images (N, 1, H, W); got {tuple(x.shape)}")
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"image_grid takes (N, 1, H, W) or (N, H, W); got {tuple(x.shape)}")
    n, h, w = x.shape
    if n == 0:
        raise InputError(f"image_grid needs at least one image; got shape {tuple(x.shape)}")
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    out = torch.full((nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for k in range(n):
        i, j = divmod(k, ncol)
        top, left = padding + i * (h + padding), padding + j * (w + padding)
        out[top:top + h, left:left + w] = x[k]
    return out.numpy()


def show_images(images, nrow: int = 8, ax=None, title: str | None = None, clip: bool = True):
    """Show images as a grid on ``ax`` (gray, 0 black and 1 white). ``clip=True`` shows values outside
    ``[0, 1]`` (samples overshoot) at the ends of the colour scale; the data are not changed."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    grid = image_grid(images, nrow)
    ax.imshow(grid, cmap="gray", vmin=0.0 if clip else None, vmax=1.0 if clip else None, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


# ---------------------------------------------------------------- classifier and Fréchet distance


class Classifier(nn.Module):
    """A small CNN for 28x28 digits or clothes: two conv blocks (32, 64 channels, max-pool), a 128-unit layer.

    ``features(x)`` returns the 128 penultimate activations (for :func:`frechet_distance`); ``forward``
    the 10 logits. Inputs are images in ``[0, 1]`` (``(N, 1, 28, 28)``)."""

    def __init__(self, num_classes: int = 10, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.config = dict(num_classes=num_classes, width=width, feature_dim=feature_dim)  # what checkpoints store
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * 49, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"the classifier takes images (N, 1, 28, 28); got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 400,
    batch_size: int = 128,
    lr: float = 2e-3,
    width: int = 32,
    seed: int = 0,
    device=None,
    progress: bool = False,
    losses: list | None = None,
) -> Classifier:
    """Train a :class:`Classifier` (conv widths ``width``, ``2 width``) with Adam on random batches (seeded);
    returns it in eval mode. A list given as ``losses`` receives the cross-entropy of every step."""
    check_images(images)
    if not torch.is_tensor(labels) or labels.ndim != 1 or labels.dtype == torch.bool or labels.is_floating_point() \
            or labels.is_complex():
        got = f"dtype {labels.dtype}, shape {tuple(labels.shape)}" if torch.is_tensor(labels) else type(labels).__name__
        raise InputError(f"labels must be integer class indices in [0, 9], a tensor (N,); got {got}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if int(labels.min()) < 0 or int(labels.max()) > 9:
        raise InputError(f"labels must be class indices in [0, 9]; got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    steps, batch_size, width = integer(steps, "steps"), integer(batch_size, "batch_size"), integer(width, "width")
    lr = number(lr, "lr", above=0.0)
    device = torch.device(device) if device is not None else default_device()
    gen = torch.Generator().manual_seed(integer(seed, "seed", minimum=None))
    torch.manual_seed(seed)
    model = Classifier(width=width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    images, labels = images.to(device), labels.to(device)
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="classifier", leave=False)
    for _ in it:
        idx = torch.randint(images.shape[0], (batch_size,), generator=gen).to(device)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if losses is not None:
            losses.append(float(loss.detach()))
    return model.eval()


@torch.no_grad()
def predict(classifier: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities ``(N, 10)`` (on the CPU)."""
    device = next(classifier.parameters()).device
    return torch.cat([F.softmax(classifier(images[i:i + batch_size].to(device).float()), 1).cpu()
                      for i in range(0, images.shape[0], batch_size)])


def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` whose most likely class is the label."""
    return float((predict(classifier, images).argmax(1) == labels.cpu()).float().mean())


@torch.no_grad()
def features(classifier: Classifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate features ``(N, 128)`` (on the CPU)."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(images[i:i + batch_size].to(device).float()).cpu()
                      for i in range(0, images.shape[0], batch_size)])


@torch.no_grad()
def identity_kept(classifier: Classifier, recovered: torch.Tensor, originals: torch.Tensor,
                  labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image, whether a recovery kept the identity of its original: ``(class_kept, instance_kept)``, two boolean
    arrays ``(N,)``. *Class*: the classifier labels the recovered image with the original's label. *Instance*: of all
    ``N`` originals, the recovered image is nearest to its own in the classifier's features (a recovery can stay a 7
    and still become another 7). Chapter "Local versus global denoisers"."""
    check_images(recovered, "recovered", unit_range=False)   # a recovery may leave [0, 1]: it is classified as it is
    check_images(originals, "originals")
    if recovered.shape != originals.shape:
        raise ValueError(f"recovered and originals must have one shape; got {tuple(recovered.shape)} and "
                         f"{tuple(originals.shape)}")
    if not torch.is_tensor(labels) or labels.shape != (originals.shape[0],):
        got = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
        raise InputError(f"labels must be a tensor (N,) with one label per original; got {got}")
    class_kept = (predict(classifier, recovered).argmax(1) == labels.cpu()).numpy()
    nearest = torch.cdist(features(classifier, recovered).double(), features(classifier, originals).double()).argmin(1)
    return class_kept, (nearest == torch.arange(len(originals))).numpy()


def loss_times(kept, T_values) -> np.ndarray:
    """Per image, the first ``T`` of the grid at which its identity was not kept (``inf`` when it was kept at every
    ``T``): ``kept`` is a boolean array ``(len(T_values), N)`` (:func:`identity_kept` at each ``T``). Its low
    quantiles are the onset of identity loss (the first images lost), its median the time at which half are lost."""
    Ts = np.asarray(_check_T(T_values))
    kept = np.asarray(kept)
    if kept.dtype != bool or kept.ndim != 2 or kept.shape[0] != len(Ts):
        raise InputError(f"kept must be a boolean array (len(T_values), N) = ({len(Ts)}, N); got dtype {kept.dtype}, "
                         f"shape {kept.shape}")
    if np.any(np.diff(Ts) <= 0):
        raise InputError(f"T_values must increase; got {list(Ts)}")
    lost = ~kept
    first = lost.argmax(axis=0)
    return np.where(lost.any(axis=0), Ts[first], np.inf)


def crossing_time(T_values, fraction, threshold: float = 0.5) -> float:
    """The identity-loss time of a population curve: the first ``T`` at which the linear interpolation of
    ``fraction`` (the fraction of images kept at each ``T`` of the increasing grid ``T_values``) drops below
    ``threshold``; the first ``T`` of the grid when it is already below there, ``inf`` when it never drops below.
    Chapter "Local versus global denoisers" (definition of ``T_lost``)."""
    Ts = np.asarray(_check_T(T_values))
    if np.any(np.diff(Ts) <= 0):
        raise InputError(f"T_values must increase; got {list(Ts)}")
    a = finite_numbers(fraction, "fraction")
    if a.shape != Ts.shape:
        raise InputError(f"fraction must have one value per T ({len(Ts)}); got shape {a.shape}")
    threshold = number(threshold, "threshold", above=0.0, below=1.0)
    below = np.nonzero(a < threshold)[0]
    if len(below) == 0:
        return math.inf
    k = int(below[0])
    if k == 0:
        return float(Ts[0])
    return float(Ts[k - 1] + (a[k - 1] - threshold) / (a[k - 1] - a[k]) * (Ts[k] - Ts[k - 1]))


def identity_curves(model_or_schedule, images: torch.Tensor, labels: torch.Tensor, classifier: Classifier, T_values,
                    *, solver: str = "euler", steps_per_unit_time: int = 32, noise: torch.Tensor | None = None,
                    seed: int = 0, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Recover ``images`` from every ``T`` of ``T_values`` (one noise draw for all ``T``, :func:`recover`) and judge
    each recovery with :func:`identity_kept`: returns ``(class_kept, instance_kept)``, boolean arrays
    ``(len(T_values), N)``. Their column means are the fractions kept (:func:`crossing_time`), their columns give
    each image's loss time (:func:`loss_times`). Chapter "Local versus global denoisers"."""
    Ts = _check_T(T_values)
    check_images(images)
    if noise is None:
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(integer(seed, "seed", minimum=None)))
    kept = [identity_kept(classifier, recover(model_or_schedule, images, T, steps_per_unit_time=steps_per_unit_time,
                                              solver=solver, noise=noise, batch_size=batch_size)[0].cpu(),
                          images, labels)
            for T in Ts]
    return np.stack([k[0] for k in kept]), np.stack([k[1] for k in kept])


def r_squared(prediction, target) -> np.ndarray:
    """Per image, the fraction of the target's pixel variance that ``prediction`` explains:
    ``r^2 = 1 - sum (prediction - target)^2 / sum (target - mean(target))^2`` over the pixels of each image, a float64
    array of length ``B`` for two tensors of the same shape ``(B, ...)``. 1 is a perfect prediction, 0 no better
    than the target's own mean, negative worse. Chapter "Beyond the paper" compares the closed-form local denoiser
    (``prediction``) with a trained network (``target``), as Kamb and Ganguli do."""
    if not (isinstance(prediction, torch.Tensor) and isinstance(target, torch.Tensor)):
        raise InputError(f"r_squared takes two tensors; got {type(prediction).__name__} and {type(target).__name__}")
    if prediction.shape != target.shape or prediction.dim() < 2:
        raise InputError(f"prediction and target must have the same shape (B, ...) with B images; got "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")
    p = prediction.detach().reshape(len(prediction), -1).double().cpu()
    y = target.detach().reshape(len(target), -1).double().cpu()
    if not (torch.isfinite(p).all() and torch.isfinite(y).all()):
        raise InputError("r_squared: prediction and target must be finite (found NaN or inf)")
    total = (y - y.mean(1, keepdim=True)).square().sum(1)
    if bool((total == 0).any()):
        flat = torch.nonzero(total == 0).flatten().tolist()
        raise InputError(f"r_squared is undefined for a constant target image (images {flat[:5]}); leave them out")
    return (1 - (p - y).square().sum(1) / total).numpy()


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1, cov1, mu2, cov2) -> float:
    """``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})``, the squared 2-Wasserstein distance
    between the Gaussians ``N(mu1, C1)`` and ``N(mu2, C2)``. Square roots by eigendecomposition (float64);
    round-off can leave a tiny negative value for identical inputs, which is returned as is."""
    mu1, mu2 = finite_numbers(mu1, "mu1"), finite_numbers(mu2, "mu2")
    c1, c2 = np.atleast_2d(finite_numbers(cov1, "cov1")), np.atleast_2d(finite_numbers(cov2, "cov2"))
    if mu1.shape != mu2.shape or c1.shape != c2.shape or c1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; cov {c1.shape}, {c2.shape}")
    for name, c in (("cov1", c1), ("cov2", c2)):
        scale = max(1.0, float(np.abs(c).max()))
        if not np.allclose(c, c.T, rtol=1e-8, atol=1e-12 * scale):
            raise InputError(f"{name} must be a symmetric matrix (a covariance); got one with |C - C^T| up to "
                             f"{float(np.abs(c - c.T).max()):.3g}")
        low = float(np.linalg.eigvalsh((c + c.T) / 2).min())
        if low < -1e-8 * scale:
            raise InputError(f"{name} must be positive semi-definite (a covariance); its smallest eigenvalue is "
                             f"{low:.3g}")
    s1 = _sqrtm_psd(c1)
    cross = _sqrtm_psd(s1 @ c2 @ s1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(cross))


def frechet_distance(feats_a, feats_b) -> float:
    """The Fréchet distance between two sets of feature vectors ``(N, d)``: the distance between the
    Gaussians with their means and (unbiased) covariances. With classifier features this is the
    in-house analogue of FID; always compare with the real-vs-real value."""
    a = np.asarray(torch.as_tensor(feats_a).double().cpu())
    b = np.asarray(torch.as_tensor(feats_b).double().cpu())
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (N, d) with the same d; got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("features must be finite; got NaN or inf values")
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError("need at least two feature vectors per set to estimate a covariance")
    return frechet_distance_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def nearest_train_distance(images: torch.Tensor, train: torch.Tensor, batch_size: int = 1024,
                           dtype: torch.dtype = torch.float64):
    """For each image, the RMS pixel distance to its nearest training image and that image's index: ``(dist, idx)``
    (CPU tensors), computed on ``train``'s device in ``dtype`` (float32 is faster and resolves distances down to
    about 1e-3). A sample at distance about 0 is a copy of a training image (chapters "Hybrid sampling" and "Beyond
    the paper")."""
    for name, v in (("images", images), ("train", train)):
        if not torch.is_tensor(v):
            raise InputError(f"{name} must be a tensor; got {type(v).__name__}")
    if train.ndim >= 1 and train.shape[0] == 0:
        raise InputError("train must hold at least one image; got an empty tensor")
    batch_size = integer(batch_size, "batch_size")
    if images.ndim < 2 or train.ndim < 2 or images[0].numel() != train[0].numel():
        raise ValueError(f"images and train must hold images of one size; got shapes {tuple(images.shape)} and "
                         f"{tuple(train.shape)}")
    flat_train = train.reshape(len(train), -1).to(dtype)
    dist, idx = [], []
    for chunk in images.reshape(len(images), -1).to(flat_train.device, dtype).split(batch_size):
        d, i = torch.cdist(chunk, flat_train).min(dim=1)
        dist.append(d.cpu())
        idx.append(i.cpu())
    return torch.cat(dist) / math.sqrt(images[0].numel()), torch.cat(idx)


def _feature_matrix(feats, name: str) -> torch.Tensor:
    x = torch.as_tensor(feats)
    if x.ndim != 2 or not torch.is_floating_point(x):
        raise InputError(f"{name} must be a float (N, d) array of feature vectors; got shape {tuple(x.shape)}, "
                         f"dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name} must be finite; got NaN or inf values")
    return x.double()


def _knn_radii(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its ``k``-th nearest other row."""
    return torch.cat([torch.cdist(chunk, x).kthvalue(k + 1, dim=1).values for chunk in x.split(batch_size)])


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int) -> torch.Tensor:
    """For each point, whether it lies in at least one closed ball ``|point - centre| <= radius``."""
    return torch.cat([(torch.cdist(chunk, centres) <= radii).any(dim=1) for chunk in points.split(batch_size)])


def precision_recall(real_feats, fake_feats, k: int = 3, batch_size: int = 1024, per_item: bool = False):
    """Precision and recall of generated samples on the feature manifold (Kynkäänniemi et al. 2019).

    The manifold of a set is the union of balls centred on its points with radius the distance to the point's
    ``k``-th nearest neighbour in the same set. **Precision**: the fraction of generated samples inside the real
    manifold (are the samples realistic?); **recall**: the fraction of real samples inside the generated manifold
    (is the variety of the data covered?). Both are in ``[0, 1]``; the real-versus-real value at the same ``n`` is
    the reference (chapter "Hybrid sampling"). ``per_item=True`` returns the two boolean arrays instead (which
    generated samples lie in the real manifold, which real samples in the generated one), e.g. for intervals."""
    real, fake = _feature_matrix(real_feats, "real_feats"), _feature_matrix(fake_feats, "fake_feats")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_feats and fake_feats must have the same feature dimension; got {real.shape[1]} and "
                         f"{fake.shape[1]}")
    k = integer(k, "k")
    batch_size = integer(batch_size, "batch_size")
    if min(len(real), len(fake)) <= k:
        raise InputError(f"each set needs more than k = {k} feature vectors for a k-th nearest neighbour; got "
                         f"{len(real)} real and {len(fake)} generated: use more samples or a smaller k")
    in_real = _covered(fake, real, _knn_radii(real, k, batch_size), batch_size)
    in_fake = _covered(real, fake, _knn_radii(fake, k, batch_size), batch_size)
    if per_item:
        return in_real.numpy(), in_fake.numpy()
    return float(in_real.double().mean()), float(in_fake.double().mean())


@dataclass
class SampleQuality:
    """The quality of ``n`` generated images (:func:`sample_quality`). Means over the images carry a 95 % bootstrap
    interval (``*_ci``); the Fréchet distance and the class histogram's distance to uniform do not: resampling with
    replacement duplicates images and biases them upwards (measured: the bootstrap interval of a Fréchet distance
    can miss its own value), so their intervals come from independent sample sets (sampler seeds). Both come with
    their value for real images at the same ``n`` (``*_floor``), since both are biased upwards at finite ``n``."""

    n: int
    fd: float
    fd_floor: float          # Fréchet distance between two real sets of size n
    precision: float
    precision_ci: tuple
    recall: float
    recall_ci: tuple
    class_tv: float          # total variation between the predicted-class histogram and the uniform one
    class_tv_floor: float    # the same for n real images
    class_hist: list
    nn_distance: float       # mean RMS pixel distance to the nearest training image
    nn_distance_ci: tuple

    def __str__(self) -> str:
        f = lambda v, ci, d: f"{v:.{d}f} [{ci[0]:.{d}f}, {ci[1]:.{d}f}]"
        return (f"n = {self.n}: Fréchet {self.fd:.2f} (floor {self.fd_floor:.2f}), precision "
                f"{f(self.precision, self.precision_ci, 3)}, recall {f(self.recall, self.recall_ci, 3)}, class TV "
                f"{self.class_tv:.3f} (floor {self.class_tv_floor:.3f}), NN distance "
                f"{f(self.nn_distance, self.nn_distance_ci, 4)}")


def _class_tv(classifier, images) -> tuple[float, list]:
    counts = np.bincount(predict(classifier, images).argmax(1).numpy(), minlength=10)
    return 0.5 * float(np.abs(counts / counts.sum() - 0.1).sum()), counts.tolist()


def sample_quality(classifier: Classifier, samples: torch.Tensor, real: torch.Tensor, real_floor: torch.Tensor,
                   train: torch.Tensor, *, k: int = 3, n_boot: int = 1000, seed: int = 0) -> SampleQuality:
    """Fréchet distance, precision and recall (:func:`precision_recall`, ``k``), the class histogram against uniform
    and the nearest-training-image distance of ``samples``, on ``classifier``'s features; precision, recall and the
    distance with a percentile bootstrap interval (``n_boot`` resamples of the samples, of the real images for
    recall). ``real`` and ``real_floor`` are two disjoint real sets of the size of ``samples``: their Fréchet
    distance is the floor that a finite ``n`` puts under every value (chapter "Hybrid sampling")."""
    from .stats import bootstrap_interval

    for name, v in (("real", real), ("real_floor", real_floor), ("train", train)):
        check_images(v, name)
    check_images(samples, "samples", unit_range=False)     # generated images may leave [0, 1]; kept as they are
    n = samples.shape[0]
    if real.shape[0] != n or real_floor.shape[0] != n:
        raise ValueError(f"real and real_floor must hold as many images as samples ({n}): the Fréchet distance's "
                         f"bias depends on n; got {real.shape[0]} and {real_floor.shape[0]}")
    f_gen, f_real = features(classifier, samples), features(classifier, real)
    in_real, in_gen = precision_recall(f_real, f_gen, k=k, per_item=True)
    nn = nearest_train_distance(samples, train, dtype=torch.float32)[0].double().numpy()
    tv, hist = _class_tv(classifier, samples)
    ci = lambda values: bootstrap_interval(lambda i: values[i].mean(), n, n_boot=n_boot, seed=seed)
    return SampleQuality(
        n=n, fd=frechet_distance(f_gen, f_real), fd_floor=frechet_distance(features(classifier, real_floor), f_real),
        precision=float(in_real.mean()), precision_ci=ci(in_real), recall=float(in_gen.mean()), recall_ci=ci(in_gen),
        class_tv=tv, class_tv_floor=_class_tv(classifier, real_floor)[0], class_hist=hist,
        nn_distance=float(nn.mean()), nn_distance_ci=ci(nn))
