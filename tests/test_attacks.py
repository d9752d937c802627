"""Contract and correctness tests for dmmlib.attacks (fgsm, pgd, and the contract of all)."""

from __future__ import annotations

import math

import pytest
import torch
from test_attacks_support import (
    digits_model_and_data,
    l2,
    linf,
    random_basis,
    single_thread,  # noqa: F401  (autouse fixture)
)
from torch import nn

import dmmlib.attacks as A

# ---------------------------------------------------------------------------
# the registry: every public attack with cheap settings (name -> call, budget)
# ---------------------------------------------------------------------------

EPS_INF = 0.1
EPS_L2 = 0.5


def _registry() -> dict[str, tuple]:
    reg = {
        "fgsm": (lambda m, x, y, **kw: A.fgsm(m, x, y, EPS_INF, **kw), ("inf", EPS_INF), True),
        "pgd_inf": (lambda m, x, y, **kw: A.pgd(m, x, y, EPS_INF, steps=5, seed=0, **kw),
                    ("inf", EPS_INF), True),
        "pgd_l2": (lambda m, x, y, **kw: A.pgd(m, x, y, EPS_L2, norm=2, steps=5, seed=0, **kw),
                   ("2", EPS_L2), True),
        "pgd_subspace": (lambda m, x, y, **kw: A.pgd(
            m, x, y, EPS_L2, norm=2, steps=3, seed=0,
            basis=random_basis(x.shape[0], x[0].numel(), 4), **kw), ("2", EPS_L2), True),
    }
    for name, call, progress in _more_attacks():
        reg[name] = (call, None, progress)
    return reg


def _more_attacks() -> list[tuple]:
    out = []
    if hasattr(A, "deepfool"):
        out.append(("deepfool", lambda m, x, y, **kw: A.deepfool(m, x, y, steps=5, **kw), True))
    if hasattr(A, "minimal_l2"):
        out.append(("minimal_l2", lambda m, x, y, **kw: A.minimal_l2(m, x, y, steps=5, **kw),
                    True))
    if hasattr(A, "carlini_wagner_l2"):
        out.append(("carlini_wagner_l2", lambda m, x, y, **kw: A.carlini_wagner_l2(
            m, x, y, binary_search_steps=2, steps=3, **kw), True))
    if hasattr(A, "lbfgs"):
        out.append(("lbfgs", lambda m, x, y, **kw: A.lbfgs(
            m, x, y, binary_search_steps=2, steps=3, **kw), True))
    return out


REGISTRY = _registry()
NAMES = sorted(REGISTRY)
PROGRESS_NAMES = [n for n in NAMES if REGISTRY[n][2]]
PUBLIC = {"fgsm": A.fgsm, "pgd": A.pgd}
for _n in ("deepfool", "minimal_l2", "carlini_wagner_l2", "lbfgs"):
    if hasattr(A, _n):
        PUBLIC[_n] = getattr(A, _n)


def run(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw):
    kw.setdefault("progress", False) if name in PROGRESS_NAMES else None
    return REGISTRY[name][0](model, x, y, **kw)


@pytest.fixture(scope="module")
def trained():
    return digits_model_and_data(32)


