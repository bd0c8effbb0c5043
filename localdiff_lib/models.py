"""Denoisers: a global time-conditioned U-Net and the strictly local family ``LocalDenoiser(radius=r)``.

Both are ``torch.nn.Module``s with ``forward(x, t)``: images ``(N, 1, H, W)`` and times ``(N,)`` (or a
scalar) in ``[0, 1]``, returning a tensor shaped like ``x``. Two attributes tell training and sampling
what a model is:

- ``prediction``: the kind of quantity it predicts (``"velocity"``, ``Z - X_0``, by default; ``"noise"``
  for the paper's local noise predictors; see :mod:`localdiff_lib.path`);
- ``radius``: ``None`` for a global model, else the **receptive-field radius** ``r``: every output pixel
  depends only on inputs within Chebyshev distance ``r`` (a ``(2r+1)^2`` square).

``LocalDenoiser`` is local by construction: ``r`` zero-padded 3x3 convolutions plus 1x1 convolutions,
no pooling, no normalisation over space, and time enters only through FiLM (a per-channel scale and
shift computed from ``t``, which is global but is not data). The chapter "Locality and receptive fields"
proves it with :func:`localdiff_lib.locality.gradient_footprint`.

Cost: :func:`count_parameters` and :func:`count_macs` (multiply-adds per image, counted exactly for
convolution and linear layers). A full-resolution local net costs about ``9 C^2 (r-1) H W`` multiply-adds,
linear in ``r``; the ``channels`` argument sets ``C``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from . import path
from . import checks
from .checks import InputError, checking_values, integer

#: inside this block, models check only shapes and dtypes (see :func:`localdiff_lib.checks.skip_value_checks`)
skip_value_checks = checks.skip_value_checks

PREDICTIONS = ("velocity", "noise", "x0")


def check_global(model, name: str = "global_model") -> None:
    """A model in a global slot is not a local one (a model with a ``radius`` would be shown as "global")."""
    if getattr(model, "radius", None) is not None:
        raise InputError(f"{name} is a local model (radius {model.radius}), shown as 'global': pass a global "
                         "denoiser (e.g. checkpoints.global_unet()), or file it under its radius")


def check_dtype(x: torch.Tensor, model: nn.Module) -> None:
    """The images have the model's floating-point dtype (a float64 batch into a float32 model is refused here, with
    what to do, instead of as torch's "mat1 and mat2 must have the same dtype")."""
    p = next(model.parameters(), None)
    if p is not None and torch.is_tensor(x) and torch.is_floating_point(x) and x.dtype != p.dtype:
        raise InputError(f"images of dtype {x.dtype} given to a {type(model).__name__} whose weights are {p.dtype}; "
                         f"convert one of them (x.to({p.dtype}) or model.to({x.dtype}))")


def check_inputs(x: torch.Tensor, t, image_size: int | None = None) -> torch.Tensor:
    """Validate ``(x, t)`` for ``forward`` and return ``t`` as a ``(N,)`` tensor of ``x``'s dtype and device.

    Inside :func:`skip_value_checks` only shapes and dtypes are checked (not that ``t`` lies in ``[0, 1]`` or that
    ``x`` is finite, which would read the tensors)."""
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != 1:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise InputError(f"images must be a tensor of shape (N, 1, H, W) (one channel); got {shape}")
    if not torch.is_floating_point(x):
        raise InputError(f"images must be floating point (pixels in [0, 1], noised); got dtype {x.dtype}")
    if image_size is not None and (x.shape[2] != image_size or x.shape[3] != image_size):
        raise InputError(
            f"this model was built for {image_size}x{image_size} images; got {x.shape[2]}x{x.shape[3]}"
        )
    t = path.check_t(t, x.shape[0])
    if checking_values() and not bool(torch.isfinite(x).all()):
        raise InputError("images contain NaN or inf values; a denoiser needs finite (noised) images")
    return t.to(device=x.device, dtype=x.dtype)


