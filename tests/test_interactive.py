"""Offline interactive figures: plotly HTML with its own plotly.js, animations, 3-D boundaries."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from dmmlib import geometry
from dmmlib.book import interactive


class _Plane(nn.Module):
    """Boundary z = 0.5 + 0.1 x: class 1 above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 2] - 0.5 - 0.1 * x[:, 0]
        return torch.stack([-m, m], 1)


@pytest.fixture()
def surface():
    return geometry.decision_surface_3d(_Plane(), (0.0, 1.0), 8)


def _points():
    pts = torch.tensor([[0.2, 0.2, 0.5], [0.8, 0.8, 0.5], [0.5, 0.2, 0.5]])
    return pts, torch.tensor([0, 1, 0])


def test_boundary_surface_figure_has_one_frame_per_checkpoint(surface):
    pts, lab = _points()
    fig = interactive.boundary_surface_figure([("step 0", surface), ("step 9", surface)], pts, lab,
                                              manifold=(torch.zeros(2, 2).numpy(),) * 3,
                                              title="t")
    assert len(fig.frames) == 2
    assert [f.name for f in fig.frames] == ["step 0", "step 9"]
    kinds = [t.type for t in fig.data]
    assert kinds == ["surface", "scatter3d", "scatter3d", "mesh3d"]
    assert len(fig.layout.sliders[0].steps) == 2
    mesh = fig.data[-1]
    assert len(mesh.i) == surface.faces.shape[0]
    with pytest.raises(TypeError):
        interactive.boundary_surface_figure([surface], pts, lab)
    with pytest.raises(ValueError):
        interactive.boundary_surface_figure([("a", surface)], pts[:, :2], lab)


def test_empty_surface_gives_a_placeholder_mesh():
    class Constant(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], 1)

    empty = geometry.decision_surface_3d(Constant(), (0.0, 1.0), 4)
    pts, lab = _points()
    fig = interactive.boundary_surface_figure([("s", empty)], pts, lab)
    assert len(fig.data[-1].i) == 1


def test_plotly_html_inlines_plotlyjs_once_and_never_points_to_a_cdn(surface):
    pts, lab = _points()
    fig = interactive.boundary_surface_figure([("s", surface)], pts, lab)
    interactive._reset_plotlyjs()
    first = interactive.plotly_html(fig, div_id="a").data
    second = interactive.plotly_html(fig, div_id="b").data
    assert len(first) > 1_000_000 and "window.Plotly" in first  # the library itself
    assert len(second) < len(first) / 10
    assert 'id="b"' in second and "Plotly.newPlot" in second
    # plotly.js itself names cdn.plot.ly once, as the default topojsonURL of geo maps
    # (never fetched for 3-D figures): check everything around the inlined library.
    from plotly.offline import get_plotlyjs
    library = get_plotlyjs()
    assert library in first and library not in second
    for html in (first.replace(library, ""), second):
        assert "cdn.plot.ly" not in html and "<script src=" not in html
    forced = interactive.plotly_html(fig, include_plotlyjs=True).data
    assert len(forced) > 1_000_000
    with pytest.raises(ValueError):
        interactive.plotly_html(fig, include_plotlyjs="cdn")
    with pytest.raises(TypeError):
        interactive.plotly_html("figure")


def test_animation_html_gives_the_player_alt_text():
    fig, ax = plt.subplots()
    html = interactive.animation_html(fig, lambda i: ax.plot([i]), 2, alt='a "line" moving').data
    assert 'alt="a &quot;line&quot; moving" id="_anim_img' in html
    # nothing from a CDN (matplotlib's player asks for Font Awesome), every button has a glyph
    assert "https://" not in html and "<i class=" not in html and "?</span>" not in html
    assert html.count('<span aria-hidden="true">') == 9
    with pytest.raises(TypeError, match="alt"):
        interactive.animation_html(plt.figure(), lambda i: None, 2, alt=3)


def test_animation_html_embeds_every_frame_and_closes_the_figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    seen = []

    def draw(i):
        seen.append(i)
        ax.clear()
        ax.plot([0, 1], [0, i])

    html = interactive.animation_html(fig, draw, 3, interval=100).data
    assert html.count("data:image/png;base64") >= 3 or html.count("base64,") >= 3
    assert set(seen) >= {0, 1, 2}
    assert not plt.fignum_exists(fig.number)
    with pytest.raises(ValueError):
        interactive.animation_html(plt.figure(), draw, [])


def test_animation_frames_become_smaller_palette_pngs_that_look_the_same():
    import base64
    import io
    import re

    import numpy as np
    from PIL import Image

    def html_of(colors):
        fig, ax = plt.subplots(figsize=(3, 2))

        def draw(i):
            ax.clear()
            ax.contourf(np.linspace(0, 1, 40)[None, :] * np.ones((40, 1)) + i, levels=6)
            ax.plot([0, 39], [0, 39 * (i + 1) / 3], color="k")

        return interactive.animation_html(fig, draw, 3, colors=colors).data

    def frames(html):
        return [Image.open(io.BytesIO(base64.b64decode(b))) for b in
                re.findall(r'frames\[\d+\] = "data:image/png;base64,([^"]*)"', html)]

    full, palette = html_of(None), html_of(256)
    a, b = frames(full), frames(palette)
    assert len(a) == len(b) == 3
    assert all(f.mode == "P" for f in b) and all(f.mode != "P" for f in a)
    assert all(f.size == g.size for f, g in zip(a, b, strict=True))
    assert len(palette) < 0.7 * len(full)
    for f, g in zip(a, b, strict=True):  # the same picture, up to the rounding of a few colours
        diff = np.abs(np.asarray(f.convert("RGB"), float) - np.asarray(g.convert("RGB"), float))
        assert diff.mean() < 2.0
    with pytest.raises(ValueError, match="colors"):
        interactive.animation_html(plt.figure(), lambda i: None, 2, colors=1)
    with pytest.raises(ValueError, match="colors"):
        interactive.animation_html(plt.figure(), lambda i: None, 2, colors=True)
