"""On- and off-manifold attacks on natural images.

Introduced in the chapter "Experiments on natural images" (also used by "Is the
Dimpled Manifold Model right?").

The chapter approximates the image manifold by an autoencoder
(:mod:`dmmlib.manifold`) and asks how far a classifier's decision boundary
is *along* the manifold's tangent space and *across* it. This module holds
what that needs beyond :mod:`dmmlib.manifold` and :mod:`dmmlib.attacks`:

* :func:`load_with_fallback`: a dataset by name, or Fashion-MNIST with a
  message that says so (MNIST and CIFAR-10 need a network);
* :func:`image_classifier` and :func:`image_autoencoder`: the chapter's
  models for a given image shape;
* :func:`decode_gaussian_samples`: new images from an autoencoder;
* :func:`minimal_l2_restricted`: the smallest L2 perturbation that changes
  the decision, inside a subspace (tangent space), its complement, or
  unrestricted;
* :func:`onoff_experiment` / :func:`summarize_onoff`: the whole measurement
  for one classifier and one autoencoder, and its summary numbers;
* :func:`bootstrap_ci`: a percentile bootstrap for medians and means.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Sequence
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
    check_positive,
    output_size,
)
from ..ops import batch_view, eval_mode, flat_norm, margin, margin_and_grad, preserved_modes
from ..device import module_device

__all__ = [
    "load_with_fallback",
    "image_classifier",
    "image_autoencoder",
    "train_classifier_cached",
    "train_autoencoder_cached",
    "reconstruction_error",
    "decode_gaussian_samples",
    "RestrictedAttack",
    "minimal_l2_restricted",
    "onoff_experiment",
    "onoff_cached",
    "summarize_onoff",
    "bootstrap_ci",
]


def _load_jvp_decompositions() -> None:
    """Load torch's forward-mode decompositions once, without their FutureWarning.

    The first forward-mode derivative (:func:`dmmlib.manifold.tangent_basis`
    uses ``torch.func.jacfwd``) imports ``torch._decomp.decompositions_for_jvp``,
    which calls the deprecated ``torch.jit.script`` and warns from inside torch,
    nothing a caller can change; a notebook would show it on stderr. Importing
    this module loads them with that one warning filtered.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"`torch.jit.script` is deprecated",
            category=FutureWarning,
        )
        import torch._decomp.decompositions_for_jvp  # noqa: F401


_load_jvp_decompositions()


