"""The report: self-contained HTML, its Markdown twin, byte-identical runs; the progress display.

One in-process pipeline run of the default experiment feeds the report tests. The report
computes nothing, so the checks are that it shows what the run's results say, that the numbers
the study published (Bekaert et al. 2025: 4 of 20 vs 2 of 15, Figure 8; 85 identified, 35
reached, Methodology) appear, and that the files are self-contained and deterministic.
"""

from __future__ import annotations

import base64
import copy
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from natexp.progress import Progress, progress
from natexp.report.render import (
    figure_specs,
    fmt_p,
    fmt_pp,
    render_report,
    study_of,
    write_figures,
    write_report,
)
from tests.conftest import run_copy

DPI = 50  # keeps the tests fast; the pipeline uses 300


@pytest.fixture(scope="module")
def run(example_run):
    """The default experiment with DoWhy off (it adds ~10 s and the report only lays out its
    numbers): the session's shared run (tests/conftest.py), copied."""
    results, tables = run_copy(example_run)
    # the count table Figure 3 needs (the pipeline is asked to add it as children_by_age)
    tables.setdefault("children_by_age",
                      pl.DataFrame({"age": list(range(18)), "n": [3] * 18}))
    return results, tables


@pytest.fixture(scope="module")
def written(run, tmp_path_factory):
    results, tables = run
    out = tmp_path_factory.mktemp("report")
    return out, write_report(out, results, tables, dpi=DPI)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


def test_html_is_self_contained(written):
    out, paths = written
    html = paths["html"].read_text(encoding="utf-8")
    page = _parse(html)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    imgs = [a for t, a in page.tags if t == "img"]
    figs = {k.split(":", 1)[1]: v for k, v in paths.items() if k.startswith("figure:")}
    assert len(imgs) == len(figs) >= 12
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        assert a.get("alt")
    embedded = {base64.b64decode(a["src"].split(",", 1)[1]) for a in imgs}
    assert embedded == {p.read_bytes() for p in figs.values()}
    # no URL that would need the network, and a policy that forbids any request
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "default-src 'none'" in html and 'name="viewport"' in html


def test_every_figure_of_the_run_is_drawn(run, written):
    _, paths = written
    names = {k.split(":", 1)[1] for k in paths if k.startswith("figure:")}
    expected = {"flow", "primary_forest", "fig06_contact", "fig07_08_uptake",
                "fig09_referral_response", "fig10_reasons", "fig11_interview",
                "fig01_04_carer", "fig02_05_care_orders", "fig03_child_ages"}
    assert expected <= names
    assert names <= {s.name for s in figure_specs(study_of(run[0]))}


def test_markdown_twin_links_figures_relatively(written):
    out, paths = written
    md = paths["markdown"].read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links and all(not Path(link).is_absolute() for link in links)
    assert all((out / link).is_file() for link in links)
    assert md.count("\n## ") >= 7


def test_report_shows_the_results(run, written):
    results, _ = run
    _, paths = written
    for text in (paths["html"].read_text(encoding="utf-8"),
                 paths["markdown"].read_text(encoding="utf-8")):
        # published counts (report Figure 8 and Methodology)
        assert "4 of 20 (20%)" in text and "2 of 15 (13%)" in text
        assert "85 were identified" in text and "35 were reached" in text
        # the exact interval of the run, as the run computed it
        rd = results["primary_outcome"]["panel"]["risk_difference"]["exact_unconditional"]
        assert f"from {fmt_pp(rd['ci_low'])} to {fmt_pp(rd['ci_high'])} points" in text
        p = results["primary_outcome"]["panel"]["test"]["boschloo"]["pvalue"]
        assert f"Boschloo's exact test gives p = {fmt_p(p)}" in text
        assert "cannot distinguish a real difference from chance" in text
        assert "SYNTHETIC DATA" in text
        # every replication row is in the table, with its status
        n_rep = len(results["replication"])
        assert text.count("reproduces") + text.count("DIFFERS") >= n_rep
        assert "Limitations" in text


