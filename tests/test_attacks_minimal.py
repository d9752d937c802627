"""Minimum-norm attacks (deepfool, minimal_l2, carlini_wagner_l2, lbfgs) and robustness_curve:
closed-form checks on affine classifiers, behaviour on a small trained model."""

from __future__ import annotations

import pytest
import torch
from test_attacks_support import (
    affine_problem,
    digits_model_and_data,
    l2,
    single_thread,  # noqa: F401  (autouse fixture)
)
from torch import nn

import dmmlib.attacks as A


@pytest.fixture(scope="module")
def trained():
    return digits_model_and_data(48)


def _closest_points(model, x, y, dist):
    """The exact closest boundary points of an affine model."""
    W, b = model.lin.weight.detach().double(), model.lin.bias.detach().double()
    xd = x.double()
    z = xd @ W.T + b
    dw = W[None, :, :] - W[y][:, None, :]  # (N, K, D)
    gap = z.gather(1, y[:, None]) - z       # (N, K)
    d = gap / dw.norm(dim=2).clamp_min(1e-12)
    d[torch.arange(len(y)), y] = float("inf")
    j = d.argmin(1)
    n = dw[torch.arange(len(y)), j]
    assert torch.allclose(d[torch.arange(len(y)), j], dist)
    return xd - (gap[torch.arange(len(y)), j] / n.norm(dim=1) ** 2)[:, None] * (-n)


MINIMAL = {
    "deepfool": lambda m, x, y: A.deepfool(m, x, y, progress=False),
    "minimal_l2": lambda m, x, y: A.minimal_l2(m, x, y, steps=100, progress=False),
    "carlini_wagner_l2": lambda m, x, y: A.carlini_wagner_l2(m, x, y, progress=False),
}


_CASES = [pytest.param(name, k, marks=[pytest.mark.slow] if name == "carlini_wagner_l2" else [])
          for name in sorted(MINIMAL) for k in (2, 5, 10)
          if not (name == "carlini_wagner_l2" and k == 5)]  # two class counts suffice for CW


@pytest.mark.parametrize("name,n_classes", _CASES)
def test_affine_minimal_l2_distance_within_one_percent(name, n_classes):
    model, x, y, dist = affine_problem(n_classes, n=12, seed=n_classes)
    x_adv, ok, *_ = MINIMAL[name](model, x, y)
    assert bool(ok.all())
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) != y).all())
    ratio = l2(x_adv, x) / dist
    assert float(ratio.min()) >= 1 - 1e-4  # nothing beats the closed form
    assert float(ratio.max()) <= 1.01
    # and it is *the* closest point, not just one as far away
    star = _closest_points(model, x, y, dist)
    assert float((l2(x_adv.double(), star) / dist).max()) <= 0.15


def test_deepfool_without_refinement_overshoots_by_the_overshoot():
    model, x, y, dist = affine_problem(5, n=12, seed=1)
    x_adv = A.deepfool(model, x, y, refine_steps=0, overshoot=0.02, progress=False).x_adv
    ratio = l2(x_adv, x) / dist
    # one step of length dist + 1e-4 (the push past the boundary), moved 1 + overshoot times
    assert torch.allclose(ratio, 1.02 * (dist + 1e-4) / dist, atol=1e-4)
    x0 = A.deepfool(model, x, y, refine_steps=0, overshoot=0.0, progress=False).x_adv
    with torch.no_grad():
        assert bool((model(x0).argmax(1) != y).all())  # the 1e-4 push still crosses
    assert float((l2(x0, x) / (dist + 1e-4)).max()) <= 1.0001


def test_deepfool_candidates():
    model, x, y, dist = affine_problem(10, n=12, seed=3)
    full = A.deepfool(model, x, y, progress=False).x_adv
    few = A.deepfool(model, x, y, candidates=3, progress=False).x_adv
    with torch.no_grad():
        assert bool((model(few).argmax(1) != y).all())
    # the nearest boundary belongs to one of the top classes here, as usual
    assert float((l2(few, x) / l2(full, x)).median()) <= 1.01
    with pytest.raises(ValueError, match="candidates"):
        A.deepfool(model, x, y, candidates=1)


