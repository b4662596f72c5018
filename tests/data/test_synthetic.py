"""Tests of natexp's generic synthetic generator and of the study hook that can replace it.

The generic generator (:func:`natexp.data.synthetic.generate_for`) draws data for ANY rollout
and study. These tests use a fictional rollout (six areas in three counties, go-live 2022-03-01
and 2023-01-15, one county never live) and a fictional study with its own outcome column, and
check the properties the generator promises, each against plain polars/numpy recomputation
(no natexp number is compared with itself): determinism by seed, every declared column with its
dtype and allowed values, nulls only where the study allows them, the true effect of going live,
and the follow-up structure. The example study's fitted hook is tested against its report in
test_synthetic_paramount.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from natexp.causal.result import InvalidInputError
from natexp.config import ConfigError, DesignConfig
from natexp.data.rollout import load_rollout, rollout_frame
from natexp.data.synthetic import (
    BASE_UPTAKE,
    default_study,
    generate,
    generate_for,
    load_hook,
    statement,
    write,
)
from natexp.data.validate import validate_frames
from natexp.paths import CONF_DIR
from natexp.study import Study
from tests.conftest import natexp_in_process

FIRST, SECOND = dt.date(2022, 3, 1), dt.date(2023, 1, 15)
ROLLOUT = {
    "name": "riverland",
    "areas": [
        {"name": "Alder", "county": "Northmoor", "go_live": "2022-03-01", "phase": 1},
        {"name": "Birch", "county": "Northmoor", "go_live": "2022-03-01", "phase": 1},
        {"name": "Cedar", "county": "Eastfen", "go_live": "2023-01-15", "phase": 2},
        {"name": "Damson", "county": "Eastfen", "go_live": "2023-01-15", "phase": 2},
        {"name": "Elm", "county": "Southvale", "go_live": None},
        {"name": "Fir", "county": "Southvale", "go_live": None},
    ],
}
DESIGN = {
    "name": "riverland_window",
    "kind": "staggered",
    "window_start": "2022-06-01",
    "window_end": "2023-12-31",
    "followup_date": "2024-03-01",
    "custody_at_followup": True,
    "treatment_counties": ["Northmoor"],
}
STUDY = {
    "name": "riverland",
    "title": "Riverland family link (fictional)",
    "outcome": {"column": "linked_support", "reached": "contacted",
                "route": {"column": "link_route", "programme": "link",
                          "labels": {"link": "through the link service", "gp": "through a GP"}}},
    "columns": {
        "families": [
            {"name": "linked_support", "kind": "bool"},
            {"name": "link_route", "kind": "category", "nullable": True,
             "values": ["link", "gp"]},
            {"name": "visit_offered", "kind": "bool"},
            {"name": "answer", "kind": "category", "nullable": True,
             "values": ["yes", "no", "unsure"]},
            {"name": "meetings", "kind": "int", "lower": 0, "upper": 5},
            {"name": "next_review", "kind": "date"},
            {"name": "agreed_survey", "kind": "bool", "nullable": True},
            {"name": "did_survey", "kind": "bool", "nullable": True},
        ],
        "children": [
            {"name": "in_care", "kind": "bool"},
            {"name": "school_type", "kind": "category", "nullable": True,
             "values": ["primary", "secondary"]},
        ],
    },
    "followup_stages": [{"key": "agreed", "column": "agreed_survey"},
                        {"key": "surveyed", "column": "did_survey"}],
    "secondary": [{"key": "answer", "kind": "category", "column": "answer",
                   "labels": {"yes": "Yes", "no": "No", "unsure": "Unsure"}}],
}
DTYPES = {"bool": pl.Boolean, "category": pl.String, "int": pl.Int64, "date": pl.Date}


@pytest.fixture(scope="module")
def rollout() -> pl.DataFrame:
    return rollout_frame(ROLLOUT["areas"])


@pytest.fixture(scope="module")
def study() -> Study:
    return Study.from_dict(STUDY)


@pytest.fixture(scope="module")
def design():
    return DesignConfig(**DESIGN).to_design()


@pytest.fixture(scope="module")
def data(rollout, study, design):
    return generate_for(rollout=rollout, study=study, design=design, n_families=4000, seed=5)


def live_expr(rollout: pl.DataFrame, families: pl.DataFrame) -> pl.Series:
    joined = families.join(rollout.select("area", "go_live"), on="area", how="left")
    return (joined["go_live"].is_not_null() & (joined["go_live"] <= joined["reception_date"]))


# ---- determinism --------------------------------------------------------------------------


def test_deterministic_by_seed(rollout, study, design, data):
    again = generate_for(rollout=rollout, study=study, design=design, n_families=4000, seed=5)
    assert again[0].equals(data[0]) and again[1].equals(data[1])
    other = generate_for(rollout=rollout, study=study, design=design, n_families=4000, seed=6)
    assert not other[0].equals(data[0])


def test_generate_uses_generic_generator_without_hook(rollout, study, design, data):
    fam, chi = generate(rollout=rollout, study=study, design=design, n_families=4000, seed=5)
    assert fam.equals(data[0]) and chi.equals(data[1])


# ---- columns: every declared one, with its dtype, values and nullability -------------------


def test_declared_columns_kinds_and_values(study, data):
    fam, chi = data
    for table, frame in (("families", fam), ("children", chi)):
        for spec in study.columns[table]:
            assert spec.name in frame.columns, spec.name
            col = frame[spec.name]
            assert col.dtype == DTYPES[spec.kind], spec.name
            if not spec.nullable:
                assert col.null_count() == 0, spec.name
            if spec.kind == "category":
                assert set(col.drop_nulls().unique()) <= set(spec.values), spec.name
            if spec.kind == "int":
                assert col.min() >= spec.lower and col.max() <= spec.upper, spec.name
    # Every category value and both booleans occur with 4000 families.
    assert set(fam["answer"].drop_nulls().unique()) == {"yes", "no", "unsure"}
    assert set(fam["visit_offered"].unique()) == {True, False}
    # The reached column is drawn too (a study must declare every column its tables use).
    assert fam["contacted"].dtype == pl.Boolean
    # Core contract columns.
    assert fam.columns[:5] == ["family_id", "area", "reception_date", "release_date",
                               "parent_sex"]
    assert chi.columns[:3] == ["child_id", "family_id", "age"]
    assert set(fam["parent_sex"].unique()) == {"F", "M"}


def test_ids_children_and_ages(data):
    fam, chi = data
    assert fam["family_id"].is_unique().all() and chi["child_id"].is_unique().all()
    assert set(chi["family_id"].unique()) == set(fam["family_id"])  # every family has a child
    per_family = chi.group_by("family_id").len()["len"]
    assert per_family.min() >= 1 and per_family.max() <= 5
    assert chi["age"].min() >= 0 and chi["age"].max() <= 17
    assert chi["age"].n_unique() == 18
    # A nullable children column is sometimes missing, never always.
    assert 0 < chi["school_type"].null_count() < chi.height


def test_dates_span_the_rollout(rollout, data):
    fam, _ = data
    assert fam["reception_date"].min() >= FIRST - dt.timedelta(days=365)
    assert fam["reception_date"].max() <= SECOND + dt.timedelta(days=365)
    assert set(fam["area"].unique()) == set(rollout["area"])
    released = fam.filter(pl.col("release_date").is_not_null())
    assert (released["release_date"] > released["reception_date"]).all()
    assert fam["release_date"].max() <= SECOND + dt.timedelta(days=365)
    assert fam["next_review"].min() >= fam["reception_date"].min()
    # The never-live county is never live; the others are live after their go-live only.
    live = live_expr(rollout, fam)
    never = fam["area"].is_in(["Elm", "Fir"])
    assert not (live & never).any()
    assert live.any() and (~live & ~never).any()


def test_followup_structure(study, design, data):
    fam, _ = data
    ws, we, fu = design.window_start, design.window_end, design.followup_date
    on_list = (fam["reception_date"].is_between(ws, we)
               & (fam["release_date"].is_null() | (fam["release_date"] > fu)))
    # The call list is the design's cohort: reached is known there and null elsewhere.
    assert (fam["contacted"].is_not_null() == on_list).all()
    reached = fam["contacted"].fill_null(False)
    assert 0.35 < reached.sum() / on_list.sum() < 0.55
    # Nullable answers only for reached families (and most reached families answer).
    for name in ("answer", "agreed_survey", "did_survey"):
        assert not (fam[name].is_not_null() & ~reached).any(), name
        assert (fam[name].is_not_null() == reached).all(), name
    # A follow-up stage only after the one before it.
    assert not (fam["did_survey"].fill_null(False) & ~fam["agreed_survey"].fill_null(False)).any()
    assert fam["did_survey"].fill_null(False).any()
    # The outcome is recorded for every family (missing_when_unreached is false).
    assert fam["linked_support"].null_count() == 0
    # The route: recorded exactly where the outcome is True.
    assert (fam["link_route"].is_not_null() == fam["linked_support"]).all()


def test_route_is_the_programme_where_live(rollout, data):
    fam, _ = data
    live = live_expr(rollout, fam)
    took = fam["linked_support"]
    assert (fam.filter(took & live)["link_route"] == "link").all()
    assert (fam.filter(took & ~live)["link_route"] == "gp").all()


def test_no_followup_means_no_call_list(rollout, study):
    fam, _ = generate_for(rollout=rollout, study=study, n_families=500, seed=1, followup=False)
    for name in ("contacted", "answer", "agreed_survey", "did_survey"):
        assert fam[name].null_count() == fam.height, name
    assert fam["linked_support"].null_count() == 0


def test_outcome_missing_when_unreached(rollout, design):
    st = Study.from_dict({**STUDY, "outcome": {**STUDY["outcome"],
                                               "missing_when_unreached": True}})
    fam, _ = generate_for(rollout=rollout, study=st, design=design, n_families=1000, seed=2)
    reached = fam["contacted"].fill_null(False)
    assert (fam["linked_support"].is_not_null() == reached).all()


# ---- the true effect of going live ---------------------------------------------------------


@pytest.mark.parametrize("effect", [0.2, -0.1])
def test_uptake_effect_is_the_true_effect(rollout, study, effect):
    fam, _ = generate_for(rollout=rollout, study=study, n_families=40_000, seed=3,
                          uptake_effect=effect)
    live = live_expr(rollout, fam)
    took = fam["linked_support"]
    rate_live = took.filter(live).mean()
    rate_not = took.filter(~live).mean()
    # Binomial standard errors here are below 0.004 per arm: 0.02 is over 4 SE of a difference.
    assert rate_not == pytest.approx(BASE_UPTAKE, abs=0.02)
    assert rate_live - rate_not == pytest.approx(effect, abs=0.02)


# ---- natexp's input validation -------------------------------------------------------------


def test_generic_data_of_the_example_study_pass_validation():
    # The example study's columns drawn by the generic generator (its hook switched off)
    # pass natexp's input validation, on the example rollout and on the fictional one.
    mapping = yaml.safe_load((CONF_DIR / "study" / "paramount.yaml").read_text())
    mapping["synthetic"] = {"hook": None}
    st = Study.from_dict(mapping)
    for rollout in (load_rollout(CONF_DIR / "rollout" / "thames_valley.yaml"),
                    rollout_frame(ROLLOUT["areas"])):
        fam, chi = generate(rollout=rollout, study=st, n_families=600, seed=4,
                            as_of=dt.date(2026, 1, 1))
        inputs = validate_frames(fam, chi, rollout["area"], as_of=dt.date(2026, 1, 1),
                                 study=st)
        assert inputs.families.collect().height == 600
        assert inputs.children.collect().height == chi.height
        assert not inputs.notices


# ---- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"n_families": 0}, {"n_families": 2.5}, {"seed": -1}, {"uptake_effect": 0.9},
    {"uptake_effect": "big"}, {"followup": "yes"}, {"as_of": "2024-01-01"},
    {"as_of": dt.date(2019, 1, 1)},
])
def test_wrong_input_raises(rollout, study, kwargs):
    with pytest.raises(InvalidInputError):
        generate_for(rollout=rollout, study=study, **kwargs)


def test_rollout_never_live_needs_a_window(study, design):
    never = rollout_frame([{"name": "Elm", "county": "Southvale", "go_live": None}])
    with pytest.raises(InvalidInputError, match="no go-live date"):
        generate_for(rollout=never, study=study)
    fam, _ = generate_for(rollout=never, study=study, design=design, n_families=50)
    assert fam["reception_date"].min() >= design.window_start


def test_as_of_cuts_every_date(rollout, study):
    cut = dt.date(2023, 6, 30)
    fam, _ = generate_for(rollout=rollout, study=study, n_families=1000, as_of=cut)
    for name in ("reception_date", "release_date", "next_review"):
        assert fam[name].max() <= cut, name


# ---- the study hook ------------------------------------------------------------------------


def _hook_study(hook: str | None) -> Study:
    return Study.from_dict({**STUDY, "synthetic": {"hook": hook}})


HOOK_SOURCE = '''
import polars as pl

def make(*, rollout, study, seed, n_families, **kw):
    fam = pl.DataFrame({"family_id": ["F1"], "area": [rollout["area"][0]],
                        "seed": [seed], "study": [study.name]})
    return fam, pl.DataFrame({"child_id": ["C1"], "family_id": ["F1"]})

def not_frames(**kw):
    return "nothing"

NOT_CALLABLE = 3
'''


def test_hook_is_loaded_from_the_study_folder(tmp_path, rollout):
    (tmp_path / "gen.py").write_text(HOOK_SOURCE)
    fam, chi = generate(rollout=rollout, study=_hook_study("gen.py:make"), seed=9,
                        study_dir=tmp_path)
    assert fam.row(0) == ("F1", "Alder", 9, "riverland") and chi.height == 1
    assert load_hook(_hook_study(None)) is None


def test_example_study_hook_file_exists():
    st = default_study()
    assert callable(load_hook(st))
    assert st.synthetic.statement.startswith("SYNTHETIC DATA")


@pytest.mark.parametrize("hook, match", [
    ("missing.py:make", r"file missing\.py not found in"),
    ("gen.py:absent", r"defines no function 'absent'"),
    ("gen.py:NOT_CALLABLE", r"defines no function 'NOT_CALLABLE'"),
    ("gen.py", r'must be "FILE\.py:FUNCTION"'),
    ("gen.txt:make", r'must be "FILE\.py:FUNCTION"'),
    ("broken.py:make", r"broken\.py could not be imported \(ZeroDivisionError"),
])
def test_hook_errors_are_config_errors(tmp_path, rollout, hook, match):
    (tmp_path / "gen.py").write_text(HOOK_SOURCE)
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    with pytest.raises(ConfigError, match=match) as info:
        generate(rollout=rollout, study=_hook_study(hook), study_dir=tmp_path)
    assert "study 'riverland': synthetic.hook" in str(info.value)


def test_hook_default_folder_is_experiments_study_name(rollout):
    with pytest.raises(ConfigError, match=r"not found in experiments/riverland/"):
        generate(rollout=rollout, study=_hook_study("synthetic.py:generate"))


def test_hook_must_return_two_frames(tmp_path, rollout):
    (tmp_path / "gen.py").write_text(HOOK_SOURCE)
    with pytest.raises(ConfigError, match="must return a"):
        generate(rollout=rollout, study=_hook_study("gen.py:not_frames"), study_dir=tmp_path)


def test_statement_names_the_generator(study):
    assert statement(study).startswith("SYNTHETIC DATA") and "generic" in statement(study)
    hooked = statement(_hook_study("gen.py:make"))
    assert hooked.startswith("SYNTHETIC DATA") and "gen.py:make" in hooked
    own = {"hook": "gen.py:make", "statement": "SYNTHETIC DATA: ours."}
    assert statement(Study.from_dict({**STUDY, "synthetic": own})) == "SYNTHETIC DATA: ours."
    # The study's words describe its hook's data: without the hook natexp names its generator.
    no_hook = Study.from_dict({**STUDY, "synthetic": {**own, "hook": None}})
    assert "generic" in statement(no_hook)
    with pytest.raises(ConfigError, match="must begin"):
        Study.from_dict({**STUDY, "synthetic": {"statement": "made up"}})


# ---- the synth command and a run on a new study -------------------------------------------


def _write_configs(tmp_path: Path, study: dict) -> Path:
    conf = tmp_path / "conf"
    for group, name, doc in (("rollout", "riverland", ROLLOUT), ("study", "riverland", study),
                             ("design", "riverland_window", DESIGN)):
        (conf / group).mkdir(parents=True, exist_ok=True)
        (conf / group / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return conf


def test_synth_cli_for_a_rollout_and_study(tmp_path, rollout, study, design):
    conf = _write_configs(tmp_path, STUDY)
    proc = natexp_in_process("synth", "--out", "syn", "--rollout",
                             str(conf / "rollout/riverland.yaml"), "--study",
                             str(conf / "study/riverland.yaml"), "--design",
                             str(conf / "design/riverland_window.yaml"), "--families", "300",
                             "--seed", "11", "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SYNTHETIC" in proc.stdout
    fam = pl.read_csv(tmp_path / "syn" / "families.csv", try_parse_dates=True)
    want, _ = generate_for(rollout=rollout, study=study, design=design, n_families=300, seed=11)
    assert fam.height == 300 and fam.columns == want.columns
    assert fam["family_id"].to_list() == want["family_id"].to_list()
    assert fam["linked_support"].to_list() == want["linked_support"].to_list()


@pytest.mark.parametrize("args, match", [
    (["--study", "nowhere.yaml"], "cannot be read"),
    (["--rollout", "nowhere.yaml"], "no such file"),
    (["--families", "0"], "n_families"),
])
def test_synth_cli_bad_input_exits_2_and_writes_nothing(tmp_path, args, match):
    proc = natexp_in_process("synth", "--out", "syn", *args, cwd=tmp_path)
    assert proc.returncode == 2 and match in proc.stderr
    assert "nothing was written" in proc.stderr
    assert not (tmp_path / "syn").exists()


def test_run_new_rollout_without_hook_end_to_end(tmp_path):
    # A study with no synthetic hook (the example study's columns, hook switched off) on a new
    # rollout and window runs end to end on synthetic data, and says so.
    conf = _write_configs(tmp_path, STUDY)
    proc = natexp_in_process("run", "--config-dir", str(conf), "rollout=riverland",
                             "design=riverland_window", "study.synthetic.hook=null",
                             "sensitivity.enabled=false", "report.enabled=false", "output_dir=out",
                             cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    inputs = results["inputs"]
    assert inputs["synthetic"] is True
    assert inputs["statement"].startswith("SYNTHETIC DATA") and "generic" in inputs["statement"]
    assert inputs["families"]["rows"] == 1000
    assert {r["area"] for r in results["rollout"]} == {a["name"] for a in ROLLOUT["areas"]}
    # The flow's input step holds every synthetic family.
    assert {(r["step"], r["arm"]): r["n"] for r in results["flow"]}[("input", "all")] == 1000


def test_run_new_study_with_its_own_outcome_end_to_end(tmp_path):
    conf = _write_configs(tmp_path, STUDY)
    proc = natexp_in_process("run", "--config-dir", str(conf), "study=riverland",
                             "rollout=riverland", "design=riverland_window",
                             "sensitivity.enabled=false", "report.enabled=false", "output_dir=out",
                             cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["inputs"]["synthetic"] is True
    assert results["inputs"]["statement"].startswith("SYNTHETIC DATA")


def test_write_passes_study_and_rollout(tmp_path, rollout, study):
    paths = write(tmp_path, fmt="csv", rollout=rollout, study=study, n_families=100, seed=3)
    fam = pl.read_csv(paths["families"])
    assert fam.height == 100 and "linked_support" in fam.columns
