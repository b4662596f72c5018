"""Cohort designs: assign every family to exactly one box (an exclusion or an arm), lazily.

Design kinds (any name may be given to a design)
-------------------------------------------------
``treated_counties``
    treatment = areas in the treatment counties (the design's ``treatment_counties``) live
    at the reception date; control = areas not live at the reception date; families in other
    areas that were live at the reception date are excluded by design.
``staggered``
    treatment = any area live at the reception date; control = areas not yet live.

Every family lands in exactly one box, checked in this order: outside the window, released
before the follow-up date (when custody at follow-up is required), area not in the selected
rollout phases, live outside the treatment counties (``treated_counties`` only), then its arm.
The flow table then counts, per arm, the follow-up: not called, not reached, reached, and the
study's follow-up stages (``Study.followup_stages``) among the reached.
"""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from natexp._dates import as_date
from natexp.data.rollout import live_at
from natexp.errors import NatexpError

#: What a design does (its ``kind``); any ``name`` may be chosen for it.
#: ``treated_counties``: areas of the treatment counties live at reception vs areas not yet live
#: (other live areas excluded); ``staggered``: any area live at reception vs areas not yet live.
DESIGN_KINDS = ("treated_counties", "staggered")
ARMS = ("treatment", "control")

#: Exclusion boxes in the order they are applied, with the label the flow table shows.
EXCLUSIONS: dict[str, str] = {
    "outside_window": "Reception date outside the study window",
    "released_before_followup": "Parent released on or before the follow-up date",
    "phase_not_selected": "Area not in the selected rollout phases",
    "live_outside_treatment_area": "Area live at reception but outside the treatment counties",
}


class DesignError(NatexpError, ValueError):
    """The cohort design is inconsistent (unknown name, window end before start, ...)."""


