"""A cache of trained weights and results, keyed by the code that made them.

Entries are keyed by a hash of the configuration that produced them *and of
the source of the dmmlib package that computed them*
(:func:`source_fingerprint`), so an edit to any module of dmmlib makes every
earlier entry a miss: no number can come from code that is no longer there.
They are written
atomically (temporary file in the same folder, ``fsync``, ``os.replace``) and
carry a SHA-256 checksum of their payload. Loading verifies the checksum and
the stored key and deserialises with ``torch.load(weights_only=True)``, so a
cache file can never execute code. A truncated, corrupt or mismatched entry is
reported with a :class:`CacheWarning` and treated as missing. A writer
killed mid-write leaves only its temporary file (never a partial entry under
the final name); such leftovers are removed by a later write once they are
an hour old.

The cache folder is ``$DMM_CACHE`` or ``~/.cache/dmmlib/weights``.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CacheWarning",
    "cache_dir",
    "source_fingerprint",
    "config_key",
    "entry_path",
    "save_entry",
    "load_entry",
    "module_fingerprint",
    "cached_result",
    "cached_training",
]

_MAGIC = b"DMMCACHE1\n"
_DIGEST_LEN = 64  # hex SHA-256


class CacheWarning(UserWarning):
    """A cache entry was unreadable and will be rebuilt."""


def cache_dir() -> Path:
    """The cache folder: ``$DMM_CACHE`` or ``~/.cache/dmmlib/weights`` (created on demand)."""
    env = os.environ.get("DMM_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "dmmlib" / "weights"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor):
        raise TypeError("config_key: tensors are not allowed in a cache key; pass a "
                        "fingerprint (see dmmlib.train.tensor_fingerprint)")
    return repr(value)


_PACKAGE_ROOT = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _fingerprint_of(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def source_fingerprint() -> str:
    """SHA-256 of the source of the dmmlib package in use (every ``.py`` file, names and bytes).

    Part of every cache key (:func:`config_key`), so editing any module of
    dmmlib invalidates every cached weight and result. It is computed once per
    process, when first needed: the code a process runs is the code it loaded.

    Returns
    -------
    str
        A 64-character hex digest.
    """
    return _fingerprint_of(_PACKAGE_ROOT)


def config_key(config: dict[str, Any]) -> str:
    """A stable SHA-256 hex digest of a configuration and of the dmmlib source.

    Parameters
    ----------
    config : dict
        JSON-able description of everything the entry depends on besides the
        code (sizes, seeds, data and model fingerprints).

    Returns
    -------
    str
        A 64-character hex digest; it changes when ``config`` changes and when
        any module of dmmlib changes (:func:`source_fingerprint`).
    """
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    keyed = {"config": _jsonable(config), "dmmlib_source": source_fingerprint()}
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def entry_path(key: str, name: str = "model", folder: Path | None = None) -> Path:
    """Where the entry for ``key`` lives: ``<folder>/<name>-<key[:16]>.pt``."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"key: expected a non-empty str (see config_key), got {key!r}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return (folder if folder is not None else cache_dir()) / f"{safe}-{key[:16]}.pt"


def save_entry(path: Path, key: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) atomically to ``path``.

    Concurrent writers of the same entry each write their own temporary file
    and atomically rename it into place, so the result is always one complete
    file.
    """
    if not isinstance(key, str):
        raise TypeError(f"key: expected a str, got {type(key).__name__}")
    if not isinstance(payload, dict):
        raise TypeError(f"payload: expected a dict, got {type(payload).__name__}")
    buf = io.BytesIO()
    torch.save({"key": key, "payload": payload}, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest().encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + digest + b"\n" + body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _remove_stale_temporaries(path)


#: A temporary file older than this (seconds) belongs to a writer that was killed.
STALE_TEMPORARY_SECONDS = 3600.0


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of ``path`` left by writers killed mid-write.

    Such files stay after a SIGKILL or a power loss; recent ones may belong to
    a concurrent writer and are left alone.
    """
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                tmp.unlink()
        except OSError:
            pass


def load_entry(path: Path, key: str) -> dict[str, Any] | None:
    """Load and verify an entry; ``None`` if missing or invalid (with a :class:`CacheWarning`)."""
    path = Path(path)
    if not path.is_file():
        return None
    problem: str | None = None
    try:
        raw = path.read_bytes()
        head = len(_MAGIC) + _DIGEST_LEN + 1
        if not raw.startswith(_MAGIC) or len(raw) < head:
            problem = "not a dmmlib cache file"
        else:
            digest = raw[len(_MAGIC) : len(_MAGIC) + _DIGEST_LEN]
            body = raw[head:]
            if hashlib.sha256(body).hexdigest().encode() != digest:
                problem = "checksum mismatch (truncated or corrupt)"
            else:
                obj = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
                if not isinstance(obj, dict) or obj.get("key") != key:
                    problem = "stored configuration key does not match"
                else:
                    return obj["payload"]
    except Exception as err:  # unpickling refused, I/O error, ...
        problem = f"cannot be loaded safely ({type(err).__name__}: {err})"
    warnings.warn(f"cache entry {path} ignored and will be rebuilt: {problem}",
                  CacheWarning, stacklevel=2)
    return None


