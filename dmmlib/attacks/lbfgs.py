"""Box-constrained L-BFGS attack (Szegedy et al., 2013): the first adversarial examples."""

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
    make_result,
    prepare,
    progress_bar,
)
from .result import AttackResult

__all__ = ["lbfgs"]


def lbfgs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    targeted: bool = False,
    c: float = 1.0,
    binary_search_steps: int = 8,
    steps: int = 20,
    history_size: int = 10,
    progress: bool | None = None,
) -> AttackResult:
    """Szegedy et al.'s box-constrained L-BFGS attack: the closest point of a target class.

    Szegedy, Zaremba, Sutskever, Bruna, Erhan, Goodfellow & Fergus (2013),
    "Intriguing properties of neural networks" (arXiv 1312.6199; ICLR 2014). For a target class
    ``t`` it solves

        minimise  c * ||r||_2^2 + CE(f(x + r), t)   subject to  x + r in [0, 1]^D

    and searches, per sample, for the *largest* ``c`` (the smallest
    perturbation) whose minimiser is still classified as ``t`` (the paper's
    "line-search over c"): ``c`` is multiplied by 10 after a success and
    divided by 10 after a failure until both a success and a failure are
    known, then bisected geometrically. The distance is L2. The smallest
    successful perturbation over the search is returned.

    Implementation choices: the box is handled by the change of variables
    ``x + r = (tanh(w) + 1) / 2`` (so an unconstrained L-BFGS applies), and the
    whole batch is optimised by *one* :class:`torch.optim.LBFGS` (strong-Wolfe
    line search) on the sum of the per-sample objectives: the samples'
    problems are independent, so the minimiser is the same as running them one
    by one, but the quasi-Newton memory and the step length are shared.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1]; runs in eval mode
        (the caller's modes are restored), on its own device.
    x : torch.Tensor
        Images (N, ...) of floats in [0, 1].
    y : torch.Tensor
        Integer labels (N,): the true classes or, when ``targeted``, the
        target classes (e.g. from :func:`random_targets`).
    targeted : bool, default False
        ``True``: reach the classes ``y``. ``False``: ``y`` are the true
        classes and the target is the runner-up, the class with the
        second-highest logit at ``x`` (the nearest one, usually); success is
        then any misclassification.
    c : float, default 1.0
        Initial weight of the squared distance.
    binary_search_steps : int, default 8
        Values of ``c`` tried per sample (each one a full L-BFGS run).
    steps : int, default 20
        L-BFGS iterations per value of ``c``.
    history_size : int, default 10
        L-BFGS memory.
    progress : bool, optional
        tqdm bar over the search over ``c``; ``None`` follows ``$DMM_PROGRESS``.

    Returns
    -------
    AttackResult
        ``x_adv``: per sample the closest point found that is classified as
        the target, like ``x`` (shape, dtype, device) in [0, 1]; ``x`` where
        none was found (success False). ``norm``: its L2 distance (``inf``
        where none). ``blocked``: all False.

    Examples
    --------
    >>> res = lbfgs(model, x, y)                                   # doctest: +SKIP
    >>> res = lbfgs(model, x, torch.full_like(y, 3), targeted=True)  # doctest: +SKIP
    >>> res = lbfgs(model, x, random_targets(y, 10, seed=0), targeted=True)  # doctest: +SKIP
    """
    c = V.check_positive(c, "c")
    V.check_int(binary_search_steps, "binary_search_steps", minimum=1)
    V.check_int(steps, "steps", minimum=1)
    V.check_int(history_size, "history_size", minimum=1)
    xw, yw = prepare(model, x, y)
    with eval_mode(model):
        with torch.no_grad():
            logits = model(xw)
        check_classes(yw, logits)
        n_classes = logits.shape[1]
        if n_classes < 2:
            raise ValueError("model: needs at least two classes for a targeted attack")
        tw = yw if targeted else logits.scatter(1, yw[:, None], float("-inf")).argmax(1)
        x_adv, _, found = _lbfgs(model, xw, tw, c, binary_search_steps, steps,
                                       history_size, progress)
        if targeted:
            success = found
        else:
            # untargeted: any misclassification counts (the best point reached the
            # runner-up; a sample already misclassified needs no move at all)
            with torch.no_grad():
                clean_wrong = logits.argmax(1) != yw
            x_adv = torch.where(batch_view(clean_wrong, x_adv), xw, x_adv)
            success = found | clean_wrong
    return make_result(x_adv, x, success, "2")


def _lbfgs(model: nn.Module, x: torch.Tensor, target: torch.Tensor, c_init: float,
           searches: int, steps: int, history: int, progress: bool | None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    w0 = torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))
    log_c = torch.full((n,), math.log10(c_init), dtype=x.dtype, device=x.device)
    lo = torch.full_like(log_c, float("-inf"))  # largest log c known to succeed
    hi = torch.full_like(log_c, float("inf"))   # smallest log c known to fail
    best_norm = torch.full_like(log_c, float("inf"))
    best_adv = x.clone()
    bar = progress_bar(searches, "lbfgs", progress)
    try:
        for _ in range(searches):
            c = 10.0 ** log_c
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.LBFGS([w], lr=1.0, max_iter=steps, history_size=history,
                                    tolerance_grad=1e-10, tolerance_change=1e-12,
                                    line_search_fn="strong_wolfe")

            # bound now: the optimizer calls the closure within this iteration
            def closure(w: torch.Tensor = w, c: torch.Tensor = c) -> torch.Tensor:
                with torch.enable_grad():
                    x_adv = (torch.tanh(w) + 1) / 2
                    logits = model(x_adv)
                    dist2 = (x_adv - x).flatten(1).pow(2).sum(1)
                    ce = F.cross_entropy(logits, target, reduction="none")
                    loss = (c * dist2 + ce).sum()
                    (g,) = torch.autograd.grad(loss, w)
                w.grad = g
                return loss.detach()

            opt.step(closure)
            with torch.no_grad():
                x_adv = (torch.tanh(w.detach()) + 1) / 2
                success = model(x_adv).argmax(1) == target
                norm = (x_adv - x).flatten(1).norm(dim=1)
                better = success & (norm < best_norm)
                best_norm = torch.where(better, norm, best_norm)
                best_adv = torch.where(batch_view(better, x), x_adv, best_adv)
                lo = torch.where(success, torch.maximum(lo, log_c), lo)
                hi = torch.where(success, hi, torch.minimum(hi, log_c))
                bracketed = torch.isfinite(lo) & torch.isfinite(hi)
                log_c = torch.where(bracketed, (lo + hi) / 2,
                                    torch.where(success, log_c + 1, log_c - 1))
            bar.update(1)
    finally:
        bar.close()
    return best_adv, best_norm, torch.isfinite(best_norm)
