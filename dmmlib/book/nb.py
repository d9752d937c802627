"""Notebook helpers that work in the built book, in Jupyter and on Colab.

:func:`glue` stores a value under a name so the book's prose can quote it
(``{glue:text}`name```) with myst-nb; where myst-nb is not installed (Colab)
it shows the value instead, so the reader still sees every number.
:func:`explore` gives the reader a slider in Jupyter/Colab and degrades to
small multiples in the static HTML; :func:`profile_note` is the shared note on
what the GPU profile changes.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["glue", "glue_outcome", "in_colab", "static_figures", "explore", "profile_note",
           "Setup", "setup"]


def in_colab() -> bool:
    """True inside Google Colab."""
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


_EMPHASIS = re.compile(r"(?<![\w*\\])\*{1,2}([A-Za-z][^*\n]*?)\*{1,2}(?![\w*])")


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue ``value`` under ``name`` for the book's prose (see ``myst_nb.glue``).

    A plain string is shown as text (``{glue:text}``), where Markdown is not
    parsed, so its ``*emphasis*`` markers would reach the page as literal
    asterisks: they are removed. To keep the emphasis, glue
    ``IPython.display.Markdown(text)`` and show it with ``{glue:md}``.

    Without myst-nb, the value is displayed as ``name = value`` (figures are
    displayed as they are), so a reader on Colab sees what the prose quotes.
    """
    if isinstance(value, str):
        value = _EMPHASIS.sub(r"\1", value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        from IPython.display import display as _display

        if hasattr(value, "savefig"):
            _display(value)
        else:
            _display(f"{name} = {value}")
        return
    _glue(name, value, display=display)


def glue_outcome(name: str, outcome: str, sentences: dict[str, str]) -> str:
    """Glue the sentence written for the outcome the run produced, and return it.

    The prose around a verdict is chosen by its outcome: the chapter writes one
    sentence for each of :data:`dmmlib.nulls.OUTCOMES` *before* the run, and
    the run picks one. A missing outcome is an error, so no outcome can reach
    the page without its own words.

    Parameters
    ----------
    name : str
        The glue name; the sentence is glued as Markdown, to be shown with
        ``{glue:md}`name```.
    outcome : str
        One of ``"supports"``, ``"contradicts"``, ``"cannot distinguish"``.
    sentences : dict of str to str
        A sentence for every outcome.
    """
    from ..nulls import OUTCOMES

    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: unknown value {outcome!r}; choose one of {list(OUTCOMES)}")
    missing = [o for o in OUTCOMES if o not in sentences]
    if missing:
        raise ValueError(f"sentences: no sentence for the outcome(s) {missing}")
    text = sentences[outcome]
    from IPython.display import Markdown

    glue(name, Markdown(text))  # shown with {glue:md}`name`
    return text


def static_figures() -> bool:
    """True when interactive controls should be drawn as static figures.

    The book's HTML build sets ``DMM_STATIC_FIGURES=1`` (a slider without a
    kernel behind it would do nothing); Jupyter and Colab get the controls.
    """
    flag = os.environ.get("DMM_STATIC_FIGURES", "").strip().lower()
    if flag in {"1", "true", "yes", "on"}:
        return True
    return importlib.util.find_spec("ipywidgets") is None


def _title_above(ax: Any, line: str) -> None:
    """Put ``line`` above the title ``draw`` gave the panel (or make it the title)."""
    own = ax.get_title()
    if not own:
        ax.set_title(line)
        return
    size = ax.title.get_fontsize()
    ax.set_title(f"{line}\n{own}", fontsize=size)


def explore(
    draw: Callable[[Any, Any], None],
    values: Sequence[Any],
    *,
    label: str,
    static_values: Sequence[Any] | None = None,
    ncols: int = 4,
    panel_size: tuple[float, float] = (3.0, 2.6),
    format_value: Callable[[Any], str] = str,
) -> None:
    """Let the reader move ``label`` through ``values`` and watch ``draw(value, ax)``.

    In Jupyter or Colab this is an ipywidgets slider; in the built book (see
    :func:`static_figures`) it degrades to small multiples of
    ``static_values`` (default: up to ``ncols`` values spread over ``values``),
    so the HTML shows the same story without a kernel.

    Parameters
    ----------
    draw: draws one panel for a value into a matplotlib ``Axes``; a title it
        gives the panel is kept, below the line ``label = value``.
    values: the values the slider offers, in order.
    label: the slider's name (also the first line of each panel's title).
    """
    import matplotlib.pyplot as plt

    values = list(values)
    if not values:
        raise ValueError("values: need at least one value to explore")
    if not callable(draw):
        raise TypeError(f"draw: expected a callable, got {type(draw).__name__}")
    if static_figures():
        if static_values is None:
            k = min(ncols, len(values))
            idx = sorted({round(i * (len(values) - 1) / max(k - 1, 1)) for i in range(k)})
            static_values = [values[i] for i in idx]
        n = len(static_values)
        cols = min(ncols, n)
        rows = (n + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows),
                                 squeeze=False)
        for ax, v in zip(axes.flat, static_values, strict=False):
            draw(v, ax)
            _title_above(ax, f"{label} = {format_value(v)}")
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        fig.tight_layout()
        plt.show()
        return
    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=[(format_value(v), v) for v in values],
                                     value=values[0], description=label,
                                     continuous_update=False,
                                     layout=widgets.Layout(width="60%"),
                                     style={"description_width": "initial"})

    def show(value: Any) -> None:
        fig, ax = plt.subplots(figsize=(panel_size[0] * 1.6, panel_size[1] * 1.6))
        draw(value, ax)
        _title_above(ax, f"{label} = {format_value(value)}")
        plt.show()

    widgets.interact(show, value=slider)


