"""Synthetic manifolds whose tangent spaces are known exactly.

Every generator returns a :class:`ManifoldDataset`: points ``x`` (N, n) on a
k-dimensional manifold embedded in R^n, labels ``y`` (N,) int64, and the
*exact* orthonormal tangent basis ``tangent`` (N, n, k) at every point, so the
on/off-manifold decomposition of a gradient (:mod:`dmmlib.manifold`) needs no
autoencoder. Everything is seeded: the same arguments give the same tensors.

Available manifolds
-------------------
:func:`linear_subspace`
    a random k-dimensional affine subspace of R^n;
:func:`sinusoidal_surface`
    a k-dimensional graph ``B c + h(c) v`` with a sinusoidal height ``h``;
:func:`sphere_patch`
    a geodesic cap of a k-sphere lying in a random (k+1)-dimensional subspace;
:func:`five_points_line`, :func:`checkerboard_plane`
    the two toy settings: the dimpled-manifold paper's five points on a line
    in R^2 (a 1-D manifold in a 2-D space), and Melamed, Yehudai and Vardi
    (2023)'s 5 x 5 checkerboard on the plane z = 0.5 in R^3 (a 2-D manifold in
    a 3-D space).

Labels are assigned by a rule on the intrinsic coordinates (see
:func:`label_coordinates`): alternating ``"intervals"`` along the first
coordinate, a ``"checkerboard"`` on the first two, or ``"random"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._validate import check_choice, check_int, check_nonnegative, check_positive, check_tensor

__all__ = [
    "ManifoldDataset",
    "LABEL_RULES",
    "orthonormal_basis",
    "label_coordinates",
    "linear_subspace",
    "sinusoidal_surface",
    "sphere_patch",
    "five_points_line",
    "checkerboard_plane",
]

LABEL_RULES = ("intervals", "checkerboard", "random")
_DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class ManifoldDataset:
    """Points on a synthetic manifold with their exact tangent spaces.

    Attributes
    ----------
    x: points, shape (N, n), float32 or float64.
    y: labels, shape (N,), int64.
    tangent: orthonormal tangent basis at every point, shape (N, n, k), same
        dtype as ``x``. For flat manifolds it is a broadcast (expanded) view of
        one (n, k) basis: clone it before writing into it.
    description: a human-readable description of the manifold and labels.
    coords: the intrinsic coordinates of the points, shape (N, k) (or
        ``None``); useful for plotting on the manifold.
    """

    x: torch.Tensor
    y: torch.Tensor
    tangent: torch.Tensor
    description: str
    coords: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_tensor(self.x, "x", min_ndim=2)
        if self.x.ndim != 2:
            raise ValueError(f"x: expected shape (N, n), got {tuple(self.x.shape)}")
        n_pts, n = self.x.shape
        if not isinstance(self.y, torch.Tensor) or self.y.dtype != torch.int64:
            raise TypeError("y: expected an int64 tensor of labels")
        if self.y.shape != (n_pts,):
            raise ValueError(f"y: expected shape ({n_pts},), got {tuple(self.y.shape)}")
        check_tensor(self.tangent, "tangent", min_ndim=3)
        if self.tangent.ndim != 3 or self.tangent.shape[:2] != (n_pts, n):
            raise ValueError(f"tangent: expected shape ({n_pts}, {n}, k), got "
                             f"{tuple(self.tangent.shape)}")
        if self.tangent.dtype != self.x.dtype:
            raise TypeError(f"tangent: dtype {self.tangent.dtype} differs from x's {self.x.dtype}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def ambient_dim(self) -> int:
        """n, the dimension of the space the manifold lives in."""
        return int(self.x.shape[1])

    @property
    def intrinsic_dim(self) -> int:
        """k, the dimension of the manifold."""
        return int(self.tangent.shape[2])

    @property
    def n_classes(self) -> int:
        """Number of classes (``max(y) + 1``)."""
        return int(self.y.max()) + 1 if len(self) else 0

    def to(self, device: torch.device | str) -> "ManifoldDataset":
        """The same dataset on ``device``."""
        coords = self.coords.to(device) if self.coords is not None else None
        return ManifoldDataset(self.x.to(device), self.y.to(device), self.tangent.to(device),
                               self.description, coords)


# --------------------------------------------------------------------------- helpers
def _check_dtype(dtype: object) -> torch.dtype:
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _generator(seed: object) -> torch.Generator:
    return torch.Generator().manual_seed(check_int(seed, "seed", 0))


def _offset(offset: object, n: int, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(offset, torch.Tensor):
        t = check_tensor(offset, "offset", min_ndim=0)
        if t.numel() != 1 and t.shape != (n,):
            raise ValueError(f"offset: expected a scalar or shape ({n},), got {tuple(t.shape)}")
        return t.to(dtype).reshape(-1).expand(n)
    if isinstance(offset, bool) or not isinstance(offset, (int, float)):
        raise TypeError(f"offset: expected a float or a tensor, got {type(offset).__name__}")
    if not math.isfinite(offset):
        raise ValueError(f"offset: must be finite, got {offset}")
    return torch.full((n,), float(offset), dtype=dtype)


def orthonormal_basis(n: int, k: int, seed: int = 0, *,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random (Haar-distributed) orthonormal basis of a k-subspace of R^n, shape (n, k).

    Computed in float64 by a QR decomposition of a Gaussian matrix (signs fixed so
    the distribution is uniform), then cast to ``dtype``.
    """
    check_int(n, "n", 1)
    check_int(k, "k", 1)
    if k > n:
        raise ValueError(f"k: must be <= n={n}, got {k}")
    _check_dtype(dtype)
    g = torch.randn(n, k, generator=_generator(seed), dtype=torch.float64)
    q, r = torch.linalg.qr(g, mode="reduced")
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
    return q.to(dtype)


