"""Training: dmmlib.train.fit against the plain PyTorch loop, on the book's shapes.

The reference is what a user writes without dmmlib: ``torch.optim.Adam`` with
its defaults, a fresh ``torch.randperm`` each epoch and ``x[idx]`` per
mini-batch, ``F.cross_entropy``, the same model. Three cases, each the shape
of a book experiment:

* ``minibatch``: a 784-100-100-10 MLP (Intriguing properties' FC100-100-10),
  three epochs over 20,000 Fashion-MNIST images in batches of 128 (``fit``
  also validates the data once per call: finite, in range);
* ``full-batch MLP``: a 2048-64-64-2 MLP (the old mental model's dimension
  sweep), 100 full-batch Adam steps on 2,000 points;
* ``full-batch linear``: the same sweep's linear model 2048 -> 2.

Both sides run interleaved ``--repeat`` times after one warm-up each; the
medians and their ratio (plain / dmmlib, above 1 = dmmlib faster) are written
to ``results_train_cpu.json`` beside this file.

Usage::

    .venv/bin/python benchmarks/bench_train.py [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import dmmlib
from dmmlib import train
from dmmlib.data import fashion_mnist
from dmmlib.experiments.linearity import gaussian_task
from dmmlib.models import MLP


def plain_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int,
               batch_size: int, lr: float) -> None:
    """The loop a user writes by hand: default Adam, randperm and x[idx] per batch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def run_plain_case(make: Callable[[], torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
                   opts: dict[str, Any]) -> None:
    plain_loop(make(), x, y, **opts)


def run_fit_case(make: Callable[[], torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
                 opts: dict[str, Any]) -> None:
    train.fit(make(), (x, y), progress=False, **opts)


def cases() -> dict[str, tuple[Callable[[], torch.nn.Module], torch.Tensor, torch.Tensor,
                               dict[str, float | int]]]:
    tr = fashion_mnist(train=True, n=20_000)
    xg, yg, _ = gaussian_task(2048, 2000, seed=2048)

    def fc100() -> torch.nn.Module:
        torch.manual_seed(0)
        return MLP(784, (100, 100), n_classes=10, mean=0.286, std=0.353)

    def gauss_mlp() -> torch.nn.Module:
        torch.manual_seed(0)
        return MLP(2048, (64, 64), 2, mean=0.5, std=0.25)

    def gauss_linear() -> torch.nn.Module:
        torch.manual_seed(0)
        return MLP(2048, (), 2, mean=0.5, std=0.25)

    return {
        "minibatch (784-100-100-10, 3 epochs of 20,000, batch 128)":
            (fc100, tr.x, tr.y, dict(epochs=3, batch_size=128, lr=1e-3)),
        "full-batch MLP (2048-64-64-2, 100 steps on 2,000)":
            (gauss_mlp, xg, yg, dict(epochs=100, batch_size=2000, lr=1e-2)),
        "full-batch linear (2048-2, 100 steps on 2,000)":
            (gauss_linear, xg, yg, dict(epochs=100, batch_size=2000, lr=1e-2)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results_train_cpu.json"),
                    help="where to write the results")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name, (make, x, y, kw) in cases().items():
        opts = dict(epochs=int(kw["epochs"]), batch_size=int(kw["batch_size"]), lr=float(kw["lr"]))
        run_plain = functools.partial(run_plain_case, make, x, y, opts)
        run_dmm = functools.partial(run_fit_case, make, x, y, opts)
        run_plain()
        run_dmm()  # warm-up
        t_plain, t_dmm = [], []
        for _ in range(args.repeat):  # interleaved
            for fn, out in ((run_plain, t_plain), (run_dmm, t_dmm)):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
        p, d = statistics.median(t_plain), statistics.median(t_dmm)
        rows.append({"case": name, "plain_torch_s": p, "dmmlib_s": d, "ratio": p / d})
        print(f"{name}: plain {p:.3f} s, dmmlib {d:.3f} s, ratio {p / d:.2f}")
    out = {"machine": platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(),
           "torch": torch.__version__, "dmmlib": dmmlib.__version__, "repeat": args.repeat,
           "rows": rows}
    path = args.out
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
