"""Building blocks shared by the attacks, the geometry and the experiments.

One function for one idea: the logit margin and its input gradient, the
guard that runs a model in eval mode and restores every submodule's own
train/eval flag, and the per-sample views and norms of a batch. Everything
here is batched over the first dimension and works on any device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Real

import torch
from torch import nn

__all__ = [
    "working_dtype",
    "parse_norm",
    "preserved_modes",
    "eval_mode",
    "margin",
    "pair_margin",
    "margin_and_grad",
    "batch_view",
    "flat_norm",
]


@contextmanager
def preserved_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every submodule's own train/eval flag on exit, even on an exception.

    Parameters
    ----------
    model : torch.nn.Module
        The module whose flags (``module.training`` of it and of every
        submodule) are saved on entry and written back on exit.

    Yields
    ------
    torch.nn.Module
        ``model`` itself, in whatever mode the body puts it.
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode; restore every submodule's own flag on exit.

    Parameters
    ----------
    model : torch.nn.Module
        The model to put in eval mode for the duration of the block.

    Yields
    ------
    torch.nn.Module
        ``model``, in eval mode.
    """
    with preserved_modes(model):
        model.eval()
        yield model


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The logit margin ``z_y - max_{j != y} z_j`` per sample.

    Parameters
    ----------
    logits : torch.Tensor
        Shape (N, C).
    y : torch.Tensor
        Shape (N,), integer labels in [0, C).

    Returns
    -------
    torch.Tensor
        Shape (N,): positive where the sample is still classified as ``y``.
    """
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - other


def pair_margin(logits: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The margin ``z_a - z_b`` between two given classes, per sample.

    Parameters
    ----------
    logits : torch.Tensor
        Shape (N, C).
    a, b : torch.Tensor
        Shape (N,), integer class indices.

    Returns
    -------
    torch.Tensor
        Shape (N,).
    """
    return logits.gather(1, a[:, None]).squeeze(1) - logits.gather(1, b[:, None]).squeeze(1)


def margin_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    other: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit margin at ``x`` and its gradient with respect to ``x``.

    Only the input gradient is computed (:func:`torch.autograd.grad`), so the
    parameters' ``.grad`` are never touched. The model's mode is not changed:
    wrap the call in :func:`eval_mode` for an attack or a measurement.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (N, ...) inputs to (N, C) logits.
    x : torch.Tensor
        The points, already on the model's device and dtype.
    y : torch.Tensor
        Shape (N,): the class whose margin is taken.
    other : torch.Tensor, optional
        Shape (N,): the class to compare with; by default the runner-up
        ``argmax_{j != y} z_j`` at ``x``.

    Returns
    -------
    margin : torch.Tensor
        Shape (N,), detached.
    grad : torch.Tensor
        Like ``x``, detached.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logits = model(xg)
        m = margin(logits, y) if other is None else pair_margin(logits, y, other)
        (grad,) = torch.autograd.grad(m.sum(), xg)
    return m.detach(), grad.detach()


def batch_view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample ``(N,)`` tensor to broadcast against ``like`` (N, ...).

    Parameters
    ----------
    t : torch.Tensor
        Shape (N,).
    like : torch.Tensor
        Shape (N, ...).

    Returns
    -------
    torch.Tensor
        Shape (N, 1, ..., 1) with ``like.ndim`` dimensions.
    """
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def flat_norm(v: torch.Tensor, norm: str = "2") -> torch.Tensor:
    """Per-sample norm of a batch, over all but the first dimension.

    Parameters
    ----------
    v : torch.Tensor
        Shape (N, ...).
    norm : {"2", "inf"}
        The L2 or the L-infinity norm.

    Returns
    -------
    torch.Tensor
        Shape (N,).
    """
    flat = v.flatten(1)
    if norm == "inf":
        return flat.abs().amax(1)
    if norm != "2":
        raise ValueError(f"norm: expected '2' or 'inf', got {norm!r}")
    return flat.norm(dim=1)


def parse_norm(norm: object) -> str:
    """``"inf"`` or ``"2"`` from the many ways of writing a norm.

    Parameters
    ----------
    norm : str or float
        ``"inf"``, ``"linf"``, ``float("inf")``, ``2``, ``"2"``, ``"l2"``, ...

    Returns
    -------
    str
        ``"inf"`` or ``"2"``.
    """
    if isinstance(norm, str):
        key = norm.strip().lower().replace("_", "")
        if key in {"inf", "linf", "infinity"}:
            return "inf"
        if key in {"2", "l2", "2.0"}:
            return "2"
    elif isinstance(norm, Real) and not isinstance(norm, bool):
        value = float(norm)
        if math.isinf(value) and value > 0:
            return "inf"
        if value == 2.0:
            return "2"
    raise ValueError(f"norm: unknown norm {norm!r}; use 'inf' (also float('inf'), 'linf') "
                     "or 2 (also '2', 'l2')")


def working_dtype(model: nn.Module, fallback: torch.dtype = torch.float32) -> torch.dtype:
    """The floating dtype a model computes in: that of its first floating parameter or buffer.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    fallback : torch.dtype
        Returned for a model without floating parameters or buffers.

    Returns
    -------
    torch.dtype
    """
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return fallback
