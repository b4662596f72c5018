"""The causal graph of the design in DoWhy: identification, an estimate and four refuters.

The graph of an area-by-area rollout (one node per column of :func:`dowhy_frame`, plus one
unobserved node)::

    area_context (unobserved) --> treatment and --> outcome
    parent_female, n_children, carer_parent, months_at_risk --> treatment and --> outcome
    treatment --> outcome

``area_context`` stands for everything about an area that decides whether it went live first
AND affects uptake (local services, police practice, geography): the main threat to a
comparison of one county with others. It is not observed, so the effect is not identified
without assuming it away: DoWhy identifies on the graph without that node (with it DoWhy 0.14
finds no backdoor set and gives no estimate), and the result states the assumption in
``assumptions``. (An earlier version made area and go-live
date instruments, which assumed the area-level confounding away silently.)
``months_at_risk`` is the time from the parent's reception into prison to the follow-up date:
control families come from earlier in the window (their areas were not yet live), so they had
longer to take up support, and requiring custody at follow-up selects longer sentences among
them. The sex of the imprisoned parent, the number of children and whether a parent cares for
them are family-level common causes. DoWhy identifies the effect by the backdoor criterion
(adjusting for the observed common causes).

Estimator
    ``backdoor.linear_regression`` by default: a linear probability model of the 0/1 outcome on
    the treatment and the common causes. Its coefficient is the covariate-adjusted risk
    difference, it needs no overlap within strata and it behaves at n = 35 or 85. Its interval
    and p-value are DoWhy's (statsmodels OLS, classical standard errors), which treat families
    as independent although areas were assigned.

Refuters (what each can show: ``DoWhyAnalysis.interpretation``)
    placebo treatment (permute the treatment column) and random common cause pass by
    construction for a regression; the data subset (80%) refuter shows sampling stability only;
    the unobserved common cause refuter is the one that tests something (how far a confounder of
    a stated strength moves the estimate). DoWhy reports the refuter p-values with a normal
    approximation below 100 simulations; so for the placebo refuter natexp also computes its own
    permutation p-value of the adjusted coefficient: every permutation of the treatment labels
    when there are at most ``n_permutations`` of them (exact), otherwise ``n_permutations``
    random permutations drawn with ``rng`` and ``p = (1 + hits) / (1 + B)`` (Monte Carlo).
    ``extra["exact"]`` says which.

    With DoWhy 0.14 and ``backdoor.linear_regression`` natexp replays the placebo,
    random-common-cause and data-subset refuters rather than calling them: the same draws from
    the same seeded ``RandomState``, the same statsmodels regression per simulation and DoWhy's
    own significance test, without DoWhy's per-refit overhead (pandas copies, encoders, deep
    copies and a formatted model summary per refit). The numbers are DoWhy's to the last bit
    (tested against ``CausalModel.refute_estimate``). The default run's DoWhy step (model,
    estimate, four refuters with 100 simulations each, 9,999 permutations) went from 4.5 s to
    0.5 s of CPU. Any other estimator or DoWhy version runs DoWhy's refuters.

DoWhy 0.14 pitfalls handled here: the treatment is passed as 0/1 integers (the
``add_unobserved_common_cause`` refuter fails on a boolean column under pandas 3); that refuter
draws from numpy's global generator, which is seeded from ``rng`` for the call and restored
afterwards; the data-subset refuter gets a ``numpy.random.RandomState`` rather than an int seed
(DoWhy passes an int unchanged to every ``DataFrame.sample`` call, so all its "random" subsets
would be the same one and its p-value 0); covariates constant in the sample are dropped from the
graph (they make the design matrix singular). dowhy and pandas are imported only when a function here is called.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from natexp.causal._rng import as_generator
from natexp.causal.result import InvalidInputError, Result, _fmt, _freeze, _plain

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from natexp.data.cohort import Cohort

__all__ = ["AREA_CONFOUNDER", "COMMON_CAUSES", "REFUTER_INTERPRETATION", "DoWhyAnalysis", "causal_graph", "dowhy_analysis", "dowhy_frame",
           "permutation_pvalue"]

#: Observed common causes of treatment and outcome, in graph order.
COMMON_CAUSES = ("parent_female", "n_children", "carer_parent", "months_at_risk")
#: Rollout columns of the frame (kept for users; not in the graph: the area-level confounder
#: makes them confounded too, not instruments).
ROLLOUT_CAUSES = ("area", "go_live")
#: The unobserved area-level common cause of treatment and outcome.
AREA_CONFOUNDER = "area_context"
#: What each refuter can show, for the report.
REFUTER_INTERPRETATION = {
    "placebo_treatment": "passes by construction: permuting the treatment breaks any link with "
                         "uptake, so the new effect is near zero whatever the truth; it checks "
                         "the estimator, not the design",
    "placebo_permutation": "a permutation p-value of the adjusted coefficient that treats "
                           "families as assigned one by one; areas were assigned, so read the "
                           "randomization test over the declared mechanism instead",
    "random_common_cause": "passes by construction for a regression: an independent random "
                           "covariate leaves the coefficient unchanged in expectation",
    "data_subset": "shows only stability under resampling (sampling variation), not bias",
    "unobserved_common_cause": "tests something: how far a simulated confounder of the stated "
                               "strength moves the estimate (a sensitivity analysis, not a "
                               "pass/fail test); area-level confounding in a comparison of "
                               "few areas can be much stronger",
}
TREATMENT = "treatment"
_PARENT_CARERS = ("mother", "father")


def dowhy_frame(cohort: Cohort, children: pl.DataFrame | pl.LazyFrame | None = None, *,
                outcome: str, among: str | None = None) -> pd.DataFrame:
    """The analysis data for DoWhy: one row per family, every column numeric.

    Parameters
    ----------
    cohort : Cohort
    children : polars.DataFrame or LazyFrame, optional
        The children table; gives ``n_children`` and ``carer_parent``. Without it only
        ``parent_female`` is a common cause.
    outcome : str
        Boolean outcome column (0/1 in the frame, under its own name).
    among : str or None
        None: every identified family; a boolean column: only families where it is True
        (e.g. ``"followup_reached"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``treatment`` (0/1 int), the outcome (0/1 int), ``parent_female`` (0/1; only
        when the families have ``parent_sex``), ``n_children``, ``carer_parent`` (1 when at
        least half of the family's children live with their mother or father; only when the
        children have ``carer``), ``months_at_risk`` (months from reception to the
        follow-up date, or to the window end without one), ``area`` (position in the rollout
        schedule) and ``go_live`` (days from the window start to the area's go-live; 100000
        when never).
        Rows sorted by family id; no identifier column.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, kids = generate()
    >>> df = dowhy_frame(build_cohort(fam.lazy(), load_rollout(), default_design()), kids,
    ...                  outcome=default_study().outcome.column)
    >>> df.shape, str(df["treatment"].dtype), int(df["treatment"].sum())
    ((85, 8), 'int64', 46)
    """
    import pandas as pd

    lf = cohort.members
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    # a study's extract may lack the columns of a covariate (the families' parent_sex, the
    # children's carer): that covariate is then left out (the diagnostics say so)
    has_sex = "parent_sex" in lf.collect_schema().names()
    m = lf.select("family_id", "area", "arm", "go_live", "reception_date",
                  *(["parent_sex"] if has_sex else []), outcome).collect()
    areas = cohort.rollout["area"].to_list()
    start = cohort.design.window_start
    until = cohort.design.followup_date or cohort.design.window_end
    m = m.with_columns(
        (pl.col("arm") == "treatment").cast(pl.Int64).alias(TREATMENT),
        pl.col(outcome).fill_null(False).cast(pl.Int64).alias(outcome),
        pl.col("area").replace_strict(areas, list(range(len(areas))), default=len(areas),
                                      return_dtype=pl.Int64).alias("area"),
        (pl.col("go_live") - pl.lit(start)).dt.total_days().fill_null(100_000)
        .cast(pl.Int64).alias("go_live"),
        ((pl.lit(until) - pl.col("reception_date")).dt.total_days().cast(pl.Float64)
         / 30.4375).alias("months_at_risk"),
    )
    cols = [TREATMENT, outcome]
    if has_sex:
        m = m.with_columns((pl.col("parent_sex") == "F").fill_null(False).cast(pl.Int64)
                           .alias("parent_female"))
        cols.append("parent_female")
    if children is not None:
        kids = children.lazy() if isinstance(children, pl.DataFrame) else children
        has_carer = "carer" in kids.collect_schema().names()
        per = kids.group_by("family_id").agg(
            pl.len().cast(pl.Int64).alias("n_children"),
            *([pl.col("carer").is_in(list(_PARENT_CARERS)).mean().alias("share_parent")]
              if has_carer else []),
        ).collect()
        m = m.join(per, on="family_id", how="left").with_columns(
            pl.col("n_children").fill_null(0))
        cols.append("n_children")
        if has_carer:
            m = m.with_columns((pl.col("share_parent").fill_null(0.0) >= 0.5).cast(pl.Int64)
                               .alias("carer_parent"))
            cols.append("carer_parent")
    cols.append("months_at_risk")
    m = m.sort("family_id")
    return pd.DataFrame({c: m[c].to_numpy() for c in [*cols, *ROLLOUT_CAUSES]})


def causal_graph(*, outcome: str,
                 common_causes: tuple[str, ...] = COMMON_CAUSES) -> str:
    """The design's causal graph in DOT (the format DoWhy accepts).

    Examples
    --------
    >>> print(causal_graph(outcome="took_up", common_causes=("parent_female",)))
    digraph {area_context -> treatment; area_context -> took_up; \
parent_female -> treatment; parent_female -> took_up; treatment -> took_up;}
    """
    edges = [f"{AREA_CONFOUNDER} -> {TREATMENT}", f"{AREA_CONFOUNDER} -> {outcome}"]
    for c in common_causes:
        edges += [f"{c} -> {TREATMENT}", f"{c} -> {outcome}"]
    edges.append(f"{TREATMENT} -> {outcome}")
    return "digraph {" + "; ".join(edges) + ";}"


def _nx_graph(outcome: str, common_causes: tuple[str, ...]):
    import networkx as nx

    # The graph DoWhy identifies with: the reported graph without the unobserved area-level
    # confounder (with it DoWhy 0.14 finds no backdoor set and returns no estimate). Dropping it
    # IS the no-area-confounding assumption, stated in DoWhyAnalysis.assumptions.
    g = nx.DiGraph()
    for c in common_causes:
        g.add_edges_from([(c, TREATMENT), (c, outcome)])
    g.add_edge(TREATMENT, outcome)
    return g


def _ols_effects(t: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Coefficient of each row of ``t`` in OLS of y on [t, z] (Frisch-Waugh-Lovell).

    ``z`` must contain the intercept. Vectorised over the rows of ``t`` (permutations).
    """
    proj = z @ np.linalg.pinv(z)  # hat matrix of z (symmetric)
    e_y = y - proj @ y
    e_t = t - t @ proj
    with np.errstate(divide="ignore", invalid="ignore"):
        return (e_t @ e_y) / np.einsum("ij,ij->i", e_t, e_t)


def permutation_pvalue(treatment: np.ndarray, outcome: np.ndarray,
                       covariates: np.ndarray | None = None, *, n_permutations: int = 9_999,
                       rng: Any = None) -> Result:
    """Permutation p-value of the covariate-adjusted (OLS) treatment coefficient.

    Permutes the 0/1 treatment labels, re-estimates the coefficient of the treatment in the OLS
    regression of the outcome on an intercept, the treatment and the covariates, and counts
    permutations with ``|b*| >= |b|`` (relative tolerance 1e-9 for rounding). Every distinct
    assignment of the treated labels is enumerated when there are at most ``n_permutations``
    (``p = hits / C(n, n_treated)``, exact); otherwise ``n_permutations`` random permutations
    are drawn with ``rng`` (``p = (1 + hits) / (1 + B)``, Monte Carlo).

    Without covariates the coefficient is the difference in means, and the exact p-value is
    that of ``scipy.stats.permutation_test`` with ``permutation_type="independent"`` on
    ``|mean difference|``.

    Parameters
    ----------
    treatment : array of 0/1
    outcome : array
    covariates : 2-D array, optional
        Columns to adjust for (an intercept is added).
    n_permutations : int, default 9999
    rng : numpy.random.Generator, int or None

    Returns
    -------
    Result
        ``method`` "refuter.placebo_treatment.permutation"; ``estimate``/``statistic`` the
        observed coefficient; ``pvalue`` two-sided; ``extra``: ``exact``, ``n_permutations``,
        ``null_mean``, ``null_sd``.

    Examples
    --------
    >>> r = permutation_pvalue(np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 0.0, 0.0]))
    >>> r.extra["exact"], r.pvalue
    (True, 0.3333333333333333)
    """
    t = np.asarray(treatment, dtype=float).ravel()
    y = np.asarray(outcome, dtype=float).ravel()
    if t.shape != y.shape or t.size < 2:
        raise InvalidInputError("treatment and outcome must be arrays of the same length >= 2")
    if not np.isin(t, (0.0, 1.0)).all():
        raise InvalidInputError("treatment must be 0/1")
    n = t.size
    z = np.ones((n, 1))
    if covariates is not None:
        cov = np.asarray(covariates, dtype=float).reshape(n, -1)
        z = np.column_stack([z, cov])
    if isinstance(n_permutations, bool) or int(n_permutations) < 1:
        raise InvalidInputError("n_permutations must be a positive integer")
    n_perm = int(n_permutations)
    obs = float(_ols_effects(t[None, :], y, z)[0])
    label = "Placebo treatment: permutation p-value of the adjusted OLS coefficient"
    method = "refuter.placebo_treatment.permutation"
    if not math.isfinite(obs):
        return Result(method=method, label=label, n=(int(t.sum()), int(n - t.sum())),
                      note="the treatment coefficient is not estimable (no variation left)")
    k = int(t.sum())
    total = math.comb(n, k)
    exact = total <= n_perm
    if exact:
        rows = np.zeros((total, n))
        for r, idx in enumerate(itertools.combinations(range(n), k)):
            rows[r, list(idx)] = 1.0
    else:
        gen = as_generator(rng)
        rows = np.array([gen.permutation(t) for _ in range(n_perm)])
    null = np.empty(rows.shape[0])
    chunk = 4096
    for s in range(0, rows.shape[0], chunk):
        null[s:s + chunk] = _ols_effects(rows[s:s + chunk], y, z)
    finite = null[np.isfinite(null)]
    hits = int(np.sum(np.abs(finite) >= abs(obs) * (1 - 1e-9)))
    p = hits / rows.shape[0] if exact else (1 + hits) / (1 + rows.shape[0])
    return Result(
        method=method, estimate=obs, statistic=obs, pvalue=min(p, 1.0), n=(k, n - k),
        label=label,
        note=("every assignment of the treatment labels enumerated (exact)" if exact else
              f"{n_perm} random permutations (Monte Carlo); C({n}, {k}) = {total} assignments"),
        extra={"exact": exact, "n_permutations": int(rows.shape[0]),
               "null_mean": float(finite.mean()) if finite.size else math.nan,
               "null_sd": float(finite.std()) if finite.size else math.nan},
    )


def describe_estimand(estimand: Any) -> str:
    """A deterministic text of DoWhy's identified estimand.

    DoWhy's own ``str(estimand)`` prints adjustment sets and instruments in Python-set order,
    which follows the hash seed, so the same model prints differently from run to run. This
    lists the same content with every set sorted.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> e = SimpleNamespace(estimand_type="NONPARAMETRIC_ATE", treatment_variable=["t"],
    ...     outcome_variable=["y"], backdoor_variables={"backdoor": ["b", "a"]},
    ...     general_adjustment_variables=None, instrumental_variables=["z2", "z1"],
    ...     frontdoor_variables=[])
    >>> print(describe_estimand(e))
    Estimand type: NONPARAMETRIC_ATE
    backdoor: d/d[t] E[y | a, b]
    iv: instruments z1, z2
    frontdoor: not identified
    """
    t = ", ".join(sorted(estimand.treatment_variable or []))
    y = ", ".join(sorted(estimand.outcome_variable or []))
    kind = getattr(estimand.estimand_type, "name", estimand.estimand_type)
    lines = [f"Estimand type: {kind}"]
    sets = dict(estimand.backdoor_variables or {})
    if estimand.general_adjustment_variables:
        sets.update(estimand.general_adjustment_variables)
    for name in sorted(sets):
        lines.append(f"{name}: d/d[{t}] E[{y} | {', '.join(sorted(sets[name] or []))}]")
    iv = sorted(estimand.instrumental_variables or [])
    lines.append("iv: " + (f"instruments {', '.join(iv)}" if iv else "not identified"))
    fd = sorted(estimand.frontdoor_variables or [])
    lines.append("frontdoor: " + (f"mediators {', '.join(fd)}" if fd else "not identified"))
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class DoWhyAnalysis:
    """Immutable record of the DoWhy model: graph, estimand, estimate and refutations.

    Attributes
    ----------
    graph : str
        The causal graph in DOT.
    estimand : str
        DoWhy's identified estimand, as text.
    adjustment_set : tuple of str
        Backdoor variables adjusted for.
    estimate : Result
        The causal estimate (``method`` "dowhy.<estimator>").
    refutations : Mapping[str, Result]
        ``placebo_treatment``, ``placebo_permutation`` (natexp's permutation p-value),
        ``random_common_cause``, ``data_subset``, ``unobserved_common_cause``.
    diagnostics : tuple of str
    settings : Mapping
    """

    graph: str
    estimand: str
    adjustment_set: tuple[str, ...]
    estimate: Result
    refutations: Mapping[str, Result]
    diagnostics: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    assumptions: tuple[str, ...] = ()

    @property
    def interpretation(self) -> dict[str, str]:
        """What each refuter can show (which pass by construction, which test something)."""
        return {k: REFUTER_INTERPRETATION.get(k, "") for k in self.refutations}

    def __post_init__(self) -> None:
        object.__setattr__(self, "refutations", MappingProxyType(dict(self.refutations)))
        object.__setattr__(self, "adjustment_set", tuple(self.adjustment_set))
        object.__setattr__(self, "diagnostics", tuple(self.diagnostics))
        object.__setattr__(self, "assumptions", tuple(self.assumptions))
        object.__setattr__(self, "settings", _freeze(dict(self.settings)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "method": "dowhy",
            "graph": self.graph,
            "estimand": self.estimand,
            "adjustment_set": list(self.adjustment_set),
            "estimate": self.estimate.to_dict(),
            "refutations": {k: v.to_dict() for k, v in self.refutations.items()},
            "diagnostics": list(self.diagnostics),
            "settings": _plain(self.settings),
            "assumptions": list(self.assumptions),
            "interpretation": self.interpretation,
        }

    def to_polars(self) -> pl.DataFrame:
        """One row per result: the estimate, then each refutation."""
        rows = [("estimate", self.estimate), *self.refutations.items()]
        return pl.DataFrame(
            [{"name": k, "method": r.method, "estimate": r.estimate, "ci_low": r.ci_low,
              "ci_high": r.ci_high, "pvalue": r.pvalue, "note": r.note,
              "extra": json.dumps(r.to_dict()["extra"], sort_keys=True, default=str)}
             for k, r in rows],
            schema={"name": pl.String, "method": pl.String, "estimate": pl.Float64,
                    "ci_low": pl.Float64, "ci_high": pl.Float64, "pvalue": pl.Float64,
                    "note": pl.String, "extra": pl.String},
        )

    def summary(self) -> str:
        """Plain text: graph, adjustment set, estimate, refutations, diagnostics."""
        lines = [f"DoWhy causal model: {self.graph}",
                 "Backdoor adjustment set: " + (", ".join(self.adjustment_set) or "(empty)"),
                 self.estimate.summary()]
        for name, r in self.refutations.items():
            lines.append(f"[{name}] {r.summary()}")
        lines.extend(f"! {d}" for d in self.diagnostics)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(r.estimate))}</td>"
                       f"<td>{html.escape(_fmt(r.pvalue))}</td><td>{html.escape(r.note)}</td>"
                       "</tr>" for k, r in [("estimate", self.estimate),
                                            *self.refutations.items()])
        diag = "".join(f"<p>{html.escape(d)}</p>" for d in self.diagnostics)
        return ("<div class='natexp-result'><strong>DoWhy causal model</strong>"
                f"<p><code>{html.escape(self.graph)}</code></p>"
                "<table><tr><th>result</th><th>estimate</th><th>p</th><th>note</th></tr>"
                f"{body}</table>{diag}</div>")


