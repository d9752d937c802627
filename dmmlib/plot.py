"""The book's figure style, set once.

Introduced in the chapter "Adversarial examples in five minutes".

A colour-blind-safe palette (Okabe and Ito), the same colour for the same
concept in every chapter (:data:`CONCEPT_COLORS`), and helpers for the figures
several chapters draw: image grids, perturbations on a symmetric colour scale
with their norm in the title, and robustness curves.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

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
        "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
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
