"""The API reference (book/reference/): one page per public module, "Used in", prose links.

No book build: the pages and the table of contents are read as files, the
"Used in" scan runs on the chapters' sources, and the literal-to-link
transform runs in a one-page Sphinx project built in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import warnings
from pathlib import Path

import pytest
import yaml

import dmmlib

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("dmm_reference", ROOT / "book/_ext/dmm_reference.py")
ext = importlib.util.module_from_spec(spec)
sys.modules["dmm_reference"] = ext  # the one-page Sphinx project loads it by name
spec.loader.exec_module(ext)

MODULES = sorted(f"dmmlib.{path}" for path in dmmlib._PUBLIC_MODULES.values())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _reference_part() -> dict:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return next(p for p in toc["parts"] if p["caption"] == "dmmlib reference")


def _files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        for key in ("chapters", "sections"):
            out += _files(node.get(key, []))
    elif isinstance(node, list):
        for item in node:
            out += _files(item)
    return out


# --------------------------------------------------------------------------- pages
@pytest.mark.parametrize("module", MODULES)
def test_every_public_module_has_a_reference_page_in_the_toc(module):
    docname = ext.page_docname(module)
    page = ROOT / f"{docname}.md"
    assert page.is_file(), f"{module} has no reference page {page.relative_to(ROOT)}"
    assert re.search(rf"^\.\. dmm-module:: {re.escape(module)}$", page.read_text(), re.M), \
        f"{page.name} does not document {module} (`.. dmm-module:: {module}`)"
    assert docname in _files(_reference_part()), f"{docname} missing from _toc.yml"


def test_no_reference_page_for_a_module_that_is_gone():
    pages = {str(p.relative_to(ROOT).with_suffix(""))
             for p in (ROOT / ext.REFERENCE_DIR).rglob("*.md")}
    expected = {ext.page_docname(m) for m in MODULES} | {f"{ext.REFERENCE_DIR}/index"}
    assert pages == expected


def test_reference_part_has_the_overview_every_layer_and_the_errors_page():
    files = _files(_reference_part())
    assert files[0] == f"{ext.REFERENCE_DIR}/index" and "book/errors" in files
    # the modules in layer order: kernels, experiments, book helpers
    order = [f for f in files if f.startswith(ext.REFERENCE_DIR + "/") and not f.endswith("index")]
    assert order == [ext.page_docname(m) for m in ext.all_modules()]
    overview = (ROOT / ext.REFERENCE_DIR / "index.md").read_text()
    for layer in ext.LAYERS:
        assert f".. dmm-layer:: {layer}" in overview
    assert sorted(ext.all_modules()) == MODULES


def test_the_extensions_are_registered_and_pinned():
    sphinx = CONFIG["sphinx"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"} <= set(
        sphinx["extra_extensions"])
    assert sphinx["local_extensions"]["dmm_reference"] == "book/_ext"
    assert sphinx["config"]["numpydoc_show_class_members"] is False
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert "numpydoc" in pins


def test_module_entry_lists_everything_in_all():
    rst = "\n".join(ext.module_rst("dmmlib.attacks"))
    assert ".. automodule:: dmmlib.attacks" in rst
    for name in dmmlib.attacks.__all__:
        assert re.search(rf"^\.\. auto\w+:: dmmlib\.attacks\.{name}$", rst, re.M), name
        assert re.search(rf"^   {name}$", rst, re.M), f"{name} missing from the summary table"


# --------------------------------------------------------------------------- used in
CHAPTER = '''---
kernelspec:
  name: python3
---
# A chapter

Prose names `dmmlib.geometry.clinging` in full, and `attacks.fgsm` without the package.

```{code-cell} ipython3
import dmmlib
from dmmlib import attacks as A, data
from dmmlib.experiments import random_nets as rn
from dmmlib.book.scoreboard import (
    record,
)
x = A.pgd(model, x, y, eps=0.1)
nets = rn.relu_network(d)
dmmlib.profiles.get_profile()
data.not_a_public_name
```
'''


def test_used_in_scan_resolves_imports_aliases_and_full_names():
    modules = {m: set(ext.public_names(m)) for m in ext.all_modules()}
    used = ext.scan_text(CHAPTER, modules)
    for name in ("dmmlib.attacks", "dmmlib.attacks.pgd", "dmmlib.data",
                 "dmmlib.experiments.random_nets", "dmmlib.experiments.random_nets.relu_network",
                 "dmmlib.book.scoreboard", "dmmlib.book.scoreboard.record",
                 "dmmlib.geometry", "dmmlib.geometry.clinging",
                 "dmmlib.profiles", "dmmlib.profiles.get_profile"):
        assert name in used, name
    assert "dmmlib.attacks.fgsm" not in used  # prose without the package is not a use
    assert not any(n.endswith("not_a_public_name") for n in used)


def test_used_in_scan_finds_the_chapters_that_use_a_kernel(tmp_path):
    usage = ext.scan_usage()
    assert "book/five_minutes" in usage["dmmlib.attacks"]
    assert "book/five_minutes" in usage["dmmlib.book.nb"]
    # every chapter named is a chapter of the book, in table-of-contents order
    chapters = [str(p.relative_to(ROOT).with_suffix("")) for p in ext.chapter_files()]
    for name, docnames in usage.items():
        assert docnames == [c for c in chapters if c in docnames], name
    # a chapter given explicitly
    (tmp_path / "book").mkdir()
    page = tmp_path / "book" / "toy.md"
    page.write_text(CHAPTER)
    usage = ext.scan_usage([page], root=tmp_path)
    assert usage["dmmlib.attacks.pgd"] == ["book/toy"]


def test_used_in_rubric_links_the_chapters():
    lines = ext.used_in_lines(["book/five_minutes", "book/critics"])
    assert ".. rubric:: Used in" in lines
    assert ":doc:`/book/five_minutes`, :doc:`/book/critics`" in lines
    assert ext.used_in_lines([]) == []
    line = ext.used_in_lines(["book/critics"], rubric=False)
    assert line == ["", "*Used in:* :doc:`/book/critics`", ""]


# --------------------------------------------------------------------------- links
PAGE = """\
Page
====