def test_replication_table_rows(run, written):
    results, _ = run
    _, paths = written
    page = _parse(paths["html"].read_text(encoding="utf-8"))
    status_cells = [a.get("class", "") for t, a in page.tags if t == "td"
                    and "status-" in a.get("class", "")]
    assert len(status_cells) == len(results["replication"])
    differs = sum(r["status"] == "differs" for r in results["replication"])
    assert sum("status-differs" in c for c in status_cells) == differs


def test_byte_identical_across_runs(run, written, tmp_path):
    results, tables = run
    out, paths = written
    again = write_report(tmp_path, copy.deepcopy(results), tables, dpi=DPI)
    assert sorted(again) == sorted(paths)
    for key, path in paths.items():
        assert again[key].read_bytes() == path.read_bytes(), key
    html = paths["html"].read_text(encoding="utf-8")
    assert not re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d", html)  # no timestamp


def test_synthetic_banner_only_for_synthetic_data(run):
    results, tables = run
    real = copy.deepcopy(results)
    real["inputs"] = {"synthetic": False,
                      "families": {"file": "f.csv", "rows": 85, "sha256": "ab" * 32}}
    html, md = render_report(real, tables, {})
    assert "SYNTHETIC" not in html and "SYNTHETIC" not in md
    html, md = render_report(results, tables, {})
    assert html.count("SYNTHETIC DATA") == 2  # banner on top and again in the footer
    assert md.startswith("# natexp report: oxon_vs_rest\n\n> **SYNTHETIC DATA")


def test_sections_follow_what_the_run_produced(run, tmp_path):
    results, tables = run
    minimal = {"experiment": "demo", "natexp_version": "0", "inputs": {"synthetic": False}}
    html, md = render_report(minimal, {}, {})
    assert "Limitations" in md and "Sensitivity" not in md and "Staggered" not in md
    # sensitivity (the SensitivitySuite.to_dict() layout) and the staggered results
    more = copy.deepcopy(results)
    more["sensitivity"] = {
        "nonresponse": {"notes": ["675 completions"], "counts": {"m1": 1, "m2": 1},
                        "manski": {"extra": {"lower": -0.58, "upper": 0.6}},
                        "grid": {"k1": [0, 0, 1, 1], "k2": [0, 1, 0, 1],
                                 "rd": [0.1, 0.0, 0.2, 0.1],
                                 "sig_boschloo": [False, False, True, False]}},
        "randomization": {"estimate": 0.12, "pvalue": 0.096, "alternative": "two-sided",
                          "extra": {"assignment_space": {
                              "unit": "area", "block": "county", "size": 3,
                              "min_pvalue": 1 / 3, "can_reach_significance": False,
                              "description": "which one of 3 counties went first"}}},
        "leave_one_out": {"notes": ["dropping one area"], "table": [
            {"dropped_area": None, "dropped_treatment": 0, "dropped_control": 0, "rd": 0.07,
             "exact_low": -0.2, "exact_high": 0.3}]},
    }
    more["staggered"] = {
        "settings": {"period": "month", "start": "2021-12-01", "end": "2025-06-30",
                     "outcome": "rate"},
        "cells": 559,
        "twfe": {"estimate": 0.096, "ci_low": 0.044, "ci_high": 0.148, "pvalue": 0.0003,
                 "note": "TWFE is biased under staggered timing", "diagnostics": []},
        "aggregate": {"simple": {"overall": {"estimate": 0.133, "ci_low": 0.07,
                                             "ci_high": 0.19, "pvalue": 2e-5}},
                      "dynamic": {"overall": {"estimate": 0.134, "ci_low": 0.068,
                                              "ci_high": 0.2, "pvalue": 7e-5}}},
    }
    event = pl.DataFrame({"level": ["overall", "event_time", "event_time"],
                          "value": [None, -1, 0], "estimate": [0.13, 0.0, 0.12],
                          "ci_low": [0.07, -0.1, 0.02], "ci_high": [0.2, 0.1, 0.22]})
    t2 = {"uptake": tables["uptake"], "event_study": event}  # few figures: a fast test
    figs = write_figures(more, t2, tmp_path, dpi=30)
    assert {"tipping_point", "leave_one_out", "event_study"} <= set(figs)
    assert "randomization" not in figs  # needs the randomization_distribution table
    html, md = render_report(more, t2, figs, base_dir=tmp_path.parent)
    assert "## Sensitivity analyses" in md and "## Staggered rollout" in md
    assert "-58.0 to 60.0 percentage points (Manski bounds)" in md
    assert "(3 possible assignments, so the smallest attainable p-value is 0.333)" in md
    assert "it gives randomization p = 0.096" in md
    assert "| Two-way fixed effects (benchmark) | 0.096 | 0.044 to 0.148 | < 0.001 |" in md
    assert f"]({tmp_path.name}/tipping_point.png)" in md


