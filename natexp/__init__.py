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

#: public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    # configuration and whole runs
    "compose": ("natexp.config", "compose"),
    "run": ("natexp.pipeline", "run"),
    "RunResult": ("natexp.pipeline", "RunResult"),
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
    "twfe": ("natexp.causal.staggered", "twfe"),
    "att_gt": ("natexp.causal.staggered", "att_gt"),
    "aggte": ("natexp.causal.staggered", "aggte"),
    # published numbers
    "load_published": ("natexp.experiments", "load_published"),
    "replication_table": ("natexp.experiments", "replication_table"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'natexp' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
