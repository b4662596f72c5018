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
