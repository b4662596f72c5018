"""The rollout schedule: one row per area with its county, go-live date and phase.

A schedule comes from config (``conf/rollout/*.yaml``) as a list of mappings and becomes a small
polars frame with the columns ``area`` (str), ``county`` (str), ``go_live`` (Date, null: not live)
and ``phase`` (Int64, null when unknown).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from natexp.errors import NatexpError

ROLLOUT_SCHEMA = {"area": pl.String, "county": pl.String, "go_live": pl.Date, "phase": pl.Int64}


class RolloutError(NatexpError, ValueError):
    """The rollout schedule itself is invalid (duplicate area, unparseable date, ...)."""


def _as_date(value: Any, area: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RolloutError(
            f"rollout: go_live of area {area!r} is not an ISO date (YYYY-MM-DD)"
        ) from None


def rollout_frame(areas: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build the schedule frame from config entries.

    Parameters
    ----------
    areas : iterable of mapping
        Each with ``name``, ``county``, ``go_live`` (ISO date string, date or None) and optional
        ``phase``.

    Returns
    -------
    polars.DataFrame
        Columns ``area``, ``county``, ``go_live``, ``phase``, sorted by go-live then area.

    Raises
    ------
    RolloutError
        On a missing name, a duplicate area or an unparseable date.

    Examples
    --------
    >>> f = rollout_frame([{"name": "A", "county": "X", "go_live": "2022-01-01", "phase": 1},
    ...                    {"name": "B", "county": "Y", "go_live": None}])
    >>> f["area"].to_list(), f["go_live"].null_count()
    (['A', 'B'], 1)
    """
    rows = []
    seen: set[str] = set()
    for entry in areas:
        name = entry.get("name")
        if not name or not str(name).strip():
            raise RolloutError("rollout: an area has no name")
        name = str(name).strip()
        if name.casefold() in seen:
            raise RolloutError(f"rollout: area {name!r} is listed twice")
        seen.add(name.casefold())
        phase = entry.get("phase")
        rows.append(
            {
                "area": name,
                "county": str(entry.get("county") or "").strip() or None,
                "go_live": _as_date(entry.get("go_live"), name),
                "phase": None if phase is None else int(phase),
            }
        )
    if not rows:
        raise RolloutError("rollout: the schedule lists no areas")
    return pl.DataFrame(rows, schema=ROLLOUT_SCHEMA).sort(
        ["go_live", "area"], nulls_last=True
    )


def load_rollout(path: str | Path | None = None) -> pl.DataFrame:
    """Read a rollout YAML file (``name`` and ``areas`` keys) into the schedule frame.

    Parameters
    ----------
    path : str or Path, optional
        A file like those in ``conf/rollout/``. None: the rollout the default
        configuration selects (:func:`natexp.paths.default_rollout`).

    Returns
    -------
    polars.DataFrame

    Examples
    --------
    >>> tv = load_rollout()
    >>> tv.height, tv["county"].n_unique()
    (13, 3)
    """
    import yaml

    if path is None:
        from natexp.paths import default_rollout

        path = default_rollout()
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    return rollout_frame(doc["areas"])


def live_at(rollout: pl.DataFrame | pl.LazyFrame, date_col: str = "reception_date") -> pl.Expr:
    """Expression: the family's area was live on ``date_col`` (go-live on or before it).

    Expects the schedule's ``go_live`` column joined onto the frame.

    Examples
    --------
    >>> import datetime as dt
    >>> df = pl.DataFrame({"reception_date": [dt.date(2022, 1, 1)],
    ...                    "go_live": [dt.date(2021, 12, 1)]})
    >>> df.select(live_at(None).alias("live"))["live"].to_list()
    [True]
    """
    return pl.col("go_live").is_not_null() & (pl.col("go_live") <= pl.col(date_col))
