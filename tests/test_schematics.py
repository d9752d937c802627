"""The schematic figures (dmmlib.book.schematics) and where the chapters show them.

Each drawing is a :class:`~matplotlib.figure.Figure` with the panels and the
labelled artists its docstring names, draws the same pixels every time, and
leaves matplotlib's global state alone. Each is shown in the chapter that
introduces its explanation, in the section that introduces it, before the
experiment that tests it: moving a schematic below its experiment, or
deleting it, fails :func:`test_each_schematic_comes_before_its_experiment`.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dmmlib.book import schematics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: Per drawing: the panels' titles and labels its legends must show.
EXPECTED = {
    "pockets": (["The picture: pockets near the data", "Near one point: steps of the same length"],
                {"decision boundary", "class A", "class B", "pocket of class B",
                 "adversarial step, length $r$", "random steps, same length"}),
    "linearity": (["$\\delta = \\varepsilon\\,$sign$(w)$", "random signs",
                   "The change of $w \\cdot x$"],
                  {"aligned: $\\varepsilon\\|w\\|_1$, like $n$",
                   "random signs: $\\varepsilon\\|w\\|_2$, like $\\sqrt{n}$"}),
    "boundary_tilting": (["Boundary perpendicular to the data", "Boundary tilted against the data"],
                         {"data (a line)", "decision boundary", "shortest path: along the data",
                          "shortest path: off the data", "data margin"}),
    "concentration": (["A small error set and its neighbourhood",
                       "Share of the sphere within $\\varepsilon$ of the errors"],
                      {"error set (a cap), measure $\\mu$", "within $\\varepsilon$ of the errors",
                       "$n$ = 3", "$n$ = 1000"}),
    "stretchy_features": (["Input space", "As the network sees it"],
                          {"non-robust boundary", "robust boundary", "adversarial step"}),
    "clinging_dimpling": (["Early: clinging", "Later: dimpling"],
                          {"data manifold", "decision boundary", "boundary at initialisation",
                           "shortest step: off the manifold", "along the manifold: longer"}),
}

#: Per drawing: the chapter, the section (``None``: the chapter's opening, before its
#: first ``##`` heading) that introduces the idea, and a string that first occurs, from
#: that section's start, in the experiment that tests it.
SITES = {
    "pockets": ("old_mental_model", None, "linearity.nearest_adversarial("),
    "linearity": ("old_mental_model", "Goodfellow's linearity argument", "dim_rows"),
    "boundary_tilting": ("rivals", "Boundary tilting", "rv.tilt_experiment("),
    "concentration": ("rivals", "Concentration of measure", "rv.concentration_experiment("),
    "stretchy_features": ("critics", None, "natural.train_classifier_cached("),
    "clinging_dimpling": ("clinging_dimpling", None, "phases.train_recorded("),
}

# a code cell that trains, attacks or runs a cached experiment
EXPERIMENT = re.compile(r"\b(train|attacks|ensemble|phases)\.\w+\(|cached_result\(|"
                        r"_experiment\(|_cached\(|\.fit\(|nearest_adversarial\(")


def _render(fig: Figure) -> bytes:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return bytes(canvas.buffer_rgba())


def _legend_labels(fig: Figure) -> set[str]:
    return {t.get_text() for ax in fig.axes if ax.get_legend() is not None
            for t in ax.get_legend().get_texts()}


def test_every_public_drawing_is_tested():
    drawings = set(schematics.__all__) - {"cap_expansion"}
    assert drawings == set(EXPECTED) == set(SITES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_drawing_has_its_panels_and_labels(name):
    fig = getattr(schematics, name)()
    assert isinstance(fig, Figure)
    titles, labels = EXPECTED[name]
    assert [ax.get_title() for ax in fig.axes] == titles
    missing = labels - _legend_labels(fig)
    assert not missing, f"{name}: no legend entry {sorted(missing)}"
    width, height = fig.get_size_inches()
    assert 6 <= width <= 8 and 2 <= height <= 3.5
    assert fig._repr_png_().startswith(b"\x89PNG"), "a notebook cannot show it"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_drawing_is_deterministic_and_leaves_global_state_alone(name):
    rc = copy.deepcopy(dict(matplotlib.rcParams))
    figures = plt.get_fignums()
    state = np.random.get_state()
    first = _render(getattr(schematics, name)())
    second = _render(getattr(schematics, name)())
    assert first == second, f"{name} draws different pixels on a second call"
    assert dict(matplotlib.rcParams) == rc
    assert plt.get_fignums() == figures, "pyplot manages a schematic"
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]


def test_drawing_does_not_depend_on_rcparams():
    """Sizes and colours are passed to the artists: another style draws the same figure."""
    plain = _render(schematics.boundary_tilting())
    with matplotlib.rc_context({"lines.linewidth": 5.0, "font.size": 20.0,
                                "axes.titlesize": 20.0, "legend.fontsize": 20.0}):
        styled = _render(schematics.boundary_tilting())
    assert plain == styled


# --------------------------------------------------------------------------- cap_expansion
def test_cap_expansion_matches_the_closed_forms_in_two_and_three_dimensions():
    mu, eps = 0.05, np.array([0.0, 0.1, 0.4, 1.0])
    grow = 2 * np.arcsin(eps / 2)  # the angle a chord of length eps spans
    circle = (math.pi * mu + grow) / math.pi  # n = 2: an arc of half-angle pi * mu
    np.testing.assert_allclose(schematics.cap_expansion(2, mu, eps), circle, atol=1e-4)
    h = 1 - 2 * mu  # n = 3 (Archimedes): t is uniform on [-1, 1]
    sphere = (1 - np.cos(np.arccos(h) + grow)) / 2
    np.testing.assert_allclose(schematics.cap_expansion(3, mu, eps), sphere, atol=1e-4)


def test_cap_expansion_grows_from_mu_and_faster_in_high_dimension():
    eps = np.linspace(0, 0.3, 7)
    low, high = (schematics.cap_expansion(n, 0.01, eps) for n in (10, 1000))
    assert low[0] == pytest.approx(0.01, abs=1e-4) and high[0] == pytest.approx(0.01, abs=1e-4)
    assert np.all(np.diff(low) > 0) and np.all(high[1:] > low[1:])
    assert high[-1] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("args", [(1, 0.1, [0.1]), (2.5, 0.1, [0.1]), (5, 0.0, [0.1]),
                                  (5, 1.0, [0.1]), (5, 0.1, [-0.1])])
def test_cap_expansion_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        schematics.cap_expansion(*args)


# --------------------------------------------------------------------------- the chapters
def _cells(text: str) -> list[tuple[int, int, str]]:
    """(start, end, source) of every code cell of a MyST notebook."""
    return [(m.start(), m.end(), m.group(1)) for m in re.finditer(
        r"^```\{code-cell\}[^\n]*\n(.*?)^```$", text, re.S | re.M)]


def _headings(text: str) -> list[tuple[int, str]]:
    """(offset, title) of every ``##`` heading outside code cells."""
    cells = _cells(text)
    return [(m.start(), m.group(1).strip()) for m in re.finditer(r"^## (.+)$", text, re.M)
            if not any(a <= m.start() < b for a, b, _ in cells)]


