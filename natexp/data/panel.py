"""Panels for staggered-rollout estimators: the area x period panel and a generic normaliser.

Two entry points:

:func:`area_period_panel`
    From the ``families`` table (input contract) and the rollout schedule, a lazy area x period
    panel with EVERY area in the schedule and EVERY period in the range (cells without families
    are kept with ``families = 0`` and a null ``rate``).
:func:`panel_from_frame`
    Validates and normalises any long panel (one row per unit and period) into the canonical
    columns the estimators of :mod:`natexp.causal.staggered` use, so they work beyond this study
    (for example on the ``mpdta`` benchmark of Callaway and Sant'Anna 2021).

Conventions of ``first_treated`` (documented once, used everywhere)
--------------------------------------------------------------------
``first_treated`` is the ``period_index`` of the period that contains the area's go-live date.

* null: the area never goes live within the range (go-live date null, or in a period after the
  last period of the range). Such areas are the never-treated comparison group.
* ``0 .. n_periods - 1``: the area goes live within the range.
* negative: the area was already live before the first period (always treated in the range);
  the index is still exact, so ``event_time`` stays correct. The Callaway-Sant'Anna estimator
  drops such units, as R's ``did`` does.

Note that 0 is a genuine period index here, NOT the "never treated" code of R's ``did``; a
generic panel that codes never-treated units as 0 is read with
``panel_from_frame(..., never_treated=0)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from natexp._dates import as_date
from natexp.causal.result import InvalidInputError

PERIODS = ("quarter", "month")
_INTERVAL = {"quarter": "1q", "month": "1mo"}

#: Columns of the area x period panel, in order.
PANEL_COLUMNS = (
    "area",
    "period",
    "period_index",
    "families",
    "uptake",
    "rate",
    "first_treated",
    "event_time",
    "treated",
)

#: Canonical columns produced by :func:`panel_from_frame` (covariates follow).
CANONICAL = ("unit", "time", "first_treated", "outcome")


def _period_start(day: dt.date, period: str) -> dt.date:
    if period == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return dt.date(day.year, day.month, 1)


def _period_index_expr(col: str, first: dt.date, period: str) -> pl.Expr:
    """Expression: index of the period containing ``col`` relative to the period of ``first``."""
    c = pl.col(col)
    if period == "quarter":
        return (c.dt.year().cast(pl.Int64) - first.year) * 4 + (
            (c.dt.month().cast(pl.Int64) - 1) // 3 - (first.month - 1) // 3
        )
    return (c.dt.year().cast(pl.Int64) - first.year) * 12 + (
        c.dt.month().cast(pl.Int64) - first.month
    )


def _require_columns(schema: pl.Schema, needed: dict[str, tuple[type, ...]], what: str) -> None:
    for name, kinds in needed.items():
        if name not in schema:
            raise InvalidInputError(f"{what}: column {name!r} is missing")
        if not isinstance(schema[name], kinds):
            raise InvalidInputError(
                f"{what}: column {name!r} has type {schema[name]}, expected "
                + " or ".join(k.__name__ for k in kinds)
            )


def area_period_panel(
    families: pl.LazyFrame | pl.DataFrame,
    rollout: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str,
    period: str = "quarter",
    start: dt.date | str,
    end: dt.date | str,
) -> pl.LazyFrame:
    """Build the lazy area x period panel of family counts and outcome counts (uptake).

    Parameters
    ----------
    families : polars.LazyFrame or polars.DataFrame
        Validated ``families`` table; uses ``area`` (str), ``reception_date`` (Date) and the
        ``outcome`` column (Boolean). Families received outside ``[start, end]`` are left out;
        families whose area is not in ``rollout`` are left out too (the loader's validation
        refuses them before this point).
    rollout : polars.DataFrame or polars.LazyFrame
        Schedule from :func:`natexp.data.rollout.rollout_frame`: ``area``, ``go_live`` (Date,
        null when not live).
    outcome : str
        The study's boolean outcome column (``study.outcome.column``). A missing outcome (allowed for families not reached when the study
        says so) is not counted as an uptake; such a family still counts in ``families``.
    period : {"quarter", "month"}
        Length of a period. Periods are calendar quarters (Jan, Apr, Jul, Oct) or months.
    start, end : datetime.date or str
        Inclusive range of reception dates (dates or ISO strings ``"YYYY-MM-DD"``). The panel covers every period from the one that
        contains ``start`` to the one that contains ``end``; the first and last period are partial
        when ``start``/``end`` are not period boundaries.

    Returns
    -------
    polars.LazyFrame
        One row per area and period, sorted by area then period, with columns ``area`` (str),
        ``period`` (Date, first day of the period), ``period_index`` (Int64, 0 for the first
        period), ``families`` (UInt32/Int64 count, 0 when none), ``uptake`` (families with
        ``outcome`` true), ``rate`` (``uptake / families``, null when ``families == 0``),
        ``first_treated`` (period index of the go-live period; null = never live within the
        range, negative = live before the range; see the module docstring), ``event_time``
        (``period_index - first_treated``, null when never treated) and ``treated`` (Boolean,
        ``period_index >= first_treated``; false when never treated).

    Raises
    ------
    InvalidInputError
        On an unknown ``period``, a ``start`` or ``end`` that is not a date, ``end`` before
        ``start``, or a missing/ill-typed column.

    Examples
    --------
    >>> import datetime as dt
    >>> import polars as pl
    >>> fam = pl.LazyFrame({"area": ["A", "A", "B"],
    ...                     "reception_date": [dt.date(2022, 1, 5), dt.date(2022, 5, 1),
    ...                                        dt.date(2022, 2, 1)],
    ...                     "took_up": [True, False, False]})
    >>> ro = pl.DataFrame({"area": ["A", "B"], "go_live": [dt.date(2022, 4, 1), None]})
    >>> p = area_period_panel(fam, ro, outcome="took_up", start=dt.date(2022, 1, 1),
    ...                       end=dt.date(2022, 6, 30))
    >>> p.collect().select("area", "period_index", "families", "rate", "first_treated",
    ...                    "treated").rows()
    [('A', 0, 1, 1.0, 1, False), ('A', 1, 1, 0.0, 1, True), ('B', 0, 1, 0.0, None, False), ('B', 1, 0, None, None, False)]
    """
    if period not in PERIODS:
        raise InvalidInputError(f"period must be one of {PERIODS}, got {period!r}")
    start = as_date(start, "start", error=InvalidInputError)
    end = as_date(end, "end", error=InvalidInputError)
    if end < start:
        raise InvalidInputError(f"end ({end}) is before start ({start})")

    fam = families.lazy()
    ro = rollout.lazy()
    _require_columns(
        fam.collect_schema(),
        {"area": (pl.String,), "reception_date": (pl.Date,), outcome: (pl.Boolean,)},
        "families",
    )
    _require_columns(ro.collect_schema(), {"area": (pl.String,), "go_live": (pl.Date,)}, "rollout")

    first = _period_start(start, period)
    starts = pl.date_range(first, _period_start(end, period), interval=_INTERVAL[period],
                           eager=True)
    n_periods = len(starts)
    periods = pl.LazyFrame(
        {"period": starts, "period_index": pl.int_range(0, n_periods, eager=True).cast(pl.Int64)}
    )

    areas = ro.select(
        "area",
        pl.when(pl.col("go_live").is_null())
        .then(None)
        .otherwise(_period_index_expr("go_live", first, period))
        .alias("_go_index"),
    ).select(
        "area",
        pl.when(pl.col("_go_index") < n_periods)
        .then(pl.col("_go_index"))
        .otherwise(None)
        .cast(pl.Int64)
        .alias("first_treated"),
    )

    counts = (
        fam.filter(pl.col("reception_date").is_between(start, end, closed="both"))
        .with_columns(pl.col("reception_date").dt.truncate(_INTERVAL[period]).alias("period"))
        .group_by("area", "period")
        .agg(
            pl.len().cast(pl.Int64).alias("families"),
            pl.col(outcome).fill_null(False).sum().cast(pl.Int64).alias("uptake"),
        )
    )

    return (
        areas.join(periods, how="cross")
        .join(counts, on=["area", "period"], how="left")
        .with_columns(
            pl.col("families").fill_null(0),
            pl.col("uptake").fill_null(0),
        )
        .with_columns(
            pl.when(pl.col("families") > 0)
            .then(pl.col("uptake") / pl.col("families"))
            .otherwise(None)
            .alias("rate"),
            (pl.col("period_index") - pl.col("first_treated")).alias("event_time"),
            (pl.col("first_treated").is_not_null()
             & (pl.col("period_index") >= pl.col("first_treated"))).alias("treated"),
        )
        .select(PANEL_COLUMNS)
        .sort("area", "period")
    )


def panel_from_frame(
    df: pl.DataFrame | pl.LazyFrame,
    *,
    unit: str,
    time: str,
    first_treated: str,
    outcome: str,
    covariates: Sequence[str] = (),
    never_treated: int | None = None,
) -> pl.DataFrame:
    """Validate and normalise a generic long panel for the staggered-rollout estimators.

    Parameters
    ----------
    df : polars.DataFrame or polars.LazyFrame
        One row per unit and period (collected here: this is the edge before estimation).
    unit : str
        Unit identifier column (any type; kept as is).
    time : str
        Period column, integer-valued (years, or ``period_index`` of :func:`area_period_panel`).
    first_treated : str
        Period (on the ``time`` scale) in which the unit is first treated; null = never treated.
        Must be constant within a unit.
    outcome : str
        Numeric outcome column; nulls are kept (the estimator drops incomplete units and says so).
    covariates : sequence of str
        Numeric covariate columns to carry along.
    never_treated : int, optional
        A value of ``first_treated`` that also means "never treated", e.g. ``0`` for R ``did``
        data such as ``mpdta``. Null always means never treated.

    Returns
    -------
    polars.DataFrame
        Columns ``unit``, ``time`` (Int64), ``first_treated`` (Int64, null = never treated),
        ``outcome`` (Float64) and the covariates (Float64), sorted by unit then time.

    Raises
    ------
    InvalidInputError
        On a missing column, a non-numeric time/outcome/covariate, a non-integer time, a unit
        observed twice in a period, or a ``first_treated`` that varies within a unit.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"id": [1, 1, 2, 2], "yr": [2003, 2004, 2003, 2004],
    ...                    "g": [2004, 2004, 0, 0], "y": [1.0, 2.0, 1.0, 1.5]})
    >>> panel_from_frame(df, unit="id", time="yr", first_treated="g", outcome="y",
    ...                  never_treated=0)["first_treated"].to_list()
    [2004, 2004, None, None]
    """
    frame = df.collect() if isinstance(df, pl.LazyFrame) else df
    if not isinstance(frame, pl.DataFrame):
        raise InvalidInputError("df must be a polars DataFrame or LazyFrame")
    covariates = tuple(covariates)
    names = (unit, time, first_treated, outcome, *covariates)
    for name in names:
        if name not in frame.columns:
            raise InvalidInputError(f"panel: column {name!r} is missing")
    clash = set(covariates) & set(CANONICAL)
    if clash:
        raise InvalidInputError(f"panel: covariate names {sorted(clash)} clash with {CANONICAL}")
    if len(set(names)) != len(names):
        raise InvalidInputError("panel: unit, time, first_treated, outcome and covariates must "
                                "be distinct columns")
    schema = frame.schema
    for name in (time, first_treated, outcome, *covariates):
        if not (schema[name].is_numeric() or schema[name] == pl.Null):
            raise InvalidInputError(f"panel: column {name!r} must be numeric, got {schema[name]}")
    if frame.height == 0:
        raise InvalidInputError("panel: no rows")
    if frame[time].null_count():
        raise InvalidInputError(f"panel: column {time!r} has missing values")
    t = frame[time].cast(pl.Float64)
    if not (t == t.round(0)).all():
        raise InvalidInputError(f"panel: column {time!r} must hold whole numbers")
    g = frame[first_treated].cast(pl.Float64)
    if not (g.drop_nulls() == g.drop_nulls().round(0)).all():
        raise InvalidInputError(f"panel: column {first_treated!r} must hold whole numbers")

    g_expr = pl.col(first_treated).cast(pl.Int64)
    if never_treated is not None:
        g_expr = pl.when(g_expr == int(never_treated)).then(None).otherwise(g_expr)
    out = frame.select(
        pl.col(unit).alias("unit"),
        pl.col(time).cast(pl.Int64).alias("time"),
        g_expr.alias("first_treated"),
        pl.col(outcome).cast(pl.Float64).alias("outcome"),
        *(pl.col(c).cast(pl.Float64) for c in covariates),
    )
    dup = out.group_by("unit", "time").len().filter(pl.col("len") > 1)
    if dup.height:
        raise InvalidInputError(
            f"panel: {dup.height} unit-period pairs appear more than once "
            f"(e.g. unit {dup['unit'][0]!r}, time {dup['time'][0]})"
        )
    varying = out.group_by("unit").agg(
        pl.col("first_treated").n_unique().alias("k"),
    ).filter(pl.col("k") > 1)
    if varying.height:
        raise InvalidInputError(
            f"panel: first_treated varies within {varying.height} unit(s) "
            f"(e.g. {varying['unit'][0]!r}); treatment must be absorbing and unit-level"
        )
    return out.sort("unit", "time")
