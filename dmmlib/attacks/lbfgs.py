"""Box-constrained L-BFGS attack (Szegedy et al., 2014): the first adversarial examples."""

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
    finish,
    make_generator,
    prepare,
    progress_bar,
)

__all__ = ["lbfgs"]

Result = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def lbfgs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    target: torch.Tensor | str | None = None,
    c_init: float = 1.0,
    search_steps: int = 8,
    steps: int = 20,
    history_size: int = 10,
    seed: int | None = None,
    return_success: bool = False,
    progress: bool | None = None,
) -> Result:
    """Szegedy et al.'s box-constrained L-BFGS attack: the closest point of a target class.

    Introduced in the chapter "Intriguing properties".

    Szegedy, Zaremba, Sutskever, Bruna, Erhan, Goodfellow & Fergus (2014),
    "Intriguing properties of neural networks" (ICLR). For a target class
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
        True labels (N,), integers.
    target : torch.Tensor or {"runner-up", "random"}, optional
        Target classes (N,). ``None`` or ``"runner-up"`` (default): the class
        with the second-highest logit at ``x`` (the nearest one, usually);
        ``"random"``: a uniformly random class other than ``y`` (seeded by
        ``seed``).
    c_init : float, default 1.0
        Initial weight of the squared distance.
    search_steps : int, default 8
        Values of ``c`` tried per sample (each one a full L-BFGS run).
    steps : int, default 20
        L-BFGS iterations per value of ``c``.
    history_size : int, default 10
        L-BFGS memory.
    seed : int, optional
        Seed for ``target="random"``.
    return_success : bool, default False
        Also return the boolean mask (N,) of samples classified as their
        target.
    progress : bool, optional
        tqdm bar over the search over ``c``; ``None`` follows ``$DMM_PROGRESS``.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Per sample the closest point found that is classified as the target,
        like ``x`` (shape, dtype, device) in [0, 1]; ``x`` where none was found
        (success False).

    Examples
    --------
    >>> x_adv, ok = lbfgs(model, x, y, return_success=True)      # doctest: +SKIP
    >>> x_adv, ok = lbfgs(model, x, y, target=torch.full_like(y, 3),
    ...                   return_success=True)                  # doctest: +SKIP
    """
    c_init = V.check_positive(c_init, "c_init")
    V.check_int(search_steps, "search_steps", minimum=1)
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
        tw = _targets(target, logits, yw, xw, seed, n_classes)
        x_adv, success = _lbfgs(model, xw, tw, c_init, search_steps, steps, history_size,
                                progress)
    out = finish(x_adv, x)
    return (out, success.to(x.device)) if return_success else out


def _targets(target: object, logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor,
             seed: int | None, n_classes: int) -> torch.Tensor:
    if target is None or (isinstance(target, str) and target == "runner-up"):
        return logits.scatter(1, y[:, None], float("-inf")).argmax(1)
    if isinstance(target, str):
        V.check_choice(target, "target", ("runner-up", "random"))
        gen = make_generator(seed, x.device)
        shift = torch.randint(1, n_classes, y.shape, generator=gen, device=x.device)
        return (y + shift) % n_classes
    t = V.check_labels(target, x, "target", n_classes=n_classes)
    t = t.to(device=x.device, dtype=torch.int64)
    if bool((t == y).any()):
        raise ValueError("target: must differ from the true label y for every sample")
    return t


def _lbfgs(model: nn.Module, x: torch.Tensor, target: torch.Tensor, c_init: float,
           searches: int, steps: int, history: int, progress: bool | None
           ) -> tuple[torch.Tensor, torch.Tensor]:
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

            def closure() -> torch.Tensor:
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
    return best_adv, torch.isfinite(best_norm)
