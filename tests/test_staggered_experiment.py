"""The staggered_rollout experiment recovers the synthetic generator's true effect, and reports
few-cluster inference honestly (issue 18): WCR bootstrap-t p-values and intervals, the
cohort-size guard, the pre-trend check and randomization inference over the county blocks."""

from __future__ import annotations

import dataclasses
import math

import pytest

from natexp.config import compose, to_settings
from natexp.data.rollout import rollout_frame
from natexp.pipeline import load_data, staggered_panel


def settings_for(seed: int, effect: float, *extra: str):
    s = to_settings(compose(["+experiment=staggered_rollout",
                             f"synthetic.seed={seed}", f"synthetic.uptake_effect={effect}",
                             "panel.n_permutations=199", "panel.n_boot=199", *extra]))
    return s


def run(seed: int, effect: float, *extra: str):
    s = settings_for(seed, effect, *extra)
    rollout = rollout_frame([dataclasses.asdict(a) for a in s.rollout.areas])
    inputs, _ = load_data(s, rollout)
    return staggered_panel(inputs, rollout, s)


@pytest.fixture(scope="module")
def default_run():
    return run(1, 0.10)


@pytest.mark.parametrize("seed", [2, 3])
def test_overall_att_interval_covers_the_true_effect(seed):
    effect = 0.10
    out, tables = run(seed, effect)
    simple = out["aggregate"]["simple"]["overall"]
    # The generator's uptake probability is 0.06 + effect in live areas (followup=false), so
    # the true ATT is `effect` (monthly periods: every go-live is on the first of a month).
    assert simple["ci_low"] <= effect <= simple["ci_high"]
    wcr = out["wcr"]["simple"]["webb"]
    assert wcr["ci_low"] <= effect <= wcr["ci_high"]
    assert set(tables) == {"panel", "att_gt", "event_study"}
    assert tables["panel"].height == 13 * 43  # 13 areas x 43 months, Dec 2021 - Jun 2025


def test_few_cluster_inference_is_reported(default_run):
    out, _ = default_run
    # TWFE: 13 areas -> CR1 with t(12), fixest convention named
    tw = out["twfe"]
    assert tw["extra"]["df"] == 12 and tw["extra"]["small_sample"] == "fixest"
    assert "t(12)" in tw["note"]
    # WCR p-values and intervals, both weight types (n_boot=199 here: random draws; the
    # experiment's n_boot=9999 enumerates all 2^12 / 2^13 Rademacher patterns)
    for block in (out["twfe_wcr"], *out["wcr"].values()):
        assert set(block) == {"rademacher", "webb"}
        for res in block.values():
            assert 0 < res["pvalue"] <= 1
            assert res["ci_low"] < res["estimate"] < res["ci_high"]
    assert out["wcr"]["simple"]["rademacher"]["extra"]["n_clusters"] == 12
    # cohort guard: every Thames Valley cohort is below 5 areas and is named
    guard = out["cohort_guard"]
    assert guard["mode"] == "include" and guard["min_cohort_size"] == 5
    assert [c["units"] for c in guard["cohorts"]] == [4, 1, 2, 2]
    assert guard["cohorts"][1]["areas"] == ["Milton Keynes"]
    assert all(c["status"] == "kept, below minimum" for c in guard["cohorts"])
    # pre-trend check: 6 leads, an average, a power statement, its limits
    pre = out["pretrend"]
    assert len(pre["leads"]) == 6 and math.isfinite(pre["average"]["pvalue"])
    assert pre["power"]["slope"] > 0 and pre["limits"]
    # randomization inference within counties: Oxfordshire (4 June 2022 districts; Oxford
    # leaves the panel) 1 x Buckinghamshire (MK, Bucks) 2 x Berkshire 6!/(1!2!3!) = 60
    ri = out["randomization_inference"]
    assert ri["extra"]["n_assignments"] == 120 and ri["extra"]["exact"]
    assert ri["extra"]["smallest_pvalue"] >= 1 / 120
    assert ri["assignment_blocks"] == "county"


def test_phase_blocks_leave_nothing_to_permute():
    out, _ = run(1, 0.10, "panel.assignment_blocks=phase")
    ri = out["randomization_inference"]
    assert ri["extra"]["n_assignments"] == 1 and ri["pvalue"] == 1.0


def test_default_guard_excludes_every_cohort_and_says_so():
    out, _ = run(1, 0.10, "panel.small_cohorts=exclude")
    simple = out["aggregate"]["simple"]["overall"]
    assert simple["estimate"] is None or math.isnan(simple["estimate"])
    assert "fewer than 5 units" in simple["note"]
    assert all(c["status"] == "excluded" for c in out["cohort_guard"]["cohorts"])
    assert "not defined" in out["wcr"]["simple"]["rademacher"]["note"]
    # TWFE does not aggregate cohorts and is still reported
    assert math.isfinite(out["twfe_wcr"]["rademacher"]["pvalue"])


def test_null_effect_is_not_detected_by_randomization_inference():
    out, _ = run(7, 0.0)
    simple = out["aggregate"]["simple"]["overall"]
    assert simple["ci_low"] <= 0.0 <= simple["ci_high"]
    assert out["randomization_inference"]["pvalue"] > 0.05
    assert out["wcr"]["simple"]["rademacher"]["pvalue"] > 0.05


def test_report_section_names_wcr_guard_and_pretrend(default_run):
    from natexp.pipeline import json_safe
    from natexp.report.render import _staggered_section

    out, _ = default_run
    section = _staggered_section({"staggered": json_safe(out)})
    text = str(section)
    assert "WCR bootstrap-t, rademacher weights" in text and "webb weights" in text
    assert "Cohort-size guard" in text and "Milton Keynes" in text
    assert "kept, below minimum" in text
    assert "Pre-trend check" in text and "Roth 2022" in text
    assert "120 assignments (county blocks)" in text
    assert "CR1 (fixest), t(12)" in text


def test_assignment_blocks_need_the_rollout_column():
    import polars as pl

    from natexp.config import ConfigError

    s = settings_for(1, 0.10, "panel.assignment_blocks=phase")
    rollout = rollout_frame([dataclasses.asdict(a) for a in s.rollout.areas])
    inputs, _ = load_data(s, rollout)
    holed = rollout.with_columns(pl.when(pl.col("area") == pl.col("area").first())
                                 .then(None).otherwise(pl.col("phase")).alias("phase"))
    with pytest.raises(ConfigError, match="'phase' is empty for 1 area"):
        staggered_panel(inputs, holed, s)
