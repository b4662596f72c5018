"""Determinism (issue 13): the same rows in any order give byte-identical outputs.

Shuffled children used to change the last digits of the balance table's child-age mean and
standard deviation (float sums in input order).
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from natexp.causal.balance import balance_table
from natexp.config import compose
from natexp.data.cohort import Design, build_cohort
from natexp.data.rollout import load_rollout
from natexp.data.synthetic import generate
from natexp.pipeline import run


@pytest.fixture(scope="module")
def data():
    return generate()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_balance_table_ignores_row_order(data, seed):
    fam, chi = data
    cohort = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    shuffled = build_cohort(fam.sample(fraction=1.0, shuffle=True, seed=seed).lazy(),
                            load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    kids = chi.sample(fraction=1.0, shuffle=True, seed=seed)
    for among in (None, "followup_reached"):
        a = balance_table(cohort, chi, among=among).write_csv()
        b = balance_table(shuffled, kids, among=among).write_csv()
        assert a == b


def test_run_outputs_are_byte_identical_for_shuffled_rows(tmp_path, data):
    """Every CSV and results.json (apart from the inputs' own checksums) byte for byte."""
    fam, chi = data
    inputs = tmp_path / "in"
    inputs.mkdir()
    outs = []
    for k, seed in enumerate([None, 11]):
        f = fam if seed is None else fam.sample(fraction=1.0, shuffle=True, seed=seed)
        c = chi if seed is None else chi.sample(fraction=1.0, shuffle=True, seed=seed)
        f.write_csv(inputs / "families.csv")
        c.write_csv(inputs / "children.csv")
        cfg = compose(["+experiment=oxon_vs_rest", f"data.families={inputs / 'families.csv'}",
                       f"data.children={inputs / 'children.csv'}", "data.as_of=2026-01-01",
                       "report.enabled=false", "sensitivity.dowhy=false"])
        outs.append(tmp_path / f"out{k}")
        run(cfg, output_dir=outs[-1])
    names = sorted(p.name for p in outs[0].iterdir() if p.suffix == ".csv")
    assert "balance_identified.csv" in names
    assert names == sorted(p.name for p in outs[1].iterdir() if p.suffix == ".csv")
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    a, b = (json.loads((o / "results.json").read_text()) for o in outs)
    for r in (a, b):
        for table in ("families", "children"):
            r["inputs"][table].pop("sha256")  # the files' bytes differ, by construction
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert pl.read_csv(outs[0] / "balance_identified.csv").height > 0
