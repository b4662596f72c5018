"""The report speaks in words and in one unit: no raw variable names, differences in points.

The default run's report.md is scanned (outside code spans and CSV file names) for every raw
``snake_case`` variable name of its study (the input contract's columns, the study's label
dictionary, the outcome) and for risk differences written as proportions ("difference 0.06667
(-0.1789 to 0.3123)", "[-0.5797, 0.6009]") where the rest of the report uses percentage points.
"""

from __future__ import annotations

import re

import pytest

from natexp.data.schema import contract
from natexp.report.render import study_of

pytestmark = pytest.mark.slow  # a full run with DoWhy: its notes name variables too

#: A difference written as a proportion: "difference 0.0667", "difference between 0.0095",
#: "full cohort 0.0667", or an interval of two proportions in brackets.
PROPORTION_DIFFERENCE = re.compile(
    r"(difference(?: between)?|full cohort|around) -?0\.\d{3,}"
    r"|\[-?0\.\d+, -?0\.\d+\]")


@pytest.fixture(scope="module")
def report(cli_default_run):
    """The report.md (and results) of the session's full default run (conftest)."""
    import json

    cwd, _ = cli_default_run
    out = cwd / "outputs" / "oxon_vs_rest"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return results, (out / "report.md").read_text(encoding="utf-8")


def _prose(md: str) -> str:
    md = re.sub(r"`[^`]*`", " ", md)  # code spans
    md = re.sub(r"\]\([^)]*\)", "]", md)  # link targets (figures/x.png)
    return re.sub(r"\b[\w.-]+\.(csv|json|png)\b", " ", md)  # file names


def test_no_raw_variable_names(report):
    results, md = report
    study = study_of(results)
    names = {c.name for cols in contract(study).values() for c in cols}
    names |= set(study.labels) | {study.outcome.column}
    text = _prose(md)
    found = sorted(n for n in names if "_" in n
                   and re.search(rf"(?<![\w.]){re.escape(n)}(?!\w|\.\w)", text))
    assert found == [], f"raw variable names in the report: {found}"


def test_differences_in_percentage_points(report):
    _, md = report
    found = [m.group(0) for m in PROPORTION_DIFFERENCE.finditer(_prose(md))]
    assert found == [], f"differences written as proportions: {found}"
