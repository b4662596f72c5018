"""The report's publication mode: built from disclosure-controlled results, it never shows a
suppressed value.

One in-process run of the default experiment (sensitivity analyses on, DoWhy off) is put
through natexp's disclosure control three ways: with the experiment's exception file (the
counts Bekaert et al. 2025 published are cleared), without it and with suppression (every
count below 10 suppressed, with secondary suppression), and with the exception file at
threshold 40 (counts the normal report prints, such as the 39 identified control families,
are suppressed). The truth the checks use is the run's own uncleared results: every table
cell of the publication report is either the normal report's cell or a marker, and the cell of
every count the disclosure log lists as suppressed is ``[c]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from natexp.bundle.disclosure import (
    DisclosureSettings,
    Exceptions,
    exceptions_path,
    publication_mode,
)
from natexp.report import figures as F
from natexp.report.render import _restore_table, render_report, write_publication_report

pytestmark = pytest.mark.slow

DPI = 30  # keeps the tests fast; the bundle uses 300
BANNER = "PUBLICATION MODE: disclosure-controlled"
SETUPS = {
    "exceptions": {},
    "no_exceptions_suppress": {"settings": DisclosureSettings(suppress=True),
                               "exceptions": None},
    "threshold_40": {"settings": DisclosureSettings(threshold=40)},
}


@pytest.fixture(scope="module")
def run(example_run):
    """The default experiment with DoWhy off: the session's shared run (tests/conftest.py),
    copied."""
    from tests.conftest import run_copy

    return run_copy(example_run)


@pytest.fixture(scope="module")
def published(run, tmp_path_factory):
    """setup name -> (Publication, output folder, renderer checks), computed once each."""
    results, tables = run
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            kw = dict(SETUPS[name])
            if "exceptions" not in kw:
                kw["exceptions"] = Exceptions.load(exceptions_path("oxon_vs_rest"))
            pub = publication_mode(results, tables, **kw)
            out = tmp_path_factory.mktemp(name)
            checks = write_publication_report(out, pub.results, pub.tables, dpi=DPI)
            cache[name] = (pub, out, checks)
        return cache[name]

    return get


# --------------------------------------------------------------------------- helpers


def md_tables(md: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Markdown tables of the report: caption -> (header, rows)."""
    out: dict[str, tuple[list[str], list[list[str]]]] = {}
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if not (line.startswith("**") and line.endswith("**") and len(line) > 4):
            continue
        if i + 3 >= len(lines) or not lines[i + 2].startswith("| "):
            continue
        block = []
        for x in lines[i + 2:]:
            if not x.startswith("|"):
                break
            block.append(x)
        out[line[2:-2]] = (_cells(block[0]), [_cells(x) for x in block[2:]])
    return out


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"-?\d+(?:\.\d+)?", text.replace("[c]", "")))


def _key(header: list[str], row: list[str]) -> tuple[str, ...]:
    return (row[0], row[1]) if len(header) > 2 and header[1] in ("Arm", "Level", "Method") \
        else (row[0],)


def _is_hidden(cell: str) -> bool:
    return cell in ("[c]", "withheld") or cell.startswith("withheld")


def suppressed_keys(pub) -> set[str]:
    cells = pub.log.cells
    return set(cells["suppressed_primary"]) | set(cells["suppressed_secondary"])


# --------------------------------------------------------------------------- tests


def test_bundle_report_has_banner_figures_and_a_check_for_each_file(published):
    pub, out, checks = published("exceptions")
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert BANNER in html and BANNER in md
    assert 'class="banner publication"' in html
    assert all(c["status"] in ("pass", "review", "fail") and c["reasons"]
               for c in checks.values())
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(k for k, c in checks.items() if not c["withheld"])
    drawn = {Path(k).stem for k in written if k.startswith("figures/")}
    # the report's own figures, the flow, the forest and the tipping point: from cleared counts
    assert {"flow", "primary_forest", "fig06_contact", "fig07_08_uptake",
            "fig09_referral_response", "fig10_reasons", "fig11_interview", "fig01_04_carer",
            "fig02_05_care_orders", "fig03_child_ages", "tipping_point"} <= drawn
    # Figure 6 leaves suppressed cells out, with a note
    assert checks["figures/fig06_contact.png"]["status"] == "review"
    assert "left out of this figure" in md
    # sensitivity analyses built from counts the rules do not track: withheld, with the reason
    for name in ("randomization", "leave_one_out", "placebo_in_time", "specification_curve"):
        assert name not in drawn
    assert "Withheld: disclosure control. The randomization test recomputes" in md
    assert "Withheld: disclosure control. Leaving one area out shows" in md
    # cleared statistics are shown: the published 4 of 20 vs 2 of 15 and the E-values
    assert "4 of 20 (20%)" in md and "E-values (VanderWeele and Ding 2017)" in md
    assert html.count('src="data:image/png;base64,') == len(drawn)


