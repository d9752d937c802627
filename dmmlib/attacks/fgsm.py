"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import torch
from torch import nn

from ._common import (
    AttackResult,
    eval_mode,
    loss_and_grad,
    make_result,
    parse_eps,
    prepare,
    progress_bar,
)

__all__ = ["fgsm"]


@overload
def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         targeted: bool = ..., progress: bool | None = ...) -> AttackResult: ...
@overload
def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: Sequence[float], *,
         targeted: bool = ..., progress: bool | None = ...) -> list[AttackResult]: ...
def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    *,
    targeted: bool = False,
    progress: bool | None = None,
) -> AttackResult | list[AttackResult]:
    """One signed-gradient step of size ``eps`` in the L-infinity norm.

    Goodfellow, Shlens & Szegedy (2015), "Explaining and harnessing adversarial
    examples" (ICLR). The adversarial example is
    ``clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)``; in targeted mode
    ``clip(x - eps * sign(grad_x CE(f(x), target)), 0, 1)``. The distance is
    L-infinity: every pixel moves by at most ``eps``.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits; inputs are pixels in [0, 1]. It runs in
        eval mode during the attack (the caller's modes are restored); the
        attack runs on the model's device.
    x : torch.Tensor
        Images of shape (N, ...) (e.g. (N, C, H, W)), floating, values in [0, 1].
    y : torch.Tensor
        Integer labels of shape (N,): the true classes or, when ``targeted``,
        the target classes.
    eps : float or sequence of floats
        L-infinity budget (pixel units, e.g. ``8/255``). A list gives one
        result per budget from a single gradient computation.
    targeted : bool, default False
        Move towards the class ``y`` instead of away from it.
    progress : bool, optional
        tqdm bar over the budgets; ``None`` follows ``$DMM_PROGRESS`` (default on).

    Returns
    -------
    AttackResult or list of AttackResult
        ``x_adv`` with ``x``'s shape, dtype and device, in [0, 1], and
        ``|x_adv - x|_inf <= eps``; ``success`` (N,) the prediction differs
        from ``y`` (untargeted) or equals it (targeted); ``norm`` (N,) the
        L-infinity norm of the perturbation (``inf`` where not a success);
        ``blocked`` all False. For a list of ``eps``, one result per budget.

    Examples
    --------
    >>> x_adv = fgsm(model, x, y, eps=0.1).x_adv                 # doctest: +SKIP
    >>> res = fgsm(model, x, y, 0.1)                             # doctest: +SKIP
    >>> print(f"success rate {res.success.float().mean():.0%}")  # doctest: +SKIP
    """
    eps_values, many = parse_eps(eps)
    xw, yw = prepare(model, x, y)
    results: list[AttackResult] = []
    bar = progress_bar(len(eps_values), "fgsm", progress)
    try:
        with eval_mode(model):
            _, _, grad = loss_and_grad(model, xw, yw, targeted, check=True)
            direction = grad.sign()
            for e in eps_values:
                x_adv = (xw + e * direction).clamp_(0.0, 1.0)
                with torch.no_grad():
                    pred = model(x_adv).argmax(1)
                success = (pred == yw) if targeted else (pred != yw)
                results.append(make_result(x_adv, x, success, "inf"))
                bar.update(1)
    finally:
        bar.close()
    return results if many else results[0]
