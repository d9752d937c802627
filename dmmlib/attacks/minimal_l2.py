"""Minimal-norm L2 attacks: FMN (Pintor et al., 2021), DDN (Rony et al., 2019), or both."""

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

#: FMN: ignore gradient components that point out of the box at saturated pixels.
_MASK_BOX = True


def minimal_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 100,
    method: str = "auto",
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

    * ``method="fmn"``: Fast Minimum-Norm attack, Pintor, Roli, Brendel &
      Biggio (2021), "Fast minimum-norm adversarial attacks through adaptive
      norm constraints" (NeurIPS). Gradient steps on the logit margin
      ``z_y - max_{j != y} z_j`` inside an L2 ball whose radius ``eps`` starts
      at the linear estimate of the distance to the boundary (here enlarged by
      ``1 + gamma`` so that it is crossed), then shrinks by ``1 - gamma`` while
      adversarial and grows by ``1 + gamma`` otherwise; the step size and
      ``gamma`` follow cosine schedules (``step_size`` -> ``final_step_size``,
      ``gamma`` -> ``final_gamma``), which makes the final distance precise
      (exact for an affine classifier). Gradient components that would push
      pixels already at 0 or 1 out of the box are dropped (a small change to
      the paper: the clip would undo them anyway). Its weakness: the margin
      always points to the *runner-up* class, which is not always the class
      with the nearest boundary.
    * ``method="ddn"``: Decoupled Direction and Norm, Rony, Hafemann,
      Oliveira, Ben Ayed, Sabourin & Granger (2019), "Decoupling direction
      and norm for efficient gradient-based L2 adversarial attacks and
      defenses" (CVPR). Normalised cross-entropy gradient steps, then
      projection onto the sphere of radius ``eps`` (starting at
      ``init_eps``), which shrinks/grows by the fixed factor ``gamma``; the
      step size follows a cosine schedule. The cross-entropy mixes all
      classes, so DDN often finds a nearer class than FMN on trained networks,
      but it can miss the nearest boundary of a multi-class affine model.
    * ``method="auto"`` (default): both at once, at the *same* gradient budget:
      FMN on one copy of the batch and DDN on another, ``ceil(steps / 2)``
      steps each (one batched forward/backward per step), and per sample the
      smaller adversarial of the two. On the book's Fashion-MNIST CNN this
      beats either method run alone for ``steps`` steps (see
      ``benchmarks/README.md``).

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
        Gradient evaluations per sample (one more forward pass is made).
    method : {"auto", "fmn", "ddn"}, default "auto"
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
    V.check_choice(method, "method", ("auto", "fmn", "ddn"))
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
    if method == "auto":
        # FMN and DDN side by side on two copies of the batch, half the steps each
        # (equal gradient budget), then the smaller adversarial per sample
        xx, yy = torch.cat([x, x]), torch.cat([y, y])
        fmn = torch.arange(2 * n, device=x.device) < n
        adv, norm = _run(model, xx, yy, steps // 2 + steps % 2, fmn, targeted, alpha0,
                         alpha_final, gamma0, gamma_final, init_eps, progress, "minimal_l2")
        use_second = norm[n:] < norm[:n]
        best = torch.where(batch_view(use_second, x), adv[n:], adv[:n])
        best_norm = torch.where(use_second, norm[n:], norm[:n])
        return best, torch.isfinite(best_norm)
    fmn = torch.full((n,), method == "fmn", dtype=torch.bool, device=x.device)
    adv, norm = _run(model, x, y, steps, fmn, targeted, alpha0, alpha_final, gamma0,
                     gamma_final, init_eps, progress, method)
    return adv, torch.isfinite(norm)


def _run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, fmn: torch.Tensor,
         targeted: bool, alpha0: float, alpha_final: float, gamma0: float, gamma_final: float,
         init_eps: float, progress: bool | None, desc: str
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """FMN on the samples where ``fmn`` is True, DDN on the others, in one batch.

    Returns the best adversarial per sample and its norm (``inf`` if none)."""
    n = x.shape[0]
    ddn = ~fmn
    any_fmn, any_ddn = bool(fmn.any()), bool(ddn.any())
    delta = torch.zeros_like(x)
    best_norm = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    best_adv = x.clone()
    eps = torch.where(ddn, init_eps, 0.0).to(x.dtype)
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    # the largest possible L2 distance inside the box, an upper bound for eps
    worst = flat_norm(torch.maximum(x, 1 - x))
    sign = -1.0 if targeted else 1.0

    def evaluate(logits: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(1)
        adv = (pred == y) if targeted else (pred != y)
        norm = flat_norm(delta)
        better = adv & (norm < best_norm)
        torch.where(better, norm, best_norm, out=best_norm)
        torch.where(batch_view(better, x), x + delta, best_adv, out=best_adv)
        return adv

    bar = progress_bar(steps, desc, progress)
    try:
        for k in range(steps):
            with torch.enable_grad():
                d = delta.detach().requires_grad_(True)
                logits = model(x + d)
                if k == 0:
                    check_classes(y, logits)
                # both methods *descend* their objective:
                # FMN the margin (positive while not adversarial), DDN minus the CE
                m = sign * margin(logits, y)
                objective = torch.zeros((), dtype=x.dtype, device=x.device)
                if any_fmn:
                    objective = objective + m[fmn].sum()
                if any_ddn:
                    ce = F.cross_entropy(logits[ddn], y[ddn], reduction="none")
                    objective = objective - sign * ce.sum()
                (grad,) = torch.autograd.grad(objective, d)
            logits = logits.detach()
            m = m.detach()
            adv = evaluate(logits)
            found |= adv
            alpha = _cosine(alpha0, alpha_final, k, steps)
            gamma = _cosine(gamma0, gamma_final, k, steps)
            if any_fmn and _MASK_BOX:
                # FMN: drop components that would push pixels already at 0 or 1 out of
                # the box: the clip would undo them, and they distort both the step and
                # the linear distance estimate
                xa = x + delta
                out = ((xa <= 0) & (grad > 0)) | ((xa >= 1) & (grad < 0))
                grad = grad.masked_fill(out & batch_view(fmn, x), 0.0)
            gnorm = flat_norm(grad).clamp_min(1e-12)
            norm = flat_norm(delta)
            # FMN: before the first success, the linear estimate of the distance to the
            # boundary, enlarged by 1 + gamma so that it gets crossed; then shrink while
            # adversarial (never above the best norm), grow otherwise; gamma annealed
            estimate = (norm + m.clamp_min(0) / gnorm) * (1 + gamma)
            eps_fmn = torch.where(adv, torch.minimum(eps * (1 - gamma), best_norm),
                                  torch.where(found, eps * (1 + gamma), estimate))
            # DDN: a fixed factor gamma0
            eps_ddn = torch.where(adv, eps * (1 - gamma0), eps * (1 + gamma0))
            eps = torch.minimum(torch.where(fmn, eps_fmn, eps_ddn), worst)
            delta = delta - batch_view(alpha / gnorm, grad) * grad
            # FMN projects onto the ball, DDN onto the sphere of radius eps
            scale = eps / flat_norm(delta).clamp_min(1e-12)
            scale = torch.where(fmn, scale.clamp(max=1.0), scale)
            delta = (x + batch_view(scale, delta) * delta).clamp(0.0, 1.0) - x
            bar.update(1)
        with torch.no_grad():
            logits = model(x + delta)
            if steps == 0:
                check_classes(y, logits)
        evaluate(logits)
    finally:
        bar.close()
    return best_adv, best_norm
