"""Operation Paramount's synthetic data: families and children whose margins equal the report.

This is the example study's **synthetic-data hook** (``synthetic.hook: "synthetic.py:generate"``
in ``conf/study/paramount.yaml``). natexp loads it from this folder with
:func:`natexp.data.synthetic.load_hook` when a run has no data paths; the library itself never
imports it, and a study without a hook gets natexp's generic generator
(:func:`natexp.data.synthetic.generate_for`).

Real record-level data of Operation Paramount is confidential and is never in this repository.
This generator builds, from a seed, a synthetic ``families`` and ``children`` table in the input
contract (DESIGN.md) whose counts reproduce what Bekaert, Olphin, Massie & Norris (2025), *What
Works Series: Operation Paramount*, Thames Valley Violence Prevention Partnership, published:

* Appendix B (639 children by sex of the imprisoned parent: carer, CWCF, SGO);
* Methodology: 85 families in the natural-experiment cohort, 35 reached by phone;
* Figures 6-11 (contact with the parent, uptake 4/20 vs 2/15, responses to the support offer,
  reasons for accepting, interview consent and completion).

Everything else (areas, dates, sizes of the groups outside the cohort, ages) is plausible
invention, documented in :data:`STUDY` and in the comments below. Every record is synthetic:
say so wherever the data is used.

With ``n_families=N`` the same design is scaled to ``N`` families (same proportions, no longer
the exact published counts), fully vectorised so that ten million families fit in a few GB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import polars as pl

from natexp.causal.result import InvalidInputError

__all__ = ["STUDY", "StudyParameters", "generate"]

_REPORT = (
    "Bekaert, S., Olphin, T., Massie, R. & Norris, J. (2025) What Works Series: Operation "
    "Paramount, Thames Valley Violence Prevention Partnership: Kidlington, UK"
)


@dataclass(frozen=True)
class StudyParameters:
    """The parameters of the Operation Paramount natural experiment, as the generator uses them.

    Counts marked "published" are typed from the report (:attr:`source`); the others are
    assumptions listed in :attr:`assumptions`. Mappings are read-only.

    Attributes
    ----------
    source : str
        The report.
    data_start, data_end : datetime.date
        Range of reception dates in the synthetic dataset (the Oxford pilot began in winter
        2021; the report is from 2025). Assumption.
    window_start, window_end : datetime.date
        Natural-experiment window on the reception date, inclusive (published, Methodology).
    followup_date : datetime.date
        Date of the follow-up phone calls (assumption: the ethics approval is October 2024).
        "Still in custody at follow-up" means ``release_date`` null or after this date.
    treatment_county : str
        Treatment = an area of this county live at reception; control = an area not live at
        reception; other live areas are excluded by design.
    n_families, n_children : int
        Size of the default dataset (children published in Appendix B; families assumed).
    n_cohort, n_cohort_treatment, n_cohort_control : int
        The cohort of 85 (published) and its split 46/39 (assumption).
    n_reached_treatment, n_reached_control : int
        Families reached by phone, 20 and 15 (published).
    chas_reached_treatment, chas_reached_control : int
        Earlier Children Heard and Seen uptake among the reached, 4/20 and 2/15 (Figures 7-8).
    referral_treatment, referral_control : Mapping[str, int]
        Responses to the support offer on the call (Figure 9).
    reasons : Mapping[str, int]
        Reasons given among the 19 who accepted or asked for a re-referral (Figure 10).
    interview_consent_treatment, interview_consent_control : int
        Agreed to be contacted for interview, 14 and 10 (Figure 11).
    interview_completed_treatment, interview_completed_control : int
        Completed the interview, 6 and 5 (Figure 11).
    contact_cells : Mapping[str, int]
        Figure 6 by cell: ``no_contact_positive`` 24 is published, the other three cells are
        an assumption consistent with it.
    wants_contact_false, court_order_true : int
        26 of 35 did not want contact and 5 had a court order on release (published).
    appendix_b : Mapping[str, Mapping[str, tuple[int, int]]]
        Appendix B counts ``(yes, no)`` by sex of the imprisoned parent ("M", "F").
    appendix_b_chi2 : Mapping[str, float]
        The report's uncorrected chi-squared statistics for the three Appendix B tables.
    strata : Mapping[str, int]
        How the default families split into the generator's strata (assumption).
    n_female_families : int
        Families whose imprisoned parent is female (assumption; they hold the 32 children).
    base_uptake : float
        Probability of earlier support uptake where Paramount was not live (assumption).
    assumptions : tuple of str
        Every assumption, in words.
    """

    source: str
    data_start: dt.date
    data_end: dt.date
    window_start: dt.date
    window_end: dt.date
    followup_date: dt.date
    treatment_county: str
    n_families: int
    n_children: int
    n_cohort: int
    n_cohort_treatment: int
    n_cohort_control: int
    n_reached_treatment: int
    n_reached_control: int
    chas_reached_treatment: int
    chas_reached_control: int
    referral_treatment: Mapping[str, int]
    referral_control: Mapping[str, int]
    reasons: Mapping[str, int]
    interview_consent_treatment: int
    interview_consent_control: int
    interview_completed_treatment: int
    interview_completed_control: int
    contact_cells: Mapping[str, int]
    wants_contact_false: int
    court_order_true: int
    appendix_b: Mapping[str, Mapping[str, tuple[int, int]]]
    appendix_b_chi2: Mapping[str, float]
    strata: Mapping[str, int]
    n_female_families: int
    base_uptake: float
    assumptions: tuple[str, ...]

    @property
    def n_reached(self) -> int:
        """Families reached by the follow-up call (35)."""
        return self.n_reached_treatment + self.n_reached_control


_ro = MappingProxyType

#: The study parameters; importable by tests of other modules.
STUDY = StudyParameters(
    source=_REPORT,
    data_start=dt.date(2021, 12, 1),
    data_end=dt.date(2025, 6, 30),
    window_start=dt.date(2022, 7, 1),
    window_end=dt.date(2024, 6, 30),
    followup_date=dt.date(2024, 11, 1),
    treatment_county="Oxfordshire",
    n_families=330,
    n_children=639,
    n_cohort=85,
    n_cohort_treatment=46,
    n_cohort_control=39,
    n_reached_treatment=20,
    n_reached_control=15,
    chas_reached_treatment=4,
    chas_reached_control=2,
    referral_treatment=_ro(
        {
            "accepted": 11,
            "re_referral": 2,
            "declined": 5,
            "already_supported": 1,
            "not_applicable": 1,
        }
    ),
    referral_control=_ro(
        {
            "accepted": 6,
            "re_referral": 0,
            "declined": 7,
            "already_supported": 2,
            "not_applicable": 0,
        }
    ),
    reasons=_ro({"child": 9, "self": 6, "legal": 4}),
    interview_consent_treatment=14,
    interview_consent_control=10,
    interview_completed_treatment=6,
    interview_completed_control=5,
    contact_cells=_ro(
        {
            "no_contact_positive": 24,
            "contact_positive": 5,
            "contact_negative": 2,
            "no_contact_negative": 4,
        }
    ),
    wants_contact_false=26,
    court_order_true=5,
    appendix_b=_ro(
        {
            "carer_mother_or_father": _ro({"M": (536, 71), "F": (8, 24)}),
            "cwcf": _ro({"M": (20, 587), "F": (5, 27)}),
            "sgo": _ro({"M": (7, 600), "F": (6, 26)}),
        }
    ),
    appendix_b_chi2=_ro({"carer_mother_or_father": 96.2426, "cwcf": 12.2932, "sgo": 47.2268}),
    strata=_ro(
        {
            "reached_treatment": 20,
            "reached_control": 15,
            "not_reached_treatment": 26,
            "not_reached_control": 24,
            "window_released": 60,
            "window_excluded": 30,
            "before_window": 55,
            "after_window": 100,
        }
    ),
    n_female_families=17,
    base_uptake=0.06,
    assumptions=(
        "follow-up calls on 2024-11-01 (the report gives only the October 2024 ethics approval)",
        "the cohort of 85 splits 46 treatment / 39 control (the report gives only the total)",
        "Figure 6 cells other than 'no contact, positive' (24): contact & positive 5, "
        "contact & negative 2, no contact & negative 4; wants contact = contact & positive or "
        "no contact & negative (9 = 35 - 26); the 5 court orders are among 'no contact, positive'",
        "each of the 19 carers who accepted gave exactly one reason (9 + 6 + 4 = 19); reasons "
        "and Figure 6 cells are spread over the two arms at random",
        "330 families (children per family 1-5, mean 1.94) over reception dates 2021-12-01 to "
        "2025-06-30; areas drawn in proportion to population x eligible days",
        "17 families with a female imprisoned parent (holding the 32 children of Appendix B)",
        "earlier support uptake outside the 35 reached families: 0.06, plus uptake_effect where "
        "the area was live at reception; paramount_visit is True iff live at reception",
        "30% of the families in custody at follow-up were released between follow-up and as_of",
    ),
)

# Approximate usual residents, Census 2021 (ONS), in thousands: sampling weights only.
_POPULATION_K = {
    "Oxford": 162,
    "Cherwell": 161,
    "South Oxfordshire": 149,
    "Vale of White Horse": 139,
    "West Oxfordshire": 114,
    "Milton Keynes": 287,
    "Buckinghamshire": 553,
    "West Berkshire": 162,
    "Bracknell Forest": 125,
    "Reading": 174,
    "Slough": 159,
    "Windsor and Maidenhead": 154,
    "Wokingham": 178,
}

# Family sizes 1..5 children (assumption): 313 male-parent families hold 607 children and 17
# female-parent families hold 32 (Appendix B totals).
_SIZES_MALE = (133, 102, 50, 20, 8)
_SIZES_FEMALE = (7, 6, 3, 1, 0)

# Child kinds (carer, cwcf, sgo) and their counts by sex of the imprisoned parent. They give
# Appendix B exactly: mother/father 536/607 and 8/32, cwcf 20 and 5, sgo 7 and 6; CWCF children
# live with foster carers (or "other"), SGO children with grandparents or other family.
_KINDS = (
    ("mother", False, False),
    ("father", False, False),
    ("foster_carer", True, False),
    ("other", True, False),
    ("grandparent", False, True),
    ("other_family", False, True),
    ("grandparent", False, False),
    ("other_family", False, False),
    ("other", False, False),
)
_KINDS_MALE = (536, 0, 17, 3, 5, 2, 22, 14, 8)
_KINDS_FEMALE = (1, 7, 4, 1, 4, 2, 7, 4, 2)
_CARERS = ("mother", "father", "grandparent", "other_family", "foster_carer", "other")

# Ages 0-17: "a spread of ages, but ... more primary to early secondary school age children"
# (report, Figure 3); a hump over 6-13 (assumption).
_AGE_WEIGHTS = (2, 3, 3, 4, 4, 5, 6, 7, 7, 8, 8, 8, 7, 7, 6, 5, 4, 3)

_RESPONSES = ("accepted", "re_referral", "declined", "already_supported", "not_applicable")
_ROUTES = ("paramount", "school", "other")
_VIEWS = ("positive", "negative")
_FAMILY_COLUMNS = (
    "family_id",
    "area",
    "reception_date",
    "release_date",
    "parent_sex",
    "paramount_visit",
    "chas_support",
    "chas_route",
    "followup_reached",
    "has_contact",
    "contact_view",
    "wants_contact",
    "court_order",
    "referral_response",
    "reason_child",
    "reason_self",
    "reason_legal",
    "interview_consent",
    "interview_completed",
)
_NULL_DAY = np.iinfo(np.int32).min
_EPOCH = dt.date(1970, 1, 1)


def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


def _alloc(n: int, weights: tuple[int, ...] | list[int]) -> np.ndarray:
    """Split ``n`` into integer parts proportional to ``weights`` (largest remainder).

    With ``n == sum(weights)`` the parts are the weights themselves.
    """
    w = np.asarray(weights, dtype=float)
    quota = n * w / w.sum()
    out = np.floor(quota).astype(np.int64)
    short = n - int(out.sum())
    if short:
        out[np.argsort(-(quota - out), kind="stable")[:short]] += 1
    return out


def _shuffled(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Codes 0..k-1 repeated ``counts`` times, in random order."""
    return rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int8), counts))


