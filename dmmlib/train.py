"""Training and evaluation: a visible loop, a progress bar, and a weight cache.

:func:`fit` is a plain mini-batch loop (Adam or SGD, optional weight decay,
an optional ``perturb`` hook for adversarial training). :func:`train_cached`
wraps it with :mod:`dmmlib.cache`, so a chapter never retrains what an earlier
run already trained with the same model, data and settings.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from . import _validate as V
from .cache import cached_training
from .data import ImageDataset
from .device import module_device
from .ops import preserved_modes

__all__ = [
    "fit",
    "predict",
    "accuracy",
    "train_cached",
    "tensor_fingerprint",
    "progress_enabled",
]

Perturb = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Data = ImageDataset | tuple[torch.Tensor, torch.Tensor]


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument into whether to show a progress bar.

    Parameters
    ----------
    progress : bool or None
        ``True`` or ``False`` decide. ``None`` reads ``$DMM_PROGRESS``
        (``0``/``false``/``no``/``off`` turn bars off, anything else on);
        without it, bars are shown in a Jupyter kernel or when standard error
        is a terminal, and not in a log file or a CI job, where every update
        would be a line of its own.

    Returns
    -------
    bool
    """
    if progress is not None:
        return bool(progress)
    env = os.environ.get("DMM_PROGRESS", "").strip().lower()
    if env:
        return env not in {"0", "false", "no", "off"}
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _unpack(data: Data, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, ImageDataset):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"{name}: expected tensors (x, y)")
        if not x.is_floating_point():
            raise TypeError(f"{name}: x must be a floating tensor, got {x.dtype}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{name}: y has shape {tuple(y.shape)} but x has "
                             f"{x.shape[0]} samples; expected ({x.shape[0]},)")
        if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"{name}: y must hold integer class labels, got {y.dtype}")
    else:
        raise TypeError(f"{name}: expected an ImageDataset or a tuple (x, y), "
                        f"got {type(data).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name}: x must be a batch (N, ...), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: empty dataset (x has shape {tuple(x.shape)})")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: x contains NaN or infinite values")
    if int(y.min()) < 0:
        raise ValueError(f"{name}: labels y must be >= 0, found {int(y.min())}")
    return x, y.long()


def _check_label_range(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       name: str = "data") -> None:
    """Labels must index the model's outputs (one sample is evaluated to count them)."""
    n_out = V.output_size(model, x)
    if int(y.max()) >= n_out:
        raise ValueError(f"{name}: labels y must lie in [0, {n_out}) for a model with "
                         f"{n_out} outputs, found {int(y.max())}")


