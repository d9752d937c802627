"""Transfer, gradient alignment and mislabelled-training helpers: dmmlib.experiments.transfer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmmlib.experiments import transfer


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (and the 2-core CI box is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _linear(d: int = 16, c: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, c))


def test_input_gradients_match_closed_forms() -> None:
    model = _linear()
    x = torch.rand(6, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    W = model[1].weight.detach()
    g = transfer.input_gradients(model, x, y)
    p = torch.softmax(model(x), 1).detach()
    expected = (p @ W - W[y]).reshape(x.shape)  # d CE / dx
    torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-6)
    gm = transfer.input_gradients(model, x, y, objective="margin")
    runner = model(x).detach().scatter(1, y[:, None], float("-inf")).argmax(1)
    torch.testing.assert_close(gm, (W[y] - W[runner]).reshape(x.shape))
    assert all(p_.grad is None for p_ in model.parameters())
    with pytest.raises(ValueError):
        transfer.input_gradients(model, x, y, objective="logit")


def test_cosines_and_alignment() -> None:
    a = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[2.0, 0.0, 0.0], [-1.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(
        transfer.cosine_similarity(a, b), torch.tensor([1.0, -1.0, 0.0])
    )
    U = torch.eye(3)[:, :1].expand(3, 3, 1).contiguous()  # span(e1) for every sample
    al = transfer.gradient_alignment(
        torch.tensor([[1.0, 1.0, 0.0]] * 3), torch.tensor([[1.0, -1.0, 0.0]] * 3), U
    )
    torch.testing.assert_close(al.full, torch.zeros(3))
    torch.testing.assert_close(al.on, torch.ones(3))
    torch.testing.assert_close(al.off, -torch.ones(3))
    assert math.isnan(float(transfer.gradient_alignment(a, b).on[0]))
    assert transfer.random_cosine_scale(784) == pytest.approx(1 / 28)


def test_noise_targets_and_error_rate() -> None:
    x = torch.full((50, 1, 4, 4), 0.5)
    norms = torch.linspace(0.1, 1.0, 50)
    noisy = transfer.equal_norm_noise(x, norms, seed=3, clip=False)
    torch.testing.assert_close((noisy - x).flatten(1).norm(dim=1), norms)
    assert float(transfer.equal_norm_noise(x, norms * 10).max()) <= 1.0
    y = torch.arange(50) % 10
    t = transfer.random_targets(y, 10, seed=1)
    assert bool((t != y).all()) and int(t.min()) >= 0 and int(t.max()) <= 9
    assert len(set(t.tolist())) > 5
    model = _linear()
    pred = model(x).argmax(1)
    assert transfer.error_rate(model, x, pred) == 0.0
    assert transfer.error_rate(model, x, (pred + 1) % 3) == 1.0


def test_targeted_examples_reach_their_targets() -> None:
    model = _linear(seed=2)
    x = 0.4 + 0.2 * torch.rand(30, 1, 4, 4)
    t = transfer.random_targets(model(x).argmax(1), 3, seed=0)
    x_adv, reached = transfer.targeted_examples(
        model, x, t, eps=5.0, steps=15, batch_size=10
    )
    assert (
        x_adv.shape == x.shape
        and float((x_adv - x).flatten(1).norm(dim=1).max()) <= 5.0 + 1e-4
    )
    assert float(reached.float().mean()) > 0.9
    assert bool((model(x_adv).argmax(1)[reached] == t[reached]).all())
