"""Cache entries follow the code: editing any dmmlib module makes every entry a miss."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dmmlib
from dmmlib import cache

PKG = Path(dmmlib.__file__).resolve().parent

# Runs in a fresh interpreter on a copy of the package; prints what it computed.
SCRIPT = textwrap.dedent("""
    import json, sys, torch
    import dmmlib
    from dmmlib import cache, models, train
    assert dmmlib.__file__.startswith(sys.argv[1]), dmmlib.__file__
    ran = []
    result = cache.cached_result("identity-test", {"n": 3},
                                 lambda: (ran.append(1), {"v": torch.arange(3.0)})[1])
    torch.manual_seed(0)
    model = models.MLP(4, (5,), 2)
    x = torch.rand(16, 4)
    y = (x[:, 0] > 0.5).long()
    out = train.train_cached(model, (x, y), name="identity-net", epochs=1, progress=False)
    print(json.dumps({"result_computed": bool(ran), "trained": not out["cached"],
                      "fingerprint": cache.source_fingerprint()}))
""")


def _run(root: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "DMM_CACHE": str(cache_dir),
           "DMM_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_an_edited_module_recomputes_results_and_retrains(tmp_path):
    root = tmp_path / "src"
    shutil.copytree(PKG, root / "dmmlib", ignore=shutil.ignore_patterns("__pycache__"))
    store = tmp_path / "cache"

    first = _run(root, store)
    assert first["result_computed"] and first["trained"]
    second = _run(root, store)  # same code: both come from the cache
    assert not second["result_computed"] and not second["trained"]
    assert second["fingerprint"] == first["fingerprint"]

    # a change to a module the entries never call still changes the code they came from
    geometry = root / "dmmlib" / "geometry.py"
    geometry.write_text(geometry.read_text() + "\n# an edit\n")
    third = _run(root, store)
    assert third["fingerprint"] != first["fingerprint"]
    assert third["result_computed"] and third["trained"]
    fourth = _run(root, store)
    assert not fourth["result_computed"] and not fourth["trained"]


def test_the_fingerprint_covers_every_module_and_only_source(tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(PKG, root, ignore=shutil.ignore_patterns("__pycache__"))
    base = cache._fingerprint_of(root)
    (root / "notes.txt").write_text("not code")
    cache._fingerprint_of.cache_clear()
    assert cache._fingerprint_of(root) == base
    (root / "attacks" / "pgd.py").write_text((root / "attacks" / "pgd.py").read_text() + "#")
    cache._fingerprint_of.cache_clear()
    assert cache._fingerprint_of(root) != base
    (root / "attacks" / "pgd.py").rename(root / "attacks" / "pgd2.py")
    cache._fingerprint_of.cache_clear()
    renamed = cache._fingerprint_of(root)
    assert renamed != base
    cache._fingerprint_of.cache_clear()


def test_config_key_depends_on_the_source(monkeypatch):
    key = cache.config_key({"a": 1})
    monkeypatch.setattr(cache, "source_fingerprint", lambda: "0" * 64)
    assert cache.config_key({"a": 1}) != key
