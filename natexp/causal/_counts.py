"""Validation of 2x2 counts shared by every 2x2 method.

scipy's ``fisher_exact`` silently truncates 2.9 to 2; natexp refuses non-integer counts with a
typed error instead.
"""

from __future__ import annotations

import math
import numbers

from natexp.causal.result import InvalidInputError


def as_count(value: object, name: str) -> int:
    """Return ``value`` as a non-negative int, or raise :class:`InvalidInputError`.

    Parameters
    ----------
    value : object
        A count: an int, a numpy integer, or a float with an integral value (3.0).
    name : str
        Name used in the error message.

    Returns
    -------
    int

    Examples
    --------
    >>> as_count(3.0, "x1")
    3
    """
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a count, got a boolean")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f) or f != math.floor(f):
            raise InvalidInputError(f"{name} must be a whole number, got {f!r}")
        out = int(f)
    else:
        raise InvalidInputError(f"{name} must be a count, got {type(value).__name__}")
    if out < 0:
        raise InvalidInputError(f"{name} must be non-negative, got {out}")
    return out


def check_two_binomials(x1: object, n1: object, x2: object, n2: object) -> tuple[int, int, int, int]:
    """Validate two binomial samples x1/n1 (treated) and x2/n2 (control).

    Returns
    -------
    tuple of int
        ``(x1, n1, x2, n2)`` as ints.

    Raises
    ------
    InvalidInputError
        On a negative, non-integer or boolean count, or when x > n.

    Examples
    --------
    >>> check_two_binomials(4, 20, 2, 15)
    (4, 20, 2, 15)
    """
    x1, n1, x2, n2 = (as_count(v, k) for v, k in ((x1, "x1"), (n1, "n1"), (x2, "x2"), (n2, "n2")))
    if x1 > n1:
        raise InvalidInputError(f"x1 ({x1}) is larger than n1 ({n1})")
    if x2 > n2:
        raise InvalidInputError(f"x2 ({x2}) is larger than n2 ({n2})")
    return x1, n1, x2, n2
