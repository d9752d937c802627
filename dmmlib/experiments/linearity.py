"""How linear is a trained network along a direction.

{Goodfellow et al. 2015} explain adversarial examples by the near-linearity
of networks in high dimension: along the gradient, the logit margin falls
about as fast as its first-order Taylor expansion says, so a step of length
``margin / ||gradient||`` crosses the boundary. :func:`linearity_profile`
measures that directly: along a unit direction ``u`` that descends the
margin (the gradient, or its projection on a subspace such as a tangent
space), it evaluates the margin at distances given in units of the linear
prediction of the crossing, so a linear network gives ``1 - s`` exactly and
crosses at ``s = 1``.

The chapter "The old mental model and why it misleads" measures the same
argument on synthetic tasks: :func:`half_moons` and :func:`gaussian_task`
(two tasks whose difficulty does not depend on the input dimension),
:func:`nearest_other` and :func:`knn_other` (how far the other class is, and
whether a point looks like it), :func:`fgsm_flip_budget` (the smallest
sign-gradient step that flips a label) and :func:`dimension_experiment`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import torch
from torch import nn

from .._validate import (
    check_basis,
    check_int,
    check_labels,
    check_model,
    check_positive,
    check_tensor,
    output_size,
)
from ..device import module_device

__all__ = ["margin_and_gradient", "LinearityProfile", "linearity_profile",
           "half_moons", "nearest_other", "knn_other", "nearest_adversarial",
           "gaussian_task", "fgsm_flip_budget", "dimension_experiment", "plane_experiment",
    "OLD_MODEL_SIZES",
]


def margin_and_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logit margin ``z_y - max_{j != y} z_j`` (N,) and its input gradient (like ``x``)."""
    from .transfer import input_gradients

    model = check_model(model)
    xt = check_tensor(x, "x", min_ndim=2)
    if xt.shape[0] == 0:
        raise ValueError(f"x: empty batch (shape {tuple(xt.shape)})")
    yt = check_labels(y, xt, "y", output_size(model, xt))
    g = input_gradients(model, xt, yt, objective="margin")
    return _margin(model, xt, yt), g


@torch.no_grad()
def _margin(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
) -> torch.Tensor:
    from ..ops import eval_mode, margin

    dev = module_device(model)
    out = []
    with eval_mode(model):
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            z = model(xb.to(dev))
            out.append(margin(z, yb.to(dev)).to(x.device))
    return torch.cat(out).to(x.dtype)


class LinearityProfile(NamedTuple):
    """The margin along a line, in units where a linear network is trivial.

    ``s`` (S,): distance along the direction in units of ``linear_distance``;
    ``margin_ratio`` (N, S): ``m(x + s d u) / m(x)`` (a linear network: ``1 - s``);
    ``linear_distance`` (N,): ``d = m(x) / |grad m . u|``, the first-order
    prediction of the distance to the boundary; ``crossing`` (N,): the first
    ``s`` at which the margin reaches 0 (linear interpolation between grid
    points; ``inf`` if not within the grid), so ``crossing * d`` is the
    actual distance and ``crossing`` itself the ratio actual / linear;
    ``deviation`` (N,): the largest ``|margin_ratio - (1 - s)|`` over
    ``0 <= s <= 1``, the error of the Taylor prediction before the predicted
    crossing, relative to the margin. Samples with ``m(x) <= 0`` (already
    misclassified) or a zero directional slope are NaN.
    """

    s: torch.Tensor
    margin_ratio: torch.Tensor
    linear_distance: torch.Tensor
    crossing: torch.Tensor
    deviation: torch.Tensor


