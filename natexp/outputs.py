"""Every output a run can write, declared once.

A run writes ``results.json``, one CSV per table, figures and the report. Each table is declared
here, once: the code that produces it, the configuration that drives it, the report section it
belongs to and how disclosure control treats it. The bundle's provenance, disclosure control's
lists of uncleared and derived tables and the pipeline's check of what it writes all read these
declarations; the study's own tables (its descriptive table and secondary tables) are declared
from its description, so a new study's outputs need no code. Figures are declared by
:func:`natexp.report.render.figure_specs` from the same study description.

Examples
--------
>>> from natexp.study import Study
>>> s = Study.from_dict({"name": "demo", "secondary": [
...     {"key": "mood", "kind": "category", "column": "mood"}],
...     "columns": {"families": [{"name": "mood", "kind": "category", "values": ["ok"]}]}})
>>> [o.name for o in declared_tables(s) if o.section == "secondary"]
['secondary_mood']
>>> table("tipping_point", s).disclosure
'derived'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DISCLOSURE_CLASSES", "Output", "declared_tables", "table"]

#: How disclosure control treats a table: ``counts`` (every count checked against the
#: threshold, by the rules of its section), ``derived`` (every cell computed from cleared
#: counts: withheld as a whole when one of them is suppressed), ``uncleared`` (built from counts
#: the rules do not track: withheld in publication mode, with ``withheld_because``), ``estimates``
#: (no count of families: estimates and their intervals), ``published`` (published numbers and
#: the run's values of them).
DISCLOSURE_CLASSES = ("counts", "derived", "uncleared", "estimates", "published")


@dataclass(frozen=True)
class Output:
    """One table a run can write as ``<name>.csv``.

    Attributes
    ----------
    name : str
        The table's name (results key of ``RunResult.tables`` and CSV stem).
    section : str
        Report section: ``design``, ``primary``, ``descriptive``, ``secondary``,
        ``sensitivity``, ``staggered`` or ``replication``.
    source : str
        The code that produces it.
    config : str
        The configuration keys that drive it.
    disclosure : str
        One of :data:`DISCLOSURE_CLASSES`.
    withheld_because : str
        For an ``uncleared`` table: the key of
        :data:`natexp.bundle.disclosure.UNCLEARED_SENSITIVITY` saying why it is withheld.
    published : str
        The published table or figure it reproduces ("" if none).
    derived_from : str
        For a ``derived`` table: the counts it is computed from (``nonresponse``: the primary
        2x2 table and the identified and reached families per arm).
    """

    name: str
    section: str
    source: str
    config: str
    disclosure: str = "counts"
    withheld_because: str = ""
    published: str = ""
    derived_from: str = ""

    def __post_init__(self) -> None:
        if self.disclosure not in DISCLOSURE_CLASSES:
            raise ValueError(f"output {self.name!r}: disclosure must be one of "
                             f"{DISCLOSURE_CLASSES}")
        if (self.disclosure == "derived") != bool(self.derived_from):
            raise ValueError(f"output {self.name!r}: a derived table, and only one, names the "
                             "counts it is derived from")
        if (self.disclosure == "uncleared") != bool(self.withheld_because):
            raise ValueError(f"output {self.name!r}: an uncleared table, and only one, says "
                             "why it is withheld")


_SENS = "natexp.pipeline.sensitivity"

#: Tables every study's run can write (besides the study's own, see :func:`declared_tables`).
_FIXED: tuple[Output, ...] = (
    Output("flow", "design", "natexp.data.cohort.flow_table", "design.*, rollout.*"),
    Output("uptake", "primary",
           "natexp.pipeline.primary_outcome (natexp.causal.twobytwo.compare_groups)",
           "design.*, analysis.confidence_level"),
    Output("children_by_age", "descriptive", "natexp.data.tables.children_by_age",
           "data.*, synthetic.*"),
    Output("balance_identified", "design", "natexp.causal.balance.balance_table",
           "design.*, rollout.*"),
    Output("balance_reached", "design", "natexp.causal.balance.balance_table",
           "design.*, rollout.*"),
    Output("replication", "replication", "natexp.experiments.replication_table",
           "experiments/<experiment>/published.yaml", disclosure="published"),
    Output("sensitivity", "sensitivity", _SENS, "sensitivity.*", disclosure="estimates"),
    Output("tipping_point", "sensitivity", _SENS, "sensitivity.*", disclosure="derived",
           derived_from="nonresponse"),
    Output("pattern_mixture", "sensitivity", f"{_SENS} (natexp.causal.sensitivity)",
           "sensitivity.*", disclosure="derived", derived_from="nonresponse"),
    Output("randomization_distribution", "sensitivity",
           f"{_SENS} (natexp.causal.randomization)", "assignment.*",
           disclosure="uncleared", withheld_because="randomization"),
    Output("placebo_in_space", "sensitivity", f"{_SENS} (natexp.causal.randomization)",
           "sensitivity.*, assignment.*", disclosure="uncleared",
           withheld_because="placebo_in_space"),
    Output("placebo_in_time", "sensitivity", f"{_SENS} (natexp.causal.randomization)",
           "sensitivity.placebo_months", disclosure="uncleared",
           withheld_because="placebo_in_time"),
    Output("leave_one_area_out", "sensitivity", _SENS, "sensitivity.*",
           disclosure="uncleared", withheld_because="leave_one_out"),
    Output("specification_curve", "sensitivity", "natexp.speccurve.specification_curve",
           "sensitivity.spec_*", disclosure="uncleared",
           withheld_because="specification_curve"),
    Output("dowhy", "sensitivity", f"{_SENS} (natexp.causal.dowhy_model)", "sensitivity.*",
           disclosure="uncleared", withheld_because="dowhy"),
    Output("panel", "staggered", "natexp.pipeline.staggered_panel", "panel.*",
           disclosure="estimates"),
    Output("att_gt", "staggered", "natexp.pipeline.staggered_panel", "panel.*",
           disclosure="estimates"),
    Output("event_study", "staggered", "natexp.pipeline.staggered_panel", "panel.*",
           disclosure="estimates"),
)


def declared_tables(study: Any) -> tuple[Output, ...]:
    """Every table a run of ``study`` can write, in report order.

    Parameters
    ----------
    study : natexp.study.Study

    Returns
    -------
    tuple of Output
        The fixed tables and the study's own: its descriptive table (``descriptive.key``) and
        ``secondary_<key>`` for each declared secondary table.
    """
    desc: list[Output] = []
    own: list[Output] = []
    if study.descriptive is not None:
        desc.append(Output(
            study.descriptive.key, "descriptive",
            "natexp.pipeline.descriptive_table (natexp.data.tables.descriptive_counts, "
            "natexp.causal.twobytwo.compare_groups)",
            "study.descriptive, analysis.confidence_level",
            published=study.descriptive.published))
    for spec in study.secondary:
        own.append(Output(f"secondary_{spec.key}", "secondary",
                          f"natexp.data.tables.{spec.kind}_table", "study.secondary, design.*",
                          published=spec.published))
    names = [o.name for o in _FIXED]
    clash = [o.name for o in (*desc, *own) if o.name in names]
    if clash:
        from natexp.config import ConfigError

        raise ConfigError(f"study: table name(s) {clash} clash with natexp's own outputs; "
                          "choose another descriptive key or secondary key")
    return (_FIXED[0], *desc, *_FIXED[1:5], *own, *_FIXED[5:])


def table(name: str, study: Any) -> Output:
    """The declaration of table ``name`` (KeyError when no such table is declared)."""
    for out in declared_tables(study):
        if out.name == name:
            return out
    raise KeyError(name)
