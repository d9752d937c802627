"""Adversarial attacks: input gradients only, pixels in [0, 1], one attack per file.

Introduced in the chapter "Adversarial examples in five minutes".

==========================  ===================================================
:func:`fgsm`                one signed-gradient step (Goodfellow et al. 2015), Linf
:func:`pgd`                 projected gradient descent (Madry et al. 2018), Linf/L2,
                            restarts, on/off-subspace ("manifold") restriction
:func:`deepfool`            minimal L2 by linearisation (Moosavi-Dezfooli et al. 2016)
:func:`minimal_l2`          minimal L2: FMN (Pintor et al. 2021) or DDN (Rony et al. 2019)
:func:`carlini_wagner_l2`   minimal L2 by optimisation (Carlini & Wagner 2017)
:func:`lbfgs`               box-constrained L-BFGS, targeted (Szegedy et al. 2014)
:func:`robustness_curve`    accuracy under attack for a list of budgets, in one call
==========================  ===================================================

Every attack takes ``(model, x, y, ...)`` with ``x`` in [0, 1], runs on the
model's device in eval mode (restoring the caller's modes), never touches the
parameters' ``.grad`` or its inputs, returns ``x_adv`` like ``x`` and, with
``return_success=True``, a per-sample success mask.
"""

from __future__ import annotations

from .carlini_wagner import carlini_wagner_l2
from .curve import robustness_curve
from .deepfool import deepfool
from .fgsm import fgsm
from .lbfgs import lbfgs
from .minimal_l2 import minimal_l2
from .pgd import pgd

__all__ = ["fgsm", "pgd", "deepfool", "minimal_l2", "carlini_wagner_l2", "lbfgs",
           "robustness_curve"]
