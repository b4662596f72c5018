"""Standardised differences and the baseline balance table (treatment vs control).

Standardised differences (SMDs) compare the arms on what was known at baseline, in units of
standard deviation, independent of sample size (Austin 2009, *Stat Med* 28:3083-3107):

* continuous: ``(m1 - m2) / sqrt((s1**2 + s2**2) / 2)`` with sample (n - 1) variances;
* binary: ``(p1 - p2) / sqrt((p1 (1 - p1) + p2 (1 - p2)) / 2)``;
* categorical with k levels (Yang & Dalton 2012, SAS Global Forum paper 335-2012):
  ``sqrt((p1 - p2)' S^-1 (p1 - p2))`` over levels 2..k, with ``S`` the average of the two
  multinomial covariance matrices (``S[i, i] = p_i (1 - p_i)``, ``S[i, j] = -p_i p_j``). As R
  ``tableone`` does, ``S^-1`` is a Moore-Penrose pseudo-inverse, so levels empty in both arms
  do no harm.

Signs: ``estimate`` is treatment minus control for continuous and binary variables; the
categorical SMD is a distance and never negative.

Why natexp writes these itself: no well-kept Python library in natexp's dependencies computes
them. ``pingouin.compute_effsize`` gives Cohen's d with a pooled SD weighted by n - 1, which
differs from Austin's unweighted average of the variances when the arms differ in size, and
has no categorical version; statsmodels and scipy have none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from natexp.causal._counts import as_count, check_two_binomials
from natexp.causal.result import InvalidInputError, Result

__all__ = [
    "AGE_BANDS",
    "balance_table",
    "smd_binary",
    "smd_categorical",
    "smd_continuous",
    "smd_means",
]

#: Age bands of the balance table: (label, lowest age, highest age), inclusive.
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-4", 0, 4),
    ("5-10", 5, 10),
    ("11-15", 11, 15),
    ("16-17", 16, 17),
)

_ARMS = ("treatment", "control")

AREA_NOTE = (
    "area is perfectly confounded with arm in this design (treatment areas are the live "
    "areas of the treatment counties, control areas were not live): its SMD describes the "
    "design, not an imbalance that adjustment could remove"
)


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if math.isnan(out) or math.isinf(out):
        raise InvalidInputError(f"{name} must be finite, got {out!r}")
    return out


def _ratio(diff: float, denom: float) -> tuple[float, str]:
    """``diff / denom`` with the degenerate cases named."""
    if denom > 0:
        return diff / denom, ""
    if diff == 0:
        return math.nan, "no variation in either arm and equal values: the SMD is 0/0"
    return math.copysign(math.inf, diff), "no variation in either arm but different values"


def smd_means(mean1: float, sd1: float, mean2: float, sd2: float, *,
              n: Sequence[int] = ()) -> Result:
    """Standardised difference of two means from summary statistics (Austin 2009).

    Parameters
    ----------
    mean1, sd1 : float
        Mean and sample standard deviation in the treatment arm.
    mean2, sd2 : float
        The same in the control arm.
    n : sequence of int, optional
        Arm sizes, recorded in the result.

    Returns
    -------
    Result
        ``estimate`` = ``(mean1 - mean2) / sqrt((sd1**2 + sd2**2) / 2)``; NaN (with ``note``)
        when both SDs are 0 and the means are equal.

    Raises
    ------
    InvalidInputError
        On a non-finite input or a negative SD.

    Examples
    --------
    Borenstein et al. (2009), *Introduction to Meta-Analysis*, ch. 4: means 103 and 100, SDs
    5.5 and 4.5, 50 per group, give d = 0.5970.

    >>> round(smd_means(103.0, 5.5, 100.0, 4.5, n=(50, 50)).estimate, 4)
    0.597
    """
    m1, s1, m2, s2 = (_finite(v, k) for v, k in ((mean1, "mean1"), (sd1, "sd1"),
                                                 (mean2, "mean2"), (sd2, "sd2")))
    if s1 < 0 or s2 < 0:
        raise InvalidInputError("standard deviations must be non-negative")
    est, note = _ratio(m1 - m2, math.sqrt((s1 * s1 + s2 * s2) / 2.0))
    return Result(
        method="smd.continuous",
        estimate=est,
        n=tuple(int(v) for v in n),
        label="Standardised mean difference (Austin 2009)",
        note=note,
        extra={"mean": (m1, m2), "sd": (s1, s2)},
    )


def smd_continuous(x1: Iterable[float], x2: Iterable[float]) -> Result:
    """Standardised mean difference of two samples, with sample (n - 1) variances.

    Missing values (None, NaN) are dropped.

    Parameters
    ----------
    x1, x2 : iterable of float
        Values in the treatment and the control arm.

    Returns
    -------
    Result
        See :func:`smd_means`; NaN with ``note`` when an arm has fewer than 2 values.

    Examples
    --------
    >>> round(smd_continuous([1, 2, 3], [2, 3, 4]).estimate, 4)
    -1.0
    """
    a = np.asarray([np.nan if v is None else v for v in x1], dtype=float)
    b = np.asarray([np.nan if v is None else v for v in x2], dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    n = (a.size, b.size)
    if min(n) < 2:
        return Result(method="smd.continuous", n=n,
                      label="Standardised mean difference (Austin 2009)",
                      note="an arm has fewer than 2 values: no standard deviation")
    return smd_means(float(a.mean()), float(a.std(ddof=1)), float(b.mean()),
                     float(b.std(ddof=1)), n=n)


def smd_binary(x1: int, n1: int, x2: int, n2: int) -> Result:
    """Standardised difference of two proportions x1/n1 (treatment) and x2/n2 (control).

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Counts with the characteristic, and arm sizes.

    Returns
    -------
    Result
        ``estimate`` = ``(p1 - p2) / sqrt((p1 (1 - p1) + p2 (1 - p2)) / 2)``; NaN with
        ``note`` when an arm is empty or both proportions are 0 (or both 1).

    Raises
    ------
    InvalidInputError
        On a negative or non-integer count, or x > n.

    Examples
    --------
    R ``tableone`` README (pbc by treatment): women 137/158 vs 139/154, SMD 0.111.

    >>> round(abs(smd_binary(137, 158, 139, 154).estimate), 3)
    0.111
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    label = "Standardised difference of proportions (Austin 2009)"
    if n1 == 0 or n2 == 0:
        return Result(method="smd.binary", n=(n1, n2), label=label,
                      note="an arm is empty: no proportion")
    p1, p2 = x1 / n1, x2 / n2
    est, note = _ratio(p1 - p2, math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2.0))
    return Result(method="smd.binary", estimate=est, n=(n1, n2), label=label, note=note,
                  extra={"proportion": (p1, p2)})


