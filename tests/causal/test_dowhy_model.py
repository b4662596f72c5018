"""Tests of natexp.causal.dowhy_model: data, graph, estimate, refuters, permutation p-value."""

from __future__ import annotations

import importlib.util
import itertools
import json

import numpy as np
import pytest
from scipy.stats import permutation_test

# Looked up, not imported: importing DoWhy (~0.9 s) while collecting would cost every xdist
# worker that time, though only the worker running these tests needs it.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("dowhy") is None,
                                reason="DoWhy is not installed (pip install -e '.[dev]')")

from natexp.causal.dowhy_model import (  # noqa: E402
    COMMON_CAUSES,
    causal_graph,
    dowhy_analysis,
    dowhy_frame,
    permutation_pvalue,
)
from natexp.causal.result import InvalidInputError  # noqa: E402
from natexp.data.cohort import Design, build_cohort  # noqa: E402
from natexp.data.rollout import load_rollout  # noqa: E402
from natexp.data.synthetic import generate  # noqa: E402

FAST = {"n_simulations": 20, "n_permutations": 999}


@pytest.fixture(scope="module")
def data():
    fam, kids = generate()
    return build_cohort(fam.lazy(), load_rollout(),
                        Design(treatment_counties=("Oxfordshire",))), kids


@pytest.fixture(scope="module")
def analysis(data):
    c, kids = data
    return dowhy_analysis(c, kids, rng=2024, **FAST, outcome="chas_support")


def test_frame_is_numeric_with_integer_treatment(data):
    c, kids = data
    df = dowhy_frame(c, kids, outcome="chas_support")
    assert len(df) == 85 and int(df["treatment"].sum()) == 46
    assert str(df["treatment"].dtype) == "int64"  # DoWhy 0.14 + pandas 3 pitfall
    assert set(df.columns) == {"treatment", "chas_support", *COMMON_CAUSES, "area", "go_live"}
    assert int(df["chas_support"].sum()) == 10  # 8 + 2 among the identified
    reached = dowhy_frame(c, kids, among="followup_reached", outcome="chas_support")
    assert len(reached) == 35 and int(reached["chas_support"].sum()) == 6  # 4 + 2 (Fig. 7-8)


def test_graph_and_identification(analysis):
    assert "treatment -> chas_support" in analysis.graph
    # area-level confounding is in the graph (not an instrument), and stated as an assumption
    assert "area_context -> treatment" in analysis.graph
    assert "area_context -> chas_support" in analysis.graph
    assert "area -> treatment" not in analysis.graph.replace("area_context", "")
    assert any("no area-level confounding" in a for a in analysis.assumptions)
    assert "months_at_risk" in analysis.adjustment_set  # time at risk adjusted for
    assert set(analysis.interpretation) == set(analysis.refutations)
    assert "by construction" in analysis.interpretation["placebo_treatment"]
    assert "tests something" in analysis.interpretation["unobserved_common_cause"]
    assert "backdoor" in analysis.estimand
    assert set(analysis.adjustment_set) <= set(COMMON_CAUSES)
    assert causal_graph(outcome="chas_support").count("->") == 2 + 2 * len(COMMON_CAUSES) + 1


def test_estimate_equals_statsmodels_ols(data, analysis):
    # reference: statsmodels OLS of the outcome on an intercept, the treatment and the
    # adjustment set, run live (the linear probability model DoWhy's estimator fits)
    import statsmodels.api as sm  # here: not imported while collecting

    c, kids = data
    # dowhy_analysis's default population
    df = dowhy_frame(c, kids, among="followup_reached", outcome="chas_support")
    x = sm.add_constant(df[["treatment", *analysis.adjustment_set]].astype(float))
    fit = sm.OLS(df["chas_support"].astype(float), x).fit()
    est = analysis.estimate
    assert est.estimate == pytest.approx(fit.params["treatment"], rel=1e-9)
    lo, hi = fit.conf_int(alpha=0.05).loc["treatment"]
    assert est.ci == pytest.approx((lo, hi), rel=1e-9)
    assert est.pvalue == pytest.approx(fit.pvalues["treatment"], rel=1e-6)
    assert est.n == (20, 15)  # the 35 reached families (Figures 7-8)


