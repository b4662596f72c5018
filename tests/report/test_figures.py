"""Figures: the data behind each figure, that every figure draws, and byte-identical PNGs.

Figures compute no statistics, so the reference values here are the report's own printed counts
and percentages: Bekaert, Olphin, Massie & Norris (2025), *What Works Series: Operation
Paramount*, Thames Valley Violence Prevention Partnership ("the report"), Figures 8-11 and
Appendix B. The hand-made frames below have the shapes the pipeline's tables have.
"""

from __future__ import annotations

import struct
import zlib

import polars as pl
import pytest

from natexp.causal.result import InvalidInputError
from natexp.report import figures as F

# --------------------------------------------------------------------------------------------
# hand-made inputs with the report's published counts

#: Appendix B of the report ("Chi-Squared Tests" table): Yes/No by sex of the imprisoned parent.
APPENDIX_B = pl.DataFrame({
    "table": ["carer_parent", "cwcf", "sgo"],
    "question": ["carer?", "LAC?", "SGO?"],
    "female_yes": [8, 5, 6], "female_no": [24, 27, 26],
    "male_yes": [536, 20, 7], "male_no": [71, 587, 600],
})
#: Report Figure 8 table: uptake Yes 4 / 2, No 16 / 13 (treatment / control).
UPTAKE = pl.DataFrame({"group": ["treatment", "control", "total"], "yes": [4, 2, 6],
                       "no": [16, 13, 29], "missing": [0, 0, 0], "n": [20, 15, 35],
                       "percent": [20.0, 100 * 2 / 15, 100 * 6 / 35]})
#: Report Figure 9 table.
REFERRAL = pl.DataFrame({
    "response": ["accepted", "re_referral", "declined", "already_supported", "not_applicable",
                 "missing"],
    "label": ["Yes", "Yes, as re-referral having accepted CHaS support before", "No",
              "Already accepted CHaS Support",
              "Not Applicable (child now over 18, but had support previously)", "Not recorded"],
    "treatment": [11, 2, 5, 1, 1, 0], "control": [6, 0, 7, 2, 0, 0],
    "total": [17, 2, 12, 3, 1, 0], "percent": [48.57, 5.71, 34.29, 8.57, 2.86, 0.0],
})
#: Report Figure 10 table (Yes / No / "Percentage Yes").
REASONS = pl.DataFrame({"reason": ["child", "self", "legal"],
                        "label": ["Support for Child", "Support for Self", "Legal"],
                        "yes": [9, 6, 4], "no": [10, 13, 15], "missing": [0, 0, 0],
                        "n": [19, 19, 19],
                        "percent_yes": [100 * 9 / 19, 100 * 6 / 19, 100 * 4 / 19]})
#: Report Figure 11 table.
INTERVIEW = pl.DataFrame({
    "measure": ["reached", "agreed", "not_agreed", "consent_missing", "completed"],
    "label": ["Reached", "Agreed to be contacted for interview",
              "Did not agree to be contacted for interview", "Consent not recorded",
              "Completed interview"],
    "treatment": [20, 14, 6, 0, 6], "control": [15, 10, 5, 0, 5], "total": [35, 24, 11, 0, 11],
})
#: Report Figure 6 text: 24 of 35 had no contact and saw that as positive; the arms' split is
#: not published (the split below is hand-made).
CONTACT = pl.DataFrame({
    "group": ["treatment"] * 4 + ["control"] * 4 + ["total"] * 4,
    "measure": ["contact_view"] * 12,
    "value": ["contact_positive", "contact_negative", "no_contact_positive",
              "no_contact_negative"] * 3,
    "n": [3, 1, 13, 3, 2, 1, 11, 1, 5, 2, 24, 4],
})
#: Report "Methodology": 85 identified, 35 reached (20 / 15), 24 agreed, 11 interviewed; the
#: exclusion counts and the 46 / 39 split are hand-made.
FLOW = pl.DataFrame({
    "order": [0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8],
    "step": ["input", "outside_window", "released_before_followup", "identified", "identified",
             "not_called", "not_called", "not_reached", "not_reached", "reached", "reached",
             "agreed_interview", "agreed_interview", "interviewed", "interviewed"],
    "arm": ["all", "all", "all"] + ["treatment", "control"] * 6,
    "label": ["Families in the input", "Outside the window", "Released", "Identified",
              "Identified", "Not called", "Not called", "Not reached", "Not reached",
              "Reached", "Reached", "Agreed", "Agreed", "Interviewed", "Interviewed"],
    "n": [200, 80, 35, 46, 39, 0, 0, 26, 24, 20, 15, 14, 10, 6, 5],
})
EFFECTS = pl.DataFrame({
    "method": ["risk_difference.wald", "risk_difference.newcombe", "risk_ratio.katz",
               "test.pearson"],
    "label": ["Wald", "Newcombe", "Katz", "Pearson"],
    "estimate": [0.0667, 0.0667, 1.5, float("nan")],
    "ci_low": [-0.179, -0.206, 0.32, float("nan")],
    "ci_high": [0.312, 0.303, 7.1, float("nan")],
    "confidence_level": [0.95, 0.95, 0.95, None],
})