def _causal_model_class():
    """Import ``dowhy.CausalModel``, undoing its import-time ``sympy.init_printing()``.

    ``dowhy.causal_model`` calls ``sympy.init_printing()`` when imported, which replaces
    ``sys.displayhook`` (plain Python REPL: lists and strings then print without quotes);
    the hook is restored here. In IPython, sympy also registers its own plain-text printers,
    which natexp does not undo.
    """
    import sys

    hook = sys.displayhook
    try:
        from dowhy import CausalModel
    finally:
        sys.displayhook = hook
    return CausalModel


def _refutation(name: str, ref: Any, *, n_sim: int | None, seed: int | None,
                label: str) -> Result:
    res = getattr(ref, "refutation_result", None) or {}
    p = res.get("p_value", math.nan) if isinstance(res, Mapping) else math.nan
    p = math.nan if p is None else float(p)
    how = ""
    if not math.isnan(p) and n_sim is not None:
        how = ("DoWhy p-value from a normal approximation to the simulated effects (fewer than "
               "100 simulations)" if n_sim < 100 else
               "DoWhy p-value: share of simulated effects beyond the estimate (bootstrap test)")
    new = ref.new_effect
    new = float(np.mean(new)) if np.ndim(new) else float(new)
    return Result(
        method=f"refuter.{name}", estimate=new, pvalue=p, label=label, note=how,
        extra={"estimated_effect": float(ref.estimated_effect), "new_effect": new,
               "num_simulations": n_sim, "random_state": seed,
               "is_statistically_significant": bool(res.get("is_statistically_significant"))
               if isinstance(res, Mapping) and "is_statistically_significant" in res else None},
    )


