"""Attacks restricted to a subspace: the ``blocked`` report (the box [0, 1] leaves
no feasible direction) and ``minimal_l2(basis=, complement=, box=)``."""

from __future__ import annotations

import warnings

import pytest
import torch
from test_attacks_support import (
    affine_problem,
    digits_model_and_data,
    l2,
    single_thread,  # noqa: F401  (autouse fixture)
)

import dmmlib.attacks as A


def _pca_basis(x: torch.Tensor, k: int) -> torch.Tensor:
    """The top-k principal directions of the digits, the same for every sample: a
    dense "tangent space" like an autoencoder's (every pixel has a component)."""
    flat = x.flatten(1).double()
    _, _, v = torch.linalg.svd(flat - flat.mean(0), full_matrices=False)
    U = v[:k].T.to(x.dtype).contiguous()
    return U.expand(x.shape[0], *U.shape).contiguous()


def _outside(delta: torch.Tensor, U: torch.Tensor, complement: bool) -> torch.Tensor:
    flat = delta.flatten(1).double()
    Ud = U.double()
    inside = torch.einsum("ndk,nk->nd", Ud, torch.einsum("ndk,nd->nk", Ud, flat))
    return (inside if complement else flat - inside).norm(dim=1)


@pytest.fixture(scope="module")
def digits():
    model, x, y = digits_model_and_data(48)
    return model, x, y, _pca_basis(x, 8)


def test_pgd_reports_the_samples_the_box_blocks(digits):
    model, x, y, U = digits
    with pytest.warns(UserWarning, match=r"pgd: the box \[0, 1\] left no feasible move .* "
                                         r"for \d+% of the samples"):
        res = A.pgd(model, x, y, 1.0, norm=2, steps=10, basis=U, seed=0, progress=False)
    assert res.blocked.dtype == torch.bool and res.blocked.shape == (x.shape[0],)
    assert float(res.blocked.float().mean()) >= 0.5
    # a blocked sample comes back as x, and is not a success
    assert float(l2(res.x_adv, x)[res.blocked].max()) <= 1e-6
    assert not bool(res.success[res.blocked].any())
    # without the basis nothing is blocked and PGD fools most samples
    free = A.pgd(model, x, y, 1.0, norm=2, steps=10, seed=0, progress=False)
    assert not bool(free.blocked.any()) and float(free.success.float().mean()) >= 0.5


def test_interior_points_are_not_blocked(digits):
    model, x, y, U = digits
    xi = 0.2 + 0.6 * x  # no pixel at 0 or 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        res = A.pgd(model, xi, y, 0.5, norm=2, steps=5, basis=U, seed=0, progress=False)
        mres = A.minimal_l2(model, xi, y, basis=U, steps=20, progress=False)
    assert not bool(res.blocked.any()) and not bool(mres.blocked.any())


def test_minimal_l2_in_a_subspace_without_the_box_succeeds(digits):
    model, x, y, U = digits
    with pytest.warns(UserWarning, match="minimal_l2: the box"):
        boxed = A.minimal_l2(model, x, y, basis=U, steps=50, method="fmn", progress=False)
    assert float(boxed.blocked.float().mean()) >= 0.3
    assert float(boxed.x_adv.min()) >= 0 and float(boxed.x_adv.max()) <= 1
    for complement in (False, True):
        res = A.minimal_l2(model, x, y, basis=U, complement=complement, box=False, steps=50,
                           refine=12, progress=False)
        assert bool(res.success.all()) and not bool(res.blocked.any())
        with torch.no_grad():
            assert bool((model(res.x_adv).argmax(1) != y).all())
        delta = res.x_adv - x
        assert float(_outside(delta, U, complement).max()) <= 1e-4
        torch.testing.assert_close(res.norm, l2(res.x_adv, x).to(res.norm.dtype), rtol=1e-5,
                                   atol=1e-6)
    # unboxed, the perturbation does leave [0, 1] (it is not clipped)
    assert float(res.x_adv.min()) < 0 or float(res.x_adv.max()) > 1


@pytest.mark.parametrize("method", ["fmn", "auto"])
def test_minimal_l2_restricted_matches_the_linear_answer(method):
    """On an affine two-class model the smallest perturbation inside span(U) has
    length margin / |P w|, inside its complement margin / |w - P w|."""
    model, x, y, dist = affine_problem(2, n=12, d=40, seed=3)
    model = model.double()
    x = (0.4 + 0.2 * x).double()  # interior, so that the box never binds
    with torch.no_grad():
        z = model(x)
        y = z.argmax(1)
    w = (model.lin.weight[1] - model.lin.weight[0]).detach()
    gap = (z[:, 1] - z[:, 0]).abs()
    g = torch.Generator().manual_seed(1)
    U, _ = torch.linalg.qr(torch.randn(12, 40, 5, generator=g, dtype=torch.float64))
    Pw = torch.einsum("ndk,nk->nd", U, U.transpose(1, 2) @ w)
    expected = {None: gap / w.norm(), False: gap / Pw.norm(dim=1),
                True: gap / (w - Pw).norm(dim=1)}
    for comp in (None, False, True):
        for box in (True, False):
            res = A.minimal_l2(model, x, y, basis=None if comp is None else U,
                               complement=bool(comp), box=box, steps=60, method=method,
                               refine=12, progress=False)
            assert bool(res.success.all())
            torch.testing.assert_close(res.norm, expected[comp].detach(), rtol=3e-3, atol=1e-6)
            if comp is not None:
                assert float(_outside(res.x_adv - x, U, comp).max()) < 1e-8


def test_minimal_l2_restricted_contract(digits):
    model, x, y, U = digits
    model.train()
    x0 = x.clone()
    res = A.minimal_l2(model, x, (y + 1) % 10, basis=U, box=False, steps=3, progress=False)
    assert model.training and torch.equal(x, x0)
    assert torch.equal(res.norm, torch.zeros(x.shape[0], dtype=x.dtype))  # all misclassified
    assert not bool(res.blocked.any())
    model.eval()
    with pytest.raises(ValueError, match="complement"):
        A.minimal_l2(model, x, y, complement=True)
    with pytest.raises(ValueError, match="basis"):
        A.minimal_l2(model, x, y, basis=torch.randn(x.shape[0], 64, 3))
    with pytest.raises(TypeError, match="box"):
        A.minimal_l2(model, x, y, box="no")
    with pytest.raises(ValueError, match="refine"):
        A.minimal_l2(model, x, y, refine=-1)


def test_measured_blocked_fractions(digits, capsys):
    """Not an assertion about exact numbers: prints them for the record (-s)."""
    model, x, y, U = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        p = A.pgd(model, x, y, 1.0, norm=2, steps=10, basis=U, seed=0, progress=False)
        m = A.minimal_l2(model, x, y, basis=U, steps=50, progress=False)
    u = A.minimal_l2(model, x, y, basis=U, box=False, steps=50, refine=12, progress=False)
    with capsys.disabled():
        print(f"\n[digits MLP, PCA basis k=8, n={x.shape[0]}] pgd blocked "
              f"{p.blocked.float().mean():.0%}; minimal_l2 box=True blocked "
              f"{m.blocked.float().mean():.0%}; box=False success {u.success.float().mean():.0%},"
              f" median norm {u.norm.median():.3f}")
    assert float(u.success.float().mean()) == 1.0
