"""Cohort designs and the flow table, on hand-made families whose boxes are known."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natexp.data.cohort import Design, DesignError, accounted, arm_counts, assign, build_cohort
from natexp.data.rollout import load_rollout
from tests.conftest import AREAS

ROLLOUT = load_rollout()
D = dt.date


def families(rows):
    """rows: (id, area, reception, release, reached, uptake)."""
    return pl.DataFrame(
        {
            "family_id": [r[0] for r in rows],
            "area": [r[1] for r in rows],
            "reception_date": [r[2] for r in rows],
            "release_date": [r[3] for r in rows],
            "parent_sex": ["M"] * len(rows),
            "chas_support": [r[5] for r in rows],
            "followup_reached": [r[4] for r in rows],
            "interview_consent": [r[4] for r in rows],
            "interview_completed": [False] * len(rows),
        },
        schema={"family_id": pl.String, "area": pl.String, "reception_date": pl.Date,
                "release_date": pl.Date, "parent_sex": pl.String, "chas_support": pl.Boolean,
                "followup_reached": pl.Boolean, "interview_consent": pl.Boolean,
                "interview_completed": pl.Boolean},
    ).lazy()


CASES = [
    # id, area, reception, release, reached, uptake -> expected box (oxon_vs_rest), (staggered)
    ("A", "Oxford", D(2022, 8, 1), None, True, True),             # treatment, treatment
    ("B", "Reading", D(2023, 1, 15), None, True, False),          # control, control
    ("C", "Slough", D(2023, 5, 2), D(2024, 1, 1), None, False),   # released, released
    ("D", "Cherwell", D(2021, 1, 10), None, None, False),         # outside window
    ("E", "Milton Keynes", D(2023, 3, 1), None, None, False),     # live elsewhere, treatment
    ("F", "Buckinghamshire", D(2023, 1, 1), None, False, False),  # control (live Jul 2023)
    ("G", "Buckinghamshire", D(2023, 7, 1), None, None, False),   # live elsewhere (go-live day)
    ("H", "Wokingham", D(2024, 6, 30), D(2024, 11, 2), True, True),  # control: released after FU
    ("I", "Reading", D(2024, 7, 1), None, None, False),           # outside window (day after)
    ("J", "West Oxfordshire", D(2022, 7, 1), D(2024, 11, 1), None, False),  # released on FU day
]


def boxes(design):
    got = assign(families(CASES), ROLLOUT, design).select("family_id", "box").collect()
    return dict(got.iter_rows())


def test_oxon_vs_rest_assigns_each_family_to_its_box():
    assert boxes(Design(treatment_counties=("Oxfordshire",))) == {
        "A": "treatment", "B": "control", "C": "released_before_followup",
        "D": "outside_window", "E": "live_outside_treatment_area", "F": "control",
        "G": "live_outside_treatment_area", "H": "control", "I": "outside_window",
        "J": "released_before_followup",
    }


def test_staggered_treats_every_live_area():
    got = boxes(Design(name="staggered", kind="staggered"))
    assert got["E"] == "treatment" and got["G"] == "treatment"
    assert got["A"] == "treatment" and got["B"] == "control" and got["F"] == "control"


def test_custody_rule_can_be_switched_off_and_phases_selected():
    got = boxes(Design(custody_at_followup=False, treatment_counties=("Oxfordshire",)))
    assert got["C"] == "control" and got["J"] == "treatment"
    got = boxes(Design(phases=(1, 5),
                       treatment_counties=("Oxfordshire",)))  # Oxford pilot and Bracknell/Reading
    assert got["A"] == "treatment" and got["B"] == "control"
    assert got["F"] == "phase_not_selected" and got["H"] == "phase_not_selected"


def test_flow_table_counts_and_accounts_for_every_family():
    cohort = build_cohort(families(CASES), ROLLOUT, Design(treatment_counties=("Oxfordshire",)))
    flow = cohort.flow()
    n = {(r["step"], r["arm"]): r["n"] for r in flow.iter_rows(named=True)}
    assert n[("input", "all")] == 10
    assert n[("outside_window", "all")] == 2
    assert n[("released_before_followup", "all")] == 2
    assert n[("live_outside_treatment_area", "all")] == 2
    assert n[("phase_not_selected", "all")] == 0
    assert (n[("identified", "treatment")], n[("identified", "control")]) == (1, 3)
    assert (n[("reached", "treatment")], n[("reached", "control")]) == (1, 2)
    assert (n[("not_reached", "control")], n[("not_called", "control")]) == (1, 0)
    assert accounted(flow)
    assert arm_counts(cohort, "chas_support") == {"treatment": (1, 1), "control": (1, 2)}


def test_design_rejects_inconsistent_settings():
    with pytest.raises(DesignError, match="window_end is before window_start"):
        Design(window_start=D(2024, 1, 1), window_end=D(2023, 1, 1),
               treatment_counties=("Oxfordshire",))
    with pytest.raises(DesignError, match="kind must be one of"):
        Design(name="any name", kind="random", treatment_counties=("Oxfordshire",))
    with pytest.raises(DesignError, match="needs a followup_date"):
        Design(followup_date=None, treatment_counties=("Oxfordshire",))


dates = st.dates(min_value=D(2020, 1, 1), max_value=D(2025, 12, 31))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(AREAS), dates, st.one_of(st.none(), dates),
                  st.sampled_from([None, True, False])),
        min_size=0, max_size=40,
    ),
    st.sampled_from(["treated_counties", "staggered"]),
    st.booleans(),
)
def test_rows_in_equal_rows_accounted_for(rows, kind, custody):
    fams = families([(f"F{i}", a, r, rel, reached, False) for i, (a, r, rel, reached) in
                     enumerate(rows)])
    cohort = build_cohort(fams, ROLLOUT, Design(name="d", kind=kind,
                                                custody_at_followup=custody,
                                                treatment_counties=("Oxfordshire",)))
    flow = cohort.flow()
    assert flow.filter(pl.col("step") == "input")["n"].item() == len(rows)
    assert accounted(flow)
    assigned = cohort.frame.collect()
    assert assigned.height == len(rows)
    assert assigned["box"].null_count() == 0


# ------------------------------------------------------------------ dates given as ISO strings
# (issue 19): Design and the other public functions that take dates accept "YYYY-MM-DD"
# strings and dates, convert them at construction and refuse anything else there, naming the
# parameter (before this, a string went through and failed inside a polars query plan).


def test_string_dated_design_gives_the_same_cohort_as_a_date_dated_one():
    as_dates = Design(treatment_counties=("Oxfordshire",), window_start=D(2022, 7, 1),
                      window_end=D(2024, 6, 30), followup_date=D(2024, 11, 1))
    as_text = Design(treatment_counties=("Oxfordshire",), window_start="2022-07-01",
                     window_end="2024-06-30", followup_date="2024-11-01")
    assert as_text == as_dates
    assert isinstance(as_text.window_start, dt.date)
    assert as_text.to_dict() == as_dates.to_dict()
    got = build_cohort(families(CASES), ROLLOUT, as_text)
    want = build_cohort(families(CASES), ROLLOUT, as_dates)
    assert got.flow().equals(want.flow())
    assert got.frame.collect().equals(want.frame.collect())
    # a datetime at midnight (what YAML or pandas give for a plain date) is its date
    assert Design(treatment_counties=("Oxfordshire",),
                  window_start=dt.datetime(2022, 7, 1)) == as_dates


@pytest.mark.parametrize("key,value,message", [
    ("window_start", 20220701, "window_start must be a date .* type int"),
    ("window_start", "2022-7-1", "window_start must be a date .*'2022-7-1'"),
    ("window_end", "20240630", "window_end must be a date"),
    ("window_end", "2024-02-30", "window_end is not a calendar date"),
    ("window_end", "2024-06-30T00:00", "window_end must be a date"),
    ("followup_date", "1 Nov 2024", "followup_date must be a date"),
    ("followup_date", dt.datetime(2024, 11, 1, 9, 30), "followup_date .*time of day"),
    ("window_start", None, "window_start is required"),
    ("window_start", 2022.5, "window_start must be a date .* type float"),
    ("custody_at_followup", "yes", "custody_at_followup must be True or False"),
    ("treatment_counties", "Oxfordshire", "treatment_counties must be a list"),
    ("phases", ("1",), "phases must be None or a list of integers"),
])
def test_bad_design_values_raise_at_construction_naming_the_parameter(key, value, message):
    kw = {"treatment_counties": ("Oxfordshire",), key: value}
    with pytest.raises(DesignError, match=f"^design: {message}"):
        Design(**kw)


def test_string_dates_are_still_checked_for_consistency():
    with pytest.raises(DesignError, match="window_end is before window_start"):
        Design(window_start="2024-01-01", window_end="2023-01-01",
               treatment_counties=("Oxfordshire",))
    with pytest.raises(DesignError, match="followup_date is before the end of the window"):
        Design(followup_date="2024-01-01", treatment_counties=("Oxfordshire",))


def test_other_public_functions_accept_iso_strings_and_name_a_bad_date():
    from natexp.causal.result import InvalidInputError
    from natexp.data.panel import area_period_panel
    from natexp.speccurve import specification_choices

    fam = families(CASES)
    a = area_period_panel(fam, ROLLOUT, outcome="chas_support", start="2022-07-01",
                          end="2024-06-30").collect()
    b = area_period_panel(fam, ROLLOUT, outcome="chas_support", start=D(2022, 7, 1),
                          end=D(2024, 6, 30)).collect()
    assert a.equals(b)
    with pytest.raises(InvalidInputError, match="^end must be a date"):
        area_period_panel(fam, ROLLOUT, outcome="chas_support", start="2022-07-01",
                          end="30/06/2024")
    primary = Design(treatment_counties=("Oxfordshire",))
    c = specification_choices(primary, window_starts=["2022-07-01", "2023-01-01"],
                              followup_dates=["2024-11-01", None])
    assert c.window_starts == (D(2022, 7, 1), D(2023, 1, 1)) and not c.added
    assert c.followup_dates == (D(2024, 11, 1), None)
    with pytest.raises(DesignError, match=r"window_ends\[1\] must be a date"):
        specification_choices(primary, window_ends=["2024-06-30", 2024])


@settings(max_examples=80, deadline=None)
@given(st.dates(min_value=D(1900, 1, 1), max_value=D(2100, 12, 31)),
       st.integers(0, 4000), st.integers(0, 4000))
def test_iso_string_and_date_forms_give_equal_designs(start, days, after):
    end = start + dt.timedelta(days=days)
    fu = end + dt.timedelta(days=after)
    as_dates = Design(name="d", kind="staggered", window_start=start, window_end=end,
                      followup_date=fu)
    as_text = Design(name="d", kind="staggered", window_start=start.isoformat(),
                     window_end=end.isoformat(), followup_date=fu.isoformat())
    assert as_text == as_dates
    assert hash(as_text) == hash(as_dates)
    assert Design(**{**as_text.to_dict(), "treatment_counties": ()}) == as_dates