def _grid() -> pl.DataFrame:
    rows = [{"k1": k1, "k2": k2, "rd": (4 + k1) / 46 - (2 + k2) / 39,
             "sig_boschloo": abs((4 + k1) / 46 - (2 + k2) / 39) > 0.3,
             "sig_fisher": abs((4 + k1) / 46 - (2 + k2) / 39) > 0.32}
            for k1 in range(5) for k2 in range(4)]
    return pl.DataFrame(rows)


SPECS = pl.DataFrame({"estimate": [0.07, 0.12, -0.02], "ci_low": [-0.23, 0.01, -0.3],
                      "ci_high": [0.32, 0.27, 0.25], "window": ["2022-24", "2021-25", "2022-24"],
                      "among": ["reached", "identified", "identified"]})
EVENT = pl.DataFrame({"level": ["overall", "event_time", "event_time", "event_time"],
                      "value": [None, -2, -1, 0], "estimate": [0.1, 0.01, -0.02, 0.12],
                      "ci_low": [0.05, -0.1, -0.12, 0.02], "ci_high": [0.15, 0.11, 0.08, 0.22],
                      "se": [0.02] * 4})
RANDOM = pl.DataFrame({"assignment": [0, 1, 2, 3, 4], "observed": [True] + [False] * 4,
                       "rd": [0.12, -0.15, 0.05, float("nan"), 0.12]})
LOO = pl.DataFrame({"dropped_area": [None, "Oxford", "West Berkshire"],
                    "dropped_treatment": [0, 4, 0], "dropped_control": [0, 0, 0],
                    "rd": [0.067, 0.114, 0.067], "exact_low": [-0.24, -0.19, -0.24],
                    "exact_high": [0.32, 0.41, 0.32]})
PLACEBO = pl.DataFrame({"shift": [-1, 0, 1], "rd": [0.15, 0.12, 0.13],
                        "significant": [True, False, None], "observed": [False, True, False]})


# --------------------------------------------------------------------------------------------
# data behind the report's figures, against the report's printed numbers


GROUPS = {"female": "Female parent imprisoned", "male": "Male parent imprisoned"}


def test_appendix_b_percentages_match_the_report():
    carer = F.fig_descriptive_data(APPENDIX_B, {"carer_parent": "Carer"}, GROUPS)
    assert carer["parent"].cast(pl.String).to_list() == ["Female parent imprisoned",
                                                         "Male parent imprisoned"]
    assert carer["yes"].to_list() == [8, 536] and carer["n"].to_list() == [32, 607]
    orders = F.fig_descriptive_data(APPENDIX_B, {"cwcf": "CWCF", "sgo": "SGO"}, GROUPS)
    assert orders["yes"].to_list() == [5, 20, 6, 7]
    # the report's "5.01%" of children with an imprisoned mother is 32 / (32 + 607): the two
    # bars' denominators (the report's "32 out of 607" names the wrong denominator)
    assert round(100 * 32 / carer["n"].sum(), 2) == 5.01
    assert carer["label"][0] == "25%\n(8 of 32)"


