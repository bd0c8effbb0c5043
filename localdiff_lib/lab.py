"""The transition lab: one state ``(t, r, window, image)`` of the local-versus-global experiments, and its widget.

Chapter "Transition lab" is the interactive companion of "The CMI barrier", "Local versus global denoisers" and
"Hybrid sampling". A :class:`TransitionLab` holds the models (passed in: strictly local denoisers ``{r: model}``
and a global one), a few clean images ``x0``, one fixed noise draw ``z`` per image, a CMI map and curves of the
recovery error that it computes once. Its state is

- ``t``: the noise time of the recovery experiment (``x_t = (1 - t) x0 + t z``, then the probability-flow ODE
  back to ``t = 0`` with :func:`localdiff_lib.evaluate.recover`);
- ``r``: the **receptive-field radius** of the local denoiser, which for a one-pixel ``A`` is the **buffer
  radius** of ``B`` in the CMI curve ``I(A:C|B)`` that is shown;
- ``window = (t_lo, t_hi)``: the hybrid sampler uses the global model for steps whose midpoint lies in the
  window and the local model of radius ``r`` elsewhere (:class:`localdiff_lib.sampling.HybridSchedule`);
- ``index``: which of the clean images is shown.

:meth:`TransitionLab.update` changes the state and returns a :class:`LabView`, a plain record of everything a
figure needs; :meth:`TransitionLab.figure` draws one view with matplotlib, and :meth:`TransitionLab.widget` wires
ipywidgets sliders to ``update`` (the logic never depends on a front end, so it is tested without one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from . import path
from .checks import cmi_map_arrays, images as check_images, integer, time_window, unit_time, unit_times
from .evaluate import recover, show_images
from .models import check_global, count_macs, label
from .sampling import HybridSchedule, sample, SolveRecord, steps_for

__all__ = ["TransitionLab", "LabView", "LabWidget"]

_STATE = ("t", "r", "window", "index")


@dataclass
class LabView:
    """Everything one state of the lab shows. Images are ``(1, H, W)`` CPU tensors, curves NumPy arrays.

    ``mse_*`` are per-pixel squared errors of this image recovered from this ``t``; ``curve_*`` are recovery MSEs
    averaged over all the lab's images on the grid ``curve_T``, and ``curve_*_at_t`` their piecewise-linear value
    at ``t`` (NaN when ``t`` lies outside the grid). ``cmi`` is ``I(A:C|B)`` in nats at buffer radius ``r`` on the
    times ``cmi_t`` (``cmi_hw`` its confidence half-width, ``None`` for an exact map).
    """

    t: float
    r: int
    window: tuple[float, float]
    index: int
    x0: torch.Tensor
    x_t: torch.Tensor
    recovered_local: torch.Tensor
    recovered_global: torch.Tensor
    mse_local: float
    mse_global: float
    cmi_t: np.ndarray
    cmi: np.ndarray
    cmi_hw: np.ndarray | None
    cmi_at_t: float
    cmi_source: str
    curve_T: np.ndarray
    curve_local: np.ndarray
    curve_global: np.ndarray
    curve_local_at_t: float
    curve_global_at_t: float
    samples: torch.Tensor
    record: SolveRecord
    global_samples: torch.Tensor
    sample_gap: float
    global_only_macs: float

    def summary(self) -> str:
        """The numbers of this view in a few lines of text."""
        lo, hi = self.window
        return (
            f"t = {self.t:.3g}, r = {self.r}, image {self.index}: recovery MSE local {self.mse_local:.4f}, "
            f"global {self.mse_global:.4f} (mean over the lab's images: local {self.curve_local_at_t:.4f}, "
            f"global {self.curve_global_at_t:.4f})\n"
            f"I(A:C|B) at buffer radius {self.r}, t = {self.t:.3g}: {self.cmi_at_t:.4f} nats ({self.cmi_source})\n"
            f"hybrid sampler, global on [{lo:g}, {hi:g}), local r = {self.r} elsewhere: "
            f"{self.record.macs_per_image / 1e6:.1f} M multiply-adds per sample (all-global "
            f"{self.global_only_macs / 1e6:.1f} M), NFE {self.record.nfe_by_model}; "
            f"MSE to the all-global samples from the same noise {self.sample_gap:.4f}"
        )


def _interp(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """Piecewise-linear ``y(x)``; NaN outside ``[xs[0], xs[-1]]`` (never the nearest end value)."""
    if not xs[0] <= x <= xs[-1]:
        return float("nan")
    return float(np.interp(x, xs, ys))


def _check_time_grid(name: str, values) -> np.ndarray:
    return unit_times(values, name, increasing=True, at_least=2)


class TransitionLab:
    """Local versus global denoising and hybrid sampling at one adjustable state ``(t, r, window, index)``.

    ``local_models``: ``{r: model}``, strictly local velocity (or noise, clean-image) denoisers whose
    ``radius`` attribute equals the key. ``global_model``: the global denoiser. ``x0``: clean images
    ``(N, 1, H, W)`` in ``[0, 1]``. ``cmi_map``: a CMI map with arrays ``t``, ``r`` (buffer radii) and ``cmi[i_t, i_r]``
    (:func:`localdiff_lib.info.surrogate_cmi_map`, or a neural :class:`localdiff_lib.cmi_map.CMIMap`, whose
    ``cmi_hw`` is drawn as a band); it must contain every radius of ``local_models``. ``curve_T``: the noise times
    at which the recovery MSE of every model is computed once, on all ``N`` images, at construction.
    ``steps_per_unit_time``: Euler steps per unit time of every recovery; ``n_samples`` and ``sample_steps``: the
    hybrid sampler's batch and number of Euler steps from ``t = 1`` to ``0``. ``seed`` fixes the noise ``z`` of the
    recovery (one draw per image, drawn on the CPU) and the noise of the samples.
    """

    def __init__(
        self,
        local_models: dict[int, nn.Module],
        global_model: nn.Module,
        x0: torch.Tensor,
        cmi_map,
        *,
        curve_T=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0),
        steps_per_unit_time: int = 16,
        n_samples: int = 8,
        sample_steps: int = 16,
        seed: int = 0,
        t: float = 0.3,
        r: int | None = None,
        window: tuple[float, float] = (0.2, 0.5),
        index: int = 0,
        data_mean: torch.Tensor | None = None,
        cmi_source: str | None = None,
    ):
        if not isinstance(local_models, dict) or not local_models:
            raise ValueError("local_models must be a non-empty dict {receptive-field radius r: model}")
        for key, m in local_models.items():
            integer(key, "a key of local_models (a receptive-field radius)")
            if not isinstance(m, nn.Module) or not hasattr(m, "prediction"):
                raise ValueError(f"local_models[{key}] must be a denoiser module with a `prediction`; got {type(m).__name__}")
            if getattr(m, "radius", None) != key:
                raise ValueError(f"local_models[{key}] has radius {getattr(m, 'radius', None)!r}; the key must be the "
                                 f"model's receptive-field radius (a strictly local model)")
        if not isinstance(global_model, nn.Module) or not hasattr(global_model, "prediction"):
            raise ValueError(f"global_model must be a denoiser module with a `prediction`; got {type(global_model).__name__}")
        check_global(global_model)
        check_images(x0, "x0", square=True)
        for name, v in (("steps_per_unit_time", steps_per_unit_time), ("n_samples", n_samples), ("sample_steps", sample_steps)):
            integer(v, name)
        seed = integer(seed, "seed", minimum=None)

        self.local_models = {int(k): local_models[k] for k in sorted(local_models)}
        self.radii = list(self.local_models)
        self.global_model = global_model
        self.x0 = x0.detach().float().cpu()
        self.noise = torch.randn(self.x0.shape, generator=torch.Generator().manual_seed(int(seed)))
        self.steps_per_unit_time = steps_per_unit_time
        self.n_samples = n_samples
        self.sample_steps = sample_steps
        self.seed = int(seed)
        self.data_mean = data_mean
        self.device = next(global_model.parameters()).device
        self.computed = {"recover": 0, "sample": 0}  # how many recoveries and sampler runs the lab has made

        # the CMI map: I(A:C|B) at buffer radius r, for every radius of the local models
        map_t, map_r, map_cmi = cmi_map_arrays(cmi_map)
        self.cmi_t = _check_time_grid("the CMI map's times", map_t)
        missing = [r for r in self.radii if r not in [int(v) for v in map_r]]
        if missing:
            raise ValueError(f"the CMI map has no buffer radius {missing} (it has r = {[int(v) for v in map_r]}); "
                             f"compute it for every radius of the local models {self.radii}")
        col = {r: [int(v) for v in map_r].index(r) for r in self.radii}
        self.cmi = {r: map_cmi[:, col[r]].astype(np.float64) for r in self.radii}
        hw = getattr(cmi_map, "cmi_hw", None)
        self.cmi_hw = {r: np.asarray(hw)[:, col[r]].astype(np.float64) for r in self.radii} if hw is not None else None
        self.cmi_source = cmi_source or ("neural estimate" if hw is not None else "exact Gaussian surrogate")

        # the recovery-MSE curves, once: curves[row][j, n] for T = curve_T[j] and image n
        self.curve_T = _check_time_grid("curve_T", curve_T)
        self.curves = {row: self._curve(m) for row, m in [*self.local_models.items(), ("global", global_model)]}

        self.global_only_macs = float(sample_steps * count_macs(global_model, image_size=self.x0.shape[-1]))
        self._recoveries: dict = {}
        self._samples: dict = {}
        self.t, self.r, self.window, self.index = 0.0, self.radii[0], (0.0, 0.0), 0
        self._apply(self._validate(dict(t=t, r=self.radii[0] if r is None else r, window=window, index=index)))

    # ------------------------------------------------------------------ state

    @property
    def n_images(self) -> int:
        return self.x0.shape[0]

    @property
    def state(self) -> dict:
        """The current state as a dict ``{t, r, window, index}``."""
        return dict(t=self.t, r=self.r, window=self.window, index=self.index)

    def _validate(self, changes: dict) -> dict:
        unknown = sorted(set(changes) - set(_STATE))
        if unknown:
            raise ValueError(f"unknown lab setting(s) {unknown}; the settings are {', '.join(_STATE)}")
        out = {}
        if "t" in changes:
            out["t"] = unit_time(changes["t"])
        if "r" in changes:
            r = changes["r"]
            if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or int(r) not in self.local_models:
                raise ValueError(f"no local model of receptive-field radius r = {r!r}; the lab has r in {self.radii}")
            out["r"] = int(r)
        if "window" in changes:
            out["window"] = time_window(changes["window"])
        if "index" in changes:
            out["index"] = integer(changes["index"], f"index (the lab has {self.n_images} images)", 0,
                                   self.n_images - 1)
        return out

    def _apply(self, valid: dict) -> None:
        for k, v in valid.items():
            setattr(self, k, v)

    def set(self, **changes) -> None:
        """Change any of ``t``, ``r``, ``window``, ``index``; all are checked before any is applied."""
        self._apply(self._validate(changes))

    def update(self, **changes) -> LabView:
        """:meth:`set`, then return the :meth:`view` of the new state."""
        self.set(**changes)
        return self.view()

    # ------------------------------------------------------------------ computations

    def _curve(self, model: nn.Module) -> np.ndarray:
        rows = []
        for T in self.curve_T:
            rec, _ = recover(model, self.x0, float(T), noise=self.noise, steps_per_unit_time=self.steps_per_unit_time,
                             data_mean=self.data_mean)
            self.computed["recover"] += 1
            rows.append((rec.float().cpu() - self.x0).pow(2).mean(dim=(1, 2, 3)).numpy())
        return np.stack(rows).astype(np.float64)

    def _recover(self, row, t: float, index: int) -> torch.Tensor:
        key = (row, t, index)
        if key not in self._recoveries:
            model = self.global_model if row == "global" else self.local_models[row]
            rec, _ = recover(model, self.x0[index:index + 1], t, noise=self.noise[index:index + 1],
                             steps_per_unit_time=self.steps_per_unit_time, data_mean=self.data_mean)
            self.computed["recover"] += 1
            self._recoveries[key] = rec.float().cpu()[0]
        return self._recoveries[key]

    def schedule(self, r: int | None = None, window: tuple[float, float] | None = None) -> HybridSchedule:
        """The hybrid schedule of a state: global model on ``window``, local model of radius ``r`` elsewhere."""
        v = self._validate(dict(r=self.r if r is None else r, window=self.window if window is None else window))
        lo, hi = v["window"]
        return HybridSchedule(self.local_models[v["r"]], [(lo, hi, self.global_model)])

    def _sample(self, key, schedule) -> tuple[torch.Tensor, SolveRecord]:
        if key not in self._samples:
            x, rec = sample(schedule, n=self.n_samples, steps=self.sample_steps, seed=self.seed,
                            image_size=self.x0.shape[-1], device=self.device, data_mean=self.data_mean)
            self.computed["sample"] += 1
            self._samples[key] = (x.float().cpu(), rec)
        return self._samples[key]

    def view(self) -> LabView:
        """Compute (or fetch from the caches) everything the current state shows."""
        t, r, (lo, hi), i = self.t, self.r, self.window, self.index
        x0 = self.x0[i]
        rec_local, rec_global = self._recover(r, t, i), self._recover("global", t, i)
        # samples are cached by (window, r): moving t or the image does not resample. The all-global samples
        # (same noise) do not depend on r; an empty window is all-local, a full one all-global.
        samples, record = self._sample(("hybrid", lo, hi, r), self.schedule(r, (lo, hi)))
        global_samples, _ = self._sample(("global",), HybridSchedule(self.global_model))
        curve_local = self.curves[r].mean(axis=1)
        curve_global = self.curves["global"].mean(axis=1)
        return LabView(
            t=t, r=r, window=(lo, hi), index=i,
            x0=x0.clone(),
            x_t=path.interpolate(x0, self.noise[i], t),
            recovered_local=rec_local, recovered_global=rec_global,
            mse_local=float((rec_local - x0).pow(2).mean()), mse_global=float((rec_global - x0).pow(2).mean()),
            cmi_t=self.cmi_t, cmi=self.cmi[r], cmi_hw=None if self.cmi_hw is None else self.cmi_hw[r],
            cmi_at_t=_interp(t, self.cmi_t, self.cmi[r]), cmi_source=self.cmi_source,
            curve_T=self.curve_T, curve_local=curve_local, curve_global=curve_global,
            curve_local_at_t=_interp(t, self.curve_T, curve_local),
            curve_global_at_t=_interp(t, self.curve_T, curve_global),
            samples=samples, record=record, global_samples=global_samples,
            sample_gap=float((samples - global_samples).pow(2).mean()),
            global_only_macs=self.global_only_macs,
        )

    def recovery_steps(self, t: float | None = None) -> int:
        """The number of Euler steps (model calls) of a recovery from ``t`` (default: the current ``t``)."""
        return steps_for(self.t if t is None else self._validate(dict(t=t))["t"], self.steps_per_unit_time)

    # ------------------------------------------------------------------ drawing

    def figure(self, view: LabView | None = None):
        """Draw one state with matplotlib (default: the current one) and return the figure.

        Top row: the clean image, ``x_t``, its recovery by the local model of radius ``r`` and by the global model.
        Bottom row: the CMI ``I(A:C|B)`` against ``t`` at buffer radius ``r`` (other radii faint, the sampler's
        global window shaded), the recovery MSE against ``T`` (the dot is the curve at ``t``, the cross this image
        recovered from exactly ``t``), and the hybrid samples.
        """
        import matplotlib.pyplot as plt

        v = self.view() if view is None else view
        fig = plt.figure(figsize=(13, 7), layout="constrained")
        gs = fig.add_gridspec(2, 4, height_ratios=[1, 1.1])
        tiles = [
            (v.x0, "clean $x_0$"),
            (v.x_t, f"noisy $x_t$, t = {v.t:.2f}"),
            (v.recovered_local, f"local r = {v.r}: MSE {v.mse_local:.4f}"),
            (v.recovered_global, f"global: MSE {v.mse_global:.4f}"),
        ]
        for k, (img, title) in enumerate(tiles):
            ax = fig.add_subplot(gs[0, k])
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()

        ax = fig.add_subplot(gs[1, 0])
        for r in self.radii:
            if r != v.r:
                ax.plot(self.cmi_t, self.cmi[r], color="0.8", lw=1)
        ax.plot(v.cmi_t, v.cmi, "o-", ms=3, color="C0", label=f"buffer radius r = {v.r}")
        if v.cmi_hw is not None:
            ax.fill_between(v.cmi_t, v.cmi - v.cmi_hw, v.cmi + v.cmi_hw, color="C0", alpha=0.2)
        if np.isfinite(v.cmi_at_t):
            ax.plot([v.t], [v.cmi_at_t], "o", ms=9, mfc="none", mec="red", mew=2)
        ax.axvline(v.t, color="red", lw=0.8)
        ax.axvspan(*v.window, color="orange", alpha=0.2, label="sampler: global window")
        ax.set_xlabel("t")
        ax.set_ylabel("nats")
        ax.set_title(f"$I(A:C\\mid B)$, {v.cmi_source}", fontsize=9)
        ax.legend(fontsize=7)

        ax = fig.add_subplot(gs[1, 1])
        for r in self.radii:
            if r != v.r:
                ax.plot(self.curve_T, self.curves[r].mean(axis=1), color="0.8", lw=1)
        ax.plot(v.curve_T, v.curve_local, "o-", ms=3, color="C2", label=f"local r = {v.r}")
        ax.plot(v.curve_T, v.curve_global, "s--", ms=3, color="k", label="global")
        for y, c in ((v.curve_local_at_t, "C2"), (v.curve_global_at_t, "k")):
            if np.isfinite(y) and y > 0:
                ax.plot([v.t], [y], "o", ms=9, mfc="none", mec=c, mew=2)
        for y, c in ((v.mse_local, "C2"), (v.mse_global, "k")):
            if y > 0:
                ax.plot([v.t], [y], "x", ms=8, color=c, mew=2)
        ax.axvline(v.t, color="red", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("noise time T")
        ax.plot([], [], "x", color="0.3", label="this image")
        ax.set_title(f"recovery MSE, mean of {self.n_images} images", fontsize=9)
        ax.legend(fontsize=7)

        ax = fig.add_subplot(gs[1, 2:])
        show_images(v.samples, nrow=math.ceil(len(v.samples) / 2) if len(v.samples) > 4 else len(v.samples), ax=ax)
        lo, hi = v.window
        ax.set_title(f"hybrid samples: global on [{lo:.2f}, {hi:.2f}), local r = {v.r} elsewhere\n"
                     f"{v.record.macs_per_image / 1e6:.1f} M multiply-adds per sample (all-global "
                     f"{v.global_only_macs / 1e6:.1f} M)\nMSE to the all-global samples (same noise): "
                     f"{v.sample_gap:.4f}", fontsize=9)
        return fig

    def widget(self, draw: bool = True) -> "LabWidget":
        """The ipywidgets front end (sliders for ``t``, ``r``, ``window`` and the image); see :class:`LabWidget`."""
        return LabWidget(self, draw=draw)

    def __repr__(self) -> str:
        return (f"TransitionLab({self.n_images} images, local r in {self.radii}, global {label(self.global_model)}, "
                f"state {self.state})")


class LabWidget:
    """Sliders wired to a :class:`TransitionLab`: moving one calls ``lab.update`` and redraws into ``output``.

    Attributes: ``t`` (FloatSlider), ``r`` (SelectionSlider over the lab's radii), ``window`` (FloatRangeSlider),
    ``index`` (IntSlider), ``output`` (Output, where the figure goes), ``message`` (HTML, shows an error),
    ``box`` (the VBox that is displayed), ``view`` (the last :class:`LabView`), ``error`` (the last error message,
    ``""`` when none) and ``draws`` (how many figures were drawn). The sliders
    use ``continuous_update=False``: the lab recomputes when a slider is released, not while it is dragged.
    With ``draw=False`` nothing is drawn (for tests and scripts).
    """

    def __init__(self, lab: TransitionLab, draw: bool = True):
        import ipywidgets as widgets

        self.lab, self.draw, self.error, self.draws = lab, draw, "", 0
        style = {"description_width": "initial"}
        self.t = widgets.FloatSlider(value=lab.t, min=0.0, max=1.0, step=0.01, readout_format=".2f",
                                     description="noise time t", continuous_update=False, style=style)
        self.r = widgets.SelectionSlider(options=lab.radii, value=lab.r, description="radius r",
                                         continuous_update=False, style=style)
        self.window = widgets.FloatRangeSlider(value=lab.window, min=0.0, max=1.0, step=0.05, readout_format=".2f",
                                               description="global window", continuous_update=False, style=style)
        self.index = widgets.IntSlider(value=lab.index, min=0, max=lab.n_images - 1, description="image",
                                       continuous_update=False, style=style)
        self.message = widgets.HTML()
        self.output = widgets.Output()
        self.box = widgets.VBox([widgets.HBox([self.t, self.r]), widgets.HBox([self.window, self.index]),
                                 self.message, self.output])
        for name in _STATE:
            getattr(self, name).observe(partial(self._changed, name), names="value")
        self.view = None
        self.refresh()

    def _changed(self, name: str, change) -> None:
        value = change["new"]
        if name == "window":
            value = tuple(value)
        try:
            self.lab.set(**{name: value})
        except ValueError as e:
            self.error = str(e)
            self.message.value = f"<b style='color:#b00'>{self.error}</b>"
            return
        self.refresh()

    def refresh(self) -> LabView:
        """Recompute the lab's view for its current state and redraw it."""
        self.view = self.lab.view()
        self.error, self.message.value = "", ""
        if self.draw:
            import matplotlib.pyplot as plt
            from IPython.display import clear_output, display

            fig = self.lab.figure(self.view)
            with self.output:
                clear_output(wait=True)
                display(fig)
            plt.close(fig)
            self.draws += 1
        return self.view

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)
