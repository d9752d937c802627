"""Minimal-norm L2 attacks: FMN (Pintor et al., 2021) and DDN (Rony et al., 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as V
from ._common import (
    batch_view,
    check_classes,
    eval_mode,
    finish,
    flat_norm,
    margin,
    prepare,
    progress_bar,
)

__all__ = ["minimal_l2"]

Result = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def minimal_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 100,
    method: str = "fmn",
    targeted: bool = False,
    step_size: float = 1.0,
    final_step_size: float | None = None,
    gamma: float = 0.05,
    final_gamma: float = 0.001,
    init_eps: float = 1.0,
    return_success: bool = False,
    progress: bool | None = None,
) -> Result:
    """The smallest L2 perturbation that changes the decision, by an adaptive norm budget.

    Introduced in the chapter "The old mental model".

    Two state-of-the-art minimum-norm attacks share this function; both use
    one gradient per step and keep, per sample, the smallest adversarial
    perturbation seen (the L2 distance ``||x_adv - x||_2``):

    * ``method="fmn"`` (default): Fast Minimum-Norm attack, Pintor, Roli,
      Brendel & Biggio (2021), "Fast minimum-norm adversarial attacks through
      adaptive norm constraints" (NeurIPS). Gradient steps on the logit margin
      ``z_y - max_{j != y} z_j`` inside an L2 ball whose radius ``eps`` starts
      at the linear estimate of the distance to the boundary, then shrinks by
      ``1 - gamma`` while adversarial and grows by ``1 + gamma`` otherwise;
      the step size and ``gamma`` follow cosine schedules (``step_size`` ->
      ``final_step_size``, ``gamma`` -> ``final_gamma``), which is what makes
      the final distance precise.
    * ``method="ddn"``: Decoupled Direction and Norm, Rony, Hafemann,
      Oliveira, Ben Ayed, Sabourin & Granger (2019), "Decoupling direction
      and norm for efficient gradient-based L2 adversarial attacks and
      defenses" (CVPR). Normalised cross-entropy gradient steps, then
      projection onto the sphere of radius ``eps`` (starting at
      ``init_eps``), which shrinks/grows by the fixed factor ``gamma``; the
      step size follows a cosine schedule.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1]; runs in eval mode
        (the caller's modes are restored), on its own device.
    x : torch.Tensor
        Images (N, ...) of floats in [0, 1].
    y : torch.Tensor
        Integer labels (N,): true classes, or target classes when ``targeted``.
    steps : int, default 100
        Gradient steps (= gradient evaluations; one more forward pass is made).
    method : {"fmn", "ddn"}, default "fmn"
    targeted : bool, default False
        Look for the closest point classified as ``y``.
    step_size : float, default 1.0
        Initial L2 step length (pixel units).
    final_step_size : float, optional
        Final step length of the cosine schedule; default ``step_size / 100``.
    gamma : float, default 0.05
        Relative change of the norm budget per step (initial value for FMN).
    final_gamma : float, default 0.001
        Final ``gamma`` of FMN's cosine schedule (unused by DDN).
    init_eps : float, default 1.0
        DDN's initial norm budget (FMN estimates it from the first gradient).
    return_success : bool, default False
        Also return the boolean mask (N,) of samples for which an adversarial
        example was found.
    progress : bool, optional
        tqdm bar over steps; ``None`` follows ``$DMM_PROGRESS`` (default on).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Per sample the smallest adversarial example found, like ``x`` (shape,
        dtype, device) in [0, 1]; samples without one are returned as ``x``
        (success False). Already misclassified samples come back unchanged.

    Examples
    --------
    >>> x_adv, ok = minimal_l2(model, x, y, steps=100, return_success=True)  # doctest: +SKIP
    >>> d = (x_adv - x).flatten(1).norm(dim=1)                               # doctest: +SKIP
    >>> print(f"median L2 distance to the boundary: {d[ok].median():.3f}")   # doctest: +SKIP
    """
    V.check_int(steps, "steps")
    V.check_choice(method, "method", ("fmn", "ddn"))
    step_size = V.check_positive(step_size, "step_size")
    final = step_size / 100 if final_step_size is None else V.check_positive(
        final_step_size, "final_step_size")
    gamma = V.check_positive(gamma, "gamma")
    final_gamma = V.check_nonnegative(final_gamma, "final_gamma")
    if gamma >= 1 or final_gamma >= 1:
        raise ValueError(f"gamma, final_gamma: must be < 1, got {gamma}, {final_gamma}")
    init_eps = V.check_positive(init_eps, "init_eps")
    xw, yw = prepare(model, x, y)
    with eval_mode(model):
        x_adv, success = _minimal_l2(model, xw, yw, steps, method, targeted, step_size, final,
                                     gamma, final_gamma, init_eps, progress)
    out = finish(x_adv, x)
    return (out, success.to(x.device)) if return_success else out


def _cosine(start: float, end: float, k: int, steps: int) -> float:
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * k / max(steps, 1)))


def _minimal_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, method: str,
                targeted: bool, alpha0: float, alpha_final: float, gamma0: float,
                gamma_final: float, init_eps: float, progress: bool | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    delta = torch.zeros_like(x)
    best_norm = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    best_adv = x.clone()
    eps = torch.full((n,), init_eps if method == "ddn" else 0.0, dtype=x.dtype, device=x.device)
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    # the largest possible L2 distance inside the box, an upper bound for eps
    worst = flat_norm(torch.maximum(x, 1 - x))

    def evaluate(logits: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(1)
        adv = (pred == y) if targeted else (pred != y)
        norm = flat_norm(delta)
        better = adv & (norm < best_norm)
        best_norm.copy_(torch.where(better, norm, best_norm))
        best_adv.copy_(torch.where(batch_view(better, x), x + delta, best_adv))
        return adv

    bar = progress_bar(steps, method, progress)
    try:
        for k in range(steps):
            with torch.enable_grad():
                d = delta.detach().requires_grad_(True)
                logits = model(x + d)
                if k == 0:
                    check_classes(y, logits)
                if method == "fmn":
                    # margin to minimise: positive while not adversarial
                    m = -margin(logits, y) if targeted else margin(logits, y)
                    objective = m.sum()
                else:  # DDN ascends the cross-entropy (descends it when targeted)
                    ce = F.cross_entropy(logits, y, reduction="none")
                    objective = -ce.sum() if targeted else ce.sum()
                (grad,) = torch.autograd.grad(objective, d)
            logits = logits.detach()
            adv = evaluate(logits)
            alpha = _cosine(alpha0, alpha_final, k, steps)
            if method == "fmn":
                # drop components that would push pixels already at 0 or 1 out of the box:
                # the clip would undo them, and they distort both the step and the
                # linear distance estimate
                xa = x + delta
                grad = grad.masked_fill(((xa <= 0) & (grad > 0)) | ((xa >= 1) & (grad < 0)), 0.0)
            gnorm = flat_norm(grad).clamp_min(1e-12)
            if method == "fmn":
                gamma = _cosine(gamma0, gamma_final, k, steps)
                found |= adv
                norm = flat_norm(delta)
                # first phase (no adversarial found yet): the linear estimate of the
                # distance to the boundary, enlarged by 1 + gamma so that it gets crossed
                estimate = (norm + m.detach().clamp_min(0) / gnorm) * (1 + gamma)
                grow = torch.where(found, eps * (1 + gamma), estimate)
                shrink = torch.minimum(eps * (1 - gamma), best_norm)
                eps = torch.where(adv, shrink, grow)
                eps = torch.minimum(eps, worst)
                delta = delta - batch_view(alpha / gnorm, grad) * grad
                scale = (eps / flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
            else:
                found |= adv
                eps = torch.where(adv, eps * (1 - gamma0), eps * (1 + gamma0))
                eps = torch.minimum(eps, worst)
                delta = delta + batch_view(alpha / gnorm, grad) * grad
                scale = eps / flat_norm(delta).clamp_min(1e-12)  # onto the sphere
            delta = batch_view(scale, delta) * delta
            delta = (x + delta).clamp(0.0, 1.0) - x
            bar.update(1)
        with torch.no_grad():
            logits = model(x + delta)
            if steps == 0:
                check_classes(y, logits)
        evaluate(logits)
    finally:
        bar.close()
    success = torch.isfinite(best_norm)
    return best_adv, success