class ModeRecorder(nn.Module):
    """Wraps a model; records its training flag at every forward; can fail on call k."""

    def __init__(self, inner: nn.Module, fail_at: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[bool] = []
        self.fail_at = fail_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        if self.fail_at is not None and len(self.seen) >= self.fail_at:
            raise RuntimeError("boom")
        return self.inner(x)


# ---------------------------------------------------------------------------
# the contract, for every attack
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_rejects_inputs_outside_the_box(name, trained):
    model, x, y = trained
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        run(name, model, x * 2 + 0.5, y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        run(name, model, x - 0.5, y)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        run(name, model, bad, y)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_labels(name, trained):
    model, x, y = trained
    with pytest.raises(ValueError):
        run(name, model, x, y[:-1])
    with pytest.raises(TypeError):
        run(name, model, x, y.float())
    with pytest.raises(ValueError, match="labels"):
        run(name, model, x, torch.full_like(y, 10))


@pytest.mark.parametrize("name", NAMES)
def test_output_in_box_same_shape_dtype_device_and_budget(name, trained):
    model, x, y = trained
    res = run(name, model, x, y)
    assert isinstance(res, A.AttackResult)
    x_adv, success, norm, blocked = res  # unpacks, in this order
    assert x_adv is res.x_adv and success is res.success
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert success.shape == (x.shape[0],) and success.dtype == torch.bool
    assert success.device == x.device
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    assert torch.equal(success, pred != y)
    budget = REGISTRY[name][1]
    p = budget[0] if budget is not None else "2"
    dist = linf(x_adv, x) if p == "inf" else l2(x_adv, x)
    if budget is not None:
        assert float(dist.max()) <= budget[1] * (1 + 1e-5) + 1e-6
    # norm: the perturbation's norm in the attack's norm where a success, inf where not
    assert norm.shape == (x.shape[0],) and norm.dtype == x.dtype and norm.device == x.device
    torch.testing.assert_close(norm[success], dist[success].to(norm.dtype), rtol=1e-5,
                               atol=1e-6)
    assert bool(torch.isinf(norm[~success]).all())
    assert blocked.shape == (x.shape[0],) and blocked.dtype == torch.bool
    assert blocked.device == x.device
    if name != "pgd_subspace":
        assert not bool(blocked.any())
    else:  # a blocked sample did not move
        assert bool((dist[blocked] <= 1e-6).all())


@pytest.mark.parametrize("name", ["fgsm", "pgd_inf", "pgd_l2"])
def test_a_list_of_budgets_gives_a_list_of_results(name, trained):
    model, x, y = trained
    call = {"fgsm": lambda e: A.fgsm(model, x, y, e),
            "pgd_inf": lambda e: A.pgd(model, x, y, e, steps=3, seed=0, progress=False),
            "pgd_l2": lambda e: A.pgd(model, x, y, e, norm=2, steps=3, seed=0,
                                      progress=False)}[name]
    outs = call([0.0, 0.05, 0.5])
    assert isinstance(outs, list) and len(outs) == 3
    assert all(isinstance(r, A.AttackResult) for r in outs)
    assert torch.equal(outs[0].x_adv, x)
    # a larger budget never succeeds on fewer samples here, and norm <= eps where a success
    for r, e in zip(outs, [0.0, 0.05, 0.5], strict=True):
        assert bool((r.norm[r.success] <= e * (1 + 1e-5) + 1e-6).all())


def test_return_success_is_gone(trained):
    model, x, y = trained
    for name in ("fgsm", "pgd_inf", "deepfool", "minimal_l2", "carlini_wagner_l2", "lbfgs"):
        with pytest.raises(TypeError, match="return_success"):
            run(name, model, x, y, return_success=True)


@pytest.mark.parametrize("name", NAMES)
def test_only_input_gradient_and_inputs_untouched(name, trained):
    model, x, y = trained
    model.zero_grad(set_to_none=True)
    x0, y0 = x.clone(), y.clone()
    run(name, model, x, y)
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert not x.requires_grad
    # pre-existing gradients are left exactly as they were
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    run(name, model, x, y)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_during_attack_and_mode_restored(name, trained, training):
    model, x, y = trained
    wrapped = ModeRecorder(model)
    wrapped.train(training)
    run(name, wrapped, x, y)
    assert wrapped.seen and not any(wrapped.seen)
    assert wrapped.training == training and model.training == training
    # mixed modes are restored module by module
    wrapped.train(True)
    model.net[0].eval()
    run(name, wrapped, x, y)
    assert wrapped.training and not model.net[0].training and model.net[1].training
    model.eval()


@pytest.mark.parametrize("name", NAMES)
def test_mode_restored_on_exception(name, trained):
    model, x, y = trained
    wrapped = ModeRecorder(model, fail_at=2)
    wrapped.train(True)
    with pytest.raises(RuntimeError, match="boom"):
        run(name, wrapped, x, y)
    assert wrapped.training and model.training
    model.eval()


@pytest.mark.parametrize("name", NAMES)
def test_double_input_with_float_model(name, trained):
    model, x, y = trained
    x64 = x.double()
    x_adv = run(name, model, x64, y).x_adv
    assert x_adv.dtype == torch.float64
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_works_under_no_grad_and_is_quiet(name, trained, capsys, monkeypatch):
    model, x, y = trained
    monkeypatch.setenv("DMM_PROGRESS", "0")
    with torch.no_grad():
        x_adv = REGISTRY[name][0](model, x, y).x_adv  # progress left at its default
    assert x_adv.shape == x.shape
    out, err = capsys.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("name", PROGRESS_NAMES)
def test_progress_bar_can_be_shown(name, trained, capsys):
    model, x, y = trained
    REGISTRY[name][0](model, x, y, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "it" in err or "%" in err  # tqdm writes to stderr


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_docstrings_follow_the_book_conventions(name):
    fn = PUBLIC[name]
    doc = fn.__doc__ or ""
    for section in ("Parameters", "Returns", "Examples"):
        assert section in doc
    assert "[0, 1]" in doc
    assert fn.__annotations__  # type hints


def test_rejects_a_non_module(trained):
    _, x, y = trained
    with pytest.raises(TypeError, match="model"):
        A.pgd(lambda t: t, x, y, 0.1)


# ---------------------------------------------------------------------------
# fgsm
# ---------------------------------------------------------------------------


def test_fgsm_is_one_signed_gradient_step(trained):
    model, x, y = trained
    xg = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(xg), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, xg)
    expected = (x + 0.07 * g.sign()).clamp(0, 1)
    assert torch.allclose(A.fgsm(model, x, y, 0.07).x_adv, expected, atol=1e-7)
    # targeted: one step down the target's cross-entropy
    target = (y + 1) % 10
    loss_t = nn.functional.cross_entropy(model(xg), target, reduction="sum")
    (gt,) = torch.autograd.grad(loss_t, xg)
    expected_t = (x - 0.07 * gt.sign()).clamp(0, 1)
    out_t = A.fgsm(model, x, target, 0.07, targeted=True).x_adv
    assert torch.allclose(out_t, expected_t, atol=1e-7)


def test_fgsm_list_of_eps(trained):
    model, x, y = trained
    outs = A.fgsm(model, x, y, [0.0, 0.05, 0.2])
    assert len(outs) == 3
    assert torch.equal(outs[0][0], x)
    for (xa, *_), e in zip(outs, [0.0, 0.05, 0.2], strict=True):
        assert torch.allclose(xa, A.fgsm(model, x, y, e).x_adv)
    assert outs[2][1].float().mean() >= outs[1][1].float().mean()


def test_fgsm_rejects_bad_eps(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="eps"):
        A.fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match="eps"):
        A.fgsm(model, x, y, float("nan"))
    with pytest.raises(TypeError, match="eps"):
        A.fgsm(model, x, y, "0.1")


# ---------------------------------------------------------------------------
# pgd
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["inf", float("inf"), "linf", "Linf", 2, "2", "l2", "L2", 2.0])
def test_pgd_accepts_norm_spellings(trained, norm):
    model, x, y = trained
    x_adv = A.pgd(model, x, y, 0.3, norm=norm, steps=2, seed=0, progress=False).x_adv
    is_inf = isinstance(norm, float) and math.isinf(norm) or str(norm).lower() in {"inf", "linf"}
    dist = linf(x_adv, x) if is_inf else l2(x_adv, x)
    assert float(dist.max()) <= 0.3 + 1e-6


