"""Null models: what a geometry measure reads when there is nothing to find.

A verdict in the book is a measurement set against a null, by a rule stated
before the run. This module holds the nulls and the rule in one place:

* :func:`on_fraction_null` -- closed form: the on-subspace fraction
  ``||P v|| / ||v||`` of an isotropic random direction ``v`` in R^n, for a
  k-dimensional subspace; ``||P v||^2 / ||v||^2 ~ Beta(k/2, (n-k)/2)``.
* :func:`median_on_fraction_null` -- the same for the *median* over m
  independent directions (what a chapter reports), by sampling.
* :func:`binomial_null` -- closed form: the share of ``n`` independent trials
  that succeed with probability ``p`` (an accuracy at chance, or the rate at
  which a reference classifier would repeat a given set of answers).
* :func:`band` -- a null's median and central band from samples (seeds of an
  untrained network, of a linear classifier trained on the same data, ...).
* :func:`bootstrap_median` -- the band of the *median* of ``m`` values drawn
  from a null's per-point values (bootstrap over points: the median of an
  untrained network's per-image measure, to set beside a trained one's).
* :func:`mapped` -- a band carried through a monotone function (quantiles
  commute with it), e.g. from an on-fraction ``f`` to the restricted-attack
  norm ratio ``1 / f`` that a locally linear margin implies.
* :func:`decide` -- the outcome of a one-sided test: ``"supports"``,
  ``"contradicts"`` or ``"cannot distinguish"``; a measurement inside the
  null's band is always ``"cannot distinguish"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from ._validate import check_choice, check_int, check_positive, check_tensor

__all__ = [
    "NullBand",
    "OUTCOMES",
    "on_fraction_null",
    "median_on_fraction_null",
    "binomial_null",
    "band",
    "bootstrap_median",
    "mapped",
    "decide",
]

#: The three outcomes of a test against a null.
OUTCOMES = ("supports", "contradicts", "cannot distinguish")


class NullBand(NamedTuple):
    """A null distribution summarised: its median and central band.

    ``kind`` names the null (``"random direction"``, ``"untrained network"``,
    ``"linear classifier"``, ...); ``low`` and ``high`` are its
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles; ``n`` is the number
    of samples behind it (0 for a closed form).
    """

    kind: str
    median: float
    low: float
    high: float
    level: float
    n: int


def _check_level(level: object) -> float:
    value = check_positive(level, "level")
    if value >= 1.0:
        raise ValueError(f"level: expected a probability in (0, 1), got {level!r}")
    return value


def _check_dims(n: object, k: object) -> tuple[int, int]:
    n_i = check_int(n, "n", 2)
    k_i = check_int(k, "k", 1)
    if k_i >= n_i:
        raise ValueError(f"k: the subspace dimension must be below n = {n_i}, got {k_i}")
    return n_i, k_i


def _beta_quantile(q: float, a: float, b: float) -> float:
    from scipy.special import betaincinv

    return float(betaincinv(a, b, q))


def on_fraction_null(n: int, k: int, *, level: float = 0.9) -> NullBand:
    """The on-subspace fraction of one isotropic random direction, in closed form.

    For ``v`` uniform on the sphere of R^n and a fixed k-dimensional
    subspace with orthogonal projection ``P``, ``||P v||^2 / ||v||^2`` follows
    ``Beta(k/2, (n-k)/2)``; the fraction ``||P v|| / ||v||`` is its square
    root. Its root mean square is ``sqrt(k/n)``; its median is smaller (0.84
    ``sqrt(k/n)`` at n = 50, k = 2).

    Parameters
    ----------
    n : int
        The ambient dimension.
    k : int
        The subspace dimension, ``1 <= k < n``.
    level : float
        The probability mass of the central band (0.9: the 5-95% band).

    Returns
    -------
    NullBand
        ``kind="random direction"``, ``n=0`` (closed form).
    """
    n, k = _check_dims(n, k)
    level = _check_level(level)
    a, b = k / 2.0, (n - k) / 2.0
    lo, hi = (1.0 - level) / 2.0, (1.0 + level) / 2.0
    return NullBand("random direction", math.sqrt(_beta_quantile(0.5, a, b)),
                    math.sqrt(_beta_quantile(lo, a, b)), math.sqrt(_beta_quantile(hi, a, b)),
                    level, 0)


def median_on_fraction_null(n: int, k: int, m: int, *, level: float = 0.9,
                            draws: int = 4000, seed: int = 0) -> NullBand:
    """The median on-subspace fraction of ``m`` independent random directions.

    What a chapter reports is usually a median over m points; under the null
    each point's fraction is an independent draw of :func:`on_fraction_null`.
    The median's distribution is sampled ``draws`` times from the exact Beta
    law (no dimension-n vectors are formed), with a NumPy generator of its own.

    Parameters
    ----------
    n, k : int
        Ambient and subspace dimension.
    m : int
        How many directions the median is taken over.
    level : float
        Mass of the central band.
    draws : int
        Samples of the median.
    seed : int
        Seeds the sampling (the global RNG is untouched).

    Returns
    -------
    NullBand
        ``kind="random direction (median of m)"``.
    """
    n, k = _check_dims(n, k)
    m = check_int(m, "m", 1)
    draws = check_int(draws, "draws", 10)
    level = _check_level(level)
    import numpy as np

    rng = np.random.default_rng(check_int(seed, "seed", 0))  # its own stream
    frac = torch.from_numpy(np.sqrt(rng.beta(k / 2.0, (n - k) / 2.0, size=(draws, m))))
    medians = frac.median(dim=1).values
    return band(medians, kind=f"random direction (median of {m})", level=level)


def binomial_null(n: int, p: float, *, level: float = 0.9,
                  kind: str = "") -> NullBand:
    """The share of ``n`` independent trials that succeed with probability ``p``.

    The null of an accuracy at chance (``p = 1 / C`` for ``C`` classes), or of
    a rate another classifier reaches (``p`` its measured rate, ``n`` the
    number of test points behind the measurement). Exact quantiles of
    ``Binomial(n, p) / n``.

    Parameters
    ----------
    n : int
        Number of trials (test points), at least 1.
    p : float
        Success probability, in [0, 1].
    level : float
        Mass of the central band.
    kind : str
        Names the null; default ``"chance (p = ...)"``.

    Returns
    -------
    NullBand
        ``n=0`` (closed form).
    """
    n = check_int(n, "n", 1)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    p = float(p)
    level = _check_level(level)
    ks = torch.arange(n + 1, dtype=torch.float64)
    if p in (0.0, 1.0):
        cdf = (ks >= p * n).to(torch.float64)
    else:
        logpmf = (torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64)) - torch.lgamma(ks + 1)
                  - torch.lgamma(n - ks + 1) + ks * math.log(p) + (n - ks) * math.log1p(-p))
        cdf = torch.cumsum(torch.exp(logpmf), 0)

    def quantile(q: float) -> float:
        idx = int(torch.searchsorted(cdf, torch.tensor([q - 1e-12], dtype=torch.float64)))
        return min(idx, n) / n

    name = kind or f"chance (p = {p:.3g})"
    return NullBand(name, quantile(0.5), quantile((1.0 - level) / 2.0),
                    quantile((1.0 + level) / 2.0), level, 0)


def band(samples: torch.Tensor | Sequence[float], *, kind: str,
         level: float = 0.9) -> NullBand:
    """A null's median and central band from samples of it.

    Parameters
    ----------
    samples : torch.Tensor or sequence of float
        Values of the measure under the null: over seeds of an untrained
        network, of a linear classifier, of random boundaries.
    kind : str
        Names the null.
    level : float
        Mass of the central band (the band runs from the ``(1 - level) / 2``
        to the ``(1 + level) / 2`` empirical quantile).

    Returns
    -------
    NullBand
    """
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind: expected a non-empty str naming the null, got {kind!r}")
    level = _check_level(level)
    t = samples if isinstance(samples, torch.Tensor) else torch.as_tensor(
        list(samples), dtype=torch.float64)
    t = check_tensor(t, "samples", min_ndim=1).detach().double().flatten().cpu()
    if t.numel() == 0:
        raise ValueError("samples: empty")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("samples: must be finite")
    q = torch.tensor([0.5, (1.0 - level) / 2.0, (1.0 + level) / 2.0], dtype=torch.float64)
    med, lo, hi = (float(v) for v in torch.quantile(t, q))
    return NullBand(kind, med, lo, hi, level, int(t.numel()))


def bootstrap_median(values: torch.Tensor | Sequence[float], *, kind: str,
                     m: int | None = None, draws: int = 1000, level: float = 0.9,
                     seed: int = 0) -> NullBand:
    """The band of a median over ``m`` points, by resampling a null's points.

    ``values`` are one measure at each point under the null (an untrained
    network's crossing ratio at each test image, say); the null of a median
    over ``m`` points is sampled by drawing ``m`` of them with replacement,
    ``draws`` times. ``+inf`` is allowed (a censored value: "beyond the range
    searched") and sorts above every finite value; NaN is not.

    Parameters
    ----------
    values : torch.Tensor or sequence of float
        The null's per-point values (at least 2).
    kind : str
        Names the null.
    m : int, optional
        Size of the median; default ``len(values)``.
    draws : int
        Bootstrap resamples.
    level : float
        Mass of the central band.
    seed : int
        Seeds the resampling (a generator of its own; the global RNG is
        untouched).

    Returns
    -------
    NullBand
        ``n=draws``.

    Raises
    ------
    ValueError
        If a value is NaN or ``-inf``, or if the band's edges are infinite
        (more than about half the values censored).
    """
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind: expected a non-empty str naming the null, got {kind!r}")
    t = values if isinstance(values, torch.Tensor) else torch.as_tensor(
        list(values), dtype=torch.float64)
    t = check_tensor(t, "values", min_ndim=1, finite=False).detach().double().flatten().cpu()
    if t.numel() < 2:
        raise ValueError(f"values: need at least 2 points to resample, got {t.numel()}")
    if bool(torch.isnan(t).any()) or bool((t == -math.inf).any()):
        raise ValueError("values: NaN or -inf found (only +inf, a censored value, is allowed)")
    m = t.numel() if m is None else check_int(m, "m", 1)
    draws = check_int(draws, "draws", 10)
    level = _check_level(level)
    g = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    idx = torch.randint(t.numel(), (draws, m), generator=g)
    medians = t[idx].sort(dim=1).values[:, (m - 1) // 2].sort().values
    # nearest-rank quantiles: a censored (+inf) median may sit beyond the band
    ranks = [round(q * (draws - 1)) for q in (0.5, (1.0 - level) / 2.0, (1.0 + level) / 2.0)]
    med, lo, hi = (float(medians[r]) for r in ranks)
    if not math.isfinite(hi):
        raise ValueError("values: too many are +inf (censored) for the median's band to be "
                         "finite; widen the range searched")
    return NullBand(kind, med, lo, hi, level, draws)


def mapped(null: NullBand, fn: Callable[[float], float], *, kind: str,
           increasing: bool) -> NullBand:
    """A null band carried through a monotone function.

    Medians and quantiles commute with a monotone map, so the band of
    ``fn(X)`` is ``fn`` applied to the band of ``X`` (its edges swapped when
    ``fn`` decreases). Used where a closed-form null exists for one quantity
    and the chapter reports a monotone function of it.

    Parameters
    ----------
    null : NullBand
        The band of the original quantity.
    fn : callable
        Monotone on the band's range; it is not checked beyond the three
        points it is applied to.
    kind : str
        Names the new null (say what the map assumes).
    increasing : bool
        Whether ``fn`` increases (``False``: it decreases).

    Returns
    -------
    NullBand

    Raises
    ------
    ValueError
        If ``fn`` gives a non-finite value, or values out of the order
        ``increasing`` states.
    """
    if not isinstance(null, NullBand):
        raise TypeError(f"null: expected a NullBand, got {type(null).__name__}")
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind: expected a non-empty str naming the null, got {kind!r}")
    if not isinstance(increasing, bool):
        raise TypeError(f"increasing: expected a bool, got {increasing!r}")
    lo, med, hi = (float(fn(v)) for v in (null.low, null.median, null.high))
    if not all(math.isfinite(v) for v in (lo, med, hi)):
        raise ValueError(f"fn: gives a non-finite value on the band ({lo}, {med}, {hi})")
    if not increasing:
        lo, hi = hi, lo
    if not lo <= med <= hi:
        raise ValueError("fn: is not monotone in the stated direction on the band "
                         f"(increasing={increasing}: {lo}, {med}, {hi})")
    return NullBand(kind, med, lo, hi, null.level, null.n)


def decide(measured: float, null: NullBand, predicts: str) -> str:
    """The outcome of a one-sided test of a measurement against a null.

    Parameters
    ----------
    measured : float
        The measurement.
    null : NullBand
        What the measure reads under the null.
    predicts : {"below", "above"}
        Which side of the null the hypothesis under test predicts.

    Returns
    -------
    str
        ``"supports"`` when ``measured`` lies beyond the band on the predicted
        side, ``"contradicts"`` when beyond it on the other side, ``"cannot
        distinguish"`` inside the band (edges included).
    """
    if not isinstance(null, NullBand):
        raise TypeError(f"null: expected a NullBand, got {type(null).__name__}")
    check_choice(predicts, "predicts", ("below", "above"))
    value = float(measured)
    if not math.isfinite(value):
        raise ValueError(f"measured: must be finite, got {measured!r}")
    if null.low <= value <= null.high:
        return "cannot distinguish"
    below = value < null.low
    return "supports" if below == (predicts == "below") else "contradicts"