@dataclass(frozen=True, slots=True)
class Design:
    """A cohort design: which families are compared, and how they are assigned to arms.

    Parameters
    ----------
    name : str
        The study's name for the design (any name; the example study's is ``"oxon_vs_rest"``).
    kind : str
        What the design does: ``"treated_counties"`` or ``"staggered"`` (:data:`DESIGN_KINDS`).
    window_start, window_end : datetime.date or str
        Reception dates included (both ends inclusive). A date or an ISO string
        ``"YYYY-MM-DD"`` (turned into a date here; a datetime only at midnight).
    followup_date : datetime.date, str or None
        Date of the follow-up contact (a date or an ISO string).
    custody_at_followup : bool
        Keep only families whose parent was still in custody on the follow-up date
        (release date missing or after it).
    treatment_counties : tuple of str
        Counties whose live areas form the treatment arm of a ``treated_counties`` design
        (required for that kind: no default county).
    phases : tuple of int or None
        Keep only areas of these rollout phases (None: every area).

    Examples
    --------
    >>> d = Design(treatment_counties=("County A",), window_start=dt.date(2022, 7, 1),
    ...            window_end=dt.date(2024, 6, 30))
    >>> d.name, d.kind
    ('design', 'treated_counties')
    >>> Design(treatment_counties=("County A",), window_start="2022-07-01") == d
    True
    >>> Design(treatment_counties=("County A",), window_end="2024-06-31")
    Traceback (most recent call last):
    ...
    natexp.data.cohort.DesignError: design: window_end is not a calendar date: '2024-06-31'
    >>> Design()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    natexp.data.cohort.DesignError: design: a treated_counties design needs at least one ...
    """

    name: str = "design"
    kind: str = "treated_counties"
    window_start: dt.date = dt.date(2022, 7, 1)
    window_end: dt.date = dt.date(2024, 6, 30)
    followup_date: dt.date | None = dt.date(2024, 11, 1)
    custody_at_followup: bool = True
    treatment_counties: tuple[str, ...] = ()
    phases: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DesignError("design: name must be a non-empty string")
        if not isinstance(self.kind, str) or self.kind not in DESIGN_KINDS:
            raise DesignError(f"design: kind must be one of {DESIGN_KINDS}, got {self.kind!r}")
        # dates: ISO strings or dates, converted here so that a bad value fails now, named
        for key in ("window_start", "window_end", "followup_date"):
            value = as_date(getattr(self, key), key, error=DesignError, where="design",
                            optional=key == "followup_date")
            object.__setattr__(self, key, value)
        if not isinstance(self.custody_at_followup, bool):
            raise DesignError("design: custody_at_followup must be True or False, got a value "
                              f"of type {type(self.custody_at_followup).__name__}")
        counties = self.treatment_counties
        if isinstance(counties, str) or not isinstance(counties, Sequence) or not all(
                isinstance(c, str) and c for c in counties):
            raise DesignError("design: treatment_counties must be a list of county names "
                              "(non-empty strings), not a single string")
        if self.phases is not None:
            phases = self.phases
            if isinstance(phases, str) or not isinstance(phases, Sequence) or not all(
                    isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in phases):
                raise DesignError("design: phases must be None or a list of integers")
        if self.window_end < self.window_start:
            raise DesignError("design: window_end is before window_start")
        if self.custody_at_followup and self.followup_date is None:
            raise DesignError("design: custody_at_followup needs a followup_date")
        if self.followup_date is not None and self.followup_date < self.window_end:
            raise DesignError("design: followup_date is before the end of the window")
        if self.kind == "treated_counties" and not self.treatment_counties:
            raise DesignError("design: a treated_counties design needs at least one treatment "
                              "county")
        object.__setattr__(self, "treatment_counties", tuple(counties))
        if self.phases is not None:
            object.__setattr__(self, "phases", tuple(int(p) for p in self.phases))

    def to_dict(self) -> dict:
        """JSON-friendly form (dates as ISO strings)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "followup_date": None if self.followup_date is None else self.followup_date.isoformat(),
            "custody_at_followup": self.custody_at_followup,
            "treatment_counties": list(self.treatment_counties),
            "phases": None if self.phases is None else list(self.phases),
        }


def assign(families: pl.LazyFrame, rollout: pl.DataFrame, design: Design) -> pl.LazyFrame:
    """Add ``county``, ``go_live``, ``phase``, ``live``, ``box`` and ``arm`` to every family.

    Parameters
    ----------
    families : polars.LazyFrame
        Validated families (the input contract).
    rollout : polars.DataFrame
        The rollout schedule (:func:`natexp.data.rollout.rollout_frame`).
    design : Design

    Returns
    -------
    polars.LazyFrame
        One row per input family. ``box`` is an exclusion name from :data:`EXCLUSIONS` or an arm;
        ``arm`` is ``"treatment"``/``"control"`` for families in the cohort, else null.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> a = assign(fam.lazy(), load_rollout(),
    ...            default_design()).collect()
    >>> a.filter(pl.col("arm").is_not_null()).height
    85
    """
    coded = _assign_coded(families, rollout, design)
    return coded.decode(coded.frame)


# Speed (bench/bench_cohort.py, issue 10). Two things made the flow table slow at 10 million
# rows, and both are avoided here without changing what any public function returns:
# 1. a when/then chain of string literals materialises a string for every row at every branch;
#    the box is computed as an Enum (literals cost nothing per row) and turned into text only
#    where a caller reads the ``box``/``arm`` columns;
# 2. the left join on ``area`` builds the schedule's columns for every row; instead each family's
#    area is turned into its row number in the schedule (a cast to an Enum of the areas) and
#    the schedule's values are looked up by that number, which is what the join computes, and
#    only the lookups the box needs are done for every row (this also keeps the input row
#    order, which polars' left join does not promise).
# ``Cohort.flow()`` counts the boxes with sums of masks in one select, and ``Cohort.members``
# filters on the exclusion conditions before anything else is computed. ``assign`` returns
# exactly what it always did (same columns, types and values; a join is still used when a
# lookup could differ from it: duplicate or null areas in the schedule, clashing column names,
# non-text area). Measured at 10 million families on 2 cores: flow + uptake by area x arm x
# quarter from Parquet went from 2.4 s to 0.5 s (bench/README.md).
_BOXES = (*EXCLUSIONS, *ARMS)
_BOX = pl.Enum(_BOXES)
_CODE = "__natexp_box"
_AREA = "__natexp_area"
_FIRST_ARM = len(EXCLUSIONS)


@dataclass(frozen=True)
class _Coded:
    """Families with their box as an Enum column ``_CODE`` (no ``box``/``arm`` text yet)."""

    base: pl.LazyFrame  # families with the schedule joined or its area number (no box)
    box: pl.Expr  # the box, as an Enum
    in_cohort: pl.Expr  # True exactly where ``box`` is an arm (no exclusion applies)
    rollout: pl.DataFrame
    lookup: bool  # True: schedule values by area number (column _AREA); False: joined

    @property
    def frame(self) -> pl.LazyFrame:
        """Every family with its coded box."""
        return self.base.with_columns(self.box.alias(_CODE))

    def decode(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Turn (a filtered) ``frame`` into :func:`assign`'s columns, in its order."""
        if self.lookup:
            idx = pl.col(_AREA)
            lf = lf.with_columns(
                pl.lit(self.rollout[c]).gather(idx).alias(c)
                for c in self.rollout.columns
                if c != "area"
            )
        text = pl.col(_CODE).cast(pl.String)
        in_arm = pl.col(_CODE).to_physical() >= _FIRST_ARM
        return (
            lf.with_columns(live_at(self.rollout).alias("live"), text.alias("box"))
            .with_columns(pl.when(in_arm).then(text).otherwise(None).alias("arm"))
            .drop(_AREA, _CODE, strict=False)
        )

    def members(self) -> pl.LazyFrame:
        """Families in an arm, with their coded box: filtered first on the exclusions, which
        is cheaper than computing every family's box and keeping the arms."""
        return self.base.filter(self.in_cohort).with_columns(self.box.alias(_CODE))


