"""SYNTHETIC data in natexp's input contract, for any study and rollout schedule.

A run with no data paths runs on synthetic data, so a study can be tried end to end before any
record exists. Where the synthetic data come from is part of the study description
(``synthetic.hook`` of ``conf/study/<name>.yaml``, see :class:`natexp.study.SyntheticSpec`):

* a study may ship its own generator, ``"FILE.py:FUNCTION"`` in its folder
  ``experiments/<study name>/``, loaded by :func:`load_hook` (the example study's hook is fitted
  so that the data's margins equal its published tables);
* otherwise :func:`generate_for`, natexp's generic generator, draws plausible families for the
  rollout's own areas and go-live dates and the study's own columns.

:func:`generate` picks between them; with no arguments it returns the data of the default study
(the one ``conf/config.yaml`` selects) on the default rollout. Every record is synthetic: every
output of a run on these data says so (results.json, report, bundle).

Examples
--------
>>> from natexp.data.rollout import rollout_frame
>>> from natexp.study import Study
>>> rollout = rollout_frame([
...     {"name": "North", "county": "Upshire", "go_live": "2022-03-01"},
...     {"name": "South", "county": "Downshire", "go_live": None}])
>>> study = Study.from_dict({"name": "demo", "outcome": {"column": "took_up"}})
>>> fam, chi = generate_for(rollout=rollout, study=study, n_families=200, seed=1)
>>> fam.height, fam.columns[:5]
(200, ['family_id', 'area', 'reception_date', 'release_date', 'parent_sex'])
>>> fam["took_up"].dtype, chi.columns
(Boolean, ['child_id', 'family_id', 'age'])
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from natexp.causal.result import InvalidInputError

__all__ = [
    "BASE_UPTAKE",
    "DEFAULT_N_FAMILIES",
    "default_design",
    "default_rollout",
    "default_study",
    "generate",
    "generate_for",
    "load_hook",
    "statement",
    "write",
]

#: Probability of the outcome where the programme was not live at reception (generic generator).
BASE_UPTAKE = 0.15
#: Families drawn by the generic generator when ``n_families`` is None.
DEFAULT_N_FAMILIES = 1000
#: Days of the reception-date span before the first and after the last go-live.
SPAN_MARGIN_DAYS = 365

# Assumptions of the generic generator (documented in docs/synthetic.md).
_P_CALLED_REACHED = 0.45  # reached by the follow-up among those on the call list
_P_STAGE = 0.6  # each follow-up stage among those who passed the one before
_P_FEMALE_PARENT = 0.08  # imprisoned parent is the mother
_P_CHILD_NULL = 0.1  # a nullable children column is missing
_SIZE_WEIGHTS = (40, 31, 16, 9, 4)  # children per family, 1..5
_STAY_MEDIAN_DAYS = 300  # time in custody: lognormal, median 300 days
_CORE_FAMILIES = ("family_id", "area", "reception_date", "release_date", "parent_sex")
_CORE_CHILDREN = ("child_id", "family_id", "age")
_EPOCH = dt.date(1970, 1, 1)
_EXCEL_MAX_ROWS = 1_048_575


# --------------------------------------------------------------------------- defaults
@functools.lru_cache(maxsize=1)
def _default_choices() -> dict[str, str]:
    """The config groups ``conf/config.yaml`` selects (``study``, ``rollout``, ...)."""
    import yaml

    from natexp.paths import CONF_DIR

    with open(CONF_DIR / "config.yaml", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    out: dict[str, str] = {}
    for entry in doc.get("defaults") or ():
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                if isinstance(key, str) and " " not in key and isinstance(value, str):
                    out[key] = value
    return out


def _default_file(group: str) -> Path:
    from natexp.config import ConfigError
    from natexp.paths import CONF_DIR

    name = _default_choices().get(group)
    if name is None:
        raise ConfigError(f"config: conf/config.yaml selects no {group} (defaults: {group}: NAME)")
    return CONF_DIR / group / f"{name}.yaml"


@functools.lru_cache(maxsize=1)
def default_study() -> Any:
    """The :class:`natexp.study.Study` that ``conf/config.yaml`` selects (``study: NAME``).

    Examples
    --------
    >>> default_study().synthetic.hook is None or ":" in default_study().synthetic.hook
    True
    """
    import yaml

    from natexp.study import Study

    with open(_default_file("study"), encoding="utf-8") as fh:
        return Study.from_dict(yaml.safe_load(fh))


def default_design() -> Any:
    """The :class:`natexp.data.cohort.Design` that ``conf/config.yaml`` selects (``design:
    NAME``), read without Hydra as :func:`default_study` is.

    Examples
    --------
    >>> d = default_design()
    >>> type(d).__name__, d.kind, len(d.treatment_counties) > 0
    ('Design', 'treated_counties', True)
    """
    import yaml

    from natexp.config import DesignConfig

    with open(_default_file("design"), encoding="utf-8") as fh:
        return DesignConfig(**(yaml.safe_load(fh) or {})).to_design()


def default_rollout() -> pl.DataFrame:
    """The rollout schedule that ``conf/config.yaml`` selects (``rollout: NAME``).

    Examples
    --------
    >>> default_rollout().columns
    ['area', 'county', 'go_live', 'phase']
    """
    from natexp.data.rollout import load_rollout

    return load_rollout(_default_file("rollout"))


def _as_study(study: Any) -> Any:
    from natexp.study import Study

    if study is None:
        return default_study()
    if isinstance(study, Study):
        return study
    if isinstance(study, Mapping):
        return Study.from_dict(study)
    raise InvalidInputError("study must be a natexp.study.Study or a study mapping")


def statement(study: Any) -> str:
    """What every output says about synthetic data of ``study``.

    The study's own words (``synthetic.statement``) describe its hook's data, so they are used
    only while the hook is; otherwise natexp names the generator that drew the data.

    Examples
    --------
    >>> from natexp.study import Study
    >>> statement(Study.from_dict({"name": "demo"}))[:60]
    'SYNTHETIC DATA: these results come from synthetic data drawn'
    """
    study = _as_study(study)
    if study.synthetic.hook and study.synthetic.statement:
        return study.synthetic.statement
    if study.synthetic.hook:
        source = f"the study's own synthetic-data generator ({study.synthetic.hook})"
    else:
        source = "natexp's generic generator for this study's rollout and columns"
    return (f"SYNTHETIC DATA: these results come from synthetic data drawn by {source}, from "
            "a seed. They are not real records and say nothing about real families.")


# --------------------------------------------------------------------------- hooks
def _hook_error(study: Any, msg: str) -> Exception:
    from natexp.config import ConfigError

    return ConfigError(f"study {study.name!r}: synthetic.hook {study.synthetic.hook!r}: {msg}")


@functools.lru_cache(maxsize=16)
def _load_module(path: str, mtime_ns: int) -> Any:
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    name = f"_natexp_study_hook_{digest}_{mtime_ns}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_hook(study: Any, *, study_dir: str | os.PathLike[str] | None = None
              ) -> Callable[..., tuple[pl.DataFrame, pl.DataFrame]] | None:
    """The study's synthetic-data hook, or None when it declares none.

    ``study.synthetic.hook`` is ``"FILE.py:FUNCTION"``: ``FILE`` relative to the study's folder
    (``experiments/<study name>/`` of natexp's configs, found through :mod:`natexp.paths`, also
    in an installed natexp) or absolute. The file is imported from its path (the library never
    imports a study by name); ``FUNCTION`` is called with the keywords ``rollout``, ``study``,
    ``seed``, ``n_families``, ``uptake_effect``, ``followup``, ``as_of`` and ``design`` and
    returns ``(families, children)`` polars frames (docs/synthetic.md).

    Parameters
    ----------
    study : natexp.study.Study
    study_dir : path-like, optional
        The study's folder (default ``EXPERIMENTS_DIR / study.name``).

    Raises
    ------
    natexp.config.ConfigError
        The hook is not ``FILE.py:FUNCTION``, the file is missing or fails to import, or it
        has no such function.

    Examples
    --------
    >>> from natexp.study import Study
    >>> load_hook(Study.from_dict({"name": "demo"})) is None
    True
    >>> load_hook(Study.from_dict({"name": "demo", "synthetic": {"hook": "gen.py:make"}}))
    Traceback (most recent call last):
    ...
    natexp.config.ConfigError: study 'demo': synthetic.hook 'gen.py:make': file gen.py not found in experiments/demo/
    """
    from natexp.paths import EXPERIMENTS_DIR

    spec = study.synthetic.hook
    if not spec:
        return None
    file, sep, func = str(spec).rpartition(":")
    if not sep or not file.endswith(".py") or not func.isidentifier():
        raise _hook_error(study, 'must be "FILE.py:FUNCTION" (a file in the study folder)')
    folder = Path(study_dir) if study_dir is not None else EXPERIMENTS_DIR / study.name
    where = (f"{folder}" if study_dir is not None else f"experiments/{study.name}/")
    path = Path(file) if Path(file).is_absolute() else folder / file
    if not path.is_file():
        raise _hook_error(study, f"file {file} not found in {where}")
    try:
        module = _load_module(str(path.resolve()), path.stat().st_mtime_ns)
    except Exception as exc:
        raise _hook_error(study, f"{file} could not be imported ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
                          ) from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise _hook_error(study, f"{file} defines no function {func!r}")
    return fn


# --------------------------------------------------------------------------- entry point
def generate(
    *,
    seed: int = 20250101,
    n_families: int | None = None,
    rollout: pl.DataFrame | None = None,
    uptake_effect: float = 0.10,
    as_of: dt.date | None = None,
    followup: bool = True,
    study: Any = None,
    design: Any = None,
    study_dir: str | os.PathLike[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return SYNTHETIC ``(families, children)`` frames for a study and a rollout.

    The study's own hook makes them when it declares one (:func:`load_hook`), natexp's generic
    generator otherwise (:func:`generate_for`). With no arguments: the default study (the one
    ``conf/config.yaml`` selects) on the default rollout, with the default seed; for the
    example study these are the frames whose margins equal its published tables.

    Parameters
    ----------
    seed : int
        Seed of the generator; the same seed and arguments give identical frames.
    n_families : int or None
        Number of families (None: the hook's or the generic default).
    rollout : polars.DataFrame, optional
        Rollout schedule (``area``, ``county``, ``go_live``); default :func:`default_rollout`.
    uptake_effect : float
        True effect of the area being live at reception on the probability of the outcome.
    as_of : datetime.date, optional
        Extract date: every date is on or before it (None: the generator's default).
    followup : bool
        True: families are called at follow-up (the ``reached`` column and the answers of the
        reached); False: no call list, every follow-up column is null.
    study : natexp.study.Study or mapping, optional
        The study whose columns to draw (default :func:`default_study`).
    design : natexp.data.cohort.Design, optional
        The design; the generic generator covers its window and calls the families of its
        cohort.
    study_dir : path-like, optional
        The study's folder holding its hook file (default ``experiments/<study name>/``).

    Returns
    -------
    families, children : polars.DataFrame

    Raises
    ------
    InvalidInputError
        On a bad argument or a rollout the generator cannot use.
    natexp.config.ConfigError
        On a hook that cannot be loaded or returns something else than two frames.

    Examples
    --------
    >>> fam, chi = generate()
    >>> fam.height, chi.height
    (330, 639)
    """
    study = _as_study(study)
    if rollout is None:
        rollout = default_rollout()
    kw = {"rollout": rollout, "study": study, "seed": seed, "n_families": n_families,
          "uptake_effect": uptake_effect, "followup": followup, "as_of": as_of,
          "design": design}
    hook = load_hook(study, study_dir=study_dir)
    if hook is None:
        return generate_for(**kw)
    out = hook(**kw)
    if not (isinstance(out, tuple) and len(out) == 2
            and all(isinstance(x, pl.DataFrame) for x in out)):
        raise _hook_error(study, "must return a (families, children) pair of polars DataFrames")
    return out