def test_sensitivity_tables_cleared_or_withheld_with_reasons(published):
    pub, _, _ = published("exceptions")
    status = {o.output: o for o in pub.log.outputs}
    assert status["tipping_point.csv"].status == "pass"
    assert not status["tipping_point.csv"].withheld
    for name in ("leave_one_area_out", "placebo_in_space", "placebo_in_time",
                 "randomization_distribution", "specification_curve"):
        o = status[f"{name}.csv"]
        assert o.withheld and o.status == "review", name
        assert "publication mode" in o.reasons[0] and "disclosure control" in o.reasons[0]
        assert name not in pub.tables
    sens = pub.tables["sensitivity"]
    for r in sens.iter_rows(named=True):
        hidden = r["estimate"] == "[c]"
        assert hidden == (r["analysis"].startswith("randomization_")
                          or r["analysis"] == "area_level_randomization"), r
    s = pub.results["sensitivity"]
    assert s["randomization"].startswith("[withheld: disclosure control: ")
    assert isinstance(s["nonresponse"], dict) and isinstance(s["evalues"], dict)
    assert s["leave_one_out"]["table"].startswith("[withheld: disclosure control")
    assert isinstance(s["leave_one_out"]["headline"]["estimate"], float)
    # at threshold 40 the identified-family counts the grid is built on are suppressed:
    # the whole tipping-point analysis is withheld, not shown cell by cell
    pub40, out40, checks40 = published("threshold_40")
    o = {o.output: o for o in pub40.log.outputs}["tipping_point.csv"]
    assert o.withheld and "suppressed" in o.reasons[0]
    assert pub40.results["sensitivity"]["nonresponse"].startswith("[withheld")
    assert checks40["figures/tipping_point.png"]["withheld"]
    assert not (out40 / "figures" / "tipping_point.png").exists()


@pytest.mark.parametrize("setup", ["no_exceptions_suppress", "threshold_40"])
def test_no_suppressed_value_appears_in_the_report(run, published, setup):
    results, tables = run
    pub, out, checks = published(setup)
    md = (out / "report.md").read_text(encoding="utf-8")
    html = (out / "report.html").read_text(encoding="utf-8")
    normal = md_tables(render_report(results, tables, {})[1])
    shown = md_tables(md)
    hidden = suppressed_keys(pub)
    assert hidden

    # 1. every cell is the normal report's cell or a marker; a cell with a marker shows only
    #    numbers of the true cell (e.g. "[c] of 32" for "8 of 32 (25%)")
    compared = 0
    for caption, (header, rows) in shown.items():
        if caption not in normal:
            continue
        by_key: dict[tuple, list[list[str]]] = {}
        for r in normal[caption][1]:
            by_key.setdefault(_key(header, r), []).append(r)
        for r in rows:
            k = _key(header, r)
            if not by_key.get(k):  # a row the normal report leaves out: markers only
                assert all(_is_hidden(c) or c == "" for c in r[len(k):]), (caption, r)
                continue
            truth = by_key[k].pop(0)
            for col, cell, true in zip(header, r, truth, strict=True):
                if col == "Note" or cell == true:
                    continue
                compared += 1
                assert _is_hidden(cell) or "[c]" in cell, (caption, col, cell, true)
                assert _numbers(cell) <= _numbers(true), (caption, col, cell, true)
    assert compared > 20

    # 2. the cell of every suppressed count reads [c]
    checked = 0
    labels = {(r["step"], r["arm"]): r["label"] for r in results["flow"]}
    arm = {"treatment": "Treatment", "control": "Control", "all": "All"}
    flow = {(r[0], r[1]): r[2] for r in shown["Cohort flow"][1]}
    for (step, a), label in labels.items():
        if f"flow.{step}.{a}" in hidden:
            assert flow[(label, arm[a])] == "[c]", (step, a)
            checked += 1
    prim = {r[0]: r for r in shown["Support uptake before the follow-up call (reached "
                                   "families)"][1]}
    for k, (row, col) in {"x1": ("Treatment", 1), "n1": ("Treatment", 3),
                          "x2": ("Control", 1), "n2": ("Control", 3)}.items():
        if f"primary_outcome.counts.{k}" in hidden:
            assert prim[row][col] == "[c]", k
            checked += 1
    ab_caption = "Appendix B: children by sex of the imprisoned parent"
    ab = {r[0]: r for r in shown[ab_caption][1]}
    for q, tab in results["appendix_b"].items():
        for sex, col in (("female", 1), ("male", 2)):
            keys = {f"appendix_b.{q}.{sex}.{k}" for k in ("yes", "no", "n")}
            if keys & hidden:
                assert "[c]" in ab[tab["question"]][col], (q, sex)
                checked += 1
    for name, caption, key_col in (
            ("referral_response", "Response to the support offer (report Figure 9)",
             "response"),
            ("interview", "Interview stage (report Figure 11)", "measure")):
        rows = {r[0]: r for r in shown.get(caption, ([], []))[1]}
        for r in tables[f"secondary_{name}"].iter_rows(named=True):
            for i, a in enumerate(("treatment", "control", "total")):
                if f"secondary.{name}.{a}.{r[key_col]}" in hidden and r["label"] in rows:
                    assert rows[r["label"]][i + 1] == "[c]", (name, r[key_col], a)
                    checked += 1
    assert checked >= 4

    # 3. the primary comparison: with its counts suppressed, no "x of n" or statistic
    if "primary_outcome.counts.x1" in hidden:
        x1, n1 = (results["primary_outcome"]["counts"][k] for k in ("x1", "n1"))
        for text in (md, html):
            assert f"{x1} of {n1}" not in text
            assert "Boschloo's exact test gives p" not in text
        assert "withheld: disclosure control" in md
        assert checks["figures/primary_forest.png"]["withheld"]
        assert "figure withheld" in md


