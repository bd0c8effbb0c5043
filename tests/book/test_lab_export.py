"""The precomputed transition lab (:mod:`localdiff_lib.publish.lab_export`) on a tiny lab: files and manifest agree, and
every number of a state is the one :meth:`TransitionLab.update` gives for it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from localdiff_lib.publish import lab_export
from localdiff_lib.info import SurrogateMap
from localdiff_lib.lab import TransitionLab
from localdiff_lib.models import GlobalUNet, LocalDenoiser

SIZE = 8
RADII = (1, 2, 3)
TIMES = (0.2, 0.5, 0.8)
WINDOWS = ((0.0, 0.0), (0.2, 0.5), (0.0, 1.0))


def _lab():
    torch.manual_seed(0)
    local = {r: LocalDenoiser(radius=r, channels=4, emb_dim=8, image_size=SIZE).eval() for r in RADII}
    glob = GlobalUNet(channels=(8, 8, 8), emb_dim=8, image_size=SIZE).eval()
    t = np.linspace(0.0, 1.0, 5)
    cmi = np.outer(t, np.array(RADII)) / 10     # I(A:C|B)(t, r) = r t / 10
    cmap = SurrogateMap(t=t, r=np.array(RADII), cmi=cmi, mi_a_bc=np.zeros(len(t)), mi_a_b=np.zeros_like(cmi))
    x0 = torch.rand(3, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    return TransitionLab(local, glob, x0, cmap, curve_T=TIMES, steps_per_unit_time=8, n_samples=4, sample_steps=6,
                         seed=3, t=0.5, r=2, window=(0.2, 0.5), index=1)


@pytest.fixture
def exported(one_thread, tmp_path):
    lab = _lab()
    m = lab_export.export_lab(lab, tmp_path / "lab", times=TIMES, windows=WINDOWS, radii=(1, 3), indices=(0, 2),
                              labels=[7, 8, 9])
    return lab, m, tmp_path / "lab"


def test_files_and_manifest_agree(exported):
    lab, m, out = exported
    assert json.loads((out / "manifest.json").read_text()) == m
    assert m["format"] == lab_export.FORMAT
    assert m["grid"] == {"t": list(TIMES), "r": [1, 3], "window": [list(w) for w in WINDOWS], "index": [0, 2]}
    assert m["states"] == 3 * 2 * 3 * 2 and m["labels"] == [7, 9]
    named = {m["x0"][0], m["x0"][1]}
    for k in range(3):
        named |= set(m["x_t"][k]) | {c["src"] for c in m["glob"][k]}
        named |= {c["src"] for row in m["local"][k] for c in row}
    named |= {c["src"] for row in m["samples"] for c in row}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert named == on_disk                                      # every file named once, none missing, none extra
    assert len(on_disk) == 2 + 3 * 2 + 3 * 2 * 2 + 3 * 2 + 3 * 2 == m["files"]["count"]
    assert m["files"]["bytes"] == sum((out / p).stat().st_size for p in on_disk)
    # tiles are the images, quantised to 8 bits
    tile = np.asarray(Image.open(out / m["x0"][1]))
    assert tile.shape == (SIZE, SIZE)
    np.testing.assert_allclose(tile / 255.0, lab.x0[2, 0].numpy(), atol=0.5 / 255 + 1e-6)
    grid = np.asarray(Image.open(out / m["samples"][0][0]["src"]))
    assert grid.shape == (SIZE, 4 * SIZE + 3)                   # 4 samples in one row, 1-pixel gaps
    assert lab.state == dict(t=0.5, r=2, window=(0.2, 0.5), index=1)   # the lab's state is restored
    with pytest.raises(ValueError, match="not on the exported grid"):
        lab_export.state(m, 0.3, 1, (0.0, 0.0), 0)
    with pytest.raises(ValueError, match="not on the exported grid"):
        lab_export.state(m, 0.5, 2, (0.0, 0.0), 0)


@pytest.mark.parametrize("t, r, window, index", [(0.5, 3, (0.2, 0.5), 2), (0.2, 1, (0.0, 0.0), 0),
                                                 (0.8, 3, (0.0, 1.0), 0)])
def test_state_numbers_equal_the_lab(exported, t, r, window, index):
    lab, m, out = exported
    s = lab_export.state(m, t, r, window, index)
    v = lab.update(t=t, r=r, window=window, index=index)
    assert (s["t"], s["r"], s["window"], s["index"]) == (t, r, window, index)
    for key in ("mse_local", "mse_global", "cmi_at_t", "curve_local_at_t", "curve_global_at_t", "sample_gap",
                "global_only_macs"):
        assert s[key] == getattr(v, key), key                   # exactly the lab's floats
    assert s["cmi_at_t"] == pytest.approx(r * t / 10)           # the known map
    assert s["macs_per_image"] == v.record.macs_per_image
    assert s["nfe_by_model"] == v.record.nfe_by_model
    assert m["cmi"][m["grid"]["r"].index(r)] == pytest.approx(list(v.cmi))
    assert m["curve_local"][m["grid"]["r"].index(r)] == list(v.curve_local)
    assert m["curve_global"] == list(v.curve_global)
    for part, img, n in (("local", v.recovered_local, 1), ("global", v.recovered_global, 1), ("x_t", v.x_t, 1),
                         ("x0", v.x0, 1)):
        tile = np.asarray(Image.open(out / s[part])) / 255.0
        np.testing.assert_allclose(tile, img[0].clamp(0, 1).numpy(), atol=0.5 / 255 + 1e-6, err_msg=part)
    grid = np.asarray(Image.open(out / s["samples"])) / 255.0
    for k in range(4):
        np.testing.assert_allclose(grid[:, k * (SIZE + 1):k * (SIZE + 1) + SIZE], v.samples[k, 0].clamp(0, 1).numpy(),
                                   atol=0.5 / 255 + 1e-6)
    assert math.isfinite(s["mse_local"]) and s["mse_local"] > 0


def test_nan_becomes_null(one_thread, tmp_path):
    """A t outside the recovery curves' grid has no curve value: NaN in the lab, null in the JSON."""
    lab = _lab()
    m = lab_export.export_lab(lab, tmp_path / "lab", times=(0.1, 0.5), windows=((0.0, 0.0),), radii=(2,), indices=(0,))
    s = lab_export.state(m, 0.1, 2, (0.0, 0.0), 0)
    assert s["curve_local_at_t"] is None and s["curve_global_at_t"] is None
    assert math.isnan(lab.update(t=0.1, r=2, index=0).curve_local_at_t)
    assert "NaN" not in (tmp_path / "lab" / "manifest.json").read_text()


def test_export_reuses_a_matching_export(monkeypatch, tmp_path):
    """``export`` recomputes only when the fingerprint (settings, checkpoints, code) changes or files are missing."""
    calls = []

    def fake_build(n_images, times, **kw):
        calls.append(n_images)
        return _lab(), [1, 2, 3]

    monkeypatch.setattr(lab_export, "build_lab", fake_build)
    kw = dict(n_images=3, times=TIMES, windows=WINDOWS[:1])
    m1 = lab_export.export(tmp_path / "lab", **kw)
    m2 = lab_export.export(tmp_path / "lab", **kw)
    assert calls == [3] and m1 == m2 and m1["fingerprint"]
    next((tmp_path / "lab").rglob("*.png")).unlink()
    lab_export.export(tmp_path / "lab", **kw)
    assert calls == [3, 3]
    lab_export.export(tmp_path / "lab", **{**kw, "windows": WINDOWS[:2]})
    assert calls == [3, 3, 3]
