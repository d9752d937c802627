"""vmap'ed ensemble training equals a Python loop over the same models."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from dmmlib.ensemble import Ensemble, train_ensemble
from dmmlib.models import MLP
from dmmlib.synthetic import checkerboard_plane


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _models(m: int, dtype: torch.dtype = torch.float32) -> list[MLP]:
    out = []
    for s in range(m):
        torch.manual_seed(s)
        out.append(MLP(3, (16, 16), 2, mean=0.5, std=0.25).to(dtype))
    return out


def _loop(models: list[MLP], x: torch.Tensor, y: torch.Tensor, *, epochs: int,
          batch_size: int | None, lrs: list[float], wds: list[float], optimizer: str,
          momentum: float = 0.0, seed: int = 0) -> list[MLP]:
    """The reference: each model trained alone with torch.optim, same batches."""
    trained = []
    n = x.shape[0]
    bs = n if batch_size is None else batch_size
    for model, lr, wd in zip(models, lrs, wds, strict=True):
        m = copy.deepcopy(model).train()
        if optimizer == "sgd":
            opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
        else:
            opt = torch.optim.Adam(m.parameters(), lr=lr, weight_decay=wd)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen) if bs < n else torch.arange(n)
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                loss = F.cross_entropy(m(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        trained.append(m)
    return trained


def _max_diff(ens: Ensemble, loop: list[MLP]) -> float:
    worst = 0.0
    for i, ref in enumerate(loop):
        got = ens.model(i)
        for a, b in zip(got.parameters(), ref.parameters(), strict=True):
            worst = max(worst, float((a - b).abs().max()))
    return worst


@pytest.mark.parametrize("optimizer, momentum, batch_size, wd", [
    ("sgd", 0.0, None, 0.0),
    ("sgd", 0.9, 25, 1e-3),
    ("adam", 0.0, 40, 1e-4),
    ("adam", 0.0, None, 0.0),
])
def test_ensemble_equals_loop(optimizer: str, momentum: float, batch_size: int | None,
                              wd: float) -> None:
    ds = checkerboard_plane(4, 9, dtype=torch.float64)
    models = _models(4, torch.float64)
    before = [copy.deepcopy(m.state_dict()) for m in models]
    lrs = [0.05, 0.1, 0.02, 0.05] if optimizer == "sgd" else [1e-2, 5e-3, 1e-2, 2e-2]
    ens = train_ensemble(models, (ds.x, ds.y), epochs=15, batch_size=batch_size, lr=lrs,
                         weight_decay=wd, optimizer=optimizer, momentum=momentum,
                         progress=False)
    for m, b in zip(models, before, strict=True):                       # inputs untouched
        for k, v in m.state_dict().items():
            assert torch.equal(v, b[k])
    loop = _loop(models, ds.x, ds.y, epochs=15, batch_size=batch_size, lrs=lrs,
                 wds=[wd] * 4, optimizer=optimizer, momentum=momentum)
    assert _max_diff(ens, loop) < 1e-10
    assert len(ens.history["loss"]) == 15 and len(ens.history["loss"][0]) == 4


def test_ensemble_equals_loop_float32() -> None:
    ds = checkerboard_plane(4, 4)
    models = _models(3)
    ens = train_ensemble(models, (ds.x, ds.y), epochs=20, batch_size=16, lr=1e-2,
                         optimizer="adam", weight_decay=1e-3, progress=False)
    loop = _loop(models, ds.x, ds.y, epochs=20, batch_size=16, lrs=[1e-2] * 3,
                 wds=[1e-3] * 3, optimizer="adam")
    assert _max_diff(ens, loop) < 1e-5


def test_evaluation_extraction_and_callback() -> None:
    ds = checkerboard_plane(3, 4)
    models = _models(3)
    steps: list[int] = []
    snapshots: list[float] = []

    def cb(step: int, ens: Ensemble) -> None:
        steps.append(step)
        snapshots.append(float(ens.params["net.0.weight"][0].sum()))

    ens = train_ensemble(models, (ds.x, ds.y), epochs=3, batch_size=12, lr=0.1,
                         callback=cb, progress=False)
    assert steps == list(range(9))
    assert len(set(snapshots)) > 1                          # callback sees current params
    logits = ens(ds.x)
    assert logits.shape == (3, 36, 2)
    for i in range(3):
        m = ens.model(i)
        assert not m.training
        with torch.no_grad():
            assert torch.allclose(m(ds.x), logits[i], atol=1e-6)
    assert torch.equal(ens.predict(ds.x), logits.argmax(-1))
    acc = ens.accuracy(ds.x, ds.y)
    assert acc.shape == (3,)
    assert float(acc[0]) == pytest.approx(ens.history["train_acc"][-1][0], abs=0.5)
    # continue training from an Ensemble
    more = train_ensemble(ens, (ds.x, ds.y), epochs=1, lr=0.1, progress=False)
    assert more is ens and len(ens.history["loss"]) == 4
    assert len(Ensemble.from_models(models).models()) == 3


@pytest.mark.parametrize("call, err, word", [
    (lambda m, d: train_ensemble(m[0], d), TypeError, "models"),
    (lambda m, d: train_ensemble([m[0], MLP(3, (8,), 2)], d), ValueError, "architecture"),
    (lambda m, d: train_ensemble(m, d, lr=[0.1]), ValueError, "lr"),
    (lambda m, d: train_ensemble(m, d, lr=-1.0), ValueError, "lr"),
    (lambda m, d: train_ensemble(m, d, optimizer="rmsprop"), ValueError, "optimizer"),
    (lambda m, d: train_ensemble(m, d, batch_size=0), ValueError, "batch_size"),
    (lambda m, d: train_ensemble(m, (d[0], d[1].float())), TypeError, "y"),
    (lambda m, d: train_ensemble(m, d[0]), TypeError, "data"),
    (lambda m, d: Ensemble.from_models(m).model(5), ValueError, "i"),
])
def test_validation(call, err, word) -> None:
    ds = checkerboard_plane(2)
    with pytest.raises(err, match=word):
        call(_models(2), (ds.x, ds.y))
