"""Disclosure control: thresholds, zeros, exceptions, secondary suppression, withheld statistics.

Reference points (named outside sources):

* ACRO, the SACRO output checker used by UK trusted research environments, ``acro/default.yaml``
  (github.com/AI-SDC/ACRO): ``safe_threshold: 10`` and ``zeros_are_disclosive: True`` are the
  defaults natexp copies; ACRO's statuses are ``pass``, ``fail`` and ``review``.
* Hundepool, A. et al. (2012) *Statistical Disclosure Control*, Wiley, ch. 5 (tabular data):
  a single suppressed cell of a table whose margins are published is recovered by
  differencing, so secondary suppressions are needed until no suppressed cell can be
  recovered; whether a cell can be recovered is the question "is its feasible interval,
  given the published cells, the relations and non-negativity, a single point?". The tests
  answer that question independently with ``scipy.optimize.linprog`` (min and max of every
  suppressed cell) run live, and compare.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from natexp.bundle.disclosure import (
    FLOOR,
    SUPPRESSED,
    DisclosureError,
    DisclosureSettings,
    Exceptions,
    _Model,
    _Solver,
    exceptions_path,
    publication_mode,
)


def flow(rows):
    return [{"order": i, "step": s, "arm": a, "label": s, "n": n}
            for i, (s, a, n) in enumerate(rows)]


def uptake_results(x1=4, n1=20, x2=12, n2=30):
    """A results dict with the primary 2x2 and the secondary uptake table (same counts)."""
    def grp(x, n):
        return {"yes": x, "no": n - x, "missing": 0, "n": n, "percent": 100 * x / n,
                "route": {"paramount": x, "school": 0, "other": 0, "missing": 0}}

    return {
        "experiment": "no_such_experiment",
        # the study declares the secondary uptake table (disclosure rules are by its kind)
        "config": {"study": {"name": "demo", "outcome": {"column": "took_up"},
                             "secondary": [{"key": "uptake", "kind": "outcome_routes"}]}},
        "primary_outcome": {
            "counts": {"x1": x1, "n1": n1, "x2": x2, "n2": n2},
            "sentence": f"{x1} of {n1} vs {x2} of {n2}",
            "panel": {"counts": {"x1": x1, "n1": n1, "x2": x2, "n2": n2},
                      "odds_ratio": {"baptista_pike": {"estimate": 1.5, "ci_low": 0.2,
                                                       "ci_high": 9.0}},
                      "test": {"fisher_minlike": {"pvalue": 0.68}}},
        },
        "secondary": {"uptake": {"treatment": grp(x1, n1), "control": grp(x2, n2),
                                 "total": grp(x1 + x2, n1 + n2)}},
    }


def lp_bounds(values, eqs, known, key):
    """Reference: min and max of ``key`` given the known counts, by scipy's linprog."""
    unknown = sorted({k for t, ps in eqs for k in (t, *ps)} - set(known))
    col = {k: i for i, k in enumerate(unknown)}
    a, b = [], []
    for t, ps in eqs:
        row = np.zeros(len(unknown))
        rhs = 0.0
        for k, c in [(t, 1.0)] + [(p, -1.0) for p in ps]:
            if k in col:
                row[col[k]] += c
            else:
                rhs -= c * values[k]
        a.append(row)
        b.append(rhs)
    out = []
    for sign in (1, -1):
        c = np.zeros(len(unknown))
        c[col[key]] = sign
        res = linprog(c, A_eq=np.array(a), b_eq=np.array(b), bounds=[(0, None)] * len(unknown),
                      method="highs")
        out.append(sign * res.fun if res.status == 0 else sign * -np.inf)  # 3: unbounded
    return out


# --------------------------------------------------------------------------- settings


def test_acro_defaults_and_floor():
    # ACRO acro/default.yaml: safe_threshold 10, zeros_are_disclosive True.
    s = DisclosureSettings()
    assert (s.threshold, s.zeros_disclosive) == (10, True)
    assert FLOOR == 3
    DisclosureSettings(threshold=3)
    with pytest.raises(DisclosureError, match="below the floor 3"):
        DisclosureSettings(threshold=2)
    with pytest.raises(DisclosureError):
        DisclosureSettings(threshold=7.5)


