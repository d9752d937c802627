"""Sphinx extension: the execution table says "ran" or "failed" in words.

myst-nb's ``{nb-exec-table}`` marks each notebook's status with the emoji
U+2705 / U+274C; without an emoji font (a plain Linux install, many
headless browsers) they render as empty boxes. The words read everywhere.
"""

from __future__ import annotations

from typing import Any


def _status(succeeded: Any) -> str:
    return "ran" if succeeded is True else "failed"


def setup(app: Any) -> dict[str, Any]:
    """Replace myst-nb's status transform (a module-level table it reads at build time)."""
    from myst_nb.ext import execution_tables

    execution_tables._key2transform["succeeded"] = _status
    return {"parallel_read_safe": True, "parallel_write_safe": True}
