"""Staggered-rollout panel estimators: TWFE, Callaway-Sant'Anna ATT(g,t), few-cluster inference.

A programme that goes live area by area (as the example study did) leaves
areas not yet live as a comparison group. This module estimates programme effects on an area x
period panel (:mod:`natexp.data.panel`) or on any long panel normalised by
:func:`natexp.data.panel.panel_from_frame`.

Estimators
----------
:func:`twfe`
    Two-way fixed effects with :class:`linearmodels.panel.PanelOLS` (unit and period effects),
    CR1 standard errors clustered by unit with the fixest/reghdfe small-sample convention
    (fixed effects nested in the clusters not counted; ``small_sample="areg"`` counts them, as
    Stata ``areg``) and t(G - 1) critical values. Its note states its known bias under
    staggered timing with heterogeneous effects (Goodman-Bacon 2021; de Chaisemartin and
    D'Haultfoeuille 2020), and ``extra`` carries the de Chaisemartin-D'Haultfoeuille weights.
:func:`att_gt` and :func:`aggte`
    Callaway and Sant'Anna (2021) group-time average treatment effects with the doubly robust
    2x2 estimator of Sant'Anna and Zhao (2020) (with no covariates it is the unconditional DiD),
    analytic influence-function standard errors computed as R's ``did`` computes them
    (``bstrap = FALSE``), the Wald pre-test of parallel trends, and the ``simple``, ``dynamic``
    (event study), ``group`` and ``calendar`` aggregations with their standard errors, behind a
    cohort-size guard (cohorts under ``min_cohort_size`` units, 5 by default as R ``did``, are
    named and excluded unless ``small_cohorts="include"``).
:func:`twfe_wcr` and :func:`aggte_wcr`
    Wild cluster restricted (WCR) bootstrap-t with Rademacher or Webb weights, the null
    imposed, every weight pattern enumerated when they fit in ``n_boot``, and intervals by test
    inversion (Roodman, MacKinnon, Nielsen and Webb 2019): for the TWFE coefficient and for
    any Callaway-Sant'Anna aggregate or effect (a studentized score bootstrap with the null
    imposed on the cells' 2x2 regressions, Kline and Santos 2012).
:func:`pretrend_check`
    Event-study leads and their mean tested with the WCR bootstrap, with Roth's (2022)
    detectable-slope statement; works where the Wald pre-test is singular.
:func:`wild_bootstrap`
    R ``did``'s multiplier bootstrap with cluster-level weights (unstudentized, null not
    imposed), kept for comparison with R.
:func:`randomization_inference`
    Randomization inference over the go-live dates within declared blocks (the assignment
    space), in the spirit of Roth and Sant'Anna (2023); exact enumeration when feasible, with
    the size of the space and the smallest attainable p-value.

Why hand-written: the project's chosen dependencies (DESIGN.md) have no Callaway-Sant'Anna
estimator; the Python ports (csdid 0.4, moderndid 0.4, diff-diff) are young 0.x projects outside
that list. The code below follows R ``did``/``DRDID`` and is tested against their published
output on ``mpdta``. The WCR bootstrap is written here too (``wildboottest`` and ``pyfixest``
are outside that list, and neither bootstraps Callaway-Sant'Anna aggregates); the tests check it
against ``wildboottest``'s full enumeration and the CR1 conventions against ``pyfixest``.

Whenever a treated cohort contains a single unit (in the example study one district went live
alone), every result carries a diagnostic: influence-function and cluster-robust standard errors
then ignore the cohort's own variability and are over-precise.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from natexp.causal._rng import as_generator
from natexp.causal.result import ALTERNATIVES, InvalidInputError, Result, _fmt
from natexp.data.panel import panel_from_frame

CONTROL_GROUPS = ("nevertreated", "notyettreated")
BASE_PERIODS = ("varying", "universal")
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
BOOT_WEIGHTS = ("rademacher", "webb")

TWFE_NOTE = (
    "Two-way fixed effects is a weighted average of all 2x2 comparisons, including 'forbidden' "
    "ones that use already-treated units as controls; under staggered timing with effects that "
    "vary across cohorts or over time it is biased and can even take the wrong sign "
    "(Goodman-Bacon 2021; de Chaisemartin and D'Haultfoeuille 2020). Use att_gt/aggte for the "
    "effect and read this estimate as a descriptive benchmark."
)

_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


# --------------------------------------------------------------------------------------------
# inference helpers


def _check_level(confidence_level: float) -> float:
    level = float(confidence_level)
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    return level


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise InvalidInputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def _normal_inference(
    est: float, se: float, level: float, alternative: str
) -> tuple[tuple[float, float], float, float]:
    """Wald interval, z statistic and p-value under ``alternative``."""
    if not (math.isfinite(est) and math.isfinite(se) and se > 0):
        return (math.nan, math.nan), math.nan, math.nan
    z = est / se
    if alternative == "two-sided":
        q = stats.norm.ppf(0.5 + level / 2)
        return (est - q * se, est + q * se), z, float(2 * stats.norm.sf(abs(z)))
    q = stats.norm.ppf(level)
    if alternative == "greater":
        return (est - q * se, math.inf), z, float(stats.norm.sf(z))
    return (-math.inf, est + q * se), z, float(stats.norm.cdf(z))


def _se_from_if(psi: np.ndarray, codes: np.ndarray, n_clusters: int, n: int) -> np.ndarray:
    """Standard errors from influence functions: sqrt(sum over clusters of (sum psi)^2) / n.

    With one unit per cluster this is R ``did``'s ``sqrt(mean(psi^2) / n)``. ``psi`` is (n,) or
    (n, k); returns a scalar array or (k,). Values below ``10 * sqrt(eps)`` become NaN, as in
    ``did``.
    """
    psi2 = psi.reshape(len(psi), -1)
    sums = np.zeros((n_clusters, psi2.shape[1]))
    np.add.at(sums, codes, psi2)
    se = np.sqrt((sums**2).sum(axis=0)) / n
    se = np.where(se <= math.sqrt(np.finfo(float).eps) * 10, np.nan, se)
    return se if psi.ndim > 1 else se[0]


def _vcov_from_if(psi: np.ndarray, codes: np.ndarray, n_clusters: int, n: int) -> np.ndarray:
    sums = np.zeros((n_clusters, psi.shape[1]))
    np.add.at(sums, codes, psi)
    return sums.T @ sums / n**2


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------------
# data preparation


@dataclass(frozen=True)
class _Prepared:
    Y: np.ndarray  # (n, T) outcomes
    X: np.ndarray | None  # (n, T, k) covariates or None
    G: np.ndarray  # (n,) first treated period, NaN = never treated
    times: np.ndarray  # (T,) sorted periods
    units: tuple  # unit ids, length n
    codes: np.ndarray  # (n,) cluster codes 0..C-1
    n_clusters: int
    diagnostics: tuple[str, ...]
    notes: tuple[str, ...]


def _prepare(
    panel: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    covariates: Sequence[str],
    never_treated: int | None,
    cluster: str | None,
) -> _Prepared:
    frame = panel.collect() if isinstance(panel, pl.LazyFrame) else panel
    canon = panel_from_frame(
        frame,
        unit=unit,
        time=time,
        first_treated=first_treated,
        outcome=outcome,
        covariates=covariates,
        never_treated=never_treated,
    )
    diagnostics: list[str] = []
    notes: list[str] = []
    times = np.sort(canon["time"].unique().to_numpy()).astype(float)
    n_t = len(times)
    if n_t < 2:
        raise InvalidInputError("panel: at least two periods are needed")

    # balance the panel: keep units observed, with a non-missing outcome and covariates, in
    # every period (R did drops the others too, with a warning)
    cols = ["outcome", *covariates]
    complete = canon.group_by("unit").agg(
        pl.len().alias("rows"),
        pl.all_horizontal(*(pl.col(c).is_not_null() & pl.col(c).is_not_nan() for c in cols))
        .all()
        .alias("ok"),
    )
    bad = complete.filter(~pl.col("ok") | (pl.col("rows") != n_t))["unit"].to_list()
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        diagnostics.append(
            f"{len(bad)} unit(s) dropped for a missing outcome/covariate or period ({shown}); "
            "the panel must be balanced"
        )
        canon = canon.filter(~pl.col("unit").is_in(bad))
    if canon.height == 0:
        raise InvalidInputError("panel: no unit is observed in every period")

    # first treated after the last period: never treated within the data (as R did)
    last = times[-1]
    late = canon.filter(pl.col("first_treated") > last)["unit"].unique().to_list()
    if late:
        diagnostics.append(
            f"{len(late)} unit(s) first treated after the last period are treated as never treated"
        )
        canon = canon.with_columns(
            pl.when(pl.col("first_treated") > last).then(None).otherwise(pl.col("first_treated"))
            .alias("first_treated")
        )
    # always treated (treated in the first period): no untreated period, dropped (as R did)
    always = canon.filter(pl.col("first_treated") <= times[0])["unit"].unique().to_list()
    if always:
        diagnostics.append(
            f"{len(always)} unit(s) already treated in the first period were dropped "
            "(no pre-treatment period)"
        )
        canon = canon.filter(~pl.col("unit").is_in(always))
    if canon.height == 0:
        raise InvalidInputError("panel: every unit is treated in the first period")

    canon = canon.sort("unit", "time")
    units = canon["unit"].unique(maintain_order=True).to_list()
    n = len(units)
    Y = canon["outcome"].to_numpy().reshape(n, n_t)
    X = None
    if covariates:
        X = canon.select(covariates).to_numpy().reshape(n, n_t, len(covariates))
    G = (
        canon.group_by("unit", maintain_order=True)
        .agg(pl.col("first_treated").first())["first_treated"]
        .cast(pl.Float64)
        .fill_null(np.nan)
        .to_numpy()
    )

    if cluster is None:
        codes = np.arange(n)
        n_clusters = n
    else:
        if cluster not in frame.columns:
            raise InvalidInputError(f"panel: cluster column {cluster!r} is missing")
        cmap = frame.select(pl.col(unit).alias("unit"), pl.col(cluster).alias("cl")).unique()
        if cmap.group_by("unit").len().filter(pl.col("len") > 1).height:
            raise InvalidInputError(f"panel: cluster {cluster!r} must be constant within a unit")
        cl = pl.DataFrame({"unit": units}).join(cmap, on="unit", how="left")["cl"]
        if cl.null_count():
            raise InvalidInputError(f"panel: cluster {cluster!r} has missing values")
        _, codes = np.unique(cl.cast(pl.String).to_numpy(), return_inverse=True)
        n_clusters = int(codes.max()) + 1

    for g in np.unique(G[np.isfinite(G)]):
        if int((G == g).sum()) == 1:
            diagnostics.append(
                f"cohort first treated at {int(g)} contains a single unit: its influence-function "
                "(and cluster-robust) standard errors ignore that unit's own variability and are "
                "over-precise; prefer randomization_inference"
            )
    if n_clusters < 30:
        diagnostics.append(
            f"only {n_clusters} clusters: asymptotic standard errors are unreliable with few "
            "clusters; see aggte_wcr, twfe_wcr and randomization_inference"
        )
    return _Prepared(Y, X, G, times, tuple(units), codes, n_clusters, tuple(diagnostics),
                     tuple(notes))


# --------------------------------------------------------------------------------------------
# the 2x2 doubly robust DiD (Sant'Anna and Zhao 2020; R DRDID::drdid_panel)


def _drdid_panel(
    dy: np.ndarray, D: np.ndarray, X: np.ndarray, trim_level: float = 0.995
) -> tuple[float, np.ndarray, str]:
    """Locally efficient DR DiD for panel data, with its influence function.

    ``X`` includes the intercept column. With the intercept only it is the unconditional DiD
    ``mean(dy | D=1) - mean(dy | D=0)``. Returns (att, influence function, note).
    """
    n, k = X.shape
    if k == 1:
        p = D.mean()
        ps = np.full(n, p)
        hessian = np.array([[1.0 / (p * (1 - p))]])
    else:
        import statsmodels.api as sm

        try:
            fit = sm.Logit(D, X).fit(disp=0, method="newton", maxiter=100)
        except Exception as exc:  # perfect separation, singular matrix
            return math.nan, np.zeros(n), f"propensity score not estimable: {exc}"
        ps = np.asarray(fit.predict(X), dtype=float)
        wgt = ps * (1 - ps)
        try:
            hessian = np.linalg.inv((X * wgt[:, None]).T @ X / n)
        except np.linalg.LinAlgError:
            return math.nan, np.zeros(n), "propensity-score Hessian is singular"
    ps = np.minimum(ps, 1 - 1e-6)
    trim = np.where(D == 1, True, ps < trim_level)

    ctrl = D == 0
    if ctrl.sum() < k:
        return math.nan, np.zeros(n), "fewer comparison units than outcome-model parameters"
    xtx = X[ctrl].T @ X[ctrl]
    if np.linalg.matrix_rank(xtx) < k:
        return math.nan, np.zeros(n), "outcome regression on comparison units is singular"
    beta = np.linalg.solve(xtx, X[ctrl].T @ dy[ctrl])
    out_delta = X @ beta

    w_treat = trim * D
    w_cont = trim * ps * (1 - D) / (1 - ps)
    if w_cont.sum() <= 0:
        return math.nan, np.zeros(n), "no comparison unit left after propensity-score trimming"
    att_treat = w_treat * (dy - out_delta)
    att_cont = w_cont * (dy - out_delta)
    eta_treat = att_treat.mean() / w_treat.mean()
    eta_cont = att_cont.mean() / w_cont.mean()
    att = eta_treat - eta_cont

    # influence function (DRDID::drdid_panel)
    w_ols = 1.0 - D
    asy_ols = (w_ols * (dy - out_delta))[:, None] * X @ np.linalg.inv((X * w_ols[:, None]).T @ X / n)
    asy_ps = ((D - ps)[:, None] * X) @ hessian
    inf_treat_1 = att_treat - w_treat * eta_treat
    m1 = (w_treat[:, None] * X).mean(axis=0)
    inf_treat = (inf_treat_1 - asy_ols @ m1) / w_treat.mean()
    inf_cont_1 = att_cont - w_cont * eta_cont
    m2 = ((w_cont * (dy - out_delta - eta_cont))[:, None] * X).mean(axis=0)
    m3 = (w_cont[:, None] * X).mean(axis=0)
    inf_control = (inf_cont_1 + asy_ps @ m2 - asy_ols @ m3) / w_cont.mean()
    return float(att), inf_treat - inf_control, ""


# --------------------------------------------------------------------------------------------
# group-time cells


@dataclass(frozen=True)
class _Cells:
    group: np.ndarray
    time: np.ndarray
    base: np.ndarray
    att: np.ndarray
    inf: np.ndarray  # (n, K)
    n_treated: np.ndarray
    n_control: np.ndarray
    notes: tuple[str, ...]
    design: tuple = ()  # per cell: (treated mask, comparison mask, period, base) or None


def _compute_cells(
    prep: _Prepared,
    G: np.ndarray,
    *,
    control_group: str,
    anticipation: int,
    base_period: str,
    with_covariates: bool = True,
    with_inf: bool = True,
) -> _Cells:
    Y, times = prep.Y, prep.times
    n, n_t = Y.shape
    glist = np.unique(G[np.isfinite(G)])
    never = ~np.isfinite(G)
    rows: list[tuple] = []
    infs: list[np.ndarray] = []
    design: list[tuple | None] = []
    for g in glist:
        pre_idx = np.nonzero(times + anticipation < g)[0]
        base_post = int(pre_idx[-1]) if len(pre_idx) else None
        currents = range(1, n_t) if base_period == "varying" else range(n_t)
        for c in currents:
            post = g <= times[c]
            base = (base_post if post else c - 1) if base_period == "varying" else base_post
            if base is None:
                rows.append((g, times[c], math.nan, math.nan, 0, 0,
                             "no pre-treatment base period (anticipation)"))
                infs.append(np.zeros(n))
                design.append(None)
                continue
            if base_period == "universal" and base == c:
                rows.append((g, times[c], times[base], 0.0, 0, 0,
                             "reference period of the universal base (0 by construction)"))
                infs.append(np.zeros(n))
                design.append(None)
                continue
            treat = G == g
            if control_group == "nevertreated":
                ctrl = never
            else:
                horizon = max(times[c], times[base]) + anticipation
                ctrl = never | ((G > horizon) & (G != g))
            n_tr, n_co = int(treat.sum()), int(ctrl.sum())
            if n_tr == 0 or n_co == 0:
                rows.append((g, times[c], times[base], math.nan, n_tr, n_co,
                             "no comparison units" if n_co == 0 else "no treated units"))
                infs.append(np.zeros(n))
                design.append(None)
                continue
            sub = treat | ctrl
            dy = Y[sub, c] - Y[sub, base]
            if with_covariates and prep.X is not None:
                xb = prep.X[sub, min(c, base), :]
                X = np.column_stack([np.ones(sub.sum()), xb])
            else:
                X = np.ones((int(sub.sum()), 1))
            if not with_inf and X.shape[1] == 1:
                # point estimate only (randomization inference): the difference of mean changes
                D = treat[sub]
                att, inf_sub, note = float(dy[D].mean() - dy[~D].mean()), None, ""
                rows.append((g, times[c], times[base], att, n_tr, n_co, note))
                infs.append(np.zeros(0))
                design.append(None)
                continue
            att, inf_sub, note = _drdid_panel(dy, treat[sub].astype(float), X)
            inf_full = np.zeros(n)
            if math.isfinite(att):
                inf_full[sub] = (n / sub.sum()) * inf_sub
            rows.append((g, times[c], times[base], att, n_tr, n_co, note))
            infs.append(inf_full)
            design.append((treat, ctrl, c, base) if math.isfinite(att) else None)
    if not rows:
        raise InvalidInputError("panel: no treated cohort with a pre-treatment period")
    arr = list(zip(*rows, strict=True))
    return _Cells(
        group=np.array(arr[0], dtype=float),
        time=np.array(arr[1], dtype=float),
        base=np.array(arr[2], dtype=float),
        att=np.array(arr[3], dtype=float),
        inf=(np.column_stack(infs) if with_inf else np.zeros((n, len(rows)))),
        n_treated=np.array(arr[4], dtype=int),
        n_control=np.array(arr[5], dtype=int),
        notes=tuple(arr[6]),
        design=tuple(design),
    )


# --------------------------------------------------------------------------------------------
# containers


def _container_html(title: str, frame: pl.DataFrame, notes: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    extra = "".join(f"<p>{html.escape(n)}</p>" for n in notes if n)
    return (f"<div class='natexp-result'><strong>{html.escape(title)}</strong>"
            f"<table><tr>{head}</tr>{body}</table>{extra}</div>")


def _row(r: Result, **keys: Any) -> dict[str, Any]:
    return {
        **keys,
        "estimate": r.estimate,
        "se": float(r.extra.get("se", math.nan)),
        "ci_low": r.ci[0],
        "ci_high": r.ci[1],
        "statistic": r.statistic,
        "pvalue": r.pvalue,
        "note": r.note,
    }


@dataclass(frozen=True)
class GroupTimeResult:
    """Immutable set of Callaway-Sant'Anna group-time ATTs, from :func:`att_gt`.

    Attributes
    ----------
    cells : tuple of Result
        One per (group, time) cell; ``extra`` holds ``group``, ``time``, ``base_time``,
        ``event_time``, ``post`` and ``se``.
    pretest : Result
        Wald pre-test that all pre-treatment ATT(g,t) are zero (``statistic`` chi-squared).
    control_group, base_period : str
    anticipation : int
    confidence_level : float
    alternative : str
    n_units, n_clusters : int
    diagnostics : tuple of str
    """

    cells: tuple[Result, ...]
    pretest: Result
    control_group: str
    base_period: str
    anticipation: int
    confidence_level: float
    alternative: str
    n_units: int
    n_clusters: int
    diagnostics: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    _group: np.ndarray = field(repr=False, compare=False, default=None)
    _time: np.ndarray = field(repr=False, compare=False, default=None)
    _att: np.ndarray = field(repr=False, compare=False, default=None)
    _inf: np.ndarray = field(repr=False, compare=False, default=None)
    _unit_group: np.ndarray = field(repr=False, compare=False, default=None)
    _codes: np.ndarray = field(repr=False, compare=False, default=None)
    _Y: np.ndarray = field(repr=False, compare=False, default=None)
    _design: tuple = field(repr=False, compare=False, default=())

    @property
    def influence(self) -> np.ndarray:
        """Read-only (n_units, n_cells) influence-function matrix (R ``did``'s ``inffunc``)."""
        return self._inf

    def aggte(self, type: str = "group", **kwargs: Any) -> AggregateResult:  # noqa: A002
        """Aggregate the cells; see :func:`aggte`."""
        return aggte(self, type=type, **kwargs)

    def to_polars(self) -> pl.DataFrame:
        """One row per cell: group, time, base_time, event_time, post, estimate, se, ci, p."""
        return pl.DataFrame(
            [
                _row(
                    r,
                    group=r.extra["group"],
                    time=r.extra["time"],
                    base_time=r.extra["base_time"],
                    event_time=r.extra["event_time"],
                    post=r.extra["post"],
                )
                for r in self.cells
            ],
            infer_schema_length=None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: cells, pre-test, settings and diagnostics."""
        return {
            "method": "att_gt",
            "cells": [r.to_dict() for r in self.cells],
            "pretest": self.pretest.to_dict(),
            "control_group": self.control_group,
            "base_period": self.base_period,
            "anticipation": self.anticipation,
            "covariates": list(self.covariates),
            "confidence_level": self.confidence_level,
            "alternative": self.alternative,
            "n_units": self.n_units,
            "n_clusters": self.n_clusters,
            "diagnostics": list(self.diagnostics),
        }

    def summary(self) -> str:
        """Plain-text table of the cells, the pre-test and the diagnostics."""
        lines = [
            f"Group-time ATTs (Callaway & Sant'Anna 2021), control: {self.control_group}, "
            f"base period: {self.base_period}, anticipation: {self.anticipation}, "
            f"{self.n_units} units",
            f"{'group':>8} {'time':>8} {'ATT(g,t)':>10} {'SE':>9}  CI",
        ]
        for r in self.cells:
            lines.append(
                f"{r.extra['group']:>8} {r.extra['time']:>8} {_fmt(r.estimate):>10} "
                f"{_fmt(r.extra['se']):>9}  ({_fmt(r.ci[0])}, {_fmt(r.ci[1])})"
                + (f"  [{r.note}]" if r.note else "")
            )
        lines.append(self.pretest.summary())
        lines.extend(f"  ! {d}" for d in self.diagnostics)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _container_html("Group-time ATTs (Callaway & Sant'Anna 2021)", self.to_polars(),
                               [self.pretest.summary(), *self.diagnostics])


@dataclass(frozen=True)
class AggregateResult:
    """Immutable aggregation of group-time ATTs, from :func:`aggte`.

    Attributes
    ----------
    type : str
        ``"simple"``, ``"dynamic"``, ``"group"`` or ``"calendar"``.
    overall : Result
        The overall ATT of this aggregation (``extra["se"]`` holds its standard error).
    effects : tuple of Result
        By event time (dynamic), cohort (group) or period (calendar); empty for simple.
    diagnostics : tuple of str
    cohort_sizes : tuple of (cohort, units)
        Units in every treated cohort.
    min_cohort_size : int
        The cohort-size guard's minimum.
    excluded_cohorts : tuple
        Cohorts below the minimum left out of this aggregation (empty when included).
    small_cohorts : tuple
        Every cohort below the minimum, excluded or not.
    """

    type: str
    overall: Result
    effects: tuple[Result, ...]
    diagnostics: tuple[str, ...]
    n_units: int
    n_clusters: int
    cohort_sizes: tuple = ()
    min_cohort_size: int = 1
    excluded_cohorts: tuple = ()
    small_cohorts: tuple = ()
    _inf_overall: np.ndarray = field(repr=False, compare=False, default=None)
    _inf_effects: np.ndarray = field(repr=False, compare=False, default=None)
    _codes: np.ndarray = field(repr=False, compare=False, default=None)
    _source: Any = field(repr=False, compare=False, default=None)
    _window: tuple = field(repr=False, compare=False, default=(-math.inf, math.inf))
    _cache: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def influence(self) -> np.ndarray:
        """Read-only influence function of the overall ATT, one value per unit."""
        return self._inf_overall

    def to_polars(self) -> pl.DataFrame:
        """One row for the overall ATT (``level = "overall"``) and one per effect."""
        key = {"dynamic": "event_time", "group": "group", "calendar": "time"}.get(self.type)
        rows = [_row(self.overall, level="overall", value=None)]
        rows += [_row(r, level=key, value=r.extra[key]) for r in self.effects]
        return pl.DataFrame(rows, infer_schema_length=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "method": f"aggte.{self.type}",
            "overall": self.overall.to_dict(),
            "effects": [r.to_dict() for r in self.effects],
            "n_units": self.n_units,
            "n_clusters": self.n_clusters,
            "cohort_guard": {
                "min_cohort_size": self.min_cohort_size,
                "cohort_sizes": [[_num(g), k] for g, k in self.cohort_sizes],
                "small_cohorts": [_num(g) for g in self.small_cohorts],
                "excluded_cohorts": [_num(g) for g in self.excluded_cohorts],
            },
            "diagnostics": list(self.diagnostics),
        }

    def summary(self) -> str:
        """Plain-text summary: the overall ATT, then each effect."""
        lines = [self.overall.summary()]
        for r in self.effects:
            lines.append("  " + r.summary().split("\n")[0])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _container_html(self.overall.label, self.to_polars(), self.diagnostics)


# --------------------------------------------------------------------------------------------
# Callaway and Sant'Anna


def att_gt(
    panel: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str = "rate",
    unit: str = "area",
    time: str = "period_index",
    first_treated: str = "first_treated",
    never_treated: int | None = None,
    covariates: Sequence[str] = (),
    control_group: str = "nevertreated",
    anticipation: int = 0,
    base_period: str = "varying",
    cluster: str | None = None,
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> GroupTimeResult:
    """Callaway and Sant'Anna (2021) group-time average treatment effects ATT(g,t).

    Each ATT(g,t) compares the change in outcome of cohort ``g`` (units first treated in period
    ``g``) from a base period to period ``t`` with the change among comparison units, using the
    doubly robust estimator of Sant'Anna and Zhao (2020) (``DRDID::drdid_panel``; with no
    covariates it is the plain difference of mean changes). Standard errors come from the
    influence function exactly as R ``did`` computes them with ``bstrap = FALSE``.

    Parameters
    ----------
    panel : polars.DataFrame or polars.LazyFrame
        Long panel, one row per unit and period; the column defaults fit
        :func:`natexp.data.panel.area_period_panel`. Units with a missing outcome/covariate or period are dropped (with a
        diagnostic); units treated in the first period are dropped (no pre-period).
    outcome, unit, time, first_treated : str
        Column names (see :func:`natexp.data.panel.panel_from_frame`).
    never_treated : int, optional
        Extra code of ``first_treated`` meaning never treated (``0`` for R ``did`` data).
    covariates : sequence of str
        Covariates for the doubly robust estimator (logit propensity score and linear outcome
        model), taken in the earlier of the two periods compared.
    control_group : {"nevertreated", "notyettreated"}
        Comparison units: never treated only, or also units not yet treated by the later of the
        two periods (plus ``anticipation``).
    anticipation : int
        Number of periods before go-live in which units may already react.
    base_period : {"varying", "universal"}
        Post-treatment cells always compare with period ``g - 1 - anticipation``; pre-treatment
        cells compare with the previous period (varying) or with the same base (universal).
    cluster : str, optional
        Column with a unit-level cluster; standard errors are clustered on it (default: unit).
    confidence_level : float
        Coverage of the pointwise Wald intervals.
    alternative : {"two-sided", "less", "greater"}

    Returns
    -------
    GroupTimeResult

    Raises
    ------
    InvalidInputError
        On a bad option, a malformed panel, or no never-treated unit with
        ``control_group="nevertreated"``.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3], "t": [1, 2] * 3,
    ...                    "g": [2, 2, 0, 0, 0, 0], "y": [1.0, 3.0, 1.0, 1.5, 2.0, 2.5]})
    >>> r = att_gt(df, outcome="y", unit="u", time="t", first_treated="g", never_treated=0)
    >>> round(r.cells[0].estimate, 6)
    1.5
    """
    if control_group not in CONTROL_GROUPS:
        raise InvalidInputError(f"control_group must be one of {CONTROL_GROUPS}")
    if base_period not in BASE_PERIODS:
        raise InvalidInputError(f"base_period must be one of {BASE_PERIODS}")
    if isinstance(anticipation, bool) or int(anticipation) != anticipation or anticipation < 0:
        raise InvalidInputError("anticipation must be a non-negative whole number")
    level = _check_level(confidence_level)
    alternative = _check_alternative(alternative)
    covariates = tuple(covariates)
    prep = _prepare(panel, outcome=outcome, unit=unit, time=time, first_treated=first_treated,
                    covariates=covariates, never_treated=never_treated, cluster=cluster)
    if control_group == "nevertreated" and np.isfinite(prep.G).all():
        raise InvalidInputError(
            "no never-treated unit in the panel: use control_group='notyettreated'"
        )
    cells = _compute_cells(prep, prep.G, control_group=control_group,
                           anticipation=int(anticipation), base_period=base_period)
    return _group_time_result(prep, cells, control_group=control_group,
                              anticipation=int(anticipation), base_period=base_period,
                              level=level, alternative=alternative, covariates=covariates)


def _group_time_result(prep, cells, *, control_group, anticipation, base_period, level,
                       alternative, covariates) -> GroupTimeResult:
    n = prep.Y.shape[0]
    att = cells.att
    finite = np.isfinite(att)
    inf = np.where(finite[None, :], cells.inf, 0.0)
    se = _se_from_if(inf, prep.codes, prep.n_clusters, n)
    se = np.where(finite, se, np.nan)
    method = "att_gt.dr" if covariates else "att_gt.unconditional"
    results = []
    single = {float(g) for g in np.unique(prep.G[np.isfinite(prep.G)])
              if int((prep.G == g).sum()) == 1}
    for k in range(len(att)):
        g, t = cells.group[k], cells.time[k]
        ci, z, p = _normal_inference(att[k], se[k], level, alternative)
        note = cells.notes[k]
        if math.isfinite(att[k]) and not math.isfinite(se[k]) and not note:
            note = "standard error is zero or undefined (no variation in the influence function)"
        diags = [d for d in prep.diagnostics if g in single and "single unit" in d
                 and f"at {int(g)} " in d]
        results.append(
            Result(
                method=method,
                estimate=att[k],
                ci=ci,
                confidence_level=level,
                statistic=z,
                pvalue=p,
                alternative=alternative,
                n=(int(cells.n_treated[k]), int(cells.n_control[k])),
                label=f"ATT(g={_num(g)}, t={_num(t)})",
                note=note,
                diagnostics=tuple(diags),
                extra={
                    "group": _num(g),
                    "time": _num(t),
                    "base_time": _num(cells.base[k]),
                    "event_time": _num(t - g),
                    "post": bool(g <= t),
                    "se": float(se[k]),
                },
            )
        )

    # Wald pre-test of parallel trends (R did: W = n a' V^-1 a, V = IF'IF / n)
    pre = (cells.group > cells.time) & finite & np.isfinite(se)
    q = int(pre.sum())
    if q == 0:
        pretest = Result(method="att_gt.pretest_wald", label="Wald pre-test of parallel trends",
                         note="no pre-treatment cell with a standard error")
    else:
        vcov = _vcov_from_if(inf[:, pre], prep.codes, prep.n_clusters, n)
        a = att[pre]
        if np.linalg.matrix_rank(vcov) < q:
            pretest = Result(method="att_gt.pretest_wald", label="Wald pre-test of parallel "
                             "trends", note="pre-treatment covariance matrix is singular",
                             n=(q,))
        else:
            w = float(a @ np.linalg.solve(vcov, a))
            pretest = Result(method="att_gt.pretest_wald",
                             label="Wald pre-test of parallel trends", statistic=w,
                             pvalue=float(stats.chi2.sf(w, q)), n=(q,), extra={"df": q})
    return GroupTimeResult(
        cells=tuple(results),
        pretest=pretest,
        control_group=control_group,
        base_period=base_period,
        anticipation=anticipation,
        confidence_level=level,
        alternative=alternative,
        n_units=n,
        n_clusters=prep.n_clusters,
        diagnostics=prep.diagnostics,
        covariates=covariates,
        _group=_readonly(cells.group),
        _time=_readonly(cells.time),
        _att=_readonly(att),
        _inf=_readonly(inf),
        _unit_group=_readonly(prep.G),
        _codes=np.asarray(prep.codes),
        _Y=_readonly(prep.Y),
        _design=cells.design,
    )


def _num(x: float) -> int | float:
    """Present a whole float as int (periods, cohorts)."""
    if isinstance(x, float | np.floating) and math.isfinite(x) and float(x).is_integer():
        return int(x)
    return float(x)


# --------------------------------------------------------------------------------------------
# aggregation (R did::aggte)


def _wif(keep: np.ndarray, pg: np.ndarray, unit_group: np.ndarray, labels: np.ndarray):
    """Influence function of the estimated weights P(G=g) (R did's ``wif``), (n, len(keep))."""
    ind = (unit_group[:, None] == labels[keep][None, :]).astype(float)
    pgk = pg[keep]
    s = pgk.sum()
    if1 = (ind - pgk) / s
    if2 = (ind - pgk).sum(axis=1)[:, None] * (pgk / s**2)[None, :]
    return if1 - if2


def _aggregate_arrays(att, inf, group, time, unit_group, type, min_e, max_e, with_inf=True,
                      excluded=()):
    """Return (overall, overall_if, [(key, est, if)], notes); cohorts in ``excluded`` are
    left out (the cohort-size guard)."""
    finite = np.isfinite(att)
    skip = (np.isin(group, np.asarray(list(excluded), dtype=float)) if len(excluded)
            else np.zeros(len(att), dtype=bool))
    notes = []
    if not (finite | skip).all():
        notes.append(f"{int((~finite & ~skip).sum())} cell(s) without an estimate left out")
    finite = finite & ~skip
    glist = np.unique(unit_group[np.isfinite(unit_group)])
    pg_g = np.array([np.mean(unit_group == g) for g in glist])
    pos = np.clip(np.searchsorted(glist, group), 0, max(len(glist) - 1, 0))
    pg = (np.where(np.isin(group, glist), pg_g[pos], 0.0) if len(glist)
          else np.zeros(len(group)))
    event = time - group
    n = inf.shape[0]

    def combine(idx, weights, wif_labels=None, wif_pg=None, atts=None, infs=None, ug=None):
        atts = att if atts is None else atts
        infs = inf if infs is None else infs
        est = float(np.sum(atts[idx] * weights))
        if not with_inf:
            return est, None
        psi = infs[:, idx] @ weights
        if wif_labels is not None:
            psi = psi + _wif(idx, wif_pg, ug, wif_labels) @ atts[idx]
        return est, psi

    effects = []
    if type == "simple":
        idx = np.nonzero(finite & (group <= time) & (event <= max_e))[0]
        if len(idx) == 0:
            return math.nan, np.zeros(n), [], [*notes, "no post-treatment cell"]
        w = pg[idx] / pg[idx].sum()
        est, psi = combine(idx, w, group, pg, ug=unit_group)
        return est, psi, [], notes
    if type == "dynamic":
        eseq = np.unique(event[finite])
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        for e in eseq:
            idx = np.nonzero(finite & (event == e))[0]
            w = pg[idx] / pg[idx].sum()
            est, psi = combine(idx, w, group, pg, ug=unit_group)
            effects.append((e, est, psi))
        pos = [x for x in effects if x[0] >= 0]
        if not pos:
            return math.nan, np.zeros(n), effects, [*notes, "no event time >= 0"]
        est = float(np.mean([x[1] for x in pos]))
        psi = np.mean([x[2] for x in pos], axis=0) if with_inf else None
        return est, psi, effects, notes
    if type == "group":
        kept = []
        for gi, g in enumerate(glist):
            idx = np.nonzero(finite & (group == g) & (group <= time) & (event <= max_e))[0]
            if len(idx) == 0:
                continue
            w = np.full(len(idx), 1.0 / len(idx))
            est, psi = combine(idx, w)
            effects.append((g, est, psi))
            kept.append(gi)
        if not effects:
            return math.nan, np.zeros(n), [], [*notes, "no post-treatment cell"]
        att_g = np.array([x[1] for x in effects])
        pgg = pg_g[kept]
        labels = glist[kept]
        est = float(np.sum(att_g * pgg) / pgg.sum())
        if not with_inf:
            return est, None, effects, notes
        inf_g = np.column_stack([x[2] for x in effects])
        idx = np.arange(len(kept))
        psi = inf_g @ (pgg / pgg.sum()) + _wif(idx, pgg, unit_group, labels) @ att_g
        return est, psi, effects, notes
    if type == "calendar":
        tlist = np.unique(time[finite & (time >= glist.min())]) if len(glist) else []
        for t1 in tlist:
            idx = np.nonzero(finite & (time == t1) & (group <= t1))[0]
            if len(idx) == 0:
                continue
            w = pg[idx] / pg[idx].sum()
            est, psi = combine(idx, w, group, pg, ug=unit_group)
            effects.append((t1, est, psi))
        if not effects:
            return math.nan, np.zeros(n), [], [*notes, "no post-treatment cell"]
        est = float(np.mean([x[1] for x in effects]))
        psi = np.mean([x[2] for x in effects], axis=0) if with_inf else None
        return est, psi, effects, notes
    raise InvalidInputError(f"type must be one of {AGGREGATIONS}, got {type!r}")


def aggte(
    result: GroupTimeResult,
    type: str = "group",  # noqa: A002  (R did's argument name)
    *,
    min_e: float = -math.inf,
    max_e: float = math.inf,
    confidence_level: float | None = None,
    alternative: str | None = None,
    min_cohort_size: int = 5,
    small_cohorts: str = "exclude",
) -> AggregateResult:
    """Aggregate group-time ATTs as R ``did::aggte`` does, with analytic standard errors.

    A cohort-size guard applies first: cohorts with fewer than ``min_cohort_size`` units (5 by
    default: R ``did`` warns below 5 units per group) are named in the diagnostics and, with
    ``small_cohorts="exclude"`` (default), left out of the aggregation; with ``"include"``
    they stay in and the diagnostics say so.

    Parameters
    ----------
    result : GroupTimeResult
        From :func:`att_gt`.
    type : {"simple", "dynamic", "group", "calendar"}
        ``simple``: post-treatment cells weighted by cohort size. ``dynamic``: event study, one
        effect per event time ``e = t - g`` (overall = mean over ``e >= 0``). ``group``: one
        effect per cohort (mean over its post periods; overall weighted by cohort size).
        ``calendar``: one effect per period (overall = mean over periods).
    min_e, max_e : float
        Event-time window (``dynamic``; ``max_e`` also limits ``simple`` and ``group``).
    confidence_level, alternative : optional
        Default to those of ``result``.
    min_cohort_size : int
        Smallest cohort (in units) the aggregation uses without a warning.
    small_cohorts : {"exclude", "include"}

    Returns
    -------
    AggregateResult
        Standard errors include the estimation of the cohort-size weights (R did's ``wif``).
        Cells without an estimate are left out (R's ``na.rm = TRUE``) and the note says so.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3], "t": [1, 2] * 3,
    ...                    "g": [2, 2, 0, 0, 0, 0], "y": [1.0, 3.0, 1.0, 1.5, 2.0, 2.5]})
    >>> r = att_gt(df, outcome="y", unit="u", time="t", first_treated="g", never_treated=0)
    >>> aggte(r, "simple", min_cohort_size=1).overall.estimate
    1.5
    """
    if type not in AGGREGATIONS:
        raise InvalidInputError(f"type must be one of {AGGREGATIONS}, got {type!r}")
    if small_cohorts not in ("exclude", "include"):
        raise InvalidInputError("small_cohorts must be 'exclude' or 'include'")
    if (isinstance(min_cohort_size, bool) or int(min_cohort_size) != min_cohort_size
            or min_cohort_size < 1):
        raise InvalidInputError("min_cohort_size must be a positive whole number")
    sizes, small = _cohort_sizes(np.asarray(result._unit_group), int(min_cohort_size))
    excluded = small if small_cohorts == "exclude" else ()
    guard = _guard_diagnostics(sizes, small, int(min_cohort_size), small_cohorts)
    level = result.confidence_level if confidence_level is None else _check_level(confidence_level)
    alt = result.alternative if alternative is None else _check_alternative(alternative)
    n = result.n_units
    codes, n_cl = result._codes, result.n_clusters
    est, psi, effects, notes = _aggregate_arrays(
        np.asarray(result._att), np.asarray(result._inf), np.asarray(result._group),
        np.asarray(result._time), np.asarray(result._unit_group), type, min_e, max_e,
        excluded=excluded)
    if excluded and not math.isfinite(est):
        notes = [*notes, f"every usable cohort has fewer than {int(min_cohort_size)} units"]
    key = {"dynamic": "event_time", "group": "group", "calendar": "time"}.get(type)
    title = {
        "simple": "Overall ATT (simple: post-treatment cells weighted by cohort size)",
        "dynamic": "Overall ATT (event study: mean over event times >= 0)",
        "group": "Overall ATT (cohort aggregation)",
        "calendar": "Overall ATT (calendar-time aggregation)",
    }[type]
    ug = np.asarray(result._unit_group)
    n_treat = int(np.isfinite(ug).sum())
    method = f"aggte.{type}"

    def make(est_, psi_, label, extra):
        se_ = _se_from_if(psi_, codes, n_cl, n) if math.isfinite(est_) else math.nan
        ci, z, p = _normal_inference(est_, se_, level, alt)
        return Result(method=method, estimate=est_, ci=ci, confidence_level=level, statistic=z,
                      pvalue=p, alternative=alt, n=(n_treat, n - n_treat), label=label,
                      note="; ".join(notes), diagnostics=(*result.diagnostics, *guard),
                      extra={**extra, "se": float(se_)})

    overall = make(est, psi, title, {"type": type})
    eff = tuple(
        make(e_est, e_psi, f"ATT({key}={_num(k)})", {"type": type, key: _num(k)})
        for k, e_est, e_psi in effects
    )
    inf_eff = (np.column_stack([x[2] for x in effects]) if effects
               else np.zeros((n, 0)))
    return AggregateResult(
        type=type,
        overall=overall,
        effects=eff,
        diagnostics=(*result.diagnostics, *guard),
        n_units=n,
        n_clusters=n_cl,
        cohort_sizes=tuple((float(g), k) for g, k in sizes),
        min_cohort_size=int(min_cohort_size),
        excluded_cohorts=tuple(float(g) for g in excluded),
        small_cohorts=tuple(float(g) for g in small),
        _inf_overall=_readonly(psi),
        _inf_effects=_readonly(inf_eff),
        _codes=codes,
        _source=result,
        _window=(min_e, max_e),
    )


def _cohort_sizes(unit_group: np.ndarray, minimum: int) -> tuple[list, tuple]:
    """[(cohort, units)] and the cohorts below ``minimum``."""
    glist = np.unique(unit_group[np.isfinite(unit_group)])
    sizes = [(float(g), int((unit_group == g).sum())) for g in glist]
    return sizes, tuple(g for g, k in sizes if k < minimum)


def _guard_diagnostics(sizes, small, minimum, mode) -> tuple[str, ...]:
    if not small:
        return ()
    k = dict(sizes)
    named = ", ".join(f"{_num(g)} ({k[g]} unit{'s' if k[g] != 1 else ''})" for g in small)
    if mode == "exclude":
        what = "excluded from the aggregation"
        if len(small) == len(sizes):
            what += " (every cohort: no aggregate is reported)"
    else:
        what = ("kept in the aggregation because small_cohorts='include': the aggregate rests "
                "on cohorts too small for its analytic standard error")
    return (f"cohort-size guard: cohort(s) {named} have fewer than {minimum} units (R did's "
            f"minimum); {what}",)


# --------------------------------------------------------------------------------------------
# wild cluster restricted bootstrap-t of Callaway-Sant'Anna aggregations


def _linear_weights(src: GroupTimeResult, type: str, window: tuple, excluded: tuple
                    ) -> tuple[np.ndarray, np.ndarray, list, np.ndarray, np.ndarray]:
    """Every aggregate as ``a'att`` with influence function ``inf @ a + Wif @ att``.

    The aggregation of :func:`aggte` is linear in the cell ATTs and their influence functions
    (its weights depend on the cohort sizes only), so probing it with unit vectors recovers
    ``a`` (cells) and ``Wif`` (the estimated-weights term, units x cells) exactly. Returns
    (a_overall, Wif_overall, effect keys, a_effects, Wif_effects).
    """
    att = np.asarray(src._att)
    n, k_cells = np.asarray(src._inf).shape
    finite = np.isfinite(att)
    zeros = np.zeros((n, k_cells))
    args = (np.asarray(src._group), np.asarray(src._time), np.asarray(src._unit_group), type,
            window[0], window[1])
    _, _, eff0, _ = _aggregate_arrays(np.where(finite, 0.0, np.nan), zeros, *args,
                                      excluded=excluded)
    keys = [e[0] for e in eff0]
    a = np.zeros(k_cells)
    W = np.zeros((n, k_cells))
    a_eff = np.zeros((len(keys), k_cells))
    W_eff = np.zeros((len(keys), n, k_cells))
    for k in np.nonzero(finite)[0]:
        probe = np.where(finite, 0.0, np.nan)
        probe[k] = 1.0
        est, psi, eff, _ = _aggregate_arrays(probe, zeros, *args, excluded=excluded)
        if math.isfinite(est):
            a[k], W[:, k] = est, psi
        for j, (_, e_est, e_psi) in enumerate(eff):
            a_eff[j, k], W_eff[j, :, k] = e_est, e_psi
    return a, W, keys, a_eff, W_eff


def _cs_wcr(src: GroupTimeResult, a: np.ndarray, W: np.ndarray) -> _LinearWCR:
    """WCR bootstrap t of ``theta = a'att`` for unconditional (no-covariate) ATT(g,t) cells.

    Each cell is the slope of the 2x2 regression ``dy = mu + theta_k D + u`` on its treated
    and comparison units, and its influence-function standard error is that regression's CR0
    one. The null ``a'theta = r`` is imposed by restricted least squares across the cells
    (``theta~ = theta^ + (r - a'theta^) (a/h) / sum(a^2/h)``, ``h_k = n_T n_C / (n_T + n_C)``),
    the restricted residuals of every cell are multiplied by the weight of the unit's cluster
    (one weight per cluster, shared across cells), and each bootstrap sample is re-estimated
    and re-studentized with the same influence-function formula (including the estimated
    cohort-weight term). All of it is linear in the weights (see :class:`_LinearWCR`).
    """
    Y = np.asarray(src._Y)
    att = np.asarray(src._att)
    codes, G = np.asarray(src._codes), src.n_clusters
    n = Y.shape[0]
    cells = [k for k in np.nonzero(a)[0] if src._design[k] is not None]
    if not cells:
        raise InvalidInputError("no estimated cell enters this aggregate")
    a_s = a[cells]
    ind = np.zeros((n, G))
    ind[np.arange(n), codes] = 1.0
    h = np.empty(len(cells))
    dys, Ds, subs, rT, rC = [], [], [], np.zeros((G, len(cells))), np.zeros((G, len(cells)))
    for j, k in enumerate(cells):
        treat, ctrl, c, base = src._design[k]
        sub = treat | ctrl
        n_t, n_c = int(treat.sum()), int(ctrl.sum())
        h[j] = n_t * n_c / (n_t + n_c)
        dys.append(Y[:, c] - Y[:, base])
        Ds.append(treat.astype(float))
        subs.append((sub, treat, ctrl, n_t, n_c))
        rT[:, j] = ind[treat].sum(axis=0) / n_t
        rC[:, j] = ind[ctrl].sum(axis=0) / n_c
    lam = (a_s / h) / np.sum(a_s**2 / h)
    omega = ind.T @ W[:, cells]  # (G, cells)

    def at(r: float):
        theta_r = att[cells] + (r - a_s @ att[cells]) * lam
        mT = np.zeros((G, len(cells)))
        mC = np.zeros((G, len(cells)))
        for j in range(len(cells)):
            sub, treat, ctrl, n_t, n_c = subs[j]
            dy, D = dys[j], Ds[j]
            u = np.zeros(n)
            u[sub] = (dy[sub] - dy[sub].mean()) - theta_r[j] * (D[sub] - D[sub].mean())
            mT[:, j] = ind[treat].T @ u[treat] / n_t
            mC[:, j] = ind[ctrl].T @ u[ctrl] / n_c
        b = mT - mC
        Q = n * (np.diag(b @ a_s) - (rT * a_s) @ mT.T + (rC * a_s) @ mC.T) + omega @ b.T
        return b @ a_s, Q, omega @ theta_r

    num0, Q0, q0 = at(0.0)
    num1, Q1, q1 = at(1.0)
    return _LinearWCR(num0=num0, num1=num1 - num0, Q0=Q0, Q1=Q1 - Q0, q0=q0, q1=q1 - q0,
                      scale=1.0 / n)


def aggte_wcr(
    agg: AggregateResult,
    *,
    effect: Any = None,
    weights: str = "rademacher",
    n_boot: int = 9999,
    rng: Any = None,
    null: float = 0.0,
    confidence_level: float | None = None,
    alternative: str | None = None,
) -> Result:
    """Wild cluster restricted (WCR) bootstrap-t of a Callaway-Sant'Anna aggregate.

    The few-cluster bootstrap of Cameron, Gelbach and Miller (2008) and Roodman, MacKinnon,
    Nielsen and Webb (2019, Stata ``boottest``) carried over to the aggregated ATT: every
    unconditional ATT(g,t) is the slope of a 2x2 regression of the outcome change on a
    treated-cohort dummy, the aggregate is a fixed linear combination of them, so the null
    ``aggregate = null`` is imposed by restricted least squares across the cells, the restricted
    residuals are multiplied by one weight per cluster (Rademacher, or Webb 2023 six-point
    weights), and each bootstrap sample's aggregate is studentized by its own
    influence-function standard error (R ``did``'s, including the estimated cohort weights).
    This is a studentized multiplier (score) bootstrap with the null imposed in the sense of
    Kline and Santos (2012, "A score based approach to wild bootstrap inference", Journal of
    Econometric Methods 1(1)); with one cell it is exactly the WCR bootstrap of that 2x2
    regression, which the tests check against ``wildboottest``. When all weight patterns fit in
    ``n_boot`` they are enumerated (exact, deterministic p); else
    ``p = (1 + #extreme) / (1 + n_boot)``. The interval inverts the test.

    Only for aggregates of unconditional cells (``att_gt`` without covariates): the doubly
    robust estimator is not linear in the outcomes and a result with a note is returned.

    Parameters
    ----------
    agg : AggregateResult
        From :func:`aggte` (its cohort-size guard and event window apply).
    effect : optional
        None for the overall aggregate, else the key of one effect (event time, cohort or
        period).
    weights : {"rademacher", "webb"}
    n_boot : int
    rng : numpy.random.Generator, int or None
    null : float
    confidence_level, alternative : optional
        Default to those of the aggregate.

    Returns
    -------
    Result
        ``statistic`` is the observed t (aggregate minus null over its analytic standard
        error); ``extra`` as in :func:`twfe_wcr`.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3, 4, 4], "t": [1, 2] * 4,
    ...                    "g": [2, 2, 2, 2, 0, 0, 0, 0],
    ...                    "y": [1.0, 3.0, 1.0, 2.5, 1.0, 1.5, 2.0, 2.4]})
    >>> agg = aggte(att_gt(df, outcome="y", unit="u", time="t", first_treated="g",
    ...                    never_treated=0), "simple", min_cohort_size=1)
    >>> r = aggte_wcr(agg)
    >>> r.extra["exact"], r.extra["n_boot"]
    (True, 16)
    """
    if weights not in BOOT_WEIGHTS:
        raise InvalidInputError(f"weights must be one of {BOOT_WEIGHTS}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise InvalidInputError("n_boot must be a positive whole number")
    src = agg._source
    if src is None:
        raise InvalidInputError("aggte_wcr needs an AggregateResult made by aggte")
    if effect is None:
        base = agg.overall
    else:
        key = {"dynamic": "event_time", "group": "group", "calendar": "time"}.get(agg.type)
        found = [r for r in agg.effects if key and r.extra.get(key) == effect]
        if not found:
            raise InvalidInputError(f"no effect {effect!r} in this {agg.type} aggregation")
        base = found[0]
    level = base.confidence_level if confidence_level is None else _check_level(confidence_level)
    alt = base.alternative if alternative is None else _check_alternative(alternative)
    label = f"{base.label}, wild cluster restricted bootstrap-t ({weights})"
    method = f"aggte.{agg.type}.wcr"
    n = (src.n_units, src.n_clusters)
    if src.covariates:
        return Result(method=method, label=label, alternative=alt, confidence_level=level,
                      estimate=base.estimate, n=n,
                      note="the WCR bootstrap needs unconditional cells (no covariates)")
    if not (math.isfinite(base.estimate) and math.isfinite(base.extra.get("se", math.nan))):
        return Result(method=method, label=label, alternative=alt, confidence_level=level,
                      estimate=base.estimate, n=n, diagnostics=base.diagnostics,
                      note="the aggregate or its standard error is not defined"
                      + (": " + base.note if base.note else ""))
    if "linear" not in agg._cache:
        agg._cache["linear"] = _linear_weights(src, agg.type, agg._window, agg.excluded_cohorts)
    a, W, keys, a_eff, W_eff = agg._cache["linear"]
    if effect is not None:
        j = [i for i, k in enumerate(keys) if _num(k) == effect][0]
        a, W = a_eff[j], W_eff[j]
    return _wcr_linear_result(src, a, W, est=base.estimate, se=float(base.extra["se"]),
                              null=null, weights=weights, n_boot=int(n_boot), rng=rng,
                              level=level, alternative=alt, method=method, label=label,
                              diagnostics=base.diagnostics)


def _wcr_linear_result(src, a, W, *, est, se, null, weights, n_boot, rng, level, alternative,
                       method, label, diagnostics=()) -> Result:
    lin = _cs_wcr(src, a, W)
    return _wcr_result(lin, est=est, se=se, null=float(null), weights=weights, n_boot=n_boot,
                       rng=rng, level=level, alternative=alternative,
                       n_clusters=src.n_clusters, method=method, label=label,
                       n=(src.n_units, src.n_clusters), diagnostics=diagnostics)


@dataclass(frozen=True)
class PretrendResult:
    """Few-unit pre-trend check from :func:`pretrend_check`.

    Attributes
    ----------
    leads : tuple of Result
        One WCR bootstrap-t per event-study lead (event time < 0) tested.
    average : Result
        WCR bootstrap-t of the mean of those leads (one degree of freedom, usable with few
        clusters where a joint Wald test is singular).
    power : dict
        Roth (2022)-style statement: the linear pre-trend slope the average test detects with
        probability ``power`` (normal approximation), and the bias that slope would put on
        the post-period aggregate.
    limits : tuple of str
        What the check cannot show.
    """

    leads: tuple[Result, ...]
    average: Result
    power: dict
    limits: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {"method": "pretrend_check", "leads": [r.to_dict() for r in self.leads],
                "average": self.average.to_dict(), "power": dict(self.power),
                "limits": list(self.limits)}

    def summary(self) -> str:
        """Plain-text summary."""
        lines = ["Pre-trend check (event-study leads, WCR bootstrap-t)"]
        lines += ["  " + r.summary().split("\n")[0] for r in self.leads]
        lines.append("  " + self.average.summary().split("\n")[0])
        lines += [f"  - {x}" for x in self.limits]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def pretrend_check(
    result: GroupTimeResult,
    *,
    leads: int | None = None,
    weights: str = "rademacher",
    n_boot: int = 9999,
    rng: Any = None,
    power: float = 0.8,
    target: str = "simple",
    min_cohort_size: int = 5,
    small_cohorts: str = "exclude",
    confidence_level: float | None = None,
) -> PretrendResult:
    """A pre-trend check that works with few units: event-study leads with WCR inference.

    With few units the Wald pre-test of all pre-treatment ATT(g,t) is singular (more cells than
    clusters). Instead: each event-study lead (``aggte(..., "dynamic")`` effects at event time
    ``e < 0``, the ``leads`` closest to go-live) and their mean are tested with the WCR
    bootstrap-t (:func:`aggte_wcr`). Following Roth (2022, "Pretest with caution", AER:
    Insights 4(3)), the result also states the slope of a linear violation of parallel trends
    that the test of the mean lead would detect with probability ``power`` (normal
    approximation with the analytic standard error), and the bias such a trend would put on
    the ``target`` aggregate: a check that passes says little when that slope is large.

    Parameters
    ----------
    result : GroupTimeResult
        From :func:`att_gt` without covariates.
    leads : int, optional
        Number of leads closest to go-live to test (default: every lead).
    weights, n_boot, rng
        As in :func:`aggte_wcr`.
    power : float
        Power of the detectable-slope statement.
    target : {"simple", "dynamic", "group", "calendar"}
        Aggregate whose bias under that slope is reported.
    min_cohort_size, small_cohorts
        The cohort-size guard of :func:`aggte`.
    confidence_level : optional

    Returns
    -------
    PretrendResult
    """
    if not 0 < power < 1:
        raise InvalidInputError("power must be in (0, 1)")
    if leads is not None and (isinstance(leads, bool) or int(leads) != leads or leads < 1):
        raise InvalidInputError("leads must be a positive whole number or None")
    level = result.confidence_level if confidence_level is None else _check_level(
        confidence_level)
    guard = dict(min_cohort_size=min_cohort_size, small_cohorts=small_cohorts)
    dyn = aggte(result, "dynamic", max_e=-1, confidence_level=level, **guard)
    pre = sorted((r for r in dyn.effects if r.extra["event_time"] < 0),
                 key=lambda r: -r.extra["event_time"])
    if result.base_period == "universal":
        pre = [r for r in pre if r.extra["event_time"] != -1]  # the reference, 0 by design
    pre = pre[: int(leads)] if leads is not None else pre
    limits = [
        "A check that passes does not show parallel trends: it only fails to detect a "
        "violation, and with few units it has little power (see the detectable slope).",
        "Reporting estimates only when the pre-test passes distorts their intervals and can "
        "add bias (Roth 2022).",
        "Only the leads tested are checked, and only against a linear trend in the power "
        "statement; the statement uses a normal approximation, optimistic with few clusters.",
    ]
    method = "pretrend.wcr"
    if not pre or result.covariates:
        why = ("no pre-treatment event time" if not pre else
               "the WCR bootstrap needs unconditional cells (no covariates)")
        empty = Result(method=method, label="Mean of event-study leads", note=why)
        return PretrendResult((), empty, {}, tuple(limits))
    a_all, W_all, keys, a_eff, W_eff = _linear_weights(result, "dynamic", (-math.inf, -1),
                                                        dyn.excluded_cohorts)
    index = {_num(k): j for j, k in enumerate(keys)}
    boot = dict(weights=weights, n_boot=int(n_boot), rng=rng, level=level,
                alternative="two-sided", null=0.0)
    lead_results = []
    for r in pre:
        j = index[r.extra["event_time"]]
        lead_results.append(_wcr_linear_result(
            result, a_eff[j], W_eff[j], est=r.estimate, se=float(r.extra["se"]),
            method=method, label=f"Lead e={r.extra['event_time']}, WCR bootstrap-t ({weights})",
            diagnostics=r.diagnostics, **boot))
    rows = [index[r.extra["event_time"]] for r in pre]
    a = a_eff[rows].mean(axis=0)
    W = W_eff[rows].mean(axis=0)
    est = float(a @ np.nan_to_num(np.asarray(result._att)))
    psi = np.asarray(result._inf) @ a + W @ np.nan_to_num(np.asarray(result._att))
    se = float(_se_from_if(psi, np.asarray(result._codes), result.n_clusters, result.n_units))
    average = _wcr_linear_result(
        result, a, W, est=est, se=se, method=method,
        label=f"Mean of {len(pre)} event-study lead(s), WCR bootstrap-t ({weights})",
        diagnostics=dyn.diagnostics, **boot)
    # Roth (2022): a linear violation delta * (t - base) in every cell
    span = np.array([c.extra["time"] - c.extra["base_time"] if c.extra["base_time"] is not None
                     and math.isfinite(c.extra["base_time"]) else 0.0 for c in result.cells],
                    dtype=float)
    sens = float(a @ span)
    z = stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power)
    slope = z * se / abs(sens) if sens and math.isfinite(se) else math.nan
    tgt = aggte(result, target, confidence_level=level, **guard)
    a_t, *_ = _linear_weights(result, target, tgt._window, tgt.excluded_cohorts)
    bias = float(a_t @ span) * slope if math.isfinite(slope) else math.nan
    power_stmt = {
        "power": power, "slope": slope, "target": target, "target_estimate": tgt.overall.estimate,
        "bias_at_slope": bias,
        "sentence": (f"A linear pre-trend of {_fmt(slope)} per period would be detected by the "
                     f"test of the mean lead with probability {power:.0%} (normal "
                     f"approximation); such a trend would bias the {target} ATT by "
                     f"{_fmt(bias)}." if math.isfinite(slope) else
                     "The detectable slope is undefined (no standard error)."),
    }
    if average.extra.get("smallest_pvalue", 0) > 1 - level:
        limits.append(f"With {result.n_clusters} clusters the WCR p-value cannot fall below "
                      f"{_fmt(average.extra['smallest_pvalue'])}: the check cannot reject.")
    return PretrendResult(tuple(lead_results), average, power_stmt, tuple(limits))


# --------------------------------------------------------------------------------------------
# wild (multiplier) cluster bootstrap


def wild_bootstrap(
    agg: AggregateResult,
    *,
    n_boot: int = 999,
    weights: str = "rademacher",
    rng: Any = None,
    confidence_level: float | None = None,
    alternative: str | None = None,
) -> Result:
    """Wild cluster (multiplier) bootstrap of an aggregated ATT (unstudentized, null not imposed).

    Kept for comparison with R ``did``'s multiplier bootstrap; with few clusters prefer
    :func:`aggte_wcr`, the studentized bootstrap with the null imposed.

    Each draw multiplies the cluster sums of the overall influence function by independent
    weights (Rademacher: +-1; Webb 2023: six points +-sqrt(1/2), +-1, +-sqrt(3/2)), giving the
    bootstrap deviation ``theta* - theta_hat``; this is R ``did``'s multiplier bootstrap with
    cluster-level weights. When every weight pattern can be listed within ``n_boot`` draws
    (``2**G`` Rademacher or ``6**G`` Webb patterns for ``G`` clusters) the bootstrap
    distribution is enumerated exactly and ``rng`` is not used. With very few clusters the
    Rademacher distribution has few distinct values; Webb weights are the usual remedy.

    Parameters
    ----------
    agg : AggregateResult
        From :func:`aggte`.
    n_boot : int
        Number of draws (upper bound for exact enumeration).
    weights : {"rademacher", "webb"}
    rng : numpy.random.Generator, int or None
        Random generator or seed for the draws.
    confidence_level, alternative : optional
        Default to those of ``agg.overall``.

    Returns
    -------
    Result
        ``estimate`` is the aggregated ATT; ``ci`` the basic bootstrap interval
        (``theta_hat - q``); ``pvalue`` tests ATT = 0: the share of draws whose deviation is at
        least as extreme as ``theta_hat`` (two-sided: in absolute value), ``(1 + hits) / (1 + B)``
        for random draws; ``extra`` holds the
        bootstrap standard error (``se``: interquartile range / 1.349, as R ``did``), the number
        of draws and whether the enumeration was exact.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3, 4, 4], "t": [1, 2] * 4,
    ...                    "g": [2, 2, 2, 2, 0, 0, 0, 0],
    ...                    "y": [1.0, 3.0, 1.0, 2.5, 1.0, 1.5, 2.0, 2.4]})
    >>> agg = aggte(att_gt(df, outcome="y", unit="u", time="t", first_treated="g",
    ...                    never_treated=0), "simple", min_cohort_size=1)
    >>> wild_bootstrap(agg, n_boot=999).extra["exact"]
    True
    """
    if weights not in BOOT_WEIGHTS:
        raise InvalidInputError(f"weights must be one of {BOOT_WEIGHTS}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise InvalidInputError("n_boot must be a positive whole number")
    n_boot = int(n_boot)
    base = agg.overall
    level = base.confidence_level if confidence_level is None else _check_level(confidence_level)
    alt = base.alternative if alternative is None else _check_alternative(alternative)
    est = base.estimate
    label = f"{base.label}, wild cluster bootstrap ({weights})"
    method = f"aggte.{agg.type}.wild_bootstrap"
    if not math.isfinite(est):
        return Result(method=method, label=label, alternative=alt, confidence_level=level,
                      note="the aggregated ATT is not defined: " + base.note)
    n = agg.n_units
    sums = np.zeros(agg.n_clusters)
    np.add.at(sums, agg._codes, np.asarray(agg._inf_overall))
    n_cl = agg.n_clusters
    support = np.array([-1.0, 1.0]) if weights == "rademacher" else _WEBB
    exact = len(support) ** n_cl <= n_boot
    if exact:
        draws = np.array(list(itertools.product(support, repeat=n_cl)))
    else:
        gen = as_generator(rng)
        draws = gen.choice(support, size=(n_boot, n_cl))
    dev = draws @ sums / n
    q25, q75 = np.quantile(dev, [0.25, 0.75])
    se = float((q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25)))
    tol = 1e-12 * max(1.0, abs(est))
    if alt == "two-sided":
        hits = int(np.sum(np.abs(dev) >= abs(est) - tol))
        lo_q, hi_q = np.quantile(dev, [0.5 + level / 2, 0.5 - level / 2])
        ci = (est - lo_q, est - hi_q)
    elif alt == "greater":
        hits = int(np.sum(dev >= est - tol))
        ci = (est - float(np.quantile(dev, level)), math.inf)
    else:
        hits = int(np.sum(dev <= est + tol))
        ci = (-math.inf, est - float(np.quantile(dev, 1 - level)))
    # exact enumeration: the share of patterns; random draws: (1 + hits) / (1 + B), never 0
    p = hits / len(dev) if exact else (1 + hits) / (1 + len(dev))
    diags = list(agg.diagnostics)
    if weights == "rademacher" and n_cl < 12:
        diags.append(f"{n_cl} clusters: the Rademacher bootstrap has only {2**n_cl} distinct "
                     "draws; consider weights='webb'")
    return Result(method=method, estimate=est, ci=ci, confidence_level=level, pvalue=p,
                  alternative=alt, n=base.n, label=label, diagnostics=tuple(diags),
                  extra={"se": se, "n_boot": len(draws), "exact": bool(exact),
                         "weights": weights, "n_clusters": n_cl})


# --------------------------------------------------------------------------------------------
# randomization inference over go-live order


def _assignments(labels: np.ndarray):
    """Every distinct arrangement of the multiset ``labels`` (NaN = never treated)."""
    keys = np.where(np.isfinite(labels), labels, np.inf)
    values, counts = np.unique(keys, return_counts=True)
    n = len(labels)

    def rec(free: tuple[int, ...], j: int):
        if j == len(values) - 1:
            yield {values[j]: free}
            return
        for chosen in itertools.combinations(free, counts[j]):
            rest = tuple(i for i in free if i not in chosen)
            for tail in rec(rest, j + 1):
                yield {values[j]: chosen, **tail}

    for assign in rec(tuple(range(n)), 0):
        out = np.empty(n)
        for v, idx in assign.items():
            out[list(idx)] = np.nan if v == np.inf else v
        yield out


def _n_arrangements(labels: np.ndarray) -> int:
    keys = np.where(np.isfinite(labels), labels, np.inf)
    _, counts = np.unique(keys, return_counts=True)
    total = math.factorial(len(labels))
    for c in counts:
        total //= math.factorial(int(c))
    return total


def _blocked_assignments(G: np.ndarray, members: list[np.ndarray]):
    """Every assignment that permutes go-live dates only within each block."""
    per_block = [list(_assignments(G[idx])) for idx in members]
    for combo in itertools.product(*per_block):
        out = np.empty(len(G))
        for idx, vals in zip(members, combo, strict=True):
            out[idx] = vals
        yield out


def randomization_inference(
    panel: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str = "rate",
    unit: str = "area",
    time: str = "period_index",
    first_treated: str = "first_treated",
    never_treated: int | None = None,
    covariates: Sequence[str] = (),
    aggregation: str = "simple",
    control_group: str = "nevertreated",
    anticipation: int = 0,
    base_period: str = "varying",
    blocks: Mapping[Any, Any] | None = None,
    min_cohort_size: int = 1,
    n_permutations: int = 999,
    rng: Any = None,
    alternative: str = "two-sided",
) -> Result:
    """Randomization test of "no effect anywhere" over a declared set of go-live assignments.

    Under the sharp null that the programme changed no outcome, the go-live dates could have
    been handed to the units in any way the assignment mechanism allowed. The test re-assigns
    the observed go-live periods (including "never"), recomputes the aggregated
    Callaway-Sant'Anna ATT for each assignment and compares it with the observed one (Fisher
    randomization inference over adoption timing; cf. Roth and Sant'Anna 2023). ``blocks``
    declares the assignment space: go-live dates are permuted only among units of the same
    block (for example the county, when the order was decided within each county), so the
    p-value claims no more randomization than the design had; ``None`` allows any order of all
    units. Exact enumeration is used when the number of assignments is at most
    ``n_permutations``; otherwise ``n_permutations`` random assignments are drawn and
    ``p = (1 + #extreme) / (1 + B)``.

    Parameters
    ----------
    panel, outcome, unit, time, first_treated, never_treated, covariates, control_group,
    anticipation, base_period
        As in :func:`att_gt`.
    aggregation : {"simple", "dynamic", "group", "calendar"}
        Which overall ATT of :func:`aggte` is the test statistic.
    blocks : mapping, optional
        Block label of every unit (``{unit: block}``); units dropped by the estimator (always
        treated) leave the space. A unit without a label is an error.
    min_cohort_size : int
        The cohort-size guard of :func:`aggte` applied to the statistic (1: no guard).
        Permutations within blocks keep cohort sizes, so the same cohorts are left out in
        every assignment.
    n_permutations : int
        Monte Carlo draws, and the largest number of assignments enumerated exactly.
    rng : numpy.random.Generator, int or None
    alternative : {"two-sided", "less", "greater"}
        Two-sided counts ``|T*| >= |T|``.

    Returns
    -------
    Result
        ``estimate`` and ``statistic`` are the observed aggregated ATT; ``pvalue`` the
        randomization p-value; ``extra`` holds the size of the assignment space
        (``n_assignments``), the number of blocks, whether the enumeration was exact, the
        smallest p-value the space can give (``smallest_pvalue``) and the null distribution's
        mean and standard deviation.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3, 4, 4], "t": [1, 2] * 4,
    ...                    "g": [2, 2, 2, 2, 0, 0, 0, 0],
    ...                    "y": [1.0, 3.0, 1.0, 2.5, 1.0, 1.5, 2.0, 2.4]})
    >>> r = randomization_inference(df, outcome="y", unit="u", time="t", first_treated="g",
    ...                             never_treated=0, alternative="greater")
    >>> r.extra["n_assignments"], r.pvalue
    (6, 0.16666666666666666)
    """
    if aggregation not in AGGREGATIONS:
        raise InvalidInputError(f"aggregation must be one of {AGGREGATIONS}")
    if control_group not in CONTROL_GROUPS:
        raise InvalidInputError(f"control_group must be one of {CONTROL_GROUPS}")
    if base_period not in BASE_PERIODS:
        raise InvalidInputError(f"base_period must be one of {BASE_PERIODS}")
    if isinstance(n_permutations, bool) or int(n_permutations) != n_permutations \
            or n_permutations < 1:
        raise InvalidInputError("n_permutations must be a positive whole number")
    alternative = _check_alternative(alternative)
    prep = _prepare(panel, outcome=outcome, unit=unit, time=time, first_treated=first_treated,
                    covariates=tuple(covariates), never_treated=never_treated, cluster=None)
    n = len(prep.G)
    if blocks is None:
        members = [np.arange(n)]
        space = "any order of the go-live dates across all units"
    else:
        labels = []
        missing = 0
        for u in prep.units:
            if u in blocks and blocks[u] is not None:
                labels.append(str(blocks[u]))
            else:
                missing += 1
        if missing:
            raise InvalidInputError(f"blocks: {missing} unit(s) of the panel have no block")
        arr = np.array(labels)
        members = [np.nonzero(arr == b)[0] for b in sorted(set(labels))]
        space = f"go-live dates permuted within {len(members)} block(s)"

    def statistic(G: np.ndarray) -> float:
        if control_group == "nevertreated" and np.isfinite(G).all():
            return math.nan
        cells = _compute_cells(prep, G, control_group=control_group,
                               anticipation=int(anticipation), base_period=base_period,
                               with_inf=False)
        _, small = _cohort_sizes(G, int(min_cohort_size))
        est, _, _, _ = _aggregate_arrays(cells.att, cells.inf, cells.group, cells.time, G,
                                         aggregation, -math.inf, math.inf, with_inf=False,
                                         excluded=small)
        return est

    observed = statistic(prep.G)
    label = f"Randomization inference over go-live order ({aggregation} ATT)"
    method = f"randomization.{aggregation}"
    if not math.isfinite(observed):
        return Result(method=method, label=label, alternative=alternative,
                      note="the observed aggregated ATT is not defined")
    total = 1
    for idx in members:
        total *= _n_arrangements(prep.G[idx])
    exact = total <= n_permutations
    if exact:
        draws = [statistic(G) for G in _blocked_assignments(prep.G, members)]
    else:
        gen = as_generator(rng)
        draws = []
        for _ in range(int(n_permutations)):
            G = prep.G.copy()
            for idx in members:
                G[idx] = prep.G[idx][gen.permutation(len(idx))]
            draws.append(statistic(G))
    null = np.array(draws, dtype=float)
    undefined = int((~np.isfinite(null)).sum())
    null = null[np.isfinite(null)]
    tol = 1e-10 * max(1.0, abs(observed))

    def extreme(x: float) -> np.ndarray:
        if alternative == "two-sided":
            return np.abs(null) >= abs(x) - tol
        if alternative == "greater":
            return null >= x - tol
        return null <= x + tol

    hits = int(np.sum(extreme(observed)))
    if len(null) == 0:
        p = smallest = math.nan
    elif exact:
        p = hits / len(null)
        most = (np.max(np.abs(null)) if alternative == "two-sided" else
                np.max(null) if alternative == "greater" else np.min(null))
        smallest = float(np.sum(extreme(most)) / len(null))
    else:
        p = (1 + hits) / (1 + len(null))
        smallest = 1.0 / (1 + len(null))
    notes = [f"assignment space: {space}, {total} assignment(s)"]
    if undefined:
        notes.append(f"{undefined} assignment(s) gave no estimate and were left out")
    return Result(method=method, estimate=observed, statistic=observed, pvalue=p,
                  alternative=alternative, n=(int(np.isfinite(prep.G).sum()),
                                              int((~np.isfinite(prep.G)).sum())),
                  label=label, note="; ".join(notes), diagnostics=prep.diagnostics,
                  extra={"n_assignments": int(total), "n_blocks": len(members),
                         "n_draws": len(null), "exact": exact, "smallest_pvalue": smallest,
                         "null_mean": float(null.mean()) if len(null) else math.nan,
                         "null_sd": float(null.std()) if len(null) else math.nan})


# --------------------------------------------------------------------------------------------
# wild cluster restricted (WCR) bootstrap-t: a generic engine for statistics linear in the
# bootstrap weights (Roodman, MacKinnon, Nielsen and Webb 2019, section 3)

SMALL_SAMPLE = ("fixest", "areg")


@dataclass(frozen=True)
class _LinearWCR:
    """The bootstrap t-statistic of a null ``theta = r`` as a function of the weights ``v``.

    ``t*(v) = (num . v) / (scale * ||Q v + q||)``; ``num``, ``Q`` and ``q`` are affine in ``r``
    (``X(r) = X0 + r * X1``), so the whole test-inversion path is cheap. ``v = 1`` (every
    cluster keeps its restricted residual) reproduces the observed data, so ``t*(1)`` is the
    observed t-statistic.
    """

    num0: np.ndarray
    num1: np.ndarray
    Q0: np.ndarray
    Q1: np.ndarray
    q0: np.ndarray
    q1: np.ndarray
    scale: float

    def tstats(self, r: float, V: np.ndarray) -> np.ndarray:
        return self.bind(V)(r)

    def bind(self, V: np.ndarray):
        """``r -> t*(r)`` for the draws ``V``, with the products by ``V`` computed once."""
        n0, n1 = V @ self.num0, V @ self.num1
        s0, s1 = V @ self.Q0.T + self.q0, V @ self.Q1.T + self.q1

        def tstats(r: float) -> np.ndarray:
            den = self.scale * np.sqrt(((s0 + r * s1) ** 2).sum(axis=1))
            with np.errstate(divide="ignore", invalid="ignore"):
                return (n0 + r * n1) / den

        return tstats


def _weight_draws(n_clusters: int, weights: str, n_boot: int, rng: Any) -> tuple[np.ndarray, bool]:
    """Every weight pattern when there are at most ``n_boot`` of them, else random draws."""
    support = np.array([-1.0, 1.0]) if weights == "rademacher" else _WEBB
    if len(support) ** n_clusters <= n_boot:
        return np.array(list(itertools.product(support, repeat=n_clusters))), True
    return as_generator(rng).choice(support, size=(n_boot, n_clusters)), False


class _WcrTest:
    """The WCR p-value as a function of the null, for fixed draws."""

    def __init__(self, lin: _LinearWCR, V: np.ndarray, exact: bool, alternative: str):
        self.star = lin.bind(V)
        self.obs = lin.bind(np.ones((1, V.shape[1])))
        self.exact, self.alternative, self.B = exact, alternative, len(V)

    def __call__(self, r: float) -> tuple[float, float]:
        t_obs = float(self.obs(r)[0])
        if not math.isfinite(t_obs):
            return math.nan, math.nan
        tstar = self.star(r)
        tol = 1e-10 * max(1.0, abs(t_obs))
        if self.alternative == "two-sided":
            hits = np.abs(tstar) >= abs(t_obs) - tol
        elif self.alternative == "greater":
            hits = tstar >= t_obs - tol
        else:
            hits = tstar <= t_obs + tol
        k = int(np.sum(hits))
        return t_obs, (k / self.B if self.exact else (1 + k) / (1 + self.B))


def _wcr_interval(test: _WcrTest, est: float, se: float, level: float) -> tuple[float, float]:
    """Invert the WCR test: the nulls ``r`` whose p-value is at least ``1 - level``.

    Each side is bracketed by doubling a step of one standard error out from the estimate
    (where the p-value is 1) and then bisected to 1e-9 standard errors; a side that is never
    rejected within ``2**40`` standard errors is infinite (possible with very few clusters).
    """
    size = 1.0 - level
    step0 = se if (math.isfinite(se) and se > 0) else max(1.0, abs(est))

    def accepted(r: float) -> bool:
        _, p = test(r)
        return math.isfinite(p) and p >= size - 1e-12

    def side(sign: float) -> float:
        inside, step = est, step0
        for _ in range(41):
            out = est + sign * step
            if not accepted(out):
                break
            inside, step = out, step * 2
        else:
            return sign * math.inf
        for _ in range(200):
            mid = 0.5 * (inside + out)
            if mid in (inside, out) or abs(out - inside) <= 1e-9 * step0:
                break
            if accepted(mid):
                inside = mid
            else:
                out = mid
        return 0.5 * (inside + out)

    alternative = test.alternative
    lo = side(-1.0) if alternative in ("two-sided", "greater") else -math.inf
    hi = side(1.0) if alternative in ("two-sided", "less") else math.inf
    return lo, hi


def _wcr_result(lin: _LinearWCR, *, est: float, se: float, null: float, weights: str,
                n_boot: int, rng: Any, level: float, alternative: str, n_clusters: int,
                method: str, label: str, n: tuple, diagnostics: Sequence[str] = (),
                note: str = "", extra: dict | None = None) -> Result:
    if n_clusters < 2:
        return Result(method=method, label=label, alternative=alternative,
                      confidence_level=level, estimate=est, n=n,
                      note="the WCR bootstrap needs at least two clusters",
                      diagnostics=tuple(diagnostics))
    V, exact = _weight_draws(n_clusters, weights, n_boot, rng)
    test = _WcrTest(lin, V, exact, alternative)
    t_obs, p = test(null)
    if not math.isfinite(t_obs):
        return Result(method=method, label=label, alternative=alternative,
                      confidence_level=level, estimate=est, n=n,
                      note="the observed t-statistic is undefined (zero standard error)",
                      diagnostics=tuple(diagnostics))
    ci = _wcr_interval(test, est, se, level)
    if exact:
        # the most extreme observed t leaves the patterns tying with it: for Rademacher
        # weights v and -v give t and -t, so the smallest two-sided p is 2 / 2^G
        tstar = np.sort(np.abs(test.star(null)) if alternative == "two-sided"
                        else test.star(null))
        top = tstar[-1] if alternative != "less" else tstar[0]
        tol = 1e-10 * max(1.0, abs(top))
        ties = np.sum(np.abs(tstar - top) <= tol)
        smallest = float(ties / len(V))
    else:
        smallest = 1.0 / (1 + len(V))
    diags = list(diagnostics)
    if weights == "rademacher" and n_clusters <= 11:
        diags.append(f"{n_clusters} clusters: the Rademacher bootstrap has only {2**n_clusters} "
                     "weight patterns; Webb weights are advised below 12 clusters (Webb 2023)")
    # report the t of the analytic standard error (its scale does not change p or the interval)
    stat = (est - null) / se if (math.isfinite(se) and se > 0) else t_obs
    return Result(
        method=method, estimate=est, ci=ci, confidence_level=level, statistic=stat, pvalue=p,
        alternative=alternative, n=n, label=label, note=note, diagnostics=tuple(diags),
        extra={"se": se, "null": float(null), "weights": weights, "n_boot": int(len(V)),
               "exact": bool(exact), "n_clusters": int(n_clusters),
               "smallest_pvalue": smallest, **(extra or {})})


# --------------------------------------------------------------------------------------------
# two-way fixed effects


def _within(M: np.ndarray, codes: Sequence[np.ndarray], sizes: Sequence[int],
            tol: float = 1e-14, maxiter: int = 10_000) -> np.ndarray:
    """Residuals of the columns of ``M`` on the fixed effects ``codes`` (alternating projections).

    On a balanced two-way panel one sweep is exact; otherwise the method of alternating
    projections (demean by each factor in turn) converges to the same residuals.
    """
    out = np.array(M, dtype=float, copy=True)
    scale = max(1.0, float(np.abs(out).max()) if out.size else 1.0)
    counts = [np.bincount(c, minlength=s).astype(float) for c, s in zip(codes, sizes,
                                                                       strict=True)]
    for _ in range(maxiter):
        change = 0.0
        for c, s, k in zip(codes, sizes, counts, strict=True):
            sums = np.zeros((s, out.shape[1]))
            np.add.at(sums, c, out)
            means = sums / k[:, None]
            change = max(change, float(np.abs(means).max()))
            out -= means[c]
        if change <= tol * scale:
            break
    return out


def _twfe_wcr(yt: np.ndarray, dt: np.ndarray, ccode: np.ndarray, n_cl: int,
              fe_codes: Sequence[np.ndarray], fe_sizes: Sequence[int]) -> _LinearWCR:
    """The WCR bootstrap t of the TWFE coefficient, affine in the null (see :class:`_LinearWCR`).

    Restricted residuals under ``beta = r`` are ``u(r) = y~ - r d~`` (``~``: residual on the
    fixed effects). A draw is ``y* = fitted_r + v_c u(r)``; by Frisch-Waugh-Lovell
    ``beta* - r = sum_c v_c d~_c'u_c / d~'d~`` and the bootstrap residuals are
    ``M_d~ M_FE (v o u)``, so the cluster scores ``d~_h'u*_h`` are ``A v`` with
    ``A[h, g] = d~_h' M_FE(u o 1_g) - (d~_h'd~_h) d~_g'u_g / d~'d~``.
    """
    ind = np.zeros((len(yt), n_cl))
    ind[np.arange(len(yt)), ccode] = 1.0
    sdd = float(dt @ dt)
    dd_h = np.zeros(n_cl)
    np.add.at(dd_h, ccode, dt * dt)
    parts = []
    for u in (yt, dt):  # u(r) = yt - r * dt
        W = _within(u[:, None] * ind, fe_codes, fe_sizes)
        num = (ind * (dt * u)[:, None]).sum(axis=0) / sdd
        cross = np.zeros((n_cl, n_cl))
        np.add.at(cross, ccode, dt[:, None] * W)
        parts.append((num, cross - np.outer(dd_h, num)))
    (num_y, A_y), (num_d, A_d) = parts
    zeros = np.zeros(n_cl)
    return _LinearWCR(num0=num_y, num1=-num_d, Q0=A_y, Q1=-A_d, q0=zeros, q1=zeros,
                      scale=1.0 / sdd)


def _t_inference(est: float, se: float, df: float, level: float, alternative: str
                 ) -> tuple[tuple[float, float], float, float]:
    """Wald interval, t statistic and p-value with ``df`` degrees of freedom (inf: normal)."""
    if not math.isfinite(df):
        return _normal_inference(est, se, level, alternative)
    if not (math.isfinite(est) and math.isfinite(se) and se > 0 and df > 0):
        return (math.nan, math.nan), math.nan, math.nan
    t = est / se
    dist = stats.t(df)
    if alternative == "two-sided":
        q = dist.ppf(0.5 + level / 2)
        return (est - q * se, est + q * se), t, float(2 * dist.sf(abs(t)))
    q = dist.ppf(level)
    if alternative == "greater":
        return (est - q * se, math.inf), t, float(dist.sf(t))
    return (-math.inf, est + q * se), t, float(dist.cdf(t))


@dataclass(frozen=True)
class _TwfeFit:
    beta: float
    yt: np.ndarray
    dt: np.ndarray
    ccode: np.ndarray
    n_clusters: int
    fe_codes: tuple
    fe_sizes: tuple


def twfe(
    panel: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str = "rate",
    unit: str = "area",
    time: str = "period_index",
    first_treated: str = "first_treated",
    never_treated: int | None = None,
    cluster: str | None = "unit",
    small_sample: str = "fixest",
    reference: str = "t",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Two-way fixed-effects DiD: coefficient, few-cluster-honest standard error and WCR test.

    Fits ``y_it = a_i + b_t + beta * D_it + e_it`` with ``D_it = 1{t >= first_treated_i}``
    (:class:`linearmodels.panel.PanelOLS`, unit and period effects). The note states the known
    bias of TWFE under staggered timing with heterogeneous effects. On a balanced panel
    ``extra`` holds the weights TWFE puts on the treated cells (de Chaisemartin and
    D'Haultfoeuille 2020, Theorem 1): ``n_negative_weights`` and ``sum_negative_weights``.

    Standard errors are cluster-robust (CR1) with the small-sample factor
    ``G / (G - 1) * (N - 1) / (N - K)``. ``small_sample`` names how ``K`` counts the fixed
    effects:

    * ``"fixest"`` (default; also ``reghdfe``): fixed effects nested in the clusters (the unit
      effects when clustering by unit or by a coarser unit-level column) are not counted:
      ``K = 1 + (number of period effects)``.
    * ``"areg"`` (Stata ``areg``, and ``linearmodels`` with ``count_effects=True``): every
      fixed effect is counted, ``K = 1 + (units - 1) + (periods - 1) + 1``; with many units and
      few periods this inflates the standard error (by ~12% on ``mpdta``).

    With ``cluster=None`` the standard error is heteroskedasticity-robust (HC1): nothing is
    nested, so every fixed effect counts, ``N / (N - K)``. :func:`twfe_wcr` gives the wild
    cluster restricted bootstrap-t of the same coefficient.

    Parameters
    ----------
    panel, outcome, unit, time, first_treated, never_treated
        As in :func:`att_gt`. Rows with a missing outcome are dropped.
    cluster : str or None
        ``"unit"`` (default), a unit-level column to cluster on, or None.
    small_sample : {"fixest", "areg"}
    reference : {"t", "normal"}
        ``"t"`` (default): t(G - 1) critical values and p-values when clustered (as fixest and
        Stata), t(N - K) when not; ``"normal"``: the standard normal.
    confidence_level : float
    alternative : {"two-sided", "less", "greater"}

    Returns
    -------
    Result
        ``extra`` holds ``se``, ``small_sample``, ``df`` (the t reference's degrees of freedom,
        ``inf`` for normal), ``n_obs``, ``n_clusters`` and the dCDH weights summary.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3], "t": [1, 2] * 3,
    ...                    "g": [2, 2, 0, 0, 0, 0], "y": [1.0, 3.0, 1.0, 1.5, 2.0, 2.5]})
    >>> round(twfe(df, outcome="y", unit="u", time="t", first_treated="g",
    ...            never_treated=0).estimate, 6)
    1.5
    """
    level = _check_level(confidence_level)
    alternative = _check_alternative(alternative)
    if small_sample not in SMALL_SAMPLE:
        raise InvalidInputError(f"small_sample must be one of {SMALL_SAMPLE}, got "
                                f"{small_sample!r}")
    if reference not in ("t", "normal"):
        raise InvalidInputError(f"reference must be 't' or 'normal', got {reference!r}")
    fit, canon, diagnostics = _twfe_fit(panel, outcome=outcome, unit=unit, time=time,
                                        first_treated=first_treated,
                                        never_treated=never_treated, cluster=cluster)
    label = "Two-way fixed effects (PanelOLS, unit and period effects)"
    if fit is None:
        return Result(method="twfe.panelols", label=label, alternative=alternative,
                      confidence_level=level,
                      note="treatment does not vary in the panel: no TWFE estimate")
    beta, n_obs = fit.beta, len(fit.yt)
    n_u, n_t = fit.fe_sizes
    clustered = cluster is not None
    g = fit.n_clusters
    se, k = _twfe_se(fit, small_sample, clustered)
    if reference == "normal":
        df = math.inf
    else:
        df = float(g - 1) if clustered else float(n_obs - k)
    ci, tstat, p = _t_inference(beta, se, df, level, alternative)

    g_units = canon.group_by("unit").agg(pl.col("first_treated").first())["first_treated"]
    for gg, kk in sorted(g_units.drop_nulls().value_counts().rows()):
        if kk == 1:
            diagnostics.append(f"cohort first treated at {gg} contains a single unit: clustered "
                               "standard errors are over-precise")
    if clustered and g < 30:
        diagnostics.append(f"only {g} clusters: cluster-robust standard errors are unreliable "
                           "(Cameron and Miller 2015); read the wild cluster restricted "
                           "bootstrap and randomization inference")
    extra: dict[str, Any] = {"se": se, "small_sample": small_sample if clustered else
                             f"{small_sample} (HC1)", "df": df, "n_obs": n_obs,
                             "n_clusters": g if clustered else -1, "k": k}
    weights_dcdh = _dcdh_weights(canon)
    if weights_dcdh is not None:
        neg = weights_dcdh[weights_dcdh < 0]
        extra["n_negative_weights"] = int(len(neg))
        extra["sum_negative_weights"] = float(neg.sum())
        if len(neg):
            diagnostics.append(f"TWFE puts negative weight on {len(neg)} treated unit-period "
                               "cell(s) (de Chaisemartin and D'Haultfoeuille 2020)")
    ref = (f"t({int(df)})" if math.isfinite(df) else "normal")
    note = (f"{TWFE_NOTE} Standard error: CR1, small-sample convention '{small_sample}' "
            f"(K = {k}); reference distribution {ref}." if clustered else
            f"{TWFE_NOTE} Standard error: HC1 (K = {k}); reference distribution {ref}.")
    return Result(method="twfe.panelols", estimate=beta, ci=ci, confidence_level=level,
                  statistic=tstat, pvalue=p, alternative=alternative, n=(n_u, n_t),
                  label=label, note=note, diagnostics=tuple(diagnostics), extra=extra)


def twfe_wcr(
    panel: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str = "rate",
    unit: str = "area",
    time: str = "period_index",
    first_treated: str = "first_treated",
    never_treated: int | None = None,
    cluster: str = "unit",
    weights: str = "rademacher",
    n_boot: int = 9999,
    rng: Any = None,
    null: float = 0.0,
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Wild cluster restricted (WCR) bootstrap-t of the TWFE coefficient.

    The few-cluster test recommended by Cameron, Gelbach and Miller (2008) and MacKinnon and
    Webb (2017), as Stata ``boottest`` (Roodman, MacKinnon, Nielsen and Webb 2019), R
    ``fwildclusterboot`` and Python ``wildboottest`` compute it: the model is re-estimated with
    the null ``beta = null`` imposed, the restricted residuals of each cluster are multiplied by
    one weight per cluster (Rademacher +-1, or the six-point weights of Webb 2023), and the
    observed cluster-robust t is compared with the bootstrap t's. When every weight pattern
    fits within ``n_boot`` (``2**G`` Rademacher, ``6**G`` Webb) they are all enumerated, the
    p-value is exact and deterministic, and ``rng`` is unused; otherwise ``n_boot`` random
    draws give ``p = (1 + #extreme) / (1 + n_boot)``. The interval collects the nulls the test
    does not reject (test inversion, as ``boottest``). The p-value and interval do not depend on
    the small-sample factor (it scales the observed and bootstrap t alike).

    Parameters
    ----------
    panel, outcome, unit, time, first_treated, never_treated, cluster
        As in :func:`twfe` (clustering is required).
    weights : {"rademacher", "webb"}
    n_boot : int
        Random draws, and the largest number of patterns enumerated.
    rng : numpy.random.Generator, int or None
    null : float
        The hypothesised coefficient.
    confidence_level : float
    alternative : {"two-sided", "less", "greater"}
        Two-sided is the symmetric test (``|t*| >= |t|``).

    Returns
    -------
    Result
        ``statistic`` is the observed t with the CR1 (fixest) standard error; ``extra`` holds
        ``exact``, ``n_boot`` (patterns or draws), ``smallest_pvalue`` (the smallest p the
        enumeration can give) and ``n_clusters``. Ties with the observed ``|t|`` count as
        extreme (the patterns ``v = 1`` and ``v = -1`` reproduce it), so an enumerated p is at
        least ``2 / 2**G``.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3, 4, 4], "t": [1, 2] * 4,
    ...                    "g": [2, 2, 2, 2, 0, 0, 0, 0],
    ...                    "y": [1.0, 3.0, 1.0, 2.5, 1.0, 1.5, 2.0, 2.4]})
    >>> r = twfe_wcr(df, outcome="y", unit="u", time="t", first_treated="g", never_treated=0)
    >>> r.extra["exact"], r.extra["n_boot"]
    (True, 16)
    """
    if cluster is None:
        raise InvalidInputError("twfe_wcr needs a cluster ('unit' or a unit-level column)")
    if weights not in BOOT_WEIGHTS:
        raise InvalidInputError(f"weights must be one of {BOOT_WEIGHTS}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise InvalidInputError("n_boot must be a positive whole number")
    level = _check_level(confidence_level)
    alternative = _check_alternative(alternative)
    fit, canon, diagnostics = _twfe_fit(panel, outcome=outcome, unit=unit, time=time,
                                        first_treated=first_treated,
                                        never_treated=never_treated, cluster=cluster)
    label = f"Two-way fixed effects, wild cluster restricted bootstrap-t ({weights})"
    if fit is None:
        return Result(method="twfe.wcr", label=label, alternative=alternative,
                      confidence_level=level,
                      note="treatment does not vary in the panel: no TWFE estimate")
    se, _ = _twfe_se(fit, "fixest", True)
    lin = _twfe_wcr(fit.yt, fit.dt, fit.ccode, fit.n_clusters, fit.fe_codes, fit.fe_sizes)
    return _wcr_result(lin, est=fit.beta, se=se, null=float(null), weights=weights,
                       n_boot=int(n_boot), rng=rng, level=level, alternative=alternative,
                       n_clusters=fit.n_clusters, method="twfe.wcr", label=label,
                       n=fit.fe_sizes, diagnostics=diagnostics)


def _twfe_se(fit: _TwfeFit, small_sample: str, clustered: bool) -> tuple[float, int]:
    """CR1 (or HC1) standard error of the TWFE coefficient and the K of its correction."""
    n_obs = len(fit.yt)
    n_u, n_t = fit.fe_sizes
    resid = fit.yt - fit.beta * fit.dt
    if clustered:
        scores = np.zeros(fit.n_clusters)
        np.add.at(scores, fit.ccode, fit.dt * resid)
    else:
        scores = fit.dt * resid
    sdd = float(fit.dt @ fit.dt)
    # K: the coefficient, the period effects, and the unit effects unless nested in the
    # clusters (they always are when the cluster is a unit-level column; without clustering
    # nothing is nested)
    if small_sample == "fixest" and clustered:
        k = 1 + (n_t - 1) + 1
    else:
        k = 1 + (n_u - 1) + (n_t - 1) + 1
    if n_obs <= k:
        factor = math.nan
    elif clustered:  # CR1: G / (G - 1) * (N - 1) / (N - K)
        g = fit.n_clusters
        factor = g / (g - 1) * (n_obs - 1) / (n_obs - k) if g > 1 else math.nan
    else:  # HC1: N / (N - K)
        factor = n_obs / (n_obs - k)
    se = math.sqrt(factor * float(scores @ scores)) / sdd if math.isfinite(factor) else math.nan
    return se, k


def _twfe_fit(panel, *, outcome, unit, time, first_treated, never_treated, cluster):
    """PanelOLS coefficient and the two-way-demeaned arrays the standard errors need."""
    import pandas as pd
    from linearmodels.panel import PanelOLS

    frame = panel.collect() if isinstance(panel, pl.LazyFrame) else panel
    canon = panel_from_frame(frame, unit=unit, time=time, first_treated=first_treated,
                             outcome=outcome, never_treated=never_treated)
    dropped = canon.filter(pl.col("outcome").is_null() | pl.col("outcome").is_nan()).height
    canon = canon.filter(pl.col("outcome").is_not_null() & pl.col("outcome").is_not_nan())
    canon = canon.with_columns(
        (pl.col("first_treated").is_not_null() & (pl.col("time") >= pl.col("first_treated")))
        .cast(pl.Float64).alias("treated")
    )
    diagnostics: list[str] = []
    if dropped:
        diagnostics.append(f"{dropped} row(s) with a missing outcome dropped")
    d = canon["treated"].to_numpy()
    if canon.height == 0 or d.min() == d.max():
        return None, canon, diagnostics
    ustr = canon["unit"].cast(pl.String).to_numpy()
    _, ucode = np.unique(ustr, return_inverse=True)
    _, tcode = np.unique(canon["time"].to_numpy(), return_inverse=True)
    n_u, n_t = int(ucode.max()) + 1, int(tcode.max()) + 1
    if cluster is None or cluster == "unit":
        ccode, n_cl = ucode, n_u
    else:
        if cluster not in frame.columns:
            raise InvalidInputError(f"panel: cluster column {cluster!r} is missing")
        cmap = frame.select(pl.col(unit).cast(pl.String).alias("unit"),
                            pl.col(cluster).cast(pl.String).alias("cl")).unique()
        if cmap.group_by("unit").len().filter(pl.col("len") > 1).height:
            raise InvalidInputError(f"panel: cluster {cluster!r} must be constant within a unit")
        if cmap["cl"].null_count():
            raise InvalidInputError(f"panel: cluster {cluster!r} has missing values")
        cl = pl.DataFrame({"unit": ustr}).join(cmap, on="unit", how="left",
                                               maintain_order="left")["cl"].to_numpy()
        _, ccode = np.unique(cl.astype(str), return_inverse=True)
        n_cl = int(ccode.max()) + 1
    y = canon["outcome"].to_numpy()
    fe_codes, fe_sizes = (ucode, tcode), (n_u, n_t)
    both = _within(np.column_stack([y, d]), fe_codes, fe_sizes)
    yt, dt_ = both[:, 0], both[:, 1]
    sdd = float(dt_ @ dt_)
    if sdd <= 1e-12 * len(d):
        return None, canon, diagnostics
    pdf = pd.DataFrame({"unit": ustr, "time": canon["time"].to_numpy(), "y": y, "treated": d}
                       ).set_index(["unit", "time"])
    model = PanelOLS(pdf["y"], pdf[["treated"]], entity_effects=True, time_effects=True)
    beta = float(model.fit().params["treated"])
    fwl = float(dt_ @ yt) / sdd
    if not math.isclose(beta, fwl, rel_tol=1e-7, abs_tol=1e-9 * max(1.0, float(np.abs(y).max()))):
        raise RuntimeError("natexp bug: TWFE coefficient from PanelOLS and from the within "
                           "transformation disagree")
    return (_TwfeFit(beta, yt, dt_, ccode, n_cl, fe_codes, fe_sizes), canon, diagnostics)


def _dcdh_weights(canon: pl.DataFrame) -> np.ndarray | None:
    """TWFE weights on treated cells (dCDH 2020, Thm 1) on a balanced panel, else None.

    With unit and period effects on a balanced panel the residual of D is
    ``D - mean_i(D) - mean_t(D) + mean(D)``; the weight of treated cell (i, t) is its residual
    over the sum of residuals of treated cells.
    """
    n_u, n_t = canon["unit"].n_unique(), canon["time"].n_unique()
    if canon.height != n_u * n_t:
        return None
    d = canon.sort("unit", "time")["treated"].to_numpy().reshape(n_u, n_t)
    eps = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
    treated = d == 1
    return eps[treated] / eps[treated].sum()
