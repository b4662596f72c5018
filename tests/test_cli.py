"""The command line end to end: run, overrides, multirun, bad input and bad config.

The README's default run and one bad input's exit status run as new ``python -m natexp``
processes; the other commands (the default run's second run for its byte identity among them)
run through the same entry point inside the test process (``tests.conftest.natexp_in_process``),
which skips importing natexp again.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from natexp import workers
from tests.conftest import natexp_in_process, natexp_process, tiny_families, write_table

SECRET = "ZZSECRET-5521"
# Runs whose test is about cohorts and data plumbing skip the slow parts (DoWhy, figures).
LIGHT = ("sensitivity.enabled=false", "report.enabled=false")


@pytest.fixture(scope="module")
def default_run(cli_default_run):
    """The session's full ``python -m natexp run +experiment=oxon_vs_rest`` (conftest)."""
    return cli_default_run


def test_default_run_writes_results_with_the_published_numbers(default_run):
    cwd, proc = default_run
    out = cwd / "outputs" / "oxon_vs_rest"
    assert {p.name for p in out.iterdir()} >= {
        "appendix_b.csv", "flow.csv", "results.json", "uptake.csv", "replication.csv",
        "balance_identified.csv", "balance_reached.csv", "secondary_referral_response.csv",
    }
    res = json.loads((out / "results.json").read_text())
    flow = {(r["step"], r["arm"]): r["n"] for r in res["flow"]}
    # Report, Methodology: "a cohort of 85 families ... of which 35 were contactable";
    # Data Findings: "Twenty ... Oxfordshire ... and fifteen ... from other areas".
    assert flow[("identified", "treatment")] + flow[("identified", "control")] == 85
    assert (flow[("reached", "treatment")], flow[("reached", "control")]) == (20, 15)
    # Figure 8: uptake 4 of 20 (treatment) vs 2 of 15 (control).
    assert res["primary_outcome"]["counts"] == {"x1": 4, "n1": 20, "x2": 2, "n2": 15}
    # Appendix B: chi-squared = 96.2426, 12.2932, 47.2268 (uncorrected Pearson).
    chi2 = {k: round(v["pearson_chi2"], 4) for k, v in res["appendix_b"].items()}
    assert chi2 == {"carer_parent": 96.2426, "cwcf": 12.2932, "sgo": 47.2268}
    assert res["inputs"]["synthetic"] is True and "SYNTHETIC" in res["inputs"]["statement"]
    assert len(res["inputs"]["families"]["sha256"]) == 64
    assert res["config"]["design"]["window_start"] == "2022-07-01"
    assert "4/20 vs control 2/15" in proc.stdout


def test_default_run_is_byte_identical(default_run, tmp_path):
    """A second run of the README's command writes the same bytes as the first. The first
    was a new process that used the run's helper process for DoWhy and half the figures; the
    second runs inside this test process (``natexp_in_process``), without a helper
    (``NATEXP_WORKERS=0``), after whatever this worker ran before: natexp's in-process caches
    and imported state must not change a byte either."""
    cwd, _ = default_run
    proc = natexp_in_process("run", "+experiment=oxon_vs_rest", cwd=tmp_path,
                             env={workers.WORKERS_ENV: "0"})
    assert proc.returncode == 0, proc.stderr
    first, second = cwd / "outputs" / "oxon_vs_rest", tmp_path / "outputs" / "oxon_vs_rest"
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    assert "report.html" in names and "figures/primary_forest.png" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_window_override_changes_the_cohort(tmp_path):
    proc = natexp_in_process("run", "+experiment=oxon_vs_rest", "design.window_end=2023-06-30",
                             "output_dir=short", *LIGHT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "short" / "results.json").read_text())
    flow = {(r["step"], r["arm"]): r["n"] for r in res["flow"]}
    assert res["design"]["window_end"] == "2023-06-30"
    assert flow[("identified", "treatment")] + flow[("identified", "control")] < 85
    assert flow[("outside_window", "all")] > 0