def smd_categorical(counts1: Sequence[int] | Mapping[Any, int],
                    counts2: Sequence[int] | Mapping[Any, int]) -> Result:
    """Standardised difference of a categorical variable (Yang & Dalton 2012).

    Parameters
    ----------
    counts1, counts2 : sequence of int or mapping level -> int
        Counts per level in the treatment and the control arm, levels in the same order (or
        mappings; a level missing from one mapping counts 0 there).

    Returns
    -------
    Result
        ``estimate`` = ``sqrt(d' S^+ d)`` (non-negative), ``d`` the differences in the
        proportions of levels 2..k and ``S`` the average multinomial covariance;
        ``extra["levels"]`` lists the levels kept. NaN with ``note`` when an arm is empty;
        0 when fewer than two levels occur.

    Raises
    ------
    InvalidInputError
        On a negative or non-integer count or counts of different lengths.

    Examples
    --------
    R ``tableone`` README (pbc by treatment): edema levels 0/0.5/1 = 132/16/10 vs 131/13/10,
    SMD 0.058.

    >>> round(smd_categorical([132, 16, 10], [131, 13, 10]).estimate, 3)
    0.058
    """
    label = "Standardised difference of a categorical variable (Yang & Dalton 2012)"
    if isinstance(counts1, Mapping) or isinstance(counts2, Mapping):
        m1 = dict(counts1) if isinstance(counts1, Mapping) else dict(enumerate(counts1))
        m2 = dict(counts2) if isinstance(counts2, Mapping) else dict(enumerate(counts2))
        levels = list(dict.fromkeys([*m1, *m2]))
        c1 = [m1.get(k, 0) for k in levels]
        c2 = [m2.get(k, 0) for k in levels]
    else:
        c1, c2 = list(counts1), list(counts2)
        if len(c1) != len(c2):
            raise InvalidInputError("counts1 and counts2 must have the same number of levels")
        levels = list(range(len(c1)))
    a = np.array([as_count(v, "counts1") for v in c1], dtype=float)
    b = np.array([as_count(v, "counts2") for v in c2], dtype=float)
    n = (int(a.sum()), int(b.sum()))
    if n[0] == 0 or n[1] == 0:
        return Result(method="smd.categorical", n=n, label=label,
                      note="an arm is empty: no proportions")
    keep = (a + b) > 0
    kept = [lv for lv, k in zip(levels, keep, strict=True) if k]
    p1, p2 = a[keep] / n[0], b[keep] / n[1]
    if p1.size < 2:
        return Result(method="smd.categorical", estimate=0.0, n=n, label=label,
                      note="fewer than two levels occur: no difference",
                      extra={"levels": [str(v) for v in kept]})
    d = (p1 - p2)[1:]

    def cov(p: np.ndarray) -> np.ndarray:
        q = p[1:]
        return np.diag(q) - np.outer(q, q)

    s = (cov(p1) + cov(p2)) / 2.0
    value = float(d @ np.linalg.pinv(s) @ d)
    return Result(method="smd.categorical", estimate=math.sqrt(max(value, 0.0)), n=n,
                  label=label, extra={"levels": [str(v) for v in kept]})


