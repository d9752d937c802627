"""Schematic drawings of the explanations of adversarial examples, one style for all.

Each function draws one explanation as the paper that proposed it describes
it, in two dimensions, from synthetic geometry computed in NumPy: no model is
trained and nothing is measured, so the same call always draws the same
picture. The chapters show each drawing where its explanation is introduced,
before the experiment that tests it.

==============================  ===================================================
:func:`pockets`                 rare dense pockets of the other class near the data
                                (Szegedy et al. 2013)
:func:`linearity`               many tiny aligned changes add up to a large one
                                (Goodfellow et al. 2015)
:func:`boundary_tilting`        a boundary tilted against the data (Tanay and
                                Griffin 2016)
:func:`concentration`           on a high-dimensional sphere a small error set is
                                close to almost every point (:func:`cap_expansion`)
:func:`stretchy_features`       a predictive feature with a tiny margin, stretched
                                (Ilyas et al. 2019; Kilcher's reading of the DMM)
:func:`clinging_dimpling`       the boundary clings to the manifold, then dimples
                                (Shamir, Melamed and BenShmuel 2021)
==============================  ===================================================

Every function returns a new :class:`matplotlib.figure.Figure` that pyplot
does not manage (nothing to close; a notebook shows it as a PNG when it is a
cell's value) and leaves :data:`matplotlib.rcParams` alone: sizes and
colours are passed to each artist explicitly.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Arc, Circle, FancyArrowPatch, Rectangle

from .plot import CONCEPT_COLORS, TOY_CLASS_COLORS

__all__ = [
    "pockets",
    "linearity",
    "boundary_tilting",
    "concentration",
    "stretchy_features",
    "clinging_dimpling",
    "cap_expansion",
]

# --------------------------------------------------------------------------- the style
#: Colours of the drawings: the book's concept colours (Okabe and Ito).
COLORS = {
    "class_a": TOY_CLASS_COLORS[0],
    "class_b": TOY_CLASS_COLORS[1],
    "adversarial": CONCEPT_COLORS["adversarial"],
    "random": CONCEPT_COLORS["random"],
    "boundary": CONCEPT_COLORS["boundary"],
    "manifold": CONCEPT_COLORS["on_manifold"],
    "other": CONCEPT_COLORS["off_manifold"],
}
_FONT = {"label": 7.5, "title": 9.0, "tick": 7.0}
_LW = {"thin": 0.9, "main": 1.6, "arrow": 1.8}
_DOT = 18.0  # marker area of a data point
_WIDTH = 7.2  # inches: the width of every figure
_DPI = 100


class _Schematic(Figure):
    """A figure that pyplot does not manage and that Jupyter shows as a PNG."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight",
                     metadata={"Software": None})
        return buffer.getvalue()


def _figure(ncols: int, height: float = 2.9, width_ratios: Sequence[float] | None = None
            ) -> tuple[Figure, list[Axes]]:
    """A figure of the schematics' width with ``ncols`` panels in one row."""
    fig = _Schematic(figsize=(_WIDTH, height), dpi=_DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False,
                        gridspec_kw={"width_ratios": width_ratios} if width_ratios else None)[0]
    return fig, list(axes)


def _clean(ax: Axes, title: str, *, frame: bool = False, equal: bool = True) -> None:
    """The common axes cleanup: a title, no ticks, no grid, equal scales, an optional frame."""
    ax.set_title(title, fontsize=_FONT["title"])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(frame)
    if equal:
        ax.set_aspect("equal", adjustable="box")


