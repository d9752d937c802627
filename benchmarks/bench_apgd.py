"""APGD: dmmlib.attacks.apgd against torchattacks' APGD on adversarially trained models.

Two models (an MLP and a SmallCNN(width=8)) are adversarially trained on
12,000 Fashion-MNIST images with L-inf PGD (eps 0.1, 7 steps, a few epochs);
on the same correctly classified test images both libraries run APGD with the
cross-entropy and the DLR loss, at the same budget, steps and restarts (one),
interleaved ``--repeat`` times. Reports robust accuracy (lower = stronger
attack) and samples per second; dmmlib's PGD at the same budget and steps is
the reference an evaluation attack must beat. Writes
``results_apgd_cpu.json`` beside this file.

Usage (torchattacks lives in ``.venv-bench``; see ``run_attacks.sh``)::

    PYTHONPATH=. .venv-bench/bin/python benchmarks/bench_apgd.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import dmmlib
import dmmlib.attacks as A
from dmmlib.data import fashion_mnist
from dmmlib.models import MLP, SmallCNN
from dmmlib.train import accuracy

warnings.filterwarnings("ignore")


def adversarial_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                         epochs: int, steps: int = 7, batch: int = 128) -> nn.Module:
    """Madry et al.'s L-inf PGD training, plain Adam, fixed seed."""
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            xb, yb = x[idx], y[idx]
            adv = A.pgd(model, xb, yb, eps, steps=steps, seed=i, progress=False).x_adv
            model.train()
            opt.zero_grad()
            F.cross_entropy(model(adv), yb).backward()
            opt.step()
    model.eval()
    return model


def make_cases(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
               ta) -> dict[str, Callable[[], torch.Tensor]]:
    """The attacks compared, each returning adversarial images."""
    cases: dict[str, Callable[[], torch.Tensor]] = {
        "dmmlib PGD": lambda: A.pgd(model, x, y, eps, steps=steps, seed=0,
                                    progress=False).x_adv,
        "dmmlib APGD-CE": lambda: A.apgd(model, x, y, eps, steps=steps, seed=0,
                                         progress=False).x_adv,
        "dmmlib APGD-DLR": lambda: A.apgd(model, x, y, eps, loss="dlr", steps=steps, seed=0,
                                          progress=False).x_adv,
    }
    if ta is not None:
        ce = ta.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=0, loss="ce")
        dlr = ta.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=0,
                      loss="dlr")
        cases["torchattacks APGD-CE"] = lambda: ce(x, y)
        cases["torchattacks APGD-DLR"] = lambda: dlr(x, y)
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-torchattacks", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results_apgd_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ta = None
    if not args.no_torchattacks:
        import torchattacks as ta
    t_start = time.perf_counter()
    train = fashion_mnist(train=True, n=12000)
    test = fashion_mnist(train=False, n=2000)
    results: dict = {"meta": {
        "dataset": "Fashion-MNIST test (correctly classified)", "eps_linf": args.eps,
        "steps": args.steps, "restarts": 1, "train_epochs": args.epochs, "repeat": args.repeat,
        "threads": args.threads, "torch": torch.__version__, "dmmlib": dmmlib.__version__,
        "torchattacks": "missing" if ta is None else ta.__version__,
        "python": platform.python_version(), "machine": platform.machine()}}
    shapes: dict[str, Callable[[], nn.Module]] = {
        "MLP 784-256-256-10": lambda: MLP(784, (256, 256)),
        "SmallCNN(width=8)": lambda: SmallCNN(width=8),
    }
    for name, make in shapes.items():
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = adversarial_training(make(), train.x, train.y, eps=args.eps, epochs=args.epochs)
        train_s = time.perf_counter() - t0
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            correct = model(test.x).argmax(1) == test.y
        x, y = test.x[correct][: args.n].contiguous(), test.y[correct][: args.n].contiguous()
        cases = make_cases(model, x, y, args.eps, args.steps, ta)
        times: dict[str, list[float]] = {c: [] for c in cases}
        robust: dict[str, float] = {}
        for _ in range(args.repeat):
            for c, fn in cases.items():
                t1 = time.perf_counter()
                adv = fn()
                times[c].append(time.perf_counter() - t1)
                with torch.no_grad():
                    assert float((adv - x).abs().amax()) <= args.eps + 1e-5, c
                    robust[c] = float((model(adv.clamp(0, 1)).argmax(1) == y).float().mean())
        row: dict = {"clean_accuracy": accuracy(model, (test.x, test.y)), "n": int(x.shape[0]),
                     "train_seconds": train_s}
        for c in cases:
            row[c] = {"robust_accuracy": robust[c],
                      "samples_per_s": x.shape[0] / statistics.median(times[c]),
                      "all_seconds": times[c]}
        if ta is not None:
            for loss in ("CE", "DLR"):
                mine, theirs = f"dmmlib APGD-{loss}", f"torchattacks APGD-{loss}"
                row[f"speed {mine} / {theirs}"] = statistics.median(
                    b / a for a, b in zip(times[mine], times[theirs], strict=True))
                row[f"robust accuracy {mine} - {theirs}"] = robust[mine] - robust[theirs]
        results[name] = row
        print(f"\n{name}: clean accuracy {row['clean_accuracy']:.3f} (adversarially trained in "
              f"{train_s:.0f} s), {x.shape[0]} images, eps {args.eps}, {args.steps} steps")
        for c in cases:
            print(f"  {c:24s} robust accuracy {robust[c]:.3f}  "
                  f"{row[c]['samples_per_s']:8.1f} samples/s")
        for key in [k for k in row if k.startswith(("speed", "robust accuracy d"))]:
            print(f"  {key}: {row[key]:+.3f}" if "robust" in key else f"  {key}: {row[key]:.3f}")
    results["meta"]["seconds"] = time.perf_counter() - t_start
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(args.out)
    print(f"\nwrote {args.out} in {results['meta']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
