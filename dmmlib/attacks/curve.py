"""Robust accuracy as a function of the budget, in one call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import _validate as V
from ..train import predict
from ._common import flat_norm, parse_eps, parse_norm, prepare
from .carlini_wagner import carlini_wagner_l2
from .deepfool import deepfool
from .fgsm import fgsm
from .minimal_l2 import minimal_l2
from .pgd import pgd

__all__ = ["robustness_curve"]

_BUDGETED: dict[str, Callable[..., Any]] = {"pgd": pgd, "fgsm": fgsm}
_MINIMAL: dict[str, Callable[..., Any]] = {
    "deepfool": deepfool,
    "minimal_l2": minimal_l2,
    "carlini_wagner_l2": carlini_wagner_l2,
}


def robustness_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_list: Sequence[float],
    *,
    attack: str | Callable[..., Any] = "pgd",
    batch_size: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Accuracy under attack for every budget in ``eps_list``, from one call.

    * Fixed-budget attacks (``"pgd"``, ``"fgsm"``, or a callable
      ``attack(model, x, y, eps_list, **kwargs)`` returning one
      :class:`~dmmlib.attacks.AttackResult` per budget) run every budget in
      one batched attack (PGD) or from one gradient (FGSM). PGD runs with
      ``early_stop=True`` unless told otherwise: only accuracy is returned,
      and it is the same with or without it.
    * Minimum-norm attacks (``"deepfool"``, ``"minimal_l2"``,
      ``"carlini_wagner_l2"``, all L2) run *once*: a sample counts as robust at
      ``eps`` when it is correctly classified and the smallest adversarial
      perturbation found is longer than ``eps``. (An upper bound on the true
      robust accuracy, like every attack-based number.)

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits for pixels in [0, 1].
    x : torch.Tensor
        Images (N, ...) of floats in [0, 1].
    y : torch.Tensor
        True labels (N,).
    eps_list : sequence of floats
        Budgets (non-negative), in the attack's norm (``norm=`` for PGD,
        L-infinity for FGSM, L2 for the minimum-norm attacks).
    attack : str or callable, default "pgd"
    batch_size : int, optional
        Attack the data in chunks of this many samples (default: all at once).
    **kwargs
        Passed on to the attack (e.g. ``norm=2, steps=20, seed=0``).

    Returns
    -------
    dict
        ``eps`` (list), ``accuracy`` (list: fraction correctly classified under
        attack), ``success_rate`` (list: 1 - accuracy), ``clean_accuracy``,
        ``attack`` (name) and, for minimum-norm attacks, ``distances`` (the
        per-sample L2 distances, ``inf`` where no adversarial was found; 0 for
        misclassified samples).

    Examples
    --------
    >>> curve = robustness_curve(model, x, y, [0, 0.05, 0.1], attack="pgd")  # doctest: +SKIP
    >>> curve["accuracy"]                                                    # doctest: +SKIP
    [0.97, 0.41, 0.02]
    """
    eps_values, _ = parse_eps(list(eps_list) if not isinstance(eps_list, torch.Tensor)
                              else eps_list, "eps_list")
    if batch_size is not None:
        V.check_int(batch_size, "batch_size", minimum=1)
    prepare(model, x, y)  # validates; the attacks move the data themselves
    n = x.shape[0]
    chunk = n if batch_size is None else batch_size
    if isinstance(attack, str):
        V.check_choice(attack, "attack", tuple([*_BUDGETED, *_MINIMAL]))
        name = attack
    elif callable(attack):
        name = getattr(attack, "__name__", "custom")
    else:
        raise TypeError(f"attack: expected a name or a callable, got {type(attack).__name__}")
    clean = predict(model, x) == y.to(x.device)
    clean_acc = float(clean.float().mean())

    if isinstance(attack, str) and attack in _MINIMAL:
        if "norm" in kwargs and parse_norm(kwargs.pop("norm")) != "2":
            raise ValueError(f"norm: {attack} is an L2 attack")
        fn = _MINIMAL[attack]
        dists = []
        for i in range(0, n, chunk):
            xb, yb = x[i:i + chunk], y[i:i + chunk]
            res = fn(model, xb, yb, **kwargs)
            d = flat_norm((res.x_adv - xb).double())
            dists.append(torch.where(res.success, d, torch.full_like(d, float("inf"))))
        dist = torch.cat(dists)
        dist = torch.where(clean, dist, torch.zeros_like(dist))
        acc = [float((clean & (dist > e)).double().mean()) for e in eps_values]
        return {"eps": eps_values, "accuracy": acc, "success_rate": [1 - a for a in acc],
                "clean_accuracy": clean_acc, "attack": name, "distances": dist.cpu()}

    fn = _BUDGETED[attack] if isinstance(attack, str) else attack
    if attack == "pgd":
        kwargs.setdefault("early_stop", True)  # the accuracy is the same, the attack faster
    correct = torch.zeros(len(eps_values), dtype=torch.float64)
    for i in range(0, n, chunk):
        xb, yb = x[i:i + chunk], y[i:i + chunk]
        results = fn(model, xb, yb, list(eps_values), **kwargs)
        if not isinstance(results, (list, tuple)) or len(results) != len(eps_values):
            raise ValueError("attack: expected one AttackResult per budget")
        for j, res in enumerate(results):
            x_adv = res[0]  # AttackResult.x_adv (or a custom attack's (x_adv, ...) tuple)
            correct[j] += float((predict(model, x_adv) == yb.to(x_adv.device)).sum())
    acc = (correct / n).tolist()
    return {"eps": eps_values, "accuracy": acc, "success_rate": [1 - a for a in acc],
            "clean_accuracy": clean_acc, "attack": name}
