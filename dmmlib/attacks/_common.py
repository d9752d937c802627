"""Machinery shared by the attacks in :mod:`dmmlib.attacks` (not public).

Every attack follows the same contract:

* ``x`` is a batch ``(N, ...)`` of pixels in [0, 1] (checked with
  :mod:`dmmlib._validate`), ``y`` holds ``N`` integer labels;
* the work happens on the *model's* device, in the model's floating dtype; the
  result comes back on ``x``'s device with ``x``'s dtype, clipped to [0, 1];
* only the gradient with respect to the input is computed
  (:func:`torch.autograd.grad`), so parameters' ``.grad`` are never touched;
* the model runs in eval mode and every submodule's train/eval flag is restored
  afterwards, even when the attack raises;
* ``x`` and ``y`` are never modified in place;
* the result is an :class:`~dmmlib.attacks.AttackResult` (see
  :func:`make_result`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import _validate as V
from ..device import module_device
from ..ops import batch_view, eval_mode, flat_norm, margin, parse_norm, working_dtype
from ..train import progress_enabled
from .result import AttackResult

__all__ = [
    "parse_norm",
    "eval_mode",
    "prepare",
    "finish",
    "check_classes",
    "loss_and_grad",
    "margin",
    "batch_view",
    "flat_norm",
    "make_generator",
    "progress_bar",
    "Subspace",
    "parse_eps",
    "make_result",
    "warn_blocked",
    "AttackResult",
]


def prepare(model: object, x: object, y: object, name_y: str = "y"
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``(model, x, y)``; return copies on the model's device and dtype."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    xt = V.check_images(x, "x")
    yt = V.check_labels(y, xt, name_y)
    device = module_device(model)
    xw = xt.detach().to(device=device, dtype=working_dtype(model, xt.dtype), copy=True)
    yw = yt.detach().to(device=device, dtype=torch.int64, copy=True)
    return xw, yw


def check_classes(y: torch.Tensor, logits: torch.Tensor, name: str = "y") -> None:
    """Labels must index the model's outputs."""
    n_classes = logits.shape[1]
    if y.numel() and int(y.max()) >= n_classes:
        raise ValueError(f"{name}: labels must lie in [0, {n_classes}) for a model with "
                         f"{n_classes} outputs, found {int(y.max())}")


def finish(x_adv: torch.Tensor, like: torch.Tensor, box: bool = True) -> torch.Tensor:
    """Detached, on ``like``'s device and dtype, clipped to [0, 1] (unless ``box=False``)."""
    out = x_adv.detach().to(device=like.device, dtype=like.dtype)
    return out.clamp_(0.0, 1.0) if box else out.clone()


def make_result(x_adv: torch.Tensor, x: torch.Tensor, success: torch.Tensor, p: str = "2",
                blocked: torch.Tensor | None = None, box: bool = True) -> AttackResult:
    """The :class:`AttackResult` of working-precision ``x_adv`` for the caller's ``x``.

    ``x_adv`` goes through :func:`finish`; ``norm`` is measured on what the
    caller gets (``inf`` where not ``success``); ``blocked`` defaults to False.
    """
    out = finish(x_adv, x, box)
    ok = success.detach().to(device=x.device, dtype=torch.bool)
    diff = (out - x.detach()).flatten(1)
    size = diff.abs().amax(1) if p == "inf" else diff.norm(dim=1)
    if diff.shape[1] == 0:
        size = torch.zeros(diff.shape[0], dtype=out.dtype, device=out.device)
    norm = torch.where(ok, size, torch.full_like(size, float("inf")))
    if blocked is None:
        blk = torch.zeros_like(ok)
    else:
        blk = blocked.detach().to(device=x.device, dtype=torch.bool)
    return AttackResult(out, ok, norm, blk)


#: Warn when more than this fraction of the samples is blocked by the box.
BLOCKED_WARN_FRACTION = 0.5


def warn_blocked(blocked: torch.Tensor, name: str, hint: str = "") -> None:
    """A UserWarning naming the fraction when most samples are blocked by the box."""
    n = blocked.numel()
    if n == 0:
        return
    frac = float(blocked.float().mean())
    if frac > BLOCKED_WARN_FRACTION:
        warnings.warn(
            f"{name}: the box [0, 1] left no feasible move inside the subspace for "
            f"{frac:.0%} of the samples ({int(blocked.sum())} of {n}; pixels at 0 or 1 "
            f"forbid most directions of a subspace), so they come back unchanged; see "
            f"the result's `blocked`{hint}",
            UserWarning, stacklevel=3)