@torch.enable_grad()
def fit(
    model: nn.Module,
    data: Data,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    momentum: float = 0.9,
    seed: int = 0,
    perturb: Perturb | None = None,
    progress: bool | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place with cross-entropy; return per-epoch loss and accuracy.

    Parameters
    ----------
    model: a classifier returning logits; it stays on its device, batches are
        moved there.
    data: an :class:`~dmmlib.data.ImageDataset` or a tuple ``(x, y)``.
    epochs, batch_size, lr, weight_decay: the usual.
    optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
    seed: seeds the shuffling order (independent of the global RNG).
    perturb: ``perturb(model, xb, yb) -> xb'`` replaces each batch before the
        step (adversarial training). It is called with the model in eval mode.
    progress: show a tqdm bar (``None``: on unless ``DMM_PROGRESS=0``).
    callback: ``callback(step, model)`` is called after every optimizer step with
        the global 0-based index of that step (e.g. a
        :class:`dmmlib.geometry.GeometryRecorder`).

    The model is left in the mode (train/eval) it was given in (every
    submodule's own flag). Gradients are enabled inside, so calling it under
    ``torch.no_grad()`` trains all the same.
    """
    V.check_model(model)
    x, y = _unpack(data)
    V.check_int(epochs, "epochs", 0)
    V.check_int(batch_size, "batch_size", 1)
    lr = V.check_positive(lr, "lr")
    weight_decay = V.check_nonnegative(weight_decay, "weight_decay")
    momentum = V.check_nonnegative(momentum, "momentum")
    V.check_int(seed, "seed", 0)
    V.check_choice(optimizer, "optimizer", ("adam", "sgd"))
    V.check_callable(perturb, "perturb")
    V.check_callable(callback, "callback")
    _check_label_range(model, x, y)
    device = module_device(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = _adam(params, lr, weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    history: dict[str, list[float]] = {"loss": [], "train_acc": []}
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    bar = tqdm(total=epochs * ((n + batch_size - 1) // batch_size), desc="fit",
               disable=not progress_enabled(progress), leave=False)
    step = 0
    with preserved_modes(model), bar:  # every submodule's own flag comes back
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(x.device)
            total_loss = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            for start in range(0, n, batch_size):
                if batch_size >= n:  # one full batch: its order does not change the loss
                    xb, yb = x, y
                else:  # the shuffled rows of this batch
                    idx = order[start : start + batch_size]
                    xb, yb = x[idx], y[idx.to(y.device)]
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
                if perturb is not None:
                    model.eval()
                    xb = perturb(model, xb, yb).detach()
                model.train()  # every step: a perturb hook or a callback may switch modes
                logits = model(xb)
                loss = loss_fn(logits, yb)
                opt.zero_grad(set_to_none=True)
                (loss / xb.shape[0]).backward()
                opt.step()
                if callback is not None:
                    callback(step, model)
                step += 1
                total_loss += loss.detach()
                correct += (logits.detach().argmax(1) == yb).sum()
                bar.update(1)
            history["loss"].append(float(total_loss) / n)
            history["train_acc"].append(float(correct) / n)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}",
                            acc=f"{history['train_acc'][-1]:.3f}")
    return history


def _adam(params: list[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
          ) -> torch.optim.Adam:
    """:class:`torch.optim.Adam`, fused where the parameters allow it (CPU or CUDA floats).

    The fused kernel does one update for all parameters instead of a dozen
    small operations per tensor. The update rule is Adam's; only the rounding
    differs from the per-tensor loop.
    """
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                                 for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Predicted classes for ``x`` (on ``x``'s device), in eval mode, caller's mode restored.

    ``x`` is moved to the model's device and cast to its floating dtype.
    """
    V.check_model(model)
    V.check_tensor(x, "x", min_ndim=1)
    V.check_int(batch_size, "batch_size", 1)
    device = module_device(model)
    dtype = next((t.dtype for t in [*model.parameters(), *model.buffers()]
                  if t.is_floating_point()), x.dtype)  # float64 data, float32 model: fine
    with V.preserved_modes(model):
        model.eval()
        out = [model(x[i : i + batch_size].to(device=device, dtype=dtype)).argmax(1)
               for i in range(0, x.shape[0], batch_size)]
    if not out:
        return torch.empty(0, dtype=torch.int64, device=x.device)
    return torch.cat(out).to(x.device)


def accuracy(model: nn.Module, data: Data, batch_size: int = 1024) -> float:
    """Fraction of ``data`` that ``model`` classifies correctly."""
    V.check_model(model)
    x, y = _unpack(data)
    _check_label_range(model, x, y)
    return float((predict(model, x, batch_size) == y.to(x.device)).float().mean())


def tensor_fingerprint(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's shape, dtype and bytes (for cache keys)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected a torch.Tensor, got {type(t).__name__}")
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_cached(
    model: nn.Module,
    data: Data,
    *,
    name: str = "model",
    cache: bool = True,
    extra_key: dict[str, Any] | None = None,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """:func:`fit` ``model``, or load the weights an identical earlier run cached.

    The key hashes the model's architecture and *initial* weights, the training
    data, every keyword passed on to :func:`fit`, ``extra_key`` and the source
    of dmmlib (:func:`dmmlib.cache.cached_training`). A ``perturb`` hook cannot
    be hashed: describe it in ``extra_key``.
    A ``callback`` is refused: on a cache hit it would never be called. To
    cache what a callback records, wrap the whole recording run (training
    included) in :func:`dmmlib.cache.cached_result`.

    A cache entry that is unreadable or does not fit ``model`` (missing or
    extra weights, other shapes) is reported with a
    :class:`~dmmlib.cache.CacheWarning` and the model is trained again; if the
    new weights cannot be written (disk full, read-only folder) a
    :class:`~dmmlib.cache.CacheWarning` says so and the trained model is
    returned all the same.

    Returns
    -------
    dict with ``history`` (from :func:`fit`), ``seconds`` (training time of the
    run that produced the weights), ``cached`` (whether they were loaded) and
    ``path`` (the cache file, or ``None``).
    """
    V.check_model(model)
    if fit_kwargs.get("callback") is not None:
        raise ValueError(
            "callback: train_cached does not take a callback: on a cache hit training is "
            "skipped, so the callback would never be called (and an object in the cache key "
            "makes every run a cache miss). Cache the recording run instead: "
            "dmmlib.cache.cached_result(name, config, compute), where compute() calls "
            "fit(model, data, callback=recorder) and returns what the recorder measured")
    x, y = _unpack(data)
    if "perturb" in fit_kwargs and fit_kwargs["perturb"] is not None and not extra_key:
        raise ValueError("train_cached: a perturb hook must be described in extra_key")
    key_fit = {k: v for k, v in fit_kwargs.items() if k not in {"progress", "perturb"}}
    config = {"x": tensor_fingerprint(x), "y": tensor_fingerprint(y), "fit": key_fit,
              "extra": extra_key or {}}
    return cached_training(model, lambda: fit(model, (x, y), **fit_kwargs), config,
                           name=name, cache=cache)

