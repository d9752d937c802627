"""Fault injection for the caches: writers that fail or are killed, entries that rot.

Complements ``tests/test_cache.py``. Every test injects faults and checks the
two promises of :mod:`dmmlib.cache`:

* no partial or foreign file is ever visible under an entry's final name (a
  reader sees nothing, the old complete entry, or the new complete entry);
* a damaged entry is reported with a :class:`CacheWarning` and rebuilt, never
  loaded, and what is rebuilt equals what a clean run produces.

:data:`FAULTS` counts the faults injected (``test_fault_count`` prints it).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pickle
import select
import signal
import time
import warnings
from pathlib import Path

import pytest
import torch

from dmmlib import cache, manifold, train
from dmmlib.cache import CacheWarning, load_entry, save_entry
from dmmlib.models import MLP

FAULTS: list[str] = []  # one line per injected fault (the count is reported)


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def _load_quietly(path: Path, key: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a CacheWarning here would be a failure
        return load_entry(path, key)


def _forge(path: Path, obj: object, pickle_module=None) -> None:
    """Write ``obj`` with a *valid* header and checksum (a forged or buggy entry)."""
    buf = io.BytesIO()
    if pickle_module is None:
        torch.save(obj, buf)
    else:
        torch.save(obj, buf, pickle_module=pickle_module)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest().encode()
    path.write_bytes(cache._MAGIC + digest + b"\n" + body)


# --------------------------------------------------------------------------- failing writers
class _PartialWriter:
    """A file object that writes half of the bytes, then fails like a full disk."""

    def __init__(self, fh):
        self.fh = fh

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)


def _inject(kind: str, monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """Make the next save fail in one way; return the exception it raises."""
    if kind == "replace-exdev":
        def replace(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(cache.os, "replace", replace)
        return OSError
    if kind == "fsync-eio":
        def fsync(fd):
            raise OSError(errno.EIO, "Input/output error")
        monkeypatch.setattr(cache.os, "fsync", fsync)
        return OSError
    if kind == "write-enospc":
        real = os.fdopen
        monkeypatch.setattr(cache.os, "fdopen", lambda fd, mode: _PartialWriter(real(fd, mode)))
        return OSError
    if kind == "interrupt-during-write":
        real_fsync = os.fsync

        def fsync(fd):
            real_fsync(fd)
            raise KeyboardInterrupt
        monkeypatch.setattr(cache.os, "fsync", fsync)
        return KeyboardInterrupt
    if kind == "serialise-fails":
        def save(*args, **kwargs):
            raise RuntimeError("cannot serialise")
        monkeypatch.setattr(cache.torch, "save", save)
        return RuntimeError
    raise AssertionError(kind)


WRITE_FAULTS = ["replace-exdev", "fsync-eio", "write-enospc", "interrupt-during-write",
                "serialise-fails"]


@pytest.mark.parametrize("old", [False, True], ids=["fresh", "overwrite"])
@pytest.mark.parametrize("kind", WRITE_FAULTS)
def test_a_failing_write_never_shows_a_partial_file(tmp_path, monkeypatch, kind, old):
    path = tmp_path / "e.pt"
    if old:
        save_entry(path, "k", {"w": torch.full((1000,), 1.0)})
        before = path.read_bytes()
    with monkeypatch.context() as m:
        raised = _inject(kind, m)
        FAULTS.append(f"save_entry {kind} ({'overwrite' if old else 'fresh'})")
        with pytest.raises(raised):
            save_entry(path, "k", {"w": torch.full((1000,), 2.0)})
    assert _temporaries(tmp_path) == []  # the writer cleaned up after itself
    if old:
        assert path.read_bytes() == before  # the old complete entry, untouched
        assert float(_load_quietly(path, "k")["w"][0]) == 1.0
    else:
        assert not path.exists()
        assert _load_quietly(path, "k") is None  # missing, not damaged: no warning
    save_entry(path, "k", {"w": torch.full((1000,), 3.0)})  # the next write works
    assert float(_load_quietly(path, "k")["w"][0]) == 3.0


@pytest.mark.parametrize("kind", ["replace-exdev", "fsync-eio", "write-enospc"])
def test_cached_computations_survive_an_unwritable_cache(tmp_path, monkeypatch, kind):
    """An OSError while storing becomes a CacheWarning; the result is still returned,
    and the next run (cache writable again) computes once more and stores it."""
    calls = []

    def compute():
        calls.append(1)
        return {"v": torch.arange(3.0)}

    with monkeypatch.context() as m:
        _inject(kind, m)
        FAULTS.append(f"cached_result {kind}")
        with pytest.warns(CacheWarning, match="could not be written"):
            out = cache.cached_result("faulty", {"a": 1}, compute)
    assert torch.equal(out["v"], torch.arange(3.0)) and len(calls) == 1
    folder = Path(os.environ["DMM_CACHE"])
    assert _entries(folder) == [] and _temporaries(folder) == []
    cache.cached_result("faulty", {"a": 1}, compute)
    cache.cached_result("faulty", {"a": 1}, compute)
    assert len(calls) == 2  # rebuilt once, then loaded


# --------------------------------------------------------------------------- killed writers
class _Stalled:
    """A file object that writes half of the bytes, says so, and then hangs."""

    def __init__(self, fh, say):
        self.fh, self.say = fh, say

    def write(self, data: bytes) -> int:
        half = len(data) // 2
        self.fh.write(data[:half])
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.say("HALF")
        time.sleep(120)
        return self.fh.write(data[half:])

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)


def _fork_writer(mode: str, path: Path, payload: dict) -> tuple[int, int]:
    """Fork a process that writes ``payload`` to ``path`` in a loop (``mode`` may stall it
    half-way through the bytes or just before the rename); return (pid, pipe to read)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only cache code runs here, then it is killed
        try:
            os.close(r)

            def say(word: str) -> None:
                os.write(w, word.encode() + b"\n")

            real_fdopen, real_replace = os.fdopen, os.replace
            if mode == "mid-write":
                cache.os.fdopen = lambda fd, m: _Stalled(real_fdopen(fd, m), say)
            elif mode == "before-rename":
                def stalled_replace(src, dst):
                    say("RENAME")
                    time.sleep(120)
                    real_replace(src, dst)
                cache.os.replace = stalled_replace
            say("READY")
            i = 0
            while True:
                i += 1
                payload["w"][0] = float(i)  # a cheap change: entries differ between writes
                save_entry(path, "k", payload)
        finally:
            os._exit(3)
    os.close(w)
    return pid, r


