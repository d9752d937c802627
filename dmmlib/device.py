"""Devices and reproducibility.

A chapter
calls :func:`seed_everything` once and :func:`get_device` wherever it needs a
device, so the same code runs on a laptop CPU and on a Colab GPU unchanged.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "module_device"]


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device experiments should run on.

    Parameters
    ----------
    prefer:
        ``"cpu"`` or ``"cuda"`` to force a choice; ``None`` (default) reads the
        environment variable ``DMM_DEVICE`` and otherwise picks CUDA when it is
        available.

    Raises
    ------
    ValueError
        If the requested device name is unknown or CUDA is requested but absent.
    """
    if prefer is not None and not isinstance(prefer, str):
        raise TypeError(f"prefer: expected a device name (str), got {type(prefer).__name__}")
    name = prefer if prefer is not None else os.environ.get("DMM_DEVICE")
    if name is None or name == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in {"cpu", "cuda"} and not name.startswith("cuda:"):
        raise ValueError(f"device: unknown device {name!r}; use 'cpu' or 'cuda'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but CUDA is not available")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and return a generator.

    The returned :class:`torch.Generator` (seeded with ``seed``) is handy for
    data shuffling that must not depend on other random calls.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: must be non-negative, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU if it has none)."""
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")
