"""APGD (Croce & Hein, 2020): PGD with a step size that adapts itself, CE or DLR loss."""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as V
from ._common import (
    batch_view,
    eval_mode,
    flat_norm,
    loss_and_grad,
    make_generator,
    make_result,
    parse_norm,
    prepare,
    progress_bar,
)
from .pgd import _project_ball, _random_start
from .result import AttackResult

__all__ = ["apgd", "dlr_loss"]


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Difference of Logits Ratio loss, per sample (to be maximised).

    ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`` with ``z_pi1 >= z_pi2 >=
    z_pi3`` the three largest logits (Croce & Hein 2020, eq. 5). It is
    invariant to shifting and rescaling the logits, so a model cannot hide
    from it by saturating its softmax. Needs at least three classes.

    Parameters
    ----------
    logits : torch.Tensor
        (N, K) with K >= 3.
    y : torch.Tensor
        True labels (N,).

    Returns
    -------
    torch.Tensor
        (N,); positive exactly where the sample is misclassified.
    """
    if logits.ndim != 2 or logits.shape[1] < 3:
        raise ValueError(f"logits: the DLR loss needs (N, K) logits with K >= 3, got shape "
                         f"{tuple(logits.shape)}")
    top = logits.topk(3, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = torch.where(top[:, 0] == z_y, top[:, 1], top[:, 0])  # the best other class
    return -(z_y - other) / (top[:, 0] - top[:, 2] + 1e-12)


def _checkpoints(steps: int) -> list[int]:
    """Iterations at which the step size is reconsidered.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``,
    times ``steps``.
    """
    p = [0.0, 0.22]
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(q * steps) for q in p[1:] if q <= 1.0} - {0})


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    norm: str | float = "inf",
    loss: str = "ce",
    steps: int = 100,
    restarts: int = 1,
    rho: float = 0.75,
    seed: int | torch.Generator | None = None,
    progress: bool | None = None,
) -> AttackResult:
    """Auto-PGD: the evaluation attack of AutoAttack (Croce & Hein, ICML 2020).

    "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks". PGD inside the ``eps``-ball (and the box [0, 1])
    with momentum 0.75 and a per-sample step size that starts at ``2 * eps``
    and is halved at checkpoints (after 22% of the steps, then at shrinking
    intervals, never shorter than 6%) when the loss rose in fewer than
    ``rho`` of the steps since the last checkpoint, or when neither the step
    size nor the best loss changed since then; a halving restarts the sample
    from its best point. Each sample starts at a random point of the ball;
    later restarts run only on samples not yet fooled. A sample counts as
    fooled as soon as any iterate misclassifies it, and that iterate is kept.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1]; it runs in eval mode
        (the caller's modes are restored), on its own device.
    x : torch.Tensor
        Images (N, ...) in [0, 1].
    y : torch.Tensor
        True labels (N,).
    eps : float
        Radius of the ball, in the chosen norm (pixel units), positive.
    norm : {"inf", 2}, default "inf"
        The threat model.
    loss : {"ce", "dlr"}, default "ce"
        Cross-entropy, or the Difference of Logits Ratio (:func:`dlr_loss`,
        needs at least three classes).
    steps : int, default 100
        Iterations per restart (AutoAttack's default is 100).
    restarts : int, default 1
        Runs from independent random starts.
    rho : float, default 0.75
        The share of improving steps below which the step size is halved.
    seed : int, torch.Generator or None
        Randomness of the starts (an int seeds a private generator; ``None``
        uses the global RNG).
    progress : bool, optional
        tqdm bar over iterations; ``None`` follows ``$DMM_PROGRESS``.

    Returns
    -------
    AttackResult
        ``x_adv`` (the first adversarial iterate where one was found, else the
        highest-loss point), ``success``, ``norm`` in ``norm``, ``blocked``
        all False.

    Examples
    --------
    >>> res = apgd(model, x, y, 8 / 255, loss="dlr")                     # doctest: +SKIP
    >>> robust_accuracy = 1 - res.success.float().mean()                 # doctest: +SKIP
    """
    p = parse_norm(norm)
    V.check_choice(loss, "loss", ("ce", "dlr"))
    eps_f = V.check_positive(eps, "eps")
    V.check_int(steps, "steps", 1)
    V.check_int(restarts, "restarts", 1)
    rho_f = V.check_positive(rho, "rho")
    if rho_f > 1:
        raise ValueError(f"rho: a share of steps, in (0, 1], got {rho_f}")
    xw, yw = prepare(model, x, y)
    gen = make_generator(seed, xw.device)
    with eval_mode(model):
        x_adv, success = _apgd(model, xw, yw, eps_f, p, loss, steps, restarts, rho_f, gen,
                               progress)
    return make_result(x_adv, x, success, p)


def _apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, p: str, loss: str,
          steps: int, restarts: int, rho: float, gen: torch.Generator | None,
          progress: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    eps_t = torch.full((n,), eps, dtype=x.dtype, device=x.device)
    best_adv = x.clone()
    best_loss_all = torch.full((n,), -math.inf, dtype=x.dtype, device=x.device)
    fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
    checkpoints = _checkpoints(steps)
    per = None if loss == "ce" else dlr_loss
    bar = progress_bar(steps * restarts, "apgd", progress)

    def project(v: torch.Tensor, x0: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return (x0 + _project_ball(v - x0, e, p)).clamp(0.0, 1.0)

    def direction(g: torch.Tensor) -> torch.Tensor:
        if p == "inf":
            return g.sign()
        return g / batch_view(flat_norm(g).clamp_min(1e-12), g)

    try:
        for r in range(restarts):
            idx = (~fooled).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            x0, y0, e = x[idx], y[idx], eps_t[idx]
            cur = project(x0 + _random_start(x0, e, p, None, gen), x0, e)
            logits, f, g = loss_and_grad(model, cur, y0, False, check=r == 0, per_sample=per)
            hit = logits.argmax(1) != y0
            adv = torch.where(batch_view(hit, cur), cur, x0)
            found = hit.clone()
            x_max, f_max, g_max = cur.clone(), f.clone(), g.clone()
            eta = 2.0 * e.clone()
            prev = cur.clone()
            f_prev = f.clone()
            rises = torch.zeros_like(f)
            last_ckpt, fmax_at_ckpt = 0, f_max.clone()
            reduced_last = torch.zeros_like(found)
            for k in range(steps):
                step = project(cur + batch_view(eta, cur) * direction(g), x0, e)
                if k > 0:  # momentum 0.75 from the second step on
                    step = project(cur + 0.75 * (step - cur) + 0.25 * (cur - prev), x0, e)
                prev, cur = cur, step
                logits, f, g = loss_and_grad(model, cur, y0, False, per_sample=per)
                hit = (logits.argmax(1) != y0) & ~found
                adv[hit], found = cur[hit], found | hit
                rises += (f > f_prev).to(f.dtype)
                f_prev = f
                better = f > f_max
                x_max[better], f_max[better], g_max[better] = cur[better], f[better], g[better]
                if k + 1 in checkpoints:
                    span = k + 1 - last_ckpt
                    oscillating = rises < rho * span
                    stalled = ~reduced_last & (f_max <= fmax_at_ckpt)  # eta unchanged, no gain
                    halve = oscillating | stalled
                    eta = torch.where(halve, eta / 2, eta)
                    cur[halve], g[halve] = x_max[halve], g_max[halve]
                    prev[halve] = x_max[halve]
                    reduced_last = halve
                    rises.zero_()
                    last_ckpt, fmax_at_ckpt = k + 1, f_max.clone()
                bar.update(1)
            # a sample not fooled keeps its highest-loss point over all restarts
            keep = torch.where(batch_view(found, adv), adv, x_max)
            improve = found | (f_max > best_loss_all[idx])
            best_adv[idx[improve]] = keep[improve]
            best_loss_all[idx[improve]] = torch.where(found, torch.full_like(f_max, math.inf),
                                                      f_max)[improve]
            fooled[idx[found]] = True
    finally:
        bar.close()
    return best_adv, fooled