def test_uptake_matches_report_figure_8():
    d = F.fig_uptake_data(UPTAKE)
    yes = d.filter(pl.col("answer") == "Yes")
    assert yes["n"].to_list() == [4, 2]
    assert d.filter(pl.col("answer") == "No")["n"].to_list() == [16, 13]
    # Figure 8: "Percentage with CHaS Support 20% 13%"
    labels = yes["arm_label"].cast(pl.String).to_list()
    assert "(20%)" in labels[0] and "(13%)" in labels[1]


def test_referral_response_matches_report_figure_9():
    d = F.fig_referral_response_data(REFERRAL)
    assert d.height == 10  # the empty "missing" row is dropped
    tr = d.filter(pl.col("arm") == "Treatment")["n"].to_list()
    co = d.filter(pl.col("arm") == "Control")["n"].to_list()
    assert tr == [11, 2, 5, 1, 1] and co == [6, 0, 7, 2, 0]
    assert d["total"].unique(maintain_order=True).to_list() == [17, 2, 12, 3, 1]


def test_reasons_match_report_figure_10():
    d = F.fig_reasons_data(REASONS)
    cats = d["category"].cast(pl.String).unique(maintain_order=True).to_list()
    # Figure 10: "47.37%", "31.58%", "21.05%" (rounded to whole percent on the axis)
    assert cats == ["Support for Child\n9 of 19 (47%)", "Support for Self\n6 of 19 (32%)",
                    "Legal\n4 of 19 (21%)"]


def test_interview_matches_report_figure_11():
    d = F.fig_interview_data(INTERVIEW)
    assert d["measure"].unique(maintain_order=True).to_list() == ["agreed", "not_agreed",
                                                                 "completed"]
    assert d["n"].to_list() == [14, 10, 6, 5, 6, 5]


def test_contact_total_matches_report_figure_6():
    d = F.fig_contact_data(CONTACT)
    row = d.filter(pl.col("cell") == "no_contact_positive")
    assert row["total"].unique().to_list() == [24] and row["of"][0] == 35


def test_child_ages_sorted_and_counted():
    d = F.fig_child_ages_data(pl.DataFrame({"age": [3, 0, 17], "n": [5, 2, 1]}))
    assert d.rows() == [(0, 2), (3, 5), (17, 1)]


# --------------------------------------------------------------------------------------------
# data behind the design figures


def test_flow_boxes_carry_the_counts():
    d = F.fig_flow_data(FLOW)
    boxes = d.filter(pl.col("kind") == "box")["text"].to_list()
    assert boxes[0].endswith("n = 200")
    assert sum(t.endswith("n = 20") or t.endswith("n = 15") for t in boxes) == 2
    excl = d.filter(pl.col("kind") == "exclusion")["text"][0]
    assert excl.startswith("Excluded: n = 115")
    losses = d.filter(pl.col("kind") == "loss")["text"].to_list()
    assert losses == ["Not reached: 26", "Not reached: 24"]  # zero "not called" omitted


def test_flow_stops_where_nobody_got_further():
    none_reached = FLOW.with_columns(
        pl.when(pl.col("step").is_in(["reached", "agreed_interview", "interviewed",
                                      "not_reached"])).then(0)
        .when(pl.col("step") == "not_called").then(pl.col("n") + 99).otherwise(pl.col("n"))
        .alias("n"))
    d = F.fig_flow_data(none_reached)
    texts = d.filter(pl.col("kind") == "box")["text"].to_list()
    assert not any("Reached" in t or "Interviewed" in t for t in texts)


