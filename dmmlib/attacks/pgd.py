"""Projected gradient descent (Madry et al., 2018), optionally restricted to a subspace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import torch
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
    loss_and_grad,
    make_generator,
    make_result,
    parse_eps,
    parse_norm,
    prepare,
    progress_bar,
    warn_blocked,
)
from .result import AttackResult

__all__ = ["pgd"]

#: Dykstra iterations per step when a subspace meets the box constraint.
_BOX_ITERS = 50
#: Box violation (pixel units) tolerated inside the loop; removed by the final clip.
_BOX_TOL = 1e-7


@overload
def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
        norm: str | float = ..., steps: int = ..., step_size: float | None = ...,
        random_start: bool = ..., restarts: int = ..., targeted: bool = ...,
        basis: torch.Tensor | None = ..., complement: bool = ...,
        seed: int | torch.Generator | None = ..., progress: bool | None = ...
        ) -> AttackResult: ...
@overload
def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: Sequence[float], *,
        norm: str | float = ..., steps: int = ..., step_size: float | None = ...,
        random_start: bool = ..., restarts: int = ..., targeted: bool = ...,
        basis: torch.Tensor | None = ..., complement: bool = ...,
        seed: int | torch.Generator | None = ..., progress: bool | None = ...
        ) -> list[AttackResult]: ...
def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float],
    *,
    norm: str | float = "inf",
    steps: int = 40,
    step_size: float | None = None,
    random_start: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    basis: torch.Tensor | None = None,
    complement: bool = False,
    seed: int | torch.Generator | None = None,
    early_stop: bool = False,
    progress: bool | None = None,
) -> AttackResult | list[AttackResult]:
    """Projected gradient descent on the cross-entropy inside an eps-ball.

    Madry, Makelov, Schmidt, Tsipras & Vladu (2018), "Towards deep learning
    models resistant to adversarial attacks" (ICLR). Each step moves by
    ``step_size`` along the sign of the gradient (L-infinity) or along the
    normalised gradient (L2), then projects back onto the ball
    ``|x_adv - x| <= eps`` and the box [0, 1]. The best iterate per sample
    (successful first, then highest loss) over all steps and restarts is
    returned.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1]; it runs in eval mode
        (the caller's modes are restored), on its own device.
    x : torch.Tensor
        Images (N, ...) of floats in [0, 1].
    y : torch.Tensor
        Integer labels (N,): true classes, or target classes when ``targeted``.
    eps : float or sequence of floats
        Radius of the ball in the chosen norm (pixel units). A list runs every
        budget in one batched attack and returns one result per budget.
    norm : {"inf", 2}, default "inf"
        ``"inf"``, ``float("inf")``, ``"linf"`` or ``2``, ``"2"``, ``"l2"``.
    steps : int, default 40
        Gradient steps per restart.
    step_size : float, optional
        Step length; default ``2.5 * eps / steps`` (per budget).
    random_start : bool, default True
        Start from a uniform point of the ball (of the subspace's ball when a
        basis is given); otherwise from ``x``. Restarts after the first
        always start at random.
    restarts : int, default 1
        Independent runs; the best result per sample is kept.
    targeted : bool, default False
        Decrease the cross-entropy to the target ``y`` instead of increasing it.
    basis : torch.Tensor, optional
        Orthonormal basis per sample, shape (N, D, k) with ``D = x[0].numel()``.
        Every step and the random start are projected onto ``span(U)``
        ("on-manifold") or, with ``complement=True``, onto its orthogonal
        complement ("off-manifold"). The returned perturbation lies in that
        subspace (to float precision), in the ball and in the box: the box is
        enforced by Dykstra's alternating projections between "subspace (and
        L2 ball)" and "box (and L-inf ball)", followed by the longest feasible
        move towards that point from the previous (feasible) iterate, so the
        iterate never leaves any of the three sets. Pixels sitting at 0 or 1
        can leave a subspace no feasible direction at all (a tangent basis
        of a digit with a black background, typically): such samples come
        back unchanged with ``blocked`` True, and a UserWarning names the
        fraction when it is more than half. To measure the subspace rather
        than the box, use ``minimal_l2(..., basis=U, box=False)``.
    complement : bool, default False
        Use the orthogonal complement of ``span(basis)``.
    seed : int, torch.Generator or None, optional
        Randomness of the random starts: an int seeds a private generator (the
        global RNG is left alone), a generator is drawn from, ``None`` uses
        the global RNG.
    early_stop : bool, default False
        Stop attacking a sample (and a budget's copy of it) once an iterate
        succeeds: later steps and restarts only run the model on the samples
        still unbroken. ``success`` is the same as without it (success is
        kept once found; every sample still sees the same iterates until
        then, up to float rounding of a smaller batch), so robust accuracy
        comes out the same, faster when most samples fall early. The
        successful ``x_adv`` is then the *first* successful iterate rather
        than the successful one of highest loss: use the default where the
        examples themselves matter (adversarial training, transfer).
    progress : bool, optional
        tqdm bar over steps; ``None`` follows ``$DMM_PROGRESS`` (default on).

    Returns
    -------
    AttackResult or list of AttackResult
        ``x_adv`` like ``x`` (shape, dtype, device), in [0, 1], within ``eps``
        of ``x``; ``success`` (N,); ``norm`` (N,) the perturbation's norm in
        ``norm`` (``inf`` where not a success); ``blocked`` (N,): with a
        basis, the box left no feasible move in the subspace (always False
        without one). For a list of ``eps``, one result per budget.

    Examples
    --------
    >>> x_adv = pgd(model, x, y, eps=8 / 255).x_adv                   # doctest: +SKIP
    >>> res = pgd(model, x, y, 1.0, norm=2)                           # doctest: +SKIP
    >>> print(f"success rate {res.success.float().mean():.0%}")       # doctest: +SKIP
    >>> curves = pgd(model, x, y, [0.01, 0.03, 0.1])  # one result per eps  # doctest: +SKIP
    """
    eps_values, many = parse_eps(eps)
    p = parse_norm(norm)
    V.check_int(steps, "steps")
    V.check_int(restarts, "restarts", minimum=1)
    if step_size is not None:
        V.check_positive(step_size, "step_size")
    xw, yw = prepare(model, x, y)
    sub = Subspace.build(basis, x, xw, complement)
    n = xw.shape[0]
    m = len(eps_values)
    eps_t = torch.tensor(eps_values, device=xw.device, dtype=xw.dtype).repeat_interleave(n)
    if step_size is None:
        alpha_t = 2.5 * eps_t / max(steps, 1)
    else:
        alpha_t = torch.full_like(eps_t, float(step_size))
    if m > 1:
        xw = xw.repeat(m, *([1] * (xw.ndim - 1)))
        yw = yw.repeat(m)
        sub = sub.repeat(m) if sub is not None else None
    gen = make_generator(seed, xw.device)
    with eval_mode(model):
        x_adv, success, peak = _pgd(model, xw, yw, eps_t, alpha_t, p, steps, random_start,
                                    restarts, targeted, sub, gen, progress, bool(early_stop))
    # blocked: a subspace, a non-zero budget and step, and no iterate ever moved
    # by more than a thousandth of a step
    if sub is not None:
        blocked = (peak <= 1e-3 * alpha_t) & (eps_t > 0) & (alpha_t > 0) & (steps > 0)
    else:
        blocked = torch.zeros_like(success)
    results: list[AttackResult] = []
    for i in range(m):
        sl = slice(i * n, (i + 1) * n)
        results.append(make_result(x_adv[sl], x, success[sl], p, blocked[sl]))
    if sub is not None:
        warn_blocked(blocked, "pgd", "; minimal_l2(..., basis=, box=False) measures the "
                     "subspace without the box")
    return results if many else results[0]


def _random_start(x: torch.Tensor, eps: torch.Tensor, p: str, sub: Subspace | None,
                  gen: torch.Generator | None) -> torch.Tensor:
    """A random point of the ball (restricted to the subspace), not yet box-feasible."""
    e = batch_view(eps, x)
    if sub is None:
        if p == "inf":
            u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            return (2 * u - 1) * e
        d = x[0].numel()
        g = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        r = torch.rand(x.shape[0], generator=gen, device=x.device, dtype=x.dtype) ** (1.0 / d)
        return g / batch_view(flat_norm(g).clamp_min(1e-12), x) * batch_view(r, x) * e
    if p == "inf":
        u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        return sub.project((2 * u - 1) * e)
    g = sub.project(torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype))
    k = sub.U.shape[2]
    dim = x[0].numel() - k if sub.complement else k
    r = torch.rand(x.shape[0], generator=gen, device=x.device, dtype=x.dtype) ** (1.0 / max(dim, 1))
    return g / batch_view(flat_norm(g).clamp_min(1e-12), x) * batch_view(r, x) * e


def _project_ball(delta: torch.Tensor, eps: torch.Tensor, p: str) -> torch.Tensor:
    e = batch_view(eps, delta)
    if p == "inf":
        return torch.maximum(torch.minimum(delta, e), -e)
    scale = (eps / flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return delta * batch_view(scale, delta)


def _pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor,
         alpha: torch.Tensor, p: str, steps: int, random_start: bool, restarts: int,
         targeted: bool, sub: Subspace | None, gen: torch.Generator | None,
         progress: bool | None, early_stop: bool = False
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best iterate, success and (with a subspace) the largest perturbation norm seen.

    With ``early_stop`` the model only sees the rows not yet successful; the
    other rows get a zero gradient and keep their iterate.
    """
    e = batch_view(eps, x)
    a = batch_view(alpha, x)
    if sub is not None:
        # the feasible set is  A ∩ B  with exact projections onto each:
        # Linf: A = subspace,           B = box ∩ ball = [max(-x,-eps), min(1-x, eps)]
        # L2:   A = subspace ∩ L2 ball, B = box = [-x, 1-x]
        if p == "inf":
            lo, hi = torch.maximum(-x, -e), torch.minimum(1 - x, e)

            def project_a(v: torch.Tensor) -> torch.Tensor:
                return sub.project(v)
        else:
            lo, hi = -x, 1 - x

            def project_a(v: torch.Tensor) -> torch.Tensor:
                return _project_ball(sub.project(v), eps, "2")

        def constrain(prev: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
            target = dykstra(cand, project_a, lo, hi, _BOX_ITERS, _BOX_TOL)
            return feasible_step(prev, target, lo, hi, _BOX_TOL)
    elif p == "inf":
        # ball and box together are the box [max(x - eps, 0), min(x + eps, 1)]
        box_lo, box_hi = (x - e).clamp_(min=0.0), (x + e).clamp_(max=1.0)

    def advance(x_adv: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: the new (x_adv, delta); ``delta`` is only kept with a subspace."""
        if sub is not None:
            grad = sub.project(grad)
            if p == "inf":
                step = sub.project(a * grad.sign())
            else:
                step = grad * batch_view(alpha / flat_norm(grad).clamp_min(1e-12), grad)
            delta = constrain(delta, delta + step)
            return x + delta, delta
        if p == "inf":
            return torch.clamp(x_adv + a * grad.sign(), box_lo, box_hi), delta
        step = grad * batch_view(alpha / flat_norm(grad).clamp_min(1e-12), grad)
        d = _project_ball(x_adv + step - x, eps, "2")
        return (x + d).clamp_(0.0, 1.0), delta

    best_adv = x.clone()
    best_success = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    best_score = torch.full((x.shape[0],), float("-inf"), dtype=x.dtype, device=x.device)
    peak = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def size(d: torch.Tensor) -> torch.Tensor:
        return d.flatten(1).abs().amax(1) if p == "inf" else flat_norm(d)

    def keep_best(x_adv: torch.Tensor, logits: torch.Tensor, loss: torch.Tensor,
                  rows: torch.Tensor | None = None) -> None:
        """Update the best iterates from the logits and loss of ``rows`` (all if None)."""
        pred = logits.argmax(1)
        yr = y if rows is None else y[rows]
        success = (pred == yr) if targeted else (pred != yr)
        score = -loss if targeted else loss
        if rows is not None:  # rows not evaluated: no success and a score of -inf change nothing
            success = torch.zeros_like(best_success).index_put_((rows,), success)
            score = torch.full_like(best_score, float("-inf")).index_put_((rows,), score)
        better = (success & ~best_success) | ((success == best_success) & (score > best_score))
        torch.where(batch_view(better, x_adv), x_adv, best_adv, out=best_adv)
        best_success.logical_or_(success)
        torch.where(better, score, best_score, out=best_score)

    def evaluate(x_adv: torch.Tensor, grad_needed: bool, check: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Logits, loss (and gradient) of the rows still to attack, and those rows."""
        rows = None
        xa, ya = x_adv, y
        if early_stop and bool(best_success.any()):
            rows = torch.nonzero(~best_success).flatten()
            xa, ya = x_adv[rows], y[rows]
        if grad_needed:
            logits, loss, g = loss_and_grad(model, xa, ya, targeted, check=check)
            if rows is not None:
                grad = torch.zeros_like(x_adv)
                grad[rows] = g
                g = grad
            return logits, loss, g, rows
        with torch.no_grad():
            logits = model(xa)
            if check:
                check_classes(ya, logits)
            loss = torch.nn.functional.cross_entropy(logits, ya, reduction="none")
        return logits, loss, None, rows

    bar = progress_bar(steps * restarts, "pgd", progress)
    try:
        for r in range(restarts):
            zero = torch.zeros_like(x)
            if random_start or r > 0:
                start = _random_start(x, eps, p, sub, gen)
                if sub is not None:
                    delta = constrain(zero, start)
                else:
                    delta = (x + start).clamp_(0.0, 1.0) - x
            else:
                delta = zero
            x_adv = x + delta
            if sub is not None:
                torch.maximum(peak, size(delta), out=peak)
            for t in range(steps):
                if early_stop and bool(best_success.all()):
                    break
                logits, loss, grad, rows = evaluate(x_adv, True, check=(r == 0 and t == 0))
                if t > 0:
                    keep_best(x_adv, logits, loss, rows)
                assert grad is not None
                new_adv, new_delta = advance(x_adv, delta, grad)
                if rows is not None:  # rows already successful keep their iterate
                    active = batch_view(~best_success, x_adv)
                    new_adv = torch.where(active, new_adv, x_adv)
                    if sub is not None:
                        new_delta = torch.where(active, new_delta, delta)
                x_adv, delta = new_adv, new_delta
                if sub is not None:
                    torch.maximum(peak, size(delta), out=peak)
                bar.update(1)
            if early_stop and bool(best_success.all()):
                break  # no restart can change a success
            logits, loss, _, rows = evaluate(x_adv, False, check=(steps == 0 and r == 0))
            keep_best(x_adv, logits, loss, rows)
    finally:
        bar.close()
    # with a subspace the iterates may leave the box by <= _BOX_TOL: finish() clips
    return best_adv, best_success, peak
