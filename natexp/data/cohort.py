"""Cohort designs: assign every family to exactly one box (an exclusion or an arm), lazily.

Designs
-------
``oxon_vs_rest``
    treatment = areas in the treatment counties (Oxfordshire) live at the reception date;
    control = areas not live at the reception date; families in other areas that were live at
    the reception date are excluded by design.
``staggered``
    treatment = any area live at the reception date; control = areas not yet live.

Every family lands in exactly one box, checked in this order: outside the window, released
before the follow-up date (when custody at follow-up is required), area not in the selected
rollout phases, live outside the treatment counties (``oxon_vs_rest`` only), then its arm.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from natexp.data.rollout import live_at

DESIGNS = ("oxon_vs_rest", "staggered")
ARMS = ("treatment", "control")

#: Exclusion boxes in the order they are applied, with the label the flow table shows.
EXCLUSIONS: dict[str, str] = {
    "outside_window": "Reception date outside the study window",
    "released_before_followup": "Parent released on or before the follow-up date",
    "phase_not_selected": "Area not in the selected rollout phases",
    "live_outside_treatment_area": "Area live at reception but outside the treatment counties",
}


class DesignError(ValueError):
    """The cohort design is inconsistent (unknown name, window end before start, ...)."""


@dataclass(frozen=True, slots=True)
class Design:
    """A cohort design: which families are compared, and how they are assigned to arms.

    Parameters
    ----------
    name : str
        ``"oxon_vs_rest"`` or ``"staggered"``.
    window_start, window_end : datetime.date
        Reception dates included (both ends inclusive).
    followup_date : datetime.date or None
        Date of the follow-up contact.
    custody_at_followup : bool
        Keep only families whose parent was still in custody on the follow-up date
        (release date missing or after it).
    treatment_counties : tuple of str
        Counties whose live areas form the treatment arm of ``oxon_vs_rest``.
    phases : tuple of int or None
        Keep only areas of these rollout phases (None: every area).

    Examples
    --------
    >>> d = Design(window_start=dt.date(2022, 7, 1), window_end=dt.date(2024, 6, 30))
    >>> d.name
    'oxon_vs_rest'
    """

    name: str = "oxon_vs_rest"
    window_start: dt.date = dt.date(2022, 7, 1)
    window_end: dt.date = dt.date(2024, 6, 30)
    followup_date: dt.date | None = dt.date(2024, 11, 1)
    custody_at_followup: bool = True
    treatment_counties: tuple[str, ...] = ("Oxfordshire",)
    phases: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.name not in DESIGNS:
            raise DesignError(f"design must be one of {DESIGNS}, got {self.name!r}")
        if self.window_end < self.window_start:
            raise DesignError("design: window_end is before window_start")
        if self.custody_at_followup and self.followup_date is None:
            raise DesignError("design: custody_at_followup needs a followup_date")
        if self.followup_date is not None and self.followup_date < self.window_end:
            raise DesignError("design: followup_date is before the end of the window")
        if self.name == "oxon_vs_rest" and not self.treatment_counties:
            raise DesignError("design: oxon_vs_rest needs at least one treatment county")
        object.__setattr__(self, "treatment_counties", tuple(self.treatment_counties))
        if self.phases is not None:
            object.__setattr__(self, "phases", tuple(int(p) for p in self.phases))

    def to_dict(self) -> dict:
        """JSON-friendly form (dates as ISO strings)."""
        return {
            "name": self.name,
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
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> a = assign(fam.lazy(), load_rollout(), Design()).collect()
    >>> a.filter(pl.col("arm").is_not_null()).height
    85
    """
    lf = families.join(rollout.lazy(), on="area", how="left")
    rec = pl.col("reception_date")
    live = live_at(rollout)
    outside = (rec < pl.lit(design.window_start)) | (rec > pl.lit(design.window_end))
    if design.custody_at_followup:
        released = pl.col("release_date").is_not_null() & (
            pl.col("release_date") <= pl.lit(design.followup_date)
        )
    else:
        released = pl.lit(False)
    if design.phases is not None:
        off_phase = ~pl.col("phase").is_in(list(design.phases)).fill_null(False)
    else:
        off_phase = pl.lit(False)
    if design.name == "oxon_vs_rest":
        in_treat_area = pl.col("county").is_in(list(design.treatment_counties)).fill_null(False)
        elsewhere = live & ~in_treat_area
        treated = live & in_treat_area
    else:
        elsewhere = pl.lit(False)
        treated = live
    box = (
        pl.when(outside)
        .then(pl.lit("outside_window"))
        .when(released)
        .then(pl.lit("released_before_followup"))
        .when(off_phase)
        .then(pl.lit("phase_not_selected"))
        .when(elsewhere)
        .then(pl.lit("live_outside_treatment_area"))
        .when(treated)
        .then(pl.lit("treatment"))
        .otherwise(pl.lit("control"))
    )
    return lf.with_columns(live.alias("live"), box.alias("box")).with_columns(
        pl.when(pl.col("box").is_in(ARMS)).then(pl.col("box")).otherwise(None).alias("arm")
    )


