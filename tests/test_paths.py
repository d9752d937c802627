"""No page or module names a file the reader does not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("book/*.md"), *ROOT.glob("dmmlib/**/*.py"), ROOT / "README.md",
                  ROOT / "CONTRIBUTING.md", *ROOT.glob("benchmarks/*.md"),
                  *ROOT.glob("benchmarks/*.py")])
# a path with a folder and a file extension, written as inline code or in a link
PATH = re.compile(r"[`(]((?:\.{0,2}/)?(?:[\w.-]+/)+[\w.-]+"
                  r"\.(?:md|py|json|ya?ml|toml|txt|sh|bib|ipynb))[`)]")
# paths that name what a build or a run creates, not files of the repository
GENERATED = ("_build/", "test-artifacts/", ".venv", "~/", "/usr/share/", "$", "results_")


def _names(path: Path) -> list[str]:
    return [m.group(1) for m in PATH.finditer(path.read_text(errors="replace"))]


def test_the_pattern_finds_a_missing_file(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("see (`shared/reference-results.md`) and `book/intro.md`")
    assert _names(page) == ["shared/reference-results.md", "book/intro.md"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_file_exists(source):
    missing = []
    for name in _names(source):
        if name.startswith(GENERATED) or "://" in name:
            continue
        candidates = [ROOT / name, source.parent / name, ROOT / "book" / name]
        if not any(c.exists() for c in candidates):
            missing.append(name)
    assert not missing, f"{source.relative_to(ROOT)} names files the repository lacks: {missing}"


def test_no_mention_of_the_private_design_folder():
    hits = [str(p.relative_to(ROOT)) for p in SOURCES if "shared/" in p.read_text(errors="replace")]
    assert not hits, f"these name ../shared/, which readers do not have: {hits}"
