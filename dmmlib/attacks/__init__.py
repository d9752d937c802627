"""Adversarial attacks: input gradients only, pixels in [0, 1], one attack per file.

Introduced in the chapter "Adversarial examples in five minutes".

=====================  ========================================================
:func:`fgsm`           one signed-gradient step (Goodfellow et al. 2015), Linf
:func:`pgd`            projected gradient descent (Madry et al. 2018), Linf/L2,
                       restarts, on/off-subspace ("manifold") restriction
=====================  ========================================================

Every attack takes ``(model, x, y, ...)`` with ``x`` in [0, 1], runs on the
model's device in eval mode (restoring the caller's modes), never touches the
parameters' ``.grad`` or its inputs, returns ``x_adv`` like ``x`` and, with
``return_success=True``, a per-sample success mask.
"""

from __future__ import annotations

from .fgsm import fgsm
from .pgd import pgd

__all__ = ["fgsm", "pgd"]