def check_output(out, x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``out``, the output of ``model`` at input ``x``, if it is a tensor shaped like ``x`` (else a clear error)."""
    if not torch.is_tensor(out) or out.shape != x.shape:
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise InputError(f"{label(model)} returned a tensor of shape {got}; a denoiser must return the shape of its "
                         f"input {tuple(x.shape)}")
    return out


def check_module(model) -> nn.Module:
    """``model`` if it is a ``torch.nn.Module``, else a clear error."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return model


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise InputError(f"prediction must be one of {', '.join(PREDICTIONS)}; got {prediction!r}")
    return prediction


class TimeEmbedding(nn.Module):
    """Sinusoidal features of ``t`` (frequencies up to ``max_freq``) followed by a two-layer MLP."""

    def __init__(self, dim: int = 64, max_freq: float = 1000.0):
        super().__init__()
        what = "emb_dim (the time embedding dimension) must be an even positive integer"
        try:
            dim = integer(dim, "emb_dim", minimum=2)
        except InputError:
            raise InputError(f"{what}; got {dim!r}") from None
        if dim % 2:
            raise InputError(f"{what}; got {dim}")
        half = dim // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None].float() * self.freqs[None, :] * (math.pi / 2)
        feats = torch.cat([angles.sin(), angles.cos()], dim=1).to(t.dtype)
        return self.mlp(feats)


class FiLM(nn.Module):
    """Per-channel scale and shift from the time embedding: ``h * (1 + scale) + shift``."""

    def __init__(self, emb_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(emb_dim, 2 * channels)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.proj(emb)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + scale) + shift


class _Denoiser(nn.Module):
    """Shared bookkeeping: ``prediction``, ``radius`` and ``config`` (the constructor arguments)."""

    prediction: str = "velocity"
    radius: int | None = None

    @property
    def config(self) -> dict:
        return dict(self._config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config.items())


class LocalBlock(nn.Module):
    """``h + conv(SiLU(FiLM(h, t)))``: a 3x3 convolution widens the receptive field by exactly one pixel, a 1x1
    convolution (``kernel=1``) by none."""

    def __init__(self, channels: int, emb_dim: int, kernel: int = 3):
        super().__init__()
        self.film = FiLM(emb_dim, channels)
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, h, emb):
        return h + self.conv(F.silu(self.film(h, emb)))


