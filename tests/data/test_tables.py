"""Secondary-outcome and descriptive (the example study's Appendix B) count tables.

First on small hand-made frames whose counts can be checked by eye, then on the embedded
synthetic default data, whose counts must equal the figures published by Bekaert, Olphin,
Massie & Norris (2025), *What Works Series: Operation Paramount*, Thames Valley Violence
Prevention Partnership ("the report"); each expected number below is typed from the report,
with the figure it comes from.
"""

from __future__ import annotations

import polars as pl
import pytest

from natexp.data.tables import (
    descriptive_counts,
    reached,
    secondary_outcomes,
    secondary_table,
)
from natexp.study import Study
from tests.conftest import EXAMPLE_STUDY


def _table(key):
    """The example study's secondary table ``key`` as a function of a cohort."""
    return lambda cohort: secondary_table(cohort, EXAMPLE_STUDY.secondary_spec(key),
                                          EXAMPLE_STUDY)


referral_response, reasons, interview, contact, uptake = map(
    _table, ("referral_response", "reasons", "interview", "contact", "uptake"))


def appendix_b_counts(families, children):
    return descriptive_counts(families, children, EXAMPLE_STUDY.descriptive)

# ----------------------------------------------------------------------------- hand-made data


@pytest.fixture
def hand():
    """Six families; F6 is not in the cohort and F5 was not reached, so neither counts."""
    return pl.DataFrame(
        {
            "family_id": ["F1", "F2", "F3", "F4", "F5", "F6"],
            "arm": ["treatment", "treatment", "treatment", "control", "control", None],
            "followup_reached": [True, True, True, True, False, True],
            "parent_sex": ["M", "M", "F", "M", "M", "M"],
            "chas_support": [True, False, True, True, True, True],
            "chas_route": ["paramount", None, None, "school", "school", "school"],
            "has_contact": [False, False, True, None, False, False],
            "contact_view": ["positive", "negative", "positive", None, "positive", "positive"],
            "wants_contact": [False, True, None, False, False, False],
            "court_order": [True, False, False, False, True, True],
            "referral_response": ["accepted", "declined", "re_referral", None, "accepted",
                                  "accepted"],
            "reason_child": [True, None, False, None, True, True],
            "reason_self": [False, None, True, None, False, False],
            "reason_legal": [True, None, None, None, False, False],
            "interview_consent": [True, False, True, None, True, True],
            "interview_completed": [True, False, False, None, True, True],
        }
    )


def test_reached_keeps_cohort_families_reached_by_the_call(hand):
    assert reached(hand)["family_id"].to_list() == ["F1", "F2", "F3", "F4"]


def test_referral_response_by_eye(hand):
    d, frame = referral_response(hand)
    assert d["treatment"] == {"accepted": 1, "re_referral": 1, "declined": 1,
                              "already_supported": 0, "not_applicable": 0, "missing": 0, "n": 3}
    assert d["control"]["missing"] == 1 and d["control"]["n"] == 1
    assert d["total"]["accepted"] == 1 and d["total"]["n"] == 4
    assert d["percent"]["accepted"] == 25.0 and d["percent"]["missing"] == 25.0
    assert frame.filter(pl.col("response") == "declined").row(0, named=True)["total"] == 1
    assert frame["total"].sum() == 4


def test_reasons_by_eye(hand):
    d, frame = reasons(hand)
    assert d["n"] == 2  # F1 and F3 gave reasons
    assert d["child"] == {"yes": 1, "no": 1, "missing": 0, "percent_yes": 50.0}
    assert d["legal"] == {"yes": 1, "no": 0, "missing": 1, "percent_yes": 50.0}
    assert frame["reason"].to_list() == ["child", "self", "legal"]


