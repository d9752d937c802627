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
           "describe_tally", "Experiment", "explanation_table", "separations",
           "EXPLANATIONS", "HEAD_TO_HEAD"]


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


# --------------------------------------------------------------------------- explanations
@dataclass(frozen=True)
class Experiment:
    """One independent experiment and what each explanation predicts of its verdict.

    ``key`` names the recorded :class:`Verdict` that decides it (one
    measurement: tests of the same measurement against other nulls are not
    separate experiments and are left out). ``predicts`` maps an explanation's
    name to the outcome of that verdict it expects (one of
    :data:`dmmlib.nulls.OUTCOMES`), or to a tuple of the outcomes it allows
    (a bound allows "closer" and "at the bound"); an explanation that says
    nothing about the experiment is absent.
    """

    experiment: str
    key: str
    predicts: dict[str, str | tuple[str, ...]]
    why: str = ""

    def allows(self, name: str) -> tuple[str, ...]:
        """The outcomes explanation ``name`` allows (empty when it says nothing)."""
        p = self.predicts.get(name, ())
        return (p,) if isinstance(p, str) else tuple(p)

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, str) or not self.experiment:
            raise TypeError(f"experiment: expected a non-empty str, got {self.experiment!r}")
        if not isinstance(self.key, str) or not self.key:
            raise TypeError(f"key: expected a non-empty str, got {self.key!r}")
        if not isinstance(self.predicts, dict):
            raise TypeError(f"predicts: expected a dict, got {type(self.predicts).__name__}")
        for name, outcome in self.predicts.items():
            allowed = (outcome,) if isinstance(outcome, str) else outcome
            if not isinstance(allowed, tuple) or not allowed:
                raise TypeError(f"predicts[{name!r}]: expected an outcome or a tuple of them, "
                                f"got {outcome!r}")
            for o in allowed:
                check_choice(o, f"predicts[{name!r}]", OUTCOMES)


def explanation_table(verdicts: Sequence[Verdict], experiments: Sequence[Experiment],
                      explanations: Sequence[str]) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """Set every explanation against the recorded outcome of every experiment.

    Parameters
    ----------
    verdicts : sequence of Verdict
        The recorded tests (:func:`load_verdicts`).
    experiments : sequence of Experiment
        The experiments, each counted once, with each explanation's prediction.
    explanations : sequence of str
        The explanations, in column order; every name used in an experiment's
        ``predicts`` must be among them.

    Returns
    -------
    rows : list of dict
        One per experiment: ``experiment``, ``key``, ``measured`` (the outcome,
        or ``None`` when the verdict was not recorded in this build) and, per
        explanation, ``"consistent"``, ``"inconsistent"``, ``"silent"`` (no
        prediction) or ``"not run"``.
    counts : dict
        Per explanation, how many experiments were ``consistent``,
        ``inconsistent`` and ``silent`` (experiments not run are not counted).
    """
    names = list(explanations)
    if len(set(names)) != len(names) or not names:
        raise ValueError("explanations: expected distinct names, at least one")
    by_key: dict[str, Verdict] = {}
    for verdict in verdicts:
        if not isinstance(verdict, Verdict):
            raise TypeError(f"verdicts: expected Verdict items, got {type(verdict).__name__}")
        by_key[verdict.key] = verdict
    seen = set()
    rows, counts = [], {n: {"consistent": 0, "inconsistent": 0, "silent": 0} for n in names}
    for e in experiments:
        if not isinstance(e, Experiment):
            raise TypeError(f"experiments: expected Experiment items, got {type(e).__name__}")
        if e.key in seen:
            raise ValueError(f"experiments: the verdict {e.key!r} is used twice; an experiment "
                             "is counted once")
        seen.add(e.key)
        unknown = set(e.predicts) - set(names)
        if unknown:
            raise ValueError(f"experiments: {e.experiment!r} predicts for unknown explanation(s) "
                             f"{sorted(unknown)}")
        v = by_key.get(e.key)
        row: dict = {"experiment": e.experiment, "key": e.key,
                     "measured": v.outcome if v is not None else None}
        for n in names:
            if v is None:
                row[n] = "not run"
                continue
            if n not in e.predicts:
                row[n] = "silent"
            else:
                row[n] = "consistent" if v.outcome in e.allows(n) else "inconsistent"
            counts[n][row[n]] += 1
        rows.append(row)
    return rows, counts


def separations(experiments: Sequence[Experiment], explanations: Sequence[str]
                ) -> dict[tuple[str, str], list[str]]:
    """Which experiments can tell each pair of explanations apart.

    An experiment separates two explanations when both predict its outcome and
    no outcome is allowed by both, whatever the run gives. Every pair appears,
    with an empty list when no experiment separates it.
    """
    names = list(explanations)
    out: dict[tuple[str, str], list[str]] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            out[(a, b)] = [e.experiment for e in experiments
                           if a in e.predicts and b in e.predicts
                           and not set(e.allows(a)) & set(e.allows(b))]
    return out