@pytest.mark.parametrize("norm", [1, "l1", 3.0, None, True])
def test_pgd_rejects_unknown_norm(trained, norm):
    model, x, y = trained
    with pytest.raises(ValueError, match="norm"):
        A.pgd(model, x, y, 0.3, norm=norm)


def test_pgd_one_step_from_x_equals_fgsm(trained):
    model, x, y = trained
    x_pgd = A.pgd(model, x, y, 0.05, steps=1, step_size=0.05, random_start=False,
                  progress=False).x_adv
    assert torch.allclose(x_pgd, A.fgsm(model, x, y, 0.05).x_adv, atol=1e-7)


@pytest.mark.parametrize("norm,eps", [("inf", 0.5), (2, 4.0)])
def test_pgd_large_budget_fools_everything(trained, norm, eps):
    model, x, y = trained
    x_adv, ok, *_ = A.pgd(model, x, y, eps, norm=norm, steps=20, seed=0,
                      progress=False)
    assert bool(ok.all())
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) != y).all())


@pytest.mark.parametrize("norm,eps", [("inf", 0.5), (2, 4.0)])
def test_pgd_targeted_reaches_the_target(trained, norm, eps):
    model, x, y = trained
    target = (y + 3) % 10
    x_adv, ok, *_ = A.pgd(model, x, target, eps, norm=norm, steps=30, targeted=True, seed=0,
                          progress=False)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    assert bool((pred == target).all()) and bool(ok.all())


