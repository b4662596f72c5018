"""Standardised differences against published values, and the balance table on hand-made data.

Reference values
----------------
* Borenstein, Hedges, Higgins & Rothstein (2009), *Introduction to Meta-Analysis*, Wiley,
  chapter 4 ("Effect sizes based on means"), worked example: means 103.00 and 100.00, SDs 5.5
  and 4.5, n = 50 and 50, d = 0.5970 (with equal n Austin's denominator equals the pooled SD).
  The same example and value are in tompollard/tableone, ``test_tableone.py``,
  ``test_compute_standardized_mean_difference_continuous``.
* R package ``tableone`` (Yoshida & Bartel), README.md of github.com/kaz-yos/tableone:
  ``print(CreateTableOne(vars, strata = "trt", data = survival::pbc, factorVars = c("status",
  "edema", "stage")), smd = TRUE)``, column SMD. Counts and summary statistics are the ones
  printed in that same table.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from natexp.causal.balance import (
    AREA_NOTE,
    balance_table,
    smd_binary,
    smd_categorical,
    smd_continuous,
    smd_means,
)
from natexp.causal.result import InvalidInputError, Result

# ----------------------------------------------------------------------------- published values


def test_continuous_smd_borenstein_2009_worked_example():
    # Borenstein et al. (2009), ch. 4: d = 0.5970.
    r = smd_means(103.0, 5.5, 100.0, 4.5, n=(50, 50))
    assert isinstance(r, Result) and r.method == "smd.continuous"
    assert round(r.estimate, 4) == 0.5970
    assert r.n == (50, 50)


@pytest.mark.parametrize(
    ("m1", "s1", "m2", "s2", "published"),
    [
        # tableone README, pbc by trt: "time (mean (SD)) 2,015.62 (1,094.12) 1,996.86
        # (1,155.93) ... 0.017"
        (2015.62, 1094.12, 1996.86, 1155.93, 0.017),
        # "age (mean (SD)) 51.42 (11.01) 48.58 (9.96) ... 0.270"
        (51.42, 11.01, 48.58, 9.96, 0.270),
        # "ast (mean (SD)) 120.21 (54.52) 124.97 (58.93) ... 0.084"
        (120.21, 54.52, 124.97, 58.93, 0.084),
        # "platelet (mean (SD)) 258.75 (100.32) 265.20 (90.73) ... 0.067"
        (258.75, 100.32, 265.20, 90.73, 0.067),
    ],
)
def test_continuous_smd_tableone_readme(m1, s1, m2, s2, published):
    # The inputs are printed rounded to 2 decimals, so allow one unit in the third decimal.
    assert abs(abs(smd_means(m1, s1, m2, s2).estimate) - published) <= 0.001


def test_binary_smd_tableone_readme_sex():
    # tableone README, pbc by trt: "sex = f (%) 137 (86.7) 139 (90.3) ... 0.111"
    r = smd_binary(137, 158, 139, 154)
    assert r.method == "smd.binary"
    assert round(abs(r.estimate), 3) == 0.111
    assert r.estimate < 0  # treatment (trt 1) has the smaller share


@pytest.mark.parametrize(
    ("c1", "c2", "published"),
    [
        # "status (%) ... 0.054": 0/1/2 = 83/10/65 vs 85/9/60
        ([83, 10, 65], [85, 9, 60], 0.054),
        # "edema (%) ... 0.058": 0/0.5/1 = 132/16/10 vs 131/13/10
        ([132, 16, 10], [131, 13, 10], 0.058),
        # "stage (%) ... 0.246": 1/2/3/4 = 12/35/56/55 vs 4/32/64/54
        ([12, 35, 56, 55], [4, 32, 64, 54], 0.246),
    ],
)
def test_categorical_smd_tableone_readme(c1, c2, published):
    r = smd_categorical(c1, c2)
    assert r.method == "smd.categorical"
    assert round(r.estimate, 3) == published


def test_continuous_smd_equals_pingouin_cohen_d_with_equal_arms():
    # With equal arm sizes Austin's denominator is the pooled SD, so pingouin's Cohen's d
    # (pingouin.compute_effsize, eftype="cohen") is a live reference.
    rng = np.random.default_rng(20250101)
    x, y = rng.normal(1.0, 2.0, 40), rng.normal(0.0, 1.0, 40)
    import pingouin  # here, not at collection: ~0.7 s that only this test needs

    ref = pingouin.compute_effsize(x, y, paired=False, eftype="cohen")
    assert smd_continuous(x.tolist(), y.tolist()).estimate == pytest.approx(ref, rel=1e-12)


# ----------------------------------------------------------------------------- properties, edges


def test_binary_smd_equals_two_level_categorical_in_size():
    b = smd_binary(137, 158, 139, 154)
    c = smd_categorical([137, 21], [139, 15])
    assert abs(b.estimate) == pytest.approx(c.estimate, rel=1e-12)


def test_categorical_accepts_mappings_and_drops_levels_empty_in_both_arms():
    a = smd_categorical({"x": 83, "y": 10, "z": 65, "never": 0}, {"x": 85, "y": 9, "z": 60})
    assert round(a.estimate, 3) == 0.054
    assert a.extra["levels"] == ("x", "y", "z")


def test_smd_continuous_drops_missing_values():
    r = smd_continuous([1.0, None, 3.0, float("nan")], [2.0, 4.0])
    # means 2 and 3, sample SDs sqrt(2) and sqrt(2): (2 - 3) / sqrt(2) by hand
    assert r.estimate == pytest.approx(-1 / math.sqrt(2))
    assert r.n == (2, 2)


def test_degenerate_inputs_give_nan_with_a_note():
    assert math.isnan(smd_binary(0, 0, 3, 10).estimate)
    assert "empty" in smd_binary(0, 0, 3, 10).note
    zero = smd_binary(0, 10, 0, 12)
    assert math.isnan(zero.estimate) and "0/0" in zero.note
    assert smd_binary(10, 10, 0, 12).estimate == math.inf
    assert "fewer than 2" in smd_continuous([1.0], [1.0, 2.0]).note
    assert math.isnan(smd_means(1.0, 0.0, 1.0, 0.0).estimate)
    assert math.isnan(smd_categorical([0, 0], [3, 4]).estimate)
    one = smd_categorical([5, 0], [7, 0])
    assert one.estimate == 0.0 and "fewer than two levels" in one.note


@pytest.mark.parametrize(
    "call",
    [
        lambda: smd_binary(-1, 10, 2, 10),
        lambda: smd_binary(11, 10, 2, 10),
        lambda: smd_binary(2.5, 10, 2, 10),
        lambda: smd_categorical([1, 2], [1, 2, 3]),
        lambda: smd_categorical([1, -2], [1, 2]),
        lambda: smd_means(1.0, -1.0, 0.0, 1.0),
        lambda: smd_means(float("nan"), 1.0, 0.0, 1.0),
    ],
)
def test_wrong_input_raises_typed_error(call):
    with pytest.raises(InvalidInputError):
        call()


# ----------------------------------------------------------------------------- balance table


def _hand_cohort():
    """Four families: T1 (F, Oxford, 2 children), T2 (M, Oxford, 1), C1 (M, Reading, 1),
    C2 (M, Slough, 0); C1 not reached."""
    fam = pl.DataFrame(
        {
            "family_id": ["T1", "T2", "C1", "C2", "X"],
            "arm": ["treatment", "treatment", "control", "control", None],
            "area": ["Oxford", "Oxford", "Reading", "Slough", "Oxford"],
            "reception_date": [dt.date(2022, 8, 1), dt.date(2023, 2, 1), dt.date(2022, 9, 1),
                               dt.date(2023, 1, 5), dt.date(2020, 1, 1)],
            "parent_sex": ["F", "M", "M", "M", "M"],
            "followup_reached": [True, True, False, True, None],
        }
    )
    kids = pl.DataFrame(
        {
            "child_id": ["a", "b", "c", "d", "e"],
            "family_id": ["T1", "T1", "T2", "C1", "X"],
            "age": [3, 12, 7, 16, 9],
            "carer": ["grandparent", "grandparent", "mother", "mother", "mother"],
        }
    )
    return fam, kids


def _row(t, variable, level=None):
    f = t.filter(pl.col("variable") == variable)
    f = f.filter(pl.col("level").is_null()) if level is None else f.filter(pl.col("level") == level)
    assert f.height == 1
    return f.row(0, named=True)


#: The example study's carer column (conf/study/paramount.yaml, ``balance: [carer]``).
CARER = [("children", "carer", ("mother", "father", "grandparent", "other_family",
                                "foster_carer", "other"))]


def test_balance_table_hand_made_counts():
    fam, kids = _hand_cohort()
    t = balance_table(fam, kids, categories=CARER)
    sex = _row(t, "parent_sex", "F")
    assert (sex["treatment"], sex["control"], sex["n_treatment"], sex["n_control"]) == (
        0.5, 0.0, 2, 2)
    # binary formula by hand: (0.5 - 0) / sqrt((0.25 + 0) / 2) = sqrt(2)
    assert sex["smd"] == pytest.approx(math.sqrt(2))
    size = _row(t, "children_per_family")
    assert (size["treatment"], size["control"]) == (1.5, 0.5)  # (2 + 1) / 2 and (1 + 0) / 2
    age = _row(t, "child_age")
    assert (age["treatment"], age["control"], age["n_treatment"], age["n_control"]) == (
        pytest.approx(22 / 3), 16.0, 3, 1)
    assert age["smd"] is None and "fewer than 2" in age["note"]  # one control child
    band = _row(t, "child_age_band", "16-17")
    assert (band["treatment"], band["control"]) == (0.0, 1.0)
    carer = _row(t, "carer", "grandparent")
    assert (carer["treatment"], carer["control"]) == (pytest.approx(2 / 3), 0.0)
    quarters = t.filter(pl.col("variable") == "reception_quarter")["level"].to_list()
    assert quarters == ["2022Q3", "2023Q1", "(all levels)"]
    area = t.filter(pl.col("variable") == "area")
    assert area["level"].to_list() == ["Oxford", "Reading", "Slough", "(all levels)"]
    assert all(AREA_NOTE in n for n in area["note"].to_list())
    assert "perfectly confounded" in AREA_NOTE


def test_balance_table_among_reached_only():
    fam, kids = _hand_cohort()
    t = balance_table(fam, kids, among="followup_reached")
    sex = _row(t, "parent_sex", "F")
    assert (sex["n_treatment"], sex["n_control"]) == (2, 1)
    assert _row(t, "child_age")["n_control"] == 0  # C1 (the only control child) not reached


def test_balance_table_on_synthetic_cohort():
    from natexp.data.cohort import Design, build_cohort
    from natexp.data.rollout import load_rollout
    from natexp.data.synthetic import generate

    fam, chi = generate()
    cohort = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    every = balance_table(cohort, chi)
    assert _row(every, "parent_sex", "F")["n_treatment"] == 46  # synthetic split 46/39
    reached = balance_table(cohort, chi, among="followup_reached")
    sex = _row(reached, "parent_sex", "F")
    # Report, "Contact with the incarcerated parent": the imprisoned parent is "the father in
    # all of these cases" (the 35 reached families), so the share is 0 in both arms.
    assert (sex["n_treatment"], sex["n_control"], sex["treatment"], sex["control"]) == (
        20, 15, 0.0, 0.0)
    assert sex["smd"] is None and "0/0" in sex["note"]
    assert set(reached.columns) >= {"variable", "level", "treatment", "control", "smd", "note"}


def test_balance_table_shows_only_the_study_columns_it_is_given():
    fam, kids = _hand_cohort()
    bare = balance_table(fam, kids)
    assert "carer" not in bare["variable"].to_list()
    t = balance_table(fam, kids, categories=[("families", "area", ("Oxford", "Reading"))])
    got = t.filter((pl.col("variable") == "area") & (pl.col("unit") == "families"))
    assert got.height >= 2