#: The explanations the book sets against each other, in column order.
EXPLANATIONS = ("pockets", "linearity", "boundary tilting", "concentration",
                "non-robust features", "stretchy features", "DMM")

#: The book's independent experiments, one recorded verdict each, and what each
#: explanation predicts of that verdict's outcome (absent: it says nothing).
#: Sources: pockets, Szegedy et al. 2013 (dense, low-probability pockets that random
#: noise misses); linearity, Goodfellow et al. 2015 (locally linear networks; transfer
#: through similar weights); boundary tilting, Tanay and Griffin 2016 (a boundary
#: close to the data and tilted against it, the perturbation off the data, no local
#: bends); concentration, Fawzi et al. 2018, Shafahi et al. 2019, Gilmer et al. 2018
#: (distances set by the error set's measure); non-robust features, Ilyas et al. 2019
#: (predictive features of the data that both networks learn); stretchy features,
#: Kilcher's reading (adversarial directions along features of the data, so on the
#: manifold); the DMM, Shamir et al. 2021 (off-manifold normals, dimples at the
#: training points, adversarial training deepens them).
HEAD_TO_HEAD = (
    Experiment("random signs of the same L-infinity size fool less than the search",
               "five.random_signs",
               {"pockets": "supports", "linearity": "supports", "DMM": "supports"},
               "pockets are of low probability; a sign pattern uncorrelated with w barely "
               "moves a linear score; a random step off a dimple rarely crosses it"),
    Experiment("a trained network is farther from linear along its attack than an untrained one",
               "critics.linearity.adversarial", {"linearity": "cannot distinguish"},
               "Goodfellow et al.: trained networks behave linearly, like random ones"),
    Experiment("training without weight decay tilts a linear boundary against the data",
               "rivals.tilt.off_over_on", {"boundary tilting": "supports"},
               "Tanay and Griffin: the tilt is the component training leaves unchecked"),
    Experiment("minimal perturbations are smaller, relative to the class distance, than a "
               "tilted plane's", "explains.tiny.ratio",
               {"boundary tilting": "cannot distinguish", "DMM": "supports"},
               "a tilted plane is the tilting account; dimples add closeness at the points"),
    Experiment("the boundary bends at the training points (dimples)", "rivals.tilt.locality",
               {"linearity": "cannot distinguish", "boundary tilting": "cannot distinguish",
                "DMM": "supports"},
               "a linear or tilted boundary has no local bends"),
    Experiment("on a synthetic subspace the boundary clings to the data",
               "dmm.hd.clinging.alpha4.random", {"DMM": "supports"},
               "the clinging phase"),
    Experiment("on a synthetic subspace minimal perturbations point off the manifold",
               "explains.onfrac.flat_subspace.a4.random",
               {"boundary tilting": "supports", "DMM": "supports"},
               "both put the shortest way to the boundary off the data"),
    Experiment("on images PGD perturbations lie off the tangent space more than "
               "support-matched noise", "natural.onfrac.pgd.support",
               {"boundary tilting": "supports", "stretchy features": "contradicts",
                "DMM": "supports"},
               "stretchy features put adversarial directions along the data"),
    Experiment("on-manifold adversarial images read as their new class to a robust network",
               "natural.judge.on_vs_off", {"DMM": "supports"},
               "the DMM: on-manifold perturbations change what the image shows"),
    Experiment("adversarial training moves the boundary off the manifold more than along it",
               "explains.advtrain.gain_ratio", {"DMM": "supports"},
               "the DMM: adversarial training deepens the dimples"),
    Experiment("two networks' adversarial examples transfer (beyond noise of equal length)",
               "critics.shared.transfer",
               {"linearity": "supports", "non-robust features": "supports",
                "stretchy features": "supports"},
               "similar weights (Goodfellow); shared features of the data (Ilyas, Kilcher)"),
    Experiment("training on mislabelled adversarial images beats the controls",
               "critics.mislabelled.controls",
               {"non-robust features": "supports", "stretchy features": "supports",
                "DMM": "supports"},
               "each of the three gives its own account of the result"),
    Experiment("adversarial examples are closer than the error rate in Gaussian noise implies",
               "rivals.concentration.halfspace",
               {"linearity": "cannot distinguish",
                "concentration": ("supports", "cannot distinguish")},
               "a flat boundary is the half-space of its measure; no set of that measure is "
               "farther than the half-space"),
    Experiment("on the spheres, errors lie closer than concentration bounds imply",
               "rivals.spheres.distance", {"concentration": "cannot distinguish"},
               "Gilmer et al.: trained networks' error sets approach the bound"),
)
