"""``python -m natexp new-study NAME --out DIR``: scaffold a study outside the repository.

A study is configuration, not code. The scaffold writes, under ``DIR``::

    conf/study/NAME.yaml        the study description (outcome, columns, tables, wording)
    conf/rollout/NAME.yaml      the areas, their counties and go-live dates
    conf/design/NAME.yaml       window, follow-up date, treatment counties
    conf/assignment/NAME.yaml   how the programme was assigned to areas
    conf/experiment/NAME.yaml   the experiment selecting the four above
    experiments/NAME/README.md        the analysis plan (a template)
    experiments/NAME/published.yaml   the study's published numbers (none yet)

Every placeholder (areas, counties, dates, columns, words) is marked ``TO EDIT`` and valid, so
the scaffold runs as it is on synthetic data::

    cd DIR
    python -m natexp run --config-dir conf +experiment=NAME

``--config-dir conf`` adds ``DIR/conf`` to Hydra's config search path before natexp's own
configs, so natexp's ``config.yaml`` (and its schema) composes with the study's groups; the
scaffold therefore writes no ``config.yaml`` (one there would replace natexp's). natexp finds
``DIR/experiments/NAME/`` beside the config folder (:mod:`natexp.paths`). The walk-through is
docs/new-study.md.

Safety: nothing is ever overwritten. When any target file exists, or ``NAME`` would shadow one
of natexp's own configs or studies, nothing is written (exit status 2); a write that fails half
way removes what it wrote.

Examples
--------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> [p.as_posix() for p in scaffold("my_study", d)][:2]
['conf/study/my_study.yaml', 'conf/rollout/my_study.yaml']
>>> scaffold("my_study", d)
Traceback (most recent call last):
...
natexp.newstudy.NewStudyError: new-study: conf/study/my_study.yaml already exists in the output folder; nothing was written (natexp never overwrites a file)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from natexp.errors import NatexpError

__all__ = ["GROUPS", "NewStudyError", "main", "scaffold", "scaffold_files"]

#: The config groups a study fills (``conf/<group>/NAME.yaml``), in the order written.
GROUPS = ("study", "rollout", "design", "assignment", "experiment")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
EXIT_OK, EXIT_USAGE = 0, 2


class NewStudyError(NatexpError, ValueError):
    """The scaffold cannot be written (bad name, an existing file, an unusable folder)."""


_HEAD = """\
# Study __NAME__ (scaffolded by `python -m natexp new-study`). Every value marked TO EDIT is a
# placeholder that runs as it is on synthetic data: replace it with your programme's own.
# Walk-through: docs/new-study.md in natexp's repository.
"""

_STUDY = _HEAD + """\
# The study description: natexp checks every key (an unknown key is an error).
name: __NAME__
title: "Study __NAME__ (TO EDIT: the study's title)"
programme: "the programme (TO EDIT: its name)"
# The published report the run is compared with (bundle README, report footer).
source: >-
  TO EDIT: the report or paper this study reproduces, or "None (not yet published)".
# Who holds the record-level data and how a reviewer requests access (bundle README).
data_holders: >-
  TO EDIT: the data controller, who matched and analysed the extract, and how a reviewer
  requests access (contact, agreement, secure environment, expected time).
# Words the report uses for the units, arms and people (TO EDIT).
wording:
  treated_arm: "areas where the programme was live"
  control_arm: "areas not yet live"
  family: family
  families: families
  parent: parent
  child: child
  children: children

# The primary outcome: a boolean column of the families table, known for families reached by
# the follow-up (`reached`: a boolean column, null = not in the call list).
outcome:
  column: support_uptake             # TO EDIT: your outcome column
  label: took up support             # TO EDIT
  short_label: Support uptake        # TO EDIT
  reached: followup_reached
  missing_when_unreached: false
  published: ""                      # the published table or figure it reproduces, if any
  route: null

# Your own input columns beyond the core contract (kind: bool | category | int | string | date).
columns:
  families:
    - {name: support_uptake, kind: bool, label: took up support}
    - {name: contact_route, kind: category, nullable: true, values: [phone, visit, letter],
       label: how the family was first contacted}            # TO EDIT or remove
  children:
    - {name: in_care, kind: bool, label: child in state care}  # TO EDIT or remove

# Follow-up stages after "reached", counted in the flow diagram (boolean family columns).
followup_stages: []

# A descriptive comparison of every child by a two-valued family column (null: none).
descriptive:
  key: children_profile
  title: "Children by sex of the imprisoned parent (TO EDIT)"
  published: ""
  by: parent_sex
  groups: {F: female, M: male}
  questions:
    - key: in_care
      label: Is the child in state care?
      short_label: Child in state care
      column: in_care
      yes_values: [true]

