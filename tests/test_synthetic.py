"""Synthetic manifolds: shapes, seeding, labels and *exact* tangent spaces."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmmlib import synthetic as S
from dmmlib.manifold import principal_angles, tangent_basis


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (and the 2-core CI box is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

GENERATORS = [
    lambda **kw: S.linear_subspace(12, 3, 64, **kw),
    lambda **kw: S.sinusoidal_surface(12, 3, 64, **kw),
    lambda **kw: S.sphere_patch(12, 3, 64, **kw),
]


class Param(nn.Module):
    """Wrap a parametrisation ``coords -> points`` as a decoder."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


@pytest.mark.parametrize("make", GENERATORS)
def test_shapes_dtypes_box_and_orthonormality(make) -> None:
    for dtype in (torch.float32, torch.float64):
        ds = make(dtype=dtype)
        n_pts, n, k = len(ds), ds.ambient_dim, ds.intrinsic_dim
        assert ds.x.shape == (n_pts, n) and ds.x.dtype == dtype
        assert ds.y.shape == (n_pts,) and ds.y.dtype == torch.int64
        assert ds.tangent.shape == (n_pts, n, k) and ds.tangent.dtype == dtype
        assert ds.coords is not None and ds.coords.shape == (n_pts, k)
        assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0
        gram = ds.tangent.transpose(1, 2) @ ds.tangent
        tol = 1e-6 if dtype == torch.float32 else 1e-12
        assert torch.allclose(gram, torch.eye(k, dtype=dtype).expand_as(gram), atol=tol)
        assert set(ds.y.tolist()) == {0, 1}
        assert isinstance(ds.description, str) and ds.description


@pytest.mark.parametrize("make", GENERATORS)
def test_seeded(make) -> None:
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.tangent, b.tangent)
    assert not torch.equal(a.x, c.x)


def _angles(ds: S.ManifoldDataset, decoder: nn.Module) -> float:
    assert ds.coords is not None
    with torch.no_grad():
        assert torch.allclose(decoder(ds.coords), ds.x, atol=1e-12)  # same parametrisation
    U = tangent_basis(decoder, ds.coords)
    return float(principal_angles(U, ds.tangent).max())


def test_linear_subspace_tangent_is_exact() -> None:
    ds = S.linear_subspace(10, 4, 50, seed=1, dtype=torch.float64)
    B = S.orthonormal_basis(10, 4, 1, dtype=torch.float64)
    assert _angles(ds, Param(lambda z: 0.5 + z @ B.T)) < 1e-10
    # every point lies in the affine subspace
    resid = (ds.x - 0.5) - (ds.x - 0.5) @ B @ B.T
    assert float(resid.abs().max()) < 1e-12


def test_sinusoidal_tangent_matches_parametrisation() -> None:
    n, k, amp, freq = 9, 2, 0.2, 1.5
    ds = S.sinusoidal_surface(n, k, 40, amplitude=amp, frequency=freq, seed=2,
                              dtype=torch.float64)
    q = S.orthonormal_basis(n, k + 1, 2, dtype=torch.float64)
    ext = 0.35 / math.sqrt(k)

    def param(z: torch.Tensor) -> torch.Tensor:
        h = amp * torch.sin(math.pi * freq * z / ext).mean(1, keepdim=True)
        return 0.5 + z @ q[:, :k].T + h * q[:, k]

    assert _angles(ds, Param(param)) < 1e-4
    # the surface is really curved: tangent spaces differ between points
    assert float(principal_angles(ds.tangent[:1], ds.tangent[1:2]).max()) > 1e-2


def test_sphere_tangent_matches_parametrisation() -> None:
    n, k, radius = 8, 3, 0.3
    ds = S.sphere_patch(n, k, 40, radius=radius, seed=5, dtype=torch.float64)
    q = S.orthonormal_basis(n, k + 1, 5, dtype=torch.float64)

    def param(t: torch.Tensor) -> torch.Tensor:
        r = t.norm(dim=1, keepdim=True)
        u = torch.cat([torch.cos(r), torch.sin(r) * t / r], dim=1)
        return 0.5 + radius * u @ q.T

    assert _angles(ds, Param(param)) < 1e-4
    centre = torch.full((n,), 0.5, dtype=torch.float64)
    assert torch.allclose((ds.x - centre).norm(dim=1), torch.full((40,), radius,
                                                                   dtype=torch.float64))
    # the radius vector is normal to the tangent space
    radial = (ds.x - centre).unsqueeze(1) @ ds.tangent
    assert float(radial.abs().max()) < 1e-12