def profile_note(profile: Any, device: Any, gpu_does: str) -> None:
    """The book's shared note on heavy chapters: what the GPU profile changes.

    Shown as Markdown, so it renders in the book, in Jupyter and on Colab.
    """
    from IPython.display import Markdown, display

    display(Markdown(
        f"> **Runs on a CPU; scales up on a GPU.** This run used the `{profile.name}` "
        f"profile on `{device}`. The chapter runs without a GPU (profiles `ci` and "
        f"`cpu`); with CUDA present the `gpu` profile {gpu_does}. On Colab choose "
        "*Runtime -> Change runtime type -> GPU* and run all cells again; set "
        "`DMM_PROFILE` to choose a profile by hand."
    ))


@dataclass(frozen=True)
class Setup:
    """What a chapter's setup cell decided (see :func:`setup`).

    Attributes
    ----------
    profile: the :class:`dmmlib.profiles.Profile` in use.
    device: the ``torch.device`` experiments run on.
    sizes: the chapter's own sizes for this profile (``{}`` when it has none).
    key: ``{"dmmlib": version, "profile": name, **sizes}``, part of every cache key.
    generator: a ``torch.Generator`` seeded with the chapter's seed.
    """

    profile: Any
    device: Any
    sizes: dict = field(default_factory=dict)
    key: dict = field(default_factory=dict)
    generator: Any = None


def setup(chapter_note: str = "", seed: int = 0, threads: int | None = None,
          sizes: Mapping[str, Mapping[str, Any]] | None = None) -> Setup:
    """A chapter's setup in one call: style, profile, device, seed and the profile note.

    Sets the book's figure style, picks the profile and device, seeds Python,
    NumPy and PyTorch, and displays one line (dmmlib version, profile, device)
    followed, when ``chapter_note`` is given, by :func:`profile_note`.

    Parameters
    ----------
    chapter_note: what the GPU profile changes in this chapter (a phrase that
        completes "with CUDA present the ``gpu`` profile ..."); empty: no note.
    seed: the seed passed to :func:`dmmlib.device.seed_everything`.
    threads: when given, ``torch.set_num_threads(threads)`` (small networks run
        faster on one thread).
    sizes: the chapter's sizes, one dict per profile name; a value ``None``
        takes the profile's field of the same name (e.g. ``n_attack``).

    Returns
    -------
    Setup
        ``.profile``, ``.device``, ``.sizes``, ``.key`` and ``.generator``.

    Raises
    ------
    KeyError
        If ``sizes`` has no entry for the profile in use.
    """
    import torch
    from IPython.display import Pretty, display

    import dmmlib
    from dmmlib import device as _device
    from dmmlib import profiles as _profiles
    from dmmlib.book import plot

    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads: expected a positive int, got {threads!r}")
    if not isinstance(chapter_note, str):
        raise TypeError(f"chapter_note: expected a str, got {type(chapter_note).__name__}")
    profile = _profiles.get_profile()
    chosen: dict = {}
    if sizes is not None:
        if profile.name not in sizes:
            raise KeyError(f"sizes: no entry for profile {profile.name!r}")
        chosen = {k: (getattr(profile, k) if v is None else v)
                  for k, v in sizes[profile.name].items()}
    plot.set_style()
    if threads is not None:
        torch.set_num_threads(threads)
    dev = _device.get_device()
    gen = _device.seed_everything(seed)
    display(Pretty(f"dmmlib {dmmlib.__version__} | profile '{profile.name}' | device {dev}"))
    if chapter_note:
        profile_note(profile, dev, chapter_note)
    key = {"dmmlib": dmmlib.__version__, "profile": profile.name, **chosen}
    return Setup(profile=profile, device=dev, sizes=chosen, key=key, generator=gen)
