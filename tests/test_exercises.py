"""The chapters' exercises are sphinx-exercise blocks, each with a folded solution.

Every chapter that has an ``## Exercises`` section writes its exercises as
``{exercise}`` directives with a ``:label:``; each label has exactly one
``{solution}`` (or a gated ``{solution-start}`` ... ``{solution-end}`` pair, whose
solution may hold code cells) with ``:class: dropdown``; labels are unique across
the book.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md") if "\nkernelspec:" in p.read_text())
#: chapters that must keep an exercise section
WITH_EXERCISES = {"five_minutes", "intriguing_properties", "old_mental_model", "random_networks",
                  "clinging_dimpling", "dmm_explains", "natural_images", "critics", "rivals"}

_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}\s*(?P<arg>.*)$")


def exercise_section(text: str) -> str | None:
    """The text from ``## Exercises`` to the next level-2 heading (or the end)."""
    match = re.search(r"^## Exercises\s*$", text, flags=re.M)
    if match is None:
        return None
    rest = text[match.end():]
    nxt = re.search(r"^## ", rest, flags=re.M)
    return rest if nxt is None else rest[:nxt.start()]


def blocks(section: str) -> tuple[list[dict], list[str]]:
    """Top-level directive blocks of a section and its top-level lines outside them."""
    found: list[dict] = []
    outside: list[str] = []
    stack: list[tuple[str, dict | None]] = []
    for line in section.splitlines():
        stripped = line.rstrip()
        if stack and stripped == stack[-1][0]:
            stack.pop()
            continue
        opened = _OPEN.match(stripped)
        if opened:
            block = None
            if not stack:
                block = {"name": opened["name"], "arg": opened["arg"].strip(), "options": {}}
                found.append(block)
            stack.append((opened["fence"], block))
            continue
        if stack:
            block = stack[-1][1]
            option = re.match(r"^:(\w[\w-]*):\s*(.*)$", stripped)
            if block is not None and len(stack) == 1 and option:
                block["options"].setdefault(option[1], option[2].strip())
            continue
        outside.append(stripped)
    if stack:
        found.append({"name": "UNCLOSED", "arg": stack[-1][0], "options": {}})
    return found, outside


def exercise_problems(section: str) -> tuple[list[str], list[str]]:
    """Problems of one chapter's exercise section, and its exercise labels."""
    problems: list[str] = []
    found, outside = blocks(section)
    for line in outside:
        if re.match(r"^\s{0,3}\d+[.)]\s", line):
            problems.append(f"a plain list item outside the exercise blocks: {line[:60]!r}")
    labels = [b["options"].get("label", "") for b in found if b["name"] == "exercise"]
    if not labels:
        problems.append("no {exercise} block")
    if "" in labels:
        problems.append("an {exercise} without :label:")
    solved = Counter()
    gates = 0
    for b in found:
        if b["name"] == "UNCLOSED":
            problems.append(f"a directive opened with {b['arg']} is never closed")
        if b["name"] in ("solution", "solution-start"):
            solved[b["arg"]] += 1
            if b["options"].get("class") != "dropdown":
                problems.append(f"solution to {b['arg']} is not folded (:class: dropdown)")
            if b["arg"] not in labels:
                problems.append(f"solution to unknown exercise {b['arg']!r}")
        if b["name"] == "solution-start":
            gates += 1
        if b["name"] == "solution-end":
            gates -= 1
            if gates < 0:
                problems.append("{solution-end} without {solution-start}")
    if gates > 0:
        problems.append("{solution-start} without {solution-end}")
    for label in labels:
        if label and solved[label] != 1:
            problems.append(f"exercise {label} has {solved[label]} solutions (want 1)")
    return problems, labels


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_are_blocks_with_folded_solutions(chapter):
    section = exercise_section(chapter.read_text())
    if section is None:
        assert chapter.stem not in WITH_EXERCISES, f"{chapter.name} lost its exercises"
        return
    problems, labels = exercise_problems(section)
    assert not problems, f"{chapter.name}: " + "; ".join(problems)
    for label in labels:
        assert label.startswith(f"ex-{chapter.stem}-"), f"{chapter.name}: label {label}"


def test_exercise_labels_are_unique_across_the_book():
    labels: list[str] = []
    for chapter in CHAPTERS:
        section = exercise_section(chapter.read_text())
        if section is not None:
            labels += exercise_problems(section)[1]
    assert {c.stem for c in CHAPTERS} >= WITH_EXERCISES
    repeated = [label for label, n in Counter(labels).items() if n > 1]
    assert labels and not repeated, f"repeated exercise labels: {repeated}"


def test_sphinx_exercise_is_pinned_and_loaded():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["sphinx-exercise"])


BAD = """
## Exercises

1. A plain question.

```{exercise}
:label: ex-x-1

Q
```

```{solution} ex-x-1
A (not folded)
```

```{exercise}
:label: ex-x-2

Q
```

```{solution-start} ex-x-3
:class: dropdown
```
"""

GOOD = """
## Exercises

```{exercise}
:label: ex-x-1

Q
```

```{solution} ex-x-1
:class: dropdown

1. a list inside a solution is fine
```

```{exercise}
:label: ex-x-2

Q
```

```{solution-start} ex-x-2
:class: dropdown
```

```{code-cell} ipython3
print(2)
```

```{solution-end}
```

## Next section

1. not an exercise
"""


def test_the_checker_catches_each_problem_and_passes_a_good_section():
    problems, _ = exercise_problems(exercise_section(BAD))
    text = " | ".join(problems)
    assert "plain list item" in text
    assert "ex-x-1 is not folded" in text
    assert "unknown exercise 'ex-x-3'" in text
    assert "{solution-start} without {solution-end}" in text
    assert "exercise ex-x-2 has 0 solutions" in text
    problems, labels = exercise_problems(exercise_section(GOOD))
    assert problems == [] and labels == ["ex-x-1", "ex-x-2"]
