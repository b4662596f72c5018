"""The one immutable result type for every estimate and test in natexp.

Borrowed from scipy's and linearmodels' conventions: a result has an ``estimate``, a ``ci``
(low, high) at ``confidence_level``, a test ``statistic`` and ``pvalue`` under ``alternative``,
the ``method`` that produced it and the group sizes. A degenerate input (for example a zero
margin) gives a result whose ``note`` says why a field is NaN; it never raises.

One vocabulary everywhere: ``alternative``, ``confidence_level``, ``rng``; never ``alpha``,
``level`` or ``pval``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

ALTERNATIVES = ("two-sided", "less", "greater")


from natexp.errors import NatexpError  # noqa: E402  (the one base class, re-exported)


class InvalidInputError(NatexpError, ValueError):
    """Wrong input to a statistical function (negative or non-integer count, x > n, ...)."""


def _freeze(value: Any) -> Any:
    """Return an immutable, JSON-friendly copy of ``value`` (dicts become read-only)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """Undo :func:`_freeze` for serialisation; numpy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}g}"
    return str(x)


@dataclass(frozen=True, slots=True)
class Result:
    """An immutable estimate or test result.

    Parameters
    ----------
    method : str
        Stable machine name of the method, e.g. ``"risk_difference.newcombe"`` or
        ``"test.fisher_minlike"``.
    estimate : float
        Point estimate (NaN for a pure test or when undefined; ``note`` says why).
    ci : tuple of float
        ``(low, high)`` confidence limits, ``(nan, nan)`` when the method gives none. For a
        ``"bounds.*"`` method (e.g. Manski bounds) the identification region instead, with
        ``confidence_level`` None.
    confidence_level : float or None
        Coverage of ``ci``; None when the result has no interval.
    statistic : float
        Test statistic (NaN when the method is an interval only).
    pvalue : float
        p-value of the test (NaN when the method is an interval only).
    alternative : str
        ``"two-sided"``, ``"less"`` or ``"greater"``.
    n : tuple of int
        Group sizes, e.g. ``(n1, n2)``.
    label : str
        Human-readable description of the method.
    note : str
        Why a field is NaN or a caveat (empty when none).
    diagnostics : tuple of str
        Warnings about the method's validity on these data (e.g. small expected counts).
    extra : Mapping
        Further named values (read-only), e.g. the nuisance parameter at the supremum.

    Examples
    --------
    >>> r = Result(method="risk_difference.wald", estimate=0.1, ci=(-0.1, 0.3),
    ...            confidence_level=0.95, n=(20, 15))
    >>> r.to_dict()["ci_low"]
    -0.1
    """

    method: str
    estimate: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    confidence_level: float | None = None
    statistic: float = math.nan
    pvalue: float = math.nan
    alternative: str = "two-sided"
    n: tuple[int, ...] = ()
    label: str = ""
    note: str = ""
    diagnostics: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.alternative not in ALTERNATIVES:
            raise InvalidInputError(
                f"alternative must be one of {ALTERNATIVES}, got {self.alternative!r}"
            )
        object.__setattr__(self, "ci", tuple(float(c) for c in self.ci))
        object.__setattr__(self, "n", tuple(int(v) for v in self.n))
        object.__setattr__(self, "diagnostics", tuple(self.diagnostics))
        object.__setattr__(self, "extra", _freeze(dict(self.extra)))
        for name in ("estimate", "statistic", "pvalue"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def ci_low(self) -> float:
        """Lower confidence limit."""
        return self.ci[0]

    @property
    def ci_high(self) -> float:
        """Upper confidence limit."""
        return self.ci[1]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (full precision; NaN stays NaN).

        Returns
        -------
        dict
            Keys: every field, with ``ci`` split into ``ci_low`` and ``ci_high``.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "ci":
                out["ci_low"], out["ci_high"] = value
            else:
                out[f.name] = _plain(value)
        return out

    def to_polars(self):
        """Return the result as a one-row :class:`polars.DataFrame`.

        Returns
        -------
        polars.DataFrame
            Scalar fields as columns; ``n``, ``diagnostics`` and ``extra`` as strings.
        """
        import json

        import polars as pl

        row = self.to_dict()
        for key in ("n", "diagnostics", "extra"):
            row[key] = json.dumps(row[key], sort_keys=True, default=str)
        return pl.DataFrame([row])

    def summary(self) -> str:
        """Return a one-paragraph plain-text summary.

        Returns
        -------
        str
        """
        parts = [self.label or self.method]
        if not math.isnan(self.estimate):
            parts.append(f"estimate {_fmt(self.estimate)}")
        if not (math.isnan(self.ci[0]) and math.isnan(self.ci[1])):
            level = f"{100 * self.confidence_level:g}% " if self.confidence_level else ""
            # a "bounds.*" method's ci is an identification region, not a confidence interval
            kind = "bounds" if self.method.startswith("bounds.") else f"{level}CI"
            parts.append(f"{kind} ({_fmt(self.ci[0])}, {_fmt(self.ci[1])})")
        if not math.isnan(self.statistic):
            parts.append(f"statistic {_fmt(self.statistic)}")
        if not math.isnan(self.pvalue):
            parts.append(f"p = {_fmt(self.pvalue)} ({self.alternative})")
        if self.n:
            parts.append("n = " + "/".join(str(v) for v in self.n))
        text = "; ".join(parts)
        if self.note:
            text += f". Note: {self.note}"
        for d in self.diagnostics:
            text += f"\n  ! {d}"
        return text

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        d = self.to_dict()
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td>{html.escape(_fmt(v) if not isinstance(v, dict | list) else str(v))}</td></tr>"
            for k, v in d.items()
            if v not in ((), [], {}, "", None)
        )
        return f"<table class='natexp-result'>{rows}</table>"