# --------------------------------------------------------------------------- balance table

_SCHEMA = {
    "variable": pl.String,
    "level": pl.String,
    "unit": pl.String,
    "statistic": pl.String,
    "treatment": pl.Float64,
    "control": pl.Float64,
    "treatment_sd": pl.Float64,
    "control_sd": pl.Float64,
    "smd": pl.Float64,
    "n_treatment": pl.Int64,
    "n_control": pl.Int64,
    "note": pl.String,
}


def _nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _binary_row(variable: str, level: str | None, unit: str, x: dict[str, int],
                n: dict[str, int], note: str = "") -> dict:
    r = smd_binary(x["treatment"], n["treatment"], x["control"], n["control"])
    prop = {arm: (x[arm] / n[arm] if n[arm] else None) for arm in _ARMS}
    return {
        "variable": variable, "level": level, "unit": unit, "statistic": "proportion",
        "treatment": prop["treatment"], "control": prop["control"],
        "treatment_sd": None, "control_sd": None, "smd": _nan_to_none(r.estimate),
        "n_treatment": n["treatment"], "n_control": n["control"],
        "note": "; ".join(v for v in (note, r.note) if v),
    }


def _categorical_rows(frame: pl.DataFrame, column: str, variable: str, unit: str,
                      levels: Sequence[str] | None = None, note: str = "") -> list[dict]:
    """One row per level (binary SMD) and one overall row (categorical SMD)."""
    counts = frame.group_by("arm", column).len()
    table: dict[str, dict[str, int]] = {arm: {} for arm in _ARMS}
    for arm, level, k in counts.iter_rows():
        if level is not None:
            table[arm][str(level)] = int(k)
    seen = sorted({lv for arm in _ARMS for lv in table[arm]})
    order = list(levels or []) + [lv for lv in seen if lv not in (levels or [])]
    n = {arm: sum(table[arm].values()) for arm in _ARMS}
    rows = []
    for level in order:
        x = {arm: table[arm].get(level, 0) for arm in _ARMS}
        rows.append(_binary_row(variable, level, unit, x, n, note))
    overall = smd_categorical([table["treatment"].get(lv, 0) for lv in order],
                              [table["control"].get(lv, 0) for lv in order])
    rows.append({
        "variable": variable, "level": "(all levels)", "unit": unit, "statistic": "categorical",
        "treatment": None, "control": None, "treatment_sd": None, "control_sd": None,
        "smd": _nan_to_none(overall.estimate), "n_treatment": n["treatment"],
        "n_control": n["control"], "note": "; ".join(v for v in (note, overall.note) if v),
    })
    return rows


def _continuous_row(frame: pl.DataFrame, column: str, variable: str, unit: str) -> dict:
    values = {arm: frame.filter(pl.col("arm") == arm)[column].drop_nulls().to_list()
              for arm in _ARMS}
    r = smd_continuous(values["treatment"], values["control"])
    stats = {}
    for arm in _ARMS:
        v = np.asarray(values[arm], dtype=float)
        stats[arm] = (float(v.mean()) if v.size else None,
                      float(v.std(ddof=1)) if v.size > 1 else None)
    return {
        "variable": variable, "level": None, "unit": unit, "statistic": "mean",
        "treatment": stats["treatment"][0], "control": stats["control"][0],
        "treatment_sd": stats["treatment"][1], "control_sd": stats["control"][1],
        "smd": _nan_to_none(r.estimate), "n_treatment": len(values["treatment"]),
        "n_control": len(values["control"]), "note": r.note,
    }


