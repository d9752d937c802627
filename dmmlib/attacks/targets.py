"""Target classes for targeted attacks."""

from __future__ import annotations

import torch

from .. import _validate as V

__all__ = ["random_targets"]


def random_targets(y: torch.Tensor, n_classes: int, *,
                   seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Draw a uniformly random class different from ``y[i]`` for every sample.

    The targets of a targeted attack with random goals: pass them as ``y``
    with ``targeted=True`` (e.g. ``lbfgs(model, x, random_targets(y, 10),
    targeted=True)``).

    Parameters
    ----------
    y : torch.Tensor
        Integer labels (N,) in ``[0, n_classes)``.
    n_classes : int
        Number of classes (at least 2).
    seed : int, torch.Generator or None, default 0
        An int seeds a private CPU generator, a generator is drawn from,
        ``None`` uses the global RNG.

    Returns
    -------
    torch.Tensor
        (N,) int64 on the CPU, ``targets[i] != y[i]``.
    """
    yt = V.check_tensor(y, "y", floating=False)
    if yt.is_floating_point() or yt.dtype == torch.bool or yt.is_complex():
        raise TypeError(f"y: expected integer class indices, got dtype {yt.dtype}")
    V.check_int(n_classes, "n_classes", 2)
    gen = V.as_generator(seed, "cpu")
    if yt.numel() and (int(yt.min()) < 0 or int(yt.max()) >= n_classes):
        raise ValueError(f"y: labels must lie in [0, {n_classes})")
    shift = torch.randint(1, n_classes, yt.shape, generator=gen)
    return (yt.cpu().long() + shift) % n_classes
