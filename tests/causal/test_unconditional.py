"""Tests of natexp.causal.unconditional against outside references.

References used (each cited next to its values):

* scipy 1.15 ``scipy.stats.barnard_exact`` / ``boschloo_exact`` (run live, ``n=200``) and
  ``fisher_exact``, ``binom``, ``hypergeom``;
* SAS 9.4 PROC FREQ and StatXact 11 values recorded in R package exact2x2 (Fay and Hunsberger),
  files ``inst/slowTests/test_SAS.R`` and ``inst/slowTests/test_StatXact.R`` (exact2x2 1.6.x,
  github.com/cran/exact2x2), and exact2x2's own ``uncondExact2x2`` output recorded there;
* R package contingencytables (Fagerland, Lydersen and Laake 2017, ch. 4),
  ``tests/testthat/test-ch4.R`` (github.com/ocbe-uio/contingencytables);
* independent brute force written here: statistics in exact rational arithmetic
  (``fractions.Fraction``, so ties are exact) and the tail probability maximised on a 20,001-point
  grid in pi refined by a 4,001-point grid around the best grid points (``scipy.stats.binom``).

Orientation: natexp's group 1 is x1/n1. exact2x2's ``uncondExact2x2(x1, n1, x2, n2)`` and
``boschloo`` use p2 - p1 and p2 / p1 with "greater" meaning p2 > p1, so exact2x2's (a, b, c, d) is
natexp's (c, d, a, b). scipy's samples are the table's columns: [[x1, x2], [n1 - x1, n2 - x2]].
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import barnard_exact, binom, boschloo_exact, fisher_exact, hypergeom

from natexp.causal import unconditional as U
from natexp.causal.result import InvalidInputError
from natexp.causal.unconditional import (
    barnard,
    boschloo,
    exact_unconditional_ci,
    exact_unconditional_test,
    pvalues_all_tables,
)

ALTS = ("two-sided", "less", "greater")


def scipy_table(x1, n1, x2, n2):
    return [[x1, x2], [n1 - x1, n2 - x2]]


# ------------------------------------------------------------------------------------------
# independent brute force (exact ties, fine grids)
# ------------------------------------------------------------------------------------------


def _signed_z2(a, n1, b, n2, pooled):
    """sign(p1 - p2) * Z^2 in exact rational arithmetic (infinite Z as a huge number)."""
    p1, p2 = Fraction(a, n1), Fraction(b, n2)
    if p1 == p2:
        return Fraction(0)
    if pooled:
        p = Fraction(a + b, n1 + n2)
        var = p * (1 - p) * (Fraction(1, n1) + Fraction(1, n2))
    else:
        var = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    sign = 1 if p1 > p2 else -1
    if var == 0:
        return Fraction(sign * 10**12)
    return sign * (p1 - p2) ** 2 / var


def brute_region_barnard(x1, n1, x2, n2, pooled, alternative):
    z = [[_signed_z2(a, n1, b, n2, pooled) for b in range(n2 + 1)] for a in range(n1 + 1)]
    obs = z[x1][x2]
    region = np.zeros((n1 + 1, n2 + 1), dtype=bool)
    for a in range(n1 + 1):
        for b in range(n2 + 1):
            v = z[a][b]
            if alternative == "two-sided":
                region[a, b] = abs(v) >= abs(obs)
            elif alternative == "greater":
                region[a, b] = v >= obs
            else:
                region[a, b] = v <= obs
    return region


def _fisher_exact_p(a, n1, b, n2, side):
    """Fisher's one-sided p-value as an exact Fraction (hypergeometric with math.comb)."""
    m, big_n = a + b, n1 + n2
    ks = range(max(0, m - n2), min(n1, m) + 1)
    keep = [k for k in ks if (k <= a if side == "less" else k >= a)]
    return Fraction(sum(math.comb(n1, k) * math.comb(n2, m - k) for k in keep), math.comb(big_n, m))


def brute_region_boschloo(x1, n1, x2, n2, side):
    fp = [[_fisher_exact_p(a, n1, b, n2, side) for b in range(n2 + 1)] for a in range(n1 + 1)]
    obs = fp[x1][x2]
    return np.array([[fp[a][b] <= obs for b in range(n2 + 1)] for a in range(n1 + 1)])


def brute_sup(region, n1, n2, lo=0.0, hi=1.0, p1_of=lambda t: t):
    """max over t in [lo, hi] of P(region) on a 20,001-point grid, refined around the 5 best."""
    rf = region.astype(float)

    def tail(t):
        b1 = binom.pmf(np.arange(n1 + 1)[None, :], n1, np.clip(p1_of(t), 0, 1)[:, None])
        b2 = binom.pmf(np.arange(n2 + 1)[None, :], n2, t[:, None])
        return np.einsum("gi,ij,gj->g", b1, rf, b2)

    t = np.linspace(lo, hi, 20001)
    v = tail(t)
    best = v.max()
    step = (hi - lo) / 20000
    for k in np.argsort(v)[::-1][:5]:
        tt = np.clip(np.linspace(t[k] - 2 * step, t[k] + 2 * step, 4001), lo, hi)
        best = max(best, tail(tt).max())
    return float(best)