def _wait_for(fd: int, word: str, timeout: float = 60.0) -> None:
    buf = b""
    deadline = time.monotonic() + timeout
    while word.encode() + b"\n" not in buf:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 64) if ready else b""
        assert chunk, f"the writer did not reach {word!r}"
        buf += chunk


def _kill(pid: int, fd: int) -> None:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


_BIG = 2_000_000  # floats: an 8 MB entry


@pytest.mark.parametrize("old", [False, True], ids=["fresh", "overwrite"])
@pytest.mark.parametrize("mode", ["mid-write", "before-rename"])
def test_sigkill_during_a_write_leaves_no_partial_entry(tmp_path, mode, old):
    path = tmp_path / "big.pt"
    if old:
        save_entry(path, "k", {"w": torch.full((10,), -1.0)})
        before = path.read_bytes()
    pid, fd = _fork_writer(mode, path, {"w": torch.full((_BIG,), 2.0)})
    try:
        _wait_for(fd, "READY")
        _wait_for(fd, "HALF" if mode == "mid-write" else "RENAME")
        # the writer is stopped mid-write: its bytes are only in a temporary file
        (tmp,) = _temporaries(tmp_path)
        size = tmp.stat().st_size
        assert size > _BIG and (mode == "before-rename" or size < 4 * _BIG)
        assert path.read_bytes() == before if old else not path.exists()
    finally:
        _kill(pid, fd)
    FAULTS.append(f"SIGKILL {mode} ({'overwrite' if old else 'fresh'})")
    if old:
        assert path.read_bytes() == before
        assert float(_load_quietly(path, "k")["w"][0]) == -1.0
    else:
        assert not path.exists() and _load_quietly(path, "k") is None
    # the next writer succeeds; the killed writer's leftover goes once it is stale
    (tmp,) = _temporaries(tmp_path)
    save_entry(path, "k", {"w": torch.zeros(3)})
    assert _temporaries(tmp_path) == [tmp]  # recent: could be a live concurrent writer
    old_time = time.time() - cache.STALE_TEMPORARY_SECONDS - 60
    os.utime(tmp, (old_time, old_time))
    save_entry(path, "k", {"w": torch.ones(3)})
    assert _temporaries(tmp_path) == []
    assert torch.equal(_load_quietly(path, "k")["w"], torch.ones(3))


