"""Property-based tests (hypothesis): attacks and manifold functions on random inputs.

Random batch sizes, input shapes, numbers of classes, dtypes (float32/float64
for the data and, independently, for the model), weight scales (from nearly
constant to saturated logits), pixel values (edges 0 and 1 included) and
budgets. For every attack: the output has ``x``'s shape and dtype, lies in
the box [0, 1] and (budgeted attacks) in the epsilon ball, contains no NaN,
and neither the inputs nor the model (weights, gradients, train/eval modes)
were modified. For the manifold functions: bases are orthonormal, splits add
up, fractions and angles lie in their ranges, nothing is NaN.

The settings are derandomized and use no example database, so CI runs the
same examples every time; ``pytest --hypothesis-show-statistics`` prints how
many were run.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

import dmmlib.attacks as A
from dmmlib import geometry, manifold

# DMM_PROPERTY_SCALE=20 runs 20 times more (random, not derandomized) examples: for
# hunting bugs by hand; CI runs the small, fixed set.
SCALE = int(os.environ.get("DMM_PROPERTY_SCALE", "1"))
SETTINGS = settings(max_examples=25 * SCALE, derandomize=SCALE == 1, database=None,
                    deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = st.sampled_from([torch.float32, torch.float64])


# --------------------------------------------------------------------------- strategies
@st.composite
def problems(draw, max_n: int = 4):
    """(model, x, y, dtype info): a random classifier and a batch of pixels in [0, 1]."""
    n = draw(st.integers(1, max_n))
    shape = draw(st.sampled_from([(1,), (2,), (5,), (12,), (1, 2, 2), (2, 3, 2), (3, 4, 4)]))
    classes = draw(st.integers(2, 5))
    x_dtype, m_dtype = draw(DTYPES), draw(DTYPES)
    pixels = st.one_of(st.floats(0.0, 1.0, width=32), st.sampled_from([0.0, 1.0, 0.5]))
    x = torch.from_numpy(draw(arrays(np.float64, (n, *shape), elements=pixels))).to(x_dtype)
    y = torch.tensor(draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 1e3]))
    hidden = draw(st.sampled_from([0, 8]))
    model = _model(seed, math.prod(shape), classes, hidden, scale, m_dtype)
    model.train(draw(st.booleans()))
    return model, x, y


def _model(seed: int, d: int, classes: int, hidden: int, scale: float,
           dtype: torch.dtype) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    widths = [d, hidden, classes] if hidden else [d, classes]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g) * scale / math.sqrt(a))
            lin.bias.copy_(torch.randn(b, generator=g) * scale * 0.1)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers[:-1]).to(dtype)


def _snapshot(model: nn.Module, *tensors: torch.Tensor):
    return ([p.detach().clone() for p in model.state_dict().values()],
            [m.training for m in model.modules()], [t.clone() for t in tensors])


def _unchanged(model: nn.Module, snap, *tensors: torch.Tensor) -> None:
    params, modes, copies = snap
    for p, q in zip(model.state_dict().values(), params, strict=True):
        assert torch.equal(p, q), "the attack changed the model's weights"
    assert all(p.grad is None for p in model.parameters()), "the attack left .grad"
    assert [m.training for m in model.modules()] == modes, "train/eval modes changed"
    for t, c in zip(tensors, copies, strict=True):
        assert torch.equal(t, c), "an input was modified"


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    for m, training in modes:
        m.training = training
    return pred


def _tol(x: torch.Tensor, model: nn.Module) -> float:
    """Rounding allowance of one pixel: the attack computes in the model's dtype."""
    low = torch.float32 in (x.dtype, next(model.parameters()).dtype)
    return 1e-6 if low else 1e-12


def _check_output(out: torch.Tensor, x: torch.Tensor) -> None:
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert bool(torch.isfinite(out).all()), "NaN or inf in the output"
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, "output leaves the box"


