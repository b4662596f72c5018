"""Tests of the example study's synthetic dataset against the numbers the report published.

The data come from the study's own hook, ``experiments/paramount/synthetic.py`` (declared as
``synthetic.hook`` in ``conf/study/paramount.yaml``), through :func:`natexp.data.synthetic.generate`
with no arguments (the default study).

Source of every typed number, unless said otherwise: Bekaert, S., Olphin, T., Massie, R. &
Norris, J. (2025) What Works Series: Operation Paramount, Thames Valley Violence Prevention
Partnership ("the report"). The cohort is rebuilt here with plain polars filters from the
report's Methodology rule, independent of any natexp cohort module.
"""

from __future__ import annotations

import datetime as dt
import sys

import polars as pl
import pytest
from scipy.stats import chi2_contingency

from natexp.causal.result import InvalidInputError
from natexp.data.rollout import load_rollout, rollout_frame
from natexp.data.synthetic import default_study, generate, load_hook, write

HOOK = load_hook(default_study())
STUDY = sys.modules[HOOK.__module__].STUDY

# Methodology: "incarcerated between 1st July 2022 and 30th June 2024 ... still in custody".
WINDOW_START, WINDOW_END = dt.date(2022, 7, 1), dt.date(2024, 6, 30)
# ASSUMPTION (not published): follow-up calls on 1 Nov 2024; the ethics approval is October 2024.
FOLLOWUP = dt.date(2024, 11, 1)
AS_OF = dt.date(2025, 12, 31)

FAMILY_SCHEMA = {
    "family_id": pl.String,
    "area": pl.String,
    "reception_date": pl.Date,
    "release_date": pl.Date,
    "parent_sex": pl.String,
    "paramount_visit": pl.Boolean,
    "chas_support": pl.Boolean,
    "chas_route": pl.String,
    "followup_reached": pl.Boolean,
    "has_contact": pl.Boolean,
    "contact_view": pl.String,
    "wants_contact": pl.Boolean,
    "court_order": pl.Boolean,
    "referral_response": pl.String,
    "reason_child": pl.Boolean,
    "reason_self": pl.Boolean,
    "reason_legal": pl.Boolean,
    "interview_consent": pl.Boolean,
    "interview_completed": pl.Boolean,
}
CHILD_SCHEMA = {
    "child_id": pl.String,
    "family_id": pl.String,
    "age": pl.Int64,
    "carer": pl.String,
    "cwcf": pl.Boolean,
    "sgo": pl.Boolean,
}
FOLLOWUP_COLUMNS = [
    "has_contact",
    "contact_view",
    "wants_contact",
    "court_order",
    "referral_response",
    "reason_child",
    "reason_self",
    "reason_legal",
    "interview_consent",
    "interview_completed",
]


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    return generate()


@pytest.fixture(scope="module")
def scaled() -> tuple[pl.DataFrame, pl.DataFrame]:
    return generate(n_families=20_000, seed=7)


def with_arm(families: pl.DataFrame) -> pl.DataFrame:
    """Families with ``arm`` (treatment/control/excluded) and the window and custody flags."""
    live = pl.col("go_live").is_not_null() & (pl.col("go_live") <= pl.col("reception_date"))
    return families.join(load_rollout(), on="area", how="left").with_columns(
        in_window=pl.col("reception_date").is_between(WINDOW_START, WINDOW_END),
        in_custody=pl.col("release_date").is_null() | (pl.col("release_date") > FOLLOWUP),
        arm=pl.when((pl.col("county") == "Oxfordshire") & live)
        .then(pl.lit("treatment"))
        .when(~live)
        .then(pl.lit("control"))
        .otherwise(pl.lit("excluded")),
    )


def cohort(families: pl.DataFrame) -> pl.DataFrame:
    return with_arm(families).filter(
        pl.col("in_window") & pl.col("in_custody") & pl.col("arm").is_in(["treatment", "control"])
    )


def reached(families: pl.DataFrame) -> pl.DataFrame:
    return cohort(families).filter(pl.col("followup_reached"))


def count(frame: pl.DataFrame, *conds: pl.Expr) -> int:
    return frame.filter(*conds).height if conds else frame.height


def by_arm(frame: pl.DataFrame, *conds: pl.Expr) -> tuple[int, int]:
    f = frame.filter(*conds) if conds else frame
    return count(f, pl.col("arm") == "treatment"), count(f, pl.col("arm") == "control")


