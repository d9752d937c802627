"""Minimal-norm L2: dmmlib.attacks.minimal_l2 against adv-lib's ALMA at equal gradient budgets.

ALMA (Rony et al., 2021; adv-lib 0.2.8 ``adv_lib.attacks.alma``, default P2
penalty and settings) makes one forward and one backward pass per step, so
``num_steps`` = gradient evaluations; ``minimal_l2(steps=B)`` makes B gradient
evaluations (plus one forward pass). Both get B in {100, 1000} on the same
correctly classified Fashion-MNIST test images, for an MLP and a
SmallCNN(width=8) trained one epoch on 12,000 images. The two attacks run
interleaved ``--repeat`` times (the machine is shared: times are noisy, the
per-repeat ratio is what to read). Metrics: success rate, median L2 over the
successes, median L2 with failures counted as +inf, seconds per sample, and
the ratios dmmlib / ALMA. Writes ``results_minimal_cpu.json`` beside this file.

Usage (adv-lib lives in ``.venv-bench``; see ``run_attacks.sh``)::

    PYTHONPATH=. .venv-bench/bin/python benchmarks/bench_minimal.py [--n 256 --repeat 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import dmmlib
import dmmlib.attacks as A
from dmmlib.data import fashion_mnist
from dmmlib.models import MLP, SmallCNN
from dmmlib.train import accuracy, fit

warnings.filterwarnings("ignore")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> dict:
    x_adv = x_adv.detach()
    ok = model(x_adv).argmax(1) != y
    dist = (x_adv - x).flatten(1).norm(dim=1)
    dist_inf = torch.where(ok, dist, torch.full_like(dist, float("inf")))
    return {"success": float(ok.float().mean()),
            "median_l2_success": float(dist[ok].median()) if bool(ok.any()) else float("nan"),
            "median_l2_inf": float(dist_inf.median())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--budgets", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name(
        "results_minimal_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sys.modules.setdefault("visdom", types.ModuleType("visdom"))  # adv-lib's optional logger
    from adv_lib.attacks import alma
    t_start = time.perf_counter()
    train = fashion_mnist(train=True, n=12000)
    test = fashion_mnist(train=False, n=2000)
    shapes: dict[str, Callable[[], nn.Module]] = {
        "MLP 784-256-256-10": lambda: MLP(784, (256, 256)),
        "SmallCNN(width=8)": lambda: SmallCNN(width=8),
    }
    results: dict = {"meta": {
        "dataset": "Fashion-MNIST test (correctly classified)", "n": args.n,
        "budgets": args.budgets, "threads": args.threads, "repeat": args.repeat,
        "alma": "adv_lib 0.2.8 alma, defaults (P2 penalty, lr_init 0.1)",
        "torch": torch.__version__, "dmmlib": dmmlib.__version__,
        "python": platform.python_version(), "machine": platform.machine()}}
    for name, make in shapes.items():
        model = make()
        fit(model, (train.x, train.y), epochs=1, batch_size=128, lr=2e-3, seed=0,
            progress=False)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        acc = accuracy(model, (test.x, test.y))
        with torch.no_grad():
            correct = model(test.x).argmax(1) == test.y
        x, y = test.x[correct][: args.n].contiguous(), test.y[correct][: args.n].contiguous()
        results[name] = {"test_accuracy": acc, "n": int(x.shape[0])}
        for b in args.budgets:
            cases: dict[str, Callable[[], torch.Tensor]] = {
                "dmmlib minimal_l2": lambda b=b, m=model, x=x, y=y: A.minimal_l2(
                    m, x, y, steps=b, progress=False).x_adv,
                "adv-lib ALMA": lambda b=b, m=model, x=x, y=y: alma(m, x, y, num_steps=b),
            }
            times: dict[str, list[float]] = {c: [] for c in cases}
            out: dict[str, torch.Tensor] = {}
            for _ in range(args.repeat):
                for c, fn in cases.items():
                    t0 = time.perf_counter()
                    out[c] = fn()
                    times[c].append(time.perf_counter() - t0)
            row: dict = {}
            for c in cases:
                row[c] = {"s_per_sample": statistics.median(times[c]) / x.shape[0],
                          "all_seconds": times[c], **evaluate(model, x, y, out[c])}
            d, a = row["dmmlib minimal_l2"], row["adv-lib ALMA"]
            row["median L2 dmmlib / ALMA"] = d["median_l2_success"] / a["median_l2_success"]
            row["time dmmlib / ALMA"] = statistics.median(
                td / ta for td, ta in zip(times["dmmlib minimal_l2"], times["adv-lib ALMA"],
                                          strict=True))
            results[name][f"budget {b}"] = row
            print(f"\n{name} (accuracy {acc:.3f}, {x.shape[0]} images), budget {b}")
            for c in cases:
                r = row[c]
                print(f"  {c:18s} success {r['success']:.3f}"
                      f"  median L2 {r['median_l2_success']:.4f}"
                      f"  (inf-failures {r['median_l2_inf']:.4f})"
                      f"  {1e3 * r['s_per_sample']:.2f} ms/sample")
            print(f"  median L2 dmmlib / ALMA {row['median L2 dmmlib / ALMA']:.3f}"
                  f"  time dmmlib / ALMA {row['time dmmlib / ALMA']:.3f}")
    results["meta"]["seconds"] = time.perf_counter() - t_start
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(args.out)
    print(f"\nwrote {args.out} in {results['meta']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
