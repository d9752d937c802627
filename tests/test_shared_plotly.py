"""The book build serves plotly.js once, as a file, instead of inlining it into pages."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import plotly.graph_objects as go
import plotly.io as pio

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("shared_plotly", ROOT / "book/_ext/shared_plotly.py")
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)


def _figure_html(inline: bool) -> str:
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    return pio.to_html(fig, full_html=False, include_plotlyjs=inline)


def _page(body: str) -> str:
    return f"<html><head></head><body><article>{body}</article></body></html>"


def test_inlined_plotly_moves_to_one_shared_file(tmp_path):
    out = tmp_path / "html"
    (out / "book").mkdir(parents=True)
    first, second = _figure_html(True), _figure_html(False)
    (out / "book" / "a.html").write_text(_page(first + second))
    (out / "index.html").write_text(_page(_figure_html(True)))
    (out / "book" / "plain.html").write_text(_page("<p>no figure</p>"))
    before = (out / "book" / "a.html").stat().st_size

    replaced = ext.share_plotly(out)

    assert replaced == {"book/a.html": 1, "index.html": 1}
    shared = sorted((out / ext.FOLDER).glob("plotly-*.min.js"))
    assert len(shared) == 1 and shared[0].stat().st_size > 1_000_000
    assert shared[0].read_text().lstrip().startswith("/**")
    page = (out / "book" / "a.html").read_text()
    assert "plotly.js v" not in page
    assert f'<script src="../{ext.FOLDER.as_posix()}/{shared[0].name}"></script>' in page
    assert f'<script src="{ext.FOLDER.as_posix()}/{shared[0].name}"></script>' in (
        out / "index.html").read_text()
    # the script tag stands where the copy was: before the figures that use it
    assert page.index("<script src=") < page.index("plotly-graph-div")
    assert (out / "book" / "a.html").stat().st_size < before - 1_000_000
    assert (out / "book" / "plain.html").read_text() == _page("<p>no figure</p>")
    # a second build finds nothing left to move and leaves the files as they are
    assert ext.share_plotly(out) == {}
    assert not list((out / ext.FOLDER).glob("*.part"))
    # readable by a web server running as another user, like every other file of the build
    assert shared[0].stat().st_mode & 0o777 == 0o644
    assert (out / "book" / "a.html").stat().st_mode & 0o777 == 0o644


def test_only_a_finished_html_build_is_rewritten(tmp_path):
    (tmp_path / "p.html").write_text(_page(_figure_html(True)))
    app = SimpleNamespace(outdir=str(tmp_path), builder=SimpleNamespace(format="latex"))
    ext._on_build_finished(app, None)
    assert "plotly.js v" in (tmp_path / "p.html").read_text()
    app.builder.format = "html"
    ext._on_build_finished(app, RuntimeError("the build failed"))
    assert "plotly.js v" in (tmp_path / "p.html").read_text()
    ext._on_build_finished(app, None)
    assert "plotly.js v" not in (tmp_path / "p.html").read_text()