def scipy_p(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shgo's RuntimeWarnings on flat objectives
        return float(fn(*args, **kw).pvalue)


# ------------------------------------------------------------------------------------------
# building blocks against scipy
# ------------------------------------------------------------------------------------------


def test_binomial_pmf_rows_match_scipy():
    p = np.array([0.0, 1e-9, 0.013, 0.5, 0.97, 1.0])
    for n in (1, 7, 60, 1000):
        ours = U._binom_pmf_rows(n, p)
        ref = binom.pmf(np.arange(n + 1)[None, :], n, p[:, None])  # scipy 1.15
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("n1,n2", [(1, 1), (5, 8), (13, 7), (40, 40)])
def test_fisher_p_values_of_every_table_match_scipy(n1, n2):
    two = pvalues_all_tables(n1, n2, test="fisher")
    less = pvalues_all_tables(n1, n2, test="fisher", alternative="less")
    greater = pvalues_all_tables(n1, n2, test="fisher", alternative="greater")
    for a in range(n1 + 1):
        for b in range(n2 + 1):
            rows = [[a, n1 - a], [b, n2 - b]]
            # scipy.stats.fisher_exact 1.15 (rows = groups here); zero margin -> p = 1 in both
            assert two[a, b] == pytest.approx(fisher_exact(rows).pvalue, rel=1e-9, abs=1e-14)
            m = a + b
            # P(X1 <= a | m) and P(X1 >= a | m): scipy.stats.hypergeom
            assert less[a, b] == pytest.approx(hypergeom.cdf(a, n1 + n2, n1, m), rel=1e-9)
            assert greater[a, b] == pytest.approx(hypergeom.sf(a - 1, n1 + n2, n1, m), rel=1e-9)


# ------------------------------------------------------------------------------------------
# Barnard and Boschloo against scipy, with brute force where they differ
# ------------------------------------------------------------------------------------------

SMALL_TABLES = [
    (4, 20, 2, 15), (0, 5, 3, 6), (3, 4, 1, 4), (2, 3, 3, 3), (6, 12, 5, 11), (5, 10, 5, 6),
    (3, 10, 5, 6), (13, 15, 3, 9), (10, 12, 1, 11), (7, 12, 3, 11), (1, 8, 8, 8), (4, 9, 4, 9),
    (0, 6, 0, 4), (7, 7, 0, 9), (2, 11, 9, 13),
]


@pytest.mark.parametrize("table", SMALL_TABLES)
@pytest.mark.parametrize("pooled", [True, False])
def test_barnard_agrees_with_scipy_or_is_the_true_supremum(table, pooled):
    x1, n1, x2, n2 = table
    for alt in ALTS:
        ours = barnard(*table, pooled=pooled, alternative=alt)
        ref = scipy_p(barnard_exact, scipy_table(*table), alternative=alt, pooled=pooled, n=200)
        assert ours.method == ("test.barnard_pooled" if pooled else "test.barnard_unpooled")
        assert ours.pvalue >= ref - 1e-9
        if abs(ours.pvalue - ref) > 1e-6:
            # scipy compares float Z without a tolerance and so drops tables whose Z equals the
            # observed one mathematically; with exact ties the brute force agrees with natexp.
            brute = brute_sup(brute_region_barnard(*table, pooled, alt), n1, n2)
            assert ours.pvalue == pytest.approx(brute, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("table", SMALL_TABLES)
def test_boschloo_agrees_with_scipy_or_is_the_true_supremum(table):
    x1, n1, x2, n2 = table
    for alt in ALTS:
        ours = boschloo(*table, alternative=alt)
        ref = scipy_p(boschloo_exact, scipy_table(*table), alternative=alt, n=200)
        assert ours.method == "test.boschloo"
        assert ours.pvalue >= ref - 1e-9
        if abs(ours.pvalue - ref) > 1e-6:
            sides = ["less", "greater"] if alt == "two-sided" else [alt]
            one = [brute_sup(brute_region_boschloo(*table, s), n1, n2) for s in sides]
            brute = min(1.0, 2 * min(one)) if alt == "two-sided" else one[0]
            assert ours.pvalue == pytest.approx(brute, rel=1e-8, abs=1e-12)


def test_tie_that_scipy_misses_reproduces_sas():
    # 9/11 vs 4/12: Z of table (2, 8) equals the observed Z exactly (checked in rationals).
    z2 = [_signed_z2(a, 11, b, 12, True) for a, b in ((9, 4), (2, 8))]
    assert z2[0] == -z2[1]
    ours = barnard(9, 11, 4, 12).pvalue
    # SAS 9.4 PROC FREQ EXACT BARNARD, two-sided 0.0215 (exact2x2 inst/slowTests/test_SAS.R,
    # uncondExact2x2(4,12,9,11, method="wald-pooled", tsmethod="square"))
    assert round(ours, 4) == 0.0215
    assert scipy_p(barnard_exact, scipy_table(9, 11, 4, 12), n=200) == pytest.approx(
        0.020998, abs=1e-6
    )  # scipy 1.15 drops the tied table


def test_where_scipy_default_optimiser_stops_short():
    # 171/224 vs 1/5, greater: scipy 1.15 barnard_exact with its default n=32 returns 0.0211;
    # with n=200 it finds 0.0428, as do natexp and the brute force.
    table = (171, 224, 1, 5)
    ours = barnard(*table, alternative="greater").pvalue
    short = scipy_p(barnard_exact, scipy_table(*table), alternative="greater")
    assert short < ours - 0.01
    assert ours == pytest.approx(
        scipy_p(barnard_exact, scipy_table(*table), alternative="greater", n=200), abs=1e-8
    )
    brute = brute_sup(brute_region_barnard(*table, True, "greater"), 224, 5)
    assert ours == pytest.approx(brute, rel=1e-8)


def test_published_barnard_and_boschloo_values():
    # SAS 9.4 PROC FREQ EXACT BARNARD (exact2x2 inst/slowTests/test_SAS.R):
    # uncondExact2x2(10,35,24,61, "greater") 0.2142, two-sided 0.4063;
    # uncondExact2x2(4,12,9,11, "greater") 0.0120, two-sided 0.0215.
    assert round(barnard(24, 61, 10, 35, alternative="greater").pvalue, 4) == 0.2142
    assert round(barnard(24, 61, 10, 35).pvalue, 4) == 0.4063
    assert round(barnard(9, 11, 4, 12, alternative="greater").pvalue, 4) == 0.0120
    # StatXact 11 Boschloo (exact2x2 inst/slowTests/test_StatXact.R):
    # boschloo(10,35,24,61, alternative="greater") 0.1513
    assert round(boschloo(24, 61, 10, 35, alternative="greater").pvalue, 4) == 0.1513
    # contingencytables Exact_unconditional_test_2x2(rbind(c(3,1),c(1,3))): "Suissa-Shuster
    # exact unconditional test: P = 0.28916" (tests/testthat/test-ch4.R). That function adds its
    # Berger-Boos gamma = 0.0001 to a maximum over a 99.99% interval that contains pi = 1/2,
    # where the supremum is here, so the plain supremum is 0.28916 - 0.0001.
    p = barnard(3, 4, 1, 4)
    assert round(p.pvalue + 0.0001, 5) == 0.28916
    assert p.extra["nuisance"] == pytest.approx(0.5, abs=1e-6)


def test_barnard_direction_and_statistic_match_scipy():
    for table in [(4, 20, 2, 15), (2, 15, 4, 20)]:
        res = barnard_exact(scipy_table(*table), n=200)
        assert barnard(*table).statistic == pytest.approx(res.statistic, rel=1e-12)
    less = barnard(1, 10, 6, 10, alternative="less").pvalue
    greater = barnard(1, 10, 6, 10, alternative="greater").pvalue
    assert less < 0.05 < greater


# ------------------------------------------------------------------------------------------
# the score-ordered test and the interval
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure,nulls", [("rd", [-0.6, -0.2, 0.3, 0.75]),
                                           ("rr", [0.2, 0.7, 1.8, 6.0])])
