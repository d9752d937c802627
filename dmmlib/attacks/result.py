"""The one result type of every attack in :mod:`dmmlib.attacks`."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["AttackResult"]


class AttackResult(NamedTuple):
    """What every attack returns: the adversarial images and, per sample, how it went.

    A :class:`~typing.NamedTuple`, so it reads by name (``res.x_adv``) or
    unpacks (``x_adv, success, norm, blocked = res``). All four live on
    ``x``'s device.

    Attributes
    ----------
    x_adv : torch.Tensor
        Adversarial images, like ``x`` (shape, dtype, device). In [0, 1]
        except for :func:`~dmmlib.attacks.minimal_l2` with ``box=False``.
        Where the attack failed, a minimum-norm attack returns ``x`` itself;
        a fixed-budget attack (FGSM, PGD) returns its last best try.
    success : torch.Tensor
        (N,) bool: the prediction on ``x_adv`` differs from ``y``
        (untargeted) or equals ``y`` (targeted). Samples that were already
        misclassified count as successes (with ``norm`` 0 for the
        minimum-norm attacks, which then return them unchanged).
    norm : torch.Tensor
        (N,) floating, ``x``'s dtype: ``||x_adv - x||`` in the attack's norm
        (L-infinity for FGSM, ``norm=`` for PGD, L2 for the others) where
        ``success``, ``inf`` where not. So ``norm <= eps`` counts the
        successes within a budget and ``norm.median()`` is a distance.
    blocked : torch.Tensor
        (N,) bool: the box [0, 1] left the attack no feasible move inside
        its allowed subspace (``basis=``), so ``x_adv`` is ``x``: pixels at 0
        or 1 forbid almost every direction of a tangent space. Always False
        without a basis, and without the box (``minimal_l2(box=False)``).
        When most samples are blocked the attack also warns.

    Notes
    -----
    An attack called with a list of budgets (``fgsm``, ``pgd``) returns a
    list of results, one per budget, in the same order.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    norm: torch.Tensor
    blocked: torch.Tensor
