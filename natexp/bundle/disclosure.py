"""Disclosure control of everything natexp publishes (UK trusted-research-environment practice).

The rules follow the default settings of ACRO, the output checker of the SACRO project used by UK
trusted research environments (``acro/default.yaml``: ``safe_threshold: 10``,
``zeros_are_disclosive: True``), and its three statuses:

``pass``
    every count in the output is at least the threshold (or a structural zero, or a count the
    data owner already published, recorded as an exception with its reason).
``review``
    the output is safe as published, but something was done to it that an output checker
    should see: cells suppressed (shown as ``[c]``, the Government Statistical Service's
    marker for confidential values), statistics withheld, or content the rules cannot check.
``fail``
    the output would disclose a count below the threshold. A ``fail`` blocks the bundle.

How an output is checked
------------------------
Every number of a run is located (in ``results.json`` and in each CSV table) and classified: a
*count* (a quantity with a key such as ``secondary.uptake.treatment.yes``; the same quantity
may appear in several places under one key), a *derived* value (a percentage, a mean, an odds
ratio, a p-value ...) with the counts it is computed from, *public* (a number the report
printed), *meta* (configuration, labels) or *unknown* (a section these rules do not know).
Counts are tied together by the relations an attacker can use: totals equal the sum of their
parts (row and column totals, the cohort flow), one quantity equals another in another table,
and one count cannot exceed another.

* A count is **disclosive** when it is below the threshold, or zero (unless structural), and
  not recorded as an exception. Exceptions are bound to data (:class:`Exceptions`): they apply
  only to the inputs whose content checksums they record (or to the embedded published-margin
  synthetic data); for any other input they are ignored and the log says so. A disclosive count that the relations pin down from published
  counts alone is already public (for example ``6 = 4 + 2`` from two published cells).
* Without suppression (the default, as ACRO's ``suppress=False``) any remaining disclosive count
  makes the outputs that show it ``fail``.
* With suppression (``DisclosureSettings(suppress=True)``, or an experiment's exception file
  with ``suppress_other_cells: true``) disclosive counts are suppressed (*primary*), and more
  counts are suppressed (*secondary*) until no suppressed count can be recovered from what is
  shown: the lower and upper bounds of every suppressed count, given every shown count, all the
  relations and non-negativity, are computed by linear programming (scipy's HiGHS) and must
  differ. This covers totals, sums of parts, the same count in two tables and differencing
  between a total and its parts. Every derived value that uses a suppressed count is withheld
  (statistics of a suppressed 2x2 table: odds ratio, exact p-values ...).
* Content the rules do not recognise (a new results section, a new CSV table, a figure, a
  report) is shown only when no count of the run had to be suppressed (and, for a CSV table,
  when its whole numbers are all at least the threshold); otherwise it is withheld, because it
  may have been built from uncleared counts. Build figures from :func:`publication_mode`'s
  cleared results instead (natexp's report does: see ``natexp.bundle.build.RENDERERS``).
* Sensitivity analyses: those computed only from the primary 2x2 table and the flow's
  identified and reached counts (the non-response tipping point and Manski bounds, the
  E-values, the leave-one-out headline) are derived values of those counts, shown when they are
  cleared and withheld as a whole when one is suppressed. Those computed from counts these
  rules do not track (the randomization test and placebo go-live dates, both over all
  identified families; leave one area out, by area; the specification curve, other cohorts that
  overlap the published one, so differencing applies; DoWhy, a regression on records) are
  withheld whenever disclosure control is in publication mode (suppression on, or any count
  suppressed), each with its reason in the log.

Examples
--------
>>> s = DisclosureSettings()
>>> s.threshold, s.zeros_disclosive, s.suppress
(10, True, False)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from natexp.causal.result import NatexpError
from natexp.study import Study

__all__ = [
    "FLOOR",
    "SUPPRESSED",
    "DisclosureError",
    "DisclosureLog",
    "DisclosureSettings",
    "Exceptions",
    "OutputCheck",
    "Publication",
    "exceptions_path",
    "publication_mode",
]

#: Marker of a suppressed or withheld value (the GSS convention for "confidential").
SUPPRESSED = "[c]"
#: Marker of a whole results section that could not be checked and was withheld.
WITHHELD_SECTION = "[withheld: not recognised by natexp's disclosure rules]"
#: Start of the marker of a results section withheld by disclosure control (a reason follows).
WITHHELD_DC = "[withheld: disclosure control"
#: No configuration may set the threshold below this.
FLOOR = 3
DEFAULT_THRESHOLD = 10
EXCEPTIONS_FILE = "disclosure_exceptions.yaml"
STATUSES = ("pass", "review", "fail")


class DisclosureError(NatexpError, ValueError):
    """Invalid disclosure settings or exception file (a usage error: nothing is written)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class DisclosureSettings:
    """Disclosure-control settings.

    Parameters
    ----------
    threshold : int
        Minimum published count, and minimum numerator and denominator of a percentage
        (default 10, ACRO's ``safe_threshold``). Refused below :data:`FLOOR` (3).
    zeros_disclosive : bool
        Zeros are disclosive unless structural (default True, ACRO's
        ``zeros_are_disclosive``).
    suppress : bool
        Suppress disclosive counts (with secondary suppression) instead of failing (publication
        mode). An experiment's exception file may also ask for it.

    Examples
    --------
    >>> DisclosureSettings(threshold=5).threshold
    5
    >>> DisclosureSettings(threshold=2)
    Traceback (most recent call last):
    ...
    natexp.bundle.disclosure.DisclosureError: disclosure threshold 2 is below the floor 3
    """

    threshold: int = DEFAULT_THRESHOLD
    zeros_disclosive: bool = True
    suppress: bool = False

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int):
            raise DisclosureError(f"disclosure threshold must be a whole number, got {t!r}")
        if t < FLOOR:
            raise DisclosureError(f"disclosure threshold {t} is below the floor {FLOOR}")
        for name in ("zeros_disclosive", "suppress"):
            if not isinstance(getattr(self, name), bool):
                raise DisclosureError(f"disclosure setting {name} must be true or false")

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"threshold": self.threshold, "zeros_disclosive": self.zeros_disclosive,
                "suppress": self.suppress, "floor": FLOOR}

    @classmethod
    def from_dict(cls, d: Mapping) -> DisclosureSettings:
        """Inverse of :meth:`to_dict` (the ``floor`` key is ignored)."""
        return cls(threshold=d["threshold"], zeros_disclosive=d["zeros_disclosive"],
                   suppress=d["suppress"])


