"""The 2x2 panel: tests against published values, the panel object, and test/CI matching.

Sources:

- [CT-ch4] R package contingencytables (Fagerland, Lydersen & Laake 2017, *Statistical
  Analysis of Contingency Tables*, ch. 4), ``tests/testthat/test-ch4.R`` (GitHub
  ocbe-uio/contingencytables, commit 677d664b).
- [CT-51] same package, ``tests/testthat/test-issue51.R``: Fisher mid-P (minimum-likelihood
  mid-p of Fagerland et al.) for the book's examples.
- [E2x2] R package exact2x2 vignette ``inst/doc/exact2x2.tex`` (cran/exact2x2), section 1.
- scipy 1.15 / statsmodels 0.15 run live where stated.
"""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
from scipy.stats import chi2_contingency, fisher_exact, hypergeom, norm

from natexp.causal.intervals import odds_ratio_ci
from natexp.causal.result import InvalidInputError, Result
from natexp.causal.twobytwo import (
    JSON_KEYS,
    TEST_METHODS,
    TwoByTwo,
    compare_groups,
    excludes_null,
    fisher_test,
    likelihood_ratio_test,
    matching_pairs,
    pearson_test,
)

TEA = (3, 4, 1, 4)  # lady tasting tea
PERONDI = (7, 34, 1, 34)
LAMPASONA = (9, 13, 4, 14)
RITLAND = (0, 16, 15, 72)
STUDY = (4, 20, 2, 15)  # Operation Paramount support uptake, treated 4/20 vs control 2/15


def _table(x1, n1, x2, n2):
    return [[x1, n1 - x1], [x2, n2 - x2]]


# ------------------------------------------------------------------- asymptotic tests
def test_pearson_and_lr_tea_contingencytables():
    # [CT-ch4] Pearson_chi_squared_test_2x2(tea): P = 0.15730, T = 2.000 (df = 1)
    r = pearson_test(*TEA)
    assert (round(r.statistic, 3), round(r.pvalue, 5)) == (2.0, 0.15730)
    # [CT-ch4] Pearson_chi_squared_test_CC_2x2(tea): P = 0.47950, T = 0.500
    r = pearson_test(*TEA, correction=True)
    assert r.method == "test.pearson_yates"
    assert (round(r.statistic, 3), round(r.pvalue, 5)) == (0.5, 0.47950)
    # [CT-ch4] LR_test_2x2(tea): P = 0.14798, T = 2.093 (df = 1)
    r = likelihood_ratio_test(*TEA)
    assert (round(r.statistic, 3), round(r.pvalue, 5)) == (2.093, 0.14798)


def test_yates_ritland_contingencytables():
    # [CT-ch4] the_2x2_table_tests(ritland): "chi-squared w / CC  0.1016 (T = 2.680, df = 1)"
    r = pearson_test(*RITLAND, correction=True)
    assert (round(r.statistic, 3), round(r.pvalue, 4)) == (2.680, 0.1016)


@pytest.mark.parametrize("table", [STUDY, PERONDI, RITLAND, (56, 70, 48, 80)])
def test_two_sided_asymptotic_tests_are_scipy(table):
    # scipy.stats.chi2_contingency, live (uncorrected, Yates, lambda_="log-likelihood")
    t = np.array(_table(*table))
    ref = chi2_contingency(t, correction=False)
    assert pearson_test(*table).statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert pearson_test(*table).pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    ref = chi2_contingency(t, correction=True)
    assert pearson_test(*table, correction=True).pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    ref = chi2_contingency(t, correction=False, lambda_="log-likelihood")
    assert likelihood_ratio_test(*table).pvalue == pytest.approx(ref.pvalue, rel=1e-12)


@pytest.mark.parametrize("alt", ["greater", "less"])
@pytest.mark.parametrize("table", [STUDY, PERONDI, (2, 20, 9, 15)])
def test_one_sided_pearson_is_the_pooled_z_test(table, alt):
    # statsmodels 0.15 proportions_ztest (pooled variance) is the signed root of Pearson's X2
    from statsmodels.stats.proportion import proportions_ztest

    x1, n1, x2, n2 = table
    z, p = proportions_ztest([x1, x2], [n1, n2], alternative="larger" if alt == "greater"
                             else "smaller")
    r = pearson_test(*table, alternative=alt)
    assert r.statistic == pytest.approx(z, rel=1e-10)
    assert r.pvalue == pytest.approx(p, rel=1e-10)
    assert "signed square root" in r.label


