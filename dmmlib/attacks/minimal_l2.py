"""Minimal-norm L2 attacks: FMN (Pintor et al., 2021), DDN (Rony et al., 2019), or both.

Optionally inside a subspace (or its complement), with or without the box [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as V
from ._common import (
    Subspace,
    batch_view,
    check_classes,
    dykstra,
    eval_mode,
    feasible_step,
    flat_norm,
    make_result,
    margin,
    prepare,
    progress_bar,
    warn_blocked,
)
from .result import AttackResult

__all__ = ["minimal_l2"]

#: FMN: ignore gradient components that point out of the box at saturated pixels.
_MASK_BOX = True
#: Dykstra iterations per step when a subspace meets the box (as in pgd).
_BOX_ITERS = 50
#: Box violation (pixel units) tolerated inside the loop; removed by the final clip.
_BOX_TOL = 1e-7


def minimal_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 100,
    method: str = "auto",
    targeted: bool = False,
    basis: torch.Tensor | None = None,
    complement: bool = False,
    box: bool = True,
    step_size: float = 1.0,
    final_step_size: float | None = None,
    gamma: float = 0.05,
    final_gamma: float = 0.001,
    init_eps: float = 1.0,
    refine: int = 0,
    progress: bool | None = None,
) -> AttackResult:
    """The smallest L2 perturbation that changes the decision, by an adaptive norm budget.

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

    **Restricted search.** With ``basis=U`` (an orthonormal basis per sample,
    e.g. a tangent space of :func:`dmmlib.manifold.tangent_basis_at`) every
    gradient is projected onto ``span(U)`` ("on-manifold") or, with
    ``complement=True``, onto its orthogonal complement ("off-manifold"), so
    the perturbation stays in that subspace: the smallest L2 perturbation
    *inside the subspace* that changes the decision.

    **The box.** ``box=True`` (default) keeps ``x_adv`` in [0, 1]: without a
    basis by clipping, with one by Dykstra's alternating projections
    followed by the longest feasible move from the previous iterate (as in
    :func:`dmmlib.attacks.pgd`), so the perturbation stays in the subspace.
    Pixels at 0 or 1 can leave a subspace no feasible direction at all; such
    samples come back unchanged with ``blocked`` True (and a UserWarning when
    they are more than half). ``box=False`` drops the constraint:
    ``x_adv`` may then leave [0, 1] (it is not clipped, not even at the end),
    and the distance measures the decision boundary around ``x`` rather than
    the box; the book uses it for its on/off-manifold comparisons, in the
    same way for the unrestricted and both restricted searches.

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
    basis : torch.Tensor, optional
        Orthonormal bases (N, D, k), ``D = x[0].numel()``: restrict the
        perturbation to ``span(basis)`` (or its complement).
    complement : bool, default False
        Restrict to the orthogonal complement of ``span(basis)`` (needs a basis).
    box : bool, default True
        Keep ``x_adv`` in [0, 1]; ``False``: no clipping at all.
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
    refine : int, default 0
        Bisection halvings along the best perturbation at the end (the
        smallest ``t`` in [0, 1] with ``x + t * delta`` still adversarial;
        ``refine`` forward passes, no gradients). 0: none.
    progress : bool, optional
        tqdm bar over steps; ``None`` follows ``$DMM_PROGRESS`` (default on).

    Returns
    -------
    AttackResult
        ``x_adv``: per sample the smallest adversarial example found, like
        ``x`` (shape, dtype, device), in [0, 1] unless ``box=False``; samples
        without one are returned as ``x`` (success False, norm ``inf``).
        Already misclassified samples come back unchanged (norm 0).
        ``norm``: the L2 distance. ``blocked``: see "The box" above.

    Examples
    --------
    >>> res = minimal_l2(model, x, y, steps=100)                              # doctest: +SKIP
    >>> print(f"median L2 distance to the boundary: {res.norm.median():.3f}")  # doctest: +SKIP
    >>> on = minimal_l2(model, x, y, basis=U, box=False)     # inside span(U)  # doctest: +SKIP
    >>> off = minimal_l2(model, x, y, basis=U, complement=True, box=False)    # doctest: +SKIP
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
    V.check_int(refine, "refine")
    if not isinstance(box, bool):
        raise TypeError(f"box: expected a bool, got {type(box).__name__}")
    xw, yw = prepare(model, x, y)
    sub = Subspace.build(basis, x, xw, complement)
    with eval_mode(model):
        x_adv, success, blocked = _minimal_l2(model, xw, yw, steps, method, targeted, step_size,
                                              final, gamma, final_gamma, init_eps, progress,
                                              sub, box, refine)
    if sub is not None and box:
        warn_blocked(blocked, "minimal_l2", "; box=False measures the subspace without the box")
    return make_result(x_adv, x, success, "2", blocked, box=box)


def _cosine(start: float, end: float, k: int, steps: int) -> float:
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * k / max(steps, 1)))


