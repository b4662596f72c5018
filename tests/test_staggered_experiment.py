"""The staggered_rollout experiment recovers the synthetic generator's true effect."""

from __future__ import annotations

import dataclasses

import pytest

from natexp.config import compose, to_settings
from natexp.data.rollout import rollout_frame
from natexp.pipeline import load_data, staggered_panel


def settings_for(seed: int, effect: float):
    s = to_settings(compose(["+experiment=staggered_rollout",
                             f"synthetic.seed={seed}", f"synthetic.uptake_effect={effect}",
                             "panel.n_permutations=49", "panel.n_boot=199"]))
    return s


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_overall_att_interval_covers_the_true_effect(seed):
    effect = 0.10
    s = settings_for(seed, effect)
    rollout = rollout_frame([dataclasses.asdict(a) for a in s.rollout.areas])
    inputs, _ = load_data(s, rollout)
    out, tables = staggered_panel(inputs, rollout, s)
    simple = out["aggregate"]["simple"]["overall"]
    # The generator's uptake probability is 0.06 + effect in live areas (followup=false), so
    # the true ATT is `effect` (monthly periods: every go-live is on the first of a month).
    assert simple["ci_low"] <= effect <= simple["ci_high"]
    assert set(tables) == {"panel", "att_gt", "event_study"}
    assert tables["panel"].height == 13 * 43  # 13 areas x 43 months, Dec 2021 - Jun 2025


def test_null_effect_is_not_detected_by_randomization_inference():
    s = settings_for(7, 0.0)
    rollout = rollout_frame([dataclasses.asdict(a) for a in s.rollout.areas])
    inputs, _ = load_data(s, rollout)
    out, _ = staggered_panel(inputs, rollout, s)
    simple = out["aggregate"]["simple"]["overall"]
    assert simple["ci_low"] <= 0.0 <= simple["ci_high"]
    assert out["randomization_inference"]["pvalue"] > 0.05