@pytest.mark.parametrize("alt", ["greater", "less"])
def test_one_sided_yates_and_lr_signed_roots(alt):
    # Definition of R's prop.test for two groups: z = sign(p1 - p2) * sqrt(X2 with Yates),
    # p = pnorm(z, lower.tail = alternative == "less"); X2 and G from scipy, live.
    t = np.array(_table(*PERONDI))
    for res, ref in ((pearson_test(*PERONDI, correction=True, alternative=alt),
                      chi2_contingency(t, correction=True).statistic),
                     (likelihood_ratio_test(*PERONDI, alternative=alt),
                      chi2_contingency(t, correction=False, lambda_="log-likelihood").statistic)):
        z = math.sqrt(ref)  # p1 > p2 here
        assert res.statistic == pytest.approx(z, rel=1e-12)
        expect = norm.sf(z) if alt == "greater" else norm.cdf(z)
        assert res.pvalue == pytest.approx(expect, rel=1e-12)


def test_small_expected_counts_diagnostic_names_the_exact_tests():
    r = pearson_test(*STUDY)
    assert r.diagnostics and "test.fisher_midp" in r.diagnostics[0]
    assert "test.boschloo" in r.diagnostics[0]
    assert not pearson_test(56, 70, 48, 80).diagnostics


def test_asymptotic_tests_zero_margin_are_nan_with_note():
    for table in [(0, 10, 0, 12), (10, 10, 12, 12), (0, 0, 3, 5)]:
        for r in (pearson_test(*table), pearson_test(*table, correction=True),
                  likelihood_ratio_test(*table)):
            assert math.isnan(r.statistic) and math.isnan(r.pvalue)
            assert "0/0" in r.note


# ------------------------------------------------------------------------- Fisher tests
def test_fisher_published_values():
    # [CT-ch4] Fisher_exact_test_2x2(ritland): P = 0.06287
    assert round(fisher_test(*RITLAND).pvalue, 5) == 0.06287
    # [E2x2] fisher.test / exact2x2(tsmethod="minlike") p-value = 0.04371;
    # exact2x2(tsmethod="central") p-value = 0.06059 for group A 6/18 vs group B 12/17
    assert round(fisher_test(6, 18, 12, 17).pvalue, 5) == 0.04371
    assert round(fisher_test(6, 18, 12, 17, method="central").pvalue, 5) == 0.06059


@pytest.mark.parametrize("table", [STUDY, PERONDI, RITLAND, LAMPASONA, (6, 18, 12, 17)])
def test_fisher_against_scipy(table):
    # scipy.stats.fisher_exact, live: two-sided (minlike) and both one-sided p-values
    t = _table(*table)
    assert fisher_test(*table).pvalue == fisher_exact(t).pvalue
    less, greater = (fisher_exact(t, alternative=a).pvalue for a in ("less", "greater"))
    assert fisher_test(*table, method="central").pvalue == min(1.0, 2 * min(less, greater))
    for alt, ref in (("less", less), ("greater", greater)):
        for m in ("minlike", "central"):
            assert fisher_test(*table, method=m, alternative=alt).pvalue == ref


@pytest.mark.parametrize(
    ("table", "ref"),
    # [CT-51] Fisher_midP_test_2x2: tea 0.25714, perondi 0.02966, lampasona 0.03914,
    # ritland 0.04466, matrix(c(745, 127, 3, 2), ncol = 2) (745/748 vs 127/129) 0.09193139
    [(TEA, 0.25714), (PERONDI, 0.02966), (LAMPASONA, 0.03914), (RITLAND, 0.04466),
     ((745, 748, 127, 129), 0.09193139)],
)
def test_minlike_midp_fagerland(table, ref):
    r = fisher_test(*table, method="midp")
    assert r.extra["pvalue_minlike_midp"] == pytest.approx(ref, abs=5e-6)


@pytest.mark.parametrize("table", [STUDY, PERONDI, RITLAND, LAMPASONA, TEA, (0, 3, 3, 3)])
def test_central_midp_against_scipy_hypergeom(table):
    # Definition of exact2x2(tsmethod="central", midp=TRUE) (R/fisherCalcMidp.R), computed
    # with scipy.stats.hypergeom, live.
    x1, n1, x2, n2 = table
    rv = hypergeom(n1 + n2, x1 + x2, n1)
    p_less = rv.cdf(x1 - 1) + 0.5 * rv.pmf(x1)
    p_greater = rv.sf(x1) + 0.5 * rv.pmf(x1)
    assert fisher_test(*table, method="midp").pvalue == pytest.approx(
        min(1, 2 * min(p_less, p_greater)), rel=1e-10)
    assert fisher_test(*table, method="midp", alternative="less").pvalue == pytest.approx(
        p_less, rel=1e-10)
    assert fisher_test(*table, method="midp", alternative="greater").pvalue == pytest.approx(
        p_greater, rel=1e-10)