def loss_and_grad(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, targeted: bool,
                  check: bool = False,
                  per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, per-sample loss and the gradient of the attack objective.

    The objective is the loss to ``y`` (to be increased) or, when
    ``targeted``, minus the loss to the target ``y``. The loss is the
    cross-entropy unless ``per_sample(logits, y)`` gives another (APGD's
    DLR). Only the input gradient is computed. ``check`` validates ``y``
    against the logits first.
    """
    with torch.enable_grad():
        xg = x_adv.detach().requires_grad_(True)
        logits = model(xg)
        if check:
            check_classes(y, logits)
        loss = (F.cross_entropy(logits, y, reduction="none") if per_sample is None
                else per_sample(logits, y))
        objective = -loss.sum() if targeted else loss.sum()
        (grad,) = torch.autograd.grad(objective, xg)
    return logits.detach(), loss.detach(), grad


def make_generator(seed: int | torch.Generator | None, device: torch.device
                   ) -> torch.Generator | None:
    """``seed`` (int, generator or None = global RNG) as a generator on ``device``."""
    return V.as_generator(seed, device, "seed")


def progress_bar(total: int, desc: str, progress: bool | None) -> tqdm:
    return tqdm(total=total, desc=desc, disable=not progress_enabled(progress), leave=False)


def parse_eps(eps: object, name: str = "eps") -> tuple[list[float], bool]:
    """A budget or a list of budgets -> (values, was_a_list)."""
    if isinstance(eps, (list, tuple)):
        if len(eps) == 0:
            raise ValueError(f"{name}: empty list of budgets")
        return [V.check_nonnegative(e, name) for e in eps], True
    if isinstance(eps, torch.Tensor) and eps.ndim > 0:
        return [V.check_nonnegative(e, name) for e in eps.flatten().tolist()], True
    return [V.check_nonnegative(eps, name)], False


class Subspace:
    """Orthogonal projection onto ``span(basis)`` (or its complement), per sample.

    ``U`` (the basis) has shape (N, D, k) with orthonormal columns (checked).
    """

    def __init__(self, U: torch.Tensor, complement: bool) -> None:
        self.U = U
        self.complement = bool(complement)

    @classmethod
    def build(cls, U: object, x: torch.Tensor, like: torch.Tensor, complement: bool
              ) -> "Subspace | None":
        if U is None:
            if complement:
                raise ValueError("complement: needs a subspace (pass basis=U)")
            return None
        basis = V.check_basis(U, x, "basis")
        return cls(basis.detach().to(device=like.device, dtype=like.dtype), complement)

    def repeat(self, times: int) -> "Subspace":
        return Subspace(self.U.repeat(times, 1, 1), self.complement)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        flat = v.reshape(v.shape[0], -1, 1)
        inside = torch.bmm(self.U, torch.bmm(self.U.transpose(1, 2), flat))
        out = flat - inside if self.complement else inside
        return out.reshape(v.shape)

    def residual(self, v: torch.Tensor) -> torch.Tensor:
        """Per-sample L2 norm of the part of ``v`` outside the allowed subspace."""
        return flat_norm(v - self.project(v))


def dykstra(v: torch.Tensor, project_a: Callable[[torch.Tensor], torch.Tensor],
            lo: torch.Tensor, hi: torch.Tensor, iters: int, tol: float) -> torch.Tensor:
    """Dykstra's alternating projections of ``v`` onto A and the box [lo, hi].

    Returns the last projection onto A (so it lies *exactly* in A); its box
    violation shrinks towards zero with ``iters``. Stops early once every
    sample violates the box by at most ``tol``.
    """
    a = project_a(v)
    p = torch.zeros_like(v)
    q = torch.zeros_like(v)
    for _ in range(iters):
        if float(box_violation(a, lo, hi).max()) <= tol:
            break
        b = torch.minimum(torch.maximum(a + p, lo), hi)
        p = a + p - b
        a_new = project_a(b + q)
        q = b + q - a_new
        a = a_new
    return a


def box_violation(v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Per-sample largest amount by which ``v`` leaves [lo, hi]."""
    return torch.maximum(lo - v, v - hi).clamp_min(0).flatten(1).amax(1)


def feasible_step(prev: torch.Tensor, cand: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                  tol: float) -> torch.Tensor:
    """Largest move ``prev + t (cand - prev)``, t in [0, 1], that stays in [lo, hi] (+tol).

    ``prev`` must be box-feasible; both ``prev`` and ``cand`` lie in a convex set
    A (subspace, ball), so the result lies in A *and* the box.
    """
    d = cand - prev
    inf = torch.full_like(d, float("inf"))
    over = cand > hi + tol
    under = cand < lo - tol
    t_hi = torch.where(over, (hi - prev) / torch.where(over, d, torch.ones_like(d)), inf)
    t_lo = torch.where(under, (lo - prev) / torch.where(under, d, torch.ones_like(d)), inf)
    t = torch.minimum(t_hi, t_lo).flatten(1).amin(1).clamp(0.0, 1.0)
    return prev + batch_view(t, d) * d