def test_pgd_increases_the_loss_and_beats_fgsm(trained):
    model, x, y = trained
    ce = nn.CrossEntropyLoss(reduction="none")
    with torch.no_grad():
        clean = ce(model(x), y)
        l_fgsm = ce(model(A.fgsm(model, x, y, 0.05).x_adv), y)
        l_pgd = ce(model(A.pgd(model, x, y, 0.05, steps=20, seed=0, progress=False).x_adv), y)
    assert bool((l_pgd >= clean).all())
    assert float(l_pgd.mean()) >= float(l_fgsm.mean())


def test_pgd_zero_budget_returns_x(trained):
    model, x, y = trained
    assert torch.equal(A.pgd(model, x, y, 0.0, steps=3, progress=False).x_adv, x)


def test_pgd_list_of_eps_matches_single_calls(trained):
    model, x, y = trained
    eps = [0.02, 0.1]
    outs = A.pgd(model, x, y, eps, steps=4, random_start=False, progress=False)
    assert isinstance(outs, list) and len(outs) == 2
    for (xa, ok, *_), e in zip(outs, eps, strict=True):
        single, ok1, *_ = A.pgd(model, x, y, e, steps=4, random_start=False, progress=False)
        assert torch.allclose(xa, single, atol=1e-6)
        assert torch.equal(ok, ok1)
        assert float(linf(xa, x).max()) <= e + 1e-6


def test_pgd_seed_is_reproducible_and_private(trained):
    model, x, y = trained
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = A.pgd(model, x, y, 0.1, steps=3, seed=7, progress=False).x_adv
    after = torch.rand(3)
    b = A.pgd(model, x, y, 0.1, steps=3, seed=7, progress=False).x_adv
    assert torch.equal(a, b)
    assert torch.equal(before, after)  # the global RNG was not consumed


def test_pgd_restarts_keep_the_best_per_sample(trained):
    model, x, y = trained
    ce = nn.CrossEntropyLoss(reduction="none")
    # small budget, so that not every sample is fooled
    single = [A.pgd(model, x, y, 0.03, steps=5, seed=s, progress=False).x_adv for s in range(3)]
    multi, ok, *_ = A.pgd(model, x, y, 0.03, steps=5, restarts=3, seed=0, progress=False)
    with torch.no_grad():
        losses = torch.stack([ce(model(s), y) for s in single])
        fooled_any = torch.stack([model(s).argmax(1) != y for s in single]).any(0)
        l_multi = ce(model(multi), y)
    assert float(linf(multi, x).max()) <= 0.03 + 1e-6
    # restarts never do worse on average than a single run, and the mask is consistent
    assert float(l_multi.mean()) >= float(losses[0].mean()) - 1e-6
    assert torch.equal(ok, model(multi).argmax(1) != y)
    assert ok.float().mean() >= (model(single[0]).argmax(1) != y).float().mean()
    assert fooled_any.shape == ok.shape


