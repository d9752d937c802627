"""The book's figure style, set once.

A colour-blind-safe palette (Okabe and Ito), the same colour for the same
concept in every chapter (:data:`CONCEPT_COLORS`), and helpers for the figures
several chapters draw: image grids, perturbations on a symmetric colour scale
with their norm in the title, and robustness curves.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler

if TYPE_CHECKING:
    from ..geometry import Grid2D, Surface3D

__all__ = [
    "PALETTE",
    "CONCEPT_COLORS",
    "set_style",
    "show_images",
    "show_perturbation",
    "adversarial_grid",
]

#: Okabe-Ito colour-blind-safe palette.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
    "#56B4E9", "#F0E442", "#000000",
)

#: One colour per concept, used by every chapter.
CONCEPT_COLORS = {
    "clean": "#0072B2",
    "adversarial": "#D55E00",
    "on_manifold": "#009E73",
    "off_manifold": "#CC79A7",
    "random": "#7f7f7f",
    "noise": "#7f7f7f",
    "boundary": "#000000",
    "published": "#E69F00",
}


def set_style() -> None:
    """Apply the book's matplotlib style (idempotent)."""
    mpl.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "figure.figsize": (6.4, 4.0),
        "axes.prop_cycle": cycler(color=list(PALETTE)),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "font.size": 10,
        "axes.titlesize": 10,
        "legend.frameon": False,
        "image.cmap": "gray",
    })


def _to_hwc(img: torch.Tensor | np.ndarray) -> np.ndarray:
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    return a


def show_images(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    scale: float = 1.3,
    axes: Sequence[plt.Axes] | None = None,
) -> plt.Figure:
    """A grid of images (N, C, H, W) in [0, 1], optional titles."""
    n = images.shape[0]
    fig: Any
    if axes is None:
        nrows = (n + ncols - 1) // ncols
        fig, ax = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows * 1.15),
                               squeeze=False)
        axes = list(ax.flat)
    else:
        fig = axes[0].figure
    for i, a in enumerate(axes):
        a.axis("off")
        if i < n:
            a.imshow(_to_hwc(images[i]), vmin=0, vmax=1, cmap="gray")
            if titles is not None:
                a.set_title(titles[i], fontsize=8)
    return fig


def show_perturbation(delta: torch.Tensor, ax: plt.Axes, title: str = "") -> None:
    """One perturbation on a symmetric colour scale around 0, its L2 and Linf norms in the title."""
    d = delta.detach().cpu()
    lim = float(d.abs().max()) or 1.0
    a = _to_hwc(d)
    if a.ndim == 3:  # colour: show the mean over channels
        a = a.mean(-1)
    ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"{title}\nL2={float(d.norm()):.2f}, Linf={lim:.3f}".strip(), fontsize=8)
    ax.axis("off")


def adversarial_grid(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    pred_clean: Sequence[int],
    pred_adv: Sequence[int],
    classes: Sequence[str],
    n: int = 6,
) -> plt.Figure:
    """Rows: clean image, adversarial image, perturbation; titles give predictions."""
    n = min(n, x.shape[0])
    fig, ax = plt.subplots(3, n, figsize=(1.6 * n, 5.4), squeeze=False)
    for i in range(n):
        ax[0, i].imshow(_to_hwc(x[i]), vmin=0, vmax=1, cmap="gray")
        ax[0, i].set_title(f"clean: {classes[int(pred_clean[i])]}", fontsize=8)
        ax[1, i].imshow(_to_hwc(x_adv[i]), vmin=0, vmax=1, cmap="gray")
        ax[1, i].set_title(f"adv.: {classes[int(pred_adv[i])]}", fontsize=8,
                           color=CONCEPT_COLORS["adversarial"])
        show_perturbation(x_adv[i] - x[i], ax[2, i])
        ax[0, i].axis("off")
        ax[1, i].axis("off")
    ax[0, 0].text(-0.15, 0.5, "clean", transform=ax[0, 0].transAxes, rotation=90,
                  va="center", ha="right")
    ax[1, 0].text(-0.15, 0.5, "adversarial", transform=ax[1, 0].transAxes, rotation=90,
                  va="center", ha="right")
    ax[2, 0].text(-0.15, 0.5, "perturbation", transform=ax[2, 0].transAxes, rotation=90,
                  va="center", ha="right")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- toy settings
# Added for the chapter "Clinging and dimpling".

#: Colours of the two classes of the book's toy settings (lines, planes, checkerboards).
TOY_CLASS_COLORS = ("#0072B2", "#E69F00")


