"""Declared assignment mechanisms, randomization over them, placebos that leave the true
assignment alone.

References: ``scipy.stats.permutation_test`` (exact enumeration of the partitions of the blocks,
run live) for every randomization p-value; ``scipy.stats.boschloo_exact`` for the smallest
attainable placebo p-value; Holm (1979), "A simple sequentially rejective multiple test
procedure", Scand J Statist 6:65-70, for the adjusted p-values (its step-down definition
written out here).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import polars as pl
import pytest
from scipy.stats import boschloo_exact, permutation_test

from natexp.causal.assignment import AssignmentSpec, Estimand, enumerate_assignments
from natexp.causal.randomization import (
    placebo_in_space,
    placebo_in_time,
    unit_randomization_distribution,
    unit_randomization_test,
)
from natexp.causal.result import InvalidInputError
from natexp.data.cohort import Design, arm_counts, build_cohort
from natexp.data.rollout import load_rollout, rollout_frame
from natexp.data.synthetic import generate
from tests.conftest import holm_by_definition

# 12 areas in 6 counties of 2; counties T1 and T2 (areas A-D) are treated, the others not yet
# live (scipy's permutation_test needs at least two blocks on each side)
AREAS = [chr(ord("A") + i) for i in range(12)]
COUNTY = {a: (f"T{i // 2 + 1}" if i < 4 else f"C{i // 2}") for i, a in enumerate(AREAS)}
TREATED = AREAS[:4]


def _schedule(control_go_live="2025-01-01"):
    return rollout_frame(
        [{"name": a, "county": COUNTY[a], "phase": 1 if a in TREATED else 2 + i // 4,
          "go_live": "2022-01-01" if a in TREATED else control_go_live}
         for i, a in enumerate(AREAS)])


def _families(per_area, day=dt.date(2023, 1, 1), reached=None):
    rows = []
    for a, outcomes in per_area.items():
        for j, y in enumerate(outcomes):
            rows.append({"family_id": f"F{len(rows):05d}", "area": a, "reception_date": day,
                         "release_date": None, "chas_support": bool(y),
                         "followup_reached": True if reached is None else reached(a, j)})
    return pl.DataFrame(rows, schema={"family_id": pl.String, "area": pl.String,
                                      "reception_date": pl.Date, "release_date": pl.Date,
                                      "chas_support": pl.Boolean,
                                      "followup_reached": pl.Boolean})


def _cohort(fam, schedule):
    return build_cohort(fam.lazy(), schedule, Design(treatment_counties=("T1", "T2")))


@pytest.fixture(scope="module")
def default():
    fam, _ = generate()
    c = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    ox = c.rollout.filter(pl.col("county") == "Oxfordshire")["area"].to_list()
    return c, ox


# ------------------------------------------------------------------ the assignment space


def test_space_sizes_follow_the_declared_blocks(default):
    c, ox = default
    county = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"), ox)
    wave = enumerate_assignments(c.rollout, AssignmentSpec("wave", block="phase",
                                                           merge=[["1", "2"]]), ox)
    areas = enumerate_assignments(c.rollout, AssignmentSpec("any"), ox)
    assert (county.size, wave.size, areas.size) == (3, 5, math.comb(13, 5))
    assert county.min_pvalue == pytest.approx(1 / 3) and wave.min_pvalue == pytest.approx(0.2)
    assert not county.can_reach(0.95) and areas.can_reach(0.95)
    assert county.assigned_blocks()[0] == ["Oxfordshire"]
    assert wave.blocks[0] == "1+2"
    # property: every row is a union of whole blocks with as many blocks as observed, rows
    # distinct, row 0 the observed assignment
    for sp in (county, wave, areas):
        assert sp.assignments[0].tolist() == [u in ox for u in sp.units]
        assert len({tuple(r) for r in sp.assignments}) == sp.size
        ub = np.array(sp.unit_block)
        for row in sp.assignments:
            for b in set(ub):
                assert row[ub == b].all() or not row[ub == b].any()
    d = county.to_dict()
    assert d["size"] == 3 and d["can_reach_significance"] is False and d["block"] == "county"


def test_space_refuses_a_split_block_and_bad_columns(default):
    c, ox = default
    with pytest.raises(InvalidInputError, match="split"):
        enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"), ox[:2])
    with pytest.raises(InvalidInputError, match="no column"):
        enumerate_assignments(c.rollout, AssignmentSpec("x", block="region"), ox)
    with pytest.raises(InvalidInputError, match="at least one"):
        enumerate_assignments(c.rollout, AssignmentSpec("x", block="county"), [])
    with pytest.raises(InvalidInputError, match="two merge groups"):
        AssignmentSpec("x", block="phase", merge=[["1", "2"], ["2", "3"]])


def test_space_monte_carlo_above_the_limit_keeps_row_zero(default):
    c, ox = default
    sp = enumerate_assignments(c.rollout, AssignmentSpec("any"), ox, max_assignments=100,
                               n_draws=50, rng=3)
    again = enumerate_assignments(c.rollout, AssignmentSpec("any"), ox, max_assignments=100,
                                  n_draws=50, rng=3)
    assert not sp.exact and sp.assignments.shape == (51, 13) and sp.size == 1287
    assert np.array_equal(sp.assignments, again.assignments)
    assert sp.assignments[0].tolist() == [u in ox for u in sp.units]


def test_estimand_text():
    e = Estimand("the 35 of 85 identified families reached", "chas_support",
                 "risk difference", "being reached")
    assert e.text() == ("risk difference in chas_support among the 35 of 85 identified "
                        "families reached, conditional on being reached")


# ------------------------------------------------------------------ randomization over blocks


def _random_data(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=len(AREAS))
    return {a: list(rng.random(int(s)) < (0.6 if a in TREATED else 0.3))
            for a, s in zip(AREAS, sizes, strict=True)}


@pytest.mark.parametrize("statistic", ["pooled", "unit_mean"])
def test_block_randomization_equals_scipy_permutation_test(statistic):
    # reference: scipy.stats.permutation_test over the 6 counties, permutation_type
    # "independent", exact enumeration of the C(6, 2) = 15 ways to choose the treated counties
    per_area = _random_data(11)
    c = _cohort(_families(per_area), _schedule())
    space = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"),
                                  TREATED)
    counties = sorted(set(COUNTY.values()))
    x = {k: [sum(per_area[a]) for a in AREAS if COUNTY[a] == k] for k in counties}
    n = {k: [len(per_area[a]) for a in AREAS if COUNTY[a] == k] for k in counties}

    def stat(t, u):
        t = [counties[int(i)] for i in t]
        u = [counties[int(i)] for i in u]
        if statistic == "pooled":
            return (sum(sum(x[k]) for k in t) / sum(sum(n[k]) for k in t)
                    - sum(sum(x[k]) for k in u) / sum(sum(n[k]) for k in u))
        pt = [a / b for k in t for a, b in zip(x[k], n[k], strict=True)]
        pu = [a / b for k in u for a, b in zip(x[k], n[k], strict=True)]
        return sum(pt) / len(pt) - sum(pu) / len(pu)

    t_ids = np.array([counties.index("T1"), counties.index("T2")], dtype=float)
    u_ids = np.array([i for i, k in enumerate(counties) if not k.startswith("T")],
                     dtype=float)
    for alternative in ("two-sided", "greater", "less"):
        f = {"two-sided": lambda t, u: abs(stat(t, u)), "greater": stat,
             "less": lambda t, u: -stat(t, u)}[alternative]
        ref = permutation_test((t_ids, u_ids), f, permutation_type="independent",
                               vectorized=False, n_resamples=np.inf, alternative="greater")
        mine = unit_randomization_test(c, space, statistic=statistic, alternative=alternative,
                                       confidence_level=0.5, outcome="chas_support")
        assert mine.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
        assert mine.estimate == pytest.approx(stat(t_ids, u_ids), rel=1e-12)
        assert mine.extra["assignment_space"]["size"] == 15


def test_area_randomization_equals_scipy_over_areas():
    # any 4 of 12 areas: scipy enumerates the C(12, 4) = 495 partitions of the areas
    per_area = _random_data(5)
    c = _cohort(_families(per_area), _schedule())
    space = enumerate_assignments(c.rollout, AssignmentSpec("any"), TREATED)
    x = np.array([sum(per_area[a]) for a in AREAS], dtype=float)
    n = np.array([len(per_area[a]) for a in AREAS], dtype=float)

    def stat(t, u):
        t, u = t.astype(int), u.astype(int)
        return abs(x[t].sum() / n[t].sum() - x[u].sum() / n[u].sum())

    ref = permutation_test((np.arange(4.0), np.arange(4.0, 12.0)), stat,
                           permutation_type="independent", vectorized=False,
                           n_resamples=np.inf, alternative="greater")
    mine = unit_randomization_test(c, space, outcome="chas_support")
    assert space.size == 495 and mine.pvalue == pytest.approx(ref.pvalue, rel=1e-12)


def test_primary_statistic_is_the_primary_comparison(default):
    c, ox = default
    space = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"), ox)
    d = unit_randomization_distribution(c, space, outcome="chas_support")
    (x1, n1), (x2, n2) = arm_counts(c, "chas_support").values()
    assert d.row(0, named=True)["x1"] == x1 and d.row(0, named=True)["n1"] == n1
    assert d.row(0, named=True)["x2"] == x2 and d.row(0, named=True)["n2"] == n2
    assert d["rd"][0] == pytest.approx(x1 / n1 - x2 / n2)
    assert (d["n1"] + d["n2"] == n1 + n2).all()  # the population is held fixed
    r = unit_randomization_test(c, space, estimand={"population": "reached"},
                                outcome="chas_support")
    assert r.extra["estimand"]["population"] == "reached"
    assert any("no outcome whatever could reach significance" in g for g in r.diagnostics)
    # p is a multiple of 1/3 and at least the smallest attainable p
    assert (r.pvalue * 3) == pytest.approx(round(r.pvalue * 3))
    assert r.pvalue >= r.extra["assignment_space"]["min_pvalue"]


def test_most_extreme_outcome_attains_one_over_size():
    per_area = {a: [a in TREATED] * 3 for a in AREAS}
    c = _cohort(_families(per_area), _schedule())
    space = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"),
                                  TREATED)
    r = unit_randomization_test(c, space, outcome="chas_support")
    assert r.estimate == 1.0 and r.pvalue == pytest.approx(1 / 15)
    assert r.extra["smallest_achievable"] == pytest.approx(1 / 15)


def test_design_that_also_assigns_by_time_is_not_tested():
    # a treated-role area with families received before its go-live: control families in a
    # treated-role area, so the arm is not a function of the area
    per_area = {a: [True, False] for a in AREAS}
    fam = pl.concat([_families(per_area, day=dt.date(2023, 1, 1)),
                     _families(per_area, day=dt.date(2024, 1, 1))
                     .with_columns(pl.col("family_id") + "b")])
    schedule = _schedule().with_columns(
        pl.when(pl.col("area").is_in(TREATED)).then(pl.lit(dt.date(2023, 6, 1)))
        .otherwise(pl.col("go_live")).alias("go_live"))
    c = _cohort(fam, schedule)
    assert arm_counts(c, "chas_support")["control"][1] > 16  # controls in treated areas
    space = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"),
                                  TREATED)
    r = unit_randomization_test(c, space, outcome="chas_support")
    assert math.isnan(r.pvalue) and "not a function" in r.note


# ------------------------------------------------------------------ placebos


def test_placebo_in_space_uses_control_families_only(default):
    c, ox = default
    space = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"), ox)
    t = placebo_in_space(c, space, outcome="chas_support")
    f = t.frame
    _, (x2, n2) = arm_counts(c, "chas_support").values()
    assert set(f["placebo_block"]) == {"Buckinghamshire", "Berkshire"}
    assert ((f["n1"] + f["n2"]) == n2).all() and ((f["x1"] + f["x2"]) == x2).all()
    assert f["rd"][0] == pytest.approx(-f["rd"][1])
    assert f["p_holm"].to_list() == pytest.approx(holm_by_definition(f["p"].to_list()))
    for r in f.iter_rows(named=True):  # smallest attainable: the most extreme table
        ref = boschloo_exact([[r["n1"], 0], [0, r["n2"]]]).pvalue
        assert r["min_p"] == pytest.approx(ref, rel=1e-6)
    assert t.meta["assignment_space"]["size"] == 2
    assert any("Holm" in n for n in t.notes) and any("one comparison" in n for n in t.notes)


def test_placebo_in_time_splits_control_families_by_reception():
    # control areas go live 2025-01-01; families received 2024-03-01 (10 months before) and
    # 2023-01-01 (24 months before); the treated county is untouched
    rows = []
    for a in AREAS:
        for day, y in ((dt.date(2024, 3, 1), True), (dt.date(2023, 1, 1), False)):
            rows.append({"family_id": f"F{len(rows):04d}", "area": a, "reception_date": day,
                         "release_date": None, "chas_support": y, "followup_reached": True})
    fam = pl.DataFrame(rows, schema={"family_id": pl.String, "area": pl.String,
                                     "reception_date": pl.Date, "release_date": pl.Date,
                                     "chas_support": pl.Boolean,
                                     "followup_reached": pl.Boolean})
    c = build_cohort(fam.lazy(), _schedule(), Design(
        treatment_counties=("T1", "T2"), window_start=dt.date(2022, 7, 1),
        window_end=dt.date(2024, 6, 30), followup_date=None, custody_at_followup=False))
    t = placebo_in_time(c, shifts=[6, 12], outcome="chas_support")
    f = {r["shift"]: r for r in t.frame.iter_rows(named=True)}
    n_control = arm_counts(c, "chas_support")["control"][1]
    assert n_control == 16  # 8 control areas x 2 families
    assert f[6]["n1"] == 0 and f[6]["n2"] == 16  # nobody within 6 months of go-live
    assert (f[12]["x1"], f[12]["n1"], f[12]["x2"], f[12]["n2"]) == (8, 8, 0, 8)
    assert f[12]["p"] == pytest.approx(boschloo_exact([[8, 0], [0, 8]]).pvalue, rel=1e-6)
    with pytest.raises(InvalidInputError):
        placebo_in_time(c, shifts=[0], outcome="chas_support")


def test_every_placebo_and_randomization_reports_its_space(default):
    c, ox = default
    space = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"), ox)
    for t in (placebo_in_space(c, space, outcome="chas_support"),
              placebo_in_time(c, outcome="chas_support")):
        sp = t.meta["assignment_space"]
        assert {"name", "size", "min_pvalue", "description"} <= set(sp)
        assert {"population", "outcome", "contrast"} <= set(t.meta["estimand"])
    r = unit_randomization_test(c, space, outcome="chas_support")
    assert {"size", "min_pvalue", "can_reach_significance"} <= set(r.extra["assignment_space"])


def test_spaces_from_config_match_the_rollout():
    from natexp.config import compose, to_settings

    s = to_settings(compose(["+experiment=oxon_vs_rest"]))
    names = [sp.name for sp in s.assignment.specs()]
    assert names == ["county", "wave", "any_areas"]
    assert s.assignment.evidence_level == 2
    ro = load_rollout()
    ox = ro.filter(pl.col("county") == "Oxfordshire")["area"].to_list()
    sizes = [enumerate_assignments(ro, sp, ox).size for sp in s.assignment.specs()]
    assert sizes == [3, 5, 1287]
    assert list(itertools.accumulate(sizes))[-1] == 1295