# --------------------------------------------------------------------------- generic generator
def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


def _rollout_frame(rollout: Any) -> pl.DataFrame:
    return default_rollout() if rollout is None else checked_rollout(rollout)


def checked_rollout(rollout: Any) -> pl.DataFrame:
    """A rollout schedule a generator can use: a polars frame listing each area once with its
    ``county`` and ``go_live`` (a Date); also for study hooks (e.g. the example study's).

    Raises
    ------
    InvalidInputError
        When it is not a frame, lacks a column or lists an area twice (or none).
    """
    if isinstance(rollout, pl.LazyFrame):
        rollout = rollout.collect()
    if not isinstance(rollout, pl.DataFrame):
        raise InvalidInputError("rollout must be a polars DataFrame (see natexp.data.rollout)")
    missing = {"area", "county", "go_live"} - set(rollout.columns)
    if missing:
        raise InvalidInputError(f"rollout lacks the column(s) {sorted(missing)}")
    if rollout.height == 0 or rollout["area"].n_unique() != rollout.height:
        raise InvalidInputError("rollout must list each area exactly once")
    return rollout.with_columns(pl.col("go_live").cast(pl.Date))


def _check(seed: Any, n_families: Any, uptake_effect: Any, followup: Any, as_of: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    if n_families is None:
        n = DEFAULT_N_FAMILIES
    elif (isinstance(n_families, bool) or not isinstance(n_families, int | np.integer)
          or n_families < 1):
        raise InvalidInputError(f"n_families must be a positive integer or None, got "
                                f"{n_families!r}")
    else:
        n = int(n_families)
    try:
        eff = float(uptake_effect)
    except (TypeError, ValueError):
        raise InvalidInputError(f"uptake_effect must be a number, got {uptake_effect!r}") from None
    if not -BASE_UPTAKE <= eff <= 1 - BASE_UPTAKE:
        raise InvalidInputError(
            f"uptake_effect must keep {BASE_UPTAKE} + uptake_effect in [0, 1], got {eff}")
    if not isinstance(followup, bool):
        raise InvalidInputError(f"followup must be True or False, got {followup!r}")
    if as_of is not None and (isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date)):
        raise InvalidInputError(f"as_of must be a datetime.date or None, got {as_of!r}")
    return n