def _can_look_up(families: pl.LazyFrame, rollout: pl.DataFrame) -> bool:
    """True when looking the schedule up by area number gives exactly the left join's values."""
    schema = families.collect_schema()
    others = [c for c in rollout.columns if c != "area"]
    return (
        schema.get("area") == pl.String
        and rollout.schema.get("area") == pl.String
        and {"county", "go_live", "phase"} <= set(others)
        and not set(others) & set(schema)
        and not {_AREA, _CODE} & set(schema)
        and rollout.height > 0
        and rollout["area"].null_count() == 0
        and rollout["area"].n_unique() == rollout.height
    )


def _assign_coded(families: pl.LazyFrame, rollout: pl.DataFrame, design: Design) -> _Coded:
    """:func:`assign`, with the box still coded (see the comment above)."""
    lookup = _can_look_up(families, rollout)
    if lookup:
        idx = pl.col("area").cast(pl.Enum(rollout["area"].to_list()), strict=False).to_physical()
        lf = families.with_columns(idx.alias(_AREA))

        def per_area(values: pl.Series) -> pl.Expr:
            return pl.lit(values).gather(pl.col(_AREA))

        go_live = per_area(rollout["go_live"])
        phase_ok = per_area(rollout["phase"].is_in(list(design.phases or ())).fill_null(False))
        in_treat = per_area(
            rollout["county"].is_in(list(design.treatment_counties)).fill_null(False)
        ).fill_null(False)
    else:
        lf = families.join(rollout.lazy(), on="area", how="left")
        go_live = pl.col("go_live")
        phase_ok = pl.col("phase").is_in(list(design.phases or ()))
        in_treat = pl.col("county").is_in(list(design.treatment_counties)).fill_null(False)
    rec = pl.col("reception_date")
    live = go_live.is_not_null() & (go_live <= rec)  # as natexp.data.rollout.live_at
    outside = (rec < pl.lit(design.window_start)) | (rec > pl.lit(design.window_end))
    if design.custody_at_followup:
        released = pl.col("release_date").is_not_null() & (
            pl.col("release_date") <= pl.lit(design.followup_date)
        )
    else:
        released = pl.lit(False)
    off_phase = ~phase_ok.fill_null(False) if design.phases is not None else pl.lit(False)
    if design.kind == "treated_counties":
        elsewhere = live & ~in_treat
        treated = live & in_treat
    else:
        elsewhere = pl.lit(False)
        treated = live

    def box_lit(name: str) -> pl.Expr:
        return pl.lit(name, dtype=_BOX)

    box = (
        pl.when(outside)
        .then(box_lit("outside_window"))
        .when(released)
        .then(box_lit("released_before_followup"))
        .when(off_phase)
        .then(box_lit("phase_not_selected"))
        .when(elsewhere)
        .then(box_lit("live_outside_treatment_area"))
        .when(treated)
        .then(box_lit("treatment"))
        .otherwise(box_lit("control"))
    )
    # when/then treats a null condition as false, so a family is in an arm exactly when no
    # exclusion condition is true.
    excluded = [c.fill_null(False) for c in (outside, released, off_phase, elsewhere)]
    in_cohort = ~pl.any_horizontal(excluded)
    return _Coded(lf, box, in_cohort, rollout, lookup)


