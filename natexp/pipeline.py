"""``run(config) -> RunResult``: the whole experiment as one plain function.

The CLI and notebooks share it. Data flows one way: load -> validate -> cohort -> estimate ->
write. Before the analysis starts the output folder is checked (:mod:`natexp.safety`): it must be
new, empty or a previous natexp output (natexp's marker), it is locked against a concurrent run,
and its location must be writable with free space. Nothing is written until every step has
succeeded: the outputs are built in a staging folder beside the target and moved into place at
the end, replacing only the files the previous natexp output listed. results.json holds no
machine paths (input files by name and checksum).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import shutil
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from natexp import __version__
from natexp.bundle.manifest import sha256_bytes, sha256_file
from natexp.causal.balance import balance_table
from natexp.causal.result import Result
from natexp.config import NatexpConfig, to_settings
from natexp.data.cohort import Cohort, accounted, arm_counts, build_cohort
from natexp.data.rollout import rollout_frame
from natexp.data.tables import children_by_age, secondary_outcomes
from natexp.data.validate import Inputs, load_inputs, validate_frames
from natexp.experiments import published_items, replication_table

#: Largest group for which the descriptive table also gets the Boschloo exact test.
BOSCHLOO_MAX_N = 2000


@dataclass(frozen=True)
class Run:
    """What a run produced (immutable: a field cannot be replaced).

    Attributes
    ----------
    results : dict
        Everything written to ``results.json``.
    tables : dict of polars.DataFrame
        The tables written as CSV (flow, the study's descriptive table, uptake, ...); every one
        is declared in :mod:`natexp.outputs` (see :attr:`outputs`).
    cohort : Cohort
    output_dir : Path or None
        Where the outputs were written (None when ``write=False``).

    Examples
    --------
    ``run(config)`` returns one (its own example runs a whole experiment); the fields hold
    what a run computed:

    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> cohort = build_cohort(fam.lazy(), load_rollout(),
    ...                       default_design())
    >>> res = RunResult(results={}, tables={"flow": cohort.flow()}, cohort=cohort)
    >>> res.output_dir is None, res.tables["flow"].height, arm_counts(res.cohort, default_study().outcome.column)
    (True, 13, {'treatment': (4, 20), 'control': (2, 15)})
    """

    results: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    cohort: Cohort
    output_dir: Path | None = None
    notices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "notices", tuple(self.notices))

    @property
    def study(self) -> Any:
        """The :class:`natexp.study.Study` the run used (from its resolved config)."""
        from natexp.study import Study

        return Study.from_dict((self.results.get("config") or {}).get("study") or {})

    @property
    def outputs(self) -> tuple:
        """The declarations (:class:`natexp.outputs.Output`) of the tables this run wrote."""
        from natexp.outputs import declared_tables

        return tuple(o for o in declared_tables(self.study) if o.name in self.tables)

    def summary(self) -> str:
        """Plain-text summary of the headline numbers."""
        from natexp.study import Study

        r = self.results
        study = Study.from_dict(r["config"]["study"])
        flow = {(row["step"], row["arm"]): row["n"] for row in r["flow"]}
        prim = r["primary_outcome"]
        lines = [
            f"natexp {r['natexp_version']} - experiment {r['experiment']} "
            f"(design {r['design']['name']})",
        ]
        if r["inputs"]["synthetic"]:
            lines.append(f"Data: {r['inputs'].get('statement') or 'SYNTHETIC DATA'}")
        lines.append(
            f"Flow: {flow[('input', 'all')]} families in; identified "
            f"{flow[('identified', 'treatment')] + flow[('identified', 'control')]} "
            f"(treatment {flow[('identified', 'treatment')]}, control "
            f"{flow[('identified', 'control')]}); reached "
            f"{flow[('reached', 'treatment')] + flow[('reached', 'control')]} "
            f"({flow[('reached', 'treatment')]}/{flow[('reached', 'control')]})."
        )
        c = prim["counts"]
        lines.append(
            f"Primary outcome ({study.outcome.short_label}, reached families): treatment "
            f"{c['x1']}/{c['n1']} vs control {c['x2']}/{c['n2']}; {prim['sentence']}"
        )
        desc = study.descriptive
        for key, tab in (r.get(desc.key, {}) if desc is not None else {}).items():
            published = (f" (published {tab['published_chi2']})"
                         if "replication" in r and tab.get("published_chi2") is not None else "")
            line = (
                f"{desc.published or desc.title} {key}: Pearson chi-squared "
                f"{_num(tab['pearson_chi2'], '.4f')}"
                f"{published}; Fisher exact p = {_num(tab['fisher_pvalue'], '.3g')}"
            )
            if tab.get("note"):
                line += f" ({tab['note']})"
            lines.append(line)
        if "replication" in r:
            status = [row["status"] for row in r["replication"]]
            lines.append(
                f"Replication: {status.count('reproduces')} of {len(status)} published numbers "
                f"reproduce, {status.count('differs')} differ (see replication.csv)."
            )
        if self.output_dir is not None:
            lines.append(f"Outputs: {self.output_dir}")
        return "\n".join(lines)


#: The former name of :class:`Run`.
RunResult = Run


# --------------------------------------------------------------------------- helpers


def _check_declared(tables: dict[str, Any], study: Any) -> None:
    """Every table a run writes is declared once in :mod:`natexp.outputs` (a bug otherwise)."""
    from natexp.outputs import declared_tables

    declared = {o.name for o in declared_tables(study)}
    undeclared = sorted(set(tables) - declared)
    if undeclared:
        raise RuntimeError(f"natexp bug: table(s) {undeclared} are not declared in "
                           "natexp/outputs.py")


def _num(value: Any, spec: str) -> str:
    """Format a number for the summary; an undefined one (None or NaN) reads "undefined"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "undefined"
    return format(value, spec)


def _sha256_frame(df: pl.DataFrame) -> str:
    buf = io.BytesIO()
    df.write_csv(buf)
    return sha256_bytes(buf.getvalue())


def json_safe(value: Any) -> Any:
    """Make ``value`` strict-JSON: NaN becomes null, infinities the strings "inf"/"-inf"."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):
        return json_safe(value.item())
    return value


def load_data(settings: NatexpConfig, rollout: pl.DataFrame) -> tuple[Inputs, dict]:
    """Load and validate the inputs named by the config, or synthetic data.

    With no data paths the data are SYNTHETIC, drawn for this run's rollout, design and study:
    by the study's own hook when it declares one (``synthetic.hook``), else by natexp's generic
    generator (:func:`natexp.data.synthetic.generate`); their description says so.

    Returns
    -------
    (Inputs, dict)
        The validated inputs and their description for ``results.json`` (row counts,
        SHA-256, or the generator settings).
    """
    as_of = dt.date.fromisoformat(settings.data.as_of) if settings.data.as_of else None
    areas = rollout["area"].to_list()
    if settings.data.families is not None:
        inputs = load_inputs(settings.data.families, settings.data.children, areas,
                             study=settings.get_study(), as_of=as_of)
        desc: dict[str, Any] = {"synthetic": False}
        for name in ("families", "children"):
            path = Path(inputs.sources[name])
            rows = getattr(inputs, name).select(pl.len()).collect().item()
            desc[name] = {"file": path.name, "rows": rows, "sha256": sha256_file(path)}
        return inputs, desc
    from natexp.data.synthetic import generate, statement

    syn = settings.synthetic
    study = settings.get_study()
    fam, chi = generate(
        seed=syn.seed, n_families=syn.n_families, rollout=rollout,
        uptake_effect=syn.uptake_effect, followup=syn.followup, as_of=as_of,
        study=study, design=settings.design.to_design(),
    )
    inputs = validate_frames(fam, chi, areas, study=settings.get_study(), as_of=as_of)
    desc = {
        "synthetic": True,
        "statement": statement(study),
        "generator": {"seed": syn.seed, "n_families": syn.n_families,
                      "uptake_effect": syn.uptake_effect, "followup": syn.followup},
        "families": {"rows": fam.height, "sha256": _sha256_frame(fam)},
        "children": {"rows": chi.height, "sha256": _sha256_frame(chi)},
    }
    return inputs, desc


def _descriptive_note(x1: int, n1: int, x2: int, n2: int, study: Any) -> str | None:
    """Why a descriptive chi-squared is undefined (None when it is defined)."""
    w = study.wording
    if not n1 and not n2:
        return f"no {w.children}: every statistic of this table is undefined"
    for n, group in zip((n1, n2), study.descriptive.groups.values(), strict=True):
        if not n:
            return (f"no {w.children} with a {group} {w.parent}: the comparison is undefined "
                    "(chi-squared 0/0; Fisher p = 1 carries no information)")
    if x1 + x2 in (0, n1 + n2):
        return (f"every {w.child} has the same answer: the chi-squared is undefined (0/0) and "
                "Fisher p = 1 carries no information")
    return None


def descriptive_table(inputs: Inputs, study: Any,
                      confidence_level: float) -> tuple[dict, pl.DataFrame]:
    """The study's descriptive table (``study.descriptive``): every child by a family column.

    Each question compares children of the first group of ``descriptive.groups`` (group 1)
    with children of the second (group 2), with the uncorrected Pearson chi-squared (the
    statistic the example study's report published, its Appendix B) beside exact tests, and
    the same question with families as clusters of children.
    """
    from natexp.causal.twobytwo import compare_groups
    from natexp.causal.unconditional import boschloo
    from natexp.data.tables import descriptive_counts

    spec = study.descriptive
    counts = descriptive_counts(inputs.families, inputs.children, spec)
    clustered = _descriptive_clustered(inputs, study, confidence_level)
    (g1, w1), (g2, w2) = spec.groups.items()
    out: dict[str, Any] = {}
    rows = []
    for q in spec.questions:
        key = q.key
        part = {r[spec.by]: r for r in counts.filter(pl.col("question") == key).to_dicts()}
        label = part[g1]["label"]
        x1, n1, x2, n2 = part[g1]["yes"], part[g1]["n"], part[g2]["yes"], part[g2]["n"]
        # Descriptive tables of hundreds of children: the exact unconditional intervals
        # (seconds each at n = 607) add nothing to a large chi-squared; Boschloo is kept.
        panel = compare_groups(x1, n1, x2, n2, confidence_level=confidence_level,
                               include_unconditional=False)
        d = panel.to_dict()
        if max(n1, n2) <= BOSCHLOO_MAX_N:
            d["test"]["boschloo"] = boschloo(x1, n1, x2, n2).to_dict()
        else:
            d["test"]["boschloo"] = Result(
                method="test.boschloo", n=(n1, n2),
                note=f"not computed: more than {BOSCHLOO_MAX_N} per group, where the exact "
                "test adds nothing to the chi-squared and its cost grows with n squared",
            ).to_dict()
        pear = d["test"]["pearson"]
        fish = d["test"]["fisher_minlike"]
        note = _descriptive_note(x1, n1, x2, n2, study)
        out[key] = {
            "question": label,
            w1: {"yes": x1, "no": n1 - x1, "n": n1},
            w2: {"yes": x2, "no": n2 - x2, "n": n2},
            "pearson_chi2": pear["statistic"],
            "pearson_pvalue": pear["pvalue"],
            "published_chi2": q.published_chi2,
            "fisher_pvalue": fish["pvalue"],
            "estimand": {"population": spec.population,
                         "outcome": label,
                         "contrast": f"{spec.contrast} (descriptive: not the programme's arms)",
                         "conditional_on": "", "unit": "child"},
            "panel": d,
        }
        if note:
            out[key]["note"] = note
        if key in clustered:
            out[key]["clustered"] = clustered[key]
        rows.append(
            {
                "table": key,
                "question": label,
                f"{w1}_yes": x1,
                f"{w1}_no": n1 - x1,
                f"{w2}_yes": x2,
                f"{w2}_no": n2 - x2,
                "pearson_chi2": pear["statistic"],
                "pearson_pvalue": pear["pvalue"],
                "published_chi2": q.published_chi2,
                "fisher_minlike_pvalue": fish["pvalue"],
                "boschloo_pvalue": d["test"]["boschloo"]["pvalue"],
                "risk_ratio": d["risk_ratio"]["koopman"]["estimate"],
            }
        )
    return out, pl.DataFrame(rows)


def _balance_categories(study: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """The study's category columns of the balance table: (table, column, values)."""
    out = []
    for name in study.balance:
        for table in ("families", "children"):
            for col in study.column_specs(table):
                if col.name == name:
                    out.append((table, name, col.values))
    return out


def _treated_blocks(cohort: Cohort, assignment: Any) -> tuple[str, list[str]]:
    """The primary mechanism's block column (in words) and the blocks in the treated role."""
    from natexp.causal.assignment import enumerate_assignments
    from natexp.causal.result import InvalidInputError
    from natexp.causal.sensitivity import treated_units

    spec = assignment.specs()[0]
    try:
        space = enumerate_assignments(cohort.rollout, spec, treated_units(cohort, spec.unit))
    except InvalidInputError:
        return spec.block or spec.unit, []
    return spec.block or spec.unit, space.assigned_blocks()[0]


def _descriptive_clustered(inputs: Inputs, study: Any,
                           confidence_level: float) -> dict[str, Any]:
    """The descriptive table with families as clusters: children share a family, so the
    child-level tests assume an independence that fails. Cluster-robust risk difference over
    children, and the family-level table (families with at least one such child) with Fisher's
    exact test."""
    from natexp.causal.cluster import cluster_robust_rd, family_level_table
    from natexp.causal.sensitivity import _fisher_p

    spec = study.descriptive
    g1, g2 = spec.groups
    w1, w2 = spec.groups.values()
    kids = (inputs.children.join(inputs.families.select("family_id", spec.by),
                                 on="family_id", how="left")
            .filter(pl.col(spec.by).is_in([g1, g2])).sort("family_id", "child_id")
            .collect())
    if kids.height == 0:
        return {}
    first = (kids[spec.by] == g1).cast(pl.Int64).to_numpy()
    fam = kids["family_id"].to_numpy()
    out: dict[str, Any] = {}
    for q in spec.questions:
        y = kids[q.column].is_in(list(q.yes_values)).fill_null(False).cast(pl.Int64).to_numpy()
        cr = cluster_robust_rd(y, first, fam, confidence_level=confidence_level)
        t = family_level_table(y, first, fam)
        out[q.key] = {
            "cluster_robust": cr.to_dict(),
            "families": {w1: {"yes": t["x1"], "n": t["n1"]},
                         w2: {"yes": t["x0"], "n": t["n0"]}},
            "families_fisher_pvalue": _fisher_p(t["x1"], t["n1"], t["x0"], t["n0"]),
            "estimand": {"population": spec.family_population,
                         "outcome": f"at least one {study.wording.child}: {q.label}",
                         "contrast": spec.family_contrast,
                         "conditional_on": "", "unit": "family"},
            "note": f"{study.wording.children} cluster in {study.wording.families}; the "
                    "cluster-robust (CR1) test and the family-level Fisher test allow for that, "
                    "the published child-level chi-squared does not",
        }
    return out


def primary_outcome(cohort: Cohort, confidence_level: float,
                    assignment: Any = None, *, study: Any) -> tuple[dict, pl.DataFrame]:
    """The study's outcome (``study.outcome``) among reached families, treatment vs control.

    ``assignment`` (config ``assignment``) names the blocks the programme was assigned in, so
    the sentence can say what a comparison of so few blocks cannot separate.
    """
    from natexp.causal.sensitivity import primary_estimand
    from natexp.causal.twobytwo import compare_groups

    outcome, reached = study.outcome.column, study.outcome.reached
    counts = arm_counts(cohort, outcome, among=reached)
    (x1, n1), (x2, n2) = counts["treatment"], counts["control"]
    ident = arm_counts(cohort, reached, among=None)
    n_ident = ident["treatment"][1] + ident["control"][1]
    panel = compare_groups(x1, n1, x2, n2, confidence_level=confidence_level)
    d = panel.to_dict()
    rd = d["risk_difference"]["exact_unconditional"]
    p = d["test"]["boschloo"]["pvalue"]

    def pct(v: Any) -> str:
        return "undefined" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.0f}"

    block, treated = _treated_blocks(cohort, assignment) if assignment is not None else ("", [])
    if treated:
        which = (f"one {block} ({treated[0]})" if len(treated) == 1
                 else f"{len(treated)} {block} blocks ({', '.join(treated)})")
        area_caveat = (f" A comparison of {which} with the others cannot separate the "
                       f"programme from differences between {block} blocks.")
    else:
        area_caveat = (" Areas were not assigned at random: the comparison cannot separate the "
                       "programme from differences between areas.")
    if not (n1 and n2):
        sentence = "One arm is empty: no comparison is possible."
    else:
        lo, hi = rd["ci_low"], rd["ci_high"]
        covers_zero = lo is None or hi is None or lo <= 0 <= hi
        verdict = (
            f"With {n1 + n2} families the interval includes no difference as well as large "
            "differences either way: these data cannot tell whether the programme changed "
            f"{study.outcome.noun}."
            if covers_zero
            else f"The interval excludes no difference, but areas were not assigned at random and "
            f"only {n1 + n2} families were compared: read it as an association, not an effect."
        )
        sentence = (
            f"Among the {n1 + n2} of {n_ident} identified families reached by the follow-up "
            f"call, {x1} of {n1} treatment families and {x2} of {n2} control families "
            f"{study.outcome.verb} (difference {pct(rd['estimate'])} percentage points, "
            f"{100 * confidence_level:g}% exact interval {pct(lo)} to {pct(hi)}; Boschloo exact "
            f"p = {p:.2g}, which treats families as assigned one by one, conditional on the "
            f"observed allocation). {verdict}{area_caveat}"
        )
    result = {"counts": {"x1": x1, "n1": n1, "x2": x2, "n2": n2}, "sentence": sentence,
              "estimand": primary_estimand(cohort, outcome=outcome, reached=reached),
              "identified": n_ident,
              "area_caveat": area_caveat.strip(),
              "panel": d}
    return result, panel.to_polars()


def staggered_panel(
    inputs: Inputs, rollout: pl.DataFrame, settings: NatexpConfig
) -> tuple[dict, dict[str, pl.DataFrame]]:
    """Area x period panel and the staggered-rollout estimators (config ``panel``).

    Two-way fixed effects (reported with its known bias under staggered timing; CR1 standard
    error with t(G-1)), Callaway and Sant'Anna group-time ATTs aggregated overall, by event
    time and by cohort behind the cohort-size guard, wild cluster restricted bootstrap-t
    p-values and intervals (Rademacher, enumerated when 2^G <= ``n_boot``, and Webb) for TWFE
    and the aggregates, a few-unit pre-trend check, and randomization inference over the
    declared assignment space (``panel.assignment_blocks``).

    Valid data can make an estimator impossible (no family in the panel, every area in one
    cohort, treatment absorbed by the fixed effects): that estimator is then reported as not
    estimated, with the reason, and the run goes on.
    """
    from natexp.causal import staggered as st
    from natexp.data.panel import area_period_panel

    p = settings.panel
    level = settings.analysis.confidence_level
    blocks = None
    if p.assignment_blocks != "none":
        missing = rollout[p.assignment_blocks].null_count()
        if missing:
            from natexp.config import ConfigError

            raise ConfigError(
                f"rollout: column {p.assignment_blocks!r} is empty for {missing} area(s); "
                f"panel.assignment_blocks={p.assignment_blocks} needs it for every area")
        blocks = dict(zip(rollout["area"].to_list(),
                          rollout[p.assignment_blocks].cast(pl.String).to_list(), strict=True))
    panel = area_period_panel(
        inputs.families, rollout, outcome=settings.get_study().outcome.column, period=p.period,
        start=dt.date.fromisoformat(p.start), end=dt.date.fromisoformat(p.end),
    ).collect()
    common = {"outcome": p.outcome, "confidence_level": level}
    guard_kw = {"min_cohort_size": p.min_cohort_size, "small_cohorts": p.small_cohorts}
    boot = {"n_boot": p.n_boot, "rng": p.seed}
    unestimable = _unestimable_errors()
    empty = "" if int(panel["families"].sum() or 0) else "the panel holds no family"

    def attempt(fn: Any, *args: Any, **kw: Any) -> tuple[Any, str]:
        if empty:
            return None, empty
        try:
            return fn(*args, **kw), ""
        except unestimable as exc:
            return None, str(exc)

    def after(res: tuple[Any, str], fn: Any, *args: Any, **kw: Any) -> tuple[Any, str]:
        """``fn(result, ...)`` when the estimator it needs was estimated."""
        return attempt(fn, res[0], *args, **kw) if res[0] is not None else (None, res[1])

    def shown(res: Any, why: str) -> dict:
        return res.to_dict() if res is not None else {"note": f"not estimated: {why}"}

    tw = attempt(st.twfe, panel, small_sample=p.small_sample, **common)
    tw_wcr = {w: shown(*attempt(st.twfe_wcr, panel, weights=w, **boot, **common))
              for w in st.BOOT_WEIGHTS}
    gt = attempt(st.att_gt, panel, control_group=p.control_group, **common)
    aggs = {kind: after(gt, st.aggte, kind, **guard_kw) for kind in ("simple", "dynamic", "group")}
    wcr = {kind: {w: shown(*after(agg, st.aggte_wcr, weights=w, **boot))
                  for w in st.BOOT_WEIGHTS}
           for kind, agg in aggs.items()}
    pre = after(gt, st.pretrend_check, leads=p.pretrend_leads or None, weights="rademacher",
                **boot, **guard_kw)
    ri = attempt(
        st.randomization_inference, panel, outcome=p.outcome, control_group=p.control_group,
        blocks=blocks, min_cohort_size=p.min_cohort_size if p.small_cohorts == "exclude" else 1,
        n_permutations=p.n_permutations, rng=p.seed,
    )
    simple = aggs["simple"][0]
    if simple is not None:
        guard = simple.to_dict()["cohort_guard"] | {"mode": p.small_cohorts}
        members = (panel.filter(pl.col("period_index") == pl.col("first_treated"))
                   .group_by("first_treated", "period")
                   .agg(pl.col("area").sort()).sort("first_treated"))
        small = set(guard["small_cohorts"])
        guard["cohorts"] = [
            {"first_treated": g, "period": str(period), "areas": areas, "units": len(areas),
             "status": ("ok" if g not in small else
                        "excluded" if p.small_cohorts == "exclude" else "kept, below minimum")}
            for g, period, areas in members.iter_rows()
            if g in {c for c, _ in guard["cohort_sizes"]}
        ]
    else:
        guard = {"note": f"not estimated: {aggs['simple'][1]}", "mode": p.small_cohorts}
    out = {
        "settings": asdict(p),
        "cells": panel.height,
        "twfe": shown(*tw),
        "twfe_wcr": tw_wcr,
        "att_gt": shown(*gt),
        "aggregate": {kind: shown(*aggs[kind]) for kind in aggs},
        "cohort_guard": guard,
        "wcr": wcr,
        "pretrend": shown(*pre),
        "randomization_inference": shown(*ri) | {"assignment_blocks": p.assignment_blocks},
    }
    tables = {"panel": panel}
    if gt[0] is not None:
        tables["att_gt"] = gt[0].to_polars()
    if aggs["dynamic"][0] is not None:
        tables["event_study"] = aggs["dynamic"][0].to_polars()
    return out, tables


def _unestimable_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "these (valid) data cannot support this estimator": natexp's own typed
    error for impossible input and linearmodels' fully absorbed regressors."""
    from natexp.causal.result import InvalidInputError

    errors: list[type[BaseException]] = [InvalidInputError]
    try:
        from linearmodels.panel.utility import AbsorbingEffectError

        errors.append(AbsorbingEffectError)
    except ImportError:  # pragma: no cover - linearmodels is a dependency
        pass
    return tuple(errors)


@lru_cache(maxsize=8)
def _fisher_sample_size(p1: float, p2: float, confidence_level: float) -> Result:
    """Families per arm for 80% exact power of Fisher's test (one search per run: the power
    analysis and the clustered sample size both report it; the Result is immutable)."""
    from natexp.causal.power import sample_size

    return sample_size(p1, p2, power=0.8, test="fisher", confidence_level=confidence_level)


def power_analysis(counts: dict, confidence_level: float) -> dict:
    """Exact power of the primary comparison at its observed sizes and risks, the minimum
    detectable difference at 80% power, and the families per arm needed for the observed
    difference (all by enumeration, not a normal approximation)."""
    from natexp.causal.power import exact_power, minimum_detectable_difference

    x1, n1, x2, n2 = counts["x1"], counts["n1"], counts["x2"], counts["n2"]
    if not (n1 and n2):
        return {"note": "one arm is empty: no power analysis"}
    p1, p2 = x1 / n1, x2 / n2
    kw = {"confidence_level": confidence_level}
    out: dict[str, Any] = {
        "observed": {"p1": p1, "p2": p2, "n1": n1, "n2": n2},
        "power_boschloo": exact_power(n1, n2, p1, p2, test="boschloo", **kw).to_dict(),
        "power_fisher": exact_power(n1, n2, p1, p2, test="fisher", **kw).to_dict(),
        "mdd_boschloo": minimum_detectable_difference(n1, n2, p2, power=0.8, test="boschloo",
                                                      **kw).to_dict(),
    }
    if p1 != p2:
        # Fisher's test: its exact sample-size search takes seconds; Boschloo's, minutes.
        out["sample_size_fisher"] = _fisher_sample_size(p1, p2, confidence_level).to_dict()
    return out


def _cluster_analysis(cohort: Cohort, settings: NatexpConfig, counts: dict, *,
                      outcome: str, among: str) -> dict[str, Any]:
    """Intra-cluster correlation of the outcome across the assigned units (among the primary
    population), the design effect, and the power and sample size carried through it."""
    from natexp.causal.power import design_effect, exact_power, icc_anova

    unit = settings.assignment.unit
    level = settings.analysis.confidence_level
    m = (cohort.members.filter(pl.col(among) == True)  # noqa: E712
         .select(unit, "arm", pl.col(outcome).fill_null(False).cast(pl.Int64)).collect()
         .sort(unit, "arm", outcome))
    icc = icc_anova(m[outcome].to_numpy(), m[unit].to_numpy())
    out: dict[str, Any] = {
        "estimand": {"population": f"families with {among} True", "outcome": outcome,
                     "contrast": f"share of the outcome's variance between {unit}s",
                     "conditional_on": "", "unit": "family"},
        "icc": icc.to_dict()}
    if math.isnan(icc.estimate):
        out["note"] = "too few units or families for an intra-cluster correlation"
        return out
    per_arm = {}
    for arm, n in (("treatment", counts["n1"]), ("control", counts["n2"])):
        sizes = m.filter(pl.col("arm") == arm).group_by(unit).len()["len"].to_numpy()
        if sizes.size == 0:
            continue
        mean, cv = float(sizes.mean()), float(sizes.std() / sizes.mean())
        deff = design_effect(icc.estimate, mean, cv)
        per_arm[arm] = {"units": int(sizes.size), "mean_size": mean, "cv_size": cv,
                        "design_effect": deff, "families": int(n),
                        "effective_families": n / deff}
    out["per_arm"] = per_arm
    x1, n1, x2, n2 = counts["x1"], counts["n1"], counts["x2"], counts["n2"]
    if n1 and n2 and len(per_arm) == 2:
        e1 = max(1, round(per_arm["treatment"]["effective_families"]))
        e2 = max(1, round(per_arm["control"]["effective_families"]))
        out["power_fisher_effective"] = exact_power(
            e1, e2, x1 / n1, x2 / n2, test="fisher", confidence_level=level).to_dict()
        deff_max = max(v["design_effect"] for v in per_arm.values())
        if x1 / n1 != x2 / n2:
            ss = _fisher_sample_size(x1 / n1, x2 / n2, level)
            if not math.isnan(ss.estimate):
                out["sample_size_fisher_clustered"] = {
                    "families_per_arm_independent": ss.estimate,
                    "design_effect": deff_max,
                    "families_per_arm_clustered": math.ceil(ss.estimate * deff_max),
                    "note": "the independent-families sample size times the larger arm's "
                            "design effect at the observed cluster sizes; the ICC comes from "
                            f"{icc.extra['n']} families in {icc.extra['k']} {unit}s and is "
                            "very imprecise"}
    return out


def _intention_to_treat(cohort: Cohort, level: float, *, outcome: str,
                        reached: str) -> dict[str, Any] | None:
    """All identified families, when the outcome is recorded for every one of them; when it is
    not (a study whose outcome may be missing for unreached families), a note says why the
    comparison is not estimated."""
    from natexp.causal.twobytwo import compare_groups

    missing = cohort.members.select(pl.col(outcome).null_count()).collect().item()
    if missing:
        unreached = (cohort.members
                     .filter(pl.col(outcome).is_null() & (pl.col(reached) != True)  # noqa: E712
                             .fill_null(True))
                     .select(pl.len()).collect().item())
        why = (f"outcome not recorded for {unreached} unreached families" if unreached == missing
               else f"outcome not recorded for {missing} identified families")
        return {
            "estimand": {"population": "all identified families", "outcome": outcome,
                         "contrast": "risk difference, treatment minus control",
                         "conditional_on": "", "unit": "family"},
            "note": f"not estimated: {why}; the primary comparison is conditional on being "
                    f"reached ({reached} true), where the outcome is recorded",
        }
    counts = arm_counts(cohort, outcome, among=None)
    (x1, n1), (x2, n2) = counts["treatment"], counts["control"]
    if not (n1 and n2):
        return None
    d = compare_groups(x1, n1, x2, n2, confidence_level=level).to_dict()
    reached_n = sum(arm_counts(cohort, reached, among=None)[a][0] for a in counts)
    return {
        "estimand": {"population": f"all {n1 + n2} identified families", "outcome": outcome,
                     "contrast": "risk difference, treatment minus control",
                     "conditional_on": "", "unit": "family"},
        "counts": {"x1": x1, "n1": n1, "x2": x2, "n2": n2},
        "risk_difference": d["risk_difference"]["exact_unconditional"],
        "boschloo": d["test"]["boschloo"],
        "note": f"intention-to-treat comparison of every identified family (the outcome is "
                f"recorded for all {n1 + n2}); the primary comparison is conditional on being "
                f"reached ({reached_n} of {n1 + n2})",
    }


def start_dowhy(cohort: Cohort, inputs: Inputs, settings: NatexpConfig) -> Any:
    """Start the DoWhy model of the primary comparison (in the run's helper process when there
    is one, :mod:`natexp.workers`); None when the config does not ask for it. Pass the result to
    :func:`sensitivity`."""
    cfg = settings.sensitivity
    if not (cfg.enabled and cfg.dowhy):
        return None
    from natexp.causal.dowhy_model import start_dowhy_analysis

    outcome = settings.get_study().outcome
    return start_dowhy_analysis(
        cohort, inputs.children, outcome=outcome.column, among=outcome.reached,
        confidence_level=settings.analysis.confidence_level, n_simulations=cfg.dowhy_simulations,
        n_permutations=cfg.dowhy_permutations, rng=cfg.seed)


def sensitivity(
    cohort: Cohort, inputs: Inputs, settings: NatexpConfig, *, dowhy: Any = None,
    wait_for_dowhy: bool = True,
) -> tuple[dict, dict[str, pl.DataFrame]]:
    """Sensitivity analyses and the DoWhy model of the primary comparison (config
    ``sensitivity``; assignment mechanisms from config ``assignment``). Every analysis targets
    the primary estimand (the reached families' comparison) unless its ``estimand`` says
    otherwise. ``dowhy``: what :func:`start_dowhy` returned (default: started here).
    ``wait_for_dowhy=False`` leaves DoWhy's results out; :func:`add_dowhy` adds them later."""
    from natexp.causal.assignment import enumerate_assignments
    from natexp.causal.randomization import unit_randomization_distribution
    from natexp.causal.result import InvalidInputError
    from natexp.causal.sensitivity import sensitivity_suite, treated_units

    cfg = settings.sensitivity
    level = settings.analysis.confidence_level
    study = settings.get_study()
    outcome, reached = study.outcome.column, study.outcome.reached
    identified = arm_counts(cohort, outcome, among=None)
    empty = [arm for arm, (_, n) in identified.items() if not n]
    if empty:
        return {"note": f"not computed: no identified family in the {' and '.join(empty)} "
                        "arm(s), so there is no comparison to test for sensitivity"}, {}
    specs = settings.assignment.specs()
    suite = sensitivity_suite(cohort, outcome=outcome, reached=reached, confidence_level=level,
                              assignments=specs, placebo_months=tuple(cfg.placebo_months),
                              rng=cfg.seed)
    out: dict[str, Any] = suite.to_dict()
    try:
        space = enumerate_assignments(cohort.rollout, specs[0],
                                      treated_units(cohort, specs[0].unit), rng=cfg.seed)
        distribution = unit_randomization_distribution(cohort, space, outcome=outcome,
                                                       among=reached)
    except InvalidInputError:  # the design does not match the declared blocks (a note says)
        distribution = None
    counts = arm_counts(cohort, outcome, among=reached)
    (x1, n1), (x2, n2) = counts["treatment"], counts["control"]
    out["cluster"] = _cluster_analysis(cohort, settings, {"x1": x1, "n1": n1, "x2": x2,
                                                          "n2": n2},
                                       outcome=outcome, among=reached)
    itt = _intention_to_treat(cohort, level, outcome=outcome, reached=reached)
    if itt is not None:
        out["intention_to_treat"] = itt
    tables = {
        "sensitivity": suite.to_polars(),
        "tipping_point": suite.nonresponse.to_polars(),
        "pattern_mixture": suite.pattern_mixture.to_polars(),
        "leave_one_area_out": suite.leave_one_out.to_polars(),
        "placebo_in_space": suite.placebo_in_space.to_polars(),
        "placebo_in_time": suite.placebo_in_time.to_polars(),
    }
    if distribution is not None:
        tables["randomization_distribution"] = distribution.with_columns(
            pl.lit(space.spec.name).alias("assignment_space"),
            pl.lit(space.size, dtype=pl.Int64).alias("assignment_space_size"),
            pl.lit(space.min_pvalue).alias("min_pvalue"))
    # every CSV of an analysis says what it estimates
    words = {
        "tipping_point": out["pattern_mixture"]["meta"]["estimand"],
        "pattern_mixture": out["pattern_mixture"]["meta"]["estimand"],
        "leave_one_area_out": out["estimand"],
        "randomization_distribution": out["estimand"],
        "placebo_in_space": out["placebo_in_space"]["meta"]["estimand"],
        "placebo_in_time": out["placebo_in_time"]["meta"]["estimand"],
    }
    for name, est in words.items():
        if name in tables and tables[name].width:
            text = (f"{est.get('contrast')} in {est.get('outcome')} among "
                    f"{est.get('population')}" + (f", conditional on {est['conditional_on']}"
                                                  if est.get("conditional_on") else ""))
            tables[name] = tables[name].with_columns(pl.lit(text).alias("estimand"))
    if cfg.spec_curve:
        out["specification_curve"], tables["specification_curve"] = specification_curve(
            cohort, inputs, settings)
    if cfg.dowhy and wait_for_dowhy:
        add_dowhy(out, tables, (dowhy or start_dowhy(cohort, inputs, settings))())
    return out, tables


def add_dowhy(out: dict, tables: dict[str, pl.DataFrame], dw: Any) -> None:
    """Put a finished DoWhy analysis into the sensitivity results ``out`` and ``tables``."""
    out["dowhy"] = {**dw.to_dict(), "estimand": out["estimand"]}
    tables["dowhy"] = dw.to_polars().with_columns(
        pl.lit(f"{out['estimand']['contrast']} in {out['estimand']['outcome']} among "
               f"{out['estimand']['population']}, adjusted for "
               f"{', '.join(dw.adjustment_set) or 'nothing'}").alias("estimand"))


def specification_curve(cohort: Cohort, inputs: Inputs, settings: NatexpConfig
                        ) -> tuple[dict, pl.DataFrame]:
    """The primary estimate across the study's specification choices (config
    ``sensitivity.spec_*``; null: derived from the run's design, which is always included)."""
    from natexp.config import ConfigError
    from natexp.data.cohort import DesignError
    from natexp.speccurve import specification_choices
    from natexp.speccurve import specification_curve as curve

    cfg = settings.sensitivity

    def dates(values: list[str] | None) -> list[dt.date] | None:
        return None if values is None else [dt.date.fromisoformat(str(v)) for v in values]

    try:
        choices = specification_choices(
            cohort.design, designs=cfg.spec_designs, window_starts=dates(cfg.spec_window_starts),
            window_ends=dates(cfg.spec_window_ends),
            followup_dates=dates(cfg.spec_followup_dates), custody=cfg.spec_custody)
    except DesignError as err:
        raise ConfigError(f"config: sensitivity.spec_* (specification-curve choices): {err}") from None
    table = curve(inputs.families, cohort.rollout, cohort.design,
                  outcome=settings.get_study().outcome.column, choices=choices,
                  confidence_level=settings.analysis.confidence_level)
    out: dict[str, Any] = {"table": table.to_dicts()}
    if choices.added:
        out["notes"] = choices.notes()
    return out, table


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no nested values: lists become ';'-joined text, structs JSON text."""
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.List | pl.Array):
            exprs.append(pl.col(name).cast(pl.List(pl.String)).list.join(";"))
        elif isinstance(dtype, pl.Struct):
            exprs.append(pl.col(name).struct.json_encode())
    return frame.with_columns(exprs) if exprs else frame


def _write_outputs(target: Path, results: dict, tables: dict[str, pl.DataFrame], *,
                   report: bool = True, previous: dict[str, str] | None = None,
                   figures: dict[str, bytes] | None = None) -> None:
    """Write everything into a staging folder beside ``target``, then move it into place.

    ``previous`` is what :func:`natexp.safety.check_target` allowed to be replaced (the files
    of an earlier natexp output in ``target``); nothing else in ``target`` is touched. A failure
    or a signal (SIGINT, SIGTERM) removes the staging folder; after SIGKILL the next run does
    (:func:`natexp.safety.sweep_stale`).
    """
    from natexp.safety import checkpoint, commit_outputs, staging_dir

    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = staging_dir(target.parent, f".{target.name}.staging-")
    try:
        text = json.dumps(json_safe(results), indent=2, sort_keys=True, allow_nan=False)
        (stage / "results.json").write_text(text + "\n", encoding="utf-8")
        for name, frame in tables.items():
            _csv_ready(frame).write_csv(stage / f"{name}.csv")
        checkpoint("run.writing")
        if report:
            from natexp.report.render import write_report

            write_report(stage, results, tables, figures=figures)
        checkpoint("run.written")
        commit_outputs(stage, target, previous or {})
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _relative_config(config: dict) -> dict:
    """The config for ``results.json``: input paths as file names, no output folder.

    results.json holds no machine paths; the inputs are identified by file name and checksum
    (``results["inputs"]``).

    Examples
    --------
    >>> _relative_config({"data": {"families": "/srv/x/f.csv", "children": None},
    ...                   "output_dir": "/tmp/o"})
    {'data': {'families': 'f.csv', 'children': None}, 'output_dir': None}
    """
    out = dict(config)
    data = dict(out.get("data") or {})
    for k in ("families", "children"):
        if isinstance(data.get(k), str):
            data[k] = Path(data[k].replace("\\", "/")).name
    if "data" in out:
        out["data"] = data
    if "output_dir" in out:
        out["output_dir"] = None
    return out


class _Output:
    """An output folder made ready before the analysis: refused early if natexp may not write
    there, locked against a concurrent run, checked for write permission and free space."""

    def __init__(self, target: Path, tolerate: tuple[str, ...] = ()):
        from natexp.safety import (
            OutputDirError,
            OutputLock,
            check_target,
            preflight,
            sweep_stale,
        )

        self.target = target.resolve()
        # folders created here are removed again when the run writes nothing
        self.created = [p for p in (self.target.parent, *self.target.parent.parents)
                        if not p.exists()]
        self.lock: OutputLock | None = None
        try:
            try:
                self.target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputDirError(f"output_dir {self.target.name}: its folder cannot be "
                                     f"created ({type(exc).__name__}); nothing was run") from None
            sweep_stale(self.target.parent)
            if self.target.is_dir() and not self.target.is_symlink():
                sweep_stale(self.target)  # a write probe of a killed run
            self.previous = check_target(self.target, tolerate=tolerate)
            preflight(self.target)
            self.lock = OutputLock(self.target).acquire()
            self.previous = check_target(self.target, tolerate=tolerate)  # under the lock
        except BaseException:
            self.release()
            self.remove_created()
            raise

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self.lock is not None:
            self.lock.release()

    def remove_created(self) -> None:
        """Remove the (empty) parent folders this run created, when it wrote nothing."""
        for p in self.created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break


def run(config: Any, *, output_dir: str | Path | None = None, write: bool = True,
        data: tuple[Inputs, dict] | None = None, tolerate: tuple[str, ...] = ()) -> RunResult:
    """Run a whole experiment.

    Parameters
    ----------
    config : omegaconf.DictConfig, dict or NatexpConfig
        A composed config (``natexp.config.compose([...])`` gives exactly what the CLI uses).
    output_dir : str or Path, optional
        Overrides ``config.output_dir`` (default ``outputs/<experiment>``).
    write : bool
        False: compute only (for notebooks); nothing is written.
    data : (Inputs, dict), optional
        Inputs already loaded and validated, with their description (what :func:`load_data`
        returns); default: loaded from the config.
    tolerate : tuple of str
        Entries of an existing, unmarked output folder that do not make it "not natexp's"
        (the CLI passes what Hydra itself wrote into a sweep's job folder).

    Returns
    -------
    RunResult

    Raises
    ------
    natexp.data.validate.InputValidationError
        When the inputs break the contract (nothing is written).
    natexp.config.ConfigError
        When the configuration is invalid (nothing is written).
    natexp.safety.OutputDirError
        When the output folder is not natexp's to write (a file, or a non-empty folder without
        natexp's marker), is locked by another run, is read-only or full (checked before the
        analysis; nothing is written).

    Examples
    --------
    >>> from natexp.config import compose
    >>> res = run(compose(["+experiment=oxon_vs_rest"]), write=False)
    >>> res.results["primary_outcome"]["counts"]
    {'x1': 4, 'n1': 20, 'x2': 2, 'n2': 15}
    """
    settings = to_settings(config)
    # One BLAS thread: multi-threaded BLAS sums in a varying order, which changes the last
    # bits of least-squares results between runs (Non-negotiable 6: byte-identical results).
    from threadpoolctl import threadpool_limits

    from natexp.workers import helper_modules, pool

    warm = helper_modules(dowhy=settings.sensitivity.enabled and settings.sensitivity.dowhy,
                          figures=write and settings.report.enabled)
    with threadpool_limits(limits=1):
        out = None
        if write:  # refused, locked and checked before the analysis starts
            out = _Output(Path(output_dir or settings.output_dir
                               or Path("outputs") / settings.experiment), tolerate)
        try:
            # a helper process for DoWhy and part of the figures (same results, less wall time)
            with pool(warm=warm, active=bool(warm)):
                return _run(settings, output=out, data=data)
        except BaseException:
            if out is not None:
                out.release()
                if not out.target.exists():
                    out.remove_created()
            raise
        finally:
            if out is not None:
                out.release()


def _run(settings: NatexpConfig, *, output: _Output | None,
         data: tuple[Inputs, dict] | None) -> RunResult:
    from natexp.progress import Progress

    steps = 6 + settings.sensitivity.enabled + settings.panel.enabled
    with Progress(total=steps, description=f"natexp run {settings.experiment}") as bar:
        return _steps(settings, output=output, data=data, bar=bar)


def _steps(settings: NatexpConfig, *, output: _Output | None,
           data: tuple[Inputs, dict] | None, bar: Any) -> RunResult:
    """The run's steps; ``bar`` shows which one is running (on a terminal only)."""
    from natexp.safety import checkpoint
    from natexp.workers import current as current_helper

    rollout = rollout_frame([asdict(a) for a in settings.rollout.areas])
    design = settings.design.to_design()
    bar.update(0, status="loading and validating the inputs")
    inputs, input_desc = data if data is not None else load_data(settings, rollout)
    checkpoint("run.loaded")
    bar.update(status="cohort and flow")
    study = settings.get_study()
    cohort = build_cohort(inputs.families, rollout, design, reached=study.outcome.reached,
                          followup=study.followup_stages)
    flow = cohort.flow()
    if not accounted(flow):  # an internal invariant, not a user error
        raise AssertionError("cohort flow does not account for every input family")
    dowhy = start_dowhy(cohort, inputs, settings)  # runs beside the steps below
    level = settings.analysis.confidence_level
    desc = study.descriptive
    bar.update(status=f"{desc.title if desc is not None else 'descriptive table'} "
                      "and the primary outcome")
    if desc is not None:
        descriptive, descriptive_frame = descriptive_table(inputs, study, level)
    primary, uptake_table = primary_outcome(cohort, level, settings.assignment, study=study)

    results: dict[str, Any] = {
        "natexp_version": __version__,
        "experiment": settings.experiment,
        "description": settings.description,
        "config": _relative_config(asdict(settings)),
        "inputs": input_desc,
        "notices": [n.to_dict() for n in inputs.notices],
        "rollout": [
            {**row, "go_live": None if row["go_live"] is None else row["go_live"].isoformat()}
            for row in rollout.iter_rows(named=True)
        ],
        "design": design.to_dict(),
        "flow": flow.to_dicts(),
        "flow_accounted": True,
        "primary_outcome": primary,
    }
    if desc is not None:
        results[desc.key] = descriptive
    bar.update(status="power")
    results["power"] = power_analysis(primary["counts"], level)
    bar.update(status="secondary outcomes, balance, replication")
    secondary, secondary_frames = secondary_outcomes(cohort, study)
    results["secondary"] = secondary
    categories = _balance_categories(study)
    balance = {
        "identified": balance_table(cohort, inputs.children, categories=categories),
        "reached": balance_table(cohort, inputs.children, among=study.outcome.reached,
                                 categories=categories),
    }
    results["balance"] = {k: v.to_dicts() for k, v in balance.items()}
    tables = {"flow": flow}
    if desc is not None:
        tables[desc.key] = descriptive_frame
    tables.update({"uptake": uptake_table, "children_by_age": children_by_age(inputs.children),
                   "balance_identified": balance["identified"],
                   "balance_reached": balance["reached"]})
    tables.update({f"secondary_{k}": v for k, v in secondary_frames.items()})
    published = published_items(settings.experiment)
    if published is not None:
        replication = replication_table(published, results)
        results["replication"] = replication.to_dicts()
        tables["replication"] = replication
    # With a helper process, it draws the figures that need nothing from the steps below
    # while this process computes them.
    drawing = output is not None and settings.report.enabled and current_helper() is not None
    started = {}
    if drawing:
        from natexp.report.render import start_figures

        started = start_figures(results, tables)
    # With DoWhy in the helper process, this process renders the figures (none shows DoWhy)
    # while the helper finishes, instead of waiting for it.
    early = dowhy is not None and drawing
    if settings.sensitivity.enabled:
        bar.update(status="sensitivity analyses and DoWhy")
        results["sensitivity"], sens_tables = sensitivity(cohort, inputs, settings, dowhy=dowhy,
                                                          wait_for_dowhy=not early)
        tables.update(sens_tables)
    if settings.panel.enabled:
        bar.update(status="staggered-rollout panel estimators")
        results["staggered"], panel_tables = staggered_panel(inputs, rollout, settings)
        tables.update(panel_tables)
    figures = None
    if early or started:
        bar.update(0, status="figures, beside DoWhy" if early else "figures")
        from natexp.report.render import render_figures

        figures = render_figures(results, tables, started=started)
        if early and "estimand" in results["sensitivity"]:  # not when sensitivity() had nothing to test
            before = list(tables)  # DoWhy's table goes where sensitivity() would have put it
            add_dowhy(results["sensitivity"], tables, dowhy())
            cut = max(before.index(k) for k in sens_tables) + 1 if sens_tables else len(before)
            tables = {k: tables[k] for k in [*before[:cut], "dowhy", *before[cut:]]}
    _check_declared(tables, study)
    out = None
    bar.update(status="writing outputs, figures and the report" if output else "finishing")
    if output is not None:
        out = output.target
        _write_outputs(out, results, tables, report=settings.report.enabled,
                       previous=output.previous, figures=figures)
    bar.update(status="done")
    return Run(results, tables, cohort, out, tuple(str(n) for n in inputs.notices))
