"""Intervals for RD, RR and OR against published values.

Sources (each value below names one of these):

- [FLL2015] Fagerland, Lydersen & Laake (2015), "Recommended confidence intervals for two
  independent binomial proportions", Stat Methods Med Res 24:224-254, Table 6 (Perondi et al.
  2004, 7/34 vs 1/34), two significant digits, as transcribed in statsmodels
  ``statsmodels/stats/tests/test_proportion.py::test_confint_2indep``.
- [CT-ch4] R package contingencytables (Fagerland, Lydersen & Laake 2017, *Statistical
  Analysis of Contingency Tables*, ch. 4), ``tests/testthat/test-ch4.R`` (GitHub
  ocbe-uio/contingencytables, commit 677d664b), 4 decimals.
- [PropCIs] R package PropCIs outputs quoted in statsmodels
  ``test_proportion.py::test_confint_2indep_propcis`` (diffscoreci, riskscoreci, wald2ci).
- [N1998] Newcombe (1998), Stat Med 17:873-890, Table II, as encoded in the R package
  DescTools ``tests/misc.R`` (cran/DescTools; ``BinomDiffCI`` methods "wald", "mn", "score",
  "ac"), 4 decimals.
- [E2x2] R package exact2x2 vignette ``inst/doc/exact2x2.tex`` (cran/exact2x2) and
  ``man/exact2x2.Rd`` examples.
"""

from __future__ import annotations

import math

import pytest

from natexp.causal.intervals import (
    ODDS_RATIO_METHODS,
    RISK_DIFFERENCE_METHODS,
    RISK_RATIO_METHODS,
    minlike_confidence_set,
    odds_ratio_ci,
    risk_difference_ci,
    risk_ratio_ci,
)
from natexp.causal.result import InvalidInputError, Result

PERONDI = (7, 34, 1, 34)  # high vs standard dose epinephrine, survival (Perondi et al. 2004)
RITLAND = (0, 16, 15, 72)  # CHRNA4 genotype and XFS (Ritland et al. 2007)


def _close(ci, ref, abs_tol):
    assert ci[0] == pytest.approx(ref[0], abs=abs_tol)
    assert ci[1] == pytest.approx(ref[1], abs=abs_tol)


# ----------------------------------------------------------------- risk difference
@pytest.mark.parametrize(
    ("method", "ref"),
    [
        ("wald", (0.0292, 0.3238)),  # [CT-ch4] Wald_CI_2x2(perondi)
        ("agresti_caffo", (0.0116, 0.3217)),  # [CT-ch4] AgrestiCaffo_CI_2x2(perondi)
        ("newcombe", (0.0189, 0.3404)),  # [CT-ch4] Newcombe_hybrid_score_CI_2x2(perondi)
    ],
)
def test_rd_perondi_contingencytables(method, ref):
    r = risk_difference_ci(*PERONDI, method=method)
    assert r.method == f"risk_difference.{method}"
    assert r.estimate == pytest.approx(0.1765, abs=5e-5)  # [CT-ch4] estimate = 0.1765
    _close(r.ci, ref, 5e-5)


def test_rd_perondi_propcis():
    # [PropCIs] diffscoreci(7, 34, 1, 34, 0.95) = 0.0270416, 0.3452912 (Miettinen-Nurminen);
    # wald2ci(..., adjust="AC") = 0.01161167, 0.32172166; adjust="Wald" = 0.02916942, 0.32377176
    _close(risk_difference_ci(*PERONDI, method="miettinen_nurminen").ci,
           (0.0270416, 0.3452912), 1e-6)
    _close(risk_difference_ci(*PERONDI, method="agresti_caffo").ci, (0.01161167, 0.32172166), 1e-7)
    _close(risk_difference_ci(*PERONDI, method="wald").ci, (0.02916942, 0.32377176), 1e-7)


