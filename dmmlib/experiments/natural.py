"""On- and off-manifold attacks on natural images.

The chapter approximates the image manifold by an autoencoder
(:mod:`dmmlib.manifold`) and asks how far a classifier's decision boundary
is *along* the manifold's tangent space and *across* it. This module holds
what that needs beyond :mod:`dmmlib.manifold` and :mod:`dmmlib.attacks`:

* :func:`load_with_fallback`: a dataset by name, or Fashion-MNIST with a
  message that says so (MNIST and CIFAR-10 need a network);
* :func:`image_classifier` and :func:`image_autoencoder`: the chapter's
  models for a given image shape;
* :func:`decode_gaussian_samples`: new images from an autoencoder;
* :func:`onoff_experiment` / :func:`summarize_onoff`: the whole measurement
  for one classifier and one autoencoder, and its summary numbers;
* :func:`bootstrap_ci`: a percentile bootstrap for medians and means.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

from .._validate import (
    check_images,
    check_int,
    check_labels,
    check_model,
    check_nonnegative,
    check_positive,
    output_size,
)
from ..device import module_device
from ..ops import eval_mode, margin_and_grad, preserved_modes

__all__ = [
    "load_with_fallback",
    "image_classifier",
    "image_autoencoder",
    "train_classifier_cached",
    "train_autoencoder_cached",
    "reconstruction_error",
    "decode_gaussian_samples",
    "onoff_experiment",
    "onoff_cached",
    "latent_attack",
    "summarize_onoff",
    "bootstrap_ci",
    "SIZES",
    "CRITICS_SIZES",
    "PGD_EPS",
    "ADV_EPS",
    "adv_perturb",
    "train_robust_classifier_cached",
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
    """Check an image dataset: anything with ``x`` in [0, 1], ``y``, ``name``, ...

    Like :class:`~dmmlib.data.ImageDataset`: ``input_shape`` and ``n_classes`` too.
    """
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
    return cast(nn.Module, ae)


# ------------------------------------------------------------------ data and models
def load_with_fallback(
    name: str,
    *,
    n_train: int | None,
    n_test: int | None,
    fallback: str = "fashion_mnist",
) -> tuple[Any, Any, str]:
    """Load ``name`` (``fashion_mnist``, ``mnist``, ``cifar10``), else ``fallback``.

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
    """An :class:`~dmmlib.manifold.MLPAutoencoder` or :class:`~dmmlib.manifold.ConvAutoencoder`."""
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
    """Build :func:`image_classifier` for ``train_set`` (seeded init) and train it, cached.

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
    """Per-image mean squared reconstruction error (N,), in eval mode (mode restored)."""
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
        encoder = cast(nn.Module, ae.encoder)
        z = torch.cat([encoder(xb.to(dev)) for xb in xt.split(1024)]).double().cpu()
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
        return cast(nn.Module, ae.decoder)(codes).to(xt.device)


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

    On the correctly classified images of ``x``: tangent bases of the
    autoencoder (:func:`dmmlib.manifold.tangent_basis_at`); an L2 PGD attack
    (:func:`dmmlib.attacks.pgd`, budget ``pgd_eps``, in the box) and the
    on-manifold norm fraction of its perturbations, beside the same
    perturbations against random k-subspaces; and the three minimal-norm
    searches of :func:`dmmlib.attacks.minimal_l2` without the box (FMN,
    ``box=False, refine=12``: unrestricted, tangent space, complement).

    Beside them, the measurements that control PGD's and the autoencoder's
    biases: the same PGD without its random start (``on_fraction_pgd_nostart``
    and ``pgd_nostart_delta``: a random start adds an isotropic part to every
    perturbation); the margin's input gradient itself (``grad``); the
    on-fraction of the unrestricted *minimal* perturbation
    (``on_fraction_minimal``); each clean image's distance from the
    autoencoder's surface, ``||x - D(E(x))||`` (``recon_dist``), to set beside
    the minimal norms; and the same distance for each minimal adversarial
    example (``recon_dist_{full,on,off}``), which says how far a step along
    the flat tangent plane carried the image off the curved surface.
    Everything returned is a tensor, a number or a string, so the result can
    go through :func:`dmmlib.cache.cached_result`.
    """
    from ..attacks import minimal_l2, pgd
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
    res_pgd = pgd(model, xd, yd, pgd_eps, norm=2, steps=pgd_steps, seed=seed,
                  progress=progress)
    ok = res_pgd.success
    delta = res_pgd.x_adv - xd
    split = split_on_off_manifold(delta, U)
    rand = random_subspace_fractions(
        delta.cpu(), U.shape[2], torch.Generator().manual_seed(seed)
    )
    nostart = pgd(model, xd, yd, pgd_eps, norm=2, steps=pgd_steps, random_start=False,
                  progress=progress)
    split_nostart = split_on_off_manifold(nostart.x_adv - xd, U)
    with eval_mode(model):  # the gradient of the model as attacked (eval mode)
        grad = margin_and_grad(model, xd, yd)[1]
    g_split = split_on_off_manifold(grad, U)
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
        "grad": grad.cpu(),
        "pgd_nostart_success": nostart.success.cpu(),
        "pgd_nostart_delta": (nostart.x_adv - xd).cpu(),
        "on_fraction_pgd_nostart": split_nostart.on_fraction.cpu(),
        "recon_dist": _distance_to_surface(ae, xc),
    }
    for name, sub, comp in (("full", None, False), ("on", U, False), ("off", U, True)):
        # unboxed: the geometry of the boundary, not of the box (see minimal_l2)
        res = minimal_l2(model, xd, yd, basis=sub, complement=comp, box=False, method="fmn",
                         steps=attack_steps, refine=12, progress=progress)
        out[f"norm_{name}"] = res.norm.cpu()
        out[f"found_{name}"] = res.success.cpu()
        out[f"x_adv_{name}"] = res.x_adv.cpu()
        out[f"pred_{name}"] = predict(model, res.x_adv).cpu()
        out[f"recon_dist_{name}"] = _distance_to_surface(ae, res.x_adv)
        if name == "full":
            out["on_fraction_minimal"] = split_on_off_manifold(res.x_adv - xd, U).on_fraction.cpu()
    return out


