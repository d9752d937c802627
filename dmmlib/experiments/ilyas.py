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
"""

from __future__ import annotations

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
    output_size,
)

__all__ = ["target_labels", "MislabelledSet", "mislabelled_dataset"]


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
