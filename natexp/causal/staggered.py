"""Staggered-rollout panel estimators: TWFE, Callaway-Sant'Anna ATT(g,t), few-cluster inference.

Operation Paramount went live area by area, so areas not yet live are a comparison group. This
module estimates programme effects on an area x period panel (:mod:`natexp.data.panel`) or on any
long panel normalised by :func:`natexp.data.panel.panel_from_frame`.

Estimators
----------
:func:`twfe`
    Two-way fixed effects with :class:`linearmodels.panel.PanelOLS` (unit and period effects,
    standard errors clustered by unit). Its note states its known bias under staggered timing
    with heterogeneous effects (Goodman-Bacon 2021; de Chaisemartin and D'Haultfoeuille 2020),
    and ``extra`` carries the de Chaisemartin-D'Haultfoeuille weights diagnostic.
:func:`att_gt` and :func:`aggte`
    Callaway and Sant'Anna (2021) group-time average treatment effects with the doubly robust
    2x2 estimator of Sant'Anna and Zhao (2020) (with no covariates it is the unconditional DiD),
    analytic influence-function standard errors computed as R's ``did`` computes them
    (``bstrap = FALSE``), the Wald pre-test of parallel trends, and the ``simple``, ``dynamic``
    (event study), ``group`` and ``calendar`` aggregations with their standard errors.
:func:`wild_bootstrap`
    Wild (multiplier) cluster bootstrap of an aggregated ATT with Rademacher or Webb weights;
    exact enumeration of all sign patterns when there are few clusters.
:func:`randomization_inference`
    Randomization inference over the go-live order (which units get which go-live dates), in the
    spirit of Roth and Sant'Anna (2023); exact enumeration when feasible.

Why hand-written: the project's chosen dependencies (DESIGN.md) have no Callaway-Sant'Anna
estimator; the Python ports (csdid 0.4, moderndid 0.4, diff-diff) are young 0.x projects outside
that list. The code below follows R ``did``/``DRDID`` and is tested against their published
output on ``mpdta``.

Whenever a treated cohort contains a single unit (in Paramount, Oxford went live alone), every
result carries a diagnostic: influence-function and cluster-robust standard errors then ignore the
cohort's own variability and are over-precise.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
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
            "clusters; see wild_bootstrap and randomization_inference"
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


def _compute_cells(
    prep: _Prepared,
    G: np.ndarray,
    *,
    control_group: str,
    anticipation: int,
    base_period: str,
    with_covariates: bool = True,
) -> _Cells:
    Y, times = prep.Y, prep.times
    n, n_t = Y.shape
    glist = np.unique(G[np.isfinite(G)])
    never = ~np.isfinite(G)
    rows: list[tuple] = []
    infs: list[np.ndarray] = []
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
                continue
            if base_period == "universal" and base == c:
                rows.append((g, times[c], times[base], 0.0, 0, 0,
                             "reference period of the universal base (0 by construction)"))
                infs.append(np.zeros(n))
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
                continue
            sub = treat | ctrl
            dy = Y[sub, c] - Y[sub, base]
            if with_covariates and prep.X is not None:
                xb = prep.X[sub, min(c, base), :]
                X = np.column_stack([np.ones(sub.sum()), xb])
            else:
                X = np.ones((int(sub.sum()), 1))
            att, inf_sub, note = _drdid_panel(dy, treat[sub].astype(float), X)
            inf_full = np.zeros(n)
            if math.isfinite(att):
                inf_full[sub] = (n / sub.sum()) * inf_sub
            rows.append((g, times[c], times[base], att, n_tr, n_co, note))
            infs.append(inf_full)
    if not rows:
        raise InvalidInputError("panel: no treated cohort with a pre-treatment period")
    arr = list(zip(*rows, strict=True))
    return _Cells(
        group=np.array(arr[0], dtype=float),
        time=np.array(arr[1], dtype=float),
        base=np.array(arr[2], dtype=float),
        att=np.array(arr[3], dtype=float),
        inf=np.column_stack(infs),
        n_treated=np.array(arr[4], dtype=int),
        n_control=np.array(arr[5], dtype=int),
        notes=tuple(arr[6]),
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
    """

    type: str
    overall: Result
    effects: tuple[Result, ...]
    diagnostics: tuple[str, ...]
    n_units: int
    n_clusters: int
    _inf_overall: np.ndarray = field(repr=False, compare=False, default=None)
    _inf_effects: np.ndarray = field(repr=False, compare=False, default=None)
    _codes: np.ndarray = field(repr=False, compare=False, default=None)

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


