"""Random bias-free ReLU networks, many at once, and why one gradient step fools them.

The setting of Daniely and Schacham (2020), Bubeck, Cherapanamjeri, Gidel and
Tachet des Combes (2021) and Bartlett, Bubeck and Cherapanamjeri (2021): a
network ``f(x) = a . relu(W_L ... relu(W_1 x))`` with independent Gaussian
weights and no biases, evaluated at points ``x`` on the sphere of radius
``sqrt(d)`` in R^d. Such an ``f`` is positively homogeneous of degree 1
(``f(c x) = c f(x)`` for ``c > 0``), hence Euler's identity
``x . grad f(x) = f(x)`` holds wherever ``f`` is differentiable, and::

    |f(x)| / (||grad f(x)|| ||x||) = |cos angle(x, grad f(x))|.

This *linearity ratio* is the relative size ``||delta|| / ||x||`` of the
step ``delta = -f(x) grad f(x) / ||grad f(x)||^2`` that would bring ``f`` to
zero if ``f`` were linear. A gradient pointing in a "random" direction has a
cosine of order ``1 / sqrt(d)`` with ``x``: that is the whole argument, and
the functions here measure each piece of it.

* :func:`random_relu_networks` draws M networks at once (weights stacked
  along dim 0); :class:`RandomReLUNetworks` evaluates them and their input
  gradients with ``torch.func.vmap`` over networks and points.
* :func:`sphere_points` draws inputs uniformly on the sphere of radius ``sqrt(d)``.
* :func:`linearity_ratio`, :func:`one_step_attack`,
  :func:`crossing_along_gradient` and :func:`linearization_error` measure how
  linear the networks are and whether one gradient step flips the sign.
* :func:`relu_correlation` is the infinite-width prediction of how the
  correlation between the outputs at two inputs grows with depth (random deep
  networks become nearly constant), and :func:`loglog_fit` fits a power law
  with a bootstrap interval over networks.

Scales: the first layer has entries ``N(0, 1/d)`` (so ``w . x ~ N(0, 1)`` on
the sphere, as in Bubeck et al.), later hidden layers ``N(0, 2/fan_in)``
(He: the norm of the hidden vector is preserved on average) and the output
layer ``N(0, 1/fan_in)`` (or ``+-1/sqrt(fan_in)``). Because ``f`` is
homogeneous in every weight matrix, any other choice of scales multiplies
``f`` and its gradient by the same constant and changes none of the ratios
measured here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from .._validate import check_choice, check_int, check_nonnegative, check_positive, check_tensor

__all__ = [
    "RandomReLUNetworks",
    "random_relu_networks",
    "relu_network",
    "sphere_points",
    "linearity_ratio",
    "OneStep",
    "one_step_attack",
    "Crossing",
    "crossing_along_gradient",
    "linearization_error",
    "relu_correlation",
    "LogLogFit",
    "loglog_fit",
    "SIZES",
    "ARCHS", "PLACES", "sweep_dimension", "sweep_width", "sweep_bottleneck", "sweep_depth",
]

_DTYPES = (torch.float32, torch.float64)


def relu_network(weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """One bias-free ReLU network: ``a @ relu(W_L (...) relu(W_1 x))``.

    ``weights`` holds the hidden matrices ``W_l`` stored transposed, shape
    (fan_in, fan_out), so a layer is ``x @ W`` (no transposed copy in the hot
    loop), followed by the output vector ``a`` (fan_in,); ``x`` is one point (d,) or a batch
    (..., d); returns ``f`` of shape ``x.shape[:-1]``. This is the function
    :class:`RandomReLUNetworks` maps over networks and points with ``vmap``.
    """
    h = x
    for w in weights[:-1]:
        h = torch.relu(h @ w)
    return h @ weights[-1]


def _sum_with_values(weights: Sequence[torch.Tensor], x: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    # The points do not interact, so the gradient of the sum over points holds
    # every point's own input gradient (one backward pass instead of N).
    f = relu_network(weights, x)
    return f.sum(), f


class RandomReLUNetworks:
    """M bias-free ReLU networks of one architecture, weights stacked along dim 0.

    Attributes
    ----------
    weights: list of tensors: hidden layers (M, fan_in, fan_out) (the transpose
        of ``nn.Linear.weight``: a layer is ``h @ W``), then the output layer
        (M, fan_in).

    Calling the object evaluates every network at a shared batch ``x`` (N, d)
    or at one batch per network (M, N, d); the result has shape (M, N).
    """

    def __init__(self, weights: Sequence[torch.Tensor]) -> None:
        if not isinstance(weights, Sequence) or len(weights) < 2:
            raise TypeError("weights: expected a list of at least one hidden matrix and the "
                            "output vector")
        for i, w in enumerate(weights):
            check_tensor(w, f"weights[{i}]", min_ndim=2)
        m = weights[0].shape[0]
        fan_in = weights[0].shape[1] if weights[0].ndim == 3 else -1
        for i, w in enumerate(weights[:-1]):
            if w.ndim != 3 or w.shape[0] != m or w.shape[1] != fan_in:
                raise ValueError(f"weights[{i}]: expected shape ({m}, {fan_in}, fan_out), "
                                 f"got {tuple(w.shape)}")
            fan_in = w.shape[2]
        out = weights[-1]
        if out.ndim != 2 or out.shape != (m, fan_in):
            raise ValueError(f"weights[-1]: expected the output layer of shape ({m}, {fan_in}), "
                             f"got {tuple(out.shape)}")
        if len({(w.dtype, w.device) for w in weights}) != 1:
            raise ValueError("weights: all layers must share one dtype and device")
        self.weights = list(weights)

    # ------------------------------------------------------------ description
    def __len__(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def input_dim(self) -> int:
        """d, the input dimension."""
        return int(self.weights[0].shape[1])

    @property
    def widths(self) -> tuple[int, ...]:
        """The hidden widths, first to last."""
        return tuple(int(w.shape[2]) for w in self.weights[:-1])

    @property
    def depth(self) -> int:
        """Number of hidden (ReLU) layers."""
        return len(self.weights) - 1

    @property
    def device(self) -> torch.device:
        """The device of the weights."""
        return self.weights[0].device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights."""
        return self.weights[0].dtype

    def __repr__(self) -> str:
        return (f"RandomReLUNetworks({len(self)} networks, d={self.input_dim}, "
                f"widths={self.widths})")

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> "RandomReLUNetworks":
        """The same networks on another device and/or dtype."""
        return RandomReLUNetworks([w.to(device=device, dtype=dtype) for w in self.weights])

    def network(self, i: int) -> nn.Module:
        """Network ``i`` as an ``nn.Sequential`` of bias-free layers (a copy), e.g. for attacks.

        Its output has shape (N, 1).
        """
        check_int(i, "i", 0)
        if i >= len(self):
            raise ValueError(f"i: there are {len(self)} networks, got index {i}")
        layers: list[nn.Module] = []
        # skip_init: no random initialisation (it would draw from the global RNG),
        # the weights are copied in right away
        for w in self.weights[:-1]:
            lin = nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[2], bias=False,
                                     dtype=self.dtype, device=self.device)
            lin.weight.data.copy_(w[i].T)
            layers += [lin, nn.ReLU()]
        out = nn.utils.skip_init(nn.Linear, self.weights[-1].shape[1], 1, bias=False,
                                 dtype=self.dtype, device=self.device)
        out.weight.data.copy_(self.weights[-1][i][None])
        layers.append(out)
        return nn.Sequential(*layers).eval()

    # ------------------------------------------------------------ evaluation
    def _inputs(self, x: object) -> tuple[torch.Tensor, int | None]:
        xt = check_tensor(x, "x", min_ndim=2)
        d, m = self.input_dim, len(self)
        if xt.ndim == 2 and xt.shape[1] == d:
            return xt.to(device=self.device, dtype=self.dtype), None
        if xt.ndim == 3 and xt.shape[0] == m and xt.shape[2] == d:
            return xt.to(device=self.device, dtype=self.dtype), 0
        raise ValueError(f"x: expected shape (N, {d}) shared by all networks or ({m}, N, {d}), "
                         f"got {tuple(xt.shape)}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every network, shape (M, N), without gradients."""
        xt, x_dim = self._inputs(x)
        run = torch.func.vmap(relu_network, in_dims=(0, x_dim))
        with torch.no_grad():
            return run(self.weights, xt)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (M, N) and input gradients (M, N, d) of every network at every point.

        ``vmap`` over networks of ``grad`` of :func:`relu_network` summed over
        points: input gradients only, nothing touches ``.grad``. At a ReLU kink
        the gradient is that of PyTorch's ``relu`` (0 at 0).
        """
        xt, x_dim = self._inputs(x)
        per_net = torch.func.vmap(torch.func.grad(_sum_with_values, argnums=1, has_aux=True),
                                  in_dims=(0, x_dim))
        with torch.no_grad():
            grad, value = per_net([w.detach() for w in self.weights], xt.detach())
        return value, grad


def random_relu_networks(
    d: int,
    widths: Sequence[int],
    n_networks: int,
    *,
    seed: int = 0,
    output: str = "gaussian",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> RandomReLUNetworks:
    """Draw ``n_networks`` independent bias-free ReLU networks with Gaussian weights.

    Parameters
    ----------
    d: input dimension.
    widths: hidden widths, e.g. ``(512,)`` for the two-layer networks of
        Bubeck et al. (2021) or ``(512, 8, 512)`` for a bottleneck.
    n_networks: M, how many networks (stacked along dim 0).
    seed: seeds the weights (drawn on the CPU, so the same on every device).
    output: ``"gaussian"`` (output weights ``N(0, 1/k)``) or ``"sign"``
        (``+-1/sqrt(k)`` as in Bubeck et al.).
    dtype, device: of the weights.

    First layer ``N(0, 1/d)``, later hidden layers ``N(0, 2/fan_in)``; see the
    module docstring for why the scales do not matter for the ratios.
    """
    check_int(d, "d", 1)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise TypeError(f"widths: expected a non-empty sequence of ints, got {widths!r}")
    for w in widths:
        check_int(w, "widths", 1)
    check_int(n_networks, "n_networks", 1)
    check_int(seed, "seed", 0)
    check_choice(output, "output", ("gaussian", "sign"))
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    gen = torch.Generator().manual_seed(seed)
    dims = [d, *widths]
    weights = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        var = 1.0 / fan_in if i == 0 else 2.0 / fan_in
        layer = torch.randn(n_networks, fan_in, fan_out, generator=gen, dtype=dtype)
        weights.append(layer.mul_(math.sqrt(var)).to(device))
    k = dims[-1]
    if output == "gaussian":
        a = torch.randn(n_networks, k, generator=gen, dtype=dtype) / math.sqrt(k)
    else:
        a = (torch.randint(0, 2, (n_networks, k), generator=gen).to(dtype) * 2 - 1) / math.sqrt(k)
    weights.append(a.to(device))
    return RandomReLUNetworks(weights)


def sphere_points(
    n_points: int,
    d: int,
    *,
    n_sets: int | None = None,
    radius: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Points uniform on the sphere of radius ``sqrt(d)`` (or ``radius``) in R^d.

    Returns (n_points, d), or (n_sets, n_points, d) when ``n_sets`` is given
    (one independent set per network). Drawn on the CPU with ``seed``.
    """
    check_int(n_points, "n_points", 1)
    check_int(d, "d", 1)
    check_int(seed, "seed", 0)
    r = math.sqrt(d) if radius is None else check_positive(radius, "radius")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    shape = (n_points, d) if n_sets is None else (check_int(n_sets, "n_sets", 1), n_points, d)
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g = g * (r / g.norm(dim=-1, keepdim=True))
    return g.to(dtype=dtype, device=device)


def _broadcast_x(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """X (N, d) or (M, N, d) as (M, N, d) matching gradients ``like``."""
    x = x.to(device=like.device, dtype=like.dtype)
    return x.expand_as(like) if x.ndim == 2 else x


def linearity_ratio(f: torch.Tensor, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``|f(x)| / (||grad f(x)|| ||x||)`` per network and point, shape (M, N).

    For bias-free ReLU networks this is ``|cos angle(x, grad f(x))|`` (Euler's
    identity) and the relative size ``||delta|| / ||x||`` of the linear step
    to the sign change. NaN where the gradient vanishes (then ``f = 0`` too:
    every path through the network is switched off).
    """
    f = check_tensor(f, "f", min_ndim=2)
    g = check_tensor(grad, "grad", min_ndim=3)
    xt = _broadcast_x(check_tensor(x, "x", min_ndim=2), g)
    if g.shape[:2] != f.shape or xt.shape != g.shape:
        raise ValueError(f"f, grad, x: expected shapes (M, N), (M, N, d), (M, N, d) or (N, d); "
                         f"got {tuple(f.shape)}, {tuple(g.shape)}, {tuple(x.shape)}")
    denom = g.norm(dim=-1) * xt.norm(dim=-1)
    return torch.where(denom > 0, f.abs() / denom, torch.full_like(denom, float("nan")))


class OneStep(NamedTuple):
    """Result of :func:`one_step_attack`, every field of shape (M, N).

    ``relative_size``: ``||delta|| / ||x||``; ``flipped``: ``sign f(x + delta)
    != sign f(x)`` (False where the gradient vanishes); ``f`` and ``f_after``:
    the outputs before and after; ``ratio``: :func:`linearity_ratio`.
    """

    relative_size: torch.Tensor
    flipped: torch.Tensor
    f: torch.Tensor
    f_after: torch.Tensor
    ratio: torch.Tensor


def _check_nets(nets: object) -> RandomReLUNetworks:
    if not isinstance(nets, RandomReLUNetworks):
        raise TypeError(f"nets: expected RandomReLUNetworks (see random_relu_networks), got "
                        f"{type(nets).__name__}")
    return nets


def _descent(nets: RandomReLUNetworks, x: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """f, unit direction towards the sign change, gradient norm, x (M, N, d), valid mask."""
    f, g = nets.value_and_grad(x)
    xw = _broadcast_x(x, g)
    gn = g.norm(dim=-1)
    valid = gn > 0
    u = -torch.sign(f)[..., None] * g / torch.where(valid, gn, torch.ones_like(gn))[..., None]
    return f, u, gn, xw, valid


def one_step_attack(nets: RandomReLUNetworks, x: torch.Tensor, *,
                    overshoot: float = 0.5) -> OneStep:
    """One gradient step ``delta = -(1 + overshoot) f(x) grad f(x) / ||grad f(x)||^2``.

    The step that would land exactly on ``f = 0`` if ``f`` were linear,
    lengthened by ``1 + overshoot`` (a ReLU network bends away from its tangent
    along this direction, so the exact linear step flips the sign only
    sometimes). ``x``: (N, d) shared or (M, N, d).
    """
    _check_nets(nets)
    nets._inputs(x)  # x: shape, dtype, finite, before any work
    overshoot = check_nonnegative(overshoot, "overshoot")
    f, u, gn, xw, valid = _descent(nets, x)
    t = (1 + overshoot) * f.abs() / torch.where(valid, gn, torch.ones_like(gn))
    t = torch.where(valid, t, torch.zeros_like(t))
    f_after = nets(xw + t[..., None] * u)
    xn = xw.norm(dim=-1)
    rel = t / xn
    flipped = valid & (torch.sign(f_after) != torch.sign(f)) & (f != 0)
    ratio = torch.where(valid, f.abs() / (gn * xn).clamp_min(torch.finfo(gn.dtype).tiny),
                        torch.full_like(gn, float("nan")))
    return OneStep(rel, flipped, f, f_after, ratio)


class Crossing(NamedTuple):
    """Result of :func:`crossing_along_gradient`, every field of shape (M, N).

    ``relative_distance``: ``t* / ||x||`` for the first sign change at
    ``x + t* u`` along the descent direction ``u`` (``max_multiple`` times the
    linear prediction where none was found); ``multiple``: ``t*`` divided by
    the linear prediction ``|f| / ||grad f||`` (1 for a linear function);
    ``found``: a sign change was found within ``max_multiple`` times the
    linear prediction.
    """

    relative_distance: torch.Tensor
    multiple: torch.Tensor
    found: torch.Tensor


def crossing_along_gradient(nets: RandomReLUNetworks, x: torch.Tensor, *,
                            max_multiple: float = 4.0, n_scan: int = 8,
                            tol: float = 1e-2) -> Crossing:
    """Where the sign of ``f`` first changes along the gradient line from ``x``.

    Along ``x + t u`` with ``u = -sign(f) grad f / ||grad f||`` and
    ``0 <= t <= max_multiple * t_lin`` (``t_lin = |f| / ||grad f||``, the
    linear prediction), a scan of ``n_scan`` equally spaced points finds the
    first interval with a sign change and a bisection shrinks it to
    ``tol * t_lin``. Crossings narrower than the scan spacing may be missed.
    """
    _check_nets(nets)
    nets._inputs(x)  # x: shape, dtype, finite, before any work
    max_multiple = check_positive(max_multiple, "max_multiple")
    check_int(n_scan, "n_scan", 1)
    tol = check_positive(tol, "tol")
    f, u, gn, xw, valid = _descent(nets, x)
    t_lin = torch.where(valid, f.abs() / torch.where(valid, gn, torch.ones_like(gn)),
                        torch.zeros_like(gn))
    s = torch.sign(f)
    found = torch.zeros_like(valid)
    lo = torch.zeros_like(t_lin)
    hi = torch.full_like(t_lin, max_multiple)
    prev = torch.zeros_like(t_lin)
    for j in range(1, n_scan + 1):          # multiples of t_lin, found stays at the first one
        m = max_multiple * j / n_scan
        flip = valid & (torch.sign(nets(xw + (m * t_lin)[..., None] * u)) != s)
        new = flip & ~found
        lo = torch.where(new, prev, lo)
        hi = torch.where(new, torch.full_like(hi, m), hi)
        found |= flip
        prev = torch.full_like(prev, m)
    iters = max(0, math.ceil(math.log2(max_multiple / n_scan / tol)))
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        flip = torch.sign(nets(xw + (mid * t_lin)[..., None] * u)) != s
        hi = torch.where(found & flip, mid, hi)
        lo = torch.where(found & ~flip, mid, lo)
    multiple = torch.where(found, hi, torch.full_like(hi, max_multiple))
    rel = multiple * t_lin / xw.norm(dim=-1)
    return Crossing(rel, multiple, found)


def linearization_error(nets: RandomReLUNetworks, x: torch.Tensor, *,
                        multiple: float = 1.0) -> torch.Tensor:
    """Relative error of the first-order prediction over the step to the sign change.

    With ``u`` the unit descent direction and ``t = multiple * |f| / ||grad f||``
    (``multiple = 1``: the linear step to ``f = 0``), returns
    ``|f(x + t u) - (f(x) - t ||grad f||)| / (t ||grad f||)`` per network and
    point, shape (M, N): 0 for a linear function, 1 when the change of ``f``
    is off by as much as the whole predicted change. NaN where the gradient
    vanishes.
    """
    _check_nets(nets)
    nets._inputs(x)  # x: shape, dtype, finite, before any work
    multiple = check_positive(multiple, "multiple")
    f, u, gn, xw, valid = _descent(nets, x)
    safe = torch.where(valid, gn, torch.ones_like(gn))
    t = multiple * f.abs() / safe
    f_after = nets(xw + t[..., None] * u)
    predicted = -torch.sign(f) * t * gn               # the linear change of f
    err = ((f_after - f) - predicted).abs() / (t * safe).clamp_min(torch.finfo(gn.dtype).tiny)
    return torch.where(valid & (f != 0), err, torch.full_like(err, float("nan")))


def relu_correlation(rho: float, depth: int) -> list[float]:
    """Infinite-width correlation of a random ReLU network's outputs at two inputs, by depth.

    Two inputs whose first-layer pre-activations have correlation ``rho`` (for
    a bias-free network: the cosine of the angle between them) have, after
    each ReLU layer of infinite width, hidden vectors with cosine
    ``kappa(rho) = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / pi`` (the
    arc-cosine kernel of Cho and Saul, 2009). Returns
    ``[rho, kappa(rho), kappa(kappa(rho)), ...]`` (``depth + 1`` values);
    entry ``L`` is the correlation over random networks of ``f(x)`` and
    ``f(x')`` for a network with ``L`` hidden layers. It tends to 1: deep
    random ReLU networks compute nearly the same value everywhere on the sphere.
    """
    r = float(rho)
    if not -1.0 <= r <= 1.0:
        raise ValueError(f"rho: must lie in [-1, 1], got {rho}")
    check_int(depth, "depth", 0)
    out = [r]
    for _ in range(depth):
        r = min(1.0, (math.sqrt(max(0.0, 1.0 - r * r)) + (math.pi - math.acos(r)) * r) / math.pi)
        out.append(r)
    return out


class LogLogFit(NamedTuple):
    """A power law ``y = exp(intercept) * x ** slope`` with a bootstrap interval for the slope."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float


def loglog_fit(x: Sequence[float] | torch.Tensor, y: torch.Tensor, *, n_boot: int = 1000,
               level: float = 0.95, seed: int = 0) -> LogLogFit:
    """Least-squares line through ``(log x, log y)`` with a bootstrap over repetitions.

    ``y`` has shape (R, P): one row per repetition (e.g. a network's median
    over points) at the P abscissae ``x``. The slope is fitted to the mean of
    ``log y`` over rows; the interval resamples rows with replacement
    (``n_boot`` times) and takes the central ``level`` quantiles.
    """
    try:
        xs = torch.as_tensor(x, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"x: expected a sequence of numbers or a tensor, got "
                        f"{type(x).__name__}") from None
    if not bool(torch.isfinite(xs).all()):
        raise ValueError("x: contains NaN or infinite values")
    ys = check_tensor(y, "y", min_ndim=2).to(torch.float64)
    if ys.ndim != 2 or ys.shape[1] != xs.numel():
        raise ValueError(f"y: expected shape (R, {xs.numel()}), got {tuple(ys.shape)}")
    if xs.numel() < 2 or bool((xs <= 0).any()) or bool((ys <= 0).any()):
        raise ValueError("x, y: need at least two abscissae and positive values for a log-log fit")
    check_int(n_boot, "n_boot", 1)
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    lx, ly = xs.log(), ys.log()
    a = torch.stack([lx, torch.ones_like(lx)], 1)

    def fit(rows: torch.Tensor) -> torch.Tensor:
        return torch.linalg.lstsq(a, rows.mean(0, keepdim=True).T).solution[:, 0]

    slope, intercept = fit(ly).tolist()
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    idx = torch.randint(0, ly.shape[0], (n_boot, ly.shape[0]), generator=gen)
    means = ly[idx].mean(1)                                  # (n_boot, P)
    boot = torch.linalg.lstsq(a.expand(n_boot, -1, -1), means.unsqueeze(-1)).solution[:, 0, 0]
    q = torch.quantile(boot, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=boot.dtype))
    return LogLogFit(float(slope), float(intercept), float(q[0]), float(q[1]))


# ------------------------------------------------------------------ the chapter's sweeps
#: The two architectures of the dimension sweep: hidden widths from the width ``k``.
ARCHS = {"two-layer": lambda k: (k,), "three hidden layers": lambda k: (k, k, k)}
#: Where the bottleneck of width ``m`` sits among layers of width ``k``.
PLACES = {"bottleneck first (m, k, k)": lambda k, m: (m, k, k),
          "bottleneck in the middle (k, m, k)": lambda k, m: (k, m, k)}


def sweep_dimension(dims: Sequence[int], width: int, n_nets: int, n_points: int, *,
                    overshoot: float = 0.5, device: torch.device | str | None = None
                    ) -> dict[str, dict[str, torch.Tensor]]:
    """One gradient step and the exact crossing, for each architecture of :data:`ARCHS` and ``d``.

    Returns
    -------
    dict
        Per architecture, (n_nets, len(dims)) float64 tensors (one row per
        network, one column per input dimension): ``rel`` (median step size
        over ``||x||``), ``flip`` (flip rate at ``overshoot``), ``flip0`` (flip
        rate of the exact linear step, overshoot 0), ``ratio``, ``multiple``,
        ``found`` and ``absf`` (median ``|f|``).
    """
    out = {}
    for a, (name, arch) in enumerate(ARCHS.items()):
        rows: dict[str, list] = {k: [] for k in ("rel", "flip", "flip0", "ratio", "multiple",
                                                 "found", "absf")}
        for i, d in enumerate(dims):
            nets = random_relu_networks(d, arch(width), n_nets, seed=1000 * a + i, device=device)
            x = sphere_points(n_points, d, n_sets=n_nets, seed=5000 + 1000 * a + i, device=device)
            step = one_step_attack(nets, x, overshoot=overshoot)
            cross = crossing_along_gradient(nets, x)
            rows["rel"].append(step.relative_size.median(1).values)
            rows["flip"].append(step.flipped.double().mean(1))
            rows["flip0"].append(one_step_attack(nets, x, overshoot=0.0).flipped.double().mean(1))
            rows["ratio"].append(step.ratio.median(1).values)
            rows["multiple"].append(cross.multiple.median(1).values)
            rows["found"].append(cross.found.double().mean(1))
            rows["absf"].append(step.f.abs().median(1).values)
            del nets, x
        out[name] = {k: torch.stack(v, 1).double().cpu() for k, v in rows.items()}
    return out


def sweep_width(d: int, widths: Sequence[int], n_nets: int, n_points: int, *,
                overshoot: float = 0.5, device: torch.device | str | None = None
                ) -> dict[str, torch.Tensor]:
    """Two-layer networks on R^d of growing width: the one step and the linearisation error.

    Returns
    -------
    dict
        (n_nets, len(widths)) float64 tensors ``ratio``, ``err50``, ``err90``
        (median and 90% quantile of the relative error) and ``flip``.
    """
    rows: dict[str, list] = {"ratio": [], "err50": [], "err90": [], "flip": []}
    for i, k in enumerate(widths):
        nets = random_relu_networks(d, (k,), n_nets, seed=20_000 + i, device=device)
        x = sphere_points(n_points, d, n_sets=n_nets, seed=25_000 + i, device=device)
        step = one_step_attack(nets, x, overshoot=overshoot)
        err = linearization_error(nets, x)
        rows["ratio"].append(step.ratio.nanmedian(1).values)
        rows["err50"].append(err.nanmedian(1).values)
        rows["err90"].append(torch.nanquantile(err, 0.9, dim=1))
        rows["flip"].append(step.flipped.double().mean(1))
    return {k: torch.stack(v, 1).double().cpu() for k, v in rows.items()}


def sweep_bottleneck(d: int, width: int, bottlenecks: Sequence[int], n_nets: int,
                     n_points: int, *, overshoot: float = 0.5,
                     device: torch.device | str | None = None
                     ) -> dict[str, dict[str, torch.Tensor]]:
    """Three hidden layers of ``width`` with one narrowed to each of ``bottlenecks`` (and none).

    For each place of :data:`PLACES` the last column is the network without a
    bottleneck (``m = width``).

    Returns
    -------
    dict
        Per place, float64 tensors with one column per bottleneck: ``ratio``,
        ``err90``, ``flip``, ``found``, ``dead`` of shape (n_nets, B + 1) and
        ``err90_pooled`` of shape (B + 1,).
    """
    out = {}
    for a, (name, arch) in enumerate(PLACES.items()):
        rows: dict[str, list] = {"ratio": [], "err90": [], "err90_pooled": [], "flip": [],
                                 "found": [], "dead": []}
        for i, m in enumerate([*bottlenecks, width]):
            nets = random_relu_networks(d, arch(width, m), n_nets, seed=30_000 + 100 * a + i,
                                        device=device)
            x = sphere_points(n_points, d, n_sets=n_nets, seed=35_000 + 100 * a + i,
                              device=device)
            step = one_step_attack(nets, x, overshoot=overshoot)
            err = linearization_error(nets, x)
            cross = crossing_along_gradient(nets, x)
            rows["ratio"].append(step.ratio.nanmedian(1).values)
            rows["err90"].append(torch.nanquantile(err, 0.9, dim=1))
            rows["err90_pooled"].append(torch.nanquantile(err.flatten(), 0.9))
            rows["flip"].append(step.flipped.double().mean(1))
            rows["found"].append(cross.found.double().mean(1))
            rows["dead"].append((step.f == 0).double().mean(1))
        out[name] = {k_: torch.stack(v, -1).double().cpu() for k_, v in rows.items()}
    return out


def sweep_depth(d: int, width: int, depths: Sequence[int], n_nets: int, n_points: int, *,
                overshoot: float = 0.5, device: torch.device | str | None = None
                ) -> dict[str, torch.Tensor]:
    """Networks of growing depth: correlation of ``f`` across inputs, constant signs, the step.

    Returns
    -------
    dict
        float64 tensors with one column per depth: ``corr`` and ``cos0`` (L,),
        ``constant``, ``flip``, ``ratio`` and ``err50`` (n_nets, L).
    """
    rows: dict[str, list] = {"corr": [], "cos0": [], "constant": [], "flip": [], "ratio": [],
                             "err50": []}
    for i, depth in enumerate(depths):
        nets = random_relu_networks(d, (width,) * depth, n_nets, seed=40_000 + i, device=device)
        x = sphere_points(n_points, d, n_sets=n_nets, seed=45_000 + i, device=device)
        step = one_step_attack(nets, x, overshoot=overshoot)
        err = linearization_error(nets, x)
        f = step.f
        a, b = f[:, 0::2], f[:, 1::2]          # independent pairs of inputs
        rows["corr"].append((a * b).mean() / ((a * a).mean() * (b * b).mean()).sqrt())
        xa, xb = x[:, 0::2], x[:, 1::2]
        rows["cos0"].append(((xa * xb).sum(-1) / (xa.norm(dim=-1) * xb.norm(dim=-1))).mean())
        rows["constant"].append(((f > 0).all(1) | (f < 0).all(1)).double())
        rows["flip"].append(step.flipped.double().mean(1))
        rows["ratio"].append(step.ratio.nanmedian(1).values)
        rows["err50"].append(err.nanmedian(1).values)
    return {k_: torch.stack(v, -1).double().cpu() for k_, v in rows.items()}


#: Sizes of the chapter "Random networks", per profile: networks per setting, inputs
#: per network, the input dimensions swept, the hidden width, and the settings of the
#: width, bottleneck and depth sweeps.
SIZES: dict[str, dict[str, Any]] = {
    "ci":  dict(n_nets=16, n_points=32, dims=[16, 64, 256, 1024, 4096], width=256,
                width_d=256, widths=[4, 16, 64, 256, 1024],
                bottleneck_d=512, bottlenecks=[4, 8, 16, 64],
                depth_d=128, depth_width=128, depths=[1, 2, 4, 8, 16, 32, 64]),
    "cpu": dict(n_nets=32, n_points=64, dims=[16, 64, 256, 1024, 4096, 8192], width=512,
                width_d=512, widths=[4, 16, 64, 256, 1024, 4096],
                bottleneck_d=1024, bottlenecks=[4, 8, 16, 64, 256],
                depth_d=128, depth_width=256, depths=[1, 2, 4, 8, 16, 32, 64, 128]),
    "gpu": dict(n_nets=64, n_points=256, dims=[16, 64, 256, 1024, 4096, 16384], width=1024,
                width_d=1024, widths=[4, 16, 64, 256, 1024, 4096, 16384],
                bottleneck_d=2048, bottlenecks=[4, 8, 16, 64, 256],
                depth_d=256, depth_width=256, depths=[1, 2, 4, 8, 16, 32, 64, 128]),
}
