"""Training on mislabelled adversarial examples (Ilyas et al., 2019).

Ilyas, Santurkar, Tsipras, Engstrom, Tran & Madry (2019), "Adversarial
examples are not bugs, they are features" (NeurIPS), build a training set in
which every image is a *targeted* adversarial example of a trained model,
labelled with its target class only: to a human (and to the true labels) the
whole set is mislabelled. A fresh network trained on it still classifies the
clean test set far better than chance. :func:`target_labels` chooses the
targets (``"det"``: ``y + 1 mod C``, so every true class maps to one wrong
label; ``"rand"``: a uniformly random other class), and
:func:`mislabelled_dataset` runs the targeted attack in batches.

Two controls. :func:`teacher_error_set` is Wallace's (2019, Distill
discussion of Ilyas et al.): *clean* images labelled with a weak teacher's
wrong predictions, no perturbation at all, which still teach a student the
classes because the wrong labels carry the teacher's knowledge
(distillation). :func:`tilted_linear_teacher` is a two-class linear
classifier whose weight vector is tilted by a chosen angle out of a data
subspace, so that its targeted perturbations point mostly off the data.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .._validate import (
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_model,
    check_positive,
    check_tensor,
    output_size,
)

__all__ = ["target_labels", "MislabelledSet", "mislabelled_dataset", "teacher_error_set",
           "tilted_linear_teacher"]


def target_labels(y: torch.Tensor, n_classes: int, rule: str = "det", *,
                  seed: int = 0) -> torch.Tensor:
    """Target classes for a mislabelled set, never equal to the true class.

    Parameters
    ----------
    y: true labels (N,), integers in [0, n_classes).
    n_classes: number of classes (>= 2).
    rule: ``"det"``: ``(y + 1) mod n_classes`` (Ilyas et al.'s D_det: the true
        class is a deterministic function of the label, so a network that
        learned the clean-data features would predict the *wrong* label
        everywhere); ``"rand"``: a uniformly random class other than ``y``
        (D_rand: the label carries no clean-data information at all).
    seed: seeds ``"rand"`` (a private generator).
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y: expected a torch.Tensor of class indices, got {type(y).__name__}")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"y: expected integer class indices, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D tensor of labels, got shape {tuple(y.shape)}")
    check_int(n_classes, "n_classes", 2)
    check_choice(rule, "rule", ("det", "rand"))
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"y: labels must lie in [0, {n_classes})")
    if rule == "det":
        return (y + 1) % n_classes
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    shift = torch.randint(1, n_classes, (y.numel(),), generator=gen).to(y.device)
    return (y + shift) % n_classes


class MislabelledSet(NamedTuple):
    """Targeted adversarial examples labelled with their targets.

    ``x``: the adversarial inputs (like the clean ones); ``y``: the target
    labels (the only labels a network trained on the set sees);
    ``true``: the clean inputs' true labels; ``success``: whether the attack
    reached the target (the model classifies ``x`` as ``y``).
    """

    x: torch.Tensor
    y: torch.Tensor
    true: torch.Tensor
    success: torch.Tensor


