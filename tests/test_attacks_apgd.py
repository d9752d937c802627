"""APGD and the DLR loss: closed-form checks on affine classifiers, and APGD against PGD."""

from __future__ import annotations

import pytest
import torch
from test_attacks_support import (
    affine_problem,
    digits_model_and_data,
    single_thread,  # noqa: F401  (autouse fixture)
)

import dmmlib.attacks as A
from dmmlib.attacks.apgd import _checkpoints


def test_dlr_loss_values_invariances_and_sign():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, -1.0]])
    y = torch.tensor([0, 0])
    got = A.dlr_loss(logits, y)
    # sample 0: correct, margin 2 over the scale 3 - 0; sample 1: wrong, margin -2 over 2 - 0
    torch.testing.assert_close(got, torch.tensor([-2 / 3, 1.0]))
    torch.testing.assert_close(A.dlr_loss(5 * logits + 7, y), got)  # shift and scale
    assert bool(((got > 0) == (logits.argmax(1) != y)).all())
    with pytest.raises(ValueError, match="K >= 3"):
        A.dlr_loss(logits[:, :2], y)


def test_checkpoints_follow_the_paper_schedule():
    w = _checkpoints(100)
    assert w[0] == 22 and w[-1] <= 100
    gaps = [b - a for a, b in zip([0, *w], w, strict=False)]
    assert all(g >= 6 for g in gaps) and gaps == sorted(gaps, reverse=True)


@pytest.mark.parametrize("norm", ["2", "inf"])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_finds_exactly_the_examples_inside_the_ball(norm, loss):
    """An affine model: every point whose boundary lies inside the ball is fooled,
    no point whose boundary lies outside is."""
    model, x, y, dist2 = affine_problem(3 if loss == "dlr" else 2, n=12, seed=2)
    W = model.lin.weight.detach().double()
    if norm == "inf":  # nearest boundary in L-inf: margin over the l1 norm of the normal
        z = x.double() @ W.T + model.lin.bias.detach().double()
        gap = z.gather(1, y[:, None]) - z
        dw = (W[None, :, :] - W[y][:, None, :]).abs().sum(2)
        d = gap / dw.clamp_min(1e-12)
        d[torch.arange(len(y)), y] = float("inf")
        dist = d.min(1).values.float()
    else:
        dist = dist2
    for factor, want in ((1.05, True), (0.95, False)):
        for i in range(len(y)):  # one budget per point: each its own distance
            res = A.apgd(model, x[i:i + 1], y[i:i + 1], float(factor * dist[i]), norm=norm,
                         loss=loss, steps=50, seed=0, progress=False)
            assert bool(res.success.item()) == want, (i, factor)


def test_apgd_is_at_least_as_strong_as_pgd_and_reproducible():
    model, x, y = digits_model_and_data(64)
    pgd = A.pgd(model, x, y, 0.08, steps=50, seed=0, progress=False)
    ce = A.apgd(model, x, y, 0.08, steps=50, seed=0, progress=False)
    dlr = A.apgd(model, x, y, 0.08, loss="dlr", steps=50, seed=0, progress=False)
    assert 0 < float(pgd.success.float().mean()) < 1  # a budget where the attacks differ
    assert float(ce.success.float().mean()) >= float(pgd.success.float().mean())
    assert float(dlr.success.float().mean()) >= float(pgd.success.float().mean()) - 2 / 64
    assert float((ce.x_adv - x).abs().amax()) <= 0.08 + 1e-6
    assert float(ce.x_adv.min()) >= 0 and float(ce.x_adv.max()) <= 1
    again = A.apgd(model, x, y, 0.08, steps=50, seed=0, progress=False)
    assert torch.equal(again.x_adv, ce.x_adv)
    more = A.apgd(model, x, y, 0.08, steps=50, restarts=3, seed=0, progress=False)
    assert bool((more.success | ~ce.success).all())  # restarts only add successes


def test_apgd_refuses_bad_input():
    model, x, y = digits_model_and_data(4)
    with pytest.raises(ValueError, match="loss"):
        A.apgd(model, x, y, 0.1, loss="hinge")
    with pytest.raises(ValueError, match="eps"):
        A.apgd(model, x, y, 0.0)
    with pytest.raises(ValueError, match="rho"):
        A.apgd(model, x, y, 0.1, rho=1.5)
