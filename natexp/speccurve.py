"""Specification curve: the primary estimate across designs, windows, follow-up dates and
custody rules.

Two routes give the same table (columns :data:`COLUMNS`):

* in one process, :func:`specification_curve` rebuilds the cohort for every combination of the
  choices on data already loaded (what the default run does: it takes about a second);
* through Hydra multirun, every specification is a separate run (``python -m natexp run
  --multirun ... hydra/launcher=joblib`` on one machine, ``hydra/launcher=submitit_slurm`` on a
  cluster) and :func:`collect_multirun` reads their ``results.json`` files into the table
  (``python -m natexp speccurve SWEEP_DIR``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from natexp.data.cohort import Design, DesignError, arm_counts, build_cohort

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


def _row(design: Design, counts: dict, confidence_level: float) -> dict[str, Any]:
    """One specification's row: Newcombe interval for the risk difference and the Boschloo
    exact p-value (both fast enough to run dozens of times in a default run)."""
    from natexp.causal.intervals import risk_difference_ci
    from natexp.causal.unconditional import boschloo

    (x1, n1), (x2, n2) = counts["treatment"], counts["control"]
    row: dict[str, Any] = {
        "design": design.name,
        "window": f"{design.window_start.isoformat()} to {design.window_end.isoformat()}",
        "followup_date": None if design.followup_date is None else design.followup_date.isoformat(),
        "custody": "in custody at follow-up" if design.custody_at_followup else "any",
        "x1": x1, "n1": n1, "x2": x2, "n2": n2,
        "method": "risk_difference.newcombe; test.boschloo", "note": "",
    }
    if n1 == 0 or n2 == 0:
        row.update(estimate=math.nan, ci_low=math.nan, ci_high=math.nan, pvalue=math.nan,
                   significant=None, note="an arm is empty")
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
    designs: Sequence[str],
    windows: Sequence[tuple[dt.date, dt.date]],
    followup_dates: Sequence[dt.date],
    custody: Sequence[bool],
    confidence_level: float = 0.95,
    outcome: str = "chas_support",
) -> pl.DataFrame:
    """The primary estimate for every combination of the choices.

    Parameters
    ----------
    families : polars.LazyFrame
        Validated families.
    rollout : polars.DataFrame
    base : Design
        Everything not varied (treatment counties, phases) comes from here.
    designs, windows, followup_dates, custody : sequences
        The choices; every combination is one specification. A combination that is not a
        valid design (a follow-up date before the window ends) is skipped.
    confidence_level : float
    outcome : str
        Boolean outcome, among families reached at follow-up.

    Returns
    -------
    polars.DataFrame
        One row per specification, columns :data:`COLUMNS`, sorted by estimate.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> t = specification_curve(fam.lazy(), load_rollout(), Design(),
    ...     designs=["oxon_vs_rest"], windows=[(dt.date(2022, 7, 1), dt.date(2024, 6, 30))],
    ...     followup_dates=[dt.date(2024, 11, 1)], custody=[True])
    >>> t.select("x1", "n1", "x2", "n2").row(0)
    (4, 20, 2, 15)
    """
    rows = []
    for name, (start, end), fu, cus in itertools.product(designs, windows, followup_dates,
                                                         custody):
        try:
            kind = "staggered" if name == "staggered" else "treated_counties"  # until #16 item 4
            design = replace(base, name=name, kind=kind, window_start=start, window_end=end,
                             followup_date=fu, custody_at_followup=cus)
        except DesignError:
            continue
        counts = arm_counts(build_cohort(families, rollout, design), outcome)
        rows.append(_row(design, counts, confidence_level))
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
    from natexp.data.cohort import Design

    rows = []
    for res_file in sorted(Path(sweep_dir).glob("*/results.json"),
                           key=lambda p: (len(p.parent.name), p.parent.name)):
        res = json.loads(res_file.read_text(encoding="utf-8"))
        d = res["design"]
        design = Design(
            name=d["name"],
            kind=d.get("kind", "staggered" if d["name"] == "staggered" else "treated_counties"),
            window_start=dt.date.fromisoformat(d["window_start"]),
            window_end=dt.date.fromisoformat(d["window_end"]),
            followup_date=None if d["followup_date"] is None
            else dt.date.fromisoformat(d["followup_date"]),
            custody_at_followup=d["custody_at_followup"],
            treatment_counties=tuple(d["treatment_counties"]),
        )
        c = res["primary_outcome"]["counts"]
        level = confidence_level or res["config"]["analysis"]["confidence_level"]
        counts = {"treatment": (c["x1"], c["n1"]), "control": (c["x2"], c["n2"])}
        rows.append({**_row(design, counts, level), "job": res_file.parent.name})
    if not rows:
        raise FileNotFoundError(f"{sweep_dir}: no job folder with a results.json")
    return pl.DataFrame(rows, schema={**SCHEMA, "job": pl.String}).sort(
        "estimate", nulls_last=True, maintain_order=True)
