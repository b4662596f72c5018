"""Simulation-based power for a planned (or completed) area-by-area rollout.

The exact 2x2 power (:mod:`natexp.causal.power`) assumes two fixed groups of independent
families. A rollout is different: families arrive over time in areas that go live on their own
dates, the design decides which family lands in which arm, and families in one area share
more than chance (an intra-area correlation). :func:`simulate_power` simulates the whole study
many times:

1. **Arms from the design.** Every day of the design's window in every area of the rollout
   schedule is assigned by the study's own design (:func:`natexp.data.cohort.assign`: the same
   code that builds the real cohort), giving each area's days in the treatment arm, in the
   control arm or excluded. Every simulated family is taken to meet the custody rule (the
   expected numbers are of eligible families).
2. **Families.** Each area-arm cell receives ``Poisson(rate x months)`` families
   (``arrivals="poisson"``), or exactly the rounded expected number (``"expected"``).
3. **Outcomes.** Each area draws its own uptake probability ``u`` from a beta distribution with
   mean ``baseline`` and intra-class correlation ``icc`` (``a = baseline (1 - icc) / icc``,
   ``b = (1 - baseline) (1 - icc) / icc``: the beta-binomial model, in which two families of one
   area have outcome correlation ``icc``; Donner and Klar 2000, section 2.3); a family in the
   treatment arm takes up support with probability ``min(max(u + effect, 0), 1)``, in the
   control arm with ``u``. ``icc = 0`` gives every area the baseline.
4. **Analyses** of every simulated study, each at significance ``1 - confidence_level``:

   * ``family_fisher`` / ``family_boschloo``: the family-level exact test of the pooled 2x2
     table (treatment x1/n1 vs control x2/n2), as the study's primary analysis computes it;
     it assumes families were assigned one by one, which the simulation does not, so with
     ``icc > 0`` its rejection rate under ``effect = 0`` shows how far that assumption inflates
     type I error;
   * ``area_t``: the cluster-level analysis of Hayes and Moulton (2017, *Cluster Randomised
     Trials*, 2nd ed., section 9.2): the uptake proportion of every area-arm cell with at least
     one family, compared between arms with Student's two-sample t-test (``df = k1 + k2 - 2``),
     as ``scipy.stats.ttest_ind(equal_var=True)``. Where the pooled variance is zero the test
     rejects exactly when the two means differ. An area that is in both arms (before and
     after its go-live) contributes one cell to each, and those two cells share the area's
     ``u``: the test ignores that pairing, which makes it conservative.

Power is the share of simulated studies whose analysis rejects, with a Clopper-Pearson interval
for the Monte Carlo error. Draws do not depend on ``effect``, so the same ``rng`` seed gives
common random numbers across effects; :func:`minimum_detectable_effect` searches the effect
that way.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from natexp.causal._rng import as_generator
from natexp.causal.result import InvalidInputError, Result

__all__ = ["ANALYSES", "PowerSimulation", "design_cells", "minimum_detectable_effect",
           "simulate_power"]

ANALYSES = ("family_fisher", "family_boschloo", "area_t")
_LABELS = {
    "family_fisher": "Fisher's exact test of the pooled families (assumes families assigned "
                     "one by one)",
    "family_boschloo": "Boschloo's exact test of the pooled families (assumes families "
                       "assigned one by one)",
    "area_t": "Cluster-level t-test of area-arm uptake proportions (Hayes and Moulton 2017, "
              "section 9.2)",
}
#: Days per month used to turn "families per area-month" into families per day.
DAYS_PER_MONTH = 365.25 / 12
#: Largest number of simulated families drawn at once (memory bound of one chunk).
_CHUNK_FAMILIES = 4_000_000


def design_cells(rollout: pl.DataFrame, design: Any) -> pl.DataFrame:
    """Days of the design's window that each area spends in each arm.

    Parameters
    ----------
    rollout : polars.DataFrame
        The rollout schedule (:func:`natexp.data.rollout.rollout_frame`).
    design : natexp.data.cohort.Design
        The study's design; its window and arm rule decide the cells.

    Returns
    -------
    polars.DataFrame
        Columns ``area``, ``arm`` ("treatment"/"control") and ``days``, sorted by area, then
        treatment before control;
        excluded days (areas live outside the treatment counties, phases not selected) are
        left out.

    Examples
    --------
    >>> import datetime as dt
    >>> from natexp.data.rollout import rollout_frame
    >>> from natexp.data.cohort import Design
    >>> ro = rollout_frame([
    ...     {"name": "A", "county": "North", "go_live": "2023-01-01", "phase": 1},
    ...     {"name": "B", "county": "South", "go_live": None, "phase": 2}])
    >>> d = Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2023, 6, 30),
    ...            followup_date=None, custody_at_followup=False, treatment_counties=("North",))
    >>> design_cells(ro, d).rows()
    [('A', 'treatment', 181), ('A', 'control', 184), ('B', 'control', 365)]
    """
    from natexp.data.cohort import assign

    days = pl.date_range(design.window_start, design.window_end, interval="1d", eager=True)
    areas = rollout["area"].to_list()
    skeleton = pl.DataFrame({
        "family_id": [f"{i}" for i in range(len(areas) * days.len())],
        "area": np.repeat(np.array(areas, dtype=object), days.len()).tolist(),
        "reception_date": pl.concat([days] * len(areas)) if areas else days.clear(),
        "release_date": pl.Series([None] * (len(areas) * days.len()), dtype=pl.Date),
    })
    assigned = assign(skeleton.lazy(), rollout, design).filter(pl.col("arm").is_not_null())
    return (
        assigned.group_by("area", "arm")
        .agg(pl.len().cast(pl.Int64).alias("days"))
        .sort("area", "arm", descending=[False, True])
        .collect()
    )


@dataclass(frozen=True)
class PowerSimulation:
    """Power of each analysis of a simulated rollout study.

    Attributes
    ----------
    results : tuple of Result
        One per analysis: ``method`` "power.simulated_<analysis>", ``estimate`` the power,
        ``ci`` its Clopper-Pearson interval (Monte Carlo error), ``extra``: rejections,
        undefined (simulations where the analysis had no test, counted as not rejecting),
        mean arm sizes and cell counts.
    cells : polars.DataFrame
        The design's area-arm cells with their expected families.
    draws : polars.DataFrame
        One row per simulated study: the pooled counts, the number of area-arm cells with
        families in each arm, every cell's uptakes and families (``cell_x``, ``cell_n``, lists
        in the order of ``cells``) and each analysis's decision (and the t-test's p-value).
    settings : Mapping
        The simulation's settings.
    """

    results: tuple[Result, ...]
    cells: pl.DataFrame
    draws: pl.DataFrame = field(repr=False)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def result(self, analysis: str) -> Result:
        """The power result of one analysis."""
        for r in self.results:
            if r.method == f"power.simulated_{analysis}":
                return r
        raise KeyError(analysis)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: settings, cells and each analysis's result."""
        return {
            "settings": dict(self.settings),
            "cells": self.cells.to_dicts(),
            "results": {r.method.removeprefix("power.simulated_"): r.to_dict()
                        for r in self.results},
        }

    def to_polars(self) -> pl.DataFrame:
        """One row per analysis: settings, power, interval, rejections."""
        rows = []
        for r in self.results:
            rows.append({
                "analysis": r.method.removeprefix("power.simulated_"),
                **{k: v for k, v in self.settings.items() if not isinstance(v, list | dict)},
                "power": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                "rejections": r.extra["rejections"], "undefined": r.extra["undefined"],
                "mean_n1": r.extra["mean_n1"], "mean_n2": r.extra["mean_n2"],
            })
        return pl.DataFrame(rows)

    def summary(self) -> str:
        """Plain-text summary, one line per analysis."""
        s = self.settings
        head = (f"Simulated power ({s['n_simulations']} studies; baseline {s['baseline']:g}, "
                f"effect {s['effect']:+g}, ICC {s['icc']:g}, "
                f"{s['families_per_area_month']} families per area-month):")
        return "\n".join([head, *(f"  {r.summary()}" for r in self.results)])

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return (f"<p>{html.escape(self.summary().splitlines()[0])}</p>"
                + self.to_polars()._repr_html_())


