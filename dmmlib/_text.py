"""Numbers and words for generated prose, shared by the experiments and the book.

Public as :mod:`dmmlib.book.fmt` (``pct``, ``span``, ``article``); the
experiment modules, which must not import the book package, use them from
here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["pct", "span", "article"]

_VOWEL_SOUND = set("aeiouAEIOU")
# words that start with a vowel letter but a consonant sound, and the reverse
_CONSONANT_SOUND = ("one", "uni", "use", "usu", "eu")
_VOWEL_LETTERS_SILENT = ("hour", "honest", "honou", "heir")


def _finite(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return v


def pct(value: float, digits: int = 0, max_digits: int = 3) -> str:
    """A fraction as a percentage that rounding never turns into 0% or 100%.

    ``value`` is a fraction (0.25 is 25%). With ``digits`` decimals, a value
    strictly between 0 and 1 that would print as ``0%`` or ``100%`` gets more
    decimals, up to ``max_digits``; beyond that it prints as ``<0.001%`` or
    ``>99.999%``. Exactly 0 and 1 print as ``0%`` and ``100%``.

    Parameters
    ----------
    value : float
        The fraction, usually in [0, 1] (values outside are printed as they are).
    digits : int, default 0
        Decimals of the percentage when rounding does not hide the value.
    max_digits : int, default 3
        The most decimals :func:`pct` adds to keep 0 < value < 1 off 0% and 100%.

    Returns
    -------
    str
        For example ``"3%"``, ``"0.2%"``, ``"99.8%"``.

    Examples
    --------
    >>> pct(0.25), pct(0.002), pct(0.9995, 1), pct(0.0)
    ('25%', '0.2%', '99.95%', '0%')
    """
    v = _finite(value, "pct's value")
    if digits < 0 or max_digits < digits:
        raise ValueError(f"need 0 <= digits <= max_digits, got digits={digits}, "
                         f"max_digits={max_digits}")
    if not 0.0 < v < 1.0:
        return f"{100 * v:.{digits}f}%"
    for d in range(digits, max_digits + 1):
        text = f"{100 * v:.{d}f}"
        if float(text) not in (0.0, 100.0):
            return f"{text}%"
    limit = f"{10.0 ** -max_digits:.{max_digits}f}"
    return f"<{limit}%" if v < 0.5 else f">{100 - float(limit):.{max_digits}f}%"


def span(low: float, high: float, fmt: str | Callable[[float], str] = "{:.0f}",
         joiner: str = " to ") -> str:
    """A range of measured values, as one value when the two ends print alike.

    Parameters
    ----------
    low, high : float
        The smallest and largest value (their order is checked).
    fmt : str or callable, default ``"{:.0f}"``
        A format string or a function from a number to text.
    joiner : str, default ``" to "``
        What stands between the two ends.

    Returns
    -------
    str
        ``"5 to 7"``, or ``"6"`` when both ends print as 6: never "6 to 6".

    Examples
    --------
    >>> span(5.2, 7.4), span(5.6, 6.4), span(0.18, 0.24, "{:.2f}")
    ('5 to 7', '6', '0.18 to 0.24')
    """
    lo, hi = _finite(low, "span's low end"), _finite(high, "span's high end")
    if lo > hi:
        raise ValueError(f"span's low end {lo} is above its high end {hi}")
    show = fmt.format if isinstance(fmt, str) else fmt
    a, b = show(lo), show(hi)
    return a if a == b else f"{a}{joiner}{b}"


def article(word: str) -> str:
    """``word`` with the indefinite article it takes: "an Ankle boot", "a T-shirt/top".

    Chosen by the first letter with the usual exceptions ("a unit", "an hour");
    letters spelt out as initials ("an MLP", "an FGSM step") are not handled:
    write those by hand.

    Examples
    --------
    >>> article("Ankle boot"), article("Bag"), article("untrained network"), article("unit")
    ('an Ankle boot', 'a Bag', 'an untrained network', 'a unit')
    """
    if not word or not word.strip():
        raise ValueError("article needs a non-empty word")
    w = word.strip()
    low = w.lower()
    vowel = w[0] in _VOWEL_SOUND
    if vowel and low.startswith(_CONSONANT_SOUND):
        vowel = False
    if low.startswith(_VOWEL_LETTERS_SILENT):
        vowel = True
    return f"{'an' if vowel else 'a'} {w}"
