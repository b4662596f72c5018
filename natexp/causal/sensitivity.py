"""Sensitivity analyses: how much would it take to change the answer?

With 35 families reached out of 85 identified, and areas that were not chosen at random, every
conclusion of a natural experiment (such as the example study) needs to say
how fragile it is. This module collects the analyses that do not depend on the rollout timing
(those are in :mod:`natexp.causal.randomization`):

* **Non-response** (:func:`pattern_mixture`, :func:`delta_tipping_point`, :func:`manski_bounds`,
  :func:`tipping_point`): the primary comparison is conditional on being reached. The
  delta-adjusted pattern mixture (missing at random plus a log-odds shift per arm) and the
  shift at which the conclusion changes; Manski's worst/best-case bounds on the risk difference
  among all identified families; and (for a figure) a grid over *every* possible number of
  outcomes among the unreached of each arm, with the exact Boschloo and Fisher p-value of each
  completed table.
* **Unmeasured confounding** (:func:`evalue_rr`, :func:`evalue_rd`, :func:`evalues_2x2`):
  E-values (VanderWeele and Ding 2017) for a risk ratio, and for a risk difference from 2x2
  counts as R's ``EValue::evalues.RD`` computes them (Ding and VanderWeele 2016).
* **Influence of single areas** (:func:`leave_one_area_out`): the estimate with each area dropped.
* :func:`sensitivity_suite` runs all of them (and the randomization analyses) on one cohort.

Every function is pure: counts or a :class:`~natexp.data.cohort.Cohort` in, immutable
:class:`~natexp.causal.result.Result` objects or containers with ``to_dict()``, ``to_polars()``,
``summary()`` and ``_repr_html_()`` out.

References
----------
Higgins JPT, White IR, Wood AM (2008). Imputation methods for missing outcome data in
meta-analysis of clinical trials. Clinical Trials 5:225-239.
Manski CF (1990). Nonparametric bounds on treatment effects. American Economic Review 80:319-323.
Horowitz JL, Manski CF (2000). Nonparametric analysis of randomized experiments with missing
covariate and outcome data. JASA 95:77-84.
VanderWeele TJ, Ding P (2017). Sensitivity analysis in observational research: introducing the
E-value. Annals of Internal Medicine 167:268-274.
Ding P, VanderWeele TJ (2016). Sensitivity analysis without assumptions. Epidemiology
27:368-377.
Mathur MB, Ding P, Riddell CA, VanderWeele TJ (2018). Web site and R package for computing
E-values. Epidemiology 29:e45-e47 (R package ``EValue``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import polars as pl

from natexp.causal._counts import as_count, check_two_binomials
from natexp.causal._shared import (
    SensitivityTable,
    _all_tables,
    _boschloo_p,
    _check_level,
    _exact_rd_ci,
    _fisher_p,
    _html_frame,
    _newcombe,
    _rd,
    _schedule,
    _sign,
)
from natexp.causal.assignment import AssignmentSpec, enumerate_assignments
from natexp.causal.randomization import placebo_in_space, placebo_in_time, unit_randomization_test
from natexp.causal.result import InvalidInputError, Result, _fmt, _freeze, _plain

if TYPE_CHECKING:  # pragma: no cover
    from natexp.data.cohort import Cohort

__all__ = [
    "NonresponseCounts",
    "SensitivitySuite",
    "SensitivityTable",
    "TippingPoint",
    "delta_tipping_point",
    "evalue_or",
    "evalue_rd",
    "evalue_rr",
    "evalues_2x2",
    "leave_one_area_out",
    "manski_bounds",
    "nonresponse_counts",
    "primary_estimand",
    "pattern_mixture",
    "sensitivity_suite",
    "tipping_point",
    "treated_units",
]

#: Above this many tables in the sample space ``(n1 + 1) * (n2 + 1)`` the tipping-point grid
#: skips Boschloo's test unless asked (its all-tables pass costs about 0.7 s at 47 x 40).
MAX_BOSCHLOO_TABLES = 250_000


# --------------------------------------------------------------------------------------------
# non-response: counts, Manski bounds, tipping point


class NonresponseCounts(NamedTuple):
    """Outcome counts with non-response, per arm (1 = treatment, 2 = control).

    Attributes
    ----------
    x1, r1, m1 : int
        Outcome among the reached, reached, not reached (treatment).
    x2, r2, m2 : int
        The same for the control arm.
    """

    x1: int
    r1: int
    m1: int
    x2: int
    r2: int
    m2: int


def _check_nonresponse(x1, r1, m1, x2, r2, m2) -> NonresponseCounts:
    x1, r1, x2, r2 = check_two_binomials(x1, r1, x2, r2)
    m1, m2 = as_count(m1, "m1"), as_count(m2, "m2")
    return NonresponseCounts(x1, r1, m1, x2, r2, m2)


def nonresponse_counts(cohort: Cohort, *, outcome: str,
                       reached: str = "followup_reached") -> NonresponseCounts:
    """Outcome among the reached, reached and unreached families per arm of a cohort.

    Parameters
    ----------
    cohort : Cohort
        From :func:`natexp.data.cohort.build_cohort`.
    outcome : str
        Boolean outcome column (counted True among the reached).
    reached : str
        Boolean column: True when the family was reached (False or null: not reached, which
        includes families never called).

    Returns
    -------
    NonresponseCounts

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> nonresponse_counts(build_cohort(fam.lazy(), load_rollout(), default_design()),
    ...                    outcome=default_study().outcome.column)
    NonresponseCounts(x1=4, r1=20, m1=26, x2=2, r2=15, m2=24)
    """
    from natexp.data.cohort import arm_counts

    among_reached = arm_counts(cohort, outcome, among=reached)
    identified = arm_counts(cohort, reached, among=None)
    (x1, r1), (x2, r2) = among_reached["treatment"], among_reached["control"]
    n1, n2 = identified["treatment"][1], identified["control"][1]
    return NonresponseCounts(x1, r1, n1 - r1, x2, r2, n2 - r2)


#: What the ``ci`` of :func:`manski_bounds` is (its ``note``).
MANSKI_NOTE = ("ci is the identification region (worst- and best-case bounds over every "
               "outcome of the unreached), not a sampling confidence interval")


def manski_bounds(x1, r1, m1, x2, r2, m2) -> Result:
    """Worst- and best-case (Manski) bounds on the risk difference with unreached outcomes.

    Among the ``n = r + m`` identified families of an arm, ``x`` of the ``r`` reached had the
    outcome and the outcome of the ``m`` unreached is unknown, so the arm's risk lies in
    ``[x / n, (x + m) / n]`` and the risk difference ``p1 - p2`` (treatment minus control) in::

        [x1 / n1 - (x2 + m2) / n2,  (x1 + m1) / n1 - x2 / n2]

    No assumption about the unreached is made; the width ``m1 / n1 + m2 / n2`` is the price of
    not making one (Manski 1990; Horowitz and Manski 2000).

    Parameters
    ----------
    x1, r1, m1 : int
        Outcome among the reached, reached, not reached (treatment).
    x2, r2, m2 : int
        The same for the control arm.

    Returns
    -------
    Result
        ``method`` "bounds.manski_risk_difference"; ``estimate`` the risk difference among the
        reached (complete-case; NaN when an arm has nobody reached); ``ci`` the bounds
        ``(lower, upper)``: an identification region (every value in it is possible whatever
        the unreached did), NOT a sampling confidence interval, so ``confidence_level`` is
        None; ``note`` and ``label`` say so. ``extra`` repeats the bounds as ``lower`` and
        ``upper`` (for readers of earlier results) with each arm's risk bounds and the width.

    Raises
    ------
    InvalidInputError
        On a non-count or ``x > r``.

    Examples
    --------
    >>> b = manski_bounds(4, 20, 26, 2, 15, 24)
    >>> round(b.ci_low, 4), round(b.ci_high, 4)
    (-0.5797, 0.6009)
    >>> b.confidence_level is None, b.ci == (b.extra["lower"], b.extra["upper"])
    (True, True)
    """
    x1, r1, m1, x2, r2, m2 = _check_nonresponse(x1, r1, m1, x2, r2, m2)
    n1, n2 = r1 + m1, r2 + m2
    method = "bounds.manski_risk_difference"
    label = "Manski bounds on the risk difference (identification region, not a confidence " \
            "interval)"
    rd_reached = _rd(x1, r1, x2, r2)
    notes = [MANSKI_NOTE]
    if n1 == 0 or n2 == 0:
        return Result(method=method, n=(n1, n2), label=label,
                      note="an arm has no identified families: no bounds",
                      extra={"lower": math.nan, "upper": math.nan})
    if r1 == 0 or r2 == 0:
        notes.append("an arm has nobody reached: the complete-case difference is undefined")
    p1 = (x1 / n1, (x1 + m1) / n1)
    p2 = (x2 / n2, (x2 + m2) / n2)
    lower, upper = p1[0] - p2[1], p1[1] - p2[0]
    return Result(
        method=method, estimate=rd_reached, ci=(lower, upper), n=(n1, n2), label=label,
        note="; ".join(notes),
        extra={"lower": lower, "upper": upper, "width": upper - lower,
               "p1_bounds": p1, "p2_bounds": p2, "counts": dict(NonresponseCounts(
                   x1, r1, m1, x2, r2, m2)._asdict())},
    )


@dataclass(frozen=True, eq=False)
class TippingPoint:
    """Tipping-point analysis of non-response: every completion of the unreached outcomes.

    Attributes
    ----------
    counts : NonresponseCounts
    confidence_level : float
        Significance is ``p < 1 - confidence_level``.
    observed : Result
        Risk difference among the reached with its two-sided Boschloo p-value.
    manski : Result
        :func:`manski_bounds` (the grid's corners).
    grid : polars.DataFrame
        One row per completion ``(k1, k2)``: ``k1``/``k2`` outcomes among the unreached of
        treatment/control; completed counts ``x1, n1, x2, n2``; risks ``p1, p2``; ``rd``;
        ``sign`` (-1, 0, 1); ``flipped`` (the difference is zero or has the opposite sign of
        the observed one); ``p_boschloo``, ``p_fisher`` (two-sided, exact); ``sig_boschloo``,
        ``sig_fisher``.
    frontier : polars.DataFrame
        Per ``k1``: the range of ``k2`` where the sign flips, and where Boschloo's test is
        significant in the observed direction and in the opposite one (null: nowhere).
    notes : tuple of str
        Findings in words.
    """

    counts: NonresponseCounts
    confidence_level: float
    observed: Result
    manski: Result
    grid: pl.DataFrame
    frontier: pl.DataFrame
    notes: tuple[str, ...] = ()
    mar_cell: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "mar_cell", _freeze(dict(self.mar_cell)))

    @property
    def n_completions(self) -> int:
        """Number of completed tables, ``(m1 + 1) * (m2 + 1)``."""
        return self.grid.height

    def cell(self, k1: int, k2: int) -> dict[str, Any]:
        """The grid row of the completion with ``k1`` and ``k2`` outcomes among the unreached."""
        row = self.grid.filter((pl.col("k1") == k1) & (pl.col("k2") == k2))
        if row.height != 1:
            raise InvalidInputError(f"no completion k1={k1}, k2={k2} in the grid")
        return row.to_dicts()[0]

    def counts_summary(self) -> dict[str, int]:
        """How many completions flip the sign or are significant (each test, each direction)."""
        g = self.grid
        obs = _sign(self.observed.estimate)
        out = {"completions": g.height, "flipped": int(g["flipped"].sum())}
        for test in ("boschloo", "fisher"):
            sig = g[f"sig_{test}"].fill_null(False)
            out[f"significant_{test}"] = int(sig.sum())
            out[f"significant_{test}_same_sign"] = int((sig & (g["sign"] == obs)).sum()) \
                if obs else 0
            out[f"significant_{test}_opposite_sign"] = int((sig & (g["sign"] == -obs)).sum()) \
                if obs else 0
        return out

    def to_polars(self) -> pl.DataFrame:
        """Return a copy of the grid."""
        return self.grid.clone()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the grid as columns, to stay compact)."""
        return {
            "method": "sensitivity.tipping_point",
            "counts": dict(self.counts._asdict()),
            "confidence_level": self.confidence_level,
            "observed": self.observed.to_dict(),
            "manski": self.manski.to_dict(),
            "summary": self.counts_summary(),
            "mar_cell": _plain(self.mar_cell),
            "frontier": self.frontier.to_dicts(),
            "grid": self.grid.to_dict(as_series=False),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Plain-text findings and the frontier."""
        c = self.counts
        lines = [
            f"Non-response tipping point: outcome among the reached {c.x1}/{c.r1} vs "
            f"{c.x2}/{c.r2}, not reached {c.m1} and {c.m2}",
            self.observed.summary(),
        ]
        lines.extend(f"- {n}" for n in self.notes)
        with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=160,
                       tbl_hide_dataframe_shape=True):
            lines.append(str(self.frontier))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            "<div class='natexp-result'><strong>Non-response tipping point</strong>"
            f"<p>{html.escape(self.observed.summary())}</p><ul>{notes}</ul>"
            f"{_html_frame(self.frontier)}</div>"
        )


def _range_expr(mask: pl.Expr, name: str) -> list[pl.Expr]:
    k2 = pl.when(mask).then(pl.col("k2"))
    return [k2.min().alias(f"{name}_k2_min"), k2.max().alias(f"{name}_k2_max")]


def tipping_point(x1, r1, m1, x2, r2, m2, *, confidence_level: float = 0.95,
                  boschloo: bool | None = None) -> TippingPoint:
    """Every possible completion of the unreached outcomes, with exact tests of each.

    For each ``k1 = 0..m1`` (outcomes among the unreached of the treatment arm) and
    ``k2 = 0..m2`` (control) the table of all identified families is completed as
    ``(x1 + k1) / (r1 + m1)`` vs ``(x2 + k2) / (r2 + m2)``; its risk difference, the two-sided
    Boschloo p-value and the two-sided Fisher p-value are recorded. The grid shows where the sign
    of the difference flips and where an exact test would reach significance
    (``p < 1 - confidence_level``). Nothing is simulated: every completion is enumerated.

    Boschloo p-values come from one pass over the whole sample space
    (:func:`natexp.causal.unconditional.pvalues_all_tables`, about 0.7 s for 46 vs 39, the same
    values as ``scipy.stats.boschloo_exact`` table by table, which would take ~20 s), with the
    supremum searched only for the completions' tables (``only=``; a whole run of a study
    with 169 vs 282 identified families and 16,000 completions took 41 s instead of 140 s; the
    p-values then agree with the whole-space pass to about 1e-13); Fisher p-values from the same
    engine (``scipy.stats.fisher_exact``'s definition).

    Parameters
    ----------
    x1, r1, m1 : int
        Outcome among the reached, reached, not reached (treatment).
    x2, r2, m2 : int
        The same for the control arm.
    confidence_level : float, default 0.95
        Significance threshold ``1 - confidence_level``.
    boschloo : bool, optional
        Compute Boschloo's test (default: when the sample space has at most
        :data:`MAX_BOSCHLOO_TABLES` tables).

    Returns
    -------
    TippingPoint

    Raises
    ------
    InvalidInputError
        On a non-count, ``x > r`` or a confidence level outside (0, 1).

    Examples
    --------
    >>> tp = tipping_point(4, 20, 26, 2, 15, 24)
    >>> tp.n_completions
    675
    >>> round(tp.cell(0, 24)["rd"], 4) == round(tp.manski.extra["lower"], 4)
    True
    """
    counts = _check_nonresponse(x1, r1, m1, x2, r2, m2)
    x1, r1, m1, x2, r2, m2 = counts
    cl = _check_level(confidence_level)
    alpha = 1.0 - cl
    n1, n2 = r1 + m1, r2 + m2
    manski = manski_bounds(*counts)
    rd_obs = _rd(x1, r1, x2, r2)
    obs_note = "" if r1 and r2 else "an arm has nobody reached: no observed difference"
    observed = Result(
        method="tipping_point.observed", estimate=rd_obs, statistic=rd_obs,
        pvalue=_boschloo_p(x1, r1, x2, r2), n=(r1, r2), note=obs_note,
        label="Risk difference among the reached (two-sided Boschloo p)",
        extra={"p_fisher": _fisher_p(x1, r1, x2, r2)},
    )
    notes: list[str] = []
    k1 = np.repeat(np.arange(m1 + 1), m2 + 1)
    k2 = np.tile(np.arange(m2 + 1), m1 + 1)
    cx1, cx2 = x1 + k1, x2 + k2
    if n1 == 0 or n2 == 0:
        raise InvalidInputError("each arm needs at least one identified family")
    rd = cx1 / n1 - cx2 / n2
    # exact sign from integers (no rounding at rd == 0)
    sign = np.sign(cx1 * n2 - cx2 * n1).astype(np.int64)
    obs_sign = _sign(rd_obs)
    flipped = sign != obs_sign if obs_sign else np.zeros(sign.shape, dtype=bool)
    if boschloo is None:
        boschloo = (n1 + 1) * (n2 + 1) <= MAX_BOSCHLOO_TABLES
    p_fisher = _all_tables(n1, n2, "fisher")[cx1, cx2]
    if boschloo:
        completions = np.zeros((n1 + 1, n2 + 1), dtype=bool)
        completions[cx1, cx2] = True
        p_bos = _all_tables(n1, n2, "boschloo", only=completions)[cx1, cx2]
    else:
        p_bos = np.full(rd.shape, np.nan)
        notes.append(f"Boschloo's test skipped: {(n1 + 1) * (n2 + 1)} tables in the sample "
                     f"space (more than {MAX_BOSCHLOO_TABLES}); pass boschloo=True to force it")
    grid = pl.DataFrame({
        "k1": k1, "k2": k2, "x1": cx1, "n1": np.full(k1.shape, n1), "x2": cx2,
        "n2": np.full(k1.shape, n2), "p1": cx1 / n1, "p2": cx2 / n2, "rd": rd, "sign": sign,
        "flipped": flipped, "p_boschloo": p_bos, "p_fisher": p_fisher,
    }).with_columns(
        pl.when(pl.col("p_boschloo").is_nan()).then(None)
        .otherwise(pl.col("p_boschloo") < alpha).alias("sig_boschloo"),
        (pl.col("p_fisher") < alpha).alias("sig_fisher"),
    )
    sig = pl.col("sig_boschloo").fill_null(False)
    frontier = grid.group_by("k1", maintain_order=True).agg(
        *_range_expr(pl.col("flipped"), "flip"),
        *_range_expr(sig & (pl.col("sign") == obs_sign) & (obs_sign != 0), "sig_same"),
        *_range_expr(sig & (pl.col("sign") == -obs_sign) & (obs_sign != 0), "sig_opposite"),
    ).sort("k1")

    # findings in words
    level = f"p < {alpha:g}"
    notes.insert(0, f"{grid.height} completions ({m1 + 1} x {m2 + 1}) of the unreached "
                    f"outcomes, each with exact two-sided tests; significance means {level}")
    notes.append(
        f"Manski bounds (every unreached outcome unknown): "
        f"[{_fmt(manski.extra['lower'])}, {_fmt(manski.extra['upper'])}] around the "
        f"complete-case difference {_fmt(rd_obs)}"
    )
    if obs_sign:
        n_flip = int(flipped.sum())
        first = frontier.filter(pl.col("k1") == 0)["flip_k2_min"].item()
        where = ("" if first is None else
                 f"; with no outcome among the {m1} unreached treated families it takes "
                 f"{first} of the {m2} unreached control families")
        notes.append(f"the difference vanishes or reverses in {n_flip} of {grid.height} "
                     f"completions{where}")
    for test in ("boschloo", "fisher"):
        col = grid[f"sig_{test}"].fill_null(False)
        if test == "boschloo" and not boschloo:
            continue
        same = int((col & (grid["sign"] == obs_sign)).sum()) if obs_sign else 0
        opp = int((col & (grid["sign"] == -obs_sign)).sum()) if obs_sign else 0
        notes.append(f"{test.capitalize()}: {level} in {int(col.sum())} completions "
                     f"({same} in the observed direction, {opp} in the opposite one); the "
                     "completions are not independent tests and are not equally plausible: "
                     "the count is not a probability")
    mar: dict[str, Any] = {}
    if r1 and r2:
        mk1, mk2 = round(m1 * x1 / r1), round(m2 * x2 / r2)
        cell = grid.filter((pl.col("k1") == mk1) & (pl.col("k2") == mk2)).to_dicts()[0]
        mar = {"k1": mk1, "k2": mk2, "rd": cell["rd"], "p_boschloo": cell["p_boschloo"],
               "p_fisher": cell["p_fisher"]}
        notes.append(
            f"if the unreached had the reached families' rates (k1 = {mk1}, k2 = {mk2}): "
            f"difference {_fmt(cell['rd'])}, Boschloo p = {_fmt(cell['p_boschloo'])}, "
            f"Fisher p = {_fmt(cell['p_fisher'])}"
        )
    return TippingPoint(counts=counts, confidence_level=cl, observed=observed, manski=manski,
                        grid=grid, frontier=frontier, notes=tuple(notes), mar_cell=mar)


# --------------------------------------------------------------------------------------------
# non-response as trialists do it: delta-adjusted pattern mixture


def _expit(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _pm_arm(x: int, r: int, m: int, delta: float) -> tuple[float, float]:
    """Arm risk among all identified families and its variance (Higgins, White and Wood 2008,
    as R ``metasens::metamiss`` computes it with ``IMOR = exp(delta)``)."""
    n = r + m
    p = x / r
    if x == 0 or x == r:  # a logit shift cannot move a proportion of 0 or 1
        return (x + m * p) / n, p * (1 - p) / r
    q = _expit(math.log(p / (1 - p)) + delta)
    pi = (x + m * q) / n
    grad = (r + m * q * (1 - q) / (p * (1 - p))) / n
    # the binomial variance of x / r carried through the risk, plus the variance of the
    # proportion not reached m / n (the reached and unreached risks differ when delta != 0);
    # without the second term the variance is conditional on the numbers reached, and smaller
    # than multiple imputation's (Rubin's rules) and metamiss's
    pm = m / n
    return pi, grad ** 2 * p * (1 - p) / r + pm * (1 - pm) / n * (p - q) ** 2


def pattern_mixture(x1, r1, m1, x2, r2, m2, *, delta1: float = 0.0, delta2: float = 0.0,
                    confidence_level: float = 0.95) -> Result:
    """Delta-adjusted pattern-mixture estimate of the risk difference among all identified.

    The unreached families of each arm are assumed to take up support with the reached
    families' odds shifted by ``delta`` on the log-odds scale: ``logit(q_j) = logit(x_j / r_j)
    + delta_j`` (``delta = 0``: missing at random within the arm; ``exp(delta)`` is the
    informative-missingness odds ratio of Higgins, White and Wood 2008). The arm's risk among
    all ``n_j = r_j + m_j`` identified families is ``(x_j + m_j q_j) / n_j``, the expected value
    of the completed-data risk over imputations (so no imputed outcome is treated as data); its
    variance is the delta-method variance of Higgins, White and Wood (2008): the binomial
    variance of ``x_j / r_j`` carried through, plus that of the proportion not reached
    ``m_j / n_j`` times ``(x_j / r_j - q_j) ** 2`` (zero at ``delta = 0``), as R's
    ``metasens::metamiss(..., method.miss = "IMOR")`` computes it for a risk difference and as
    multiple imputation with Rubin's rules gives in large samples. The interval and two-sided
    p-value are Wald
    (normal) on the risk difference. With ``delta1 = delta2 = 0`` the result is the
    complete-case Wald analysis of the reached families.

    Parameters
    ----------
    x1, r1, m1, x2, r2, m2 : int
        Outcome among the reached, reached, not reached; treatment then control.
    delta1, delta2 : float
        Log-odds shifts for the unreached of treatment and control.
    confidence_level : float, default 0.95

    Returns
    -------
    Result
        ``method`` "nonresponse.pattern_mixture"; ``estimate``, ``ci``, ``pvalue``;
        ``extra``: ``delta1``, ``delta2``, ``risk1``, ``risk2``, ``se``.

    Examples
    --------
    >>> r = pattern_mixture(4, 20, 26, 2, 15, 24)
    >>> round(r.estimate, 4)
    0.0667
    """
    x1, r1, m1, x2, r2, m2 = _check_nonresponse(x1, r1, m1, x2, r2, m2)
    cl = _check_level(confidence_level)
    try:
        d1, d2 = float(delta1), float(delta2)
    except (TypeError, ValueError):
        raise InvalidInputError("delta1 and delta2 must be numbers") from None
    if not (math.isfinite(d1) and math.isfinite(d2)):
        raise InvalidInputError("delta1 and delta2 must be finite")
    method, label = "nonresponse.pattern_mixture", "Delta-adjusted pattern mixture"
    if r1 == 0 or r2 == 0:
        return Result(method=method, label=label, n=(r1 + m1, r2 + m2),
                      note="an arm has nobody reached: nothing to extrapolate from",
                      extra={"delta1": d1, "delta2": d2})
    # scipy.stats.norm's ppf(q) and sf(x) are special.ndtri(q) and special.ndtr(-x) behind
    # argument checks that cost ~0.3 ms a call; delta_tipping_point makes thousands of calls
    from scipy.special import ndtr, ndtri

    pi1, v1 = _pm_arm(x1, r1, m1, d1)
    pi2, v2 = _pm_arm(x2, r2, m2, d2)
    rd, se = pi1 - pi2, math.sqrt(v1 + v2)
    z = ndtri(0.5 + cl / 2)
    notes = []
    for arm, (x, r) in (("treatment", (x1, r1)), ("control", (x2, r2))):
        if x == 0 or x == r:
            notes.append(f"{arm}: observed proportion {x}/{r}; a log-odds shift cannot move it")
    p = 2 * ndtr(-(abs(rd) / se)) if se > 0 else math.nan
    return Result(method=method, estimate=rd, ci=(rd - z * se, rd + z * se),
                  confidence_level=cl, statistic=rd / se if se > 0 else math.nan, pvalue=p,
                  n=(r1 + m1, r2 + m2), label=label, note="; ".join(notes),
                  extra={"delta1": d1, "delta2": d2, "risk1": pi1, "risk2": pi2, "se": se})


def _pm_state(counts: NonresponseCounts, d1: float, d2: float, cl: float) -> tuple[int, bool]:
    r = pattern_mixture(*counts, delta1=d1, delta2=d2, confidence_level=cl)
    return _sign(r.estimate), not (r.ci_low <= 0 <= r.ci_high)


def delta_tipping_point(x1, r1, m1, x2, r2, m2, *, confidence_level: float = 0.95,
                        deltas: Sequence[float] = tuple(np.round(np.arange(-3, 3.01, 0.5), 2)),
                        limit: float = 5.0) -> SensitivityTable:
    """Where does the conclusion change as the unreached depart from missing at random?

    The conclusion at ``delta = 0`` (MAR) is its sign and whether the interval excludes zero.
    Along three directions, treatment arm only (``delta1 = d``, ``delta2 = 0``), control arm
    only, and both arms (``d, d``), the smallest ``|d|`` up to ``limit`` at which the sign or
    the significance changes is found by bisection of the pattern-mixture estimate and its
    interval limits (:func:`pattern_mixture`); the ``deltas x deltas`` grid is the table.

    Parameters
    ----------
    x1, r1, m1, x2, r2, m2 : int
        Outcome among the reached, reached, not reached; treatment then control.
    confidence_level : float, default 0.95
    deltas : sequence of float
        The grid of log-odds shifts (each arm).
    limit : float, default 5
        Largest ``|delta|`` searched for the tipping point.

    Returns
    -------
    SensitivityTable
        Grid columns ``delta1, delta2, rd, ci_low, ci_high, pvalue, significant``; ``meta``:
        ``tipping`` (per direction and side, the delta where the conclusion changes, null when
        it does not within ``limit``), the MAR result and the estimand.

    Examples
    --------
    >>> t = delta_tipping_point(4, 20, 26, 2, 15, 24, deltas=[0.0])
    >>> t.frame.height
    1
    """
    counts = _check_nonresponse(x1, r1, m1, x2, r2, m2)
    cl = _check_level(confidence_level)
    rows = []
    for d1 in deltas:
        for d2 in deltas:
            r = pattern_mixture(*counts, delta1=d1, delta2=d2, confidence_level=cl)
            rows.append({"delta1": float(d1), "delta2": float(d2), "rd": r.estimate,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "pvalue": r.pvalue,
                         "significant": None if math.isnan(r.pvalue) else r.pvalue < 1 - cl})
    frame = pl.DataFrame(rows, schema={"delta1": pl.Float64, "delta2": pl.Float64,
                                       "rd": pl.Float64, "ci_low": pl.Float64,
                                       "ci_high": pl.Float64, "pvalue": pl.Float64,
                                       "significant": pl.Boolean})
    mar = pattern_mixture(*counts, confidence_level=cl)
    tipping: dict[str, Any] = {}
    notes: list[str] = []
    if not math.isnan(mar.estimate):
        base = _pm_state(counts, 0.0, 0.0, cl)
        dirs = {"treatment": (1.0, 0.0), "control": (0.0, 1.0), "both": (1.0, 1.0)}
        for name, (a, b) in dirs.items():
            for side, sgn in (("up", 1.0), ("down", -1.0)):
                grid = np.linspace(0, limit, 501)[1:]
                hit = None
                prev = 0.0
                for d in grid:
                    if _pm_state(counts, sgn * a * d, sgn * b * d, cl) != base:
                        lo, hi = prev, d
                        for _ in range(40):
                            mid = (lo + hi) / 2
                            if _pm_state(counts, sgn * a * mid, sgn * b * mid, cl) != base:
                                hi = mid
                            else:
                                lo = mid
                        hit = sgn * hi
                        break
                    prev = d
                key = f"{name}_{side}"
                if hit is None:
                    tipping[key] = None
                else:
                    st = _pm_state(counts, a * hit, b * hit, cl)
                    tipping[key] = {"delta": hit, "odds_ratio": math.exp(hit),
                                    "changes_to": ("significant" if st[1] else
                                                   "not significant" if base[1] else
                                                   "opposite sign")}
        sig_word = "significant" if base[1] else "not significant"
        notes.append(f"missing at random (delta = 0): difference {_fmt(mar.estimate)} "
                     f"({_fmt(mar.ci_low)} to {_fmt(mar.ci_high)}), {sig_word}")
        for key, v in tipping.items():
            arm, side = key.rsplit("_", 1)
            who = {"treatment": "the unreached treatment families",
                   "control": "the unreached control families",
                   "both": "the unreached of both arms"}[arm]
            if v is None:
                notes.append(f"{who}, odds {'raised' if side == 'up' else 'lowered'}: the "
                             f"conclusion holds for every delta up to {limit:g} (odds ratio "
                             f"{math.exp(limit if side == 'up' else -limit):.3g})")
            else:
                notes.append(f"{who}: the conclusion changes ({v['changes_to']}) at delta = "
                             f"{v['delta']:.2f} (odds ratio {v['odds_ratio']:.3g} against "
                             "the reached families of the same arm)")
    return SensitivityTable(
        method="sensitivity.pattern_mixture",
        title="Non-response: delta-adjusted pattern mixture (MAR plus a log-odds shift)",
        frame=frame, headline=mar, notes=tuple(notes),
        meta={"confidence_level": cl, "limit": limit, "tipping": tipping,
              "counts": dict(counts._asdict())},
    )


# --------------------------------------------------------------------------------------------
# E-values


def _threshold(x: float, true: float = 1.0) -> float:
    """E-value of a risk ratio ``x`` shifted to ``true`` (R ``EValue::threshold``)."""
    if math.isnan(x):
        return math.nan
    if x <= 1:
        x = math.inf if x == 0 else 1.0 / x
        true = 1.0 / true
    if math.isinf(x):
        return math.inf
    if true <= x:
        return (x + math.sqrt(x * (x - true))) / true
    rat = true / x
    return rat + math.sqrt(rat * (rat - 1.0))


def evalue_rr(rr: float, ci_low: float = math.nan, ci_high: float = math.nan, *,
              true: float = 1.0) -> Result:
    """E-value for a risk ratio and for its confidence limit closer to the null.

    The E-value is the minimum strength of association, on the risk-ratio scale, that an
    unmeasured confounder would need with both the treatment and the outcome to fully explain
    away the observed risk ratio: ``E = RR + sqrt(RR * (RR - 1))`` for ``RR > 1`` and the same of
    ``1 / RR`` for ``RR < 1`` (VanderWeele and Ding 2017). The limit closer to the null gets its
    own E-value, 1 when the interval contains the null. With ``true != 1`` the estimate is
    shifted to ``true`` instead of 1, as R's ``EValue::evalues.RR(est, lo, hi, true)``.

    Parameters
    ----------
    rr : float
        Point estimate of the risk ratio (non-negative).
    ci_low, ci_high : float, optional
        Confidence limits (NaN: not given).
    true : float, default 1
        The value to shift the estimate to.

    Returns
    -------
    Result
        ``method`` "evalue.risk_ratio"; ``estimate`` the E-value of the point estimate;
        ``extra``: ``rr``, ``rr_ci``, ``evalue_ci`` (E-value of the limit closer to ``true``,
        NaN without a limit), ``ci_limit`` ("lower"/"upper"), ``true``.

    Raises
    ------
    InvalidInputError
        On a negative or non-numeric ratio, ``ci_low > ci_high`` or an estimate outside its
        interval.

    Examples
    --------
    VanderWeele and Ding (2017), breastfeeding and infections: RR 3.9 (1.8 to 8.7).

    >>> e = evalue_rr(3.9, 1.8, 8.7)
    >>> round(e.estimate, 2), round(e.extra["evalue_ci"], 2)
    (7.26, 3.0)
    """
    try:
        est, lo, hi, true = (float(v) for v in (rr, ci_low, ci_high, true))
    except (TypeError, ValueError):
        raise InvalidInputError("rr, ci_low, ci_high and true must be numbers") from None
    method, label = "evalue.risk_ratio", "E-value for a risk ratio (VanderWeele & Ding 2017)"
    if math.isnan(est):
        return Result(method=method, label=label, note="the risk ratio is NaN",
                      extra={"rr": est, "rr_ci": (lo, hi), "evalue_ci": math.nan, "true": true})
    if est < 0 or (not math.isnan(lo) and lo < 0):
        raise InvalidInputError("a risk ratio cannot be negative")
    if not (true > 0 and math.isfinite(true)):
        raise InvalidInputError(f"true must be positive and finite, got {true}")
    if not math.isnan(lo) and not math.isnan(hi) and lo > hi:
        raise InvalidInputError("ci_low is larger than ci_high")
    if (not math.isnan(lo) and est < lo) or (not math.isnan(hi) and est > hi):
        raise InvalidInputError("the point estimate must lie inside its confidence interval")
    e_point = _threshold(est, true)
    has_ci = not (math.isnan(lo) and math.isnan(hi))
    e_ci, limit, notes = math.nan, None, []
    if has_ci:
        if est > true:
            limit, value = "lower", lo
        elif est < true:
            limit, value = "upper", hi
        else:
            limit, value = "lower", true
        if math.isnan(value):
            e_ci = math.nan
        elif (est > true and value < true) or (est < true and value > true) or value == true:
            e_ci = 1.0
            notes.append("the confidence interval contains the null (true) value: its E-value "
                         "is 1")
        else:
            e_ci = _threshold(value, true)
    if math.isinf(e_point):
        notes.append("the risk ratio is 0 or infinite: no finite confounding explains it away")
    return Result(method=method, estimate=e_point, label=label, note="; ".join(notes),
                  extra={"rr": est, "rr_ci": (lo, hi), "evalue_ci": e_ci, "ci_limit": limit,
                         "true": true})


def evalue_or(or_: float, ci_low: float = math.nan, ci_high: float = math.nan, *,
              rare: bool = False, true: float = 1.0) -> Result:
    """E-value for an odds ratio, as R's ``EValue::evalues.OR(est, lo, hi, rare, true)``.

    An odds ratio approximates a risk ratio only for a rare outcome. For a common outcome
    (``rare=False``, the default: above about 15% at the end of follow-up) VanderWeele and Ding
    (2017, Annals of Internal Medicine 167:268, Table 2) convert it by the square-root
    transformation ``RR ~ sqrt(OR)``, applied to the estimate, the limits and ``true``, and take
    the risk-ratio E-value (:func:`evalue_rr`) of the result; with ``rare=True`` the odds
    ratio is used as a risk ratio unchanged.

    Parameters
    ----------
    or_ : float
        Point estimate of the odds ratio (non-negative).
    ci_low, ci_high : float, optional
        Confidence limits (NaN: not given).
    rare : bool, default False
        Whether the outcome is rare (then OR ~ RR).
    true : float, default 1
        The odds ratio to shift the estimate to.

    Returns
    -------
    Result
        ``method`` "evalue.odds_ratio"; ``estimate`` the E-value of the point estimate;
        ``extra``: ``or``, ``or_ci``, ``rr`` and ``rr_ci`` (the risk-ratio scale used),
        ``evalue_ci``, ``ci_limit``, ``rare``, ``true``.

    Raises
    ------
    InvalidInputError
        As :func:`evalue_rr`.

    Examples
    --------
    R EValue's documented example ``evalues.OR(0.86, 0.75, 0.99, rare = FALSE)`` gives
    E-values 1.3689529 (estimate) and 1.0761939 (upper limit):

    >>> e = evalue_or(0.86, 0.75, 0.99)
    >>> round(e.estimate, 4), round(e.extra["evalue_ci"], 4)
    (1.369, 1.0762)
    """
    try:
        est, lo, hi, tr = (float(v) for v in (or_, ci_low, ci_high, true))
    except (TypeError, ValueError):
        raise InvalidInputError("or_, ci_low, ci_high and true must be numbers") from None
    if est < 0 or (not math.isnan(lo) and lo < 0):
        raise InvalidInputError("an odds ratio cannot be negative")
    if not (tr > 0 and math.isfinite(tr)):
        raise InvalidInputError(f"true must be positive and finite, got {tr}")

    def to_rr(v: float) -> float:
        return v if (rare or math.isnan(v)) else math.sqrt(v)

    rr = evalue_rr(to_rr(est), to_rr(lo), to_rr(hi), true=to_rr(tr))
    how = "rare outcome: OR used as RR" if rare else "common outcome: RR = sqrt(OR)"
    return Result(
        method="evalue.odds_ratio", estimate=rr.estimate,
        label=f"E-value for an odds ratio (VanderWeele & Ding 2017; {how})",
        note=rr.note,
        extra={"or": est, "or_ci": (lo, hi), "rr": rr.extra["rr"], "rr_ci": rr.extra["rr_ci"],
               "evalue_ci": rr.extra["evalue_ci"], "ci_limit": rr.extra.get("ci_limit"),
               "rare": bool(rare), "true": tr},
    )


def evalue_rd(x1, n1, x2, n2, *, true: float = 0.0, confidence_level: float = 0.95,
              grid: float | None = 1e-4) -> Result:
    """E-value for a risk difference from 2x2 counts, as R's ``EValue::evalues.RD``.

    Implements the bound of Ding and VanderWeele (2016, Epidemiology 27:368, p. 376) for the
    population-standardised risk difference exactly as ``evalues.RD(n11, n10, n01, n00, true,
    alpha, grid)`` of the R package EValue does (Mathur et al. 2018; the algorithm is in the
    package's ``R/EValue.R``), with ``n11 = x1``, ``n10 = n1 - x1``, ``n01 = x2``,
    ``n00 = n2 - x2``:

    * bias factor of the point estimate: ``B = (sqrt((true + d)^2 + 4 p1 p0 f (1 - f)) -
      (true + d)) / (2 p0 f)`` with ``f = n1 / N`` and ``d = p0 (1 - f) - p1 f``; its E-value
      is ``B + sqrt(B (B - 1))``;
    * the Wald lower limit ``p1 - p0 - z sqrt(var1 + var0)``: E-value 1 if it is at or below
      ``true``; otherwise the smallest bias factor on the grid ``1, 1 + grid, ...`` at which the
      bias-corrected lower limit (delta-method variance, Ding and VanderWeele 2016, eAppendix)
      reaches ``true``, and its E-value.

    No Python library computes this (the only implementation is the R package), hence this code.

    Parameters
    ----------
    x1, n1 : int
        Events and size of the treated (exposed) group.
    x2, n2 : int
        Events and size of the control group.
    true : float, default 0
        Risk difference to shift the estimate to (must be below the estimate).
    confidence_level : float, default 0.95
        ``alpha = 1 - confidence_level`` of ``evalues.RD``.
    grid : float or None, default 1e-4
        Spacing of R's grid search for the lower limit's E-value. None solves for the bias
        factor exactly (``scipy.optimize.brentq``), the value the grid approximates from above.

    Returns
    -------
    Result
        ``method`` "evalue.risk_difference"; ``estimate`` the E-value of the point estimate;
        ``extra``: ``rd``, ``rd_ci_low`` (Wald), ``evalue_ci`` (E-value of the lower limit),
        ``bias_factor``, ``true``, ``relabelled`` (True when the groups were swapped because the
        difference was negative, as EValue's documentation asks), ``grid``.

    Raises
    ------
    InvalidInputError
        On invalid counts, or ``true`` above a positive estimate.

    Examples
    --------
    EValue's documented example (Hammond and Holl 1958: lung cancer in 397 of 78,954 smokers and
    51 of 108,829 non-smokers); the package's tests give 15.95703 for the lower limit:

    >>> e = evalue_rd(397, 78954, 51, 108829)
    >>> round(e.extra["evalue_ci"], 3)
    15.957
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    cl = _check_level(confidence_level)
    try:
        true = float(true)
    except (TypeError, ValueError):
        raise InvalidInputError(f"true must be a number, got {true!r}") from None
    if grid is not None and not (float(grid) > 0):
        raise InvalidInputError(f"grid must be positive or None, got {grid!r}")
    method = "evalue.risk_difference"
    label = "E-value for a risk difference (Ding & VanderWeele 2016; R EValue::evalues.RD)"
    common = dict(method=method, label=label, n=(n1, n2))
    if n1 == 0 or n2 == 0:
        return Result(**common, note="an empty group: no risk difference",
                      extra={"evalue_ci": math.nan})
    notes = []
    relabelled = x1 / n1 < x2 / n2
    if relabelled:  # EValue: "relabel the exposure such that the risk difference > 0"
        x1, n1, x2, n2 = x2, n2, x1, n1
        true = -true
        notes.append("the risk difference is negative: groups swapped (as EValue asks) and "
                     "the E-value computed for the reversed difference")
    big_n = n1 + n2
    f = n1 / big_n
    p1, p0 = x1 / n1, x2 / n2
    rd = p1 - p0
    if rd < true:
        raise InvalidInputError(
            f"true ({true:g}) must not exceed the risk difference ({rd:g}) (EValue::evalues.RD)"
        )
    s2_p1, s2_p0, s2_f = p1 * (1 - p1) / n1, p0 * (1 - p0) / n2, f * (1 - f) / big_n
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - cl) / 2))
    low_ci = rd - z * math.sqrt(s2_p1 + s2_p0)
    extra: dict[str, Any] = {"rd": rd, "rd_ci_low": low_ci, "true": true,
                             "relabelled": relabelled, "grid": grid,
                             "confidence_level": cl}
    if rd == true:
        notes.append("the risk difference equals the true value: nothing to explain away")
        return Result(**common, estimate=1.0, note="; ".join(notes),
                      extra={**extra, "bias_factor": 1.0, "evalue_ci": 1.0})
    if p0 == 0:
        notes.append("no events in the comparison group: the bias factor is unbounded, the "
                     "point E-value infinite and the limit's E-value undefined")
        return Result(**common, estimate=math.inf, note="; ".join(notes),
                      extra={**extra, "bias_factor": math.inf, "evalue_ci": math.nan})
    diff = p0 * (1 - f) - p1 * f
    est_bf = (math.sqrt((true + diff) ** 2 + 4 * p1 * p0 * f * (1 - f)) - (true + diff)) / (
        2 * p0 * f)
    e_point = _threshold(est_bf)

    def low_at(bf: np.ndarray | float) -> np.ndarray | float:
        rd_s = p1 - p0 * bf
        f_s = f + (1 - f) / bf
        return rd_s * f_s - z * np.sqrt((s2_p1 + s2_p0 * bf ** 2) * f_s ** 2
                                        + rd_s ** 2 * (1 - 1 / bf) ** 2 * s2_f)

    if low_ci <= true:
        e_ci = 1.0
        notes.append("the lower confidence limit is at or below the true value: its E-value "
                     "is 1")
    elif grid is None:
        from scipy.optimize import brentq

        bf_ci = brentq(lambda b: float(low_at(b)) - true, 1.0, est_bf, xtol=1e-12)
        e_ci = _threshold(bf_ci)
    else:
        # R: BF.search = seq(1, est.BF, grid); first BF where the lower limit <= true
        n_steps = math.floor((est_bf - 1.0) / grid + 1e-10) + 1
        bfs = 1.0 + grid * np.arange(n_steps)
        hit = np.flatnonzero(low_at(bfs) <= true)
        e_ci = _threshold(float(bfs[hit[0]])) if hit.size else math.nan
    return Result(**common, estimate=e_point, note="; ".join(notes),
                  extra={**extra, "bias_factor": est_bf, "evalue_ci": e_ci})


