"""Pieces shared by :mod:`natexp.causal.sensitivity` and :mod:`natexp.causal.randomization`.

Both modules import from here (and :mod:`~natexp.causal.sensitivity` imports
:mod:`~natexp.causal.randomization`), so neither has to import the other inside a function:
the level check, the risk difference, the exact p-values and intervals the tables report, the
:class:`SensitivityTable` container and the treated role of a cohort's rollout schedule.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from natexp.causal.result import InvalidInputError, Result, _fmt, _freeze, _plain

if TYPE_CHECKING:  # pragma: no cover
    from natexp.data.cohort import Cohort

#: Go-live of an area never live (days since epoch).
_NEVER = np.iinfo(np.int64).max


# --------------------------------------------------------------------------------------------
# small shared helpers


def _check_level(confidence_level: object) -> float:
    try:
        cl = float(confidence_level)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"confidence_level must be a number in (0, 1), got {confidence_level!r}"
        ) from None
    if not 0.0 < cl < 1.0:
        raise InvalidInputError(f"confidence_level must be in (0, 1), got {cl}")
    return cl


def _rd(x1: int, n1: int, x2: int, n2: int) -> float:
    return x1 / n1 - x2 / n2 if n1 and n2 else math.nan


def _sign(x: float) -> int:
    return 0 if x == 0 or math.isnan(x) else (1 if x > 0 else -1)


def _html_frame(frame: pl.DataFrame, max_rows: int = 60) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.head(max_rows).iter_rows()
    )
    more = (f"<p>... {frame.height - max_rows} more rows (to_polars())</p>"
            if frame.height > max_rows else "")
    return f"<table><tr>{head}</tr>{body}</table>{more}"


# --------------------------------------------------------------------------------------------
# the exact tests and intervals the tables report


def _boschloo_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided Boschloo p-value (scipy's definition: twice the smaller one-sided p)."""
    if n1 == 0 or n2 == 0:
        return math.nan
    from natexp.causal.unconditional import boschloo

    return float(boschloo(x1, n1, x2, n2).pvalue)


def _fisher_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value (tables no more probable), scipy."""
    if n1 == 0 or n2 == 0:
        return math.nan
    from scipy.stats import fisher_exact

    return float(fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue)


def _all_tables(n1: int, n2: int, test: str, only: np.ndarray | None = None) -> np.ndarray:
    """p-value of every table a/n1 vs b/n2, shape (n1 + 1, n2 + 1) (NaN outside ``only``)."""
    from natexp.causal.unconditional import pvalues_all_tables

    return pvalues_all_tables(n1, n2, test=test, only=only)


def _newcombe(x1: int, n1: int, x2: int, n2: int, cl: float) -> tuple[float, float]:
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan)
    from natexp.causal.intervals import risk_difference_ci

    return risk_difference_ci(x1, n1, x2, n2, method="newcombe", confidence_level=cl).ci


def _exact_rd_ci(x1: int, n1: int, x2: int, n2: int, cl: float) -> tuple[float, float]:
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan)
    from natexp.causal.unconditional import exact_unconditional_ci

    return exact_unconditional_ci(x1, n1, x2, n2, measure="rd", confidence_level=cl).ci


# --------------------------------------------------------------------------------------------
# containers


@dataclass(frozen=True, eq=False)
class SensitivityTable:
    """An immutable table of sensitivity results (one row per scenario) with a headline.

    Attributes
    ----------
    method : str
        Stable machine name, e.g. ``"sensitivity.leave_one_area_out"``.
    title : str
        Human-readable title.
    frame : polars.DataFrame
        One row per scenario (:meth:`to_polars` returns a copy).
    headline : Result or None
        The reference estimate the scenarios are compared with.
    notes : tuple of str
        Caveats and findings in words.
    meta : Mapping
        Settings (read-only).

    Examples
    --------
    >>> t = SensitivityTable("demo", "Demo", pl.DataFrame({"a": [1, 2]}))
    >>> t.to_dict()["table"]
    [{'a': 1}, {'a': 2}]
    """

    method: str
    title: str
    frame: pl.DataFrame
    headline: Result | None = None
    notes: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "meta", _freeze(dict(self.meta)))

    def to_polars(self) -> pl.DataFrame:
        """Return a copy of the table."""
        return self.frame.clone()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: ``method``, ``title``, ``headline``, ``table`` (records),
        ``notes`` and ``meta``."""
        return {
            "method": self.method,
            "title": self.title,
            "headline": None if self.headline is None else self.headline.to_dict(),
            "table": self.frame.to_dicts(),
            "notes": list(self.notes),
            "meta": _plain(self.meta),
        }

    def summary(self) -> str:
        """Plain-text title, headline, table and notes."""
        lines = [self.title]
        if self.headline is not None:
            lines.append(self.headline.summary())
        with pl.Config(tbl_rows=100, tbl_cols=30, tbl_width_chars=160,
                       float_precision=4, tbl_hide_dataframe_shape=True):
            lines.append(str(self.frame))
        lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        head = f"<strong>{html.escape(self.title)}</strong>"
        if self.headline is not None:
            head += f"<p>{html.escape(self.headline.summary())}</p>"
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return f"<div class='natexp-result'>{head}{_html_frame(self.frame)}{notes}</div>"


# --------------------------------------------------------------------------------------------
# the rollout schedule and the treated role


def _schedule(cohort: Cohort) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    ro = cohort.rollout
    areas = ro["area"].to_list()
    go = ro["go_live"].cast(pl.Int64).fill_null(_NEVER).to_numpy().astype(np.int64)
    phase = ro["phase"].fill_null(-1).to_numpy().astype(np.int64)
    county = ro["county"].to_list()
    d = cohort.design
    if d.kind == "treated_counties":
        role = np.array([c in d.treatment_counties for c in county], dtype=bool)
    else:
        end = (d.window_end - dt.date(1970, 1, 1)).days
        role = go <= end
    return areas, go, phase, role
