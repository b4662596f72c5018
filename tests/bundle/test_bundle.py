"""``python -m natexp bundle``: one deterministic zip, atomic, never overwriting, no machine paths.

Layout references: BagIt (RFC 8493: ``bagit.txt``, ``bag-info.txt``, ``manifest-sha256.txt``,
``tagmanifest-sha256.txt``, payload under ``data/``), checked with the Library of Congress
``bagit`` package; README sections from the Social Science Data Editors' template README
(Vilhuber et al. 2022, doi:10.5281/zenodo.7293838).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import polars as pl
import pytest

from natexp.bundle.build import build_bundle
from natexp.bundle.cli import bundle_main
from natexp.bundle.manifest import extract_zip, sha256_file, validate_bag

pytestmark = pytest.mark.slow

EXP = "+experiment=oxon_vs_rest"
ROOT = "oxon_vs_rest-replication/"
BANNER = "PUBLICATION MODE: disclosure-controlled"


def overrides(*, full: bool) -> list[str]:
    """oxon_vs_rest without the slow sensitivity analyses; full: with the figures and the
    report the run draws, otherwise without them (faster)."""
    from natexp.config import compose

    cfg = compose([EXP])
    out = [EXP]
    if "sensitivity" in cfg:
        out.append("sensitivity.enabled=false")
    if "report" in cfg and not full:
        out.append("report.enabled=false")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundle")
    return build_bundle(overrides(full=True), d / "a.zip")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_zip_is_deterministic_and_a_valid_bag(built, tmp_path):
    with zipfile.ZipFile(built.path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all((i.external_attr >> 16) & 0o777 == 0o644 for i in infos)
    root = "oxon_vs_rest-replication/"
    assert all(n.startswith(root) for n in names)
    for required in ("README.md", "bagit.txt", "bag-info.txt", "manifest-sha256.txt",
                     "tagmanifest-sha256.txt", "data/config/resolved_config.json",
                     "data/config/overrides.txt", "data/results/results.json",
                     "data/results/flow.csv", "data/results/uptake.csv",
                     "data/inputs/inputs.json", "data/disclosure/disclosure_log.json",
                     "data/disclosure/disclosure_log.md", "data/disclosure/exceptions.yaml",
                     "data/environment/environment.json"):
        assert root + required in names, required
    bag = extract_zip(built.path, tmp_path)
    assert validate_bag(bag) == []  # the bagit reference implementation agrees
    manifest = (bag / "manifest-sha256.txt").read_text().splitlines()
    payload = sorted(p.relative_to(bag).as_posix() for p in (bag / "data").rglob("*")
                     if p.is_file())
    assert sorted(line.split()[1] for line in manifest) == payload


def test_readme_follows_the_template(built):
    readme = members(built.path)["oxon_vs_rest-replication/README.md"].decode()
    for heading in ("## Overview", "## Data Availability and Provenance Statements",
                    "### Summary of availability", "### Details on each data source",
                    "## Computational requirements", "### Software requirements",
                    "### Controlled randomness", "### Memory, runtime, storage requirements",
                    "## Instructions to replicators", "## List of tables and programs"):
        assert heading in readme, heading
    assert "SYNTHETIC DATA" in readme and "python -m natexp synth" in readme
    assert "synthetic.seed" in readme and "20250101" in readme
    assert "- [x] <10 minutes" in readme
    lock = members(built.path)["oxon_vs_rest-replication/data/environment/environment.json"]
    locked = json.loads(lock)["locked"]
    if locked:  # exact versions from requirements.lock
        name, version = next(iter(locked.items()))
        assert f"{name}=={version}" in readme
    # every output -> the code and config that produce it
    assert "| `results/flow.csv` | `natexp.data.cohort.flow_table` |" in readme
    assert "python -m natexp verify oxon_vs_rest-replication" in readme


def test_readme_shows_only_cleared_counts(tmp_path):
    """Before: the README printed the input row counts that disclosure control suppressed in
    inputs.json. With a threshold above every count, they read [c] everywhere."""
    out = tmp_path / "t.zip"
    rc = bundle_main([*overrides(full=False), "--threshold", "1000", "--suppress",
                      "--no-exceptions", "--out", str(out)])
    assert rc == 0
    m = members(out)
    inputs = json.loads(m[ROOT + "data/inputs/inputs.json"])
    assert inputs["families"]["rows"] == inputs["children"]["rows"] == "[c]"
    readme = m[ROOT + "README.md"].decode()
    rows = [ln for ln in readme.splitlines() if ln.startswith(("| `families` |",
                                                               "| `children` |"))]
    assert len(rows) == 2 and all(ln.split(" | ")[3] == "[c]" for ln in rows), rows
    assert "| 330 |" not in readme and "| 639 |" not in readme


def test_no_record_level_data_machine_paths_or_ids(built):
    from natexp.data.synthetic import generate

    fam, chi = generate()
    blob = b"\n".join(members(built.path).values())
    for value in [*fam["family_id"].to_list()[:50], *chi["child_id"].to_list()[:50]]:
        assert value.encode() not in blob
    for path in (str(Path.home()), os.getcwd(), str(built.path.parent)):
        assert path.encode() not in blob
    cfg = json.loads(members(built.path)[
        "oxon_vs_rest-replication/data/config/resolved_config.json"])
    assert cfg["output_dir"] is None and cfg["experiment"] == "oxon_vs_rest"
    inputs = json.loads(members(built.path)["oxon_vs_rest-replication/data/inputs/inputs.json"])
    assert inputs["synthetic"] is True and inputs["generator"]["seed"] == 20250101
    assert set(inputs["families"]) >= {"rows", "columns", "content_sha256"}


def test_report_and_figures_in_publication_mode(built):
    """Counts of this run were suppressed: the bundle holds the report and figures drawn in
    publication mode from the cleared results, each in the disclosure log with its status."""
    m = members(built.path)
    log = json.loads(m[ROOT + "data/disclosure/disclosure_log.json"])
    statuses = {o["output"]: o for o in log["outputs"]}
    assert log["cells"]["suppression_applied"]
    for name in ("results/report.html", "results/report.md"):
        assert ROOT + "data/" + name in m
        assert statuses[name]["status"] == "review" and not statuses[name]["withheld"]
        assert any("publication mode" in r for r in statuses[name]["reasons"])
        assert BANNER in m[ROOT + "data/" + name].decode()
    pngs = sorted(n for n in m if n.startswith(ROOT + "data/results/figures/"))
    assert {Path(n).stem for n in pngs} >= {"flow", "primary_forest", "fig06_contact",
                                            "fig07_08_uptake", "fig09_referral_response",
                                            "fig10_reasons", "fig11_interview",
                                            "fig01_04_carer", "fig02_05_care_orders",
                                            "fig03_child_ages"}
    for n in pngs:
        o = statuses[n.removeprefix(ROOT + "data/")]
        assert o["status"] in ("pass", "review") and o["reasons"] and not o["withheld"]
    # Figure 6 leaves its suppressed cells out and says so
    assert statuses["results/figures/fig06_contact.png"]["status"] == "review"
    # every output of the log: in the zip if and only if not withheld
    names = set(m)
    for o in log["outputs"]:
        assert (ROOT + "data/" + o["output"] in names) != o["withheld"], o["output"]
    assert log["cells"]["withheld_files"] == sorted(
        o["output"] for o in log["outputs"] if o["withheld"]
        and not o["output"].endswith((".csv", ".json")))
    readme = m[ROOT + "README.md"].decode()
    assert "write_publication_report" in readme


@pytest.fixture(scope="module")
def suppressed(tmp_path_factory):
    """The bundle without the exception file, suppressing every count below 10."""
    out = tmp_path_factory.mktemp("suppressed") / "s.zip"
    rc = bundle_main([*overrides(full=True), "--no-exceptions", "--suppress", "--out",
                      str(out)])
    assert rc == 0
    return out


def test_no_suppressed_value_in_the_published_report(suppressed):
    m = members(suppressed)
    log = json.loads(m[ROOT + "data/disclosure/disclosure_log.json"])
    hidden = set(log["cells"]["suppressed_primary"]) | set(log["cells"]["suppressed_secondary"])
    # the study's published 4 of 20 vs 2 of 15 (Bekaert et al. 2025, Figure 8) are below 10
    assert {"primary_outcome.counts.x1", "primary_outcome.counts.x2"} <= hidden
    md = m[ROOT + "data/results/report.md"].decode()
    html = m[ROOT + "data/results/report.html"].decode()
    for text in (md, html):
        assert BANNER in text
        assert "4 of 20" not in text and "2 of 15" not in text
        assert "Boschloo's exact test gives p" not in text
    # the primary table: every suppressed count of the 2x2 reads [c]
    table = md.split("**Support uptake before the follow-up call (reached families)**")[1]
    rows = {ln.split(" | ")[0].strip("| "): [c.strip(" |") for c in ln.split(" | ")]
            for ln in table.strip().splitlines()[2:4]}
    for k, (row, col) in {"x1": ("Treatment", 1), "n1": ("Treatment", 3),
                          "x2": ("Control", 1), "n2": ("Control", 3)}.items():
        if f"primary_outcome.counts.{k}" in hidden:
            assert rows[row][col] == "[c]", k
    assert rows["Treatment"][4] == "withheld"  # the percentage of a suppressed count
    assert "withheld: disclosure control" in md
    # the forest plot is built from the suppressed 2x2: withheld, and logged as such
    statuses = {o["output"]: o for o in log["outputs"]}
    forest = statuses["results/figures/primary_forest.png"]
    assert forest["withheld"] and ROOT + "data/results/figures/primary_forest.png" not in m
    assert "figure withheld" in md
    # the appendix B cells of the imprisoned mothers (8, 5 and 6 of 32) read [c]
    ab = md.split("**Appendix B: children by sex of the imprisoned parent**")[1]
    for ln in ab.strip().splitlines()[2:5]:
        assert ln.split(" | ")[1].startswith("[c] of"), ln


def test_suppressed_bundle_verifies(suppressed):
    """bundle -> verify round-trips: the re-run's publication-mode report, figures and log
    are byte-identical to the bundle's."""
    from natexp.bundle.verify import verify_bundle

    report = verify_bundle(suppressed)
    assert report.ok, report.text()
    matched = {ln.subject for ln in report.lines if ln.kind == "output"}
    assert {"results/report.html", "results/report.md", "results/figures/flow.png",
            "disclosure/disclosure_log.json"} <= matched


