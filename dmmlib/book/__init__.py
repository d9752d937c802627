"""The book's own helpers: figures, notebook glue, interactive widgets, the scoreboard.

======================================  ================================================
:mod:`~dmmlib.book.plot`                the book's figure style and recurring figures
:mod:`~dmmlib.book.nb`                  notebook helpers (glue, profile notes, sliders)
                                        that also work on Colab
:mod:`~dmmlib.book.interactive`         rotatable 3-D surfaces and offline animations
:mod:`~dmmlib.book.scoreboard`          published results beside this book's runs
:mod:`~dmmlib.book.fmt`                 numbers, ranges and tables as the prose shows them
:mod:`~dmmlib.book.schematics`          drawings of each explanation of adversarial
                                        examples, in one style
======================================  ================================================

Nothing in the kernels imports this subpackage.
"""

from __future__ import annotations

from .._lazy import lazy_submodules

_SUBMODULES = ("plot", "nb", "interactive", "scoreboard", "fmt", "schematics")

__all__ = list(_SUBMODULES)

__getattr__, __dir__ = lazy_submodules(__name__, _SUBMODULES)