def test_rd_mn_ritland_zero_cell():
    # [CT-ch4] MiettinenNurminen_asymptotic_score_CI_difference_2x2(ritland):
    # estimate = -0.2083 (95% CI -0.3164 to -0.0056)
    r = risk_difference_ci(*RITLAND, method="miettinen_nurminen")
    assert r.estimate == pytest.approx(-0.2083, abs=5e-5)
    _close(r.ci, (-0.3164, -0.0056), 5e-5)


# [N1998] Table II as in DescTools tests/misc.R: method -> (lower, upper), 4 decimals
NEWCOMBE_TABLE_II = {
    (56, 70, 48, 80): {"wald": (0.0575, 0.3425), "miettinen_nurminen": (0.0528, 0.3382),
                       "newcombe": (0.0524, 0.3339), "agresti_caffo": (0.0525, 0.3358)},
    (9, 10, 3, 10): {"wald": (0.2605, 0.9395), "miettinen_nurminen": (0.1700, 0.8406),
                     "newcombe": (0.1705, 0.8090), "agresti_caffo": (0.1600, 0.8400)},
    (10, 10, 0, 20): {"wald": (1.0, 1.0), "miettinen_nurminen": (0.7156, 1.0),
                      "newcombe": (0.6791, 1.0), "agresti_caffo": (0.6922, 1.0)},
    (84, 101, 89, 105): {"wald": (-0.1162, 0.0843), "miettinen_nurminen": (-0.1191, 0.0860),
                         "newcombe": (-0.1177, 0.0851), "agresti_caffo": (-0.1168, 0.0850)},
}


@pytest.mark.parametrize("table", list(NEWCOMBE_TABLE_II))
def test_rd_newcombe_1998_table_ii(table):
    for method, ref in NEWCOMBE_TABLE_II[table].items():
        r = risk_difference_ci(*table, method=method)
        _close(r.ci, ref, 5.1e-5)


def test_rd_wald_collapses_with_a_note():
    # 10/10 vs 0/20: both risks at the boundary, the Wald interval is the point (1, 1) [N1998]
    r = risk_difference_ci(10, 10, 0, 20, method="wald")
    assert r.ci == (1.0, 1.0)
    assert "standard error is 0" in r.note


# -------------------------------------------------------------------------- risk ratio
@pytest.mark.parametrize(
    ("method", "ref"),
    [
        ("katz", (0.9096, 53.8695)),  # [CT-ch4] Katz_log_CI_2x2(perondi)
        ("koopman", (1.2209, 42.5757)),  # [CT-ch4] Koopman_asymptotic_score_CI_2x2(perondi)
        # [CT-ch4] MiettinenNurminen_asymptotic_score_CI_ratio_2x2(perondi)
        ("miettinen_nurminen", (1.2086, 43.0330)),
    ],
)
def test_rr_perondi(method, ref):
    r = risk_ratio_ci(*PERONDI, method=method)
    assert r.estimate == pytest.approx(7.0)
    assert r.ci[0] == pytest.approx(ref[0], abs=5e-5)
    assert r.ci[1] == pytest.approx(ref[1], abs=5e-4)


def test_rr_koopman_propcis():
    # [PropCIs] riskscoreci(7, 34, 1, 34, 0.95) = 1.220853, 42.575718
    _close(risk_ratio_ci(*PERONDI, method="koopman").ci, (1.220853, 42.575718), 1e-5)


def test_rr_katz_matches_scipy_relative_risk():
    # scipy 1.15 scipy.stats.contingency.relative_risk(...).confidence_interval (Katz), live
    from scipy.stats.contingency import relative_risk

    for cl in (0.9, 0.95, 0.99):
        ref = relative_risk(4, 20, 2, 15).confidence_interval(confidence_level=cl)
        _close(risk_ratio_ci(4, 20, 2, 15, method="katz", confidence_level=cl).ci,
               (ref.low, ref.high), 1e-12)


@pytest.mark.parametrize("table", [RITLAND, (15, 72, 0, 16), (0, 5, 5, 5), (1, 2, 0, 1),
                                   (5, 5, 5, 5), (4, 20, 2, 15), PERONDI])