#: DoWhy versions whose three simulation refuters natexp replays (:func:`_replayed_refutation`);
#: with any other version DoWhy runs its own (the replay copies 0.14's code path).
_REPLAYED_DOWHY = ("0.14",)
_REFUTATION_TYPES = {"placebo_treatment": "Refute: Use a Placebo Treatment",
                     "random_common_cause": "Refute: Add a random common cause",
                     "data_subset": "Refute: Use a subset of data"}


def _lr_effect(sm: Any, treatment: np.ndarray, causes: np.ndarray | None,
               y: np.ndarray) -> np.float64:
    """DoWhy 0.14's ``backdoor.linear_regression`` effect for one refit, by the same calls.

    ``RegressionEstimator._build_features``: the treatment as an (n, 1) column, concatenated
    with the common causes, as float, with statsmodels' constant prepended; ``sm.OLS(...).fit()``
    (pseudo-inverse); the effect is the mean prediction with the treatment set to 1 minus the
    mean with it set to 0. What DoWhy adds around these calls (pandas frames, encoders, a deep
    copy of the estimator, the model summary it formats for a debug log) touches no number.
    """
    def features(t: np.ndarray) -> np.ndarray:
        t2 = t.reshape((t.shape[0], 1))
        f = t2 if causes is None else np.concatenate((t2, causes), axis=1)
        return sm.add_constant(f.astype(float, copy=False), has_constant="add")

    fit = sm.OLS(y, features(treatment)).fit()
    one, zero = np.ones_like(treatment), np.zeros_like(treatment)
    return fit.predict(features(one)).mean() - fit.predict(features(zero)).mean()


