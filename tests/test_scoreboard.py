import json

import pytest

from dmmlib.book import scoreboard


def test_record_and_load_round_trip():
    scoreboard.record("a.x", chapter="chap-a", quantity="slope", ours=-0.52,
                      published=-0.5, source="Paper 2021", rel_tol=0.1, profile="ci")
    scoreboard.record("a.y", chapter="chap-a", quantity="flip rate", ours=0.97,
                      published="about 100%", source="Paper 2021", agree=True,
                      criterion="at least 90%", profile="ci")
    entries = scoreboard.load("ci")
    assert [e.key for e in entries] == ["a.x", "a.y"]
    assert entries[0].agree and "within 10%" in entries[0].criterion
    assert scoreboard.load("gpu") == []


def test_rel_tol_decides_disagreement_and_rerecord_replaces():
    scoreboard.record("b", chapter="c", quantity="q", ours=2.0, published=1.0,
                      source="s", rel_tol=0.5, profile="ci")
    assert not scoreboard.load("ci")[0].agree
    scoreboard.record("b", chapter="c", quantity="q", ours=1.2, published=1.0,
                      source="s", rel_tol=0.5, profile="ci")
    entries = scoreboard.load("ci")
    assert len(entries) == 1 and entries[0].agree and entries[0].ours == 1.2


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="criterion"):
        scoreboard.record("k", chapter="c", quantity="q", ours=1, published=1,
                          source="s", agree=True, profile="ci")
    with pytest.raises(ValueError, match="agree"):
        scoreboard.record("k", chapter="c", quantity="q", ours=1, published="many",
                          source="s", profile="ci")
    with pytest.raises(ValueError, match="finite"):
        scoreboard.record("k", chapter="c", quantity="q", ours=float("nan"),
                          published=1, source="s", rel_tol=0.1, profile="ci")
    with pytest.raises(ValueError, match="unknown profile"):
        scoreboard.scoreboard_path("huge")


def test_damaged_file_is_treated_as_empty():
    path = scoreboard.scoreboard_path("ci")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert scoreboard.load("ci") == []
    scoreboard.record("k", chapter="c", quantity="q", ours=1, published=1,
                      source="s", rel_tol=0.1, profile="ci")
    assert json.loads(path.read_text())["k"]["ours"] == 1.0
    scoreboard.clear("ci")
    assert scoreboard.load("ci") == []


def test_verdicts_are_decided_by_the_null_and_kept_per_profile():
    from dmmlib import nulls

    scoreboard.clear("ci")
    null = nulls.NullBand("random direction", 0.17, 0.05, 0.34, 0.9, 0)
    v = scoreboard.record_verdict("toy.cling", chapter="chap-clinging",
                                  hypothesis="the boundary clings", measured=0.02, null=null,
                                  predicts="below", profile="ci")
    assert v.outcome == "supports" and "0.05" in v.rule
    inside = scoreboard.record_verdict("toy.dimple", chapter="chap-clinging",
                                       hypothesis="dimples", measured=0.2, null=null,
                                       predicts="below", profile="ci")
    assert inside.outcome == "cannot distinguish"
    rows = scoreboard.load_verdicts("ci")
    assert [r.key for r in rows] == ["toy.cling", "toy.dimple"]
    import json
    stored = json.loads(scoreboard.verdicts_path("ci").read_text())
    for field in ("key", "chapter", "measured", "null_kind", "null_median", "null_low",
                  "null_high", "rule", "outcome"):
        assert field in stored["toy.cling"]
    assert scoreboard.load_verdicts("cpu") == []
    scoreboard.clear("ci")
    assert scoreboard.load_verdicts("ci") == [] and not scoreboard.verdicts_path("ci").exists()


def test_factor_criterion_is_symmetric_in_ratio():
    for ours, agree in ((0.5, True), (2.0, True), (0.49, False), (2.01, False), (0.0, False)):
        e = scoreboard.record("f", chapter="c", quantity="q", ours=ours, published=1.0,
                              source="s", factor=2.0, profile="ci")
        assert e.agree is agree, ours
    assert "factor 2" in e.criterion and "[0.5, 2]" in e.criterion
    with pytest.raises(ValueError, match="exactly one"):
        scoreboard.record("f", chapter="c", quantity="q", ours=1, published=1.0,
                          source="s", factor=2.0, rel_tol=0.1, profile="ci")
    with pytest.raises(ValueError, match="factor"):
        scoreboard.record("f", chapter="c", quantity="q", ours=1, published=1.0,
                          source="s", factor=1.0, profile="ci")
    with pytest.raises(ValueError, match="positive"):
        scoreboard.record("f", chapter="c", quantity="q", ours=1, published=-1.0,
                          source="s", factor=2.0, profile="ci")


