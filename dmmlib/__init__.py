"""dmmlib: training, attack and geometry kernels for *The Dimpled Manifold* book.

The package is organised one concept per module (see ``shared/design.md``)::

    dmmlib.device    -> pick a device, seed everything
    dmmlib.profiles  -> how big each experiment is (``ci``, ``cpu``, ``gpu``)
    dmmlib.data      -> datasets as tensors in [0, 1]
    dmmlib.models    -> classifiers with normalisation inside
    dmmlib.train     -> ``fit``, ``accuracy``, cached training
    dmmlib.cache     -> atomic, checksummed weight cache
    dmmlib.attacks   -> adversarial attacks (input gradients only)
    dmmlib.plot      -> the book's figure style
    dmmlib.nb        -> notebook helpers (glue that also works on Colab)
    dmmlib.synthetic, manifold, geometry, ensemble -> data manifolds, tangent
                        spaces, decision-boundary geometry, vmap'ed ensembles
    dmmlib.random_nets, linearity, intriguing, transfer, phases, natural,
    ilyas, interactive -> the kernels of individual chapters (each module
                        names the chapter that introduces it)

Submodules are imported lazily, so ``import dmmlib`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "attacks",
    "cache",
    "data",
    "device",
    "ensemble",
    "geometry",
    "ilyas",
    "interactive",
    "intriguing",
    "linearity",
    "manifold",
    "models",
    "natural",
    "nb",
    "phases",
    "plot",
    "profiles",
    "random_nets",
    "scoreboard",
    "synthetic",
    "train",
    "transfer",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'dmmlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
