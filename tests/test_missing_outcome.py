"""A study whose outcome is recorded only for families reached by the follow-up (issue 17).

The study description says ``outcome.missing_when_unreached: true``: the input contract then
allows the outcome to be null for families not reached, and still refuses a null outcome for a
reached family (naming the rule). Every consumer copes: the primary comparison (among the
reached) is unchanged, the intention-to-treat analysis of all identified families is "not
estimated" with the reason, the non-response analyses run, the tables and the panel count.

Data: natexp's embedded synthetic data, whose margins equal the published tables of the
example study (Bekaert et al. 2025, Figures 7-8: 4 of 20 treatment and 2 of 15 control families
reached took up support; 85 identified, 35 reached), with the outcome blanked for every
family not reached.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from natexp.config import compose
from natexp.data.validate import InputValidationError, validate_frames
from natexp.pipeline import run
from tests.conftest import EXAMPLE_STUDY

LIGHT = ["report.enabled=false", "sensitivity.dowhy=false", "sensitivity.spec_curve=false",
         "data.as_of=2026-01-01"]
MISSING = "study.outcome.missing_when_unreached=true"


@pytest.fixture(scope="module")
def blanked(tmp_path_factory):
    """The synthetic data with the outcome null wherever the family was not reached."""
    from natexp.data.synthetic import generate

    fam, chi = generate()
    fam = fam.with_columns(
        pl.when(pl.col("followup_reached") == True)  # noqa: E712
        .then(pl.col("chas_support")).otherwise(None).alias("chas_support"))
    folder = tmp_path_factory.mktemp("blanked")
    paths = folder / "families.parquet", folder / "children.parquet"
    fam.write_parquet(paths[0])
    chi.write_parquet(paths[1])
    return fam, chi, paths


def _study(missing: bool):
    from dataclasses import replace

    return replace(EXAMPLE_STUDY,
                   outcome=replace(EXAMPLE_STUDY.outcome, missing_when_unreached=missing))


def _areas():
    from natexp.data.rollout import load_rollout

    return load_rollout()["area"].to_list()


def test_the_contract_allows_a_missing_outcome_only_when_the_study_says_so(blanked):
    fam, chi, _ = blanked
    n_null = fam["chas_support"].null_count()
    assert n_null > 0
    inputs = validate_frames(fam, chi, _areas(), study=_study(True), as_of=dt.date(2026, 1, 1))
    assert inputs.families.collect()["chas_support"].null_count() == n_null
    with pytest.raises(InputValidationError) as info:
        validate_frames(fam, chi, _areas(), study=_study(False), as_of=dt.date(2026, 1, 1))
    (problem,) = info.value.problems
    assert (problem.column, problem.rule, problem.count) == (
        "chas_support", "missing value in a required column", n_null)


def test_a_missing_outcome_for_a_reached_family_is_an_error_naming_the_rule(blanked):
    fam, chi, _ = blanked
    reached = pl.col("followup_reached") == True  # noqa: E712
    rows = fam.with_row_index("row", offset=1).filter(reached)
    first = int(rows["row"][0])
    bad = fam.with_columns(
        pl.when(pl.int_range(pl.len()) == first - 1).then(None)
        .otherwise(pl.col("chas_support")).alias("chas_support"))
    with pytest.raises(InputValidationError) as info:
        validate_frames(bad, chi, _areas(), study=_study(True), as_of=dt.date(2026, 1, 1))
    (problem,) = info.value.problems
    assert problem.column == "chas_support" and problem.count == 1
    assert problem.rows == (first,)
    assert "missing outcome for a family reached" in problem.rule
    assert "followup_reached" in problem.rule


def test_the_pipeline_runs_end_to_end_and_says_why_there_is_no_intention_to_treat(blanked):
    _, _, paths = blanked
    cfg = compose(["+experiment=oxon_vs_rest", MISSING, f"data.families={paths[0]}",
                   f"data.children={paths[1]}", *LIGHT])
    res = run(cfg, write=False)
    r = res.results
    # The primary comparison among the reached is the published one (Figures 7-8).
    assert r["primary_outcome"]["counts"] == {"x1": 4, "n1": 20, "x2": 2, "n2": 15}
    # 85 identified, 35 reached: the outcome is missing for the 50 not reached.
    itt = r["sensitivity"]["intention_to_treat"]
    assert itt["note"].startswith(
        "not estimated: outcome not recorded for 50 unreached families")
    assert "counts" not in itt
    # The non-response analyses use only the reached families' outcomes, and run.
    assert "note" not in r["sensitivity"]["pattern_mixture"]
    assert res.tables["tipping_point"].height > 0
    # Secondary tables are among the reached: the uptake table is the published one.
    up = r["secondary"]["uptake"]
    assert (up["treatment"]["yes"], up["treatment"]["n"]) == (4, 20)
    assert (up["control"]["yes"], up["control"]["n"]) == (2, 15)
    assert r["balance"] and res.summary()


def test_the_panel_counts_recorded_outcomes_only(blanked):
    from natexp.data.panel import area_period_panel
    from natexp.data.rollout import load_rollout

    fam, _, _ = blanked
    start, end = dt.date(2022, 7, 1), dt.date(2024, 6, 30)
    panel = area_period_panel(fam, load_rollout(), outcome="chas_support", start=start,
                              end=end).collect()
    inside = fam.filter(pl.col("reception_date").is_between(start, end))
    assert int(panel["families"].sum()) == inside.height
    assert int(panel["uptake"].sum()) == int(inside["chas_support"].sum())