class CountingModel(nn.Module):
    """Wraps a model; counts the samples of every forward pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.inner(x)


@pytest.mark.parametrize("kwargs", [dict(norm="inf"), dict(norm=2), dict(norm="inf", restarts=3),
                                    dict(norm=2, targeted=True),
                                    dict(norm="inf", random_start=False)])
def test_pgd_early_stop_keeps_success_and_saves_work(trained, kwargs):
    model, x, y = trained
    yy = (y + 1) % 10 if kwargs.get("targeted") else y
    eps = [0.02, 0.05, 0.2] if kwargs["norm"] == "inf" else [0.3, 1.0, 3.0]
    full, early = CountingModel(model), CountingModel(model)
    ref = A.pgd(full, x, yy, eps, steps=10, seed=0, progress=False, **kwargs)
    out = A.pgd(early, x, yy, eps, steps=10, seed=0, progress=False, early_stop=True, **kwargs)
    for r, q, e in zip(ref, out, eps, strict=True):
        assert torch.equal(r.success, q.success)
        with torch.no_grad():
            pred = model(q.x_adv).argmax(1)
        assert torch.equal(q.success, (pred == yy) if kwargs.get("targeted") else (pred != yy))
        size = (linf(q.x_adv, x) if kwargs["norm"] == "inf"
                else (q.x_adv - x).flatten(1).norm(dim=1))
        assert float(size.max()) <= e + 1e-5
    if any(bool(r.success.any()) for r in ref):
        assert early.rows < full.rows   # broken samples were not attacked again


def test_pgd_early_stop_in_a_subspace_keeps_success(trained):
    model, x, y = trained
    gen = torch.Generator().manual_seed(0)
    U = torch.linalg.qr(torch.randn(x.shape[0], x[0].numel(), 6, generator=gen))[0]
    for complement in (False, True):
        ref = A.pgd(model, x, y, 0.3, steps=8, basis=U, complement=complement, seed=0,
                    progress=False)
        out = A.pgd(model, x, y, 0.3, steps=8, basis=U, complement=complement, seed=0,
                    progress=False, early_stop=True)
        assert torch.equal(ref.success, out.success)
        assert float(_outside(out.x_adv - x, U, complement).max()) < 1e-4


def test_pgd_rejects_bad_options(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="restarts"):
        A.pgd(model, x, y, 0.1, restarts=0)
    with pytest.raises(TypeError, match="steps"):
        A.pgd(model, x, y, 0.1, steps=2.5)
    with pytest.raises(ValueError, match="step_size"):
        A.pgd(model, x, y, 0.1, step_size=-1.0)
    with pytest.raises(ValueError, match="complement"):
        A.pgd(model, x, y, 0.1, complement=True)
    with pytest.raises(ValueError, match="basis"):
        A.pgd(model, x, y, 0.1, basis=torch.randn(x.shape[0], 64, 3))  # not orthonormal
    with pytest.raises(ValueError, match="basis"):
        A.pgd(model, x, y, 0.1, basis=random_basis(x.shape[0], 63, 3))


# ---------------------------------------------------------------------------
# pgd restricted to a subspace
# ---------------------------------------------------------------------------


def _outside(delta: torch.Tensor, U: torch.Tensor, complement: bool) -> torch.Tensor:
    flat = delta.flatten(1).double()
    Ud = U.double()
    inside = torch.einsum("ndk,nk->nd", Ud, torch.einsum("ndk,nd->nk", Ud, flat))
    return (inside if complement else flat - inside).norm(dim=1)


@pytest.mark.parametrize("complement", [False, True])
@pytest.mark.parametrize("norm,eps", [("inf", 0.1), (2, 0.8)])
@pytest.mark.parametrize("interior", [True, False])
def test_pgd_stays_in_the_subspace(trained, complement, norm, eps, interior):
    model, x, y = trained
    if interior:  # pixels away from 0 and 1: the box is inactive for small steps
        x = 0.2 + 0.6 * x
    U = random_basis(x.shape[0], x[0].numel(), 6, seed=1)
    x_adv, ok, *_ = A.pgd(model, x, y, eps, norm=norm, steps=10, basis=U,
                      complement=complement, seed=0, progress=False)
    delta = x_adv - x
    assert float(_outside(delta, U, complement).max()) <= 1e-5
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    dist = linf(x_adv, x) if norm == "inf" else l2(x_adv, x)
    assert float(dist.max()) <= eps + 1e-6
    ce = nn.CrossEntropyLoss(reduction="none")
    with torch.no_grad():
        gain = ce(model(x_adv), y) - ce(model(x), y)
    # the best iterate after a random start may, rarely, sit a bit below the clean loss
    assert float((gain >= -1e-6).float().mean()) >= 0.9
    if interior:
        # the attack really moves, and gains loss, inside the subspace
        assert float(l2(x_adv, x).min()) > 0
        assert float(gain.mean()) > 0


def test_pgd_subspace_with_active_box_moves_along_feasible_directions():
    """A 2-d subspace whose directions are zero on the pixels stuck at 0."""
    model, x, y = digits_model_and_data(16)
    n, d = x.shape[0], x[0].numel()
    zero = (x.flatten(1) == 0)
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(n, d, 2, generator=g) * (~zero).float()[:, :, None]
    U, _ = torch.linalg.qr(raw)
    x_adv = A.pgd(model, x, y, 1.0, norm=2, steps=10, basis=U, seed=0, progress=False).x_adv
    delta = x_adv - x
    assert float(_outside(delta, U, False).max()) <= 1e-5
    assert float(l2(x_adv, x).mean()) > 0.05
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


def test_pgd_full_subspace_matches_unrestricted(trained):
    model, x, y = trained
    x = 0.2 + 0.6 * x
    d = x[0].numel()
    U = torch.eye(d).expand(x.shape[0], d, d).contiguous()
    a = A.pgd(model, x, y, 0.05, norm=2, steps=5, random_start=False, basis=U,
              progress=False).x_adv
    b = A.pgd(model, x, y, 0.05, norm=2, steps=5, random_start=False, progress=False).x_adv
    assert torch.allclose(a, b, atol=1e-4)  # best-iterate ties may differ in rounding
