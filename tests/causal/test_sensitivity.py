"""Tests of natexp.causal.sensitivity: non-response bounds and tipping point, E-values, leave
one area out. Every reference value names its source next to it."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import polars as pl
import pytest
import scipy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import boschloo_exact, fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep

from natexp.causal.result import InvalidInputError, Result
from natexp.causal.sensitivity import (
    NonresponseCounts,
    SensitivityTable,
    TippingPoint,
    evalue_or,
    evalue_rd,
    evalue_rr,
    evalues_2x2,
    leave_one_area_out,
    manski_bounds,
    nonresponse_counts,
    tipping_point,
)
from natexp.data.cohort import Design, build_cohort
from natexp.data.rollout import load_rollout, rollout_frame
from natexp.data.synthetic import generate

# Operation Paramount (Bekaert et al. 2025, Methodology and Figures 7-8): 4 of 20 reached
# treatment families and 2 of 15 reached control families had taken up support; 85 identified,
# split 46 / 39 in natexp's synthetic data (an assumption documented in natexp.data.synthetic).
PUBLISHED = (4, 20, 26, 2, 15, 24)


@pytest.fixture(scope="module")
def cohort():
    fam, _ = generate()
    return build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))


@pytest.fixture(scope="module")
def grid() -> TippingPoint:
    return tipping_point(*PUBLISHED)


# ------------------------------------------------------------------ non-response counts


def test_nonresponse_counts_reproduce_the_published_flow(cohort):
    # 35 reached (20 / 15) of 85 identified; uptake 4/20 vs 2/15 (report, Figures 7-8)
    assert nonresponse_counts(cohort, outcome="chas_support") == NonresponseCounts(*PUBLISHED)


# ------------------------------------------------------------------ Manski bounds


def test_manski_bounds_default():
    b = manski_bounds(*PUBLISHED)
    # worst case: treated unreached all 0, control unreached all 1; best case the reverse
    assert b.extra["lower"] == pytest.approx(4 / 46 - 26 / 39)
    assert b.extra["upper"] == pytest.approx(30 / 46 - 2 / 39)
    assert b.estimate == pytest.approx(4 / 20 - 2 / 15)
    assert b.extra["width"] == pytest.approx(26 / 46 + 24 / 39)
    # issue 19: the bounds are the result's ci (an identification region, said so in the
    # label and note; no coverage level), and extra keeps them for earlier readers
    assert b.ci == (b.extra["lower"], b.extra["upper"])
    assert b.confidence_level is None
    assert "identification region" in b.label and "not a sampling confidence" in b.note
    assert "bounds (" in b.summary() and "CI (" not in b.summary()
    d = b.to_dict()
    assert (d["ci_low"], d["ci_high"]) == (d["extra"]["lower"], d["extra"]["upper"])


def test_manski_bounds_textbook_example_homelessness():
    # Manski CF (2003), Partial Identification of Probability Distributions (Springer),
    # Section 1.2 (also Manski 1995, Identification Problems in the Social Sciences, ch. 2):
    # Piliavin and Sosin's follow-up of 137 people homeless in Minneapolis; 106 were located
    # six months later and 64 of them had exited homelessness. P(exit | located) = 64/106 =
    # .60, P(located) = 106/137 = .77, and the worst-case bound on P(exit) is [.47, .69].
    # (Quoted from the textbook as recalled; the counts reproduce its rounded figures.)
    b = manski_bounds(64, 106, 31, 1, 2, 0)
    lo, hi = b.extra["p1_bounds"]
    assert (round(lo, 2), round(hi, 2)) == (0.47, 0.69)
    assert round(64 / 106, 2) == 0.60 and round(106 / 137, 2) == 0.77
    # the second arm fully observed: the difference's bounds are the first arm's, shifted
    assert b.ci == pytest.approx((lo - 0.5, hi - 0.5))
    # Horowitz and Manski (2000, JASA 95:77-84, Section 2): with outcomes in [0, 1] the width
    # of the bound on a difference of means is the sum of the arms' missing fractions
    b = manski_bounds(*PUBLISHED)
    assert b.ci_high - b.ci_low == pytest.approx(26 / 46 + 24 / 39)


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5),
                 st.integers(0, 5)).flatmap(
    lambda t: st.tuples(st.integers(0, t[0]), st.just(t[0]), st.just(t[1]),
                        st.integers(0, t[2]), st.just(t[2]), st.just(t[3]))))
def test_manski_bounds_equal_the_extremes_over_every_completion(c):
    # brute-force oracle: give every unreached family its own outcome (0 or 1), all
    # 2 ** (m1 + m2) ways, compute the risk difference of each completed table and take the
    # min and max; the bounds must be exactly these extremes (sharpness and validity)
    import itertools

    x1, r1, m1, x2, r2, m2 = c
    b = manski_bounds(*c)
    if r1 + m1 == 0 or r2 + m2 == 0:
        assert math.isnan(b.ci_low) and math.isnan(b.ci_high)
        return
    rds = [
        (x1 + sum(y1)) / (r1 + m1) - (x2 + sum(y2)) / (r2 + m2)
        for y1 in itertools.product((0, 1), repeat=m1)
        for y2 in itertools.product((0, 1), repeat=m2)
    ]
    assert b.ci_low == pytest.approx(min(rds), abs=1e-15)
    assert b.ci_high == pytest.approx(max(rds), abs=1e-15)


counts = st.tuples(st.integers(0, 8), st.integers(0, 6), st.integers(0, 8),
                   st.integers(0, 6)).flatmap(
    lambda t: st.tuples(st.integers(0, t[0]), st.just(t[0]), st.just(t[1]),
                        st.integers(0, t[2]), st.just(t[2]), st.just(t[3])))


@settings(max_examples=60, deadline=None)
@given(counts)
def test_bounds_contain_observed_and_equal_grid_corners(c):
    x1, r1, m1, x2, r2, m2 = c
    if r1 + m1 == 0 or r2 + m2 == 0:
        with pytest.raises(InvalidInputError):
            tipping_point(*c, boschloo=False)
        assert "no identified" in manski_bounds(*c).note
        return
    b = manski_bounds(*c)
    tp = tipping_point(*c, boschloo=False)
    lo, hi = b.extra["lower"], b.extra["upper"]
    if r1 and r2:  # property: the bounds contain the complete-case estimate
        assert lo - 1e-12 <= b.estimate <= hi + 1e-12
    # property: the corners of the tipping-point grid are the Manski bounds, and the grid
    # spans exactly the bounds
    assert tp.cell(0, m2)["rd"] == pytest.approx(lo)
    assert tp.cell(m1, 0)["rd"] == pytest.approx(hi)
    assert tp.grid["rd"].min() == pytest.approx(lo)
    assert tp.grid["rd"].max() == pytest.approx(hi)
    assert tp.n_completions == (m1 + 1) * (m2 + 1)


# ------------------------------------------------------------------ tipping point


def test_tipping_grid_shape_and_corners(grid):
    assert grid.n_completions == 27 * 25 == 675
    assert grid.grid.height == 675
    assert grid.cell(0, 24)["rd"] == pytest.approx(grid.manski.extra["lower"])
    assert grid.cell(26, 0)["rd"] == pytest.approx(grid.manski.extra["upper"])
    assert grid.observed.estimate == pytest.approx(4 / 20 - 2 / 15)


def test_tipping_fisher_equals_scipy_on_every_cell(grid):
    # reference: scipy.stats.fisher_exact (two-sided), run live, scipy >= 1.13
    for row in grid.grid.iter_rows(named=True):
        ref = fisher_exact([[row["x1"], row["n1"] - row["x1"]],
                            [row["x2"], row["n2"] - row["x2"]]]).pvalue
        assert row["p_fisher"] == pytest.approx(ref, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("k1,k2", [(0, 0), (0, 24), (26, 0), (5, 3), (13, 12), (1, 8),
                                   (20, 2), (26, 24)])
def test_tipping_boschloo_equals_scipy(grid, k1, k2):
    # reference: scipy.stats.boschloo_exact (two-sided; scipy's samples are the COLUMNS),
    # run live; scipy's shgo optimiser and natexp's grid search agree to ~1e-12 here
    row = grid.cell(k1, k2)
    ref = boschloo_exact([[row["x1"], row["x2"]], [row["n1"] - row["x1"],
                                                   row["n2"] - row["x2"]]]).pvalue
    assert row["p_boschloo"] == pytest.approx(ref, rel=1e-7)


def test_tipping_sign_flip_and_significance_flags(grid):
    g = grid.grid
    # the completed RD decreases in k2 and increases in k1 (exact integer sign check)
    assert (g["sign"] == np.sign(g["x1"] * g["n2"] - g["x2"] * g["n1"])).all()
    assert (g["flipped"] == (g["sign"] != 1)).all()  # the observed difference is positive
    assert (g["sig_fisher"] == (g["p_fisher"] < 0.05)).all()
    # frontier: per k1, flipping starts at the first k2 with a non-positive difference
    for row in grid.frontier.iter_rows(named=True):
        sub = g.filter(pl.col("k1") == row["k1"])
        first = sub.filter(pl.col("rd") <= 1e-15)["k2"].min()
        assert row["flip_k2_min"] == first
    # with no uptake among the 26 unreached treated families, 2 of the 24 unreached control
    # families with uptake are enough to make the difference zero or negative:
    # 4/46 - 4/39 < 0 while 4/46 - 3/39 > 0
    assert grid.frontier.filter(pl.col("k1") == 0)["flip_k2_min"].item() == 2
    s = grid.counts_summary()
    assert s["flipped"] == int(g["flipped"].sum())
    assert s["significant_fisher"] == s["significant_fisher_same_sign"] + \
        s["significant_fisher_opposite_sign"]


def test_tipping_container_serialises(grid):
    d = grid.to_dict()
    json.dumps(d)
    assert len(d["grid"]["rd"]) == 675
    assert d["mar_cell"]["k1"] == 5 and d["mar_cell"]["k2"] == 3  # 26*4/20 = 5.2, 24*2/15 = 3.2
    assert "675 completions" in grid.summary()
    assert "<table>" in grid._repr_html_()
    assert grid.to_polars().height == 675


def test_tipping_invalid_input_raises():
    with pytest.raises(InvalidInputError):
        tipping_point(5, 4, 1, 0, 3, 1)  # x1 > r1
    with pytest.raises(InvalidInputError):
        tipping_point(1.5, 4, 1, 0, 3, 1)
    with pytest.raises(InvalidInputError):
        tipping_point(1, 4, -1, 0, 3, 1)
    with pytest.raises(InvalidInputError):
        tipping_point(*PUBLISHED, confidence_level=1.5)


def test_tipping_nobody_reached_in_an_arm_notes_it():
    tp = tipping_point(0, 0, 3, 1, 4, 2)
    assert math.isnan(tp.observed.estimate)
    assert "nobody reached" in tp.observed.note
    assert tp.n_completions == 12


# ------------------------------------------------------------------ E-values: risk ratio


def test_evalue_annals_worked_example():
    # VanderWeele & Ding (2017), Ann Intern Med 167:268, breastfeeding example:
    # RR 3.9 (95% CI 1.8 to 8.7) -> E-value 7.26 for the estimate and 3.0 for the lower limit
    e = evalue_rr(3.9, 1.8, 8.7)
    assert round(e.estimate, 2) == 7.26
    assert round(e.extra["evalue_ci"], 2) == 3.0
    assert e.extra["ci_limit"] == "lower"


def test_evalue_annals_further_example_preventive():
    # VanderWeele & Ding (2017), "further examples": RR 0.80 (0.71 to 0.91) -> 1.81 and 1.43;
    # EValue testthat "Annals, Further Examples #1" (1/0.8 + sqrt(1/0.8 * (1/0.8 - 1)), ...)
    e = evalue_rr(0.80, 0.71, 0.91)
    assert round(e.estimate, 2) == 1.81
    assert round(e.extra["evalue_ci"], 2) == 1.43
    assert e.extra["ci_limit"] == "upper"
    assert e.estimate == pytest.approx(1 / 0.8 + math.sqrt(1 / 0.8 * (1 / 0.8 - 1)))


# R package EValue, tests/testthat/testthat.R (mayamathur/evalue_package), section
# "EVALUE: VARIOUS TRUE VALUES": (est, lo, hi, true) -> expected E for the point and for the
# reported limit, written as the test file writes them.
def _rat(r):
    return r + math.sqrt(r * (r - 1))


EVALUE_TRUE_CASES = [
    # causative
    ((1.3, 1.1, 1.4, 1.05), (1.3 + math.sqrt(1.3 * (1.3 - 1.05))) / 1.05,
     (1.1 + math.sqrt(1.1 * (1.1 - 1.05))) / 1.05),
    ((1.3, 1.1, 1.4, 1.1), (1.3 + math.sqrt(1.3 * (1.3 - 1.1))) / 1.1, 1.0),
    ((1.3, 1.1, 1.4, 1.2), (1.3 + math.sqrt(1.3 * (1.3 - 1.2))) / 1.2, 1.0),
    ((1.3, 1.1, 1.4, 1.35), _rat(1.35 / 1.3), 1.0),
    ((1.3, 1.1, 1.4, 1.4), _rat(1.4 / 1.3), 1.0),
    ((1.3, 1.1, 1.4, 1.5), _rat(1.5 / 1.3), _rat(1.5 / 1.4)),
    # preventive
    ((0.6, 0.5, 0.7, 0.4), _rat(0.6 / 0.4), _rat(0.5 / 0.4)),
    ((0.6, 0.5, 0.7, 0.5), _rat(0.6 / 0.5), 1.0),
    ((0.6, 0.5, 0.7, 0.55), _rat(0.6 / 0.55), 1.0),
    ((0.6, 0.5, 0.7, 0.65), (1 / 0.6 + math.sqrt((1 / 0.6) * (1 / 0.6 - 1 / 0.65))) / (1 / 0.65),
     1.0),
    ((0.6, 0.5, 0.7, 0.7), (1 / 0.6 + math.sqrt((1 / 0.6) * (1 / 0.6 - 1 / 0.7))) / (1 / 0.7),
     1.0),
    ((0.6, 0.5, 0.7, 0.75),
     (1 / 0.6 + math.sqrt((1 / 0.6) * (1 / 0.6 - 1 / 0.75))) / (1 / 0.75),
     (1 / 0.7 + math.sqrt((1 / 0.7) * (1 / 0.7 - 1 / 0.75))) / (1 / 0.75)),
]


@pytest.mark.parametrize("args,e_point,e_ci", EVALUE_TRUE_CASES)
def test_evalue_rr_matches_evalue_package_tests(args, e_point, e_ci):
    est, lo, hi, true = args
    e = evalue_rr(est, lo, hi, true=true)
    assert e.estimate == pytest.approx(e_point, rel=1e-12)
    assert e.extra["evalue_ci"] == pytest.approx(e_ci, rel=1e-12)


def test_evalue_rr_matches_dowhy_port_of_evalue():
    # reference: DoWhy 0.14's EValueSensitivityAnalyzer._evalue_RR (a port of R's EValue),
    # run live over a sweep of estimates and intervals
    import sys

    hook = sys.displayhook  # importing dowhy calls sympy.init_printing(), which replaces it
    try:
        from dowhy.causal_refuters.evalue_sensitivity_analyzer import EValueSensitivityAnalyzer
    finally:
        sys.displayhook = hook

    ref = object.__new__(EValueSensitivityAnalyzer)
    ref.logger = logging.getLogger("test")
    for est, lo, hi in [(3.9, 1.8, 8.7), (0.8, 0.71, 0.91), (1.5, 0.31, 7.2), (2.0, 1.0, 4.0),
                        (0.5, 0.2, 1.3), (10.7, 8.0, 14.4), (1.01, 1.001, 1.02)]:
        mine = evalue_rr(est, lo, hi)
        theirs = ref._evalue_RR(est, lo, hi)
        assert mine.estimate == pytest.approx(float(theirs["evalue_estimate"]), rel=1e-12)
        limit = theirs["evalue_lower_ci"] if est > 1 else theirs["evalue_upper_ci"]
        assert mine.extra["evalue_ci"] == pytest.approx(float(limit), rel=1e-12)


def test_evalue_rr_point_only_and_degenerate():
    e = evalue_rr(1 / 0.8)  # EValue's documented symmetry: same E-value as RR 0.8
    assert e.estimate == pytest.approx(evalue_rr(0.8).estimate)
    assert math.isnan(e.extra["evalue_ci"])
    assert evalue_rr(1.1, true=1.1).estimate == pytest.approx(1.0)  # EValue: true = est -> 1
    assert "NaN" in evalue_rr(math.nan).note
    assert math.isinf(evalue_rr(0.0).estimate)
    # EValue testthat "Point estimate not inside CI" and "Reject negative outcomes"
    for bad in [(1.2, 1.3, 1.4), (1.5, 1.3, 1.4), (0.6, 0.7, 1.1), (0.8, 0.3, 0.7)]:
        with pytest.raises(InvalidInputError, match="inside"):
            evalue_rr(*bad)
    with pytest.raises(InvalidInputError):
        evalue_rr(-0.1)
    with pytest.raises(InvalidInputError):
        evalue_rr(2.0, 3.0, 1.0)


# ------------------------------------------------------------------ E-values: risk difference


def _threshold(x):  # EValue::threshold with true = 1, as the package's tests use it
    x = 1 / x if x <= 1 else x
    return x + math.sqrt(x * (x - 1))


def _bias_factor(n11, n10, n01, n00, true=0.0):
    # the expression of EValue testthat "Peng's risk difference example"
    f = (n11 + n10) / (n11 + n10 + n01 + n00)
    p1, p0 = n11 / (n11 + n10), n01 / (n01 + n00)
    diff = p0 * (1 - f) - p1 * f
    return (math.sqrt((true + diff) ** 2 + 4 * p1 * p0 * f * (1 - f)) - (true + diff)) / (
        2 * p0 * f)


# R EValue 4.1.3 (github:cran/EValue, R/EValue.R + R/effect_measures.R, sourced in R 4.2):
#   print(evalues.OR(0.86, 0.75, 0.99, rare = FALSE), digits = 10)   # the package's example
#   -> RR 0.9273618 0.8660254 0.9949874; E-values 1.3689529 (point), 1.0761939 (upper)
#   print(evalues.OR(3.9, 1.8, 8.7, rare = FALSE), digits = 10)
#   -> RR 1.974842 1.341641 2.949576; E-values 3.362342 (point), 2.018663 (lower)
#   print(evalues.OR(1.625, 0.2599, 10.16, rare = FALSE), digits = 10)
#   -> E-values 1.866570 (point), 1 (the interval crosses 1)
#   print(evalues.OR(3.9, 1.8, 8.7, rare = TRUE), digits = 10)   -> 7.263034, 3.0
@pytest.mark.parametrize(("args", "rare", "e_point", "e_ci", "rr"), [
    ((0.86, 0.75, 0.99), False, 1.3689529, 1.0761939, 0.9273618),
    ((3.9, 1.8, 8.7), False, 3.362342, 2.018663, 1.974842),
    ((1.625, 0.2599, 10.16), False, 1.866570, 1.0, 1.274755),
    ((3.9, 1.8, 8.7), True, 7.263034, 3.0, 3.9),
])
def test_evalue_or_matches_evalue_package(args, rare, e_point, e_ci, rr):
    e = evalue_or(*args, rare=rare)
    assert e.method == "evalue.odds_ratio"
    assert e.estimate == pytest.approx(e_point, abs=1e-6)
    assert e.extra["evalue_ci"] == pytest.approx(e_ci, abs=1e-6)
    assert e.extra["rr"] == pytest.approx(rr, abs=1e-6)
    assert e.extra["rare"] is rare


def test_evalue_or_square_root_is_vanderweele_ding_table_2():
    """VanderWeele & Ding (2017) Table 2: a common outcome's OR becomes RR ~ sqrt(OR), and the
    E-value is then RR + sqrt(RR (RR - 1)); checked against evalue_rr on sqrt(OR) by hand."""
    for or_ in (0.2, 0.5, 1.7, 4.0, 25.0):
        rr = math.sqrt(or_)
        rr = max(rr, 1 / rr)
        assert evalue_or(or_).estimate == pytest.approx(rr + math.sqrt(rr * (rr - 1)))
    assert evalue_or(1.0).estimate == pytest.approx(1.0)
    assert math.isinf(evalue_or(0.0).estimate)
    with pytest.raises(InvalidInputError):
        evalue_or(-1.0)
    with pytest.raises(InvalidInputError):
        evalue_or(2.0, 2.5, 3.0)  # estimate outside its interval


def test_evalues_2x2_odds_ratio_on_request():
    ev = evalues_2x2(4, 20, 2, 15)
    assert set(ev) == {"risk_ratio", "risk_difference"}
    ev = evalues_2x2(4, 20, 2, 15, odds_ratio=True)
    # sample OR (4 * 13) / (16 * 2) = 1.625: evalues.OR(1.625, ..., rare = FALSE) gives 1.866570
    # for the estimate (above); the Woolf interval is scipy's sample odds-ratio interval
    from scipy.stats.contingency import odds_ratio

    woolf = odds_ratio([[4, 16], [2, 13]], kind="sample").confidence_interval(0.95)
    assert ev["odds_ratio"].estimate == pytest.approx(1.866570, abs=1e-6)
    assert ev["odds_ratio"].extra["or_ci"] == pytest.approx((woolf.low, woolf.high), rel=1e-9)
    assert ev["odds_ratio"].extra["evalue_ci"] == 1.0
    assert "zero cell" in evalues_2x2(0, 20, 2, 15, odds_ratio=True)["odds_ratio"].note


def test_evalue_rd_hammond_holl():
    # EValue testthat "Peng's risk difference example": evalues.RD(397, 78557, 51, 108778)
    # gives est.Evalue = threshold(B) and lower.Evalue = 15.95703 (tolerance 0.001)
    e = evalue_rd(397, 397 + 78557, 51, 51 + 108778)
    assert e.estimate == pytest.approx(_threshold(_bias_factor(397, 78557, 51, 108778)),
                                       rel=1e-3)
    assert e.extra["evalue_ci"] == pytest.approx(15.95703, rel=1e-3)


def test_evalue_rd_exact_root_is_just_below_the_grid_value():
    # the grid (R's default 1e-4) finds the first bias factor at or past the root
    grid = evalue_rd(397, 78954, 51, 108829)
    root = evalue_rd(397, 78954, 51, 108829, grid=None)
    assert root.extra["evalue_ci"] <= grid.extra["evalue_ci"]
    assert root.extra["evalue_ci"] == pytest.approx(15.95703, rel=1e-3)


def test_evalue_rd_crossing_null_and_true_zero():
    # EValue testthat "RD that crosses null": evalues.RD(55, 108778, 51, 108778) -> lower 1
    e = evalue_rd(55, 55 + 108778, 51, 51 + 108778)
    assert e.extra["evalue_ci"] == 1.0
    assert e.estimate == pytest.approx(_threshold(_bias_factor(55, 108778, 51, 108778)),
                                       rel=1e-3)
    # EValue testthat "True RD = 0 should have E = observed RR" (Ding & VanderWeele 2016,
    # p. 376): evalues.RD(100, 200, 50, 200, true = 0) -> threshold((100/300) / (50/250))
    e = evalue_rd(100, 300, 50, 250)
    assert e.estimate == pytest.approx(_threshold((100 / 300) / (50 / 250)), rel=1e-3)
    # EValue testthat "Do not allow true > observed for RD"
    with pytest.raises(InvalidInputError):
        evalue_rd(100, 300, 50, 250, true=0.8)


def test_evalue_rd_negative_difference_is_relabelled_and_degenerate_cases():
    a = evalue_rd(2, 15, 4, 20)
    b = evalue_rd(4, 20, 2, 15)
    assert a.extra["relabelled"] and not b.extra["relabelled"]
    assert a.estimate == pytest.approx(b.estimate)
    assert "swapped" in a.note
    assert evalue_rd(3, 10, 3, 10).estimate == 1.0
    assert math.isinf(evalue_rd(3, 10, 0, 10).estimate)
    assert math.isnan(evalue_rd(0, 0, 1, 4).estimate)
    with pytest.raises(InvalidInputError):
        evalue_rd(5, 4, 1, 4)


def test_evalues_2x2_uses_scipy_katz_interval():
    ev = evalues_2x2(4, 20, 2, 15)
    rr = ev["risk_ratio"]
    # reference: scipy.stats.contingency.relative_risk (Katz log interval, as EValue's
    # twoXtwoRR), run live
    from scipy.stats.contingency import relative_risk

    ci = relative_risk(4, 20, 2, 15).confidence_interval(0.95)
    assert rr.extra["rr"] == pytest.approx(1.5)
    assert rr.extra["rr_ci"] == pytest.approx((ci.low, ci.high))
    assert rr.estimate == pytest.approx(1.5 + math.sqrt(1.5 * 0.5))  # VanderWeele & Ding
    assert rr.extra["evalue_ci"] == 1.0  # the interval contains 1
    # Ding & VanderWeele 2016 p. 376: at true RD = 0 the bias factor is the observed RR
    assert ev["risk_difference"].extra["bias_factor"] == pytest.approx(1.5)


# ------------------------------------------------------------------ leave one area out


def test_leave_one_area_out_default(cohort):
    t = leave_one_area_out(cohort, outcome="chas_support")
    assert isinstance(t, SensitivityTable)
    f = t.frame
    assert f.height == 14 and f["dropped_area"][0] is None
    assert f.row(0, named=True)["x1"] == 4 and f.row(0, named=True)["n2"] == 15
    # every reached family is dropped exactly once
    assert f["dropped_treatment"].sum() == 20 and f["dropped_control"].sum() == 15
    # Newcombe hybrid score interval: reference statsmodels confint_proportions_2indep
    # (method="newcomb"), run live
    for row in f.iter_rows(named=True):
        lo, hi = confint_proportions_2indep(row["x1"], row["n1"], row["x2"], row["n2"],
                                            method="newcomb", compare="diff")
        assert (row["newcombe_low"], row["newcombe_high"]) == pytest.approx((lo, hi), abs=1e-9)
        ref = boschloo_exact([[row["x1"], row["x2"]],
                              [row["n1"] - row["x1"], row["n2"] - row["x2"]]]).pvalue
        assert row["p_boschloo"] == pytest.approx(ref, rel=1e-7)
        assert row["exact_low"] <= row["rd"] <= row["exact_high"]
    json.dumps(t.to_dict())
    assert "Leave one area out" in t.summary()


def test_leave_out_an_area_without_families_changes_nothing():
    # property: an area in the schedule with no families gives exactly the full estimate
    fam, _ = generate()
    areas = load_rollout().to_dicts()
    schedule = rollout_frame(
        [{"name": a["area"], "county": a["county"], "go_live": a["go_live"],
          "phase": a["phase"]} for a in areas]
        + [{"name": "Nowhere", "county": "Berkshire", "go_live": None, "phase": 6}])
    t = leave_one_area_out(build_cohort(fam.lazy(), schedule, Design(treatment_counties=("Oxfordshire",))),
                           outcome="chas_support")
    full = t.frame.row(0, named=True)
    empty = t.frame.filter(pl.col("dropped_area") == "Nowhere").row(0, named=True)
    for col in ("x1", "n1", "x2", "n2", "rd", "newcombe_low", "newcombe_high", "exact_low",
                "exact_high", "p_boschloo"):
        assert empty[col] == full[col]
    assert empty["rd_change"] == 0.0
    assert "Nowhere" in " ".join(t.notes)


def test_leave_one_area_out_among_identified(cohort):
    t = leave_one_area_out(cohort, among=None, outcome="chas_support")
    full = t.frame.row(0, named=True)
    assert (full["x1"], full["n1"], full["x2"], full["n2"]) == (8, 46, 2, 39)


def test_result_objects_are_results(grid):
    assert isinstance(grid.observed, Result) and isinstance(grid.manski, Result)
    assert scipy.__version__  # the live references above ran against this scipy


def test_leave_one_area_out_empty_arm_is_noted():
    # degenerate: every control family lives in one area; dropping it empties the control arm
    fam, _ = generate()
    c = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    only = c.members.filter(pl.col("arm") == "control").select("area").collect()["area"][0]
    sub = fam.filter(~pl.col("area").is_in(
        c.members.filter(pl.col("arm") == "control").select("area").collect()["area"]
        .unique().to_list()) | (pl.col("area") == only))
    t = leave_one_area_out(build_cohort(sub.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",))),
                           among=None, outcome="chas_support")
    row = t.frame.filter(pl.col("dropped_area") == only).row(0, named=True)
    assert row["n2"] == 0 and math.isnan(row["rd"]) and math.isnan(row["newcombe_low"])
    assert "empty" in row["note"]
