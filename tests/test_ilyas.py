"""Mislabelled adversarial training sets (Ilyas et al. 2019)."""

from __future__ import annotations

import math

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


def test_teacher_error_set_keeps_exactly_the_teachers_mistakes_with_its_labels():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 5, generator=g)
    y = torch.randint(0, 3, (200,), generator=g)
    teacher = _Linear(5, 3)
    pred = teacher(x).argmax(1)
    s = ilyas.teacher_error_set(teacher, x, y, batch_size=7)
    wrong = pred != y
    assert 0 < int(wrong.sum()) < 200
    assert torch.equal(s.x, x[wrong])            # clean, unperturbed, in order
    assert torch.equal(s.y, pred[wrong])         # the teacher's labels
    assert torch.equal(s.true, y[wrong])
    assert not bool((s.y == s.true).any())       # every label is wrong
    assert bool(s.success.all()) and s.success.shape == (int(wrong.sum()),)


def test_teacher_error_set_is_empty_for_a_perfect_teacher_and_checks_inputs():
    teacher = _Linear(4, 2)
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(2))
    y = teacher(x).argmax(1)
    s = ilyas.teacher_error_set(teacher, x, y)
    assert s.x.shape == (0, 4) and s.y.numel() == 0
    with pytest.raises(ValueError):
        ilyas.teacher_error_set(teacher, x, y[:-1])
    with pytest.raises(ValueError):
        ilyas.teacher_error_set(teacher, x, torch.full_like(y, 5))


def test_tilted_linear_teacher_classifies_the_subspace_alike_at_every_tilt():
    n = 6
    u, v = torch.eye(n)[0], torch.eye(n)[3] + 0.5 * torch.eye(n)[0]  # v not yet orthogonal
    center = torch.eye(n)[1] * 2.0
    g = torch.Generator().manual_seed(0)
    pts = center + torch.randn(100, 2, generator=g) @ torch.eye(n)[:2]   # span(e0, e1) + center
    labels = (pts[:, 0] > 0).long()
    for tilt in (0.0, 0.7, 1.4):
        f = ilyas.tilted_linear_teacher(u, v, tilt, center=center)
        assert torch.equal(f(pts).argmax(1), labels)
        w = f.weight[1] - f.weight[0]
        assert torch.allclose(w.norm(), torch.tensor(1.0))
        # the fraction of the normal on the data subspace is cos(tilt)
        assert abs(float(w[:2].norm()) - math.cos(tilt)) < 1e-6
        assert abs(float(w[3]) - math.sin(tilt)) < 1e-6
    f = ilyas.tilted_linear_teacher(u, v, 1.4)
    assert not f.weight.requires_grad


def test_tilted_linear_teacher_rejects_bad_input():
    u, v = torch.eye(3)[0], torch.eye(3)[1]
    with pytest.raises(ValueError):
        ilyas.tilted_linear_teacher(u, 2 * u, 0.3)
    with pytest.raises(ValueError):
        ilyas.tilted_linear_teacher(u, v, 2.0)
    with pytest.raises(ValueError):
        ilyas.tilted_linear_teacher(torch.zeros(3), v, 0.3)
    with pytest.raises(ValueError):
        ilyas.tilted_linear_teacher(u, v, 0.3, center=torch.zeros(4))