def test_exception_file_must_give_a_reason_and_values():
    with pytest.raises(DisclosureError, match="reason"):
        Exceptions.from_text("cells: []\n")
    with pytest.raises(DisclosureError, match="value"):
        Exceptions.from_text("reason: r\ncells:\n  - {path: a.b}\n")
    with pytest.raises(DisclosureError, match="unknown key"):
        Exceptions.from_text("reason: r\ncels: []\n")


# --------------------------------------------------------------------------- primary rules


def test_small_count_fails_without_suppression_and_is_suppressed_with_it():
    res = {"flow": flow([("input", "all", 120), ("outside_window", "all", 100),
                         ("identified", "treatment", 14), ("identified", "control", 6)])}
    strict = publication_mode(res)
    assert strict.status == "fail"
    (out,) = strict.log.outputs
    assert "flow.identified.control" in out.reasons[0]
    assert "6" not in out.reasons[0].split(":")[-1]  # the reason names the cell, not its value
    pub = publication_mode(res, settings=DisclosureSettings(suppress=True))
    shown = [r["n"] for r in pub.results["flow"]]
    # 6 is primary; input = outside + t + c recovers it unless one more cell goes: the smallest
    assert shown == [120, 100, SUPPRESSED, SUPPRESSED]
    assert pub.status == "review"


def test_zero_is_disclosive_unless_structural_or_allowed():
    res = {"flow": flow([("input", "all", 40), ("outside_window", "all", 0),
                         ("identified", "treatment", 20), ("identified", "control", 20)])}
    assert publication_mode(res).status == "fail"
    assert publication_mode(res, settings=DisclosureSettings(zeros_disclosive=False)).status \
        == "pass"
    exc = Exceptions.from_text("reason: r\nstructural_zeros:\n"
                               "  - {path: flow.outside_window.all, reason: no such step}\n")
    pub = publication_mode(res, exceptions=exc)
    assert pub.status == "pass"
    assert pub.log.cells["structural_zeros"] == ["flow.outside_window.all"]


#: A dataset's description as the bundle records it (inputs.json), and an exception file's
#: binding to it (applies_to).
FAM_SHA, CHI_SHA = "a" * 64, "b" * 64
BOUND_INPUTS = {"synthetic": False, "families": {"content_sha256": FAM_SHA},
                "children": {"content_sha256": CHI_SHA}}
APPLIES = f"applies_to:\n  data:\n    - {{families: {FAM_SHA}, children: {CHI_SHA}}}\n"


def test_exception_applies_only_to_the_published_value():
    res = {"flow": flow([("input", "all", 120), ("outside_window", "all", 100),
                         ("identified", "treatment", 14), ("identified", "control", 6)]),
           "inputs": BOUND_INPUTS}
    ok = Exceptions.from_text("reason: published\n" + APPLIES + "cells:\n"
                              "  - {path: flow.identified.control, value: 6}\n")
    pub = publication_mode(res, exceptions=ok)
    assert pub.status == "pass"
    assert pub.log.cells["cleared_by_exception"] == ["flow.identified.control"]
    assert any("recorded exception" in r for r in pub.log.outputs[0].reasons)
    other = Exceptions.from_text("reason: published\n" + APPLIES + "cells:\n"
                                 "  - {path: flow.identified.control, value: 5}\n")
    pub = publication_mode(res, exceptions=other)
    assert pub.status == "fail"
    assert pub.log.cells["exceptions_not_applied"] == ["flow.identified.control"]


def test_exception_applies_only_to_the_data_it_was_recorded_for():
    """Issue 13: exceptions matched by value alone cleared any cell that happened to equal a
    published count, so a bundle from different data published its zeros and small counts.
    An exception now applies only to inputs whose content checksums it records."""
    counts = [("input", "all", 120), ("outside_window", "all", 100),
              ("identified", "treatment", 20), ("identified", "control", 0)]
    exc = Exceptions.from_text("reason: published\n" + APPLIES + "cells:\n"
                               "  - {path: flow.identified.control, value: 0}\n")
    same = publication_mode({"flow": flow(counts), "inputs": BOUND_INPUTS}, exceptions=exc)
    assert same.status == "pass" and same.log.exceptions["applied"] is True
    other_inputs = {**BOUND_INPUTS, "children": {"content_sha256": "c" * 64}}
    for inputs in (other_inputs, None, {"synthetic": True, "generator": {"n_families": None}}):
        res = {"flow": flow(counts)} | ({"inputs": inputs} if inputs else {})
        pub = publication_mode(res, exceptions=exc)
        assert pub.status == "fail", inputs  # the zero is not cleared
        assert pub.log.cells["cleared_by_exception"] == []
        assert pub.log.cells["exceptions_not_applied"] == ["flow.identified.control"]
        assert pub.log.exceptions["applied"] is False
        assert "IGNORED" in pub.log.exceptions["binding"]
        assert "IGNORED" in pub.log.to_markdown()
        sup = publication_mode(res, settings=DisclosureSettings(suppress=True), exceptions=exc)
        assert sup.results["flow"][3]["n"] == SUPPRESSED  # never the published-looking 0
    # an unbound exception file (no applies_to) applies to nothing
    loose = Exceptions.from_text("reason: published\ncells:\n"
                                 "  - {path: flow.identified.control, value: 0}\n")
    pub = publication_mode({"flow": flow(counts), "inputs": BOUND_INPUTS}, exceptions=loose)
    assert pub.status == "fail" and "name no dataset" in pub.log.exceptions["binding"]
    with pytest.raises(DisclosureError, match="applies_to"):
        Exceptions.from_text("reason: r\napplies_to:\n  data:\n    - {families: x}\n")


