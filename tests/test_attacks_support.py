"""Shared helpers for the tests/test_attacks*.py files (no tests here)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from dmmlib.data import digits
from dmmlib.models import MLP
from dmmlib.train import fit


@functools.lru_cache(maxsize=None)
def _trained_digits_mlp() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ds = digits()
    model = MLP(64, (64,), 10)
    fit(model, (ds.x[:1500], ds.y[:1500]), epochs=15, lr=3e-3, progress=False, seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, ds.x[1500:], ds.y[1500:]


def digits_model_and_data(n: int = 64) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small MLP trained on sklearn digits (cached per process) and n correctly
    classified held-out images (N, 1, 8, 8) in [0, 1]."""
    state, x, y = _trained_digits_mlp()
    model = MLP(64, (64,), 10)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    return model, x[ok][:n].clone(), y[ok][:n].clone()


class Affine(nn.Module):
    """f(x) = W x.flatten() + b: the minimal L2 adversarial perturbation is known."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.lin = nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            self.lin.weight.copy_(W)
            self.lin.bias.copy_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))


def affine_problem(n_classes: int, n: int = 16, d: int = 20, seed: int = 0,
                   dtype: torch.dtype = torch.float32
                   ) -> tuple[Affine, torch.Tensor, torch.Tensor, torch.Tensor]:
    """An affine classifier, points (N, d) whose nearest boundary point lies well
    inside [0, 1]^d, their labels and the exact minimal L2 distances.

    Binary problems use two classes (w_1 - w_0 is the only normal).
    """
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_classes, d, generator=g, dtype=torch.float64)
    # biases put the box centre near every boundary, so all classes occur
    b = -W @ torch.full((d,), 0.5, dtype=torch.float64) \
        + 0.1 * torch.randn(n_classes, generator=g, dtype=torch.float64)
    xs, ys, ds = [], [], []

    def nearest(x: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        z = W @ x + b
        yk = int(z.argmax())
        dw = W - W[yk]
        dist = (z[yk] - z) / dw.norm(dim=1).clamp_min(1e-12)
        dist[yk] = float("inf")
        return yk, dist, dw

    while len(xs) < n:
        x = 0.3 + 0.4 * torch.rand(d, generator=g, dtype=torch.float64)
        yk, dist, dw = nearest(x)
        j = int(dist.argmin())
        # slide x along the normal of its nearest boundary to a chosen distance
        unit = -dw[j] / dw[j].norm()  # points from the boundary towards class yk
        foot = x - dist[j] * unit
        target = 0.05 + 0.15 * float(torch.rand((), generator=g, dtype=torch.float64))
        x = foot + target * unit
        yk2, dist, dw = nearest(x)
        j2 = int(dist.argmin())
        if yk2 != yk or j2 != j or abs(float(dist[j]) - target) > 1e-9:
            continue
        # unique minimiser: the second-closest boundary is clearly further
        if n_classes > 2 and float(dist.sort().values[1]) < 1.5 * float(dist[j]):
            continue
        # the point and its closest boundary point stay inside the box, with margin
        if min(float(x.min()), float(foot.min())) < 0.05 or \
                max(float(x.max()), float(foot.max())) > 0.95:
            continue
        xs.append(x)
        ys.append(yk)
        ds.append(float(dist[j]))
    model = Affine(W.to(dtype), b.to(dtype)).to(dtype)
    return (model, torch.stack(xs).to(dtype), torch.tensor(ys),
            torch.tensor(ds, dtype=torch.float64))


def l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).double().norm(dim=1)


def linf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).double().abs().amax(1)


def random_basis(n: int, d: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, d, k, generator=g, dtype=torch.float64))
    return q.float()


@pytest.fixture(autouse=True)
def single_thread():
    """The attack tests use tiny models: one intra-op thread is faster, and far more
    robust when other processes load the machine. Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