def _dist(out: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    d = (out.double() - x.double()).flatten(1)
    return d.abs().amax(1) if norm == "inf" else d.norm(dim=1)


def _in_ball(out: torch.Tensor, x: torch.Tensor, eps: float, norm: str, tol: float) -> None:
    dim = x[0].numel()
    allowance = tol * (1 + eps) * (1 if norm == "inf" else math.sqrt(dim))
    worst = float(_dist(out, x, norm).max())
    assert worst <= eps + allowance, f"outside the {norm} ball: {worst} > {eps}"


# --------------------------------------------------------------------------- budgeted
@SETTINGS
@given(problems(), st.floats(0.0, 1.0), st.booleans())
def test_fgsm_box_ball_inputs(problem, eps, targeted):
    model, x, y = problem
    snap = _snapshot(model, x, y)
    out, ok, *_ = A.fgsm(model, x, y, eps, targeted=targeted)
    _check_output(out, x)
    _in_ball(out, x, eps, "inf", _tol(x, model))
    assert ok.dtype == torch.bool and ok.shape == y.shape
    _unchanged(model, snap, x, y)


@SETTINGS
@given(problems(), st.lists(st.floats(0.0, 2.0), min_size=1, max_size=3),
       st.sampled_from(["inf", 2]), st.integers(0, 3), st.integers(1, 2), st.booleans(),
       st.booleans())
def test_pgd_box_ball_inputs(problem, eps_list, norm, steps, restarts, random_start, targeted):
    model, x, y = problem
    snap = _snapshot(model, x, y)
    results = A.pgd(model, x, y, eps_list, norm=norm, steps=steps, restarts=restarts,
                    random_start=random_start, targeted=targeted, seed=1, progress=False)
    assert len(results) == len(eps_list)
    for eps, (out, ok, *_) in zip(eps_list, results, strict=True):
        _check_output(out, x)
        _in_ball(out, x, eps, "inf" if norm == "inf" else "2", _tol(x, model))
        if x.dtype == next(model.parameters()).dtype:
            # the returned point is exactly the one that was judged
            pred = _predict(model, out)
            assert torch.equal(ok, pred == y if targeted else pred != y)
    _unchanged(model, snap, x, y)


@SETTINGS
@given(problems(max_n=3), st.floats(0.0, 2.0), st.sampled_from(["inf", 2]), st.booleans(),
       st.integers(0, 2**16), st.data())
def test_pgd_subspace_stays_in_subspace_ball_and_box(problem, eps, norm, complement, seed,
                                                     data):
    model, x, y = problem
    n, d = x.shape[0], x[0].numel()
    k = data.draw(st.integers(1, d))
    u_dtype = data.draw(DTYPES)
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(n, d, k, generator=g, dtype=torch.float64))
    U = U.to(u_dtype)
    snap = _snapshot(model, x, y, U)
    out = A.pgd(model, x, y, eps, norm=norm, steps=2, basis=U, complement=complement,
                seed=0, progress=False).x_adv
    _check_output(out, x)
    tol = max(_tol(x, model), 1e-6 if u_dtype == torch.float32 else 0)
    _in_ball(out, x, eps, "inf" if norm == "inf" else "2", tol)
    delta = (out.double() - x.double()).reshape(n, d, 1)
    Ud = U.double()
    inside = Ud @ (Ud.transpose(1, 2) @ delta)
    resid = (delta - inside) if not complement else inside
    # the final clip to the box may move a pixel by the box tolerance (1e-7)
    assert float(resid.norm(dim=1).max()) <= 1e-6 * math.sqrt(d) + 1e3 * tol * (1 + eps)
    _unchanged(model, snap, x, y, U)


# --------------------------------------------------------------------------- minimal norm
MINIMAL = {
    "deepfool": lambda m, x, y: A.deepfool(m, x, y, steps=4, progress=False),
    "deepfool-candidates": lambda m, x, y: A.deepfool(m, x, y, steps=4, candidates=2,
                                                      refine_steps=0, progress=False),
    "fmn": lambda m, x, y: A.minimal_l2(m, x, y, steps=5, method="fmn", progress=False),
    "minimal_l2": lambda m, x, y: A.minimal_l2(m, x, y, steps=5, progress=False),
    "ddn": lambda m, x, y: A.minimal_l2(m, x, y, steps=5, method="ddn", progress=False),
    "carlini_wagner_l2": lambda m, x, y: A.carlini_wagner_l2(
        m, x, y, binary_search_steps=2, steps=3, progress=False),
    "lbfgs": lambda m, x, y: A.lbfgs(m, x, y, binary_search_steps=2, steps=3, progress=False),
}