def linearity_profile(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    basis: torch.Tensor | None = None,
    complement: bool = False,
    s_max: float = 3.0,
    n_points: int = 61,
) -> LinearityProfile:
    """The margin along the steepest descent direction (optionally within a subspace).

    The direction is ``u = -P g / ||P g||`` with ``g`` the margin gradient at
    ``x`` and ``P`` the projection onto ``span(basis)`` (or its complement,
    or the identity). Points are not clipped to [0, 1].

    Parameters
    ----------
    model, x, y: classifier, points (N, ...) and labels (N,).
    basis: orthonormal bases (N, D, k), e.g. tangent spaces; ``None``: all directions.
    complement: use the orthogonal complement of ``span(basis)``.
    s_max: the line is followed up to ``s_max`` times the linear prediction.
    n_points: grid points on ``[0, s_max]``.
    """
    model = check_model(model)
    xt = check_tensor(x, "x", min_ndim=2)
    if xt.shape[0] == 0:
        raise ValueError(f"x: empty batch (shape {tuple(xt.shape)})")
    yt = check_labels(y, xt, "y", output_size(model, xt))
    s_max = check_positive(s_max, "s_max")
    check_int(n_points, "n_points", 2)
    if complement and basis is None:
        raise ValueError("complement: needs a subspace (pass basis=U)")
    if basis is not None:
        check_basis(basis, xt, "basis")
    m, g = margin_and_gradient(model, xt, yt)
    flat = g.flatten(1).double()
    if basis is not None:
        U = check_basis(basis, xt, "basis").to(flat.device, flat.dtype)
        inside = torch.einsum("ndk,nk->nd", U, torch.einsum("ndk,nd->nk", U, flat))
        flat = flat - inside if complement else inside
    slope = flat.norm(dim=1)
    valid = (slope > 0) & (m > 0)
    safe = torch.where(valid, slope, torch.ones_like(slope))
    u = (-flat / safe[:, None]).to(xt.dtype).reshape(xt.shape)
    d = torch.where(valid, m.double() / safe, torch.zeros_like(slope)).to(xt.dtype)
    s = torch.linspace(0, s_max, n_points, dtype=xt.dtype, device=xt.device)
    n = xt.shape[0]
    pts = xt.unsqueeze(1) + (s[None, :, None] * d[:, None, None]).reshape(
        n, n_points, *([1] * (xt.ndim - 1))
    ) * u.unsqueeze(1)
    margins = _margin(
        model, pts.reshape(n * n_points, *xt.shape[1:]), yt.repeat_interleave(n_points)
    ).reshape(n, n_points)
    m_safe = torch.where(valid, m, torch.ones_like(m))
    ratio = margins / m_safe[:, None]
    # first crossing, interpolated linearly between grid points
    neg = ratio <= 0
    has = neg.any(1)
    j = neg.int().argmax(1).clamp_min(1)
    r0 = ratio.gather(1, (j - 1)[:, None]).squeeze(1)
    r1 = ratio.gather(1, j[:, None]).squeeze(1)
    s0, s1 = s[j - 1], s[j]
    cross = s0 + (s1 - s0) * r0 / (r0 - r1).clamp_min(1e-12)
    cross = torch.where(has, cross, torch.full_like(cross, float("inf")))
    upto = s <= 1 + 1e-9
    dev_ = (ratio[:, upto] - (1 - s[upto])[None, :]).abs().amax(1)
    nan = torch.full_like(m, float("nan"))
    return LinearityProfile(
        s,
        torch.where(valid[:, None], ratio, torch.full_like(ratio, float("nan"))),
        torch.where(valid, d, nan),
        torch.where(valid, cross, nan),
        torch.where(valid, dev_, nan),
    )


