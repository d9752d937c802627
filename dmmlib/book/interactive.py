"""Interactive figures that work offline: in the built book, in Jupyter and on Colab.

Two kinds of moving pictures:

* :func:`animation_html` turns a matplotlib figure and a per-frame drawing
  function into a self-contained HTML/JavaScript player
  (``FuncAnimation.to_jshtml``): the frames are embedded as PNG images, so it
  needs no kernel, no widget manager and no network;
* :func:`boundary_surface_figure` builds a plotly 3-D figure of a decision
  surface over training (a slider over checkpoints; rotate and zoom with the
  mouse), and :func:`plotly_html` turns any plotly figure into HTML that
  carries its own copy of plotly.js.

How plotly.js reaches the reader, without a CDN
-----------------------------------------------
plotly's Python package ships the matching ``plotly.min.js`` (about 5 MB).
:func:`plotly_html` inlines that file into the *first* figure a kernel shows
(``include_plotlyjs="once"``); later figures reuse the ``window.Plotly`` that
script defined, since a notebook's outputs share one page (in the built book,
in Jupyter Lab and Notebook). The book therefore needs no static file, no
configuration and no network, and the library always matches the Python
package that wrote the figure. On Colab every output lives in its own frame,
so there every figure carries the library.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any, cast

import numpy as np
import torch

from .._validate import check_tensor
from ..geometry import Surface3D
from .nb import in_colab

__all__ = ["plotly_html", "animation_html", "boundary_surface_figure"]

_PLOTLYJS_SHOWN = False
_FIGURE_IDS = itertools.count()


def _reset_plotlyjs() -> None:
    """Forget that plotly.js was shown (tests; a fresh kernel starts this way)."""
    global _PLOTLYJS_SHOWN
    _PLOTLYJS_SHOWN = False


def plotly_html(fig: object, *, include_plotlyjs: str | bool = "once", height: int | None = None,
                div_id: str | None = None) -> object:
    """A plotly figure as an ``IPython.display.HTML`` object that needs no network.

    Parameters
    ----------
    fig: a ``plotly.graph_objects.Figure``.
    include_plotlyjs: ``"once"`` (default): inline plotly.js (from the installed
        plotly package) into the first figure of this kernel, and into every
        figure on Colab; ``True``: always inline it; ``False``: never (the
        page must already have ``window.Plotly``).
    height: the figure's height in pixels (default: its layout height or 520).
    div_id: the HTML id of the figure (default: a counter, so re-running a
        notebook gives the same ids).

    Returns
    -------
    ``IPython.display.HTML``; display it, or make it a cell's last expression.
    """
    import plotly.graph_objects as go
    import plotly.io as pio
    from IPython.display import HTML

    global _PLOTLYJS_SHOWN
    if not isinstance(fig, go.Figure):
        raise TypeError(f"fig: expected a plotly Figure, got {type(fig).__name__}")
    if include_plotlyjs not in ("once", True, False):
        raise ValueError(f"include_plotlyjs: expected 'once', True or False, got "
                         f"{include_plotlyjs!r}")
    if height is not None and (isinstance(height, bool) or not isinstance(height, int)
                               or height < 1):
        raise ValueError(f"height: expected a positive int (pixels) or None, got {height!r}")
    if div_id is not None and (not isinstance(div_id, str) or not div_id
                               or any(ch in div_id for ch in " \"'<>&")):
        raise ValueError(f"div_id: expected a non-empty HTML id (no spaces, quotes or "
                         f"<>&), got {div_id!r}")
    if include_plotlyjs == "once":
        include = in_colab() or not _PLOTLYJS_SHOWN
    else:
        include = bool(include_plotlyjs)
    h = int(height or fig.layout.height or 520)
    div = div_id or f"dmm-plotly-{next(_FIGURE_IDS)}"
    html = pio.to_html(fig, full_html=False, include_plotlyjs=include, include_mathjax=False,
                       auto_play=False, default_width="100%", default_height=f"{h}px",
                       div_id=div, config={"displaylogo": False, "responsive": True})
    # Where the library is missing (an output that carried it was cleared and the
    # page reloaded), say so instead of leaving an empty box.
    guard = (f'<script>if (typeof window.Plotly === "undefined") {{ var d = document.'
             f'getElementById("{div}"); if (d) {{ d.innerHTML = "<p>plotly.js is not loaded: '
             f're-run the notebook from the top.</p>"; }} }}</script>')
    if include:
        _PLOTLYJS_SHOWN = True
    return HTML(html + guard)


def animation_html(fig: object, draw: Callable[[int], object], frames: Iterable[int] | int, *,
                   interval: int = 250, default_mode: str = "once",
                   alt: str = "", colors: int | None = 256) -> object:
    """A matplotlib animation as a self-contained HTML/JavaScript player.

    ``draw(i)`` redraws the figure for frame ``i`` (it may clear and redraw
    the axes). Every frame is rendered once, embedded as a PNG, and played by
    matplotlib's JavaScript player (``FuncAnimation.to_jshtml``), which works
    in the static book without a kernel or a network. The figure is closed
    afterwards, so the notebook does not also show it as a still.

    Parameters
    ----------
    fig: the ``matplotlib.figure.Figure`` to animate.
    draw: called with each frame number.
    frames: frame numbers, or their count.
    interval: milliseconds between frames.
    default_mode: ``"once"``, ``"loop"`` or ``"reflect"``.
    alt: alternative text of the player's image (what the animation shows), for
        screen readers and for readers whose browser shows no images.
    colors: each frame is stored as a palette PNG of at most this many colours
        (2 to 256, no dithering), about a third of the size of matplotlib's
        full-colour frames and indistinguishable for plots drawn in a few flat
        colours; ``None`` keeps the frames as matplotlib wrote them.

    Returns
    -------
    ``IPython.display.HTML``.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    if not callable(draw):
        raise TypeError(f"draw: expected a callable, got {type(draw).__name__}")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (
            math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval: expected a positive number of milliseconds, got "
                         f"{interval!r}")
    if default_mode not in ("once", "loop", "reflect"):
        raise ValueError(f"default_mode: expected 'once', 'loop' or 'reflect', got "
                         f"{default_mode!r}")
    if not isinstance(alt, str):
        raise TypeError(f"alt: expected a string, got {type(alt).__name__}")
    if colors is not None and (isinstance(colors, bool) or not isinstance(colors, int)
                               or not 2 <= colors <= 256):
        raise ValueError(f"colors: expected an integer from 2 to 256 or None, got {colors!r}")
    frame_list = list(range(frames)) if isinstance(frames, int) else list(frames)
    if not frame_list:
        raise ValueError("frames: need at least one frame")
    anim = FuncAnimation(fig, cast(Any, draw), frames=frame_list, interval=int(interval),
                         blit=False, repeat=default_mode != "once")
    try:
        html = anim.to_jshtml(default_mode=default_mode)
    finally:
        plt.close(fig)
    html = _offline_player(html)
    if colors is not None:
        html = _palette_frames(html, colors)
    if alt:
        html = html.replace('<img id="_anim_img', f'<img alt="{escape(alt, quote=True)}" '
                            'id="_anim_img', 1)
    return HTML(html)


