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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .._validate import check_choice
from ..cache import cache_dir
from ..nulls import OUTCOMES, NullBand, decide
from ..profiles import get_profile

__all__ = ["KINDS", "Entry", "record", "load", "scoreboard_path", "clear", "Verdict",
           "record_verdict", "load_verdicts", "verdicts_path", "describe", "tally",
           "describe_tally"]


#: The groups a scoreboard row belongs to: a number a paper printed (its table or
#: figure named in ``source``), or a sanity check (an identity, a theorem's bound,
#: a closed form) that the code must reproduce but that is not evidence.
KINDS = ("published", "sanity check")


@dataclass(frozen=True)
class Entry:
    """One published result (or sanity check) and our measurement of it."""

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
    kind: str = "published"


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
    factor: float | None = None,
    criterion: str = "",
    note: str = "",
    kind: str = "published",
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
        tolerance against a numeric ``published``) or by ``factor`` (agree when
        ``published / factor <= ours <= published * factor``, for a positive
        ``published``).
    criterion: the rule used to decide agreement, in words (required when
        ``agree`` is given explicitly).
    note: how our setting differs, or why they disagree.
    kind: ``"published"`` for a number a paper printed (name the table or
        figure in ``source``), ``"sanity check"`` for an identity, a closed
        form or a theorem's bound the code must reproduce; the scoreboard
        shows the two groups apart and counts only the first as reproductions.
    """
    check_choice(kind, "kind", KINDS)
    ours = float(ours)
    if not math.isfinite(ours):
        raise ValueError(f"ours: must be finite, got {ours}")
    if agree is None:
        if (rel_tol is None) == (factor is None) or isinstance(published, str):
            raise ValueError("agree: give agree=True/False with a criterion, or a numeric "
                             "published value with exactly one of rel_tol and factor")
        ref = float(published)
        if rel_tol is not None:
            if rel_tol <= 0:
                raise ValueError(f"rel_tol: must be positive, got {rel_tol}")
            agree = abs(ours - ref) <= rel_tol * abs(ref)
            criterion = criterion or f"within {rel_tol:.0%} of the published value"
        else:
            assert factor is not None
            if not factor > 1:
                raise ValueError(f"factor: must be above 1, got {factor}")
            if not ref > 0:
                raise ValueError(f"published: a factor criterion needs a positive value, got {ref}")
            agree = ref / factor <= ours <= ref * factor
            criterion = criterion or (f"within a factor {factor:g} of the published value "
                                      f"([{ref / factor:.3g}, {ref * factor:.3g}])")
    elif not criterion:
        raise ValueError("criterion: say how agreement was decided when passing agree")
    name = profile if profile is not None else get_profile().name
    entry = Entry(key=key, chapter=chapter, quantity=quantity, ours=ours,
                  published=str(published), source=source, criterion=criterion,
                  agree=bool(agree), profile=name, note=note, recorded_at=time.time(),
                  kind=kind)
    _update(scoreboard_path(name), key, asdict(entry))
    return entry


def _update(path: Path, key: str, row: dict) -> None:
    """Set ``row`` under ``key`` in the JSON file ``path``: locked, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(".lock")
    with open(lock, "w") as lock_fh:
        try:
            import fcntl

            fcntl.flock(lock_fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: best effort
            pass
        data = _read(path)
        data[key] = row
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


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
    """Forget every record and verdict of a profile (a fresh build re-records them)."""
    for path in (scoreboard_path(profile), verdicts_path(profile)):
        if path.exists():
            path.unlink()


# --------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """A hypothesis tested against a null, with everything needed to recheck it.

    ``outcome`` is one of :data:`dmmlib.nulls.OUTCOMES`, decided by
    :func:`dmmlib.nulls.decide` from ``measured``, the null's band and the
    side the hypothesis predicts: a measurement inside the band is always
    ``"cannot distinguish"``.
    """

    key: str
    chapter: str
    hypothesis: str
    measured: float
    null_kind: str
    null_median: float
    null_low: float
    null_high: float
    null_level: float
    predicts: str
    rule: str
    outcome: str
    profile: str
    note: str
    recorded_at: float


def verdicts_path(profile: str | None = None) -> Path:
    """Where the verdicts of ``profile`` (default: the active one) are kept."""
    path = scoreboard_path(profile)
    return path.with_name(f"{path.stem}-verdicts.json")


def record_verdict(
    key: str,
    *,
    chapter: str,
    hypothesis: str,
    measured: float,
    null: NullBand,
    predicts: str,
    rule: str = "",
    note: str = "",
    profile: str | None = None,
) -> Verdict:
    """Test a measurement against a null and record the verdict for the scoreboard.

    Parameters
    ----------
    key : str
        A stable identifier; recording it again replaces the old verdict.
    chapter : str
        The chapter's label (``"chap-clinging"``).
    hypothesis : str
        What is tested, in words ("the boundary clings to the data subspace").
    measured : float
        The measurement.
    null : dmmlib.nulls.NullBand
        What the measure reads under the null (its kind, median and band).
    predicts : {"below", "above"}
        The side of the null the hypothesis predicts.
    rule : str
        The decision rule in words; by default it is written from the band.
    note : str
        What the test does not show, or how the setting differs.
    profile : str, optional
        Default: the active profile.

    Returns
    -------
    Verdict
    """
    outcome = decide(measured, null, predicts)
    if not rule:
        side = "below" if predicts == "below" else "above"
        rule = (f"supports if {side} the {null.level:.0%} band of the {null.kind} null "
                f"[{null.low:.3g}, {null.high:.3g}], contradicts if beyond it on the other "
                "side, cannot distinguish inside it")
    name = profile if profile is not None else get_profile().name
    verdict = Verdict(key=key, chapter=chapter, hypothesis=hypothesis, measured=float(measured),
                      null_kind=null.kind, null_median=null.median, null_low=null.low,
                      null_high=null.high, null_level=null.level, predicts=predicts, rule=rule,
                      outcome=outcome, profile=name, note=note, recorded_at=time.time())
    _update(verdicts_path(name), key, asdict(verdict))
    return verdict


def load_verdicts(profile: str | None = None) -> list[Verdict]:
    """All recorded verdicts of a profile, ordered by chapter then key."""
    rows = []
    for value in _read(verdicts_path(profile)).values():
        try:
            rows.append(Verdict(**value))
        except TypeError:
            continue  # an older format: the next run rewrites it
    return sorted(rows, key=lambda v: (v.chapter, v.key))


def describe(verdict: Verdict, digits: int = 2) -> str:
    """One Markdown sentence with a verdict's numbers: what a chapter prints beside its prose.

    For example ``"measured 0.21; random direction null: median 0.17, 90% band
    [0.046, 0.34]; outcome: **cannot distinguish**"``.
    """
    if not isinstance(verdict, Verdict):
        raise TypeError(f"verdict: expected a Verdict, got {type(verdict).__name__}")

    def f(v: float) -> str:
        return f"{v:.{digits}g}" if v != 0 else "0"

    return (f"measured {f(verdict.measured)}; {verdict.null_kind} null: median "
            f"{f(verdict.null_median)}, {verdict.null_level:.0%} band [{f(verdict.null_low)}, "
            f"{f(verdict.null_high)}]; outcome: **{verdict.outcome}**")


def tally(verdicts: Sequence[Verdict]) -> dict[str, int]:
    """How many of ``verdicts`` came out each way, for every outcome (zeros included)."""
    out = {o: 0 for o in OUTCOMES}
    for v in verdicts:
        if not isinstance(v, Verdict):
            raise TypeError(f"verdicts: expected Verdict items, got {type(v).__name__}")
        out[v.outcome] += 1
    return out


def describe_tally(verdicts: Sequence[Verdict]) -> str:
    """The tally in words, every outcome named.

    For example ``"2 support the hypothesis tested, 1 contradicts it and 3
    cannot distinguish it from the null"``.
    """
    c = tally(verdicts)
    verb = {"supports": ("supports", "support"), "contradicts": ("contradicts", "contradict")}
    return (f"{c['supports']} {verb['supports'][c['supports'] != 1]} the hypothesis tested, "
            f"{c['contradicts']} {verb['contradicts'][c['contradicts'] != 1]} it and "
            f"{c['cannot distinguish']} cannot distinguish it from the null")