@pytest.mark.parametrize("name", sorted(MINIMAL))
@settings(SETTINGS, max_examples=15 * SCALE)
@given(problem=problems(max_n=3))
def test_minimal_norm_attacks_box_and_inputs(name, problem):
    model, x, y = problem
    snap = _snapshot(model, x, y)
    out, ok, *_ = MINIMAL[name](model, x, y)
    _check_output(out, x)
    assert ok.dtype == torch.bool and ok.shape == y.shape
    # failures come back as x (up to the model dtype's rounding of x)
    fail = ~ok
    if bool(fail.any()):
        assert float((out[fail].double() - x[fail].double()).abs().max()) <= _tol(x, model)
    _unchanged(model, snap, x, y)


@settings(SETTINGS, max_examples=15 * SCALE)
@given(problems(max_n=3), st.lists(st.floats(0.0, 3.0), min_size=1, max_size=3),
       st.sampled_from(["pgd", "fgsm", "deepfool"]))
def test_robustness_curve_is_monotone_and_in_range(problem, eps_list, attack):
    model, x, y = problem
    snap = _snapshot(model, x, y)
    kw = {"steps": 2, "seed": 0, "progress": False} if attack == "pgd" else {}
    if attack == "deepfool":
        kw = {"steps": 3, "progress": False}
    curve = A.robustness_curve(model, x, y, eps_list, attack=attack, **kw)
    acc = curve["accuracy"]
    assert len(acc) == len(eps_list)
    assert all(0.0 <= a <= 1.0 and not math.isnan(a) for a in acc)
    if attack == "deepfool":  # one attack, thresholded: monotone in eps
        order = sorted(range(len(eps_list)), key=lambda i: eps_list[i])
        assert all(acc[i] >= acc[j] for i, j in zip(order, order[1:], strict=False))
    _unchanged(model, snap, x, y)


# --------------------------------------------------------------------------- manifold
@st.composite
def vectors_and_bases(draw):
    n = draw(st.integers(1, 4))
    d = draw(st.integers(1, 16))
    k = draw(st.integers(1, d))
    v_dtype, u_dtype = draw(DTYPES), draw(DTYPES)
    mag = draw(st.sampled_from([1e-6, 1.0, 1e6]))
    vals = st.floats(-1.0, 1.0, width=32)
    v = torch.from_numpy(draw(arrays(np.float64, (n, d), elements=vals))) * mag
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(n, d, k, generator=g, dtype=torch.float64))
    return v.to(v_dtype), U.to(u_dtype)


@SETTINGS
@given(vectors_and_bases())
def test_split_adds_up_and_fractions_are_in_range(vu):
    v, U = vu
    v0, U0 = v.clone(), U.clone()
    s = manifold.split_on_off_manifold(v, U)
    assert torch.equal(v, v0) and torch.equal(U, U0)
    for t in s:
        assert bool(torch.isfinite(t).all())
    eps = 1e-5 if torch.float32 in (v.dtype, U.dtype) else 1e-10
    scale = float(v.double().abs().max()) or 1.0
    assert float((s.on.double() + s.off.double() - v.double()).abs().max()) <= eps * scale
    assert float(s.on_fraction.min()) >= 0 and float(s.on_fraction.max()) <= 1 + eps
    assert float(s.off_fraction.min()) >= 0 and float(s.off_fraction.max()) <= 1 + eps
    nonzero = v.flatten(1).norm(dim=1) > 0
    total = s.on_fraction.double() ** 2 + s.off_fraction.double() ** 2
    assert torch.allclose(total[nonzero], torch.ones_like(total[nonzero]), atol=1e3 * eps)
    assert bool((total[~nonzero] == 0).all())


