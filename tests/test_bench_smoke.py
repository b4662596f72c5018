"""Smoke test of bench/bench_cohort.py: the cohort build written with natexp, pandas and DuckDB
gives identical flow and uptake tables on a small synthetic dataset. Nothing is timed here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import polars as pl
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_cohort", BENCH / "bench_cohort.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def families(tmp_path_factory) -> str:
    from natexp.data.synthetic import generate

    fam, chi = generate(n_families=10_000, seed=7)
    folder = tmp_path_factory.mktemp("bench")
    fam.write_parquet(folder / "families.parquet")
    chi.write_parquet(folder / "children.parquet")  # for the natexp+validation runner
    return str(folder / "families.parquet")


def test_implementations_agree(bench, families):
    pytest.importorskip("duckdb")
    pytest.importorskip("pandas")
    from natexp.data.cohort import Design
    from natexp.data.rollout import load_rollout

    rollout = load_rollout()
    for design in (Design(treatment_counties=("Oxfordshire",)),
                   Design(name="staggered", kind="staggered", phases=(1, 2, 3, 4))):
        results = {name: run(families, rollout, design) for name, run in bench.RUNNERS.items()}
        bench.check_equal(results)  # raises on any difference
        flow, uptake = results["natexp"]
        assert flow["n"][0] == 10_000
        assert uptake["families"].sum() == flow.filter(pl.col("step") == "identified")["n"].sum()


def test_check_equal_catches_a_difference(bench, families):
    from natexp.data.cohort import Design
    from natexp.data.rollout import load_rollout

    flow, uptake = bench.run_natexp(families, load_rollout(),
                                    Design(treatment_counties=("Oxfordshire",)))
    changed = uptake.with_columns(pl.col("uptake") + (pl.int_range(pl.len()) == 0))
    with pytest.raises(AssertionError, match="uptake"):
        bench.check_equal({"a": (flow, uptake), "b": (flow, changed)})


def test_dependencies_from_importtime(bench):
    # -X importtime prints a module after its imports, one level deeper than its importer.
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:        10 |         10 |     scipy._lib",
        "import time:        20 |         30 |   scipy.stats",
        "import time:         5 |         35 | natexp.causal.twobytwo",
        "import time:         7 |          7 | polars",
        "import time:         3 |          3 | json",
    ])
    tops, asked = bench._dependencies(stderr)
    assert tops == ["scipy", "polars"]
    assert asked == ["scipy.stats", "polars"]
