"""The two phases of training, measured: clinging and dimpling over training.

:mod:`dmmlib.geometry` measures the decision boundary of *one* model at *one*
moment. This module turns those measurements into curves over training for
many seeds at once, and provides the small pieces the chapter's toy settings
need:

* :func:`scale_init` multiplies a model's initial parameters (the
  "initialisation scale" of Melamed, Yehudai & Vardi 2023);
* :class:`ParamSnapshots` keeps copies of an ensemble's parameters at chosen
  steps (for pictures of the boundary over training);
* :class:`EnsembleGeometry` records :class:`dmmlib.geometry.GeometryRecorder`
  measures for every member of a :class:`dmmlib.ensemble.Ensemble` during
  :func:`dmmlib.ensemble.train_ensemble`;
* :func:`detect_phases` marks a clinging and a dimpling phase in those curves
  by explicit rules, and says when the curves do not show one;
* :func:`boundary_gap_2d` measures how far a 2-D boundary runs from a line,
  and :func:`line_gap` sums it up as one number per model (the toy's
  clinging measure);
* :func:`orthogonal_drift` checks that gradient descent never changes the
  first-layer weights' component orthogonal to the data;
* :func:`wavy_checkerboard` is a curved 2-D manifold in R^3 (the graph of a
  smooth height function) with exact tangent planes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from .._validate import (
    check_basis,
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    check_tensor,
)
from ..ensemble import Ensemble
from ..geometry import GeometryRecorder, Grid2D
from ..synthetic import ManifoldDataset, label_coordinates

__all__ = [
    "scale_init",
    "ParamSnapshots",
    "EnsembleGeometry",
    "Phases",
    "detect_phases",
    "boundary_gap_2d",
    "line_gap",
    "orthogonal_drift",
    "wavy_checkerboard",
    "CLINGING_SIZES", "EXPLAINS_SIZES",
    "minimal_perturbations", "mean_class_distance", "tininess_row",
    "tininess_linear_null", "untrained_on_fractions", "gain_ratio_test",
    "scaled_mlp", "train_recorded",
    "factor_sweep",
    "explains_manifolds",
    "flat_probes", "on_fraction_over_seeds", "dimple_over_seeds",
]


def scale_init(model: nn.Module, factor: float) -> nn.Module:
    """Multiply every parameter of ``model`` by ``factor`` in place; return the model.

    For a one-hidden-layer ReLU network ``a . relu(W x + b) + c`` this
    multiplies the initial function by ``factor**2`` (plus ``factor * c``): a
    large factor starts training from a large random function (close to the
    "lazy" regime), a small one from a nearly constant one.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    factor = check_positive(factor, "factor")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return model


def line_gap(model: nn.Module, *, line_y: float = 0.5,
             x_range: tuple[float, float] = (0.05, 1.05), y_range: tuple[float, float] = (0.0, 1.0),
             shape: tuple[int, int] = (41, 201), quantile: float = 0.9) -> float:
    """How far a 2-D model's boundary strays from the line ``y = line_y``: one number.

    The ``quantile`` of :func:`boundary_gap_2d` over the grid columns in
    ``x_range`` (a column without a crossing in ``y_range`` counts as 1, the
    height of the box): the boundary lies within the gap of the line over that
    share of the data's range. The five-point toy's clinging measure.

    Parameters
    ----------
    model : torch.nn.Module
        A 2-D classifier returning logits.
    line_y : float
        The line's height.
    x_range, y_range : tuple of float
        The grid's box (``x_range`` is the data's range).
    shape : tuple of int
        Grid resolution ``(nx, ny)`` as in :func:`dmmlib.geometry.decision_grid_2d`.
    quantile : float
        In (0, 1].

    Returns
    -------
    float
    """
    from ..geometry import decision_grid_2d

    q = check_positive(quantile, "quantile")
    if q > 1.0:
        raise ValueError(f"quantile: must lie in (0, 1], got {quantile!r}")
    grid = decision_grid_2d(model, x_range, y_range, shape)
    gaps = boundary_gap_2d(grid, line_y=line_y).clamp(max=1.0)
    return float(torch.quantile(gaps.double(), q))


def _check_steps(at: object, name: str = "at") -> list[int]:
    if isinstance(at, (str, bytes)) or not isinstance(at, Sequence) or not at:
        raise TypeError(f"{name}: expected a non-empty list of step numbers")
    steps = sorted({check_int(int(s) if not isinstance(s, bool) else s, name, 0) for s in at})
    return steps