def test_interview_by_eye(hand):
    d, frame = interview(hand)
    assert d["treatment"] == {"reached": 3, "agreed": 2, "not_agreed": 1, "consent_missing": 0,
                              "completed": 1}
    assert d["control"] == {"reached": 1, "agreed": 0, "not_agreed": 0, "consent_missing": 1,
                            "completed": 0}
    assert frame.filter(pl.col("measure") == "agreed")["total"].item() == 2


def test_contact_by_eye(hand):
    d, frame = contact(hand)
    t = d["total"]
    assert (t["n"], t["no_contact_positive"], t["no_contact_negative"], t["contact_positive"],
            t["contact_negative"], t["cell_missing"]) == (4, 1, 1, 1, 0, 1)
    assert t["wants_contact"] == {"yes": 1, "no": 2, "missing": 1}
    assert t["court_order"] == {"yes": 1, "no": 3, "missing": 0}
    assert t["parent_sex"] == {"M": 3, "F": 1}
    assert d["control"]["cell_missing"] == 1
    got = frame.filter((pl.col("group") == "total") & (pl.col("measure") == "contact_view"))
    assert got["n"].sum() == 4


def test_uptake_by_eye(hand):
    d, frame = uptake(hand)
    assert d["treatment"]["yes"] == 2 and d["treatment"]["n"] == 3
    assert d["treatment"]["percent"] == pytest.approx(200 / 3)
    assert d["treatment"]["route"] == {"paramount": 1, "school": 0, "other": 0, "missing": 1}
    assert d["control"]["route"]["school"] == 1
    assert frame.filter(pl.col("group") == "total")["route_paramount"].item() == 1


def test_empty_arm_gives_none_percentages():
    df = pl.DataFrame({"arm": ["treatment"], "followup_reached": [True],
                       "chas_support": [False], "chas_route": [None]},
                      schema={"arm": pl.String, "followup_reached": pl.Boolean,
                              "chas_support": pl.Boolean, "chas_route": pl.String})
    d, _ = uptake(df)
    assert d["control"]["n"] == 0 and d["control"]["percent"] is None


def test_appendix_b_counts_by_eye():
    fam = pl.DataFrame({"family_id": ["A", "B"], "parent_sex": ["F", "M"]})
    chi = pl.DataFrame({"family_id": ["A", "A", "B"],
                        "carer": ["grandparent", "father", "mother"],
                        "cwcf": [True, False, False], "sgo": [False, True, False]})
    t = appendix_b_counts(fam, chi)
    f = {r["question"]: (r["yes"], r["no"], r["n"])
         for r in t.filter(pl.col("parent_sex") == "F").iter_rows(named=True)}
    assert f == {"carer_parent": (1, 1, 2), "cwcf": (1, 1, 2), "sgo": (1, 1, 2)}
    m = t.filter((pl.col("parent_sex") == "M") & (pl.col("question") == "carer_parent"))
    assert m.select("yes", "no", "n").row(0) == (1, 0, 1)


# ----------------------------------------------------------------------------- synthetic default


@pytest.fixture(scope="module")
def synthetic():
    from natexp.data.cohort import Design, build_cohort
    from natexp.data.rollout import load_rollout
    from natexp.data.synthetic import generate

    fam, chi = generate()
    return fam, chi, build_cohort(fam.lazy(), load_rollout(),
                                  Design(treatment_counties=("Oxfordshire",)),
                                  followup=EXAMPLE_STUDY.followup_stages)


def test_figure_9_referral_response(synthetic):
    d, _ = referral_response(synthetic[2])
    # Report, Figure 9 (Treatment, Control, Total):
    # Yes 11 6 17; re-referral 2 0 2; No 5 7 12; Already accepted 1 2 3; Not applicable 1 0 1;
    # Grand Total 20 15 35; percentages 49%, 6%, 34%, 9%, 3%.
    published = {"accepted": (11, 6, 17), "re_referral": (2, 0, 2), "declined": (5, 7, 12),
                 "already_supported": (1, 2, 3), "not_applicable": (1, 0, 1)}
    for response, (t, c, tot) in published.items():
        assert (d["treatment"][response], d["control"][response], d["total"][response]) == (
            t, c, tot)
    assert (d["treatment"]["n"], d["control"]["n"], d["total"]["n"]) == (20, 15, 35)
    pct = {"accepted": 49, "re_referral": 6, "declined": 34, "already_supported": 9,
           "not_applicable": 3}
    for response, p in pct.items():
        assert round(d["percent"][response]) == p