class LocalDenoiser(_Denoiser):
    """A strictly local denoiser of receptive-field radius ``r``: output pixel ``(i, j)`` depends only on
    the inputs within Chebyshev distance ``r`` of ``(i, j)`` (a ``(2r+1)^2`` window), exactly.

    Architecture: a 3x3 convolution ``1 -> channels`` (radius 1), ``r - 1`` residual blocks of one 3x3
    convolution each (radius +1 each), then a per-pixel head of two 1x1 convolutions (radius +0). Zero
    padding, no pooling, no normalisation; ``t`` enters by FiLM. Cost per image is about
    ``H W (9 C^2 (r-1) + 2 C^2)`` multiply-adds for ``C = channels``.

    ``depth`` (default ``r - 1``) fixes the number of residual blocks whatever the radius: the first ``r - 1``
    have 3x3 convolutions, the other ``depth - r + 1`` have 1x1 convolutions (radius +0). A family with one
    ``depth`` and one width differs only in its window, so it measures the effect of the window alone
    (chapter "Local versus global denoisers").

    ``image_size`` only bounds the radius (``1 <= r <= image_size - 1``: a larger window sees nothing
    more); the network itself accepts any ``H x W``. Chapter "Locality and receptive fields".
    """

    def __init__(
        self,
        radius: int,
        channels: int = 32,
        emb_dim: int = 64,
        prediction: str = "velocity",
        image_size: int = 28,
        depth: int | None = None,
    ):
        super().__init__()
        radius = integer(radius, "radius (the receptive-field radius in pixels)")
        image_size = integer(image_size, "image_size", minimum=2)
        if radius > image_size - 1:
            raise ValueError(
                f"radius {radius} is larger than a {image_size}x{image_size} image allows: "
                f"radius {image_size - 1} already lets every pixel see the whole image; use 1 <= radius <= {image_size - 1}"
            )
        channels = integer(channels, "channels")
        if depth is not None:
            depth = integer(depth, "depth (the number of residual blocks)", minimum=0)
            if depth < radius - 1:
                raise ValueError(f"depth {depth} is too small for radius {radius}: a radius-{radius} window needs "
                                 f"{radius - 1} residual blocks of 3x3 convolutions; use depth >= {radius - 1}, or "
                                 "depth=None for exactly radius - 1")
        self.radius = radius
        self.prediction = check_prediction(prediction)
        self._config = dict(radius=radius, channels=channels, emb_dim=emb_dim, prediction=prediction, image_size=image_size)
        if depth is not None:  # the records of models without it stay as they were
            self._config["depth"] = depth
        self.time = TimeEmbedding(emb_dim)
        self.conv_in = nn.Conv2d(1, channels, 3, padding=1)
        kernels = [3] * (radius - 1) + [1] * ((depth if depth is not None else radius - 1) - (radius - 1))
        self.blocks = nn.ModuleList(LocalBlock(channels, emb_dim, k) for k in kernels)
        self.film_out = FiLM(emb_dim, channels)
        self.head = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.SiLU(), nn.Conv2d(channels, 1, 1))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = check_inputs(x, t)
        check_dtype(x, self)
        emb = self.time(t)
        h = self.conv_in(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.head(F.silu(self.film_out(h, emb)))


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3 -> FiLM(t) -> GroupNorm -> SiLU -> conv3x3, plus a (1x1) skip."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = FiLM(emb_dim, cout)
        self.norm2 = nn.GroupNorm(math.gcd(groups, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, h, emb):
        y = self.conv1(F.silu(self.norm1(h)))
        y = self.conv2(F.silu(self.norm2(self.film(y, emb))))
        return self.skip(h) + y


class GlobalUNet(_Denoiser):
    """A small time-conditioned U-Net for 28x28 images (28 -> 14 -> 7 -> 14 -> 28).

    One residual block per level on the way down and up, two at 7x7, skip connections by concatenation,
    GroupNorm (global anyway) and FiLM time conditioning. The receptive field covers the whole image
    (``radius = None``). ``channels`` gives the widths at 28, 14 and 7 pixels. Chapter "Diffusion and flow
    matching" trains it; the paper's U-Net is larger (about 11.8 M parameters) but does the same job.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (32, 64, 128),
        emb_dim: int = 128,
        prediction: str = "velocity",
        image_size: int = 28,
    ):
        super().__init__()
        what = f"channels must be three positive widths, integers for the 28, 14 and 7 px levels; got {channels!r}"
        try:
            channels = tuple(integer(c, "a width") for c in channels)
        except (InputError, TypeError):
            raise InputError(what) from None
        if len(channels) != 3:
            raise InputError(what)
        image_size = integer(image_size, "image_size", minimum=4)
        if image_size % 4:
            raise ValueError(f"GlobalUNet halves the image twice; image_size must be divisible by 4, got {image_size}")
        self.radius = None
        self.prediction = check_prediction(prediction)
        self.image_size = image_size
        self._config = dict(channels=list(channels), emb_dim=emb_dim, prediction=prediction, image_size=image_size)
        c0, c1, c2 = channels
        self.time = TimeEmbedding(emb_dim)
        self.conv_in = nn.Conv2d(1, c0, 3, padding=1)
        self.down0 = ResBlock(c0, c0, emb_dim)
        self.pool0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.down1 = ResBlock(c1, c1, emb_dim)
        self.pool1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid0 = ResBlock(c2, c2, emb_dim)
        self.mid1 = ResBlock(c2, c2, emb_dim)
        self.up1 = nn.Conv2d(c2, c1, 3, padding=1)
        self.dec1 = ResBlock(2 * c1, c1, emb_dim)
        self.up0 = nn.Conv2d(c1, c0, 3, padding=1)
        self.dec0 = ResBlock(2 * c0, c0, emb_dim)
        self.norm_out = nn.GroupNorm(math.gcd(8, c0), c0)
        self.conv_out = nn.Conv2d(c0, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = check_inputs(x, t, self.image_size)
        check_dtype(x, self)
        emb = self.time(t)
        h0 = self.down0(self.conv_in(x), emb)
        h1 = self.down1(self.pool0(h0), emb)
        h = self.mid1(self.mid0(self.pool1(h1), emb), emb)
        h = self.up1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.dec1(torch.cat([h, h1], dim=1), emb)
        h = self.up0(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.dec0(torch.cat([h, h0], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


#: the authors' table (their ``mnist_local_train.ipynb``): nominal radius r -> kernel radii (rho_1, rho_2, rho_3) of the
#: three encoder blocks; the first convolution has kernel radius ``r mod 2`` (chapter "Locality and receptive fields")
AUTHORS_RHO = {1: (0, 0, 0), 2: (1, 0, 0), 3: (1, 0, 0), 4: (1, 1, 0), 5: (1, 1, 0), 6: (1, 1, 1), 7: (1, 1, 1),
               8: (2, 1, 1), 9: (2, 1, 1), 10: (2, 2, 1), 11: (2, 2, 1), 12: (2, 2, 2)}


class _TwoConvBlock(nn.Module):
    """conv -> GroupNorm -> SiLU -> FiLM(t) -> conv -> GroupNorm -> SiLU, both convolutions of kernel radius ``rho``."""

    def __init__(self, cin: int, cout: int, rho: int, emb_dim: int, groups: int, norm: bool):
        super().__init__()
        k = 2 * rho + 1
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, k, padding=rho), nn.Conv2d(cout, cout, k, padding=rho)
        make = (lambda: nn.GroupNorm(math.gcd(groups, cout), cout)) if norm else nn.Identity
        self.norm1, self.norm2 = make(), make()
        self.film = FiLM(emb_dim, cout)

    def forward(self, h, emb):
        h = self.film(F.silu(self.norm1(self.conv1(h))), emb)
        return F.silu(self.norm2(self.conv2(h)))


class AuthorsLocalCNN(_Denoiser):
    """The authors' "local" denoiser, rebuilt to measure what its design does (their ``ImprovedCNNAutoencoder``;
    ``../shared/paper-notes.md`` §4; chapter "Locality and receptive fields"). **Not local.**

    Full resolution: a first convolution of kernel radius ``r mod 2``, three encoder blocks of two convolutions with
    the kernel radii :data:`AUTHORS_RHO` ``[r]``, three mirrored decoder blocks joined by skip connections, a GroupNorm
    after every convolution, FiLM time conditioning (our choice: the notes do not say how theirs enters), a noise
    prediction as theirs. For a nominal radius ``r`` its convolutions reach ``2r - (r mod 2)`` pixels, and GroupNorm
    normalises over the whole image, so ``radius`` is ``None`` (global) and the nominal one is ``nominal_radius``. With
    ``norm=False`` ``radius`` is the convolutions' reach.
    """

    def __init__(self, nominal_radius: int, channels: int = 16, emb_dim: int = 64, prediction: str = "noise",
                 groups: int = 8, norm: bool = True):
        super().__init__()
        r = integer(nominal_radius, "nominal_radius (the authors' label r = 1..12)")
        if r not in AUTHORS_RHO:
            raise ValueError(f"the authors' table has nominal radii 1..12; got {r}")
        channels, groups = integer(channels, "channels"), integer(groups, "groups")
        if not isinstance(norm, bool):
            raise TypeError(f"norm must be True or False; got {norm!r}")
        self.radius = None if norm else 2 * r - r % 2
        self.nominal_radius = r
        self.prediction = check_prediction(prediction)
        self._config = dict(nominal_radius=r, channels=channels, emb_dim=emb_dim, prediction=prediction, groups=groups,
                            norm=norm)
        rho, first = AUTHORS_RHO[r], r % 2
        self.time = TimeEmbedding(emb_dim)
        self.conv_in = nn.Conv2d(1, channels, 2 * first + 1, padding=first)
        self.enc = nn.ModuleList(_TwoConvBlock(channels, channels, k, emb_dim, groups, norm) for k in rho)
        self.dec = nn.ModuleList(_TwoConvBlock(2 * channels, channels, k, emb_dim, groups, norm) for k in rho[::-1])
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = check_inputs(x, t)
        check_dtype(x, self)
        emb = self.time(t)
        h, skips = self.conv_in(x), []
        for block in self.enc:
            skips.append(h)
            h = block(h, emb)
        for block in self.dec:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.head(h)


MODEL_CLASSES = {"LocalDenoiser": LocalDenoiser, "GlobalUNet": GlobalUNet, "AuthorsLocalCNN": AuthorsLocalCNN}


def build_model(class_name: str, config: dict) -> nn.Module:
    """Rebuild a library model from its class name and ``config`` (what checkpoints store)."""
    if not isinstance(class_name, str) or class_name not in MODEL_CLASSES:
        raise InputError(f"unknown model class {class_name!r}; known: {', '.join(MODEL_CLASSES)}")
    if not isinstance(config, Mapping):
        raise InputError(f"config must be a dict of constructor arguments; got {type(config).__name__}")
    cfg = dict(config)
    if "channels" in cfg and isinstance(cfg["channels"], list):
        cfg["channels"] = tuple(cfg["channels"])
    return MODEL_CLASSES[class_name](**cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    check_module(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def label(model: nn.Module) -> str:
    """A model's short name in tables and records: its class, and its receptive-field radius if it has one
    (``LocalDenoiser(r=3)``, ``GlobalUNet``)."""
    r = getattr(check_module(model), "radius", None)
    return f"{type(model).__name__}(r={r})" if r is not None else type(model).__name__


def count_macs(model: nn.Module, image_size: int = 28, t: float = 0.5) -> int:
    """Multiply-adds per image of one forward pass, counted exactly for every ``Conv2d``, ``ConvTranspose2d``
    and ``Linear`` layer (biases, activations and normalisations are not counted).

    Runs one forward pass on a zero image with forward hooks; a Conv2d producing ``C_out x H' x W'`` from
    ``C_in / groups`` input channels with a ``k x k`` kernel costs ``C_out H' W' (C_in / groups) k^2``.
    """
    check_module(model)
    image_size = integer(image_size, "image_size")
    counts = []

    def conv_hook(mod, inp, out):
        kh, kw = mod.kernel_size
        per_out = (mod.in_channels // mod.groups) * kh * kw
        if isinstance(mod, nn.ConvTranspose2d):  # each input element is scattered to C_out/groups * k^2 outputs
            counts.append(inp[0][0].numel() * (mod.out_channels // mod.groups) * kh * kw)
        else:
            counts.append(out[0].numel() * per_out)

    def linear_hook(mod, inp, out):
        counts.append(out[0].numel() * mod.in_features)

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, image_size, image_size, device=device, dtype=dtype), torch.full((1,), t, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
    return int(sum(counts))


def describe_model(model: nn.Module, image_size: int = 28) -> str:
    """One line: class, radius, prediction, parameters and multiply-adds per image."""
    r = getattr(check_module(model), "radius", None)
    return (
        f"{type(model).__name__}(radius={'global' if r is None else r}, prediction={getattr(model, 'prediction', '?')}): "
        f"{count_parameters(model) / 1e3:.1f} k parameters, {count_macs(model, image_size) / 1e6:.2f} M multiply-adds per image"
    )