def test_minimal_l2_ddn_on_binary_affine():
    model, x, y, dist = affine_problem(2, n=12, seed=5)
    x_adv, ok, *_ = A.minimal_l2(model, x, y, method="ddn", steps=100,
                             progress=False)
    assert bool(ok.all())
    assert float((l2(x_adv, x) / dist).max()) <= 1.01


@pytest.mark.parametrize("method", ["auto", "fmn", "ddn"])
def test_minimal_l2_on_trained_model(trained, method):
    model, x, y = trained
    x_adv, ok, *_ = A.minimal_l2(model, x, y, steps=100, method=method,
                             progress=False)
    assert bool(ok.all())
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) != y).all())
    # no worse than DeepFool (a strong baseline on this piecewise-linear model)
    df = A.deepfool(model, x, y, progress=False).x_adv
    assert float(l2(x_adv, x).median()) <= 1.1 * float(l2(df, x).median())


def test_minimal_l2_targeted(trained):
    model, x, y = trained
    target = (y + 1) % 10
    x_adv, ok, *_ = A.minimal_l2(model, x, target, targeted=True, steps=100,
                             progress=False)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    assert float(ok.float().mean()) >= 0.9
    assert torch.equal(pred[ok], target[ok])


def test_minimal_l2_rejects_bad_options(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="method"):
        A.minimal_l2(model, x, y, method="pgd")
    with pytest.raises(ValueError, match="gamma"):
        A.minimal_l2(model, x, y, gamma=1.5)


@pytest.mark.slow
def test_carlini_wagner_targeted_and_kappa(trained):
    model, x, y = trained
    target = (y + 2) % 10
    x_adv, ok, *_ = A.carlini_wagner_l2(model, x[:16], target[:16], targeted=True,
                                    binary_search_steps=5, steps=50, c=1.0, lr=0.05, progress=False)
    with torch.no_grad():
        assert torch.equal(model(x_adv).argmax(1)[ok], target[:16][ok])
    assert float(ok.float().mean()) >= 0.75
    # a confidence margin kappa costs distance
    x1, y1 = x[:16], y[:16]
    a0, ok0, *_ = A.carlini_wagner_l2(model, x1, y1, binary_search_steps=4, steps=50, c=1.0,
                                  lr=0.05, progress=False)
    a5, ok5, *_ = A.carlini_wagner_l2(model, x1, y1, binary_search_steps=4, steps=50, c=1.0,
                                  lr=0.05, kappa=2.0, progress=False)
    both = ok0 & ok5
    assert bool(both.any())
    assert float(l2(a5, x1)[both].median()) > float(l2(a0, x1)[both].median())
    with torch.no_grad():
        z = model(a5[ok5])
    true = z.gather(1, y1[ok5][:, None]).squeeze(1)
    other = z.scatter(1, y1[ok5][:, None], float("-inf")).amax(1)
    assert bool((other - true >= 2.0 - 1e-4).all())