def _check_input_shape(input_shape: object, name: str = "input_shape") -> tuple[int, int, int]:
    """``(C, H, W)``: three positive ints."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(f"{name}: expected a sequence (C, H, W), got "
                        f"{type(input_shape).__name__}")
    if len(input_shape) != 3:
        raise ValueError(f"{name}: expected (C, H, W), got {tuple(input_shape)}")
    dims = []
    for v in input_shape:
        try:
            dims.append(operator.index(v))  # ints, NumPy and 0-d tensor integers
        except TypeError:
            raise TypeError(f"{name}: expected integer sizes, got {tuple(input_shape)}") from None
    c, h, w = (check_int(v, name, 1) for v in dims)
    return c, h, w


def _check_image_dataset(train_set: object, name: str = "train_set") -> Any:
    """An :class:`~dmmlib.data.ImageDataset` (anything with ``x``, ``y``, ``name``,
    ``input_shape`` and ``n_classes``), images in [0, 1]."""
    from ..data import ImageDataset

    if not isinstance(train_set, ImageDataset):
        raise TypeError(f"{name}: expected a dmmlib.data.ImageDataset, got "
                        f"{type(train_set).__name__}")
    check_images(train_set.x, f"{name}.x")
    return train_set


def _check_autoencoder(ae: object, name: str = "ae") -> nn.Module:
    check_model(ae, name)
    for part in ("encoder", "decoder"):
        if not isinstance(getattr(ae, part, None), nn.Module):
            raise TypeError(f"{name}: expected an autoencoder with .encoder and .decoder "
                            f"modules, got {type(ae).__name__}")
    return ae


# ------------------------------------------------------------------ data and models
def load_with_fallback(
    name: str,
    *,
    n_train: int | None,
    n_test: int | None,
    fallback: str = "fashion_mnist",
) -> tuple[Any, Any, str]:
    """Load ``name`` (``fashion_mnist``, ``mnist``, ``cifar10``), else ``fallback``.

    Introduced in the chapter "Experiments on natural images".

    Returns ``(train_set, test_set, message)``; the message says plainly which
    dataset was loaded and, after a fallback, why the requested one was not.
    """
    from ..data import DatasetUnavailableError, load_dataset

    try:
        train_set = load_dataset(name, train=True, n=n_train)
        test_set = load_dataset(name, train=False, n=n_test)
        return train_set, test_set, f"{train_set.name}: loaded from {train_set.source}"
    except DatasetUnavailableError as err:
        if fallback is None or fallback == name:
            raise
        reason = str(err).split(". ")[0]
        train_set = load_dataset(fallback, train=True, n=n_train)
        test_set = load_dataset(fallback, train=False, n=n_test)
        return (
            train_set,
            test_set,
            (
                f"{name} is not available here ({reason}); "
                f"this run used {train_set.name} instead"
            ),
        )


def image_classifier(
    input_shape: Sequence[int],
    n_classes: int = 10,
    *,
    kind: str = "auto",
    mean: float | Sequence[float] = 0.5,
    std: float | Sequence[float] = 0.25,
) -> nn.Module:
    """The chapter's classifier for images of ``input_shape`` (C, H, W).

    Introduced in the chapter "Experiments on natural images".

    ``kind="mlp"``: the 784-256-256-10 network of the public reproductions of
    the DMM experiments (any input size); ``"cnn"``: :class:`~dmmlib.models.SmallCNN`;
    ``"auto"``: the MLP for grey images, the CNN for colour.
    """
    from ..models import MLP, SmallCNN

    c, h, w = _check_input_shape(input_shape)
    check_int(n_classes, "n_classes", 1)
    if kind == "auto":
        kind = "mlp" if c == 1 else "cnn"
    if kind == "mlp":
        m = mean if isinstance(mean, (int, float)) else float(sum(mean) / len(mean))
        s = std if isinstance(std, (int, float)) else float(sum(std) / len(std))
        return MLP(c * h * w, hidden=(256, 256), n_classes=n_classes, mean=m, std=s)
    if kind == "cnn":
        if h != w:
            raise ValueError(f"input_shape: SmallCNN needs square images, got {h}x{w}")
        return SmallCNN(
            in_channels=c, n_classes=n_classes, image_size=h, mean=mean, std=std
        )
    raise ValueError(f"kind: expected 'auto', 'mlp' or 'cnn', got {kind!r}")


def image_autoencoder(
    input_shape: Sequence[int], latent_dim: int, kind: str = "mlp", *, width: int = 32
) -> nn.Module:
    """An :class:`~dmmlib.manifold.MLPAutoencoder` or :class:`~dmmlib.manifold.ConvAutoencoder`.

    Introduced in the chapter "Experiments on natural images".
    """
    from ..manifold import ConvAutoencoder, MLPAutoencoder

    shape = _check_input_shape(input_shape)
    check_int(latent_dim, "latent_dim", 1)
    if kind == "mlp":
        return MLPAutoencoder(shape, latent_dim)
    if kind == "conv":
        return ConvAutoencoder(shape, latent_dim, width=width)
    raise ValueError(f"kind: expected 'mlp' or 'conv', got {kind!r}")


def _channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(1).tolist(), flat.std(1).clamp_min(1e-3).tolist()


def train_classifier_cached(
    train_set: Any,
    *,
    kind: str = "auto",
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    perturb: (
        Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None
    ) = None,
    perturb_key: dict[str, Any] | None = None,
    name: str = "natural-classifier",
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build :func:`image_classifier` for ``train_set`` (init seeded by ``seed``) and train it, cached.

    Introduced in the chapter "Experiments on natural images".

    The normalisation constants are the training set's per-channel mean and
    standard deviation; initial weights depend only on ``seed`` (the global
    RNG is left as it was), so two chapters asking for the same model share
    one cache entry (:func:`dmmlib.train.train_cached`). ``perturb`` (e.g. an
    L2 PGD for adversarial training) must be described in ``perturb_key``.
    Returns ``(model in eval mode, run)``.
    """
    from ..train import train_cached

    _check_image_dataset(train_set)
    if kind not in ("auto", "mlp", "cnn"):
        raise ValueError(f"kind: expected 'auto', 'mlp' or 'cnn', got {kind!r}")
    if perturb is not None and not perturb_key:
        raise ValueError(
            "perturb_key: describe the perturb hook (it is part of the cache key)"
        )
    mean, std = _channel_stats(train_set.x)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = image_classifier(
            train_set.input_shape,
            train_set.n_classes,
            kind=kind,
            mean=mean if len(mean) > 1 else mean[0],
            std=std if len(std) > 1 else std[0],
        )
    if device is not None:
        model = model.to(device)
    extra = {"dataset": train_set.name, "n": len(train_set)}
    if perturb is not None:
        if not perturb_key:
            raise ValueError(
                "perturb_key: describe the perturb hook (it is part of the cache key)"
            )
        extra["perturb"] = perturb_key
    run = train_cached(
        model,
        train_set,
        name=name,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        perturb=perturb,
        extra_key=extra,
    )
    model.eval()
    return model, run