def test_fisher_zero_margin_is_one_with_note():
    for table in [(0, 10, 0, 12), (3, 3, 5, 5), (0, 0, 2, 4)]:
        for m in ("minlike", "central", "midp"):
            r = fisher_test(*table, method=m)
            assert r.pvalue == 1.0 and "only one table" in r.note


@pytest.mark.parametrize("bad", [(2.9, 20, 2, 15), (4, 20, -2, 15), (4, 20, 16, 15),
                                 (4, 20, 2, False)])
def test_invalid_input_raises_everywhere(bad):
    # scipy.stats.fisher_exact would silently truncate 2.9 to 2
    for call in (lambda: pearson_test(*bad), lambda: likelihood_ratio_test(*bad),
                 lambda: fisher_test(*bad), lambda: compare_groups(*bad)):
        with pytest.raises(InvalidInputError):
            call()
    with pytest.raises(InvalidInputError):
        fisher_test(*STUDY, method="blaker")
    with pytest.raises(InvalidInputError):
        compare_groups(*STUDY, confidence_level=95)


# --------------------------------------------------------------------------- matching
def _canonical_tables(nmax):
    """All tables with 1 <= n1, n2 <= nmax, one per orbit of the two symmetries that map
    OR -> 1/OR and leave every two-sided p-value unchanged: swapping the groups and swapping
    events with non-events (checked in test_symmetries_behind_the_grid_reduction)."""
    out = []
    for n1 in range(1, nmax + 1):
        for n2 in range(1, nmax + 1):
            for x1 in range(n1 + 1):
                for x2 in range(n2 + 1):
                    t = (x1, n1, x2, n2)
                    orbit = [t, (n1 - x1, n1, n2 - x2, n2), (x2, n2, x1, n1),
                             (n2 - x2, n2, n1 - x1, n1)]
                    if t == min(orbit):
                        out.append(t)
    return out


GRID12 = _canonical_tables(12)
LEVELS = (0.8, 0.9, 0.95, 0.99)


def _check_pair(test_method, ci_method, tables, levels, alternative="two-sided"):
    ties, holes = 0, 0
    for t in tables:
        p = fisher_test(*t, method=test_method, alternative=alternative).pvalue
        for cl in levels:
            alpha = 1 - cl
            r = odds_ratio_ci(*t, method=ci_method, confidence_level=cl, alternative=alternative)
            if abs(p - alpha) < 1e-12:
                # p exactly at the level: not rejected, and the null sits on the boundary (up
                # to the 1e-7 relative tie tolerance of the minimum-likelihood ordering)
                ties += 1
                assert min(abs(r.ci_low - 1), abs(r.ci_high - 1)) < 1e-6, (t, cl, r.ci)
                continue
            if ci_method == "baptista_pike" and alternative == "two-sided":
                in_set = any(lo <= 1 <= hi for lo, hi in r.extra["confidence_set"])
                assert (p < alpha) == (not in_set), (t, cl, p)
                assert not excludes_null(r) or p < alpha, (t, cl, p)  # hull excludes => reject
                holes += (p < alpha) and not excludes_null(r)
            else:
                assert (p < alpha) == excludes_null(r), (t, cl, p, r.ci)
    return ties, holes


def test_matching_pairs_lists_the_stable_names():
    pairs = matching_pairs()
    assert ("test.fisher_minlike", "odds_ratio.baptista_pike") in pairs
    assert ("test.fisher_midp", "odds_ratio.cornfield_midp") in pairs
    for test_name, ci_name in pairs:
        assert test_name.split(".")[1] in TEST_METHODS
        assert ci_name.split(".")[0] in ("odds_ratio", "risk_difference", "risk_ratio")


def test_matching_midp_grid():
    # all 2079 orbits of tables with n1, n2 <= 12, four levels
    ties, _ = _check_pair("midp", "cornfield_midp", GRID12, LEVELS)
    assert ties > 0  # the grid does contain exact ties (e.g. 0/1 vs 4/4 at 80%)


def test_matching_minlike_grid():
    ties, holes = _check_pair("minlike", "baptista_pike", GRID12, LEVELS)
    # no table with n1, n2 <= 12 puts the null inside a hole of the confidence set
    assert holes == 0


