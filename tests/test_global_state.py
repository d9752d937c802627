"""Library functions never change global state they do not restore.

Every public function of dmmlib is called (cheaply) from :data:`REGISTRY`, once
with gradients on and once under ``torch.no_grad()``, and a snapshot of the
global state is compared before and after: the torch, NumPy and Python RNG
states, grad mode, inference mode, anomaly mode, default dtype, deterministic
algorithms, float32 matmul precision, intra-op threads, NumPy print and error
options, the environment, the working directory, the warning filters and
matplotlib's rcParams. The models passed in keep every submodule's train/eval
flag, and their weights, unless training them is the point.

An entry may be allowed to change one thing *because it is asked to*:
``rng`` (it draws from the global RNG by design: model constructors, ``pgd``
without ``seed``, ``seed_everything``), ``rc`` (``plot.set_style``) or
``weights`` (training functions). Everything else must come back as it was.
"""

from __future__ import annotations

import copy
import importlib
import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import dmmlib
import dmmlib.attacks as A
from dmmlib import (
    cache,
    data,
    device,
    ensemble,
    geometry,
    hypotheses,
    manifold,
    models,
    nulls,
    ops,
    profiles,
    synthetic,
    train,
)
from dmmlib.book import fmt, interactive, nb, plot, schematics, scoreboard
from dmmlib.experiments import (
    ilyas,
    intriguing,
    linearity,
    natural,
    phases,
    random_nets,
    rivals,
    transfer,
)

# Public names that are plain types or constants, not functions that do work.
EXEMPT = {
    "cache.CacheWarning", "data.DatasetUnavailableError", "data.DEBIAN_FASHION_MNIST",
    "data.LABEL_RULES", "synthetic.LABEL_RULES", "geometry.BoundarySearch",
    "geometry.Clinging", "geometry.DimpleDepth", "geometry.Grid2D", "geometry.Surface3D",
    "manifold.Split", "manifold.SubspaceBaseline", "plot.PALETTE", "plot.CONCEPT_COLORS",
    "plot.TOY_CLASS_COLORS", "profiles.PROFILES", "scoreboard.Entry",
    # result containers (NamedTuples): plain data
    "ilyas.MislabelledSet", "linearity.LinearityProfile", "attacks.AttackResult",
    "phases.Phases", "random_nets.Crossing", "random_nets.LogLogFit", "random_nets.OneStep",
    "transfer.Alignment", "nb.Setup",
    "nulls.NullBand", "scoreboard.Verdict", "geometry.DimpleProfile",
    "rivals.TiltTask",
    "hypotheses.HypothesisTest", "hypotheses.DimpleTest", "scoreboard.KINDS",
    "scoreboard.EVIDENCE", "scoreboard.STANDINGS",
}
# dmmlib.data re-exports dmmlib.synthetic: the same objects, checked once.
ALIASES = {f"data.{n}": f"synthetic.{n}" for n in synthetic.__all__}


class Ctx:
    """Small inputs for every call; built fresh for each test."""

    def __init__(self, tmp: Path) -> None:
        g = torch.Generator().manual_seed(0)
        self.tmp = tmp
        self.model = self._mlp(64, 10, seed=0)
        self.ds = data.digits(n=24)
        self.x, self.y = self.ds.x[:6], self.ds.y[:6]
        self.U = manifold.random_orthonormal_basis(6, 64, 3, g)
        self.ae = manifold.MLPAutoencoder((1, 8, 8), 3, hidden=(16,))
        self.toy = synthetic.linear_subspace(3, 1, 20, seed=0)
        self.toy_model = self._mlp(3, 2, seed=1)
        self.box = self._mlp(2, 2, seed=2)
        self.cube = self._mlp(3, 2, seed=3)
        self.g = torch.Generator().manual_seed(1)
        state = torch.get_rng_state()
        torch.manual_seed(4)
        self.sae = intriguing.SparseAutoencoder(64, 4)
        torch.set_rng_state(state)
        self.nets = random_nets.random_relu_networks(4, (8,), 2, seed=0)
        self.sphere = random_nets.sphere_points(5, 4, seed=0)

    @staticmethod
    def _mlp(d: int, k: int, seed: int) -> nn.Module:
        state = torch.get_rng_state()
        torch.manual_seed(seed)
        m = models.MLP(d, (8,), k)
        torch.set_rng_state(state)
        return m

    def models(self) -> list[nn.Module]:
        """Every module a call may touch (their modes must survive)."""
        return [self.model, self.ae, self.toy_model, self.box, self.cube, self.sae]


def _idx(path: Path) -> Path:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    path.write_bytes(bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big")
                                                    for d in arr.shape) + arr.tobytes())
    return path