def test_empty_arm_says_so():
    res = {"experiment": "x", "inputs": {"synthetic": False},
           "primary_outcome": {"counts": {"x1": 0, "n1": 0, "x2": 0, "n2": 0},
                               "sentence": "One arm is empty: no comparison is possible."},
           "secondary": {"uptake": {"total": {"n": 0}}}}
    html, md = render_report(res, {}, {})
    assert "One arm is empty" in md and "not available" in md


# --------------------------------------------------------------------------------------------
# progress display (natexp.progress): silent unless on a terminal


def test_progress_silent_when_not_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("NATEXP_PROGRESS", raising=False)
    buf = io.StringIO()
    assert list(progress(range(5), "work", stream=buf)) == [0, 1, 2, 3, 4]
    with Progress(3, "more", stream=buf) as bar:
        bar.update(status="a")
        bar.update(2)
    assert buf.getvalue() == ""
    # default stream: stderr, captured by pytest, so not a terminal either
    list(progress(range(3), "stderr"))
    assert capsys.readouterr() == ("", "")


def test_progress_draws_on_a_real_terminal(monkeypatch):
    monkeypatch.delenv("NATEXP_PROGRESS", raising=False)
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert tty.isatty()
            assert list(progress(range(4), "figures", stream=tty)) == [0, 1, 2, 3]
        # A pty may hand the output over in several pieces: read until nothing more comes.
        import select

        chunks = []
        while select.select([master], [], [], 1.0)[0]:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"4/4 100%" in b"".join(chunks) and b"".join(chunks).endswith(b"\n"):
                break
        out = b"".join(chunks).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert "\r" in out and "figures [" in out and "4/4 100%" in out
    assert out.endswith(("\n", "\r\n"))


def test_progress_environment_switch(monkeypatch):
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NATEXP_PROGRESS", "0")
    tty = FakeTTY()
    list(progress(range(3), "off", stream=tty))
    assert tty.getvalue() == ""
    monkeypatch.setenv("NATEXP_PROGRESS", "1")
    buf = io.StringIO()
    list(progress(range(2), "on", stream=buf))
    assert "2/2" in buf.getvalue()