def _check(value: Any, name: str, lo: float, hi: float, *, open_lo: bool = False,
           open_hi: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number") from None
    bad = (math.isnan(v) or v < lo or v > hi or (open_lo and v == lo) or (open_hi and v == hi))
    if bad:
        raise InvalidInputError(f"{name} must be in {'(' if open_lo else '['}{lo}, {hi}"
                                f"{')' if open_hi else ']'}, got {v}")
    return v


def _rates(cells: pl.DataFrame, families_per_area_month: float | Mapping[str, float]) -> np.ndarray:
    if isinstance(families_per_area_month, Mapping):
        missing = sorted(set(cells["area"]) - set(families_per_area_month))
        if missing:
            raise InvalidInputError(
                f"families_per_area_month has no rate for {len(missing)} area(s) of the design")
        per_area = [_check(families_per_area_month[a], "families_per_area_month", 0, math.inf)
                    for a in cells["area"]]
        rate = np.array(per_area)
    else:
        rate = np.full(cells.height, _check(families_per_area_month, "families_per_area_month",
                                            0, math.inf))
    return rate * cells["days"].to_numpy() / DAYS_PER_MONTH


def _area_t(prop: np.ndarray, has: np.ndarray, treated: np.ndarray, alpha: float):
    """Student's t-test of cell proportions, treatment vs control cells, for every simulation
    (rows). Returns (pvalue, defined)."""
    t_mask = has & treated[None, :]
    c_mask = has & ~treated[None, :]
    k1, k2 = t_mask.sum(1), c_mask.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.where(t_mask, prop, 0.0).sum(1) / k1
        m2 = np.where(c_mask, prop, 0.0).sum(1) / k2
        ss1 = np.where(t_mask, (prop - m1[:, None]) ** 2, 0.0).sum(1)
        ss2 = np.where(c_mask, (prop - m2[:, None]) ** 2, 0.0).sum(1)
        df = k1 + k2 - 2
        sp2 = (ss1 + ss2) / df
        se = np.sqrt(sp2 * (1.0 / k1 + 1.0 / k2))
        t = (m1 - m2) / se
        from scipy import stats  # imported on use: the config imports this module

        p = 2.0 * stats.t.sf(np.abs(t), df)
    defined = (k1 >= 1) & (k2 >= 1) & (df >= 1)
    diff = m1 - m2
    zero_var = defined & (sp2 <= 0)
    # scipy gives nan when the pooled variance is zero: the two means then either differ
    # (every proportion equal within each arm, different between: reject) or do not.
    p = np.where(zero_var, np.where(np.abs(diff) > 0, 0.0, 1.0), p)
    p = np.where(defined, p, np.nan)
    return p, defined


def simulate_power(
    rollout: pl.DataFrame,
    design: Any,
    *,
    families_per_area_month: float | Mapping[str, float],
    baseline: float,
    effect: float,
    icc: float = 0.0,
    n_simulations: int = 1000,
    analyses: Sequence[str] = ("family_fisher", "area_t"),
    arrivals: str = "poisson",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    rng: Any = None,
) -> PowerSimulation:
    """Simulate a rollout study many times and report each analysis's power.

    Parameters
    ----------
    rollout : polars.DataFrame
        The rollout schedule (planned go-live dates).
    design : natexp.data.cohort.Design
        The study's design (window, arm rule).
    families_per_area_month : float or mapping of area to float
        Expected eligible families per area per month.
    baseline : float
        Mean uptake probability without the programme, in (0, 1).
    effect : float
        True effect of the programme on a family's uptake probability (risk difference).
    icc : float, default 0
        Intra-area correlation of uptake, in [0, 1).
    n_simulations : int, default 1000
    analyses : sequence of str
        From :data:`ANALYSES`.
    arrivals : {"poisson", "expected"}
        Random (Poisson) or fixed (rounded expected) numbers of families per area-arm cell.
    confidence_level : float, default 0.95
        Tests reject at ``1 - confidence_level``.
    alternative : {"two-sided", "less", "greater"}
        For the family-level tests (``less``: treatment uptake lower); the area-level
        t-test is two-sided only.
    rng : int, numpy.random.Generator or None
        Seed. The draws do not depend on ``effect``: one seed gives common random numbers.

    Returns
    -------
    PowerSimulation

    Raises
    ------
    InvalidInputError
        On invalid settings, or when the design leaves an arm with no area-days.

    Examples
    --------
    >>> import datetime as dt
    >>> from natexp.data.rollout import rollout_frame
    >>> from natexp.data.cohort import Design
    >>> ro = rollout_frame([
    ...     {"name": a, "county": "North" if i < 3 else "South",
    ...      "go_live": "2022-01-01" if i < 3 else None, "phase": 1}
    ...     for i, a in enumerate("ABCDEF")])
    >>> d = Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2024, 6, 30),
    ...            followup_date=None, custody_at_followup=False, treatment_counties=("North",))
    >>> sim = simulate_power(ro, d, families_per_area_month=2, baseline=0.15, effect=0.15,
    ...                      icc=0.02, n_simulations=200, rng=1)
    >>> round(sim.result("area_t").estimate, 2), round(sim.result("family_fisher").estimate, 2)
    (0.47, 0.81)
    """
    from natexp.causal.power import rejection_region

    baseline = _check(baseline, "baseline", 0, 1, open_lo=True, open_hi=True)
    effect = _check(effect, "effect", -1, 1)
    icc = _check(icc, "icc", 0, 1, open_hi=True)
    cl = _check(confidence_level, "confidence_level", 0.5, 1, open_hi=True)
    alpha = 1.0 - cl
    if isinstance(n_simulations, bool) or not isinstance(n_simulations, int | np.integer) \
            or n_simulations < 1:
        raise InvalidInputError("n_simulations must be a positive integer")
    analyses = tuple(analyses)
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown or not analyses:
        raise InvalidInputError(f"analyses must be taken from {ANALYSES}")
    if arrivals not in ("poisson", "expected"):
        raise InvalidInputError("arrivals must be 'poisson' or 'expected'")
    if alternative not in ("two-sided", "less", "greater"):
        raise InvalidInputError("alternative must be 'two-sided', 'less' or 'greater'")
    if alternative != "two-sided" and "area_t" in analyses:
        raise InvalidInputError("the area-level t-test is two-sided only")

    cells = design_cells(rollout, design)
    treated = (cells["arm"] == "treatment").to_numpy()
    if not treated.any() or treated.all():
        raise InvalidInputError("the design leaves an arm with no area-days: nothing to compare")
    expected = _rates(cells, families_per_area_month)
    cells = cells.with_columns(pl.Series("expected_families", expected))
    area_names = cells["area"].unique(maintain_order=True).to_list()
    area_of_cell = np.array([area_names.index(a) for a in cells["area"]])

    gen = as_generator(rng)
    n_cells = cells.height
    x_all = np.zeros((n_simulations, n_cells), dtype=np.int64)
    n_all = np.zeros((n_simulations, n_cells), dtype=np.int64)
    if icc > 0:
        a = baseline * (1 - icc) / icc
        b = (1 - baseline) * (1 - icc) / icc
    per_sim = max(float(expected.sum()) * 1.5, 1.0)
    chunk = int(max(1, min(n_simulations, _CHUNK_FAMILIES // per_sim)))
    for start in range(0, n_simulations, chunk):
        k = min(chunk, n_simulations - start)
        if arrivals == "poisson":
            n = gen.poisson(expected, size=(k, n_cells))
        else:
            n = np.broadcast_to(np.rint(expected).astype(np.int64), (k, n_cells)).copy()
        u = gen.beta(a, b, size=(k, len(area_names))) if icc > 0 else np.full(
            (k, len(area_names)), baseline)
        p = u[:, area_of_cell] + np.where(treated, effect, 0.0)[None, :]
        p = np.clip(p, 0.0, 1.0)
        # One uniform per family (drawn whatever the effect: common random numbers).
        flat_n = n.ravel()
        uniforms = gen.random(int(flat_n.sum()))
        hits = uniforms < np.repeat(p.ravel(), flat_n)
        starts = np.concatenate([[0], np.cumsum(flat_n)[:-1]])
        counts = np.add.reduceat(hits.astype(np.int64), starts) if hits.size else np.zeros_like(
            flat_n)
        counts = np.where(flat_n > 0, counts, 0)
        x_all[start:start + k] = counts.reshape(k, n_cells)
        n_all[start:start + k] = n

    x1 = x_all[:, treated].sum(1)
    n1 = n_all[:, treated].sum(1)
    x2 = x_all[:, ~treated].sum(1)
    n2 = n_all[:, ~treated].sum(1)
    has = n_all > 0
    draws: dict[str, Any] = {
        "simulation": np.arange(n_simulations), "x1": x1, "n1": n1, "x2": x2, "n2": n2,
        "cells_treatment": (has & treated[None, :]).sum(1),
        "cells_control": (has & ~treated[None, :]).sum(1),
        # Every cell's uptakes and families, in the order of ``cells``.
        "cell_x": x_all.tolist(), "cell_n": n_all.tolist(),
    }
    results = []
    for analysis in analyses:
        if analysis == "area_t":
            with np.errstate(invalid="ignore", divide="ignore"):
                prop = np.where(has, x_all / np.maximum(n_all, 1), 0.0)
            pvalue, defined = _area_t(prop, has, treated, alpha)
            reject = defined & (pvalue < alpha)
            draws["area_t_pvalue"] = pvalue
        else:
            test = analysis.removeprefix("family_")
            defined = (n1 > 0) & (n2 > 0)
            reject = np.zeros(n_simulations, dtype=bool)
            regions: dict[tuple[int, int], np.ndarray] = {}
            for i in np.flatnonzero(defined):
                key = (int(n1[i]), int(n2[i]))
                if key not in regions:
                    regions[key] = rejection_region(*key, test=test, confidence_level=cl,
                                                    alternative=alternative)
                reject[i] = regions[key][x1[i], x2[i]]
        draws[f"{analysis}_reject"] = reject
        r = int(reject.sum())
        from scipy import stats

        ci = stats.binomtest(r, n_simulations).proportion_ci(confidence_level=0.95,
                                                             method="exact")
        undefined = int((~defined).sum())
        results.append(Result(
            method=f"power.simulated_{analysis}", estimate=r / n_simulations,
            ci=(ci.low, ci.high), confidence_level=0.95, alternative=(
                "two-sided" if analysis == "area_t" else alternative),
            n=(n_simulations,), label=f"Simulated power: {_LABELS[analysis]}",
            note=("" if not undefined else f"{undefined} simulated studies had no test "
                  "(an arm without families or too few cells); counted as not rejecting"),
            extra={"rejections": r, "undefined": undefined, "significance": alpha,
                   "mean_n1": float(n1.mean()), "mean_n2": float(n2.mean()),
                   "interval": "Clopper-Pearson 95% interval of the Monte Carlo estimate"},
        ))
    settings = {
        "design": design.name, "window_start": design.window_start.isoformat(),
        "window_end": design.window_end.isoformat(),
        "families_per_area_month": (dict(families_per_area_month)
                                    if isinstance(families_per_area_month, Mapping)
                                    else float(families_per_area_month)),
        "baseline": baseline, "effect": effect, "icc": icc, "n_simulations": n_simulations,
        "arrivals": arrivals, "confidence_level": cl, "alternative": alternative,
        "areas": len(area_names), "cells": n_cells,
    }
    return PowerSimulation(tuple(results), cells, pl.DataFrame(draws), settings)


def minimum_detectable_effect(
    rollout: pl.DataFrame,
    design: Any,
    *,
    families_per_area_month: float | Mapping[str, float],
    baseline: float,
    icc: float = 0.0,
    power: float = 0.8,
    analysis: str = "area_t",
    n_simulations: int = 1000,
    arrivals: str = "poisson",
    confidence_level: float = 0.95,
    step: float = 0.01,
    rng: Any = None,
) -> Result:
    """Smallest increase in uptake (on a grid of ``step``) that ``analysis`` detects with at
    least ``power``, by simulation with common random numbers.

    The search doubles the effect from ``step`` until the power is reached, then bisects on the
    grid. Power is not exactly monotone in the effect for discrete tests, so the result is the
    smallest grid value found by the search, checked: its simulated power is at least
    ``power`` and one step less is not.

    Parameters
    ----------
    rollout, design, families_per_area_month, baseline, icc
        As :func:`simulate_power`.
    n_simulations, arrivals, confidence_level
        As :func:`simulate_power`.
    power : float, default 0.8
    analysis : str, default "area_t"
        One of :data:`ANALYSES`.
    step : float, default 0.01
        Grid of effects searched.
    rng : int or None
        Seed (the same draws for every effect tried).

    Returns
    -------
    Result
        ``method`` "mde.simulated_<analysis>"; ``estimate`` the effect (risk difference),
        NaN with a note when even ``1 - baseline`` is not detected with that power; ``extra``
        the simulated power at the effect and one step below.

    Examples
    --------
    >>> import datetime as dt
    >>> from natexp.data.rollout import rollout_frame
    >>> from natexp.data.cohort import Design
    >>> ro = rollout_frame([
    ...     {"name": a, "county": "North" if i < 3 else "South",
    ...      "go_live": "2022-01-01" if i < 3 else None, "phase": 1}
    ...     for i, a in enumerate("ABCDEF")])
    >>> d = Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2024, 6, 30),
    ...            followup_date=None, custody_at_followup=False, treatment_counties=("North",))
    >>> r = minimum_detectable_effect(ro, d, families_per_area_month=2, baseline=0.15,
    ...                               icc=0.02, n_simulations=200, rng=1)
    >>> r.estimate
    0.25
    """
    target = _check(power, "power", 0, 1, open_lo=True, open_hi=True)
    step = _check(step, "step", 0, 1, open_lo=True)
    if analysis not in ANALYSES:
        raise InvalidInputError(f"analysis must be one of {ANALYSES}")
    seed = int(as_generator(rng).integers(2**63 - 1))
    cache: dict[int, float] = {}

    def power_at(k: int) -> float:
        if k not in cache:
            sim = simulate_power(
                rollout, design, families_per_area_month=families_per_area_month,
                baseline=baseline, effect=min(k * step, 1 - baseline), icc=icc,
                n_simulations=n_simulations, analyses=(analysis,), arrivals=arrivals,
                confidence_level=confidence_level, rng=seed)
            cache[k] = sim.results[0].estimate
        return cache[k]

    k_max = int(math.floor((1 - baseline) / step + 1e-9))
    method = f"mde.simulated_{analysis}"
    label = f"Minimum detectable effect by simulation: {_LABELS[analysis]}"
    hi = 1
    while hi < k_max and power_at(hi) < target:
        hi = min(2 * hi, k_max)
    if power_at(hi) < target:
        return Result(method=method, n=(n_simulations,), label=label,
                      note=f"no effect up to {1 - baseline:g} reaches power {target:g}",
                      extra={"power_at_max": power_at(hi), "power_target": target})
    lo = 0  # power_at(0) is the size, below target for any sensible target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid
    return Result(
        method=method, estimate=round(hi * step, 12), n=(n_simulations,), label=label,
        extra={"power_at_estimate": power_at(hi),
               "power_one_step_below": power_at(hi - 1) if hi > 1 else None,
               "power_target": target, "step": step, "baseline": baseline, "icc": icc},
    )