def _replayed_refutation(kind: str, data: pd.DataFrame, *, outcome: str,
                         adjustment: list[str], estimate: Any, num_simulations: int,
                         random_state: int | np.random.RandomState,
                         subset_fraction: float = 0.8) -> Any:
    """DoWhy 0.14's placebo, random-common-cause or data-subset refuter, replayed.

    The same draws from the same ``RandomState`` in the same order, the same regression per
    simulation (:func:`_lr_effect`) and DoWhy's own ``CausalRefutation`` and
    ``test_significance``, without DoWhy's per-refit overhead (pandas copies, encoders, deep
    copies and a statsmodels summary per refit: ~15 ms each, 300 refits in a run). The results
    are identical to ``CausalModel.refute_estimate`` (tested: the same JSON on several studies'
    frames, rank-deficient subsets and both of DoWhy's significance tests). Only for
    ``backdoor.linear_regression`` without effect modifiers.

    ``kind``: "placebo_treatment" (``placebo_type="permute"``), "random_common_cause" or
    "data_subset" (``random_state`` must then be a ``RandomState``: an int would give DoWhy's
    every subset the same rows).
    """
    import statsmodels.api as sm
    from dowhy.causal_refuter import CausalRefutation, test_significance

    # The covariates exactly as DoWhy reads them (``np.asarray`` of the frame's columns, which
    # decides the design matrix's memory layout and so the last bits of every prediction).
    def causes(frame: pd.DataFrame, names: list[str]) -> np.ndarray | None:
        return np.asarray(frame[names]) if names else None

    t = data[[TREATMENT]].to_numpy()
    y = data[outcome].to_numpy()
    c = causes(data, adjustment)
    n = t.shape[0]
    if kind == "data_subset":
        if not isinstance(random_state, np.random.RandomState):
            raise TypeError("the data-subset replay needs a numpy RandomState")
        rs = random_state
    else:
        rs = np.random.RandomState(random_state)
    samples = []
    for _ in range(num_simulations):
        if kind == "placebo_treatment":
            idx = rs.choice(n, size=n, replace=False)
            samples.append(_lr_effect(sm, t[idx], c, y))
        elif kind == "random_common_cause":
            w = data.assign(w_random=rs.normal(size=n))
            samples.append(_lr_effect(sm, t, causes(w, [*adjustment, "w_random"]), y))
        elif kind == "data_subset":  # pandas' DataFrame.sample(frac=...): rows in drawn order
            idx = rs.choice(n, size=round(subset_fraction * n), replace=False).astype(
                np.intp, copy=False)
            sub = data.take(idx)
            samples.append(_lr_effect(sm, sub[[TREATMENT]].to_numpy(), causes(sub, adjustment),
                                      sub[outcome].to_numpy()))
        else:
            raise ValueError(f"no replay of the {kind!r} refuter")
    sims = np.array(samples)
    ref = CausalRefutation(estimate.value, np.mean(sims), refutation_type=_REFUTATION_TYPES[kind])
    # the placebo refuter tests its simulations against an effect of 0, the others against the
    # estimate
    against = _Zero() if kind == "placebo_treatment" else estimate
    ref.add_significance_test_results(test_significance(against, sims))
    return ref


