"""Delta-adjusted pattern mixture, intra-cluster correlation, design effect, cluster-robust
risk difference.

References (each test names its own):
* statsmodels ``confint_proportions_2indep(method="wald")``: at delta = 0 the pattern mixture
  is the complete-case Wald analysis.
* Brute force: the expected completed-data risk over every number of outcomes among the
  unreached (Higgins, White and Wood 2008, "Imputation methods for missing outcome data in
  meta-analysis of clinical trials", Clinical Trials 5:225-239: the informative missingness
  odds ratio exp(delta)), and the exact sampling standard deviation over every binomial
  outcome for the delta-method standard error.
* pingouin ``intraclass_corr`` (ICC1, Shrout and Fleiss 1979) on balanced clusters;
  ``scipy.stats.f_oneway`` for the ANOVA F ratio on unbalanced ones; Kish (1965) for the
  design effect ``1 + (m - 1) ICC``; Kerry and Bland (2001, Stat Med 20:377-390) for unequal
  cluster sizes, ``1 + (sum m_i^2 / sum m_i - 1) ICC``.
* statsmodels ``OLS(...).fit(cov_type="cluster")`` for the cluster-robust risk difference.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy.special import expit, logit
from scipy.stats import binom, f_oneway

from natexp.causal.cluster import cluster_robust_rd, family_level_table
from natexp.causal.power import design_effect, icc_anova
from natexp.causal.result import InvalidInputError
from natexp.causal.sensitivity import delta_tipping_point, pattern_mixture

# ------------------------------------------------------------------ pattern mixture


@pytest.mark.parametrize("counts", [(4, 20, 26, 2, 15, 24), (30, 50, 10, 12, 40, 25)])
def test_mar_is_the_complete_case_wald_analysis(counts):
    from statsmodels.stats.proportion import confint_proportions_2indep

    x1, r1, m1, x2, r2, m2 = counts
    r = pattern_mixture(*counts)
    lo, hi = confint_proportions_2indep(x1, r1, x2, r2, method="wald", compare="diff")
    assert r.estimate == pytest.approx(x1 / r1 - x2 / r2, rel=1e-12)
    assert r.ci == pytest.approx((lo, hi), rel=1e-9)


@pytest.mark.parametrize("d1,d2", [(1.0, 0.0), (-0.7, 1.3), (2.0, 2.0)])
def test_point_estimate_is_the_expected_completion(d1, d2):
    # brute force: sum over every number k of outcomes among the m unreached, each with its
    # binomial probability under the shifted odds
    x1, r1, m1, x2, r2, m2 = 4, 20, 26, 2, 15, 24

    def arm(x, r, m, d):
        q = expit(logit(x / r) + d)
        k = np.arange(m + 1)
        return float(np.sum((x + k) / (r + m) * binom.pmf(k, m, q)))

    r = pattern_mixture(x1, r1, m1, x2, r2, m2, delta1=d1, delta2=d2)
    assert r.estimate == pytest.approx(arm(x1, r1, m1, d1) - arm(x2, r2, m2, d2), rel=1e-10)
    assert r.extra["risk1"] == pytest.approx(arm(x1, r1, m1, d1), rel=1e-10)


def test_delta_method_se_matches_the_exact_sampling_sd():
    # brute force: the arm risk as a function of the number reached r ~ Bin(n, 1 - pm) and
    # the outcomes among them x | r ~ Bin(r, p); its exact SD over every (r, x) within 8 SD
    # of the mean (the rest has negligible probability). The numbers reached are random too:
    # this is the variance Higgins, White and Wood (2008) give.
    n, pm, p, d = 3000, 0.5, 0.5, 2.0
    r_mean = round(n * (1 - pm))
    rs = np.arange(r_mean - 250, r_mean + 251)
    w_r = binom.pmf(rs, n, 1 - pm)
    moments = np.zeros(3)
    for r_, wr in zip(rs, w_r, strict=True):
        xs = np.arange(max(1, round(r_ * p) - 200), min(r_ - 1, round(r_ * p) + 200))
        w = wr * binom.pmf(xs, r_, p)
        pis = (xs + (n - r_) * expit(logit(xs / r_) + d)) / n
        moments += [w.sum(), np.sum(w * pis), np.sum(w * pis ** 2)]
    mean = moments[1] / moments[0]
    sd = math.sqrt(moments[2] / moments[0] - mean ** 2)
    m_ = n - r_mean
    x = round(r_mean * p)
    res = pattern_mixture(x, r_mean, m_, x, r_mean, m_, delta1=d, delta2=0.0)
    se_arm1 = math.sqrt(res.extra["se"] ** 2 - (x / r_mean * (1 - x / r_mean) / r_mean))
    assert se_arm1 == pytest.approx(sd, rel=0.01)
    # holding the numbers reached fixed (the variance natexp gave before issue 19) is too small
    q = expit(logit(x / r_mean) + d)
    held = math.sqrt(se_arm1 ** 2 - pm * (1 - pm) / n * (x / r_mean - q) ** 2)
    assert held < sd * 0.95


# Higgins, White and Wood (2008) as R's metasens 1.5-2 computes it (R/metamiss.R, the
# "IMOR" branch, sm = "RD", no continuity increment), transcribed here term by term with its
# own names (n.e = reached, miss.e = not reached, IMOR.e = exp(delta)):
#   p.star.e <- p.e * (1 - pmiss.e) + p.e * IMOR.e * pmiss.e / (p.e * IMOR.e + 1 - p.e)
#   var.p.star.e <- p.e * (1 - p.e) / n.e *
#     (1 - pmiss.e + pmiss.e * IMOR.e / (p.e * IMOR.e + 1 - p.e)^2)^2 +
#     pmiss.e * (1 - pmiss.e) / (n.e + miss.e) *
#     (p.e * (1 - p.e) * (IMOR.e - 1) / (p.e * IMOR.e + 1 - p.e))^2
# on the Beasley trial of haloperidol vs placebo from metamiss's own example (Higgins et al.
# 2008): response 29 of 47 reached, 22 dropped out (haloperidol); 20 of 34, 34 (placebo).
def _metamiss_rd(event_e, n_e, miss_e, event_c, n_c, miss_c, imor_e, imor_c):
    def arm(event, n, miss, imor):
        p = event / n
        pmiss = miss / (n + miss)
        star = p * (1 - pmiss) + p * imor * pmiss / (p * imor + 1 - p)
        var = (p * (1 - p) / n * (1 - pmiss + pmiss * imor / (p * imor + 1 - p) ** 2) ** 2
               + pmiss * (1 - pmiss) / (n + miss)
               * (p * (1 - p) * (imor - 1) / (p * imor + 1 - p)) ** 2)
        return star, var

    (se_, ve), (sc, vc) = arm(event_e, n_e, miss_e, imor_e), arm(event_c, n_c, miss_c, imor_c)
    return se_ - sc, math.sqrt(ve + vc)


@pytest.mark.parametrize("imor_e,imor_c", [(2.0, 2.0), (1.0, 1.0), (0.5, 3.0), (5.0, 0.2)])
def test_pattern_mixture_equals_metamiss_imor(imor_e, imor_c):
    counts = (29, 47, 22, 20, 34, 34)
    te, se = _metamiss_rd(*counts, imor_e, imor_c)
    r = pattern_mixture(*counts, delta1=math.log(imor_e), delta2=math.log(imor_c))
    assert r.estimate == pytest.approx(te, rel=1e-12)
    assert r.extra["se"] == pytest.approx(se, rel=1e-12)
    z = 1.959963984540054
    assert r.ci == pytest.approx((te - z * se, te + z * se), rel=1e-9)


@pytest.mark.parametrize("counts,d1,d2", [
    ((500, 1000, 1000, 300, 1200, 700), 2.0, -0.5),
    ((290, 470, 220, 200, 340, 340), math.log(2), math.log(2)),
])
def test_pattern_mixture_agrees_with_multiple_imputation(counts, d1, d2):
    # an independent implementation: proper multiple imputation as trialists do it (Carpenter
    # and Kenward 2013, Multiple Imputation and its Application, ch. 10: delta-adjusted MNAR
    # imputation): per arm, fit the observed-data logistic model (statsmodels Logit, intercept
    # only: no covariates), draw its parameter from the approximate posterior N(beta_hat, var),
    # impute every unreached outcome as Bernoulli(expit(beta* + delta)), then combine the
    # completed-data risk differences with Rubin's rules. In large samples the MI estimate and
    # total standard error equal the pattern mixture's (within Monte Carlo error).
    import statsmodels.api as sm

    rng = np.random.default_rng(20250101)
    n_imp = 10_000

    def impute(x, r, m, delta):
        y = np.r_[np.ones(x), np.zeros(r - x)]
        fit = sm.Logit(y, np.ones((r, 1))).fit(disp=0)
        beta = rng.normal(fit.params[0], math.sqrt(fit.cov_params()[0, 0]), n_imp)
        k = rng.binomial(m, expit(beta + delta))  # sum of m Bernoulli draws per imputation
        pi = (x + k) / (r + m)
        return pi, pi * (1 - pi) / (r + m)

    x1, r1, m1, x2, r2, m2 = counts
    e1, w1 = impute(x1, r1, m1, d1)
    e2, w2 = impute(x2, r2, m2, d2)
    q = e1 - e2
    within, between = float(np.mean(w1 + w2)), float(np.var(q, ddof=1))
    mi_est = float(np.mean(q))
    mi_se = math.sqrt(within + (1 + 1 / n_imp) * between)
    mc_err = math.sqrt(between / n_imp)
    r = pattern_mixture(*counts, delta1=d1, delta2=d2)
    assert abs(r.estimate - mi_est) < 4 * mc_err + 2e-3
    # SE: Monte Carlo error of the between-imputation variance is about sqrt(2 / n_imp); the
    # variance holding the numbers reached fixed (natexp before issue 19) is 3.5% too small in
    # the first case
    assert r.extra["se"] == pytest.approx(mi_se, rel=0.015)


def test_pattern_mixture_degenerate_and_invalid():
    r = pattern_mixture(0, 10, 5, 3, 10, 5, delta1=2.0)
    assert r.extra["risk1"] == 0.0 and "cannot move" in r.note
    assert math.isnan(pattern_mixture(0, 0, 5, 3, 10, 5).estimate)
    with pytest.raises(InvalidInputError):
        pattern_mixture(4, 20, 26, 2, 15, 24, delta1=math.inf)
    with pytest.raises(InvalidInputError):
        pattern_mixture(25, 20, 26, 2, 15, 24)


def test_tipping_delta_is_where_the_conclusion_changes():
    counts = (4, 20, 26, 2, 15, 24)
    t = delta_tipping_point(*counts, deltas=[-1.0, 0.0, 1.0])
    assert t.frame.height == 9
    base = pattern_mixture(*counts)
    base_state = (base.estimate > 0, not base.ci_low <= 0 <= base.ci_high)
    for key, v in t.meta["tipping"].items():
        if v is None:
            continue
        arm, _ = key.rsplit("_", 1)
        a, b = {"treatment": (1, 0), "control": (0, 1), "both": (1, 1)}[arm]
        d = v["delta"]
        before = pattern_mixture(*counts, delta1=a * d * 0.999, delta2=b * d * 0.999)
        after = pattern_mixture(*counts, delta1=a * d * 1.001, delta2=b * d * 1.001)
        assert (before.estimate > 0, not before.ci_low <= 0 <= before.ci_high) == base_state
        assert (after.estimate > 0, not after.ci_low <= 0 <= after.ci_high) != base_state
    assert t.meta["tipping"]["treatment_up"]["changes_to"] == "significant"


# ------------------------------------------------------------------ ICC and design effect


def test_icc_equals_pingouin_icc1_on_balanced_clusters():
    pg = pytest.importorskip("pingouin")
    rng = np.random.default_rng(3)
    k, m = 12, 5
    effect = rng.normal(0, 1, k)
    y = (rng.random((k, m)) < expit(effect[:, None] - 0.5)).astype(float)
    long = pl.DataFrame({"cluster": np.repeat(np.arange(k), m), "member": np.tile(
        np.arange(m), k), "y": y.ravel()}).to_pandas()
    ref = pg.intraclass_corr(long, targets="cluster", raters="member", ratings="y")
    icc1 = float(ref.set_index("Type").loc["ICC(1,1)", "ICC"])  # pingouin 0.7 label of ICC1
    f1 = float(ref.set_index("Type").loc["ICC(1,1)", "F"])
    mine = icc_anova(long["y"].to_numpy(), long["cluster"].to_numpy())
    assert mine.extra["icc_raw"] == pytest.approx(icc1, rel=1e-9)
    assert mine.extra["n0"] == pytest.approx(m)
    assert mine.statistic == pytest.approx(f1, rel=1e-9)


def test_icc_f_ratio_equals_scipy_on_unbalanced_clusters():
    rng = np.random.default_rng(9)
    sizes = [2, 7, 3, 5, 1, 4]
    groups = [(rng.random(s) < 0.4).astype(float) for s in sizes]
    groups[0] = np.array([1.0, 0.0])
    y = np.concatenate(groups)
    cl = np.repeat(np.arange(len(sizes)), sizes)
    mine = icc_anova(y, cl)
    assert mine.statistic == pytest.approx(f_oneway(*groups).statistic, rel=1e-10)
    n = len(y)
    n0 = (n - sum(s * s for s in sizes) / n) / (len(sizes) - 1)
    assert mine.extra["n0"] == pytest.approx(n0)


def test_icc_degenerate():
    assert math.isnan(icc_anova([1, 0], ["a", "a"]).estimate)
    neg = icc_anova([1, 0, 1, 0], ["a", "a", "b", "b"])  # within > between: negative
    assert neg.extra["icc_raw"] < 0 and neg.estimate == 0.0 and "negative" in neg.note


def test_design_effect_kish_and_unequal_sizes():
    assert design_effect(0.05, 20) == pytest.approx(1.95)  # Kish (1965)
    sizes = np.array([3, 8, 1, 6, 2])
    rho = 0.07
    kerry_bland = 1 + (np.sum(sizes ** 2) / np.sum(sizes) - 1) * rho
    assert design_effect(rho, sizes.mean(), sizes.std() / sizes.mean()) == pytest.approx(
        kerry_bland, rel=1e-12)
    with pytest.raises(InvalidInputError):
        design_effect(1.5, 3)


# ------------------------------------------------------------------ cluster-robust


def test_cluster_robust_rd_equals_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(1)
    fam = rng.integers(0, 60, 400)
    grp = (fam % 4 == 0).astype(float)
    y = (rng.random(400) < 0.2 + 0.25 * grp + 0.2 * (fam % 3 == 0)).astype(float)
    fit = sm.OLS(y, sm.add_constant(grp)).fit(cov_type="cluster", cov_kwds={"groups": fam})
    r = cluster_robust_rd(y, grp, fam)
    assert r.estimate == pytest.approx(fit.params[1], rel=1e-10)
    assert r.extra["se_cluster"] == pytest.approx(fit.bse[1], rel=1e-10)
    assert r.pvalue == pytest.approx(fit.pvalues[1], rel=1e-8)
    assert r.ci == pytest.approx(tuple(fit.conf_int()[1]), rel=1e-8)


def test_cluster_robust_rd_without_a_residual_degree_of_freedom_says_so():
    """Two observations, one per group and cluster: the two-parameter fit has no residual
    degree of freedom and CR1's factor (n - 1) / (n - 2) divided by zero (found by the
    degenerate-extract property test on a two-family staggered extract)."""
    r = cluster_robust_rd([1, 0], [1, 0], ["a", "b"])
    assert math.isnan(r.estimate) and math.isnan(r.pvalue)
    assert "three observations" in r.note and r.extra["clusters"] == 2
    assert not math.isnan(cluster_robust_rd([1, 0, 1], [1, 0, 0], ["a", "b", "c"]).pvalue)


def test_family_level_table_and_invalid():
    y = [1, 0, 0, 0, 1, 1, 0]
    g = [1, 1, 1, 0, 0, 0, 0]
    f = ["a", "a", "b", "c", "c", "d", "e"]
    assert family_level_table(y, g, f) == {"x1": 1, "n1": 2, "x0": 2, "n0": 3}
    with pytest.raises(InvalidInputError, match="constant within"):
        cluster_robust_rd([1, 0, 1], [1, 0, 0], ["a", "a", "b"])
    with pytest.raises(InvalidInputError, match="constant within"):
        family_level_table([1, 0, 1], [1, 0, 0], ["a", "a", "b"])
    with pytest.raises(InvalidInputError):
        cluster_robust_rd([2, 0], [1, 0], ["a", "b"])