def test_permutation_pvalue_exact_equals_scipy_without_covariates():
    # reference: scipy.stats.permutation_test, permutation_type="independent", exact
    # enumeration (C(10, 4) = 210 assignments), statistic |mean difference|, run live
    rng = np.random.default_rng(11)
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    y = rng.random(10).round(2)
    mine = permutation_pvalue(t, y, n_permutations=1000)
    ref = permutation_test((y[t == 1], y[t == 0]),
                           lambda a, b: abs(a.mean() - b.mean()),
                           permutation_type="independent", vectorized=False,
                           n_resamples=np.inf, alternative="greater")
    assert mine.extra["exact"] and mine.extra["n_permutations"] == 210
    assert mine.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert mine.estimate == pytest.approx(y[t == 1].mean() - y[t == 0].mean())


def test_permutation_pvalue_exact_with_covariates_against_statsmodels():
    # reference: refit statsmodels OLS for each of the C(8, 3) = 56 assignments, run live
    import statsmodels.api as sm  # here: not imported while collecting

    rng = np.random.default_rng(5)
    t = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    z = rng.random((8, 2))
    y = rng.random(8)

    def coef(tt):
        return sm.OLS(y, sm.add_constant(np.column_stack([tt, z]))).fit().params[1]

    obs = coef(t)
    null = []
    for idx in itertools.combinations(range(8), 3):
        tt = np.zeros(8)
        tt[list(idx)] = 1
        null.append(coef(tt))
    expected = np.mean(np.abs(null) >= abs(obs) * (1 - 1e-9))
    mine = permutation_pvalue(t, y, z, n_permutations=100)
    assert mine.estimate == pytest.approx(obs, rel=1e-9)
    assert mine.pvalue == pytest.approx(expected, rel=1e-12)


def test_permutation_pvalue_monte_carlo_is_seeded():
    t = np.r_[np.ones(30), np.zeros(30)]
    y = np.r_[np.ones(10), np.zeros(50)]
    a = permutation_pvalue(t, y, n_permutations=500, rng=1)
    b = permutation_pvalue(t, y, n_permutations=500, rng=np.random.default_rng(1))
    assert a.to_dict() == b.to_dict()
    assert not a.extra["exact"] and "Monte Carlo" in a.note
    assert a.pvalue >= 1 / 501
    with pytest.raises(InvalidInputError):
        permutation_pvalue(np.array([0, 2]), np.array([1.0, 0.0]))


def test_refuters_run_and_are_deterministic(data, analysis):
    c, kids = data
    refs = analysis.refutations
    assert set(refs) == {"placebo_treatment", "placebo_permutation", "random_common_cause",
                         "data_subset", "unobserved_common_cause"}
    assert "normal approximation" in refs["placebo_treatment"].note  # 20 < 100 simulations
    assert refs["placebo_permutation"].extra["n_permutations"] == 999
    assert refs["placebo_permutation"].estimate == pytest.approx(analysis.estimate.estimate)
    # the subsets differ from one another (an int seed would repeat one subset 20 times)
    assert refs["data_subset"].pvalue > 0
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (DoWhy uses the legacy global)
    again = dowhy_analysis(c, kids, rng=2024, **FAST, outcome="chas_support")
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002 (restored)
    assert again.to_dict() == analysis.to_dict()  # same seed -> identical results
    json.dumps(analysis.to_dict())
    assert analysis.to_polars().height == 6
    assert "DoWhy causal model" in analysis.summary()
    assert "<table>" in analysis._repr_html_()


def test_invalid_method(data):
    c, kids = data
    with pytest.raises(InvalidInputError):
        dowhy_analysis(c, kids, method="iv.instrumental_variable", outcome="chas_support")


def _job(df, outcome, causes, n_sim, seeds):
    n1 = int(df["treatment"].sum())
    return {"data": df, "outcome": outcome, "among": None, "causes": causes, "diagnostics": [],
            "n1": n1, "n0": len(df) - n1, "n": len(df), "method": "backdoor.linear_regression",
            "confidence_level": 0.95, "n_simulations": n_sim, "n_permutations": 99,
            "unobserved_strength": (0.1, 0.1), "seeds": seeds}