def test_restricted_mle_maximises_the_constrained_likelihood(measure, nulls):
    n1, n2 = 13, 8
    for null in nulls:
        for x1, x2 in [(0, 0), (3, 5), (13, 0), (7, 8), (1, 2), (13, 8)]:
            f = U._rd_restricted_mle if measure == "rd" else U._rr_restricted_mle
            p1t, p2t = (float(v) for v in f(np.array(x1), n1, np.array(x2), n2, null))
            if measure == "rd":
                lo, hi = max(0.0, -null), min(1.0, 1.0 - null)

                def p1_of(t, null=null):
                    return t + null
            else:
                lo, hi = 0.0, min(1.0, 1.0 / null)

                def p1_of(t, null=null):
                    return null * t

            def negll(t, x1=x1, x2=x2, p1_of=p1_of):
                return -(binom.logpmf(x1, n1, p1_of(t)) + binom.logpmf(x2, n2, t))

            # scipy.optimize bounded maximisation as the reference
            best = minimize_scalar(negll, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12})
            cands = [best.x, lo, hi]
            ref = min(cands, key=negll)
            assert negll(p2t) <= negll(ref) + 1e-8
            assert p1t == pytest.approx(p1_of(p2t), abs=1e-9)


def _rd_score_z_50_digits(a, n1, b, n2, d):
    """The Farrington-Manning closed form and score Z in 50-digit arithmetic (mpmath)."""
    import mpmath as mp

    with mp.workdps(50):
        p1h, p2h, th = mp.mpf(a) / n1, mp.mpf(b) / n2, mp.mpf(n2) / n1
        d = mp.mpf(d)
        big_a = 1 + th
        big_b = -(1 + th + p1h + th * p2h + d * (th + 2))
        big_c = d * d + d * (2 * p1h + th + 1) + p1h + th * p2h
        big_e = -p1h * d * (1 + d)
        v = (big_b**3 / (27 * big_a**3) - big_b * big_c / (6 * big_a**2)
             + big_e / (2 * big_a))
        u = mp.sign(v) * mp.sqrt(max(big_b**2 / (9 * big_a**2) - big_c / (3 * big_a), 0))
        ratio = 1 if u == 0 else min(1, max(-1, v / u**3))
        p1t = 2 * u * mp.cos((mp.pi + mp.acos(ratio)) / 3) - big_b / (3 * big_a)
        p1t = min(max(p1t, max(0, d)), min(1, 1 + d))
        p2t = min(max(p1t - d, 0), 1)
        num = p1h - p2h - d
        if abs(num) < mp.mpf(10) ** -14:
            return 0.0
        return float(num / mp.sqrt(p1t * (1 - p1t) / n1 + p2t * (1 - p2t) / n2))


def test_score_z_of_a_whole_space_matches_50_digit_arithmetic():
    """The risk-difference score Z of every table at once (numpy, the restricted MLE's cubes as
    products) equals the same closed form evaluated table by table with 50 digits (mpmath), to
    within 1e-11 relative, at nulls on both sides of the estimates (u of both signs)."""
    n1, n2 = 17, 29
    i, j = np.arange(n1 + 1)[:, None], np.arange(n2 + 1)[None, :]
    for d in (-0.83, -0.31, 0.0, 0.12, 0.57):
        z = U._score_z(i, n1, j, n2, "rd", d)
        for a in range(n1 + 1):
            for b in range(n2 + 1):
                ref = _rd_score_z_50_digits(a, n1, b, n2, d)
                assert z[a, b] == pytest.approx(ref, rel=1e-11, abs=1e-12), (a, b, d)


def test_score_test_at_no_difference_is_barnards_pooled_test():
    for table in SMALL_TABLES[:8]:
        for alt in ALTS:
            b = barnard(*table, alternative=alt)
            for measure in ("rd", "rr"):
                s = exact_unconditional_test(*table, measure=measure, alternative=alt)
                assert s.statistic == pytest.approx(b.statistic, abs=1e-12)
                assert s.pvalue == pytest.approx(b.pvalue, abs=1e-12)


def test_score_test_away_from_the_null_matches_brute_force():
    for table, measure, null in [((4, 20, 2, 15), "rd", -0.2), ((6, 13, 2, 7), "rd", 0.45),
                                 ((11, 13, 2, 7), "rr", 1.3), ((3, 9, 6, 8), "rr", 0.4)]:
        x1, n1, x2, n2 = table
        # ordering recomputed by the brute force from the restricted MLE maximised
        # numerically (scipy.optimize), then the supremum on fine grids
        z = np.empty((n1 + 1, n2 + 1))
        for a in range(n1 + 1):
            for b in range(n2 + 1):
                z[a, b] = _numeric_score_z(a, n1, b, n2, measure, null)
        obs = z[x1, x2]
        for alt in ALTS:
            ours = exact_unconditional_test(*table, measure=measure, null=null, alternative=alt)
            tol = 1e-6 * max(1.0, abs(obs))
            region = {"two-sided": np.abs(z) >= abs(obs) - tol, "greater": z >= obs - tol,
                      "less": z <= obs + tol}[alt]
            if measure == "rd":
                brute = brute_sup(region, n1, n2, max(0, -null), min(1, 1 - null),
                                  lambda t, d=null: t + d)
            else:
                brute = brute_sup(region, n1, n2, 0.0, min(1.0, 1 / null), lambda t, r=null: r * t)
            assert ours.pvalue == pytest.approx(brute, rel=1e-7, abs=1e-12)
            assert ours.statistic == pytest.approx(obs, abs=1e-5)


def _numeric_score_z(a, n1, b, n2, measure, null):
    if measure == "rd":
        lo, hi = max(0.0, -null), min(1.0, 1.0 - null)

        def p1_of(t):
            return t + null
    else:
        lo, hi = 0.0, min(1.0, 1.0 / null)

        def p1_of(t):
            return null * t

    def negll(t):
        return -(binom.logpmf(a, n1, p1_of(t)) + binom.logpmf(b, n2, t))

    res = minimize_scalar(negll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13})
    t = min([res.x, lo, hi], key=negll)
    p1, p2 = p1_of(t), t
    if measure == "rd":
        num = a / n1 - b / n2 - null
        var = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    else:
        num = a / n1 - null * b / n2
        var = p1 * (1 - p1) / n1 + null**2 * p2 * (1 - p2) / n2
    if abs(num) < 1e-12:
        return 0.0
    return num / math.sqrt(var) if var > 0 else math.copysign(math.inf, num)


