"""Bad input gets a clear error naming file, column, rule, count and rows, never values."""

from __future__ import annotations

import polars as pl
import pytest

from natexp.data.validate import InputValidationError, load_inputs
from tests.conftest import AREAS, AS_OF, EXAMPLE_STUDY, tiny_children, tiny_families

SECRET = "ZZSECRET-7731"  # a value that must never appear in a message


def problems_of(fam_path, chi_path):
    with pytest.raises(InputValidationError) as info:
        load_inputs(fam_path, chi_path, AREAS, study=EXAMPLE_STUDY, as_of=AS_OF)
    return info.value.problems, str(info.value)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_valid_input_loads_in_every_format(write_inputs, fmt):
    inputs = load_inputs(*write_inputs(fmt=fmt), AREAS, study=EXAMPLE_STUDY, as_of=AS_OF)
    fam = inputs.families.collect()
    chi = inputs.children.collect()
    assert fam.height == 4 and chi.height == 5
    assert fam.schema["reception_date"] == pl.Date
    assert fam.schema["paramount_visit"] == pl.Boolean
    assert chi.schema["age"] == pl.Int64
    assert fam["release_date"].null_count() == 2
    assert chi["age"].to_list() == [3, 11, 7, 15, 9]


def test_every_problem_is_collected_before_failing(write_inputs):
    fam = tiny_families().with_columns(
        pl.Series("parent_sex", ["M", SECRET, "F", "M"]),
        pl.Series("reception_date", ["2022-08-01", "31/13/2022", "2023-05-02", "2021-01-10"]),
        pl.Series("area", ["Oxford", "Reading", "Atlantis", "Cherwell"]),
    )
    chi = tiny_children().with_columns(pl.Series("age", ["3", "18", "7", "-1", "2.5"]))
    problems, message = problems_of(*write_inputs(fam, chi))
    rules = {(p.file, p.column, p.rule.split(" (")[0]) for p in problems}
    assert ("families.csv", "parent_sex", "unknown category") in rules
    assert ("families.csv", "reception_date", "not a date") in rules
    assert ("families.csv", "area", "area not in the rollout schedule") in rules
    assert ("children.csv", "age", "outside the allowed range 0-17") in rules
    assert ("children.csv", "age", "not a whole number") in rules
    age_range = next(p for p in problems if p.rule.startswith("outside"))
    assert age_range.count == 2 and age_range.rows == (2, 4)
    assert SECRET not in message and "Atlantis" not in message and "31/13/2022" not in message


def test_message_names_file_column_rule_count_and_rows(write_inputs):
    fam = tiny_families().with_columns(pl.Series("paramount_visit", ["true", SECRET, "x", "no"]))
    problems, message = problems_of(*write_inputs(fam))
    (p,) = problems
    assert (p.file, p.column, p.count, p.rows) == ("families.csv", "paramount_visit", 2, (2, 3))
    assert "families.csv: column 'paramount_visit': not a boolean" in message
    assert "2 row(s) (rows 2, 3)" in message
    assert SECRET not in message


def test_missing_and_duplicated_columns(write_inputs, tmp_path):
    fam = tiny_families().drop("chas_support")
    fam_path, chi_path = write_inputs(fam)
    # A CSV with a duplicated header (readers silently rename duplicates; natexp refuses them).
    text = chi_path.read_text().splitlines()
    text[0] = text[0].replace("sgo", "cwcf")
    chi_path.write_text("\n".join(text) + "\n")
    problems, _ = problems_of(fam_path, chi_path)
    found = {(p.file, p.column, p.rule) for p in problems}
    assert ("families.csv", "chas_support", "missing column") in found
    assert ("children.csv", "sgo", "missing column") in found
    assert ("children.csv", "cwcf", "duplicated column (appears 2 times)") in found


