"""Train many small models at once: one vmap'ed loop over stacked parameters.

Statements about "the" decision boundary of a network are statements about a
random variable: the chapter repeats every toy experiment over many seeds and
settings. Training M small models one after another in Python spends most of
the time in interpreter overhead; here their parameters are stacked
(:func:`torch.func.stack_module_state`) and one
``vmap(grad(functional_call))`` computes all M gradients in a single batched
pass. SGD (with momentum) and Adam are implemented directly on the stacked
tensors and follow :mod:`torch.optim`'s update rules exactly, so the result
matches a Python loop over the same models (see the tests).

Learning rates and weight decays may differ per model (the "settings");
all models see the same mini-batches in the same order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._validate import (
    check_choice,
    check_int,
    check_labels,
    check_nonnegative,
    check_positive,
    check_tensor,
)

__all__ = ["Ensemble", "train_ensemble"]

Params = dict[str, torch.Tensor]


class Ensemble:
    """M models of one architecture whose parameters are stacked along dim 0.

    Attributes
    ----------
    params, buffers: dicts of stacked tensors (M, ...) (detached).
    history: per-epoch training statistics when produced by
        :func:`train_ensemble`: ``loss`` and ``train_acc``, each a list (one per
        epoch) of lists (one value per model).
    """

    def __init__(self, template: nn.Module, params: Params, buffers: Params) -> None:
        self._template = template
        self._base = copy.deepcopy(template).to("meta")
        self.params = params
        self.buffers = buffers
        self.history: dict[str, list[list[float]]] = {"loss": [], "train_acc": []}

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> "Ensemble":
        """Stack the (copied) parameters and buffers of same-architecture models."""
        if isinstance(models, nn.Module) or not isinstance(models, Sequence) or not models:
            raise TypeError("models: expected a non-empty list of nn.Module")
        for i, m in enumerate(models):
            if not isinstance(m, nn.Module):
                raise TypeError(f"models[{i}]: expected an nn.Module, got {type(m).__name__}")
        shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
        if any(s != shapes[0] for s in shapes[1:]):
            raise ValueError("models: all models must share one architecture (same "
                             "parameter names and shapes)")
        params, buffers = torch.func.stack_module_state(list(models))
        params = {k: v.detach().clone() for k, v in params.items()}
        buffers = {k: v.detach().clone() for k, v in buffers.items()}
        return cls(models[0], params, buffers)

    def __len__(self) -> int:
        return int(next(iter(self.params.values())).shape[0])

    @property
    def device(self) -> torch.device:
        """The device of the stacked parameters."""
        return next(iter(self.params.values())).device

    def functional(self, params: Params, buffers: Params, x: torch.Tensor) -> torch.Tensor:
        """Logits of one model given its (unstacked) parameters (for ``vmap``)."""
        return torch.func.functional_call(self._base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, *, batch_size: int = 8192) -> torch.Tensor:
        """Logits of every model, shape (M, N, C), in eval mode and without gradients."""
        xt = check_tensor(x, "x", min_ndim=2)
        check_int(batch_size, "batch_size", 1)
        self._base.eval()
        run = torch.func.vmap(self.functional, in_dims=(0, 0, None))
        with torch.no_grad():
            out = [run(self.params, self.buffers, xt[i : i + batch_size].to(self.device))
                   for i in range(0, xt.shape[0], batch_size)]
        return torch.cat(out, dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes of every model, shape (M, N)."""
        return self(x).argmax(-1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Accuracy of every model on ``(x, y)``, shape (M,)."""
        xt = check_tensor(x, "x", min_ndim=2)
        check_labels(y, xt)
        pred = self.predict(xt)
        return (pred == y.to(pred.device)).double().mean(1)

    def model(self, i: int) -> nn.Module:
        """Model ``i`` as an independent ``nn.Module`` (a copy, in eval mode)."""
        check_int(i, "i", 0)
        if i >= len(self):
            raise ValueError(f"i: the ensemble has {len(self)} models, got index {i}")
        m = copy.deepcopy(self._template)
        state = {k: v[i].clone() for k, v in {**self.params, **self.buffers}.items()}
        m.load_state_dict(state)
        return m.eval()

    def models(self) -> list[nn.Module]:
        """All models as independent ``nn.Module`` copies."""
        return [self.model(i) for i in range(len(self))]


def _per_model(value: object, name: str, m: int, positive: bool) -> torch.Tensor:
    check = check_positive if positive else check_nonnegative
    if isinstance(value, (list, tuple)) or (isinstance(value, torch.Tensor) and value.ndim > 0):
        vals = [check(v, name) for v in (value.tolist() if isinstance(value, torch.Tensor)
                                        else value)]
        if len(vals) != m:
            raise ValueError(f"{name}: expected one value per model ({m}), got {len(vals)}")
        return torch.tensor(vals, dtype=torch.float64)
    return torch.full((m,), check(value, name), dtype=torch.float64)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def train_ensemble(
    models: Sequence[nn.Module] | Ensemble,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int = 100,
    batch_size: int | None = None,
    lr: float | Sequence[float] | torch.Tensor = 1e-2,
    weight_decay: float | Sequence[float] | torch.Tensor = 0.0,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    seed: int = 0,
    callback: Callable[[int, Ensemble], None] | None = None,
    progress: bool | None = None,
) -> Ensemble:
    """Train M same-architecture models together with cross-entropy, vmap'ed.

    Each step computes every model's loss and parameter gradient in one
    ``vmap(grad_and_value(functional_call))`` pass and applies the optimizer to
    the stacked parameters. The updates follow :class:`torch.optim.SGD`
    (momentum, no dampening, L2 ``weight_decay`` added to the gradient) and
    :class:`torch.optim.Adam` exactly.

    Parameters
    ----------
    models: M models of one architecture (e.g. built with different seeds;
        they are not modified), or an :class:`Ensemble` to continue training.
    data: ``(x, y)``; x (N, ...) float, y (N,) int labels. Moved to the
        models' device and cast to their dtype.
    epochs: passes over the data.
    batch_size: mini-batch size (``None``: full batch, one step per epoch).
    lr, weight_decay: a number, or one value per model.
    optimizer: ``"sgd"`` or ``"adam"``.
    momentum: SGD momentum.
    betas, eps: Adam's constants.
    seed: seeds the shuffling order (shared by all models).
    callback: ``callback(step, ensemble)`` after every step (0-based global step
        index), e.g. to record geometry of :meth:`Ensemble.model` ``(i)``.
    progress: show a tqdm bar (``None``: on unless ``DMM_PROGRESS=0``).

    Returns
    -------
    Ensemble holding the trained stacked parameters and per-epoch ``history``.
    Models must not use batch statistics (BatchNorm) or in-place buffer updates.
    """
    from .train import progress_enabled

    ens = models if isinstance(models, Ensemble) else Ensemble.from_models(models)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data: expected a tuple (x, y), got {type(data).__name__}")
    x = check_tensor(data[0], "x", min_ndim=2)
    y = data[1]
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError("y: expected an integer tensor of labels")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y: expected shape ({x.shape[0]},), got {tuple(y.shape)}")
    check_int(epochs, "epochs", 0)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x: empty dataset")
    n_out = ens(x[:1].to(next(iter(ens.params.values())).dtype)).shape[-1]
    if int(y.min()) < 0 or int(y.max()) >= n_out:
        raise ValueError(f"y: labels must lie in [0, {n_out}) for models with {n_out} outputs, "
                         f"found range [{int(y.min())}, {int(y.max())}]")
    bs = n if batch_size is None else check_int(batch_size, "batch_size", 1)
    check_choice(optimizer, "optimizer", ("sgd", "adam"))
    momentum = check_nonnegative(momentum, "momentum")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2
            and all(0.0 <= float(b) < 1.0 for b in betas)):
        raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
    eps = check_positive(eps, "eps")
    check_int(seed, "seed", 0)
    m = len(ens)
    lrs = _per_model(lr, "lr", m, positive=True)
    wds = _per_model(weight_decay, "weight_decay", m, positive=False)

    device = ens.device
    pdtype = next(iter(ens.params.values())).dtype
    x, y = x.to(device=device, dtype=pdtype), y.to(device=device, dtype=torch.int64)
    params = {k: v.detach().clone() for k, v in ens.params.items()}
    buffers = ens.buffers
    names = list(params)
    # one value for all models: plain floats (the exact torch.optim arithmetic, and no
    # broadcast temporaries); different values: (M, 1, ...) tensors per parameter.
    lr_v: dict[str, float | torch.Tensor] = {
        k: float(lrs[0]) if bool((lrs == lrs[0]).all()) else _bcast(lrs, params[k])
        for k in names}
    wd_v: dict[str, float | torch.Tensor] = {
        k: float(wds[0]) if bool((wds == wds[0]).all()) else _bcast(wds, params[k])
        for k in names}
    ens._base.train()

    def loss_fn(p: Params, b: Params, xb: torch.Tensor, yb: torch.Tensor
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        logits = ens.functional(p, b, xb)
        loss = F.cross_entropy(logits, yb)
        return loss, (loss.detach(), (logits.detach().argmax(1) == yb).sum())

    step_fn = torch.func.vmap(torch.func.grad(loss_fn, has_aux=True),
                              in_dims=(0, 0, None, None), randomness="different")
    state: dict[str, dict[str, torch.Tensor]] = {}
    if optimizer == "sgd" and momentum > 0:
        state["buf"] = {}
    if optimizer == "adam":
        state["m"] = {k: torch.zeros_like(v) for k, v in params.items()}
        state["v"] = {k: torch.zeros_like(v) for k, v in params.items()}
    b1, b2 = float(betas[0]), float(betas[1])
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = (n + bs - 1) // bs
    bar = tqdm(total=epochs * steps_per_epoch, desc="train_ensemble",
               disable=not progress_enabled(progress), leave=False)
    step = 0
    try:
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(device) if bs < n else None
            total = torch.zeros(m, device=device, dtype=torch.float64)
            correct = torch.zeros(m, device=device, dtype=torch.int64)
            for start in range(0, n, bs):
                if order is None:
                    xb, yb = x, y
                else:
                    idx = order[start : start + bs]
                    xb, yb = x[idx], y[idx]
                grads, (loss, corr) = step_fn(params, buffers, xb, yb)
                with torch.no_grad():
                    _update(params, grads, state, optimizer, lr_v, wd_v, momentum, b1, b2,
                            eps, step + 1)
                total += loss.double() * xb.shape[0]
                correct += corr
                ens.params = params
                if callback is not None:
                    callback(step, ens)
                step += 1
                bar.update(1)
            ens.history["loss"].append((total / n).tolist())
            ens.history["train_acc"].append((correct.double() / n).tolist())
            bar.set_postfix(loss=f"{float(total.mean()) / n:.3f}")
    finally:
        bar.close()
    ens.params = params
    return ens


def _update(params: Params, grads: Params, state: dict[str, Any], optimizer: str,
            lr: dict[str, float | torch.Tensor], wd: dict[str, float | torch.Tensor],
            momentum: float, b1: float, b2: float, eps: float, t: int) -> None:
    """One in-place optimizer step on stacked parameters (torch.optim's arithmetic)."""
    for k, p in params.items():
        g = grads[k]                                   # fresh tensor from vmap: ours to modify
        lr_k, wd_k = lr[k], wd[k]
        if isinstance(wd_k, torch.Tensor):
            g = g.addcmul_(wd_k, p)
        elif wd_k != 0:
            g = g.add_(p, alpha=wd_k)
        if optimizer == "sgd":
            if momentum > 0:
                buf = state["buf"].get(k)
                if buf is None:
                    buf = state["buf"][k] = g.clone()
                else:
                    buf.mul_(momentum).add_(g)
                g = buf
            if isinstance(lr_k, torch.Tensor):
                p.sub_(g * lr_k)
            else:
                p.add_(g, alpha=-lr_k)
        else:
            m, v = state["m"][k], state["v"][k]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            bc1 = 1 - b1 ** t
            denom = v.sqrt().div_((1 - b2 ** t) ** 0.5).add_(eps)
            if isinstance(lr_k, torch.Tensor):
                p.sub_(m * (lr_k / bc1) / denom)
            else:
                p.addcdiv_(m, denom, value=-lr_k / bc1)
