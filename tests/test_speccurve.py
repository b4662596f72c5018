"""Specification curve: in-process and through a Hydra multirun sweep, the same table."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from scipy.stats import boschloo_exact

from natexp.data.cohort import Design, arm_counts, build_cohort
from natexp.data.rollout import load_rollout
from natexp.data.synthetic import generate
from natexp.speccurve import specification_curve

REPO = Path(__file__).resolve().parents[1]
D = dt.date


def test_each_specification_is_the_cohort_it_names():
    fam, _ = generate()
    ro = load_rollout()
    table = specification_curve(
        fam.lazy(), ro, Design(treatment_counties=("Oxfordshire",)),
        designs=["oxon_vs_rest", "staggered"],
        windows=[(D(2022, 7, 1), D(2024, 6, 30)), (D(2023, 1, 1), D(2024, 6, 30))],
        followup_dates=[D(2024, 11, 1)], custody=[True, False],
    )
    assert table.height == 8
    row = table.filter((pl.col("design") == "staggered") & (pl.col("custody") == "any")
                       & (pl.col("window") == "2023-01-01 to 2024-06-30")).row(0, named=True)
    design = Design(name="staggered", kind="staggered", window_start=D(2023, 1, 1), custody_at_followup=False)
    counts = arm_counts(build_cohort(fam.lazy(), ro, design), "chas_support")
    assert (row["x1"], row["n1"]) == counts["treatment"]
    assert (row["x2"], row["n2"]) == counts["control"]
    # scipy reference for the p-value (scipy takes the columns as the two samples).
    ref = boschloo_exact([[row["x1"], row["x2"]], [row["n1"] - row["x1"], row["n2"] - row["x2"]]],
                         n=200).pvalue
    assert abs(row["pvalue"] - ref) < 1e-6
    assert table["estimate"].is_sorted(nulls_last=True)


def test_invalid_combinations_are_skipped():
    fam, _ = generate()
    table = specification_curve(
        fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)),
        designs=["oxon_vs_rest"],
        windows=[(D(2022, 7, 1), D(2024, 6, 30))],
        followup_dates=[D(2024, 1, 1), D(2024, 11, 1)],  # the first is before the window ends
        custody=[True],
    )
    assert table["followup_date"].to_list() == ["2024-11-01"]


def test_multirun_sweep_with_joblib_and_collect(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "natexp"]
    proc = subprocess.run(
        [*run, "run", "--multirun", "+experiment=oxon_vs_rest", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "design.custody_at_followup=true,false",
         "sensitivity.enabled=false", "report.enabled=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*run, "speccurve", "multirun/oxon_vs_rest"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = pl.read_csv(tmp_path / "multirun" / "oxon_vs_rest" / "specification_curve.csv")
    assert (tmp_path / "multirun" / "oxon_vs_rest" / "specification_curve.png").stat().st_size > 0
    assert sorted(got["custody"].to_list()) == ["any", "in custody at follow-up"]
    fam, _ = generate()
    same = specification_curve(
        fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)),
        designs=["oxon_vs_rest"],
        windows=[(D(2022, 7, 1), D(2024, 6, 30))], followup_dates=[D(2024, 11, 1)],
        custody=[True, False],
    )
    cols = ["custody", "x1", "n1", "x2", "n2", "estimate", "ci_low", "ci_high", "pvalue"]
    assert got.select(cols).sort("custody").to_dicts() == same.select(cols).sort("custody").to_dicts()
