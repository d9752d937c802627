"""Linearity of a network along a direction: dmmlib.experiments.linearity."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmmlib import manifold
from dmmlib.experiments import linearity


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (and the 2-core CI box is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _TanhTwoClass(nn.Module):
    """Logits (0, c * tanh(w . x + b)): the margin of class 1 is c * tanh(w . x + b)."""

    def __init__(self, w: torch.Tensor, b: float, c: float = 1.0) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b, self.c = b, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.c * torch.tanh(x.flatten(1) @ self.w + self.b)
        return torch.stack([torch.zeros_like(a), a], 1)


def test_linear_network_is_exactly_linear() -> None:
    torch.manual_seed(0)

    model = nn.Linear(20, 2).double()
    x = torch.rand(8, 20, dtype=torch.float64)
    y = model(x).argmax(1)
    p = linearity.linearity_profile(model, x, y, s_max=2.0, n_points=41)
    torch.testing.assert_close(p.margin_ratio, (1 - p.s).expand_as(p.margin_ratio))
    torch.testing.assert_close(p.crossing, torch.ones(8, dtype=torch.float64))
    assert float(p.deviation.max()) < 1e-9


def test_tanh_crossing_matches_the_closed_form() -> None:
    w = torch.zeros(6, dtype=torch.float64)
    w[0] = 2.0
    model = _TanhTwoClass(w, b=-1.0).double()
    x = torch.full((3, 6), 0.5, dtype=torch.float64)
    x[:, 0] = torch.tensor([1.0, 0.9, 0.75], dtype=torch.float64)  # a = 2 x0 - 1 > 0
    y = torch.ones(3, dtype=torch.long)
    p = linearity.linearity_profile(model, x, y, s_max=3.0, n_points=3001)
    a = 2 * x[:, 0] - 1
    expected = a * (1 - torch.tanh(a) ** 2) / torch.tanh(a)  # actual / linear distance
    torch.testing.assert_close(p.crossing, expected, atol=2e-3, rtol=0)
    torch.testing.assert_close(
        p.linear_distance, torch.tanh(a) / ((1 - torch.tanh(a) ** 2) * 2.0)
    )


def test_subspace_direction_and_invalid_samples() -> None:
    torch.manual_seed(1)
    model = nn.Linear(12, 2).double()
    x = torch.rand(5, 12, dtype=torch.float64)
    y = model(x).argmax(1)
    y[0] = 1 - y[0]  # misclassified -> NaN
    U = manifold.random_orthonormal_basis(
        5, 12, 3, torch.Generator().manual_seed(0), dtype=torch.float64
    )
    for comp in (False, True):
        p = linearity.linearity_profile(model, x, y, basis=U, complement=comp)
        assert math.isnan(float(p.crossing[0]))
        torch.testing.assert_close(p.crossing[1:], torch.ones(4, dtype=torch.float64))
        w = (model.weight[1] - model.weight[0]).detach()
        Pw = torch.einsum("ndk,nk->nd", U, U.transpose(1, 2) @ w)
        part = (w - Pw) if comp else Pw
        m = linearity.margin_and_gradient(model, x, y)[0]
        torch.testing.assert_close(p.linear_distance[1:], (m / part.norm(dim=1))[1:])
    with pytest.raises(ValueError, match="complement"):
        linearity.linearity_profile(model, x, y, complement=True)
