"""Tests of natexp.causal.randomization: randomization inference over go-live, placebo dates."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from scipy.stats import permutation_test

from natexp.causal.randomization import (
    _holm,
    placebo_go_live,
    randomization_distribution,
    randomization_test,
)
from natexp.causal.result import InvalidInputError
from natexp.data.cohort import Design, arm_counts, build_cohort
from natexp.data.rollout import load_rollout, rollout_frame
from natexp.data.synthetic import generate
from tests.conftest import holm_by_definition

AREAS = [chr(ord("A") + i) for i in range(13)]
TREATED = AREAS[:5]


@pytest.fixture(scope="module")
def default():
    fam, _ = generate()
    return fam, build_cohort(fam.lazy(), load_rollout(),
                             Design(treatment_counties=("Oxfordshire",)))


def _schedule(control_go_live=None, treated=TREATED, areas=AREAS):
    return rollout_frame(
        [{"name": a, "county": "T" if a in treated else "R",
          "go_live": "2022-01-01" if a in treated else control_go_live, "phase": 1}
         for a in areas])


def _families(per_area: dict[str, list[bool]], day=dt.date(2023, 1, 1)) -> pl.DataFrame:
    rows = []
    for a, outcomes in per_area.items():
        for y in outcomes:
            rows.append({"family_id": f"F{len(rows):05d}", "area": a, "reception_date": day,
                         "release_date": None, "chas_support": y, "followup_reached": True})
    return pl.DataFrame(rows, schema={"family_id": pl.String, "area": pl.String,
                                      "reception_date": pl.Date, "release_date": pl.Date,
                                      "chas_support": pl.Boolean,
                                      "followup_reached": pl.Boolean})


def _cohort(families, schedule):
    return build_cohort(families.lazy(), schedule, Design(treatment_counties=("T",)))


# ------------------------------------------------------------------ default data


def test_observed_statistic_is_the_cohort_difference(default):
    _, c = default
    r = randomization_test(c, outcome="chas_support")
    ac = arm_counts(c, "chas_support", among=None)
    (x1, n1), (x2, n2) = ac["treatment"], ac["control"]
    assert (x1, n1, x2, n2) == (8, 46, 2, 39)
    assert r.estimate == pytest.approx(x1 / n1 - x2 / n2)
    assert r.extra["n_assignments"] == math.comb(13, 5) == 1287
    assert r.extra["exact"] is True
    assert r.extra["min_pvalue"] == pytest.approx(1 / 1287)
    assert 1 / 1287 <= r.pvalue <= 1
    assert r.extra["treated_areas"] == ("Oxford", "Cherwell", "South Oxfordshire",
                                        "Vale of White Horse", "West Oxfordshire")
    json.dumps(r.to_dict())
    reached = randomization_test(c, among="followup_reached", outcome="chas_support")
    assert reached.estimate == pytest.approx(4 / 20 - 2 / 15)


def _swap_schedule(base: pl.DataFrame, chosen: list[str], treated0: list[str]) -> pl.DataFrame:
    """Independent re-implementation of the swap rule as a rollout frame."""
    order = base["area"].to_list()
    ins = [a for a in order if a in chosen and a not in treated0]
    outs = [a for a in order if a in treated0 and a not in chosen]
    rows = {r["area"]: dict(r) for r in base.iter_rows(named=True)}
    new = {a: dict(r) for a, r in rows.items()}
    for a, b in zip(ins, outs, strict=True):
        new[a]["go_live"], new[b]["go_live"] = rows[b]["go_live"], rows[a]["go_live"]
        new[a]["phase"], new[b]["phase"] = rows[b]["phase"], rows[a]["phase"]
    for a in new:
        new[a]["county"] = "Oxfordshire" if a in chosen else "Elsewhere"
    return rollout_frame([{"name": a, "county": r["county"], "go_live": r["go_live"],
                           "phase": r["phase"]} for a, r in new.items()])


@pytest.mark.parametrize("among", [None, "followup_reached"])
def test_engine_agrees_with_build_cohort_on_permuted_schedules(default, among):
    # consistency with natexp.data.cohort.assign, the authoritative arm rule
    fam, c = default
    dist = randomization_distribution(c, among=among, outcome="chas_support")
    treated0 = dist["treated_areas"][0].to_list()
    base = load_rollout()
    for i in [0, 1, 17, 300, 641, 1000, 1286]:
        row = dist.row(i, named=True)
        sched = _swap_schedule(base, row["treated_areas"], treated0)
        ac = arm_counts(build_cohort(fam.lazy(), sched,
                                     Design(treatment_counties=("Oxfordshire",))),
                        "chas_support", among=among)
        assert (row["x1"], row["n1"]) == ac["treatment"]
        assert (row["x2"], row["n2"]) == ac["control"]


def test_phase_selection_is_respected(default):
    fam, _ = default
    design = Design(phases=(1, 2, 3, 6), treatment_counties=("Oxfordshire",))
    c = build_cohort(fam.lazy(), load_rollout(), design)
    dist = randomization_distribution(c, outcome="chas_support")
    base = load_rollout()
    treated0 = dist["treated_areas"][0].to_list()
    for i in [0, 5, 900]:
        row = dist.row(i, named=True)
        sched = _swap_schedule(base, row["treated_areas"], treated0)
        ac = arm_counts(build_cohort(fam.lazy(), sched, design), "chas_support", among=None)
        assert (row["x1"], row["n1"], row["x2"], row["n2"]) == (*ac["treatment"],
                                                                 *ac["control"])


# ------------------------------------------------------------------ references and properties


def test_most_extreme_table_gives_one_over_number_of_assignments():
    # property: outcome present exactly in the 5 treated areas' families -> observed difference
    # 1 - 0 = 1, attained by no other assignment -> p = 1 / C(13, 5)
    fam = _families({a: [a in TREATED] * 3 for a in AREAS})
    c = _cohort(fam, _schedule())
    r = randomization_test(c, outcome="chas_support")
    assert r.estimate == 1.0
    assert r.pvalue == pytest.approx(1 / 1287)
    assert r.extra["smallest_achievable"] == pytest.approx(1 / 1287)
    for alternative in ("greater", "two-sided"):
        r = randomization_test(c, alternative=alternative, outcome="chas_support")
        assert r.pvalue == pytest.approx(1 / 1287)
    assert randomization_test(c, alternative="less", outcome="chas_support").pvalue == 1.0


def test_pvalue_equals_scipy_permutation_test_over_areas():
    # reference: scipy.stats.permutation_test (permutation_type="independent", exact
    # enumeration of the C(13, 5) = 1287 partitions of the areas), run live. When every family
    # of a treated-role area is treated and every other family is control, the design's
    # difference is a function of the partition of areas alone.
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 6, size=13)
    per_area = {a: list(rng.random(int(s)) < (0.5 if a in TREATED else 0.25))
                for a, s in zip(AREAS, sizes, strict=True)}
    c = _cohort(_families(per_area), _schedule(control_go_live="2025-01-01"))
    x = np.array([sum(per_area[a]) for a in AREAS], dtype=float)
    n = np.array([len(per_area[a]) for a in AREAS], dtype=float)

    def rd(t, u):
        t, u = t.astype(int), u.astype(int)
        return x[t].sum() / n[t].sum() - x[u].sum() / n[u].sum()

    ids_t = np.arange(5, dtype=float)
    ids_c = np.arange(5, 13, dtype=float)
    for alternative in ("two-sided", "greater", "less"):
        stat = {"two-sided": lambda t, u: abs(rd(t, u)), "greater": rd,
                "less": lambda t, u: -rd(t, u)}[alternative]
        ref = permutation_test((ids_t, ids_c), stat, permutation_type="independent",
                               vectorized=False, n_resamples=np.inf, alternative="greater")
        mine = randomization_test(c, alternative=alternative, outcome="chas_support")
        assert mine.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
        assert mine.estimate == pytest.approx(rd(ids_t, ids_c))


def test_few_assignments_warn_honestly():
    areas = AREAS[:4]
    fam = _families({a: [a == "A", False] for a in areas})
    c = _cohort(fam, _schedule(treated=["A"], areas=areas))
    r = randomization_test(c, outcome="chas_support")
    assert r.extra["n_assignments"] == 4
    assert r.pvalue == pytest.approx(0.25)
    assert any("cannot reach significance" in d for d in r.diagnostics)
    assert any("distinct values" in d for d in r.diagnostics)


def test_monte_carlo_when_too_many_and_seeded(default):
    _, c = default
    a = randomization_test(c, max_assignments=100, n_draws=300, rng=3, outcome="chas_support")
    b = randomization_test(c, max_assignments=100, n_draws=300, rng=np.random.default_rng(3),
                           outcome="chas_support")
    assert a.to_dict() == b.to_dict()
    assert a.extra["exact"] is False and a.extra["n_evaluated"] == 301
    assert any("Monte Carlo" in d for d in a.diagnostics)
    # p = (1 + hits) / (1 + draws) with hits among the draws
    dist = randomization_distribution(c, max_assignments=100, n_draws=300, rng=3,
                                      outcome="chas_support")
    obs = abs(dist["rd"][0])
    hits = int((dist["rd"].slice(1).abs() >= obs - 1e-12).sum())
    assert a.pvalue == pytest.approx((1 + hits) / 301)


def test_invalid_input(default):
    _, c = default
    with pytest.raises(InvalidInputError):
        randomization_test(c, alternative="both", outcome="chas_support")
    with pytest.raises(InvalidInputError):
        randomization_test(c, treated_areas=["Atlantis"], outcome="chas_support")
    with pytest.raises(InvalidInputError):
        randomization_test(c, treated_areas=[], outcome="chas_support")


def test_empty_arm_is_noted():
    # no control family anywhere in the observed cohort: nothing to test
    fam = _families({a: [True] for a in TREATED})
    r = randomization_test(_cohort(fam, _schedule()), outcome="chas_support")
    assert math.isnan(r.pvalue) and "empty" in r.note


# ------------------------------------------------------------------ placebo go-live dates


def test_placebo_shift_zero_is_the_observed(default):
    _, c = default
    t = placebo_go_live(c, outcome="chas_support")
    f = t.frame
    assert f["shift"].to_list() == list(range(-12, 13))
    obs = f.filter(pl.col("observed")).row(0, named=True)
    assert (obs["x1"], obs["n1"], obs["x2"], obs["n2"]) == (8, 46, 2, 39)
    assert obs["rd"] == pytest.approx(8 / 46 - 2 / 39)
    json.dumps(t.to_dict())
    assert "Placebo" in t.summary()


def test_placebo_shift_equals_a_hand_shifted_schedule(default):
    fam, c = default
    # every go-live one month later, written out by hand from conf/rollout/thames_valley.yaml
    later = {"Oxford": "2022-01-01", "Milton Keynes": "2023-01-01",
             "Buckinghamshire": "2023-08-01", "West Berkshire": "2023-08-01",
             "Bracknell Forest": "2024-08-01", "Reading": "2024-08-01",
             "Slough": "2025-08-01", "Windsor and Maidenhead": "2025-08-01",
             "Wokingham": "2025-08-01"}
    sched = rollout_frame([{"name": r["area"], "county": r["county"],
                            "go_live": later.get(r["area"], "2022-07-01"), "phase": r["phase"]}
                           for r in load_rollout().iter_rows(named=True)])
    ac = arm_counts(build_cohort(fam.lazy(), sched, Design(treatment_counties=("Oxfordshire",))),
                    "chas_support", among=None)
    row = placebo_go_live(c, shifts=[1], outcome="chas_support").frame.row(0, named=True)
    assert (row["x1"], row["n1"]) == ac["treatment"]
    assert (row["x2"], row["n2"]) == ac["control"]


# ------------------------------------------------------------------ Holm's adjustment


def test_holm_equals_statsmodels_multipletests_bit_for_bit(monkeypatch):
    """Reference: statsmodels 0.15 ``multipletests(p, method="holm")[1]`` (the function natexp
    called before; it is still a dependency), on random p-values with ties, values that the
    cap reaches, and one or many tests; NaN entries are left out and stay NaN.

    statsmodels' Holm runs ``gc.collect()`` on every call (why natexp no longer calls it): a
    no-op here, or the 200 references cost 20 s in a test process holding the suite's objects.
    """
    import gc

    from statsmodels.stats.multitest import multipletests

    monkeypatch.setattr(gc, "collect", lambda *args, **kwargs: 0)
    rng = np.random.default_rng(20261202)
    for k in range(200):
        m = int(rng.integers(1, 12))
        p = rng.uniform(0, 1, m) ** rng.uniform(0.2, 3.0)
        if k % 3 == 0:  # ties
            p = np.round(p, 1)
        got = _holm(list(p))
        ref = multipletests(p, method="holm")[1]
        assert [float(v) for v in ref] == got, (p, got, ref)
    p = [0.01, math.nan, 0.04, 0.03, math.nan]
    ref = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    got = _holm(p)
    assert math.isnan(got[1]) and math.isnan(got[4])
    assert [got[0], got[2], got[3]] == [float(v) for v in ref]
    assert _holm([]) == [] and all(math.isnan(v) for v in _holm([math.nan, math.nan]))


def test_holm_equals_its_definition():
    """Property: the brute-force definition (tests/conftest.py), within rounding, on every
    draw."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        p = list(rng.choice([0.001, 0.01, 0.02, 0.05, 0.2, 0.5, 1.0], int(rng.integers(1, 9))))
        assert _holm(p) == pytest.approx(holm_by_definition(p), rel=1e-15, abs=0)