def _aggregate_arrays(att, inf, group, time, unit_group, type, min_e, max_e, with_inf=True):
    """Return (overall, overall_if, [(key, est, if)], notes)."""
    finite = np.isfinite(att)
    notes = []
    if not finite.all():
        notes.append(f"{int((~finite).sum())} cell(s) without an estimate left out")
    glist = np.unique(unit_group[np.isfinite(unit_group)])
    pg_g = np.array([np.mean(unit_group == g) for g in glist])
    pg = np.array([pg_g[np.searchsorted(glist, g)] if g in glist else 0.0 for g in group])
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
) -> AggregateResult:
    """Aggregate group-time ATTs as R ``did::aggte`` does, with analytic standard errors.

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
    >>> aggte(r, "simple").overall.estimate
    1.5
    """
    if type not in AGGREGATIONS:
        raise InvalidInputError(f"type must be one of {AGGREGATIONS}, got {type!r}")
    level = result.confidence_level if confidence_level is None else _check_level(confidence_level)
    alt = result.alternative if alternative is None else _check_alternative(alternative)
    n = result.n_units
    codes, n_cl = result._codes, result.n_clusters
    est, psi, effects, notes = _aggregate_arrays(
        np.asarray(result._att), np.asarray(result._inf), np.asarray(result._group),
        np.asarray(result._time), np.asarray(result._unit_group), type, min_e, max_e)
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
                      note="; ".join(notes), diagnostics=result.diagnostics,
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
        diagnostics=result.diagnostics,
        n_units=n,
        n_clusters=n_cl,
        _inf_overall=_readonly(psi),
        _inf_effects=_readonly(inf_eff),
        _codes=codes,
    )


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
    """Wild cluster (multiplier) bootstrap of an aggregated ATT.

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
    ...                    never_treated=0), "simple")
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
    n_permutations: int = 999,
    rng: Any = None,
    alternative: str = "two-sided",
) -> Result:
    """Randomization test of "no effect anywhere" over the go-live order.

    Under the sharp null that the programme changed no outcome, the go-live dates could have been
    handed to the units in any order. The test re-assigns the observed multiset of go-live
    periods (including "never") to the units, recomputes the aggregated Callaway-Sant'Anna ATT
    for each assignment and compares it with the observed one (Fisher randomization inference
    over adoption timing; cf. Roth and Sant'Anna 2023). Exact enumeration is used when the number
    of distinct assignments ``n! / prod(k_g!)`` is at most ``n_permutations``; otherwise
    ``n_permutations`` random assignments are drawn and ``p = (1 + #extreme) / (1 + B)``.

    Parameters
    ----------
    panel, outcome, unit, time, first_treated, never_treated, covariates, control_group,
    anticipation, base_period
        As in :func:`att_gt`.
    aggregation : {"simple", "dynamic", "group", "calendar"}
        Which overall ATT of :func:`aggte` is the test statistic.
    n_permutations : int
        Monte Carlo draws, and the largest number of assignments enumerated exactly.
    rng : numpy.random.Generator, int or None
    alternative : {"two-sided", "less", "greater"}
        Two-sided counts ``|T*| >= |T|``.

    Returns
    -------
    Result
        ``estimate`` and ``statistic`` are the observed aggregated ATT; ``pvalue`` the
        randomization p-value; ``extra`` holds the number of assignments, whether the
        enumeration was exact and the null distribution's mean and standard deviation.

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

    def statistic(G: np.ndarray) -> float:
        if control_group == "nevertreated" and np.isfinite(G).all():
            return math.nan
        cells = _compute_cells(prep, G, control_group=control_group,
                               anticipation=int(anticipation), base_period=base_period)
        est, _, _, _ = _aggregate_arrays(cells.att, cells.inf, cells.group, cells.time, G,
                                         aggregation, -math.inf, math.inf, with_inf=False)
        return est

    observed = statistic(prep.G)
    label = f"Randomization inference over go-live order ({aggregation} ATT)"
    method = f"randomization.{aggregation}"
    if not math.isfinite(observed):
        return Result(method=method, label=label, alternative=alternative,
                      note="the observed aggregated ATT is not defined")
    n = len(prep.G)
    keys = np.where(np.isfinite(prep.G), prep.G, np.inf)
    _, counts = np.unique(keys, return_counts=True)
    total = math.factorial(n)
    for c in counts:
        total //= math.factorial(int(c))
    exact = total <= n_permutations
    if exact:
        draws = [statistic(G) for G in _assignments(prep.G)]
    else:
        gen = as_generator(rng)
        draws = [statistic(prep.G[gen.permutation(n)]) for _ in range(int(n_permutations))]
    null = np.array(draws, dtype=float)
    undefined = int((~np.isfinite(null)).sum())
    null = null[np.isfinite(null)]
    tol = 1e-10 * max(1.0, abs(observed))
    if alternative == "two-sided":
        hits = int(np.sum(np.abs(null) >= abs(observed) - tol))
    elif alternative == "greater":
        hits = int(np.sum(null >= observed - tol))
    else:
        hits = int(np.sum(null <= observed + tol))
    p = hits / len(null) if exact else (1 + hits) / (1 + len(null))
    note = f"{undefined} assignment(s) gave no estimate and were left out" if undefined else ""
    return Result(method=method, estimate=observed, statistic=observed, pvalue=p,
                  alternative=alternative, n=(int(np.isfinite(prep.G).sum()),
                                              int((~np.isfinite(prep.G)).sum())),
                  label=label, note=note, diagnostics=prep.diagnostics,
                  extra={"n_assignments": int(total), "n_draws": len(null), "exact": exact,
                         "null_mean": float(null.mean()) if len(null) else math.nan,
                         "null_sd": float(null.std()) if len(null) else math.nan})


# --------------------------------------------------------------------------------------------
# two-way fixed effects


def twfe(
    panel: pl.DataFrame | pl.LazyFrame,
    *,
    outcome: str = "rate",
    unit: str = "area",
    time: str = "period_index",
    first_treated: str = "first_treated",
    never_treated: int | None = None,
    cluster: str | None = "unit",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Two-way fixed-effects DiD with :class:`linearmodels.panel.PanelOLS`.

    Fits ``y_it = a_i + b_t + beta * D_it + e_it`` with ``D_it = 1{t >= first_treated_i}``,
    unit and period effects, and standard errors clustered by unit (``cluster="unit"``) or by
    another unit-level column (linearmodels defaults: normal reference distribution, covariance
    adjusted for the absorbed effects, ``count_effects=True``). The note states the known bias of TWFE under staggered timing
    with heterogeneous effects. On a balanced panel ``extra`` holds the weights TWFE puts on the
    treated cells (de Chaisemartin and D'Haultfoeuille 2020, Theorem 1): ``n_negative_weights``
    and ``sum_negative_weights``.

    Parameters
    ----------
    panel, outcome, unit, time, first_treated, never_treated
        As in :func:`att_gt`. Rows with a missing outcome are dropped.
    cluster : str or None
        ``"unit"`` (default), a unit-level column to cluster on, or None for
        heteroskedasticity-robust standard errors.
    confidence_level : float
    alternative : {"two-sided", "less", "greater"}

    Returns
    -------
    Result

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"u": [1, 1, 2, 2, 3, 3], "t": [1, 2] * 3,
    ...                    "g": [2, 2, 0, 0, 0, 0], "y": [1.0, 3.0, 1.0, 1.5, 2.0, 2.5]})
    >>> round(twfe(df, outcome="y", unit="u", time="t", first_treated="g",
    ...            never_treated=0).estimate, 6)
    1.5
    """
    import pandas as pd
    from linearmodels.panel import PanelOLS

    level = _check_level(confidence_level)
    alternative = _check_alternative(alternative)
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
    if d.min() == d.max():
        return Result(method="twfe.panelols", label="Two-way fixed effects (PanelOLS)",
                      alternative=alternative, confidence_level=level,
                      note="treatment does not vary in the panel: no TWFE estimate")

    pdf = pd.DataFrame({
        "unit": canon["unit"].cast(pl.String).to_list(),
        "time": canon["time"].to_numpy(),
        "y": canon["outcome"].to_numpy(),
        "treated": d,
    }).set_index(["unit", "time"])
    model = PanelOLS(pdf["y"], pdf[["treated"]], entity_effects=True, time_effects=True)
    if cluster is None:
        fit = model.fit(cov_type="robust")
        n_cl = None
    elif cluster == "unit":
        fit = model.fit(cov_type="clustered", cluster_entity=True)
        n_cl = canon["unit"].n_unique()
    else:
        if cluster not in frame.columns:
            raise InvalidInputError(f"panel: cluster column {cluster!r} is missing")
        cmap = frame.select(pl.col(unit).cast(pl.String).alias("unit"),
                            pl.col(cluster).cast(pl.String).alias("cl")).unique()
        if cmap.group_by("unit").len().filter(pl.col("len") > 1).height:
            raise InvalidInputError(f"panel: cluster {cluster!r} must be constant within a unit")
        codes = pd.Series(pdf.index.get_level_values("unit")).map(
            dict(zip(cmap["unit"].to_list(), cmap["cl"].to_list(), strict=True)))
        cl = pd.DataFrame({"cl": pd.factorize(codes)[0]}, index=pdf.index)
        fit = model.fit(cov_type="clustered", clusters=cl)
        n_cl = int(cl["cl"].nunique())
    beta = float(fit.params["treated"])
    se = float(fit.std_errors["treated"])
    ci, z, p = _normal_inference(beta, se, level, alternative)

    g_units = canon.group_by("unit").agg(pl.col("first_treated").first())["first_treated"]
    for g, k in g_units.drop_nulls().value_counts().rows():
        if k == 1:
            diagnostics.append(f"cohort first treated at {g} contains a single unit: clustered "
                               "standard errors are over-precise")
    if n_cl is not None and n_cl < 30:
        diagnostics.append(f"only {n_cl} clusters: cluster-robust standard errors are unreliable "
                           "(Cameron and Miller 2015); see randomization_inference")
    extra: dict[str, Any] = {"se": se, "n_obs": int(fit.nobs),
                             "n_clusters": n_cl if n_cl is not None else -1}
    weights = _dcdh_weights(canon)
    if weights is not None:
        neg = weights[weights < 0]
        extra["n_negative_weights"] = int(len(neg))
        extra["sum_negative_weights"] = float(neg.sum())
        if len(neg):
            diagnostics.append(f"TWFE puts negative weight on {len(neg)} treated unit-period "
                               "cell(s) (de Chaisemartin and D'Haultfoeuille 2020)")
    return Result(method="twfe.panelols", estimate=beta, ci=ci, confidence_level=level,
                  statistic=z, pvalue=p, alternative=alternative,
                  n=(canon["unit"].n_unique(), canon["time"].n_unique()),
                  label="Two-way fixed effects (PanelOLS, unit and period effects)",
                  note=TWFE_NOTE, diagnostics=tuple(diagnostics), extra=extra)


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
