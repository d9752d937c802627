import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from dmmlib.book import nb
from dmmlib.profiles import get_profile


def test_explore_draws_small_multiples_when_static(monkeypatch):
    monkeypatch.setenv("DMM_STATIC_FIGURES", "1")
    monkeypatch.setattr(plt, "show", lambda: None)
    seen = []
    nb.explore(lambda v, ax: seen.append(v), list(range(10)), label="step", ncols=4)
    assert seen == [0, 3, 6, 9]
    fig = plt.gcf()
    assert [ax.get_title() for ax in fig.axes if ax.axison] == [
        "step = 0", "step = 3", "step = 6", "step = 9"]
    plt.close("all")


def test_explore_keeps_the_title_each_panel_draws(monkeypatch):
    monkeypatch.setenv("DMM_STATIC_FIGURES", "1")
    monkeypatch.setattr(plt, "show", lambda: None)

    def draw(v, ax):
        ax.set_title(f"prediction {v}", fontsize=7)

    nb.explore(draw, [1, 2], label="t", static_values=[1, 2])
    axes = [ax for ax in plt.gcf().axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["t = 1\nprediction 1", "t = 2\nprediction 2"]
    assert all(ax.title.get_fontsize() == 7 for ax in axes)
    plt.close("all")


def test_explore_builds_a_slider_in_jupyter(monkeypatch):
    pytest.importorskip("ipywidgets")
    import ipywidgets

    monkeypatch.setenv("DMM_STATIC_FIGURES", "0")
    monkeypatch.setattr(plt, "show", lambda: None)
    captured = {}

    def fake_interact(fn, value):
        captured["slider"] = value
        fn(value.value)

    monkeypatch.setattr(ipywidgets, "interact", fake_interact)
    seen = []
    nb.explore(lambda v, ax: seen.append(v), [0.1, 0.2], label="eps")
    assert isinstance(captured["slider"], ipywidgets.SelectionSlider)
    assert seen == [0.1]
    plt.close("all")


def test_explore_rejects_empty_values():
    with pytest.raises(ValueError, match="values"):
        nb.explore(lambda v, ax: None, [], label="x")


def test_profile_note_names_profile_and_gpu_effect(capsys, monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    nb.profile_note(get_profile("ci"), "cpu", "trains on all 60,000 images")
    assert "`ci`" in shown[0] and "trains on all 60,000 images" in shown[0]
    assert "Change runtime type" in shown[0]


def test_glue_drops_emphasis_markers_from_plain_text_and_keeps_markdown(monkeypatch):
    """{glue:text} does not parse Markdown: "*specific directions*" must not reach the page."""
    from IPython.display import Markdown

    stored = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False:
                        stored.__setitem__(name, value))
    nb.glue("a", "examples are *specific directions*, not **noise**; 2 * 3 * 4 = 24")
    assert stored["a"] == "examples are specific directions, not noise; 2 * 3 * 4 = 24"
    md = Markdown("keep *this*")
    nb.glue("b", md)
    assert stored["b"] is md