def label_coordinates(coords: torch.Tensor, rule: str = "intervals", *, n_classes: int = 2,
                      cells: int = 4, extent: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Labels (N,) int64 from intrinsic coordinates ``coords`` (N, k) in [-extent, extent].

    Parameters
    ----------
    coords: intrinsic coordinates of the points.
    rule: ``"intervals"``: the first coordinate's range is cut into ``cells``
        equal intervals, labelled ``0, 1, ..., n_classes - 1, 0, 1, ...``;
        ``"checkerboard"``: the same on the first two coordinates, label
        ``(i + j) mod n_classes`` (needs k >= 2); ``"random"``: uniform labels.
    n_classes: number of classes (>= 2).
    cells: number of intervals per coordinate (>= 1).
    extent: half-width of the coordinate range.
    seed: seeds the ``"random"`` rule.
    """
    c = check_tensor(coords, "coords", min_ndim=2)
    if c.ndim != 2:
        raise ValueError(f"coords: expected shape (N, k), got {tuple(c.shape)}")
    check_choice(rule, "rule", LABEL_RULES)
    check_int(n_classes, "n_classes", 2)
    check_int(cells, "cells", 1)
    extent = check_positive(extent, "extent")
    if rule == "random":
        return torch.randint(n_classes, (c.shape[0],), generator=_generator(seed)).to(c.device)
    if rule == "checkerboard" and c.shape[1] < 2:
        raise ValueError("rule: 'checkerboard' needs an intrinsic dimension k >= 2; use "
                         "'intervals' for k = 1")
    used = c[:, :2] if rule == "checkerboard" else c[:, :1]
    idx = torch.floor((used.double() + extent) / (2 * extent) * cells).long().clamp_(0, cells - 1)
    return idx.sum(1) % n_classes


def _uniform_cube(n_points: int, k: int, extent: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n_points, k, generator=gen, dtype=torch.float64) * 2 - 1) * extent


def _describe_labels(rule: str, n_classes: int, cells: int) -> str:
    if rule == "random":
        return f"random labels ({n_classes} classes)"
    where = "first intrinsic coordinate" if rule == "intervals" else "first two coordinates"
    return f"{rule} labels on the {where} ({cells} cells, {n_classes} classes)"


def _common_checks(n: int, k: int, n_points: int, rule: str, n_classes: int, cells: int,
                   dtype: torch.dtype) -> None:
    check_int(n, "n", 1)
    check_int(k, "k", 1)
    check_int(n_points, "n_points", 1)
    check_choice(rule, "labels", LABEL_RULES)
    check_int(n_classes, "n_classes", 2)
    check_int(cells, "cells", 1)
    _check_dtype(dtype)


# --------------------------------------------------------------------------- manifolds
def linear_subspace(
    n: int,
    k: int,
    n_points: int,
    *,
    labels: str = "intervals",
    n_classes: int = 2,
    cells: int = 4,
    offset: float | torch.Tensor = 0.5,
    extent: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ManifoldDataset:
    """Points on a random k-dimensional affine subspace ``offset + span(B)`` of R^n.

    Parameters
    ----------
    n, k: ambient and intrinsic dimension (1 <= k <= n).
    n_points: number of points N.
    labels, n_classes, cells: the labelling rule (see :func:`label_coordinates`).
    offset: added to every coordinate (scalar or (n,) tensor); 0.5 centres the
        points in the unit cube.
    extent: intrinsic coordinates are uniform in [-extent, extent]^k. The
        default ``0.5 / sqrt(k)`` keeps every point inside [0, 1]^n when
        ``offset`` is 0.5.
    seed: seeds the basis, the points and random labels.
    dtype: ``torch.float32`` (default) or ``torch.float64``.

    Returns
    -------
    ManifoldDataset with ``tangent`` the constant basis B (a broadcast view).
    """
    _common_checks(n, k, n_points, labels, n_classes, cells, dtype)
    if k > n:
        raise ValueError(f"k: must be <= n={n}, got {k}")
    ext = 0.5 / math.sqrt(k) if extent is None else check_positive(extent, "extent")
    off = _offset(offset, n, torch.float64)
    basis = orthonormal_basis(n, k, seed, dtype=torch.float64)
    gen = _generator(seed + 1)
    coords = _uniform_cube(n_points, k, ext, gen)
    x = off + coords @ basis.T
    y = label_coordinates(coords, labels, n_classes=n_classes, cells=cells, extent=ext,
                          seed=seed + 2)
    tangent = basis.to(dtype).unsqueeze(0).expand(n_points, n, k)
    desc = (f"{k}-dimensional linear subspace of R^{n} (random basis, seed {seed}), "
            f"{n_points} points uniform in [-{ext:.3g}, {ext:.3g}]^{k}, "
            f"{_describe_labels(labels, n_classes, cells)}")
    return ManifoldDataset(x.to(dtype), y, tangent, desc, coords.to(dtype))


def sinusoidal_surface(
    n: int,
    k: int,
    n_points: int,
    *,
    amplitude: float = 0.1,
    frequency: float = 1.0,
    labels: str = "intervals",
    n_classes: int = 2,
    cells: int = 4,
    offset: float | torch.Tensor = 0.5,
    extent: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ManifoldDataset:
    """A curved k-manifold: the graph ``offset + B c + h(c) v`` in R^n.

    ``[B | v]`` is a random orthonormal (n, k+1) basis and the height is
    ``h(c) = amplitude * mean_j sin(pi * frequency * c_j / extent)``, so
    ``frequency`` half-waves fit into the coordinate range along every axis.
    The exact tangent space at ``c`` is spanned by the columns of
    ``B + v grad h(c)^T``, orthonormalised (QR, in float64).

    Parameters
    ----------
    n, k: ambient and intrinsic dimension (needs k + 1 <= n).
    n_points: number of points.
    amplitude, frequency: the height function (amplitude 0 gives a flat subspace).
    labels, n_classes, cells: the labelling rule on ``c``.
    offset: added to every coordinate; 0.5 centres the manifold in the unit cube.
    extent: ``c`` is uniform in [-extent, extent]^k; the default ``0.35 / sqrt(k)``
        keeps the points in [0, 1]^n for ``amplitude <= 0.35`` and offset 0.5.
    seed, dtype: as in :func:`linear_subspace`.
    """
    _common_checks(n, k, n_points, labels, n_classes, cells, dtype)
    if k + 1 > n:
        raise ValueError(f"k: a curved k-manifold needs k + 1 <= n={n}, got k={k}")
    amp = check_nonnegative(amplitude, "amplitude")
    freq = check_positive(frequency, "frequency")
    ext = 0.35 / math.sqrt(k) if extent is None else check_positive(extent, "extent")
    off = _offset(offset, n, torch.float64)
    q = orthonormal_basis(n, k + 1, seed, dtype=torch.float64)
    basis, normal = q[:, :k], q[:, k]
    coords = _uniform_cube(n_points, k, ext, _generator(seed + 1))
    w = math.pi * freq / ext
    height = amp * torch.sin(w * coords).mean(1)                      # (N,)
    grad_h = amp * w * torch.cos(w * coords) / k                       # (N, k)
    x = off + coords @ basis.T + height[:, None] * normal
    jac = basis.unsqueeze(0) + normal[None, :, None] * grad_h[:, None, :]   # (N, n, k)
    tangent, _ = torch.linalg.qr(jac, mode="reduced")
    y = label_coordinates(coords, labels, n_classes=n_classes, cells=cells, extent=ext,
                          seed=seed + 2)
    desc = (f"{k}-dimensional sinusoidal surface in R^{n} (amplitude {amp:g}, frequency "
            f"{freq:g}, seed {seed}), {n_points} points, "
            f"{_describe_labels(labels, n_classes, cells)}")
    return ManifoldDataset(x.to(dtype), y, tangent.to(dtype), desc, coords.to(dtype))


def sphere_patch(
    n: int,
    k: int,
    n_points: int,
    *,
    radius: float = 0.4,
    max_angle: float = math.pi / 3,
    labels: str = "intervals",
    n_classes: int = 2,
    cells: int = 4,
    offset: float | torch.Tensor = 0.5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ManifoldDataset:
    """A geodesic cap of a k-sphere of radius ``radius`` in R^n.

    The sphere lies in a random (k+1)-dimensional subspace with orthonormal basis
    Q, centred at ``offset``; a point is ``offset + radius * Q u`` with
    ``u = (cos|t|, sin|t| t/|t|)`` the exponential map of the intrinsic
    coordinates ``t`` (uniform in the k-ball of radius ``max_angle`` around the
    pole). The exact tangent space is ``Q`` times the orthogonal complement of
    ``u``, obtained with a Householder reflection that maps the pole to ``u``.

    Parameters
    ----------
    n, k: ambient and intrinsic dimension (needs k + 1 <= n).
    n_points: number of points.
    radius: sphere radius (0.4 with offset 0.5 stays inside the unit cube).
    max_angle: geodesic radius of the cap, in radians, in (0, pi].
    labels, n_classes, cells: the labelling rule on ``t`` (range
        [-max_angle, max_angle]).
    offset, seed, dtype: as in :func:`linear_subspace`.
    """
    _common_checks(n, k, n_points, labels, n_classes, cells, dtype)
    if k + 1 > n:
        raise ValueError(f"k: a k-sphere needs k + 1 <= n={n}, got k={k}")
    rad = check_positive(radius, "radius")
    ang = check_positive(max_angle, "max_angle")
    if ang > math.pi:
        raise ValueError(f"max_angle: must lie in (0, pi], got {ang}")
    off = _offset(offset, n, torch.float64)
    q = orthonormal_basis(n, k + 1, seed, dtype=torch.float64)
    gen = _generator(seed + 1)
    direction = torch.randn(n_points, k, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-300)
    r = ang * torch.rand(n_points, 1, generator=gen, dtype=torch.float64) ** (1.0 / k)
    t = direction * r                                                  # (N, k) uniform in ball
    u = torch.cat([torch.cos(r), torch.sin(r) * direction], dim=1)     # (N, k+1) on the sphere
    x = off + rad * u @ q.T
    # Householder H with H e0 = u: H = I - 2 w w^T / |w|^2, w = e0 - u. H e1..ek span u^perp.
    e0 = torch.zeros(k + 1, dtype=torch.float64)
    e0[0] = 1.0
    w = e0 - u
    wn2 = (w * w).sum(1, keepdim=True)
    safe = wn2 > 1e-24
    w = torch.where(safe, w / wn2.clamp_min(1e-300).sqrt(), torch.zeros_like(w))
    eye = torch.eye(k + 1, dtype=torch.float64)
    house = eye - 2 * w[:, :, None] * w[:, None, :]                   # (N, k+1, k+1)
    tangent = q @ house[:, :, 1:]                                       # (N, n, k)
    y = label_coordinates(t, labels, n_classes=n_classes, cells=cells, extent=ang,
                          seed=seed + 2)
    desc = (f"geodesic cap (angle {ang:.3g} rad) of a {k}-sphere of radius {rad:g} in R^{n} "
            f"(seed {seed}), {n_points} points, {_describe_labels(labels, n_classes, cells)}")
    return ManifoldDataset(x.to(dtype), y, tangent.to(dtype), desc, t.to(dtype))


# --------------------------------------------------------------------------- toy settings
def five_points_line(*, dtype: torch.dtype = torch.float32) -> ManifoldDataset:
    """The dimpled-manifold paper's toy: five points on the line y = 0.5 in R^2 (1-D in 2-D).

    The points sit at x = 0.05, 0.30, 0.55, 0.80, 1.05 with alternating labels
    0, 1, 0, 1, 0; the tangent is the x-axis. (The last point lies just outside
    the unit square, as in the paper.)
    """
    _check_dtype(dtype)
    xs = torch.tensor([0.05, 0.30, 0.55, 0.80, 1.05], dtype=torch.float64)
    x = torch.stack([xs, torch.full_like(xs, 0.5)], dim=1)
    y = torch.tensor([0, 1, 0, 1, 0], dtype=torch.int64)
    tangent = torch.tensor([[1.0], [0.0]], dtype=dtype).unsqueeze(0).expand(5, 2, 1)
    return ManifoldDataset(x.to(dtype), y, tangent,
                           "five points on the line y = 0.5 in R^2 with alternating labels",
                           xs.to(dtype)[:, None])


def checkerboard_plane(
    cells: int = 5,
    points_per_cell: int = 1,
    *,
    z: float = 0.5,
    jitter: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ManifoldDataset:
    """Melamed et al. (2023)'s toy: a checkerboard on the plane z = 0.5 in R^3 (2-D in 3-D).

    With ``cells=5`` and one point per cell it is the setting of Melamed, Yehudai
    and Vardi (2023); the dimpled-manifold paper shows a 3-D setting of the same
    kind (a 2-D manifold in R^3).

    The unit square is cut into ``cells`` x ``cells`` squares labelled
    ``(i + j) mod 2``. With ``jitter=False`` the points lie on a regular
    sub-grid of each cell (one point per cell: its centre); with ``jitter=True``
    they are uniform inside the cell. The tangent is spanned by the x and y axes.

    Parameters
    ----------
    cells: squares per side (>= 1).
    points_per_cell: points per square (a perfect square when ``jitter`` is False).
    z: height of the plane.
    jitter, seed, dtype: random placement inside each cell, its seed, the dtype.
    """
    check_int(cells, "cells", 1)
    check_int(points_per_cell, "points_per_cell", 1)
    _check_dtype(dtype)
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not math.isfinite(z):
        raise TypeError(f"z: expected a finite float, got {z!r}")
    ij = torch.stack(torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij"),
                     dim=-1).reshape(-1, 2)                             # (C*C, 2)
    if jitter:
        local = torch.rand(cells * cells, points_per_cell, 2, generator=_generator(seed),
                           dtype=torch.float64)
    else:
        side = math.isqrt(points_per_cell)
        if side * side != points_per_cell:
            raise ValueError("points_per_cell: must be a perfect square (1, 4, 9, ...) "
                             f"unless jitter=True, got {points_per_cell}")
        g = (torch.arange(side, dtype=torch.float64) + 0.5) / side
        local = torch.stack(torch.meshgrid(g, g, indexing="ij"), dim=-1).reshape(1, -1, 2)
        local = local.expand(cells * cells, -1, -1)
    xy = (ij[:, None, :].double() + local) / cells                      # (C*C, P, 2)
    xy = xy.reshape(-1, 2)
    y = ((ij[:, 0] + ij[:, 1]) % 2).repeat_interleave(points_per_cell)
    x = torch.cat([xy, torch.full((xy.shape[0], 1), float(z), dtype=torch.float64)], dim=1)
    tangent = torch.eye(3, 2, dtype=dtype).unsqueeze(0).expand(x.shape[0], 3, 2)
    desc = (f"{cells}x{cells} checkerboard on the plane z = {z:g} in R^3, "
            f"{points_per_cell} point(s) per cell{' (jittered)' if jitter else ''}")
    return ManifoldDataset(x.to(dtype), y.long(), tangent, desc, xy.to(dtype))
