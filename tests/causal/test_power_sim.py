"""Simulation-based power of a rollout study (natexp.causal.power_sim).

References: Mathews' Minitab macro ``fisherspower`` (exact power of Fisher's one-sided test,
1% vs 5%, 80 per group: 0.211135, quoted in natexp.causal.power); scipy.stats.fisher_exact and
scipy.stats.ttest_ind as brute-force oracles of every simulated decision; the beta-binomial
variance of a cluster proportion, p (1 - p) / m x (1 + (m - 1) rho) (Donner and Klar 2000,
Design and Analysis of Cluster Randomization Trials, eq. 2.1; Hayes and Moulton 2017, 2.2).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats

from natexp.causal.power_sim import (
    DAYS_PER_MONTH,
    design_cells,
    minimum_detectable_effect,
    simulate_power,
)
from natexp.causal.result import InvalidInputError
from natexp.data.cohort import Design
from natexp.data.rollout import rollout_frame

# A fictional study (not Paramount): six districts in two regions, one region live.
ROLLOUT = rollout_frame([
    {"name": f"District {c}", "county": "Northshire" if i < 3 else "Southmoor",
     "go_live": "2021-03-01" if i < 3 else None, "phase": 1 if i < 3 else 2}
    for i, c in enumerate("ABCDEF")
])
YEAR = Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2023, 6, 30),
              followup_date=None, custody_at_followup=False, treatment_counties=("Northshire",))


def _two_area_rollout():
    return rollout_frame([
        {"name": "Treated", "county": "T", "go_live": "2020-01-01", "phase": 1},
        {"name": "Control", "county": "C", "go_live": None, "phase": 2},
    ])


def _two_area_design():
    return Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2023, 6, 30),
                  followup_date=None, custody_at_followup=False, treatment_counties=("T",))


def test_cells_follow_the_design_rule_day_by_day():
    ro = rollout_frame([
        {"name": "A", "county": "North", "go_live": "2023-01-01", "phase": 1},
        {"name": "B", "county": "South", "go_live": "2022-10-01", "phase": 2},
        {"name": "C", "county": "South", "go_live": None, "phase": 3},
    ])
    d = Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2023, 6, 30),
               followup_date=None, custody_at_followup=False, treatment_counties=("North",))
    got = {(a, arm): days for a, arm, days in design_cells(ro, d).rows()}
    # A: control 2022-07-01..2022-12-31 (184 days), treated from 2023-01-01 (181 days);
    # B: control until 2022-09-30 (92 days), then live outside the treatment county (excluded).
    assert got == {("A", "control"): 184, ("A", "treatment"): 181, ("B", "control"): 92,
                   ("C", "control"): 365}
    staggered = Design(name="staggered", kind="staggered", window_start=d.window_start, window_end=d.window_end,
                       followup_date=None, custody_at_followup=False)
    got = {(a, arm): days for a, arm, days in design_cells(ro, staggered).rows()}
    assert got[("B", "treatment")] == 273 and got[("B", "control")] == 92


def test_matches_mathews_exact_fisher_power_with_independent_families():
    # 80 families per arm exactly, no clustering, p1 = 0.01 vs p2 = 0.05, one-sided Fisher:
    # Mathews' fisherspower macro gives 0.211135. Monte Carlo: 4 standard errors.
    rate = 80 * DAYS_PER_MONTH / 365
    sim = simulate_power(_two_area_rollout(), _two_area_design(), families_per_area_month=rate,
                         baseline=0.05, effect=-0.04, icc=0.0, n_simulations=4000,
                         analyses=("family_fisher",), arrivals="expected", alternative="less",
                         rng=7)
    r = sim.result("family_fisher")
    assert r.extra["mean_n1"] == 80 and r.extra["mean_n2"] == 80
    se = math.sqrt(0.211135 * (1 - 0.211135) / 4000)
    assert abs(r.estimate - 0.211135) < 4 * se
    assert r.ci_low < 0.211135 < r.ci_high


def test_every_decision_equals_scipy_on_the_simulated_tables():
    sim = simulate_power(ROLLOUT, YEAR, families_per_area_month=1.5, baseline=0.2,
                         effect=0.1, icc=0.05, n_simulations=80, rng=3,
                         analyses=("family_fisher", "area_t"))
    treated = (sim.cells["arm"] == "treatment").to_numpy()
    for row in sim.draws.iter_rows(named=True):
        x1, n1, x2, n2 = row["x1"], row["n1"], row["x2"], row["n2"]
        p = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue
        assert row["family_fisher_reject"] == (p < 0.05)
        x, n = np.array(row["cell_x"]), np.array(row["cell_n"])
        assert x[treated].sum() == x1 and n[~treated].sum() == n2
        has = n > 0
        prop = x[has] / n[has]
        t_res = stats.ttest_ind(prop[treated[has]], prop[~treated[has]], equal_var=True)
        if np.isnan(t_res.pvalue):  # zero pooled variance: natexp decides by the means
            continue
        assert row["area_t_pvalue"] == pytest.approx(t_res.pvalue, rel=1e-10)
        assert row["area_t_reject"] == (t_res.pvalue < 0.05)


def test_generator_has_the_beta_binomial_variance():
    # Fixed 50 families per cell, control cells only matter: Var(x/m) = p(1-p)/m (1+(m-1) rho).
    rate = 50 * DAYS_PER_MONTH / 365
    sim = simulate_power(ROLLOUT, YEAR, families_per_area_month=rate, baseline=0.2, effect=0.0,
                         icc=0.1, n_simulations=4000, arrivals="expected",
                         analyses=("area_t",), rng=11)
    x = np.array(sim.draws["cell_x"].to_list())
    n = np.array(sim.draws["cell_n"].to_list())
    assert (n == 50).all()
    prop = x / n
    expected = 0.2 * 0.8 / 50 * (1 + 49 * 0.1)
    assert prop.mean() == pytest.approx(0.2, abs=0.005)
    assert prop.var(axis=0, ddof=1) == pytest.approx(np.full(6, expected), rel=0.1)


def test_family_level_test_over_rejects_under_clustering_and_area_test_does_not():
    sim = simulate_power(ROLLOUT, YEAR, families_per_area_month=4, baseline=0.2, effect=0.0,
                         icc=0.1, n_simulations=1500, rng=5,
                         analyses=("family_fisher", "area_t"))
    fam, area = sim.result("family_fisher").estimate, sim.result("area_t").estimate
    assert fam > 0.2          # families treated as independent: far above 5%
    assert area < 0.05 + 4 * math.sqrt(0.05 * 0.95 / 1500)


def test_same_seed_same_draws_and_common_random_numbers_across_effects():
    kw = dict(families_per_area_month=1.0, baseline=0.3, icc=0.02, n_simulations=50, rng=9)
    a = simulate_power(ROLLOUT, YEAR, effect=0.1, **kw)
    b = simulate_power(ROLLOUT, YEAR, effect=0.1, **kw)
    assert a.draws.equals(b.draws)
    c = simulate_power(ROLLOUT, YEAR, effect=0.2, **kw)
    assert a.draws["cell_n"].to_list() == c.draws["cell_n"].to_list()
    # A larger effect never lowers any treated cell's uptake (same uniforms).
    xa, xc = np.array(a.draws["cell_x"].to_list()), np.array(c.draws["cell_x"].to_list())
    assert (xc >= xa).all()


def test_minimum_detectable_effect_is_the_first_grid_point_with_the_power():
    r = minimum_detectable_effect(ROLLOUT, YEAR, families_per_area_month=3, baseline=0.2,
                                  icc=0.02, n_simulations=300, analysis="area_t", rng=2)
    assert r.estimate > 0
    assert r.extra["power_at_estimate"] >= 0.8
    assert r.extra["power_one_step_below"] < 0.8


def test_invalid_settings_are_typed_errors():
    kw = dict(families_per_area_month=1.0, baseline=0.2, effect=0.1)
    with pytest.raises(InvalidInputError):
        simulate_power(ROLLOUT, YEAR, **{**kw, "baseline": 1.2})
    with pytest.raises(InvalidInputError):
        simulate_power(ROLLOUT, YEAR, **kw, icc=1.0)
    with pytest.raises(InvalidInputError):
        simulate_power(ROLLOUT, YEAR, **kw, analyses=("nope",))
    with pytest.raises(InvalidInputError, match="no rate"):
        simulate_power(ROLLOUT, YEAR, families_per_area_month={"District A": 1.0},
                       baseline=0.2, effect=0.1)
    nobody_live = Design(window_start=dt.date(2020, 7, 1), window_end=dt.date(2020, 12, 31),
                         followup_date=None, custody_at_followup=False,
                         treatment_counties=("Northshire",))
    with pytest.raises(InvalidInputError, match="no area-days"):
        simulate_power(ROLLOUT, nobody_live, **kw)
