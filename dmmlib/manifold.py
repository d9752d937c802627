"""Data manifolds: autoencoders, exact tangent spaces, on/off-manifold decompositions.

The dimpled-manifold model says that adversarial perturbations point mostly
*off* the data manifold. To test it on images we approximate the manifold by
the image of an autoencoder's decoder, take the decoder's tangent space at
the code of each image (:func:`tangent_basis`, k forward-mode Jacobian-vector
products batched with :mod:`torch.func`), and split a perturbation into its
on- and off-manifold parts (:func:`split_on_off_manifold`). The baseline for
"mostly off" is a *random* k-subspace, which captures a norm fraction of
about sqrt(k / n) of any vector (:func:`random_subspace_baseline`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import torch
from torch import nn
from tqdm.auto import tqdm

from ._validate import (
    as_generator,
    check_basis,
    check_images,
    check_int,
    check_nonnegative,
    check_orthonormal,
    check_positive,
    check_tensor,
)
from .device import module_device
from .nulls import NullBand, band
from .ops import preserved_modes, working_dtype

__all__ = [
    "MLPAutoencoder",
    "ConvAutoencoder",
    "fit_autoencoder",
    "fit_autoencoder_cached",
    "decoder_jacobian",
    "tangent_basis",
    "tangent_basis_at",
    "Split",
    "split_on_off_manifold",
    "shuffled_basis_null",
    "support_matched_null",
    "random_orthonormal_basis",
    "random_subspace_fractions",
    "SubspaceBaseline",
    "random_subspace_baseline",
    "principal_angles",
]


# --------------------------------------------------------------------------- autoencoders
def _shape(input_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        shape: tuple[int, ...] = (input_shape,)
    elif isinstance(input_shape, Sequence) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in input_shape):
        shape = tuple(input_shape)
    else:
        raise TypeError(f"input_shape: expected an int or a tuple of ints, got {input_shape!r}")
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"input_shape: sizes must be positive, got {shape}")
    return shape


def _check_latent(latent_dim: int, d: int) -> None:
    if latent_dim > d:
        raise ValueError(f"latent_dim: a code of size {latent_dim} is larger than the input "
                         f"dimension D={d}; the learned manifold must have dimension <= D")


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder with a k-dimensional code.

    ``encoder`` maps inputs ``(N, *input_shape)`` in [0, 1] to codes (N, k);
    ``decoder`` maps codes back to ``(N, *input_shape)`` through a sigmoid, so its
    image (the learned manifold) lies in the unit box.

    Parameters
    ----------
    input_shape: shape of one input, e.g. ``(1, 28, 28)`` or ``784``.
    latent_dim: k, the dimension of the code (and of the learned manifold).
    hidden: widths of the encoder's hidden layers (the decoder mirrors them).
    """

    def __init__(self, input_shape: int | Sequence[int], latent_dim: int,
                 hidden: Sequence[int] = (256, 128)) -> None:
        super().__init__()
        self.input_shape = _shape(input_shape)
        self.latent_dim = check_int(latent_dim, "latent_dim", 1)
        if any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden):
            raise ValueError(f"hidden: widths must be positive ints, got {tuple(hidden)}")
        d = math.prod(self.input_shape)
        _check_latent(self.latent_dim, d)
        widths = [d, *hidden]
        enc: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            enc += [nn.Linear(a, b), nn.ReLU()]
        enc.append(nn.Linear(widths[-1], latent_dim))
        dec: list[nn.Module] = []
        rev = [latent_dim, *reversed(hidden)]
        for a, b in zip(rev[:-1], rev[1:], strict=True):
            dec += [nn.Linear(a, b), nn.ReLU()]
        dec += [nn.Linear(rev[-1], d), nn.Sigmoid(), nn.Unflatten(1, self.input_shape)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``: ``decoder(encoder(x))``."""
        return self.decoder(self.encoder(x))


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder with a k-dimensional code, for (C, H, W) images.

    Two stride-2 convolutions (H and W must be divisible by 4) and a linear
    layer encode; a linear layer and two transposed convolutions decode,
    followed by a sigmoid.

    Parameters
    ----------
    input_shape: ``(C, H, W)``.
    latent_dim: k.
    width: channels of the first convolution (the second has twice as many).
    """

    def __init__(self, input_shape: Sequence[int], latent_dim: int, width: int = 32) -> None:
        super().__init__()
        shape = _shape(input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape: expected (C, H, W), got {shape}")
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"input_shape: H and W must be divisible by 4, got {shape}")
        self.input_shape = shape
        self.latent_dim = check_int(latent_dim, "latent_dim", 1)
        _check_latent(self.latent_dim, c * h * w)
        check_int(width, "width", 1)
        flat = 2 * width * (h // 4) * (w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(flat, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, flat), nn.ReLU(),
            nn.Unflatten(1, (2 * width, h // 4, w // 4)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``: ``decoder(encoder(x))``."""
        return self.decoder(self.encoder(x))


def _progress(progress: bool | None) -> bool:
    from .train import progress_enabled

    return progress_enabled(progress)


def _inputs(x: object, name: str = "x") -> torch.Tensor:
    from .data import ImageDataset

    if isinstance(x, ImageDataset):
        x = x.x
    return check_images(x, name)


@torch.enable_grad()
def fit_autoencoder(
    ae: nn.Module,
    x: Any,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, list[float]]:
    """Train an autoencoder in place with Adam on the mean squared reconstruction error.

    Parameters
    ----------
    ae: a module mapping inputs to reconstructions of the same shape (e.g.
        :class:`MLPAutoencoder`); it stays on its device, batches are moved there.
    x: inputs in [0, 1], shape (N, ...), or an :class:`~dmmlib.data.ImageDataset`.
    epochs, batch_size, lr, weight_decay: the usual.
    seed: seeds the shuffling order (independent of the global RNG).
    progress: show a tqdm bar (``None``: on unless ``DMM_PROGRESS=0``).

    Returns
    -------
    ``{"loss": [...], "mse": [...]}``: per epoch, the mean training loss and the
    mean squared reconstruction error per pixel (identical for this loss; both
    keys exist so plots of :func:`dmmlib.train.fit` histories work unchanged).
    The module is left in the mode it was given in.
    """
    if not isinstance(ae, nn.Module):
        raise TypeError(f"ae: expected an nn.Module, got {type(ae).__name__}")
    xt = _inputs(x)
    check_int(epochs, "epochs", 0)
    check_int(batch_size, "batch_size", 1)
    check_positive(lr, "lr")
    check_nonnegative(weight_decay, "weight_decay")
    check_int(seed, "seed", 0)
    device = module_device(ae)
    from .train import _adam

    opt = _adam([p for p in ae.parameters() if p.requires_grad], lr, weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = xt.shape[0]
    history: dict[str, list[float]] = {"loss": [], "mse": []}
    bar = tqdm(total=epochs * ((n + batch_size - 1) // batch_size), desc="fit_autoencoder",
               disable=not _progress(progress), leave=False)
    with preserved_modes(ae), bar:  # every submodule's own flag comes back
        ae.train()
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            total = torch.zeros((), device=device, dtype=torch.float64)
            for start in range(0, n, batch_size):
                xb = xt[order[start : start + batch_size]].to(device, non_blocking=True)
                recon = ae(xb)
                if recon.shape != xb.shape:
                    raise ValueError(f"ae: reconstruction shape {tuple(recon.shape)} differs "
                                     f"from the input shape {tuple(xb.shape)}")
                loss = torch.nn.functional.mse_loss(recon, xb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach().double() * xb.shape[0]
                bar.update(1)
            mse = float(total) / n
            history["loss"].append(mse)
            history["mse"].append(mse)
            bar.set_postfix(mse=f"{mse:.4f}")
    return history


def fit_autoencoder_cached(
    ae: nn.Module,
    x: Any,
    *,
    name: str = "autoencoder",
    cache: bool = True,
    extra_key: dict[str, Any] | None = None,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """:func:`fit_autoencoder`, or load the weights an identical earlier run cached.

    The key hashes the architecture and *initial* weights, the data, every
    keyword passed on (except ``progress``), ``extra_key`` and the source of
    dmmlib, with :func:`dmmlib.cache.cached_training`.

    Returns
    -------
    dict with ``history``, ``seconds`` (training time of the run that produced
    the weights), ``cached`` (whether they were loaded) and ``path``.
    """
    from .cache import cached_training
    from .train import tensor_fingerprint

    if not isinstance(ae, nn.Module):
        raise TypeError(f"ae: expected an nn.Module, got {type(ae).__name__}")
    xt = _inputs(x)
    config = {"kind": "autoencoder", "x": tensor_fingerprint(xt),
              "fit": {k: v for k, v in fit_kwargs.items() if k != "progress"},
              "extra": extra_key or {}}
    return cached_training(ae, lambda: fit_autoencoder(ae, xt, **fit_kwargs), config,
                           name=name, cache=cache)


# --------------------------------------------------------------------------- tangent spaces
def _check_decoder(decoder: object) -> nn.Module:
    if not isinstance(decoder, nn.Module):
        raise TypeError(f"decoder: expected an nn.Module, got {type(decoder).__name__}")
    return decoder


def _check_codes(z: object, decoder: nn.Module) -> torch.Tensor:
    t = check_tensor(z, "z", min_ndim=2)
    if t.ndim != 2:
        raise ValueError(f"z: expected codes of shape (N, k), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError("z: empty batch")
    dev = module_device(decoder)
    if t.device.type != dev.type:
        raise ValueError(f"z: is on {t.device} but the decoder is on {dev}; move one of them")
    return t


def decoder_jacobian(decoder: nn.Module, z: torch.Tensor, *,
                     chunk_size: int | None = None) -> torch.Tensor:
    """The decoder's Jacobian at every code, shape (N, D, k), D = one output's size.

    Computed with forward-mode AD, ``vmap(jacfwd(decoder))``: k Jacobian-vector
    products, batched over the codes and over the k basis vectors, so the cost
    is about k forward passes of the whole batch. The decoder is evaluated in
    eval mode (its mode is restored afterwards); no weight gradients are
    computed or stored. Decoders must treat samples independently (no batch
    statistics), which holds in eval mode.

    Parameters
    ----------
    decoder: maps codes (N, k) to outputs (N, ...).
    z: codes, shape (N, k), on the decoder's device.
    chunk_size: process at most this many codes at a time (memory control).
    """
    dec = _check_decoder(decoder)
    zt = _check_codes(z, dec)
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", 1)
    params = {n: p.detach() for n, p in dec.named_parameters()}
    buffers = {n: b.detach() for n, b in dec.named_buffers()}

    def single(code: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(dec, (params, buffers), (code.unsqueeze(0),))
        return out.reshape(-1)

    zw = zt.detach().to(dtype=working_dtype(dec, zt.dtype))
    with preserved_modes(dec):
        dec.eval()
        with torch.no_grad():
            probe = dec(zw[:1])
        if not isinstance(probe, torch.Tensor) or probe.shape[0] != 1:
            shape = tuple(probe.shape) if isinstance(probe, torch.Tensor) else type(probe).__name__
            raise ValueError(f"decoder: must map codes (N, k) to one tensor (N, ...), got {shape}")
        jac = torch.func.vmap(torch.func.jacfwd(single), chunk_size=chunk_size)(zw)
    return jac


def tangent_basis(decoder: nn.Module, z: torch.Tensor, *,
                  chunk_size: int | None = None) -> torch.Tensor:
    """Orthonormal basis of the decoder's tangent space at every code, shape (N, D, k).

    The columns span the image of the decoder's Jacobian
    (:func:`decoder_jacobian`) and are orthonormalised by a reduced QR
    decomposition. For a linear decoder ``z -> W z + b`` this is exactly an
    orthonormal basis of ``range(W)``. If the Jacobian is rank-deficient the
    basis still has k orthonormal columns, some of them arbitrary.

    Parameters
    ----------
    decoder: maps codes (N, k) to outputs (N, ...) (e.g. ``ae.decoder``).
    z: codes, shape (N, k), on the decoder's device.
    chunk_size: see :func:`decoder_jacobian`.
    """
    jac = decoder_jacobian(decoder, z, chunk_size=chunk_size)
    q, _ = torch.linalg.qr(jac, mode="reduced")
    return q


def tangent_basis_at(ae: nn.Module, x: torch.Tensor, *,
                     chunk_size: int | None = None) -> torch.Tensor:
    """Tangent basis of an autoencoder's manifold at the projection of ``x``, (N, D, k).

    Encodes ``x`` with ``ae.encoder`` (in eval mode, without gradients) and
    returns :func:`tangent_basis` of ``ae.decoder`` at the codes.
    """
    if not isinstance(ae, nn.Module) or not hasattr(ae, "encoder") or not hasattr(ae, "decoder"):
        raise TypeError("ae: expected an autoencoder module with .encoder and .decoder")
    xt = check_images(x, "x")  # the same check as the attacks: pixels in [0, 1]
    if xt.shape[0] == 0:
        raise ValueError("x: empty batch")
    with preserved_modes(ae):
        ae.eval()
        with torch.no_grad():
            encoder = cast(nn.Module, ae.encoder)
            z = encoder(xt.to(device=module_device(ae), dtype=working_dtype(ae, xt.dtype)))
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != xt.shape[0]:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"ae: ae.encoder must return codes of shape ({xt.shape[0]}, k), "
                         f"got {shape}")
    return tangent_basis(cast(nn.Module, ae.decoder), z, chunk_size=chunk_size)


# --------------------------------------------------------------------------- decompositions
class Split(NamedTuple):
    """On/off-manifold parts of vectors ``v`` and their norm fractions.

    ``on`` and ``off`` have ``v``'s shape; ``on_fraction = ||on|| / ||v||`` and
    ``off_fraction = ||off|| / ||v||`` have shape (N,) and satisfy
    ``on_fraction**2 + off_fraction**2 = 1`` (both are 0 where ``v`` is 0).
    """

    on: torch.Tensor
    off: torch.Tensor
    on_fraction: torch.Tensor
    off_fraction: torch.Tensor


def split_on_off_manifold(v: torch.Tensor, basis: torch.Tensor) -> Split:
    """Split vectors into their projection on a tangent space and the rest.

    Parameters
    ----------
    v: vectors (N, ...) (e.g. adversarial perturbations or gradients); each is
        flattened to D = v[0].numel() entries.
    basis: orthonormal bases ``U`` (N, D, k) of the tangent spaces (see
        :func:`tangent_basis`, or a synthetic manifold's ``tangent``).

    Returns
    -------
    Split ``(on, off, on_fraction, off_fraction)`` with ``on = U U^T v`` and
    ``off = v - on``, computed in the promoted dtype of ``v`` and ``U``.
    """
    vt = check_tensor(v, "v", min_ndim=2)
    if isinstance(basis, torch.Tensor) and basis.device != vt.device:
        raise ValueError(f"basis: is on {basis.device} but v is on {vt.device}; "
                         "move one of them")
    Ut = check_basis(basis, vt, "basis")
    dtype = torch.promote_types(vt.dtype, Ut.dtype)
    flat = vt.reshape(vt.shape[0], -1).to(dtype)
    Ud = Ut.to(dtype)
    coeff = torch.einsum("ndk,nd->nk", Ud, flat)
    on = torch.einsum("ndk,nk->nd", Ud, coeff)
    off = flat - on
    norm = flat.norm(dim=1)
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    # ||on|| = ||U^T v|| exactly (U orthonormal), cheaper and more accurate.
    on_frac = torch.where(norm > 0, coeff.norm(dim=1) / safe, torch.zeros_like(norm))
    off_frac = torch.where(norm > 0, off.norm(dim=1) / safe, torch.zeros_like(norm))
    return Split(on.reshape(vt.shape), off.reshape(vt.shape), on_frac, off_frac)


def shuffled_basis_null(v: torch.Tensor, basis: torch.Tensor, *, shifts: int = 20,
                        level: float = 0.9) -> NullBand:
    """The median on-fraction of each vector against *another* point's tangent space.

    The null that shares a learned manifold's confounds: ``v[i]`` is measured
    against ``basis[(i - r) mod N]`` for ``r = 1 .. shifts`` (bases of the
    right shape, living on the same pixels, but of the wrong point), and the
    median over the N vectors is taken at each shift. A measure that reads
    above this band depends on the vector's *own* tangent space, not only on
    where the decoder puts its tangent spaces.

    Parameters
    ----------
    v : torch.Tensor
        Vectors (N, ...), N >= 2 (perturbations, gradients, steps).
    basis : torch.Tensor
        Orthonormal bases (N, D, k) at the N points, on ``v``'s device.
    shifts : int
        How many shifts (at most N - 1 are used).
    level : float
        Mass of the central band.

    Returns
    -------
    NullBand
        ``kind="shuffled tangent bases"``, ``n`` the number of shifts used.
    """
    vt = check_tensor(v, "v", min_ndim=2)
    if vt.shape[0] < 2:
        raise ValueError(f"v: need at least 2 vectors to shuffle bases, got {vt.shape[0]}")
    shifts = check_int(shifts, "shifts", 1)
    medians = [float(split_on_off_manifold(vt, basis.roll(r, 0)).on_fraction.median())
               for r in range(1, min(shifts, vt.shape[0] - 1) + 1)]
    return band(medians, kind="shuffled tangent bases", level=level)


def support_matched_null(x: torch.Tensor, basis: torch.Tensor, scale: torch.Tensor, *,
                         threshold: float = 0.0, draws: int = 50, level: float = 0.9,
                         seed: int = 0) -> NullBand:
    """The median on-fraction of random directions that live where the image does.

    A learned tangent space lives on an image's own pixels (a sigmoid decoder
    is flat on a saturated background), and so do the gradients of a
    classifier; an isotropic random direction does not, so beating it proves
    little. Here each image ``x[i]`` gets Gaussian directions ``g * scale *
    mask_i``, with ``mask_i`` its pixels above ``threshold`` (its support) and
    ``scale`` a per-pixel standard deviation (of the training data, say); their
    on-fraction against ``basis[i]`` is taken, the median over images is one
    draw of the null, and ``draws`` such medians make the band.

    Parameters
    ----------
    x : torch.Tensor
        The images (N, ...) the bases belong to.
    basis : torch.Tensor
        Orthonormal bases (N, D, k), ``D = x[0].numel()``, on ``x``'s device.
    scale : torch.Tensor
        Per-pixel scale, ``D`` entries (any shape), non-negative.
    threshold : float
        A pixel belongs to the support when it exceeds this value.
    draws : int
        Medians sampled.
    level : float
        Mass of the central band.
    seed : int
        Seeds a generator of its own (the global RNG is untouched).

    Returns
    -------
    NullBand
        ``kind="random directions on the image's support"``.

    Raises
    ------
    ValueError
        If ``scale`` has the wrong size or a negative entry, or an image has no
        pixel of its support where ``scale`` is positive.
    """
    xt = check_tensor(x, "x", min_ndim=2)
    flat = xt.reshape(xt.shape[0], -1)
    st = check_tensor(scale, "scale").reshape(-1).to(flat)
    if st.numel() != flat.shape[1]:
        raise ValueError(f"scale: expected {flat.shape[1]} entries (one per pixel), got "
                         f"{st.numel()}")
    if bool((st < 0).any()):
        raise ValueError("scale: must be non-negative")
    draws = check_int(draws, "draws", 1)
    weight = (flat > float(threshold)).to(flat) * st
    if bool((weight.sum(dim=1) == 0).any()):
        raise ValueError("x: an image has no support pixel (above threshold, positive scale); "
                         "lower the threshold")
    g = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    medians = []
    for _ in range(draws):  # a few dozen draws, each batched over all images
        v = torch.randn(flat.shape, generator=g, dtype=flat.dtype).to(flat.device) * weight
        medians.append(float(split_on_off_manifold(v, basis).on_fraction.median()))
    return band(medians, kind="random directions on the image's support", level=level)


def random_orthonormal_basis(N: int, n: int, k: int,
                             seed: int | torch.Generator | None = None,
                             *, dtype: torch.dtype = torch.float32,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """N independent uniformly random orthonormal k-frames in R^n, shape (N, n, k).

    QR of Gaussian matrices, with the signs of R's diagonal absorbed so the
    distribution is the uniform (Haar) one. Drawn on the CPU (reproducible
    across devices) and moved to ``device``; ``seed`` is an int, a CPU
    :class:`torch.Generator` or ``None`` (the global RNG).
    """
    check_int(N, "N", 1)
    check_int(n, "n", 1)
    check_int(k, "k", 1)
    if k > n:
        raise ValueError(f"k: must be <= n={n}, got {k}")
    gen = as_generator(seed, "cpu")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    g = torch.randn(N, n, k, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(g, mode="reduced")
    d = torch.diagonal(r, dim1=1, dim2=2)
    q = q * torch.where(d < 0, -1.0, 1.0).unsqueeze(1)
    return q.to(dtype=dtype, device=device)


def random_subspace_fractions(v: torch.Tensor, k: int,
                              seed: int | torch.Generator | None = None) -> Split:
    """:func:`split_on_off_manifold` of ``v`` against random k-subspaces (one per sample).

    The baseline for on/off fractions: a random k-subspace of R^D captures on
    average a norm fraction of about sqrt(k / D) of any vector. ``seed``: an
    int, a CPU :class:`torch.Generator` or ``None`` (the global RNG).
    """
    vt = check_tensor(v, "v", min_ndim=2)
    check_int(k, "k", 1)
    d = vt[0].numel()
    if k > d:
        raise ValueError(f"k: must be <= D={d} (the size of one vector), got {k}")
    U = random_orthonormal_basis(vt.shape[0], d, k, seed,
                                 dtype=torch.float64 if vt.dtype == torch.float64
                                 else torch.float32, device=vt.device)
    return split_on_off_manifold(vt, U)


class SubspaceBaseline(NamedTuple):
    """Norm fractions of a vector captured by a random k-subspace of R^n.

    ``expected_on = sqrt(k / n)`` and ``expected_off = sqrt(1 - k / n)`` are the
    root-mean-square values (exact); the ``*_mean`` / ``*_std`` fields are the
    Monte Carlo mean and standard deviation over ``n_samples`` draws.
    """

    expected_on: float
    expected_off: float
    on_mean: float
    on_std: float
    off_mean: float
    off_std: float


def random_subspace_baseline(n: int, k: int, *, n_samples: int = 10_000,
                             seed: int | torch.Generator | None = None) -> SubspaceBaseline:
    """How much of a vector a random k-subspace of R^n captures, in theory and by sampling.

    By rotational invariance, the fraction captured from a fixed unit vector by
    a uniformly random k-subspace is distributed like the norm of the first k
    coordinates of a uniformly random unit vector, which is what is sampled
    (O(n) per draw, no QR). ``seed``: an int, a CPU :class:`torch.Generator`
    or ``None`` (the global RNG).
    """
    check_int(n, "n", 1)
    check_int(k, "k", 1)
    check_int(n_samples, "n_samples", 2)
    if k > n:
        raise ValueError(f"k: must be <= n={n}, got {k}")
    gen = as_generator(seed, "cpu")
    g = torch.randn(n_samples, n, generator=gen, dtype=torch.float64)
    norm2 = (g * g).sum(1)
    on = ((g[:, :k] ** 2).sum(1) / norm2).sqrt()
    off = ((g[:, k:] ** 2).sum(1) / norm2).sqrt()
    return SubspaceBaseline(math.sqrt(k / n), math.sqrt(1 - k / n), float(on.mean()),
                            float(on.std()), float(off.mean()), float(off.std()))


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the column spaces of A and B.

    ``A`` (..., D, k) and ``B`` (..., D, m) need orthonormal columns (e.g.
    outputs of :func:`tangent_basis`); returns (..., min(k, m)). The largest
    angle is 0 exactly when the smaller space lies inside the larger one.
    Uses the sine formulation for accuracy at small angles.
    """
    At = check_tensor(A, "A", min_ndim=2)
    if isinstance(B, torch.Tensor) and B.device != At.device:
        raise ValueError(f"B: is on {B.device} but A is on {At.device}; move one of them")
    Bt = check_tensor(B, "B", min_ndim=2)
    if At.shape[:-1] != Bt.shape[:-1]:
        raise ValueError(f"B: shape {tuple(Bt.shape)} does not match A's {tuple(At.shape)} "
                         "except in the last dimension")
    check_orthonormal(At, "A")
    check_orthonormal(Bt, "B")
    dtype = torch.promote_types(At.dtype, Bt.dtype)
    At, Bt = At.to(dtype), Bt.to(dtype)
    if At.shape[-1] > Bt.shape[-1]:
        At, Bt = Bt, At
    # sines of the angles: singular values of (I - B B^T) A
    resid = At - Bt @ (Bt.transpose(-1, -2) @ At)
    sines = torch.linalg.svdvals(resid).clamp(0, 1)
    return torch.asin(sines).flip(-1)
