"""The book's sources: configuration, chapters and their Colab twins, references."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from set_repo_url import current_url, files_quoting_url  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md")
                  if re.search(r"^kernelspec:", p.read_text(), re.M))


def _toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        for v in node.values():
            out += _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            out += _toc_files(v)
    return out


TOC_FILES = [TOC["root"], *_toc_files(TOC.get("parts", []))]


def test_required_top_level_layout():
    for name in ["book", "dmmlib", "tests", "_config.yml", "_toc.yml", "environment.yml",
                 "README.md", "pyproject.toml", "Makefile", "requirements.txt", ".ci/run",
                 ".gitignore"]:
        assert (ROOT / name).exists(), name


def test_every_toc_entry_exists_and_every_chapter_is_in_the_toc():
    for f in TOC_FILES:
        assert (ROOT / f"{f}.md").is_file(), f
    for chapter in CHAPTERS:
        assert str(chapter.relative_to(ROOT).with_suffix("")) in TOC_FILES, chapter.name


def test_execution_is_strict():
    ex = CONFIG["execute"]
    assert ex["raise_on_error"] is True
    assert ex["timeout"] > 0
    for pattern in (".*", "**/.*", "_build", ".venv", "book/**.ipynb"):
        assert pattern in CONFIG["exclude_patterns"]
    exts = set(CONFIG["parse"]["myst_enable_extensions"])
    assert {"dollarmath", "amsmath", "colon_fence"} <= exts


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_colab_twin_is_in_sync_and_output_free(chapter):
    twin = chapter.with_suffix(".ipynb")
    assert twin.is_file(), f"{twin.name} missing: run `make sync`"
    md = jupytext.read(chapter)
    nb = nbformat.read(twin, as_version=4)
    src = [(c.cell_type, c.source.strip()) for c in md.cells]
    dst = [(c.cell_type, c.source.strip()) for c in nb.cells]
    assert src == dst, f"{twin.name} drifted from {chapter.name}: run `make sync`"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{twin.name} has outputs: regenerate it with `make sync`"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_installs_dmmlib_only_when_missing(chapter):
    nb = jupytext.read(chapter)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'find_spec("dmmlib") is None' in first.source
    assert f'"git+{current_url()}"' in first.source
    assert "DMMLIB_SOURCE" in first.source


def test_repository_url_is_the_same_everywhere():
    url = current_url()
    for path in files_quoting_url():
        if not path.is_file():
            continue
        for found in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", path.read_text()):
            if "dimpled-manifold" in found or "dmm" in found.lower():
                assert found.rstrip("/") == url, f"{path.name} quotes {found}, config has {url}"


def test_bibliography_has_the_cited_papers_and_every_citation_resolves():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    required = {"szegedy2013intriguing", "goodfellow2015explaining", "shamir2021dimpled",
                "bartlett2021adversarial", "bubeck2021single", "daniely2020most",
                "ilyas2019adversarial", "melamed2023adversarial", "madry2018towards",
                "moosavi2016deepfool", "carlini2017towards"}
    assert required <= keys
    for page in (ROOT / "book").glob("*.md"):
        for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", page.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, f"{page.name} cites unknown {key}"


def test_environment_matches_requirements_and_dmmlib_uses_ranges():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt must pin exactly: {line}"
            pins[name.lower()] = version
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1.")
    for needed in ("jupytext", "nbval", "ipywidgets", "matplotlib", "numpy", "tqdm"):
        assert needed in pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        assert "==" not in dep, f"dmmlib's own requirement must be a range: {dep}"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-r requirements.txt" in pip_section and "-e ." in pip_section


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_bibliography_entry_is_cited_and_titles_have_no_raw_tex():
    """The bibliography page lists cited works only, and a title shows as text, not TeX."""
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited: set[str] = set()
    for page in (ROOT / "book").glob("*.md"):
        for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", page.read_text()):
            cited.update(k.strip() for k in group.split(","))
    assert not keys - cited, f"listed but never cited: {sorted(keys - cited)}"
    titles = re.findall(r"^\s*title\s*=\s*\{(.*)\},?$", bib, flags=re.MULTILINE)
    assert titles and not [t for t in titles if "$" in t or "\\" in t], \
        "a title holds TeX, which the bibliography prints raw"
    page = (ROOT / "book" / "bibliography.md").read_text()
    assert ":all:" not in page, "the bibliography must list cited works only"


#: code a reader sees unfolded: at most this many lines in one cell and in one chapter
#: (the tutorial chapter shows more: its code is the lesson)
MAX_VISIBLE_CELL = 25
MAX_VISIBLE_CHAPTER = {"five_minutes": 80}
MAX_VISIBLE_DEFAULT = 60
FOLDED = {"hide-input", "remove-input", "remove-cell", "hide-cell"}


def visible_code(text: str) -> list[tuple[int, str]]:
    """(lines, first line) of each code cell shown unfolded, outside the Exercises section."""
    nb = jupytext.reads(text, fmt="md:myst")
    out, in_exercises = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for heading in re.findall(r"^## (.+)$", cell.source, re.M):
                in_exercises = heading.strip() == "Exercises"
            continue
        if cell.cell_type != "code" or in_exercises or FOLDED & set(cell.metadata.get("tags", [])):
            continue
        lines = cell.source.strip("\n").splitlines()
        out.append((len(lines), lines[0] if lines else ""))
    return out


def test_visible_code_counts_unfolded_cells_only():
    text = ("---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
            "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
            "```{code-cell} ipython3\na = 1\nb = 2\n```\n\n"
            "```{code-cell} ipython3\n:tags: [hide-input]\n\nc = 3\n```\n\n## Exercises\n\n"
            "```{code-cell} ipython3\nd = 4\n```\n")
    assert visible_code(text) == [(2, "a = 1")]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_code_is_folded_except_the_calls_that_carry_the_argument(chapter):
    cells = visible_code(chapter.read_text(encoding="utf-8"))
    long = [(n, first) for n, first in cells if n > MAX_VISIBLE_CELL]
    assert not long, f"unfolded cells over {MAX_VISIBLE_CELL} lines (tag them hide-input): {long}"
    budget = MAX_VISIBLE_CHAPTER.get(chapter.stem, MAX_VISIBLE_DEFAULT)
    total = sum(n for n, _ in cells)
    assert total <= budget, f"{total} lines of unfolded code, more than {budget}"


#: the book helpers a chapter imports by name; a chapter that reassigns one breaks its later cells
BOOK_HELPERS = ("fmt", "nb", "plot", "interactive", "schematics", "scoreboard")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_shadows_a_book_helper(chapter):
    nb = jupytext.reads(chapter.read_text(encoding="utf-8"), fmt="md:myst")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    names = "|".join(BOOK_HELPERS)
    pattern = re.compile(rf"^\s*(?:for\s+)?({names})\s*(?:=[^=]|,.*=|\bin\b)", re.M)
    assert not pattern.findall(code), f"{chapter.name} reassigns {pattern.findall(code)}"
