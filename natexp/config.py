"""The configuration schema (structured configs) and the Hydra compose API for notebooks.

One of the two modules that know Hydra (with ``cli.py``). The schema is a tree of dataclasses
registered with Hydra's ConfigStore, so composition rejects unknown keys. Dates are ``str``
(OmegaConf has no date type) and are checked in ``__post_init__``, which runs when
:func:`to_settings` turns a composed config into objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from natexp.errors import NatexpError
from natexp.paths import CONF_DIR


class ConfigError(NatexpError, ValueError):
    """The configuration is invalid (bad date, unknown design, ...)."""


def _date(value: str | None, key: str, *, required: bool = True) -> dt.date | None:
    if value is None or value == "":
        if required:
            raise ConfigError(f"config: {key} is required (YYYY-MM-DD)")
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"config: {key} must be a date YYYY-MM-DD, got {value!r}") from None


@dataclass
class AreaConfig:
    """One area of the rollout schedule."""

    name: str = ""
    county: str = ""
    go_live: str | None = None
    phase: int | None = None

    def __post_init__(self) -> None:
        _date(self.go_live, f"rollout area {self.name!r} go_live", required=False)


@dataclass
class RolloutConfig:
    """The rollout schedule (``conf/rollout/*.yaml``)."""

    name: str = "rollout"
    areas: list[AreaConfig] = field(default_factory=list)


@dataclass
class DesignConfig:
    """Cohort design (``conf/design/*.yaml``); see :class:`natexp.data.cohort.Design`."""

    name: str = "design"
    kind: str = "staggered"  # valid without treatment counties
    window_start: str = "2022-07-01"
    window_end: str = "2024-06-30"
    followup_date: str | None = "2024-11-01"
    custody_at_followup: bool = True
    treatment_counties: list[str] = field(default_factory=list)
    phases: list[int] | None = None

    def __post_init__(self) -> None:
        from natexp.data.cohort import DesignError

        try:
            self.to_design()
        except DesignError as exc:
            raise ConfigError(f"config: {exc}") from None

    def to_design(self):
        """Return the :class:`natexp.data.cohort.Design` this config describes."""
        from natexp.data.cohort import Design

        return Design(
            name=self.name,
            kind=self.kind,
            window_start=_date(self.window_start, "design.window_start"),
            window_end=_date(self.window_end, "design.window_end"),
            followup_date=_date(self.followup_date, "design.followup_date", required=False),
            custody_at_followup=self.custody_at_followup,
            treatment_counties=tuple(self.treatment_counties),
            phases=None if self.phases is None else tuple(self.phases),
        )


@dataclass
class AssignmentSpecConfig:
    """One declared assignment mechanism; see :class:`natexp.causal.assignment.AssignmentSpec`.

    ``block`` names a rollout column (``area``, ``county``, ``phase``); null: every unit is a
    block of its own ("any k of N units"). ``merge`` lists groups of block values that were one
    decision (e.g. ``[["1", "2"]]``: rollout phases 1 and 2 were one wave).
    """

    name: str = "county"
    block: str | None = "county"
    merge: list[list[str]] = field(default_factory=list)
    description: str = ""


@dataclass
class AssignmentConfig:
    """How the programme was assigned (``conf/assignment/*.yaml``): the unit, the blocks in
    which it was decided and so the set of assignments that were possible.

    ``primary`` is the mechanism the randomization inference of the primary comparison uses;
    ``alternatives`` are reported beside it, to show how the p-value depends on the assumed
    mechanism. ``evidence_*`` is the study's own rating of its design (e.g. the Maryland
    Scientific Methods Scale level and its reason), shown in the report.
    """

    unit: str = "area"
    primary: AssignmentSpecConfig = field(default_factory=AssignmentSpecConfig)
    alternatives: list[AssignmentSpecConfig] = field(default_factory=list)
    evidence_scale: str = ""
    evidence_level: int | None = None
    evidence_reason: str = ""

    def __post_init__(self) -> None:
        names = [self.primary.name, *(a.name for a in self.alternatives)]
        if len(set(names)) != len(names):
            raise ConfigError("config: assignment mechanism names must be unique")
        cols = ("area", "county", "phase")
        for spec in (self.primary, *self.alternatives):
            if spec.block is not None and spec.block not in cols:
                raise ConfigError(f"config: assignment {spec.name!r}: block must be a rollout "
                                  "column (area, county, phase) or null")
        if self.unit not in cols:
            raise ConfigError("config: assignment.unit must be a rollout column")

    def specs(self) -> list:
        """The :class:`natexp.causal.assignment.AssignmentSpec` of each mechanism, primary
        first."""
        from natexp.causal.assignment import AssignmentSpec

        return [AssignmentSpec(name=s.name, unit=self.unit, block=s.block,
                               merge=tuple(tuple(g) for g in s.merge),
                               description=s.description)
                for s in (self.primary, *self.alternatives)]


@dataclass
class DataConfig:
    """Input files. Both null: the embedded synthetic dataset."""

    families: str | None = None
    children: str | None = None
    as_of: str | None = None

    def __post_init__(self) -> None:
        if (self.families is None) != (self.children is None):
            raise ConfigError("config: give both data.families and data.children, or neither")
        _date(self.as_of, "data.as_of", required=False)


@dataclass
class SyntheticConfig:
    """Settings of the embedded synthetic dataset (used when no data files are given)."""

    seed: int = 20250101
    n_families: int | None = None
    uptake_effect: float = 0.10
    followup: bool = True


@dataclass
class AnalysisConfig:
    """Settings shared by the analyses."""

    confidence_level: float = 0.95

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence_level < 1:
            raise ConfigError("config: analysis.confidence_level must be in [0.5, 1)")


@dataclass
class SensitivityConfig:
    """Sensitivity analyses of the primary comparison (non-response, E-values, go-live
    randomization, placebo go-live, leave-one-area-out) and the DoWhy model."""

    enabled: bool = True
    placebo_months: list[int] = field(default_factory=lambda: [3, 6, 9, 12])
    dowhy: bool = True
    dowhy_simulations: int = 100
    dowhy_permutations: int = 9999
    seed: int = 20250101
    spec_curve: bool = True
    # Specification-curve choices; null: derived from the run's design
    # (natexp.speccurve.specification_choices); a list replaces the derived one.
    spec_designs: list[str] | None = None
    spec_window_starts: list[str] | None = None
    spec_window_ends: list[str] | None = None
    spec_followup_dates: list[str] | None = None
    spec_custody: list[bool] | None = None

    def __post_init__(self) -> None:
        for key in ("spec_window_starts", "spec_window_ends", "spec_followup_dates"):
            for value in getattr(self, key) or ():
                _date(value, f"sensitivity.{key}")
        for key in ("spec_designs", "spec_window_starts", "spec_window_ends",
                    "spec_followup_dates", "spec_custody"):
            if getattr(self, key) is not None and not len(getattr(self, key)):
                raise ConfigError(f"config: sensitivity.{key} is empty (null: derived from the "
                                  "design)")
        if any(not 1 <= m <= 60 for m in self.placebo_months):
            raise ConfigError("config: sensitivity.placebo_months must be in 1..60")
        if self.dowhy_simulations < 1 or self.dowhy_permutations < 1:
            raise ConfigError("config: sensitivity.dowhy_simulations and dowhy_permutations "
                              "must be positive")


@dataclass
class ReportConfig:
    """Figures and the HTML/Markdown report written with every run."""

    enabled: bool = True


@dataclass
class PanelConfig:
    """Staggered-rollout panel analysis (area x period, before and after each go-live)."""

    enabled: bool = False
    period: str = "quarter"
    start: str = "2021-10-01"
    end: str = "2025-06-30"
    outcome: str = "rate"
    control_group: str = "notyettreated"
    n_boot: int = 9999
    n_permutations: int = 999
    seed: int = 20250101
    # few-cluster inference (issue 18)
    small_sample: str = "fixest"  # CR1 convention of the TWFE standard error: fixest | areg
    min_cohort_size: int = 5  # cohort-size guard (R did's minimum)
    small_cohorts: str = "exclude"  # exclude | include cohorts below min_cohort_size
    pretrend_leads: int = 6  # event-study leads the pre-trend check tests (0: all)
    # assignment space of the panel randomization inference: go-live dates are permuted only
    # within blocks of this rollout column (phase | county), or across all areas (none)
    assignment_blocks: str = "none"

    def __post_init__(self) -> None:
        if self.small_sample not in ("fixest", "areg"):
            raise ConfigError("config: panel.small_sample must be 'fixest' or 'areg'")
        if self.small_cohorts not in ("exclude", "include"):
            raise ConfigError("config: panel.small_cohorts must be 'exclude' or 'include'")
        if self.assignment_blocks not in ("phase", "county", "none"):
            raise ConfigError("config: panel.assignment_blocks must be 'phase', 'county' or "
                              "'none'")
        if self.min_cohort_size < 1:
            raise ConfigError("config: panel.min_cohort_size must be at least 1")
        if self.pretrend_leads < 0:
            raise ConfigError("config: panel.pretrend_leads must be 0 (all) or more")
        if self.n_boot < 1 or self.n_permutations < 1:
            raise ConfigError("config: panel.n_boot and panel.n_permutations must be positive")
        if self.period not in ("quarter", "month"):
            raise ConfigError("config: panel.period must be 'quarter' or 'month'")
        if self.control_group not in ("nevertreated", "notyettreated"):
            raise ConfigError("config: panel.control_group must be 'nevertreated' or 'notyettreated'")
        if self.outcome not in ("rate", "uptake", "families"):
            raise ConfigError("config: panel.outcome must be 'rate', 'uptake' or 'families'")
        start = _date(self.start, "panel.start")
        end = _date(self.end, "panel.end")
        if end < start:
            raise ConfigError("config: panel.end is before panel.start")


@dataclass
class PowerSimConfig:
    """Simulation-based power of the design for a planned rollout (``python -m natexp power``;
    see :func:`natexp.causal.power_sim.simulate_power`)."""

    families_per_area_month: float = 1.0
    baseline: float = 0.15
    effect: float = 0.10
    icc: float = 0.0
    n_simulations: int = 1000
    analyses: list[str] = field(default_factory=lambda: ["family_fisher", "area_t"])
    arrivals: str = "poisson"
    # Also search the minimum detectable effect of each analysis at this power (0: no search).
    target_power: float = 0.8
    seed: int = 20250101

    def __post_init__(self) -> None:
        from natexp.causal.power_sim import ANALYSES

        if not self.families_per_area_month >= 0:
            raise ConfigError("config: power_sim.families_per_area_month must be >= 0")
        if not 0 < self.baseline < 1:
            raise ConfigError("config: power_sim.baseline must be in (0, 1)")
        if not -1 <= self.effect <= 1:
            raise ConfigError("config: power_sim.effect must be in [-1, 1]")
        if not 0 <= self.icc < 1:
            raise ConfigError("config: power_sim.icc must be in [0, 1)")
        if self.n_simulations < 1:
            raise ConfigError("config: power_sim.n_simulations must be positive")
        bad = [a for a in self.analyses if a not in ANALYSES]
        if bad or not self.analyses:
            raise ConfigError(f"config: power_sim.analyses must be taken from {list(ANALYSES)}")
        if self.arrivals not in ("poisson", "expected"):
            raise ConfigError("config: power_sim.arrivals must be 'poisson' or 'expected'")
        if not 0 <= self.target_power < 1:
            raise ConfigError("config: power_sim.target_power must be in [0, 1)")


@dataclass
class NatexpConfig:
    """The whole run configuration."""

    experiment: str = "default"
    description: str = ""
    output_dir: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    design: DesignConfig = field(default_factory=DesignConfig)
    assignment: AssignmentConfig = field(default_factory=AssignmentConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    panel: PanelConfig = field(default_factory=PanelConfig)
    sensitivity: SensitivityConfig = field(default_factory=SensitivityConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    power_sim: PowerSimConfig = field(default_factory=PowerSimConfig)
    #: The study description (``conf/study/*.yaml``), checked by :class:`natexp.study.Study`.
    study: Any = field(default_factory=dict)

    def __post_init__(self) -> None:
        from natexp.outputs import declared_tables

        declared_tables(self.get_study())  # a study table may not take a natexp output's name

    def get_study(self):
        """The :class:`natexp.study.Study` this config describes (parsed and checked)."""
        from natexp.study import Study

        return Study.from_dict(self.study)


_REGISTERED = False


def register() -> None:
    """Register the schema with Hydra's ConfigStore (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="natexp_schema", node=NatexpConfig)
    _REGISTERED = True


def to_settings(cfg: Any) -> NatexpConfig:
    """Turn a composed config (DictConfig or dict) into validated dataclasses.

    Parameters
    ----------
    cfg : omegaconf.DictConfig, dict or NatexpConfig

    Returns
    -------
    NatexpConfig

    Raises
    ------
    ConfigError
        On an invalid value; unknown keys are rejected by the schema.

    Notes
    -----
    The settings of the 64 most recent configs are kept in memory, keyed by the config's JSON
    text; a repeated config returns a deep copy of them (the same values, no shared object).

    Examples
    --------
    >>> s = to_settings(compose(["+experiment=oxon_vs_rest"]))
    >>> s.design.name, len(s.rollout.areas)
    ('oxon_vs_rest', 13)
    """
    import copy

    from omegaconf import OmegaConf

    if isinstance(cfg, NatexpConfig):
        return cfg
    plain = _plain(cfg)
    key = _settings_key(plain)
    if key is not None and key in _SETTINGS:
        return copy.deepcopy(_SETTINGS[key])
    base = OmegaConf.structured(NatexpConfig)
    try:
        merged = OmegaConf.merge(base, OmegaConf.create(plain))
        obj = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as exc:  # omegaconf's errors: report without internals
        raise ConfigError(f"config: {_first_line(exc)}") from None
    assert isinstance(obj, NatexpConfig)
    if key is not None:
        if len(_SETTINGS) >= _SETTINGS_MAX:
            del _SETTINGS[next(iter(_SETTINGS))]
        _SETTINGS[key] = copy.deepcopy(obj)
    return obj


#: Validated settings by the JSON text of the plain config they came from (the most recent
#: :data:`_SETTINGS_MAX`). omegaconf's schema check takes ~0.08 s a call and a run, a bundle
#: and the tests convert the same config again and again; a hit is a deep copy (~4 ms), so no
#: caller shares an object with another.
_SETTINGS: dict[str, NatexpConfig] = {}
_SETTINGS_MAX = 64


def _settings_key(plain: Any) -> str | None:
    """The cache key of a plain config: its JSON text, key order kept (a study's tables are
    ordered); ``True``, ``1`` and ``1.0`` stay distinct. None when it is not JSON (no cache)."""
    import json

    try:
        return json.dumps(plain)
    except (TypeError, ValueError):
        return None


def _plain(cfg: Any) -> Any:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
        cfg.pop("hydra", None)
    return cfg


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def compose(overrides: Sequence[str] = ()) -> Any:
    """Compose the run config exactly as the CLI does, with Hydra's compose API.

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides, e.g. ``["+experiment=oxon_vs_rest", "design.window_end=2024-03-31"]``.

    Returns
    -------
    omegaconf.DictConfig

    Examples
    --------
    >>> cfg = compose(["+experiment=oxon_vs_rest", "design.window_start=2023-01-01"])
    >>> cfg.design.window_start
    '2023-01-01'
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register()
    message = unknown_key_message(overrides)
    if message is not None:
        raise ConfigError(message)
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


#: Config groups chosen by name (``design=staggered``, ``+experiment=NAME``), not schema keys.
_GROUPS = ("experiment", "design", "rollout", "assignment", "study")


def unknown_key_message(overrides: Sequence[str]) -> str | None:
    """Check the keys of command-line overrides against the schema, with a suggestion.

    Hydra's own message for a misspelt key advises appending it with ``+key``, which the
    schema then rejects; this names the nearest key of the schema instead.

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides (``key=value``, ``+key=value``, ``~key``); ``hydra.*`` keys, sweeps
        and group choices are left to Hydra.

    Returns
    -------
    str or None
        The error message for the first unknown key, or None when every key is known.

    Examples
    --------
    >>> unknown_key_message(["design.window_ed=2024-01-01"])
    "config: unknown key 'design.window_ed' (did you mean 'design.window_end'?)"
    >>> unknown_key_message(["+experiment=oxon_vs_rest", "design=staggered", "hydra.verbose=true",
    ...                      "design.window_end=2024-01-01"]) is None
    True
    """
    import dataclasses
    import difflib
    import types
    import typing

    for raw in overrides:
        text = raw.lstrip("+~")
        key = text.split("=", 1)[0].strip()
        if not key or key.startswith("hydra") or "@" in key or "/" in key:
            continue
        if key in _GROUPS:
            continue
        node: Any = NatexpConfig
        path: list[str] = []
        for part in key.split("."):
            if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
                break  # a mapping, list or Any-typed node (e.g. study): not checked here
            names = [f.name for f in dataclasses.fields(node)]
            if part not in names:
                near = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
                prefix = ".".join(path)
                where = f"{prefix}." if prefix else ""
                hint = (f" (did you mean {where + near[0]!r}?)" if near
                        else f" (keys here: {', '.join(names)})")
                return f"config: unknown key {key!r}{hint}"
            path.append(part)
            hints = typing.get_type_hints(node)
            node = hints.get(part)
            origin = typing.get_origin(node)
            if origin is not None:  # Optional[X], list[X], dict[...]: only X | None descends
                args = [a for a in typing.get_args(node) if a is not type(None)]
                union = origin in (typing.Union, types.UnionType)
                node = args[0] if union and len(args) == 1 else None
    return None
