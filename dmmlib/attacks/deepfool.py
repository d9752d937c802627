"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, 2016): minimal L2 by linearisation."""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate as V
from ._common import (
    batch_view,
    check_classes,
    eval_mode,
    make_result,
    prepare,
    progress_bar,
)
from .result import AttackResult

__all__ = ["deepfool"]


def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 50,
    overshoot: float = 0.02,
    candidates: int | None = None,
    refine_steps: int = 6,
    progress: bool | None = None,
) -> AttackResult:
    """DeepFool: step to the nearest boundary of the linearised classifier, repeat.

    Moosavi-Dezfooli, Fawzi & Frossard (2016), "DeepFool: a simple and
    accurate method to fool deep neural networks" (CVPR). The distance is L2.
    At each step every class ``k`` defines a hyperplane of the linearised
    classifier, ``f_k - f_y + (grad f_k - grad f_y) . r = 0``; the step ``r``
    goes to the closest one (plus 1e-4 in logit units). The accumulated
    perturbation is applied with a factor ``1 + overshoot`` and clipped to
    [0, 1]. For an affine classifier one step lands exactly on the nearest
    boundary. All classes' gradients come from *one* batched vector-Jacobian
    product per step (``torch.autograd.grad(..., is_grads_batched=True)``),
    and only samples that are not yet adversarial are processed.

    As a final, optional refinement (``refine_steps > 0``) a bisection along
    the segment ``x + t * r_total``, ``t`` in ``[1 - 3 * overshoot, 1]``, keeps
    the smallest ``t`` that is still adversarial: it removes most of the overshoot (a few
    forward passes, no gradients). ``refine_steps=0`` gives the original
    algorithm.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1]; runs in eval mode
        (the caller's modes are restored), on its own device.
    x : torch.Tensor
        Images (N, ...) of floats in [0, 1].
    y : torch.Tensor
        True labels (N,), integers.
    steps : int, default 50
        Maximum number of linearisation steps.
    overshoot : float, default 0.02
        Relative overshoot that pushes the iterate across the boundary.
    candidates : int, optional
        Only consider ``y`` and the ``candidates - 1`` other classes with the
        highest logits at ``x`` (as in the paper's ImageNet experiments);
        ``None`` (default) uses all classes.
    refine_steps : int, default 6
        Bisection steps of the final refinement (0 disables it), on
        ``t`` in ``[max(0, 1 - 3 * overshoot), 1]``.
    progress : bool, optional
        tqdm bar over steps; ``None`` follows ``$DMM_PROGRESS`` (default on).

    Returns
    -------
    AttackResult
        ``x_adv`` like ``x`` (shape, dtype, device) in [0, 1]; samples DeepFool
        could not fool within ``steps`` are returned as ``x`` (success False,
        norm ``inf``). Samples already misclassified are returned unchanged
        (success True, norm 0). ``norm``: L2. ``blocked``: all False.

    Examples
    --------
    >>> res = deepfool(model, x, y)                                      # doctest: +SKIP
    >>> print(f"median L2 to the boundary: {res.norm.median():.3f}")  # doctest: +SKIP
    """
    V.check_int(steps, "steps")
    V.check_int(refine_steps, "refine_steps")
    overshoot = V.check_nonnegative(overshoot, "overshoot")
    if candidates is not None:
        V.check_int(candidates, "candidates", minimum=2)
    xw, yw = prepare(model, x, y)
    with eval_mode(model):
        x_adv, success = _deepfool(model, xw, yw, steps, overshoot, candidates, refine_steps,
                                   progress)
    return make_result(x_adv, x, success, "2")