# Published exact unconditional intervals: (limits, (p at the null of no effect, decimals),
# tolerance on the limits). natexp's x1/n1 is
# exact2x2's second group (see module docstring).
PUBLISHED_CI = [
    # StatXact 11, "invert a two-sided test" (exact2x2 test_StatXact.R, tsmethod="square"):
    # uncondExact2x2(2,7,6,13, difference) p = 0.5374, CI (-0.3079, 0.5542)
    ((6, 13, 2, 7), "rd", "two-sided", (-0.3079, 0.5542), (0.5374, 4), 1e-4),
    # StatXact 11 "invert 2 one-sided" (tsmethod="central"): p = 0.5569, CI (-0.3108, 0.5787)
    ((6, 13, 2, 7), "rd", "central", (-0.3108, 0.5787), (0.5569, 4), 1e-4),
    # StatXact 11 central ratio: uncondExact2x2(2,7,11,13, ratio) p = 0.02064, CI (1.078, 29.1)
    ((11, 13, 2, 7), "rr", "central", (1.078, 29.1), (0.02064, 5), (1e-3, 0.1)),
    # exact2x2 1.6 uncondExact2x2(2,7,11,13, ratio, tsmethod="square"): p 0.0134,
    # CI (1.14, 14.45) (exact2x2's own output; the file notes StatXact 11 differs)
    ((11, 13, 2, 7), "rr", "two-sided", (1.14, 14.45), (0.0134, 4), (0.01, 0.01)),
    # StatXact 11 central, gamma = 0: uncondExact2x2(10,35,24,61) p 0.4284, CI (-0.09922, 0.2949)
    ((24, 61, 10, 35), "rd", "central", (-0.09922, 0.2949), (0.4284, 4), (1e-5, 1e-4)),
    # SAS 9.4 PROC FREQ RISKDIFF(METHOD=SCORE) / RELRISK exact (exact2x2 test_SAS.R, central):
    ((9, 11, 4, 12), "rd", "central", (0.0616, 0.7968), None, 1e-4),
    ((24, 61, 10, 35), "rr", "central", (0.7663, 3.0005), None, 1e-4),
    ((9, 11, 4, 12), "rr", "central", (1.0964, 10.8647), None, 1e-4),
    # 13/13 vs 0/7: exact2x2 "square" CI (0.6088, 1) (StatXact 11's (0.6088, 0.6101) is wrong,
    # exact2x2 validation vignette), StatXact p 2.44e-06; central (SAS 9.4 and StatXact 11)
    # CI (0.5904, 1.000), p 4.758e-06
    ((13, 13, 0, 7), "rd", "two-sided", (0.6088, 1.0), (2.44e-06, 8), 1e-4),
    ((13, 13, 0, 7), "rd", "central", (0.5904, 1.0), (4.758e-06, 9), 1e-4),
]


@pytest.mark.parametrize("table,measure,inversion,ci,p,tol", PUBLISHED_CI)
def test_published_exact_unconditional_intervals(table, measure, inversion, ci, p, tol):
    r = exact_unconditional_ci(*table, measure=measure, inversion=inversion)
    tol_lo, tol_hi = tol if isinstance(tol, tuple) else (tol, tol)
    # published limits are rounded: |ours - published| <= one unit in the last decimal shown
    assert abs(r.ci[0] - ci[0]) <= tol_lo + 1e-9
    assert abs(r.ci[1] - ci[1]) <= tol_hi + 1e-9
    if p is not None:
        value, decimals = p  # exact2x2's tests round each p-value to its own decimals
        assert round(r.pvalue, decimals) == pytest.approx(value, rel=1e-9)
    base = "risk_difference" if measure == "rd" else "risk_ratio"
    assert r.method == base + ".exact_unconditional" + ("_central" if inversion == "central" else "")


def test_interval_result_fields():
    r = exact_unconditional_ci(4, 20, 2, 15)
    assert r.estimate == pytest.approx(4 / 20 - 2 / 15)
    assert r.confidence_level == 0.95 and r.n == (20, 15)
    assert r.ci[0] < r.estimate < r.ci[1]
    assert r.pvalue == pytest.approx(barnard(4, 20, 2, 15).pvalue, abs=1e-12)
    rr = exact_unconditional_ci(4, 20, 2, 15, measure="rr", confidence_level=0.9)
    assert rr.estimate == pytest.approx(1.5) and rr.confidence_level == 0.9
    wide = exact_unconditional_ci(4, 20, 2, 15, measure="rr", confidence_level=0.99)
    assert wide.ci[0] < rr.ci[0] and wide.ci[1] > rr.ci[1]


def _duality_tables():
    out = []
    for n1, n2 in [(5, 5), (3, 8), (6, 4)]:
        out += [(a, n1, b, n2) for a in range(n1 + 1) for b in range(n2 + 1)]
    return out


@pytest.mark.slow  # 214 whole-set intervals
def test_interval_excludes_the_null_exactly_when_the_test_rejects():
    """Duality of exact_unconditional_ci and exact_unconditional_test on 107 small tables.

    At the null of no effect (d = 0, r = 1) the equivalence must hold on every table. At other
    nulls it can only fail where the set of accepted nulls is not an interval (p(d) is not
    monotone); every such failure must come with a witness of that.
    """
    alpha = 0.05
    rng = np.random.default_rng(20261124)
    failures = 0
    checks = 0
    for table in _duality_tables():
        for measure in ("rd", "rr"):
            r = exact_unconditional_ci(*table, measure=measure)
            null0 = 0.0 if measure == "rd" else 1.0
            p0 = exact_unconditional_test(*table, measure=measure).pvalue
            assert (p0 < alpha) == (not r.ci[0] <= null0 <= r.ci[1]), (table, measure, r.ci, p0)
            extra = (rng.uniform(-0.95, 0.95, 2) if measure == "rd"
                     else np.exp(rng.uniform(-2.5, 2.5, 2)))
            for null in extra:
                if min(abs(null - r.ci[0]), abs(null - r.ci[1])) < 1e-7:
                    continue
                checks += 1
                p = exact_unconditional_test(*table, measure=measure, null=null).pvalue
                inside = r.ci[0] <= null <= r.ci[1]
                if (p < alpha) != inside:
                    continue
                failures += 1
                _assert_not_an_interval(table, measure, null, p < alpha, r, alpha)
    assert failures <= 0.02 * checks


