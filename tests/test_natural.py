"""On/off-manifold attacks on natural images: dmmlib.experiments.natural."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import dmmlib.attacks as A
from dmmlib import manifold
from dmmlib.experiments import natural


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _linear_two_class(d: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, d, generator=gen, dtype=torch.float64))
        model.bias.zero_()
    x = 0.4 + 0.2 * torch.rand(12, d, generator=gen, dtype=torch.float64)
    return model, x


def test_restricted_attack_matches_the_linear_answer() -> None:
    """The chapter's restricted search: minimal_l2 without the box, as onoff_experiment runs it."""
    d, k = 40, 5
    model, x = _linear_two_class(d)
    with torch.no_grad():
        y = model(x).argmax(1)
    w = (model.weight[1] - model.weight[0]).detach()
    margin = (
        model(x).gather(1, y[:, None]) - model(x).gather(1, (1 - y)[:, None])
    ).squeeze(1)
    U = manifold.random_orthonormal_basis(
        12, d, k, torch.Generator().manual_seed(1), dtype=torch.float64
    )
    Pw = torch.einsum("ndk,nk->nd", U, U.transpose(1, 2) @ w)
    expected = {
        "full": margin / w.norm(),
        "on": margin / Pw.norm(dim=1),
        "off": margin / (w - Pw).norm(dim=1),
    }
    for name, sub, comp in (("full", None, False), ("on", U, False), ("off", U, True)):
        res = A.minimal_l2(model, x, y, basis=sub, complement=comp, box=False, method="fmn",
                           steps=40, refine=12, progress=False)
        assert bool(res.success.all())
        torch.testing.assert_close(
            res.norm, expected[name].detach(), rtol=2e-3, atol=1e-6
        )
        assert bool((model(res.x_adv).argmax(1) != y).all())
        delta = (res.x_adv - x).reshape(12, -1)
        if sub is not None:
            inside = torch.einsum("ndk,nd->nk", U, delta)
            part = torch.einsum("ndk,nk->nd", U, inside)
            stray = part if comp else delta - part
            assert float(stray.norm(dim=1).max()) < 1e-8


def test_restricted_attack_contract() -> None:
    model, x = _linear_two_class(10)
    y = model(x).argmax(1)
    model.train()
    x0 = x.clone()
    res = A.minimal_l2(model, x, 1 - y, box=False, steps=3, progress=False)  # all misclassified
    assert model.training and torch.equal(x, x0)
    assert torch.equal(res.norm, torch.zeros(12, dtype=x.dtype))
    with pytest.raises(ValueError, match="complement"):
        A.minimal_l2(model, x, y, complement=True, box=False)
    with pytest.raises(ValueError, match="gamma"):
        A.minimal_l2(model, x, y, gamma=1.5, box=False)
    assert not hasattr(natural, "minimal_l2_restricted")  # merged into attacks.minimal_l2


def test_bootstrap_ci_brackets_the_median() -> None:
    v = torch.arange(101, dtype=torch.float64)
    lo, hi = natural.bootstrap_ci(v, n_boot=200)
    assert lo <= 50 <= hi and hi - lo < 40
    assert all(
        math.isnan(t) for t in natural.bootstrap_ci(torch.tensor([float("nan")]))
    )


def test_models_and_samples() -> None:
    torch.manual_seed(0)
    clf = natural.image_classifier((3, 8, 8), 4)
    assert clf(torch.rand(2, 3, 8, 8)).shape == (2, 4)
    mlp = natural.image_classifier((1, 8, 8), 4)
    assert mlp(torch.rand(2, 1, 8, 8)).shape == (2, 4)
    ae = natural.image_autoencoder((1, 8, 8), 3, "conv", width=4)
    x = torch.rand(20, 1, 8, 8)
    samples = natural.decode_gaussian_samples(ae, x, 5)
    assert samples.shape == (5, 1, 8, 8) and float(samples.min()) >= 0
    assert natural.reconstruction_error(ae, x).shape == (20,)
    with pytest.raises(ValueError):
        natural.image_autoencoder((1, 8, 8), 3, "vae")