@SETTINGS
@given(vectors_and_bases(), st.integers(0, 2**16))
def test_principal_angles_range_order_and_self(vu, seed):
    _, U = vu
    n, d, k = U.shape
    m = 1 + seed % d
    g = torch.Generator().manual_seed(seed)
    B, _ = torch.linalg.qr(torch.randn(n, d, m, generator=g, dtype=torch.float64))
    B = B.to(U.dtype)
    ang = manifold.principal_angles(U, B)
    assert ang.shape == (n, min(k, m))
    assert bool(torch.isfinite(ang).all())
    assert float(ang.min()) >= 0 and float(ang.max()) <= math.pi / 2 + 1e-6
    assert bool((ang[:, 1:] >= ang[:, :-1] - 1e-6).all())
    tol = 2e-3 if U.dtype == torch.float32 else 1e-6
    assert float(manifold.principal_angles(U, U).max()) <= tol


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 40), DTYPES, st.integers(0, 2**16),
       st.floats(-50, 50), st.sampled_from([1e-3, 1.0, 30.0]), st.data())
def test_tangent_basis_is_orthonormal_and_finite(n, k, d, dtype, seed, shift, scale, data):
    k = min(k, d)
    torch_gen = torch.Generator().manual_seed(seed)
    dec = nn.Sequential(nn.Linear(k, 8), nn.Tanh(), nn.Linear(8, d), nn.Sigmoid()).to(dtype)
    with torch.no_grad():
        for p in dec.parameters():
            p.copy_(torch.randn(p.shape, generator=torch_gen, dtype=dtype) * scale)
    z = (torch.randn(n, k, generator=torch_gen, dtype=torch.float64) + shift).to(dtype)
    dec.train(data.draw(st.booleans()))
    snap = _snapshot(dec, z)
    U = manifold.tangent_basis(dec, z, chunk_size=data.draw(st.sampled_from([None, 1, 2])))
    assert U.shape == (n, d, k) and U.dtype == dtype
    assert bool(torch.isfinite(U).all())
    gram = U.transpose(1, 2) @ U
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert float((gram - torch.eye(k, dtype=dtype)).abs().max()) <= tol
    _unchanged(dec, snap, z)


@settings(SETTINGS, max_examples=15 * SCALE)
@given(st.sampled_from([(4,), (1, 4, 4), (2, 4, 4)]), st.integers(1, 4), st.integers(1, 3),
       DTYPES, st.integers(0, 2**16), st.booleans())
def test_tangent_basis_at_autoencoder(shape, latent, n, dtype, seed, conv):
    torch.manual_seed(seed)  # the autoencoder's own initialisation; restored below
    d = math.prod(shape)
    latent = min(latent, d)
    if conv and len(shape) == 3:
        ae = manifold.ConvAutoencoder(shape, latent, width=2).to(dtype)
    else:
        ae = manifold.MLPAutoencoder(shape, latent, hidden=(8,)).to(dtype)
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    snap = _snapshot(ae, x)
    U = manifold.tangent_basis_at(ae, x)
    assert U.shape == (n, d, latent) and bool(torch.isfinite(U).all())
    gram = U.transpose(1, 2) @ U
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert float((gram - torch.eye(latent, dtype=dtype)).abs().max()) <= tol
    _unchanged(ae, snap, x)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 12), st.integers(1, 12), DTYPES, st.integers(0, 2**16))
def test_random_bases_and_fractions(n, d, k, dtype, seed):
    k = min(k, d)
    g = torch.Generator().manual_seed(seed)
    U = manifold.random_orthonormal_basis(n, d, k, g, dtype=dtype)
    gram = U.transpose(1, 2) @ U
    assert float((gram - torch.eye(k, dtype=dtype)).abs().max()) <= (1e-5 if dtype ==
                                                                    torch.float32 else 1e-12)
    v = torch.randn(n, d, generator=g, dtype=dtype)
    s = manifold.random_subspace_fractions(v, k, g)
    assert bool(torch.isfinite(s.on_fraction).all()) and float(s.on_fraction.max()) <= 1 + 1e-5


@settings(SETTINGS, max_examples=10 * SCALE)
@given(problems(max_n=3))
def test_boundary_normal_is_unit_or_zero(problem):
    model, x, y = problem
    snap = _snapshot(model, x, y)
    normal = geometry.boundary_normal(model, x, y)
    assert normal.shape == x.shape and bool(torch.isfinite(normal).all())
    norms = normal.double().flatten(1).norm(dim=1)
    assert bool(((norms - 1).abs() < 1e-4).logical_or(norms == 0).all())
    _unchanged(model, snap, x, y)