def _members(cohort: Any, among: str | None) -> pl.DataFrame:
    lf = cohort.members if hasattr(cohort, "members") else cohort
    if isinstance(lf, pl.DataFrame):
        lf = lf.lazy()
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    # A fixed row order: polars joins and group-bys may return rows in any order, and float
    # sums (standard deviations) then differ in the last bits between runs.
    return lf.sort("family_id").collect()


def balance_table(cohort: Any, children: pl.LazyFrame | pl.DataFrame, *,
                  among: str | None = None,
                  categories: Sequence[tuple[str, str, Sequence[str]]] = ()) -> pl.DataFrame:
    """Treatment vs control on what was known at baseline, with standardised differences.

    Parameters
    ----------
    cohort : natexp.data.cohort.Cohort or polars frame
        A cohort (its ``members`` are used) or a frame of families with an ``arm`` column.
    children : polars.LazyFrame or polars.DataFrame
        The validated ``children`` table.
    among : str or None
        None: every identified family; a boolean column name (e.g. ``"followup_reached"``):
        only families where it is True.
    categories : sequence of (table, column, values)
        The study's own category columns to compare (``Study.balance``): ``table`` is
        ``"children"`` or ``"families"``, ``values`` the levels in order (e.g. the example
        study's ``("children", "carer", ("mother", "father", ...))``).

    Returns
    -------
    polars.DataFrame
        Columns ``variable``, ``level``, ``unit`` (``families``/``children``), ``statistic``
        (``proportion``, ``mean`` or ``categorical``), ``treatment``, ``control`` (proportion
        or mean), ``treatment_sd``, ``control_sd``, ``smd`` (treatment minus control; the
        ``(all levels)`` row of a categorical variable holds Yang & Dalton's SMD), ``n_treatment``,
        ``n_control`` and ``note``. Variables: ``parent_sex`` (share with a female imprisoned
        parent), ``children_per_family``, ``child_age``, ``child_age_band``, each of ``categories``,
        ``reception_quarter`` and ``area`` (perfectly confounded with arm: see ``note``).

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, chi = generate()
    >>> t = balance_table(build_cohort(fam.lazy(), load_rollout(),
    ...                                default_design()), chi)
    >>> t.filter(pl.col("variable") == "parent_sex")["n_treatment"].item()
    46
    """
    fam = _members(cohort, among)
    if "arm" not in fam.columns:
        raise InvalidInputError("the cohort frame has no 'arm' column")
    fam = fam.filter(pl.col("arm").is_in(_ARMS))
    kids_lf = children.lazy() if isinstance(children, pl.DataFrame) else children
    # Children in child_id order, whatever the input's row order: float sums (means, standard
    # deviations) then give byte-identical results for shuffled inputs.
    kids = (
        kids_lf.select("child_id", "family_id", "age",
                       *[c for t, c, _ in categories if t == "children"])
        .sort("child_id").collect()
        .join(fam.select("family_id", "arm"), on="family_id", how="inner", maintain_order="left")
    )
    per_family = kids.group_by("family_id").len(name="n_children").sort("family_id")
    fam = fam.join(per_family, on="family_id", how="left", maintain_order="left").with_columns(
        pl.col("n_children").fill_null(0),
        (pl.col("reception_date").dt.year().cast(pl.String) + pl.lit("Q")
         + pl.col("reception_date").dt.quarter().cast(pl.String)).alias("reception_quarter"),
    )
    band = pl.lit(None, dtype=pl.String)
    for label, lo, hi in reversed(AGE_BANDS):
        band = pl.when(pl.col("age").is_between(lo, hi)).then(pl.lit(label)).otherwise(band)
    kids = kids.with_columns(band.alias("age_band"))

    n_fam = {arm: fam.filter(pl.col("arm") == arm).height for arm in _ARMS}
    female = {arm: fam.filter((pl.col("arm") == arm) & (pl.col("parent_sex") == "F")).height
              for arm in _ARMS}
    rows = [_binary_row("parent_sex", "F", "families", female, n_fam)]
    rows.append(_continuous_row(fam, "n_children", "children_per_family", "families"))
    rows.append(_continuous_row(kids, "age", "child_age", "children"))
    rows += _categorical_rows(kids, "age_band", "child_age_band", "children",
                              [b[0] for b in AGE_BANDS])
    for table, column, levels in categories:
        frame = kids if table == "children" else fam
        rows += _categorical_rows(frame, column, column, table, list(levels))
    rows += _categorical_rows(fam, "reception_quarter", "reception_quarter", "families")
    rows += _categorical_rows(fam, "area", "area", "families", note=AREA_NOTE)
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")
