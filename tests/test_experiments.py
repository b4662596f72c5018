"""published.yaml and the replication table.

The published numbers are typed from Bekaert, Olphin, Massie & Norris (2025), *What Works
Series: Operation Paramount*, Thames Valley Violence Prevention Partnership ("the report"). The
results dict the replication table reads is built here from the embedded synthetic data (whose
margins equal the report's tables), with scipy as the reference for the Appendix B tests:
``scipy.stats.chi2_contingency(correction=False)`` (the report's chi-squared values are
uncorrected) and ``scipy.stats.fisher_exact``. The full pipeline takes ~30 s, too slow here.
"""

from __future__ import annotations

import math
import textwrap

import polars as pl
import pytest
from scipy.stats import chi2_contingency, fisher_exact

from natexp.experiments import (
    PublishedSpecError,
    evaluate,
    load_published,
    replication_table,
    reproduces,
    resolve,
)


@pytest.fixture(scope="module")
def published():
    return load_published("oxon_vs_rest")


@pytest.fixture(scope="module")
def results():
    """A results dict shaped like natexp.pipeline.run's, from the synthetic default data."""
    from natexp.data.cohort import Design, build_cohort
    from natexp.data.rollout import load_rollout
    from natexp.data.synthetic import generate
    from natexp.data.tables import descriptive_counts, secondary_outcomes
    from tests.conftest import EXAMPLE_STUDY

    fam, chi = generate()
    cohort = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)),
                          followup=EXAMPLE_STUDY.followup_stages)
    counts = descriptive_counts(fam, chi, EXAMPLE_STUDY.descriptive)
    app_b = {}
    for q in ("carer_parent", "cwcf", "sgo"):
        part = {r["parent_sex"]: r for r in counts.filter(pl.col("question") == q)
                .iter_rows(named=True)}
        f, m = part["F"], part["M"]
        table = [[f["yes"], f["no"]], [m["yes"], m["no"]]]
        chi2 = chi2_contingency(table, correction=False)
        app_b[q] = {
            "female": {"yes": f["yes"], "no": f["no"], "n": f["n"]},
            "male": {"yes": m["yes"], "no": m["no"], "n": m["n"]},
            "pearson_chi2": float(chi2.statistic),
            "pearson_pvalue": float(chi2.pvalue),
            "fisher_pvalue": float(fisher_exact(table).pvalue),
        }
    return {"flow": cohort.flow().to_dicts(), "appendix_b": app_b,
            "secondary": secondary_outcomes(cohort, EXAMPLE_STUDY)[0]}


# ----------------------------------------------------------------------------- published.yaml


def test_published_yaml_is_complete(published):
    ids = [i["id"] for i in published]
    assert len(ids) == len(set(ids))
    for item in published:
        assert item["where"] and item["quote"] and item["what"]
    values = {i["id"]: i["value"] for i in published}
    # The numbers the analysis plan requires (report: Methodology, Appendix B, Figures 8-11,
    # Findings text).
    required = {
        "flow_identified_total": 85, "flow_reached_total": 35, "flow_reached_treatment": 20,
        "flow_reached_control": 15, "flow_agreed_interview_total": 24,
        "flow_interviewed_total": 11, "flow_not_answered_total": 50,
        "appendix_b_carer_male_yes": 536, "appendix_b_carer_male_no": 71,
        "appendix_b_lac_female_yes": 5, "appendix_b_sgo_male_no": 600,
        "appendix_b_carer_chi2": 96.2426, "appendix_b_lac_chi2": 12.2932,
        "appendix_b_sgo_chi2": 47.2268, "appendix_b_carer_percent_change": 114,
        "appendix_b_lac_percent_change": 374, "appendix_b_sgo_percent_change": 1426,
        "female_parent_children_percent": 5.01, "female_parent_children_denominator": 607,
        "male_parent_percent": 95, "contact_no_contact_positive_percent": 68.6,
        "contact_not_wanted": 26, "contact_court_order": 5,
        "uptake_treatment_percent": 20, "uptake_control_percent": 13,
        "referral_accepted_percent": 49, "referral_re_referral_percent": 6,
        "referral_declined_percent": 34, "referral_already_supported_percent": 9,
        "referral_not_applicable_percent": 3, "reasons_child_percent": 47.37,
        "reasons_self_percent": 31.58, "reasons_legal_percent": 21.05,
        "interview_not_agreed_total": 11, "key_findings_two_thirds_supported": 0.6667,
        "referral_declined_third": 0.3333,
    }
    for key, value in required.items():
        assert values[key] == value, key


