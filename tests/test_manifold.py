"""Autoencoders, tangent spaces and on/off-manifold decompositions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dmmlib import manifold as M


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (and the 2-core CI box is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fd_jacobian(decoder: nn.Module, z: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central finite differences, (N, D, k), in float64."""
    cols = []
    with torch.no_grad():
        for j in range(z.shape[1]):
            e = torch.zeros_like(z)
            e[:, j] = h
            cols.append(((decoder(z + e) - decoder(z - e)) / (2 * h)).flatten(1))
    return torch.stack(cols, dim=2)


def test_autoencoders_shapes_and_range() -> None:
    torch.manual_seed(0)
    x = torch.rand(5, 1, 8, 8)
    for ae in (M.MLPAutoencoder((1, 8, 8), 3, hidden=(16,)), M.ConvAutoencoder((1, 8, 8), 3, 4)):
        z = ae.encoder(x)
        assert z.shape == (5, 3)
        out = ae(x)
        assert out.shape == x.shape
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    flat = M.MLPAutoencoder(10, 2, hidden=())
    assert flat(torch.rand(4, 10)).shape == (4, 10)


def test_fit_autoencoder_learns_and_restores_mode(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DMM_CACHE", str(tmp_path))
    torch.manual_seed(0)
    x = torch.rand(64, 2) @ torch.rand(2, 12) / 2          # rank-2 data in [0, 1]
    ae = M.MLPAutoencoder(12, 2, hidden=(32,))
    ae.eval()
    hist = M.fit_autoencoder(ae, x, epochs=30, batch_size=16, lr=1e-2, progress=False)
    assert set(hist) == {"loss", "mse"} and len(hist["mse"]) == 30
    assert hist["mse"][-1] < 0.5 * hist["mse"][0]
    assert not ae.training
    torch.manual_seed(1)
    fresh = lambda: M.MLPAutoencoder(12, 2, hidden=(32,))  # noqa: E731
    a, b = fresh(), fresh()
    b.load_state_dict(a.state_dict())
    first = M.fit_autoencoder_cached(a, x, epochs=3, progress=False)
    second = M.fit_autoencoder_cached(b, x, epochs=3, progress=False)
    assert not first["cached"] and second["cached"]
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_tangent_basis_exact_on_linear_decoder() -> None:
    torch.manual_seed(0)
    dec = nn.Linear(4, 30).double()
    z = torch.randn(7, 4, dtype=torch.float64)
    U = M.tangent_basis(dec, z)
    assert U.shape == (7, 30, 4)
    gram = U.transpose(1, 2) @ U
    assert torch.allclose(gram, torch.eye(4, dtype=torch.float64).expand_as(gram), atol=1e-12)
    ref, _ = torch.linalg.qr(dec.weight.detach())
    angles = M.principal_angles(U, ref.expand(7, -1, -1))
    assert float(angles.max()) < 1e-7
    J = M.decoder_jacobian(dec, z)
    assert torch.allclose(J, dec.weight.detach().expand(7, -1, -1), atol=1e-14)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_tangent_basis_matches_finite_differences(kind: str) -> None:
    torch.manual_seed(0)
    if kind == "mlp":
        ae = M.MLPAutoencoder((1, 8, 8), 3, hidden=(32, 16)).double()
    else:
        ae = M.ConvAutoencoder((1, 8, 8), 3, width=4).double()
    z = torch.randn(6, 3, dtype=torch.float64)
    J = M.decoder_jacobian(ae.decoder, z)
    fd = _fd_jacobian(ae.decoder, z)
    assert J.shape == (6, 64, 3)
    assert torch.allclose(J, fd, atol=1e-7, rtol=1e-5)
    U = M.tangent_basis(ae.decoder, z, chunk_size=4)
    ref, _ = torch.linalg.qr(fd)
    assert float(M.principal_angles(U, ref).max()) < 1e-4
    # the per-sample reverse-mode reference agrees too
    ref0 = torch.autograd.functional.jacobian(lambda c: ae.decoder(c[None]).flatten(), z[0])
    assert torch.allclose(J[0], ref0, atol=1e-12)


def test_tangent_basis_mode_device_and_no_weight_grads() -> None:
    torch.manual_seed(0)
    dec = nn.Sequential(nn.Linear(2, 20), nn.Tanh(), nn.Dropout(0.5), nn.Linear(20, 10))
    dec.train()
    z = torch.randn(5, 2)
    a = M.tangent_basis(dec, z)
    b = M.tangent_basis(dec, z)
    assert torch.equal(a, b)                     # eval mode: dropout off
    assert dec.training and all(m.training for m in dec.modules())
    assert all(p.grad is None for p in dec.parameters())
    assert not a.requires_grad
    with torch.no_grad():
        assert torch.allclose(M.tangent_basis(dec, z), a)
    ae = M.MLPAutoencoder(10, 2, hidden=(8,))
    at = M.tangent_basis_at(ae, torch.rand(3, 10))
    assert at.shape == (3, 10, 2)


def test_split_properties() -> None:
    g = torch.Generator().manual_seed(0)
    U = M.random_orthonormal_basis(8, 20, 5, g, dtype=torch.float64)
    v = torch.randn(8, 4, 5, generator=g, dtype=torch.float64)
    s = M.split_on_off_manifold(v, U)
    assert s.on.shape == v.shape and s.off.shape == v.shape
    assert torch.allclose(s.on + s.off, v)
    assert torch.allclose(s.on_fraction ** 2 + s.off_fraction ** 2,
                          torch.ones(8, dtype=torch.float64))
    off_coeff = U.transpose(1, 2) @ s.off.reshape(8, 20, 1)
    assert float(off_coeff.abs().max()) < 1e-12           # off is orthogonal to the tangent
    on_resid = s.on.reshape(8, 20) - (U @ (U.transpose(1, 2) @ s.on.reshape(8, 20, 1))).squeeze(2)
    assert float(on_resid.abs().max()) < 1e-12             # on lies in the tangent space
    assert torch.allclose(s.on_fraction, s.on.flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1))
    # zero vectors give zero fractions, no NaN
    z = M.split_on_off_manifold(torch.zeros(8, 20, dtype=torch.float64), U)
    assert torch.all(z.on_fraction == 0) and torch.all(z.off_fraction == 0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), k=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_split_preserves_norm(n: int, k: int, seed: int) -> None:
    k = min(k, n)
    g = torch.Generator().manual_seed(seed)
    U = M.random_orthonormal_basis(3, n, k, g, dtype=torch.float64)
    v = torch.randn(3, n, generator=g, dtype=torch.float64)
    s = M.split_on_off_manifold(v, U)
    assert torch.allclose(s.on_fraction ** 2 + s.off_fraction ** 2,
                          torch.ones(3, dtype=torch.float64), atol=1e-12)
    if k == n:
        assert torch.allclose(s.on_fraction, torch.ones(3, dtype=torch.float64))


