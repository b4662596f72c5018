"""Randomization inference over which areas went live first, and placebo go-live dates.

The areas of a staggered rollout were not chosen at random, but a randomization test asks a
sharp question: if the programme changed no family's outcome, how unusual is the observed
difference compared with the differences the *same families* would have shown had the treated
role gone to other areas? (Fisher randomization inference over adoption; cf. Roth and Sant'Anna
2023, "Efficient estimation for staggered rollout designs", for randomization over timing.)

Assignments (:func:`randomization_distribution`)
    The treated role is the set of areas that went live first: for a design of kind
    ``treated_counties`` the areas of the design's treatment counties; for a ``staggered`` design
    the areas live by the end of the window (override with ``treated_areas``). Every set of the
    same size among all areas of the schedule is an assignment (in the example study, 5 treated
    areas among 13: ``C(13, 5) = 1287``), enumerated exactly (random draws only above
    ``max_assignments``).

    Under an assignment ``S`` the areas entering the treated role take the go-live dates (and
    rollout phases) of the areas leaving it, matched in schedule order ("swap rule"); every other
    area keeps its own date. So the permuted treated areas take the observed treated areas'
    go-live dates and the schedule of the remaining areas is perturbed as little as possible.
    Each family is then re-assigned by the design's own rule (treated: live at reception in a
    treated-role area; control: not live at reception; live elsewhere: excluded), with the
    schedule-independent exclusions (outside the window, released before follow-up) unchanged.

The statistic
    The difference in the proportion with ``outcome`` (treatment minus control) among the
    families of the re-assigned cohort. Two choices, via ``among``:

    * ``among=None`` (default): among all identified families, using an ``outcome`` that is
      recorded for every family whatever its assignment. The sharp null is then well defined for
      every assignment, which is why it is the default.
    * ``among="followup_reached"``: among the reached families (the published 4/20 vs 2/15).
      Only families of the original call list can be reached, so under other assignments the
      comparison is among the originally reached families that remain in the cohort; the call
      list itself depended on the observed assignment, so read this variant with care.

    Assignments that leave an arm empty have no difference; they count as not extreme (they are
    kept in the denominator and reported in ``note``).

The declared assignment mechanism (:func:`unit_randomization_test`, what the pipeline runs)
    The comparison population is held fixed and the treated role is given to every set of
    whole blocks the declared mechanism allows (:func:`natexp.causal.assignment.
    enumerate_assignments`: e.g. which one of 3 counties went first). The statistic is the
    primary one (pooled families) or the area-level one (each area weighted equally).

Placebos that leave the true assignment alone (:func:`placebo_in_space`,
:func:`placebo_in_time`)
    Control-arm families only: a comparison block pretended live, or not-yet-live areas
    pretended live a few months early; Holm-adjusted p-values and the number expected
    significant by chance.

Placebo go-live dates (:func:`placebo_go_live`, not used by the pipeline)
    Shift every go-live date by -12..+12 months, rebuild the cohort with
    :func:`natexp.data.cohort.build_cohort` and record the difference each schedule would have
    found, with exact two-sided Boschloo and Fisher p-values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from natexp.causal._rng import as_generator
from natexp.causal._shared import (
    _NEVER,
    SensitivityTable,
    _boschloo_p,
    _check_level,
    _fisher_p,
    _rd,
    _schedule,
)
from natexp.causal.result import ALTERNATIVES, InvalidInputError, Result, _fmt

if TYPE_CHECKING:  # pragma: no cover
    from natexp.data.cohort import Cohort

__all__ = ["placebo_go_live", "placebo_in_space", "placebo_in_time", "randomization_distribution",
           "randomization_test", "unit_randomization_distribution", "unit_randomization_test"]

#: Boxes decided before the schedule matters (cohort.assign checks them first).
_FIXED_EXCLUSIONS = ("outside_window", "released_before_followup")
_ADDED_COLUMNS = ("county", "go_live", "phase", "live", "box", "arm")


@dataclass(frozen=True)
class _Cells:
    """Families that can be in the cohort under some schedule, collapsed to (area, day) cells."""

    area: np.ndarray  # index into the schedule's areas (len(areas) = not in the schedule)
    day: np.ndarray  # reception date, days since epoch
    n: np.ndarray  # families in the cell
    x: np.ndarray  # families with the outcome


def _cells(cohort: Cohort, outcome: str, among: str | None, areas: list[str]) -> _Cells:
    lf = cohort.frame.filter(~pl.col("box").is_in(list(_FIXED_EXCLUSIONS)))
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    got = (
        lf.group_by("area", "reception_date")
        .agg(pl.len().alias("n"), (pl.col(outcome) == True).sum().alias("x"))  # noqa: E712
        .sort("area", "reception_date")
        .collect()
    )
    index = {a: i for i, a in enumerate(areas)}
    return _Cells(
        area=np.array([index.get(a, len(areas)) for a in got["area"].to_list()], dtype=np.int64),
        day=got["reception_date"].cast(pl.Int64).to_numpy(),
        n=got["n"].cast(pl.Int64).to_numpy(),
        x=got["x"].cast(pl.Int64).to_numpy(),
    )


def _counts(cohort: Cohort, cells: _Cells, go: np.ndarray, phase: np.ndarray,
            role: np.ndarray) -> np.ndarray:
    """(x1, n1, x2, n2) for each schedule (rows of go/phase/role, one column per area).

    Mirrors the last steps of :func:`natexp.data.cohort.assign` (phase, live elsewhere, arm);
    the tests check it against ``build_cohort`` on permuted schedules.
    """
    d = cohort.design
    # one extra column for cells whose area is not in the schedule: never live, no phase
    go = np.concatenate([go, np.full((go.shape[0], 1), _NEVER)], axis=1)
    phase = np.concatenate([phase, np.full((phase.shape[0], 1), -1)], axis=1)
    role = np.concatenate([role, np.zeros((role.shape[0], 1), dtype=bool)], axis=1)
    out = np.zeros((go.shape[0], 4), dtype=np.int64)
    chunk = max(1, 2_000_000 // max(1, cells.area.size))
    for s in range(0, go.shape[0], chunk):
        g = go[s:s + chunk][:, cells.area]
        live = g <= cells.day
        ok = (np.isin(phase[s:s + chunk][:, cells.area], list(d.phases))
              if d.phases is not None else np.ones(live.shape, dtype=bool))
        if d.kind == "treated_counties":
            treated = ok & live & role[s:s + chunk][:, cells.area]
        else:
            treated = ok & live
        control = ok & ~live
        out[s:s + chunk, 0] = treated @ cells.x
        out[s:s + chunk, 1] = treated @ cells.n
        out[s:s + chunk, 2] = control @ cells.x
        out[s:s + chunk, 3] = control @ cells.n
    return out


def _swap(role0: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """Permutation of areas for the assignment ``chosen`` under the swap rule."""
    perm = np.arange(role0.size)
    chosen_set = set(chosen)
    ins = [i for i in sorted(chosen_set) if not role0[i]]
    outs = [i for i in np.flatnonzero(role0) if i not in chosen_set]
    for a, b in zip(ins, outs, strict=True):
        perm[a], perm[b] = b, a
    return perm


def _setup(cohort: Cohort, outcome: str, among: str | None,
           treated_areas: Sequence[str] | None):
    areas, go, phase, role = _schedule(cohort)
    if treated_areas is not None:
        unknown = set(treated_areas) - set(areas)
        if unknown:
            raise InvalidInputError(f"treated_areas not in the rollout: {sorted(unknown)}")
        role = np.array([a in set(treated_areas) for a in areas], dtype=bool)
    k = int(role.sum())
    if k == 0 or k == len(areas):
        raise InvalidInputError(
            "randomization needs at least one area in the treated role and one outside it"
        )
    return areas, go, phase, role, k, _cells(cohort, outcome, among, areas)


def randomization_distribution(
    cohort: Cohort, *, outcome: str, among: str | None = None,
    treated_areas: Sequence[str] | None = None, max_assignments: int = 20_000,
    n_draws: int = 9_999, rng: Any = None,
) -> pl.DataFrame:
    """The design's difference under every assignment of the treated role to areas.

    See the module docstring for the assignments (swap rule) and the statistic.

    Parameters
    ----------
    cohort : Cohort
        The observed cohort (its design and rollout define the assignments).
    outcome : str
        Boolean outcome column.
    among : str or None
        None: all identified families; a boolean column: only families where it is True.
    treated_areas : sequence of str, optional
        Areas in the treated role (default: the design's, see the module docstring).
    max_assignments : int
        Enumerate every assignment when there are at most this many; otherwise draw ``n_draws``
        random ones (the observed assignment is always row 0).
    n_draws : int
        Random assignments drawn when not enumerating.
    rng : numpy.random.Generator, int or None
        Only used when drawing.

    Returns
    -------
    polars.DataFrame
        One row per assignment: ``assignment`` (0 = observed), ``observed``, ``treated_areas``
        (list), ``x1, n1, x2, n2``, ``rd`` (NaN when an arm is empty).

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> d = randomization_distribution(build_cohort(fam.lazy(), load_rollout(), default_design()),
    ...                               outcome=default_study().outcome.column)
    >>> d.height, d.row(0, named=True)["x1"], d.row(0, named=True)["n1"]
    (1287, 8, 46)
    """
    areas, go, phase, role, k, cells = _setup(cohort, outcome, among, treated_areas)
    n_areas = len(areas)
    total = math.comb(n_areas, k)
    observed = tuple(int(i) for i in np.flatnonzero(role))
    if total <= max_assignments:
        combos = [observed] + [c for c in itertools.combinations(range(n_areas), k)
                               if c != observed]
    else:
        gen = as_generator(rng)
        combos = [observed] + [tuple(sorted(int(i) for i in gen.choice(n_areas, k,
                                                                      replace=False)))
                               for _ in range(int(n_draws))]
    perms = np.array([_swap(role, c) for c in combos])
    roles = np.zeros((len(combos), n_areas), dtype=bool)
    for r, c in enumerate(combos):
        roles[r, list(c)] = True
    counts = _counts(cohort, cells, go[perms], phase[perms], roles)
    x1, n1, x2, n2 = counts.T
    with np.errstate(divide="ignore", invalid="ignore"):
        rd = np.where((n1 > 0) & (n2 > 0), x1 / np.maximum(n1, 1) - x2 / np.maximum(n2, 1),
                      np.nan)
    return pl.DataFrame({
        "assignment": np.arange(len(combos)),
        "observed": np.arange(len(combos)) == 0,
        "treated_areas": [[areas[i] for i in c] for c in combos],
        "x1": x1, "n1": n1, "x2": x2, "n2": n2, "rd": rd,
    })


def _frac(x1: int, n1: int, x2: int, n2: int) -> Fraction | None:
    return Fraction(x1, n1) - Fraction(x2, n2) if n1 and n2 else None


def randomization_test(
    cohort: Cohort, *, outcome: str, among: str | None = None,
    treated_areas: Sequence[str] | None = None, alternative: str = "two-sided",
    confidence_level: float = 0.95, max_assignments: int = 20_000, n_draws: int = 9_999,
    rng: Any = None,
) -> Result:
    """Randomization p-value of the design's difference over assignments of go-live to areas.

    Every set of as many areas is an assignment (any k of N), whatever blocks the decision was
    made in: the pipeline uses :func:`unit_randomization_test` over the declared assignment
    space (:mod:`natexp.causal.assignment`) instead.

    The p-value is the share of assignments (the observed one included) whose difference is at
    least as extreme as the observed: ``|d| >= |d_obs|`` two-sided, ``d >= d_obs`` for
    ``"greater"``, ``d <= d_obs`` for ``"less"``. Differences are compared exactly, as
    fractions. With every assignment enumerated the smallest attainable p-value is
    ``1 / number of assignments``; with random draws ``p = (1 + hits) / (1 + draws)``.

    Parameters
    ----------
    cohort : Cohort
    outcome, among, treated_areas, max_assignments, n_draws, rng
        As in :func:`randomization_distribution`.
    alternative : {"two-sided", "less", "greater"}
    confidence_level : float, default 0.95
        Only for the warnings: a test whose smallest attainable p-value is not below
        ``1 - confidence_level`` cannot reach significance at that level.

    Returns
    -------
    Result
        ``method`` "randomization.go_live_areas"; ``estimate`` and ``statistic`` the observed
        difference; ``pvalue``; ``n`` the observed arm sizes; ``diagnostics`` honest warnings
        (few assignments, few distinct values, no assignment could be significant); ``extra``:
        ``n_assignments``, ``exact``, ``min_pvalue`` (1 / assignments), ``smallest_achievable``
        (share of assignments attaining the most extreme difference: the smallest p-value any
        observed assignment could have had with these data), ``n_distinct``, ``n_undefined``,
        ``treated_areas``, ``statistic_definition``, null mean and sd.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> r = randomization_test(build_cohort(fam.lazy(), load_rollout(), default_design()),
    ...                        outcome=default_study().outcome.column)
    >>> r.extra["n_assignments"], round(r.extra["min_pvalue"], 6)
    (1287, 0.000777)
    """
    if alternative not in ALTERNATIVES:
        raise InvalidInputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    cl = _check_level(confidence_level)
    dist = randomization_distribution(
        cohort, outcome=outcome, among=among, treated_areas=treated_areas,
        max_assignments=max_assignments, n_draws=n_draws, rng=rng)
    n_areas = cohort.rollout.height
    k = len(dist["treated_areas"][0])
    total = math.comb(n_areas, k)
    exact = total <= max_assignments
    rows = dist.select("x1", "n1", "x2", "n2").rows()
    fr = [_frac(*r) for r in rows]
    obs = fr[0]
    what = f"difference in {outcome} (treatment minus control) among " + (
        "all identified families" if among is None else f"families with {among} True")
    label = "Randomization test over which areas went live first"
    method = "randomization.go_live_areas"
    base_extra = {"n_assignments": total, "exact": exact, "treated_areas": dist[
        "treated_areas"][0].to_list(), "statistic_definition": what,
        "assignment_rule": "swap rule: areas entering the treated role take the go-live dates "
                           "of the areas leaving it"}
    if obs is None:
        return Result(method=method, alternative=alternative, label=label,
                      n=(rows[0][1], rows[0][3]),
                      note="an arm of the observed cohort is empty: no difference to test",
                      extra=base_extra)
    defined = [f for f in fr if f is not None]

    def extreme(f: Fraction | None) -> bool:
        if f is None:
            return False
        if alternative == "two-sided":
            return abs(f) >= abs(obs)
        return f >= obs if alternative == "greater" else f <= obs

    hits = sum(extreme(f) for f in fr)
    n = len(fr)
    # row 0 is the observed assignment (always a hit): exact hits / N, or (1 + B_hits) / (1 + B)
    p = hits / n
    if alternative == "two-sided":
        most = max(abs(f) for f in defined)
        n_most = sum(1 for f in defined if abs(f) == most)
    elif alternative == "greater":
        most = max(defined)
        n_most = sum(1 for f in defined if f == most)
    else:
        most = min(defined)
        n_most = sum(1 for f in defined if f == most)
    smallest = n_most / n
    n_distinct = len(set(defined))
    n_undef = n - len(defined)
    min_p = 1.0 / n
    thr = 1.0 - cl
    diag = []
    if min_p > thr:
        diag.append(f"only {n} assignments: the smallest possible p-value is 1/{n} = "
                    f"{_fmt(min_p)}, not below {thr:g}; this test cannot reach significance")
    elif smallest >= thr:
        diag.append(f"with these data the most extreme assignment has p = {_fmt(smallest)} "
                    f"({n_most} of {n} assignments tie at the extreme): no assignment could be "
                    f"significant at {thr:g}")
    if n_distinct < 20:
        diag.append(f"the difference takes only {n_distinct} distinct values over {n} "
                    "assignments: the p-value is coarse")
    if not exact:
        diag.append(f"{n - 1} random assignments of {total} (Monte Carlo, p = (1 + hits) / "
                    "(1 + draws))")
    rd = np.array([float(f) for f in defined])
    note = (f"{n_undef} assignment(s) leave an arm empty: no difference, counted as not "
            "extreme" if n_undef else "")
    return Result(
        method=method, estimate=float(obs), statistic=float(obs), pvalue=p,
        alternative=alternative, n=(rows[0][1], rows[0][3]), label=label, note=note,
        diagnostics=tuple(diag),
        extra={**base_extra, "n_evaluated": n, "min_pvalue": min_p,
               "smallest_achievable": smallest, "n_distinct": n_distinct,
               "n_undefined": n_undef, "null_mean": float(rd.mean()),
               "null_sd": float(rd.std())},
    )


def _families(cohort: Cohort) -> pl.LazyFrame:
    names = cohort.frame.collect_schema().names()
    return cohort.frame.drop([c for c in _ADDED_COLUMNS if c in names])


def placebo_go_live(
    cohort: Cohort, *, shifts: Sequence[int] = tuple(range(-12, 13)),
    outcome: str, among: str | None = None, confidence_level: float = 0.95,
) -> SensitivityTable:
    """The difference each schedule with every go-live shifted by ``s`` months would have found.

    Not a placebo in a ``treated_counties`` design: early shifts leave the treated arm as it is
    and only shrink the control arm, later shifts relabel treated families as controls. The
    pipeline uses :func:`placebo_in_space` and :func:`placebo_in_time` (control families only);
    this function is kept to show how the comparison moves with the schedule.

    For each shift the rollout's go-live dates move by ``s`` calendar months (polars
    ``offset_by``; the end of a month clips), the cohort is rebuilt with
    :func:`natexp.data.cohort.build_cohort` under the same design (same window, follow-up and
    exclusions) and the arms are counted with :func:`natexp.data.cohort.arm_counts`.

    Parameters
    ----------
    cohort : Cohort
    shifts : sequence of int, default -12..12
        Months.
    outcome : str
    among : str or None, default None
        As in :func:`randomization_distribution` (default: all identified families).
    confidence_level : float, default 0.95

    Returns
    -------
    SensitivityTable
        Columns ``shift, n1, n2, x1, x2, rd, p`` (two-sided Boschloo), ``p_fisher``,
        ``significant`` (``p < 1 - confidence_level``), ``observed`` (shift 0).

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> t = placebo_go_live(build_cohort(fam.lazy(), load_rollout(), default_design()), shifts=[0],
    ...                     outcome=default_study().outcome.column)
    >>> t.frame.select("n1", "x1", "n2", "x2").row(0)
    (46, 8, 39, 2)
    """
    from natexp.data.cohort import arm_counts, build_cohort

    cl = _check_level(confidence_level)
    shifts = [int(s) for s in shifts]
    fam = _families(cohort)
    rows = []
    for s in shifts:
        ro = cohort.rollout.with_columns(pl.col("go_live").dt.offset_by(f"{s}mo"))
        c = build_cohort(fam, ro, cohort.design)
        ac = arm_counts(c, outcome, among=among)
        (x1, n1), (x2, n2) = ac["treatment"], ac["control"]
        p = _boschloo_p(x1, n1, x2, n2)
        rows.append({"shift": s, "n1": n1, "n2": n2, "x1": x1, "x2": x2,
                     "rd": _rd(x1, n1, x2, n2), "p": p, "p_fisher": _fisher_p(x1, n1, x2, n2),
                     "significant": None if math.isnan(p) else p < 1 - cl,
                     "observed": s == 0})
    frame = pl.DataFrame(rows, schema={
        "shift": pl.Int64, "n1": pl.Int64, "n2": pl.Int64, "x1": pl.Int64, "x2": pl.Int64,
        "rd": pl.Float64, "p": pl.Float64, "p_fisher": pl.Float64, "significant": pl.Boolean,
        "observed": pl.Boolean})
    notes = []
    others = frame.filter(~pl.col("observed"))
    if others.height:
        sig = others.filter(pl.col("significant").fill_null(False))["shift"].to_list()
        notes.append(
            f"{len(sig)} of {others.height} placebo schedules give p < {1 - cl:g}"
            + (f" (shifts {', '.join(map(str, sig))} months)" if sig else "")
        )
        rng_ = others["rd"].drop_nans().drop_nulls()
        if rng_.len():
            notes.append(f"placebo differences range from {_fmt(rng_.min())} to "
                         f"{_fmt(rng_.max())}")
    headline = None
    obs = frame.filter(pl.col("observed"))
    if obs.height:
        r = obs.row(0, named=True)
        headline = Result(method="test.boschloo", estimate=r["rd"], pvalue=r["p"],
                          n=(r["n1"], r["n2"]),
                          label="Observed schedule: difference, two-sided Boschloo p")
    return SensitivityTable(
        method="sensitivity.placebo_go_live",
        title=f"Placebo go-live dates: every go-live shifted by {min(shifts)}..{max(shifts)} "
              "months" if shifts else "Placebo go-live dates",
        frame=frame, headline=headline, notes=tuple(notes),
        meta={"outcome": outcome, "among": among, "confidence_level": cl},
    )


# --------------------------------------------------------------------------------------------
# the declared assignment mechanism: unit labels over a fixed comparison population


def _exact_pvalue(fr: Sequence[Fraction | None], alternative: str
                  ) -> tuple[float, float, int, int, int]:
    """p, share attaining the most extreme value, n_most, n_distinct, n_undefined (row 0 =
    observed, compared exactly)."""
    obs = fr[0]
    assert obs is not None
    defined = [f for f in fr if f is not None]

    def extreme(f: Fraction | None) -> bool:
        if f is None:
            return False
        if alternative == "two-sided":
            return abs(f) >= abs(obs)
        return f >= obs if alternative == "greater" else f <= obs

    n = len(fr)
    p = sum(extreme(f) for f in fr) / n
    if alternative == "two-sided":
        most = max(abs(f) for f in defined)
        n_most = sum(1 for f in defined if abs(f) == most)
    elif alternative == "greater":
        most = max(defined)
        n_most = sum(1 for f in defined if f == most)
    else:
        most = min(defined)
        n_most = sum(1 for f in defined if f == most)
    return p, n_most / n, n_most, len(set(defined)), n - len(defined)


def _unit_cells(cohort: Cohort, outcome: str, among: str | None, units: Sequence[str],
                unit_col: str) -> tuple[np.ndarray, np.ndarray, dict[str, set[str]]]:
    lf = cohort.members
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    got = (lf.group_by(unit_col, "arm")
           .agg(pl.len().alias("n"), (pl.col(outcome) == True).sum().alias("x"))  # noqa: E712
           .collect())
    index = {u: i for i, u in enumerate(units)}
    x = np.zeros(len(units), dtype=np.int64)
    n = np.zeros(len(units), dtype=np.int64)
    arms: dict[str, set[str]] = {}
    for r in got.iter_rows(named=True):
        u = str(r[unit_col])
        if u not in index:
            raise InvalidInputError(f"cohort unit not in the assignment space ({unit_col})")
        x[index[u]] += int(r["x"])
        n[index[u]] += int(r["n"])
        arms.setdefault(u, set()).add(r["arm"])
    return x, n, arms


def _statistic(x: np.ndarray, n: np.ndarray, treated: np.ndarray, kind: str) -> Fraction | None:
    if kind == "pooled":
        n1, n2 = int(n[treated].sum()), int(n[~treated].sum())
        if not (n1 and n2):
            return None
        return Fraction(int(x[treated].sum()), n1) - Fraction(int(x[~treated].sum()), n2)
    t = [Fraction(int(a), int(b)) for a, b in zip(x[treated], n[treated], strict=True) if b]
    c = [Fraction(int(a), int(b)) for a, b in zip(x[~treated], n[~treated], strict=True) if b]
    if not (t and c):
        return None
    return sum(t, Fraction(0)) / len(t) - sum(c, Fraction(0)) / len(c)


_STAT_WORDS = {
    "pooled": "difference in the proportion of families with {o} (treatment minus control), "
              "families pooled across units",
    "unit_mean": "difference between the mean over treated {u}s and the mean over comparison "
                 "{u}s of each {u}'s proportion of families with {o} (each {u} weighted "
                 "equally)",
}


def unit_randomization_distribution(
    cohort: Cohort, space: Any, *, outcome: str,
    among: str | None = "followup_reached", statistic: str = "pooled",
) -> pl.DataFrame:
    """The statistic under every assignment of a declared :class:`AssignmentSpace`.

    The comparison population is held fixed (the cohort's families, restricted to ``among``);
    under each assignment the families of the units in the treated role form the treatment arm
    and every other family the control arm. This is the Fisher randomization test of a
    cluster-assigned design: the sharp null says no family's outcome depends on which blocks
    went first, and only the labels of whole blocks are exchanged.

    Parameters
    ----------
    cohort : Cohort
    space : AssignmentSpace
        From :func:`natexp.causal.assignment.enumerate_assignments` on the cohort's rollout.
    outcome : str
    among : str or None, default "followup_reached"
        The primary population (reached families); None: every identified family.
    statistic : {"pooled", "unit_mean"}
        Family-level pooled difference (the primary statistic) or the difference of unit means
        (each area weighted equally: the area-level analysis).

    Returns
    -------
    polars.DataFrame
        ``assignment`` (0 = observed), ``observed``, ``treated_blocks`` (list), ``x1, n1, x2,
        n2`` (pooled counts), ``rd`` (the statistic; NaN when an arm is empty).

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> from natexp.causal.assignment import AssignmentSpec, enumerate_assignments
    >>> fam, _ = generate()
    >>> c = build_cohort(fam.lazy(), load_rollout(), default_design())
    >>> sp = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"),
    ...                            c.rollout.filter(pl.col("county").is_in(default_design().treatment_counties))["area"])
    >>> d = unit_randomization_distribution(c, sp, outcome=default_study().outcome.column)
    >>> d.select("x1", "n1", "x2", "n2").row(0)
    (4, 20, 2, 15)
    """
    if statistic not in _STAT_WORDS:
        raise InvalidInputError(f"statistic must be one of {sorted(_STAT_WORDS)}")
    x, n, _ = _unit_cells(cohort, outcome, among, space.units, space.spec.unit)
    rows = []
    blocks = space.assigned_blocks()
    for r, a in enumerate(space.assignments):
        f = _statistic(x, n, a, statistic)
        rows.append({"assignment": r, "observed": r == 0, "treated_blocks": blocks[r],
                     "x1": int(x[a].sum()), "n1": int(n[a].sum()), "x2": int(x[~a].sum()),
                     "n2": int(n[~a].sum()), "rd": math.nan if f is None else float(f)})
    return pl.DataFrame(rows, schema={
        "assignment": pl.Int64, "observed": pl.Boolean, "treated_blocks": pl.List(pl.String),
        "x1": pl.Int64, "n1": pl.Int64, "x2": pl.Int64, "n2": pl.Int64, "rd": pl.Float64})


def unit_randomization_test(
    cohort: Cohort, space: Any, *, outcome: str,
    among: str | None = "followup_reached", statistic: str = "pooled",
    alternative: str = "two-sided", confidence_level: float = 0.95,
    estimand: Mapping[str, str] | None = None,
) -> Result:
    """Randomization p-value over the declared assignment space (see
    :func:`unit_randomization_distribution`).

    ``p`` is the share of the space's assignments (the observed one included) whose statistic
    is at least as extreme as the observed one, compared exactly as fractions; assignments that
    leave an arm empty count as not extreme. The smallest attainable p-value is
    ``1 / size``; when it is not below ``1 - confidence_level`` the result says plainly that no
    outcome whatever could reach significance.

    The test needs the cohort's arm to be a function of the unit (every family of a treated-role
    unit in the treatment arm, every other family in the control arm). When the design also
    assigns by time within a unit (a staggered design), the result carries a note and no
    p-value: use the staggered panel's randomization inference instead.

    Parameters
    ----------
    cohort : Cohort
    space : AssignmentSpace
        From :func:`natexp.causal.assignment.enumerate_assignments`.
    outcome : str
    among : str or None, default "followup_reached"
        The primary population; None: every identified family.
    statistic : {"pooled", "unit_mean"}
        See :func:`unit_randomization_distribution`.
    alternative : {"two-sided", "less", "greater"}
    confidence_level : float, default 0.95
        Only for the diagnostics (can the test reach significance at all?).
    estimand : mapping, optional
        The estimand the statistic targets, carried into ``extra["estimand"]``.

    Returns
    -------
    Result
        ``method`` "randomization.declared_assignment"; ``estimate``/``statistic`` the observed
        statistic; ``pvalue``; ``extra``: ``assignment_space`` (mechanism, blocks, ``size``,
        ``min_pvalue``, ``can_reach_significance``), ``estimand``, ``statistic_definition``,
        ``smallest_achievable`` (share of assignments tied at the most extreme value),
        ``n_distinct``, ``n_undefined``.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> from natexp.causal.assignment import AssignmentSpec, enumerate_assignments
    >>> fam, _ = generate()
    >>> c = build_cohort(fam.lazy(), load_rollout(), default_design())
    >>> sp = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"),
    ...                            c.rollout.filter(pl.col("county").is_in(default_design().treatment_counties))["area"])
    >>> r = unit_randomization_test(c, sp, outcome=default_study().outcome.column)
    >>> r.extra["assignment_space"]["size"], round(r.extra["assignment_space"]["min_pvalue"], 3)
    (3, 0.333)
    """
    if alternative not in ALTERNATIVES:
        raise InvalidInputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    cl = _check_level(confidence_level)
    if statistic not in _STAT_WORDS:
        raise InvalidInputError(f"statistic must be one of {sorted(_STAT_WORDS)}")
    unit = space.spec.unit
    x, n, arms = _unit_cells(cohort, outcome, among, space.units, unit)
    what = _STAT_WORDS[statistic].format(o=outcome, u=unit) + (
        " among all identified families" if among is None else f" among families with "
        f"{among} True")
    label = (f"Randomization test over the declared assignment ({space.spec.name}), "
             + ("pooled families" if statistic == "pooled" else f"{unit}-level means"))
    method = "randomization.declared_assignment"
    sp = space.to_dict(cl)
    base = {"assignment_space": sp, "statistic_definition": what, "statistic_kind": statistic,
            "estimand": dict(estimand or {})}
    observed_role = {u for u, t in zip(space.units, space.assignments[0], strict=True) if t}
    mixed = [u for u, a in arms.items() if a != ({"treatment"} if u in observed_role
                                                 else {"control"})]
    if mixed:
        return Result(method=method, alternative=alternative, label=label,
                      note=f"the arm is not a function of the {unit} ({len(mixed)} {unit}(s) "
                           "have families in an arm other than their role's): the design also "
                           "assigns by time, which this test does not model",
                      extra=base)
    fr = [_statistic(x, n, a, statistic) for a in space.assignments]
    a0 = space.assignments[0]
    n_obs = (int(n[a0].sum()), int(n[~a0].sum()))
    if fr[0] is None:
        return Result(method=method, alternative=alternative, label=label, n=n_obs,
                      note="an arm of the observed comparison is empty: nothing to test",
                      extra=base)
    p, smallest, n_most, n_distinct, n_undef = _exact_pvalue(fr, alternative)
    thr = 1 - cl
    diag = []
    if not sp["can_reach_significance"]:
        diag.append(f"only {space.size} possible assignments: the smallest attainable p-value "
                    f"is 1/{space.size} = {_fmt(space.min_pvalue)}, not below {thr:g}; no "
                    "outcome whatever could reach significance under this mechanism")
    elif smallest >= thr:
        diag.append(f"with these data the most extreme assignment has p = {_fmt(smallest)} "
                    f"({n_most} of {len(fr)} tie at the extreme): no assignment could be "
                    f"significant at {thr:g}")
    if not space.exact:
        diag.append(f"{len(fr) - 1} random assignments of {space.size} (Monte Carlo)")
    return Result(
        method=method, estimate=float(fr[0]), statistic=float(fr[0]), pvalue=p,
        alternative=alternative, n=n_obs, label=label, diagnostics=tuple(diag),
        note=(f"{n_undef} assignment(s) leave an arm empty: counted as not extreme"
              if n_undef else ""),
        extra={**base, "smallest_achievable": smallest, "n_distinct": n_distinct,
               "n_undefined": n_undef},
    )


# --------------------------------------------------------------------------------------------
# placebos that leave the true assignment alone


def _holm(p: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values; NaN (no p-value) stays NaN and is not counted.

    The same operations, in the same order, as statsmodels'
    ``multipletests(p, method="holm")[1]`` (sort ascending, multiply the i-th smallest by
    m - i + 1, running maximum, cap at 1, unsort), so the same numbers (tested against it).
    statsmodels itself is not called: its Holm branch runs a full ``gc.collect()`` on every
    call, 0.1-0.4 s each in a process holding a run's objects.
    """
    vals = [float(v) for v in p]
    ok = [i for i, v in enumerate(vals) if not math.isnan(v)]
    out = [math.nan] * len(vals)
    if ok:
        pv = np.asarray([vals[i] for i in ok])
        order = np.argsort(pv)
        ranked = np.take(pv, order) * np.arange(len(ok), 0, -1)
        adj_sorted = np.maximum.accumulate(ranked)
        adj_sorted[adj_sorted > 1] = 1
        adj = np.empty_like(adj_sorted)
        adj[order] = adj_sorted
        for i, v in zip(ok, adj, strict=True):
            out[i] = float(v)
    return out