def test_every_analysis_states_its_estimand_and_every_test_its_space(run):
    """Issue 17's definition of done, on the default run: results.json and the report show,
    for every analysis, its estimand and, for every randomization or placebo test, its
    assignment space, size and smallest attainable p."""
    results, tables = run
    est_keys = {"population", "outcome", "contrast", "conditional_on"}
    assert est_keys <= set(results["primary_outcome"]["estimand"])
    assert results["primary_outcome"]["estimand"]["conditional_on"]
    s = results["sensitivity"]
    assert est_keys <= set(s["estimand"])
    for key in ("randomization", "area_level", *(
            f"randomization_mechanisms.{k}" for k in s["randomization_mechanisms"])):
        part = s
        for k in key.split("."):
            part = part[k]
        sp = part["extra"]["assignment_space"]
        assert {"size", "min_pvalue", "can_reach_significance", "description"} <= set(sp), key
        assert est_keys <= set(part["extra"]["estimand"]), key
    for key in ("placebo_in_space", "placebo_in_time"):
        assert {"size", "min_pvalue", "description"} <= set(s[key]["meta"]["assignment_space"])
        assert est_keys <= set(s[key]["meta"]["estimand"])
    for key in ("pattern_mixture", "intention_to_treat", "cluster"):
        part = s[key]
        assert est_keys <= set(part.get("estimand") or part["meta"]["estimand"]), key
    for q in results["appendix_b"].values():
        assert est_keys <= set(q["estimand"]) and est_keys <= set(q["clustered"]["estimand"])
    sens = tables["sensitivity"]
    assert {"estimand", "assignment_space", "assignment_space_size", "min_pvalue"} <= set(
        sens.columns)
    rand = sens.filter(pl.col("analysis").str.contains("randomization"))
    assert rand.height == 4 and rand["assignment_space_size"].null_count() == 0
    # the declared county mechanism: 3 assignments, smallest p 1/3, cannot reach 0.05
    sp = s["randomization"]["extra"]["assignment_space"]
    assert (sp["size"], sp["can_reach_significance"]) == (3, False)
    assert sp["min_pvalue"] == pytest.approx(1 / 3)
    html, md = render_report(results, tables, {})
    flat = " ".join(md.split())
    assert "Among the 35 of 85 identified families reached by the follow-up call" in flat
    assert "cannot separate the programme from differences between" in flat
    assert "Maryland Scientific Methods Scale: level 2" in flat
    assert "conditional on being reached" in flat
    assert "no outcome whatever could reach significance" in flat
    assert "| county | which one of the 3 counties went first" in md
    assert "The conclusion rests on the randomization test over the declared assignment" in flat
    assert "smallest attainable p" in flat and "Holm" in flat
    assert "MISREADING" in flat


# --------------------------------------------------------------------------------------------
# a second, fictional study: the report takes every study word from the study description

#: A fictional study (issue 16): its own outcome column, descriptive key, secondary keys,
#: titles, labels and published references. Its results are the example run's numbers under
#: the fictional study's names (the report computes nothing, so only the names matter).
FICTIONAL = {
    "name": "lantern", "title": "Lantern Clubs", "programme": "the Lantern Clubs",
    "source": "Nobody, A. (2031) Lantern Clubs evaluation. Fictional Press.",
    "data_holders": "Held by the Fictional Council.",
    "wording": {"parent": "lead carer"},
    "outcome": {"column": "attended_club", "label": "attended a lantern club",
                "short_label": "club attendance", "yes_label": "Attended a club",
                "no_label": "Never came", "published": "Chart 4",
                "route": {"column": "club_route", "programme": "club",
                          "labels": {"club": "via the lantern outreach",
                                     "library": "via the library", "other": "otherwise"}}},
    # every column its tables and route use is declared (issue 16: Study checks references)
    "columns": {
        "families": [
            {"name": "attended_club", "kind": "bool"},
            {"name": "club_route", "kind": "category", "nullable": True,
             "values": ["club", "library", "other"]},
            {"name": "offer_answer", "kind": "category", "nullable": True,
             "values": ["accepted", "re_referral", "declined", "already_supported",
                        "not_applicable"]},
            *({"name": n, "kind": "bool", "nullable": True}
              for n in ("m_child", "m_self", "m_legal", "diary_yes", "diary_done",
                        "has_contact", "wants_contact", "court_order")),
            {"name": "contact_view", "kind": "category", "nullable": True,
             "values": ["positive", "negative"]}],
        "children": [{"name": n, "kind": "bool"} for n in ("carer", "cwcf", "sgo")]},
    "descriptive": {
        "key": "pantry_survey", "title": "Pantry survey: households by carer",
        "published": "Table Z9", "by": "parent_sex", "groups": {"F": "female", "M": "male"},
        "group_labels": {"female": "Carer a woman", "male": "Carer a man"},
        "ages_published": "Chart 1",
        "questions": [{"key": "carer_parent", "column": "carer", "label": "Pantry used weekly?",
                       "short_label": "Weekly pantry use"},
                      {"key": "cwcf", "column": "cwcf", "label": "Owns a lantern?",
                       "short_label": "Lantern owner"},
                      {"key": "sgo", "column": "sgo", "label": "Sings in a choir?",
                       "short_label": "Choir singer"}],
        "figures": [{"key": "pantry", "questions": ["carer_parent"], "title": "Pantry use",
                     "caption": "weekly pantry use by carer", "published": "Chart 2"},
                    {"key": "hobbies", "questions": ["cwcf", "sgo"], "title": "Hobbies",
                     "caption": "lanterns and choirs", "published": "Chart 3"}]},
    "secondary": [
        {"key": "offer", "kind": "category", "column": "offer_answer", "row": "response",
         "title": "Answer to the club offer", "published": "Chart 5",
         "labels": {"accepted": "Took it", "re_referral": "Took it again", "declined": "Said no",
                    "already_supported": "Already a member", "not_applicable": "Too old"}},
        {"key": "motives", "kind": "flags", "title": "Motives for joining", "row": "reason",
         "columns": {"child": "m_child", "self": "m_self", "legal": "m_legal"},
         "labels": {"child": "Fun", "self": "Friends", "legal": "Lanterns"}},
        {"key": "diary", "kind": "consent", "title": "Diary keeping",
         "columns": {"consent": "diary_yes", "completed": "diary_done"},
         "labels": {"reached": "Phoned", "agreed": "Agreed to keep a diary",
                    "not_agreed": "Declined the diary", "consent_missing": "Unknown",
                    "completed": "Kept the diary"}},
        {"key": "neighbours", "kind": "crossed", "title": "Neighbours met",
         "columns": {"row": "has_contact", "col": "contact_view"},
         "cells": {"contact_positive": [True, "positive"], "contact_negative": [True, "negative"],
                   "no_contact_positive": [False, "positive"],
                   "no_contact_negative": [False, "negative"]},
         "items": ["wants_contact", "court_order"],
         "labels": {"contact_positive": "Met, liked", "contact_negative": "Met, disliked",
                    "no_contact_positive": "Not met, fine", "no_contact_negative": "Not met, sad",
                    "wants_contact": "Wants to meet", "court_order": "Has a lantern"}},
        {"key": "attendance", "kind": "outcome_routes", "title": "Club attendance by arm",
         "heading": "Club attendance before the call", "published": "Chart 4"}],
    "labels": {"parent_sex": "sex of the lead carer", "carer": "who runs the pantry",
               "child_age_band": "age group"},
}
_FICTIONAL_KEYS = {"contact": "neighbours", "uptake": "attendance", "referral_response": "offer",
                   "reasons": "motives", "interview": "diary"}