.. py:module:: dmmlib.attacks

.. py:function:: pgd(model, x, y)

   Projected gradient descent.

Known ``dmmlib.attacks.pgd``, called ``dmmlib.attacks.pgd()``, the module
``dmmlib.attacks``, an unknown ``dmmlib.attacks.nope`` and a plain ``pgd``.

.. code-block:: python

   dmmlib.attacks.pgd(model, x, y)
"""


@pytest.fixture(scope="module")
def linked_page(tmp_path_factory) -> str:
    from sphinx.application import Sphinx

    src = tmp_path_factory.mktemp("ref")
    (src / "conf.py").write_text("extensions = ['dmm_reference']\n")
    (src / "index.rst").write_text(PAGE)
    warning = io.StringIO()
    app = Sphinx(str(src), str(src), str(src / "_build"), str(src / "_doctrees"), "html",
                 status=None, warning=warning, freshenv=True)
    app.build()
    assert "WARNING" not in warning.getvalue(), warning.getvalue()
    return (src / "_build" / "index.html").read_text()


def _linked(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<a class="reference internal" href="([^"]*)"[^>]*><code class="[^"]*'
                      r'dmm-ref[^"]*"><span class="pre">([^<]*)</span>', html)


def test_literal_naming_a_documented_object_links_to_its_entry(linked_page):
    links = _linked(linked_page)
    assert ("#dmmlib.attacks.pgd", "dmmlib.attacks.pgd") in links
    assert ("#dmmlib.attacks.pgd", "dmmlib.attacks.pgd()") in links
    assert ("#module-dmmlib.attacks", "dmmlib.attacks") in links
    assert len(links) == 3


def test_unknown_names_and_code_blocks_stay_literal(linked_page):
    assert re.search(r'<code class="docutils literal notranslate"><span class="pre">'
                     r'dmmlib.attacks.nope</span>', linked_page)
    assert not any("nope" in text for _, text in _linked(linked_page))
    block = linked_page[linked_page.index('<div class="highlight-python'):]
    assert "dmm-ref" not in block[:block.index("</pre>")]


def test_chapters_name_only_documented_objects():
    """A warning (not a failure) lists inline ``dmmlib.x.y`` that no reference entry has."""
    known = set(MODULES) | {f"{m}.{n}" for m in MODULES for n in ext.public_names(m)}
    unknown = []
    for page in sorted((ROOT / "book").glob("*.md")):
        text = re.sub(r"^```\{code-cell\}.*?^```", "", page.read_text(), flags=re.M | re.S)
        for name in re.findall(r"`(dmmlib(?:\.\w+)+)(?:\(\))?`", text):
            if name not in known:
                unknown.append(f"{page.name}: {name}")
    if unknown:
        warnings.warn("inline names with no reference entry (they stay plain code): "
                      + ", ".join(unknown), stacklevel=1)