def test_malformed_published_yaml_is_refused(tmp_path):
    bad = tmp_path / "published.yaml"
    bad.write_text(textwrap.dedent("""
        items:
          - {id: Bad-Id, value: 1, unit: count, what: x, where: y, recompute: a, expected: reproduces}
    """))
    with pytest.raises(PublishedSpecError, match="snake_case"):
        load_published(path=bad)
    bad.write_text("items:\n  - {id: a, value: 1, unit: count, what: x, where: y, "
                   "recompute: {median: [a]}, expected: reproduces}\n")
    with pytest.raises(PublishedSpecError, match="recompute"):
        load_published(path=bad)
    bad.write_text("items:\n  - {id: a, value: 1, unit: count, what: x, where: y, "
                   "recompute: a, expected: reproduces}\n  - {id: a, value: 2, unit: count, "
                   "what: x, where: y, recompute: a, expected: reproduces}\n")
    with pytest.raises(PublishedSpecError, match="duplicate"):
        load_published(path=bad)


# ----------------------------------------------------------------------------- resolver, rounding


def test_resolve_and_evaluate_on_a_hand_made_dict():
    res = {"flow": [{"step": "identified", "arm": "treatment", "n": 46},
                    {"step": "identified", "arm": "control", "n": 39},
                    {"step": "input", "arm": "all", "n": 330}],
           "a": {"x": 8, "n": 32, "y": 71, "m": 607, "list": [1, 2]}}
    assert resolve(res, "flow.identified.total") == 85
    assert resolve(res, "flow.identified.control") == 39
    assert resolve(res, "flow.input.all") == 330
    assert resolve(res, "a.list.1") == 2
    with pytest.raises(KeyError):
        resolve(res, "a.nothing")
    with pytest.raises(KeyError):
        resolve(res, "flow.identified.nobody")
    assert evaluate(res, {"sum": ["a.x", "a.n", 1]}) == 41
    assert evaluate(res, {"ratio": ["a.x", "a.n"]}) == 0.25
    assert evaluate(res, {"percent": ["a.x", {"path": "a.n"}]}) == 25.0
    # (8/32) / (71/607) - 1, by hand: 0.25 / 0.116969 - 1 = 1.13732
    assert evaluate(res, {"percent_change": [["a.x", "a.n"], ["a.y", "a.m"]]}) == (
        pytest.approx(113.732, abs=1e-3))
    assert math.isnan(evaluate({"z": 0, "n": 5}, {"ratio": ["n", "z"]}))


def test_rounding_is_half_up_at_the_published_precision():
    assert reproduces({"value": 49}, 48.57)        # Figure 9: 17/35 printed as 49%
    assert reproduces({"value": 3}, 2.5)           # half up, not to even
    assert not reproduces({"value": 2}, 2.5)
    assert reproduces({"value": 47.37, "decimals": 2}, 100 * 9 / 19)
    assert not reproduces({"value": 5.01, "decimals": 2}, 100 * 32 / 607)
    assert reproduces({"value": 0.6667, "tolerance": 0.05}, 23 / 35)
    assert reproduces({"value": 0.001, "comparison": "less_than"}, 0.00045)
    assert not reproduces({"value": 0.001, "comparison": "less_than"}, 0.0059)


# ----------------------------------------------------------------------------- replication table


def test_replication_table_on_synthetic_data(published, results):
    t = replication_table(published, results)
    assert t.columns == ["id", "where", "published", "recomputed", "status", "difference",
                         "explanation"]
    assert t.height == len(published)
    expected = {i["id"]: i["expected"] for i in published}
    assert dict(zip(t["id"], t["status"], strict=True)) == expected
    differs = set(t.filter(pl.col("status") == "differs")["id"])
    assert differs == {"appendix_b_carer_percent_change", "appendix_b_sgo_percent_change",
                       "female_parent_children_denominator", "appendix_b_lac_pvalue_exact"}


