"""Adversarial attacks: input gradients only, pixels in [0, 1], one attack per file.

==========================  ===================================================
:func:`fgsm`                one signed-gradient step (Goodfellow et al. 2015), Linf
:func:`pgd`                 projected gradient descent (Madry et al. 2018), Linf/L2,
                            restarts, on/off-subspace ("manifold") restriction
:func:`apgd`                Auto-PGD (Croce & Hein 2020), CE or DLR loss, Linf/L2:
                            the evaluation attack of AutoAttack
:func:`dlr_loss`            the Difference of Logits Ratio loss APGD can use
:func:`deepfool`            minimal L2 by linearisation (Moosavi-Dezfooli et al. 2016)
:func:`minimal_l2`          minimal L2: FMN (Pintor et al. 2021) or DDN (Rony et al. 2019)
:func:`carlini_wagner_l2`   minimal L2 by optimisation (Carlini & Wagner 2017)
:func:`lbfgs`               box-constrained L-BFGS, targeted (Szegedy et al. 2013)
:func:`robustness_curve`    accuracy under attack for a list of budgets, in one call
:func:`random_targets`      random target classes for ``targeted=True``
:class:`AttackResult`       what every attack returns
==========================  ===================================================

Every attack takes ``(model, x, y, ...)`` with ``x`` in [0, 1], runs on the
model's device in eval mode (restoring the caller's modes), never touches the
parameters' ``.grad`` or its inputs, and returns an :class:`AttackResult`
``(x_adv, success, norm, blocked)``: ``x_adv`` like ``x``, and per sample
whether it is adversarial, the perturbation's norm in the attack's norm
(``inf`` where not adversarial) and whether the box blocked a restricted
attack. ``fgsm`` and ``pgd`` with a list of budgets return a list of results.
Callers that only want the images use ``.x_adv``.

One vocabulary throughout: ``y`` are labels (true classes, or the targets
when ``targeted=True``); ``basis`` an orthonormal basis per sample (N, D, k)
that restricts the perturbation (``complement=True``: its orthogonal
complement); ``seed`` an int, a :class:`torch.Generator` or ``None`` (the
global RNG); ``progress`` a tqdm bar (``None`` follows ``$DMM_PROGRESS``).

Changed in 0.2.0: ``return_success=`` is gone (passing it is a TypeError;
every attack returns an :class:`AttackResult`); ``pgd(subspace=)`` is
``basis=``; ``lbfgs(target=, c_init=, search_steps=, seed=)`` is
``lbfgs(targeted=, c=, binary_search_steps=)`` with :func:`random_targets`;
``fgsm`` has ``progress``; ``dmmlib.experiments.natural.minimal_l2_restricted``
is ``minimal_l2(basis=, complement=, box=False, method="fmn", refine=12)``.
"""

from __future__ import annotations

from .apgd import apgd, dlr_loss
from .carlini_wagner import carlini_wagner_l2
from .curve import robustness_curve
from .deepfool import deepfool
from .fgsm import fgsm
from .lbfgs import lbfgs
from .minimal_l2 import minimal_l2
from .pgd import pgd
from .result import AttackResult
from .targets import random_targets

__all__ = ["fgsm", "pgd", "apgd", "dlr_loss", "deepfool", "minimal_l2", "carlini_wagner_l2",
           "lbfgs",
           "robustness_curve", "random_targets", "AttackResult"]
