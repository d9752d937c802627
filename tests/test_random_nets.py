"""Random ReLU networks: batched evaluation equals one network at a time, and the laws hold."""

from __future__ import annotations

import math

import pytest
import torch

from dmmlib.experiments import random_nets as rn


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _nets(d: int = 12, widths: tuple[int, ...] = (20, 16), m: int = 5, **kw: object
          ) -> rn.RandomReLUNetworks:
    return rn.random_relu_networks(d, widths, m, seed=3, dtype=torch.float64, **kw)


# --------------------------------------------------------------------------- construction
def test_shapes_scales_and_reproducibility():
    nets = _nets()
    assert len(nets) == 5 and nets.input_dim == 12 and nets.widths == (20, 16)
    assert nets.depth == 2 and nets.dtype == torch.float64
    assert [tuple(w.shape) for w in nets.weights] == [(5, 12, 20), (5, 20, 16), (5, 16)]
    again = _nets()
    assert all(torch.equal(a, b) for a, b in zip(nets.weights, again.weights, strict=True))
    other = rn.random_relu_networks(12, (20, 16), 5, seed=4, dtype=torch.float64)
    assert not torch.equal(nets.weights[0], other.weights[0])
    big = rn.random_relu_networks(200, (300, 100), 4, seed=0)
    assert big.weights[0].var().item() == pytest.approx(1 / 200, rel=0.05)
    assert big.weights[1].var().item() == pytest.approx(2 / 300, rel=0.05)
    assert big.weights[2].var().item() == pytest.approx(1 / 100, rel=0.2)
    signs = rn.random_relu_networks(10, (64,), 3, output="sign")
    assert torch.allclose(signs.weights[-1].abs(), torch.full((3, 64), 1 / 8))
    assert "3 networks" in repr(signs)


def test_sphere_points():
    x = rn.sphere_points(50, 30, seed=1, dtype=torch.float64)
    assert x.shape == (50, 30)
    assert torch.allclose(x.norm(dim=1), torch.full((50,), math.sqrt(30), dtype=torch.float64))
    xs = rn.sphere_points(7, 5, n_sets=3, radius=2.0)
    assert xs.shape == (3, 7, 5) and torch.allclose(xs.norm(dim=-1), torch.full((3, 7), 2.0))
    assert torch.equal(rn.sphere_points(4, 3, seed=9), rn.sphere_points(4, 3, seed=9))


# --------------------------------------------------------------------------- evaluation
def test_batched_evaluation_equals_one_module_at_a_time():
    nets = _nets()
    x = rn.sphere_points(9, 12, seed=2, dtype=torch.float64)
    f, g = nets.value_and_grad(x)
    assert f.shape == (5, 9) and g.shape == (5, 9, 12)
    assert torch.allclose(nets(x), f)
    for i in range(len(nets)):
        module = nets.network(i)
        xi = x.clone().requires_grad_(True)
        out = module(xi)
        assert out.shape == (9, 1)
        (gi,) = torch.autograd.grad(out.sum(), xi)
        assert torch.allclose(out[:, 0].detach(), f[i], atol=1e-12)
        assert torch.allclose(gi, g[i], atol=1e-12)
    # one batch per network
    xs = rn.sphere_points(9, 12, n_sets=5, seed=5, dtype=torch.float64)
    fs, gs = nets.value_and_grad(xs)
    for i in range(len(nets)):
        assert torch.allclose(nets.network(i)(xs[i])[:, 0], fs[i], atol=1e-12)
    assert gs.shape == (5, 9, 12)


def test_weights_are_untouched_and_get_no_grad():
    nets = _nets()
    before = [w.clone() for w in nets.weights]
    rn.one_step_attack(nets, rn.sphere_points(4, 12, dtype=torch.float64))
    for w, b in zip(nets.weights, before, strict=True):
        assert torch.equal(w, b) and w.grad is None and not w.requires_grad


def test_euler_identity_and_ratio_is_a_cosine():
    """f is positively homogeneous: x . grad f = f, so the ratio is |cos(x, grad f)|."""
    nets = _nets(d=20, widths=(40, 30, 20), m=4)
    x = rn.sphere_points(25, 20, seed=1, dtype=torch.float64)
    f, g = nets.value_and_grad(x)
    assert torch.allclose((g * x).sum(-1), f, atol=1e-10)
    assert torch.allclose(nets(3.0 * x), 3.0 * f, atol=1e-10)
    ratio = rn.linearity_ratio(f, g, x)
    cos = (g * x).sum(-1).abs() / (g.norm(dim=-1) * x.norm(dim=-1))
    assert torch.allclose(ratio, cos, atol=1e-10)
    assert bool((ratio <= 1 + 1e-12).all())


def test_ratio_is_nan_only_where_the_gradient_vanishes():
    f = torch.tensor([[0.0, 1.0]])
    g = torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    r = rn.linearity_ratio(f, g, x)
    assert math.isnan(r[0, 0]) and r[0, 1].item() == pytest.approx(0.1)


