"""The built book's prose, read as text: defects that templates and Markdown let through.

Run with the browser test (``make test-browser``; skipped unless
``DMM_BROWSER_TEST=1``) on the HTML that ``make test-build`` or ``make book``
wrote. Each check below is a kind of defect a reader met in an earlier build:

* literal Markdown emphasis (``*specific directions*``) in glued text, which
  ``{glue:text}`` does not parse;
* typographic replacements such as ``(c)`` turned into a copyright sign;
* a range whose ends print alike ("6 to 6 times");
* a bound that rounding made false ("at most 0%" beside a 0.2% in the table,
  "at least 100.0%", "100% or more");
* "a" before a vowel ("a Ankle boot");
* a section number typed into a heading that Sphinx numbers too ("6.2. 1.");
* a profile named in the prose that is not the one this build ran;
* numbers with six or more decimals (a raw DataFrame).

Code, math and the API reference's signatures are not prose and are skipped.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("DMM_HTML", ROOT / "_build" / "html"))

if os.environ.get("DMM_BROWSER_TEST") != "1":
    pytest.skip("rendered-text test: run `make test-browser` (sets DMM_BROWSER_TEST=1)",
                allow_module_level=True)


class _Prose(HTMLParser):
    """Visible text of the page's article, without code, math, scripts or signatures."""

    SKIP_TAGS = {"script", "style", "pre", "code", "kbd", "samp"}
    SKIP_CLASSES = {"math", "MathJax", "sig", "highlight", "cell_input", "output", "cell_output",
                    "footnote", "citation", "docutils container"}

    def __init__(self) -> None:
        super().__init__()
        self.article = 0
        self.stack: list[bool] = []  # per open tag: does it start a skipped region?
        self.skip = 0
        self.parts: list[str] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag == "article" and "bd-article" in classes:
            self.article += 1
        if tag in {"br", "img", "hr", "input", "meta", "link", "wbr", "col"}:
            return
        skipped = tag in self.SKIP_TAGS or bool(classes & self.SKIP_CLASSES) \
            or tag in {"dt"} and "sig" in " ".join(classes)
        self.stack.append(skipped)
        if skipped and self.article and not self.skip:
            self.parts.append(" \u25af ")  # code or math stood here: no word to read across
        self.skip += skipped
        if tag in {"h1", "h2", "h3", "h4"} and self.article:
            self._heading = []

    def handle_endtag(self, tag):
        if tag in {"br", "img", "hr", "input", "meta", "link", "wbr", "col"}:
            return
        if self.stack:
            self.skip -= self.stack.pop()
        if tag in {"h1", "h2", "h3", "h4"} and self._heading is not None:
            self.headings.append(re.sub(r"\s+", " ", "".join(self._heading)).strip())
            self._heading = None
        if tag == "article" and self.article:
            self.article -= 1

    def handle_data(self, data):
        if self.article and not self.skip:
            self.parts.append(data)
            if self._heading is not None:
                self._heading.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.parts))


def _pages() -> list[Path]:
    if not (HTML / "index.html").is_file():
        return []
    return sorted(p for p in (HTML / "book").rglob("*.html")
                  if "reference" not in p.parts and p.stat().st_size > 2000)


def _read(page: Path) -> _Prose:
    parser = _Prose()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _build_profile() -> str | None:
    """The profile this build ran, read from the execution page the build wrote."""
    page = HTML / "book" / "execution.html"
    if not page.is_file():
        return None
    m = re.search(r">\s*profile\s*</td>\s*<td[^>]*>\s*(\w+)\s*<", page.read_text("utf-8"))
    return m.group(1) if m else None


PAGES = _pages()
_PID = [str(p.relative_to(HTML)) for p in PAGES]

CHECKS: dict[str, re.Pattern[str]] = {
    "literal Markdown emphasis": re.compile(
        r"(?<![\w*\\])\*[A-Za-z][^*]{0,60}?[A-Za-z.]\*(?![\w*])"),
    "a typographic replacement (write (c), (r), (tm) as text)": re.compile(r"[©®™]"),
    "a range whose ends print alike": re.compile(
        r"(?<![\d.\-−])(\d+(?:\.\d+)?)(%?) ?(?:to|–) \1\2(?![\d.])"),
    "a bound made false by rounding": re.compile(
        r"at most 0(?:\.0+)?%|at least 100(?:\.0+)?%|100(?:\.0+)?% or more|"
        r"(?:fewer|less) than 0(?:\.0+)?%|more than 100(?:\.0+)?%"),
    "'a' before a vowel": re.compile(
        r"(?<![\w-])a (?!one\b|one-|once\b|uni|use|usu|eu|European\b)[AEIOaeio][a-z]+"),
    "a number with six or more decimals (a raw table?)": re.compile(r"\b\d+\.\d{6,}\b"),
}


