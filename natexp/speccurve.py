"""Specification curve: the primary estimate across designs, windows, follow-up dates and
custody rules.

The choices belong to the study: :func:`specification_choices` derives them from the run's own
primary design (its window start and six months later; its window end and the month-end six
months earlier; its follow-up date and four months later; its custody rule and the other one;
its design and the other design kind), and an explicit list in the experiment's config
(``sensitivity.spec_*``) replaces a derived one. The primary specification is always among
them.

Two routes give the same table (columns :data:`COLUMNS`):

* in one process, :func:`specification_curve` rebuilds the cohort for every combination of the
  choices on data already loaded (what the default run does: it takes about a second);
* through Hydra multirun, every specification is a separate run (``python -m natexp run
  --multirun ... hydra/launcher=joblib`` on one machine, ``hydra/launcher=submitit_slurm`` on a
  cluster) and :func:`collect_multirun` reads their ``results.json`` files into the table
  (``python -m natexp speccurve SWEEP_DIR``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from natexp._dates import as_date
from natexp.data.cohort import DESIGN_KINDS, Design, DesignError, arm_counts, build_cohort

#: Choice columns, then the counts and the estimate.
CHOICES = ("design", "window", "followup_date", "custody")
COLUMNS = (*CHOICES, "x1", "n1", "x2", "n2", "estimate", "ci_low", "ci_high", "pvalue",
           "significant", "method", "note")
SCHEMA = {
    "design": pl.String, "window": pl.String, "followup_date": pl.String, "custody": pl.String,
    "x1": pl.Int64, "n1": pl.Int64, "x2": pl.Int64, "n2": pl.Int64, "estimate": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "pvalue": pl.Float64,
    "significant": pl.Boolean, "method": pl.String, "note": pl.String,
}
#: Months the derived alternatives move the primary window start (later), window end (earlier,
#: to a month-end) and follow-up date (later).
START_SHIFT_MONTHS = 6
END_SHIFT_MONTHS = 6
FOLLOWUP_SHIFT_MONTHS = 4
#: The note of the primary specification's row when a configured list left it out.
PRIMARY_ADDED_NOTE = "primary specification (added: the configured choices left it out)"


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (day clamped to the month's length)."""
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def _month_end(day: dt.date, months: int) -> dt.date:
    """The last day of the month ``months`` calendar months from ``day``'s month."""
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(y, m + 1, calendar.monthrange(y, m + 1)[1])


