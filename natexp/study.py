"""A study described as data: its outcome, its own input columns, tables, labels and wording.

natexp is a toolkit for any programme that went live area by area. What differs between
studies (the outcome column, the extra columns of the extract, which descriptive and secondary
tables the report shows, the words it uses, who holds the data) is declared in a study
description, ``conf/study/<name>.yaml``, chosen with ``study=<name>`` (docs/new-study.md).
The library reads everything study-specific from a :class:`Study`; nothing in ``natexp/``
names a particular study.

Examples
--------
>>> s = Study.from_dict({"name": "demo", "outcome": {"column": "took_up"}})
>>> s.outcome.column, s.outcome.reached, s.label("took_up")
('took_up', 'followup_reached', 'took_up')
>>> Study.from_dict({"name": "demo", "outcom": {}})
Traceback (most recent call last):
...
natexp.config.ConfigError: study: unknown key 'outcom' (did you mean 'outcome'?)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

__all__ = [
    "ColumnSpec",
    "DescriptiveFigure",
    "DescriptiveSpec",
    "FollowupStage",
    "OutcomeSpec",
    "QuestionSpec",
    "RouteSpec",
    "SECONDARY_KINDS",
    "SecondarySpec",
    "Study",
    "SyntheticSpec",
    "Wording",
]

#: Kinds of secondary table (see :class:`SecondarySpec`).
SECONDARY_KINDS = ("category", "flags", "consent", "crossed", "outcome_routes")
#: Kinds of a study's own input column.
COLUMN_KINDS = ("bool", "category", "int", "string", "date")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _error(msg: str) -> Exception:
    from natexp.config import ConfigError

    return ConfigError(f"study: {msg}")


def _check_keys(where: str, data: Mapping[str, Any], allowed: list[str]) -> None:
    for key in data:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (allowed: {', '.join(allowed)})"
            raise _error(f"unknown key {where}{key!r}{hint}")


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(f"{where} must be a mapping")
    return value


def _frozen_map(value: Mapping[Any, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType({str(k): v for k, v in (value or {}).items()})


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _error(f"{where} must be a lower-case name (letters, digits, _), got {value!r}")
    return value


def _build(cls: type, where: str, data: Any, **convert: Any) -> Any:
    """A frozen dataclass from a mapping: unknown keys rejected, nested values converted."""
    data = _mapping(where, data)
    names = [f.name for f in fields(cls)]
    _check_keys(f"{where}." if where else "", data, names)
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = convert[key](value) if key in convert else value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise _error(f"{where or 'study'}: {exc}") from None


@dataclass(frozen=True)
class ColumnSpec:
    """One of the study's own input columns (beyond the core contract).

    Parameters
    ----------
    name : str
        Column name, exactly as in the file.
    kind : str
        ``bool``, ``category``, ``int``, ``string`` or ``date``.
    nullable : bool
        Whether a missing value is allowed.
    values : tuple of str
        Allowed values of a ``category``.
    lower, upper : int or None
        Bounds of an ``int``.
    label : str
        Words for the column in tables, figures and prose.
    """

    name: str
    kind: str = "bool"
    nullable: bool = False
    values: tuple[str, ...] = ()
    lower: int | None = None
    upper: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        _name("column name", self.name)
        if self.kind not in COLUMN_KINDS:
            raise _error(f"column {self.name!r}: kind must be one of {COLUMN_KINDS}")
        object.__setattr__(self, "values", tuple(str(v) for v in self.values or ()))
        if self.kind == "category" and not self.values:
            raise _error(f"column {self.name!r}: a category needs its values")

    def to_column(self) -> Any:
        """The :class:`natexp.data.schema.Column` of the input contract."""
        from natexp.data.schema import Column

        return Column(self.name, self.kind, nullable=self.nullable, values=self.values,
                      lower=self.lower, upper=self.upper)


@dataclass(frozen=True)
class RouteSpec:
    """How support was reached: a category column among families with the outcome."""

    column: str
    programme: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_map(self.labels))

    @property
    def values(self) -> tuple[str, ...]:
        """The route values, in the order of :attr:`labels`."""
        return tuple(self.labels)


@dataclass(frozen=True)
class OutcomeSpec:
    """The primary outcome: a boolean column of the families table.

    Parameters
    ----------
    column : str
        The boolean outcome column (True: the outcome happened, e.g. support taken up).
    label, short_label : str
        Words for it in prose and in table headers.
    reached : str
        The boolean column saying whether the family was reached by the follow-up (null: not
        called); the primary comparison is among reached families.
    missing_when_unreached : bool
        True: the input contract allows the outcome to be missing for families not reached.
    published : str
        Which published table or figure the primary comparison reproduces ("" if none).
    route : RouteSpec or None
        How support was reached, if the study records it.
    verb : str
        The outcome as a verb phrase in the primary sentence ("4 of 20 treatment families
        *took up support*").
    noun : str
        The outcome as a noun in the primary sentence ("whether the programme changed
        *uptake*").
    yes_label, no_label : str
        Table headers and figure legend for families with and without the outcome.
    """

    column: str = "outcome"
    label: str = ""
    short_label: str = ""
    reached: str = "followup_reached"
    missing_when_unreached: bool = False
    published: str = ""
    route: RouteSpec | None = None
    verb: str = "had the outcome"
    noun: str = "the outcome"
    yes_label: str = "Yes"
    no_label: str = "No"

    def __post_init__(self) -> None:
        _name("outcome.column", self.column)
        _name("outcome.reached", self.reached)
        if not self.label:
            object.__setattr__(self, "label", self.column)
        if not self.short_label:
            object.__setattr__(self, "short_label", self.label)


@dataclass(frozen=True)
class FollowupStage:
    """A stage of the follow-up after "reached", counted in the flow diagram."""

    key: str
    column: str
    label: str = ""


@dataclass(frozen=True)
class QuestionSpec:
    """One row of the descriptive table: children (or families) for whom ``column`` is in
    ``yes_values``, compared between the two groups of ``DescriptiveSpec.by``."""

    key: str
    column: str
    yes_values: tuple[Any, ...] = (True,)
    label: str = ""
    short_label: str = ""
    published_chi2: float | None = None

    def __post_init__(self) -> None:
        _name("descriptive question key", self.key)
        object.__setattr__(self, "yes_values", tuple(self.yes_values))
        if not self.label:
            object.__setattr__(self, "label", self.key)
        if not self.short_label:
            object.__setattr__(self, "short_label", self.label)


@dataclass(frozen=True)
class DescriptiveFigure:
    """A figure of the descriptive table: percentage bars of ``questions`` by group.

    ``key`` and ``published`` name its file (``fig<published numbers>_<key>``); ``title``
    is drawn on it and ``caption`` written under it.
    """

    key: str
    questions: tuple[str, ...] = ()
    title: str = ""
    caption: str = ""
    published: str = ""

    def __post_init__(self) -> None:
        _name("descriptive figure key", self.key)
        object.__setattr__(self, "questions", tuple(self.questions or ()))
        if not self.questions:
            raise _error(f"descriptive figure {self.key!r} needs questions")
        if not self.title:
            object.__setattr__(self, "title", self.key.replace("_", " ").capitalize())
        if not self.caption:
            object.__setattr__(self, "caption", self.title)


@dataclass(frozen=True)
class DescriptiveSpec:
    """A descriptive comparison of every child by a two-valued family column.

    ``key`` names it in results and outputs; ``groups`` maps the two values of ``by`` to words
    (first: the group whose proportion comes first in a difference). ``population`` and
    ``contrast`` word the child-level estimand, ``family_population`` and ``family_contrast``
    the family-level one (families as clusters of children).
    (first: the group whose proportion comes first in a difference). The report reads:
    ``group_labels`` (group word -> table header, e.g. ``female: Mother imprisoned``),
    ``intro`` (a sentence with ``{n}``, all children, and ``{first}``, those of the first
    group), ``about`` (what the comparison describes, for the limitations), ``figures``
    (:class:`DescriptiveFigure`, bars of some questions by group) and ``ages_published``
    (the published figure the children-by-age figure reproduces, "" if none).
    """

    key: str = "descriptive"
    title: str = "Children by group"
    published: str = ""
    by: str = "parent_sex"
    groups: Mapping[str, str] = field(default_factory=lambda: {"F": "female", "M": "male"})
    questions: tuple[QuestionSpec, ...] = ()
    population: str = "every child of the input data"
    contrast: str = ""
    family_population: str = "every family of the input data"
    family_contrast: str = ""
    group_labels: Mapping[str, str] = field(default_factory=dict)
    intro: str = ""
    about: str = ""
    figures: tuple[DescriptiveFigure, ...] = ()
    ages_published: str = ""

    def __post_init__(self) -> None:
        _name("descriptive.key", self.key)
        object.__setattr__(self, "groups", _frozen_map(self.groups))
        if len(self.groups) != 2:
            raise _error("descriptive.groups must name exactly two values of descriptive.by")
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys):
            raise _error("descriptive.questions: duplicate key")
        first, second = self.groups.values()
        if not self.contrast:
            object.__setattr__(self, "contrast", f"children with {self.by} {first} vs "
                                                 f"children with {self.by} {second}")
        if not self.family_contrast:
            object.__setattr__(self, "family_contrast", f"families with {self.by} {first} vs "
                                                        f"families with {self.by} {second}")
        object.__setattr__(self, "group_labels", _frozen_map(self.group_labels))
        for fig in self.figures:
            unknown = [q for q in fig.questions if q not in keys]
            if unknown:
                raise _error(f"descriptive.figures {fig.key!r}: unknown question(s) {unknown}")

    def group_label(self, group: str) -> str:
        """Words for a group (a value of :attr:`groups`) in table headers."""
        return self.group_labels.get(group) or f"{self.by} {group}"

    @property
    def published_chi2(self) -> dict[str, float | None]:
        """Published chi-squared statistic per question (None where none was published)."""
        return {q.key: q.published_chi2 for q in self.questions}


@dataclass(frozen=True)
class SecondarySpec:
    """A secondary table among reached families, by arm.

    ``kind`` (one of :data:`SECONDARY_KINDS`):

    * ``category``: one category column ``column``, a row per value of ``labels``;
    * ``flags``: boolean ``columns`` (key -> column), among families with any answer;
    * ``consent``: ``columns.consent`` and ``columns.completed`` (completed counted among the
      consenting);
    * ``crossed``: the ``cells`` (name -> [row value, col value]) of ``columns.row`` x
      ``columns.col``, a yes/no count of each column in ``items`` and a count of each listed
      value of the columns in ``tally`` (column -> values);
    * ``outcome_routes``: the primary outcome by arm and by its route.

    ``row`` names the column of a ``category`` or ``flags`` table's CSV that holds the value
    or flag key (default ``value``).
    The report reads ``heading`` (its heading, figure title and table caption; default
    ``title``), ``caption`` (under its figure; default ``title``) and ``sentence``, a
    summary with a ``{name}`` field per count of the table's total (written "x of n (p%)";
    ``{a+b}`` sums counts, ``{name:n}`` is the bare count, ``{n}`` the base; for
    ``outcome_routes``: ``{treatment}``, ``{control}`` and ``{routes}``); empty: a generic
    sentence from the labels.
    """

    key: str
    kind: str
    title: str = ""
    published: str = ""
    column: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    cells: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    items: tuple[str, ...] = ()
    tally: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    row: str = "value"
    heading: str = ""
    caption: str = ""
    sentence: str = ""

    def __post_init__(self) -> None:
        _name("secondary key", self.key)
        if self.kind not in SECONDARY_KINDS:
            raise _error(f"secondary {self.key!r}: kind must be one of {SECONDARY_KINDS}")
        object.__setattr__(self, "columns", _frozen_map(self.columns))
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        object.__setattr__(self, "cells", _frozen_map(
            {k: tuple(v) for k, v in (self.cells or {}).items()}))
        object.__setattr__(self, "items", tuple(self.items or ()))
        object.__setattr__(self, "tally", _frozen_map(
            {k: tuple(v) for k, v in (self.tally or {}).items()}))
        _name(f"secondary {self.key!r} row", self.row)
        need = {"category": ("column",), "flags": ("columns",),
                "consent": ("columns.consent", "columns.completed"),
                "crossed": ("columns.row", "columns.col", "cells")}.get(self.kind, ())
        for what in need:
            head, _, sub = what.partition(".")
            value = getattr(self, head)
            if not value or (sub and sub not in value):
                raise _error(f"secondary {self.key!r} ({self.kind}) needs {what}")
        if not self.title:
            object.__setattr__(self, "title", self.key.replace("_", " "))
        if not self.heading:
            object.__setattr__(self, "heading", self.title)
        if not self.caption:
            object.__setattr__(self, "caption", self.title)


@dataclass(frozen=True)
class SyntheticSpec:
    """Where synthetic data come from when no extract is given.

    ``hook``: ``"FILE.py:FUNCTION"`` relative to the study's folder ``experiments/<study>/``
    (or an absolute path), a function called with the keywords ``rollout``, ``study``,
    ``seed``, ``n_families``, ``uptake_effect``, ``followup``, ``as_of`` and ``design`` that
    returns ``(families, children)`` polars frames (:func:`natexp.data.synthetic.load_hook`);
    None: natexp's generic generator (:func:`natexp.data.synthetic.generate_for`).
    ``statement``: what every output says about the hook's data (it must begin "SYNTHETIC
    DATA"); empty, or no hook: natexp's own words naming the generator.
    """

    hook: str | None = None
    statement: str = ""

    def __post_init__(self) -> None:
        if self.statement and not self.statement.startswith("SYNTHETIC DATA"):
            raise _error('synthetic.statement must begin with "SYNTHETIC DATA"')


@dataclass(frozen=True)
class Wording:
    """Words the report uses for arms, units and people."""

    treated_arm: str = "areas where the programme was live"
    control_arm: str = "areas not yet live"
    family: str = "family"
    families: str = "families"
    parent: str = "parent"
    child: str = "child"
    children: str = "children"


@dataclass(frozen=True)
class Study:
    """A study: everything study-specific the library reads (see the module docstring).

    Build one with :meth:`from_dict` (a ``conf/study/*.yaml`` mapping); it is immutable.
    A run's study is ``settings.get_study()`` or ``Run.study``.

    Parameters
    ----------
    name, title, programme : str
        The study's key (lower-case), its title, and the programme's name in prose.
    source : str
        The published report the run is compared with ("" if none).
    data_holders : str
        Who holds the record-level data and how access is requested (bundle README).
    wording : Wording
        Words for arms, units and people.
    outcome : OutcomeSpec
        The primary outcome column and the reached column.
    columns : Mapping of str to tuple of ColumnSpec
        The study's own input columns, ``families`` and ``children``.
    followup_stages : tuple of FollowupStage
        Follow-up stages after "reached" in the flow diagram.
    descriptive : DescriptiveSpec or None
        The descriptive comparison of every child.
    secondary : tuple of SecondarySpec
        Secondary tables among reached families.
    labels : Mapping of str to str
        The label dictionary (variable -> words) of every table, figure and sentence.
    synthetic : SyntheticSpec
        Where synthetic data come from when no extract is given.
    balance : tuple of str
        The study's own category columns shown in the baseline balance table.

    Examples
    --------
    >>> s = Study.from_dict({"name": "demo", "outcome": {"column": "joined",
    ...                      "label": "joined a club"}})
    >>> s.label("joined"), s.outcome.reached
    ('joined a club', 'followup_reached')
    """

    name: str = "study"
    title: str = ""
    programme: str = "the programme"
    source: str = ""
    data_holders: str = ""
    wording: Wording = field(default_factory=Wording)
    outcome: OutcomeSpec = field(default_factory=OutcomeSpec)
    columns: Mapping[str, tuple[ColumnSpec, ...]] = field(default_factory=dict)
    followup_stages: tuple[FollowupStage, ...] = ()
    descriptive: DescriptiveSpec | None = None
    secondary: tuple[SecondarySpec, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)
    #: The study's own category columns shown in the baseline balance table (children's or
    #: families' columns of kind ``category``, each with its declared values).
    balance: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _name("name", self.name)
        object.__setattr__(self, "balance", tuple(self.balance or ()))
        for name in self.balance:
            spec = next((c for t in ("families", "children")
                         for c in self.columns.get(t, ()) if c.name == name), None)
            if spec is None or spec.kind != "category":
                raise _error(f"balance: {name!r} is not one of the study's category columns")
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        cols = {k: tuple(self.columns.get(k, ())) for k in ("families", "children")}
        extra = set(self.columns) - set(cols)
        if extra:
            raise _error(f"columns: only 'families' and 'children', got {sorted(extra)}")
        object.__setattr__(self, "columns", MappingProxyType(cols))
        keys = [s.key for s in self.secondary]
        if len(set(keys)) != len(keys):
            raise _error("secondary: duplicate key")
        if not self.title:
            object.__setattr__(self, "title", self.name)
        self._check_references()

    def _check_references(self) -> None:
        """Every column a table, stage or route uses is in the input contract."""
        from natexp.data.schema import CORE

        fam = ({c.name for c in CORE["families"]} | {c.name for c in self.columns["families"]}
               | {self.outcome.column, self.outcome.reached})
        kids = {c.name for c in CORE["children"]} | {c.name for c in self.columns["children"]}
        used: list[tuple[str, str, set[str]]] = []
        if self.outcome.route is not None:
            used.append(("outcome.route.column", self.outcome.route.column, fam))
        for st in self.followup_stages:
            used.append((f"followup_stages {st.key!r}", st.column, fam))
        for sec in self.secondary:
            names = ([sec.column] if sec.column else []) + [
                v for k, v in sec.columns.items()] + list(sec.items)
            used += [(f"secondary {sec.key!r}", n, fam) for n in names]
        if self.descriptive is not None:
            used.append(("descriptive.by", self.descriptive.by, fam))
            used += [(f"descriptive question {q.key!r}", q.column, kids | fam)
                     for q in self.descriptive.questions]
        for where, name, known in used:
            if name not in known:
                near = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise _error(f"{where} uses column {name!r}, which is neither a core column nor "
                             f"declared under columns{hint}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Study:
        """Parse a study description (a ``conf/study/*.yaml`` mapping).

        Raises
        ------
        natexp.config.ConfigError
            On an unknown key (with a did-you-mean suggestion) or an invalid value.
        """
        data = dict(_mapping("study", data))

        def many(spec_cls: type, where: str) -> Any:
            def conv(items: Any) -> tuple:
                if items is None:
                    return ()
                if not isinstance(items, list | tuple):
                    raise _error(f"{where} must be a list")
                return tuple(_build(spec_cls, f"{where}[{i}]", x) for i, x in enumerate(items))
            return conv

        def outcome(x: Any) -> OutcomeSpec:
            return _build(OutcomeSpec, "outcome", x,
                          route=lambda r: None if r is None else _build(RouteSpec, "outcome.route", r))

        def columns(x: Any) -> dict:
            x = _mapping("columns", x)
            return {k: many(ColumnSpec, f"columns.{k}")(v) for k, v in x.items()}

        def descriptive(x: Any) -> DescriptiveSpec | None:
            if x is None:
                return None
            return _build(DescriptiveSpec, "descriptive", x,
                          questions=many(QuestionSpec, "descriptive.questions"),
                          figures=many(DescriptiveFigure, "descriptive.figures"))

        return _build(cls, "", data, outcome=outcome, columns=columns,
                      wording=lambda x: _build(Wording, "wording", x),
                      followup_stages=many(FollowupStage, "followup_stages"),
                      descriptive=descriptive, secondary=many(SecondarySpec, "secondary"),
                      synthetic=lambda x: _build(SyntheticSpec, "synthetic", x))

    # ------------------------------------------------------------------ lookups
    def label(self, name: str) -> str:
        """Words for a variable: the study's label dictionary, then its column labels, else the
        name itself."""
        if name in self.labels:
            return self.labels[name]
        for col in (*self.columns["families"], *self.columns["children"]):
            if col.name == name and col.label:
                return col.label
        if name == self.outcome.column:
            return self.outcome.label
        return name

    def secondary_spec(self, key: str) -> SecondarySpec:
        """The secondary table declared with ``key`` (KeyError if none)."""
        for spec in self.secondary:
            if spec.key == key:
                return spec
        raise KeyError(key)

    def column_specs(self, table: str) -> tuple[ColumnSpec, ...]:
        """The study's own columns of ``table`` (``families`` or ``children``)."""
        return self.columns[table]