def _load_weights(path: Path, key: str, module: torch.nn.Module) -> dict[str, Any] | None:
    """:func:`load_entry`, plus a check that the stored weights fit ``module``.

    An entry whose ``state_dict`` has other names, shapes or dtypes than the
    module's, or that lacks ``history``/``seconds``, is reported with a
    :class:`CacheWarning` and treated as missing (``None``), so a
    module is never half-loaded.
    """
    payload = load_entry(path, key)
    if payload is None:
        return None
    problem = None
    state = payload.get("state_dict") if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not isinstance(payload.get("history"), dict) \
            or not isinstance(payload.get("seconds"), (int, float)):
        problem = "entry lacks state_dict, history or seconds"
    else:
        own = module.state_dict()
        if set(state) != set(own):
            problem = "stored weights have other names than the module's"
        else:
            for k, v in own.items():
                s = state[k]
                if not isinstance(s, torch.Tensor) or s.shape != v.shape or s.dtype != v.dtype:
                    problem = f"stored weight {k!r} does not fit the module"
                    break
    if problem is not None:
        warnings.warn(f"cache entry {path} ignored and will be rebuilt: {problem}",
                      CacheWarning, stacklevel=3)
        return None
    return payload


def _save_or_warn(path: Path, key: str, payload: dict[str, Any]) -> bool:
    """:func:`save_entry`; an ``OSError`` becomes a :class:`CacheWarning`.

    The work already happened: a cache that cannot be written (disk full,
    read-only folder) must not throw the result away. Returns whether the
    entry was written.
    """
    try:
        save_entry(path, key, payload)
    except OSError as err:
        warnings.warn(f"cache entry {path} could not be written ({type(err).__name__}: "
                      f"{err}); the result is used but not cached", CacheWarning, stacklevel=3)
        return False
    return True


_ALLOWED_LEAVES = (torch.Tensor, str, int, float, bool, type(None))


def _check_storable(value: Any, where: str = "result") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: dict keys must be str or int, got {type(k).__name__}")
            _check_storable(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_storable(v, f"{where}[{i}]")
    elif not isinstance(value, _ALLOWED_LEAVES):
        raise TypeError(f"{where}: cannot be cached safely ({type(value).__name__}); "
                        "use tensors, numbers, strings, lists and dicts")


def module_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes, dtypes, bytes)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cached_result(name: str, config: dict[str, Any], compute: Any, *, cache: bool = True) -> Any:
    """Return ``compute()``, or the result an identical earlier call stored.

    For expensive experiment results (attack norms over a test set, geometry
    measured over training) that a chapter would otherwise recompute every
    time the book is built. ``config`` must describe *everything* the result
    depends on (use :func:`module_fingerprint` for models and
    ``dmmlib.train.tensor_fingerprint`` for data). The result may hold
    tensors, numbers, strings, lists and dicts (tuples come back as lists);
    it is stored like trained weights: atomically, checksummed, loaded with
    ``weights_only=True``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    if not callable(compute):
        raise TypeError(f"compute: expected a callable, got {type(compute).__name__}")
    key = config_key({"cached_result": name, **config})
    path = entry_path(key, f"result-{name}")
    if cache:
        payload = load_entry(path, key)
        if payload is not None:
            return payload["result"]
    result = compute()
    _check_storable(result)
    if cache:
        _save_or_warn(path, key, {"result": result})
    return result


def cached_training(
    module: torch.nn.Module,
    train: Callable[[], dict[str, Any]],
    config: dict[str, Any],
    *,
    name: str = "model",
    cache: bool = True,
) -> dict[str, Any]:
    """Run ``train()``, or load the weights an identical earlier run cached into ``module``.

    The one cached trainer behind :func:`dmmlib.train.train_cached`,
    :func:`dmmlib.manifold.fit_autoencoder_cached` and the experiments' own.
    The key hashes ``name``, the module's architecture and *initial* weights
    (:func:`module_fingerprint`), ``config`` and the dmmlib source
    (:func:`config_key`).

    A cache entry that is unreadable or does not fit ``module`` (other names,
    shapes or dtypes) is reported with a :class:`CacheWarning` and training
    runs again; if the new weights cannot be written, a :class:`CacheWarning`
    says so and the trained module is kept all the same.

    Parameters
    ----------
    module : torch.nn.Module
        The module ``train`` trains in place.
    train : callable
        ``train() -> history``: trains ``module`` and returns its history (a
        dict of lists of numbers).
    config : dict
        Everything else the weights depend on: the data's fingerprints
        (:func:`dmmlib.train.tensor_fingerprint`), the training arguments.
    name : str
        Names the entry's file and enters the key.
    cache : bool
        ``False`` always trains and stores nothing.

    Returns
    -------
    dict
        ``history``, ``seconds`` (training time of the run that produced the
        weights), ``cached`` (whether they were loaded) and ``path`` (the
        cache file, or ``None``).
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if not callable(train):
        raise TypeError(f"train: expected a callable, got {type(train).__name__}")
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    key = config_key({"cached_training": name, "architecture": repr(module),
                      "initial_weights": module_fingerprint(module), **config})
    path = entry_path(key, name) if cache else None
    if path is not None:
        payload = _load_weights(path, key, module)
        if payload is not None:
            module.load_state_dict(payload["state_dict"])
            return {"history": payload["history"], "seconds": payload["seconds"],
                    "cached": True, "path": path}
    start = time.perf_counter()
    history = train()
    seconds = time.perf_counter() - start
    if path is not None:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        _save_or_warn(path, key, {"state_dict": state, "history": history, "seconds": seconds})
    return {"history": history, "seconds": seconds, "cached": False, "path": path}