def test_kind_separates_published_results_from_sanity_checks():
    scoreboard.record("p", chapter="c", quantity="q", ours=1.0, published=1.0,
                      source="Paper, Table 1", rel_tol=0.1, profile="ci")
    scoreboard.record("s", chapter="c", quantity="identity", ours=0.143, published=0.1429,
                      source="sqrt(16/784)", rel_tol=0.01, kind="sanity check", profile="ci")
    kinds = {e.key: e.kind for e in scoreboard.load("ci")}
    assert kinds == {"p": "published", "s": "sanity check"}
    with pytest.raises(ValueError, match="kind"):
        scoreboard.record("x", chapter="c", quantity="q", ours=1.0, published=1.0,
                          source="s", rel_tol=0.1, kind="theorem", profile="ci")


def test_describe_and_glue_outcome():
    from dmmlib import nulls
    from dmmlib.book import nb

    v = scoreboard.record_verdict("d", chapter="c", hypothesis="h", measured=0.01,
                                  null=nulls.on_fraction_null(50, 2), predicts="below",
                                  profile="ci")
    text = scoreboard.describe(v)
    assert "measured 0.01" in text and "**supports**" in text and "90% band" in text
    said = nb.glue_outcome("x", v.outcome, {"supports": "yes", "contradicts": "no",
                                            "cannot distinguish": "maybe"})
    assert said == "yes"
    with pytest.raises(ValueError, match="sentences"):
        nb.glue_outcome("x", "supports", {"supports": "yes"})
    with pytest.raises(ValueError, match="outcome"):
        nb.glue_outcome("x", "perhaps", {})


def test_tally_counts_every_outcome_and_describes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DMM_CACHE", str(tmp_path))
    from dmmlib import nulls
    from dmmlib.book import scoreboard as sb

    null = nulls.band([0.4, 0.5, 0.6], kind="s")
    vs = [sb.record_verdict(f"t.{i}", chapter="c", hypothesis="h", measured=m, null=null,
                            predicts="above") for i, m in enumerate((0.9, 0.95, 0.1, 0.5))]
    assert sb.tally(vs) == {"supports": 2, "contradicts": 1, "cannot distinguish": 1}
    assert sb.describe_tally(vs) == ("2 support the hypothesis tested, 1 contradicts it and "
                                     "1 cannot distinguish it from the null")
    assert sb.tally([]) == {"supports": 0, "contradicts": 0, "cannot distinguish": 0}
    assert sb.describe_tally(vs[:1]).startswith("1 supports the hypothesis tested, 0 contradict")
    with pytest.raises(TypeError, match="Verdict"):
        sb.tally(["supports"])


