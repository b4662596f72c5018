"""Nothing that identifies a child or a family leaves in a bundle, a log or an error message.

Names, dates of birth, postcodes, police (PNC) numbers and raw ids are planted in an input as
VALUES of allowed columns (family_id and child_id, the pseudonymous keys) and in extra columns
with innocuous names (columns named like identifiers are refused by validation). None of them,
and no family_id or child_id at all, may appear in any decompressed byte of the bundle or in
what ``bundle`` and ``verify`` print.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import polars as pl
import pytest

from natexp.bundle.cli import bundle_main, verify_main

pytestmark = pytest.mark.slow

FIRST = ["ZEBEDEE", "QUENTINA", "MARGOLD", "BARNABY"]
LAST = ["QUILLFEATHER", "SNODGRASS", "WIMBLETON", "PUDDIFOOT"]
POSTCODES = ["OX1 2AB", "OX4 1ZZ", "RG1 7QP", "MK9 3HX"]


def planted(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Synthetic inputs whose ids and extra columns are identifiers; returns the secrets."""
    from natexp.data.synthetic import generate

    fam, chi = generate()
    n = fam.height
    fam_ids = [
        f"{FIRST[i % 4]}-{LAST[(i // 4) % 4]}-{1970 + i % 30}-{1 + i % 12:02d}-"
        f"{1 + i % 28:02d}-{POSTCODES[i % 4]}-{i:04d}" for i in range(n)]
    mapping = dict(zip(fam["family_id"].to_list(), fam_ids, strict=True))
    pnc = [f"PNC {10 + i % 90}/{100000 + i}{chr(65 + i % 26)}" for i in range(n)]
    dob = [f"{1 + i % 28:02d}/{1 + i % 12:02d}/{1980 + i % 20}" for i in range(n)]
    fam = fam.with_columns(
        pl.Series("family_id", fam_ids),
        pl.Series("ref", pnc),  # an innocuous name holding police numbers
        pl.Series("extra", [f"{FIRST[i % 4].title()} {LAST[i % 4].title()} born {dob[i]}"
                            for i in range(n)]),
        pl.Series("ward", [POSTCODES[i % 4] for i in range(n)]),
    )
    m = chi.height
    child_ids = [f"CHILD-{FIRST[j % 4]}-{LAST[j % 4]}-DOB-{2008 + j % 10}-{1 + j % 12:02d}-"
                 f"{1 + j % 28:02d}-{j:05d}" for j in range(m)]
    chi = chi.with_columns(
        pl.Series("child_id", child_ids),
        pl.col("family_id").replace_strict(mapping),
        pl.Series("school_ref", [f"UPN-K{900000000 + j}" for j in range(m)]),
    )
    folder = tmp_path / "secret-inputs"
    folder.mkdir()
    f, c = folder / "families.csv", folder / "children.csv"
    fam.write_csv(f)
    chi.write_csv(c)
    secrets = [*fam_ids, *child_ids, *pnc, *dob, *POSTCODES, *FIRST, *LAST,
               *(s.title() for s in FIRST + LAST), "UPN-K9000", str(folder)]
    return f, c, secrets


def member_texts(zf: zipfile.ZipFile) -> list[str]:
    """Every member as text; natexp's own wheel (a zip) is opened and its members read too."""
    out = []
    for name in zf.namelist():
        data = zf.read(name)
        if name.endswith(".whl"):
            with zipfile.ZipFile(io.BytesIO(data)) as inner:
                out += [name, *inner.namelist(), *member_texts(inner)]
        else:
            out.append(data.decode("utf-8"))
    return out


def leaks(blob: str, secrets: list[str]) -> list[str]:
    return sorted({s for s in secrets if s in blob})


def test_planted_identifiers_never_leave_and_a_changed_input_is_detected(tmp_path, capsys):
    from natexp.config import compose

    f, c, secrets = planted(tmp_path)
    # An extra column of postcodes is refused by validation's content rules (see
    # test_error_messages_carry_no_planted_value); the postcodes stay planted in the ids.
    pl.read_csv(f, infer_schema=False).drop("ward").write_csv(f)
    ovr = ["+experiment=oxon_vs_rest", f"data.families={f}", f"data.children={c}"]
    cfg = compose(["+experiment=oxon_vs_rest"])
    if "sensitivity" in cfg:
        ovr.append("sensitivity.enabled=false")
    if "report" in cfg:
        ovr.append("report.enabled=false")
    out = tmp_path / "b.zip"
    rc = bundle_main([*ovr, "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    with zipfile.ZipFile(out) as zf:
        blob = "\n".join(member_texts(zf))
        names = "\n".join(zf.namelist())
    assert leaks(blob + names, secrets) == []
    assert leaks(printed.out + printed.err, secrets) == []
    # the extra columns are reported by name only and kept out of every output
    assert '"column": "ref"' in blob and "PNC" not in blob
    # a confidential bundle cannot be verified without its inputs (nothing is re-run)
    assert verify_main([str(out)]) == 2
    assert "confidential data" in capsys.readouterr().err
    # the reviewer's copy has one family's earlier uptake flipped: verify reports the input
    # and the outputs that differ, and prints only what the bundle publishes
    fam = pl.read_csv(f, infer_schema=False)
    flip = pl.when(pl.col("chas_support") == "true").then(pl.lit("false")).otherwise(
        pl.lit("true"))
    fam = fam.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(flip)
                           .otherwise(pl.col("chas_support")).alias("chas_support"))
    changed = tmp_path / "reviewer" / "fam.csv"
    changed.parent.mkdir()
    fam.write_csv(changed)
    rc = verify_main([str(out), "--data-families", str(changed), "--data-children", str(c)])
    printed = capsys.readouterr()
    assert rc == 3  # differences found
    assert "input     differs  families" in printed.out
    assert "input     matches  children" in printed.out
    assert "content SHA-256: bundle" in printed.out
    assert "output    differs  inputs/inputs.json" in printed.out
    assert leaks(printed.out + printed.err, secrets) == []


def test_error_messages_carry_no_planted_value(tmp_path, capsys):
    f, c, secrets = planted(tmp_path)
    fam = pl.read_csv(f, infer_schema=False)
    # a duplicated identifier-like id and a date field holding a name and a date of birth
    fam = fam.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.col("family_id").first())
        .otherwise(pl.col("family_id")).alias("family_id"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("ZEBEDEE QUILLFEATHER 01/02/1985"))
        .otherwise(pl.col("reception_date")).alias("reception_date"),
    )
    fam.write_csv(f)
    rc = bundle_main(["+experiment=oxon_vs_rest", f"data.families={f}", f"data.children={c}",
                      "--out", str(tmp_path / "x.zip")])
    printed = capsys.readouterr()
    assert rc == 2
    assert "duplicate id" in printed.err and "not a date" in printed.err
    assert "column 'ward': values look like a direct identifier (postcode)" in printed.err
    assert leaks(printed.out + printed.err, [*secrets, "01/02/1985"]) == []
    assert not (tmp_path / "x.zip").exists()