# ------------------------------------------------------------------ the old mental model
def half_moons(n_points: int, seed: int, basis: torch.Tensor | None = None,
               noise: float = 0.08) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half-moons scaled into [0.1, 0.9]^2, optionally placed in R^n.

    Parameters
    ----------
    n_points: how many points.
    seed: seeds a private generator (the global RNG is not used).
    basis: (n, 2) orthonormal: the points are ``0.5 + basis @ (p - 0.5)``, so
        they fill a 2-D plane through the centre of the unit cube.
    noise: standard deviation of the Gaussian noise added to the moons.

    Returns
    -------
    tuple
        ``(x, y)``: (N, 2) or (N, n) float32 points and (N,) labels in {0, 1}.
    """
    import math

    check_int(n_points, "n_points", minimum=1)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n_points,), generator=gen)
    t = torch.rand(n_points, generator=gen) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    p = torch.where(y[:, None] == 0, upper, lower) + noise * torch.randn(n_points, 2, generator=gen)
    p = (p - torch.tensor([-1.25, -0.8])) / torch.tensor([3.5, 2.1]) * 0.8 + 0.1
    x = p if basis is None else 0.5 + (p - 0.5) @ basis.T
    return x.float(), y


def nearest_other(x: torch.Tensor, y: torch.Tensor, x_ref: torch.Tensor,
                  y_ref: torch.Tensor) -> torch.Tensor:
    """L2 distance from each point to the nearest reference point of another class.

    Parameters
    ----------
    x, y: (N, ...) points and their (N,) labels.
    x_ref, y_ref: (M, ...) reference points (a training set) and their labels.

    Returns
    -------
    torch.Tensor
        (N,) distances (``inf`` where no reference point has another class).
    """
    d = torch.cdist(x.flatten(1), x_ref.flatten(1).to(x))
    same = y.to(x.device)[:, None] == y_ref.to(x.device)[None, :]
    return d.masked_fill(same, float("inf")).min(1).values


def knn_other(x: torch.Tensor, y: torch.Tensor, x_ref: torch.Tensor, y_ref: torch.Tensor,
              k: int = 5) -> torch.Tensor:
    """True where most of the ``k`` nearest reference points are *not* of class ``y``.

    Returns
    -------
    torch.Tensor
        (N,) bool.
    """
    check_int(k, "k", minimum=1)
    idx = torch.cdist(x.flatten(1), x_ref.flatten(1).to(x)).topk(k, largest=False).indices
    return (y_ref.to(x.device)[idx] != y.to(x.device)[:, None]).double().mean(1) > 0.5


def nearest_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DeepFool on the correctly classified points.

    Returns
    -------
    tuple
        ``(ok, x_adv, success)``: the (N,) mask of correctly classified points,
        the adversarial points of those, and DeepFool's success per point.
    """
    from ..attacks import deepfool
    from ..ops import eval_mode
    from ..train import predict

    with eval_mode(model):
        ok = predict(model, x) == y
        res = deepfool(model, x[ok], y[ok], progress=False)
    return ok, res.x_adv, res.success