def seed_band(ax: plt.Axes, x: Sequence[float] | np.ndarray | torch.Tensor,
              values: np.ndarray | torch.Tensor, color: str, label: str | None = None,
              *, center: str = "mean", spread: str | tuple[float, float] = "range",
              alpha: float = 0.2, linewidth: float = 0, **line_kwargs: Any) -> None:
    """A line over seeds (rows of ``values``, shape (S, T)) with a band for their spread.

    The book's one "band over seeds" figure: each column of ``values`` holds
    one value per seed (or per network, per image) at ``x[t]``.

    Parameters
    ----------
    ax: the axes to draw on.
    x: the T positions.
    values: (S, T) values, or a (T,) line; NaNs are ignored.
    color, label: of the line (the band has the line's colour).
    center: ``"mean"`` or ``"median"`` over the rows.
    spread: ``"range"`` (min to max over the rows) or a pair of quantiles such
        as ``(0.1, 0.9)``.
    alpha, linewidth: of the band (``linewidth=None``: matplotlib's default).
    line_kwargs: passed to ``ax.plot`` (``marker``, ``ls``, ...).
    """
    if center not in {"mean", "median"}:
        raise ValueError(f"center: expected 'mean' or 'median', got {center!r}")
    v = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) \
        else np.asarray(values, dtype=float)
    xs = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    v = np.atleast_2d(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mid = np.nanmean(v, 0) if center == "mean" else np.nanmedian(v, 0)
        if isinstance(spread, str):
            if spread != "range":
                raise ValueError(f"spread: expected 'range' or two quantiles, got {spread!r}")
            lo, hi = np.nanmin(v, 0), np.nanmax(v, 0)
        else:
            lo, hi = np.nanquantile(v, list(spread), axis=0)
    if v.shape[0] > 1:
        band_kwargs: dict[str, Any] = {} if linewidth is None else {"linewidth": linewidth}
        ax.fill_between(xs, lo, hi, color=color, alpha=alpha, **band_kwargs)
    ax.plot(xs, mid, color=color, label=label, **line_kwargs)


def decision_boundary_2d(ax: plt.Axes, grid: Grid2D, points: torch.Tensor,
                         labels: torch.Tensor, *, title: str = "",
                         colors: Sequence[str] = TOY_CLASS_COLORS) -> None:
    """A 2-D decision grid (``dmmlib.geometry.Grid2D``): regions, boundary, training points."""
    from matplotlib.colors import ListedColormap

    xx, yy = grid.xx.numpy(), grid.yy.numpy()
    ax.contourf(xx, yy, grid.pred.numpy(), levels=[-0.5, 0.5, 1.5],
                cmap=ListedColormap(list(colors[:2])), alpha=0.18)
    if float(grid.margin.min()) < 0 < float(grid.margin.max()):
        ax.contour(xx, yy, grid.margin.numpy(), levels=[0.0],
                   colors=CONCEPT_COLORS["boundary"], linewidths=1.2)
    p, lab = points.detach().cpu().numpy(), labels.detach().cpu().numpy()
    for c in (0, 1):
        ax.scatter(p[lab == c, 0], p[lab == c, 1], s=22, color=colors[c], edgecolor="white",
                   linewidth=0.6, zorder=3)
    ax.set_xlim(float(xx.min()), float(xx.max()))
    ax.set_ylim(float(yy.min()), float(yy.max()))
    ax.set_aspect("equal")
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=8)


def decision_surface_snapshot(ax: Any, surface: Surface3D, points: torch.Tensor,
                              labels: torch.Tensor, *, manifold: tuple | None = None,
                              title: str = "", elev: float = 18, azim: float = -60,
                              colors: Sequence[str] = TOY_CLASS_COLORS) -> None:
    """A static view of a 3-D decision surface (``dmmlib.geometry.Surface3D``) on a 3-D axis.

    ``manifold`` is an
    optional ``(X, Y, Z)`` grid of the data surface, drawn as a wireframe.
    """
    v, f = surface.vertices.numpy(), surface.faces.numpy()
    if len(f):
        ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=f, color="0.55", alpha=0.45,
                        linewidth=0, antialiased=True, shade=True)
    if manifold is not None:
        X, Y, Z = (np.asarray(a) for a in manifold)
        ax.plot_wireframe(X, Y, Z, color=CONCEPT_COLORS["on_manifold"], linewidth=0.4,
                          rstride=2, cstride=2, alpha=0.7)
    p, lab = points.detach().cpu().numpy(), labels.detach().cpu().numpy()
    for c in (0, 1):
        ax.scatter(p[lab == c, 0], p[lab == c, 1], p[lab == c, 2], s=10, color=colors[c],
                   depthshade=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_zlim(0, 1)
    ax.view_init(elev=elev, azim=azim)
    # the unit cube's corners are all a reader needs: two ticks per axis, named axes
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_ticks([0, 1])
    ax.set_xlabel("x", fontsize=8, labelpad=-12)
    ax.set_ylabel("y", fontsize=8, labelpad=-12)
    ax.set_zlabel("z", fontsize=8, labelpad=-12)
    ax.tick_params(labelsize=7, pad=-3)
    if title:
        ax.set_title(title, fontsize=8)


__all__ += ["TOY_CLASS_COLORS", "seed_band", "decision_boundary_2d", "decision_surface_snapshot"]