def test_count_figures_draw_no_suppressed_value(run, published):
    """The data each count figure draws holds a null exactly where a count was suppressed."""
    results, _ = run
    pub, _, checks = published("no_exceptions_suppress")
    flow, hidden = _restore_table(pub.tables["flow"])
    assert hidden["n"]
    boxes = F.fig_flow_data(flow).filter(pl.col("kind") == "box")
    truth = {(r["step"], r["arm"]): r["n"] for r in results["flow"]}
    checked = 0
    for i in hidden["n"]:
        step, arm = flow["step"][i], flow["arm"][i]
        if arm not in ("treatment", "control") or step not in ("identified", "reached",
                                                                "agreed_interview",
                                                                "interviewed"):
            continue
        box = boxes.filter((pl.col("x") == (33.0 if arm == "treatment" else 67.0))
                           & pl.col("text").str.starts_with(F._wrap(flow["label"][i], 30)))
        assert box.height == 1
        assert box["text"][0].endswith("n = [c]")
        assert f"n = {truth[(step, arm)]}" not in box["text"][0]
        checked += 1
    assert checked
    if any(flow["arm"][i] == "all" and flow["step"][i] != "input" for i in hidden["n"]):
        assert "Excluded: n = [c]" in "\n".join(F.fig_flow_data(flow)["text"].to_list())
    assert checks["figures/flow.png"]["status"] == "review"
    ab, ab_hidden = _restore_table(pub.tables["appendix_b"])
    data = F.fig_descriptive_data(ab, {"cwcf": "CWCF", "sgo": "SGO"},
                                  {"female": "Female parent imprisoned",
                                   "male": "Male parent imprisoned"})
    for r in data.iter_rows(named=True):
        sex = "female" if r["parent"].startswith("Female") else "male"
        row = ab.filter(pl.col("table") == r["table"]).row(0, named=True)
        if row[f"{sex}_yes"] is None or row[f"{sex}_no"] is None:
            assert r["percent"] is None and r["n"] is None and "[c]" in r["label"]
        else:
            assert "[c]" not in r["label"]
    up, _ = _restore_table(pub.tables["secondary_uptake"])
    data = F.fig_uptake_data(up)
    for r in data.iter_rows(named=True):
        part = up.filter(pl.col("group") == r["arm"].lower()).row(0, named=True)
        assert (r["n"] is None) == (part[r["answer"].lower()] is None)


def test_two_renders_are_byte_identical(published, tmp_path):
    pub, out, _ = published("exceptions")
    write_publication_report(tmp_path, pub.results, pub.tables, dpi=DPI)
    first = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
             if p.is_file()}
    second = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*")
              if p.is_file()}
    assert first == second


def test_nothing_is_written_when_the_report_is_switched_off(tmp_path):
    res = {"experiment": "demo", "config": {"report": {"enabled": False}}}
    assert write_publication_report(tmp_path / "r", res, {}) == {}
    assert not (tmp_path / "r").exists()
