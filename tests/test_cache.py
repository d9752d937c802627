import multiprocessing as mp
import os
import pickle
import warnings

import pytest
import torch

from dmmlib import cache
from dmmlib.cache import CacheWarning, config_key, entry_path, load_entry, save_entry


def test_config_key_is_stable_and_order_free():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})
    with pytest.raises(TypeError, match="tensors are not allowed"):
        config_key({"t": torch.zeros(1)})


def test_round_trip(tmp_path):
    path = tmp_path / "m.pt"
    save_entry(path, "k", {"w": torch.arange(3.0), "note": "x", "hist": [1.0, 2.0]})
    out = load_entry(path, "k")
    assert torch.equal(out["w"], torch.arange(3.0)) and out["hist"] == [1.0, 2.0]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_location_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("DMM_CACHE", str(tmp_path / "here"))
    assert entry_path("abcdef" * 4, "net").parent == tmp_path / "here"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "wrong-key"])
def test_damaged_entries_are_ignored_with_a_warning(tmp_path, damage):
    path = tmp_path / "m.pt"
    save_entry(path, "k", {"w": torch.ones(100)})
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        path.write_bytes(raw[:-5] + bytes([raw[-5] ^ 0xFF]) + raw[-4:])
    elif damage == "garbage":
        path.write_bytes(b"not a cache file at all")
    key = "other" if damage == "wrong-key" else "k"
    with pytest.warns(CacheWarning, match="rebuilt"):
        assert load_entry(path, key) is None


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    """A pickle that runs code is refused even with a valid checksum."""
    import hashlib
    import io

    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    torch.save({"key": "k", "payload": {"x": _Evil()}}, buf, pickle_module=pickle)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest().encode()
    (tmp_path / "evil.pt").write_bytes(cache._MAGIC + digest + b"\n" + body)
    with pytest.warns(CacheWarning, match="cannot be loaded safely"):
        assert load_entry(tmp_path / "evil.pt", "k") is None
    assert not (tmp_path / "PWNED").exists()


def _writer(path, value, n):
    for _ in range(n):
        save_entry(path, "k", {"w": torch.full((20_000,), float(value))})


def test_concurrent_writers_leave_one_valid_file(tmp_path):
    path = tmp_path / "same.pt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, v, 20)) for v in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_entry(path, "k")
    assert out is not None and float(out["w"][0]) in (1.0, 2.0)
    assert torch.all(out["w"] == out["w"][0])
    assert [p.name for p in tmp_path.iterdir()] == ["same.pt"]


def test_cached_result_computes_once_and_checks_types():
    from dmmlib.cache import cached_result, module_fingerprint

    calls = []

    def compute():
        calls.append(1)
        return {"norms": torch.arange(4.0), "median": 1.5, "labels": ["a", "b"]}

    first = cached_result("exp", {"n": 4}, compute)
    second = cached_result("exp", {"n": 4}, compute)
    assert len(calls) == 1 and torch.equal(first["norms"], second["norms"])
    cached_result("exp", {"n": 5}, compute)
    assert len(calls) == 2
    cached_result("exp", {"n": 4}, compute, cache=False)
    assert len(calls) == 3
    with pytest.raises(TypeError, match="cannot be cached safely"):
        cached_result("bad", {}, lambda: {"f": object()})
    lin = torch.nn.Linear(3, 2)
    fp = module_fingerprint(lin)
    with torch.no_grad():
        lin.weight[0, 0] += 1
    assert module_fingerprint(lin) != fp
