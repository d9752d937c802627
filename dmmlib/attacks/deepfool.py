"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, 2016): minimal L2 by linearisation."""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate as V
from ._common import (
    batch_view,
    check_classes,
    eval_mode,
    finish,
    prepare,
    progress_bar,
)

__all__ = ["deepfool"]

Result = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 50,
    overshoot: float = 0.02,
    candidates: int | None = None,
    refine_steps: int = 10,
    return_success: bool = False,
    progress: bool | None = None,
) -> Result:
    """DeepFool: step to the nearest boundary of the linearised classifier, repeat.

    Introduced in the chapter "The old mental model".

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
    the segment ``x + t * r_total``, ``t`` in [0, 1], keeps the smallest ``t``
    that is still adversarial: it removes most of the overshoot (a few
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
        Only consider the ``candidates`` classes with the highest logits at
        ``x`` (including ``y``); ``None`` (default) uses all classes.
    refine_steps : int, default 10
        Bisection steps of the final refinement (0 disables it).
    return_success : bool, default False
        Also return the boolean mask (N,) of misclassified outputs.
    progress : bool, optional
        tqdm bar over steps; ``None`` follows ``$DMM_PROGRESS`` (default on).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        ``x_adv`` like ``x`` (shape, dtype, device) in [0, 1]; samples DeepFool
        could not fool within ``steps`` are returned as ``x`` (success False).
        Samples already misclassified are returned unchanged (success True).

    Examples
    --------
    >>> x_adv, ok = deepfool(model, x, y, return_success=True)   # doctest: +SKIP
    >>> dist = (x_adv - x).flatten(1).norm(dim=1)[ok]           # doctest: +SKIP
    >>> print(f"median L2 to the boundary: {dist.median():.3f}")  # doctest: +SKIP
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
    out = finish(x_adv, x)
    return (out, success.to(x.device)) if return_success else out


def _logits_and_normals(model: nn.Module, xa: torch.Tensor, ya: torch.Tensor,
                        classes: torch.Tensor | None, check: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (n, K), and for the classes ``cls`` (C, n) considered:
    ``f_k - f_y`` (C, n) and ``grad (f_k - f_y)`` (C, n, ...), from one batched VJP."""
    with torch.enable_grad():
        xg = xa.detach().requires_grad_(True)
        logits = model(xg)
        if check:
            check_classes(ya, logits)
        n, n_classes = logits.shape
        if classes is None:
            cls = torch.arange(n_classes, device=xa.device)[:, None].expand(n_classes, n)
        else:
            cls = classes.T  # (C, n)
        rows = torch.arange(n, device=xa.device)
        cot = torch.zeros(cls.shape[0], n, n_classes, dtype=logits.dtype, device=xa.device)
        cot[torch.arange(cls.shape[0], device=xa.device)[:, None], rows[None, :], cls] = 1.0
        cot[:, rows, ya] -= 1.0  # cotangent e_k - e_y: the row for k = y is zero
        (normals,) = torch.autograd.grad(logits, xg, grad_outputs=cot, is_grads_batched=True)
    logits = logits.detach()
    diff = logits.gather(1, cls.T).T - logits.gather(1, ya[:, None]).T  # (C, n)
    return logits, diff, normals


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
            if step == 0:
                if candidates is not None and candidates < logits.shape[1]:
                    top = logits.topk(candidates, dim=1).indices
                    # make sure y is among the candidates
                    has_y = (top == y[:, None]).any(1)
                    top[:, -1] = torch.where(has_y, top[:, -1], y)
                    classes = top
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
            dist = torch.where(wnorm > 0, dist, torch.full_like(dist, float("inf")))
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
        x_adv = _bisect(model, x, y, x_adv, success, refine_steps)
    return x_adv, success


@torch.no_grad()
def _bisect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
            success: torch.Tensor, steps: int, targeted: bool = False) -> torch.Tensor:
    """Smallest t in [0, 1] with ``x + t (x_adv - x)`` adversarial, by bisection."""
    idx = success.nonzero().squeeze(1)
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

