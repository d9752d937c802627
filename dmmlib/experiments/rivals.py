"""Other geometric explanations: boundary tilting, adversarial spheres, concentration of measure.

The chapter "Other geometric explanations" sets three older pictures beside
the dimpled manifold, each with a null:

* **Boundary tilting** (Tanay and Griffin 2016): data on a k-dimensional
  subspace of R^n and a linear classifier ``w . x + b``. Its adversarial L2
  distance is ``|w . x + b| / ||w||``; within the subspace the boundary sits
  at ``|w . x + b| / ||w_on||`` (``w_on`` the on-subspace part of ``w``), so::

      adversarial distance = data margin * cos(tilt),  cos(tilt) = ||w_on|| / ||w||.

  :func:`tilt_task` draws the data (with a small, non-predictive noise off
  the subspace), :func:`affine_direction` reads ``(w, b)`` off any affine
  two-class model, :func:`tilt_geometry` measures the tilt and the three
  distances, :func:`centroid_direction` is Tanay and Griffin's reference
  (the nearest-centroid classifier) and :func:`tilt_experiment` trains
  logistic regressions over weight decays beside a ReLU network and runs
  :func:`dmmlib.geometry.dimple_profile` on both (:func:`locality_null`
  is the permutation null of its ``locality``).
* **Adversarial spheres** (Gilmer et al. 2018): :func:`sphere_data`,
  :func:`sphere_pgd` (PGD whose every iterate stays on the sphere of its
  input, inside an L2 ball), :func:`on_sphere_distance` (the smallest budget
  of a grid that succeeds), :func:`sphere_error_rate` and
  :func:`sphere_experiment`; the null :func:`cap_distance_null` is the
  distance to the error set if it were a spherical cap of the same measure,
  the set that concentration of measure makes the *farthest* from a random
  point (any other error set of that measure is closer).
* **Concentration of measure** (Fawzi, Fawzi and Fawzi 2018; Shafahi et al.
  2019): :func:`cap_median_distance` (falls like ``1/sqrt(n)``) beside the
  Gaussian half-space (``Phi^{-1}(1 - mu)`` in every dimension);
  :func:`noise_errors`, :func:`halfspace_distance` and
  :func:`halfspace_ratio_null` compare a trained network's adversarial
  distance with the half-space that has its error rate in Gaussian noise,
  and :func:`concentration_experiment` runs it on the Gaussian task of the
  old-mental-model chapter.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from .._validate import check_int, check_model, check_positive, check_tensor
from ..nulls import NullBand, band

__all__ = [
    "SIZES",
    "SPHERE_EPS",
    "TiltTask",
    "tilt_task",
    "affine_direction",
    "centroid_direction",
    "tilt_geometry",
    "locality_null",
    "tilt_experiment",
    "sphere_data",
    "sphere_pgd",
    "on_sphere_distance",
    "sphere_error_rate",
    "cap_median_distance",
    "cap_distance_null",
    "sphere_experiment",
    "sphere_null",
    "noise_errors",
    "halfspace_distance",
    "halfspace_ratio_null",
    "concentration_experiment",
]


# --------------------------------------------------------------------------- boundary tilting
class TiltTask(NamedTuple):
    """Two classes on a k-dimensional subspace of R^n, with a little noise off it.

    ``x`` (N, n) the points, ``y`` (N,) labels, ``basis`` (n, k) the
    orthonormal basis of the subspace, ``coords`` (N, k) the on-subspace
    coordinates (``x = coords @ basis.T + off-subspace noise``).
    """

    x: torch.Tensor
    y: torch.Tensor
    basis: torch.Tensor
    coords: torch.Tensor


def tilt_task(n: int, k: int, n_points: int, *, separation: float = 1.0, spread: float = 0.35,
              noise: float = 0.02, seed: int = 0) -> TiltTask:
    """Two overlapping classes along the first coordinate of a random k-dimensional subspace.

    The first coordinate is ``+-separation/2 + spread * N(0, 1)`` (the classes
    overlap a little, so the training set cannot be separated inside the
    subspace), the others ``N(0, 1/4)`` (not predictive), and every point gets
    isotropic noise of standard deviation ``noise`` in the ``n - k``
    directions off the subspace: low-variance, non-predictive directions in
    which a small training set *can* be separated. The basis depends only on
    ``(n, k)``, so sets drawn with different seeds share it.

    Returns
    -------
    TiltTask
        float32 tensors on the CPU.
    """
    from ..synthetic import orthonormal_basis

    n = check_int(n, "n", 2)
    k = check_int(k, "k", 1)
    if k >= n:
        raise ValueError(f"k: the subspace dimension must be below n = {n}, got {k}")
    check_int(n_points, "n_points", 2)
    separation = check_positive(separation, "separation")
    spread = check_positive(spread, "spread")
    noise = check_positive(noise, "noise") if noise != 0 else 0.0
    basis = orthonormal_basis(n, k, seed=7 * n + k, dtype=torch.float64)
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    y = torch.arange(n_points) % 2
    y = y[torch.randperm(n_points, generator=gen)]
    coords = 0.5 * torch.randn(n_points, k, generator=gen, dtype=torch.float64)
    coords[:, 0] = (2 * y - 1) * separation / 2 + spread * torch.randn(
        n_points, generator=gen, dtype=torch.float64)
    z = torch.randn(n_points, n, generator=gen, dtype=torch.float64)
    off = z - (z @ basis) @ basis.T
    x = coords @ basis.T + noise * off
    return TiltTask(x.float(), y, basis.float(), coords.float())


@torch.no_grad()
def affine_direction(model: nn.Module, n: int) -> tuple[torch.Tensor, float]:
    """``(w, b)`` of an affine two-class model: its logit margin ``z_1 - z_0 = w @ x + b``.

    Read off by evaluating the model at 0 and at the unit vectors (exact for
    an affine model whatever its parametrisation; a normalisation layer
    inside is accounted for). Returns ``w`` (n,) float64 on the CPU and ``b``.
    """
    model = check_model(model)
    n = check_int(n, "n", 1)
    from ..ops import eval_mode, working_dtype

    p = next(model.parameters())
    pts = torch.cat([torch.zeros(1, n), torch.eye(n)]).to(device=p.device,
                                                          dtype=working_dtype(model))
    with eval_mode(model):
        z = model(pts).double().cpu()
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"model: expected two logits, got output shape {tuple(z.shape)}")
    m = z[:, 1] - z[:, 0]
    return m[1:] - m[0], float(m[0])


def centroid_direction(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The nearest-centroid classifier ``(w, b)``: ``w = mean_1 - mean_0``, boundary midway.

    Tanay and Griffin's reference: its *deviation angle* is zero, and they
    measure a classifier's tilt against it.
    """
    xt = check_tensor(x, "x", min_ndim=2).double().cpu()
    yt = torch.as_tensor(y).cpu()
    if yt.shape != (xt.shape[0],) or not bool(((yt == 0) | (yt == 1)).all()):
        raise ValueError("y: expected labels 0/1, one per row of x")
    if int(yt.sum()) in (0, yt.numel()):
        raise ValueError("y: both classes must be present")
    m1, m0 = xt[yt == 1].mean(0), xt[yt == 0].mean(0)
    w = m1 - m0
    return w, float(-w @ (m1 + m0) / 2)