def test_matching_central_grid():
    # scipy's conditional interval costs ~2.5 ms, so this pair runs on n1, n2 <= 7
    _check_pair("central", "cornfield_exact", _canonical_tables(7), LEVELS)


@pytest.mark.parametrize(("test_method", "ci_method"),
                         [("midp", "cornfield_midp"), ("minlike", "baptista_pike"),
                          ("central", "cornfield_exact")])
def test_matching_one_sided(test_method, ci_method):
    tables = _canonical_tables(5)
    for alt in ("less", "greater"):
        _check_pair(test_method, ci_method, tables, (0.9, 0.95), alternative=alt)


def _straddle(test_method, ci_method, tables):
    """At alpha just above p the null must be rejected, just below it accepted."""
    hull_misses = []
    for t in tables:
        p = fisher_test(*t, method=test_method).pvalue
        if not 1e-6 < p < 0.999:
            continue
        above = odds_ratio_ci(*t, method=ci_method, confidence_level=1 - p * (1 + 1e-6))
        below = odds_ratio_ci(*t, method=ci_method, confidence_level=1 - p * (1 - 1e-6))
        assert not excludes_null(below), (t, p)
        if ci_method == "baptista_pike":
            assert not any(lo <= 1 <= hi for lo, hi in above.extra["confidence_set"]), (t, p)
            if not excludes_null(above):
                hull_misses.append(t)
        else:
            assert excludes_null(above), (t, p)
    return hull_misses


def test_matching_midp_at_levels_straddling_the_pvalue():
    assert _straddle("midp", "cornfield_midp", _canonical_tables(8)) == []


def test_matching_minlike_at_levels_straddling_the_pvalue():
    # The set matches the test exactly. Its hull does not always: for 0/3 vs 3/6 (p = 0.4643)
    # at alpha just above p the set is (0, 0.9981] U [1.0019, 1.054], so the hull reported by
    # Baptista-Pike / exact2x2 contains the rejected null 1 (the hole Fay 2010 describes).
    misses = _straddle("minlike", "baptista_pike", _canonical_tables(8))
    assert (0, 3, 3, 6) in misses


def test_symmetries_behind_the_grid_reduction():
    for t in _canonical_tables(6)[::7]:
        x1, n1, x2, n2 = t
        for m, ci in (("minlike", "baptista_pike"), ("midp", "cornfield_midp"),
                      ("central", "cornfield_exact")):
            a = odds_ratio_ci(*t, method=ci, confidence_level=0.9)
            p = fisher_test(*t, method=m).pvalue
            for other in ((x2, n2, x1, n1), (n1 - x1, n1, n2 - x2, n2)):
                b = odds_ratio_ci(*other, method=ci, confidence_level=0.9)
                assert fisher_test(*other, method=m).pvalue == pytest.approx(p, rel=1e-9)
                for u, v in ((a.ci_low, b.ci_high), (a.ci_high, b.ci_low)):
                    inv = math.inf if v == 0 else (0.0 if v == math.inf else 1 / v)
                    assert u == pytest.approx(inv, rel=1e-7) or (u == inv)


# ------------------------------------------------------------------------------ panel
@pytest.fixture(scope="module")
def study() -> TwoByTwo:
    return compare_groups(*STUDY, include_unconditional=False)


def test_panel_holds_every_stable_method(study):
    assert set(study.risk_difference) == {"wald", "agresti_caffo", "newcombe",
                                          "miettinen_nurminen", "exact_unconditional"}
    assert set(study.risk_ratio) == {"katz", "koopman", "miettinen_nurminen",
                                     "exact_unconditional"}
    assert set(study.odds_ratio) == {"woolf", "cornfield_exact", "cornfield_midp",
                                     "baptista_pike", "exact_unconditional"}
    assert tuple(study.test) == TEST_METHODS
    for key, r in study.results():
        assert isinstance(r, Result)
        if key not in ("attributable_fraction", "nnt"):
            assert r.method == key
    assert study.risk_treated == 0.2 and study.risk_control == pytest.approx(2 / 15)


