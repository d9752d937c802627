"""Boundary points, normals, clinging, dimples, the recorder and decision grids."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import dmmlib
from dmmlib import geometry as G
from dmmlib.manifold import random_orthonormal_basis
from dmmlib.models import MLP
from dmmlib.synthetic import checkerboard_plane
from dmmlib.train import fit


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Affine(nn.Module):
    """Logits ``W x + b`` with a Dropout that must be off (eval mode) during measurements."""

    def __init__(self, d: int, c: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(d, c).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(c, d, generator=g, dtype=torch.float64))
            self.lin.bias.copy_(torch.randn(c, generator=g, dtype=torch.float64) * 0.5)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.lin(x.flatten(1)))

    @property
    def W(self) -> torch.Tensor:
        return self.lin.weight.detach()

    @property
    def b(self) -> torch.Tensor:
        return self.lin.bias.detach()


def _first_crossing(model: Affine, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Closed form: first t > 0 where argmax of W (x + t d) + b leaves argmax at x."""
    d = d / d.norm(dim=1, keepdim=True)
    logits = x @ model.W.T + model.b
    y = logits.argmax(1)
    gap = logits.gather(1, y[:, None]) - logits                      # >= 0
    slope = (d @ model.W.T).gather(1, y[:, None]) - d @ model.W.T    # d/dt of gap
    t = torch.where(slope < 0, gap / -slope, torch.full_like(gap, math.inf))
    t.scatter_(1, y[:, None], math.inf)
    return t.min(1).values


def _check_untouched(model: nn.Module) -> None:
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("classes", [2, 4])
def test_boundary_point_along_linear_closed_form(classes: int) -> None:
    model = Affine(6, classes).train()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(200, 6, generator=g, dtype=torch.float64)
    d = torch.randn(200, 6, generator=g, dtype=torch.float64)
    res = G.boundary_point_along(model, x, d, max_distance=2.0, tol=1e-7, n_scan=64)
    _check_untouched(model)
    t = _first_crossing(model, x, d)
    inside = t < 2.0 - 1e-6
    assert torch.equal(res.found, inside)
    assert float((res.distance[inside] - t[inside]).abs().max()) < 2e-7
    assert torch.all(res.distance[~inside] == 2.0)
    assert torch.isfinite(res.distance).all() and torch.isfinite(res.point).all()
    # the point is on the boundary: margin ~ 0, and on the far side
    logits = res.point[inside] @ model.W.T + model.b
    top2 = logits.topk(2, dim=1).values
    assert float((top2[:, 0] - top2[:, 1]).max()) < 1e-5
    y0 = (x @ model.W.T + model.b).argmax(1)
    assert torch.all(logits.argmax(1) != y0[inside])
    assert torch.allclose((res.point - x).norm(dim=1), res.distance)


def test_boundary_point_along_reference_label_and_zero_direction() -> None:
    model = Affine(3, 2)
    x = torch.rand(4, 3, dtype=torch.float64)
    pred = (x @ model.W.T + model.b).argmax(1)
    res = G.boundary_point_along(model, x, torch.randn(4, 3, dtype=torch.float64), y=1 - pred)
    assert torch.all(res.found) and torch.all(res.distance == 0)   # already "misclassified"
    res = G.boundary_point_along(model, x, torch.zeros(4, 3, dtype=torch.float64))
    assert not res.found.any() and torch.all(res.distance == 1.0)
    assert torch.equal(res.point, x)


def test_boundary_normal_and_margin_linear() -> None:
    model = Affine(5, 3).train()
    x = torch.rand(10, 5, dtype=torch.float64)
    pairs = torch.tensor([[0, 1], [2, 0]]).repeat(5, 1)
    n = G.boundary_normal(model, x, pairs)
    w = model.W[pairs[:, 0]] - model.W[pairs[:, 1]]
    assert torch.allclose(n, w / w.norm(dim=1, keepdim=True), atol=1e-12)
    m = G.logit_margin(model, x, pairs)
    expect = ((x @ model.W.T + model.b).gather(1, pairs[:, :1])
              - (x @ model.W.T + model.b).gather(1, pairs[:, 1:])).squeeze(1)
    assert torch.allclose(m, expect)
    # labels: the other class is the runner-up
    y = torch.zeros(10, dtype=torch.int64)
    logits = x @ model.W.T + model.b
    other = logits[:, 1:].argmax(1) + 1
    n2 = G.boundary_normal(model, x, y)
    w2 = model.W[0] - model.W[other]
    assert torch.allclose(n2, w2 / w2.norm(dim=1, keepdim=True), atol=1e-12)
    _check_untouched(model)