def test_figure_10_reasons(synthetic):
    d, _ = reasons(synthetic[2])
    # Report, Figure 10: Child 9 10 47.37%; Self 6 13 31.58%; Legal 4 15 21.05%.
    assert d["n"] == 19
    for key, (yes, no, pct) in {"child": (9, 10, 47.37), "self": (6, 13, 31.58),
                                "legal": (4, 15, 21.05)}.items():
        assert (d[key]["yes"], d[key]["no"]) == (yes, no)
        assert round(d[key]["percent_yes"], 2) == pct


def test_figure_11_interviews(synthetic):
    d, _ = interview(synthetic[2])
    # Report, Figure 11 (Treatment, Control, Total): Agreed 14 10 24; Did not agree 6 5 11;
    # Completed interview 6 5 11.
    for measure, row in {"agreed": (14, 10, 24), "not_agreed": (6, 5, 11),
                         "completed": (6, 5, 11)}.items():
        assert tuple(d[g][measure] for g in ("treatment", "control", "total")) == row


def test_figure_6_contact(synthetic):
    d, _ = contact(synthetic[2])
    t = d["total"]
    # Report, Figure 6 text: "the vast majority (24 out of 35, or 68.6%) did not have contact
    # with the incarcerated parent and saw that as positive. Whilst 26 out of 35 did not want
    # contact ..., only 5 had a court order in place on release"; "the father in all of these
    # cases".
    assert (t["no_contact_positive"], t["n"]) == (24, 35)
    assert round(100 * t["no_contact_positive"] / t["n"], 1) == 68.6
    assert t["wants_contact"]["no"] == 26
    assert t["court_order"]["yes"] == 5
    assert t["parent_sex"] == {"M": 35, "F": 0}


def test_figure_8_uptake(synthetic):
    d, _ = uptake(synthetic[2])
    # Report, Figure 8: Yes 4 2; No 16 13; Percentage with CHaS Support 20% 13%; text: the
    # two control families "had a referral through the child's school".
    assert (d["treatment"]["yes"], d["control"]["yes"]) == (4, 2)
    assert (d["treatment"]["no"], d["control"]["no"]) == (16, 13)
    assert (round(d["treatment"]["percent"]), round(d["control"]["percent"])) == (20, 13)
    assert d["control"]["route"]["school"] == 2


def test_appendix_b_on_synthetic(synthetic):
    fam, chi, _ = synthetic
    t = appendix_b_counts(fam, chi)
    got = {(r["question"], r["parent_sex"]): (r["yes"], r["no"])
           for r in t.iter_rows(named=True)}
    # Report, Appendix B: carer Male Yes 536 No 71, Female Yes 8 No 24; LAC Male 20/587,
    # Female 5/27; SGO Male 7/600, Female 6/26.
    assert got == {
        ("carer_parent", "M"): (536, 71), ("carer_parent", "F"): (8, 24),
        ("cwcf", "M"): (20, 587), ("cwcf", "F"): (5, 27),
        ("sgo", "M"): (7, 600), ("sgo", "F"): (6, 26),
    }


def test_secondary_outcomes_and_tables_share_keys(synthetic):
    cohort = synthetic[2]
    d, t = secondary_outcomes(cohort, EXAMPLE_STUDY)
    assert set(d) == set(t) == {"referral_response", "reasons", "interview", "contact", "uptake"}
    assert all(isinstance(v, pl.DataFrame) for v in t.values())
    import json

    json.dumps(d)  # JSON-friendly as it stands