def _spec(name: str, kind: str, *, nullable: bool, values: tuple = ()) -> Any:
    from natexp.study import ColumnSpec

    return ColumnSpec(name=name, kind=kind, nullable=nullable, values=tuple(values))


def _kind_of(values: tuple) -> tuple[str, tuple]:
    """``bool`` when every value is a boolean, else ``category`` of the values as text."""
    if values and all(isinstance(v, bool) for v in values):
        return "bool", ()
    return "category", tuple(dict.fromkeys(str(v) for v in values))


def _plan(study: Any) -> tuple[list[Any], list[Any], list[list[str]]]:
    """The columns to draw beyond the core ones: (families, children, stage chains).

    Declared columns first, in their order; then columns the study's follow-up stages,
    secondary and descriptive tables name without declaring them (their kind inferred).
    """
    out = study.outcome
    special = {*_CORE_FAMILIES, out.column, out.reached}
    if out.route is not None:
        special.add(out.route.column)
    fam = [c for c in study.columns["families"] if c.name not in special]
    chi = [c for c in study.columns["children"] if c.name not in _CORE_CHILDREN]
    have_f = {c.name for c in fam} | special
    have_c = {c.name for c in chi} | set(_CORE_CHILDREN)

    def add(spec: Any) -> None:
        if spec.name not in have_f:
            fam.append(spec)
            have_f.add(spec.name)

    chains: list[list[str]] = []
    stages = [s.column for s in study.followup_stages]
    for s in stages:
        add(_spec(s, "bool", nullable=True))
    if stages:
        chains.append(stages)
    for sec in study.secondary:
        if sec.kind == "category" and sec.column:
            add(_spec(sec.column, "category", nullable=True, values=tuple(sec.labels) or ("yes",)))
        elif sec.kind == "flags":
            for col in sec.columns.values():
                add(_spec(col, "bool", nullable=True))
        elif sec.kind == "consent":
            pair = [sec.columns["consent"], sec.columns["completed"]]
            for col in pair:
                add(_spec(col, "bool", nullable=True))
            chains.append(pair)
        elif sec.kind == "crossed":
            for axis, col in (("row", sec.columns["row"]), ("col", sec.columns["col"])):
                i = 0 if axis == "row" else 1
                kind, values = _kind_of(tuple(cell[i] for cell in sec.cells.values()))
                add(_spec(col, kind, nullable=True, values=values))
            for col in sec.items:
                add(_spec(col, "bool", nullable=True))
    desc = study.descriptive
    if desc is not None:
        if desc.by not in have_f:
            add(_spec(desc.by, "category", nullable=False, values=tuple(desc.groups)))
        for q in desc.questions:
            if q.column not in have_c:
                kind, values = _kind_of(q.yes_values)
                values = (*values, "other") if kind == "category" else ()
                chi.append(_spec(q.column, kind, nullable=False, values=values))
                have_c.add(q.column)
    return fam, chi, chains


