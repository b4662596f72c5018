"""Every bad-input case: the run stops with a message naming the problem and writes nothing."""

from __future__ import annotations

import polars as pl
import pytest

from natexp.config import compose
from natexp.data.validate import InputValidationError
from natexp.pipeline import run
from tests.conftest import tiny_children, tiny_families, write_table

SECRET = "ZZSECRET-0042"


def _fam(**cols):
    return tiny_families().with_columns(*(pl.Series(k, v) for k, v in cols.items()))


def _chi(**cols):
    return tiny_children().with_columns(*(pl.Series(k, v) for k, v in cols.items()))


CASES = {
    "missing column": (tiny_families().drop("parent_sex"), None,
                       "families.csv: column 'parent_sex': missing column"),
    "wrong type": (_fam(chas_support=["true", SECRET, "no", "0"]), None,
                   "column 'chas_support': not a boolean"),
    "unparseable date": (_fam(reception_date=["2022-08-01", SECRET, "2023-05-02", "2021-01-10"]),
                         None, "column 'reception_date': not a date"),
    "release before reception": (_fam(release_date=["2022-01-01", "", "", ""]), None,
                                 "column 'release_date': release before reception: 1 row(s) (rows 1)"),
    "future date": (_fam(reception_date=["2022-08-01", "2099-01-15", "2023-05-02", "2021-01-10"]),
                    None, "column 'reception_date': date in the future"),
    "unknown area": (_fam(area=["Oxford", SECRET, "Slough", "Cherwell"]), None,
                     "column 'area': area not in the rollout schedule"),
    "unknown category": (_fam(contact_view=["positive", SECRET, "", ""]), None,
                         "column 'contact_view': unknown category"),
    "duplicate id": (_fam(family_id=["F1", "F1", "F3", "F4"]), None,
                     "column 'family_id': duplicate id: 2 row(s) (rows 1, 2)"),
    "orphan child": (None, _chi(family_id=["F1", "F1", SECRET, "F3", "F4"]),
                     "children.csv: column 'family_id': family does not exist in families"),
    "age out of range": (None, _chi(age=["3", "11", "7", "15", "19"]),
                         "column 'age': outside the allowed range 0-17: 1 row(s) (rows 5)"),
    "identifier column": (tiny_families().with_columns(pl.lit(SECRET).alias("postcode")), None,
                          "column 'postcode': column looks like a direct identifier (postcode)"),
    "duplicated column": (None, None, "column 'cwcf': duplicated column"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_reported_and_nothing_is_written(tmp_path, case):
    fam, chi, expected = CASES[case]
    fam_path = write_table(tiny_families() if fam is None else fam, tmp_path / "families.csv")
    chi_path = write_table(tiny_children() if chi is None else chi, tmp_path / "children.csv")
    if case == "duplicated column":
        lines = chi_path.read_text().splitlines()
        chi_path.write_text("\n".join([lines[0].replace("sgo", "cwcf"), *lines[1:]]) + "\n")
    out = tmp_path / "out"
    cfg = compose(["+experiment=oxon_vs_rest", f"data.families={fam_path}",
                   f"data.children={chi_path}", "data.as_of=2026-01-01"])
    with pytest.raises(InputValidationError) as info:
        run(cfg, output_dir=out)
    message = str(info.value)
    assert expected in message
    assert SECRET not in message
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["children.csv", "families.csv"]


def _headerless(path):
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")


def _extra_field(path):
    lines = path.read_text().splitlines()
    lines[2] += f",{SECRET}"
    path.write_text("\n".join(lines) + "\n")


def _latin1(path):
    path.write_bytes(path.read_bytes().replace(b"Slough", b"Sl\xf6ugh"))


def _empty(path):
    path.write_bytes(b"")


#: Malformed files (issue 13): each was a traceback (exit 1) or echoed a value before.
FILE_CASES = {
    "headerless CSV": (_headerless, "families.csv: column '*': no header row"),
    "row with an extra field": (_extra_field, "more fields than the header: 1 row(s) (rows 2)"),
    "non-UTF-8 bytes": (_latin1, "not valid UTF-8 (save the file as CSV UTF-8): 1 row(s) "
                                 "(rows 3)"),
    "0-byte CSV": (_empty, "families.csv: column '*': file is empty"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_malformed_file_is_a_typed_error_and_nothing_is_written(tmp_path, case):
    mutate, expected = FILE_CASES[case]
    fam_path = write_table(tiny_families(), tmp_path / "families.csv")
    chi_path = write_table(tiny_children(), tmp_path / "children.csv")
    mutate(fam_path)
    out = tmp_path / "out"
    cfg = compose(["+experiment=oxon_vs_rest", f"data.families={fam_path}",
                   f"data.children={chi_path}", "data.as_of=2026-01-01"])
    with pytest.raises(InputValidationError) as info:
        run(cfg, output_dir=out)
    assert expected in str(info.value)
    assert SECRET not in str(info.value) and "Oxford" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["children.csv", "families.csv"]


@pytest.mark.parametrize(("column", "values"), [
    ("ChildFirstName", [SECRET, "Jolyon", "Albertine", "Samwise"]),
    ("OfficerComments", [SECRET, "visited twice", "", "no answer"]),
    ("ref", ["943 476 5919", "", "", ""]),
    ("contact", ["", "", "someone@example.org", ""]),
])
def test_identifiers_stop_the_run(tmp_path, column, values):
    fam = tiny_families().with_columns(pl.Series(column, values))
    fam_path = write_table(fam, tmp_path / "families.csv")
    chi_path = write_table(tiny_children(), tmp_path / "children.csv")
    cfg = compose(["+experiment=oxon_vs_rest", f"data.families={fam_path}",
                   f"data.children={chi_path}", "data.as_of=2026-01-01"])
    with pytest.raises(InputValidationError) as info:
        run(cfg, output_dir=tmp_path / "out")
    assert f"column '{column}'" in str(info.value) and "refused" in str(info.value)
    assert not any(v and v in str(info.value) for v in values)
    assert not (tmp_path / "out").exists()
