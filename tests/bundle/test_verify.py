"""``python -m natexp verify``: round trip from a fresh folder; tampering, changed inputs and
changed package versions are each detected (exit status 1, ``differs`` with the values)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from natexp.bundle.build import build_bundle
from natexp.bundle.cli import verify_main

pytestmark = pytest.mark.slow

EXP = "+experiment=oxon_vs_rest"
ROOT = "oxon_vs_rest-replication"


def fast_overrides() -> list[str]:
    """oxon_vs_rest on the embedded data, without the slow sensitivity analyses and report."""
    from natexp.config import compose

    cfg = compose([EXP])
    out = [EXP]
    if "sensitivity" in cfg:
        out.append("sensitivity.enabled=false")
    if "report" in cfg:
        out.append("report.enabled=false")
    return out


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("built")
    return build_bundle(fast_overrides(), d / "oxon.zip").path


def unzip(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
    return folder / ROOT


def lines(text: str, kind: str, status: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(f"{kind:<9} {status:<8} ")]


def test_round_trip_from_a_fresh_folder(bundle_zip, tmp_path, monkeypatch, capsys):
    fresh = tmp_path / "fresh"
    unzip(bundle_zip, fresh)
    monkeypatch.chdir(fresh)  # no repository conf/ here: the bundle carries its config
    rc = verify_main([ROOT])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert lines(out, "manifest", "matches")
    assert not [ln for ln in out.splitlines() if " differs " in ln]
    matched = {ln.split()[-1] for ln in lines(out, "output", "matches")}
    assert {"results/results.json", "results/flow.csv", "results/uptake.csv",
            "results/appendix_b.csv", "inputs/inputs.json",
            "disclosure/disclosure_log.json"} <= matched
    assert len(lines(out, "input", "matches")) == 2
    assert "every output matches" in out


def test_tampered_file_and_changed_package_version_are_detected(bundle_zip, tmp_path, capsys):
    """One re-run, two faults: a result file edited after packaging (the manifest catches it
    and the re-run shows the true value) and a bundle recorded with another polars version."""
    bag = unzip(bundle_zip, tmp_path / "t")
    flow = bag / "data/results/flow.csv"
    text = flow.read_text()
    row = "8,reached,treatment,Reached by the follow-up call,20"
    assert row in text
    flow.write_text(text.replace(row, row[:-2] + "21"))
    env_path = bag / "data/environment/environment.json"
    env = json.loads(env_path.read_text())
    installed = env["packages"]["polars"]
    env["packages"]["polars"] = "0.0.1"
    env_path.write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")
    rc = verify_main([str(bag)])
    out = capsys.readouterr().out
    assert rc == 3  # differences found
    tampered = {ln.split()[2] for ln in lines(out, "manifest", "differs")}
    assert tampered == {"data/results/flow.csv", "data/environment/environment.json"}
    diff = [ln for ln in out.splitlines() if "differs  results/flow.csv" in ln]
    assert diff
    assert "n: bundle 21, regenerated 20" in out.split(diff[0], 1)[1].splitlines()[1]
    pkg = lines(out, "package", "differs")
    assert [ln.split()[-1] for ln in pkg] == ["polars"]
    assert f"bundle 0.0.1, installed {installed}" in out
    # every other output still matches
    assert [ln.split()[-1] for ln in lines(out, "output", "differs")] == ["results/flow.csv"]


def test_verify_regenerates_and_compares_the_readme(bundle_zip, tmp_path, capsys):
    """Before: verify did not regenerate the README, so an edited README whose manifest line
    was updated too went unnoticed."""
    import hashlib

    bag = unzip(bundle_zip, tmp_path / "r")
    readme = bag / "README.md"
    text = readme.read_text()
    assert "- Overall status: **" in text
    edited = text.replace("- Overall status: **", "- Overall status: **pass (edited) ", 1)
    readme.write_text(edited)
    tags = bag / "tagmanifest-sha256.txt"
    digest = hashlib.sha256(edited.encode()).hexdigest()
    tags.write_text("".join(
        f"{digest}  README.md\n" if ln.endswith("  README.md") else ln + "\n"
        for ln in tags.read_text().splitlines()))
    rc = verify_main([str(bag)])
    out = capsys.readouterr().out
    assert rc == 3, out
    assert not lines(out, "manifest", "differs")  # the manifests were made to agree
    assert [ln.split()[-1] for ln in lines(out, "output", "differs")] == ["README.md"]
    detail = out.split("differs  README.md", 1)[1].splitlines()[1]
    assert "pass (edited)" in detail and "regenerated" in detail


def test_verify_help_and_exit_codes_agree(capsys):
    """Before: verify's help said 1 for differences while it exits 3 (1 is an internal error
    everywhere in natexp, as ``python -m natexp --help`` says)."""
    from natexp.__main__ import HELP

    assert verify_main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 every output matches; 3 something differs" in text
    assert "2 cannot verify" in text and "1 internal error" in text
    assert "3 verify found differences" in " ".join(HELP.split())
    assert verify_main(["no-such-bundle.zip"]) == 2