def _context(text: str, m: re.Match[str]) -> str:
    return "..." + text[max(0, m.start() - 50): m.end() + 30] + "..."


@pytest.mark.parametrize("page", PAGES, ids=_PID)
def test_prose_has_no_template_defects(page):
    prose = _read(page)
    text = prose.text
    problems = [f"{name}: {_context(text, m)}" for name, rx in CHECKS.items()
                for m in rx.finditer(text)]
    problems += [f"a heading numbered twice: {h!r}" for h in prose.headings
                 if re.match(r"^\d+(?:\.\d+)*\.? \d+\. ", h)]
    profile = _build_profile()
    if profile is not None:
        for m in re.finditer(r"\b[Ii]n the (ci|cpu|gpu) profile\b", text):
            if m.group(1) != profile:
                problems.append(f"names the {m.group(1)} profile in a {profile} build: "
                                f"{_context(text, m)}")
    assert not problems, f"{page.relative_to(HTML)}:\n  " + "\n  ".join(problems)


def test_the_build_profile_is_readable():
    """The profile check above needs the execution page's table; it must stay readable."""
    if not PAGES:
        pytest.fail(f"{HTML} has no built book: run `make test-build` first")
    assert _build_profile() in {"ci", "cpu", "gpu"}


_CASES = {
    "literal Markdown emphasis": ("are *specific directions*, not", "a real emphasis"),
    "a range whose ends print alike": ("noise needs 6 to 6 times", "noise needs 5 to 6 times"),
    "a bound made false by rounding": ("at most 0% of", "at most 0.2% of"),
    "'a' before a vowel": ("a Ankle boot", "an Ankle boot, a one-layer net, a unit"),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_each_check_catches_its_defect_and_passes_the_fix(name):
    bad, good = _CASES[name]
    assert CHECKS[name].search(bad) and not CHECKS[name].search(good)


class _Tables(HTMLParser):
    """Header and body cell texts of every table in the page's article."""

    def __init__(self) -> None:
        super().__init__()
        self.article = 0
        self.cell: list[str] | None = None
        self.kind = ""
        self.headers: list[str] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "article" and "bd-article" in (dict(attrs).get("class") or "").split():
            self.article += 1
        elif tag in {"th", "td"} and self.article:
            self.cell, self.kind = [], tag
        elif tag == "br" and self.cell is not None:
            self.cell.append(" ")

    def handle_endtag(self, tag):
        if tag in {"th", "td"} and self.cell is not None:
            text = re.sub(r"\s+", " ", "".join(self.cell)).strip()
            (self.headers if self.kind == "th" else self.cells).append(text)
            self.cell = None
        elif tag == "article" and self.article:
            self.article -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


#: what a raw DataFrame shows and a table formatted for reading does not
TABLE_CHECKS: dict[str, re.Pattern[str]] = {
    "a header in snake_case (name the column in words)": re.compile(r"\b[a-z]+_[a-z0-9_]+\b"),
    "a number with six or more decimals": re.compile(r"\b\d+\.\d{6,}\b"),
    "a Python literal (True, False, nan, None)": re.compile(r"^(?:True|False|nan|NaN|None)$"),
}


def test_table_checks_catch_a_raw_dataframe():
    raw = ("<article class='bd-article'><table><tr><th>d_boundary</th><th>eps</th></tr>"
           "<tr><td>0.100000</td><td>True</td></tr></table></article>")
    tables = _Tables()
    tables.feed(raw)
    assert TABLE_CHECKS["a header in snake_case (name the column in words)"].search(
        tables.headers[0])
    assert TABLE_CHECKS["a number with six or more decimals"].search(tables.cells[0])
    assert TABLE_CHECKS["a Python literal (True, False, nan, None)"].search(tables.cells[1])
    fine = _Tables()
    fine.feed("<article class='bd-article'><table><tr><th>distance to the boundary</th></tr>"
              "<tr><td>0.123</td></tr></table></article>")
    assert not any(rx.search(t) for rx in TABLE_CHECKS.values()
                   for t in fine.headers + fine.cells)


@pytest.mark.parametrize("page", PAGES, ids=_PID)
def test_tables_are_formatted_for_reading(page):
    tables = _Tables()
    tables.feed(page.read_text(encoding="utf-8"))
    problems = []
    for name, rx in TABLE_CHECKS.items():
        texts = tables.headers if "header" in name else tables.headers + tables.cells
        problems += [f"{name}: {t[:60]!r}" for t in texts if rx.search(t)]
    assert not problems, f"{page.relative_to(HTML)}:\n  " + "\n  ".join(sorted(set(problems)))