@pytest.mark.parametrize(("method", "mn"), [("koopman", False), ("miettinen_nurminen", True)])
def test_rr_score_limits_solve_statsmodels_score_test(table, method, mn):
    # The interval inverts the score test: at each finite limit, statsmodels 0.15's own score
    # test (score_test_proportions_2indep, compare="ratio"; correction=True is the
    # Miettinen-Nurminen N/(N-1) factor) must give p = 1 - confidence_level. This checks the
    # zero-cell tables too, where statsmodels' interval inversion itself fails (issue 10269).
    import warnings

    from statsmodels.stats.proportion import score_test_proportions_2indep

    r = risk_ratio_ci(*table, method=method, confidence_level=0.9)
    finite = [v for v in r.ci if 0 < v < math.inf]
    assert finite
    for v in finite:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = score_test_proportions_2indep(*table, value=v, compare="ratio",
                                                correction=mn, return_results=True)
        assert res.pvalue == pytest.approx(0.1, abs=1e-7)


def test_rr_zero_cells_give_bounds_and_notes():
    # Fagerland's conventions (contingencytables Koopman_asymptotic_score_CI_2x2.R and
    # Katz_log_CI_2x2.R): x1 = 0 -> lower limit 0; x2 = 0 -> upper limit Inf; both zero ->
    # (0, Inf); Katz with a zero -> the uninformative (0, Inf).
    assert risk_ratio_ci(*RITLAND, method="koopman").ci[0] == 0.0
    assert risk_ratio_ci(15, 72, 0, 16, method="koopman").ci[1] == math.inf
    both = risk_ratio_ci(0, 5, 0, 7, method="miettinen_nurminen")
    assert math.isnan(both.estimate) and both.ci == (0.0, math.inf)
    assert "0/0" in both.note
    katz = risk_ratio_ci(*RITLAND, method="katz")
    assert katz.ci == (0.0, math.inf) and "not computable" in katz.note


def test_rr_inverts_under_group_swap():
    a = risk_ratio_ci(*RITLAND, method="koopman")
    b = risk_ratio_ci(15, 72, 0, 16, method="koopman")
    assert a.ci[1] == pytest.approx(1 / b.ci[0], rel=1e-9)


# -------------------------------------------------------------------------- odds ratio
@pytest.mark.parametrize(
    ("method", "ref", "digits"),
    [
        ("woolf", (0.99, 74), 2),  # [FLL2015] Woolf logit 0.99 74
        ("cornfield_exact", (0.97, 397), 2),  # [FLL2015] Cornfield exact conditional 0.97 397
        ("cornfield_midp", (1.19, 200), 2),  # [FLL2015] Cornfield mid-p 1.19 200
        ("baptista_pike", (1.00, 195), 2),  # [FLL2015] Baptista-Pike exact conditional 1.00 195
    ],
)
def test_or_perondi_fll2015(method, ref, digits):
    r = odds_ratio_ci(*PERONDI, method=method)
    assert r.estimate == pytest.approx(7 * 33 / 27)
    assert round(r.ci[0], digits) == ref[0]
    assert round(r.ci[1]) == ref[1]


def test_or_cornfield_midp_tea_contingencytables():
    # [CT-ch4] Cornfield_midP_CI_2x2(rbind(c(3,1), c(1,3))): 9.0000 (95% CI 0.3101 to 308.5568)
    r = odds_ratio_ci(3, 4, 1, 4, method="cornfield_midp")
    assert r.estimate == 9.0
    assert r.ci[0] == pytest.approx(0.3101, abs=5e-5)
    assert r.ci[1] == pytest.approx(308.5568, abs=5e-4)


def test_or_exact2x2_vignette_minlike_and_central():
    # [E2x2] exact2x2.tex: x = matrix(c(6, 12, 12, 5), 2, 2) (group A 6/18, group B 12/17).
    # exact2x2(x, tsmethod="minlike"): 95% CI 0.0435 0.9170. exact2x2CI() rounds to 4
    # decimals the lower end of a bracket of width tol = 1e-5 around the limit, so the printed
    # 0.0435 means the true lower limit lies in [0.04345, 0.04355 + 1e-5).
    # fisher.test / exact2x2(tsmethod="central"): 0.03888003 1.05649145.
    bp = odds_ratio_ci(6, 18, 12, 17, method="baptista_pike")
    assert 0.04345 <= bp.ci[0] < 0.04356
    assert bp.ci[1] == pytest.approx(0.9170, abs=5e-5)
    cf = odds_ratio_ci(6, 18, 12, 17, method="cornfield_exact")
    _close(cf.ci, (0.03888003, 1.05649145), 2e-6)