class Constant(nn.Module):
    """Ignores its input: nothing can be fooled."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([3.0, 0.0, -1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w.expand(x.shape[0], 3) + 0.0 * x.flatten(1).sum(1, keepdim=True)


@pytest.mark.parametrize("name", ["deepfool", "minimal_l2", "carlini_wagner_l2", "lbfgs"])
def test_unsuccessful_samples_come_back_as_x(name):
    model = Constant()
    x = torch.rand(5, 1, 4, 4)
    y = torch.zeros(5, dtype=torch.int64)
    kw = {"deepfool": {"steps": 5}, "minimal_l2": {"steps": 5},
          "carlini_wagner_l2": {"binary_search_steps": 2, "steps": 3},
          "lbfgs": {"binary_search_steps": 2, "steps": 3}}[name]
    x_adv, ok, norm, blocked = getattr(A, name)(model, x, y, progress=False, **kw)
    assert not bool(ok.any())
    assert torch.equal(x_adv, x)
    assert bool(torch.isinf(norm).all()) and not bool(blocked.any())


@pytest.mark.parametrize("name", ["deepfool", "minimal_l2", "carlini_wagner_l2"])
def test_misclassified_samples_need_no_perturbation(trained, name):
    model, x, y = trained
    wrong = (y + 1) % 10
    kw = {"deepfool": {"steps": 5}, "minimal_l2": {"steps": 5},
          "carlini_wagner_l2": {"binary_search_steps": 1, "steps": 3}}[name]
    x_adv, ok, norm, _ = getattr(A, name)(model, x, wrong, progress=False, **kw)
    assert bool(ok.all())
    assert float(l2(x_adv, x).max()) <= 1e-3
    assert float(norm.max()) <= 1e-3


# ---------------------------------------------------------------------------
# lbfgs
# ---------------------------------------------------------------------------


def test_lbfgs_binary_affine_is_the_closest_point():
    model, x, y, dist = affine_problem(2, n=12, seed=7)
    x_adv, ok, *_ = A.lbfgs(model, x, y, binary_search_steps=12, progress=False)
    assert bool(ok.all())
    ratio = l2(x_adv, x) / dist
    assert float(ratio.min()) >= 1 - 1e-4 and float(ratio.max()) <= 1.01


@pytest.mark.slow
def test_lbfgs_reaches_its_targets(trained):
    model, x, y = trained
    target = (y + 5) % 10
    x_adv, ok, *_ = A.lbfgs(model, x, target, targeted=True, progress=False)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    assert float(ok.float().mean()) >= 0.9
    assert torch.equal(pred[ok], target[ok])
    # default: the runner-up class
    with torch.no_grad():
        runner_up = model(x).scatter(1, y[:, None], float("-inf")).argmax(1)
    x_ru, ok_ru, *_ = A.lbfgs(model, x, y, progress=False)
    with torch.no_grad():
        assert torch.equal(model(x_ru).argmax(1)[ok_ru], runner_up[ok_ru])
    assert float(ok_ru.float().mean()) >= 0.9
    # the nearest class is cheaper to reach than an arbitrary one
    both = ok & ok_ru
    assert float(l2(x_ru, x)[both].median()) <= float(l2(x_adv, x)[both].median())


def test_lbfgs_random_targets_are_seeded(trained):
    model, x, y = trained
    t = A.random_targets(y[:8], 10, seed=3)
    assert torch.equal(t, A.random_targets(y[:8], 10, seed=3)) and bool((t != y[:8]).all())
    g = torch.Generator().manual_seed(3)
    assert torch.equal(A.random_targets(y[:8], 10, seed=g), t)  # a generator works too
    a, ok_a, *_ = A.lbfgs(model, x[:8], t, targeted=True, binary_search_steps=2, steps=5,
                          progress=False)
    b, ok_b, *_ = A.lbfgs(model, x[:8], A.random_targets(y[:8], 10, seed=3), targeted=True,
                          binary_search_steps=2, steps=5, progress=False)
    assert torch.equal(a, b) and torch.equal(ok_a, ok_b)


def test_lbfgs_rejects_bad_targets(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="labels"):
        A.lbfgs(model, x, torch.full_like(y, 12), targeted=True)
    with pytest.raises(TypeError, match="target"):
        A.lbfgs(model, x, y, target=y.clone())  # the old keyword is gone


# ---------------------------------------------------------------------------
# robustness_curve
# ---------------------------------------------------------------------------


def test_curve_pgd_matches_separate_attacks(trained):
    model, x, y = trained
    eps = [0.0, 0.05, 0.2]
    curve = A.robustness_curve(model, x, y, eps, attack="pgd", steps=5, random_start=False,
                               progress=False)
    assert curve["eps"] == eps and curve["attack"] == "pgd"
    for e, acc, sr in zip(eps, curve["accuracy"], curve["success_rate"], strict=True):
        x_adv = A.pgd(model, x, y, e, steps=5, random_start=False, progress=False).x_adv
        with torch.no_grad():
            expected = float((model(x_adv).argmax(1) == y).float().mean())
        assert acc == pytest.approx(expected)
        assert sr == pytest.approx(1 - expected)
    assert curve["accuracy"][0] == pytest.approx(curve["clean_accuracy"])
    assert curve["accuracy"] == sorted(curve["accuracy"], reverse=True)


def test_curve_batches_give_the_same_answer(trained):
    model, x, y = trained
    a = A.robustness_curve(model, x, y, [0.05, 0.1], attack="fgsm")
    b = A.robustness_curve(model, x, y, [0.05, 0.1], attack="fgsm", batch_size=7)
    assert a["accuracy"] == pytest.approx(b["accuracy"])


def test_curve_from_a_minimal_norm_attack(trained):
    model, x, y = trained
    eps = [0.0, 0.3, 0.6, 5.0]
    curve = A.robustness_curve(model, x, y, eps, attack="deepfool", progress=False)
    d = curve["distances"]
    assert d.shape == (x.shape[0],)
    for e, acc in zip(eps, curve["accuracy"], strict=True):
        assert acc == pytest.approx(float((d > e).double().mean()))
    assert curve["accuracy"][0] == 1.0 and curve["accuracy"][-1] == 0.0
    # PGD-L2 at a budget agrees roughly with the minimal-norm curve
    pgd_curve = A.robustness_curve(model, x, y, [0.6], attack="pgd", norm=2, steps=20, seed=0,
                                   progress=False)
    assert abs(pgd_curve["accuracy"][0] - curve["accuracy"][2]) <= 0.25
    with pytest.raises(ValueError, match="norm"):
        A.robustness_curve(model, x, y, eps, attack="deepfool", norm="inf")


def test_curve_with_a_callable_and_bad_arguments(trained):
    model, x, y = trained

    def my_attack(model, x, y, eps):
        return A.fgsm(model, x, y, eps)

    c = A.robustness_curve(model, x, y, [0.1], attack=my_attack)
    assert c["attack"] == "my_attack"
    assert c["accuracy"] == pytest.approx(A.robustness_curve(model, x, y, [0.1],
                                                             attack="fgsm")["accuracy"])
    with pytest.raises(ValueError, match="attack"):
        A.robustness_curve(model, x, y, [0.1], attack="nope")
    with pytest.raises(ValueError, match="eps_list"):
        A.robustness_curve(model, x, y, [])
    with pytest.raises(ValueError, match="eps_list"):
        A.robustness_curve(model, x, y, [-0.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        A.robustness_curve(model, x + 2, y, [0.1])


def test_minimal_l2_auto_is_the_better_of_fmn_and_ddn_at_half_the_steps(trained):
    model, x, y = trained
    auto = A.minimal_l2(model, x, y, steps=40, progress=False).x_adv
    fmn = A.minimal_l2(model, x, y, steps=20, method="fmn", progress=False).x_adv
    ddn = A.minimal_l2(model, x, y, steps=20, method="ddn", progress=False).x_adv
    best = torch.minimum(l2(fmn, x), l2(ddn, x))
    assert torch.allclose(l2(auto, x), best, atol=1e-5)


@pytest.mark.parametrize("candidates", [None, 3])
def test_deepfool_loop_and_batched_gradients_agree(trained, candidates):
    """The two ways of taking the class gradients give the same attack."""
    model, x, y = trained
    loop = A.deepfool(model, x, y, grads="loop", candidates=candidates, progress=False)
    batched = A.deepfool(model, x, y, grads="batched", candidates=candidates, progress=False)
    auto = A.deepfool(model, x, y, candidates=candidates, progress=False)
    assert torch.equal(loop.success, batched.success)
    torch.testing.assert_close(loop.x_adv, batched.x_adv, atol=1e-5, rtol=0)
    # on a CPU, auto takes the loop for a convolutional model and the batched product otherwise
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    torch.testing.assert_close(auto.x_adv, (loop if has_conv else batched).x_adv, atol=0, rtol=0)
    with pytest.raises(ValueError, match="grads"):
        A.deepfool(model, x, y, grads="vmap")


def test_deepfool_auto_picks_the_loop_for_a_convolutional_model():
    from dmmlib.attacks.deepfool import _has_convolutions
    from dmmlib.models import MLP, SmallCNN

    assert _has_convolutions(SmallCNN(width=4)) and not _has_convolutions(MLP(16, (8,)))