def appendix_b_tables(families: pl.DataFrame, children: pl.DataFrame) -> dict:
    kids = children.join(families.select("family_id", "parent_sex"), on="family_id")
    yes = {
        "carer": pl.col("carer").is_in(["mother", "father"]),
        "cwcf": pl.col("cwcf"),
        "sgo": pl.col("sgo"),
    }
    out = {}
    for name, cond in yes.items():
        out[name] = [
            [
                count(kids, pl.col("parent_sex") == sex, cond),
                count(kids, pl.col("parent_sex") == sex, ~cond),
            ]
            for sex in ("M", "F")
        ]
    return out


# ---- Appendix B --------------------------------------------------------------------------


def test_appendix_b_counts(data):
    families, children = data
    t = appendix_b_tables(families, children)
    # Appendix B, Bekaert et al. 2025, "Is the remaining carer the mother or father?":
    # male Yes = 536 No = 71; female Yes = 8 No = 24.
    assert t["carer"] == [[536, 71], [8, 24]]
    # Appendix B, "Does the child become a looked after child (LAC)?": male 20/587, female 5/27.
    assert t["cwcf"] == [[20, 587], [5, 27]]
    # Appendix B, "... special guardianship order (SGO)?": male 7/600, female 6/26.
    assert t["sgo"] == [[7, 600], [6, 26]]
    # Appendix B totals: 639 children, 607 with a male and 32 with a female imprisoned parent.
    assert children.height == 639


@pytest.mark.parametrize(
    ("table", "published"),
    # Appendix B, Bekaert et al. 2025: chi^2 = 96.2426, 12.2932, 47.2268, df = 1, p < 0.001.
    [("carer", 96.2426), ("cwcf", 12.2932), ("sgo", 47.2268)],
)
def test_appendix_b_chi_squared(data, table, published):
    # Reference: scipy.stats.chi2_contingency without Yates' correction (the report's values
    # are uncorrected); checks both the generated data and the report's arithmetic.
    t = appendix_b_tables(*data)[table]
    res = chi2_contingency(t, correction=False)
    assert round(float(res.statistic), 4) == published
    assert res.dof == 1
    assert res.pvalue < 0.001


def test_children_coherent(data):
    families, children = data
    assert children["age"].min() >= 0 and children["age"].max() <= 17
    assert set(children["carer"].unique()) <= {
        "mother",
        "father",
        "grandparent",
        "other_family",
        "foster_carer",
        "other",
    }
    assert count(children, pl.col("cwcf") & pl.col("sgo")) == 0
    assert count(children, pl.col("cwcf"), ~pl.col("carer").is_in(["foster_carer", "other"])) == 0
    assert (
        count(children, pl.col("sgo"), ~pl.col("carer").is_in(["grandparent", "other_family"])) == 0
    )
    # Figure 3: "more primary to early secondary school age children" (ages 5-13 most common).
    middle = count(children, pl.col("age").is_between(5, 13))
    assert middle > children.height / 2
    # Families hold 1-5 children; 639 children over the families (mean about 1.9).
    sizes = children.group_by("family_id").len()["len"]
    assert sizes.min() >= 1 and sizes.max() <= 5
    assert 1.8 <= children.height / families.height <= 2.1


# ---- the natural experiment (Methodology; Figures 6-11) ----------------------------------


def test_cohort_85_and_reached_35(data):
    families, _ = data
    c = cohort(families)
    # Methodology: "This identified a cohort of 85 families ... of which 35 were contactable".
    assert c.height == 85
    # ASSUMPTION (report gives only 85): 46 treatment / 39 control.
    assert by_arm(c) == (46, 39)
    # Exactly the cohort families are in the call list.
    assert families["followup_reached"].count() == 85
    assert c["followup_reached"].null_count() == 0
    # Data Findings: 35 reached, "Twenty of these were cases from Oxfordshire ... and fifteen".
    assert by_arm(c, pl.col("followup_reached")) == (20, 15)
    assert count(c, ~pl.col("followup_reached")) == 50
    # "the father in all of these cases"
    assert set(reached(families)["parent_sex"].unique()) == {"M"}
    # "Twenty ... where the police visit had been attempted"
    assert by_arm(reached(families), pl.col("paramount_visit")) == (20, 0)


