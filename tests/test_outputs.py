"""Every output declared once (issue 16): natexp/outputs.py is the one registry the pipeline,
the bundle's provenance and disclosure control read; a run returns a frozen, typed Run."""

from __future__ import annotations

import dataclasses

import pytest

from natexp.bundle import disclosure
from natexp.bundle.build import output_sources
from natexp.config import ConfigError, compose, to_settings
from natexp.outputs import DISCLOSURE_CLASSES, declared_tables
from natexp.pipeline import Run
from natexp.study import Study


@pytest.fixture(scope="module")
def light_run(example_run) -> Run:
    # the session's in-process example run (conftest; DoWhy off, nothing written): this test is
    # about which tables a run writes, not their numbers; it only reads the run
    return example_run


def test_every_table_a_run_writes_is_declared_once(light_run):
    declared = [o.name for o in declared_tables(light_run.study)]
    assert len(declared) == len(set(declared))
    assert set(light_run.tables) <= set(declared)
    assert {o.name for o in light_run.outputs} == set(light_run.tables)
    assert all(o.disclosure in DISCLOSURE_CLASSES for o in light_run.outputs)


def test_run_is_frozen_and_knows_its_study(light_run):
    with pytest.raises(dataclasses.FrozenInstanceError):
        light_run.output_dir = None  # type: ignore[misc]
    assert light_run.study.outcome.column == "chas_support"
    assert isinstance(light_run.notices, tuple)


def test_the_bundle_and_disclosure_read_the_declarations():
    study = to_settings(compose(["+experiment=lantern"])).get_study()
    sources = output_sources(study)
    for out in declared_tables(study):
        assert sources[out.name] == (out.source, out.config)
    # the fictional study's own tables are declared from its description, no code
    own = {o.name for o in declared_tables(study) if o.section in ("descriptive", "secondary")}
    assert study.descriptive.key in own
    assert {f"secondary_{s.key}" for s in study.secondary} <= own
    uncleared = {o.name for o in declared_tables(study) if o.disclosure == "uncleared"}
    derived = {o.name for o in declared_tables(study) if o.disclosure == "derived"}
    assert uncleared == set(disclosure.UNCLEARED_TABLES)
    assert derived == set(disclosure.DERIVED_TABLES)


def test_a_study_table_may_not_take_a_natexp_output_name():
    study = Study.from_dict({
        "name": "clash", "secondary": [], "descriptive": {"key": "flow", "questions": []}})
    with pytest.raises(ConfigError, match="clash with natexp's own outputs"):
        declared_tables(study)
