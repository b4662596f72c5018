"""plotnine figures of a natexp run: the report's own figures and the design's diagnostics.

Every figure comes as a pair: ``fig_x(...) -> plotnine.ggplot`` and ``fig_x_data(...) ->
polars.DataFrame``, the exact data drawn. Figures never compute statistics: they reshape the
count tables and the results the analyses produced (a percentage of two published counts is the
most they derive, for a bar's height). Each function documents the columns it expects; a missing
column raises :class:`natexp.causal.result.InvalidInputError`.

Conventions: the Okabe-Ito colour-blind-safe palette (:data:`OKABE_ITO`), DejaVu Sans (shipped
with matplotlib, so text renders the same on every machine), counts written on the bars where
the report shows counts, and :func:`save_png` writes PNGs at print resolution without any
timestamp or software metadata, so the same figure gives byte-identical files on every run.

Publication mode (the report built from disclosure-controlled results): in the count figures
(flow, the descriptive and secondary tables, children by age) a null count is a value suppressed by disclosure
control. Its bar is not drawn, its label reads :data:`SUPPRESSED` (``[c]``), every total or
percentage that would need it reads ``[c]`` too, and the figure carries a caption saying so:
nothing drawn depends on a suppressed value.

The figures of a study's tables take every word they draw (titles, category and group labels)
as arguments; the report passes the study's (:mod:`natexp.study`). For the example study
(its published report is cited in README.md) they redraw the published Figures 1-11:

* :func:`fig_descriptive`: the descriptive table's questions by group (Figures 1-2 and 4-5);
* :func:`fig_child_ages` (a ``children_by_age`` count table: ``age``, ``n``; Figure 3);
* secondary tables by kind: :func:`fig_contact` (``crossed``, Figure 6), :func:`fig_uptake`
  (``outcome_routes``, Figures 7-8), :func:`fig_referral_response` (``category``, Figure 9),
  :func:`fig_reasons` (``flags``, Figure 10), :func:`fig_interview` (``consent``, Figure 11).

Beyond the report: :func:`fig_flow` (CONSORT-style cohort flow), :func:`fig_forest` (the primary
risk difference across interval methods), :func:`fig_tipping_point`,
:func:`fig_randomization`, :func:`fig_leave_one_out`, :func:`fig_placebo`,
:func:`fig_specification_curve` and :func:`fig_event_study`.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from mizani.breaks import breaks_extended
from plotnine import (
    aes,
    annotate,
    coord_cartesian,
    coord_flip,
    element_blank,
    element_line,
    element_text,
    geom_col,
    geom_errorbarh,
    geom_histogram,
    geom_hline,
    geom_linerange,
    geom_point,
    geom_pointrange,
    geom_rect,
    geom_segment,
    geom_text,
    geom_tile,
    geom_vline,
    ggplot,
    labs,
    position_dodge,
    position_stack,
    scale_colour_manual,
    scale_fill_gradient2,
    scale_fill_manual,
    scale_shape_manual,
    scale_x_continuous,
    scale_y_continuous,
    theme,
    theme_bw,
    theme_void,
)
from plotnine import (
    arrow as p9_arrow,
)

from natexp.causal.result import InvalidInputError

__all__ = [
    "ARM_COLOURS",
    "DPI",
    "FONT",
    "OKABE_ITO",
    "SUPPRESSED",
    "fig_descriptive",
    "fig_descriptive_data",
    "fig_child_ages",
    "fig_child_ages_data",
    "fig_contact",
    "fig_contact_data",
    "fig_event_study",
    "fig_event_study_data",
    "fig_flow",
    "fig_flow_data",
    "fig_forest",
    "fig_forest_data",
    "fig_interview",
    "fig_interview_data",
    "fig_leave_one_out",
    "fig_leave_one_out_data",
    "fig_placebo",
    "fig_placebo_data",
    "fig_randomization",
    "fig_randomization_data",
    "fig_reasons",
    "fig_reasons_data",
    "fig_referral_response",
    "fig_referral_response_data",
    "fig_specification_curve",
    "fig_specification_curve_data",
    "fig_tipping_point",
    "fig_tipping_point_data",
    "fig_uptake",
    "fig_uptake_data",
    "png_bytes",
    "save_png",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}
#: Arm colours: treatment blue, control orange.
ARM_COLOURS = {"Treatment": OKABE_ITO["blue"], "Control": OKABE_ITO["orange"]}
_YES_NO = {"Yes": OKABE_ITO["blue"], "No": OKABE_ITO["grey"]}
_ARMS = {"treatment": "Treatment", "control": "Control"}
#: A font that ships with matplotlib: text renders identically everywhere.
FONT = "DejaVu Sans"
#: Print resolution of saved PNGs.
DPI = 300
_TEXT_SIZE = 8.5  # points, for counts written on bars
#: Label of a value suppressed by disclosure control (the GSS marker for "confidential").
SUPPRESSED = "[c]"
_SUPPRESSED_NOTE = ("[c]: suppressed by disclosure control (publication mode); not drawn, and "
                    "no total or percentage shown uses it.")


# --------------------------------------------------------------------------------------------
# helpers


def _frame(data: Any, name: str, columns: Sequence[str]) -> pl.DataFrame:
    """``data`` as a polars frame with ``columns`` (records, column dicts and pandas accepted)."""
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if not isinstance(data, pl.DataFrame):
        try:
            data = pl.DataFrame(data)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"{name}: expected a table, got {type(data).__name__}") \
                from err
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InvalidInputError(f"{name}: missing column(s) {missing}; has {data.columns}")
    return data


def _chain(plot: ggplot, *parts: Any) -> ggplot:
    """``plot + parts[0] + parts[1] + ...``, added in place.

    plotnine's ``+`` deep-copies the whole plot (its layers and theme) at every step, so a
    figure written as a chain of ``+`` was copied once per element; ``+=`` adds in place. The
    plot is always a new one, never shared, so the figure is the same (tested: the same PNG
    bytes).
    """
    for part in parts:
        plot += part
    return plot


def _theme(legend: str = "top") -> theme:
    return theme_bw(base_size=11, base_family=FONT) + theme(
        legend_position=legend,
        legend_title=element_blank(),
        panel_grid_minor=element_blank(),
        plot_title=element_text(size=12, weight="bold"),
        plot_subtitle=element_text(size=9.5),
        plot_caption=element_text(size=8, ha="left"),
        plot_title_position="plot",
        plot_caption_position="plot",
        strip_background=element_blank(),
    )


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def _enum(frame: pl.DataFrame, column: str, order: Sequence[str]) -> pl.DataFrame:
    """Fix the drawing order of a text column (plotnine reads an Enum as ordered levels)."""
    levels = list(dict.fromkeys(order))
    levels += [v for v in frame[column].unique(maintain_order=True).to_list()
               if v not in levels and v is not None]
    return frame.with_columns(pl.col(column).cast(pl.Enum(levels)))


def _pct(x: float, n: float) -> float | None:
    return None if not n else 100.0 * x / n


def _fmt_pct(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.1f}%" if 0 < v < 10 else f"{v:.0f}%"


def _count_text(v: Any) -> str:
    """A count as text; None (suppressed in publication mode) as ``[c]``."""
    return SUPPRESSED if v is None else f"{v}"


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _num(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


#: Draw with pandas' object strings (False only to compare bytes in the tests).
_OBJECT_STRINGS = True


def png_bytes(plot: ggplot, *, width: float = 7.0, height: float = 4.5,
              dpi: int = DPI) -> bytes:
    """Render ``plot`` to PNG bytes at ``dpi`` without metadata (byte-identical across runs).

    Parameters
    ----------
    plot : plotnine.ggplot
    width, height : float
        Inches.
    dpi : int, default 300

    Returns
    -------
    bytes

    Examples
    --------
    >>> p = fig_child_ages(pl.DataFrame({"age": [0, 1, 2], "n": [3, 5, 4]}))
    >>> png_bytes(p, width=3, height=2, dpi=50)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    from natexp._pandas import object_strings

    buf = io.BytesIO()
    # metadata={"Software": None} drops matplotlib's version text chunk; PNG carries no date.
    # plotnine builds many small pandas frames while drawing: with object strings it draws
    # about a tenth faster, and the same pixels (tested).
    with object_strings(_OBJECT_STRINGS):
        plot.save(buf, format="png", width=width, height=height, units="in", dpi=dpi,
                  verbose=False, metadata={"Software": None})
    return buf.getvalue()


