"""Specification curve: in-process and through a Hydra multirun sweep, the same table."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from scipy.stats import boschloo_exact

from natexp.config import ConfigError, SensitivityConfig
from natexp.data.cohort import Design, DesignError, arm_counts, build_cohort
from natexp.data.rollout import load_rollout
from natexp.data.synthetic import generate
from natexp.speccurve import (
    PRIMARY_ADDED_NOTE,
    specification_choices,
    specification_curve,
)
from tests.conftest import natexp_in_process

REPO = Path(__file__).resolve().parents[1]
D = dt.date
#: The example study's primary design (conf/design/oxon_vs_rest.yaml).
PRIMARY = Design(name="oxon_vs_rest", treatment_counties=("Oxfordshire",))


def test_each_specification_is_the_cohort_it_names():
    fam, _ = generate()
    ro = load_rollout()
    table = specification_curve(
        fam.lazy(), ro, PRIMARY,
        designs=["oxon_vs_rest", "staggered"],
        windows=[(D(2022, 7, 1), D(2024, 6, 30)), (D(2023, 1, 1), D(2024, 6, 30))],
        followup_dates=[D(2024, 11, 1)], custody=[True, False], outcome="chas_support",
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
        fam.lazy(), load_rollout(), PRIMARY,
        designs=["oxon_vs_rest"],
        windows=[(D(2022, 7, 1), D(2024, 6, 30))],
        followup_dates=[D(2024, 1, 1), D(2024, 11, 1)],  # the first is before the window ends
        custody=[True], outcome="chas_support",
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
    proc = natexp_in_process("speccurve", "multirun/oxon_vs_rest", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = pl.read_csv(tmp_path / "multirun" / "oxon_vs_rest" / "specification_curve.csv")
    assert (tmp_path / "multirun" / "oxon_vs_rest" / "specification_curve.png").stat().st_size > 0
    assert sorted(got["custody"].to_list()) == ["any", "in custody at follow-up"]
    fam, _ = generate()
    same = specification_curve(
        fam.lazy(), load_rollout(), PRIMARY,
        designs=["oxon_vs_rest"],
        windows=[(D(2022, 7, 1), D(2024, 6, 30))], followup_dates=[D(2024, 11, 1)],
        custody=[True, False], outcome="chas_support",
    )
    cols = ["custody", "x1", "n1", "x2", "n2", "estimate", "ci_low", "ci_high", "pvalue"]
    assert got.select(cols).sort("custody").to_dicts() == same.select(cols).sort("custody").to_dicts()


# --------------------------------------------------------------------------------------------
# the choices belong to the study (issue 16 item 4)

#: The example study's lists, as conf/config.yaml held them before the choices were derived.
EXAMPLE_LISTS = {
    "designs": ["oxon_vs_rest", "staggered"],
    "window_starts": ["2022-07-01", "2023-01-01"],
    "window_ends": ["2023-12-31", "2024-06-30"],
    "followup_dates": ["2024-11-01", "2025-03-01"],
    "custody": [True, False],
}
EXAMPLE_DATES = {D.fromisoformat(d) for k in ("window_starts", "window_ends", "followup_dates")
                 for d in EXAMPLE_LISTS[k]}
#: A second, fictional study: its own name, county, window and follow-up (nothing shared with
#: the example study's dates).
FICTIONAL = Design(name="northshire_first", kind="treated_counties",
                   window_start=D(2022, 3, 1), window_end=D(2023, 8, 15),
                   followup_date=D(2023, 12, 10), custody_at_followup=False,
                   treatment_counties=("Northshire",))


def _combinations(c):
    return {(d.name, d.kind, s, e, f, k) for d, s, e, f, k in itertools.product(
        c.designs, c.window_starts, c.window_ends, c.followup_dates, c.custody)}


def _primary(d):
    return (d.name, d.kind, d.window_start, d.window_end, d.followup_date, d.custody_at_followup)


def test_derived_choices_of_the_example_study_are_its_former_lists():
    c = specification_choices(PRIMARY)
    assert [d.name for d in c.designs] == EXAMPLE_LISTS["designs"]
    assert [d.kind for d in c.designs] == ["treated_counties", "staggered"]
    assert [d.isoformat() for d in c.window_starts] == EXAMPLE_LISTS["window_starts"]
    assert [d.isoformat() for d in c.window_ends] == EXAMPLE_LISTS["window_ends"]
    assert [d.isoformat() for d in c.followup_dates] == EXAMPLE_LISTS["followup_dates"]
    assert list(c.custody) == EXAMPLE_LISTS["custody"]
    assert c.added == () and set(c.derived) == set(EXAMPLE_LISTS)


def test_derived_choices_of_a_fictional_study_are_its_own():
    c = specification_choices(FICTIONAL)
    assert _primary(FICTIONAL) in _combinations(c)
    assert c.window_starts == (D(2022, 3, 1), D(2022, 9, 1))
    assert c.window_ends == (D(2023, 2, 28), D(2023, 8, 15))  # month-end six months earlier
    assert c.followup_dates == (D(2023, 12, 10), D(2024, 4, 10))
    assert c.custody == (False, True)
    assert [(d.name, d.kind) for d in c.designs] == [("northshire_first", "treated_counties"),
                                                    ("staggered", "staggered")]
    used = {*c.window_starts, *c.window_ends, *c.followup_dates}
    assert not used & EXAMPLE_DATES
    assert all(d.treatment_counties == ("Northshire",) for d in c.designs)


def test_staggered_primary_without_counties_has_no_treated_counties_alternative():
    d = Design(name="any_live", kind="staggered", treatment_counties=())
    c = specification_choices(d)
    assert [(x.name, x.kind) for x in c.designs] == [("any_live", "staggered")]
    with_counties = specification_choices(Design(name="any_live", kind="staggered",
                                                 treatment_counties=("Oxfordshire",)))
    assert [x.kind for x in with_counties.designs] == ["staggered", "treated_counties"]


def test_design_without_followup_date_keeps_none():
    d = Design(name="x", kind="staggered", followup_date=None, custody_at_followup=False)
    assert specification_choices(d).followup_dates == (None,)


def test_explicit_lists_override_and_the_primary_is_added():
    c = specification_choices(FICTIONAL, window_ends=[D(2023, 6, 30)], custody=[False],
                              designs=["staggered"])
    assert c.window_ends == (D(2023, 8, 15), D(2023, 6, 30))
    assert c.custody == (False,)
    assert [d.name for d in c.designs] == ["northshire_first", "staggered"]
    assert set(c.added) == {"window_ends", "designs"}
    assert "window_starts" in c.derived and "custody" not in c.derived
    assert _primary(FICTIONAL) in _combinations(c)
    assert any("added" in n for n in c.notes())


def test_unknown_design_name_is_an_error():
    with pytest.raises(DesignError, match="neither the primary design's name"):
        specification_choices(FICTIONAL, designs=["oxon_vs_rest"])


def test_empty_list_in_config_is_an_error():
    with pytest.raises(ConfigError, match="spec_custody is empty"):
        SensitivityConfig(spec_custody=[])
    assert SensitivityConfig().spec_designs is None


def test_added_primary_row_says_so():
    fam, _ = generate()
    c = specification_choices(PRIMARY, window_ends=[D(2023, 12, 31)], custody=[False],
                              followup_dates=[D(2024, 11, 1)], designs=["oxon_vs_rest"],
                              window_starts=[D(2022, 7, 1)])
    t = specification_curve(fam.lazy(), load_rollout(), PRIMARY, outcome="chas_support",
                            choices=c)
    primary = t.filter(pl.col("note") == PRIMARY_ADDED_NOTE)
    assert primary.height == 1
    # the example study's published comparison (report: 4 of 20 vs 2 of 15)
    assert primary.select("x1", "n1", "x2", "n2").row(0) == (4, 20, 2, 15)
    assert t.height == 4 and (t["note"] == "").sum() == 3
