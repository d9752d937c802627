"""The book's one notation: the notation page, its glossary and the chapters' use of both.

* every ``{term}`` link in the book names a term of the glossary on
  ``book/notation.md``, and every glossary term is linked from a chapter;
* the notation page is in ``_toc.yml``;
* the symbols the page gives distinct meanings keep them: ``\\alpha`` is the
  initialisation scale and ``\\tau`` the step size of PGD, so no chapter writes
  ``\\alpha`` beside a step (as PGD's update rule once did) or ``\\tau`` beside an
  initialisation; and the clinging measure, a norm ratio, is not called a
  fraction.

Each check runs on the book and on a sentence it must catch.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTATION = ROOT / "book" / "notation.md"
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md")
                  if re.search(r"^kernelspec:", p.read_text(), re.M))

GLOSSARY_BLOCK = re.compile(r"^(`{3,})\{glossary\}[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")
CODE_CELL = re.compile(r"^(`{3,})\{code-cell\}.*?^\1\s*$", re.M | re.S)


def glossary_terms(text: str) -> list[str]:
    """The terms of every ``{glossary}`` block: its unindented lines (definitions are indented)."""
    terms = []
    for block in GLOSSARY_BLOCK.finditer(text):
        for line in block.group(2).splitlines():
            if line.strip() and not line[0].isspace() and not line.startswith(":"):
                terms.append(line.strip())
    return terms


def term_targets(text: str) -> list[str]:
    """The target of every ``{term}`` role: ``text <target>`` or the text itself."""
    out = []
    for m in TERM_ROLE.finditer(text):
        body = m.group(1)
        t = re.search(r"<([^<>]+)>\s*$", body)
        out.append(re.sub(r"\s+", " ", (t.group(1) if t else body)).strip())
    return out


def prose(text: str) -> str:
    """A chapter without its code cells (their labels are checked by the chapters' runs)."""
    return CODE_CELL.sub("", text)


# The PGD step written with the initialisation scale's symbol, or the reverse: a symbol
# within a few words of the other meaning's name (e.g. "x_t + \alpha\, sign", "step size
# $\alpha$", "initialisation scale $\tau$").
MISUSED = {
    r"\alpha": re.compile(r"(?:step(?: size| length)?|x_t \+)[^.$]{0,30}\$?\s*\\alpha\b"
                          r"|\\alpha\s*\\,?\s*\\operatorname\{sign\}", re.I),
    r"\tau": re.compile(r"initiali[sz]ation(?: scale)?[^.$]{0,30}\$\\tau\b", re.I),
}
FRACTION = re.compile(r"clinging measure[^.]{0,20}\b(?:the |a )?fraction\b", re.I)


def misused_symbols(text: str) -> list[str]:
    return [f"{sym}: {m.group(0)!r}" for sym, rx in MISUSED.items() for m in rx.finditer(text)]


GLOSSARY = glossary_terms(NOTATION.read_text())


def test_the_glossary_exists_and_its_terms_are_unique():
    assert len(GLOSSARY) >= 20, GLOSSARY
    lower = [t.lower() for t in GLOSSARY]
    assert len(set(lower)) == len(lower), sorted(t for t in lower if lower.count(t) > 1)


def test_glossary_parser_on_a_small_glossary():
    text = ("```{glossary}\nPGD\n  Projected gradient descent.\n\n"
            "on-manifold fraction\n  A ratio.\n```\n")
    assert glossary_terms(text) == ["PGD", "on-manifold fraction"]
    assert term_targets("a {term}`PGD` and {term}`fractions <on-manifold fraction>`") == [
        "PGD", "on-manifold fraction"]


@pytest.mark.parametrize("page", [NOTATION, *CHAPTERS, ROOT / "book" / "intro.md"],
                         ids=lambda p: p.stem)
def test_every_term_link_names_a_glossary_term(page):
    known = {t.lower() for t in GLOSSARY}
    missing = [t for t in term_targets(page.read_text()) if t.lower() not in known]
    assert not missing, f"{page.name}: {{term}} targets not in the glossary: {missing}"


def test_every_glossary_term_is_linked_from_a_chapter():
    linked = {t.lower() for ch in CHAPTERS for t in term_targets(ch.read_text())}
    unlinked = [t for t in GLOSSARY if t.lower() not in linked]
    assert not unlinked, f"glossary terms no chapter links to: {unlinked}"


def test_the_notation_page_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())

    def files(node):
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [f for v in node.values()
                                                                   for f in files(v)]
        if isinstance(node, list):
            return [f for v in node for f in files(v)]
        return []

    assert "book/notation" in files(toc.get("parts", []))


def test_the_notation_page_gives_the_step_and_the_init_scale_different_symbols():
    text = NOTATION.read_text()
    assert re.search(r"^\| \$\\tau\$ \| the step size of \{term\}`PGD`", text, re.M)
    assert re.search(r"^\| \$\\alpha\$ \| the \{term\}`initialisation scale`", text, re.M)
    # the conversions the chapters link to
    for needed in (r"\sqrt n\,\lVert\delta\rVert_\infty",
                   r"\mathrm{RMS}(\delta) = \frac{\lVert\delta\rVert_2}{\sqrt n}",
                   "2.8", r"\sqrt{k/n}"):
        assert needed in text, needed


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_keep_alpha_for_the_init_scale_and_tau_for_the_pgd_step(chapter):
    bad = misused_symbols(prose(chapter.read_text()))
    assert not bad, f"{chapter.name}: {bad}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_clinging_measure_is_not_called_a_fraction(chapter):
    bad = FRACTION.findall(chapter.read_text())
    assert not bad, f"{chapter.name}: {bad}"


@pytest.mark.parametrize("sentence", [
    r"x_{t+1} = \Pi\Big(x_t + \alpha\,\operatorname{sign} \nabla_x \mathcal{L}\Big)",
    r"each step has a step size $\alpha = 0.01$",
    r"with an initialisation scale $\tau = 4$",
])
def test_the_symbol_check_catches_a_misuse(sentence):
    assert misused_symbols(sentence)


@pytest.mark.parametrize("sentence", [
    r"the **initialisation scale** $\alpha$ multiplies every parameter",
    r"x_t + \tau\,\operatorname{sign} \nabla_x \mathcal{L}",
    r"at a large initialisation ($\alpha = 8$) for the main run",
])
def test_the_symbol_check_passes_the_book_s_usage(sentence):
    assert not misused_symbols(sentence)


def test_the_fraction_check_catches_the_old_wording():
    assert FRACTION.search("* the **clinging measure**: the fraction of the boundary normal")
    assert not FRACTION.search("the clinging measure: the off-subspace share of the normal")
