"""The package's layers: kernels never import experiments or the book's helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dmmlib

PKG = Path(dmmlib.__file__).parent
KERNEL_FILES = sorted(p for p in PKG.rglob("*.py")
                      if p.relative_to(PKG).parts[0] not in ("experiments", "book"))
EXPERIMENT_FILES = sorted((PKG / "experiments").glob("*.py"))


def _imports(path: Path) -> list[str]:
    """Absolute dotted names of every module ``path`` imports (top level or inside functions)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]
    return out


def _forbidden(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted({m for m in _imports(path) if m.startswith(prefixes)})


def test_the_walker_sees_relative_and_nested_imports():
    """The check itself can fail: a kernel-like file importing an experiment is caught."""
    fake = PKG / "experiments" / "natural.py"  # imports ..ops, relatively
    assert "dmmlib.ops" in _imports(fake) or "dmmlib.ops.margin" in _imports(fake)
    assert _forbidden(fake, ("dmmlib.ops",))


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_kernels_never_import_experiments_or_book(path):
    bad = _forbidden(path, ("dmmlib.experiments", "dmmlib.book"))
    assert not bad, f"{path.relative_to(PKG)} (a kernel) imports {bad}"


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.name)
def test_experiments_never_import_the_book(path):
    bad = _forbidden(path, ("dmmlib.book",))
    assert not bad, f"experiments/{path.name} imports the book's helpers {bad}"


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_private_attack_machinery_stays_inside_attacks(path):
    if path.relative_to(PKG).parts[0] == "attacks":
        return
    bad = _forbidden(path, ("dmmlib.attacks._",))
    assert not bad, f"{path.relative_to(PKG)} imports private attack modules {bad}; " \
        "use dmmlib.ops or the public dmmlib.attacks"


def test_every_public_module_imports_and_is_listed():
    for dotted in dmmlib._PUBLIC_MODULES.values():
        mod = __import__(f"dmmlib.{dotted}", fromlist=["_"])
        assert mod.__all__, f"dmmlib.{dotted} has no __all__"
    on_disk = {p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_")}
    on_disk |= {"attacks"}
    assert on_disk == set(dmmlib._KERNELS), "kernel modules on disk and dmmlib._KERNELS differ"


def test_old_names_warn_and_point_to_the_new_module():
    with pytest.warns(FutureWarning, match="moved to dmmlib.experiments.natural"):
        mod = dmmlib.natural
    assert mod.__name__ == "dmmlib.experiments.natural"