def test_forest_keeps_the_risk_difference_in_points():
    d = F.fig_forest_data(EFFECTS)
    assert d["method"].to_list() == ["risk_difference.wald", "risk_difference.newcombe"]
    assert d["text"].to_list() == ["6.7 (-17.9 to 31.2)", "6.7 (-20.6 to 30.3)"]


def test_tipping_point_prefers_boschloo_then_fisher():
    g = _grid()
    d = F.fig_tipping_point_data(g)
    assert d["test"][0] == "Boschloo"
    assert d["significant"].to_list() == g["sig_boschloo"].to_list()
    no_bos = g.with_columns(pl.lit(None, dtype=pl.Boolean).alias("sig_boschloo"))
    d2 = F.fig_tipping_point_data(no_bos.to_dict(as_series=False))
    assert d2["test"][0] == "Fisher"
    assert d2["significant"].to_list() == g["sig_fisher"].to_list()


def test_randomization_marks_the_extreme_assignments():
    d = F.fig_randomization_data(RANDOM)
    assert d.height == 4  # the assignment with an empty arm has no difference
    assert d["as_extreme"].to_list() == [True, True, False, True]


def test_leave_one_out_and_placebo_data():
    d = F.fig_leave_one_out_data(LOO)
    assert d["scenario"].cast(pl.String).to_list() == ["Full cohort", "Without Oxford (-4 / -0)"]
    p = F.fig_placebo_data(PLACEBO)
    assert p["kind"].to_list() == ["Placebo: significant", "Observed schedule",
                                   "Placebo: not significant"]
    # in-time placebos (natexp.causal.randomization.placebo_in_time): no observed schedule
    t = F.fig_placebo_data(PLACEBO.filter(~pl.col("observed")).drop("observed"))
    assert "Observed schedule" not in t["kind"].to_list() and t.height == 2


def test_specification_curve_sorted_with_choice_rows():
    curve, marks = F.fig_specification_curve_data(SPECS)
    assert curve["estimate"].to_list() == pytest.approx([-2.0, 7.0, 12.0])
    assert curve["kind"].to_list() == ["Interval includes 0", "Interval includes 0",
                                       "Interval excludes 0"]
    # rank 3 (0.12) is the only "2021-25" / "identified" specification with an interval > 0
    assert marks.filter(pl.col("level") == "2021-25")["rank"].to_list() == [3]
    assert sorted(marks["ylabel"].unique().to_list()) == [
        "among: identified", "among: reached", "window: 2021-25", "window: 2022-24"]


def test_event_study_splits_before_and_after():
    d = F.fig_event_study_data(EVENT)
    assert d["event_time"].to_list() == [-2, -1, 0]
    assert d["period"].cast(pl.String).to_list() == ["Before go-live", "Before go-live",
                                                     "After go-live"]


def test_missing_columns_raise_a_typed_error():
    with pytest.raises(InvalidInputError, match="female_yes"):
        F.fig_descriptive_data(pl.DataFrame({"table": ["carer_parent"]}),
                               {"carer_parent": "Carer"}, GROUPS)
    with pytest.raises(InvalidInputError, match="sig_boschloo or sig_fisher"):
        F.fig_tipping_point_data({"k1": [0], "k2": [0], "rd": [0.1]})
    with pytest.raises(InvalidInputError, match="observed"):
        F.fig_randomization_data(pl.DataFrame({"rd": [0.1], "observed": [False]}))


def test_palette_is_okabe_ito():
    # Okabe M, Ito K (2008) "Color Universal Design (CUD): how to make figures and
    # presentations that are friendly to colorblind people", https://jfly.uni-koeln.de/color/
    # (the hex values as given in Wong B (2011) Nature Methods 8:441, Figure 2).
    published = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
                 "#000000"}
    used = set(F.OKABE_ITO.values()) - {"#999999"}  # grey for "no" / neutral
    assert used == published
    assert set(F.ARM_COLOURS.values()) <= published


# --------------------------------------------------------------------------------------------
# every figure draws; PNGs are deterministic and carry no metadata