def _min_boschloo(n1: int, n2: int) -> float:
    """Smallest two-sided Boschloo p-value any table with these group sizes can give."""
    if not (n1 and n2):
        return math.nan
    return min(_boschloo_p(n1, n1, 0, n2), _boschloo_p(0, n1, n2, n2))


def _multiplicity_notes(frame: pl.DataFrame, cl: float, what: str) -> list[str]:
    m = int(frame["p"].is_not_nan().sum()) if frame.height else 0
    thr = 1 - cl
    if not m:
        return [f"no {what} could be computed"]
    sig = int(frame["significant"].fill_null(False).sum())
    holm = int((frame["p_holm"] < thr).fill_null(False).sum())
    return [f"{sig} of {m} {what} give p < {thr:g}; with {m} tests at {thr:g}, about "
            f"{m * thr:.2g} would do so by chance if the programme did nothing, and "
            f"{holm} remain below {thr:g} after Holm's adjustment for {m} tests"]


def placebo_in_space(
    cohort: Cohort, space: Any, *, outcome: str,
    among: str | None = "followup_reached", confidence_level: float = 0.95,
) -> SensitivityTable:
    """Pretend each comparison block went live: its control families against the others.

    Only the control arm is used, so the true treated set is untouched: for each block of the
    declared space outside the treated role that has control families, those families are the
    placebo "treated" group and the control families of every other comparison block the
    placebo control. A real programme effect cannot show here; area differences can.

    Each row carries the exact two-sided Boschloo p (family-level, conditional on the placebo
    allocation) and the smallest p its group sizes allow; the randomization p over the placebo
    space (which one of the ``B`` comparison blocks is the placebo) is the share of placebo
    blocks with an absolute difference at least as large, smallest attainable ``1 / B``.
    Multiplicity is stated (Holm-adjusted p, expected number significant by chance).

    Parameters
    ----------
    cohort : Cohort
    space : AssignmentSpace
        The declared mechanism (its blocks are the placebo units).
    outcome : str
    among : str or None, default "followup_reached"
        Restrict to families with this column True (the primary population).
    confidence_level : float, default 0.95

    Returns
    -------
    SensitivityTable
        Columns ``placebo_block, x1, n1, x2, n2, rd, p, min_p, p_holm, significant,
        p_randomization``; ``meta`` holds the estimand and the placebo assignment space
        (``size``, ``min_pvalue``).

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> from natexp.causal.assignment import AssignmentSpec, enumerate_assignments
    >>> fam, _ = generate()
    >>> c = build_cohort(fam.lazy(), load_rollout(), default_design())
    >>> sp = enumerate_assignments(c.rollout, AssignmentSpec("county", block="county"),
    ...                            c.rollout.filter(pl.col("county").is_in(default_design().treatment_counties))["area"])
    >>> placebo_in_space(c, sp, outcome=default_study().outcome.column).frame["placebo_block"].to_list()
    ['Buckinghamshire', 'Berkshire']
    """
    cl = _check_level(confidence_level)
    unit = space.spec.unit
    lf = cohort.members.filter(pl.col("arm") == "control")
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    got = (lf.group_by(unit).agg(pl.len().alias("n"),
                                 (pl.col(outcome) == True).sum().alias("x"))  # noqa: E712
           .collect())
    block_of = {u: space.blocks[b] for u, b in zip(space.units, space.unit_block, strict=True)}
    per: dict[str, list[int]] = {}
    for r in got.iter_rows(named=True):
        b = block_of.get(str(r[unit]))
        if b is None:
            raise InvalidInputError(f"cohort unit not in the assignment space ({unit})")
        per.setdefault(b, [0, 0])
        per[b][0] += int(r["x"])
        per[b][1] += int(r["n"])
    order = [b for b in space.blocks if b in per]
    tx, tn = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    rows = []
    for b in order:
        x1, n1 = per[b]
        x2, n2 = tx - x1, tn - n1
        rows.append({"placebo_block": b, "x1": x1, "n1": n1, "x2": x2, "n2": n2,
                     "rd": _rd(x1, n1, x2, n2), "p": _boschloo_p(x1, n1, x2, n2),
                     "min_p": _min_boschloo(n1, n2)})
    frame = pl.DataFrame(rows, schema={
        "placebo_block": pl.String, "x1": pl.Int64, "n1": pl.Int64, "x2": pl.Int64,
        "n2": pl.Int64, "rd": pl.Float64, "p": pl.Float64, "min_p": pl.Float64})
    frame = frame.with_columns(
        pl.Series("p_holm", _holm(frame["p"].to_list()), dtype=pl.Float64),
        pl.when(pl.col("p").is_nan()).then(None).otherwise(pl.col("p") < 1 - cl)
        .alias("significant"))
    rds = [abs(v) for v in frame["rd"].to_list()]
    frame = frame.with_columns(pl.Series("p_randomization", [
        (sum(1 for w in rds if not math.isnan(w) and w >= v - 1e-12) / len(rds))
        if not math.isnan(v) else math.nan for v in rds], dtype=pl.Float64))
    size = len(order)
    notes = _multiplicity_notes(frame, cl, "in-space placebos") if size else [
        "no comparison block has control families: no in-space placebo"]
    if size == 2:
        notes.append("with two comparison blocks the two placebos are one comparison seen "
                     "from each side (the differences are equal and opposite)")
    if size:
        notes.append(f"placebo assignment space: which one of the {size} comparison blocks "
                     f"({space.spec.name}) is pretended live; smallest attainable "
                     f"randomization p = 1/{size} = {_fmt(1 / size)}")
    return SensitivityTable(
        method="placebo.in_space",
        title=f"In-space placebos: each comparison {space.spec.name} block pretended live",
        frame=frame, notes=tuple(notes),
        meta={"outcome": outcome, "among": among, "confidence_level": cl,
              "estimand": {"population": "control-arm families" + (
                  f" with {among} True" if among else ""), "outcome": outcome,
                  "contrast": "risk difference, placebo block minus other comparison blocks",
                  "conditional_on": "" if among is None else f"{among}", "unit": "family"},
              "assignment_space": {"name": f"placebo_{space.spec.name}", "size": size,
                                   "min_pvalue": 1 / size if size else math.nan,
                                   "description": "which one comparison block is pretended "
                                                  "live"}},
    )


