"""Numbers, ranges and tables as a reader should see them in the book's prose.

The chapters build sentences from measured values. Rounding can make such a
sentence wrong in ways that are easy to miss in a template: a nonzero rate
printed as "at most 0%", a range printed as "6 to 6 times", an article
glued before a class name ("a Ankle boot"). :func:`pct`, :func:`span` and
:func:`article` are the one place where those choices are made.
:func:`table` is the one way a chapter shows a :class:`pandas.DataFrame`:
headers in words, sensible digits, no raw index, MultiIndex columns joined
in words, and a width that fits the page's text column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .._text import article, pct, span

__all__ = ["pct", "span", "article", "table", "header"]

def header(name: Any) -> str:
    """A column or index name in words: ``"off_fraction"`` becomes ``"off fraction"``.

    Tuples (MultiIndex columns) are joined with ", " after dropping empty
    parts; ``("gap", "mean")`` becomes ``"gap, mean"``.
    """
    if isinstance(name, tuple):
        parts = [header(p) for p in name if str(p).strip()]
        return ", ".join(parts)
    return str(name).replace("_", " ").strip()


def _default_format(digits: int) -> Callable[[Any], str]:
    def show(v: Any) -> str:
        if type(v).__module__ == "numpy" and hasattr(v, "item"):
            v = v.item()  # a NumPy scalar (what a DataFrame cell holds) as its Python value
        if isinstance(v, bool) or v is None:
            return "yes" if v is True else "no" if v is False else ""
        if isinstance(v, int):
            return f"{v:,}" if abs(v) >= 10_000 else str(v)
        if isinstance(v, float):
            if math.isnan(v):
                return ""
            if v == 0.0:
                return "0"
            if v.is_integer() and abs(v) < 1e6:
                return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
            if abs(v) < 10.0 ** -(digits + 1) or abs(v) >= 1e6:
                return f"{v:.{digits}g}" if digits > 0 else f"{v:.1e}"
            # `digits` significant digits, never fewer decimals than the integer part needs
            decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
            return f"{v:,.{decimals}f}" if abs(v) >= 10_000 else f"{v:.{decimals}f}"
        return str(v)
    return show


#: a format given by name in :func:`table`'s ``formats``
def _missing(v: Any) -> bool:
    """``None`` or a NaN: a cell a table shows empty."""
    return v is None or (isinstance(v, float) and math.isnan(v))


_NAMED: dict[str, Callable[[Any], str]] = {
    "pct": lambda v: "" if _missing(v) else pct(v),
    "pct1": lambda v: "" if _missing(v) else pct(v, 1),
    "int": lambda v: "" if _missing(v) else f"{int(v):,}",
    "g": lambda v: "" if _missing(v) else f"{v:g}",
}


def table(df: Any, formats: Mapping[Any, str | Callable[[Any], str]] | None = None, *,
          digits: int = 3, index: bool | None = None, rename: Mapping[Any, str] | None = None,
          caption: str | None = None, font_size: str | None = None) -> Any:
    """A DataFrame styled for the page: headers in words, sensible digits, no raw index.

    Parameters
    ----------
    df : pandas.DataFrame
        The table. A named (or multi-level) index is kept as columns; an
        unnamed ``RangeIndex`` is dropped.
    formats : mapping, optional
        Column name to a format string (``"{:.1%}"``), a function from a value
        to text, or one of the names ``"pct"`` (:func:`pct`), ``"pct1"``
        (:func:`pct` with one decimal), ``"int"``, ``"g"``. Other numeric
        columns show ``digits`` significant digits.
    digits : int, default 3
        Significant digits of floats without a format.
    index : bool, optional
        Keep the index as the first column(s); by default kept when it has a
        name (or names) or is not a plain range.
    rename : mapping, optional
        Column name to its header; other headers go through :func:`header`.
    caption : str, optional
        A caption above the table.
    font_size : str, optional
        A CSS size for the whole table (``"85%"``) when it has many columns.

    Returns
    -------
    pandas.io.formats.style.Styler
        Displayed as HTML by Jupyter and the book; columns wrap their text, so
        the table fits the text column (the browser test checks that).

    Raises
    ------
    ValueError
        When ``formats`` names a column the table does not have.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table needs a pandas DataFrame, got {type(df).__name__}")
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    formats = dict(formats or {})
    rename = dict(rename or {})
    known = set(df.columns) | {c[0] for c in df.columns if isinstance(c, tuple)} \
        | {n for n in df.index.names if n is not None}
    unknown = [c for c in list(formats) + list(rename) if c not in known]
    if unknown:
        raise ValueError(f"table: no column named {unknown!r}; columns are {list(df.columns)!r}")
    keep_index = index if index is not None else (
        any(n is not None for n in df.index.names) or not isinstance(df.index, pd.RangeIndex))
    out = df.reset_index() if keep_index else df.reset_index(drop=True)
    default = _default_format(digits)

    def as_fn(f: str | Callable[[Any], str]) -> Callable[[Any], str]:
        if callable(f):
            return f
        if f in _NAMED:
            return _NAMED[f]
        return f.format

    def format_of(col: Any) -> Callable[[Any], str]:
        if col in formats:
            return as_fn(formats[col])
        if isinstance(col, tuple) and col and col[0] in formats:  # a MultiIndex column's top
            return as_fn(formats[col[0]])
        return default

    columns = {}
    for col in out.columns:
        fn = format_of(col)
        columns[col] = [fn(v.item() if hasattr(v, "item") else v) for v in out[col]]
    names = []
    for col in out.columns:
        names.append(rename.get(col, header(col)))
    if len(set(names)) < len(names):
        raise ValueError(f"table: two columns get the same header {names!r}; pass rename=")
    shown = pd.DataFrame({n: columns[c] for n, c in zip(names, out.columns, strict=True)})
    styler = shown.style.hide(axis="index")
    table_props = [("max-width", "100%")] + ([("font-size", font_size)] if font_size else [])
    styles: list[dict[str, Any]] = [
        {"selector": "", "props": table_props},
        {"selector": "th, td", "props": [("white-space", "normal"), ("overflow-wrap", "anywhere")]}]
    styler = styler.set_table_styles(styles)
    if caption:
        styler = styler.set_caption(caption)
    return styler
