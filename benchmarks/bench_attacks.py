"""Benchmark dmmlib.attacks against torchattacks, foolbox, ART and adv-lib (one process).

Same model (a SmallCNN trained for one epoch on Fashion-MNIST), same correctly
classified test images, same settings for every library. Reports samples per
second, success rates and median L2 distances, and the ratios the book quotes.
Not part of the test suite; run ``benchmarks/run_attacks.sh`` (or this file).

Usage::

    .venv/bin/python benchmarks/bench_attacks.py [--n 256] [--n-minimal 128]
        [--threads 1] [--out benchmarks/results_attacks_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import dmmlib
import dmmlib.attacks as A
from dmmlib.data import fashion_mnist
from dmmlib.models import SmallCNN
from dmmlib.train import accuracy, fit

warnings.filterwarnings("ignore")


# ---------------------------------------------------------------------------
# comparison libraries (each optional: a missing one is reported, not fatal)
# ---------------------------------------------------------------------------

def _import(name: str):
    try:
        if name == "adv_lib":
            # adv-lib imports visdom for its optional logger only; it is not needed here
            sys.modules.setdefault("visdom", types.ModuleType("visdom"))
        return __import__(name)
    except Exception as err:  # pragma: no cover - depends on the environment
        print(f"  ({name} unavailable: {err})")
        return None


def _version(mod) -> str:
    if mod is None:
        return "missing"
    return getattr(mod, "__version__", "?")


# ---------------------------------------------------------------------------
# measurement helpers
# ---------------------------------------------------------------------------

def timed(fn: Callable[[], torch.Tensor], repeat: int = 1) -> tuple[torch.Tensor, float]:
    """Best wall time of ``repeat`` runs (the output of the last one)."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             x_adv: torch.Tensor | np.ndarray | A.AttackResult, seconds: float) -> dict:
    if isinstance(x_adv, A.AttackResult):  # dmmlib's attacks
        x_adv = x_adv.x_adv
    if isinstance(x_adv, np.ndarray):
        x_adv = torch.from_numpy(x_adv)
    x_adv = x_adv.detach().float().clamp(0, 1)
    ok = model(x_adv).argmax(1) != y
    dist = (x_adv - x).flatten(1).norm(dim=1)
    linf = (x_adv - x).flatten(1).abs().amax(1)
    dist_inf = torch.where(ok, dist, torch.full_like(dist, float("inf")))
    return {
        "seconds": seconds,
        "samples_per_s": x.shape[0] / seconds,
        "success": float(ok.float().mean()),
        "median_l2_success": float(dist[ok].median()) if bool(ok.any()) else float("nan"),
        "median_l2": float(dist_inf.median()),  # failures count as +inf
        "max_linf": float(linf.max()),
        "max_l2": float(dist.max()),
    }


