"""Helpers that chapters share: the setup cell, the band over seeds, shared chapter settings."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import dmmlib
from dmmlib.book import nb, plot
from dmmlib.experiments import linearity, natural


def _shown(monkeypatch) -> list[str]:
    import IPython.display

    shown: list[str] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(str(obj.data)))
    return shown


def test_setup_picks_profile_device_sizes_and_seeds(monkeypatch):
    monkeypatch.setenv("DMM_PROFILE", "ci")
    shown = _shown(monkeypatch)
    sizes = {"ci": {"k": 3, "n_attack": None}, "cpu": {"k": 4}, "gpu": {"k": 5}}
    s = nb.setup("trains longer", seed=5, sizes=sizes)
    a = torch.rand(3)
    assert s.profile.name == "ci" and s.device.type in {"cpu", "cuda"}
    assert s.sizes == {"k": 3, "n_attack": s.profile.n_attack}
    assert s.key == {"dmmlib": dmmlib.__version__, "profile": "ci", **s.sizes}
    assert len(shown) == 2 and "profile 'ci'" in shown[0] and "trains longer" in shown[1]
    nb.setup(seed=5)
    assert torch.equal(a, torch.rand(3))
    del shown[:]
    assert nb.setup().sizes == {} and len(shown) == 1


def test_setup_threads_and_errors(monkeypatch):
    monkeypatch.setenv("DMM_PROFILE", "ci")
    _shown(monkeypatch)
    before = torch.get_num_threads()
    try:
        nb.setup(threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(KeyError):
        nb.setup(sizes={"gpu": {}})
    with pytest.raises(ValueError):
        nb.setup(threads=0)


def test_seed_band_center_and_spread():
    v = np.array([[0.0, 1.0], [1.0, 3.0], [5.0, np.nan]])
    fig, ax = plt.subplots()
    plot.seed_band(ax, [0, 1], v, "#000000")
    assert np.allclose(ax.lines[-1].get_ydata(), [2.0, 2.0])
    plot.seed_band(ax, [0, 1], v, "#000000", center="median", spread=(0.0, 1.0))
    assert np.allclose(ax.lines[-1].get_ydata(), [1.0, 2.0])
    band = ax.collections[-1].get_paths()[0].vertices
    assert band[:, 1].min() == 0.0 and band[:, 1].max() == 5.0
    with pytest.raises(ValueError):
        plot.seed_band(ax, [0, 1], v, "#000000", center="mode")
    plt.close(fig)


def test_natural_and_critics_share_the_models_sizes():
    shared = ("k", "ae_epochs", "clf_epochs", "pgd_steps", "attack_steps", "adv_epochs",
              "adv_steps")
    for name in ("ci", "cpu", "gpu"):
        assert {k: natural.SIZES[name][k] for k in shared} == \
            {k: natural.CRITICS_SIZES[name][k] for k in shared}
    assert natural.ADV_EPS == 1.0 and natural.PGD_EPS == 2.0


def test_adv_perturb_stays_in_the_budget():
    torch.manual_seed(0)
    model = dmmlib.models.MLP(16, (8,), 3)
    x, y = torch.rand(5, 16), torch.tensor([0, 1, 2, 0, 1])
    xa = natural.adv_perturb(model, x, y, steps=3, eps=0.5)
    assert xa.shape == x.shape
    assert float((xa - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
    assert torch.equal(xa, natural.adv_perturb(model, x, y, steps=3, eps=0.5))


def test_nearest_other_and_knn_other():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([0, 1])
    ref = torch.tensor([[0.0, 0.1], [3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    yref = torch.tensor([0, 1, 1, 0])
    assert torch.allclose(linearity.nearest_other(x, y, ref, yref), torch.tensor([2.0, 1.0]))
    assert linearity.knn_other(x, y, ref, yref, k=1).tolist() == [False, True]


def test_synthetic_tasks_are_seeded_and_in_the_box():
    x, y = linearity.half_moons(50, 0)
    x2, y2 = linearity.half_moons(50, 0)
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (50, 2)
    xb, _ = linearity.half_moons(50, 0, basis=torch.eye(5)[:, :2])
    assert xb.shape == (50, 5)
    xg, yg, u = linearity.gaussian_task(16, 40, seed=1)
    _, _, u2 = linearity.gaussian_task(16, 10, seed=2)
    assert torch.equal(u, u2) and float(u.norm()) == pytest.approx(1.0, abs=1e-5)
    assert 0 <= float(xg.min()) and float(xg.max()) <= 1


def test_fgsm_flip_budget_of_a_linear_model():
    lin = torch.nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        lin.bias.zero_()
    x, y = torch.tensor([[0.2, 0.5]]), torch.tensor([0])
    g = torch.tensor([[2.0, 0.0]])  # gradient of the margin z_0 - z_1
    eps, found = linearity.fgsm_flip_budget(lin, x, y, g, iters=30)
    assert bool(found[0]) and float(eps[0]) == pytest.approx(0.2, abs=1e-4)


def test_dimension_experiment_rows():
    rows = linearity.dimension_experiment([2, 4], n_train=40, n_test=20, seeds=1, steps=5,
                                          hidden=(8,))
    assert [(r["n"], r["model"]) for r in rows] == [(2, "MLP"), (2, "linear"), (4, "MLP"),
                                                   (4, "linear")]
    assert {"d_boundary", "d_other", "ratio", "eps_flip", "eps_pred"} <= set(rows[0])


def test_plane_experiment_rows():
    rows = linearity.plane_experiment([2, 6], n_train=40, n_test=20, seeds=1, steps=5,
                                      hidden=(8,))
    assert [r["n"] for r in rows] == [2, 6]
    assert rows[0]["random_off"] == 0.0 and 0 <= rows[1]["off_fraction"] <= 1


def test_random_network_sweeps_shapes_and_seeds():
    from dmmlib.experiments import random_nets as rn

    a = rn.sweep_dimension([4, 8, 16], 8, 3, 4)
    assert set(a) == set(rn.ARCHS) and a["two-layer"]["rel"].shape == (3, 3)
    b = rn.sweep_dimension([4, 8, 16], 8, 3, 4)
    assert torch.equal(a["two-layer"]["rel"], b["two-layer"]["rel"])
    # flip0 is the flip rate of the exact linear step on the same networks and points
    nets = rn.random_relu_networks(4, (8,), 3, seed=0)
    x = rn.sphere_points(4, 4, n_sets=3, seed=5000)
    want = rn.one_step_attack(nets, x, overshoot=0.0).flipped.double().mean(1)
    assert torch.equal(a["two-layer"]["flip0"][:, 0], want)
    assert rn.sweep_width(8, [4, 8], 3, 4)["err90"].shape == (3, 2)
    neck = rn.sweep_bottleneck(8, 8, [2, 4], 3, 4)
    assert set(neck) == set(rn.PLACES)
    first = next(iter(neck.values()))
    assert first["flip"].shape == (3, 3) and first["err90_pooled"].shape == (3,)
    deep = rn.sweep_depth(8, 8, [1, 2], 3, 4)
    assert deep["corr"].shape == (2,) and deep["constant"].shape == (3, 2)


def test_minimal_perturbations_and_the_tininess_row():
    from dmmlib import synthetic
    from dmmlib.experiments import phases

    ds = synthetic.linear_subspace(6, 2, 40, seed=0)
    torch.manual_seed(0)
    net = dmmlib.models.MLP(6, (16,), 2)
    out = phases.minimal_perturbations(net, ds.x, ds.y, steps=20, tangent=ds.tangent)
    assert set(out) == {"x_adv", "ok", "norm", "on_fraction"}
    assert torch.allclose(out["norm"], (out["x_adv"] - ds.x).flatten(1).norm(dim=1))
    row = phases.tininess_row("flat", 1.0, out["norm"], out["ok"],
                              linearity.nearest_other(ds.x, ds.y, ds.x, ds.y), ds.x, ds.y)
    assert row["attacked"] == pytest.approx(float(out["ok"].float().mean()))
    two = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert phases.mean_class_distance(two, torch.tensor([0, 1])) == pytest.approx(5.0)


def test_mislabelled_sets_and_training_on_them():
    from dmmlib.experiments import transfer

    ds = dmmlib.data.digits(n=60)
    torch.manual_seed(0)
    net = dmmlib.models.MLP(64, (16,), 10)
    mis = transfer.mislabelled_sets(net, net, ds.x, ds.y, 10, eps=1.0, steps=3)
    assert bool((mis["targets"] != ds.y).all())
    na = (mis["x_a"] - ds.x).flatten(1).norm(dim=1)
    assert mis["x_b"].shape == ds.x.shape and float(na.max()) <= 1.0 + 1e-4
    rows = transfer.train_on_relabelled({"a": mis["x_a"], "b": mis["x_b"]}, mis["targets"], ds,
                                        ds, epochs=1)
    assert [r["training set"] for r in rows] == ["a", "b"]
    assert all(0 <= r["clean test accuracy (true labels)"] <= 1 for r in rows)


def test_paper_models_train_and_come_back_from_the_cache():
    from dmmlib.experiments import intriguing

    ds = dmmlib.data.digits(n=40)
    m1, r1 = intriguing.train_paper_mlp("t", (8,), 1e-4, ds, mean=0.5, std=0.3, epochs=1,
                                        batch_size=8)
    m2, r2 = intriguing.train_paper_mlp("t", (8,), 1e-4, (ds.x, ds.y), mean=0.5, std=0.3,
                                        epochs=1, batch_size=8)
    assert not m1.training and r2["cached"]
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))
    ae, clf, run, ae_run = intriguing.train_ae400(ds, epochs=1, ae_epochs=1, batch_size=8)
    assert clf(ds.x[:2]).shape == (2, 10) and not clf.training


def test_scaled_mlp_and_train_recorded():
    from dmmlib import synthetic
    from dmmlib.experiments import phases

    a, b = phases.scaled_mlp(3, 8, 1.0, 0), phases.scaled_mlp(3, 8, 4.0, 0)
    wa, wb = a.net[0].weight, b.net[0].weight
    assert torch.allclose(wb, 4.0 * wa)
    ds = synthetic.linear_subspace(3, 1, 20, seed=0)
    snaps = phases.ParamSnapshots([0, 3])
    ens = phases.train_recorded([phases.scaled_mlp(3, 8, 1.0, s) for s in range(2)],
                                (ds.x, ds.y), snaps, epochs=3, lr=0.1)
    assert sorted(snaps.params) == [0, 3] and len(ens) == 2


def test_table1_sentences_follow_the_numbers():
    import pandas as pd

    from dmmlib.experiments import intriguing

    nets = ["FC10(1e-4)", "FC10(1e-2)", "FC10(1)", "FC100-100-10"]
    table1 = pd.DataFrame({"distortion (L-BFGS)": [0.05, 0.06, 0.08, 0.04],
                           "distortion (min-norm)": [0.05, 0.05, 0.07, 0.04],
                           "paper: distortion": [0.062, 0.1, 0.14, 0.058]}, index=nets)
    out = intriguing.table1_sentences(table1, dict.fromkeys(nets, 0.9),
                                      dict.fromkeys(nets, 0.1), 0.4, 784, 100, "MNIST")
    assert out["fc10_trend"].startswith("grows") and out["d_lbfgs_max"] == "0.080"
    assert out["nearest_ratio"] == "5" and "same size" in out["lbfgs_vs_min_sentence"]
    assert out["why_differ"].startswith("We used the paper's dataset")
    table1.loc["FC10(1)", "distortion (L-BFGS)"] = 0.055
    out = intriguing.table1_sentences(table1, dict.fromkeys(nets, 0.9),
                                      dict.fromkeys(nets, 0.1), 0.4, 784, 100, "Fashion-MNIST")
    assert out["fc10_trend"].startswith("does not") and "Fashion-MNIST" in out["why_differ"]


def test_factor_sweep_rows():
    from dmmlib import synthetic
    from dmmlib.experiments import phases

    ds = synthetic.linear_subspace(6, 2, 30, labels="intervals", cells=4, seed=0)
    settings = [{"alpha": a, "wd": 0.0, "lr_mult": 1.0, "width": w}
                for a, w in ((1.0, 8), (4.0, 8), (1.0, 16))]
    rows = phases.factor_sweep(ds.x, ds.y, ds.tangent, torch.arange(5), settings, seeds=2,
                               steps=5, lr0=0.05, momentum=0.9)
    assert len(rows) == 6 and {r["width"] for r in rows} == {8, 16}
    assert all(r["drift"] < 1e-3 for r in rows)  # SGD from a scaled init keeps the weights


def test_explains_manifolds_split():
    from dmmlib.experiments import phases

    m = phases.explains_manifolds(6, 2, 20, 10)
    assert list(m) == ["flat subspace", "sinusoidal surface", "sphere patch"]
    for d in m.values():
        assert d["x"].shape == (20, 6) and d["xt"].shape == (10, 6) and d["Ut"].shape == (10, 6, 2)
