"""Bad input gets a clear error: one parametrized case per (situation, function).

Every row of the table in ``book/errors.md`` ("When dmmlib says no") is a key
of :data:`ROWS`; :data:`CASES` tries bad inputs for it and checks the
exception type, that the message names the argument and the problem, and that
nothing was done before the error (the model's weights, its gradients, its
modes, the inputs and the cache folder are untouched).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import dmmlib.attacks as A
from dmmlib import (
    cache,
    data,
    device,
    ensemble,
    geometry,
    manifold,
    models,
    profiles,
    synthetic,
    train,
)
from dmmlib.book import interactive
from dmmlib.cache import CacheWarning
from dmmlib.experiments import ilyas, intriguing, linearity, natural, phases, random_nets, transfer

ROOT = Path(__file__).resolve().parents[1]

#: row id -> the "situation" column of book/errors.md (kept word for word there).
ROWS = {
    "type": "An argument of the wrong kind (a list for a tensor, a string for a model)",
    "rank": "A tensor of the wrong rank or shape",
    "empty": "An empty batch or dataset",
    "batch": "Batch sizes that differ between x and y",
    "label-dtype": "Labels that are not integers",
    "label-range": "Labels outside the model's classes",
    "dtype": "Non-floating inputs",
    "finite": "NaN or infinite values",
    "box": "Pixels outside [0, 1]",
    "budget": "Negative or non-finite budgets and step sizes",
    "count": "Counts and sizes that are not positive integers",
    "basis-shape": "A basis whose shape does not match the inputs",
    "basis-ortho": "A basis that is not orthonormal",
    "latent": "A latent size larger than the input dimension",
    "device": "Data on another device than the model or the basis",
    "norm": "An unknown norm",
    "profile": "An unknown profile name",
    "choice": "An unknown method, optimizer, attack, rule, dataset or device name",
    "callback": "A callback or an unhashable hook given to cached training",
    "cache-key": "A cache key or result that cannot be stored safely",
    "offline": "A dataset that is neither on disk nor downloadable",
    "idx": "A truncated or corrupt dataset file",
}


def _model(out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return models.MLP(4, (8,), out)


def _ctx() -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 4, generator=g)
    U, _ = torch.linalg.qr(torch.randn(5, 4, 2, generator=g))
    return {"m": _model(), "x": x, "y": torch.tensor([0, 1, 2, 0, 1]), "U": U}


def _bad_y(c: dict) -> torch.Tensor:
    return torch.tensor([0, 1, 2, 0, 7])


def _ens_models() -> list[nn.Module]:
    return [_model(), _model()]


class _TupleOut(nn.Module):
    """A module returning a tuple, as some libraries' models do."""

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z, z


class _TupleEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = _TupleOut()
        self.decoder = nn.Linear(2, 4)


def _ae(latent: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return manifold.MLPAutoencoder(4, latent, hidden=(8,))


def _nets() -> random_nets.RandomReLUNetworks:
    return random_nets.random_relu_networks(4, (8,), 2, seed=0)


def _sphere() -> torch.Tensor:
    return random_nets.sphere_points(3, 4, seed=0)


def _model2() -> nn.Module:
    torch.manual_seed(0)
    return models.MLP(2, (4,), 2)


def _mpl_figure() -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(1, 1))


def _figure() -> object:
    import plotly.graph_objects as go

    return go.Figure()


def _write_bad_idx(path: Path) -> Path:
    path.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(3))
    return path


N = float("nan")
INF = float("inf")

