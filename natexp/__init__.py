"""natexp: evaluate programmes that went live area by area as natural experiments.

The public API. Every name loads its module on first use, so ``import natexp`` stays quick and
heavy libraries (scipy, statsmodels, linearmodels, dowhy, plotnine, hydra) load only when needed.

Examples
--------
>>> import natexp
>>> panel = natexp.compare_groups(4, 20, 2, 15)
>>> round(panel.risk_difference["newcombe"].estimate, 4)
0.0667
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
# The commit natexp was built from: ``natexp.__commit__`` (None when unknown), computed on first
# use by natexp.version.build_info (recorded at build time, or asked from git in a checkout).

#: public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    # configuration and whole runs
    "compose": ("natexp.config", "compose"),
    "run": ("natexp.pipeline", "run"),
    "Run": ("natexp.pipeline", "Run"),
    "RunResult": ("natexp.pipeline", "RunResult"),
    "Study": ("natexp.study", "Study"),
    "NatexpError": ("natexp.errors", "NatexpError"),
    # data
    "load_inputs": ("natexp.data.validate", "load_inputs"),
    "validate_frames": ("natexp.data.validate", "validate_frames"),
    "InputValidationError": ("natexp.data.validate", "InputValidationError"),
    "load_rollout": ("natexp.data.rollout", "load_rollout"),
    "rollout_frame": ("natexp.data.rollout", "rollout_frame"),
    "Design": ("natexp.data.cohort", "Design"),
    "build_cohort": ("natexp.data.cohort", "build_cohort"),
    "flow_table": ("natexp.data.cohort", "flow_table"),
    "arm_counts": ("natexp.data.cohort", "arm_counts"),
    "generate_synthetic": ("natexp.data.synthetic", "generate"),
    "secondary_outcomes": ("natexp.data.tables", "secondary_outcomes"),
    "area_period_panel": ("natexp.data.panel", "area_period_panel"),
    # estimation
    "Result": ("natexp.causal.result", "Result"),
    "compare_groups": ("natexp.causal.twobytwo", "compare_groups"),
    "balance_table": ("natexp.causal.balance", "balance_table"),
    "exact_power": ("natexp.causal.power", "exact_power"),
    "minimum_detectable_difference": ("natexp.causal.power", "minimum_detectable_difference"),
    "sample_size": ("natexp.causal.power", "sample_size"),
    "simulate_power": ("natexp.causal.power_sim", "simulate_power"),
    "minimum_detectable_effect": ("natexp.causal.power_sim", "minimum_detectable_effect"),
    "plan_power": ("natexp.planning", "plan_power"),
    "twfe": ("natexp.causal.staggered", "twfe"),
    "att_gt": ("natexp.causal.staggered", "att_gt"),
    "aggte": ("natexp.causal.staggered", "aggte"),
    "matching_pairs": ("natexp.causal.twobytwo", "matching_pairs"),
    # sensitivity analyses of the primary comparison
    "sensitivity_suite": ("natexp.causal.sensitivity", "sensitivity_suite"),
    "nonresponse_counts": ("natexp.causal.sensitivity", "nonresponse_counts"),
    "manski_bounds": ("natexp.causal.sensitivity", "manski_bounds"),
    "tipping_point": ("natexp.causal.sensitivity", "tipping_point"),
    "evalues_2x2": ("natexp.causal.sensitivity", "evalues_2x2"),
    "evalue_or": ("natexp.causal.sensitivity", "evalue_or"),
    "leave_one_area_out": ("natexp.causal.sensitivity", "leave_one_area_out"),
    "pattern_mixture": ("natexp.causal.sensitivity", "pattern_mixture"),
    "delta_tipping_point": ("natexp.causal.sensitivity", "delta_tipping_point"),
    "AssignmentSpec": ("natexp.causal.assignment", "AssignmentSpec"),
    "enumerate_assignments": ("natexp.causal.assignment", "enumerate_assignments"),
    "unit_randomization_test": ("natexp.causal.randomization", "unit_randomization_test"),
    "unit_randomization_distribution": ("natexp.causal.randomization",
                                        "unit_randomization_distribution"),
    "placebo_in_space": ("natexp.causal.randomization", "placebo_in_space"),
    "placebo_in_time": ("natexp.causal.randomization", "placebo_in_time"),
    "icc_anova": ("natexp.causal.power", "icc_anova"),
    "design_effect": ("natexp.causal.power", "design_effect"),
    "cluster_robust_rd": ("natexp.causal.cluster", "cluster_robust_rd"),
    "randomization_test": ("natexp.causal.randomization", "randomization_test"),
    "randomization_distribution": ("natexp.causal.randomization", "randomization_distribution"),
    "placebo_go_live": ("natexp.causal.randomization", "placebo_go_live"),
    "dowhy_analysis": ("natexp.causal.dowhy_model", "dowhy_analysis"),
    # figures (plotnine ggplot objects; they display inline in Jupyter)
    "fig_flow": ("natexp.report.figures", "fig_flow"),
    "fig_forest": ("natexp.report.figures", "fig_forest"),
    "fig_uptake": ("natexp.report.figures", "fig_uptake"),
    "fig_contact": ("natexp.report.figures", "fig_contact"),
    "fig_referral_response": ("natexp.report.figures", "fig_referral_response"),
    "fig_reasons": ("natexp.report.figures", "fig_reasons"),
    "fig_interview": ("natexp.report.figures", "fig_interview"),
    "fig_descriptive": ("natexp.report.figures", "fig_descriptive"),
    "fig_child_ages": ("natexp.report.figures", "fig_child_ages"),
    "fig_tipping_point": ("natexp.report.figures", "fig_tipping_point"),
    "fig_randomization": ("natexp.report.figures", "fig_randomization"),
    "fig_leave_one_out": ("natexp.report.figures", "fig_leave_one_out"),
    "fig_placebo": ("natexp.report.figures", "fig_placebo"),
    "fig_specification_curve": ("natexp.report.figures", "fig_specification_curve"),
    "fig_event_study": ("natexp.report.figures", "fig_event_study"),
    "save_png": ("natexp.report.figures", "save_png"),
    # published numbers
    "load_published": ("natexp.experiments", "load_published"),
    "replication_table": ("natexp.experiments", "replication_table"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name == "__commit__":
        from natexp.version import build_info

        return build_info()["commit"]
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'natexp' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