class _Zero:
    """The placebo refuter's reference estimate: DoWhy tests its simulations against 0."""

    value = 0


def _replays(method: str) -> bool:
    """Whether :func:`_replayed_refutation` stands in for DoWhy's refuters here."""
    import dowhy

    return method == "backdoor.linear_regression" and dowhy.__version__ in _REPLAYED_DOWHY


def dowhy_analysis(
    cohort: Cohort, children: pl.DataFrame | pl.LazyFrame | None = None, *,
    outcome: str, among: str | None = "followup_reached",
    method: str = "backdoor.linear_regression", confidence_level: float = 0.95,
    n_simulations: int = 100, n_permutations: int = 9_999,
    unobserved_strength: tuple[float, float] = (0.1, 0.1), rng: Any = None,
) -> DoWhyAnalysis:
    """Build the design's DoWhy model, identify, estimate and refute the effect.

    Parameters
    ----------
    cohort : Cohort
    children : polars.DataFrame or LazyFrame, optional
        For the ``n_children`` and ``carer_parent`` common causes.
    outcome : str
        Boolean outcome (known for every identified family).
    among : str or None, default "followup_reached"
        The primary population, the reached families (35 in the default data); None: all
        identified families (85).
    method : str, default "backdoor.linear_regression"
        A DoWhy backdoor estimator (see the module docstring for why linear regression).
    confidence_level : float, default 0.95
    n_simulations : int, default 100
        Simulations of the placebo, random-common-cause and data-subset refuters (DoWhy
        uses a normal approximation for its refuter p-values below 100).
    n_permutations : int, default 9999
        natexp's own permutation test of the placebo refuter.
    unobserved_strength : (float, float), default (0.1, 0.1)
        DoWhy's ``effect_strength_on_treatment`` (probability that the simulated confounder
        flips the treatment) and ``effect_strength_on_outcome`` (its linear effect on the
        outcome) for the unobserved-common-cause refuter.
    rng : numpy.random.Generator, int or None
        Seeds every random step; the same seed gives identical results.

    Returns
    -------
    DoWhyAnalysis

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, kids = generate()
    >>> a = dowhy_analysis(build_cohort(fam.lazy(), load_rollout(), default_design()), kids,
    ...                    outcome=default_study().outcome.column, n_simulations=10, n_permutations=999, rng=1)
    >>> sorted(a.refutations)[:2], a.adjustment_set[-1]
    (['data_subset', 'placebo_permutation'], 'months_at_risk')
    """
    return start_dowhy_analysis(
        cohort, children, outcome=outcome, among=among, method=method,
        confidence_level=confidence_level, n_simulations=n_simulations,
        n_permutations=n_permutations, unobserved_strength=unobserved_strength, rng=rng,
        helper=False)()


