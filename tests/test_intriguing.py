"""dmmlib.experiments.intriguing: the helpers of the chapter on Szegedy et al. (2013)."""

from __future__ import annotations

import math

import pytest
import torch

from dmmlib.data import digits
from dmmlib.experiments import intriguing as I
from dmmlib.models import MLP
from dmmlib.train import fit


def test_rms_distortion_is_the_papers_formula():
    x = torch.rand(3, 1, 4, 4)
    delta = torch.randn(3, 1, 4, 4) * 0.1
    d = I.rms_distortion(x + delta, x)
    expected = torch.sqrt((delta**2).flatten(1).sum(1) / 16)
    assert torch.allclose(d, expected, atol=1e-6)
    assert torch.allclose(d, delta.flatten(1).norm(dim=1) / math.sqrt(16), atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        I.rms_distortion(x[:2], x)


def test_scale_to_distortion_hits_the_target_after_clipping():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 6, 6, generator=gen)
    x[:, :, :2] = 1.0  # saturated pixels: clipping matters
    direction = torch.randn(8, 1, 6, 6, generator=gen)
    target = torch.linspace(0.01, 0.2, 8)
    out = I.scale_to_distortion(x, direction, target)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(I.rms_distortion(out, x), target, rtol=1e-3, atol=1e-5)
    # the result lies on the ray x + s * direction (before clipping)
    same = I.scale_to_distortion(x, direction, 0.05)
    assert torch.allclose(I.rms_distortion(same, x), torch.full((8,), 0.05), rtol=1e-3)
    with pytest.raises(ValueError, match="non-negative"):
        I.scale_to_distortion(x, direction, -1.0)


def test_gaussian_noise_has_the_requested_spread_and_stays_in_the_box():
    x = torch.full((4, 1, 20, 20), 0.5)
    out = I.gaussian_noise(x, 0.1, seed=torch.Generator().manual_seed(1))
    assert out.min() >= 0 and out.max() <= 1
    assert abs(float((out - x).std()) - 0.1) < 0.01
    assert torch.equal(I.gaussian_noise(x, 0.0), x)


def test_sparse_autoencoder_learns_and_caches():
    ds = digits(n=300)
    torch.manual_seed(0)
    ae = I.SparseAutoencoder(64, 32)
    assert ae(ds.x).shape == ds.x.shape
    run = I.fit_sparse_autoencoder_cached(ae, ds.x, epochs=5, lr=3e-3, progress=False)
    assert not run["cached"] and run["history"]["mse"][-1] < run["history"]["mse"][0]
    assert 0 < run["history"]["mean_activation"][-1] < 0.5
    torch.manual_seed(0)
    again = I.SparseAutoencoder(64, 32)
    run2 = I.fit_sparse_autoencoder_cached(again, ds.x, epochs=5, lr=3e-3, progress=False)
    assert run2["cached"] and run2["history"] == run["history"]
    for a, b in zip(ae.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="target"):
        I.fit_sparse_autoencoder(ae, ds.x, target=1.5)


def test_ae_classifier_trains_only_its_head():
    ds = digits(n=400)
    torch.manual_seed(0)
    ae = I.SparseAutoencoder(64, 32)
    I.fit_sparse_autoencoder(ae, ds.x, epochs=20, lr=1e-2, progress=False)
    frozen = [p.clone() for p in ae.encoder.parameters()]
    clf = I.AEClassifier(ae.encoder, 32, 10)
    fit(clf, ds, epochs=20, lr=3e-2, progress=False)
    for a, b in zip(frozen, clf.encoder.parameters(), strict=True):
        assert torch.equal(a, b)
    assert I.error_rate(clf, ds.x, ds.y) < 0.6
    # input gradients still flow through the frozen encoder
    x = ds.x[:2].clone().requires_grad_(True)
    clf(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_transfer_matrix_rows_are_sources_and_columns_targets():
    torch.manual_seed(0)
    x = torch.rand(20, 1, 4, 4)
    y = torch.zeros(20, dtype=torch.long)
    always0 = MLP(16, hidden=(), n_classes=2)
    with torch.no_grad():
        always0.net[0].weight.zero_()
        always0.net[0].bias.copy_(torch.tensor([1.0, 0.0]))
    always1 = MLP(16, hidden=(), n_classes=2)
    with torch.no_grad():
        always1.net[0].weight.zero_()
        always1.net[0].bias.copy_(torch.tensor([0.0, 1.0]))
    out = I.transfer_matrix({"a": x}, {"zero": always0, "one": always1}, y)
    assert out["a"] == {"zero": 0.0, "one": 1.0}
    with pytest.raises(ValueError):
        I.transfer_matrix({"b": x[:10]}, {"zero": always0}, y)


def test_units_and_random_directions():
    torch.manual_seed(0)
    model = MLP(16, hidden=(8,), n_classes=3)
    x = torch.rand(50, 1, 4, 4)
    acts = I.layer_activations(model, model.net[1], x)
    assert acts.shape == (50, 8) and (acts >= 0).all()
    top = I.top_activating(acts, torch.eye(8), k=3)
    assert top.shape == (8, 3)
    assert torch.equal(acts[top[:, 0], torch.arange(8)], acts.amax(0))
    dirs = I.random_directions(8, 5, seed=torch.Generator().manual_seed(0))
    assert dirs.shape == (5, 8) and torch.allclose(dirs.norm(dim=1), torch.ones(5))
    assert I.top_activating(acts, dirs, k=4).shape == (5, 4)
    with pytest.raises(ValueError, match="submodule"):
        I.layer_activations(model, torch.nn.ReLU(), x)
    purity = I.class_purity(torch.tensor([[1, 1, 2, 1], [0, 1, 2, 3]]))
    assert torch.allclose(purity, torch.tensor([0.75, 0.25]))


def test_mixed_perturb_replaces_the_requested_fraction():
    def attack(model, x, y):
        return torch.ones_like(x)

    hook = I.mixed_perturb(attack, fraction=0.25)
    xb = torch.zeros(8, 1, 2, 2)
    out = hook(torch.nn.Identity(), xb, torch.zeros(8, dtype=torch.long))
    assert out.shape == xb.shape
    assert out[:2].eq(1).all() and out[2:].eq(0).all()
    assert torch.equal(I.mixed_perturb(attack, 0.0)(None, xb, None), xb)
    with pytest.raises(ValueError, match="fraction"):
        I.mixed_perturb(attack, 1.5)