@torch.no_grad()
def _distance_to_surface(ae: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``||x - D(E(x))||`` per image (N,), on the CPU, in eval mode (modes restored).

    The L2 distance from each image to its reconstruction: how far the image
    lies from the autoencoder's surface (an upper bound on the distance to the
    surface; exact when the encoder finds the nearest point).
    """
    dev = module_device(ae)
    with preserved_modes(ae):
        ae.eval()
        return torch.cat([(ae(xb.to(dev)) - xb.to(dev)).flatten(1).norm(dim=1).cpu()
                          for xb in x.split(batch_size)])


def latent_attack(
    model: nn.Module,
    ae: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    budgets: Sequence[float],
    steps: int,
    progress: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Adversarial examples searched on the autoencoder's surface, in its latent space.

    The on-manifold attack of Stutz, Hein & Schiele (2019, "Disentangling
    adversarial robustness and generalization"), with the autoencoder standing
    in for their generative model: from the code ``z = E(x)``, L2 PGD on a
    latent perturbation ``zeta`` (``||zeta|| <= budget``, ``steps`` normalised
    gradient steps of ``2.5 * budget / steps``) raises the cross-entropy of
    ``model(D(z + zeta))`` against ``y``; every candidate is a decoded point,
    so it lies on the surface by construction. The budgets are tried from the
    smallest; an image keeps the first iterate that changes the label
    (early stop), at the smallest budget where one does.

    Parameters
    ----------
    model : nn.Module
        Classifier (logits), run in eval mode; modes are restored.
    ae : nn.Module
        Autoencoder with ``.encoder`` and ``.decoder``, run in eval mode.
    x : torch.Tensor
        Images (N, ...) in [0, 1].
    y : torch.Tensor
        True labels (N,).
    budgets : sequence of float
        Latent L2 budgets, positive.
    steps : int
        PGD steps per budget.
    progress : bool, optional
        tqdm bar over the budgets; ``None`` follows ``$DMM_PROGRESS``.

    Returns
    -------
    dict
        On ``x``'s device: ``x_adv`` (N, ...) the decoded examples (the
        reconstruction ``D(E(x))`` where none was found), ``success`` (N,),
        ``budget`` (N,) the budget that found it (``inf`` if none),
        ``latent_norm`` (N,) ``||zeta||``, ``dist_x`` (N,) ``||x_adv - x||``,
        ``dist_recon`` (N,) ``||x_adv - D(E(x))||``, and ``recon`` the
        reconstructions.
    """
    from tqdm.auto import tqdm

    from ..train import progress_enabled

    model = check_model(model)
    ae = _check_autoencoder(ae)
    xt = check_images(x, "x")
    yt = check_labels(y, xt, "y", output_size(model, xt))
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Sequence) or not budgets:
        raise TypeError(f"budgets: expected a non-empty sequence of floats, got {budgets!r}")
    eps = sorted(check_positive(b, "budgets") for b in budgets)
    check_int(steps, "steps", 1)
    dev = module_device(model)
    xd, yd = xt.to(dev), yt.to(dev)
    n = xd.shape[0]
    encoder = cast(nn.Module, ae.encoder)  # checked by _check_autoencoder
    decoder = cast(nn.Module, ae.decoder)
    with preserved_modes(ae), eval_mode(model):
        ae.eval()
        with torch.no_grad():
            z0 = encoder(xd.to(module_device(ae))).to(dev)
            recon = decoder(z0.to(module_device(ae))).to(dev).clamp(0, 1)
        x_adv = recon.clone()
        zeta_best = torch.zeros_like(z0)
        budget = torch.full((n,), math.inf, device=dev)
        found = torch.zeros(n, dtype=torch.bool, device=dev)
        bar = tqdm(total=len(eps), desc="latent attack", leave=False,
                   disable=not progress_enabled(progress))
        try:
            for e in eps:
                active = (~found).nonzero().squeeze(1)
                if active.numel() == 0:
                    break
                za, ya = z0[active], yd[active]
                zeta = torch.zeros_like(za)
                done = torch.zeros(active.numel(), dtype=torch.bool, device=dev)
                for _ in range(steps + 1):
                    with torch.enable_grad():
                        zg = zeta.detach().requires_grad_(True)
                        xa = decoder((za + zg).to(module_device(ae))).to(dev).clamp(0, 1)
                        logits = model(xa)
                        hit = (logits.argmax(1) != ya) & ~done
                        if bool(hit.any()):  # keep the first iterate that changes the label
                            idx = active[hit]
                            x_adv[idx] = xa.detach()[hit]
                            zeta_best[idx] = zg.detach()[hit]
                            budget[idx] = e
                            found[idx] = True
                            done |= hit
                        if bool(done.all()):
                            break
                        loss = nn.functional.cross_entropy(logits, ya, reduction="sum")
                        (g,) = torch.autograd.grad(loss, zg)
                    g = g.flatten(1)
                    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
                    zeta = zeta.flatten(1) + (2.5 * e / steps) * g
                    zeta = zeta * (e / zeta.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1)
                    zeta = zeta.reshape(za.shape)
                bar.update(1)
        finally:
            bar.close()
    out = {
        "x_adv": x_adv,
        "success": found,
        "budget": budget,
        "latent_norm": zeta_best.flatten(1).norm(dim=1),
        "dist_x": (x_adv - xd).flatten(1).norm(dim=1),
        "dist_recon": (x_adv - recon).flatten(1).norm(dim=1),
        "recon": recon,
    }
    return {k: v.to(xt.device) for k, v in out.items()}


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

    Ratios are per-image ``norm_on / norm_full`` and ``norm_off / norm_full``
    (their medians, over images where both searches succeeded), beside the
    random-subspace baselines ``sqrt(n/k)`` and ``sqrt(n/(n-k))``; ``*_lo`` /
    ``*_hi`` are 95% bootstrap intervals of the medians.
    """
    if not isinstance(result, dict):
        raise TypeError(f"result: expected the dict returned by onoff_experiment, got "
                        f"{type(result).__name__}")
    needed = ("n", "k", "x", "pgd_success", "on_fraction_pgd", "on_fraction_random",
              "on_fraction_grad", "on_fraction_pgd_nostart", "on_fraction_minimal",
              "recon_dist", *(f"{p}_{s}" for p in ("norm", "found", "recon_dist")
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
    for name in ("on_fraction_pgd", "on_fraction_random", "on_fraction_grad",
                 "on_fraction_pgd_nostart", "on_fraction_minimal"):
        v = result[name].double()
        if name == "on_fraction_minimal":
            v = v[result["found_full"]]
        if v.numel() == 0:
            out[name] = out[name + "_mean"] = out[name + "_lo"] = out[name + "_hi"] = math.nan
            continue
        lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
        out[name] = float(v.median())
        out[name + "_mean"] = float(v.mean())
        out[name + "_lo"], out[name + "_hi"] = lo, hi
    for name in ("full", "on", "off"):
        found = result[f"found_{name}"]
        out[f"success_{name}"] = float(found.float().mean())
        norms = result[f"norm_{name}"][found].double()
        out[f"norm_{name}"] = float(norms.median()) if norms.numel() else float("nan")
        dist = result[f"recon_dist_{name}"][found].double()
        out[f"recon_dist_{name}"] = float(dist.median()) if dist.numel() else float("nan")
    out["recon_dist"] = float(result["recon_dist"].double().median())
    found = result["found_full"]
    per_image = (result["recon_dist"][found] / result["norm_full"][found]).double()
    out["recon_over_minimal"] = float(per_image.median()) if per_image.numel() else math.nan
    out["recon_exceeds_minimal"] = (float((per_image > 1).double().mean())
                                    if per_image.numel() else math.nan)
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
    """Percentile bootstrap interval of the median (or ``stat="mean"``) of ``values``."""
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


# ------------------------------------------------------------------ shared chapter settings
# "Experiments on natural images" and "Critics" train the same autoencoder, model A and
# adversarially trained model; they share the cache only because these settings agree,
# so they are defined once, here.
_SHARED_SIZES: dict[str, dict[str, Any]] = {
    "ci":  dict(k=16, ae_epochs=15, clf_epochs=6, pgd_steps=20, attack_steps=40,
                adv_epochs=6, adv_steps=5),
    "cpu": dict(k=16, ae_epochs=25, clf_epochs=10, pgd_steps=40, attack_steps=100,
                adv_epochs=10, adv_steps=7),
    "gpu": dict(k=16, ae_epochs=50, clf_epochs=20, pgd_steps=50, attack_steps=200,
                adv_epochs=20, adv_steps=10),
}

#: Sizes of the chapter "Experiments on natural images", one dict per profile.
SIZES: dict[str, dict[str, Any]] = {
    "ci":  {**_SHARED_SIZES["ci"], "ks": (8, 16, 32), "conv_width": 32, "extra_datasets": ()},
    "cpu": {**_SHARED_SIZES["cpu"], "ks": (4, 16, 64), "conv_width": 32,
            "extra_datasets": ()},
    "gpu": {**_SHARED_SIZES["gpu"], "ks": (4, 8, 16, 32, 64, 128), "conv_width": 32,
            "extra_datasets": ("mnist", "cifar10")},
}

#: Sizes of the chapter "Critics" (the shared models' sizes plus its own).
CRITICS_SIZES: dict[str, dict[str, Any]] = {
    "ci":  {**_SHARED_SIZES["ci"], "ilyas_steps": 20},
    "cpu": {**_SHARED_SIZES["cpu"], "ilyas_steps": 40},
    "gpu": {**_SHARED_SIZES["gpu"], "ilyas_steps": 100},
}

#: L2 budget of the PGD whose perturbations are split (pixels in [0, 1]).
PGD_EPS = 2.0
#: L2 budget of adversarial training.
ADV_EPS = 1.0


def adv_perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int,
                eps: float = ADV_EPS) -> torch.Tensor:
    """The adversarial-training perturbation of both chapters: L2 PGD, seed 0.

    Parameters
    ----------
    model, x, y: the model being trained and one batch.
    steps: PGD iterations.
    eps: the L2 budget (default :data:`ADV_EPS`).

    Returns
    -------
    torch.Tensor
        The perturbed batch, like ``x``.
    """
    from ..attacks import pgd

    res = pgd(model, x, y, eps, norm=2, steps=steps, seed=0, progress=False)
    return res.x_adv


def train_robust_classifier_cached(
    train_set: Any,
    *,
    epochs: int,
    steps: int,
    eps: float = ADV_EPS,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The adversarially trained MLP of both chapters (:func:`adv_perturb` on every batch), cached.

    Parameters
    ----------
    train_set: the training images.
    epochs: training epochs.
    steps: PGD iterations of :func:`adv_perturb`.
    eps: its L2 budget.
    device: where to train.

    Returns
    -------
    tuple
        ``(model in eval mode, run)`` as :func:`train_classifier_cached`.
    """
    check_int(steps, "steps", minimum=1)
    check_positive(eps, "eps")

    def perturb(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return adv_perturb(m, xb, yb, steps=steps, eps=eps)

    return train_classifier_cached(
        train_set, kind="mlp", epochs=epochs, device=device, perturb=perturb,
        name="natural-classifier-adv",
        perturb_key={"attack": "pgd", "norm": 2, "eps": eps, "steps": steps, "seed": 0})
