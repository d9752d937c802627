"""The clinging and dimple tests: they answer "no" where there is nothing to find,
and "yes" on boundaries built to cling or to dimple (so they can come out either way)."""

import math

import pytest
import torch
from torch import nn

from dmmlib import hypotheses, nulls, synthetic
from dmmlib.experiments import phases


class Margin(nn.Module):
    """Two logits whose difference is a given function of the input."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        m = self.f(x)
        return torch.stack([-m / 2, m / 2], dim=1)


def _linear(w, b):
    return Margin(lambda x: x @ w + b)


@pytest.fixture(scope="module")
def hd():
    return synthetic.linear_subspace(50, 2, 200, labels="intervals", cells=4, seed=0)


def _hd_points(hd):
    idx = torch.arange(0, 200, 10)
    return hd.x[idx], hd.y[idx], hd.tangent[idx]


def test_spearman_null_is_the_independence_band():
    band = hypotheses.spearman_null(101, level=0.9)
    assert band.median == 0.0 and band.low == -band.high
    assert band.high == pytest.approx(1.6449 / 10, rel=1e-3)
    with pytest.raises(ValueError, match="m"):
        hypotheses.spearman_null(3)
    with pytest.raises(ValueError, match="level"):
        hypotheses.spearman_null(10, level=1.0)


def test_untrained_networks_do_not_cling_by_the_rule(hd):
    x, y, basis = _hd_points(hd)
    outcomes = [hypotheses.clinging_test(phases.scaled_mlp(50, 64, 1.0, s, std=0.1), x, y,
                                         basis).outcome for s in range(10)]
    assert "supports" not in outcomes


def test_random_linear_boundaries_do_not_cling_by_the_rule(hd):
    x, y, basis = _hd_points(hd)
    g = torch.Generator().manual_seed(0)
    outcomes = [hypotheses.clinging_test(_linear(torch.randn(50, generator=g), 0.0), x, y,
                                         basis).outcome for _ in range(100)]
    # one-sided 90% band: a random normal falls below it with probability 0.05
    assert outcomes.count("supports") <= 10


def test_clinging_test_can_come_out_either_way(hd):
    x, y, basis = _hd_points(hd)
    U = hd.tangent[0]                          # (50, 2)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(50, generator=g)
    off = w - U @ (U.T @ w)                    # normal orthogonal to the data: clings
    on = U @ (U.T @ w)                         # normal inside the data subspace
    clings = hypotheses.clinging_test(_linear(off, 0.0), x, y, basis)
    leans = hypotheses.clinging_test(_linear(on, 0.0), x, y, basis)
    assert clings.outcome == "supports" and clings.measured < 1e-5
    assert leans.outcome == "contradicts" and leans.measured > 0.99
    assert clings.per_point.shape == (20,) and clings.null.kind == "random direction"


def test_clinging_test_takes_another_null(hd):
    x, y, basis = _hd_points(hd)
    null = nulls.band([0.5, 0.6, 0.7], kind="untrained network")
    r = hypotheses.clinging_test(phases.scaled_mlp(50, 64, 1.0, 0, std=0.1), x, y, basis,
                                 null=null)
    assert r.null is null and r.outcome == nulls.decide(r.measured, null, "below")
    with pytest.raises(TypeError, match="null"):
        hypotheses.clinging_test(_linear(torch.ones(50), 0.0), x, y, basis, null=0.3)


def test_linear_classifier_fits_and_weight_decay_turns_it(hd):
    lin = hypotheses.linear_classifier(hd.x, hd.y, seed=0)
    assert isinstance(lin, nn.Linear) and not lin.training
    assert all(p.grad is None and not p.requires_grad for p in lin.parameters())
    x = torch.randn(300, 5, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    fitted = hypotheses.linear_classifier(x.float(), y, seed=0, steps=300)
    assert (fitted(x.float()).argmax(1) == y).double().mean() > 0.97
    # the same seed gives the same classifier; the global RNG is untouched
    state = torch.get_rng_state()
    again = hypotheses.linear_classifier(x.float(), y, seed=0, steps=300)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(again.weight, fitted.weight)
    # on data in a subspace, weight decay shrinks the off-subspace part of w (its direction)
    U = hd.tangent[0].double()

    def off_share(m):
        w = (m.weight[1] - m.weight[0]).double()
        return float((w - U @ (U.T @ w)).norm() / w.norm())

    wd = hypotheses.linear_classifier(hd.x, hd.y, seed=0, weight_decay=0.05)
    assert off_share(wd) < 0.5 * off_share(lin)
    for bad, match in (({"steps": 0}, "steps"), ({"lr": 0}, "lr"),
                       ({"weight_decay": -1}, "weight_decay"), ({"n_classes": 1}, "n_classes")):
        with pytest.raises(ValueError, match=match):
            hypotheses.linear_classifier(x, y, **bad)
    with pytest.raises(ValueError, match="y"):
        hypotheses.linear_classifier(x, y[:5])


def _toy_probes():
    xs = torch.linspace(0.05, 1.05, 61)
    return torch.stack([xs, torch.full_like(xs, 0.5)], 1), torch.eye(2, 1).expand(61, 2, 1)


def _plane_probes():
    g = torch.linspace(0.02, 0.98, 15)
    p = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    return torch.cat([p, torch.full((len(p), 1), 0.5)], 1), torch.eye(3, 2).expand(len(p), 3, 2)


NULL = hypotheses.spearman_null(50)


@pytest.mark.parametrize("toy", ["five points", "checkerboard"])
def test_linear_classifiers_have_no_dimples(toy):
    ds = synthetic.five_points_line() if toy == "five points" else synthetic.checkerboard_plane(5)
    probes, basis = _toy_probes() if toy == "five points" else _plane_probes()
    trained = hypotheses.linear_classifier(ds.x, ds.y, seed=0)
    assert hypotheses.dimple_test(trained, probes, basis, ds.x, ds.y, locality_null=NULL,
                                  max_distance=5.0).outcome == "cannot distinguish"
    g = torch.Generator().manual_seed(3)
    n = ds.x.shape[1]
    for _ in range(5):  # tilted planes that do cross the manifold inside the probed range
        w = torch.randn(n, generator=g)
        w[-1] = w[-1].abs() + 0.5
        b = -float(w @ probes.mean(0))
        t = hypotheses.dimple_test(_linear(w, b), probes, basis, ds.x, ds.y, locality_null=NULL,
                                   max_distance=20.0)
        assert int(t.profile.found.sum()) >= 0.9 * len(probes)
        assert t.profile.bend < 1e-3
        assert t.flat == "cannot distinguish" and t.outcome == "cannot distinguish"


def test_dimple_test_sees_a_built_dimple_and_not_a_smooth_bend():
    toy = synthetic.five_points_line()
    probes, basis = _toy_probes()
    pts, sign = toy.x, toy.y.float() * 2 - 1      # class 1: +1 (the margin's class a)

    def dimpled(x):  # a tilted plane pushed towards each point's own class near the point
        bumps = torch.exp(-torch.cdist(x, pts) ** 2 / 0.003) @ sign
        return (x[:, 1] - 0.52 - 0.05 * x[:, 0]) + 0.03 * bumps

    def smooth(x):  # a tilted plane plus a slow wave unrelated to the points
        return (x[:, 1] - 0.52 - 0.05 * x[:, 0]) + 0.03 * torch.sin(2.0 * math.pi * x[:, 0] / 1.3)

    dim = hypotheses.dimple_test(Margin(dimpled), probes, basis, pts, toy.y, locality_null=NULL)
    assert dim.flat == "supports" and dim.outcome == "supports"
    assert dim.profile.locality < NULL.low
    wave = hypotheses.dimple_test(Margin(smooth), probes, basis, pts, toy.y, locality_null=NULL)
    assert wave.flat == "supports" and wave.outcome != "supports"
    # pushed towards the wrong class at every point: the test contradicts dimples
    anti = hypotheses.dimple_test(Margin(lambda x: dimpled(x) - 0.06 * (
        torch.exp(-torch.cdist(x, pts) ** 2 / 0.003) @ sign)), probes, basis, pts, toy.y,
        locality_null=NULL)
    assert anti.outcome == "contradicts"


def test_untrained_networks_rarely_dimple_against_their_own_null():
    toy = synthetic.five_points_line()
    probes, basis = _toy_probes()

    def test(seed, null):
        return hypotheses.dimple_test(phases.scaled_mlp(2, 400, 8.0, seed), probes, basis,
                                      toy.x, toy.y, locality_null=null, max_distance=2.0)

    values = [test(s, NULL).profile.locality for s in range(20)]
    null = nulls.band([v for v in values if math.isfinite(v)], kind="untrained network")
    outcomes = [test(s, null).outcome for s in range(100, 110)]
    assert outcomes.count("supports") <= 2


def test_dimple_test_refuses_a_missing_null():
    probes, basis = _toy_probes()
    with pytest.raises(TypeError, match="locality_null"):
        hypotheses.dimple_test(_linear(torch.ones(2), 0.0), probes, basis, probes[:3],
                               torch.zeros(3, dtype=torch.long), locality_null=0.1)


def test_flat_probes_span_the_data_and_refuse_curved_manifolds():
    toy = synthetic.five_points_line()
    p, b, c = phases.flat_probes(toy, 11)
    assert p.shape == (11, 2) and b.shape == (11, 2, 1) and c.shape == (11, 1)
    assert torch.allclose(p[:, 1], torch.full((11,), 0.5)) and p[0, 0] == pytest.approx(0.05)
    cb = synthetic.checkerboard_plane(5)
    p, b, c = phases.flat_probes(cb, 10)
    assert p.shape == (16, 3) and torch.allclose(p[:, 2], torch.full((16,), 0.5))
    hd = synthetic.linear_subspace(20, 3, 50, seed=0)
    p, b, c = phases.flat_probes(hd, 30)
    U = hd.tangent[0]
    assert torch.allclose(p - p @ U @ U.T, (hd.x[0] - hd.x[0] @ U @ U.T).expand_as(p), atol=1e-5)
    with pytest.raises(ValueError, match="flat"):
        phases.flat_probes(phases.wavy_checkerboard(5), 10)


def test_dimple_over_seeds_counts_flat_boundaries_as_no_dimple():
    toy = synthetic.five_points_line()
    probes = phases.flat_probes(toy, 61)
    untrained = [phases.scaled_mlp(2, 400, 8.0, s) for s in range(12)]
    planes = [_linear(torch.tensor([0.3, 1.0]), -0.6) for _ in range(3)]
    tests, null, measured = phases.dimple_over_seeds(planes, untrained, toy, *probes,
                                                     max_distance=2.0)
    assert null.kind == "untrained network" and measured == pytest.approx(null.median, abs=1e-6)
    assert all(t.outcome == "cannot distinguish" for t in tests)
    with pytest.raises(ValueError, match="untrained"):
        never = [_linear(torch.tensor([0.0, 1.0]), 100.0)] * 3  # never crosses near the line
        phases.dimple_over_seeds(planes, never, toy, *probes)