def _logits_and_normals(model: nn.Module, xa: torch.Tensor, ya: torch.Tensor,
                        others: torch.Tensor | None, check: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (n, K), ``f_k - f_y`` (C, n) and ``grad (f_k - f_y)`` (C, n, ...).

    For the other classes ``k`` considered (``others``: (n, C), by default
    every class but ``y``); all C gradients from one batched vector-Jacobian
    product.
    """
    with torch.enable_grad():
        xg = xa.detach().requires_grad_(True)
        logits = model(xg)
        if check:
            check_classes(ya, logits)
        n, n_classes = logits.shape
        if others is None:
            others = _all_others(ya, n_classes)
        cls = others.T  # (C, n)
        rows = torch.arange(n, device=xa.device)
        cot = torch.zeros(cls.shape[0], n, n_classes, dtype=logits.dtype, device=xa.device)
        cot[torch.arange(cls.shape[0], device=xa.device)[:, None], rows[None, :], cls] = 1.0
        cot[:, rows, ya] = -1.0  # cotangents e_k - e_y
        (normals,) = torch.autograd.grad(logits, xg, grad_outputs=cot, is_grads_batched=True)
    logits = logits.detach()
    diff = logits.gather(1, others).T - logits.gather(1, ya[:, None]).T  # (C, n)
    return logits, diff, normals


def _all_others(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n, K-1): every class except y, per sample."""
    k = torch.arange(n_classes - 1, device=y.device)
    return k[None, :] + (k[None, :] >= y[:, None]).long()


def _deepfool(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, overshoot: float,
              candidates: int | None, refine_steps: int, progress: bool | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    r_total = torch.zeros_like(x)
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    active = torch.arange(n, device=x.device)
    classes: torch.Tensor | None = None
    bar = progress_bar(steps, "deepfool", progress)
    try:
        for step in range(steps + 1):
            if active.numel() == 0:
                break
            xa = (x[active] + (1 + overshoot) * r_total[active]).clamp(0.0, 1.0)
            ya = y[active]
            if step == steps:  # the last update is only evaluated
                with torch.no_grad():
                    logits = model(xa)
                if step == 0:
                    check_classes(ya, logits)
                success[active] = logits.argmax(1) != ya
                break
            ca = classes[active] if classes is not None else None
            logits, diff, normals = _logits_and_normals(model, xa, ya, ca, check=step == 0)
            if step == 0 and candidates is not None and candidates < logits.shape[1]:
                # the candidates - 1 highest-scoring classes other than y, fixed at x
                classes = logits.scatter(1, y[:, None], float("-inf")).topk(
                    candidates - 1, dim=1).indices
                logits, diff, normals = _logits_and_normals(model, xa, ya, classes)
            fooled = logits.argmax(1) != ya
            success[active[fooled]] = True
            keep = ~fooled
            if not bool(keep.any()):
                active = active[keep]
                bar.update(1)
                break
            diff, normals = diff[:, keep], normals[:, keep]
            ids = active[keep]
            wnorm = normals.flatten(2).norm(dim=2)  # (C, n)
            dist = diff.abs() / wnorm.clamp_min(1e-12)
            best = dist.argmin(0)  # (n,) the nearest linearised boundary
            cols = torch.arange(best.shape[0], device=x.device)
            w = normals[best, cols]
            f = diff[best, cols].abs()
            wn = wnorm[best, cols].clamp_min(1e-12)
            r = batch_view((f + 1e-4) / wn**2, w) * w
            r_total[ids] = r_total[ids] + r
            active = ids
            bar.update(1)
    finally:
        bar.close()
    x_adv = torch.where(batch_view(success, x), (x + (1 + overshoot) * r_total).clamp(0.0, 1.0), x)
    if refine_steps and bool(success.any()):
        x_adv = _bisect(model, x, y, x_adv, success, refine_steps,
                        lower=max(0.0, 1.0 - 3.0 * overshoot))
    return x_adv, success


@torch.no_grad()
def _bisect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
            success: torch.Tensor, steps: int, lower: float = 0.0) -> torch.Tensor:
    """Smallest t in [lower, 1] with ``x + t (x_adv - x)`` adversarial, by bisection.

    ``t = 1`` is adversarial; the returned point always is.
    """
    idx = success.nonzero().squeeze(1)
    xs, ds, ys = x[idx], x_adv[idx] - x[idx], y[idx]
    if lower >= 1.0:
        return x_adv
    lo = torch.full((idx.shape[0],), lower, dtype=x.dtype, device=x.device)
    hi = torch.ones_like(lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        pred = model(xs + batch_view(mid, xs) * ds).argmax(1)
        adv = pred != ys
        hi = torch.where(adv, mid, hi)
        lo = torch.where(adv, lo, mid)
    out = x_adv.clone()
    out[idx] = xs + batch_view(hi, xs) * ds
    return out

