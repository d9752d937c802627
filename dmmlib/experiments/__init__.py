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
===========================================  ==========================================

Experiments may import the kernels (``dmmlib.attacks``, ``dmmlib.geometry``,
...) and each other; a kernel never imports an experiment
(``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("intriguing", "transfer", "linearity", "random_nets", "phases", "ilyas", "natural")

__all__ = list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