def test_disclosure_log_records_the_exception(built):
    log = json.loads(members(built.path)[
        "oxon_vs_rest-replication/data/disclosure/disclosure_log.json"])
    assert log["status"] in ("pass", "review")
    assert "Bekaert" in log["exceptions"]["reason"]
    statuses = {o["output"]: o["status"] for o in log["outputs"]}
    assert statuses["results/appendix_b.csv"] == "pass"
    assert all(s in ("pass", "review", "fail") for s in statuses.values())


def test_existing_target_is_not_overwritten(built, capsys):
    before = built.path.read_bytes()
    rc = bundle_main([EXP, "--out", str(built.path)])
    assert rc == 2
    assert "already exists" in capsys.readouterr().err
    assert built.path.read_bytes() == before


def test_threshold_below_the_floor_is_refused(tmp_path, capsys):
    rc = bundle_main([EXP, "--threshold", "2", "--out", str(tmp_path / "x.zip")])
    assert rc == 2
    assert "below the floor 3" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_the_exception_the_bundle_fails_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "x.zip"
    rc = bundle_main([*overrides(full=False), "--no-exceptions", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "disclosure control failed" in err
    assert "results/uptake.csv" in err and "primary_outcome.counts.x1" in err
    assert list(tmp_path.iterdir()) == []  # no zip, no staging folder


def write_synthetic_csv(folder: Path, shuffle_seed: int | None = None) -> tuple[Path, Path]:
    from natexp.data.synthetic import generate

    folder.mkdir(parents=True, exist_ok=True)
    fam, chi = generate()
    if shuffle_seed is not None:
        fam = fam.sample(fraction=1.0, shuffle=True, seed=shuffle_seed)
        chi = chi.sample(fraction=1.0, shuffle=True, seed=shuffle_seed + 1)
    f, c = folder / "families.csv", folder / "children.csv"
    fam.write_csv(f)
    chi.write_csv(c)
    return f, c


def test_two_builds_from_rows_in_any_order_give_the_same_bytes(tmp_path):
    f1, c1 = write_synthetic_csv(tmp_path / "in1")
    f2, c2 = write_synthetic_csv(tmp_path / "in2", shuffle_seed=7)
    assert sha256_file(f1) != sha256_file(f2)
    zips = []
    for k, (f, c) in enumerate([(f1, c1), (f2, c2)]):
        res = build_bundle([*overrides(full=False), f"data.families={f}",
                            f"data.children={c}"], tmp_path / f"{k}.zip")
        zips.append(res.path.read_bytes())
    assert zips[0] == zips[1]
    m = members(tmp_path / "0.zip")
    inputs = json.loads(m["oxon_vs_rest-replication/data/inputs/inputs.json"])
    assert inputs["synthetic"] is False
    assert inputs["families"]["file"] == "families.csv" and inputs["families"]["rows"] == 330
    blob = b"\n".join(m.values())
    # described by an order-independent content checksum, not by the file bytes' SHA-256
    assert inputs["families"]["content_sha256"].encode() in blob
    assert sha256_file(f2).encode() not in blob and str(tmp_path).encode() not in blob
    cfg = json.loads(m["oxon_vs_rest-replication/data/config/resolved_config.json"])
    assert cfg["data"]["families"] == "families.csv"


def test_invalid_input_writes_nothing(tmp_path, capsys):
    f, c = write_synthetic_csv(tmp_path / "in")
    fam = pl.read_csv(f, infer_schema=False)
    fam.with_columns(pl.lit("Atlantis").alias("area")).write_csv(f)
    out = tmp_path / "out" / "x.zip"
    rc = bundle_main([EXP, f"data.families={f}", f"data.children={c}", "--out", str(out)])
    assert rc == 2
    assert "area not in the rollout schedule" in capsys.readouterr().err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
