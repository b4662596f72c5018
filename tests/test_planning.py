"""``plan_power`` / ``python -m natexp power`` on a fictional study's configuration, and the
pooling of a power sweep's jobs (natexp.planning)."""

from __future__ import annotations

import json

import pytest

from natexp.causal.power_sim import simulate_power
from natexp.config import to_settings
from natexp.planning import collect_power, plan_power, write_power

# A fictional programme (not Paramount): four districts in two regions, one region live.
STUDY = {
    "experiment": "harbour_pilot",
    "rollout": {"name": "harbourshire", "areas": [
        {"name": "Quay", "county": "Harbourshire", "go_live": "2022-03-01", "phase": 1},
        {"name": "Docks", "county": "Harbourshire", "go_live": "2022-03-01", "phase": 1},
        {"name": "Moor", "county": "Upland", "go_live": None, "phase": 2},
        {"name": "Fell", "county": "Upland", "go_live": None, "phase": 2},
    ]},
    "design": {"name": "oxon_vs_rest", "window_start": "2022-04-01", "window_end": "2023-03-31",
               "followup_date": None, "custody_at_followup": False,
               "treatment_counties": ["Harbourshire"]},
    "power_sim": {"families_per_area_month": 2.0, "baseline": 0.2, "effect": 0.15, "icc": 0.03,
                  "n_simulations": 80, "target_power": 0.0},
}


def _config(**power):
    return {**STUDY, "power_sim": {**STUDY["power_sim"], **power}}


def test_plan_is_the_simulation_of_the_configured_rollout_and_design():
    plan = plan_power(_config(seed=4))
    s = to_settings(_config(seed=4))
    from dataclasses import asdict

    from natexp.data.rollout import rollout_frame

    sim = simulate_power(rollout_frame([asdict(a) for a in s.rollout.areas]),
                         s.design.to_design(), families_per_area_month=2.0, baseline=0.2,
                         effect=0.15, icc=0.03, n_simulations=80, rng=4)
    for r in sim.results:
        key = r.method.removeprefix("power.simulated_")
        assert plan.results["power"][key]["estimate"] == r.estimate
    assert {c["area"] for c in plan.results["cells"]} == {"Quay", "Docks", "Moor", "Fell"}
    assert "estimand" in plan.results and "assignment" in plan.results


def test_sweep_jobs_differing_only_in_seed_are_pooled(tmp_path):
    total = {}
    for job, seed in enumerate((1, 2, 3)):
        plan = plan_power(_config(seed=seed))
        write_power(plan, tmp_path / str(job))
        for key, r in plan.results["power"].items():
            total[key] = total.get(key, 0) + r["extra"]["rejections"]
    pooled = collect_power(tmp_path)
    assert pooled.height == 2
    for row in pooled.iter_rows(named=True):
        assert row["jobs"] == 3 and row["n_simulations"] == 240
        assert row["rejections"] == total[row["analysis"]]
        assert row["ci_low"] <= row["power"] <= row["ci_high"]
    # Results hold settings and counts only: no paths, no records.
    text = (tmp_path / "0" / "power_simulation.json").read_text()
    assert str(tmp_path) not in text
    assert json.loads(text)["settings"]["n_simulations"] == 80


def test_same_seed_twice_is_refused(tmp_path):
    for job in range(2):
        write_power(plan_power(_config(seed=5)), tmp_path / str(job))
    with pytest.raises(ValueError, match="same seed"):
        collect_power(tmp_path)
    with pytest.raises(FileNotFoundError):
        collect_power(tmp_path / "nothing")


def test_power_outputs_follow_the_output_folder_rules(tmp_path):
    """Never into somebody else's folder; an earlier power output is replaced file by file."""
    from natexp.safety import OUTPUT_MARKER, OutputDirError

    plan = plan_power(_config(seed=6))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not a natexp output"):
        write_power(plan, theirs)
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
    ours = tmp_path / "ours"
    write_power(plan, ours)
    assert (ours / OUTPUT_MARKER).is_file()
    first = (ours / "power_simulation.json").read_bytes()
    write_power(plan, ours)  # replaces its own files, same bytes
    assert (ours / "power_simulation.json").read_bytes() == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