# Secondary tables among reached families, by arm. kind: category | flags | consent |
# crossed | outcome_routes (docs/new-study.md explains each).
secondary:
  - key: contact_route
    kind: category
    column: contact_route
    title: How the family was first contacted
    labels: {phone: By phone, visit: By a visit, letter: By letter}

# Labels of variables in tables, figures and prose.
labels:
  parent_sex: sex of the imprisoned parent
  followup_reached: reached by the follow-up call
  support_uptake: took up support

# Synthetic data when no extract is given: null = natexp's generic generator for the rollout
# and the columns above; or "FILE.py:FUNCTION" in experiments/__NAME__/.
synthetic:
  hook: null
"""

_ROLLOUT = _HEAD + """\
# The rollout schedule: one entry per area (the `area` values of your extract). go_live: the
# day the programme went live there (null: never live); phase: the rollout wave (or null).
# TO EDIT: every area, county and date below is a placeholder.
name: __NAME__
areas:
  - {name: Area A1, county: County A, go_live: "2022-03-01", phase: 1}   # TO EDIT
  - {name: Area A2, county: County A, go_live: "2022-03-01", phase: 1}   # TO EDIT
  - {name: Area B1, county: County B, go_live: "2023-01-15", phase: 2}   # TO EDIT
  - {name: Area B2, county: County B, go_live: "2023-01-15", phase: 2}   # TO EDIT
  - {name: Area C1, county: County C, go_live: null, phase: null}        # TO EDIT
  - {name: Area C2, county: County C, go_live: null, phase: null}        # TO EDIT
"""

_DESIGN = _HEAD + """\
# The cohort design. kind: treated_counties (live areas of treatment_counties vs areas not yet
# live at the reception date) or staggered (any live area vs areas not yet live); name: any.
name: __NAME__
kind: treated_counties
window_start: "2022-04-01"      # TO EDIT: first reception date in the study
window_end: "2023-09-30"        # TO EDIT: last reception date in the study
followup_date: "2024-03-01"     # TO EDIT: the day the outcome was measured
custody_at_followup: false      # true: only families whose parent was still in custody then
treatment_counties: [County A]  # TO EDIT
phases: null
"""

_ASSIGNMENT = _HEAD + """\
# How the programme was assigned to areas: the assignment mechanism every randomization and
# placebo test declares. block: a rollout column (area, county, phase) or null (every unit its
# own block); merge: groups of block values that were one decision.
unit: area
primary:
  name: county
  block: county
  merge: []
  description: "TO EDIT: which one of the 3 counties went first (how it was really decided)"
alternatives:
  - name: any_areas
    block: null
    merge: []
    description: "any 2 of the 6 areas (more assignments than the design allowed: false precision)"
evidence_scale: "Maryland Scientific Methods Scale"
evidence_level: 2                 # TO EDIT: your rating
evidence_reason: "TO EDIT: why the design earns this rating."
"""

_EXPERIMENT = """\
# @package _global_
""" + _HEAD + """\
# The experiment: selects this study's description, rollout, design and assignment. Run it
# from the folder above conf/ with:
#   python -m natexp run --config-dir conf +experiment=__NAME__
# Analysis plan: experiments/__NAME__/README.md
defaults:
  - override /study: __NAME__
  - override /rollout: __NAME__
  - override /design: __NAME__
  - override /assignment: __NAME__

experiment: __NAME__
description: "TO EDIT: one line saying what is compared with what, and when."
"""

_PLAN = """\
# Experiment `__NAME__`: analysis plan (TO EDIT)

Scaffolded by `python -m natexp new-study`. Write this plan BEFORE looking at the outcome
data, and keep it true. Every section below is TO EDIT.

Run: `python -m natexp run --config-dir conf +experiment=__NAME__` (from the folder holding
`conf/` and `experiments/`). Configs: `conf/experiment/__NAME__.yaml`, study description
`conf/study/__NAME__.yaml`, rollout `conf/rollout/__NAME__.yaml`, design
`conf/design/__NAME__.yaml`, assignment `conf/assignment/__NAME__.yaml`.

## Research questions

1. TO EDIT: did families take up support more often where the programme was live?

## Design