def test_explanation_table_compares_each_prediction_with_the_recorded_outcome(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("DMM_CACHE", str(tmp_path))
    from dmmlib import nulls
    from dmmlib.book import scoreboard as sb

    null = nulls.band([0.4, 0.5, 0.6], kind="s")
    high = sb.record_verdict("e.high", chapter="c", hypothesis="h", measured=0.9, null=null,
                             predicts="above")
    inside = sb.record_verdict("e.in", chapter="c", hypothesis="h", measured=0.5, null=null,
                               predicts="above")
    exps = [sb.Experiment("A", "e.high", {"X": "supports", "Y": "cannot distinguish"}),
            sb.Experiment("B", "e.in", {"X": "supports"}),
            sb.Experiment("C", "e.absent", {"Y": "contradicts"})]
    rows, counts = sb.explanation_table([high, inside], exps, ["X", "Y", "Z"])
    assert [r["measured"] for r in rows] == ["supports", "cannot distinguish", None]
    assert rows[0]["X"] == "consistent" and rows[0]["Y"] == "inconsistent"
    assert rows[0]["Z"] == "silent" and rows[1]["X"] == "inconsistent"
    assert rows[2]["Y"] == "not run"
    assert counts["X"] == {"consistent": 1, "inconsistent": 1, "silent": 0}
    assert counts["Y"] == {"consistent": 0, "inconsistent": 1, "silent": 1}
    # the same experiments with the other outcome flip the reading
    low = sb.record_verdict("e.high", chapter="c", hypothesis="h", measured=0.45, null=null,
                            predicts="above")
    rows2, _ = sb.explanation_table([low, inside], exps, ["X", "Y", "Z"])
    assert rows2[0]["X"] == "inconsistent" and rows2[0]["Y"] == "consistent"
    with pytest.raises(ValueError, match="unknown explanation"):
        sb.explanation_table([high], exps, ["X"])
    with pytest.raises(ValueError, match="twice"):
        sb.explanation_table([high], exps[:1] * 2, ["X", "Y"])
    with pytest.raises(ValueError, match="predicts"):
        sb.Experiment("D", "k", {"X": "maybe"})
    sep = sb.separations(exps, ["X", "Y", "Z"])
    assert sep[("X", "Y")] == ["A"] and sep[("X", "Z")] == [] and sep[("Y", "Z")] == []
    # a bound allows two outcomes: consistent with either, separating only from the third
    bound = sb.Experiment("E", "e.in", {"X": ("supports", "cannot distinguish"),
                                       "Y": "cannot distinguish", "Z": "contradicts"})
    rows3, _ = sb.explanation_table([inside], [bound], ["X", "Y", "Z"])
    assert (rows3[0]["X"], rows3[0]["Y"], rows3[0]["Z"]) == ("consistent", "consistent",
                                                             "inconsistent")
    sep3 = sb.separations([bound], ["X", "Y", "Z"])
    assert sep3[("X", "Y")] == [] and sep3[("X", "Z")] == ["E"] and sep3[("Y", "Z")] == ["E"]
    with pytest.raises(TypeError, match="tuple"):
        sb.Experiment("F", "k", {"X": ()})


def _verdicts(tmp_path, monkeypatch, measured):
    """Record one verdict per (key, measured, predicts) against the band [0.4, 0.6]."""
    monkeypatch.setenv("DMM_CACHE", str(tmp_path))
    from dmmlib import nulls
    from dmmlib.book import scoreboard as sb

    null = nulls.band([0.4, 0.5, 0.6], kind="s")
    return [sb.record_verdict(k, chapter="chap-c", hypothesis="h", measured=m, null=n or null,
                              predicts="above") for k, m, n in measured]


def test_one_number_tested_against_several_nulls_reads_one_way(tmp_path, monkeypatch):
    from dmmlib import nulls
    from dmmlib.book import scoreboard as sb

    low_null = nulls.band([0.0, 0.1, 0.2], kind="weak")
    vs = _verdicts(tmp_path, monkeypatch, [("m.strict", 0.3, None), ("m.weak", 0.3, low_null),
                                           ("other", 0.9, None), ("both", 0.9, low_null)])
    # 0.3 supports against the weak null and contradicts against the strict one
    assert [v.outcome for v in vs[:2]] == ["contradicts", "supports"]
    groups = sb.measurement_groups(vs)
    assert [[v.key for v in g] for g in groups] == [["m.strict", "m.weak"], ["other", "both"]]
    assert sb.one_reading(groups[0]) == "cannot distinguish"
    assert sb.one_reading(groups[1]) == "supports"
    once = sb.read_once(vs)
    assert [v.outcome for v in once] == ["cannot distinguish"] * 2 + ["supports"] * 2
    assert once[2] is vs[2] and [v.key for v in once] == [v.key for v in vs]
    # when the weak null agrees with the strict one, the number reads their outcome
    vs2 = _verdicts(tmp_path, monkeypatch, [("m.strict", 0.3, None), ("m.weak", 0.3, None)])
    assert [v.outcome for v in sb.read_once(vs2)] == ["contradicts", "contradicts"]
    with pytest.raises(ValueError, match="at least one"):
        sb.one_reading([])
    with pytest.raises(TypeError, match="Verdict"):
        sb.measurement_groups(["supports"])


def test_evidence_standing_and_sentences_follow_the_outcomes(tmp_path, monkeypatch):
    from dmmlib.book import scoreboard as sb

    exps = [sb.Experiment("A", "e.a", {"X": "supports", "Y": "contradicts"}),
            sb.Experiment("B", "e.b", {"X": "supports", "Y": "supports"}),
            sb.Experiment("C", "e.c", {"X": "supports"}),
            sb.Experiment("D", "e.d", {"Y": "supports"})]
    vs = _verdicts(tmp_path, monkeypatch, [("e.a", 0.9, None), ("e.b", 0.9, None),
                                           ("e.c", 0.5, None)])
    ev = sb.evidence(vs, exps, ["X", "Y", "Z"])
    keys = {n: {g: [r["key"] for r in rows] for g, rows in ev[n].items()} for n in ev}
    assert keys["X"] == {"supports": ["e.a", "e.b"], "contradicts": [], "cannot tell": ["e.c"],
                         "not run": []}
    assert keys["Y"] == {"supports": ["e.b"], "contradicts": ["e.a"], "cannot tell": [],
                         "not run": ["e.d"]}
    assert keys["Z"] == {g: [] for g in sb.EVIDENCE}
    a = ev["X"]["supports"][0]
    assert a["chapter"] == "chap-c" and a["against"] == ("Y",) and a["also_fits"] == ()
    assert ev["Y"]["not run"][0]["chapter"] is None
    assert [sb.standing(ev[n]) for n in "XYZ"] == ["survives", "mixed", "untested"]
    x = sb.conclusion("X", ev["X"])
    assert "No decided test" in x and "against a rival's prediction (Y)" in x
    assert "1 further test could not tell" in x
    assert sb.conclusion("Z", ev["Z"]) == "No experiment of the book speaks to Z."
    y = sb.conclusion("Y", ev["Y"])
    assert "split on Y" in y and "did not run" in y
    assert "Found what it predicts: B. Went against it: A." in y
    assert sb.closing({n: sb.standing(ev[n]) for n in "XYZ"}) == (
        "*X* survives every decided test it speaks to; the tests split on *Y*; no test of "
        "this build decided anything about *Z*.")
    # flipping experiment A flips X's row, its standing and both sentences
    vs_flip = _verdicts(tmp_path, monkeypatch, [("e.a", 0.1, None), ("e.b", 0.9, None),
                                                ("e.c", 0.5, None)])
    ev2 = sb.evidence(vs_flip, exps, ["X", "Y", "Z"])
    assert [r["key"] for r in ev2["X"]["contradicts"]] == ["e.a"]
    assert sb.standing(ev2["X"]) == "mixed" and sb.standing(ev2["Y"]) == "survives"
    assert "split on X" in sb.conclusion("X", ev2["X"])
    assert sb.closing({n: sb.standing(ev2[n]) for n in "XY"}) == (
        "*Y* survives every decided test it speaks to; the tests split on *X*.")
    # only contradictions; only undecided; none at all
    vs3 = _verdicts(tmp_path, monkeypatch, [("e.a", 0.1, None), ("e.b", 0.1, None)])
    ev3 = sb.evidence(vs3, exps[:2], ["X", "Y"])
    assert sb.standing(ev3["X"]) == "contradicted"
    assert sb.conclusion("X", ev3["X"]).startswith("Every decided test of X goes against it")
    assert sb.closing({"X": "contradicted"}) == (
        "No explanation survives every decided test it speaks to; every decided test goes "
        "against *X*.")
    vs4 = _verdicts(tmp_path, monkeypatch, [("e.c", 0.5, None)])
    ev4 = sb.evidence(vs4, exps[2:3], ["X"])
    assert sb.standing(ev4["X"]) == "untested"
    assert sb.conclusion("X", ev4["X"]).startswith("No test of X that ran could tell")
    ev5 = sb.evidence([], exps[2:3], ["X"])
    assert sb.conclusion("X", ev5["X"]) == (
        "None of the experiments that speak to X ran in this build.")
    with pytest.raises(ValueError, match="standings"):
        sb.closing({"X": "won"})
    with pytest.raises(ValueError, match="at least one"):
        sb.closing({})
    with pytest.raises(ValueError, match="missing"):
        sb.standing({"supports": []})

