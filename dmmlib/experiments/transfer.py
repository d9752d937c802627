"""Whether adversarial directions belong to the data or to one network.

If adversarial directions are *features* of the data (the critics' "stretchy
feature" picture, and {Ilyas et al. 2019}), two networks trained
independently on the same data should share them: their input gradients
point the same way, adversarial examples made for one fool the other, and
a network trained only on adversarially perturbed, relabelled images learns
something that holds on clean images. If they are *arbitrary* normals of one
network's boundary, none of that should happen. This module measures all
three:

* :func:`input_gradients` and :func:`cosine_similarity` (optionally split
  on/off a subspace with :func:`gradient_alignment`);
* :func:`error_rate` of a model on given images and :func:`equal_norm_noise`,
  the control for transfer;
* :func:`random_targets` and :func:`targeted_examples` for the
  mislabelled-training experiment.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from .._validate import (
    check_basis,
    check_images,
    check_int,
    check_labels,
    check_model,
    check_nonnegative,
    check_tensor,
    output_size,
)
from ..attacks.targets import random_targets  # lives in dmmlib.attacks; re-exported here
from ..device import module_device
from ..ops import eval_mode, margin
from .intriguing import error_rate  # the same measure, re-exported for this chapter

__all__ = [
    "input_gradients",
    "cosine_similarity",
    "Alignment",
    "gradient_alignment",
    "random_cosine_scale",
    "error_rate",
    "equal_norm_noise",
    "random_targets",
    "targeted_examples",
    "mislabelled_sets",
    "train_on_relabelled",
]


def input_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    objective: str = "loss",
    batch_size: int = 1024,
) -> torch.Tensor:
    """Gradient of the per-sample cross-entropy (or logit margin) with respect to the input.

    ``objective="loss"``: ``d CE(f(x), y) / dx`` (the direction an untargeted
    attack climbs); ``"margin"``: ``d (z_y - max_{j != y} z_j) / dx``. Eval
    mode (every submodule's mode restored), parameters' ``.grad`` untouched;
    the result is like ``x``.
    """
    model = check_model(model)
    xt = check_tensor(x, "x", min_ndim=2)
    if xt.shape[0] == 0:
        raise ValueError(f"x: empty batch (shape {tuple(xt.shape)})")
    yt = check_labels(y, xt, "y", output_size(model, xt))
    if objective not in ("loss", "margin"):
        raise ValueError(f"objective: expected 'loss' or 'margin', got {objective!r}")
    check_int(batch_size, "batch_size", 1)
    dev = module_device(model)
    out = []
    with eval_mode(model), torch.enable_grad():
        for xb, yb in zip(xt.split(batch_size), yt.split(batch_size), strict=True):
            xg = xb.detach().to(dev).requires_grad_(True)
            yb = yb.to(dev)
            z = model(xg)
            if objective == "loss":
                value = torch.nn.functional.cross_entropy(z, yb, reduction="sum")
            else:
                value = margin(z, yb).sum()
            (g,) = torch.autograd.grad(value, xg)
            out.append(g.detach().to(xt.device))
    return torch.cat(out)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine of the angle between flattened ``a`` and ``b`` (N,); 0 where one is 0."""
    at = check_tensor(a, "a", min_ndim=2).flatten(1)
    bt = check_tensor(b, "b", min_ndim=2).flatten(1)
    if at.shape != bt.shape:
        raise ValueError(f"a, b: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    bt = bt.to(at.device, at.dtype)
    denom = at.norm(dim=1) * bt.norm(dim=1)
    dots = (at * bt).sum(1)
    return torch.where(
        denom > 0,
        dots / torch.where(denom > 0, denom, torch.ones_like(denom)),
        torch.zeros_like(denom),
    )


class Alignment(NamedTuple):
    """Cosines (N,) between two vector fields: whole, on-subspace parts, off-subspace parts."""

    full: torch.Tensor
    on: torch.Tensor
    off: torch.Tensor


def gradient_alignment(
    a: torch.Tensor, b: torch.Tensor, basis: torch.Tensor | None = None
) -> Alignment:
    """Cosines between ``a`` and ``b``, and between their parts in and off ``span(basis)``.

    ``basis`` (N, D, k) holds orthonormal bases (tangent spaces); without it the
    ``on``/``off`` fields are NaN.
    """
    at = check_tensor(a, "a", min_ndim=2)
    bt = check_tensor(b, "b", min_ndim=2)
    if at.shape != bt.shape:
        raise ValueError(f"b: shape {tuple(bt.shape)} differs from a's {tuple(at.shape)}")
    if basis is not None:
        Ut = check_basis(basis, at, "basis")
    full = cosine_similarity(at, bt)
    if basis is None:
        nan = torch.full_like(full, float("nan"))
        return Alignment(full, nan, nan)
    at = at.flatten(1)
    bt = bt.flatten(1).to(at.device, at.dtype)
    Ut = Ut.to(at.device, at.dtype)

    def on(v: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ndk,nk->nd", Ut, torch.einsum("ndk,nd->nk", Ut, v))

    a_on, b_on = on(at), on(bt)
    return Alignment(
        full, cosine_similarity(a_on, b_on), cosine_similarity(at - a_on, bt - b_on)
    )


def random_cosine_scale(n: int) -> float:
    """Standard deviation ``1/sqrt(n)`` of the cosine between two random directions of R^n."""
    check_int(n, "n", 1)
    return 1.0 / math.sqrt(n)


@torch.no_grad()
def equal_norm_noise(
    x: torch.Tensor, norms: torch.Tensor, *, seed: int = 0, clip: bool = True
) -> torch.Tensor:
    """``x`` plus a uniformly random direction per sample, of L2 length ``norms`` (N,).

    The control for a perturbation of the same size that carries no
    information. With ``clip`` the result is clipped to [0, 1] (which can
    only shorten the perturbation).
    """
    xt = check_images(x, "x", box=clip)
    nt = check_tensor(norms, "norms").flatten()
    if nt.shape[0] != xt.shape[0]:
        raise ValueError(f"norms: expected {xt.shape[0]} values, got {nt.shape[0]}")
    if nt.numel() and float(nt.min()) < 0:
        raise ValueError(f"norms: must be non-negative, found {float(nt.min()):.4g}")
    check_int(seed, "seed", 0)
    g = torch.randn(
        xt.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    ).to(device=xt.device)
    g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(
        -1, *([1] * (xt.ndim - 1))
    )
    out = xt + (g * nt.to(g).reshape(-1, *([1] * (xt.ndim - 1)))).to(xt.dtype)
    return out.clamp(0, 1) if clip else out


def targeted_examples(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: float,
    steps: int,
    batch_size: int = 2000,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted L2 PGD towards ``targets`` in chunks: ``(x_adv, reached)``.

    The images of the mislabelled-training experiment of Ilyas et al. (2019):
    each image is pushed (budget ``eps``, pixels kept in [0, 1]) until
    ``model`` calls it ``targets[i]``; ``reached`` (N,) says where it does.
    Results are on ``x``'s device.
    """
    from ..attacks import pgd

    model = check_model(model)
    xt = check_images(x, "x")
    tt = check_labels(targets, xt, "targets", output_size(model, xt))
    check_nonnegative(eps, "eps")
    check_int(steps, "steps", 1)
    check_int(batch_size, "batch_size", 1)
    check_int(seed, "seed", 0)
    dev = module_device(model)
    advs, oks = [], []
    for i, (xb, tb) in enumerate(zip(xt.split(batch_size), tt.split(batch_size), strict=True)):
        xa, ok, *_ = pgd(
            model,
            xb.to(dev),
            tb.to(dev),
            eps,
            norm=2,
            steps=steps,
            targeted=True,
            seed=seed + i,
            progress=False,
        )
        advs.append(xa.to(xt.device))
        oks.append(ok.to(xt.device))
    return torch.cat(advs), torch.cat(oks)


# ------------------------------------------------------------------ "Critics": Ilyas et al.
def mislabelled_sets(model: nn.Module, untrained: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     n_classes: int, *, eps: float, steps: int) -> dict[str, torch.Tensor]:
    """The three relabelled training sets of the Ilyas et al. experiment, as in "Critics".

    Every image gets a random target class (seed 0, never its own); (a) is
    ``model``'s targeted L2 perturbation towards it, (b) a random
    perturbation of the same length, (c) the untrained network's targeted
    perturbation.

    Returns
    -------
    dict
        ``targets``, ``x_a``, ``x_b``, ``x_c`` and ``reached_a``/``reached_c``
        (whether the targeted attacks reached their target).
    """
    targets = random_targets(y, n_classes, seed=0)
    x_a, reached_a = targeted_examples(model, x, targets, eps=eps, steps=steps)
    norms = (x_a - x).flatten(1).norm(dim=1)
    x_b = equal_norm_noise(x, norms, seed=0)
    x_c, reached_c = targeted_examples(untrained, x, targets, eps=eps, steps=steps)
    return {"targets": targets, "x_a": x_a, "x_b": x_b, "x_c": x_c,
            "reached_a": reached_a, "reached_c": reached_c}


def train_on_relabelled(variants: dict[str, torch.Tensor], targets: torch.Tensor,
                        train_set: Any, test_set: Any, *, epochs: int, seed: int = 3,
                        name: str = "critics-mislabelled",
                        device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """Train a fresh MLP on each relabelled set and test it on clean images with true labels.

    Parameters
    ----------
    variants: label -> images (like ``train_set.x``), all labelled ``targets``.
    train_set: the original training set (its classes name the new labels).
    test_set: clean test images with their true labels.
    epochs, seed: of :func:`dmmlib.experiments.natural.train_classifier_cached`.
    name: cache name prefix; the i-th variant is cached as ``name-abc...[i]``.
    device: where to train.

    Returns
    -------
    list of dict
        One row per variant: ``training set``, ``fits its own labels``,
        ``clean test accuracy (true labels)``.
    """
    from ..data import ImageDataset
    from ..train import accuracy
    from .natural import train_classifier_cached

    rows = []
    for i, (label, xs) in enumerate(variants.items()):
        relabelled = ImageDataset(xs, targets, train_set.classes, "relabelled", label)
        net, _ = train_classifier_cached(relabelled, kind="mlp", seed=seed, epochs=epochs,
                                         device=device, name=f"{name}-{'abcdefgh'[i]}")
        rows.append({"training set": label,
                     "fits its own labels": accuracy(net, relabelled),
                     "clean test accuracy (true labels)": accuracy(net, test_set)})
    return rows
