"""Reproducible runs: the same seed and profile give bit-identical results on the CPU.

:func:`_digests` runs, at the ``ci`` profile's sizes, everything the book's
numbers come from (training with :func:`~dmmlib.train.fit` and
:func:`~dmmlib.ensemble.train_ensemble`, autoencoders, every attack, tangent
bases, synthetic manifolds) and returns a SHA-256 digest of each result. It
is run in this process and, at the same time, in a fresh Python process
(another hash seed, an empty cache of its own, so nothing is loaded from a
cache); the two runs must agree bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _hash(*objs: Any) -> str:
    h = hashlib.sha256()

    def feed(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            h.update(f"T{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(o, dict):
            for k in sorted(o, key=str):
                h.update(f"K{k}".encode())
                feed(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(f"L{len(o)}".encode())
            for v in o:
                feed(v)
        elif isinstance(o, np.ndarray):
            h.update(o.tobytes())
        else:
            h.update(repr(o).encode())

    for o in objs:
        feed(o)
    return h.hexdigest()


def _rng_state() -> str:
    return _hash(torch.get_rng_state(), np.random.get_state()[1], random.getstate())


def _digests(profile_name: str = "ci") -> dict[str, str]:
    """Digests of every reproducible result, at the sizes of ``profile_name``."""
    import dmmlib.attacks as A
    from dmmlib import data, device, ensemble, manifold, models, profiles, synthetic, train

    p = profiles.get_profile(profile_name)
    steps = min(p.attack_steps, 5)  # enough steps to show drift, cheap enough for CI
    out: dict[str, str] = {}
    device.seed_everything(0)
    ds = data.digits(n=p.batch_size // 2)
    model = models.MLP(64, (32,), 10)  # initialised from the seeded global RNG
    out["init"] = _hash(model.state_dict())
    hist = train.fit(model, ds, epochs=p.epochs, batch_size=32, seed=1, progress=False)
    out["fit"] = _hash(model.state_dict(), hist)
    sgd = models.MLP(64, (32,), 10)
    train.fit(sgd, ds, epochs=1, batch_size=16, optimizer="sgd", lr=0.05, weight_decay=1e-4,
              seed=2, progress=False)
    out["fit_sgd"] = _hash(sgd.state_dict())
    x, y = ds.x[:8], ds.y[:8]
    out["fgsm"] = _hash(A.fgsm(model, x, y, [0.05, 0.1]))
    out["pgd_inf_seed"] = _hash(A.pgd(model, x, y, 0.1, steps=steps, restarts=2, seed=3,
                                      progress=False))
    out["pgd_l2_seed"] = _hash(A.pgd(model, x, y, [0.5, 1.0], norm=2, steps=steps, seed=4,
                                     progress=False))
    U = manifold.random_orthonormal_basis(8, 64, 5, torch.Generator().manual_seed(5))
    out["pgd_subspace"] = _hash(A.pgd(model, x, y, 0.1, steps=steps, basis=U,
                                      complement=True, seed=6, progress=False))
    out["pgd_global_rng"] = _hash(A.pgd(model, x, y, 0.1, steps=steps, progress=False))
    out["deepfool"] = _hash(A.deepfool(model, x, y, steps=steps, progress=False))
    out["minimal_l2_fmn"] = _hash(A.minimal_l2(model, x, y, steps=steps, progress=False))
    out["minimal_l2_ddn"] = _hash(A.minimal_l2(model, x, y, steps=steps, method="ddn",
                                               progress=False))
    out["carlini_wagner_l2"] = _hash(A.carlini_wagner_l2(model, x[:4], y[:4],
                                                         binary_search_steps=2, steps=steps,
                                                         progress=False))
    out["lbfgs_random_target"] = _hash(A.lbfgs(model, x[:4], A.random_targets(y[:4], 10, seed=7),
                                               targeted=True, binary_search_steps=2, steps=3,
                                               progress=False))
    out["robustness_curve"] = _hash(A.robustness_curve(model, x, y, [0.0, 0.05, 0.1],
                                                       steps=steps, seed=8, progress=False))
    # ensembles of toy models
    toy = synthetic.sinusoidal_surface(3, 1, min(p.synthetic_points, 64), seed=1)
    nets = []
    for s in range(3):
        torch.manual_seed(s)
        nets.append(models.MLP(3, (16,), 2))
    ens = ensemble.train_ensemble(nets, (toy.x, toy.y), epochs=min(p.synthetic_epochs, 6),
                                  batch_size=16, lr=[0.05, 0.1, 0.2], momentum=0.9, seed=0,
                                  progress=False)
    out["train_ensemble"] = _hash(ens.params, ens.history)
    adam = ensemble.train_ensemble(nets, (toy.x, toy.y), epochs=2, optimizer="adam",
                                   lr=1e-2, progress=False)
    out["train_ensemble_adam"] = _hash(adam.params)
    # autoencoders and tangent bases
    torch.manual_seed(9)
    ae = manifold.MLPAutoencoder((1, 8, 8), 4, hidden=(32,))
    ae_hist = manifold.fit_autoencoder(ae, ds.x, epochs=p.epochs, batch_size=32, seed=2,
                                       progress=False)
    out["fit_autoencoder"] = _hash(ae.state_dict(), ae_hist)
    out["tangent_basis_at"] = _hash(manifold.tangent_basis_at(ae, x))
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(10))
    out["tangent_basis"] = _hash(manifold.tangent_basis(ae.decoder, z, chunk_size=3))
    out["split"] = _hash(manifold.split_on_off_manifold(x - A.fgsm(model, x, y, 0.1).x_adv,
                                                        manifold.tangent_basis_at(ae, x)))
    out["random_subspace_baseline"] = _hash(manifold.random_subspace_baseline(
        64, 4, n_samples=1000, seed=torch.Generator().manual_seed(11)))
    out["synthetic"] = _hash(synthetic.sphere_patch(5, 2, 50, seed=3).tangent,
                             synthetic.linear_subspace(6, 2, 40, labels="checkerboard",
                                                       seed=4).y,
                             synthetic.checkerboard_plane(3).x)
    out["global_rng_after"] = _rng_state()  # the global RNGs were consumed identically
    return out


def _run_in_fresh_process(tmp: Path, hash_seed: str) -> dict[str, str]:
    # the same torch thread count as this process (tests/conftest.py sets one thread):
    # bit-for-bit reproducibility is promised at a fixed thread count, since a
    # matrix product's summation order depends on how many threads split it
    code = ("import json, sys, torch; torch.set_num_threads(torch_threads); "
            "sys.path.insert(0, 'tests'); "
            "import test_reproducible as t; print(json.dumps(t._digests('ci')))").replace(
        "torch_threads", str(torch.get_num_threads()))
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "DMM_CACHE": str(tmp / "cache"),
           "DMM_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    env.pop("DMM_PROFILE", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_fresh_process_and_this_one_agree_bit_for_bit(tmp_path):
    """Two runs, two processes (other hash seeds, an empty cache each): same bits."""
    with ThreadPoolExecutor(1) as pool:
        fresh = pool.submit(_run_in_fresh_process, tmp_path / "fresh", "12345")
        here = _digests("ci")
        there = fresh.result()
    assert sorted(here) == sorted(there) and len(here) >= 20
    differ = [k for k in here if here[k] != there[k]]
    assert not differ, f"not reproducible across runs: {differ}"
    cache = tmp_path / "fresh" / "cache"  # nothing came from (or went to) a cache
    assert not cache.exists() or not any(cache.iterdir())


def test_seeded_library_calls_do_not_depend_on_the_global_rng():
    """With a seed, pgd and lbfgs use a private generator; fit and fit_autoencoder
    shuffle with their own generator: scrambling the global RNG changes nothing."""
    import dmmlib.attacks as A
    from dmmlib import data, manifold, models, train

    ds = data.digits(n=64)
    results = []
    for scramble in (1, 2):
        torch.manual_seed(0)
        model = models.MLP(64, (16,), 10)
        torch.manual_seed(100 + scramble)
        np.random.seed(scramble)
        random.seed(scramble)
        train.fit(model, ds, epochs=1, batch_size=16, seed=3, progress=False)
        torch.manual_seed(0)
        ae = manifold.MLPAutoencoder(64, 3, hidden=(8,))
        torch.manual_seed(200 + scramble)
        manifold.fit_autoencoder(ae, ds.x.flatten(1), epochs=1, batch_size=16, seed=3,
                                 progress=False)
        adv = A.pgd(model, ds.x[:8], ds.y[:8], 0.1, steps=3, seed=5, progress=False).x_adv
        tgt = A.lbfgs(model, ds.x[:4], A.random_targets(ds.y[:4], 10, seed=1), targeted=True,
                      binary_search_steps=1, steps=2, progress=False).x_adv
        results.append(_hash(model.state_dict(), ae.state_dict(), adv, tgt))
    assert results[0] == results[1]


def test_chapters_that_train_or_attack_set_their_seeds():
    """CONTRIBUTING: chapters seed with dmmlib.device.seed_everything(...), which
    dmmlib.book.nb.setup(...) calls."""
    random_work = re.compile(r"train_cached\(|\bfit\(|attacks\.|train_ensemble\(|"
                             r"fit_autoencoder")
    for chapter in sorted((ROOT / "book").glob("*.md")):
        text = chapter.read_text()
        if re.search(r"^kernelspec:", text, re.M) and random_work.search(text):
            assert "seed_everything(" in text or "nb.setup(" in text, \
                f"{chapter.name} does not seed its run"
