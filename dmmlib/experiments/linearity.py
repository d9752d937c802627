"""How linear is a trained network along a direction?

{Goodfellow et al. 2015} explain adversarial examples by the near-linearity
of networks in high dimension: along the gradient, the logit margin falls
about as fast as its first-order Taylor expansion says, so a step of length
``margin / ||gradient||`` crosses the boundary. :func:`linearity_profile`
measures that directly: along a unit direction ``u`` that descends the
margin (the gradient, or its projection on a subspace such as a tangent
space), it evaluates the margin at distances given in units of the linear
prediction of the crossing, so a linear network gives ``1 - s`` exactly and
crosses at ``s = 1``.
"""

from __future__ import annotations

from typing import NamedTuple

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

__all__ = ["margin_and_gradient", "LinearityProfile", "linearity_profile"]


def margin_and_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logit margin ``z_y - max_{j != y} z_j`` (N,) and its input gradient (like ``x``).
    """
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
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
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