def _draw(rng: np.random.Generator, spec: Any, n: int, rec: np.ndarray, end: int
          ) -> pl.Series:
    """``n`` values of one declared column by its kind (no nulls yet)."""
    if spec.kind == "bool":
        return pl.Series(spec.name, rng.random(n) < rng.uniform(0.2, 0.8))
    if spec.kind in ("category", "string"):
        values = spec.values or tuple(f"{spec.name[:1].upper()}{k}" for k in range(1, 4))
        weights = rng.dirichlet(np.full(len(values), 2.0))
        codes = rng.choice(len(values), size=n, p=weights)
        return pl.Series(spec.name, values, dtype=pl.String).gather(codes)
    if spec.kind == "int":
        lo = 0 if spec.lower is None else int(spec.lower)
        hi = lo + 10 if spec.upper is None else int(spec.upper)
        return pl.Series(spec.name, rng.integers(lo, hi + 1, size=n), dtype=pl.Int64)
    # date: within a year after the reception date, never after the extract's end
    days = np.minimum(rec.astype(np.int64) + rng.integers(0, 366, size=n), end)
    return pl.Series(spec.name, days.astype(np.int32)).cast(pl.Date)


def _ids(prefix: str, n: int, width: int) -> pl.Series:
    """``prefix`` + 1..n zero-padded to ``width`` digits."""
    number = (pl.int_range(1, n + 1, eager=True) + 10**width).cast(pl.String)
    return (prefix + number.str.slice(1)).alias("id")