@dataclass
class Cohort:
    """Families assigned by a design (lazy), with the design and schedule that made it.

    Attributes
    ----------
    frame : polars.LazyFrame
        Every input family with ``box`` and ``arm`` (see :func:`assign`).
    design : Design
    rollout : polars.DataFrame
    reached : str
        The follow-up's reached column (the study's ``outcome.reached``).
    followup : tuple of natexp.study.FollowupStage
        Follow-up stages counted in the flow table among the reached families.
    """

    frame: pl.LazyFrame
    design: Design
    rollout: pl.DataFrame
    _flow: pl.DataFrame | None = field(default=None, repr=False)
    #: The boolean column saying whether a family was reached by the follow-up (null: not
    #: called) and the follow-up stages counted among the reached (``Study.followup_stages``).
    reached: str = "followup_reached"
    followup: tuple[Any, ...] = ()
    # The same families with the box still coded (see ``_assign_coded``); set by build_cohort.
    # Lets flow() and members skip the join and turning every row's box into text.
    _coded: _Coded | None = field(default=None, repr=False, compare=False)

    @property
    def members(self) -> pl.LazyFrame:
        """Families in either arm."""
        if self._coded is not None:
            return self._coded.decode(self._coded.members())
        return self.frame.filter(pl.col("arm").is_not_null())

    def flow(self) -> pl.DataFrame:
        """The CONSORT-style flow table (computed once, then cached).

        Returns
        -------
        polars.DataFrame
            See :func:`flow_table`.
        """
        if self._flow is None:
            if self._coded is not None:
                counts = _per_box_coded(self._coded.frame, self.reached, self.followup)
                self._flow = _flow_rows(counts, self.followup)
            else:
                self._flow = flow_table(self.frame, reached=self.reached,
                                        followup=self.followup)
        return self._flow

    def _repr_html_(self) -> str:
        flow = self.flow()
        with pl.Config(tbl_rows=flow.height, fmt_str_lengths=80):
            table = flow._repr_html_()
        return (
            f"<p><b>natexp cohort</b>: design <code>{self.design.name}</code>, window "
            f"{self.design.window_start} to {self.design.window_end}</p>" + table
        )


def build_cohort(families: pl.LazyFrame, rollout: pl.DataFrame, design: Design, *,
                 reached: str = "followup_reached", followup: Sequence[Any] = ()) -> Cohort:
    """Assign families to boxes under ``design``.

    Parameters
    ----------
    families : polars.LazyFrame
    rollout : polars.DataFrame
    design : Design
    reached : str
        The boolean column saying whether a family was reached by the follow-up (null: not
        called); the study's ``outcome.reached``.
    followup : sequence of natexp.study.FollowupStage
        Follow-up stages (``key``, boolean ``column``, ``label``) counted in the flow table
        among the reached families (the study's ``followup_stages``; default none).

    Returns
    -------
    Cohort

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> c = build_cohort(fam.lazy(), load_rollout(), default_design())
    >>> int(c.flow().filter(pl.col("step") == "identified")["n"].sum())
    85
    """
    coded = _assign_coded(families, rollout, design)
    return Cohort(coded.decode(coded.frame), design, rollout, _coded=coded, reached=reached,
                  followup=tuple(followup))


def flow_table(assigned: pl.LazyFrame, *, reached: str = "followup_reached",
               followup: Sequence[Any] = ()) -> pl.DataFrame:
    """Count families at each step: every input family lands in exactly one exclusion or arm.

    Parameters
    ----------
    assigned : polars.LazyFrame
        Output of :func:`assign`.
    reached, followup
        As in :func:`build_cohort`.

    Returns
    -------
    polars.DataFrame
        Columns ``order``, ``step``, ``arm`` (``"all"`` for exclusions), ``label``, ``n``.
        Steps: ``input``; one row per exclusion box; then per arm ``identified``,
        ``not_called`` (not in the follow-up call list), ``not_reached``, ``reached``, then
        one step per follow-up stage (its ``key``: reached families with the stage's column
        True). ``input`` equals the exclusions plus the identified families of both arms.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> f = flow_table(assign(fam.lazy(), load_rollout(),
    ...                       default_design()))
    >>> f.filter(pl.col("step") == "reached")["n"].to_list()
    [20, 15]
    """
    followup = tuple(followup)
    return _flow_rows(_per_box(assigned, "box", reached, followup), followup)


def _per_box(lf: pl.LazyFrame, key: str, reached: str = "followup_reached",
             followup: tuple[Any, ...] = ()) -> dict[str, dict]:
    """Families per box (column ``key``) and per follow-up stage, in one pass."""
    is_reached = pl.col(reached) == True  # noqa: E712
    per_box = (
        lf.group_by(key)
        .agg(
            pl.len().alias("n"),
            pl.col(reached).is_null().sum().alias("not_called"),
            (pl.col(reached) == False).sum().alias("not_reached"),  # noqa: E712
            is_reached.sum().alias("reached"),
            *((is_reached & (pl.col(stage.column) == True)).sum().alias(stage.key)  # noqa: E712
              for stage in followup),
        )
        .with_columns(pl.col(key).cast(pl.String).alias("box"))
        .collect()
    )
    return {row["box"]: row for row in per_box.iter_rows(named=True)}