def train_autoencoder_cached(
    train_set: Any,
    latent_dim: int,
    kind: str = "mlp",
    *,
    epochs: int,
    width: int = 32,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build :func:`image_autoencoder` (init seeded by ``seed``) and fit it, cached.

    Introduced in the chapter "Experiments on natural images".

    See :func:`dmmlib.manifold.fit_autoencoder_cached`; returns ``(ae in eval
    mode, run)``.
    """
    from ..manifold import fit_autoencoder_cached

    _check_image_dataset(train_set)
    check_int(latent_dim, "latent_dim", 1)
    if kind not in ("mlp", "conv"):
        raise ValueError(f"kind: expected 'mlp' or 'conv', got {kind!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = image_autoencoder(train_set.input_shape, latent_dim, kind, width=width)
    if device is not None:
        ae = ae.to(device)
    run = fit_autoencoder_cached(
        ae,
        train_set.x,
        name=f"natural-ae-{kind}-k{latent_dim}",
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        extra_key={"dataset": train_set.name},
    )
    ae.eval()
    return ae, run


@torch.no_grad()
def reconstruction_error(
    ae: nn.Module, x: torch.Tensor, batch_size: int = 1024
) -> torch.Tensor:
    """Per-image mean squared reconstruction error (N,), in eval mode (mode restored).

    Introduced in the chapter "Experiments on natural images".
    """
    ae = check_model(ae, "ae")
    xt = check_images(x, "x")
    check_int(batch_size, "batch_size", 1)
    dev = module_device(ae)
    with preserved_modes(ae):  # every submodule's own train/eval flag comes back
        ae.eval()
        out = [
            ((ae(xb.to(dev)) - xb.to(dev)) ** 2).flatten(1).mean(1).to(xt.device)
            for xb in xt.split(batch_size)
        ]
    return torch.cat(out)


@torch.no_grad()
def decode_gaussian_samples(
    ae: nn.Module, x: torch.Tensor, n: int, *, seed: int = 0
) -> torch.Tensor:
    """Decode ``n`` codes drawn from a Gaussian fitted to the codes of ``x``.

    Introduced in the chapter "Experiments on natural images".

    A plain autoencoder is not a generative model; a Gaussian with the mean
    and covariance of the training codes is the simplest way to see what the
    decoder's manifold holds away from the training images.
    """
    ae = _check_autoencoder(ae)
    xt = check_images(x, "x")
    if xt.shape[0] < 2:
        raise ValueError(f"x: a Gaussian fit needs at least 2 images, got {xt.shape[0]}")
    check_int(n, "n", 1)
    check_int(seed, "seed", 0)
    dev = module_device(ae)
    with preserved_modes(ae):  # every submodule's own train/eval flag comes back
        ae.eval()
        z = torch.cat([ae.encoder(xb.to(dev)) for xb in xt.split(1024)]).double().cpu()
        mean = z.mean(0)
        cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1])
        cov = cov + 1e-6 * torch.eye(z.shape[1], dtype=cov.dtype)
        chol = torch.linalg.cholesky(cov)
        g = torch.randn(
            n,
            z.shape[1],
            generator=torch.Generator().manual_seed(seed),
            dtype=torch.float64,
        )
        codes = (mean + g @ chol.T).to(dtype=next(ae.parameters()).dtype, device=dev)
        return ae.decoder(codes).to(xt.device)


# ------------------------------------------------------------------ restricted attack
class RestrictedAttack(NamedTuple):
    """Result of :func:`minimal_l2_restricted`, per sample.

    ``x_adv`` (like ``x``): ``x`` plus the smallest perturbation found, scaled
    back to the decision boundary (just across it); ``norm`` (N,): its L2
    norm (``inf`` where none was found); ``found`` (N,) bool.
    """

    x_adv: torch.Tensor
    norm: torch.Tensor
    found: torch.Tensor


def _projector(
    U: torch.Tensor | None, complement: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    if U is None:
        return lambda v: v

    def project(v: torch.Tensor) -> torch.Tensor:
        flat = v.reshape(v.shape[0], -1)
        inside = torch.einsum("ndk,nk->nd", U, torch.einsum("ndk,nd->nk", U, flat))
        return (flat - inside if complement else inside).reshape(v.shape)

    return project


def minimal_l2_restricted(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    subspace: torch.Tensor | None = None,
    *,
    complement: bool = False,
    steps: int = 100,
    gamma: float = 0.05,
    final_gamma: float = 0.001,
    step_size: float = 0.5,
    final_step_size: float = 0.02,
    refine: int = 12,
) -> RestrictedAttack:
    """The smallest L2 perturbation inside a subspace that changes the decision.

    Introduced in the chapter "Experiments on natural images".

    A minimum-norm attack in the style of FMN (Pintor et al. 2021, see
    :func:`dmmlib.attacks.minimal_l2`) whose every step is projected onto
    ``span(U)`` (the tangent space: "on-manifold") or, with
    ``complement=True``, onto its orthogonal complement ("off-manifold");
    with ``subspace=None`` it is unrestricted. Steps descend the logit margin
    ``z_y - max_{j != y} z_j`` along the projected gradient, inside an L2
    ball whose radius shrinks by ``1 - gamma`` while the point is adversarial
    and grows by ``1 + gamma`` (or jumps to the linear estimate of the
    distance, before the first success) otherwise; step sizes are relative to
    the radius, and both follow cosine schedules. The smallest adversarial
    perturbation found is finally scaled back to the boundary by bisection
    (``refine`` halvings).

    Pixels are **not** clipped to [0, 1]. The attack measures the geometry of
    the decision boundary around ``x``; with the box constraint most tangent
    directions are blocked outright at black pixels (which may only grow),
    which would measure the box rather than the manifold. Use it the same
    way for the unrestricted and both restricted searches.

    Parameters
    ----------
    model: classifier returning logits; runs in eval mode (modes restored).
    x: images (N, ...) in [0, 1].
    y: labels (N,); samples already misclassified get norm 0.
    subspace: orthonormal bases (N, D, k), D = x[0].numel(), or ``None``.
    complement: restrict to the orthogonal complement of ``span(U)``.
    steps: gradient steps (one forward and backward pass each).
    gamma, final_gamma: relative change of the radius per step (cosine schedule).
    step_size, final_step_size: step length relative to the radius (cosine schedule).
    refine: bisection halvings along the best perturbation (0: none).

    Returns
    -------
    RestrictedAttack ``(x_adv, norm, found)`` on ``x``'s device and dtype.
    """

    model = check_model(model)
    xt = check_images(x, "x")
    yt = check_labels(y, xt, "y", output_size(model, xt))
    check_int(steps, "steps", 1)
    check_int(refine, "refine", 0)
    for value, name in (
        (gamma, "gamma"),
        (final_gamma, "final_gamma"),
        (step_size, "step_size"),
        (final_step_size, "final_step_size"),
    ):
        check_positive(value, name)
    if gamma >= 1 or final_gamma >= 1:
        raise ValueError(f"gamma, final_gamma: must be < 1, got {gamma}, {final_gamma}")
    if complement and subspace is None:
        raise ValueError("complement: needs a subspace (pass subspace=U)")
    if subspace is not None:
        check_basis(subspace, xt, "subspace")
    dev = module_device(model)
    dtype = next(
        (p.dtype for p in model.parameters() if p.is_floating_point()), xt.dtype
    )
    xw = xt.detach().to(device=dev, dtype=dtype)
    yw = yt.detach().to(device=dev, dtype=torch.int64)
    U = None
    if subspace is not None:
        U = check_basis(subspace, xt, "subspace").detach().to(device=dev, dtype=dtype)
    project = _projector(U, complement)
    n = xw.shape[0]
    inf = torch.full((n,), float("inf"), device=dev, dtype=dtype)
    with eval_mode(model):
        delta = torch.zeros_like(xw)
        best = inf.clone()
        best_delta = torch.zeros_like(xw)
        eps = None
        for t in range(steps + 1):
            m, g = margin_and_grad(model, xw + delta, yw)
            adv = m < 0
            nrm = flat_norm(delta)
            better = adv & (nrm < best)
            best = torch.where(better, nrm, best)
            best_delta = torch.where(batch_view(better, xw), delta, best_delta)
            if t == steps:
                break
            gp = project(g)
            gn = flat_norm(gp)
            safe = torch.where(gn > 0, gn, torch.ones_like(gn))
            linear = nrm + m.clamp_min(0) / safe  # linear estimate of the distance
            cos = 0.5 * (1 + math.cos(math.pi * t / steps))
            gam = final_gamma + (gamma - final_gamma) * cos
            alpha = final_step_size + (step_size - final_step_size) * cos
            if eps is None:
                eps = torch.where(gn > 0, linear, torch.ones_like(linear)).clamp_min(
                    1e-6
                )
            else:
                eps = torch.where(
                    adv,
                    torch.minimum(eps * (1 - gam), best),
                    torch.where(
                        torch.isfinite(best),
                        eps * (1 + gam),
                        torch.maximum(linear, eps * (1 + gam)),
                    ),
                )
            direction = -gp / batch_view(safe, gp)
            delta = delta + batch_view(alpha * eps, xw) * direction
            delta = delta * batch_view(
                (eps / flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0), xw
            )
        found = torch.isfinite(best)
        # bisection along the best perturbation: back to the boundary
        lo = torch.zeros(n, device=dev, dtype=dtype)
        hi = torch.ones(n, device=dev, dtype=dtype)
        with torch.no_grad():
            for _ in range(refine):
                mid = 0.5 * (lo + hi)
                flipped = model(xw + batch_view(mid, xw) * best_delta).argmax(1) != yw
                hi = torch.where(flipped & found, mid, hi)
                lo = torch.where(flipped & found, lo, mid)
        best_delta = best_delta * batch_view(hi, xw)
        norm = torch.where(found, flat_norm(best_delta), inf)
    x_adv = (xw + best_delta).detach().to(device=xt.device, dtype=xt.dtype)
    return RestrictedAttack(
        x_adv, norm.to(device=xt.device, dtype=xt.dtype), found.to(xt.device)
    )


# ------------------------------------------------------------------ the experiment
def onoff_experiment(
    model: nn.Module,
    ae: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    pgd_eps: float,
    pgd_steps: int,
    attack_steps: int,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """The chapter's measurement for one classifier and one autoencoder.

    Introduced in the chapter "Experiments on natural images".

    On the correctly classified images of ``x``: tangent bases of the
    autoencoder (:func:`dmmlib.manifold.tangent_basis_at`); an L2 PGD attack
    (:func:`dmmlib.attacks.pgd`, budget ``pgd_eps``, in the box) and the
    on-manifold norm fraction of its perturbations, beside the same
    perturbations against random k-subspaces; and the three minimal-norm
    searches of :func:`minimal_l2_restricted` (unrestricted, tangent space,
    complement). Everything returned is a tensor, a number or a string, so
    the result can go through :func:`dmmlib.cache.cached_result`.
    """
    from ..attacks import pgd
    from ..manifold import (
        random_subspace_fractions,
        split_on_off_manifold,
        tangent_basis_at,
    )
    from ..train import predict

    model = check_model(model)
    ae = _check_autoencoder(ae)
    xt = check_images(x, "x")
    yt = check_labels(y, xt, "y", output_size(model, xt))
    check_nonnegative(pgd_eps, "pgd_eps")
    check_int(pgd_steps, "pgd_steps", 1)
    check_int(attack_steps, "attack_steps", 1)
    check_int(seed, "seed", 0)
    dev = module_device(model)
    correct = (predict(model, xt.to(dev)) == yt.to(dev)).cpu()
    xc, yc = xt[correct.to(xt.device)], yt[correct.to(yt.device)]
    if xc.shape[0] == 0:
        raise ValueError("x: the model classifies none of these images correctly")
    U = tangent_basis_at(ae, xc.to(module_device(ae))).to(dev)
    xd, yd = xc.to(dev), yc.to(dev)
    x_pgd, ok = pgd(
        model,
        xd,
        yd,
        pgd_eps,
        norm=2,
        steps=pgd_steps,
        return_success=True,
        seed=seed,
        progress=progress,
    )
    delta = x_pgd - xd
    split = split_on_off_manifold(delta, U)
    rand = random_subspace_fractions(
        delta.cpu(), U.shape[2], torch.Generator().manual_seed(seed)
    )
    with eval_mode(model):  # the gradient of the model as attacked (eval mode)
        g_split = split_on_off_manifold(margin_and_grad(model, xd, yd)[1], U)
    out: dict[str, Any] = {
        "n": int(xd[0].numel()),
        "k": int(U.shape[2]),
        "n_images": int(xt.shape[0]),
        "x": xc.cpu(),
        "y": yc.cpu(),
        "pgd_eps": float(pgd_eps),
        "pgd_success": ok.cpu(),
        "pgd_delta": delta.cpu(),
        "on_fraction_pgd": split.on_fraction.cpu(),
        "on_fraction_random": rand.on_fraction.cpu(),
        "on_fraction_grad": g_split.on_fraction.cpu(),
    }
    for name, sub, comp in (("full", None, False), ("on", U, False), ("off", U, True)):
        res = minimal_l2_restricted(
            model, xd, yd, sub, complement=comp, steps=attack_steps
        )
        out[f"norm_{name}"] = res.norm.cpu()
        out[f"found_{name}"] = res.found.cpu()
        out[f"x_adv_{name}"] = res.x_adv.cpu()
        out[f"pred_{name}"] = predict(model, res.x_adv).cpu()
    return out


def onoff_cached(
    model: nn.Module,
    ae: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    pgd_eps: float,
    pgd_steps: int,
    attack_steps: int,
    seed: int = 0,
    tag: str = "",
) -> dict[str, Any]:
    """:func:`onoff_experiment` through :func:`dmmlib.cache.cached_result`.

    Introduced in the chapter "Experiments on natural images".

    The key holds fingerprints of both models and the images and every
    setting, so two chapters measuring the same pair share one entry.
    """
    from ..cache import cached_result, module_fingerprint
    from ..train import tensor_fingerprint

    config = {
        "model": module_fingerprint(model),
        "ae": module_fingerprint(ae),
        "x": tensor_fingerprint(x),
        "y": tensor_fingerprint(y),
        "tag": tag,
        "pgd_eps": float(pgd_eps),
        "pgd_steps": pgd_steps,
        "attack_steps": attack_steps,
        "seed": seed,
    }
    return cached_result(
        "natural-onoff",
        config,
        lambda: onoff_experiment(
            model,
            ae,
            x,
            y,
            pgd_eps=pgd_eps,
            pgd_steps=pgd_steps,
            attack_steps=attack_steps,
            seed=seed,
        ),
    )


def summarize_onoff(
    result: dict[str, Any], n_boot: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Medians, ratios and baselines of an :func:`onoff_experiment` result.

    Introduced in the chapter "Experiments on natural images".

    Ratios are per-image ``norm_on / norm_full`` and ``norm_off / norm_full``
    (their medians, over images where both searches succeeded), beside the
    random-subspace baselines ``sqrt(n/k)`` and ``sqrt(n/(n-k))``; ``*_lo`` /
    ``*_hi`` are 95% bootstrap intervals of the medians.
    """
    if not isinstance(result, dict):
        raise TypeError(f"result: expected the dict returned by onoff_experiment, got "
                        f"{type(result).__name__}")
    needed = ("n", "k", "x", "pgd_success", "on_fraction_pgd", "on_fraction_random",
              "on_fraction_grad", *(f"{p}_{s}" for p in ("norm", "found")
                                    for s in ("full", "on", "off")))
    absent = [key for key in needed if key not in result]
    if absent:
        raise ValueError(f"result: not an onoff_experiment result, missing {absent}")
    check_int(n_boot, "n_boot", 1)
    check_int(seed, "seed", 0)
    n, k = int(result["n"]), int(result["k"])
    out: dict[str, float] = {
        "n": float(n),
        "k": float(k),
        "baseline_on": math.sqrt(k / n),
        "baseline_ratio_on": math.sqrt(n / k),
        "baseline_ratio_off": math.sqrt(n / (n - k)),
        "n_correct": float(result["x"].shape[0]),
        "pgd_success": float(result["pgd_success"].float().mean()),
    }
    for name in ("on_fraction_pgd", "on_fraction_random", "on_fraction_grad"):
        v = result[name].double()
        lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
        out[name] = float(v.median())
        out[name + "_mean"] = float(v.mean())
        out[name + "_lo"], out[name + "_hi"] = lo, hi
    for name in ("full", "on", "off"):
        found = result[f"found_{name}"]
        out[f"success_{name}"] = float(found.float().mean())
        norms = result[f"norm_{name}"][found].double()
        out[f"norm_{name}"] = float(norms.median()) if norms.numel() else float("nan")
    for name in ("on", "off"):
        both = result["found_full"] & result[f"found_{name}"]
        ratio = (result[f"norm_{name}"][both] / result["norm_full"][both]).double()
        if ratio.numel():
            out[f"ratio_{name}"] = float(ratio.median())
            out[f"ratio_{name}_lo"], out[f"ratio_{name}_hi"] = bootstrap_ci(
                ratio, n_boot=n_boot, seed=seed
            )
        else:
            out[f"ratio_{name}"] = out[f"ratio_{name}_lo"] = out[f"ratio_{name}_hi"] = (
                math.nan
            )
    return out


def bootstrap_ci(
    values: torch.Tensor,
    *,
    stat: str = "median",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (or ``stat="mean"``) of ``values``.

    Introduced in the chapter "Experiments on natural images".
    """
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"values: expected real numbers, got dtype {values.dtype}")
        v = values.detach().to("cpu", torch.float64).flatten()
    else:
        try:
            v = torch.as_tensor(values, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"values: expected a tensor or a sequence of numbers, got "
                            f"{type(values).__name__}") from None
    if stat not in ("median", "mean"):
        raise ValueError(f"stat: expected 'median' or 'mean', got {stat!r}")
    check_int(n_boot, "n_boot", 1)
    if not 0 < check_positive(level, "level") < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    check_int(seed, "seed", 0)
    # non-finite entries stand for "not found" (e.g. an attack's inf norm): dropped
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return math.nan, math.nan
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, v.numel(), (n_boot, v.numel()), generator=gen)
    samples = v[idx]
    s = samples.median(1).values if stat == "median" else samples.mean(1)
    a = (1 - level) / 2
    return float(s.quantile(a)), float(s.quantile(1 - a))