def mislabelled_dataset(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int,
    rule: str = "det",
    eps: float = 1.0,
    norm: str | float = 2,
    steps: int = 20,
    batch_size: int = 1000,
    seed: int = 0,
    progress: bool | None = None,
) -> MislabelledSet:
    """Build a mislabelled training set from ``model``'s targeted adversarial examples.

    Every input is attacked towards its target class (:func:`target_labels`)
    with :func:`dmmlib.attacks.pgd` (``targeted=True``) inside an
    ``eps``-ball, in batches of ``batch_size``; the result keeps *every*
    example (successful or not) with its target label, as Ilyas et al. do;
    filter with ``success`` to keep only those that reached the target.

    Parameters
    ----------
    model: the classifier whose adversarial examples are used (eval mode is
        handled by the attack).
    x, y: clean inputs (N, ...) in [0, 1] and their true labels (N,).
    n_classes, rule, seed: see :func:`target_labels` (``seed`` also seeds the
        attack's random start).
    eps, norm, steps: the attack's budget, norm (``2`` or ``"inf"``) and
        iterations.
    batch_size: inputs per attack call.
    progress: passed to the attack.

    Returns
    -------
    MislabelledSet on ``x``'s device.
    """
    from ..attacks import pgd
    from ..ops import parse_norm

    model = check_model(model)
    xt = check_images(x, "x")
    check_int(n_classes, "n_classes", 2)
    outputs = output_size(model, xt)
    if n_classes > outputs:
        raise ValueError(f"n_classes: {n_classes} classes but the model has {outputs} outputs")
    check_labels(y, xt, "y", n_classes)
    eps = check_positive(eps, "eps")
    parse_norm(norm)
    check_int(steps, "steps", 1)
    check_int(batch_size, "batch_size", 1)
    check_int(seed, "seed", 0)
    targets = target_labels(y, n_classes, rule, seed=seed)
    xs, oks = [], []
    for start in range(0, xt.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        x_adv, ok, *_ = pgd(model, xt[sl], targets[sl], eps, norm=norm, steps=steps,
                            targeted=True, seed=seed + start, progress=progress)
        xs.append(x_adv.detach())
        oks.append(ok.detach())
    return MislabelledSet(torch.cat(xs), targets, y.clone(), torch.cat(oks).to(xt.device))


def teacher_error_set(teacher: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                      batch_size: int = 1000) -> MislabelledSet:
    """Clean inputs the teacher gets wrong, labelled with the teacher's (wrong) prediction.

    Wallace's control (2019, "Learning from incorrectly labeled data",
    Distill discussion of Ilyas et al.): relabel the training set with a
    briefly trained teacher's predictions and keep only the examples on which
    the prediction is wrong. Every label of the result is wrong and no input is
    perturbed, yet a student trained on it can beat chance on clean test data,
    since the teacher's mistakes are not random (distillation).

    Parameters
    ----------
    teacher: the classifier whose predictions become the labels.
    x, y: clean inputs (N, ...) and their true labels (N,).
    batch_size: inputs per forward pass (:func:`dmmlib.train.predict`).

    Returns
    -------
    MislabelledSet
        ``x``: the kept clean inputs (unchanged); ``y``: the teacher's
        predictions on them (never the true label); ``true``: their true
        labels; ``success``: all ``True`` (the teacher classifies ``x`` as
        ``y`` by construction). Empty tensors when the teacher makes no
        mistake.
    """
    from ..train import predict

    teacher = check_model(teacher)
    xt = check_tensor(x, "x", min_ndim=1)
    check_labels(y, xt, "y", output_size(teacher, xt))
    check_int(batch_size, "batch_size", 1)
    pred = predict(teacher, xt, batch_size=batch_size).to(y.device)
    wrong = pred != y
    keep = wrong.nonzero().flatten()
    return MislabelledSet(xt[keep.to(xt.device)].clone(), pred[keep].clone(), y[keep].clone(),
                          torch.ones(keep.numel(), dtype=torch.bool, device=xt.device))


def tilted_linear_teacher(w_on: torch.Tensor, w_off: torch.Tensor, tilt: float, *,
                          center: torch.Tensor | None = None) -> nn.Linear:
    """A two-class linear classifier whose normal is tilted by ``tilt`` out of the data.

    The normal is ``w = cos(tilt) u + sin(tilt) v`` with ``u = w_on / |w_on|``
    and ``v`` the unit part of ``w_off`` orthogonal to ``u``; class 1 where
    ``w . (x - center) > 0``, class 0 elsewhere (logits ``-s/2, s/2`` with
    ``s = w . (x - center)``). If the data lie in an affine subspace through
    ``center`` that contains ``w_on`` and is orthogonal to ``w_off``, every
    tilt below 90 degrees classifies the data alike (``s`` is
    ``cos(tilt) u . (x - center)`` there), but its gradient, and so every
    perturbation an attack finds, has only the fraction ``cos(tilt)`` of its
    length on the subspace.

    Parameters
    ----------
    w_on, w_off: (n,) directions in the data's subspace and out of it
        (``w_off`` need not be orthogonal to ``w_on``; it must not be parallel).
    tilt: angle in radians, in [0, pi/2].
    center: (n,) a point of the decision hyperplane; default the origin.

    Returns
    -------
    torch.nn.Linear
        ``n -> 2`` in eval mode, on ``w_on``'s device and dtype, no gradients.
    """
    u = check_tensor(w_on, "w_on", min_ndim=1)
    v = check_tensor(w_off, "w_off", min_ndim=1)
    if u.ndim != 1 or v.shape != u.shape:
        raise ValueError(f"w_on, w_off: expected two (n,) vectors, got {tuple(u.shape)} "
                         f"and {tuple(v.shape)}")
    tilt = float(tilt)
    if not 0.0 <= tilt <= math.pi / 2 + 1e-12:
        raise ValueError(f"tilt: expected an angle in [0, pi/2] radians, got {tilt}")
    nu = u.norm()
    if not torch.isfinite(nu) or float(nu) == 0.0:
        raise ValueError("w_on: must be a finite, nonzero vector")
    u = u / nu
    v = v.to(u) - (v.to(u) @ u) * u
    nv = v.norm()
    if float(nv) <= 1e-8 * float(w_off.norm().clamp_min(1e-30)) or float(nv) == 0.0:
        raise ValueError("w_off: must not be parallel to w_on")
    w = math.cos(tilt) * u + math.sin(tilt) * v / nv
    c = torch.zeros_like(u) if center is None else check_tensor(center, "center").to(u)
    if c.shape != u.shape:
        raise ValueError(f"center: expected shape {tuple(u.shape)}, got {tuple(c.shape)}")
    with torch.random.fork_rng(devices=[]):  # the default init draws from the global RNG
        lin = nn.Linear(u.numel(), 2).to(device=u.device, dtype=u.dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-w / 2, w / 2]))
        b = -(w @ c)
        lin.bias.copy_(torch.stack([-b / 2, b / 2]))
    lin.requires_grad_(False)
    return lin.eval()