def test_five_points_line() -> None:
    ds = S.five_points_line()
    assert torch.allclose(ds.x[:, 0], torch.tensor([0.05, 0.30, 0.55, 0.80, 1.05]))
    assert torch.all(ds.x[:, 1] == 0.5)
    assert ds.y.tolist() == [0, 1, 0, 1, 0]
    assert torch.equal(ds.tangent[0], torch.tensor([[1.0], [0.0]]))
    assert S.five_points_line(dtype=torch.float64).x.dtype == torch.float64


def test_checkerboard_plane() -> None:
    ds = S.checkerboard_plane(5)
    assert ds.x.shape == (25, 3) and torch.all(ds.x[:, 2] == 0.5)
    cell = torch.floor(ds.x[:, :2] * 5).long()
    assert torch.equal(ds.y, (cell.sum(1) % 2))
    assert torch.equal(ds.tangent[0], torch.eye(3, 2))
    dense = S.checkerboard_plane(4, 9)
    assert len(dense) == 16 * 9
    cell = torch.floor(dense.x[:, :2] * 4).long()
    assert torch.equal(dense.y, cell.sum(1) % 2)
    jit = S.checkerboard_plane(3, 5, jitter=True, seed=1)
    assert len(jit) == 45
    assert torch.equal(jit.y, torch.floor(jit.x[:, :2] * 3).long().sum(1) % 2)


def test_label_rules() -> None:
    c = torch.tensor([[-0.9], [-0.6], [-0.25], [0.1], [0.3], [0.75], [1.0]])
    assert S.label_coordinates(c, "intervals", cells=4).tolist() == [0, 0, 1, 0, 0, 1, 1]
    lab3 = S.label_coordinates(c, "intervals", cells=3, n_classes=3)
    assert lab3.tolist() == [0, 0, 1, 1, 1, 2, 2]
    grid = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    assert S.label_coordinates(grid, "checkerboard", cells=2).tolist() == [0, 1, 1, 0]
    rnd = S.label_coordinates(torch.zeros(2000, 2), "random", n_classes=4, seed=0)
    assert set(rnd.tolist()) == {0, 1, 2, 3}
    assert abs(float((rnd == 0).double().mean()) - 0.25) < 0.05
    ds = S.linear_subspace(6, 2, 30, labels="checkerboard", n_classes=3, cells=3)
    assert set(ds.y.tolist()) <= {0, 1, 2}


def test_data_reexport() -> None:
    import dmmlib.data as D

    assert D.linear_subspace is S.linear_subspace
    assert "ManifoldDataset" in D.__all__ and "fashion_mnist" in D.__all__


def test_to_device_and_offset_tensor() -> None:
    off = torch.linspace(0.3, 0.7, 5)
    ds = S.linear_subspace(5, 2, 10, offset=off, extent=0.1)
    assert torch.allclose(ds.x.mean(0), off, atol=0.15)
    moved = ds.to("cpu")
    assert torch.equal(moved.x, ds.x)


@pytest.mark.parametrize("call, err, word", [
    (lambda: S.linear_subspace(3, 4, 10), ValueError, "k"),
    (lambda: S.linear_subspace(3, 2, 0), ValueError, "n_points"),
    (lambda: S.linear_subspace(3, 2, 10, dtype=torch.float16), ValueError, "dtype"),
    (lambda: S.linear_subspace(3, 2, 10, labels="stripes"), ValueError, "labels"),
    (lambda: S.linear_subspace(3, 2, 10, seed=-1), ValueError, "seed"),
    (lambda: S.linear_subspace(3, 2.0, 10), TypeError, "k"),
    (lambda: S.linear_subspace(3, 2, 10, offset="0.5"), TypeError, "offset"),
    (lambda: S.sinusoidal_surface(3, 3, 10), ValueError, "k"),
    (lambda: S.sinusoidal_surface(5, 2, 10, amplitude=-1.0), ValueError, "amplitude"),
    (lambda: S.sphere_patch(5, 2, 10, max_angle=4.0), ValueError, "max_angle"),
    (lambda: S.linear_subspace(5, 1, 10, labels="checkerboard"), ValueError, "rule"),
    (lambda: S.checkerboard_plane(5, 2), ValueError, "points_per_cell"),
    (lambda: S.checkerboard_plane(0), ValueError, "cells"),
    (lambda: S.label_coordinates([[0.0]]), TypeError, "coords"),
])
def test_validation(call, err, word) -> None:
    with pytest.raises(err, match=word):
        call()