# (row, id, call(ctx), exception type, regex that the message must match)
CASES = [
    # --- the wrong kind of argument -------------------------------------------------
    ("type", "pgd-x-list", lambda c: A.pgd(c["m"], [[0.5] * 4] * 5, c["y"], 0.1), TypeError,
     r"^x: expected a torch\.Tensor, got list"),
    ("type", "fgsm-model-str", lambda c: A.fgsm("net", c["x"], c["y"], 0.1), TypeError,
     r"^model: expected a torch\.nn\.Module, got str"),
    ("type", "pgd-seed-str", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, seed="0"), TypeError,
     r"^seed: expected an int, a torch\.Generator or None, got str"),
    ("type", "minimal-l2-box-str", lambda c: A.minimal_l2(c["m"], c["x"], c["y"], box="no"),
     TypeError, r"^box: expected a bool, got str"),
    ("type", "fit-model-str", lambda c: train.fit("net", (c["x"], c["y"])), TypeError,
     r"^model: expected a torch\.nn\.Module"),
    ("type", "fit-data-list", lambda c: train.fit(c["m"], [1, 2, 3]), TypeError,
     r"^data: expected an ImageDataset or a tuple \(x, y\)"),
    ("type", "predict-x-str", lambda c: train.predict(c["m"], "x"), TypeError,
     r"^x: expected a torch\.Tensor, got str"),
    ("type", "fingerprint-list", lambda c: train.tensor_fingerprint([1.0]), TypeError,
     r"^t: expected a torch\.Tensor"),
    ("type", "tangent-basis-decoder", lambda c: manifold.tangent_basis("dec", c["x"][:, :2]),
     TypeError, r"^decoder: expected an nn\.Module"),
    ("type", "fit-ae-not-module", lambda c: manifold.fit_autoencoder("ae", c["x"]), TypeError,
     r"^ae: expected an nn\.Module"),
    ("type", "normal-classes-list", lambda c: geometry.boundary_normal(c["m"], c["x"], [0, 1]),
     TypeError, r"^y: expected a tensor"),
    ("type", "get-device-int", lambda c: device.get_device(0), TypeError,
     r"^prefer: expected a device name \(str\), got int"),
    ("type", "seed-str", lambda c: device.seed_everything("1"), TypeError,
     r"^seed: expected an int, got str"),
    ("type", "mlp-float-width", lambda c: models.MLP(4.5, (8,), 3), TypeError,
     r"^in_features: expected an int, got 4\.5"),
    ("type", "cnn-float-classes", lambda c: models.SmallCNN(n_classes=2.0), TypeError,
     r"^n_classes: expected an int"),
    ("type", "digits-n-str", lambda c: data.digits(n="5"), TypeError,
     r"^n: expected an int or None, got str"),
    ("type", "cached-result-compute", lambda c: cache.cached_result("r", {}, 3), TypeError,
     r"^compute: expected a callable, got int"),
    ("type", "cached-result-config", lambda c: cache.cached_result("r", [1], lambda: 1),
     TypeError, r"^config: expected a dict, got list"),
    ("type", "fit-callback-not-callable", lambda c: train.fit(c["m"], (c["x"], c["y"]),
                                                               callback=3), TypeError,
     r"^callback: expected a callable, got int"),
    ("type", "ensemble-models", lambda c: ensemble.train_ensemble(c["m"], (c["x"], c["y"])),
     TypeError, r"^models: expected a non-empty list of nn\.Module"),
    # --- wrong rank or shape --------------------------------------------------------
    ("rank", "pgd-x-1d", lambda c: A.pgd(c["m"], c["x"][0], c["y"], 0.1), ValueError,
     r"^x: expected at least 2 dimension\(s\), got shape \(4,\)"),
    ("rank", "fit-x-1d", lambda c: train.fit(c["m"], (c["x"][:, 0], c["y"])), ValueError,
     r"^data: (y has shape|x must be a batch)"),
    ("rank", "direction-shape", lambda c: geometry.boundary_point_along(
        c["m"], c["x"], torch.ones(5, 3)), ValueError,
     r"^direction: expected shape \(5, 4\) like x, got \(5, 3\)"),
    ("rank", "codes-1d", lambda c: manifold.tangent_basis(nn.Linear(2, 4), torch.zeros(2)),
     ValueError, r"^z: expected at least 2 dimension"),
    ("rank", "codes-3d", lambda c: manifold.tangent_basis(nn.Linear(2, 4), torch.zeros(2, 2, 1)),
     ValueError, r"^z: expected codes of shape \(N, k\)"),
    ("rank", "angles-shapes", lambda c: manifold.principal_angles(c["U"], c["U"][:, :3]),
     ValueError, r"^B: shape .* does not match A's"),
    ("rank", "cnn-x-2d", lambda c: models.SmallCNN()(torch.rand(2, 784)), ValueError,
     r"^x: expected shape \(N, C, H, W\)"),
    ("rank", "mlp-features", lambda c: c["m"](torch.rand(2, 5)), ValueError,
     r"^x: expected 4 features per sample, got 5"),
    ("rank", "marching-2d", lambda c: geometry.level_set_mesh(torch.zeros(3, 3)),
     ValueError, r"^values: expected at least 3 dimension"),
    # --- empty ----------------------------------------------------------------------
    ("empty", "fgsm-empty", lambda c: A.fgsm(c["m"], c["x"][:0], c["y"][:0], 0.1), ValueError,
     r"^x: empty batch"),
    ("empty", "fit-empty", lambda c: train.fit(c["m"], (c["x"][:0], c["y"][:0])), ValueError,
     r"^data: empty dataset"),
    ("empty", "accuracy-empty", lambda c: train.accuracy(c["m"], (c["x"][:0], c["y"][:0])),
     ValueError, r"^data: empty dataset"),
    ("empty", "normal-empty", lambda c: geometry.boundary_normal(c["m"], c["x"][:0], c["y"][:0]),
     ValueError, r"^x: empty batch"),
    ("box", "tangent-at-255", lambda c: manifold.tangent_basis_at(_ae(), c["x"] * 255),
     ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("type", "tangent-at-tuple-encoder", lambda c: manifold.tangent_basis_at(_TupleEncoder(),
                                                                             c["x"]),
     ValueError, r"^ae: ae.encoder must return codes of shape \(5, k\), got tuple"),
    ("type", "tangent-tuple-decoder", lambda c: manifold.tangent_basis(_TupleOut(),
                                                                      torch.rand(2, 3)),
     ValueError, r"^decoder: must map codes \(N, k\) to one tensor"),
    ("empty", "tangent-at-empty", lambda c: manifold.tangent_basis_at(_ae(), c["x"][:0]),
     ValueError, r"^x: empty batch"),
    ("empty", "ensemble-empty", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"][:0], c["y"][:0])), ValueError, r"^x: empty dataset"),
    # --- batch sizes ----------------------------------------------------------------
    ("batch", "pgd-y-short", lambda c: A.pgd(c["m"], c["x"], c["y"][:3], 0.1), ValueError,
     r"^y: expected shape \(5,\) to match x, got \(3,\)"),
    ("batch", "deepfool-y-2d", lambda c: A.deepfool(c["m"], c["x"], c["y"][:, None]),
     ValueError, r"^y: expected shape \(5,\) to match x"),
    ("batch", "fit-y-short", lambda c: train.fit(c["m"], (c["x"], c["y"][:3])), ValueError,
     r"^data: y has shape \(3,\) but x has 5 samples"),
    ("batch", "ensemble-y-short", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"], c["y"][:3])), ValueError, r"^y: expected shape \(5,\)"),
    ("batch", "ensemble-accuracy", lambda c: ensemble.Ensemble.from_models(
        _ens_models()).accuracy(c["x"], c["y"][:2]), ValueError, r"^y: expected shape \(5,\)"),
    ("batch", "dimple-y-short", lambda c: geometry.dimple_depth(c["m"], c["x"], c["y"][:2],
                                                                 c["U"]), ValueError,
     r"^y: expected shape \(5,\)"),
    ("batch", "dataset-y-short", lambda c: data.ImageDataset(
        torch.rand(3, 1, 2, 2), torch.zeros(2, dtype=torch.long), ("a",), "d", "s"),
     ValueError, r"^y: expected shape \(3,\)"),
    # --- label dtype ----------------------------------------------------------------
    ("label-dtype", "pgd-y-float", lambda c: A.pgd(c["m"], c["x"], c["y"].float(), 0.1),
     TypeError, r"^y: expected integer class indices, got dtype torch\.float32"),
    ("label-dtype", "minimal-y-bool", lambda c: A.minimal_l2(c["m"], c["x"], c["y"] > 0),
     TypeError, r"^y: expected integer class indices, got dtype torch\.bool"),
    ("label-dtype", "fit-y-float", lambda c: train.fit(c["m"], (c["x"], c["y"].float())),
     TypeError, r"^data: y must hold integer class labels"),
    ("label-dtype", "ensemble-y-float", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"], c["y"].float())), TypeError, r"^y: expected an integer tensor"),
    # --- labels outside the model's classes ----------------------------------------
    ("label-range", "fgsm-label-7", lambda c: A.fgsm(c["m"], c["x"], _bad_y(c), 0.1),
     ValueError, r"^y: labels must lie in \[0, 3\) for a model with 3 outputs, found 7"),
    ("label-range", "pgd-label-7", lambda c: A.pgd(c["m"], c["x"], _bad_y(c), 0.1, steps=2),
     ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "deepfool-label-7", lambda c: A.deepfool(c["m"], c["x"], _bad_y(c)),
     ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "cw-label-7", lambda c: A.carlini_wagner_l2(c["m"], c["x"], _bad_y(c),
                                                                 steps=1), ValueError,
     r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "pgd-label-negative", lambda c: A.pgd(c["m"], c["x"], -c["y"] - 1, 0.1),
     ValueError, r"^y: labels must lie in >= 0, found range \[-3, -1\]"),
    ("label-range", "fit-label-7", lambda c: train.fit(c["m"], (c["x"], _bad_y(c))), ValueError,
     r"^data: labels y must lie in \[0, 3\) for a model with 3 outputs, found 7"),
    ("label-range", "fit-label-negative", lambda c: train.fit(c["m"], (c["x"], -c["y"])),
     ValueError, r"^data: labels y must be >= 0, found -2"),
    ("label-range", "accuracy-label-7", lambda c: train.accuracy(c["m"], (c["x"], _bad_y(c))),
     ValueError, r"^data: labels y must lie in \[0, 3\)"),
    ("label-range", "train-cached-label-7", lambda c: train.train_cached(
        c["m"], (c["x"], _bad_y(c))), ValueError, r"^data: labels y must lie in \[0, 3\)"),
    ("label-range", "ensemble-label-7", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"], _bad_y(c))), ValueError,
     r"^y: labels must lie in \[0, 3\) for models with 3 outputs"),
    ("label-range", "boundary-along-label-7", lambda c: geometry.boundary_point_along(
        c["m"], c["x"], torch.ones_like(c["x"]), y=_bad_y(c)), ValueError,
     r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "normal-classes-5", lambda c: geometry.boundary_normal(
        c["m"], c["x"], torch.tensor([0, 1, 2, 0, 5])), ValueError,
     r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "lbfgs-targeted-9", lambda c: A.lbfgs(
        c["m"], c["x"], torch.full((5,), 9), targeted=True), ValueError,
     r"^y: labels must lie in \[0, 3\)"),
    # --- non-floating inputs --------------------------------------------------------
    ("dtype", "deepfool-x-int", lambda c: A.deepfool(c["m"], (c["x"] * 255).long(), c["y"]),
     TypeError, r"^x: expected a floating-point tensor, got dtype torch\.int64"),
    ("dtype", "pgd-x-uint8", lambda c: A.pgd(c["m"], (c["x"] * 255).to(torch.uint8), c["y"], 8),
     TypeError, r"^x: expected a floating-point tensor, got dtype torch\.uint8"),
    ("dtype", "fit-x-int", lambda c: train.fit(c["m"], ((c["x"] * 255).long(), c["y"])),
     TypeError, r"^data: x must be a floating tensor, got torch\.int64"),
    ("dtype", "predict-x-int", lambda c: train.predict(c["m"], (c["x"] * 255).long()),
     TypeError, r"^x: expected a floating-point tensor"),
    ("dtype", "split-v-int", lambda c: manifold.split_on_off_manifold(
        torch.ones(5, 4, dtype=torch.long), c["U"]), TypeError,
     r"^v: expected a floating-point tensor"),
    ("dtype", "basis-int", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1,
                                           basis=c["U"].long()), TypeError,
     r"^basis: expected a floating-point tensor"),
    ("dtype", "synthetic-float16", lambda c: synthetic.linear_subspace(3, 1, 4,
                                                                       dtype=torch.float16),
     ValueError, r"^dtype: expected torch\.float32 or torch\.float64"),
    ("dtype", "random-basis-int", lambda c: manifold.random_orthonormal_basis(
        1, 3, 2, dtype=torch.int64), ValueError, r"^dtype: expected torch\.float32"),
    # --- NaN or infinite ------------------------------------------------------------
    ("finite", "pgd-x-nan", lambda c: A.pgd(c["m"], torch.where(c["x"] > 0.5, N, c["x"]),
                                             c["y"], 0.1), ValueError,
     r"^x: contains NaN or infinite values"),
    ("finite", "fgsm-x-inf", lambda c: A.fgsm(c["m"], c["x"] + INF, c["y"], 0.1), ValueError,
     r"^x: contains NaN or infinite values"),
    ("finite", "fit-x-nan", lambda c: train.fit(c["m"], (c["x"] * N, c["y"])), ValueError,
     r"^data: x contains NaN or infinite values"),
    ("finite", "predict-x-inf", lambda c: train.predict(c["m"], c["x"] * INF), ValueError,
     r"^x: contains NaN or infinite values"),
    ("finite", "split-v-nan", lambda c: manifold.split_on_off_manifold(c["x"] * N, c["U"]),
     ValueError, r"^v: contains NaN"),
    ("finite", "basis-nan", lambda c: manifold.split_on_off_manifold(c["x"], c["U"] * N),
     ValueError, r"^basis: contains NaN"),
    ("finite", "codes-inf", lambda c: manifold.tangent_basis(nn.Linear(2, 4),
                                                              torch.full((2, 2), INF)),
     ValueError, r"^z: contains NaN"),
    ("finite", "ensemble-x-nan", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"] * N, c["y"])), ValueError, r"^x: contains NaN"),
    ("finite", "normal-x-inf", lambda c: geometry.boundary_normal(c["m"], c["x"] * INF, c["y"]),
     ValueError, r"^x: contains NaN"),
    ("finite", "normalize-nan", lambda c: models.MLP(4, (8,), 3, mean=N), ValueError,
     r"^mean: must be finite"),
    ("finite", "normalize-std-inf", lambda c: models.SmallCNN(std=INF), ValueError,
     r"^std: must be positive and finite"),
    # --- pixels outside [0, 1] ------------------------------------------------------
    ("box", "fgsm-x-255", lambda c: A.fgsm(c["m"], c["x"] * 255, c["y"], 0.1), ValueError,
     r"^x: pixels must lie in \[0, 1\], found range .*divide by 255"),
    ("box", "pgd-x-negative", lambda c: A.pgd(c["m"], c["x"] - 0.5, c["y"], 0.1), ValueError,
     r"^x: pixels must lie in \[0, 1\]"),
    ("box", "minimal-l2-x-2", lambda c: A.minimal_l2(c["m"], c["x"] + 1, c["y"]), ValueError,
     r"^x: pixels must lie in \[0, 1\]"),
    ("box", "fit-ae-x-2", lambda c: manifold.fit_autoencoder(_ae(), c["x"] * 2), ValueError,
     r"^x: pixels must lie in \[0, 1\]"),
    ("box", "fit-ae-cached-x-2", lambda c: manifold.fit_autoencoder_cached(_ae(), c["x"] * 2),
     ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("box", "nearest-boundary-x-2", lambda c: geometry.nearest_boundary_point(
        c["m"], c["x"] * 2, c["y"]), ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("box", "curve-x-2", lambda c: A.robustness_curve(c["m"], c["x"] * 2, c["y"], [0.1]),
     ValueError, r"^x: pixels must lie in \[0, 1\]"),
    # --- budgets and step sizes -----------------------------------------------------
    ("budget", "pgd-eps-negative", lambda c: A.pgd(c["m"], c["x"], c["y"], -0.1), ValueError,
     r"^eps: must be non-negative, got -0\.1"),
    ("budget", "fgsm-eps-nan", lambda c: A.fgsm(c["m"], c["x"], c["y"], N), ValueError,
     r"^eps: must be finite, got nan"),
    ("budget", "fgsm-eps-list-inf", lambda c: A.fgsm(c["m"], c["x"], c["y"], [0.1, INF]),
     ValueError, r"^eps: must be finite, got inf"),
    ("budget", "pgd-step-inf", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, step_size=INF),
     ValueError, r"^step_size: must be finite, got inf"),
    ("budget", "pgd-step-zero", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, step_size=0.0),
     ValueError, r"^step_size: must be positive, got 0\.0"),
    ("budget", "minimal-step-negative", lambda c: A.minimal_l2(c["m"], c["x"], c["y"],
                                                                step_size=-1.0), ValueError,
     r"^step_size: must be positive"),
    ("budget", "minimal-gamma-1", lambda c: A.minimal_l2(c["m"], c["x"], c["y"], gamma=1.0),
     ValueError, r"^gamma, final_gamma: must be < 1"),
    ("budget", "deepfool-overshoot", lambda c: A.deepfool(c["m"], c["x"], c["y"],
                                                           overshoot=-0.1), ValueError,
     r"^overshoot: must be non-negative"),
    ("budget", "cw-lr-nan", lambda c: A.carlini_wagner_l2(c["m"], c["x"], c["y"], lr=N),
     ValueError, r"^lr: must be finite"),
    ("budget", "curve-eps-negative", lambda c: A.robustness_curve(c["m"], c["x"], c["y"],
                                                                   [0.1, -1.0]), ValueError,
     r"^eps_list: must be non-negative"),
    ("budget", "fit-lr-inf", lambda c: train.fit(c["m"], (c["x"], c["y"]), lr=INF), ValueError,
     r"^lr: must be finite, got inf"),
    ("budget", "fit-lr-zero", lambda c: train.fit(c["m"], (c["x"], c["y"]), lr=0.0), ValueError,
     r"^lr: must be positive, got 0\.0"),
    ("budget", "fit-wd-negative", lambda c: train.fit(c["m"], (c["x"], c["y"]),
                                                      weight_decay=-1e-4), ValueError,
     r"^weight_decay: must be non-negative"),
    ("budget", "fit-ae-lr-nan", lambda c: manifold.fit_autoencoder(_ae(), c["x"], lr=N),
     ValueError, r"^lr: must be finite"),
    ("budget", "ensemble-lr-list", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"], c["y"]), lr=[0.1, -0.1]), ValueError, r"^lr: must be positive"),
    ("budget", "boundary-max-distance", lambda c: geometry.boundary_point_along(
        c["m"], c["x"], torch.ones_like(c["x"]), max_distance=INF), ValueError,
     r"^max_distance: must be finite"),
    ("budget", "boundary-tol", lambda c: geometry.boundary_point_along(
        c["m"], c["x"], torch.ones_like(c["x"]), tol=0), ValueError, r"^tol: must be positive"),
    ("budget", "eps-str", lambda c: A.fgsm(c["m"], c["x"], c["y"], "0.1"), TypeError,
     r"^eps: expected a real number, got str"),
    ("budget", "eps-bool", lambda c: A.pgd(c["m"], c["x"], c["y"], True), TypeError,
     r"^eps: expected a real number, got bool"),
    # --- counts and sizes -----------------------------------------------------------
    ("count", "pgd-steps-float", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, steps=2.5),
     TypeError, r"^steps: expected an int, got float"),
    ("count", "pgd-restarts-0", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, restarts=0),
     ValueError, r"^restarts: must be >= 1, got 0"),
    ("count", "deepfool-steps-negative", lambda c: A.deepfool(c["m"], c["x"], c["y"], steps=-1),
     ValueError, r"^steps: must be >= 0, got -1"),
    ("count", "deepfool-candidates-1", lambda c: A.deepfool(c["m"], c["x"], c["y"],
                                                             candidates=1), ValueError,
     r"^candidates: must be >= 2"),
    ("count", "lbfgs-history-0", lambda c: A.lbfgs(c["m"], c["x"], c["y"], history_size=0),
     ValueError, r"^history_size: must be >= 1"),
    ("count", "pgd-seed-negative", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, seed=-1),
     ValueError, r"^seed: must be >= 0"),
    ("count", "curve-batch-0", lambda c: A.robustness_curve(c["m"], c["x"], c["y"], [0.1],
                                                             batch_size=0), ValueError,
     r"^batch_size: must be >= 1"),
    ("count", "fit-epochs-float", lambda c: train.fit(c["m"], (c["x"], c["y"]), epochs=1.5),
     TypeError, r"^epochs: expected an int, got float"),
    ("count", "fit-batch-0", lambda c: train.fit(c["m"], (c["x"], c["y"]), batch_size=0),
     ValueError, r"^batch_size: must be >= 1, got 0"),
    ("count", "fit-seed-negative", lambda c: train.fit(c["m"], (c["x"], c["y"]), seed=-1),
     ValueError, r"^seed: must be >= 0"),
    ("count", "predict-batch-0", lambda c: train.predict(c["m"], c["x"], batch_size=0),
     ValueError, r"^batch_size: must be >= 1"),
    ("count", "fit-ae-epochs-negative", lambda c: manifold.fit_autoencoder(_ae(), c["x"],
                                                                          epochs=-1),
     ValueError, r"^epochs: must be >= 0"),
    ("count", "random-basis-k-gt-n", lambda c: manifold.random_orthonormal_basis(2, 3, 4),
     ValueError, r"^k: must be <= n=3, got 4"),
    ("count", "random-fractions-k", lambda c: manifold.random_subspace_fractions(c["x"], 5),
     ValueError, r"^k: must be <= D=4"),
    ("count", "baseline-samples", lambda c: manifold.random_subspace_baseline(3, 1,
                                                                              n_samples=1),
     ValueError, r"^n_samples: must be >= 2"),
    ("count", "mlp-width-0", lambda c: models.MLP(4, (0,), 3), ValueError,
     r"^MLP: sizes must be positive"),
    ("count", "cnn-image-size", lambda c: models.SmallCNN(image_size=30), ValueError,
     r"^image_size: must be divisible by 4"),
    ("count", "ae-latent-0", lambda c: manifold.MLPAutoencoder(4, 0), ValueError,
     r"^latent_dim: must be >= 1"),
    ("count", "dataset-head-0", lambda c: data.digits(n=0), ValueError,
     r"^n: must be positive, got 0"),
    ("count", "ensemble-model-index", lambda c: ensemble.Ensemble.from_models(
        _ens_models()).model(2), ValueError, r"^i: the ensemble has 2 models, got index 2"),
    ("count", "grid-resolution", lambda c: geometry.decision_grid_2d(c["m"], resolution=1),
     ValueError, r"^resolution: must be >= 2"),
    ("count", "synthetic-n-points", lambda c: synthetic.linear_subspace(3, 1, 0), ValueError,
     r"^n_points: must be >= 1"),
    # --- basis shape ----------------------------------------------------------------
    ("basis-shape", "pgd-basis-D", lambda c: A.pgd(
        c["m"], c["x"], c["y"], 0.1, basis=torch.eye(3, 2).expand(5, 3, 2)), ValueError,
     r"^basis: expected shape \(5, 4, k\) for x of shape \(5, 4\), got \(5, 3, 2\)"),
    ("basis-shape", "pgd-basis-N", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1,
                                                   basis=c["U"][:2]), ValueError,
     r"^basis: expected shape \(5, 4, k\)"),
    ("basis-shape", "split-U-2d", lambda c: manifold.split_on_off_manifold(c["x"], c["U"][0]),
     ValueError, r"^basis: expected at least 3 dimension"),
    ("basis-shape", "dimple-U-D", lambda c: geometry.dimple_depth(
        c["m"], c["x"], c["y"], torch.ones(5, 3, 1) / math.sqrt(3)), ValueError,
     r"^basis: expected shape \(5, 4, k\)"),
    ("basis-shape", "clinging-U-N", lambda c: geometry.clinging(c["x"], c["U"][:3]),
     ValueError, r"^basis: expected shape \(5, 4, k\)"),
    ("basis-shape", "recorder-U", lambda c: geometry.GeometryRecorder(
        c["x"], c["y"], c["U"][:, :3]), ValueError, r"^basis: expected shape \(5, 4, k\)"),
    ("basis-shape", "pgd-complement-without-subspace", lambda c: A.pgd(
        c["m"], c["x"], c["y"], 0.1, complement=True), ValueError,
     r"^complement: needs a subspace"),
    # --- basis not orthonormal ------------------------------------------------------
    ("basis-ortho", "pgd-basis-ones", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1,
                                                      basis=torch.ones(5, 4, 2)),
     ValueError, r"^basis: columns are not orthonormal \(max \|U\^T U - I\| = 4\); "
                 r"orthonormalise with torch\.linalg\.qr"),
    ("basis-ortho", "split-U-scaled", lambda c: manifold.split_on_off_manifold(c["x"],
                                                                              2 * c["U"]),
     ValueError, r"^basis: columns are not orthonormal"),
    ("basis-ortho", "dimple-U-skewed", lambda c: geometry.dimple_depth(
        c["m"], c["x"], c["y"], c["U"] + 0.01), ValueError,
     r"^basis: columns are not orthonormal"),
    ("basis-ortho", "angles-A", lambda c: manifold.principal_angles(c["U"] * 3, c["U"]),
     ValueError, r"^A: columns are not orthonormal"),
    ("basis-ortho", "angles-B-too-wide", lambda c: manifold.principal_angles(
        c["U"], torch.ones(5, 4, 5)), ValueError, r"^B: 5 columns cannot be orthonormal"),
    # --- latent size ----------------------------------------------------------------
    ("latent", "mlp-ae-latent", lambda c: manifold.MLPAutoencoder(4, 10), ValueError,
     r"^latent_dim: a code of size 10 is larger than the input dimension D=4"),
    ("latent", "conv-ae-latent", lambda c: manifold.ConvAutoencoder((1, 4, 4), 17), ValueError,
     r"^latent_dim: a code of size 17 is larger than the input dimension D=16"),
    ("latent", "basis-k-gt-D", lambda c: manifold.random_subspace_fractions(c["x"], 9),
     ValueError, r"^k: must be <= D=4"),
    ("latent", "synthetic-k-gt-n", lambda c: synthetic.linear_subspace(3, 4, 10), ValueError,
     r"^k: must be <= n=3"),
    ("latent", "sphere-k", lambda c: synthetic.sphere_patch(3, 3, 10), ValueError,
     r"^k: a k-sphere needs k \+ 1 <= n=3"),
    # --- devices (the meta device stands in for a GPU on a CPU-only machine) --------
    ("device", "jacobian-decoder-meta", lambda c: manifold.decoder_jacobian(
        nn.Linear(2, 4).to("meta"), torch.zeros(3, 2)), ValueError,
     r"^z: is on cpu but the decoder is on meta; move one of them"),
    ("device", "tangent-basis-meta", lambda c: manifold.tangent_basis(
        nn.Linear(2, 4).to("meta"), torch.zeros(3, 2)), ValueError, r"^z: is on cpu"),
    ("device", "split-U-meta", lambda c: manifold.split_on_off_manifold(c["x"],
                                                                       c["U"].to("meta")),
     ValueError, r"^basis: is on meta but v is on cpu; move one of them"),
    ("device", "angles-B-meta", lambda c: manifold.principal_angles(c["U"], c["U"].to("meta")),
     ValueError, r"^B: is on meta but A is on cpu"),
    ("device", "unknown-device", lambda c: device.get_device("tpu"), ValueError,
     r"^device: unknown device 'tpu'; use 'cpu' or 'cuda'"),
    # --- unknown norm ---------------------------------------------------------------
    ("norm", "pgd-norm-1", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, norm=1), ValueError,
     r"^norm: unknown norm 1; use 'inf' \(also float\('inf'\), 'linf'\) or 2"),
    ("norm", "pgd-norm-l1", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, norm="l1"), ValueError,
     r"^norm: unknown norm 'l1'"),
    ("norm", "pgd-norm-minus-inf", lambda c: A.pgd(c["m"], c["x"], c["y"], 0.1, norm=-INF),
     ValueError, r"^norm: unknown norm -inf"),
    ("norm", "curve-minimal-linf", lambda c: A.robustness_curve(
        c["m"], c["x"], c["y"], [0.1], attack="deepfool", norm="inf"), ValueError,
     r"^norm: deepfool is an L2 attack"),
    # --- unknown profile ------------------------------------------------------------
    ("profile", "get-profile-huge", lambda c: profiles.get_profile("huge"), ValueError,
     r"^name: unknown profile 'huge'; choose one of \['ci', 'cpu', 'gpu'\]"),
    ("profile", "get-profile-int", lambda c: profiles.get_profile(3), TypeError,
     r"^name: expected a profile name \(str\), got int"),
    ("profile", "env-profile", "env-profile", ValueError,
     r"^DMM_PROFILE='tiny' is not a profile; choose one of \['ci', 'cpu', 'gpu'\]"),
    ("profile", "profile-replace", lambda c: profiles.get_profile("ci").replace(epoch=3),
     ValueError, r"^Profile\.replace: unknown field\(s\) \['epoch'\]"),
    # --- unknown option names -------------------------------------------------------
    ("choice", "fit-optimizer", lambda c: train.fit(c["m"], (c["x"], c["y"]), optimizer="lion"),
     ValueError, r"^optimizer: unknown value 'lion'; choose one of \['adam', 'sgd'\]"),
    ("choice", "minimal-method", lambda c: A.minimal_l2(c["m"], c["x"], c["y"], method="cw"),
     ValueError, r"^method: unknown value 'cw'; choose one of \[.*'fmn', 'ddn'\]"),
    ("choice", "curve-attack", lambda c: A.robustness_curve(c["m"], c["x"], c["y"], [0.1],
                                                             attack="jsma"), ValueError,
     r"^attack: unknown value 'jsma'"),
    ("choice", "nearest-method", lambda c: geometry.nearest_boundary_point(
        c["m"], c["x"], c["y"], method="cw"), ValueError, r"^method: unknown value 'cw'"),
    ("choice", "ensemble-optimizer", lambda c: ensemble.train_ensemble(
        _ens_models(), (c["x"], c["y"]), optimizer="rmsprop"), ValueError,
     r"^optimizer: unknown value 'rmsprop'"),
    ("choice", "synthetic-rule", lambda c: synthetic.linear_subspace(3, 1, 4, labels="xor"),
     ValueError, r"^labels: unknown value 'xor'"),
    ("choice", "dataset-name", lambda c: data.load_dataset("imagenet"), ValueError,
     r"^name: unknown dataset 'imagenet'; choose one of"),
    ("choice", "device-cuda-absent", "cuda-absent", ValueError,
     r"^device: 'cuda' requested but CUDA is not available"),
    # --- cached training ------------------------------------------------------------
    ("callback", "train-cached-callback", lambda c: train.train_cached(
        c["m"], (c["x"], c["y"]), callback=lambda step, model: None), ValueError,
     r"^callback: train_cached does not take a callback: on a cache hit training is "
     r"skipped.*dmmlib\.cache\.cached_result"),
    ("callback", "train-cached-perturb", lambda c: train.train_cached(
        c["m"], (c["x"], c["y"]), perturb=lambda m, x, y: x), ValueError,
     r"^train_cached: a perturb hook must be described in extra_key"),
    # --- cache keys and results -----------------------------------------------------
    ("cache-key", "config-tensor", lambda c: cache.config_key({"t": torch.zeros(1)}),
     TypeError, r"^config_key: tensors are not allowed in a cache key"),
    ("cache-key", "config-list", lambda c: cache.config_key([1]), TypeError,
     r"^config: expected a dict, got list"),
    ("cache-key", "result-object", lambda c: cache.cached_result("r", {}, lambda: {"f": object()}),
     TypeError, r"^result\['f'\]: cannot be cached safely \(object\)"),
    ("cache-key", "result-key-tuple", lambda c: cache.cached_result("r", {},
                                                                   lambda: {(1, 2): 1.0}),
     TypeError, r"^result: dict keys must be str or int, got tuple"),
    ("cache-key", "save-entry-key", lambda c: cache.save_entry(Path("e.pt"), 3, {}), TypeError,
     r"^key: expected a str, got int"),
    ("cache-key", "save-entry-payload", lambda c: cache.save_entry(Path("e.pt"), "k", [1]),
     TypeError, r"^payload: expected a dict, got list"),
    ("cache-key", "entry-path-key", lambda c: cache.entry_path(None), TypeError,
     r"^key: expected a non-empty str"),
    # --- the chapters' modules: intriguing, transfer, linearity, natural, phases, ilyas,
    # random_nets, interactive
    ("type", "transfer-matrix-models-list", lambda c: intriguing.transfer_matrix(
        {"clean": c["x"]}, [c["m"]], c["y"]), TypeError, r"^models: expected a mapping"),
    ("type", "transfer-matrix-model-str", lambda c: intriguing.transfer_matrix(
        {"clean": c["x"]}, {"a": "net"}, c["y"]), TypeError,
     r"^models\['a'\]: expected a torch\.nn\.Module, got str"),
    ("type", "targeted-model-str", lambda c: transfer.targeted_examples(
        "net", c["x"], c["y"], eps=0.5, steps=2), TypeError, r"^model: expected a torch\.nn"),
    ("type", "mislabelled-model-str", lambda c: ilyas.mislabelled_dataset(
        "net", c["x"], c["y"], n_classes=3), TypeError, r"^model: expected a torch\.nn"),
    ("type", "onoff-ae-linear", lambda c: natural.onoff_experiment(
        c["m"], nn.Linear(4, 4), c["x"], c["y"], pgd_eps=0.5, pgd_steps=2, attack_steps=2),
     TypeError, r"^ae: expected an autoencoder with \.encoder and \.decoder"),
    ("type", "one-step-nets-module", lambda c: random_nets.one_step_attack(
        c["m"], _sphere()), TypeError, r"^nets: expected RandomReLUNetworks"),
    ("type", "plotly-html-matplotlib", lambda c: interactive.plotly_html(object()),
     TypeError, r"^fig: expected a plotly Figure, got object"),
    ("type", "bootstrap-values-str", lambda c: natural.bootstrap_ci("abc"), TypeError,
     r"^values: expected a tensor or a sequence of numbers, got str"),
    ("type", "summarize-onoff-list", lambda c: natural.summarize_onoff([1, 2]), TypeError,
     r"^result: expected the dict returned by onoff_experiment"),
    ("type", "detect-phases-clings-int", lambda c: phases.detect_phases(
        torch.arange(3), torch.tensor([0, 1, 1]), torch.tensor([0.1, 0.5, 0.9])), TypeError,
     r"^clings: expected a boolean tensor"),
    ("rank", "rms-distortion-shapes", lambda c: intriguing.rms_distortion(c["x"][:, :3], c["x"]),
     ValueError, r"^x_adv: shape \(5, 3\) differs from x's \(5, 4\)"),
    ("rank", "scale-direction-shape", lambda c: intriguing.scale_to_distortion(
        c["x"], torch.ones(5, 3), 0.1), ValueError, r"^direction: shape \(5, 3\) differs"),
    ("rank", "scale-distortion-shape", lambda c: intriguing.scale_to_distortion(
        c["x"], torch.ones_like(c["x"]), torch.full((3,), 0.1)), ValueError,
     r"^distortion: expected a number or shape \(5,\), got \(3,\)"),
    ("rank", "top-activating-width", lambda c: intriguing.top_activating(
        torch.rand(6, 8), torch.eye(4), 2), ValueError,
     r"^directions: expected shape \(D, 8\) to match activations \(6, 8\), got \(4, 4\)"),
    ("rank", "top-activating-k", lambda c: intriguing.top_activating(
        torch.rand(6, 8), torch.eye(8), 7), ValueError, r"^k: at most the number of inputs"),
    ("rank", "transfer-matrix-image-shape", lambda c: intriguing.transfer_matrix(
        {"a": c["x"], "b": c["x"][:, :3]}, {"m": c["m"]}, c["y"]), ValueError,
     r"^examples\['b'\]: images of shape \(3,\) differ from the first set's \(4,\)"),
    ("rank", "alignment-b-shape", lambda c: transfer.gradient_alignment(c["x"], c["x"][:, :3]),
     ValueError, r"^b: shape \(5, 3\) differs from a's \(5, 4\)"),
    ("rank", "orthogonal-drift-W1", lambda c: phases.orthogonal_drift(
        torch.rand(2, 3, 4), torch.rand(2, 3, 5), torch.eye(4, 2)), ValueError,
     r"^W1: shape \(2, 3, 5\) differs from W0's \(2, 3, 4\)"),
    ("rank", "orthogonal-drift-U", lambda c: phases.orthogonal_drift(
        torch.rand(3, 4), torch.rand(3, 4), torch.eye(3, 2)), ValueError,
     r"^basis: expected shape \(4, k\), got \(3, 2\)"),
    ("rank", "detect-phases-lengths", lambda c: phases.detect_phases(
        torch.arange(3), torch.tensor([False, True]), torch.tensor([0.1, 0.5, 0.9])),
     ValueError, r"^step, clings, accuracy: expected 1-D curves of one length"),
    ("rank", "one-step-x-d", lambda c: random_nets.one_step_attack(
        _nets(), torch.rand(3, 5)), ValueError, r"^x: expected shape \(N, 4\) shared by all"),
    ("rank", "loglog-y-columns", lambda c: random_nets.loglog_fit(
        [1.0, 2.0, 4.0], torch.rand(5, 2) + 0.1), ValueError,
     r"^y: expected shape \(R, 3\), got \(5, 2\)"),
    ("rank", "target-labels-2d", lambda c: ilyas.target_labels(c["y"][:, None], 3),
     ValueError, r"^y: expected a 1-D tensor of labels, got shape \(5, 1\)"),
    ("empty", "intriguing-error-rate-empty", lambda c: intriguing.error_rate(
        c["m"], c["x"][:0], c["y"][:0]), ValueError, r"^x: empty batch"),
    ("empty", "transfer-matrix-empty", lambda c: intriguing.transfer_matrix(
        {}, {"m": c["m"]}, c["y"]), ValueError, r"^examples: empty mapping"),
    ("empty", "linearity-profile-empty", lambda c: linearity.linearity_profile(
        c["m"], c["x"][:0], c["y"][:0]), ValueError, r"^x: empty batch"),
    ("batch", "intriguing-error-rate-y-short", lambda c: intriguing.error_rate(
        c["m"], c["x"], c["y"][:3]), ValueError, r"^y: expected shape \(5,\) to match x"),
    ("batch", "transfer-matrix-y-short", lambda c: intriguing.transfer_matrix(
        {"clean": c["x"]}, {"m": c["m"]}, c["y"][:3]), ValueError,
     r"^y: expected shape \(5,\) to match x"),
    ("batch", "equal-norm-norms-short", lambda c: transfer.equal_norm_noise(
        c["x"], torch.ones(3)), ValueError, r"^norms: expected 5 values, got 3"),
    ("batch", "targeted-targets-short", lambda c: transfer.targeted_examples(
        c["m"], c["x"], c["y"][:3], eps=0.5, steps=2), ValueError,
     r"^targets: expected shape \(5,\) to match x"),
    ("batch", "linearity-profile-y-short", lambda c: linearity.linearity_profile(
        c["m"], c["x"], c["y"][:3]), ValueError, r"^y: expected shape \(5,\) to match x"),
    ("batch", "minimal-l2-y-short", lambda c: A.minimal_l2(
        c["m"], c["x"], c["y"][:2]), ValueError, r"^y: expected shape \(5,\) to match x"),
    ("batch", "onoff-y-short", lambda c: natural.onoff_experiment(
        c["m"], _ae(), c["x"], c["y"][:3], pgd_eps=0.5, pgd_steps=2, attack_steps=2),
     ValueError, r"^y: expected shape \(5,\) to match x"),
    ("batch", "mislabelled-y-short", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"], c["y"][:3], n_classes=3), ValueError,
     r"^y: expected shape \(5,\) to match x"),
    ("label-dtype", "intriguing-error-rate-y-float", lambda c: intriguing.error_rate(
        c["m"], c["x"], c["y"].float()), TypeError, r"^y: expected integer class indices"),
    ("label-dtype", "linearity-profile-y-float", lambda c: linearity.linearity_profile(
        c["m"], c["x"], c["y"].float()), TypeError, r"^y: expected integer class indices"),
    ("label-dtype", "target-labels-y-float", lambda c: ilyas.target_labels(c["y"].float(), 3),
     TypeError, r"^y: expected integer class indices, got dtype torch\.float32"),
    ("label-dtype", "random-targets-y-bool", lambda c: transfer.random_targets(c["y"] > 0, 3),
     TypeError, r"^y: expected integer class indices, got dtype torch\.bool"),
    ("label-range", "intriguing-error-rate-label-7", lambda c: intriguing.error_rate(
        c["m"], c["x"], _bad_y(c)), ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "transfer-matrix-label-7", lambda c: intriguing.transfer_matrix(
        {"clean": c["x"]}, {"m": c["m"]}, _bad_y(c)), ValueError,
     r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "targeted-target-7", lambda c: transfer.targeted_examples(
        c["m"], c["x"], _bad_y(c), eps=0.5, steps=2), ValueError,
     r"^targets: labels must lie in \[0, 3\)"),
    ("label-range", "gradients-label-7", lambda c: transfer.input_gradients(
        c["m"], c["x"], _bad_y(c)), ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "linearity-profile-label-7", lambda c: linearity.linearity_profile(
        c["m"], c["x"], _bad_y(c)), ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "minimal-l2-label-7", lambda c: A.minimal_l2(
        c["m"], c["x"], _bad_y(c)), ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "onoff-label-7", lambda c: natural.onoff_experiment(
        c["m"], _ae(), c["x"], _bad_y(c), pgd_eps=0.5, pgd_steps=2, attack_steps=2),
     ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "mislabelled-label-7", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"], _bad_y(c), n_classes=3), ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("label-range", "mislabelled-n-classes", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"], c["y"], n_classes=10), ValueError,
     r"^n_classes: 10 classes but the model has 3 outputs"),
    ("label-range", "target-labels-label-7", lambda c: ilyas.target_labels(_bad_y(c), 3),
     ValueError, r"^y: labels must lie in \[0, 3\)"),
    ("dtype", "rms-distortion-int", lambda c: intriguing.rms_distortion(
        (c["x"] * 255).long(), c["x"]), TypeError,
     r"^x_adv: expected a floating-point tensor, got dtype torch\.int64"),
    ("dtype", "top-activating-int", lambda c: intriguing.top_activating(
        torch.ones(6, 4, dtype=torch.long), torch.eye(4), 2), TypeError,
     r"^activations: expected a floating-point tensor"),
    ("dtype", "equal-norm-x-uint8", lambda c: transfer.equal_norm_noise(
        (c["x"] * 255).to(torch.uint8), torch.ones(5)), TypeError,
     r"^x: expected a floating-point tensor, got dtype torch\.uint8"),
    ("dtype", "alignment-a-int", lambda c: transfer.gradient_alignment(
        torch.ones(5, 4, dtype=torch.long), c["x"]), TypeError,
     r"^a: expected a floating-point tensor"),
    ("dtype", "minimal-l2-x-int", lambda c: A.minimal_l2(
        c["m"], (c["x"] * 255).long(), c["y"]), TypeError,
     r"^x: expected a floating-point tensor"),
    ("dtype", "orthogonal-drift-int", lambda c: phases.orthogonal_drift(
        torch.ones(3, 4, dtype=torch.long), torch.rand(3, 4), torch.eye(4, 2)), TypeError,
     r"^W0: expected a floating-point tensor"),
    ("dtype", "one-step-x-int", lambda c: random_nets.one_step_attack(
        _nets(), torch.ones(3, 4, dtype=torch.long)), TypeError,
     r"^x: expected a floating-point tensor"),
    ("dtype", "sphere-points-float16", lambda c: random_nets.sphere_points(
        3, 4, dtype=torch.float16), ValueError, r"^dtype: expected torch\.float32"),
    ("finite", "rms-distortion-nan", lambda c: intriguing.rms_distortion(c["x"] * N, c["x"]),
     ValueError, r"^x_adv: contains NaN or infinite values"),
    ("finite", "scale-direction-inf", lambda c: intriguing.scale_to_distortion(
        c["x"], c["x"] * INF, 0.1), ValueError, r"^direction: contains NaN"),
    ("finite", "top-activating-nan", lambda c: intriguing.top_activating(
        torch.full((6, 4), N), torch.eye(4), 2), ValueError, r"^activations: contains NaN"),
    ("finite", "transfer-matrix-nan", lambda c: intriguing.transfer_matrix(
        {"noise": c["x"] * N}, {"m": c["m"]}, c["y"]), ValueError,
     r"^examples\['noise'\]: contains NaN"),
    ("finite", "equal-norm-norms-nan", lambda c: transfer.equal_norm_noise(
        c["x"], torch.full((5,), N)), ValueError, r"^norms: contains NaN"),
    ("finite", "alignment-b-inf", lambda c: transfer.gradient_alignment(c["x"], c["x"] * INF),
     ValueError, r"^b: contains NaN"),
    ("finite", "linearity-profile-x-nan", lambda c: linearity.linearity_profile(
        c["m"], c["x"] * N, c["y"]), ValueError, r"^x: contains NaN"),
    ("finite", "minimal-l2-x-nan", lambda c: A.minimal_l2(
        c["m"], c["x"] * N, c["y"]), ValueError, r"^x: contains NaN"),
    ("finite", "detect-phases-accuracy-nan", lambda c: phases.detect_phases(
        torch.arange(3), torch.tensor([False, True, True]), torch.tensor([0.1, N, 0.9])),
     ValueError, r"^accuracy: contains NaN"),
    ("finite", "detect-phases-step-inf", lambda c: phases.detect_phases(
        torch.tensor([0.0, 1.0, INF]), torch.tensor([False, True, True]),
        torch.tensor([0.1, 0.5, 0.9])), ValueError, r"^step: contains NaN"),
    ("finite", "one-step-x-nan", lambda c: random_nets.one_step_attack(
        _nets(), _sphere() * N), ValueError, r"^x: contains NaN"),
    ("finite", "loglog-x-nan", lambda c: random_nets.loglog_fit(
        [1.0, N, 4.0], torch.rand(5, 3) + 0.1), ValueError, r"^x: contains NaN"),
    ("finite", "loglog-y-inf", lambda c: random_nets.loglog_fit(
        [1.0, 2.0, 4.0], torch.full((5, 3), INF)), ValueError, r"^y: contains NaN"),
    ("box", "scale-x-255", lambda c: intriguing.scale_to_distortion(
        c["x"] * 255, torch.ones_like(c["x"]), 0.1), ValueError,
     r"^x: pixels must lie in \[0, 1\]"),
    ("box", "gaussian-noise-x-negative", lambda c: intriguing.gaussian_noise(
        c["x"] - 1, 0.1), ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("box", "equal-norm-x-255", lambda c: transfer.equal_norm_noise(
        c["x"] * 255, torch.ones(5)), ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("box", "targeted-x-255", lambda c: transfer.targeted_examples(
        c["m"], c["x"] * 255, c["y"], eps=0.5, steps=2), ValueError,
     r"^x: pixels must lie in \[0, 1\]"),
    ("box", "minimal-l2-no-box-x-2", lambda c: A.minimal_l2(  # box=False: x itself still in it
        c["m"], c["x"] + 1, c["y"], box=False), ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("box", "onoff-x-255", lambda c: natural.onoff_experiment(
        c["m"], _ae(), c["x"] * 255, c["y"], pgd_eps=0.5, pgd_steps=2, attack_steps=2),
     ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("box", "mislabelled-x-255", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"] * 255, c["y"], n_classes=3), ValueError,
     r"^x: pixels must lie in \[0, 1\]"),
    ("budget", "scale-distortion-negative", lambda c: intriguing.scale_to_distortion(
        c["x"], torch.ones_like(c["x"]), -0.1), ValueError,
     r"^distortion: must be finite and non-negative"),
    ("budget", "scale-distortion-nan", lambda c: intriguing.scale_to_distortion(
        c["x"], torch.ones_like(c["x"]), N), ValueError,
     r"^distortion: must be finite and non-negative"),
    ("budget", "gaussian-sigma-inf", lambda c: intriguing.gaussian_noise(c["x"], INF),
     ValueError, r"^sigma: must be finite and non-negative"),
    ("budget", "equal-norm-norms-negative", lambda c: transfer.equal_norm_noise(
        c["x"], -torch.ones(5)), ValueError, r"^norms: must be non-negative, found -1"),
    ("budget", "targeted-eps-negative", lambda c: transfer.targeted_examples(
        c["m"], c["x"], c["y"], eps=-0.5, steps=2), ValueError,
     r"^eps: must be non-negative, got -0\.5"),
    ("budget", "linearity-s-max-zero", lambda c: linearity.linearity_profile(
        c["m"], c["x"], c["y"], s_max=0.0), ValueError, r"^s_max: must be positive, got 0\.0"),
    ("budget", "minimal-l2-step-inf", lambda c: A.minimal_l2(
        c["m"], c["x"], c["y"], step_size=INF), ValueError, r"^step_size: must be finite"),
    ("budget", "onoff-pgd-eps-negative", lambda c: natural.onoff_experiment(
        c["m"], _ae(), c["x"], c["y"], pgd_eps=-1.0, pgd_steps=2, attack_steps=2),
     ValueError, r"^pgd_eps: must be non-negative, got -1\.0"),
    ("budget", "mislabelled-eps-inf", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"], c["y"], n_classes=3, eps=INF), ValueError, r"^eps: must be finite"),
    ("budget", "detect-phases-tol-negative", lambda c: phases.detect_phases(
        torch.arange(3), torch.tensor([False, True, True]), torch.tensor([0.1, 0.5, 0.9]),
        accuracy_tol=-0.1), ValueError, r"^accuracy_tol: must be non-negative"),
    ("budget", "one-step-overshoot-negative", lambda c: random_nets.one_step_attack(
        _nets(), _sphere(), overshoot=-0.5), ValueError,
     r"^overshoot: must be non-negative, got -0\.5"),
    ("budget", "sphere-radius-zero", lambda c: random_nets.sphere_points(3, 4, radius=0.0),
     ValueError, r"^radius: must be positive, got 0\.0"),
    ("budget", "loglog-y-negative", lambda c: random_nets.loglog_fit(
        [1.0, 2.0, 4.0], -torch.ones(5, 3)), ValueError, r"^x, y: need .*positive values"),
    ("count", "targeted-steps-zero", lambda c: transfer.targeted_examples(
        c["m"], c["x"], c["y"], eps=0.5, steps=0), ValueError, r"^steps: must be >= 1, got 0"),
    ("count", "onoff-attack-steps-float", lambda c: natural.onoff_experiment(
        c["m"], _ae(), c["x"], c["y"], pgd_eps=0.5, pgd_steps=2, attack_steps=2.5),
     TypeError, r"^attack_steps: expected an int, got float"),
    ("count", "bootstrap-n-boot-zero", lambda c: natural.bootstrap_ci(
        torch.rand(5), n_boot=0), ValueError, r"^n_boot: must be >= 1, got 0"),
    ("count", "bootstrap-level-1", lambda c: natural.bootstrap_ci(torch.rand(5), level=1.0),
     ValueError, r"^level: must lie in \(0, 1\), got 1\.0"),
    ("count", "sphere-points-zero", lambda c: random_nets.sphere_points(0, 4), ValueError,
     r"^n_points: must be >= 1, got 0"),
    ("count", "sphere-points-d-float", lambda c: random_nets.sphere_points(3, 4.0), TypeError,
     r"^d: expected an int, got float"),
    ("count", "loglog-n-boot-zero", lambda c: random_nets.loglog_fit(
        [1.0, 2.0], torch.rand(3, 2) + 0.1, n_boot=0), ValueError,
     r"^n_boot: must be >= 1, got 0"),
    ("count", "plotly-height-zero", lambda c: interactive.plotly_html(_figure(), height=0),
     ValueError, r"^height: expected a positive int"),
    ("count", "mislabelled-n-classes-1", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"], c["y"], n_classes=1), ValueError, r"^n_classes: must be >= 2, got 1"),
    ("basis-shape", "alignment-U-D", lambda c: transfer.gradient_alignment(
        c["x"], c["x"], torch.eye(3, 2).expand(5, 3, 2)), ValueError,
     r"^basis: expected shape \(5, 4, k\) for x of shape \(5, 4\), got \(5, 3, 2\)"),
    ("basis-shape", "linearity-basis-N", lambda c: linearity.linearity_profile(
        c["m"], c["x"], c["y"], basis=c["U"][:2]), ValueError,
     r"^basis: expected shape \(5, 4, k\)"),
    ("basis-shape", "minimal-l2-basis-N", lambda c: A.minimal_l2(
        c["m"], c["x"], c["y"], basis=c["U"][:3]), ValueError,
     r"^basis: expected shape \(5, 4, k\)"),
    ("basis-shape", "minimal-l2-complement", lambda c: A.minimal_l2(
        c["m"], c["x"], c["y"], complement=True), ValueError, r"^complement: needs a subspace"),
    ("basis-ortho", "alignment-U-scaled", lambda c: transfer.gradient_alignment(
        c["x"], c["x"], 2 * c["U"]), ValueError, r"^basis: columns are not orthonormal"),
    ("basis-ortho", "linearity-basis-ones", lambda c: linearity.linearity_profile(
        c["m"], c["x"], c["y"], basis=torch.ones(5, 4, 2)), ValueError,
     r"^basis: columns are not orthonormal"),
    ("basis-ortho", "minimal-l2-basis-skewed", lambda c: A.minimal_l2(
        c["m"], c["x"], c["y"], basis=c["U"] + 0.1), ValueError,
     r"^basis: columns are not orthonormal"),
    ("basis-ortho", "orthogonal-drift-U-ones", lambda c: phases.orthogonal_drift(
        torch.rand(3, 4), torch.rand(3, 4), torch.ones(4, 2)), ValueError,
     r"^basis: columns are not orthonormal"),
    ("latent", "image-autoencoder-latent", lambda c: natural.image_autoencoder((1, 2, 2), 5),
     ValueError, r"^latent_dim: a code of size 5 is larger than the input dimension D=4"),
    ("latent", "conv-image-autoencoder-latent", lambda c: natural.image_autoencoder(
        (1, 4, 4), 17, "conv"), ValueError, r"^latent_dim: a code of size 17 is larger"),
    ("norm", "mislabelled-norm-1", lambda c: ilyas.mislabelled_dataset(
        c["m"], c["x"], c["y"], n_classes=3, norm=1), ValueError, r"^norm: unknown norm 1"),
    ("choice", "target-labels-rule", lambda c: ilyas.target_labels(c["y"], 3, "xor"),
     ValueError, r"^rule: unknown value 'xor'; choose one of \['det', 'rand'\]"),
    ("choice", "bootstrap-stat", lambda c: natural.bootstrap_ci(torch.rand(5), stat="mode"),
     ValueError, r"^stat: expected 'median' or 'mean', got 'mode'"),
    ("choice", "gradients-objective", lambda c: transfer.input_gradients(
        c["m"], c["x"], c["y"], objective="hinge"), ValueError,
     r"^objective: expected 'loss' or 'margin', got 'hinge'"),
    ("choice", "plotly-include", lambda c: interactive.plotly_html(
        _figure(), include_plotlyjs="cdn"), ValueError,
     r"^include_plotlyjs: expected 'once', True or False, got 'cdn'"),
    ("choice", "summarize-onoff-keys", lambda c: natural.summarize_onoff({"n": 4}), ValueError,
     r"^result: not an onoff_experiment result, missing \['k'"),
    ("choice", "random-nets-output", lambda c: random_nets.random_relu_networks(
        4, (8,), 2, output="uniform"), ValueError, r"^output: unknown value 'uniform'"),
    ("type", "train-classifier-cached-tuple", lambda c: natural.train_classifier_cached(
        (c["x"], c["y"]), epochs=1), TypeError,
     r"^train_set: expected a dmmlib\.data\.ImageDataset, got tuple"),
    ("type", "reconstruction-ae-str", lambda c: natural.reconstruction_error("ae", c["x"]),
     TypeError, r"^ae: expected a torch\.nn\.Module, got str"),
    ("type", "decode-samples-ae-linear", lambda c: natural.decode_gaussian_samples(
        nn.Linear(4, 4), c["x"], 3), TypeError, r"^ae: expected an autoencoder with \.encoder"),
    ("type", "random-directions-seed-str", lambda c: intriguing.random_directions(
        4, 2, seed="0"), TypeError, r"^seed: expected an int, a torch\.Generator or None"),
    ("type", "boundary-gap-x-range", lambda c: phases.boundary_gap_2d(
        geometry.decision_grid_2d(_model2(), resolution=4), 0.5, x_range=0.5), TypeError,
     r"^x_range: expected a pair \(low, high\)"),
    ("rank", "image-classifier-shape", lambda c: natural.image_classifier((1, 28)), ValueError,
     r"^input_shape: expected \(C, H, W\), got \(1, 28\)"),
    ("rank", "class-purity-1d", lambda c: intriguing.class_purity(torch.tensor([0, 1])),
     ValueError, r"^labels: expected at least 2 dimension"),
    ("label-dtype", "class-purity-float", lambda c: intriguing.class_purity(
        torch.zeros(2, 3)), TypeError, r"^labels: expected integer class indices"),
    ("label-range", "class-purity-n-classes", lambda c: intriguing.class_purity(
        torch.tensor([[0, 4, 1]]), 3), ValueError,
     r"^labels: must lie in \[0, 3\) for n_classes=3, found 4"),
    ("finite", "boundary-gap-line-nan", lambda c: phases.boundary_gap_2d(
        geometry.decision_grid_2d(_model2(), resolution=4), N), ValueError,
     r"^line_y: must be finite, got nan"),
    ("finite", "wavy-z-inf", lambda c: phases.wavy_checkerboard(2, z=INF), ValueError,
     r"^z: must be finite, got inf"),
    ("box", "reconstruction-x-255", lambda c: natural.reconstruction_error(_ae(), c["x"] * 255),
     ValueError, r"^x: pixels must lie in \[0, 1\]"),
    ("count", "animation-interval-zero", lambda c: interactive.animation_html(
        _mpl_figure(), lambda i: None, 2, interval=0), ValueError,
     r"^interval: expected a positive number of milliseconds"),
    ("count", "image-autoencoder-shape-zero", lambda c: natural.image_autoencoder((1, 0, 4), 2),
     ValueError, r"^input_shape: must be >= 1, got 0"),
    ("count", "decode-samples-one-image", lambda c: natural.decode_gaussian_samples(
        _ae(), c["x"][:1], 3), ValueError, r"^x: a Gaussian fit needs at least 2 images"),
    # --- data -----------------------------------------------------------------------
    ("offline", "fashion-offline", "offline", data.DatasetUnavailableError,
     r"^Fashion-MNIST is not available offline.*apt-get install dataset-fashion-mnist.*"
     r"DMM_DATA"),
    ("offline", "mnist-offline", "offline-mnist", data.DatasetUnavailableError,
     r"^MNIST is not available offline .*network is unreachable.*DMM_DATA"),
    ("idx", "idx-truncated", "idx-truncated", ValueError,
     r"truncated or corrupt IDX file \(expected 10 bytes of data for shape \[10\], found 3\)"),
    ("idx", "idx-not-idx", "idx-garbage", ValueError, r"not an unsigned-byte IDX file"),
]


def _special(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases that need the environment or files (named by a string in CASES)."""
    if kind == "env-profile":
        monkeypatch.setenv("DMM_PROFILE", "tiny")
        profiles.get_profile()
    elif kind == "cuda-absent":
        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
        device.get_device("cuda")
    elif kind in ("offline", "offline-mnist"):
        monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
        monkeypatch.setenv("DMM_DATA", str(tmp_path / "empty"))

        def offline(*args, **kwargs):
            raise OSError("network is unreachable")

        monkeypatch.setattr(data, "_torchvision_dataset", offline)
        data.fashion_mnist() if kind == "offline" else data.mnist()
    elif kind == "idx-truncated":
        data.read_idx(_write_bad_idx(tmp_path / "t.idx"))
    elif kind == "idx-garbage":
        (tmp_path / "g.idx").write_bytes(b"PK\x03\x04 not idx")
        data.read_idx(tmp_path / "g.idx")
    else:  # pragma: no cover
        raise AssertionError(kind)


def _modes(m: nn.Module) -> list[bool]:
    return [s.training for s in m.modules()]


@pytest.mark.parametrize("row, call, exc, pattern",
                         [pytest.param(r, call, e, p, id=f"{r}:{i}") for r, i, call, e, p in CASES])
def test_bad_input_is_refused_before_any_work(row, call, exc, pattern, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # stray files would land here
    c = _ctx()
    c["m"].train()
    c["m"].net[0].eval()  # a mixed mode must survive too
    before = {k: v.clone() for k, v in c["m"].state_dict().items()}
    inputs = {k: c[k].clone() for k in ("x", "y", "U")}
    modes = _modes(c["m"])
    with pytest.raises(exc) as info:
        if isinstance(call, str):
            _special(call, tmp_path, monkeypatch)
        else:
            call(c)
    message = str(info.value)
    assert re.search(pattern, message, re.S), f"{type(info.value).__name__}: {message}"
    # nothing was done: weights, gradients, modes, inputs and the cache are untouched
    for k, v in c["m"].state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in c["m"].parameters())
    assert _modes(c["m"]) == modes
    for k, v in inputs.items():
        assert torch.equal(c[k], v), k
    cache_folder = Path(os.environ["DMM_CACHE"])
    assert not cache_folder.exists() or not any(cache_folder.iterdir())
    assert not any(tmp_path.glob("*.pt"))


def test_every_row_has_cases_and_is_in_the_docs():
    rows = {r for r, *_ in CASES}
    assert rows == set(ROWS), set(ROWS) ^ rows
    ids = [i for _, i, *_ in CASES]
    assert len(ids) == len(set(ids))
    page = (ROOT / "book" / "errors.md").read_text()
    for row, situation in ROWS.items():
        assert situation in page, f"book/errors.md lacks the row {row!r}: {situation}"
    assert page.lstrip().startswith("(errors)=") or "# When dmmlib says no" in page


def test_damaged_or_unwritable_cache_is_a_warning_not_an_error(tmp_path, monkeypatch):
    """The two cache rows of the table that are warnings: rebuild, and keep the result."""
    c = _ctx()
    config = {"n": 1}
    assert cache.cached_result("w", config, lambda: {"v": 1.0}) == {"v": 1.0}
    path = next(Path(os.environ["DMM_CACHE"]).iterdir())
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.warns(CacheWarning, match="ignored and will be rebuilt: checksum mismatch"):
        assert cache.cached_result("w", config, lambda: {"v": 1.0}) == {"v": 1.0}

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.os, "replace", full)
    with pytest.warns(CacheWarning, match="could not be written .*No space left"):
        run = train.train_cached(c["m"], (c["x"], c["y"]), epochs=1, progress=False)
    assert not run["cached"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_data_on_another_device_than_the_model_on_a_real_gpu():
    dec = nn.Linear(2, 4).cuda()
    with pytest.raises(ValueError, match=r"^z: is on cpu but the decoder is on cuda"):
        manifold.tangent_basis(dec, torch.zeros(3, 2))
    U, _ = torch.linalg.qr(torch.randn(3, 4, 2))
    with pytest.raises(ValueError, match=r"^basis: is on cuda:0 but v is on cpu"):
        manifold.split_on_off_manifold(torch.rand(3, 4), U.cuda())
    # attacks move the data to the model's device and bring the result back
    model = _model().cuda()
    x = torch.rand(5, 4)
    out = A.fgsm(model, x, torch.tensor([0, 1, 2, 0, 1]), 0.1)
    assert out.device == x.device
