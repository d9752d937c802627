"""Carlini & Wagner's L2 attack (2017), batched, with a per-sample binary search over c."""

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

__all__ = ["carlini_wagner_l2"]

_UPPER = 1e10  # "no upper bound yet" for the binary search over c


def carlini_wagner_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    c: float = 0.1,
    binary_search_steps: int = 9,
    steps: int = 100,
    lr: float = 0.01,
    kappa: float = 0.0,
    targeted: bool = False,
    progress: bool | None = None,
) -> AttackResult:
    """Carlini-Wagner L2: minimise ``||x' - x||_2^2 + c * f(x')`` in tanh space.

    Carlini & Wagner (2017), "Towards evaluating the robustness of neural
    networks" (IEEE S&P). The box is removed by the change of variables
    ``x' = (tanh(w) + 1) / 2``; ``f(x') = max(z_y - max_{j != y} z_j, -kappa)``
    (``max(max_{j != t} z_j - z_t, -kappa)`` when targeted) is minimised
    together with the squared L2 distance by Adam (``lr``, ``steps`` per
    constant). The constant ``c`` is tuned per sample by a binary search:
    after a round in which a sample was fooled, ``c`` moves halfway towards
    the last failing value (or down); otherwise it is multiplied by 10 until a
    success gives an upper bound. The smallest adversarial example found over
    all rounds is returned. The whole batch is optimised at once (one Adam
    state per pixel, one ``c`` per sample); unlike the reference code there is
    no early abort, so the cost is exactly ``binary_search_steps * steps``
    gradients.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1]; runs in eval mode
        (the caller's modes are restored), on its own device.
    x : torch.Tensor
        Images (N, ...) of floats in [0, 1].
    y : torch.Tensor
        Integer labels (N,): true classes, or target classes when ``targeted``.
    c : float, default 0.1
        Initial trade-off constant (for every sample).
    binary_search_steps : int, default 9
        Rounds of the search over ``c``.
    steps : int, default 100
        Adam steps per round.
    lr : float, default 0.01
        Adam learning rate (in tanh space).
    kappa : float, default 0.0
        Confidence: the required logit margin of a success.
    targeted : bool, default False
        Reach the class ``y`` instead of leaving it.
    progress : bool, optional
        tqdm bar over all steps; ``None`` follows ``$DMM_PROGRESS``.

    Returns
    -------
    AttackResult
        ``x_adv``: the smallest adversarial example found per sample (L2
        distance), like ``x`` (shape, dtype, device) in [0, 1]; ``x`` itself
        where the attack failed. ``success``: an adversarial example with
        margin ``kappa`` was found; ``norm``: its L2 distance (``inf`` where
        not); ``blocked``: all False.

    Examples
    --------
    >>> res = carlini_wagner_l2(model, x, y, steps=100)   # doctest: +SKIP
    >>> res.norm[res.success].median()                    # doctest: +SKIP
    """
    c = V.check_positive(c, "c")
    V.check_int(binary_search_steps, "binary_search_steps", minimum=1)
    V.check_int(steps, "steps")
    lr = V.check_positive(lr, "lr")
    kappa = V.check_nonnegative(kappa, "kappa")
    xw, yw = prepare(model, x, y)
    with eval_mode(model):
        x_adv, success = _cw(model, xw, yw, c, binary_search_steps, steps, lr, kappa, targeted,
                             progress)
    return make_result(x_adv, x, success, "2")


def _cw(model: nn.Module, x: torch.Tensor, y: torch.Tensor, c0: float, searches: int,
        steps: int, lr: float, kappa: float, targeted: bool, progress: bool | None
        ) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    w0 = torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))
    const = torch.full((n,), c0, dtype=x.dtype, device=x.device)
    lower = torch.zeros_like(const)
    upper = torch.full_like(const, _UPPER)
    best_norm = torch.full_like(const, float("inf"))
    best_adv = x.clone()
    beta1, beta2, adam_eps = 0.9, 0.999, 1e-8
    checked = False
    bar = progress_bar(searches * steps, "carlini_wagner_l2", progress)
    try:
        for _ in range(searches):
            w = w0.clone()
            m1 = torch.zeros_like(w)
            m2 = torch.zeros_like(w)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            for t in range(1, steps + 1):
                with torch.enable_grad():
                    wg = w.detach().requires_grad_(True)
                    x_adv = (torch.tanh(wg) + 1) / 2
                    logits = model(x_adv)
                    if not checked:
                        check_classes(y, logits)
                        checked = True
                    real = logits.gather(1, y[:, None]).squeeze(1)
                    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
                    gap = (other - real) if targeted else (real - other)
                    dist2 = (x_adv - x).flatten(1).pow(2).sum(1)
                    loss = dist2 + const * (gap + kappa).clamp_min(0)
                    (grad,) = torch.autograd.grad(loss.sum(), wg)
                # the iterate evaluated here (before the update) may be the best so far
                with torch.no_grad():
                    success = gap.detach() < -kappa if kappa > 0 else gap.detach() < 0
                    norm = dist2.detach().sqrt()
                    better = success & (norm < best_norm)
                    best_norm = torch.where(better, norm, best_norm)
                    best_adv = torch.where(batch_view(better, x), x_adv.detach(), best_adv)
                    found |= success
                    # Adam
                    m1.mul_(beta1).add_(grad, alpha=1 - beta1)
                    m2.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    step = lr * (m1 / (1 - beta1**t)) / ((m2 / (1 - beta2**t)).sqrt() + adam_eps)
                    w = w - step
                bar.update(1)
            # binary search on c, per sample
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(upper < _UPPER, (lower + upper) / 2,
                                torch.where(found, const, const * 10))
    finally:
        bar.close()
    # the last iterate of the last round is evaluated too
    success = torch.isfinite(best_norm)
    return best_adv, success

