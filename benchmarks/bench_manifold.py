"""Benchmarks for dmmlib.manifold.tangent_basis and dmmlib.ensemble.train_ensemble.

Run from the repository root::

    .venv/bin/python benchmarks/bench_manifold.py            # writes results_manifold_cpu.json
    .venv/bin/python benchmarks/bench_manifold.py --quick    # smaller sizes, no file

1. ``tangent_basis`` (k batched forward-mode JVPs with torch.func, then QR) against
   per-sample ``torch.autograd.functional.jacobian`` loops (the default reverse
   mode, and its ``vectorize=True`` reverse/forward variants), for an MLP and a
   conv decoder with D = 784, k = 16, N = 256. Accuracy is the largest
   principal angle to a float64 reference basis and the relative Jacobian
   error, so the speed-up is at equal accuracy. Target: >= 10x.
2. ``train_ensemble`` (one vmap'ed loop) against a Python loop over M = 32 small
   MLPs trained with torch.optim, same data, same steps. Also reports the largest
   parameter difference between the two (they must agree). Target: >= 3x.

Timings are the median of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmmlib.ensemble import train_ensemble
from dmmlib.manifold import (
    ConvAutoencoder,
    MLPAutoencoder,
    decoder_jacobian,
    principal_angles,
    tangent_basis,
)
from dmmlib.models import MLP
from dmmlib.synthetic import checkerboard_plane

HERE = Path(__file__).resolve().parent


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time over ``repeats`` runs (after one warm-up) and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def timed_pair(fa: Callable[[], object], fb: Callable[[], object], repeats: int
               ) -> tuple[float, float, object, object]:
    """Median wall times of ``fa`` and ``fb``, runs interleaved (fair under varying load)."""
    a, b = fa(), fb()
    ta, tb = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        a = fa()
        ta.append(time.perf_counter() - start)
        start = time.perf_counter()
        b = fb()
        tb.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb), a, b


def per_sample_jacobian(decoder: torch.nn.Module, z: torch.Tensor, **kw: object) -> torch.Tensor:
    """The baseline: one torch.autograd.functional.jacobian call per code."""
    decoder.eval()

    def f(c: torch.Tensor) -> torch.Tensor:
        return decoder(c.unsqueeze(0)).reshape(-1)

    return torch.stack([torch.autograd.functional.jacobian(f, z[i], **kw)
                        for i in range(z.shape[0])])


def accuracy(jac: torch.Tensor, ref_jac: torch.Tensor, ref_U: torch.Tensor) -> dict[str, float]:
    U, _ = torch.linalg.qr(jac.double(), mode="reduced")
    rel = (jac.double() - ref_jac).norm(dim=(1, 2)) / ref_jac.norm(dim=(1, 2))
    return {"max_principal_angle_rad": float(principal_angles(U, ref_U).max()),
            "max_rel_jacobian_error": float(rel.max())}


def bench_tangent(kind: str, n: int, k: int, n_loop: int, repeats: int) -> dict[str, object]:
    torch.manual_seed(0)
    if kind == "mlp":
        ae: torch.nn.Module = MLPAutoencoder((1, 28, 28), k, hidden=(256, 512))
    else:
        ae = ConvAutoencoder((1, 28, 28), k, width=32)
    dec = ae.decoder.eval()
    z = torch.randn(n, k)
    dec64 = copy.deepcopy(dec).double()
    ref_jac = decoder_jacobian(dec64, z.double())
    ref_U, _ = torch.linalg.qr(ref_jac, mode="reduced")

    t_vmap, U = timed(lambda: tangent_basis(dec, z), repeats)
    jac_vmap = decoder_jacobian(dec, z)
    res: dict[str, object] = {
        "decoder": kind, "N": n, "D": 784, "k": k,
        "tangent_basis_s": t_vmap,
        "tangent_basis_accuracy": accuracy(jac_vmap, ref_jac, ref_U),
    }
    assert isinstance(U, torch.Tensor)
    res["tangent_basis_accuracy"]["basis_max_principal_angle_rad"] = float(  # type: ignore[index]
        principal_angles(U.double(), ref_U).max())
    # (name, per-sample jacobian keywords, samples timed): per-sample loops cost exactly
    # N times one sample, so the slow ones are timed on a subset and scaled to N.
    baselines = [
        ("loop_reverse", {}, n_loop),                                   # the default call
        ("loop_reverse_vectorized", {"vectorize": True}, n_loop),
        ("loop_forward_vectorized", {"vectorize": True, "strategy": "forward-mode"},
         min(n, 4 * n_loop)),
    ]
    for name, kw, m in baselines:
        zz = z[:m]

        def run(zz: torch.Tensor = zz, kw: dict = kw) -> torch.Tensor:
            jac = per_sample_jacobian(dec, zz, **kw)
            torch.linalg.qr(jac, mode="reduced")              # same work as tangent_basis
            return jac

        per_sample_jacobian(dec, zz[:1], **kw)                 # warm-up
        start = time.perf_counter()
        jac = run()
        t = time.perf_counter() - start
        t_full = t * n / m
        res[name] = {
            "timed_samples": m,
            "seconds_for_N": t_full,
            "extrapolated": m < n,
            "speedup_of_tangent_basis": t_full / t_vmap,
            "accuracy": accuracy(jac, ref_jac[:m], ref_U[:m]),
        }
    return res


def loop_train(models: list[torch.nn.Module], x: torch.Tensor, y: torch.Tensor, epochs: int,
               batch_size: int | None, lr: float, wd: float) -> list[torch.nn.Module]:
    """The baseline: each model trained alone with torch.optim.Adam, same batches."""
    out = []
    n = x.shape[0]
    bs = n if batch_size is None else batch_size
    for model in models:
        m = copy.deepcopy(model).train()
        opt = torch.optim.Adam(m.parameters(), lr=lr, weight_decay=wd)
        gen = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen) if bs < n else None
            for start in range(0, n, bs):
                if order is None:
                    xb, yb = x, y
                else:
                    idx = order[start : start + bs]
                    xb, yb = x[idx], y[idx]
                loss = F.cross_entropy(m(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        out.append(m)
    return out


def bench_ensemble(m_models: int, points_per_cell: int, hidden: tuple[int, ...], epochs: int,
                   batch_size: int | None, repeats: int) -> dict[str, object]:
    ds = checkerboard_plane(5, points_per_cell, jitter=points_per_cell > 1, seed=0)
    models = []
    for s in range(m_models):
        torch.manual_seed(s)
        models.append(MLP(3, hidden, 2, mean=0.5, std=0.3))
    lr, wd = 1e-2, 1e-4
    n = len(ds)

    def run_vmap() -> object:
        return train_ensemble(models, (ds.x, ds.y), epochs=epochs, batch_size=batch_size,
                              lr=lr, weight_decay=wd, optimizer="adam", progress=False)

    def run_loop() -> object:
        return loop_train(models, ds.x, ds.y, epochs, batch_size, lr, wd)

    t_vmap, t_loop, ens, loop = timed_pair(run_vmap, run_loop, repeats)
    diff = 0.0
    for i, ref in enumerate(loop):  # type: ignore[arg-type]
        got = ens.model(i)  # type: ignore[attr-defined]
        for a, b in zip(got.parameters(), ref.parameters(), strict=True):
            diff = max(diff, float((a - b).abs().max()))
    steps = epochs * ((n + (batch_size or n) - 1) // (batch_size or n))
    return {"M": m_models, "hidden": list(hidden), "points": n, "batch_size": batch_size or n,
            "steps": steps, "optimizer": "adam",
            "vmap_s": t_vmap, "loop_s": t_loop, "speedup": t_loop / t_vmap,
            "max_param_difference": diff,
            "final_train_acc_mean": statistics.mean(
                ens.history["train_acc"][-1])}  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, print only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--out", default=str(HERE / "results_manifold_cpu.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    start = time.perf_counter()
    results: dict[str, object] = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "tangent_basis": [],
        "ensemble": [],
    }
    n = 32 if quick else 256
    n_loop = 4 if quick else 16
    for kind in ("mlp", "conv"):
        r = bench_tangent(kind, n, 16, n_loop, 1 if quick else args.repeats)
        results["tangent_basis"].append(r)  # type: ignore[union-attr]
        print(json.dumps(r, indent=1), flush=True)
    m_models = 8 if quick else 32
    configs = [  # (points per cell of the 5x5 checkerboard, hidden, epochs, batch size)
        (1, (100, 100), 200, None),     # the toy setting: 25 points, full batch
        (4, (32, 32), 200, None),       # 100 points, full batch
        (16, (32, 32), 10, 32),         # 400 points, mini-batches of 32
        (16, (64, 64), 100, None),      # 400 points, wider: compute starts to dominate
    ]
    for ppc, hidden, epochs, bs in configs:
        r = bench_ensemble(m_models, ppc, hidden, 5 if quick else epochs, bs,
                           1 if quick else args.repeats)
        results["ensemble"].append(r)  # type: ignore[union-attr]
        print(json.dumps(r, indent=1), flush=True)
    tb = results["tangent_basis"]
    en = results["ensemble"]
    results["targets"] = {
        "tangent_basis_10x_vs_default_loop": all(
            r["loop_reverse"]["speedup_of_tangent_basis"] >= 10 for r in tb),  # type: ignore[index]
        "ensemble_3x_vs_loop_per_config": [r["speedup"] >= 3 for r in en],  # type: ignore[index]
    }
    results["machine"]["load_average_at_end"] = os.getloadavg()  # type: ignore[index]
    results["total_seconds"] = time.perf_counter() - start
    print(json.dumps(results["targets"]), f"total {results['total_seconds']:.0f} s")
    if not quick:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