def _plot_axes(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    """The cleanup for a panel that plots a curve: a title, labels, small ticks, no top/right."""
    ax.set_title(title, fontsize=_FONT["title"])
    ax.set_xlabel(xlabel, fontsize=_FONT["label"])
    ax.set_ylabel(ylabel, fontsize=_FONT["label"])
    ax.tick_params(labelsize=_FONT["tick"])
    ax.grid(True, alpha=0.3)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


Point = Sequence[float] | np.ndarray


def _arrow(ax: Axes, start: Point, end: Point, color: str, *,
           dashed: bool = False, both: bool = False, lw: float | None = None,
           label: str | None = None) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end`` in data coordinates."""
    patch = FancyArrowPatch((float(start[0]), float(start[1])), (float(end[0]), float(end[1])),
                            arrowstyle="<|-|>" if both else "-|>",
                            mutation_scale=9, color=color, lw=_LW["arrow"] if lw is None else lw,
                            linestyle="--" if dashed else "-", shrinkA=0, shrinkB=0,
                            label=label, zorder=4)
    ax.add_patch(patch)
    return patch


def _text(ax: Axes, xy: Point, text: str, color: str = "black", **kw: Any) -> None:
    """A short label at ``xy`` in data coordinates, in the schematics' label size."""
    ax.text(xy[0], xy[1], text, color=color, fontsize=_FONT["label"], zorder=5, **kw)


def _points(ax: Axes, xy: np.ndarray, color: str, label: str | None = None,
            marker: str = "o") -> None:
    """Data points: filled markers with a white edge."""
    ax.scatter(xy[:, 0], xy[:, 1], s=_DOT, color=color, edgecolors="white", linewidths=0.5,
               marker=marker, label=label, zorder=3)


def _legend(ax: Axes, loc: str | None = None, ncol: int = 2, below: float = -0.02) -> None:
    """The panel's legend: below the panel unless ``loc`` says where; arrows drawn as arrows."""
    handles, labels = ax.get_legend_handles_labels()
    handles = [Line2D([], [], color=h.get_edgecolor(), lw=h.get_linewidth(),
                      ls=h.get_linestyle(), marker=">", markersize=4)
               if isinstance(h, FancyArrowPatch) else h for h in handles]
    where = {"loc": loc} if loc else {"loc": "upper center", "bbox_to_anchor": (0.5, below)}
    ax.legend(handles, labels, fontsize=_FONT["label"], frameon=False, ncol=ncol,
              handlelength=1.8, borderaxespad=0.2, columnspacing=1.0, **where)


# --------------------------------------------------------------------------- pockets
def pockets() -> Figure:
    """Szegedy et al.'s picture: rare, dense pockets of the other class near the data.

    Left: two classes on either side of a smooth boundary, and tiny pockets
    of class B among the points of class A. Right: near one point, a step of
    length ``r`` aimed into a pocket crosses into class B, while random steps
    of the same length (on the dashed circle) almost all miss it.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, titled ``"The picture: pockets near the data"`` and
        ``"Near one point: steps of the same length"``.
    """
    fig, (ax, zoom) = _figure(2, 3.0)
    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(0.05, 0.45, 26), rng.uniform(0.05, 0.95, 26)])
    b = np.column_stack([rng.uniform(0.65, 0.95, 20), rng.uniform(0.05, 0.95, 20)])
    yy = np.linspace(0, 1, 200)
    ax.plot(0.55 + 0.04 * np.sin(2 * np.pi * yy), yy, color=COLORS["boundary"], lw=_LW["main"],
            label="decision boundary")
    _points(ax, a, COLORS["class_a"], "class A")
    _points(ax, b, COLORS["class_b"], "class B")
    angles = rng.uniform(0, 2 * np.pi, len(a))
    pocket_at = a[::3] + 0.035 * np.column_stack([np.cos(angles[::3]), np.sin(angles[::3])])
    for i, (px, py) in enumerate(pocket_at):
        ax.add_patch(Circle((px, py), 0.012, color=COLORS["class_b"], ec=COLORS["boundary"],
                            lw=0.6, zorder=4, label="pocket of class B" if i == 0 else None))
    focus = a[0]
    ax.add_patch(Rectangle((focus[0] - 0.07, focus[1] - 0.07), 0.14, 0.14, fill=False,
                           ec=COLORS["random"], lw=_LW["thin"], ls=":", zorder=2))
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.02, 1.02)
    _legend(ax)
    _clean(ax, "The picture: pockets near the data", frame=True)

    # the zoom: a point x, a pocket at distance r, random steps of length r
    r = 1.0
    _points(zoom, np.array([[0.0, 0.0]]), COLORS["class_a"])
    _text(zoom, (-0.12, -0.28), "$x$")
    zoom.add_patch(Circle((0, 0), r, fill=False, ec=COLORS["random"], ls="--", lw=_LW["thin"]))
    aim = math.radians(35)
    centre = (1.0 + 0.16) * np.array([math.cos(aim), math.sin(aim)])
    zoom.add_patch(Circle(tuple(centre), 0.22, color=COLORS["class_b"], ec=COLORS["boundary"],
                          lw=0.8, zorder=2))
    _text(zoom, centre + np.array([0.28, 0.02]), "pocket\n(class B)", va="center")
    _arrow(zoom, (0, 0), r * np.array([math.cos(aim), math.sin(aim)]), COLORS["adversarial"],
           label="adversarial step, length $r$")
    for k, deg in enumerate((110, 165, 215, 270, 320)):
        t = math.radians(deg)
        _arrow(zoom, (0, 0), (r * math.cos(t), r * math.sin(t)), COLORS["random"], lw=1.2,
               label="random steps, same length" if k == 0 else None)
    _text(zoom, (-0.9, -1.35), "random steps: still class A", COLORS["random"])
    zoom.set_xlim(-1.7, 2.3)
    zoom.set_ylim(-1.5, 1.5)
    _legend(zoom, ncol=1)
    _clean(zoom, "Near one point: steps of the same length")
    return fig


