"""Notebook helpers that work in the built book, in Jupyter and on Colab.

Introduced in the chapter "Adversarial examples in five minutes".

:func:`glue` stores a value under a name so the book's prose can quote it
(``{glue:text}`name```) with myst-nb; where myst-nb is not installed (Colab)
it shows the value instead, so the reader still sees every number.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue", "in_colab"]


def in_colab() -> bool:
    """True inside Google Colab."""
    try:
        import google.colab  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue ``value`` under ``name`` for the book's prose (see ``myst_nb.glue``).

    Without myst-nb, the value is displayed as ``name = value`` (figures are
    displayed as they are), so a reader on Colab sees what the prose quotes.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        from IPython.display import display as _display

        if hasattr(value, "savefig"):
            _display(value)
        else:
            _display(f"{name} = {value}")
        return
    _glue(name, value, display=display)