class ParamSnapshots:
    """A ``train_ensemble`` callback that keeps the parameters at chosen steps.

    ``at`` counts optimizer steps *taken* (0 = the initialisation); call
    :meth:`initial` with the untrained ensemble to store step 0. ``params[s]``
    is then a dict of stacked (M, ...) tensors (CPU clones), and
    :meth:`ensemble_at` returns an :class:`~dmmlib.ensemble.Ensemble` holding
    them.
    """

    def __init__(self, at: Sequence[int]) -> None:
        self.at = _check_steps(at)
        self.params: dict[int, dict[str, torch.Tensor]] = {}
        self._template: Ensemble | None = None

    def _store(self, step: int, ens: Ensemble) -> None:
        self._template = ens
        self.params[step] = {k: v.detach().cpu().clone() for k, v in ens.params.items()}

    def initial(self, ens: Ensemble) -> None:
        """Store the parameters before training (step 0)."""
        if not isinstance(ens, Ensemble):
            raise TypeError(f"ens: expected an Ensemble, got {type(ens).__name__}")
        if 0 in self.at:
            self._store(0, ens)

    def __call__(self, step: int, ens: Ensemble) -> None:
        """Store after the training steps listed in ``at`` (the callback's signature)."""
        if step + 1 in self.at:
            self._store(step + 1, ens)

    def ensemble_at(self, step: int) -> Ensemble:
        """An Ensemble (on the CPU) with the parameters stored at ``step``."""
        if step not in self.params or self._template is None:
            raise KeyError(f"step {step} was not stored; stored: {sorted(self.params)}")
        ens = copy.copy(self._template)
        ens.params = {k: v.clone() for k, v in self.params[step].items()}
        ens.buffers = {k: v.detach().cpu().clone() for k, v in self._template.buffers.items()}
        ens.history = {"loss": [], "train_acc": []}
        return ens