def test_clinging_extremes() -> None:
    U = torch.eye(4, 2, dtype=torch.float64).expand(3, 4, 2)
    on = torch.tensor([[1.0, 1.0, 0, 0]] * 3, dtype=torch.float64)
    off = torch.tensor([[0, 0, 3.0, 0]] * 3, dtype=torch.float64)
    mid = torch.tensor([[1.0, 0, 1.0, 0]] * 3, dtype=torch.float64)
    c_on, c_off, c_mid = G.clinging(on, U), G.clinging(off, U), G.clinging(mid, U)
    assert torch.allclose(c_on.off_fraction, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(c_on.angle_deg, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(c_off.off_fraction, torch.ones(3, dtype=torch.float64))
    assert torch.allclose(c_off.angle_deg, torch.full((3,), 90.0, dtype=torch.float64))
    assert torch.allclose(c_mid.angle_deg, torch.full((3,), 45.0, dtype=torch.float64))
    assert torch.allclose(c_mid.on_fraction ** 2 + c_mid.off_fraction ** 2,
                          torch.ones(3, dtype=torch.float64))


def test_dimple_depth_linear_closed_form() -> None:
    model = Affine(8, 2, seed=3).train()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 8, generator=g, dtype=torch.float64)
    y = (x @ model.W.T + model.b).argmax(1)
    U = random_orthonormal_basis(40, 8, 3, g, dtype=torch.float64)
    dd = G.dimple_depth(model, x, y, U, max_distance=50.0, tol=1e-8, n_scan=8)
    _check_untouched(model)
    sign = torch.where(y == 0, 1.0, -1.0).double()
    w = (model.W[0] - model.W[1]).expand(40, -1) * sign[:, None]   # grad of f_y - f_other
    margin = ((x @ w.T).diagonal() + sign * (model.b[0] - model.b[1]))
    w_on = (U @ (U.transpose(1, 2) @ w[:, :, None])).squeeze(2)
    w_off = w - w_on
    for got, found, norm in [(dd.normal, dd.found_normal, w.norm(dim=1)),
                             (dd.off, dd.found_off, w_off.norm(dim=1)),
                             (dd.on, dd.found_on, w_on.norm(dim=1))]:
        expect = margin / norm
        ok = expect < 50.0
        assert torch.equal(found, ok)
        assert torch.allclose(got[ok], expect[ok], atol=1e-7)
    assert torch.all(dd.normal <= dd.off + 1e-7) and torch.all(dd.normal <= dd.on + 1e-7)
    assert torch.allclose(dd.off_fraction, w_off.norm(dim=1) / w.norm(dim=1))


def test_nearest_boundary_point_linear() -> None:
    if not hasattr(dmmlib.attacks, "minimal_l2"):
        pytest.skip("dmmlib.attacks.minimal_l2 not available yet")
    torch.manual_seed(0)
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -0.5, 0.2, 0.0], [-1.0, 0.5, -0.2, 0.3]]))
        lin.bias.copy_(torch.tensor([0.0, 0.1]))
    x = 0.5 + 0.15 * (torch.rand(16, 4) - 0.5)
    with torch.no_grad():
        logits = lin(x)
    y = logits.argmax(1)
    w = lin.weight[0] - lin.weight[1]
    exact = ((logits[:, 0] - logits[:, 1]).abs() / w.norm()).detach()
    for method in ("minimal_l2", "deepfool"):
        res = G.nearest_boundary_point(lin, x, y, method=method, steps=100, progress=False)
        assert res.found.all()
        assert torch.allclose(res.distance, exact, atol=1e-4, rtol=1e-3), method
        with torch.no_grad():
            m = lin(res.point)
        assert float((m[:, 0] - m[:, 1]).abs().max()) < 1e-3
        assert torch.all(m.argmax(1) != y)


