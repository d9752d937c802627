"""Classifiers whose inputs are pixels in [0, 1].

Normalisation lives *inside* the model (:class:`Normalize`), so attacks work
in pixel space, where the box [0, 1] and epsilon budgets mean what they say.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Normalize", "MLP", "SmallCNN", "count_parameters"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; constants are buffers (they move with ``.to``)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float) -> None:
        super().__init__()
        try:
            mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
            std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"mean, std: expected numbers or sequences of numbers, got "
                            f"{mean!r}, {std!r}") from err
        if not bool(torch.isfinite(mean_t).all()):
            raise ValueError(f"mean: must be finite, got {mean}")
        if not bool(torch.isfinite(std_t).all()) or torch.any(std_t <= 0):
            raise ValueError(f"std: must be positive and finite, got {std}")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel (one channel for flat inputs)."""
        # the division in place on the fresh difference: one large temporary, not two
        # (autograd allows it: the subtraction's backward does not read its output)
        if x.ndim == 2:  # flat inputs: a single channel
            return (x - self.mean.flatten()[0]).div_(self.std.flatten()[0])
        return (x - self.mean).div_(self.std)


class MLP(nn.Module):
    """Fully connected ReLU network: ``input -> hidden layers -> n_classes``.

    Parameters
    ----------
    in_features: the input size (images are flattened).
    hidden: widths of the hidden layers; ``()`` gives a linear (softmax) model.
    n_classes: number of outputs.
    mean, std: normalisation applied to pixels before the first layer.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100),
        n_classes: int = 10,
        mean: float = 0.0,
        std: float = 1.0,
    ) -> None:
        super().__init__()
        for value, label in ((in_features, "in_features"), (n_classes, "n_classes"),
                             *((h, "hidden") for h in hidden)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label}: expected an int, got {value!r}")
        if in_features <= 0 or n_classes <= 0 or any(h <= 0 for h in hidden):
            raise ValueError(
                f"MLP: sizes must be positive (in_features={in_features}, "
                f"hidden={tuple(hidden)}, n_classes={n_classes})"
            )
        self.in_features = in_features
        self.normalize = Normalize(mean, std)
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of inputs (N, ...) in [0, 1]."""
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"x: expected {self.in_features} features per sample, got {x.shape[1]}"
            )
        return self.net(self.normalize(x))


class SmallCNN(nn.Module):
    """Two conv blocks and a small classifier head: 421,642 parameters at 28x28, width 32.

    At width 8 it has 103,018.

    Parameters
    ----------
    in_channels: 1 for grey images, 3 for colour.
    n_classes: number of outputs.
    image_size: side of the (square) input image.
    mean, std: per-channel normalisation applied inside the model.
    width: channels of the first conv block (the second has twice as many).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        image_size: int = 28,
        mean: Sequence[float] | float = 0.5,
        std: Sequence[float] | float = 0.5,
        width: int = 32,
    ) -> None:
        super().__init__()
        for value, label in ((in_channels, "in_channels"), (n_classes, "n_classes"),
                             (image_size, "image_size"), (width, "width")):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label}: expected an int, got {value!r}")
            if value <= 0:
                raise ValueError(f"{label}: must be positive, got {value}")
        if image_size % 4:
            raise ValueError(f"image_size: must be divisible by 4, got {image_size}")
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * side * side, 128), nn.ReLU(),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of images (N, C, H, W) in [0, 1]."""
        if x.ndim != 4:
            raise ValueError(f"x: expected shape (N, C, H, W), got {tuple(x.shape)}")
        return self.head(self.features(self.normalize(x)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