def test_random_subspace_baseline() -> None:
    n, k = 400, 16
    base = M.random_subspace_baseline(n, k, seed=torch.Generator().manual_seed(0))
    assert base.expected_on == pytest.approx(math.sqrt(k / n))
    assert base.on_mean == pytest.approx(math.sqrt(k / n), rel=0.03)
    assert base.off_mean == pytest.approx(math.sqrt(1 - k / n), rel=0.01)
    v = torch.randn(300, n, generator=torch.Generator().manual_seed(1))
    s = M.random_subspace_fractions(v, k, torch.Generator().manual_seed(2))
    assert float(s.on_fraction.mean()) == pytest.approx(math.sqrt(k / n), rel=0.05)
    assert float((s.on_fraction ** 2).mean()) == pytest.approx(k / n, rel=0.08)
    U1 = M.random_orthonormal_basis(2, 6, 3, torch.Generator().manual_seed(5))
    U2 = M.random_orthonormal_basis(2, 6, 3, torch.Generator().manual_seed(5))
    assert torch.equal(U1, U2) and U1.dtype == torch.float32


def test_principal_angles() -> None:
    e = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(M.principal_angles(e[:, :2], e[:, :2]), torch.zeros(2,
                                                                               dtype=torch.float64))
    c, s = math.cos(0.3), math.sin(0.3)
    rot = torch.tensor([[c], [0.0], [s]], dtype=torch.float64)
    ang = M.principal_angles(rot, e[:, :2])
    assert ang.shape == (1,) and float(ang[0]) == pytest.approx(0.3)
    assert float(M.principal_angles(e[:, 2:], e[:, :2])[0]) == pytest.approx(math.pi / 2)