def test_recorder_matches_direct_computation() -> None:
    ds = checkerboard_plane(3, 4, jitter=True, seed=0)
    torch.manual_seed(0)
    model = MLP(3, (16,), 2, mean=0.5, std=0.3)
    rec = G.GeometryRecorder(ds.x, ds.y, ds.tangent, every=2, max_distance=0.5, tol=1e-3,
                             keep_per_point=True)
    direct: list[tuple[float, float, float, float]] = []

    def callback(step: int, m: nn.Module) -> None:
        rec(step, m)
        if step % 2 == 0:
            cl = G.clinging(G.boundary_normal(m, ds.x, ds.y), ds.tangent)
            dd = G.dimple_depth(m, ds.x, ds.y, ds.tangent, max_distance=0.5, tol=1e-3)
            direct.append((float(cl.off_fraction.mean()), float(cl.angle_deg.mean()),
                           float(dd.off.mean()), float(dd.on.mean())))

    fit(model, (ds.x, ds.y), epochs=3, batch_size=12, lr=1e-2, progress=False,
        callback=callback)
    assert rec.history["step"] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert len(direct) == 5 and len(rec.per_point) == 5
    for i, (off, ang, d_off, d_on) in enumerate(direct):
        assert rec.history["off_fraction"][i] == pytest.approx(off, abs=1e-6)
        assert rec.history["angle_deg"][i] == pytest.approx(ang, abs=1e-4)
        assert rec.history["dist_off"][i] == pytest.approx(d_off, abs=1e-6)
        assert rec.history["dist_on"][i] == pytest.approx(d_on, abs=1e-6)
    assert model.training
    row = rec.record(model, 100)
    assert set(row) == set(rec.history) and rec.history["step"][-1] == 100
    no_depth = G.GeometryRecorder(ds.x, ds.y, ds.tangent, depth=False)
    assert "dist_on" not in no_depth.record(model, 0)


def test_recorder_with_ensemble() -> None:
    from dmmlib.ensemble import train_ensemble

    ds = checkerboard_plane(3, 1)
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(MLP(3, (8,), 2, mean=0.5, std=0.3))
    rec = G.GeometryRecorder(ds.x, ds.y, ds.tangent, every=5, max_distance=0.5,
                             keep_per_point=True)
    ens = train_ensemble(models, (ds.x, ds.y), epochs=10, lr=0.05, callback=rec,
                         progress=False)
    assert rec.history["step"] == [0.0, 5.0]
    assert rec.per_point[0]["off_fraction"].shape == (3, 9)
    last = rec.measure(ens)
    direct = torch.stack([G.clinging(G.boundary_normal(ens.model(i), ds.x, ds.y),
                                     ds.tangent).off_fraction for i in range(3)])
    assert torch.allclose(last["off_fraction"], direct, atol=1e-6)


def test_decision_grid_2d_linear() -> None:
    model = Affine(2, 2)
    grid = G.decision_grid_2d(model, (-1, 1), (0, 2), (7, 5))
    assert grid.xx.shape == (5, 7) and grid.margin.shape == (5, 7)
    assert float(grid.xx[0, 0]) == -1 and float(grid.xx[0, -1]) == 1
    assert float(grid.yy[0, 0]) == 0 and float(grid.yy[-1, 0]) == 2
    pts = torch.stack([grid.xx, grid.yy], -1).reshape(-1, 2)
    logits = pts @ model.W.T + model.b
    assert torch.allclose(grid.margin.reshape(-1), logits[:, 1] - logits[:, 0])
    assert torch.equal(grid.pred.reshape(-1), logits.argmax(1))
    three = Affine(2, 3)
    with pytest.raises(ValueError, match="pair"):
        G.decision_grid_2d(three)
    assert G.decision_grid_2d(three, resolution=4, pair=(2, 0)).margin.shape == (4, 4)