def test_panel_is_immutable(study):
    with pytest.raises(TypeError):
        study.test["pearson"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        study.x1 = 5  # type: ignore[misc]


def test_panel_values_are_the_functions(study):
    assert study.test["fisher_minlike"].pvalue == fisher_exact(_table(*STUDY)).pvalue
    assert study.odds_ratio["baptista_pike"] == odds_ratio_ci(*STUDY, method="baptista_pike")
    assert "not computed" in study.test["boschloo"].note


def test_to_dict_layout_and_strict_json(study):
    d = study.to_dict()
    assert tuple(d) == JSON_KEYS
    assert d["risk_difference"]["newcombe"].keys() == {"estimate", "ci_low", "ci_high"}
    assert d["test"]["fisher_midp"].keys() == {"statistic", "pvalue"}
    assert d["counts"] == {"x1": 4, "n1": 20, "x2": 2, "n2": 15}
    text = json.dumps(d, allow_nan=False)  # raises on NaN / inf
    assert json.loads(text)["risk_difference"]["exact_unconditional"]["ci_low"] is None
    assert "not computed" in d["notes"]["risk_difference.exact_unconditional"]
    assert set(study.to_json_dict()) == set(JSON_KEYS)


def test_degenerate_panels_serialise_with_reasons():
    for table in [(0, 10, 0, 12), (5, 5, 3, 3), (0, 0, 3, 5), (0, 16, 15, 72), (3, 3, 0, 5)]:
        t = compare_groups(*table, include_unconditional=False)
        d = t.to_dict()
        json.dumps(d, allow_nan=False)
        for group in ("risk_difference", "risk_ratio", "odds_ratio", "test"):
            for name, values in d[group].items():
                if any(v is None for v in values.values()):
                    assert f"{group}.{name}" in d["notes"], (table, group, name)


def test_to_polars_one_row_per_method(study):
    df = study.to_polars()
    assert df.height == len(list(study.results()))
    assert df["method"].to_list()[0] == "risk_difference.wald"
    assert "pvalue" in df.columns


def test_summary_and_html(study):
    s = study.summary()
    assert "Treated 4/20 vs control 2/15" in s and "Baptista-Pike exact" in s
    assert "NNTB" in s
    assert study._repr_html_().startswith("<table")


def test_nnt_altman_convention():
    # Newcombe 56/70 vs 48/80: RD 0.2, 95% CI 0.0524 to 0.3339 (Newcombe 1998, Table II);
    # Altman (1998, BMJ 317:1309): NNT = 1/RD, limits 1/0.3339 and 1/0.0524.
    t = compare_groups(56, 70, 48, 80, include_unconditional=False)
    assert t.nnt.estimate == pytest.approx(5.0)
    assert t.nnt.ci_low == pytest.approx(1 / 0.3339, abs=2e-3)
    assert t.nnt.ci_high == pytest.approx(1 / 0.0524, abs=2e-2)
    harm = compare_groups(56, 70, 48, 80, include_unconditional=False, event_is_benefit=False)
    assert harm.nnt.estimate == pytest.approx(-5.0) and "NNTH" in harm.nnt.extra["altman"]


def test_nnt_interval_through_infinity(study):
    nnt, rd = study.nnt, study.risk_difference["newcombe"]
    assert math.isnan(nnt.ci_low) and "NNTB" in nnt.note and "NNTH" in nnt.note
    assert nnt.extra["nntb_bound"] == pytest.approx(1 / rd.ci_high)
    assert nnt.extra["nnth_bound"] == pytest.approx(-1 / rd.ci_low)


def test_attributable_fraction(study):
    rr = study.risk_ratio["koopman"]
    af = study.attributable_fraction
    assert af.estimate == pytest.approx(1 / 3)  # (1.5 - 1) / 1.5
    assert af.ci == pytest.approx((1 - 1 / rr.ci_low, 1 - 1 / rr.ci_high))
    low = compare_groups(2, 20, 4, 15, include_unconditional=False).attributable_fraction
    assert low.estimate < 0 and "preventive" in low.note


def test_alternative_reaches_every_item():
    t = compare_groups(*STUDY, alternative="greater", include_unconditional=False)
    for key, r in t.results():
        assert r.alternative == "greater", key
    assert t.odds_ratio["woolf"].ci_high == math.inf


def test_unconditional_entries_come_from_the_module(monkeypatch):
    import natexp.causal as causal

    calls = []

    def barnard(x1, n1, x2, n2, *, pooled=True, alternative="two-sided"):
        calls.append(("barnard", pooled, alternative))
        name = "test.barnard_pooled" if pooled else "test.barnard_unpooled"
        return Result(method=name, statistic=1.0, pvalue=0.5, alternative=alternative)

    def boschloo(x1, n1, x2, n2, *, alternative="two-sided"):
        calls.append(("boschloo", alternative))
        return Result(method="test.boschloo", pvalue=0.4, alternative=alternative)

    def exact_unconditional_ci(x1, n1, x2, n2, *, measure="rd", confidence_level=0.95,
                               inversion="two-sided"):
        calls.append(("ci", measure, round(confidence_level, 12), inversion))
        if measure == "rr":
            raise RuntimeError("boom")
        return Result(method="risk_difference.exact_unconditional_central", estimate=0.1,
                      ci=(-0.2, 0.3), confidence_level=confidence_level)

    fake = types.ModuleType("natexp.causal.unconditional")
    fake.barnard, fake.boschloo = barnard, boschloo
    fake.exact_unconditional_ci = exact_unconditional_ci
    monkeypatch.setitem(sys.modules, "natexp.causal.unconditional", fake)
    monkeypatch.setattr(causal, "unconditional", fake, raising=False)
    t = compare_groups(*STUDY, confidence_level=0.9, alternative="less")
    assert t.test["boschloo"].pvalue == 0.4
    assert t.test["barnard_unpooled"].method == "test.barnard_unpooled"
    # one-sided (less) at 90%: the upper bound of the central interval at 80%
    rd = t.risk_difference["exact_unconditional"]
    assert rd.ci == (-1.0, 0.3) and rd.method == "risk_difference.exact_unconditional"
    assert rd.alternative == "less" and rd.confidence_level == 0.9
    assert "failed: RuntimeError: boom" in t.risk_ratio["exact_unconditional"].note
    assert ("barnard", True, "less") in calls and ("ci", "rd", 0.8, "central") in calls


def test_arm_risk_intervals_are_wilson_and_clopper_pearson(study):
    """Wilson and Clopper-Pearson per arm: statsmodels proportion_confint (method "wilson" and
    "beta"); R binom.test(4, 20)$conf.int gives the Clopper-Pearson (0.05733. 0.43661) and
    prop.test(4, 20, correct = FALSE)$conf.int the Wilson (0.08066, 0.41601)."""
    arms = study.arm_risks()
    assert arms["treated"]["clopper_pearson"]["ci_low"] == pytest.approx(0.05733, abs=1e-5)
    assert arms["treated"]["clopper_pearson"]["ci_high"] == pytest.approx(0.43661, abs=1e-5)
    assert arms["treated"]["wilson"]["ci_low"] == pytest.approx(0.08066, abs=1e-5)
    assert arms["treated"]["wilson"]["ci_high"] == pytest.approx(0.41601, abs=1e-5)
    assert arms["control"]["risk"] == pytest.approx(2 / 15)


def test_population_attributable_fraction_and_definitions(study):
    """PAF = (R_total - R_control) / R_total (Stata csi 'Attr. frac. pop'): 4/20 vs 2/15 gives
    (6/35 - 2/15) / (6/35) = 2/9."""
    assert study.population_attributable_fraction == pytest.approx(2 / 9)
    d = study.to_dict()
    assert "Stata csi" in d["attributable_fraction"]["interval_definition"]
    assert "epiR" in d["attributable_fraction"]["interval_definition"]
    assert d["population_attributable_fraction"]["estimate"] == pytest.approx(2 / 9)


def test_recommended_pair_is_the_exact_unconditional_risk_difference():
    """The report's pair: RD with its exact unconditional interval, Barnard's test; values from
    R exact2x2 uncondExact2x2(2, 15, 4, 20, parmtype = "difference", method = "score",
    tsmethod = "square", conf.int = TRUE): (-0.2359074, 0.3383094), p 0.6458161."""
    t = compare_groups(*STUDY)
    rec = t.recommended()
    assert rec["interval_method"] == "risk_difference.exact_unconditional"
    assert rec["test"] == "test.barnard_pooled"
    assert (rec["ci_low"], rec["ci_high"]) == pytest.approx((-0.2359074, 0.3383094), abs=2e-6)
    assert rec["pvalue"] == pytest.approx(0.6458161, abs=1e-6)
    assert "-0.2359 to 0.3383" in rec["sentence"] and "p = 0.6458" in rec["sentence"]
    assert len(rec["confidence_set"]) == 2
    assert t.summary().startswith("Recommended: Risk difference")
    # the odds-ratio counterpart is in the panel
    orr = t.odds_ratio["exact_unconditional"]
    assert orr.method == "odds_ratio.exact_unconditional"
    assert orr.ci[0] == pytest.approx(0.1776247, abs=1e-4)  # exact2x2 parmtype = "oddsratio"
