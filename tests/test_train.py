import pytest
import torch

from dmmlib.data import digits
from dmmlib.models import MLP, SmallCNN, count_parameters
from dmmlib.train import accuracy, fit, predict, train_cached


def _mlp(seed=0):
    torch.manual_seed(seed)
    return MLP(64, hidden=(32,), n_classes=10, mean=0.3, std=0.4)


def test_fit_learns_digits_and_restores_mode():
    ds = digits()
    model = _mlp()
    model.eval()
    before = accuracy(model, ds)
    hist = fit(model, ds, epochs=3, batch_size=64, lr=3e-3, progress=False)
    assert not model.training  # the caller's mode is restored
    assert hist["loss"][-1] < hist["loss"][0]
    assert accuracy(model, ds) > max(0.9, before + 0.5)


def test_fit_is_reproducible():
    ds = digits(n=500)
    a, b = _mlp(), _mlp()
    fit(a, ds, epochs=2, seed=3, progress=False)
    fit(b, ds, epochs=2, seed=3, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_fit_validates_arguments():
    ds = digits(n=50)
    with pytest.raises(ValueError, match="optimizer"):
        fit(_mlp(), ds, optimizer="lion", progress=False)
    with pytest.raises(ValueError, match="lr"):
        fit(_mlp(), ds, lr=0.0, progress=False)
    with pytest.raises(TypeError, match="ImageDataset or a tuple"):
        fit(_mlp(), [1, 2, 3], progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="y has shape"):
        fit(_mlp(), (ds.x, ds.y[:10]), progress=False)
    with pytest.raises(TypeError, match="floating"):
        fit(_mlp(), (ds.x.long(), ds.y), progress=False)


def test_perturb_hook_sees_eval_mode():
    ds = digits(n=64)
    seen = []

    def perturb(model, xb, yb):
        seen.append(model.training)
        return xb.clamp(0, 1)

    fit(_mlp(), ds, epochs=1, batch_size=32, perturb=perturb, progress=False)
    assert seen == [False, False]


def test_predict_and_models_shapes():
    x = torch.rand(5, 1, 28, 28)
    cnn = SmallCNN()
    assert cnn(x).shape == (5, 10)
    assert predict(cnn, x).shape == (5,)
    assert 50_000 < count_parameters(cnn) < 500_000
    with pytest.raises(ValueError, match="expected 64 features"):
        _mlp()(x)


def test_train_cached_trains_once_then_loads():
    ds = digits(n=300)
    first = _mlp()
    r1 = train_cached(first, ds, name="digits-mlp", epochs=2, progress=False)
    assert not r1["cached"] and r1["path"].is_file()
    second = _mlp()  # same architecture and initial weights
    r2 = train_cached(second, ds, name="digits-mlp", epochs=2, progress=False)
    assert r2["cached"] and r2["history"] == r1["history"]
    for pa, pb in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(pa, pb)
    # a different setting is a different entry
    r3 = train_cached(_mlp(), ds, name="digits-mlp", epochs=1, progress=False)
    assert not r3["cached"] and r3["path"] != r1["path"]
    # different initial weights: a different entry too
    r4 = train_cached(_mlp(seed=1), ds, name="digits-mlp", epochs=2, progress=False)
    assert not r4["cached"]


def test_train_cached_requires_a_description_of_perturb():
    with pytest.raises(ValueError, match="extra_key"):
        train_cached(_mlp(), digits(n=20), perturb=lambda m, x, y: x, progress=False)


def test_progress_bars_follow_the_setting_then_the_terminal(monkeypatch):
    import io
    import sys

    from dmmlib.train import progress_enabled

    assert progress_enabled(True) and not progress_enabled(False)
    monkeypatch.setenv("DMM_PROGRESS", "off")
    assert not progress_enabled(None)
    monkeypatch.setenv("DMM_PROGRESS", "1")
    assert progress_enabled(None)
    monkeypatch.delenv("DMM_PROGRESS")
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())     # a log file or a CI job
    assert not progress_enabled(None)
    monkeypatch.setattr(sys, "stderr", Tty())            # a terminal
    assert progress_enabled(None)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", object())  # a notebook
    assert progress_enabled(None)