def test_decision_surface_3d_plane_and_sphere() -> None:
    model = Affine(3, 2, seed=4)
    with torch.no_grad():
        model.lin.bias.copy_(-0.5 * (model.W[1] - model.W[0]).sum() * torch.tensor([0.0, 1.0],
                                                                                   dtype=torch.float64))
    surf = G.decision_surface_3d(model, (0.0, 1.0), 12)
    assert surf.margin.shape == (12, 12, 12) and surf.pred.shape == (12, 12, 12)
    assert surf.vertices.shape[0] > 0 and surf.faces.shape[1] == 3
    logits = surf.vertices @ model.W.T + model.b
    # exact for a plane up to float32 rounding (skimage interpolates in float32)
    assert float((logits[:, 1] - logits[:, 0]).abs().max()) < 1e-6
    assert int(surf.faces.max()) < surf.vertices.shape[0]
    assert float(surf.vertices.min()) >= 0 and float(surf.vertices.max()) <= 1
    # a closed surface: sphere of radius 0.6 in [-1, 1]^3, watertight and near the radius
    ax = torch.linspace(-1, 1, 21, dtype=torch.float64)
    X, Y, Z = torch.meshgrid(ax, ax, ax, indexing="ij")
    v, f = G.level_set_mesh((X**2 + Y**2 + Z**2).sqrt() - 0.6, (ax, ax, ax))
    assert float((v.norm(dim=1) - 0.6).abs().max()) < 0.02
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(1).values
    _, counts = torch.unique(edges, dim=0, return_counts=True)
    assert torch.all(counts == 2)                                     # no cracks, no boundary
    empty_v, empty_f = G.level_set_mesh(torch.ones(3, 3, 3))
    assert empty_v.shape == (0, 3) and empty_f.shape == (0, 3)
    # unevenly spaced axes: vertices land on the plane x = 0.3 exactly
    bx = torch.tensor([0.0, 0.1, 0.5, 0.6, 1.0], dtype=torch.float64)
    Xb = torch.meshgrid(bx, bx, bx, indexing="ij")[0]
    vb, fb = G.level_set_mesh(Xb - 0.3, (bx, bx, bx))
    assert fb.shape[0] > 0 and float((vb[:, 0] - 0.3).abs().max()) < 1e-6


@pytest.mark.parametrize("call, err, word", [
    (lambda m: G.boundary_point_along("model", torch.zeros(2, 3), torch.ones(2, 3)),
     TypeError, "model"),
    (lambda m: G.boundary_point_along(m, torch.zeros(2, 3), torch.ones(2, 4)),
     ValueError, "direction"),
    (lambda m: G.boundary_point_along(m, torch.zeros(2, 3), torch.ones(2, 3),
                                      max_distance=0), ValueError, "max_distance"),
    (lambda m: G.boundary_point_along(m, torch.zeros(2, 3), torch.ones(2, 3), tol=-1),
     ValueError, "tol"),
    (lambda m: G.boundary_normal(m, torch.zeros(2, 3), [0, 1]), TypeError, "^y:"),
    (lambda m: G.boundary_normal(m, torch.zeros(2, 3), torch.tensor([[0, 0], [0, 1]])),
     ValueError, "^y:"),
    (lambda m: G.boundary_normal(m, torch.zeros(2, 3), torch.tensor([0, 5])),
     ValueError, "^y:"),
    (lambda m: G.dimple_depth(m, torch.zeros(2, 3), torch.tensor([0, 1]), torch.ones(2, 3, 1)),
     ValueError, "^basis:"),
    (lambda m: G.nearest_boundary_point(m, torch.zeros(2, 3), torch.tensor([0, 1]),
                                        method="cw"), ValueError, "method"),
    (lambda m: G.clinging(torch.ones(2, 3), torch.ones(3, 3, 1)), ValueError, "^basis:"),
    (lambda m: G.GeometryRecorder(torch.zeros(2, 3), torch.tensor([0, 1]),
                                  torch.eye(3, 1).expand(2, 3, 1), every=0), ValueError, "every"),
    (lambda m: G.decision_grid_2d(m, xlim=(1, 0)), ValueError, "xlim"),
    (lambda m: G.decision_grid_2d(m, resolution=1), ValueError, "resolution"),
    (lambda m: G.decision_surface_3d(m, bounds="cube"), TypeError, "bounds"),
])
def test_validation(call, err, word) -> None:
    with pytest.raises(err, match=word):
        call(Affine(3, 2))