def bare_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
             steps: int, norm: str, gen: torch.Generator) -> torch.Tensor:
    """The reference: forward + input gradient + step + projection, nothing else."""
    if norm == "inf":
        delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    else:
        g = torch.randn(x.shape, generator=gen)
        delta = g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * eps * torch.rand(
            x.shape[0], 1, 1, 1, generator=gen) ** (1 / x[0].numel())
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            if norm == "inf":
                x_adv = x_adv + alpha * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
            else:
                gn = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                d = x_adv + alpha * grad / gn - x
                dn = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                d = d * (eps / dn).clamp(max=1)
                x_adv = (x + d).clamp(0, 1)
    return x_adv.detach()


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="images for PGD and DeepFool")
    ap.add_argument("--n-minimal", type=int, default=64, help="images for minimal-norm attacks")
    ap.add_argument("--n-slow", type=int, default=16,
                    help="images for torchattacks' per-sample DeepFool")
    ap.add_argument("--budgets", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3,
                    help="PGD timings: best of this many interleaved runs")
    ap.add_argument("--repeat-deepfool", type=int, default=1,
                    help="DeepFool timings: best of this many interleaved runs")
    ap.add_argument("--width", type=int, default=8, help="SmallCNN width")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name(
        "results_attacks_cpu.json"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t_start = time.perf_counter()
    print(f"dmmlib {dmmlib.__version__}, torch {torch.__version__}, {args.threads} thread(s)")
    ta, fb, art, advlib = (_import(m) for m in ("torchattacks", "foolbox", "art", "adv_lib"))

    # model and data ------------------------------------------------------
    train = fashion_mnist(train=True, n=12000)
    test = fashion_mnist(train=False, n=2000)
    model = SmallCNN(width=args.width)
    t0 = time.perf_counter()
    fit(model, (train.x, train.y), epochs=1, batch_size=128, lr=2e-3, seed=0, progress=False)
    train_s = time.perf_counter() - t0
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)  # every library gets the same frozen model
    acc = accuracy(model, (test.x, test.y))
    print(f"SmallCNN(width={args.width}): test accuracy {acc:.3f} (trained in {train_s:.0f}s)")
    with torch.no_grad():
        correct = model(test.x).argmax(1) == test.y
    xs, ys = test.x[correct], test.y[correct]
    x, y = xs[: args.n].contiguous(), ys[: args.n].contiguous()
    xm, ym = xs[: args.n_minimal].contiguous(), ys[: args.n_minimal].contiguous()
    results: dict = {
        "meta": {
            "dataset": "Fashion-MNIST test (correctly classified)",
            "model": f"SmallCNN(width={args.width})",
            "test_accuracy": acc, "n": x.shape[0], "n_minimal": xm.shape[0],
            "threads": args.threads, "torch": torch.__version__, "dmmlib": dmmlib.__version__,
            "torchattacks": _version(ta), "foolbox": _version(fb), "art": _version(art),
            "adv_lib": _version(advlib), "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor(),
        },
    }

    fmodel = fb.PyTorchModel(model, bounds=(0, 1)) if fb else None
    clf = None
    if art:
        from art.estimators.classification import PyTorchClassifier
        clf = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    xn, yn = x.numpy(), y.numpy()

    def run_case(title: str, cases: dict[str, Callable[[], torch.Tensor]], xx, yy,
                 repeat: int) -> dict:
        """Run every case ``repeat`` times, interleaved (so that a change in the machine's
        load hits all libraries alike), and keep each one's best time."""
        print(f"\n{title}")
        times: dict[str, list[float]] = {name: [] for name in cases}
        advs: dict[str, torch.Tensor] = {}
        errors: dict[str, str] = {}
        for _ in range(repeat):
            for name, fn in cases.items():
                if name in errors:
                    continue
                try:
                    adv, secs = timed(fn, 1)
                except Exception as err:  # a library failing is reported, not fatal
                    errors[name] = f"{type(err).__name__}: {err}"
                    continue
                advs[name] = adv
                times[name].append(secs)
        out = {}
        for name in cases:
            if name in errors:
                print(f"  {name:34s} FAILED: {errors[name]}")
                out[name] = {"error": errors[name]}
                continue
            r = evaluate(model, xx, yy, advs[name], min(times[name]))
            r["all_seconds"] = times[name]
            out[name] = r
            print(f"  {name:34s} {r['samples_per_s']:9.1f} samples/s  success {r['success']:.3f}"
                  f"  median L2 {r['median_l2_success']:.4f}  max Linf {r['max_linf']:.4f}")
        return out

    # warm-up: first calls pay for lazy imports and allocator growth
    A.pgd(model, x[:4], y[:4], 0.1, steps=2, progress=False)
    A.deepfool(model, x[:4], y[:4], steps=2, progress=False)
    bare_pgd(model, x[:4], y[:4], 0.1, 0.01, 2, "inf", torch.Generator().manual_seed(0))

    # PGD -----------------------------------------------------------------
    steps = 40
    for norm, eps in (("inf", 0.1), ("2", 1.0)):
        alpha = 2.5 * eps / steps
        cases: dict[str, Callable[[], torch.Tensor]] = {
            "dmmlib": lambda eps=eps, norm=norm, alpha=alpha: A.pgd(
                model, x, y, eps, norm=norm, steps=steps, step_size=alpha, seed=0,
                progress=False),
            "bare loop": lambda eps=eps, norm=norm, alpha=alpha: bare_pgd(
                model, x, y, eps, alpha, steps, norm, torch.Generator().manual_seed(0)),
        }
        if ta:
            cls = ta.PGD if norm == "inf" else ta.PGDL2
            atk = cls(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
            cases["torchattacks"] = lambda atk=atk: atk(x, y)
        if fb:
            fcls = fb.attacks.LinfPGD if norm == "inf" else fb.attacks.L2PGD
            fatk = fcls(abs_stepsize=alpha, steps=steps, random_start=True)
            cases["foolbox"] = lambda fatk=fatk, eps=eps: fatk(fmodel, x, y, epsilons=eps)[1]
        if art:
            from art.attacks.evasion import ProjectedGradientDescentPyTorch
            aatk = ProjectedGradientDescentPyTorch(
                clf, norm=np.inf if norm == "inf" else 2, eps=eps, eps_step=alpha,
                max_iter=steps, num_random_init=1, batch_size=x.shape[0], verbose=False)
            cases["ART"] = lambda aatk=aatk: aatk.generate(xn, y=yn)
        if advlib and norm == "inf":
            from adv_lib.attacks import pgd_linf
            cases["adv-lib"] = lambda eps=eps, alpha=alpha: pgd_linf(
                model, x, y, eps, steps=steps, absolute_step_size=alpha)
        res = run_case(f"PGD L{norm}, eps={eps}, {steps} steps, step {alpha:g}, "
                       f"{x.shape[0]} images", cases, x, y, args.repeat)
        results[f"pgd_l{norm}"] = {"eps": eps, "steps": steps, "step_size": alpha,
                                   "results": res}

    # DeepFool --------------------------------------------------------------
    cases = {
        "dmmlib": lambda: A.deepfool(model, x, y, steps=50, overshoot=0.02, progress=False),
        "dmmlib (refine_steps=0)": lambda: A.deepfool(model, x, y, steps=50, overshoot=0.02,
                                                      refine_steps=0, progress=False),
    }
    if fb:
        fdf = fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
        cases["foolbox"] = lambda: fdf(fmodel, x, y, epsilons=None)[1]
    if art:
        from art.attacks.evasion import DeepFool
        adf = DeepFool(clf, max_iter=50, epsilon=0.02, nb_grads=10, batch_size=x.shape[0],
                       verbose=False)
        cases["ART"] = lambda: adf.generate(xn)
    if advlib:
        from adv_lib.attacks import df as adv_df
        cases["adv-lib"] = lambda: adv_df(model, x, y, steps=50, overshoot=0.02, norm=2)
    res = run_case(f"DeepFool L2, 50 steps, overshoot 0.02, {x.shape[0]} images", cases, x, y,
                   args.repeat_deepfool)
    if ta:
        xs_, ys_ = x[: args.n_slow], y[: args.n_slow]
        tdf = ta.DeepFool(model, steps=50, overshoot=0.02)
        slow = run_case(f"DeepFool, torchattacks (per-sample Jacobians): {xs_.shape[0]} images",
                        {"torchattacks": lambda: tdf(xs_, ys_),
                         "dmmlib (same images)": lambda: A.deepfool(model, xs_, ys_, steps=50,
                                                                    progress=False)},
                        xs_, ys_, 1)
        res.update(slow)
    results["deepfool"] = {"steps": 50, "overshoot": 0.02, "results": res}

    # minimal-norm L2 at equal gradient budgets ------------------------------
    results["minimal_l2"] = {}
    for budget in args.budgets:
        bs_steps = 5 if budget <= 100 else 10
        cw_steps = budget // bs_steps
        cases = {
            "dmmlib minimal_l2 (auto)": lambda b=budget: A.minimal_l2(model, xm, ym, steps=b,
                                                                     progress=False),
            "dmmlib minimal_l2 (FMN)": lambda b=budget: A.minimal_l2(
                model, xm, ym, steps=b, method="fmn", progress=False),
            "dmmlib minimal_l2 (DDN)": lambda b=budget: A.minimal_l2(
                model, xm, ym, steps=b, method="ddn", progress=False),
            f"dmmlib carlini_wagner_l2 ({bs_steps}x{cw_steps})":
                lambda bs=bs_steps, cs=cw_steps: A.carlini_wagner_l2(
                    model, xm, ym, binary_search_steps=bs, steps=cs, c=1.0, progress=False),
        }
        if fb:
            f_ddn = fb.attacks.DDNAttack(steps=budget)
            f_fmn = fb.attacks.L2FMNAttack(steps=budget)
            cases["foolbox DDN"] = lambda a=f_ddn: a(fmodel, xm, ym, epsilons=None)[1]
            cases["foolbox FMN"] = lambda a=f_fmn: a(fmodel, xm, ym, epsilons=None)[1]
        if ta:
            t_cw = ta.CW(model, c=1, kappa=0, steps=budget, lr=0.01)
            cases["torchattacks CW (c=1)"] = lambda a=t_cw: a(xm, ym)
        if advlib:
            from adv_lib.attacks import ddn as adv_ddn
            from adv_lib.attacks import fmn as adv_fmn
            if budget <= 100:  # the same algorithm as foolbox's DDN (identical results)
                cases["adv-lib DDN"] = lambda b=budget: adv_ddn(model, xm, ym, steps=b,
                                                                levels=None)
            cases["adv-lib FMN"] = lambda b=budget: adv_fmn(model, xm, ym, norm=2, steps=b)
        res = run_case(f"Minimal-norm L2, {budget} gradients, {xm.shape[0]} images", cases, xm,
                       ym, 1)
        results["minimal_l2"][str(budget)] = res

    results["ratios"] = ratios(results)
    results["meta"]["total_seconds"] = time.perf_counter() - t_start
    args.out.write_text(json.dumps(_jsonable(results), indent=2, default=float) + "\n")
    print("\nRatios:")
    for k, v in results["ratios"].items():
        print(f"  {k:70s} {'n/a' if v is None else f'{v:8.3f}'}")
    print(f"\nwrote {args.out} ({results['meta']['total_seconds']:.0f}s)")


def ratios(results: dict) -> dict[str, float | None]:
    """The headline numbers: dmmlib relative to each library (> 1: dmmlib is faster / the
    other one's distance is larger). ``None`` where a ratio is undefined."""
    out: dict[str, float | None] = {}

    def ok(res: dict, name: str) -> bool:
        return name in res and "error" not in res[name]

    def ratio(a: float, b: float) -> float | None:
        return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else None

    def speed(res: dict, mine: str, other: str) -> float | None:
        """Median over rounds of time(other) / time(mine), both timed in the same round
        (back to back), which cancels most of the drift of a shared machine's load."""
        a, b = res[mine].get("all_seconds", []), res[other].get("all_seconds", [])
        if not a or len(a) != len(b):
            return ratio(res[mine]["samples_per_s"], res[other]["samples_per_s"])
        scale = res[mine]["samples_per_s"] * min(a) / (res[other]["samples_per_s"] * min(b))
        return float(np.median([tb / ta for ta, tb in zip(a, b, strict=True)])) * scale

    for key in ("pgd_linf", "pgd_l2"):
        res = results[key]["results"]
        for other in ("bare loop", "torchattacks", "foolbox", "ART", "adv-lib"):
            if ok(res, other):
                out[f"{key}: speed dmmlib / {other}"] = speed(res, "dmmlib", other)
    res = results["deepfool"]["results"]
    for other in ("foolbox", "ART", "adv-lib"):
        if ok(res, other):
            out[f"deepfool: speed dmmlib / {other}"] = speed(res, "dmmlib", other)
            out[f"deepfool: median L2 dmmlib / {other}"] = ratio(
                res["dmmlib"]["median_l2_success"], res[other]["median_l2_success"])
    if ok(res, "torchattacks"):
        mine = res["dmmlib (same images)"]
        out["deepfool: speed dmmlib / torchattacks (same images)"] = ratio(
            mine["samples_per_s"], res["torchattacks"]["samples_per_s"])
        out["deepfool: median L2 dmmlib / torchattacks (same images, successes)"] = ratio(
            mine["median_l2_success"], res["torchattacks"]["median_l2_success"])
    if ok(res, "torchattacks"):
        out["deepfool: speed dmmlib (all images) / torchattacks"] = ratio(
            res["dmmlib"]["samples_per_s"], res["torchattacks"]["samples_per_s"])
    for budget, res in results["minimal_l2"].items():
        mine = res["dmmlib minimal_l2 (auto)"]
        for other in res:
            if other == "dmmlib minimal_l2 (auto)" or not ok(res, other):
                continue
            out[f"minimal_l2@{budget}: median L2 dmmlib auto / {other}"] = ratio(
                mine["median_l2"], res[other]["median_l2"])
            out[f"minimal_l2@{budget}: success dmmlib auto - {other}"] = (
                mine["success"] - res[other]["success"])
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # "inf" / "nan": strict JSON has no infinities
    return obj


if __name__ == "__main__":
    main()