@pytest.mark.parametrize("call, err, word", [
    (lambda: M.tangent_basis("dec", torch.zeros(2, 2)), TypeError, "decoder"),
    (lambda: M.tangent_basis(nn.Linear(2, 3), torch.zeros(2)), ValueError, "z"),
    (lambda: M.tangent_basis(nn.Linear(2, 3), torch.zeros(2, 2, dtype=torch.int64)),
     TypeError, "z"),
    (lambda: M.split_on_off_manifold(torch.ones(2, 3), torch.ones(2, 4, 1)), ValueError, "^basis:"),
    (lambda: M.split_on_off_manifold(torch.ones(2, 3), torch.ones(2, 3, 2)), ValueError,
     "orthonormal"),
    (lambda: M.split_on_off_manifold([1.0], torch.ones(2, 3, 1)), TypeError, "v"),
    (lambda: M.random_orthonormal_basis(2, 3, 4), ValueError, "k"),
    (lambda: M.random_subspace_baseline(3, 0), ValueError, "k"),
    (lambda: M.random_subspace_fractions(torch.ones(2, 3), 5), ValueError, "k"),
    (lambda: M.MLPAutoencoder(10, 0), ValueError, "latent_dim"),
    (lambda: M.ConvAutoencoder((1, 6, 6), 2), ValueError, "input_shape"),
    (lambda: M.fit_autoencoder(nn.Identity(), torch.full((2, 3), 2.0)), ValueError, "x"),
    (lambda: M.fit_autoencoder(nn.Linear(3, 3), torch.rand(2, 3), epochs=-1), ValueError,
     "epochs"),
])
def test_validation(call, err, word) -> None:
    with pytest.raises(err, match=word):
        call()


def test_shuffled_basis_null_separates_own_tangent_space_from_others():
    from dmmlib import nulls

    g = torch.Generator().manual_seed(0)
    U = M.random_orthonormal_basis(30, 60, 4, seed=g)
    coeff = torch.randn(30, 4, 1, generator=g, dtype=U.dtype)
    in_own = (U @ coeff).squeeze(-1)  # each vector inside its own tangent space
    null = M.shuffled_basis_null(in_own, U, shifts=10)
    own = float(M.split_on_off_manifold(in_own, U).on_fraction.median())
    assert own == pytest.approx(1.0) and null.high < 0.6 and null.n == 10
    assert nulls.decide(own, null, "above") == "supports"
    # a vector unrelated to every basis reads inside the band of its shuffles
    # (same support, no alignment): the null cannot be beaten by chance alone
    v = torch.randn(30, 60, generator=g, dtype=U.dtype)
    free = M.shuffled_basis_null(v, U, shifts=29)
    own_v = float(M.split_on_off_manifold(v, U).on_fraction.median())
    assert free.low - 0.05 <= own_v <= free.high + 0.05
    with pytest.raises(ValueError, match="at least 2"):
        M.shuffled_basis_null(v[:1], U[:1])


def test_support_matched_null_follows_the_support_of_the_bases():
    # bases that live on the first 20 of 60 pixels, images whose support is the same:
    # isotropic directions put sqrt(k/60) on them, support-matched ones sqrt(k/20)
    g = torch.Generator().manual_seed(1)
    core = torch.linalg.qr(torch.randn(40, 20, 4, generator=g, dtype=torch.float64))[0]
    U = torch.cat([core, torch.zeros(40, 40, 4, dtype=torch.float64)], dim=1)
    x = torch.cat([torch.rand(40, 20, generator=g, dtype=torch.float64) + 0.1,
                   torch.zeros(40, 40, dtype=torch.float64)], dim=1)
    null = M.support_matched_null(x, U, torch.ones(60), draws=30)
    iso = float(M.split_on_off_manifold(torch.randn(40, 60, generator=g, dtype=torch.float64),
                                        U).on_fraction.median())
    assert null.low > iso + 0.1
    assert null.median == pytest.approx(math.sqrt(4 / 20), abs=0.05)
    assert null.n == 30 and null.kind == "random directions on the image's support"
    with pytest.raises(ValueError, match="one per pixel"):
        M.support_matched_null(x, U, torch.ones(59))
    with pytest.raises(ValueError, match="no support pixel"):
        M.support_matched_null(x, U, torch.ones(60), threshold=5.0)
    with pytest.raises(ValueError, match="non-negative"):
        M.support_matched_null(x, U, -torch.ones(60))