def _fake_fashion(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        imgs = np.zeros((4, 28, 28), dtype=np.uint8)
        for name, arr in ((f"{prefix}-images-idx3-ubyte", imgs),
                          (f"{prefix}-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))):
            (folder / name).write_bytes(bytes([0, 0, 8, arr.ndim]) + b"".join(
                int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes())
    return folder


def _offline(c: Ctx, loader: Callable) -> None:
    """A loader whose download fails: the error path must leave the state alone too."""
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    saved = data._torchvision_dataset, data.DEBIAN_FASHION_MNIST, data.data_dir
    data._torchvision_dataset = offline
    data.DEBIAN_FASHION_MNIST = c.tmp / "no-debian-package"
    data.data_dir = lambda: c.tmp / "no-download-cache"
    try:
        with pytest.raises(data.DatasetUnavailableError):
            loader()
    finally:
        data._torchvision_dataset, data.DEBIAN_FASHION_MNIST, data.data_dir = saved


def _recorder(c: Ctx) -> geometry.GeometryRecorder:
    return geometry.GeometryRecorder(c.toy.x, c.toy.y, c.toy.tangent, every=2, n_scan=4)


def _grid(c: Ctx):
    return geometry.decision_grid_2d(c.box, resolution=5)


# name -> (call(ctx), things it may change because it is asked to)
REGISTRY: dict[str, tuple[Callable[[Ctx], object], frozenset[str]]] = {}


def register(name: str, allowed: tuple[str, ...] = ()):
    def deco(fn: Callable[[Ctx], object]) -> Callable[[Ctx], object]:
        REGISTRY[name] = (fn, frozenset(allowed))
        return fn
    return deco


def _enter(guard) -> None:
    """Enter and leave a context manager, changing the mode inside."""
    with guard as model:
        model.train()


def _add(name: str, fn: Callable[[Ctx], object], *allowed: str) -> None:
    REGISTRY[name] = (fn, frozenset(allowed))


# --- attacks
_add("attacks.fgsm", lambda c: A.fgsm(c.model, c.x, c.y, [0.05, 0.1], progress=False))
_add("attacks.apgd", lambda c: A.apgd(c.model, c.x, c.y, 0.1, steps=3, restarts=2, seed=0,
                                      progress=False))
_add("attacks.dlr_loss", lambda c: A.dlr_loss(c.model(c.x), c.y))
_add("attacks.pgd", lambda c: A.pgd(c.model, c.x, c.y, 0.1, steps=2, restarts=2, seed=0,
                                    progress=False))
_add("attacks.pgd[subspace]", lambda c: A.pgd(c.model, c.x, c.y, 0.5, norm=2, steps=2,
                                              basis=c.U, seed=0, progress=False))
_add("attacks.pgd[global rng]", lambda c: A.pgd(c.model, c.x, c.y, 0.1, steps=2,
                                                progress=False), "rng")
_add("attacks.deepfool", lambda c: A.deepfool(c.model, c.x, c.y, steps=3, progress=False))
_add("attacks.minimal_l2", lambda c: A.minimal_l2(c.model, c.x, c.y, steps=3, progress=False))
_add("attacks.minimal_l2[basis]", lambda c: A.minimal_l2(c.model, c.x, c.y, basis=c.U, steps=3,
                                                         refine=2, progress=False))
_add("attacks.minimal_l2[basis, no box]", lambda c: A.minimal_l2(
    c.model, c.x, c.y, basis=c.U, complement=True, box=False, steps=3, refine=2,
    progress=False))
_add("attacks.carlini_wagner_l2", lambda c: A.carlini_wagner_l2(
    c.model, c.x, c.y, binary_search_steps=1, steps=2, progress=False))
_add("attacks.lbfgs", lambda c: A.lbfgs(c.model, c.x, c.y, binary_search_steps=1, steps=2,
                                        progress=False))
_add("attacks.lbfgs[targeted]", lambda c: A.lbfgs(c.model, c.x, A.random_targets(c.y, 10),
                                                  targeted=True, binary_search_steps=1,
                                                  steps=2, progress=False))
_add("attacks.random_targets", lambda c: A.random_targets(c.y, 10, seed=1))
_add("attacks.random_targets[generator]", lambda c: A.random_targets(
    c.y, 10, seed=torch.Generator().manual_seed(1)))
_add("attacks.robustness_curve", lambda c: A.robustness_curve(
    c.model, c.x, c.y, [0.0, 0.1], steps=2, seed=0, progress=False))
_add("attacks.robustness_curve[minimal]", lambda c: A.robustness_curve(
    c.model, c.x, c.y, [0.5], attack="deepfool", steps=2, progress=False))
# --- nulls
_add("nulls.on_fraction_null", lambda c: nulls.on_fraction_null(50, 2))
_add("nulls.median_on_fraction_null", lambda c: nulls.median_on_fraction_null(50, 2, 5, draws=20))
_add("nulls.band", lambda c: nulls.band([0.1, 0.2, 0.3], kind="seeds"))
_add("nulls.decide", lambda c: nulls.decide(0.1, nulls.band([0.2, 0.3], kind="s"), "below"))
# --- ops
_add("ops.preserved_modes", lambda c: _enter(ops.preserved_modes(c.model)))
_add("ops.eval_mode", lambda c: _enter(ops.eval_mode(c.model)))
_add("ops.margin", lambda c: ops.margin(c.model(c.x.flatten(1)).detach(), c.y))
_add("ops.pair_margin", lambda c: ops.pair_margin(c.model(c.x.flatten(1)).detach(), c.y,
                                                  (c.y + 1) % 10))
_add("ops.margin_and_grad", lambda c: ops.margin_and_grad(c.model, c.x.flatten(1), c.y))
_add("ops.batch_view", lambda c: ops.batch_view(torch.ones(6), c.x))
_add("ops.flat_norm", lambda c: ops.flat_norm(c.x, "inf"))
_add("ops.parse_norm", lambda c: ops.parse_norm("l2"))
_add("ops.working_dtype", lambda c: ops.working_dtype(c.model))
# --- cache
_add("cache.cache_dir", lambda c: cache.cache_dir())
_add("cache.config_key", lambda c: cache.config_key({"a": [1, 2.0, "x"]}))
_add("cache.entry_path", lambda c: cache.entry_path("ab" * 32, "net"))
_add("cache.save_entry", lambda c: cache.save_entry(c.tmp / "e.pt", "k", {"w": torch.ones(2)}))


@register("cache.load_entry")
def _(c: Ctx):
    cache.save_entry(c.tmp / "f.pt", "k", {"w": torch.ones(2)})
    (c.tmp / "bad.pt").write_bytes(b"garbage")
    with pytest.warns(cache.CacheWarning):
        cache.load_entry(c.tmp / "bad.pt", "k")
    return cache.load_entry(c.tmp / "f.pt", "k")


_add("cache.source_fingerprint", lambda c: cache.source_fingerprint())
_add("cache.cached_training", lambda c: cache.cached_training(
    c.toy_model, lambda: {"loss": [0.0]}, {"i": 1}, name="gs"))
_add("cache.module_fingerprint", lambda c: cache.module_fingerprint(c.model))
_add("cache.cached_result", lambda c: [cache.cached_result("g", {"i": 1}, lambda: {"v": 1.0})
                                       for _ in range(2)])
# --- data
_add("data.data_dir", lambda c: data.data_dir())
_add("data.read_idx", lambda c: data.read_idx(_idx(c.tmp / "a.idx")))
_add("data.fashion_mnist", lambda c: data.fashion_mnist(root=_fake_fashion(c.tmp / "fm"), n=2))
_add("data.fashion_mnist[offline]", lambda c: _offline(
    c, lambda: data.fashion_mnist(root=c.tmp / "none")))
_add("data.mnist", lambda c: _offline(c, lambda: data.mnist(root=c.tmp / "none")))
_add("data.cifar10", lambda c: _offline(c, lambda: data.cifar10(root=c.tmp / "none")))
_add("data.digits", lambda c: data.digits(n=5))
_add("data.load_dataset", lambda c: data.load_dataset("digits", n=5))
_add("data.ImageDataset", lambda c: c.ds.head(3).to("cpu"))
# --- device
_add("device.get_device", lambda c: device.get_device("cpu"))
_add("device.seed_everything", lambda c: device.seed_everything(3), "rng")
_add("device.module_device", lambda c: device.module_device(c.model))
# --- ensemble
_add("ensemble.Ensemble", lambda c: (lambda e: (e(c.toy.x), e.predict(c.toy.x),
                                               e.accuracy(c.toy.x, c.toy.y), e.models()))(
    ensemble.Ensemble.from_models([c.toy_model, c.toy_model])))
_add("ensemble.train_ensemble", lambda c: ensemble.train_ensemble(
    [c.toy_model, c.toy_model], (c.toy.x, c.toy.y), epochs=2, batch_size=8,
    callback=_recorder(c), progress=False))
# --- geometry
_add("geometry.boundary_point_along", lambda c: geometry.boundary_point_along(
    c.model, c.x, torch.ones_like(c.x), n_scan=4))
_add("geometry.nearest_boundary_point", lambda c: geometry.nearest_boundary_point(
    c.model, c.x, c.y, steps=3, progress=False))
_add("geometry.logit_margin", lambda c: geometry.logit_margin(c.model, c.x, c.y))
_add("geometry.boundary_normal", lambda c: geometry.boundary_normal(c.model, c.x, c.y))
_add("geometry.clinging", lambda c: geometry.clinging(c.x, c.U))
_add("geometry.dimple_depth", lambda c: geometry.dimple_depth(c.model, c.x, c.y, c.U,
                                                              n_scan=4))
_add("geometry.GeometryRecorder", lambda c: train.fit(
    c.toy_model, (c.toy.x, c.toy.y), epochs=1, batch_size=8, callback=_recorder(c),
    progress=False), "weights")
_add("geometry.decision_grid_2d", _grid)
_add("geometry.decision_surface_3d", lambda c: geometry.decision_surface_3d(c.cube,
                                                                            resolution=4))
_add("geometry.dimple_profile", lambda c: geometry.dimple_profile(
    c.box, torch.rand(6, 2, generator=c.g), torch.eye(2, 1).expand(6, 2, 1),
    torch.rand(3, 2, generator=c.g)))
_add("nulls.binomial_null", lambda c: nulls.binomial_null(20, 0.3))
_add("nulls.bootstrap_median", lambda c: nulls.bootstrap_median([0.1, 0.2, 0.4], kind="s",
                                                               draws=20))
_add("nulls.mapped", lambda c: nulls.mapped(nulls.band([0.2, 0.3], kind="s"), lambda v: 2 * v,
                                            kind="2x", increasing=True))
_add("hypotheses.spearman_null", lambda c: hypotheses.spearman_null(10))
_add("hypotheses.linear_classifier", lambda c: hypotheses.linear_classifier(
    c.toy.x, c.toy.y, steps=3))
_add("hypotheses.clinging_test", lambda c: hypotheses.clinging_test(
    c.toy_model, c.toy.x[:4], c.toy.y[:4], c.toy.tangent[:4]))
_add("hypotheses.dimple_test", lambda c: hypotheses.dimple_test(
    c.box, torch.rand(6, 2, generator=c.g), torch.eye(2, 1).expand(6, 2, 1),
    torch.rand(3, 2, generator=c.g), torch.tensor([0, 1, 0]),
    locality_null=hypotheses.spearman_null(6)))
_add("phases.flat_probes", lambda c: phases.flat_probes(synthetic.five_points_line(), 5))
_add("phases.on_fraction_over_seeds", lambda c: phases.on_fraction_over_seeds(
    [c.toy_model], c.toy.x[:4], c.toy.y[:4], c.toy.tangent[:4]))
_add("phases.dimple_over_seeds", lambda c: phases.dimple_over_seeds(
    [c.box], [c.box, c.box, c.box], synthetic.five_points_line(),
    *phases.flat_probes(synthetic.five_points_line(), 8), max_distance=3.0))
_add("scoreboard.describe", lambda c: scoreboard.describe(scoreboard.record_verdict(
    "gs.d", chapter="c", hypothesis="h", measured=0.1, null=nulls.band([0.2, 0.3], kind="s"),
    predicts="below", profile="ci")))
_add("scoreboard.tally", lambda c: scoreboard.tally([scoreboard.record_verdict(
    "gs.t", chapter="c", hypothesis="h", measured=0.1, null=nulls.band([0.2, 0.3], kind="s"),
    predicts="below", profile="ci")]))
_add("scoreboard.describe_tally", lambda c: scoreboard.describe_tally([]))
_add("scoreboard.explanation_table", lambda c: scoreboard.explanation_table(
    [], [scoreboard.Experiment("e", "k", {"X": "supports"})], ["X"]))
_add("scoreboard.Experiment", lambda c: scoreboard.Experiment("e", "k", {"X": "supports"}))
_add("scoreboard.separations", lambda c: scoreboard.separations(
    [scoreboard.Experiment("e", "k", {"X": "supports", "Y": "contradicts"})], ["X", "Y"]))
_add("scoreboard.measurement_groups", lambda c: scoreboard.measurement_groups([]))
_add("scoreboard.one_reading", lambda c: scoreboard.one_reading([scoreboard.record_verdict(
    "gs.o", chapter="c", hypothesis="h", measured=0.1, null=nulls.band([0.2, 0.3], kind="s"),
    predicts="below", profile="ci")]))
_add("scoreboard.read_once", lambda c: scoreboard.read_once([]))
_add("scoreboard.evidence", lambda c: scoreboard.evidence(
    [], [scoreboard.Experiment("e", "k", {"X": "supports"})], ["X"]))
_add("scoreboard.standing", lambda c: scoreboard.standing(
    {g: [] for g in scoreboard.EVIDENCE}))
_add("scoreboard.conclusion", lambda c: scoreboard.conclusion(
    "X", {g: [] for g in scoreboard.EVIDENCE}))
_add("scoreboard.closing", lambda c: scoreboard.closing({"X": "untested"}))
_add("nb.glue_outcome", lambda c: nb.glue_outcome(
    "gs", "supports", {"supports": "a", "contradicts": "b", "cannot distinguish": "c"}))
_add("geometry.level_set_mesh", lambda c: geometry.level_set_mesh(
    torch.linspace(-1, 1, 27).reshape(3, 3, 3)))
# --- manifold
_add("manifold.MLPAutoencoder", lambda c: manifold.MLPAutoencoder(8, 2)(torch.rand(3, 8)),
     "rng")
_add("manifold.ConvAutoencoder", lambda c: manifold.ConvAutoencoder(
    (1, 4, 4), 2, width=2)(torch.rand(2, 1, 4, 4)), "rng")
_add("manifold.fit_autoencoder", lambda c: manifold.fit_autoencoder(
    c.ae, c.ds.x, epochs=1, batch_size=8, progress=False), "weights")
_add("manifold.fit_autoencoder_cached", lambda c: [manifold.fit_autoencoder_cached(
    c.ae, c.ds.x, epochs=1, batch_size=8, progress=False) for _ in range(2)], "weights")
_add("manifold.decoder_jacobian", lambda c: manifold.decoder_jacobian(c.ae.decoder,
                                                                      torch.zeros(2, 3)))
_add("manifold.tangent_basis", lambda c: manifold.tangent_basis(c.ae.decoder, torch.zeros(2, 3),
                                                                chunk_size=1))
_add("manifold.tangent_basis_at", lambda c: manifold.tangent_basis_at(c.ae, c.x))
_add("manifold.split_on_off_manifold", lambda c: manifold.split_on_off_manifold(c.x, c.U))
_add("manifold.shuffled_basis_null", lambda c: manifold.shuffled_basis_null(c.x, c.U, shifts=2))
_add("manifold.support_matched_null", lambda c: manifold.support_matched_null(
    c.x, c.U, torch.ones(c.x[0].numel()), draws=2))
_add("manifold.random_orthonormal_basis", lambda c: manifold.random_orthonormal_basis(
    2, 5, 2, c.g))
_add("manifold.random_orthonormal_basis[global rng]",
     lambda c: manifold.random_orthonormal_basis(2, 5, 2), "rng")
_add("manifold.random_subspace_fractions", lambda c: manifold.random_subspace_fractions(
    c.x, 3, c.g))
_add("manifold.random_subspace_baseline", lambda c: manifold.random_subspace_baseline(
    10, 3, n_samples=100, seed=c.g))
_add("manifold.random_subspace_baseline[int seed]", lambda c: manifold.random_subspace_baseline(
    10, 3, n_samples=100, seed=0))
_add("manifold.principal_angles", lambda c: manifold.principal_angles(c.U, c.U[:, :, :2]))
# --- models
_add("models.Normalize", lambda c: models.Normalize([0.5], [0.25])(c.x))
_add("models.MLP", lambda c: models.MLP(64, (4,), 3)(c.x), "rng")
_add("models.SmallCNN", lambda c: models.SmallCNN(width=2, image_size=8)(c.x), "rng")
_add("models.count_parameters", lambda c: models.count_parameters(c.model))
# --- notebooks and figures
_add("fmt.pct", lambda c: fmt.pct(0.002))
_add("fmt.span", lambda c: fmt.span(1.0, 2.0))
_add("fmt.article", lambda c: fmt.article("Ankle boot"))
_add("fmt.header", lambda c: fmt.header(("gap", "mean")))
_add("fmt.table", lambda c: fmt.table(__import__("pandas").DataFrame({"a_b": [0.5]})).to_html())
_add("schematics.pockets", lambda c: schematics.pockets().savefig(c.tmp / "s.png"))
_add("schematics.linearity", lambda c: schematics.linearity().savefig(c.tmp / "s.png"))
_add("schematics.boundary_tilting",
     lambda c: schematics.boundary_tilting().savefig(c.tmp / "s.png"))
_add("schematics.concentration", lambda c: schematics.concentration(
    dims=(3, 50)).savefig(c.tmp / "s.png"))
_add("schematics.cap_expansion", lambda c: schematics.cap_expansion(10, 0.01, [0.0, 0.5]))
_add("schematics.stretchy_features",
     lambda c: schematics.stretchy_features().savefig(c.tmp / "s.png"))
_add("schematics.clinging_dimpling",
     lambda c: schematics.clinging_dimpling().savefig(c.tmp / "s.png"))
_add("nb.glue", lambda c: nb.glue("answer", "42"))
_add("nb.in_colab", lambda c: nb.in_colab())
_add("nb.static_figures", lambda c: nb.static_figures())
_add("nb.explore", lambda c: nb.explore(lambda v, ax: ax.plot([0, v]), [1, 2, 3], label="v"))
_add("nb.profile_note", lambda c: nb.profile_note(profiles.get_profile("ci"), "cpu",
                                                  "trains longer"))
_add("plot.set_style", lambda c: plot.set_style(), "rc")
_add("plot.show_images", lambda c: plot.show_images(c.x, titles=list("abcdef"), ncols=3))
_add("plot.show_perturbation", lambda c: plot.show_perturbation(
    c.x[0] - c.x[1], plt.subplots()[1], "d"))
_add("plot.adversarial_grid", lambda c: plot.adversarial_grid(
    c.x, c.x.flip(0), c.y.tolist(), c.y.tolist(), [str(i) for i in range(10)], n=2))
if hasattr(plot, "seed_band"):
    _add("plot.seed_band", lambda c: plot.seed_band(plt.subplots()[1], [0, 1],
                                                    torch.rand(3, 2, generator=c.g),
                                                    "#000000"))
if hasattr(plot, "decision_boundary_2d"):
    _add("plot.decision_boundary_2d", lambda c: plot.decision_boundary_2d(
        plt.subplots()[1], _grid(c), torch.rand(4, 2, generator=c.g),
        torch.tensor([0, 1, 0, 1])))
if hasattr(plot, "decision_surface_snapshot"):
    _add("plot.decision_surface_snapshot", lambda c: plot.decision_surface_snapshot(
        plt.figure().add_subplot(projection="3d"),
        geometry.decision_surface_3d(c.cube, resolution=4), torch.rand(4, 3, generator=c.g),
        torch.tensor([0, 1, 0, 1])))
# --- profiles, scoreboard
_add("profiles.get_profile", lambda c: profiles.get_profile("ci").replace(epochs=1))
_add("profiles.profile_name", lambda c: profiles.profile_name())
_add("profiles.Profile", lambda c: profiles.Profile(**{**profiles.PROFILES["ci"].__dict__,
                                                        "name": "x"}))
_add("scoreboard.record", lambda c: scoreboard.record(
    "k", chapter="c", quantity="q", ours=1.0, published=1.0, source="s", rel_tol=0.1,
    profile="ci"))
_add("scoreboard.load", lambda c: scoreboard.load("ci"))
_add("scoreboard.scoreboard_path", lambda c: scoreboard.scoreboard_path("ci"))
_add("scoreboard.clear", lambda c: scoreboard.clear("ci"))
_add("scoreboard.verdicts_path", lambda c: scoreboard.verdicts_path("ci"))
_add("scoreboard.record_verdict", lambda c: scoreboard.record_verdict(
    "gs.v", chapter="c", hypothesis="h", measured=0.1, null=nulls.band([0.2, 0.3], kind="s"),
    predicts="below", profile="ci"))
_add("scoreboard.load_verdicts", lambda c: scoreboard.load_verdicts("ci"))
# --- synthetic
_add("synthetic.orthonormal_basis", lambda c: synthetic.orthonormal_basis(5, 2, seed=1))
_add("synthetic.label_coordinates", lambda c: synthetic.label_coordinates(
    torch.rand(6, 2, generator=c.g), "checkerboard"))
_add("synthetic.linear_subspace", lambda c: synthetic.linear_subspace(4, 2, 10, seed=1))
_add("synthetic.sinusoidal_surface", lambda c: synthetic.sinusoidal_surface(4, 2, 10, seed=1))
_add("synthetic.sphere_patch", lambda c: synthetic.sphere_patch(4, 2, 10, seed=1))
_add("synthetic.five_points_line", lambda c: synthetic.five_points_line())
_add("synthetic.checkerboard_plane", lambda c: synthetic.checkerboard_plane(2))
_add("synthetic.ManifoldDataset", lambda c: c.toy.to("cpu"))
# --- training
_add("train.fit", lambda c: train.fit(c.model, (c.ds.x, c.ds.y), epochs=1, batch_size=8,
                                      progress=False), "weights")
_add("train.predict", lambda c: train.predict(c.model, c.x, batch_size=4))
_add("train.accuracy", lambda c: train.accuracy(c.model, c.ds))
_add("train.train_cached", lambda c: [train.train_cached(c.model, c.ds, epochs=1, batch_size=8,
                                                         progress=False) for _ in range(2)],
     "weights")
_add("train.tensor_fingerprint", lambda c: train.tensor_fingerprint(c.x))
_add("train.progress_enabled", lambda c: train.progress_enabled(None))
# --- ilyas
_add("ilyas.target_labels", lambda c: (ilyas.target_labels(c.y, 10),
                                       ilyas.target_labels(c.y, 10, "rand", seed=1)))
_add("ilyas.mislabelled_dataset", lambda c: ilyas.mislabelled_dataset(
    c.model, c.x, c.y, n_classes=10, eps=0.5, steps=2, batch_size=4, progress=False))
_add("ilyas.teacher_error_set", lambda c: ilyas.teacher_error_set(c.model, c.x, c.y,
                                                                  batch_size=4))
_add("ilyas.tilted_linear_teacher", lambda c: ilyas.tilted_linear_teacher(
    torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), 0.5))


# --- interactive
def _surfaces(c: Ctx) -> list:
    return [("step 0", geometry.decision_surface_3d(c.cube, resolution=4))]


_add("interactive.boundary_surface_figure", lambda c: interactive.boundary_surface_figure(
    _surfaces(c), torch.rand(4, 3, generator=c.g), torch.tensor([0, 1, 0, 1])))
_add("interactive.plotly_html", lambda c: interactive.plotly_html(
    interactive.boundary_surface_figure(_surfaces(c), torch.rand(4, 3, generator=c.g),
                                        torch.tensor([0, 1, 0, 1])),
    include_plotlyjs=False))


@register("interactive.animation_html")
def _(c: Ctx):
    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    return interactive.animation_html(fig, lambda i: ax.plot([0, i]), 2)


# --- intriguing
_add("intriguing.rms_distortion", lambda c: intriguing.rms_distortion(c.x.flip(0), c.x))
_add("intriguing.scale_to_distortion", lambda c: intriguing.scale_to_distortion(
    c.x, torch.ones_like(c.x), 0.05, iters=4))
_add("intriguing.gaussian_noise", lambda c: intriguing.gaussian_noise(c.x, 0.1, seed=c.g))
_add("intriguing.gaussian_noise[int seed]", lambda c: intriguing.gaussian_noise(c.x, 0.1, seed=3))
_add("intriguing.gaussian_noise[global rng]", lambda c: intriguing.gaussian_noise(c.x, 0.1),
     "rng")
_add("intriguing.SparseAutoencoder", lambda c: intriguing.SparseAutoencoder(64, 4)(c.x),
     "rng")
_add("intriguing.AEClassifier", lambda c: intriguing.AEClassifier(c.sae.encoder, 4, 10,
                                                                  freeze=False)(c.x), "rng")
_add("intriguing.fit_sparse_autoencoder", lambda c: intriguing.fit_sparse_autoencoder(
    c.sae, c.x, epochs=1, batch_size=4, progress=False), "weights")
_add("intriguing.fit_sparse_autoencoder_cached", lambda c: [
    intriguing.fit_sparse_autoencoder_cached(c.sae, c.x, epochs=1, batch_size=4,
                                             progress=False) for _ in range(2)], "weights")
_add("intriguing.error_rate", lambda c: intriguing.error_rate(c.model, c.x, c.y, 4))
_add("intriguing.transfer_matrix", lambda c: intriguing.transfer_matrix(
    {"clean": c.x, "flipped": c.x.flip(0)}, {"mlp": c.model}, c.y))
_add("intriguing.layer_activations", lambda c: intriguing.layer_activations(
    c.model, c.model.net[1], c.x, batch_size=4))
_add("intriguing.random_directions", lambda c: intriguing.random_directions(8, 3, seed=c.g))
_add("intriguing.random_directions[global rng]", lambda c: intriguing.random_directions(8, 3),
     "rng")
_add("intriguing.top_activating", lambda c: intriguing.top_activating(
    torch.rand(6, 8, generator=c.g), torch.eye(8), 2))
_add("intriguing.class_purity", lambda c: intriguing.class_purity(
    torch.tensor([[0, 1, 1], [2, 2, 2]]), 3))
_add("intriguing.mixed_perturb", lambda c: intriguing.mixed_perturb(
    lambda m, x, y: A.fgsm(m, x, y, 0.1), 0.5)(c.model, c.x, c.y))
# --- linearity
_add("linearity.margin_and_gradient", lambda c: linearity.margin_and_gradient(
    c.model, c.x, c.y))
_add("linearity.linearity_profile", lambda c: linearity.linearity_profile(
    c.model, c.x, c.y, n_points=5))
_add("linearity.linearity_profile[basis]", lambda c: linearity.linearity_profile(
    c.model, c.x, c.y, basis=c.U, complement=True, n_points=5))


# --- natural
def _predicted(c: Ctx) -> torch.Tensor:
    """Labels the (untrained) model gets right: the experiment keeps only those."""
    return train.predict(c.model, c.x)


def _onoff(c: Ctx) -> dict:
    return natural.onoff_experiment(c.model, c.ae, c.x, _predicted(c), pgd_eps=0.5,
                                    pgd_steps=2, attack_steps=2, progress=False)


_add("natural.load_with_fallback", lambda c: natural.load_with_fallback(
    "digits", n_train=5, n_test=5))
_add("natural.load_with_fallback[offline]", lambda c: _offline(  # falls back, then fails
    c, lambda: (natural.load_with_fallback("mnist", n_train=5, n_test=5, fallback="digits"),
                natural.load_with_fallback("mnist", n_train=5, n_test=5))))
_add("natural.image_classifier", lambda c: natural.image_classifier((1, 8, 8), 10)(c.x), "rng")
_add("natural.image_autoencoder", lambda c: natural.image_autoencoder((1, 8, 8), 3), "rng")
_add("natural.train_classifier_cached", lambda c: [natural.train_classifier_cached(
    c.ds, epochs=1, batch_size=8) for _ in range(2)])
_add("natural.train_autoencoder_cached", lambda c: [natural.train_autoencoder_cached(
    c.ds, 3, epochs=1, batch_size=8) for _ in range(2)])
_add("natural.reconstruction_error", lambda c: natural.reconstruction_error(c.ae, c.x, 4))
_add("natural.decode_gaussian_samples", lambda c: natural.decode_gaussian_samples(
    c.ae, c.ds.x, 3))
_add("natural.onoff_experiment", _onoff)
_add("natural.latent_attack", lambda c: natural.latent_attack(
    c.model, c.ae, c.x, _predicted(c), budgets=[0.5], steps=2, progress=False))
_add("natural.onoff_cached", lambda c: [natural.onoff_cached(
    c.model, c.ae, c.x, _predicted(c), pgd_eps=0.5, pgd_steps=2, attack_steps=2)
    for _ in range(2)])
_add("natural.summarize_onoff", lambda c: natural.summarize_onoff(_onoff(c), n_boot=10))
_add("natural.bootstrap_ci", lambda c: natural.bootstrap_ci(torch.rand(9, generator=c.g),
                                                            n_boot=10))


# --- phases
def _toy_ensemble(c: Ctx) -> ensemble.Ensemble:
    return ensemble.Ensemble.from_models([c.toy_model, c.toy_model])


@register("phases.ParamSnapshots")
def _(c: Ctx):
    snaps = phases.ParamSnapshots([0, 2])
    ens = _toy_ensemble(c)
    snaps.initial(ens)
    ensemble.train_ensemble(ens, (c.toy.x, c.toy.y), epochs=1, batch_size=8, callback=snaps,
                            progress=False)
    return snaps.ensemble_at(2)(c.toy.x)


@register("phases.EnsembleGeometry")
def _(c: Ctx):
    rec = phases.EnsembleGeometry(c.toy.x[:4], c.toy.y[:4], c.toy.tangent[:4], [0, 2],
                                  n_scan=4)
    ens = _toy_ensemble(c)
    rec.initial(ens)
    ensemble.train_ensemble(ens, (c.toy.x, c.toy.y), epochs=1, batch_size=8, callback=rec,
                            progress=False)
    return rec.history()


_add("phases.scale_init", lambda c: phases.scale_init(c.toy_model, 2.0), "weights")
_add("phases.detect_phases", lambda c: phases.detect_phases(
    torch.arange(4), torch.tensor([False, True, True, True]),
    torch.tensor([0.5, 0.6, 0.9, 0.9])))
_add("phases.boundary_gap_2d", lambda c: phases.boundary_gap_2d(_grid(c), 0.5, (-1.0, 1.0)))
_add("phases.line_gap", lambda c: phases.line_gap(c.box, shape=(5, 9)))
_add("phases.untrained_on_fractions", lambda c: phases.untrained_on_fractions(
    [c.model], c.x, c.U, steps=20))
_add("phases.gain_ratio_test", lambda c: phases.gain_ratio_test(
    [1.0, 2.0], [1.0, 1.5], [3.0, 4.0], [1.0, 1.0]))
_add("phases.tininess_linear_null", lambda c: phases.tininess_linear_null(
    c.ds.x[:16], c.ds.y[:16], c.x, c.y, torch.ones(len(c.x)), draws=2, fit_steps=5, steps=3))
_add("phases.orthogonal_drift", lambda c: phases.orthogonal_drift(
    torch.rand(2, 4, 3, generator=c.g), torch.rand(2, 4, 3, generator=c.g), torch.eye(3, 2)))
_add("phases.wavy_checkerboard", lambda c: phases.wavy_checkerboard(2, jitter=True, seed=1))
# --- random_nets
_add("random_nets.random_relu_networks", lambda c: random_nets.random_relu_networks(
    4, (8, 8), 2, output="sign", seed=1))
_add("random_nets.RandomReLUNetworks", lambda c: (
    c.nets(c.sphere), c.nets.value_and_grad(c.sphere), c.nets.network(1)(c.sphere),
    c.nets.to(dtype=torch.float64)(c.sphere.double())))
_add("random_nets.relu_network", lambda c: random_nets.relu_network(
    [w[0] for w in c.nets.weights], c.sphere))
_add("random_nets.sphere_points", lambda c: random_nets.sphere_points(3, 4, n_sets=2, seed=2))
_add("random_nets.linearity_ratio", lambda c: random_nets.linearity_ratio(
    *c.nets.value_and_grad(c.sphere), c.sphere))
_add("random_nets.one_step_attack", lambda c: random_nets.one_step_attack(c.nets, c.sphere))
_add("random_nets.crossing_along_gradient", lambda c: random_nets.crossing_along_gradient(
    c.nets, c.sphere, n_scan=2, tol=0.2))
_add("random_nets.linearization_error", lambda c: random_nets.linearization_error(
    c.nets, c.sphere))
_add("random_nets.relu_correlation", lambda c: random_nets.relu_correlation(0.5, 3))
_add("random_nets.loglog_fit", lambda c: random_nets.loglog_fit(
    [1.0, 2.0, 4.0], torch.rand(3, 3, generator=c.g) + 0.1, n_boot=10))
# --- transfer
_add("transfer.input_gradients", lambda c: (
    transfer.input_gradients(c.model, c.x, c.y, batch_size=4),
    transfer.input_gradients(c.model, c.x, c.y, objective="margin")))
_add("transfer.cosine_similarity", lambda c: transfer.cosine_similarity(c.x, c.x.flip(0)))
_add("transfer.gradient_alignment", lambda c: (
    transfer.gradient_alignment(c.x, c.x.flip(0), c.U), transfer.gradient_alignment(c.x, c.x)))
_add("transfer.random_cosine_scale", lambda c: transfer.random_cosine_scale(64))
_add("transfer.error_rate", lambda c: transfer.error_rate(c.model, c.x, c.y, 4))
_add("transfer.equal_norm_noise", lambda c: transfer.equal_norm_noise(
    c.x, torch.full((6,), 0.5), seed=1))
_add("transfer.random_targets", lambda c: transfer.random_targets(c.y, 10, seed=1))
_add("transfer.targeted_examples", lambda c: transfer.targeted_examples(
    c.model, c.x, transfer.random_targets(c.y, 10), eps=0.5, steps=2, batch_size=4))
# --- chapter setup, shared chapter settings, the old-model chapter's measurements
_add("nb.setup", lambda c: (nb.setup(), nb.setup("trains longer", seed=1,
                                                 sizes={"ci": {"k": 2, "n_attack": None},
                                                        "cpu": {}, "gpu": {}})), "rng", "rc")
_add("plot.seed_band[quantiles]", lambda c: plot.seed_band(
    plt.subplots()[1], [0, 1], torch.rand(5, 2, generator=c.g), "#000000",
    center="median", spread=(0.1, 0.9), marker="o"))
_add("natural.adv_perturb", lambda c: natural.adv_perturb(c.model, c.x, c.y, steps=2))
_add("natural.train_robust_classifier_cached", lambda c: [natural.train_robust_classifier_cached(
    c.ds, epochs=1, steps=1) for _ in range(2)])
_add("linearity.half_moons", lambda c: (linearity.half_moons(8, 0),
                                        linearity.half_moons(8, 1, basis=torch.eye(4)[:, :2])))
_add("linearity.nearest_other", lambda c: linearity.nearest_other(c.x, c.y, c.ds.x, c.ds.y))
_add("linearity.knn_other", lambda c: linearity.knn_other(c.x, c.y, c.ds.x, c.ds.y, k=3))
_add("linearity.nearest_adversarial", lambda c: linearity.nearest_adversarial(
    c.model, c.x.flatten(1), c.y))
_add("linearity.gaussian_task", lambda c: linearity.gaussian_task(4, 6, seed=0))
_add("linearity.fgsm_flip_budget", lambda c: linearity.fgsm_flip_budget(
    c.model, c.x.flatten(1), c.y, torch.randn(6, 64, generator=c.g), iters=3))
_add("linearity.dimension_experiment", lambda c: linearity.dimension_experiment(
    [2], n_train=8, n_test=6, seeds=1, steps=2, hidden=(4,)), "rng", "weights")
_add("linearity.plane_experiment", lambda c: linearity.plane_experiment(
    [2], n_train=40, n_test=20, seeds=1, steps=5, hidden=(8,)), "rng", "weights")
_add("random_nets.sweep_dimension", lambda c: random_nets.sweep_dimension([4, 8], 8, 2, 4))
_add("random_nets.sweep_width", lambda c: random_nets.sweep_width(8, [4, 8], 2, 4))
_add("random_nets.sweep_bottleneck", lambda c: random_nets.sweep_bottleneck(8, 8, [2], 2, 4))
_add("random_nets.sweep_depth", lambda c: random_nets.sweep_depth(8, 8, [1, 2], 2, 4))
_add("phases.minimal_perturbations", lambda c: (
    phases.minimal_perturbations(c.model, c.x, c.y, steps=3),
    phases.minimal_perturbations(c.toy_model, c.toy.x[:4], c.toy.y[:4], steps=3,
                                 tangent=c.toy.tangent[:4])))
_add("phases.mean_class_distance", lambda c: phases.mean_class_distance(c.ds.x, c.ds.y))
_add("phases.tininess_row", lambda c: phases.tininess_row(
    "d", 1.0, torch.rand(6, generator=c.g), torch.ones(6, dtype=torch.bool),
    torch.rand(6, generator=c.g), c.ds.x, c.ds.y))
_add("transfer.mislabelled_sets", lambda c: transfer.mislabelled_sets(
    c.model, c.model, c.x, c.y, 10, eps=0.5, steps=2))
_add("transfer.train_on_relabelled", lambda c: transfer.train_on_relabelled(
    {"a": c.ds.x, "b": c.ds.x.flip(0)}, c.ds.y, c.ds, c.ds, epochs=1))
_add("intriguing.train_paper_mlp", lambda c: intriguing.train_paper_mlp(
    "t", (4,), 1e-4, c.ds, mean=0.5, std=0.3, epochs=1, batch_size=8), "rng", "weights")
_add("intriguing.train_ae400", lambda c: intriguing.train_ae400(
    c.ds, epochs=1, ae_epochs=1, batch_size=8), "rng", "weights")
_add("phases.scaled_mlp", lambda c: phases.scaled_mlp(3, 4, 2.0, 0), "rng")
_add("phases.train_recorded", lambda c: phases.train_recorded(
    [phases.scaled_mlp(3, 4, 1.0, s) for s in range(2)], (c.toy.x, c.toy.y),
    phases.ParamSnapshots([0, 2]), epochs=2, lr=0.1), "rng")
_add("intriguing.table1_sentences", lambda c: intriguing.table1_sentences(
    __import__("pandas").DataFrame({"distortion (L-BFGS)": [0.1, 0.2, 0.3],
                                    "distortion (min-norm)": [0.1, 0.1, 0.2],
                                    "paper: distortion": [0.1, 0.2, 0.2]},
                                   index=["FC10(1e-4)", "FC10(1e-2)", "FC10(1)"]),
    {"a": 0.9}, {"FC10(1e-4)": 0.1, "FC10(1e-2)": 0.1, "FC10(1)": 0.2}, 0.5, 64, 6, "MNIST"))
_add("phases.factor_sweep", lambda c: phases.factor_sweep(
    c.toy.x, c.toy.y, c.toy.tangent, torch.arange(3),
    [{"alpha": 1.0, "wd": 0.0, "lr_mult": 1.0, "width": 4}], seeds=1, steps=2, lr0=0.1,
    momentum=0.9), "rng")
_add("phases.explains_manifolds", lambda c: phases.explains_manifolds(4, 2, 10, 5))
# --- rivals
_add("rivals.tilt_task", lambda c: rivals.tilt_task(6, 2, 10, seed=1))
_add("rivals.affine_direction", lambda c: rivals.affine_direction(c.toy_model, 3))
_add("rivals.centroid_direction", lambda c: rivals.centroid_direction(c.toy.x, c.toy.y))
_add("rivals.tilt_geometry", lambda c: rivals.tilt_geometry(
    torch.ones(3), 0.1, torch.eye(3)[:, :1], c.toy.x))
_add("rivals.locality_null", lambda c: rivals.locality_null(geometry.DimpleProfile(
    torch.rand(8, generator=c.g).double(), torch.ones(8, dtype=torch.bool),
    torch.rand(8, generator=c.g).double(), torch.rand(8, 1, generator=c.g).double(), 0.1, 0.0),
    draws=10))
_add("rivals.tilt_experiment", lambda c: rivals.tilt_experiment(
    n=6, k=2, n_train=10, n_test=20, weight_decays=[0.0, 0.1], seeds=1, steps=3, hidden=4,
    net_steps=3, centroid_sets=3), "rng", "weights")
_add("rivals.sphere_data", lambda c: rivals.sphere_data(4, 10, seed=0))
_add("rivals.sphere_pgd", lambda c: rivals.sphere_pgd(
    c.toy_model, c.toy.x, c.toy.y, torch.full((20,), 0.1), steps=2))
_add("rivals.on_sphere_distance", lambda c: rivals.on_sphere_distance(
    c.toy_model, c.toy.x, c.toy.y, [0.1, 0.5], steps=2))
_add("rivals.sphere_error_rate", lambda c: rivals.sphere_error_rate(c.toy_model, 3, 1.0, 0, 50))
_add("rivals.cap_median_distance", lambda c: rivals.cap_median_distance(16, 0.01))
_add("rivals.cap_distance_null", lambda c: rivals.cap_distance_null(
    16, [(1.0, 3, 100, 5)], draws=10))
_add("rivals.sphere_experiment", lambda c: rivals.sphere_experiment(
    [3], n_train=20, epochs=1, hidden=4, n_attack=10, eps_grid=[0.5], steps=2, n_error=20),
    "rng", "weights")
_add("rivals.sphere_null", lambda c: rivals.sphere_null(
    {"n": 16, "errors": [1, 2], "n_error": 100, "radius_of": [1.0, 1.3]}, max_distance=1.0,
    draws=10))
_add("rivals.noise_errors", lambda c: rivals.noise_errors(c.toy_model, c.toy.x, c.toy.y, 0.1, 4))
_add("rivals.halfspace_distance", lambda c: rivals.halfspace_distance(0.1, torch.tensor([0, 3]), 8))
_add("rivals.halfspace_ratio_null", lambda c: rivals.halfspace_ratio_null(
    torch.rand(5, generator=c.g), 0.1, 8, draws=10))
_add("rivals.concentration_experiment", lambda c: rivals.concentration_experiment(
    [4], n_train=8, n_test=6, steps=2, sigma_noise=0.1, n_noise=4, hidden=(4,)),
    "rng", "weights")
_add("validation-error", lambda c: pytest.raises(ValueError, A.pgd, c.model, c.x * 2, c.y, 0.1))

COVERED_MODULES = ("attacks", "cache", "data", "device", "ensemble", "geometry", "hypotheses",
                   "ilyas",
                   "interactive", "intriguing", "linearity", "manifold", "models", "natural",
                   "nb", "nulls", "ops", "phases", "plot", "profiles", "random_nets", "rivals",
                   "scoreboard", "synthetic", "train", "transfer", "fmt", "schematics")


# --------------------------------------------------------------------------- the snapshot
def _snapshot() -> dict[str, object]:
    return {
        "torch RNG": torch.get_rng_state(),
        "numpy RNG": np.random.get_state(),
        "python RNG": random.getstate(),
        "grad mode": torch.is_grad_enabled(),
        "inference mode": torch.is_inference_mode_enabled(),
        "anomaly mode": torch.is_anomaly_enabled(),
        "default dtype": torch.get_default_dtype(),
        "deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "matmul precision": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
        "numpy print options": np.get_printoptions(),
        "numpy errors": np.geterr(),
        "environment": dict(os.environ),
        "working directory": os.getcwd(),
        "warning filters": list(warnings.filters),
        "rcParams": copy.deepcopy(dict(matplotlib.rcParams)),
    }


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, tuple) and a and isinstance(a[0], str) and a[0] == "MT19937":
        return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
    return a == b


def _diff(before: dict, after: dict, allowed: frozenset[str]) -> list[str]:
    skip = set()
    if "rng" in allowed:
        skip |= {"torch RNG", "numpy RNG", "python RNG"}
    if "rc" in allowed:
        skip.add("rcParams")
    return [k for k in before if k not in skip and not _same(before[k], after[k])]


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("DMM_STATIC_FIGURES", "1")
    monkeypatch.chdir(tmp_path)
    matplotlib.rcParams.update({"figure.dpi": 72.0})  # not the book's style: set_style shows
    c = Ctx(tmp_path)
    yield c
    plt.close("all")


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_public_function_restores_global_state(name, grad, ctx):
    call, allowed = REGISTRY[name]
    mods = ctx.models()
    for i, m in enumerate(mods):  # unusual modes: the train/eval flag of each submodule
        m.train(i % 2 == 0)
        next(iter(m.children())).train(i % 2 == 1)
    modes = [[s.training for s in m.modules()] for m in mods]
    weights = [{k: v.clone() for k, v in m.state_dict().items()} for m in mods]
    with torch.set_grad_enabled(grad), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the filters are compared as saved by catch_warnings
        before = _snapshot()
        call(ctx)
        after = _snapshot()
    changed = _diff(before, after, allowed)
    if changed and set(changed) <= {"warning filters", "environment"} and all(
            k.startswith("TORCH") for k in set(before["environment"]) ^ set(
                after["environment"])):
        # torch adds warning filters (and sets TORCHINDUCTOR_CACHE_DIR) when it lazily
        # imports a submodule on first use, once per process: a second call must leave
        # everything alone
        with torch.set_grad_enabled(grad), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = _snapshot()
            call(ctx)
            after = _snapshot()
        changed = _diff(before, after, allowed)
    assert not changed, f"{name} changed global state: {changed}"
    assert [[s.training for s in m.modules()] for m in mods] == modes, "train/eval modes"
    if "weights" not in allowed:
        for m, w in zip(mods, weights, strict=True):
            assert all(torch.equal(v, w[k]) for k, v in m.state_dict().items()), "weights"


def test_rng_consumers_are_the_ones_allowed():
    """The entries allowed to consume the global RNG really need it: their seeded
    counterparts (pgd with seed, random bases with a generator) leave it alone (checked
    above); and seed_everything really sets every RNG."""
    device.seed_everything(7)
    a = (torch.rand(2), np.random.rand(), random.random())
    device.seed_everything(7)
    b = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_every_public_function_is_checked():
    """Every public callable of every dmmlib submodule has an entry in REGISTRY.

    A module added to dmmlib later, or a name added to a module's ``__all__``,
    fails here until it gets a global-state check in REGISTRY (or, for a plain
    type or constant, a place in EXEMPT)."""
    registered = {k.split("[")[0] for k in REGISTRY}
    modules = dmmlib._PUBLIC_MODULES
    assert set(COVERED_MODULES) == set(modules), (
        "COVERED_MODULES and dmmlib._PUBLIC_MODULES differ: "
        f"{sorted(set(COVERED_MODULES) ^ set(modules))}")
    missing = []
    for mod_name, path in modules.items():
        mod = importlib.import_module(f"dmmlib.{path}")
        for n in getattr(mod, "__all__", []):
            full = f"{mod_name}.{n}"
            full = ALIASES.get(full, full)
            obj = getattr(mod, n)
            if full in EXEMPT or not callable(obj) or full in registered:
                continue
            missing.append(full)
    assert not missing, f"no global-state check in REGISTRY for: {sorted(missing)}"
    stale = {k for k in registered | EXEMPT if k != "validation-error"} - {
        f"{m}.{n}" for m, path in modules.items()
        for n in getattr(importlib.import_module(f"dmmlib.{path}"), "__all__", [])}
    assert not stale, f"REGISTRY/EXEMPT name things that are not public: {sorted(stale)}"
