"""Staggered-rollout estimators against published output.

References (each value below names its source next to it):

* [README] R package ``did``, bcallaway11/did, ``README.md`` (devel 2.5.0, commit
  0c4287f43c2964a580e3291cdc00e6bcdcfd1317), "A short example": ``att_gt(yname="lemp",
  gname="first.treat", idname="countyreal", tname="year", xformla=~1, data=mpdta,
  est_method="reg")``, its ``aggte(type="dynamic")`` and ``aggte(type="group")``. With no
  covariates every ``est_method`` gives the same point estimates. Standard errors there are
  multiplier-bootstrap SEs (``bstrap = TRUE`` is the default); the pre-test p-value 0.16812 is
  computed from the analytic covariance matrix.
* [CSDID-PY] Python port ``csdid``, d2cml-ai/csdid ``README.md`` (commit
  20f5379d716e8e6b5b5c337d05d29f1dc8d98f5c): ``out.aggte(typec='calendar')`` on the same data.
* [STATA] F. Rios-Avila, "CSDID Version 1.6", friosavila/playingwithstata ``drdid/csdid_stata.md``
  (commit 245dad638bc985a11d6bf514748f7bd0702d5dfd): ``csdid lemp lpop, ivar(countyreal)
  time(year) gvar(first_treat) method(dripw)`` -- the doubly robust estimator R ``did`` uses by
  default, with ANALYTIC (asymptotic) standard errors -- and its ``estat pretrend``, ``estat
  simple``, ``estat calendar``, ``estat group`` and ``estat event``. The page states its point
  estimates equal R's and that its SEs are R's with ``bstrap = F``.
* statsmodels (live) for the 2x2 analytic SE identity, scipy (live) for permutation p-values,
  linearmodels/statsmodels (live) for the TWFE coefficient, and de Chaisemartin and
  D'Haultfoeuille (2020, AER 110(9), Theorem 1) for the TWFE weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from natexp.causal.result import InvalidInputError, Result
from natexp.causal.staggered import (
    AggregateResult,
    GroupTimeResult,
    aggte,
    att_gt,
    randomization_inference,
    twfe,
    wild_bootstrap,
)

MPDTA = Path(__file__).resolve().parents[1] / "data" / "mpdta.csv"
COLS = dict(outcome="lemp", unit="countyreal", time="year", first_treated="first.treat",
            never_treated=0)


@pytest.fixture(scope="module")
def mpdta() -> pl.DataFrame:
    return pl.read_csv(MPDTA)


@pytest.fixture(scope="module")
def cs(mpdta) -> GroupTimeResult:
    return att_gt(mpdta, **COLS)


@pytest.fixture(scope="module")
def cs_lpop(mpdta) -> GroupTimeResult:
    return att_gt(mpdta, covariates=["lpop"], **COLS)


def _cell(res: GroupTimeResult, g: int, t: int) -> Result:
    (r,) = [c for c in res.cells if c.extra["group"] == g and c.extra["time"] == t]
    return r


# [README] "Group-Time Average Treatment Effects" table, ATT(g,t) column (4 decimals).
README_ATT_GT = {
    (2004, 2004): -0.0105, (2004, 2005): -0.0704, (2004, 2006): -0.1373, (2004, 2007): -0.1008,
    (2006, 2004): 0.0065, (2006, 2005): -0.0028, (2006, 2006): -0.0046, (2006, 2007): -0.0412,
    (2007, 2004): 0.0305, (2007, 2005): -0.0027, (2007, 2006): -0.0311, (2007, 2007): -0.0261,
}


def test_mpdta_group_time_att_match_did_readme(cs):
    assert len(cs.cells) == 12
    for (g, t), published in README_ATT_GT.items():
        assert round(_cell(cs, g, t).estimate, 4) == pytest.approx(published, abs=1e-12), (g, t)
    assert cs.n_units == 500


def test_mpdta_pretest_matches_did_readme(cs):
    # [README] "P-value for pre-test of parallel trends assumption:  0.16812" (analytic V).
    assert cs.pretest.extra["df"] == 5
    assert round(cs.pretest.pvalue, 5) == pytest.approx(0.16812, abs=1e-12)


def test_mpdta_dynamic_aggregation_matches_did_readme(cs):
    es = aggte(cs, "dynamic")
    # [README] summary(es): overall -0.0772; event times -3..3.
    assert round(es.overall.estimate, 4) == pytest.approx(-0.0772, abs=1e-12)
    published = {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373,
                 3: -0.1008}
    got = {r.extra["event_time"]: r.estimate for r in es.effects}
    assert set(got) == set(published)
    for e, v in published.items():
        assert round(got[e], 4) == pytest.approx(v, abs=1e-12), e


def test_mpdta_group_aggregation_matches_did_readme(cs):
    gr = aggte(cs, "group")
    # [README] summary(group_effects): overall -0.031; groups 2004, 2006, 2007.
    assert round(gr.overall.estimate, 3) == pytest.approx(-0.031, abs=1e-12)
    published = {2004: -0.0797, 2006: -0.0229, 2007: -0.0261}
    got = {r.extra["group"]: r.estimate for r in gr.effects}
    for g, v in published.items():
        assert round(got[g], 4) == pytest.approx(v, abs=1e-12), g


def test_mpdta_calendar_aggregation_matches_csdid_readme(cs):
    cal = aggte(cs, "calendar")
    # [CSDID-PY] out.aggte(typec='calendar'): overall -0.0417; 2004..2007.
    assert round(cal.overall.estimate, 4) == pytest.approx(-0.0417, abs=1e-12)
    published = {2004: -0.0105, 2005: -0.0704, 2006: -0.0488, 2007: -0.0371}
    got = {r.extra["time"]: r.estimate for r in cal.effects}
    for t, v in published.items():
        assert round(got[t], 4) == pytest.approx(v, abs=1e-12), t


def test_mpdta_simple_aggregation_from_published_cells_and_weights(mpdta, cs):
    # Callaway & Sant'Anna (2021) simple aggregation: post cells weighted by P(G = g).
    # Inputs are published: the ATT(g,t) of [README] and the cohort weights w2004 = .104712,
    # w2006 = .2094241, w2007 = .6858639 printed in the "wgt" equation of the "CSDID Version
    # 1.0" write-up by F. Rios-Avila (an earlier revision of the [STATA] page). They are the
    # cohort shares of mpdta's 191 treated counties (20, 40, 131), checked here. Gives -0.0400.
    w = {2004: 0.104712, 2006: 0.2094241, 2007: 0.6858639}
    sizes = mpdta.filter(pl.col("year") == 2003).group_by("first.treat").len()
    sizes = dict(sizes.filter(pl.col("first.treat") > 0).iter_rows())
    for g, share in w.items():
        assert sizes[g] / sum(sizes.values()) == pytest.approx(share, abs=6e-8)
    post = [(g, t) for (g, t) in README_ATT_GT if t >= g]
    expected = sum(w[g] * README_ATT_GT[(g, t)] for g, t in post) / sum(w[g] for g, _ in post)
    assert round(expected, 4) == -0.0400
    simple = aggte(cs, "simple").overall
    assert round(simple.estimate, 4) == pytest.approx(-0.0400, abs=1e-12)
    assert simple.estimate == pytest.approx(expected, abs=5e-5)  # README cells are rounded


def test_unconditional_cell_se_equals_hc0_of_the_2x2_regression(mpdta, cs):
    # With no covariates the influence-function SE of ATT(g,t) is sqrt(s1^2/n1 + s0^2/n0)
    # (variances with divisor n), which is the HC0 SE of the slope in OLS of the long difference
    # on the treated-cohort dummy over cohort-g and never-treated units. Reference: statsmodels.
    wide = mpdta.pivot(on="year", index=["countyreal", "first.treat"], values="lemp")
    for g, t, base in [(2004, 2004, 2003), (2004, 2007, 2003), (2006, 2005, 2004),
                       (2007, 2006, 2005)]:
        sub = wide.filter(pl.col("first.treat").is_in([0, g]))
        dy = (sub[str(t)] - sub[str(base)]).to_numpy()
        d = (sub["first.treat"] == g).cast(pl.Float64).to_numpy()
        fit = sm.OLS(dy, sm.add_constant(d)).fit(cov_type="HC0")
        cell = _cell(cs, g, t)
        assert cell.estimate == pytest.approx(fit.params[1], rel=1e-10)
        assert cell.extra["se"] == pytest.approx(fit.bse[1], rel=1e-10)
        assert cell.extra["base_time"] == base


# [STATA] csdid ... method(dripw), coefficient and (analytic) Std. err. columns.
STATA_DR = {
    (2004, 2004): (-0.0145297, 0.0221292), (2004, 2005): (-0.0764219, 0.0286713),
    (2004, 2006): (-0.1404483, 0.0353782), (2004, 2007): (-0.1069039, 0.0328865),
    (2006, 2004): (-0.0004721, 0.0222234), (2006, 2005): (-0.0062025, 0.0184957),
    (2006, 2006): (0.0009606, 0.0194002), (2006, 2007): (-0.0412939, 0.0197211),
    (2007, 2004): (0.0267278, 0.0140657), (2007, 2005): (-0.0045766, 0.0157178),
    (2007, 2006): (-0.0284475, 0.0181809), (2007, 2007): (-0.0287814, 0.016239),
}


def test_mpdta_doubly_robust_cells_and_analytic_se_match_stata_csdid(cs_lpop):
    for (g, t), (att, se) in STATA_DR.items():
        cell = _cell(cs_lpop, g, t)
        assert cell.estimate == pytest.approx(att, abs=6e-8), (g, t)
        assert cell.extra["se"] == pytest.approx(se, abs=6e-8), (g, t)
        assert cell.method == "att_gt.dr"


def test_mpdta_doubly_robust_pretest_matches_stata_csdid(cs_lpop):
    # [STATA] estat pretrend: chi2(5) = 6.841824981670454, p-value = .2326722805724242
    assert cs_lpop.pretest.statistic == pytest.approx(6.841824981670454, rel=1e-9)
    assert cs_lpop.pretest.pvalue == pytest.approx(0.2326722805724242, rel=1e-9)


def test_mpdta_doubly_robust_aggregations_match_stata_csdid(cs_lpop):
    def check(res: Result, att: float, se: float) -> None:
        assert res.estimate == pytest.approx(att, abs=6e-8)
        assert res.extra["se"] == pytest.approx(se, abs=6e-8)

    # [STATA] estat simple: ATT -.0417518 (.0115028)
    check(aggte(cs_lpop, "simple").overall, -0.0417518, 0.0115028)
    # [STATA] estat calendar
    cal = {r.extra["time"]: r for r in aggte(cs_lpop, "calendar").effects}
    for t, (att, se) in {2004: (-0.0145297, 0.0221292), 2005: (-0.0764219, 0.0286713),
                         2006: (-0.0461757, 0.0212107), 2007: (-0.0395822, 0.0129299)}.items():
        check(cal[t], att, se)
    # [STATA] estat group
    grp = {r.extra["group"]: r for r in aggte(cs_lpop, "group").effects}
    for g, (att, se) in {2004: (-0.0845759, 0.0245649), 2006: (-0.0201666, 0.0174696),
                         2007: (-0.0287814, 0.016239)}.items():
        check(grp[g], att, se)
    # [STATA] estat event: T-3 .. T+3
    ev = {r.extra["event_time"]: r for r in aggte(cs_lpop, "dynamic").effects}
    for e, (att, se) in {-3: (0.0267278, 0.0140657), -2: (-0.0036165, 0.0129283),
                         -1: (-0.023244, 0.0144851), 0: (-0.0210604, 0.0114942),
                         1: (-0.0530032, 0.0163465), 2: (-0.1404483, 0.0353782),
                         3: (-0.1069039, 0.0328865)}.items():
        check(ev[e], att, se)


def test_wild_bootstrap_se_close_to_did_readme_bootstrap_se(cs):
    # [README] bootstrap SEs of the overall ATTs: dynamic 0.0196, group 0.0123. Bootstrap SEs
    # are Monte Carlo quantities (R prints different values on every run: the csdid README
    # shows 0.0207 and 0.0124), so agreement within 15% is what can be asked.
    for kind, published in (("dynamic", 0.0196), ("group", 0.0123)):
        boot = wild_bootstrap(aggte(cs, kind), n_boot=999, rng=np.random.default_rng(20260101))
        assert boot.extra["exact"] is False
        assert boot.extra["se"] == pytest.approx(published, rel=0.15), kind
        assert boot.ci[0] < aggte(cs, kind).overall.estimate < boot.ci[1]


# ---------------------------------------------------------------------------------------------
# synthetic panels with known effects


def _panel(cohorts: dict, periods: int, effect, noise: float = 0.0, seed: int = 0):
    """Unit effect + period effect + effect(event time) (+ N(0, noise^2)), cohorts {g: units}."""
    rng = np.random.default_rng(seed)
    rows, uid = [], 0
    for g, k in cohorts.items():
        for _ in range(k):
            uid += 1
            alpha = rng.normal()
            for t in range(1, periods + 1):
                eff = 0.0 if (g is None or t < g) else effect(t - g)
                y = alpha + 0.3 * t * t + eff + noise * rng.normal()
                rows.append({"u": uid, "t": t, "g": g, "y": y})
    return pl.DataFrame(rows)


SYN = dict(outcome="y", unit="u", time="t", first_treated="g")


def test_constant_effect_is_recovered_by_att_gt_and_twfe():
    df = _panel({3: 15, 5: 15, None: 20}, periods=6, effect=lambda e: 2.0, noise=0.2, seed=7)
    res = att_gt(df, **SYN)
    for kind in ("simple", "group", "dynamic", "calendar"):
        overall = aggte(res, kind).overall
        assert abs(overall.estimate - 2.0) < 3 * overall.extra["se"], kind
        assert overall.ci[0] < 2.0 < overall.ci[1], kind
    pre = [c for c in res.cells if not c.extra["post"]]
    assert all(abs(c.estimate) < 4 * c.extra["se"] for c in pre)
    # homogeneous constant effect: TWFE is unbiased too
    tw = twfe(df, **SYN)
    assert abs(tw.estimate - 2.0) < 3 * tw.extra["se"]


def test_twfe_is_biased_with_dynamic_effects_and_matches_dcdh_weights():
    # Effects grow with exposure (1 + 2e); no noise, so every ATT(g,t) is known exactly.
    df = _panel({2: 3, 4: 3, None: 2}, periods=5, effect=lambda e: 1.0 + 2.0 * e)
    res = att_gt(df, **SYN)
    for c in res.cells:
        truth = 1.0 + 2.0 * c.extra["event_time"] if c.extra["post"] else 0.0
        assert c.estimate == pytest.approx(truth, abs=1e-9)
    # simple aggregation by hand: equal cohorts, post cells 1, 3, 5, 7 (g=2) and 1, 3 (g=4)
    assert aggte(res, "simple", min_cohort_size=1).overall.estimate == pytest.approx(
        (16 + 4) / 6, rel=1e-12)

    tw = twfe(df, **SYN)
    # Reference 1 (statsmodels): OLS with unit and period dummies gives the same coefficient.
    pdf = df.to_pandas()
    pdf["D"] = (pdf["g"].notna() & (pdf["t"] >= pdf["g"])).astype(float)
    import statsmodels.formula.api as smf

    ols = smf.ols("y ~ D + C(u) + C(t)", data=pdf).fit()
    assert tw.estimate == pytest.approx(ols.params["D"], rel=1e-9)
    # Reference 2: de Chaisemartin & D'Haultfoeuille (2020), Theorem 1: beta_fe equals
    # sum_(treated cells) w_gt * ATT_gt with w proportional to the residual of D on unit and
    # period effects (balanced panel: D - mean_i - mean_t + mean).
    d = pdf.pivot(index="u", columns="t", values="D").to_numpy()
    eff = np.where(d == 1, 1.0 + 2.0 * (np.arange(1, 6)[None, :]
                                        - pdf.groupby("u")["g"].first().to_numpy()[:, None]), 0)
    eps = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
    w = eps[d == 1] / eps[d == 1].sum()
    assert tw.estimate == pytest.approx(float(w @ eff[d == 1]), rel=1e-9)
    assert tw.extra["n_negative_weights"] == int((w < 0).sum()) > 0
    # ... and it is far from every Callaway-Sant'Anna summary (all effects are >= 1).
    assert tw.estimate < 1.2 < 3.0 <= min(aggte(res, k, min_cohort_size=1).overall.estimate
                                          for k in ("simple", "group", "dynamic"))
    assert "Goodman-Bacon 2021" in tw.note and "D'Haultfoeuille 2020" in tw.note
    assert any("negative weight" in x for x in tw.diagnostics)


def test_single_unit_cohort_is_flagged():
    df = _panel({2: 1, 3: 4, None: 4}, periods=4, effect=lambda e: 1.0, noise=0.1, seed=3)
    res = att_gt(df, **SYN)
    assert any("first treated at 2 contains a single unit" in d for d in res.diagnostics)
    assert any("single unit" in d for d in _cell(res, 2, 2).diagnostics)
    assert not any("single unit" in d for d in _cell(res, 3, 3).diagnostics)
    assert any("single unit" in d for d in aggte(res, "simple",
                                                 min_cohort_size=1).overall.diagnostics)
    assert any("single unit" in d for d in twfe(df, **SYN).diagnostics)


def test_not_yet_treated_controls_and_universal_base():
    df = _panel({2: 3, 3: 3, 4: 3}, periods=4, effect=lambda e: 1.0 + e)
    with pytest.raises(InvalidInputError, match="notyettreated"):
        att_gt(df, **SYN)
    res = att_gt(df, control_group="notyettreated", **SYN)
    # ATT(2,2) compares cohort 2 with cohorts 3 and 4; ATT(4,4) has no comparison unit left.
    assert _cell(res, 2, 2).n == (3, 6)
    assert _cell(res, 2, 3).n == (3, 3)
    assert math.isnan(_cell(res, 4, 4).estimate) and "no comparison" in _cell(res, 4, 4).note
    for c in res.cells:
        if math.isfinite(c.estimate):
            truth = 1.0 + c.extra["event_time"] if c.extra["post"] else 0.0
            assert c.estimate == pytest.approx(truth, abs=1e-9)
    assert "left out" in aggte(res, "simple", min_cohort_size=1).overall.note
    uni = att_gt(df, control_group="notyettreated", base_period="universal", **SYN)
    ref = _cell(uni, 3, 2)
    assert ref.estimate == 0.0 and "reference period" in ref.note


def test_randomization_inference_equals_scipy_exact_permutation_test():
    # Two periods, one treated cohort: the CS ATT is mean(dy | treated) - mean(dy | never), and
    # re-assigning go-live dates permutes dy between the two groups; scipy's exact independent
    # permutation test over the C(9, 4) = 126 partitions is the reference.
    df = _panel({2: 4, None: 5}, periods=2, effect=lambda e: 0.6, noise=0.5, seed=11)
    wide = df.pivot(on="t", index=["u", "g"], values="y")
    dy = (wide["2"] - wide["1"]).to_numpy()
    treated = wide["g"].is_not_null().to_numpy()
    for alternative in ("greater", "less"):
        ref = stats.permutation_test(
            (dy[treated], dy[~treated]), lambda x, y: np.mean(x) - np.mean(y),
            permutation_type="independent", alternative=alternative, n_resamples=np.inf)
        ri = randomization_inference(df, alternative=alternative, **SYN)
        assert ri.extra["exact"] and ri.extra["n_assignments"] == 126
        assert ri.estimate == pytest.approx(ref.statistic, rel=1e-12)
        assert ri.pvalue == pytest.approx(ref.pvalue, rel=1e-12)


def test_randomization_inference_monte_carlo_is_reproducible():
    df = _panel({2: 3, 3: 3, None: 6}, periods=3, effect=lambda e: 0.0, noise=1.0, seed=5)
    a = randomization_inference(df, n_permutations=99, rng=123, **SYN)
    b = randomization_inference(df, n_permutations=99, rng=np.random.default_rng(123), **SYN)
    assert not a.extra["exact"] and a.extra["n_assignments"] == 18480
    assert a.pvalue == b.pvalue and 1 / 100 <= a.pvalue <= 1


def test_exact_rademacher_bootstrap_variance_is_the_analytic_variance():
    # With all 2^G sign patterns, E[(sum_c xi_c S_c)^2] = sum_c S_c^2 exactly (E xi = 0,
    # E xi^2 = 1, independent), i.e. the analytic clustered variance of R did.
    df = _panel({2: 3, 3: 2, None: 3}, periods=3, effect=lambda e: 1.0, noise=0.5, seed=2)
    agg = aggte(att_gt(df, **SYN), "simple", min_cohort_size=1)
    boot = wild_bootstrap(agg, n_boot=1000)
    assert boot.extra["exact"] and boot.extra["n_boot"] == 256
    sums = np.asarray(agg.influence)
    assert math.sqrt(np.sum(sums**2)) / 8 == pytest.approx(agg.overall.extra["se"], rel=1e-12)
    assert any("distinct" in d for d in boot.diagnostics)
    webb = wild_bootstrap(agg, weights="webb", n_boot=199, rng=1)
    assert not webb.extra["exact"] and 0 < webb.pvalue <= 1


def test_containers_are_immutable_and_serialise(cs):
    agg = aggte(cs, "dynamic")
    assert isinstance(agg, AggregateResult)
    with pytest.raises(AttributeError):
        cs.cells = ()  # type: ignore[misc]
    with pytest.raises(ValueError):
        cs.influence[0, 0] = 1.0
    frame = cs.to_polars()
    assert frame.height == 12 and {"group", "time", "estimate", "se"} <= set(frame.columns)
    assert agg.to_polars().height == 8
    import json

    json.dumps(cs.to_dict())
    json.dumps(agg.to_dict())
    assert "ATT(g,t)" in cs.summary() and "<table>" in cs._repr_html_()
    assert "event study" in agg.summary() and "<table>" in agg._repr_html_()


def test_confidence_level_and_alternative(cs):
    cell = _cell(cs, 2004, 2006)
    se = cell.extra["se"]
    assert cell.ci[1] - cell.ci[0] == pytest.approx(2 * stats.norm.ppf(0.975) * se)
    greater = aggte(cs, "group", alternative="greater", confidence_level=0.9).overall
    assert greater.ci[1] == math.inf
    assert greater.pvalue == pytest.approx(stats.norm.sf(greater.statistic))


def test_wrong_input_raises(mpdta):
    with pytest.raises(InvalidInputError):
        att_gt(mpdta, control_group="everyone", **COLS)
    with pytest.raises(InvalidInputError):
        att_gt(mpdta, base_period="fixed", **COLS)
    with pytest.raises(InvalidInputError):
        att_gt(mpdta, anticipation=-1, **COLS)
    with pytest.raises(InvalidInputError):
        att_gt(mpdta, confidence_level=95, **COLS)
    with pytest.raises(InvalidInputError):
        att_gt(mpdta, alternative="two_sided", **COLS)
    with pytest.raises(InvalidInputError):
        att_gt(mpdta, outcome="missing", **{k: v for k, v in COLS.items() if k != "outcome"})
    res = att_gt(mpdta, **COLS)
    with pytest.raises(InvalidInputError):
        aggte(res, "cohort")
    with pytest.raises(InvalidInputError):
        wild_bootstrap(aggte(res, "simple"), weights="mammen")


def test_degenerate_panel_gives_nan_with_note():
    # one treated unit vs one never-treated unit: point estimate, but no variance
    df = pl.DataFrame({"u": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [2, 2, None, None],
                       "y": [1.0, 2.0, 1.0, 1.0]})
    res = att_gt(df, **SYN)
    cell = res.cells[0]
    assert cell.estimate == 1.0 and math.isnan(cell.extra["se"]) and cell.note
    tw = twfe(df.with_columns(pl.lit(None, dtype=pl.Int64).alias("g")), **SYN)
    assert math.isnan(tw.estimate) and "does not vary" in tw.note


def test_clustering_on_the_unit_reproduces_the_default_and_coarser_clusters_run():
    df = _panel({2: 4, 3: 4, None: 8}, periods=4, effect=lambda e: 1.0, noise=0.3, seed=9)
    df = df.with_columns(pl.col("u").alias("same"), (pl.col("u") % 4).alias("region"))
    base = att_gt(df, **SYN)
    same = att_gt(df, cluster="same", **SYN)
    for a, b in zip(base.cells, same.cells, strict=True):
        assert a.extra["se"] == pytest.approx(b.extra["se"], rel=1e-12)
    coarse = att_gt(df, cluster="region", **SYN)
    assert coarse.n_clusters == 4 and any("only 4 clusters" in d for d in coarse.diagnostics)
    tw = twfe(df, cluster="region", **SYN)
    assert tw.extra["n_clusters"] == 4
    with pytest.raises(InvalidInputError, match="constant within a unit"):
        att_gt(df.with_columns(pl.col("t").alias("bad")), cluster="bad", **SYN)


def test_incomplete_units_are_dropped_with_a_diagnostic(mpdta):
    holed = mpdta.with_columns(
        pl.when((pl.col("countyreal") == 8001) & (pl.col("year") == 2005))
        .then(None).otherwise(pl.col("lemp")).alias("lemp"))
    res = att_gt(holed, **COLS)
    assert res.n_units == 499
    assert any("1 unit(s) dropped" in d for d in res.diagnostics)


def test_area_period_panel_end_to_end():
    import datetime as dt

    from natexp.data.panel import area_period_panel
    from natexp.data.rollout import load_rollout

    rollout = load_rollout()
    rng = np.random.default_rng(0)
    areas = rollout["area"].to_list()
    n = 400
    days = rng.integers(0, (dt.date(2024, 6, 30) - dt.date(2022, 7, 1)).days + 1, size=n)
    fam = pl.LazyFrame({
        "area": [areas[i % len(areas)] for i in range(n)],
        "reception_date": [dt.date(2022, 7, 1) + dt.timedelta(days=int(d)) for d in days],
        "chas_support": rng.random(n) < 0.2,
    })
    panel = area_period_panel(fam, rollout, outcome="chas_support", start=dt.date(2022, 7, 1),
                              end=dt.date(2024, 6, 30))
    res = att_gt(panel, control_group="notyettreated")
    # Oxfordshire areas were live before the window (negative first_treated): dropped.
    assert any("already treated in the first period" in d for d in res.diagnostics)
    # Milton Keynes is the only area going live in Q4 2022.
    assert any("first treated at 1 contains a single unit" in d for d in res.diagnostics)
    assert math.isfinite(aggte(res, "simple", small_cohorts="include").overall.estimate)
    assert math.isfinite(twfe(panel).estimate)


# ---------------------------------------------------------------------------------------------
# few-cluster inference: CR1 conventions, t(G-1), wild cluster restricted bootstrap-t
#
# Reference values below were generated outside natexp, in a separate virtual environment
# (Python 3.11) with pyfixest 0.60.0 and wildboottest 0.3.2 (PyPI), statsmodels 0.15.0, on
# tests/data/mpdta.csv with D = (first.treat > 0) & (year >= first.treat) and
# state = countyreal // 1000 (FIPS state code; treatment in mpdta is assigned by state).
# Neither package is a natexp dependency; the calls are quoted next to each value.

from natexp.causal.staggered import (  # noqa: E402
    _cs_wcr,
    _drdid_panel,
    _linear_weights,
    _se_from_if,
    _twfe_fit,
    _twfe_wcr,
    aggte_wcr,
    pretrend_check,
    twfe_wcr,
)


@pytest.fixture(scope="module")
def mpdta_state(mpdta) -> pl.DataFrame:
    return mpdta.with_columns((pl.col("countyreal") // 1000).alias("state"))


def test_twfe_cr1_matches_pyfixest_crv1_with_t_g_minus_1(mpdta_state):
    # pyfixest: pf.feols("lemp ~ D | countyreal + year", data=mpdta, vcov={"CRV1": cl}).tidy()
    # -> Estimate, Std. Error, Pr(>|t|), 2.5%, 97.5% (t(G-1) reference, fixest's ssc default).
    ref = {
        "unit": (0.013265155429338904, 0.00607895216361487, -0.06261137742210905,
                 -0.010486495926024925),
        "state": (0.02266325039144043, 0.11802641023097626, -0.08297250063218745,
                  0.009874627284053465),
    }
    for cl, (se, p, lo, hi) in ref.items():
        tw = twfe(mpdta_state, cluster=cl, **COLS)
        assert tw.estimate == pytest.approx(-0.03654893667406699, rel=1e-10)
        assert tw.extra["se"] == pytest.approx(se, rel=1e-10), cl
        assert tw.pvalue == pytest.approx(p, rel=1e-8), cl
        assert tw.ci == pytest.approx((lo, hi), rel=1e-9), cl
        assert tw.extra["df"] == tw.extra["n_clusters"] - 1
        assert "fixest" in tw.note
    # vcov="hetero": HC1, t(N - K) -> 0.012360100485449436, p 0.0031428701214029076
    hc = twfe(mpdta_state, cluster=None, **COLS)
    assert hc.extra["se"] == pytest.approx(0.012360100485449436, rel=1e-10)
    assert hc.pvalue == pytest.approx(0.0031428701214029076, rel=1e-8)


def test_twfe_areg_convention_matches_pyfixest_full_fixef_k(mpdta_state):
    # pf.feols(..., vcov={"CRV1": "countyreal"}, ssc=pf.ssc(fixef_k="full")): every fixed
    # effect counted in K, as Stata areg -> Std. Error 0.014831638020660268.
    areg = twfe(mpdta_state, small_sample="areg", **COLS)
    assert areg.extra["se"] == pytest.approx(0.014831638020660268, rel=1e-10)
    fixest = twfe(mpdta_state, **COLS)
    # the ratio the issue reported (1.117x): sqrt((N - K_fixest) / (N - K_areg))
    assert areg.extra["se"] / fixest.extra["se"] == pytest.approx(
        math.sqrt((2500 - 6) / (2500 - 505)), rel=1e-12)
    normal = twfe(mpdta_state, reference="normal", **COLS)
    assert normal.pvalue == pytest.approx(2 * stats.norm.sf(abs(normal.statistic)), rel=1e-12)
    with pytest.raises(InvalidInputError):
        twfe(mpdta_state, small_sample="stata", **COLS)


def test_twfe_wcr_matches_wildboottest_full_enumeration(mpdta_state):
    # 12 states (FIPS <= 27), 203 counties: 2^12 = 4096 Rademacher patterns, enumerated.
    # wildboottest(smf.ols("lemp ~ D + C(countyreal) + C(year)", data=sub), param="D",
    #              cluster=sub["state"], B=9999, weights_type="rademacher", impose_null=True,
    #              bootstrap_type="11", seed=12345)
    #   -> statistic -0.43030340136447226, p-value 0.6611328125 (full enumeration)
    # pyfixest: feols("lemp ~ D | countyreal + year", sub, vcov={"CRV1": "state"})
    #   .wildboottest(reps=9999, param="D", cluster="state", seed=1) -> 0.66113281 as well.
    # wildboottest counts |t*| > |t| strictly; natexp counts ties too (the patterns v = +-1
    # reproduce the observed |t|; wildboottest's dummy-variable arithmetic puts them above
    # or below |t| by rounding), so natexp's p is wildboottest's or 2/4096 above it.
    sub = mpdta_state.filter(pl.col("state") <= 27)
    r = twfe_wcr(sub, cluster="state", weights="rademacher", **COLS)
    assert r.extra["exact"] and r.extra["n_boot"] == 4096 and r.extra["n_clusters"] == 12
    assert r.pvalue * 4096 in (pytest.approx(2708), pytest.approx(2710))
    assert 0.6611328125 <= r.pvalue <= 0.6611328125 + 2 / 4096
    assert r.extra["smallest_pvalue"] == 2 / 4096
    # wildboottest's t uses every dummy in K (areg convention): same t as natexp's areg SE
    areg = twfe(sub, cluster="state", small_sample="areg", **COLS)
    assert areg.statistic == pytest.approx(-0.43030340136447226, rel=1e-9)
    # the reported statistic is the CR1 (fixest) t: pyfixest tidy() t value -0.48115343960403606
    assert r.statistic == pytest.approx(-0.48115343960403606, rel=1e-9)
    # Webb weights: 6^12 patterns, random draws. wildboottest(..., weights_type="webb",
    # B=9999, seed=12345) -> 0.6653665366536654; Monte Carlo SD ~ 0.005 at B = 9999.
    webb = twfe_wcr(sub, cluster="state", weights="webb", n_boot=9999, rng=7, **COLS)
    assert not webb.extra["exact"]
    assert webb.pvalue == pytest.approx(0.6653665366536654, abs=0.02)


def test_cs_wcr_of_one_cell_matches_wildboottest_on_its_2x2_regression(mpdta_state):
    # Cohort 2007 vs never treated in the 11 states with FIPS <= 30 that hold them: the simple
    # ATT is the single cell ATT(2007, 2007) = slope of dy = lemp_2007 - lemp_2006 on D.
    # wildboottest(smf.ols("dy ~ D", data=w), param="D", cluster=w["state"], B=99999,
    #              weights_type="rademacher", impose_null=True, bootstrap_type="11",
    #              seed=12345) -> statistic -0.9732545864620933, p 0.35546875 (2^11 patterns)
    # weights_type="webb" -> 0.36791367913679135 (random, B = 99999)
    sub = mpdta_state.filter((pl.col("state") <= 30) & pl.col("first.treat").is_in([0, 2007]))
    agg = aggte(att_gt(sub, cluster="state", **COLS), "simple")
    r = aggte_wcr(agg)
    assert r.extra["exact"] and r.extra["n_boot"] == 2048
    # natexp counts the two tying patterns v = +-1 (wildboottest: strictly greater)
    assert r.pvalue == pytest.approx(0.35546875 + 2 / 2048, abs=1e-12)
    # statistic: influence-function (CR0) t; wildboottest's CR1 t times sqrt(G/(G-1)(N-1)/(N-k))
    assert r.statistic * math.sqrt(10 / 11 * 194 / 195) == pytest.approx(-0.9732545864620933,
                                                                       rel=1e-9)
    webb = aggte_wcr(agg, weights="webb", n_boot=9999, rng=3)
    assert webb.pvalue == pytest.approx(0.36791367913679135, abs=0.02)


def _oracle_t(res: GroupTimeResult, a, W, r: float, v_unit: np.ndarray) -> float:
    """Brute force: build every cell's bootstrap outcome change, re-estimate it with the 2x2
    estimator, aggregate and studentize with the influence function."""
    Y, att = np.asarray(res._Y), np.asarray(res._att)
    cells = [k for k in np.nonzero(a)[0]]
    h = np.array([res._design[k][0].sum() * res._design[k][1].sum()
                  / (res._design[k][0].sum() + res._design[k][1].sum()) for k in cells])
    theta_r = att[cells] + (r - a[cells] @ att[cells]) * (a[cells] / h) / np.sum(a[cells]**2 / h)
    att_star = np.where(np.isfinite(att), 0.0, np.nan)
    inf_star = np.zeros_like(np.asarray(res._inf))
    n = Y.shape[0]
    for j, k in enumerate(cells):
        treat, ctrl, c, base = res._design[k]
        sub = treat | ctrl
        dy, D = Y[sub, c] - Y[sub, base], treat[sub].astype(float)
        u = dy - dy.mean() - theta_r[j] * (D - D.mean())
        fitted = dy - u
        est, inf_sub, _ = _drdid_panel(fitted + v_unit[sub] * u, D, np.ones((sub.sum(), 1)))
        att_star[k] = est
        inf_star[sub, k] = (n / sub.sum()) * inf_sub
    psi = inf_star @ a + W @ np.nan_to_num(att_star)
    se = _se_from_if(psi, np.asarray(res._codes), res.n_clusters, n)
    return (float(a @ np.nan_to_num(att_star)) - r) / se


def test_cs_wcr_linear_algebra_equals_brute_force_resampling():
    df = _panel({2: 3, 3: 3, 4: 2, None: 4}, periods=5, effect=lambda e: 0.5 + 0.2 * e,
                noise=0.4, seed=21)
    res = att_gt(df, control_group="notyettreated", **SYN)
    rng = np.random.default_rng(0)
    for kind in ("simple", "dynamic", "group", "calendar"):
        agg = aggte(res, kind, min_cohort_size=1)
        a, W, *_ = _linear_weights(res, kind, agg._window, ())
        assert a @ np.nan_to_num(np.asarray(res._att)) == pytest.approx(agg.overall.estimate,
                                                                         rel=1e-12)
        lin = _cs_wcr(res, a, W)
        for r in (0.0, 0.3):
            # v = 1 reproduces the observed t
            t1 = lin.tstats(r, np.ones((1, res.n_clusters)))[0]
            assert t1 == pytest.approx((agg.overall.estimate - r) / agg.overall.extra["se"],
                                       rel=1e-10)
            for _ in range(3):
                v = rng.choice([-1.0, 1.0], size=res.n_clusters)
                fast = lin.tstats(r, v[None, :])[0]
                assert fast == pytest.approx(_oracle_t(res, a, W, r, v[res._codes]),
                                             rel=1e-9), kind


def test_twfe_wcr_linear_algebra_equals_refitting_bootstrap_panels():
    df = _panel({2: 3, 4: 3, None: 3}, periods=5, effect=lambda e: 1.0 + 0.5 * e, noise=0.5,
                seed=4)
    fit, _, _ = _twfe_fit(df, outcome="y", unit="u", time="t", first_treated="g",
                          never_treated=None, cluster="unit")
    lin = _twfe_wcr(fit.yt, fit.dt, fit.ccode, fit.n_clusters, fit.fe_codes, fit.fe_sizes)
    canon = df.sort("u", "t")
    y = canon["y"].to_numpy()
    rng = np.random.default_rng(1)
    r = 0.4
    ddummies = (canon["g"].is_not_null() & (canon["t"] >= canon["g"])).cast(
        pl.Float64).to_numpy()
    # restricted fit with the dummies (statsmodels, outside reference): y - r D on unit, period
    import statsmodels.formula.api as smf

    pdf = canon.to_pandas()
    pdf["yr"] = y - r * ddummies
    restricted = smf.ols("yr ~ C(u) + C(t)", data=pdf).fit()
    u_r = restricted.resid.to_numpy()
    for _ in range(4):
        v = rng.choice([-1.0, 1.0], size=fit.n_clusters)
        ystar = y - u_r + v[fit.ccode] * u_r
        star = twfe(canon.with_columns(pl.Series("ystar", ystar)), outcome="ystar", unit="u",
                    time="t", first_treated="g")
        # CR1 scales the bootstrap t like the observed t; undo it to compare with CR0 scale
        k = star.extra["k"]
        n_obs, g = len(y), fit.n_clusters
        cr1 = math.sqrt(g / (g - 1) * (n_obs - 1) / (n_obs - k))
        expected = (star.estimate - r) / (star.extra["se"] / cr1)
        assert lin.tstats(r, v[None, :])[0] == pytest.approx(expected, rel=1e-8)


def test_wcr_interval_inverts_the_test(mpdta_state):
    sub = mpdta_state.filter(pl.col("state") <= 27)
    r = twfe_wcr(sub, cluster="state", confidence_level=0.9, **COLS)
    lo, hi = r.ci
    assert lo < r.estimate < hi
    # p at the endpoints crosses 1 - confidence_level: inside accepted, just outside rejected
    eps = 1e-6 * r.extra["se"]
    for x, inside in ((lo + eps, True), (lo - eps * 1e3, False), (hi - eps, True),
                      (hi + eps * 1e3, False)):
        p = twfe_wcr(sub, cluster="state", null=x, **COLS).pvalue
        assert (p >= 0.1) == inside, (x, p)
    # cluster-level one-sided test: upper limit infinite
    g = twfe_wcr(sub, cluster="state", alternative="greater", **COLS)
    assert g.ci[1] == math.inf and g.ci[0] < r.estimate


def test_cohort_size_guard_excludes_and_names_small_cohorts():
    df = _panel({2: 3, 3: 6, None: 6}, periods=4, effect=lambda e: 1.0 + e, noise=0.3, seed=8)
    res = att_gt(df, **SYN)
    guarded = aggte(res, "simple")
    kept = aggte(res, "group", small_cohorts="include")
    # with cohort 2 (3 units) left out, the simple ATT is cohort 3's own mean post effect
    cohort3 = [r for r in kept.effects if r.extra["group"] == 3][0]
    assert guarded.overall.estimate == pytest.approx(cohort3.estimate, rel=1e-12)
    assert guarded.excluded_cohorts == (2.0,) and guarded.small_cohorts == (2.0,)
    assert any("cohort(s) 2 (3 units)" in d and "excluded" in d for d in guarded.diagnostics)
    assert kept.excluded_cohorts == () and kept.small_cohorts == (2.0,)
    assert any("kept in the aggregation" in d for d in kept.diagnostics)
    assert guarded.to_dict()["cohort_guard"]["excluded_cohorts"] == [2]
    # every cohort too small: no aggregate, and the note says why
    tiny = aggte(res, "simple", min_cohort_size=10)
    assert math.isnan(tiny.overall.estimate) and "fewer than 10" in tiny.overall.note
    with pytest.raises(InvalidInputError):
        aggte(res, "simple", small_cohorts="drop")
    # mpdta cohorts (20, 40, 131 counties) pass the default guard
    assert aggte(att_gt(pl.read_csv(MPDTA), **COLS), "simple").excluded_cohorts == ()


def test_pretrend_check_leads_average_and_power_statement():
    # 16 units, 6 periods, a linear violation of parallel trends before go-live in cohort 5
    df = _panel({5: 8, None: 8}, periods=6, effect=lambda e: 0.0, noise=0.05, seed=2)
    df = df.with_columns(pl.when(pl.col("g") == 5).then(pl.col("y") + 0.3 * pl.col("t"))
                         .otherwise(pl.col("y")).alias("y"))
    res = att_gt(df, **SYN)
    chk = pretrend_check(res, leads=3)
    dyn = {r.extra["event_time"]: r for r in aggte(res, "dynamic").effects}
    assert [r.estimate for r in chk.leads] == pytest.approx([dyn[e].estimate
                                                             for e in (-1, -2, -3)])
    assert chk.average.estimate == pytest.approx(np.mean([dyn[e].estimate
                                                          for e in (-1, -2, -3)]))
    assert chk.average.pvalue < 0.01 and all(r.pvalue < 0.01 for r in chk.leads)
    # Roth (2022) power statement: varying base, every pre cell spans one period, so the mean
    # lead moves one-for-one with the slope: slope = (z_0.975 + z_0.8) * se(mean lead)
    se = chk.average.extra["se"]
    assert chk.power["slope"] == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8))
                                               * se, rel=1e-12)
    # the simple ATT's cells span 1..2 periods from base g-1: bias = slope * mean span
    assert chk.power["bias_at_slope"] == pytest.approx(chk.power["slope"] * 1.5, rel=1e-12)
    assert any("Roth 2022" in x for x in chk.limits)
    clean = pretrend_check(att_gt(_panel({5: 8, None: 8}, periods=6, effect=lambda e: 0.0,
                                         noise=0.3, seed=5), **SYN))
    assert clean.average.pvalue > 0.05
    import json

    json.dumps(chk.to_dict())


def test_randomization_inference_within_blocks_equals_brute_force():
    # Two periods, one cohort; blocks A and B each hold treated and never-treated units. The
    # assignment space permutes go-live dates only within a block: C(4,2) * C(5,2) = 60.
    df = _panel({2: 4, None: 5}, periods=2, effect=lambda e: 0.8, noise=0.5, seed=12)
    units = sorted(df["u"].unique().to_list())
    g = dict(df.group_by("u").agg(pl.col("g").first()).iter_rows())
    treated_a = [u for u in units if g[u] is not None][:2]
    never_a = [u for u in units if g[u] is None][:2]
    blocks = {u: ("A" if u in treated_a + never_a else "B") for u in units}
    wide = df.pivot(on="t", index=["u"], values="y").sort("u")
    dy = dict(zip(wide["u"].to_list(), (wide["2"] - wide["1"]).to_list(), strict=True))
    import itertools

    def stat(tr):
        t = [dy[u] for u in units if u in tr]
        c = [dy[u] for u in units if u not in tr]
        return np.mean(t) - np.mean(c)

    a_units = [u for u in units if blocks[u] == "A"]
    b_units = [u for u in units if blocks[u] == "B"]
    observed = stat(set(treated_a) | {u for u in b_units if g[u] is not None})
    null = [stat(set(x) | set(y)) for x in itertools.combinations(a_units, 2)
            for y in itertools.combinations(b_units, 2)]
    ri = randomization_inference(df, blocks=blocks, alternative="greater", **SYN)
    assert ri.extra["n_assignments"] == 60 == len(null) and ri.extra["exact"]
    assert ri.estimate == pytest.approx(observed, rel=1e-12)
    expected = np.mean(np.array(null) >= observed - 1e-12)
    assert ri.pvalue == pytest.approx(expected, rel=1e-12)
    assert ri.extra["smallest_pvalue"] == pytest.approx(1 / 60)
    assert "within 2 block(s)" in ri.note
    # blocks that are the go-live waves themselves leave one assignment: p = 1, nothing learnt
    waves = {u: str(g[u]) for u in units}
    same = randomization_inference(df, blocks=waves, **SYN)
    assert same.extra["n_assignments"] == 1 and same.pvalue == 1.0
    assert same.extra["smallest_pvalue"] == 1.0
    with pytest.raises(InvalidInputError, match="no block"):
        randomization_inference(df, blocks={units[0]: "A"}, **SYN)


def test_twfe_unbalanced_panel_matches_pyfixest_and_wildboottest(mpdta_state):
    # The 12-state subset with the 2005 row of every county whose code is divisible by 7
    # removed (988 rows): the within transformation needs alternating projections.
    # pyfixest 0.60.0: feols("lemp ~ D | countyreal + year", sub, vcov={"CRV1": "state"})
    #   -> Estimate -0.023322666882721388, Std. Error 0.04757129326824218,
    #      Pr(>|t|) 0.6335768343348596
    # wildboottest 0.3.2: wildboottest(smf.ols("lemp ~ D + C(countyreal) + C(year)", sub),
    #   param="D", cluster=sub["state"], B=9999, weights_type="rademacher",
    #   impose_null=True, bootstrap_type="11", seed=12345) -> 0.6552734375 (enumerated)
    sub = mpdta_state.filter(pl.col("state") <= 27).filter(
        ~(((pl.col("countyreal") % 7) == 0) & (pl.col("year") == 2005)))
    assert sub.height == 988
    tw = twfe(sub, cluster="state", **COLS)
    assert tw.estimate == pytest.approx(-0.023322666882721388, rel=1e-9)
    assert tw.extra["se"] == pytest.approx(0.04757129326824218, rel=1e-8)
    assert tw.pvalue == pytest.approx(0.6335768343348596, rel=1e-8)
    r = twfe_wcr(sub, cluster="state", **COLS)
    assert r.extra["exact"]
    assert 0.6552734375 <= r.pvalue <= 0.6552734375 + 2 / 4096


def test_few_cluster_tools_on_degenerate_and_wrong_input(mpdta):
    flat = pl.DataFrame({"u": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [None, None, None, None],
                         "y": [1.0, 2.0, 1.0, 1.0]}).with_columns(pl.col("g").cast(pl.Int64))
    r = twfe_wcr(flat, **SYN)
    assert math.isnan(r.pvalue) and "does not vary" in r.note
    # one cluster: no cluster-robust variance, a note instead of a crash
    df = _panel({2: 3, None: 3}, periods=3, effect=lambda e: 1.0, noise=0.2, seed=1)
    one = twfe_wcr(df.with_columns(pl.lit("all").alias("cl")), cluster="cl", **SYN)
    assert math.isnan(one.pvalue) and one.note
    with pytest.raises(InvalidInputError):
        twfe_wcr(df, weights="mammen", **SYN)
    with pytest.raises(InvalidInputError):
        twfe_wcr(df, n_boot=0, **SYN)
    agg = aggte(att_gt(df, **SYN), "dynamic", min_cohort_size=1)
    with pytest.raises(InvalidInputError, match="no effect"):
        aggte_wcr(agg, effect=99)
    assert aggte_wcr(agg, effect=0).extra["exact"]
    dr = aggte(att_gt(mpdta, covariates=["lpop"], **COLS), "simple")
    assert "no covariates" in aggte_wcr(dr).note
    # two periods, one cohort: no lead to test
    two = _panel({2: 3, None: 3}, periods=2, effect=lambda e: 1.0, noise=0.2, seed=1)
    empty = pretrend_check(att_gt(two, **SYN), min_cohort_size=1)
    assert empty.leads == () and "no pre-treatment" in empty.average.note
    with pytest.raises(InvalidInputError):
        pretrend_check(att_gt(two, **SYN), power=1.5)