def test_replication_values_where_the_report_is_wrong(published, results):
    t = replication_table(published, results)
    row = {r["id"]: r for r in t.iter_rows(named=True)}
    # SGO: (6/32) / (7/607) - 1 from the Appendix B counts; published 1426%.
    assert row["appendix_b_sgo_percent_change"]["recomputed"] == pytest.approx(
        100 * ((6 / 32) / (7 / 607) - 1))
    assert row["appendix_b_sgo_percent_change"]["difference"] == pytest.approx(99.89, abs=0.01)
    assert "transcription" in row["appendix_b_sgo_percent_change"]["explanation"]
    # Carer: same-row change (8/32) / (536/607) - 1 = -71.7%; the crossed-row calculation
    # (8/32) / (71/607) - 1 = 113.7% rounds to the published 114%.
    carer = row["appendix_b_carer_percent_change"]
    assert carer["recomputed"] == pytest.approx(100 * ((8 / 32) / (536 / 607) - 1))
    assert "113.7" in carer["explanation"] and "which matches" in carer["explanation"]
    # "5.01% (32 out of 607)": the percentage is 32/639, the printed denominator is wrong.
    assert row["female_parent_children_percent"]["status"] == "reproduces"
    assert row["female_parent_children_denominator"]["recomputed"] == 639
    # LAC "p < 0.001": true for the uncorrected Pearson p, not for Fisher's exact p (scipy).
    assert row["appendix_b_lac_pvalue"]["status"] == "reproduces"
    assert row["appendix_b_lac_pvalue_exact"]["recomputed"] == pytest.approx(
        fisher_exact([[5, 27], [20, 587]]).pvalue)
    # Appendix B chi-squared values at 4 decimals (scipy chi2_contingency, no correction).
    for key in ("appendix_b_carer_chi2", "appendix_b_lac_chi2", "appendix_b_sgo_chi2"):
        assert row[key]["status"] == "reproduces"
    assert row["appendix_b_lac_percent_change"]["status"] == "reproduces"


def test_replication_says_when_data_do_not_match_the_report(published, results):
    import copy

    changed = copy.deepcopy(results)
    changed["appendix_b"]["carer_parent"]["female"]["n"] = 0  # total children becomes 607
    changed["secondary"]["reasons"]["child"]["yes"] = 8
    del changed["secondary"]["interview"]
    t = replication_table(published, changed)
    row = {r["id"]: r for r in t.iter_rows(named=True)}
    assert row["female_parent_children_denominator"]["status"] == "reproduces"
    assert row["female_parent_children_denominator"]["explanation"].startswith(
        "Reproduces although")
    assert row["reasons_child_yes"]["status"] == "differs"
    assert "not the study's data" in row["reasons_child_yes"]["explanation"]
    assert row["interview_agreed_total"]["status"] == "not_recomputed"
    assert row["interview_agreed_total"]["recomputed"] is None
    assert "interview" in row["interview_agreed_total"]["explanation"]


def test_misreading_is_flagged_even_where_the_number_reproduces(published, results):
    # the report's "Likelihood of finding by chance" column reads a p-value as the chance the
    # finding is due to chance (a p-value is P(data at least this extreme | no difference))
    t = replication_table(published, results)
    row = t.filter(pl.col("id") == "appendix_b_likelihood_by_chance").row(0, named=True)
    assert row["status"] == "reproduces"
    assert row["explanation"].startswith("MISREADING:")
    assert "not the likelihood that the finding is due to chance" in row["explanation"]
    bad = [{"id": "x", "value": 1, "unit": "count", "what": "x", "where": "x",
            "expected": "reproduces", "recompute": 1, "misreading": 3}]
    with pytest.raises(PublishedSpecError, match="misreading"):
        replication_table(bad, {})


def test_load_published_reads_what_yaml_safe_load_reads(monkeypatch):
    """load_published parses with libyaml's CSafeLoader when PyYAML has it: every shipped
    published.yaml gives the same items as with PyYAML's pure-Python safe_load, which is also
    what it falls back to without libyaml (also the second study's, whose list is empty)."""
    from pathlib import Path

    import yaml

    from natexp.experiments import _check_item

    files = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*/published.yaml"))
    assert {f.parent.name for f in files} >= {"oxon_vs_rest", "lantern"}
    for file in files:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        items = doc.get("items") if isinstance(doc, dict) else doc
        expected = [_check_item(item, k) for k, item in enumerate(items)]
        assert load_published(path=file) == expected, file
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
        assert load_published(path=file) == expected, file
        monkeypatch.undo()