def _replay_jobs(data):
    """The example study (reached families, 100 simulations: DoWhy's bootstrap test; all
    families without the children table) and another study's frames: a differently named
    outcome, rare binary covariates (rank-deficient subsets and placebo samples), no covariate
    at all, fewer than 100 simulations (DoWhy's normal test)."""
    import pandas as pd

    from natexp.causal import dowhy_model as dm

    c, kids = data
    kw = {"method": "backdoor.linear_regression", "confidence_level": 0.95,
          "n_permutations": 99, "unobserved_strength": (0.1, 0.1)}
    jobs = [dm._prepare(c, kids, outcome="chas_support", among="followup_reached",
                        n_simulations=100, rng=20240601, **kw),
            dm._prepare(c, None, outcome="chas_support", among=None, n_simulations=20,
                        rng=7, **kw)]
    rng = np.random.default_rng(3)
    for k, causes in enumerate([["rare_flag", "size", "months"], ["rare_flag"], [],
                                ["size", "rare_flag"]]):
        n = int(rng.integers(8, 60))
        df = pd.DataFrame({"treatment": rng.integers(0, 2, n),
                           "joined_club": rng.integers(0, 2, n),
                           "rare_flag": (np.arange(n) < k % 3 + 1).astype(int),
                           "size": rng.integers(1, 4, n), "months": rng.uniform(1, 30, n)})
        jobs.append(_job(df[["treatment", "joined_club", *causes]], "joined_club", causes,
                         (25, 12, 30, 15)[k], [int(s) for s in rng.integers(0, 2**31 - 1, 5)]))
    return jobs


def test_replayed_refuters_equal_dowhys_own(data, monkeypatch):
    """The reference is DoWhy 0.14 itself: ``CausalModel.refute_estimate`` with the same
    seeds. natexp's replay of the placebo, random-common-cause and data-subset refuters must
    give the same numbers to the last bit (compared as JSON, so NaN = NaN and every float's
    repr), including the count of rank-deficient refits."""
    from natexp.causal import dowhy_model as dm

    assert dm._replays("backdoor.linear_regression")  # the locked DoWhy is the replayed one
    assert not dm._replays("backdoor.propensity_score_matching")
    rank_deficient = 0
    for job in _replay_jobs(data):
        replayed = dm._fit(job)
        with monkeypatch.context() as m:
            m.setattr(dm, "_replays", lambda method: False)
            own = dm._fit(job)
        assert json.dumps(replayed.to_dict(), sort_keys=True) == json.dumps(
            own.to_dict(), sort_keys=True)
        rank_deficient += any("rank-deficient" in d for d in own.diagnostics)
    assert rank_deficient >= 2  # the rank-deficient branch was exercised


def test_replay_refuses_an_int_seed_for_subsets():
    import pandas as pd

    from natexp.causal import dowhy_model as dm

    df = pd.DataFrame({"treatment": [0, 1, 0, 1], "y": [0, 1, 1, 0]})
    with pytest.raises(TypeError, match="RandomState"):
        dm._replayed_refutation("data_subset", df, outcome="y", adjustment=[],
                                estimate=type("E", (), {"value": 0.0})(),
                                num_simulations=2, random_state=3)
    with pytest.raises(ValueError, match="no replay"):
        dm._replayed_refutation("bootstrap", df, outcome="y", adjustment=[],
                                estimate=type("E", (), {"value": 0.0})(),
                                num_simulations=2, random_state=3)


def test_a_study_without_the_example_covariates_runs():
    """Another study's extract need not have the example study's parent_sex (families) or
    carer (children) columns: those covariates are left out and the diagnostics say so (before,
    a scaffolded study crashed here with DoWhy on)."""
    fam, kids = generate()
    cohort = build_cohort(fam.drop("parent_sex").lazy(), load_rollout(),
                          Design(treatment_counties=("Oxfordshire",)))
    frame = dowhy_frame(cohort, kids.drop("carer"), outcome="chas_support")
    assert "parent_female" not in frame.columns and "carer_parent" not in frame.columns
    assert {"n_children", "months_at_risk"} <= set(frame.columns)
    a = dowhy_analysis(cohort, kids.drop("carer"), rng=3, **FAST, outcome="chas_support")
    assert "parent_female" not in a.adjustment_set and "n_children" in a.adjustment_set
    assert any("no parent_sex column" in d for d in a.diagnostics)
    assert any("no carer column" in d for d in a.diagnostics)