class EnsembleGeometry:
    """Clinging and dimpling measures of every ensemble member over training.

    A callback for :func:`dmmlib.ensemble.train_ensemble`: at the chosen steps
    (optimizer steps taken; call :meth:`initial` for step 0) it measures every
    member with its own :class:`~dmmlib.geometry.GeometryRecorder` at the
    points ``x`` with labels ``y`` and tangent bases ``basis``.
    ``recorder_kwargs`` go to the recorders (``max_distance``, ``tol``,
    ``n_scan``, ``depth``).

    :meth:`history` returns the curves as tensors of shape (M, T).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, basis: torch.Tensor, at: Sequence[int],
                 **recorder_kwargs: Any) -> None:
        self.at = _check_steps(at)
        self._args = (x, y, basis)
        self._kwargs = recorder_kwargs
        GeometryRecorder(x, y, basis, **recorder_kwargs)  # validate the arguments now
        self.recorders: list[GeometryRecorder] = []

    def _record(self, step: int, ens: Ensemble) -> None:
        if not self.recorders:
            self.recorders = [GeometryRecorder(*self._args, **self._kwargs)
                              for _ in range(len(ens))]
        if len(self.recorders) != len(ens):
            raise ValueError(f"ens: has {len(ens)} members, the recorder was started with "
                             f"{len(self.recorders)}")
        for i, rec in enumerate(self.recorders):
            rec.record(ens.model(i), step)

    def initial(self, ens: Ensemble) -> None:
        """Measure the untrained ensemble (step 0)."""
        if not isinstance(ens, Ensemble):
            raise TypeError(f"ens: expected an Ensemble, got {type(ens).__name__}")
        if 0 in self.at:
            self._record(0, ens)

    def __call__(self, step: int, ens: Ensemble) -> None:
        """Record after the training steps listed in ``at`` (the callback's signature)."""
        if step + 1 in self.at:
            self._record(step + 1, ens)

    def history(self) -> dict[str, torch.Tensor]:
        """Every recorded measure as a float64 tensor (M, T); ``step`` is (T,)."""
        if not self.recorders or not self.recorders[0].history["step"]:
            raise RuntimeError("nothing recorded yet")
        out = {k: torch.tensor([r.history[k] for r in self.recorders], dtype=torch.float64)
               for k in self.recorders[0].history}
        out["step"] = out["step"][0]
        return out


class Phases(NamedTuple):
    """Where the clinging and dimpling phases lie in a recorded history.

    ``cling_step``: the first recorded step at which the boundary clings
    (``nan`` if it never does); ``at_init``: it already clings at the first
    record; ``kept``: it clings at every record from ``cling_step`` on;
    ``fit_step``: the first recorded step at which the training accuracy is
    within ``accuracy_tol`` of its final value; ``gain``: training accuracy
    gained from ``cling_step`` to ``fit_step`` (``nan`` without clinging);
    ``clinging_seen``: the boundary had to *move* to cling (it did not cling at
    the first record, and did later); ``dimpling_seen``: it kept clinging while
    the training accuracy rose by at least ``min_gain``.
    """

    cling_step: float
    at_init: bool
    kept: bool
    fit_step: float
    gain: float
    clinging_seen: bool
    dimpling_seen: bool


def detect_phases(step: torch.Tensor, clings: torch.Tensor, accuracy: torch.Tensor, *,
                  accuracy_tol: float = 0.01, min_gain: float = 0.1) -> Phases:
    """Mark the two phases of the dimpled-manifold model in recorded training curves.

    The caller decides, record by record, whether the boundary *clings* (a
    boolean curve: e.g. "the boundary is at least three times closer along its
    normal than along the manifold", or "the boundary runs within 0.1 of the
    line"); the rules here are then explicit, so a reader can disagree with them:

    * the **clinging phase** runs from the start to the first record at which
      the boundary clings; it is *seen* only if the boundary did not cling at
      the first record (a boundary that starts close has nothing to cling to);
    * the **dimpling phase** runs from there to the first record at which the
      training accuracy comes within ``accuracy_tol`` of its final value; it
      is *seen* if the boundary clings at every record of that interval while
      the training accuracy rises by at least ``min_gain``.

    Parameters
    ----------
    step, clings, accuracy: 1-D curves of equal length: recorded steps, the
        clinging state (bool), the training accuracy (e.g. mean over seeds).
    """
    st = check_tensor(step, "step", floating=False)
    if st.is_floating_point() and not bool(torch.isfinite(st).all()):
        raise ValueError("step: contains NaN or infinite values")
    s = st.double().flatten()
    if not isinstance(clings, torch.Tensor) or clings.dtype != torch.bool:
        raise TypeError("clings: expected a boolean tensor (the clinging state per record)")
    c = clings.flatten()
    a = check_tensor(accuracy, "accuracy").double().flatten()
    if not (s.shape == c.shape == a.shape) or s.numel() < 2:
        raise ValueError("step, clings, accuracy: expected 1-D curves of one length >= 2, got "
                         f"shapes {tuple(st.shape)}, {tuple(clings.shape)}, "
                         f"{tuple(accuracy.shape)}")
    check_nonnegative(accuracy_tol, "accuracy_tol")
    check_nonnegative(min_gain, "min_gain")
    final = float(a[-1])
    i_fit = int(torch.nonzero(a >= final - accuracy_tol)[0])
    if not bool(c.any()):
        return Phases(math.nan, False, False, float(s[i_fit]), math.nan, False, False)
    i_cling = int(torch.nonzero(c)[0])
    kept = bool(c[i_cling:].all())
    i_end = max(i_fit, i_cling)
    gain = float(a[i_end] - a[i_cling])
    held = bool(c[i_cling : i_end + 1].all())
    return Phases(float(s[i_cling]), i_cling == 0, kept, float(s[i_fit]), gain,
                  i_cling > 0, held and gain >= min_gain)


def boundary_gap_2d(grid: Grid2D, line_y: float = 0.5,
                    x_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Vertical distance from the line ``y = line_y`` to the nearest boundary crossing.

    For every grid column (restricted to ``x_range`` if given) the margin's
    sign changes along the column are located by linear interpolation and the
    one closest to the line is kept. Columns without a crossing give ``inf``.
    The largest value over the data's range says how far the boundary strays
    from the line (the authors' toy: within about 0.1 after clinging).

    Returns
    -------
    (nx',) tensor of gaps, one per kept column.
    """
    if not isinstance(grid, Grid2D):
        raise TypeError(f"grid: expected a dmmlib.geometry.Grid2D, got {type(grid).__name__}")
    line_y = check_finite(line_y, "line_y")
    if x_range is not None:
        if (isinstance(x_range, (str, bytes)) or not isinstance(x_range, Sequence)
                or len(x_range) != 2):
            raise TypeError(f"x_range: expected a pair (low, high), got {x_range!r}")
        lo_x, hi_x = (check_finite(v, "x_range") for v in x_range)
        if lo_x > hi_x:
            raise ValueError(f"x_range: low {lo_x} is above high {hi_x}")
    m = grid.margin.double()
    ys = grid.yy[:, 0].double()
    xs = grid.xx[0].double()
    cols = torch.ones_like(xs, dtype=torch.bool)
    if x_range is not None:
        cols = (xs >= x_range[0]) & (xs <= x_range[1])
        if not bool(cols.any()):
            raise ValueError(f"x_range: {x_range} contains no grid column")
    m = m[:, cols]
    lo, hi = m[:-1], m[1:]
    change = (lo > 0) != (hi > 0)
    t = torch.where(change, lo / (lo - hi).where(change, torch.ones_like(lo)),
                    torch.zeros_like(lo))
    y_cross = ys[:-1, None] + t * (ys[1:] - ys[:-1])[:, None]
    gap = torch.where(change, (y_cross - line_y).abs(), torch.full_like(lo, math.inf))
    return gap.min(0).values


def orthogonal_drift(W0: torch.Tensor, W1: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """How much the weights' component orthogonal to ``span(basis)`` changed, per model.

    ``||(W1 - W0) P|| / ||W0 P||`` with ``P = I - U U^T`` (Frobenius norms),
    for first-layer weights of shape (M, width, n) or (width, n) and an
    orthonormal ``basis`` ``U`` (n, k) of the space the inputs span. Plain
    gradient descent (and momentum) without weight decay leaves it at 0: every
    weight gradient ``delta x^T`` has its rows in the span of the inputs
    (Melamed, Yehudai & Vardi 2023).
    """
    a = check_tensor(W0, "W0", min_ndim=2)
    b = check_tensor(W1, "W1", min_ndim=2)
    if a.shape != b.shape:
        raise ValueError(f"W1: shape {tuple(b.shape)} differs from W0's {tuple(a.shape)}")
    u = check_tensor(basis, "basis", min_ndim=2)
    if u.ndim != 2 or u.shape[0] != a.shape[-1]:
        raise ValueError(f"basis: expected shape ({a.shape[-1]}, k), got {tuple(u.shape)}")
    check_basis(u.unsqueeze(0), torch.zeros(1, u.shape[0], dtype=u.dtype), "basis")
    a64, b64, u64 = a.double(), b.double(), u.double()
    proj = torch.eye(u64.shape[0], dtype=torch.float64) - u64 @ u64.T

    def flat(w: torch.Tensor) -> torch.Tensor:
        return w.reshape(-1, *w.shape[-2:])

    before = (flat(a64) @ proj).flatten(1).norm(dim=1)
    change = (flat(b64 - a64) @ proj).flatten(1).norm(dim=1)
    out = change / before.clamp_min(1e-300)
    return out if a.ndim > 2 else out[0]


def wavy_checkerboard(
    cells: int = 5,
    points_per_cell: int = 1,
    *,
    amplitude: float = 0.15,
    frequency: float = 1.0,
    z: float = 0.5,
    jitter: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ManifoldDataset:
    """A checkerboard on the curved surface ``z = z0 + A sin(2 pi f x) sin(2 pi f y)`` in R^3.

    The curved sibling of :func:`dmmlib.synthetic.checkerboard_plane`: the same
    ``cells`` x ``cells`` checkerboard labels on the unit square, lifted onto
    the graph of a smooth height function. The exact tangent plane at every
    point is spanned by ``(1, 0, h_x)`` and ``(0, 1, h_y)``, orthonormalised.

    Parameters
    ----------
    cells, points_per_cell, jitter, seed, dtype: as in
        :func:`dmmlib.synthetic.checkerboard_plane` (points at the cell centres,
        or a regular sub-grid, or uniform in each cell with ``jitter``).
    amplitude, frequency: the height function (amplitude 0: the flat plane).
    z: the mean height ``z0``.
    """
    check_int(cells, "cells", 1)
    check_int(points_per_cell, "points_per_cell", 1)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    amp = float(amplitude)
    if not math.isfinite(amp) or amp < 0:
        raise ValueError(f"amplitude: expected a finite number >= 0, got {amplitude!r}")
    freq = check_positive(frequency, "frequency")
    z = check_finite(z, "z")
    if jitter:
        gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
        local = torch.rand(cells * cells, points_per_cell, 2, generator=gen,
                           dtype=torch.float64)
    else:
        side = math.isqrt(points_per_cell)
        if side * side != points_per_cell:
            raise ValueError("points_per_cell: must be a perfect square (1, 4, 9, ...) unless "
                             f"jitter=True, got {points_per_cell}")
        g = (torch.arange(side, dtype=torch.float64) + 0.5) / side
        local = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(1, -1, 2)
        local = local.expand(cells * cells, -1, -1)
    ij = torch.stack(torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij"),
                     -1).reshape(-1, 2)
    xy = ((ij[:, None, :].double() + local) / cells).reshape(-1, 2)
    w = 2 * math.pi * freq
    sx, sy = torch.sin(w * xy[:, 0]), torch.sin(w * xy[:, 1])
    height = float(z) + amp * sx * sy
    hx = amp * w * torch.cos(w * xy[:, 0]) * sy
    hy = amp * w * sx * torch.cos(w * xy[:, 1])
    x = torch.cat([xy, height[:, None]], 1)
    ones, zeros = torch.ones_like(hx), torch.zeros_like(hx)
    jac = torch.stack([torch.stack([ones, zeros, hx], 1), torch.stack([zeros, ones, hy], 1)], 2)
    tangent, _ = torch.linalg.qr(jac, mode="reduced")
    y = label_coordinates(xy * 2 - 1, "checkerboard", cells=cells, extent=1.0)
    desc = (f"{cells}x{cells} checkerboard on the surface z = {float(z):g} + {amp:g} "
            f"sin(2 pi {freq:g} x) sin(2 pi {freq:g} y) in R^3, {points_per_cell} point(s) "
            f"per cell{' (jittered)' if jitter else ''}")
    return ManifoldDataset(x.to(dtype), y, tangent.to(dtype), desc, xy.to(dtype))


# ------------------------------------------------------------------ the chapters' networks
def scaled_mlp(in_features: int, width: int, alpha: float, seed: int, *, mean: float = 0.5,
               std: float = 0.5, n_classes: int = 2) -> nn.Module:
    """The one-hidden-layer ReLU network of "Clinging and dimpling", initialised at scale ``alpha``.

    ``torch.manual_seed(seed)`` (the global RNG is reseeded), a
    :class:`dmmlib.models.MLP` of one hidden layer of ``width`` units, then
    :func:`scale_init` by ``alpha``.
    """
    from ..models import MLP

    torch.manual_seed(seed)
    net = MLP(in_features, hidden=(width,), n_classes=n_classes, mean=mean, std=std)
    return scale_init(net, alpha)


def train_recorded(members: Sequence[nn.Module], data: tuple[torch.Tensor, torch.Tensor],
                   recorder: Any, *, epochs: int, lr: float | Sequence[float],
                   optimizer: str = "sgd", momentum: float = 0.0) -> Ensemble:
    """Train ``members`` together (full batch) while ``recorder`` watches every step.

    ``recorder`` is a :class:`ParamSnapshots` or an :class:`EnsembleGeometry`
    (anything with ``initial(ensemble)`` and ``recorder(step, ensemble)``);
    it sees the untrained ensemble first.

    Returns
    -------
    Ensemble
        The trained ensemble.
    """
    from ..ensemble import train_ensemble

    ens = Ensemble.from_models(list(members))
    recorder.initial(ens)
    train_ensemble(ens, data, epochs=epochs, lr=lr, optimizer=optimizer, momentum=momentum,
                   callback=recorder, progress=False)
    return ens


def factor_sweep(x: torch.Tensor, y: torch.Tensor, tangent: torch.Tensor,
                 measure_idx: torch.Tensor, settings: Sequence[dict[str, Any]], *, seeds: int,
                 steps: int, lr0: float, momentum: float, std: float = 0.1,
                 mean: float = 0.5, optimizer: str = "sgd") -> list[dict]:
    """Train :func:`scaled_mlp` networks for each setting and measure their boundary at the end.

    Each setting is a dict with ``alpha`` (initialisation scale), ``wd``
    (weight decay), ``lr_mult`` (learning-rate multiplier; the rate is
    ``lr0 * lr_mult / alpha**2``) and ``width``; every setting is trained
    from ``seeds`` seeds (full batch, ``optimizer`` with ``momentum``, one
    ensemble per width). At the points ``measure_idx`` a :class:`dmmlib.geometry.GeometryRecorder`
    measures the boundary, and :func:`orthogonal_drift` the first layer's
    drift out of the tangent space at the first point (``drift``) and out of
    the span of the normalised inputs ``(x - mean) / std`` (``drift_span``).
    The theorem of Melamed et al. (2023) freezes the second exactly; the two
    agree when the data's affine subspace passes through ``mean`` (the
    default 0.5 centres :func:`dmmlib.synthetic.linear_subspace`'s data).
    With ``mean=0`` the inputs span one more direction (the offset), and the
    weights move along it.

    Returns
    -------
    list of dict
        One row per (setting, seed): the setting's keys, ``seed``,
        ``accuracy``, ``off_fraction`` (mean over the points), ``on_fraction``
        (the median over the points of the normal's on-manifold share, the
        statistic of :func:`dmmlib.hypotheses.clinging_test`), ``dist_normal``,
        ``dist_on``, ``drift``, ``drift_span``.
    """
    from ..ensemble import train_ensemble

    U = tangent[0]
    z = (x.double() - mean) / std
    _, sv, vh = torch.linalg.svd(z, full_matrices=False)
    span = vh[sv > sv[0] * 1e-6].T.to(x.dtype)  # orthonormal basis of the inputs' span
    out = []
    rec = GeometryRecorder(x[measure_idx], y[measure_idx], tangent[measure_idx],
                           max_distance=1.0, n_scan=16, tol=1e-3)
    for width in sorted({st["width"] for st in settings}):
        group = [st for st in settings if st["width"] == width]
        runs = [(st, seed) for st in group for seed in range(seeds)]
        ens = Ensemble.from_models([scaled_mlp(x.shape[1], width, st["alpha"], seed, std=std,
                                               mean=mean) for st, seed in runs])
        W0 = ens.params["net.0.weight"].clone()
        train_ensemble(ens, (x, y), epochs=steps,
                       lr=[lr0 * st["lr_mult"] / st["alpha"] ** 2 for st, _ in runs],
                       weight_decay=[st["wd"] for st, _ in runs], optimizer=optimizer,
                       momentum=momentum, progress=False)
        drift = orthogonal_drift(W0, ens.params["net.0.weight"], U)
        drift_span = orthogonal_drift(W0, ens.params["net.0.weight"], span)
        for i, (st, seed) in enumerate(runs):
            per = rec.measure(ens.model(i))
            out.append({**st, "seed": seed, "accuracy": float(per["correct"].double().mean()),
                        "off_fraction": float(per["off_fraction"].mean()),
                        "on_fraction": float((1 - per["off_fraction"].double() ** 2)
                                             .clamp(min=0).sqrt().median()),
                        "dist_normal": float(per["dist_normal"].mean()),
                        "dist_on": float(per["dist_on"].mean()), "drift": float(drift[i]),
                        "drift_span": float(drift_span[i])})
    return out


# ------------------------------------------------------------------ tests against nulls
def flat_probes(ds: ManifoldDataset, n: int, *, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probe points on a flat manifold, spread over the data's coordinate range.

    For the dimple test (:func:`dmmlib.hypotheses.dimple_test`): points of the
    manifold near and between the training points. With ``k = 1`` they are
    evenly spaced, with ``k = 2`` on a square grid (``ceil(sqrt(n))**2``
    points), otherwise uniform in the coordinates' bounding box (seeded by
    ``seed``; the global RNG is untouched).

    Parameters
    ----------
    ds : ManifoldDataset
        A flat manifold (the same tangent basis at every point).
    n : int
        About how many probes.
    seed : int
        Seeds the uniform probes when ``k > 2``.

    Returns
    -------
    tuple of torch.Tensor
        ``probes`` (P, D), their tangent bases (P, D, k) and coordinates (P, k).
    """
    if not isinstance(ds, ManifoldDataset):
        raise TypeError(f"ds: expected a ManifoldDataset, got {type(ds).__name__}")
    n = check_int(n, "n", 4)
    U = ds.tangent[0]
    if not torch.allclose(ds.tangent, U.expand_as(ds.tangent), atol=1e-6):
        raise ValueError("ds: the manifold is not flat (its tangent basis changes); the dimple "
                         "test's affine fit needs a flat manifold")
    c = ds.x @ U                                          # (N, k) coordinates
    origin = ds.x[0] - U @ c[0]                           # the part of the plane orthogonal to U
    lo, hi = c.min(0).values, c.max(0).values
    k = U.shape[1]
    if k == 1:
        coords = torch.linspace(0, 1, n, dtype=U.dtype)[:, None]
    elif k == 2:
        side = math.ceil(math.sqrt(n))
        g = torch.linspace(0, 1, side, dtype=U.dtype)
        coords = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    else:
        gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
        coords = torch.rand(n, k, generator=gen, dtype=U.dtype)
    coords = lo + coords * (hi - lo)
    probes = origin + coords @ U.T
    return probes, U.expand(probes.shape[0], *U.shape), coords


def on_fraction_over_seeds(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor,
                           basis: torch.Tensor) -> torch.Tensor:
    """The clinging measure of each model: the median on-manifold share of its normal at ``x``.

    One value per model (float64, CPU), as :func:`dmmlib.hypotheses.clinging_test`
    measures it; a null band over untrained networks or linear classifiers
    comes from the same function applied to them.
    """
    from ..hypotheses import clinging_test

    return torch.tensor([clinging_test(m, x, y, basis).measured for m in models],
                        dtype=torch.float64)


def dimple_over_seeds(trained: Sequence[nn.Module], untrained: Sequence[nn.Module],
                      ds: ManifoldDataset, probes: torch.Tensor, basis: torch.Tensor,
                      coords: torch.Tensor, *, max_distance: float = 1.0,
                      bend_floor: float = 0.02) -> tuple[list[Any], Any, float]:
    """The dimple test of each trained model against untrained networks of its architecture.

    The locality null is the band of ``profile.locality`` over ``untrained``
    (those whose boundary crosses at enough probes). The summary is the median
    of the trained models' localities, where a model whose boundary is as flat
    as a plane (bend at most ``bend_floor``) counts at the null's median: it
    shows no dimple.

    Returns
    -------
    tests : list of dmmlib.hypotheses.DimpleTest
        One per trained model.
    null : dmmlib.nulls.NullBand
        ``kind="untrained network"``.
    measured : float
        The median locality as described.
    """
    from ..hypotheses import dimple_test, spearman_null
    from ..nulls import band

    def run(model: nn.Module, null: Any) -> Any:
        return dimple_test(model, probes, basis, ds.x, ds.y, locality_null=null, coords=coords,
                           max_distance=max_distance, bend_floor=bend_floor)

    first = spearman_null(max(int(probes.shape[0]), 4))
    values = [run(m, first).profile.locality for m in untrained]
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 3:
        raise ValueError(f"untrained: only {len(finite)} of {len(values)} untrained networks "
                         "cross the manifold's neighbourhood; raise max_distance or add seeds")
    null = band(finite, kind="untrained network")
    tests = [run(m, null) for m in trained]
    per = [t.profile.locality if t.flat == "supports" else null.median for t in tests]
    per = [v if math.isfinite(v) else null.median for v in per]
    return tests, null, float(torch.tensor(per).median())


# ------------------------------------------------------------------ "what the DMM explains"
def explains_manifolds(n: int, k: int, n_train: int, n_test: int, *, cells: int = 4,
                       n_classes: int = 2, amplitude: float = 0.1
                       ) -> dict[str, dict[str, torch.Tensor]]:
    """The three synthetic manifolds of "What the dimpled manifold model explains".

    A flat ``k``-subspace, a sinusoidal surface (``amplitude``) and a sphere
    patch in R^n (:mod:`dmmlib.synthetic`, seed 0), labelled by intervals of
    the manifold coordinates (``cells`` per axis, ``n_classes`` classes), each
    split into ``n_train`` training and ``n_test`` test points.

    Returns
    -------
    dict
        Per manifold: ``x, y, U`` (training points, labels, tangent bases)
        and ``xt, yt, Ut`` (the same for the test points).
    """
    from .. import synthetic

    make: dict[str, Any] = {
        "flat subspace": synthetic.linear_subspace,
        "sinusoidal surface": lambda *a, **kw: synthetic.sinusoidal_surface(
            *a, amplitude=amplitude, **kw),
        "sphere patch": synthetic.sphere_patch,
    }
    out = {}
    for name, fn in make.items():
        ds = fn(n, k, n_train + n_test, labels="intervals", cells=cells, n_classes=n_classes,
                seed=0)
        tr, te = slice(0, n_train), slice(n_train, None)
        out[name] = {"x": ds.x[tr], "y": ds.y[tr], "U": ds.tangent[tr],
                     "xt": ds.x[te], "yt": ds.y[te], "Ut": ds.tangent[te]}
    return out


def minimal_perturbations(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int,
                          tangent: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The smallest L2 perturbations that change ``model``'s decision at correct points.

    :func:`dmmlib.attacks.minimal_l2` at ``(x, y)``; ``ok`` keeps the points
    that were correctly classified and attacked successfully.

    Parameters
    ----------
    model, x, y: the classifier and the points.
    steps: iterations of the attack.
    tangent: optional (N, n, k) tangent bases at ``x``: adds the fraction of
        each perturbation that lies in the tangent space.

    Returns
    -------
    dict
        On the CPU: ``x_adv`` (like ``x``), ``norm`` (N,) L2 norms of
        ``x_adv - x``, ``ok`` (N,) bool and, with ``tangent``, ``on_fraction``.
    """
    from ..attacks import minimal_l2
    from ..manifold import split_on_off_manifold
    from ..train import predict

    res = minimal_l2(model, x, y, steps=steps, progress=False)
    x_adv, success = res[0], res[1]
    ok = success & (predict(model, x) == y.to(x.device))
    out = {"x_adv": x_adv.cpu(), "ok": ok.cpu(), "norm": (x_adv - x).flatten(1).norm(dim=1).cpu()}
    if tangent is not None:
        out["on_fraction"] = split_on_off_manifold(x_adv - x, tangent).on_fraction.cpu()
    return out


def mean_class_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean L2 distance between the class means of ``x`` (over pairs of distinct classes)."""
    mu = torch.stack([x[y == c].flatten(1).mean(0) for c in y.unique()])
    d = torch.cdist(mu, mu)
    return float(d[~torch.eye(len(mu), dtype=torch.bool, device=d.device)].mean())


def tininess_row(data: str, alpha: float, norm: torch.Tensor, ok: torch.Tensor,
                 nearest_other: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor
                 ) -> dict[str, Any]:
    """One row of the table "why the perturbations are tiny".

    Parameters
    ----------
    data, alpha: the row's labels.
    norm, ok: minimal perturbation norms and which of them count (see
        :func:`minimal_perturbations`).
    nearest_other: per point, the distance to the nearest training point of
        another class.
    x_train, y_train: the training set (for the distance between class means).

    Returns
    -------
    dict
        ``data, alpha, minimal perturbation, nearest other-class point,
        between class means, rms distortion, attacked`` (medians over ``ok``).
    """
    n = x_train[0].numel()
    return {"data": data, "alpha": alpha, "minimal perturbation": float(norm[ok].median()),
            "nearest other-class point": float(nearest_other[ok].median()),
            "between class means": mean_class_distance(x_train, y_train),
            "rms distortion": float((norm[ok] / math.sqrt(n)).mean()),
            "attacked": float(ok.float().mean())}


def tininess_linear_null(x_train: torch.Tensor, y_train: torch.Tensor, x: torch.Tensor,
                         y: torch.Tensor, nearest_other: torch.Tensor, *, draws: int = 5,
                         fit_steps: int = 300, steps: int = 100, level: float = 0.9,
                         seed: int = 0) -> tuple[Any, torch.Tensor]:
    """The tilted-plane null of "why the perturbations are tiny".

    Logistic-regression classifiers (:func:`dmmlib.hypotheses.linear_classifier`)
    are trained on ``draws`` bootstrap resamples of the training set; at the
    test points each classifier gets right, its minimal L2 perturbation
    (:func:`minimal_perturbations`) is set against the distance to the nearest
    training point of another class, with the statistic of
    :func:`tininess_row`: median minimal norm over median nearest-other
    distance. A hyperplane has no dimples, so whatever ratio it reaches, a
    network's ratio inside that band says nothing about dimples.

    Parameters
    ----------
    x_train, y_train : torch.Tensor
        The training set (any shape per point; flattened for the planes).
    x, y : torch.Tensor
        Test points and labels.
    nearest_other : torch.Tensor
        (N,) distance from each test point to the nearest training point of
        another class.
    draws : int
        Number of bootstrap resamples (classifiers), at least 2.
    fit_steps, steps : int
        Gradient steps of each plane's training and of the attack.
    level : float
        Mass of the band.
    seed : int
        Seeds the resamples and the planes' initialisation.

    Returns
    -------
    tuple of (dmmlib.nulls.NullBand, torch.Tensor)
        The band of the ratio over the classifiers (``kind="linear
        classifier"``) and their test accuracies (draws,).
    """
    from ..hypotheses import linear_classifier
    from ..nulls import band

    draws = check_int(draws, "draws", 2)
    seed = check_int(seed, "seed", 0)
    if len(x) != len(y) or len(x) != len(nearest_other):
        raise ValueError(f"x, y, nearest_other: expected one entry per test point, got "
                         f"{len(x)}, {len(y)} and {len(nearest_other)}")
    gen = torch.Generator().manual_seed(seed)
    flat = x_train.flatten(1)
    classes = int(max(int(y_train.max()), int(y.max()))) + 1
    ratios, accs = [], []
    for d in range(draws):  # a few classifiers: each step below is batched over the points
        idx = torch.randint(len(flat), (len(flat),), generator=gen)
        lin = linear_classifier(flat[idx], y_train[idx], n_classes=classes, seed=seed + d,
                                steps=fit_steps)
        plane = nn.Sequential(nn.Flatten(), lin).eval()
        res = minimal_perturbations(plane, x, y, steps=steps)
        ok = res["ok"]
        if not bool(ok.any()):
            raise ValueError("tininess_linear_null: a linear classifier got no test point right "
                             "(or no attack succeeded); raise fit_steps")
        ratios.append(float(res["norm"][ok].median()) / float(nearest_other.cpu()[ok].median()))
        with torch.no_grad():
            accs.append(float((plane(x).argmax(1) == y).double().mean()))
    return band(ratios, kind="linear classifier", level=level), torch.tensor(accs)


def untrained_on_fractions(models: Sequence[nn.Module], x: torch.Tensor, tangent: torch.Tensor,
                           *, steps: int) -> torch.Tensor:
    """The median on-manifold fraction of untrained networks' minimal perturbations.

    Each network is attacked at ``x`` with its own predictions as labels (an
    untrained network knows no others), by :func:`minimal_perturbations`;
    the median over the points it was attacked at is that network's value.
    The untrained-network null of the on-manifold fraction.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Untrained classifiers of the same shape as the trained ones.
    x : torch.Tensor
        Points (N, n).
    tangent : torch.Tensor
        (N, n, k) tangent bases at ``x``.
    steps : int
        Attack iterations.

    Returns
    -------
    torch.Tensor
        (len(models),) float64 medians.
    """
    from ..train import predict

    if len(models) == 0:
        raise ValueError("models: empty")
    out = []
    for m in models:  # a few networks: each attack is batched over the points
        res = minimal_perturbations(m, x, predict(m, x), steps=steps, tangent=tangent)
        if not bool(res["ok"].any()):
            raise ValueError("untrained_on_fractions: no attack succeeded; raise steps")
        out.append(float(res["on_fraction"][res["ok"]].median()))
    return torch.tensor(out, dtype=torch.float64)


def gain_ratio_test(off_std: Sequence[float], on_std: Sequence[float],
                    off_adv: Sequence[float], on_adv: Sequence[float], *,
                    level: float = 0.9) -> tuple[float, Any]:
    """How much more adversarial training moved the boundary off the manifold than along it.

    Per seed ``s`` the gain ratio is ``(off_adv[s] / off_std[s]) / (on_adv[s] /
    on_std[s])``: the growth of the off-manifold distance to the boundary over
    the growth of the on-manifold one (1 when both grow alike). The measurement
    is its median over seeds. The null is what the same ratio reads between two
    *standard* trainings that differ only in their seed, ``(off_std[i] /
    off_std[j]) / (on_std[i] / on_std[j])`` over ordered pairs ``i != j``:
    how far apart two networks are without any adversarial training.

    Parameters
    ----------
    off_std, on_std, off_adv, on_adv : sequence of float
        Per seed (matched by position, at least two seeds), mean distances to
        the boundary off and along the manifold, after standard and after
        adversarial training.
    level : float
        Mass of the null's band.

    Returns
    -------
    tuple of (float, dmmlib.nulls.NullBand)
    """
    from ..nulls import band

    vals = [torch.as_tensor(list(v), dtype=torch.float64)
            for v in (off_std, on_std, off_adv, on_adv)]
    n = len(vals[0])
    if any(len(v) != n for v in vals) or n < 2:
        raise ValueError(f"off_std, on_std, off_adv, on_adv: expected the same number (at least "
                         f"2) of seeds, got {[len(v) for v in vals]}")
    if not all(bool(torch.isfinite(v).all() and (v > 0).all()) for v in vals):
        raise ValueError("distances: must be positive and finite")
    o_s, n_s, o_a, n_a = vals
    measured = float(((o_a / o_s) / (n_a / n_s)).median())
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    pair = i != j
    null = ((o_s[i] / o_s[j]) / (n_s[i] / n_s[j]))[pair]
    return measured, band(null, kind="standard training, seed against seed", level=level)


#: Sizes of the chapter "Clinging and dimpling" beyond the profile's fields, per profile.
CLINGING_SIZES: dict[str, dict[str, Any]] = {
    "ci":  dict(toy_seeds=6, toy_steps=600, toy_frames=24, surf_seeds=2, surf_steps=400,
                surf_res=24, hd_n=50, hd_k=2, hd_width=128, hd_measure=64, sweep_seeds=2),
    "cpu": dict(toy_seeds=8, toy_steps=800, toy_frames=32, surf_seeds=3, surf_steps=800,
                surf_res=32, hd_n=100, hd_k=2, hd_width=256, hd_measure=128, sweep_seeds=3),
    "gpu": dict(toy_seeds=16, toy_steps=1000, toy_frames=40, surf_seeds=8, surf_steps=1000,
                surf_res=40, hd_n=784, hd_k=16, hd_width=1000, hd_measure=256, sweep_seeds=5),
}

#: Sizes of the chapter "What the dimpled manifold model explains", per profile.
EXPLAINS_SIZES: dict[str, dict[str, Any]] = {
    "ci":  dict(syn_n=50, syn_k=2, syn_width=128, syn_seeds=2, syn_test=300, min_steps=100,
                ae_k=16, ae_epochs=3, ilyas_n=2000, ilyas_steps=10, ilyas_epochs=3, at_eps=0.02),
    "cpu": dict(syn_n=100, syn_k=2, syn_width=256, syn_seeds=3, syn_test=1000, min_steps=200,
                ae_k=16, ae_epochs=10, ilyas_n=10000, ilyas_steps=20, ilyas_epochs=8,
                at_eps=0.02),
    "gpu": dict(syn_n=784, syn_k=16, syn_width=1000, syn_seeds=8, syn_test=2000, min_steps=500,
                ae_k=16, ae_epochs=30, ilyas_n=None, ilyas_steps=100, ilyas_epochs=30,
                at_eps=0.02),
}