def test_uptake_figures_7_8(data):
    r = reached(data[0])
    # Figure 8: Uptake of CHaS Support, Yes: treatment 4, control 2; No: 16, 13.
    assert by_arm(r, pl.col("chas_support")) == (4, 2)
    assert by_arm(r, ~pl.col("chas_support")) == (16, 13)
    # "two families had a referral through the child's school" (control); treatment via Paramount.
    assert by_arm(r, pl.col("chas_route") == "school") == (0, 2)
    assert by_arm(r, pl.col("chas_route") == "paramount") == (4, 0)


def test_referral_responses_figure_9(data):
    r = reached(data[0])
    resp = pl.col("referral_response")
    # Figure 9 (treatment, control): Yes 11, 6; re-referral 2, 0; No 5, 7; already accepted
    # 1, 2; not applicable 1, 0; grand total 20, 15.
    assert by_arm(r, resp == "accepted") == (11, 6)
    assert by_arm(r, resp == "re_referral") == (2, 0)
    assert by_arm(r, resp == "declined") == (5, 7)
    assert by_arm(r, resp == "already_supported") == (1, 2)
    assert by_arm(r, resp == "not_applicable") == (1, 0)
    # Earlier support is exactly those who had it before.
    had = resp.is_in(["re_referral", "already_supported", "not_applicable"])
    assert r.filter(pl.col("chas_support") != had).height == 0


def test_reasons_figure_10(data):
    families = data[0]
    r = reached(families)
    acc = r.filter(pl.col("referral_response").is_in(["accepted", "re_referral"]))
    assert acc.height == 19
    # Figure 10: Support for Child Yes 9 No 10; Support for Self 6/13; Legal 4/15.
    assert (acc["reason_child"].sum(), (~acc["reason_child"]).sum()) == (9, 10)
    assert (acc["reason_self"].sum(), (~acc["reason_self"]).sum()) == (6, 13)
    assert (acc["reason_legal"].sum(), (~acc["reason_legal"]).sum()) == (4, 15)
    # Reasons are non-null only for reached families who accepted or asked for a re-referral.
    for col in ("reason_child", "reason_self", "reason_legal"):
        assert families[col].count() == 19


def test_interview_figure_11(data):
    r = reached(data[0])
    # Figure 11: agreed 14, 10; did not agree 6, 5; completed interview 6, 5.
    assert by_arm(r, pl.col("interview_consent")) == (14, 10)
    assert by_arm(r, ~pl.col("interview_consent")) == (6, 5)
    assert by_arm(r, pl.col("interview_completed")) == (6, 5)
    assert count(r, pl.col("interview_completed"), ~pl.col("interview_consent")) == 0


def test_contact_figure_6(data):
    r = reached(data[0])
    # Data Findings (Figure 6): "24 out of 35 ... did not have contact ... and saw that as
    # positive"; "26 out of 35 did not want contact"; "only 5 had a court order".
    assert count(r, ~pl.col("has_contact"), pl.col("contact_view") == "positive") == 24
    assert count(r, ~pl.col("wants_contact")) == 26
    assert count(r, pl.col("court_order")) == 5
    # ASSUMPTION (not published): the other Figure 6 cells 5 / 2 / 4.
    assert count(r, pl.col("has_contact"), pl.col("contact_view") == "positive") == 5
    assert count(r, pl.col("has_contact"), pl.col("contact_view") == "negative") == 2
    assert count(r, ~pl.col("has_contact"), pl.col("contact_view") == "negative") == 4


def test_null_structure(data):
    families, _ = data
    in_list = families.filter(pl.col("followup_reached").is_not_null())
    not_reached = families.filter(pl.col("followup_reached") == False)  # noqa: E712
    outside = families.filter(pl.col("followup_reached").is_null())
    for col in FOLLOWUP_COLUMNS:
        assert outside[col].null_count() == outside.height, col
        assert not_reached[col].null_count() == not_reached.height, col
    r = in_list.filter(pl.col("followup_reached"))
    for col in (
        "has_contact",
        "contact_view",
        "wants_contact",
        "court_order",
        "referral_response",
        "interview_consent",
        "interview_completed",
    ):
        assert r[col].null_count() == 0, col
    # chas_route is null iff chas_support is False.
    assert count(families, pl.col("chas_route").is_null() != ~pl.col("chas_support")) == 0