def _minimal_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, method: str,
                targeted: bool, alpha0: float, alpha_final: float, gamma0: float,
                gamma_final: float, init_eps: float, progress: bool | None,
                sub: Subspace | None = None, box: bool = True, refine: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best adversarial per sample, success and blocked."""
    n = x.shape[0]
    if method == "auto":
        # FMN and DDN side by side on two copies of the batch, half the steps each
        # (equal gradient budget), then the smaller adversarial per sample
        xx, yy = torch.cat([x, x]), torch.cat([y, y])
        fmn = torch.arange(2 * n, device=x.device) < n
        adv, norm, blocked = _run(model, xx, yy, steps // 2 + steps % 2, fmn, targeted, alpha0,
                                  alpha_final, gamma0, gamma_final, init_eps, progress,
                                  "minimal_l2", sub.repeat(2) if sub is not None else None,
                                  box)
        use_second = norm[n:] < norm[:n]
        best = torch.where(batch_view(use_second, x), adv[n:], adv[:n])
        best_norm = torch.where(use_second, norm[n:], norm[:n])
        blocked = blocked[:n] & blocked[n:]
    else:
        fmn = torch.full((n,), method == "fmn", dtype=torch.bool, device=x.device)
        best, best_norm, blocked = _run(model, x, y, steps, fmn, targeted, alpha0, alpha_final,
                                        gamma0, gamma_final, init_eps, progress, method, sub,
                                        box)
    found = torch.isfinite(best_norm)
    if refine and bool(found.any()):
        best = _bisect(model, x, y, best, found, targeted, refine)
    return best, found, blocked


@torch.no_grad()
def _bisect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
            found: torch.Tensor, targeted: bool, steps: int) -> torch.Tensor:
    """Smallest t in [0, 1] with ``x + t (x_adv - x)`` adversarial, by bisection.

    ``t = 1`` is adversarial; the returned point always is.
    """
    idx = found.nonzero().squeeze(1)
    xs, ds, ys = x[idx], x_adv[idx] - x[idx], y[idx]
    lo = torch.zeros(idx.shape[0], dtype=x.dtype, device=x.device)
    hi = torch.ones_like(lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        pred = model(xs + batch_view(mid, xs) * ds).argmax(1)
        adv = (pred == ys) if targeted else (pred != ys)
        hi = torch.where(adv, mid, hi)
        lo = torch.where(adv, lo, mid)
    out = x_adv.clone()
    out[idx] = xs + batch_view(hi, xs) * ds
    return out


def _run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, fmn: torch.Tensor,
         targeted: bool, alpha0: float, alpha_final: float, gamma0: float, gamma_final: float,
         init_eps: float, progress: bool | None, desc: str, sub: Subspace | None = None,
         box: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FMN on the samples where ``fmn`` is True, DDN on the others, in one batch.

    With ``sub`` the gradients are projected onto the subspace (the iterates
    stay in it); ``box=False`` never clips. Returns the best adversarial per
    sample, its norm (``inf`` if none) and whether the box blocked every move.
    """
    n = x.shape[0]
    ddn = ~fmn
    any_fmn, any_ddn = bool(fmn.any()), bool(ddn.any())
    delta = torch.zeros_like(x)
    best_norm = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    best_adv = x.clone()
    eps = torch.where(ddn, init_eps, 0.0).to(x.dtype)
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    # the largest possible L2 distance inside the box, an upper bound for eps
    if box:
        worst = flat_norm(torch.maximum(x, 1 - x))
    else:
        worst = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    sign = -1.0 if targeted else 1.0
    peak = torch.zeros(n, dtype=x.dtype, device=x.device)
    if sub is not None and box:
        lo, hi = -x, 1 - x

        def constrain(prev: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
            target = dykstra(cand, sub.project, lo, hi, _BOX_ITERS, _BOX_TOL)
            return feasible_step(prev, target, lo, hi, _BOX_TOL)

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
            if sub is not None:
                grad = sub.project(grad)
            adv = evaluate(logits)
            found |= adv
            alpha = _cosine(alpha0, alpha_final, k, steps)
            gamma = _cosine(gamma0, gamma_final, k, steps)
            if any_fmn and _MASK_BOX and box and sub is None:
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
            prev = delta
            delta = delta - batch_view(alpha / gnorm, grad) * grad
            # FMN projects onto the ball, DDN onto the sphere of radius eps
            scale = eps / flat_norm(delta).clamp_min(1e-12)
            scale = torch.where(fmn, scale.clamp(max=1.0), scale)
            delta = batch_view(scale, delta) * delta
            if box and sub is None:
                delta = (x + delta).clamp(0.0, 1.0) - x
            elif box:
                delta = constrain(prev, delta)
            torch.maximum(peak, flat_norm(delta), out=peak)
            bar.update(1)
        with torch.no_grad():
            logits = model(x + delta)
            if steps == 0:
                check_classes(y, logits)
        evaluate(logits)
    finally:
        bar.close()
    # blocked: a subspace inside the box, and no iterate ever moved by more than
    # a thousandth of the final step length
    if sub is not None and box and steps > 0:
        blocked = (peak <= 1e-3 * alpha_final) & (best_norm != 0)  # 0: adversarial at x
    else:
        blocked = torch.zeros(n, dtype=torch.bool, device=x.device)
    return best_adv, best_norm, blocked
