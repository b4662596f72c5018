"""The report a person reads: one self-contained HTML file and its Markdown twin.

:func:`write_report` is what the pipeline calls on its staging folder (before the folder is
moved into place): it draws every figure whose inputs the run produced
(:func:`write_figures`, PNG at 300 dpi under ``figures/``), then writes ``report.html`` (figures
embedded as base64 data URIs, inline CSS, no script, no network: a Content-Security-Policy
forbids any request) and ``report.md`` (figures referenced by relative path).

The report consumes results and computes none: every number comes from ``results`` (the dict
written to ``results.json``) or from ``tables`` (the polars frames written as CSV). Text is
rendered with Jinja2 templates (``natexp/report/templates``). Output is byte-identical across
runs: no timestamps, fixed ordering, deterministic PNGs.

Tables the report uses when present (name in ``tables`` -> what it draws):

* ``flow``, ``uptake``, ``balance_identified``, ``balance_reached``, ``replication``: the
  pipeline's tables;
* the study's descriptive table (named by its ``descriptive.key``) and its secondary tables
  (``secondary_<key>`` for each declared key, drawn by kind): every word about them (titles,
  captions, labels, summary sentences, published figure numbers) comes from the study
  description (``results["config"]["study"]``, :func:`study_of`);
* ``children_by_age`` (``age``, ``n``): children by age;
* ``tipping_point`` (else ``results["sensitivity"]["nonresponse"]["grid"]``),
  ``randomization_distribution``, ``leave_one_area_out`` (else
  ``results["sensitivity"]["leave_one_out"]["table"]``), ``placebo_in_time`` (else
  ``results["sensitivity"]["placebo_in_time"]["table"]``), ``specification_curve`` (else
  ``results["sensitivity"]["specification_curve"]["table"]``): the sensitivity figures;
* ``event_study``: the staggered-rollout event study.

Publication mode (:func:`write_publication_report`) builds the same report from
disclosure-controlled results (:func:`natexp.bundle.disclosure.publication_mode`: a suppressed
count or a withheld statistic is the marker ``[c]``, a section withheld as a whole is a
``[withheld: ...]`` string). Every table shows ``[c]`` for a suppressed count and ``withheld``
for a statistic computed from suppressed counts; sentences that would need a withheld
statistic say ``withheld: disclosure control`` instead; totals and percentages are computed
only from shown values (a sum with a suppressed part is itself ``[c]``); figures leave
suppressed values out, or are withheld with a note; a banner says ``PUBLICATION MODE:
disclosure-controlled``. The replication bundle registers it as a renderer
(``natexp.bundle.build.RENDERERS``). The normal report is unchanged by any of this.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from natexp.report import figures as F
from natexp.study import SecondarySpec, Study

__all__ = ["FIGURES", "FigureSpec", "render_figures", "render_report", "write_figures",
           "write_publication_report", "write_report"]

_TEMPLATES = Path(__file__).parent / "templates"

#: A suppressed count or withheld statistic in cleared results (natexp.bundle.disclosure's
#: ``SUPPRESSED``, the GSS marker for confidential values).
SUPPRESSED = F.SUPPRESSED
#: How a results section withheld as a whole by disclosure control starts.
_WITHHELD_PREFIX = "[withheld"
#: What the report says instead of a statistic computed from suppressed counts.
WITHHELD_TEXT = "withheld: disclosure control"


def _is_marker(v: Any) -> bool:
    """True for a suppressed/withheld marker of cleared results (never for a real value)."""
    return isinstance(v, str) and (v == SUPPRESSED or v.startswith(_WITHHELD_PREFIX))


def _marker_reason(v: Any) -> str:
    """The reason inside a ``[withheld: disclosure control: REASON]`` marker ('' if none)."""
    if not isinstance(v, str) or not v.startswith(_WITHHELD_PREFIX):
        return ""
    text = v.strip("[]")
    for head in ("withheld: disclosure control:", "withheld:"):
        if text.startswith(head):
            return text[len(head):].strip()
    return ""


def _add(*values: Any) -> Any:
    """Sum; ``[c]`` if any part is suppressed (a total that needs it is not shown)."""
    if any(_is_marker(v) for v in values):
        return SUPPRESSED
    return sum(values)


def _sub(a: Any, b: Any) -> Any:
    return SUPPRESSED if _is_marker(a) or _is_marker(b) else a - b


def _div(a: Any, b: Any) -> Any:
    return SUPPRESSED if _is_marker(a) or _is_marker(b) else a / b


# --------------------------------------------------------------------------------------------
# formatting (for people: sensible precision, no NaN)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))


def fmt_p(p: Any) -> str:
    """A p-value for people: ``< 0.001`` below 0.001, two significant digits otherwise.

    Examples
    --------
    >>> fmt_p(0.72764), fmt_p(0.0059336), fmt_p(3.6e-15), fmt_p(None)
    ('0.73', '0.0059', '< 0.001', '-')

    A statistic withheld by disclosure control (publication mode):

    >>> fmt_p("[c]")
    'withheld'
    """
    if _is_marker(p):
        return "withheld"
    if _missing(p):
        return "-"
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.2g}"


def fmt_num(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (integers as integers; missing as ``-``).

    Examples
    --------
    >>> fmt_num(96.24261), fmt_num(12), fmt_num(float("nan")), fmt_num(0.000123)
    ('96.2', '12', '-', '0.000123')

    A count suppressed by disclosure control (publication mode) stays the marker:

    >>> fmt_num("[c]")
    '[c]'
    """
    if _is_marker(v):
        return SUPPRESSED
    if _missing(v):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v)}"
    return f"{v:.{digits}g}"


def fmt_pct(v: Any, digits: int = 0) -> str:
    """A proportion (0-1) as a percentage.

    Examples
    --------
    >>> fmt_pct(0.2), fmt_pct(0.13333, 1), fmt_pct(None), fmt_pct("[c]")
    ('20%', '13.3%', '-', 'withheld')
    """
    if _is_marker(v):
        return "withheld"
    return "-" if _missing(v) else f"{100 * float(v):.{digits}f}%"


def fmt_pp(v: Any, digits: int = 1) -> str:
    """A risk difference (proportion scale) in percentage points.

    Examples
    --------
    >>> fmt_pp(0.0667), fmt_pp(-0.2359), fmt_pp("[c]")
    ('6.7', '-23.6', 'withheld')
    """
    if _is_marker(v):
        return "withheld"
    return "-" if _missing(v) else f"{100 * float(v):.{digits}f}"


def _of(x: Any, n: Any) -> str:
    if _missing(x) or _missing(n):
        return "-"
    if _is_marker(x) or _is_marker(n):
        return f"{fmt_num(x)} of {fmt_num(n)}"
    return f"{int(x)} of {int(n)} ({fmt_pct(x / n, 0) if n else '-'})"


# --------------------------------------------------------------------------------------------
# blocks of the report (the templates draw them)


def _p(text: str) -> dict:
    return {"type": "p", "text": text}


def _ul(items: Sequence[str]) -> dict:
    return {"type": "ul", "items": [str(i) for i in items if i]}


def _callout(text: str, kind: str = "info") -> dict:
    return {"type": "callout", "kind": kind, "text": text}


def _table(caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
           align: str | None = None, notes: Sequence[str] = (), collapsed: bool = False,
           status_column: int | None = None) -> dict:
    align = align or ("l" + "r" * (len(columns) - 1))
    return {"type": "table", "caption": caption, "columns": list(columns),
            "rows": [["" if c is None else str(c) for c in r] for r in rows],
            "align": list(align), "notes": list(notes), "collapsed": collapsed,
            "status_column": status_column}


def _get(d: Any, *path: Any, default: Any = None) -> Any:
    for key in path:
        if isinstance(d, Mapping) and key in d:
            d = d[key]
        elif isinstance(d, Sequence) and not isinstance(d, str) and isinstance(key, int) \
                and -len(d) <= key < len(d):
            d = d[key]
        else:
            return default
    return d