def test_impossible_dates(write_inputs):
    fam = tiny_families().with_columns(
        pl.Series("release_date", ["2022-07-01", "", "2030-01-01", "2021-06-01"]),
        pl.Series("reception_date", ["2022-08-01", "2027-01-15", "2023-05-02", "2021-01-10"]),
    )
    problems, _ = problems_of(*write_inputs(fam))
    found = {(p.column, p.rule, p.rows) for p in problems}
    assert ("release_date", "release before reception", (1,)) in found
    assert ("reception_date", "date in the future (after 2026-01-01)", (2,)) in found
    assert ("release_date", "date in the future (after 2026-01-01)", (3,)) in found


def test_duplicate_ids_and_orphan_children(write_inputs):
    fam = tiny_families().with_columns(pl.Series("family_id", ["F1", "F2", "F2", "F4"]))
    chi = tiny_children().with_columns(
        pl.Series("child_id", ["C1", "C1", "C3", "C4", "C5"]),
        pl.Series("family_id", ["F1", "F1", "F2", SECRET, "F4"]),
    )
    problems, message = problems_of(*write_inputs(fam, chi))
    found = {(p.file, p.column, p.rule, p.count, p.rows) for p in problems}
    assert ("families.csv", "family_id", "duplicate id", 2, (2, 3)) in found
    assert ("children.csv", "child_id", "duplicate id", 2, (1, 2)) in found
    assert ("children.csv", "family_id", "family does not exist in families", 1, (4,)) in found
    assert SECRET not in message


def test_missing_required_value(write_inputs):
    fam = tiny_families().with_columns(pl.Series("area", ["Oxford", "", "Slough", "Cherwell"]))
    problems, _ = problems_of(*write_inputs(fam))
    assert [(p.column, p.rule, p.rows) for p in problems] == [
        ("area", "missing value in a required column", (2,))
    ]


@pytest.mark.parametrize(
    "column, kind",
    [
        ("child_surname", "name"),
        ("Date of Birth", "date of birth"),
        ("postcode", "postcode"),
        ("PNC_ID", "police or prison number"),
        ("nhs_number", "NHS or national number"),
        ("case_notes", "free text"),
        ("home address", "address"),
    ],
)
def test_identifier_columns_are_refused(write_inputs, column, kind):
    fam = tiny_families().with_columns(pl.lit(SECRET).alias(column))
    problems, message = problems_of(*write_inputs(fam))
    assert [(p.column, p.rule) for p in problems] == [
        (column, f"column looks like a direct identifier ({kind}); refused")
    ]
    assert SECRET not in message


def test_categories_are_trimmed_and_case_folded_and_reported(write_inputs):
    fam = tiny_families().with_columns(
        pl.Series("parent_sex", [" m", "M", "f ", "M"]),
        pl.Series("area", ["oxford", "Reading", "SLOUGH ", "Cherwell"]),
        pl.Series("paramount_visit", ["TRUE", "No", "0", "false"]),
    )
    inputs = load_inputs(*write_inputs(fam), AREAS, study=EXAMPLE_STUDY, as_of=AS_OF)
    got = inputs.families.collect()
    assert got["parent_sex"].to_list() == ["M", "M", "F", "M"]
    assert got["area"].to_list() == ["Oxford", "Reading", "Slough", "Cherwell"]
    assert got["paramount_visit"].to_list() == [True, False, False, False]
    notes = {(n.column, n.count) for n in inputs.notices}
    assert ("parent_sex", 2) in notes and ("area", 2) in notes


def test_unknown_extra_columns_are_reported_and_dropped(write_inputs):
    fam = tiny_families().with_columns(pl.lit("x").alias("officer_team"))
    inputs = load_inputs(*write_inputs(fam), AREAS, study=EXAMPLE_STUDY, as_of=AS_OF)
    assert "officer_team" not in inputs.families.collect_schema().names()
    assert [(n.column, n.message) for n in inputs.notices] == [
        ("officer_team", "column is not in the contract: excluded from every output")
    ]


def test_unreadable_and_missing_files(tmp_path, write_inputs):
    fam_path, _ = write_inputs()
    problems, _ = problems_of(fam_path, tmp_path / "nope.csv")
    assert [(p.file, p.rule) for p in problems] == [("nope.csv", "file not found")]
