"""The book's own helpers: figures, notebook glue, interactive widgets, the scoreboard.

======================================  ================================================
:mod:`~dmmlib.book.plot`                the book's figure style and recurring figures
:mod:`~dmmlib.book.nb`                  notebook helpers (glue, profile notes, sliders)
                                        that also work on Colab
:mod:`~dmmlib.book.interactive`         rotatable 3-D surfaces and offline animations
:mod:`~dmmlib.book.scoreboard`          published results beside this book's runs
======================================  ================================================

Nothing in the kernels imports this subpackage.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("plot", "nb", "interactive", "scoreboard")

__all__ = list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