def test_load_with_fallback_says_what_it_used(monkeypatch) -> None:
    from dmmlib import data

    def unavailable(*args, **kwargs):
        raise data.DatasetUnavailableError("MNIST is not available offline. Use X.")

    digits = data.ImageDataset(torch.rand(40, 1, 8, 8), torch.arange(40) % 10,
                               tuple("0123456789"), "digits", "test")
    monkeypatch.setitem(data._LOADERS, "mnist", unavailable)
    monkeypatch.setitem(
        data._LOADERS, "fashion_mnist", lambda train=True, n=None: digits.head(n)
    )
    tr, te, msg = natural.load_with_fallback("mnist", n_train=30, n_test=10)
    assert len(tr) == 30 and len(te) == 10
    assert "mnist is not available" in msg and "used digits instead" in msg


def test_onoff_experiment_and_summary() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    model = natural.image_classifier((1, 8, 8), 3)
    y = model(x).argmax(1)
    ae = natural.image_autoencoder((1, 8, 8), 4)
    res = natural.onoff_experiment(
        model, ae, x, y, pgd_eps=2.0, pgd_steps=3, attack_steps=10
    )
    assert res["x"].shape[0] == 16 and res["k"] == 4 and res["n"] == 64
    s = natural.summarize_onoff(res, n_boot=50)
    assert math.isclose(s["baseline_on"], 0.25)
    assert 0 <= s["on_fraction_pgd"] <= 1 and s["success_full"] > 0.5
    assert s["ratio_off"] >= 0.9


