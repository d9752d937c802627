"""Phases of training: snapshots, per-member geometry, phase rules, gaps, frozen weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmmlib import ensemble, geometry, nulls
from dmmlib.experiments import phases
from dmmlib.models import MLP
from dmmlib.synthetic import five_points_line, linear_subspace


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy_ensemble(m: int = 2, width: int = 16, alpha: float = 1.0) -> ensemble.Ensemble:
    nets = []
    for s in range(m):
        torch.manual_seed(s)
        nets.append(phases.scale_init(MLP(2, hidden=(width,), n_classes=2, mean=0.5, std=0.5),
                                      alpha))
    return ensemble.Ensemble.from_models(nets)


def test_scale_init_multiplies_every_parameter_and_the_function():
    torch.manual_seed(0)
    net = MLP(3, hidden=(8,), n_classes=2)
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.randn(5, 3)
    # no biases in play: a one-hidden-layer ReLU net scales like alpha**2 without them
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.bias.zero_()
    f0 = net(x)
    phases.scale_init(net, 3.0)
    for b, p in zip(before, net.parameters(), strict=True):
        if p.ndim == 2:
            assert torch.allclose(p, 3.0 * b)
    assert torch.allclose(net(x), 9.0 * f0, atol=1e-5)
    with pytest.raises(ValueError):
        phases.scale_init(net, 0.0)
    with pytest.raises(TypeError):
        phases.scale_init("net", 2.0)


def test_param_snapshots_store_the_requested_steps():
    toy = five_points_line()
    ens = _toy_ensemble()
    snaps = phases.ParamSnapshots([0, 1, 3])
    snaps.initial(ens)
    first = {k: v.clone() for k, v in ens.params.items()}
    ensemble.train_ensemble(ens, (toy.x, toy.y), epochs=4, lr=0.1, callback=snaps,
                            progress=False)
    assert sorted(snaps.params) == [0, 1, 3]
    for k in first:
        assert torch.equal(snaps.params[0][k], first[k])
        assert not torch.equal(snaps.params[3][k], first[k]) or k.endswith("mean")
    at3 = snaps.ensemble_at(3)
    assert len(at3) == 2
    assert torch.equal(at3.params["net.0.weight"], snaps.params[3]["net.0.weight"])
    at3.model(1)(toy.x)  # a usable model
    with pytest.raises(KeyError):
        snaps.ensemble_at(2)
    with pytest.raises(TypeError):
        phases.ParamSnapshots("0, 1")


def test_ensemble_geometry_matches_a_recorder_per_member():
    toy = five_points_line()
    ens = _toy_ensemble(alpha=4.0)
    rec = phases.EnsembleGeometry(toy.x, toy.y, toy.tangent, [0, 2], max_distance=2.0)
    rec.initial(ens)
    ensemble.train_ensemble(ens, (toy.x, toy.y), epochs=2, lr=1e-2, callback=rec,
                            progress=False)
    hist = rec.history()
    assert hist["step"].tolist() == [0.0, 2.0]
    assert hist["off_fraction"].shape == (2, 2)
    single = geometry.GeometryRecorder(toy.x, toy.y, toy.tangent, max_distance=2.0)
    row = single.record(ens.model(1), 2)
    assert math.isclose(row["off_fraction"], float(hist["off_fraction"][1, 1]), rel_tol=1e-6)
    assert math.isclose(row["dist_normal"], float(hist["dist_normal"][1, 1]), rel_tol=1e-6)
    with pytest.raises(RuntimeError):
        phases.EnsembleGeometry(toy.x, toy.y, toy.tangent, [0]).history()


def test_detect_phases_follows_its_rules():
    step = torch.tensor([0, 1, 2, 4, 8, 16])
    acc = torch.tensor([0.5, 0.5, 0.6, 0.8, 1.0, 1.0])
    moved = phases.detect_phases(step, torch.tensor([False, False, True, True, True, True]), acc)
    assert moved.cling_step == 2 and moved.clinging_seen and not moved.at_init
    assert moved.fit_step == 8 and moved.dimpling_seen and moved.kept
    assert math.isclose(moved.gain, 0.4, abs_tol=1e-6)
    start = phases.detect_phases(step, torch.ones(6, dtype=torch.bool), acc)
    assert start.at_init and not start.clinging_seen and start.dimpling_seen
    lost = phases.detect_phases(step, torch.tensor([True, True, False, False, True, True]), acc)
    assert not lost.kept and not lost.dimpling_seen
    never = phases.detect_phases(step, torch.zeros(6, dtype=torch.bool), acc)
    assert math.isnan(never.cling_step) and not never.clinging_seen and not never.dimpling_seen
    with pytest.raises(TypeError):
        phases.detect_phases(step, torch.ones(6), acc)
    with pytest.raises(ValueError):
        phases.detect_phases(step[:3], torch.ones(6, dtype=torch.bool), acc)


class _Tilted(torch.nn.Module):
    """Boundary y = 0.5 + s (x - 0.5): class 1 above."""

    def __init__(self, slope: float) -> None:
        super().__init__()
        self.s = torch.nn.Parameter(torch.tensor(float(slope)), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 1] - 0.5 - self.s * (x[:, 0] - 0.5)
        return torch.stack([-m, m], 1)


def test_boundary_gap_2d_measures_a_tilted_line():
    grid = geometry.decision_grid_2d(_Tilted(0.2), (0.0, 1.0), (0.0, 1.0), 201)
    gap = phases.boundary_gap_2d(grid, 0.5)
    assert gap.shape == (201,)
    assert math.isclose(float(gap.max()), 0.1, abs_tol=1e-3)
    inner = phases.boundary_gap_2d(grid, 0.5, x_range=(0.25, 0.75))
    assert math.isclose(float(inner.max()), 0.05, abs_tol=1e-3)
    flat = geometry.decision_grid_2d(_Tilted(0.0), (0.0, 1.0), (0.6, 1.0), 51)
    assert torch.isinf(phases.boundary_gap_2d(flat, 0.5)).all()  # no crossing above 0.6
    with pytest.raises(ValueError):
        phases.boundary_gap_2d(grid, 0.5, x_range=(2.0, 3.0))


def test_line_gap_reads_a_tilted_line_and_a_boundary_that_only_crosses_it():
    # a line tilted by 0.2 over [0.05, 1.05] strays up to 0.11 from y = 0.5; its 90th
    # percentile over the columns is about 0.9 * 0.11
    gap = phases.line_gap(_Tilted(0.2), shape=(401, 201))
    assert 0.08 < gap < 0.1
    assert phases.line_gap(_Tilted(0.0)) < 1e-3
    assert math.isclose(phases.line_gap(_Tilted(0.2), quantile=1.0, shape=(401, 201)),
                        0.11, abs_tol=2e-3)

    class _Vertical(torch.nn.Module):  # the boundary x = 0.5 crosses the line once, steeply
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = x[:, 0] - 0.5
            return torch.stack([-m, m], 1)

    assert phases.line_gap(_Vertical()) == 1.0  # no column has a crossing: the box's height
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="quantile"):
            phases.line_gap(_Tilted(0.2), quantile=bad)


def test_factor_sweep_reports_the_clinging_tests_statistic():
    from dmmlib import hypotheses

    ds = linear_subspace(12, 2, 32, labels="intervals", cells=2, seed=0)
    idx = torch.arange(0, 32, 4)
    rows = phases.factor_sweep(ds.x, ds.y, ds.tangent, idx,
                               [dict(alpha=1.0, wd=0.0, lr_mult=1.0, width=8)], seeds=2,
                               steps=1, lr0=1e-9, momentum=0.0)  # the networks barely move
    assert [r["seed"] for r in rows] == [0, 1]
    for row in rows:
        net = phases.scaled_mlp(12, 8, 1.0, row["seed"], std=0.1)
        want = hypotheses.clinging_test(net, ds.x[idx], ds.y[idx], ds.tangent[idx]).measured
        assert row["on_fraction"] == pytest.approx(want, abs=1e-4)


def test_factor_sweep_uncentred_inputs_move_the_weights_off_the_tangent_not_off_their_span():
    ds = linear_subspace(12, 2, 40, labels="intervals", cells=2, seed=0)
    setting = [dict(alpha=1.0, wd=0.0, lr_mult=1.0, width=16)]
    kw = dict(seeds=2, steps=30, lr0=0.05, momentum=0.9)
    centred = phases.factor_sweep(ds.x, ds.y, ds.tangent, torch.arange(4), setting, **kw)
    uncentred = phases.factor_sweep(ds.x, ds.y, ds.tangent, torch.arange(4), setting, mean=0.0,
                                    **kw)
    for row in centred:  # data through the origin after normalising: both spans agree
        assert row["drift"] < 1e-4 and row["drift_span"] < 1e-4
    for row in uncentred:  # the offset is an input direction off the tangent: it moves
        assert row["drift_span"] < 1e-4
        assert row["drift"] > 1e-3


def test_gradient_descent_never_moves_the_orthogonal_weights_but_weight_decay_does():
    ds = linear_subspace(20, 2, 40, labels="intervals", cells=2, seed=1)
    nets = []
    for s in range(2):
        torch.manual_seed(s)
        nets.append(MLP(20, hidden=(16,), n_classes=2, mean=0.5, std=0.1))
    ens = ensemble.Ensemble.from_models(nets)
    w0 = ens.params["net.0.weight"].clone()
    ensemble.train_ensemble(ens, (ds.x, ds.y), epochs=20, lr=0.05, momentum=0.9,
                            weight_decay=[0.0, 0.5], progress=False)
    w1 = ens.params["net.0.weight"]
    drift = phases.orthogonal_drift(w0, w1, ds.tangent[0])
    assert drift.shape == (2,)
    assert float(drift[0]) < 1e-5
    assert float(drift[1]) > 1e-2
    assert float(phases.orthogonal_drift(w0[0], w1[0], ds.tangent[0])) < 1e-5
    assert float((w1[0] - w0[0]).norm()) > 1e-3  # the in-span part did move
    with pytest.raises(ValueError):
        phases.orthogonal_drift(w0, w1[:1], ds.tangent[0])


def test_wavy_checkerboard_has_exact_tangents_and_checkerboard_labels():
    ds = phases.wavy_checkerboard(4, 4, amplitude=0.2, frequency=1.0)
    assert ds.x.shape == (64, 3) and ds.tangent.shape == (64, 3, 2)
    x, y = ds.x[:, 0].double(), ds.x[:, 1].double()
    w = 2 * math.pi
    assert torch.allclose(ds.x[:, 2].double(),
                          0.5 + 0.2 * torch.sin(w * x) * torch.sin(w * y), atol=1e-6)
    # tangent vectors are orthonormal and orthogonal to the surface normal
    gram = ds.tangent.transpose(1, 2) @ ds.tangent
    assert torch.allclose(gram, torch.eye(2).expand(64, 2, 2), atol=1e-5)
    hx = 0.2 * w * torch.cos(w * x) * torch.sin(w * y)
    hy = 0.2 * w * torch.sin(w * x) * torch.cos(w * y)
    normal = torch.stack([-hx, -hy, torch.ones_like(hx)], 1).float()
    assert float((normal[:, :, None] * ds.tangent).sum(1).abs().max()) < 1e-5
    cell = (ds.coords * 4).floor().long()
    assert torch.equal(ds.y, (cell[:, 0] + cell[:, 1]) % 2)
    flat = phases.wavy_checkerboard(3, amplitude=0.0)
    assert torch.allclose(flat.x[:, 2], torch.full((9,), 0.5))
    with pytest.raises(ValueError):
        phases.wavy_checkerboard(3, 2)
    with pytest.raises(ValueError):
        phases.wavy_checkerboard(3, amplitude=-1.0)


def _plane(w: torch.Tensor) -> nn.Module:
    lin = nn.Linear(len(w), 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([w, -w]))
        lin.bias.copy_(torch.stack([-w.sum(), w.sum()]) * 0.5)  # through the cube's centre
    return lin.eval()


def test_untrained_on_fractions_reads_the_boundarys_orientation():
    g = torch.Generator().manual_seed(0)
    n, k = 12, 2
    x = 0.3 + 0.4 * torch.rand(64, n, generator=g)  # inside the box [0, 1]
    U = torch.eye(n)[:, :k].expand(64, n, k)
    along, across = torch.zeros(n), torch.zeros(n)
    along[0], across[5] = 1.0, 1.0
    v = phases.untrained_on_fractions([_plane(along), _plane(across)], x, U, steps=30)
    assert v.shape == (2,) and v.dtype == torch.float64
    assert v[0] > 0.99 and v[1] < 0.01  # normal inside the subspace: 1; orthogonal to it: 0
    with pytest.raises(ValueError, match="models"):
        phases.untrained_on_fractions([], x, U, steps=3)


def test_gain_ratio_test_measures_growth_off_over_on_against_seed_pairs():
    same = [1.0, 1.2, 0.9]
    m, null = phases.gain_ratio_test(same, same, same, same)
    assert m == pytest.approx(1.0) and null.low <= 1.0 <= null.high
    m, null = phases.gain_ratio_test(same, same, [3 * v for v in same], same)
    assert m == pytest.approx(3.0)
    assert nulls.decide(m, null, "above") == "supports"
    m, _ = phases.gain_ratio_test(same, same, same, [3 * v for v in same])
    assert nulls.decide(m, null, "above") == "contradicts"
    with pytest.raises(ValueError, match="seeds"):
        phases.gain_ratio_test([1.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        phases.gain_ratio_test([1.0, 0.0], same[:2], same[:2], same[:2])


def test_tininess_linear_null_is_a_band_of_plane_ratios():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([0.7 + 0.05 * torch.randn(80, 6, generator=g),
                   0.3 + 0.05 * torch.randn(80, 6, generator=g)]).clamp(0, 1)
    y = torch.cat([torch.zeros(80, dtype=torch.long), torch.ones(80, dtype=torch.long)])
    xt, yt = x[::4], y[::4]
    nearest = torch.cdist(xt, x).masked_fill(yt[:, None] == y[None], float("inf")).min(1).values
    null, acc = phases.tininess_linear_null(x, y, xt, yt, nearest, draws=3, fit_steps=100,
                                            steps=40)
    assert null.kind == "linear classifier" and null.n == 3
    assert acc.shape == (3,) and bool((acc > 0.9).all())
    # a separating plane halfway between the blobs: about half the way to the other class
    assert 0.2 < null.median < 0.8
    with pytest.raises(ValueError, match="one entry per test point"):
        phases.tininess_linear_null(x, y, xt, yt, nearest[:-1], draws=2)