# --------------------------------------------------------------------------- linearity
def linearity(n: int = 24, eps: float = 0.1) -> Figure:
    """Goodfellow et al.'s argument: tiny changes aligned with the weights add up.

    Left: the per-coordinate contributions ``w_i * delta_i`` of a step with
    ``|delta_i| = eps`` in every coordinate, for ``delta = eps * sign(w)``
    (all positive) and for random signs (they cancel). Right: the change of
    the score ``w . delta`` against the number of coordinates: ``eps * ||w||_1``
    for the aligned step, which grows like ``n``, and the typical size
    ``eps * ||w||_2`` for random signs, which grows like ``sqrt(n)``.

    Parameters
    ----------
    n : int
        Coordinates drawn in the bar panels.
    eps : float
        The per-coordinate size of the step.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, titled ``"delta = eps sign(w)"``, ``"random signs"`` and
        ``"The change of w . x"``.
    """
    fig, axes = _figure(3, 2.9, width_ratios=(1, 1, 1.25))
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, 4096)
    signs = rng.choice([-1.0, 1.0], size=len(w))
    i = np.arange(1, n + 1)
    aligned = eps * np.abs(w[:n])
    random = eps * w[:n] * signs[:n]
    top = 1.15 * float(np.abs(aligned).max())
    for ax, bars, title, color in ((axes[0], aligned, "$\\delta = \\varepsilon\\,$sign$(w)$",
                                    COLORS["adversarial"]),
                                   (axes[1], random, "random signs", COLORS["random"])):
        ax.bar(i, bars, color=color, width=0.8, label="$w_i \\delta_i$")
        ax.axhline(0, color=COLORS["boundary"], lw=_LW["thin"])
        ax.set_ylim(-top, top)
        _plot_axes(ax, title, "coordinate $i$", "$w_i\\,\\delta_i$")
        ax.set_yticks([])
        _text(ax, (0.04, 0.05), f"sum = {bars.sum():+.2f}", transform=ax.transAxes)
        _text(ax, (0.96, 0.05), "every $|\\delta_i| = \\varepsilon$", COLORS["random"],
              transform=ax.transAxes, ha="right")
    ns = np.unique(np.geomspace(1, len(w), 40).astype(int))
    l1 = eps * np.cumsum(np.abs(w))[ns - 1]
    l2 = eps * np.sqrt(np.cumsum(w ** 2))[ns - 1]
    ax = axes[2]
    ax.plot(ns, l1, color=COLORS["adversarial"], lw=_LW["main"],
            label="aligned: $\\varepsilon\\|w\\|_1$, like $n$")
    ax.plot(ns, l2, color=COLORS["random"], lw=_LW["main"], ls="--",
            label="random signs: $\\varepsilon\\|w\\|_2$, like $\\sqrt{n}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plot_axes(ax, "The change of $w \\cdot x$", "coordinates $n$", "$|w \\cdot \\delta|$")
    _legend(ax, "upper left", ncol=1)
    ax.set_ylim(float(l2.min()) / 2, float(l1.max()) * 30)
    return fig


# --------------------------------------------------------------------------- tilting
def boundary_tilting(tilt_degrees: float = 12.0) -> Figure:
    """Tanay and Griffin's picture: a boundary tilted at a small angle to the data.

    Data of two classes on a line. Left: a boundary perpendicular to the
    data; the nearest way across is along the data, as long as the margin.
    Right: a boundary through the same point, tilted at a small angle to the
    data; it labels every data point the same, but the shortest path to it
    leaves the data and is short (the margin times the sine of the angle).

    Parameters
    ----------
    tilt_degrees : float
        The angle between the tilted boundary and the data, in degrees.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, titled ``"Boundary perpendicular to the data"`` and
        ``"Boundary tilted against the data"``.
    """
    fig, axes = _figure(2, 2.2)
    xs = np.linspace(-1.0, 1.0, 9)
    xs = xs[np.abs(xs) > 0.1]
    x0 = np.array([-0.75, 0.0])
    phi = math.radians(tilt_degrees)
    direction = np.array([math.cos(phi), math.sin(phi)])
    for ax, tilted in zip(axes, (False, True), strict=True):
        ax.plot([-1.25, 1.25], [0, 0], color=COLORS["manifold"], lw=4, alpha=0.35,
                solid_capstyle="round", label="data (a line)")
        _points(ax, np.column_stack([xs[xs < 0], 0 * xs[xs < 0]]), COLORS["class_a"], "class A")
        _points(ax, np.column_stack([xs[xs > 0], 0 * xs[xs > 0]]), COLORS["class_b"], "class B")
        if tilted:
            ends = np.outer([-1.25, 1.25], direction)
            ax.plot(ends[:, 0], ends[:, 1], color=COLORS["boundary"], lw=_LW["main"],
                    label="decision boundary")
            foot = float(x0 @ direction) * direction
            _arrow(ax, x0, foot, COLORS["adversarial"], label="shortest path: off the data")
            ax.add_patch(Arc((0, 0), 0.9, 0.9, theta1=0, theta2=tilt_degrees,
                             color=COLORS["boundary"], lw=_LW["thin"]))
            _text(ax, (0.5, 0.2), "small tilt")
            _arrow(ax, x0 + np.array([0, 0.16]), (0, 0.16), COLORS["random"], dashed=True,
                   both=True, lw=1.1, label="data margin")
            title = "Boundary tilted against the data"
        else:
            ax.plot([0, 0], [-0.45, 0.45], color=COLORS["boundary"], lw=_LW["main"],
                    label="decision boundary")
            _arrow(ax, x0, (0, 0), COLORS["adversarial"], label="shortest path: along the data")
            title = "Boundary perpendicular to the data"
        _text(ax, x0 + np.array([-0.04, 0.05]), "$x$", ha="right", va="bottom")
        ax.set_xlim(-1.3, 1.3)
        ax.set_ylim(-0.45, 0.45)
        _legend(ax)
        _clean(ax, title, frame=True)
    return fig


# --------------------------------------------------------------------------- concentration
def cap_expansion(n: int, mu: float, eps: np.ndarray | Sequence[float]) -> np.ndarray:
    """Share of the unit sphere in R^n within Euclidean distance eps of a cap of measure mu.

    The cosine ``t`` of the angle between a uniform point of the sphere and a
    fixed axis is ``2B - 1`` with ``B ~ Beta((n-1)/2, (n-1)/2)``, so a cap
    ``{t >= h}`` has measure ``I_{(1-h)/2}((n-1)/2, (n-1)/2)`` (the regularised
    incomplete beta function). The cap of measure ``mu`` is found by inverting
    that, and its ``eps``-neighbourhood is the cap of angular radius
    ``arccos(h) + 2 arcsin(eps / 2)``; both are exact.

    Parameters
    ----------
    n : int
        The dimension of the space (the sphere has dimension ``n - 1``), at least 2.
    mu : float
        The measure of the cap, in (0, 1).
    eps : array of float
        Euclidean distances, at least 0.

    Returns
    -------
    numpy.ndarray
        The share of the sphere within each ``eps`` of the cap, in [``mu``, 1].
    """
    from scipy.special import betainc, betaincinv

    if int(n) != n or n < 2:
        raise ValueError(f"n: expected an integer of at least 2, got {n}")
    if not 0 < mu < 1:
        raise ValueError(f"mu: expected a measure in (0, 1), got {mu}")
    eps = np.asarray(eps, dtype=float)
    if np.any(eps < 0):
        raise ValueError("eps: expected distances of at least 0")
    a = 0.5 * (n - 1)
    half_angle = math.acos(1.0 - 2.0 * float(betaincinv(a, a, mu)))  # the cap's angular radius
    angle = np.minimum(half_angle + 2 * np.arcsin(np.minimum(eps / 2, 1.0)), math.pi)
    return np.asarray(betainc(a, a, (1.0 - np.cos(angle)) / 2.0), dtype=float)


def concentration(dims: Sequence[int] = (3, 10, 100, 1000), mu: float = 0.01) -> Figure:
    """Concentration of measure: an error set of small measure is close to almost everything.

    Left: a cartoon of the sphere with a small cap of errors and the band of
    points within ``eps`` of it. Right: the share of the sphere in ``R^n``
    within ``eps`` of a cap of measure ``mu``, computed exactly from the
    one-dimensional marginal (:func:`cap_expansion`) for a few dimensions:
    the higher the dimension, the smaller the ``eps`` at which the band holds
    almost the whole sphere.

    Parameters
    ----------
    dims : sequence of int
        The dimensions ``n`` of the curves.
    mu : float
        The measure of the cap.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, titled ``"A small error set and its neighbourhood"`` and
        ``"Share of the sphere within eps of the errors"``.
    """
    fig, (ax, curve) = _figure(2, 3.0, width_ratios=(1, 1.35))
    ax.add_patch(Circle((0, 0), 1.0, fill=False, ec=COLORS["boundary"], lw=_LW["thin"]))
    band = np.radians(np.linspace(50, 130, 80))
    ax.plot(np.cos(band), np.sin(band), color=COLORS["other"], lw=9, alpha=0.45,
            solid_capstyle="butt", label="within $\\varepsilon$ of the errors")
    cap = np.radians(np.linspace(80, 100, 30))
    ax.plot(np.cos(cap), np.sin(cap), color=COLORS["adversarial"], lw=4, solid_capstyle="butt",
            label="error set (a cap), measure $\\mu$")
    x = np.array([math.cos(math.radians(30)), math.sin(math.radians(30))])
    _points(ax, x[None], COLORS["class_a"], "a data point")
    end = np.array([math.cos(math.radians(50)), math.sin(math.radians(50))])
    _arrow(ax, x, end, COLORS["adversarial"], lw=1.4)
    _text(ax, x + np.array([0.06, 0.02]), "$x$")
    _text(ax, (-0.55, -0.2), "the sphere", COLORS["boundary"])
    _text(ax, 0.5 * (x + end) + np.array([0.08, 0.0]), "$\\varepsilon$", COLORS["adversarial"])
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.15, 1.2)
    _legend(ax, ncol=1)
    _clean(ax, "A small error set and its neighbourhood")

    eps = np.linspace(0, 1.0, 201)
    colors = (COLORS["class_a"], COLORS["manifold"], COLORS["class_b"], COLORS["adversarial"],
              COLORS["other"], COLORS["random"])
    for k, n in enumerate(dims):
        curve.plot(eps, cap_expansion(n, mu, eps), color=colors[k % len(colors)],
                   lw=_LW["main"], label=f"$n$ = {n}")
    curve.axhline(mu, color=COLORS["random"], lw=_LW["thin"], ls=":")
    _text(curve, (0.62, mu + 0.03), f"$\\mu$ = {mu:g}", COLORS["random"])
    curve.set_xlim(0, 1.0)
    curve.set_ylim(0, 1.02)
    _plot_axes(curve, "Share of the sphere within $\\varepsilon$ of the errors",
               "distance $\\varepsilon$ (unit sphere)", "share of the sphere")
    _legend(curve, ncol=4, below=-0.2)
    return fig


