"""Helpers for the experiments of Szegedy et al. (2013), "Intriguing properties of neural networks".

* the paper's distortion measure :func:`rms_distortion`,
  ``sqrt(sum((x' - x)^2) / n)``, and :func:`scale_to_distortion`, which moves
  along a direction until the *clipped* image has a given distortion (the
  Gaussian-noise control and the "amplified" transfer experiment);
* the autoencoder-based classifier AE400-10: a one-layer sigmoid
  :class:`SparseAutoencoder` trained without labels
  (:func:`fit_sparse_autoencoder`, cached by
  :func:`fit_sparse_autoencoder_cached`) and a softmax layer on its frozen code
  (:class:`AEClassifier`);
* transfer between models (:func:`error_rate`, :func:`transfer_matrix`);
* units vs random directions of a hidden layer (:func:`layer_activations`,
  :func:`random_directions`, :func:`top_activating`, :func:`class_purity`);
* adversarial training on a mix of clean and adversarial examples
  (:func:`mixed_perturb`, a ``perturb`` hook for :func:`dmmlib.train.fit`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._text import pct, span
from .._validate import (
    as_generator,
    check_images,
    check_int,
    check_labels,
    check_model,
    check_nonnegative,
    check_positive,
    check_tensor,
    output_size,
)
from ..device import module_device
from ..ops import preserved_modes

__all__ = [
    "rms_distortion",
    "scale_to_distortion",
    "gaussian_noise",
    "SparseAutoencoder",
    "fit_sparse_autoencoder",
    "fit_sparse_autoencoder_cached",
    "AEClassifier",
    "error_rate",
    "transfer_matrix",
    "layer_activations",
    "random_directions",
    "top_activating",
    "class_purity",
    "mixed_perturb",
    "SIZES",
    "train_paper_mlp", "train_ae400",
    "table1_sentences",
]


# --------------------------------------------------------------------------- distortion
def rms_distortion(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Szegedy et al.'s distortion ``sqrt(sum((x' - x)^2) / n)`` per sample, shape (N,).

    ``n`` is the number of pixels of one image, so the measure is the
    root-mean-square change of a pixel (pixels in [0, 1]); it equals the L2
    norm of the perturbation divided by ``sqrt(n)``.
    """
    x_adv = check_tensor(x_adv, "x_adv", min_ndim=2)
    x = check_tensor(x, "x", min_ndim=2)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv: shape {tuple(x_adv.shape)} differs from x's {tuple(x.shape)}")
    return (x_adv - x).flatten(1).pow(2).mean(1).sqrt()


def scale_to_distortion(x: torch.Tensor, direction: torch.Tensor, distortion: float | torch.Tensor,
                        *, iters: int = 20) -> torch.Tensor:
    """``clip(x + s * direction, 0, 1)``, ``s >= 0`` per sample, at a given distortion.

    ``s`` is chosen so that the :func:`rms_distortion` from ``x`` equals
    ``distortion``.

    The distortion of the clipped image grows monotonically with ``s`` and is
    at most ``s * rms(direction)``, so ``s`` lies between
    ``distortion / rms(direction)`` and the first doubling of it that reaches
    the target; ``iters`` bisection steps then fix it to a relative precision
    of about ``2 ** -iters``. Where clipping makes the target unreachable the
    largest reachable distortion is returned (check with
    :func:`rms_distortion`). ``distortion`` is a number or a tensor (N,).
    """
    x = check_images(x, "x")
    direction = check_tensor(direction, "direction", min_ndim=2)
    if direction.shape != x.shape:
        raise ValueError(f"direction: shape {tuple(direction.shape)} differs from x's "
                         f"{tuple(x.shape)}")
    target = torch.as_tensor(distortion, dtype=x.dtype, device=x.device)
    if target.ndim > 1 or (target.ndim == 1 and target.shape[0] != x.shape[0]):
        raise ValueError(f"distortion: expected a number or shape ({x.shape[0]},), got "
                         f"{tuple(target.shape)}")
    target = target.expand(x.shape[0])
    if bool((target < 0).any()) or not bool(torch.isfinite(target).all()):
        raise ValueError("distortion: must be finite and non-negative")
    check_int(iters, "iters", 1)
    xf, df = x.flatten(1), direction.flatten(1).to(x.dtype)

    def dist(s: torch.Tensor) -> torch.Tensor:
        return ((xf + s[:, None] * df).clamp(0, 1) - xf).pow(2).mean(1).sqrt()

    d_rms = df.pow(2).mean(1).sqrt()
    lo = torch.where(d_rms > 0, target / d_rms.clamp_min(1e-12), torch.zeros_like(target))
    hi = lo.clone()
    for _ in range(30):  # double hi until it reaches the target (or stops helping)
        short = dist(hi) < target * (1 - 1e-6)
        if not bool(short.any()):
            break
        lo = torch.where(short, hi, lo)
        hi = torch.where(short, hi * 2, hi)
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = dist(mid) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return (xf + hi[:, None] * df).clamp(0, 1).reshape(x.shape)


