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
* :func:`decide` -- the outcome of a one-sided test: ``"supports"``,
  ``"contradicts"`` or ``"cannot distinguish"``; a measurement inside the
  null's band is always ``"cannot distinguish"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