# --------------------------------------------------------------------------- stretchy
def stretchy_features(stretch: float = 4.0) -> Figure:
    """Non-robust, "stretchy" features: a predictive feature with a tiny margin.

    Two classes that differ along a robust feature (a wide gap) and along a
    non-robust one (a tiny gap, but it still separates them). Left: input
    space; the adversary's short step runs along the non-robust feature, a
    direction the data vary in, not off them. Right: the same points as a
    network that relies on that feature sees them, with the non-robust
    direction stretched by ``stretch``: the tiny step becomes a long one.

    Parameters
    ----------
    stretch : float
        How much the right panel stretches the non-robust direction.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, titled ``"Input space"`` and ``"As the network sees it"``.
    """
    fig, axes = _figure(2, 3.4, width_ratios=(2, 1))
    rng = np.random.default_rng(1)
    m = 14
    a = np.column_stack([rng.normal(-1.0, 0.2, m), rng.uniform(-0.3, -0.1, m)])
    b = np.column_stack([rng.normal(1.0, 0.2, m), rng.uniform(0.1, 0.3, m)])
    x0 = a[np.argmax(a[:, 1])]
    for ax, k in zip(axes, (1.0, stretch), strict=True):
        s = np.array([1.0, k])
        _points(ax, a * s, COLORS["class_a"], "class A")
        _points(ax, b * s, COLORS["class_b"], "class B")
        ax.axhline(0, color=COLORS["boundary"], lw=_LW["main"],
                   label="non-robust boundary")
        _arrow(ax, x0 * s, np.array([x0[0], 0.06]) * s, COLORS["adversarial"],
               label="adversarial step")
        ax.set_xlim(-1.75, 1.75) if k == 1.0 else ax.set_xlim(-1.5, 1.5)
        ax.set_xlabel("robust feature", fontsize=_FONT["label"])
        if k == 1.0:
            ax.set_ylim(-0.9, 0.9)
            ax.axvline(0, color=COLORS["random"], lw=_LW["thin"], ls="--",
                       label="robust boundary")
            _arrow(ax, (a[:, 0].max(), -0.5), (b[:, 0].min(), -0.5), COLORS["random"],
                   both=True, lw=1.1)
            _text(ax, (0, -0.58), "wide margin", COLORS["random"], ha="center", va="top")
            _text(ax, (x0[0] + 0.1, 0.12), "tiny margin: a short step\nalong the data's feature",
                  COLORS["adversarial"], va="bottom")
            _legend(ax, ncol=3, below=-0.08)
            _clean(ax, "Input space", frame=True)
            ax.set_ylabel("non-robust feature", fontsize=_FONT["label"])
        else:
            ax.set_ylim(-1.5, 1.5)
            _text(ax, (-1.4, 1.4), f"non-robust direction\nstretched {stretch:g} times",
                  COLORS["boundary"], va="top")
            _clean(ax, "As the network sees it", frame=True)
            ax.set_ylabel(f"non-robust feature $\\times$ {stretch:g}", fontsize=_FONT["label"])
    return fig


