"""The Dimpled Manifold Model's geometric claims as tests a model can fail.

Each test measures one model and sets the measurement against a null by a
rule fixed before the run (:func:`dmmlib.nulls.decide`); its outcome is
``"supports"``, ``"contradicts"`` or ``"cannot distinguish"``.

* :func:`clinging_test` -- *the boundary runs along the data manifold*: the
  median share of the boundary normal that lies in the tangent space, at the
  data, is below what a random boundary gives. In high dimension a random
  normal is already almost orthogonal to a k-dimensional subspace (its
  on-fraction is about ``sqrt(k/n)``), so a rule that does not set the
  measurement against this null "sees" clinging in every network.
* :func:`dimple_test` -- *the boundary bends locally around the training
  points*: the boundary's height over the manifold is not affine in the
  manifold's coordinates (a hyperplane, tilted or not, is affine:
  :func:`dmmlib.geometry.dimple_profile`), and what is not affine is larger
  near the training points than between them (the Spearman correlation
  between the residual and the distance to the nearest training point is
  below its null under independence).
* :func:`linear_classifier` -- the tilted-plane null (Tanay and Griffin
  2016): a multinomial logistic regression trained on the same data.
* :func:`spearman_null` -- the closed-form band of a Spearman correlation
  between unrelated quantities.

For a locally linear margin several measures the book reports are one
number: the distance to the boundary along the manifold over the distance
along the normal is ``1 / on_fraction`` of the normal, and so are the ratios
of restricted-attack norms. :func:`clinging_test` counts that quantity once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._validate import check_int, check_nonnegative, check_positive, check_tensor
from .geometry import DimpleProfile, boundary_normal, clinging, dimple_profile
from .nulls import NullBand, _check_level, decide, on_fraction_null

__all__ = [
    "HypothesisTest",
    "DimpleTest",
    "spearman_null",
    "linear_classifier",
    "clinging_test",
    "dimple_test",
]


class HypothesisTest(NamedTuple):
    """A measurement of one model, its null and the outcome of the test.

    ``per_point`` holds the per-sample values the ``measured`` median was taken
    over (on the CPU, float64).
    """

    measured: float
    null: NullBand
    predicts: str
    outcome: str
    per_point: torch.Tensor


class DimpleTest(NamedTuple):
    """The outcome of :func:`dimple_test` with what it was decided from.

    ``flat`` is the test of ``profile.bend`` against a flat boundary (bend at
    most ``bend_floor``): ``"supports"`` when the boundary bends more than a
    hyperplane can. ``local`` is the test of ``profile.locality`` against
    :func:`spearman_null` (``"cannot distinguish"`` when the boundary is
    flat, as there is no bending to locate). ``outcome`` is ``local`` when the
    boundary bends, else ``"cannot distinguish"``: a flat boundary cannot be
    told apart from the tilted-plane null.
    """

    profile: DimpleProfile
    bend_null: NullBand
    locality_null: NullBand
    flat: str
    local: str
    outcome: str


def spearman_null(m: int, *, level: float = 0.9) -> NullBand:
    """The band of a Spearman correlation between m pairs of unrelated values.

    Under independence the rank correlation has mean 0 and variance
    ``1 / (m - 1)``; the band is the normal approximation's central
    ``level`` interval, ``+- z / sqrt(m - 1)``.

    Parameters
    ----------
    m : int
        Number of pairs (at least 4).
    level : float
        Mass of the central band.

    Returns
    -------
    NullBand
        ``kind="no relation (Spearman)"``, ``n=0`` (closed form).
    """
    m = check_int(m, "m", 4)
    level = _check_level(level)
    from statistics import NormalDist

    z = NormalDist().inv_cdf((1.0 + level) / 2.0) / math.sqrt(m - 1)
    return NullBand("no relation (Spearman)", 0.0, -z, z, level, 0)


def linear_classifier(x: torch.Tensor, y: torch.Tensor, *, n_classes: int | None = None,
                      seed: int = 0, steps: int = 500, lr: float = 0.5,
                      weight_decay: float = 0.0) -> nn.Linear:
    """A logistic-regression classifier trained on ``(x, y)``: the tilted-plane null.

    Full-batch gradient descent with momentum 0.9 on the mean cross-entropy
    (in float64, on the CPU), from
    PyTorch's default initialisation of :class:`torch.nn.Linear` under
    ``seed`` (the global RNG is untouched). Its boundaries are hyperplanes:
    whatever a test reads on them, it reads without any dimple. Without weight
    decay the weights' component orthogonal to the data's span never moves
    from its random initial value, so the plane is tilted against the data by
    chance, as in Tanay and Griffin (2016).

    Parameters
    ----------
    x : torch.Tensor
        Points (N, D), float.
    y : torch.Tensor
        Labels (N,), int64.
    n_classes : int, optional
        Default ``max(y) + 1`` (at least 2).
    seed : int
        Seeds the initialisation.
    steps, lr, weight_decay : int, float, float
        Gradient steps, step size, L2 penalty.

    Returns
    -------
    torch.nn.Linear
        In eval mode, on ``x``'s device and dtype.
    """
    xt = check_tensor(x, "x", min_ndim=2)
    if xt.ndim != 2 or xt.shape[0] == 0:
        raise ValueError(f"x: expected points (N, D), got {tuple(xt.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != xt.shape[:1]:
        raise ValueError(f"y: expected int64 labels of shape ({xt.shape[0]},)")
    classes = max(int(y.max()) + 1, 2) if n_classes is None else check_int(
        n_classes, "n_classes", 2)
    if int(y.min()) < 0 or int(y.max()) >= classes:
        raise ValueError(f"y: labels must lie in [0, {classes})")
    steps = check_int(steps, "steps", 1)
    lr = check_positive(lr, "lr")
    weight_decay = check_nonnegative(weight_decay, "weight_decay")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    bound = 1.0 / math.sqrt(xt.shape[1])  # nn.Linear's default, from our own generator
    w = (torch.rand(classes, xt.shape[1], generator=gen, dtype=torch.float64) * 2 - 1) * bound
    b = (torch.rand(classes, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    # full-batch cross-entropy gradient in closed form (no autograd in the loop)
    xd = xt.detach().to(torch.float64).cpu()
    onehot = nn.functional.one_hot(y.cpu(), classes).to(torch.float64)
    vw, vb = torch.zeros_like(w), torch.zeros_like(b)
    for _ in range(steps):
        err = (torch.softmax(xd @ w.T + b, dim=1) - onehot) / xd.shape[0]
        gw = err.T @ xd + weight_decay * w
        gb = err.sum(0)
        vw.mul_(0.9).add_(gw)
        vb.mul_(0.9).add_(gb)
        w -= lr * vw
        b -= lr * vb
    lin = nn.utils.skip_init(nn.Linear, xt.shape[1], classes, device=xt.device,
                             dtype=xt.dtype)  # no draw from the global RNG
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    for p in lin.parameters():
        p.requires_grad_(False)
    return lin.eval()


def clinging_test(model: nn.Module, x: torch.Tensor, y: torch.Tensor, basis: torch.Tensor, *,
                  null: NullBand | None = None, level: float = 0.9) -> HypothesisTest:
    """Test whether the boundary runs along the manifold more than a random one does.

    The measurement is the median, over the points ``x``, of the share of the
    boundary normal (the gradient of the margin between ``y`` and the
    runner-up class) that lies in the tangent space. The default null is a
    random boundary: one isotropic random normal, whose on-fraction follows
    the closed form :func:`dmmlib.nulls.on_fraction_null` (a single
    direction, not a median of independent ones, because the normals of one
    network at nearby points are strongly correlated). The model "clings"
    (``"supports"``) when the median lies below the null's band, and the test
    ``"contradicts"`` clinging when the normal leans *into* the manifold more
    than a random one does.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits (its mode is restored).
    x : torch.Tensor
        Points on the manifold (N, D), typically training points.
    y : torch.Tensor
        Their labels (N,) or class pairs (N, 2), as for
        :func:`dmmlib.geometry.boundary_normal`.
    basis : torch.Tensor
        Orthonormal tangent bases (N, D, k).
    null : NullBand, optional
        Another null (an untrained network's or a linear classifier's band of
        the same median, see :func:`dmmlib.nulls.band`).
    level : float
        Mass of the random-boundary band when ``null`` is not given.

    Returns
    -------
    HypothesisTest
        ``predicts="below"``.
    """
    xt = check_tensor(x, "x", min_ndim=2)
    on = clinging(boundary_normal(model, xt, y), basis).on_fraction.detach().cpu().double()
    if null is None:
        n = xt[0].numel()
        null = on_fraction_null(n, int(basis.shape[-1]), level=level)
    elif not isinstance(null, NullBand):
        raise TypeError(f"null: expected a NullBand, got {type(null).__name__}")
    measured = float(on.median())
    return HypothesisTest(measured, null, "below", decide(measured, null, "below"), on)


def dimple_test(model: nn.Module, probes: torch.Tensor, basis: torch.Tensor,
                train_x: torch.Tensor, train_y: torch.Tensor, *, locality_null: NullBand,
                pair: tuple[int, int] = (1, 0), coords: torch.Tensor | None = None,
                bend_floor: float = 0.02, max_distance: float = 1.0, tol: float = 1e-4,
                n_scan: int = 32) -> DimpleTest:
    """Test whether the boundary bends around the training points, as a dimple does.

    :func:`dmmlib.geometry.dimple_profile` measures the boundary's height
    over the manifold at ``probes`` and the share of its variance no affine
    function of the coordinates explains (``bend``). The test has two steps,
    both fixed in advance:

    1. *Is it bent at all?* A hyperplane over a flat manifold has
       ``bend = 0``; the flat null is the band ``[0, bend_floor]`` (the
       floor absorbs the bisection tolerance and the float32 arithmetic).
       Inside it the boundary cannot be told from a tilted plane and the
       outcome is ``"cannot distinguish"``.
    2. *Is the bending at the training points, each towards its own class?*
       The Spearman correlation between the affine fit's residual, oriented
       by the nearest training point's class, and the distance to that point
       (``profile.locality``) is set against
       ``locality_null``: below its band (bending concentrated at the
       points) ``"supports"``, above it ``"contradicts"``.

    The locality null should be the same measure on untrained networks of the
    same architecture (``nulls.band([dimple_test(...).profile.locality for
    each seed], kind="untrained network")``): a random ReLU boundary bends
    too, smoothly, and a smooth residual along the manifold correlates with
    the distance to the points by chance far more often than the
    independence band :func:`spearman_null` allows (on the five-point toy, 3
    of 5 untrained networks fall outside it). Use :func:`spearman_null` only
    for probes far enough apart to be independent.

    A boundary for which fewer than ``k + 3`` probes find a crossing within
    ``max_distance`` gives ``"cannot distinguish"`` (nothing to fit).

    Parameters
    ----------
    model, probes, basis, train_x, train_y, pair, coords, max_distance, tol, n_scan
        As in :func:`dmmlib.geometry.dimple_profile`.
    locality_null : NullBand
        What ``profile.locality`` reads when there are no dimples.
    bend_floor : float
        The largest bend a hyperplane is allowed (the flat null's band).

    Returns
    -------
    DimpleTest
    """
    bend_floor = check_nonnegative(bend_floor, "bend_floor")
    if not isinstance(locality_null, NullBand):
        raise TypeError(f"locality_null: expected a NullBand, got {type(locality_null).__name__}")
    prof = dimple_profile(model, probes, basis, train_x, train_y=train_y, pair=pair,
                          coords=coords,
                          max_distance=max_distance, tol=tol, n_scan=n_scan)
    bend_null = NullBand("flat boundary (any hyperplane)", 0.0, 0.0, bend_floor, 1.0, 0)
    if not (math.isfinite(prof.bend) and math.isfinite(prof.locality)):
        return DimpleTest(prof, bend_null, locality_null, "cannot distinguish",
                          "cannot distinguish", "cannot distinguish")
    flat = decide(prof.bend, bend_null, "above")
    local = (decide(prof.locality, locality_null, "below") if flat == "supports"
             else "cannot distinguish")
    outcome = local if flat == "supports" else "cannot distinguish"
    return DimpleTest(prof, bend_null, locality_null, flat, local, outcome)