ALL = {
    "carer": lambda: F.fig_descriptive(APPENDIX_B, {"carer_parent": "Carer"}, GROUPS),
    "care_orders": lambda: F.fig_descriptive(APPENDIX_B, {"cwcf": "CWCF", "sgo": "SGO"},
                                             GROUPS),
    "child_ages": lambda: F.fig_child_ages(pl.DataFrame({"age": [0, 5, 17], "n": [3, 9, 1]})),
    "contact": lambda: F.fig_contact(CONTACT),
    "uptake": lambda: F.fig_uptake(UPTAKE),
    "referral": lambda: F.fig_referral_response(REFERRAL),
    "reasons": lambda: F.fig_reasons(REASONS),
    "interview": lambda: F.fig_interview(INTERVIEW),
    "flow": lambda: F.fig_flow(FLOW),
    "forest": lambda: F.fig_forest(EFFECTS, counts={"x1": 4, "n1": 20, "x2": 2, "n2": 15}),
    "tipping": lambda: F.fig_tipping_point(_grid(), mar_cell={"k1": 2, "k2": 1},
                                           counts={"m1": 4, "m2": 3}),
    "randomization": lambda: F.fig_randomization(RANDOM, pvalue=0.6),
    "leave_one_out": lambda: F.fig_leave_one_out(LOO),
    "placebo": lambda: F.fig_placebo(PLACEBO),
    "specification_curve": lambda: F.fig_specification_curve(SPECS),
    "event_study": lambda: F.fig_event_study(EVENT, overall={"estimate": 0.1, "ci_low": 0.05,
                                                              "ci_high": 0.15}),
}


def _chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(png):
        (length,) = struct.unpack(">I", png[i:i + 4])
        kind = png[i + 4:i + 8]
        body = png[i + 8:i + 8 + length]
        (crc,) = struct.unpack(">I", png[i + 8 + length:i + 12 + length])
        assert zlib.crc32(kind + body) == crc
        out.append(kind)
        i += 12 + length
    return out


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_figure_renders(name):
    png = F.png_bytes(ALL[name](), width=4, height=3, dpi=40)
    kinds = set(_chunks(png))
    assert {b"IHDR", b"IDAT", b"IEND"} <= kinds
    # no text, time or software metadata chunks
    assert not kinds & {b"tEXt", b"iTXt", b"zTXt", b"tIME"}


def test_png_is_byte_identical_across_saves(tmp_path):
    plot = F.fig_flow(FLOW)
    a = F.save_png(plot, tmp_path / "a.png", width=5, height=5, dpi=80).read_bytes()
    b = F.save_png(F.fig_flow(FLOW), tmp_path / "b.png", width=5, height=5, dpi=80).read_bytes()
    assert a == b
    w, h = struct.unpack(">II", a[16:24])  # IHDR width, height in pixels
    assert (w, h) == (400, 400)


def test_print_resolution_default():
    png = F.png_bytes(ALL["child_ages"](), width=2, height=1)
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (2 * 300, 300)


def test_object_strings_draw_the_same_pixels(example_run, monkeypatch):
    """plotnine draws with pandas' object strings (natexp._pandas, for speed): every figure of
    the example run gives the same PNG bytes as with pandas 3's default Arrow strings."""
    from natexp.report.render import figure_specs, study_of
    from tests.conftest import run_copy

    results, tables = run_copy(example_run)
    fast, plain = {}, {}
    for spec in figure_specs(study_of(results)):
        plot = spec.build(results, tables)
        if plot is None:
            continue
        monkeypatch.setattr(F, "_OBJECT_STRINGS", True)
        fast[spec.name] = F.png_bytes(plot, width=spec.width, height=spec.height, dpi=60)
        monkeypatch.setattr(F, "_OBJECT_STRINGS", False)
        plain[spec.name] = F.png_bytes(plot, width=spec.width, height=spec.height, dpi=60)
    assert len(fast) >= 10
    assert fast == plain