def test_or_cornfield_exact_is_scipy_conditional_ci():
    # scipy 1.15 scipy.stats.contingency.odds_ratio(kind="conditional"), live, both sides
    from scipy.stats.contingency import odds_ratio

    for alt in ("two-sided", "less", "greater"):
        ref = odds_ratio([[4, 16], [2, 13]]).confidence_interval(0.9, alternative=alt)
        r = odds_ratio_ci(4, 20, 2, 15, method="cornfield_exact", confidence_level=0.9,
                          alternative=alt)
        assert r.ci == (ref.low, ref.high)


def test_or_woolf_zero_cell_and_statsmodels():
    # [CT-ch4] Woolf_logit_CI_2x2(ritland): estimate = 0.0000 (95% CI 0.0000 to Inf)
    r = odds_ratio_ci(*RITLAND, method="woolf")
    assert r.estimate == 0.0 and r.ci == (0.0, math.inf) and r.note


def test_minlike_set_has_holes_exact2x2_example2():
    # [E2x2] man/exact2x2.Rd, example 2: matrix(c(7,255,30,464),2,2), i.e. 7/37 vs 255/719:
    # fisher.test rejects at 5% but the minlike interval contains 1, "because of the holes in
    # the confidence set".
    from scipy.stats import fisher_exact

    p = fisher_exact([[7, 30], [255, 464]]).pvalue
    assert p < 0.05
    pieces = minlike_confidence_set(7, 37, 255, 719)
    assert len(pieces) > 1
    assert not any(lo <= 1 <= hi for lo, hi in pieces)
    r = odds_ratio_ci(7, 37, 255, 719, method="baptista_pike")
    assert r.ci[0] < 1 < r.ci[1]
    assert "holes" in r.note
    assert len(r.extra["confidence_set"]) == len(pieces)


def test_minlike_set_boundaries_have_p_equal_alpha():
    # At each finite end of a piece the minimum-likelihood p-value, computed independently with
    # scipy.stats.nchypergeom_fisher (scipy 1.15), equals 1 - confidence_level from one side.
    import numpy as np
    from scipy.stats import nchypergeom_fisher

    x1, n1, x2, n2 = 6, 18, 12, 17
    support = np.arange(0, 19)

    def p(psi):
        f = nchypergeom_fisher.pmf(support, n1 + n2, n1, x1 + x2, psi)
        return f[f <= f[x1] * (1 + 1e-7)].sum()

    for lo, hi in minlike_confidence_set(x1, n1, x2, n2, confidence_level=0.9):
        for end in (lo, hi):
            if 0 < end < math.inf:
                near = [p(end * (1 - 1e-9)), p(end * (1 + 1e-9))]
                assert min(abs(v - 0.1) for v in near) < 1e-6


@pytest.mark.parametrize(("table", "cl"), [((7, 37, 255, 719), 0.95), ((0, 3, 3, 6), 0.5357),
                                         ((6, 18, 12, 17), 0.9), ((1, 8, 5, 12), 0.95)])
def test_minlike_set_agrees_with_a_dense_scan(table, cl):
    # Independent brute force: the minimum-likelihood p-value from
    # scipy.stats.nchypergeom_fisher (scipy 1.15) on 4001 log-spaced odds ratios; membership
    # must agree with the computed pieces away from their ends.
    import numpy as np
    from scipy.stats import nchypergeom_fisher

    x1, n1, x2, n2 = table
    m = x1 + x2
    support = np.arange(max(0, m - n2), min(n1, m) + 1)
    pieces = minlike_confidence_set(*table, confidence_level=cl)
    for psi in np.exp(np.linspace(-8, 8, 4001)):
        f = nchypergeom_fisher.pmf(support, n1 + n2, n1, m, psi)
        p = f[f <= f[support == x1][0] * (1 + 1e-7)].sum()
        near_end = any(abs(math.log(psi) - math.log(e)) < 1e-5
                       for piece in pieces for e in piece if 0 < e < math.inf)
        if not near_end:
            assert (p >= 1 - cl) == any(lo <= psi <= hi for lo, hi in pieces), psi