def _nulled(series: pl.Series, keep: np.ndarray) -> pl.Series:
    drop = np.flatnonzero(~keep)
    return series.scatter(drop, None) if len(drop) else series


def generate_for(
    *,
    rollout: pl.DataFrame | None = None,
    study: Any = None,
    seed: int = 20250101,
    n_families: int | None = None,
    uptake_effect: float = 0.10,
    followup: bool = True,
    as_of: dt.date | None = None,
    design: Any = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """natexp's generic SYNTHETIC generator: plausible families for any rollout and study.

    Families are spread evenly over the rollout's areas and over reception dates from
    a year before the first go-live to a year after the last (widened to cover the design's
    window; cut at ``as_of``). Their outcome (``study.outcome.column``) is True with probability
    :data:`BASE_UPTAKE`, plus ``uptake_effect`` where the area was live at reception, so the
    true effect of going live is ``uptake_effect``. With ``followup``, the families on the call
    list (the design's cohort: reception in its window, in custody at its follow-up date; every
    family without a design) are reached with probability 0.45, the others' ``reached`` flag is
    null; the study's nullable family columns are answered by reached families only, each
    follow-up stage only by those who passed the one before. Every other declared column is
    drawn by its kind (bool; category from its values; int within its bounds; date). Each
    family has 1 to 5 children aged 0-17 with the study's children columns. Vectorised,
    deterministic by ``seed``; every record is synthetic.

    Parameters
    ----------
    rollout : polars.DataFrame, optional
        Any schedule (``area``, ``county``, ``go_live``; a null go-live: never live). Default
        :func:`default_rollout`.
    study : natexp.study.Study or mapping, optional
        Whose columns to draw (default :func:`default_study`).
    seed, n_families, uptake_effect, followup, as_of, design
        As in :func:`generate` (``n_families`` None: :data:`DEFAULT_N_FAMILIES`).

    Returns
    -------
    families, children : polars.DataFrame

    Raises
    ------
    InvalidInputError
        On a bad argument, a rollout with no go-live date and no design window, or an
        ``as_of`` before the span begins.
    """
    n = _check(seed, n_families, uptake_effect, followup, as_of)
    study = _as_study(study)
    rollout = _rollout_frame(rollout)
    rng = np.random.default_rng(int(seed))
    out = study.outcome

    go = [None if g is None else _day(g) for g in rollout["go_live"].to_list()]
    known = [g for g in go if g is not None]
    bounds_lo = [min(known) - SPAN_MARGIN_DAYS] if known else []
    bounds_hi = [max(known) + SPAN_MARGIN_DAYS] if known else []
    ws = getattr(design, "window_start", None)
    we = getattr(design, "window_end", None)
    if ws is not None and we is not None:
        bounds_lo.append(_day(ws))
        bounds_hi.append(_day(we))
    if not bounds_lo:
        raise InvalidInputError("the rollout has no go-live date and no design window was "
                                "given: there is no span of reception dates to draw")
    lo, hi = min(bounds_lo), max(bounds_hi)
    if as_of is not None:
        hi = min(hi, _day(as_of))
        if hi < lo:
            raise InvalidInputError(f"as_of {as_of} is before the first reception date "
                                    f"{_EPOCH + dt.timedelta(days=lo)}")

    # ---- areas, reception and release dates -------------------------------------------------
    area = rng.integers(0, rollout.height, size=n)
    rec = rng.integers(lo, hi + 1, size=n).astype(np.int64)
    stay = np.maximum(7, np.ceil(rng.lognormal(np.log(_STAY_MEDIAN_DAYS), 0.9, size=n)))
    rel = rec + stay.astype(np.int64)
    released = rel <= hi
    far = np.iinfo(np.int64).max
    live_day = np.array([far if g is None else g for g in go], dtype=np.int64)
    live = live_day[area] <= rec

    # ---- follow-up: who was on the call list and who was reached ----------------------------
    if followup:
        called = np.ones(n, dtype=bool)
        if ws is not None and we is not None:
            called &= (rec >= _day(ws)) & (rec <= _day(we))
            fu = getattr(design, "followup_date", None)
            if fu is not None and getattr(design, "custody_at_followup", True):
                called &= ~released | (rel > _day(fu))
        reached = called & (rng.random(n) < _P_CALLED_REACHED)
    else:
        called = np.zeros(n, dtype=bool)
        reached = np.zeros(n, dtype=bool)

    # ---- outcome (and how it was reached) ---------------------------------------------------
    outcome = rng.random(n) < BASE_UPTAKE + float(uptake_effect) * live
    families: dict[str, pl.Series] = {}
    width = max(6, len(str(n)))
    families["family_id"] = _ids("F", n, width).alias("family_id")
    families["area"] = pl.Series("area", rollout["area"].to_list(), dtype=pl.String).gather(area)
    families["reception_date"] = pl.Series("reception_date", rec.astype(np.int32)).cast(pl.Date)
    families["release_date"] = _nulled(
        pl.Series("release_date", rel.astype(np.int32)).cast(pl.Date), released)
    families["parent_sex"] = pl.Series(
        "parent_sex", np.where(rng.random(n) < _P_FEMALE_PARENT, "F", "M"), dtype=pl.String)
    families[out.reached] = _nulled(pl.Series(out.reached, reached), called)
    answered = reached if followup else np.zeros(n, dtype=bool)
    outcome_known = answered if (out.missing_when_unreached and followup) else np.ones(n, bool)
    families[out.column] = _nulled(pl.Series(out.column, outcome), outcome_known)
    if out.route is not None:
        declared = {c.name: c for c in study.columns["families"]}
        values = out.route.values or declared.get(out.route.column, _spec(
            out.route.column, "category", nullable=True, values=("other",))).values
        values = tuple(values) or ("other",)
        others = [i for i, v in enumerate(values) if v != out.route.programme] or [0]
        code = np.asarray(others)[rng.integers(0, len(others), size=n)]
        if out.route.programme in values:
            code = np.where(live, values.index(out.route.programme), code)
        families[out.route.column] = _nulled(
            pl.Series(out.route.column, values, dtype=pl.String).gather(code),
            outcome & outcome_known)

    # ---- the study's own family columns -----------------------------------------------------
    fam_specs, chi_specs, chains = _plan(study)
    for spec in fam_specs:
        values = _draw(rng, spec, n, rec, hi)
        families[spec.name] = _nulled(values, answered) if spec.nullable else values
    for chain in chains:  # a stage is True only where the one before is
        for before, after in zip(chain, chain[1:], strict=False):
            families[after] = families[after] & families[before].fill_null(False)
            families[after] = _nulled(families[after], answered)
    declared_order = [c.name for c in study.columns["families"]]
    order = list(_CORE_FAMILIES) + [c for c in declared_order if c in families]
    order += [c for c in families if c not in order]
    fam = pl.DataFrame([families[c] for c in order])

    # ---- children ---------------------------------------------------------------------------
    w = np.asarray(_SIZE_WEIGHTS, float)
    size = 1 + rng.choice(len(w), size=n, p=w / w.sum())
    n_kids = int(size.sum())
    cwidth = max(7, len(str(n_kids)))
    children: dict[str, pl.Series] = {
        "child_id": _ids("C", n_kids, cwidth).alias("child_id"),
        "family_id": families["family_id"].gather(np.repeat(np.arange(n), size)),
        "age": pl.Series("age", rng.integers(0, 18, size=n_kids), dtype=pl.Int64),
    }
    kid_rec = np.repeat(rec, size)
    for spec in chi_specs:
        values = _draw(rng, spec, n_kids, kid_rec, hi)
        if spec.nullable:
            values = _nulled(values, rng.random(n_kids) >= _P_CHILD_NULL)
        children[spec.name] = values
    return fam, pl.DataFrame(list(children.values()))


# --------------------------------------------------------------------------- files
def write(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 20250101,
    n_families: int | None = None,
    fmt: str = "parquet",
    **kw: Any,
) -> dict[str, Path]:
    """Generate synthetic data (:func:`generate`) and write ``families.<ext>``, ``children.<ext>``.

    Each file is written to a temporary file in ``out_dir`` and renamed into place only when
    complete, so a failure never leaves a half-written file behind.

    Parameters
    ----------
    out_dir : path-like
        Folder to write into (created if missing).
    seed, n_families : int, int or None
        As in :func:`generate`.
    fmt : {"parquet", "csv", "xlsx"}
        File format. Excel holds at most 1,048,575 data rows per sheet.
    **kw
        Passed to :func:`generate` (``rollout``, ``study``, ``design``, ``uptake_effect``,
        ``followup``, ``as_of``).

    Returns
    -------
    dict of str to Path
        ``{"families": ..., "children": ...}``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write(d, fmt="csv")
    ...     sorted(p.name for p in paths.values())
    ['children.csv', 'families.csv']
    """
    if fmt not in ("parquet", "csv", "xlsx"):
        raise InvalidInputError(f"fmt must be 'parquet', 'csv' or 'xlsx', got {fmt!r}")
    families, children = generate(seed=seed, n_families=n_families, **kw)
    if fmt == "xlsx" and max(families.height, children.height) > _EXCEL_MAX_ROWS:
        raise InvalidInputError(
            f"xlsx holds at most {_EXCEL_MAX_ROWS} rows per sheet; use parquet or csv"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = {"families": out / f"families.{fmt}", "children": out / f"children.{fmt}"}
    temps: dict[str, Path] = {}
    try:
        for name, frame in (("families", families), ("children", children)):
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=f".{fmt}.tmp")
            os.close(fd)
            temps[name] = Path(tmp)
            if fmt == "parquet":
                frame.write_parquet(tmp)
            elif fmt == "csv":
                frame.write_csv(tmp)
            else:
                frame.write_excel(tmp, worksheet=name)
        for name, tmp in temps.items():
            os.replace(tmp, targets[name])
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return targets