def test_unknown_config_key_is_rejected_and_nothing_written(tmp_path):
    proc = natexp_in_process("run", "+experiment=oxon_vs_rest", "+design.windw_end=2024-01-01",
                             cwd=tmp_path)
    assert proc.returncode == 2
    assert "windw_end" in proc.stderr and "nothing was written" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("override, suggestion", [
    ("design.window_ed=2024-01-01", "did you mean 'design.window_end'?"),
    ("+design.window_ed=2024-01-01", "did you mean 'design.window_end'?"),
    ("sensitivity.spec_curv=false", "did you mean 'sensitivity.spec_curve'?"),
    ("assignment.primary.blok=county", "did you mean 'assignment.primary.block'?"),
])
def test_misspelt_key_gets_a_did_you_mean_from_the_schema(tmp_path, override, suggestion):
    """Issue 19: Hydra alone advises "use +key" for a misspelt key; natexp names the schema's
    nearest key, exits 2 and writes nothing."""
    proc = natexp_in_process("run", override, cwd=tmp_path)
    assert proc.returncode == 2
    assert suggestion in proc.stderr and "use +" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_config_value_is_rejected_and_nothing_written(tmp_path):
    proc = natexp_in_process("run", "+experiment=oxon_vs_rest", "design.window_end=2024-13-45",
                             cwd=tmp_path)
    assert proc.returncode == 2
    assert "design.window_end must be a date" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_input_exits_2_names_the_problem_and_writes_nothing(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    fam = tiny_families().with_columns(pl.Series("area", ["Oxford", SECRET, "Slough", "Cherwell"]))
    write_table(fam, data / "families.csv")
    write_table(pl.DataFrame({"child_id": ["C1"], "family_id": ["F1"], "age": ["40"],
                              "carer": ["mother"], "cwcf": ["false"], "sgo": ["false"]}),
                data / "children.csv")
    proc = natexp_process("run", "+experiment=oxon_vs_rest",
                          f"data.families={data}/families.csv",
                          f"data.children={data}/children.csv", cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert "families.csv: column 'area': area not in the rollout schedule: 1 row(s) (rows 2)" \
        in proc.stderr
    assert "children.csv: column 'age': outside the allowed range 0-17" in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_real_files_run_and_are_checksummed(tmp_path):
    proc = natexp_in_process("synth", "--out", "syn", "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = natexp_in_process("run", "+experiment=oxon_vs_rest", "data.families=syn/families.csv",
                             "data.children=syn/children.csv", "data.as_of=2026-01-01", *LIGHT,
                             cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "outputs" / "oxon_vs_rest" / "results.json").read_text())
    assert res["inputs"]["synthetic"] is False
    assert res["inputs"]["families"]["file"] == "families.csv"
    assert res["primary_outcome"]["counts"] == {"x1": 4, "n1": 20, "x2": 2, "n2": 15}


def test_multirun_sweeps_designs(tmp_path):
    proc = natexp_in_process("run", "--multirun", "+experiment=oxon_vs_rest",
                             "design=oxon_vs_rest,staggered", *LIGHT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweep = tmp_path / "multirun" / "oxon_vs_rest"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0", "1"]
    assert (sweep / "multirun.yaml").is_file()  # Hydra's record of the sweep
    designs = [json.loads((j / "results.json").read_text())["design"]["name"] for j in jobs]
    assert designs == ["oxon_vs_rest", "staggered"]


def test_help_and_unknown_command(tmp_path):
    proc = natexp_in_process("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "run [OVERRIDES]" in proc.stdout and "synth" in proc.stdout
    proc = natexp_in_process("frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_settings_of_the_same_config_are_equal_and_independent():
    """to_settings keeps the settings of recent configs: a second conversion equals a fresh
    one (the cache emptied), shares no object with the first, and a bad value is still an
    error every time; a config of the lantern study has its own entry."""
    import dataclasses

    import natexp.config as C

    cfg = C.compose(["+experiment=oxon_vs_rest"])
    C._SETTINGS.clear()
    first = C.to_settings(cfg)
    again = C.to_settings(cfg)
    C._SETTINGS.clear()
    fresh = C.to_settings(cfg)
    assert first == again == fresh and again is not first
    assert dataclasses.asdict(again) == dataclasses.asdict(fresh)
    again.design.window_start = "1999-01-01"
    again.study["name"] = "changed"
    assert C.to_settings(cfg) == fresh  # a caller's change reaches no other caller
    lantern = C.to_settings(C.compose(["+experiment=lantern"]))
    assert lantern.get_study().name == "lantern" and fresh.get_study().name != "lantern"
    bad = C._plain(C.compose(["+experiment=oxon_vs_rest"]))
    bad["panel"]["n_boot"] = "many"
    for _ in range(2):
        with pytest.raises(C.ConfigError, match="could not be converted to Integer"):
            C.to_settings(bad)
    # 1 and 1.0 and True are different configs (JSON keeps them apart)
    assert C._settings_key({"a": 1}) != C._settings_key({"a": 1.0}) != C._settings_key(
        {"a": True})
    assert C._settings_key({"a": object()}) is None