# matplotlib's player loads Font Awesome 4 from a CDN for its button icons; offline
# that request fails (a console error) and the buttons are blank. Plain Unicode
# glyphs need nothing (each button keeps matplotlib's aria-label).
_PLAYER_ICONS = {  # characters every default font has (the media-control block does not)
    "fa fa-minus": "\u2212", "fa fa-plus": "+",
    "fa fa-fast-backward": "|\u25c0\ufe0e", "fa fa-step-backward": "\u25c2",
    "fa fa-play fa-flip-horizontal": "\u25c0\ufe0e", "fa fa-pause": "\u2016",
    "fa fa-play": "\u25b6\ufe0e", "fa fa-step-forward": "\u25b8",
    "fa fa-fast-forward": "\u25b6\ufe0e|",
}


def _offline_player(html: str) -> str:
    """``html`` of ``FuncAnimation.to_jshtml`` without its CDN stylesheet, icons as glyphs."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">\s*', "",
                  html)
    return re.sub(r'<i class="(fa [^"]*)"></i>',
                  lambda m: f'<span aria-hidden="true">{_PLAYER_ICONS.get(m.group(1), "?")}</span>',
                  html)


#: an embedded frame of matplotlib's player (a backslash and a newline break its base64 text)
_FRAME = re.compile(r'(frames\[\d+\] = "data:image/)png;base64,([A-Za-z0-9+/=\\\n]*)"')


def _palette_frames(html: str, colors: int) -> str:
    """``html`` of the player with each embedded PNG frame re-encoded as a palette PNG."""
    import base64
    import io

    from PIL import Image

    def requantize(match: re.Match[str]) -> str:
        with Image.open(io.BytesIO(base64.b64decode(match.group(2)))) as im:
            small = im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                               dither=Image.Dither.NONE)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
        return f'{match.group(1)}png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}"'

    return _FRAME.sub(requantize, html)


def _numpy(t: torch.Tensor | np.ndarray, dtype: type) -> np.ndarray:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return a.astype(dtype)


def boundary_surface_figure(
    surfaces: Sequence[tuple[str, Surface3D]],
    points: torch.Tensor,
    labels: torch.Tensor,
    *,
    manifold: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str = "",
    class_colors: Sequence[str] = ("#0072B2", "#D55E00"),
    boundary_color: str = "#7f7f7f",
    class_names: Sequence[str] = ("class 0", "class 1"),
    height: int = 560,
) -> object:
    """A rotatable 3-D figure of a decision surface at several moments of training.

    One frame per ``(label, surface)`` pair (e.g. ``("step 100", S)`` with ``S``
    from :func:`dmmlib.geometry.decision_surface_3d`), chosen with a slider
    under the figure; the training points are drawn in their class colours
    and, if given, the data manifold as a translucent surface. The camera
    stays where the reader left it when the slider moves.

    Parameters
    ----------
    surfaces: ``(label, Surface3D)`` pairs in training order.
    points: (N, 3) training points; labels: (N,) classes 0/1.
    manifold: optional ``(X, Y, Z)`` grids of the data surface.
    title, class_colors, boundary_color, class_names, height: appearance.

    Returns
    -------
    ``plotly.graph_objects.Figure`` (show it with :func:`plotly_html`).
    """
    import plotly.graph_objects as go

    if isinstance(surfaces, (str, bytes)) or not isinstance(surfaces, Sequence) or not surfaces:
        raise TypeError("surfaces: expected a non-empty list of (label, Surface3D) pairs")
    for i, item in enumerate(surfaces):
        if (not isinstance(item, (tuple, list)) or len(item) != 2
                or not isinstance(item[1], Surface3D)):
            raise TypeError(f"surfaces[{i}]: expected a (label, Surface3D) pair")
    pts = check_tensor(points, "points", min_ndim=2)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points: expected shape (N, 3), got {tuple(pts.shape)}")
    if not isinstance(labels, torch.Tensor) or labels.shape != (pts.shape[0],):
        raise ValueError(f"labels: expected a tensor of shape ({pts.shape[0]},)")

    def mesh(surface: Surface3D, name: str) -> object:
        v = _numpy(surface.vertices, np.float32).reshape(-1, 3)
        f = surface.faces.detach().cpu().numpy().reshape(-1, 3)
        f = f.astype(np.uint16 if v.shape[0] < 65536 else np.int32)
        if f.shape[0] == 0:  # no boundary inside the box: an invisible placeholder
            v = np.zeros((3, 3), np.float32)
            f = np.array([[0, 1, 2]], np.uint16)
        return go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2],
                         color=boundary_color, opacity=0.55, flatshading=False,
                         name=f"decision boundary ({name})", showlegend=True,
                         hoverinfo="skip", lighting={"ambient": 0.6, "diffuse": 0.6})

    traces: list[object] = []
    if manifold is not None:
        X, Y, Z = (np.asarray(a, dtype=np.float32) for a in manifold)
        traces.append(go.Surface(x=X, y=Y, z=Z, showscale=False, opacity=0.25,
                                 colorscale=[[0, "#009E73"], [1, "#009E73"]],
                                 name="data manifold", showlegend=True, hoverinfo="skip"))
    p = pts.detach().cpu().numpy()
    lab = labels.detach().cpu().numpy()
    for c in (0, 1):
        sel = p[lab == c]
        traces.append(go.Scatter3d(x=sel[:, 0], y=sel[:, 1], z=sel[:, 2], mode="markers",
                                   marker={"size": 4, "color": class_colors[c],
                                           "line": {"width": 1, "color": "white"}},
                                   name=class_names[c]))
    mesh_index = len(traces)
    first_label, first_surface = surfaces[0]
    traces.append(mesh(first_surface, first_label))
    frames = [go.Frame(data=[mesh(s, lbl)], traces=[mesh_index], name=str(lbl))
              for lbl, s in surfaces]
    steps = [{"method": "animate", "label": str(lbl),
              "args": [[str(lbl)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                    "transition": {"duration": 0}}]}
             for lbl, _ in surfaces]
    axis = {"range": [0, 1], "nticks": 5}
    fig = go.Figure(data=traces, frames=frames)
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        template="plotly_white",
        height=height,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        uirevision="keep-camera",
        legend={"x": 0.0, "y": 0.92, "bgcolor": "rgba(255,255,255,0.6)"},
        scene={"xaxis": {**axis, "title": {"text": "x"}},
               "yaxis": {**axis, "title": {"text": "y"}},
               "zaxis": {**axis, "title": {"text": "z"}},
               "aspectmode": "cube",
               "camera": {"eye": {"x": 1.6, "y": -1.6, "z": 0.9}}},
        sliders=[{"active": 0, "steps": steps, "x": 0.05, "len": 0.9, "y": 0.02,
                  "currentvalue": {"prefix": "training: ", "font": {"size": 13}},
                  "pad": {"t": 10, "b": 10}}],
    )
    return fig