def placebo_in_time(
    cohort: Cohort, *, shifts: Sequence[int] = (3, 6, 9, 12), outcome: str,
    among: str | None = "followup_reached", confidence_level: float = 0.95,
) -> SensitivityTable:
    """Pretend every not-yet-live area went live ``s`` months before it did.

    Only control-arm families (received while their area was not yet live) are used, so the
    true treated set is untouched. For each shift ``s``, control families received within the
    ``s`` months before their own area's real go-live form the placebo "treated" group and the
    other control families (earlier receptions, and areas never live) the placebo control. A
    difference here reflects time or area, not the programme.

    Parameters
    ----------
    cohort : Cohort
    shifts : sequence of int, default (3, 6, 9, 12)
        Months (positive).
    outcome : str
    among : str or None, default "followup_reached"
        Restrict to families with this column True (the primary population).
    confidence_level : float, default 0.95

    Returns
    -------
    SensitivityTable
        Columns ``shift, x1, n1, x2, n2, rd, p`` (two-sided Boschloo), ``min_p`` (smallest p
        these group sizes allow), ``p_holm``, ``significant``; ``meta`` the estimand and the
        assignment model of the p-values (families exchangeable within the control arm,
        conditional on the placebo allocation).

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import build_cohort
    >>> fam, _ = generate()
    >>> c = build_cohort(fam.lazy(), load_rollout(), default_design())
    >>> t = placebo_in_time(c, shifts=[6], outcome=default_study().outcome.column)
    >>> t.frame.select("shift", "n1", "n2").row(0)
    (6, 3, 12)
    """
    cl = _check_level(confidence_level)
    lf = cohort.members.filter(pl.col("arm") == "control")
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    m = lf.select("reception_date", "go_live", outcome).collect()
    rows = []
    for s in [int(v) for v in shifts]:
        if s <= 0:
            raise InvalidInputError("in-time placebo shifts must be positive months")
        fake = pl.col("go_live").dt.offset_by(f"-{s}mo")
        t = m.with_columns(((pl.col("reception_date") >= fake)
                            & pl.col("go_live").is_not_null()).fill_null(False).alias("pt"))
        g1 = t.filter(pl.col("pt"))
        g2 = t.filter(~pl.col("pt"))
        x1, n1 = int(g1[outcome].fill_null(False).sum()), g1.height
        x2, n2 = int(g2[outcome].fill_null(False).sum()), g2.height
        rows.append({"shift": s, "x1": x1, "n1": n1, "x2": x2, "n2": n2,
                     "rd": _rd(x1, n1, x2, n2), "p": _boschloo_p(x1, n1, x2, n2),
                     "min_p": _min_boschloo(n1, n2)})
    frame = pl.DataFrame(rows, schema={
        "shift": pl.Int64, "x1": pl.Int64, "n1": pl.Int64, "x2": pl.Int64, "n2": pl.Int64,
        "rd": pl.Float64, "p": pl.Float64, "min_p": pl.Float64})
    frame = frame.with_columns(
        pl.Series("p_holm", _holm(frame["p"].to_list()), dtype=pl.Float64),
        pl.when(pl.col("p").is_nan()).then(None).otherwise(pl.col("p") < 1 - cl)
        .alias("significant"))
    notes = _multiplicity_notes(frame, cl, "in-time placebos")
    notes.append("the placebos overlap (a longer shift contains the shorter ones), so they "
                 "are not independent tests")
    return SensitivityTable(
        method="placebo.in_time",
        title="In-time placebos: not-yet-live areas pretended live earlier",
        frame=frame, notes=tuple(notes),
        meta={"outcome": outcome, "among": among, "confidence_level": cl,
              "estimand": {"population": "control-arm families" + (
                  f" with {among} True" if among else ""), "outcome": outcome,
                  "contrast": "risk difference, received within s months before their "
                              "area's go-live minus received earlier or never live",
                  "conditional_on": "" if among is None else f"{among}", "unit": "family"},
              "assignment_space": {
                  "name": "families_within_control_arm",
                  "description": "exact test conditional on the placebo allocation: families "
                                 "treated as exchangeable within the control arm",
                  "size": None,
                  "min_pvalue": float(np.nanmin(frame["min_p"].to_numpy()))
                  if frame.height and not np.isnan(frame["min_p"].to_numpy()).all()
                  else math.nan}},
    )
