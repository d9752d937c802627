"""The reproduction scoreboard: published results beside this book's measurements.

A chapter that reproduces a published number calls :func:`record` with its
own measurement, the published value, the source and the criterion for
agreement. Records are kept per profile in a small JSON file next to the
weight cache (written atomically under a file lock), and the scoreboard
chapter, which runs last, reads them with :func:`load`. Nothing on the
scoreboard is typed by hand: every row comes from a chapter's run.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..cache import cache_dir
from ..profiles import get_profile

__all__ = ["Entry", "record", "load", "scoreboard_path", "clear"]


@dataclass(frozen=True)
class Entry:
    """One published result and our measurement of it."""

    key: str
    chapter: str
    quantity: str
    ours: float
    published: str
    source: str
    criterion: str
    agree: bool
    profile: str
    note: str
    recorded_at: float


def scoreboard_path(profile: str | None = None) -> Path:
    """Where the records of ``profile`` (default: the active one) are kept."""
    name = profile if profile is not None else get_profile().name
    get_profile(name)  # validates the name
    return cache_dir().parent / "scoreboard" / f"{name}.json"


def _read(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged file is rebuilt by the next run of the chapters
    return data if isinstance(data, dict) else {}


def record(
    key: str,
    *,
    chapter: str,
    quantity: str,
    ours: float,
    published: float | str,
    source: str,
    agree: bool | None = None,
    rel_tol: float | None = None,
    criterion: str = "",
    note: str = "",
    profile: str | None = None,
) -> Entry:
    """Record our measurement of a published result for the scoreboard.

    Parameters
    ----------
    key: a stable identifier (``"szegedy.fc100.distortion"``); recording the
        same key again replaces the old row.
    chapter: the chapter's label (``"chap-intriguing"``) for a cross-reference.
    quantity: what was measured, in words.
    ours: our number.
    published: the published number, or a short statement ("about 100%").
    source: who published it (``"Szegedy et al. 2013, Table 1"``).
    agree: whether they agree; if ``None``, decided by ``rel_tol`` (relative
        tolerance against a numeric ``published``).
    criterion: the rule used to decide agreement, in words (required when
        ``agree`` is given explicitly).
    note: how our setting differs, or why they disagree.
    """
    ours = float(ours)
    if not math.isfinite(ours):
        raise ValueError(f"ours: must be finite, got {ours}")
    if agree is None:
        if rel_tol is None or isinstance(published, str):
            raise ValueError("agree: give agree=True/False with a criterion, or a numeric "
                             "published value with rel_tol")
        if rel_tol <= 0:
            raise ValueError(f"rel_tol: must be positive, got {rel_tol}")
        agree = abs(ours - float(published)) <= rel_tol * abs(float(published))
        criterion = criterion or f"within {rel_tol:.0%} of the published value"
    elif not criterion:
        raise ValueError("criterion: say how agreement was decided when passing agree")
    name = profile if profile is not None else get_profile().name
    entry = Entry(key=key, chapter=chapter, quantity=quantity, ours=ours,
                  published=str(published), source=source, criterion=criterion,
                  agree=bool(agree), profile=name, note=note, recorded_at=time.time())
    path = scoreboard_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(".lock")
    with open(lock, "w") as lock_fh:
        try:
            import fcntl

            fcntl.flock(lock_fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: best effort
            pass
        data = _read(path)
        data[key] = asdict(entry)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return entry


def load(profile: str | None = None) -> list[Entry]:
    """All recorded entries of a profile, ordered by chapter then key."""
    data = _read(scoreboard_path(profile))
    entries = []
    for value in data.values():
        try:
            entries.append(Entry(**value))
        except TypeError:
            continue  # a row from an older format: the next run rewrites it
    return sorted(entries, key=lambda e: (e.chapter, e.key))


def clear(profile: str | None = None) -> None:
    """Forget every record of a profile (a fresh build re-records them)."""
    path = scoreboard_path(profile)
    if path.exists():
        path.unlink()
