"""Mislabelled adversarial training sets (Ilyas et al. 2019)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dmmlib.experiments import ilyas


class _Linear(nn.Module):
    def __init__(self, d: int, c: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = nn.Linear(d, c)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(c, d, generator=g))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))


def test_target_labels_never_equal_the_true_class():
    y = torch.arange(10).repeat(30)
    det = ilyas.target_labels(y, 10, "det")
    assert torch.equal(det, (y + 1) % 10)
    rand = ilyas.target_labels(y, 10, "rand", seed=3)
    assert not bool((rand == y).any())
    assert torch.equal(rand, ilyas.target_labels(y, 10, "rand", seed=3))
    assert len(set(rand[y == 0].tolist())) > 3  # spread over the other classes
    with pytest.raises(ValueError):
        ilyas.target_labels(torch.tensor([0, 10]), 10)
    with pytest.raises(ValueError):
        ilyas.target_labels(y, 10, "swap")
    with pytest.raises(TypeError):
        ilyas.target_labels(y.float(), 10)


def test_mislabelled_dataset_reaches_targets_inside_the_budget():
    torch.manual_seed(0)
    model = _Linear(20, 3)
    x = torch.rand(50, 20) * 0.5 + 0.25
    y = model(x).argmax(1)
    out = ilyas.mislabelled_dataset(model, x, y, n_classes=3, rule="det", eps=2.0, steps=30,
                                    batch_size=16, progress=False)
    assert out.x.shape == x.shape
    assert torch.equal(out.y, (y + 1) % 3) and torch.equal(out.true, y)
    norms = (out.x - x).flatten(1).norm(dim=1)
    assert float(norms.max()) <= 2.0 + 1e-4
    assert float(out.x.min()) >= 0.0 and float(out.x.max()) <= 1.0
    assert float(out.success.float().mean()) > 0.9
    pred = model(out.x).argmax(1)
    assert torch.equal(pred[out.success], out.y[out.success])
    with pytest.raises(ValueError):
        ilyas.mislabelled_dataset(model, x, y[:3], n_classes=3)