- **Population**: TO EDIT (who, received into prison when, where, counted at which follow-up).
- **Treatment**: TO EDIT (the treatment counties' areas, live at the reception date).
- **Control**: TO EDIT (areas not yet live at the reception date).
- **Excluded by design**: TO EDIT (e.g. live areas outside the treatment counties).
- **Assignment**: TO EDIT (how the first areas were chosen, and so which assignments were
  possible: `conf/assignment/__NAME__.yaml`).

## Estimands

- **Primary**: TO EDIT (risk difference in the outcome, treatment minus control, among
  families reached by the follow-up).
- **Secondary**: TO EDIT.

## Outcomes

TO EDIT: every column of your extract the analysis uses, its table and meaning.

## Sensitivity analyses

TO EDIT: which of natexp's sensitivity analyses matter for this design, and why.

## What would change the conclusion

TO EDIT.

## Published numbers

`published.yaml` lists every number the study published that natexp can recompute (none
yet).
"""

_PUBLISHED = """\
# The numbers study __NAME__ published, each checked against every run (none yet).
# Fields of an item and the recompute grammar: natexp/experiments.py (and natexp's own
# experiments/oxon_vs_rest/published.yaml as an example). An empty list: nothing published.
items: []
"""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise NewStudyError(
            "new-study: NAME must be a lower-case name (a letter, then letters, digits or _; "
            "at most 63 characters)")
    from natexp.paths import CONF_DIR, EXPERIMENTS_DIR

    own = [f"conf/{g}/{name}.yaml" for g in GROUPS if (CONF_DIR / g / f"{name}.yaml").exists()]
    if (EXPERIMENTS_DIR / name).exists():
        own.append(f"experiments/{name}/")
    if own:
        raise NewStudyError(
            f"new-study: {name!r} is already one of natexp's own names ({', '.join(own)}); a "
            "study of that name would shadow it: choose another name. Nothing was written.")


def scaffold_files(name: str) -> dict[Path, str]:
    """The files of the scaffold of study ``name``: relative path -> text.

    Raises
    ------
    NewStudyError
        When ``name`` is not a lower-case name or is one of natexp's own.
    """
    _check_name(name)
    texts = {"study": _STUDY, "rollout": _ROLLOUT, "design": _DESIGN,
             "assignment": _ASSIGNMENT, "experiment": _EXPERIMENT}
    files = {Path("conf") / g / f"{name}.yaml": texts[g] for g in GROUPS}
    files[Path("experiments") / name / "README.md"] = _PLAN
    files[Path("experiments") / name / "published.yaml"] = _PUBLISHED
    return {path: text.replace("__NAME__", name) for path, text in files.items()}


def scaffold(name: str, out: str | Path) -> list[Path]:
    """Write the scaffold of study ``name`` under ``out`` (created if missing).

    Parameters
    ----------
    name : str
        The study's name (lower case, digits, ``_``); it names every file.
    out : str or Path
        The folder that will hold ``conf/`` and ``experiments/``.

    Returns
    -------
    list of Path
        The files written, relative to ``out``.

    Raises
    ------
    NewStudyError
        On a bad or reserved name, an existing target file, or a folder that cannot be
        written; in every case nothing is left written.
    """
    files = scaffold_files(name)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NewStudyError("new-study: --out is a file, not a folder; nothing was written")
    for rel in files:
        probe = out
        for part in rel.parts:
            probe = probe / part
            if probe.exists() and (probe != out / rel) and not probe.is_dir():
                raise NewStudyError(f"new-study: {probe.relative_to(out).as_posix()} is a "
                                    "file, not a folder; nothing was written")
        if (out / rel).exists() or (out / rel).is_symlink():
            raise NewStudyError(
                f"new-study: {rel.as_posix()} already exists in the output folder; nothing "
                "was written (natexp never overwrites a file)")
    made_dirs: list[Path] = []
    written: list[Path] = []
    try:
        for rel, text in files.items():
            target = out / rel
            missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
            for folder in reversed(missing):
                folder.mkdir()
                made_dirs.append(folder)
            with open(target, "x", encoding="utf-8", newline="\n") as fh:
                written.append(target)
                fh.write(text)
    except BaseException as exc:  # also Ctrl-C and natexp's signal unwinding
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for folder in reversed(made_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise NewStudyError(f"new-study: the output folder cannot be written "
                                f"({type(exc).__name__}); nothing was written") from None
        raise
    return list(files)


def main(args: list[str]) -> int:
    """``python -m natexp new-study NAME --out DIR``; returns the exit status (0, or 2 with
    nothing written)."""
    parser = argparse.ArgumentParser(
        prog="python -m natexp new-study",
        description="Scaffold a study outside natexp's repository: DIR/conf/{study,rollout,"
        "design,assignment,experiment}/NAME.yaml and DIR/experiments/NAME/ (analysis-plan "
        "template, empty published.yaml). Placeholders are marked TO EDIT and run as they are "
        "on synthetic data. Never overwrites a file. Walk-through: docs/new-study.md.",
    )
    parser.add_argument("name", help="the study's name (lower case, digits, _)")
    parser.add_argument("--out", required=True, type=Path,
                        help="the folder to hold conf/ and experiments/ (created if missing)")
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        written = scaffold(ns.name, ns.out)
    except NewStudyError as exc:
        print(f"natexp {exc}", file=sys.stderr)
        return EXIT_USAGE
    for rel in written:
        print(f"wrote {rel.as_posix()}")
    print(f"\nNext: edit every 'TO EDIT' (docs/new-study.md), then run it from {ns.out}:\n"
          f"  cd {ns.out}\n"
          f"  python -m natexp run --config-dir conf +experiment={ns.name}")
    return EXIT_OK