class _PlaneAE(nn.Module):
    """An autoencoder whose surface is the affine plane c + span(U) (orthogonal projection)."""

    def __init__(self, U: torch.Tensor, c: torch.Tensor) -> None:
        super().__init__()
        n, k = U.shape
        enc, dec = nn.Linear(n, k), nn.Linear(k, n)
        with torch.no_grad():
            enc.weight.copy_(U.T)
            enc.bias.copy_(-(U.T @ c))
            dec.weight.copy_(U)
            dec.bias.copy_(c)
        self.encoder = nn.Sequential(nn.Flatten(), enc)
        self.decoder = nn.Sequential(dec, nn.Unflatten(1, (1, 8, 8)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def test_onoff_controls_random_start_and_distance_to_the_surface() -> None:
    """A linear classifier whose normal is orthogonal to a known plane.

    Its gradient, its minimal perturbation and PGD without a random start lie
    entirely off the plane (on-fraction 0); the random start alone puts a part
    on it. The distance to the surface is the closed-form ||(I - UU^T)(x - c)||.
    """
    g = torch.Generator().manual_seed(0)
    U = torch.linalg.qr(torch.randn(64, 4, generator=g))[0]
    c = torch.full((64,), 0.5)
    w = torch.randn(64, generator=g)
    w = w - U @ (U.T @ w)  # orthogonal to the plane
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([w, -w]) * 0.5)
        model[1].bias.zero_()
    ae = _PlaneAE(U, c)
    x = (0.45 + 0.1 * torch.rand(20, 1, 8, 8, generator=g))
    y = model(x).argmax(1)
    res = natural.onoff_experiment(model, ae, x, y, pgd_eps=0.3, pgd_steps=5, attack_steps=30)
    assert float(res["on_fraction_grad"].max()) < 1e-4
    assert float(res["on_fraction_pgd_nostart"].max()) < 1e-4
    # the stored vectors are the ones measured
    torch.testing.assert_close(
        manifold.split_on_off_manifold(res["pgd_nostart_delta"], manifold.tangent_basis_at(
            ae, res["x"])).on_fraction, res["on_fraction_pgd_nostart"], atol=1e-5, rtol=0)
    cos = torch.nn.functional.cosine_similarity(res["grad"].flatten(1), w[None, :].expand(
        len(res["x"]), -1), dim=1).abs()
    assert float(cos.min()) > 0.999  # the margin gradient of a linear model is +-w
    assert float(res["on_fraction_minimal"][res["found_full"]].max()) < 1e-3
    assert float(res["on_fraction_pgd"].median()) > 0.01  # the random start's share alone
    flat = res["x"].flatten(1) - c
    want = (flat - (flat @ U) @ U.T).norm(dim=1)
    torch.testing.assert_close(res["recon_dist"], want, atol=1e-5, rtol=1e-5)
    # the minimal perturbation is along w, off the plane: it adds to the distance
    ok = res["found_full"]
    assert bool((res["recon_dist_full"][ok] > res["recon_dist"][ok]).all())
    s = natural.summarize_onoff(res, n_boot=20)
    assert s["on_fraction_pgd_nostart"] < 1e-4 < s["on_fraction_pgd"]
    assert s["recon_over_minimal"] == pytest.approx(
        float((res["recon_dist"][ok] / res["norm_full"][ok]).median()))


def _plane_problem(in_plane: float, seed: int = 0, through_centre: bool = True):
    g = torch.Generator().manual_seed(seed)
    U = torch.linalg.qr(torch.randn(64, 4, generator=g))[0]
    c = torch.full((64,), 0.5)
    w = torch.randn(64, generator=g)
    w_off = w - U @ (U.T @ w)
    w = w_off / w_off.norm() + in_plane * U[:, 0]
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with torch.no_grad():  # the boundary w . (x - c) = 0 passes through the plane's centre
        model[1].weight.copy_(torch.stack([w, -w]) * 0.5)
        model[1].bias.copy_(torch.stack([-(w @ c), w @ c]) * 0.5 * through_centre)
    x = 0.45 + 0.1 * torch.rand(20, 1, 8, 8, generator=g)
    return model, _PlaneAE(U, c), x, model(x).argmax(1), U, c


def test_latent_attack_stays_on_the_surface_and_fails_where_the_surface_cannot_help() -> None:
    model, ae, x, y, U, c = _plane_problem(in_plane=1.0)
    out = natural.latent_attack(model, ae, x, y, budgets=[0.05, 0.2, 0.8], steps=10)
    ok = out["success"]
    assert bool(ok.all())
    flat = out["x_adv"].flatten(1) - c
    off_plane = (flat - (flat @ U) @ U.T).norm(dim=1)
    assert float(off_plane.max()) < 1e-5  # decoded points: on the surface by construction
    # an isometric decoder: the image moves exactly as far as the code
    torch.testing.assert_close(out["dist_recon"], out["latent_norm"], atol=1e-5, rtol=1e-4)
    assert bool((out["latent_norm"] <= out["budget"] + 1e-6).all())
    with torch.no_grad():
        assert bool((model(out["x_adv"]).argmax(1) != y).all())
    # the smallest budget that works is kept: the linear margin sets it exactly
    with torch.no_grad():
        z_margin = (model(out["recon"]).gather(1, y[:, None]).squeeze(1)
                    - model(out["recon"]).gather(1, (1 - y)[:, None]).squeeze(1))
    need = z_margin / (model[1].weight[0] - model[1].weight[1]).matmul(U).norm()
    for b in (0.05, 0.2, 0.8):
        chosen = out["budget"] == b
        assert bool((need[chosen] <= b + 1e-4).all())

    # a normal orthogonal to the plane: moving on the surface never changes the label
    model, ae, x, y, *_ = _plane_problem(in_plane=0.0, through_centre=False)
    out = natural.latent_attack(model, ae, x, y, budgets=[0.5, 2.0], steps=5)
    assert not bool(out["success"].any()) and bool(torch.isinf(out["budget"]).all())
    torch.testing.assert_close(out["x_adv"], out["recon"])
    with pytest.raises(TypeError, match="budgets"):
        natural.latent_attack(model, ae, x, y, budgets=[], steps=5)
    with pytest.raises(ValueError, match="budgets"):
        natural.latent_attack(model, ae, x, y, budgets=[0.1, -1.0], steps=5)