def _per_box_coded(lf: pl.LazyFrame, reached: str = "followup_reached",
                   followup: tuple[Any, ...] = ()) -> dict[str, dict]:
    """:func:`_per_box` on a coded frame: sums of masks in one select (no group-by, which at
    10 million rows took twice as long), follow-up counts for the two arms only (the flow
    table shows only the size of each exclusion box)."""
    code = pl.col(_CODE).to_physical()
    is_reached = (pl.col(reached) == True).fill_null(False)  # noqa: E712
    exprs = [(code == i).sum().alias(f"{box}#n") for i, box in enumerate(_BOXES)]
    for i, arm in enumerate(ARMS, start=_FIRST_ARM):
        here = code == i
        exprs += [
            (here & pl.col(reached).is_null()).sum().alias(f"{arm}#not_called"),
            (here & is_reached).sum().alias(f"{arm}#reached"),
        ]
        exprs += [
            (here & is_reached & (pl.col(stage.column) == True).fill_null(False))  # noqa: E712
            .sum()
            .alias(f"{arm}#{stage.key}")
            for stage in followup
        ]
    got = lf.select(exprs).collect().row(0, named=True)
    counts: dict[str, dict] = {}
    for key, value in got.items():
        box, stat = key.split("#")
        counts.setdefault(box, {})[stat] = int(value or 0)
    for arm in ARMS:
        c = counts[arm]
        c["not_reached"] = c["n"] - c["not_called"] - c["reached"]
    return counts


def _flow_rows(counts: dict[str, dict], followup: tuple[Any, ...] = ()) -> pl.DataFrame:
    """The flow table from the per-box counts of :func:`_per_box`."""
    rows = [(0, "input", "all", "Families in the input",
             int(sum(c["n"] for c in counts.values())))]
    order = 1
    for box, label in EXCLUSIONS.items():
        rows.append((order, box, "all", label, int(counts.get(box, {}).get("n", 0))))
        order += 1
    arm_steps = {
        "identified": "Identified (eligible for the comparison)",
        "not_called": "Not in the follow-up call list",
        "not_reached": "Not reached by the follow-up call",
        "reached": "Reached by the follow-up call",
        **{stage.key: stage.label or stage.key for stage in followup},
    }
    for step, label in arm_steps.items():
        for arm in ARMS:
            c = counts.get(arm, {})
            n = c.get("n", 0) if step == "identified" else c.get(step, 0)
            rows.append((order, step, arm, label, int(n or 0)))
        order += 1
    return pl.DataFrame(
        rows,
        schema={"order": pl.Int64, "step": pl.String, "arm": pl.String, "label": pl.String,
                "n": pl.Int64},
        orient="row",
    )


def accounted(flow: pl.DataFrame) -> bool:
    """True when the exclusions and the identified families add up to the input.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> accounted(build_cohort(fam.lazy(), load_rollout(),
    ...                        default_design()).flow())
    True
    """
    total = flow.filter(pl.col("step") == "input")["n"].sum()
    parts = flow.filter(pl.col("step").is_in([*EXCLUSIONS, "identified"]))["n"].sum()
    return int(total) == int(parts)


def arm_counts(cohort: Cohort, outcome: str, *, among: str | None = "followup_reached") -> dict:
    """Count ``outcome`` True per arm, among families where ``among`` is True.

    Parameters
    ----------
    cohort : Cohort
    outcome : str
        A boolean column of the families table (e.g. the study's outcome,
        ``study.outcome.column``).
    among : str or None
        Restrict to families with this boolean column True (default: reached at follow-up);
        None counts every identified family.

    Returns
    -------
    dict
        ``{"treatment": (x, n), "control": (x, n)}``.

    Examples
    --------
    >>> from natexp.data.synthetic import default_design, default_study, generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> arm_counts(build_cohort(fam.lazy(), load_rollout(),
    ...                         default_design()), default_study().outcome.column)
    {'treatment': (4, 20), 'control': (2, 15)}
    """
    lf = cohort.members
    if among is not None:
        lf = lf.filter(pl.col(among) == True)  # noqa: E712
    got = (
        lf.group_by("arm")
        .agg((pl.col(outcome) == True).sum().alias("x"), pl.len().alias("n"))  # noqa: E712
        .collect()
    )
    out = {arm: (0, 0) for arm in ARMS}
    for row in got.iter_rows(named=True):
        out[row["arm"]] = (int(row["x"]), int(row["n"]))
    return out
