"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._common import eval_mode, finish, loss_and_grad, parse_eps, prepare

__all__ = ["fgsm"]

Result = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    *,
    targeted: bool = False,
    return_success: bool = False,
) -> Result | list[Result]:
    """One signed-gradient step of size ``eps`` in the L-infinity norm.

    Introduced in the chapter "Adversarial examples in five minutes".

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
    return_success : bool, default False
        Also return a boolean mask (N,): the prediction on the adversarial
        example differs from ``y`` (untargeted) or equals ``y`` (targeted).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        ``x_adv`` with ``x``'s shape, dtype and device, in [0, 1], and
        ``|x_adv - x|_inf <= eps``; with ``return_success`` the pair
        ``(x_adv, success)``. For a list of ``eps``, a list of these.

    Examples
    --------
    >>> x_adv = fgsm(model, x, y, eps=0.1)                       # doctest: +SKIP
    >>> x_adv, ok = fgsm(model, x, y, 0.1, return_success=True)  # doctest: +SKIP
    >>> print(f"success rate {ok.float().mean():.0%}")           # doctest: +SKIP
    """
    eps_values, many = parse_eps(eps)
    xw, yw = prepare(model, x, y)
    results: list[Result] = []
    with eval_mode(model):
        _, _, grad = loss_and_grad(model, xw, yw, targeted, check=True)
        direction = grad.sign()
        for e in eps_values:
            x_adv = (xw + e * direction).clamp_(0.0, 1.0)
            if return_success:
                with torch.no_grad():
                    pred = model(x_adv).argmax(1)
                success = (pred == yw) if targeted else (pred != yw)
                results.append((finish(x_adv, x), success.to(x.device)))
            else:
                results.append(finish(x_adv, x))
    return results if many else results[0]