def tilt_geometry(w: torch.Tensor, b: float, basis: torch.Tensor, x: torch.Tensor
                  ) -> dict[str, torch.Tensor]:
    """Tilt of the hyperplane ``w @ x + b = 0`` against ``span(basis)`` and the distances at ``x``.

    Returns
    -------
    dict
        float64 tensors on the CPU: ``cos_tilt`` (scalar) ``||w_on|| / ||w||``;
        per point (N,): ``adversarial`` ``|w . x + b| / ||w||`` (the nearest
        boundary point, any direction), ``on`` ``|w . x + b| / ||w_on||`` (the
        nearest one inside the subspace: the data margin), ``off``
        ``|w . x + b| / ||w_off||`` (the nearest one off the subspace) and
        ``signed`` ``(w . x + b) / ||w||``. For ``x`` on the subspace,
        ``adversarial = on * cos_tilt`` exactly.
    """
    wt = check_tensor(w, "w").double().cpu().flatten()
    B = check_tensor(basis, "basis", min_ndim=2).double().cpu()
    xt = check_tensor(x, "x", min_ndim=2).double().cpu()
    if B.shape[0] != wt.numel() or xt.shape[1] != wt.numel():
        raise ValueError(f"basis, x: expected {wt.numel()} rows / columns like w, got basis "
                         f"{tuple(B.shape)} and x {tuple(xt.shape)}")
    w_on = B @ (B.T @ wt)
    w_off = wt - w_on
    s = xt @ wt + float(b)
    norm, n_on, n_off = wt.norm(), w_on.norm(), w_off.norm()
    inf = torch.full_like(s, math.inf)
    return {
        "cos_tilt": n_on / norm,
        "adversarial": s.abs() / norm,
        "on": s.abs() / n_on if n_on > 0 else inf,
        "off": s.abs() / n_off if n_off > 0 else inf,
        "signed": s / norm,
    }


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denom if denom > 0 else 0.0