def test_confidence_sets_that_are_not_intervals():
    """Where p(d) is not monotone the accepted nulls have holes; the hull is reported.

    Both cases were found by checking random (table, null) pairs; the old 40-point scan saw the
    first hole and missed the second; the whole-set scan (issue 14) reports both, and the
    rejected null lies between two listed pieces.
    """
    r = exact_unconditional_ci(11, 12, 0, 7)
    assert not r.extra["confidence_set_is_interval"] and "not an interval" in r.note
    for table, null in [((11, 12, 0, 7), 0.454414301066669),
                        ((0, 3, 7, 9), -0.09825085911170794)]:
        r = exact_unconditional_ci(*table)
        assert r.extra["confidence_set_is_interval"] is False
        assert not any(a <= null <= b for a, b in r.extra["confidence_set"])
        assert r.ci[0] < null < r.ci[1]
        assert exact_unconditional_test(*table, null=null).pvalue < 0.05
        _assert_not_an_interval(table, "rd", null, True, r, 0.05)


def _assert_not_an_interval(table, measure, null, rejected, r, alpha):
    def p_at(v):
        return exact_unconditional_test(*table, measure=measure, null=float(v)).pvalue

    if rejected:  # a rejected null between two accepted limits
        assert p_at(r.ci[0]) >= alpha and p_at(r.ci[1]) >= alpha
    else:  # an accepted null outside: some null between it and the interval is rejected
        limit = r.ci[0] if null < r.ci[0] else r.ci[1]
        between = np.linspace(null, limit, 202)[1:-1]
        assert any(p_at(v) < alpha for v in between)


# ------------------------------------------------------------------------------------------
# degenerate and invalid input
# ------------------------------------------------------------------------------------------


def test_degenerate_inputs_give_a_note():
    for fn in (barnard, boschloo, exact_unconditional_test):
        r = fn(0, 0, 1, 3)
        assert math.isnan(r.pvalue) and "empty" in r.note
    for table in [(0, 5, 0, 3), (5, 5, 3, 3)]:
        for fn in (barnard, boschloo):
            r = fn(*table)
            assert r.pvalue == 1.0 and "p = 1" in r.note
    ci = exact_unconditional_ci(0, 0, 2, 4)
    assert math.isnan(ci.ci[0]) and "empty" in ci.note
    rr = exact_unconditional_ci(4, 20, 0, 15, measure="rr")
    assert rr.ci[1] == math.inf and "infinite" in rr.note and rr.estimate == math.inf
    rr0 = exact_unconditional_ci(0, 20, 3, 15, measure="rr")
    assert rr0.ci[0] == 0.0 and rr0.estimate == 0.0 and "lower limit" in rr0.note
    none = exact_unconditional_ci(0, 20, 0, 15, measure="rr")
    assert none.ci == (0.0, math.inf) and math.isnan(none.estimate) and "undefined" in none.note
    rd = exact_unconditional_ci(0, 20, 0, 15)
    assert rd.estimate == 0.0 and rd.ci[0] < 0 < rd.ci[1]


@pytest.mark.parametrize(
    "call",
    [
        lambda: barnard(-1, 5, 2, 5),
        lambda: barnard(6, 5, 2, 5),
        lambda: barnard(2.5, 5, 2, 5),
        lambda: barnard(True, 5, 2, 5),
        lambda: barnard(1, 5, 2, 5, alternative="two.sided"),
        lambda: boschloo(1, 5, 2, 5, alternative="bigger"),
        lambda: exact_unconditional_test(1, 5, 2, 5, measure="hr"),
        lambda: exact_unconditional_test(1, 5, 2, 5, measure="or", null=-1.0),
        lambda: exact_unconditional_test(1, 5, 2, 5, null=1.5),
        lambda: exact_unconditional_test(1, 5, 2, 5, measure="rr", null=0.0),
        lambda: exact_unconditional_ci(1, 5, 2, 5, confidence_level=95),
        lambda: exact_unconditional_ci(1, 5, 2, 5, confidence_level="high"),
        lambda: exact_unconditional_ci(1, 5, 2, 5, inversion="square"),
        lambda: pvalues_all_tables(0, 5),
        lambda: pvalues_all_tables(3, 5, test="chisq"),
    ],
)
def test_invalid_input_raises(call):
    with pytest.raises(InvalidInputError):
        call()


# ------------------------------------------------------------------------------------------
# p-values of every table
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test", ["barnard_pooled", "barnard_unpooled", "boschloo"])
def test_all_tables_equal_single_table_p_values(test):
    n1, n2 = 7, 5
    for alt in ALTS:
        allp = pvalues_all_tables(n1, n2, test=test, alternative=alt)
        banded = pvalues_all_tables(n1, n2, test=test, alternative=alt, refine_band=(0.025, 0.05))
        for a in range(n1 + 1):
            for b in range(n2 + 1):
                if test == "boschloo":
                    single = boschloo(a, n1, b, n2, alternative=alt).pvalue
                else:
                    single = barnard(a, n1, b, n2, pooled=test == "barnard_pooled",
                                     alternative=alt).pvalue
                assert allp[a, b] == pytest.approx(single, rel=1e-9, abs=1e-13)
                assert (banded[a, b] < 0.05) == (single < 0.05)