def gaussian_task(n: int, n_points: int, seed: int, *, delta: float = 0.3, sigma: float = 0.08,
                  device: torch.device | str | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two Gaussian classes at ``0.5 +- (delta/2) u`` with noise ``sigma``, clipped to [0, 1].

    The direction ``u`` depends only on ``n`` (seed ``1000 + n``), so a
    training and a test set drawn with different ``seed`` share it; the best
    classifier's error does not depend on ``n``.

    Returns
    -------
    tuple
        ``(x, y, u)``: (N, n) points, (N,) labels, the unit vector ``u`` (n,).
    """
    from ..synthetic import orthonormal_basis

    u = orthonormal_basis(n, 1, seed=1000 + n)[:, 0]
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n_points,), generator=gen)
    x = 0.5 + (2 * y[:, None] - 1) * (delta / 2) * u + sigma * torch.randn(n_points, n,
                                                                         generator=gen)
    return x.clamp(0, 1).to(device), y.to(device), u.to(device)


def fgsm_flip_budget(model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
                     iters: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest ``eps`` in (0, 1] (bisection) such that ``x - eps * sign(g)`` changes the label.

    Parameters
    ----------
    model: the classifier.
    x, y: points and labels.
    g: the gradient of the margin at ``x`` (the step is ``-sign(g)``).
    iters: bisection steps.

    Returns
    -------
    tuple
        ``(eps, found)``: (N,) budgets and (N,) bool, False where even
        ``eps = 1`` does not flip the label.
    """
    from ..train import predict

    lo, hi = torch.zeros(len(x), device=x.device), torch.ones(len(x), device=x.device)
    step = -g.sign()
    with torch.no_grad():
        found = predict(model, x + hi[:, None] * step) != y
        for _ in range(iters):
            mid = (lo + hi) / 2
            flip = predict(model, x + mid[:, None] * step) != y
            hi, lo = torch.where(flip, mid, hi), torch.where(flip, lo, mid)
    return hi, found


def _two_class_margin_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        z = model(xg)
        m = z.gather(1, y[:, None])[:, 0] - z.gather(1, (1 - y)[:, None])[:, 0]
        (g,) = torch.autograd.grad(m.sum(), xg)
    return m.detach(), g


def dimension_experiment(dims: list[int], *, n_train: int, n_test: int, seeds: int, steps: int,
                         hidden: tuple[int, ...] = (64, 64), delta: float = 0.3,
                         sigma: float = 0.08, device: torch.device | str | None = None
                         ) -> list[dict]:
    """The old-model chapter's dimension sweep: one row per (n, model, seed).

    For each input dimension ``n`` it draws :func:`gaussian_task` training and
    test sets, trains an MLP (``hidden``) and a linear model per seed
    (full-batch Adam, cached by :func:`dmmlib.train.train_cached`), and
    measures at the test points DeepFool's distance to the boundary, the
    distance to the best boundary, to the nearest other-class training point,
    the linear prediction ``margin / ||g||_1`` of the FGSM budget and the
    measured one. Model initialisation seeds the global RNG.

    Returns
    -------
    list of dict
        Keys ``n, model, seed, accuracy, d_boundary, d_bayes, d_other, ratio,
        cos_u, eps_pred, eps_flip, l1_over_l2``.
    """
    from ..models import MLP
    from ..train import train_cached

    rows = []
    for n in dims:
        x, y, u = gaussian_task(n, n_train, seed=n, delta=delta, sigma=sigma, device=device)
        xt, yt, _ = gaussian_task(n, n_test, seed=10_000 + n, delta=delta, sigma=sigma,
                                  device=device)
        for kind, hid in (("MLP", tuple(hidden)), ("linear", ())):
            for s in range(seeds):
                torch.manual_seed(s)
                model = MLP(n, hid, 2, mean=0.5, std=0.25).to(device)
                train_cached(model, (x, y), name=f"old-model-gauss-{kind}", epochs=steps,
                             batch_size=n_train, lr=1e-2, optimizer="adam", seed=s)
                model.eval()
                ok, adv, success = nearest_adversarial(model, xt, yt)
                xo, yo = xt[ok][success], yt[ok][success]
                delta_x = (adv - xt[ok])[success]
                m, g = _two_class_margin_and_grad(model, xo, yo)
                eps_flip, eps_found = fgsm_flip_budget(model, xo, yo, g)
                d_other = nearest_other(xo, yo, x, y)
                rows.append({
                    "n": n, "model": kind, "seed": s,
                    "accuracy": float(ok.double().mean()),
                    "d_boundary": float(delta_x.norm(dim=1).median()),
                    "d_bayes": float(((xo - 0.5) @ u).abs().median()),
                    "d_other": float(d_other.median()),
                    "ratio": float((delta_x.norm(dim=1) / d_other).median()),
                    "cos_u": float(((delta_x @ u).abs() / delta_x.norm(dim=1)).median()),
                    "eps_pred": float((m / g.abs().sum(1)).median()),
                    "eps_flip": float(eps_flip[eps_found].median()),
                    "l1_over_l2": float((g.abs().sum(1) / g.norm(dim=1)).median()),
                })
    return rows


def plane_experiment(dims: list[int], *, n_train: int, n_test: int, seeds: int, steps: int,
                     hidden: tuple[int, ...] = (64, 64),
                     device: torch.device | str | None = None) -> list[dict]:
    """The old-model chapter's moons on a random 2-D plane in R^n: one row per (n, seed).

    :func:`half_moons` placed by a random orthonormal basis (seed ``2000 + n``;
    the identity for ``n = 2``), an MLP trained per seed (full-batch SGD with
    momentum, cached), and at the test points DeepFool's perturbations split
    into their part in the plane and the rest, the class of their projection
    back onto the plane, the dimple depth on and off the plane and how much of
    the first layer's weight change leaves the plane. Model initialisation
    seeds the global RNG.

    Returns
    -------
    list of dict
        Keys ``n, seed, accuracy, d_boundary, off_fraction, random_off,
        projection_same_class, projection_looks_other, adv_looks_other_2d,
        depth_on, depth_off, w_off_change``.
    """
    from ..geometry import dimple_depth
    from ..manifold import random_subspace_baseline, split_on_off_manifold
    from ..models import MLP
    from ..synthetic import orthonormal_basis
    from ..train import predict, train_cached

    rows = []
    for n in dims:
        basis = torch.eye(2) if n == 2 else orthonormal_basis(n, 2, seed=2000 + n)
        x, y = half_moons(n_train, seed=0, basis=basis)
        xt, yt = half_moons(n_test, seed=1, basis=basis)
        x, y, xt, yt, B = x.to(device), y.to(device), xt.to(device), yt.to(device), basis.to(device)
        for s in range(seeds):
            torch.manual_seed(s)
            model = MLP(n, tuple(hidden), 2, mean=0.5, std=0.25).to(device)
            first = cast(nn.Linear, model.net[0])
            w_init = first.weight.detach().clone()
            train_cached(model, (x, y), name="old-model-moons", epochs=steps,
                         batch_size=n_train, lr=0.1, optimizer="sgd", momentum=0.9, seed=s)
            model.eval()
            dw = first.weight.detach() - w_init
            ok, adv, success = nearest_adversarial(model, xt, yt)
            xo, yo, xa = xt[ok][success], yt[ok][success], adv[success]
            U = B.unsqueeze(0).expand(len(xo), n, 2)
            split = split_on_off_manifold(xa - xo, U)
            projected = 0.5 + (xa - 0.5) @ B @ B.T              # back onto the data plane
            depth = dimple_depth(model, xo, yo, U, max_distance=1.0)
            rows.append({
                "n": n, "seed": s, "accuracy": float(ok.double().mean()),
                "d_boundary": float((xa - xo).norm(dim=1).median()),
                "off_fraction": float(split.off_fraction.median()),
                "random_off": (random_subspace_baseline(n, 2, n_samples=2000).off_mean
                               if n > 2 else 0.0),
                "projection_same_class": float((predict(model, projected) == yo).double().mean()),
                "projection_looks_other": float(knn_other(projected, yo, x, y).double().mean()),
                "adv_looks_other_2d": float(knn_other(xa, yo, x, y).double().mean()),
                "depth_on": float(depth.on.median()), "depth_off": float(depth.off.median()),
                "w_off_change": float((dw - dw @ B @ B.T).norm() / dw.norm()),
            })
    return rows


#: Sizes of the chapter "The old mental model" beyond the profile's, per profile: the
#: input dimensions swept, training points per synthetic task, and full-batch training
#: steps for the small networks.
OLD_MODEL_SIZES: dict[str, dict[str, Any]] = {
    "ci":  dict(dims=[2, 8, 32, 128, 512], n_train=1000, steps=200, moon_steps=300),
    "cpu": dict(dims=[2, 8, 32, 128, 512, 2048], n_train=2000, steps=300, moon_steps=500),
    "gpu": dict(dims=[2, 8, 32, 128, 512, 2048, 8192], n_train=4000, steps=500,
                moon_steps=1000),
}