def test_count_recoverable_from_published_counts_is_public():
    # uptake total yes (4 + 2 = 6) is below 10 but both parts are published: it adds nothing
    res = uptake_results(x1=4, n1=20, x2=2, n2=15)
    cells = "\n".join(f"  - {{path: secondary.uptake.{g}.{k}, value: {v}}}" for g, k, v in [
        ("treatment", "yes", 4), ("control", "yes", 2), ("treatment", "no", 16),
        ("control", "no", 13)])
    exc = Exceptions.from_text(f"reason: published\n{APPLIES}cells:\n{cells}\n")
    pub = publication_mode({**res, "inputs": BOUND_INPUTS}, exceptions=exc)
    assert "secondary.uptake.total.yes" in pub.log.cells["recoverable_from_published"]
    assert pub.results["secondary"]["uptake"]["total"]["yes"] == 6


# --------------------------------------------------------------------------- secondary rules


def test_same_count_in_two_places_and_statistics_of_a_suppressed_2x2_are_withheld():
    res = uptake_results(x1=4, n1=20, x2=12, n2=30)
    tables = {"uptake": pl.DataFrame({"method": ["odds_ratio.baptista_pike"],
                                      "label": ["OR"], "estimate": [1.5], "pvalue": [0.68]})}
    pub = publication_mode(res, tables, settings=DisclosureSettings(suppress=True))
    prim = pub.results["primary_outcome"]
    # x1 = 4 is shown under primary_outcome.counts, panel.counts and the secondary table
    assert prim["counts"]["x1"] == SUPPRESSED
    assert prim["panel"]["counts"]["x1"] == SUPPRESSED
    assert pub.results["secondary"]["uptake"]["treatment"]["yes"] == SUPPRESSED
    # every statistic of the suppressed 2x2 is withheld, in results.json and in the CSV
    assert prim["panel"]["odds_ratio"]["baptista_pike"]["estimate"] == SUPPRESSED
    assert prim["panel"]["test"]["fisher_minlike"]["pvalue"] == SUPPRESSED
    assert prim["sentence"] == SUPPRESSED
    assert pub.tables["uptake"]["estimate"].to_list() == [SUPPRESSED]
    assert pub.tables["uptake"]["pvalue"].to_list() == [SUPPRESSED]
    # the percentage with a suppressed numerator is withheld
    assert pub.results["secondary"]["uptake"]["treatment"]["percent"] == SUPPRESSED


def test_marker_none_keeps_column_types_for_figure_code():
    res = uptake_results(x1=4, n1=20, x2=12, n2=30)
    tables = {"uptake": pl.DataFrame({"method": ["or"], "label": ["OR"], "estimate": [1.5]})}
    pub = publication_mode(res, tables, settings=DisclosureSettings(suppress=True), marker=None)
    assert pub.tables["uptake"].schema["estimate"] == pl.Float64
    assert pub.tables["uptake"]["estimate"].to_list() == [None]
    assert pub.results["primary_outcome"]["counts"]["x1"] is None