@dataclass(frozen=True)
class ExceptionCell:
    """One count cleared by an exception: its key, the value that was published, and why."""

    path: str
    value: int
    published: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Exceptions:
    """An experiment's recorded disclosure exceptions (``disclosure_exceptions.yaml``).

    Published-count exceptions are bound to data: they apply only to a run whose inputs are
    named in ``applies_to`` (by the order-independent content checksums of the families and
    children tables that the bundle records in ``inputs.json``), or, with
    ``embedded_synthetic: true``, to a run on natexp's embedded published-margin synthetic data.
    Any other run ignores them (the disclosure log says so), and even a bound cell is cleared
    only when the run's value equals the recorded (published) value. Structural zeros are a
    property of the design, not of the data, and are not bound.
    """

    experiment: str
    reason: str
    source: str = ""
    suppress_other_cells: bool = False
    cells: tuple[ExceptionCell, ...] = ()
    structural_zeros: tuple[tuple[str, str], ...] = ()
    text: str = ""
    embedded_synthetic: bool = False
    data: tuple[tuple[str, str], ...] = ()

    def binding(self, inputs: Any) -> tuple[bool, str]:
        """Whether the published-count exceptions apply to a run with these ``inputs`` (the
        bundle's input description: ``synthetic``, ``generator``, and each table's
        ``content_sha256``), and why.

        Examples
        --------
        >>> e = Exceptions("demo", "published", data=(("aa", "bb"),))
        >>> e.binding({"families": {"content_sha256": "aa"},
        ...            "children": {"content_sha256": "bb"}})[0]
        True
        >>> e.binding({"families": {"content_sha256": "aa"},
        ...            "children": {"content_sha256": "cc"}})[0]
        False
        """
        inputs = inputs if isinstance(inputs, Mapping) else {}
        if inputs.get("synthetic") is True:
            gen = inputs.get("generator")
            published = isinstance(gen, Mapping) and gen.get("n_families") is None
            if self.embedded_synthetic and published:
                return True, "the run used the embedded published-margin synthetic data"
            return False, ("the run used synthetic data other than the embedded published-"
                           "margin dataset" if self.embedded_synthetic and not published else
                           "the exceptions do not cover the embedded synthetic data")
        if not self.data:
            return False, "the exceptions name no dataset (applies_to.data is empty)"

        def sha(name: str) -> Any:
            d = inputs.get(name)
            return d.get("content_sha256") if isinstance(d, Mapping) else None

        if (sha("families"), sha("children")) in set(self.data):
            return True, "the inputs' content checksums equal those recorded with the exceptions"
        return False, ("the inputs are not the data these exceptions were recorded for (their "
                       "content checksums differ from every dataset listed under applies_to)")

    @classmethod
    def from_text(cls, text: str, *, name: str = EXCEPTIONS_FILE) -> Exceptions:
        """Parse an exception file.

        Examples
        --------
        >>> e = Exceptions.from_text('''
        ... experiment: demo
        ... reason: published by the data owner
        ... cells:
        ...   - {path: flow.reached.treatment, value: 20, published: flow_reached_treatment}
        ... ''')
        >>> e.cells[0].path, e.cells[0].value, e.suppress_other_cells
        ('flow.reached.treatment', 20, False)
        """
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise DisclosureError(f"{name}: not valid YAML") from None
        if not isinstance(data, Mapping):
            raise DisclosureError(f"{name}: expected a mapping at the top level")
        unknown = set(data) - {"experiment", "reason", "source", "suppress_other_cells",
                               "cells", "structural_zeros", "applies_to"}
        if unknown:
            raise DisclosureError(f"{name}: unknown key(s) {sorted(unknown)}")
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise DisclosureError(f"{name}: 'reason' is required (why these cells may be shown)")
        cells = []
        for k, c in enumerate(data.get("cells") or []):
            if not isinstance(c, Mapping) or not isinstance(c.get("path"), str):
                raise DisclosureError(f"{name}: cells[{k}] needs a 'path'")
            v = c.get("value")
            if isinstance(v, bool) or not isinstance(v, int):
                raise DisclosureError(f"{name}: cells[{k}] needs the published whole-number "
                                      "'value'")
            cells.append(ExceptionCell(c["path"], v, str(c.get("published", "")),
                                       str(c.get("reason", ""))))
        zeros = []
        for k, z in enumerate(data.get("structural_zeros") or []):
            if not isinstance(z, Mapping) or not isinstance(z.get("path"), str) \
                    or not isinstance(z.get("reason"), str):
                raise DisclosureError(f"{name}: structural_zeros[{k}] needs 'path' and 'reason'")
            zeros.append((z["path"], z["reason"]))
        sup = data.get("suppress_other_cells", False)
        if not isinstance(sup, bool):
            raise DisclosureError(f"{name}: suppress_other_cells must be true or false")
        applies = data.get("applies_to") or {}
        if not isinstance(applies, Mapping) or set(applies) - {"embedded_synthetic", "data"}:
            raise DisclosureError(f"{name}: applies_to takes 'embedded_synthetic' (true/false) "
                                  "and 'data' (a list of {families, children} content checksums)")
        emb = applies.get("embedded_synthetic", False)
        if not isinstance(emb, bool):
            raise DisclosureError(f"{name}: applies_to.embedded_synthetic must be true or false")
        bound = []
        for k, d in enumerate(applies.get("data") or []):
            ok = isinstance(d, Mapping) and all(
                isinstance(d.get(t), str) and len(d[t]) == 64 for t in ("families", "children"))
            if not ok:
                raise DisclosureError(f"{name}: applies_to.data[{k}] needs the 'families' and "
                                      "'children' content_sha256 (64 hex digits each)")
            bound.append((d["families"].lower(), d["children"].lower()))
        return cls(experiment=str(data.get("experiment", "")), reason=reason.strip(),
                   source=str(data.get("source", "")).strip(), suppress_other_cells=sup,
                   cells=tuple(cells), structural_zeros=tuple(zeros), text=text,
                   embedded_synthetic=emb, data=tuple(bound))

    @classmethod
    def load(cls, path: str | Path) -> Exceptions:
        """Read an exception file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError:
            raise DisclosureError(f"{p.name}: exception file cannot be read") from None
        return cls.from_text(text, name=p.name)


def exceptions_path(experiment: str) -> Path | None:
    """The experiment's exception file ``experiments/<name>/disclosure_exceptions.yaml``, if any.

    Examples
    --------
    >>> exceptions_path("oxon_vs_rest").name
    'disclosure_exceptions.yaml'
    >>> exceptions_path("no_such_experiment") is None
    True
    """
    from natexp.paths import EXPERIMENTS_DIR

    p = EXPERIMENTS_DIR / experiment / EXCEPTIONS_FILE
    return p if p.is_file() else None


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class Count:
    """A location showing the count ``key`` (``label``: the key as this output names it)."""

    key: str
    label: str = ""


@dataclass(frozen=True)
class Derived:
    """A location showing a value computed from the counts ``deps``."""

    deps: frozenset[str]


@dataclass(frozen=True)
class Uncleared:
    """A location showing a value computed from counts these rules do not track (``reason``).

    Withheld whenever disclosure control is in publication mode (suppression on, or any count
    suppressed); shown for an output checker's review otherwise.
    """

    reason: str


META, PUBLIC, UNKNOWN = "meta", "public", "unknown"
Loc = Count | Derived | Uncleared | str


def _as_count(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _study_of(results: Mapping) -> Study:
    """The study the results describe (``config.study``; a generic one if absent)."""
    cfg = results.get("config") if isinstance(results, Mapping) else None
    spec = cfg.get("study") if isinstance(cfg, Mapping) else None
    return Study.from_dict(spec) if isinstance(spec, Mapping) else Study()


class _Model:
    """Counts, their relations, and where each number of each output sits."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.eqs: list[tuple[str, tuple[str, ...]]] = []
        self.les: list[tuple[str, str]] = []
        self.structural: dict[str, str] = {}
        self.json: dict[tuple, Loc] = {}
        self.dotted: dict[str, Loc] = {}
        self.tables: dict[str, dict[tuple[int, str], Loc]] = {}
        self.unknown_sections: list[str] = []
        self.unknown_tables: list[str] = []
        #: results sections withheld as a whole in publication mode: dotted path -> reason
        self.uncleared_sections: dict[str, str] = {}
        #: results sections derived from counts: dotted path -> their location (withheld as a
        #: whole when one of the counts is suppressed)
        self.derived_sections: dict[str, Derived] = {}
        #: the study the results describe (its descriptive key and groups, secondary kinds)
        self.study: Study = Study()

    @property
    def desc_key(self) -> str | None:
        """The results section of the study's descriptive table (None: it has none)."""
        return self.study.descriptive.key if self.study.descriptive is not None else None

    @property
    def groups(self) -> tuple[str, ...]:
        """The two group words of the descriptive table."""
        d = self.study.descriptive
        return tuple(d.groups.values()) if d is not None else ()

    def kinds(self) -> dict[str, str]:
        """Secondary table key -> its kind."""
        return {s.key: s.kind for s in self.study.secondary}

    def keys_of(self, *kinds: str) -> list[str]:
        """The secondary keys of the given kinds, in declared order."""
        return [s.key for s in self.study.secondary if s.kind in kinds]

    def count(self, key: str, value: Any) -> Loc:
        v = _as_count(value)
        if v is None:
            return UNKNOWN
        old = self.values.get(key)
        if old is not None and old != v:
            # Two places disagree about one quantity: the mapping is wrong; do not guess.
            return UNKNOWN
        self.values[key] = v
        return Count(key)

    def eq(self, total: str, parts: Sequence[str]) -> None:
        keys = (total, *parts)
        if all(k in self.values for k in keys) and parts and \
                self.values[total] == sum(self.values[p] for p in parts):
            self.eqs.append((total, tuple(parts)))

    def le(self, small: str, big: str) -> None:
        if small in self.values and big in self.values and self.values[small] <= self.values[big]:
            self.les.append((small, big))

    def deps(self, keys: Iterable[str]) -> Loc:
        ks = frozenset(k for k in keys if k in self.values)
        return Derived(ks)

    def put(self, path: tuple, loc: Loc, dotted: str | None = None) -> None:
        self.json[path] = loc
        if dotted is not None:
            self.dotted[dotted] = loc