# ----------------------------------------------------------------------------- a second study

SECOND = Study.from_dict({
    "name": "harbour_watch",
    "outcome": {"column": "joined_club", "reached": "called_back",
                "route": {"column": "club_route", "labels": {"coach": "By a coach",
                                                             "friend": "By a friend"}}},
    "columns": {"families": [
        {"name": "club_route", "kind": "category", "nullable": True, "values": ["coach", "friend"]},
        {"name": "mood", "kind": "category", "nullable": True, "values": ["calm", "worried"]},
        {"name": "need_food", "kind": "bool", "nullable": True},
        {"name": "need_rent", "kind": "bool", "nullable": True},
        {"name": "survey_ok", "kind": "bool", "nullable": True},
        {"name": "survey_done", "kind": "bool", "nullable": True},
    ]},
    "secondary": [
        {"key": "mood", "kind": "category", "column": "mood",
         "labels": {"calm": "Calm", "worried": "Worried"}},
        {"key": "needs", "kind": "flags", "columns": {"food": "need_food", "rent": "need_rent"}},
        {"key": "survey", "kind": "consent",
         "columns": {"consent": "survey_ok", "completed": "survey_done"}},
        {"key": "joined", "kind": "outcome_routes"},
    ],
})


def test_a_second_study_gets_its_own_tables_by_eye():
    df = pl.DataFrame({
        "arm": ["treatment", "treatment", "control", "control"],
        "called_back": [True, True, True, None],
        "joined_club": [True, False, True, None],
        "club_route": ["coach", None, "friend", None],
        "mood": ["calm", "worried", None, "calm"],
        "need_food": [True, None, False, True], "need_rent": [False, None, None, True],
        "survey_ok": [True, False, True, None], "survey_done": [True, True, False, None],
    })
    d, t = secondary_outcomes(df, SECOND)
    assert list(d) == ["mood", "needs", "survey", "joined"]
    # 3 called back: mood calm 1 (treatment), worried 1 (treatment), missing 1 (control)
    assert d["mood"]["total"] == {"calm": 1, "worried": 1, "missing": 1, "n": 3}
    assert t["mood"].columns[0] == "value" and t["mood"]["label"].to_list() == [
        "Calm", "Worried", "Not recorded"]
    # flags among the 2 reached families with any answer: food yes 1, no 1; rent no 1, missing 1
    assert d["needs"]["n"] == 2
    assert d["needs"]["food"] == {"yes": 1, "no": 1, "missing": 0, "percent_yes": 50.0}
    assert d["needs"]["rent"] == {"yes": 0, "no": 1, "missing": 1, "percent_yes": 0.0}
    # completed is counted among the consenting only: the second treatment family completed
    # without consent and is not counted
    assert d["survey"]["total"]["completed"] == 1 and d["survey"]["total"]["agreed"] == 2
    assert d["joined"]["treatment"]["route"] == {"coach": 1, "friend": 0, "missing": 0}
    assert d["joined"]["control"]["yes"] == 1 and d["joined"]["control"]["n"] == 1
    assert t["joined"].columns[-3:] == ["route_coach", "route_friend", "route_missing"]


def test_descriptive_counts_of_a_second_study():
    from natexp.study import DescriptiveSpec, QuestionSpec

    spec = DescriptiveSpec(key="by_region", by="region", groups={"N": "north", "S": "south"},
                           questions=(QuestionSpec("school", "in_school"),))
    fam = pl.DataFrame({"family_id": ["A", "B", "C"], "region": ["N", "S", "S"]})
    chi = pl.DataFrame({"family_id": ["A", "B", "B", "C"], "in_school": [True, True, False, False]})
    t = descriptive_counts(fam, chi, spec)
    assert t.select("region", "yes", "no", "n").rows() == [("N", 1, 0, 1), ("S", 1, 2, 3)]