_FORBIDDEN = re.compile(r"paramount|oxford|thames|appendix|chas|children heard|imprison",
                        re.IGNORECASE)


def _fictional(results, tables):
    """The example run's numbers under the fictional study's names, areas and labels."""
    import json

    from natexp.study import Study

    study = Study.from_dict(FICTIONAL)
    text = json.dumps(results)
    # the areas and counties of the rollout are data: give them fictional names
    names = {}
    for i, r in enumerate(results["rollout"]):
        names[r["area"]] = f"Quarter {i + 1}"
        names.setdefault(r["county"], f"Shire {len(set(names.values()))}")
    # and the run's outcome column (named in the estimands the pipeline wrote) is the study's
    names["chas_support"] = study.outcome.column
    for old, new in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    res = json.loads(text)
    res["config"]["study"] = FICTIONAL
    res.pop("replication", None)
    res["description"] = "A fictional study."
    res["inputs"]["statement"] = "SYNTHETIC DATA: fictional."
    res["pantry_survey"] = res.pop("appendix_b")
    for q in study.descriptive.questions:
        res["pantry_survey"][q.key]["question"] = q.label
    sec = res["secondary"]
    res["secondary"] = {_FICTIONAL_KEYS[k]: v for k, v in sec.items()}
    route = dict(zip(("paramount", "school", "other", "missing"),
                     ("club", "library", "other", "missing"), strict=True))
    for g in res["secondary"]["attendance"].values():
        if isinstance(g, dict) and isinstance(g.get("route"), dict):
            g["route"] = {route[k]: v for k, v in g["route"].items()}
    tabs = {}
    for name, t in tables.items():
        if name == "appendix_b":
            name = "pantry_survey"
            t = t.with_columns(pl.col("table").replace_strict(
                {q.key: q.label for q in study.descriptive.questions}).alias("question"))
        elif name.startswith("secondary_"):
            name = "secondary_" + _FICTIONAL_KEYS[name.removeprefix("secondary_")]
            spec = study.secondary_spec(name.removeprefix("secondary_"))
            key = {"offer": "response", "motives": "reason", "diary": "measure"}.get(spec.key)
            if key and "label" in t.columns:
                t = t.with_columns(pl.col(key).replace_strict(
                    dict(spec.labels), default="Unknown").alias("label"))
            if spec.kind == "outcome_routes":
                t = t.rename({f"route_{k}": f"route_{v}" for k, v in route.items()
                              if f"route_{k}" in t.columns})
        for col in t.columns:
            if t[col].dtype == pl.String:
                for old, new in sorted(names.items(), key=lambda kv: -len(kv[0])):
                    t = t.with_columns(pl.col(col).str.replace_all(rf"\b{re.escape(old)}\b",
                                                                   new))
        tabs[name] = t
    return res, tabs


