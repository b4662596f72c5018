"""Planning a rollout study: simulation-based power of the configured design.

``plan_power(config)`` is what ``python -m natexp power`` runs (and what a notebook calls): the
config's rollout schedule and design, simulated ``power_sim.n_simulations`` times
(:func:`natexp.causal.power_sim.simulate_power`), and, when ``power_sim.target_power`` is set,
each analysis's minimum detectable effect. No data is read: the simulation needs only the
schedule and the expected numbers. A large simulation splits over seeds in a Hydra multirun
(any launcher: joblib, submitit, Ray), and :func:`collect_power` pools the jobs.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

#: Settings that identify one simulated scenario (jobs that differ only in seed are pooled).
SCENARIO = ("design", "window_start", "window_end", "families_per_area_month", "baseline",
            "effect", "icc", "arrivals", "confidence_level", "analysis")


@dataclass(frozen=True)
class PowerPlan:
    """What ``plan_power`` computed.

    Attributes
    ----------
    results : dict
        JSON-ready: settings, cells, each analysis's power and minimum detectable effect.
    table : polars.DataFrame
        One row per analysis (``power_simulation.csv``).
    """

    results: dict[str, Any]
    table: pl.DataFrame

    def summary(self) -> str:
        """Plain text: one line per analysis."""
        s = self.results["settings"]
        lines = [
            f"Simulated power of design {s['design']} ({s['n_simulations']} simulated studies; "
            f"baseline {s['baseline']:g}, effect {s['effect']:+g}, ICC {s['icc']:g}, "
            f"{s['families_per_area_month']:g} families per area-month, seed {s['seed']}):"
        ]
        for row in self.table.iter_rows(named=True):
            mde = row.get("mde")
            mde_text = ("" if mde is None else
                        f"; minimum detectable effect {mde:g}" if not math.isnan(mde) else
                        "; no effect reaches the target power")
            lines.append(f"  {row['analysis']}: power {row['power']:.3f} "
                         f"(Monte Carlo 95% CI {row['ci_low']:.3f} to {row['ci_high']:.3f})"
                         f"{mde_text}")
        return "\n".join(lines)


def plan_power(config: Any) -> PowerPlan:
    """Simulated power (and minimum detectable effects) of the configured rollout and design.

    Parameters
    ----------
    config : omegaconf.DictConfig, dict or NatexpConfig
        A composed config; its ``rollout``, ``design``, ``analysis.confidence_level`` and
        ``power_sim`` sections are used.

    Returns
    -------
    PowerPlan

    Examples
    --------
    >>> from natexp.config import compose
    >>> plan = plan_power(compose(["+experiment=oxon_vs_rest", "power_sim.n_simulations=50",
    ...                            "power_sim.target_power=0"]))
    >>> plan.table["analysis"].to_list()
    ['family_fisher', 'area_t']
    """
    from natexp.causal.power_sim import minimum_detectable_effect, simulate_power
    from natexp.config import to_settings
    from natexp.data.rollout import rollout_frame

    settings = to_settings(config)
    ps = settings.power_sim
    rollout = rollout_frame([asdict(a) for a in settings.rollout.areas])
    design = settings.design.to_design()
    level = settings.analysis.confidence_level
    common = {"families_per_area_month": ps.families_per_area_month, "baseline": ps.baseline,
              "icc": ps.icc, "n_simulations": ps.n_simulations, "arrivals": ps.arrivals,
              "confidence_level": level}
    sim = simulate_power(rollout, design, effect=ps.effect, analyses=tuple(ps.analyses),
                         rng=ps.seed, **common)
    table = sim.to_polars()
    mdes: dict[str, Any] = {}
    if ps.target_power > 0:
        for analysis in ps.analyses:
            r = minimum_detectable_effect(rollout, design, power=ps.target_power,
                                          analysis=analysis, rng=ps.seed, **common)
            mdes[analysis] = r.to_dict()
        table = table.with_columns(
            pl.Series("mde", [mdes[a]["estimate"] for a in table["analysis"]], dtype=pl.Float64),
            pl.lit(ps.target_power).alias("target_power"),
        )
    table = table.with_columns(pl.lit(ps.seed).alias("seed"), pl.lit(settings.experiment)
                               .alias("experiment"))
    results = {
        "experiment": settings.experiment,
        "estimand": "probability that each analysis rejects no difference in uptake between "
                    "the design's arms, over studies simulated from the rollout schedule",
        "assignment": "areas go live on the schedule's dates (not randomized); families are "
                      "assigned to arms by the design's rule at their reception date",
        "settings": {**sim.settings, "seed": ps.seed, "target_power": ps.target_power},
        "cells": sim.cells.to_dicts(),
        "power": {r.method.removeprefix("power.simulated_"): r.to_dict() for r in sim.results},
        "minimum_detectable_effect": mdes,
    }
    return PowerPlan(results, table)


def write_power(plan: PowerPlan, out: Path | Any, *, tolerate: tuple[str, ...] = ()) -> list[Path]:
    """Write ``power_simulation.json`` and ``power_simulation.csv`` as a natexp output folder.

    Parameters
    ----------
    plan : PowerPlan
    out : Path or a prepared output
        The output folder. As for :func:`natexp.pipeline.run`: a new or empty folder, or an
        earlier natexp output (only its own files are replaced); any other folder is refused
        (:class:`natexp.safety.OutputDirError`). The files are written in a staging folder
        and moved into place.
    tolerate : tuple of str
        Entries of an unmarked folder left alone (what Hydra writes into a sweep's job folder).

    Returns
    -------
    list of Path
    """
    from natexp.pipeline import _Output, json_safe
    from natexp.safety import commit_outputs, staging_dir

    output = out if isinstance(out, _Output) else _Output(Path(out), tolerate)
    try:
        stage = staging_dir(output.target.parent, f".{output.target.name}.staging-")
        try:
            text = json.dumps(json_safe(plan.results), indent=2, sort_keys=True,
                              allow_nan=False)
            (stage / "power_simulation.json").write_text(text + "\n", encoding="utf-8")
            plan.table.write_csv(stage / "power_simulation.csv")
            commit_outputs(stage, output.target, output.previous)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    finally:
        if output is not out:
            output.release()
    return [output.target / "power_simulation.json", output.target / "power_simulation.csv"]


def collect_power(sweep_dir: str | Path) -> pl.DataFrame:
    """Pool the jobs of a power sweep (``python -m natexp power --multirun ...``).

    Jobs whose scenario (:data:`SCENARIO`) is the same and that differ only in ``seed`` are
    pooled: their rejections and simulations are added and the power and its Clopper-Pearson
    interval recomputed, so a large simulation can be split over many jobs.

    Parameters
    ----------
    sweep_dir : str or Path
        The sweep folder; every ``*/power_simulation.json`` below it is read.

    Returns
    -------
    polars.DataFrame
        One row per scenario and analysis: the scenario, ``jobs``, ``n_simulations``,
        ``rejections``, ``power``, ``ci_low``, ``ci_high``.

    Raises
    ------
    FileNotFoundError
        When no job result is found.
    """
    from scipy.stats import binomtest

    files = sorted(Path(sweep_dir).glob("*/power_simulation.json"))
    if not files:
        raise FileNotFoundError(f"no */power_simulation.json under {Path(sweep_dir).name}")
    rows = []
    for f in files:
        res = json.loads(f.read_text(encoding="utf-8"))
        s = res["settings"]
        fpam = s["families_per_area_month"]
        for analysis, r in res["power"].items():
            rows.append({
                "design": s["design"], "window_start": s["window_start"],
                "window_end": s["window_end"],
                "families_per_area_month": json.dumps(fpam, sort_keys=True),
                "baseline": s["baseline"], "effect": s["effect"], "icc": s["icc"],
                "arrivals": s["arrivals"], "confidence_level": s["confidence_level"],
                "analysis": analysis, "seed": s["seed"], "n_simulations": s["n_simulations"],
                "rejections": r["extra"]["rejections"],
            })
    frame = pl.DataFrame(rows)
    dup = frame.group_by(*SCENARIO, "seed").len().filter(pl.col("len") > 1)
    if dup.height:
        raise ValueError("two jobs of the sweep simulated the same scenario with the same seed: "
                         "pooling them would count the same studies twice")
    pooled = (frame.group_by(*SCENARIO)
              .agg(pl.len().alias("jobs"), pl.col("n_simulations").sum(),
                   pl.col("rejections").sum())
              .sort(*SCENARIO))
    lows, highs = [], []
    for k, n in zip(pooled["rejections"], pooled["n_simulations"], strict=True):
        ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="exact")
        lows.append(ci.low)
        highs.append(ci.high)
    return pooled.with_columns(
        (pl.col("rejections") / pl.col("n_simulations")).alias("power"),
        pl.Series("ci_low", lows), pl.Series("ci_high", highs),
    )