def _affine_residual(profile: Any) -> tuple[torch.Tensor, torch.Tensor]:
    ok = profile.found
    c, h = profile.coords[ok], profile.height[ok]
    design = torch.cat([c, torch.ones(c.shape[0], 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(design, h[:, None]).solution
    return (h - (design @ coef).squeeze(1)).abs(), profile.nearest[ok]


def locality_null(profile: Any, *, draws: int = 2000, level: float = 0.9,
                  seed: int = 0) -> NullBand:
    """What :attr:`~dmmlib.geometry.DimpleProfile.locality` reads when bending ignores the data.

    The probes' distances to the nearest training point are shuffled among
    the probes (``draws`` times, a private generator) and the Spearman
    correlation with the boundary's absolute residual height recomputed: a
    boundary that bends, but not *at* the training points, reads inside
    this band.

    Parameters
    ----------
    profile : dmmlib.geometry.DimpleProfile
        The measured profile.
    """
    from ..geometry import DimpleProfile

    if not isinstance(profile, DimpleProfile):
        raise TypeError(f"profile: expected a DimpleProfile, got {type(profile).__name__}")
    draws = check_int(draws, "draws", 10)
    resid, nearest = _affine_residual(profile)
    if resid.numel() < 4:
        raise ValueError("profile: fewer than 4 probes found a boundary crossing")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    vals = [_spearman(resid, nearest[torch.randperm(nearest.numel(), generator=gen)])
            for _ in range(draws)]
    return band(vals, kind="shuffled probes", level=level)


def _train_two_class(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str,
                     steps: int, lr: float, weight_decay: float, seed: int) -> nn.Module:
    from ..train import train_cached

    train_cached(model, (x, y), name=name, epochs=steps, batch_size=x.shape[0], lr=lr,
                 weight_decay=weight_decay, optimizer="adam", seed=seed, progress=False)
    return model.eval()


def tilt_experiment(*, n: int, k: int, n_train: int, n_test: int, weight_decays: list[float],
                    seeds: int, steps: int, hidden: int, net_steps: int,
                    noise: float = 0.02, centroid_sets: int = 200,
                    device: torch.device | str | None = None
                    ) -> dict[str, Any]:
    """Logistic regressions over weight decays, nearest-centroid classifiers and a ReLU network.

    For each seed a training set of :func:`tilt_task` is drawn; a linear
    two-class model is trained (full-batch Adam, ``steps`` steps, cached) for
    every weight decay, and the nearest-centroid classifier is computed. Test
    points lie *on* the subspace. For seed 0, a ReLU network (two hidden
    layers of ``hidden``) is trained without weight decay for ``net_steps``
    steps, and :func:`dmmlib.geometry.dimple_profile` is run on it and on
    every linear model. Model initialisation seeds the
    global RNG.

    Returns
    -------
    dict
        ``rows``: one dict per (seed, model) with ``seed, model, weight_decay,
        train_acc, test_acc, cos_tilt, w_norm, d_adv, d_on, d_off, off_over_on``
        (medians over the test points) and ``identity_error`` (max relative
        error of ``adversarial = on * cos_tilt``); ``rescale_error`` (the
        largest change of the distances when ``w, b`` are multiplied by 10);
        ``cos_to_centroid`` per weight decay (seed 0: the cosine between
        ``w`` and the centroid direction); ``plane`` and ``net``: the dimple
        profiles' ``coords``, ``height``, ``found``, ``nearest``, ``bend``,
        ``locality`` and the locality null (median, low, high, level, draws)
        of the least regularised plane and of the network; ``plane_bends``
        (the bend of every linear model of seed 0); ``net_test_acc``;
        ``centroid_null``: ``off_over_on`` of the nearest-centroid classifier
        over ``centroid_sets`` fresh training sets (closed form, no training).
    """
    from ..geometry import dimple_profile
    from ..models import MLP

    rows: list[dict[str, Any]] = []
    cos_centroid: dict[str, float] = {}
    profiles: dict[str, Any] = {}
    rescale = 0.0
    test = tilt_task(n, k, n_test, noise=noise, seed=10_000)
    xt_on = test.coords.double() @ test.basis.double().T
    for s in range(seeds):
        task = tilt_task(n, k, n_train, noise=noise, seed=s)
        x, y = task.x.to(device), task.y.to(device)
        models_s: list[tuple[str, float, torch.Tensor, float, nn.Module | None]] = []
        for wd in weight_decays:
            torch.manual_seed(s)
            lin = MLP(n, (), 2).to(device)
            _train_two_class(lin, x, y, "rivals-tilt-linear", steps, 0.05, wd, s)
            w, b = affine_direction(lin, n)
            models_s.append(("logistic regression", wd, w, b, lin))
        wc, bc = centroid_direction(task.x, task.y)
        models_s.append(("nearest centroid", math.nan, wc, bc, None))
        for kind, wd, w, b, _ in models_s:
            g = tilt_geometry(w, b, task.basis, xt_on)
            pred_test = (g["signed"] > 0).long()
            pred_train = ((task.x.double() @ w + b) > 0).long()
            ident = ((g["adversarial"] - g["on"] * g["cos_tilt"]).abs()
                     / g["adversarial"].clamp_min(1e-12)).max()
            rows.append({"seed": s, "model": kind, "weight_decay": wd,
                         "train_acc": float((pred_train == task.y).double().mean()),
                         "test_acc": float((pred_test == test.y).double().mean()),
                         "cos_tilt": float(g["cos_tilt"]), "w_norm": float(w.norm()),
                         "d_adv": float(g["adversarial"].median()),
                         "d_on": float(g["on"].median()), "d_off": float(g["off"].median()),
                         "off_over_on": float((g["off"] / g["on"]).median()),
                         "identity_error": float(ident)})
            if s == 0 and kind == "logistic regression":
                cos_centroid[f"{wd:g}"] = float(w @ wc / (w.norm() * wc.norm()))
                g10 = tilt_geometry(10 * w, 10 * b, task.basis, xt_on)
                rescale = max(rescale, float((g10["adversarial"] - g["adversarial"]).abs().max()),
                              float((g10["on"] - g["on"]).abs().max()))
        if s == 0:
            torch.manual_seed(0)
            net = MLP(n, (hidden, hidden), 2).to(device)
            _train_two_class(net, x, y, "rivals-tilt-relu", net_steps, 0.01, 0.0, 0)
            with torch.no_grad():
                net_acc = float((net(test.x.to(device)).argmax(1).cpu() == test.y)
                                .double().mean())
            # probes on the subspace: the training points' projections (at the data)
            # and fresh on-subspace points (between them)
            probes = torch.cat([task.coords, test.coords]).double() @ task.basis.double().T
            basis = task.basis[None].expand(probes.shape[0], n, k)
            plane_bends = []
            for name, model in [*((f"plane {m[1]:g}", m[4]) for m in models_s[:-1]),
                                ("net", net)]:
                assert model is not None
                prof = dimple_profile(model, probes.float().to(device), basis.to(device),
                                      task.x.to(device), max_distance=50.0, n_scan=256)
                if name == "net" or name == f"plane {weight_decays[0]:g}":
                    null = locality_null(prof, seed=1)
                    profiles["net" if name == "net" else "plane"] = {
                        "coords": prof.coords, "height": prof.height, "found": prof.found,
                        "nearest": prof.nearest, "bend": prof.bend,
                        "locality": prof.locality,
                        "locality_null": [null.median, null.low, null.high, null.level, null.n]}
                if name != "net" and math.isfinite(prof.bend):
                    plane_bends.append(prof.bend)
    centroid_null = []
    for s in range(centroid_sets):
        task = tilt_task(n, k, n_train, noise=noise, seed=50_000 + s)
        wc, bc = centroid_direction(task.x, task.y)
        g = tilt_geometry(wc, bc, task.basis, xt_on)
        centroid_null.append(float((g["off"] / g["on"]).median()))
    return {"rows": rows, "rescale_error": rescale, "cos_to_centroid": cos_centroid,
            "plane": profiles["plane"], "net": profiles["net"], "net_test_acc": net_acc,
            "plane_bends": plane_bends, "centroid_null": centroid_null}


# --------------------------------------------------------------------------- adversarial spheres
def sphere_data(n: int, n_points: int, *, radii: tuple[float, float] = (1.0, 1.3),
                seed: int = 0, device: torch.device | str | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Points uniform on two concentric spheres of R^n, label = which sphere (Gilmer et al. 2018).

    Returns ``(x, y)``: (N, n) float32 points (half on each sphere, in random
    order) and (N,) labels 0 (radius ``radii[0]``) and 1 (radius ``radii[1]``).
    """
    n = check_int(n, "n", 2)
    n_points = check_int(n_points, "n_points", 1)
    if len(radii) != 2 or not all(float(r) > 0 for r in radii):
        raise ValueError(f"radii: expected two positive radii, got {radii!r}")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    z = torch.randn(n_points, n, generator=gen)
    y = torch.arange(n_points) % 2
    y = y[torch.randperm(n_points, generator=gen)]
    r = torch.tensor([float(radii[0]), float(radii[1])])[y]
    x = z / z.norm(dim=1, keepdim=True) * r[:, None]
    return x.to(device), y.to(device)


def _project_cap(v: torch.Tensor, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Nearest point of {||p|| = ||x||, ||p - x|| <= eps} to the direction of ``v``."""
    r = x.norm(dim=1, keepdim=True)
    u = x / r
    p = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12) * r
    # the cap: angle to x at most alpha, chord 2 r sin(alpha / 2) = eps
    alpha = 2 * torch.asin((eps[:, None] / (2 * r)).clamp(max=1.0))
    cos_a = (p * u).sum(1, keepdim=True) / r
    t = p - (p * u).sum(1, keepdim=True) * u
    t = t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
    inside = cos_a >= torch.cos(alpha)
    rotated = r * (torch.cos(alpha) * u + torch.sin(alpha) * t)
    return torch.where(inside, p, rotated)


def sphere_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, *,
               steps: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD on the cross-entropy whose every iterate stays on the sphere of its input.

    Each step moves along the normalised gradient (length ``2.5 eps / steps``),
    then projects onto the sphere ``||p|| = ||x||`` *and* the ball
    ``||p - x|| <= eps`` (their intersection is a cap of the sphere, projected
    onto in closed form). The first misclassified iterate is kept.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits for points (N, n).
    x, y : torch.Tensor
        Points (N, n) and labels (N,).
    eps : torch.Tensor
        L2 budget per point (N,).
    steps : int
        Gradient steps.

    Returns
    -------
    tuple
        ``(x_adv, success)``: points on the spheres (N, n) and (N,) bool.
    """
    from ..ops import eval_mode

    model = check_model(model)
    xt = check_tensor(x, "x", min_ndim=2)
    et = check_tensor(eps, "eps").to(xt)
    if et.shape != (xt.shape[0],):
        raise ValueError(f"eps: expected one budget per point ({xt.shape[0]},), got "
                         f"{tuple(et.shape)}")
    steps = check_int(steps, "steps", 1)
    alpha = 2.5 * et / steps
    best = xt.clone()
    done = torch.zeros(xt.shape[0], dtype=torch.bool, device=xt.device)
    adv = xt.clone()
    with eval_mode(model), torch.enable_grad():
        for _ in range(steps):
            a = adv.detach().requires_grad_(True)
            logits = model(a)
            loss = nn.functional.cross_entropy(logits, y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, a)
            with torch.no_grad():
                wrong = logits.argmax(1) != y
                new = wrong & ~done
                best[new] = a[new].detach()
                done |= wrong
                g = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                adv = _project_cap(a.detach() + alpha[:, None] * g, xt, et)
        with torch.no_grad():
            wrong = model(adv).argmax(1) != y
            new = wrong & ~done
            best[new] = adv[new]
            done |= wrong
    return best.detach(), done


def on_sphere_distance(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       eps_grid: list[float], *, steps: int = 50) -> torch.Tensor:
    """The L2 distance to the nearest error found on the sphere of each point.

    :func:`sphere_pgd` runs at every budget of ``eps_grid`` (one batched
    call); a point's distance is the length of the successful perturbation
    at the smallest budget that succeeds, ``inf`` where none does.

    Returns
    -------
    torch.Tensor
        (N,) float64 on the CPU.
    """
    grid = sorted(float(e) for e in eps_grid)
    if not grid or grid[0] <= 0:
        raise ValueError(f"eps_grid: expected positive budgets, got {eps_grid!r}")
    m, n = len(grid), x.shape[0]
    eps = torch.tensor(grid, device=x.device, dtype=x.dtype).repeat_interleave(n)
    adv, ok = sphere_pgd(model, x.repeat(m, 1), y.repeat(m), eps, steps=steps)
    dist = (adv - x.repeat(m, 1)).norm(dim=1).double().cpu()
    dist[~ok.cpu()] = math.inf
    return dist.view(m, n).min(0).values


@torch.no_grad()
def sphere_error_rate(model: nn.Module, n: int, radius: float, label: int, n_samples: int, *,
                      seed: int = 0, batch_size: int = 65_536) -> int:
    """How many of ``n_samples`` uniform points of the sphere of ``radius`` are not ``label``."""
    from ..ops import eval_mode

    model = check_model(model)
    check_int(n_samples, "n_samples", 1)
    p = next(model.parameters())
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    wrong = 0
    with eval_mode(model):
        for start in range(0, n_samples, batch_size):
            z = torch.randn(min(batch_size, n_samples - start), n, generator=gen)
            z = (z / z.norm(dim=1, keepdim=True) * radius).to(p.device, p.dtype)
            wrong += int((model(z).argmax(1) != label).sum())
    return wrong


def _cos_quantile(q: torch.Tensor, n: int) -> torch.Tensor:
    """Quantile of ``cos`` of the angle between a uniform point of S^{n-1} and a fixed axis."""
    from scipy.special import betaincinv

    a = (n - 1) / 2.0
    return torch.from_numpy(2 * betaincinv(a, a, q.double().numpy()) - 1)


def _cap_distances(q: torch.Tensor, mu: torch.Tensor, n: int, radius: float) -> torch.Tensor:
    # points below the cap {cos >= t0} of measure mu, at conditional level q in (0, 1)
    t0 = _cos_quantile(1 - mu, n)
    t = _cos_quantile(q * (1 - mu), n)
    theta = torch.arccos(t.clamp(-1, 1)) - torch.arccos(t0.clamp(-1, 1))
    return 2 * radius * torch.sin(theta.clamp_min(0) / 2)


def cap_median_distance(n: int, mu: float, radius: float = 1.0) -> float:
    """Median L2 distance from a uniform point of the sphere, outside a cap of measure mu, to it.

    Of all subsets of the sphere of measure ``mu``, the cap is the one whose
    neighbourhoods grow slowest (Levy's isoperimetric inequality): every
    other error set of that measure is at least as close to a random point,
    quantile by quantile. For fixed ``mu`` it falls like ``1/sqrt(n)``.
    """
    n = check_int(n, "n", 2)
    mu = check_positive(mu, "mu")
    if mu >= 1:
        raise ValueError(f"mu: expected a measure in (0, 1), got {mu}")
    d = _cap_distances(torch.tensor([0.5]), torch.tensor([mu], dtype=torch.float64), n,
                       check_positive(radius, "radius"))
    return float(d[0])


def cap_distance_null(n: int, spheres: list[tuple[float, int, int, int]], *,
                      draws: int = 2000, level: float = 0.9, max_distance: float = math.inf,
                      seed: int = 0) -> NullBand:
    """The median distance to the error set if on each sphere it were a cap of the measured measure.

    Parameters
    ----------
    n : int
        The dimension.
    spheres : list of (radius, errors, samples, m)
        Per sphere: its radius, the misclassified count among ``samples``
        uniform points (the error rate is drawn from its Jeffreys posterior
        ``Beta(errors + 1/2, samples - errors + 1/2)`` in every draw, so the
        band includes the uncertainty of the estimate) and ``m``, the number
        of attacked points whose median is compared.
    draws, level, seed
        Samples of the median, the band's mass, a private generator.
    max_distance : float
        Distances above it are clipped to it (the attack's largest budget).

    Returns
    -------
    NullBand
        ``kind="error set a cap of the same measure"``.
    """
    n = check_int(n, "n", 2)
    draws = check_int(draws, "draws", 10)
    import numpy as np

    rng = np.random.default_rng(check_int(seed, "seed", 0))  # its own stream
    parts = []
    for radius, errors, samples, m in spheres:
        mu = torch.from_numpy(rng.beta(errors + 0.5, samples - errors + 0.5, size=draws))
        mu = mu.clamp(1e-12, 1 - 1e-12)
        q = torch.from_numpy(rng.uniform(1e-9, 1 - 1e-9, size=(draws, int(m))))
        d = _cap_distances(q.flatten(), mu.repeat_interleave(int(m)), n, float(radius))
        parts.append(d.view(draws, int(m)))
    samples_all = torch.cat(parts, 1).clamp(max=max_distance)
    return band(samples_all.median(1).values, kind="error set a cap of the same measure",
                level=level)


def sphere_experiment(dims: list[int], *, n_train: int, epochs: int, hidden: int,
                      n_attack: int, eps_grid: list[float], steps: int, n_error: int,
                      radii: tuple[float, float] = (1.0, 1.3),
                      device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """Gilmer et al.'s concentric spheres: train, estimate the error rate, attack on the sphere.

    For each ``n``: a ReLU network (two hidden layers of ``hidden``) is
    trained (Adam, ``epochs`` over ``n_train`` points, cached), its error
    rate on each sphere estimated from ``n_error`` uniform points, and the
    correctly classified of ``n_attack`` fresh points attacked with
    :func:`on_sphere_distance`. Model initialisation seeds the global RNG.

    Returns
    -------
    list of dict
        One per ``n``: ``n, test_acc, errors`` (per sphere), ``n_error``,
        ``distances`` (list of the attacked points' distances, ``inf`` where
        the attack failed), ``radius_of`` (the sphere of each attacked point),
        ``median``, ``found`` (share of attacked points with an error found).
    """
    from ..models import MLP
    from ..train import train_cached

    rows = []
    for i, n in enumerate(dims):
        x, y = sphere_data(n, n_train, radii=radii, seed=i, device=device)
        torch.manual_seed(i)
        model = MLP(n, (hidden, hidden), 2).to(device)
        train_cached(model, (x, y), name="rivals-spheres", epochs=epochs, batch_size=128,
                     lr=1e-3, seed=i, progress=False)
        model.eval()
        errors = [sphere_error_rate(model, n, r, lab, n_error, seed=100 + 2 * i + lab)
                  for lab, r in enumerate(radii)]
        xa, ya = sphere_data(n, n_attack, radii=radii, seed=1000 + i, device=device)
        with torch.no_grad():
            ok = model(xa).argmax(1) == ya
        dist = on_sphere_distance(model, xa[ok], ya[ok], eps_grid, steps=steps)
        finite = torch.isfinite(dist)
        rows.append({"n": n, "test_acc": float(ok.double().mean()), "errors": errors,
                     "n_error": n_error, "distances": dist.tolist(),
                     "radius_of": [radii[int(v)] for v in ya[ok].tolist()],
                     "median": float(dist.median()),
                     "found": float(finite.double().mean()) if dist.numel() else 0.0})
    return rows


def sphere_null(row: dict[str, Any], *, max_distance: float,
                radii: tuple[float, float] = (1.0, 1.3), draws: int = 2000,
                seed: int = 0) -> NullBand:
    """:func:`cap_distance_null` for one row of :func:`sphere_experiment` (both spheres pooled)."""
    if not isinstance(row, dict) or "errors" not in row or "radius_of" not in row:
        raise TypeError("row: expected a row of sphere_experiment")
    spheres = [(r, int(row["errors"][i]), int(row["n_error"]),
                sum(1 for v in row["radius_of"] if v == r)) for i, r in enumerate(radii)]
    spheres = [sp for sp in spheres if sp[3] > 0]
    return cap_distance_null(int(row["n"]), spheres, draws=draws, max_distance=max_distance,
                             seed=seed)


# --------------------------------------------------------------------------- concentration
@torch.no_grad()
def noise_errors(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float,
                 n_noise: int, *, seed: int = 0, batch_size: int = 65_536) -> torch.Tensor:
    """How many of ``n_noise`` draws of ``x + sigma z``, z ~ N(0, I), the model misclassifies.

    Returns (N,) int64 counts on the CPU (a private generator; no clipping).
    """
    from ..ops import eval_mode

    model = check_model(model)
    xt = check_tensor(x, "x", min_ndim=2)
    sigma = check_positive(sigma, "sigma")
    n_noise = check_int(n_noise, "n_noise", 1)
    gen = torch.Generator().manual_seed(check_int(seed, "seed", 0))
    per = max(1, batch_size // n_noise)
    out = []
    with eval_mode(model):
        for start in range(0, xt.shape[0], per):
            xb, yb = xt[start:start + per], y[start:start + per]
            z = torch.randn(xb.shape[0], n_noise, xb.shape[1], generator=gen).to(xb)
            pred = model((xb[:, None] + sigma * z).flatten(0, 1)).argmax(1)
            out.append((pred.view(xb.shape[0], n_noise) != yb[:, None]).sum(1).cpu())
    return torch.cat(out)


def halfspace_distance(sigma: float, errors: torch.Tensor, n_noise: int) -> torch.Tensor:
    """``sigma * Phi^{-1}(1 - mu)``: how far a half-space with noise error rate ``mu`` lies.

    A half-space at distance ``d`` from ``x`` catches ``x + sigma z`` with
    probability ``Phi(-d / sigma)`` in every dimension; Gaussian isoperimetry
    makes it the extremal set (every set of that Gaussian measure is at least
    as close to a random noisy point). ``mu`` is the Jeffreys estimate
    ``(errors + 1/2) / (n_noise + 1)``. Returns float64 on the CPU.
    """
    sigma = check_positive(sigma, "sigma")
    n_noise = check_int(n_noise, "n_noise", 1)
    k = torch.as_tensor(errors).double().cpu()
    mu = (k + 0.5) / (n_noise + 1)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    return sigma * normal.icdf(1 - mu)


def halfspace_ratio_null(d: torch.Tensor, sigma: float, n_noise: int, *, draws: int = 2000,
                         level: float = 0.9, seed: int = 0) -> NullBand:
    """The median of ``d / halfspace_distance`` if every error set were a half-space at distance d.

    For each point its noise error count is redrawn from
    ``Binomial(n_noise, Phi(-d / sigma))``, the count a half-space at the
    measured distance would give, and the ratio recomputed: the band is the
    spread that sampling the noise alone produces (and the bias of the
    estimate), around 1.
    """
    dt = check_tensor(d, "d").double().cpu().flatten()
    if dt.numel() == 0 or not bool(torch.isfinite(dt).all()):
        raise ValueError("d: expected finite distances")
    sigma = check_positive(sigma, "sigma")
    n_noise = check_int(n_noise, "n_noise", 1)
    draws = check_int(draws, "draws", 10)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    p = normal.cdf(-dt / sigma)
    import numpy as np

    rng = np.random.default_rng(check_int(seed, "seed", 0))
    k = torch.from_numpy(rng.binomial(n_noise, p.numpy(), size=(draws, dt.numel())))
    ratio = dt / halfspace_distance(sigma, k, n_noise)
    return band(ratio.median(1).values, kind="half-space at the measured distance",
                level=level)


def concentration_experiment(dims: list[int], *, n_train: int, n_test: int, steps: int,
                             sigma_noise: float, n_noise: int, hidden: tuple[int, ...] = (64, 64),
                             device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """The old-mental-model chapter's Gaussian task: adversarial distance beside the half-space.

    For each ``n`` the task and the MLP are those of
    :func:`dmmlib.experiments.linearity.dimension_experiment` (seed 0: same
    data, initialisation and training, so its cache is shared). At the
    correctly classified test points it measures DeepFool's L2 distance
    ``d``, the error count in ``n_noise`` draws of Gaussian noise of
    standard deviation ``sigma_noise``, the half-space distance of that
    error rate, and the gradient's ``||g||_1 / ||g||_2`` against
    ``sqrt(2 n / pi)``. Model initialisation seeds the global RNG.

    Returns
    -------
    list of dict
        One per ``n``: ``n, accuracy, d_adv`` and ``d_half`` (medians),
        ``ratio`` (median of ``d / d_half``), ``mu`` (median noise error rate),
        ``l1_ratio`` (median ``||g||_1 / (sqrt(2n/pi) ||g||_2)``), and the
        per-point lists ``d`` and ``errors``.
    """
    from ..models import MLP
    from ..train import train_cached
    from . import linearity

    rows = []
    for n in dims:
        x, y, _ = linearity.gaussian_task(n, n_train, seed=n, device=device)
        xt, yt, _ = linearity.gaussian_task(n, n_test, seed=10_000 + n, device=device)
        torch.manual_seed(0)
        model = MLP(n, tuple(hidden), 2, mean=0.5, std=0.25).to(device)
        train_cached(model, (x, y), name="old-model-gauss-MLP", epochs=steps,
                     batch_size=n_train, lr=1e-2, optimizer="adam", seed=0, progress=False)
        model.eval()
        ok, adv, success = linearity.nearest_adversarial(model, xt, yt)
        xo, yo = xt[ok][success], yt[ok][success]
        d = (adv[success] - xo).norm(dim=1).double().cpu()
        errors = noise_errors(model, xo, yo, sigma_noise, n_noise, seed=n)
        d_half = halfspace_distance(sigma_noise, errors, n_noise)
        g = linearity.margin_and_gradient(model, xo, yo)[1].double().cpu()
        l1 = g.abs().sum(1) / (g.norm(dim=1) * math.sqrt(2 * n / math.pi))
        rows.append({"n": n, "accuracy": float(ok.double().mean()),
                     "d_adv": float(d.median()), "d_half": float(d_half.median()),
                     "ratio": float((d / d_half).median()),
                     "mu": float((errors.double() / n_noise).median()),
                     "l1_ratio": float(l1.median()), "d": d.tolist(),
                     "errors": errors.tolist()})
    return rows


#: The L2 budgets of the on-sphere attack (chord lengths; the inner sphere has radius 1).
SPHERE_EPS: list[float] = [round(0.02 * 1.35 ** i, 4) for i in range(12)]

#: Sizes of the chapter "Other geometric explanations", per profile.
SIZES: dict[str, dict[str, Any]] = {
    "ci": dict(tilt_n=100, tilt_k=2, tilt_train=40, tilt_test=400,
               weight_decays=[0.0, 1e-3, 1e-2, 1e-1], tilt_seeds=3, tilt_steps=300,
               tilt_hidden=64, net_steps=600,
               sphere_dims=[4, 16, 64], sphere_train=12_000, sphere_epochs=6, sphere_hidden=128,
               sphere_attack=100, sphere_steps=20, sphere_error=100_000,
               conc_dims=[8, 32, 128, 512], conc_train=1000, conc_test=200, conc_steps=200,
               n_noise=256),
    "cpu": dict(tilt_n=200, tilt_k=2, tilt_train=60, tilt_test=1000,
                weight_decays=[0.0, 1e-3, 1e-2, 1e-1, 1.0], tilt_seeds=5, tilt_steps=1000,
                tilt_hidden=128, net_steps=1500,
                sphere_dims=[4, 16, 64, 128, 256], sphere_train=100_000, sphere_epochs=10,
                sphere_hidden=256, sphere_attack=300, sphere_steps=30, sphere_error=400_000,
                conc_dims=[8, 32, 128, 512, 2048], conc_train=2000, conc_test=500,
                conc_steps=300, n_noise=512),
    "gpu": dict(tilt_n=500, tilt_k=5, tilt_train=100, tilt_test=2000,
                weight_decays=[0.0, 1e-3, 1e-2, 1e-1, 1.0], tilt_seeds=16, tilt_steps=3000,
                tilt_hidden=256, net_steps=4000,
                sphere_dims=[4, 16, 64, 128, 256, 500], sphere_train=1_000_000,
                sphere_epochs=10, sphere_hidden=1000, sphere_attack=1000, sphere_steps=50,
                sphere_error=4_000_000,
                conc_dims=[8, 32, 128, 512, 2048, 8192], conc_train=4000, conc_test=2000,
                conc_steps=500, n_noise=1024),
}
