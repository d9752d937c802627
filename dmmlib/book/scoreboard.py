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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .._validate import check_choice
from ..cache import cache_dir
from ..nulls import OUTCOMES, NullBand, decide
from ..profiles import get_profile

__all__ = ["KINDS", "Entry", "record", "load", "scoreboard_path", "clear", "Verdict",
           "record_verdict", "load_verdicts", "verdicts_path", "describe", "tally",
           "describe_tally", "Experiment", "explanation_table", "separations",
           "EXPLANATIONS", "HEAD_TO_HEAD", "measurement_groups", "one_reading", "read_once",
           "EVIDENCE", "STANDINGS", "evidence", "standing", "conclusion", "closing"]


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


# --------------------------------------------------------------------------- one reading
def measurement_groups(verdicts: Sequence[Verdict]) -> list[list[Verdict]]:
    """Group verdicts that test one measurement against several nulls.

    Verdicts of the same chapter and profile whose ``measured`` values are
    equal and that predict the same side are one measurement read against
    different nulls (a gradient's on-manifold fraction against random,
    support-matched and shuffled directions, say): they are one piece of
    evidence, not several.

    Parameters
    ----------
    verdicts : sequence of Verdict

    Returns
    -------
    list of list of Verdict
        The groups, in the order their first verdict appears; a verdict
        tested against one null only is a group of one.
    """
    groups: dict[tuple, list[Verdict]] = {}
    for v in verdicts:
        if not isinstance(v, Verdict):
            raise TypeError(f"verdicts: expected Verdict items, got {type(v).__name__}")
        groups.setdefault((v.chapter, v.profile, float(v.measured), v.predicts), []).append(v)
    return list(groups.values())


def one_reading(group: Sequence[Verdict]) -> str:
    """The one outcome a measurement tested against several nulls is read as.

    The rule, fixed before any run: a measurement decides only when every
    null it was tested against decides the same way. When its nulls agree,
    the reading is their outcome; when they disagree (it beats one null and
    falls short of another), it is ``"cannot distinguish"``: which way it
    reads would depend on the null chosen, so it is no evidence either way.

    Parameters
    ----------
    group : sequence of Verdict
        One group of :func:`measurement_groups` (at least one verdict).

    Returns
    -------
    str
        One of :data:`dmmlib.nulls.OUTCOMES`.
    """
    outcomes = set()
    for v in group:
        if not isinstance(v, Verdict):
            raise TypeError(f"group: expected Verdict items, got {type(v).__name__}")
        outcomes.add(v.outcome)
    if not outcomes:
        raise ValueError("group: expected at least one verdict")
    return outcomes.pop() if len(outcomes) == 1 else "cannot distinguish"


