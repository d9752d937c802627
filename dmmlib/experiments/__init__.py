"""One chapter's experiment code per module, built on the kernels of :mod:`dmmlib`.

===========================================  ==========================================
:mod:`~dmmlib.experiments.intriguing`        Szegedy et al. (2013): their models, units vs
                                             random directions, noise controls
:mod:`~dmmlib.experiments.transfer`          transfer across models and training sets,
                                             input gradients, cosine similarities
:mod:`~dmmlib.experiments.linearity`         Goodfellow et al.'s linearity argument, measured
:mod:`~dmmlib.experiments.random_nets`       one gradient step flips random ReLU networks
:mod:`~dmmlib.experiments.phases`            clinging and dimpling over training, over seeds
:mod:`~dmmlib.experiments.ilyas`             training on mislabelled adversarial examples
:mod:`~dmmlib.experiments.natural`           autoencoder tangent spaces on natural images,
                                             attacks confined to them or kept off them
:mod:`~dmmlib.experiments.rivals`            boundary tilting, adversarial spheres and
                                             concentration of measure
===========================================  ==========================================

Experiments may import the kernels (``dmmlib.attacks``, ``dmmlib.geometry``,
...) and each other; a kernel never imports an experiment
(``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

from .._lazy import lazy_submodules

_SUBMODULES = ("intriguing", "transfer", "linearity", "random_nets", "phases", "ilyas", "natural",
               "rivals")

__all__ = list(_SUBMODULES)

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)
