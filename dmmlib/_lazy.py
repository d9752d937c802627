"""Lazy submodules for a package: ``import dmmlib`` stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_submodules(package: str, names: tuple[str, ...]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module-level ``__getattr__`` and ``__dir__`` that import ``names`` on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : tuple of str
        Its submodules.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` for the package's namespace.
    """
    def getattr_(name: str) -> Any:
        if name in names:
            module = importlib.import_module(f"{package}.{name}")
            vars(importlib.import_module(package))[name] = module
            return module
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(names)

    return getattr_, dir_