def test_sigkill_at_arbitrary_moments_of_a_write_loop(tmp_path):
    """Kill a writer looping over 8 MB entries at several moments; whatever moment
    the kill lands on, the entry under the final name is complete (or absent)."""
    path = tmp_path / "loop.pt"
    payload = {"w": torch.full((_BIG,), 5.0)}
    complete = 0
    for delay in (0.0, 0.01, 0.05, 0.1, 0.2, 0.35, "after a complete write"):
        pid, fd = _fork_writer("loop", path, payload)
        try:
            _wait_for(fd, "READY")
            if isinstance(delay, float):
                time.sleep(delay)
            else:  # make sure one kill lands while a complete entry is being replaced
                deadline = time.monotonic() + 60
                while not path.exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(0.01)
        finally:
            _kill(pid, fd)
        FAULTS.append(f"SIGKILL write loop ({delay})")
        out = _load_quietly(path, "k")  # never a CacheWarning
        if out is not None:
            w = out["w"]
            assert w.shape == (_BIG,) and float(w[0]) >= 1 and bool((w[1:] == 5.0).all())
            complete += 1
        assert all(p.name == "loop.pt" or p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert complete >= 1


# --------------------------------------------------------------------------- rotten entries
def _positions(n: int, count: int) -> list[int]:
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


def test_every_truncation_and_bit_flip_is_detected(tmp_path):
    path = tmp_path / "e.pt"
    save_entry(path, "k", {"w": torch.arange(200.0), "note": "x"})
    raw = path.read_bytes()
    damaged = []
    for cut in _positions(len(raw) - 1, 24):
        damaged.append(("truncate", raw[:cut]))
    for pos in _positions(len(raw), 24):
        for bit in (0, 7):
            damaged.append(("flip", raw[:pos] + bytes([raw[pos] ^ (1 << bit)]) + raw[pos + 1:]))
    damaged.append(("append", raw + b"\x00"))
    damaged.append(("empty", b""))
    damaged.append(("header-only", raw[: len(cache._MAGIC) + 65]))
    for kind, blob in damaged:
        path.write_bytes(blob)
        FAULTS.append(f"load_entry {kind}")
        with pytest.warns(CacheWarning, match="ignored and will be rebuilt"):
            assert load_entry(path, "k") is None, kind


@pytest.mark.parametrize("kind", ["not-torch", "not-a-dict", "no-key", "malicious",
                                  "list-payload"])
def test_forged_entries_with_a_valid_checksum_are_refused(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "e.pt"
    if kind == "not-torch":
        body = b"just some bytes"
        path.write_bytes(cache._MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n"
                         + body)
    elif kind == "not-a-dict":
        _forge(path, [1, 2, 3])
    elif kind == "no-key":
        _forge(path, {"payload": {"w": torch.ones(1)}})
    elif kind == "malicious":
        _forge(path, {"key": "k", "payload": {"x": _Evil()}}, pickle_module=pickle)
    else:
        _forge(path, {"key": "other", "payload": [1]})
    FAULTS.append(f"forged entry {kind}")
    with pytest.warns(CacheWarning, match="ignored and will be rebuilt"):
        assert load_entry(path, "k") is None
    assert not (tmp_path / "PWNED").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_unreadable_entry_is_a_warning(tmp_path, monkeypatch):
    path = tmp_path / "e.pt"
    save_entry(path, "k", {"w": torch.ones(2)})

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    FAULTS.append("load_entry permission denied")
    with pytest.warns(CacheWarning, match="PermissionError"):
        assert load_entry(path, "k") is None


def test_a_directory_in_the_way_is_a_warning_and_the_result_survives():
    calls = []
    key = cache.config_key({"cached_result": "blocked", "a": 1})
    path = cache.entry_path(key, "result-blocked")
    path.mkdir(parents=True)  # something occupies the entry's name
    FAULTS.append("cache entry name occupied by a directory")
    with pytest.warns(CacheWarning, match="could not be written"):
        out = cache.cached_result("blocked", {"a": 1}, lambda: calls.append(1) or 7)
    assert out == 7 and path.is_dir()


# --------------------------------------------------------------------------- through training
def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 1, 2, 2, generator=g)
    y = (x.flatten(1).sum(1) > 2).long()
    return x, y


def _fresh() -> MLP:
    torch.manual_seed(1)
    return MLP(4, (8,), 2)


def _damage(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) * 2 // 3])
    elif how == "bit-flip":
        path.write_bytes(raw[:-9] + bytes([raw[-9] ^ 0x10]) + raw[-8:])
    elif how == "garbage":
        path.write_bytes(os.urandom(len(raw)))
    elif how == "malicious":
        key = torch.load(io.BytesIO(raw[len(cache._MAGIC) + 65:]), weights_only=True)["key"]
        _forge(path, {"key": key, "payload": {"x": _Evil()}}, pickle_module=pickle)
    else:  # a valid checksum and key, but weights that do not fit the model
        key = torch.load(io.BytesIO(raw[len(cache._MAGIC) + 65:]), weights_only=True)["key"]
        obj = torch.load(io.BytesIO(raw[len(cache._MAGIC) + 65:]), weights_only=True)
        state = obj["payload"]["state_dict"]
        if how == "wrong-shape":
            name = next(iter(k for k in state if k.endswith("weight")))
            state[name] = torch.zeros(3, 3)
        elif how == "missing-weight":
            state.pop(next(iter(state)))
        else:  # no history
            obj["payload"].pop("history")
        _forge(path, {"key": key, "payload": obj["payload"]})


DAMAGE = ["truncated", "bit-flip", "garbage", "malicious", "wrong-shape", "missing-weight",
          "no-history"]


@pytest.mark.parametrize("how", DAMAGE)
def test_train_cached_rebuilds_a_damaged_entry_with_the_right_weights(how, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _problem()
    reference = _fresh()
    first = train.train_cached(reference, data, name="faults", epochs=2, batch_size=16,
                               progress=False)
    _damage(first["path"], how)
    FAULTS.append(f"train_cached entry {how}")
    model = _fresh()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(CacheWarning, match="ignored and will be rebuilt"):
        again = train.train_cached(model, data, name="faults", epochs=2, batch_size=16,
                                   progress=False)
    assert not again["cached"] and again["path"] == first["path"]
    assert again["history"] == first["history"]
    for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # retrained from the untouched initial weights
    assert not (tmp_path / "PWNED").exists()
    # the entry was rewritten: the third run loads it, silently
    third_model = _fresh()
    assert any(not torch.equal(v, initial[k]) for k, v in model.state_dict().items())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = train.train_cached(third_model, data, name="faults", epochs=2, batch_size=16,
                                   progress=False)
    assert third["cached"]
    pairs = zip(third_model.state_dict().values(), reference.state_dict().values(), strict=True)
    for a, b in pairs:
        assert torch.equal(a, b)


@pytest.mark.parametrize("how", ["truncated", "wrong-shape"])
def test_fit_autoencoder_cached_rebuilds_a_damaged_entry(how):
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(0))

    def fresh():
        torch.manual_seed(2)
        return manifold.MLPAutoencoder(6, 2, hidden=(8,))

    reference = fresh()
    first = manifold.fit_autoencoder_cached(reference, x, epochs=2, progress=False)
    _damage(first["path"], how)
    FAULTS.append(f"fit_autoencoder_cached entry {how}")
    ae = fresh()
    with pytest.warns(CacheWarning, match="ignored and will be rebuilt"):
        again = manifold.fit_autoencoder_cached(ae, x, epochs=2, progress=False)
    assert not again["cached"] and again["history"] == first["history"]
    for a, b in zip(ae.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_train_cached_rejects_a_callback_and_points_to_cached_result():
    data = _problem()
    calls = []
    with pytest.raises(ValueError, match=r"^callback: .*never be called.*cached_result"):
        train.train_cached(_fresh(), data, callback=lambda step, model: calls.append(step),
                           progress=False)
    assert calls == [] and not Path(os.environ["DMM_CACHE"]).exists()
    train.train_cached(_fresh(), data, callback=None, epochs=1, progress=False)  # None is fine

    # what the message recommends: cache the whole recording run
    def run():
        model = _fresh()
        steps = []
        train.fit(model, data, epochs=1, batch_size=16, progress=False,
                  callback=lambda step, m: steps.append(step))
        return {"steps": steps, "weights": dict(model.state_dict())}

    first = cache.cached_result("recorded", {"epochs": 1}, run)
    second = cache.cached_result("recorded", {"epochs": 1}, run)
    assert first["steps"] == [0, 1, 2] == second["steps"]


def test_fault_count():
    """Runs last in this file: report how many faults the tests above injected."""
    if not FAULTS:
        pytest.skip("run the whole file to count the faults")
    print(f"\ncache faults injected: {len(FAULTS)}")