class _Records:
    """A cleared table for the report's text: typed cells, suppressed ones as ``[c]``.

    Offers the part of the polars API the sections use (``columns``, ``height``,
    ``iter_rows(named=True)``).
    """

    def __init__(self, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        self.columns = list(columns)
        self._rows = rows

    @property
    def height(self) -> int:
        return len(self._rows)

    def iter_rows(self, *, named: bool = False):
        for r in self._rows:
            yield dict(r) if named else tuple(r[c] for c in self.columns)


def _frame(tables: Mapping[str, Any], name: str, fallback: Any = None) -> pl.DataFrame | None:
    t = tables.get(name) if tables else None
    if t is None:
        t = fallback
    if t is None or _is_marker(t):
        return None
    if isinstance(t, _Records):
        return t  # type: ignore[return-value]
    if isinstance(t, pl.LazyFrame):
        t = t.collect()
    if not isinstance(t, pl.DataFrame):
        try:
            t = pl.DataFrame(t)
        except (TypeError, ValueError):
            return None
    return t


# --------------------------------------------------------------------------------------------
# the study: every study-specific word comes from its description


def study_of(results: Mapping[str, Any]) -> Study:
    """The study a run's results describe (``results["config"]["study"]``).

    Results without a study description (a hand-made dict) get a generic :class:`Study`
    with no descriptive or secondary tables.

    Examples
    --------
    >>> study_of({"config": {"study": {"name": "demo", "outcome": {"column": "took_up"}}}}).name
    'demo'
    >>> study_of({}).descriptive is None
    True
    """
    spec = _get(results, "config", "study")
    return Study.from_dict(spec) if isinstance(spec, Mapping) else Study()


def _numbers(published: str) -> list[int]:
    import re

    return [int(n) for n in re.findall(r"\d+", published or "")]


def figure_name(published: str, key: str) -> str:
    """A figure's file stem: ``fig`` + the published figure numbers + ``_`` + its key.

    Examples
    --------
    >>> figure_name("Figures 7-8", "uptake"), figure_name("", "contact")
    ('fig07_08_uptake', 'fig_contact')
    """
    nums = _numbers(published)
    return "fig" + "".join(f"{n:02d}_" for n in nums) + ("" if nums else "_") + key


def _refs(published: Sequence[str]) -> str:
    """Published references joined: figure numbers as one range (``Figures 6-11``)."""
    nums = sorted({n for p in published if p.lower().startswith("figure") for n in _numbers(p)})
    other = [p for p in published if p and not p.lower().startswith("figure")]
    parts = []
    if nums:
        parts.append(f"Figure {nums[0]}" if len(nums) == 1 else
                     f"Figures {nums[0]}-{nums[-1]}"
                     if nums == list(range(nums[0], nums[-1] + 1)) else
                     "Figures " + ", ".join(map(str, nums)))
    parts += list(dict.fromkeys(other))
    return ", ".join(parts)


def _report_ref(published: str, text: str) -> str:
    """``Report <published>: text.`` (just ``Text.`` when nothing was published)."""
    text = text.rstrip(".")
    if published:
        return f"Report {published}: {text}."
    return f"{text[:1].upper()}{text[1:]}."


def _with_ref(title: str, published: str) -> str:
    return f"{title} (report {published})" if published else title


def _secondary_order(study: Study) -> list[SecondarySpec]:
    """The secondary tables in the order of their published figures (undeclared last)."""
    def rank(i_spec):
        nums = _numbers(i_spec[1].published)
        return (nums[0] if nums else math.inf, i_spec[0])
    return [s for _, s in sorted(enumerate(study.secondary), key=rank)]


class _Count:
    """A count in a summary sentence: ``{k}`` is "x of n (p%)", ``{k:n}`` the bare count."""

    def __init__(self, value: Any, base: Any) -> None:
        self.value, self.base = value, base

    def __format__(self, spec: str) -> str:
        if spec == "n":
            return fmt_num(self.value)
        return _of(self.value, self.base)


class _Fields(dict):
    def __init__(self, values: Mapping[str, Any], base: Any) -> None:
        super().__init__()
        self.values, self.base = values, base

    def __missing__(self, key: str) -> Any:
        if key == "n":
            return _Count(self.base, self.base).value
        parts = key.split("+")
        vals = [self.values.get(p) for p in parts]
        if any(v is None for v in vals):
            raise KeyError(key)
        return _Count(vals[0] if len(vals) == 1 else _add(*vals), self.base)


def _sentence_from(template: str, values: Mapping[str, Any], base: Any) -> str | None:
    """A study's summary sentence filled with counts (None if it names an absent count)."""
    try:
        return " ".join(template.split()).format_map(_Fields(values, base))
    except (KeyError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------------------------
# the figures


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report.

    Attributes
    ----------
    name : str
        File stem (``figures/<name>.png``) and key of :func:`write_figures`' result.
    section : str
        Report section it belongs to.
    caption : str
        Shown under the figure.
    build : callable
        ``build(results, tables) -> plotnine.ggplot or None`` (None: inputs absent).
    width, height : float
        Inches at 300 dpi.
    table : str
        The table it draws (publication mode checks its suppressed values).
    rows : (str, tuple of str) or None
        The rows it draws (column, values); None: every row.
    columns : tuple of str
        The columns it draws.
    policy : str
        ``mask``: drawn without suppressed values (bars left out, labels ``[c]``); ``all``:
        withheld when any value of its table is suppressed or withheld (estimates,
        distributions, grids: leaving a point out would still show the rest of a curve that
        was computed with it).
    """

    name: str
    section: str
    caption: str
    build: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
    width: float = 7.0
    height: float = 4.5
    table: str = ""
    rows: tuple[str, tuple[str, ...]] | None = None
    columns: tuple[str, ...] = ()
    policy: str = "all"


def _sens(results: Mapping[str, Any], *path: str) -> Any:
    return _get(results, "sensitivity", *path)


def _reached_n(results: Mapping[str, Any]) -> Any:
    """Families reached by the follow-up call (0 if the run has none)."""
    by = {(r.get("step"), r.get("arm")): r.get("n") for r in results.get("flow") or []
          if isinstance(r, Mapping)}
    parts = [by.get(("reached", a)) for a in ("treatment", "control")]
    if all(p is not None for p in parts):
        return _add(*parts)
    for spec in study_of(results).secondary:  # no flow: the outcome table's total
        if spec.kind == "outcome_routes":
            return _get(results, "secondary", spec.key, "total", "n", default=0)
    return 0


def _has_reached(results: Mapping[str, Any]) -> bool:
    return bool(_reached_n(results))


def _build_flow(results, tables):
    t = _frame(tables, "flow", results.get("flow"))
    return None if t is None else F.fig_flow(t)


def _build_forest(results, tables):
    t = _frame(tables, "uptake")
    if t is None or not _get(results, "primary_outcome", "counts", "n1") \
            or not _get(results, "primary_outcome", "counts", "n2"):
        return None
    return F.fig_forest(t, counts=_get(results, "primary_outcome", "counts"))


def _secondary(name: str, fn: Callable) -> Callable:
    def build(results, tables):
        t = _frame(tables, f"secondary_{name}")
        return None if t is None or not _has_reached(results) else fn(t)
    return build


def _build_descriptive(key: str, fn: Callable) -> Callable:
    def build(results, tables):
        t = _frame(tables, key)
        return None if t is None else fn(t)
    return build


def _build_ages(title: str, subtitle: str) -> Callable:
    def build(results, tables):
        t = _frame(tables, "children_by_age")
        return (None if t is None or t.height == 0
                else F.fig_child_ages(t, title=title, subtitle=subtitle))
    return build


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _secondary_figure(study: Study, spec: SecondarySpec) -> FigureSpec:
    """The figure of a secondary table, drawn by its kind with the study's words."""
    title = _with_ref(spec.heading, spec.published)
    name = figure_name(spec.published, spec.key)
    caption = _report_ref(spec.published, spec.caption)
    arms = ("treatment", "control", "total")
    if spec.kind == "crossed":
        cells = {k: spec.labels.get(k, k) for k in spec.cells}
        col = spec.columns["col"]
        return FigureSpec(name, "secondary", caption, _secondary(
            spec.key, lambda t: F.fig_contact(t, cells, col, title=title)),
            table=f"secondary_{spec.key}", rows=("measure", (col,)), columns=("n",),
            policy="mask")
    if spec.kind == "outcome_routes":
        out = study.outcome
        return FigureSpec(name, "secondary", caption, _secondary(
            spec.key, lambda t: F.fig_uptake(
                t, yes_label=out.yes_label, no_label=out.no_label, title=title,
                subtitle=f"{_cap(out.label)} before follow-up, by arm")), 6.0, 4.5,
            table=f"secondary_{spec.key}", rows=("group", ("treatment", "control")),
            columns=("yes", "no", "n", "percent"), policy="mask")
    if spec.kind == "category":
        return FigureSpec(name, "secondary", caption, _secondary(
            spec.key, lambda t: F.fig_referral_response(
                _row_column(t, spec.row, "response"), title=title, subtitle=spec.title)),
            7.0, 4.5,
            table=f"secondary_{spec.key}", columns=arms, policy="mask")
    if spec.kind == "flags":
        return FigureSpec(name, "secondary", caption, _secondary(
            spec.key, lambda t: F.fig_reasons(_row_column(t, spec.row, "reason"), title=title,
                                              subtitle=spec.title)), 7.0, 3.6,
            table=f"secondary_{spec.key}", columns=("yes", "no", "n", "percent_yes"),
            policy="mask")
    return FigureSpec(name, "secondary", caption, _secondary(  # consent
        spec.key, lambda t: F.fig_interview(t, title=title)),
        table=f"secondary_{spec.key}", rows=("measure", ("agreed", "not_agreed", "completed")),
        columns=arms, policy="mask")


def _row_column(t: Any, row: str, name: str) -> Any:
    """A secondary table whose value column (the study's ``row``) is named ``name``, as the
    figure expects (the study chooses the CSV column's name)."""
    if isinstance(t, pl.DataFrame) and row != name and row in t.columns and name not in t.columns:
        return t.rename({row: name})
    return t


def _descriptive_figures(study: Study) -> list[FigureSpec]:
    desc = study.descriptive
    if desc is None:
        return []
    labels = {q.key: q.short_label for q in desc.questions}
    groups = {g: desc.group_label(g) for g in desc.groups.values()}
    ref = desc.published or desc.title
    by = study.label(desc.by)
    out = []
    for fig in desc.figures:
        qs = {q: labels[q] for q in fig.questions}
        first = next(q for q in desc.questions if q.key == fig.questions[0])
        subtitle = (f"Percentage of children whose answer is yes: {first.short_label.lower()},"
                    f"\nby {by} ({ref} counts)" if len(qs) == 1 else
                    f"Percentage of children, by {by} ({ref} counts)")

        def draw(t, qs=qs, fig=fig, subtitle=subtitle):
            return F.fig_descriptive(t, qs, groups, title=_with_ref(fig.title, fig.published),
                                     subtitle=subtitle)
        out.append(FigureSpec(
            figure_name(fig.published, fig.key), "descriptive",
            _report_ref(fig.published, fig.caption), _build_descriptive(desc.key, draw),
            6.0 if len(qs) == 1 else 7.0, 4.5, table=desc.key,
            rows=("table", tuple(fig.questions)),
            columns=tuple(f"{g}_{k}" for g in desc.groups.values() for k in ("yes", "no")),
            policy="mask"))
    return out


def _ages_figure(study: Study) -> FigureSpec:
    pub = study.descriptive.ages_published if study.descriptive else ""
    children = study.wording.children
    return FigureSpec(figure_name(pub, "child_ages"), "descriptive",
                      _report_ref(pub, f"{children} by age"),
                      _build_ages(_with_ref(f"Ages of the {children}", pub),
                                  f"Count of {children} in the identification data"),
                      7.0, 4.0, table="children_by_age", columns=("n",), policy="mask")


def _build_tipping(results, tables):
    t = _frame(tables, "tipping_point", _sens(results, "nonresponse", "grid"))
    if t is None:
        return None
    return F.fig_tipping_point(t, mar_cell=_sens(results, "nonresponse", "mar_cell"),
                               counts=_sens(results, "nonresponse", "counts"),
                               confidence_level=_sens(results, "nonresponse",
                                                      "confidence_level") or 0.95)


def _build_randomization(results, tables):
    t = _frame(tables, "randomization_distribution")
    if t is None:
        return None
    return F.fig_randomization(t, pvalue=_sens(results, "randomization", "pvalue"))


def _build_loo(results, tables):
    t = _frame(tables, "leave_one_area_out", _sens(results, "leave_one_out", "table"))
    return None if t is None or t.height == 0 else F.fig_leave_one_out(t)


def _build_placebo(results, tables):
    t = _frame(tables, "placebo_in_time", _sens(results, "placebo_in_time", "table"))
    if t is None or t.height == 0:
        return None
    cl = _sens(results, "placebo_in_time", "meta", "confidence_level") or 0.95
    among = _sens(results, "placebo_in_time", "meta", "among")
    return F.fig_placebo(
        t, confidence_level=cl, title="In-time placebos among the control families",
        xlabel="Not-yet-live areas pretended live this many months early",
        population="Control families" + (f" with {among}" if among else ""))


#: Words for the specification curve's choice columns (any other: its study label).
_SPEC_CHOICES = {"design": "Design", "window": "Window", "followup_date": "Follow-up date",
                 "custody": "Custody", "method": "Method", "among": "Among"}


def method_words(method: str) -> str:
    """A ``;``-separated list of natexp method names in words.

    Examples
    --------
    >>> method_words("risk_difference.newcombe; test.boschloo")
    'Newcombe interval; Boschloo test'
    """
    out = []
    for part in str(method).split(";"):
        family, _, name = part.strip().partition(".")
        words = name.replace("_", " ")
        words = words[:1].upper() + words[1:]
        out.append(f"{words} test" if family == "test" else
                   f"{words} interval" if name else family.replace("_", " "))
    return "; ".join(out)


def _spec_labels(results: Mapping[str, Any], t: pl.DataFrame) -> dict[str, str]:
    study = study_of(results)
    words = {c: _SPEC_CHOICES.get(c) or _cap(study.label(c)) for c in t.columns}
    if "method" in t.columns:
        words.update({m: method_words(m) for m in t["method"].drop_nulls().unique()})
    return words


def _build_spec(results, tables):
    t = _frame(tables, "specification_curve", _sens(results, "specification_curve", "table"))
    return None if t is None or t.height == 0 else F.fig_specification_curve(
        t, labels=_spec_labels(results, t))


def _build_event(results, tables):
    t = _frame(tables, "event_study")
    if t is None or "staggered" not in results:
        return None
    return F.fig_event_study(t, overall=_get(results, "staggered", "aggregate", "dynamic",
                                            "overall"))


#: The figures of every study, before (design, primary) and after (sensitivity, staggered)
#: the study's own.
_HEAD: tuple[FigureSpec, ...] = (
    FigureSpec("flow", "design", "Cohort flow: every input family lands in exactly one box.",
               _build_flow, 7.5, 7.5, table="flow", columns=("n",), policy="mask"),
    FigureSpec("primary_forest", "primary",
               "The primary risk difference under every interval method the run computed.",
               _build_forest, 7.5, 3.8, table="uptake"),
)
_TAIL: tuple[FigureSpec, ...] = (
    FigureSpec("tipping_point", "sensitivity",
               "Every possible outcome of the unreached families and the difference it implies.",
               _build_tipping, 7.0, 5.5, table="tipping_point"),
    FigureSpec("randomization", "sensitivity",
               "The primary difference under every assignment the declared mechanism allows.",
               _build_randomization, table="randomization_distribution"),
    FigureSpec("leave_one_out", "sensitivity",
               "The difference with each area left out in turn.", _build_loo, 7.0, 5.0,
               table="leave_one_area_out"),
    FigureSpec("placebo_in_time", "sensitivity",
               "In-time placebos: control families of areas pretended live early.",
               _build_placebo, table="placebo_in_time"),
    FigureSpec("specification_curve", "sensitivity",
               "The estimate under every specification of the analysis.", _build_spec,
               7.0, 5.0, table="specification_curve"),
    FigureSpec("event_study", "staggered",
               "Effect of going live by periods since go-live (Callaway and Sant'Anna).",
               _build_event, 7.5, 4.5, table="event_study"),
)




def figure_specs(study: Study) -> tuple[FigureSpec, ...]:
    """Every figure the report of ``study`` can hold, in report order.

    The secondary tables' figures (by kind, in the order of their published figures), the
    descriptive table's figures and children by age come from the study's description; file
    names are :func:`figure_name` of the published reference and the declared key.

    Examples
    --------
    >>> [f.name for f in figure_specs(Study())][:3]
    ['flow', 'primary_forest', 'fig_child_ages']
    """
    return (*_HEAD, *(_secondary_figure(study, s) for s in _secondary_order(study)),
            *_descriptive_figures(study), _ages_figure(study), *_TAIL)


#: The figures of a run without a study description (see :func:`figure_specs`).
FIGURES: tuple[FigureSpec, ...] = figure_specs(Study())


def write_figures(results: Mapping[str, Any], tables: Mapping[str, Any],
                  out_dir: str | Path, *, dpi: int = F.DPI,
                  rendered: Mapping[str, bytes] | None = None) -> dict[str, Path]:
    """Draw every figure whose inputs the run produced and save it as PNG.

    During a run with a helper process (:mod:`natexp.workers`) the helper renders figures from
    the front of the list while this process renders from the back; the helper sends PNG bytes
    back and this process writes every file (the same bytes as rendering here: tested).

    Parameters
    ----------
    results : Mapping
        The run's results dict.
    tables : Mapping of str to polars.DataFrame
        The run's tables (see the module docstring for the names used).
    out_dir : str or Path
        Folder of the PNGs (created).
    dpi : int, default 300
    rendered : Mapping of str to bytes, optional
        What :func:`render_figures` returned for these results (the pipeline renders while
        its helper finishes DoWhy, which no figure shows); default: rendered here.

    Returns
    -------
    dict of str to Path
        Figure name -> PNG path, in report order.

    Examples
    --------
    >>> import tempfile
    >>> flow = pl.DataFrame({"order": [0, 1, 1], "step": ["input", "identified", "identified"],
    ...                      "arm": ["all", "treatment", "control"],
    ...                      "label": ["In", "Identified", "Identified"], "n": [6, 3, 3]})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_figures({}, {"flow": flow}, d, dpi=40)
    ...     sorted(paths), paths["flow"].name
    (['flow'], 'flow.png')
    """
    out = Path(out_dir)
    pngs = render_figures(results, tables, dpi=dpi) if rendered is None else rendered
    paths: dict[str, Path] = {}
    for name, data in pngs.items():
        path = out / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[name] = path
    return paths


#: Report sections whose figures read only what a run has before its sensitivity analyses
#: (the flow, the primary outcome, the secondary and descriptive tables, children by age):
#: :func:`start_figures` hands them to the run's helper process that early.
EARLY_SECTIONS = frozenset({"design", "primary", "secondary", "descriptive"})


def start_figures(results: Mapping[str, Any], tables: Mapping[str, Any], *,
                  sections: frozenset[str] = EARLY_SECTIONS,
                  dpi: int = F.DPI) -> dict[str, Any]:
    """Hand the figures of ``sections`` to the run's helper process now.

    The pipeline calls this before the sensitivity analyses, whose results no figure of
    :data:`EARLY_SECTIONS` reads, so the helper draws them while this process computes; the
    inputs are copied (pickled) as they are now. :func:`render_figures` with ``started=``
    collects them (the same bytes as drawn at the end: tested).

    Parameters
    ----------
    results : Mapping
        The run's results so far.
    tables : Mapping of str to polars.DataFrame
        The run's tables so far.
    sections : frozenset of str, default :data:`EARLY_SECTIONS`
    dpi : int, default 300

    Returns
    -------
    dict of str to Future
        Figure name -> the helper's future PNG bytes; empty without a helper.
    """
    import contextlib

    from natexp.workers import current

    helper = current()
    if helper is None:
        return {}
    plain, tabs = dict(results), dict(tables)
    started: dict[str, Any] = {}
    with contextlib.suppress(RuntimeError):  # the helper is gone: drawn at the end instead
        for spec in figure_specs(study_of(results)):
            if spec.section in sections:  # the helper sends None when there is nothing to draw
                started[spec.name] = helper.submit(_figure_png, plain, tabs, spec.name, dpi)
    return started


def render_figures(results: Mapping[str, Any], tables: Mapping[str, Any], *,
                   dpi: int = F.DPI,
                   started: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Every figure whose inputs the run produced, as PNG bytes (nothing is written).

    With a helper process (:mod:`natexp.workers`) the helper renders from the front of the
    list, once it is free, while this process renders from the back.

    Parameters
    ----------
    results : Mapping
        The run's results dict.
    tables : Mapping of str to polars.DataFrame
        The run's tables.
    dpi : int, default 300
    started : Mapping of str to Future, optional
        What :func:`start_figures` returned earlier in the run (same ``dpi``): those figures
        are taken from the helper rather than submitted again.

    Returns
    -------
    dict of str to bytes
        Figure name -> PNG bytes, in report order.

    Examples
    --------
    >>> flow = pl.DataFrame({"order": [0, 1, 1], "step": ["input", "identified", "identified"],
    ...                      "arm": ["all", "treatment", "control"],
    ...                      "label": ["In", "Identified", "Identified"], "n": [6, 3, 3]})
    >>> pngs = render_figures({}, {"flow": flow}, dpi=40)
    >>> list(pngs), pngs["flow"][:4]
    (['flow'], b'\\x89PNG')
    """
    import contextlib
    from concurrent.futures import BrokenExecutor

    from natexp.progress import progress
    from natexp.workers import current

    started = dict(started or {})
    # (spec, plot): the plot is None for a figure the helper already has (it builds it, and
    # sends None back when the figure has no inputs)
    plots: list[tuple[FigureSpec, Any]] = []
    for spec in figure_specs(study_of(results)):
        if spec.name in started:
            plots.append((spec, None))
            continue
        plot = spec.build(results, tables)
        if plot is not None:
            plots.append((spec, plot))
    futures: list[Any] = [started.pop(spec.name, None) for spec, _ in plots]
    for fut in started.values():  # not a figure of these results: not drawn
        fut.cancel()
    helper = current() if len(plots) > 1 else None
    if helper is not None:
        plain = dict(results)
        with contextlib.suppress(RuntimeError):  # the helper is gone: the rest render here
            for i, (spec, _) in enumerate(plots):
                if futures[i] is None:
                    futures[i] = helper.submit(_figure_png, plain, dict(tables), spec.name,
                                               dpi)

    def render(i: int) -> bytes | None:
        spec, plot = plots[i]
        if plot is None:
            plot = spec.build(results, tables)
        return None if plot is None else F.png_bytes(plot, width=spec.width,
                                                     height=spec.height, dpi=dpi)

    done: dict[int, bytes | None] = {}
    for i in reversed(range(len(plots))):  # from the back; the helper works from the front
        if futures[i] is None or futures[i].cancel():
            done[i] = render(i)
    pngs: dict[str, bytes] = {}
    for i in progress(range(len(plots)), "figures"):
        if i not in done:
            try:
                done[i] = futures[i].result()
            except BrokenExecutor:  # the helper died: render it here
                done[i] = render(i)
            if done[i] is None:  # handed over before its inputs existed: drawn here if now
                done[i] = render(i)
        if done[i] is not None:
            pngs[plots[i][0].name] = done[i]
    return pngs


def _figure_png(results: Mapping[str, Any], tables: Mapping[str, Any], name: str,
                dpi: int) -> bytes | None:
    """One figure's PNG bytes (in the helper process: built from the same inputs); None when
    its inputs are absent."""
    for spec in figure_specs(study_of(results)):
        if spec.name == name:
            plot = spec.build(results, tables)
            return None if plot is None else F.png_bytes(plot, width=spec.width,
                                                         height=spec.height, dpi=dpi)
    raise KeyError(name)  # pragma: no cover - the main process found it


# --------------------------------------------------------------------------------------------
# sections


_ARM = {"treatment": "Treatment", "control": "Control", "all": "All", "total": "Total"}


def flow_diagram(flow: Sequence[Mapping[str, Any]]) -> dict | None:
    """The cohort flow as boxes the HTML report lays out with text (legible on a phone).

    Parameters
    ----------
    flow : sequence of dict
        ``results["flow"]``: ``step``, ``arm``, ``label``, ``n`` in flow order.

    Returns
    -------
    dict or None
        ``input`` (label, n), ``excluded`` (n and its ``(label, n)`` parts), ``arms``: per arm
        its ``title`` and ``steps``, each ``{"label", "n", "loss"}`` (``loss``: families lost
        before the next box, drawn at the side); None without a flow.

    Examples
    --------
    >>> d = flow_diagram([{"step": "input", "arm": "all", "label": "In", "n": 9},
    ...                   {"step": "outside_window", "arm": "all", "label": "Out", "n": 3},
    ...                   {"step": "identified", "arm": "treatment", "label": "Id", "n": 4},
    ...                   {"step": "identified", "arm": "control", "label": "Id", "n": 2}])
    >>> d["input"], d["excluded"]["n"], [a["title"] for a in d["arms"]]
    (('In', '9'), '3', ['Treatment', 'Control'])
    """
    rows = [r for r in flow if isinstance(r, Mapping)]
    if not rows:
        return None
    first = next((r for r in rows if r.get("step") == "input"), None)
    excl = [r for r in rows if r.get("arm") == "all" and r.get("step") != "input"]
    total = (SUPPRESSED if any(_is_marker(r.get("n")) or r.get("n") is None for r in excl)
             else sum(int(r["n"]) for r in excl))
    arms = []
    for arm in ("treatment", "control"):
        steps = []
        for r in rows:
            if r.get("arm") != arm:
                continue
            loss = r.get("step") in F._LOSS_STEPS
            if loss and not _is_marker(r.get("n")) and not r.get("n"):
                continue  # nobody lost at this step: no side box
            steps.append({"label": str(r.get("label") or r.get("step")),
                          "n": fmt_num(r.get("n")), "loss": loss})
        if steps:
            arms.append({"title": _ARM[arm], "steps": steps})
    return {"input": (str(first.get("label")), fmt_num(first.get("n"))) if first else None,
            "excluded": {"n": fmt_num(total), "parts": [(str(r.get("label")),
                                                          fmt_num(r.get("n"))) for r in excl]}
            if excl else None,
            "arms": arms}


def _design_section(results: Mapping[str, Any], tables: Mapping[str, Any]) -> dict:
    d = results.get("design", {}) or {}
    blocks: list[dict] = []
    counties = ", ".join(d.get("treatment_counties") or []) or "-"
    custody = ("still in custody at follow-up" if d.get("custody_at_followup")
               else "whether or not still in custody")
    blocks.append(_p(
        f"Design {d.get('name', '-')}: families whose parent was received into prison between "
        f"{d.get('window_start', '-')} and {d.get('window_end', '-')} and {custody} "
        f"(follow-up date {d.get('followup_date', '-')}). Families in areas where the programme "
        f"was live at the reception date in the treatment counties ({counties}) form the "
        "treatment arm; families in areas not yet live form the control arm. Areas were not "
        "chosen at random: the comparison is a natural experiment, not a trial."
    ))
    flow = results.get("flow") or []
    by = {(r["step"], r["arm"]): r["n"] for r in flow}
    ident = [by.get(("identified", a)) for a in ("treatment", "control")]
    reached = [by.get(("reached", a)) for a in ("treatment", "control")]
    if all(v is not None for v in ident + reached) and not _add(*reached):
        blocks.append(_p(
            f"Of {by.get(('input', 'all'), '-')} families in the input, {sum(ident)} were "
            f"identified for the comparison ({ident[0]} treatment, {ident[1]} control); no "
            "family was reached by a follow-up call in this design."))
    elif all(v is not None for v in ident + reached):
        tot_i, tot_r = _add(*ident), _add(*reached)
        lost = _sub(tot_i, tot_r)
        blocks.append(_p(
            f"Of {by.get(('input', 'all'), '-')} families in the input, {tot_i} were identified "
            f"for the comparison ({ident[0]} treatment, {ident[1]} control) and {tot_r} were "
            f"reached by the follow-up call ({reached[0]} treatment, {reached[1]} control)."
            + (f" {lost} identified families ({fmt_pct(_div(lost, tot_i))}) "
               "have no recorded follow-up outcome." if tot_i and tot_r else "")
        ))
    blocks.append({"type": "figure", "name": "flow", "diagram": flow_diagram(flow)})
    if flow:
        blocks.append(_table(
            "Cohort flow", ["Step", "Arm", "Families"],
            [[r["label"], _ARM.get(r["arm"], r["arm"]), fmt_num(r["n"])] for r in flow],
            align="llr", collapsed=True))
    asg = _get(results, "config", "assignment", default={}) or {}
    prim_spec = asg.get("primary") or {}
    if prim_spec:
        alts = "; ".join(f"{a.get('name')}: {a.get('description', '')}"
                         for a in asg.get("alternatives") or [])
        blocks.append(_p(
            f"Assignment mechanism (declared in the configuration): the programme was assigned "
            f"by {asg.get('unit', 'area')}, in blocks by "
            f"{prim_spec.get('block') or asg.get('unit', 'area')}: "
            f"{prim_spec.get('description', '')}. Randomization and placebo tests use the "
            "assignments this mechanism allows"
            + (f"; alternatives reported beside it: {alts}." if alts else ".")))
    if asg.get("evidence_level") is not None:
        blocks.append(_callout(
            f"{asg.get('evidence_scale') or 'Evidence rating'}: level "
            f"{asg.get('evidence_level')}. {_sentence(asg.get('evidence_reason', ''))}",
            "info"))
    rollout = results.get("rollout") or []
    if rollout:
        blocks.append(_table(
            "Rollout schedule", ["Area", "County", "Go-live", "Phase"],
            [[r.get("area"), r.get("county"), r.get("go_live") or "not live",
              fmt_num(r.get("phase"))] for r in rollout],
            align="lllr", collapsed=True))
    return {"id": "design", "title": "Design and cohort flow", "blocks": blocks}


def _balance_rows(rows: Sequence[Mapping[str, Any]], label: Callable[[str], str] = str
                  ) -> tuple[list[list[str]], list[str]]:
    notes: list[str] = []
    out = []
    for r in rows:
        stat = r.get("statistic")
        if stat == "proportion":
            t, c = fmt_pct(r.get("treatment"), 1), fmt_pct(r.get("control"), 1)
        elif stat == "mean":
            t = f"{fmt_num(r.get('treatment'))} (SD {fmt_num(r.get('treatment_sd'))})"
            c = f"{fmt_num(r.get('control'))} (SD {fmt_num(r.get('control_sd'))})"
        else:  # a categorical variable's overall SMD
            t = c = ""
        note = r.get("note") or ""
        if _is_marker(note):  # publication mode: a note about withheld values says nothing
            note = ""
        mark = ""
        if note:
            if note not in notes:
                notes.append(note)
            mark = f"[{notes.index(note) + 1}]"
        smd = r.get("smd")
        level = r.get("level") or ("all levels (overall SMD)" if stat == "categorical" else "")
        out.append([label(r.get("variable")), level, t, c,
                    "-" if _missing(smd) else fmt_p(smd) if _is_marker(smd) else f"{smd:.2f}",
                    mark])
    return out, [f"[{i + 1}] {n}" for i, n in enumerate(notes)]


def _balance_section(results: Mapping[str, Any]) -> dict | None:
    bal = results.get("balance")
    if not bal:
        return None
    study = study_of(results)
    blocks = [_p(
        "Standardised mean differences (SMD) compare the arms on what was recorded before the "
        "programme could act. An absolute SMD above 0.1 is a common flag for imbalance; with "
        "so few families, large SMDs arise by chance as well as by design."
    )]
    for key, title in (("reached", "families reached by the follow-up call (the primary "
                                   "analysis population)"),
                       ("identified", "all identified families")):
        rows = bal.get(key)
        if not rows or not (rows[0].get("n_treatment") or rows[0].get("n_control")):
            continue
        first = rows[0]
        flagged = sorted({study.label(r["variable"]) for r in rows
                          if not _missing(r.get("smd")) and not _is_marker(r["smd"])
                          and abs(r["smd"]) > 0.1 and r.get("variable") != "area"})
        body, notes = _balance_rows(rows, study.label)
        if flagged:
            blocks.append(_p(f"Among {title}: |SMD| above 0.1 for " + ", ".join(flagged)
                             + "."))
        blocks.append(_table(
            f"Balance among {title} (treatment n = {first.get('n_treatment')}, control "
            f"n = {first.get('n_control')} in the unit of each row)",
            ["Characteristic", "Level", "Treatment", "Control", "SMD", "Note"], body,
            align="llrrrl", notes=notes, collapsed=key == "identified"))
    return {"id": "balance", "title": "Balance between the arms", "blocks": blocks}


_METHOD_NAMES = {
    "risk_difference": "Risk difference (points)",
    "risk_ratio": "Risk ratio",
    "odds_ratio": "Odds ratio",
}


def _primary_section(results: Mapping[str, Any], tables: Mapping[str, Any]) -> dict | None:
    prim = results.get("primary_outcome")
    if not prim:
        return None
    c = prim.get("counts", {})
    x1, n1, x2, n2 = (c.get(k) for k in ("x1", "n1", "x2", "n2"))
    blocks: list[dict] = []
    if not n1 or not n2:
        blocks.append(_callout(prim.get("sentence") or "No comparison is possible: an arm "
                               "is empty.", "warning"))
        return {"id": "primary", "title": "Primary outcome: support uptake", "blocks": blocks}
    panel = prim.get("panel", {})
    cl = _get(results, "config", "analysis", "confidence_level", default=0.95)
    level = f"{100 * cl:g}%"
    rd = _get(panel, "risk_difference", "exact_unconditional", default={}) or {}
    bos = _get(panel, "test", "boschloo", "pvalue")
    est, lo, hi = rd.get("estimate"), rd.get("ci_low"), rd.get("ci_high")
    blocks.append(_table(
        "Support uptake before the follow-up call (reached families)",
        ["Arm", study_of(results).outcome.yes_label, study_of(results).outcome.no_label,
         "Families", "Uptake"],
        [["Treatment", fmt_num(x1), fmt_num(_sub(n1, x1)), fmt_num(n1),
          fmt_pct(_div(x1, n1), 1)],
         ["Control", fmt_num(x2), fmt_num(_sub(n2, x2)), fmt_num(n2),
          fmt_pct(_div(x2, n2), 1)]],
        align="lrrrr"))
    if any(_is_marker(v) for v in (x1, n1, x2, n2, est, lo, hi, bos)):
        blocks.append(_callout(
            f"The comparison's statistics are {WITHHELD_TEXT}: counts of its 2x2 table were "
            "suppressed, so the difference, its interval and the tests are not shown.",
            "warning"))
    blocks += _primary_text(x1, n1, x2, n2, est, lo, hi, bos, level,
                            identified=prim.get("identified"))
    if prim.get("estimand") and not _is_marker(prim.get("estimand")):
        blocks.append(_p(f"Estimand: {_estimand_text(prim['estimand'])}. The exact tests treat "
                         "families as assigned one by one, conditional on the observed "
                         "allocation; the programme was assigned by area (see the "
                         "randomization and clustering analyses, on which the conclusion "
                         "rests)."))
    caveat = prim.get("area_caveat")
    if caveat and not _is_marker(caveat):
        blocks.append(_callout(str(caveat), "warning"))
    blocks.append({"type": "figure", "name": "primary_forest"})
    t = _frame(tables, "uptake")
    if t is not None and {"method", "label", "estimate", "ci_low", "ci_high"} <= set(t.columns):
        rows = []
        for r in t.iter_rows(named=True):
            kind = r["method"].split(".")[0]
            if kind not in _METHOD_NAMES:
                continue
            scale = fmt_pp if kind == "risk_difference" else fmt_num
            rows.append([_METHOD_NAMES[kind], r["label"], scale(r["estimate"]),
                         "withheld" if _is_marker(r["ci_low"]) or _is_marker(r["ci_high"])
                         else f"{scale(r['ci_low'])} to {scale(r['ci_high'])}"])
        blocks.append(_table(f"Effect measures with {level} intervals",
                             ["Measure", "Method", "Estimate", f"{level} interval"], rows,
                             align="llrr", collapsed=True))
        rows = [[r["label"], fmt_num(r["statistic"]), fmt_p(r["pvalue"]), _caveat(r)]
                for r in t.iter_rows(named=True) if r["method"].startswith("test.")]
        if rows:
            blocks.append(_table("Tests of no difference (two-sided)",
                                 ["Test", "Statistic", "p", "Caveat"], rows, align="lrrl",
                                 collapsed=True))
    return {"id": "primary", "title": "Primary outcome: support uptake", "blocks": blocks}


def _caveat(r: Mapping[str, Any]) -> str:
    """A test's note and diagnostics; ``withheld`` when disclosure control withheld them."""
    parts = (r.get("note"), r.get("diagnostics"))
    text = "; ".join(v for v in parts if v and not _is_marker(v))
    return text or ("withheld" if any(_is_marker(v) for v in parts) else "")


def _primary_text(x1: Any, n1: Any, x2: Any, n2: Any, est: Any, lo: Any, hi: Any, bos: Any,
                  level: str, identified: Any = None) -> list[dict]:
    """The primary comparison in words (nothing when a statistic it needs was withheld)."""
    if any(_is_marker(v) for v in (x1, n1, x2, n2, est, lo, hi, bos)):
        return []
    blocks: list[dict] = []
    of_ident = (f" of {identified} identified" if identified is not None
                and not _is_marker(identified) else "")
    text = (f"Among the {n1 + n2}{of_ident} families reached by the follow-up call, "
            f"{_of(x1, n1)} in "
            f"the treatment arm and {_of(x2, n2)} in the control arm had taken up support "
            f"before follow-up: a difference of {fmt_pp(est)} percentage points.")
    if not _missing(lo) and not _missing(hi):
        text += (f" The {level} exact unconditional interval runs from {fmt_pp(lo)} to "
                 f"{fmt_pp(hi)} points")
        if lo <= 0 <= hi:
            text += (f": these data are consistent with the programme lowering uptake by up "
                     f"to {fmt_pp(abs(lo), 0)} points or raising it by up to {fmt_pp(hi, 0)} "
                     "points. The interval includes zero, so the data cannot distinguish a "
                     "real difference from chance.")
        else:
            text += (": the interval excludes zero, but areas were not assigned at random, so "
                     "the difference may reflect how areas differ rather than the programme "
                     "(see the sensitivity analyses and limitations).")
    if not _missing(bos):
        text += f" Boschloo's exact test gives p = {fmt_p(bos)}."
    blocks.append(_p(text))
    if n1 + n2 < 100:
        blocks.append(_callout(
            f"With {n1 + n2} families the comparison is very imprecise. An interval this "
            "wide is an absence of evidence, not evidence that the programme has no effect.",
            "warning"))
    return blocks


def _arm_table(caption: str, t: pl.DataFrame | None, label_col: str,
               keep: Callable[[Mapping[str, Any]], bool] = lambda r: True) -> dict | None:
    if t is None or not {"treatment", "control", "total", label_col} <= set(t.columns):
        return None
    rows = [[r[label_col], fmt_num(r["treatment"]), fmt_num(r["control"]), fmt_num(r["total"])]
            for r in t.iter_rows(named=True) if keep(r)]
    return _table(caption, ["", "Treatment", "Control", "Total"], rows, align="lrrr")


def _secondary_values(spec: SecondarySpec, body: Mapping[str, Any], reached: Any
                      ) -> tuple[dict[str, Any], Any]:
    """The counts a secondary table's sentence names, and the base they are out of."""
    tot = body.get("total") if isinstance(body.get("total"), Mapping) else {}
    if spec.kind == "flags":
        return {k: _get(body, k, "yes") for k in spec.columns}, body.get("n")
    if spec.kind == "consent":
        return dict(tot), tot.get("reached", reached)
    if spec.kind == "crossed":
        vals = {k: (v.get("yes") if isinstance(v, Mapping) else v) for k, v in tot.items()}
        return vals, tot.get("n")
    return dict(tot), reached  # category


def _generic_sentence(spec: SecondarySpec, values: Mapping[str, Any], base: Any) -> str:
    keys = [k for k in (*spec.labels, *spec.cells, *spec.items) if values.get(k) is not None]
    keys = list(dict.fromkeys(keys)) or [k for k in values if k != "n"]
    parts = [f"{spec.labels.get(k, k)}: {_of(values[k], base)}" for k in keys
             if not isinstance(values.get(k), Mapping)]
    return f"{_cap(spec.title)}: " + "; ".join(parts) + "." if parts else ""


def _secondary_section(results: Mapping[str, Any], tables: Mapping[str, Any]) -> dict | None:
    sec = results.get("secondary")
    if not sec:
        return None
    study = study_of(results)
    specs = [sp for sp in _secondary_order(study) if sp.key in sec]
    refs = _refs([sp.published for sp in specs])
    title = f"Secondary outcomes (report {refs})" if refs else "Secondary outcomes"
    blocks: list[dict] = []
    n = _reached_n(results)
    if not n:
        blocks.append(_callout("No family was reached by a follow-up call in this design: "
                               "the secondary outcomes"
                               + (f" (report {refs})" if refs else "") + " are not available."))
        return {"id": "secondary", "title": "Secondary outcomes", "blocks": blocks}
    blocks.append(_p(
        f"Answers of the {n} families reached by the follow-up call. These are descriptive "
        "counts: with arms of this size no test of a difference between them is informative, "
        "and none is reported."
    ))
    figs = {sp.key: figure_name(sp.published, sp.key) for sp in specs}
    for spec in specs:
        body = sec.get(spec.key)
        if not isinstance(body, Mapping) or not body:
            continue
        heading = {"type": "h3", "text": spec.heading}
        figure = {"type": "figure", "name": figs[spec.key]}
        if spec.kind == "outcome_routes":
            tr, co = body.get("treatment", {}), body.get("control", {})
            route = study.outcome.route
            got = _get(body, "total", "route", default={}) or {}
            # in the order of the results (the order of a study description's mapping may
            # not survive a JSON round trip), then any route the results lack
            order = [v for v in got if v in route.labels] + [
                v for v in route.labels if v not in got] if route else []
            routes = ", ".join(f"{got.get(v, 0)} {route.labels[v]}" for v in order)
            fields = {"treatment": _of(tr.get("yes"), tr.get("n")),
                      "control": _of(co.get("yes"), co.get("n")), "routes": routes}
            template = spec.sentence or (
                "Treatment {treatment}, control {control}: " + study.outcome.label
                + " before follow-up" + (" (routes: {routes})" if routes else "")
                + ". The primary outcome section gives the comparison with its uncertainty.")
            blocks += [heading, _p(" ".join(template.split()).format(**fields)), figure]
            continue
        if spec.kind == "crossed" and not isinstance(body.get("total"), Mapping):
            continue
        values, base = _secondary_values(spec, body, n)
        text = (_sentence_from(spec.sentence, values, base) if spec.sentence else None) \
            or _generic_sentence(spec, values, base)
        blocks += [heading, _p(text), figure]
        caption = _with_ref(spec.heading, spec.published)
        tab = None
        if spec.kind == "category":
            tab = _arm_table(caption, _frame(tables, f"secondary_{spec.key}"), "label",
                             lambda r, row=spec.row: not (r[row] == "missing" and not r["total"]))
        elif spec.kind == "consent":
            tab = _arm_table(caption, _frame(tables, f"secondary_{spec.key}"), "label",
                             lambda r: r["measure"] != "consent_missing" or r["total"])
        if tab:
            blocks.append(tab)
    return {"id": "secondary", "title": title, "blocks": blocks}


def _descriptive_section(results: Mapping[str, Any], tables: Mapping[str, Any],
                         figure_names: Sequence[str]) -> dict | None:
    study = study_of(results)
    desc = study.descriptive
    app = results.get(desc.key) if desc is not None else None
    if not app or not isinstance(app, Mapping):
        return None
    g1, g2 = desc.groups.values()
    h1, h2 = desc.group_label(g1), desc.group_label(g2)
    ref = desc.published or desc.title
    blocks: list[dict] = []
    first = next(iter(app.values()))
    f_n, m_n = _get(first, g1, "n"), _get(first, g2, "n")
    if f_n is not None and m_n is not None and _add(f_n, m_n):
        intro = desc.intro or (
            f"All {{n}} {study.wording.children} in the identification data, by "
            f"{study.label(desc.by)}: {{first}} of them {h1.lower()}. These tables compare "
            "the two groups, not the programme's arms.")
        blocks.append(_p(" ".join(intro.split()).format(
            n=_add(f_n, m_n), first=_of(f_n, _add(f_n, m_n)))))
    labels = {q.key: q.label for q in desc.questions}
    rows = []
    for key, tab in app.items():
        fy, fn_ = _get(tab, g1, "yes"), _get(tab, g1, "n")
        my, mn = _get(tab, g2, "yes"), _get(tab, g2, "n")
        bos = _get(tab, "panel", "test", "boschloo", "pvalue")
        rows.append([tab.get("question", labels.get(key, key)), _of(fy, fn_), _of(my, mn),
                     fmt_num(tab.get("pearson_chi2"), 6), fmt_num(tab.get("published_chi2"), 6),
                     fmt_p(tab.get("pearson_pvalue")), fmt_p(tab.get("fisher_pvalue")),
                     fmt_p(bos)])
    for fig in desc.figures:
        blocks.append({"type": "figure", "name": figure_name(fig.published, fig.key)})
    ages = _ages_figure(study)
    if ages.name in figure_names:
        blocks.append({"type": "figure", "name": ages.name})
    else:
        what = f"Report {desc.ages_published}" if desc.ages_published else "The figure"
        blocks.append(_callout(f"{what} ({study.wording.children} by age) needs the "
                               "children_by_age count table, which this run did not produce."))
    blocks.append(_table(
        desc.title,
        ["Question", h1, h2, "Pearson chi-squared",
         "Published chi-squared", "p (chi-squared)", "p (Fisher exact)", "p (Boschloo exact)"],
        rows, align="lrrrrrrr",
        notes=["Pearson chi-squared without continuity correction, as published. Where an "
               "expected count is below 5 the exact tests are the safer reading (see the "
               "replication table)."]))
    crow = []
    for key, tab in app.items():
        cl_ = tab.get("clustered") if isinstance(tab, Mapping) else None
        if not cl_ or _is_marker(cl_):
            continue
        cr = cl_.get("cluster_robust") or {}
        fam_ = cl_.get("families") or {}
        crow.append([tab.get("question", labels.get(key, key)),
                     fmt_p(tab.get("pearson_pvalue")),
                     fmt_pp(cr.get("estimate")), fmt_num(_get(cr, "extra", "design_effect")),
                     fmt_p(cr.get("pvalue")),
                     _of(_get(fam_, g1, "yes"), _get(fam_, g1, "n")),
                     _of(_get(fam_, g2, "yes"), _get(fam_, g2, "n")),
                     fmt_p(cl_.get("families_fisher_pvalue"))])
    if crow:
        blocks.append(_p(
            f"{ref} counts {study.wording.children}, and siblings share a parent, a carer and "
            "often a care status: the published child-level tests assume every child is "
            "independent. Allowing for families as clusters (a cluster-robust test over "
            "children, and a test over families) gives larger p-values; the design effect is "
            "how much the clustering inflates the variance."))
        blocks.append(_table(
            f"{ref} with families as clusters",
            ["Question", "p (published, child-level chi-squared)",
             "Difference (points, children)", "Design effect", "p (cluster-robust)",
             f"Families, {h1[:1].lower()}{h1[1:]} (any child)",
             f"Families, {h2[:1].lower()}{h2[1:]}",
             "p (Fisher, families)"], crow, align="lrrrrrrr"))
    withheld_ab = [k for k, t in app.items() if isinstance(t, Mapping)
                   and _is_marker(t.get("clustered"))]
    if withheld_ab:
        blocks.append(_withheld_callout(_marker_reason(app[withheld_ab[0]]["clustered"])))
    refs = _refs([*(f.published for f in desc.figures), desc.ages_published, desc.published])
    return {"id": "descriptive",
            "title": f"Descriptive findings (report {refs})" if refs else
            "Descriptive findings", "blocks": blocks}


def _sensitivity_section(results: Mapping[str, Any], tables: Mapping[str, Any],
                         figure_names: Sequence[str]) -> dict | None:
    sens = results.get("sensitivity")
    names = set(figure_names)
    sens_figs = [s.name for s in _TAIL if s.section == "sensitivity" and s.name in names]
    sens, wh = _split_withheld(sens)
    if not sens and not sens_figs and not wh:
        return None
    sens = sens or {}
    blocks: list[dict] = [_p(
        "How much would it take to change the answer? Each analysis below varies one thing "
        "the primary analysis had to assume.")]

    def withheld(key: str) -> None:
        if key in wh:
            blocks.append(_withheld_callout(wh[key]))

    if "*" in wh:
        withheld("*")
    est = sens.get("estimand") or {}
    if est and not _is_marker(est):
        blocks.append(_p(f"Unless a subsection says otherwise, every analysis below targets the "
                         f"primary estimand: {_estimand_text(est)}."))
    itt = sens.get("intention_to_treat") or {}
    if itt and not _is_marker(itt):
        blocks.append({"type": "h3", "text": "All identified families (intention to treat)"})
        c = itt.get("counts") or {}
        rd = itt.get("risk_difference") or {}
        blocks.append(_p(
            f"The outcome is recorded for every identified family, so the comparison of all of "
            f"them is reported beside the reached-only one: {_of(c.get('x1'), c.get('n1'))} "
            f"treatment and {_of(c.get('x2'), c.get('n2'))} control families took up support, "
            f"a difference of {fmt_pp(rd.get('estimate'))} points ({fmt_pp(rd.get('ci_low'))} "
            f"to {fmt_pp(rd.get('ci_high'))}; Boschloo p = "
            f"{fmt_p(_get(itt, 'boschloo', 'pvalue'))}). Estimand: "
            f"{_estimand_text(itt.get('estimand') or {})}. {_sentence(itt.get('note', ''))}"))
    withheld("intention_to_treat")
    ri = sens.get("randomization") or {}
    mech = sens.get("randomization_mechanisms") or {}
    if ri or mech or "randomization" in names or "randomization" in wh:
        blocks.append({"type": "h3", "text": "Randomization inference over the declared "
                                             "assignment mechanism"})
        withheld("randomization")
        withheld("randomization_mechanisms")
        if ri and not _is_marker(ri):
            sp = _get(ri, "extra", "assignment_space", default={}) or {}
            blocks.append(_p(
                f"Treatment was assigned by {sp.get('unit', 'area')}, in blocks by "
                f"{sp.get('block') or sp.get('unit', 'area')}: {sp.get('description', '')}. "
                f"The randomization test keeps the compared families fixed and gives the "
                f"treated role to every set of blocks the mechanism allows "
                f"({fmt_num(sp.get('size'))} possible assignments, so the smallest attainable "
                f"p-value is {fmt_num(sp.get('min_pvalue'))}). On the primary statistic "
                f"({fmt_pp(ri.get('estimate'))} points) it gives randomization p = "
                f"{fmt_p(ri.get('pvalue'))}."))
            if ri.get("diagnostics"):
                blocks.append(_ul(ri["diagnostics"]))
        rows = []
        for name, r in mech.items():
            if _is_marker(r):
                continue
            sp = _get(r, "extra", "assignment_space", default={}) or {}
            rows.append([name, sp.get("description", ""), fmt_num(sp.get("size")),
                         fmt_num(sp.get("min_pvalue")),
                         "yes" if sp.get("can_reach_significance") else "no",
                         fmt_pp(r.get("estimate")), fmt_p(r.get("pvalue"))])
        if rows:
            blocks.append(_table(
                "The primary statistic under each declared assignment mechanism",
                ["Mechanism", "Assignments that were possible", "Size", "Smallest p",
                 "Can reach significance", "Difference (points)", "Randomization p"], rows,
                align="llrrlrr",
                notes=["The first row is the mechanism the study declares; the others show how "
                       "the p-value depends on what is assumed. Treating areas as assigned one "
                       "by one gives more assignments than the design allowed: false "
                       "precision."]))
        if "randomization" not in wh:
            blocks.append({"type": "figure", "name": "randomization"})
    area = sens.get("area_level") or {}
    clus = sens.get("cluster") or {}
    if (area and not _is_marker(area)) or (clus and not _is_marker(clus)):
        blocks.append({"type": "h3", "text": "Clustering: areas, not families, were assigned"})
        withheld("area_level")
        withheld("cluster")
        text = ("The exact tests of the primary section treat families as assigned one by one, "
                "conditional on the observed allocation; the programme was assigned by area, "
                "so families of one area share more than chance.")
        if area and not _is_marker(area):
            sp = _get(area, "extra", "assignment_space", default={}) or {}
            text += (f" Weighting each {sp.get('unit', 'area')} equally, the difference is "
                     f"{fmt_pp(area.get('estimate'))} points (randomization p = "
                     f"{fmt_p(area.get('pvalue'))} over the same {fmt_num(sp.get('size'))} "
                     f"assignments).")
            pe = ri.get("estimate") if ri and not _is_marker(ri) else None
            ae = area.get("estimate")
            if not _missing(pe) and not _missing(ae) and not _is_marker(pe) \
                    and not _is_marker(ae) and pe * ae < 0:
                text += (" Its sign differs from the pooled families' difference: the pooled "
                         "difference is driven by which areas have more families.")
        icc = _get(clus, "icc", default={}) or {}
        if icc and not _is_marker(icc) and not _missing(icc.get("estimate")):
            arms = clus.get("per_arm") or {}
            deffs = ", ".join(f"{a} {fmt_num(v.get('design_effect'))}"
                              for a, v in arms.items() if not _is_marker(v))
            text += (f" The intra-cluster correlation of uptake across areas is "
                     f"{fmt_num(icc.get('estimate'))} (one-way ANOVA estimate from "
                     f"{fmt_num(_get(icc, 'extra', 'n'))} families in "
                     f"{fmt_num(_get(icc, 'extra', 'k'))} areas, very imprecise); design "
                     f"effect {deffs}.")
            ss = clus.get("sample_size_fisher_clustered") or {}
            if ss and not _is_marker(ss):
                text += (f" A study powered at 80% for the observed difference would need "
                         f"{fmt_num(ss.get('families_per_arm_clustered'))} families per arm "
                         f"rather than {fmt_num(ss.get('families_per_arm_independent'))}.")
        blocks.append(_p(text))
        blocks.append(_callout(
            "The conclusion rests on the randomization test over the declared assignment "
            "mechanism (areas, in blocks), not on the family-level exact tests: those describe "
            "a family-by-family assignment that did not happen.", "info"))
    nr = sens.get("nonresponse") or {}
    pm = sens.get("pattern_mixture") or {}
    if nr or pm or "tipping_point" in names or "nonresponse" in wh:
        blocks.append({"type": "h3", "text": "Families not reached (non-response)"})
        withheld("nonresponse")
        withheld("pattern_mixture")
        if pm and not _is_marker(pm):
            pest = _get(pm, "meta", "estimand", default={}) or {}
            blocks.append(_p(
                "The primary comparison is conditional on being reached. As trialists do, the "
                "outcome of the unreached families is modelled as missing at random within "
                "each arm (MAR) plus a shift delta on the log-odds of uptake in each arm "
                "(delta-adjusted pattern mixture); the list below gives the delta at which "
                f"the conclusion changes. Estimand: {_estimand_text(pest)}."))
            if pm.get("notes"):
                blocks.append(_ul([_pp(n) for n in pm["notes"]]))
        man = _get(nr, "manski", "extra", default={}) or {}
        if man and not _is_marker(man):
            blocks.append(_p(
                f"Worst case: with no assumption at all about the unreached families, the "
                f"difference among all identified families can be anywhere from "
                f"{fmt_pp(man.get('lower'))} to {fmt_pp(man.get('upper'))} percentage points "
                "(Manski bounds). With over half of an arm unreached these bounds always "
                "include zero, so they cannot by themselves support a conclusion either way. "
                "The figure shows every completion of the unreached outcomes; it counts "
                "implausible completions as much as plausible ones and is not a test."))
        blocks.append({"type": "figure", "name": "tipping_point"})
    ev = sens.get("evalues") or {}
    if "evalues" in wh and not ev:
        blocks.append({"type": "h3", "text": "Unmeasured confounding (E-values)"})
        withheld("evalues")
    if ev:
        blocks.append({"type": "h3", "text": "Unmeasured confounding (E-values)"})
        rows = [[r.get("label", k), fmt_num(r.get("estimate")),
                 fmt_num(_get(r, "extra", "evalue_ci")), r.get("note", "")]
                for k, r in ev.items()]
        blocks.append(_table("E-values (VanderWeele and Ding 2017)",
                             ["Measure", "E-value", "E-value of the interval limit", "Note"],
                             rows, align="lrrl"))
        blocks.append(_p(
            "An E-value is how strongly an unmeasured confounder would need to be associated "
            "with both the arm and uptake (as a risk ratio) to explain the observed difference "
            "away; an interval-limit E-value of 1 means no confounding at all is needed to make "
            "the interval include no difference."))
    loo = sens.get("leave_one_out") or {}
    if loo or "leave_one_out" in names or "leave_one_out" in wh:
        blocks.append({"type": "h3", "text": "Leaving out one area at a time"})
        withheld("leave_one_out")
        if loo.get("notes"):
            blocks.append(_ul([_pp(n) for n in loo["notes"]]))
        if "leave_one_out" not in wh:
            blocks.append({"type": "figure", "name": "leave_one_out"})
    for key, title, first in (
            ("placebo_in_space", "In-space placebos: a comparison block pretended live",
             "placebo_block"),
            ("placebo_in_time", "In-time placebos: not-yet-live areas pretended live early",
             "shift")):
        pt = sens.get(key) or {}
        if not pt and key not in wh and not (key == "placebo_in_time" and key in names):
            continue
        blocks.append({"type": "h3", "text": title})
        withheld(key)
        if not pt or _is_marker(pt):
            continue
        meta = pt.get("meta") or {}
        sp = meta.get("assignment_space") or {}
        size = sp.get("size")
        blocks.append(_p(
            "Only control-arm families are used, so the true treated set is untouched: a real "
            "programme effect cannot show here, differences between areas or over time can. "
            f"Estimand: {_estimand_text(meta.get('estimand') or {})}. Assignment model of the "
            f"p-values: {sp.get('description', '-')}"
            + (f" ({fmt_num(size)} possible placebo assignments; " if size else " (")
            + f"smallest attainable p {fmt_num(sp.get('min_pvalue'))})."))
        rows = [[str(r.get(first)), _of(r.get("x1"), r.get("n1")), _of(r.get("x2"), r.get("n2")),
                 fmt_pp(r.get("rd")), fmt_p(r.get("p")), fmt_p(r.get("min_p")),
                 fmt_p(r.get("p_holm"))] for r in pt.get("table") or []]
        if rows:
            blocks.append(_table(title, ["Placebo", "Placebo treated", "Placebo control",
                                         "Difference (points)", "Boschloo p", "Smallest p",
                                         "Holm-adjusted p"], rows, align="lrrrrrr"))
        if pt.get("notes"):
            blocks.append(_ul(pt["notes"]))
        if key == "placebo_in_time" and key not in wh:
            blocks.append({"type": "figure", "name": "placebo_in_time"})
    dw = sens.get("dowhy") or {}
    if "dowhy" in wh and not dw:
        blocks.append({"type": "h3", "text": "Causal model (DoWhy) and refutation tests"})
        withheld("dowhy")
    if dw:
        blocks.append({"type": "h3", "text": "Causal model (DoWhy) and refutation tests"})
        est_ = dw.get("estimate") or {}
        adj = ", ".join(dw.get("adjustment_set") or []) or "nothing"
        n = _get(est_, "extra", "n")
        among = _get(est_, "extra", "among")
        who = (f" among {n} {'identified families' if among is None else 'families with ' + among}"
               if n else "")
        note = str(est_.get("note") or "")
        note = (note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")) if note else ""
        blocks.append(_p(
            f"A causal graph of the design identifies the effect by adjusting for {adj}. "
            f"{est_.get('label', 'The estimate')}{who}: {fmt_pp(est_.get('estimate'))} "
            f"percentage points ({fmt_pp(est_.get('ci_low'))} to {fmt_pp(est_.get('ci_high'))}; "
            f"p = {fmt_p(est_.get('pvalue'))}). {note}".replace("  ", " ")))
        if dw.get("assumptions"):
            blocks.append(_ul(dw["assumptions"]))
        rows = [[r.get("label", k), fmt_pp(r.get("estimate")), fmt_p(r.get("pvalue")),
                 _get(dw, "interpretation", k, default="") or r.get("note", "")]
                for k, r in (dw.get("refutations") or {}).items()]
        if rows:
            blocks.append(_table("DoWhy refutations and what each can show",
                                 ["Refuter", "Effect (points)", "p", "What it tests"], rows,
                                 align="lrrl"))
        if dw.get("diagnostics"):
            blocks.append(_ul(dw["diagnostics"]))
    if "specification_curve" in names or "specification_curve" in wh:
        blocks.append({"type": "h3", "text": "Specification curve"})
        withheld("specification_curve")
        sc = sens.get("specification_curve") or {}
        if isinstance(sc, Mapping) and sc.get("notes"):
            blocks.append(_ul(sc["notes"]))
        if "specification_curve" not in wh:
            blocks.append({"type": "figure", "name": "specification_curve"})
    return {"id": "sensitivity", "title": "Sensitivity analyses", "blocks": blocks}


_NUM = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"
_RE_DIFF_CI = __import__("re").compile(rf"difference {_NUM} \({_NUM} to {_NUM}\)")
_RE_DIFF_RANGE = __import__("re").compile(
    rf"difference between {_NUM} (\([^)]*\)) and {_NUM} (\([^)]*\)); full cohort {_NUM}")


def _pp(text: str) -> str:
    """Risk differences written as proportions in a note, in percentage points.

    Examples
    --------
    >>> _pp("missing at random: difference 0.06667 (-0.1789 to 0.3123), not significant")
    'missing at random: difference 6.7 percentage points (-17.9 to 31.2), not significant'
    >>> _pp("moves the difference between 0.009524 (without A) and 0.1286 (without B); "
    ...     "full cohort 0.06667")
    'moves the difference between 1.0 (without A) and 12.9 (without B) percentage points; full cohort 6.7'
    """
    def ci(m):
        a, lo, hi = (float(v) for v in m.groups())
        return (f"difference {fmt_pp(a)} percentage points ({fmt_pp(lo)} to "
                f"{fmt_pp(hi)})")

    def rng(m):
        a, wa, b, wb, full = m.groups()
        return (f"difference between {fmt_pp(float(a))} {wa} and {fmt_pp(float(b))} {wb} "
                f"percentage points; full cohort {fmt_pp(float(full))}")
    return _RE_DIFF_RANGE.sub(rng, _RE_DIFF_CI.sub(ci, str(text)))


def raw_names(study: Study) -> dict[str, str]:
    """Variable names of the study's input (``snake_case``) -> the words the report uses.

    Words come from :meth:`natexp.study.Study.label`; a name without a label is written with
    spaces for underscores.

    Examples
    --------
    >>> raw_names(Study())["followup_reached"]
    'followup reached'
    """
    from natexp.data.schema import contract

    names = {c.name for cols in contract(study).values() for c in cols}
    names |= set(study.labels) | {study.outcome.column}
    out = {}
    for n in sorted(names, key=lambda n: (-len(n), n)):
        if "_" in n:
            words = (study.outcome.short_label or study.label(n) if n == study.outcome.column
                     else study.label(n))
            out[n] = words if words != n else n.replace("_", " ")
    return out


def in_words(text: Any, words: Mapping[str, str]) -> Any:
    """``text`` with every raw variable name of ``words`` replaced by its words.

    ``NAME True`` / ``NAME False`` (a condition) become the words / ``not`` the words.

    Examples
    --------
    >>> in_words("among families with followup_reached True (followup_reached)",
    ...          {"followup_reached": "reached by the follow-up call"})
    'among families with reached by the follow-up call (reached by the follow-up call)'
    """
    import re

    if not isinstance(text, str) or "_" not in text:
        return text
    for name, w in words.items():
        if name in text:
            text = re.sub(rf"(?<![\w.]){re.escape(name)} True\b", w, text)
            text = re.sub(rf"(?<![\w.]){re.escape(name)} False\b", f"not {w}", text)
            text = re.sub(rf"(?<![\w.]){re.escape(name)}(?!\w|\.\w)", w, text)
    return text


def _words_in_blocks(sections: list[dict], words: Mapping[str, str]) -> None:
    """Every sentence, list item and table cell of ``sections`` in words (in place)."""
    for sec in sections:
        for b in sec["blocks"]:
            if b["type"] in ("p", "h3", "callout"):
                b["text"] = in_words(b["text"], words)
            elif b["type"] == "ul":
                b["items"] = [in_words(i, words) for i in b["items"]]
            elif b["type"] == "table":
                b["caption"] = in_words(b["caption"], words)
                b["rows"] = [[in_words(c, words) for c in row] for row in b["rows"]]
                b["notes"] = [in_words(n, words) for n in b.get("notes") or []]


def _sentence(text: Any) -> str:
    """Text as a sentence: capital first letter, full stop at the end ('' stays '')."""
    t = str(text or "").strip()
    if not t:
        return ""
    return t[:1].upper() + t[1:] + ("" if t.endswith(".") else ".")


def _estimand_text(est: Mapping[str, Any]) -> str:
    """An estimand dict in words."""
    if not est or _is_marker(est):
        return "-"
    cond = est.get("conditional_on")
    return (f"{est.get('contrast', '-')} in {est.get('outcome', '-')} among "
            f"{est.get('population', '-')}" + (f", conditional on {cond}" if cond else ""))


def _withheld_callout(reason: str) -> dict:
    """A callout saying what disclosure control withheld and why (publication mode)."""
    why = reason.strip().rstrip(".")
    why = (why[:1].upper() + why[1:] + ".") if why else ""
    return _callout(f"Withheld: disclosure control. {why}".strip(), "warning")


def _split_withheld(section: Any) -> tuple[dict, dict[str, str]]:
    """A results section without its withheld parts, and part -> why it was withheld.

    ``"*"`` is the whole section. Parts one level down (``leave_one_out.table``) count for
    their parent. Without markers (the normal report) the section comes back unchanged.
    """
    if section is None:
        return {}, {}
    if _is_marker(section):
        return {}, {"*": _marker_reason(section) or "not recognised by natexp's disclosure rules"}
    if not isinstance(section, Mapping):
        return section, {}
    clean: dict[str, Any] = {}
    wh: dict[str, str] = {}
    for key, value in section.items():
        if _is_marker(value):
            wh[key] = _marker_reason(value) or "not recognised by natexp's disclosure rules"
            continue
        if isinstance(value, Mapping):
            parts = [v for v in value.values() if _is_marker(v)]
            if parts:
                wh[key] = _marker_reason(parts[0]) or "computed from suppressed counts"
                value = {k: v for k, v in value.items() if not _is_marker(v)}
        clean[key] = value
    return clean, wh


def _staggered_section(results: Mapping[str, Any]) -> dict | None:
    st = results.get("staggered")
    if not st:
        return None
    if _is_marker(st):
        return {"id": "staggered", "title": "Staggered rollout", "blocks": [
            _withheld_callout(_marker_reason(st) or "not recognised by natexp's disclosure "
                              "rules, and counts of this run were suppressed")]}
    blocks: list[dict] = []
    settings = st.get("settings", {}) or {}
    blocks.append(_p(
        f"Every area, by {settings.get('period', 'period')} from {settings.get('start', '-')} "
        f"to {settings.get('end', '-')}: the {settings.get('outcome', 'outcome')} of each "
        f"area-period cell ({fmt_num(st.get('cells'))} cells) before and after its go-live. "
        "Callaway and Sant'Anna group-time effects compare each go-live cohort with areas not "
        "yet live; two-way fixed effects is shown only as a benchmark, because under staggered "
        "timing it can be biased."))
    effect = _get(results, "config", "synthetic", "uptake_effect")
    if _get(results, "inputs", "synthetic") and effect is not None:
        blocks.append(_callout(
            f"The synthetic data were generated with a true effect of {fmt_num(effect)} on the "
            "probability of taking up support, so the estimates can be checked against a known "
            "answer."))
    n_cl = _get(st, "twfe", "extra", "n_clusters")
    if isinstance(n_cl, int | float) and not _missing(n_cl) and n_cl > 0:
        blocks.append(_p(
            f"Inference rests on {fmt_num(n_cl)} areas, too few for analytic cluster-robust "
            "standard errors. The wild cluster restricted bootstrap-t (null imposed, one weight "
            "per area; every Rademacher sign pattern when 2^G is small, else random draws) and "
            "randomization inference over the declared assignment space are the p-values to "
            "read; analytic intervals are shown for comparison."))

    def interval(res: Mapping[str, Any]) -> str:
        if _missing(res.get("ci_low")) and _missing(res.get("ci_high")):
            return "-"
        return f"{fmt_num(res.get('ci_low'))} to {fmt_num(res.get('ci_high'))}"

    def wcr_how(res: Mapping[str, Any]) -> str:
        ex = res.get("extra", {}) or {}
        how = (f"all {ex.get('n_boot')} patterns" if ex.get("exact")
               else f"{ex.get('n_boot')} draws")
        return f"WCR bootstrap-t, {ex.get('weights', '')} weights ({how})"

    rows = []
    kinds = (("simple", "Callaway-Sant'Anna, overall (simple)"),
             ("dynamic", "Callaway-Sant'Anna, overall (event time)"),
             ("group", "Callaway-Sant'Anna, overall (by cohort)"))
    for kind, label in kinds:
        res = _get(st, "aggregate", kind, "overall")
        if not res:
            continue
        rows.append([label, fmt_num(res.get("estimate")), interval(res),
                     fmt_p(res.get("pvalue")), "analytic SE, normal"])
        for w in ("rademacher", "webb"):
            b = _get(st, "wcr", kind, w)
            if b:
                rows.append(["", fmt_num(b.get("estimate")), interval(b), fmt_p(b.get("pvalue")),
                             wcr_how(b)])
    ri = st.get("randomization_inference")
    if ri:
        ex = ri.get("extra", {}) or {}
        how = (f"{fmt_num(ex.get('n_assignments'))} assignments "
               f"({ri.get('assignment_blocks', 'none')} blocks), smallest p "
               f"{fmt_p(ex.get('smallest_pvalue'))}" if ex else "randomization")
        rows.append(["Randomization inference over go-live order",
                     fmt_num(ri.get("estimate")), "-", fmt_p(ri.get("pvalue")), how])
    tw = st.get("twfe")
    if tw:
        ex = tw.get("extra", {}) or {}
        df = ex.get("df")
        finite_df = isinstance(df, int | float) and not _missing(df) and df != float("inf")
        ref = f"t({fmt_num(df)})" if finite_df else "normal"
        rows.append(["Two-way fixed effects (benchmark)", fmt_num(tw.get("estimate")),
                     interval(tw), fmt_p(tw.get("pvalue")),
                     f"CR1 ({ex.get('small_sample', '-')}), {ref}" if ex else "-"])
        for w in ("rademacher", "webb"):
            b = _get(st, "twfe_wcr", w)
            if b:
                rows.append(["", fmt_num(b.get("estimate")), interval(b), fmt_p(b.get("pvalue")),
                             wcr_how(b)])
    blocks.append(_table("Staggered-rollout estimates",
                         ["Estimator", "Estimate", "Interval", "p", "Inference"], rows,
                         align="lrrrl"))
    blocks.append({"type": "figure", "name": "event_study"})

    guard = st.get("cohort_guard")
    if guard:
        blocks.append({"type": "h3", "text": "Cohort-size guard"})
        minimum = guard.get("min_cohort_size")
        crow = [[c.get("period", "-"), ", ".join(c.get("areas", [])), fmt_num(c.get("units")),
                 c.get("status", "-")] for c in guard.get("cohorts", [])]
        if crow:
            blocks.append(_table(f"Go-live cohorts (minimum {fmt_num(minimum)} areas)",
                                 ["First period live", "Areas", "Areas (n)", "Status"], crow,
                                 align="llrl"))
        small = guard.get("small_cohorts") or []
        if small:
            mode = guard.get("mode", "exclude")
            blocks.append(_callout(
                f"{len(small)} of {len(guard.get('cohort_sizes', []))} cohorts have fewer "
                f"than {fmt_num(minimum)} areas, the minimum R did asks for. "
                + ("They are left out of the aggregates above." if mode == "exclude" else
                   "They are kept in the aggregates above (the experiment's choice: "
                   "excluding them would leave no aggregate); their analytic standard errors "
                   "are not to be trusted."), kind="warning"))

    pre = st.get("pretrend")
    if pre:
        blocks.append({"type": "h3", "text": "Pre-trend check"})
        prow = [[r.get("label", "").split(",")[0], fmt_num(r.get("estimate")), interval(r),
                 fmt_p(r.get("pvalue"))] for r in pre.get("leads", [])]
        avg = pre.get("average") or {}
        if avg and not _missing(avg.get("estimate")):
            prow.append(["Mean of these leads", fmt_num(avg.get("estimate")), interval(avg),
                         fmt_p(avg.get("pvalue"))])
        if prow:
            blocks.append(_table("Event-study leads (before go-live), WCR bootstrap-t",
                                 ["Lead", "Estimate", "Interval", "p"], prow, align="lrrr"))
        sentence = _get(pre, "power", "sentence")
        if sentence:
            blocks.append(_p(sentence + " (Roth 2022)"))
        if pre.get("limits"):
            blocks.append(_ul(pre["limits"]))

    diags: list[str] = []
    for part in (_get(st, "att_gt", "diagnostics"), _get(st, "twfe", "diagnostics"),
                 [_get(st, "twfe", "note")], _get(st, "aggregate", "simple", "diagnostics"),
                 _get(st, "wcr", "simple", "rademacher", "diagnostics")):
        for d in part or []:
            if d and d not in diags:
                diags.append(d)
    if diags:
        blocks.append({"type": "h3", "text": "Caveats reported by the estimators"})
        blocks.append(_ul(diags))
    return {"id": "staggered", "title": "Staggered rollout", "blocks": blocks}


def _replication_section(results: Mapping[str, Any]) -> dict | None:
    rep = results.get("replication")
    if not rep:
        return None
    if _is_marker(rep):
        return {"id": "replication", "title": "Replication of the published report",
                "blocks": [_withheld_callout(_marker_reason(rep))]}
    counts: dict[str, int] = {}
    for r in rep:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    hidden = sum(k for s, k in counts.items() if _is_marker(s))
    blocks = [_p(
        f"Every number the study published that natexp can recompute, checked at the precision "
        f"it was published with: {counts.get('reproduces', 0)} of {len(rep)} reproduce, "
        f"{counts.get('differs', 0)} differ and {counts.get('not_recomputed', 0)} could not be "
        "recomputed from this run."
        + (f" For {hidden} the comparison is {WITHHELD_TEXT} (the recomputed value uses "
           "suppressed counts)." if hidden else ""))]
    differs = [r for r in rep if r.get("status") == "differs"]
    if differs:
        blocks.append({"type": "h3", "text": "Where the published numbers differ"})
        blocks.append(_ul([f"{r.get('id')} ({r.get('where')}): published "
                           f"{fmt_num(r.get('published'), 6)}, recomputed "
                           f"{fmt_num(r.get('recomputed'), 6)}. {r.get('explanation') or ''}"
                           for r in differs]))
    misread = [r for r in rep if str(r.get("explanation") or "").startswith("MISREADING")]
    if misread:
        blocks.append({"type": "h3", "text": "Where the report misreads a statistic"})
        blocks.append(_ul([f"{r.get('id')} ({r.get('where')}): {r.get('explanation')}"
                           for r in misread]))
    if _get(results, "inputs", "synthetic"):
        blocks.append(_callout(
            "On the embedded synthetic data the counts reproduce by construction (the data "
            "were generated to match the published margins); the derived statistics and the "
            "discrepancies are the informative part.", "info"))
    mark = {"reproduces": "reproduces", "differs": "DIFFERS",
            "not_recomputed": "not recomputed"}
    rows = [[r.get("id"), r.get("where"), fmt_num(r.get("published"), 6),
             fmt_num(r.get("recomputed"), 6), mark.get(r.get("status"), r.get("status")),
             r.get("explanation") or ""] for r in rep]
    blocks.append(_table("Replication of the published numbers",
                         ["Item", "Where published", "Published", "Recomputed", "Status",
                          "Explanation"], rows, align="llrrll", collapsed=True,
                         status_column=4))
    return {"id": "replication", "title": "Replication of the published report",
            "blocks": blocks}


def _limitations_section(results: Mapping[str, Any]) -> dict:
    items = []
    if _get(results, "inputs", "synthetic"):
        items.append("These results come from SYNTHETIC data generated to match the published "
                     "margins. They say nothing about real families.")
    by = {(r["step"], r["arm"]): r["n"] for r in results.get("flow") or []}
    ident = _add(*(by.get(("identified", a), 0) for a in ("treatment", "control")))
    reached = _add(*(by.get(("reached", a), 0) for a in ("treatment", "control")))
    if ident and reached:
        items.append(f"Small numbers: {reached} families were reached, so every comparison "
                     "between the arms has wide uncertainty and low power.")
        if _is_marker(ident) or _is_marker(reached):
            items.append("Non-response: not every identified family may have been reached by "
                         "the follow-up call; if those not reached differ from those reached, "
                         "the comparison is biased (see the tipping-point analysis).")
        elif ident > reached:
            items.append(f"Non-response: {ident - reached} of {ident} identified families were "
                         "not reached by the follow-up call; if they differ from those reached, "
                         "the comparison is biased (see the tipping-point analysis).")
    study = study_of(results)
    counties = ", ".join(_get(results, "design", "treatment_counties", default=[]) or [])
    if _get(results, "design", "kind") == "staggered" and not counties:
        arm = ("the families of areas already live at their reception date; areas went live "
               "in turn")
    else:
        arm = (counties or "the treatment counties") + ", where the programme went live first"
    items.append("Areas were not chosen at random: the treatment arm is " + arm
                 + ". A comparison of so few blocks "
                 "cannot separate the programme from differences between areas, or over time.")
    items.append("Support uptake is recorded only up to the follow-up call and only as "
                 "recorded by the support provider; uptake through other routes may be missed.")
    if study.secondary:
        items.append("The secondary outcomes are descriptive counts from a phone call and were "
                      "not designed to compare the arms.")
    desc = study.descriptive
    if desc is not None:
        about = desc.about or (f"compares {study.wording.children} by "
                               f"{study.label(desc.by)}: it describes them")
        items.append(f"{desc.published or desc.title} {' '.join(about.split())} and says "
                     "nothing about the programme's effect.")
    return {"id": "limitations", "title": "Limitations", "blocks": [_ul(items)]}


def _about_section(results: Mapping[str, Any], figure_names: Sequence[str],
                   publication: bool = False) -> dict:
    inputs = results.get("inputs", {}) or {}
    if publication:  # the bundle describes inputs by an order-independent content checksum
        inputs = {k: ({**v, "sha256": v.get("sha256") or v.get("content_sha256", "")}
                      if isinstance(v, Mapping) else v) for k, v in inputs.items()}
    items = [f"natexp version {results.get('natexp_version', '-')}, experiment "
             f"{results.get('experiment', '-')}."]
    if inputs.get("synthetic"):
        gen = inputs.get("generator", {}) or {}
        items.append("Input: embedded synthetic dataset, seed "
                     f"{gen.get('seed', '-')}" + "".join(
                         f"; {name} {fmt_num(_get(inputs, name, 'rows'))} rows (SHA-256 "
                         f"{str(_get(inputs, name, 'sha256', default=''))[:16]}...)"
                         for name in ("families", "children") if name in inputs) + ".")
    else:
        for name in ("families", "children"):
            part = inputs.get(name) or {}
            if part:
                items.append(f"Input {name}: {part.get('file', '-')}, "
                             f"{fmt_num(part.get('rows'))} rows, SHA-256 "
                             f"{part.get('sha256', '-')}.")
    if publication:
        items = [i.replace("SHA-256", "content SHA-256") for i in items]
    items.append("Everything in this report is in results.json and the CSV tables beside it; "
                 f"the {len(figure_names)} figures are in figures/ as PNG.")
    return {"id": "about", "title": "About this run", "blocks": [_ul(items)]}


# --------------------------------------------------------------------------------------------
# rendering


#: The banner of the publication-mode report.
PUBLICATION_STATEMENT = (
    "PUBLICATION MODE: disclosure-controlled. Every number in this report comes from the "
    "results as cleared by natexp's disclosure control (the disclosure log beside it says what "
    "was done to each output). [c] marks a suppressed count (below the threshold, a zero, or a "
    "count that would let a suppressed one be recovered); 'withheld' marks a statistic computed "
    "from suppressed counts (withheld: disclosure control). Figures leave suppressed values "
    "out, or are withheld with a note; no total or percentage shown uses a suppressed value."
)


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md_cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    env.filters["md_text"] = lambda s: str(s).replace("\n", " ")
    return env


def _figure_rel(path: Path, base_dir: Path | None) -> str:
    if base_dir is not None:
        return Path(os.path.relpath(path, base_dir)).as_posix()
    return f"{path.parent.name}/{path.name}"


def render_report(results: Mapping[str, Any], tables: Mapping[str, Any],
                  figure_paths: Mapping[str, str | Path], *,
                  base_dir: str | Path | None = None,
                  publication: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """Render the report as (HTML, Markdown).

    Parameters
    ----------
    results : Mapping
        The run's results dict (as written to ``results.json``).
    tables : Mapping of str to polars.DataFrame
        The run's tables.
    figure_paths : Mapping of str to Path
        :func:`write_figures`' result. The HTML embeds each PNG as a data URI; the Markdown
        links it relative to ``base_dir``.
    base_dir : str or Path, optional
        Folder of ``report.md`` (default: links are ``<figure folder name>/<file>``).
    publication : Mapping, optional
        Publication mode (see :func:`write_publication_report`): ``results`` and ``tables``
        are disclosure-controlled; ``{"figure_notes": {name: note}, "withheld_figures":
        {name: reason}}`` say which figures leave suppressed values out and which were
        withheld. None (default): the normal report.

    Returns
    -------
    (str, str)
        The self-contained HTML and the Markdown.

    Examples
    --------
    >>> html, md = render_report({"experiment": "demo", "inputs": {"synthetic": True}}, {}, {})
    >>> "SYNTHETIC DATA" in html and "SYNTHETIC DATA" in md
    True
    """
    names = list(figure_paths)
    base = Path(base_dir) if base_dir is not None else None
    sections = [
        _design_section(results, tables),
        _balance_section(results),
        _primary_section(results, tables),
        _secondary_section(results, tables),
        _descriptive_section(results, tables, names),
        _sensitivity_section(results, tables, names),
        _staggered_section(results),
        _replication_section(results),
        _limitations_section(results),
        _about_section(results, names, publication is not None),
    ]
    sections = [s for s in sections if s]
    _words_in_blocks(sections, raw_names(study_of(results)))
    captions = {s.name: s.caption for s in figure_specs(study_of(results))}
    notes = dict((publication or {}).get("figure_notes") or {})
    withheld = dict((publication or {}).get("withheld_figures") or {})
    figures: dict[str, dict[str, str]] = {}
    for name, path in figure_paths.items():
        path = Path(path)
        caption = captions.get(name, name)
        figures[name] = {
            "data_uri": "data:image/png;base64,"
                        + base64.b64encode(path.read_bytes()).decode("ascii"),
            "path": _figure_rel(path, base),
            "caption": f"{caption} {notes[name]}" if name in notes else caption,
        }
    for s in sections:  # drop figure blocks whose figure was not drawn
        blocks = []
        for b in s["blocks"]:
            if b["type"] != "figure" or b["name"] in figures:
                blocks.append(b)
            elif b["name"] in withheld:  # publication mode: say which and why
                blocks.append(_withheld_callout(
                    f"{captions.get(b['name'], b['name']).rstrip('.')}: figure withheld. "
                    f"{withheld[b['name']]}"))
        s["blocks"] = blocks
    synthetic = bool(_get(results, "inputs", "synthetic"))
    statement = _get(results, "inputs", "statement") or (
        "SYNTHETIC DATA: these results come from natexp's embedded synthetic dataset. They are "
        "not real records and say nothing about real families.")
    if _is_marker(statement):
        statement = ""
    prim = results.get("primary_outcome") or {}
    headline = prim.get("sentence") or "" if isinstance(prim, Mapping) else ""
    if _is_marker(headline):
        headline = (f"{WITHHELD_TEXT}: the sentence states statistics computed from "
                    "suppressed counts.")
    ctx = {
        "title": f"natexp report: {results.get('experiment', 'experiment')}",
        "description": results.get("description") or "",
        "version": results.get("natexp_version", ""),
        "synthetic": synthetic,
        "synthetic_statement": statement if statement.startswith("SYNTHETIC") else
        f"SYNTHETIC DATA: {statement}",
        "headline": headline,
        "sections": sections,
        "figures": figures,
        "publication": publication is not None,
        "publication_statement": PUBLICATION_STATEMENT,
    }
    env = _env()
    html = env.get_template("report.html.j2").render(**ctx)
    md = env.get_template("report.md.j2").render(**ctx)
    return html, md


def write_report(out_dir: str | Path, results: Mapping[str, Any],
                 tables: Mapping[str, Any], *, dpi: int = F.DPI,
                 figures: Mapping[str, bytes] | None = None) -> dict[str, Path]:
    """Draw the figures and write ``report.html`` and ``report.md`` into ``out_dir``.

    The pipeline calls this on its staging folder, before the folder is moved into place.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (figures go to ``out_dir/figures``).
    results : Mapping
        The run's results dict.
    tables : Mapping of str to polars.DataFrame
        The run's tables.
    dpi : int, default 300
    figures : Mapping of str to bytes, optional
        The figures already rendered (:func:`render_figures`); default: rendered here.

    Returns
    -------
    dict of str to Path
        ``html``, ``markdown`` and ``figure:<name>`` for every figure written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_report(d, {"experiment": "demo", "inputs": {"synthetic": False}}, {})
    ...     sorted(paths), paths["html"].read_text().startswith("<!DOCTYPE html>")
    (['html', 'markdown'], True)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = write_figures(results, tables, out / "figures", dpi=dpi, rendered=figures)
    html, md = render_report(results, tables, figs, base_dir=out)
    paths = {"html": out / "report.html", "markdown": out / "report.md"}
    paths["html"].write_text(html, encoding="utf-8")
    paths["markdown"].write_text(md, encoding="utf-8")
    paths.update({f"figure:{k}": v for k, v in figs.items()})
    return paths


# --------------------------------------------------------------------------------------------
# publication mode: the report from disclosure-controlled results


#: Where the results say why a figure's inputs were withheld.
_WITHHELD_SOURCE: dict[str, tuple[str, ...]] = {
    "primary_forest": ("primary_outcome", "panel"),
    "tipping_point": ("sensitivity", "nonresponse"),
    "randomization": ("sensitivity", "randomization"),
    "leave_one_out": ("sensitivity", "leave_one_out", "table"),
    "placebo_in_time": ("sensitivity", "placebo_in_time"),
    "specification_curve": ("sensitivity", "specification_curve"),
    "event_study": ("staggered",),
}


def _restore_table(frame: Any, marker: str = SUPPRESSED
                   ) -> tuple[pl.DataFrame, dict[str, list[int]]]:
    """A cleared table typed again: each marker a null, and where the markers were.

    Disclosure control writes a suppressed cell as ``[c]``, which turns its column into text;
    the other cells are parsed back (whole numbers, then decimals, then true/false).
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        frame = pl.DataFrame(frame)
    hidden: dict[str, list[int]] = {}
    cols = []
    for name in frame.columns:
        s = frame[name]
        if s.dtype == pl.String:
            mask = (s == marker).fill_null(False)
            if mask.any():
                hidden[name] = mask.arg_true().to_list()
                s = pl.select(pl.when(mask).then(None).otherwise(s).alias(name)).to_series()
                s = _parse_text(s)
        cols.append(s)
    return pl.DataFrame(cols), hidden


def _parse_text(s: pl.Series) -> pl.Series:
    for dtype in (pl.Int64, pl.Float64):
        try:
            return s.cast(dtype, strict=True)
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
            continue
    if set(s.drop_nulls().unique().to_list()) <= {"true", "false"}:
        return s.replace_strict({"true": True, "false": False}, default=None,
                                return_dtype=pl.Boolean)
    return s


def _records(frame: pl.DataFrame, hidden: Mapping[str, list[int]],
             marker: str = SUPPRESSED) -> _Records:
    rows = frame.to_dicts()
    for col, idx in hidden.items():
        for i in idx:
            rows[i][col] = marker
    return _Records(frame.columns, rows)


def _hidden_drawn(spec: FigureSpec, frame: pl.DataFrame | None,
                  hidden: Mapping[str, list[int]]) -> int:
    """How many suppressed values the rows and columns a figure draws hold."""
    if frame is None or not hidden:
        return 0
    rows, cols = spec.rows, spec.columns
    keep = set(range(frame.height))
    if rows is not None and rows[0] in frame.columns:
        keep = {i for i, v in enumerate(frame[rows[0]].to_list()) if v in rows[1]}
    return sum(1 for c in cols for i in hidden.get(c, []) if i in keep)


def _count_markers(node: Any) -> int:
    if isinstance(node, Mapping):
        return sum(_count_markers(v) for v in node.values())
    if isinstance(node, list | tuple):
        return sum(_count_markers(v) for v in node)
    return int(_is_marker(node))


def write_publication_report(out_dir: str | Path, results: Mapping[str, Any],
                             tables: Mapping[str, Any], *, dpi: int = F.DPI,
                             marker: str = SUPPRESSED) -> dict[str, dict[str, Any]]:
    """Draw the figures and write the report from disclosure-controlled results.

    ``results`` and ``tables`` are the output of
    :func:`natexp.bundle.disclosure.publication_mode`: a suppressed count or a withheld
    statistic is ``marker`` (``[c]``), a section withheld as a whole a ``[withheld: ...]``
    string, withheld tables are absent. Nothing here sees an uncleared value, and nothing is
    computed from a suppressed one: totals and percentages with a suppressed part read
    ``[c]``/``withheld``, sentences that need a withheld statistic say so, count figures leave
    suppressed bars out (labelled ``[c]``, with a note), and figures of estimates, grids or
    distributions are withheld with a note when any of their values was. The report carries a
    ``PUBLICATION MODE: disclosure-controlled`` banner.

    Nothing is written when the run's config switched the report off (``report.enabled``).

    Parameters
    ----------
    out_dir : str or Path
        Output folder (figures go to ``out_dir/figures``).
    results : Mapping
        Cleared results (``Publication.results``).
    tables : Mapping of str to polars.DataFrame
        Cleared tables (``Publication.tables``).
    dpi : int, default 300
    marker : str
        The suppression marker of the cleared results.

    Returns
    -------
    dict
        Relative file name (``report.html``, ``figures/flow.png``) -> ``{"status": "pass" |
        "review", "reasons": [...], "withheld": bool}`` for every file written and every
        figure withheld (``withheld`` True: not written), for the disclosure log.

    Examples
    --------
    >>> import tempfile
    >>> flow = pl.DataFrame({"order": [0, 1, 1], "step": ["input", "identified", "identified"],
    ...                      "arm": ["all", "treatment", "control"],
    ...                      "label": ["In", "Identified", "Identified"],
    ...                      "n": ["30", "24", "[c]"]})
    >>> res = {"experiment": "demo", "inputs": {"synthetic": False},
    ...        "flow": [{"step": "input", "arm": "all", "label": "In", "n": 30},
    ...                 {"step": "identified", "arm": "treatment", "label": "Identified",
    ...                  "n": 24},
    ...                 {"step": "identified", "arm": "control", "label": "Identified",
    ...                  "n": "[c]"}]}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     checks = write_publication_report(d, res, {"flow": flow}, dpi=30)
    ...     html = (Path(d) / "report.html").read_text()
    >>> checks["figures/flow.png"]["status"], checks["report.html"]["status"]
    ('review', 'review')
    >>> "PUBLICATION MODE: disclosure-controlled" in html and "<td class=\\"r\\">[c]</td>" in html
    True
    """
    from natexp.causal.result import InvalidInputError
    from natexp.progress import progress

    if _get(results, "config", "report", "enabled") is False:
        return {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    typed: dict[str, pl.DataFrame] = {}
    hidden: dict[str, dict[str, list[int]]] = {}
    text_tables: dict[str, Any] = {}
    for name, frame in tables.items():
        typed[name], hidden[name] = _restore_table(frame, marker)
        text_tables[name] = _records(typed[name], hidden[name], marker)
    checks: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    withheld: dict[str, str] = {}
    plots = []
    for spec in figure_specs(study_of(results)):
        table, policy = spec.table, spec.policy
        rel = f"figures/{spec.name}.png"
        source = _get(results, *_WITHHELD_SOURCE.get(spec.name, ("-",)))
        reason = _marker_reason(source) if _is_marker(source) else ""
        if policy == "all" and hidden.get(table):
            k = sum(len(v) for v in hidden[table].values())
            withheld[spec.name] = (
                f"{k} value(s) of its table ({table}) were suppressed or withheld: "
                f"{reason or 'computed from suppressed counts'}")
            checks[rel] = {"status": "review", "withheld": True, "reasons": [
                f"withheld (publication mode): {withheld[spec.name]}"]}
            continue
        try:
            plot = spec.build(results, typed)
        except (InvalidInputError, TypeError, ValueError, KeyError) as exc:
            plot = None
            reason = f"it could not be drawn from the cleared results ({type(exc).__name__})"
        if plot is None:
            why = reason or ("its inputs were withheld by disclosure control or not produced "
                             "by this run")
            if reason:
                withheld[spec.name] = why
            checks[rel] = {"status": "review", "withheld": True, "reasons": [
                f"not drawn (publication mode): {why}"]}
            continue
        k = _hidden_drawn(spec, typed.get(table), hidden.get(table, {}))
        if k:
            notes[spec.name] = ("Publication mode: suppressed values ([c]) are left out of this "
                                "figure (disclosure control).")
            checks[rel] = {"status": "review", "withheld": False, "reasons": [
                "drawn by natexp.report.render.write_publication_report from the cleared "
                "results only",
                f"{k} suppressed value(s) left out of the figure and labelled [c]; no total or "
                "percentage drawn uses them"]}
        else:
            checks[rel] = {"status": "pass", "withheld": False, "reasons": [
                "drawn by natexp.report.render.write_publication_report from the cleared "
                "results only; none of the values it draws was suppressed"]}
        plots.append((spec, plot))
    paths: dict[str, Path] = {}
    for spec, plot in progress(plots, "figures (publication mode)"):
        paths[spec.name] = F.save_png(plot, out / "figures" / f"{spec.name}.png",
                                      width=spec.width, height=spec.height, dpi=dpi)
    html, md = render_report(results, text_tables, paths, base_dir=out,
                             publication={"figure_notes": notes, "withheld_figures": withheld})
    (out / "report.html").write_text(html, encoding="utf-8")
    (out / "report.md").write_text(md, encoding="utf-8")
    n_marked = _count_markers(results) + sum(len(i) for h in hidden.values()
                                            for i in h.values())
    reasons = ["publication mode: built by natexp.report.render.write_publication_report from "
               "the cleared results only"]
    if n_marked:
        reasons.append(f"the cleared results hold {n_marked} suppressed or withheld value(s): "
                       "the report shows [c] or 'withheld' in their place and computes no "
                       "total or percentage from them")
    if withheld:
        reasons.append(f"{len(withheld)} figure(s) withheld with a note: "
                       + ", ".join(sorted(withheld)))
    status = "review" if n_marked or withheld or notes else "pass"
    for name in ("report.html", "report.md"):
        checks[name] = {"status": status, "withheld": False, "reasons": list(reasons)}
    return dict(sorted(checks.items()))