def evalues_2x2(x1, n1, x2, n2, *, confidence_level: float = 0.95,
                odds_ratio: bool = False) -> dict[str, Result]:
    """E-values for the risk ratio and the risk difference of x1/n1 (treated) vs x2/n2.

    The risk ratio and its Katz log interval come from
    ``scipy.stats.contingency.relative_risk`` (the interval R's ``EValue::twoXtwoRR`` computes);
    the risk difference E-values from :func:`evalue_rd`. With ``odds_ratio=True`` also the
    E-value of the sample odds ratio with its Woolf (logit) interval
    (``scipy.stats.contingency.odds_ratio(kind="sample")``) as a common outcome
    (:func:`evalue_or`, ``rare=False``).

    Parameters
    ----------
    x1, n1, x2, n2 : int
    confidence_level : float, default 0.95
    odds_ratio : bool, default False
        Add the odds-ratio E-value under the key "odds_ratio".

    Returns
    -------
    dict
        ``{"risk_ratio": Result, "risk_difference": Result}`` (and ``"odds_ratio"``).

    Examples
    --------
    >>> ev = evalues_2x2(4, 20, 2, 15)
    >>> round(ev["risk_ratio"].estimate, 3), ev["risk_ratio"].extra["evalue_ci"]
    (2.366, 1.0)
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    cl = _check_level(confidence_level)
    if n1 == 0 or n2 == 0:
        empty = Result(method="evalue.risk_ratio", n=(n1, n2), note="an empty group: no ratio")
        return {"risk_ratio": empty, "risk_difference": evalue_rd(x1, n1, x2, n2)}
    from scipy.stats.contingency import relative_risk

    rr = relative_risk(x1, n1, x2, n2)
    est = float(rr.relative_risk)
    if x1 == 0 and x2 == 0:
        rr_res = Result(method="evalue.risk_ratio", n=(n1, n2),
                        note="no events in either group: the risk ratio is undefined")
    else:
        lo, hi = (float(v) for v in rr.confidence_interval(confidence_level=cl))
        rr_res = evalue_rr(est, lo, hi)
        rr_res = Result(**{**_fields(rr_res), "n": (n1, n2), "confidence_level": cl})
    out = {"risk_ratio": rr_res,
           "risk_difference": evalue_rd(x1, n1, x2, n2, confidence_level=cl)}
    if odds_ratio:
        out["odds_ratio"] = _evalue_sample_or(x1, n1, x2, n2, cl)
    return out


def _evalue_sample_or(x1: int, n1: int, x2: int, n2: int, cl: float) -> Result:
    """E-value (common outcome) of the sample odds ratio with its Woolf interval."""
    a, b, c, d = x1, n1 - x1, x2, n2 - x2
    if 0 in (a, b, c, d):
        return Result(method="evalue.odds_ratio", n=(n1, n2),
                      note="a zero cell: the sample odds ratio or its Woolf interval is "
                           "undefined")
    from scipy.stats import norm

    est = a * d / (b * c)
    half = norm.ppf(0.5 + cl / 2.0) * math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    res = evalue_or(est, est * math.exp(-half), est * math.exp(half), rare=False)
    return Result(**{**_fields(res), "n": (n1, n2), "confidence_level": cl})


def _fields(r: Result) -> dict[str, Any]:
    return {k: getattr(r, k) for k in r.__dataclass_fields__}


# --------------------------------------------------------------------------------------------
# leave one area out


def leave_one_area_out(cohort: Cohort, *, outcome: str,
                       among: str | None = "followup_reached",
                       confidence_level: float = 0.95) -> SensitivityTable:
    """The risk difference with each area of the rollout dropped in turn.

    Row ``dropped_area = null`` is the full cohort; then one row per area of the rollout
    schedule (in schedule order, plus any cohort area missing from it). Each row has the counts,
    the risk difference with its Newcombe hybrid score interval
    (:func:`natexp.causal.intervals.risk_difference_ci`) and its exact unconditional interval
    (:func:`natexp.causal.unconditional.exact_unconditional_ci`, Agresti-Min inversion), and the
    two-sided Boschloo p-value. Dropping an area without families in the cohort changes nothing.

    Parameters
    ----------
    cohort : Cohort
    outcome : str
        Boolean outcome column.
    among : str or None, default "followup_reached"
        Count only families with this column True (default: the reached families, the
        published comparison 4/20 vs 2/15); None: every identified family.
    confidence_level : float, default 0.95

    Returns
    -------
    SensitivityTable
        Columns ``dropped_area, county, dropped_treatment, dropped_control, x1, n1, x2, n2, rd,
        rd_change, newcombe_low, newcombe_high, exact_low, exact_high, p_boschloo,
        significant, sign_flipped, note`` (why a row is NaN); ``headline`` the full-cohort
        Newcombe result.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> t = leave_one_area_out(build_cohort(fam.lazy(), load_rollout(), default_design()),
    ...                        outcome=default_study().outcome.column)
    >>> t.frame.height, t.frame["n1"][0], t.frame["n2"][0]
    (14, 20, 15)
    """
    cl = _check_level(confidence_level)
    lf = cohort.members
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    per_area = (
        lf.group_by("area", "arm")
        .agg((pl.col(outcome) == True).sum().alias("x"), pl.len().alias("n"))  # noqa: E712
        .collect()
    )
    counts: dict[tuple[str, str], tuple[int, int]] = {
        (r["area"], r["arm"]): (int(r["x"]), int(r["n"])) for r in per_area.iter_rows(named=True)
    }
    tot = {arm: [0, 0] for arm in ("treatment", "control")}
    for (_, arm), (x, n) in counts.items():
        tot[arm][0] += x
        tot[arm][1] += n
    schedule = cohort.rollout.select("area", "county")
    areas = schedule["area"].to_list()
    county = dict(zip(areas, schedule["county"].to_list(), strict=True))
    areas += sorted({a for a, _ in counts} - set(areas))
    cache: dict[tuple[int, int, int, int], tuple] = {}

    def stats(x1: int, n1: int, x2: int, n2: int) -> tuple:
        key = (x1, n1, x2, n2)
        if key not in cache:
            cache[key] = (*_newcombe(x1, n1, x2, n2, cl), *_exact_rd_ci(x1, n1, x2, n2, cl),
                          _boschloo_p(x1, n1, x2, n2))
        return cache[key]

    rows = []
    full = (tot["treatment"][0], tot["treatment"][1], tot["control"][0], tot["control"][1])
    rd_full = _rd(*full)
    for area in [None, *areas]:
        dt_ = counts.get((area, "treatment"), (0, 0))
        dc_ = counts.get((area, "control"), (0, 0))
        x1, n1 = full[0] - dt_[0], full[1] - dt_[1]
        x2, n2 = full[2] - dc_[0], full[3] - dc_[1]
        rd = _rd(x1, n1, x2, n2)
        nl, nh, el, eh, p = stats(x1, n1, x2, n2)
        rows.append({
            "dropped_area": area, "county": county.get(area) if area else None,
            "dropped_treatment": dt_[1], "dropped_control": dc_[1],
            "x1": x1, "n1": n1, "x2": x2, "n2": n2, "rd": rd, "rd_change": rd - rd_full,
            "newcombe_low": nl, "newcombe_high": nh, "exact_low": el, "exact_high": eh,
            "p_boschloo": p, "significant": (p < 1 - cl) if not math.isnan(p) else None,
            "sign_flipped": _sign(rd) != _sign(rd_full),
            "note": ("" if n1 and n2 else
                     "an arm is empty without this area: no difference, interval or test"),
        })
    frame = pl.DataFrame(rows, infer_schema_length=None)
    headline_ci = (frame["newcombe_low"][0], frame["newcombe_high"][0])
    headline = Result(
        method="risk_difference.newcombe", estimate=rd_full, ci=headline_ci,
        confidence_level=cl, pvalue=frame["p_boschloo"][0], n=(full[1], full[3]),
        label="Full cohort: risk difference, Newcombe interval, Boschloo p",
    )
    drops = frame.slice(1).filter(pl.col("dropped_treatment") + pl.col("dropped_control") > 0)
    notes = []
    if drops.height:
        lo = drops.sort("rd").row(0, named=True)
        hi = drops.sort("rd", descending=True).row(0, named=True)
        notes.append(
            f"dropping one area moves the difference between {_fmt(lo['rd'])} (without "
            f"{lo['dropped_area']}) and {_fmt(hi['rd'])} (without {hi['dropped_area']}); "
            f"full cohort {_fmt(rd_full)}"
        )
        flips = drops.filter(pl.col("sign_flipped"))["dropped_area"].to_list()
        if flips:
            notes.append("the sign of the difference changes without: " + ", ".join(flips))
        sig_full = headline.pvalue < 1 - cl
        changed = drops.filter(pl.col("significant") != sig_full)["dropped_area"].to_list()
        if changed:
            notes.append(f"significance (Boschloo p < {1 - cl:g}) changes without: "
                         + ", ".join(changed))
    empty = frame.slice(1).filter(pl.col("dropped_treatment") + pl.col("dropped_control") == 0)
    if empty.height:
        notes.append("areas without families in the comparison (dropping them changes "
                     "nothing): " + ", ".join(empty["dropped_area"].to_list()))
    return SensitivityTable(
        method="sensitivity.leave_one_area_out",
        title=f"Leave one area out: {outcome}"
              + (f" among {among}" if among else " among identified families"),
        frame=frame, headline=headline, notes=tuple(notes),
        meta={"outcome": outcome, "among": among, "confidence_level": cl},
    )


# --------------------------------------------------------------------------------------------
# the suite


@dataclass(frozen=True, eq=False)
class SensitivitySuite:
    """Every sensitivity analysis of one cohort (see :func:`sensitivity_suite`).

    Every part targets the primary estimand (the reached families' comparison) unless its
    ``estimand`` says otherwise.

    Attributes
    ----------
    estimand : Mapping
        The primary estimand the analyses target (population, outcome, contrast, conditional
        on).
    nonresponse : TippingPoint
        All completions of the unreached outcomes (kept as a figure; the worst case is its
        Manski bounds).
    pattern_mixture : SensitivityTable
        Delta-adjusted pattern mixture and the delta at which the conclusion changes.
    evalues : Mapping[str, Result]
        ``risk_ratio`` and ``risk_difference`` of the reached-only comparison.
    leave_one_out : SensitivityTable
    randomization : Result
        Randomization test of the primary statistic over the primary declared assignment.
    mechanisms : Mapping[str, Result]
        The same test under every declared mechanism (the primary one first).
    area_level : Result
        Randomization test of the area-level statistic (mean of area proportions) over the
        primary declared assignment.
    placebo_in_space, placebo_in_time : SensitivityTable
    """

    estimand: Mapping[str, Any]
    nonresponse: TippingPoint
    pattern_mixture: SensitivityTable
    evalues: Mapping[str, Result]
    leave_one_out: SensitivityTable
    randomization: Result
    mechanisms: Mapping[str, Result]
    area_level: Result
    placebo_in_space: SensitivityTable
    placebo_in_time: SensitivityTable

    def __post_init__(self) -> None:
        object.__setattr__(self, "evalues", MappingProxyType(dict(self.evalues)))
        object.__setattr__(self, "mechanisms", MappingProxyType(dict(self.mechanisms)))
        object.__setattr__(self, "estimand", _freeze(dict(self.estimand)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every part."""
        return {
            "estimand": _plain(self.estimand),
            "nonresponse": {**self.nonresponse.to_dict(), "estimand": _plain(self.estimand)},
            "pattern_mixture": self.pattern_mixture.to_dict(),
            "evalues": {k: v.to_dict() for k, v in self.evalues.items()},
            "leave_one_out": self.leave_one_out.to_dict(),
            "randomization": self.randomization.to_dict(),
            "randomization_mechanisms": {k: v.to_dict() for k, v in self.mechanisms.items()},
            "area_level": self.area_level.to_dict(),
            "placebo_in_space": self.placebo_in_space.to_dict(),
            "placebo_in_time": self.placebo_in_time.to_dict(),
        }

    def to_polars(self) -> pl.DataFrame:
        """One row per headline result (analysis, method, estimate, p-value, assignment space
        size and smallest attainable p where there is one, estimand, note)."""
        est = _plain(self.estimand)
        rows = [("nonresponse", self.nonresponse.observed, None),
                ("manski", self.nonresponse.manski, None),
                ("pattern_mixture_mar", self.pattern_mixture.headline, None),
                *((f"evalue_{k}", v, None) for k, v in self.evalues.items()),
                ("leave_one_out", self.leave_one_out.headline, None),
                *((f"randomization_{k}", v, v.extra.get("assignment_space"))
                  for k, v in self.mechanisms.items()),
                ("area_level_randomization", self.area_level,
                 self.area_level.extra.get("assignment_space"))]
        text = (f"{est.get('contrast', '')} in {est.get('outcome', '')} among "
                f"{est.get('population', '')}")
        return pl.DataFrame(
            [{"analysis": a, "method": r.method, "estimate": r.estimate, "ci_low": r.ci_low,
              "ci_high": r.ci_high, "pvalue": r.pvalue,
              "assignment_space": None if sp is None else sp.get("name"),
              "assignment_space_size": None if sp is None else sp.get("size"),
              "min_pvalue": None if sp is None else sp.get("min_pvalue"),
              "estimand": text, "conditional_on": est.get("conditional_on", ""),
              "note": r.note} for a, r, sp in rows if r is not None],
            schema={"analysis": pl.String, "method": pl.String, "estimate": pl.Float64,
                    "ci_low": pl.Float64, "ci_high": pl.Float64, "pvalue": pl.Float64,
                    "assignment_space": pl.String, "assignment_space_size": pl.Int64,
                    "min_pvalue": pl.Float64, "estimand": pl.String,
                    "conditional_on": pl.String, "note": pl.String},
        )

    def summary(self) -> str:
        """Plain-text summary of every part."""
        parts = [
            "Estimand: " + "; ".join(f"{k} {v}" for k, v in _plain(self.estimand).items() if v),
            self.nonresponse.summary(),
            self.pattern_mixture.summary(),
            "E-values: " + "; ".join(
                f"{k} {_fmt(v.estimate)} (limit closer to the null: "
                f"{_fmt(v.extra.get('evalue_ci', math.nan))})" for k, v in self.evalues.items()),
            self.leave_one_out.summary(),
            *(v.summary() for v in self.mechanisms.values()),
            self.area_level.summary(),
            self.placebo_in_space.summary(),
            self.placebo_in_time.summary(),
        ]
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "".join([
            self.nonresponse._repr_html_(), self.pattern_mixture._repr_html_(),
            "<div class='natexp-result'><strong>E-values</strong>",
            *(v._repr_html_() for v in self.evalues.values()), "</div>",
            self.leave_one_out._repr_html_(),
            *(v._repr_html_() for v in self.mechanisms.values()),
            self.area_level._repr_html_(), self.placebo_in_space._repr_html_(),
            self.placebo_in_time._repr_html_(),
        ])


def treated_units(cohort: Cohort, unit: str = "area") -> list[str]:
    """The units of the cohort's rollout in the treated role (the design's treatment counties
    for a design of kind ``treated_counties``; the units live by the end of the window for a
    ``staggered`` design)."""
    _, _, _, role = _schedule(cohort)
    return [str(u) for u, r in zip(cohort.rollout[unit].to_list(), role, strict=True) if r]


def primary_estimand(cohort: Cohort, *, outcome: str,
                     reached: str = "followup_reached") -> dict[str, str]:
    """The primary estimand of a cohort in words, with its counts computed from the cohort.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> primary_estimand(build_cohort(fam.lazy(), load_rollout(), default_design()),
    ...                  outcome=default_study().outcome.column)["population"]
    'the 35 of 85 identified families reached by the follow-up call (followup_reached)'
    """
    from natexp.data.cohort import arm_counts

    ident = arm_counts(cohort, reached, among=None)
    n_ident = ident["treatment"][1] + ident["control"][1]
    n_reached = ident["treatment"][0] + ident["control"][0]
    return {"population": f"the {n_reached} of {n_ident} identified families reached by the "
                          f"follow-up call ({reached})",
            "outcome": outcome,
            "contrast": "risk difference, treatment minus control (treatment: live at "
                        "reception in a treated-role area; control: not yet live)",
            "conditional_on": "being reached by the follow-up call", "unit": "family"}


def sensitivity_suite(cohort: Cohort, *, outcome: str,
                      reached: str = "followup_reached", confidence_level: float = 0.95,
                      assignments: Sequence[Any] | None = None,
                      placebo_months: Sequence[int] = (3, 6, 9, 12),
                      rng: Any = None) -> SensitivitySuite:
    """Run every sensitivity analysis of a cohort on the primary estimand (DoWhy is separate).

    * non-response: every completion of the unreached outcomes (:func:`tipping_point`, kept as
      a figure; its corners are the Manski bounds) and the delta-adjusted pattern mixture
      (:func:`delta_tipping_point`);
    * E-values of the reached-only comparison (:func:`evalues_2x2`);
    * leave one area out, among the reached (:func:`leave_one_area_out`);
    * randomization tests of the primary statistic over each declared assignment mechanism
      and of the area-level statistic over the primary one
      (:func:`natexp.causal.randomization.unit_randomization_test`);
    * in-space and in-time placebos among the control families
      (:func:`natexp.causal.randomization.placebo_in_space`, ``placebo_in_time``).

    Parameters
    ----------
    cohort : Cohort
    outcome, reached : str
    confidence_level : float, default 0.95
    assignments : sequence of AssignmentSpec, optional
        The declared mechanisms, primary first (default: any set of as many areas, each area
        its own block).
    placebo_months : sequence of int
        In-time placebo shifts.
    rng : numpy.random.Generator, int or None
        Used only when an assignment space is too large to enumerate.

    Returns
    -------
    SensitivitySuite

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> from natexp.causal.assignment import AssignmentSpec
    >>> fam, _ = generate()
    >>> suite = sensitivity_suite(build_cohort(fam.lazy(), load_rollout(), default_design()),
    ...                           outcome=default_study().outcome.column,
    ...                           assignments=[AssignmentSpec("county", block="county")],
    ...                           placebo_months=[6])
    >>> suite.nonresponse.counts
    NonresponseCounts(x1=4, r1=20, m1=26, x2=2, r2=15, m2=24)
    >>> suite.randomization.extra["assignment_space"]["size"]
    3
    """
    cl = _check_level(confidence_level)
    specs = list(assignments) if assignments else [AssignmentSpec("any_areas")]
    est = primary_estimand(cohort, outcome=outcome, reached=reached)
    counts = nonresponse_counts(cohort, outcome=outcome, reached=reached)
    tp = tipping_point(*counts, confidence_level=cl)
    pm = delta_tipping_point(*counts, confidence_level=cl)
    pm = SensitivityTable(pm.method, pm.title, pm.frame, pm.headline, pm.notes,
                          {**_plain(pm.meta), "estimand": {
                              **est, "population": f"all {sum(counts) - counts.x1 - counts.x2} "
                              f"identified families (the outcome of the "
                              f"{counts.m1 + counts.m2} not reached modelled)",
                              "conditional_on": ""}})
    ev = evalues_2x2(counts.x1, counts.r1, counts.x2, counts.r2, confidence_level=cl)
    loo = leave_one_area_out(cohort, outcome=outcome, among=reached, confidence_level=cl)
    mech: dict[str, Result] = {}
    spaces: dict[str, Any] = {}
    for spec in specs:
        try:
            space = enumerate_assignments(cohort.rollout, spec,
                                          treated_units(cohort, spec.unit), rng=rng)
        except InvalidInputError as err:  # the design does not match the declared blocks
            mech[spec.name] = Result(
                method="randomization.declared_assignment", label=f"Randomization test over "
                f"the declared assignment ({spec.name})", note=f"not run: {err}",
                extra={"assignment_space": {**spec.to_dict(), "size": None,
                                            "min_pvalue": None,
                                            "can_reach_significance": None},
                       "estimand": est})
            continue
        spaces[spec.name] = space
        mech[spec.name] = unit_randomization_test(cohort, space, outcome=outcome, among=reached,
                                                  confidence_level=cl, estimand=est)
    primary_space = spaces.get(specs[0].name)
    area_est = {**est, "contrast": "difference between the mean over treated areas and the "
                                   "mean over comparison areas of each area's uptake "
                                   "proportion", "unit": specs[0].unit}
    if primary_space is None:
        area = Result(method="randomization.declared_assignment",
                      note=mech[specs[0].name].note,
                      extra={**_plain(mech[specs[0].name].extra), "estimand": area_est})
        pis = SensitivityTable(
            "placebo.in_space", "In-space placebos", pl.DataFrame(),
            notes=(f"not run: {mech[specs[0].name].note}",),
            meta={"outcome": outcome, "among": reached, "confidence_level": cl,
                  "estimand": {**est, "population": "control-arm families"},
                  "assignment_space": {"name": f"placebo_{specs[0].name}", "size": None,
                                       "min_pvalue": None, "description": "not run"}})
    else:
        area = unit_randomization_test(cohort, primary_space, outcome=outcome, among=reached,
                                       statistic="unit_mean", confidence_level=cl,
                                       estimand=area_est)
        pis = placebo_in_space(cohort, primary_space, outcome=outcome, among=reached,
                               confidence_level=cl)
    pit = placebo_in_time(cohort, shifts=placebo_months, outcome=outcome, among=reached,
                          confidence_level=cl)
    return SensitivitySuite(estimand=est, nonresponse=tp, pattern_mixture=pm, evalues=ev,
                            leave_one_out=loo, randomization=mech[specs[0].name],
                            mechanisms=mech, area_level=area, placebo_in_space=pis,
                            placebo_in_time=pit)