def test_no_suppressed_cell_can_be_recovered_by_differencing():
    # a 2 x 3 table with row and column totals, as flow + secondary tables are tied together
    res = uptake_results(x1=4, n1=20, x2=12, n2=30)
    pub = publication_mode(res, settings=DisclosureSettings(suppress=True))
    up = pub.results["secondary"]["uptake"]
    values = {f"{g}.{k}": uptake_results(4, 20, 12, 30)["secondary"]["uptake"][g][k]
              for g in ("treatment", "control", "total") for k in ("yes", "no", "n")}
    eqs = [(f"{g}.n", (f"{g}.yes", f"{g}.no")) for g in ("treatment", "control", "total")]
    eqs += [(f"total.{k}", (f"treatment.{k}", f"control.{k}")) for k in ("yes", "no", "n")]
    known = {k for k in values if up[k.split(".")[0]][k.split(".")[1]] != SUPPRESSED}
    hidden = set(values) - known
    assert "treatment.yes" in hidden and len(hidden) >= 4  # Hundepool et al.: >= 4 cells
    for key in hidden:
        lo, hi = lp_bounds(values, eqs, known, key)
        assert hi - lo >= 1, key  # scipy linprog reference: not pinned down


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_solver_agrees_with_linprog_on_random_tables(seed):
    """natexp's exactness test (one LP + null space) vs per-cell min/max by scipy linprog."""
    rng = np.random.default_rng(seed)
    r, c = 3, 4
    cells = rng.integers(0, 6, size=(r, c))
    m = _Model()
    for i, j in itertools.product(range(r), range(c)):
        m.values[f"c{i}{j}"] = int(cells[i, j])
    for i in range(r):
        m.values[f"r{i}"] = int(cells[i].sum())
        m.eqs.append((f"r{i}", tuple(f"c{i}{j}" for j in range(c))))
    for j in range(c):
        m.values[f"k{j}"] = int(cells[:, j].sum())
        m.eqs.append((f"k{j}", tuple(f"c{i}{j}" for i in range(r))))
    m.values["t"] = int(cells.sum())
    m.eqs.append(("t", tuple(f"r{i}" for i in range(r))))
    keys = sorted(m.values)
    hidden = set(rng.choice(keys, size=6, replace=False).tolist())
    known = set(keys) - hidden
    got = _Solver(m).pinned(hidden, known)
    want = set()
    for key in hidden:
        lo, hi = lp_bounds(m.values, m.eqs, known, key)
        if hi - lo < 0.5:
            want.add(key)
    assert got == want


# --------------------------------------------------------------------------- unknown content


def test_unrecognised_table_and_files():
    res = {"flow": flow([("input", "all", 40), ("outside_window", "all", 20),
                         ("identified", "treatment", 10), ("identified", "control", 10)])}
    small = {"per_area": pl.DataFrame({"area": ["A", "B"], "n": [3, 37]})}
    big = {"per_area": pl.DataFrame({"area": ["A", "B"], "n": [13, 27]})}
    # strict: an unknown table with small whole numbers cannot be protected -> fail
    assert publication_mode(res, small).status == "fail"
    # suppression on: it is withheld instead
    pub = publication_mode(res, small, settings=DisclosureSettings(suppress=True))
    assert "per_area" not in pub.tables and pub.status == "review"
    # nothing small anywhere: kept, for an output checker to review; a figure likewise
    pub = publication_mode(res, big, files=["fig.png"])
    assert "per_area" in pub.tables and pub.status == "review"
    assert pub.withheld_files == ()
    # a figure built from a run in which counts were suppressed is withheld
    res2 = {"flow": flow([("input", "all", 40), ("outside_window", "all", 24),
                          ("identified", "treatment", 10), ("identified", "control", 6)])}
    pub = publication_mode(res2, files=["fig.png"], settings=DisclosureSettings(suppress=True))
    assert pub.withheld_files == ("fig.png",)


def test_unrecognised_results_section_is_withheld_when_cells_were_suppressed():
    res = {"flow": flow([("input", "all", 40), ("outside_window", "all", 24),
                         ("identified", "treatment", 10), ("identified", "control", 6)]),
           "new_analysis": {"n": 4, "estimate": 0.3}}
    pub = publication_mode(res, settings=DisclosureSettings(suppress=True))
    assert isinstance(pub.results["new_analysis"], str)
    assert "withheld" in pub.results["new_analysis"]
    ok = {"flow": flow([("input", "all", 40), ("outside_window", "all", 20),
                        ("identified", "treatment", 10), ("identified", "control", 10)]),
          "new_analysis": {"n": 40}}
    pub = publication_mode(ok)
    assert pub.results["new_analysis"] == {"n": 40} and pub.status == "review"


