"""Boundary tilting, adversarial spheres and concentration of measure (the rivals chapter)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmmlib import geometry, models
from dmmlib.experiments import rivals


def _linear(w: torch.Tensor, b: float) -> nn.Module:
    lin = nn.Linear(w.numel(), 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([torch.zeros_like(w), w]))
        lin.bias.copy_(torch.tensor([0.0, b]))
    return lin


def test_tilt_identity_and_rescaling():
    task = rivals.tilt_task(20, 2, 30, seed=0)
    assert task.x.shape == (30, 20) and task.coords.shape == (30, 2)
    off = task.x.double() - task.coords.double() @ task.basis.double().T
    assert float((off @ task.basis.double()).abs().max()) < 1e-5  # noise is off the subspace
    w, b = torch.randn(20, dtype=torch.float64), 0.3
    x_on = task.coords.double() @ task.basis.double().T
    g = rivals.tilt_geometry(w, b, task.basis, x_on)
    assert torch.allclose(g["adversarial"], g["on"] * g["cos_tilt"])
    g10 = rivals.tilt_geometry(10 * w, 10 * b, task.basis, x_on)
    assert torch.allclose(g["adversarial"], g10["adversarial"])
    w_read, b_read = rivals.affine_direction(_linear(w.float(), b), 20)
    assert torch.allclose(w_read, w, atol=1e-5) and abs(b_read - b) < 1e-5
    with pytest.raises(ValueError, match="k"):
        rivals.tilt_task(3, 3, 10)


def test_centroid_direction_and_plane_reads_no_dimple():
    task = rivals.tilt_task(10, 2, 40, seed=1)
    w, b = rivals.centroid_direction(task.x, task.y)
    model = _linear(w.float(), b)
    probes = task.coords @ task.basis.T
    basis = task.basis[None].expand(40, 10, 2)
    prof = geometry.dimple_profile(model, probes, basis, task.x, max_distance=50.0, n_scan=64)
    assert prof.bend < 1e-6
    null = rivals.locality_null(prof, draws=50)
    assert null.low < 0 < null.high
    with pytest.raises(ValueError, match="y"):
        rivals.centroid_direction(task.x, torch.zeros(40, dtype=torch.long))


def test_sphere_pgd_stays_on_the_sphere_inside_the_budget():
    x, y = rivals.sphere_data(8, 40, seed=0)
    assert torch.allclose(x.norm(dim=1), torch.tensor([1.0, 1.3])[y])
    torch.manual_seed(0)
    model = models.MLP(8, (16,), 2)
    eps = torch.full((40,), 0.3)
    adv, ok = rivals.sphere_pgd(model, x, y, eps, steps=5)
    assert torch.allclose(adv.norm(dim=1), x.norm(dim=1), atol=1e-5)
    assert float((adv - x).norm(dim=1).max()) <= 0.3 + 1e-5
    with torch.no_grad():
        assert bool((model(adv[ok]).argmax(1) != y[ok]).all())
    d = rivals.on_sphere_distance(model, x, y, [0.05, 0.3], steps=5)
    assert d.shape == (40,) and bool((d[torch.isfinite(d)] <= 0.3 + 1e-5).all())


def test_cap_distances_match_sampling_and_shrink_with_n():
    n, mu = 32, 0.05
    d = rivals.cap_median_distance(n, mu)
    z = torch.randn(200_000, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = z / z.norm(dim=1, keepdim=True)
    t0 = torch.quantile(z[:, 0], 1 - mu)
    out = z[z[:, 0] < t0]
    theta = torch.arccos(out[:, 0]) - torch.arccos(t0)
    assert abs(float((2 * torch.sin(theta / 2)).median()) - d) < 0.01
    assert rivals.cap_median_distance(4 * n, mu) < 0.6 * d
    null = rivals.cap_distance_null(n, [(1.0, 500, 10_000, 50)], draws=200)
    assert null.low < d < null.high


def test_halfspace_distance_and_null_for_a_linear_model():
    # a half-space at distance d: the ratio d / d_half scatters around 1
    d = torch.full((50,), 0.15, dtype=torch.float64)
    null = rivals.halfspace_ratio_null(d, 0.075, 512, draws=200)
    assert 0.9 < null.median < 1.15
    h = rivals.halfspace_distance(0.075, torch.tensor([int(512 * 0.0228)]), 512)
    assert abs(float(h[0]) - 0.15) < 0.02
    w = torch.zeros(5)
    w[0] = 1.0
    model = _linear(w, 0.0)
    x = torch.zeros(4, 5)
    x[:, 0] = 0.15
    k = rivals.noise_errors(model, x, torch.ones(4, dtype=torch.long), 0.075, 2000)
    assert abs(float(k.double().mean()) / 2000 - 0.0228) < 0.01
    with pytest.raises(ValueError, match="sigma"):
        rivals.noise_errors(model, x, torch.ones(4, dtype=torch.long), 0.0, 10)
    assert math.isfinite(float(rivals.halfspace_distance(0.1, torch.tensor([0]), 10)[0]))