def read_once(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Every verdict with its outcome replaced by its measurement's :func:`one_reading`.

    A number tested against several nulls then reads one way wherever it is
    used; a verdict whose nulls disagree reads ``"cannot distinguish"``.
    The order of ``verdicts`` is kept.
    """
    reading = {}
    for group in measurement_groups(verdicts):
        outcome = one_reading(group)
        for v in group:
            reading[id(v)] = outcome
    return [v if v.outcome == reading[id(v)] else replace(v, outcome=reading[id(v)])
            for v in verdicts]


# --------------------------------------------------------------------------- synthesis
#: How the closing chapter sorts the experiments an explanation speaks to: the
#: run found what it predicts (a decided outcome, not a measurement inside its
#: null's band), found what it rules out, could not tell (the outcome was
#: "cannot distinguish": inside the null's band, or read differently against
#: different nulls; no evidence either way, whatever was predicted), or the
#: experiment was not run in this build.
EVIDENCE = ("supports", "contradicts", "cannot tell", "not run")

#: Where an explanation stands after the tests: none of its decided tests goes
#: against it and at least one finds what it predicts; its decided tests split;
#: every decided test goes against it; no decided test speaks to it.
STANDINGS = ("survives", "mixed", "contradicted", "untested")


def evidence(verdicts: Sequence[Verdict], experiments: Sequence[Experiment],
             explanations: Sequence[str]) -> dict[str, dict[str, list[dict]]]:
    """Sort, per explanation, the experiments it speaks to by what they found.

    Parameters
    ----------
    verdicts, experiments, explanations
        As for :func:`explanation_table` (pass :func:`read_once` of the
        verdicts so that a number reads one way).

    Returns
    -------
    dict
        ``{explanation: {group: [row, ...]}}`` with every group of
        :data:`EVIDENCE` present (possibly empty). A row is a dict with
        ``experiment``, ``key``, ``chapter`` (the label of the chapter that
        recorded the verdict, ``None`` when it was not run), ``outcome``,
        ``predicted`` (the outcomes the explanation allows), ``fits`` (the
        column of :func:`explanation_table`: ``"consistent"``,
        ``"inconsistent"`` or ``"not run"``), ``also_fits`` (the other
        explanations consistent with the outcome) and ``against`` (the
        other explanations inconsistent with it). Experiments the
        explanation says nothing about are left out.
    """
    rows, _ = explanation_table(verdicts, experiments, explanations)
    chapter = {v.key: v.chapter for v in verdicts}
    allows = {e.key: e for e in experiments}
    names = list(explanations)
    out: dict[str, dict[str, list[dict]]] = {n: {g: [] for g in EVIDENCE} for n in names}
    for r in rows:
        for n in names:
            if n not in allows[r["key"]].predicts:  # silent (also when not run)
                continue
            others = [m for m in names if m != n]
            item = {"experiment": r["experiment"], "key": r["key"],
                    "chapter": chapter.get(r["key"]), "outcome": r["measured"],
                    "predicted": allows[r["key"]].allows(n), "fits": r[n],
                    "also_fits": tuple(m for m in others if r[m] == "consistent"),
                    "against": tuple(m for m in others if r[m] == "inconsistent")}
            if r[n] == "not run":
                group = "not run"
            elif r["measured"] == "cannot distinguish":
                group = "cannot tell"
            else:
                group = "supports" if r[n] == "consistent" else "contradicts"
            out[n][group].append(item)
    return out


def standing(groups: dict[str, list[dict]]) -> str:
    """Where an explanation stands, from its :func:`evidence` groups.

    Returns
    -------
    str
        One of :data:`STANDINGS`: ``"survives"`` (some test supports it and
        none contradicts it), ``"mixed"`` (both), ``"contradicted"`` (some
        test contradicts it and none supports it) or ``"untested"`` (none of
        its tests decided anything).
    """
    for g in ("supports", "contradicts"):
        if g not in groups:
            raise ValueError(f"groups: expected the groups of evidence(), missing {g!r}")
    s, c = len(groups["supports"]), len(groups["contradicts"])
    return ("mixed" if s and c else "survives" if s else "contradicted" if c else "untested")


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _names(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def conclusion(name: str, groups: dict[str, list[dict]]) -> str:
    """The sentence the closing chapter writes about one explanation, chosen by its tests.

    Parameters
    ----------
    name : str
        The explanation.
    groups : dict
        Its :func:`evidence` groups.

    Returns
    -------
    str
        One Markdown sentence (or two) that states only what the recorded
        outcomes give: whether the explanation survives, is split or is
        contradicted, and whether the tests that support it also count
        against a rival (only those single it out).
    """
    where = standing(groups)
    s, c = groups["supports"], groups["contradicts"]
    t, nr = groups["cannot tell"], groups["not run"]
    rivals = sorted({r for row in s for r in row["against"]})
    if where == "survives":
        text = (f"No decided test of this build goes against {name}, and "
                f"{_n(len(s), 'test finds', 'tests find')} what it predicts. ")
        text += (f"Of these, {_n(sum(bool(row['against']) for row in s), 'goes', 'go')} "
                 f"against a rival's prediction ({_names(rivals)}): there the run prefers "
                 f"{name}." if rivals else
                 "None of them goes against any rival's prediction, so none singles it out: "
                 "it survives by agreeing with what others predict too.")
    elif where == "mixed":
        text = (f"The decided tests split on {name}: {_n(len(s), 'finds', 'find')} what it "
                f"predicts and {_n(len(c), 'goes', 'go')} against it, so the book can credit "
                "the parts those tests measure, not the explanation as a whole. Found what it "
                f"predicts: {'; '.join(row['experiment'] for row in s)}. Went against it: "
                f"{'; '.join(row['experiment'] for row in c)}.")
    elif where == "contradicted":
        text = (f"Every decided test of {name} goes against it "
                f"({_n(len(c), 'test', 'tests')}): in the form tested here it does not survive "
                "this build.")
    elif t:
        text = (f"No test of {name} that ran could tell either way "
                f"({_n(len(t), 'test', 'tests')}): the book can say nothing about it.")
    elif nr:
        text = f"None of the experiments that speak to {name} ran in this build."
    else:
        text = f"No experiment of the book speaks to {name}."
    if where != "untested" and t:
        text += f" {_n(len(t), 'further test', 'further tests')} could not tell either way."
    if nr and (where != "untested" or t):
        text += f" {_n(len(nr), 'experiment', 'experiments')} that speak to it did not run."
    return text


def closing(standings: dict[str, str]) -> str:
    """The closing chapter's answer in one paragraph: which explanations survive the tests.

    Parameters
    ----------
    standings : dict
        ``{explanation: standing}``, each one of :data:`STANDINGS` (see
        :func:`standing`), in the order to name them.

    Returns
    -------
    str
        Markdown naming the explanations in each standing, chosen by them.
    """
    by: dict[str, list[str]] = {s: [] for s in STANDINGS}
    for name, where in standings.items():
        check_choice(where, f"standings[{name!r}]", STANDINGS)
        by[where].append(f"*{name}*")
    if not standings:
        raise ValueError("standings: expected at least one explanation")
    parts = []
    if by["survives"]:
        parts.append(f"{_names(by['survives'])} "
                     f"{'survives' if len(by['survives']) == 1 else 'survive'} every decided "
                     "test "
                     f"{'it speaks' if len(by['survives']) == 1 else 'they speak'} to")
    else:
        parts.append("no explanation survives every decided test it speaks to")
    if by["mixed"]:
        parts.append(f"the tests split on {_names(by['mixed'])}")
    if by["contradicted"]:
        parts.append(f"every decided test goes against {_names(by['contradicted'])}")
    if by["untested"]:
        parts.append(f"no test of this build decided anything about {_names(by['untested'])}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
