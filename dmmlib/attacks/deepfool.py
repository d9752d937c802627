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
    grads: str = "auto",
    progress: bool | None = None,
) -> AttackResult:
    """DeepFool: step to the nearest boundary of the linearised classifier, repeat.

    Moosavi-Dezfooli, Fawzi & Frossard (2016), "DeepFool: a simple and
    accurate method to fool deep neural networks" (CVPR). The distance is L2.
    At each step every class ``k`` defines a hyperplane of the linearised
    classifier, ``f_k - f_y + (grad f_k - grad f_y) . r = 0``; the step ``r``
    goes to the closest one, plus 1e-4 in L2 distance, and the iterate moves by
    ``(1 + overshoot) * r`` and is clipped to [0, 1] (the next step starts
    from the clipped point, as in adv-lib's implementation; the original
    accumulated an unclipped total and clipped a copy, so pixels pushed out
    of the box kept drifting and a step did less than planned). For an affine
    classifier inside the box one step lands ``1 + overshoot`` times as far as
    the nearest boundary. Only samples that are not yet adversarial are
    processed.

    The C = K - 1 class gradients of a step come either from one
    ``torch.autograd.grad`` call per class on the shared graph (``grads=
    "loop"``, each call batched over all active samples) or from one batched
    vector-Jacobian product (``"batched"``, ``is_grads_batched=True``). Which
    is faster depends on the model: on this project's 2-core CPU the batched
    product wins on fully connected networks and the loop on convolutional
    ones (``benchmarks/bench_deepfool.py``). ``"auto"`` picks by that rule
    on a CPU, and takes the batched product on other devices, where the
    choice has not been measured here.

    As a final, optional refinement (``refine_steps > 0``) a bisection along
    the segment from ``x`` to the adversarial iterate keeps the smallest ``t``
    that is still adversarial: it removes most of the overshoot (a few forward
    passes, no gradients). Its bracket is ``[1 - w, 1]`` with ``w`` three
    times the share of the whole perturbation by which the *last* step went
    past its linearised boundary (``3 * overshoot / (1 + overshoot)`` after a
    single step); samples whose bracket is already finer than ``refine_steps``
    halvings of ``[1 - 3 * overshoot, 1]`` would give are left as they are.
    ``refine_steps=0`` gives the plain algorithm.

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
    grads : {"auto", "loop", "batched"}, default "auto"
        How the class gradients are taken (see above); the result is the same
        to float precision.
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
    V.check_choice(grads, "grads", ("auto", "loop", "batched"))
    xw, yw = prepare(model, x, y)
    batched = grads == "batched" or (grads == "auto" and (
        xw.device.type != "cpu" or not _has_convolutions(model)))
    with eval_mode(model):
        x_adv, success = _deepfool(model, xw, yw, steps, overshoot, candidates, refine_steps,
                                   progress, batched)
    return make_result(x_adv, x, success, "2")


def _logits_and_normals(model: nn.Module, xa: torch.Tensor, ya: torch.Tensor,
                        others: torch.Tensor | None, check: bool = False,
                        batched: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (n, K), ``f_k - f_y`` (C, n) and ``grad (f_k - f_y)`` (C, n, ...).

    For the other classes ``k`` considered (``others``: (n, C), by default
    every class but ``y``); the C gradients from one backward pass per class
    on the shared graph, or (``batched``) from one batched vector-Jacobian
    product. Both rely on sample i's logits depending on input i only (true
    in eval mode).
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
        if batched:
            cot = torch.zeros(cls.shape[0], n, n_classes, dtype=logits.dtype, device=xa.device)
            cot[torch.arange(cls.shape[0], device=xa.device)[:, None], rows[None, :], cls] = 1.0
            cot[:, rows, ya] = -1.0  # cotangents e_k - e_y
            (normals,) = torch.autograd.grad(logits, xg, grad_outputs=cot,
                                             is_grads_batched=True)
        else:  # a loop over the C classes, each backward pass batched over the samples
            f_y = logits[rows, ya]
            normals = torch.empty((cls.shape[0], *xa.shape), dtype=xa.dtype, device=xa.device)
            for c in range(cls.shape[0]):
                (normals[c],) = torch.autograd.grad((logits[rows, cls[c]] - f_y).sum(), xg,
                                                    retain_graph=c < cls.shape[0] - 1)
    logits = logits.detach()
    diff = logits.gather(1, others).T - logits.gather(1, ya[:, None]).T  # (C, n)
    return logits, diff, normals


def _has_convolutions(model: nn.Module) -> bool:
    """Whether ``model`` holds a convolution (the loop over classes wins there, on a CPU)."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def _all_others(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n, K-1): every class except y, per sample."""
    k = torch.arange(n_classes - 1, device=y.device)
    return k[None, :] + (k[None, :] >= y[:, None]).long()