# --------------------------------------------------------------------------- clinging, dimpling
def _manifold(x: np.ndarray) -> np.ndarray:
    """The drawn data manifold: a gentle curve."""
    return 0.3 * np.sin(1.2 * x)


def clinging_dimpling(offset: float = 0.22, width: float = 0.4) -> Figure:
    """The Dimpled Manifold Model's two phases of training, drawn.

    Training points on a curve (the data manifold) with alternating labels.
    Left, early (clinging): the boundary has turned from a random orientation
    onto the manifold and runs close to it, along it. Right, later
    (dimpling): shallow dimples push the boundary just past each point of
    class B; from a point of class A the shortest way across is
    perpendicular to the manifold, and the way along the manifold is longer.

    Parameters
    ----------
    offset : float
        The distance of the boundary from the manifold.
    width : float
        The width of each dimple, along the manifold.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, titled ``"Early: clinging"`` and ``"Later: dimpling"``.
    """
    fig, axes = _figure(2, 2.6)
    xs = np.linspace(-2.2, 2.2, 1101)
    px = np.linspace(-1.8, 1.8, 6)
    labels = np.arange(len(px)) % 2  # alternating: 0 is class A, 1 is class B
    pts = np.column_stack([px, _manifold(px)])
    dimples = sum(((offset + 0.1) * np.exp(-((xs - x) / width) ** 2) for x in px[labels == 1]),
                  np.zeros_like(xs))
    lo, hi = -0.95, 0.95
    for ax, late in zip(axes, (False, True), strict=True):
        boundary = _manifold(xs) + offset - (dimples if late else 0.0)
        ax.fill_between(xs, lo, boundary, color=COLORS["class_a"], alpha=0.12, lw=0)
        ax.fill_between(xs, boundary, hi, color=COLORS["class_b"], alpha=0.12, lw=0)
        ax.plot(xs, _manifold(xs), color=COLORS["manifold"], lw=3, alpha=0.5,
                label="data manifold")
        ax.plot(xs, boundary, color=COLORS["boundary"], lw=_LW["main"], label="decision boundary")
        _points(ax, pts[labels == 0], COLORS["class_a"], "class A")
        _points(ax, pts[labels == 1], COLORS["class_b"], "class B")
        if not late:
            ax.plot([-1.6, -0.2], [-0.95, 0.95], color=COLORS["random"], lw=_LW["thin"], ls="--",
                    label="boundary at initialisation")
            _arrow(ax, (-0.45, 0.62), (0.35, _manifold(np.array([0.35]))[0] + offset + 0.03),
                   COLORS["random"], lw=1.1)
            _text(ax, (0.0, -0.88), "close to the data, along it", COLORS["boundary"],
                  ha="center")
            title = "Early: clinging"
        else:
            i = 2  # a point of class A
            curve = np.column_stack([xs, boundary])
            gaps = np.linalg.norm(curve - pts[i], axis=1)
            _arrow(ax, pts[i], curve[np.argmin(gaps)], COLORS["adversarial"],
                   label="shortest step: off the manifold")
            right = (xs > px[i]) & (_manifold(xs) > boundary)
            cross = int(np.argmax(right))  # where the manifold first enters class B
            along = np.column_stack([xs, _manifold(xs) - 0.07])[(xs >= px[i]) & (xs <= xs[cross])]
            ax.plot(along[:-3, 0], along[:-3, 1], color=COLORS["manifold"], lw=1.2, ls=":")
            _arrow(ax, along[-4], along[-1], COLORS["manifold"], lw=1.2,
                   label="along the manifold: longer")
            j = 3  # a dimple, under a point of class B
            bottom = (px[j], float(np.interp(px[j], xs, boundary)))
            ax.annotate("dimple", bottom, (px[j] + 0.25, -0.75), fontsize=_FONT["label"],
                        arrowprops={"arrowstyle": "-", "color": COLORS["boundary"],
                                    "lw": _LW["thin"]})
            title = "Later: dimpling"
        ax.set_xlim(xs[0], xs[-1])
        ax.set_ylim(lo, hi)
        _legend(ax)
        _clean(ax, title, frame=True)
    return fig