# --------------------------------------------------------------------------- the real study


@pytest.fixture(scope="module")
def oxon_run():
    from natexp.config import compose
    from natexp.pipeline import run

    ovr = ["+experiment=oxon_vs_rest"]
    if "sensitivity" in compose(ovr):
        ovr.append("sensitivity.enabled=false")
    return run(compose(ovr), write=False)


def test_exception_file_lists_exactly_what_the_report_published():
    """Every exempt cell is a count item of published.yaml with the same path and value."""
    from natexp.experiments import load_published

    exc = Exceptions.load(exceptions_path("oxon_vs_rest"))
    assert exc.reason and exc.suppress_other_cells
    items = {it["id"]: it for it in load_published("oxon_vs_rest")}
    for cell in exc.cells:
        item = items[cell.published]
        assert item["unit"] == "count"
        assert item["value"] == cell.value
        if cell.path not in ("flow.interviewed.treatment", "flow.interviewed.control"):
            assert item["recompute"] == cell.path
        else:  # the flow's per-arm interviewed step is Figure 11's "Completed interview"
            assert item["recompute"] == "secondary.interview." + cell.path.split(".")[-1] \
                + ".completed"


def test_oxon_vs_rest_fails_without_exception_and_clears_with_it(oxon_run):
    res, tables = oxon_run.results, oxon_run.tables
    strict = publication_mode(res, tables)
    assert strict.status == "fail"
    failing = {o.output for o in strict.log.failures()}
    # the report's own numbers (4/20, 2/15, 8/32 ...) are below 10
    assert {"uptake.csv", "appendix_b.csv", "secondary_uptake.csv"} <= failing
    pub = publication_mode(res, tables, exceptions=Exceptions.load(
        exceptions_path("oxon_vs_rest")))
    assert pub.status == "review"
    status = {o.output: o.status for o in pub.log.outputs}
    assert status["appendix_b.csv"] == status["flow.csv"] == status["uptake.csv"] == "pass"
    # the published counts are shown; the unpublished per-arm contact cells are suppressed
    c = pub.results["primary_outcome"]["counts"]
    assert (c["x1"], c["n1"], c["x2"], c["n2"]) == (4, 20, 2, 15)
    assert pub.results["appendix_b"]["sgo"]["female"]["yes"] == 6
    assert pub.results["secondary"]["contact"]["treatment"]["contact_negative"] == SUPPRESSED
    text = json.dumps(pub.log.to_dict())
    assert "Bekaert" in text  # the log shows the exception and its reason
    assert "embedded published-margin synthetic data" in pub.log.exceptions["binding"]


def test_oxon_vs_rest_exceptions_do_not_clear_another_extract(oxon_run):
    """The same counts from an extract the exceptions were not recorded for: nothing is
    cleared by exception, and the published zeros (re-referrals in the control arm) and small
    counts are suppressed, not shown."""
    res = {**oxon_run.results, "inputs": {"synthetic": False,
                                          "families": {"content_sha256": "1" * 64},
                                          "children": {"content_sha256": "2" * 64}}}
    exc = Exceptions.load(exceptions_path("oxon_vs_rest"))
    pub = publication_mode(res, oxon_run.tables, exceptions=exc)
    assert pub.log.exceptions["applied"] is False
    assert pub.log.cells["cleared_by_exception"] == []
    ref = pub.results["secondary"]["referral_response"]
    assert ref["control"]["re_referral"] == SUPPRESSED
    assert pub.results["primary_outcome"]["counts"]["x1"] == SUPPRESSED


def test_oxon_vs_rest_exceptions_name_the_published_margin_data_by_checksum():
    """The checksums under applies_to.data are those of the embedded published-margin dataset
    (so a copy of it read from files is covered, and nothing else)."""
    from natexp.bundle.manifest import content_sha256
    from natexp.data.rollout import load_rollout
    from natexp.data.synthetic import generate
    from natexp.data.validate import validate_frames
    from tests.conftest import EXAMPLE_STUDY

    fam, chi = generate()
    inputs = validate_frames(fam, chi, load_rollout()["area"], study=EXAMPLE_STUDY)
    sums = (content_sha256(inputs.families.collect(), "family_id"),
            content_sha256(inputs.children.collect(), "child_id"))
    exc = Exceptions.load(exceptions_path("oxon_vs_rest"))
    assert exc.embedded_synthetic and exc.data == (sums,)
