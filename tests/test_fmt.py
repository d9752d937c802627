"""dmmlib.book.fmt: numbers, ranges, articles and tables as the prose shows them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dmmlib.book import fmt


@pytest.mark.parametrize("value, digits, expected", [
    (0.25, 0, "25%"), (0.0, 0, "0%"), (1.0, 0, "100%"), (0.002, 0, "0.2%"),
    (0.004, 0, "0.4%"), (0.0049, 0, "0.5%"), (0.996, 0, "99.6%"), (0.9995, 1, "99.95%"),
    (1e-7, 0, "<0.001%"), (1 - 1e-7, 0, ">99.999%"), (0.123, 1, "12.3%"),
])
def test_pct_never_rounds_a_nonzero_rate_to_zero_or_a_partial_one_to_all(value, digits, expected):
    assert fmt.pct(value, digits) == expected


def test_pct_rejects_what_it_cannot_print():
    with pytest.raises(ValueError, match="finite"):
        fmt.pct(math.nan)
    with pytest.raises(ValueError, match="digits"):
        fmt.pct(0.5, digits=4, max_digits=2)


def test_span_collapses_ends_that_print_alike_and_checks_their_order():
    assert fmt.span(5.6, 6.4) == "6"
    assert fmt.span(5.2, 7.4) == "5 to 7"
    assert fmt.span(0.645, 0.651, "{:.2f}") == "0.65"
    assert fmt.span(0.18, 0.24, "{:.2f}") == "0.18 to 0.24"
    assert fmt.span(1, 2, lambda v: f"{v:g}x", joiner="–") == "1x–2x"
    with pytest.raises(ValueError, match="above its high end"):
        fmt.span(3, 2)


@pytest.mark.parametrize("word, expected", [
    ("Ankle boot", "an Ankle boot"), ("Bag", "a Bag"), ("T-shirt/top", "a T-shirt/top"),
    ("untrained network", "an untrained network"), ("unit", "a unit"), ("hour", "an hour"),
    ("one-pixel attack", "a one-pixel attack"), ("Sneaker", "a Sneaker"),
])
def test_article(word, expected):
    assert fmt.article(word) == expected


def test_article_needs_a_word():
    with pytest.raises(ValueError, match="non-empty"):
        fmt.article("  ")


def test_table_writes_headers_in_words_and_hides_a_plain_index():
    df = pd.DataFrame({"off_fraction": [0.13212, 0.5], "accuracy": [0.95, 0.9991]})
    data = fmt.table(df, {"accuracy": "pct"}).data
    assert list(data.columns) == ["off fraction", "accuracy"]
    assert data["off fraction"].tolist() == ["0.132", "0.500"]
    assert data["accuracy"].tolist() == ["95%", "99.9%"]
    html = fmt.table(df).to_html()
    assert "row_heading" not in html  # the RangeIndex is not shown


def test_table_keeps_a_named_index_and_joins_multiindex_columns():
    df = pd.DataFrame({"alpha": [1.0, 1.0, 4.0], "gap": [0.1, 0.3, 0.2]})
    agg = df.groupby("alpha").agg(["mean", "std"])
    data = fmt.table(agg, {"alpha": "g"}).data
    assert list(data.columns) == ["alpha", "gap, mean", "gap, std"]
    assert data["alpha"].tolist() == ["1", "4"]
    assert data["gap, mean"].tolist() == ["0.200", "0.200"]


def test_table_refuses_a_format_for_a_missing_column_and_duplicate_headers():
    df = pd.DataFrame({"a_b": [1.0], "a b": [2.0]})
    with pytest.raises(ValueError, match="no column named"):
        fmt.table(df, {"missing": "pct"})
    with pytest.raises(ValueError, match="same header"):
        fmt.table(df)
    assert list(fmt.table(df, rename={"a b": "other"}).data.columns) == ["a b", "other"]
    with pytest.raises(TypeError, match="DataFrame"):
        fmt.table([1, 2])


def test_table_lets_long_headers_wrap():
    html = fmt.table(pd.DataFrame({"x": [1.0]}), font_size="85%").to_html()
    assert "white-space: normal" in html and "font-size: 85%" in html


def test_numpy_scalars_read_like_python_values():
    import numpy as np
    import pandas as pd

    html = fmt.table(pd.DataFrame({"kept": np.array([True, False]),
                                   "count": np.array([12345, 7])})).to_html()
    assert "yes" in html and "no" in html and "True" not in html
    assert "12,345" in html


def test_named_formats_leave_missing_cells_empty():
    import pandas as pd

    df = pd.DataFrame({"wd": [0.01, float("nan")], "n": [3.0, float("nan")]})
    html = fmt.table(df, {"wd": "g", "n": "int"}).to_html()
    assert "nan" not in html.lower() and "0.01" in html and ">3<" in html