def _check_rollout(rollout: Any) -> pl.DataFrame:
    from natexp.data.synthetic import checked_rollout

    if rollout is None:
        from natexp.data.rollout import load_rollout
        from natexp.paths import CONF_DIR

        return load_rollout(CONF_DIR / "rollout" / "thames_valley.yaml")
    return checked_rollout(rollout)


def _cells(rollout: pl.DataFrame, as_of: dt.date) -> dict[str, np.ndarray]:
    """Eligible (area, first day, last day) cells of every stratum, from the rollout."""
    s = STUDY
    ws, we, ds, de = (_day(d) for d in (s.window_start, s.window_end, s.data_start, s.data_end))
    far = _day(dt.date(9999, 12, 31))
    live = np.array(
        [far if g is None else _day(g) for g in rollout["go_live"].to_list()], dtype=np.int64
    )
    oxon = np.array([c == s.treatment_county for c in rollout["county"].to_list()])
    k = np.arange(rollout.height)
    every = np.ones(rollout.height, dtype=bool)

    def cells(mask: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
        lo = np.broadcast_to(lo, k.shape)
        hi = np.broadcast_to(hi, k.shape)
        keep = mask & (lo <= hi)
        return np.stack([k[keep], lo[keep], hi[keep]], axis=1)

    treat = cells(oxon, np.maximum(ws, live), we)
    control = cells(every, ws, np.minimum(we, live - 1))
    return {
        "reached_treatment": treat,
        "not_reached_treatment": treat,
        "reached_control": control,
        "not_reached_control": control,
        "window_released": cells(every, ws, we),
        "window_excluded": cells(~oxon, np.maximum(ws, live), we),
        "before_window": cells(every, ds, ws - 1),
        "after_window": cells(every, we + 1, min(de, _day(as_of))),
    }


def _draw_area_day(
    rng: np.random.Generator, n: int, cells: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` (area, reception day) pairs, areas in proportion to population x days."""
    if n == 0:
        return np.empty(0, np.int16), np.empty(0, np.int32)
    area, lo, hi = cells[:, 0], cells[:, 1], cells[:, 2]
    w = weight[area] * (hi - lo + 1)
    pick = rng.choice(len(cells), size=n, p=w / w.sum())
    day = lo[pick] + rng.integers(0, hi[pick] - lo[pick] + 1)
    return area[pick].astype(np.int16), day.astype(np.int32)


def _check_args(seed: Any, n_families: Any, uptake_effect: Any, as_of: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    if n_families is None:
        n = STUDY.n_families
    elif isinstance(n_families, bool) or not isinstance(n_families, int | np.integer):
        raise InvalidInputError(f"n_families must be an integer or None, got {n_families!r}")
    elif n_families < 1000:
        raise InvalidInputError(
            f"n_families must be None (the published margins) or at least 1000, got {n_families}"
        )
    else:
        n = int(n_families)
    try:
        eff = float(uptake_effect)
    except (TypeError, ValueError):
        raise InvalidInputError(f"uptake_effect must be a number, got {uptake_effect!r}") from None
    if not -STUDY.base_uptake <= eff <= 1 - STUDY.base_uptake:
        raise InvalidInputError(
            f"uptake_effect must keep {STUDY.base_uptake} + uptake_effect in [0, 1], got {eff}"
        )
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise InvalidInputError(f"as_of must be a datetime.date, got {as_of!r}")
    if as_of < STUDY.data_end:
        raise InvalidInputError(
            f"as_of must be on or after {STUDY.data_end} (the last reception date), got {as_of}"
        )
    return n


def generate(
    *,
    seed: int = 20250101,
    n_families: int | None = None,
    rollout: pl.DataFrame | None = None,
    uptake_effect: float = 0.10,
    as_of: dt.date | None = None,
    followup: bool = True,
    **_ignored: Any,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return synthetic ``(families, children)`` frames in natexp's input contract.

    The records are SYNTHETIC. With ``n_families=None`` the frames reproduce the report's
    published counts exactly (Appendix B over all 639 children; the cohort of 85 and
    Figures 6-11 over the 35 reached families; see :data:`STUDY`). With ``n_families=N`` the
    same design is scaled to ``N`` families with the same proportions.

    Parameters
    ----------
    seed : int
        Seed of the numpy generator; the same seed and arguments give identical frames.
    n_families : int or None
        None: the published-margins default (330 families). Otherwise at least 1000.
    rollout : polars.DataFrame, optional
        Rollout schedule (columns ``area``, ``county``, ``go_live``); default
        :func:`natexp.data.rollout.load_rollout`. It decides which areas and dates can hold
        treatment, control and excluded families.
    uptake_effect : float
        True effect of the area being live at reception on the probability of earlier support
        uptake (``chas_support``), applied to every family except the reached ones, whose uptake
        is fixed by Figures 7-9. Uptake is ``0.06 + uptake_effect`` where live, ``0.06`` where not.
    as_of : datetime.date or None
        Extract date: every date is on or before it. At least 2025-06-30; None: 2025-12-31.
    followup : bool
        True (default): the follow-up call of the natural experiment, with the published
        Figure 6-11 counts (scaled with ``n_families``). False: no family is in the call list
        (every follow-up column null) and every family's uptake follows the ``uptake_effect``
        model, so the true effect of going live is exactly ``uptake_effect`` (used by the
        staggered-rollout experiment, whose estimators are checked against it).
    **_ignored
        The other keywords natexp passes every hook (``study``, ``design``): this generator
        is fitted to the published tables and does not read them.

    Returns
    -------
    families : polars.DataFrame
        One row per family, columns as in DESIGN.md's input contract.
    children : polars.DataFrame
        One row per child: ``child_id``, ``family_id``, ``age`` (Int64), ``carer``, ``cwcf``,
        ``sgo``.

    Raises
    ------
    InvalidInputError
        On a bad argument, or a rollout that leaves no area able to hold a treatment or a
        control family in the window.

    Examples
    --------
    >>> families, children = generate()
    >>> families.height, children.height
    (330, 639)
    >>> int(families["followup_reached"].sum()), families["followup_reached"].count()
    (35, 85)
    >>> big, _ = generate(n_families=2000, seed=1)
    >>> big.height
    2000
    """
    if as_of is None:
        as_of = dt.date(2025, 12, 31)
    n = _check_args(seed, n_families, uptake_effect, as_of)
    effect = float(uptake_effect)
    rollout = _check_rollout(rollout)
    rng = np.random.default_rng(int(seed))
    s = STUDY

    areas = rollout["area"].to_list()
    median_pop = float(np.median(list(_POPULATION_K.values())))
    weight = np.array([_POPULATION_K.get(a, median_pop) for a in areas], dtype=float)
    live_day = np.array(
        [_NULL_DAY if g is None else _day(g) for g in rollout["go_live"].to_list()],
        dtype=np.int64,
    )

    # ---- strata: counts (exact published sizes in the default, scaled otherwise) ----------
    names = list(s.strata)
    counts = dict(zip(names, _alloc(n, list(s.strata.values())).tolist(), strict=True))
    cells = _cells(rollout, as_of)
    if len(cells["window_excluded"]) == 0:  # no non-treatment area went live in the window
        counts["window_released"] += counts.pop("window_excluded")
        names.remove("window_excluded")
    for name in names:
        if counts[name] and len(cells[name]) == 0:
            raise InvalidInputError(
                f"the rollout leaves no area and date for the stratum {name!r} "
                f"(treatment county {s.treatment_county!r}, window {s.window_start} to "
                f"{s.window_end})"
            )

    stratum = np.concatenate([np.full(counts[nm], i, dtype=np.int8) for i, nm in enumerate(names)])
    sid = {nm: i for i, nm in enumerate(names)}
    area = np.empty(n, np.int16)
    rec = np.empty(n, np.int32)
    start = 0
    for nm in names:
        stop = start + counts[nm]
        area[start:stop], rec[start:stop] = _draw_area_day(rng, counts[nm], cells[nm], weight)
        start = stop

    # ---- release dates --------------------------------------------------------------------
    fu, last = _day(s.followup_date), _day(as_of)
    rel = np.full(n, _NULL_DAY, np.int32)
    custody = np.isin(
        stratum,
        [sid[nm] for nm in names if nm.startswith(("reached", "not_reached", "window_excluded"))],
    )
    later = custody & (rng.random(n) < 0.3)  # released after the follow-up call
    rel[later] = rng.integers(fu + 1, last + 1, size=int(later.sum()))
    released = stratum == sid["window_released"]
    r = rec[released].astype(np.int64)
    rel[released] = r + rng.integers(1, fu - r + 1)  # on or before the follow-up call
    outside = (stratum == sid["before_window"]) | (stratum == sid["after_window"])
    stay = np.maximum(7, np.ceil(rng.lognormal(np.log(300), 0.9, size=int(outside.sum()))))
    out_rel = rec[outside] + stay.astype(np.int64)
    rel[outside] = np.where(out_rel <= last, out_rel, _NULL_DAY)

    # ---- programme exposure and earlier support uptake --------------------------------------
    gl = live_day[area]
    live = (gl != _NULL_DAY) & (gl <= rec)
    visit = live
    chas = rng.random(n) < s.base_uptake + effect * live
    route = np.where(live, 0, np.where(rng.random(n) < 0.7, 1, 2)).astype(np.int8)
    if not followup:
        model_chas, model_route = chas.copy(), route.copy()

    # ---- follow-up call: the cohort only ----------------------------------------------------
    def column() -> np.ndarray:
        return np.full(n, -1, np.int8)

    reached, has_contact, view, wants, court = column(), column(), column(), column(), column()
    resp, r_child, r_self, r_legal = column(), column(), column(), column()
    consent, completed = column(), column()
    reached[np.isin(stratum, [sid["not_reached_treatment"], sid["not_reached_control"]])] = 0

    rt = np.flatnonzero(stratum == sid["reached_treatment"])
    rc = np.flatnonzero(stratum == sid["reached_control"])
    arms = (
        (
            rt,
            s.referral_treatment,
            s.interview_consent_treatment,
            s.interview_completed_treatment,
            0,
        ),
        (rc, s.referral_control, s.interview_consent_control, s.interview_completed_control, 1),
    )
    for idx, referral, n_consent, n_done, arm_route in arms:
        m = len(idx)
        reached[idx] = 1
        resp[idx] = _shuffled(rng, _alloc(m, list(referral.values())))
        # earlier support = exactly the families that had it before (re-referral, already
        # supported, child now over 18): 4/20 and 2/15 (Figures 7-9).
        had = np.isin(resp[idx], [1, 3, 4])
        chas[idx] = had
        route[idx] = np.where(had, arm_route, -1)  # Paramount visit (treatment), school (control)
        arm_size = sum(referral.values())  # 20 or 15: the published weights, scaled to m
        consent[idx] = 1 - _shuffled(rng, _alloc(m, [n_consent, arm_size - n_consent]))
        yes = idx[consent[idx] == 1]
        completed[idx] = 0
        completed[yes] = 1 - _shuffled(rng, _alloc(len(yes), [n_done, n_consent - n_done]))
    rr = np.concatenate([rt, rc])
    # Figure 6 cells over all reached: 0 no contact & positive, 1 contact & positive,
    # 2 contact & negative, 3 no contact & negative.
    cell = _shuffled(rng, _alloc(len(rr), list(s.contact_cells.values())))
    has_contact[rr] = np.isin(cell, [1, 2])
    view[rr] = np.isin(cell, [2, 3])
    wants[rr] = np.isin(cell, [1, 3])
    court[rr] = 0
    ncp = rr[cell == 0]
    n_court = s.court_order_true
    n_ncp = s.contact_cells["no_contact_positive"]
    court[ncp] = 1 - _shuffled(rng, _alloc(len(ncp), [n_court, n_ncp - n_court]))
    # Figure 10: one reason per carer who accepted (9 + 6 + 4 = 19 accepted or re-referred).
    acc = rr[np.isin(resp[rr], [0, 1])]
    reason = _shuffled(rng, _alloc(len(acc), list(s.reasons.values())))
    r_child[acc], r_self[acc], r_legal[acc] = reason == 0, reason == 1, reason == 2
    if not followup:
        # Drawn as usual (so the rest of the data is the same), then dropped: no call list.
        chas, route = model_chas, model_route
        for col in (reached, has_contact, view, wants, court, resp, r_child, r_self, r_legal,
                    consent, completed):
            col[:] = -1

    # ---- sex of the imprisoned parent: "M" for every reached family -------------------------
    female = np.zeros(n, dtype=bool)
    n_female = int(_alloc(n, [s.n_families - s.n_female_families, s.n_female_families])[1])
    female[rng.choice(np.flatnonzero(reached != 1), size=n_female, replace=False)] = True

    # ---- shuffle rows so that family ids reveal nothing; build the frame, free the arrays ---
    perm = rng.permutation(n)
    route = np.where(chas, route, -1).astype(np.int8)
    raw = {
        "area": area,
        "rec": rec,
        "rel": rel,
        "female": female,
        "visit": visit,
        "chas": chas,
        "route": route,
        "reached": reached,
        "has_contact": has_contact,
        "view": view,
        "wants": wants,
        "court": court,
        "resp": resp,
        "r_child": r_child,
        "r_self": r_self,
        "r_legal": r_legal,
        "consent": consent,
        "completed": completed,
    }
    del area, rec, rel, visit, chas, route, reached, has_contact, view, wants, court, resp
    del r_child, r_self, r_legal, consent, completed, stratum, live, gl, custody, later
    del released, outside, r, stay, out_rel
    for key in list(raw):
        raw[key] = raw[key][perm]
    del perm
    female = raw["female"]
    families = _families_frame(raw, areas)
    del raw

    # ---- family sizes and children ----------------------------------------------------------
    size = np.empty(n, np.int64)
    fam_m, fam_f = np.flatnonzero(~female), np.flatnonzero(female)
    size[fam_m] = 1 + _shuffled(rng, _alloc(len(fam_m), _SIZES_MALE))
    size[fam_f] = 1 + _shuffled(rng, _alloc(len(fam_f), _SIZES_FEMALE))
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    n_kids = int(size.sum())
    kind = np.empty(n_kids, np.int8)
    for fams, weights in ((fam_m, _KINDS_MALE), (fam_f, _KINDS_FEMALE)):
        # Lay the kinds out in contiguous blocks over the families in random order, so siblings
        # mostly share a carer while the totals stay exact.
        order = rng.permutation(fams)
        sz = size[order]
        total = int(sz.sum())
        kinds = np.repeat(np.arange(len(_KINDS), dtype=np.int8), _alloc(total, weights))
        first = np.concatenate([[0], np.cumsum(sz)[:-1]])
        within = np.arange(total) - np.repeat(first, sz)
        kind[offset[np.repeat(order, sz)] + within] = kinds
    ages = np.asarray(_AGE_WEIGHTS, float)
    age = rng.choice(len(ages), size=n_kids, p=ages / ages.sum()).astype(np.int8)
    del offset, order, sz, kinds, first, within, fam_m, fam_f
    return families, _children_frame(n, size, kind, age)


def _id(prefix: str, number: pl.Expr, width: int) -> pl.Expr:
    """``prefix`` + ``number`` zero-padded to ``width`` digits (faster than ``str.zfill``)."""
    return pl.format(prefix + "{}", (number + 10**width).cast(pl.String).str.slice(1))


def _families_frame(cols: dict[str, np.ndarray], areas: list[str]) -> pl.DataFrame:
    n = len(cols["area"])
    raw = pl.DataFrame(cols)

    def text(col: str, cats: tuple[str, ...] | list[str]) -> pl.Expr:
        return pl.lit(pl.Series(cats, dtype=pl.String)).gather(
            pl.when(pl.col(col) >= 0).then(pl.col(col))
        )

    def flag(col: str) -> pl.Expr:
        return pl.when(pl.col(col) >= 0).then(pl.col(col) == 1)

    out = raw.select(
        _id("F", pl.int_range(1, n + 1), max(6, len(str(n)))).alias("family_id"),
        text("area", areas).alias("area"),
        pl.col("rec").cast(pl.Date).alias("reception_date"),
        pl.when(pl.col("rel") != _NULL_DAY).then(pl.col("rel")).cast(pl.Date).alias("release_date"),
        pl.when(pl.col("female")).then(pl.lit("F")).otherwise(pl.lit("M")).alias("parent_sex"),
        pl.col("visit").alias("paramount_visit"),
        pl.col("chas").alias("chas_support"),
        text("route", _ROUTES).alias("chas_route"),
        flag("reached").alias("followup_reached"),
        flag("has_contact").alias("has_contact"),
        text("view", _VIEWS).alias("contact_view"),
        flag("wants").alias("wants_contact"),
        flag("court").alias("court_order"),
        text("resp", _RESPONSES).alias("referral_response"),
        flag("r_child").alias("reason_child"),
        flag("r_self").alias("reason_self"),
        flag("r_legal").alias("reason_legal"),
        flag("consent").alias("interview_consent"),
        flag("completed").alias("interview_completed"),
    )
    return out.select(_FAMILY_COLUMNS)


def _children_frame(n: int, size: np.ndarray, kind: np.ndarray, age: np.ndarray) -> pl.DataFrame:
    n_kids = len(kind)
    carer_of = np.array([_CARERS.index(k[0]) for k in _KINDS], dtype=np.int8)
    cwcf_of = np.array([k[1] for k in _KINDS])
    sgo_of = np.array([k[2] for k in _KINDS])
    fam = np.repeat(np.arange(n, dtype=np.uint32), size)
    width = max(6, len(str(n)))
    raw = pl.DataFrame(
        {
            "fam": fam,
            "carer": carer_of[kind],
            "cwcf": cwcf_of[kind],
            "sgo": sgo_of[kind],
            "age": age,
        }
    )
    return raw.select(
        _id("C", pl.int_range(1, n_kids + 1), max(7, len(str(n_kids)))).alias("child_id"),
        _id("F", pl.col("fam").cast(pl.Int64) + 1, width).alias("family_id"),
        pl.col("age").cast(pl.Int64),
        pl.lit(pl.Series(_CARERS, dtype=pl.String)).gather(pl.col("carer")).alias("carer"),
        pl.col("cwcf"),
        pl.col("sgo"),
    )