def start_dowhy_analysis(
    cohort: Cohort, children: pl.DataFrame | pl.LazyFrame | None = None, *,
    outcome: str, among: str | None = "followup_reached",
    method: str = "backdoor.linear_regression", confidence_level: float = 0.95,
    n_simulations: int = 100, n_permutations: int = 9_999,
    unobserved_strength: tuple[float, float] = (0.1, 0.1), rng: Any = None,
    helper: bool = True,
) -> Callable[[], DoWhyAnalysis]:
    """:func:`dowhy_analysis` started now, finished when the returned function is called.

    The analysis frame is built here; DoWhy itself runs in the run's helper process
    (:mod:`natexp.workers`) when there is one and ``helper`` is True, otherwise in this
    process when the returned function is called. The result is the same either way. An error
    (e.g. an empty arm) is raised when the returned function is called.

    Parameters
    ----------
    helper : bool, default True
        False: never use the helper process.
    **kwargs
        As :func:`dowhy_analysis`.

    Returns
    -------
    callable
        ``finish() -> DoWhyAnalysis``.
    """
    try:
        job = _prepare(cohort, children, outcome=outcome, among=among, method=method,
                       confidence_level=confidence_level, n_simulations=n_simulations,
                       n_permutations=n_permutations,
                       unobserved_strength=unobserved_strength, rng=rng)
    except Exception as exc:  # raised when the result is asked for, as before
        err = exc

        def failed() -> DoWhyAnalysis:
            raise err

        return failed
    fut = None
    if helper:
        from natexp.workers import submit

        fut = submit(_fit_parts, job)
    if fut is None:
        return lambda: _fit(job)

    def finish() -> DoWhyAnalysis:
        from concurrent.futures import BrokenExecutor

        try:
            return _from_parts(fut.result())
        except BrokenExecutor:  # the helper died: the same analysis here
            return _fit(job)

    return finish


