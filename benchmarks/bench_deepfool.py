"""DeepFool: dmmlib's two gradient paths against adv-lib and a bare floor, per model shape.

Same frozen model, same correctly classified Fashion-MNIST test images, same
settings (50 steps, overshoot 0.02, all classes) for every implementation:

* ``dmmlib (loop)`` -- ``attacks.deepfool(..., grads="loop")``: one
  ``autograd.grad`` per class on the shared graph (the CPU default);
* ``dmmlib (batched)`` -- ``grads="batched"``: one batched vector-Jacobian
  product (``is_grads_batched=True``);
* ``adv-lib`` -- ``adv_lib.attacks.df`` 0.2.8 (when installed: run through
  ``benchmarks/run_attacks.sh``'s ``.venv-bench``, or pass ``--no-advlib``);
* ``floor`` -- a bare loop doing, per step, one forward pass and K-1
  input-gradient backward passes over the samples still active, and the
  DeepFool update; no checks, no refinement. What an implementation cannot
  beat by much.

Cases run interleaved ``--repeat`` times; a speed ratio is the median of the
per-repeat ratios. Writes ``results_deepfool_cpu.json`` beside this file.

Usage::

    benchmarks/run_attacks.sh is the way to get adv-lib; then
    PYTHONPATH=. .venv-bench/bin/python benchmarks/bench_deepfool.py [--repeat 5]
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


def floor_deepfool(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 50,
                   overshoot: float = 0.02) -> torch.Tensor:
    """The floor: forward, K-1 backward passes, the DeepFool step, on active samples only."""
    x_cur = x.clone()
    active = torch.arange(x.shape[0])
    for _ in range(steps):
        if active.numel() == 0:
            break
        xa = x_cur[active].requires_grad_(True)
        logits = model(xa)
        ya = y[active]
        still = logits.argmax(1) == ya
        if not bool(still.any()):
            break
        rows = torch.arange(xa.shape[0])
        f_y = logits[rows, ya]
        k = logits.shape[1]
        j = torch.arange(k - 1)
        others = j[None, :] + (j[None, :] >= ya[:, None]).long()  # (n, K-1): every class but y
        grads, diffs = [], []
        for c in range(k - 1):
            d = logits[rows, others[:, c]] - f_y
            (g,) = torch.autograd.grad(d.sum(), xa, retain_graph=c < k - 2)
            grads.append(g)
            diffs.append(d.detach())
        w = torch.stack(grads)  # (K-1, n, ...)
        f = torch.stack(diffs).abs()  # (K-1, n)
        wn = w.flatten(2).norm(dim=2).clamp_min(1e-12)
        best = (f / wn).argmin(0)
        scale = (f[best, rows] / wn[best, rows] + 1e-4) / wn[best, rows]
        step = scale.view(-1, *[1] * (x.ndim - 1)) * w[best, rows]
        ids = active[still]
        x_cur[ids] = (x_cur[ids] + (1 + overshoot) * step[still]).clamp(0, 1)
        active = ids
    return x_cur


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> dict:
    if isinstance(x_adv, A.AttackResult):
        x_adv = x_adv.x_adv
    x_adv = x_adv.detach().clamp(0, 1)
    ok = model(x_adv).argmax(1) != y
    dist = (x_adv - x).flatten(1).norm(dim=1)
    return {"success": float(ok.float().mean()),
            "median_l2_success": float(dist[ok].median()) if bool(ok.any()) else float("nan")}


def make_cases(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               df: Callable | None) -> dict[str, Callable[[], torch.Tensor]]:
    """The implementations compared, each a call on the same model and images."""
    cases: dict[str, Callable[[], torch.Tensor]] = {
        "dmmlib (loop)": lambda: A.deepfool(model, x, y, grads="loop", progress=False),
        "dmmlib (batched)": lambda: A.deepfool(model, x, y, grads="batched",
                                               progress=False),
        "dmmlib (loop, refine_steps=0)": lambda: A.deepfool(
            model, x, y, grads="loop", refine_steps=0, progress=False),
        "floor": lambda: floor_deepfool(model, x, y),
    }
    if df is not None:
        cases["adv-lib"] = lambda: df(model, x, y, steps=50, overshoot=0.02, norm=2)
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-advlib", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name(
        "results_deepfool_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    df = None
    if not args.no_advlib:
        sys.modules.setdefault("visdom", types.ModuleType("visdom"))  # adv-lib's optional logger
        from adv_lib import __version__ as advlib_version  # noqa: F401
        from adv_lib.attacks import df
    t_start = time.perf_counter()
    train = fashion_mnist(train=True, n=12000)
    test = fashion_mnist(train=False, n=2000)
    shapes: dict[str, Callable[[], nn.Module]] = {
        "MLP 784-256-256-10": lambda: MLP(784, (256, 256)),
        "SmallCNN(width=8)": lambda: SmallCNN(width=8),
        "SmallCNN(width=32)": lambda: SmallCNN(width=32),
    }
    results: dict = {"meta": {
        "dataset": "Fashion-MNIST test (correctly classified)", "n": args.n,
        "steps": 50, "overshoot": 0.02, "threads": args.threads, "repeat": args.repeat,
        "torch": torch.__version__, "dmmlib": dmmlib.__version__,
        "adv_lib": "missing" if df is None else "0.2.8",
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
        cases = make_cases(model, x, y, df)
        for fn in cases.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {c: [] for c in cases}
        out: dict[str, torch.Tensor] = {}
        for _ in range(args.repeat):
            for c, fn in cases.items():
                t0 = time.perf_counter()
                out[c] = fn()
                times[c].append(time.perf_counter() - t0)
        row: dict = {"test_accuracy": acc, "n": int(x.shape[0]),
                     "parameters": sum(p.numel() for p in model.parameters())}
        for c in cases:
            row[c] = {"samples_per_s": x.shape[0] / statistics.median(times[c]),
                      "all_seconds": times[c], **evaluate(model, x, y, out[c])}

        def ratio(a: str, b: str, times: dict[str, list[float]] = times) -> float:
            return statistics.median(tb / ta for ta, tb in zip(times[a], times[b], strict=True))

        row["speed loop / batched"] = ratio("dmmlib (loop)", "dmmlib (batched)")
        row["speed loop / floor"] = ratio("dmmlib (loop)", "floor")
        row["speed loop, no refinement / floor"] = ratio("dmmlib (loop, refine_steps=0)", "floor")
        if df is not None:
            row["speed loop / adv-lib"] = ratio("dmmlib (loop)", "adv-lib")
            row["speed batched / adv-lib"] = ratio("dmmlib (batched)", "adv-lib")
            row["speed loop, no refinement / adv-lib"] = ratio("dmmlib (loop, refine_steps=0)",
                                                               "adv-lib")
            row["median L2 loop / adv-lib"] = (row["dmmlib (loop)"]["median_l2_success"]
                                               / row["adv-lib"]["median_l2_success"])
        results[name] = row
        print(f"\n{name} ({row['parameters']} parameters, accuracy {acc:.3f}, {x.shape[0]} images)")
        for c in cases:
            r = row[c]
            print(f"  {c:30s} {r['samples_per_s']:8.1f} samples/s  success {r['success']:.3f}"
                  f"  median L2 {r['median_l2_success']:.4f}")
        for key in [k for k in row if k.startswith(("speed", "median L2"))]:
            print(f"  {key}: {row[key]:.3f}")
    results["meta"]["seconds"] = time.perf_counter() - t_start
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(args.out)  # never a half-written result
    print(f"\nwrote {args.out} in {results['meta']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