def test_study_design_in_visible_numbers(data):
    families, _ = data
    f = with_arm(families)
    # Reception dates span the whole extract, over all 13 areas.
    assert families["reception_date"].min() >= dt.date(2021, 12, 1)
    assert families["reception_date"].max() <= dt.date(2025, 6, 30)
    assert families["area"].n_unique() == 13
    assert count(f, ~pl.col("in_window")) >= 30
    assert count(f, pl.col("in_window"), ~pl.col("in_custody")) >= 20
    excluded = f.filter(pl.col("in_window"), pl.col("in_custody"), pl.col("arm") == "excluded")
    assert excluded.height >= 10
    assert set(excluded["area"].unique()) <= {"Milton Keynes", "Buckinghamshire", "West Berkshire"}
    # 95% of the imprisoned parents male (Descriptive Findings).
    assert 0.93 <= count(families, pl.col("parent_sex") == "M") / families.height <= 0.97


def test_contract_types_and_keys(data):
    families, children = data
    assert dict(families.schema) == FAMILY_SCHEMA
    assert dict(children.schema) == CHILD_SCHEMA
    assert families["family_id"].is_unique().all()
    assert children["child_id"].is_unique().all()
    assert families["family_id"].str.contains(r"^F\d{6}$").all()
    assert children["child_id"].str.contains(r"^C\d{7}$").all()
    assert children["family_id"].is_in(families["family_id"].implode()).all()
    # Every family has at least one child.
    assert families["family_id"].is_in(children["family_id"].implode()).all()
    assert set(families["area"].unique()) <= set(load_rollout()["area"])
    assert set(families["parent_sex"].unique()) <= {"F", "M"}
    assert set(families["chas_route"].drop_nulls().unique()) <= {"paramount", "school", "other"}
    assert families["release_date"].max() <= AS_OF
    assert count(families, pl.col("release_date") < pl.col("reception_date")) == 0
    # children of a family share its parent_sex by construction (a family attribute).


def test_default_is_the_study_hook(data):
    # generate() with no arguments is the default study's hook on the default rollout.
    assert default_study().synthetic.hook == "synthetic.py:generate"
    fam, chi = HOOK(rollout=load_rollout())
    assert fam.equals(data[0]) and chi.equals(data[1])


def test_deterministic(data, tmp_path):
    families, children = generate()
    assert families.equals(data[0]) and children.equals(data[1])
    a = write(tmp_path / "a")
    b = write(tmp_path / "b")
    for name in ("families", "children"):
        assert a[name].read_bytes() == b[name].read_bytes()
    other, _ = generate(seed=1)
    assert not other.equals(families)


def test_other_seed_keeps_published_margins():
    families, children = generate(seed=12345)
    assert appendix_b_tables(families, children)["carer"] == [[536, 71], [8, 24]]
    r = reached(families)
    assert by_arm(r) == (20, 15)
    assert by_arm(r, pl.col("chas_support")) == (4, 2)


# ---- scaling ------------------------------------------------------------------------------


def test_scaled_keeps_proportions(scaled):
    families, children = scaled
    assert families.height == 20_000
    assert dict(families.schema) == FAMILY_SCHEMA and dict(children.schema) == CHILD_SCHEMA
    assert families["family_id"].is_in(children["family_id"].implode()).all()
    assert families["family_id"].is_unique().all() and children["child_id"].is_unique().all()
    n = families.height
    # Appendix B proportions: 32/639 children with a female parent; carer 536/607 and 8/32;
    # cwcf 20/607 and 5/32; sgo 7/607 and 6/32.
    t = appendix_b_tables(families, children)
    kids = children.height
    assert (t["carer"][1][0] + t["carer"][1][1]) / kids == pytest.approx(32 / 639, abs=0.005)
    for name, (m, f) in {
        "carer": (536 / 607, 8 / 32),
        "cwcf": (20 / 607, 5 / 32),
        "sgo": (7 / 607, 6 / 32),
    }.items():
        (my, mn), (fy, fn) = t[name]
        assert my / (my + mn) == pytest.approx(m, abs=0.01), name
        assert fy / (fy + fn) == pytest.approx(f, abs=0.03), name
    assert kids / n == pytest.approx(639 / 330, abs=0.05)
    # Cohort and follow-up proportions (85 and 35 of the 330 default families; 20/15 reached).
    c = cohort(families)
    assert c.height / n == pytest.approx(85 / 330, abs=0.005)
    assert families["followup_reached"].count() == c.height
    r = c.filter(pl.col("followup_reached"))
    assert r.height / n == pytest.approx(35 / 330, abs=0.005)
    rt, rc = by_arm(r)
    assert rt / (rt + rc) == pytest.approx(20 / 35, abs=0.01)
    ut, uc = by_arm(r, pl.col("chas_support"))
    assert ut / rt == pytest.approx(4 / 20, abs=0.01)
    assert uc / rc == pytest.approx(2 / 15, abs=0.01)
    assert count(r, pl.col("court_order")) / r.height == pytest.approx(5 / 35, abs=0.01)


