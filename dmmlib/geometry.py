"""Geometry of decision boundaries near the data manifold.

The dimpled-manifold model describes training in two phases: first the
decision boundary *clings* to the data manifold (its normal at the points
nearest the data becomes almost perpendicular to the manifold), then it forms
shallow *dimples* around the training points (the boundary is much closer
along the normal, off the manifold, than along the manifold). This module
measures both:

* :func:`boundary_point_along` and :func:`nearest_boundary_point` find points
  on the boundary (batched bisection, minimal-L2 attacks);
* :func:`boundary_normal` and :func:`clinging` measure how much of the
  boundary normal lies off the manifold;
* :func:`dimple_depth` compares distances to the boundary off and along the
  manifold;
* :class:`GeometryRecorder` records all of it during training (pass it as
  ``callback`` to :func:`dmmlib.train.fit` or :func:`dmmlib.ensemble.train_ensemble`);
* :func:`decision_grid_2d` and :func:`decision_surface_3d` evaluate a model on
  a grid for pictures of the 2-D and 3-D toy settings.

All functions compute input gradients only, run the model on its own device
in eval mode and restore every submodule's train/eval flag afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ._validate import (
    check_basis,
    check_choice,
    check_int,
    check_labels,
    check_positive,
    check_tensor,
    output_size,
)
from .device import module_device
from .manifold import split_on_off_manifold
from .ops import batch_view, eval_mode, margin, margin_and_grad, pair_margin, working_dtype

__all__ = [
    "BoundarySearch",
    "boundary_point_along",
    "nearest_boundary_point",
    "logit_margin",
    "boundary_normal",
    "Clinging",
    "clinging",
    "DimpleDepth",
    "dimple_depth",
    "GeometryRecorder",
    "Grid2D",
    "decision_grid_2d",
    "Surface3D",
    "decision_surface_3d",
    "level_set_mesh",
    "DimpleProfile",
    "dimple_profile",
]


# --------------------------------------------------------------------------- helpers
def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    return model


def _points(x: object, name: str = "x") -> torch.Tensor:
    t = check_tensor(x, name, min_ndim=2)
    if t.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    return t


def _work(model: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """A detached copy on the model's device and working dtype."""
    return t.detach().to(device=module_device(model), dtype=working_dtype(model, t.dtype))


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[i : i + batch_size]).argmax(1)
                      for i in range(0, x.shape[0], batch_size)])


# --------------------------------------------------------------------------- boundary points
class BoundarySearch(NamedTuple):
    """Result of a boundary search.

    ``point`` (like ``x``): the boundary point, on the far side (classified
    differently from the reference label) and within ``tol`` of the crossing;
    ``distance`` (N,): its distance from ``x``; ``found`` (N,) bool: whether a
    crossing was found. Where it was not, ``point`` is the end of the searched
    segment and ``distance`` the searched length (a lower bound): never inf or NaN.
    """

    point: torch.Tensor
    distance: torch.Tensor
    found: torch.Tensor


def _flipped(model: nn.Module, x: torch.Tensor, d: torch.Tensor, t: torch.Tensor,
             y: torch.Tensor, batch_size: int) -> torch.Tensor:
    return _predict(model, x + batch_view(t, x) * d, batch_size) != y