def _prepare(cohort: Cohort, children: Any, *, outcome: str, among: str | None, method: str,
             confidence_level: float, n_simulations: int, n_permutations: int,
             unobserved_strength: tuple[float, float], rng: Any) -> dict[str, Any]:
    """Check the arguments and build the analysis frame (everything but DoWhy)."""
    if not 0 < float(confidence_level) < 1:
        raise InvalidInputError("confidence_level must be in (0, 1)")
    if not method.startswith("backdoor."):
        raise InvalidInputError(f"method must be a DoWhy backdoor estimator, got {method!r}")
    gen = as_generator(rng)
    seeds = [int(s) for s in gen.integers(0, 2**31 - 1, size=5)]
    df = dowhy_frame(cohort, children, outcome=outcome, among=among)
    diagnostics: list[str] = []
    causes = [c for c in COMMON_CAUSES if c in df.columns]
    for c in list(causes):
        if df[c].nunique() < 2:
            causes.remove(c)
            diagnostics.append(f"{c} is constant ({df[c].iloc[0]}) among these {len(df)} "
                               "families: dropped from the graph and the adjustment set")
    if children is None:
        diagnostics.append("no children table: n_children and carer_parent are not adjusted for")
    diagnostics.extend(f"{c} is not adjusted for: {why}" for c, why in (
        ("parent_female", "the families have no parent_sex column"),
        ("carer_parent", "the children table has no carer column"))
        if c not in df.columns and not (children is None and c == "carer_parent"))
    n1 = int(df[TREATMENT].sum())
    n0 = len(df) - n1
    if n1 == 0 or n0 == 0:
        raise InvalidInputError("both arms need families for the DoWhy model")
    return {"data": df[[TREATMENT, outcome, *causes]], "outcome": outcome, "among": among,
            "causes": causes, "diagnostics": diagnostics, "n1": n1, "n0": n0, "n": len(df),
            "method": method, "confidence_level": confidence_level,
            "n_simulations": n_simulations, "n_permutations": n_permutations,
            "unobserved_strength": unobserved_strength, "seeds": seeds}


def _thaw(value: Any) -> Any:
    """Read-only mappings as dicts (picklable); tuples stay tuples."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


def _result_parts(r: Result) -> dict[str, Any]:
    return {f.name: _thaw(getattr(r, f.name)) for f in dataclass_fields(Result)}


def _fit_parts(job: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`_fit` in a helper process: the analysis as picklable parts."""
    a = _fit(job)
    return {"graph": a.graph, "estimand": a.estimand, "adjustment_set": a.adjustment_set,
            "estimate": _result_parts(a.estimate),
            "refutations": {k: _result_parts(v) for k, v in a.refutations.items()},
            "diagnostics": a.diagnostics, "settings": _thaw(a.settings),
            "assumptions": a.assumptions}


def _from_parts(parts: Mapping[str, Any]) -> DoWhyAnalysis:
    return DoWhyAnalysis(**{**parts, "estimate": Result(**parts["estimate"]),
                            "refutations": {k: Result(**v)
                                            for k, v in parts["refutations"].items()}})


def _fit(job: Mapping[str, Any], *, fast: bool = True) -> DoWhyAnalysis:
    """DoWhy's model, estimate and refuters on a prepared frame (:func:`_prepare`).

    With ``fast``, under pandas' object strings (:func:`natexp._pandas.object_strings`): DoWhy
    selects columns by name in every refit, and with pandas 3's Arrow-backed labels each
    selection goes through pyarrow (a third of the refuters' time). The labels' type does not
    enter any number (tested: the same results either way).
    """
    from natexp._pandas import object_strings

    with object_strings(fast) as plain:
        if plain:
            import pandas as pd

            d = job["data"]
            job = {**job, "data": pd.DataFrame({c: d[c].to_numpy() for c in d.columns})}
        return _fit_model(job)