def save_png(plot: ggplot, path: str | Path, *, width: float = 7.0, height: float = 4.5,
             dpi: int = DPI) -> Path:
    """Save ``plot`` as a deterministic PNG (see :func:`png_bytes`).

    Parameters
    ----------
    plot : plotnine.ggplot
    path : str or Path
    width, height : float
        Inches.
    dpi : int, default 300

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile
    >>> p = fig_child_ages(pl.DataFrame({"age": [0, 1], "n": [3, 5]}))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = save_png(p, Path(d) / "ages.png", width=3, height=2, dpi=50)
    ...     out.stat().st_size > 0
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(plot, width=width, height=height, dpi=dpi))
    return path


# --------------------------------------------------------------------------------------------
# the descriptive table (a study's two-group comparison of every child)

_GROUP_PALETTE = (OKABE_ITO["reddish_purple"], OKABE_ITO["bluish_green"])


def _descriptive_long(table: Any, questions: Mapping[str, str],
                      groups: Mapping[str, str]) -> pl.DataFrame:
    keys = list(questions)
    cols = ("table", *(f"{g}_{k}" for g in groups for k in ("yes", "no")))
    t = _frame(table, "descriptive", cols)
    rows = []
    for key in keys:
        part = t.filter(pl.col("table") == key)
        if part.height != 1:
            raise InvalidInputError(f"descriptive table: expected one row with table == {key!r}")
        r = part.row(0, named=True)
        for group, label in groups.items():
            if r[f"{group}_yes"] is None or r[f"{group}_no"] is None:  # suppressed
                yes = _int_or_none(r[f"{group}_yes"])
                rows.append({"table": key, "question": questions[key],
                             "parent": label, "yes": yes, "n": None, "percent": None,
                             "label": f"{SUPPRESSED}\n({_count_text(yes)} of {SUPPRESSED})"})
                continue
            yes, no = int(r[f"{group}_yes"]), int(r[f"{group}_no"])
            pct = _pct(yes, yes + no)
            rows.append({"table": key, "question": questions[key], "parent": label,
                         "yes": yes, "n": yes + no, "percent": pct,
                         "label": f"{_fmt_pct(pct)}\n({yes} of {yes + no})"})
    out = pl.DataFrame(rows, schema={"table": pl.String, "question": pl.String,
                                     "parent": pl.String, "yes": pl.Int64, "n": pl.Int64,
                                     "percent": pl.Float64, "label": pl.String})
    out = _enum(out, "parent", list(groups.values()))
    return _enum(out, "question", [questions[k] for k in keys])


def _percent_bars(data: pl.DataFrame, x: str, title: str, subtitle: str,
                  colours: Mapping[str, str], ylabel: str = "Percentage") -> ggplot:
    top = max([v for v in data["percent"].to_list() if v is not None] + [1.0])
    dodge = position_dodge(width=0.8)
    hidden = data["n"].null_count() > 0
    if hidden:  # suppressed: no bar (height 0 keeps the dodge), labelled [c]
        data = data.with_columns(pl.when(pl.col("n").is_null()).then(0.0)
                                 .otherwise(pl.col("percent")).alias("percent"))
    p = (
        _chain(
            ggplot(data, aes(x=x, y="percent", fill="parent")),
            geom_col(position=dodge, width=0.75),
            geom_text(aes(label="label", group="parent"), position=dodge, va="bottom",
                      size=_TEXT_SIZE, family=FONT),
            scale_fill_manual(values=dict(colours)),
            scale_y_continuous(limits=(0, min(100.0, top * 1.25) if top < 80 else 110),
                               **({"breaks": [0, 20, 40, 60, 80, 100]} if top >= 50 else {})),
            labs(x="", y=ylabel, title=title, subtitle=subtitle),
            _theme(),
        )
    )
    return p + labs(caption=_SUPPRESSED_NOTE) if hidden else p


def fig_descriptive_data(table: Any, questions: Mapping[str, str],
                         groups: Mapping[str, str]) -> pl.DataFrame:
    """Data of :func:`fig_descriptive`.

    Parameters
    ----------
    table : polars.DataFrame
        The pipeline's descriptive table (named by the study's ``descriptive.key``):
        ``table`` (the question key) and ``<group>_yes``, ``<group>_no`` for each group.
    questions : Mapping of str to str
        Question key -> its label on the figure, in drawing order.
    groups : Mapping of str to str
        Group word (as in the table's column names) -> its label in the legend.

    Returns
    -------
    polars.DataFrame
        ``table, question, parent, yes, n, percent, label`` (``parent``: the group label).

    Examples
    --------
    >>> t = pl.DataFrame({"table": ["q1"], "a_yes": [8], "a_no": [24],
    ...                   "b_yes": [536], "b_no": [71]})
    >>> d = fig_descriptive_data(t, {"q1": "Question one"}, {"a": "Group A", "b": "Group B"})
    >>> d["percent"].round(1).to_list(), d["parent"].cast(pl.String).to_list()
    ([25.0, 88.3], ['Group A', 'Group B'])
    """
    return _descriptive_long(table, questions, groups)


def fig_descriptive(table: Any, questions: Mapping[str, str], groups: Mapping[str, str], *,
                    title: str = "", subtitle: str = "",
                    ylabel: str = "Percentage of children") -> ggplot:
    """Percentage bars of some questions of the descriptive table, by group.

    One question: a bar per group (no legend); several: the questions side by side, the
    groups dodged and in the legend.

    Parameters
    ----------
    table, questions, groups
        See :func:`fig_descriptive_data`.
    title, subtitle, ylabel : str
        Words drawn on the figure (the study's).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"table": ["q1", "q2"], "a_yes": [5, 6], "a_no": [27, 26],
    ...                   "b_yes": [20, 7], "b_no": [587, 600]})
    >>> type(fig_descriptive(t, {"q1": "One", "q2": "Two"}, {"a": "A", "b": "B"})).__name__
    'ggplot'
    """
    data = fig_descriptive_data(table, questions, groups)
    colours = dict(zip(groups.values(), _GROUP_PALETTE, strict=False))
    if len(questions) == 1:
        return _percent_bars(data, "parent", title, subtitle, colours, ylabel) + theme(
            legend_position="none")
    return _percent_bars(data, "question", title, subtitle, colours, ylabel)


# --------------------------------------------------------------------------------------------
# Figure 3


def fig_child_ages_data(children_by_age: Any) -> pl.DataFrame:
    """Data of :func:`fig_child_ages`.

    Parameters
    ----------
    children_by_age : polars.DataFrame
        A count table with ``age`` (years) and ``n`` (children).

    Returns
    -------
    polars.DataFrame
        ``age, n`` sorted by age.

    Examples
    --------
    >>> fig_child_ages_data(pl.DataFrame({"age": [2, 1], "n": [4, 3]}))["age"].to_list()
    [1, 2]
    """
    t = _frame(children_by_age, "children_by_age", ("age", "n"))
    return t.select(pl.col("age").cast(pl.Int64), pl.col("n").cast(pl.Int64)).sort("age")


def fig_child_ages(children_by_age: Any, *, title: str = "Ages of the children",
                   subtitle: str = "Count of children") -> ggplot:
    """Children by age (the example study's Figure 3).

    Parameters
    ----------
    children_by_age : polars.DataFrame
        See :func:`fig_child_ages_data`.
    title, subtitle : str
        Words drawn on the figure (the subtitle is followed by ``(n = total)``).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> type(fig_child_ages(pl.DataFrame({"age": [0, 1], "n": [3, 5]}))).__name__
    'ggplot'
    """
    data = fig_child_ages_data(children_by_age)
    hidden = data["n"].null_count() > 0
    total: int | str = SUPPRESSED if hidden else int(data["n"].sum())
    top = max(data["n"].max() or 1, 1)
    lo = min(0, data["age"].min() or 0)
    hi = max(17, data["age"].max() or 17)
    label = "n"
    if hidden:  # suppressed: no bar, labelled [c]
        data = data.with_columns(pl.col("n").cast(pl.String).fill_null(SUPPRESSED)
                                 .alias("n_label"), pl.col("n").fill_null(0))
        label = "n_label"
    p = (
        _chain(
            ggplot(data, aes(x="age", y="n")),
            geom_col(fill=OKABE_ITO["blue"], width=0.8),
            geom_text(aes(label=label), va="bottom", size=_TEXT_SIZE, family=FONT,
                      nudge_y=top * 0.015),
            scale_x_continuous(breaks=list(range(lo, hi + 1))),
            scale_y_continuous(limits=(0, top * 1.12)),
            labs(x="Age of child (years)", y="Children",
                 title=title, subtitle=f"{subtitle} (n = {total})"),
            _theme(),
            theme(panel_grid_major_x=element_blank()),
        )
    )
    return p + labs(caption=_SUPPRESSED_NOTE) if hidden else p


# --------------------------------------------------------------------------------------------
# secondary tables, by kind: crossed (e.g. Figure 6 of the example study)


def _arm_label(group: str) -> str:
    return _ARMS.get(group, group)


def fig_contact_data(contact: Any, cells: Mapping[str, str] | None = None,
                     measure: str | None = None) -> pl.DataFrame:
    """Data of :func:`fig_contact`.

    Parameters
    ----------
    contact : polars.DataFrame
        The pipeline's ``secondary_contact`` table: ``group`` (``treatment``, ``control``,
        ``total``), ``measure``, ``value``, ``n``; the rows of ``measure`` are drawn.
    cells : Mapping of str to str, optional
        Cell (``value``) -> its label (default: every value but ``cell_missing``, labelled
        by itself). Drawn in the table's order, then any cell the table lacks.
    measure : str, optional
        The measure holding the cells (default: the table's first).

    Returns
    -------
    polars.DataFrame
        ``cell, arm, n, total, of, category`` (``category`` is the axis label with the total).

    Examples
    --------
    >>> t = pl.DataFrame({"group": ["treatment", "control", "total"],
    ...                   "measure": ["contact_view"] * 3,
    ...                   "value": ["no_contact_positive"] * 3, "n": [13, 11, 24]})
    >>> cells = {"yes_good": "Yes, good", "yes_bad": "Yes, bad",
    ...          "no_contact_positive": "No, good", "no_bad": "No, bad"}
    >>> fig_contact_data(t, cells).filter(pl.col("arm") == "Treatment")["n"].to_list()
    [13, 0, 0, 0]
    """
    t = _frame(contact, "contact", ("group", "measure", "value", "n"))
    if measure is None:
        measure = t["measure"][0] if t.height else ""
    t = t.filter(pl.col("measure") == measure)
    present = [v for v in dict.fromkeys(t["value"].to_list()) if v != "cell_missing"]
    if cells is None:
        cells = {v: v for v in present}
    else:  # the table's order (a study description's mapping order may not survive JSON)
        cells = {**{v: cells[v] for v in present if v in cells}, **cells}
    totals = {r["value"]: _int_or_none(r["n"])
              for r in t.filter(pl.col("group") == "total").to_dicts()}
    # a total that includes a suppressed count is not shown
    of = None if None in totals.values() else sum(totals.values())
    rows = []
    for cell, label in cells.items():
        for group in ("treatment", "control"):
            part = t.filter((pl.col("group") == group) & (pl.col("value") == cell))
            n = (None if part["n"].null_count() else int(part["n"].sum())) if part.height else 0
            tot = totals.get(cell, 0)
            rows.append({"cell": cell, "arm": _arm_label(group), "n": n, "total": tot,
                         "of": of, "category": f"{_wrap(label, 20)}\n({_count_text(tot)})"})
    out = pl.DataFrame(rows, schema={"cell": pl.String, "arm": pl.String, "n": pl.Int64,
                                     "total": pl.Int64, "of": pl.Int64,
                                     "category": pl.String})
    out = _enum(out, "arm", list(ARM_COLOURS))
    return _enum(out, "category", out["category"].to_list())


def _dodged_counts(data: pl.DataFrame, x: str, fill: str, colours: Mapping[str, str],
                   flip: bool = False) -> ggplot:
    top = max(int(data["n"].max() or 0), 1)
    dodge = position_dodge(width=0.8)
    hidden = data["n"].null_count() > 0
    label = "n"
    if hidden:  # suppressed: no bar (height 0 keeps the dodge), labelled [c]
        data = data.with_columns(pl.col("n").cast(pl.String).fill_null(SUPPRESSED)
                                 .alias("n_label"), pl.col("n").fill_null(0))
        label = "n_label"
    if flip:  # coord_flip draws the first level at the bottom: reverse to read top-down
        levels = list(data.schema[fill].categories)
        data = data.with_columns(pl.col(fill).cast(pl.String).cast(pl.Enum(levels[::-1])),
                                 pl.format(" {}", label).alias("n_text"))
    text = (geom_text(aes(label="n_text", group=fill), position=dodge, ha="left",
                      size=_TEXT_SIZE, family=FONT) if flip else
            geom_text(aes(label=label, group=fill), position=dodge, va="bottom",
                      size=_TEXT_SIZE, family=FONT))
    p = (
        _chain(
            ggplot(data, aes(x=x, y="n", fill=fill)),
            geom_col(position=dodge, width=0.75),
            text,
            scale_fill_manual(values=dict(colours), breaks=list(colours)),
            scale_y_continuous(limits=(0, top * 1.15)),
            _theme(),
        )
    )
    if flip:
        p = p + coord_flip() + theme(panel_grid_major_y=element_blank())
    else:
        p = p + theme(panel_grid_major_x=element_blank())
    return p + labs(caption=_SUPPRESSED_NOTE) if hidden else p


def fig_contact(contact: Any, cells: Mapping[str, str] | None = None,
                measure: str | None = None, *, title: str = "") -> ggplot:
    """The cells of a ``crossed`` secondary table, by arm (e.g. contact with the imprisoned
    parent and how the carer sees it, Figure 6 of the example study).

    Parameters
    ----------
    contact, cells, measure
        See :func:`fig_contact_data`.
    title : str
        The study's title of the figure.

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"group": ["treatment", "control", "total"],
    ...                   "measure": ["contact_view"] * 3,
    ...                   "value": ["no_contact_positive"] * 3, "n": [13, 11, 24]})
    >>> type(fig_contact(t)).__name__
    'ggplot'
    """
    data = fig_contact_data(contact, cells, measure)
    of = _count_text(data["of"][0]) if data.height else 0
    return _dodged_counts(data, "category", "arm", ARM_COLOURS) + labs(
        x="", y="Families",
        title=title,
        subtitle=f"Reached families by arm; total of both arms in brackets "
                 f"({of} families with an answer)",
    )


# --------------------------------------------------------------------------------------------
# outcome_routes: the outcome by arm (e.g. Figures 7-8 of the example study)


def fig_uptake_data(uptake: Any, yes_label: str = "Yes") -> pl.DataFrame:
    """Data of :func:`fig_uptake`.

    Parameters
    ----------
    uptake : polars.DataFrame
        The pipeline's ``secondary_uptake`` table: ``group``, ``yes``, ``no``, ``n``,
        ``percent`` (as computed by :func:`natexp.data.tables.uptake`).
    yes_label : str
        Words for the families with the outcome (the study's ``outcome.yes_label``).

    Returns
    -------
    polars.DataFrame
        ``arm, answer, n, total, percent, arm_label`` (``answer`` Yes/No; one row each).

    Examples
    --------
    >>> t = pl.DataFrame({"group": ["treatment", "control"], "yes": [4, 2], "no": [16, 13],
    ...                   "n": [20, 15], "percent": [20.0, 13.3]})
    >>> fig_uptake_data(t).filter(pl.col("answer") == "Yes")["n"].to_list()
    [4, 2]
    """
    t = _frame(uptake, "uptake", ("group", "yes", "no", "n", "percent"))
    rows = []
    for group in ("treatment", "control"):
        part = t.filter(pl.col("group") == group)
        if part.height != 1:
            continue
        r = part.row(0, named=True)
        pct = SUPPRESSED if r["yes"] is None or r["n"] is None else _fmt_pct(r["percent"])
        arm_label = (f"{_arm_label(group)}\n{_count_text(r['yes'])} of {_count_text(r['n'])} "
                     f"{yes_label.lower()} ({pct})")
        for answer in ("Yes", "No"):
            rows.append({"arm": _arm_label(group), "answer": answer,
                         "n": _int_or_none(r[answer.lower()]), "total": _int_or_none(r["n"]),
                         "percent": r["percent"], "arm_label": arm_label})
    out = pl.DataFrame(rows, schema={"arm": pl.String, "answer": pl.String, "n": pl.Int64,
                                     "total": pl.Int64, "percent": pl.Float64,
                                     "arm_label": pl.String})
    out = _enum(out, "answer", ["No", "Yes"])
    return _enum(out, "arm_label", out["arm_label"].to_list())


def fig_uptake(uptake: Any, *, yes_label: str = "Yes", no_label: str = "No",
               title: str = "", subtitle: str = "") -> ggplot:
    """The outcome before follow-up, by arm (counts; Figures 7-8 of the example study).

    Parameters
    ----------
    uptake : polars.DataFrame
        See :func:`fig_uptake_data`.
    yes_label, no_label : str
        Legend of families with and without the outcome (the study's words).
    title, subtitle : str
        The study's words drawn on the figure.

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"group": ["treatment", "control"], "yes": [4, 2], "no": [16, 13],
    ...                   "n": [20, 15], "percent": [20.0, 13.3]})
    >>> type(fig_uptake(t)).__name__
    'ggplot'
    """
    data = fig_uptake_data(uptake, yes_label)
    labelled = data.filter(pl.col("n") > 0)
    hidden = data["n"].null_count() > 0
    p = (
        _chain(
            ggplot(data.filter(pl.col("n").is_not_null()) if hidden else data,
                   aes(x="arm_label", y="n", fill="answer")),
            geom_col(position=position_stack(), width=0.6),
            geom_text(labelled, aes(label="n"), position=position_stack(vjust=0.5),
                      size=_TEXT_SIZE + 1, family=FONT, colour="white", fontweight="bold"),
            scale_fill_manual(values=_YES_NO, breaks=["Yes", "No"],
                              labels=[yes_label, no_label]),
            labs(x="", y="Reached families", title=title, subtitle=subtitle),
            _theme(),
            theme(panel_grid_major_x=element_blank()),
        )
    )
    return p + labs(caption=_SUPPRESSED_NOTE) if hidden else p


# --------------------------------------------------------------------------------------------
# category: one answer per family (e.g. Figure 9 of the example study)


def fig_referral_response_data(referral: Any) -> pl.DataFrame:
    """Data of :func:`fig_referral_response`.

    Parameters
    ----------
    referral : polars.DataFrame
        The pipeline's ``secondary_referral_response`` table: ``response``, ``label``,
        ``treatment``, ``control``, ``total`` (a ``missing`` row with total 0 is dropped).

    Returns
    -------
    polars.DataFrame
        ``response, category, arm, n, total``.

    Examples
    --------
    >>> t = pl.DataFrame({"response": ["accepted", "missing"], "label": ["Yes", "Not recorded"],
    ...                   "treatment": [11, 0], "control": [6, 0], "total": [17, 0]})
    >>> fig_referral_response_data(t)["n"].to_list()
    [11, 6]
    """
    t = _frame(referral, "referral_response",
               ("response", "label", "treatment", "control", "total"))
    t = t.filter(~((pl.col("response") == "missing") & (pl.col("total") == 0)))
    rows = []
    for r in t.iter_rows(named=True):
        cat = f"{_wrap(r['label'], 32)} ({_count_text(r['total'])})"
        for group in ("treatment", "control"):
            rows.append({"response": r["response"], "category": cat, "arm": _arm_label(group),
                         "n": _int_or_none(r[group]), "total": _int_or_none(r["total"])})
    out = pl.DataFrame(rows, schema={"response": pl.String, "category": pl.String,
                                     "arm": pl.String, "n": pl.Int64, "total": pl.Int64})
    out = _enum(out, "arm", list(ARM_COLOURS))
    # coord_flip draws the first level at the bottom: reverse to read top-down
    return _enum(out, "category", out["category"].to_list()[::-1])


def fig_referral_response(referral: Any, *, title: str = "", subtitle: str = "") -> ggplot:
    """The answers of a ``category`` secondary table, by arm (e.g. the response to the
    support offer, Figure 9 of the example study).

    Parameters
    ----------
    referral : polars.DataFrame
        See :func:`fig_referral_response_data`.
    title, subtitle : str
        The study's words drawn on the figure (``both arms' total in brackets`` is added).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"response": ["accepted"], "label": ["Yes"],
    ...                   "treatment": [11], "control": [6], "total": [17]})
    >>> type(fig_referral_response(t)).__name__
    'ggplot'
    """
    data = fig_referral_response_data(referral)
    return _dodged_counts(data, "category", "arm", ARM_COLOURS, flip=True) + labs(
        x="", y="Families",
        title=title,
        subtitle=f"{subtitle};\nboth arms' total in brackets" if subtitle
        else "Both arms' total in brackets",
    )


# --------------------------------------------------------------------------------------------
# flags: several yes/no answers (e.g. Figure 10 of the example study)


def fig_reasons_data(reasons: Any) -> pl.DataFrame:
    """Data of :func:`fig_reasons`.

    Parameters
    ----------
    reasons : polars.DataFrame
        The pipeline's ``secondary_reasons`` table: ``reason``, ``label``, ``yes``, ``no``,
        ``n``, ``percent_yes``.

    Returns
    -------
    polars.DataFrame
        ``reason, category, answer, n, total, percent_yes``.

    Examples
    --------
    >>> t = pl.DataFrame({"reason": ["child"], "label": ["Support for Child"], "yes": [9],
    ...                   "no": [10], "n": [19], "percent_yes": [47.4]})
    >>> fig_reasons_data(t)["n"].to_list()
    [9, 10]
    """
    t = _frame(reasons, "reasons", ("reason", "label", "yes", "no", "n", "percent_yes"))
    rows = []
    for r in t.iter_rows(named=True):
        pct = (SUPPRESSED if r["yes"] is None or r["n"] is None
               else _fmt_pct(r["percent_yes"]))
        cat = f"{r['label']}\n{_count_text(r['yes'])} of {_count_text(r['n'])} ({pct})"
        for answer in ("Yes", "No"):
            rows.append({"reason": r["reason"], "category": cat, "answer": answer,
                         "n": _int_or_none(r[answer.lower()]), "total": _int_or_none(r["n"]),
                         "percent_yes": r["percent_yes"]})
    out = pl.DataFrame(rows, schema={"reason": pl.String, "category": pl.String,
                                     "answer": pl.String, "n": pl.Int64, "total": pl.Int64,
                                     "percent_yes": pl.Float64})
    out = _enum(out, "answer", ["No", "Yes"])
    return _enum(out, "category", out["category"].to_list()[::-1])


def fig_reasons(reasons: Any, *, title: str = "", subtitle: str = "Families with an answer",
                unit: str = "Families") -> ggplot:
    """The answers of a ``flags`` secondary table (counts; e.g. the reasons given by carers
    who asked for a referral, Figure 10 of the example study).

    Parameters
    ----------
    reasons : polars.DataFrame
        See :func:`fig_reasons_data`.
    title, subtitle, unit : str
        The study's words drawn on the figure (``(n = total)`` follows the subtitle;
        ``unit`` is the axis title).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"reason": ["child"], "label": ["Support for Child"], "yes": [9],
    ...                   "no": [10], "n": [19], "percent_yes": [47.4]})
    >>> type(fig_reasons(t)).__name__
    'ggplot'
    """
    data = fig_reasons_data(reasons)
    n: int | str = int(data["total"].max() or 0) if data.height else 0
    if data["total"].null_count():
        n = SUPPRESSED
    labelled = data.filter(pl.col("n") > 0)
    hidden = data["n"].null_count() > 0
    p = (
        _chain(
            ggplot(data.filter(pl.col("n").is_not_null()) if hidden else data,
                   aes(x="category", y="n", fill="answer")),
            geom_col(position=position_stack(reverse=True), width=0.6),
            geom_text(labelled, aes(label="n"), position=position_stack(vjust=0.5, reverse=True),
                      size=_TEXT_SIZE + 1, family=FONT, colour="white", fontweight="bold"),
            coord_flip(),
            scale_fill_manual(values=_YES_NO, breaks=["Yes", "No"],
                              labels=["Yes", "No"]),
            labs(x="", y=unit, title=title, subtitle=f"{subtitle} (n = {n})"),
            _theme(),
            theme(panel_grid_major_y=element_blank()),
        )
    )
    return p + labs(caption=_SUPPRESSED_NOTE) if hidden or n == SUPPRESSED else p


# --------------------------------------------------------------------------------------------
# consent: agreed and completed (e.g. Figure 11 of the example study)

_INTERVIEW_STEPS = ("agreed", "not_agreed", "completed")


def fig_interview_data(interview: Any) -> pl.DataFrame:
    """Data of :func:`fig_interview`.

    Parameters
    ----------
    interview : polars.DataFrame
        The pipeline's ``secondary_interview`` table: ``measure`` (``agreed``,
        ``not_agreed``, ``completed``, ...), ``label``, ``treatment``, ``control``, ``total``.

    Returns
    -------
    polars.DataFrame
        ``measure, category, arm, n, total``.

    Examples
    --------
    >>> t = pl.DataFrame({"measure": ["agreed", "completed"], "label": ["Agreed", "Done"],
    ...                   "treatment": [14, 6], "control": [10, 5], "total": [24, 11]})
    >>> fig_interview_data(t)["n"].to_list()
    [14, 10, 6, 5]
    """
    t = _frame(interview, "interview", ("measure", "label", "treatment", "control", "total"))
    rows = []
    for measure in _INTERVIEW_STEPS:
        part = t.filter(pl.col("measure") == measure)
        if part.height != 1:
            continue
        r = part.row(0, named=True)
        cat = f"{_wrap(r['label'], 22)}\n({_count_text(r['total'])})"
        for group in ("treatment", "control"):
            rows.append({"measure": measure, "category": cat, "arm": _arm_label(group),
                         "n": _int_or_none(r[group]), "total": _int_or_none(r["total"])})
    out = pl.DataFrame(rows, schema={"measure": pl.String, "category": pl.String,
                                     "arm": pl.String, "n": pl.Int64, "total": pl.Int64})
    out = _enum(out, "arm", list(ARM_COLOURS))
    return _enum(out, "category", out["category"].to_list())


def fig_interview(interview: Any, *, title: str = "") -> ggplot:
    """The stages of a ``consent`` secondary table, by arm (e.g. consent to an interview and
    completed interviews, Figure 11 of the example study).

    Parameters
    ----------
    interview : polars.DataFrame
        See :func:`fig_interview_data`.
    title : str
        The study's title of the figure.

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"measure": ["agreed"], "label": ["Agreed"],
    ...                   "treatment": [14], "control": [10], "total": [24]})
    >>> type(fig_interview(t)).__name__
    'ggplot'
    """
    data = fig_interview_data(interview)
    return _dodged_counts(data, "category", "arm", ARM_COLOURS) + labs(
        x="", y="Families",
        title=title,
        subtitle="Reached families by arm; both arms' total in brackets",
    )


# --------------------------------------------------------------------------------------------
# cohort flow (CONSORT-style)

_MAIN_ARM_STEPS = ("identified", "reached", "agreed_interview", "interviewed")
_LOSS_STEPS = ("not_called", "not_reached")


def fig_flow_data(flow: Any) -> pl.DataFrame:
    """Data of :func:`fig_flow`: one row per box or arrow, with coordinates.

    Parameters
    ----------
    flow : polars.DataFrame
        The cohort flow (:func:`natexp.data.cohort.flow_table`): ``order``, ``step``, ``arm``
        (``all`` for the input and the exclusions), ``label``, ``n``.

    Returns
    -------
    polars.DataFrame
        ``kind`` (``box``, ``loss``, ``exclusion``, ``arrow``, ``line``, ``heading``),
        ``x, y, xend, yend`` (box centre and half-sizes in ``xend``/``yend`` for boxes; start
        and end for arrows and lines), ``text``.

    Examples
    --------
    >>> f = pl.DataFrame({"order": [0, 1, 2, 2], "step": ["input", "outside_window",
    ...                   "identified", "identified"], "arm": ["all", "all", "treatment",
    ...                   "control"], "label": ["In", "Out", "Identified", "Identified"],
    ...                   "n": [10, 4, 3, 3]})
    >>> fig_flow_data(f).filter(pl.col("kind") == "box")["text"].to_list()
    ['In\\nn = 10', 'Identified\\nn = 3', 'Identified\\nn = 3']
    """
    t = _frame(flow, "flow", ("order", "step", "arm", "label", "n")).sort(
        "order", maintain_order=True)
    rows: list[dict[str, Any]] = []
    line = 1.55  # height of a text line at 8 pt, in the diagram's units (layout only)

    def box(kind: str, x: float, y: float, w: float, h: float, text: str) -> None:
        rows.append({"kind": kind, "x": x, "y": y, "xend": w / 2, "yend": h / 2,
                     "text": text})

    def link(kind: str, x: float, y: float, xend: float, yend: float) -> None:
        rows.append({"kind": kind, "x": x, "y": y, "xend": xend, "yend": yend, "text": ""})

    def n_of(step: str, arm: str) -> int | str | None:
        part = t.filter((pl.col("step") == step) & (pl.col("arm") == arm))
        if part.height and part["n"].null_count():
            return SUPPRESSED
        return int(part["n"].sum()) if part.height else None

    def label_of(step: str) -> str:
        part = t.filter(pl.col("step") == step)
        return str(part["label"][0]) if part.height else step

    def height(text: str) -> float:
        return line * (text.count("\n") + 1) + 2.4

    top = 100.0
    text = f"{_wrap(label_of('input'), 36)}\nn = {n_of('input', 'all')}"
    box("box", 50, top, 34, height(text), text)
    y = top - height(text) / 2
    excl = t.filter((pl.col("arm") == "all") & (pl.col("step") != "input"))
    if excl.height:
        excluded = SUPPRESSED if excl["n"].null_count() else int(excl["n"].sum())
        lines = [f"Excluded: n = {excluded}"]
        lines += ["- " + _wrap(f"{r['label']}: {_count_text(r['n'])}", 40).replace("\n", "\n  ")
                  for r in excl.iter_rows(named=True)]
        text = "\n".join(lines)
        h = height(text)
        y_ex = y - 3 - h / 2
        box("exclusion", 77, y_ex, 42, h, text)
        link("arrow", 50, y_ex, 56, y_ex)
        y = y_ex - h / 2 - 3
    else:
        y -= 6
    arms = [a for a in ("treatment", "control") if n_of("identified", a) is not None]
    xs = {"treatment": 33.0, "control": 67.0} if len(arms) == 2 else {a: 50.0 for a in arms}
    y_split = y
    link("line", 50, top - 4, 50, y_split)
    if len(arms) == 2:
        link("line", xs["treatment"], y_split, xs["control"], y_split)
    for a in arms:
        rows.append({"kind": "heading", "x": xs[a], "y": y_split + 2.2, "xend": 0.0,
                     "yend": 0.0, "text": _arm_label(a)})
    prev = {a: y_split for a in arms}
    y_main = y_split - 9
    for step in _MAIN_ARM_STEPS:
        if all(n_of(step, a) is None for a in arms):
            continue
        if step == "reached":  # losses between identification and the follow-up call
            for a in arms:
                parts = [f"{_wrap(label_of(s), 18)}: {n_of(s, a)}"
                         for s in _LOSS_STEPS if n_of(s, a)]
                if not parts:
                    continue
                text = "\n".join(parts)
                y_loss = y_main + 2
                left = xs[a] < 50 or len(arms) == 1
                x_loss = 10.5 if left else 89.5
                box("loss", x_loss, y_loss, 19, height(text), text)
                link("arrow", xs[a], y_loss, x_loss + (9.5 if left else -9.5), y_loss)
            y_main -= 8
        if step != "identified" and all(not n_of(step, a) for a in arms):
            break  # nobody got this far (e.g. a design without the follow-up call)
        for a in arms:
            n = n_of(step, a)
            if n is None:
                continue
            text = f"{_wrap(label_of(step), 30)}\nn = {n}"
            h = height(text)
            link("arrow", xs[a], prev[a], xs[a], y_main + h / 2)
            box("box", xs[a], y_main, 27, h, text)
            prev[a] = y_main - h / 2
        y_main -= 13
    return pl.DataFrame(rows, schema={"kind": pl.String, "x": pl.Float64, "y": pl.Float64,
                                      "xend": pl.Float64, "yend": pl.Float64,
                                      "text": pl.String})


def fig_flow(flow: Any, *, title: str = "Cohort flow") -> ggplot:
    """CONSORT-style flow diagram of the cohort: boxes with counts, exclusions at the side.

    Parameters
    ----------
    flow : polars.DataFrame
        See :func:`fig_flow_data`.
    title : str

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> f = pl.DataFrame({"order": [0, 1, 2, 2], "step": ["input", "outside_window",
    ...                   "identified", "identified"], "arm": ["all", "all", "treatment",
    ...                   "control"], "label": ["In", "Out", "Identified", "Identified"],
    ...                   "n": [10, 4, 3, 3]})
    >>> type(fig_flow(f)).__name__
    'ggplot'
    """
    data = fig_flow_data(flow)
    boxes = data.filter(pl.col("kind").is_in(["box", "loss", "exclusion"])).with_columns(
        (pl.col("x") - pl.col("xend")).alias("xmin"), (pl.col("x") + pl.col("xend")).alias("xmax"),
        (pl.col("y") - pl.col("yend")).alias("ymin"), (pl.col("y") + pl.col("yend")).alias("ymax"),
    )
    main = boxes.filter(pl.col("kind") == "box")
    side = boxes.filter(pl.col("kind") != "box")
    arrows = data.filter(pl.col("kind") == "arrow")
    lines = data.filter(pl.col("kind") == "line")
    heads = data.filter(pl.col("kind") == "heading")
    ymin = float(boxes["ymin"].min()) - 2 if boxes.height else 0.0
    hidden = bool(_frame(flow, "flow", ("n",))["n"].null_count())
    p = (
        _chain(
            ggplot(),
            geom_segment(lines, aes(x="x", y="y", xend="xend", yend="yend"), colour="#444444",
                         size=0.5),
            geom_segment(arrows, aes(x="x", y="y", xend="xend", yend="yend"), colour="#444444",
                         size=0.5, arrow=p9_arrow(length=0.06, type="closed")),
            geom_rect(main, aes(xmin="xmin", xmax="xmax", ymin="ymin", ymax="ymax"),
                      fill="#EAF2F8", colour=OKABE_ITO["blue"], size=0.6),
            geom_rect(side, aes(xmin="xmin", xmax="xmax", ymin="ymin", ymax="ymax"),
                      fill="#FFFFFF", colour=OKABE_ITO["grey"], size=0.5),
            geom_text(main, aes(x="x", y="y", label="text"), size=8, family=FONT),
            geom_text(side.with_columns((pl.col("xmin") + 1.2).alias("x")),
                      aes(x="x", y="y", label="text"), size=7.5, family=FONT, ha="left"),
            geom_text(heads, aes(x="x", y="y", label="text"), size=10, family=FONT,
                      fontweight="bold"),
            coord_cartesian(xlim=(0, 100), ylim=(ymin, 104), expand=False),
            labs(title=title),
            theme_void(base_family=FONT),
            theme(plot_title=element_text(size=12, weight="bold"),
                  plot_background=element_blank()),
        )
    )
    return p + labs(caption=_SUPPRESSED_NOTE) + theme(
        plot_caption=element_text(size=8, ha="left")) if hidden else p


# --------------------------------------------------------------------------------------------
# forest plot of the primary effect

_RD_SHORT = {
    "risk_difference.wald": "Wald",
    "risk_difference.agresti_caffo": "Agresti-Caffo",
    "risk_difference.newcombe": "Newcombe hybrid score",
    "risk_difference.miettinen_nurminen": "Miettinen-Nurminen score",
    "risk_difference.exact_unconditional": "Exact unconditional\n(Agresti-Min)",
}


def fig_forest_data(effects: Any, *, prefix: str = "risk_difference.") -> pl.DataFrame:
    """Data of :func:`fig_forest`: the intervals of one effect measure, in percentage points.

    Parameters
    ----------
    effects : polars.DataFrame
        The pipeline's ``uptake`` table (one row per method, as
        :meth:`natexp.causal.twobytwo.TwoByTwo.to_polars` gives): ``method``, ``label``,
        ``estimate``, ``ci_low``, ``ci_high``, ``confidence_level``.
    prefix : str
        Methods drawn (default the risk difference).

    Returns
    -------
    polars.DataFrame
        ``method, name, estimate, ci_low, ci_high, confidence_level, text`` (estimates
        scaled to percentage points).

    Examples
    --------
    >>> t = pl.DataFrame({"method": ["risk_difference.wald", "test.pearson"],
    ...                   "label": ["Wald", "Pearson"], "estimate": [0.0667, float("nan")],
    ...                   "ci_low": [-0.179, float("nan")], "ci_high": [0.312, float("nan")],
    ...                   "confidence_level": [0.95, None]})
    >>> fig_forest_data(t)["text"].to_list()
    ['6.7 (-17.9 to 31.2)']
    """
    t = _frame(effects, "effects", ("method", "label", "estimate", "ci_low", "ci_high",
                                    "confidence_level"))
    t = t.filter(pl.col("method").str.starts_with(prefix))
    rows = []
    for r in t.iter_rows(named=True):
        est, lo, hi = (None if v is None or math.isnan(v) else 100 * v
                       for v in (r["estimate"], r["ci_low"], r["ci_high"]))
        rows.append({"method": r["method"], "name": _RD_SHORT.get(r["method"], r["label"]),
                     "estimate": est, "ci_low": lo, "ci_high": hi,
                     "confidence_level": r["confidence_level"],
                     "text": f"{_num(est)} ({_num(lo)} to {_num(hi)})"})
    out = pl.DataFrame(rows, schema={"method": pl.String, "name": pl.String,
                                     "estimate": pl.Float64, "ci_low": pl.Float64,
                                     "ci_high": pl.Float64, "confidence_level": pl.Float64,
                                     "text": pl.String})
    return _enum(out, "name", out["name"].to_list()[::-1])


def fig_forest(effects: Any, *, counts: Mapping[str, int] | None = None) -> ggplot:
    """Forest plot of the primary risk difference under every interval method.

    Parameters
    ----------
    effects : polars.DataFrame
        See :func:`fig_forest_data`.
    counts : dict, optional
        ``x1, n1, x2, n2`` for the subtitle.

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"method": ["risk_difference.wald"], "label": ["Wald"],
    ...                   "estimate": [0.0667], "ci_low": [-0.179], "ci_high": [0.312],
    ...                   "confidence_level": [0.95]})
    >>> type(fig_forest(t, counts={"x1": 4, "n1": 20, "x2": 2, "n2": 15})).__name__
    'ggplot'
    """
    data = fig_forest_data(effects)
    lows = [v for v in data["ci_low"].to_list() if v is not None] + [0.0]
    highs = [v for v in data["ci_high"].to_list() if v is not None] + [0.0]
    lo, hi = min(lows), max(highs)
    span = max(hi - lo, 1.0)
    text_x = hi + 0.08 * span
    cl = data["confidence_level"].drop_nulls()
    level = f"{100 * cl[0]:g}% " if cl.len() else ""
    sub = f"Risk difference, treatment minus control, with {level}confidence intervals"
    if counts:
        sub += (f"\nTreatment {counts['x1']} of {counts['n1']} vs control {counts['x2']} of "
                f"{counts['n2']} (reached families)")
    return (
        _chain(
            ggplot(data, aes(y="name", x="estimate")),
            geom_vline(xintercept=0, linetype="dashed", colour=OKABE_ITO["grey"]),
            geom_errorbarh(aes(xmin="ci_low", xmax="ci_high"), height=0.25,
                           colour=OKABE_ITO["blue"], size=0.8),
            geom_point(size=3, colour=OKABE_ITO["blue"]),
            geom_text(aes(label="text"), x=text_x, ha="left", size=8.5, family=FONT),
            scale_x_continuous(limits=(lo - 0.05 * span, hi + 0.55 * span)),
            labs(x="Difference in uptake (percentage points)", y="",
                 title="Primary outcome: difference in support uptake", subtitle=sub),
            _theme(),
            theme(panel_grid_major_y=element_blank()),
        )
    )


# --------------------------------------------------------------------------------------------
# sensitivity: tipping point, randomization, leave one out, placebo, specification curve


def fig_tipping_point_data(grid: Any) -> pl.DataFrame:
    """Data of :func:`fig_tipping_point`.

    Parameters
    ----------
    grid : polars.DataFrame or dict of columns
        The tipping-point grid (:attr:`natexp.causal.sensitivity.TippingPoint.grid`, or
        ``results["sensitivity"]["nonresponse"]["grid"]``): ``k1``, ``k2``, ``rd``, and
        ``sig_boschloo`` and/or ``sig_fisher`` (Boschloo is used where it was computed).

    Returns
    -------
    polars.DataFrame
        ``k1, k2, rd_pp`` (percentage points), ``significant`` (bool), ``test``.

    Examples
    --------
    >>> g = {"k1": [0, 1], "k2": [0, 0], "rd": [0.1, 0.2], "sig_boschloo": [False, True],
    ...      "sig_fisher": [False, True]}
    >>> fig_tipping_point_data(g)["significant"].to_list()
    [False, True]
    """
    t = _frame(grid, "tipping-point grid", ("k1", "k2", "rd"))
    if "sig_boschloo" in t.columns and t["sig_boschloo"].null_count() < t.height:
        sig, test = pl.col("sig_boschloo").fill_null(False), "Boschloo"
    elif "sig_fisher" in t.columns:
        sig, test = pl.col("sig_fisher").fill_null(False), "Fisher"
    else:
        raise InvalidInputError("tipping-point grid: needs sig_boschloo or sig_fisher")
    return t.select(
        pl.col("k1").cast(pl.Int64), pl.col("k2").cast(pl.Int64),
        (pl.col("rd") * 100).alias("rd_pp"), sig.alias("significant"),
        pl.lit(test).alias("test"),
    )


def fig_tipping_point(grid: Any, *, mar_cell: Mapping[str, Any] | None = None,
                      counts: Mapping[str, int] | None = None,
                      confidence_level: float = 0.95) -> ggplot:
    """Heatmap of every completion of the unreached outcomes (non-response tipping point).

    Fill: the risk difference among all identified families under that completion (diverging
    blue-white-vermillion, white at zero, so a sign flip is a colour change); a dot marks the
    completions where the exact test is significant.

    Parameters
    ----------
    grid : polars.DataFrame or dict
        See :func:`fig_tipping_point_data`.
    mar_cell : dict, optional
        ``{"k1": .., "k2": ..}``: outlined (the unreached at the reached families' rates).
    counts : dict, optional
        ``m1``, ``m2`` (unreached per arm) for the axis titles.
    confidence_level : float
        For the legend (significance is ``p < 1 - confidence_level``).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> g = {"k1": [0, 0, 1, 1], "k2": [0, 1, 0, 1], "rd": [0.1, -0.1, 0.3, 0.1],
    ...      "sig_boschloo": [False, False, True, False]}
    >>> type(fig_tipping_point(g, mar_cell={"k1": 0, "k2": 0})).__name__
    'ggplot'
    """
    data = fig_tipping_point_data(grid)
    test = data["test"][0] if data.height else "exact"
    lim = max(abs(data["rd_pp"].min() or 0), abs(data["rd_pp"].max() or 0), 1.0)
    m1 = counts.get("m1") if counts else None
    m2 = counts.get("m2") if counts else None
    sig_label = f"p < {1 - confidence_level:g} ({test})"
    p = (
        _chain(
            ggplot(data, aes(x="k1", y="k2")),
            geom_tile(aes(fill="rd_pp"), colour="white", size=0.2),
            scale_fill_gradient2(low=OKABE_ITO["blue"], mid="#F7F7F7",
                                 high=OKABE_ITO["vermillion"], midpoint=0,
                                 limits=(-lim, lim), name="Difference\n(points)"),
            geom_point(data.filter(pl.col("significant")).with_columns(
              pl.lit(sig_label).alias("sig")), aes(shape="sig"), size=1.1, colour="black"),
            scale_shape_manual(values={sig_label: "o"}, name=" "),
            labs(x=f"Uptake among the {m1} unreached treatment families" if m1 is not None
                 else "Uptake among the unreached treatment families (k1)",
                 y=f"Uptake among the {m2} unreached control families" if m2 is not None
                 else "Uptake among the unreached control families (k2)",
                 title="Non-response tipping point",
                 subtitle="Difference in uptake among all identified families for every "
                          "possible outcome of the unreached"),
            _theme(legend="right"),
            theme(legend_title=element_text(size=9), panel_grid_major=element_blank()),
        )
    )
    if mar_cell and "k1" in mar_cell and "k2" in mar_cell:
        k1, k2 = float(mar_cell["k1"]), float(mar_cell["k2"])
        p = p + annotate("rect", xmin=k1 - 0.5, xmax=k1 + 0.5, ymin=k2 - 0.5, ymax=k2 + 0.5,
                         fill="none", colour="black", size=0.9) + labs(
            caption="Outlined: the unreached take up support at the reached families' rates.")
    return p


def fig_randomization_data(distribution: Any) -> pl.DataFrame:
    """Data of :func:`fig_randomization`.

    Parameters
    ----------
    distribution : polars.DataFrame
        :func:`natexp.causal.randomization.randomization_distribution`: ``rd`` (NaN when an
        arm is empty) and ``observed`` (True for the observed assignment).

    Returns
    -------
    polars.DataFrame
        ``rd_pp`` (percentage points), ``observed``, ``as_extreme`` (``|rd| >= |observed|``);
        assignments without a difference dropped.

    Examples
    --------
    >>> d = pl.DataFrame({"rd": [0.1, -0.2, 0.05, float("nan")],
    ...                   "observed": [True, False, False, False]})
    >>> fig_randomization_data(d)["as_extreme"].to_list()
    [True, True, False]
    """
    t = _frame(distribution, "randomization distribution", ("rd", "observed"))
    obs = t.filter(pl.col("observed"))
    if obs.height != 1:
        raise InvalidInputError("randomization distribution: exactly one observed row needed")
    rd_obs = float(obs["rd"][0])
    t = t.filter(pl.col("rd").is_not_nan() & pl.col("rd").is_not_null())
    # tolerance: differences of fractions recomputed in floating point
    return t.select(
        (pl.col("rd") * 100).alias("rd_pp"), pl.col("observed"),
        (pl.col("rd").abs() >= abs(rd_obs) - 1e-12).alias("as_extreme"),
    )


def fig_randomization(distribution: Any, *, pvalue: float | None = None) -> ggplot:
    """The randomization distribution of the difference with the observed value.

    Parameters
    ----------
    distribution : polars.DataFrame
        See :func:`fig_randomization_data`.
    pvalue : float, optional
        The randomization p-value the analysis reported (for the subtitle).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> d = pl.DataFrame({"rd": [0.1, -0.2, 0.05, 0.0], "observed": [True, False, False, False]})
    >>> type(fig_randomization(d, pvalue=0.5)).__name__
    'ggplot'
    """
    data = fig_randomization_data(distribution)
    obs = float(data.filter(pl.col("observed"))["rd_pp"][0])
    data = data.with_columns(
        pl.when(pl.col("as_extreme")).then(pl.lit("At least as extreme as observed"))
        .otherwise(pl.lit("Less extreme")).alias("region"))
    data = _enum(data, "region", ["Less extreme", "At least as extreme as observed"])
    span = max((data["rd_pp"].max() or 0) - (data["rd_pp"].min() or 0), 1.0)
    sub = (f"Difference under each of {data.height} assignments of the go-live order to "
           f"areas;\nblack line: the observed difference, {obs:.1f} points")
    if pvalue is not None and not math.isnan(pvalue):
        sub += f" (randomization p = {pvalue:.3g})"
    return (
        _chain(
            ggplot(data, aes(x="rd_pp", fill="region")),
            geom_histogram(binwidth=span / 40, boundary=0, colour="white", size=0.2),
            geom_vline(xintercept=obs, colour=OKABE_ITO["black"], size=0.9),
            scale_fill_manual(values={"Less extreme": OKABE_ITO["grey"],
                                      "At least as extreme as observed": OKABE_ITO["vermillion"]}),
            labs(x="Difference in uptake (percentage points)", y="Assignments",
                 title="Randomization inference over the go-live order", subtitle=sub),
            _theme(),
        )
    )


def fig_leave_one_out_data(table: Any) -> pl.DataFrame:
    """Data of :func:`fig_leave_one_out`.

    Parameters
    ----------
    table : polars.DataFrame or list of dict
        :func:`natexp.causal.sensitivity.leave_one_area_out` (``.frame``, or its ``to_dict()
        ["table"]`` records): ``dropped_area`` (null: full cohort), ``dropped_treatment``,
        ``dropped_control``, ``rd``, ``exact_low``, ``exact_high``.

    Returns
    -------
    polars.DataFrame
        ``scenario, rd_pp, low_pp, high_pp, full`` for the full cohort and each area with
        families in the comparison.

    Examples
    --------
    >>> t = [{"dropped_area": None, "dropped_treatment": 0, "dropped_control": 0, "rd": 0.07,
    ...       "exact_low": -0.2, "exact_high": 0.3},
    ...      {"dropped_area": "Oxford", "dropped_treatment": 4, "dropped_control": 0,
    ...       "rd": 0.03, "exact_low": -0.25, "exact_high": 0.3}]
    >>> fig_leave_one_out_data(t)["scenario"].to_list()
    ['Full cohort', 'Without Oxford (-4 / -0)']
    """
    t = _frame(table, "leave one area out", ("dropped_area", "dropped_treatment",
                                             "dropped_control", "rd", "exact_low",
                                             "exact_high"))
    t = t.filter(pl.col("dropped_area").is_null()
                 | (pl.col("dropped_treatment") + pl.col("dropped_control") > 0))
    out = t.select(
        pl.when(pl.col("dropped_area").is_null()).then(pl.lit("Full cohort"))
        .otherwise(pl.format("Without {} (-{} / -{})", "dropped_area", "dropped_treatment",
                             "dropped_control")).alias("scenario"),
        (pl.col("rd") * 100).alias("rd_pp"), (pl.col("exact_low") * 100).alias("low_pp"),
        (pl.col("exact_high") * 100).alias("high_pp"),
        pl.col("dropped_area").is_null().alias("full"),
    )
    return _enum(out, "scenario", out["scenario"].to_list()[::-1])


def fig_leave_one_out(table: Any) -> ggplot:
    """The risk difference with each area left out in turn (exact intervals).

    Parameters
    ----------
    table : polars.DataFrame or list of dict
        See :func:`fig_leave_one_out_data`.

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = [{"dropped_area": None, "dropped_treatment": 0, "dropped_control": 0, "rd": 0.07,
    ...       "exact_low": -0.2, "exact_high": 0.3}]
    >>> type(fig_leave_one_out(t)).__name__
    'ggplot'
    """
    data = fig_leave_one_out_data(table).with_columns(
        pl.when(pl.col("full")).then(pl.lit("Full cohort")).otherwise(pl.lit("One area left out"))
        .alias("kind"))
    return (
        _chain(
            ggplot(data, aes(y="scenario", x="rd_pp", colour="kind")),
            geom_vline(xintercept=0, linetype="dashed", colour=OKABE_ITO["grey"]),
            geom_errorbarh(aes(xmin="low_pp", xmax="high_pp"), height=0.3, size=0.7),
            geom_point(size=2.5),
            scale_colour_manual(values={"Full cohort": OKABE_ITO["black"],
                                        "One area left out": OKABE_ITO["blue"]}),
            labs(x="Difference in uptake (percentage points), exact interval", y="",
                 title="Leave one area out",
                 subtitle="Families dropped (treatment / control) in brackets"),
            _theme(),
            theme(panel_grid_major_y=element_blank()),
        )
    )


def fig_placebo_data(table: Any) -> pl.DataFrame:
    """Data of :func:`fig_placebo`.

    Parameters
    ----------
    table : polars.DataFrame or list of dict
        :func:`natexp.causal.randomization.placebo_go_live`: ``shift`` (months), ``rd``,
        ``significant``, ``observed``.

    Returns
    -------
    polars.DataFrame
        ``shift, rd_pp, kind`` (observed schedule, placebo p below threshold, placebo).

    Examples
    --------
    >>> t = [{"shift": 0, "rd": 0.1, "significant": False, "observed": True},
    ...      {"shift": 1, "rd": 0.3, "significant": True, "observed": False}]
    >>> fig_placebo_data(t)["kind"].to_list()
    ['Observed schedule', 'Placebo: significant']
    """
    t = _frame(table, "placebo", ("shift", "rd", "significant"))
    if "observed" not in t.columns:  # in-time placebos: no row is the observed schedule
        t = t.with_columns(pl.lit(False).alias("observed"))
    return t.select(
        pl.col("shift").cast(pl.Int64), (pl.col("rd") * 100).alias("rd_pp"),
        pl.when(pl.col("observed")).then(pl.lit("Observed schedule"))
        .when(pl.col("significant").fill_null(False)).then(pl.lit("Placebo: significant"))
        .otherwise(pl.lit("Placebo: not significant")).alias("kind"),
    )


def fig_placebo(table: Any, *, confidence_level: float = 0.95,
                xlabel: str = "Every go-live date shifted by (months)",
                title: str = "Placebo go-live dates",
                population: str = "All identified families") -> ggplot:
    """The difference each placebo schedule (one per shift in months) would have found.

    Parameters
    ----------
    table : polars.DataFrame or list of dict
        See :func:`fig_placebo_data`.
    confidence_level : float
        For the legend.
    xlabel : str
        Label of the shift axis (what a shift means for these placebos).
    title : str
        Figure title.
    population : str
        Who is compared, shown in the subtitle.

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = [{"shift": 0, "rd": 0.1, "significant": False, "observed": True}]
    >>> type(fig_placebo(t)).__name__
    'ggplot'
    """
    data = fig_placebo_data(table)
    colours = {"Observed schedule": OKABE_ITO["black"],
               "Placebo: significant": OKABE_ITO["vermillion"],
               "Placebo: not significant": OKABE_ITO["sky_blue"]}
    return (
        _chain(
            ggplot(data, aes(x="shift", y="rd_pp", colour="kind", shape="kind")),
            geom_hline(yintercept=0, linetype="dashed", colour=OKABE_ITO["grey"]),
            geom_vline(xintercept=0, colour=OKABE_ITO["grey"], size=0.3),
            geom_point(size=2.6),
            scale_colour_manual(values=colours),
            scale_shape_manual(values={"Observed schedule": "D", "Placebo: significant": "s",
                                       "Placebo: not significant": "o"}),
            labs(x=xlabel,
                 y="Difference in uptake\n(percentage points)",
                 title=title,
                 subtitle=f"{population}; significant: exact Boschloo p < "
                          f"{1 - confidence_level:g} (unadjusted for multiplicity)"),
            _theme(),
        )
    )


_SPEC_RESERVED = {"estimate", "ci_low", "ci_high", "pvalue", "significant", "spec", "label",
                  "confidence_level", "n1", "n2", "x1", "x2", "note"}


def fig_specification_curve_data(specs: Any, *, choices: Sequence[str] | None = None,
                                 scale: float = 100.0,
                                 labels: Mapping[str, str] | None = None
                                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Data of :func:`fig_specification_curve`: the curve and the choice indicators.

    Parameters
    ----------
    specs : polars.DataFrame
        One row per specification: ``estimate``, ``ci_low``, ``ci_high``, optionally
        ``significant`` (bool), and one text column per analytic choice (e.g. ``window``,
        ``among``, ``interval``).
    choices : sequence of str, optional
        The choice columns (default: every other column that is not numeric).
    scale : float, default 100
        Multiplier of the estimates (100: risk differences in percentage points).
    labels : mapping of str to str, optional
        Words for choice names and levels (``{"followup_date": "Follow-up date"}``); a name
        or level without one is shown as it is.

    Returns
    -------
    (polars.DataFrame, polars.DataFrame)
        The curve: ``rank, estimate, ci_low, ci_high, kind``; the indicators: ``rank, row,
        choice, level, ylabel``.

    Examples
    --------
    >>> s = pl.DataFrame({"estimate": [0.1, -0.05], "ci_low": [-0.1, -0.3],
    ...                   "ci_high": [0.3, 0.2], "window": ["2022-24", "2021-25"]})
    >>> curve, marks = fig_specification_curve_data(s)
    >>> curve["rank"].to_list(), marks["level"].to_list()
    ([1, 2], ['2021-25', '2022-24'])
    >>> fig_specification_curve_data(s, labels={"window": "Window"})[1]["ylabel"][0]
    'Window: 2021-25'
    """
    words = dict(labels or {})
    t = _frame(specs, "specifications", ("estimate", "ci_low", "ci_high"))
    if choices is None:
        choices = [c for c in t.columns
                   if c not in _SPEC_RESERVED and not t.schema[c].is_numeric()]
    missing = [c for c in choices if c not in t.columns]
    if missing:
        raise InvalidInputError(f"specifications: missing choice column(s) {missing}")
    t = t.sort("estimate", *choices, nulls_last=True).with_row_index("rank", offset=1)
    t = t.with_columns(pl.col("rank").cast(pl.Int64))
    if "significant" in t.columns:
        kind = (pl.when(pl.col("significant").fill_null(False))
                .then(pl.lit("Interval excludes 0")).otherwise(pl.lit("Interval includes 0")))
    else:
        kind = (pl.when((pl.col("ci_low") > 0) | (pl.col("ci_high") < 0))
                .then(pl.lit("Interval excludes 0")).otherwise(pl.lit("Interval includes 0")))
    curve = t.select("rank", pl.col("estimate") * scale, pl.col("ci_low") * scale,
                     pl.col("ci_high") * scale, kind.alias("kind"))
    marks = []
    row = 0
    for choice in choices:
        for level in sorted(str(v) for v in t[choice].unique().to_list()):
            row += 1
            ylabel = f"{words.get(choice, choice)}: {words.get(level, level)}"
            for r in t.filter(pl.col(choice).cast(pl.String) == level)["rank"].to_list():
                marks.append({"rank": r, "row": row, "choice": choice, "level": level,
                              "ylabel": ylabel})
    indicators = pl.DataFrame(marks, schema={"rank": pl.Int64, "row": pl.Int64,
                                             "choice": pl.String, "level": pl.String,
                                             "ylabel": pl.String})
    return curve, indicators


def fig_specification_curve(specs: Any, *, choices: Sequence[str] | None = None,
                            scale: float = 100.0,
                            ylab: str = "Difference in uptake (percentage points)",
                            labels: Mapping[str, str] | None = None) -> ggplot:
    """Specification curve: estimates sorted, intervals, and which choices each one made.

    One panel: the sorted estimates with intervals on top; under them a dot matrix with one
    row per (choice, level), a dot where a specification made that choice. The choices are
    the y-axis labels of the dot rows (laid out by matplotlib, so none is cut off) and the
    quantity of the curve is named in the subtitle, not by an axis title that would run down
    the dot matrix as well.

    Parameters
    ----------
    specs : polars.DataFrame
        See :func:`fig_specification_curve_data`.
    choices : sequence of str, optional
    scale : float, default 100
    ylab : str
        The quantity of the curve, with its unit.
    labels : mapping of str to str, optional
        Words for choice names and levels (see :func:`fig_specification_curve_data`).

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> s = pl.DataFrame({"estimate": [0.1, -0.05], "ci_low": [-0.1, -0.3],
    ...                   "ci_high": [0.3, 0.2], "window": ["2022-24", "2021-25"]})
    >>> type(fig_specification_curve(s)).__name__
    'ggplot'
    """
    curve, marks = fig_specification_curve_data(specs, choices=choices, scale=scale,
                                                labels=labels)
    lo = min([v for v in curve["ci_low"].to_list() if v is not None] + [0.0])
    hi = max([v for v in curve["ci_high"].to_list() if v is not None] + [0.0])
    span = max(hi - lo, 1.0)
    n_rows = int(marks["row"].max() or 0) if marks.height else 0
    gap = 0.12 * span
    row_h = 0.09 * span
    # the dot matrix sits below the curve, in the same coordinates (layout only)
    marks = marks.with_columns((lo - gap - pl.col("row") * row_h).alias("y"))
    rows = marks.unique("row", keep="first", maintain_order=True).sort("row")
    n = curve.height
    breaks = [float(b) for b in breaks_extended(n=5)((lo, hi)) if lo <= b <= hi]
    tick_labels = [f"{b:g}" for b in breaks] + [_wrap(v, 48) for v in rows["ylabel"]]
    colours = {"Interval excludes 0": OKABE_ITO["vermillion"],
               "Interval includes 0": OKABE_ITO["blue"]}
    first = ylab[:1].lower() + ylab[1:]
    return (
        _chain(
            ggplot(),
            geom_hline(yintercept=0, linetype="dashed", colour=OKABE_ITO["grey"]),
            geom_hline(yintercept=lo - gap / 2, colour="#CCCCCC", size=0.4),
            geom_linerange(curve, aes(x="rank", ymin="ci_low", ymax="ci_high", colour="kind"),
                           size=0.6),
            geom_point(curve, aes(x="rank", y="estimate", colour="kind"), size=1.8),
            geom_point(marks, aes(x="rank", y="y"), size=1.4, colour="#333333"),
            scale_colour_manual(values=colours),
            scale_x_continuous(limits=(0.3, n + 0.7),
                               breaks=list(range(1, n + 1)) if n <= 30 else None),
            scale_y_continuous(breaks=breaks + rows["y"].to_list(), labels=tick_labels,
                               limits=(lo - gap - (n_rows + 0.7) * row_h, hi + 0.03 * span)),
            labs(x="Specification (sorted by estimate)", y="", title="Specification curve",
                 subtitle=_wrap(f"Above: each specification's estimate and interval, {first}. "
                                "Below: a dot marks each choice it made.", 90)),
            _theme(),
            theme(panel_grid_major_x=element_blank(), panel_grid_major_y=element_line(
              colour="#EEEEEE"), axis_text_y=element_text(size=7.5)),
        )
    )


# --------------------------------------------------------------------------------------------
# staggered rollout


def fig_event_study_data(event_study: Any) -> pl.DataFrame:
    """Data of :func:`fig_event_study`.

    Parameters
    ----------
    event_study : polars.DataFrame
        The pipeline's ``event_study`` table (``aggte(..., "dynamic").to_polars()``):
        ``level`` (``overall`` or ``event_time``), ``value`` (event time), ``estimate``,
        ``ci_low``, ``ci_high``.

    Returns
    -------
    polars.DataFrame
        ``event_time, estimate, ci_low, ci_high, period`` (before / after go-live).

    Examples
    --------
    >>> t = pl.DataFrame({"level": ["overall", "event_time", "event_time"],
    ...                   "value": [None, -1, 0], "estimate": [0.1, 0.0, 0.1],
    ...                   "ci_low": [0.0, -0.1, 0.0], "ci_high": [0.2, 0.1, 0.2]})
    >>> fig_event_study_data(t)["period"].to_list()
    ['Before go-live', 'After go-live']
    """
    t = _frame(event_study, "event_study", ("level", "value", "estimate", "ci_low", "ci_high"))
    out = t.filter(pl.col("level") == "event_time").select(
        pl.col("value").cast(pl.Int64).alias("event_time"), "estimate", "ci_low", "ci_high",
        pl.when(pl.col("value") < 0).then(pl.lit("Before go-live"))
        .otherwise(pl.lit("After go-live")).alias("period"),
    ).sort("event_time")
    return _enum(out, "period", ["Before go-live", "After go-live"])


def fig_event_study(event_study: Any, *, overall: Mapping[str, Any] | None = None,
                    ylab: str = "Effect on the uptake rate") -> ggplot:
    """Event-study plot of the staggered rollout (Callaway and Sant'Anna dynamic effects).

    Parameters
    ----------
    event_study : polars.DataFrame
        See :func:`fig_event_study_data`.
    overall : dict, optional
        The overall ATT as a Result dict (``estimate``, ``ci_low``, ``ci_high``) for the
        subtitle.
    ylab : str

    Returns
    -------
    plotnine.ggplot

    Examples
    --------
    >>> t = pl.DataFrame({"level": ["event_time", "event_time"], "value": [-1, 0],
    ...                   "estimate": [0.0, 0.1], "ci_low": [-0.1, 0.0], "ci_high": [0.1, 0.2]})
    >>> type(fig_event_study(t)).__name__
    'ggplot'
    """
    data = fig_event_study_data(event_study)
    sub = "Average effect by periods since go-live, with pointwise confidence intervals"
    if overall and overall.get("estimate") is not None:
        sub += (f"\nOverall ATT {overall['estimate']:.3g} "
                f"({overall.get('ci_low', float('nan')):.3g} to "
                f"{overall.get('ci_high', float('nan')):.3g})")
    return (
        _chain(
            ggplot(data, aes(x="event_time", y="estimate", colour="period")),
            geom_hline(yintercept=0, linetype="dashed", colour=OKABE_ITO["grey"]),
            geom_vline(xintercept=-0.5, colour=OKABE_ITO["grey"], size=0.4),
            geom_pointrange(aes(ymin="ci_low", ymax="ci_high"), size=0.4),
            scale_colour_manual(values={"Before go-live": OKABE_ITO["grey"],
                                        "After go-live": OKABE_ITO["blue"]}),
            labs(x="Periods since go-live", y=ylab, title="Event study (staggered rollout)",
                 subtitle=sub),
            _theme(),
        )
    )
