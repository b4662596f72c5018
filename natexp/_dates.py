"""Dates given to natexp's public constructors: ISO strings or dates, checked where given.

Every public constructor or function that takes a date (:class:`natexp.data.cohort.Design`, the
specification curve's choices, the area x period panel, the synthetic generator's and the
validator's ``as_of``) accepts a :class:`datetime.date` or an ISO 8601 calendar date string
``"YYYY-MM-DD"`` and turns it into a date at once, so a bad value is refused where it was given,
with the parameter named, rather than deep inside a polars query plan.

A :class:`datetime.datetime` is accepted only at midnight with no time zone (YAML and pandas
give those for a plain date) and becomes its date; a time of day is refused rather than silently
dropped. Numbers, booleans and other strings (``"2022-7-1"``, ``"20220701"``,
``"2022-07-01T00:00"``, ``"01/07/2022"``) are refused.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from natexp.errors import NatexpError

_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _shown(value: Any) -> str:
    """A short description of a bad value: strings shown (cut to 40 characters), other values
    by their type only."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    return f"a value of type {type(value).__name__}"


def as_date(value: Any, name: str, *, error: type[NatexpError], optional: bool = False,
            where: str = "") -> dt.date | None:
    """Turn ``value`` into a :class:`datetime.date`, or raise ``error`` naming ``name``.

    Parameters
    ----------
    value : datetime.date, datetime.datetime at midnight, str ``"YYYY-MM-DD"`` or None
    name : str
        The parameter's name, used in the message.
    error : type
        The :class:`~natexp.errors.NatexpError` subclass to raise (e.g. ``DesignError``).
    optional : bool
        None is allowed (and returned).
    where : str
        Prefix of the message (e.g. ``"design"``); default none.

    Returns
    -------
    datetime.date or None

    Examples
    --------
    >>> from natexp.causal.result import InvalidInputError
    >>> as_date("2022-07-01", "window_start", error=InvalidInputError)
    datetime.date(2022, 7, 1)
    >>> as_date(20220701, "window_start", error=InvalidInputError, where="design")
    Traceback (most recent call last):
    ...
    natexp.causal.result.InvalidInputError: design: window_start must be a date (datetime.date or an ISO string "YYYY-MM-DD"), got a value of type int
    """
    prefix = f"{where}: " if where else ""
    want = 'a date (datetime.date or an ISO string "YYYY-MM-DD")'
    if value is None:
        if optional:
            return None
        raise error(f"{prefix}{name} is required: {want}")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None or value.time() != dt.time(0):
            raise error(f"{prefix}{name} must be {want}, got a datetime with a time of day or "
                        "time zone; give the date only")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        if _ISO.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise error(f"{prefix}{name} is not a calendar date: {_shown(value)}") from None
        raise error(f"{prefix}{name} must be {want}, got {_shown(value)}")
    raise error(f"{prefix}{name} must be {want}, got {_shown(value)}")