@pytest.mark.parametrize("test", ["barnard_pooled", "boschloo", "fisher"])
def test_p_values_of_some_tables_equal_those_of_all_tables(test):
    """``only=``: the p-values asked for are exactly those of the whole-space pass (the oracle;
    these spaces fit one block of supremum searches), the others are NaN; a tipping-point grid
    asks for a block of completions this way."""
    rng = np.random.default_rng(7)
    for n1, n2 in [(9, 6), (14, 14), (23, 11)]:
        for alt in ALTS:
            full = pvalues_all_tables(n1, n2, test=test, alternative=alt)
            only = rng.random((n1 + 1, n2 + 1)) < 0.3
            only[n1 // 2:, : n2 // 2] = True  # a block, as completions are
            part = pvalues_all_tables(n1, n2, test=test, alternative=alt, only=only)
            assert np.array_equal(part[only], full[only]), (n1, n2, alt)
            assert np.isnan(part[~only]).all()
    with pytest.raises(InvalidInputError):
        pvalues_all_tables(3, 3, test=test, only=np.ones((3, 3), dtype=bool))
    with pytest.raises(InvalidInputError):
        pvalues_all_tables(3, 3, test=test, only=np.ones((4, 4), dtype=bool),
                           refine_band=(0.025, 0.05))


def test_supremum_searches_give_the_same_bits_in_blocks_of_any_size(monkeypatch):
    """The vectorised supremum searches evaluate their rows a block at a time (to stay in the
    CPU's cache): one row per block and blocks of 7 rows (the last one shorter) give the same
    p-values bit for bit as one block for everything (the default at these sizes)."""
    cases = [(17, 21, "boschloo", "two-sided"), (12, 15, "barnard_pooled", "greater"),
             (9, 7, "barnard_unpooled", "less")]
    for n1, n2, test, alt in cases:
        default = pvalues_all_tables(n1, n2, test=test, alternative=alt)
        for elements in (1, 7 * (n1 + n2 + 1)):
            monkeypatch.setattr(U, "_CACHE_ELEMENTS", elements)
            assert np.array_equal(pvalues_all_tables(n1, n2, test=test, alternative=alt),
                                  default), (n1, n2, test, elements)
        monkeypatch.undo()


def test_binomial_log_pmf_equals_scipy_xlogy_formula_and_binom():
    """The broadcast logarithms give the same numbers as the same formula taken element by
    element (exactly), as scipy's xlogy / xlog1py formula (exactly in every row where numpy's
    ``log`` and ``log1p`` of that p are the C library's, which scipy calls; within the
    logarithms' last-bit differences elsewhere) and as scipy.stats.binom.logpmf (to rounding),
    also at p = 0 and p = 1.

    numpy computes ``log`` and ``log1p`` with its own SIMD code on some CPUs (AVX-512: measured
    on an AMD EPYC, 0.35% of ``log`` and 7% of ``log1p`` values one unit in the last place
    from glibc's), so the exact comparison with scipy holds row by row, not everywhere.
    """
    from scipy.special import xlog1py, xlogy
    from scipy.stats import binom

    from natexp.causal.unconditional import _counts, _log_choose, _log_pmf

    rng = np.random.default_rng(3)
    eps = np.finfo(float).eps
    for n in (1, 7, 60, 451):
        p = np.concatenate([[0.0, 1.0, 1e-300, 1 - 1e-16], rng.random(200)])[:, None]
        k, rest = _counts(n)
        ours = _log_pmf(n, p)
        # the same formula one element at a time, with numpy's logarithms (xlogy at the edges)
        pp = np.broadcast_to(p, ours.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            elementwise = _log_choose(n) + k * np.log(pp) + rest * np.log1p(-pp)
        edge = (pp <= 0.0) | (pp >= 1.0)
        elementwise[edge] = (_log_choose(n) + xlogy(k, pp) + xlog1py(rest, -pp))[edge]
        assert np.array_equal(ours, elementwise)
        # scipy's formula: exact where the logarithms agree, within their ulps elsewhere
        ref = _log_choose(n) + xlogy(k, p) + xlog1py(rest, -p)
        with np.errstate(divide="ignore"):
            same_logs = ((np.log(p) == xlogy(1.0, p)) & (np.log1p(-p) == xlog1py(1.0, -p)))
        assert np.array_equal(ours[same_logs.ravel()], ref[same_logs.ravel()])
        assert same_logs.sum() >= 4  # at least the edge rows are compared exactly
        finite = np.isfinite(ref)
        assert np.array_equal(finite, np.isfinite(ours))
        scale = np.abs(_log_choose(n)) + np.abs(xlogy(k, p)) + np.abs(xlog1py(rest, -p))
        assert np.all(np.abs(ours[finite] - ref[finite]) <= 4 * eps * scale[finite])
        with np.errstate(divide="ignore"):
            sp = binom.logpmf(np.arange(n + 1), n, p)
        finite = np.isfinite(sp)
        assert np.array_equal(finite, np.isfinite(ours))
        assert np.allclose(ours[finite], sp[finite], rtol=1e-9, atol=1e-9)


def test_all_tables_agree_with_scipy_on_a_small_space():
    n1, n2 = 4, 2
    for alt in ALTS:
        allb = pvalues_all_tables(n1, n2, test="boschloo", alternative=alt)
        for a in range(n1 + 1):
            for b in range(n2 + 1):
                ref = scipy_p(boschloo_exact, scipy_table(a, n1, b, n2), alternative=alt, n=200)
                assert allb[a, b] == pytest.approx(ref, abs=1e-6)


# --------------------------------------------------------------------------------------------
# the whole confidence set (issue 14)
#
# R exact2x2 1.7.0 (github:cran/exact2x2, installed from source in R 4.2, Debian r-base-core).
# exact2x2's orientation is the reverse of natexp's: its (x1, n1) is natexp's control group
# (x2, n2) and its parameter is p2 - p1, p2 / p1 or p2 (1 - p1) / (p1 (1 - p2)), i.e. natexp's
# treated-vs-control measure. Default control = ucControl() (nPgrid = 100, nCIgrid = 500):
#
# uncondExact2x2(2, 15, 4, 20, parmtype = "difference", method = "score", tsmethod = "square",
#                conf.int = TRUE)                         -> (-0.2359074, 0.3383094), p 0.6458161
# uncondExact2x2(3, 3, 6, 48, parmtype = "difference", method = "score", tsmethod = "square",
#                conf.int = TRUE)                         -> (-0.9532328, -0.0169524), p 0.0229649
# uncondExact2x2(15, 72, 0, 16, parmtype = "difference", method = "score", tsmethod = "square",
#                conf.int = TRUE)                         -> (-0.3218003, 0.0549006), p 0.0793708
# uncondExact2x2(31, 41, 1, 4, parmtype = "difference", method = "score", tsmethod = "central",
#                conf.int = TRUE)                         -> (-0.8058795, 0.0757646), p 0.0753448
# uncondExact2x2(171, 224, 1, 5, parmtype = "ratio", method = "score", tsmethod = "square",
#                conf.int = TRUE)                         -> (0.0148070, 0.9974531), p 0.0401673
# uncondExact2x2(2, 15, 4, 20, parmtype = "oddsratio", method = "score", tsmethod = "square",
#                conf.int = TRUE)                         -> (0.1776247, 12.7795802), p 0.6458161
# uncondExact2x2(2, 15, 4, 20, parmtype = "oddsratio", method = "score", tsmethod = "central",
#                conf.int = TRUE)                         -> (0.1042920, 20.2802860), p 0.6845450
# uncondExact2x2(2, 7, 6, 13, parmtype = "oddsratio", method = "score", tsmethod = "square",
#                conf.int = TRUE)                         -> (0.2465725, 16.2795733), p 0.5373927
# uncondExact2x2(2, 7, 6, 13, parmtype = "oddsratio", method = "score", tsmethod = "central",
#                conf.int = TRUE)                         -> (0.1202847, 31.9448156), p 0.5569391
#
# exact2x2's 100-point nuisance grid underestimates the supremum, so it rejects some nulls
# near the limits that the test accepts. With a fine grid (p-values at single nulls):
# uncondExact2x2(..., nullparm = NULL, method = "score", tsmethod = ...,
#                control = ucControl(nPgrid = 20000))$p.value:
#   (3, 3, 6, 48) difference square at -0.0167: 0.0503815 (nPgrid 100: 0.0492680)
#   (2, 15, 4, 20) oddsratio square at 13: 0.0514694 (nPgrid 100: 0.0488602)
#   (2, 15, 4, 20) oddsratio central at 25: 0.0537141 (nPgrid 100: 0.0405562)
#   (2, 15, 4, 20) oddsratio central at 0.095: 0.0536197 (nPgrid 100: 0.0426012)
#   (2, 7, 6, 13) oddsratio square at 17: 0.0509986 (nPgrid 100: 0.0486533)
#   (2, 7, 6, 13) oddsratio central at 34: 0.0515655 (nPgrid 100: 0.0452997)
# so there natexp's limits lie beyond exact2x2's default ones, as they should.

R_AGREE = [  # natexp table, measure, inversion, exact2x2 limits in natexp's orientation, p
    ((4, 20, 2, 15), "rd", "two-sided", (-0.2359074, 0.3383094), 0.6458161),
    ((0, 16, 15, 72), "rd", "two-sided", (-0.3218003, 0.0549006), None),
    ((1, 4, 31, 41), "rd", "central", (-0.8058795, 0.0757646), None),
]


@pytest.mark.parametrize("table,measure,inversion,ci,p", R_AGREE)
def test_whole_set_matches_exact2x2(table, measure, inversion, ci, p):
    r = exact_unconditional_ci(*table, measure=measure, inversion=inversion)
    assert r.ci == pytest.approx(ci, abs=2e-6)
    if p is not None:
        assert r.pvalue == pytest.approx(p, abs=1e-6)
    pieces = r.extra["confidence_set"]
    assert pieces[0][0] == r.ci[0] and pieces[-1][1] == r.ci[1]
    assert r.extra["confidence_set_is_interval"] is (len(pieces) == 1)


def test_primary_outcome_set_has_two_pieces():
    """4/20 vs 2/15 (the study's primary outcome): [-0.2359, 0.3227] and about [0.3324,
    0.3383] (issue 14); natexp's own test accepts 0.3379 (p about 0.0515) and rejects 0.328."""
    r = exact_unconditional_ci(4, 20, 2, 15)
    pieces = r.extra["confidence_set"]
    assert len(pieces) == 2 and not r.extra["confidence_set_is_interval"]
    assert pieces[0][1] == pytest.approx(0.3227, abs=1e-4)
    assert pieces[1][0] == pytest.approx(0.3324, abs=2e-4)
    assert "not an interval" in r.note
    assert exact_unconditional_test(4, 20, 2, 15, null=0.3379).pvalue >= 0.05
    assert exact_unconditional_test(4, 20, 2, 15, null=0.328).pvalue < 0.05


@pytest.mark.parametrize("table,measure,inversion,r_default,null_fine,p_fine", [
    # exact2x2 default upper -0.0169524; at -0.0167 its fine grid gives p 0.0503815 (accepted)
    ((6, 48, 3, 3), "rd", "two-sided", (-0.9532328, -0.0169524), -0.0167, 0.0503815),
    ((4, 20, 2, 15), "or", "two-sided", (0.1776247, 12.7795802), 13.0, 0.0514694),
    ((4, 20, 2, 15), "or", "central", (0.1042920, 20.2802860), 25.0, 0.0537141),
    ((4, 20, 2, 15), "or", "central", (0.1042920, 20.2802860), 0.095, 0.0536197),
    ((6, 13, 2, 7), "or", "two-sided", (0.2465725, 16.2795733), 17.0, 0.0509986),
    ((6, 13, 2, 7), "or", "central", (0.1202847, 31.9448156), 34.0, 0.0515655),
])
def test_limits_beyond_exact2x2_default_grid(table, measure, inversion, r_default, null_fine,
                                             p_fine):
    r = exact_unconditional_ci(*table, measure=measure, inversion=inversion)
    # the hull contains exact2x2's default hull (to its 3rd-4th digit) ...
    assert r.ci[0] <= r_default[0] + 1e-3 * abs(r_default[0]) + 1e-4
    assert r.ci[1] >= r_default[1] - 1e-3 * abs(r_default[1]) - 1e-4
    # ... and the null that exact2x2's fine grid accepts, with the same p-value
    assert r.ci[0] <= null_fine <= r.ci[1]
    if inversion == "two-sided":
        p = exact_unconditional_test(*table, measure=measure, null=null_fine).pvalue
    else:
        p = 2 * min(exact_unconditional_test(*table, measure=measure, null=null_fine,
                                             alternative=a).pvalue for a in ("less", "greater"))
    assert p == pytest.approx(p_fine, abs=5e-5)


def test_risk_ratio_upper_limit_beyond_exact2x2():
    """1/5 vs 171/224, RR: exact2x2 default upper 0.9974531 (issue 14: old natexp 0.9941); the
    hull reaches 0.99779, the end of a second accepted piece natexp's own test accepts."""
    r = exact_unconditional_ci(1, 5, 171, 224, measure="rr")
    assert r.ci[0] == pytest.approx(0.0148070, abs=2e-5)
    assert r.ci[1] >= 0.9974531
    top = r.extra["confidence_set"][-1]
    mid = 0.5 * (top[0] + top[1])
    assert exact_unconditional_test(1, 5, 171, 224, measure="rr", null=mid).pvalue >= 0.05


def test_odds_ratio_test_matches_exact2x2_at_the_null():
    """uncondExact2x2(2, 15, 4, 20, parmtype = "oddsratio", method = "score",
    tsmethod = "square") p 0.6458161 (= the difference's: both are Barnard's test at the
    null); tsmethod = "central" p 0.6845450; (2, 7, 6, 13) square 0.5373927, central
    0.5569391 (exact2x2's 100-point grid; natexp's supremum is at least as large)."""
    for table, sq, ce in [((4, 20, 2, 15), 0.6458161, 0.6845450),
                          ((6, 13, 2, 7), 0.5373927, 0.5569391)]:
        r = exact_unconditional_ci(*table, measure="or")
        assert r.method == "odds_ratio.exact_unconditional"
        assert r.pvalue == pytest.approx(sq, abs=1e-4) and r.pvalue >= sq - 1e-7
        c = exact_unconditional_ci(*table, measure="or", inversion="central")
        assert c.method == "odds_ratio.exact_unconditional_central"
        assert c.pvalue == pytest.approx(ce, abs=1e-4) and c.pvalue >= ce - 1e-7
    r = exact_unconditional_ci(4, 20, 2, 15, measure="or")
    assert r.estimate == pytest.approx(4 * 13 / (16 * 2))
    none = exact_unconditional_ci(0, 5, 0, 7, measure="or")
    assert none.ci == (0.0, math.inf) and "undefined" in none.note


def test_odds_ratio_score_statistic_is_agresti_min():
    """The score statistic at OR = psi against a direct transcription of exact2x2's
    constrMLE.oddsratio and its Tstat (method = "score", parmtype = "oddsratio")."""
    n1, n2 = 9, 7
    for psi in (0.2, 1.0, 3.7):
        z = U._score_z(np.arange(n1 + 1)[:, None], n1, np.arange(n2 + 1)[None, :], n2, "or", psi)
        for x1 in range(n1 + 1):
            for x2 in range(n2 + 1):
                if x1 + x2 in (0, n1 + n2):
                    assert z[x1, x2] == 0.0
                    continue
                # exact2x2: X1, N1 the control; A, B, C of the quadratic in the control's P1
                big_a = n2 * (psi - 1)
                big_b = n1 * psi + n2 - (x1 + x2) * (psi - 1)
                big_c = -(x1 + x2)
                if abs(psi - 1) < 1e-10:
                    q = (x1 + x2) / (n1 + n2)
                else:
                    q = (-big_b + math.sqrt(big_b ** 2 - 4 * big_a * big_c)) / (2 * big_a)
                p = q * psi / (1 + q * (psi - 1))
                t = (n1 * (x1 / n1 - p)) / (1 / (n2 * q * (1 - q)) + 1 / (n1 * p * (1 - p))) ** -0.5
                assert z[x1, x2] == pytest.approx(t, rel=1e-9, abs=1e-12)


def test_odds_ratio_map_equals_its_definition():
    """p1 = null p2 / (1 - p2 + null p2) under an odds-ratio null: the map the intervals use
    for a finite positive null (no np.errstate) gives exactly the values of the definition
    computed element by element, at the ends of the nuisance range too."""
    t = np.concatenate([np.linspace(0.0, 1.0, 1001), [1e-300, 1.0 - 1e-16, 1.0 + 2e-16]])
    for null in (1e-8, 0.03, 0.5, 1.0, 2.0, 37.0, 1e8):
        got = U._p1_map("or", null)(t)
        want = [1.0 if v >= 1.0 else min(max(null * v / (1.0 - v + null * v), 0.0), 1.0)
                for v in t]
        assert got.tolist() == want, null
    with np.errstate(all="ignore"):  # an infinite null keeps the guarded map: 0/0 at t = 0
        assert np.isnan(U._p1_map("or", math.inf)(np.array([0.0])))[0]


def test_theta_grid_is_linspace():
    for theta_max, n in ((math.pi / 2, 88), (math.pi / 4, 45), (math.pi / 2, 50)):
        got = U._theta_grid(theta_max, n)
        assert np.array_equal(got, np.linspace(0.0, theta_max, n)) and not got.flags.writeable


@pytest.mark.parametrize("measure", ["rd", "rr", "or"])
def test_score_statistic_is_non_increasing_in_the_null(measure):
    """The whole-set scan's bounds rely on every table's Z being non-increasing in the null."""
    for n1, n2 in [(4, 7), (12, 5), (20, 20)]:
        i, j = np.arange(n1 + 1)[:, None], np.arange(n2 + 1)[None, :]
        nulls = (np.linspace(-0.999, 0.999, 400) if measure == "rd"
                 else np.exp(np.linspace(-9, 9, 400)))
        prev = None
        for null in nulls:
            z = U._score_z(i, n1, j, n2, measure, float(null))
            if prev is not None:
                ok = np.isnan(z) | np.isnan(prev) | (z <= prev + 1e-9 * np.maximum(1, abs(prev)))
                assert ok.all(), (n1, n2, null)
            prev = z


@pytest.mark.slow  # about 300 x 0.2-0.6 s: the whole-set scan costs that much on tiny tables
def test_no_accepted_null_outside_the_reported_set_on_300_random_tables():
    """Brute force: on 300 random tables (arms 1-5; RD, RR and OR; both inversions) natexp's
    own test rejects every null of a 41-point grid over the whole range that lies outside the
    reported hull (RD: [-1, 1]; ratios: 1/403 to 403)."""
    rng = np.random.default_rng(14)
    alpha = 0.05
    for k in range(300):
        n1, n2 = (int(v) for v in rng.integers(1, 6, 2))
        x1, x2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        measure = ("rd", "rr", "or")[k % 3]
        inversion = ("two-sided", "central")[(k // 3) % 2]
        r = exact_unconditional_ci(x1, n1, x2, n2, measure=measure, inversion=inversion)
        if measure == "rd":
            grid = np.linspace(-1, 1, 41)
        else:
            grid = np.exp(np.linspace(-6, 6, 41))
        lo, hi = r.ci
        for null in grid:
            if lo - 1e-6 <= null <= hi + 1e-6 * max(1.0, hi):
                continue
            # the test's decision (decide=: the supremum is refined only where it matters)
            if inversion == "two-sided":
                p = U._score_pvalue(x1, n1, x2, n2, measure, float(null), "two-sided",
                                    alpha)[0]
            else:
                p = 2 * min(U._score_pvalue(x1, n1, x2, n2, measure, float(null), a,
                                            alpha / 2)[0] for a in ("less", "greater"))
            assert p < alpha, (x1, n1, x2, n2, measure, inversion, null, p, r.ci)


def test_one_blas_thread_limits_and_restores_and_sees_new_imports(monkeypatch):
    """The kept threadpoolctl controller limits every loaded BLAS to one thread inside the
    block, restores the counts after it (as ``threadpool_limits`` does), and is rebuilt once
    a module was imported since it was made."""
    import sys
    import types

    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with U._one_blas_thread():
        assert set(blas_threads()) <= {1}
    assert blas_threads() == before
    made = U._BLAS_CONTROLLER
    with U._one_blas_thread():
        pass
    assert U._BLAS_CONTROLLER is made  # kept while nothing was imported
    monkeypatch.setitem(sys.modules, "natexp_test_new_module", types.ModuleType("m"))
    with U._one_blas_thread():
        pass
    assert U._BLAS_CONTROLLER is not made and U._BLAS_CONTROLLER[0] == len(sys.modules)