def _bisect(model: nn.Module, x: torch.Tensor, d: torch.Tensor, lo: torch.Tensor,
            hi: torch.Tensor, y: torch.Tensor, tol: float, batch_size: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink [lo, hi] (prediction == y at lo, != y at hi) until hi - lo <= tol."""
    width = float((hi - lo).max()) if hi.numel() else 0.0
    iters = max(0, math.ceil(math.log2(width / tol))) if width > tol else 0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        f = _flipped(model, x, d, mid, y, batch_size)
        hi = torch.where(f, mid, hi)
        lo = torch.where(f, lo, mid)
    return lo, hi


def _search_along(model: nn.Module, xw: torch.Tensor, dw: torch.Tensor, yw: torch.Tensor,
                  max_distance: float, tol: float, n_scan: int, batch_size: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (N,) and found (N,) on the working device; ``dw`` unit or zero rows."""
    n = xw.shape[0]
    valid = dw.flatten(1).norm(dim=1) > 0
    ts = torch.arange(0, n_scan + 1, device=xw.device, dtype=xw.dtype) * (max_distance / n_scan)
    # scan: N x (n_scan + 1) points at once, t = 0 included (already misclassified -> 0)
    xs = xw.unsqueeze(1) + ts.reshape(1, -1, *([1] * (xw.ndim - 1))) * dw.unsqueeze(1)
    flips = (_predict(model, xs.reshape(-1, *xw.shape[1:]), batch_size).reshape(n, -1)
             != yw[:, None])
    found = flips.any(1) & valid
    first = flips.int().argmax(1)                         # first flipped index (0 if none)
    lo, hi = ts[(first - 1).clamp_min(0)], ts[first]
    lo, hi = _bisect(model, xw, dw, torch.where(found, lo, hi), hi, yw, tol, batch_size)
    dist = torch.where(found, hi, torch.full_like(hi, max_distance))
    return dist, found


def boundary_point_along(
    model: nn.Module,
    x: torch.Tensor,
    direction: torch.Tensor,
    *,
    max_distance: float = 1.0,
    tol: float = 1e-4,
    y: torch.Tensor | None = None,
    n_scan: int = 16,
    batch_size: int = 8192,
) -> BoundarySearch:
    """First point along ``x + t d / ||d||``, 0 <= t <= max_distance, classified differently.

    A coarse scan of ``n_scan + 1`` equally spaced points per sample (all
    evaluated in one batched pass) locates the first interval where the
    prediction leaves the reference label, and a batched bisection shrinks it
    to ``tol``. Crossings narrower than ``max_distance / n_scan`` may be missed.
    Points are not clipped to [0, 1].

    Parameters
    ----------
    model: a classifier returning logits.
    x: points (N, ...).
    direction: search directions, same shape as ``x`` (normalised here; a zero
        direction gives ``found = False``).
    max_distance: length of the searched segment.
    tol: accuracy of the returned distance.
    y: reference labels (N,); default: the model's prediction at ``x``. Points
        already classified differently from ``y`` get distance 0.
    n_scan: number of scan intervals.
    batch_size: model evaluations per forward pass.

    Returns
    -------
    BoundarySearch ``(point, distance, found)`` on ``x``'s device and dtype.
    """
    model = _check_model(model)
    xt = _points(x)
    dt = check_tensor(direction, "direction", min_ndim=2)
    if dt.shape != xt.shape:
        raise ValueError(f"direction: expected shape {tuple(xt.shape)} like x, got "
                         f"{tuple(dt.shape)}")
    max_distance = check_positive(max_distance, "max_distance")
    tol = check_positive(tol, "tol")
    check_int(n_scan, "n_scan", 1)
    check_int(batch_size, "batch_size", 1)
    with eval_mode(model):
        xw, dw = _work(model, xt), _work(model, dt)
        norm = dw.flatten(1).norm(dim=1)
        dw = dw / batch_view(torch.where(norm > 0, norm, torch.ones_like(norm)), dw)
        if y is None:
            yw = _predict(model, xw, batch_size)
        else:
            with torch.no_grad():
                n_out = model(xw[:1]).shape[1]
            yw = check_labels(y, xt, n_classes=n_out).to(xw.device)
        dist, found = _search_along(model, xw, dw, yw, max_distance, tol, n_scan, batch_size)
    point = (xw + batch_view(dist, xw) * dw).to(device=xt.device, dtype=xt.dtype)
    return BoundarySearch(point, dist.to(device=xt.device, dtype=xt.dtype), found.to(xt.device))


def nearest_boundary_point(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str = "minimal_l2",
    *,
    steps: int = 100,
    overshoot: float = 0.02,
    tol: float = 1e-5,
    batch_size: int = 8192,
    progress: bool | None = None,
) -> BoundarySearch:
    """The nearest point on the decision boundary (L2), from a minimal-perturbation attack.

    Runs :func:`dmmlib.attacks.minimal_l2` (or :func:`dmmlib.attacks.deepfool`)
    and then bisects the segment from ``x`` to the adversarial example down to
    ``tol``, so the returned point lies on the boundary (logit margin ~ 0)
    rather than past it. The attacks keep points in [0, 1], so ``x`` must be
    there too.

    Parameters
    ----------
    model, x, y: the classifier, points (N, ...) in [0, 1] and their labels.
    method: ``"minimal_l2"`` or ``"deepfool"``.
    steps: attack iterations.
    overshoot: DeepFool's overshoot (ignored by ``minimal_l2``).
    tol: accuracy of the bisection refinement.
    batch_size: model evaluations per forward pass during the refinement.
    progress: the attack's tqdm bar (``None``: on unless ``DMM_PROGRESS=0``).

    Returns
    -------
    BoundarySearch ``(point, distance, found)``; ``found`` is the attack's
    success mask (where it failed, ``point`` is the attack's last iterate).
    """
    model = _check_model(model)
    xt = _points(x)
    yt = check_labels(y, xt)
    check_choice(method, "method", ("minimal_l2", "deepfool"))
    check_int(steps, "steps", 1)
    tol = check_positive(tol, "tol")
    check_int(batch_size, "batch_size", 1)
    if method == "minimal_l2":
        from .attacks import minimal_l2

        res = minimal_l2(model, xt, yt, steps=steps, progress=progress)
    else:
        from .attacks import deepfool

        res = deepfool(model, xt, yt, steps=steps, overshoot=overshoot, progress=progress)
    x_adv, success = res.x_adv, res.success
    with eval_mode(model):
        xw, aw = _work(model, xt), _work(model, x_adv)
        yw = yt.to(xw.device)
        d = aw - xw
        length = d.flatten(1).norm(dim=1)
        ok = success.to(xw.device) & (_predict(model, aw, batch_size) != yw)
        d = d / batch_view(torch.where(length > 0, length, torch.ones_like(length)), d)
        already = _predict(model, xw, batch_size) != yw
        hi = torch.where(already, torch.zeros_like(length), length)
        lo = torch.where(ok & ~already, torch.zeros_like(length), hi)
        _, hi = _bisect(model, xw, d, lo, hi, yw, tol, batch_size)
        dist = torch.where(ok, hi, length)
    point = (xw + batch_view(dist, xw) * d).to(device=xt.device, dtype=xt.dtype)
    return BoundarySearch(point, dist.to(device=xt.device, dtype=xt.dtype), ok.to(xt.device))


# --------------------------------------------------------------------------- normals
def _pairs(y: object, x: torch.Tensor, n_out: int, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class ``a`` and the class ``b`` it is compared with (``None``: the runner-up)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y: expected a tensor of labels (N,) or pairs (N, 2), got "
                        f"{type(y).__name__}")
    c = y.to(device)
    if c.ndim == 1:
        check_labels(y, x, "y", n_out)
        if n_out < 2:
            raise ValueError("model: needs at least 2 outputs to define a boundary")
        return c.long(), None
    if c.is_floating_point() or c.ndim != 2 or c.shape != (x.shape[0], 2):
        raise ValueError(f"y: expected integer labels ({x.shape[0]},) or pairs "
                         f"({x.shape[0]}, 2), got {tuple(y.shape)} {y.dtype}")
    c = c.long()
    if int(c.min()) < 0 or int(c.max()) >= n_out:
        raise ValueError(f"y: must lie in [0, {n_out}) for a model with {n_out} outputs")
    if bool((c[:, 0] == c[:, 1]).any()):
        raise ValueError("y: the two classes of a pair must differ")
    return c[:, 0], c[:, 1]


def _margin_and_grad(model: nn.Module, xw: torch.Tensor, y: object, xt: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The a-vs-b margin at ``xw`` (working copy of ``xt``) and its input gradient."""
    a, b = _pairs(y, xt, output_size(model, xt, "model"), xw.device)
    return margin_and_grad(model, xw, a, b)


def logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logit margin ``f_a(x) - f_b(x)`` per sample, shape (N,).

    ``y`` holds labels ``a`` (N,), in which case ``b`` is the runner-up
    class at ``x`` (the largest other logit), or explicit pairs (N, 2).
    """
    model = _check_model(model)
    xt = _points(x)
    with eval_mode(model), torch.no_grad():
        xw = _work(model, xt)
        logits = model(xw)
        a, b = _pairs(y, xt, logits.shape[1], logits.device)
        m = margin(logits, a) if b is None else pair_margin(logits, a, b)
    return m.to(device=xt.device, dtype=xt.dtype)


def boundary_normal(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unit normal of the a-vs-b boundary: ``grad (f_a - f_b) / ||grad (f_a - f_b)||``.

    Batched, input gradient only (parameters' ``.grad`` are untouched). The
    normal points towards class ``a``; where the gradient vanishes it is 0.

    Parameters
    ----------
    model: a classifier returning logits.
    x: points (N, ...), typically on the boundary or at the training points.
    y: labels ``a`` (N,) (``b`` is then the runner-up class at ``x``)
        or pairs (N, 2) of ``(a, b)``.

    Returns
    -------
    Tensor like ``x``.
    """
    model = _check_model(model)
    xt = _points(x)
    with eval_mode(model):
        _, grad = _margin_and_grad(model, _work(model, xt), y, xt)
    norm = grad.flatten(1).norm(dim=1)
    unit = grad / batch_view(torch.where(norm > 0, norm, torch.ones_like(norm)), grad)
    return unit.to(device=xt.device, dtype=xt.dtype)


class Clinging(NamedTuple):
    """How much of a boundary normal lies off the manifold, per sample (N,).

    ``off_fraction = ||n_off|| / ||n||`` (1: perpendicular to the manifold, the
    boundary "clings"), ``on_fraction = ||n_on|| / ||n||`` and ``angle_deg``,
    the angle between the normal and the tangent space in degrees (90: fully
    off). Zero normals give 0 for all three.
    """

    off_fraction: torch.Tensor
    on_fraction: torch.Tensor
    angle_deg: torch.Tensor


def clinging(normal: torch.Tensor, basis: torch.Tensor) -> Clinging:
    """Off-manifold fraction of boundary normals and their angle to the tangent space.

    Parameters
    ----------
    normal: normals (N, ...) (e.g. from :func:`boundary_normal`; need not be unit).
    basis: orthonormal tangent bases (N, D, k).
    """
    split = split_on_off_manifold(normal, basis)
    angle = torch.rad2deg(torch.atan2(split.off_fraction, split.on_fraction))
    return Clinging(split.off_fraction, split.on_fraction, angle)


# --------------------------------------------------------------------------- dimples
class DimpleDepth(NamedTuple):
    """Distances (N,) from training points to the boundary in three directions.

    All directions descend the margin ``f_y - f_runner-up``: ``normal`` along
    the full negative gradient, ``off`` along its off-manifold part, ``on``
    along its projection on the tangent space. ``found_*`` flag whether a
    crossing was found within ``max_distance`` (else the distance is
    ``max_distance``). ``off_fraction`` is the gradient's off-manifold norm
    fraction. A deep dimple shows as ``off`` much smaller than ``on``.
    """

    normal: torch.Tensor
    off: torch.Tensor
    on: torch.Tensor
    found_normal: torch.Tensor
    found_off: torch.Tensor
    found_on: torch.Tensor
    off_fraction: torch.Tensor


def dimple_depth(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    basis: torch.Tensor,
    *,
    max_distance: float = 1.0,
    tol: float = 1e-4,
    n_scan: int = 16,
    batch_size: int = 8192,
) -> DimpleDepth:
    """Distance to the boundary off the manifold vs along it, per training point.

    At each point the gradient ``g`` of the margin ``f_y - f_b`` (``b`` the
    runner-up class) is split into its tangent part ``g_on = U U^T g`` (``U`` the
    ``basis``) and the
    rest ``g_off``; :func:`boundary_point_along` then searches along ``-g``,
    ``-g_off`` and ``-g_on`` (one batched search of 3N rays) for the first
    point not classified as ``y``. Points already misclassified get 0.

    Parameters
    ----------
    model, x, y: classifier, points (N, ...) and labels (N,).
    basis: orthonormal tangent bases (N, D, k) at ``x``.
    max_distance, tol, n_scan, batch_size: as in :func:`boundary_point_along`.
    """
    model = _check_model(model)
    xt = _points(x)
    yt = check_labels(y, xt)
    Ut = check_basis(basis, xt, "basis")
    max_distance = check_positive(max_distance, "max_distance")
    tol = check_positive(tol, "tol")
    check_int(n_scan, "n_scan", 1)
    check_int(batch_size, "batch_size", 1)
    with eval_mode(model):
        xw = _work(model, xt)
        yw = yt.to(xw.device)
        _, grad = _margin_and_grad(model, xw, yw, xt)
        split = split_on_off_manifold(-grad, Ut.to(device=xw.device, dtype=xw.dtype))
        dirs = torch.cat([-grad, split.off, split.on])
        norm = dirs.flatten(1).norm(dim=1)
        dirs = dirs / batch_view(torch.where(norm > 0, norm, torch.ones_like(norm)), dirs)
        dist, found = _search_along(model, xw.repeat(3, *([1] * (xw.ndim - 1))), dirs,
                                    yw.repeat(3), max_distance, tol, n_scan, batch_size)
    n = xt.shape[0]
    dist = dist.to(device=xt.device, dtype=xt.dtype)
    found = found.to(xt.device)
    return DimpleDepth(dist[:n], dist[n : 2 * n], dist[2 * n :], found[:n], found[n : 2 * n],
                       found[2 * n :], split.off_fraction.to(device=xt.device, dtype=xt.dtype))


# --------------------------------------------------------------------------- recorder
class GeometryRecorder:
    """Training callback recording clinging and dimpling measures every few steps.

    Call it as ``recorder(step, model)`` (the signature of the ``callback``
    argument of :func:`dmmlib.train.fit`); it records when ``step % every == 0``.
    :meth:`record` records unconditionally (e.g. before training). It also
    accepts an :class:`~dmmlib.ensemble.Ensemble` (the ``callback`` of
    :func:`dmmlib.ensemble.train_ensemble`): every model is measured, the
    history holds the averages over models and points, and ``per_point``
    tensors get a leading model dimension (M, N).

    At every record, at the training points ``x`` with tangent bases ``basis``:

    * ``off_fraction`` / ``angle_deg``: :func:`clinging` of the boundary normals
      (gradient of ``f_y - f_runner-up``), averaged over points;
    * ``dist_normal`` / ``dist_off`` / ``dist_on``: :func:`dimple_depth`
      distances, averaged over points (unfound crossings count as
      ``max_distance``), and ``found_*``, the fraction of points where a
      crossing was found; skipped (not recorded) when ``depth=False``;
    * ``accuracy``: training accuracy on ``x``.

    Attributes
    ----------
    history: dict of lists, one entry per record, keys ``step`` and the above.
    per_point: when ``keep_per_point``, a list of dicts of per-point tensors
        (CPU) with the same keys, one per record.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        basis: torch.Tensor,
        *,
        every: int = 10,
        depth: bool = True,
        max_distance: float = 1.0,
        tol: float = 1e-3,
        n_scan: int = 16,
        keep_per_point: bool = False,
    ) -> None:
        self.x = _points(x)
        self.y = check_labels(y, self.x)
        self.U = check_basis(basis, self.x, "basis")
        self.every = check_int(every, "every", 1)
        self.depth = bool(depth)
        self.max_distance = check_positive(max_distance, "max_distance")
        self.tol = check_positive(tol, "tol")
        self.n_scan = check_int(n_scan, "n_scan", 1)
        self.keep_per_point = bool(keep_per_point)
        keys = ["step", "accuracy", "off_fraction", "angle_deg"]
        if self.depth:
            keys += ["dist_normal", "dist_off", "dist_on", "found_normal", "found_off",
                     "found_on"]
        self.history: dict[str, list[float]] = {k: [] for k in keys}
        self.per_point: list[dict[str, torch.Tensor]] = []

    def __call__(self, step: int, model: nn.Module | Any) -> None:
        """Record at every ``every``-th step (the training callback's signature)."""
        if step % self.every == 0:
            self.record(model, step)

    def measure(self, model: nn.Module | Any) -> dict[str, torch.Tensor]:
        """Per-point measures (CPU tensors) for the current ``model``, without recording.

        For an :class:`~dmmlib.ensemble.Ensemble` every tensor has shape (M, N).
        """
        from .ensemble import Ensemble

        if isinstance(model, Ensemble):
            per_model = [self.measure(model.model(i)) for i in range(len(model))]
            return {k: torch.stack([m[k] for m in per_model]) for k in per_model[0]}
        model = _check_model(model)
        dev = module_device(model)
        x, y, U = self.x.to(dev), self.y.to(dev), self.U.to(dev)
        with eval_mode(model), torch.no_grad():
            pred = model(_work(model, x)).argmax(1)
        normal = boundary_normal(model, x, y)
        cl = clinging(normal, U.to(normal.dtype))
        out = {"correct": (pred == y), "off_fraction": cl.off_fraction,
               "angle_deg": cl.angle_deg}
        if self.depth:
            dd = dimple_depth(model, x, y, U, max_distance=self.max_distance, tol=self.tol,
                              n_scan=self.n_scan)
            out.update(dist_normal=dd.normal, dist_off=dd.off, dist_on=dd.on,
                       found_normal=dd.found_normal, found_off=dd.found_off,
                       found_on=dd.found_on)
        return {k: v.detach().cpu() for k, v in out.items()}

    def record(self, model: nn.Module | Any, step: int) -> dict[str, float]:
        """Measure ``model`` now and append the averages to :attr:`history`."""
        per = self.measure(model)
        row: dict[str, float] = {"step": float(step),
                                 "accuracy": float(per["correct"].double().mean())}
        for k, v in per.items():
            if k != "correct":
                row[k] = float(v.double().mean())
        for k in self.history:
            self.history[k].append(row[k])
        if self.keep_per_point:
            self.per_point.append({"step": torch.tensor(step), **per})
        return row


# --------------------------------------------------------------------------- grids
def _resolution(resolution: object, dims: int) -> tuple[int, ...]:
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        res: tuple[int, ...] = (resolution,) * dims
    elif isinstance(resolution, Sequence) and len(resolution) == dims:
        res = tuple(resolution)
    else:
        raise TypeError(f"resolution: expected an int or {dims} ints, got {resolution!r}")
    for r in res:
        check_int(r, "resolution", 2)
    return res


def _interval(lim: object, name: str) -> tuple[float, float]:
    if not isinstance(lim, Sequence) or len(lim) != 2:
        raise TypeError(f"{name}: expected a pair (low, high), got {lim!r}")
    lo, hi = (float(v) for v in lim)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"{name}: expected finite low < high, got {lim!r}")
    return lo, hi


def _grid_scores(model: nn.Module, pts: torch.Tensor, pair: tuple[int, int] | None,
                 batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and signed margins at ``pts`` (M, d), batched."""
    preds, margins = [], []
    with eval_mode(model), torch.no_grad():
        for i in range(0, pts.shape[0], batch_size):
            logits = model(pts[i : i + batch_size])
            if i == 0 and pair is None and logits.shape[1] != 2:
                raise ValueError(f"pair: the model has {logits.shape[1]} outputs; pass "
                                 "pair=(a, b) to choose the margin f_a - f_b")
            a, b = pair if pair is not None else (1, 0)
            if i == 0 and max(a, b) >= logits.shape[1]:
                raise ValueError(f"pair: {pair} out of range for {logits.shape[1]} outputs")
            preds.append(logits.argmax(1))
            margins.append(logits[:, a] - logits[:, b])
    return torch.cat(preds), torch.cat(margins)


def _check_classes_pair(classes: object) -> tuple[int, int] | None:
    """``pair=(a, b)``: two different non-negative class indices, or None."""
    if classes is None:
        return None
    if (not isinstance(classes, Sequence) or len(classes) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in classes)):
        raise TypeError(f"pair: expected a pair of ints (a, b), got {classes!r}")
    a, b = classes
    if a < 0 or b < 0 or a == b:
        raise ValueError(f"pair: expected two different non-negative classes, got {classes}")
    return a, b


class Grid2D(NamedTuple):
    """A model evaluated on a 2-D grid (``matplotlib``'s ``indexing="xy"`` layout).

    ``xx``, ``yy``, ``pred`` and ``margin`` have shape (ny, nx); ``margin`` is
    ``f_a - f_b`` (default ``f_1 - f_0``): its zero contour is the boundary.
    """

    xx: torch.Tensor
    yy: torch.Tensor
    pred: torch.Tensor
    margin: torch.Tensor


def decision_grid_2d(
    model: nn.Module,
    xlim: tuple[float, float] = (0.0, 1.0),
    ylim: tuple[float, float] = (0.0, 1.0),
    resolution: int | tuple[int, int] = 200,
    *,
    pair: tuple[int, int] | None = None,
    batch_size: int = 65536,
) -> Grid2D:
    """Evaluate a model of 2-D inputs on a regular grid (for ``contour``/``contourf``).

    Parameters
    ----------
    model: a classifier of inputs (M, 2).
    xlim, ylim: the grid's extent.
    resolution: points per axis (int or ``(nx, ny)``).
    pair: ``(a, b)`` for the margin ``f_a - f_b``; needed when the model has
        more than 2 outputs.
    batch_size: grid points per forward pass.

    Returns
    -------
    Grid2D on the CPU.
    """
    model = _check_model(model)
    x0, x1 = _interval(xlim, "xlim")
    y0, y1 = _interval(ylim, "ylim")
    nx, ny = _resolution(resolution, 2)
    pair = _check_classes_pair(pair)
    check_int(batch_size, "batch_size", 1)
    dtype = working_dtype(model, torch.float32)
    dev = module_device(model)
    xs = torch.linspace(x0, x1, nx, dtype=dtype, device=dev)
    ys = torch.linspace(y0, y1, ny, dtype=dtype, device=dev)
    xx, yy = torch.meshgrid(xs, ys, indexing="xy")
    pred, margin = _grid_scores(model, torch.stack([xx.reshape(-1), yy.reshape(-1)], 1), pair,
                                batch_size)
    return Grid2D(xx.cpu(), yy.cpu(), pred.reshape(ny, nx).cpu(), margin.reshape(ny, nx).cpu())


class Surface3D(NamedTuple):
    """A model evaluated on a 3-D grid and the zero level set of its margin.

    ``axes``: the three 1-D coordinate vectors; ``pred`` and ``margin`` have
    shape (nx, ny, nz) (``indexing="ij"``); ``vertices`` (V, 3) and ``faces``
    (F, 3) triangulate ``margin = 0`` (marching cubes, linear interpolation
    along grid edges: :func:`level_set_mesh`). For plotly:
    ``go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2])``,
    or ``go.Isosurface`` on the grid with ``isomin = isomax = 0``.
    """

    axes: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    pred: torch.Tensor
    margin: torch.Tensor
    vertices: torch.Tensor
    faces: torch.Tensor


def decision_surface_3d(
    model: nn.Module,
    bounds: Sequence[tuple[float, float]] | tuple[float, float] = (0.0, 1.0),
    resolution: int | tuple[int, int, int] = 40,
    *,
    pair: tuple[int, int] | None = None,
    batch_size: int = 65536,
) -> Surface3D:
    """Evaluate a model of 3-D inputs on a grid and extract its decision surface.

    Parameters
    ----------
    model: a classifier of inputs (M, 3).
    bounds: ``(low, high)`` for all axes or one pair per axis.
    resolution: points per axis (int or three ints).
    pair: ``(a, b)`` for the margin ``f_a - f_b`` whose zero level set is
        extracted (default ``f_1 - f_0``; required for more than 2 outputs).
    batch_size: grid points per forward pass.

    Returns
    -------
    Surface3D on the CPU (the level set in float64).
    """
    model = _check_model(model)
    if (isinstance(bounds, Sequence) and len(bounds) == 3
            and all(isinstance(b, Sequence) for b in bounds)):
        lims = [_interval(b, "bounds") for b in bounds]
    else:
        lims = [_interval(bounds, "bounds")] * 3
    res = _resolution(resolution, 3)
    pair = _check_classes_pair(pair)
    check_int(batch_size, "batch_size", 1)
    dtype = working_dtype(model, torch.float32)
    dev = module_device(model)
    axes = tuple(torch.linspace(lo, hi, r, dtype=dtype, device=dev)
                 for (lo, hi), r in zip(lims, res, strict=True))
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pred, margin = _grid_scores(model, grid, pair, batch_size)
    margin = margin.reshape(res).cpu()
    axes_cpu = tuple(a.cpu() for a in axes)
    vertices, faces = level_set_mesh(margin, axes_cpu)
    return Surface3D(axes_cpu, pred.reshape(res).cpu(), margin,  # type: ignore[arg-type]
                     vertices, faces)


def level_set_mesh(values: torch.Tensor, axes: Sequence[torch.Tensor] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangulate the zero level set of a function sampled on a 3-D grid.

    Marching cubes (Lewiner et al. 2003) from scikit-image,
    :func:`skimage.measure.marching_cubes`: vertices are interpolated
    linearly along the grid edges where the values change sign, so the mesh
    is exact for a linear function. Vertex positions are mapped from grid
    indices to the coordinates in ``axes`` (which may be unevenly spaced).

    Parameters
    ----------
    values : torch.Tensor
        Shape (nx, ny, nz): the function's values on the grid.
    axes : sequence of three torch.Tensor, optional
        The coordinates along each axis, of lengths nx, ny, nz (default:
        the grid indices).

    Returns
    -------
    vertices : torch.Tensor
        Shape (V, 3), float64.
    faces : torch.Tensor
        Shape (F, 3), int64 indices into ``vertices``; both are empty where
        the values do not change sign.
    """
    import numpy as np
    from skimage.measure import marching_cubes

    v = check_tensor(values, "values", min_ndim=3)
    if v.ndim != 3 or min(v.shape) < 2:
        raise ValueError(f"values: expected a (nx, ny, nz) grid with every side >= 2, got "
                         f"{tuple(v.shape)}")
    shape = tuple(int(s) for s in v.shape)
    if axes is None:
        axes = [torch.arange(s, dtype=torch.float64) for s in shape]
    if len(axes) != 3 or any(not isinstance(a, torch.Tensor) or a.shape != (s,)
                             for a, s in zip(axes, shape, strict=False)):
        raise ValueError(f"axes: expected three 1-D tensors of lengths {shape}")
    vals = v.detach().cpu().double().numpy()
    empty = (torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, 3, dtype=torch.int64))
    if not (vals.min() < 0.0 < vals.max()):
        return empty
    verts, faces, _, _ = marching_cubes(vals, level=0.0, allow_degenerate=False)
    coords = [np.interp(verts[:, d], np.arange(shape[d]), axes[d].detach().cpu().double().numpy())
              for d in range(3)]
    return (torch.from_numpy(np.stack(coords, 1)).double(),
            torch.from_numpy(faces.astype(np.int64)))


# --------------------------------------------------------------------------- dimples
class DimpleProfile(NamedTuple):
    """The a-vs-b boundary as a height over the manifold, at probe points on it.

    ``height`` (N,): signed off-manifold distance from each probe to the
    boundary (positive on class ``a``'s side), searched along the
    off-manifold part of the margin's gradient; ``found`` (N,): whether a
    crossing was found within ``max_distance``; ``nearest`` (N,): distance
    from each probe to the nearest training point; ``coords`` (N, k): the
    probes' tangent coordinates; ``bend``: the share of the height's variance
    that no affine function of the coordinates explains (0 for any
    hyperplane boundary over a flat manifold, whatever its tilt);
    ``locality``: Spearman correlation between the affine fit's residual,
    oriented towards the nearest training point's class, and ``nearest``
    (negative: the boundary is pushed away from the manifold most at the
    training points, each towards the side of its own class, as dimples are;
    near 0 for bending unrelated to the points). Without training labels the
    residual's absolute value is used instead.
    """

    height: torch.Tensor
    found: torch.Tensor
    nearest: torch.Tensor
    coords: torch.Tensor
    bend: float
    locality: float


def _ranks(v: torch.Tensor) -> torch.Tensor:
    return v.argsort().argsort().to(torch.float64)


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denom if denom > 0 else 0.0


def dimple_profile(
    model: nn.Module,
    probes: torch.Tensor,
    basis: torch.Tensor,
    train_x: torch.Tensor,
    *,
    train_y: torch.Tensor | None = None,
    pair: tuple[int, int] = (1, 0),
    coords: torch.Tensor | None = None,
    max_distance: float = 1.0,
    tol: float = 1e-4,
    n_scan: int = 32,
    batch_size: int = 8192,
) -> DimpleProfile:
    """A dimple test that a tilted plane fails: does the boundary bend locally at the data.

    Distances alone cannot tell a dimpled boundary from a hyperplane tilted
    against the data (Tanay and Griffin 2016): both can lie closer to the
    manifold off it than along it. What a dimple adds is curvature where the
    training points are. This measures the boundary's height over the
    manifold at ``probes`` (points on the manifold, near and between the
    training points), fits an affine function of the tangent coordinates to
    it, and reports how much is left (``bend``) and whether what is left
    sits at the training points (``locality``). For a hyperplane over a flat
    manifold the height is exactly affine, so ``bend`` is 0 up to ``tol``.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits.
    probes : torch.Tensor
        Points on the manifold, (N, D).
    basis : torch.Tensor
        Orthonormal tangent bases at the probes, (N, D, k).
    train_x : torch.Tensor
        The training points, (M, D).
    train_y : torch.Tensor, optional
        Their labels (M,). With them the residual is oriented: positive where
        the boundary lies farther than the affine fit from the probe, on the
        side of the nearest training point's class (the probe sits deeper in
        that class than a plane would put it), which is what a dimple does.
    pair : tuple of int
        The boundary between classes ``a`` and ``b``: the margin ``z_a - z_b``.
    coords : torch.Tensor, optional
        The probes' coordinates on the manifold, (N, k); default ``U^T p``
        with each probe's own basis (exact for a flat manifold).
    max_distance, tol, n_scan, batch_size
        As in :func:`boundary_point_along`.

    Returns
    -------
    DimpleProfile
        On the CPU, float64.
    """
    model = _check_model(model)
    pt = _points(probes, "probes")
    if pt.ndim != 2:
        raise ValueError(f"probes: expected flat points (N, D), got {tuple(pt.shape)}")
    Ut = check_basis(basis, pt, "basis")
    tx = check_tensor(train_x, "train_x", min_ndim=2)
    if tx.ndim != 2 or tx.shape[1] != pt.shape[1] or tx.shape[0] == 0:
        raise ValueError(f"train_x: expected training points (M, {pt.shape[1]}), got "
                         f"{tuple(tx.shape)}")
    a, b = _check_classes_pair(pair) or (1, 0)
    max_distance = check_positive(max_distance, "max_distance")
    tol = check_positive(tol, "tol")
    check_int(n_scan, "n_scan", 1)
    check_int(batch_size, "batch_size", 1)
    with eval_mode(model):
        xw = _work(model, pt)
        n_out = output_size(model, pt, "model")
        if max(a, b) >= n_out:
            raise ValueError(f"pair: must lie in [0, {n_out}) for a model with {n_out} "
                             "outputs")
        ya = torch.full((xw.shape[0],), a, device=xw.device, dtype=torch.long)
        yb = torch.full_like(ya, b)
        f, grad = margin_and_grad(model, xw, ya, yb)
        split = split_on_off_manifold(grad, Ut.to(device=xw.device, dtype=xw.dtype))
        side = torch.where(f >= 0, torch.ones_like(f), -torch.ones_like(f))
        pred = torch.where(f >= 0, ya, yb)
        dirs = -batch_view(side, split.off) * split.off
        norm = dirs.flatten(1).norm(dim=1)
        dirs = dirs / batch_view(torch.where(norm > 0, norm, torch.ones_like(norm)), dirs)
        dist, found = _search_along(model, xw, dirs, pred, max_distance, tol, n_scan,
                                    batch_size)
    height = (side * dist).detach().cpu().double()
    found = found.cpu()
    near_d, near_i = torch.cdist(pt.detach().cpu().double(), tx.detach().cpu().double()).min(1)
    nearest = near_d
    orient = None
    if train_y is not None:
        ty = check_labels(train_y, tx, "train_y").cpu()
        orient = torch.where(ty[near_i] == a, 1.0, -1.0).to(torch.float64)
    if coords is None:
        c = torch.einsum("ndk,nd->nk", Ut.detach().cpu().double(), pt.detach().cpu().double())
    else:
        c = check_tensor(coords, "coords", min_ndim=2).detach().cpu().double()
        if c.shape[0] != pt.shape[0] or c.ndim != 2:
            raise ValueError(f"coords: expected ({pt.shape[0]}, k), got {tuple(c.shape)}")
    bend, locality = float("nan"), float("nan")
    ok = found
    if int(ok.sum()) > c.shape[1] + 2:
        design = torch.cat([c[ok], torch.ones(int(ok.sum()), 1, dtype=torch.float64)], 1)
        h = height[ok]
        coef = torch.linalg.lstsq(design, h[:, None]).solution
        resid = h - (design @ coef).squeeze(1)
        var = float(((h - h.mean()) ** 2).sum())
        bend = float((resid ** 2).sum()) / var if var > 0 else 0.0
        signed = resid.abs() if orient is None else resid * orient[ok]
        locality = _spearman(signed, nearest[ok])
    return DimpleProfile(height, found, nearest, c, bend, locality)