def _unique(items: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


def _date_list(values: Any, name: str, *, optional: bool = False) -> tuple[dt.date | None, ...]:
    """``values`` (dates or ISO strings) as dates, checked now: a bad one is a DesignError
    naming ``name[i]`` (and not a specification silently skipped later)."""
    if isinstance(values, str | dt.date) or not isinstance(values, Sequence):
        raise DesignError(f"specification curve: {name} must be a list of dates")
    return tuple(as_date(v, f"{name}[{i}]", error=DesignError, where="specification curve",
                         optional=optional) for i, v in enumerate(values))


def _window_list(values: Any) -> list[tuple[dt.date, dt.date]]:
    """``windows`` as (start, end) date pairs, checked now."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise DesignError("specification curve: windows must be a list of (start, end) pairs")
    out = []
    for i, pair in enumerate(values):
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise DesignError(f"specification curve: windows[{i}] must be a (start, end) pair")
        start, end = _date_list(pair, f"windows[{i}]")
        out.append((start, end))
    return out


@dataclass(frozen=True)
class SpecChoices:
    """The choices of a specification curve (every combination is one specification).

    Attributes
    ----------
    primary : Design
        The run's own design: its specification is always one of the combinations.
    designs : tuple of Design
        The designs compared (name and kind; the window, follow-up and custody come from the
        other choices). The primary design first when derived.
    window_starts, window_ends : tuple of datetime.date
    followup_dates : tuple of datetime.date or None
    custody : tuple of bool
    derived : tuple of str
        The choices derived from the primary design (the others were given).
    added : tuple of str
        The given choices the primary specification's value was added to.
    """

    primary: Design
    designs: tuple[Design, ...]
    window_starts: tuple[dt.date, ...]
    window_ends: tuple[dt.date, ...]
    followup_dates: tuple[dt.date | None, ...]
    custody: tuple[bool, ...]
    derived: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    @property
    def windows(self) -> list[tuple[dt.date, dt.date]]:
        """Every (start, end) pair, starts varying slowest."""
        return list(itertools.product(self.window_starts, self.window_ends))

    def notes(self) -> list[str]:
        """In words: which choices were derived, and whether the primary was added."""
        out = []
        if self.derived:
            out.append("derived from the primary design: " + ", ".join(self.derived))
        if self.added:
            out.append("the primary specification was added to the configured "
                       + ", ".join(self.added))
        return out


def _alternative_design(primary: Design) -> Design | None:
    """The primary design's other kind (named by its kind), or None when it has none."""
    other = next(k for k in DESIGN_KINDS if k != primary.kind)
    if other == "treated_counties" and not primary.treatment_counties:
        return None
    name = other if other != primary.name else f"{other}_alternative"
    return replace(primary, name=name, kind=other)


def _design_choice(primary: Design, entry: str | Design) -> Design:
    if isinstance(entry, Design):
        return entry
    if entry == primary.name:
        return primary
    if entry in DESIGN_KINDS:
        if entry == "treated_counties" and not primary.treatment_counties:
            raise DesignError("specification curve: a treated_counties design needs treatment "
                              "counties, and the primary design has none")
        return replace(primary, name=entry, kind=entry)
    raise DesignError(f"specification curve: design {entry!r} is neither the primary design's "
                      f"name ({primary.name!r}) nor a design kind ({', '.join(DESIGN_KINDS)})")


def specification_choices(
    primary: Design,
    *,
    designs: Sequence[str | Design] | None = None,
    window_starts: Sequence[dt.date | str] | None = None,
    window_ends: Sequence[dt.date | str] | None = None,
    followup_dates: Sequence[dt.date | str | None] | None = None,
    custody: Sequence[bool] | None = None,
) -> SpecChoices:
    """The choices of the specification curve for a primary design.

    Each choice not given (None) is derived from ``primary``:

    * window starts: the primary start, and six months later;
    * window ends: the month-end six months before the primary end, and the primary end;
    * follow-up dates: the primary date, and four months later (only the primary when the design
      has none);
    * custody: the primary rule, and the other one;
    * designs: the primary design, and the other kind (``staggered`` <-> ``treated_counties``,
      named by its kind; a ``treated_counties`` alternative only when the primary design has
      treatment counties).

    A given list replaces the derived one; the primary design's own value is added to it when
    missing (listed in :attr:`SpecChoices.added`), so the primary specification is always one of
    the combinations. A design given by name must be the primary design's name or a design kind.

    Parameters
    ----------
    primary : Design
    designs : sequence of str or Design, optional
    window_starts, window_ends : sequence of datetime.date or str, optional
        Dates or ISO strings ``"YYYY-MM-DD"`` (turned into dates here).
    followup_dates : sequence of datetime.date, str or None, optional
    custody : sequence of bool, optional

    Returns
    -------
    SpecChoices

    Raises
    ------
    DesignError
        A design name that is neither the primary's name nor a design kind; a value that is
        not a date (named, e.g. ``window_starts[1]``).

    Examples
    --------
    The default configuration's design (the example study's ``oxon_vs_rest``):

    >>> from natexp.data.synthetic import default_design
    >>> c = specification_choices(default_design())
    >>> [(d.name, d.kind) for d in c.designs]
    [('oxon_vs_rest', 'treated_counties'), ('staggered', 'staggered')]
    >>> [d.isoformat() for d in c.window_starts + c.window_ends + c.followup_dates]
    ['2022-07-01', '2023-01-01', '2023-12-31', '2024-06-30', '2024-11-01', '2025-03-01']
    >>> c.custody
    (True, False)
    """
    derived, added = [], []
    if window_starts is not None:
        window_starts = _date_list(window_starts, "window_starts")
    if window_ends is not None:
        window_ends = _date_list(window_ends, "window_ends")
    if followup_dates is not None:
        followup_dates = _date_list(followup_dates, "followup_dates", optional=True)

    def choose(key: str, given: Sequence[Any] | None, own: Any, make: Any) -> tuple[Any, ...]:
        if given is None:
            derived.append(key)
            return _unique(make())
        values = _unique(given)
        if own not in values:
            added.append(key)
            values = (own, *values)
        return values

    starts = choose("window_starts", window_starts, primary.window_start, lambda: [
        primary.window_start, _add_months(primary.window_start, START_SHIFT_MONTHS)])
    ends = choose("window_ends", window_ends, primary.window_end, lambda: [
        _month_end(primary.window_end, -END_SHIFT_MONTHS), primary.window_end])
    fu = primary.followup_date
    followups = choose("followup_dates", followup_dates, fu, lambda: [fu] if fu is None else [
        fu, _add_months(fu, FOLLOWUP_SHIFT_MONTHS)])
    cus = choose("custody", custody, primary.custody_at_followup, lambda: [
        primary.custody_at_followup, not primary.custody_at_followup])
    if designs is None:
        derived.append("designs")
        alt = _alternative_design(primary)
        chosen = (primary,) if alt is None else (primary, alt)
    else:
        chosen = tuple(_design_choice(primary, e) for e in dict.fromkeys(designs))
        if primary.name not in {d.name for d in chosen}:
            added.append("designs")
            chosen = (primary, *chosen)
    return SpecChoices(primary=primary, designs=chosen, window_starts=starts, window_ends=ends,
                       followup_dates=followups, custody=cus, derived=tuple(derived),
                       added=tuple(added))


def _row(design: Mapping[str, Any], counts: dict, confidence_level: float,
         note: str = "") -> dict[str, Any]:
    """One specification's row (``design`` as :meth:`Design.to_dict`): Newcombe interval for
    the risk difference and the Boschloo exact p-value (both fast enough to run dozens of times
    in a default run)."""
    from natexp.causal.intervals import risk_difference_ci
    from natexp.causal.unconditional import boschloo

    (x1, n1), (x2, n2) = counts["treatment"], counts["control"]
    row: dict[str, Any] = {
        "design": design["name"],
        "window": f"{design['window_start']} to {design['window_end']}",
        "followup_date": design["followup_date"],
        "custody": "in custody at follow-up" if design["custody_at_followup"] else "any",
        "x1": x1, "n1": n1, "x2": x2, "n2": n2,
        "method": "risk_difference.newcombe; test.boschloo", "note": note,
    }
    if n1 == 0 or n2 == 0:
        row.update(estimate=math.nan, ci_low=math.nan, ci_high=math.nan, pvalue=math.nan,
                   significant=None, note="; ".join(x for x in (note, "an arm is empty") if x))
        return row
    rd = risk_difference_ci(x1, n1, x2, n2, method="newcombe", confidence_level=confidence_level)
    p = boschloo(x1, n1, x2, n2).pvalue
    row.update(estimate=rd.estimate, ci_low=rd.ci_low, ci_high=rd.ci_high, pvalue=p,
               significant=bool(p < 1 - confidence_level))
    return row


def specification_curve(
    families: pl.LazyFrame,
    rollout: pl.DataFrame,
    base: Design,
    *,
    outcome: str,
    designs: Sequence[str | Design] | None = None,
    windows: Sequence[tuple[dt.date | str, dt.date | str]] | None = None,
    followup_dates: Sequence[dt.date | str | None] | None = None,
    custody: Sequence[bool] | None = None,
    choices: SpecChoices | None = None,
    confidence_level: float = 0.95,
) -> pl.DataFrame:
    """The primary estimate for every combination of the choices.

    Parameters
    ----------
    families : polars.LazyFrame
        Validated families.
    rollout : polars.DataFrame
    base : Design
        The primary design: everything not varied (treatment counties, phases) comes from here.
    outcome : str
        Boolean outcome column, among families reached at follow-up.
    designs, windows, followup_dates, custody : sequences, optional
        The choices, used as given; every combination is one specification. A design given by
        name is ``base``'s name or a design kind (:func:`specification_choices`). A choice not
        given is derived from ``base`` (:func:`specification_choices`). Dates may be given as
        ISO strings ``"YYYY-MM-DD"``; a value that is not a date raises :class:`DesignError`
        naming it (e.g. ``windows[0]``).
    choices : SpecChoices, optional
        All the choices at once (from :func:`specification_choices`); instead of the four
        sequences. The primary specification's row says so in ``note`` when the configured
        choices left it out.
    confidence_level : float

    Returns
    -------
    polars.DataFrame
        One row per specification, columns :data:`COLUMNS`, sorted by estimate. A combination
        that is not a valid design (a follow-up date before the window ends) is skipped.

    Examples
    --------
    On the embedded synthetic data, with the default configuration's design and outcome:

    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> primary = default_design()
    >>> t = specification_curve(fam.lazy(), load_rollout(), primary, outcome=default_study().outcome.column,
    ...     designs=[primary.name], windows=[(primary.window_start, primary.window_end)],
    ...     followup_dates=[primary.followup_date], custody=[primary.custody_at_followup])
    >>> t.select("x1", "n1", "x2", "n2").row(0)
    (4, 20, 2, 15)
    """
    if choices is None:
        derived = specification_choices(base)
        chosen = (derived.designs if designs is None
                  else tuple(_design_choice(base, d) for d in designs))
        pairs = derived.windows if windows is None else _window_list(windows)
        fus = (derived.followup_dates if followup_dates is None
               else _date_list(followup_dates, "followup_dates", optional=True))
        cus = derived.custody if custody is None else tuple(custody)
        primary, flag = base, ""
    else:
        chosen, pairs = choices.designs, choices.windows
        fus, cus = choices.followup_dates, choices.custody
        primary, flag = choices.primary, PRIMARY_ADDED_NOTE if choices.added else ""
    rows = []
    for template, (start, end), fu, keep in itertools.product(chosen, pairs, fus, cus):
        try:
            design = replace(template, window_start=start, window_end=end, followup_date=fu,
                             custody_at_followup=keep)
        except DesignError:
            continue
        counts = arm_counts(build_cohort(families, rollout, design), outcome)
        note = flag if flag and design == primary else ""
        rows.append(_row(design.to_dict(), counts, confidence_level, note))
    return pl.DataFrame(rows, schema=SCHEMA).sort("estimate", nulls_last=True, maintain_order=True)


def collect_multirun(sweep_dir: str | Path, *, confidence_level: float | None = None
                     ) -> pl.DataFrame:
    """Read every job of a Hydra multirun sweep into the specification table.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep folder (``multirun/<experiment>``) whose job folders hold ``results.json``.
    confidence_level : float, optional
        Default: each run's own.

    Returns
    -------
    polars.DataFrame
        As :func:`specification_curve`, plus ``job`` (the job folder name).

    Raises
    ------
    FileNotFoundError
        When no job folder holds a ``results.json``.
    """
    rows = []
    for res_file in sorted(Path(sweep_dir).glob("*/results.json"),
                           key=lambda p: (len(p.parent.name), p.parent.name)):
        res = json.loads(res_file.read_text(encoding="utf-8"))
        c = res["primary_outcome"]["counts"]
        level = confidence_level or res["config"]["analysis"]["confidence_level"]
        counts = {"treatment": (c["x1"], c["n1"]), "control": (c["x2"], c["n2"])}
        rows.append({**_row(res["design"], counts, level), "job": res_file.parent.name})
    if not rows:
        raise FileNotFoundError(f"{sweep_dir}: no job folder with a results.json")
    return pl.DataFrame(rows, schema={**SCHEMA, "job": pl.String}).sort(
        "estimate", nulls_last=True, maintain_order=True)