def test_uptake_effect_is_the_true_effect():
    families, _ = generate(n_families=20_000, seed=3, uptake_effect=0.25)
    rest = families.filter(pl.col("followup_reached").is_null() | ~pl.col("followup_reached"))
    rates = rest.group_by("paramount_visit").agg(pl.col("chas_support").mean())
    rate = dict(zip(rates["paramount_visit"], rates["chas_support"], strict=True))
    # 0.06 where not live; 0.06 + 0.25 where live (binomial SE below 0.006 here).
    assert rate[False] == pytest.approx(0.06, abs=0.015)
    assert rate[True] - rate[False] == pytest.approx(0.25, abs=0.03)


# ---- write ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_write_roundtrip(tmp_path, fmt, data):
    paths = write(tmp_path, fmt=fmt)
    assert {p.name for p in tmp_path.iterdir()} == {f"families.{fmt}", f"children.{fmt}"}
    read = pl.read_csv if fmt == "csv" else pl.read_excel
    fam = read(paths["families"])
    assert fam.height == 330 and fam.columns == list(FAMILY_SCHEMA)
    kids = read(paths["children"])
    assert kids.height == 639 and kids.columns == list(CHILD_SCHEMA)


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(self, path, *args, **kwargs):
        with open(path, "w") as fh:
            fh.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---- wrong input and other rollouts -------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_families": 10},
        {"n_families": 1000.5},
        {"seed": -1},
        {"uptake_effect": 2.0},
        {"as_of": dt.date(2024, 1, 1)},
    ],
)
def test_wrong_input_raises(kwargs):
    with pytest.raises(InvalidInputError):
        generate(**kwargs)


def test_write_unknown_format_raises(tmp_path):
    with pytest.raises(InvalidInputError, match="fmt"):
        write(tmp_path / "out", fmt="json")
    assert not (tmp_path / "out").exists()


def test_rollout_without_treatment_area_raises():
    rollout = rollout_frame([{"name": "Reading", "county": "Berkshire", "go_live": None}])
    with pytest.raises(InvalidInputError, match="treatment"):
        generate(rollout=rollout)


def test_other_rollout_keeps_cohort():
    # Milton Keynes never live: the cohort counts still hold under the same rule.
    entries = [
        {"name": a, "county": c, "go_live": None if a == "Milton Keynes" else g}
        for a, c, g in load_rollout().select("area", "county", "go_live").iter_rows()
    ]
    families, _ = generate(rollout=rollout_frame(entries))
    live = pl.col("go_live").is_not_null() & (pl.col("go_live") <= pl.col("reception_date"))
    f = families.join(rollout_frame(entries), on="area").filter(
        pl.col("reception_date").is_between(WINDOW_START, WINDOW_END),
        pl.col("release_date").is_null() | (pl.col("release_date") > FOLLOWUP),
        ((pl.col("county") == "Oxfordshire") & live) | ~live,
    )
    assert f.height == 85
    assert count(f, pl.col("followup_reached")) == 35


def test_study_constant_matches_report():
    # The STUDY constant other modules import carries the published numbers.
    assert (STUDY.window_start, STUDY.window_end) == (WINDOW_START, WINDOW_END)
    assert STUDY.followup_date == FOLLOWUP
    assert STUDY.n_cohort == 85 and STUDY.n_reached == 35  # Methodology
    assert STUDY.appendix_b_chi2["carer_mother_or_father"] == 96.2426  # Appendix B
    assert dict(STUDY.referral_control) == {  # Figure 9, control column
        "accepted": 6,
        "re_referral": 0,
        "declined": 7,
        "already_supported": 2,
        "not_applicable": 0,
    }