@dataclass
class Cohort:
    """Families assigned by a design (lazy), with the design and schedule that made it.

    Attributes
    ----------
    frame : polars.LazyFrame
        Every input family with ``box`` and ``arm`` (see :func:`assign`).
    design : Design
    rollout : polars.DataFrame
    """

    frame: pl.LazyFrame
    design: Design
    rollout: pl.DataFrame
    _flow: pl.DataFrame | None = field(default=None, repr=False)

    @property
    def members(self) -> pl.LazyFrame:
        """Families in either arm."""
        return self.frame.filter(pl.col("arm").is_not_null())

    def flow(self) -> pl.DataFrame:
        """The CONSORT-style flow table (computed once, then cached).

        Returns
        -------
        polars.DataFrame
            See :func:`flow_table`.
        """
        if self._flow is None:
            self._flow = flow_table(self.frame)
        return self._flow

    def _repr_html_(self) -> str:
        return (
            f"<p><b>natexp cohort</b>: design <code>{self.design.name}</code>, window "
            f"{self.design.window_start} to {self.design.window_end}</p>"
            + self.flow()._repr_html_()
        )


def build_cohort(families: pl.LazyFrame, rollout: pl.DataFrame, design: Design) -> Cohort:
    """Assign families to boxes under ``design``.

    Parameters
    ----------
    families : polars.LazyFrame
    rollout : polars.DataFrame
    design : Design

    Returns
    -------
    Cohort

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> c = build_cohort(fam.lazy(), load_rollout(), Design())
    >>> int(c.flow().filter(pl.col("step") == "identified")["n"].sum())
    85
    """
    return Cohort(assign(families, rollout, design), design, rollout)


def flow_table(assigned: pl.LazyFrame) -> pl.DataFrame:
    """Count families at each step: every input family lands in exactly one exclusion or arm.

    Parameters
    ----------
    assigned : polars.LazyFrame
        Output of :func:`assign`.

    Returns
    -------
    polars.DataFrame
        Columns ``order``, ``step``, ``arm`` (``"all"`` for exclusions), ``label``, ``n``.
        Steps: ``input``; one row per exclusion box; then per arm ``identified``,
        ``not_called`` (not in the follow-up call list), ``not_reached``, ``reached``,
        ``agreed_interview``, ``interviewed``. ``input`` equals the exclusions plus the
        identified families of both arms.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> f = flow_table(assign(fam.lazy(), load_rollout(), Design()))
    >>> f.filter(pl.col("step") == "reached")["n"].to_list()
    [20, 15]
    """
    per_box = (
        assigned.group_by("box")
        .agg(
            pl.len().alias("n"),
            pl.col("followup_reached").is_null().sum().alias("not_called"),
            (pl.col("followup_reached") == False).sum().alias("not_reached"),  # noqa: E712
            (pl.col("followup_reached") == True).sum().alias("reached"),  # noqa: E712
            ((pl.col("followup_reached") == True) & (pl.col("interview_consent") == True))  # noqa: E712
            .sum()
            .alias("agreed_interview"),
            ((pl.col("followup_reached") == True) & (pl.col("interview_completed") == True))  # noqa: E712
            .sum()
            .alias("interviewed"),
        )
        .collect()
    )
    counts = {row["box"]: row for row in per_box.iter_rows(named=True)}
    rows = [(0, "input", "all", "Families in the input", int(per_box["n"].sum()))]
    order = 1
    for box, label in EXCLUSIONS.items():
        rows.append((order, box, "all", label, int(counts.get(box, {}).get("n", 0))))
        order += 1
    arm_steps = {
        "identified": "Identified (eligible for the comparison)",
        "not_called": "Not in the follow-up call list",
        "not_reached": "Not reached by the follow-up call",
        "reached": "Reached by the follow-up call",
        "agreed_interview": "Agreed to be contacted for interview",
        "interviewed": "Completed the interview",
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
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> accounted(build_cohort(fam.lazy(), load_rollout(), Design()).flow())
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
        A boolean column of the families table (e.g. ``"chas_support"``).
    among : str or None
        Restrict to families with this boolean column True (default: reached at follow-up);
        None counts every identified family.

    Returns
    -------
    dict
        ``{"treatment": (x, n), "control": (x, n)}``.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> fam, _ = generate()
    >>> arm_counts(build_cohort(fam.lazy(), load_rollout(), Design()), "chas_support")
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
