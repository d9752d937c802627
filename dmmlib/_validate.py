"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right
kind, wrong value) with a message that names the argument and the problem,
before any work is done.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from .device import module_device
from .ops import preserved_modes

__all__ = [
    "check_tensor",
    "check_images",
    "check_labels",
    "check_finite",
    "check_positive",
    "check_nonnegative",
    "check_int",
    "check_same_device",
    "check_basis",
    "check_orthonormal",
    "check_choice",
    "check_model",
    "check_callable",
    "output_size",
    "as_generator",
]


def _all_finite(x: torch.Tensor) -> bool:
    """Whether every element is finite, without a mask the size of ``x`` when it is.

    A NaN or an infinity makes the sum non-finite, so a finite sum proves every
    element finite in one reduction; only a non-finite sum (a bad element, or an
    overflow of large finite ones) needs the elementwise check.
    """
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def check_tensor(x: object, name: str, *, floating: bool = True, min_ndim: int = 1,
                 finite: bool = True) -> torch.Tensor:
    """``x`` is a tensor (floating if asked) of rank >= ``min_ndim``, finite if asked."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape "
                         f"{tuple(x.shape)}")
    if finite and floating and x.numel() and not _all_finite(x):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def check_images(x: object, name: str = "x", *, box: bool = True) -> torch.Tensor:
    """A batch (N, ...) of finite floats, inside [0, 1] when ``box``."""
    t = check_tensor(x, name, min_ndim=2)
    if t.shape[0] == 0:
        raise ValueError(f"{name}: empty batch (shape {tuple(t.shape)})")
    if box and t.numel():
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: pixels must lie in [0, 1], found range "
                             f"[{lo:.4g}, {hi:.4g}]; divide by 255 or undo normalisation "
                             "(dmmlib models normalise inside)")
    return t


def check_labels(y: object, x: torch.Tensor, name: str = "y",
                 n_classes: int | None = None) -> torch.Tensor:
    """Integer labels of shape (N,) matching ``x``'s batch, in [0, n_classes)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of class indices, got "
                        f"{type(y).__name__}")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name}: expected integer class indices, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: expected shape ({x.shape[0]},) to match x, got "
                         f"{tuple(y.shape)}")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or (n_classes is not None and hi >= n_classes):
            bound = f"[0, {n_classes})" if n_classes is not None else ">= 0"
            raise ValueError(f"{name}: labels must lie in {bound}, found range [{lo}, {hi}]")
    return y


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, torch.Tensor)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    return v


def check_finite(value: object, name: str) -> float:
    """A finite real number (of any sign)."""
    return _real(value, name)


def check_positive(value: object, name: str) -> float:
    v = _real(value, name)
    if v <= 0:
        raise ValueError(f"{name}: must be positive, got {v}")
    return v


def check_nonnegative(value: object, name: str) -> float:
    v = _real(value, name)
    if v < 0:
        raise ValueError(f"{name}: must be non-negative, got {v}")
    return v


def check_int(value: object, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def as_generator(seed: object, device: torch.device | str | None = None,
                 name: str = "seed") -> torch.Generator | None:
    """The book's one way to take randomness, as a generator (or ``None``).

    ``seed`` is an int, a :class:`torch.Generator` or ``None`` (the global RNG).

    An int gives a fresh generator on ``device`` seeded with it; a generator
    on ``device`` (or with ``device=None``) is returned as is, so the caller's
    stream advances; a generator on another device seeds a new one on
    ``device`` from one draw of it (deterministic, and it advances too).
    """
    dev = torch.device(device) if device is not None else None
    if seed is None:
        return None
    if isinstance(seed, torch.Generator):
        if dev is None or seed.device.type == dev.type:
            return seed
        child = int(torch.randint(0, 2**62, (1,), generator=seed, device=seed.device))
        return torch.Generator(device=dev).manual_seed(child)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{name}: expected an int, a torch.Generator or None, "
                        f"got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name}: must be >= 0, got {seed}")
    return torch.Generator(device=dev if dev is not None else "cpu").manual_seed(seed)


def check_same_device(model: nn.Module, x: torch.Tensor, name: str = "x") -> None:
    dev = module_device(model)
    if dev.type != x.device.type or (dev.index is not None and x.device.index is not None
                                     and dev.index != x.device.index):
        raise ValueError(f"{name}: is on {x.device} but the model is on {dev}; move one "
                         f"of them (e.g. {name}.to({str(dev)!r}))")


def check_basis(U: object, x: torch.Tensor, name: str = "U", *, atol: float = 1e-4) -> torch.Tensor:
    """An orthonormal basis per sample, shape (N, D, k) with D = x[0].numel() and k <= D."""
    t = check_tensor(U, name, min_ndim=3)
    n, d = x.shape[0], x[0].numel()
    if t.ndim != 3 or t.shape[0] != n or t.shape[1] != d:
        raise ValueError(f"{name}: expected shape ({n}, {d}, k) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(t.shape)}")
    k = t.shape[2]
    if k < 1 or k > d:
        raise ValueError(f"{name}: subspace dimension k={k} must lie in [1, {d}]")
    return check_orthonormal(t, name, atol=atol)


def check_orthonormal(U: torch.Tensor, name: str = "U", *, atol: float = 1e-4) -> torch.Tensor:
    """The last two dimensions (..., D, k) of a finite float tensor hold orthonormal columns."""
    t = check_tensor(U, name, min_ndim=2)
    k = t.shape[-1]
    if k > t.shape[-2]:
        raise ValueError(f"{name}: {k} columns cannot be orthonormal in dimension "
                         f"{t.shape[-2]} (shape {tuple(t.shape)})")
    if t.numel() == 0:
        return t
    gram = t.transpose(-1, -2) @ t
    eye = torch.eye(k, dtype=t.dtype, device=t.device)
    err = float((gram - eye).abs().max())
    if err > atol:
        raise ValueError(f"{name}: columns are not orthonormal (max |U^T U - I| = {err:.3g}); "
                         "orthonormalise with torch.linalg.qr")
    return t


def check_choice(value: object, name: str, choices: tuple[object, ...]) -> object:
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; choose one of {list(choices)}")
    return value


def check_model(model: object, name: str = "model") -> nn.Module:
    """``model`` is a :class:`torch.nn.Module`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name}: expected a torch.nn.Module, got {type(model).__name__}")
    return model


def check_callable(value: object, name: str, *, optional: bool = True) -> object:
    """``value`` is callable (or ``None`` when ``optional``)."""
    if value is None and optional:
        return value
    if not callable(value):
        raise TypeError(f"{name}: expected a callable, got {type(value).__name__}")
    return value


def output_size(model: nn.Module, x: torch.Tensor, name: str = "model") -> int:
    """Number of outputs (classes) of a classifier, from one sample of ``x``.

    The sample is evaluated without gradients, on the model's device and in its
    floating dtype, with every submodule in eval mode (no batch-norm statistics
    change); each submodule's train/eval flag is restored afterwards.
    """
    dev = module_device(model)
    dtype = next((t.dtype for t in [*model.parameters(), *model.buffers()]
                  if t.is_floating_point()), x.dtype)
    with preserved_modes(model):
        model.eval()
        with torch.no_grad():
            out = model(x[:1].detach().to(device=dev, dtype=dtype))
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name}: expected logits of shape (N, classes), got {shape}")
    return int(out.shape[1])