def gaussian_noise(x: torch.Tensor, sigma: float | torch.Tensor, *,
                   seed: int | torch.Generator | None = None) -> torch.Tensor:
    """``clip(x + sigma * N(0, I), 0, 1)``: the paper's Gaussian-noise control.

    ``seed``: an int (a private CPU generator), a :class:`torch.Generator`
    (drawn on its device) or ``None`` (the global RNG, on ``x``'s device).
    """
    x = check_images(x, "x")
    generator = as_generator(seed)
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError("sigma: must be finite and non-negative")
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] != x.shape[0]):
        raise ValueError(f"sigma: expected a number or shape ({x.shape[0]},), got "
                         f"{tuple(s.shape)}")
    if s.ndim == 1:
        s = s.reshape(-1, *([1] * (x.ndim - 1)))
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype,
                        device=generator.device if generator is not None else x.device)
    return (x + s * noise.to(x.device)).clamp(0, 1)


# --------------------------------------------------------------------------- AE400-10
class SparseAutoencoder(nn.Module):
    """One hidden layer of sigmoid units, a sigmoid decoder: the "AE400" of Szegedy et al.

    ``encoder`` maps images (N, ...) in [0, 1] to codes (N, hidden) in (0, 1);
    ``forward`` returns the reconstruction with the input's shape.
    """

    def __init__(self, in_features: int = 784, hidden: int = 400) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.hidden = check_int(hidden, "hidden", 1)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.Sigmoid())
        self.decoder = nn.Sequential(nn.Linear(hidden, in_features), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` (same shape)."""
        return self.decoder(self.encoder(x)).reshape(x.shape)


def _sparse_ae_loss(ae: SparseAutoencoder, xb: torch.Tensor, sparsity: float, target: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    code = ae.encoder(xb)
    rec = ae.decoder(code)
    mse = (rec - xb.flatten(1)).pow(2).sum(1).mean() / 2
    rho = code.mean(0).clamp(1e-6, 1 - 1e-6)
    kl = (target * torch.log(target / rho)
          + (1 - target) * torch.log((1 - target) / (1 - rho))).sum()
    return mse + sparsity * kl, mse, code.detach().mean()


def fit_sparse_autoencoder(
    ae: SparseAutoencoder,
    x: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    sparsity: float = 0.1,
    target: float = 0.05,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, list[float]]:
    """Train a :class:`SparseAutoencoder` in place with Adam, without labels.

    The loss per mini-batch is the classic sparse-autoencoder objective: half
    the squared reconstruction error summed over pixels (mean over the batch)
    plus ``sparsity`` times ``sum_j KL(target || rho_j)``, where ``rho_j`` is
    the mean activation of hidden unit j over the batch.

    Returns ``{"loss": [...], "mse": [...], "mean_activation": [...]}`` per
    epoch (``mse`` is the per-image half squared error). The module is left in
    the mode it was given in.
    """
    if not isinstance(ae, SparseAutoencoder):
        raise TypeError(f"ae: expected a SparseAutoencoder, got {type(ae).__name__}")
    x = check_images(x, "x")
    check_int(epochs, "epochs", 0)
    check_int(batch_size, "batch_size", 1)
    check_positive(lr, "lr")
    check_nonnegative(weight_decay, "weight_decay")
    check_nonnegative(sparsity, "sparsity")
    if not 0 < target < 1:
        raise ValueError(f"target: the mean activation must lie in (0, 1), got {target}")
    from ..train import _adam, progress_enabled

    device = module_device(ae)
    opt = _adam(list(ae.parameters()), lr, weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    history: dict[str, list[float]] = {"loss": [], "mse": [], "mean_activation": []}
    bar = tqdm(total=epochs * math.ceil(n / batch_size), desc="sparse AE",
               disable=not progress_enabled(progress), leave=False)
    # training needs gradients even under a caller's no_grad(); every submodule's
    # own train/eval flag is restored afterwards
    try:
        with preserved_modes(ae), torch.enable_grad():
            ae.train()
            for _ in range(epochs):
                order = torch.randperm(n, generator=gen)
                sums = torch.zeros(3, device=device)
                for start in range(0, n, batch_size):
                    xb = x[order[start:start + batch_size]].to(device)
                    loss, mse, act = _sparse_ae_loss(ae, xb, sparsity, target)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sums += torch.stack([loss.detach(), mse.detach(), act]) * xb.shape[0]
                    bar.update(1)
                for key, value in zip(history, (sums / n).tolist(), strict=True):
                    history[key].append(value)
    finally:
        bar.close()
    return history


def fit_sparse_autoencoder_cached(
    ae: SparseAutoencoder,
    x: torch.Tensor,
    *,
    name: str = "sparse-ae",
    cache: bool = True,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """:func:`fit_sparse_autoencoder`, or load the weights an identical earlier run cached.

    The key hashes the architecture and *initial* weights, the data, every
    keyword passed on (except ``progress``) and the source of dmmlib
    (:func:`dmmlib.cache.cached_training`). Returns ``history``, ``seconds``
    (of the run that trained), ``cached`` and ``path``.
    """
    from ..cache import cached_training
    from ..train import tensor_fingerprint

    if not isinstance(ae, SparseAutoencoder):
        raise TypeError(f"ae: expected a SparseAutoencoder, got {type(ae).__name__}")
    x = check_images(x, "x")
    config = {"kind": "sparse-autoencoder", "x": tensor_fingerprint(x),
              "fit": {k: v for k, v in fit_kwargs.items() if k != "progress"}}
    return cached_training(ae, lambda: fit_sparse_autoencoder(ae, x, **fit_kwargs), config,
                           name=name, cache=cache)


class AEClassifier(nn.Module):
    """A softmax layer on the code of a (frozen) encoder: Szegedy et al.'s "AE400-10".

    Parameters
    ----------
    encoder: maps images in [0, 1] to codes (N, code_size), e.g.
        ``SparseAutoencoder.encoder``.
    code_size: width of the code.
    n_classes: number of outputs.
    freeze: do not train the encoder (the paper did not fine-tune it); its
        parameters get ``requires_grad=False``, so :func:`dmmlib.train.fit`
        trains only the softmax layer. Input gradients still flow (attacks work).
    """

    def __init__(self, encoder: nn.Module, code_size: int, n_classes: int = 10,
                 freeze: bool = True) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"encoder: expected an nn.Module, got {type(encoder).__name__}")
        self.encoder = encoder
        self.head = nn.Linear(check_int(code_size, "code_size", 1),
                              check_int(n_classes, "n_classes", 1))
        if freeze:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the softmax layer on the encoder's code."""
        return self.head(self.encoder(x))


# --------------------------------------------------------------------------- transfer
@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of ``x`` that ``model`` misclassifies (eval mode, caller's mode restored)."""
    from ..train import predict

    model = check_model(model)
    x = check_tensor(x, "x", min_ndim=2)
    if x.shape[0] == 0:
        raise ValueError(f"x: empty batch (shape {tuple(x.shape)})")
    y = check_labels(y, x, "y", output_size(model, x))
    check_int(batch_size, "batch_size", 1)
    return float((predict(model, x, batch_size) != y.to(x.device)).float().mean())


def transfer_matrix(examples: Mapping[str, torch.Tensor], models: Mapping[str, nn.Module],
                    y: torch.Tensor) -> dict[str, dict[str, float]]:
    """Error rate of every model on every set of examples: ``out[source][target]``.

    ``examples[source]`` holds images (N, ...) with true labels ``y`` (N,),
    e.g. adversarial examples made for the model ``source`` or a noise control;
    ``models[target]`` is evaluated on each. Put the result in a table with
    ``pandas.DataFrame(out).T`` (rows: sources, columns: targets).
    """
    for arg, name in ((examples, "examples"), (models, "models")):
        if not isinstance(arg, Mapping):
            raise TypeError(f"{name}: expected a mapping (dict) of names to "
                            f"{'tensors' if name == 'examples' else 'models'}, got "
                            f"{type(arg).__name__}")
        if not arg:
            raise ValueError(f"{name}: empty mapping")
    for tgt, m in models.items():
        check_model(m, f"models[{tgt!r}]")
    xs_all = [check_tensor(xs, f"examples[{src!r}]", min_ndim=2)
              for src, xs in examples.items()]
    for (src, xs) in zip(examples, xs_all, strict=True):
        if xs.shape[0] == 0:
            raise ValueError(f"examples[{src!r}]: empty batch (shape {tuple(xs.shape)})")
        if xs.shape[1:] != xs_all[0].shape[1:]:
            raise ValueError(f"examples[{src!r}]: images of shape {tuple(xs.shape[1:])} "
                             f"differ from the first set's {tuple(xs_all[0].shape[1:])}")
        check_labels(y, xs, "y")
    for tgt, m in models.items():
        check_labels(y, xs_all[0], "y", output_size(m, xs_all[0], f"models[{tgt!r}]"))
    return {src: {tgt: error_rate(m, xs, y) for tgt, m in models.items()}
            for src, xs in examples.items()}


# --------------------------------------------------------------------------- units vs directions
@torch.no_grad()
def layer_activations(model: nn.Module, layer: nn.Module, x: torch.Tensor,
                      batch_size: int = 1024) -> torch.Tensor:
    """The output of ``layer`` (a submodule of ``model``) for inputs ``x``, flattened to (N, width).

    Runs ``model`` in eval mode (the caller's mode is restored) and records
    ``layer``'s output with a forward hook; the result is on ``x``'s device.
    """
    model = check_model(model)
    check_model(layer, "layer")
    if not any(m is layer for m in model.modules()):
        raise ValueError("layer: not a submodule of model")
    x = check_tensor(x, "x", min_ndim=2)
    check_int(batch_size, "batch_size", 1)
    out: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, o: out.append(o.detach().flatten(1)))
    device = module_device(model)
    try:
        with preserved_modes(model):  # every submodule's own flag comes back
            model.eval()
            for i in range(0, x.shape[0], batch_size):
                model(x[i:i + batch_size].to(device))
    finally:
        handle.remove()
    return torch.cat(out).to(x.device)


def random_directions(width: int, count: int, *, seed: int | torch.Generator | None = None
                      ) -> torch.Tensor:
    """``count`` directions drawn uniformly from the unit sphere of R^width, shape (count, width).

    ``seed``: an int, a CPU :class:`torch.Generator` or ``None`` (the global RNG).
    """
    check_int(width, "width", 1)
    check_int(count, "count", 1)
    generator = as_generator(seed, "cpu")
    v = torch.randn(count, width, generator=generator)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def top_activating(activations: torch.Tensor, directions: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (D, k) of the ``k`` inputs with the largest ``<phi(x), v>`` for each direction v.

    ``activations`` is (N, width) (from :func:`layer_activations`);
    ``directions`` is (D, width): the rows of the identity for single units,
    :func:`random_directions` for random directions of the same layer.
    """
    a = check_tensor(activations, "activations", min_ndim=2)
    d = check_tensor(directions, "directions", min_ndim=2)
    if a.ndim != 2:
        raise ValueError(f"activations: expected shape (N, width), got {tuple(a.shape)}")
    if d.ndim != 2 or d.shape[1] != a.shape[1]:
        raise ValueError(f"directions: expected shape (D, {a.shape[1]}) to match "
                         f"activations {tuple(a.shape)}, got {tuple(d.shape)}")
    check_int(k, "k", 1)
    if k > a.shape[0]:
        raise ValueError(f"k: at most the number of inputs ({a.shape[0]}), got {k}")
    scores = a @ d.to(a.device, a.dtype).T  # (N, D)
    return scores.topk(k, dim=0).indices.T.contiguous()


def class_purity(labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """Per row of ``labels`` (D, k): the share of the ``k`` labels equal to the most common."""
    lab = check_tensor(labels, "labels", floating=False, min_ndim=2)
    if lab.is_floating_point() or lab.dtype == torch.bool or lab.is_complex():
        raise TypeError(f"labels: expected integer class indices, got dtype {lab.dtype}")
    lab = lab.long()
    if lab.ndim != 2 or lab.shape[1] == 0:
        raise ValueError(f"labels: expected shape (D, k) with k >= 1, got {tuple(lab.shape)}")
    if lab.numel() and int(lab.min()) < 0:
        raise ValueError(f"labels: must be >= 0, found {int(lab.min())}")
    n = int(lab.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", 1)
    if lab.numel() and int(lab.max()) >= n:
        raise ValueError(f"labels: must lie in [0, {n}) for n_classes={n}, found "
                         f"{int(lab.max())}")
    counts = F.one_hot(lab, n).sum(1)
    return counts.amax(1).float() / lab.shape[1]


# --------------------------------------------------------------------------- adversarial training
def mixed_perturb(attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
                  fraction: float = 0.5
                  ) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A ``perturb`` hook for :func:`dmmlib.train.fit` that mixes clean and adversarial examples.

    The first ``round(fraction * batch)`` images of each (already shuffled)
    mini-batch are replaced by ``attack(model, x, y)`` (images, or an
    :class:`~dmmlib.attacks.AttackResult`, whose ``x_adv`` is used); the rest stay clean.
    Szegedy et al. kept a pool of adversarial examples mixed into the training
    set; making them afresh for every batch is the simpler modern variant.
    """
    if not callable(attack):
        raise TypeError(f"attack: expected a callable, got {type(attack).__name__}")
    if not 0 <= check_nonnegative(fraction, "fraction") <= 1:
        raise ValueError(f"fraction: must lie in [0, 1], got {fraction}")

    def perturb(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        m = int(round(fraction * xb.shape[0]))
        if m == 0:
            return xb
        out = attack(model, xb[:m], yb[:m])
        adv = getattr(out, "x_adv", out).to(xb.dtype)  # an AttackResult, or images
        return torch.cat([adv, xb[m:]])

    return perturb


def train_paper_mlp(name: str, hidden: tuple[int, ...], weight_decay: float, dataset: Any, *,
                    mean: float, std: float, epochs: int, batch_size: int, seed: int = 0,
                    device: torch.device | str | None = None, **fit_kwargs: Any
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """One of the paper's fully connected networks, trained (or loaded from the cache).

    ``torch.manual_seed(seed)`` initialises it (the global RNG is reseeded),
    then :func:`dmmlib.train.train_cached` trains it with Adam (lr 1e-3) under
    the name ``intriguing-<name>``; ``fit_kwargs`` go to ``train_cached``.

    Returns
    -------
    tuple
        ``(model in eval mode, run)``.
    """
    from ..models import MLP
    from ..train import train_cached

    x0 = dataset[0] if isinstance(dataset, tuple) else dataset.x
    torch.manual_seed(seed)
    model = MLP(x0[0].numel(), hidden, n_classes=10, mean=mean, std=std).to(device)
    run = train_cached(model, dataset, name=f"intriguing-{name}", epochs=epochs,
                       batch_size=batch_size, lr=1e-3, weight_decay=weight_decay, seed=seed,
                       **fit_kwargs)
    return model.eval(), run


def train_ae400(train_set: Any, *, epochs: int, ae_epochs: int, batch_size: int,
                device: torch.device | str | None = None
                ) -> tuple[SparseAutoencoder, nn.Module, dict[str, Any], dict[str, Any]]:
    """The paper's AE400-10: a sparse autoencoder on the pixels, then softmax on its code.

    The autoencoder (400 sigmoid units) learns without labels; the softmax
    layer is trained on its frozen code. Both are cached; the global RNG is
    reseeded (seed 0) before each initialisation.

    Returns
    -------
    tuple
        ``(autoencoder, classifier in eval mode, classifier run, autoencoder run)``.
    """
    from ..train import train_cached

    n_pixels = train_set.x[0].numel()
    torch.manual_seed(0)
    autoencoder = SparseAutoencoder(n_pixels, 400).to(device)
    ae_run = fit_sparse_autoencoder_cached(
        autoencoder, train_set.x, name="intriguing-ae400", epochs=ae_epochs,
        batch_size=batch_size, lr=3e-3, sparsity=0.1, target=0.05)
    torch.manual_seed(0)
    clf = AEClassifier(autoencoder.encoder, 400, 10).to(device)
    run = train_cached(clf, train_set, name="intriguing-AE400-10", epochs=epochs,
                       batch_size=batch_size, lr=1e-2, weight_decay=1e-4, seed=0)
    return autoencoder, clf.eval(), run, ae_run


def table1_sentences(table1: Any, found: Mapping[str, float], test_errors: Mapping[str, float],
                     nearest_other: float, n_pixels: int, n_attack: int, dataset: str
                     ) -> dict[str, str]:
    """The numbers and verdict sentences the chapter quotes about its Table 1.

    Parameters
    ----------
    table1: a DataFrame indexed by network with columns ``distortion (L-BFGS)``,
        ``distortion (min-norm)`` and ``paper: distortion``.
    found: per network, the fraction of correct images L-BFGS changed.
    test_errors: per network, its test error (the three ``FC10(...)`` are quoted).
    nearest_other: mean distortion from an attacked image to the nearest training
        image of another class.
    n_pixels, n_attack: input size and number of attacked images.
    dataset: the dataset's name (``"MNIST"`` is the paper's).

    Returns
    -------
    dict
        Glue name -> text.
    """
    import numpy as np

    d_lbfgs, d_min = table1["distortion (L-BFGS)"], table1["distortion (min-norm)"]
    ratio = d_lbfgs / d_min
    lams = ("1e-4", "1e-2", "1")
    fc10 = [d_lbfgs[f"FC10({lam})"] for lam in lams]
    increasing = all(a < b for a, b in zip(fc10, fc10[1:], strict=False))
    found_min = min(found.values())
    found_phrase = "all" if found_min >= 1.0 else f"at least {pct(found_min)}"
    far = nearest_other / d_lbfgs.max()
    if dataset == "MNIST":
        why = ("We used the paper's dataset, so the remaining differences are the training "
               "(ReLU units, Adam, fewer epochs, our own choice of weight decay) and the images "
               "attacked: the paper attacked training images, we attack test images.")
    else:
        why = (f"{dataset} classes overlap more than MNIST digits (a shirt and a T-shirt "
               "are closer than a 1 and a 7), so test images sit closer to a decision boundary; "
               "our training differs (ReLU units, Adam, fewer epochs, our own choice of weight "
               "decay); and the paper attacked training images, while we attack test images.")
    paper = table1["paper: distortion"]
    return {
        "d_lbfgs_min": f"{d_lbfgs.min():.3f}",
        "d_lbfgs_max": f"{d_lbfgs.max():.3f}",
        "l2_max": f"{d_lbfgs.max() * n_pixels ** 0.5:.2f}",
        "found_min": found_phrase,
        "n_attack": f"{n_attack}",
        "lbfgs_vs_min": span(ratio.min(), ratio.max(), "{:.2f}"),
        "fc10_trend": ("grows with the weight decay, as in the paper" if increasing else
                       "does not grow monotonically with the weight decay, unlike the paper"),
        "fc10_d": ", ".join(f"{v:.3f}" for v in fc10),
        "fc10_err": ", ".join(f"{test_errors[f'FC10({lam})']:.1%}" for lam in lams),
        "lbfgs_vs_min_sentence": (
            "perturbations of about the same size, so the numbers are not an artefact of one "
            "optimiser" if ratio.max() < 1.25 else
            "smaller perturbations than L-BFGS: the paper's method gives upper bounds, and the "
            "true minimal distortions are smaller still, which only strengthens the claim"),
        "nearest_other": f"{nearest_other:.3f}",
        "nearest_ratio": f"{far:.0f}",
        "exist_sentence": (
            f"L-BFGS changed the label of {found_phrase} of the correctly classified "
            f"test images on every model, at mean distortions of "
            f"{span(d_lbfgs.min(), d_lbfgs.max(), '{:.3f}')}, while the nearest training "
            "image of another class is "
            f"{far:.0f} times farther"),
        "why_differ": why,
        "paper_corr": f"{float(np.corrcoef(d_lbfgs.values, paper.values)[0, 1]):.2f}",
        "paper_d_range": span(paper.min(), paper.max(), "{:.3f}"),
    }


#: Sizes of the chapter "Intriguing properties" beyond the profile's, per profile: the
#: paper's small networks are cheap, so they train for more epochs than the profile's
#: default. ``None`` takes the profile's field (``n_attack``).
SIZES: dict[str, dict[str, Any]] = {
    "ci":  dict(epochs=10, ae_epochs=8, n_attack=100, min_norm_steps=100, adv_steps=2,
                top_k=8, purity_k=20, n_random=100),
    "cpu": dict(epochs=12, ae_epochs=12, n_attack=None, min_norm_steps=200,
                adv_steps=5, top_k=8, purity_k=20, n_random=200),
    "gpu": dict(epochs=50, ae_epochs=50, n_attack=None, min_norm_steps=500,
                adv_steps=10, top_k=8, purity_k=50, n_random=500),
}
