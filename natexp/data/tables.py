"""Count tables of the secondary outcomes and of the descriptive table, from the study.

A study declares its secondary tables (``Study.secondary``, :class:`natexp.study.SecondarySpec`)
and its descriptive table (``Study.descriptive``, :class:`natexp.study.DescriptiveSpec`); this
module computes them. Every secondary table is computed on the cohort's families reached by the
follow-up (the study's ``outcome.reached`` True) and comes in two forms: a tidy
:class:`polars.DataFrame` (for CSV and figures) and a JSON-friendly dict (for ``results.json``;
the key paths of ``experiments/*/published.yaml`` point into it). :func:`secondary_outcomes`
returns all the dicts and all the frames.

Kinds of secondary table (e.g. the example study's, in its file under conf/study/: its
report's Figures 6 and 8-11):

* ``category``: counts of each value of one category column by arm (:func:`category_table`);
* ``flags``: yes/no counts of boolean columns among families with any answer
  (:func:`flags_table`);
* ``consent``: consent and completion by arm (:func:`consent_table`);
* ``crossed``: cells of two columns, yes/no items and value tallies by arm
  (:func:`crossed_table`);
* ``outcome_routes``: the primary outcome by arm and by its route (:func:`outcome_routes_table`).

Percentages are unrounded, in percent (0-100), and None when the denominator is 0. A null
answer is counted as ``missing``, never as "no".
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = [
    "category_table",
    "children_by_age",
    "consent_table",
    "crossed_table",
    "descriptive_counts",
    "flags_table",
    "outcome_routes_table",
    "reached",
    "secondary_outcomes",
    "secondary_table",
]

ARMS = ("treatment", "control")
GROUPS = (*ARMS, "total")

#: Row labels of a ``consent`` table when the study gives none.
CONSENT_LABELS: dict[str, str] = {
    "reached": "Reached by the follow-up",
    "agreed": "Agreed",
    "not_agreed": "Did not agree",
    "consent_missing": "Consent not recorded",
    "completed": "Completed",
}


def _pct(x: int, n: int) -> float | None:
    return 100.0 * x / n if n else None


def reached(cohort: Any, column: str = "followup_reached") -> pl.DataFrame:
    """The cohort's families reached by the follow-up, collected.

    Parameters
    ----------
    cohort : natexp.data.cohort.Cohort or polars frame
        A cohort (its ``members`` are used), or a frame of families with an ``arm`` column.
    column : str
        The boolean reached column (the study's ``outcome.reached``).

    Returns
    -------
    polars.DataFrame
        Families in either arm with ``column`` True.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "control", None],
    ...                    "followup_reached": [True, False, True]})
    >>> reached(df).height
    1
    """
    lf = cohort.members if hasattr(cohort, "members") else cohort
    if isinstance(lf, pl.DataFrame):
        lf = lf.lazy()
    return (
        lf.filter(pl.col("arm").is_in(ARMS) & (pl.col(column) == True))  # noqa: E712
        .collect()
    )


def _by_group(df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    out = {arm: df.filter(pl.col("arm") == arm) for arm in ARMS}
    out["total"] = df
    return out


def _yes_no(series: pl.Series) -> dict[str, int]:
    return {
        "yes": int((series == True).sum()),  # noqa: E712
        "no": int((series == False).sum()),  # noqa: E712
        "missing": int(series.is_null().sum()),
    }


def _spec(data: dict[str, Any]) -> Any:
    from natexp.study import SecondarySpec

    return SecondarySpec(**data)


# --------------------------------------------------------------------------- kinds


def category_table(cohort: Any, spec: Any, *,
                   reached_column: str = "followup_reached") -> tuple[dict, pl.DataFrame]:
    """Counts of each value of a category column, by arm (kind ``category``).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.
    spec : natexp.study.SecondarySpec
        ``column``, ``labels`` (value -> words, in the table's order) and ``row``.
    reached_column : str
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: ``{"treatment"|"control"|"total": {value: count, ..., "missing", "n"},
        "percent": {value: percent of all reached families}}``; frame: one row per value (and
        ``missing``) with ``spec.row``, ``label``, ``treatment``, ``control``, ``total`` and
        ``percent``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "treatment", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "answer": ["yes", "no", "yes"]})
    >>> spec = _spec({"key": "a", "kind": "category", "column": "answer",
    ...               "labels": {"yes": "Yes", "no": "No"}})
    >>> d, t = category_table(df, spec)
    >>> d["total"]["yes"], d["treatment"]["n"], t.columns[0]
    (2, 2, 'value')
    """
    df = reached(cohort, reached_column)
    values = tuple(spec.labels)
    out: dict[str, Any] = {}
    for group, part in _by_group(df).items():
        col = part[spec.column]
        counts = {r: int((col == r).sum()) for r in values}
        counts["missing"] = int(col.is_null().sum())
        counts["n"] = part.height
        out[group] = counts
    n = out["total"]["n"]
    out["percent"] = {r: _pct(out["total"][r], n) for r in (*values, "missing")}
    rows = [
        {spec.row: r, "label": spec.labels.get(r, "Not recorded"),
         **{g: out[g][r] for g in GROUPS}, "percent": out["percent"][r]}
        for r in (*values, "missing")
    ]
    frame = pl.DataFrame(rows, schema={spec.row: pl.String, "label": pl.String,
                                       "treatment": pl.Int64, "control": pl.Int64,
                                       "total": pl.Int64, "percent": pl.Float64})
    return out, frame


def flags_table(cohort: Any, spec: Any, *,
                reached_column: str = "followup_reached") -> tuple[dict, pl.DataFrame]:
    """Yes/no counts of boolean columns among families with any answer (kind ``flags``).

    The denominator is the reached families with at least one of the columns not null (in
    the example study, the 19 carers who asked for a referral and gave reasons).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.
    spec : natexp.study.SecondarySpec
        ``columns`` (key -> boolean column, in the table's order), ``labels`` (key -> words)
        and ``row``.
    reached_column : str
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: ``{"n": families with any answer, key: {"yes", "no", "missing",
        "percent_yes"}}``; frame: one row per key with ``spec.row``, ``label``, ``yes``,
        ``no``, ``missing``, ``n``, ``percent_yes``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "control", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "r_a": [True, False, None], "r_b": [False, True, None]})
    >>> d, _ = flags_table(df, _spec({"key": "r", "kind": "flags",
    ...                               "columns": {"a": "r_a", "b": "r_b"}}))
    >>> d["n"], d["a"]["yes"], d["a"]["percent_yes"]
    (2, 1, 50.0)
    """
    df = reached(cohort, reached_column)
    asked = df.filter(pl.any_horizontal([pl.col(c).is_not_null()
                                         for c in spec.columns.values()]))
    n = asked.height
    out: dict[str, Any] = {"n": n}
    rows = []
    for key, col in spec.columns.items():
        counts = _yes_no(asked[col])
        counts["percent_yes"] = _pct(counts["yes"], n)
        out[key] = counts
        rows.append({spec.row: key, "label": spec.labels.get(key, key), "yes": counts["yes"],
                     "no": counts["no"], "missing": counts["missing"], "n": n,
                     "percent_yes": counts["percent_yes"]})
    frame = pl.DataFrame(rows, schema={spec.row: pl.String, "label": pl.String,
                                       "yes": pl.Int64, "no": pl.Int64, "missing": pl.Int64,
                                       "n": pl.Int64, "percent_yes": pl.Float64})
    return out, frame


def consent_table(cohort: Any, spec: Any, *,
                  reached_column: str = "followup_reached") -> tuple[dict, pl.DataFrame]:
    """Consent and completion by arm (kind ``consent``).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.
    spec : natexp.study.SecondarySpec
        ``columns.consent`` and ``columns.completed`` (boolean columns; completed is counted
        among the consenting) and ``labels`` of the measures (:data:`CONSENT_LABELS` where
        none is given).
    reached_column : str
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: ``{"treatment"|"control"|"total": {"reached", "agreed", "not_agreed",
        "consent_missing", "completed"}}``; frame: one row per measure with ``measure``,
        ``label``, ``treatment``, ``control`` and ``total``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "treatment", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "ok": [True, False, True], "done": [True, False, False]})
    >>> spec = _spec({"key": "i", "kind": "consent",
    ...               "columns": {"consent": "ok", "completed": "done"}})
    >>> consent_table(df, spec)[0]["total"]
    {'reached': 3, 'agreed': 2, 'not_agreed': 1, 'consent_missing': 0, 'completed': 1}
    """
    df = reached(cohort, reached_column)
    agree, done = spec.columns["consent"], spec.columns["completed"]
    out: dict[str, Any] = {}
    for group, part in _by_group(df).items():
        consent = _yes_no(part[agree])
        out[group] = {
            "reached": part.height,
            "agreed": consent["yes"],
            "not_agreed": consent["no"],
            "consent_missing": consent["missing"],
            "completed": int(
                ((part[agree] == True) & (part[done] == True)).sum()  # noqa: E712
            ),
        }
    rows = [{"measure": k, "label": spec.labels.get(k, default),
             **{g: out[g][k] for g in GROUPS}}
            for k, default in CONSENT_LABELS.items()]
    frame = pl.DataFrame(rows, schema={"measure": pl.String, "label": pl.String,
                                       "treatment": pl.Int64, "control": pl.Int64,
                                       "total": pl.Int64})
    return out, frame


def crossed_table(cohort: Any, spec: Any, *,
                  reached_column: str = "followup_reached") -> tuple[dict, pl.DataFrame]:
    """Cells of two crossed columns, yes/no items and value tallies by arm (kind ``crossed``).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.
    spec : natexp.study.SecondarySpec
        ``columns.row`` and ``columns.col``, ``cells`` (name -> (row value, col value)),
        ``items`` (boolean columns) and ``tally`` (column -> values counted).
    reached_column : str
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: per ``treatment``/``control``/``total``: ``n``, each cell, ``cell_missing``
        (either column not recorded), each item (``yes``/``no``/``missing``) and each tallied
        column (value -> count); frame: one row per (``group``, ``measure``, ``value``) with
        ``n`` (the cells' measure is ``columns.col``).

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "control"], "followup_reached": [True, True],
    ...                    "has": [False, True], "view": ["good", "bad"],
    ...                    "wants": [False, None], "sex": ["M", "M"]})
    >>> spec = _spec({"key": "c", "kind": "crossed", "columns": {"row": "has", "col": "view"},
    ...               "cells": {"no_good": [False, "good"], "yes_bad": [True, "bad"]},
    ...               "items": ["wants"], "tally": {"sex": ["M", "F"]}})
    >>> d, _ = crossed_table(df, spec)
    >>> d["total"]["no_good"], d["total"]["wants"]["missing"], d["total"]["sex"]
    (1, 1, {'M': 2, 'F': 0})
    """
    df = reached(cohort, reached_column)
    row_col, col_col = spec.columns["row"], spec.columns["col"]
    out: dict[str, Any] = {}
    rows = []
    for group, part in _by_group(df).items():
        cells: dict[str, Any] = {"n": part.height}
        for name, (a, b) in spec.cells.items():
            cells[name] = int(((part[row_col] == a) & (part[col_col] == b)).sum())
        cells["cell_missing"] = int(
            (part[row_col].is_null() | part[col_col].is_null()).sum()
        )
        for item in spec.items:
            cells[item] = _yes_no(part[item])
        for column, values in spec.tally.items():
            cells[column] = {str(v): int((part[column] == v).sum()) for v in values}
        out[group] = cells
        for name in (*spec.cells, "cell_missing"):
            rows.append({"group": group, "measure": col_col, "value": name,
                         "n": cells[name]})
        for measure in (*spec.items, *spec.tally):
            for value, k in cells[measure].items():
                rows.append({"group": group, "measure": measure, "value": value, "n": k})
    frame = pl.DataFrame(rows, schema={"group": pl.String, "measure": pl.String,
                                       "value": pl.String, "n": pl.Int64})
    return out, frame


def outcome_routes_table(cohort: Any, outcome: Any) -> tuple[dict, pl.DataFrame]:
    """The primary outcome among reached families by arm, and by its route (kind
    ``outcome_routes``).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.
    outcome : natexp.study.OutcomeSpec
        The study's outcome: ``column``, ``reached`` and ``route`` (None: no route counts).

    Returns
    -------
    (dict, polars.DataFrame)
        dict: per ``treatment``/``control``/``total``: ``yes``, ``no``, ``missing``, ``n``,
        ``percent`` (yes / n) and, with a route, ``route`` (counts among ``yes`` by route
        value and ``missing``); frame: one row per group with the same columns (routes
        prefixed ``route_``).

    Examples
    --------
    >>> from natexp.study import OutcomeSpec, RouteSpec
    >>> df = pl.DataFrame({"arm": ["treatment", "treatment", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "took_up": [True, False, True], "via": ["a", None, "b"]})
    >>> spec = OutcomeSpec(column="took_up", route=RouteSpec("via", labels={"a": "A", "b": "B"}))
    >>> d, _ = outcome_routes_table(df, spec)
    >>> d["treatment"]["percent"], d["control"]["route"]["b"]
    (50.0, 1)
    """
    df = reached(cohort, outcome.reached)
    y = outcome.column
    route_col = outcome.route.column if outcome.route is not None else None
    routes = outcome.route.values if outcome.route is not None else ()
    out: dict[str, Any] = {}
    rows = []
    for group, part in _by_group(df).items():
        counts: dict[str, Any] = _yes_no(part[y])
        counts["n"] = part.height
        counts["percent"] = _pct(counts["yes"], part.height)
        row = {"group": group, **{k: counts[k] for k in ("yes", "no", "missing", "n",
                                                         "percent")}}
        if route_col is not None:
            took = part.filter(pl.col(y) == True)  # noqa: E712
            route = {r: int((took[route_col] == r).sum()) for r in routes}
            route["missing"] = int(took[route_col].is_null().sum())
            counts["route"] = route
            row.update({f"route_{k}": v for k, v in route.items()})
        out[group] = counts
        rows.append(row)
    schema = {"group": pl.String, "yes": pl.Int64, "no": pl.Int64, "missing": pl.Int64,
              "n": pl.Int64, "percent": pl.Float64}
    if route_col is not None:
        schema.update({f"route_{r}": pl.Int64 for r in (*routes, "missing")})
    return out, pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- all of them


def secondary_table(cohort: Any, spec: Any, study: Any) -> tuple[dict, pl.DataFrame]:
    """One secondary table of ``study`` (``spec``: one of ``study.secondary``), by its kind."""
    reached_column = study.outcome.reached
    if spec.kind == "outcome_routes":
        return outcome_routes_table(cohort, study.outcome)
    fn = {"category": category_table, "flags": flags_table, "consent": consent_table,
          "crossed": crossed_table}[spec.kind]
    return fn(cohort, spec, reached_column=reached_column)


def secondary_outcomes(cohort: Any, study: Any) -> tuple[dict[str, dict], dict[str, pl.DataFrame]]:
    """Every secondary table the study declares, as JSON-friendly dicts and as tidy frames.

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.
    study : natexp.study.Study
        Its ``secondary`` tables (:class:`natexp.study.SecondarySpec`), outcome and reached
        column.

    Returns
    -------
    (dict, dict)
        Both keyed by the tables' ``key``; see each kind's function. The dicts go to
        ``results["secondary"]``, the frames to CSV.

    Examples
    --------
    The example study's tables (its report's Figures 6 and 8-11):

    >>> from natexp.config import compose, to_settings
    >>> from natexp.data.synthetic import default_design, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> study = to_settings(compose([])).get_study()
    >>> fam, _ = generate()
    >>> s, t = secondary_outcomes(build_cohort(fam.lazy(), load_rollout(),
    ...                                        default_design()),
    ...                           study)
    >>> s["referral_response"]["total"]["accepted"], s["reasons"]["child"]["yes"]
    (17, 9)
    >>> sorted(t)
    ['contact', 'interview', 'reasons', 'referral_response', 'uptake']
    """
    both = {spec.key: secondary_table(cohort, spec, study) for spec in study.secondary}
    return {k: v[0] for k, v in both.items()}, {k: v[1] for k, v in both.items()}


# --------------------------------------------------------------------------- descriptive


def descriptive_counts(families: pl.LazyFrame | pl.DataFrame,
                       children: pl.LazyFrame | pl.DataFrame, spec: Any) -> pl.DataFrame:
    """The descriptive table's counts: children by the two groups of ``spec.by``, per question.

    Parameters
    ----------
    families, children : polars frames
        The validated input tables (every child, not only the cohort).
    spec : natexp.study.DescriptiveSpec
        ``by`` (a family column), ``groups`` (its two values) and ``questions`` (each: a
        child column and the values counted as "yes").

    Returns
    -------
    polars.DataFrame
        One row per (``question``, group value) with the group column named ``spec.by``,
        ``label``, ``yes``, ``no`` and ``n``.

    Examples
    --------
    The example study's Appendix B (children by sex of the imprisoned parent):

    >>> from natexp.config import compose, to_settings
    >>> from natexp.data.synthetic import generate
    >>> spec = to_settings(compose([])).get_study().descriptive
    >>> fam, chi = generate()
    >>> t = descriptive_counts(fam, chi, spec)
    >>> t.filter((pl.col("question") == "sgo") & (pl.col("parent_sex") == "F")).row(0)
    ('sgo', 'F', 'Does the child become subject to a special guardianship order (SGO)?', 6, 26, 32)
    """
    fam = families.lazy() if isinstance(families, pl.DataFrame) else families
    kids = children.lazy() if isinstance(children, pl.DataFrame) else children
    by = spec.by
    joined = kids.join(fam.select("family_id", by), on="family_id", how="left")
    aggs = [pl.len().alias("n")]
    for q in spec.questions:
        aggs.append(pl.col(q.column).is_in(list(q.yes_values)).sum().alias(q.key))
    got = joined.group_by(by).agg(aggs).collect()
    rows = []
    for q in spec.questions:
        for value in spec.groups:
            part = got.filter(pl.col(by) == value)
            n = int(part["n"].item()) if part.height else 0
            y = int(part[q.key].item()) if part.height else 0
            rows.append({"question": q.key, by: value, "label": q.label, "yes": y,
                         "no": n - y, "n": n})
    return pl.DataFrame(rows, schema={"question": pl.String, by: pl.String,
                                      "label": pl.String, "yes": pl.Int64, "no": pl.Int64,
                                      "n": pl.Int64})


def children_by_age(children: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Count of children by age (the report's Figure 3), every age 0-17 listed.

    Parameters
    ----------
    children : polars frame
        The validated ``children`` table.

    Returns
    -------
    polars.DataFrame
        Columns ``age`` (0-17) and ``n``.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> _, chi = generate()
    >>> t = children_by_age(chi)
    >>> t.height, int(t["n"].sum())
    (18, 639)
    """
    kids = children.lazy() if isinstance(children, pl.DataFrame) else children
    got = kids.group_by("age").agg(pl.len().cast(pl.Int64).alias("n")).collect()
    ages = pl.DataFrame({"age": list(range(18))}, schema={"age": pl.Int64})
    return ages.join(got, on="age", how="left").with_columns(pl.col("n").fill_null(0)).sort("age")
