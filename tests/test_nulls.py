"""Null models and the dimple test: a tilted plane must not pass for a dimpled boundary."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmmlib import geometry, nulls, synthetic


def test_on_fraction_null_matches_sampled_random_directions():
    n, k = 50, 2
    closed = nulls.on_fraction_null(n, k)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(40000, n, generator=g, dtype=torch.float64)
    sampled = nulls.band(v[:, :k].norm(dim=1) / v.norm(dim=1), kind="sampled")
    assert abs(closed.median - sampled.median) < 0.005
    assert abs(closed.low - sampled.low) < 0.005 and abs(closed.high - sampled.high) < 0.01
    # the median is below the root mean square sqrt(k/n): 0.84 of it at n=50, k=2
    assert closed.median / math.sqrt(k / n) == pytest.approx(0.844, abs=0.002)


def test_median_null_narrows_with_m_and_centres_on_the_single_median():
    one = nulls.on_fraction_null(784, 16)
    many = nulls.median_on_fraction_null(784, 16, 100, seed=1)
    assert many.low < one.median < many.high
    assert (many.high - many.low) < 0.2 * (one.high - one.low)
    again = nulls.median_on_fraction_null(784, 16, 100, seed=1)
    assert again == many


def test_decide_never_claims_an_outcome_inside_the_band():
    b = nulls.NullBand("x", 0.5, 0.4, 0.6, 0.9, 10)
    assert nulls.decide(0.45, b, "below") == "cannot distinguish"
    assert nulls.decide(0.4, b, "above") == "cannot distinguish"       # the edge is inside
    assert nulls.decide(0.3, b, "below") == "supports"
    assert nulls.decide(0.3, b, "above") == "contradicts"
    assert nulls.decide(0.7, b, "above") == "supports"
    with pytest.raises(ValueError, match="predicts"):
        nulls.decide(0.3, b, "less")
    with pytest.raises(ValueError, match="finite"):
        nulls.decide(float("nan"), b, "below")


def test_a_random_boundary_passes_the_old_clinging_rule_but_not_the_null():
    """The issue's example: 'three times closer along the normal' is on-fraction <= 1/3,
    which an isotropic random normal meets most of the time at n=50, k=2."""
    g = torch.Generator().manual_seed(3)
    v = torch.randn(5000, 50, generator=g, dtype=torch.float64)
    frac = v[:, :2].norm(dim=1) / v.norm(dim=1)
    assert float((frac <= 1 / 3).double().mean()) > 0.9              # the old rule says "clings"
    m = nulls.median_on_fraction_null(50, 2, 20, seed=0)
    assert nulls.decide(float(frac[:20].median()), m, "below") == "cannot distinguish"


class Affine(nn.Module):
    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(float(b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x @ self.w + self.b
        return torch.stack([-f / 2, f / 2], 1)


def _line_probes(n: int = 101) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.linspace(-0.05, 1.15, n)
    probes = torch.stack([xs, torch.full_like(xs, 0.5)], 1)
    basis = torch.tensor([[1.0], [0.0]]).expand(n, 2, 1)
    return probes, basis


def _plane_probes(n: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.linspace(0.02, 0.98, n)
    X, Y = torch.meshgrid(g, g, indexing="ij")
    probes = torch.stack([X.flatten(), Y.flatten(), torch.full((n * n,), 0.5)], 1)
    return probes, torch.eye(3, 2).expand(n * n, 3, 2)


def test_a_tilted_plane_has_no_dimples_on_the_five_point_toy():
    toy = synthetic.five_points_line()
    probes, basis = _line_probes()
    for w, b in ((torch.tensor([1.0, 3.0]), -2.0), (torch.tensor([-0.5, 1.0]), -0.3)):
        prof = geometry.dimple_profile(Affine(w, b), probes, basis, toy.x, max_distance=3.0,
                                       tol=1e-6)
        assert bool(prof.found.all())
        assert prof.bend < 1e-6                                       # exactly affine


def test_a_linear_classifier_trained_on_the_checkerboard_has_no_dimples():
    board = synthetic.checkerboard_plane()
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters(), lr=0.1)
    for _ in range(200):
        loss = nn.functional.cross_entropy(lin(board.x), board.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    probes, basis = _plane_probes()
    prof = geometry.dimple_profile(lin, probes, basis, board.x, max_distance=50.0, tol=1e-6,
                                   n_scan=64)
    assert int(prof.found.sum()) > 100
    assert prof.bend < 1e-3  # float32 bisection; a dimpled boundary reads 0.1 and more


class Dimpled(nn.Module):
    """A boundary that lies 0.05 above the line and bends around each of the five points."""

    def __init__(self, x0: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("x0", x0)
        self.register_buffer("s", labels.float() * 2 - 1)   # class 1 points push it up

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        bumps = (self.s * torch.exp(-((p[:, :1] - self.x0) / 0.04) ** 2)).sum(1)
        f = (p[:, 1] - 0.55) + 0.1 * bumps                    # f > 0: class 1
        return torch.stack([-f, f], 1)


def test_a_boundary_bent_at_the_points_has_dimples_there():
    toy = synthetic.five_points_line()
    model = Dimpled(toy.x[:, 0], toy.y)
    probes, basis = _line_probes(241)
    prof = geometry.dimple_profile(model, probes, basis, toy.x, max_distance=1.0, tol=1e-6)
    assert bool(prof.found.all())
    assert prof.bend > 0.5                                     # far from affine
    assert prof.locality < -0.3                                # and bent where the points are
    # the same boundary without the bumps: a plane parallel to the line, no bend at all
    flat = Affine(torch.tensor([0.0, 1.0]), -0.55)
    assert geometry.dimple_profile(flat, probes, basis, toy.x, tol=1e-6).bend < 1e-6


def test_dimple_profile_refuses_bad_input():
    toy = synthetic.five_points_line()
    probes, basis = _line_probes()
    net = Affine(torch.tensor([1.0, 1.0]), 0.0)
    with pytest.raises(ValueError, match="train_x"):
        geometry.dimple_profile(net, probes, basis, toy.x[:, :1])
    with pytest.raises(ValueError, match="pair"):
        geometry.dimple_profile(net, probes, basis, toy.x, pair=(0, 5))
    with pytest.raises(ValueError, match="basis"):
        geometry.dimple_profile(net, probes, basis[:, :1], toy.x)


def test_binomial_null_matches_sampled_shares_and_refuses_bad_p():
    import numpy as np

    for n, p in ((600, 0.5), (1000, 0.1), (37, 0.9)):
        null = nulls.binomial_null(n, p)
        draws = np.random.default_rng(0).binomial(n, p, 200_000) / n
        lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
        assert abs(null.low - lo) <= 1.0 / n + 1e-12
        assert abs(null.high - hi) <= 1.0 / n + 1e-12
        assert abs(null.median - med) <= 1.0 / n + 1e-12
        assert null.low <= p <= null.high
    assert nulls.decide(0.16, nulls.binomial_null(600, 0.5), "above") == "contradicts"
    assert nulls.binomial_null(10, 0.0).high == 0.0
    assert nulls.binomial_null(4, 0.3, kind="second network").kind == "second network"
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="p:"):
            nulls.binomial_null(10, bad)
    with pytest.raises(ValueError, match="n"):
        nulls.binomial_null(0, 0.5)


def test_bootstrap_median_matches_the_median_of_fresh_draws():
    # per-point values of a null: Exp(1) draws; a median over m = 25 of them
    g = torch.Generator().manual_seed(3)
    pool = torch.empty(4000, dtype=torch.float64).exponential_(generator=g)
    null = nulls.bootstrap_median(pool, kind="exp", m=25, draws=2000, seed=1)
    fresh = torch.empty(3000, 25, dtype=torch.float64).exponential_(generator=g)
    ref = nulls.band(fresh.median(dim=1).values, kind="fresh")
    # the pool's own sampling error (sd of its median about 0.016) dominates
    assert abs(null.median - ref.median) < 0.06
    assert abs(null.low - ref.low) < 0.08 and abs(null.high - ref.high) < 0.1
    assert null.n == 2000 and null.kind == "exp"
    # the band narrows as m grows, around the same median (ln 2)
    wide = nulls.bootstrap_median(pool, kind="exp", m=5, seed=1)
    narrow = nulls.bootstrap_median(pool, kind="exp", m=200, seed=1)
    assert narrow.high - narrow.low < 0.5 * (wide.high - wide.low)
    assert abs(narrow.median - math.log(2)) < 0.05


def test_bootstrap_median_treats_inf_as_censored_and_refuses_nan():
    vals = torch.cat([torch.linspace(0.5, 1.5, 17), torch.full((3,), float("inf"))])
    null = nulls.bootstrap_median(vals, kind="c", draws=500)
    # censoring shifts the median up (a nanmedian that dropped them would not)
    dropped = nulls.bootstrap_median(vals[:17], kind="c", draws=500)
    assert math.isfinite(null.high) and null.median > dropped.median
    with pytest.raises(ValueError, match="NaN"):
        nulls.bootstrap_median(torch.tensor([0.1, float("nan"), 0.3]), kind="c")
    with pytest.raises(ValueError, match="censored"):
        nulls.bootstrap_median(torch.tensor([0.1] + [float("inf")] * 9), kind="c")
    with pytest.raises(ValueError, match="at least 2"):
        nulls.bootstrap_median([0.1], kind="c")
    with pytest.raises(TypeError, match="kind"):
        nulls.bootstrap_median([0.1, 0.2], kind="")


def test_mapped_carries_a_band_through_a_monotone_map():
    f = nulls.on_fraction_null(784, 16)
    r = nulls.mapped(f, lambda v: 1.0 / v, kind="1/f", increasing=False)
    assert r.low == pytest.approx(1 / f.high) and r.high == pytest.approx(1 / f.low)
    assert r.median == pytest.approx(1 / f.median) and r.level == f.level
    # a sampled check: the band of 1/F from draws equals the mapped band
    g = torch.Generator().manual_seed(0)
    v = torch.randn(20000, 784, generator=g, dtype=torch.float64)
    frac = v[:, :16].norm(dim=1) / v.norm(dim=1)
    sampled = nulls.band(1.0 / frac, kind="s")
    assert abs(sampled.low - r.low) / r.low < 0.03 and abs(sampled.high - r.high) / r.high < 0.03
    up = nulls.mapped(f, lambda v: 1.0 / math.sqrt(1 - v * v), kind="off", increasing=True)
    assert up.low < up.median < up.high
    with pytest.raises(ValueError, match="monotone"):
        nulls.mapped(f, lambda v: 1.0 / v, kind="x", increasing=True)
    with pytest.raises(ValueError, match="non-finite"):
        nulls.mapped(f, lambda v: math.inf, kind="x", increasing=True)