def _fit_model(job: Mapping[str, Any]) -> DoWhyAnalysis:
    import logging

    data, outcome, among, causes = job["data"], job["outcome"], job["among"], job["causes"]
    method, confidence_level = job["method"], job["confidence_level"]
    n_simulations, n_permutations = job["n_simulations"], job["n_permutations"]
    unobserved_strength, seeds = job["unobserved_strength"], job["seeds"]
    diagnostics = list(job["diagnostics"])
    n1, n0 = job["n1"], job["n0"]
    graph_dot = causal_graph(outcome=outcome, common_causes=tuple(causes))

    CausalModel = _causal_model_class()  # noqa: N806

    n_warn = 0
    dowhy_log = logging.getLogger("dowhy")
    old_level = dowhy_log.level
    dowhy_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = CausalModel(data=data, treatment=TREATMENT, outcome=outcome,
                                graph=_nx_graph(outcome, tuple(causes)))
            estimand = model.identify_effect(proceed_when_unidentifiable=True)
            # DoWhy builds adjustment sets from Python sets, whose order follows the hash seed;
            # the regression's column order, and so the last bits of every estimate, would then
            # change from run to run. Sort them.
            for key, names in list(estimand.backdoor_variables.items()):
                estimand.backdoor_variables[key] = sorted(names)
            est = model.estimate_effect(
                estimand, method_name=method, confidence_intervals=True,
                test_significance=True, method_params={"confidence_level": float(
                    confidence_level)})
            refs: dict[str, Result] = {}
            replay = _replays(method)
            adjustment = list(est.estimator._observed_common_causes_names or [])

            def refute(kind: str, dowhy_name: str, random_state: Any, **kwargs: Any) -> Any:
                if replay:
                    return _replayed_refutation(
                        kind, data, outcome=outcome, adjustment=adjustment, estimate=est,
                        num_simulations=n_simulations, random_state=random_state, **kwargs)
                return model.refute_estimate(estimand, est, method_name=dowhy_name,
                                             num_simulations=n_simulations,
                                             random_state=random_state,
                                             **({"placebo_type": "permute"}
                                                if kind == "placebo_treatment" else kwargs))

            r = refute("placebo_treatment", "placebo_treatment_refuter", seeds[0])
            refs["placebo_treatment"] = _refutation(
                "placebo_treatment", r, n_sim=n_simulations, seed=seeds[0],
                label="Placebo treatment (permuted), DoWhy")
            refs["placebo_permutation"] = permutation_pvalue(
                data[TREATMENT].to_numpy(), data[outcome].to_numpy(),
                data[causes].to_numpy() if causes else None, n_permutations=n_permutations,
                rng=np.random.default_rng(seeds[1]))
            r = refute("random_common_cause", "random_common_cause", seeds[2])
            refs["random_common_cause"] = _refutation(
                "random_common_cause", r, n_sim=n_simulations, seed=seeds[2],
                label="Random common cause added, DoWhy")
            # an int random_state would give every simulation the SAME subset (DoWhy 0.14
            # passes it unchanged to each DataFrame.sample call): pass a RandomState instead
            r = refute("data_subset", "data_subset_refuter", np.random.RandomState(seeds[3]),
                       subset_fraction=0.8)
            refs["data_subset"] = _refutation(
                "data_subset", r, n_sim=n_simulations, seed=seeds[3],
                label="Random 80% subsets, DoWhy")
            # this refuter draws from numpy's global generator: seed it, then restore it
            state = np.random.get_state()  # noqa: NPY002 (DoWhy uses the legacy global)
            try:
                np.random.seed(seeds[4])  # noqa: NPY002
                r = model.refute_estimate(
                    estimand, est, method_name="add_unobserved_common_cause",
                    simulation_method="direct-simulation",
                    confounders_effect_on_treatment="binary_flip",
                    confounders_effect_on_outcome="linear",
                    effect_strength_on_treatment=float(unobserved_strength[0]),
                    effect_strength_on_outcome=float(unobserved_strength[1]),
                    plotmethod=None)
            finally:
                np.random.set_state(state)  # noqa: NPY002
            refs["unobserved_common_cause"] = _refutation(
                "unobserved_common_cause", r, n_sim=None, seed=seeds[4],
                label="Simulated unobserved common cause, DoWhy (direct simulation)")
            refs["unobserved_common_cause"] = Result(
                **{k: getattr(refs["unobserved_common_cause"], k)
                   for k in ("method", "estimate", "label", "note")},
                extra={**refs["unobserved_common_cause"].extra,
                       "effect_strength_on_treatment": float(unobserved_strength[0]),
                       "effect_strength_on_outcome": float(unobserved_strength[1])})
            n_warn = sum(1 for w in caught if "rank" in str(w.message).lower()
                         or "singular" in str(w.message).lower())
    finally:
        dowhy_log.setLevel(old_level)
    if n_warn:
        diagnostics.append(f"{n_warn} refit(s) had a rank-deficient design matrix (a covariate "
                           "constant within a subset or placebo sample)")
    ci = est.get_confidence_intervals()
    ci = tuple(float(v) for v in np.ravel(ci)[:2]) if ci is not None else (math.nan, math.nan)
    sig = est.test_stat_significance() if hasattr(est, "test_stat_significance") else None
    p = math.nan
    if isinstance(sig, Mapping) and "p_value" in sig:
        p = float(np.ravel(sig["p_value"])[0])
    backdoor = set(estimand.get_backdoor_variables() or [])
    estimate = Result(
        method=f"dowhy.{method}", estimate=float(est.value), ci=ci,
        confidence_level=float(confidence_level), pvalue=p, n=(n1, n0),
        label=f"DoWhy backdoor estimate ({method.split('.', 1)[1]}), {outcome}",
        note="interval and p-value from the regression (classical OLS standard errors)"
        if method == "backdoor.linear_regression" else "",
        extra={"outcome": outcome, "among": among, "n": job["n"]},
    )
    return DoWhyAnalysis(
        graph=graph_dot, estimand=describe_estimand(estimand),
        adjustment_set=tuple(c for c in causes if c in backdoor),
        estimate=estimate, refutations=refs, diagnostics=tuple(diagnostics),
        assumptions=(
            f"no area-level confounding: the graph's {AREA_CONFOUNDER} (what made an area go "
            "first and also affects uptake) is unobserved, so the effect is not identified "
            "without assuming it away; DoWhy proceeds as if it were absent",
            "time at risk (months from reception to follow-up) is adjusted for: control "
            "families come from earlier in the window, and custody at follow-up selects longer "
            "sentences among them" if "months_at_risk" in causes else
            "time at risk is constant in this sample and not adjusted for",
            "families are independent given the covariates (the interval ignores clustering "
            "by area)"),
        settings={"method": method, "n_simulations": n_simulations,
                  "n_permutations": n_permutations, "seeds": seeds,
                  "unobserved_strength": list(unobserved_strength)},
    )