def _leaves(node: Any, path: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _dot(path: tuple) -> str:
    return ".".join(str(p) for p in path)


ARMS = ("treatment", "control")
GROUPS = (*ARMS, "total")
META_SECTIONS = ("natexp_version", "experiment", "description", "config", "rollout", "design",
                 "notices", "flow_accounted")


# --------------------------------------------------------------------------- results sections


def _flow_rows(m: _Model, rows: Sequence[Mapping]) -> list[dict[str, Loc]]:
    out = []
    for r in rows:
        locs: dict[str, Loc] = {c: META for c in r}
        if "n" in r and "step" in r and "arm" in r:
            locs["n"] = m.count(f"flow.{r['step']}.{r['arm']}", r["n"])
        out.append(locs)
    return out


def _flow_relations(m: _Model, rows: Sequence[Mapping]) -> None:
    steps: dict[str, dict[str, int]] = {}
    for r in rows:
        steps.setdefault(str(r.get("step")), {})[str(r.get("arm"))] = r.get("n")
    for step, arms in steps.items():
        if set(ARMS) <= arms.keys():
            m.count(f"flow.{step}.total", sum(_as_count(arms[a]) or 0 for a in ARMS))
            m.eq(f"flow.{step}.total", [f"flow.{step}.{a}" for a in ARMS])
    exclusions = [f"flow.{s}.all" for s, arms in steps.items() if s != "input" and "all" in arms]
    m.eq("flow.input.all", [*exclusions, *(f"flow.identified.{a}" for a in ARMS)])
    for a in ARMS:
        m.eq(f"flow.identified.{a}", [f"flow.{s}.{a}" for s in ("not_called", "not_reached",
                                                                 "reached")])
        m.le(f"flow.agreed_interview.{a}", f"flow.reached.{a}")
        m.le(f"flow.interviewed.{a}", f"flow.reached.{a}")


def _index_flow(m: _Model, rows: Any) -> None:
    if not isinstance(rows, list):
        return
    for i, locs in enumerate(_flow_rows(m, rows)):
        for col, loc in locs.items():
            m.put(("flow", i, col), loc)
    _flow_relations(m, rows)
    for key in m.values:
        if key.startswith("flow."):
            m.dotted[key] = Count(key)


def _index_inputs(m: _Model, inputs: Any) -> None:
    if not isinstance(inputs, Mapping):
        return
    for path, value in _leaves(inputs, ("inputs",)):
        if len(path) == 3 and path[2] == "rows":
            m.put(path, m.count(_dot(path), value), _dot(path))
        else:
            m.put(path, META)


_PRIMARY = tuple(f"primary_outcome.counts.{k}" for k in ("x1", "n1", "x2", "n2", "no1", "no2"))


def _index_primary(m: _Model, prim: Any) -> None:
    if not isinstance(prim, Mapping) or not isinstance(prim.get("counts"), Mapping):
        return
    c = prim["counts"]
    for k in ("x1", "n1", "x2", "n2"):
        m.count(f"primary_outcome.counts.{k}", c.get(k))
    for x, n, no in (("x1", "n1", "no1"), ("x2", "n2", "no2")):
        xv, nv = _as_count(c.get(x)), _as_count(c.get(n))
        if xv is not None and nv is not None:
            m.count(f"primary_outcome.counts.{no}", nv - xv)
            m.eq(f"primary_outcome.counts.{n}",
                 [f"primary_outcome.counts.{x}", f"primary_outcome.counts.{no}"])
    derived = m.deps(_PRIMARY)
    for path, _ in _leaves(prim, ("primary_outcome",)):
        if len(path) == 3 and path[1] == "counts" or (
                len(path) == 4 and path[1:3] == ("panel", "counts")):
            key = f"primary_outcome.counts.{path[-1]}"
            loc: Loc = Count(key) if key in m.values else UNKNOWN
        else:
            loc = derived
        m.put(path, loc, _dot(path))


def _ab_keys(m: _Model, q: str) -> list[str]:
    return [f"{m.desc_key}.{q}.{s}.{k}" for s in m.groups for k in ("yes", "no", "n")]


def _ab_alias(m: _Model) -> dict[str, tuple[str, str]]:
    """The 2x2 panel's counts (x1, n1: first group; x2, n2: second) as group counts."""
    g1, g2 = m.groups
    return {"x1": (g1, "yes"), "n1": (g1, "n"), "x2": (g2, "yes"), "n2": (g2, "n")}


def _ab_clustered(m: _Model) -> str:
    """Why the family-level (clustered) descriptive analysis is withheld in publication mode."""
    d = m.study.descriptive
    ref = (d.published or d.title) if d is not None else "descriptive"
    by = m.study.label(d.by) if d is not None else "group"
    return (f"the family-level {ref} analysis counts families by {by} and answer: counts "
            "disclosure control does not clear")


def _index_descriptive(m: _Model, ab: Any) -> None:
    if not isinstance(ab, Mapping) or m.desc_key is None:
        return
    top = m.desc_key
    alias = _ab_alias(m)
    for q, tab in ab.items():
        if not isinstance(tab, Mapping):
            m.put((top, q), UNKNOWN)
            continue
        for s in m.groups:
            part = tab.get(s) if isinstance(tab.get(s), Mapping) else {}
            for k in ("yes", "no", "n"):
                m.count(f"{top}.{q}.{s}.{k}", part.get(k))
            m.eq(f"{top}.{q}.{s}.n", [f"{top}.{q}.{s}.yes", f"{top}.{q}.{s}.no"])
        derived = m.deps(_ab_keys(m, q))
        for path, _ in _leaves(tab, (top, q)):
            rest = path[2:]
            loc: Loc
            if len(rest) == 2 and rest[0] in m.groups and rest[1] in ("yes", "no", "n"):
                key = _dot(path)
                loc = Count(key) if key in m.values else UNKNOWN
            elif len(rest) == 3 and rest[:2] == ("panel", "counts") and rest[2] in alias:
                s, k = alias[rest[2]]
                key = f"{top}.{q}.{s}.{k}"
                loc = Count(key) if key in m.values else UNKNOWN
            elif rest == ("question",):
                loc = META
            elif rest == ("published_chi2",):
                loc = PUBLIC
            elif rest and rest[0] == "clustered":
                loc = Uncleared(_ab_clustered(m))
                m.uncleared_sections[_dot(path[:3])] = _ab_clustered(m)
            else:
                loc = derived
            m.put(path, loc, _dot(path))
    qs = [q for q in ab if isinstance(ab[q], Mapping)]
    for q in qs[1:]:
        for s in m.groups:
            m.eq(f"{top}.{q}.{s}.n", [f"{top}.{qs[0]}.{s}.n"])
    if qs:
        m.eq("inputs.children.rows", [f"{top}.{qs[0]}.{s}.n" for s in m.groups])


def _sec(*parts: str) -> str:
    return "secondary." + ".".join(parts)


def _index_secondary(m: _Model, sec: Any) -> None:
    if not isinstance(sec, Mapping):
        return
    kinds = m.kinds()
    for name, body in sec.items():
        kind = kinds.get(name)
        if kind is None or not isinstance(body, Mapping):
            m.unknown_sections.append(f"secondary.{name}")
            for path, _ in _leaves(body, ("secondary", name)):
                m.put(path, UNKNOWN)
            continue
        # every whole number is a count under its own path
        counts: dict[tuple, str] = {}
        for path, value in _leaves(body, ("secondary", name)):
            if kind == "category" and path[2] == "percent":
                continue
            if path[-1] in ("percent", "percent_yes"):
                continue
            if _as_count(value) is not None:
                counts[path] = _dot(path)
                m.count(_dot(path), value)
        if kind == "flags":
            for r, part in body.items():
                if isinstance(part, Mapping):
                    m.eq(_sec(name, "n"), [_sec(name, r, k) for k in ("yes", "no", "missing")])
        for g in GROUPS:
            part = body.get(g)
            if not isinstance(part, Mapping):
                continue
            flat = [k for k, v in part.items() if not isinstance(v, Mapping)]
            if kind == "crossed":
                cells = [k for k in flat if k != "n"]
                m.eq(_sec(name, g, "n"), [_sec(name, g, k) for k in cells])
                for measure, sub in part.items():
                    if isinstance(sub, Mapping):
                        m.eq(_sec(name, g, "n"), [_sec(name, g, measure, v) for v in sub])
            elif kind == "category":
                m.eq(_sec(name, g, "n"), [_sec(name, g, k) for k in flat if k != "n"])
            elif kind == "consent":
                m.eq(_sec(name, g, "reached"), [_sec(name, g, k) for k in
                                                ("agreed", "not_agreed", "consent_missing")])
                m.le(_sec(name, g, "completed"), _sec(name, g, "agreed"))
            elif kind == "outcome_routes":
                m.eq(_sec(name, g, "n"), [_sec(name, g, k) for k in ("yes", "no", "missing")])
                route = part.get("route")
                if isinstance(route, Mapping):
                    m.eq(_sec(name, g, "yes"), [_sec(name, g, "route", r) for r in route])
        # totals = treatment + control, for every count of the treatment group
        for path in counts:
            if len(path) > 3 and path[2] == "treatment":
                rest = path[3:]
                m.eq(_sec(name, "total", *map(str, rest)),
                     [_sec(name, a, *map(str, rest)) for a in ARMS])
        for path, value in _leaves(body, ("secondary", name)):
            key = _dot(path)
            loc: Loc
            if path in counts:
                loc = Count(key)
            elif kind == "category" and path[2] == "percent" and len(path) == 4:
                loc = m.deps([_sec(name, "total", str(path[3])), _sec(name, "total", "n")])
            elif kind == "flags" and path[-1] == "percent_yes" and len(path) == 4:
                loc = m.deps([_sec(name, str(path[2]), "yes"), _sec(name, "n")])
            elif kind == "outcome_routes" and path[-1] == "percent" and len(path) == 4:
                loc = m.deps([_sec(name, str(path[2]), "yes"), _sec(name, str(path[2]), "n")])
            elif value is None:
                loc = META
            else:
                loc = UNKNOWN
            m.put(path, loc, key)


def _balance_index(m: _Model, among: str, rows: Sequence[Mapping]) -> list[dict[str, Loc]]:
    """Counts behind a balance table (proportions x n) and the location of every cell."""
    base = f"balance.{among}"
    nkey: dict[tuple[str, str], str] = {}
    for r in rows:
        unit = str(r.get("unit"))
        for a in ARMS:
            key = f"{base}.{unit}.{a}"
            if m.count(key, r.get(f"n_{a}")) != UNKNOWN:
                nkey[(unit, a)] = key
    levels: dict[str, list[str]] = {}
    count_keys: dict[tuple[int, str], str] = {}
    for i, r in enumerate(rows):
        if r.get("statistic") != "proportion":
            continue
        var, lev, unit = str(r.get("variable")), str(r.get("level")), str(r.get("unit"))
        levels.setdefault(var, []).append(lev)
        for a in ARMS:
            p, n = r.get(a), _as_count(r.get(f"n_{a}"))
            if isinstance(p, int | float) and not isinstance(p, bool) and n is not None \
                    and math.isfinite(p):
                key = f"{base}.{var}.{lev}.{a}"
                if m.count(key, round(p * n)) != UNKNOWN:
                    count_keys[(i, a)] = key
    for var, levs in levels.items():
        unit = next(str(r.get("unit")) for r in rows if r.get("variable") == var)
        for a in ARMS:
            if (unit, a) not in nkey:
                continue
            keys = [f"{base}.{var}.{lev}.{a}" for lev in levs]
            if len(levs) == 1 and keys[0] in m.values:
                comp = f"{base}.{var}.~{levs[0]}.{a}"
                m.count(comp, m.values[nkey[(unit, a)]] - m.values[keys[0]])
                m.eq(nkey[(unit, a)], [keys[0], comp])
            else:
                m.eq(nkey[(unit, a)], keys)
    out = []
    for i, r in enumerate(rows):
        stat, var, unit = r.get("statistic"), str(r.get("variable")), str(r.get("unit"))
        ns = [nkey[(unit, a)] for a in ARMS if (unit, a) in nkey]
        locs: dict[str, Loc] = {}
        for col, value in r.items():
            if col in ("variable", "level", "unit", "statistic"):
                locs[col] = META
            elif col in ("n_treatment", "n_control"):
                a = col.removeprefix("n_")
                locs[col] = Count(nkey[(unit, a)]) if (unit, a) in nkey else UNKNOWN
            elif stat == "proportion":
                mine = [count_keys[(i, a)] for a in ARMS if (i, a) in count_keys]
                comps = [f"{base}.{var}.~{r.get('level')}.{a}" for a in ARMS]
                if col in ("treatment", "control", "treatment_sd", "control_sd"):
                    a = col.split("_")[0]
                    k = count_keys.get((i, a))
                    locs[col] = m.deps([k, nkey.get((unit, a), ""), comps[ARMS.index(a)]]) \
                        if k else (META if value is None else UNKNOWN)
                else:  # smd, note
                    locs[col] = m.deps([*mine, *ns, *comps])
            elif stat == "mean":
                if col in ("treatment", "control", "treatment_sd", "control_sd"):
                    a = col.split("_")[0]
                    locs[col] = m.deps([nkey.get((unit, a), "")])
                else:
                    locs[col] = m.deps(ns)
            elif stat == "categorical":
                keys = [f"{base}.{var}.{lev}.{a}" for lev in levels.get(var, []) for a in ARMS]
                locs[col] = m.deps([*keys, *ns]) if value is not None else META
            else:
                locs[col] = META if value is None or isinstance(value, str) and not value \
                    else UNKNOWN
        out.append(locs)
    return out


def _index_balance(m: _Model, bal: Any) -> None:
    if not isinstance(bal, Mapping):
        return
    for among, rows in bal.items():
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            for path, _ in _leaves(rows, ("balance", among)):
                m.put(path, UNKNOWN)
            continue
        for i, locs in enumerate(_balance_index(m, str(among), rows)):
            for col, loc in locs.items():
                m.put(("balance", among, i, col), loc)


def _expr_paths(expr: Any) -> list[str] | None:
    """Key paths of a published.yaml recompute expression (None: not understood)."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, bool):
        return None
    if isinstance(expr, int | float):
        return []
    if isinstance(expr, Mapping) and len(expr) == 1:
        (op, args), = expr.items()
        if op == "path" and isinstance(args, str):
            return [args]
        if isinstance(args, list):
            out: list[str] = []
            for a in args:
                sub = _expr_paths(a)
                if sub is None:
                    return None
                out += sub
            return out
    if isinstance(expr, list):
        out = []
        for a in expr:
            sub = _expr_paths(a)
            if sub is None:
                return None
            out += sub
        return out
    return None


def _replication_rows(m: _Model, rows: Sequence[Mapping], items: Mapping[str, Mapping]
                      ) -> list[dict[str, Loc]]:
    out = []
    for r in rows:
        item = items.get(str(r.get("id")))
        dep: Loc = UNKNOWN
        value_loc: Loc = UNKNOWN
        if item is not None:
            expr = item.get("recompute")
            if isinstance(expr, Mapping) and set(expr) == {"path"}:
                expr = expr["path"]
            paths = _expr_paths(expr)
            if paths is not None:
                keys: set[str] = set()
                ok = True
                for p in paths:
                    loc = m.dotted.get(p)
                    if isinstance(loc, Count):
                        keys.add(loc.key)
                    elif isinstance(loc, Derived):
                        keys |= loc.deps
                    elif loc in (PUBLIC, META):
                        pass
                    else:
                        ok = False
                if ok:
                    dep = m.deps(keys)
                    value_loc = dep
                    if isinstance(expr, str) and isinstance(m.dotted.get(expr), Count):
                        value_loc = m.dotted[expr]
        locs: dict[str, Loc] = {}
        for col in r:
            if col in ("id", "where"):
                locs[col] = META
            elif col == "published":
                locs[col] = PUBLIC
            elif col == "recomputed":
                locs[col] = value_loc
            else:
                locs[col] = dep
        out.append(locs)
    return out


def _index_replication(m: _Model, rows: Any, items: Mapping[str, Mapping]) -> None:
    if not isinstance(rows, list):
        return
    for i, locs in enumerate(_replication_rows(m, rows, items)):
        for col, loc in locs.items():
            m.put(("replication", i, col), loc)


def _index_power(m: _Model, power: Any) -> None:
    """Power of the primary comparison: computed from its 2x2 table only."""
    derived = m.deps(_PRIMARY)
    for path, _ in _leaves(power, ("power",)):
        m.put(path, derived, _dot(path))


#: Counts the non-response analyses use: the primary 2x2 table and the identified and reached
#: families per arm (the unreached are their difference).
_NONRESPONSE = (*_PRIMARY, *(f"flow.{s}.{a}" for s in ("identified", "reached") for a in ARMS))

#: Sensitivity analyses built from the cleared counts: results key -> the counts they use.
CLEARED_SENSITIVITY: dict[str, tuple[str, ...]] = {
    "nonresponse": _NONRESPONSE,
    "pattern_mixture": _NONRESPONSE,
    "estimand": _NONRESPONSE,
    "evalues": _PRIMARY,
}

#: Sensitivity analyses built from counts these rules do not track: results key -> why they are
#: withheld in publication mode.
UNCLEARED_SENSITIVITY: dict[str, str] = {
    "randomization": (
        "the randomization test recomputes support uptake under every assignment of areas to "
        "the treated role: counts by area that disclosure control does not clear"),
    "randomization_mechanisms": (
        "the randomization tests recompute support uptake under every assignment of areas to "
        "the treated role: counts by area that disclosure control does not clear"),
    "area_level": (
        "the area-level analysis uses support uptake area by area: counts disclosure control "
        "does not clear"),
    "cluster": (
        "the intra-cluster correlation and design effect use the reached families and their "
        "uptake area by area: counts disclosure control does not clear"),
    "intention_to_treat": (
        "the intention-to-treat comparison counts support uptake among all identified "
        "families: counts disclosure control does not clear"),
    "placebo_in_space": (
        "the in-space placebos split the control families by area block: counts disclosure "
        "control does not clear and which overlap the published ones (differencing)"),
    "placebo_in_time": (
        "the in-time placebos split the control families by reception date: counts disclosure "
        "control does not clear and which overlap the published ones (differencing)"),
    "leave_one_out": (
        "leaving one area out shows the reached families and their support uptake area by "
        "area: counts disclosure control does not clear (small by construction)"),
    "specification_curve": (
        "the specification curve re-estimates the comparison in other cohorts (windows, "
        "follow-up dates, custody rules) whose counts disclosure control does not clear and "
        "which overlap the published one (differencing)"),
    "dowhy": (
        "the DoWhy model is a regression on the identified families' records with covariates, "
        "not a function of cleared counts"),
}

#: How each count source of a derived table maps to the counts it uses.
_DERIVED_FROM: dict[str, tuple[str, ...]] = {"nonresponse": _NONRESPONSE, "primary": _PRIMARY}


def _table_classes() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    from natexp.outputs import _FIXED

    uncleared = {o.name: UNCLEARED_SENSITIVITY[o.withheld_because] for o in _FIXED
                 if o.disclosure == "uncleared"}
    derived = {o.name: _DERIVED_FROM[o.derived_from] for o in _FIXED if o.disclosure == "derived"}
    return uncleared, derived


#: CSV tables built from counts these rules do not track (declared in :mod:`natexp.outputs`)
#: and CSV tables every cell of which is derived from cleared counts (withheld as a whole when
#: one of them is suppressed).
UNCLEARED_TABLES, DERIVED_TABLES = _table_classes()

#: Rows of the ``sensitivity`` summary table: analysis -> the counts it uses (None: uncleared).
_SENSITIVITY_ROWS: dict[str, tuple[str, ...] | None] = {
    "nonresponse": _NONRESPONSE,
    "manski": _NONRESPONSE,
    "evalue_risk_ratio": _PRIMARY,
    "evalue_risk_difference": _PRIMARY,
    "leave_one_out": _PRIMARY,  # the full-cohort headline: the primary comparison
    "pattern_mixture_mar": _NONRESPONSE,
    "area_level_randomization": None,
    "specification_curve": None,
    "dowhy": None,
}


def _index_sensitivity(m: _Model, sens: Any) -> None:
    """The sensitivity analyses: derived from cleared counts, or withheld in publication mode."""
    if not isinstance(sens, Mapping):
        m.unknown_sections.append("sensitivity")
        for path, _ in _leaves(sens, ("sensitivity",)):
            m.put(path, UNKNOWN)
        return
    for name, body in sens.items():
        top = ("sensitivity", name)
        if name in CLEARED_SENSITIVITY:
            loc = m.deps(CLEARED_SENSITIVITY[name])
            m.derived_sections[_dot(top)] = loc
            for path, _ in _leaves(body, top):
                m.put(path, loc, _dot(path))
        elif name == "leave_one_out" and isinstance(body, Mapping):
            for key, part in body.items():
                sub = (*top, key)
                if key == "headline":
                    loc = m.deps(_PRIMARY)
                    m.derived_sections[_dot(sub)] = loc
                elif key in ("meta", "method", "title"):
                    loc = META
                else:
                    loc = Uncleared(UNCLEARED_SENSITIVITY[name])
                    m.uncleared_sections[_dot(sub)] = loc.reason
                for path, _ in _leaves(part, sub):
                    m.put(path, loc, _dot(path))
        elif name in UNCLEARED_SENSITIVITY:
            loc = Uncleared(UNCLEARED_SENSITIVITY[name])
            m.uncleared_sections[_dot(top)] = loc.reason
            for path, _ in _leaves(body, top):
                m.put(path, loc)
        else:
            m.unknown_sections.append(_dot(top))
            for path, _ in _leaves(body, top):
                m.put(path, UNKNOWN)


def _cross_relations(m: _Model, results: Mapping) -> None:
    """The same quantity under two keys (an attacker can match them across tables)."""
    stage = {st.column: st.key for st in m.study.followup_stages}
    consent = [sp for sp in m.study.secondary if sp.kind == "consent"]
    for a in ARMS:
        reached = f"flow.reached.{a}"
        for name in m.keys_of("crossed", "outcome_routes", "category"):
            m.eq(reached, [_sec(name, a, "n")])
        for sp in consent:
            m.eq(reached, [_sec(sp.key, a, "reached")])
            if sp.columns["consent"] in stage:
                m.eq(f"flow.{stage[sp.columns['consent']]}.{a}", [_sec(sp.key, a, "agreed")])
            if sp.columns["completed"] in stage:
                m.le(_sec(sp.key, a, "completed"),
                     f"flow.{stage[sp.columns['completed']]}.{a}")
        m.eq(f"balance.identified.families.{a}", [f"flow.identified.{a}"])
        m.eq(f"balance.reached.families.{a}", [reached])
        for name in m.keys_of("crossed"):
            m.eq(f"balance.reached.parent_sex.F.{a}", [_sec(name, a, "parent_sex", "F")])
    for name in m.keys_of("outcome_routes"):
        for x, arm, k in (("x1", "treatment", "yes"), ("n1", "treatment", "n"),
                          ("x2", "control", "yes"), ("n2", "control", "n")):
            m.eq(f"primary_outcome.counts.{x}", [_sec(name, arm, k)])
        m.eq("primary_outcome.counts.no1", [_sec(name, "treatment", "no")])
        m.eq("primary_outcome.counts.no2", [_sec(name, "control", "no")])
    m.eq("inputs.families.rows", ["flow.input.all"])


def _structural_zeros(m: _Model, results: Mapping) -> None:
    """Zeros that are zero by construction, not by the data."""
    design = results.get("design") if isinstance(results.get("design"), Mapping) else {}
    if design.get("phases") is None and m.values.get("flow.phase_not_selected.all") == 0:
        m.structural["flow.phase_not_selected.all"] = (
            "the design selects no rollout phases, so no family can be excluded for its phase")
    out = m.study.outcome
    for name in m.keys_of("outcome_routes") if not out.missing_when_unreached else ():
        for g in GROUPS:
            key = _sec(name, g, "missing")
            if m.values.get(key) == 0:
                m.structural[key] = (f"{out.column} may not be missing in the input contract")
    total = "flow.not_called.total"
    if m.values.get(total) == 0 and all(m.values.get(f"flow.not_called.{a}") == 0 for a in ARMS):
        pass  # an empty call list is a property of the data, not of the design


def _index_results(results: Mapping, items: Mapping[str, Mapping]) -> _Model:
    m = _Model()
    m.study = _study_of(results)
    desc = m.desc_key
    order = ["inputs", "flow", "primary_outcome", *([desc] if desc else []), "secondary",
             "balance", "power", "sensitivity"]
    handlers = {
        "inputs": _index_inputs, "flow": _index_flow, "primary_outcome": _index_primary,
        "secondary": _index_secondary,
        "balance": _index_balance, "power": _index_power, "sensitivity": _index_sensitivity,
    }
    if desc:
        handlers[desc] = _index_descriptive
    for name in order:
        if name in results:
            handlers[name](m, results[name])
    _cross_relations(m, results)
    if "replication" in results:
        _index_replication(m, results["replication"], items)
    for name in results:
        if name in META_SECTIONS:
            for path, _ in _leaves(results[name], (name,)):
                m.put(path, META)
        elif name not in handlers and name != "replication":
            m.unknown_sections.append(name)
    for path, value in _leaves(results):
        if path not in m.json:
            m.json[path] = META if value is None and path and path[0] not in \
                m.unknown_sections else UNKNOWN
    _structural_zeros(m, results)
    return m


# --------------------------------------------------------------------------- CSV tables


def _table_rows(frame: pl.DataFrame) -> list[dict]:
    return frame.to_dicts()


def _csv_generic(m: _Model, rows: list[dict], key_of) -> list[dict[str, Loc]]:
    out = []
    for r in rows:
        locs: dict[str, Loc] = {}
        for col, value in r.items():
            loc = key_of(r, col, value)
            locs[col] = loc
        out.append(locs)
    return out


def _count_or_unknown(m: _Model, key: str, value: Any) -> Loc:
    if key in m.values and _as_count(value) == m.values[key]:
        return Count(key)
    return UNKNOWN


def _map_table(m: _Model, name: str, frame: pl.DataFrame, results: Mapping,
               items: Mapping[str, Mapping]) -> list[dict[str, Loc]] | None:
    rows = _table_rows(frame)
    if name == "flow":
        probe = _Model()
        probe.study = m.study
        probe.values = m.values
        return [{c: (_count_or_unknown(m, loc.key, r[c]) if isinstance(loc, Count) else loc)
                 for c, loc in locs.items()} for r, locs in zip(rows, _flow_rows(probe, rows),
                                                                strict=True)]
    kinds = {f"secondary_{k}": (k, kind) for k, kind in m.kinds().items()}
    sec_key, sec_kind = kinds.get(name, (None, None))
    if m.desc_key is not None and name == m.desc_key:
        def ab(r, col, value):
            q = str(r.get("table"))
            if col in ("table", "question"):
                return META
            if col == "published_chi2":
                return PUBLIC
            for s in m.groups:
                for k in ("yes", "no"):
                    if col == f"{s}_{k}":
                        return _count_or_unknown(m, f"{m.desc_key}.{q}.{s}.{k}", value)
            return m.deps(_ab_keys(m, q))
        return _csv_generic(m, rows, ab)
    if name == "uptake":
        primary = m.deps(_PRIMARY)
        return _csv_generic(m, rows, lambda r, col, v: META if col in (
            "method", "label", "alternative", "confidence_level") else primary)
    if name in ("balance_identified", "balance_reached"):
        among = name.removeprefix("balance_")
        probe = _Model()
        probe.study = m.study
        probe.values = dict(m.values)
        locs = _balance_index(probe, among, rows)
        # only keep counts the results registered (same values)
        fixed = []
        for r, row_locs in zip(rows, locs, strict=True):
            d: dict[str, Loc] = {}
            for c, loc in row_locs.items():
                if isinstance(loc, Count):
                    d[c] = _count_or_unknown(m, loc.key, r[c])
                elif isinstance(loc, Derived):
                    d[c] = loc if loc.deps <= m.values.keys() else UNKNOWN
                else:
                    d[c] = loc
            fixed.append(d)
        return fixed
    if sec_kind == "crossed":
        cell_measure = m.study.secondary_spec(sec_key).columns["col"]

        def contact(r, col, value):
            if col != "n":
                return META
            g, meas, v = str(r.get("group")), str(r.get("measure")), str(r.get("value"))
            key = _sec(sec_key, g, v) if meas == cell_measure else _sec(sec_key, g, meas, v)
            return _count_or_unknown(m, key, value)
        return _csv_generic(m, rows, contact)
    if sec_kind == "consent":
        return _csv_generic(m, rows, lambda r, col, v: META if col in ("measure", "label") else
                            _count_or_unknown(m, _sec(sec_key, col, str(r.get("measure"))),
                                              v))
    # the value column of a category or flags table is named by the study (``row``)
    row_col = m.study.secondary_spec(sec_key).row if sec_kind in ("flags", "category") else ""
    if sec_kind == "flags":
        def reasons(r, col, value):
            reason = str(r.get(row_col))
            if col in (row_col, "label"):
                return META
            if col == "n":
                return _count_or_unknown(m, _sec(sec_key, "n"), value)
            if col == "percent_yes":
                return m.deps([_sec(sec_key, reason, "yes"), _sec(sec_key, "n")])
            return _count_or_unknown(m, _sec(sec_key, reason, col), value)
        return _csv_generic(m, rows, reasons)
    if sec_kind == "category":
        def referral(r, col, value):
            resp = str(r.get(row_col))
            if col in (row_col, "label"):
                return META
            if col == "percent":
                return m.deps([_sec(sec_key, "total", resp), _sec(sec_key, "total", "n")])
            return _count_or_unknown(m, _sec(sec_key, col, resp), value)
        return _csv_generic(m, rows, referral)
    if sec_kind == "outcome_routes":
        def up(r, col, value):
            g = str(r.get("group"))
            if col == "group":
                return META
            if col == "percent":
                return m.deps([_sec(sec_key, g, "yes"), _sec(sec_key, g, "n")])
            if col.startswith("route_"):
                return _count_or_unknown(m, _sec(sec_key, g, "route", col[6:]), value)
            return _count_or_unknown(m, _sec(sec_key, g, col), value)
        return _csv_generic(m, rows, up)
    if name == "replication":
        return _replication_rows(m, rows, items)
    if name in DERIVED_TABLES:
        loc = m.deps(DERIVED_TABLES[name])
        return [{c: loc for c in r} for r in rows]
    if name == "sensitivity" and "analysis" in frame.columns:
        def sens(r, col, value):
            if col in ("analysis", "method"):
                return META
            name = str(r.get("analysis"))
            if name.startswith("randomization_"):  # one row per declared mechanism
                return Uncleared(UNCLEARED_SENSITIVITY["randomization_mechanisms"])
            deps = _SENSITIVITY_ROWS.get(name, ())
            if deps is None:
                return Uncleared(UNCLEARED_SENSITIVITY.get(
                    name, UNCLEARED_SENSITIVITY["area_level"]))
            return m.deps(deps) if deps else UNKNOWN
        return _csv_generic(m, rows, sens)
    if name == "children_by_age" and frame.columns == ["age", "n"]:
        # children by age; the ages add up to every child of the input
        keys = []
        for r in rows:
            key = f"children_by_age.{r['age']}"
            if m.count(key, r["n"]) != UNKNOWN:
                keys.append(key)
        m.eq("inputs.children.rows", keys)
        return [{"age": META, "n": _count_or_unknown(m, f"children_by_age.{r['age']}", r["n"])}
                for r in rows]
    return None


# --------------------------------------------------------------------------- the solver


class _Solver:
    """Bounds of unknown counts given known counts and the relations (linear programming)."""

    def __init__(self, m: _Model) -> None:
        self.m = m
        self.cons: list[tuple[dict[str, float], str]] = []  # ({key: coef}, "eq" | "le") 0-rhs
        for total, parts in m.eqs:
            coef: dict[str, float] = {total: 1.0}
            for p in parts:
                coef[p] = coef.get(p, 0.0) - 1.0
            self.cons.append((coef, "eq"))
        for small, big in m.les:
            self.cons.append(({small: 1.0, big: -1.0}, "le"))
        self.by_key: dict[str, list[int]] = {}
        for i, (coef, _) in enumerate(self.cons):
            for k in coef:
                self.by_key.setdefault(k, []).append(i)
        self._cache: dict[tuple, bool] = {}

    def component(self, key: str, known: set[str]) -> tuple[list[str], list[int]]:
        seen, todo, cons = {key}, [key], set()
        while todo:
            k = todo.pop()
            for i in self.by_key.get(k, []):
                if i in cons:
                    continue
                cons.add(i)
                for other in self.cons[i][0]:
                    if other not in known and other not in seen:
                        seen.add(other)
                        todo.append(other)
        return sorted(seen), sorted(cons)

    def pinned(self, targets: Iterable[str], known: set[str]) -> set[str]:
        """The targets whose value the known counts and the relations determine exactly.

        Per connected system of unknown counts: one linear programme (scipy HiGHS) finds the
        counts that must be zero in every solution (forced by non-negativity or a tight
        inequality); with those fixed, the true values lie in the relative interior of the
        feasible set, so a count is determined exactly if and only if its row of the null space
        of the remaining equations (``scipy.linalg.null_space``) is zero.
        """
        out = set()
        done: set[str] = set()
        for key in sorted(set(targets)):
            if key in known:
                out.add(key)
                continue
            if key in done:
                continue
            unknown, cons = self.component(key, known)
            done |= set(unknown)
            if not cons:
                continue
            sig = (tuple(unknown), tuple(cons),
                   tuple(sorted({k for i in cons for k in self.cons[i][0] if k in known})))
            if sig not in self._cache:
                self._cache[sig] = self._determined(unknown, cons)
            out |= self._cache[sig] & set(targets)
        return out

    def _determined(self, unknown: list[str], cons: list[int]) -> set[str]:
        import numpy as np
        from scipy.linalg import null_space
        from scipy.optimize import linprog

        n = len(unknown)
        col = {k: j for j, k in enumerate(unknown)}
        ineqs = [i for i in cons if self.cons[i][1] == "le"]
        nz = n + len(ineqs)  # unknown counts, then one slack per inequality
        rows, rhs = [], []
        for i in cons:
            coef, kind = self.cons[i]
            row = np.zeros(nz)
            b = 0.0
            for k, c in coef.items():
                if k in col:
                    row[col[k]] += c
                else:
                    b -= c * self.m.values[k]
            if kind == "le":
                row[n + ineqs.index(i)] = 1.0
            rows.append(row)
            rhs.append(b)
        a = np.array(rows)
        b = np.array(rhs)
        # maximise sum(t) with 0 <= t_j <= min(z_j, 1): t_j > 0 exactly where z_j can be > 0
        c = np.concatenate([np.zeros(nz), -np.ones(nz)])
        a_eq = np.hstack([a, np.zeros((len(rows), nz))])
        a_ub = np.hstack([-np.eye(nz), np.eye(nz)])
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(nz), A_eq=a_eq, b_eq=b,
                      bounds=[(0, None)] * nz + [(0, 1)] * nz, method="highs")
        if res.status != 0:  # cannot happen with the true values feasible; be safe
            return set()
        free = res.x[nz:] > 1e-7
        out = {unknown[j] for j in range(n) if not free[j]}
        if free.any():
            basis = null_space(a[:, free]) if len(rows) else np.eye(int(free.sum()))
            idx = np.flatnonzero(free)
            for pos, j in enumerate(idx):
                if j < n and (basis.size == 0 or np.all(np.abs(basis[pos]) < 1e-9)):
                    out.add(unknown[j])
        return out


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class OutputCheck:
    """The disclosure status of one output, with reasons (never a disclosive value)."""

    output: str
    status: str
    reasons: tuple[str, ...] = ()
    withheld: bool = False

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"output": self.output, "status": self.status, "reasons": list(self.reasons),
                "withheld": self.withheld}


@dataclass(frozen=True)
class DisclosureLog:
    """Everything disclosure control decided for one run."""

    settings: DisclosureSettings
    outputs: tuple[OutputCheck, ...]
    cells: Mapping[str, Any] = field(default_factory=dict)
    exceptions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The worst status of any output."""
        worst = 0
        for o in self.outputs:
            worst = max(worst, STATUSES.index(o.status))
        return STATUSES[worst]

    def failures(self) -> list[OutputCheck]:
        """Outputs with status ``fail``."""
        return [o for o in self.outputs if o.status == "fail"]

    def to_dict(self) -> dict:
        """JSON-friendly form (sorted, deterministic)."""
        return {
            "status": self.status,
            "settings": self.settings.to_dict(),
            "exceptions": dict(self.exceptions),
            "outputs": [o.to_dict() for o in sorted(self.outputs, key=lambda o: o.output)],
            "cells": {k: self.cells[k] for k in sorted(self.cells)},
            "rules": RULES_TEXT,
        }

    def to_markdown(self) -> str:
        """A human-readable table of every output, its status and reasons."""
        lines = [
            "# Disclosure log",
            "",
            f"Overall status: **{self.status}**. Threshold {self.settings.threshold} "
            f"(floor {FLOOR}); zeros disclosive: {self.settings.zeros_disclosive}; "
            f"suppression: {'on' if self.cells.get('suppression_applied') else 'off'}.",
            "",
        ]
        if self.exceptions:
            lines += [f"Exceptions ({self.exceptions.get('cells_cleared', 0)} cells cleared): "
                      f"{self.exceptions.get('reason', '')}", ""]
            if self.exceptions.get("binding"):
                lines += [f"Exceptions bound to data: {self.exceptions['binding']}.", ""]
        lines += ["| output | status | reasons |", "|---|---|---|"]
        for o in sorted(self.outputs, key=lambda o: o.output):
            reasons = "<br>".join(r.replace("|", "/") for r in o.reasons) or "-"
            lines.append(f"| `{o.output}` | {o.status} | {reasons} |")
        lines += ["", "Rules: " + RULES_TEXT, ""]
        return "\n".join(lines)


RULES_TEXT = (
    "UK TRE practice (ACRO/SACRO defaults): every published count, and the numerator and "
    "denominator of every percentage, at least the threshold; zeros disclosive unless "
    "structural; secondary suppression until no suppressed count can be recovered from "
    "totals, sums of parts, the same count in another table or differencing (bounds by "
    "linear programming); statistics computed from a suppressed count withheld; content the "
    "rules cannot check withheld whenever any count was suppressed; sensitivity analyses "
    "computed from counts the rules do not track (other cohorts, areas, records) withheld in "
    "publication mode. Suppressed and withheld values are shown as [c]."
)


@dataclass(frozen=True)
class Publication:
    """What may be published: cleared results and tables, and the disclosure log.

    Attributes
    ----------
    results : dict
        The results with every suppressed or withheld value replaced by ``"[c]"``.
    tables : dict of polars.DataFrame
        The cleared tables (withheld tables are left out).
    log : DisclosureLog
    withheld_files : tuple of str
        Other output files (figures, reports) that must not be published.
    """

    results: dict
    tables: dict[str, pl.DataFrame]
    log: DisclosureLog
    withheld_files: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``pass``, ``review`` or ``fail`` (the worst output)."""
        return self.log.status


def _canonical(m: _Model) -> tuple[_Model, dict[str, str], dict[str, list[str]]]:
    """Merge keys that name the same quantity (``a = b`` relations) into one variable."""
    parent = {k: k for k in m.values}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    order = ("flow.", "primary_outcome.", f"{m.desc_key}.", "secondary.", "inputs.", "balance.")

    def rank(k: str) -> tuple:
        return (next((i for i, p in enumerate(order) if k.startswith(p)), len(order)), k)

    for total, parts in m.eqs:
        if len(parts) == 1:
            a, b = find(total), find(parts[0])
            if a != b:
                keep, drop = sorted((a, b), key=rank)
                parent[drop] = keep
    rep = {k: find(k) for k in m.values}
    members: dict[str, list[str]] = {}
    for k, r in rep.items():
        members.setdefault(r, []).append(k)
    out = _Model()
    out.study = m.study
    out.values = {r: m.values[r] for r in members}
    seen = set()
    for total, parts in m.eqs:
        t2, p2 = rep[total], tuple(sorted(rep[p] for p in parts))
        if len(p2) == 1 and p2[0] == t2:
            continue
        if (t2, p2) not in seen:
            seen.add((t2, p2))
            out.eqs.append((t2, p2))
    out.les = sorted({(rep[a], rep[b]) for a, b in m.les if rep[a] != rep[b]})
    out.structural = {rep[k]: v for k, v in m.structural.items()}
    out.json = m.json
    out.dotted = m.dotted
    out.unknown_sections = m.unknown_sections
    out.uncleared_sections = m.uncleared_sections
    out.derived_sections = m.derived_sections
    out.unknown_tables = m.unknown_tables
    return out, rep, {r: sorted(ks) for r, ks in members.items()}


def _canon_loc(loc: Loc, rep: Mapping[str, str]) -> Loc:
    if isinstance(loc, Count):
        return Count(rep.get(loc.key, loc.key), loc.label or loc.key)
    if isinstance(loc, Derived):
        return Derived(frozenset(rep.get(k, k) for k in loc.deps))
    return loc


def _complement_cost(m: _Model, locs: Sequence[Loc]):
    """The cost of suppressing a count as a complement (a secondary suppression).

    Classic heuristic: never a marginal total when a cell will do, then the smallest value,
    then the fewest places shown (keys are canonical: one key per quantity).
    """
    margins: dict[str, int] = {}
    for total, parts in m.eqs:
        if len(parts) > 1:
            margins[total] = margins.get(total, 0) + 1
    shown: dict[str, int] = {}
    for loc in locs:
        for k in _touch(loc):
            shown[k] = shown.get(k, 0) + 1

    def cost(k: str) -> tuple:
        return (margins.get(k, 0), m.values[k], shown.get(k, 0), k)

    return cost


def _touch(loc: Loc) -> frozenset[str]:
    if isinstance(loc, Count):
        return frozenset((loc.key,))
    if isinstance(loc, Derived):
        return loc.deps
    return frozenset()


def _hidden(loc: Loc, s: set[str], withhold_unknown: bool,
            withhold_uncleared: bool | None = None) -> bool:
    if isinstance(loc, Count):
        return loc.key in s
    if isinstance(loc, Derived):
        return bool(loc.deps & s)
    if isinstance(loc, Uncleared):
        return withhold_unknown if withhold_uncleared is None else withhold_uncleared
    if loc == UNKNOWN:
        return withhold_unknown
    return False


def _json_safe(value: Any) -> Any:
    from natexp.pipeline import json_safe

    return json_safe(value)


def _set_path(node: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _small_ints(frame: pl.DataFrame, threshold: int, zeros: bool) -> bool:
    for name, dtype in frame.schema.items():
        if dtype.is_integer():
            col = frame[name].drop_nulls()
            small = (col < threshold) & ((col != 0) | zeros) if len(col) else col
            if len(col) and bool(small.any()):
                return True
    return False


def publication_mode(
    results: Mapping,
    tables: Mapping[str, pl.DataFrame] | None = None,
    *,
    settings: DisclosureSettings | None = None,
    exceptions: Exceptions | None = None,
    files: Sequence[str] = (),
    table_prefix: str = "",
    results_name: str = "results.json",
    marker: str | None = SUPPRESSED,
) -> Publication:
    """Apply disclosure control to a run's results and tables.

    Parameters
    ----------
    results : Mapping
        ``RunResult.results``.
    tables : dict of polars.DataFrame, optional
        ``RunResult.tables`` (written as ``<name>.csv``).
    settings : DisclosureSettings, optional
        Threshold, zeros, suppression (defaults: 10, zeros disclosive, no suppression).
    exceptions : Exceptions, optional
        Recorded exceptions (published counts, structural zeros); with
        ``suppress_other_cells`` it turns suppression on.
    files : sequence of str
        Other output files (figures, reports) that cannot be checked cell by cell.
    table_prefix, results_name : str
        How outputs are named in the log (e.g. ``"results/"``).
    marker : str or None
        What replaces a suppressed or withheld value (default ``"[c]"``). None keeps each
        table column's type and puts a null there instead (for code that draws figures from
        the cleared results).

    Returns
    -------
    Publication
        Cleared results and tables, the files to withhold, and the log. Check
        ``publication.status`` before publishing: ``fail`` means do not publish.

    Examples
    --------
    >>> res = {"flow": [{"order": 0, "step": "input", "arm": "all", "label": "in", "n": 330},
    ...                 {"order": 1, "step": "excluded", "arm": "all", "label": "out", "n": 4},
    ...                 {"order": 2, "step": "identified", "arm": "treatment", "label": "t",
    ...                  "n": 300},
    ...                 {"order": 2, "step": "identified", "arm": "control", "label": "c",
    ...                  "n": 26}]}
    >>> publication_mode(res).status
    'fail'
    >>> pub = publication_mode(res, settings=DisclosureSettings(suppress=True))
    >>> pub.status, [r["n"] for r in pub.results["flow"]]
    ('review', [330, '[c]', 300, '[c]'])
    """
    settings = settings or DisclosureSettings()
    tables = dict(tables or {})
    from natexp.experiments import published_items

    items: dict[str, Mapping] = {}
    if isinstance(results.get("experiment"), str):
        try:
            for it in published_items(results["experiment"]) or []:
                items[it["id"]] = it
        except Exception:  # noqa: BLE001 - an unreadable published.yaml: replication unknown
            items = {}
    clean = _json_safe(dict(results))
    m = _index_results(clean, items)
    table_locs: dict[str, list[dict[str, Loc]]] = {}
    for name in sorted(tables):
        locs = _map_table(m, name, tables[name], clean, items)
        if locs is None:
            m.unknown_tables.append(name)
        else:
            table_locs[name] = locs

    # ---- classify counts
    t = settings.threshold
    exempt: dict[str, str] = {}
    not_applied: list[str] = []
    bound, binding = (exceptions.binding(results.get("inputs")) if exceptions is not None
                      else (False, ""))
    if exceptions is not None and not bound:
        not_applied = sorted(c.path for c in exceptions.cells)
    if exceptions is not None:
        for c in exceptions.cells if bound else ():
            if c.path in m.values:
                if m.values[c.path] == c.value:
                    exempt[c.path] = c.reason or exceptions.reason
                else:
                    not_applied.append(c.path)
        for path, reason in exceptions.structural_zeros:
            if m.values.get(path) == 0:
                m.structural[path] = reason
    # One key per quantity: the same count under two keys (another table) is one variable.
    m, rep, members = _canonical(m)
    json_locs_c = {p: _canon_loc(loc, rep) for p, loc in m.json.items()}
    m.json = json_locs_c
    table_locs = {name: [{c: _canon_loc(loc, rep) for c, loc in row.items()} for row in locs]
                  for name, locs in table_locs.items()}
    m.derived_sections = {k: _canon_loc(loc, rep) for k, loc in m.derived_sections.items()}
    exempt = {rep[k]: v for k, v in exempt.items()}
    structural = {rep[k]: v for k, v in m.structural.items()}
    public = set(exempt) | set(structural)

    def disclosive(k: str, v: int) -> bool:
        if k in public:
            return False
        return (0 < v < t) or v < 0 or (v == 0 and settings.zeros_disclosive)

    candidates = {k for k, v in m.values.items() if disclosive(k, v)}
    solver = _Solver(m)
    # everything the published counts and the relations already determine is public
    closure = solver.pinned(set(m.values) - public, public) if public else set()
    public_derived = candidates & closure
    primary = candidates - public_derived
    public |= closure
    suppress = settings.suppress or bool(exceptions and exceptions.suppress_other_cells)

    all_locs: list[Loc] = list(m.json.values())
    for locs in table_locs.values():
        for row in locs:
            all_locs += list(row.values())

    def known_given(s: set[str], withhold_unknown: bool) -> set[str]:
        known = set(public)
        for loc in all_locs:
            if not _hidden(loc, s, withhold_unknown):
                known |= _touch(loc)
        return known

    s: set[str] = set()
    exposed: set[str] = set()
    unprotectable: set[str] = set()
    if primary and not suppress:
        known = known_given(set(), False)
        exposed = (primary & known) | solver.pinned(primary - known, known)
    elif primary:
        s = set(primary)
        cost = _complement_cost(m, all_locs)
        for _ in range(10 * len(m.values) + 10):
            known = known_given(s, True)
            hit = solver.pinned(s, known) - unprotectable
            if not hit:
                break
            added = False
            for q in sorted(hit):
                cands = {p for total, parts in m.eqs if q in (total, *parts)
                         for p in (total, *parts)}
                cands = {p for p in cands if p not in s and p in known and p not in public}
                if not cands:
                    # pinned through a chain of relations: suppress a shown count on the
                    # boundary of the system that determines it
                    _, cons = solver.component(q, known)
                    cands = {p for i in cons for p in solver.cons[i][0]
                             if p not in s and p in known and p not in public}
                if cands:
                    s.add(min(cands, key=cost))
                    added = True
            if not added:
                # nothing shown is left to suppress around these counts
                unprotectable |= hit
                break
    anything_hidden = bool(primary)
    secondary = s - primary
    # publication mode: suppression asked for, or needed; analyses built from counts these
    # rules do not track are withheld then
    publication = suppress or anything_hidden

    def hidden(loc: Loc) -> bool:
        return _hidden(loc, s, anything_hidden, publication)

    # ---- per-output checks and rendering
    outputs: list[OutputCheck] = []
    withheld_tables: list[str] = []
    withheld_files: list[str] = []

    def check(name: str, locs: Iterable[tuple[Any, Loc]]) -> tuple[OutputCheck, list[Any]]:
        counts = 0
        ex = pd_ = st = 0
        supp_p = supp_s = withheld = unknown_shown = unknown_hidden = 0
        uncleared_hidden: dict[str, int] = {}
        uncleared_shown = 0
        fails: set[str] = set()
        unprot: set[str] = set()
        hide: list[Any] = []
        derived_shown = 0
        for where, loc in locs:
            if isinstance(where, tuple) and where and where[0] in m.unknown_sections:
                if hidden(loc):
                    hide.append(where)
                continue
            if isinstance(loc, Derived) and not hidden(loc):
                derived_shown += 1
            if isinstance(loc, Count):
                counts += 1
                k = loc.key
                ex += k in exempt
                pd_ += k in public_derived
                st += k in structural
                if k in exposed:
                    fails.add(loc.label or k)
                if k in unprotectable:
                    unprot.add(loc.label or k)
            if isinstance(loc, Derived):
                fails |= loc.deps & exposed
                unprot |= loc.deps & unprotectable
            if hidden(loc):
                hide.append(where)
                if isinstance(loc, Count):
                    supp_p += loc.key in primary
                    supp_s += loc.key in secondary
                elif isinstance(loc, Uncleared):
                    uncleared_hidden[loc.reason] = uncleared_hidden.get(loc.reason, 0) + 1
                elif loc == UNKNOWN:
                    unknown_hidden += 1
                else:
                    withheld += 1
            elif loc == UNKNOWN:
                unknown_shown += 1
            elif isinstance(loc, Uncleared):
                uncleared_shown += 1
        reasons = []
        for group, what in ((fails, f"may need suppressing (below {t}, or zero)"),
                            (unprot, "cannot be protected by suppression")):
            if group:
                listed = ", ".join(sorted(group)[:20]) + (" ..." if len(group) > 20 else "")
                reasons.append(f"threshold: {len(group)} count(s) {what}: {listed}")
        fails |= unprot
        if supp_p or supp_s:
            reasons.append(f"threshold: {supp_p + supp_s} cell(s) suppressed as [c] "
                           f"({supp_p} primary, {supp_s} secondary)")
        if withheld:
            reasons.append(f"{withheld} statistic(s) withheld as [c]: computed from "
                           "suppressed counts")
        if unknown_hidden:
            reasons.append(f"{unknown_hidden} value(s) not recognised by the disclosure "
                           "rules withheld as [c] (counts were suppressed elsewhere in the run)")
        for why, k in sorted(uncleared_hidden.items()):
            reasons.append(f"{k} value(s) withheld (publication mode): {why}")
        if unknown_shown:
            reasons.append(f"{unknown_shown} value(s) not recognised by the disclosure rules "
                           "shown unchecked: an output checker must review them")
        if uncleared_shown:
            reasons.append(f"{uncleared_shown} value(s) computed from counts these rules do not "
                           "track shown unchecked (no suppression asked for or needed): an "
                           "output checker must review them")
        if ex:
            reasons.append(f"{ex} count location(s) cleared by the experiment's recorded "
                           "exception (counts the data owner already published)")
        if pd_:
            reasons.append(f"{pd_} count(s) below the threshold are recoverable from counts "
                           "already published")
        if st:
            reasons.append(f"{st} structural zero(s)")
        if counts and not fails and not (supp_p or supp_s):
            reasons.append(f"{counts} count location(s) checked against threshold {t}")
        if derived_shown:
            reasons.append(f"{derived_shown} derived value(s) (percentages, means, statistics) "
                           "computed only from cleared counts")
        status = "fail" if fails else ("review" if hide or unknown_shown or uncleared_shown
                                       else "pass")
        return OutputCheck(name, status, tuple(reasons)), hide

    json_locs = list(m.json.items())
    res_check, res_hide = check(results_name, json_locs)
    cleared = copy.deepcopy(clean)
    for path in res_hide:
        if path and path[0] in m.unknown_sections:
            continue
        _set_path(cleared, path, marker)
    for section in m.unknown_sections:
        top = section.split(".")
        if anything_hidden:
            _set_path(cleared, tuple(top), WITHHELD_SECTION if marker is not None else None)
    whole: list[str] = []
    if publication:
        for section, why in sorted(m.uncleared_sections.items()):
            _set_path(cleared, tuple(section.split(".")),
                      f"{WITHHELD_DC}: {why}]" if marker is not None else None)
            whole.append(section)
    for section, loc in sorted(m.derived_sections.items()):
        if hidden(loc):
            _set_path(cleared, tuple(section.split(".")),
                      f"{WITHHELD_DC}: computed from suppressed counts]"
                      if marker is not None else None)
            whole.append(section)
    if whole:
        res_check = OutputCheck(res_check.output, res_check.status, (
            *res_check.reasons, "sections withheld as a whole (publication mode): "
            + ", ".join(sorted(whole))))
    if m.unknown_sections:
        note = ("sections not recognised by the disclosure rules: "
                + ", ".join(sorted(m.unknown_sections))
                + ("; withheld" if anything_hidden else "; shown unchecked"))
        res_check = OutputCheck(res_check.output,
                                "fail" if res_check.status == "fail" else "review",
                                (*res_check.reasons, note))
    outputs.append(res_check)

    cleared_tables: dict[str, pl.DataFrame] = {}
    for name in sorted(tables):
        frame = tables[name]
        out_name = f"{table_prefix}{name}.csv"
        if name in table_locs:
            locs = [((i, c), loc) for i, row in enumerate(table_locs[name])
                    for c, loc in row.items()]
            oc, hide = check(out_name, locs)
            if name in DERIVED_TABLES and frame.height and len(hide) == frame.height * frame.width:
                outputs.append(OutputCheck(out_name, "review", (
                    "withheld from publication: every value is computed from counts that were "
                    "suppressed",), withheld=True))
                withheld_tables.append(name)
                continue
            outputs.append(oc)
            cleared_tables[name] = _hide_cells(frame, hide, marker)
            continue
        if name in UNCLEARED_TABLES and publication:
            outputs.append(OutputCheck(out_name, "review", (
                f"withheld from publication (publication mode): {UNCLEARED_TABLES[name]}",),
                withheld=True))
            withheld_tables.append(name)
            continue
        what = (f"table computed from counts these rules do not track ({UNCLEARED_TABLES[name]})"
                if name in UNCLEARED_TABLES else "table not recognised by the disclosure rules")
        small = _small_ints(frame, t, settings.zeros_disclosive)
        if small and not suppress:
            outputs.append(OutputCheck(out_name, "fail", (
                f"{what} holds whole numbers below {t} "
                "(or zeros) and cannot be suppressed automatically",)))
        elif small or anything_hidden:
            why = (f"holds whole numbers below {t} (or zeros)" if small else
                   "counts elsewhere in the run were suppressed and it may use them")
            outputs.append(OutputCheck(out_name, "review", (
                f"{what} and {why}: withheld from "
                "publication",), withheld=True))
            withheld_tables.append(name)
        else:
            outputs.append(OutputCheck(out_name, "review", (
                f"{what}; its whole numbers are all at "
                f"least {t}: an output checker must review it",)))
            cleared_tables[name] = frame
    for f in sorted(files):
        if anything_hidden:
            outputs.append(OutputCheck(f, "review", (
                "cannot be checked cell by cell and counts of this run were suppressed, so it "
                "may show them: withheld from publication (build it from "
                "natexp.bundle.disclosure.publication_mode results instead)",), withheld=True))
            withheld_files.append(f)
        else:
            outputs.append(OutputCheck(f, "review", (
                "cannot be checked cell by cell; every recognised count of the run cleared: "
                "an output checker must review it",)))
    if primary and not suppress:
        # strict mode: everything built from the run is blocked by the failing outputs
        pass

    def expand(keys: Iterable[str]) -> list[str]:
        return sorted({k for r in keys for k in members.get(r, [r])})

    cells = {
        "suppression_applied": bool(s),
        "threshold_failures": expand(exposed),
        "suppressed_primary": expand(primary & s),
        "suppressed_secondary": expand(secondary),
        "unprotectable": expand(unprotectable),
        "cleared_by_exception": expand(exempt),
        "exceptions_not_applied": sorted(not_applied),
        "recoverable_from_published": expand(public_derived),
        "structural_zeros": expand(structural),
        "counts_checked": len(m.values),
        "unrecognised_sections": sorted(m.unknown_sections),
        "withheld_tables": sorted(withheld_tables),
        "withheld_files": sorted(withheld_files),
    }
    exc = {}
    if exceptions is not None:
        exc = {"experiment": exceptions.experiment, "reason": exceptions.reason,
               "source": exceptions.source,
               "suppress_other_cells": exceptions.suppress_other_cells,
               "cells_listed": len(exceptions.cells), "cells_cleared": len(exempt),
               "applied": bound,
               "binding": (binding if bound else f"published-count exceptions IGNORED: "
                           f"{binding}")}
    log = DisclosureLog(settings, tuple(outputs), cells, exc)
    return Publication(cleared, cleared_tables, log, tuple(withheld_files))


def _hide_cells(frame: pl.DataFrame, hide: list[tuple[int, str]],
                marker: str | None = SUPPRESSED) -> pl.DataFrame:
    if not hide:
        return frame
    by_col: dict[str, list[int]] = {}
    for i, c in hide:
        by_col.setdefault(c, []).append(i)
    idx = pl.int_range(pl.len(), dtype=pl.Int64)
    exprs = []
    for c, rows in by_col.items():
        if marker is None:
            exprs.append(pl.when(idx.is_in(rows)).then(None).otherwise(pl.col(c)).alias(c))
        else:
            exprs.append(pl.when(idx.is_in(rows)).then(pl.lit(marker))
                         .otherwise(pl.col(c).cast(pl.String)).alias(c))
    return frame.with_columns(exprs)