def _deepfool(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, overshoot: float,
              candidates: int | None, refine_steps: int, progress: bool | None,
              batched: bool) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    x_cur = x.clone()  # the iterate, kept in the box
    last_move = torch.zeros(n, dtype=x.dtype, device=x.device)  # length of each one's last step
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    active = torch.arange(n, device=x.device)
    classes: torch.Tensor | None = None
    bar = progress_bar(steps, "deepfool", progress)
    try:
        for step in range(steps + 1):
            if active.numel() == 0:
                break
            xa = x_cur[active]
            ya = y[active]
            if step == steps:  # the last update is only evaluated
                with torch.no_grad():
                    logits = model(xa)
                if step == 0:
                    check_classes(ya, logits)
                success[active] = logits.argmax(1) != ya
                break
            ca = classes[active] if classes is not None else None
            logits, diff, normals = _logits_and_normals(model, xa, ya, ca, check=step == 0,
                                                        batched=batched)
            if step == 0 and candidates is not None and candidates < logits.shape[1]:
                # the candidates - 1 highest-scoring classes other than y, fixed at x
                classes = logits.scatter(1, y[:, None], float("-inf")).topk(
                    candidates - 1, dim=1).indices
                logits, diff, normals = _logits_and_normals(model, xa, ya, classes,
                                                            batched=batched)
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
            r = batch_view((f / wn + 1e-4) / wn, w) * w
            moved = (x_cur[ids] + (1 + overshoot) * r).clamp(0.0, 1.0)
            last_move[ids] = (moved - x_cur[ids]).flatten(1).norm(dim=1)
            x_cur[ids] = moved
            active = ids
            bar.update(1)
    finally:
        bar.close()
    x_adv = torch.where(batch_view(success, x), x_cur, x)
    if refine_steps and bool(success.any()):
        # the last step went past its linearised boundary by about overshoot / (1 + overshoot)
        # of its length (+ the 1e-4 push): bracket three times that, as a share of the whole
        # perturbation; where the bracket is already finer than a fixed [1 - 3 * overshoot, 1]
        # bracket would end after refine_steps halvings, there is nothing to refine
        total = (x_adv - x).flatten(1).norm(dim=1)
        past = overshoot / (1 + overshoot) * last_move + 1e-4
        width = (3 * past / total.clamp_min(1e-12)).clamp(max=1.0)
        todo = success & (total > 0) & (width > 3 * overshoot / 2 ** refine_steps)
        if bool(todo.any()):
            x_adv = _bisect(model, x, y, x_adv, todo, refine_steps, lower=1.0 - width)
    return x_adv, success


@torch.no_grad()
def _bisect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
            todo: torch.Tensor, steps: int, lower: torch.Tensor) -> torch.Tensor:
    """Smallest t in [lower, 1] with ``x + t (x_adv - x)`` adversarial, by bisection.

    For the samples in ``todo`` (N,), each with its own ``lower`` (N,);
    ``t = 1`` is adversarial and the returned point always is.
    """
    idx = todo.nonzero().squeeze(1)
    xs, ds, ys = x[idx], x_adv[idx] - x[idx], y[idx]
    lo = lower[idx].to(x.dtype).clamp(0.0, 1.0)
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