# -------------------------------------------------------------------- one-sided, general
@pytest.mark.parametrize(
    ("func", "methods", "bounds"),
    [(risk_difference_ci, RISK_DIFFERENCE_METHODS, (-1.0, 1.0)),
     (risk_ratio_ci, RISK_RATIO_METHODS, (0.0, math.inf)),
     (odds_ratio_ci, ODDS_RATIO_METHODS, (0.0, math.inf))],
)
def test_one_sided_bound_is_two_sided_bound_at_2cl_minus_1(func, methods, bounds):
    # Definition used throughout (and by scipy's odds_ratio): a one-sided interval at level cl
    # has the bound of the central two-sided interval at level 2 cl - 1.
    for m in methods:
        two = func(4, 20, 2, 15, method=m, confidence_level=0.9)
        if m == "baptista_pike":  # not central; its one-sided version is Cornfield's
            two = odds_ratio_ci(4, 20, 2, 15, method="cornfield_exact", confidence_level=0.9)
        g = func(4, 20, 2, 15, method=m, confidence_level=0.95, alternative="greater")
        ls = func(4, 20, 2, 15, method=m, confidence_level=0.95, alternative="less")
        assert g.ci[0] == pytest.approx(two.ci[0], rel=1e-9) and g.ci[1] == bounds[1]
        assert ls.ci[1] == pytest.approx(two.ci[1], rel=1e-9) and ls.ci[0] == bounds[0]
        assert g.alternative == "greater"


@pytest.mark.parametrize("func", [risk_difference_ci, risk_ratio_ci, odds_ratio_ci])
@pytest.mark.parametrize("bad", [(2.9, 20, 2, 15), (-1, 20, 2, 15), (21, 20, 2, 15),
                                 (True, 20, 2, 15), ("4", 20, 2, 15)])
def test_invalid_counts_raise(func, bad):
    with pytest.raises(InvalidInputError):
        func(*bad)


@pytest.mark.parametrize("func", [risk_difference_ci, risk_ratio_ci, odds_ratio_ci])
def test_invalid_options_raise(func):
    with pytest.raises(InvalidInputError):
        func(4, 20, 2, 15, confidence_level=1.0)
    with pytest.raises(InvalidInputError):
        func(4, 20, 2, 15, confidence_level=True)
    with pytest.raises(InvalidInputError):
        func(4, 20, 2, 15, alternative="two.sided")
    with pytest.raises(InvalidInputError):
        func(4, 20, 2, 15, method="nope")
    with pytest.raises(InvalidInputError):  # one-sided bound = two-sided bound at 2 cl - 1
        func(4, 20, 2, 15, confidence_level=0.5, alternative="less")


@pytest.mark.parametrize("table", [(0, 0, 3, 5), (0, 10, 0, 10), (10, 10, 5, 5), (0, 1, 1, 1)])
def test_degenerate_tables_return_results_with_notes(table):
    for func, methods in ((risk_difference_ci, RISK_DIFFERENCE_METHODS),
                          (risk_ratio_ci, RISK_RATIO_METHODS),
                          (odds_ratio_ci, ODDS_RATIO_METHODS)):
        for m in methods:
            r = func(*table, method=m)
            assert isinstance(r, Result)
            if any(math.isnan(v) for v in (r.estimate, *r.ci)):
                assert r.note, (table, m)


def test_float_counts_with_integral_values_are_accepted():
    assert risk_ratio_ci(4.0, 20.0, 2, 15).ci == risk_ratio_ci(4, 20, 2, 15).ci
