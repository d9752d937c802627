"""dmmlib: training, attack and geometry kernels for *The Dimpled Manifold* book.

The package has three layers; each may import the ones above it, never the
ones below (``tests/test_layout.py`` checks it)::

    kernels (reusable in your own work)
        dmmlib.ops        -> logit margin and its gradient, eval-mode guard, batch norms
        dmmlib.device     -> pick a device, seed everything
        dmmlib.profiles   -> how big each experiment is (``ci``, ``cpu``, ``gpu``)
        dmmlib.data       -> datasets as tensors in [0, 1]
        dmmlib.models     -> classifiers with normalisation inside
        dmmlib.train      -> ``fit``, ``accuracy``, cached training
        dmmlib.cache      -> atomic, checksummed cache keyed by the code that made it
        dmmlib.attacks    -> adversarial attacks (input gradients only)
        dmmlib.synthetic  -> data on low-dimensional manifolds
        dmmlib.manifold   -> autoencoders, tangent spaces, on/off-manifold splits
        dmmlib.geometry   -> decision-boundary geometry (normals, distances, dimples)
        dmmlib.ensemble   -> many seeds of one small model trained as one (vmap)
        dmmlib.nulls      -> null models and the rule a verdict is decided by
        dmmlib.hypotheses -> the DMM's claims (clinging, dimples) as tests against nulls
    experiments (one chapter's pipeline each)
        dmmlib.experiments.intriguing, transfer, linearity, random_nets,
        phases, ilyas, natural, rivals
    the book's helpers
        dmmlib.book.plot, nb, interactive, scoreboard

Submodules are imported lazily, so ``import dmmlib`` is cheap.

Changed in 0.2.0: the chapter modules moved from ``dmmlib.<name>`` to
``dmmlib.experiments.<name>`` and the book helpers to ``dmmlib.book.<name>``.
Attribute access through the old names (``dmmlib.natural``) still works and
warns; ``import dmmlib.natural`` does not.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__version__ = "0.2.0"

_KERNELS = (
    "attacks",
    "cache",
    "data",
    "device",
    "ensemble",
    "geometry",
    "hypotheses",
    "manifold",
    "models",
    "nulls",
    "ops",
    "profiles",
    "synthetic",
    "train",
)
_SUBPACKAGES = ("experiments", "book")
_SUBMODULES = _KERNELS + _SUBPACKAGES

#: Where the modules of dmmlib 0.1 live now.
MOVED = {
    **{name: f"experiments.{name}" for name in
       ("intriguing", "transfer", "linearity", "random_nets", "phases", "ilyas", "natural")},
    **{name: f"book.{name}" for name in ("nb", "plot", "interactive", "scoreboard")},
}

#: Experiment modules added after 0.1 (no old name to move from).
_NEW_EXPERIMENTS = ("rivals",)

#: Book helpers added after 0.1.
_NEW_BOOK = ("fmt", "schematics")

#: Every public module by its short name (as the tests and the API reference list them).
_PUBLIC_MODULES = {**{name: name for name in _KERNELS},
                   **{k: v for k, v in MOVED.items() if v.startswith("experiments.")},
                   **{name: f"experiments.{name}" for name in _NEW_EXPERIMENTS},
                   **{k: v for k, v in MOVED.items() if v.startswith("book.")},
                   **{name: f"book.{name}" for name in _NEW_BOOK}}

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in MOVED:
        warnings.warn(f"dmmlib.{name} moved to dmmlib.{MOVED[name]} in dmmlib 0.2.0",
                      FutureWarning, stacklevel=2)
        return importlib.import_module(f"{__name__}.{MOVED[name]}")
    raise AttributeError(f"module 'dmmlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