def _placement_problems(text: str, name: str, section: str | None, marker: str) -> list[str]:
    """What is wrong with where ``text`` shows ``schematics.name()``; empty if nothing."""
    call = f"schematics.{name}()"
    hits = [(a, src) for a, _, src in _cells(text) if call in src]
    if len(hits) != 1:
        return [f"{call} is called in {len(hits)} cells, not 1"]
    at, src = hits[0]
    problems = []
    if not re.search(r"tags: \[remove-input\]", src) or "caption:" not in src \
            or "alt:" not in src or "schematic" not in src.lower():
        problems.append(f"{call}: not a remove-input figure cell with a schematic caption and alt")
    heads = _headings(text)
    before = [h for h in heads if h[0] < at]
    here = before[-1][1] if before else None
    if here != section:
        problems.append(f"{call} is in section {here!r}, not {section!r}")
    start = before[-1][0] if before else 0
    for a, _, cell in _cells(text):
        if start <= a < at and EXPERIMENT.search(cell):
            problems.append(f"{call} comes after an experiment cell: {cell[:60]!r}")
            break
    first = text.find(marker, start)
    if first == -1:
        problems.append(f"the experiment {marker!r} is not in the chapter after {section!r}")
    elif first < at:
        problems.append(f"{call} comes after its experiment {marker!r}")
    return problems


@pytest.mark.parametrize("name", sorted(SITES))
def test_each_schematic_comes_before_its_experiment(name):
    chapter, section, marker = SITES[name]
    text = (ROOT / "book" / f"{chapter}.md").read_text()
    assert not _placement_problems(text, name, section, marker)
    others = [p.name for p in sorted((ROOT / "book").glob("*.md"))
              if p.stem != chapter and f"schematics.{name}(" in p.read_text()]
    assert not others, f"schematics.{name} is also shown in {others}"


def test_placement_check_fails_when_a_schematic_is_moved_or_deleted():
    text = (ROOT / "book" / "rivals.md").read_text()
    chapter, section, marker = SITES["boundary_tilting"]
    cell = next(c for c in re.findall(r"^```\{code-cell\}[^\n]*\n.*?^```$", text, re.S | re.M)
                if "schematics.boundary_tilting()" in c)
    without = text.replace(cell, "")
    assert _placement_problems(without, "boundary_tilting", section, marker)
    i = without.index(marker)
    end = without.index("\n```\n", i) + 5
    moved = without[:end] + "\n" + cell + "\n" + without[end:]
    assert any("after its experiment" in p
               for p in _placement_problems(moved, "boundary_tilting", section, marker))
    heading = without.index("## Adversarial spheres\n") + len("## Adversarial spheres\n")
    elsewhere = without[:heading] + cell + "\n\n" + without[heading:]
    assert any("is in section" in p
               for p in _placement_problems(elsewhere, "boundary_tilting", section, marker))