# --------------------------------------------------------------------------- attacks and measures
def test_one_step_on_a_linear_function_is_exact():
    """relu(z) - relu(-z) = z: a ReLU net with paired units +-w computes exactly a . W x."""
    d, k = 6, 4
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(1, d, k, generator=gen, dtype=torch.float64)
    a = torch.randn(1, k, generator=gen, dtype=torch.float64)
    nets = rn.RandomReLUNetworks([torch.cat([w, -w], 2), torch.cat([a, -a], 1)])
    x = rn.sphere_points(10, d, seed=0, dtype=torch.float64)
    assert torch.allclose(nets(x)[0], x @ (w[0] @ a[0]))
    step = rn.one_step_attack(nets, x, overshoot=0.0)
    assert torch.allclose(step.f_after, torch.zeros_like(step.f_after), atol=1e-9)
    step = rn.one_step_attack(nets, x, overshoot=0.1)
    assert bool(step.flipped.all())
    assert torch.allclose(step.relative_size, 1.1 * step.ratio)
    cross = rn.crossing_along_gradient(nets, x, tol=1e-4)
    assert bool(cross.found.all())
    assert torch.allclose(cross.multiple, torch.ones_like(cross.multiple), atol=2e-4)
    assert torch.allclose(cross.relative_distance, step.ratio, rtol=2e-4)
    err = rn.linearization_error(nets, x, multiple=2.0)
    assert float(err.max()) < 1e-9


def test_one_step_flips_random_wide_networks_in_high_dimension():
    d = 400
    nets = rn.random_relu_networks(d, (600,), 4, seed=0, dtype=torch.float64)
    x = rn.sphere_points(32, d, n_sets=4, seed=1, dtype=torch.float64)
    step = rn.one_step_attack(nets, x, overshoot=0.5)
    assert float(step.flipped.double().mean()) > 0.9
    # the step is of order ||x|| / sqrt(d)
    med = float(step.relative_size.median()) * math.sqrt(d)
    assert 0.2 < med < 3.0
    # the sign really flips at the crossing found along the line
    cross = rn.crossing_along_gradient(nets, x)
    assert float(cross.found.double().mean()) > 0.9
    assert 0.9 < float(cross.multiple[cross.found].median()) < 1.5
    f, u, gn, xw, valid = rn._descent(nets, x)
    t = cross.multiple * f.abs() / gn
    after = nets(xw + (t + 1e-9)[..., None] * u)
    ok = cross.found
    assert bool((torch.sign(after[ok]) != torch.sign(f[ok])).all())
    before = nets(xw + (0.98 * t)[..., None] * u)
    assert float((torch.sign(before[ok]) == torch.sign(f[ok])).double().mean()) > 0.95


def test_crossing_not_found_reports_max_multiple():
    # all weights positive and x positive: f > 0 on the positive orthant side it never leaves
    w = torch.rand(1, 3, 5, dtype=torch.float64)
    a = torch.rand(1, 5, dtype=torch.float64)
    nets = rn.RandomReLUNetworks([w, a])
    x = torch.rand(4, 3, dtype=torch.float64) + 1.0
    cross = rn.crossing_along_gradient(nets, x, max_multiple=0.5)
    assert not bool(cross.found.any())
    assert torch.allclose(cross.multiple, torch.full_like(cross.multiple, 0.5))


def test_relu_correlation_matches_wide_networks():
    theory = rn.relu_correlation(0.0, 3)
    assert theory[0] == 0.0 and theory[1] == pytest.approx(1 / math.pi)
    assert all(a < b for a, b in zip(theory, theory[1:], strict=False))
    assert rn.relu_correlation(1.0, 5)[-1] == pytest.approx(1.0)
    # one wide network: the cosine between hidden vectors follows the recursion
    # (averaged over 16 pairs of orthogonal inputs to tame finite-width noise)
    d = 64
    nets = rn.random_relu_networks(d, (3000, 3000), 1, seed=0, dtype=torch.float64)
    h = math.sqrt(d) * torch.eye(d, dtype=torch.float64)[:32]
    for depth, w in enumerate(nets.weights[:-1], start=1):
        h = torch.relu(h @ w[0])
        a, b = h[0::2], h[1::2]
        cos = float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())
        assert cos == pytest.approx(theory[depth], abs=0.02)
    with pytest.raises(ValueError, match="rho"):
        rn.relu_correlation(1.5, 2)


def test_loglog_fit_recovers_a_power_law():
    xs = [16, 64, 256, 1024]
    gen = torch.Generator().manual_seed(0)
    y = torch.tensor(xs, dtype=torch.float64) ** -0.5 * 0.7
    noisy = y * torch.exp(0.05 * torch.randn(20, 4, generator=gen, dtype=torch.float64))
    fit = rn.loglog_fit(xs, noisy, n_boot=200)
    assert fit.slope == pytest.approx(-0.5, abs=0.05)
    assert fit.slope_low < fit.slope < fit.slope_high
    assert math.exp(fit.intercept) == pytest.approx(0.7, rel=0.1)
    exact = rn.loglog_fit(xs, y[None].repeat(3, 1), n_boot=10)
    assert exact.slope == pytest.approx(-0.5) and exact.slope_high - exact.slope_low < 1e-9


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("call, match", [
    (lambda: rn.random_relu_networks(0, (4,), 2), "d"),
    (lambda: rn.random_relu_networks(4, (), 2), "widths"),
    (lambda: rn.random_relu_networks(4, (4,), 2, output="uniform"), "output"),
    (lambda: rn.random_relu_networks(4, (4,), 2, dtype=torch.int64), "dtype"),
    (lambda: _nets()(torch.zeros(3, 5)), "x"),
    (lambda: _nets()(torch.zeros(4, 3, 12)), "x"),
    (lambda: rn.one_step_attack(_nets(), torch.zeros(2, 12), overshoot=-1), "overshoot"),
    (lambda: rn.loglog_fit([1, 2], torch.ones(3, 3)), "y"),
    (lambda: rn.loglog_fit([1, 2], -torch.ones(3, 2)), "positive"),
    (lambda: rn.RandomReLUNetworks([torch.zeros(2, 3, 4), torch.zeros(2, 5)]), "weights"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