def test_a_second_study_report_uses_its_own_words(run, tmp_path):
    results, tables = _fictional(*run)
    paths = write_report(tmp_path, results, tables, dpi=DPI)
    md = paths["markdown"].read_text(encoding="utf-8")
    # the embedded PNGs are base64: any four letters occur in them by chance
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "",
                  paths["html"].read_text(encoding="utf-8"))
    for text in (md, html):
        hits = sorted({m.group(0).lower() for m in _FORBIDDEN.finditer(text)})
        assert not hits, hits
    # the fictional study's titles, labels, references and figure names are there
    for words in ("Club attendance before the call",
                  "Answer to the club offer (report Chart 5)", "Motives for joining",
                  "Diary keeping", "Neighbours met", "Pantry survey: households by carer",
                  "Table Z9 with families as clusters", "Carer a woman", "Pantry used weekly?",
                  "via the lantern outreach", "sex of the lead carer", "who runs the pantry",
                  "Report Chart 2: weekly pantry use by carer.", "Attended a club",
                  "Table Z9 compares children by sex of the lead carer"):
        assert words in md, words
    figs = {k.split(":", 1)[1] for k in paths if k.startswith("figure:")}
    assert {"fig04_attendance", "fig05_offer", "fig_motives", "fig_diary", "fig_neighbours",
            "fig02_pantry", "fig03_hobbies", "fig01_child_ages"} <= figs


def test_early_figures_read_nothing_the_later_steps_make(example_run):
    """The pipeline hands the figures of EARLY_SECTIONS to its helper process before the
    sensitivity analyses and the panel (``start_figures``). Drawn from what a run has at that
    point they must be byte-identical to the same figures drawn from the finished run; and every
    other figure must need something made later (or it belongs among the early ones)."""
    from natexp.report import figures as F
    from natexp.report.render import EARLY_SECTIONS, figure_specs, study_of

    results, tables = run_copy(example_run)
    study = study_of(results)
    made_before = {"flow", "uptake", "children_by_age", "balance_identified",
                   "balance_reached", "replication",
                   *(k for k in tables if k.startswith("secondary_")),
                   *([study.descriptive.key] if study.descriptive else [])}
    early_results = {k: v for k, v in results.items() if k not in ("sensitivity", "staggered")}
    early_tables = {k: v for k, v in tables.items() if k in made_before}
    assert "sensitivity" in results and len(early_tables) < len(tables)
    compared = 0
    for spec in figure_specs(study):
        at_start = spec.build(early_results, early_tables)
        at_end = spec.build(results, tables)
        if spec.section in EARLY_SECTIONS:
            assert (at_start is None) == (at_end is None), spec.name
            if at_end is not None:
                draw = {"width": spec.width, "height": spec.height, "dpi": 30}
                assert F.png_bytes(at_start, **draw) == F.png_bytes(at_end, **draw), spec.name
                compared += 1
        else:
            assert at_start is None, f"{spec.name} could be drawn early"
    assert compared >= 8  # the flow, the forest, the secondary and descriptive figures
