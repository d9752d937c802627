"""Execute the book's chapters side by side into Jupyter Book's execution cache.

``jupyter-book build`` executes one notebook at a time, and a chapter spends
much of its time in Python (small networks, attack loops) with one of the
machine's cores idle; several chapters even pin torch to one thread. This
script runs the chapters that record results (they call ``record`` or
``record_verdict``) ``--jobs`` at a time, each kernel's torch on
``cores // jobs`` threads, longest first (by the time each took last, where
the cache remembers one), and stores every executed notebook in the cache
named by ``_config.yml`` exactly as myst-nb would (same reader, same hash,
same ``execution_seconds``, with ``jobs`` and ``threads`` beside it for the
execution statistics page). The build that follows then finds them there and
executes only the pages that read the records (scoreboard, synthesis), after
the chapters, as before.

The cache obeys the build's rule (``book/_ext/code_identity.py``): if the
dmmlib source or the profile differ from the last finished build's, it is
emptied first; a stamp then tells the build that every entry left in it was
produced by the code and profile in use, so the build keeps them.

A chapter that fails is not cached; the script reports its traceback and
exits with status 1 once the others are done. Notebooks already in the cache
(same code) are not run again.

Usage: ``python tools/execute_book.py [--jobs N]`` from the repository root
(``make book`` and ``make test-build`` call it).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import code_identity  # noqa: E402
from toc_notebooks import ROOT, notebooks  # noqa: E402

#: how myst-nb reads a MyST Markdown notebook into the cache's project
READ_DATA = {"type": "plugin", "name": "myst_nb_md"}
#: a chapter that records results (and so must run before the pages that read them)
RECORDS = re.compile(r"\brecord(_verdict)?\(")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def config(root: Path = ROOT) -> dict:
    """The ``execute`` section of ``_config.yml`` with Jupyter Book's defaults filled in."""
    cfg = yaml.safe_load((root / "_config.yml").read_text()).get("execute", {}) or {}
    return {"cache": root / cfg.get("cache", "_build/.jupyter_cache"),
            "timeout": int(cfg.get("timeout", 30)),
            "allow_errors": bool(cfg.get("allow_errors", False)),
            "mode": cfg.get("execute_notebooks", "auto")}


def recording_chapters(paths: list[Path]) -> list[Path]:
    """The notebooks (Markdown sources) whose code records results, in the order given."""
    return [p for p in paths if RECORDS.search(p.read_text())]


def schedule(paths: list[Path], last_seconds: dict[str, float]) -> list[Path]:
    """Longest first: by the seconds each took last; notebooks never timed go first."""
    return sorted(paths, key=lambda p: -last_seconds.get(str(p), float("inf")))


def _cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_jobs() -> int:
    """Two chapters at a time where there are two cores or more, one with CUDA."""
    import torch

    return 1 if torch.cuda.is_available() else min(2, _cores())


def _execute(source: str, nb_json: str, timeout: int, allow_errors: bool, threads: int,
             lock_path: str) -> tuple[str, str, float, str | None]:
    """Run one notebook in a fresh kernel (in a worker process); its outputs as JSON.

    The kernel is started while holding the file lock ``lock_path``: two
    kernels started at the same moment can pick the same free TCP port (the
    second then dies before replying), so workers start theirs one at a time.
    """
    import fcntl
    import traceback

    from nbclient import NotebookClient

    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    nb = nbformat.reads(nb_json, as_version=4)
    meta = nb.metadata.get("execution", {})  # as jupyter-cache: the notebook may override
    client = NotebookClient(nb, timeout=meta.get("timeout", timeout),
                            allow_errors=meta.get("allow_errors", allow_errors),
                            resources={"metadata": {"path": str(Path(source).parent)}},
                            record_timing=False)  # cell metadata is part of the cache's hash
    start = time.perf_counter()
    error = None
    try:
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            client.km = client.create_kernel_manager()
            client.start_new_kernel()
            client.start_new_kernel_client()   # waits until the kernel answers
        client.execute()
    except Exception:  # a failing cell, a timeout, a kernel that died or never started
        error = traceback.format_exc()
        if client.km is not None:  # nbclient has not shut this kernel down itself
            client._cleanup_kernel()
    return source, nbformat.writes(nb), time.perf_counter() - start, error


def execute(root: Path = ROOT, jobs: int = 1) -> int:
    """Execute ``root``'s recording chapters into its execution cache; 1 if one failed."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cfg = config(root)
    if cfg["mode"] != "cache":
        print(f"execute_book: _config.yml executes with {cfg['mode']!r}, not 'cache': "
              "nothing to prepare")
        return 0
    build = root / "_build"
    new = code_identity.fingerprint()
    code_identity.prepare_cache(build, cfg["cache"], new)
    cache = get_cache(str(cfg["cache"]))
    lock = Path(cfg["cache"]) / "kernel-start.lock"
    chapters = recording_chapters([p.with_suffix(".md") for p in notebooks(root)])
    last = {}
    for rec in sorted(cache.list_cache_records(), key=lambda r: r.created):
        if isinstance(rec.data, dict) and "execution_seconds" in rec.data:
            last[rec.uri] = float(rec.data["execution_seconds"])
    todo: dict[str, str] = {}
    for path in chapters:
        record = cache.add_nb_to_project(str(path), read_data=READ_DATA)
        nb = cache.get_project_notebook(record.uri).nb
        try:
            cache.match_cache_notebook(nb)  # already executed with this code
        except KeyError:
            todo[record.uri] = nbformat.writes(nb)
    order = schedule([Path(u) for u in todo], last)
    threads = max(1, _cores() // jobs)
    print(f"execute_book: {len(order)} of {len(chapters)} chapters to execute, {jobs} at a "
          f"time, {threads} torch thread{'s' if threads > 1 else ''} each", flush=True)
    failed: list[str] = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: set[Future] = set()
        while order or pending:
            while order and len(pending) < jobs:
                uri = str(order.pop(0))
                pending.add(pool.submit(_execute, uri, todo[uri], cfg["timeout"],
                                        cfg["allow_errors"], threads, str(lock)))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                uri, nb_json, seconds, error = fut.result()
                name = Path(uri).relative_to(root)
                if error is not None:
                    failed.append(str(name))
                    print(f"execute_book: {name} FAILED after {seconds:.0f} s\n{error}",
                          flush=True)
                    continue
                cache.cache_notebook_bundle(
                    CacheBundleIn(nbformat.reads(nb_json, as_version=4), uri,
                                  data={"execution_seconds": seconds, "jobs": jobs,
                                        "threads": threads}),
                    check_validity=False, overwrite=True)
                print(f"execute_book: {name} {seconds:.0f} s", flush=True)
    build.mkdir(parents=True, exist_ok=True)
    (build / code_identity.EXECUTED_NAME).write_text(new + "\n")
    print(f"execute_book: done in {time.perf_counter() - start:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=None,
                        help="chapters executed at once (default: 2 on a CPU with two or "
                             "more cores, 1 with CUDA)")
    args = parser.parse_args(argv)
    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        parser.error(f"--jobs: expected a positive number, got {jobs}")
    return execute(ROOT, jobs)


if __name__ == "__main__":
    sys.exit(main())
